//! Real processes for the end-to-end tests: a moq-relay on a free loopback port, a private
//! PipeWire, and the workspace's binaries built beside the test. Every wait has a deadline.

pub mod page;
pub mod x11;

use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A built binary of this workspace (`ci/test` builds them all before testing): beside the
/// running test's own executable, which cargo puts in the profile's `deps/`.
pub fn bin(name: &str) -> PathBuf {
    let test = std::env::current_exe().unwrap();
    let profile = test.parent().and_then(|deps| deps.parent()).unwrap();
    let path = profile.join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace --release --bins` first",
        path.display()
    );
    path
}

/// A tool installed by `ci/setup --test`.
pub fn tool(name: &str) -> String {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "{name} is not installed: run ci/setup --test"
    );
    name.to_string()
}

/// A loopback port free on both UDP and TCP (QUIC and HTTP share the number), for a server
/// to bind a moment later. It is taken below the kernel's ephemeral range, so no client
/// socket (a QUIC client's, say) is given it in that moment, as one could be a port the
/// kernel picked; each test process starts at a place of its own and never hands out the
/// same port twice. Where the ephemeral range leaves no room below it, the kernel picks.
pub fn free_port() -> u16 {
    let free = |port: u16| {
        let tcp = TcpListener::bind(("127.0.0.1", port)).ok()?;
        let port = tcp.local_addr().ok()?.port();
        UdpSocket::bind(("127.0.0.1", port)).ok().map(|_| port)
    };
    loop {
        if let Some(port) = free(candidate(Run::Single).unwrap_or(0)) {
            return port;
        }
    }
}

/// An even UDP port whose three neighbours above are free too (an RTP session's video and
/// sound, each with its RTCP), on every address, as an RTP receiver binds them. Taken as
/// [`free_port`]'s are (below the ephemeral range, a run of this process's own), from a part
/// of the range of their own.
pub fn free_rtp_port() -> u16 {
    let free = |port: u16| {
        let bound: Vec<_> = (port..port.checked_add(4)?)
            .map(|p| UdpSocket::bind(("0.0.0.0", p)).ok())
            .collect::<Option<_>>()?;
        (bound.len() == 4).then_some(port)
    };
    loop {
        let port = match candidate(Run::Rtp) {
            Some(port) => port,
            // No room below the ephemeral range: an even port near one the kernel picks.
            None => {
                let probe = UdpSocket::bind("0.0.0.0:0").unwrap();
                probe.local_addr().unwrap().port() & !1
            }
        };
        if let Some(port) = free(port) {
            return port;
        }
    }
}

/// Which ports a candidate is for: one port (the lower half of the room below the ephemeral
/// range), or an RTP session's four, starting even (the upper half).
#[derive(Clone, Copy)]
enum Run {
    Single,
    Rtp,
}

/// The next candidate of this test process's own run: each process starts at a place of its
/// own, and never hands out the same port (or block of four) twice. `None` where the ephemeral
/// range leaves no room below it.
fn candidate(run: Run) -> Option<u16> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static SINGLE: AtomicU32 = AtomicU32::new(0);
    static RTP: AtomicU32 = AtomicU32::new(0);
    let (low, span) = below_ephemeral()?;
    let half = span / 2;
    let start = std::process::id().wrapping_mul(37);
    Some(match run {
        Run::Single => {
            let next = start.wrapping_add(SINGLE.fetch_add(1, Ordering::Relaxed));
            (low + next % half) as u16
        }
        Run::Rtp => {
            let first = (low + half + 3) & !3;
            let blocks = (low + span - first) / 4;
            let next = start.wrapping_add(RTP.fetch_add(1, Ordering::Relaxed));
            (first + (next % blocks) * 4) as u16
        }
    })
}

/// Ports free of the kernel's ephemeral range: the first, and how many.
fn below_ephemeral() -> Option<(u32, u32)> {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let first: u32 = range.split_whitespace().next()?.parse().ok()?;
    let low = first.saturating_sub(12_000).max(10_000);
    let span = first.checked_sub(low).filter(|&span| span >= 2_000)?;
    Some((low, span))
}

/// Poll `ready` until it holds or `deadline` passes.
pub fn wait_for(what: &str, deadline: Duration, ready: impl FnMut() -> bool) {
    wait_for_or(what, deadline, ready, String::new);
}

/// [`wait_for`], saying `state()` (what the test can see of why) when the deadline passes.
pub fn wait_for_or(
    what: &str,
    deadline: Duration,
    mut ready: impl FnMut() -> bool,
    state: impl FnOnce() -> String,
) {
    let start = Instant::now();
    while !ready() {
        if start.elapsed() >= deadline {
            panic!(
                "timed out after {deadline:?} waiting for {what}\n{}",
                state()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child process killed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        if std::thread::panicking() {
            self.tell_stderr();
        }
    }
}

/// How many of a process's last lines a failed test shows.
const TOLD_LINES: usize = 40;

impl Proc {
    /// For a test that failed with this process still held: the last lines it wrote to its
    /// stderr (when no one took them), beside the failure. Its children may keep the pipe
    /// open, so it is read only while something comes within a second.
    fn tell_stderr(&mut self) {
        let Some(mut stderr) = self.0.stderr.take() else {
            return;
        };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut chunk = vec![0; 64 * 1024];
            while let Ok(n @ 1..) = std::io::Read::read(&mut stderr, &mut chunk) {
                if tx.send(chunk[..n].to_vec()).is_err() {
                    return;
                }
            }
        });
        let mut said = Vec::new();
        while let Ok(chunk) = rx.recv_timeout(Duration::from_secs(1)) {
            said.extend(chunk);
        }
        let said = String::from_utf8_lossy(&said);
        let lines: Vec<&str> = said.lines().collect();
        let last = &lines[lines.len().saturating_sub(TOLD_LINES)..];
        eprintln!(
            "[process {} of this failed test, its last {} lines on stderr]\n{}",
            self.0.id(),
            last.len(),
            last.join("\n")
        );
    }
}

impl Proc {
    /// Ask the process to stop as Ctrl-C would (so it can finish its files), and wait.
    pub fn interrupt(self, deadline: Duration) -> Output {
        let pid = self.0.id().to_string();
        let _ = Command::new("kill").args(["-INT", &pid]).status();
        self.finish(deadline)
    }

    /// Stop a publisher that was given more to send than the test needs, as Ctrl-C would,
    /// once its viewer has what it needs: it must stop cleanly (130), or have ended by itself
    /// (a file source that ran out) with success.
    pub fn interrupt_clean(self, what: &str, deadline: Duration) -> Output {
        let out = self.interrupt(deadline);
        assert!(
            out.status.success() || out.status.code() == Some(130),
            "{what} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

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

    /// [`Proc::finish`], and it must have succeeded.
    pub fn finish_ok(self, what: &str, deadline: Duration) -> Output {
        let out = self.finish(deadline);
        assert!(
            out.status.success(),
            "{what} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
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
    /// The relays it dials as cluster peers.
    peers: Vec<u16>,
    proc: Option<Proc>,
}

impl Relay {
    pub fn start() -> Self {
        let mut relay = Self {
            port: free_port(),
            peers: Vec::new(),
            proc: None,
        };
        relay.start_again();
        relay
    }

    /// `n` relays in a full mesh (moq-relay's own clustering: each dials every other with
    /// `--cluster-connect`), so a broadcast announced on any reaches subscribers on all.
    pub fn cluster(n: usize) -> Vec<Relay> {
        let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        ports
            .iter()
            .map(|&port| {
                let mut relay = Self {
                    port,
                    peers: ports.iter().copied().filter(|&p| p != port).collect(),
                    proc: None,
                };
                relay.start_again();
                relay
            })
            .collect()
    }

    /// Kill the relay (SIGKILL: no goodbye to its peers, as when its host dies).
    pub fn kill(&mut self) {
        self.proc = None;
    }

    /// Start the relay again on its port (a new certificate, as a restarted relay has).
    pub fn start_again(&mut self) {
        self.proc = Some(Self::spawn(self.port, &self.peers));
    }

    fn spawn(port: u16, peers: &[u16]) -> Proc {
        let addr = format!("127.0.0.1:{port}");
        let mut command = Command::new(tool("moq-relay"));
        command
            .args([
                "--listen",
                &addr,
                "--listen-tls-generate",
                "localhost,127.0.0.1",
            ])
            .args(["--web-http-listen", &addr, "--auth-public", "anon/**"]);
        // Peers are dialed at the root, so broadcasts keep their full paths across the mesh.
        for peer in peers {
            command.args(["--cluster-connect", &format!("http://127.0.0.1:{peer}/")]);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let proc = Proc(child);
        wait_for("moq-relay", Duration::from_secs(15), || {
            TcpStream::connect(&addr).is_ok()
        });
        proc
    }

    /// The URL publishers and subscribers use (fingerprint fetched over http).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/anon", self.port)
    }
}

/// A publisher that lies (moq-cli importing raw H.264, as any stranger could): 320x180
/// pictures, and a catalog that says so, until the file `cue` appears; then keyframes whose
/// parameter sets declare 8192x4608 (the catalog follows later, so a viewer already playing
/// meets the new size in band first). Each part ends by itself within a minute.
pub fn lying_h264(relay: &Relay, name: &str, cue: &std::path::Path) -> Proc {
    let encode = "ffmpeg -hide_banner -loglevel error -re -f lavfi";
    let x264 = "-c:v libx264 -preset ultrafast -tune zerolatency -f h264 -";
    let shell = format!(
        "({encode} -i testsrc2=size=320x180:rate=30 -t 60 {x264} & small=$!; \
           while [ ! -e '{cue}' ] && kill -0 $small 2>/dev/null; do sleep 0.05; done; \
           kill $small; wait $small; \
           {encode} -i color=size=8192x4608:rate=5 -t 20 -g 5 {x264}) \
         | {moq} --connect {url} --broadcast {name} import avc3 2>/dev/null",
        cue = cue.display(),
        moq = tool("moq"),
        url = relay.url(),
    );
    spawn("sh", &["-c", &shell])
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

/// moq-sub playing the RTP session an SDP file describes: no window, `--stats`, `frames`
/// frames, and `extra`.
pub fn play_sdp(sdp: &std::path::Path, frames: &str, extra: &[&str]) -> Proc {
    let sdp = sdp.to_str().unwrap();
    let mut args = vec!["--sdp", sdp, "--no-window", "--stats", "--frames", frames];
    args.extend_from_slice(extra);
    spawn(bin("moq-sub"), &args)
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

/// The `rate` object of each of a publisher's stats lines, in order (the closing one last):
/// moq-pub's (`rate`) or host-daemon's (`video.rate`).
pub fn rate_lines(stderr: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|line| match line["role"].as_str() {
            Some("pub") => line.get("rate").cloned(),
            Some("host") => line["video"].get("rate").cloned(),
            _ => None,
        })
        .collect()
}

/// A viewer's link that narrows and widens again, as lantern-netem's `--down`: 3 Mbit/s for
/// 12 s, 300 kbit/s for 8 s, then 3 Mbit/s (10 ms each way: `--up` is [`NARROWING_UP`]).
pub const NARROWING_DOWN: &str = "rate=3mbit/12s,300kbit/8s,3mbit/60s queue=300ms delay=10ms";
pub const NARROWING_UP: &str = "delay=10ms";

/// moq-pub publishing the 640x360 cube as `name` at `url` (no sound, stats on), its bitrate
/// following every viewer's feedback (`--feedback open`; it starts at 1106 kbit/s).
pub fn publish_following(url: &str, name: &str, extra: &[&str]) -> Proc {
    let mut args = vec![
        "--url",
        url,
        "--name",
        name,
        "--width",
        "640",
        "--height",
        "360",
        "--audio",
        "none",
        "--stats",
        "--feedback",
        "open",
    ];
    args.extend_from_slice(extra);
    spawn(bin("moq-pub"), &args)
}

/// Panics unless the bitrate target in `rates` (see [`rate_lines`]), while one viewer counted,
/// went to `high` kbit/s or more, then to `low` or less, then to `high` again: it followed a
/// link that narrowed and widened again.
pub fn assert_high_low_high(rates: &[serde_json::Value], high: u64, low: u64) {
    let targets: Vec<u64> = rates
        .iter()
        .filter(|r| r["viewers"].as_u64() == Some(1))
        .filter_map(|r| r["target_kbps"].as_u64())
        .collect();
    let first_high = targets.iter().position(|t| *t >= high);
    let fell = first_high.and_then(|i| targets[i..].iter().position(|t| *t <= low).map(|j| i + j));
    let again = fell.and_then(|i| targets[i..].iter().position(|t| *t >= high));
    assert!(
        again.is_some(),
        "the target never went high, low, high again: {targets:?}"
    );
}

/// A viewer's `frames` pictures shown, checked against its final `stats`: `read` are the
/// stamp numbers that read, in the order shown, and `unread` more pictures were shown whose
/// stamp the codec damaged (at most `allowed`). Stamps increase; every gap between them is a
/// drop but for the unread pictures, which count as `unstamped`. A stamp shown twice in a row
/// is a picture the sender sent again because its source stood still (a host's capture
/// repeats a still screen): at most `repeats` of those, and none is a drop.
pub fn check_stamp_numbers(
    read: &[u32],
    unread: usize,
    allowed: usize,
    repeats: u64,
    stats: &serde_json::Value,
    frames: usize,
) {
    assert!(
        unread <= allowed,
        "{unread} frames without a readable stamp: {stats}"
    );
    assert_eq!(read.len() + unread, frames, "frames shown");
    // A viewer that showed a picture says how long joining took.
    if frames > 0 {
        let join = stats["join_ms"].as_f64();
        assert!(join.is_some_and(|ms| ms >= 0.0), "no join_ms: {stats}");
    }
    let (mut gaps, mut again) = (0u64, 0u64);
    for pair in read.windows(2) {
        if pair[1] == pair[0] {
            again += 1;
            continue;
        }
        assert!(pair[1] > pair[0], "stamps out of order: {pair:?}");
        gaps += u64::from(pair[1] - pair[0] - 1);
    }
    assert!(
        again <= repeats,
        "{again} pictures shown twice in a row, but the sender repeated {repeats}"
    );
    assert_eq!(stats["frames"], frames as u64);
    assert_eq!(
        stats["drops"],
        gaps - unread as u64,
        "drops reported must match the gaps in the stamps, less the frames shown unread"
    );
    assert_eq!(stats["unstamped"], unread as u64);
}

/// The stamps read back from every frame of a y4m file.
pub fn stamps(path: &std::path::Path) -> Vec<Option<lantern_proto::stamp::Stamp>> {
    let file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let mut reader = lantern_proto::y4m::Reader::new(file).unwrap();
    let mut frame = reader.new_frame();
    let mut out = Vec::new();
    while reader.read_frame(&mut frame.view_mut()).unwrap() {
        out.push(lantern_proto::stamp::Stamp::read(&frame.image()));
    }
    out
}

/// Start a binary with piped output and extra environment variables.
pub fn spawn_env(
    program: impl AsRef<std::ffi::OsStr>,
    args: &[&str],
    env: &[(String, String)],
) -> Proc {
    Proc(
        Command::new(program)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

/// A private PipeWire: a session bus, the pipewire daemon and wireplumber, all under a
/// temporary XDG_RUNTIME_DIR, so tests never touch (or need) a desktop's sound server.
pub struct PipeWire {
    env: Vec<(String, String)>,
    // Dropped (killed) in reverse order of starting: wireplumber, pipewire, dbus.
    procs: Vec<Proc>,
    _dir: tempfile::TempDir,
}

impl Drop for PipeWire {
    fn drop(&mut self) {
        while let Some(proc) = self.procs.pop() {
            drop(proc);
        }
    }
}

impl PipeWire {
    pub fn start() -> Self {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        let runtime = dir.path().to_str().unwrap().to_string();
        let mut dbus = Command::new(tool("dbus-daemon"))
            .args(["--session", "--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut address = String::new();
        std::io::BufReader::new(dbus.stdout.take().unwrap())
            .read_line(&mut address)
            .unwrap();
        let mut pw = Self {
            env: vec![
                ("XDG_RUNTIME_DIR".into(), runtime.clone()),
                (
                    "DBUS_SESSION_BUS_ADDRESS".into(),
                    address.trim().to_string(),
                ),
            ],
            procs: vec![Proc(dbus)],
            _dir: dir,
        };
        let daemon = pw.background(&tool("pipewire"), &[]);
        pw.procs.push(daemon);
        let socket = std::path::Path::new(&runtime).join("pipewire-0");
        wait_for("the pipewire socket", Duration::from_secs(15), || {
            socket.exists()
        });
        let session = pw.background(&tool("wireplumber"), &[]);
        pw.procs.push(session);
        wait_for("wireplumber", Duration::from_secs(15), || {
            pw.output("wpctl", &["status"]).contains("WirePlumber")
        });
        pw
    }

    /// Environment variables that point a process at this PipeWire.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    fn background(&self, program: &str, args: &[&str]) -> Proc {
        Proc(
            Command::new(program)
                .args(args)
                .envs(self.env.iter().map(|(k, v)| (k, v)))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    }

    /// Run a PipeWire tool to completion (bounded) and return its stdout.
    pub fn output(&self, program: &str, args: &[&str]) -> String {
        let out = spawn_env(tool(program), args, &self.env).finish(Duration::from_secs(10));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Create a stereo null sink (a virtual speaker whose monitor can be captured).
    pub fn null_sink(&self, name: &str) {
        let props = format!(
            "{{ factory.name=support.null-audio-sink node.name={name} media.class=Audio/Sink \
             object.linger=true audio.position=[FL FR] }}"
        );
        self.output("pw-cli", &["create-node", "adapter", &props]);
        wait_for("the null sink", Duration::from_secs(10), || {
            self.output("wpctl", &["status"]).contains(name)
        });
    }

    /// Record what `target` (a sink's monitor) plays into a WAV file; stop with
    /// [`Proc::interrupt`].
    pub fn record(&self, target: &str, wav: &std::path::Path) -> Proc {
        self.background(
            &tool("pw-record"),
            &["--target", target, wav.to_str().unwrap()],
        )
    }

    /// Play a WAV file into `target` until dropped.
    pub fn play(&self, wav: &std::path::Path, target: &str) -> Proc {
        self.background(
            &tool("pw-play"),
            &["--target", target, wav.to_str().unwrap()],
        )
    }
}

/// The first channel of a 16-bit WAV file as Lantern writes it (44-byte header).
pub fn read_wav(path: &std::path::Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap();
    assert!(
        bytes.len() >= 44 && &bytes[..4] == b"RIFF",
        "not a WAV: {}",
        path.display()
    );
    let channels = u16::from_le_bytes([bytes[22], bytes[23]]).max(1) as usize;
    bytes[44..]
        .chunks_exact(2 * channels)
        .map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / i16::MAX as f32)
        .collect()
}

/// Frequency (from zero crossings) and RMS level of one channel of a stretch of sound.
pub fn tone_of(mono: &[f32]) -> (f64, f64) {
    let crossings = mono
        .windows(2)
        .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
        .count();
    let seconds = mono.len() as f64 / 48_000.0;
    let rms = (mono.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / mono.len() as f64).sqrt();
    (crossings as f64 / 2.0 / seconds, rms)
}

/// The pitch of a long tone: the median of [`tone_of`]'s frequency over 100 ms windows, so a
/// few glitches (a player that underran on a loaded machine) do not move it; the glitches
/// themselves are for the caller's silence accounting.
pub fn pitch_of(mono: &[f32]) -> f64 {
    let mut hz: Vec<f64> = mono.chunks_exact(4_800).map(|w| tone_of(w).0).collect();
    assert!(!hz.is_empty(), "less than 100 ms of sound");
    hz.sort_by(f64::total_cmp);
    hz[hz.len() / 2]
}

/// The web viewer's folder (`web/`, its page built into `dist/` by ci/setup).
pub fn web_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../web")
}

/// The built page's folder, checked.
pub fn web_dist() -> PathBuf {
    let dist = web_dir().join("dist");
    assert!(
        dist.join("index.html").is_file(),
        "the web viewer is not built: run ci/setup (cd web && npm ci && npm run build)"
    );
    dist
}

/// Headless Chromium on the viewer page at `url` (see `web/tests/play.mjs` for `extra`):
/// until it has shown `frames` pictures, acting as asked; what the page measured.
pub fn play_page(url: &str, frames: u32, extra: &[&str]) -> page::PageFigures {
    let script = web_dir().join("tests/play.mjs");
    let count = frames.to_string();
    let mut args = vec![script.to_str().unwrap(), url, &count];
    args.extend_from_slice(extra);
    let out = spawn(tool("node"), &args).finish(Duration::from_secs(120));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the page did not play:\n{log}");
    let line = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("{e}: {line}\n{log}"))
}

/// A `lantern-netem` proxy in front of a server on loopback: one emulated path (see its
/// `--help` for the link settings), its figures kept as it prints them.
pub struct Netem {
    pub port: u16,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    _proc: Proc,
}

impl Netem {
    /// Between clients and the server on `server_port`, with links `up` (client → server)
    /// and `down`; TCP on the same port passes unimpaired.
    pub fn start(server_port: u16, up: &str, down: &str) -> Self {
        use std::io::BufRead;
        let to = format!("127.0.0.1:{server_port}");
        let args = [
            "proxy",
            "--listen",
            "127.0.0.1:0",
            "--to",
            &to,
            "--up",
            up,
            "--down",
            down,
            "--json",
        ];
        let mut child = Command::new(bin("lantern-netem"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The first line says where it listens: "lantern-netem: 127.0.0.1:PORT → …".
        let mut first = String::new();
        std::io::BufReader::new(child.stderr.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let port = first
            .split_whitespace()
            .nth(1)
            .and_then(|addr| addr.rsplit(':').next())
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("lantern-netem did not start: {first:?}"));
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (stdout, kept) = (child.stdout.take().unwrap(), lines.clone());
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                kept.lock().unwrap().push(line);
            }
        });
        Self {
            port,
            lines,
            _proc: Proc(child),
        }
    }

    /// The server's URL as a client on this path dials it (`http://…/anon` for a relay).
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    /// The latest figures the proxy printed (it prints a line a second).
    pub fn stats(&self) -> Option<serde_json::Value> {
        let lines = self.lines.lock().unwrap();
        lines.last().and_then(|l| serde_json::from_str(l).ok())
    }
}

