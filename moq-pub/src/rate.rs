//! Bitrate that follows the path: the settings (`--bitrate-mode`, `--max-bitrate`), the
//! inbox where viewers' feedback reports land ([`Feedback`]), and a reader that takes every
//! viewer's reports ([`read_everyone`], for `moq-pub --feedback open`). The decisions are
//! [`lantern_proto::rate`]'s; the encoding thread owns the controller and applies them.
//!
//! Whose reports count is the caller's choice: a host passes only its granted players'
//! (a spectator never pulls the stream down for everyone), moq-pub alone takes none unless
//! told to take everyone's.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use lantern_proto::feedback::Report;
use lantern_proto::rate::{Config, RateControl};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::encode::{MIN_KBPS, VideoSettings};

/// How the bitrate is chosen.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Follow the path: the viewers' feedback and the connection's estimate.
    #[default]
    Adaptive,
    /// Always --bitrate.
    Fixed,
}

/// The rate flags.
#[derive(clap::Args, Clone, Debug)]
pub struct RateArgs {
    /// adaptive: start at --bitrate and follow the path (needs viewers' feedback to see past
    /// the first hop; where it is followed, the start is a quarter of --bitrate until a
    /// viewer first reports, for at most a second); fixed: always --bitrate.
    #[arg(long, value_enum, default_value_t = Mode::Adaptive)]
    pub bitrate_mode: Mode,

    /// The most an adaptive bitrate may reach, kbit/s [default: three times --bitrate's
    /// default for the size].
    #[arg(long, value_name = "KBPS")]
    pub max_bitrate: Option<u32>,

    /// The least an adaptive bitrate may fall to, kbit/s.
    #[arg(long, value_name = "KBPS", default_value_t = 200)]
    pub min_bitrate: u32,
}

/// The flags' own defaults, for callers that build them in code.
impl Default for RateArgs {
    fn default() -> Self {
        Self {
            bitrate_mode: Mode::Adaptive,
            max_bitrate: None,
            min_bitrate: 200,
        }
    }
}

impl RateArgs {
    /// The controller's bounds for `settings` (whose bitrate is the start), or None when fixed.
    /// Where viewers' feedback is followed, the start is blind until one reports.
    pub fn config(
        &self,
        settings: &VideoSettings,
        default_kbps: u32,
        follows_feedback: bool,
    ) -> Option<Config> {
        if self.bitrate_mode == Mode::Fixed {
            return None;
        }
        let min = self.min_bitrate.max(MIN_KBPS);
        let max = self
            .max_bitrate
            .unwrap_or(default_kbps.saturating_mul(3))
            .max(settings.bitrate_kbps)
            .max(min);
        Some(Config {
            start_bps: u64::from(settings.bitrate_kbps) * 1000,
            min_bps: u64::from(min) * 1000,
            max_bps: u64::from(max) * 1000,
            blind_start: follows_feedback,
        })
    }
}

/// How many reports may wait for the encoding thread; more are dropped and counted.
const INBOX: usize = 256;

/// Where viewers' feedback lands for the encoding thread. Cheap to clone; bounded.
#[derive(Clone, Default)]
pub struct Feedback(Arc<Mutex<Inbox>>);

#[derive(Default)]
struct Inbox {
    queue: VecDeque<Entry>,
    send_estimate: Option<u64>,
    malformed: u64,
    overflow: u64,
}

enum Entry {
    Report {
        viewer: u64,
        at_us: u64,
        report: Report,
    },
    Left(u64),
}

impl std::fmt::Debug for Feedback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Feedback")
    }
}

