//! A run: dial (or open the RTP session), publish this viewer's input and feedback, wait for
//! the broadcast, and play its video and sound side by side until the end.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::player::{self, Shown};
use crate::subscribe::{self, Video};
use crate::{Config, Error, Events, Failed, Outcome, audio, feedback, input, rtp, stats, window};

/// Dial (or, with an SDP, open the RTP session), then play until the stream ends, `frames`
/// are decoded, the stream stalls, or `cancel` fires (a stop, even before anything played, is
/// not an error).
pub async fn run(
    config: Config,
    cancel: CancellationToken,
    events: Events,
) -> Result<Outcome, Failed> {
    config.check()?;
    let script = match config.input.as_ref().map(input::InputConfig::read_script) {
        Some(Err(err)) => return Err(err.into()),
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
        hooks.recorder = Some(recorder.map_err(Error::from)?);
    }
    let channel = match &config.input {
        Some(settings) => {
            let photon = input::Photon::default();
            hooks.photon = Some(photon.clone());
            Some(input::InputChannel::open(
                &mine,
                &config.name,
                settings,
                photon,
            )?)
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
                    .map_err(Error::from)?;
            Some(publisher)
        }
        _ => None,
    };
    hooks.feedback = channel
        .as_ref()
        .map(input::InputChannel::feedback)
        .or_else(|| spectator.as_ref().map(|p| p.feedback()));
    // A script drives the input when there is one; otherwise the player, in the window. A
    // player with neither (a pipe, asked for --feedback) only reports on it, sealed.
    let (script_channel, window_channel, _reporting) = match (&script, &config.window) {
        (Some(_), _) => (channel, None, None),
        (None, Some(_)) => (None, channel, None),
        (None, None) => (None, None, channel),
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
            .unwrap_or(Err(Error::Thread("window")))?;
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
        result = Err(Failed::after(err, outcome.clone()));
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
) -> Result<Outcome, Failed> {
    let origin = moq_tokio::origin::spawn();
    // A window waits for its stream as long as the player does; a pipe or a file gives up
    // after a while, so a script is not stuck forever.
    let pipe_give_up = config.window.is_none().then_some(PIPE_GIVE_UP);
    let give_up = config.connect.give_up(pipe_give_up).map_err(Error::from)?;
    // A player presents its grant's token to a direct server, which then never holds it
    // back with the spectators (moq-sub's own flags present it already).
    let mut connect = config.connect.clone();
    if connect.grant.is_none() {
        connect.grant = config
            .input
            .as_ref()
            .and_then(|input| Some(input.credential.as_ref()?.token.clone()));
    }
    let dial = async {
        let (client, relays) = connect.client(give_up)?;
        let client = client.with_subscriber(origin.clone());
        let client = match config.input.is_some() || hooks.feedback.is_some() {
            true => client.with_publisher(mine.consume()),
            false => client,
        };
        let dialing = client.connect(relays.addrs());
        let connection = lantern_net::established(dialing, &relays, config.timeout).await?;
        let deaf_after = connect.deaf_after(&relays)?;
        Ok::<_, Error>((connection, client, relays, deaf_after))
    };
    let (connection, client, url, deaf_after) = tokio::select! {
        connection = dial => connection?,
        () = cancel.cancelled() => return Ok(Outcome::empty()),
    };
    // The endpoint, to send the connection's close before the process exits.
    let endpoint = client.clone();
    let stop = cancel.child_token();
    let handed = Arc::new(AtomicU64::new(0));
    // The far end's estimate of this path, from whichever connection the keeper holds now.
    let (estimate, estimates) = tokio::sync::watch::channel(connection.recv_bandwidth());
    if let Some(sender) = hooks.feedback.take() {
        tokio::spawn(feedback::send(
            hooks.path.clone(),
            sender,
            estimates,
            handed.clone(),
            stop.clone(),
        ));
    }
    let link_stop = CancellationToken::new();
    let link = tokio::spawn(keep_link(
        Link {
            connection,
            client,
            relays: url.clone(),
            deaf_after,
            estimate,
        },
        hooks.link.clone(),
        handed,
        link_stop.clone(),
    ));
    let script_done = CancellationToken::new();
    let sender = script.map(|(steps, channel)| {
        tokio::spawn(input::play_script(
            channel,
            steps,
            hooks.shown.clone(),
            script_done.clone(),
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
    tokio::pin!(link);
    let (mut result, connection) = tokio::select! {
        result = &mut watching => {
            link_stop.cancel();
            (result, link.await.ok().and_then(Result::ok))
        }
        // Only a refusal (or a panic) ends the keeper before it is stopped.
        ended = &mut link => {
            watch_stop.cancel();
            let outcome = match watching.await {
                Ok(outcome) => Some(outcome),
                Err(failed) => failed.outcome,
            };
            let error = match ended {
                Ok(Err(refused)) => refused.into(),
                _ => Error::Thread("connection keeper"),
            };
            (Err(Failed { error, outcome }), None)
        }
    };
    let Some(connection) = connection else {
        stop.cancel();
        lantern_net::close(None, endpoint, CLOSE_GRACE).await;
        return result;
    };
    // `--frames` ends the picture, not the input script: a host slow to take this viewer's
    // input would otherwise have the run end with the script unsent. A stop still ends it.
    if sender.is_some() && result.is_ok() {
        tokio::select! {
            () = script_done.cancelled() => {}
            () = cancel.cancelled() => {}
        }
    }
    stop.cancel();
    // A broadcast that never came, or never came back, on a connection that gave up
    // redialing: the connection's last error says why (a server that is full, a relay gone).
    if let Err(Failed {
        error: Error::Broadcast {
            source: cause @ None,
            ..
        },
        ..
    }) = &mut result
        && let Ok(Err(gave_up)) = tokio::time::timeout(Duration::ZERO, connection.closed()).await
    {
        *cause = Some(Box::new(gave_up));
    }
    if let Some(sender) = sender {
        let sent = sender.await.unwrap_or(Err(Error::Thread("input sender")));
        if let (Err(err), Ok(outcome)) = (sent, &result) {
            result = Err(Failed::after(err, outcome.clone()));
        }
    }
    lantern_net::close(Some(connection), endpoint, CLOSE_GRACE).await;
    result
}

/// How long a closing connection gets to deliver what it queued (this viewer's own tracks
/// are still open then, so the drain runs to this bound), and its endpoint to send the close.
const CLOSE_GRACE: Duration = Duration::from_millis(250);

/// Receive the RTP session `sdp` describes, and play it.
async fn play_rtp(
    sdp: &std::path::Path,
    config: &Config,
    cancel: CancellationToken,
    events: Events,
    hooks: Hooks,
) -> Result<Outcome, Failed> {
    let stop = cancel.child_token();
    let (video, audio, receiver) = rtp::open(sdp, true, stop.clone())?;
    let result = play_media(video, audio, config, cancel, events, hooks, None).await;
    stop.cancel();
    let dropped = receiver.dropped.clone();
    let joined = tokio::task::spawn_blocking(move || receiver.join()).await;
    let dropped = dropped.load(Ordering::Relaxed);
    if dropped > 0 {
        tracing::warn!(dropped, "RTP units dropped: the players fell behind");
    }
    match (joined.unwrap_or(Err(Error::Thread("RTP receiver"))), result) {
        (Err(err), Ok(outcome)) => Err(Failed::after(err, outcome)),
        (_, result) => result,
    }
}

/// The connection to the relay (or server), what dials it again, and where the far end's
/// estimate of the path is read from (the feedback's `path_kbps`).
struct Link {
    connection: moq_tokio::Connection,
    client: moq_tokio::Client,
    relays: lantern_net::Relays,
    /// How long the connection may hear nothing before a fresh dial looks for the relay.
    deaf_after: Duration,
    estimate: tokio::sync::watch::Sender<moq_net::bandwidth::Consumer>,
}

impl Link {
    /// Go on over `connection`, ending the one held; the feedback reads its estimate now.
    fn replace(&mut self, connection: moq_tokio::Connection) {
        self.connection.abort(moq_net::Error::Timeout);
        self.connection = connection;
        self.estimate.send_replace(self.connection.recv_bandwidth());
    }
}

/// Keep the link until `stop`, then hand its connection back: keep `figures` told of its
/// smoothed round-trip time for the stats lines, and replace with a fresh dial a connection
/// gone mute (`handed` counts the reports given it; see [`lantern_proto::mute`]; the player
/// then finds its broadcast again as after any drop) or whose relay restarted under it (see
/// [`lantern_net::Redial`]; the subscriptions move to the fresh connection, and the time it
/// heard nothing counts as an outage). Ends early with the server's refusal of this client's
/// credentials.
async fn keep_link(
    mut link: Link,
    figures: Arc<stats::LinkFigures>,
    handed: Arc<AtomicU64>,
    stop: CancellationToken,
) -> Result<moq_tokio::Connection, lantern_net::Error> {
    let mut every = tokio::time::interval(lantern_net::Redial::EVERY);
    let mut mute = lantern_proto::mute::Mute::new();
    let mut redial =
        lantern_net::Redial::new(link.client.clone(), link.relays.clone(), link.deaf_after);
    let mut monitor = link.connection.monitor();
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = stop.cancelled() => return Ok(link.connection),
            refused = lantern_net::refused(&link.connection, &link.relays) => return Err(refused),
        }
        let stats = monitor.stats();
        if let Some(us) = stats.and_then(|s| s.rtt) {
            let us = us.as_micros().max(1) as u64;
            figures.rtt_us.store(us, Ordering::Relaxed);
        }
        let sent = stats.and_then(|s| s.packets_sent);
        let now = lantern_proto::clock::now_unix_us();
        if mute.check(now, sent, handed.load(Ordering::Relaxed)) {
            tracing::warn!(
                url = %link.relays,
                "the connection stopped sending (nothing out for {} s): redialing",
                lantern_proto::mute::MUTE_US / 1_000_000
            );
            link.replace(link.client.connect(link.relays.addrs()));
            monitor = link.connection.monitor();
        } else if let Some(fresh) = redial.check(&link.connection).await {
            tracing::warn!(
                url = %link.relays,
                silent_s = fresh.silent.as_secs_f64(),
                "the relay stopped answering and a fresh dial was answered (it restarted, or a \
                 fallback took over): going on over that"
            );
            figures.replaced(fresh.silent);
            link.replace(fresh.connection);
            monitor = link.connection.monitor();
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
    /// What the connection's keeper measures (its round-trip time, connections replaced).
    link: Arc<stats::LinkFigures>,
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
) -> Result<Outcome, Failed> {
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
) -> Result<Outcome, Failed> {
    let timeout = config.timeout;
    let started = tokio::time::Instant::now();
    let opened = tokio::select! {
        opened = tokio::time::timeout(timeout, subscribe::open(origin, &config.name, true)) => opened,
        () = cancel.cancelled() => return Ok(Outcome::empty()),
    };
    // The path or the relay went away while the broadcast was being opened (the catalog's
    // stream closed with the connection): opened again as a player whose stream went away
    // would, once the link has redialed, for what is left of the timeout; the first error
    // stands if that does not do it (a catalog that is bad is bad every time).
    let opened = match (opened, &reopen) {
        (Ok(Err(first @ Error::Broadcast { .. })), Some(reopen)) => {
            let left = timeout.saturating_sub(started.elapsed());
            tokio::select! {
                again = tokio::time::timeout(left, reopen.both()) => Ok(again.unwrap_or(Err(first))),
                () = cancel.cancelled() => return Ok(Outcome::empty()),
            }
        }
        (opened, _) => opened,
    };
    let (video, audio) = opened.map_err(|_| {
        // A relay with auth hides what a token may not subscribe to.
        let why = match config.connect.token {
            Some(_) => {
                format!("not found within {timeout:?} (or --token may not subscribe to it)")
            }
            None => format!("not found within {timeout:?}"),
        };
        Error::broadcast(&config.name, why, None)
    })??;
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
        (Ok(outcome), Err(err)) => Err(Failed::after(err, outcome)),
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
) -> Result<Outcome, Failed> {
    let timeout = config.timeout;
    // Debug: the per-second lines and the summary name the codec for a person already.
    tracing::debug!(
        name = config.name,
        track = video.track,
        codec = video.codec,
        audio = audio.as_ref().map(|a| a.track.as_str()),
        "playing"
    );

    let handle = tokio::runtime::Handle::current();
    let mut stats = stats::Stats::default();
    stats.codec = Some(video.codec.clone());
    stats.link = Some(hooks.link);
    stats.record = hooks.record;
    if let Some(photon) = &hooks.photon {
        stats.parts.push(Arc::new(photon.clone()));
    }
    if let Some(window) = &hooks.window {
        stats.parts.push(window.stats());
    }
    let mut shown = Shown {
        first: hooks.shown,
        window: hooks.window,
        photon: hooks.photon,
        path: hooks.path,
        lip_sync: None,
    };
    // The players stop together: a stop from outside, or either one ending.
    let stop = cancel.child_token();
    let audio = match audio {
        Some(audio) => {
            let out = audio::AudioOut::open(config.audio_out.as_deref(), audio.channels as u16)?;
            let shared = Arc::new(Mutex::new(stats::AudioStats::default()));
            stats.audio = Some(shared.clone());
            let lip_sync = audio::SharedLipSync::default();
            shown.lip_sync = Some(lip_sync.clone());
            let (handle, stop, reopen) = (handle.clone(), stop.clone(), reopen.clone());
            Some(tokio::task::spawn_blocking(move || {
                let measures = (shared, lip_sync);
                audio::play(handle, audio, out, measures, stop, timeout, reopen)
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
            let played = player::play(
                handle,
                video,
                &config,
                &stop,
                &events,
                &mut stats,
                &shown,
                reopen.as_ref(),
            );
            (played, stats)
        })
    };
    let (played, stats) = player.await.map_err(|_| Error::Thread("video player"))?;
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
        Err(err) => Err(Failed::after(err, outcome)),
    }
}

/// How long a viewer without a window (a pipe, a file, a script) waits for a stream that went
/// away before giving up, unless `--give-up` says otherwise.
const PIPE_GIVE_UP: Duration = Duration::from_secs(30);
