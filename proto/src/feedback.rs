//! What a viewer tells the host about its path, a few times a second, on the `feedback`
//! track beside its input: how fast video arrives, how much queue it crossed, frames it had
//! to skip, whether it stalls, and whether it needs a keyframe. The host's rate control
//! ([`crate::rate`]) turns the reports of the viewers that count into a bitrate.
//!
//! [`Report`] is the datagram (fixed size, versioned, strictly checked: it is untrusted
//! network input); [`Meter`] is the viewer's side, which watches frames arrive and says when
//! a report is due. Pure: every call takes the time.
//!
//! The queue is measured without a shared clock: each frame's (arrival − capture) is
//! compared with the path's best over the last [`BASE_WINDOW_US`] (see `Floor`), so the
//! clocks' offset cancels and what is left is the time spent in queues (and in crossing the
//! path at its rate) beyond the path's best.
//!
//! A report also names the newest frame that arrived (by its timestamp), so the sender knows
//! what it sent that is still on the way: the queue a frame sent now will meet, before any
//! viewer could measure it.

use crate::Error;

/// The report's format version.
pub const VERSION: u8 = 2;
/// A report's size on the wire.
pub const BYTES: usize = 24;
/// The size of a version 1 report (no newest frame), still read.
pub const V1_BYTES: usize = 20;
/// How often a viewer reports when nothing urgent happens: often enough that a queue
/// building at a link's step down is seen within a few frames.
pub const INTERVAL_US: u64 = 50_000;
/// The longest window a report may say it covers.
pub const MAX_WINDOW_MS: u16 = 10_000;
/// How far back the path's best delay is looked for.
pub const BASE_WINDOW_US: u64 = 10_000_000;
/// No frame for this long is a stall (as [`crate::frame_delay::STALL_US`]).
pub const STALL_US: u64 = crate::frame_delay::STALL_US;

const FLAG_KEYFRAME: u8 = 1;
const FLAG_STALLED: u8 = 2;
const FLAG_NEWEST: u8 = 4;
/// A frame more than this far behind the newest seen starts the count again (a new
/// broadcast, whose timeline began anew).
const NEWEST_RESET_US: u64 = 10_000_000;

/// One viewer's report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Counts up by one per report from one viewer; the host drops repeats and old ones.
    pub seq: u32,
    /// The time this report covers, ms (1 ..= [`MAX_WINDOW_MS`]).
    pub window_ms: u16,
    /// Video received over the window, kbit/s.
    pub recv_kbps: u32,
    /// Delay beyond the path's best (queues, and crossing a slow link), ms.
    pub queue_ms: u16,
    /// Frames the viewer had to skip over the window (a group missed, a picture that did
    /// not decode).
    pub skipped: u16,
    /// No video arrived for over [`STALL_US`].
    pub stalled: bool,
    /// The viewer cannot go on without a keyframe (it joined, or lost the reference).
    pub keyframe: bool,
    /// The sender's own estimate of the path to this viewer (moq-lite PROBE), kbit/s;
    /// 0 when unknown.
    pub path_kbps: u32,
    /// The newest video frame that arrived: its timestamp on the track's timeline, µs,
    /// modulo 2^32 (a frame a few seconds old is never mistaken for another).
    pub newest: Option<u32>,
}

fn bad(why: &str) -> Error {
    Error::Feedback(why.to_string())
}

impl Report {
    pub fn encode(&self) -> [u8; BYTES] {
        let mut out = [0u8; BYTES];
        out[0] = VERSION;
        out[1] = (u8::from(self.keyframe) * FLAG_KEYFRAME)
            | (u8::from(self.stalled) * FLAG_STALLED)
            | (u8::from(self.newest.is_some()) * FLAG_NEWEST);
        out[2..6].copy_from_slice(&self.seq.to_be_bytes());
        out[6..8].copy_from_slice(&self.window_ms.to_be_bytes());
        out[8..12].copy_from_slice(&self.recv_kbps.to_be_bytes());
        out[12..14].copy_from_slice(&self.queue_ms.to_be_bytes());
        out[14..16].copy_from_slice(&self.skipped.to_be_bytes());
        out[16..20].copy_from_slice(&self.path_kbps.to_be_bytes());
        out[20..24].copy_from_slice(&self.newest.unwrap_or(0).to_be_bytes());
        out
    }

