use std::net::SocketAddr;

use clap::Parser;
use moq_pub::{
    Config, Target,
    audio::{AudioSettings, AudioSpec},
    encode::H264Args,
    net::ConnectArgs,
    source::{Format, SourceSpec},
};

/// Publish live video and sound over Media over QUIC: the rendered test cube or any y4m
/// stream, encoded to H.264, with Opus audio from PipeWire or a test tone, sent as a hang
/// broadcast to a MoQ relay (--url) or straight to subscribers (--listen).
///
/// Examples:
///   moq-pub --listen 127.0.0.1:4443 --name cube
///   moq-pub --url https://relay.example/anon --name cube --source testsrc --audio testsrc
///   moq-pub --url https://relay.example/anon --name game --audio pipewire:game-sink
///   ffmpeg -i in.mp4 -f yuv4mpegpipe - | moq-pub --url http://127.0.0.1:4443/anon --name film --source y4m:-
#[derive(Parser, Debug)]
#[command(version, verbatim_doc_comment)]
struct Args {
    /// Broadcast name (under the URL's path on a relay).
    #[arg(long, default_value = "lantern")]
    name: String,

    /// What to send: `testsrc` (a rotating cube, stamped), or `y4m:PATH` / `y4m:-` (stdin).
    #[arg(long, default_value = "testsrc")]
    source: SourceSpec,

    /// Test source width.
    #[arg(long, default_value_t = 1280)]
    width: u32,

    /// Test source height.
    #[arg(long, default_value_t = 720)]
    height: u32,

    /// Test source frame rate.
    #[arg(long, default_value_t = 60.0)]
    fps: f64,

    #[command(flatten)]
    h264: H264Args,

    /// Serve subscribers directly on this address (UDP for MoQ, TCP for the certificate
    /// fingerprint at /certificate.sha256) instead of publishing to a relay.
    #[arg(long, conflicts_with = "url")]
    listen: Option<SocketAddr>,

    #[command(flatten)]
    connect: ConnectArgs,

    /// Stop after this many frames.
    #[arg(long)]
    frames: Option<u64>,

    /// Print one JSON line of statistics a second on stderr.
    #[arg(long)]
    stats: bool,

    /// Sound to send: `testsrc` (a 1 kHz beep once per cube rotation, with the cube's flash,
    /// for measuring A/V sync), `pipewire` (the default sink's monitor: what the host plays),
    /// `pipewire:TARGET` (a node or sink by name or serial), or `none`. By default PipeWire's
    /// default sink monitor if a PipeWire daemon answers, else none (with a warning).
    #[arg(long, default_value = "auto", hide_default_value = true)]
    audio: AudioSpec,

    /// Opus frame length in ms: 2.5, 5, 10 or 20. Shorter is lower latency, longer is
    /// cheaper and better per bit.
    #[arg(long, default_value_t = 10.0, value_name = "MS")]
    audio_frame_ms: f64,

    /// Opus bitrate in kbit/s (stereo).
    #[arg(long, default_value_t = 128, value_name = "KBPS")]
    audio_bitrate: u32,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    moq_pub::cli::init_logging("error,moq_tokio=warn,moq_pub=info");
    let args = Args::parse();
    let audio_settings = match AudioSettings::new(args.audio_frame_ms, args.audio_bitrate) {
        Ok(settings) => settings,
        Err(err) => return moq_pub::cli::exit("moq-pub", Err::<(), _>(err)),
    };
    let target = match args.listen {
        Some(addr) => Target::Listen(addr),
        None => Target::Relay(args.connect),
    };
    let config = Config {
        source: args.source,
        format: Format {
            width: args.width,
            height: args.height,
            fps: args.fps,
        },
        h264: args.h264,
        name: args.name,
        target,
        frames: args.frames,
        stats: args.stats,
        audio: args.audio,
        audio_settings,
    };
    moq_pub::cli::exit("moq-pub", moq_pub::run(config).await)
}
