//! Viewers' input end to end: moq-sub's `--input-script` through a real moq-relay (or the
//! direct server) into host-daemon, injected into a real compositor (our own, or sway),
//! received by the test app (which logs it) or by clients we did not write; and the viewers
//! whose input must never be injected.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use lantern_testkit::*;
use serde_json::Value;

const SCRIPT: &str = "\
0 tap KeyA
50 text Hi!\\n
100 move 0.5 0.5
150 click left
200 wheel 0 120
250 key ShiftLeft down
260 tap KeyB
270 key ShiftLeft up
300 rel 5 5
320 pad 0 buttons=0x1 sticks=0,-32768,0,0 triggers=0,0
";

/// SCRIPT reaches the app exactly once and in order, and the viewer measures
/// input-to-photon from the app's echo; `before` runs once the session is up, before the
/// player comes (given the URL and the session's name).
fn script_reaches_the_app(target: &[&str], url: &str, name: &str, before: impl FnOnce(&str, &str)) {
    let Session {
        daemon,
        dir,
        log,
        token,
    } = session(name, target);
    before(url, name);
    let viewer = play_script(url, name, 240, (dir.path(), SCRIPT), &token);
    let out = daemon.interrupt(LONG);
    let events = app_log(&log);

    let keys = presses(&events, "key", "key");
    let (a, h, i, one, enter, b, shift) = (30, 35, 23, 2, 28, 48, 42);
    let tap = |k| [(k, true), (k, false)];
    let shifted = |k| [(shift, true), (k, true), (k, false), (shift, false)];
    let expected: Vec<(u64, bool)> = [
        &tap(a)[..],
        &shifted(h),
        &tap(i),
        &shifted(one),
        &tap(enter),
        &shifted(b),
    ]
    .concat();
    assert_eq!(keys, expected, "keys, in order, each once");
    let typed: String = events
        .iter()
        .filter(|e| e["kind"] == "key" && e["down"] == true)
        .filter_map(|e| e["utf8"].as_str())
        .collect();
    assert_eq!(typed, "aHi!\rB");

    let others: Vec<String> = events
        .iter()
        .filter(|e| ["button", "wheel"].contains(&e["kind"].as_str().unwrap()))
        .map(|e| e.to_string())
        .collect();
    assert_eq!(others.len(), 3, "{others:?}");
    assert!(others[0].contains("\"button\":272") && others[0].contains("\"down\":true"));
    assert!(others[1].contains("\"button\":272") && others[1].contains("\"down\":false"));
    assert!(others[2].contains("\"notches\":1"), "{others:?}");
    // The absolute move lands mid-frame, the relative one 5 px on.
    let moves = pointer_places(&events);
    let centre = moves
        .iter()
        .position(|&(x, y)| (x - 640.0).abs() < 1.0 && (y - 360.0).abs() < 1.0);
    let centre = centre.unwrap_or_else(|| panic!("no move to the centre: {moves:?}"));
    let (x, y) = moves[centre + 1];
    assert!(
        (x - 645.0).abs() < 1.0 && (y - 365.0).abs() < 1.0,
        "{moves:?}"
    );

    // Input-to-photon: the seven presses (a, H, i, !, Enter, the click, B) pair with pictures.
    let stats = final_stats(&viewer.stderr);
    assert_eq!(stats["input_to_photon_count"], 7, "{stats}");
    assert!(stats["input_to_photon_ms_p50"].as_f64().unwrap() > 0.0);
    let input = host_input(&out);
    assert_eq!(input["datagrams"], input["accepted"], "{input}");
    // The pad's state (pressed, then released as the script ends) is received and counted;
    // it reaches a uinput pad only where /dev/uinput exists.
    assert!(input["pad_states"].as_u64() >= Some(2), "{input}");
    if !Path::new("/dev/uinput").exists() {
        assert_eq!(input["pads_injected"], 0, "{input}");
    }
    assert!(input["leg_ms_p50"].as_f64().is_some(), "{input}");
    for (reason, count) in input["dropped"].as_object().unwrap() {
        assert_eq!(count, 0, "dropped as {reason}: {input}");
    }
    // Our own compositor (`auto` here, with no GPU for gamescope) reports its pacing; the
    // presses brought frames forward.
    let capture = &final_stats(&out.stderr)["capture"];
    assert!(capture["app_frames"].as_u64() > Some(0), "{capture}");
    assert!(
        capture["app_frames_boosted"].as_u64() > Some(0),
        "{capture}"
    );
    assert!(
        capture["app_frame_wait_ms_p50"].as_f64() > Some(0.0),
        "{capture}"
    );
    assert_eq!(
        capture["commit_to_encoder_ms_p50"], capture["latency_ms_p50"],
        "{capture}"
    );
    no_leftovers(name);
}

