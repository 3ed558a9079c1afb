//! host-daemon end to end: real headless sway, the test app (a real Wayland client) or a
//! Wayland app we did not write, the session's private PipeWire, a real moq-relay (or the
//! direct server), and moq-sub, checked from what the viewer decoded and from /proc.

mod common;

use common::*;
use lantern_testkit::*;
use std::os::unix::fs::MetadataExt;

/// The test app through a real relay at 1280x720@60: 600 frames stamped by the app in
/// order, its tone in the viewer's WAV, and nothing left running after a Ctrl-C.
#[test]
fn the_test_app_through_a_relay() {
    let relay = Relay::start();
    let url = relay.url();
    let dir = tempfile::tempdir().unwrap();
    let (log, wav) = (dir.path().join("latency.csv"), dir.path().join("out.wav"));
    let app = app_bin();
    let daemon = host(
        &[
            "--url", &url, "--name", "relayed", "--width", "1280", "--height", "720", "--fps",
            "60", "--stats",
        ],
        &[&app, "app", "--tone", "440"],
    );
    wait_for_app_picture(&["--url", &url, "--name", "relayed"]);
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
    // The stats say what the pictures came in: shared memory on a host without a GPU.
    let buffers = final_stats(&out.stderr)["capture"]["buffers"].clone();
    if !has_render_node() {
        assert_eq!(buffers, "shm", "{text}");
    }
    assert!(buffers == "shm" || buffers == "dmabuf", "{text}");

    let stats = final_stats(&viewer.stderr);
    check_stamps(&logged_frames(&log), &stats, 600, capture_repeats(&out));
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

/// The same through the direct server (600 frames at the default 1280x720@60), with the app
/// ending the session: its exit status becomes host-daemon's.
#[test]
fn the_test_app_served_directly_ends_with_the_app() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let app = app_bin();
    let mut daemon = host(
        &[
            "--listen",
            &addr,
            "--name",
            "direct",
            "--no-audio",
            "--print-grant",
        ],
        &[&app, "app", "--frames", "1500"],
    );
    wait_for_server(&mut daemon, &addr);
    // The same port serves the browser viewer's page.
    let page = spawn(tool("curl"), &["-sf", &format!("http://{addr}/")]).finish(LONG);
    assert!(
        String::from_utf8_lossy(&page.stdout).contains("<title>Lantern</title>"),
        "no viewer page at http://{addr}/"
    );
    watch_stamped(&format!("http://{addr}/"), "direct", 600);
    let out = daemon.finish(LONG);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // It says where: the page for this broadcast, with the certificate's fingerprint and the
    // grant it printed (asked to, stderr being no terminal) in the fragment.
    let said = stderr(&out);
    let page = format!("play it in a browser at http://{addr}/?name=direct#fp=");
    assert!(said.contains(&page) && said.contains("&grant="), "{said}");
    assert!(said.contains("--tls-fingerprint"), "{said}");
    no_leftovers("direct");
}

/// A session sent as RTP only (`--rtp`, no relay, no server): `moq-sub --sdp` plays the app's
/// stamped pictures in order and its tone, and the session ends cleanly.
#[test]
fn the_test_app_as_rtp_only() {
    let dir = tempfile::tempdir().unwrap();
    let (sdp, log, wav) = (
        dir.path().join("session.sdp"),
        dir.path().join("latency.csv"),
        dir.path().join("out.wav"),
    );
    let url = format!("rtp://127.0.0.1:{}", free_rtp_port());
    let app = app_bin();
    let daemon = host(
        &[
            "--rtp",
            &url,
            "--sdp",
            sdp.to_str().unwrap(),
            "--name",
            "rtp",
            "--width",
            "640",
            "--height",
            "360",
            "--stats",
        ],
        &[&app, "app", "--tone", "440"],
    );
    wait_for("the session's SDP", LONG, || sdp.exists());
    wait_for_app_picture(&["--sdp", sdp.to_str().unwrap()]);
    let viewer = play_sdp(
        &sdp,
        "300",
        &[
            "--timeout",
            "30",
            "--latency-log",
            log.to_str().unwrap(),
            "--audio-out",
            wav.to_str().unwrap(),
        ],
    )
    .finish(LONG);
    assert!(
        viewer.status.success(),
        "moq-sub failed:\n{}",
        stderr(&viewer)
    );
    let out = daemon.interrupt(LONG);
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    check_stamps(
        &logged_frames(&log),
        &final_stats(&viewer.stderr),
        300,
        capture_repeats(&out),
    );
    let mono = read_wav(&wav);
    let tail = &mono[mono.len().min(24_000)..];
    assert!(tail.len() > 24_000, "{} samples of sound", mono.len());
    let hz = pitch_of(tail);
    assert!((hz - 440.0).abs() < 10.0, "heard {hz:.1} Hz");
    no_leftovers("rtp");
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

    // gamescope where it cannot run (not installed, no GPU, or no headless backend): one
    // line that says why, and what to use instead.
    let out = host(
        &[
            "--name",
            "scope",
            "--listen",
            &addr,
            "--compositor",
            "gamescope",
        ],
        &["true"],
    )
    .finish(LONG);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let last = text.trim().lines().last().unwrap_or_default();
    assert!(last.contains("gamescope"), "{text}");
    assert!(last.contains("use --compositor sway"), "{text}");
}

