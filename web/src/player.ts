// Playing one broadcast: its catalog, its video drawn the moment each picture is decoded, and
// its sound a few milliseconds behind, on @moq/net and @moq/hang's container directly.
//
// @moq/watch holds every decoded picture until a shared clock says it is due (its sync
// buffer), which cost 80 ms here against moq-sub's 6; a remote-play viewer wants the newest
// picture now. Nothing here waits for a clock: a newer group makes the rest of an older one
// late (VideoFrames), the decoder runs with optimizeForLatency, and the canvas gets each
// picture from the decoder's output callback.

import * as Catalog from "@moq/hang/catalog";
import * as Container from "@moq/hang/container";
import type * as Net from "@moq/net";
import { nowUs } from "./clock";
import { Meter } from "./meter";
import type { PathMeter } from "./feedback";
import type { Limits } from "./limits";
import { stampOf } from "./stamp";
import * as z from "zod/mini";

/** A hang catalog, and when its PTS zero was on the host's clock (µs since the UNIX epoch). */
export type Root = Catalog.Root & { clockUs?: number };

/**
 * The broadcast's catalog, or undefined if the broadcast ends first. Each catalog group opens
 * with the whole catalog (later frames patch it); Lantern's publishers write it once.
 */
export async function readCatalog(broadcast: Net.Broadcast.Consumer): Promise<Root | undefined> {
  const track = broadcast.track(Catalog.TRACK).subscribe({ priority: Catalog.PRIORITY.catalog });
  try {
    const frame = await track.readFrame();
    if (!frame) return undefined;
    const json: unknown = JSON.parse(new TextDecoder().decode(frame.payload));
    const parsed = z.safeParse(Catalog.RootSchema, json);
    if (!parsed.success) throw new Error(`the catalog is not a hang catalog: ${parsed.error.message}`);
    return { ...parsed.data, clockUs: clockOf(json) };
  } finally {
    track.close();
  }
}

/**
 * The catalog root's `clock` (hang's Rust catalog has it; this JS schema does not yet): the
 * wall-clock time of PTS zero, in `timescale` units (default µs) since the moq epoch.
 */
function clockOf(json: unknown): number | undefined {
  const clock = (json as { clock?: { wall?: unknown; timescale?: unknown } })?.clock;
  const { wall, timescale = 1_000_000 } = clock ?? {};
  if (typeof wall !== "number" || typeof timescale !== "number" || !(timescale > 0)) return undefined;
  return Catalog.MOQ_EPOCH_UNIX_MILLIS * 1000 + (wall * 1_000_000) / timescale;
}

/** The first rendition the catalog offers of a kind, with its track name. */
function first<T>(renditions: Record<string, T> | undefined): [string, T] | undefined {
  const entries = Object.entries(renditions ?? {});
  return entries[0];
}

/** What playing needs from the page: where pictures go, and the figures it keeps. */
export interface Sink {
  canvas: HTMLCanvasElement;
  meter: Meter;
  /** What the page measures of its path for the host's bitrate (a player's page only). */
  path?: PathMeter;
  /** What the page takes from the publisher. */
  limits: Limits;
}

/**
 * Play `broadcast` until it ends or `stop` aborts. Resolves when playing ended; rejects with
 * what went wrong (no H.264 or AV1 the browser can decode, say).
 */
export async function play(broadcast: Net.Broadcast.Consumer, root: Root, sink: Sink, stop: AbortSignal): Promise<void> {
  const video = first(root.video?.renditions);
  if (!video) throw new Error("the broadcast has no video");
  const audio = first(root.audio?.renditions);
  const players = [playVideo(broadcast, video[0], video[1], root.clockUs, sink, stop)];
  if (audio) players.push(playAudio(broadcast, audio[0], audio[1], sink.meter, stop));
  // Sound is optional: a failure there is reported and the picture plays on.
  const [shown, ...heard] = await Promise.allSettled(players);
  for (const result of heard) {
    if (result.status === "rejected") console.warn("lantern: sound stopped:", result.reason);
  }
  if (shown.status === "rejected") throw shown.reason;
}

type VideoConfig = NonNullable<Root["video"]>["renditions"][string];
type AudioConfig = NonNullable<Root["audio"]>["renditions"][string];