#[test]
fn a_script_reaches_the_app_once_and_in_order_through_a_relay() {
    let relay = Relay::start();
    let url = relay.url();
    script_reaches_the_app(&["--url", &url], &url, "keys", |_, _| {});
}

/// Served directly to players only (`--max-spectators 0`): a stranger is turned away, the
/// player presents its grant and plays and types.
#[test]
fn a_script_reaches_the_app_once_and_in_order_served_directly() {
    let addr = format!("127.0.0.1:{}", free_port());
    let url = format!("http://{addr}/");
    let target = ["--listen", &addr, "--max-spectators", "0"];
    script_reaches_the_app(&target, &url, "keysdirect", |url, name| {
        let stranger = spawn(
            bin("moq-sub"),
            &[
                "--url",
                url,
                "--name",
                name,
                "--frames",
                "1",
                "-o",
                "/dev/null",
                "--give-up",
                "3",
                "--timeout",
                "10",
            ],
        )
        .finish(LONG);
        let said = stderr(&stranger);
        assert_eq!(stranger.status.code(), Some(1), "{said}");
        // Refused each time it dialed (503). Its last line names the last cause, which is the
        // dial the give-up cut short when one was still under way (moq-tokio keeps no other).
        assert!(said.contains("503"), "{said}");
        let exit = said.lines().rfind(|l| l.starts_with("moq-sub: "));
        assert!(exit.is_some_and(|l| l.contains(name)), "{said}");
    });
}

/// The same in Lantern's own compositor: keys, text, buttons, wheel and both kinds of motion
/// go straight into its seat.
#[test]
fn a_script_reaches_the_app_once_and_in_order_in_our_own_compositor() {
    let addr = format!("127.0.0.1:{}", free_port());
    let url = format!("http://{addr}/");
    script_reaches_the_app(
        &["--listen", &addr, "--compositor", "lantern"],
        &url,
        "keysown",
        |_, _| {},
    );
}

/// A viewer asked for fewer frames than its script lasts still sends the whole script: the
/// picture stops at `--frames`, the input goes on to its last step (a host slow to take a
/// newcomer's input once had a run end with its script silently unsent).
#[test]
fn a_script_that_outlasts_the_viewers_frames_is_still_sent_whole() {
    let addr = format!("127.0.0.1:{}", free_port());
    let url = format!("http://{addr}/");
    let name = "outlasted";
    let Session {
        daemon,
        dir,
        log,
        token,
    } = session(name, &["--listen", &addr]);
    let script = "0 tap KeyA\n1500 tap KeyB\n";
    play_script(&url, name, 5, (dir.path(), script), &token);
    daemon.interrupt(LONG);
    let (a, b) = (30, 48);
    assert_eq!(
        presses(&app_log(&log), "key", "key"),
        [(a, true), (a, false), (b, true), (b, false)]
    );
    no_leftovers(name);
}