    /// Read a report, refusing anything that is not exactly one of this version (24 bytes)
    /// or of version 1 (20 bytes, without the newest frame).
    pub fn decode(data: &[u8]) -> Result<Self, Error> {
        let (known, size) = match data.first() {
            Some(&VERSION) => (FLAG_KEYFRAME | FLAG_STALLED | FLAG_NEWEST, BYTES),
            Some(1) => (FLAG_KEYFRAME | FLAG_STALLED, V1_BYTES),
            _ => return Err(bad("unknown report version")),
        };
        if data.len() != size {
            return Err(bad("a report's size does not match its version"));
        }
        let flags = data[1];
        if flags & !known != 0 {
            return Err(bad("unknown flags"));
        }
        let u16_at = |i: usize| u16::from_be_bytes([data[i], data[i + 1]]);
        let u32_at =
            |i: usize| u32::from_be_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
        let report = Self {
            seq: u32_at(2),
            window_ms: u16_at(6),
            recv_kbps: u32_at(8),
            queue_ms: u16_at(12),
            skipped: u16_at(14),
            stalled: flags & FLAG_STALLED != 0,
            keyframe: flags & FLAG_KEYFRAME != 0,
            path_kbps: u32_at(16),
            newest: (flags & FLAG_NEWEST != 0).then(|| u32_at(20)),
        };
        if size == BYTES && report.newest.is_none() && u32_at(20) != 0 {
            return Err(bad("a newest frame without its flag"));
        }
        if report.window_ms == 0 || report.window_ms > MAX_WINDOW_MS {
            return Err(bad("window out of range"));
        }
        Ok(report)
    }
}

/// The path's best (arrival − capture) over the last [`BASE_WINDOW_US`], in one-second
/// buckets (bounded memory, and an old best ages out): the least of the buckets' lower
/// quartiles. Not the least delay of all: on a jittery path (Wi-Fi) a frame arrives only when
/// the last of its packets does, so a frame's delay is near the top of the jitter and the
/// rare frame that met none sets a best the others never come near; that difference, read as
/// a standing queue, held the rate at a tenth of a 20 Mbit/s link with 30 ms of jitter. A
/// second in which a quarter of the frames met no queue still sets the best, so a queue
/// that stands is seen as before.
#[derive(Clone, Debug, Default)]
struct Floor {
    /// (bucket start, its lower quartile), closed buckets oldest first; at most 10.
    buckets: std::collections::VecDeque<(u64, i64)>,
    /// The open bucket's start.
    open_start: Option<u64>,
    /// The open bucket's delays, in no order (at most [`Floor::SAMPLES`]; reused).
    open: Vec<i64>,
}

impl Floor {
    const BUCKET_US: u64 = 1_000_000;
    /// Delays kept for a bucket: a second of 240 fps and more.
    const SAMPLES: usize = 256;
    /// An open bucket counts once it has this many delays (while another bucket exists).
    const ENOUGH: usize = 8;

    /// Take a frame's `delay` arriving at `now_us`; the path's best now.
    fn record(&mut self, now_us: u64, delay: i64) -> i64 {
        match self.open_start {
            Some(start) if now_us.saturating_sub(start) < Self::BUCKET_US => {
                if self.open.len() < Self::SAMPLES {
                    self.open.push(delay);
                }
            }
            _ => {
                if let Some(start) = self.open_start {
                    self.buckets.push_back((start, quartile(&mut self.open)));
                }
                self.open_start = Some(now_us);
                self.open.clear();
                self.open.push(delay);
            }
        }
        while self
            .buckets
            .front()
            .is_some_and(|(start, _)| now_us.saturating_sub(*start) > BASE_WINDOW_US)
        {
            self.buckets.pop_front();
        }
        let closed = self.buckets.iter().map(|(_, q)| *q).min();
        let open =
            (closed.is_none() || self.open.len() >= Self::ENOUGH).then(|| quartile(&mut self.open));
        closed.into_iter().chain(open).min().unwrap_or(delay)
    }
}

/// The lower quartile of `delays` (not empty), which it reorders.
fn quartile(delays: &mut [i64]) -> i64 {
    let at = delays.len() / 4;
    *delays.select_nth_unstable(at).1
}

