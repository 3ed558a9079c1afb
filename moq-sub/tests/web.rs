//! The browser viewer end to end: headless Chromium (Debian's, driven by playwright-core
//! through `web/tests/play.mjs`) opens the page that `moq-pub --listen` serves on its own
//! port, and plays the cube: frames decoded in the page, and a screenshot whose stamp reads.

use std::path::PathBuf;
use std::time::Duration;

use lantern_testkit::x11::stamp_of;
use lantern_testkit::*;

const LONG: Duration = Duration::from_secs(90);

fn web_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../web")
}

/// moq-pub serving the cube (and the built page) on a free loopback port; its address.
fn serve_cube() -> (Proc, String) {
    let dist = web_dir().join("dist");
    assert!(
        dist.join("index.html").is_file(),
        "the web viewer is not built: run ci/setup (cd web && npm ci && npm run build)"
    );
    let addr = format!("127.0.0.1:{}", free_port());
    let publisher = spawn_env(
        bin("moq-pub"),
        &["--listen", &addr, "--audio", "none", "--frames", "5400"],
        &[("LANTERN_WEB".into(), dist.to_str().unwrap().into())],
    );
    wait_for("moq-pub's server", LONG, || {
        std::net::TcpStream::connect(&addr).is_ok()
    });
    (publisher, addr)
}

/// Open `url` in headless Chromium until the page has decoded `frames`; what it measured.
fn play_in_browser(url: &str, frames: u32, screenshot: &std::path::Path) -> serde_json::Value {
    let script = web_dir().join("tests/play.mjs");
    let out = spawn(
        tool("node"),
        &[
            script.to_str().unwrap(),
            url,
            &frames.to_string(),
            screenshot.to_str().unwrap(),
        ],
    )
    .finish(LONG);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the page did not play:\n{log}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {log}"))
}

#[test]
fn the_page_moq_pub_serves_plays_the_cube() {
    let (publisher, addr) = serve_cube();
    let page = spawn(tool("curl"), &["-sf", &format!("http://{addr}/")]).finish(LONG);
    assert!(
        String::from_utf8_lossy(&page.stdout).contains("<title>Lantern</title>"),
        "no viewer page at http://{addr}/"
    );
    let dir = tempfile::tempdir().unwrap();
    let shot = dir.path().join("page.png");
    let seen = play_in_browser(&format!("http://{addr}/"), 300, &shot);
    assert!(seen["frames"].as_u64() >= Some(300), "{seen}");
    // The page fills the 1280x720 viewport with the 1280x720 cube: its stamp reads.
    let raw = dir.path().join("page.yuv");
    let converted = spawn(
        tool("ffmpeg"),
        &[
            "-loglevel",
            "error",
            "-i",
            shot.to_str().unwrap(),
            "-pix_fmt",
            "yuv420p",
            "-f",
            "rawvideo",
            raw.to_str().unwrap(),
        ],
    )
    .finish(LONG);
    assert!(
        converted.status.success(),
        "ffmpeg could not read the screenshot"
    );
    let i420 = std::fs::read(&raw).unwrap();
    assert!(
        stamp_of(&i420, 1280, 720).is_some(),
        "no stamp in the page's picture"
    );
    publisher.stop_ok("moq-pub");
}
