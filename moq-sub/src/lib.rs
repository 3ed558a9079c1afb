//! moq-sub: subscribe to a hang broadcast over MoQ, decode its H.264 video and Opus sound, and
//! hand them to a viewer (a y4m file or pipe, a WAV file, PipeWire), measuring latency.
//!
//! [`run`] dials a relay (or a `--listen` server) and plays; [`watch`] plays a broadcast from
//! an origin that something else feeds (a connection, or an in-process publisher). Both take
//! a cancellation token and report through an events channel; the library prints nothing.

pub mod audio;
pub mod decode;
mod error;
mod feed;
mod feedback;
pub mod input;
pub mod output;
mod playback;
pub mod rtp;
mod sdl_audio;
pub mod stats;
mod subscribe;
pub mod window;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, UNIX_EPOCH};

use lantern_net::ConnectArgs;
use lantern_proto::stamp::{Echo, Stamp};
use lantern_proto::timing::{Admit, Joiner};
use lantern_proto::{clock, sync};
use tokio_util::sync::CancellationToken;

pub use error::Error;
pub use feed::{Encoded, Feed};
pub use subscribe::{Audio, Choice, Join, Video, choose};

/// Where a run reports as it goes: one stats line (JSON) a second, when asked for.
pub type Events = tokio::sync::mpsc::UnboundedSender<serde_json::Value>;

/// Everything a subscribing run needs.
#[derive(Clone, Debug)]
pub struct Config {
    pub connect: ConnectArgs,
    pub name: String,
    /// Where decoded frames go: a y4m path, `-` for stdout, or nowhere.
    pub output: Option<String>,
    /// Stop after this many decoded frames.
    pub frames: Option<u64>,
    /// Send a stats line every second.
    pub stats: bool,
    pub join: Join,
    /// Write one CSV line per shown frame (frame, capture time, shown time) here.
    pub latency_log: Option<std::path::PathBuf>,
    /// Where decoded sound goes: a WAV path, `-` for raw PCM on stdout, or nowhere.
    pub audio_out: Option<String>,
    /// Hold each picture until its sound is out (lip sync), when there is sound.
    pub av_sync: bool,
    /// How long to wait for the broadcast, and for each next frame.
    pub timeout: Duration,
    /// Report this viewer's path to the publisher (delay, skipped frames, keyframe requests)
    /// even when it sends no input; a player (with input) always reports.
    pub feedback: bool,
    /// Send input to the host: from `--input-script`, else from the window (with the grant).
    pub input: Option<input::InputConfig>,
    /// Show the stream in a window (and take the player's input there).
    pub window: Option<window::WindowConfig>,
    /// Play the RTP session this SDP describes instead of a MoQ broadcast.
    pub sdp: Option<std::path::PathBuf>,
    /// What this viewer takes from the publisher (picture size, rate), checked before
    /// decoding.
    pub limits: decode::Limits,
    /// Record what arrives, without re-encoding, into this fragmented MP4 file.
    pub record: Option<std::path::PathBuf>,
}

/// What a run did: the counts, and the closing stats line (also when playing failed).
#[derive(Clone, Debug)]
pub struct Outcome {
    pub summary: stats::Summary,
    pub total: serde_json::Value,
}

impl Outcome {
    /// A run stopped before anything played.
    fn empty() -> Self {
        let stats = stats::Stats::default();
        Self {
            summary: stats.summary.clone(),
            total: stats.total(),
        }
    }
}