/// Through a path that loses 5 % of packets each way (lantern-netem), every press and
/// release of a long typing script reaches the app once and in order: a lost datagram takes
/// no tap with it, because the next ones repeat its edges.
#[test]
fn typing_through_a_lossy_path_loses_no_key() {
    use lantern_proto::input::keys::{evdev_of_usage, usage_of_code};
    let relay = Relay::start();
    let name = "lossy";
    let Session {
        daemon,
        dir,
        log,
        token,
    } = session(name, &["--url", &relay.url()]);
    let path = Netem::start(relay.port, "loss=5% seed=11", "loss=5% seed=12");
    let letters: Vec<String> = (b'A'..=b'Z').map(|c| format!("Key{}", c as char)).collect();
    let taps: Vec<&str> = (0..150).map(|i| letters[i % 26].as_str()).collect();
    let script: String = taps
        .iter()
        .enumerate()
        .map(|(i, code)| format!("{} tap {code}\n", i * 25))
        .collect();
    play_script(&path.url("anon"), name, 600, (dir.path(), &script), &token);
    let lost = path.stats().expect("the path's figures");
    let out = daemon.interrupt(LONG);
    let expected: Vec<(u64, bool)> = taps
        .iter()
        .flat_map(|code| {
            let evdev = u64::from(evdev_of_usage(usage_of_code(code).unwrap()).unwrap());
            [(evdev, true), (evdev, false)]
        })
        .collect();
    assert_eq!(presses(&app_log(&log), "key", "key"), expected);
    // The path did lose input, and the host brought it back from the repeats.
    assert!(lost["up"]["lost"].as_u64() > Some(0), "{lost}");
    let input = host_input(&out);
    assert!(input["recovered"].as_u64() > Some(0), "{input}");
    no_leftovers(name);
}

/// A viewer that vanishes (SIGKILL, no goodbye) while holding a key and a button leaves
/// nothing held: the host releases them when it falls silent.
#[test]
fn a_viewer_that_vanishes_holding_a_key_leaves_nothing_held() {
    let addr = format!("127.0.0.1:{}", free_port());
    let Session {
        daemon,
        dir,
        log,
        token,
    } = session("held", &["--listen", &addr]);
    // The last step is far off: until then the viewer holds (and heartbeats), since a script
    // that ends releases everything.
    let script = write(
        dir.path(),
        "hold.txt",
        "0 key KeyA down\n10 button left down\n600000 tap KeyZ\n",
    );
    let url = format!("http://{addr}/");
    let viewer = spawn(
        bin("moq-sub"),
        &[
            "--url",
            &url,
            "--name",
            "held",
            "--input-script",
            &script,
            "--grant",
            &token,
        ],
    );
    let held = |events: &[Value], kind: &str, id: (&str, u64)| {
        events
            .iter()
            .rfind(|e| e["kind"] == kind && e[id.0] == id.1)
            .map(|e| e["down"] == true)
    };
    wait_for("the key and the button to be held", LONG, || {
        let events = app_log(&log);
        held(&events, "key", ("key", 30)) == Some(true)
            && held(&events, "button", ("button", 272)) == Some(true)
    });
    drop(viewer); // SIGKILL: no release from the viewer
    wait_for("the host to release them", LONG, || {
        let events = app_log(&log);
        held(&events, "key", ("key", 30)) == Some(false)
            && held(&events, "button", ("button", 272)) == Some(false)
    });
    let out = daemon.interrupt(LONG);
    let input = host_input(&out);
    assert!(input["released"].as_u64().unwrap() >= 1, "{input}");
    no_leftovers("held");
}

/// A terminal we did not write (foot, running a shell that reads a line) receives the text a
/// viewer's script types.
#[test]
fn a_terminal_we_did_not_write_receives_the_typed_text() {
    terminal_receives_typed_text("sway", &["foot"], "foot");
}

#[test]
fn a_terminal_we_did_not_write_receives_the_typed_text_in_our_own_compositor() {
    terminal_receives_typed_text("lantern", &["foot"], "footown");
}

