//! What the subscriber measured: frame rate, bitrate, drops (gaps in the stamps' frame
//! numbers), and latency three ways:
//! - glass to glass (`g2g`): the capture time drawn into the picture's stamp → the picture
//!   handed to the output; the honest figure, for stamped (test) content;
//! - presentation timestamp to shown (`pts_to_shown`): the capture time the publisher put in
//!   the frame's PTS (per the catalog clock) → handed to the output; for any content, but it
//!   trusts the publisher's timestamps;
//! - network (`net`): PTS → arrival here.
//!
//! [`Stats`] gathers them into typed [`Line`]s; the sound's figures come from [`AudioStats`],
//! and the parts that measure on their own (the input channel, the window) add theirs through
//! [`Part`], so this module depends on none of them.

mod audio;
pub mod line;
pub mod text;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use lantern_proto::frame_delay::FrameDelay;
use lantern_proto::{clock, histogram::Histogram, stamp::Stamp};

use tokio::sync::mpsc::error::TrySendError;

use crate::Error;
pub use audio::AudioStats;
pub use line::{FrameDelayFigures, LatencyFrom, Line, RecordFigures, Role, ms};

/// A part of the viewer that measures on its own and fills its section of each line: over
/// the last second (its window then restarts) or, on the closing line, the whole run.
pub trait Part: Send + Sync {
    fn fill(&self, line: &mut Line);
}

/// Totals over the whole run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub frames: u64,
    pub drops: u64,
    /// Decoded frames that carried no readable stamp.
    pub unstamped: u64,
    pub last_stamp: Option<u32>,
    /// Times the stream went away (the path, the relay or the publisher) and was waited for.
    pub outages: u64,
    /// Frames skipped here because the player fell behind the stream (its decoder or output
    /// slower than the frames came).
    pub behind_skipped: u64,
}

/// What the connection's keeper measures, for the stats lines.
#[derive(Debug, Default)]
pub struct LinkFigures {
    /// The smoothed round-trip time, µs (0 until known).
    pub rtt_us: AtomicU64,
    /// Connections replaced under the stream (their relay restarted): the picture stood still
    /// while nothing came, an outage the player did not see as one.
    replaced: AtomicU64,
    /// And how long each heard nothing before it was, in all (ms).
    silent_ms: AtomicU64,
}

impl LinkFigures {
    /// A connection that heard nothing for `silent` was replaced.
    pub fn replaced(&self, silent: std::time::Duration) {
        self.replaced.fetch_add(1, Ordering::Relaxed);
        let ms = silent.as_millis() as u64;
        self.silent_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

pub struct Stats {
    pub summary: Summary,
    /// The catalog's codec string of what plays (`avc3.42c01f`, `av01.0.08M.08`).
    pub codec: Option<String>,
    /// When the first frame arrived: the average bitrate runs from here.
    first: Option<Instant>,
    /// How long after it the first picture was shown.
    join: Option<std::time::Duration>,
    total_bytes: u64,
    since: Instant,
    window_frames: u64,
    window_bytes: u64,
    g2g: Histogram,
    pts: Histogram,
    net: Histogram,
    decode: Histogram,
    total_g2g: Histogram,
    total_pts: Histogram,
    total_net: Histogram,
    total_decode: Histogram,
    /// The audio player's figures, when the broadcast has audio.
    pub audio: Option<Arc<Mutex<AudioStats>>>,
    /// What adds its own figures: input-to-photon when this viewer sends input, the window.
    pub parts: Vec<Arc<dyn Part>>,
    /// What the connection's keeper measures.
    pub link: Option<Arc<LinkFigures>>,
    /// What `--record` has written, when recording.
    pub record: Option<Arc<lantern_net::record::Progress>>,
    flash_on: bool,
    /// Salsify's per-frame delay, stalls and the share of frames shown (stamped content).
    frame_delay: FrameDelay,
    /// Since when the stream has been away, while it is.
    away_since: Option<Instant>,
    /// Time spent waiting for the stream to come back, over the outages that ended.
    away_total: std::time::Duration,
    /// Per-second lines their reader left no room for.
    lines_dropped: u64,
    /// Frames shown since the last stamped one whose stamp could not be read: the next gap in
    /// stamp numbers covers them, and they were shown, not dropped.
    unstamped_run: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            summary: Summary::default(),
            codec: None,
            first: None,
            join: None,
            total_bytes: 0,
            since: Instant::now(),
            window_frames: 0,
            window_bytes: 0,
            g2g: Histogram::new(),
            pts: Histogram::new(),
            net: Histogram::new(),
            decode: Histogram::new(),
            total_g2g: Histogram::new(),
            total_pts: Histogram::new(),
            total_net: Histogram::new(),
            total_decode: Histogram::new(),
            audio: None,
            parts: Vec::new(),
            link: None,
            record: None,
            flash_on: false,
            frame_delay: FrameDelay::new(),
            away_since: None,
            away_total: std::time::Duration::ZERO,
            unstamped_run: 0,
            lines_dropped: 0,
        }
    }
}

