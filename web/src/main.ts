// Lantern's browser viewer: plays a Lantern broadcast with @moq/watch (WebTransport +
// WebCodecs) at the lowest latency it offers, drawing each picture as soon as it is decoded.
//
// The page is served by the host itself (`moq-pub --listen`, `host-daemon --listen`): by
// default it plays the broadcast of the server it came from. `?url=…&name=…` plays any relay's.

import "@moq/watch/element";
import type MoqWatch from "@moq/watch/element";
import { stampOf } from "./stamp";

const params = new URLSearchParams(location.search);
const url = params.get("url") ?? `${location.protocol}//${location.host}/`;
const name = params.get("name") ?? "lantern";

const message = document.getElementById("message") as HTMLParagraphElement;
const player = document.getElementById("player") as HTMLElement;

function say(text: string | undefined) {
  message.hidden = text === undefined;
  message.textContent = text ?? "";
}

/** What this browser lacks of what the viewer needs, if anything. */
function missing(): string | undefined {
  if (typeof WebTransport === "undefined") return "WebTransport";
  if (typeof VideoDecoder === "undefined") return "WebCodecs";
  return undefined;
}

const lacking = missing();
if (lacking) {
  say(`This browser has no ${lacking}: Lantern needs a recent Chromium, Edge or Firefox.`);
} else {
  const watch = document.createElement("moq-watch") as MoqWatch;
  watch.setAttribute("url", url);
  watch.setAttribute("name", name);
  watch.setAttribute("latency", params.get("latency") ?? "real-time");
  // A player shows the game whatever the page's scroll or visibility says.
  watch.setAttribute("visible", "always");
  watch.append(document.createElement("canvas"));
  player.prepend(watch);
  say(`Connecting to ${name} at ${url}…`);

  // Glass-to-glass of each stamped picture, ms: its capture time to the moment it is decoded
  // and handed to the canvas (this machine's clock against the host's: the same clock when
  // both run here).
  const latencies: number[] = [];
  watch.video.out.frame.subscribe((frame) => {
    if (!frame) return;
    const decodedUs = (performance.timeOrigin + performance.now()) * 1000;
    stampOf(frame)
      .then((stamp) => {
        if (stamp) latencies.push((decodedUs - stamp.captureUs) / 1000);
      })
      // A frame already closed by the renderer has nothing left to read.
      .catch(() => {});
  });
  const percentile = (q: number) => {
    if (latencies.length === 0) return null;
    const sorted = [...latencies].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  };

  // What tests and the overlay read: frames decoded so far, and the stamps' latency.
  const frames = () => watch.video.out.stats.peek()?.frameCount ?? 0;
  const latency = () => ({ count: latencies.length, p50: percentile(0.5), p99: percentile(0.99) });
  (window as unknown as { lantern: object }).lantern = { frames, latency };
  const shown = setInterval(() => {
    if (frames() > 0) {
      say(undefined);
      clearInterval(shown);
    }
  }, 100);
}
