use clap::Parser;
use lantern_cli as cli;
use lantern_net::ConnectArgs;
use lantern_net::grant::Credential;
use std::io::IsTerminal;

/// Watch and play a live MoQ broadcast (hang format, H.264 video, Opus audio): in a window
/// that sends the player's keys, mouse and gamepads back to the host, or as raw y4m frames
/// and WAV/PCM sound to files or to stdout for another viewer, with live latency and A/V sync
/// statistics.
///
/// The window opens when there is a display (DISPLAY or WAYLAND_DISPLAY) and no -o. In it:
///   Ctrl+Alt+Shift+X  fullscreen           Ctrl+Alt+Shift+S  stats overlay
///   Ctrl+Alt+Shift+M  mouse mode: direct (the pointer over the picture) or captured (a
///                     click grabs the pointer, motion goes as relative movement)
///   Ctrl+Alt+Shift+Z  let the captured pointer go
///   Ctrl+Alt+Shift+Q  quit (as does closing the window)
/// Input goes to the host only with a grant (--grant); without one the window is
/// view-only. Everything held is released when the window loses focus.
///
/// Ctrl-C or SIGTERM stops cleanly, closing the files (exit status 130 or 143).
///
/// Examples:
///   moq-sub --url https://relay.example/anon --name game --grant "$GRANT"
///   moq-sub --url http://127.0.0.1:4443/ --name lantern -o - | mpv -
///   moq-sub --url https://relay.example/anon --name cube --stats --no-window
///   moq-sub --url http://127.0.0.1:4443/anon --name cube --frames 600 -o cube.y4m
///   moq-sub --sdp cube.sdp --stats          (the RTP copy of moq-pub --rtp)
#[derive(Parser, Debug)]
#[command(version, verbatim_doc_comment)]
struct Args {
    /// Broadcast name (under the URL's path on a relay).
    #[arg(long, default_value = "lantern")]
    name: String,

    #[command(flatten)]
    connect: ConnectArgs,

    /// Play the plain RTP session this SDP file describes (H.264 video, Opus sound: what
    /// `moq-pub --rtp … --sdp FILE` writes) instead of a MoQ broadcast; same outputs, window
    /// and stats, so the two transports can be compared on one stream. No input goes back.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["input_script", "grant"])]
    sdp: Option<std::path::PathBuf>,

    /// Write decoded frames as y4m to this file, or `-` for stdout (no window then, unless
    /// --window).
    #[arg(short, long)]
    output: Option<String>,

    /// Record what arrives into this MP4 file as it plays: the broadcast's video (H.264 or
    /// AV1) and Opus sound as they were sent, never re-encoded, in fragmented MP4 (a fragment
    /// at least every 200 ms), so the file plays while it grows and survives a kill. A
    /// broadcast that comes back after an outage is recorded on into the same file; one
    /// that restarted goes on in FILE.2.mp4, …
    #[arg(long, value_name = "FILE.mp4", conflicts_with = "sdp")]
    record: Option<std::path::PathBuf>,

    /// Open the window even with -o (both get the pictures).
    #[arg(long, conflicts_with = "no_window")]
    window: bool,

    /// No window, even with a display: measure only (--stats), or write -o.
    #[arg(long)]
    no_window: bool,

    /// Start the window fullscreen (Ctrl+Alt+Shift+X toggles).
    #[arg(long)]
    fullscreen: bool,

    /// Wait for the display's refresh before presenting each picture: no tearing, but up to
    /// a refresh of added delay. Off by default: a picture is presented as soon as it is
    /// decoded.
    #[arg(long)]
    vsync: bool,

    /// Show the stats overlay from the start (Ctrl+Alt+Shift+S toggles): fps, bitrate, drops,
    /// glass-to-glass (or timestamp) latency, decode and present time, RTT, input-to-photon.
    #[arg(long)]
    overlay: bool,

    /// How the window draws: `auto` takes the GPU when the host has one (a render node under
    /// /dev/dri) and SDL's software renderer otherwise, which is then the quicker.
    #[arg(long, value_enum, default_value_t)]
    renderer: moq_sub::window::Renderer,

