//! `moq-sub --record`: what arrives through a real moq-relay, written into fragmented MP4
//! without re-encoding, checked by ffprobe (a reader we did not write): after a clean stop,
//! while it grows, after a SIGKILL, and on a full disk.

use std::time::{Duration, Instant};

use lantern_testkit::*;

const LONG: Duration = Duration::from_secs(90);

/// The publisher's arguments for a 640x360 cube with its beep, in `codec`.
fn publisher(url: &str, name: &str, codec: &str) -> Proc {
    let mut args = vec![
        "--url", url, "--name", name, "--audio", "testsrc", "--width", "640", "--height", "360",
        "--codec", codec,
    ];
    if codec == "av1" {
        args.extend_from_slice(&["--preset", "12"]);
    }
    spawn(bin("moq-pub"), &args)
}

fn viewer(url: &str, name: &str, record: &std::path::Path, extra: &[&str]) -> Proc {
    viewer_env(url, name, record, extra, &[])
}

/// [`viewer`], with more in its environment.
fn viewer_env(
    url: &str,
    name: &str,
    record: &std::path::Path,
    extra: &[&str],
    env: &[(String, String)],
) -> Proc {
    let mut args = vec![
        "--url",
        url,
        "--name",
        name,
        "--no-window",
        "--stats",
        "--timeout",
        "30",
        "--record",
        record.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    spawn_env(bin("moq-sub"), &args, env)
}

/// H.264 and AV1 with Opus, each recorded by a viewer that played 240 frames (4 s at 60 fps)
/// from the broadcast's start: both streams in the file, as long as the viewer played, and
/// every packet read.
#[test]
fn h264_and_av1_recordings_hold_the_video_and_the_sound_as_played() {
    let relay = Relay::start();
    let url = relay.url();
    let dir = tempfile::tempdir().unwrap();
    for codec in ["h264", "av1"] {
        let file = dir.path().join(format!("{codec}.mp4"));
        let watching = viewer(&url, codec, &file, &["--frames", "240"]);
        let publishing = publisher(&url, codec, codec);
        let watched = watching.finish(LONG);
        drop(publishing);
        let log = String::from_utf8_lossy(&watched.stderr);
        assert!(watched.status.success(), "moq-sub failed:\n{log}");
        let stats = final_stats(&watched.stderr);
        assert!(stats["record_bytes"].as_u64() > Some(0), "{stats}");
        let expected = match codec {
            "h264" => "h264",
            _ => "av1",
        };
        let probed = probe(&file);
        assert_eq!(probed.codecs, [expected, "opus"], "{codec}: {probed:?}");
        // As long as the viewer played (from its first frame to its last), less at most a
        // GOP (1 s) when the sound started late, more at most the fragments drained at the end.
        let played = stats["seconds"].as_f64().unwrap();
        assert!(
            (played - 1.3..=played + 0.8).contains(&probed.seconds),
            "{codec}: {:.2} s recorded of {played} s played",
            probed.seconds
        );
        assert!(probed.video_packets >= 160, "{codec}: {probed:?}");
        eprintln!("{codec}: {probed:?}, {played} s played");
    }
}

/// A recorder killed at any moment leaves a file that plays: each fragment is written whole
/// as soon as it is complete. A copy taken while it grows plays too.
#[test]
fn a_recording_plays_while_it_grows_and_after_a_sigkill() {
    let relay = Relay::start();
    let url = relay.url();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("killed.mp4");
    let watching = viewer(&url, "killed", &file, &[]);
    let _publishing = publisher(&url, "killed", "h264");
    let grown = |bytes: u64| std::fs::metadata(&file).map_or(0, |m| m.len()) > bytes;
    wait_for("a second of recording", LONG, || grown(150_000));
    let copy = dir.path().join("growing.mp4");
    std::fs::copy(&file, &copy).unwrap();
    assert_eq!(probe(&copy).codecs, ["h264", "opus"]);
    let started = Instant::now();
    wait_for("more recording", LONG, || {
        started.elapsed() > Duration::from_secs(2) && grown(400_000)
    });
    // Proc's drop is a SIGKILL.
    drop(watching);
    let probed = probe(&file);
    assert_eq!(probed.codecs, ["h264", "opus"], "{probed:?}");
    assert!(probed.seconds > 2.0, "{probed:?}");
    assert!(
        probed.video_packets as f64 >= probed.seconds * 50.0,
        "{probed:?}"
    );
}

/// A file that cannot be written stops the recording with one error, not the playing: every
/// frame asked for is shown, then the run ends non-zero naming the file. A path that cannot
/// be created is refused before anything plays.
#[test]
fn a_full_disk_stops_the_recording_and_never_the_playing() {
    let relay = Relay::start();
    let url = relay.url();
    let watching = viewer(
        &url,
        "full",
        std::path::Path::new("/dev/full"),
        &["--frames", "180"],
    );
    let _publishing = publisher(&url, "full", "h264");
    let watched = watching.finish(LONG);
    let log = String::from_utf8_lossy(&watched.stderr);
    assert_eq!(watched.status.code(), Some(1), "{log}");
    assert_eq!(final_stats(&watched.stderr)["frames"], 180, "{log}");
    let said = log.matches("cannot write the recording /dev/full").count();
    assert!((1..=2).contains(&said), "{log}");
    assert!(log.contains("No space left on device"), "{log}");

    // Its debug log says "playing" when it does.
    let bad = viewer_env(
        &url,
        "full",
        std::path::Path::new("/nonexistent/x.mp4"),
        &[],
        &[("RUST_LOG".into(), "moq_sub=debug".into())],
    );
    let out = bad.finish(LONG);
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(
        log.contains("cannot write the recording /nonexistent/x.mp4"),
        "{log}"
    );
    assert!(!log.contains("playing"), "refused before playing:\n{log}");
}

/// A relay that restarts under a recording is recorded on in the same file, and a publisher
/// that starts over (a new clock in its catalog) goes on in a new part beside the first.
/// Each part plays. (The export begun again after the restart reads its groups again, with
/// its fragments' edges drawn elsewhere and its sound from before the part began: that was
/// once taken for a restarted stream, in about one run of ten.)
#[test]
fn a_relay_restart_records_on_and_a_new_stream_starts_a_new_part() {
    let mut relay = Relay::start();
    let url = relay.url();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("match.mp4");
    // The parts written so far, in order, and their bytes in all.
    let parts = || {
        let mut parts = vec![file.clone()];
        parts.extend(
            (2..)
                .map(|n| dir.path().join(format!("match.{n}.mp4")))
                .take_while(|p| p.exists()),
        );
        let bytes = parts
            .iter()
            .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
            .sum::<u64>();
        (parts, bytes)
    };
    let watching = viewer(&url, "match", &file, &[]);
    let publishing = publisher(&url, "match", "h264");
    wait_for("a second of recording", LONG, || parts().1 > 150_000);
    relay.kill();
    // The relay's downtime is the scenario, not a wait for something.
    std::thread::sleep(Duration::from_secs(2));
    let before = parts().1;
    relay.start_again();
    wait_for("recording after the relay's return", LONG, || {
        parts().1 > before + 150_000
    });
    let (streamed, _) = parts();
    assert_eq!(
        streamed.len(),
        1,
        "the relay's restart went on in a new part"
    );
    drop(publishing);
    let _publishing = publisher(&url, "match", "h264");
    let next = dir.path().join("match.2.mp4");
    wait_for("a new part", LONG, || {
        std::fs::metadata(&next).is_ok_and(|m| m.len() > 150_000)
    });
    let watched = watching.interrupt(LONG);
    let log = String::from_utf8_lossy(&watched.stderr);
    assert_eq!(watched.status.code(), Some(130), "{log}");
    for part in parts().0 {
        let probed = probe(&part);
        assert_eq!(
            probed.codecs,
            ["h264", "opus"],
            "{part:?}: {probed:?}\n{log}"
        );
        assert!(probed.seconds > 0.5, "{part:?}: {probed:?}\n{log}");
    }
}
