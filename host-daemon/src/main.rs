use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use host_daemon::capture::Capture;
use host_daemon::compositor;
use host_daemon::serve::{self, Create, Spec, ctl, socket};
use host_daemon::session::{self, Ended, Event};
use lantern_cli as cli;
use serde_json::json;

/// Run apps on this host inside headless compositors of their own and stream them over Media
/// over QUIC: the picture from the compositor, the sound from a private PipeWire sink that is
/// the app's speaker, to a MoQ relay (--url) or straight to viewers (--listen).
///
/// Examples:
///   host-daemon run --listen 127.0.0.1:4443 --name game -- supertuxkart
///   host-daemon run --url https://relay.example/anon --name desk --width 1920 --height 1080 -- foot
///
/// Then watch with: moq-sub --url http://127.0.0.1:4443/ --name game
///
/// As a service, many sessions at once, controlled through a Unix socket only its owner can use:
///   host-daemon serve --config /etc/lantern/host-daemon.toml
///   host-daemon ctl create game --listen 127.0.0.1:4443 -- supertuxkart
///   host-daemon ctl list
///   host-daemon ctl stop game
#[derive(Parser, Debug)]
#[command(version, verbatim_doc_comment)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run one app in a session of its own and stream it until the app exits (its exit status
    /// becomes host-daemon's), Ctrl-C/SIGTERM, or the compositor dies.
    Run(Box<RunArgs>),
    /// Run many sessions, created and stopped through the control API: HTTP/JSON on a Unix
    /// socket that only the daemon's owner can use (0600, peers checked). SIGTERM stops them
    /// all.
    Serve(ServeArgs),
    /// Call a serving daemon's control API (or use `curl --unix-socket SOCKET
    /// http://host-daemon/sessions`).
    Ctl(CtlArgs),
    /// Lantern's own compositor, as a session starts it (as the session's user).
    #[command(hide = true)]
    Compositor(CompositorArgs),
    /// The session's sound capture, as a session starts it (as the session's user): frames
    /// of the sink's monitor on stdout, for the daemon.
    #[command(hide = true)]
    SoundCapture(SoundCaptureArgs),
    /// The session's picture capture, as a session starts it (as the session's user): the
    /// pictures into the ring on stdin, told of on stdout, for the daemon.
    #[command(hide = true)]
    PictureCapture(PictureCaptureArgs),
    /// The session's input injection, as a session starts it (as the session's user):
    /// commands from the daemon on stdin, into the compositor's virtual devices.
    #[command(hide = true)]
    InputInject(InputInjectArgs),
}

#[derive(Args, Debug)]
struct InputInjectArgs {
    /// The compositor's control socket.
    #[arg(long)]
    socket: PathBuf,
}

#[derive(Args, Debug)]
struct PictureCaptureArgs {
    /// What to capture: `compositor[:auto|shm|dmabuf]` or `pipewire:NODE`.
    #[arg(long)]
    capture: host_daemon::capture::Capture,
    /// The compositor's control socket, or the session's PipeWire socket.
    #[arg(long)]
    path: PathBuf,
    /// The output's mode (a compositor's capture).
    #[command(flatten)]
    mode: HelperMode,
    /// Draw the pointer into the picture.
    #[arg(long)]
    cursor: bool,
    /// How long the compositor or the node may take to offer the first picture.
    #[arg(long)]
    timeout_ms: u64,
}

/// The session's output mode, as the daemon passes it to a process of the session.
#[derive(Args, Debug)]
struct HelperMode {
    #[arg(long)]
    width: u32,
    #[arg(long)]
    height: u32,
    #[arg(long)]
    fps: f64,
}

impl From<HelperMode> for moq_pub::source::Format {
    fn from(mode: HelperMode) -> Self {
        Self {
            width: mode.width,
            height: mode.height,
            fps: mode.fps,
        }
    }
}

#[derive(Args, Debug)]
struct SoundCaptureArgs {
    /// The session's PipeWire socket.
    #[arg(long)]
    remote: PathBuf,
    /// The node whose sound (a sink's monitor) is captured.
    #[arg(long)]
    target: String,
    /// Samples per frame, as a frame's length in µs.
    #[arg(long)]
    frame_us: u64,
    /// How long the session's PipeWire may take to offer the target.
    #[arg(long)]
    timeout_ms: u64,
}

