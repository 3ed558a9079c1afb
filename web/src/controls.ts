// The page's keys, mouse, wheel, touch and gamepads, as input-format events.
//
// - Keys go by `KeyboardEvent.code` (the key's place), mapped to HID usages; repeats are left
//   to the host. A key the format has no usage for is let through to the browser.
// - The pointer over the picture is sent as a place on the frame (0..65535 each way). With the
//   pointer captured (pointer lock: the "capture mouse" button, or any click in fullscreen),
//   motion goes as relative movement in video pixels, for a game's mouse look. Esc lets go.
// - The wheel goes in 120ths of a notch, + right and down.
// - Touch points go as touches on the frame, up to ten.
// - Gamepads (the Gamepad API, standard layout) are polled and sent when they change.
// - Losing focus releases everything at the host.
//
// Events of one task go as one batch, neighbouring motions merged, so a fast mouse does not
// turn into a datagram per event.

import { type Event, type Pad, usageOf } from "./input";

export interface Target {
  send(events: Event[]): void;
  heartbeat(): void;
  releaseAll(): void;
}

const MAX_TOUCHES = 10;
const MAX_PADS = 16;
/** Chromium's wheel notch is 100 CSS pixels (deltaMode 0); a line mode notch is 3 lines. */
const NOTCH = [100, 3, 1];

export class Controls {
  #pending: Event[] = [];
  #touches = new Map<number, number>();
  /** Buttons pressed on the picture: only their releases are sent (a release may come anywhere). */
  #buttons = new Set<number>();
  #pads = new Map<number, string>();
  #stop = new AbortController();

