//! What a player feels of the path, frame by frame: Salsify's metric (NSDI'18). For every
//! frame the source made, the delay from its capture to the moment it, or a newer frame, was
//! shown; a frame skipped is late by as long as the picture it should have been stayed on
//! the screen without it. Beside it: stalls (the screen unchanged for over 200 and over
//! 500 ms) and the share of the source's frames shown at all.
//!
//! Frames are known by the number in their stamp (test content). Capture times of frames
//! never shown are interpolated between the shown ones around them, so a variable frame
//! rate needs no setting. Frames before the first one shown are not counted (the viewer was
//! not there yet). Pure: it takes times, never reads a clock.

use crate::histogram::Histogram;

/// A screen unchanged for longer than this is a stall a player notices…
pub const STALL_US: u64 = 200_000;
/// …and longer than this, one that spoils play.
pub const LONG_STALL_US: u64 = 500_000;
/// A jump in frame numbers beyond this (18 minutes at 60 fps) is a new source (a publisher
/// restarted), not frames lost: counting it would say nothing true, and the bound keeps what
/// one picture (whose stamp a stranger may have drawn) can cost to a few thousand steps.
const MAX_JUMP: u32 = 1 << 16;

#[derive(Clone, Debug, Default)]
pub struct FrameDelay {
    /// The newest frame shown: its number and capture time.
    newest: Option<(u32, u64)>,
    last_shown_us: Option<u64>,
    delays: Histogram,
    source_frames: u64,
    shown: u64,
    stalls: u64,
    long_stalls: u64,
    /// Time spent in stalls beyond [`STALL_US`] (the whole gap of each).
    stalled_us: u64,
}

/// What the meter found.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Figures {
    pub p50_us: Option<u64>,
    pub p95_us: Option<u64>,
    pub p99_us: Option<u64>,
    pub max_us: Option<u64>,
    /// Source frames since the first shown, and how many of them were shown.
    pub source_frames: u64,
    pub shown: u64,
    pub stalls: u64,
    pub long_stalls: u64,
    pub stalled_us: u64,
}

impl Figures {
    /// The share of the source's frames shown (1 when none were made yet).
    pub fn shown_fraction(&self) -> f64 {
        if self.source_frames == 0 {
            1.0
        } else {
            self.shown as f64 / self.source_frames as f64
        }
    }
}

impl FrameDelay {
    pub fn new() -> Self {
        Self::default()
    }

    /// Frame `frame`, captured at `capture_us`, was shown at `shown_us` (one clock for both,
    /// or clocks whose offset the caller took out). Older frames than the newest shown, and
    /// repeats, change nothing.
    pub fn shown(&mut self, frame: u32, capture_us: u64, shown_us: u64) {
        let newer = match self.newest {
            None => Some((frame, capture_us)),
            Some((last, _)) if frame <= last => None,
            Some((last, _)) if frame - last > MAX_JUMP => {
                // A new source: start over from this frame.
                self.newest = None;
                Some((frame, capture_us))
            }
            Some(newest) => Some(newest),
        };
        let Some((from, from_capture_us)) = newer else {
            return;
        };
        if let Some(last) = self.last_shown_us {
            let gap = shown_us.saturating_sub(last);
            if gap > STALL_US {
                self.stalls += 1;
                self.stalled_us += gap;
            }
            self.long_stalls += u64::from(gap > LONG_STALL_US);
        }
        self.last_shown_us = Some(shown_us);
        self.shown += 1;
        if self.newest.is_none() {
            self.record(shown_us.saturating_sub(capture_us));
        } else {
            // Every frame after the newest shown, up to this one: shown now, at the latest.
            let span = u64::from(frame - from);
            let captures = capture_us.saturating_sub(from_capture_us);
            for step in 1..=span {
                let captured = from_capture_us + captures * step / span;
                self.record(shown_us.saturating_sub(captured));
            }
        }
        self.newest = Some((frame, capture_us));
    }

    fn record(&mut self, delay_us: u64) {
        self.source_frames += 1;
        self.delays.record(delay_us);
    }

    pub fn figures(&self) -> Figures {
        Figures {
            p50_us: self.delays.quantile(0.5),
            p95_us: self.delays.quantile(0.95),
            p99_us: self.delays.quantile(0.99),
            max_us: self.delays.max(),
            source_frames: self.source_frames,
            shown: self.shown,
            stalls: self.stalls,
            long_stalls: self.long_stalls,
            stalled_us: self.stalled_us,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1000;
    /// 60 fps, in µs.
    const FRAME: u64 = 16_667;

    /// Frame n captured at n frames, shown `delay` later.
    fn show(meter: &mut FrameDelay, n: u32, delay: u64) {
        let captured = u64::from(n) * FRAME;
        meter.shown(n, captured, captured + delay);
    }

    #[test]
    fn every_frame_shown_is_its_own_delay() {
        let mut meter = FrameDelay::new();
        for n in 100..400 {
            show(&mut meter, n, 20 * MS);
        }
        let f = meter.figures();
        assert_eq!((f.source_frames, f.shown), (300, 300));
        assert!(f.p50_us.unwrap().abs_diff(20 * MS) < MS, "{f:?}");
        assert_eq!((f.stalls, f.long_stalls), (0, 0));
        assert_eq!(f.shown_fraction(), 1.0);
    }

    #[test]
    fn a_skipped_frame_waits_for_the_next_one_shown() {
        let mut meter = FrameDelay::new();
        show(&mut meter, 0, 10 * MS);
        // Frames 1 to 3 skipped; 4 shown 10 ms after its capture.
        show(&mut meter, 4, 10 * MS);
        let f = meter.figures();
        assert_eq!((f.source_frames, f.shown), (5, 2));
        // Frame 1 waited 3 frames more than its own 10 ms.
        assert!(
            f.max_us.unwrap().abs_diff(10 * MS + 3 * FRAME) < MS,
            "{f:?}"
        );
        assert!((f.shown_fraction() - 0.4).abs() < 1e-9);
    }

    #[test]
    fn a_frozen_screen_is_a_stall_and_its_frames_wait_it_out() {
        let mut meter = FrameDelay::new();
        for n in 0..60 {
            show(&mut meter, n, 10 * MS);
        }
        // One second without a picture, then frame 120.
        let captured = 120 * FRAME;
        meter.shown(120, captured, captured + 10 * MS);
        let f = meter.figures();
        assert_eq!((f.stalls, f.long_stalls), (1, 1));
        assert!(f.stalled_us >= 1_000 * MS);
        // Frame 60 waited the whole second.
        assert!(f.max_us.unwrap() > 1_000 * MS, "{f:?}");
        assert_eq!(f.source_frames, 121);
    }

    #[test]
    fn old_frames_and_repeats_change_nothing_and_a_new_source_starts_over() {
        let mut meter = FrameDelay::new();
        show(&mut meter, 10, 5 * MS);
        show(&mut meter, 10, 5 * MS);
        show(&mut meter, 3, 5 * MS);
        assert_eq!(meter.figures().shown, 1);
        // A publisher restarted far away in numbering: no billion frames counted as lost.
        meter.shown(u32::MAX - 5, 20_000_000, 20_010_000);
        let f = meter.figures();
        assert_eq!((f.source_frames, f.shown), (2, 2));
    }
}
