//! The one pixel conversion between a capture and the encoder: any [`Image`] (I420, NV12,
//! BGRx, BGRA) into an I420 picture, reading the capture's buffer and writing the encoder's
//! in a single pass. I420 is copied row by row; everything else goes through swscale (FFmpeg),
//! which `lantern-bench convert` measured fastest here (see the README's benchmark section).

use ffmpeg_next::ffi;
use lantern_proto::picture::{I420Mut, Image, PixelFormat};

use crate::Error;

/// Converts pictures into I420, keeping its swscale context from one frame to the next.
pub struct Converter {
    context: *mut ffi::SwsContext,
}

// SAFETY: the context is used by one thread at a time (`&mut self`) and owns no thread-bound
// state; swscale contexts may move between threads.
unsafe impl Send for Converter {}

impl Default for Converter {
    fn default() -> Self {
        Self {
            context: std::ptr::null_mut(),
        }
    }
}

impl Drop for Converter {
    fn drop(&mut self) {
        // SAFETY: a context from sws_getCachedContext (or null, which sws_freeContext allows).
        unsafe { ffi::sws_freeContext(self.context) };
    }
}

impl Converter {
    /// Convert `from` into `to`, which must have the same size.
    pub fn to_i420(&mut self, from: &Image, to: &mut I420Mut) -> Result<(), Error> {
        if (from.width(), from.height()) != (to.width(), to.height()) {
            return Err(Error::Convert(format!(
                "a {}x{} picture into a {}x{} frame",
                from.width(),
                from.height(),
                to.width(),
                to.height()
            )));
        }
        let source = match from.format() {
            PixelFormat::I420 => {
                return to.copy_from(from).map_err(Error::Picture);
            }
            PixelFormat::Nv12 => ffi::AVPixelFormat::AV_PIX_FMT_NV12,
            PixelFormat::Bgrx => ffi::AVPixelFormat::AV_PIX_FMT_BGR0,
            PixelFormat::Bgra => ffi::AVPixelFormat::AV_PIX_FMT_BGRA,
        };
        let (width, height) = (from.width() as i32, from.height() as i32);
        // SAFETY: sws_getCachedContext returns the old context when the parameters match, or
        // frees it and makes a new one; null on failure.
        self.context = unsafe {
            ffi::sws_getCachedContext(
                self.context,
                width,
                height,
                source,
                width,
                height,
                ffi::AVPixelFormat::AV_PIX_FMT_YUV420P,
                ffi::SWS_POINT,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null(),
            )
        };
        if self.context.is_null() {
            return Err(Error::Convert(format!(
                "swscale cannot convert {:?} to I420",
                from.format()
            )));
        }
        let mut src = [std::ptr::null(); 4];
        let mut src_stride = [0i32; 4];
        for i in 0..from.format().planes() {
            let (plane, stride) = from.plane(i);
            src[i] = plane.as_ptr();
            src_stride[i] = stride as i32;
        }
        let mut dst = [std::ptr::null_mut(); 4];
        let mut dst_stride = [0i32; 4];
        for (i, (plane, stride)) in to.planes_mut().into_iter().enumerate() {
            dst[i] = plane.as_mut_ptr();
            dst_stride[i] = stride as i32;
        }
        // SAFETY: Image and I420Mut checked when made that every plane holds its rows at its
        // stride for this size, so swscale reads and writes only inside them.
        let rows = unsafe {
            ffi::sws_scale(
                self.context,
                src.as_ptr(),
                src_stride.as_ptr(),
                0,
                height,
                dst.as_ptr(),
                dst_stride.as_ptr(),
            )
        };
        if rows != height {
            return Err(Error::Convert(format!(
                "swscale wrote {rows} of {height} rows"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lantern_proto::yuv;

    /// A BGRx picture of one colour, converted, gives that colour's BT.601 limited-range YUV.
    #[test]
    fn bgrx_and_nv12_become_i420() {
        crate::ffmpeg::init().unwrap();
        let (w, h) = (64u32, 32u32);
        let stride = w as usize * 4 + 16; // padded rows, as a compositor's buffer may have
        let mut bgrx = vec![0u8; stride * h as usize];
        for row in bgrx.chunks_exact_mut(stride) {
            for px in row[..w as usize * 4].chunks_exact_mut(4) {
                px.copy_from_slice(&[0, 0, 255, 0]); // pure red
            }
        }
        let image = Image::new(PixelFormat::Bgrx, w, h, &[&bgrx], &[stride]).unwrap();
        let mut out = yuv::Frame::new(w, h).unwrap();
        let mut converter = Converter::default();
        converter.to_i420(&image, &mut out.view_mut()).unwrap();
        let [(y, _), (u, _), (v, _)] = out.planes();
        let near = |a: u8, b: u8| a.abs_diff(b) <= 2;
        assert!(y.iter().all(|&p| near(p, 82)), "Y {}", y[0]);
        assert!(u.iter().all(|&p| near(p, 90)), "U {}", u[0]);
        assert!(v.iter().all(|&p| near(p, 240)), "V {}", v[0]);

        // NV12 of a known picture comes back as the same planar picture.
        let luma: Vec<u8> = (0..w * h).map(|i| (i % 200) as u8 + 16).collect();
        let chroma: Vec<u8> = (0..w * h / 2)
            .map(|i| if i % 2 == 0 { 100 } else { 150 })
            .collect();
        let image = Image::new(
            PixelFormat::Nv12,
            w,
            h,
            &[&luma, &chroma],
            &[w as usize, w as usize],
        )
        .unwrap();
        converter.to_i420(&image, &mut out.view_mut()).unwrap();
        let [(y, _), (u, _), (v, _)] = out.planes();
        assert_eq!(y, &luma[..]);
        assert!(u.iter().all(|&p| p == 100) && v.iter().all(|&p| p == 150));

        let small = yuv::Frame::new(32, 32).unwrap();
        assert!(
            converter
                .to_i420(&small.image(), &mut out.view_mut())
                .is_err()
        );
    }
}