impl Feedback {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inbox> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A datagram from `viewer` (a key of the caller's, one per viewer) that arrived at
    /// `at_us`. Malformed ones, and any beyond what the inbox holds, are counted and dropped.
    pub fn datagram(&self, viewer: u64, at_us: u64, datagram: &[u8]) {
        let mut inbox = self.lock();
        match Report::decode(datagram) {
            Err(_) => inbox.malformed += 1,
            Ok(report) if inbox.queue.len() < INBOX => inbox.queue.push_back(Entry::Report {
                viewer,
                at_us,
                report,
            }),
            Ok(_) => inbox.overflow += 1,
        }
    }

    /// A datagram that could not be read at all (a seal that does not open): counted as
    /// malformed.
    pub fn unreadable(&self) {
        self.lock().malformed += 1;
    }

    /// `viewer` left: its reports stop counting.
    pub fn left(&self, viewer: u64) {
        let mut inbox = self.lock();
        // A departure is never dropped: make room by dropping the oldest report.
        if inbox.queue.len() >= INBOX {
            inbox.queue.pop_front();
            inbox.overflow += 1;
        }
        inbox.queue.push_back(Entry::Left(viewer));
    }

    /// The publisher's connection's estimate of its path, bit/s (None: unknown).
    pub fn send_estimate(&self, bps: Option<u64>) {
        self.lock().send_estimate = bps;
    }

    /// Hand what arrived to `control`; the drops counted so far.
    pub(crate) fn drain(&self, control: &mut RateControl) -> (u64, u64) {
        let mut inbox = self.lock();
        control.send_estimate(inbox.send_estimate);
        for entry in inbox.queue.drain(..) {
            match entry {
                Entry::Report {
                    viewer,
                    at_us,
                    report,
                } => {
                    // Refusals are counted by the controller.
                    let taken = control.report(at_us, viewer, &report);
                    tracing::trace!(
                        viewer,
                        ?report,
                        ?taken,
                        target_kbps = control.target(at_us) / 1000,
                        "feedback"
                    );
                }
                Entry::Left(viewer) => control.forget(viewer),
            }
        }
        (inbox.malformed, inbox.overflow)
    }
}

/// The rate control's figures in a stats line.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize, PartialEq)]
#[serde(default)]
pub struct RateStats {
    /// The bitrate the encoder is set to now.
    pub target_kbps: u64,
    /// Viewers whose feedback counts, and the deepest queue they report.
    pub viewers: usize,
    pub queue_ms: Option<u16>,
    pub reports: u64,
    /// Reports dropped: malformed, repeated or old, too frequent, beyond the viewers
    /// followed, or beyond the inbox.
    pub refused: u64,
    pub decreases: u64,
    pub keyframes_asked: u64,
    pub keyframes_forced: u64,
    /// Requests from a viewer that asked again soon after one was forced for it, left to
    /// the encoder's own keyframes or a later one.
    pub keyframes_deferred: u64,
    /// Frames not encoded because a viewer's queue was deep, or more was on the way to it
    /// than its path carried.
    pub frames_skipped: u64,
    /// Reports that named the newest frame a viewer had, found among the frames sent (what
    /// is still on the way is known), and ones naming a frame not sent or long gone.
    pub newest_known: u64,
    pub newest_unknown: u64,
    /// Viewers' paths that went (nearly) silent for a second or more, and came back at
    /// about the rate they carried before.
    pub outages: u64,
    /// Falls of a relay's window taken for it pausing itself (BBR's PROBE_RTT): the queue
    /// each left was neither cut for nor grown into.
    pub relay_pauses: u64,
}

impl RateStats {
    pub(crate) fn of(control: &RateControl, now_us: u64, drops: (u64, u64)) -> Self {
        let c = control.counters();
        Self {
            target_kbps: control.target(now_us) / 1000,
            viewers: control.viewers(now_us),
            queue_ms: control.worst_queue_ms(now_us),
            reports: c.reports,
            refused: c.refused_old + c.refused_too_soon + c.refused_crowded + drops.0 + drops.1,
            decreases: c.decreases,
            keyframes_asked: c.keyframes_asked,
            keyframes_forced: c.keyframes_forced,
            keyframes_deferred: c.keyframes_deferred,
            frames_skipped: c.frames_skipped,
            newest_known: c.newest_known,
            newest_unknown: c.newest_unknown,
            outages: c.outages,
            relay_pauses: c.relay_pauses,
        }
    }
}

/// Take every viewer's reports from `inbound` (where the connection or the direct server
/// puts what peers publish) into `feedback`, until `cancel` fires. For a publisher with no
/// players to tell from spectators, whose every viewer is trusted (`moq-pub --feedback open`).
pub async fn read_everyone(
    inbound: moq_net::origin::Producer,
    session: String,
    feedback: Feedback,
    cancel: CancellationToken,
) -> Result<(), lantern_net::Error> {
    let viewers = lantern_net::input::Viewers::watch(&inbound, &session)?;
    viewers
        .serve_each(&cancel, |joined| {
            let feedback = feedback.clone();
            // Every viewer is trusted here: all are admitted.
            joined.seat.admit(true);
            async move {
                let key = joined.slot;
                if let Ok(reports) = joined.input.feedback().await {
                    forward(reports, key, &feedback, &joined.stop, |d| Some(d.to_vec())).await;
                }
                feedback.left(key);
            }
        })
        .await;
    Ok(())
}

/// Put one viewer's reports into `feedback` as they arrive, until its track ends or `stop`;
/// `open` reads each datagram (a host opens its granted viewers' seals), `None` when it
/// cannot.
pub async fn forward(
    mut reports: moq_net::track::Subscriber,
    viewer: u64,
    feedback: &Feedback,
    stop: &CancellationToken,
    mut open: impl FnMut(&[u8]) -> Option<Vec<u8>>,
) {
    loop {
        tokio::select! {
            datagram = reports.recv_datagram() => match datagram {
                Ok(Some(datagram)) => match open(&datagram.payload) {
                    Some(report) => {
                        let now = lantern_proto::clock::now_unix_us();
                        feedback.datagram(viewer, now, &report);
                    }
                    None => feedback.unreadable(),
                },
                _ => return,
            },
            () = stop.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn control() -> RateControl {
        RateControl::new(Config {
            start_bps: 4_000_000,
            min_bps: 200_000,
            max_bps: 12_000_000,
            blind_start: true,
        })
    }

    #[test]
    fn the_inbox_counts_what_it_cannot_take_and_never_loses_a_departure() {
        let feedback = Feedback::new();
        feedback.datagram(1, 0, b"nonsense");
        // Under the blind start's rate, so that a report taken cuts it.
        let report = Report {
            window_ms: 100,
            queue_ms: 120,
            recv_kbps: 300,
            ..Report::default()
        };
        for seq in 0..INBOX as u32 + 5 {
            let report = Report { seq, ..report };
            feedback.datagram(1, u64::from(seq) * 100_000, &report.encode());
        }
        feedback.left(1);
        let mut control = control();
        let (malformed, overflow) = feedback.drain(&mut control);
        assert_eq!((malformed, overflow), (1, 6));
        assert_eq!(control.counters().decreases, 1);
        // The viewer left: its congestion no longer holds the rate down.
        assert_eq!(control.target(0), 4_000_000);
    }

    #[test]
    fn fixed_mode_has_no_controller_and_adaptive_bounds_hold_the_start() {
        let settings = |kbps| VideoSettings {
            backend: crate::encode::Backend::X264,
            bitrate_kbps: kbps,
            gop: 60,
            preset: "ultrafast".into(),
            tune: "zerolatency".into(),
            slice_max_bytes: None,
            auto: false,
            vaapi_device: None,
        };
        let fixed = RateArgs {
            bitrate_mode: Mode::Fixed,
            ..RateArgs::default()
        };
        assert_eq!(fixed.config(&settings(4000), 4000, true), None);
        let adaptive = RateArgs {
            bitrate_mode: Mode::Adaptive,
            max_bitrate: None,
            min_bitrate: 200,
        };
        let config = adaptive.config(&settings(20_000), 4000, false).unwrap();
        assert_eq!(config.start_bps, 20_000_000);
        assert!(!config.blind_start);
        assert!(
            adaptive
                .config(&settings(4000), 4000, true)
                .unwrap()
                .blind_start
        );
        assert_eq!(config.max_bps, 20_000_000, "the start is within the bounds");
        assert_eq!(
            adaptive
                .config(&settings(4000), 4000, false)
                .unwrap()
                .max_bps,
            12_000_000
        );
    }
}
