// The player's input, going to the host on the same connection the picture comes in on.
//
// The page publishes its own broadcast, `<name>/viewer/<id>` (net/src/input.rs): an `input`
// track of datagrams, one message each in the input format (proto/src/input/mod.rs), sealed
// with the grant's secret (seal.ts), and a `grant` track with the grant's public token.
// Without a grant the page is view-only: nothing is published, nothing is sent (but its path
// reports, when asked with `?feedback=1`: see Reporter).
//
// Like moq-sub's window (and proto's Outbox), every message carries a sequence number, its
// send time, the full held set (keys and buttons), so a lost datagram never leaves a key
// stuck, and the key, button and touch edges of its last few messages, so a lost datagram
// never loses a press or a release: each edge rides the next 3 messages and every message for
// 100 ms, and when nothing else goes out it is repeated on its own (16, 48 and 112 ms on).
// The held set goes again every 250 ms while anything is held, and everything is released
// when the page loses focus or goes away.

import * as Net from "@moq/net";
import { nowUs } from "./clock";
import { USAGES } from "./keys";
import { type Credential, Sealer } from "./seal";

const VERSION = 2;
const MAX_DATAGRAM = 900;
const MAX_HELD_KEYS = 32;
const HEARTBEAT_MS = 250;
const MAX_EDGES = 16;
const EDGE_BYTES = 8;
/** A touch point's phase that moves it (the others press or release it: edges). */
const TOUCH_MOVE = 1;
const REPEATS = 3;
const REPEAT_SPAN_MS = 100;
const REPEAT_FIRST_MS = 16;

export type Event =
  | { kind: "key"; usage: number; down: boolean }
  | { kind: "pointer"; x: number; y: number }
  | { kind: "motion"; dx: number; dy: number }
  | { kind: "button"; button: number; down: boolean }
  | { kind: "wheel"; dx: number; dy: number }
  | { kind: "gamepad"; pad: Pad }
  | { kind: "touch"; id: number; phase: number; x: number; y: number };

/** A gamepad's whole state in the W3C standard layout, as the format carries it. */
export interface Pad {
  index: number;
  connected: boolean;
  buttons: number;
  /** Left x, left y, right x, right y: −32767..32767, + is right and down. */
  sticks: [number, number, number, number];
  /** Left and right, 0..65535. */
  triggers: [number, number];
}

const clampI16 = (v: number) => Math.max(-32768, Math.min(32767, Math.round(v)));
const clampU16 = (v: number) => Math.max(0, Math.min(65535, Math.round(v)));

/** A key, button or touch edge of an earlier message, and that message's number. */
export interface Edge {
  seq: bigint;
  /** A key, a button, or a touch's down, up or cancel ([`isEdge`]). */
  event: Event;
}

/** A press or a release, which later messages repeat (proto's `Event::is_edge`). */
export function isEdge(event: Event): boolean {
  return event.kind === "key" || event.kind === "button" || (event.kind === "touch" && event.phase !== TOUCH_MOVE);
}

/** The format's bytes for one message (little-endian, see proto/src/input/mod.rs). */
export function encode(
  seq: bigint,
  sentUs: bigint,
  keys: number[],
  buttons: number,
  edges: Edge[],
  events: Event[],
): Uint8Array {
  const out = new DataView(new ArrayBuffer(MAX_DATAGRAM));
  let at = 0;
  const u8 = (v: number) => out.setUint8(at++, v);
  const u16 = (v: number) => {
    out.setUint16(at, v, true);
    at += 2;
  };
  const i16 = (v: number) => {
    out.setInt16(at, v, true);
    at += 2;
  };
  u8(VERSION);
  out.setBigUint64(at, seq, true);
  out.setBigUint64(at + 8, sentUs, true);
  at += 16;
  u8(buttons);
  u8(keys.length);
  for (const key of keys) u16(key);
  const event = (e: Event) => {
    switch (e.kind) {
      case "key":
        u8(1), u16(e.usage), u8(e.down ? 1 : 0);
        break;
      case "pointer":
        u8(3), u16(clampU16(e.x)), u16(clampU16(e.y));
        break;
      case "motion":
        u8(4), i16(clampI16(e.dx)), i16(clampI16(e.dy));
        break;
      case "button":
        u8(5), u8(e.button), u8(e.down ? 1 : 0);
        break;
      case "wheel":
        u8(6), i16(clampI16(e.dx)), i16(clampI16(e.dy));
        break;
      case "gamepad": {
        const p = e.pad;
        u8(7), u8(p.index), u8(p.connected ? 1 : 0);
        out.setUint32(at, p.buttons, true);
        at += 4;
        for (const s of p.sticks) i16(clampI16(s));
        for (const t of p.triggers) u16(clampU16(t));
        break;
      }
      case "touch":
        u8(8), u8(e.id), u8(e.phase), u16(clampU16(e.x)), u16(clampU16(e.y));
        break;
    }
  };
  u8(edges.length);
  for (const edge of edges) {
    u8(Number(seq - edge.seq));
    event(edge.event);
  }
  u8(events.length);
  for (const e of events) event(e);
  return new Uint8Array(out.buffer, 0, at);
}

