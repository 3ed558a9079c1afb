//! The frame stamp: a strip of black and white blocks drawn into the top of each frame,
//! carrying the frame number and the capture time (UNIX µs); and the input echo, a second
//! strip right under it, carrying how many presses the app has received.
//!
//! The stamp is how glass-to-glass latency is measured: the subscriber reads it back from
//! the decoded pixels, so the figure covers every stage (encode, network, decode) and does
//! not trust any container timestamp. The echo is how input-to-photon is measured: the test
//! app draws it, and a viewer that counts the presses it sent finds the first picture whose
//! count covers each. Blocks are macroblock-sized (16 px, 8 px on frames narrower than 640)
//! and full-range black/white, so H.264 at ordinary bitrates keeps them; a magic byte and a
//! CRC-16 reject a frame that does not carry a strip.
//!
//! Each strip's layout, bit by bit, most significant first, left to right then top to bottom:
//! magic (8) · a 32-bit count · 64-bit µs since the UNIX epoch · CRC-16/CCITT of those (16).
//! The stamp's magic is `0xA5` (frame number, capture time), the echo's `0x5A` (presses
//! received, when the last one arrived).

use crate::Error;
use crate::picture::{I420Mut, Image};

const STAMP_MAGIC: u8 = 0xA5;
const ECHO_MAGIC: u8 = 0x5A;
const BYTES: usize = 15;
const BITS: usize = BYTES * 8;
const WHITE: u8 = 235;
const BLACK: u8 = 16;

/// What a stamp carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// Counts frames from the source's first; a gap means frames were dropped.
    pub frame: u32,
    /// When the frame was captured, in µs since the UNIX epoch.
    pub capture_us: u64,
}

/// Where the stamp's blocks sit in a frame of a given size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    block: usize,
    per_row: usize,
}

impl Layout {
    /// The layout for a frame size; frames too small to carry a stamp are refused.
    pub fn new(width: u32, height: u32) -> Result<Self, Error> {
        let block = if width >= 640 { 16 } else { 8 };
        let per_row = width as usize / block;
        let layout = Self { block, per_row };
        if per_row < 16 || layout.height() > height as usize {
            return Err(Error::FrameSize {
                width,
                height,
                why: "too small to carry a frame stamp (at least 128x64)",
            });
        }
        Ok(layout)
    }

    /// Rows of pixels the strip covers from the top of the frame.
    pub fn height(&self) -> usize {
        BITS.div_ceil(self.per_row) * self.block
    }

    /// Top-left pixel of bit `i`'s block.
    fn origin(&self, i: usize) -> (usize, usize) {
        (
            (i % self.per_row) * self.block,
            (i / self.per_row) * self.block,
        )
    }
}

/// What the echo strip carries: the test app's answer to input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Echo {
    /// Key presses (modifiers aside) and button presses the app has received so far.
    pub presses: u32,
    /// When the app received the last of them, in µs since the UNIX epoch (0 before any).
    pub received_us: u64,
}

impl Stamp {
    /// Draw the stamp into the top of `frame`.
    pub fn write(&self, frame: &mut I420Mut) -> Result<(), Error> {
        write_strip(frame, 0, STAMP_MAGIC, self.frame, self.capture_us)
    }

    /// Read a stamp back from a (decoded) picture; `None` when there is none or it is damaged.
    pub fn read(image: &Image) -> Option<Self> {
        let (y, stride) = image.plane(0);
        Self::read_luma(y, stride, image.width(), image.height())
    }

    /// Read a stamp from a bare luma plane with its stride (a decoder's own buffer).
    pub fn read_luma(luma: &[u8], stride: usize, width: u32, height: u32) -> Option<Self> {
        let (frame, capture_us) = read_strip(luma, stride, width, height, 0, STAMP_MAGIC)?;
        Some(Self { frame, capture_us })
    }
}

impl Echo {
    /// Draw the echo into `frame`, right under the stamp.
    pub fn write(&self, frame: &mut I420Mut) -> Result<(), Error> {
        write_strip(frame, 1, ECHO_MAGIC, self.presses, self.received_us)
    }

    /// Read the echo back from a (decoded) picture; `None` when there is none.
    pub fn read(image: &Image) -> Option<Self> {
        let (y, stride) = image.plane(0);
        let (presses, received_us) =
            read_strip(y, stride, image.width(), image.height(), 1, ECHO_MAGIC)?;
        Some(Self {
            presses,
            received_us,
        })
    }
}

fn strip_bytes(magic: u8, count: u32, us: u64) -> [u8; BYTES] {
    let mut out = [0u8; BYTES];
    out[0] = magic;
    out[1..5].copy_from_slice(&count.to_be_bytes());
    out[5..13].copy_from_slice(&us.to_be_bytes());
    let crc = crc16(&out[..13]);
    out[13..15].copy_from_slice(&crc.to_be_bytes());
    out
}

/// Draw strip number `index` (0 the stamp, 1 the echo) into `frame`.
fn write_strip(
    frame: &mut I420Mut,
    index: usize,
    magic: u8,
    count: u32,
    us: u64,
) -> Result<(), Error> {
    let layout = Layout::new(frame.width(), frame.height())?;
    let top = index * layout.height();
    if top + layout.height() > frame.height() as usize {
        return Err(Error::FrameSize {
            width: frame.width(),
            height: frame.height(),
            why: "too small to carry the input echo under the frame stamp",
        });
    }
    let bytes = strip_bytes(magic, count, us);
    let [(y, y_stride), (u, c_stride), (v, _)] = frame.planes_mut();
    let b = layout.block;
    for i in 0..BITS {
        let bit = bytes[i / 8] >> (7 - i % 8) & 1;
        let (x0, y0) = layout.origin(i);
        let y0 = y0 + top;
        for row in y0..y0 + b {
            y[row * y_stride + x0..][..b].fill(if bit == 1 { WHITE } else { BLACK });
        }
        // Neutral chroma under the block, so colour bleeding never shifts its luma.
        for row in y0 / 2..(y0 + b) / 2 {
            u[row * c_stride + x0 / 2..][..b / 2].fill(128);
            v[row * c_stride + x0 / 2..][..b / 2].fill(128);
        }
    }
    Ok(())
}

