// The figures the overlay shows and tests read: pictures shown, frame rate, bitrate, drops,
// latency, and where the sound sits against the picture.
//
// Latency is taken two ways, both on the host's clock (see ./clock): glass-to-glass from the
// stamp in the picture (test content), and for any picture from its timestamp, the capture
// time the host gave it. The stamp is the figure when there is one. On stamped content the
// page also keeps Salsify's frame delay, as moq-sub does (proto/src/frame_delay.rs): for every
// source frame, capture → it or a newer frame shown; stalls; the share of frames shown.
// Everything is kept in bounded memory (./histogram).

import type { ClockOffset } from "./clock";
import { Histogram } from "./histogram";

const round = (ms: number | null) => (ms === null ? null : Math.round(ms * 100) / 100);
const ms = (us: number | null) => round(us === null ? null : us / 1000);
/** The screen unchanged this long is a stall, and this long one that spoils play (µs). */
const STALL_US = 200_000;
const LONG_STALL_US = 500_000;
/** A jump in frame numbers beyond this (18 minutes at 60 fps) is a new source, not frames
 * lost; it also bounds what one picture can cost. */
const MAX_JUMP = 1 << 16;

/** How far back the A/V offset looks: lip sync is heard over a span, not one packet. */
const AV_SPAN_US = 1_000_000;
/** Samples kept per side within that span (60 pictures or 50 packets a second fit). */
const AV_SAMPLES = 240;

/** The median of one side's delays (shown or heard − media time) over the last span. A
 * snapshot of the newest pair would swing by the length of any hiccup: after the page stalls,
 * a burst of late pictures or sound plays out within a tenth of a second. */
class RecentDelay {
  #samples: { atUs: number; delayUs: number }[] = [];

