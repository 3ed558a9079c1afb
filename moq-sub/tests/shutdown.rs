//! Every way a run ends: a signal, a stalled producer, a port in use, a relay that vanishes.
//! Each ends the process with one clear line and the right status. The deadlines here only
//! catch a hang; how quickly each path ends is measured by hand (see the closing notes).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use lantern_testkit::*;

const HANG: Duration = Duration::from_secs(15);

/// moq-pub reading a y4m pipe whose producer sent the header and then nothing.
fn stalled_publisher(extra: &[&str]) -> (Proc, std::process::ChildStdin) {
    let listen = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(bin("moq-pub"))
        .args(["--listen", &listen, "--source", "y4m:-", "--audio", "none"])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(b"YUV4MPEG2 W320 H240 F30:1 C420jpeg\n")
        .unwrap();
    wait_for("moq-pub --listen", HANG, || {
        std::net::TcpStream::connect(&listen).is_ok()
    });
    (Proc(child), stdin)
}

fn signal(proc: &Proc, name: &str) {
    let pid = proc.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-s", name, &pid])
            .status()
            .unwrap()
            .success()
    );
}

fn ends_with(out: &std::process::Output, code: i32, line: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    assert_eq!(stderr.lines().last(), Some(line), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn sigterm_ends_a_stalled_pipe_read() {
    let (publisher, _stdin) = stalled_publisher(&[]);
    signal(&publisher, "TERM");
    ends_with(&publisher.finish(HANG), 143, "moq-pub: stopped by SIGTERM");
}

#[test]
fn ctrl_c_ends_a_stalled_pipe_read() {
    let (publisher, _stdin) = stalled_publisher(&[]);
    signal(&publisher, "INT");
    ends_with(&publisher.finish(HANG), 130, "moq-pub: stopped by SIGINT");
}

#[test]
fn a_producer_that_stalls_is_an_error() {
    let (publisher, _stdin) = stalled_publisher(&["--timeout", "1"]);
    ends_with(
        &publisher.finish(HANG),
        1,
        "moq-pub: stdin: no frame for 1s (has the producer stalled?)",
    );
}

#[test]
fn a_listen_port_in_use_is_an_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = taken.local_addr().unwrap().to_string();
    let out = spawn(bin("moq-pub"), &["--listen", &listen, "--audio", "none"]).finish(HANG);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Address already in use"), "{stderr}");
}

/// A relay that dies and stays away: the viewer redials and waits, then gives up as told
/// (`--give-up`), with one line.
#[test]
fn a_viewer_whose_relay_vanishes_gives_up_when_told() {
    let relay = Relay::start();
    let url = relay.url();
    let publisher = spawn(
        bin("moq-pub"),
        &["--url", &url, "--name", "gone", "--audio", "none"],
    );
    let mut sub = spawn(
        bin("moq-sub"),
        &["--url", &url, "--name", "gone", "--stats", "--give-up", "2"],
    );
    // Once pictures flow (a stats line), the relay dies without a word (SIGKILL: no QUIC
    // close).
    let stderr = std::io::BufReader::new(sub.0.stderr.take().unwrap());
    let (flowing, lines) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        for line in std::io::BufRead::lines(stderr).map_while(Result::ok) {
            if line.contains("\"fps\"") {
                let _ = flowing.send(());
            }
            all.push(line);
        }
        all
    });
    lines.recv_timeout(HANG).expect("pictures flow");
    drop(relay);
    let out = sub.finish(HANG);
    let stderr = reader.join().unwrap();
    assert_eq!(out.status.code(), Some(1), "{stderr:#?}");
    // The exit line (moq-tokio's own connection loop, giving up at the same moment, may log
    // after it).
    let exit: Vec<&String> = stderr
        .iter()
        .filter(|l| l.starts_with("moq-sub: "))
        .collect();
    assert_eq!(exit.len(), 1, "{stderr:#?}");
    assert!(
        exit[0].starts_with("moq-sub: broadcast \"gone\": not back within 2s"),
        "{stderr:#?}"
    );
    assert!(stderr.iter().any(|l| l.contains("\"reconnecting\":true")));
    drop(publisher);
}