    /// Start in captured mouse mode: a click grabs the pointer and motion is sent as relative
    /// movement (games' mouse look); Ctrl+Alt+Shift+Z lets go (Ctrl+Alt+Shift+M toggles the
    /// mode).
    #[arg(long)]
    relative_mouse: bool,

    /// Stop after this many decoded frames (with --input-script, once its last step is sent
    /// too: the picture stops at N frames, the input goes on).
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

    /// Print the statistics as a person reads them instead: a few short lines a second (what
    /// the window's overlay shows) and a summary of the whole run at the end. The default
    /// when stderr is a terminal.
    #[arg(long, conflicts_with = "stats")]
    stats_text: bool,

    /// Write one CSV line per shown frame to this file: frame number, capture time and shown
    /// time (µs since the UNIX epoch), for plotting latency over time.
    #[arg(long, value_name = "CSV")]
    latency_log: Option<std::path::PathBuf>,

    /// Play the broadcast's Opus audio: `pipewire` (the default sink) or `pipewire:TARGET` (a
    /// sink by name or serial), `sdl` (SDL's default output: PulseAudio, ALSA, …), `auto`
    /// (PipeWire if its daemon answers, else SDL; the window's default), a WAV file, or `-`
    /// for raw PCM on stdout (16-bit little-endian, 48 kHz, interleaved), or `none`. Without a
    /// window the default is none. Missing audio is played as silence and counted in --stats.
    #[arg(long, value_name = "auto|pipewire[:TARGET]|sdl|FILE.wav|-|none")]
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

