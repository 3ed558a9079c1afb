//! host-daemon end to end: real headless sway, the test app (a real Wayland client) or a
//! Wayland app we did not write, the session's private PipeWire, a real moq-relay (or the
//! direct server), and moq-sub, checked from what the viewer decoded and from /proc.

use std::net::TcpStream;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use lantern_testkit::*;

const LONG: Duration = Duration::from_secs(90);

/// `host-daemon run ARGS -- APP…` with piped output.
fn host(args: &[&str], app: &[&str]) -> Proc {
    let mut all: Vec<&str> = vec!["run"];
    all.extend_from_slice(args);
    all.push("--");
    all.extend_from_slice(app);
    spawn(bin("host-daemon"), &all)
}

/// The test app, where the session's user can run it: a root daemon runs apps as the
/// unprivileged `lantern`, who may not reach into the build's directory (a checkout under
/// /root, say), so it gets a copy in a directory open to all.
fn app_bin() -> String {
    static COPY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    COPY.get_or_init(|| {
        use std::os::unix::fs::PermissionsExt;
        // One fixed place, replaced atomically: runs never pile copies up.
        let dir = std::env::temp_dir().join("lantern-test-app");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let staged = dir.join(format!(".lantern-bench.{}", std::process::id()));
        std::fs::copy(bin("lantern-bench"), &staged).unwrap();
        let copy = dir.join("lantern-bench");
        std::fs::rename(&staged, &copy).unwrap();
        copy.to_str().unwrap().to_string()
    })
    .clone()
}

/// Processes still running with this session's private directory in their environment
/// (`XDG_RUNTIME_DIR=/tmp/lantern-NAME-…`): the compositor, the app, the sound server.
fn leftovers(name: &str) -> Vec<String> {
    let needle = format!("/lantern-{name}-");
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let path = entry.path();
        let Ok(environ) = std::fs::read(path.join("environ")) else {
            continue;
        };
        let stat = std::fs::read_to_string(path.join("stat")).unwrap_or_default();
        if stat.contains(") Z ") {
            continue; // a zombie is already dead
        }
        if String::from_utf8_lossy(&environ).contains(&needle) {
            let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
            found.push(format!(
                "{} {}",
                entry.file_name().to_string_lossy(),
                comm.trim()
            ));
        }
    }
    found
}

/// Wait until the direct server on `addr` answers, failing at once (with its output) if the
/// daemon ends first.
fn wait_for_server(daemon: &mut Proc, addr: &str) {
    wait_for("the direct server", LONG, || {
        if let Ok(Some(status)) = daemon.0.try_wait() {
            let mut text = String::new();
            if let Some(err) = daemon.0.stderr.as_mut() {
                let _ = std::io::Read::read_to_string(err, &mut text);
            }
            panic!("host-daemon ended ({status}) before serving:\n{text}");
        }
        TcpStream::connect(addr).is_ok()
    });
}

fn wait_for_session(name: &str) {
    wait_for("the session's app", LONG, || {
        std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .flatten()
            .any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(&format!("lantern-{name}-"))
                    && e.path().join("app.log").exists()
            })
    });
}

fn no_leftovers(name: &str) {
    let mut left = Vec::new();
    // The kernel delivers parent-death signals at once, but a compositor takes a moment to
    // shut down after its SIGTERM.
    wait_for(
        "the session's processes to end",
        Duration::from_secs(15),
        || {
            left = leftovers(name);
            left.is_empty()
        },
    );
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The frame numbers of a `--latency-log`, in the order shown.
fn logged_frames(path: &Path) -> Vec<u32> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|line| line.split(',').next().unwrap().parse().unwrap())
        .collect()
}

/// Stamps strictly increasing, every gap counted as a drop, every frame stamped.
fn check_stamps(frames: &[u32], stats: &serde_json::Value, expected: usize) {
    assert_eq!(frames.len(), expected, "frames shown");
    let mut gaps = 0u64;
    for pair in frames.windows(2) {
        assert!(pair[1] > pair[0], "stamps out of order: {pair:?}");
        gaps += u64::from(pair[1] - pair[0] - 1);
    }
    assert_eq!(stats["frames"], expected as u64);
    assert_eq!(stats["unstamped"], 0);
    assert_eq!(stats["drops"], gaps, "drops reported must match the gaps");
}

/// The test app through a real relay at 1280x720@60: 600 frames stamped by the app in
/// order, its tone in the viewer's WAV, and nothing left running after a Ctrl-C.
#[test]
fn the_test_app_through_a_relay() {
    let relay = Relay::start();
    let url = relay.url();
    let dir = tempfile::tempdir().unwrap();
    let (log, wav) = (dir.path().join("latency.csv"), dir.path().join("out.wav"));
    let viewer = spawn(
        bin("moq-sub"),
        &[
            "--url",
            &url,
            "--name",
            "relayed",
            "--frames",
            "600",
            "--stats",
            "--timeout",
            "30",
            "--latency-log",
            log.to_str().unwrap(),
            "--audio-out",
            wav.to_str().unwrap(),
        ],
    );
    let app = app_bin();
    let daemon = host(
        &[
            "--url", &url, "--name", "relayed", "--width", "1280", "--height", "720", "--fps",
            "60", "--stats",
        ],
        &[&app, "app", "--tone", "440"],
    );
    let viewer = viewer.finish(LONG);
    assert!(
        viewer.status.success(),
        "moq-sub failed:\n{}",
        stderr(&viewer)
    );
    let out = daemon.interrupt(LONG);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{text}");
    assert!(text.contains("stopped by SIGINT"), "{text}");
    assert!(text.contains("\"final\":true"), "closing stats:\n{text}");

    let stats = final_stats(&viewer.stderr);
    check_stamps(&logged_frames(&log), &stats, 600);
    let mono = read_wav(&wav);
    // The app's tone, after the first half second (the sound starts with the stream).
    let tail = &mono[mono.len().min(24_000)..];
    assert!(tail.len() > 48_000, "{} samples of sound", mono.len());
    let (_, rms) = tone_of(tail);
    let hz = pitch_of(tail);
    assert!((hz - 440.0).abs() < 10.0, "heard {hz:.1} Hz");
    assert!(rms > 0.1, "rms {rms:.3}");
    no_leftovers("relayed");
}

