// Sealed datagrams, as lantern-net's seal.rs makes them: a granted player's input and
// feedback, readable and forgeable by nobody but the grant's holder and its host.
//
//   version u8 = 0x81 · epoch [4] · counter u64 (big-endian) · AES-256-GCM(ciphertext ‖ tag)
//
// Each track's key is HMAC-SHA256(secret, "lantern seal v1\0" ‖ track); the nonce is
// epoch ‖ counter; the associated data is the header and the viewer's path. The counter is
// the send time in µs, made strictly increasing, so it keeps growing across reloads and the
// host's replay window (one per grant) takes it. The secret never leaves the page.

const VERSION = 0x81;
const SEPARATOR = "~";
const text = new TextEncoder();

/** A grant as the player holds it (`TOKEN~SECRET`): the public token and the secret. */
export interface Credential {
  /** The signed claims, published on the `grant` track. */
  token: string;
  secret: Uint8Array<ArrayBuffer>;
  /** The viewer id it names (its `sub` claim): the path input goes under. */
  viewer: string;
}

/** Read `TOKEN~SECRET`, or undefined (with why on the console) when it is not one. */
export function parseCredential(held: string): Credential | undefined {
  const [token, hex, extra] = held.trim().split(SEPARATOR);
  if (!token || !hex || extra !== undefined) {
    console.warn("lantern: the grant is not TOKEN~SECRET (a token alone cannot send input): view-only");
    return undefined;
  }
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) {
    console.warn("lantern: the grant's secret is not 64 hex digits: view-only");
    return undefined;
  }
  const secret = new Uint8Array(32);
  for (let i = 0; i < 32; i++) secret[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  const viewer = viewerOf(token);
  if (!viewer) {
    console.warn("lantern: the grant's token is malformed: view-only");
    return undefined;
  }
  return { token, secret, viewer };
}

/** The viewer id a grant's token names (its `sub` claim), or undefined for a malformed one. */
function viewerOf(token: string): string | undefined {
  try {
    const payload = token.split(".")[1].replaceAll("-", "+").replaceAll("_", "/");
    const claims = JSON.parse(atob(payload));
    return typeof claims.sub === "string" && /^[A-Za-z0-9_-]{1,64}$/.test(claims.sub) ? claims.sub : undefined;
  } catch {
    return undefined;
  }
}

/** Seals one track's datagrams for the viewer broadcast at `path`. */
export class Sealer {
  #key: CryptoKey;
  #path: Uint8Array;
  #epoch = crypto.getRandomValues(new Uint8Array(4));
  #counter = 0n;

  private constructor(key: CryptoKey, path: string) {
    this.#key = key;
    this.#path = text.encode(path);
  }

  static async create(secret: Uint8Array<ArrayBuffer>, track: "input" | "feedback", path: string): Promise<Sealer> {
    const hmac = await crypto.subtle.importKey("raw", secret, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    const label = text.encode(`lantern seal v1\0${track}`);
    const raw = await crypto.subtle.sign("HMAC", hmac, label);
    const key = await crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt"]);
    return new Sealer(key, path);
  }

  /** Seal `plain`. Call in send order: the counter is taken here. */
  async seal(plain: Uint8Array): Promise<Uint8Array> {
    const now = BigInt(Math.floor((performance.timeOrigin + performance.now()) * 1000));
    this.#counter = now > this.#counter ? now : this.#counter + 1n;
    const header = new Uint8Array(13);
    header[0] = VERSION;
    header.set(this.#epoch, 1);
    new DataView(header.buffer).setBigUint64(5, this.#counter);
    const aad = new Uint8Array(header.length + this.#path.length);
    aad.set(header);
    aad.set(this.#path, header.length);
    const iv = header.slice(1);
    const body = await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: aad, tagLength: 128 }, this.#key, new Uint8Array(plain));
    const out = new Uint8Array(header.length + body.byteLength);
    out.set(header);
    out.set(new Uint8Array(body), header.length);
    return out;
  }
}
