//! Where decoded frames go: a y4m file, or stdout for a viewer (`moq-sub -o - | mpv -`),
//! written straight from the decoder's buffers.

use std::fs::File;
use std::io::{BufWriter, Write};

use lantern_proto::picture::Image;
use lantern_proto::y4m;

use crate::Error;

type Target = Box<dyn Write + Send>;

pub enum Output {
    /// Frames are only measured.
    None,
    /// The header is written with the first picture, whose size it carries.
    Waiting(Target, Option<f64>),
    Writing(y4m::Writer<Target>),
}

impl Output {
    /// `None` discards frames (stats only); `-` is stdout; anything else a file path.
    pub fn open(path: Option<&str>, framerate: Option<f64>) -> Result<Self, Error> {
        let target: Target = match path {
            None => return Ok(Self::None),
            Some("-") => Box::new(BufWriter::with_capacity(1 << 20, std::io::stdout())),
            Some(path) => Box::new(BufWriter::with_capacity(
                1 << 20,
                File::create(path).map_err(|e| Error::output(path, e))?,
            )),
        };
        Ok(Self::Waiting(target, framerate))
    }

    /// Write one picture (and, before the first, the y4m header with its size).
    pub fn write(&mut self, picture: &Image) -> Result<(), Error> {
        if let Self::Waiting(..) = self {
            let Self::Waiting(target, framerate) = std::mem::replace(self, Self::None) else {
                unreachable!("matched above");
            };
            let header = y4m::Header {
                width: picture.width(),
                height: picture.height(),
                rate: rate(framerate),
            };
            *self = Self::Writing(y4m::Writer::new(target, header).map_err(io)?);
        }
        let Self::Writing(writer) = self else {
            return Ok(());
        };
        let header = writer.header();
        if (header.width, header.height) != (picture.width(), picture.height()) {
            return Err(Error::Output {
                what: "y4m: the video changed size mid-stream, which y4m cannot follow".into(),
                source: None,
            });
        }
        writer.write_frame(picture).map_err(io)?;
        // Flush every frame: a viewer on the other end of a pipe wants it now.
        writer.flush().map_err(io)
    }
}

fn io(err: lantern_proto::Error) -> Error {
    match err {
        lantern_proto::Error::Io(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            Error::OutputClosed
        }
        other => Error::output("y4m", other),
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