/// An X11 terminal (xterm, through XWayland) in Lantern's own compositor.
#[test]
fn an_x11_terminal_receives_the_typed_text_in_our_own_compositor() {
    terminal_receives_typed_text("lantern", &["xterm", "-e"], "xtermown");
}

/// Two fingers in our own compositor reach the app as wl_touch points of their own, where
/// the script put them; the second viewer-side point is no longer dropped.
#[test]
fn touches_reach_the_app_as_touches_in_our_own_compositor() {
    let addr = format!("127.0.0.1:{}", free_port());
    let url = format!("http://{addr}/");
    let name = "touchown";
    let Session {
        daemon,
        dir,
        log,
        token,
    } = session(name, &["--listen", &addr, "--compositor", "lantern"]);
    let touch = "0 touch 0 down 0.25 0.25\n50 touch 1 down 0.75 0.5\n100 touch 0 move 0.5 0.5\n\
                 150 touch 0 up 0.5 0.5\n200 touch 1 up 0.75 0.5\n";
    play_script(&url, name, 60, (dir.path(), touch), &token);
    let out = daemon.interrupt(LONG);
    let touches: Vec<String> = app_log(&log)
        .iter()
        .filter(|e| e["kind"] == "touch")
        .map(|e| {
            let at = |k: &str| e[k].as_f64().map_or(String::new(), |v| format!(" {v:.0}"));
            format!(
                "{} {}{}{}",
                e["phase"].as_str().unwrap(),
                e["id"],
                at("x"),
                at("y")
            )
        })
        .collect();
    assert_eq!(
        touches,
        [
            "down 0 320 180",
            "down 1 960 360",
            "move 0 640 360",
            "up 0",
            "up 1"
        ],
        "{touches:?}"
    );
    let input = host_input(&out);
    assert_eq!(input["dropped"]["extra_touches"], 0, "{input}");
    no_leftovers(name);
}

/// weston-eventdemo (a client we did not write, logging what its seat delivers) in our own
/// compositor: a key, an absolute and a relative move, a click and a wheel notch arrive as
/// wl_keyboard and wl_pointer events, where the script put them.
#[test]
fn weston_eventdemo_receives_keys_pointer_and_wheel_in_our_own_compositor() {
    let name = "eventdemo";
    let dir = shared_dir();
    let (events, grant_file) = (dir.path().join("events.txt"), dir.path().join("grant"));
    let demo = format!(
        "exec stdbuf -oL {} --log-focus --log-key --log-button --log-axis --log-motion > {}",
        tool("weston-eventdemo"),
        events.display()
    );
    let grant_out = ["--grant-out", grant_file.to_str().unwrap()];
    let (daemon, url) = serving("lantern", name, &grant_out, &["sh", "-c", &demo]);
    let token = grant(&grant_file);
    let log = || std::fs::read_to_string(&events).unwrap_or_default();
    // Keyboard focus comes with the window's first picture: input sent before it has no
    // surface to go to.
    wait_for("the demo's keyboard focus", LONG, || {
        log().contains("focus")
    });
    let script = "0 tap KeyA\n100 move 0.5 0.5\n200 click left\n300 wheel 0 120\n400 rel 5 5\n";
    play_script(&url, name, 60, (dir.path(), script), &token);
    wait_for("the demo's log of the last move", LONG, || {
        log().contains("x: 645.")
    });
    let text = log();
    let lines: Vec<&str> = text.lines().filter(|l| !l.contains("frame")).collect();
    let at = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in {lines:#?}"))
    };
    let order = [
        at("key: 30, unicode: 97, state: pressed"),
        at("key: 30, unicode: 97, state: released"),
        at("x: 640.0"),
        at("button: 272, state: pressed, x: 640, y: 360"),
        at("button: 272, state: released, x: 640, y: 360"),
        at("axis discrete axis: 0 value: 1"),
        at("x: 645.0"),
    ];
    assert!(order.is_sorted(), "out of order {order:?}: {lines:#?}");
    // The wheel's frame carries the time of the viewer's event, not zero.
    assert!(!text.contains("axis time: 0,"), "{text}");
    daemon.interrupt(LONG);
    no_leftovers(name);
}