/// The viewer's side: feed it every video frame as it arrives, ask it for a report.
#[derive(Clone, Debug, Default)]
pub struct Meter {
    seq: u32,
    floor: Floor,
    /// When the current window began (the last report, or the first frame).
    window_start: Option<u64>,
    window_bytes: u64,
    /// The smallest excess delay of a frame in this window, µs.
    window_queue: Option<u64>,
    skipped: u32,
    /// The newest frame's arrival and excess delay, µs.
    last: Option<(u64, u64)>,
    want_keyframe: bool,
    /// The newest frame's timestamp, µs.
    newest: Option<u64>,
    /// Whether the keyframe request was sent yet (a new request is sent at once).
    asked: bool,
    /// When the last report went.
    last_report: Option<u64>,
    path_kbps: u32,
}

impl Meter {
    pub fn new() -> Self {
        Self::default()
    }

    /// A video frame of `bytes` with timestamp `ts_us` (on the track's timeline) arrived at
    /// `arrived_us`; `captured_us` is its capture time on the sender's clock, when known.
    pub fn frame(
        &mut self,
        arrived_us: u64,
        ts_us: u64,
        captured_us: Option<u64>,
        bytes: usize,
        key: bool,
    ) {
        self.window_start.get_or_insert(arrived_us);
        self.newest = match self.newest {
            Some(newest) if ts_us < newest && newest - ts_us <= NEWEST_RESET_US => Some(newest),
            _ => Some(ts_us),
        };
        self.window_bytes += bytes as u64;
        if key {
            self.want_keyframe = false;
        }
        let Some(captured) = captured_us else {
            self.last = Some((arrived_us, self.last.map_or(0, |(_, q)| q)));
            return;
        };
        let delay = arrived_us as i64 - captured as i64;
        let queue = (delay - self.floor.record(arrived_us, delay)).max(0) as u64;
        self.window_queue = Some(self.window_queue.map_or(queue, |q| q.min(queue)));
        self.last = Some((arrived_us, queue));
    }

    /// Frames skipped (a group missed, a picture that did not decode).
    pub fn skipped(&mut self, frames: u32) {
        self.skipped = self.skipped.saturating_add(frames);
    }

    /// The viewer cannot go on without a keyframe; asked for in the next report, which is
    /// due at once, and in every report until one arrives.
    pub fn want_keyframe(&mut self) {
        if !self.want_keyframe {
            self.want_keyframe = true;
            self.asked = false;
        }
    }

    /// The sender's estimate of its path to this viewer, when the transport tells it.
    pub fn path_estimate(&mut self, kbps: Option<u64>) {
        self.path_kbps = kbps.map_or(0, |k| k.clamp(1, u64::from(u32::MAX)) as u32);
    }

