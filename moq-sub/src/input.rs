//! Sending the player's input to the host: the API the window and browser viewers call, and
//! `--input-script` for automation.
//!
//! An [`InputChannel`] publishes this viewer's broadcast (`<name>/viewer/<id>`, with the
//! grant's token when there is one) on the same connection the stream comes in on, and sends
//! each batch of events as datagrams (sealed with the grant's secret) (see `lantern_proto::input::Outbox`): numbered, with
//! the held set and the recent presses and releases (repeated on their own when nothing else
//! goes out, so a lost datagram loses no press), heartbeats while anything is held, and
//! everything released when the channel closes. It also counts presses for input-to-photon ([`Photon`]).

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use lantern_net::input::InputPublisher;
use lantern_proto::clock;
use lantern_proto::histogram::Histogram;
use lantern_proto::input::{Event, Outbox, PhotonMeter, presses, script};
use lantern_proto::stamp::{Echo, Stamp};
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::stats::line::{InputFigures, ms};
use crate::stats::{Line, Part};

/// How a viewer sends input.
#[derive(Clone, Debug, Default)]
pub struct InputConfig {
    /// The grant from the host (`host-daemon ctl grant`); it names the viewer id. Without
    /// one the input is still sent, and the host counts and drops it.
    pub credential: Option<lantern_net::grant::Credential>,
    /// The viewer id when there is no grant [default: a random one].
    pub viewer: Option<String>,
    /// Timed events to send (`--input-script`).
    pub script: Option<PathBuf>,
}

impl InputConfig {
    /// The viewer id: the grant's, else the one given, else a fresh random one.
    pub fn viewer_id(&self) -> Result<String, Error> {
        Ok(match (&self.credential, &self.viewer) {
            (Some(credential), _) => credential.viewer.clone(),
            (None, Some(viewer)) => lantern_net::grant::check_viewer_id(viewer)?.to_string(),
            (None, None) => lantern_net::grant::random_viewer_id(),
        })
    }

    /// The script's steps, read now so a bad script stops the run before it connects.
    pub fn read_script(&self) -> Result<Option<Vec<script::Step>>, Error> {
        let Some(path) = &self.script else {
            return Ok(None);
        };
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::file("--input-script", path, e))?;
        script::parse(&text)
            .map(Some)
            .map_err(|e| Error::file("--input-script", path, e))
    }
}

/// Input-to-photon, shared between the sender and the video player.
#[derive(Clone, Default)]
pub struct Photon(Arc<Mutex<PhotonState>>);

#[derive(Default)]
struct PhotonState {
    meter: PhotonMeter,
    window: Histogram,
    total: Histogram,
    /// Where the time goes, for the newest press each picture answers: sent → the app has
    /// it (the input leg and the compositor's delivery), → the app commits the frame that
    /// shows it (its frame wait), → shown here (capture, encode, network, decode).
    to_app: Histogram,
    frame_wait: Histogram,
    commit_to_shown: Histogram,
    sent_events: u64,
    sent_datagrams: u64,
}

impl Photon {
    fn lock(&self) -> std::sync::MutexGuard<'_, PhotonState> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A picture with this echo (and this stamp, when it has one) was shown at `shown_us`.
    pub fn shown(&self, echo: Echo, stamp: Option<Stamp>, shown_us: u64) {
        let mut state = self.lock();
        let answered = state.meter.shown(echo.presses, shown_us);
        for &sent_us in &answered {
            let us = clock::elapsed_us(sent_us, shown_us);
            state.window.record(us);
            state.total.record(us);
        }
        // The echo's time is the newest press's arrival at the app.
        if let (Some(&sent_us), Some(stamp)) = (answered.last(), stamp) {
            let received = echo.received_us;
            state.to_app.record(clock::elapsed_us(sent_us, received));
            state
                .frame_wait
                .record(clock::elapsed_us(received, stamp.capture_us));
            state
                .commit_to_shown
                .record(clock::elapsed_us(stamp.capture_us, shown_us));
        }
    }
}

