//! Where decoded frames go: a y4m file, or stdout for a viewer (`moq-sub -o - | mpv -`).

use std::fs::File;
use std::io::{BufWriter, Write};

use lantern_proto::{y4m, yuv};

use crate::Error;
use crate::decode::Picture;

/// The error text for a viewer that closed its end of the pipe: a normal way to stop.
pub const CLOSED: &str = "closed by the reader";

pub struct Output {
    target: Option<Box<dyn Write + Send>>,
    framerate: Option<f64>,
    writer: Option<y4m::Writer<Box<dyn Write + Send>>>,
    frame: Option<yuv::Frame>,
}

impl Output {
    /// `None` discards frames (stats only); `-` is stdout; anything else a file path.
    pub fn open(path: Option<&str>, framerate: Option<f64>) -> Result<Self, Error> {
        let target: Option<Box<dyn Write + Send>> = match path {
            None => None,
            Some("-") => Some(Box::new(BufWriter::with_capacity(
                1 << 20,
                std::io::stdout(),
            ))),
            Some(path) => Some(Box::new(BufWriter::with_capacity(
                1 << 20,
                File::create(path).map_err(|e| Error::Output(format!("{path}: {e}")))?,
            ))),
        };
        Ok(Self {
            target,
            framerate,
            writer: None,
            frame: None,
        })
    }

    /// Write one picture (and, before the first, the y4m header with its size).
    pub fn write(&mut self, picture: &Picture) -> Result<(), Error> {
        let (width, height) = (picture.width(), picture.height());
        if self.target.is_none() && self.writer.is_none() {
            return Ok(());
        }
        let frame = match &mut self.frame {
            Some(frame) if (frame.width(), frame.height()) == (width, height) => frame,
            Some(_) => {
                return Err(Error::Output(
                    "the video changed size mid-stream; y4m cannot follow".into(),
                ));
            }
            None => self
                .frame
                .insert(yuv::Frame::new(width, height).map_err(|e| Error::Output(e.to_string()))?),
        };
        picture.copy_to(frame);
        if self.writer.is_none() {
            let header = y4m::Header {
                width,
                height,
                rate: rate(self.framerate),
            };
            let target = self.target.take().expect("checked above");
            self.writer = Some(y4m::Writer::new(target, header).map_err(io)?);
        }
        let writer = self.writer.as_mut().expect("set above");
        writer.write_frame(frame).map_err(io)?;
        // Flush every frame: a viewer on the other end of a pipe wants it now.
        writer.flush().map_err(io)
    }
}

fn io(err: lantern_proto::Error) -> Error {
    match err {
        lantern_proto::Error::Io(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            Error::Output(CLOSED.into())
        }
        other => Error::Output(other.to_string()),
    }
}

/// The y4m rate for a catalog framerate (60 when it gives none).
fn rate(fps: Option<f64>) -> (u32, u32) {
    match fps.filter(|f| f.is_finite() && *f > 0.0 && *f <= 1000.0) {
        Some(f) if f.fract() == 0.0 => (f as u32, 1),
        Some(f) => ((f * 1000.0).round() as u32, 1000),
        None => (60, 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_framerates_become_y4m_rates() {
        assert_eq!(rate(Some(60.0)), (60, 1));
        assert_eq!(rate(Some(29.97)), (29970, 1000));
        assert_eq!(rate(None), (60, 1));
        assert_eq!(rate(Some(f64::NAN)), (60, 1));
    }
}
