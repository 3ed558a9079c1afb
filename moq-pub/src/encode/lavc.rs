//! H.264 through libavcodec (ffmpeg-next): libx264 in software, or NVIDIA's NVENC
//! (`h264_nvenc`) where the host has the GPU and driver for it. Either way: no B-frames, no
//! lookahead (x264's `zerolatency`, NVENC's ultra-low-latency tune with no delay), SPS/PPS
//! repeated on every keyframe, constant bitrate.
//!
//! The bitrate can change between any two frames ([`Encoder::set_bitrate`]): the rate and the
//! VBV live on the codec context, where both FFmpeg wrappers look for changes before each
//! frame and reconfigure the encoder (x264-params would be read once, at open). The VBV holds
//! a few frames, not a second, so a lower rate shows in the very next frames and no frame can
//! burst far above what the path takes. A keyframe can be asked for on any frame.

use ffmpeg_next as ffmpeg;

use super::{Backend, Packet, VBV_FRAMES, VideoSettings};
use crate::Error;
use crate::source::Format;

pub struct Encoder {
    backend: Backend,
    encoder: ffmpeg::encoder::Video,
    packet: ffmpeg::Packet,
    fps: f64,
    kbps: u32,
}

/// Put `kbps` and a VBV of [`VBV_FRAMES`] at `fps` on a codec context.
///
/// # Safety
/// `ctx` must point to a live codec context no other thread uses.
unsafe fn set_rate(ctx: *mut ffmpeg::ffi::AVCodecContext, kbps: u32, fps: f64) {
    // Both wrappers take the VBV in bits (libx264's passes it on in kbit).
    let bits = i64::from(kbps) * 1000;
    let vbv = (bits as f64 * VBV_FRAMES / fps.max(1.0)) as i64;
    // SAFETY: per the contract above.
    unsafe {
        (*ctx).bit_rate = bits;
        (*ctx).rc_max_rate = bits;
        // Never let x264's kbit round it to nothing.
        (*ctx).rc_buffer_size = vbv.clamp(1000, i64::from(i32::MAX)) as i32;
    }
}

fn ffmpeg_error(what: impl Into<String>) -> impl FnOnce(ffmpeg::Error) -> Error {
    let what = what.into();
    move |source| Error::Encoder { what, source }
}

/// The libavcodec encoder behind `backend`, and its options for real-time use.
fn codec_and_options(
    backend: Backend,
    settings: &VideoSettings,
) -> Result<(ffmpeg::Codec, ffmpeg::Dictionary<'static>), Error> {
    let name = match backend {
        Backend::Nvenc => "h264_nvenc",
        _ => "libx264",
    };
    let codec = ffmpeg::encoder::find_by_name(name).ok_or_else(|| {
        Error::Config(format!(
            "this FFmpeg has no {name} encoder (install a libavcodec built with it)"
        ))
    })?;
    let mut options = ffmpeg::Dictionary::new();
    options.set("preset", &settings.preset);
    // A keyframe asked for is an IDR, a point where any viewer can start.
    options.set("forced-idr", "1");
    match backend {
        Backend::Nvenc => {
            options.set("tune", "ull");
            options.set("rc", "cbr");
            options.set("zerolatency", "1");
            options.set("delay", "0");
            options.set("rc-lookahead", "0");
            options.set("no-scenecut", "1");
        }
        _ => {
            options.set("tune", &settings.tune);
            // No scene cuts keeps groups exactly `gop` long unless a keyframe is asked for.
            let mut params = "scenecut=0".to_string();
            if let Some(bytes) = settings.slice_max_bytes {
                params += &format!(":slice-max-size={bytes}");
            }
            options.set("x264-params", &params);
        }
    }
    Ok((codec, options))
}

