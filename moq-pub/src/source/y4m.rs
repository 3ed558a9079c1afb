//! `--source y4m:PATH`: frames from any y4m stream (a file, or `-` for a pipe from ffmpeg or
//! GStreamer). A frame that already carries a stamp keeps it, so a feeder can time the path
//! from its own clock; any other frame is stamped on arrival.

use std::fs::File;
use std::io::{BufRead, BufReader};

use lantern_proto::{clock, stamp::Stamp, y4m, yuv};

use super::{Format, Pacer, Source};
use crate::Error;

/// Enough for the header lines. Kept small because a frame is read straight into its buffer
/// only when little is buffered ahead of it; a large buffer would copy each frame twice.
const READ_BUFFER: usize = 4096;

pub struct Y4m {
    reader: y4m::Reader<Box<dyn BufRead + Send>>,
    /// Files are read at the stream's rate; pipes arrive paced by their producer.
    pacer: Option<Pacer>,
    frames: u32,
    stampable: bool,
}

impl Y4m {
    pub fn open(path: &str) -> Result<Self, Error> {
        let (input, pace): (Box<dyn BufRead + Send>, bool) = if path == "-" {
            widen_pipe(&std::io::stdin());
            (
                Box::new(BufReader::with_capacity(READ_BUFFER, std::io::stdin())),
                false,
            )
        } else {
            let file = File::open(path).map_err(|e| Error::Source(format!("{path}: {e}")))?;
            let regular = file.metadata().map(|m| m.is_file()).unwrap_or(false);
            (
                Box::new(BufReader::with_capacity(READ_BUFFER, file)),
                regular,
            )
        };
        let reader = y4m::Reader::new(input).map_err(|e| Error::Source(format!("{path}: {e}")))?;
        let header = reader.header();
        let stampable = lantern_proto::stamp::Layout::new(header.width, header.height).is_ok();
        if !stampable {
            tracing::warn!(
                width = header.width,
                height = header.height,
                "frames are too small to carry a stamp: latency will not be measurable"
            );
        }
        Ok(Self {
            pacer: pace.then(|| Pacer::new(header.fps())),
            reader,
            frames: 0,
            stampable,
        })
    }
}

impl Source for Y4m {
    fn format(&self) -> Format {
        let header = self.reader.header();
        Format {
            width: header.width,
            height: header.height,
            fps: header.fps(),
        }
    }

    fn next(&mut self, frame: &mut yuv::Frame) -> Result<Option<Stamp>, Error> {
        if let Some(pacer) = &mut self.pacer {
            pacer.wait();
        }
        if !self
            .reader
            .read_frame(frame)
            .map_err(|e| Error::Source(e.to_string()))?
        {
            return Ok(None);
        }
        let stamp = match Stamp::read(frame) {
            Some(stamp) => stamp,
            None => {
                let stamp = Stamp {
                    frame: self.frames,
                    capture_us: clock::now_unix_us(),
                };
                if self.stampable {
                    stamp
                        .write(frame)
                        .map_err(|e| Error::Source(e.to_string()))?;
                }
                stamp
            }
        };
        self.frames = self.frames.wrapping_add(1);
        Ok(Some(stamp))
    }
}

/// A pipe holds 64 KiB by default, so a 720p frame crosses it in ~22 pieces, each a sleep and
/// a wake-up on both sides. Ask for 1 MiB (Linux's default ceiling for unprivileged
/// processes); anything that is not a pipe, or a refusal, just keeps the default.
fn widen_pipe(input: &impl std::os::fd::AsRawFd) {
    // SAFETY: F_SETPIPE_SZ only changes the pipe's capacity; it fails harmlessly on other fds.
    let size = unsafe { libc::fcntl(input.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20) };
    tracing::debug!(size, "input pipe capacity");
}
