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
    /// own). The test cube flashes on the A/V sync schedule that starts at `sync_epoch_us`.
    pub fn open(&self, format: Format, sync_epoch_us: u64) -> Result<Box<dyn Source>, Error> {
        Ok(match self {
            Self::TestSrc => Box::new(Cube::new(format)?.with_flash(sync_epoch_us)),
            Self::Y4m(path) => Box::new(Y4m::open(path)?),
        })
    }
}

/// Paces a source at its frame rate on the monotonic clock. When the consumer falls more than
/// a frame behind, the schedule restarts from now instead of bursting to catch up: a live
/// source never delivers frames faster than real time.
pub struct Pacer {
    interval: Duration,
    next: Option<Instant>,
}

impl Pacer {
    pub fn new(fps: f64) -> Self {
        Self {
            interval: Duration::from_secs_f64(1.0 / fps),
            next: None,
        }
    }

    /// Sleep until the next frame is due.
    pub fn wait(&mut self) {
        let now = Instant::now();
        let due = *self.next.get_or_insert(now);
        if due > now {
            std::thread::sleep(due - now);
        }
        let late = now.saturating_duration_since(due) > self.interval;
        self.next = Some(if late { now } else { due } + self.interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