impl Encoder {
    pub fn new(format: Format, settings: &VideoSettings) -> Result<Self, Error> {
        lantern_media::ffmpeg::init()?;
        let (codec, options) = codec_and_options(settings.backend, settings)?;
        let mut ctx = ffmpeg::codec::context::Context::new_with_codec(codec)
            .encoder()
            .video()
            .map_err(ffmpeg_error("encoder context"))?;
        ctx.set_width(format.width);
        ctx.set_height(format.height);
        ctx.set_format(ffmpeg::format::Pixel::YUV420P);
        ctx.set_time_base((1, 1_000_000));
        ctx.set_frame_rate(Some(((format.fps * 1000.0).round() as i32, 1000)));
        ctx.set_gop(settings.gop);
        ctx.set_max_b_frames(0);
        // SAFETY: the context is ours and not yet open; these are plain fields.
        unsafe { set_rate(ctx.as_mut_ptr(), settings.bitrate_kbps, format.fps) };
        let encoder = ctx
            .open_as_with(codec, options)
            .map_err(ffmpeg_error(format!(
                "{} (preset {})",
                codec.name(),
                settings.preset
            )))?;
        Ok(Self {
            backend: settings.backend,
            encoder,
            packet: ffmpeg::Packet::empty(),
            fps: format.fps,
            kbps: settings.bitrate_kbps,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The bitrate now, kbit/s.
    pub fn bitrate_kbps(&self) -> u32 {
        self.kbps
    }

    /// Change the bitrate (and the VBV with it) from the next frame on.
    pub fn set_bitrate(&mut self, kbps: u32) {
        if kbps != self.kbps {
            self.kbps = kbps;
            // SAFETY: the context is ours; the wrapper reads these fields before each frame it
            // is sent (on this thread) and reconfigures the encoder when they changed.
            unsafe { set_rate(self.encoder.as_mut_ptr(), kbps, self.fps) };
        }
    }

    /// Encode one frame and give every packet it yields (with zerolatency, exactly one) to
    /// `sink`. With `keyframe`, the frame is coded as an IDR (a new group for viewers).
    pub fn encode(
        &mut self,
        frame: &mut ffmpeg::frame::Video,
        pts_us: u64,
        keyframe: bool,
        sink: impl FnMut(Packet) -> Result<(), Error>,
    ) -> Result<(), Error> {
        frame.set_pts(Some(pts_us as i64));
        // Frames are reused: say what this one is, every time.
        frame.set_kind(match keyframe {
            true => ffmpeg::picture::Type::I,
            false => ffmpeg::picture::Type::None,
        });
        self.encoder
            .send_frame(frame)
            .map_err(ffmpeg_error("send frame"))?;
        self.drain(sink)
    }

    /// Flush the encoder at the end of the stream.
    pub fn finish(&mut self, sink: impl FnMut(Packet) -> Result<(), Error>) -> Result<(), Error> {
        self.encoder.send_eof().map_err(ffmpeg_error("flush"))?;
        self.drain(sink)
    }

    fn drain(&mut self, mut sink: impl FnMut(Packet) -> Result<(), Error>) -> Result<(), Error> {
        loop {
            match self.encoder.receive_packet(&mut self.packet) {
                Ok(()) => {
                    let Some(data) = self.packet.data() else {
                        continue;
                    };
                    sink(Packet {
                        data,
                        pts_us: self.packet.pts().unwrap_or(0).max(0) as u64,
                        keyframe: self.packet.is_key(),
                    })?;
                }
                Err(ffmpeg::Error::Other {
                    errno: ffmpeg::error::EAGAIN,
                })
                | Err(ffmpeg::Error::Eof) => return Ok(()),
                Err(e) => return Err(ffmpeg_error("receive packet")(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{FORMAT, encode, keyframes, mean, settings};
    use super::super::{Backend, Encoder};
    use crate::source::Cube;

    #[test]
    fn a_lower_bitrate_gives_smaller_frames_within_a_few_frames_and_a_higher_one_larger() {
        let cube = Cube::new(FORMAT).unwrap();
        let mut encoder = Encoder::new(FORMAT, &settings(Backend::X264, 4000)).unwrap();
        let high = encode(&mut encoder, &cube, 0..30, None);
        encoder.set_bitrate(400);
        assert_eq!(encoder.bitrate_kbps(), 400);
        let low = encode(&mut encoder, &cube, 30..60, None);
        // Skip the first few frames after the change (the VBV drains), then compare.
        let (before, after) = (mean(&high, 10..30), mean(&low, 34..60));
        assert!(
            after < before / 3.0,
            "frames after the drop average {after:.0} bytes, before {before:.0}"
        );
        encoder.set_bitrate(4000);
        let back = encode(&mut encoder, &cube, 60..90, None);
        let risen = mean(&back, 64..90);
        assert!(
            risen > after * 3.0,
            "frames after the rise average {risen:.0} bytes, at the low rate {after:.0}"
        );
        assert_eq!(keyframes(&back).len() + keyframes(&low).len(), 0);
    }
}