impl Stats {
    /// A frame arrived: its size, and its capture time per the broadcast clock if known.
    pub fn received(&mut self, bytes: usize, sent_unix_us: Option<u64>, arrived_unix_us: u64) {
        if self.first.is_none() {
            // The first second's window starts with the first frame, not with the wait for
            // the broadcast and its keyframe (which would read as a second at 0 fps).
            let now = Instant::now();
            self.first = Some(now);
            self.since = now;
        }
        self.window_bytes += bytes as u64;
        self.total_bytes += bytes as u64;
        if let Some(sent) = sent_unix_us {
            let us = clock::elapsed_us(sent, arrived_unix_us);
            self.net.record(us);
            self.total_net.record(us);
        }
    }

    /// A frame was decoded (taking `decode_us`) and handed to the output at `shown_unix_us`;
    /// `captured_unix_us` is its capture time per its PTS, when the catalog has a clock.
    pub fn shown(
        &mut self,
        stamp: Option<Stamp>,
        captured_unix_us: Option<u64>,
        decode_us: u64,
        shown_unix_us: u64,
    ) {
        self.summary.frames += 1;
        self.window_frames += 1;
        if self.join.is_none() {
            self.join = self.first.map(|first| first.elapsed());
        }
        self.decode.record(decode_us);
        self.total_decode.record(decode_us);
        if let Some(captured) = captured_unix_us {
            let us = clock::elapsed_us(captured, shown_unix_us);
            self.pts.record(us);
            self.total_pts.record(us);
        }
        let Some(stamp) = stamp else {
            self.summary.unstamped += 1;
            self.unstamped_run += 1;
            return;
        };
        if let Some(last) = self.summary.last_stamp
            && stamp.frame > last
        {
            let gap = (stamp.frame - last - 1) as u64;
            self.summary.drops += gap.saturating_sub(self.unstamped_run);
        }
        self.unstamped_run = 0;
        self.summary.last_stamp = Some(stamp.frame);
        self.frame_delay
            .shown(stamp.frame, stamp.capture_us, shown_unix_us);
        let us = clock::elapsed_us(stamp.capture_us, shown_unix_us);
        self.g2g.record(us);
        self.total_g2g.record(us);
    }

    /// Hand a per-second line to `events`' reader. One a minute behind loses it, counted in
    /// the closing line; one that left wants none.
    pub fn send(&mut self, events: &crate::Events, line: Line) {
        if let Err(TrySendError::Full(_)) = events.try_send(line) {
            self.lines_dropped += 1;
        }
    }

    /// The stream went away: reconnecting and resubscribing until it is back.
    pub fn away(&mut self) {
        self.summary.outages += 1;
        self.away_since = Some(Instant::now());
    }

    /// The stream is back.
    pub fn back(&mut self) {
        if let Some(since) = self.away_since.take() {
            self.away_total += since.elapsed();
        }
    }