fn terminal_receives_typed_text(compositor: &str, terminal: &[&str], name: &str) {
    let dir = shared_dir();
    let (typed, grant_file) = (dir.path().join("typed.txt"), dir.path().join("grant"));
    // The shell says when the terminal runs it: its window is up by then.
    let started = dir.path().join("started");
    let shell = format!(
        "touch {}; read line; echo \"$line\" > {}",
        started.display(),
        typed.display()
    );
    let grant_out = grant_file.to_str().unwrap();
    let extra = [
        "--width",
        "640",
        "--height",
        "360",
        "--grant-out",
        grant_out,
    ];
    let program = tool(terminal[0]);
    let terminal = [&[program.as_str()], &terminal[1..], &["sh", "-c", &shell]].concat();
    let (daemon, url) = serving(compositor, name, &extra, &terminal);
    let token = grant(&grant_file);
    wait_for("the terminal's shell", LONG, || started.exists());
    // foot takes a moment after its first picture to read keys: type twice is not an
    // option (the shell reads one line), so wait a second before typing.
    let script = write(dir.path(), "type.txt", "1000 text Lantern typed this!\\n\n");
    let viewer = spawn(
        bin("moq-sub"),
        &[
            "--url",
            &url,
            "--name",
            name,
            "--input-script",
            &script,
            "--grant",
            &token,
        ],
    );
    wait_for("the terminal to write the line", LONG, || {
        std::fs::read_to_string(&typed).is_ok_and(|text| text.ends_with('\n'))
    });
    assert_eq!(
        std::fs::read_to_string(&typed).unwrap(),
        "Lantern typed this!\n"
    );
    drop(viewer);
    // The shell ends once it wrote the line, and the session with it.
    let out = daemon.finish(LONG);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    no_leftovers(name);
}

