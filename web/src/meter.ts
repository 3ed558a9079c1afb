// The figures the overlay shows and tests read: pictures shown, frame rate, bitrate, drops,
// glass-to-glass from the stamp (test content), and where the sound sits against the picture.

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
  latency_ms_p50: number | null;
  latency_ms_p99: number | null;
  stamped: number;
  /** Pictures missing between stamped ones: every drop on the way, wherever it happened. */
  stamp_gaps: number;
  audio_frames: number;
  audio_drops: number;
  /** How much later the sound is heard than its picture is shown, ms (+ is sound late). */
  av_offset_ms: number | null;
  rtt_ms: number | null;
}

export class Meter {
  /** Totals since playing began. */
  frames = 0;
  #drops = 0;
  #bytes = 0;
  #audioFrames = 0;
  #audioDrops = 0;
  #latencies: number[] = [];
  /** This window's pictures, bytes and latencies. */
  #windowFrames = 0;
  #windowBytes = 0;
  #windowLatencies: number[] = [];
  #windowStart = performance.now();
  /** Media time (µs) → the wall time it was shown or heard (µs), the newest of each. */
  #lastShown?: { mediaUs: number; atUs: number };
  #lastHeard?: { mediaUs: number; atUs: number };
  #lastStamp?: number;
  #stampGaps = 0;
  rttMs: number | null = null;

  received(bytes: number) {
    this.#bytes += bytes;
    this.#windowBytes += bytes;
  }

  shown(mediaUs: number, atUs: number) {
    this.frames++;
    this.#windowFrames++;
    this.#lastShown = { mediaUs, atUs };
  }

  /** A stamped picture (test content): its number and capture time, and when it was shown. */
  stamped(frame: number, captureUs: number, shownUs: number) {
    if (this.#lastStamp !== undefined && frame > this.#lastStamp) this.#stampGaps += frame - this.#lastStamp - 1;
    this.#lastStamp = frame;
    const ms = (shownUs - captureUs) / 1000;
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
    const figures = this.#figures(this.#windowLatencies, this.#windowFrames / seconds, (this.#windowBytes * 8) / seconds / 1000);
    this.#windowFrames = 0;
    this.#windowBytes = 0;
    this.#windowLatencies = [];
    this.#windowStart = performance.now();
    return figures;
  }

  /** The figures of the whole run. */
  total(): Figures {
    return this.#figures(this.#latencies, null, null);
  }

  #figures(latencies: number[], fps: number | null, kbps: number | null): Figures {
    return {
      frames: this.frames,
      fps: fps === null ? 0 : Math.round(fps * 10) / 10,
      kbps: kbps === null ? 0 : Math.round(kbps),
      drops: this.#drops,
      latency_ms_p50: round(quantile(latencies, 0.5)),
      latency_ms_p99: round(quantile(latencies, 0.99)),
      stamped: this.#latencies.length,
      stamp_gaps: this.#stampGaps,
      audio_frames: this.#audioFrames,
      audio_drops: this.#audioDrops,
      av_offset_ms: round(this.#avOffset()),
      rtt_ms: this.rttMs,
    };
  }
}