/// Read strip number `index` from a luma plane: its count and µs, when its magic and CRC hold.
fn read_strip(
    luma: &[u8],
    stride: usize,
    width: u32,
    height: u32,
    index: usize,
    magic: u8,
) -> Option<(u32, u64)> {
    let layout = Layout::new(width, height).ok()?;
    let top = index * layout.height();
    if stride < width as usize
        || top + layout.height() > height as usize
        || luma.len() < stride * (top + layout.height())
    {
        return None;
    }
    let b = layout.block;
    let mut bytes = [0u8; BYTES];
    for i in 0..BITS {
        let (x0, y0) = layout.origin(i);
        let y0 = y0 + top;
        // Average the block's centre half only: its edges carry the most ringing.
        let (mut sum, mut count) = (0u32, 0u32);
        for row in y0 + b / 4..y0 + 3 * b / 4 {
            for &px in &luma[row * stride + x0 + b / 4..][..b / 2] {
                sum += px as u32;
                count += 1;
            }
        }
        if sum / count >= 128 {
            bytes[i / 8] |= 1 << (7 - i % 8);
        }
    }
    let crc = u16::from_be_bytes([bytes[13], bytes[14]]);
    if bytes[0] != magic || crc != crc16(&bytes[..13]) {
        return None;
    }
    Some((
        u32::from_be_bytes(bytes[1..5].try_into().ok()?),
        u64::from_be_bytes(bytes[5..13].try_into().ok()?),
    ))
}

/// CRC-16/CCITT-FALSE.
fn crc16(data: &[u8]) -> u16 {
    let mut crc = 0xFFFFu16;
    for &byte in data {
        crc ^= (byte as u16) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                crc << 1 ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yuv;

    const STAMP: Stamp = Stamp {
        frame: 0xDEAD_BEEF,
        capture_us: 1_763_700_000_123_456,
    };

    #[test]
    fn crc_matches_the_standard_check_value() {
        assert_eq!(crc16(b"123456789"), 0x29B1);
    }

    #[test]
    fn round_trip_at_common_sizes() {
        for (w, h) in [(1920, 1080), (1280, 720), (640, 360), (320, 240), (128, 64)] {
            let mut frame = yuv::Frame::new(w, h).unwrap();
            STAMP.write(&mut frame.view_mut()).unwrap();
            assert_eq!(Stamp::read(&frame.image()), Some(STAMP), "{w}x{h}");
        }
    }

    #[test]
    fn survives_noise_and_rejects_damage() {
        let mut frame = yuv::Frame::new(1280, 720).unwrap();
        STAMP.write(&mut frame.view_mut()).unwrap();
        // Mild noise everywhere (±40) does not flip a block.
        let mut seed = 1u32;
        for px in frame.data_mut().iter_mut() {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            *px = (*px as i32 + (seed >> 24) as i32 % 81 - 40).clamp(0, 255) as u8;
        }
        assert_eq!(Stamp::read(&frame.image()), Some(STAMP));
        // A flipped block breaks the CRC.
        let [(y, stride), _, _] = frame.planes_mut();
        for row in 0..16 {
            y[row * stride + 40 * 16..][..16]
                .iter_mut()
                .for_each(|p| *p = 255 - *p);
        }
        assert_eq!(Stamp::read(&frame.image()), None);
    }

    #[test]
    fn unstamped_frames_read_as_none() {
        let black = yuv::Frame::new(1280, 720).unwrap();
        assert_eq!(Stamp::read(&black.image()), None);
        let mut white = black.clone();
        white.data_mut().fill(255);
        assert_eq!(Stamp::read(&white.image()), None);
        assert_eq!(Stamp::read_luma(&[0; 10], 1280, 1280, 720), None);
    }

    #[test]
    fn the_echo_sits_under_the_stamp_and_is_told_apart_from_it() {
        let echo = Echo {
            presses: 42,
            received_us: 1_763_700_000_654_321,
        };
        for (w, h) in [(1280, 720), (320, 240)] {
            let mut frame = yuv::Frame::new(w, h).unwrap();
            assert_eq!(Echo::read(&frame.image()), None);
            STAMP.write(&mut frame.view_mut()).unwrap();
            assert_eq!(Echo::read(&frame.image()), None, "a stamp is no echo");
            echo.write(&mut frame.view_mut()).unwrap();
            assert_eq!(Stamp::read(&frame.image()), Some(STAMP), "{w}x{h}");
            assert_eq!(Echo::read(&frame.image()), Some(echo), "{w}x{h}");
        }
        // 128x64 holds the stamp but not the echo under it.
        let mut frame = yuv::Frame::new(128, 64).unwrap();
        assert!(echo.write(&mut frame.view_mut()).is_err());
    }

    #[test]
    fn tiny_frames_are_refused() {
        let mut frame = yuv::Frame::new(64, 64).unwrap();
        assert!(STAMP.write(&mut frame.view_mut()).is_err());
        assert_eq!(Stamp::read(&frame.image()), None);
    }
}
