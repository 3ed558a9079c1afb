//! The publisher's rate control: from the reports of the viewers that count (see
//! [`crate::feedback`]), the bitrate to encode at, whether to skip a frame, and whether to
//! make a keyframe now. Pure: every call takes the time, in µs.
//!
//! Each viewer has an estimate of its own; the stream follows the lowest. Its signals are
//! taken over the last [`SMOOTH`] reports (the shallowest queue, the mean arrival rate): one
//! frame held up behind a lost packet's retransmission is no congestion, a queue that stands
//! is. An estimate:
//! - **falls** when the viewer's queue passes [`HIGH_QUEUE_MS`] (or [`RISING_QUEUE_MS`]
//!   rising report after report while frames arrive: a path that narrowed), it stalls, or
//!   it skipped frames: under what actually reached it (the path's rate while a queue
//!   stands), by as much as drains the queue within about [`DRAIN_US`], at most once per
//!   [`DECREASE_GAP_US`] (the time a cut takes to show in the reports).
//!   A queue seen while frames were held up (a report that saw next to nothing arrive
//!   between bursts: a lost packet's retransmission, which the frames behind it on the same
//!   stream wait for), on a path whose arrivals over the last [`LONG`] reports kept up with
//!   what was sent, is loss being recovered, not a path too slow: no fall. Where frames were
//!   held up and the path did not keep up, the fall is from the longer run's arrivals, not
//!   the few latest reports' silence;
//! - **holds** for [`HOLD_US`] after a fall, and while the queue is between the thresholds;
//! - **grows** while the queue stays under [`LOW_QUEUE_MS`]: fast ([`FAST_GROWTH`] a second,
//!   compounding) far from the rate where it last fell, slowly near it, never while far
//!   less arrives than is sent (the encoder, not the path, is the limit then), and never
//!   past [`HEADROOM`] times what arrives: an encoder that makes less than its target (a
//!   simple picture) does not pull the estimate up to the bound, where a scene cut would
//!   be handed more than any report has seen the path carry. On mahimahi's Verizon LTE
//!   trace (120 s, two interleaved pairs) frame delay p95 went from 405 and 340 ms to 356
//!   and 299; on its AT&T LTE trace (60 s) from 1196 and 926 ms to 991 and 909.
//!
//! An outage (arrivals under [`OUTAGE_SHARE`] of what the path carried for [`OUTAGE_US`] or
//! more, as in a cellular dead zone) is no new path to probe from the bottom: the most the
//! viewer received before it with no queue standing is remembered. When
//! pictures come again, the queue the outage left drains at what the path carries now; the
//! stalls and skipped frames it caused, and that queue while it drains, are not taken for
//! congestion, and the estimate is raised at once to [`DRAIN_SHARE`] of the drain's rate (no
//! higher than before the outage), then grows [`RECOVERY_GROWTH`] a second to
//! [`RECOVER_SHARE`] of the rate before, unless the path fills first.
//!
//! A viewer's reports name the newest frame that reached it, so the frames sent after it are
//! still on the way. Once a queue shows, a frame is skipped while those would take over
//! [`BACKLOG_US`] longer to arrive, at the best rate the viewer's latest reports saw, than
//! they took to send: a link that slowed down. This answers a step down a report or two
//! before the queue is seen standing, and sends nothing that would only wait behind what is
//! already queued (with the encoder's own buffer, a cut takes a few frames to show in their
//! sizes). On a 8 → 2 Mbit/s step it halves the frames shown over 300 ms late.
//!
//! While a viewer's queue is deeper than [`DRAIN_QUEUE_MS`] and still holds frames (the
//! oldest one sent after the newest it received has been on the way that long: a pause of the
//! source grows the measured delay too, with nothing queued), frames are skipped: fewer frames
//! now is better than every frame late. Every other one at least, and more where the path
//! carries less than the lowest bitrate allows: the frames sent are then paced to
//! [`DEEP_SHARE`] of what reaches that viewer (a path near zero, as a cellular link has for
//! seconds at a time, gets a frame every [`DEEP_FRAME_GAP_US`], enough for its reports to
//! tell when it comes back). A viewer whose reports stop for [`SILENT_US`] has lost its path
//! both ways (its reports wait for acknowledgements that come down the same path); when every
//! viewer has, nothing is sent that would only queue behind the outage, until one reports
//! again or all are forgotten. One silent viewer among others who report never stops their
//! pictures: a player whose Wi-Fi dropped, or who left without a word (a process killed), would
//! otherwise freeze everyone's picture until forgotten ([`FORGET_US`]), and a newcomer's too. A
//! keyframe asked for is granted at once unless one was forced within [`KEYFRAME_GAP_US`];
//! a viewer that asks again soon after one was forced for it (a path that keeps losing
//! pictures) waits twice as long each time, up to [`MAX_KEYFRAME_GAP_US`], so that one lossy
//! viewer does not turn every viewer's stream into a keyframe a second.
//!
//! Where viewers are expected to report ([`Config::blind_start`]), a path nobody has measured
//! is not sent the start rate blind: until a viewer first reports
//! (its first picture must cross the path before it can, about 0.4 s on a slow one), the rate
//! is [`BLIND_SHARE`] of the start, for at most [`BLIND_US`] (a publisher whose viewers never
//! report then sends its start rate). A viewer that reports grows from there at
//! [`START_GROWTH`] to the start rate, unless its path fills first, and however little
//! the encoder makes of its target meanwhile (the start rate is the user's own): a fast path
//! has its start rate about half a second later, a 0.5 Mbit/s one is not handed a second of
//! queue before its first report comes back (a tenth of 4.4 Mbit/s, which x264 overshoots
//! by a third at first, is about that path; a quarter left a 1.2 s queue there).
//!
//! The sender to a viewer (moq-relay, through a relay) tells the viewer its window over its
//! RTT (moq-lite PROBE), which the reports carry (`path_kbps`). That falling by half at once
//! while little queue stands is the sender pausing itself, not the path narrowing: BBR's
//! PROBE_RTT, a fifth of a second at half a window, every few seconds on a path it keeps
//! full. (A path that narrows fills its queue first; the RTT grows with it and the window
//! over the RTT falls by degrees behind it.) The queue such a pause leaves at the sender
//! drains the moment it ends, so for [`RELAY_PAUSE_US`] from the fall a standing queue is no
//! congestion and nothing grows; stalls still count. A window that stays low after that is
//! the sender's new rate (a loss-based cut, say), and its queue is congestion as any other.
//! Without it a 2 Mbit/s link was cut to a quarter every 6–7 s, and took 3 s to climb back.
//!
//! A sender to a viewer that is still opening its window (QUIC's slow start, on a new
//! connection: every reading of its window so far rose or held, and it is under the viewer's
//! estimate) is followed: the viewer's rate is that window until it reaches the estimate,
//! and the queue over it, which waits at the sender, is no congestion. Behind a 300 ms round
//! trip slow start takes a second or more, and that queue, read as a slow path, cut the rate
//! to the bottom, 10 s or more below the path.
//!
//! The publisher's own connection can only lower the rate ([`RateControl::send_estimate`]):
//! its congestion controller sees the first hop, which through a relay is rarely the narrow
//! one, and an estimate that is app-limited says nothing about more room.

use std::collections::BTreeMap;

use crate::feedback::Report;

/// A queue deeper than this is congestion.
pub const HIGH_QUEUE_MS: u16 = 50;
/// A queue deeper than this that rose through each of the last [`SMOOTH`] reports, with
/// frames arriving in each, is congestion too: a path that narrowed, caught before it costs
/// [`HIGH_QUEUE_MS`]. (A queue that rises while nothing arrives is a frame held up.)
pub const RISING_QUEUE_MS: u16 = 35;
/// A queue shallower than this is room to grow.
pub const LOW_QUEUE_MS: u16 = 20;
/// A queue deeper than this is drained by skipping frames too.
pub const DRAIN_QUEUE_MS: u16 = 100;
/// While a queue is deep, the frames sent carry at most this share of what reaches the viewer.
pub const DEEP_SHARE: f64 = 0.5;
/// While a queue is deep, what goes unsent is saved up for at most this long (no burst after
/// a quiet spell).
pub const DEEP_SAVED_S: f64 = 0.1;
/// While a queue is deep, at least one frame is sent in this time.
pub const DEEP_FRAME_GAP_US: u64 = 1_000_000;
/// A viewer that reported within [`FORGET_US`] but not within this long is cut off: reports
/// come every [`crate::feedback::INTERVAL_US`]. Frames stop only when every viewer is.
pub const SILENT_US: u64 = 500_000;
/// A fall aims to drain the queue within about this long.
pub const DRAIN_US: u64 = 1_000_000;
/// At most one fall per viewer in this time.
pub const DECREASE_GAP_US: u64 = 250_000;
/// No growth for this long after a fall.
pub const HOLD_US: u64 = 400_000;
/// Growth a second, far from the last congestion, and near it.
pub const FAST_GROWTH: f64 = 0.8;
pub const SLOW_GROWTH: f64 = 0.25;
/// An estimate grows no further above what reaches the viewer than this.
pub const HEADROOM: f64 = 1.5;
/// A viewer that received over its [`LONG`] latest reports this share of what its path
/// carried when it last congested, with no queue, has a wider path now: growth is fast again.
pub const WIDENED_SHARE: f64 = 1.1;
/// Growth a second after an outage, back to [`RECOVER_SHARE`] of what the
/// path carried before it: a dead zone's end is no new path to probe from the bottom.
pub const RECOVERY_GROWTH: f64 = 3.0;
pub const RECOVER_SHARE: f64 = 0.5;
/// Growth a second from a blind start back to the start rate: twice an outage's, as the
/// start is a tenth where an outage's way back starts from 0.8 of what drains.
pub const START_GROWTH: f64 = 6.0;
/// The queue an outage left drains at what the path carries now: the rate is raised to
/// this share of that at once (never above what it carried before the outage).
pub const DRAIN_SHARE: f64 = 0.8;
/// Arrivals under this share of what the path carried, for [`OUTAGE_US`] on end, are an
/// outage (a cellular dead zone lets a packet through now and then); shorter or shallower
/// dips are congestion as usual.
pub const OUTAGE_SHARE: f64 = 0.1;
pub const OUTAGE_US: u64 = 1_000_000;
/// Before any viewer has reported, the rate is this share of the start (never under the
/// least), for at most [`BLIND_US`] from the first frame.
pub const BLIND_SHARE: f64 = 0.1;
pub const BLIND_US: u64 = 1_000_000;
/// The sender's window over its RTT falling under this share of its last reading, at once
/// and while the queue is under [`DRAIN_QUEUE_MS`], is the sender pausing itself.
pub const RELAY_PAUSE_SHARE: f64 = 0.5;
/// How long from the window's fall the queue is taken for the pause's (PROBE_RTT's fifth of a
/// second, a round trip, and the queue it left draining).
pub const RELAY_PAUSE_US: u64 = 500_000;
/// How long the rate of the last congestion is remembered.
const CONGESTION_MEMORY_US: u64 = 10_000_000;
/// How many of a viewer's latest reports its signals are taken over.
pub const SMOOTH: usize = 3;
/// How many of a viewer's latest arrival rates tell a path that keeps up from one that does
/// not, when a lost packet holds frames up (its retransmission takes a round trip, and the
/// frames behind it wait on the same stream): a report's window then sees nothing, the
/// next a burst.
pub const LONG: usize = 8;
/// A path whose arrivals over [`LONG`] reports are at least this share of what was sent
/// keeps up: a queue seen while frames were held up is loss being recovered, not a path
/// too slow, and cutting the rate would not shorten it.
pub const KEEP_UP_SHARE: f64 = 0.9;
/// A report whose arrivals are under this share of the [`LONG`] mean saw frames held up.
pub const HELD_UP_SHARE: f64 = 0.2;
/// A viewer whose last report is older than this no longer counts.
pub const FORGET_US: u64 = 3_000_000;
/// A viewer's reports are taken at most one per this long on average...
pub const MIN_REPORT_GAP_US: u64 = 20_000;
/// ...and up to this many at once: a path's jitter bunches reports sent 50 ms apart (one held
/// up arrives with the next), and refusing the second of such a pair threw away the burst that
/// follows a hold-up, leaving the controller only the hold-up's silence to cut on.
pub const REPORT_BURST: u64 = 4;
/// At most this many viewers are followed; reports from more are dropped.
pub const MAX_VIEWERS: usize = 64;
/// A frame is skipped while what is on the way to a viewer with a queue takes this much longer
/// to arrive than it took to send. (100 ms also skipped on random loss, where a frame held up
/// behind a retransmission makes a path look slow for a report or two.)
pub const BACKLOG_US: u64 = 200_000;
/// How many frames sent are remembered, to count what is on the way to a viewer.
const SENT_LOG: usize = 1024;
/// At most one forced keyframe in this time.
pub const KEYFRAME_GAP_US: u64 = 1_000_000;
/// The longest a viewer that keeps asking for keyframes waits between the ones forced for it
/// (the gap doubles each time it asks again soon after being answered; the encoder's own
/// keyframes answer it meanwhile).
pub const MAX_KEYFRAME_GAP_US: u64 = 8_000_000;