/// An app that tampers with its session directory as it ends: it swaps its log for a FIFO
/// (which would block a reader forever) and plants links to a file of root's. The session
/// still ends at once with the app's own last words, nothing of the secret, and the file
/// root owns is neither changed nor given away.
#[test]
fn an_app_that_swaps_its_log_for_a_fifo_or_links_cannot_stall_or_steer_the_daemon() {
    let secrets = tempfile::tempdir().unwrap();
    let secret = secrets.path().join("secret");
    std::fs::write(&secret, "root's secret").unwrap();
    let before = std::fs::metadata(&secret).unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let script = format!(
        "echo 'last words'; rm -f app.log; mkfifo app.log; \
         ln -sf '{secret}' sway.log; ln -sf '{secret}' pipewire.conf; exit 5",
        secret = secret.display()
    );
    let out = host(
        &["--listen", &addr, "--name", "tamper", "--no-audio"],
        &["sh", "-c", &script],
    )
    .finish(LONG);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(5), "{text}");
    assert!(text.contains("last words"), "{text}");
    assert!(!text.contains("root's secret"), "{text}");
    let after = std::fs::metadata(&secret).unwrap();
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "root's secret");
    assert_eq!((after.uid(), after.len()), (before.uid(), before.len()));
    no_leftovers("tamper");
}

/// `--capture compositor:dmabuf` insists on DMA-BUFs: on a GPU host the pictures come in
/// them; without a render node the session ends at once with one line saying why and what to
/// use instead.
#[test]
fn dmabuf_capture_runs_on_a_gpu_or_says_why_not() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let app = app_bin();
    let out = host(
        &[
            "--listen",
            &addr,
            "--name",
            "dmabuf",
            "--no-audio",
            "--stats",
            "--capture",
            "compositor:dmabuf",
        ],
        &[&app, "app", "--frames", "120"],
    )
    .finish(LONG);
    let text = stderr(&out);
    if has_render_node() {
        assert_eq!(out.status.code(), Some(0), "{text}");
        assert_eq!(final_stats(&out.stderr)["capture"]["buffers"], "dmabuf");
    } else {
        assert_eq!(out.status.code(), Some(1), "{text}");
        let last = text.trim().lines().last().unwrap_or_default();
        assert!(
            last.contains("no DMA-BUFs: this host has no GPU render node"),
            "{text}"
        );
        assert!(last.contains("use --capture compositor:shm"), "{text}");
    }
    no_leftovers("dmabuf");
}

/// Whether this host has a GPU render node, where DMA-BUF capture can work.
fn has_render_node() -> bool {
    std::fs::read_dir("/dev/dri").is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("renderD"))
    })
}

/// A root daemon is no client of the session's compositor or PipeWire: the picture's and the
/// sound's captures and the input's injection run as the session's user, like everything
/// else of the session, and the picture still arrives through them. Not root: skipped
/// (everything runs as one user).
#[test]
fn the_captures_and_the_injection_run_as_the_sessions_user() {
    if std::fs::metadata("/proc/self").unwrap().uid() != 0 {
        eprintln!("skipped: not root");
        return;
    }
    let name = "as-user";
    let addr = format!("127.0.0.1:{}", free_port());
    let app = app_bin();
    let mut daemon = host(
        &["--listen", &addr, "--name", name, "--stats"],
        &[&app, "app", "--tone", "220", "--frames", "300"],
    );
    wait_for_server(&mut daemon, &addr);
    let needle = format!("/lantern-{name}-");
    let mut seen = Vec::new();
    wait_for("the captures and the injection", LONG, || {
        seen = session_processes(&needle);
        ["picture-capture", "sound-capture", "input-inject"]
            .iter()
            .all(|what| seen.iter().any(|(_, line)| line.contains(what)))
    });
    for (uid, line) in &seen {
        assert_ne!(*uid, 0, "a session process runs as root: {line}");
    }
    let out = daemon.finish(LONG);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let capture = &final_stats(&out.stderr)["capture"];
    assert!(capture["frames"].as_u64().unwrap_or(0) > 200, "{text}");
    assert_eq!(capture["buffers"], "shm", "{text}");
    no_leftovers(name);
}