    /// Seconds without the stream, the current outage included (and the silence before
    /// each connection replaced under it).
    fn away_s(&self) -> f64 {
        let current = self.away_since.map_or(0.0, |t| t.elapsed().as_secs_f64());
        let silent_ms = self
            .link
            .as_ref()
            .map(|link| link.silent_ms.load(Ordering::Relaxed));
        let silent = silent_ms.unwrap_or(0) as f64 / 1000.0;
        ((self.away_total.as_secs_f64() + current + silent) * 10.0).round() / 10.0
    }

    /// Whether a shown frame had the A/V sync flash: its first frame pairs with a beep.
    pub fn flash(&mut self, visible: bool, shown_unix_us: u64) {
        if visible
            && !self.flash_on
            && let Some(audio) = &self.audio
        {
            lock(audio).flash(shown_unix_us);
        }
        self.flash_on = visible;
    }

    /// Which latency this run can report: from stamps when pictures carry them, else from
    /// timestamps.
    fn latency_from(g2g: &Histogram, pts: &Histogram) -> Option<LatencyFrom> {
        if g2g.count() > 0 {
            Some(LatencyFrom::Stamp)
        } else if pts.count() > 0 {
            Some(LatencyFrom::Pts)
        } else {
            None
        }
    }

    /// The per-second line, when a second has passed (the window then restarts).
    pub fn tick(&mut self) -> Option<Line> {
        let elapsed = self.since.elapsed().as_secs_f64();
        if elapsed < 1.0 {
            return None;
        }
        let mut line = Line {
            fps: Some((self.window_frames as f64 / elapsed * 10.0).round() / 10.0),
            kbps: Some((self.window_bytes as f64 * 8.0 / elapsed / 1000.0).round()),
            frames: self.summary.frames,
            drops: self.summary.drops,
            latency_from: Self::latency_from(&self.g2g, &self.pts),
            g2g_ms_p50: ms(self.g2g.quantile(0.5)),
            g2g_ms_p99: ms(self.g2g.quantile(0.99)),
            pts_to_shown_ms_p50: ms(self.pts.quantile(0.5)),
            pts_to_shown_ms_p99: ms(self.pts.quantile(0.99)),
            net_ms_p50: ms(self.net.quantile(0.5)),
            net_ms_p99: ms(self.net.quantile(0.99)),
            decode_ms_p50: ms(self.decode.quantile(0.5)),
            reconnecting: Some(self.away_since.is_some()),
            outages: self.outages(),
            behind_skipped: self.summary.behind_skipped,
            audio: self.audio.as_ref().map(|audio| lock(audio).tick()),
            ..Line::default()
        };
        self.shared_figures(&mut line);
        self.since = Instant::now();
        self.window_frames = 0;
        self.window_bytes = 0;
        for h in [
            &mut self.g2g,
            &mut self.pts,
            &mut self.net,
            &mut self.decode,
        ] {
            h.clear();
        }
        Some(line)
    }

    /// The closing line, over the whole run.
    pub fn total(&self) -> Line {
        let seconds = self.first.map_or(0.0, |t| t.elapsed().as_secs_f64());
        let kbps =
            (seconds > 0.0).then(|| (self.total_bytes as f64 * 8.0 / seconds / 1000.0).round());
        let delay = self.frame_delay.figures();
        let frame_delay = (delay.source_frames > 0).then(|| FrameDelayFigures {
            frame_delay_ms_p50: ms(delay.p50_us),
            frame_delay_ms_p95: ms(delay.p95_us),
            frame_delay_ms_p99: ms(delay.p99_us),
            frame_delay_ms_max: ms(delay.max_us),
            shown_fraction: (delay.shown_fraction() * 1000.0).round() / 1000.0,
            stalls: delay.stalls,
            long_stalls: delay.long_stalls,
            stalled_s: (delay.stalled_us as f64 / 1e5).round() / 10.0,
        });
        let mut line = Line {
            closing: true,
            seconds: Some((seconds * 10.0).round() / 10.0),
            join_ms: ms(self.join.map(|join| join.as_micros() as u64)),
            kbps,
            bytes: Some(self.total_bytes),
            frames: self.summary.frames,
            drops: self.summary.drops,
            unstamped: Some(self.summary.unstamped),
            latency_from: Self::latency_from(&self.total_g2g, &self.total_pts),
            g2g_ms_p50: ms(self.total_g2g.quantile(0.5)),
            g2g_ms_p99: ms(self.total_g2g.quantile(0.99)),
            g2g_ms_max: ms(self.total_g2g.max()),
            pts_to_shown_ms_p50: ms(self.total_pts.quantile(0.5)),
            pts_to_shown_ms_p99: ms(self.total_pts.quantile(0.99)),
            net_ms_p50: ms(self.total_net.quantile(0.5)),
            net_ms_p99: ms(self.total_net.quantile(0.99)),
            decode_ms_p50: ms(self.total_decode.quantile(0.5)),
            outages: self.outages(),
            behind_skipped: self.summary.behind_skipped,
            outage_s: Some(self.away_s()),
            lines_dropped: self.lines_dropped,
            frame_delay,
            audio: self.audio.as_ref().map(|audio| lock(audio).total()),
            ..Line::default()
        };
        self.shared_figures(&mut line);
        line
    }

