// Lantern's browser viewer: plays a Lantern broadcast over WebTransport + WebCodecs, the
// newest picture drawn as soon as it is decoded, and sends the player's input back.
//
// The page is served by the host itself (`moq-pub --listen`, `host-daemon --listen`), or
// from any https origin: by default it plays the broadcast of the server it came from. The
// query string can say more:
//   url=    a relay (or another host) to play from       name=  the broadcast [lantern]
//           repeated (or comma-separated): fallbacks, e.g. a cluster's other relays; the
//           page plays from the first that answers and moves on when it fails
//   stats=0 hides the overlay
//   feedback=1  reports this page's path (delay, skipped frames, keyframe requests) even
//           without a grant, for a publisher that takes every viewer's (moq-pub --feedback
//           open); a player with a grant always reports, and a host follows only players'
//   maxSize=WxH, maxKbps=  the largest pictures and fastest stream taken [4096x2304, 100000]
// and the fragment (`#…`, which the browser never sends anywhere) carries the secrets:
//   grant=  the input grant, TOKEN~SECRET (`host-daemon ctl grant`); without one the page
//           is view-only
//   fp=     the server's certificate fingerprint (SHA-256, hex), pinned for WebTransport;
//           comma-separated for several servers
// The page takes them out of the address bar and history as soon as it has read them, and
// keeps them for this tab only (a reload plays on with them).

import * as Net from "@moq/net";
import { ClockOffset, follow, nowUs } from "./clock";
import { PathMeter, encode } from "./feedback";
import { Channel, type InputFigures, Reporter } from "./input";
import { type Credential, parseCredential } from "./seal";
import { Controls } from "./controls";
import { Deaf } from "./deaf";
import { Limits } from "./limits";
import { type Figures, Meter } from "./meter";
import { play, readCatalog } from "./player";

const params = new URLSearchParams(location.search);
/** The servers to play from, in order: the query's, or the one the page came from. */
const urls = params
  .getAll("url")
  .flatMap((list) => list.split(","))
  .filter((one) => one.trim() !== "")
  .map((one) => new URL(one.trim()));
if (urls.length === 0) urls.push(new URL(`${location.protocol}//${location.host}/`));
/** Which of them this session dials. */
let current = 0;
const name = params.get("name") ?? "lantern";
const { grant, fingerprints } = secrets();
const limits = new Limits(params);
const spectatorReports = params.get("feedback") === "1";

/**
 * The grant and the fingerprint from the fragment, which is then cleared from the address
 * bar and history; kept in this tab's session storage (for a reload), per server and name.
 */
function secrets(): { grant?: Credential; fingerprints: string[] } {
  const key = `lantern:${urls[0].host}/${name}`;
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (params.has("grant")) console.warn("lantern: a grant in the query travels to the server: ignored (use #grant=)");
  let held = { grant: fragment.get("grant") ?? undefined, fp: fragment.get("fp") ?? undefined };
  if (held.grant || held.fp) {
    history.replaceState(history.state, "", location.pathname + location.search);
    sessionStorage.setItem(key, JSON.stringify(held));
  } else {
    held = JSON.parse(sessionStorage.getItem(key) ?? "{}");
  }
  const fingerprints = (held.fp ?? "").split(",").filter((fp) => fp !== "");
  if (!fingerprints.every((fp) => /^[0-9a-fA-F]{64}$/.test(fp))) {
    console.warn("lantern: #fp= is not a list of SHA-256 fingerprints (64 hex digits): ignored");
    fingerprints.length = 0;
  }
  return { grant: held.grant ? parseCredential(held.grant) : undefined, fingerprints };
}

/**
 * Where to dial and which certificate to take: a pinned fingerprint turns an http:// server
 * address into https:// with that hash (no fetch over plain HTTP); without one, @moq/net
 * fetches the fingerprint of an http:// server (trustworthy only from the server itself,
 * on loopback) and an https:// one needs a certificate the browser trusts.
 */