    /// The input grant the host gave, TOKEN~SECRET (`host-daemon ctl grant`, or the one
    /// `host-daemon run` prints): the window sends the player's input sealed with its secret,
    /// which never goes on the wire (and a script's, with or without it: the host counts
    /// ungranted input and injects none of it). A direct server is shown its token (never
    /// the secret) when dialed, so it never holds a player back with its spectators. Prefer
    /// the environment variable to the flag: a command line is visible to every user of the
    /// machine.
    #[arg(
        long,
        alias = "input-token",
        env = "LANTERN_GRANT",
        hide_env_values = true,
        value_name = "GRANT"
    )]
    grant: Option<String>,

    /// This viewer's id when it has no grant (a grant names its own) [default: random].
    #[arg(long, value_name = "ID")]
    viewer: Option<String>,

    /// The largest picture taken from the publisher, WIDTHxHEIGHT: a stream declaring larger
    /// ones (in its catalog or its parameter sets) is refused before anything is decoded.
    #[arg(long, value_name = "WxH", default_value = "4096x2304", value_parser = parse_size)]
    max_size: (u32, u32),

    /// The fastest stream taken from the publisher, kbit/s (over a few seconds; one frame
    /// may hold a second's worth): a faster one is refused.
    #[arg(long, value_name = "KBPS", default_value_t = 100_000,
        value_parser = clap::value_parser!(u64).range(100..))]
    max_kbps: u64,

    /// Report this viewer's path (delay, skipped frames, keyframe requests) to the publisher
    /// even without input, for a publisher that takes every viewer's (moq-pub --feedback
    /// open). A player sending input always reports; a host follows its granted players':
    /// with --grant and no window, this sends the reports sealed with the grant (a player
    /// watching through a pipe or a recording still gets a stream that fits its path).
    #[arg(long, conflicts_with = "sdp")]
    feedback: bool,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    cli::init_logging("moq_sub=info");
    let args = Args::parse();
    let shutdown = cli::Shutdown::install();
    let timeout = match args.connect.timeout() {
        Ok(timeout) => timeout,
        Err(err) => return cli::exit("moq-sub", Err::<(), _>(err), &shutdown),
    };
    let display = moq_sub::window::display_available();
    let window =
        (args.window || (display && args.output.is_none() && !args.no_window)).then(|| {
            moq_sub::window::WindowConfig {
                title: match &args.sdp {
                    Some(sdp) => format!("{} — Lantern (RTP)", sdp.display()),
                    None => format!("{} — Lantern", args.name),
                },
                fullscreen: args.fullscreen,
                vsync: args.vsync,
                overlay: args.overlay,
                relative_mouse: args.relative_mouse,
                renderer: args.renderer,
            }
        });
    if window.is_none() && args.input_script.is_none() && args.grant.is_some() && !args.feedback {
        tracing::warn!(
            "--grant without a window, --input-script or --feedback: nothing is sent back (at \
             a direct server the grant still holds a player's place)"
        );
    }
    // Read here, never echoed: a clap error would print the secret with it.
    let credential = match args.grant.as_deref().map(Credential::parse).transpose() {
        Ok(credential) => credential,
        Err(err) => return cli::exit("moq-sub", Err::<(), _>(err), &shutdown),
    };
    // A window plays the sound too, unless told otherwise.
    let audio_out = match args.audio_out.as_deref() {
        Some("none") => None,
        None if window.is_some() => Some("auto".to_string()),
        _ => args.audio_out.clone(),
    };
    // A person at a terminal gets the text lines by default; JSON only when asked for.
    let text = args.stats_text || (!args.stats && std::io::stderr().is_terminal());
    let mut connect = args.connect;
    // A holder of a grant presents its token to a direct server, which then never holds it
    // back with the spectators, whether it sends input or not.
    connect.grant = credential.as_ref().map(|c| c.token.clone());
    let config = moq_sub::Config {
        connect,
        // What errors and logs call the stream: the SDP file, when it is one.
        name: match &args.sdp {
            Some(sdp) => sdp.display().to_string(),
            None => args.name,
        },
        output: args.output,
        frames: args.frames,
        stats: args.stats || text,
        join: args.join,
        latency_log: args.latency_log,
        av_sync: !args.no_av_sync && audio_out.is_some(),
        audio_out,
        timeout,
        input: (args.input_script.is_some()
            || (credential.is_some() && (window.is_some() || args.feedback)))
            .then_some(moq_sub::input::InputConfig {
                credential,
                viewer: args.viewer,
                script: args.input_script,
            }),
        window,
        sdp: args.sdp,
        feedback: args.feedback,
        limits: moq_sub::decode::Limits {
            max_width: args.max_size.0,
            max_height: args.max_size.1,
            max_kbps: args.max_kbps,
        },
        record: args.record,
    };
    let (events, mut lines) = moq_sub::events();
    let printer = tokio::spawn(async move {
        while let Some(line) = lines.recv().await {
            match text {
                true => eprintln!(
                    "moq-sub: {}",
                    moq_sub::stats::text::second(&line).join(" | ")
                ),
                false => eprintln!("{line}"),
            }
        }
    });
    let result = moq_sub::run(config, shutdown.token(), events).await;
    let _ = printer.await;
    // The closing line comes however playing ended.
    let total = match &result {
        Ok(outcome) => Some(&outcome.total),
        Err(failed) => failed.outcome.as_ref().map(|outcome| &outcome.total),
    };
    match total {
        Some(total) if args.stats => eprintln!("{total}"),
        Some(total) if text => {
            for line in moq_sub::stats::text::summary(total) {
                eprintln!("moq-sub: {line}");
            }
        }
        _ => {}
    }
    if moq_sub::window::display_lost() {
        // Xlib's exit handlers would wait forever on the lost display's lock (its thread is
        // parked in the error handler): leave without them, everything written.
        use std::io::Write;
        let _ = std::io::stdout().flush();
        let code = match &result {
            Ok(_) => 0,
            Err(failed) => {
                eprintln!("moq-sub: {}", cli::chain(&failed.error));
                1
            }
        };
        // SAFETY: _exit ends the process at once; nothing runs after it.
        unsafe { libc::_exit(code) };
    }
    cli::exit("moq-sub", result.map_err(|failed| failed.error), &shutdown)
}

/// `WIDTHxHEIGHT`, each 16 to 16384.
fn parse_size(text: &str) -> Result<(u32, u32), String> {
    let size = text
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)));
    match size {
        Some((w, h)) if (16..=16384).contains(&w) && (16..=16384).contains(&h) => Ok((w, h)),
        _ => Err("give WIDTHxHEIGHT, each 16 to 16384 (e.g. 3840x2160)".into()),
    }
}
