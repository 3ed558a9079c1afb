//! `host-daemon serve` end to end: two sessions of the test app at once from one daemon,
//! created, listed, watched, granted input and stopped through `host-daemon ctl` on the
//! control socket, which only the daemon's owner can use.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;
use lantern_testkit::*;

/// A daemon serving on a socket in a fresh directory, with a TOML config of defaults.
struct Daemon {
    proc: Proc,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Daemon {
    fn start(config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("control/host-daemon.sock");
        let toml = dir.path().join("host-daemon.toml");
        std::fs::write(&toml, config).unwrap();
        let proc = spawn(
            bin("host-daemon"),
            &[
                "serve",
                "--config",
                toml.to_str().unwrap(),
                "--socket",
                socket.to_str().unwrap(),
            ],
        );
        wait_for("the control socket", LONG, || socket.exists());
        Self {
            proc,
            socket,
            _dir: dir,
        }
    }

    fn ctl(&self, args: &[&str]) -> Output {
        ctl_as(None, &self.socket, args)
    }

    /// A call that must succeed; its JSON answer.
    fn ok(&self, args: &[&str]) -> serde_json::Value {
        let out = self.ctl(args);
        assert!(out.status.success(), "ctl {args:?}: {}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
    }
}

/// `host-daemon ctl --socket SOCKET ARGS`, as `user` if given.
fn ctl_as(user: Option<&str>, socket: &Path, args: &[&str]) -> Output {
    let daemon = bin("host-daemon");
    let mut all: Vec<&str> = vec!["ctl", "--socket", socket.to_str().unwrap()];
    all.extend_from_slice(args);
    let mut command = match user {
        None => std::process::Command::new(&daemon),
        Some(user) => {
            let mut command = std::process::Command::new(tool("setpriv"));
            let (reuid, regid) = (format!("--reuid={user}"), format!("--regid={user}"));
            command
                .args([&reuid, &regid, "--clear-groups"])
                .arg(&daemon);
            command
        }
    };
    command.args(&all).output().unwrap()
}

/// A daemon with `config` when the tests run as root (sessions get users of their own only
/// under a root daemon); `None`, said, otherwise.
fn root_daemon(config: &str) -> Option<Daemon> {
    if !is_root() {
        eprintln!("skipped: sessions run as users of their own only under a root daemon");
        return None;
    }
    Some(Daemon::start(config))
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").unwrap().uid() == 0
}

use std::os::unix::fs::MetadataExt;

/// Two sessions at once from one daemon, each its own compositor, sound and broadcast: both
/// stream the app's stamps in order; list and stats show them; stop ends one and leaves the
/// other; SIGTERM ends the daemon with nothing left behind.
#[test]
fn two_sessions_from_one_serve() {
    let daemon = Daemon::start("max_sessions = 2\n[session]\nwidth = 640\nheight = 360\n");
    let app = app_bin();
    let mut urls = Vec::new();
    for name in ["serve-a", "serve-b"] {
        let addr = format!("127.0.0.1:{}", free_port());
        let created = daemon.ok(&["create", name, "--listen", &addr, "--", &app, "app"]);
        assert_eq!(created["state"], "running", "{created}");
        assert_eq!(
            (created["width"].as_u64(), created["height"].as_u64()),
            (Some(640), Some(360))
        );
        assert!(created["fingerprint"].is_string(), "{created}");
        assert_eq!(
            created["page"].as_str(),
            Some(
                format!(
                    "http://{addr}/?name={name}#fp={}",
                    created["fingerprint"].as_str().unwrap()
                )
                .as_str()
            ),
            "{created}"
        );
        urls.push((name, format!("http://{addr}/")));
    }

    // A third is one too many; a name in use and an app that is not there are refused.
    let third = daemon.ctl(&[
        "create",
        "serve-c",
        "--listen",
        "127.0.0.1:1",
        "--",
        &app,
        "app",
    ]);
    assert!(!third.status.success());
    assert!(
        stderr(&third).contains("max_sessions"),
        "{}",
        stderr(&third)
    );
    let twice = daemon.ctl(&["create", "serve-a", "--listen", "127.0.0.1:1", "--", &app]);
    assert!(
        stderr(&twice).contains("already running"),
        "{}",
        stderr(&twice)
    );

    // Both stream at once.
    let viewers: Vec<_> = urls
        .iter()
        .map(|(name, url)| {
            let (name, url) = (name.to_string(), url.clone());
            std::thread::spawn(move || watch_stamped(&url, &name, 180))
        })
        .collect();
    for viewer in viewers {
        viewer.join().expect("a viewer's checks failed");
    }

    let list = daemon.ctl(&["list"]);
    let table = String::from_utf8_lossy(&list.stdout).into_owned();
    assert!(list.status.success(), "{}", stderr(&list));
    for name in ["serve-a", "serve-b"] {
        let line = table
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{table}"));
        assert!(
            line.contains("running") && line.contains("640x360"),
            "{table}"
        );
    }
    let stats = daemon.ok(&["stats", "serve-a"]);
    assert!(
        stats["stats"]["capture"]["frames"].as_u64() > Some(0),
        "{stats}"
    );
    assert!(
        stats["stats"]["video"]["fps"].as_f64() > Some(0.0),
        "{stats}"
    );

    // A grant from `ctl grant` lets a viewer's keys into serve-b.
    let grant = daemon.ctl(&["grant", "serve-b", "--viewer", "player1"]);
    assert!(grant.status.success(), "{}", stderr(&grant));
    let token = String::from_utf8_lossy(&grant.stdout).trim().to_string();
    let credential = lantern_net::grant::Credential::parse(&token).unwrap();
    assert_eq!(credential.viewer, "player1");
    // The grant's answer gives the session's page with the grant in its fragment (never
    // sent to a server), beside the certificate's fingerprint.
    let page = format!("{}?name=serve-b#fp=", urls[1].1);
    let said = stderr(&grant);
    assert!(said.contains(&page), "{said}");
    assert!(
        said.contains(&format!("&grant={}", token.replace('~', "%7E"))),
        "{said}"
    );
    assert!(
        said.contains(&format!("--grant {}", credential.id)),
        "{said}"
    );
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("keys.txt");
    std::fs::write(&script, "0 tap KeyA\n").unwrap();
    let url_b = &urls[1].1;
    let script = script.to_str().unwrap();
    view(
        url_b,
        "serve-b",
        30,
        &["--input-script", script, "--grant", &token],
    );
    wait_for("serve-b to inject the key", LONG, || {
        let stats = daemon.ok(&["stats", "serve-b"]);
        stats["stats"]["input"]["injected"].as_u64() >= Some(2)
    });
    // Revoked, one grant or all of a viewer's; a second time there is nothing to revoke.
    let revoked = daemon.ok(&["revoke", "serve-b", "--viewer", "player1"]);
    assert_eq!(revoked["revoked"], 1, "{revoked}");
    let again = daemon.ctl(&["revoke", "serve-b", "--grant", &credential.id]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("no live grant"),
        "{}",
        stderr(&again)
    );
    // A player revoked while typing: from then on the host refuses its datagrams (counted)
    // and nothing more of it is injected.
    let input = |daemon: &Daemon| daemon.ok(&["stats", "serve-b"])["stats"]["input"].clone();
    let taps: String = (0..300)
        .map(|i| format!("{} tap KeyA\n", i * 100))
        .collect();
    let taps_file = dir.path().join("taps.txt");
    std::fs::write(&taps_file, taps).unwrap();
    let taps_file = taps_file.to_str().unwrap();
    let grant2 = daemon.ctl(&["grant", "serve-b", "--viewer", "player2"]);
    let token2 = String::from_utf8_lossy(&grant2.stdout).trim().to_string();
    let before = input(&daemon)["injected"].as_u64().unwrap();
    // A player tapping away (a tap each 100 ms for 30 s) with `grant`.
    let tapping = |grant: &str| {
        let args = ["--url", url_b, "--name", "serve-b", "--no-window"];
        let mut args = args.to_vec();
        args.extend([
            "--frames",
            "100000",
            "--input-script",
            taps_file,
            "--grant",
            grant,
        ]);
        spawn(bin("moq-sub"), &args)
    };
    let typing = tapping(&token2);
    wait_for("player2's taps", LONG, || {
        input(&daemon)["injected"].as_u64() >= Some(before + 6)
    });
    // (The stats are a snapshot the session takes about once a second, so what they say is
    // read only once they show the revocation at work.)
    let authorized = input(&daemon)["authorized"].as_u64().unwrap();
    let revoked = daemon.ok(&["revoke", "serve-b", "--viewer", "player2"]);
    assert_eq!(revoked["revoked"], 1, "{revoked}");
    let refused = |at_least: u64| {
        wait_for("player2's datagrams refused", LONG, || {
            input(&daemon)["dropped"]["revoked"].as_u64() >= Some(at_least)
        });
        input(&daemon)
    };
    let at_revoke = refused(5);
    let later = refused(at_revoke["dropped"]["revoked"].as_u64().unwrap() + 10);
    assert_eq!(
        later["injected"], at_revoke["injected"],
        "nothing of a revoked player lands: {at_revoke} → {later}"
    );
    assert_eq!(
        later["authorized"].as_u64(),
        Some(authorized - 1),
        "a revoked viewer no longer counts as authorized: {later}"
    );
    drop(typing);
    // A grant that expired before its player came never lets anything in.
    let grant3 = daemon.ctl(&["grant", "serve-b", "--viewer", "player3", "--ttl", "1"]);
    let token3 = String::from_utf8_lossy(&grant3.stdout).trim().to_string();
    let expires = lantern_net::grant::Credential::parse(&token3)
        .unwrap()
        .expires;
    wait_for("player3's grant to expire", LONG, || {
        lantern_proto::clock::now_unix_us() / 1_000_000 > expires
    });
    let before = input(&daemon)["injected"].as_u64().unwrap();
    let late = tapping(&token3);
    wait_for("player3's datagrams refused as expired", LONG, || {
        input(&daemon)["dropped"]["expired"].as_u64() >= Some(3)
    });
    assert_eq!(input(&daemon)["injected"].as_u64(), Some(before));
    drop(late);

    let nogrant = daemon.ctl(&["grant", "serve-z"]);
    assert!(
        stderr(&nogrant).contains("no running session \"serve-z\""),
        "{}",
        stderr(&nogrant)
    );

    let stopped = daemon.ok(&["stop", "serve-a"]);
    assert_eq!(stopped["state"], "ended");
    assert_eq!(stopped["ended"]["reason"], "stopped");
    assert!(
        stopped["ended"]["summary"]["video"]["published"].as_u64() > Some(0),
        "{stopped}"
    );
    no_leftovers("serve-a");
    let json = daemon.ok(&["list", "--json"]);
    let names: Vec<_> = json["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].clone())
        .collect();
    assert_eq!(names, ["serve-b"]);
    assert!(
        !leftovers("serve-b").is_empty(),
        "the other session runs on"
    );

    let missing = daemon.ctl(&["stats", "serve-a"]);
    assert!(
        stderr(&missing).contains("no session \"serve-a\""),
        "{}",
        stderr(&missing)
    );

    let socket = daemon.socket.clone();
    let pid = daemon.proc.0.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let Daemon { proc, _dir, .. } = daemon;
    let out = proc.finish(LONG);
    assert_eq!(out.status.code(), Some(143), "{}", stderr(&out));
    no_leftovers("serve-b");
    assert!(!socket.exists(), "the socket is removed at the end");
}

/// Under a root daemon each session runs as a user of its own (lantern-1, lantern-2, made by
/// ci/setup): one session's app, probing the other, cannot reach its runtime directory (where
/// its Wayland and PipeWire sockets are), its X11 display (XWayland's sockets are in the
/// shared /tmp/.X11-unix and in the abstract namespace: the X server lets its own user in
/// only), nor signal its app, while it reaches its own.
#[test]
fn sessions_run_as_users_of_their_own_and_cannot_reach_each_other() {
    let Some(daemon) = root_daemon("max_sessions = 3\n[session]\nwidth = 320\nheight = 180\n")
    else {
        return;
    };
    let addr = format!("127.0.0.1:{}", free_port());
    let a = daemon.ok(&[
        "create",
        "iso-a",
        "--listen",
        &addr,
        "--",
        &app_bin(),
        "app",
    ]);
    let app_a = a["app_pid"].as_i64().expect("the app's pid");
    let environ = std::fs::read(format!("/proc/{app_a}/environ")).unwrap();
    let var = |name: &str| {
        environ
            .split(|&b| b == 0)
            .find_map(|var| var.strip_prefix(format!("{name}=").as_bytes()))
            .map(|value| String::from_utf8_lossy(value).into_owned())
    };
    let runtime_a = var("XDG_RUNTIME_DIR").expect("the app's runtime dir");
    let display_a = var("DISPLAY").expect("the app's X11 display (XWayland)");

    let dir = shared_dir();
    let out = dir.path().join("probe.txt");
    let script = format!(
        "{{ [ -S \"$XDG_RUNTIME_DIR/$WAYLAND_DISPLAY\" ] && echo own-socket; \
         ls {runtime_a} >/dev/null 2>&1 && echo listed; \
         for s in wayland-0 wayland-1 pipewire-0 pipewire-0-manager; do \
           [ -e {runtime_a}/$s ] && echo reached $s; done; \
         kill -0 {app_a} 2>/dev/null && echo signalled; \
         xdotool getmouselocation >/dev/null 2>&1 && echo own-x11; \
         DISPLAY={display_a} xdotool getmouselocation >/dev/null 2>&1 && echo reached x11; \
         echo probed; }} > {} 2>&1; exec sleep 600",
        out.display()
    );
    let addr = format!("127.0.0.1:{}", free_port());
    let b = daemon.ok(&[
        "create", "iso-b", "--listen", &addr, "--", "/bin/sh", "-c", &script,
    ]);
    let (user_a, user_b) = (a["user"].as_str().unwrap(), b["user"].as_str().unwrap());
    assert!(user_a.starts_with("lantern-") && user_b.starts_with("lantern-"));
    assert_ne!(user_a, user_b);
    wait_for("the probe", LONG, || {
        std::fs::read_to_string(&out).is_ok_and(|probe| probe.contains("probed"))
    });
    let probe = std::fs::read_to_string(&out).unwrap();
    assert_eq!(
        probe, "own-socket\nown-x11\nprobed\n",
        "session b reached into a"
    );
    // A user named for a session is never shared with a running one.
    let shared = daemon.ctl(&[
        "create",
        "iso-c",
        "--user",
        user_a,
        "--listen",
        "127.0.0.1:1",
        "--",
        "/bin/true",
    ]);
    assert!(!shared.status.success());
    assert!(
        stderr(&shared).contains("never share a user"),
        "{}",
        stderr(&shared)
    );
    for name in ["iso-a", "iso-b"] {
        daemon.ok(&["stop", name]);
    }
}

/// A session's app that leaves a process outside its process group (`setsid`) does not
/// outlive the session: the session's account is its alone, and whatever runs as it when the
/// session ends is killed.
#[test]
fn nothing_a_session_left_behind_outlives_it() {
    let Some(daemon) = root_daemon("max_sessions = 1\n[session]\nwidth = 320\nheight = 180\n")
    else {
        return;
    };
    let marker = (40_000 + free_port()).to_string();
    let script = leaving_script(&marker);
    let addr = format!("127.0.0.1:{}", free_port());
    let created = daemon.ok(&[
        "create", "left", "--listen", &addr, "--", "/bin/sh", "-c", &script,
    ]);
    let app = created["app_pid"].as_i64().unwrap();
    let find = || left_behind(&marker);
    wait_for("the process the app left", LONG, || find().is_some());
    let left = find().unwrap();
    let group = |pid: i64| {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        after.split(' ').nth(2).unwrap().to_string()
    };
    assert_ne!(group(left), group(app), "it left the app's process group");
    daemon.ok(&["stop", "left"]);
    wait_for("the left process to go with its session", LONG, || {
        find().is_none()
    });
}

/// The socket is 0600 in a 0700 directory; another user can neither open it nor, should its
/// mode be widened, be served through it (the peer's credentials are checked).
#[test]
fn the_control_socket_is_the_owners_alone() {
    let daemon = Daemon::start("");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&daemon.socket), 0o600);
    assert_eq!(mode(daemon.socket.parent().unwrap()), 0o700);
    assert!(daemon.ctl(&["list"]).status.success());

    // Another user needs root to become; the lock is the same without it.
    if !is_root() {
        eprintln!("not root: another user's refusal is not checked");
        return;
    }
    let other = "lantern";
    let out = ctl_as(Some(other), &daemon.socket, &["list"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("permission denied"),
        "{}",
        stderr(&out)
    );

    // Open the file system's lock: the peer check still refuses.
    let open = std::fs::Permissions::from_mode(0o777);
    std::fs::set_permissions(daemon._dir.path(), open.clone()).unwrap();
    std::fs::set_permissions(daemon.socket.parent().unwrap(), open.clone()).unwrap();
    std::fs::set_permissions(&daemon.socket, open).unwrap();
    let out = ctl_as(Some(other), &daemon.socket, &["list"]);
    assert!(!out.status.success(), "another user was served");
    assert!(
        stderr(&out).contains("closed the connection"),
        "{}",
        stderr(&out)
    );
    assert!(daemon.ctl(&["list"]).status.success(), "the owner still is");
}

/// A second daemon on a live socket is refused rather than stealing it.
#[test]
fn one_daemon_per_socket() {
    let daemon = Daemon::start("");
    let out = spawn(
        bin("host-daemon"),
        &["serve", "--socket", daemon.socket.to_str().unwrap()],
    )
    .finish(LONG);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("another host-daemon is serving"),
        "{}",
        stderr(&out)
    );
    assert!(daemon.ctl(&["list"]).status.success());

    let bad = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(bad.path(), "max_sessions = \"many\"\n").unwrap();
    let out = spawn(
        bin("host-daemon"),
        &["serve", "--config", bad.path().to_str().unwrap()],
    )
    .finish(LONG);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("max_sessions"), "{}", stderr(&out));
}

