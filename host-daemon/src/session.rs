//! One session: a headless compositor, the app inside it, its private sound server, the
//! capture of both, and their publishing through moq-pub's library. It ends when the app
//! exits, on a stop, or when the compositor dies; every process it started is gone after.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::{Duration, Instant};

use moq_pub::audio::{AudioArgs, AudioSettings, AudioSource};
use moq_pub::source::{Format, Source};
use moq_pub::{Summary, Target};
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::account::{Account, RuntimeDir};
use crate::capture::picture::{PipedPicture, Ring};
use crate::capture::{Capture, CaptureStats, Meter};
use crate::compositor::{self, CaptureFrom, Compositor, Ready, Setup, base_env};
use crate::input;
use crate::process::{Child, Pipes, Spec, describe, spawn_helper};
use crate::sound::Sound;

/// Everything a session needs.
#[derive(Clone, Debug)]
pub struct Config {
    /// The broadcast's name.
    pub name: String,
    /// The app and its arguments.
    pub app: Vec<String>,
    /// Extra environment for the app (`KEY=VALUE`).
    pub app_env: Vec<(String, String)>,
    /// The output's mode, which is the stream's.
    pub format: Format,
    pub target: Target,
    /// Also send the stream as plain RTP here (see `moq_pub::rtp`).
    pub rtp: Option<moq_pub::rtp::RtpUrl>,
    /// Record the stream at the host into this fragmented MP4 file.
    pub record: Option<std::path::PathBuf>,
    pub video: moq_pub::encode::VideoArgs,
    pub rate: moq_pub::rate::RateArgs,
    /// `None`: no sound server, no audio track.
    pub audio: Option<AudioSettings>,
    /// Where the picture comes from.
    pub capture: Capture,
    /// The account to run as (root daemons only); `None`: the default.
    pub user: Option<String>,
    /// The account is this session's alone (one `serve` gave it): when the session ends,
    /// every process of the account left anywhere (one that left the app's process group
    /// with `setsid`, a double fork) is killed.
    pub own_user: bool,
    pub compositor: compositor::Kind,
    pub xwayland: bool,
    /// Draw the pointer into the picture (a compositor capture only; viewers draw their own).
    pub cursor: bool,
    /// Draw the frame stamp into the pictures (the app's are the user's: off by default).
    pub stamp: bool,
    /// The deadline of every start-up wait.
    pub timeout: Duration,
    /// Whose input is injected, and the grant key.
    pub input: input::Settings,
}

/// What a session reports as it runs.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Event {
    /// The compositor is up and the app started in it.
    Started {
        compositor: &'static str,
        app_pid: i32,
    },
    /// From publishing (connected, listening); its per-second video figures come as `Stats`.
    Publish(moq_pub::Event),
    /// A second of the session: the capture's and the encoder's figures, and the input's
    /// totals so far (`None` when input is off).
    Stats {
        capture: CaptureStats,
        video: moq_pub::stats::VideoStats,
        input: Option<Box<input::InputStats>>,
    },
}

pub type Events = tokio::sync::mpsc::UnboundedSender<Event>;

/// How a session ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ended {
    /// The app exited, with this status; its output's last lines.
    App { status: ExitStatus, tail: String },
    /// Stopped by the caller.
    Stopped,
    /// The stream ended on its own (e.g. `--frames`).
    StreamEnded,
}

#[derive(Clone, Debug)]
pub struct Outcome {
    pub ended: Ended,
    pub summary: Option<Summary>,
    pub capture: CaptureStats,
    /// The input's totals (`None` when the session took no input).
    pub input: Option<input::InputStats>,
}

impl Outcome {
    /// The status the daemon should pass on: the app's (128 + signal when it was killed).
    pub fn app_status(&self) -> Option<u8> {
        match &self.ended {
            Ended::App { status, .. } => Some(match (status.code(), status.signal()) {
                (Some(code), _) => code as u8,
                (None, Some(signal)) => 128u8.saturating_add(signal as u8),
                _ => 1,
            }),
            _ => None,
        }
    }
}