/// The bounds and the starting point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    pub start_bps: u64,
    pub min_bps: u64,
    pub max_bps: u64,
    /// Viewers are expected to report: start blind, at [`BLIND_SHARE`] of the start rate,
    /// until one does (see the module). Without it the start rate goes out at once.
    pub blind_start: bool,
}

/// What to do with the next frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    pub bitrate_bps: u64,
    /// Make it a keyframe (a viewer asked).
    pub keyframe: bool,
    /// Do not encode it at all (a viewer's queue is deep, or more is on the way to it than
    /// its path carries).
    pub skip: bool,
}

/// Why a report was not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Its sequence number is not newer than the last one taken.
    Old,
    /// It came too soon after the last one taken.
    TooSoon,
    /// Too many viewers are followed already.
    Crowded,
}

/// What the controller did, for the stats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub reports: u64,
    pub refused_old: u64,
    pub refused_too_soon: u64,
    pub refused_crowded: u64,
    pub decreases: u64,
    pub keyframes_asked: u64,
    pub keyframes_forced: u64,
    /// Requests from a viewer asked again too soon after one was forced for it (a path that
    /// keeps losing pictures): left to the encoder's own keyframes, or a later one.
    pub keyframes_deferred: u64,
    pub frames_skipped: u64,
    /// Reports that named a frame sent and remembered, and ones that named another.
    pub newest_known: u64,
    pub newest_unknown: u64,
    /// Viewers' outages (arrivals under [`OUTAGE_SHARE`] of what their path carried, for
    /// [`OUTAGE_US`] or more), each recovered from as the module says.
    pub outages: u64,
    /// Falls of a sender's window taken for it pausing itself (see the module): the queue
    /// each left was neither cut for nor grown into.
    pub relay_pauses: u64,
}

#[derive(Clone, Debug)]
struct Viewer {
    seq: u32,
    last_us: u64,
    /// When its reports are due again at the mean rate [`MIN_REPORT_GAP_US`] allows: a report
    /// more than [`REPORT_BURST`] − 1 gaps ahead of it is refused.
    reports_due_us: u64,
    estimate: f64,
    last_decrease_us: Option<u64>,
    last_growth_us: u64,
    /// The rate at which the path last filled, and when.
    congested: Option<(f64, u64)>,
    /// The queue the viewer's latest reports agree on (their shallowest), ms.
    queue_ms: u16,
    /// The [`LONG`] latest reports' queues and arrival rates (bit/s), oldest first; the
    /// signals are taken over the last [`SMOOTH`] ([`Viewer::smooth`]).
    recent: std::collections::VecDeque<(u16, f64)>,
    /// Nothing has arrived since the last cut: an outage, which one cut answers.
    starved: bool,
    /// The most that arrived (over [`SMOOTH`] reports) with no queue standing, and when;
    /// kept through an outage.
    carried: Option<(f64, u64)>,
    /// Since when arrivals have been under [`OUTAGE_SHARE`] of `carried`.
    scarce_since: Option<u64>,
    /// An outage cut the rate and it has not yet grown back to [`RECOVER_SHARE`] of
    /// `carried`, nor found the path full on the way.
    recovering: bool,
    /// It began under the start rate (the blind start) and has neither reached it nor
    /// found the path full on the way.
    starting: bool,
    /// All bits sent up to the newest frame that reached the viewer, and when that frame
    /// was sent, when known.
    delivered: Option<(u64, u64)>,
    /// The sender's window over its RTT, its latest reading (bit/s; 0 unknown).
    window_bps: f64,
    /// When the sender last paused itself (its window fell at once).
    relay_paused_at: Option<u64>,
    /// The sender's window is still opening (see [`Viewer::opening`]).
    opening: bool,
    /// It asks for a keyframe and may have one forced for it.
    wants_keyframe: bool,
    /// When a keyframe was last forced for it, and how long it must wait for the next one.
    answered_us: Option<u64>,
    keyframe_gap_us: u64,
}

#[derive(Clone, Debug)]
pub struct RateControl {
    config: Config,
    viewers: BTreeMap<u64, Viewer>,
    /// The rate while viewers last reported: held when none does (a viewer that redials
    /// after an outage goes on from there, not from the start).
    held: f64,
    last_forced_us: Option<u64>,
    /// What the publisher's own connection allows, when it is below what is sent.
    send_cap: Option<f64>,
    /// The encoder's output: a window's start and bytes, and the last window's rate.
    sent_window: Option<(u64, u64)>,
    sent_bps: Option<f64>,
    skip_next: bool,
    /// While a queue is deep: what may still be sent (bits), and when it was last topped up.
    deep_budget: Option<(f64, u64)>,
    /// When the last frame not skipped was handed out.
    last_frame_us: Option<u64>,
    /// When the first frame was asked about, and whether any viewer has reported since: the
    /// blind start.
    first_frame_us: Option<u64>,
    heard: bool,
    /// All bits sent, and for each recent frame (by its timestamp, mod 2^32) the total after
    /// it and when it was sent.
    sent_bits: u64,
    sent_log: std::collections::VecDeque<(u32, u64, u64)>,
    counters: Counters,
}

