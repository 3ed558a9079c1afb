//! YUV4MPEG2 (y4m): the raw-video pipe format that ffmpeg, GStreamer, mpv and ffplay all
//! speak. Only 8-bit 4:2:0 is accepted, the format every encoder and viewer here uses.

use std::io::{BufRead, Write};

use crate::picture::{I420Mut, Image, PixelFormat};
use crate::{Error, yuv};

const SIGNATURE: &[u8] = b"YUV4MPEG2";
const NOT_Y4M: &str = "not a y4m stream (no YUV4MPEG2 signature)";

/// The longest header or FRAME line accepted; real ones are well under 100 bytes.
const MAX_LINE: usize = 1024;

/// A stream header: frame size and rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub width: u32,
    pub height: u32,
    /// Frames per second as a fraction (numerator, denominator).
    pub rate: (u32, u32),
}

impl Header {
    /// Frames per second, as a float.
    pub fn fps(&self) -> f64 {
        self.rate.0 as f64 / self.rate.1 as f64
    }

    /// The header line, newline included.
    pub fn line(&self) -> String {
        format!(
            "YUV4MPEG2 W{} H{} F{}:{} Ip A1:1 C420jpeg\n",
            self.width, self.height, self.rate.0, self.rate.1
        )
    }

    /// Parse a header line (without its newline).
    pub fn parse(line: &str) -> Result<Self, Error> {
        let mut fields = line.split(' ');
        if fields.next().map(str::as_bytes) != Some(SIGNATURE) {
            return Err(Error::Y4m(NOT_Y4M.into()));
        }
        let (mut width, mut height, mut rate) = (None, None, None);
        for field in fields.filter(|f| !f.is_empty()) {
            // A tag is one character; a non-ASCII one is no tag y4m knows (and splitting at
            // byte 1 would cut it in half).
            let mut chars = field.chars();
            let tag = chars.next().filter(char::is_ascii).unwrap_or('?');
            let value = chars.as_str();
            match tag {
                'W' => width = Some(number(value, "width")?),
                'H' => height = Some(number(value, "height")?),
                'F' => rate = Some(ratio(value)?),
                'I' if value != "p" && value != "?" => {
                    return Err(Error::Y4m(format!(
                        "interlaced input (I{value}) is not supported"
                    )));
                }
                'C' if !matches!(value, "420jpeg" | "420paldv" | "420mpeg2" | "420") => {
                    return Err(Error::Y4mColorspace(value.to_string()));
                }
                _ => {} // A, X and the accepted I/C values change nothing here.
            }
        }
        let width = width.ok_or_else(|| Error::Y4m("header has no width (W)".into()))?;
        let height = height.ok_or_else(|| Error::Y4m("header has no height (H)".into()))?;
        let rate = rate.ok_or_else(|| Error::Y4m("header has no frame rate (F)".into()))?;
        yuv::validate(width, height)?;
        Ok(Self {
            width,
            height,
            rate,
        })
    }
}

fn number(value: &str, what: &str) -> Result<u32, Error> {
    value
        .parse()
        .map_err(|_| Error::Y4m(format!("{what} {value:?} is not a number")))
}

fn ratio(value: &str) -> Result<(u32, u32), Error> {
    let (num, den) = value
        .split_once(':')
        .ok_or_else(|| Error::Y4m(format!("frame rate {value:?} is not N:D")))?;
    let rate = (number(num, "frame rate")?, number(den, "frame rate")?);
    if rate.0 == 0 || rate.1 == 0 || rate.0 / rate.1 > 1000 {
        return Err(Error::Y4m(format!("frame rate {value} is out of range")));
    }
    Ok(rate)
}

/// Reads y4m frames into a reused [`yuv::Frame`].
pub struct Reader<R> {
    input: R,
    header: Header,
    line: Vec<u8>,
}