/// Dial (or, with an SDP, open the RTP session), then play until the stream ends, `frames`
/// are decoded, the stream stalls, or `cancel` fires (a stop, even before anything played, is
/// not an error).
pub async fn run(
    config: Config,
    cancel: CancellationToken,
    events: Events,
) -> Result<Outcome, (Error, Option<Outcome>)> {
    if config.output.as_deref() == Some("-") && config.audio_out.as_deref() == Some("-") {
        let err = Error::Config("-o - and --audio-out - cannot both use stdout".into());
        return Err((err, None));
    }
    if config.sdp.is_some() && config.input.is_some() {
        let err = Error::Config("input goes back over MoQ only: not with --sdp".into());
        return Err((err, None));
    }
    if config.sdp.is_some() && config.record.is_some() {
        let err = Error::Config("--record records MoQ broadcasts only: not with --sdp".into());
        return Err((err, None));
    }
    let script = match config.input.as_ref().map(input::InputConfig::read_script) {
        Some(Err(err)) => return Err((err, None)),
        Some(Ok(script)) => script,
        None => None,
    };
    // What this viewer publishes: its input broadcast.
    let mine = moq_tokio::origin::spawn();
    // Closing the window ends the run as a stop does.
    let cancel = cancel.child_token();
    let mut hooks = Hooks::default();
    // A file that cannot be written is refused before anything plays.
    if let Some(path) = &config.record {
        let recorder = lantern_net::record::Recorder::create(path).await;
        hooks.recorder = Some(recorder.map_err(|e| (e.into(), None))?);
    }
    let channel = match &config.input {
        Some(settings) => {
            let photon = input::Photon::default();
            hooks.photon = Some(photon.clone());
            Some(
                input::InputChannel::open(&mine, &config.name, settings, photon)
                    .map_err(|e| (e, None))?,
            )
        }
        None => None,
    };
    // A player reports its path on its input broadcast; a spectator asked to report
    // publishes one of its own, with no grant and no input.
    let spectator = match (&channel, config.feedback && config.sdp.is_none()) {
        (None, true) => {
            let viewer = lantern_net::grant::random_viewer_id();
            let publisher =
                lantern_net::input::InputPublisher::new(&mine, &config.name, &viewer, None)
                    .map_err(|e| (e.into(), None))?;
            Some(publisher)
        }
        _ => None,
    };
    hooks.feedback = channel
        .as_ref()
        .map(input::InputChannel::feedback)
        .or_else(|| spectator.as_ref().map(|p| p.feedback()));
    // A script drives the input when there is one; otherwise the player, in the window.
    let (script_channel, window_channel) = match script {
        Some(_) => (channel, None),
        None => (None, channel),
    };
    // The window opens before dialing: no display is an error worth knowing at once.
    let window = match &config.window {
        Some(settings) => {
            // Opening waits for the window's thread: not on the runtime's own threads.
            let (settings, photon, closed) =
                (settings.clone(), hooks.photon.clone(), cancel.clone());
            let window = tokio::task::spawn_blocking(move || {
                window::Window::open(settings, window_channel, photon, closed)
            })
            .await
            .unwrap_or(Err(Error::Thread("window")))
            .map_err(|e| (e, None))?;
            hooks.window = Some(window.handle());
            Some(window)
        }
        None => None,
    };
    let mut result = match &config.sdp {
        Some(sdp) => play_rtp(sdp, &config, cancel, events, hooks).await,
        None => {
            let input = script.zip(script_channel);
            play_moq(&config, mine, input, cancel, events, hooks).await
        }
    };
    if let Some(window) = window
        && let (Err(err), Ok(outcome)) = (window.close(), &result)
    {
        result = Err((err, Some(outcome.clone())));
    }
    result
}

/// Dial the relay (or server), send the script's input if there is one, and play.
async fn play_moq(
    config: &Config,
    mine: moq_net::origin::Producer,
    script: Option<(Vec<lantern_proto::input::script::Step>, input::InputChannel)>,
    cancel: CancellationToken,
    events: Events,
    mut hooks: Hooks,
) -> Result<Outcome, (Error, Option<Outcome>)> {
    let origin = moq_tokio::origin::spawn();
    // A window waits for its stream as long as the player does; a pipe or a file gives up
    // after a while, so a script is not stuck forever.
    let pipe_give_up = config.window.is_none().then_some(PIPE_GIVE_UP);
    let give_up = config
        .connect
        .give_up(pipe_give_up)
        .map_err(|e| (e.into(), None))?;
    let dial = async {
        let (client, relays) = config.connect.client(give_up)?;
        let client = client.with_subscriber(origin.clone());
        let client = match config.input.is_some() || hooks.feedback.is_some() {
            true => client.with_publisher(mine.consume()),
            false => client,
        };
        let dialing = client.connect(relays.addrs());
        let connection = lantern_net::established(dialing, &relays, config.timeout).await?;
        Ok::<_, Error>((connection, relays))
    };
    let (connection, url) = tokio::select! {
        connection = dial => connection.map_err(|e| (e, None))?,
        () = cancel.cancelled() => return Ok(Outcome::empty()),
    };
    let stop = cancel.child_token();
    tokio::spawn(sample_rtt(
        connection.monitor(),
        hooks.rtt.clone(),
        stop.clone(),
    ));
    if let Some(sender) = hooks.feedback.take() {
        tokio::spawn(feedback::send(
            hooks.path.clone(),
            sender,
            connection.recv_bandwidth(),
            stop.clone(),
        ));
    }
    let sender = script.map(|(steps, channel)| {
        tokio::spawn(input::play_script(
            channel,
            steps,
            hooks.shown.clone(),
            stop.clone(),
            config.timeout,
        ))
    });
    let reopen = subscribe::Resubscribe::new(origin.clone(), &config.name, give_up);
    // A relay that refuses this client's credentials says so once connected (moq-relay checks
    // a token at the session's set-up): that is the answer, not a broadcast never found.
    let watch_stop = cancel.child_token();
    let watching = watch_with(
        &origin,
        config,
        watch_stop.clone(),
        events,
        hooks,
        Some(reopen),
    );
    tokio::pin!(watching);
    let mut result = tokio::select! {
        result = &mut watching => result,
        refused = lantern_net::refused(&connection, &url) => {
            watch_stop.cancel();
            let outcome = match watching.await {
                Ok(outcome) | Err((_, Some(outcome))) => Some(outcome),
                Err((_, None)) => None,
            };
            Err((refused.into(), outcome))
        }
    };
    stop.cancel();
    if let Some(sender) = sender {
        let sent = sender.await.unwrap_or(Err(Error::Thread("input sender")));
        if let (Err(err), Ok(outcome)) = (sent, &result) {
            result = Err((err, Some(outcome.clone())));
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), connection.close()).await;
    result
}

