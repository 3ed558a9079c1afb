use clap::Parser;
use lantern_cli as cli;
use moq_pub::{
    Event, Options, PublishArgs,
    audio::AudioSpec,
    source::{Format, SourceSpec, SyncEpoch},
};
use serde_json::json;
use std::io::IsTerminal;

/// Publish live video and sound over Media over QUIC: the rendered test cube or any y4m
/// stream, encoded to H.264 or AV1, with Opus audio from PipeWire or a test tone, sent as a hang
/// broadcast to a MoQ relay (--url) or straight to subscribers (--listen), and/or as plain
/// RTP with an SDP for players that do not speak MoQ (--rtp).
///
/// Ctrl-C or SIGTERM finishes the broadcast cleanly (exit status 130 or 143); a second one
/// exits at once.
///
/// Examples:
///   moq-pub --listen 127.0.0.1:4443 --name cube
///   moq-pub --url https://relay.example/anon --name cube --source testsrc --audio testsrc
///   moq-pub --url https://relay.example/anon --name game --audio pipewire:game-sink
///   moq-pub --rtp rtp://127.0.0.1:5004 --sdp cube.sdp    (then: ffplay -protocol_whitelist file,udp,rtp cube.sdp)
///   ffmpeg -i in.mp4 -f yuv4mpegpipe - | moq-pub --url http://127.0.0.1:4443/anon --name film --source y4m:-
#[derive(Parser, Debug)]
#[command(version, verbatim_doc_comment)]
struct Args {
    /// Broadcast name (under the URL's path on a relay).
    #[arg(long, default_value = "lantern")]
    name: String,

    /// What to send: `testsrc` (a rotating cube, stamped), or `y4m:PATH` / `y4m:-` (stdin).
    /// A pipe that delivers nothing for --timeout seconds is an error.
    #[arg(long, default_value = "testsrc")]
    source: SourceSpec,

    /// Draw the frame stamp (a strip of black and white blocks carrying the frame number and
    /// capture time, for measuring glass-to-glass latency) into the top rows of a y4m
    /// source's pictures. The test source always carries it; other pictures are left as they
    /// are unless asked, and viewers then time them from their timestamps.
    #[arg(long)]
    stamp: bool,

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
    publish: PublishArgs,

    /// Whose feedback an adaptive bitrate follows. `off`: nobody's; the connection's own
    /// estimate alone, which through a relay sees only the first hop. `open`: every viewer
    /// that sends it (moq-sub --feedback): moq-pub cannot tell players from spectators, so
    /// use it where every viewer is trusted (a host-daemon session follows its granted
    /// players only).
    #[arg(long, value_enum, default_value_t = FeedbackFrom::Off)]
    feedback: FeedbackFrom,

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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum FeedbackFrom {
    Off,
    Open,
}

// One thread for the network side: encoding runs on threads of its own, and a single
// runtime thread spares the cross-thread wake-ups of each frame handed to MoQ.
#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    // SAFETY: the first thing main does; a current-thread runtime has started no thread.
    unsafe { cli::quiet_svt_log() };
    cli::init_logging("moq_pub=info");
    let args = Args::parse();
    let shutdown = cli::Shutdown::install();
    if let Err(err) = cli::raise_fd_limit() {
        tracing::warn!(%err, "cannot raise the open-file limit: serving many viewers may run out");
    }
    let result = run(args, shutdown.token()).await;
    cli::exit("moq-pub", result, &shutdown)
}