impl<R: BufRead> Reader<R> {
    /// Read and check the stream header.
    pub fn new(mut input: R) -> Result<Self, Error> {
        // Say "not y4m" about anything else, rather than whatever its first line breaks.
        let head = input.fill_buf()?;
        if head.len() >= SIGNATURE.len() && !head.starts_with(SIGNATURE) {
            return Err(Error::Y4m(NOT_Y4M.into()));
        }
        let mut line = Vec::with_capacity(128);
        if !read_line(&mut input, &mut line)? {
            return Err(Error::Y4m("empty input (no header)".into()));
        }
        let text =
            std::str::from_utf8(&line).map_err(|_| Error::Y4m("header is not text".into()))?;
        let header = Header::parse(text)?;
        Ok(Self {
            input,
            header,
            line,
        })
    }

    pub fn header(&self) -> Header {
        self.header
    }

    /// A frame of this stream's size, to read into.
    pub fn new_frame(&self) -> yuv::Frame {
        yuv::Frame::new(self.header.width, self.header.height).expect("header was validated")
    }

    /// Read the next frame into `frame` (which must be of the header's size), straight into
    /// its planes. `Ok(false)` at a clean end of stream; a truncated frame is an error.
    pub fn read_frame(&mut self, frame: &mut I420Mut) -> Result<bool, Error> {
        let (width, height) = (self.header.width as usize, self.header.height as usize);
        if (frame.width() as usize, frame.height() as usize) != (width, height) {
            return Err(Error::Y4m(
                "frame buffer does not match the stream size".into(),
            ));
        }
        if !read_line(&mut self.input, &mut self.line)? {
            return Ok(false);
        }
        // "FRAME", then optional parameters after a space.
        if !(self.line == b"FRAME" || self.line.starts_with(b"FRAME ")) {
            return Err(Error::Y4m("expected a FRAME marker".into()));
        }
        for (i, (plane, stride)) in frame.planes_mut().into_iter().enumerate() {
            let (row, rows) = if i == 0 {
                (width, height)
            } else {
                (width / 2, height / 2)
            };
            let result = if stride == row {
                self.input.read_exact(&mut plane[..row * rows])
            } else {
                (0..rows).try_for_each(|r| self.input.read_exact(&mut plane[r * stride..][..row]))
            };
            result.map_err(|err| match err.kind() {
                std::io::ErrorKind::UnexpectedEof => {
                    Error::Y4m("stream ends inside a frame".into())
                }
                _ => Error::Io(err),
            })?;
        }
        Ok(true)
    }
}

/// Read one `\n`-terminated line (without it) into `line`, bounded by [`MAX_LINE`].
/// `Ok(false)` at end of input before any byte.
fn read_line(input: &mut impl BufRead, line: &mut Vec<u8>) -> Result<bool, Error> {
    line.clear();
    loop {
        let available = input.fill_buf()?;
        if available.is_empty() {
            return match line.is_empty() {
                true => Ok(false),
                false => Err(Error::Y4m("stream ends inside a header line".into())),
            };
        }
        let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
            Some(end) => (&available[..end], true),
            None => (available, false),
        };
        if line.len() + chunk.len() > MAX_LINE {
            return Err(Error::Y4m(format!(
                "header line longer than {MAX_LINE} bytes"
            )));
        }
        line.extend_from_slice(chunk);
        let used = chunk.len() + done as usize;
        input.consume(used);
        if done {
            return Ok(true);
        }
    }
}

/// Writes y4m frames.
pub struct Writer<W> {
    output: W,
    header: Header,
}

impl<W: Write> Writer<W> {
    /// Write the stream header.
    pub fn new(mut output: W, header: Header) -> Result<Self, Error> {
        yuv::validate(header.width, header.height)?;
        output.write_all(header.line().as_bytes())?;
        Ok(Self { output, header })
    }

    pub fn header(&self) -> Header {
        self.header
    }

    /// Write one I420 picture, whose size must match the header.
    pub fn write_frame(&mut self, frame: &Image) -> Result<(), Error> {
        if frame.format() != PixelFormat::I420
            || (frame.width(), frame.height()) != (self.header.width, self.header.height)
        {
            return Err(Error::Y4m(format!(
                "picture is {:?} {}x{} but the stream is I420 {}x{}",
                frame.format(),
                frame.width(),
                frame.height(),
                self.header.width,
                self.header.height
            )));
        }
        self.output.write_all(b"FRAME\n")?;
        let (width, height) = (self.header.width as usize, self.header.height as usize);
        for i in 0..3 {
            let (plane, stride) = frame.plane(i);
            let (row, rows) = if i == 0 {
                (width, height)
            } else {
                (width / 2, height / 2)
            };
            if stride == row {
                self.output.write_all(&plane[..row * rows])?;
            } else {
                for r in 0..rows {
                    self.output.write_all(&plane[r * stride..][..row])?;
                }
            }
        }
        Ok(())
    }