    /// What the other parts measured, the connection's RTT, the recording and the codec.
    fn shared_figures(&self, line: &mut Line) {
        for part in &self.parts {
            part.fill(line);
        }
        line.rtt_ms = self.rtt_ms();
        line.record = self.record.as_ref().map(|record| RecordFigures {
            record_bytes: record.bytes(),
            record_s: (record.media_seconds() * 10.0).round() / 10.0,
        });
        line.codec.clone_from(&self.codec);
    }

    fn rtt_ms(&self) -> Option<f64> {
        let us = self.link.as_ref()?.rtt_us.load(Ordering::Relaxed);
        ms((us > 0).then_some(us))
    }

    /// Outages the player waited out, and connections its keeper replaced under it.
    fn outages(&self) -> u64 {
        let replaced = self
            .link
            .as_ref()
            .map(|link| link.replaced.load(Ordering::Relaxed));
        self.summary.outages + replaced.unwrap_or(0)
    }
}

/// `--latency-log`: one CSV line per shown frame (frame number, capture and shown time in
/// µs since the UNIX epoch), for plotting latency over time.
pub struct LatencyLog(Option<BufWriter<File>>);

impl LatencyLog {
    pub fn create(path: Option<&Path>) -> Result<Self, Error> {
        let Some(path) = path else {
            return Ok(Self(None));
        };
        let err = |e: std::io::Error| Error::output(path.display().to_string(), e);
        let mut file = BufWriter::new(File::create(path).map_err(err)?);
        writeln!(file, "frame,capture_unix_us,shown_unix_us").map_err(err)?;
        Ok(Self(Some(file)))
    }

    pub fn record(&mut self, stamp: Stamp, shown_unix_us: u64) -> Result<(), Error> {
        if let Some(file) = &mut self.0 {
            writeln!(file, "{},{},{shown_unix_us}", stamp.frame, stamp.capture_us)
                .map_err(|e| Error::output("latency log", e))?;
        }
        Ok(())
    }

    pub fn finish(&mut self) -> Result<(), Error> {
        if let Some(file) = &mut self.0 {
            file.flush().map_err(|e| Error::output("latency log", e))?;
        }
        Ok(())
    }
}