impl RateControl {
    pub fn new(config: Config) -> Self {
        let min_bps = config.min_bps.max(1);
        let max_bps = config.max_bps.max(min_bps);
        Self {
            config: Config {
                start_bps: config.start_bps.clamp(min_bps, max_bps),
                min_bps,
                max_bps,
                blind_start: config.blind_start,
            },
            viewers: BTreeMap::new(),
            held: config.start_bps.clamp(min_bps, max_bps) as f64,
            last_forced_us: None,
            send_cap: None,
            sent_window: None,
            sent_bps: None,
            skip_next: false,
            deep_budget: None,
            last_frame_us: None,
            first_frame_us: None,
            heard: false,
            sent_bits: 0,
            sent_log: std::collections::VecDeque::with_capacity(SENT_LOG),
            counters: Counters::default(),
        }
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Viewers whose reports count now.
    pub fn viewers(&self, now_us: u64) -> usize {
        self.fresh(now_us).count()
    }

    /// The deepest queue the viewers that count reported last, ms.
    pub fn worst_queue_ms(&self, now_us: u64) -> Option<u16> {
        self.fresh(now_us).map(|v| v.queue_ms).max()
    }

    fn fresh(&self, now_us: u64) -> impl Iterator<Item = &Viewer> {
        self.viewers
            .values()
            .filter(move |v| now_us.saturating_sub(v.last_us) <= FORGET_US)
    }

    /// A report from `viewer` (a key of the caller's: one per viewer that counts).
    pub fn report(&mut self, now_us: u64, viewer: u64, report: &Report) -> Result<(), Refused> {
        let refused = self.take(now_us, viewer, report);
        match refused {
            Ok(()) => self.counters.reports += 1,
            Err(Refused::Old) => self.counters.refused_old += 1,
            Err(Refused::TooSoon) => self.counters.refused_too_soon += 1,
            Err(Refused::Crowded) => self.counters.refused_crowded += 1,
        }
        refused
    }

    fn take(&mut self, now_us: u64, key: u64, report: &Report) -> Result<(), Refused> {
        let new = !self.viewers.contains_key(&key);
        if new {
            // Make room by forgetting viewers gone quiet, never by dropping one that reports.
            if self.viewers.len() >= MAX_VIEWERS {
                self.viewers
                    .retain(|_, v| now_us.saturating_sub(v.last_us) <= FORGET_US);
            }
            if self.viewers.len() >= MAX_VIEWERS {
                return Err(Refused::Crowded);
            }
            let start = self.target(now_us) as f64;
            // The first to report in a blind start grows to the start rate as after an outage.
            let starting = self.blind(now_us) && start < self.config.start_bps as f64;
            self.viewers.insert(
                key,
                Viewer {
                    seq: report.seq.wrapping_sub(1),
                    last_us: now_us,
                    reports_due_us: now_us,
                    estimate: start,
                    last_decrease_us: None,
                    last_growth_us: now_us,
                    congested: None,
                    queue_ms: 0,
                    recent: std::collections::VecDeque::with_capacity(LONG),
                    starved: false,
                    carried: None,
                    scarce_since: None,
                    recovering: false,
                    starting,
                    delivered: None,
                    window_bps: 0.0,
                    relay_paused_at: None,
                    opening: true,
                    wants_keyframe: false,
                    answered_us: None,
                    keyframe_gap_us: KEYFRAME_GAP_US,
                },
            );
        }
        let config = self.config;
        let sending = self.sent_bps;
        let Some(viewer) = self.viewers.get_mut(&key) else {
            return Err(Refused::Crowded);
        };
        // Sequence numbers wrap: newer means less than half the space ahead.
        let ahead = report.seq.wrapping_sub(viewer.seq);
        if ahead == 0 || ahead > u32::MAX / 2 {
            return Err(Refused::Old);
        }
        if viewer.reports_due_us > now_us + (REPORT_BURST - 1) * MIN_REPORT_GAP_US {
            return Err(Refused::TooSoon);
        }
        viewer.reports_due_us = viewer.reports_due_us.max(now_us) + MIN_REPORT_GAP_US;
        viewer.seq = report.seq;
        viewer.last_us = now_us;
        self.heard = true;
        // A viewer asks in every report until a keyframe reaches it: its latest report is
        // whether it still needs one. One on a path that keeps losing pictures does not make
        // every viewer's stream a keyframe a second: its own requests wait longer each time.
        let soon = viewer
            .answered_us
            .is_some_and(|at| now_us.saturating_sub(at) < viewer.keyframe_gap_us);
        viewer.wants_keyframe = report.keyframe && !soon;
        if report.keyframe {
            self.counters.keyframes_asked += 1;
            self.counters.keyframes_deferred += u64::from(soon);
        }
        let (recovering, paused_at) = (viewer.recovering, viewer.relay_paused_at);
        if viewer.update(now_us, report, config, sending) {
            self.counters.decreases += 1;
        }
        if viewer.recovering && !recovering {
            self.counters.outages += 1;
        }
        if viewer.relay_paused_at != paused_at {
            self.counters.relay_pauses += 1;
        }
        // A frame no longer remembered (or never sent) says nothing. Looked up only for a
        // report taken: refused ones cost no search.
        viewer.delivered = report.newest.and_then(|ts| {
            let at = self.sent_log.iter().rposition(|(sent, ..)| *sent == ts)?;
            let (_, bits, sent_us) = self.sent_log[at];
            Some((bits, sent_us))
        });
        match (report.newest, viewer.delivered) {
            (Some(_), Some(_)) => self.counters.newest_known += 1,
            (Some(_), None) => self.counters.newest_unknown += 1,
            (None, _) => {}
        }
        Ok(())
    }

    /// A viewer left: its reports no longer count.
    pub fn forget(&mut self, viewer: u64) {
        self.viewers.remove(&viewer);
    }

    /// The publisher's connection's estimate of its own path (None: unknown).
    pub fn send_estimate(&mut self, bps: Option<u64>) {
        self.send_cap = match (bps, self.sent_bps) {
            // Only an estimate below what is already sent says something: the path took
            // less than it was given.
            (Some(bps), Some(sent)) if (bps as f64) < 0.8 * sent => Some(0.9 * bps as f64),
            _ => None,
        };
    }

    /// The encoder put out `bytes` at `now_us`, for the frame with timestamp `ts_us` (on the
    /// track's timeline, as viewers name it; None: viewers cannot name it).
    pub fn sent(&mut self, now_us: u64, ts_us: Option<u64>, bytes: usize) {
        self.sent_bits += bytes as u64 * 8;
        if let Some(ts) = ts_us {
            if self.sent_log.len() == SENT_LOG {
                self.sent_log.pop_front();
            }
            self.sent_log.push_back((ts as u32, self.sent_bits, now_us));
        }
        if let Some((budget, _)) = &mut self.deep_budget {
            *budget -= bytes as f64 * 8.0;
        }
        let (start, total) = self.sent_window.get_or_insert((now_us, 0));
        *total += bytes as u64;
        let elapsed = now_us.saturating_sub(*start);
        if elapsed >= 500_000 {
            self.sent_bps = Some(*total as f64 * 8.0 * 1e6 / elapsed as f64);
            self.sent_window = Some((now_us, 0));
        }
    }

    /// The encoder made a keyframe (asked for or not): a viewer waiting for one has it.
    pub fn keyframe_sent(&mut self) {
        for viewer in self.viewers.values_mut() {
            viewer.wants_keyframe = false;
        }
    }

    /// The bitrate to encode at now.
    pub fn target(&self, now_us: u64) -> u64 {
        let viewers = self.fresh(now_us).map(Viewer::rate).reduce(f64::min);
        let mut target = viewers.unwrap_or(self.held);
        if let Some(cap) = self.send_cap {
            target = target.min(cap);
        }
        if self.blind(now_us) {
            target = target.min(self.config.start_bps as f64 * BLIND_SHARE);
        }
        (target as u64).clamp(self.config.min_bps, self.config.max_bps)
    }

    /// No viewer has reported yet, where they are expected to, and the blind start is not
    /// over.
    fn blind(&self, now_us: u64) -> bool {
        self.config.blind_start
            && !self.heard
            && self
                .first_frame_us
                .is_none_or(|at| now_us.saturating_sub(at) < BLIND_US)
    }

    /// What to do with the frame about to be encoded at `now_us`.
    pub fn frame(&mut self, now_us: u64) -> Frame {
        self.first_frame_us.get_or_insert(now_us);
        // Whether all are cut off; what reaches the deep viewers that receive least, bit/s. A
        // silent viewer's last reports no longer describe its path: only those reporting count.
        let silent = |v: &Viewer| now_us.saturating_sub(v.last_us) > SILENT_US;
        let cut_off = self.fresh(now_us).next().is_some() && self.fresh(now_us).all(silent);
        let reporting = || self.fresh(now_us).filter(|v| !silent(v));
        let arriving = reporting()
            .filter(|v| v.queue_ms > DRAIN_QUEUE_MS && self.still_queued(v, now_us))
            .map(Viewer::received)
            .reduce(f64::min);
        let sent_bits = self.sent_bits;
        let backlogged =
            reporting().any(|v| v.queue_showing() && v.backlog_us(now_us, sent_bits) > BACKLOG_US);
        let overdue = self
            .last_frame_us
            .is_some_and(|at| now_us.saturating_sub(at) >= DEEP_FRAME_GAP_US);
        let deep = match arriving {
            Some(arriving) => {
                // Every other frame, starting with the first; and none the budget cannot pay
                // for.
                let allowed = arriving * DEEP_SHARE;
                let (budget, at) = self.deep_budget.get_or_insert((0.0, now_us));
                let elapsed_s = now_us.saturating_sub(*at) as f64 / 1e6;
                *budget = (*budget + allowed * elapsed_s).min(allowed * DEEP_SAVED_S);
                *at = now_us;
                !self.skip_next || *budget < 0.0
            }
            None => {
                self.deep_budget = None;
                false
            }
        };
        // Unless none has gone for too long.
        let skip = cut_off || ((deep || backlogged) && !overdue);
        self.skip_next = skip;
        if !skip {
            self.last_frame_us = Some(now_us);
        }
        let keyframe = !skip
            && self.fresh(now_us).any(|v| v.wants_keyframe)
            && self
                .last_forced_us
                .is_none_or(|at| now_us.saturating_sub(at) >= KEYFRAME_GAP_US);
        if keyframe {
            self.last_forced_us = Some(now_us);
            self.counters.keyframes_forced += 1;
            for viewer in self.viewers.values_mut().filter(|v| v.wants_keyframe) {
                viewer.answered(now_us);
            }
        }
        if skip {
            self.counters.frames_skipped += 1;
        }
        if let Some(rate) = self.fresh(now_us).map(Viewer::rate).reduce(f64::min) {
            self.held = rate;
        }
        Frame {
            bitrate_bps: self.target(now_us),
            keyframe,
            skip,
        }
    }

    /// Whether the queue a viewer's reports agree on still holds frames: the oldest frame
    /// sent after the newest one it received has been on the way over [`DRAIN_QUEUE_MS`]
    /// (true when its reports name no frame, so the queue alone must tell). A queue that a
    /// pause of the source made (nothing arrived, the delay grew by the wait) holds none.
    fn still_queued(&self, viewer: &Viewer, now_us: u64) -> bool {
        let Some((delivered, _)) = viewer.delivered else {
            return true;
        };
        let next = self
            .sent_log
            .partition_point(|(_, bits, _)| *bits <= delivered);
        self.sent_log.get(next).is_some_and(|(_, _, sent_us)| {
            now_us.saturating_sub(*sent_us) > u64::from(DRAIN_QUEUE_MS) * 1000
        })
    }
}

impl Viewer {
    /// A keyframe was forced for it at `now_us`: its next waits twice as long when it asked
    /// again within twice its gap of the last (a path that keeps losing pictures), and one
    /// gap again after a quiet while.
    fn answered(&mut self, now_us: u64) {
        let again = self
            .answered_us
            .is_some_and(|at| now_us.saturating_sub(at) < 2 * self.keyframe_gap_us);
        self.keyframe_gap_us = match again {
            true => (2 * self.keyframe_gap_us).min(MAX_KEYFRAME_GAP_US),
            false => KEYFRAME_GAP_US,
        };
        self.answered_us = Some(now_us);
        self.wants_keyframe = false;
    }

    /// How much longer what is on the way to the viewer takes to arrive than it took to send,
    /// µs (0 when unknown or when the path keeps up): what was sent since the newest frame it
    /// received went out over `now_us − then`, and arrives at the best rate of its latest
    /// reports (the best: a report whose window a held-up frame left empty is no slow path).
    fn backlog_us(&self, now_us: u64, sent_bits: u64) -> u64 {
        let Some((delivered, then)) = self.delivered else {
            return 0;
        };
        let rate = self.smooth().map(|(_, rate)| *rate).fold(0.0, f64::max);
        if rate <= 0.0 {
            return 0;
        }
        let on_the_way = sent_bits.saturating_sub(delivered) as f64 / rate * 1e6;
        (on_the_way as u64).saturating_sub(now_us.saturating_sub(then))
    }

    /// The latest report saw a queue building.
    fn queue_showing(&self) -> bool {
        self.recent.back().is_some_and(|(q, _)| *q > LOW_QUEUE_MS)
    }

    /// The last [`SMOOTH`] reports (fewer at first), oldest first.
    fn smooth(&self) -> impl Iterator<Item = &(u16, f64)> {
        self.recent
            .iter()
            .skip(self.recent.len().saturating_sub(SMOOTH))
    }

    /// The last [`SMOOTH`] reports agree on a queue deeper than [`RISING_QUEUE_MS`] that
    /// rose in each of them.
    fn rising(&self) -> bool {
        let rose = self
            .smooth()
            .zip(self.smooth().skip(1))
            .all(|((before, _), (after, _))| after > before);
        self.agreed() && self.queue_ms > RISING_QUEUE_MS && rose
    }

    /// There are [`SMOOTH`] reports to agree.
    fn agreed(&self) -> bool {
        self.recent.len() >= SMOOTH
    }

    /// What reached the viewer over its last [`SMOOTH`] reports, bit/s.
    fn received(&self) -> f64 {
        let rates = self.smooth().map(|(_, rate)| rate);
        rates.sum::<f64>() / self.recent.len().clamp(1, SMOOTH) as f64
    }

    /// What reached the viewer over its [`LONG`] latest reports, bit/s, once there are as
    /// many.
    fn received_long(&self) -> Option<f64> {
        (self.recent.len() == LONG)
            .then(|| self.recent.iter().map(|(_, rate)| rate).sum::<f64>() / LONG as f64)
    }