/// The same through the direct server, with the app ending the session: its exit status
/// becomes host-daemon's.
#[test]
fn the_test_app_served_directly_ends_with_the_app() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let app = app_bin();
    let mut daemon = host(
        &["--listen", &addr, "--name", "direct", "--no-audio"],
        &[&app, "app", "--frames", "900"],
    );
    wait_for_server(&mut daemon, &addr);
    let url = format!("http://{addr}/");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("latency.csv");
    let viewer = spawn(
        bin("moq-sub"),
        &[
            "--url",
            &url,
            "--name",
            "direct",
            "--frames",
            "300",
            "--stats",
            "--latency-log",
            log.to_str().unwrap(),
        ],
    )
    .finish(LONG);
    assert!(
        viewer.status.success(),
        "moq-sub failed:\n{}",
        stderr(&viewer)
    );
    check_stamps(&logged_frames(&log), &final_stats(&viewer.stderr), 300);
    let out = daemon.finish(LONG);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    no_leftovers("direct");
}

/// An app that fails at once ends the session with its status and its last words.
#[test]
fn an_app_that_fails_at_once_passes_on_its_status_and_stderr() {
    let port = free_port().to_string();
    let addr = format!("127.0.0.1:{port}");
    let out = host(
        &["--listen", &addr, "--name", "failing", "--no-audio"],
        &["sh", "-c", "echo 'cannot open the game data' >&2; exit 7"],
    )
    .finish(LONG);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(7), "{text}");
    assert!(text.contains("exit status 7"), "{text}");
    assert!(text.contains("cannot open the game data"), "{text}");
    no_leftovers("failing");

    let out = host(
        &["--name", "missing", "--listen", &addr],
        &["no-such-game-lantern"],
    )
    .finish(LONG);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("no-such-game-lantern not found"), "{text}");
}

/// Killing the daemon outright (SIGKILL: no clean-up of its own) or stopping it (SIGTERM)
/// leaves no compositor, app or sound server behind.
#[test]
fn nothing_survives_the_daemon() {
    let app = app_bin();
    for (name, signal) in [("killed", "-KILL"), ("terminated", "-TERM")] {
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut daemon = host(
            &["--listen", &addr, "--name", name],
            &[&app, "app", "--tone", "220"],
        );
        wait_for_session(name);
        wait_for_server(&mut daemon, &addr);
        assert!(
            !leftovers(name).is_empty(),
            "the session's processes are visible"
        );
        let pid = daemon.0.id().to_string();
        std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap();
        let out = daemon.finish(LONG);
        if signal == "-TERM" {
            assert_eq!(out.status.code(), Some(143), "{}", stderr(&out));
        }
        no_leftovers(name);
    }
}

/// A Wayland app we did not write (weston-flower, whose still picture also exercises the repeats of an unchanged screen) reaches the viewer as a picture
/// that is not blank.
#[test]
fn a_third_party_wayland_app_is_seen() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut daemon = host(
        &[
            "--listen",
            &addr,
            "--name",
            "weston",
            "--no-audio",
            "--width",
            "640",
            "--height",
            "360",
        ],
        &[&tool("weston-flower")],
    );
    wait_for_server(&mut daemon, &addr);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.y4m");
    let url = format!("http://{addr}/");
    let viewer = spawn(
        bin("moq-sub"),
        &[
            "--url",
            &url,
            "--name",
            "weston",
            "--frames",
            "30",
            "-o",
            out.to_str().unwrap(),
        ],
    )
    .finish(LONG);
    assert!(
        viewer.status.success(),
        "moq-sub failed:\n{}",
        stderr(&viewer)
    );
    daemon.interrupt(LONG);
    let file = std::io::BufReader::new(std::fs::File::open(&out).unwrap());
    let mut reader = lantern_proto::y4m::Reader::new(file).unwrap();
    let mut frame = reader.new_frame();
    let mut last = None;
    while reader.read_frame(&mut frame.view_mut()).unwrap() {
        let [(y, _), _, _] = frame.planes();
        last = Some(y.iter().filter(|&&p| p > 40).count() as f64 / y.len() as f64);
    }
    let lit = last.expect("frames decoded");
    assert!(
        (0.02..0.98).contains(&lit),
        "{:.1}% of the picture is lit: blank, or one colour",
        lit * 100.0
    );
    no_leftovers("weston");
}
