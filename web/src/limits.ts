// What the page takes from a publisher (a stranger): pictures up to a size and a stream up to
// a rate, as moq-sub's --max-size and --max-kbps (moq-sub/src/decode.rs). The query can say
// otherwise: `maxSize=WxH` (default 4096x2304), `maxKbps=` (default 100000). Sizes are checked
// where the publisher declares them, before a decoder sees them: the catalog, its avcC, and
// every parameter set that comes in band.

import { type Framing, avcc, spsSize, spsUnits } from "./h264";

/** The window the rate is measured over, ms; one frame may hold a second's worth. */
const WINDOW_MS = 2000;

export class Limits {
  readonly maxWidth: number;
  readonly maxHeight: number;
  readonly maxKbps: number;
  #windowStart = performance.now();
  #windowBytes = 0;

  constructor(params: URLSearchParams) {
    const [w, h] = (params.get("maxSize") ?? "").split("x").map(Number);
    const sized = Number.isInteger(w) && Number.isInteger(h) && w >= 16 && h >= 16;
    [this.maxWidth, this.maxHeight] = sized ? [w, h] : [4096, 2304];
    const kbps = Number(params.get("maxKbps"));
    this.maxKbps = Number.isFinite(kbps) && kbps >= 100 ? kbps : 100_000;
  }

  /** Throws when `from` declares pictures above the limit. */
  checkSize(width: number | undefined, height: number | undefined, from: string) {
    if ((width ?? 0) > this.maxWidth || (height ?? 0) > this.maxHeight) {
      throw new Error(`refusing the stream: ${from} declares ${width}x${height} pictures, above this viewer's ${this.maxWidth}x${this.maxHeight} (maxSize=)`);
    }
  }

  /**
   * Throws when the parameter sets of an H.264 track's `description` (an avcC) declare
   * pictures above the limit; the framing of the track's frames, for `checkFrame`.
   */
  checkDescription(description: Uint8Array | undefined): Framing {
    if (!description) return "annexb";
    const { framing, sps } = avcc(description);
    for (const unit of sps) this.checkSize(...spsSize(unit), "the catalog's parameter set");
    return framing;
  }

  /** Throws when a parameter set in an H.264 frame declares pictures above the limit. */
  checkFrame(payload: Uint8Array, framing: Framing) {
    for (const unit of spsUnits(payload, framing)) this.checkSize(...spsSize(unit), "the stream's parameter set");
  }

  /** Throws when a frame of `bytes`, with those before it, is above the rate. */
  admit(bytes: number) {
    const second = (this.maxKbps * 1000) / 8;
    if (bytes > second) {
      throw new Error(`refusing the stream: a ${Math.round(bytes / 1000)} kB frame, above one second at this viewer's ${this.maxKbps} kbit/s (maxKbps=)`);
    }
    const now = performance.now();
    if (now - this.#windowStart >= WINDOW_MS) {
      this.#windowStart = now;
      this.#windowBytes = 0;
    }
    this.#windowBytes += bytes;
    if (this.#windowBytes > (second * WINDOW_MS) / 1000) {
      throw new Error(`refusing the stream: the publisher sends over ${this.maxKbps} kbit/s (maxKbps=)`);
    }
  }
}
