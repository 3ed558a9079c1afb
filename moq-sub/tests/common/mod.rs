//! Real processes for the end-to-end tests: a moq-relay on a free loopback port, and the
//! moq-pub / moq-sub binaries built beside this test. Every wait has a deadline.

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A built binary of this workspace (`ci/test` builds them all before testing).
pub fn bin(name: &str) -> PathBuf {
    let sub = PathBuf::from(env!("CARGO_BIN_EXE_moq-sub"));
    let path = sub.with_file_name(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace --release --bins` first",
        path.display()
    );
    path
}

/// A tool installed by ci/setup.
pub fn tool(name: &str) -> String {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "{name} is not installed: run ci/setup"
    );
    name.to_string()
}

/// A loopback port free on both UDP and TCP (QUIC and HTTP share the number).
pub fn free_port() -> u16 {
    loop {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Poll `ready` until it holds or `deadline` passes.
pub fn wait_for(what: &str, deadline: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child process killed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    /// Stop a process that may still be running; if it already exited, it must have succeeded.
    pub fn stop_ok(mut self, what: &str) {
        if let Some(status) = self.0.try_wait().unwrap() {
            let out = self.finish(Duration::from_secs(1));
            assert!(
                status.success(),
                "{what} failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// Wait for exit, with a deadline, and collect its output.
    pub fn finish(mut self, deadline: Duration) -> Output {
        let start = Instant::now();
        loop {
            if self.0.try_wait().unwrap().is_some() {
                break;
            }
            if start.elapsed() > deadline {
                let _ = self.0.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let child = std::mem::replace(&mut self.0, Command::new("true").spawn().unwrap());
        child.wait_with_output().unwrap()
    }
}

/// A real moq-relay with anonymous access under `anon/`.
pub struct Relay {
    pub port: u16,
    _proc: Proc,
}

impl Relay {
    pub fn start() -> Self {
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let child = Command::new(tool("moq-relay"))
            .args([
                "--listen",
                &addr,
                "--listen-tls-generate",
                "localhost,127.0.0.1",
            ])
            .args(["--web-http-listen", &addr, "--auth-public", "anon/**"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let proc = Proc(child);
        wait_for("moq-relay", Duration::from_secs(15), || {
            TcpStream::connect(&addr).is_ok()
        });
        Self { port, _proc: proc }
    }

    /// The URL publishers and subscribers use (fingerprint fetched over http).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/anon", self.port)
    }
}

/// Start a binary with piped stdout/stderr.
pub fn spawn(program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Proc {
    Proc(
        Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

/// The closing `--stats` line of a moq-sub run.
pub fn final_stats(stderr: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(stderr);
    let line = text
        .lines()
        .find(|l| l.contains("\"final\":true"))
        .unwrap_or_else(|| panic!("no final stats line in:\n{text}"));
    serde_json::from_str(line).unwrap()
}

/// The stamps read back from every frame of a y4m file.
pub fn stamps(path: &std::path::Path) -> Vec<Option<lantern_proto::stamp::Stamp>> {
    let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let mut reader = lantern_proto::y4m::Reader::new(file).unwrap();
    let mut frame = reader.new_frame();
    let mut out = Vec::new();
    while reader.read_frame(&mut frame).unwrap() {
        out.push(lantern_proto::stamp::Stamp::read(&frame));
    }
    out
}