  constructor(
    readonly canvas: HTMLCanvasElement,
    readonly target: Target,
  ) {
    const on = <E extends globalThis.Event>(where: EventTarget, type: string, fn: (e: E) => void) =>
      where.addEventListener(type, fn as EventListener, { signal: this.#stop.signal, passive: false });
    on(window, "keydown", (e: KeyboardEvent) => this.#key(e, true));
    on(window, "keyup", (e: KeyboardEvent) => this.#key(e, false));
    on(canvas, "pointermove", (e: PointerEvent) => this.#move(e));
    on(canvas, "pointerdown", (e: PointerEvent) => this.#press(e, true));
    on(window, "pointerup", (e: PointerEvent) => this.#press(e, false));
    on(window, "pointercancel", (e: PointerEvent) => this.#touch(e, 3));
    on(canvas, "wheel", (e: WheelEvent) => this.#wheel(e));
    on(canvas, "contextmenu", (e) => e.preventDefault());
    on(window, "blur", () => this.#releaseAll());
    on(document, "visibilitychange", () => document.hidden && this.#releaseAll());
    // Touch moves the picture otherwise.
    canvas.style.touchAction = "none";
    const tick = () => {
      if (this.#stop.signal.aborted) return;
      this.#pollPads();
      this.target.heartbeat();
    };
    const timer = setInterval(tick, 8);
    this.#stop.signal.addEventListener("abort", () => clearInterval(timer));
  }

  /** Capture the pointer: motion goes as relative movement until Esc. */
  capture() {
    this.canvas.requestPointerLock?.();
  }

  get captured() {
    return document.pointerLockElement === this.canvas;
  }

  close() {
    this.#stop.abort();
    this.#releaseAll();
  }

  #releaseAll() {
    this.#buttons.clear();
    this.#touches.clear();
    this.target.releaseAll();
  }

  #queue(event: Event) {
    const last = this.#pending.at(-1);
    if (last?.kind === "motion" && event.kind === "motion") {
      last.dx += event.dx;
      last.dy += event.dy;
    } else if (last?.kind === "pointer" && event.kind === "pointer") {
      last.x = event.x;
      last.y = event.y;
    } else if (last?.kind === "wheel" && event.kind === "wheel") {
      last.dx += event.dx;
      last.dy += event.dy;
    } else {
      this.#pending.push(event);
    }
    if (this.#pending.length === 1 && last === undefined) {
      queueMicrotask(() => {
        const events = this.#pending;
        this.#pending = [];
        this.target.send(events);
      });
    }
  }

  #key(e: KeyboardEvent, down: boolean) {
    const usage = usageOf(e.code);
    if (usage === undefined) return;
    // The page's own keys stay the browser's unless the picture has the player's attention.
    e.preventDefault();
    if (e.repeat) return;
    this.#queue({ kind: "key", usage, down });
  }

  /** Where `e` is on the picture, 0..65535 each way, or undefined outside it. */
  #place(e: PointerEvent): { x: number; y: number } | undefined {
    const box = this.canvas.getBoundingClientRect();
    const x = (e.clientX - box.left) / box.width;
    const y = (e.clientY - box.top) / box.height;
    if (!(x >= 0 && x <= 1 && y >= 0 && y <= 1)) return undefined;
    return { x: Math.round(x * 65535), y: Math.round(y * 65535) };
  }

  #move(e: PointerEvent) {
    if (e.pointerType === "touch") return this.#touch(e, 1);
    if (this.captured) {
      // CSS pixels to video pixels.
      const scale = this.canvas.width / Math.max(1, this.canvas.getBoundingClientRect().width);
      this.#queue({ kind: "motion", dx: e.movementX * scale, dy: e.movementY * scale });
      return;
    }
    const place = this.#place(e);
    if (place) this.#queue({ kind: "pointer", ...place });
  }

  #press(e: PointerEvent, down: boolean) {
    if (e.pointerType === "touch") return this.#touch(e, down ? 0 : 2);
    // DOM: 0 left, 1 middle, 2 right, 3 back, 4 forward; the format: left, right, middle, back, forward.
    const button = [0, 2, 1, 3, 4][e.button];
    if (button === undefined) return;
    if (down) {
      if (document.fullscreenElement && !this.captured) this.capture();
      if (!this.captured) {
        const place = this.#place(e);
        if (!place) return;
        this.#queue({ kind: "pointer", ...place });
      }
      e.preventDefault();
      this.canvas.focus();
      this.#buttons.add(button);
    } else if (!this.#buttons.delete(button)) {
      // A click on the page's own buttons, or one that began outside the picture.
      return;
    }
    this.#queue({ kind: "button", button, down });
  }

  #touch(e: PointerEvent, phase: number) {
    if (e.pointerType !== "touch") return;
    let id = this.#touches.get(e.pointerId);
    if (id === undefined) {
      if (phase !== 0) return;
      const used = new Set(this.#touches.values());
      id = [...Array(MAX_TOUCHES).keys()].find((slot) => !used.has(slot));
      if (id === undefined) return;
      this.#touches.set(e.pointerId, id);
    }
    const place = this.#place(e) ?? { x: 0, y: 0 };
    if (phase >= 2) this.#touches.delete(e.pointerId);
    e.preventDefault();
    this.#queue({ kind: "touch", id, phase, ...place });
  }

  #wheel(e: WheelEvent) {
    e.preventDefault();
    const notch = NOTCH[e.deltaMode] ?? 1;
    this.#queue({ kind: "wheel", dx: (e.deltaX / notch) * 120, dy: (e.deltaY / notch) * 120 });
  }

  #pollPads() {
    const pads = navigator.getGamepads?.() ?? [];
    const seen = new Set<number>();
    for (const pad of pads) {
      if (!pad || pad.index >= MAX_PADS) continue;
      seen.add(pad.index);
      const state = padState(pad);
      const key = JSON.stringify(state);
      if (this.#pads.get(pad.index) !== key) {
        this.#pads.set(pad.index, key);
        this.#queue({ kind: "gamepad", pad: state });
      }
    }
    for (const index of this.#pads.keys()) {
      if (!seen.has(index)) {
        this.#pads.delete(index);
        this.#queue({ kind: "gamepad", pad: { index, connected: false, buttons: 0, sticks: [0, 0, 0, 0], triggers: [0, 0] } });
      }
    }
  }
}

/** A Gamepad API pad in the format's terms (standard layout: 17 buttons, 4 axes). */
export function padState(pad: Gamepad): Pad {
  let buttons = 0;
  pad.buttons.slice(0, 17).forEach((b, i) => {
    if (b.pressed) buttons |= 1 << i;
  });
  const axis = (i: number) => Math.round((pad.axes[i] ?? 0) * 32767);
  const trigger = (i: number) => Math.round((pad.buttons[i]?.value ?? 0) * 65535);
  return {
    index: pad.index,
    connected: pad.connected,
    buttons: buttons >>> 0,
    sticks: [axis(0), axis(1), axis(2), axis(3)],
    triggers: [trigger(6), trigger(7)],
  };
}
