// A connection whose peer may be gone (proto/src/deaf.rs, the same rule): it sends but has
// heard nothing for DEAF_US. A relay that restarted drops the packets of connections it never
// had, so nothing ends this one but the browser's idle timeout (pictures came back about 7 s
// after the return of a relay down for 3 s). A fresh dial tells a gone peer from a dead path:
// it is answered only where the peer is up and the path carries. Pure: every call takes the
// time.

/** Nothing received for this long, while sending, is deaf (µs). */
export const DEAF_US = 2_500_000;
/** At least this many packets sent since the last one came: an answer was due. */
export const DEAF_SENT = 2;

export class Deaf {
  /** Packets received when last seen to change, when (µs), and packets sent then. */
  #heard?: { received: number; since: number; sent: number };

  /**
   * At `nowUs`, with the connection's packets received and sent so far (undefined where the
   * browser does not count them): whether it is deaf.
   */
  check(nowUs: number, received: number | undefined, sent: number | undefined): boolean {
    if (received === undefined || sent === undefined) {
      this.#heard = undefined;
      return false;
    }
    const heard = this.#heard;
    if (heard && heard.received === received) {
      return nowUs - heard.since >= DEAF_US && sent - heard.sent >= DEAF_SENT;
    }
    this.#heard = { received, since: nowUs, sent };
    return false;
  }
}