/// The processes whose environment names a session's runtime directory (`needle`): their
/// real user and their command line.
fn session_processes(needle: &str) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let path = entry.path();
        let Ok(environ) = std::fs::read(path.join("environ")) else {
            continue;
        };
        if !String::from_utf8_lossy(&environ).contains(needle) {
            continue;
        }
        let status = std::fs::read_to_string(path.join("status")).unwrap_or_default();
        let uid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().next()?.parse().ok());
        let line = std::fs::read(path.join("cmdline")).unwrap_or_default();
        let line = String::from_utf8_lossy(&line).replace('\0', " ");
        if let Some(uid) = uid {
            found.push((uid, line));
        }
    }
    found
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

/// A `run` session (whose account, `lantern`, may be shared, so it cannot be swept by
/// account) whose app leaves a process outside its process group: the session's cgroup takes
/// it when the session ends, and when the daemon was SIGKILLed, the next daemon to start
/// sweeps the group it left. Where the daemon can make no cgroup (not root, no cgroup v2),
/// skipped.
#[test]
fn what_a_run_session_left_behind_goes_with_its_cgroup() {
    if host_daemon::cgroup::Cgroup::create("probe").is_none() {
        eprintln!("skipped: no cgroup v2 this test may write");
        return;
    }
    for (name, signal) in [("cg-term", "-TERM"), ("cg-kill", "-KILL")] {
        let marker = (40_000 + free_port()).to_string();
        let script = leaving_script(&marker);
        let addr = format!("127.0.0.1:{}", free_port());
        let mut daemon = host(
            &["--listen", &addr, "--name", name],
            &["/bin/sh", "-c", &script],
        );
        wait_for_server(&mut daemon, &addr);
        wait_for("the process the app left", LONG, || {
            left_behind(&marker).is_some()
        });
        let pid = daemon.0.id().to_string();
        std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap();
        daemon.finish(LONG);
        if signal == "-KILL" {
            // Nothing of the daemon ran to clean up: the group and the process are there
            // until a daemon starts.
            assert!(left_behind(&marker).is_some(), "killed without its daemon");
            let next = host(
                &["--listen", "127.0.0.1:1", "--name", "cg-next"],
                &["/bin/true"],
            );
            next.finish(LONG);
        }
        wait_for("the left process to go with its session", LONG, || {
            left_behind(&marker).is_none()
        });
    }
}

/// A Wayland app we did not write (weston-flower, whose still picture also exercises the
/// repeats of an unchanged screen) reaches the viewer as a picture that is not blank.
#[test]
fn a_third_party_wayland_app_is_seen() {
    app_is_seen(&[&tool("weston-flower")], "weston");
}

/// Mesa's software EGL over wl_shm (weston-simple-egl) in the default compositor.
#[test]
fn a_software_egl_app_is_seen() {
    app_is_seen(&[&tool("weston-simple-egl")], "simpleegl");
}

/// The session's pictures, as a viewer gets them, are not all blank or one colour.
fn app_is_seen(app: &[&str], name: &str) {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut daemon = host(
        &[
            "--listen",
            &addr,
            "--name",
            name,
            "--no-audio",
            "--width",
            "640",
            "--height",
            "360",
        ],
        app,
    );
    wait_for_server(&mut daemon, &addr);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.y4m");
    let url = format!("http://{addr}/");
    view(&url, name, 30, &["-o", out.to_str().unwrap()]);
    daemon.interrupt(LONG);
    // The most lit of the pictures shown (a spinning triangle is edge-on now and then).
    let (_, frames) = lumas(&out);
    let lit = frames
        .iter()
        .map(|y| y.iter().filter(|&&p| p > 40).count() as f64 / y.len() as f64)
        .fold(0.0, f64::max);
    assert!(
        (0.02..0.98).contains(&lit),
        "{:.1}% of the picture is lit: blank, or one colour",
        lit * 100.0
    );
    no_leftovers(name);
}