    /// Whether the sender to the viewer is still opening its window (QUIC's slow start, which
    /// a path of long round trips takes a second or more to leave), from `report`'s reading
    /// of it: every report so far read it, every reading rose or held, and the latest is under
    /// the estimate. What is sent over it waits at the sender, a queue that says nothing of
    /// the path, and what arrives is its window, not the path's rate. (A sender that did not
    /// tell its window from the first report on is never taken to be opening: a reading that
    /// comes late is of a window long open.) Called before [`Viewer::relay_paused`].
    fn opening(&mut self, report: &Report) -> bool {
        let window = f64::from(report.path_kbps) * 1000.0;
        if window <= 0.0 || window < self.window_bps || window >= self.estimate {
            self.opening = false;
        }
        self.opening
    }

    /// The rate it can take now: its estimate, or while the sender's window opens, no more
    /// than that window carries.
    fn rate(&self) -> f64 {
        match self.opening && self.window_bps > 0.0 {
            true => self.estimate.min(self.window_bps),
            false => self.estimate,
        }
    }

    /// Whether the sender to the viewer paused itself (see the module), from `report`'s
    /// reading of its window.
    fn relay_paused(&mut self, now_us: u64, report: &Report) -> bool {
        let window = f64::from(report.path_kbps) * 1000.0;
        if window > 0.0 {
            if window < RELAY_PAUSE_SHARE * self.window_bps && report.queue_ms < DRAIN_QUEUE_MS {
                self.relay_paused_at = Some(now_us);
            }
            self.window_bps = window;
        }
        self.relay_paused_at
            .is_some_and(|at| now_us.saturating_sub(at) < RELAY_PAUSE_US)
    }

