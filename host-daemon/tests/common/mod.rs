//! What host-daemon's end-to-end tests share: the test app where a session's user can run
//! it, the daemon's processes found through /proc, and the viewer's checks.

#![allow(dead_code)] // each test file uses its own share

use std::net::TcpStream;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use lantern_testkit::*;
use serde_json::Value;

pub const LONG: Duration = Duration::from_secs(90);

/// `host-daemon run ARGS -- APP…` with piped output.
pub fn host(args: &[&str], app: &[&str]) -> Proc {
    host_via(&[], args, app)
}

/// The same, started through `launcher` (a command that runs the rest, such as `prlimit
/// --nofile=1024`).
pub fn host_via(launcher: &[&str], args: &[&str], app: &[&str]) -> Proc {
    let daemon = bin("host-daemon");
    let mut all: Vec<&str> = launcher.iter().skip(1).copied().collect();
    if !launcher.is_empty() {
        all.push(daemon.to_str().unwrap());
    }
    all.push("run");
    all.extend_from_slice(args);
    all.push("--");
    all.extend_from_slice(app);
    match launcher.first() {
        Some(program) => spawn(program, &all),
        None => spawn(&daemon, &all),
    }
}

/// The test app, where the session's user can run it: a root daemon runs apps as the
/// unprivileged `lantern`, who may not reach into the build's directory (a checkout under
/// /root, say), so it gets a copy in a directory open to all.
pub fn app_bin() -> String {
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
/// A shell script for an app that leaves a process outside its process group (`setsid`): a
/// sleep of a length of its own, `marker`, to be found by [`left_behind`].
pub fn leaving_script(marker: &str) -> String {
    format!("setsid sleep {marker} >/dev/null 2>&1 & exec sleep 600")
}

/// The live (not zombie) `sleep MARKER` a [`leaving_script`] left, if any.
pub fn left_behind(marker: &str) -> Option<i64> {
    let wanted = format!("sleep\0{marker}\0");
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i64>().ok())
        .find(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            cmdline == wanted.as_bytes() && !stat.contains(") Z ")
        })
}