function dial(url: URL): [URL, Net.Connection.WebTransportProps] {
  const dialed = new URL(url);
  // A player presents its grant's token (never the secret, which stays in the fragment) to a
  // direct server, which then never holds it back with the spectators; a relay ignores it.
  if (grant) dialed.searchParams.set("grant", grant.token);
  if (fingerprints.length === 0) return [dialed, {}];
  dialed.protocol = "https:";
  const serverCertificateHashes = fingerprints.map((value) => ({ algorithm: "sha-256" as const, value }));
  return [dialed, { serverCertificateHashes }];
}

const message = document.getElementById("message") as HTMLParagraphElement;
const overlay = document.getElementById("overlay") as HTMLPreElement;
const canvas = document.getElementById("picture") as HTMLCanvasElement;
const fullscreen = document.getElementById("fullscreen") as HTMLButtonElement;
const captureMouse = document.getElementById("capture") as HTMLButtonElement;

function say(text: string | undefined) {
  message.hidden = text === undefined;
  message.textContent = text ?? "";
}

/** What this browser lacks of what the viewer needs, if anything. */
function missing(): string | undefined {
  if (typeof WebTransport === "undefined") return "WebTransport";
  if (typeof VideoDecoder === "undefined") return "WebCodecs";
  return undefined;
}

/**
 * What `window.lantern.figures()` returns: the meter's figures and the page's state. The
 * tests read it as lantern-testkit's `PageFigures`, which a test pins to these field lists.
 */
interface PageFigures extends Figures {
  status: string;
  error: string | undefined;
  input: InputFigures | undefined;
  fullscreen: boolean;
  keyboard_locked: boolean;
  reconnects: number;
  relay_restarts: number;
  server: string;
}