async fn run(
    args: Args,
    cancel: tokio_util::sync::CancellationToken,
) -> Result<(), moq_pub::Error> {
    let audio_settings = args.publish.opus.settings()?;
    let timeout = args.publish.connect.timeout()?;
    let format = Format {
        width: args.width,
        height: args.height,
        fps: args.fps,
    };
    // The test sources' beep and flash are scheduled from this one instant.
    let epoch = SyncEpoch::now();
    let (spec, audio_spec, token) = (args.source.clone(), args.audio.clone(), cancel.clone());
    let (video, audio) = tokio::task::spawn_blocking(move || {
        let video = spec.open(format, epoch, token.clone(), timeout)?;
        let audio = audio_spec.open(audio_settings, epoch, AUDIO_START_TIMEOUT, token)?;
        Ok::<_, moq_pub::Error>((video, audio))
    })
    .await
    .map_err(|_| moq_pub::Error::Thread("source"))??;

    let (events, mut receive) = tokio::sync::mpsc::unbounded_channel();
    // A person at a terminal gets a line a second by default; JSON only when asked for.
    let text = !args.stats && std::io::stderr().is_terminal();
    let (stats, name, sdp_to) = (
        args.stats,
        args.name.clone(),
        args.publish.sdp.clone().unwrap_or_default(),
    );
    let stop = cancel.clone();
    let printer = tokio::spawn(async move {
        let mut failure = None;
        while let Some(event) = receive.recv().await {
            match event {
                Event::Rtp { url, sdp } => {
                    eprintln!("moq-pub: sending RTP to {url}");
                    // Receivers cannot play without it: stop.
                    if let Err(err) = sdp_to.write(&sdp) {
                        failure = Some(err);
                        stop.cancel();
                    }
                }
                Event::Listening {
                    addr,
                    fingerprint,
                    page,
                } => {
                    eprintln!(
                        "moq-pub: serving {name:?} on {addr} — subscribe with moq-sub --url http://{addr}/ --name {name} --tls-fingerprint {fingerprint}"
                    );
                    if let Some(page) = page {
                        eprintln!("moq-pub: play it in a browser at {page}");
                    }
                }
                Event::Video(video) if stats => eprintln!("{}", line("pub", &video, false)),
                Event::Video(video) if text => eprintln!("moq-pub: {}", video.text()),
                _ => {}
            }
        }
        failure
    });
    let (inbound, feedback) = match args.feedback {
        FeedbackFrom::Off => (None, None),
        FeedbackFrom::Open => {
            let inbound = moq_tokio::origin::spawn();
            let scoped = lantern_net::input::viewers_scope(&inbound, &args.name)?;
            let feedback = moq_pub::rate::Feedback::new();
            let reader = moq_pub::rate::read_everyone(
                inbound,
                args.name.clone(),
                feedback.clone(),
                cancel.clone(),
            );
            tokio::spawn(async move {
                if let Err(err) = reader.await {
                    tracing::warn!(err = %cli::chain(&err), "viewers' feedback cannot be read");
                }
            });
            (Some(moq_pub::Inbound(scoped)), Some(feedback))
        }
    };
    let publish = args.publish;
    let options = Options {
        name: args.name,
        target: publish.target(),
        video: publish.video,
        rate: publish.rate,
        feedback,
        frames: args.frames,
        stamp: args.stamp || args.source.is_test_content(),
        audio: audio_settings,
        inbound,
        players: None,
        rtp: publish.rtp,
        record: publish.record,
    };
    let summary = moq_pub::publish(options, video, audio, cancel, events).await;
    if let Ok(Some(failure)) = printer.await {
        return Err(failure);
    }
    let summary = summary?;
    if args.stats {
        eprintln!("{}", line("pub", &summary.video, true));
        if let Some(audio) = &summary.audio {
            eprintln!("{}", line("pub-audio", audio, true));
        }
        if let Some(record) = &summary.record {
            eprintln!("{}", line("pub-record", record, true));
        }
    }
    Ok(())
}

/// How long an audio source may take to deliver its first sound.
const AUDIO_START_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// One `--stats` JSON line: the role, whether it is the closing one, and the figures.
fn line(role: &str, figures: &impl serde::Serialize, closing: bool) -> serde_json::Value {
    let mut line = json!({ "role": role });
    if closing {
        line["final"] = json!(true);
    }
    if let (Some(line), Ok(serde_json::Value::Object(figures))) =
        (line.as_object_mut(), serde_json::to_value(figures))
    {
        line.extend(figures);
    }
    line
}