/// What any HTTP client sees (curl here): JSON errors with the right status for a body that
/// is not JSON, an unknown setting, an unknown session and an unknown call.
#[test]
fn the_api_answers_errors_in_json() {
    let daemon = Daemon::start("");
    let call = |method: &str, path: &str, body: Option<&str>| {
        let socket = daemon.socket.to_str().unwrap();
        let url = format!("http://host-daemon{path}");
        let mut args = vec![
            "-s",
            "--unix-socket",
            socket,
            "-X",
            method,
            "-w",
            "\n%{http_code}",
        ];
        if let Some(body) = body {
            args.extend(["-H", "content-type: application/json", "-d", body]);
        }
        args.push(&url);
        let out = std::process::Command::new(tool("curl"))
            .args(&args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (json, status) = text.rsplit_once('\n').unwrap();
        (
            status.to_string(),
            serde_json::from_str::<serde_json::Value>(json).unwrap(),
        )
    };
    let (status, answer) = call("POST", "/sessions", Some("not json"));
    assert_eq!(status, "400", "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("the request"));
    let bogus = r#"{"name": "x", "app": ["true"], "listen": "127.0.0.1:1", "bogus": 1}"#;
    let (status, answer) = call("POST", "/sessions", Some(bogus));
    assert_eq!(status, "422", "{answer}");
    assert!(
        answer["error"].as_str().unwrap().contains("\"bogus\""),
        "{answer}"
    );
    let (status, answer) = call("DELETE", "/sessions/none", None);
    assert_eq!(status, "404", "{answer}");
    let (status, answer) = call("GET", "/nothing", None);
    assert_eq!(status, "404", "{answer}");
    let (status, answer) = call("GET", "/sessions", None);
    assert_eq!(
        (status.as_str(), &answer),
        ("200", &serde_json::json!({ "sessions": [] }))
    );
}

/// Links planted while sessions start and stop never steer root. Every session runs as one
/// shared account here (`users = []`, the worst case: each session's processes can write into
/// every other session's directory), and every session's app keeps planting links in all of
/// them, at the names the daemon writes (logs, configs) and at whatever it finds there, to a
/// file of root's and to a name in a directory of root's. Sessions may fail to start under
/// that; whatever happens, the file root owns is neither changed nor given away, nothing is
/// made in root's directory, and no answer of the daemon carries the file's text.
#[test]
fn links_planted_while_sessions_start_and_stop_never_steer_root() {
    let Some(daemon) =
        root_daemon("max_sessions = 3\nusers = []\n[session]\nwidth = 320\nheight = 180\n")
    else {
        return;
    };
    let roots = tempfile::tempdir().unwrap();
    std::fs::set_permissions(roots.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let secret = roots.path().join("secret");
    std::fs::write(&secret, "root's secret").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let before = std::fs::metadata(&secret).unwrap();
    let shared = shared_dir();
    let planted = shared.path().join("planted");
    // The sessions' directories are the daemon's temp dir's `lantern-NAME-…`.
    let base = std::env::temp_dir();
    let script = format!(
        "while :; do for d in {base}/lantern-plant-*/; do [ -w \"$d\" ] || continue; \
           for n in app.log sway.log sway.conf pipewire.conf pipewire.log wireplumber.log \
                    picture-capture.log sound-capture.log input-inject.log; do \
             ln -sfn '{secret}' \"$d$n\" 2>/dev/null; done; \
           for f in \"$d\"*; do [ -f \"$f\" ] && [ ! -L \"$f\" ] && \
             ln -sfn '{roots}/made-by-root' \"$f\" 2>/dev/null; done; \
           echo \"$d\" >> {planted}; done; sleep 0.05; done",
        base = base.display(),
        secret = secret.display(),
        roots = roots.path().display(),
        planted = planted.display(),
    );
    let create = |name: &str| {
        let addr = format!("127.0.0.1:{}", free_port());
        daemon.ctl(&[
            "create", name, "--listen", &addr, "--", "/bin/sh", "-c", &script,
        ])
    };
    let mut answers = Vec::new();
    let first = create("plant-a");
    answers.push(first.clone());
    for round in 0..3 {
        let name = format!("plant-b{round}");
        answers.push(create(&name));
        // Its directory is planted in before it stops (when the daemon reads the app's log).
        let dir = format!("/lantern-{name}-");
        wait_for("links in the new session's directory", LONG, || {
            std::fs::read_to_string(&planted).is_ok_and(|dirs| dirs.contains(&dir))
        });
        answers.push(daemon.ctl(&["list"]));
        answers.push(daemon.ctl(&["stop", &name]));
    }
    answers.push(daemon.ctl(&["stop", "plant-a"]));
    answers.push(daemon.ctl(&["list"]));

    let after = std::fs::metadata(&secret).unwrap();
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "root's secret");
    assert_eq!(
        (after.uid(), after.gid(), after.mode(), after.len()),
        (before.uid(), before.gid(), before.mode(), before.len())
    );
    let made: Vec<_> = std::fs::read_dir(roots.path())
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name())
        .collect();
    assert_eq!(made, ["secret"], "root made a file through a link");
    for answer in &answers {
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&answer.stdout),
            stderr(answer)
        );
        assert!(!said.contains("root's secret"), "{said}");
    }
    assert!(
        first.status.success(),
        "the first session, alone, starts: {}",
        stderr(&first)
    );
}

