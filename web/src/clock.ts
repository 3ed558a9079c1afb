// How far this page's clock is from the host's. The host gives every frame its capture time
// (µs since the UNIX epoch, on its clock); a picture's latency is then
//   shown (on this page's clock) + offset − captured,   offset = host's clock − this clock.
//
// Where the stream's server answers `GET /clock` (moq-pub and host-daemon with --listen), the
// offset is estimated as NTP does it: the host's reading against the middle of the request's
// round trip. The reading was taken somewhere inside that round trip, so the estimate is off by
// at most half of it; of the recent exchanges the quickest one wins. A relay has no /clock:
// then the page trusts its own clock (as moq-sub does), and says so.

/** Now on this page's clock, µs since the UNIX epoch. */
export function nowUs(): number {
  return (performance.timeOrigin + performance.now()) * 1000;
}

export interface Offset {
  /** "host": estimated against the host's /clock; "local": this page's clock is trusted. */
  source: "host" | "local";
  /** Host's clock − this page's clock, µs. */
  offsetUs: number;
  /** The most the estimate can be off by, µs (half its round trip); null when not estimated. */
  errorUs: number | null;
}

/** Exchanges kept: a slow one (a busy host, a queue) is outrun by a quicker neighbour. */
const KEPT = 8;

/** The estimate from round trips to the host's clock: pure, fed by [`follow`]. */
export class ClockOffset {
  #samples: { offsetUs: number; errorUs: number }[] = [];
  /** The estimate, chosen once per exchange: every shown picture reads it. */
  #best: Offset = { source: "local", offsetUs: 0, errorUs: null };

  /** One exchange: asked at `sentUs`, answered `hostUs` (the host's clock), back at `receivedUs`. */
  add(sentUs: number, hostUs: number, receivedUs: number) {
    if (!(receivedUs >= sentUs) || !Number.isFinite(hostUs)) return;
    this.#samples.push({ offsetUs: hostUs - (sentUs + receivedUs) / 2, errorUs: (receivedUs - sentUs) / 2 });
    if (this.#samples.length > KEPT) this.#samples.shift();
    const quickest = this.#samples.reduce((a, b) => (b.errorUs < a.errorUs ? b : a));
    this.#best = { source: "host", ...quickest };
  }

  get(): Offset {
    return this.#best;
  }
}

/** Ask `server`'s /clock: eight quick exchanges, then one every 10 s, until `signal`. A server
 * without one (a relay) is asked once and then left alone; the offset stays "local". */
export async function follow(server: URL, offset: ClockOffset, signal: AbortSignal): Promise<void> {
  // A direct server's MoQ URL serves HTTP too (the certificate's fingerprint, this page).
  const url = new URL("/clock", server);
  for (let exchange = 0; !signal.aborted; exchange++) {
    const sentUs = nowUs();
    let text: string;
    try {
      const response = await fetch(url, { cache: "no-store", signal: AbortSignal.any([signal, AbortSignal.timeout(2000)]) });
      if (!response.ok) return;
      text = await response.text();
    } catch {
      if (exchange === 0) return;
      text = "";
    }
    if (/^\d+$/.test(text.trim())) offset.add(sentUs, Number(text), nowUs());
    await new Promise((resolve) => setTimeout(resolve, exchange < KEPT ? 50 : 10_000));
  }
}