/// Run a session until its app exits, `cancel` fires, or something fails.
pub async fn run(
    config: Config,
    cancel: CancellationToken,
    events: Events,
) -> Result<Outcome, Error> {
    let Some(program) = config.app.first() else {
        return Err(Error::Config("no app to run: give it after `--`".into()));
    };
    let program = crate::process::find(program, None)?;
    let account = Account::for_session(config.user.as_deref())?;
    // The players' pads are the session's account's alone.
    let mut config = config;
    config.input.pads_for = account.as_ref().map(|account| input::pads::Owner {
        uid: account.uid,
        gid: account.gid,
    });
    let compositor = config.compositor.choose()?;
    let dir = RuntimeDir::create(&sanitize(&config.name), account.as_ref())?;
    let mut parts = Parts::default();
    let result = async {
        // The session's PipeWire carries the app's sound, and the video of a `pipewire:NODE`
        // capture or of a compositor that offers its picture there (which starts after it).
        let pipewire_first = compositor.captures_through_pipewire();
        let pipewire_video = pipewire_first || matches!(config.capture, Capture::PipeWire(_));
        if pipewire_first {
            parts.sound = Some(Sound::start(&dir, account.as_ref(), config.timeout).await?);
        }
        let ready = parts
            .start_compositor(
                compositor.as_ref(),
                &config,
                &dir,
                account.as_ref(),
                &cancel,
            )
            .await?;
        let Some(ready) = ready else {
            return Ok(None);
        };
        if parts.sound.is_none() && (config.audio.is_some() || pipewire_video) {
            parts.sound = Some(Sound::start(&dir, account.as_ref(), config.timeout).await?);
        }
        let mut env = base_env(dir.path());
        env.extend(ready.env.iter().cloned());
        if let Some(sound) = &parts.sound {
            env.extend(sound.env().iter().cloned());
        }
        env.extend(config.app_env.iter().cloned());
        let app = Child::spawn(Spec {
            name: "the app",
            program: &program.to_string_lossy(),
            args: &config.app[1..],
            env: &env,
            cwd: dir.path(),
            account: account.as_ref(),
            log: dir.path().join("app.log"),
            death_signal: libc::SIGKILL,
            stdin: None,
            stdout: None,
            cgroup: dir.cgroup(),
        })?;
        let _ = events.send(Event::Started {
            compositor: compositor.name(),
            app_pid: app.pid(),
        });
        parts.app = Some(app);
        // The sink's monitor, captured by a process of the session's account.
        let sound = match (&mut parts.sound, config.audio) {
            (Some(sound), Some(settings)) => {
                Some(sound.capture(&dir, account.as_ref(), settings, config.timeout)?)
            }
            _ => None,
        };
        let session = Place {
            dir: &dir,
            account: account.as_ref(),
        };
        parts
            .stream(&config, &ready, session, sound, &cancel, &events)
            .await
            .map(Some)
    }
    .await;
    parts.stop().await;
    if let (true, Some(account)) = (config.own_user, &account)
        && let Err(err) = account.kill_all()
    {
        tracing::warn!(
            err = &err as &dyn std::error::Error,
            "a session's processes may outlive it"
        );
    }
    drop(dir);
    match result? {
        Some(outcome) => Ok(outcome),
        None => Ok(Outcome {
            ended: Ended::Stopped,
            summary: None,
            capture: CaptureStats::default(),
            input: None,
        }),
    }
}

/// The session's processes, stopped in reverse order whatever happens.
#[derive(Default)]
struct Parts {
    compositor: Option<Child>,
    sound: Option<Sound>,
    app: Option<Child>,
    /// The picture's capture (see [`crate::capture::picture`]).
    capture: Option<Child>,
    /// The input's injection (see [`crate::input::helper`]).
    inject: Option<Child>,
}

/// Where a session's processes run, and as whom.
#[derive(Clone, Copy)]
struct Place<'a> {
    dir: &'a RuntimeDir,
    account: Option<&'a Account>,
}