/// An app that swaps its log for a FIFO (which would block a reader forever) and exits stalls
/// nothing: the daemon still answers, the session ends with the app's status, and another
/// session keeps streaming.
#[test]
fn an_app_that_leaves_a_fifo_for_its_log_stalls_no_other_session() {
    let daemon = Daemon::start("max_sessions = 2\n[session]\nwidth = 320\nheight = 180\n");
    let addr = format!("127.0.0.1:{}", free_port());
    daemon.ok(&[
        "create",
        "fifo-a",
        "--listen",
        &addr,
        "--",
        &app_bin(),
        "app",
    ]);
    let addr = format!("127.0.0.1:{}", free_port());
    let script = "echo 'last words'; sleep 2; rm -f app.log; mkfifo app.log; exit 5";
    daemon.ok(&[
        "create", "fifo-b", "--listen", &addr, "--", "/bin/sh", "-c", script,
    ]);
    let session = |name: &str| {
        daemon.ok(&["list", "--json"])["sessions"]
            .as_array()
            .and_then(|all| all.iter().find(|s| s["name"] == name).cloned())
            .unwrap_or_else(|| panic!("no session {name}"))
    };
    wait_for("the app with a FIFO for its log to end", LONG, || {
        session("fifo-b")["state"] == "ended"
    });
    let ended = session("fifo-b");
    assert_eq!(ended["ended"]["status"], 5, "{ended}");
    assert_eq!(ended["ended"]["tail"], "last words", "{ended}");
    // The other session's last second, read after: it still captures and publishes.
    let second = |daemon: &Daemon| daemon.ok(&["stats", "fifo-a"])["stats"].clone();
    wait_for("the other session's pictures", LONG, || {
        let second = second(&daemon);
        second["capture"]["frames"].as_u64() > Some(0)
            && second["video"]["fps"].as_f64() > Some(0.0)
    });
    daemon.ok(&["stop", "fifo-a"]);
}
