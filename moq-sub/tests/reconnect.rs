//! A dead path is a reconnect, not an exit: a viewer (and its publisher) ride out a path
//! outage and a relay restart in the same processes, and pictures come again afterwards.
//! The stamps read back from the decoded pixels show the hole and what came after it.

use std::path::Path;
use std::time::Duration;

use lantern_testkit::*;

const LONG: Duration = Duration::from_secs(120);
/// A 640x360 I420 y4m frame with its `FRAME\n` header.
const FRAME_BYTES: u64 = 640 * 360 * 3 / 2 + 6;

fn publish(url: &str, name: &str, extra: &[&str]) -> Proc {
    let mut args = vec![
        "--url", url, "--name", name, "--width", "640", "--height", "360",
    ];
    args.extend_from_slice(extra);
    spawn(bin("moq-pub"), &args)
}

fn view(url: &str, name: &str, frames: u32, out: &Path, extra: &[&str]) -> Proc {
    let frames = frames.to_string();
    let mut args = vec![
        "--url",
        url,
        "--name",
        name,
        "--frames",
        &frames,
        "--stats",
        "--timeout",
        "20",
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    spawn(bin("moq-sub"), &args)
}

/// The frames shown, by their stamps; the largest jump between two, and how many came after
/// it.
fn the_hole(out: &Path) -> (usize, u32, usize) {
    let shown: Vec<u32> = stamps(out)
        .into_iter()
        .map(|s| s.expect("a stamped picture").frame)
        .collect();
    assert!(shown.windows(2).all(|w| w[0] < w[1]), "in order: {shown:?}");
    let (at, jump) = shown
        .windows(2)
        .enumerate()
        .map(|(i, w)| (i, w[1] - w[0]))
        .max_by_key(|&(_, jump)| jump)
        .unwrap();
    (shown.len(), jump, shown.len() - at - 1)
}

/// Wait until the viewer has written `frames` pictures.
fn wait_for_pictures(out: &Path, frames: u64) {
    wait_for("pictures", LONG, || {
        std::fs::metadata(out).is_ok_and(|m| m.len() > frames * FRAME_BYTES)
    });
}

#[test]
fn a_viewer_plays_on_through_a_three_second_outage() {
    let relay = Relay::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.y4m");
    let publisher = publish(&relay.url(), "outage", &[]);
    // Both ways dead for 3 s, from 6 s after the path came up: the QUIC connection times out
    // (told 1.2 s, as with fallback relays) and is redialed.
    let path = Netem::start(relay.port, "outage=6s+3s", "outage=6s+3s");
    let idle = ["--idle-timeout", "1.2"];
    let viewer = view(&path.url("anon"), "outage", 600, &out, &idle).finish(LONG);
    let log = String::from_utf8_lossy(&viewer.stderr);
    assert!(viewer.status.success(), "moq-sub failed:\n{log}");
    let stats = final_stats(&viewer.stderr);
    assert!(stats["outages"].as_u64() >= Some(1), "{stats}");
    let (shown, jump, after) = the_hole(&out);
    assert_eq!(shown, 600);
    // The 3 s without pictures (180 frames at 60 fps), then pictures again.
    assert!(jump >= 120, "the largest gap was {jump} frames: {log}");
    assert!(after >= 60, "{after} pictures after the outage");
    publisher.stop_ok("moq-pub");
}

/// A fade shorter than the idle timeout a viewer of one relay has by default (a cellular
/// fade, 1.5 s) costs no redial: the same connection carries on once the path is back.
#[test]
fn a_short_fade_is_ridden_out_on_the_same_connection() {
    let relay = Relay::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.y4m");
    let publisher = publish(&relay.url(), "fade", &[]);
    let path = Netem::start(relay.port, "outage=6s+1500ms", "outage=6s+1500ms");
    let viewer = view(&path.url("anon"), "fade", 600, &out, &[]).finish(LONG);
    let log = String::from_utf8_lossy(&viewer.stderr);
    assert!(viewer.status.success(), "moq-sub failed:\n{log}");
    let stats = final_stats(&viewer.stderr);
    assert_eq!(stats["outages"], 0, "{stats}");
    assert!(!log.contains("\"reconnecting\":true"), "{log}");
    assert!(!log.contains("session closed"), "no redial: {log}");
    let (shown, jump, after) = the_hole(&out);
    assert_eq!(shown, 600);
    // 1.5 s without pictures (90 frames at 60 fps), then pictures again.
    assert!(jump >= 45, "the largest gap was {jump} frames: {log}");
    assert!(after >= 60, "{after} pictures after the fade");
    publisher.stop_ok("moq-pub");
}

#[test]
fn publisher_and_viewer_ride_out_a_relay_restart() {
    let mut relay = Relay::start();
    let url = relay.url();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.y4m");
    let publisher = publish(&url, "restart", &[]);
    let viewer = view(&url, "restart", 400, &out, &[]);
    wait_for_pictures(&out, 60);
    relay.kill();
    // The relay's downtime is the scenario, not a wait for something.
    std::thread::sleep(Duration::from_secs(3));
    relay.start_again();
    let viewer = viewer.finish(LONG);
    let log = String::from_utf8_lossy(&viewer.stderr);
    assert!(viewer.status.success(), "moq-sub failed:\n{log}");
    assert!(final_stats(&viewer.stderr)["outages"].as_u64() >= Some(1));
    let (_, jump, after) = the_hole(&out);
    assert!(jump >= 120, "the largest gap was {jump} frames: {log}");
    assert!(after >= 60, "{after} pictures after the restart");
    // The publisher never stopped: it republished to the new relay.
    publisher.stop_ok("moq-pub");
}

/// A relay restarted under both ends is found by a fresh dial that it answers while the old
/// connection hears nothing (`lantern_net::Redial`), not by waiting out the idle timeout:
/// here 30 s on both ends, longer than the viewer waits for pictures (`--timeout 20`), so
/// only the fresh dial can bring them back.
#[test]
fn a_restarted_relay_is_found_by_a_fresh_dial_before_any_idle_timeout() {
    let mut relay = Relay::start();
    let url = relay.url();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.y4m");
    let patient = ["--idle-timeout", "30"];
    let publisher = publish(&url, "found", &patient);
    let viewer = view(&url, "found", 400, &out, &patient);
    wait_for_pictures(&out, 60);
    relay.kill();
    // The relay's downtime is the scenario, not a wait for something.
    std::thread::sleep(Duration::from_secs(2));
    relay.start_again();
    let viewer = viewer.finish(LONG);
    let log = String::from_utf8_lossy(&viewer.stderr);
    assert!(viewer.status.success(), "moq-sub failed:\n{log}");
    assert!(log.contains("a fresh dial was answered"), "{log}");
    let (_, jump, after) = the_hole(&out);
    assert!(jump >= 60, "the largest gap was {jump} frames: {log}");
    assert!(after >= 60, "{after} pictures after the restart");
    let published = publisher.interrupt_clean("moq-pub", LONG);
    let log = String::from_utf8_lossy(&published.stderr);
    assert!(log.contains("a fresh dial was answered"), "{log}");
}
