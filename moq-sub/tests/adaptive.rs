//! Bitrate that follows the path, end to end: moq-pub → moq-relay → lantern-netem → moq-sub,
//! the viewer's feedback going back the same way. The encoder's rate falls when the viewer's
//! link narrows and rises when it widens again; a viewer that joins in the middle of a long
//! group asks for a keyframe and gets one. Behaviour is asserted from moq-pub's stats lines,
//! never times.

use std::time::Duration;

use lantern_testkit::*;

const LONG: Duration = Duration::from_secs(120);

fn view(url: &str, name: &str, frames: &str, extra: &[&str]) -> Proc {
    let mut args = vec![
        "--url",
        url,
        "--name",
        name,
        "--frames",
        frames,
        "--stats",
        "--no-window",
        "--timeout",
        "20",
        "--feedback",
    ];
    args.extend_from_slice(extra);
    spawn(bin("moq-sub"), &args)
}

#[test]
fn the_bitrate_falls_when_the_viewers_link_narrows_and_rises_when_it_widens() {
    let relay = Relay::start();
    // 640x360 at 60 fps starts at 1106 kbit/s; the link gives 3 Mbit/s, then 300 kbit/s,
    // then 3 Mbit/s again.
    let publisher = publish_following(&relay.url(), "adapt", &["--max-bitrate", "2500"]);
    let path = Netem::start(relay.port, NARROWING_UP, NARROWING_DOWN);
    let viewer = view(&path.url("anon"), "adapt", "1500", &["-o", "/dev/null"]).finish(LONG);
    assert!(
        viewer.status.success(),
        "moq-sub failed:\n{}",
        String::from_utf8_lossy(&viewer.stderr)
    );
    let published = publisher.interrupt(LONG);
    let lines = rate_lines(&published.stderr);
    // Above the narrow link's rate, then under it, then above it again.
    assert_high_low_high(&lines, 900, 300);
    let totals = lines.last().unwrap();
    assert!(totals["reports"].as_u64() > Some(100), "{totals}");
    assert!(totals["decreases"].as_u64() >= Some(1), "{totals}");
    // The viewer's reports name the frames it has by the timestamps the publisher gave them.
    let (known, reports) = (&totals["newest_known"], &totals["reports"]);
    assert!(
        known.as_u64().unwrap() * 10 >= reports.as_u64().unwrap() * 9,
        "{totals}"
    );
}

#[test]
fn a_viewer_joining_a_long_group_asks_for_a_keyframe_and_gets_one() {
    let relay = Relay::start();
    // One group for the whole run: without a keyframe on request, a viewer that joins after
    // the first frame and waits for the next keyframe (`--join next`) never sees a picture.
    let publisher = publish_following(&relay.url(), "join", &["--gop", "100000"]);
    wait_for("the broadcast to be going", LONG, || {
        let probe = view(
            &relay.url(),
            "join",
            "1",
            &["--join", "current", "-o", "/dev/null"],
        )
        .finish(LONG);
        probe.status.success()
    });
    let viewer = view(
        &relay.url(),
        "join",
        "30",
        &["--join", "next", "-o", "/dev/null"],
    )
    .finish(LONG);
    assert!(
        viewer.status.success(),
        "the joining viewer saw no picture:\n{}",
        String::from_utf8_lossy(&viewer.stderr)
    );
    let published = publisher.interrupt(LONG);
    let totals = rate_lines(&published.stderr)
        .pop()
        .expect("moq-pub's rate stats");
    assert!(totals["keyframes_asked"].as_u64() >= Some(1), "{totals}");
    assert!(totals["keyframes_forced"].as_u64() >= Some(1), "{totals}");
}

/// Where viewers' feedback is followed they ask for keyframes when they need one, so the
/// stream's own come half as often; where it is not (a fixed rate), every second.
#[test]
fn keyframes_come_seldom_where_viewers_ask_for_them() {
    let relay = Relay::start();
    let gop = |extra: &[&str]| {
        let mut args = vec!["--frames", "3"];
        args.extend_from_slice(extra);
        let out = publish_following(&relay.url(), "gop", &args).finish(LONG);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        let line = stderr
            .lines()
            .find(|l| l.contains("publishing"))
            .unwrap_or("");
        line.split_whitespace()
            .find_map(|field| field.strip_prefix("gop="))
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no gop in {stderr}"))
    };
    assert_eq!(gop(&[]), "120", "adaptive, following feedback, at 60 fps");
    assert_eq!(gop(&["--bitrate-mode", "fixed"]), "60");
    assert_eq!(gop(&["--gop", "90"]), "90", "--gop is the user's");
}

/// A viewer whose output takes frames at half the stream's rate (a slow display or decoder)
/// skips to newer groups and asks for keyframes to catch up with, instead of falling further
/// behind; and the host does not take that viewer's own backlog for a slow path, which would
/// cut the stream for everyone.
#[test]
fn a_viewer_that_cannot_keep_up_skips_ahead_and_the_host_does_not_cut_the_stream() {
    let relay = Relay::start();
    // One group for the whole run: only a keyframe asked for lets the viewer skip ahead.
    let publisher = publish_following(&relay.url(), "slow", &["--gop", "100000"]);
    let mut viewer = view(&relay.url(), "slow", "240", &["-o", "-"]);
    let stdout = viewer.0.stdout.take().unwrap();
    let mut reader = lantern_proto::y4m::Reader::new(std::io::BufReader::new(stdout)).unwrap();
    let mut frame = reader.new_frame();
    let mut numbers = Vec::new();
    // The slow display: 30 pictures a second of a 60 fps stream.
    while reader.read_frame(&mut frame.view_mut()).unwrap() {
        if let Some(stamp) = lantern_proto::stamp::Stamp::read(&frame.image()) {
            numbers.push(stamp.frame);
        }
        std::thread::sleep(Duration::from_millis(33));
    }
    let viewed = viewer.finish(LONG);
    let stderr = String::from_utf8_lossy(&viewed.stderr);
    assert!(viewed.status.success(), "moq-sub failed:\n{stderr}");
    let totals = final_stats(&viewed.stderr);
    assert!(totals["behind_skipped"].as_u64() > Some(0), "{totals}");
    assert!(numbers.windows(2).all(|w| w[1] > w[0]), "{numbers:?}");
    assert!(
        numbers.windows(2).any(|w| w[1] - w[0] > 10),
        "never skipped ahead: {numbers:?}"
    );
    let published = publisher.interrupt(LONG);
    let lines = rate_lines(&published.stderr);
    let totals = lines.last().expect("moq-pub's rate stats");
    // The joining keyframe, then at least one asked for to catch up.
    assert!(totals["keyframes_forced"].as_u64() >= Some(2), "{totals}");
    let targets: Vec<u64> = lines
        .iter()
        .filter(|r| r["viewers"].as_u64() == Some(1))
        .filter_map(|r| r["target_kbps"].as_u64())
        .collect();
    assert!(
        targets.last() >= targets.first(),
        "the host cut the stream for a slow viewer: {targets:?}"
    );
}
