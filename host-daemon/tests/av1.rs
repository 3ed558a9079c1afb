//! host-daemon in AV1, recorded at the host. A test binary of its own: SVT-AV1 at preset 9
//! takes most of a core, which the sound checks of the other session tests must not share.

mod common;

use common::*;
use lantern_testkit::*;

/// An AV1 session (SVT-AV1 at preset 9, which keeps nearly every stamp the app draws) plays in
/// moq-sub, and `run --record` keeps it at the host: AV1 and Opus, as long as the session
/// streamed, readable after the daemon was interrupted.
#[test]
fn an_av1_session_plays_and_is_recorded_at_the_host() {
    let relay = Relay::start();
    let url = relay.url();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("session.mp4");
    let app = app_bin();
    let started = std::time::Instant::now();
    let daemon = host(
        &[
            "--url",
            &url,
            "--name",
            "av1",
            "--width",
            "640",
            "--height",
            "360",
            "--fps",
            "30",
            "--codec",
            "av1",
            "--preset",
            "9",
            "--record",
            file.to_str().unwrap(),
        ],
        &[&app, "app", "--tone", "440"],
    );
    // SVT-AV1 keeps the stamps readable here, but CI once saw one of 90 blurred (the
    // encoder's rate control on a loaded machine): one is allowed, as moq-sub's AV1 tests do.
    watch_stamped_but(&url, "av1", 90, 1);
    let out = daemon.interrupt(LONG);
    let streamed = started.elapsed().as_secs_f64();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let probed = probe(&file);
    assert_eq!(probed.codecs, ["av1", "opus"], "{probed:?}");
    // CI twice recorded under a second of about 7 s (0.3 and 0.6 s), never reproduced alone:
    // what the directory and the host's log say goes with the failure.
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert!(
        (3.0..streamed).contains(&probed.seconds),
        "{:.1} s recorded of {streamed:.1} s; files {files:?}; the host said:\n{}",
        probed.seconds,
        stderr(&out)
    );
    assert!(
        probed.video_packets as f64 >= probed.seconds * 16.0,
        "{probed:?}"
    );
    no_leftovers("av1");
}