/// A lock whose data stays usable after a panic elsewhere (plain counters).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame shown whose stamp the codec damaged is not a drop: 5, (6 unreadable), 7, then 9
    /// is one frame dropped (8), not two.
    #[test]
    fn a_shown_frame_with_an_unreadable_stamp_is_not_a_drop() {
        let mut stats = Stats::default();
        for frame in [Some(5), None, Some(7), Some(9)] {
            let stamp = frame.map(|frame| Stamp {
                frame,
                capture_us: 1_000,
            });
            stats.shown(stamp, None, 10, 3_000);
        }
        assert_eq!((stats.summary.drops, stats.summary.unstamped), (1, 1));
    }

    #[test]
    fn gaps_in_frame_numbers_count_as_drops() {
        let mut stats = Stats::default();
        for frame in [5, 6, 9, 10] {
            stats.shown(
                Some(Stamp {
                    frame,
                    capture_us: 1_000,
                }),
                Some(1_500),
                10,
                3_000,
            );
        }
        stats.shown(None, None, 10, 3_000);
        assert_eq!(
            stats.summary,
            Summary {
                frames: 5,
                drops: 2,
                unstamped: 1,
                last_stamp: Some(10),
                outages: 0,
                behind_skipped: 0,
            }
        );
        let total = stats.total();
        assert_eq!(total.g2g_ms_p50, Some(2.0));
        // Frames 7 and 8 were never shown: 4 of the source's 6 frames since the first shown.
        let delay = total.frame_delay.unwrap();
        assert_eq!(delay.frame_delay_ms_p50, Some(2.0));
        assert_eq!(delay.shown_fraction, 0.667);
        assert_eq!(total.pts_to_shown_ms_p50, Some(1.5));
        assert_eq!(total.latency_from, Some(LatencyFrom::Stamp));
        assert_eq!(total.net_ms_p50, None);

        // Outages are counted, and the time away summed.
        stats.away();
        stats.back();
        stats.away();
        assert_eq!(stats.summary.outages, 2);
        assert_eq!(stats.total().outages, 2);

        // Unstamped pictures still report a latency, from their timestamps, labelled so.
        let mut stats = Stats::default();
        stats.shown(None, Some(1_000), 10, 4_000);
        let total = stats.total();
        assert_eq!(total.latency_from, Some(LatencyFrom::Pts));
        assert_eq!(total.pts_to_shown_ms_p50, Some(3.0));
        assert_eq!(total.g2g_ms_p50, None);
    }

    /// A reader that falls a minute behind loses lines, counted; one that left is no loss.
    #[test]
    fn lines_a_reader_leaves_no_room_for_are_counted() {
        let mut stats = Stats::default();
        let (events, mut lines) = crate::events();
        for _ in 0..crate::EVENTS_QUEUED + 2 {
            stats.send(&events, Line::default());
        }
        assert_eq!(stats.total().lines_dropped, 2);
        assert!(
            lines.try_recv().is_ok(),
            "the first lines wait for their reader"
        );
        drop(lines);
        stats.send(&events, Line::default());
        let total = serde_json::to_value(stats.total()).unwrap();
        assert_eq!(total["lines_dropped"], 2);
    }

    /// The wait before the first frame is no part of the first second's figures.
    #[test]
    fn the_first_window_starts_with_the_first_frame() {
        let mut stats = Stats {
            since: Instant::now() - std::time::Duration::from_secs(5),
            ..Stats::default()
        };
        stats.received(1000, None, 1);
        stats.shown(None, None, 10, 2);
        assert!(
            stats.tick().is_none(),
            "a second has not passed since the first frame"
        );
    }

    #[test]
    fn audio_gaps_and_offsets_are_reported() {
        let audio = Arc::new(Mutex::new(AudioStats::default()));
        let mut stats = Stats {
            audio: Some(audio.clone()),
            ..Stats::default()
        };
        {
            let mut audio = audio.lock().unwrap();
            // Captured at 1 000 µs, handed over at 13 000.
            audio.frame(Some(1_000), 13_000);
            audio.gap(480);
            audio.beep(10_004_000);
        }
        // The flash's first frame pairs with the beep; later flash frames do not.
        stats.flash(true, 10_000_000);
        stats.flash(true, 10_016_000);
        let total = serde_json::to_value(stats.total()).unwrap();
        assert_eq!(total["audio_frames"], 1);
        assert_eq!(total["audio_ms_p50"], 12.0);
        assert_eq!(total["audio_gaps"], 1);
        assert_eq!(total["audio_missing_ms"], 10.0);
        assert_eq!(total["av_pairs"], 1);
        assert_eq!(total["av_offsets_ms"], serde_json::json!([4.0]));
    }
}