/// Receive the RTP session `sdp` describes, and play it.
async fn play_rtp(
    sdp: &std::path::Path,
    config: &Config,
    cancel: CancellationToken,
    events: Events,
    hooks: Hooks,
) -> Result<Outcome, (Error, Option<Outcome>)> {
    let stop = cancel.child_token();
    let (video, audio, receiver) = rtp::open(sdp, true, stop.clone()).map_err(|e| (e, None))?;
    let result = play_media(video, audio, config, cancel, events, hooks, None).await;
    stop.cancel();
    let dropped = receiver.dropped.clone();
    let joined = tokio::task::spawn_blocking(move || receiver.join()).await;
    let dropped = dropped.load(Ordering::Relaxed);
    if dropped > 0 {
        tracing::warn!(dropped, "RTP units dropped: the players fell behind");
    }
    match (joined.unwrap_or(Err(Error::Thread("RTP receiver"))), result) {
        (Err(err), Ok(outcome)) => Err((err, Some(outcome))),
        (_, result) => result,
    }
}

/// Keep `rtt` (µs) at the connection's smoothed round-trip time, for the stats lines.
async fn sample_rtt(
    connection: moq_tokio::connection::Monitor,
    rtt: Arc<AtomicU64>,
    stop: CancellationToken,
) {
    let mut every = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = stop.cancelled() => return,
        }
        if let Some(us) = connection.stats().and_then(|s| s.rtt) {
            rtt.store(us.as_micros().max(1) as u64, Ordering::Relaxed);
        }
    }
}

/// What a run's input side wants from the player: pictures' echoes (input-to-photon), and
/// word of the first picture shown.
#[derive(Default)]
struct Hooks {
    photon: Option<input::Photon>,
    shown: CancellationToken,
    /// The window pictures go to (and where input-to-photon is then measured).
    window: Option<window::Handle>,
    /// The connection's round-trip time, µs (0 until known).
    rtt: Arc<AtomicU64>,
    /// Where this viewer's feedback goes, when it sends any, and what it measures.
    feedback: Option<lantern_net::input::FeedbackSender>,
    path: feedback::Path,
    /// Where `--record` writes, until the broadcast is found; then what it has written.
    recorder: Option<lantern_net::record::Recorder>,
    record: Option<Arc<lantern_net::record::Progress>>,
}

/// Play broadcast `config.name` from `origin`.
pub async fn watch(
    origin: &moq_net::origin::Producer,
    config: &Config,
    cancel: CancellationToken,
    events: Events,
) -> Result<Outcome, (Error, Option<Outcome>)> {
    watch_with(origin, config, cancel, events, Hooks::default(), None).await
}