    pub fn flush(&mut self) -> Result<(), Error> {
        Ok(self.output.flush()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            width: 4,
            height: 2,
            rate: (60, 1),
        }
    }

    #[test]
    fn round_trip() {
        let mut out = Vec::new();
        let mut writer = Writer::new(&mut out, header()).unwrap();
        let mut frame = yuv::Frame::new(4, 2).unwrap();
        for (i, byte) in frame.data_mut().iter_mut().enumerate() {
            *byte = i as u8;
        }
        writer.write_frame(&frame.image()).unwrap();
        writer.write_frame(&frame.image()).unwrap();

        let mut reader = Reader::new(&out[..]).unwrap();
        assert_eq!(reader.header(), header());
        let mut read = reader.new_frame();
        assert!(reader.read_frame(&mut read.view_mut()).unwrap());
        assert_eq!(read, frame);
        assert!(reader.read_frame(&mut read.view_mut()).unwrap());
        assert!(!reader.read_frame(&mut read.view_mut()).unwrap());
    }

    #[test]
    fn ffmpeg_style_header_with_parameters() {
        let line = "YUV4MPEG2 W1280 H720 F30000:1001 Ip A1:1 C420mpeg2 XYSCSS=420MPEG2 XCOLORRANGE=LIMITED";
        let header = Header::parse(line).unwrap();
        assert_eq!(
            (header.width, header.height, header.rate),
            (1280, 720, (30000, 1001))
        );
        assert!((header.fps() - 29.97).abs() < 0.01);
    }

    #[test]
    fn bad_headers_are_refused_with_a_reason() {
        let cases = [
            ("", "signature"),
            ("YUV4MPEG2 W4 F1:1", "height"),
            ("YUV4MPEG2 W4 H2", "frame rate"),
            ("YUV4MPEG2 W4 H2 F0:1", "out of range"),
            ("YUV4MPEG2 Wx H2 F1:1", "not a number"),
            ("YUV4MPEG2 W4 H2 F1:1 C444", "colorspace"),
            ("YUV4MPEG2 W4 H2 F1:1 It", "interlaced"),
            ("YUV4MPEG2 W5 H2 F1:1", "even"),
            // Found by the fuzzer: a field that starts with a two-byte character.
            ("YUV4MPEG2 \u{3e6}6 H16 F30:1", "no width"),
        ];
        for (line, why) in cases {
            let err = Header::parse(line).unwrap_err().to_string();
            assert!(err.contains(why), "{line:?}: {err}");
        }
    }

    #[test]
    fn truncated_streams_are_errors_not_eof() {
        let mut data = header().line().into_bytes();
        data.extend_from_slice(b"FRAME\n");
        data.extend_from_slice(&[0; 5]);
        let mut reader = Reader::new(&data[..]).unwrap();
        let mut frame = reader.new_frame();
        assert!(
            reader
                .read_frame(&mut frame.view_mut())
                .unwrap_err()
                .to_string()
                .contains("inside a frame")
        );

        let mut data = header().line().into_bytes();
        data.extend_from_slice(b"GARBAGE\n");
        let mut reader = Reader::new(&data[..]).unwrap();
        assert!(reader.read_frame(&mut frame.view_mut()).is_err());

        let why = |data: &[u8]| Reader::new(data).err().map(|e| e.to_string());
        let long = [&b"YUV4MPEG2 "[..], &[b'W'; 5000]].concat();
        assert!(why(&long).unwrap().contains("longer"));
        assert!(why(&[0xff; 5000]).unwrap().contains("signature"));
        assert!(Reader::new(&b""[..]).is_err());
    }
}