#[derive(Args, Debug)]
struct CompositorArgs {
    /// The apps' Wayland socket.
    #[arg(long)]
    socket: PathBuf,
    /// The daemon's socket (capture and input).
    #[arg(long)]
    control: PathBuf,
    /// A file made once both listen.
    #[arg(long)]
    ready: Option<PathBuf>,
    #[command(flatten)]
    mode: HelperMode,
    /// Run XWayland for X11 apps.
    #[arg(long)]
    xwayland: bool,
    /// A file replaced once a second with the app's pacing figures.
    #[arg(long)]
    figures: Option<PathBuf>,
    /// A GPU's render node: offer linux-dmabuf to apps that render on it.
    #[arg(long)]
    dmabuf_device: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// The config (TOML): `socket`, `max_sessions`, and `[session]` defaults (url, token,
    /// width, …) [default: /etc/lantern/host-daemon.toml as root, else
    /// ~/.config/lantern/host-daemon.toml; a missing default file is fine].
    #[arg(long, value_name = "TOML")]
    config: Option<PathBuf>,

    /// The control socket [default: the config's, else /run/lantern/host-daemon.sock as root,
    /// else $XDG_RUNTIME_DIR/lantern/host-daemon.sock].
    #[arg(long)]
    socket: Option<PathBuf>,

    /// Print each session's statistics as JSON lines on stderr, a line a second.
    #[arg(long)]
    stats: bool,
}

#[derive(Args, Debug)]
struct CtlArgs {
    /// The daemon's control socket [default: as for serve].
    #[arg(long, global = true)]
    socket: Option<PathBuf>,

    #[command(subcommand)]
    call: Call,
}