/// Play broadcast `config.name` from `origin`; with `reopen`, a stream that goes away is
/// waited for and played again.
async fn watch_with(
    origin: &moq_net::origin::Producer,
    config: &Config,
    cancel: CancellationToken,
    events: Events,
    mut hooks: Hooks,
    reopen: Option<subscribe::Resubscribe>,
) -> Result<Outcome, (Error, Option<Outcome>)> {
    let timeout = config.timeout;
    let opened = tokio::select! {
        opened = tokio::time::timeout(timeout, subscribe::open(origin, &config.name, true)) => opened,
        () = cancel.cancelled() => return Ok(Outcome::empty()),
    };
    let (video, audio) = opened
        .map_err(|_| {
            // A relay with auth hides what a token may not subscribe to.
            let why = match config.connect.token {
                Some(_) => {
                    format!("not found within {timeout:?} (or --token may not subscribe to it)")
                }
                None => format!("not found within {timeout:?}"),
            };
            (Error::broadcast(&config.name, why, None), None)
        })?
        .map_err(|e| (e, None))?;
    let recording = hooks.recorder.take().map(|recorder| {
        let selection = lantern_net::record::Selection {
            video: Some(video.track.clone()),
            audio: audio.as_ref().map(|a| a.track.clone()),
        };
        recorder.start(origin.consume(), config.name.clone(), selection)
    });
    hooks.record = recording
        .as_ref()
        .map(lantern_net::record::Recording::progress);
    let played = play_media(video, audio, config, cancel, events, hooks, reopen).await;
    let recorded = match recording {
        Some(recording) => recording.stop().await.map(drop).map_err(Error::from),
        None => Ok(()),
    };
    match (played, recorded) {
        (Ok(outcome), Err(err)) => Err((err, Some(outcome))),
        (played, _) => played,
    }
}

/// Play `video` and, beside it, `audio`, until either ends or `cancel` fires; with
/// `reopen`, each player waits for its track to come back when it goes away.
async fn play_media(
    video: Video,
    audio: Option<subscribe::Audio>,
    config: &Config,
    cancel: CancellationToken,
    events: Events,
    hooks: Hooks,
    reopen: Option<subscribe::Resubscribe>,
) -> Result<Outcome, (Error, Option<Outcome>)> {
    let timeout = config.timeout;
    tracing::info!(
        name = config.name,
        track = video.track,
        codec = video.codec,
        audio = audio.as_ref().map(|a| a.track.as_str()),
        "playing"
    );

    let handle = tokio::runtime::Handle::current();
    let mut stats = stats::Stats::default();
    stats.codec = Some(video.codec.clone());
    stats.photon = hooks.photon;
    stats.rtt = Some(hooks.rtt);
    stats.record = hooks.record;
    let path = hooks.path;
    stats.window = hooks.window.as_ref().map(window::Handle::stats);
    let first_shown = hooks.shown;
    let window = hooks.window;
    // The players stop together: a stop from outside, or either one ending.
    let stop = cancel.child_token();
    let audio = match audio {
        Some(audio) => {
            let out = audio::AudioOut::open(config.audio_out.as_deref(), audio.channels as u16)
                .map_err(|e| (e, None))?;
            let shared = Arc::new(Mutex::new(stats::AudioStats::default()));
            stats.audio = Some(shared.clone());
            let (handle, stop, reopen) = (handle.clone(), stop.clone(), reopen.clone());
            Some(tokio::task::spawn_blocking(move || {
                audio::play(handle, audio, out, shared, stop, timeout, reopen)
            }))
        }
        None => {
            if config.audio_out.is_some() {
                tracing::warn!("the broadcast has no Opus audio: --audio-out stays empty");
            }
            None
        }
    };
    let player = {
        let (config, stop) = (config.clone(), stop.clone());
        tokio::task::spawn_blocking(move || {
            let played = play(
                handle,
                video,
                &config,
                &stop,
                &events,
                &mut stats,
                &Shown {
                    first: first_shown,
                    window,
                    path,
                },
                reopen.as_ref(),
            );
            (played, stats)
        })
    };
    let (played, stats) = player
        .await
        .map_err(|_| (Error::Thread("video player"), None))?;
    stop.cancel();
    let audio = match audio {
        Some(audio) => Some(audio.await.unwrap_or(Err(Error::Thread("audio player")))),
        None => None,
    };
    // The totals come however playing ended: a stalled or failed stream still reports what
    // it delivered.
    let outcome = Outcome {
        summary: stats.summary.clone(),
        total: stats.total(),
    };
    match played.and(audio.transpose()) {
        Ok(_) => Ok(outcome),
        Err(err) => Err((err, Some(outcome))),
    }
}