/// Viewers without a grant, with a forged one, or sending malformed and oversized datagrams
/// inject nothing; each rejection is counted and the host keeps running.
#[test]
fn unauthorized_forged_and_malformed_input_is_counted_never_injected() {
    let addr = format!("127.0.0.1:{}", free_port());
    let Session {
        mut daemon,
        dir,
        log,
        token,
    } = session("guarded", &["--listen", &addr]);
    let lines = Lines::read(&mut daemon);
    let url = format!("http://{addr}/");
    let script = write(
        dir.path(),
        "keys.txt",
        "0 tap KeyA\n50 click left\n100 text no\n",
    );

    // No grant at all.
    view(
        &url,
        "guarded",
        60,
        &["--input-script", &script, "--viewer", "nogrant"],
    );
    // A grant signed with another key, for this very session.
    let forged = lantern_net::grant::Grants::generate("guarded")
        .issue(Some("mallory"), Duration::from_secs(600))
        .unwrap();
    view(
        &url,
        "guarded",
        60,
        &["--input-script", &script, "--grant", &forged.credential],
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    // The real grant's token copied onto another viewer path, and on its own path sending
    // what the format refuses, sealed: garbage (malformed), and a datagram over 900 bytes
    // (larger than any message: refused before it is opened).
    let credential = lantern_net::grant::Credential::parse(&token).unwrap();
    let thief = raw_viewer(
        &url,
        "guarded/viewer/thief",
        Some(&credential.token),
        vec![vec![1; 40]],
    );
    let _thief = rt.block_on(thief);
    let path = format!("guarded/viewer/{}", credential.viewer);
    let mut seal = credential.sealer(lantern_net::seal::Track::Input, &path);
    let now = lantern_proto::clock::now_unix_us();
    let bad = vec![seal.seal(&[0xFF; 16], now), seal.seal(&[1u8; 1000], now)];
    let _bad = rt.block_on(raw_viewer(&url, &path, Some(&credential.token), bad));

    wait_for("the host to count every rejection", LONG, || {
        lines.last_input().is_some_and(|input| {
            let dropped = &input["dropped"];
            dropped["unauthorized"].as_u64() >= Some(1)
                && dropped["forged"].as_u64() >= Some(1)
                && dropped["elsewhere"].as_u64() >= Some(1)
                && dropped["malformed"] == 1
                && dropped["bad_seal"] == 1
        })
    });
    assert!(
        daemon.0.try_wait().unwrap().is_none(),
        "the host must keep running"
    );
    let input = lines.last_input().unwrap();
    assert_eq!(input["accepted"], 0, "{input}");
    assert_eq!(input["injected"], 0, "{input}");
    // The viewers without a valid grant sent their path's feedback too (every moq-sub that
    // sends input does): none of it may move the bitrate.
    wait_for("a stats line after the viewers", LONG, || {
        lines.last_rate().is_some()
    });
    let rate = lines.last_rate().unwrap();
    assert_eq!(rate["reports"], 0, "{rate}");
    assert_eq!(rate["viewers"], 0, "{rate}");
    let injected: Vec<Value> = app_log(&log)
        .into_iter()
        .filter(|e| ["key", "button", "wheel"].contains(&e["kind"].as_str().unwrap()))
        .collect();
    assert!(injected.is_empty(), "injected: {injected:?}");
    let out = daemon.interrupt(LONG);
    assert_eq!(out.status.code(), Some(130));
    no_leftovers("guarded");
}

/// A stranger on the relay: subscribes to viewer `viewer` of `session` and keeps its grant
/// track's token and every input datagram, until the viewer leaves.
async fn record(url: String, session: String, viewer: String) -> (Vec<u8>, Vec<Vec<u8>>) {
    let origin = moq_tokio::origin::spawn();
    let _connection = dial(&url, |client| client.with_subscriber(origin.clone())).await;
    let mut viewers = lantern_net::input::Viewers::watch(&origin, &session).unwrap();
    let input = loop {
        match viewers.next().await {
            Some(lantern_net::input::ViewerUpdate::Joined { id, input }) if id == viewer => {
                break input;
            }
            Some(_) => continue,
            None => panic!("the relay's announcements ended"),
        }
    };
    let token = input.grant(Duration::from_secs(20)).await.unwrap().unwrap();
    let mut datagrams = input.subscribe().await.unwrap();
    let mut recorded = Vec::new();
    while let Ok(Ok(Some(datagram))) =
        tokio::time::timeout(Duration::from_secs(60), datagrams.recv_datagram()).await
    {
        recorded.push(datagram.payload.to_vec());
    }
    (token, recorded)
}

/// On an open relay path, a stranger records everything on a player's viewer path and plays
/// it back, under the player's path and under its own: the recording holds none of what was
/// typed, and the host injects nothing of it, counting each datagram played again; the same
/// after the player comes back.
#[test]
fn a_players_recorded_input_is_unreadable_and_cannot_be_replayed() {
    let relay = Relay::start();
    let url = relay.url();
    let Session {
        mut daemon,
        dir,
        log,
        token,
    } = session("sealed", &["--url", &url]);
    let lines = Lines::read(&mut daemon);
    let viewer = lantern_net::grant::Credential::parse(&token)
        .unwrap()
        .viewer;
    let script = write(
        dir.path(),
        "secret.txt",
        "0 text hunter2\n200 tap KeyQ\n400 text hunter2\n",
    );
    let keys = || app_log(&log).iter().filter(|e| e["kind"] == "key").count();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let play = || {
        let recording = rt.spawn(record(url.clone(), "sealed".into(), viewer.clone()));
        let args = [
            "--input-script",
            &script,
            "--grant",
            &token,
            "--timeout",
            "30",
        ];
        view(&url, "sealed", 120, &args);
        rt.block_on(recording).unwrap()
    };
    let typed = "hunter2".len() * 2 + 1;

    let (grant, recorded) = play();
    wait_for("the player's keys at the app", LONG, || keys() == 2 * typed);
    assert!(!recorded.is_empty());
    // What a stranger gets: the public token, and datagrams that say nothing.
    assert_eq!(grant, token.split_once('~').unwrap().0.as_bytes());
    for datagram in &recorded {
        assert!(lantern_proto::input::Message::decode(datagram).is_err());
        assert!(
            !datagram.windows(7).any(|w| w == b"hunter2"),
            "{datagram:?}"
        );
    }
    let grant = String::from_utf8(grant).unwrap();
    // Each stays until the host has counted what it sent.
    let replay =
        |path: String| rt.block_on(raw_viewer(&url, &path, Some(&grant), recorded.clone()));
    let _same = replay(format!("sealed/viewer/{viewer}"));
    let _own = replay("sealed/viewer/stranger".into());
    wait_for("the host to count the replays", LONG, || {
        lines.last_input().is_some_and(|input| {
            input["dropped"]["replayed"].as_u64() >= Some(1)
                && input["dropped"]["elsewhere"].as_u64() >= Some(1)
        })
    });

    // The player comes back (a new connection, a new epoch): its keys go in, and the old
    // recording and the new one are as useless.
    let (_, again) = play();
    wait_for("the returning player's keys", LONG, || keys() == 4 * typed);
    let before = lines.last_input().unwrap()["dropped"]["replayed"]
        .as_u64()
        .unwrap();
    let recorded = [recorded.clone(), again].concat();
    let path = format!("sealed/viewer/{viewer}");
    drop((_same, _own));
    let _again = rt.block_on(raw_viewer(&url, &path, Some(&grant), recorded));
    wait_for("the host to count the second replays", LONG, || {
        lines
            .last_input()
            .is_some_and(|input| input["dropped"]["replayed"].as_u64() > Some(before))
    });
    daemon.interrupt(LONG);
    assert_eq!(keys(), 4 * typed, "nothing replayed reached the app");
    let input = lines.final_stats()["input"].clone();
    // Each play: fourteen characters typed (one event each) and the tap's press and release.
    assert_eq!(input["injected"], 2 * (14 + 2), "{input}");
    no_leftovers("sealed");
}

/// With moq-relay's JWT auth, each player's relay token may publish only its own viewer
/// path: a grant stolen off the relay is useless on another player's connection, because the
/// relay refuses the publish before the host ever sees it.
#[test]
fn relay_auth_keeps_each_viewer_on_its_own_path() {
    let dir = shared_dir();
    let key = dir.path().join("key.jwk");
    let key = key.to_str().unwrap();
    let moq = tool("moq");
    let made = std::process::Command::new(&moq)
        .args(["auth", "generate", "--out", key])
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let sign = |publish: &str, subscribe: &str| {
        let out = std::process::Command::new(&moq)
            .args(["auth", "sign", "--key", key, "--publish", publish])
            .args(["--subscribe", subscribe])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let auth_addr = format!("127.0.0.1:{}", free_port());
    let _auth = spawn(
        &moq,
        &["auth", "serve", "--listen", &auth_addr, "--key", key],
    );
    wait_for("moq auth serve", LONG, || {
        std::net::TcpStream::connect(&auth_addr).is_ok()
    });
    let relay_addr = format!("127.0.0.1:{}", free_port());
    let auth_url = format!("http://{auth_addr}");
    let _relay = spawn(
        tool("moq-relay"),
        &[
            "--listen",
            &relay_addr,
            "--listen-tls-generate",
            "localhost,127.0.0.1",
            "--web-http-listen",
            &relay_addr,
            "--auth-url",
            &auth_url,
        ],
    );
    wait_for("moq-relay", LONG, || {
        std::net::TcpStream::connect(&relay_addr).is_ok()
    });
    let url = format!("http://{relay_addr}/");
    let host_token = sign("auth", "auth/viewer/**");
    let Session {
        daemon,
        dir,
        log,
        token: grant,
    } = session(
        "auth",
        &["--url", &url, "--token", &host_token, "--viewer", "alice"],
    );
    let script = write(dir.path(), "tap.txt", "0 tap KeyA\n");
    let keys = || app_log(&log).iter().filter(|e| e["kind"] == "key").count();

    // Alice, whose relay token lets her publish her own viewer path, gets her key in.
    let alice = sign("auth/viewer/alice", "auth");
    let token_flags = ["--input-script", &script, "--grant", &grant];
    let mut args = vec!["--token", alice.as_str(), "--timeout", "30"];
    args.extend(token_flags);
    view(&url, "auth", 60, &args);
    wait_for("alice's key at the app", LONG, || keys() == 2);

    // Bob holds alice's grant, but his relay token is for his own path only: the relay
    // refuses his publish, so no host ever takes his input.
    let bob = sign("auth/viewer/bob", "auth");
    let mut args = vec![
        "--url",
        &url,
        "--name",
        "auth",
        "--frames",
        "300",
        "--timeout",
        "3",
    ];
    args.extend(["--token", bob.as_str()]);
    args.extend(token_flags);
    let out = spawn(bin("moq-sub"), &args).finish(LONG);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no host took this viewer's input"),
        "{}",
        stderr(&out)
    );
    assert_eq!(keys(), 2, "bob's key must not arrive");
    // A token the relay does not take is told as such, not as a broadcast that is not there.
    let expired = std::process::Command::new(&moq)
        .args([
            "auth",
            "sign",
            "--key",
            key,
            "--subscribe",
            "auth",
            "--expires",
            "1000",
        ])
        .output()
        .unwrap();
    let expired = String::from_utf8(expired.stdout).unwrap();
    let args = [
        "--url",
        &url,
        "--name",
        "auth",
        "--timeout",
        "10",
        "--no-window",
    ];
    let env = [("LANTERN_TOKEN".to_string(), expired.trim().to_string())];
    let out = spawn_env(bin("moq-sub"), &args, &env).finish(LONG);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("refused this client: not authorized"),
        "{}",
        stderr(&out)
    );
    let out = daemon.interrupt(LONG);
    let input = host_input(&out);
    // Alice's three greetings, her tap, and the repeats of its edges that went out before
    // she left.
    let accepted = input["accepted"].as_u64().unwrap_or(0);
    let repeats = u64::from(lantern_proto::input::REPEATS);
    assert!((4..=4 + repeats).contains(&accepted), "{input}");
    assert_eq!(input["injected"], 2, "{input}");
    no_leftovers("auth");
}