    /// Move the estimate for a report taken at `now_us`; true when it fell.
    fn update(&mut self, now_us: u64, report: &Report, config: Config, sent: Option<f64>) -> bool {
        let (min, max) = (config.min_bps as f64, config.max_bps as f64);
        let latest = f64::from(report.recv_kbps) * 1000.0;
        // The first arrivals after an outage: its silent reports say nothing of the path now.
        let silent = self.recent.back().is_some_and(|(_, rate)| *rate <= 0.0);
        if self.recovering && latest > 0.0 && silent {
            self.recent.clear();
        }
        if self.recent.len() == LONG {
            self.recent.pop_front();
        }
        self.recent.push_back((report.queue_ms, latest));
        // A queue is only taken as standing once enough reports agree on it.
        self.queue_ms = match self.agreed() {
            true => self.smooth().map(|(q, _)| *q).min().unwrap_or(0),
            false => 0,
        };
        let received = self.received();
        // While the sender's window opens, its queue is no congestion (the rate follows the
        // window: [`Viewer::rate`]).
        let opening = self.opening(report);
        let relay_paused = self.relay_paused(now_us, report);
        if self
            .congested
            .is_some_and(|(_, at)| now_us.saturating_sub(at) > CONGESTION_MEMORY_US)
        {
            self.congested = None;
        }
        if latest > 0.0 {
            self.starved = false;
        }
        if self
            .carried
            .is_some_and(|(rate, _)| received < OUTAGE_SHARE * rate)
        {
            let since = *self.scarce_since.get_or_insert(now_us);
            if now_us.saturating_sub(since) >= OUTAGE_US {
                self.recovering = true;
            }
        } else {
            self.scarce_since = None;
        }
        // Right after an outage, stalls and skipped frames are its own, and so is a queue
        // that drains (more arrives than is sent); only one that stands counts.
        let stalling = !self.recovering && (report.stalled || report.skipped > 0);
        let draining = self.recovering && sent.is_some_and(|sent| received > sent);
        // A queue seen while frames were held up, on a path that carried what was sent, is
        // a lost packet's recovery: a lower rate would not shorten it (fewer packets lose
        // fewer, but the cut would cost every frame its quality). Held up: one of the latest
        // reports saw next to nothing arrive while the path carried plenty around it.
        let long = self.received_long();
        let held_up =
            long.is_some_and(|long| self.smooth().any(|(_, rate)| *rate < HELD_UP_SHARE * long));
        let keeping_up = held_up
            && matches!((long, sent), (Some(long), Some(sent)) if long >= KEEP_UP_SHARE * sent);
        let standing = self.queue_ms > HIGH_QUEUE_MS || (self.rising() && !held_up);
        let congested =
            (standing && !draining && !keeping_up && !relay_paused && !opening) || stalling;
        if draining
            && self.agreed()
            && let Some((carried, _)) = self.carried
        {
            // What drains is what the path carries: growth slows near it, as after a cut.
            self.congested = Some((received, now_us));
            self.estimate = self
                .estimate
                .max((DRAIN_SHARE * received).min(carried))
                .clamp(min, max);
        }
        let calm = !congested && report.queue_ms < LOW_QUEUE_MS && latest > 0.0;
        // More arrives than the path carried at its last congestion, and nothing queues: it
        // widened (a step up), and growing slowly near that old rate would only waste it.
        let widened = self.congested.is_some_and(|(rate, _)| {
            long.is_some_and(|long| long > WIDENED_SHARE * rate) && self.queue_ms < LOW_QUEUE_MS
        });
        if calm && widened {
            self.congested = None;
        }
        let remembered = self.carried.is_some_and(|(rate, at)| {
            rate > received
                && (self.recovering || now_us.saturating_sub(at) <= CONGESTION_MEMORY_US)
        });
        if calm && self.agreed() && !remembered {
            self.carried = Some((received, now_us));
        }
        if congested {
            // An outage is answered by one cut (and skipped frames while the queue it leaves
            // is deep), not by halving for as long as it lasts.
            if latest <= 0.0 && self.starved {
                return false;
            }
            let ready = self
                .last_decrease_us
                .is_none_or(|at| now_us.saturating_sub(at) >= DECREASE_GAP_US);
            if !ready {
                return false;
            }
            // What arrived is what the path carries while a queue stands: go a little under
            // it, so the queue drains. Not below it again while it drains (cuts would
            // compound); nothing arriving at all (a stall) halves. Where frames were held
            // up, the latest few reports' burst and silence say less than the longer run.
            let queue_s = f64::from(self.queue_ms.max(report.queue_ms)) / 1000.0;
            let factor = (1.0 - queue_s / (DRAIN_US as f64 / 1e6)).clamp(0.3, 0.85);
            let carries = match (held_up, long) {
                (true, Some(long)) => received.max(long),
                _ => received,
            };
            let (base, cut) = match carries > 0.0 {
                true => (carries, carries * factor),
                false => (self.estimate, self.estimate * 0.5),
            };
            if cut >= self.estimate {
                return false;
            }
            // Data arriving and still too much: the path after the outage (or the blind
            // start) is found.
            if latest > 0.0 && !report.stalled {
                self.recovering = false;
                self.starting = false;
            }
            self.congested = Some((base, now_us));
            self.estimate = cut.clamp(min, max);
            self.starved = latest <= 0.0;
            self.last_decrease_us = Some(now_us);
            self.last_growth_us = now_us;
            return true;
        }
        let holding = self
            .last_decrease_us
            .is_some_and(|at| now_us.saturating_sub(at) < HOLD_US);
        // Growing while far less arrives than is sent would only widen the gap; growing far
        // above what the encoder makes of it only lets a keyframe burst, and hands a picture
        // that turns complex a rate no report has vouched for. (x264 makes about half its
        // target of simple content at low rates: the bounds leave it room.) A blind start's
        // way back to the start rate is not held to them: what was sent lags the target
        // there by design, and a burst at the start rate is what the user asked for.
        let arrives = received.max(long.unwrap_or(0.0));
        let limited = sent.is_some_and(|sent| received < 0.5 * sent.min(self.estimate))
            || (!self.starting
                && (self.estimate > HEADROOM * arrives
                    || sent.is_some_and(|sent| self.estimate > 3.0 * sent)));
        let elapsed_s = (now_us.saturating_sub(self.last_growth_us) as f64 / 1e6).min(0.5);
        self.last_growth_us = now_us;
        if self.queue_ms >= LOW_QUEUE_MS || holding || limited || relay_paused || opening {
            return false;
        }
        // While the queue an outage left drains, hold.
        if self.recovering && report.queue_ms >= LOW_QUEUE_MS {
            return false;
        }
        let near = self
            .congested
            .is_some_and(|(rate, _)| self.estimate > 0.9 * rate && self.estimate < 1.25 * rate);
        let growth = if self.starting {
            START_GROWTH
        } else if self.recovering {
            RECOVERY_GROWTH
        } else if near {
            SLOW_GROWTH
        } else {
            FAST_GROWTH
        };
        self.estimate = (self.estimate * (1.0 + growth * elapsed_s)).clamp(min, max);
        if self.starting {
            let start = config.start_bps as f64;
            self.starting = self.estimate < start;
            self.estimate = self.estimate.min(start);
        }
        if self
            .carried
            .is_none_or(|(rate, _)| self.estimate >= RECOVER_SHARE * rate)
        {
            self.recovering = false;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1000;
    const MBIT: u64 = 1_000_000;

    fn control() -> RateControl {
        RateControl::new(Config {
            start_bps: 4 * MBIT,
            min_bps: 200_000,
            max_bps: 12 * MBIT,
            blind_start: false,
        })
    }

    /// A simulated path: a bottleneck of `capacity` (bit/s, changing with time) behind an
    /// unbounded queue, the encoder sending exactly the target, a report every 50 ms (as a
    /// viewer sends them) with 30 ms of feedback delay. Returns (time, target, queue ms) every report.
    fn simulate(
        rc: &mut RateControl,
        seconds: u64,
        capacity: impl Fn(u64) -> f64,
    ) -> Vec<(u64, u64, f64)> {
        let mut queue_bits = 0.0f64;
        let mut out = Vec::new();
        let mut seq = 0;
        let tick = 10 * MS;
        let mut window_bits = 0.0;
        let mut history: Vec<(u64, f64)> = Vec::new();
        for step in 0..seconds * 1_000_000 / tick {
            let now = step * tick;
            let frame = rc.frame(now);
            let sent = frame.bitrate_bps as f64 * tick as f64 / 1e6;
            rc.sent(now, None, (sent / 8.0) as usize);
            queue_bits += sent;
            let served = (capacity(now) * tick as f64 / 1e6).min(queue_bits);
            queue_bits -= served;
            window_bits += served;
            history.push((now, queue_bits / capacity(now) * 1000.0));
            let interval = crate::feedback::INTERVAL_US;
            if now.is_multiple_of(interval) && now > 0 {
                // The viewer saw the queue as it was 30 ms ago.
                let seen = history
                    .iter()
                    .rev()
                    .find(|(t, _)| *t <= now - 30 * MS)
                    .map_or(0.0, |(_, q)| *q);
                let report = Report {
                    seq,
                    window_ms: (interval / MS) as u16,
                    recv_kbps: (window_bits / (interval / MS) as f64) as u32,
                    queue_ms: seen as u16,
                    ..Report::default()
                };
                seq += 1;
                window_bits = 0.0;
                rc.report(now, 1, &report).unwrap();
                out.push((now, frame.bitrate_bps, seen));
            }
        }
        out
    }

    #[test]
    fn with_no_viewer_the_rate_is_the_start_rate() {
        let mut rc = control();
        assert_eq!(rc.frame(0).bitrate_bps, 4 * MBIT);
        assert_eq!(rc.viewers(0), 0);
    }

    #[test]
    fn a_path_nobody_has_measured_starts_blind_until_a_viewer_reports() {
        let blind = |blind_start| {
            RateControl::new(Config {
                blind_start,
                ..control().config
            })
        };
        // Viewers expected: a tenth of the start until one reports, the start after
        // BLIND_US without a word (its viewers may never report).
        let mut rc = blind(true);
        assert_eq!(rc.frame(5 * MS).bitrate_bps, 400_000);
        assert_eq!(rc.frame(5 * MS + BLIND_US - MS).bitrate_bps, 400_000);
        assert_eq!(rc.frame(5 * MS + BLIND_US).bitrate_bps, 4 * MBIT);
        assert_eq!(blind(false).frame(0).bitrate_bps, 4 * MBIT);

        // A fast path: from a tenth back to the start within about half a second of
        // reports, then on as usual.
        let mut rc = blind(true);
        let trace = simulate(&mut rc, 3, |_| 8e6);
        let reached = trace.iter().find(|(_, bps, _)| *bps >= 4 * MBIT).unwrap().0;
        assert!(reached <= 700 * MS, "the start rate again at {reached} µs");
        let rising = trace.iter().take_while(|(at, ..)| *at <= reached);
        assert!(rising.clone().zip(rising.skip(1)).all(|(a, b)| b.1 >= a.1));
        assert!(rc.target(3000 * MS) > 4 * MBIT);

        // A path of 0.4 Mbit/s: what was sent before the first report leaves a queue a
        // third of the one a start at 4 Mbit/s leaves, and the rate settles near the path's.
        let deepest = |blind_start| {
            let mut rc = blind(blind_start);
            let trace = simulate(&mut rc, 4, |_| 0.4e6);
            let deepest = trace.iter().map(|(_, _, q)| *q).fold(0.0, f64::max);
            (deepest, rc.target(4000 * MS))
        };
        let ((cautious, settled), (blunt, _)) = (deepest(true), deepest(false));
        assert!(cautious * 3.0 < blunt, "{cautious} ms against {blunt} ms");
        assert!(settled < 600_000, "{settled} bit/s");
    }

    #[test]
    fn a_blind_start_regains_the_start_rate_however_little_the_encoder_makes() {
        // Simple content on a fast path: the encoder makes a quarter of its target, and all
        // of it arrives at once.
        let mut rc = RateControl::new(Config {
            blind_start: true,
            ..control().config
        });
        let (tick, interval) = (10 * MS, crate::feedback::INTERVAL_US);
        let mut reached = None;
        for (seq, now) in (0..300).map(|step| step * tick).enumerate() {
            let frame = rc.frame(now);
            let made = frame.bitrate_bps / 4;
            rc.sent(now, None, (made * tick / 1_000_000 / 8) as usize);
            if now >= 200 * MS && now.is_multiple_of(interval) {
                let report = Report {
                    seq: seq as u32,
                    window_ms: (interval / MS) as u16,
                    recv_kbps: (made / 1000) as u32,
                    ..Report::default()
                };
                rc.report(now, 1, &report).unwrap();
            }
            if frame.bitrate_bps >= 4 * MBIT {
                reached.get_or_insert(now);
            }
        }
        // Back at the start rate within about a second of the first report; past it, what
        // the encoder makes bounds the growth again.
        assert!(reached.is_some_and(|at| at <= 1500 * MS), "{reached:?}");
        assert_eq!(rc.target(3000 * MS), 4 * MBIT);
    }

    #[test]
    fn the_rate_follows_a_step_down_and_back_up_without_a_standing_queue() {
        let mut rc = control();
        let capacity = |now: u64| match now / 1_000_000 {
            0..10 => 8e6,
            10..20 => 2e6,
            _ => 8e6,
        };
        let trace = simulate(&mut rc, 30, capacity);
        let at = |s: f64| trace.iter().find(|(t, ..)| *t as f64 >= s * 1e6).unwrap().1;
        // Up from the start towards 8 Mbit/s, down to under 2 within a second of the step,
        // and back above 90 % of 8 within 3 s of the step up.
        assert!(at(9.9) > 6 * MBIT, "before the step: {}", at(9.9));
        assert!(
            at(11.0) < 2 * MBIT,
            "a second after the step down: {}",
            at(11.0)
        );
        assert!(at(19.9) > MBIT, "on the low link: {}", at(19.9));
        let back = trace
            .iter()
            .find(|(t, rate, _)| *t >= 20_000_000 && *rate as f64 >= 0.9 * 8e6)
            .map(|(t, ..)| (*t - 20_000_000) as f64 / 1e6);
        assert!(
            back.is_some_and(|s| s <= 3.0),
            "back to 90 % after {back:?} s"
        );
        // The queue: the worst of the step down is brief, and it drains.
        let queued = |from: f64, to: f64| {
            trace
                .iter()
                .filter(|(t, ..)| (*t as f64) >= from * 1e6 && (*t as f64) < to * 1e6)
                .map(|(.., q)| *q)
                .fold(0.0, f64::max)
        };
        assert!(queued(12.0, 20.0) < 100.0, "{}", queued(12.0, 20.0));
        assert!(queued(23.0, 30.0) < 100.0, "{}", queued(23.0, 30.0));
    }

    /// A time (µs) and a figure at it.
    type Sample = (u64, u64);

    /// Frame by frame, in 1 ms steps: 60 fps of at most `content_bps` (what the encoder makes
    /// of the picture at best), through a FIFO bottleneck of `capacity` (bit/s, changing
    /// with time) and 20 ms each way, to a viewer whose [`crate::feedback::Meter`] reports
    /// back (naming the newest frame, or not: `named`). Returns (capture µs, delay µs) of
    /// every frame that arrived, and (µs, bit/s) of every frame's target.
    fn play_frames(
        rc: &mut RateControl,
        seconds: u64,
        content_bps: f64,
        named: bool,
        capacity: impl Fn(u64) -> f64,
    ) -> (Vec<Sample>, Vec<Sample>) {
        play_frames_held(rc, seconds, |_| content_bps, named, capacity, |_, _| 0)
    }

    /// As [`play_frames`], with a frame held up on the wire by `held(capture µs, bits)` µs
    /// (a lost packet's retransmission), and the frames behind it on the same stream waiting
    /// for it.
    fn play_frames_held(
        rc: &mut RateControl,
        seconds: u64,
        content_bps: impl Fn(u64) -> f64,
        named: bool,
        capacity: impl Fn(u64) -> f64,
        held: impl Fn(u64, f64) -> u64,
    ) -> (Vec<Sample>, Vec<Sample>) {
        use std::collections::VecDeque;
        let mut meter = crate::feedback::Meter::new();
        // Frames in the bottleneck: (capture, bits left); then on the wire: (arrival, capture, bits).
        let (mut link, mut wire, mut back) = (
            VecDeque::new(),
            VecDeque::<(u64, u64, f64)>::new(),
            VecDeque::new(),
        );
        let (mut arrived, mut targets) = (Vec::new(), Vec::new());
        let frame_us = 16_667;
        for ms in 0..seconds * 1000 {
            let now = ms * MS;
            if now / frame_us != now.saturating_sub(MS) / frame_us || ms == 0 {
                let frame = rc.frame(now);
                targets.push((now, frame.bitrate_bps));
                if !frame.skip {
                    let bits = (frame.bitrate_bps as f64).min(content_bps(now)) / 60.0;
                    link.push_back((now, bits, bits));
                    rc.sent(now, Some(now), (bits / 8.0) as usize);
                }
            }
            let mut room = capacity(now) / 1000.0;
            while let Some((captured, left, bits)) = link.front_mut() {
                let served = left.min(room);
                *left -= served;
                room -= served;
                if *left > 0.0 {
                    break;
                }
                let behind = wire.back().map_or(0, |(at, ..)| *at);
                wire.push_back((
                    (now + 20 * MS + held(*captured, *bits)).max(behind),
                    *captured,
                    *bits,
                ));
                link.pop_front();
            }
            while wire.front().is_some_and(|(at, ..)| *at <= now) {
                let (at, captured, bits) = wire.pop_front().unwrap();
                meter.frame(at, captured, Some(captured), (bits / 8.0) as usize, false);
                arrived.push((captured, at - captured));
            }
            if let Some(mut report) = meter.report(now) {
                if !named {
                    report.newest = None;
                }
                back.push_back((now + 20 * MS, report));
            }
            while back.front().is_some_and(|(at, _)| *at <= now) {
                let (_, report) = back.pop_front().unwrap();
                rc.report(now, 1, &report).unwrap();
            }
        }
        (arrived, targets)
    }

    /// A source that paused and sends again is not skipped while the viewer's reports still
    /// tell of the pause (nothing arrived, the delay grown by the wait): a rule that takes
    /// reports that saw nothing arrive for a dead path must tell the two apart.
    #[test]
    fn a_source_that_paused_is_no_dead_path() {
        let mut rc = control();
        let report = |seq: u32, recv_kbps, queue_ms, newest: u64| Report {
            seq,
            window_ms: 50,
            recv_kbps,
            queue_ms,
            newest: Some(newest as u32),
            ..Report::default()
        };
        let mut seq = 0;
        // A second of frames every 20 ms, each arriving 20 ms on; a report every 50 ms.
        for ms in (0..1000).step_by(10) {
            let now = ms * MS;
            if ms % 20 == 0 {
                assert!(!rc.frame(now).skip, "skipped at {ms} ms on a calm path");
                rc.sent(now, Some(now), 10_000);
            }
            if ms % 50 == 0 && ms >= 40 {
                let newest = (ms - 20) / 20 * 20 * MS;
                rc.report(now, 1, &report(seq, 4000, 5, newest)).unwrap();
                seq += 1;
            }
        }
        // 200 ms with nothing to send: the reports see nothing arrive after the last frame
        // (980 ms), and the delay they measure grows by the wait.
        let newest = 980 * MS;
        for ms in (1050..=1200).step_by(50) {
            rc.report(ms * MS, 1, &report(seq, 0, (ms - 975) as u16, newest))
                .unwrap();
            seq += 1;
        }
        // Frames again from 1180 ms: none is skipped before a report could have seen the
        // first arrive (the one at 1250 ms does).
        for ms in (1180..1300).step_by(20) {
            let now = ms * MS;
            assert!(!rc.frame(now).skip, "skipped at {ms} ms after a pause");
            rc.sent(now, Some(now), 10_000);
            if ms == 1240 {
                rc.report(1250 * MS, 1, &report(seq, 1600, 5, 1200 * MS))
                    .unwrap();
                seq += 1;
            }
        }
    }

    #[test]
    fn a_named_frame_is_looked_up_only_for_a_report_taken() {
        let mut rc = control();
        rc.sent(0, Some(7), 1000);
        let named = |seq, newest| Report {
            seq,
            window_ms: 50,
            newest: Some(newest),
            ..Report::default()
        };
        rc.report(10 * MS, 1, &named(0, 7)).unwrap();
        assert_eq!(rc.report(11 * MS, 1, &named(0, 7)), Err(Refused::Old));
        let burst = REPORT_BURST as u32;
        for seq in 1..burst {
            let unnamed = Report {
                newest: None,
                ..named(seq, 0)
            };
            rc.report(11 * MS, 1, &unnamed).unwrap();
        }
        assert_eq!(
            rc.report(12 * MS, 1, &named(burst, 9)),
            Err(Refused::TooSoon)
        );
        rc.report(200 * MS, 1, &named(burst + 1, 9)).unwrap();
        let counters = rc.counters();
        assert_eq!((counters.newest_known, counters.newest_unknown), (1, 1));
    }

    #[test]
    fn naming_the_newest_frame_cuts_the_late_frames_of_a_step_down_by_a_third() {
        let step = |now: u64| if now < 8_000_000 { 8e6 } else { 2e6 };
        let late = |named: bool| {
            let mut rc = control();
            let (arrived, _) = play_frames(&mut rc, 12, 7e6, named, step);
            let before = arrived.iter().filter(|(at, _)| *at < 7_900_000);
            let calm = before.map(|(_, delay)| *delay).max().unwrap();
            // Salsify's frame delay: each frame captured after the step waits until it, or a
            // newer frame, arrives (the link is a FIFO: arrivals come in capture order).
            let late = (8_000_000 / 16_667..11_000_000 / 16_667)
                .map(|n| n * 16_667)
                .filter(|captured| {
                    let next = arrived.iter().find(|(at, _)| at >= captured);
                    next.is_none_or(|(at, delay)| at + delay - captured > 300 * MS)
                })
                .count();
            (calm, late, rc.counters())
        };
        let (calm, unnamed, _) = late(false);
        let (calm_named, named, counters) = late(true);
        // On a steady path nothing is skipped and nothing waits either way.
        assert!(
            calm < 100 * MS && calm_named < 100 * MS,
            "{calm} {calm_named}"
        );
        assert!(counters.frames_skipped > 0);
        // At the step down, what is on the way shows before a queue stands: fewer frames
        // are sent into it, and fewer come late (33 against 59 here).
        assert!(
            named * 3 < unnamed * 2,
            "frames over 300 ms late after the step: {named} named, {unnamed} not"
        );
    }

    #[test]
    fn an_outage_costs_one_cut_and_a_viewer_that_redials_goes_on_from_the_held_rate() {
        let mut rc = control();
        let stalled = |seq, at_ms: u64| Report {
            seq,
            window_ms: 50,
            recv_kbps: 0,
            queue_ms: at_ms as u16,
            stalled: true,
            ..Report::default()
        };
        for (seq, ms) in (300..2000).step_by(50).enumerate() {
            rc.report(ms * MS, 1, &stalled(seq as u32, ms)).unwrap();
            rc.frame(ms * MS);
        }
        assert_eq!(
            rc.target(2000 * MS),
            2 * MBIT,
            "one halving for the whole outage"
        );
        // The viewer's session dropped: it comes back as a new viewer.
        rc.forget(1);
        assert_eq!(rc.target(2100 * MS), 2 * MBIT);
        rc.report(
            2200 * MS,
            2,
            &Report {
                window_ms: 50,
                queue_ms: 5,
                recv_kbps: 1900,
                ..Report::default()
            },
        )
        .unwrap();
        assert!(rc.target(2200 * MS) <= 2 * MBIT + MBIT / 10);
    }

    #[test]
    fn after_an_outage_the_rate_is_soon_back_near_what_the_path_carried_before() {
        // 5 Mbit/s, a trickle, nothing for 2.5 s (a dead zone), then 5 Mbit/s again.
        let outage = |now: u64| match now / 100_000 {
            80..85 => 0.3e6,
            85..110 => 0.0,
            _ => 5e6,
        };
        let mut rc = control();
        let (arrived, targets) = play_frames(&mut rc, 20, 7e6, true, outage);
        assert_eq!(rc.counters().outages, 1);
        let before = targets
            .iter()
            .filter(|(at, _)| (6_000_000..8_000_000).contains(at))
            .map(|(_, bps)| *bps)
            .min()
            .unwrap();
        assert!(before > 3 * MBIT, "before the outage: {before}");
        let back = targets
            .iter()
            .find(|(at, bps)| *at >= 11_000_000 && *bps * 10 >= before * 8)
            .map(|(at, _)| (at - 11_000_000) as f64 / 1e6);
        assert!(
            back.is_some_and(|s| s <= 2.0),
            "back to 80 % of {before} bit/s {back:?} s after the outage"
        );
        // Without a standing queue afterwards.
        let late = arrived
            .iter()
            .filter(|(captured, delay)| *captured >= 14_000_000 && *delay > 150 * MS)
            .count();
        assert_eq!(
            late, 0,
            "frames over 150 ms late, from 3 s after the outage"
        );
    }

    #[test]
    fn frames_held_up_by_lost_packets_on_a_path_that_keeps_up_keep_their_rate() {
        // 5 % of packets lost: a frame of n packets waits for a retransmission (a round
        // trip and a bit) with odds 1 − 0.95ⁿ, and holds up the frames behind it.
        let lossy = |captured: u64, bits: f64| {
            let frame = captured / 16_667;
            let draw =
                (frame.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) as f64 / (1u64 << 53) as f64;
            let packets = (bits / 9600.0).ceil();
            let odds = 1.0 - 0.95f64.powf(packets);
            // One in five of those loses the retransmission too, or waits for a probe.
            match draw {
                d if d < odds / 5.0 => 160 * MS,
                d if d < odds => 70 * MS,
                _ => 0,
            }
        };
        let mut rc = control();
        let (arrived, targets) = play_frames_held(&mut rc, 10, |_| 5e6, true, |_| 10e6, lossy);
        let lowest = targets.iter().map(|(_, bps)| *bps).min().unwrap();
        let cuts = rc.counters().decreases;

        // The same hold-ups on a path that does not keep up: cut, under what it carries.
        // (Too far under, so far: a third of it, as the hold-ups still look like queues.)
        let mut rc = control();
        let (_, targets) = play_frames_held(&mut rc, 10, |_| 5e6, true, |_| 2.5e6, lossy);
        let late: Vec<u64> = targets
            .iter()
            .filter(|(at, _)| *at >= 7_000_000)
            .map(|(_, bps)| *bps)
            .collect();
        let mean = late.iter().sum::<u64>() / late.len() as u64;
        assert!(lowest >= 4 * MBIT, "cut to {lowest} bit/s, {cuts} times");
        assert!(arrived.len() > 580, "{} frames arrived", arrived.len());
        assert!(
            (500_000..=2_750_000).contains(&mean),
            "{mean} bit/s over the last 3 s"
        );
    }

    /// A simple picture (the encoder makes 3 Mbit/s of it whatever its target) on a path of
    /// 8: the estimate does not climb to the bound on the encoder's account, so when the
    /// picture turns complex (a scene cut in a game) the encoder is not handed more than the
    /// path carries before a report could say so.
    #[test]
    fn a_picture_that_turns_complex_is_not_handed_more_than_arrived() {
        let mut rc = control();
        let content = |now: u64| if now < 10_000_000 { 3e6 } else { 12e6 };
        let (arrived, targets) = play_frames_held(&mut rc, 14, content, true, |_| 8e6, |_, _| 0);
        let target_at = |at: u64| targets.iter().rev().find(|(t, _)| *t <= at).unwrap().1;
        assert!(
            target_at(9_990_000) <= 2 * 3 * MBIT,
            "{} bit/s for a picture of 3",
            target_at(9_990_000)
        );
        // After the cut it grows into the path as the encoder fills it.
        assert!(
            target_at(13_990_000) > 6 * MBIT,
            "{}",
            target_at(13_990_000)
        );
        // The frames of the half second after the cut cross the path at once: the rate
        // they were handed was under it (with the old bound, three times what the encoder
        // made, they queued 120 ms before the reports caught up).
        let worst = arrived
            .iter()
            .filter(|(captured, _)| (10_000_000..10_500_000).contains(captured))
            .map(|(_, delay)| *delay)
            .max()
            .unwrap();
        assert!(worst < 50 * MS, "a frame {worst} µs late after the cut");
    }

    /// A report of `recv_kbps` arriving over 50 ms, and a queue of `queue_ms`.
    fn over_50ms(seq: u32, recv_kbps: u32, queue_ms: u16) -> Report {
        Report {
            seq,
            window_ms: 50,
            recv_kbps,
            queue_ms,
            ..Report::default()
        }
    }

    /// A report of a path at ease: 4 Mbit/s arriving over 50 ms, a 5 ms queue.
    fn calm(seq: u32) -> Report {
        over_50ms(seq, 4000, 5)
    }

    /// `report` from `viewer` [`SMOOTH`] times, 50 ms apart from `from_us`, its sequence
    /// number counting up; the time of the last.
    fn standing(rc: &mut RateControl, from_us: u64, viewer: u64, report: Report) -> u64 {
        let mut at = from_us;
        for i in 0..SMOOTH as u32 {
            at = from_us + u64::from(i) * 50 * MS;
            let report = Report {
                seq: report.seq + i,
                ..report
            };
            rc.report(at, viewer, &report).unwrap();
        }
        at
    }

    /// After a cut for a queue on a 2 Mbit/s path, growth is slow near that rate, unless
    /// more arrives than it carried then (the path widened, a step up): then it is fast.
    #[test]
    fn a_path_that_carries_more_than_at_its_last_congestion_is_grown_into_at_once() {
        let target_after = |recv_kbps: u32| {
            let mut rc = control();
            let mut at = 0;
            for seq in 0..40u32 {
                at = u64::from(seq) * 50 * MS;
                let queue = if seq < 37 { 5 } else { 90 };
                rc.report(at, 1, &over_50ms(seq, 2000, queue)).unwrap();
            }
            assert_eq!(rc.counters().decreases, 1);
            let cut = rc.target(at);
            for seq in 40..70u32 {
                at = u64::from(seq) * 50 * MS;
                rc.report(at, 1, &over_50ms(seq, recv_kbps, 5)).unwrap();
            }
            (cut, rc.target(at))
        };
        let (cut, same) = target_after(2000);
        assert!(same < cut * 3 / 2, "on the same path: {cut} → {same} bit/s");
        let (cut, wider) = target_after(2500);
        assert!(wider > cut * 2, "on a wider path: {cut} → {wider} bit/s");
    }

    #[test]
    fn a_frame_held_up_now_and_then_is_no_congestion_but_a_standing_queue_is() {
        let mut rc = control();
        let report = |seq, queue_ms| over_50ms(seq, 4000, queue_ms);
        // A retransmission's worth of delay in one report out of three, for five seconds.
        for seq in 0..100u32 {
            let queue = if seq % 3 == 0 { 90 } else { 5 };
            rc.report(u64::from(seq) * 50 * MS, 1, &report(seq, queue))
                .unwrap();
        }
        assert_eq!(rc.counters().decreases, 0);
        // Three reports in a row over the line: a queue that stands.
        for seq in 100..103u32 {
            rc.report(u64::from(seq) * 50 * MS, 1, &report(seq, 90))
                .unwrap();
        }
        assert_eq!(rc.counters().decreases, 1);
    }

    #[test]
    fn reports_bunched_by_the_paths_jitter_are_all_taken() {
        // Frames held up and released in turn, each report after a hold-up arriving right
        // behind it (the path's jitter delayed the one before): refusing it as too soon left
        // only the hold-ups, a queue with nothing arriving, and the rate was cut.
        let mut rc = control();
        let report = over_50ms;
        for pair in 0..50u32 {
            let at = u64::from(pair) * 100 * MS;
            rc.report(at, 1, &report(2 * pair, 0, 120)).unwrap();
            rc.report(at + 5 * MS, 1, &report(2 * pair + 1, 8000, 10))
                .unwrap();
        }
        assert_eq!(rc.counters().decreases, 0);
    }

    #[test]
    fn a_queue_that_rises_while_frames_arrive_is_cut_before_the_line() {
        // Calm reports, then three more whose queue (ms) and arrivals (kbit/s) are given:
        // how many times the rate was cut.
        let cuts = |last: [(u16, u32); SMOOTH]| {
            let mut rc = control();
            for seq in 0..LONG as u32 {
                rc.report(u64::from(seq) * 50 * MS, 1, &calm(seq)).unwrap();
            }
            for (i, (queue_ms, recv_kbps)) in (LONG as u32..).zip(last) {
                let report = Report {
                    queue_ms,
                    recv_kbps,
                    ..calm(i)
                };
                rc.report(u64::from(i) * 50 * MS, 1, &report).unwrap();
            }
            rc.counters().decreases
        };
        // A path that narrowed: the queue grows report after report, frames still arriving.
        assert_eq!(cuts([(38, 4000), (42, 4000), (46, 4000)]), 1);
        // The same queue that does not keep rising waits for the line.
        assert_eq!(cuts([(46, 4000), (38, 4000), (42, 4000)]), 0);
        assert_eq!(cuts([(38, 4000), (42, 4000), (42, 4000)]), 0);
        // Rising while next to nothing arrives: a frame held up behind a lost packet.
        assert_eq!(cuts([(38, 4000), (42, 100), (46, 100)]), 0);
        // Rising under the rising line: room still.
        assert_eq!(cuts([(25, 4000), (30, 4000), (35, 4000)]), 0);
    }

    #[test]
    fn a_sender_still_opening_its_window_is_followed_not_cut_for() {
        // QUIC's slow start behind a 300 ms round trip: the sender's window over its RTT
        // doubles each round trip from 400 kbit/s, on a path that carries 20 Mbit/s. What
        // is sent over the window waits at the sender; the viewer receives the window.
        let run = |reads_window: bool| {
            let mut rc = control();
            let (mut queue_bits, mut lowest) = (0.0f64, u64::MAX);
            for seq in 0..60u32 {
                let now = u64::from(seq) * 50 * MS;
                let window = (400_000u64 << (now / (300 * MS)).min(6)) as f64;
                let target = rc.frame(now).bitrate_bps;
                lowest = lowest.min(target);
                queue_bits = (queue_bits + (target as f64 - window) * 0.05).max(0.0);
                let recv_kbps = (target as f64).min(window) / 1000.0;
                let report = Report {
                    path_kbps: if reads_window {
                        (window / 1000.0) as u32
                    } else {
                        0
                    },
                    ..over_50ms(seq, recv_kbps as u32, (queue_bits / window * 1000.0) as u16)
                };
                rc.report(now, 1, &report).unwrap();
            }
            (
                lowest,
                rc.frame(3_000 * MS).bitrate_bps,
                rc.counters().decreases,
            )
        };
        // Read, the window is followed up to the rate, which its queue never cuts, and the
        // rate grows on from there.
        let (lowest, end, cuts) = run(true);
        assert!(lowest >= 400_000, "fell to {lowest} bit/s");
        assert!(
            cuts == 0 && end > 4 * MBIT,
            "{cuts} cuts, {end} bit/s after 3 s"
        );
        // Unread, that queue is taken for a slow path: cut to the bottom, and slow to climb.
        let (lowest, end, _) = run(false);
        assert!(lowest < 400_000 && end < 2 * MBIT, "{lowest} → {end} bit/s");
    }

    #[test]
    fn a_relay_pausing_itself_is_no_congestion_but_a_path_that_narrows_is() {
        // Calm reports at 2 Mbit/s with the relay's window over its RTT at 4.8 Mbit/s, then
        // (queue ms, arrivals kbit/s, window kbit/s) a report; the cuts, the rate after (of
        // the rate before), and the pauses counted.
        let run = |events: &[(u16, u32, u32)]| {
            let mut rc = control();
            let calm = |seq| Report {
                recv_kbps: 2000,
                path_kbps: 4800,
                ..calm(seq)
            };
            for seq in 0..2 * LONG as u32 {
                rc.report(u64::from(seq) * 50 * MS, 1, &calm(seq)).unwrap();
            }
            let before = rc.target(2 * LONG as u64 * 50 * MS);
            let mut seq = 2 * LONG as u32;
            for &(queue_ms, recv_kbps, path_kbps) in events {
                let report = Report {
                    queue_ms,
                    recv_kbps,
                    path_kbps,
                    ..calm(seq)
                };
                rc.report(u64::from(seq) * 50 * MS, 1, &report).unwrap();
                seq += 1;
            }
            let after = rc.target(u64::from(seq) * 50 * MS);
            let counters = rc.counters();
            let kept = after as f64 / before as f64;
            (counters.decreases, kept, counters.relay_pauses)
        };
        // moq-relay's BBR in PROBE_RTT, as a viewer's reports saw it on a 2 Mbit/s link:
        // half the arrivals and a queue at the relay for a fifth of a second, the window
        // down a sixth at once, then all of it back and the queue drained.
        let pause = [
            (51, 504, 4835),
            (78, 442, 806),
            (97, 903, 806),
            (130, 937, 806),
            (154, 1818, 3948),
            (150, 1457, 3948),
            (134, 2005, 3948),
            (83, 2316, 3948),
            (0, 2000, 3948),
            (1, 2000, 3948),
        ];
        let (cuts, kept, pauses) = run(&pause);
        assert_eq!((cuts, pauses), (0, 1));
        assert!(kept > 0.95, "{kept}");
        // The same queue from a sender that tells no window: a cut, as before.
        let unknown: Vec<_> = pause.iter().map(|&(q, recv, _)| (q, recv, 0)).collect();
        let (cuts, _, pauses) = run(&unknown);
        assert!(cuts >= 1 && pauses == 0);
        // A path that narrowed: the queue first, the window over the RTT falling by degrees
        // behind it. Cut.
        let narrowed = [
            (52, 1500, 4800),
            (83, 1460, 4800),
            (107, 1340, 4800),
            (140, 1890, 4800),
            (177, 1640, 3500),
            (220, 1900, 2500),
            (264, 1920, 1800),
        ];
        let (cuts, _, pauses) = run(&narrowed);
        assert!(cuts >= 1 && pauses == 0);
        // A window that falls and stays low is the sender's new rate: its queue is cut once
        // the pause's time is over.
        let stays: Vec<_> = (0..15u16).map(|i| (60 + 5 * i, 1500, 1500)).collect();
        assert!(run(&stays).0 >= 1);
        // A window that halves under a queue already deep is that queue's RTT: cut.
        let deep = [
            (120, 1500, 4800),
            (150, 1400, 2000),
            (180, 1400, 2000),
            (210, 1400, 2000),
        ];
        let (cuts, _, pauses) = run(&deep);
        assert!(cuts >= 1 && pauses == 0);
    }

    #[test]
    fn the_lowest_viewer_sets_the_rate_and_a_departed_one_stops_counting() {
        let mut rc = control();
        let calm = |seq| Report {
            seq,
            window_ms: 100,
            recv_kbps: 4000,
            queue_ms: 5,
            ..Report::default()
        };
        let congested = |seq| Report {
            queue_ms: 120,
            recv_kbps: 1000,
            ..calm(seq)
        };
        standing(&mut rc, 100 * MS, 1, calm(0));
        let at = standing(&mut rc, 100 * MS, 2, congested(0));
        assert_eq!(rc.target(at), 850_000);
        assert_eq!(rc.counters().decreases, 1);
        rc.forget(2);
        assert!(rc.target(at) >= 4 * MBIT);
        // A viewer that went quiet stops counting after a while.
        let at = standing(&mut rc, 300 * MS, 3, congested(0));
        assert_eq!(rc.target(at), 850_000);
        rc.report(at + FORGET_US, 1, &calm(3)).unwrap();
        assert!(rc.target(at + 100 * MS + FORGET_US) >= 4 * MBIT);
    }

    #[test]
    fn repeats_floods_and_crowds_are_refused_and_counted() {
        let mut rc = control();
        let report = |seq| Report {
            seq,
            window_ms: 100,
            ..Report::default()
        };
        rc.report(0, 1, &report(5)).unwrap();
        assert_eq!(rc.report(100 * MS, 1, &report(5)), Err(Refused::Old));
        assert_eq!(rc.report(100 * MS, 1, &report(4)), Err(Refused::Old));
        // A few bunched by the path's jitter are taken, one more is not...
        let mut seq = 6;
        for _ in 0..REPORT_BURST {
            assert_eq!(rc.report(105 * MS, 1, &report(seq)), Ok(()));
            seq += 1;
        }
        assert_eq!(rc.report(105 * MS, 1, &report(seq)), Err(Refused::TooSoon));
        // ...and a flood, one a millisecond for a second, is taken at the mean rate.
        let taken = (106..1106)
            .filter(|ms| {
                seq += 1;
                rc.report(ms * MS, 1, &report(seq)).is_ok()
            })
            .count();
        assert_eq!(taken as u64, 1000 * MS / MIN_REPORT_GAP_US);
        for viewer in 2..=MAX_VIEWERS as u64 {
            rc.report(200 * MS, viewer, &report(0)).unwrap();
        }
        assert_eq!(rc.report(200 * MS, 1000, &report(0)), Err(Refused::Crowded));
        // Viewers gone quiet make room.
        rc.report(300 * MS + FORGET_US, 1000, &report(0)).unwrap();
        let counters = rc.counters();
        assert_eq!(
            (
                counters.refused_old,
                counters.refused_too_soon,
                counters.refused_crowded
            ),
            (2, 1 + 1000 - taken as u64, 1)
        );
    }

    #[test]
    fn keyframes_come_when_asked_at_most_one_a_second() {
        let mut rc = control();
        let ask = |seq| Report {
            seq,
            window_ms: 100,
            keyframe: true,
            ..Report::default()
        };
        let quiet = |seq| Report {
            keyframe: false,
            ..ask(seq)
        };
        assert!(!rc.frame(0).keyframe);
        rc.report(10 * MS, 1, &ask(0)).unwrap();
        assert!(rc.frame(20 * MS).keyframe);
        assert!(!rc.frame(40 * MS).keyframe);
        // Asking on while the one forced is on its way is no new request.
        rc.report(100 * MS, 1, &ask(1)).unwrap();
        assert!(!rc.frame(120 * MS).keyframe, "too soon after the last one");
        rc.report(1000 * MS, 1, &quiet(2)).unwrap();
        assert!(!rc.frame(1020 * MS).keyframe, "the one forced arrived");
        // Other viewers' requests: one at once, the next after the gap since, no later.
        rc.report(1100 * MS, 2, &ask(0)).unwrap();
        assert!(rc.frame(1120 * MS).keyframe);
        rc.report(1300 * MS, 3, &ask(0)).unwrap();
        assert!(!rc.frame(1320 * MS).keyframe);
        // (Every viewer reporting, as they do: one silent for half a second is sent nothing.)
        rc.report(2000 * MS, 1, &quiet(3)).unwrap();
        rc.report(2000 * MS, 2, &quiet(1)).unwrap();
        rc.report(2000 * MS, 3, &ask(1)).unwrap();
        assert!(rc.frame(2120 * MS).keyframe);
        // A keyframe the encoder made anyway answers a request.
        rc.report(2300 * MS, 2, &ask(2)).unwrap();
        rc.keyframe_sent();
        for (viewer, seq) in [(1, 4), (2, 3), (3, 2)] {
            rc.report(3100 * MS, viewer, &quiet(seq)).unwrap();
        }
        assert!(!rc.frame(3150 * MS).keyframe);
        assert!(!rc.frame(3150 * MS).skip, "every viewer is heard from");
        // A request its viewer's next report no longer makes (a keyframe reached it) is
        // not granted once the gap since the last forced has passed.
        rc.report(3200 * MS, 1, &ask(5)).unwrap();
        assert!(rc.frame(3220 * MS).keyframe);
        rc.report(3300 * MS, 2, &ask(4)).unwrap();
        assert!(!rc.frame(3320 * MS).keyframe, "too soon after the last one");
        for (viewer, seq) in [(1, 6), (2, 5), (3, 3)] {
            rc.report(4300 * MS, viewer, &quiet(seq)).unwrap();
        }
        let later = rc.frame(4320 * MS);
        assert!(!later.keyframe && !later.skip, "{later:?}");
        assert_eq!(rc.counters().keyframes_forced, 4);
    }

    /// A viewer that keeps losing pictures asks on and on: the keyframes forced for it come
    /// ever further apart (up to [`MAX_KEYFRAME_GAP_US`]), so the stream every viewer gets is
    /// not a keyframe a second; a viewer joining meanwhile still gets one at once.
    #[test]
    fn a_viewer_that_keeps_asking_gets_keyframes_ever_further_apart_and_a_joiner_at_once() {
        let mut rc = control();
        let (mut seq, mut forced) = (0, Vec::new());
        for ms in (0..30_000).step_by(50) {
            // A report every 50 ms, each asking (a new request as soon as one arrived).
            let report = Report {
                seq,
                window_ms: 50,
                keyframe: true,
                ..Report::default()
            };
            seq += 1;
            rc.report(ms * MS, 1, &report).unwrap();
            // A second viewer from 20 s on, which asks once (it joined) and is answered.
            if ms >= 20_000 {
                let joiner = Report {
                    keyframe: ms == 20_000,
                    ..report
                };
                rc.report(ms * MS, 2, &joiner).unwrap();
            }
            if rc.frame(ms * MS + 10 * MS).keyframe {
                forced.push(ms / 1000);
            }
        }
        // 1 s, 2, 4, 8, then 8 s apart; the joiner's at once (20 s).
        assert_eq!(forced, [0, 1, 3, 7, 15, 20, 23], "forced at (s)");
        assert!(rc.counters().keyframes_deferred > 500);
    }

    #[test]
    fn a_deep_queue_skips_every_other_frame() {
        let mut rc = control();
        let deep = Report {
            seq: 0,
            window_ms: 100,
            queue_ms: 400,
            recv_kbps: 1000,
            ..Report::default()
        };
        let at = standing(&mut rc, 0, 1, deep);
        let skips: Vec<bool> = (1..=4).map(|n| rc.frame(at + n * 16 * MS).skip).collect();
        assert_eq!(skips, [true, false, true, false]);
        assert_eq!(rc.target(at), 600_000, "deep enough to cut to 60 %");
        // One report of a shallow queue: it is draining.
        let calm = Report {
            seq: 3,
            queue_ms: 10,
            ..deep
        };
        rc.report(400 * MS, 1, &calm).unwrap();
        assert!(!rc.frame(410 * MS).skip);
    }

    /// A viewer that names frames: its deep queue skips frames while the oldest frame after
    /// the newest it received has waited over [`DRAIN_QUEUE_MS`], and not once nothing waits.
    #[test]
    fn a_deep_queue_skips_only_while_frames_wait_in_it() {
        let mut rc = control();
        // A frame every 16 ms for 600 ms.
        for n in 0..38 {
            rc.sent(n * 16 * MS, Some(n * 16 * MS), 5_000);
        }
        // The viewer has frames up to 288 ms, its reports agreeing on a 300 ms queue: the frame
        // of 304 ms has waited near 300 ms.
        let deep = Report {
            seq: 0,
            window_ms: 50,
            queue_ms: 300,
            recv_kbps: 2000,
            newest: Some(288 * MS as u32),
            ..Report::default()
        };
        let at = standing(&mut rc, 600 * MS, 1, deep);
        assert!(rc.frame(at).skip, "a deep queue with frames waiting");
        // Its next reports name the newest frame sent: the queue they measure is gone.
        let caught_up = Report {
            seq: SMOOTH as u32,
            newest: Some(592 * MS as u32),
            ..deep
        };
        let at = standing(&mut rc, at + 50 * MS, 1, caught_up);
        let skips = (1..=4).filter(|n| rc.frame(at + n * 16 * MS).skip).count();
        assert_eq!(skips, 0, "skipped with nothing queued");
    }

    /// Frames sent over `seconds` at 60 fps, each `bytes` long, while the viewer reports a
    /// deep queue and `recv_kbps` arriving every 50 ms.
    fn sent_while_deep(seconds: u64, recv_kbps: u32, bytes: usize) -> usize {
        let mut rc = control();
        let deep = Report {
            seq: 0,
            window_ms: 50,
            queue_ms: 2000,
            recv_kbps,
            ..Report::default()
        };
        let mut at = standing(&mut rc, 0, 1, deep);
        let mut seq = SMOOTH as u32;
        let mut frames = 0;
        for n in 1..=seconds * 60 {
            let now = at.max(n * 1_000_000 / 60);
            if now >= at + 50 * MS {
                at += 50 * MS;
                rc.report(at, 1, &Report { seq, ..deep }).unwrap();
                seq += 1;
            }
            if !rc.frame(now).skip {
                rc.sent(now, None, bytes);
                frames += 1;
            }
        }
        frames
    }

    #[test]
    fn a_path_below_the_lowest_rate_gets_no_more_than_it_carries() {
        // 40 kbit/s arriving: 20 kbit/s of 8 kbit frames, 2.5 a second, not 30.
        let frames = sent_while_deep(8, 40, 1000);
        assert!((18..=22).contains(&frames), "{frames} frames in 8 s");
        // Nothing arriving: a frame a second, so the viewer can tell when the path is back.
        assert_eq!(sent_while_deep(8, 0, 1000), 8);
        // A path that carries more than half the frames: every other one.
        let frames = sent_while_deep(8, 5000, 1000);
        assert!((236..=240).contains(&frames), "{frames} frames in 8 s");
    }

    #[test]
    fn a_viewer_cut_off_is_sent_nothing_until_it_reports_again_or_is_forgotten() {
        let mut rc = control();
        let at = standing(&mut rc, 0, 1, calm(0));
        assert!(!rc.frame(at + SILENT_US).skip);
        assert!(
            rc.frame(at + SILENT_US + 20 * MS).skip,
            "no report for too long"
        );
        assert!(!rc.frame(at + FORGET_US + 20 * MS).skip, "forgotten");
        rc.report(at + 2 * SILENT_US, 1, &calm(3)).unwrap();
        assert!(
            !rc.frame(at + 2 * SILENT_US + 10 * MS).skip,
            "reporting again"
        );
    }

    #[test]
    fn one_viewer_cut_off_among_others_never_stops_their_pictures() {
        let mut rc = control();
        // Two viewers reporting; the first falls silent (gone without a word) at 1 s, its
        // last reports seeing a deep queue.
        for (i, ms) in (0..=1000).step_by(50).enumerate() {
            let deep = Report {
                queue_ms: if ms >= 700 { 400 } else { 5 },
                ..calm(i as u32)
            };
            rc.sent(ms * MS, None, 10_000);
            rc.report(ms * MS, 1, &deep).unwrap();
            rc.report(ms * MS, 2, &calm(i as u32)).unwrap();
        }
        assert!(rc.frame(1000 * MS + 10 * MS).skip, "the deep viewer counts");
        let mut skipped = 0;
        for (i, ms) in (1050..=3000).step_by(50).enumerate() {
            rc.sent(ms * MS, None, 10_000);
            rc.report(ms * MS, 2, &calm(100 + i as u32)).unwrap();
            skipped += u32::from(rc.frame(ms * MS + 10 * MS).skip);
        }
        // Skipped while its last reports still count, never once it is silent.
        assert!(
            skipped <= 10,
            "{skipped} of the other viewer's frames skipped"
        );
        // Once the second is silent too, nothing more goes out.
        assert!(rc.frame(3000 * MS + SILENT_US + 20 * MS).skip);
    }

    #[test]
    fn the_publishers_own_path_only_ever_lowers_the_rate() {
        let mut rc = control();
        for ms in (0..=600).step_by(20) {
            rc.sent(ms * MS, None, 10_000); // 4 Mbit/s
        }
        rc.send_estimate(Some(100 * MBIT));
        assert_eq!(rc.target(MS), 4 * MBIT);
        rc.send_estimate(Some(2 * MBIT));
        assert_eq!(rc.target(MS), 1_800_000);
        rc.send_estimate(None);
        assert_eq!(rc.target(MS), 4 * MBIT);
    }
}
