//! The emulator on a real path: moq-pub → a real moq-relay → lantern-netem → moq-sub, the
//! cube's stamps read back from the pixels the viewer decoded.

use std::time::Duration;

use lantern_testkit::*;

const LONG: Duration = Duration::from_secs(90);

/// The cube through a 20 Mbit/s bottleneck with delay and 1 % loss each way plays on, and
/// the proxy carried no more than its capacity.
#[test]
fn a_viewer_plays_through_an_impaired_path() {
    let relay = Relay::start();
    let path = Netem::start(
        relay.port,
        "delay=10ms loss=1% seed=3",
        "rate=20mbit queue=200 delay=10ms jitter=2ms loss=1% seed=4",
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.y4m");
    let viewer = spawn(
        bin("moq-sub"),
        &[
            "--url",
            &path.url("anon"),
            "--name",
            "impaired",
            "--frames",
            "180",
            "--stats",
            "--timeout",
            "30",
            "-o",
            out.to_str().unwrap(),
        ],
    );
    let publisher = spawn(
        bin("moq-pub"),
        &[
            "--url",
            &relay.url(),
            "--name",
            "impaired",
            "--frames",
            "1200",
        ],
    );
    let viewer = viewer.finish(LONG);
    drop(publisher);
    assert!(
        viewer.status.success(),
        "moq-sub failed:\n{}",
        String::from_utf8_lossy(&viewer.stderr)
    );
    let shown: Vec<u32> = stamps(&out)
        .into_iter()
        .map(|s| s.expect("a stamped picture").frame)
        .collect();
    assert_eq!(shown.len(), 180);
    assert!(shown.windows(2).all(|w| w[0] < w[1]), "in order: {shown:?}");
    let figures = path.stats().expect("the path's figures");
    let down = &figures["down"];
    assert!(down["lost"].as_u64() > Some(0), "{figures}");
    // The video came through the link (QUIC), not around it.
    let carried = down["delivered_bytes"].as_u64().unwrap() * 8;
    assert!(carried > 4_000_000, "{figures}");
    let capacity = down["capacity_bits"].as_u64().unwrap();
    assert!(
        carried <= capacity + 1504 * 8,
        "{carried} bits through {capacity}"
    );
}

/// A reporting interval the proxy cannot keep (or that is no number of seconds) is one line
/// and exit 1, before anything listens.
#[test]
fn a_report_interval_out_of_range_is_refused_in_one_line() {
    for every in ["0", "0.01", "1e9", "NaN"] {
        let out = std::process::Command::new(bin("lantern-netem"))
            .args(["proxy", "--listen", "127.0.0.1:0", "--to", "127.0.0.1:9"])
            .args(["--every", every])
            .output()
            .unwrap();
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(1), "--every {every}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("--every"), "{err}");
    }
}
