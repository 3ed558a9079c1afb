// Drive headless Chromium (Debian's, through playwright-core) to a Lantern viewer page, wait
// until it has shown FRAMES pictures, optionally act as a player, and print what the page
// measured (window.lantern.figures()) as one JSON line.
//
//   node web/tests/play.mjs URL FRAMES [options]
//     --shot FILE     a screenshot once the frames are in
//     --serve DIR     serve DIR on a free loopback port and open URL (a query, "?url=…") there
//     --tls CERT,KEY  serve it over https with this certificate (PEM files)
//     --host NAME     open it as https://NAME:PORT/ (the browser resolves NAME to 127.0.0.1)
//     --trust-ca PEM  the browser trusts this CA (a fresh NSS database in a temporary HOME;
//                     Chromium's QUIC takes a root installed locally, rather than a public
//                     one, only in WebTransport developer mode, which this turns on too)
//     --keys A,B      press these keys (KeyboardEvent.code names) once playing
//     --click         click the middle of the picture once playing
//     --wheel         turn the wheel one notch down over the picture
//     --tap X,Y       touch the page at X,Y (CSS pixels) and let go
//     --lock DX,DY    capture the mouse (the page's button: pointer lock), then move it by DX,DY
//     --fullscreen    press the page's fullscreen button (which also locks the keyboard)
//     --gamepad       plug in a standard gamepad holding button 0 (the Gamepad API's view of
//                     one: this machine has none), then unplug it
//     --ready FILE    create FILE once the frames are in (a test's cue to change the stream)
//     --more N        then wait for N more pictures (the stream changed under the page)
//     --until-error TEXT  then wait until the page reports an error containing TEXT (a
//                     refusal), and print its figures; FRAMES may be 0
//
// After acting it waits for 60 more pictures, so what was sent has time to arrive. The JSON
// also gives the page's address as it ends (`address`) and, with --serve, every request line
// the server saw (`requests`).
// Exits 1 with the page's own console lines when the frames do not come within the deadline.
import { execFileSync } from "node:child_process";
import { createServer } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { extname, join } from "node:path";
import { chromium } from "playwright-core";

const args = process.argv.slice(2);
const option = (name) => {
  const at = args.indexOf(name);
  return at < 0 ? undefined : args.splice(at, 2)[1];
};
const flag = (name) => {
  const at = args.indexOf(name);
  return at >= 0 && args.splice(at, 1).length > 0;
};
const shot = option("--shot");
const serve = option("--serve");
const tls = option("--tls")?.split(",");
const host = option("--host");
const trustCa = option("--trust-ca");
const keys = option("--keys")?.split(",") ?? [];
const click = flag("--click");
const gamepad = flag("--gamepad");
const wheel = flag("--wheel");
const tap = option("--tap")?.split(",").map(Number);
const lock = option("--lock")?.split(",").map(Number);
const fullscreen = flag("--fullscreen");
const ready = option("--ready");
const more = Number(option("--more") ?? 0);
const untilError = option("--until-error");
let [url, frames = "300"] = args;
if (!url) {
  console.error("usage: play.mjs URL [FRAMES] [--shot FILE] [--serve DIR] [--keys A,B] [--click] [--wheel] [--tap X,Y] [--lock DX,DY] [--fullscreen] [--gamepad]");
  process.exit(2);
}