const clock = new ClockOffset();
const meter = new Meter(clock);
/** What tests (and curious players) read: `window.lantern`. */
const state = {
  status: "starting",
  error: undefined as string | undefined,
  input: undefined as InputFigures | undefined,
  /** Whether the browser holds Esc and the system keys for the page (fullscreen only). */
  keyboardLocked: false,
  /** Sessions begun after the first: the path, the server or the broadcast went and came back. */
  reconnects: 0,
  /** Of those, the sessions ended because their relay answered a fresh dial and not them. */
  relayRestarts: 0,
  /** The server this session dials (host:port). */
  server: urls[0].host,
};
Object.assign(window, {
  lantern: {
    frames: () => meter.frames,
    figures: (): PageFigures => ({
      ...meter.total(),
      status: state.status,
      error: state.error,
      input: state.input,
      fullscreen: document.fullscreenElement !== null,
      keyboard_locked: state.keyboardLocked,
      reconnects: state.reconnects,
      relay_restarts: state.relayRestarts,
      server: state.server,
    }),
  },
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Wait for `name` to be announced on `handle`; say so while it is not. */
async function announced(handle: Net.Announce.Broadcast, connection: Net.Connection.Established): Promise<Net.Broadcast.Consumer> {
  const active = handle.active.peek();
  if (active) return active;
  const notYet = setTimeout(() => say(`No broadcast "${name}" at ${urls[current].host} yet: waiting for it…`), 1000);
  let dispose = () => {};
  try {
    return await new Promise((resolve, reject) => {
      dispose = handle.active.subscribe((broadcast) => broadcast && resolve(broadcast));
      connection.closed.then(() => reject(new Error("the connection closed")));
    });
  } finally {
    dispose();
    clearTimeout(notYet);
  }
}

/** One connection: play the broadcast (and send input) until either goes away. */
async function session() {
  const url = urls[current];
  state.status = "connecting";
  state.server = url.host;
  say(`Connecting to ${url.host}…`);
  // A redial is bounded (see redialBoundMs): a relay that came back answers a new handshake
  // sooner than the retransmissions of one begun while it was down.
  const connection = freshDial ?? (await connect(url, state.reconnects === 0 ? FIRST_DIAL_MS : redialBoundMs()));
  freshDial = undefined;
  const stop = new AbortController();
  const handle = connection.announcedBroadcast(Net.Path.from(name));
  let controls: Controls | undefined;
  let channel: Channel | undefined;
  let reporter: Reporter | undefined;
  // The round trip: the browser's own QUIC figure where it gives one, else the one the server
  // reports over moq-lite's PROBE stream (whole ms; Chromium's getStats has none yet).
  const rtt = setInterval(async () => {
    const ms = (await connection.stats().catch(() => undefined))?.rtt ?? connection.probe.peek()?.rtt;
    meter.rttMs = ms === undefined ? null : Math.round(ms * 100) / 100;
  }, 1000);
  void follow(url, clock, stop.signal);
  try {
    state.status = "waiting";
    const broadcast = await announced(handle, connection);
    const catalog = await readCatalog(broadcast);
    if (!catalog) throw new Error(`"${name}" ended before its catalog came`);
    if (grant) {
      channel = new Channel(connection, name, grant);
      controls = new Controls(canvas, channel);
      state.input = channel.figures;
    } else if (spectatorReports) {
      reporter = new Reporter(connection, name);
    }
    // A player reports its path (the host's bitrate follows its granted players); a
    // spectator only when asked.
    const reports = channel ?? reporter;
    const path = reports && new PathMeter();
    if (reports && path) {
      const reporting = setInterval(() => {
        const report = path.report(nowUs(), connection.probe.peek()?.estimatedRecvRate);
        if (report) reports.feedback(encode(report));
      }, 10);
      stop.signal.addEventListener("abort", () => clearInterval(reporting));
    }
    captureMouse.hidden = controls === undefined;
    state.status = "playing";
    say(undefined);
    // Playing ends with the broadcast, or with the connection (or its relay restarted).
    connection.closed.then(() => stop.abort());
    watchForRestart(url, connection, stop);
    await play(broadcast, catalog, { canvas, meter, path, limits }, stop.signal);
  } finally {
    stop.abort();
    controls?.close();
    channel?.close();
    reporter?.close();
    clearInterval(rtt);
    handle.close();
    connection.close();
  }
}

/** The first dial's bound. */
const FIRST_DIAL_MS = 10_000;

/** A later dial's bound: 2.5 s, or eight round trips of the path last measured, where a
 * dial takes four or five (the certificate's fetch, QUIC's handshake, WebTransport's CONNECT,
 * moq's SETUP) and a lost packet one more: across a satellite a fixed bound would never let a
 * dial finish. */
function redialBoundMs(): number {
  return Math.max(2_500, 8 * (meter.rttMs ?? 0));
}
/** The wait before redialing after a session that played, doubling while dials fail, up to
 * the most: as moq-sub's, so a relay that comes back is found within about a second. */
const REDIAL_FIRST_MS = 200;
const REDIAL_MAX_MS = 1_000;

/** Why a dial or a session failed, in a line: @moq/net tries several transports and reports
 * their failures together. */
function reason(err: unknown): string {
  if (err instanceof AggregateError) {
    const all = [...new Set(err.errors.map(reason))];
    return all.length > 0 ? all.join("; ") : "no answer";
  }
  return err instanceof Error ? err.message : String(err);
}

/** Dial `url` (WebTransport only), giving up after `ms`. */
async function connect(url: URL, ms: number): Promise<Net.Connection.Established> {
  const [dialed, webtransport] = dial(url);
  return Net.Connection.connect(dialed, {
    websocket: { enabled: false },
    webtransport,
    signal: AbortSignal.timeout(ms),
  });
}

/** The session ended because its relay restarted: the fresh dial that found it, for the next. */
let freshDial: Net.Connection.Established | undefined;

/**
 * While playing, end the session as soon as its relay is found to have restarted under it:
 * the connection has heard nothing for a while (see deaf.ts) and a fresh dial is answered.
 * The browser's idle timeout would end it only seconds later. Where the browser does not
 * count the connection's packets (headless Chromium's getStats has none), what it heard is
 * the media that came, and the standing subscription is what it keeps asking: a Lantern host
 * sends a picture at least every 100 ms, a still one again.
 */
function watchForRestart(url: URL, connection: Net.Connection.Established, stop: AbortController) {
  const deaf = new Deaf();
  let dialing = false;
  let looks = 0;
  const heard = async () => {
    const stats = await connection.stats().catch(() => undefined);
    looks++;
    const received = stats?.packetsReceived ?? meter.bytesReceived;
    return deaf.check(nowUs(), received, stats?.packetsSent ?? looks);
  };
  const watch = setInterval(async () => {
    if (dialing || !(await heard())) return;
    dialing = true;
    try {
      const fresh = await connect(url, redialBoundMs());
      // Answered while this connection still hears nothing: its relay lost it, and the
      // next session goes on over the fresh one.
      if (!stop.signal.aborted && (await heard())) {
        console.warn("lantern: the relay answered a fresh dial and not this connection: it restarted");
        state.relayRestarts++;
        freshDial = fresh;
        stop.abort();
      } else {
        fresh.close();
      }
    } catch {
      // Not answered: the path is dead for now, or the relay still down.
    } finally {
      dialing = false;
    }
  }, 250);
  stop.signal.addEventListener("abort", () => clearInterval(watch));
}

async function run() {
  let backoff = REDIAL_FIRST_MS;
  // Sessions in a row that failed before playing: once each server has had its turn, wait.
  let failed = 0;
  for (;;) {
    const started = performance.now();
    const host = urls[current].host;
    try {
      await session();
      state.error = undefined;
      say(`"${name}" ended: waiting for it to come back…`);
    } catch (err) {
      const text = reason(err);
      state.error = text;
      say(`${host}: ${text}. Trying again…`);
      console.warn("lantern:", err);
    }
    state.status = "reconnecting";
    state.reconnects++;
    // A session that played for a while starts the backoff over.
    const played = performance.now() - started > 10_000;
    failed = played ? 0 : failed + 1;
    // The next server, if there are several: a relay that failed is tried again last (one
    // that restarted and answered the fresh dial is kept).
    if (!freshDial) current = (current + 1) % urls.length;
    backoff = played ? REDIAL_FIRST_MS : Math.min(backoff * 2, REDIAL_MAX_MS);
    // Moving on to another server goes at once; around the whole list, it backs off.
    const movingOn = urls.length > 1 && (played || failed % urls.length !== 0);
    if (!freshDial) await sleep(movingOn ? 100 : backoff);
  }
}

function showFigures() {
  if (params.get("stats") === "0") return;
  setInterval(() => {
    const f = meter.window();
    const ms = (v: number | null) => (v === null ? "–" : `${v.toFixed(1)} ms`);
    // Which latency: the stamp's glass-to-glass, or capture time to shown; on whose clock.
    const from = f.latency_from === "pts" ? "capture→shown" : "glass-to-glass";
    const clockNote = f.clock === "host" ? `host clock ±${f.clock_error_ms?.toFixed(1)} ms` : "local clock";
    const lines = [
      `${f.fps.toFixed(0)} fps  ${(f.kbps / 1000).toFixed(1)} Mb/s  drops ${f.drops}`,
      `${from} ${ms(f.latency_ms_p50)} (p99 ${ms(f.latency_ms_p99)}, ${clockNote})  rtt ${ms(f.rtt_ms)}`,
    ];
    if (f.audio_frames > 0) lines.push(`sound ${ms(f.av_offset_ms)} after picture  drops ${f.audio_drops}`);
    if (state.input) lines.push(`input ${state.input.events} events`);
    overlay.textContent = lines.join("\n");
    overlay.hidden = meter.frames === 0;
  }, 1000);
}

const lacking = missing();
if (lacking) {
  say(`This browser has no ${lacking}: Lantern needs a recent Chromium, Edge or Firefox.`);
  state.status = "unsupported";
  state.error = `no ${lacking}`;
} else {
  fullscreen.addEventListener("click", async () => {
    if (document.fullscreenElement) return document.exitFullscreen();
    await document.documentElement.requestFullscreen({ navigationUI: "hide" });
    // Esc and the system keys go to the game too, where the browser allows it.
    const keyboard = (navigator as { keyboard?: { lock(): Promise<void> } }).keyboard;
    state.keyboardLocked = (await keyboard?.lock().then(() => true).catch(() => false)) ?? false;
  });
  // Leaving fullscreen lets the keys go (the browser unlocks them itself).
  document.addEventListener("fullscreenchange", () => {
    if (!document.fullscreenElement) state.keyboardLocked = false;
  });
  captureMouse.addEventListener("click", () => canvas.requestPointerLock?.());
  showFigures();
  void run();
}