/// A port where only TCP reaches the server on `to` (its HTTP, its WebSocket) and UDP goes
/// nowhere: a network that blocks QUIC. Each connection is copied both ways by two threads
/// until either side closes.
pub struct TcpOnly {
    pub port: u16,
}

impl TcpOnly {
    pub fn start(to: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                let Ok(server) = TcpStream::connect(("127.0.0.1", to)) else {
                    continue;
                };
                for (mut from, mut into) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut into);
                        let _ = into.shutdown(std::net::Shutdown::Write);
                    });
                }
            }
        });
        Self { port }
    }
}

/// `GET http://ADDR/PATH` on loopback, the body (plain HTTP/1.1, as the direct server and
/// moq-relay answer `/certificate.sha256`).
pub fn http_get(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.trim().to_string()
}

/// A certificate authority made for one test, and a server certificate it signed for `host`
/// and 127.0.0.1 (ECDSA P-256, two days), as PEM files in `dir`: what an operator's ACME
/// client would give, on a CA only the test's browser and clients trust.
pub struct TestCa {
    pub ca: std::path::PathBuf,
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

impl TestCa {
    pub fn new(dir: &std::path::Path, host: &str) -> Self {
        let path = |name: &str| dir.join(name);
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl").args(args).output().unwrap();
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let (ca, ca_key, key, csr, cert, ext) = (
            path("ca.pem"),
            path("ca.key"),
            path("server.key"),
            path("server.csr"),
            path("server.pem"),
            path("server.ext"),
        );
        let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        let mut args = vec!["req", "-x509", "-days", "2", "-subj", "/CN=Lantern test CA"];
        args.extend(ec);
        let (ca_s, ca_key_s) = (s(&ca), s(&ca_key));
        args.extend(["-keyout", &ca_key_s, "-out", &ca_s]);
        args.extend(["-addext", "basicConstraints=critical,CA:TRUE"]);
        args.extend(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
        openssl(&args);
        let (key_s, csr_s, cert_s, ext_s) = (s(&key), s(&csr), s(&cert), s(&ext));
        let subject = format!("/CN={host}");
        let mut args = vec!["req", "-subj", &subject, "-keyout", &key_s, "-out", &csr_s];
        args.extend(ec);
        openssl(&args);
        std::fs::write(
            &ext,
            format!(
                "subjectAltName=DNS:{host},IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n"
            ),
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-days",
            "2",
            "-in",
            &csr_s,
            "-CA",
            &ca_s,
            "-CAkey",
            &ca_key_s,
            "-CAcreateserial",
            "-out",
            &cert_s,
            "-extfile",
            &ext_s,
        ]);
        Self { ca, cert, key }
    }
}

/// What ffprobe reads in a recording: each stream's codec (in file order), how long the file
/// plays, and how many video packets it holds.
#[derive(Debug)]
pub struct Probed {
    pub codecs: Vec<String>,
    pub seconds: f64,
    pub video_packets: u64,
}

/// Probe the media file at `path`, which ffprobe must read without an error.
pub fn probe(path: &std::path::Path) -> Probed {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_packets", "-of", "json"])
        .args([
            "-show_entries",
            "stream=codec_name,codec_type,nb_read_packets:format=duration",
        ])
        .arg(path)
        .output()
        .unwrap();
    let errors = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ffprobe {}: {errors}", path.display());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let streams = json["streams"].as_array().cloned().unwrap_or_default();
    let field = |s: &serde_json::Value, key: &str| s[key].as_str().unwrap_or_default().to_string();
    let video_packets = streams
        .iter()
        .find(|s| s["codec_type"] == "video")
        .and_then(|s| field(s, "nb_read_packets").parse().ok())
        .unwrap_or(0);
    Probed {
        codecs: streams.iter().map(|s| field(s, "codec_name")).collect(),
        seconds: field(&json["format"], "duration").parse().unwrap_or(0.0),
        video_packets,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ports handed out are never handed out again, single ones never fall inside an RTP
    /// block, and RTP blocks start even.
    #[test]
    fn ports_are_handed_out_once_and_rtp_blocks_apart() {
        let singles: Vec<u16> = (0..20).map(|_| free_port()).collect();
        let blocks: Vec<u16> = (0..5).map(|_| free_rtp_port()).collect();
        let mut all: Vec<u16> = singles.clone();
        all.extend(blocks.iter().flat_map(|&b| b..b + 4));
        let count = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(
            all.len(),
            count,
            "a port handed out twice: {singles:?} {blocks:?}"
        );
        assert!(blocks.iter().all(|b| b % 2 == 0), "{blocks:?}");
    }
}
