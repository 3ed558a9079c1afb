//! FFmpeg, initialised once for the whole process.

use ffmpeg_next as ffmpeg;

use crate::Error;

/// Initialise FFmpeg (idempotent) and keep its own logging to errors: tracing carries ours.
pub fn init() -> Result<(), Error> {
    ffmpeg::init().map_err(Error::FfmpegInit)?;
    ffmpeg::util::log::set_level(ffmpeg::util::log::Level::Error);
    Ok(())
}

use ffmpeg::format::Pixel;
use lantern_proto::picture::{I420Mut, Image, PixelFormat};

/// A new I420 frame of FFmpeg's own (aligned rows, refcounted), for a pool that sources fill
/// and the encoder reads without another copy.
pub fn i420_frame(width: u32, height: u32) -> ffmpeg::frame::Video {
    ffmpeg::frame::Video::new(Pixel::YUV420P, width, height)
}

/// A writable view of an FFmpeg I420 frame's planes.
pub fn i420_mut(frame: &mut ffmpeg::frame::Video) -> Result<I420Mut<'_>, Error> {
    if !matches!(frame.format(), Pixel::YUV420P | Pixel::YUVJ420P) {
        return Err(Error::Convert(format!("{:?} is not I420", frame.format())));
    }
    let (width, height) = (frame.width(), frame.height());
    let mut planes = [(std::ptr::null_mut::<u8>(), 0usize, 0usize); 3];
    for (i, plane) in planes.iter_mut().enumerate() {
        let data = frame.data_mut(i);
        *plane = (data.as_mut_ptr(), data.len(), frame.stride(i));
    }
    // SAFETY: the three planes of one frame are disjoint regions of its buffer (FFmpeg lays
    // them out one after another), each `len` bytes long, borrowed for the frame's lifetime.
    let [y, u, v] = planes
        .map(|(ptr, len, stride)| (unsafe { std::slice::from_raw_parts_mut(ptr, len) }, stride));
    I420Mut::new(width, height, [y, u, v]).map_err(Error::Picture)
}

/// Another reference to `frame`'s buffers (no pixels copied): a decoder's picture handed to
/// another thread, which keeps it alive while the decoder moves on to new buffers.
pub fn share(frame: &ffmpeg::frame::Video) -> Result<ffmpeg::frame::Video, Error> {
    let mut shared = ffmpeg::frame::Video::empty();
    // SAFETY: both frames are valid; av_frame_ref only adds references to `frame`'s buffers
    // and copies its properties into the empty `shared`.
    let status = unsafe { ffmpeg::ffi::av_frame_ref(shared.as_mut_ptr(), frame.as_ptr()) };
    if status < 0 {
        return Err(Error::Convert(format!(
            "cannot share a frame: {}",
            ffmpeg::Error::from(status)
        )));
    }
    Ok(shared)
}

/// A read-only view of an FFmpeg frame in a format Lantern knows (a decoder's output).
pub fn image(frame: &ffmpeg::frame::Video) -> Result<Image<'_>, Error> {
    let format = match frame.format() {
        Pixel::YUV420P | Pixel::YUVJ420P => PixelFormat::I420,
        Pixel::NV12 => PixelFormat::Nv12,
        Pixel::BGRZ => PixelFormat::Bgrx,
        Pixel::BGRA => PixelFormat::Bgra,
        other => {
            return Err(Error::Convert(format!(
                "{other:?} is not a format Lantern reads"
            )));
        }
    };
    let planes: Vec<&[u8]> = (0..format.planes()).map(|i| frame.data(i)).collect();
    let strides: Vec<usize> = (0..format.planes()).map(|i| frame.stride(i)).collect();
    Image::new(format, frame.width(), frame.height(), &planes, &strides).map_err(Error::Picture)
}

/// Whether nothing else holds a reference to the frame's buffers, so it may be written.
pub fn is_writable(frame: &ffmpeg::frame::Video) -> bool {
    // SAFETY: av_frame_is_writable only reads the frame's buffer references.
    unsafe { ffmpeg::ffi::av_frame_is_writable(frame.as_ptr() as *mut _) != 0 }
}
