//! Views of pictures in memory someone else owns (a decoder's or encoder's frame, a capture
//! buffer, a [`yuv::Frame`]), with their strides, so a picture is never
//! copied just to change its bookkeeping.
//!
//! - [`Image`]: a read-only picture in any format a capture hands over (I420, NV12, BGRx,
//!   BGRA), checked once when made, so converters can index it without re-checking.
//! - [`I420Mut`]: a writable 4:2:0 picture, what every source fills and the encoder takes.

use crate::{Error, yuv};

/// The pixel layouts a capture may hand over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    /// Planar 4:2:0: Y, then U and V at half size.
    I420,
    /// Semi-planar 4:2:0: Y, then interleaved UV at half size.
    Nv12,
    /// Packed 8-bit B, G, R and an unused byte (little-endian xRGB: wl_shm's XRGB8888).
    Bgrx,
    /// Packed 8-bit B, G, R, A (wl_shm's ARGB8888); alpha is ignored.
    Bgra,
}

impl PixelFormat {
    /// Planes, and for each the bytes per pixel of a row and the rows' divisor.
    fn layout(self) -> &'static [(usize, u32)] {
        match self {
            Self::I420 => &[(1, 1), (1, 2), (1, 2)],
            Self::Nv12 => &[(1, 1), (2, 2)],
            Self::Bgrx | Self::Bgra => &[(4, 1)],
        }
    }

    pub fn planes(self) -> usize {
        self.layout().len()
    }
}

/// A read-only picture: plane `i` holds rows of `strides[i]` bytes.
#[derive(Clone, Copy, Debug)]
pub struct Image<'a> {
    format: PixelFormat,
    width: u32,
    height: u32,
    planes: [&'a [u8]; 3],
    strides: [usize; 3],
}