/** Room for events after the header, the largest held set and the most edges (as proto's
 * Outbox leaves). */
const EVENT_ROOM = MAX_DATAGRAM - 21 - 2 * MAX_HELD_KEYS - EDGE_BYTES * MAX_EDGES;
const SIZES: Record<Event["kind"], number> = { key: 4, pointer: 5, motion: 5, button: 3, wheel: 5, gamepad: 19, touch: 7 };

/** Numbering, the held set, recent edges, heartbeats and repeats: what every datagram
 * repeats. */
export class Outbox {
  #seq = 0n;
  #keys: number[] = [];
  #buttons = 0;
  #pads = new Map<number, Pad>();
  #lastSent = -Infinity;
  /** Edges still to repeat, oldest first, with when each first went out and the repeats it
   * has left. */
  #recent: { edge: Edge; first: number; left: number }[] = [];
  /** Repeats sent on their own since the newest edge. */
  #repeatsAlone = 0;

  /** The datagrams that carry `events` (usually one). */
  send(events: Event[]): Uint8Array[] {
    const out: Uint8Array[] = [];
    let batch: Event[] = [];
    let room = EVENT_ROOM;
    const flush = () => {
      for (const e of batch) this.#hold(e);
      out.push(this.#message(batch));
      batch = [];
      room = EVENT_ROOM;
    };
    for (const e of events) {
      if (SIZES[e.kind] > room || batch.length === 255) flush();
      room -= SIZES[e.kind];
      batch.push(e);
    }
    flush();
    return out;
  }

  /** Recent edges again, or the held set alone, when due (call it every few ms). */
  heartbeat(): Uint8Array | undefined {
    const due = this.#nextDue();
    if (due === undefined || performance.now() < due) return undefined;
    if (this.#recent.length > 0) this.#repeatsAlone++;
    return this.#message([...this.#pads.values()].map((pad) => ({ kind: "gamepad", pad })));
  }

  /** When a repeat (or, while something is held, a heartbeat) is next due. */
  #nextDue(): number | undefined {
    const holding = this.#keys.length > 0 || this.#buttons !== 0 || this.#pads.size > 0;
    const dues: number[] = [];
    if (holding) dues.push(this.#lastSent + HEARTBEAT_MS);
    if (this.#recent.length > 0) dues.push(this.#lastSent + REPEAT_FIRST_MS * 2 ** Math.min(this.#repeatsAlone, 8));
    return dues.length ? Math.min(...dues) : undefined;
  }

  /** Releases for everything held. */
  releaseAll(): Uint8Array[] {
    const events: Event[] = this.#keys.map((usage) => ({ kind: "key", usage, down: false }));
    for (let button = 0; button < 5; button++) {
      if (this.#buttons & (1 << button)) events.push({ kind: "button", button, down: false });
    }
    for (const index of this.#pads.keys()) {
      events.push({ kind: "gamepad", pad: { index, connected: false, buttons: 0, sticks: [0, 0, 0, 0], triggers: [0, 0] } });
    }
    return events.length ? this.send(events) : [];
  }

  #message(events: Event[]): Uint8Array {
    const seq = this.#seq++;
    const now = performance.now();
    this.#lastSent = now;
    const sentUs = BigInt(Math.round(nowUs()));
    // The format reaches 255 messages back.
    this.#recent = this.#recent.filter((r) => seq - r.edge.seq <= 255n);
    const edges = this.#recent.map((r) => r.edge);
    for (const r of this.#recent) r.left = Math.max(0, r.left - 1);
    this.#recent = this.#recent.filter((r) => r.left > 0 || now - r.first < REPEAT_SPAN_MS);
    for (const event of events) {
      if (!isEdge(event)) continue;
      if (this.#recent.length === MAX_EDGES) this.#recent.shift();
      this.#recent.push({ edge: { seq, event }, first: now, left: REPEATS });
      this.#repeatsAlone = 0;
    }
    return encode(seq, sentUs, this.#keys, this.#buttons, edges, events);
  }

  #hold(e: Event) {
    if (e.kind === "key") {
      const at = this.#keys.indexOf(e.usage);
      if (e.down && at < 0 && this.#keys.length < MAX_HELD_KEYS) {
        this.#keys.push(e.usage);
        this.#keys.sort((a, b) => a - b);
      } else if (!e.down && at >= 0) {
        this.#keys.splice(at, 1);
      }
    } else if (e.kind === "button") {
      this.#buttons = e.down ? this.#buttons | (1 << e.button) : this.#buttons & ~(1 << e.button);
    } else if (e.kind === "gamepad") {
      if (e.pad.connected) this.#pads.set(e.pad.index, e.pad);
      else this.#pads.delete(e.pad.index);
    }
  }
}

/** What the page counts of its input, for the overlay and tests. */
export interface InputFigures {
  granted: boolean;
  events: number;
  datagrams: number;
}

/**
 * This page's input channel on `connection`: publishes `<name>/viewer/<viewer>` with the
 * grant's token, and sends batches of events (and feedback reports) as sealed datagrams.
 */
export class Channel {
  readonly figures: InputFigures = { granted: true, events: 0, datagrams: 0 };
  #outbox = new Outbox();
  #broadcast = new Net.Broadcast.Producer();
  #input: Net.Track.Producer;
  #feedback: Net.Track.Producer;
  #sealers: Promise<[Sealer, Sealer]>;
  /** Sealing is asynchronous: each datagram goes out after the one before it. */
  #sent: Promise<unknown> = Promise.resolve();

  constructor(connection: Net.Connection.Established, name: string, credential: Credential) {
    const path = Net.Path.from(name, "viewer", credential.viewer);
    this.#sealers = Promise.all([
      Sealer.create(credential.secret, "input", path),
      Sealer.create(credential.secret, "feedback", path),
    ]);
    this.#input = this.#broadcast.createTrack("input");
    this.#feedback = this.#broadcast.createTrack("feedback");
    const grant = this.#broadcast.createTrack("grant");
    grant.writeFrame({ payload: new TextEncoder().encode(credential.token), timestamp: Net.Time.Timestamp.now() });
    connection.publish(path, this.#broadcast);
  }

  send(events: Event[]) {
    if (events.length === 0) return;
    this.figures.events += events.length;
    this.#transmit(this.#outbox.send(events));
  }

  heartbeat() {
    const datagram = this.#outbox.heartbeat();
    if (datagram) this.#transmit([datagram]);
  }

  releaseAll() {
    this.#transmit(this.#outbox.releaseAll());
  }

  /** Send one feedback report (see feedback.ts). */
  feedback(report: Uint8Array) {
    this.#queue(1, report);
  }

  #transmit(datagrams: Uint8Array[]) {
    for (const datagram of datagrams) {
      this.#queue(0, datagram);
      this.figures.datagrams++;
    }
  }

  #queue(which: 0 | 1, plain: Uint8Array) {
    const track = which === 0 ? this.#input : this.#feedback;
    const sealed = this.#sealers.then((sealers) => sealers[which].seal(plain));
    this.#sent = Promise.all([sealed, this.#sent])
      .then(([datagram]) => track.appendDatagram(Net.Time.Timestamp.now(), datagram))
      .catch((e) => console.warn("lantern: input not sent:", e));
  }

  close() {
    this.releaseAll();
    // The last releases go out before the broadcast ends.
    void this.#sent.then(() => this.#broadcast.close());
  }
}

/**
 * A spectator's path reports (`?feedback=1`, for a publisher that takes every viewer's:
 * `moq-pub --feedback open`): `<name>/viewer/<random id>` with a `feedback` track alone, its
 * reports unsealed. A host follows its granted players only and never counts these.
 */
export class Reporter {
  #broadcast = new Net.Broadcast.Producer();
  #feedback: Net.Track.Producer;

  constructor(connection: Net.Connection.Established, name: string) {
    const id = Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0")).join("");
    this.#feedback = this.#broadcast.createTrack("feedback");
    connection.publish(Net.Path.from(name, "viewer", id), this.#broadcast);
  }

  /** Send one feedback report (see feedback.ts). */
  feedback(report: Uint8Array) {
    this.#feedback.appendDatagram(Net.Time.Timestamp.now(), report);
  }

  close() {
    this.#broadcast.close();
  }
}

export const usageOf = (code: string): number | undefined => USAGES[code];