    /// The report due at `now_us`, if one is: every [`INTERVAL_US`] once video has arrived,
    /// and at once for a new keyframe request.
    pub fn report(&mut self, now_us: u64) -> Option<Report> {
        let start = self.window_start?;
        let elapsed = now_us.saturating_sub(start);
        // At once, though never sooner after the last report than the host takes one.
        let urgent = self.want_keyframe
            && !self.asked
            && self
                .last_report
                .is_none_or(|last| now_us.saturating_sub(last) >= crate::rate::MIN_REPORT_GAP_US);
        if elapsed < INTERVAL_US && !urgent {
            return None;
        }
        let window_us = elapsed.clamp(1000, u64::from(MAX_WINDOW_MS) * 1000);
        let since_last = self
            .last
            .map_or(elapsed, |(at, _)| now_us.saturating_sub(at));
        // With no frame in the window, the delay has grown by at least the wait.
        let queue_us = match self.window_queue {
            Some(q) => q,
            None => self.last.map_or(0, |(_, q)| q) + since_last,
        };
        let report = Report {
            seq: self.seq,
            window_ms: (window_us / 1000) as u16,
            recv_kbps: (self.window_bytes * 8 * 1000 / window_us).min(u64::from(u32::MAX)) as u32,
            queue_ms: (queue_us / 1000).min(u64::from(u16::MAX)) as u16,
            skipped: self.skipped.min(u32::from(u16::MAX)) as u16,
            stalled: since_last > STALL_US,
            keyframe: self.want_keyframe,
            path_kbps: self.path_kbps,
            newest: self.newest.map(|ts| ts as u32),
        };
        self.seq = self.seq.wrapping_add(1);
        self.asked |= self.want_keyframe;
        self.window_start = Some(now_us);
        self.last_report = Some(now_us);
        self.window_bytes = 0;
        self.window_queue = None;
        self.skipped = 0;
        Some(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1000;

    fn report() -> Report {
        Report {
            seq: 7,
            window_ms: 100,
            recv_kbps: 4400,
            queue_ms: 12,
            skipped: 3,
            stalled: true,
            keyframe: true,
            path_kbps: 9000,
            newest: Some(0xdead_beef),
        }
    }

    #[test]
    fn a_report_goes_through_the_wire_unchanged() {
        let bytes = report().encode();
        assert_eq!(bytes.len(), BYTES);
        assert_eq!(Report::decode(&bytes).unwrap(), report());
    }

    #[test]
    fn anything_but_an_exact_report_is_refused() {
        let good = report().encode();
        assert!(Report::decode(&good[..BYTES - 1]).is_err());
        assert!(
            Report::decode(&good[..V1_BYTES]).is_err(),
            "version 2, short"
        );
        assert!(Report::decode(&[good.as_slice(), &[0]].concat()).is_err());
        assert!(Report::decode(&[]).is_err());
        let mut version = good;
        version[0] = 3;
        assert!(Report::decode(&version).is_err());
        let mut flags = good;
        flags[1] |= 8;
        assert!(Report::decode(&flags).is_err());
        let mut unflagged = good;
        unflagged[1] &= !FLAG_NEWEST;
        assert!(
            Report::decode(&unflagged).is_err(),
            "a newest frame needs its flag"
        );
        unflagged[20..24].copy_from_slice(&[0; 4]);
        assert_eq!(Report::decode(&unflagged).unwrap().newest, None);
        for window in [0u16, MAX_WINDOW_MS + 1] {
            let mut bytes = good;
            bytes[6..8].copy_from_slice(&window.to_be_bytes());
            assert!(Report::decode(&bytes).is_err(), "window {window}");
        }
    }

    #[test]
    fn a_version_1_report_is_read_without_the_newest_frame() {
        let mut v1 = report().encode();
        v1[0] = 1;
        v1[1] &= !FLAG_NEWEST;
        let read = Report::decode(&v1[..V1_BYTES]).unwrap();
        assert_eq!(read.newest, None);
        assert_eq!(read.recv_kbps, 4400);
        assert!(Report::decode(&v1).is_err(), "version 1 is 20 bytes");
        v1[1] |= FLAG_NEWEST;
        assert!(Report::decode(&v1[..V1_BYTES]).is_err(), "no newest in v1");
    }

    #[test]
    fn a_report_names_the_newest_frame_and_a_new_timeline_starts_again() {
        let mut meter = Meter::new();
        meter.frame(0, 5_000_000, None, 1, true);
        meter.frame(1, (1 << 32) + 7, None, 1, false);
        // A frame of an older group that arrives late does not move it back.
        meter.frame(2, (1 << 32) - 1_000_000, None, 1, false);
        assert_eq!(meter.report(INTERVAL_US).unwrap().newest, Some(7));
        // A republished broadcast's timeline starts near zero again.
        meter.frame(INTERVAL_US + 1, 100, None, 1, true);
        assert_eq!(meter.report(2 * INTERVAL_US + 1).unwrap().newest, Some(100));
        assert_eq!(Meter::new().report(0), None);
    }

    /// Frames at 60 fps of `bytes`, each `delay(n)` after its capture; the sender's clock
    /// runs 5 s ahead of the viewer's, which must not matter.
    fn play(meter: &mut Meter, frames: std::ops::Range<u64>, delay: impl Fn(u64) -> u64) {
        for n in frames {
            let captured = n * 16_667 + 5_000_000;
            meter.frame(
                n * 16_667 + delay(n),
                n * 16_667,
                Some(captured),
                10_000,
                n == 0,
            );
        }
    }

    #[test]
    fn the_queue_is_the_delay_beyond_the_paths_best_whatever_the_clocks() {
        let mut meter = Meter::new();
        play(&mut meter, 0..6, |_| 20 * MS);
        let first = meter.report(6 * 16_667 + 20 * MS).unwrap();
        assert_eq!(first.queue_ms, 0);
        assert_eq!(first.seq, 0);
        assert!(!first.stalled);
        // 10 kB a frame at 60 fps is 4.8 Mbit/s.
        assert!((4500..5100).contains(&first.recv_kbps), "{first:?}");
        // The path slows: every frame of the next window is at least 80 ms later.
        play(&mut meter, 6..12, |n| 100 * MS + n * MS);
        let second = meter.report(12 * 16_667 + 120 * MS).unwrap();
        assert_eq!(second.queue_ms, 86);
        assert_eq!(second.seq, 1);
    }

    #[test]
    fn no_frame_for_a_while_is_a_growing_queue_and_then_a_stall() {
        let mut meter = Meter::new();
        play(&mut meter, 0..6, |_| 20 * MS);
        let last = 5 * 16_667 + 20 * MS;
        meter.report(last + 20 * MS).unwrap();
        let quiet = meter.report(last + 150 * MS).unwrap();
        assert_eq!(quiet.queue_ms, 150);
        assert!(!quiet.stalled);
        assert_eq!(quiet.recv_kbps, 0);
        let stalled = meter.report(last + 300 * MS).unwrap();
        assert!(stalled.stalled);
    }

    #[test]
    fn reports_come_every_interval_and_a_keyframe_request_at_once_until_one_arrives() {
        let mut meter = Meter::new();
        assert_eq!(meter.report(0), None, "nothing before the first frame");
        play(&mut meter, 0..2, |_| 0);
        assert_eq!(meter.report(20 * MS), None);
        meter.skipped(4);
        meter.want_keyframe();
        let asked = meter.report(21 * MS).unwrap();
        assert!(asked.keyframe);
        assert_eq!(asked.skipped, 4);
        assert_eq!(
            meter.report(22 * MS),
            None,
            "asked once, then at the interval"
        );
        let again = meter.report(21 * MS + INTERVAL_US).unwrap();
        assert!(again.keyframe);
        assert_eq!(again.skipped, 0);
        meter.frame(200 * MS, 200 * MS, None, 100, true);
        let sent = 200 * MS + INTERVAL_US;
        assert!(!meter.report(sent).unwrap().keyframe);
        // A new request right after a report waits until the host would take one.
        meter.want_keyframe();
        assert_eq!(meter.report(sent + 5 * MS), None);
        assert!(meter.report(sent + 20 * MS).unwrap().keyframe);
    }

    /// A jittery path (Wi-Fi): each packet 0–60 ms late, in order, so a frame of four
    /// packets arrives with the latest of four. The rare frame that met none is no best the
    /// others are measured against; a queue on top of the jitter still is one.
    #[test]
    fn a_paths_jitter_is_no_queue_but_a_queue_on_top_of_it_is() {
        let mut meter = Meter::new();
        let mut seed = 1u64;
        let mut jitter = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % 60_000
        };
        let mut frame_jitter = move || (0..4).map(|_| jitter()).max().unwrap_or(0);
        let mut reports = Vec::new();
        for n in 0..600u64 {
            let captured = n * 16_667;
            meter.frame(
                captured + 20 * MS + frame_jitter(),
                captured,
                Some(captured),
                5000,
                n == 0,
            );
            reports.extend(meter.report(captured + 17 * MS));
        }
        let calm = reports.iter().skip(60).filter(|r| r.queue_ms >= 20).count();
        assert!(
            calm <= 6,
            "{calm} of {} reports read jitter as a queue",
            reports.len() - 60
        );
        reports.clear();
        for n in 600..630u64 {
            let captured = n * 16_667;
            let queued = 20 * MS + 100 * MS + frame_jitter();
            meter.frame(captured + queued, captured, Some(captured), 5000, false);
            reports.extend(meter.report(captured + 17 * MS));
        }
        // The first report's window began before the queue did.
        assert!(
            reports.iter().skip(1).all(|r| r.queue_ms >= 50),
            "{reports:?}"
        );
    }

    #[test]
    fn the_paths_best_ages_out() {
        let mut meter = Meter::new();
        meter.frame(0, 0, Some(0), 1, true);
        // A route change: 50 ms more from then on, for longer than the window.
        for s in 1..=12u64 {
            meter.frame(
                s * 1_000_000,
                s * 1_000_000,
                Some(s * 1_000_000 - 50 * MS),
                1,
                false,
            );
        }
        let report = meter.report(12 * 1_000_000 + MS).unwrap();
        assert_eq!(report.queue_ms, 0);
    }
}
