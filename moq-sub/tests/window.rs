//! moq-sub's window on a real X server (Xvfb): the picture on screen is the stream's (its
//! stamp reads back from a screenshot), a resize keeps the aspect, the overlay toggles with
//! its chord, and a display that goes away ends the run cleanly.

use std::net::TcpStream;
use std::time::Duration;

use lantern_testkit::x11::{Display, Geometry, stamp_of};
use lantern_testkit::*;

const LONG: Duration = Duration::from_secs(60);

/// Pixels of an I420 screenshot's luma plane in `columns` x `rows` brighter than `above`.
fn bright(
    i420: &[u8],
    width: u32,
    columns: std::ops::Range<u32>,
    rows: std::ops::Range<u32>,
    above: u8,
) -> usize {
    rows.flat_map(|y| columns.clone().map(move |x| (x, y)))
        .filter(|&(x, y)| i420[(y * width + x) as usize] > above)
        .count()
}

/// A cube publisher served directly on a free port (`extra`: its test tone, say).
fn serve_cube(name: &str, extra: &[&str]) -> (Proc, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let mut args = vec![
        "--listen", &addr, "--name", name, "--width", "640", "--height", "360",
    ];
    args.push("--stamp");
    args.extend(extra);
    let publisher = spawn(bin("moq-pub"), &args);
    wait_for("moq-pub to listen", LONG, || {
        TcpStream::connect(&addr).is_ok()
    });
    (publisher, format!("http://{addr}/"))
}

#[test]
fn the_window_shows_the_stream_keeps_its_aspect_and_toggles_the_overlay() {
    let (_publisher, url) = serve_cube("shown", &[]);
    let mut display = Display::start();
    let mut viewer = spawn_env(
        bin("moq-sub"),
        &[
            "--url",
            &url,
            "--name",
            "shown",
            "--stats",
            "--timeout",
            "20",
        ],
        &display.env(),
    );
    let window = display.window("shown .* Lantern", Some(&mut viewer), LONG);

    // The window takes the video's size with its first picture, and shows it 1:1: the stamp
    // drawn into the stream reads back from the screen.
    wait_for("the window to fit the video", LONG, || {
        let g = display.geometry(&window);
        (g.width, g.height) == (640, 360)
    });
    let at = display.geometry(&window);
    let mut first = None;
    wait_for("a stamped picture on screen", LONG, || {
        first = stamp_of(&display.grab(at), 640, 360);
        first.is_some()
    });
    let later = {
        let mut later = None;
        wait_for("a newer picture", LONG, || {
            later =
                stamp_of(&display.grab(at), 640, 360).filter(|s| s.frame > first.unwrap().frame);
            later.is_some()
        });
        later.unwrap()
    };
    assert!(later.capture_us > first.unwrap().capture_us);

    // Wider: black bars left and right, the picture 1:1 in the middle (its stamp reads there).
    display.xdotool(&["windowsize", "--sync", &window, "1000", "360"]);
    let wide = Geometry {
        width: 1000,
        ..display.geometry(&window)
    };
    assert_eq!(wide.height, 360);
    wait_for("the letterboxed picture", LONG, || {
        let shot = display.grab(wide);
        let bars =
            bright(&shot, 1000, 0..170, 0..360, 24) + bright(&shot, 1000, 830..1000, 0..360, 24);
        let middle = Geometry {
            x: wide.x + 180,
            width: 640,
            ..wide
        };
        bars == 0 && stamp_of(&display.grab(middle), 640, 360).is_some()
    });

    // The overlay's chord draws it into the bottom left (on the bar here); again hides it.
    let overlay = |on: bool| {
        wait_for(
            &format!("the overlay {}", if on { "shown" } else { "hidden" }),
            LONG,
            || {
                let ink = bright(&display.grab(wide), 1000, 8..170, 290..352, 200);
                (ink > 50) == on
            },
        );
    };
    overlay(false);
    display.focus(&window);
    display.xdotool(&["key", "--window", &window, "ctrl+alt+shift+s"]);
    overlay(true);
    display.xdotool(&["key", "--window", &window, "ctrl+alt+shift+s"]);
    overlay(false);

    // The display goes away: the run ends as a closed window does, with its totals.
    display.stop();
    let out = viewer.finish(LONG);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("the X display closed"), "{err}");
    let stats = final_stats(&out.stderr);
    assert!(stats["presented"].as_u64() > Some(10), "{stats}");
    assert!(stats["present_ms_p50"].as_f64().is_some(), "{stats}");
}

#[test]
fn without_a_display_the_window_says_how_to_get_the_pipe() {
    let (_publisher, url) = serve_cube("nodisplay", &[]);
    let out = std::process::Command::new(bin("moq-sub"))
        .args(["--url", &url, "--name", "nodisplay", "--window"])
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("SDL_VIDEODRIVER")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("moq-sub: no display to open a window on") && last.contains("-o -"),
        "{err}"
    );
}

/// Where no PipeWire daemon answers, the window plays the sound through SDL's audio (here its
/// disk driver, which writes what it plays to a file), in step with the picture.
#[test]
fn without_pipewire_the_window_plays_the_sound_through_sdl() {
    let (_publisher, url) = serve_cube("heard", &["--audio", "testsrc"]);
    let display = Display::start();
    let dir = tempfile::tempdir().unwrap();
    let played = dir.path().join("sdl-disk.raw");
    let mut env = display.env();
    env.extend([
        // A runtime directory with no PipeWire socket in it.
        (
            "XDG_RUNTIME_DIR".to_string(),
            dir.path().display().to_string(),
        ),
        ("SDL_AUDIODRIVER".to_string(), "disk".to_string()),
        (
            "SDL_DISKAUDIOFILE".to_string(),
            played.display().to_string(),
        ),
    ]);
    let viewer = spawn_env(
        bin("moq-sub"),
        &[
            "--url",
            &url,
            "--name",
            "heard",
            "--stats",
            "--frames",
            "300",
            "--timeout",
            "20",
        ],
        &env,
    );
    let out = viewer.finish(LONG);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("playing audio through SDL driver=disk"),
        "{err}"
    );
    // SDL wrote what it played: 48 kHz stereo f32, with the tone's beeps in it.
    let bytes = std::fs::read(&played).unwrap();
    let samples: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_ne_bytes(b.try_into().unwrap()))
        .collect();
    assert!(samples.len() > 48_000 * 2 * 3, "{} samples", samples.len());
    let loudest = samples.iter().fold(0f32, |m, s| m.max(s.abs()));
    assert!(
        loudest > 0.1,
        "the beeps are not in what SDL played (peak {loudest})"
    );
    let stats = final_stats(&out.stderr);
    assert!(stats["av_pairs"].as_u64() >= Some(1), "{stats}");
}