impl Part for Photon {
    /// Input-to-photon over the last second (whose window then restarts), or the whole run
    /// with where its time went.
    fn fill(&self, line: &mut Line) {
        let mut state = self.lock();
        let ms = |h: &Histogram, q| ms(h.quantile(q));
        let closing = line.closing;
        let h = if closing { &state.total } else { &state.window };
        let mut figures = InputFigures {
            input_events: state.sent_events,
            input_datagrams: state.sent_datagrams,
            input_to_photon_ms_p50: ms(h, 0.5),
            input_to_photon_ms_p99: ms(h, 0.99),
            input_to_photon_count: h.count(),
            input_unanswered: state.meter.unanswered(),
            ..InputFigures::default()
        };
        if closing {
            figures.input_to_app_ms_p50 = ms(&state.to_app, 0.5);
            figures.input_frame_wait_ms_p50 = ms(&state.frame_wait, 0.5);
            figures.input_commit_to_shown_ms_p50 = ms(&state.commit_to_shown, 0.5);
        } else {
            state.window.clear();
        }
        line.input = Some(figures);
    }
}

/// This viewer's input, going to the host.
pub struct InputChannel {
    publisher: InputPublisher,
    outbox: Outbox,
    photon: Photon,
}

impl InputChannel {
    /// Publish `<name>/viewer/<id>` in `origin` (which the connection publishes).
    pub fn open(
        origin: &moq_net::origin::Producer,
        name: &str,
        config: &InputConfig,
        photon: Photon,
    ) -> Result<Self, Error> {
        let viewer = config.viewer_id()?;
        let publisher = InputPublisher::new(origin, name, &viewer, config.credential.as_ref())?;
        tracing::info!(
            path = publisher.path(),
            granted = config.credential.is_some(),
            "sending input"
        );
        Ok(Self {
            publisher,
            outbox: Outbox::new(),
            photon,
        })
    }

    /// A handle that sends this viewer's feedback reports on its broadcast.
    pub fn feedback(&self) -> lantern_net::input::FeedbackSender {
        self.publisher.feedback()
    }

    /// Wait until the host subscribes to this input, up to `timeout`; false if it did not.
    pub async fn wait_for_host(&self, timeout: Duration) -> bool {
        self.publisher.wait_listened(timeout).await
    }

    /// Whether the host subscribes to this input now.
    pub fn host_listening(&self) -> bool {
        self.publisher.listened()
    }

    /// Send events now. Events the format refuses are an error and nothing is sent.
    pub fn send(&mut self, events: &[Event]) -> Result<(), Error> {
        let now = clock::now_unix_us();
        let datagrams = self.outbox.send(events, now).map_err(Error::Input)?;
        self.transmit(datagrams)?;
        let mut photon = self.photon.lock();
        photon.meter.sent(presses(events), now);
        photon.sent_events += events.len() as u64;
        Ok(())
    }

    /// Repeats of recent presses and releases, or the held set, when due (see
    /// [`Self::next_due_in`]; calling more often costs nothing).
    pub fn heartbeat(&mut self) -> Result<(), Error> {
        match self.outbox.heartbeat(clock::now_unix_us()) {
            Some(datagram) => self.transmit(vec![datagram]),
            None => Ok(()),
        }
    }

    /// How long until [`Self::heartbeat`] has something to send; None while nothing is due.
    pub fn next_due_in(&self) -> Option<Duration> {
        let now = clock::now_unix_us();
        let due = self.outbox.next_due()?;
        Some(Duration::from_micros(due.saturating_sub(now)))
    }

    /// Release everything held (focus lost, or leaving).
    pub fn release_all(&mut self) -> Result<(), Error> {
        let datagrams = self
            .outbox
            .release_all(clock::now_unix_us())
            .map_err(Error::Input)?;
        self.transmit(datagrams)
    }

    fn transmit(&mut self, datagrams: Vec<Vec<u8>>) -> Result<(), Error> {
        let count = datagrams.len() as u64;
        for datagram in datagrams {
            self.publisher.send(datagram)?;
        }
        self.photon.lock().sent_datagrams += count;
        Ok(())
    }
}

