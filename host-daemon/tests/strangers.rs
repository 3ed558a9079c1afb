//! Strangers and greedy players at a session's direct server (`--listen`), against a real
//! host-daemon, headless sway and the test app: what they send is bounded and counted, and
//! the player with a grant still plays and types.

mod common;

use std::net::TcpStream;
use std::time::Instant;

use common::*;
use lantern_testkit::*;

/// A daemon held to the usual 1024 descriptors (soft and hard, so it cannot raise them), and
/// 1100 idle TCP connections to its port, 200 viewers announced without a grant, one
/// presenting a 2 MB "grant" with a flood of datagrams: a player with a grant still fetches
/// the certificate fingerprint, plays and types, and every stranger's share is counted.
#[test]
fn strangers_crowding_a_direct_server_leave_a_granted_player_playing_and_typing() {
    // The strangers' connections are this process's descriptors.
    lantern_cli::raise_fd_limit().unwrap();
    let name = "crowded";
    let addr = format!("127.0.0.1:{}", free_port());
    let Session {
        mut daemon,
        dir,
        log,
        token,
    } = session_via(&["prlimit", "--nofile=1024"], name, &["--listen", &addr]);
    let lines = Lines::read(&mut daemon);
    let url = format!("http://{addr}/");

    let idle: Vec<TcpStream> = (0..1100)
        .filter_map(|_| TcpStream::connect(&addr).ok())
        .collect();
    assert_eq!(idle.len(), 1100, "the kernel takes every connection");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fakes = rt.block_on(async {
        let origin = moq_tokio::origin::spawn();
        let connection = dial(&url, |client| client.with_publisher(origin.consume())).await;
        let fakes: Vec<_> = (0..200)
            .map(|i| {
                let path = format!("{name}/viewer/fake{i}");
                let broadcast = origin.create_broadcast(&path).unwrap();
                let input = broadcast.create_track("input", None).unwrap();
                broadcast.announce(Default::default()).unwrap();
                (broadcast, input)
            })
            .collect();
        (connection, fakes)
    });
    let flood: Vec<Vec<u8>> = (0..3000u32).map(|i| i.to_be_bytes().repeat(50)).collect();
    let huge = "e".repeat(2 << 20);
    let flooder = rt.block_on(raw_viewer(
        &url,
        &format!("{name}/viewer/huge"),
        Some(&huge),
        flood,
    ));
    wait_for("the host to see every stranger", LONG, || {
        lines.last_input().is_some_and(|input| {
            input["viewers"].as_u64() >= Some(201)
                && input["dropped"]["oversized_grant"] == 1
                && input["dropped"]["unauthorized"].as_u64() > Some(0)
        })
    });

    // The player, with every stranger still there. It types a second after its first
    // picture: a viewer asks for its first keyframe and has it within a round trip, and the
    // host, busy with 201 strangers, may take longer than that to open the newcomer's input
    // (a datagram sent before is lost, as the full test suite once saw).
    let script = write(dir.path(), "keys.txt", "1000 tap KeyA\n1050 text ok\n");
    view(
        &url,
        name,
        180,
        &[
            "--timeout",
            "30",
            "--input-script",
            &script,
            "--grant",
            &token,
        ],
    );
    let (a, o, k) = (30, 24, 37);
    wait_for("the player's keys at the app", LONG, || {
        presses(&app_log(&log), "key", "key").len() >= 6
    });
    assert_eq!(
        presses(&app_log(&log), "key", "key"),
        [
            (a, true),
            (a, false),
            (o, true),
            (o, false),
            (k, true),
            (k, false)
        ]
    );
    drop((idle, fakes, flooder));
    let out = daemon.interrupt(LONG);
    assert_eq!(out.status.code(), Some(130));
    let input = lines.final_stats()["input"].clone();
    assert_eq!(input["dropped"]["forged"], 0, "{input}");
    assert_eq!(input["dropped"]["bad_seal"], 0, "{input}");
    no_leftovers(name);
}

/// In a session open to every viewer, one pastes without end (2000 datagrams of 750
/// characters each, as fast as it can) while another taps a key: the tap reaches the app
/// once, the paste is cut to its budget (counted), and the daemon keeps serving.
#[test]
fn a_viewer_pasting_without_end_cannot_keep_another_viewers_key_out() {
    use lantern_proto::input::{Event, Held, Message};
    let name = "pasted";
    let addr = format!("127.0.0.1:{}", free_port());
    let Session {
        mut daemon,
        dir,
        log,
        ..
    } = session(name, &["--listen", &addr, "--input", "open"]);
    let lines = Lines::read(&mut daemon);
    let url = format!("http://{addr}/");
    let started = Instant::now();
    let sent_us = lantern_proto::clock::now_unix_us();
    let pastes: Vec<Vec<u8>> = (0..2000u64)
        .map(|seq| {
            Message {
                seq,
                sent_us,
                held: Held::default(),
                edges: vec![],
                events: vec![Event::Text("x".repeat(250)); 3],
            }
            .encode()
            .unwrap()
        })
        .collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let paster = rt.block_on(raw_viewer(
        &url,
        &format!("{name}/viewer/paster"),
        None,
        pastes,
    ));
    wait_for("the paste to be cut", LONG, || {
        lines
            .last_input()
            .is_some_and(|input| input["dropped"]["text_limited"].as_u64() > Some(0))
    });
    let script = write(dir.path(), "tap.txt", "0 tap KeyQ\n");
    view(
        &url,
        name,
        30,
        &["--timeout", "30", "--input-script", &script],
    );
    let q = 16;
    // (Should it not come, what the host and the app saw says where it went.)
    let state = || {
        let events = app_log(&log);
        let tail = &events[events.len().saturating_sub(5)..];
        format!(
            "host input: {:?}\napp log tail: {tail:?}",
            lines.last_input()
        )
    };
    wait_for_or(
        "the tap at the app",
        LONG,
        || presses(&app_log(&log), "key", "key").contains(&(q, false)),
        state,
    );
    drop(paster);
    daemon.interrupt(LONG);
    let elapsed = started.elapsed().as_secs() + 1;
    let events = app_log(&log);
    let keys = presses(&events, "key", "key");
    let taps = keys.iter().filter(|(key, _)| *key == q).count();
    assert_eq!(taps, 2, "the tap's press and release, once each");
    // The paste typed at most its burst and its rate for as long as the test ran.
    let x = 45;
    let typed = keys.iter().filter(|&&(key, down)| key == x && down).count() as u64;
    let input = lines.final_stats()["input"].clone();
    assert!(typed <= 2000 + 100 * elapsed, "{typed} typed: {input}");
    assert!(
        input["dropped"]["text_limited"].as_u64() > Some(0),
        "{input}"
    );
    no_leftovers(name);
}