/// Read, decode and output frames on this (blocking) thread. Reading only as fast as the
/// decoder and the output keep up is what lets the track consumer skip stale groups. With
/// `reopen`, a track that fails or stalls is a reconnect: the outputs stay open while the
/// broadcast is waited for, and play goes on from its next keyframe.
#[allow(clippy::too_many_arguments)]
fn play(
    handle: tokio::runtime::Handle,
    mut video: Video,
    config: &Config,
    stop: &CancellationToken,
    events: &Events,
    stats: &mut stats::Stats,
    shown_to: &Shown,
    reopen: Option<&subscribe::Resubscribe>,
) -> Result<(), Error> {
    // RTP brings pictures in pieces, as they are sent: no groups to join, and the decoder
    // takes the pieces.
    let rtp = matches!(video.feed, Feed::Rtp(_));
    if let Some(size) = video.coded {
        config.limits.check_size(size, "the catalog")?;
    }
    let mut decoder = match rtp {
        true => decode::Decoder::chunked(config.limits)?,
        false => decode::Decoder::of(video.decoder, video.description.as_deref(), config.limits)?,
    };
    let mut output = output::Output::open(config.output.as_deref(), video.framerate)?;
    let mut log = stats::LatencyLog::create(config.latency_log.as_deref())?;
    let mut joiner = (!rtp).then(|| Joiner::new(config.join.into()));
    let mut decode_errors = 0u64;
    let timeout = config.timeout;
    loop {
        let read = handle.block_on(async {
            tokio::select! {
                read = tokio::time::timeout(timeout, video.feed.read()) => Some(read),
                () = stop.cancelled() => None,
            }
        });
        let read = match read {
            None | Some(Ok(Ok(None))) => break,
            Some(Ok(Ok(Some(frame)))) => Ok(frame),
            Some(Err(_)) => Err(stalled(&config.name, timeout)),
            Some(Ok(Err(e))) => Err(Error::broadcast(&config.name, "track failed", Some(e))),
        };
        let frame = match (read, reopen) {
            (Ok(frame), _) => frame,
            (Err(err), None) => return Err(err),
            (Err(err), Some(reopen)) => {
                tracing::warn!(%err, "the stream went away: reconnecting");
                match wait_for_return(&handle, reopen, stop, stats, config, events, shown_to)? {
                    None => break,
                    Some(back) => {
                        if let Some(size) = back.coded {
                            config.limits.check_size(size, "the catalog")?;
                        }
                        decoder = decode::Decoder::of(
                            back.decoder,
                            back.description.as_deref(),
                            config.limits,
                        )?;
                        // Back from an outage the screen holds a stale picture: the current
                        // group's keyframe gives a new one at once (its older frames decode in
                        // a burst to catch up), where waiting for the next keyframe would add
                        // up to a GOP to the outage.
                        joiner = Some(Joiner::new(lantern_proto::timing::JoinPolicy::Current));
                        video = back;
                        continue;
                    }
                }
            }
        };
        // The relay serves the newest group from its keyframe; whether the next frame is
        // already waiting tells a group that began in the past from one just starting.
        let admit = joiner.as_mut().map_or(Admit::Decode, |joiner| {
            joiner.frame(frame.keyframe, || {
                let peek = handle.block_on(tokio::time::timeout(JOIN_PEEK, video.feed.read()));
                matches!(peek, Ok(Ok(Some(_))))
            })
        });
        let arrived = clock::now_unix_us();
        let captured = frame.captured_us;
        stats.received(frame.payload.len(), captured, arrived);
        {
            let mut path = shown_to.path.lock();
            path.frame(
                arrived,
                frame.pts_us,
                captured,
                frame.payload.len(),
                frame.keyframe,
            );
            // Waiting for the next keyframe (joined in a group's middle, or a picture did
            // not decode): ask for one rather than wait a whole group.
            if admit == Admit::Skip {
                path.want_keyframe();
            }
        }
        if admit == Admit::Skip {
            continue;
        }
        let started = Instant::now();
        let decoded = decoder.decode(&frame.payload, |picture| {
            // Decode time ends here; writing to the output is not part of it.
            let decode_us = started.elapsed().as_micros() as u64;
            let image = &picture.image;
            let stamp = Stamp::read(image);
            if config.av_sync
                && let Some(captured) = captured
            {
                let hold = stats.lip_sync_hold_us(captured, clock::now_unix_us());
                std::thread::sleep(Duration::from_micros(hold));
            }
            output.write(image)?;
            let shown = clock::now_unix_us();
            stats.shown(stamp, captured, decode_us, shown);
            let echo = stats.photon.as_ref().and_then(|_| Echo::read(image));
            match &shown_to.window {
                // The window pairs presses with pictures when it presents them.
                Some(window) => window.show(window::Frame {
                    picture: picture.share()?,
                    decoded_us: shown,
                    stamp,
                    echo,
                }),
                None => {
                    if let (Some(photon), Some(echo)) = (&stats.photon, echo) {
                        photon.shown(echo, stamp, shown);
                    }
                }
            }
            // After the picture's echo is taken: a script starts on this, and a press sent
            // before the meter has seen an echo cannot be paired.
            shown_to.first.cancel();
            let (luma, stride) = image.plane(0);
            let flash = sync::flash_visible(luma, stride, image.width(), image.height());
            stats.flash(flash, shown);
            match stamp {
                Some(stamp) => log.record(stamp, shown),
                None => Ok(()),
            }
        });
        match decoded {
            Ok(()) => {}
            Err(Error::OutputClosed) => break,
            Err(err @ (Error::Output { .. } | Error::Config(_) | Error::Refused(_))) => {
                return Err(err);
            }
            Err(err) => {
                decode_errors += 1;
                if let Some(joiner) = &mut joiner {
                    joiner.damaged();
                }
                let mut path = shown_to.path.lock();
                path.skipped(1);
                path.want_keyframe();
                let err = &err as &dyn std::error::Error;
                tracing::warn!(err, decode_errors, "skipping to the next keyframe");
            }
        }
        report(stats, config, events, shown_to);
        if config.frames.is_some_and(|n| stats.summary.frames >= n) {
            break;
        }
    }
    log.finish()
}