#[derive(Subcommand, Debug)]
enum Call {
    /// Start a session; answers once it streams. Unset settings take the daemon config's
    /// `[session]` values.
    Create {
        /// The session's (and the broadcast's) name.
        name: String,
        #[command(flatten)]
        spec: Box<Spec>,
        /// Extra environment for the app (repeatable).
        #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
        app_env: Vec<(String, String)>,
        /// The app and its arguments.
        #[arg(last = true, required = true, value_name = "APP")]
        app: Vec<String>,
    },
    /// The sessions, a line each.
    List {
        /// The API's JSON instead.
        #[arg(long)]
        json: bool,
    },
    /// One session's state and last second's figures (JSON).
    Stats { name: String },
    /// Stop a session (or forget an ended one); prints its final figures (JSON).
    Stop { name: String },
    /// Sign an input grant for a session and print it (TOKEN~SECRET) on stdout, for the
    /// player only (`LANTERN_GRANT=… moq-sub`, or the page address printed on stderr): only
    /// granted viewers' input is injected.
    Grant {
        name: String,
        /// The viewer id the grant names (its input broadcast is NAME/viewer/ID)
        /// [default: a random one].
        #[arg(long, value_name = "ID")]
        viewer: Option<String>,
        /// How long the grant lasts, in seconds [default: 43200, twelve hours; at most a
        /// week].
        #[arg(long, value_name = "SECONDS")]
        ttl: Option<u64>,
    },
    /// Revoke a session's grant (its id, as `ctl grant` printed it) or every grant of a
    /// viewer: their input stops within a second, and whatever they held is released.
    Revoke {
        name: String,
        /// The grant's id.
        #[arg(
            long,
            value_name = "ID",
            required_unless_present = "viewer",
            conflicts_with = "viewer"
        )]
        grant: Option<String>,
        /// Every grant of this viewer id.
        #[arg(long, value_name = "ID")]
        viewer: Option<String>,
    },
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Broadcast name (under the URL's path on a relay).
    #[arg(long, default_value = "lantern")]
    name: String,

    /// Output width: the compositor's one output has exactly this mode, and so has the stream.
    #[arg(long, default_value_t = 1280)]
    width: u32,

    #[arg(long, default_value_t = 720)]
    height: u32,

    /// Output refresh rate, which is the most the stream carries.
    #[arg(long, default_value_t = 60.0)]
    fps: f64,

    /// The relay or the direct server, the RTP copy, the recording, and the encoders. An
    /// adaptive bitrate follows the granted players' feedback (every viewer's with --input
    /// open); spectators never pull it down.
    #[command(flatten)]
    publish: moq_pub::PublishArgs,

    /// The compositor: lantern, our own (each committed frame captured at once, the app's
    /// frames paced for input-to-photon; X11 apps through XWayland); sway (wlroots, headless;
    /// pixman without a GPU); gamescope (headless backend, needs a GPU; the picture from its
    /// PipeWire node; view-only for now); or auto: gamescope where it can run, else lantern.
    #[arg(long, value_enum, default_value = "auto")]
    compositor: compositor::Kind,

    /// Run the compositor and app as this user. Only when host-daemon runs as root (wlroots
    /// refuses root, and apps should not have it); default `lantern`.
    #[arg(long)]
    user: Option<String>,

    /// Where the picture comes from: `compositor` (wlr-screencopy of its output; into
    /// DMA-BUFs where it offers them and the host has a GPU render node, else shared memory;
    /// `compositor:shm` or `compositor:dmabuf` to insist) or `pipewire:NODE`, a PipeWire video
    /// node an app of the session offers (by node.name or serial; DMA-BUF when offered, else
    /// shared memory).
    #[arg(long, default_value = "compositor")]
    capture: Capture,

    /// Do not start XWayland (X11 apps then cannot run).
    #[arg(long)]
    no_xwayland: bool,

    /// Draw the pointer into the picture, as the app shows it. Off by default: the viewers
    /// draw their own, with no delay. Applies to a compositor capture (lantern, sway); a
    /// PipeWire node's picture comes as its app made it.
    #[arg(long)]
    cursor: bool,

    /// No sound: no PipeWire for the session, no audio track.
    #[arg(long)]
    no_audio: bool,

    /// Extra environment for the app (repeatable). It gets nothing else of host-daemon's.
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    app_env: Vec<(String, String)>,

    /// Draw the frame stamp (for measuring glass-to-glass latency) into the app's pictures.
    #[arg(long)]
    stamp: bool,

    /// Print one JSON line of statistics a second on stderr (capture, encoder and input
    /// figures).
    #[arg(long)]
    stats: bool,

    /// Whose input is injected: `granted` (viewers with this session's grant, printed at
    /// start), `open` (any viewer that reaches the session: trusted networks only) or `off`.
    #[arg(long, value_enum, default_value = "granted")]
    input: host_daemon::input::Auth,

    /// The viewer id of the grant made at start (its input broadcast is
    /// NAME/viewer/ID) [default: a random one].
    #[arg(long, value_name = "ID")]
    viewer: Option<String>,

    /// Write the grant made at start to this file (owner-only) instead of printing it.
    #[arg(long, value_name = "FILE")]
    grant_out: Option<PathBuf>,

    /// Print the grant made at start (and the page address that carries it) even when
    /// stderr is no terminal, where logs would keep it. Without it, and without
    /// --grant-out, the grant is printed only to a terminal.
    #[arg(long, conflicts_with = "grant_out")]
    print_grant: bool,

    /// The app and its arguments.
    #[arg(last = true, required = true, value_name = "APP")]
    app: Vec<String>,
}

/// Write a secret into a file only its owner can read, whole or not at all: it goes into a
/// new owner-only file beside `path`, which is then renamed over it. A reader waiting for the
/// file never finds it empty or half written, and a link planted at `path` is replaced, never
/// followed.
fn write_private(path: &std::path::Path, secret: &str) -> Result<(), host_daemon::Error> {
    use std::io::Write;
    let failed = |e| host_daemon::Error::Io {
        what: format!("writing {}", path.display()),
        source: e,
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => std::path::Path::new("."),
    };
    // Made with O_EXCL and mode 0600 before anything is in it.
    let mut file = tempfile::Builder::new()
        .prefix(".grant-")
        .tempfile_in(dir)
        .map_err(failed)?;
    writeln!(file, "{secret}").map_err(failed)?;
    file.as_file().sync_all().map_err(failed)?;
    file.persist(path).map_err(|e| failed(e.error))?;
    Ok(())
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.into(), value.into())),
        _ => Err(format!("{s:?}: expected KEY=VALUE")),
    }
}