/// A 640x360 session `name` of `app` in Lantern's own compositor, serving directly (with
/// stats); its viewers' URL.
fn own_session(name: &str, app: &[&str]) -> (Proc, String) {
    let size = ["--stats", "--width", "640", "--height", "360"];
    serving("lantern", name, &size, app)
}

/// weston-presentation-shm gets wp_presentation feedback for its frames in Lantern's own
/// compositor: each presented (taken for the encoder) about a frame after the last.
#[test]
fn presentation_feedback_reaches_the_app_in_our_own_compositor() {
    let dir = shared_dir();
    let printed = dir.path().join("presentation.txt");
    let shell = format!(
        "exec stdbuf -oL {} > {} 2>&1",
        tool("weston-presentation-shm"),
        printed.display()
    );
    let (daemon, url) = own_session("presentation", &["sh", "-c", &shell]);
    view(&url, "presentation", 60, &[]);
    let lines = || {
        std::fs::read_to_string(&printed)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("c2p"))
            .map(String::from)
            .collect::<Vec<_>>()
    };
    wait_for("the app's feedback lines", LONG, || lines().len() >= 60);
    daemon.interrupt(LONG);
    // "p2p 16647 us": presentations about a frame apart at 60 fps, once running.
    let gaps: Vec<u64> = lines()
        .iter()
        .skip(10)
        .filter_map(|l| {
            l.split("p2p")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect();
    assert!(gaps.len() >= 40, "{:?}", lines());
    let mut sorted = gaps.clone();
    sorted.sort_unstable();
    let median = sorted[sorted.len() / 2];
    assert!((8_000..50_000).contains(&median), "{gaps:?}");
    no_leftovers("presentation");
}

/// weston-simple-shm, which keeps two buffers and aborts when the compositor holds both (as
/// sway 1.7 does: "Both buffers busy at redraw(). Server bug?"), runs in Lantern's own
/// compositor until the session is stopped, its every picture captured as it is committed.
#[test]
fn a_double_buffered_app_keeps_drawing_in_our_own_compositor() {
    let (daemon, url) = own_session("simpleshm", &[&tool("weston-simple-shm")]);
    let viewer = view(&url, "simpleshm", 120, &[]);
    let shown = final_stats(&viewer.stderr);
    assert_eq!(shown["frames"], 120, "{shown}");
    let out = daemon.interrupt(LONG);
    let text = stderr(&out);
    assert!(!text.contains("busy"), "{text}");
    // Stopped by the signal, not ended by the app.
    assert_eq!(out.status.code(), Some(130), "{text}");
    let capture = &final_stats(&out.stderr)["capture"];
    assert!(capture["frames"].as_u64() >= Some(120), "{capture}");
    assert_eq!(capture["failures"], 0, "{capture}");
    no_leftovers("simpleshm");
}

/// `--capture pipewire:NODE`: a GStreamer `videotestsrc ! pipewiresink` node, run as the
/// session's app on the session's PipeWire, reaches the viewer at its full rate.
#[test]
fn a_pipewire_video_node_is_captured() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut daemon = host(
        &[
            "--listen",
            &addr,
            "--name",
            "pwnode",
            "--no-audio",
            "--capture",
            "pipewire:lantern-test-node",
            "--stats",
        ],
        &[
            &tool("gst-launch-1.0"),
            "-q",
            "videotestsrc",
            "is-live=true",
            "!",
            "video/x-raw,format=BGRx,width=1280,height=720,framerate=60/1",
            "!",
            "pipewiresink",
            "mode=provide",
            "stream-properties=props,media.class=Video/Source,node.name=lantern-test-node",
        ],
    );
    wait_for_server(&mut daemon, &addr);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.y4m");
    let url = format!("http://{addr}/");
    let viewer = view(&url, "pwnode", 120, &["-o", out.to_str().unwrap()]);
    assert_eq!(final_stats(&viewer.stderr)["frames"], 120);
    let host = daemon.interrupt(LONG);
    let text = stderr(&host);
    assert!(text.contains("width=1280 height=720"), "{text}");
    // GStreamer's pipewiresink hands out shared memory (memfds), and the stats say so.
    assert_eq!(
        final_stats(&host.stderr)["capture"]["buffers"],
        "shm",
        "{text}"
    );
    // videotestsrc's colour bars: the picture is neither blank nor one colour.
    let (size, y) = last_luma(&out);
    assert_eq!(size, (1280, 720));
    let (min, max) = (y.iter().min().unwrap(), y.iter().max().unwrap());
    assert!(max - min > 100, "luma {min}..{max}: not the colour bars");
    no_leftovers("pwnode");
}
