//! The player's loop through moq-sub's window: on a real X server (Xvfb), keys and clicks
//! given to the window with xdotool go through a real moq-relay into host-daemon's session
//! (real headless sway, the test app), and the window reports input-to-photon.

mod common;

use common::*;
use lantern_testkit::x11::Display;
use lantern_testkit::*;
use serde_json::Value;

#[test]
fn keys_and_clicks_in_the_window_reach_the_app() {
    let relay = Relay::start();
    let url = relay.url();
    // (`dir` holds the app's log: it must live as long as the session.)
    let Session {
        daemon,
        log,
        token,
        dir: _dir,
    } = session("played", &["--url", &url]);
    let display = Display::start();
    let mut viewer = spawn_env(
        bin("moq-sub"),
        &[
            "--url",
            &url,
            "--name",
            "played",
            "--stats",
            "--timeout",
            "30",
        ],
        &[display.env(), vec![("LANTERN_GRANT".to_string(), token)]].concat(),
    );
    let lines = Lines::read(&mut viewer);
    let window = display.window("played .* Lantern", Some(&mut viewer), LONG);
    // Presses are paired with pictures from the first one shown on.
    wait_for("the first pictures", LONG, || {
        lines
            .stats_lines()
            .iter()
            .any(|l| l["frames"].as_u64() > Some(0))
    });
    let g = display.geometry(&window);
    assert_eq!(
        (g.width, g.height),
        (1280, 720),
        "the window takes the video's size"
    );
    wait_for("the host to take the input", LONG, || {
        lines.saw("the host takes this viewer's input")
    });
    display.focus(&window);
    display.xdotool(&["key", "--window", &window, "a"]);
    display.xdotool(&["mousemove", "--window", &window, "320", "180", "click", "1"]);

    let seen = |kind: &str, id: (&str, u64), down: bool| {
        app_log(&log)
            .iter()
            .any(|e| e["kind"] == kind && e[id.0] == id.1 && e["down"] == down)
    };
    wait_for("the key and the click at the app", LONG, || {
        seen("key", ("key", 30), false) && seen("button", ("button", 272), false)
    });
    let events = app_log(&log);
    // The pointer lands where it was in the window: the window shows the session 1:1.
    let motion = pointer_places(&events);
    assert!(
        motion
            .iter()
            .any(|&(x, y)| (x - 320.5).abs() <= 1.0 && (y - 180.5).abs() <= 1.0),
        "{motion:?}"
    );
    let keys: Vec<&Value> = events.iter().filter(|e| e["kind"] == "key").collect();
    assert_eq!(keys.len(), 2, "a, down and up, once: {keys:?}");

    // The window paired both presses with the pictures that showed them.
    wait_for("input-to-photon for both presses", LONG, || {
        lines
            .stats_lines()
            .iter()
            .filter_map(|l| l["input_to_photon_count"].as_u64())
            .sum::<u64>()
            >= 2
    });
    let out = viewer.interrupt(LONG);
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let stats = lines.final_stats();
    assert_eq!(stats["input_to_photon_count"], 2, "{stats}");
    assert!(
        stats["input_to_photon_ms_p50"].as_f64().unwrap() > 0.0,
        "{stats}"
    );
    assert!(stats["present_ms_p50"].as_f64().is_some(), "{stats}");
    let out = daemon.interrupt(LONG);
    let input = host_input(&out);
    for (reason, count) in input["dropped"].as_object().unwrap() {
        assert_eq!(count, 0, "dropped as {reason}: {input}");
    }
    no_leftovers("played");
}