impl<'a> Image<'a> {
    /// A view of `planes` (as many as the format has; the rest ignored). Refused when a plane
    /// is too short for its rows or a stride too narrow for its pixels.
    pub fn new(
        format: PixelFormat,
        width: u32,
        height: u32,
        planes: &[&'a [u8]],
        strides: &[usize],
    ) -> Result<Self, Error> {
        yuv::validate(width, height)?;
        let mut image = Self {
            format,
            width,
            height,
            planes: [&[]; 3],
            strides: [0; 3],
        };
        for (i, &(bytes, divisor)) in format.layout().iter().enumerate() {
            let (plane, stride) = match (planes.get(i), strides.get(i)) {
                (Some(&plane), Some(&stride)) => (plane, stride),
                _ => return Err(bad(width, height, "a plane is missing")),
            };
            let row = (width / divisor) as usize * bytes;
            let rows = (height / divisor) as usize;
            if stride < row || plane.len() < stride * (rows - 1) + row {
                return Err(bad(width, height, "a plane is too small for its stride"));
            }
            image.planes[i] = plane;
            image.strides[i] = stride;
        }
        Ok(image)
    }

    /// A view of three I420 planes with their strides.
    pub fn i420(width: u32, height: u32, planes: [(&'a [u8], usize); 3]) -> Result<Self, Error> {
        let [(y, ys), (u, us), (v, vs)] = planes;
        Self::new(PixelFormat::I420, width, height, &[y, u, v], &[ys, us, vs])
    }

    pub fn format(&self) -> PixelFormat {
        self.format
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    /// Plane `i` and its stride (empty past the format's planes).
    pub fn plane(&self, i: usize) -> (&'a [u8], usize) {
        (self.planes[i], self.strides[i])
    }
}

fn bad(width: u32, height: u32, why: &'static str) -> Error {
    Error::FrameSize { width, height, why }
}

/// A writable I420 picture in someone else's buffers: Y, U, V with their strides.
pub struct I420Mut<'a> {
    width: u32,
    height: u32,
    planes: [(&'a mut [u8], usize); 3],
}

impl<'a> I420Mut<'a> {
    /// A view of three planes; refused when one is too short for its rows.
    pub fn new(width: u32, height: u32, planes: [(&'a mut [u8], usize); 3]) -> Result<Self, Error> {
        yuv::validate(width, height)?;
        for (i, (plane, stride)) in planes.iter().enumerate() {
            let divisor = if i == 0 { 1 } else { 2 };
            let (row, rows) = ((width / divisor) as usize, (height / divisor) as usize);
            if *stride < row || plane.len() < stride * (rows - 1) + row {
                return Err(bad(width, height, "a plane is too small for its stride"));
            }
        }
        Ok(Self {
            width,
            height,
            planes,
        })
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    /// The three planes with their strides, to write.
    pub fn planes_mut(&mut self) -> [(&mut [u8], usize); 3] {
        let [(y, ys), (u, us), (v, vs)] = &mut self.planes;
        [(&mut **y, *ys), (&mut **u, *us), (&mut **v, *vs)]
    }

    /// The three planes with their strides, to read.
    pub fn planes(&self) -> [(&[u8], usize); 3] {
        let [(y, ys), (u, us), (v, vs)] = &self.planes;
        [(&**y, *ys), (&**u, *us), (&**v, *vs)]
    }

    /// A read-only view of the same picture.
    pub fn image(&self) -> Image<'_> {
        Image::i420(self.width, self.height, self.planes()).expect("checked when made")
    }

    /// Copy `from` (I420 of the same size) in, row by row.
    pub fn copy_from(&mut self, from: &Image) -> Result<(), Error> {
        if from.format != PixelFormat::I420
            || (from.width, from.height) != (self.width, self.height)
        {
            return Err(bad(from.width, from.height, "not I420 of the same size"));
        }
        let (width, height) = (self.width as usize, self.height as usize);
        for (i, (dst, dst_stride)) in self.planes_mut().into_iter().enumerate() {
            let (src, src_stride) = from.plane(i);
            let (row, rows) = if i == 0 {
                (width, height)
            } else {
                (width / 2, height / 2)
            };
            copy_rows(src, src_stride, dst, dst_stride, row, rows);
        }
        Ok(())
    }
}

/// Copy `rows` rows of `row` bytes between strided planes (one copy when both are packed).
pub fn copy_rows(
    src: &[u8],
    src_stride: usize,
    dst: &mut [u8],
    dst_stride: usize,
    row: usize,
    rows: usize,
) {
    if src_stride == row && dst_stride == row {
        dst[..row * rows].copy_from_slice(&src[..row * rows]);
        return;
    }
    for r in 0..rows {
        dst[r * dst_stride..][..row].copy_from_slice(&src[r * src_stride..][..row]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_check_their_planes() {
        let data = vec![0u8; 64 * 2 * 4];
        assert!(Image::new(PixelFormat::Bgrx, 64, 2, &[&data], &[256]).is_ok());
        assert!(Image::new(PixelFormat::Bgrx, 64, 2, &[&data], &[200]).is_err());
        assert!(Image::new(PixelFormat::Bgrx, 64, 4, &[&data], &[256]).is_err());
        assert!(Image::new(PixelFormat::Nv12, 64, 2, &[&data], &[64]).is_err());
        let (y, uv) = data.split_at(128);
        assert!(Image::new(PixelFormat::Nv12, 64, 2, &[y, uv], &[64, 64]).is_ok());
    }

    #[test]
    fn strided_copies_keep_pixels_and_padding() {
        let mut src = yuv::Frame::new(4, 2).unwrap();
        for (i, b) in src.data_mut().iter_mut().enumerate() {
            *b = i as u8;
        }
        let (mut y, mut u, mut v) = (vec![99u8; 12], vec![99u8; 3], vec![99u8; 3]);
        let mut dst = I420Mut::new(4, 2, [(&mut y, 6), (&mut u, 3), (&mut v, 3)]).unwrap();
        dst.copy_from(&src.image()).unwrap();
        assert_eq!(y, [0, 1, 2, 3, 99, 99, 4, 5, 6, 7, 99, 99]);
        assert_eq!(
            (u[..2].to_vec(), v[..2].to_vec()),
            (vec![8, 9], vec![10, 11])
        );
        assert!(I420Mut::new(4, 2, [(&mut y, 3), (&mut u, 3), (&mut v, 3)]).is_err());
    }
}