/**
 * The first of `promises` to settle, or undefined once `stop` fires. The stop listener goes as
 * soon as one settles: racing a promise that lives as long as playing does (as this did) keeps
 * one reaction per call, and what it references, until playing ends.
 */
function raceStop<T>(promises: Promise<T>[], stop: AbortSignal): Promise<T | undefined> {
  if (stop.aborted) return Promise.resolve(undefined);
  return new Promise<T | undefined>((resolve, reject) => {
    const onStop = () => resolve(undefined);
    stop.addEventListener("abort", onStop, { once: true });
    const settle = () => stop.removeEventListener("abort", onStop);
    for (const promise of promises) {
      promise.then(
        (value) => {
          settle();
          resolve(value);
        },
        (err) => {
          settle();
          reject(err);
        },
      );
    }
  });
}

/**
 * The newest picture's group, frame by frame. A group is a keyframe and what depends on it;
 * once a newer group begins, whatever of the older one is still to come is late and is
 * dropped (counted), so playing never falls behind the live edge by more than the picture
 * being decoded. (hang's container consumer instead finishes a group before the next.)
 */
class VideoFrames {
  readonly track: Net.Track.Subscriber;
  #format = new Container.Legacy.Format();
  #group?: Net.Group.Consumer;
  /** The next group to begin, once asked for (one listener for the whole group, not one per frame). */
  #newer?: Promise<{ newer: Net.Group.Consumer | undefined }>;
  #first = false;
  /** The current group's next frame, once asked for (a read outlives a look that gave up). */
  #read?: Promise<{ frame: Net.Group.Frame | undefined }>;
  /** Frames look() read ahead, for next() to give first. */
  #looked: Arrived[] = [];
  #stop: AbortSignal;
  /** Called for each frame left unread in a group given up for a newer one. */
  #onSkip: () => void;

  constructor(broadcast: Net.Broadcast.Consumer, name: string, stop: AbortSignal, onSkip: () => void) {
    this.#onSkip = onSkip;
    this.track = broadcast.track(name).subscribe({ priority: Catalog.PRIORITY.video });
    this.#stop = stop;
  }