pub fn leftovers(name: &str) -> Vec<String> {
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
pub fn wait_for_server(daemon: &mut Proc, addr: &str) {
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

pub fn wait_for_session(name: &str) {
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

pub fn no_leftovers(name: &str) {
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

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The frame numbers of a `--latency-log`, in the order shown.
pub fn logged_frames(path: &Path) -> Vec<u32> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|line| line.split(',').next().unwrap().parse().unwrap())
        .collect()
}

/// Stamps increasing, every gap counted as a drop, every frame stamped; a stamp shown twice
/// in a row is one of the `repeats` the daemon's capture sent of a screen that stood still
/// (the app missed a frame by over 100 ms, as it may on a loaded machine).
pub fn check_stamps(frames: &[u32], stats: &serde_json::Value, expected: usize, repeats: u64) {
    check_stamps_but(frames, stats, expected, 0, repeats);
}

/// As [`check_stamps`], but up to `unread` pictures may have a stamp that does not read (a
/// lossy encoder's blur over it; each is counted as unstamped, and leaves a gap in the log
/// that is no drop).
pub fn check_stamps_but(
    frames: &[u32],
    stats: &serde_json::Value,
    expected: usize,
    unread: usize,
    repeats: u64,
) {
    // The log has a line per stamp read; the viewer counts the others as unstamped.
    let unstamped = stats["unstamped"].as_u64().expect("unstamped") as usize;
    check_stamp_numbers(frames, unstamped, unread, repeats, stats, expected);
}

/// The pictures a daemon's capture sent again over its whole session, from its closing stats.
pub fn capture_repeats(daemon: &Output) -> u64 {
    final_stats(&daemon.stderr)["capture"]["repeats"]
        .as_u64()
        .expect("the daemon's closing stats count its capture's repeats")
}

/// moq-sub on `name` at `url` for `frames` frames, with `--stats` and `extra`; it must succeed.
pub fn view(url: &str, name: &str, frames: usize, extra: &[&str]) -> Output {
    let count = frames.to_string();
    let mut args = vec!["--url", url, "--name", name, "--frames", &count, "--stats"];
    args.extend_from_slice(extra);
    let viewer = spawn(bin("moq-sub"), &args).finish(LONG);
    assert!(
        viewer.status.success(),
        "moq-sub {name} failed:\n{}",
        stderr(&viewer)
    );
    viewer
}

/// A session `name` of `app` in `compositor`, serving directly, without sound, with `extra`
/// flags; once it serves, the daemon and its viewers' URL.
pub fn serving(compositor: &str, name: &str, extra: &[&str], app: &[&str]) -> (Proc, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let mut args = vec![
        "--listen",
        &addr,
        "--name",
        name,
        "--compositor",
        compositor,
    ];
    args.push("--no-audio");
    args.extend_from_slice(extra);
    let mut daemon = host(&args, app);
    wait_for_server(&mut daemon, &addr);
    (daemon, format!("http://{addr}/"))
}

/// A granted viewer (`token`) of `name` at `url` that plays `script` (written into `dir`)
/// within its `frames` frames.
pub fn play_script(
    url: &str,
    name: &str,
    frames: usize,
    (dir, script): (&Path, &str),
    token: &str,
) -> Output {
    let script = write(dir, "script.txt", script);
    let args = [
        "--timeout",
        "30",
        "--input-script",
        &script,
        "--grant",
        token,
    ];
    view(url, name, frames, &args)
}

/// Wait until a viewer joining the stream `source` names (`--url U --name N`, or `--sdp F`)
/// sees only the app's stamped pictures. Until the app's first commit the session streams
/// the compositor's empty output, and a viewer joins at a keyframe, which may come from
/// before that commit.
pub fn wait_for_app_picture(source: &[&str]) {
    wait_for("the app's picture", LONG, || {
        let mut args = source.to_vec();
        args.extend(["--no-window", "--frames", "5", "--stats"]);
        let viewer = spawn(bin("moq-sub"), &args).finish(LONG);
        // Not yet published is not ready either.
        viewer.status.success() && final_stats(&viewer.stderr)["unstamped"] == 0
    });
}

/// Watch `frames` frames once the app shows, checking its stamps arrive in order with every
/// gap reported as a drop.
pub fn watch_stamped(url: &str, name: &str, frames: usize) {
    watch_stamped_but(url, name, frames, 0);
}

/// As [`watch_stamped`], with up to `unread` stamps that do not read ([`check_stamps_but`]).
pub fn watch_stamped_but(url: &str, name: &str, frames: usize, unread: usize) {
    wait_for_app_picture(&["--url", url, "--name", name]);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("latency.csv");
    let viewer = view(url, name, frames, &["--latency-log", log.to_str().unwrap()]);
    let stats = final_stats(&viewer.stderr);
    // The daemon still runs, so its count of repeats is not known yet: any stamp may show
    // twice in a row, but none out of order.
    check_stamps_but(&logged_frames(&log), &stats, frames, unread, frames as u64);
}

/// The size and the luma plane of the last frame of a y4m recording.
pub fn last_luma(path: &Path) -> ((u32, u32), Vec<u8>) {
    let (size, mut frames) = lumas(path);
    (size, frames.pop().expect("no frame decoded"))
}

/// The size and the luma plane of every frame of a y4m file.
pub fn lumas(path: &Path) -> ((u32, u32), Vec<Vec<u8>>) {
    let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let mut reader = lantern_proto::y4m::Reader::new(file).unwrap();
    let header = reader.header();
    let mut frame = reader.new_frame();
    let mut all = Vec::new();
    while reader.read_frame(&mut frame.view_mut()).unwrap() {
        let [(y, _), _, _] = frame.planes();
        all.push(y.to_vec());
    }
    ((header.width, header.height), all)
}

/// The app's log of one kind of press (`key`, `button`): each code (`field`) and whether it
/// went down, in order.
pub fn presses(events: &[Value], kind: &str, field: &str) -> Vec<(u64, bool)> {
    events
        .iter()
        .filter(|e| e["kind"] == kind)
        .map(|e| (e[field].as_u64().unwrap(), e["down"].as_bool().unwrap()))
        .collect()
}

/// A directory the session's user (`lantern`, under a root daemon) can write into.
pub fn shared_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

pub fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// The app's input log, a JSON value a line (empty until the app writes it).
pub fn app_log(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// Where the app's pointer went, in the order it moved (surface pixels).
pub fn pointer_places(events: &[Value]) -> Vec<(f64, f64)> {
    events
        .iter()
        .filter(|e| e["kind"] == "motion")
        .map(|e| (e["x"].as_f64().unwrap(), e["y"].as_f64().unwrap()))
        .collect()
}

/// The grant a `--grant-out` file holds, once the daemon wrote it.
pub fn grant(path: &Path) -> String {
    wait_for("the session's grant", LONG, || path.exists());
    std::fs::read_to_string(path).unwrap().trim().to_string()
}

/// A host-daemon session of the test app, logging the input it receives, and its grant.
pub struct Session {
    pub daemon: Proc,
    pub dir: tempfile::TempDir,
    pub log: std::path::PathBuf,
    pub token: String,
}

/// Start session `name` streaming to `target` (`--url URL` or `--listen ADDR`, waited for
/// unless the relay takes a `--token`; then any more options for `run`).
pub fn session(name: &str, target: &[&str]) -> Session {
    session_via(&[], name, target)
}

/// [`session`] at 640x360 (60 fps: the bitrate starts at 1106 kbit/s) through `relay`.
pub fn small_session(name: &str, relay: &Relay) -> Session {
    let url = relay.url();
    session(name, &["--url", &url, "--width", "640", "--height", "360"])
}

/// [`session`], the daemon started through `launcher` (see [`host_via`]).
pub fn session_via(launcher: &[&str], name: &str, target: &[&str]) -> Session {
    let dir = shared_dir();
    let (log, grant_file) = (dir.path().join("app.log"), dir.path().join("grant"));
    let mut args = target.to_vec();
    args.extend(["--name", name, "--no-audio", "--stats"]);
    args.extend(["--grant-out", grant_file.to_str().unwrap()]);
    let app = app_bin();
    let app = [app.as_str(), "app", "--input-log", log.to_str().unwrap()];
    let mut daemon = host_via(launcher, &args, &app);
    // Input sent before the app's window is up would go nowhere: wait for its picture (where
    // an open relay or the direct server lets a viewer look without a token).
    let url = match target {
        ["--listen", addr, ..] => {
            wait_for_server(&mut daemon, addr);
            Some(format!("http://{addr}/"))
        }
        // A relay that wants a token lets no one look without one.
        ["--url", url, rest @ ..] if !rest.contains(&"--token") => Some(url.to_string()),
        _ => None,
    };
    // A session whose input is not `granted` makes no grant.
    let granted = !target
        .windows(2)
        .any(|w| w[0] == "--input" && w[1] != "granted");
    let token = if granted {
        grant(&grant_file)
    } else {
        String::new()
    };
    if let Some(url) = url {
        // As the player, so that a server for players only lets it look too.
        let mut source = vec!["--url", &url, "--name", name];
        if granted {
            source.extend(["--grant", &token]);
        }
        wait_for_app_picture(&source);
    }
    Session {
        daemon,
        dir,
        log,
        token,
    }
}

/// The host's closing input totals.
pub fn host_input(out: &std::process::Output) -> Value {
    final_stats(&out.stderr)["input"].clone()
}

/// A running daemon's stderr, a line at a time, kept as it comes.
pub struct Lines(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl Lines {
    pub fn read(daemon: &mut Proc) -> Self {
        use std::io::BufRead;
        let stderr = daemon.0.stderr.take().unwrap();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                kept.lock().unwrap().push(line);
            }
        });
        Self(lines)
    }

    /// The input totals of the newest stats line.
    pub fn last_input(&self) -> Option<Value> {
        let lines = self.0.lock().unwrap();
        lines.iter().rev().find_map(|line| {
            let value: Value = serde_json::from_str(line).ok()?;
            Some(value.get("input")?.clone()).filter(|v| !v.is_null())
        })
    }

    /// The adaptive bitrate's figures of the newest stats line.
    pub fn last_rate(&self) -> Option<Value> {
        let lines = self.0.lock().unwrap();
        lines.iter().rev().find_map(|line| {
            let value: Value = serde_json::from_str(line).ok()?;
            Some(value.get("video")?.get("rate")?.clone())
        })
    }

    /// The closing `--stats` line, once it came.
    pub fn final_stats(&self) -> Value {
        wait_for("the closing stats line", LONG, || {
            self.saw("\"final\":true")
        });
        let lines = self.0.lock().unwrap();
        let line = lines.iter().find(|l| l.contains("\"final\":true")).unwrap();
        serde_json::from_str(line).unwrap()
    }

    /// Every JSON line so far.
    pub fn stats_lines(&self) -> Vec<Value> {
        let lines = self.0.lock().unwrap();
        lines
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Whether a line containing `text` came.
    pub fn saw(&self, text: &str) -> bool {
        self.0
            .lock()
            .unwrap()
            .iter()
            .any(|line| line.contains(text))
    }
}

/// A connection to `url`, the client set up by `with` (what it publishes or subscribes to).
pub async fn dial(
    url: &str,
    with: impl FnOnce(moq_tokio::Client) -> moq_tokio::Client,
) -> moq_tokio::Connection {
    let connect = lantern_net::ConnectArgs {
        url: vec![url.parse().unwrap()],
        ..Default::default()
    };
    let (client, relays) = connect.client(None).unwrap();
    let connection = with(client).connect(relays.addrs());
    lantern_net::established(connection, &relays, Duration::from_secs(20))
        .await
        .unwrap()
}

/// A viewer of an attacker's making: publishes broadcast `path` with `grant` on its grant
/// track (any bytes), and sends `datagrams` on its input track as they are once a host
/// listens. Dropping what it returns leaves.
pub async fn raw_viewer(
    url: &str,
    path: &str,
    grant: Option<&str>,
    datagrams: Vec<Vec<u8>>,
) -> Leaves {
    let origin = moq_tokio::origin::spawn();
    let connection = dial(url, |client| client.with_publisher(origin.consume())).await;
    let broadcast = origin.create_broadcast(path).unwrap();
    let mut input = broadcast.create_track("input", None).unwrap();
    let grant = grant.map(|grant| {
        let mut track = broadcast.create_track("grant", None).unwrap();
        let now = moq_net::Timestamp::now();
        track.write_frame(now, grant.as_bytes().to_vec()).unwrap();
        track
    });
    broadcast.announce(Default::default()).unwrap();
    tokio::time::timeout(Duration::from_secs(20), input.used())
        .await
        .expect("the host never listened")
        .unwrap();
    for datagram in datagrams {
        input
            .append_datagram(moq_net::Timestamp::now(), datagram)
            .unwrap();
    }
    Leaves {
        _connection: connection,
        broadcast,
        _tracks: (grant, input),
    }
}

/// A raw viewer's connection and tracks: dropping it leaves.
pub struct Leaves {
    _connection: moq_tokio::Connection,
    broadcast: moq_net::broadcast::Producer,
    _tracks: (Option<moq_net::track::Producer>, moq_net::track::Producer),
}

impl Drop for Leaves {
    fn drop(&mut self) {
        self.broadcast.close();
    }
}
