//! `--source y4m:PATH`: frames from any y4m stream (a file, or `-` for a pipe from ffmpeg or
//! GStreamer). A frame that already carries a stamp keeps it, so a feeder can time the path
//! from its own clock; any other frame is stamped on arrival.

use std::fs::File;
use std::io::{BufRead, BufReader};

use lantern_proto::{clock, stamp::Stamp, y4m, yuv};

use super::{Format, Pacer, Source};
use crate::Error;

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
            (
                Box::new(BufReader::with_capacity(1 << 20, std::io::stdin())),
                false,
            )
        } else {
            let file = File::open(path).map_err(|e| Error::Source(format!("{path}: {e}")))?;
            let regular = file.metadata().map(|m| m.is_file()).unwrap_or(false);
            (Box::new(BufReader::with_capacity(1 << 20, file)), regular)
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
