//! Where raw frames come from. A [`Source`] is anything that produces pictures in real time:
//! the rendered test cube, a y4m stream, or (in host-daemon) a compositor's capture. It fills
//! the encoder's own buffer, through a [`Canvas`], so a picture is converted at most once and
//! copied no more than that on its way to the encoder.

mod cube;
mod y4m;

use std::str::FromStr;
use std::time::{Duration, Instant};

use lantern_proto::picture::{I420Mut, Image};
use lantern_proto::timing::Pacer;
use tokio_util::sync::CancellationToken;

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

/// What a source says about a frame it delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Captured {
    /// When the picture was captured, in µs since the UNIX epoch: the broadcast's PTS.
    pub capture_us: u64,
    /// The picture already carries a frame stamp (a feeder's), which must be kept.
    pub stamped: bool,
}

/// The picture a source fills: an I420 frame of the source's size, in the encoder's buffer.
pub struct Canvas<'a> {
    picture: I420Mut<'a>,
}

impl<'a> Canvas<'a> {
    /// A canvas over I420 planes outside an encoder: a capture process that fills pictures
    /// for an encoder in another process.
    pub fn new(picture: I420Mut<'a>) -> Self {
        Self { picture }
    }

    /// The I420 planes, for a source that writes I420 itself (renders, or reads a file).
    pub fn i420(&mut self) -> &mut I420Mut<'a> {
        &mut self.picture
    }

    /// Fill the canvas from a picture in any capture format (a compositor's buffer, say):
    /// the one conversion, straight from that buffer into the encoder's.
    pub fn convert(&mut self, from: &Image) -> Result<(), Error> {
        Ok(lantern_media::convert::to_i420(from, &mut self.picture)?)
    }
}

/// A producer of raw frames in real time.
///
/// `next` blocks until the next frame is there. A source whose wait can be long (a pipe, a
/// compositor) must also watch the cancellation token it was made with, and return `Ok(None)`
/// within a frame interval or so once it fires, so that a stop never waits on it.
pub trait Source: Send {
    fn format(&self) -> Format;

    /// Fill `canvas` with the next frame; `None` at the end of the stream (or on a stop).
    fn next(&mut self, canvas: &mut Canvas) -> Result<Option<Captured>, Error>;
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
    /// Open the source. `format` sets the test source's size and rate (a y4m stream has its
    /// own); the cube flashes on the A/V sync schedule that starts at `epoch`. A y4m pipe
    /// that delivers nothing for `timeout` is an error; `cancel` interrupts its reads.
    pub fn open(
        &self,
        format: Format,
        epoch: SyncEpoch,
        cancel: CancellationToken,
        timeout: Duration,
    ) -> Result<Box<dyn Source>, Error> {
        Ok(match self {
            Self::TestSrc => Box::new(Cube::new(format)?.with_flash(epoch)),
            Self::Y4m(path) => Box::new(Y4m::open(path, cancel, timeout)?),
        })
    }

    /// Whether this source's pictures are test content, which carries the frame stamp by
    /// default. A user's pictures are theirs: stamped only when asked (`--stamp`).
    pub fn is_test_content(&self) -> bool {
        matches!(self, Self::TestSrc)
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

    /// µs on the monotonic clock since the epoch.
    pub fn elapsed_us(&self) -> u64 {
        self.instant.elapsed().as_micros() as u64
    }

    /// Sleep until `pacer`'s next slot on this clock is due; returns the slot.
    pub fn pace(&self, pacer: &mut Pacer) -> u64 {
        let (slot, due_us) = pacer.next(self.elapsed_us());
        self.sleep_until(due_us);
        slot
    }

    /// Sleep until `us` after the epoch (at once if that has passed).
    pub fn sleep_until(&self, us: u64) {
        let due = self.instant + Duration::from_micros(us);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
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