// One thread: the session's children are spawned from it (their parent-death signal is
// tied to the spawning thread), and encoding runs on threads of its own.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    // SAFETY: the first thing main does; a current-thread runtime has started no thread.
    unsafe { cli::quiet_svt_log() };
    cli::init_logging("moq_pub=info,host_daemon=info");
    let Cli { command } = Cli::parse();
    let shutdown = cli::Shutdown::install();
    if let Err(err) = cli::raise_fd_limit() {
        tracing::warn!(%err, "cannot raise the open-file limit: serving many viewers may run out");
    }
    if matches!(command, Command::Run(_) | Command::Serve(_)) {
        host_daemon::cgroup::sweep();
    }
    match command {
        Command::Run(args) => match run(*args, shutdown.token()).await {
            // The app ended the session: its status is ours.
            Ok(Some(status)) if shutdown.signal().is_none() => ExitCode::from(status),
            result => cli::exit("host-daemon", result, &shutdown),
        },
        Command::Serve(args) => {
            let result = serve_sessions(args, shutdown.token()).await;
            cli::exit("host-daemon", result, &shutdown)
        }
        Command::Compositor(args) => {
            let result = compositor(args, shutdown.token()).await;
            cli::exit("host-daemon compositor", result, &shutdown)
        }
        Command::SoundCapture(args) => {
            let result = sound_capture(args);
            cli::exit("host-daemon sound-capture", result, &shutdown)
        }
        Command::PictureCapture(args) => {
            let result = host_daemon::capture::picture::serve(
                &args.capture,
                &args.path,
                args.mode.into(),
                args.cursor,
                std::time::Duration::from_millis(args.timeout_ms),
            );
            cli::exit("host-daemon picture-capture", result, &shutdown)
        }
        Command::InputInject(args) => {
            let result = host_daemon::input::helper::serve(&args.socket);
            cli::exit("host-daemon input-inject", result, &shutdown)
        }
        Command::Ctl(args) => match ctl(args).await {
            Ok(code) => code,
            result => cli::exit("host-daemon ctl", result.map(|_| ()), &shutdown),
        },
    }
}

/// Capture the session's sound for its daemon until the daemon stops reading.
fn sound_capture(args: SoundCaptureArgs) -> Result<(), host_daemon::Error> {
    let settings = moq_pub::audio::AudioSettings::new(args.frame_us as f64 / 1000.0, 64)?;
    host_daemon::capture::sound::serve(
        &args.remote,
        &args.target,
        settings,
        std::time::Duration::from_millis(args.timeout_ms),
    )
}