/// Play `steps` through `channel`: from when the host listens and `started` fires (the first
/// picture is shown, so presses can be paired with pictures), each step at its time;
/// heartbeats in between. `done` fires once every step is sent and everything released (or
/// it failed); the broadcast stays up until `stop`.
pub async fn play_script(
    mut channel: InputChannel,
    steps: Vec<script::Step>,
    started: CancellationToken,
    done: CancellationToken,
    stop: CancellationToken,
    timeout: Duration,
) -> Result<(), Error> {
    // However it ends (an error too), the run no longer waits for it.
    let _ended = done.clone().drop_guard();
    let ready = async {
        started.cancelled().await;
        channel.wait_for_host(timeout).await
    };
    tokio::select! {
        listened = ready => if !listened {
            return Err(Error::InputUnheard { timeout });
        },
        () = stop.cancelled() => {
            tracing::warn!(steps = steps.len(), "stopped before the host took this viewer's input: the input script was not sent");
            return Ok(());
        }
    }
    // The host brings back a lost press from later datagrams' repeats only once it has taken
    // one of this viewer's messages (see lantern_proto's Gate): greet it first, a few empty
    // messages apart, so the script's first press has that safety too.
    for _ in 0..GREETINGS {
        channel.send(&[])?;
        tokio::time::sleep(GREETING_GAP).await;
    }
    let begin = tokio::time::Instant::now();
    let total = steps.len();
    for (sent, step) in steps.into_iter().enumerate() {
        let at = begin + Duration::from_millis(step.at_ms);
        if !send_due_until(&mut channel, Some(at), &stop).await? {
            tracing::warn!(sent, steps = total, "stopped before the input script's end");
            channel.release_all()?;
            return flush(&mut channel).await;
        }
        channel.send(&step.events)?;
    }
    channel.release_all()?;
    done.cancel();
    tracing::info!(steps = total, "input script done");
    // Keep the broadcast up (and the last presses repeating) until the run ends: leaving it
    // would make the host release.
    send_due_until(&mut channel, None, &stop).await?;
    flush(&mut channel).await
}

/// Empty messages a script sends before its first step, and their spacing (apart, so one lost
/// packet does not take them all).
const GREETINGS: usize = 3;
const GREETING_GAP: Duration = Duration::from_millis(10);

/// How long a leaving viewer goes on sending what is due: its last presses' and releases'
/// repeats (16, 48 and 112 ms after them).
const FLUSH: Duration = Duration::from_millis(150);

/// Send the repeats still due, up to [`FLUSH`] from now: a viewer that leaves right after a
/// tap would otherwise take the tap's only copies with it when one datagram is lost.
async fn flush(channel: &mut InputChannel) -> Result<(), Error> {
    let end = tokio::time::Instant::now() + FLUSH;
    while let Some(due) = channel.next_due_in() {
        let at = tokio::time::Instant::now() + due;
        if at > end {
            break;
        }
        tokio::time::sleep_until(at).await;
        channel.heartbeat()?;
    }
    Ok(())
}

/// Send repeats and heartbeats as they come due, until `until` (true) or `stop` (false).
async fn send_due_until(
    channel: &mut InputChannel,
    until: Option<tokio::time::Instant>,
    stop: &CancellationToken,
) -> Result<bool, Error> {
    loop {
        let due = channel
            .next_due_in()
            .map(|d| tokio::time::Instant::now() + d);
        let wake = match (due, until) {
            (Some(due), Some(until)) => Some(due.min(until)),
            (due, until) => due.or(until),
        };
        let sleep = async {
            match wake {
                Some(wake) => tokio::time::sleep_until(wake).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = sleep => {}
            () = stop.cancelled() => return Ok(false),
        }
        if until.is_some_and(|until| tokio::time::Instant::now() >= until) {
            return Ok(true);
        }
        channel.heartbeat()?;
    }
}