/// A player watching through a pipe (no window, no input script) with `--grant` and
/// `--feedback`: its path's reports go sealed with the grant, so the host follows them as it
/// follows any player's (a spectator's would not count), and they name the frames it has.
#[test]
fn a_player_without_a_window_reports_its_path_under_its_grant() {
    let relay = Relay::start();
    let name = "piped";
    let Session {
        daemon,
        dir: _dir,
        log: _log,
        token,
    } = small_session(name, &relay);
    let args = [
        "--url",
        &relay.url(),
        "--name",
        name,
        "--feedback",
        "--no-window",
        "--frames",
        "300",
        "--timeout",
        "30",
        "-o",
        "/dev/null",
    ];
    let viewer = spawn_env(bin("moq-sub"), &args, &[("LANTERN_GRANT".into(), token)]);
    viewer.finish_ok("moq-sub", LONG);
    let out = daemon.interrupt(LONG);
    let rates = rate_lines(&out.stderr);
    let rate = |key: &str| rates.iter().filter_map(|r| r[key].as_u64()).max();
    assert!(
        rate("reports") > Some(0),
        "no feedback taken:\n{}",
        stderr(&out)
    );
    assert!(rate("newest_known") > Some(0), "{}", stderr(&out));
    assert_eq!(rate("viewers"), Some(1), "{}", stderr(&out));
    no_leftovers(name);
}