const TYPES = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css" };
let server;
const requests = [];
if (serve) {
  const make = tls ? (handler) => createHttpsServer({ cert: readFileSync(tls[0]), key: readFileSync(tls[1]) }, handler) : createServer;
  server = make(async (req, res) => {
    requests.push(`${req.method} ${req.url}`);
    const path = new URL(req.url, "http://x").pathname;
    try {
      const body = await readFile(join(serve, path === "/" ? "index.html" : path.replaceAll("..", "")));
      res.writeHead(200, { "content-type": TYPES[extname(path) || ".html"] ?? "application/octet-stream" });
      res.end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `${tls ? "https" : "http"}://${host ?? "127.0.0.1"}:${server.address().port}/${url}`;
}

// A CA the browser trusts: Chromium on Linux reads user trust from $HOME/.pki/nssdb.
let home;
if (trustCa) {
  home = mkdtempSync(join(tmpdir(), "lantern-play-"));
  const db = `sql:${join(home, ".pki/nssdb")}`;
  execFileSync("mkdir", ["-p", join(home, ".pki/nssdb")]);
  execFileSync("certutil", ["-d", db, "-N", "--empty-password"]);
  execFileSync("certutil", ["-d", db, "-A", "-t", "C,,", "-n", "lantern-test-ca", "-i", trustCa]);
}

const deadlineMs = Number(process.env.LANTERN_PLAY_TIMEOUT_MS ?? 60000);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  // Root (the CI) cannot sandbox; sound may start without a click.
  args: [
    "--no-sandbox",
    "--autoplay-policy=no-user-gesture-required",
    ...(host ? [`--host-resolver-rules=MAP ${host} 127.0.0.1`] : []),
    ...(trustCa ? ["--webtransport-developer-mode"] : []),
  ],
  env: home ? { ...process.env, HOME: home } : process.env,
});
const shown = (n) => page.waitForFunction((n) => (window.lantern?.frames?.() ?? 0) >= n, n, { timeout: deadlineMs, polling: 50 });
let page;
try {
  page = await browser.newPage({ viewport: { width: 1280, height: 720 }, hasTouch: tap !== undefined });
  page.on("console", (m) => console.error(`[page ${m.type()}] ${m.text()}`));
  page.on("pageerror", (e) => console.error(`[page error] ${e.message}`));
  if (gamepad) {
    // The Gamepad API as a browser shows a plugged-in standard pad, while window.pad is set.
    await page.addInitScript(() => {
      navigator.getGamepads = () => {
        const pad = window.pad;
        if (!pad) return [null];
        const buttons = Array.from({ length: 17 }, (_, i) => ({ pressed: pad.buttons.includes(i), touched: false, value: pad.buttons.includes(i) ? 1 : 0 }));
        return [{ index: 0, id: "Lantern test pad", connected: true, mapping: "standard", axes: pad.axes, buttons, timestamp: performance.now() }];
      };
    });
  }
  await page.goto(url);
  await shown(Number(frames));
  if (ready) writeFileSync(ready, "");
  if (more > 0) await shown(Number(frames) + more);
  if (untilError !== undefined) {
    const refused = (text) => window.lantern?.figures?.().error?.includes(text) ?? false;
    await page.waitForFunction(refused, untilError, { timeout: deadlineMs, polling: 50 });
  }
  if (shot) await page.screenshot({ path: shot });
  if (fullscreen) {
    await page.click("#fullscreen");
    await page.waitForFunction(() => document.fullscreenElement !== null, null, { timeout: deadlineMs });
  }
  const acted = keys.length > 0 || click || gamepad || wheel || tap || lock || fullscreen;
  if (click) await page.mouse.click(640, 360);
  for (const key of keys) await page.keyboard.press(key);
  if (wheel) {
    await page.mouse.move(640, 360);
    await page.mouse.wheel(0, 100);
  }
  if (tap) await page.touchscreen.tap(tap[0], tap[1]);
  if (lock) {
    // Clicking the button leaves the mouse on it; the locked pointer's motion is relative.
    const button = await page.locator("#capture").boundingBox();
    const [x, y] = [button.x + button.width / 2, button.y + button.height / 2];
    await page.mouse.click(x, y);
    await page.waitForFunction(() => document.pointerLockElement !== null, null, { timeout: deadlineMs });
    await page.mouse.move(x + lock[0], y + lock[1]);
  }
  if (gamepad) {
    await page.evaluate(() => (window.pad = { buttons: [0], axes: [0, -1, 0, 0] }));
    await shown(Number(frames) + 30);
    await page.evaluate(() => (window.pad = undefined));
  }
  if (acted) await shown(Number(frames) + 60);
  const figures = await page.evaluate(() => window.lantern.figures());
  console.log(JSON.stringify({ ...figures, address: page.url(), ...(serve ? { requests } : {}) }));
} catch (err) {
  console.error(`play.mjs: ${err.message.split("\n")[0]}`);
  process.exitCode = 1;
} finally {
  await browser.close();
  server?.close();
  if (home) rmSync(home, { recursive: true, force: true });
}