/// Run Lantern's compositor until the stop.
async fn compositor(
    args: CompositorArgs,
    cancel: tokio_util::sync::CancellationToken,
) -> Result<(), host_daemon::Error> {
    let config = lantern_compositor::Config {
        width: args.mode.width,
        height: args.mode.height,
        fps: args.mode.fps,
        socket: args.socket,
        control: args.control,
        ready: args.ready,
        xwayland: args.xwayland,
        figures: args.figures,
        dmabuf_device: args.dmabuf_device,
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    tokio::spawn(async move {
        cancel.cancelled().await;
        flag.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let summary = tokio::task::spawn_blocking(move || lantern_compositor::run(&config, &stop))
        .await
        .map_err(|source| host_daemon::Error::Task {
            what: "compositor's thread",
            source,
        })??;
    tracing::info!(?summary, "compositor stopped");
    Ok(())
}

/// Run the session; `Some(status)` is the app's, to pass on.
async fn run(
    args: RunArgs,
    cancel: tokio_util::sync::CancellationToken,
) -> Result<Option<u8>, host_daemon::Error> {
    let (name, print_stats, sdp_to) = (args.name.clone(), args.stats, args.publish.sdp.clone());
    let (viewer, grant_out, print_grant) = (
        args.viewer.clone(),
        args.grant_out.clone(),
        args.print_grant,
    );
    let config = Create {
        name: args.name.clone(),
        app: args.app.clone(),
        env: args.app_env.iter().cloned().collect(),
        spec: run_spec(args),
        unknown: Default::default(),
    }
    .config(&Spec::default())?;
    // The grant made at start, when it is printed: the page's address carries it too.
    let mut printed_grant = None;
    if config.input.auth == host_daemon::input::Auth::Granted {
        let grants = &config.input.grants;
        let grant = grants
            .issue(viewer.as_deref(), lantern_net::grant::DEFAULT_TTL)
            .map_err(host_daemon::Error::from)?;
        use std::io::IsTerminal;
        let shown = print_grant || std::io::stderr().is_terminal();
        match &grant_out {
            Some(path) => write_private(path, &grant.credential)?,
            None if shown => {
                eprintln!(
                    "host-daemon: input grant for viewer {}: {} (give it to the player only; moq-sub takes it as LANTERN_GRANT or --grant)",
                    grant.viewer, grant.credential
                );
                printed_grant = Some(grant.credential);
            }
            None => eprintln!(
                "host-daemon: input grant {} for viewer {} made but not printed (stderr is no terminal, and logs keep what it prints): use --grant-out FILE or --print-grant",
                grant.id, grant.viewer
            ),
        }
    }
    let (events, mut receive) = tokio::sync::mpsc::unbounded_channel();
    let (stats, sdp_to) = (print_stats, sdp_to.unwrap_or_default());
    // A person at a terminal gets a line a second by default; JSON only when asked for.
    let text = !stats && std::io::stderr().is_terminal();
    let stop = cancel.clone();
    let printer = tokio::spawn(async move {
        let mut failure = None;
        while let Some(event) = receive.recv().await {
            match event {
                Event::Publish(moq_pub::Event::Rtp { url, sdp }) => {
                    eprintln!("host-daemon: sending RTP to {url}");
                    // Receivers cannot play without it: stop.
                    if let Err(err) = sdp_to.write(&sdp) {
                        failure = Some(err);
                        stop.cancel();
                    }
                }
                Event::Started {
                    compositor,
                    app_pid,
                } => {
                    tracing::info!(compositor, app_pid, "session started")
                }
                Event::Publish(moq_pub::Event::Listening {
                    addr,
                    fingerprint,
                    page,
                }) => {
                    eprintln!(
                        "host-daemon: serving {name:?} on {addr} — watch with moq-sub --url http://{addr}/ --name {name} --tls-fingerprint {fingerprint}"
                    );
                    if let Some(page) = page {
                        let page = match &printed_grant {
                            Some(grant) => lantern_net::web::with_grant(&page, grant),
                            None => page,
                        };
                        eprintln!("host-daemon: play it in a browser at {page}");
                    }
                }
                Event::Stats {
                    capture,
                    video,
                    input,
                } if stats => {
                    eprintln!(
                        "{}",
                        json!({ "role": "host", "capture": capture, "video": video, "input": input })
                    )
                }
                Event::Stats {
                    capture,
                    video,
                    input,
                } if text => {
                    let players = match input {
                        Some(input) if input.viewers > 0 => format!(
                            " · input from {} viewers, {} granted",
                            input.viewers, input.authorized
                        ),
                        _ => String::new(),
                    };
                    eprintln!(
                        "host-daemon: {} · capture {:.1} ms{players}",
                        video.text(),
                        capture.latency_ms_p50
                    );
                }
                _ => {}
            }
        }
        failure
    });
    let outcome = session::run(config, cancel, events).await;
    if let Ok(Some(failure)) = printer.await {
        return Err(failure.into());
    }
    let outcome = outcome?;
    if stats {
        eprintln!(
            "{}",
            json!({ "role": "host", "final": true, "capture": outcome.capture, "video": outcome.summary.as_ref().map(|s| &s.video), "audio": outcome.summary.as_ref().and_then(|s| s.audio.as_ref()), "record": outcome.summary.as_ref().and_then(|s| s.record.as_ref()), "input": outcome.input })
        );
    }
    if let Ended::App { status, tail } = &outcome.ended
        && !status.success()
    {
        let tail = if tail.is_empty() {
            String::new()
        } else {
            format!(":\n{tail}")
        };
        eprintln!(
            "host-daemon: the app ended with {}{tail}",
            host_daemon::process::describe(*status)
        );
    }
    Ok(outcome.app_status())
}

/// `run`'s flags as the session spec `serve` takes (one builder for both; see `Spec`).
fn run_spec(args: RunArgs) -> Spec {
    let publish = args.publish;
    let (connect, video, rate, opus) = (publish.connect, publish.video, publish.rate, publish.opus);
    let url = (!connect.url.is_empty()).then(|| {
        let urls: Vec<_> = connect.url.iter().map(|url| url.to_string()).collect();
        urls.join(",")
    });
    Spec {
        width: Some(args.width),
        height: Some(args.height),
        fps: Some(args.fps),
        listen: publish.listen.listen,
        tls_cert: publish.listen.tls_cert,
        tls_key: publish.listen.tls_key,
        web: publish.listen.web,
        max_sessions: publish.listen.max_sessions,
        max_spectators: publish.listen.max_spectators,
        url,
        token: connect.token,
        tls_fingerprint: connect.tls_fingerprint,
        tls_root: connect.tls_root,
        trust_http_fingerprint: Some(connect.trust_http_fingerprint),
        tls_insecure: Some(connect.tls_insecure),
        websocket_fallback: Some(connect.websocket_fallback),
        moq_version: connect.moq_version,
        idle_timeout: connect.idle_timeout,
        give_up: connect.give_up,
        capture: Some(args.capture),
        compositor: Some(args.compositor),
        user: args.user,
        xwayland: Some(!args.no_xwayland),
        cursor: Some(args.cursor),
        audio: Some(!args.no_audio),
        audio_bitrate: Some(opus.bitrate_kbps),
        audio_frame_ms: Some(opus.frame_ms),
        bitrate: video.bitrate,
        codec: Some(video.codec),
        encoder: Some(video.encoder),
        vaapi_device: video.vaapi_device,
        gop: video.gop,
        preset: video.preset,
        tune: Some(video.tune),
        bitrate_mode: Some(rate.bitrate_mode),
        max_bitrate: rate.max_bitrate,
        min_bitrate: Some(rate.min_bitrate),
        stamp: Some(args.stamp),
        input: Some(args.input),
        timeout: Some(connect.timeout),
        rtp: publish.rtp,
        record: publish.record,
    }
}

async fn serve_sessions(
    args: ServeArgs,
    cancel: tokio_util::sync::CancellationToken,
) -> Result<(), host_daemon::Error> {
    let named = args.config.is_some();
    let path = args.config.unwrap_or_else(serve::default_config);
    let settings = serve::Settings::load(&path, named)?;
    let socket = match args.socket.or_else(|| settings.socket.clone()) {
        Some(socket) => socket,
        None => socket::default_path()?,
    };
    eprintln!(
        "host-daemon: serving the control API on {} — try host-daemon ctl --socket {} list",
        socket.display(),
        socket.display()
    );
    serve::serve(settings, &socket, cancel, args.stats).await
}

/// One control call; prints its answer. A refusal is a one-line error and exit status 1.
async fn ctl(args: CtlArgs) -> Result<ExitCode, host_daemon::Error> {
    let socket = match args.socket {
        Some(socket) => socket,
        None => socket::default_path()?,
    };
    // A create waits for the session to stream, a stop for it to end: generous, but bounded.
    let timeout = Duration::from_secs(120);
    let (method, path, body) = match &args.call {
        Call::Create {
            name,
            spec,
            app_env,
            app,
        } => (
            "POST",
            "/sessions".to_string(),
            Some(serde_json::to_value(serve::Create {
                name: name.clone(),
                app: app.clone(),
                env: app_env.iter().cloned().collect(),
                spec: (**spec).clone(),
                unknown: Default::default(),
            })),
        ),
        Call::Grant { name, viewer, ttl } => (
            "POST",
            format!("{}/grants", ctl::session_path(name)),
            Some(serde_json::to_value(serve::api::GrantRequest {
                viewer: viewer.clone(),
                ttl: *ttl,
            })),
        ),
        Call::Revoke {
            name,
            grant,
            viewer,
        } => {
            let session = ctl::session_path(name);
            let path = match (grant, viewer) {
                (Some(id), _) => format!("{session}/grants/{}", ctl::segment(id)),
                (None, Some(viewer)) => {
                    format!("{session}/viewers/{}/grants", ctl::segment(viewer))
                }
                (None, None) => unreachable!("clap requires --grant or --viewer"),
            };
            ("DELETE", path, None)
        }
        Call::List { .. } => ("GET", "/sessions".into(), None),
        Call::Stats { name } => ("GET", ctl::session_path(name), None),
        Call::Stop { name } => ("DELETE", ctl::session_path(name), None),
    };
    let body = body
        .transpose()
        .map_err(|err| host_daemon::Error::ControlCall {
            what: "the request".into(),
            source: err.into(),
        })?;
    let (status, answer) = socket::call(&socket, method, &path, body.as_ref(), timeout).await?;
    if !(200..300).contains(&status) {
        let refusal: Result<ctl::Refusal, _> = serde_json::from_value(answer);
        let error = refusal.map_or("(no reason given)".into(), |refusal| refusal.error);
        eprintln!("host-daemon ctl: {error} (HTTP {status})");
        return Ok(ExitCode::FAILURE);
    }
    // The answer as the call's type: one that is not is the daemon's fault, said so.
    fn read<T: serde::de::DeserializeOwned>(
        answer: &serde_json::Value,
        what: &str,
    ) -> Result<T, host_daemon::Error> {
        serde_json::from_value(answer.clone()).map_err(|err| host_daemon::Error::ControlCall {
            what: format!("an answer that is no {what}"),
            source: err.into(),
        })
    }
    match args.call {
        Call::List { json: false } => {
            let listed: ctl::Sessions = read(&answer, "list of sessions")?;
            print!("{}", ctl::table(&listed.sessions));
        }
        // The grant alone on stdout, for `LANTERN_GRANT=$(host-daemon ctl grant game)`.
        Call::Grant { name, .. } => {
            let serve::Granted { grant, page } = read(&answer, "grant")?;
            eprintln!(
                "host-daemon ctl: input grant {} for viewer {} of {name} — LANTERN_GRANT=… moq-sub --name {name}; revoke with host-daemon ctl revoke {name} --grant {}",
                grant.id, grant.viewer, grant.id
            );
            if let Some(page) = page {
                eprintln!("host-daemon ctl: or play in a browser at {page}");
            }
            println!("{}", grant.credential);
        }
        Call::Create { name, .. } => {
            let created: ctl::Listed = read(&answer, "session")?;
            if let Some(addr) = created.listening() {
                eprintln!(
                    "host-daemon ctl: {name} streams — watch with moq-sub --url http://{addr}/ --name {name}"
                );
            }
            println!(
                "{}",
                serde_json::to_string_pretty(&answer).unwrap_or_default()
            );
        }
        _ => println!(
            "{}",
            serde_json::to_string_pretty(&answer).unwrap_or_default()
        ),
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// The grant file is owner-only and holds the whole secret; a link planted where it goes
    /// is replaced, and the file it pointed to is left as it was.
    #[test]
    fn a_grant_file_is_written_whole_owner_only_and_never_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let (path, elsewhere) = (dir.path().join("grant"), dir.path().join("theirs"));
        std::fs::write(&elsewhere, "theirs\n").unwrap();
        std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
        write_private(&path, "TOKEN~SECRET").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "TOKEN~SECRET\n");
        assert_eq!(std::fs::read_to_string(&elsewhere).unwrap(), "theirs\n");
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.is_file());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        // Nothing is left beside it.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
        let refused = write_private(&dir.path().join("missing/grant"), "x").unwrap_err();
        assert!(refused.to_string().contains("missing/grant"), "{refused}");
    }
}
