// The figures the overlay shows and tests read: pictures shown, frame rate, bitrate, drops,
// latency, and where the sound sits against the picture.
//
// Latency is taken two ways, both on the host's clock (see ./clock): glass-to-glass from the
// stamp in the picture (test content), and for any picture from its timestamp, the capture
// time the host gave it. The stamp is the figure when there is one.

import type { ClockOffset } from "./clock";

/** The q-quantile of `values`, or null when there are none. */
function quantile(values: number[], q: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

const round = (ms: number | null) => (ms === null ? null : Math.round(ms * 100) / 100);

/** One second's (or the whole run's) figures. */
export interface Figures {
  frames: number;
  fps: number;
  kbps: number;
  drops: number;
  /** Glass-to-glass from the stamp, else capture timestamp to shown; which in latency_from. */
  latency_ms_p50: number | null;
  latency_ms_p99: number | null;
  latency_from: "stamp" | "pts" | null;
  pts_to_shown_ms_p50: number | null;
  pts_to_shown_ms_p99: number | null;
  stamped: number;
  /** Pictures missing between stamped ones: every drop on the way, wherever it happened. */
  stamp_gaps: number;
  audio_frames: number;
  audio_drops: number;
  /** How much later the sound is heard than its picture is shown, ms (+ is sound late). */
  av_offset_ms: number | null;
  rtt_ms: number | null;
  /** Whose clock the latencies are on: "host" (estimated offset) or "local" (trusted). */
  clock: "host" | "local";
  clock_offset_ms: number;
  /** The most the offset can be off by (half the quickest exchange's round trip). */
  clock_error_ms: number | null;
}

export class Meter {
  /** Totals since playing began. */
  frames = 0;
  #drops = 0;
  #bytes = 0;
  #audioFrames = 0;
  #audioDrops = 0;
  #latencies: number[] = [];
  #ptsLatencies: number[] = [];
  /** This window's pictures, bytes and latencies. */
  #windowFrames = 0;
  #windowBytes = 0;
  #windowLatencies: number[] = [];
  #windowPtsLatencies: number[] = [];
  #windowStart = performance.now();
  /** Media time (µs) → the wall time it was shown or heard (µs), the newest of each. */
  #lastShown?: { mediaUs: number; atUs: number };
  #lastHeard?: { mediaUs: number; atUs: number };
  #lastStamp?: number;
  #stampGaps = 0;
  rttMs: number | null = null;

  constructor(readonly clock: ClockOffset) {}

  /** `atUs` (this page's clock) − `thenUs` (the host's), ms. */
  #since(thenUs: number, atUs: number): number {
    return (atUs + this.clock.get().offsetUs - thenUs) / 1000;
  }

  received(bytes: number) {
    this.#bytes += bytes;
    this.#windowBytes += bytes;
  }

  /** A picture of media time `mediaUs` shown at `atUs`; captured at `captureUs` (host's clock) if known. */
  shown(mediaUs: number, atUs: number, captureUs: number | undefined) {
    this.frames++;
    this.#windowFrames++;
    this.#lastShown = { mediaUs, atUs };
    if (captureUs === undefined) return;
    const ms = this.#since(captureUs, atUs);
    this.#ptsLatencies.push(ms);
    this.#windowPtsLatencies.push(ms);
  }

  /** A stamped picture (test content): its number and capture time, and when it was shown. */
  stamped(frame: number, captureUs: number, shownUs: number) {
    if (this.#lastStamp !== undefined && frame > this.#lastStamp) this.#stampGaps += frame - this.#lastStamp - 1;
    this.#lastStamp = frame;
    const ms = this.#since(captureUs, shownUs);
    this.#latencies.push(ms);
    this.#windowLatencies.push(ms);
  }

  dropped() {
    this.#drops++;
  }

  heard(mediaUs: number, atUs: number) {
    this.#audioFrames++;
    this.#lastHeard = { mediaUs, atUs };
  }

  audioDropped() {
    this.#audioDrops++;
  }

  /** Sound's delay against the picture: each one's (shown or heard − media time), compared. */
  #avOffset(): number | null {
    if (!this.#lastShown || !this.#lastHeard) return null;
    const video = this.#lastShown.atUs - this.#lastShown.mediaUs;
    const audio = this.#lastHeard.atUs - this.#lastHeard.mediaUs;
    return (audio - video) / 1000;
  }

  /** The figures since the last call, and a new window. */
  window(): Figures {
    const seconds = Math.max((performance.now() - this.#windowStart) / 1000, 1e-3);
    const figures = this.#figures(
      this.#windowLatencies,
      this.#windowPtsLatencies,
      this.#windowFrames / seconds,
      (this.#windowBytes * 8) / seconds / 1000,
    );
    this.#windowFrames = 0;
    this.#windowBytes = 0;
    this.#windowLatencies = [];
    this.#windowPtsLatencies = [];
    this.#windowStart = performance.now();
    return figures;
  }

  /** The figures of the whole run. */
  total(): Figures {
    return this.#figures(this.#latencies, this.#ptsLatencies, null, null);
  }

  #figures(latencies: number[], ptsLatencies: number[], fps: number | null, kbps: number | null): Figures {
    const stamped = latencies.length > 0;
    const clock = this.clock.get();
    return {
      frames: this.frames,
      fps: fps === null ? 0 : Math.round(fps * 10) / 10,
      kbps: kbps === null ? 0 : Math.round(kbps),
      drops: this.#drops,
      latency_ms_p50: round(quantile(stamped ? latencies : ptsLatencies, 0.5)),
      latency_ms_p99: round(quantile(stamped ? latencies : ptsLatencies, 0.99)),
      latency_from: stamped ? "stamp" : ptsLatencies.length > 0 ? "pts" : null,
      pts_to_shown_ms_p50: round(quantile(ptsLatencies, 0.5)),
      pts_to_shown_ms_p99: round(quantile(ptsLatencies, 0.99)),
      stamped: this.#latencies.length,
      stamp_gaps: this.#stampGaps,
      audio_frames: this.#audioFrames,
      audio_drops: this.#audioDrops,
      av_offset_ms: round(this.#avOffset()),
      rtt_ms: this.rttMs,
      clock: clock.source,
      clock_offset_ms: round(clock.offsetUs / 1000) ?? 0,
      clock_error_ms: clock.errorUs === null ? null : round(clock.errorUs / 1000),
    };
  }
}