impl Parts {
    /// Start the compositor and wait for it to be up. `None` on a stop.
    async fn start_compositor(
        &mut self,
        compositor: &dyn Compositor,
        config: &Config,
        dir: &RuntimeDir,
        account: Option<&Account>,
        cancel: &CancellationToken,
    ) -> Result<Option<Ready>, Error> {
        let pipewire = self.sound.as_ref().map(Sound::env).unwrap_or_default();
        // Made here, by the daemon, where it is missing: a session's user must not own the
        // directory every session's X11 socket goes in.
        if config.xwayland
            && let Err(err) = lantern_compositor::ensure_x11_socket_dir()
        {
            let cause = std::error::Error::source(&err).map(ToString::to_string);
            tracing::warn!(%err, cause, "X11 apps may not start");
        }
        let launch = compositor.prepare(&Setup {
            format: config.format,
            dir,
            account,
            xwayland: config.xwayland,
            env: pipewire,
        })?;
        let child = self.compositor.insert(Child::spawn(Spec {
            name: compositor.name(),
            program: &launch.program.to_string_lossy(),
            args: &launch.args,
            env: &launch.env,
            cwd: dir.path(),
            account,
            log: dir.path().join(format!("{}.log", compositor.name())),
            // A compositor stops its own helpers (XWayland) when it ends.
            death_signal: libc::SIGTERM,
            stdin: None,
            stdout: None,
            cgroup: dir.cgroup(),
        })?);
        let deadline = Instant::now() + config.timeout;
        loop {
            if let Some(ready) = compositor.ready(dir.path())? {
                return Ok(Some(ready));
            }
            if let Some(status) = child.exited() {
                return Err(Error::Compositor(format!(
                    "{} ended at start ({}): {}",
                    compositor.name(),
                    describe(status),
                    child.tail(5)
                )));
            }
            if cancel.is_cancelled() {
                return Ok(None);
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: format!("{} to start ({})", compositor.name(), child.tail(3)),
                    timeout: config.timeout,
                });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Capture and publish until the app exits, the compositor dies, or a stop.
    async fn stream(
        &mut self,
        config: &Config,
        ready: &Ready,
        session: Place<'_>,
        sound: Option<std::io::PipeReader>,
        cancel: &CancellationToken,
        events: &Events,
    ) -> Result<Outcome, Error> {
        let meter = Arc::new(Meter::default());
        // The capture's figures, with the pacing's where the compositor writes them: the
        // last second's, or the whole session's.
        let capture = |total: bool| {
            let figures = ready.figures.as_deref().and_then(compositor::figures);
            match total {
                false => meter.take().paced(figures.map(|f| f.second)),
                true => meter.total().paced(figures.map(|f| f.total)),
            }
        };
        let stop = cancel.child_token();
        let (video, audio) = self
            .open_sources(config, ready, session, sound, &meter, &stop)
            .await?;
        let (publish_events, mut published) = tokio::sync::mpsc::unbounded_channel();
        // The granted players' feedback (see `input`), for the adaptive bitrate.
        let feedback = moq_pub::rate::Feedback::new();
        let input = self.start_input(config, ready, session, &feedback, &stop)?;
        let options = moq_pub::Options {
            name: config.name.clone(),
            target: config.target.clone(),
            video: config.video.clone(),
            rate: config.rate.clone(),
            feedback: Some(feedback),
            frames: None,
            stamp: config.stamp,
            audio: match config.audio {
                Some(settings) => settings,
                None => AudioArgs::default().settings()?,
            },
            inbound: input
                .as_ref()
                .map(|(inbound, _)| moq_pub::Inbound(inbound.clone())),
            players: (config.input.auth == input::Auth::Granted)
                .then(|| config.input.grants.clone()),
            rtp: config.rtp.clone(),
            record: config.record.clone(),
        };
        let input = input.map(|(_, shared)| shared);
        let publishing = tokio::spawn(moq_pub::publish(
            options,
            video,
            audio,
            stop.clone(),
            publish_events,
        ));
        tokio::pin!(publishing);
        let (Some(app), Some(compositor)) = (self.app.as_mut(), self.compositor.as_mut()) else {
            stop.cancel();
            return Err(Error::Child(
                "streaming a session whose app or compositor is not running".into(),
            ));
        };
        let mut sound_check = tokio::time::interval(Duration::from_millis(500));
        let ended = loop {
            tokio::select! {
                status = app.wait() => break Ended::App { status, tail: app.tail(10) },
                status = compositor.wait() => {
                    stop.cancel();
                    let _ = publishing.await;
                    return Err(Error::Compositor(format!(
                        "{} died ({}): {}", compositor.name(), describe(status), compositor.tail(5)
                    )));
                }
                done = &mut publishing => {
                    let summary = match done.map_err(publishing_failed)? {
                        Ok(summary) => summary,
                        Err(err) => return Err(self.why_capture_failed(err.into()).await),
                    };
                    return Ok(Outcome {
                        ended: if cancel.is_cancelled() { Ended::Stopped } else { Ended::StreamEnded },
                        summary: Some(summary),
                        capture: capture(true),
                        input: input.as_ref().map(input::Shared::snapshot),
                    });
                }
                Some(event) = published.recv() => {
                    let event = match event {
                        moq_pub::Event::Video(video) => Event::Stats {
                            capture: capture(false),
                            video,
                            input: input.as_ref().map(|i| Box::new(i.snapshot())),
                        },
                        other => Event::Publish(other),
                    };
                    let _ = events.send(event);
                }
                _ = sound_check.tick() => {
                    if let Some(why) = self.sound.as_mut().and_then(Sound::died) {
                        stop.cancel();
                        let _ = publishing.await;
                        return Err(Error::Sound(why));
                    }
                }
                () = cancel.cancelled() => break Ended::Stopped,
            }
        };
        stop.cancel();
        let summary = match publishing.await.map_err(publishing_failed)? {
            Ok(summary) => summary,
            Err(err) => return Err(self.why_capture_failed(err.into()).await),
        };
        Ok(Outcome {
            ended,
            summary: Some(summary),
            capture: capture(true),
            input: input.as_ref().map(input::Shared::snapshot),
        })
    }

    /// Start taking viewers' input, unless it is off or the compositor takes none: the
    /// origin viewers publish into (scoped to this session's viewers) and the totals.
    fn start_input(
        &mut self,
        config: &Config,
        ready: &Ready,
        session: Place<'_>,
        feedback: &moq_pub::rate::Feedback,
        stop: &CancellationToken,
    ) -> Result<Option<(moq_net::origin::Producer, input::Shared)>, Error> {
        let Some(socket) = ready.input.clone() else {
            if config.input.auth != input::Auth::Off {
                tracing::warn!("this compositor takes no injected input: the session is view-only");
            }
            return Ok(None);
        };
        if config.input.auth == input::Auth::Off {
            return Ok(None);
        }
        if config.input.auth == input::Auth::Open {
            tracing::warn!("input is open: any viewer that reaches the session can type into it");
        }
        // In process, viewers publish beside the session; otherwise the connection (or the
        // direct server) puts their broadcasts here.
        let inbound = match &config.target {
            moq_pub::Target::Origin(origin) => origin.clone(),
            _ => moq_tokio::origin::spawn(),
        };
        let scoped = lantern_net::input::viewers_scope(&inbound, &config.name)?;
        // The injection itself runs as the session's user (see `input::helper`).
        let (their_stdin, to_helper) =
            std::io::pipe().map_err(|e| Error::io("a pipe for the input", e))?;
        let (from_helper, their_stdout) =
            std::io::pipe().map_err(|e| Error::io("a pipe for the input", e))?;
        let args = vec![
            "input-inject".to_string(),
            "--socket".into(),
            socket.display().to_string(),
        ];
        self.inject = Some(spawn_helper(
            "input-inject",
            &args,
            &base_env(session.dir.path()),
            session.dir,
            session.account,
            Pipes {
                stdin: Some(their_stdin.into()),
                stdout: Some(their_stdout.into()),
            },
        )?);
        let shared = input::Shared::default();
        tokio::spawn(input::run(
            inbound,
            config.name.clone(),
            (to_helper, from_helper),
            config.input.clone(),
            shared.clone(),
            feedback.clone(),
            stop.clone(),
        ));
        Ok(Some((scoped, shared)))
    }

    /// Open the picture's capture (in a process of the session's account, see
    /// [`crate::capture::picture`]) and the sink monitor's, side by side (each waits for its
    /// first data).
    async fn open_sources(
        &mut self,
        config: &Config,
        ready: &Ready,
        session: Place<'_>,
        sound: Option<std::io::PipeReader>,
        meter: &Arc<Meter>,
        stop: &CancellationToken,
    ) -> Result<(Box<dyn Source>, Option<Box<dyn AudioSource>>), Error> {
        let (format, timeout) = (config.format, config.timeout);
        let (capture, path) = match (&config.capture, &ready.capture, &self.sound) {
            (Capture::PipeWire(node), _, Some(sound))
            | (_, CaptureFrom::PipeWire { node }, Some(sound)) => (
                Capture::PipeWire(node.clone()),
                sound.socket().to_path_buf(),
            ),
            (&Capture::Compositor(buffers), CaptureFrom::Screencopy { socket }, _) => {
                (Capture::Compositor(buffers), socket.clone())
            }
            _ => {
                return Err(Error::Config(
                    "a PipeWire capture needs the session's PipeWire, which did not start".into(),
                ));
            }
        };
        let ring = Ring::new(&capture, format)?;
        let (ours, theirs) = std::os::unix::net::UnixStream::pair()
            .map_err(|e| Error::io("a socket for the picture", e))?;
        let mut args: Vec<String> = vec![
            "picture-capture".into(),
            "--capture".into(),
            String::from(capture),
            "--path".into(),
            path.display().to_string(),
            "--timeout-ms".into(),
            timeout.as_millis().to_string(),
        ];
        args.extend(compositor::mode_args(format));
        if config.cursor {
            args.push("--cursor".into());
        }
        let mut env = base_env(session.dir.path());
        if let Some(sound) = &self.sound {
            env.extend(sound.env().iter().cloned());
        }
        self.capture = Some(spawn_helper(
            "picture-capture",
            &args,
            &env,
            session.dir,
            session.account,
            Pipes {
                stdin: Some(ring.share()?),
                stdout: Some(theirs.into()),
            },
        )?);
        let (meter, token) = (meter.clone(), stop.clone());
        // The helper's own start may take `timeout` (a PipeWire node that comes late), and a
        // moment more to say so.
        let video = tokio::task::spawn_blocking(move || {
            PipedPicture::open(
                ring,
                ours,
                format.fps,
                meter,
                token,
                timeout + Duration::from_secs(2),
            )
            .map(|video| Box::new(video) as Box<dyn Source>)
        });
        let audio = match (sound, config.audio) {
            (Some(pipe), Some(settings)) => Some(tokio::task::spawn_blocking(move || {
                crate::capture::sound::PipedSound::open(pipe, settings, timeout)
            })),
            _ => None,
        };
        let joined = |source| Error::Task {
            what: "capture's start",
            source,
        };
        let video = match video.await.map_err(joined)? {
            Ok(video) => video,
            Err(err) => return Err(self.why_capture_failed(err).await),
        };
        let moq_pub::source::Format { width, height, .. } = video.format();
        tracing::info!(
            width,
            height,
            "capturing the session's picture in a process of its own user (its messages go to \
             picture-capture.log in the session's directory while the session runs)"
        );
        let audio: Option<Box<dyn AudioSource>> = match audio {
            Some(audio) => Some(Box::new(audio.await.map_err(joined)??)),
            None => None,
        };
        Ok((video, audio))
    }

    /// `err`, or, when it is that the picture's capture ended, what the capture said last:
    /// the cause.
    async fn why_capture_failed(&mut self, err: Error) -> Error {
        let ended = crate::error::capture_ended(&err);
        let Some(capture) = self.capture.as_mut().filter(|_| ended) else {
            return err;
        };
        let Ok(status) = tokio::time::timeout(Duration::from_secs(2), capture.wait()).await else {
            return err;
        };
        // An error of its own is its last line; killed, its last line is any other.
        if status.code().is_none_or(|code| code == 0) {
            return Error::Capture(format!(
                "the session's picture capture ended ({})",
                describe(status)
            ));
        }
        let said = capture.tail(1);
        let said = said
            .strip_prefix("host-daemon picture-capture: ")
            .unwrap_or(&said);
        Error::Capture(format!(
            "the session's picture capture ended ({}): {said}",
            describe(status)
        ))
    }

    /// Stop everything, the app first, the compositor last.
    async fn stop(&mut self) {
        if let Some(app) = &mut self.app {
            app.stop(Duration::from_secs(3)).await;
        }
        for helper in [&mut self.capture, &mut self.inject].into_iter().flatten() {
            helper.stop(Duration::from_secs(2)).await;
        }
        if let Some(sound) = &mut self.sound {
            sound.stop().await;
        }
        if let Some(compositor) = &mut self.compositor {
            compositor.stop(Duration::from_secs(3)).await;
        }
    }
}

/// Open a capture of something an app or WirePlumber sets up a moment after PipeWire's
/// socket appears (the sink's link, an app's video node): until `timeout`, a refused open is
/// tried again, each try given what is left.
pub(crate) fn retry<T, E: std::fmt::Display>(
    what: &str,
    timeout: Duration,
    stop: &CancellationToken,
    mut open: impl FnMut(Duration) -> Result<T, E>,
) -> Result<T, E> {
    let deadline = Instant::now() + timeout;
    loop {
        match open(deadline.saturating_duration_since(Instant::now())) {
            Err(err) if Instant::now() < deadline && !stop.is_cancelled() => {
                tracing::debug!(err = %err, "{what} is not up yet");
                std::thread::sleep(Duration::from_millis(100));
            }
            result => return result,
        }
    }
}

/// A broadcast name as a file-name fragment.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(32)
        .collect()
}

/// The publishing task panicked: its cause kept.
fn publishing_failed(source: tokio::task::JoinError) -> Error {
    Error::Task {
        what: "publishing task",
        source,
    }
}
