use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use host_daemon::compositor;
use host_daemon::session::{self, Ended, Event};
use lantern_net::{ConnectArgs, cli};
use moq_pub::Target;
use moq_pub::audio::AudioSettings;
use moq_pub::source::Format;
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
    Run(RunArgs),
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

    /// Serve viewers directly on this address (UDP for MoQ, TCP for the certificate
    /// fingerprint) instead of publishing to a relay.
    #[arg(long, conflicts_with = "url")]
    listen: Option<SocketAddr>,

    #[command(flatten)]
    connect: ConnectArgs,

    #[command(flatten)]
    h264: moq_pub::encode::H264Args,

    /// The compositor: sway (wlroots, headless; pixman without a GPU), or auto.
    #[arg(long, value_enum, default_value = "auto")]
    compositor: compositor::Kind,

    /// Run the compositor and app as this user. Only when host-daemon runs as root (wlroots
    /// refuses root, and apps should not have it); default `lantern`.
    #[arg(long)]
    user: Option<String>,

    /// Do not start XWayland (X11 apps then cannot run).
    #[arg(long)]
    no_xwayland: bool,

    /// No sound: no PipeWire for the session, no audio track.
    #[arg(long)]
    no_audio: bool,

    /// Opus frame length in ms: 2.5, 5, 10 or 20.
    #[arg(long, default_value_t = 10.0, value_name = "MS")]
    audio_frame_ms: f64,

    /// Opus bitrate in kbit/s (stereo).
    #[arg(long, default_value_t = 128, value_name = "KBPS")]
    audio_bitrate: u32,

    /// Extra environment for the app (repeatable). It gets nothing else of host-daemon's.
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    app_env: Vec<(String, String)>,

    /// Draw the frame stamp (for measuring glass-to-glass latency) into the app's pictures.
    #[arg(long)]
    stamp: bool,

    /// Print one JSON line of statistics a second on stderr (capture and encoder figures).
    #[arg(long)]
    stats: bool,

    /// The app and its arguments.
    #[arg(last = true, required = true, value_name = "APP")]
    app: Vec<String>,
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
    cli::init_logging("error,moq_tokio=warn,moq_pub=info,host_daemon=info");
    let Cli { command } = Cli::parse();
    let shutdown = cli::Shutdown::install();
    match command {
        Command::Run(args) => match run(args, shutdown.token()).await {
            // The app ended the session: its status is ours.
            Ok(Some(status)) if shutdown.signal().is_none() => ExitCode::from(status),
            result => cli::exit("host-daemon", result, &shutdown),
        },
    }
}

/// Run the session; `Some(status)` is the app's, to pass on.
async fn run(
    args: RunArgs,
    cancel: tokio_util::sync::CancellationToken,
) -> Result<Option<u8>, host_daemon::Error> {
    let audio = (!args.no_audio)
        .then(|| AudioSettings::new(args.audio_frame_ms, args.audio_bitrate))
        .transpose()?;
    let timeout = args.connect.timeout().map_err(moq_pub::Error::from)?;
    let config = session::Config {
        name: args.name.clone(),
        app: args.app,
        app_env: args.app_env,
        format: Format {
            width: args.width,
            height: args.height,
            fps: args.fps,
        },
        target: match args.listen {
            Some(addr) => Target::Listen(addr),
            None => Target::Relay(args.connect),
        },
        h264: args.h264,
        audio,
        user: args.user,
        compositor: args.compositor,
        xwayland: !args.no_xwayland,
        stamp: args.stamp,
        timeout: timeout.max(Duration::from_secs(10)),
    };
    let (events, mut receive) = tokio::sync::mpsc::unbounded_channel();
    let (stats, name) = (args.stats, args.name);
    let printer = tokio::spawn(async move {
        while let Some(event) = receive.recv().await {
            match event {
                Event::Started {
                    compositor,
                    app_pid,
                } => {
                    tracing::info!(compositor, app_pid, "session started")
                }
                Event::Publish(moq_pub::Event::Listening { addr, fingerprint }) => eprintln!(
                    "host-daemon: serving {name:?} on {addr} — watch with moq-sub --url http://{addr}/ --name {name} (fingerprint {fingerprint})"
                ),
                Event::Stats { capture, video } if stats => {
                    eprintln!(
                        "{}",
                        json!({ "role": "host", "capture": capture, "video": video })
                    )
                }
                _ => {}
            }
        }
    });
    let outcome = session::run(config, cancel, events).await;
    let _ = printer.await;
    let outcome = outcome?;
    if stats {
        eprintln!(
            "{}",
            json!({ "role": "host", "final": true, "capture": outcome.capture, "video": outcome.summary.as_ref().map(|s| &s.video), "audio": outcome.summary.as_ref().and_then(|s| s.audio.as_ref()) })
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