/// A stats line a second, to `--stats` and the window's overlay (which shows the same
/// figures the lines carry).
fn report(stats: &mut stats::Stats, config: &Config, events: &Events, shown_to: &Shown) {
    if (config.stats || shown_to.window.is_some())
        && let Some(line) = stats.tick()
    {
        if let Some(window) = &shown_to.window {
            window.overlay(&line);
        }
        if config.stats {
            let _ = events.send(line);
        }
    }
}

/// Wait for the broadcast to come back (the connection redials meanwhile), the stats lines
/// going on and saying so; its video, or None when stopped first.
fn wait_for_return(
    handle: &tokio::runtime::Handle,
    reopen: &subscribe::Resubscribe,
    stop: &CancellationToken,
    stats: &mut stats::Stats,
    config: &Config,
    events: &Events,
    shown_to: &Shown,
) -> Result<Option<Video>, Error> {
    stats.away();
    let mut reopening = std::pin::pin!(reopen.video());
    loop {
        let next = handle.block_on(async {
            tokio::select! {
                reopened = &mut reopening => Some(Some(reopened)),
                () = tokio::time::sleep(Duration::from_millis(250)) => Some(None),
                () = stop.cancelled() => None,
            }
        });
        match next {
            None => return Ok(None),
            Some(None) => report(stats, config, events, shown_to),
            Some(Some(reopened)) => {
                stats.back();
                let video = reopened?;
                tracing::info!(name = config.name, "the stream is back");
                return Ok(Some(video));
            }
        }
    }
}

/// Where shown pictures are announced: the first one to the input script, each one to the
/// window; and the path's meter, which the feedback reports come from.
struct Shown {
    first: CancellationToken,
    window: Option<window::Handle>,
    path: feedback::Path,
}

/// How long a viewer without a window (a pipe, a file, a script) waits for a stream that went
/// away before giving up, unless `--give-up` says otherwise.
const PIPE_GIVE_UP: Duration = Duration::from_secs(30);

/// How long a frame after the joining keyframe may take to arrive and still be live rather
/// than queued: well under one frame interval at 240 fps.
const JOIN_PEEK: Duration = Duration::from_millis(2);

fn stalled(name: &str, timeout: Duration) -> Error {
    let why = format!("no video frame for {timeout:?} (publisher gone?)");
    Error::broadcast(name, why, None)
}

/// µs since the UNIX epoch of a wall-clock time.
fn unix_us(time: std::time::SystemTime) -> Option<u64> {
    time.duration_since(UNIX_EPOCH)
        .ok()
        .map(|d| d.as_micros() as u64)
}