  add(atUs: number, delayUs: number) {
    this.#samples.push({ atUs, delayUs });
    const from = atUs - AV_SPAN_US;
    let expired = 0;
    while (expired < this.#samples.length && this.#samples[expired].atUs < from) expired++;
    this.#samples.splice(0, Math.max(expired, this.#samples.length - AV_SAMPLES));
  }

  median(): number | null {
    if (this.#samples.length === 0) return null;
    const sorted = this.#samples.map((s) => s.delayUs).sort((a, b) => a - b);
    return sorted[sorted.length >> 1];
  }
}

/** Salsify's per-frame delay (see proto's frame_delay, which this follows line for line). */
class FrameDelay {
  #newest?: { frame: number; captureUs: number };
  #lastShownUs?: number;
  delays = new Histogram();
  shown = 0;
  stalls = 0;
  longStalls = 0;

  /** Frame `frame`, captured at `captureUs`, shown at `shownUs` (one clock). */
  record(frame: number, captureUs: number, shownUs: number) {
    let from = this.#newest;
    if (from && frame <= from.frame) return;
    if (from && frame - from.frame > MAX_JUMP) from = undefined;
    if (this.#lastShownUs !== undefined) {
      const gap = shownUs - this.#lastShownUs;
      if (gap > STALL_US) this.stalls++;
      if (gap > LONG_STALL_US) this.longStalls++;
    }
    this.#lastShownUs = shownUs;
    this.shown++;
    if (!from) {
      this.delays.record(shownUs - captureUs);
    } else {
      const span = frame - from.frame;
      for (let step = 1; step <= span; step++) {
        const captured = from.captureUs + ((captureUs - from.captureUs) * step) / span;
        this.delays.record(shownUs - captured);
      }
    }
    this.#newest = { frame, captureUs };
  }
}

/** One second's (or the whole run's) figures. */
export interface Figures {
  frames: number;
  fps: number;
  kbps: number;
  drops: number;
  /** Frames skipped because the decoder fell behind the stream (as moq-sub's `behind_skipped`). */
  behind_skipped: number;
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
  /** How much later the sound is heard than its picture is shown, ms (+ is sound late), as
   * the medians of the last second have it. */
  av_offset_ms: number | null;
  rtt_ms: number | null;
  /** Salsify's frame delay over the run (stamped content), and the share of frames shown. */
  frame_delay_ms_p50: number | null;
  frame_delay_ms_p95: number | null;
  frame_delay_ms_p99: number | null;
  frame_delay_ms_max: number | null;
  shown_fraction: number | null;
  stalls: number;
  long_stalls: number;
  /** The first frame's arrival → the first picture shown: what joining cost (as moq-sub's). */
  join_ms: number | null;
  /** Whether the group playing joined into had begun before (its backlog was skipped for
   * the next keyframe rather than shown late). */
  joined_mid_group: boolean;
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
  #behindSkipped = 0;
  #bytes = 0;
  /** When the first byte came (performance.now()), for the whole run's rates. */
  #firstByteAt?: number;
  #audioFrames = 0;
  #audioDrops = 0;
  #latencies = new Histogram();
  #ptsLatencies = new Histogram();
  #frameDelay = new FrameDelay();
  /** This window's pictures, bytes and latencies. */
  #windowFrames = 0;
  #windowBytes = 0;
  #windowLatencies = new Histogram();
  #windowPtsLatencies = new Histogram();
  #windowStart = performance.now();
  /** Each side's delay, shown or heard − media time (µs), over the last second. */
  #shownDelay = new RecentDelay();
  #heardDelay = new RecentDelay();
  #lastStamp?: number;
  #stampGaps = 0;
  #joinedMidGroup = false;
  /** The first frame's arrival → the first picture shown (ms), once shown. */
  #joinMs: number | null = null;
  rttMs: number | null = null;

  constructor(readonly clock: ClockOffset) {}

  /** `atUs` (this page's clock) − `thenUs` (the host's), µs. */
  #since(thenUs: number, atUs: number): number {
    return atUs + this.clock.get().offsetUs - thenUs;
  }

  /** Media bytes received so far. */
  get bytesReceived(): number {
    return this.#bytes;
  }

  received(bytes: number) {
    this.#firstByteAt ??= performance.now();
    this.#bytes += bytes;
    this.#windowBytes += bytes;
  }

  /** A picture of media time `mediaUs` shown at `atUs`; captured at `captureUs` (host's clock) if known. */
  shown(mediaUs: number, atUs: number, captureUs: number | undefined) {
    this.frames++;
    this.#windowFrames++;
    if (this.#joinMs === null && this.#firstByteAt !== undefined) this.#joinMs = performance.now() - this.#firstByteAt;
    this.#shownDelay.add(atUs, atUs - mediaUs);
    if (captureUs === undefined) return;
    const us = this.#since(captureUs, atUs);
    this.#ptsLatencies.record(us);
    this.#windowPtsLatencies.record(us);
  }

  /** A stamped picture (test content): its number and capture time, and when it was shown. */
  stamped(frame: number, captureUs: number, shownUs: number) {
    if (this.#lastStamp !== undefined && frame > this.#lastStamp) this.#stampGaps += frame - this.#lastStamp - 1;
    this.#lastStamp = frame;
    const us = this.#since(captureUs, shownUs);
    this.#latencies.record(us);
    this.#windowLatencies.record(us);
    this.#frameDelay.record(frame, captureUs, shownUs + this.clock.get().offsetUs);
  }

  /** Playing joined a group already under way, and waits for the next keyframe. */
  joinedMidGroup() {
    this.#joinedMidGroup = true;
  }

  dropped() {
    this.#drops++;
  }

  /** A frame skipped because the decoder is behind (also a drop). */
  behind() {
    this.#behindSkipped++;
    this.#drops++;
  }

  heard(mediaUs: number, atUs: number) {
    this.#audioFrames++;
    this.#heardDelay.add(atUs, atUs - mediaUs);
  }

  audioDropped() {
    this.#audioDrops++;
  }

  /** Sound's delay against the picture: each one's (shown or heard − media time) over the
   * last second, medians compared. */
  #avOffset(): number | null {
    const video = this.#shownDelay.median();
    const audio = this.#heardDelay.median();
    return video === null || audio === null ? null : (audio - video) / 1000;
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
    this.#windowLatencies.clear();
    this.#windowPtsLatencies.clear();
    this.#windowStart = performance.now();
    return figures;
  }

  /** The figures of the whole run (its rates from the first byte on, as moq-sub's closing line). */
  total(): Figures {
    const seconds = this.#firstByteAt === undefined ? 0 : (performance.now() - this.#firstByteAt) / 1000;
    const [fps, kbps] = seconds > 0 ? [this.frames / seconds, (this.#bytes * 8) / seconds / 1000] : [null, null];
    return this.#figures(this.#latencies, this.#ptsLatencies, fps, kbps);
  }

  #figures(latencies: Histogram, ptsLatencies: Histogram, fps: number | null, kbps: number | null): Figures {
    const stamped = latencies.count > 0;
    const clock = this.clock.get();
    const delay = this.#frameDelay;
    const sourceFrames = delay.delays.count;
    return {
      frames: this.frames,
      fps: fps === null ? 0 : Math.round(fps * 10) / 10,
      kbps: kbps === null ? 0 : Math.round(kbps),
      drops: this.#drops,
      behind_skipped: this.#behindSkipped,
      latency_ms_p50: ms((stamped ? latencies : ptsLatencies).quantile(0.5)),
      latency_ms_p99: ms((stamped ? latencies : ptsLatencies).quantile(0.99)),
      latency_from: stamped ? "stamp" : ptsLatencies.count > 0 ? "pts" : null,
      pts_to_shown_ms_p50: ms(ptsLatencies.quantile(0.5)),
      pts_to_shown_ms_p99: ms(ptsLatencies.quantile(0.99)),
      stamped: this.#latencies.count,
      stamp_gaps: this.#stampGaps,
      audio_frames: this.#audioFrames,
      audio_drops: this.#audioDrops,
      av_offset_ms: round(this.#avOffset()),
      rtt_ms: this.rttMs,
      frame_delay_ms_p50: ms(delay.delays.quantile(0.5)),
      frame_delay_ms_p95: ms(delay.delays.quantile(0.95)),
      frame_delay_ms_p99: ms(delay.delays.quantile(0.99)),
      frame_delay_ms_max: ms(delay.delays.max),
      shown_fraction: sourceFrames ? Math.round((delay.shown / sourceFrames) * 1000) / 1000 : null,
      stalls: delay.stalls,
      long_stalls: delay.longStalls,
      join_ms: round(this.#joinMs),
      joined_mid_group: this.#joinedMidGroup,
      clock: clock.source,
      clock_offset_ms: round(clock.offsetUs / 1000) ?? 0,
      clock_error_ms: clock.errorUs === null ? null : round(clock.errorUs / 1000),
    };
  }
}
