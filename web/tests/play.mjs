// Drive headless Chromium (Debian's, through playwright-core) to a Lantern viewer page and
// wait until it has decoded FRAMES pictures; print what the page measured as one JSON line.
//
//   node web/tests/play.mjs URL FRAMES [SCREENSHOT.png]
//
// Exits 1 with the page's own console lines when the frames do not come within the deadline.
import { chromium } from "playwright-core";

const [url, frames = "300", screenshot] = process.argv.slice(2);
if (!url) {
  console.error("usage: play.mjs URL [FRAMES] [SCREENSHOT]");
  process.exit(2);
}
const deadlineMs = Number(process.env.LANTERN_PLAY_TIMEOUT_MS ?? 60000);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  // Root (the CI) cannot sandbox; sound may start without a click.
  args: ["--no-sandbox", "--autoplay-policy=no-user-gesture-required"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
  page.on("console", (m) => console.error(`[page ${m.type()}] ${m.text()}`));
  page.on("pageerror", (e) => console.error(`[page error] ${e.message}`));
  await page.goto(url);
  await page.waitForFunction((n) => (window.lantern?.frames?.() ?? 0) >= n, Number(frames), {
    timeout: deadlineMs,
    polling: 100,
  });
  const seen = await page.evaluate(() => window.lantern.figures());
  if (screenshot) await page.screenshot({ path: screenshot });
  console.log(JSON.stringify(seen));
} catch (err) {
  console.error(`play.mjs: ${err.message.split("\n")[0]}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