  /** The next frame to decode, or undefined when the track (or playing) ends. */
  async next(): Promise<Arrived | undefined> {
    const looked = this.#looked.shift();
    if (looked) return looked;
    for (;;) {
      this.#newer ??= this.track.nextGroup().then((newer) => ({ newer }));
      if (!this.#group) {
        const started = await raceStop([this.#newer], this.#stop);
        this.#newer = undefined;
        if (!started?.newer) return undefined;
        this.#start(started.newer);
        continue;
      }
      const group = this.#group;
      this.#read ??= group.readFrame().then((frame) => ({ frame }));
      const next = await raceStop<{ frame: Net.Group.Frame | undefined } | { newer: Net.Group.Consumer | undefined }>(
        [this.#read, this.#newer],
        this.#stop,
      );
      if (next === undefined) return undefined;
      if ("frame" in next) this.#read = undefined;
      if ("newer" in next) {
        this.#newer = undefined;
        if (!next.newer) return undefined;
        this.#start(next.newer);
        continue;
      }
      if (!next.frame) {
        // A group read to its end is closed too: the track keeps each one open until then.
        group.close();
        this.#group = undefined;
        continue;
      }
      const [frame] = this.#format.decode(next.frame.payload);
      // An empty frame marks where a group's content ends.
      if (!frame) continue;
      frame.keyframe = this.#first;
      this.#first = false;
      return { frame, arrivedUs: nowUs() };
    }
  }

  /**
   * Read the current group's next frame ahead, waiting until `untilUs` (nowUs's clock) at
   * most, and keep it for next(): the frame; "newer" when a newer group began first; or
   * undefined when nothing came by then, or the group or playing ended.
   */
  async look(untilUs: number): Promise<Arrived | "newer" | undefined> {
    const group = this.#group;
    if (!group) return undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<{ late: true }>((resolve) => {
      timer = setTimeout(() => resolve({ late: true }), Math.max(untilUs - nowUs(), 0) / 1000);
    });
    try {
      for (;;) {
        this.#read ??= group.readFrame().then((frame) => ({ frame }));
        this.#newer ??= this.track.nextGroup().then((newer) => ({ newer }));
        const next = await raceStop<
          { frame: Net.Group.Frame | undefined } | { newer: Net.Group.Consumer | undefined } | { late: true }
        >([this.#read, this.#newer, late], this.#stop);
        if (next === undefined || "late" in next) return undefined;
        if ("newer" in next) return "newer";
        // The group's end stays read, for next() to close it.
        if (!next.frame) return undefined;
        this.#read = undefined;
        const [frame] = this.#format.decode(next.frame.payload);
        if (!frame) continue;
        frame.keyframe = false;
        const arrived = { frame, arrivedUs: nowUs() };
        this.#looked.push(arrived);
        return arrived;
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /** Give the current group up and wait for the next. */
  skipGroup() {
    this.#group?.close();
    this.#group = undefined;
    this.#read = undefined;
    this.#looked = [];
  }

  #start(group: Net.Group.Consumer) {
    if (this.#group) {
      for (const _ of this.#looked) this.#onSkip();
      while (this.#group.tryReadFrame()) this.#onSkip();
      this.#group.close();
    }
    this.#group = group;
    this.#read = undefined;
    this.#looked = [];
    this.#first = true;
  }

  close() {
    this.#group?.close();
    this.track.close();
  }
}

/** A frame, and when it was read off its group (µs, nowUs's clock). */
interface Arrived {
  frame: Container.Frame;
  arrivedUs: number;
}

/**
 * Whether the group of `key`, the first frame playing read, began well before playing joined
 * (the relay hands a new subscriber the newest group from its keyframe). Its next frames are
 * read ahead (and kept for playing) until they tell, as proto's JoinCheck decides
 * (proto/src/timing.rs, which this follows): a backlog comes in a burst, its media time
 * running ahead of its arrival; a live group's frames come as they are captured.
 */
async function beganBefore(frames: VideoFrames, key: Arrived): Promise<boolean> {
  const until = key.arrivedUs + JOIN_LOOK_US;
  // The group's reader holds its frames already; this bounds only what a look keeps aside.
  for (let looked = 0; looked < MAX_LOOKED; looked++) {
    const next = await frames.look(until);
    if (next === "newer") return true;
    if (!next) return false;
    const media = next.frame.timestamp - key.frame.timestamp;
    const waited = next.arrivedUs - key.arrivedUs;
    if (media - waited > JOIN_BACKLOG_US) return true;
    if (waited >= JOIN_LOOK_US) return false;
  }
  return true;
}

/** A joined group's frames this far ahead of their arrival (µs) are a backlog to skip. */
const JOIN_BACKLOG_US = 150_000;
/** How long after the joining keyframe its group's frames are looked at (µs). */
const JOIN_LOOK_US = 100_000;
/** The most frames a join looks at (a second's at 60 fps could not come within the look). */
const MAX_LOOKED = 64;

/**
 * Sound, packet by packet as the groups arrive (each Opus packet is a group of its own, so a
 * lost one never holds up the next). What arrives too late to play is dropped by the player.
 */
class AudioFrames {
  #track: Net.Track.Subscriber;
  #format = new Container.Legacy.Format();
  #group?: Net.Group.Consumer;
  #stop: AbortSignal;

  constructor(broadcast: Net.Broadcast.Consumer, name: string, stop: AbortSignal) {
    this.#track = broadcast.track(name).subscribe({ priority: Catalog.PRIORITY.audio });
    this.#stop = stop;
  }

  /** The next packet, or undefined at the end. */
  async next(): Promise<Container.Frame | undefined> {
    for (;;) {
      if (!this.#group) {
        this.#group = await raceStop([this.#track.recvGroup()], this.#stop);
        if (!this.#group) return undefined;
      }
      const frame = await raceStop([this.#group.readFrame()], this.#stop);
      if (!frame) {
        this.#group.close();
        this.#group = undefined;
        continue;
      }
      const [packet] = this.#format.decode(frame.payload);
      if (packet) return packet;
    }
  }

  close() {
    this.#group?.close();
    this.#track.close();
  }
}

function hexBytes(hex: string | undefined): Uint8Array | undefined {
  if (!hex) return undefined;
  return Uint8Array.from(hex.match(/../g) ?? [], (byte) => Number.parseInt(byte, 16));
}

async function playVideo(
  broadcast: Net.Broadcast.Consumer,
  name: string,
  config: VideoConfig,
  clockUs: number | undefined,
  sink: Sink,
  stop: AbortSignal,
) {
  const context = sink.canvas.getContext("2d", { alpha: false, desynchronized: true });
  if (!context) throw new Error("no 2D canvas");
  const { meter } = sink;
  let failed: Error | undefined;
  // Pictures in a row without a stamp.
  let unstamped = 0;
  const decoder = new VideoDecoder({
    output: (frame) => {
      const decodedUs = nowUs();
      const { displayWidth: width, displayHeight: height } = frame;
      // A stream whose parameter sets say more than its catalog did: ends here.
      try {
        sink.limits.checkSize(frame.codedWidth, frame.codedHeight, "the stream");
      } catch (err) {
        failed = err as Error;
        return frame.close();
      }
      if (sink.canvas.width !== width || sink.canvas.height !== height) {
        sink.canvas.width = width;
        sink.canvas.height = height;
      }
      context.drawImage(frame, 0, 0);
      meter.shown(frame.timestamp, decodedUs, clockUs === undefined ? undefined : clockUs + frame.timestamp);
      // The stamp (test content only) gives glass-to-glass; reading it copies one strip and
      // holds the picture until then. A stream without one is only looked at once a second.
      if (unstamped >= STAMP_GIVE_UP && ++unstamped % STAMP_RETRY !== 0) return frame.close();
      stampOf(frame)
        .then((stamp) => {
          if (stamp) {
            unstamped = 0;
            meter.stamped(stamp.frame, stamp.captureUs, decodedUs);
          } else if (unstamped < STAMP_GIVE_UP) {
            unstamped++;
          }
        })
        .catch((err) => console.debug("lantern: no stamp read:", err))
        .finally(() => frame.close());
    },
    error: (err) => {
      failed = err;
    },
  });
  sink.limits.checkSize(config.codedWidth, config.codedHeight, "the catalog");
  const description = hexBytes(config.description);
  // H.264's parameter sets are read before the decoder's: in the catalog and in band.
  const framing = /^avc[13]\./.test(config.codec) ? sink.limits.checkDescription(description) : undefined;
  const decoderConfig: VideoDecoderConfig = {
    codec: config.codec,
    description,
    codedWidth: config.codedWidth,
    codedHeight: config.codedHeight,
    optimizeForLatency: true,
  };
  const { supported } = await VideoDecoder.isConfigSupported(decoderConfig);
  if (!supported) throw new Error(`this browser cannot decode ${config.codec}`);
  decoder.configure(decoderConfig);
  const frames = new VideoFrames(broadcast, name, stop, () => meter.dropped());
  // Joining: a first group that began well before is skipped for the next keyframe, which
  // is live (as moq-sub's default join).
  let joining = true;
  // The decoder starts at a keyframe.
  let needKey = true;
  try {
    for (let arrived = await frames.next(); arrived; arrived = await frames.next()) {
      const { frame, arrivedUs } = arrived;
      if (failed) throw failed;
      sink.limits.admit(frame.payload.byteLength);
      if (framing) sink.limits.checkFrame(frame.payload, framing);
      meter.received(frame.payload.byteLength);
      const capturedUs = clockUs === undefined ? undefined : clockUs + frame.timestamp;
      sink.path?.frame(arrivedUs, frame.timestamp, capturedUs, frame.payload.byteLength, frame.keyframe);
      if (joining) {
        joining = false;
        if (await beganBefore(frames, arrived)) {
          meter.joinedMidGroup();
          frames.skipGroup();
          // Rather than wait a whole group for the next keyframe, ask for one.
          sink.path?.wantKeyframe();
          continue;
        }
      }
      // A decoder that cannot keep up (a weak machine, a large picture) would have frames
      // queue in it and show them ever later: skip to the next keyframe instead, and ask for
      // one (moq-sub does the same, see proto/src/backlog.rs).
      if (!frame.keyframe && !needKey && decoder.decodeQueueSize > MAX_DECODE_QUEUE) {
        needKey = true;
        meter.behind();
        sink.path?.wantKeyframe();
        continue;
      }
      if (needKey && !frame.keyframe) {
        meter.dropped();
        sink.path?.wantKeyframe();
        continue;
      }
      needKey = false;
      decoder.decode(new EncodedVideoChunk({ type: frame.keyframe ? "key" : "delta", data: frame.payload, timestamp: frame.timestamp }));
    }
    if (failed) throw failed;
  } finally {
    frames.close();
    if (decoder.state !== "closed") decoder.close();
  }
}

/** Frames waiting in the decoder beyond which it is behind (150 ms at 60 fps; a decoder that
 * keeps up, configured for latency, holds one or two). */
const MAX_DECODE_QUEUE = 9;
/** Pictures in a row without a stamp before the stream is taken for one that has none. */
const STAMP_GIVE_UP = 120;
/** How often such a stream is looked at again (a session's app may start stamping later). */
const STAMP_RETRY = 60;

/** How far ahead of the audio clock sound is scheduled: room for network jitter. */
const AUDIO_LEAD_S = 0.02;
/** Sound queued further ahead than this is dropped: it would play late forever after. So is
 * sound this much older than the newest packet read: after a hiccup (the page held, a burst
 * off the network) the fresh sound plays, not the first tenth of a second of the stale. */
const AUDIO_BACKLOG_S = 0.1;

async function playAudio(broadcast: Net.Broadcast.Consumer, name: string, config: AudioConfig, meter: Meter, stop: AbortSignal) {
  const context = new AudioContext({ latencyHint: "interactive", sampleRate: config.sampleRate });
  // Browsers keep sound off until the player touches the page (autoplay policy).
  if (context.state === "suspended") {
    const resume = () => void context.resume();
    for (const type of ["pointerdown", "keydown"]) window.addEventListener(type, resume, { once: true, signal: stop });
  }
  let next = 0;
  // The media time (µs) of the last packet given to the decoder (the last, not the greatest:
  // a stream that starts over starts its times over).
  let lastReadUs = -Infinity;
  const decoder = new AudioDecoder({
    output: (data) => {
      try {
        const now = context.currentTime;
        if (next - now > AUDIO_BACKLOG_S || lastReadUs - data.timestamp > AUDIO_BACKLOG_S * 1e6) {
          meter.audioDropped();
          return;
        }
        const buffer = context.createBuffer(data.numberOfChannels, data.numberOfFrames, data.sampleRate);
        for (let channel = 0; channel < data.numberOfChannels; channel++) {
          data.copyTo(buffer.getChannelData(channel), { planeIndex: channel, format: "f32-planar" });
        }
        const at = Math.max(next, now + AUDIO_LEAD_S);
        const source = context.createBufferSource();
        source.buffer = buffer;
        source.connect(context.destination);
        source.start(at);
        next = at + buffer.duration;
        // When this sound reaches the speaker, on the page's clock.
        const heardUs = nowUs() + (at - now + context.outputLatency + context.baseLatency) * 1e6;
        meter.heard(data.timestamp, heardUs);
      } finally {
        data.close();
      }
    },
    error: (err) => console.warn("lantern: audio decoder:", err),
  });
  const decoderConfig: AudioDecoderConfig = {
    codec: config.codec,
    sampleRate: config.sampleRate,
    numberOfChannels: config.numberOfChannels,
    description: hexBytes(config.description),
  };
  const { supported } = await AudioDecoder.isConfigSupported(decoderConfig);
  if (!supported) throw new Error(`this browser cannot decode ${config.codec} sound`);
  decoder.configure(decoderConfig);
  const frames = new AudioFrames(broadcast, name, stop);
  try {
    for (let frame = await frames.next(); frame && decoder.state !== "closed"; frame = await frames.next()) {
      lastReadUs = frame.timestamp;
      decoder.decode(new EncodedAudioChunk({ type: "key", data: frame.payload, timestamp: frame.timestamp }));
      // Chromium's decoder holds its output back (half a second here) until more input or a
      // flush; every Opus packet stands alone, so flushing after each costs nothing else.
      void decoder.flush().catch(() => {});
    }
  } finally {
    frames.close();
    if (decoder.state !== "closed") decoder.close();
    await context.close();
  }
}
