//! Where raw frames come from: the rendered test cube or any y4m stream. Every source hands
//! out stamped I420 frames, paced at its own rate, each with its frame number and capture
//! time.

mod cube;
mod y4m;

use std::str::FromStr;
use std::time::{Duration, Instant};

use lantern_proto::{stamp::Stamp, yuv};

pub use cube::{Cube, ROTATION_SECS};
pub use y4m::Y4m;

use crate::Error;

/// Frame size and rate of a source.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Format {
    pub width: u32,
    pub height: u32,
    pub fps: f64,
}

/// A producer of raw frames. `next` blocks until the next frame is due.
pub trait Source: Send {
    fn format(&self) -> Format;

    /// Fill `frame` (of [`format`](Self::format)'s size) with the next frame, stamped;
    /// `None` at the end of the stream.
    fn next(&mut self, frame: &mut yuv::Frame) -> Result<Option<Stamp>, Error>;
}

/// `--source`: `testsrc` or `y4m:PATH` (`y4m:-` for stdin).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceSpec {
    TestSrc,
    Y4m(String),
}

impl FromStr for SourceSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            None if s == "testsrc" => Ok(Self::TestSrc),
            Some(("y4m", path)) if !path.is_empty() => Ok(Self::Y4m(path.to_string())),
            _ => Err(format!(
                "unknown source {s:?}: use testsrc, y4m:PATH or y4m:-"
            )),
        }
    }
}

impl SourceSpec {
    /// Open the source; `format` sets the test source's size and rate (a y4m stream has its
    /// own). The test cube flashes on the A/V sync schedule that starts at `epoch`.
    pub fn open(&self, format: Format, epoch: SyncEpoch) -> Result<Box<dyn Source>, Error> {
        Ok(match self {
            Self::TestSrc => Box::new(Cube::new(format)?.with_flash(epoch)),
            Self::Y4m(path) => Box::new(Y4m::open(path)?),
        })
    }
}

/// The instant the test sources' beep-and-flash schedule starts from, on both clocks: the
/// cube and the tone pace themselves from it, so a flash and its beep are captured together.
#[derive(Clone, Copy, Debug)]
pub struct SyncEpoch {
    pub instant: Instant,
    pub unix_us: u64,
}

impl SyncEpoch {
    pub fn now() -> Self {
        Self {
            instant: Instant::now(),
            unix_us: lantern_proto::clock::now_unix_us(),
        }
    }
}

/// Paces a source at its frame rate on the monotonic clock, on a grid of slots from an origin
/// (the first call, unless given). When the consumer falls more than a frame behind, it skips
/// to the next slot after now instead of bursting to catch up: a live source never delivers
/// frames faster than real time.
pub struct Pacer {
    interval: Duration,
    origin: Option<Instant>,
    next_slot: u64,
}

impl Pacer {
    pub fn new(fps: f64) -> Self {
        Self {
            interval: Duration::from_secs_f64(1.0 / fps),
            origin: None,
            next_slot: 0,
        }
    }

    /// A pacer whose slot 0 is at `origin` (which may be in the past).
    pub fn on_grid(fps: f64, origin: Instant) -> Self {
        Self {
            origin: Some(origin),
            ..Self::new(fps)
        }
    }

    /// Sleep until the next slot is due; returns its number (slot n is due at origin + n
    /// intervals).
    pub fn wait(&mut self) -> u64 {
        let now = Instant::now();
        let origin = *self.origin.get_or_insert(now);
        let mut slot = self.next_slot;
        if now.saturating_duration_since(self.due(origin, slot)) > self.interval {
            let behind = now.saturating_duration_since(origin).as_secs_f64();
            slot = (behind / self.interval.as_secs_f64()).ceil() as u64;
        }
        let due = self.due(origin, slot);
        if due > now {
            std::thread::sleep(due - now);
        }
        self.next_slot = slot + 1;
        slot
    }

    fn due(&self, origin: Instant, slot: u64) -> Instant {
        origin + self.interval.mul_f64(slot as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_pacer_skips_to_the_grid() {
        let origin = Instant::now() - Duration::from_millis(105);
        let mut pacer = Pacer::on_grid(100.0, origin);
        // Slot 0 was due 105 ms ago: the next slot on the grid is 11 (110 ms).
        assert_eq!(pacer.wait(), 11);
        assert_eq!(pacer.wait(), 12);
    }

    #[test]
    fn source_specs_parse() {
        assert_eq!("testsrc".parse(), Ok(SourceSpec::TestSrc));
        assert_eq!("y4m:-".parse(), Ok(SourceSpec::Y4m("-".into())));
        assert_eq!(
            "y4m:/a:b.y4m".parse(),
            Ok(SourceSpec::Y4m("/a:b.y4m".into()))
        );
        for bad in ["", "y4m:", "camera", "testsrc:x"] {
            assert!(bad.parse::<SourceSpec>().is_err(), "{bad}");
        }
    }
}
