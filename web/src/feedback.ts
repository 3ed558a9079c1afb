// What this page tells the host about its path (proto/src/feedback.rs, the same report): a
// player's page measures each video frame as it arrives and sends a 24-byte report every
// 50 ms (at once when it needs a keyframe) on the `feedback` track of its viewer broadcast.
// The host's adaptive bitrate follows its granted players' reports. A report names the newest
// frame that arrived (its timestamp), so the host knows what it sent is still on the way.
//
// The queue is measured without a shared clock: each frame's (arrival − capture) against the
// path's best over the last 10 s: the least of one-second buckets' lower quartiles, so a
// jittery path's rare frame that met no jitter is not the best the others are held to.

const VERSION = 2;
const BYTES = 24;
export const INTERVAL_US = 50_000;
const MAX_WINDOW_MS = 10_000;
const BASE_WINDOW_US = 10_000_000;
const BUCKET_US = 1_000_000;
/** Delays kept for a bucket; an open bucket counts once it has ENOUGH (while another exists). */
const BUCKET_SAMPLES = 256;
const ENOUGH = 8;
const STALL_US = 200_000;
/** The host takes a viewer's reports at most this often (proto/src/rate.rs). */
const MIN_REPORT_GAP_US = 20_000;
const FLAG_KEYFRAME = 1;
const FLAG_STALLED = 2;
const FLAG_NEWEST = 4;
/** A frame this far behind the newest seen starts the count again (a new timeline). */
const NEWEST_RESET_US = 10_000_000;

export interface Report {
  seq: number;
  windowMs: number;
  recvKbps: number;
  queueMs: number;
  skipped: number;
  stalled: boolean;
  keyframe: boolean;
  pathKbps: number;
  /** The newest frame's timestamp (µs on the track's timeline) modulo 2^32, if any. */
  newest: number | undefined;
}

const u16 = (v: number) => Math.min(Math.max(Math.floor(v), 0), 0xffff);
const u32 = (v: number) => Math.min(Math.max(Math.floor(v), 0), 0xffffffff);

export function encode(report: Report): Uint8Array {
  const out = new Uint8Array(BYTES);
  const view = new DataView(out.buffer);
  view.setUint8(0, VERSION);
  view.setUint8(
    1,
    (report.keyframe ? FLAG_KEYFRAME : 0) |
      (report.stalled ? FLAG_STALLED : 0) |
      (report.newest !== undefined ? FLAG_NEWEST : 0),
  );
  view.setUint32(2, report.seq >>> 0);
  view.setUint16(6, u16(report.windowMs));
  view.setUint32(8, u32(report.recvKbps));
  view.setUint16(12, u16(report.queueMs));
  view.setUint16(14, u16(report.skipped));
  view.setUint32(16, u32(report.pathKbps));
  view.setUint32(20, (report.newest ?? 0) >>> 0);
  return out;
}

/** The lower quartile of `delays` (not empty). */
const quartile = (delays: number[]) => [...delays].sort((a, b) => a - b)[Math.floor(delays.length / 4)];

/** The path's best (arrival − capture), as proto/src/feedback.rs's `Floor`. */
class PathFloor {
  /** [bucket start, its lower quartile], closed buckets oldest first. */
  #buckets: [number, number][] = [];
  /** The open bucket's start and its delays. */
  #open: [number, number[]] | undefined;

  /** Take a frame's `delay` arriving at `nowUs`; the path's best now. */
  record(nowUs: number, delay: number): number {
    let open = this.#open;
    if (open && nowUs - open[0] < BUCKET_US) {
      if (open[1].length < BUCKET_SAMPLES) open[1].push(delay);
    } else {
      if (open) this.#buckets.push([open[0], quartile(open[1])]);
      open = this.#open = [nowUs, [delay]];
    }
    while (this.#buckets.length > 0 && nowUs - this.#buckets[0][0] > BASE_WINDOW_US) this.#buckets.shift();
    const best = this.#buckets.map(([, q]) => q);
    if (best.length === 0 || open[1].length >= ENOUGH) best.push(quartile(open[1]));
    return Math.min(...best);
  }
}

/** The page's side: feed it every video frame as it arrives, ask it for a report. */
export class PathMeter {
  #seq = 0;
  #floor = new PathFloor();
  #windowStart: number | undefined;
  #windowBytes = 0;
  #windowQueue: number | undefined;
  #skipped = 0;
  #last: [number, number] | undefined;
  #wantKeyframe = false;
  #asked = false;
  /** When the last report went, µs. */
  #lastReport: number | undefined;
  #newest: number | undefined;

  /**
   * A frame of `bytes` with timestamp `tsUs` (on the track's timeline) arrived at `arrivedUs`;
   * `capturedUs` on the sender's clock, if known.
   */
  frame(arrivedUs: number, tsUs: number, capturedUs: number | undefined, bytes: number, key: boolean) {
    this.#windowStart ??= arrivedUs;
    const seen = this.#newest;
    if (seen === undefined || tsUs >= seen || seen - tsUs > NEWEST_RESET_US) this.#newest = tsUs;
    this.#windowBytes += bytes;
    if (key) this.#wantKeyframe = false;
    if (capturedUs === undefined) {
      this.#last = [arrivedUs, this.#last?.[1] ?? 0];
      return;
    }
    const delay = arrivedUs - capturedUs;
    const queue = Math.max(delay - this.#floor.record(arrivedUs, delay), 0);
    this.#windowQueue = this.#windowQueue === undefined ? queue : Math.min(this.#windowQueue, queue);
    this.#last = [arrivedUs, queue];
  }

  skipped(frames: number) {
    this.#skipped += frames;
  }

  /** The page cannot go on without a keyframe: asked at once, and until one arrives. */
  wantKeyframe() {
    if (!this.#wantKeyframe) {
      this.#wantKeyframe = true;
      this.#asked = false;
    }
  }

  /** The report due at `nowUs`, if one is; `pathBps` is the server's estimate of its path to
   * this page (its window over its RTT, from moq-lite's PROBE), when it tells one. */
  report(nowUs: number, pathBps?: number): Report | undefined {
    if (this.#windowStart === undefined) return undefined;
    const elapsed = Math.max(nowUs - this.#windowStart, 0);
    // At once, though never sooner after the last report than the host takes one.
    const urgent =
      this.#wantKeyframe &&
      !this.#asked &&
      (this.#lastReport === undefined || nowUs - this.#lastReport >= MIN_REPORT_GAP_US);
    if (elapsed < INTERVAL_US && !urgent) return undefined;
    const windowUs = Math.min(Math.max(elapsed, 1000), MAX_WINDOW_MS * 1000);
    const sinceLast = this.#last ? Math.max(nowUs - this.#last[0], 0) : elapsed;
    const queueUs = this.#windowQueue ?? (this.#last?.[1] ?? 0) + sinceLast;
    const report: Report = {
      seq: this.#seq,
      windowMs: windowUs / 1000,
      recvKbps: (this.#windowBytes * 8 * 1000) / windowUs,
      queueMs: queueUs / 1000,
      skipped: this.#skipped,
      stalled: sinceLast > STALL_US,
      keyframe: this.#wantKeyframe,
      pathKbps: pathBps ? Math.max(pathBps / 1000, 1) : 0,
      newest: this.#newest === undefined ? undefined : this.#newest % 2 ** 32,
    };
    this.#seq = (this.#seq + 1) >>> 0;
    this.#asked ||= this.#wantKeyframe;
    this.#windowStart = nowUs;
    this.#lastReport = nowUs;
    this.#windowBytes = 0;
    this.#windowQueue = undefined;
    this.#skipped = 0;
    return report;
  }
}
