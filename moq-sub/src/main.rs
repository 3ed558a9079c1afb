use clap::Parser;
use lantern_net::{ConnectArgs, cli};

/// Watch a live MoQ broadcast (hang format, H.264 video, Opus audio): decode it and write raw
/// frames as y4m and sound as WAV/PCM, to files or to stdout for a viewer, with live latency
/// and A/V sync statistics.
///
/// Ctrl-C or SIGTERM stops cleanly, closing the files (exit status 130 or 143).
///
/// Examples:
///   moq-sub --url http://127.0.0.1:4443/ --name lantern -o - | mpv -
///   moq-sub --url https://relay.example/anon --name cube --stats
///   moq-sub --url http://127.0.0.1:4443/anon --name cube --frames 600 -o cube.y4m
#[derive(Parser, Debug)]
#[command(version, verbatim_doc_comment)]
struct Args {
    /// Broadcast name (under the URL's path on a relay).
    #[arg(long, default_value = "lantern")]
    name: String,

    #[command(flatten)]
    connect: ConnectArgs,

    /// Write decoded frames as y4m to this file, or `-` for stdout.
    #[arg(short, long)]
    output: Option<String>,

    /// Stop after this many decoded frames.
    #[arg(long)]
    frames: Option<u64>,

    /// Where to start when joining mid-stream.
    #[arg(long, value_enum, default_value_t)]
    join: moq_sub::Join,

    /// Print one JSON line of statistics a second on stderr, and a closing one: fps, kbit/s,
    /// frames, drops, and latency: glass to glass (`g2g`, from the frame stamp drawn into
    /// test pictures), capture timestamp to shown (`pts_to_shown`, for any picture; it trusts
    /// the publisher's clock) and to arrival (`net`). `latency_from` says which one applies.
    #[arg(long)]
    stats: bool,

    /// Write one CSV line per shown frame to this file: frame number, capture time and shown
    /// time (µs since the UNIX epoch), for plotting latency over time.
    #[arg(long, value_name = "CSV")]
    latency_log: Option<std::path::PathBuf>,

    /// Play the broadcast's Opus audio: `pipewire` (the default sink) or `pipewire:TARGET` (a
    /// sink by name or serial), a WAV file, or `-` for raw PCM on stdout (16-bit little-endian,
    /// 48 kHz, interleaved). Missing audio is played as silence and counted in --stats.
    #[arg(long, value_name = "pipewire[:TARGET]|FILE.wav|-")]
    audio_out: Option<String>,

    /// Show each picture as soon as it is decoded, even when its sound comes later. By
    /// default, when sound is played (--audio-out), each picture waits until its sound is out
    /// (lip sync): audio frames and a sink's queue then add to the video latency.
    #[arg(long)]
    no_av_sync: bool,

    /// Send the timed input events in FILE to the host once the first picture shows (one
    /// step a line: `MS ACTION ARGS`, e.g. `0 tap KeyA`, `100 text hello\n`, `200 move 0.5
    /// 0.5`, `300 click left`, `400 wheel 0 120`, `500 pad 0 buttons=0x1`; see
    /// lantern_proto::input::script). With --stats, input-to-photon is reported when the
    /// app draws the input echo (the test app does).
    #[arg(long, value_name = "FILE")]
    input_script: Option<std::path::PathBuf>,

    /// The input grant the host gave (`host-daemon ctl grant`, or the one `host-daemon run`
    /// prints): without it the host counts this viewer's input and injects none of it.
    #[arg(
        long,
        env = "LANTERN_INPUT_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        requires = "input_script"
    )]
    input_token: Option<String>,

    /// This viewer's id when it has no grant (a grant names its own) [default: random].
    #[arg(long, value_name = "ID")]
    viewer: Option<String>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    cli::init_logging("error,moq_tokio=warn,moq_sub=info");
    let args = Args::parse();
    let shutdown = cli::Shutdown::install();
    let timeout = match args.connect.timeout() {
        Ok(timeout) => timeout,
        Err(err) => return cli::exit("moq-sub", Err::<(), _>(err), &shutdown),
    };
    let config = moq_sub::Config {
        connect: args.connect,
        name: args.name,
        output: args.output,
        frames: args.frames,
        stats: args.stats,
        join: args.join,
        latency_log: args.latency_log,
        av_sync: !args.no_av_sync && args.audio_out.is_some(),
        audio_out: args.audio_out,
        timeout,
        input: args.input_script.map(|script| moq_sub::input::InputConfig {
            token: args.input_token,
            viewer: args.viewer,
            script: Some(script),
        }),
    };
    let (events, mut lines) = tokio::sync::mpsc::unbounded_channel();
    let printer = tokio::spawn(async move {
        while let Some(line) = lines.recv().await {
            eprintln!("{line}");
        }
    });
    let result = moq_sub::run(config, shutdown.token(), events).await;
    let _ = printer.await;
    // The closing line comes however playing ended.
    let total = match &result {
        Ok(outcome) | Err((_, Some(outcome))) => Some(&outcome.total),
        Err((_, None)) => None,
    };
    if args.stats
        && let Some(total) = total
    {
        eprintln!("{total}");
    }
    cli::exit("moq-sub", result.map_err(|(err, _)| err), &shutdown)
}
