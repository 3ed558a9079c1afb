//! The 4:2:0 planar (I420) frame that every stage passes around.

use crate::Error;
use crate::picture::{I420Mut, Image};

/// An I420 frame: full-size luma, then quarter-size U and V, tightly packed.
///
/// Width and height must be even, as every 4:2:0 consumer (x264, WebCodecs) expects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    width: u32,
    height: u32,
    data: Vec<u8>,
}

impl Frame {
    /// A black frame (luma 16, neutral chroma) of the given size.
    pub fn new(width: u32, height: u32) -> Result<Self, Error> {
        validate(width, height)?;
        let (luma, chroma) = plane_sizes(width, height);
        let mut data = vec![128u8; luma + 2 * chroma];
        data[..luma].fill(16);
        Ok(Self {
            width,
            height,
            data,
        })
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    /// All three planes, Y then U then V.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }

    /// The three planes as mutable slices, with their strides (width and width / 2).
    pub fn planes_mut(&mut self) -> [(&mut [u8], usize); 3] {
        let (luma, chroma) = plane_sizes(self.width, self.height);
        let (y, uv) = self.data.split_at_mut(luma);
        let (u, v) = uv.split_at_mut(chroma);
        let w = self.width as usize;
        [(y, w), (u, w / 2), (v, w / 2)]
    }

    /// The three planes with their strides.
    pub fn planes(&self) -> [(&[u8], usize); 3] {
        let (luma, chroma) = plane_sizes(self.width, self.height);
        let (y, uv) = self.data.split_at(luma);
        let (u, v) = uv.split_at(chroma);
        let w = self.width as usize;
        [(y, w), (u, w / 2), (v, w / 2)]
    }

    /// A read-only view, for anything that takes an [`Image`].
    pub fn image(&self) -> Image<'_> {
        Image::i420(self.width, self.height, self.planes()).expect("a frame's planes fit its size")
    }

    /// A writable view, for anything that fills an [`I420Mut`].
    pub fn view_mut(&mut self) -> I420Mut<'_> {
        let (width, height) = (self.width, self.height);
        I420Mut::new(width, height, self.planes_mut()).expect("a frame's planes fit its size")
    }
}

/// Bytes in the luma plane and in each chroma plane.
pub fn plane_sizes(width: u32, height: u32) -> (usize, usize) {
    let luma = width as usize * height as usize;
    (luma, luma / 4)
}

/// The size limits every stage shares: even (4:2:0) and within H.264 level 6.2.
pub fn validate(width: u32, height: u32) -> Result<(), Error> {
    let why = if width == 0 || height == 0 {
        "must not be zero"
    } else if !width.is_multiple_of(2) || !height.is_multiple_of(2) {
        "4:2:0 needs even dimensions"
    } else if width > 8192 || height > 8192 {
        "larger than 8192"
    } else {
        return Ok(());
    };
    Err(Error::FrameSize { width, height, why })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planes_split_at_quarter_chroma() {
        let mut frame = Frame::new(4, 2).unwrap();
        let [(y, ys), (u, us), (v, vs)] = frame.planes_mut();
        assert_eq!((y.len(), ys, u.len(), us, v.len(), vs), (8, 4, 2, 2, 2, 2));
        assert!(y.iter().all(|&b| b == 16) && u.iter().chain(v.iter()).all(|&b| b == 128));
    }

    #[test]
    fn odd_or_empty_sizes_are_refused() {
        assert!(Frame::new(3, 2).is_err());
        assert!(Frame::new(0, 2).is_err());
        assert!(Frame::new(16384, 2).is_err());
    }
}
