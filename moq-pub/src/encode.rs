//! H.264 encoding with libx264 through ffmpeg-next, tuned for latency: no B-frames, no
//! lookahead (`zerolatency`), SPS/PPS repeated on every keyframe so a late joiner can start at
//! any group, and timestamps in µs of capture time.
//!
//! The bitrate can change between any two frames ([`Encoder::set_bitrate`]): the rate and the
//! VBV live on the codec context, where FFmpeg's libx264 wrapper looks for changes before each
//! frame and reconfigures x264 (x264-params would be read once, at open). The VBV holds a few
//! frames, not a second, so a lower rate shows in the very next frames and no frame can burst
//! far above what the path takes. A keyframe can be asked for on any frame.

use ffmpeg_next as ffmpeg;

use crate::Error;
use crate::source::Format;

/// Encoder settings (`--bitrate`, `--gop`, `--preset`, `--tune`).
#[derive(Clone, Debug, PartialEq)]
pub struct H264Settings {
    /// Target bitrate in kbit/s.
    pub bitrate_kbps: u32,
    /// Frames per group of pictures: one keyframe, and one MoQ group, every `gop` frames.
    pub gop: u32,
    /// x264 preset (ultrafast … placebo).
    pub preset: String,
    /// x264 tune (zerolatency keeps the encoder from holding frames back).
    pub tune: String,
    /// Cut pictures into slices of at most this many bytes (set for RTP, so that each slice
    /// travels whole in one packet).
    pub slice_max_bytes: Option<u32>,
}

/// The encoder flags (`--bitrate`, `--gop`, `--preset`, `--tune`), shared by moq-pub and the
/// benchmark's bare-encode floor so both encode with exactly the same settings.
#[derive(clap::Args, Clone, Debug)]
pub struct H264Args {
    /// Video bitrate in kbit/s [default: 0.08 bit per pixel per frame, 4424 at 720p60].
    #[arg(long)]
    pub bitrate: Option<u32>,

    /// Frames between keyframes; each keyframe starts a MoQ group [default: one second].
    #[arg(long)]
    pub gop: Option<u32>,

    /// x264 preset: ultrafast (least CPU and delay) … veryslow.
    #[arg(long, default_value = "ultrafast")]
    pub preset: String,

    /// x264 tune; zerolatency keeps every frame from being held back.
    #[arg(long, default_value = "zerolatency")]
    pub tune: String,
}

/// The flags' own defaults, for callers that build the settings in code.
impl Default for H264Args {
    fn default() -> Self {
        Self {
            bitrate: None,
            gop: None,
            preset: "ultrafast".into(),
            tune: "zerolatency".into(),
        }
    }
}

impl H264Args {
    /// The settings for a source of `format`, defaults filled in.
    pub fn settings(&self, format: Format) -> H264Settings {
        H264Settings {
            bitrate_kbps: self
                .bitrate
                .unwrap_or_else(|| H264Settings::default_bitrate_kbps(format)),
            gop: self.gop.unwrap_or(format.fps.round().max(1.0) as u32),
            preset: self.preset.clone(),
            tune: self.tune.clone(),
            slice_max_bytes: None,
        }
    }
}

impl H264Settings {
    /// A bitrate that keeps the cube and the stamp clean: 0.08 bit per pixel per frame
    /// (about 4.4 Mbit/s at 720p60).
    pub fn default_bitrate_kbps(format: Format) -> u32 {
        ((format.width as f64 * format.height as f64 * format.fps * 0.08) / 1000.0).round() as u32
    }
}

/// One encoded access unit (Annex-B, parameter sets in band on keyframes).
pub struct Packet<'a> {
    pub data: &'a [u8],
    /// Capture time of the frame, µs since the UNIX epoch.
    pub pts_us: u64,
    pub keyframe: bool,
}

/// How many frames' worth of bits the VBV holds: small, so no frame (even a keyframe) takes
/// long to cross a path running at the bitrate. Six starved the frames after each keyframe
/// at a few hundred kbit/s (the stamp no longer read in 720p at 300 kbit/s); twelve holds.
pub const VBV_FRAMES: f64 = 12.0;

/// The lowest bitrate the encoder is ever set to, kbit/s.
pub const MIN_KBPS: u32 = 50;

pub struct Encoder {
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
    let bits = i64::from(kbps) * 1000;
    let vbv = (bits as f64 * VBV_FRAMES / fps.max(1.0)) as i64;
    // SAFETY: per the contract above.
    unsafe {
        (*ctx).bit_rate = bits;
        (*ctx).rc_max_rate = bits;
        // x264 takes the VBV in kbit: never let it round to nothing.
        (*ctx).rc_buffer_size = vbv.clamp(1000, i64::from(i32::MAX)) as i32;
    }
}

fn ffmpeg_error(what: impl Into<String>) -> impl FnOnce(ffmpeg::Error) -> Error {
    let what = what.into();
    move |source| Error::Encoder { what, source }
}

impl Encoder {
    pub fn new(format: Format, settings: &H264Settings) -> Result<Self, Error> {
        lantern_media::ffmpeg::init()?;
        if settings.gop == 0 {
            return Err(Error::Config("--gop must be at least 1".into()));
        }
        if settings.bitrate_kbps < MIN_KBPS {
            return Err(Error::Config(format!(
                "--bitrate {} kbit/s is too low (at least {MIN_KBPS})",
                settings.bitrate_kbps
            )));
        }
        let codec = ffmpeg::encoder::find_by_name("libx264").ok_or_else(|| {
            Error::Config(
                "this FFmpeg has no libx264 encoder (install libavcodec with x264)".into(),
            )
        })?;
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
        let mut options = ffmpeg::Dictionary::new();
        options.set("preset", &settings.preset);
        options.set("tune", &settings.tune);
        // A keyframe asked for is an IDR, a point where any viewer can start.
        options.set("forced-idr", "1");
        // No scene cuts keeps groups exactly `gop` long unless a keyframe is asked for.
        let mut params = "scenecut=0".to_string();
        if let Some(bytes) = settings.slice_max_bytes {
            params += &format!(":slice-max-size={bytes}");
        }
        options.set("x264-params", &params);
        let encoder = ctx
            .open_as_with(codec, options)
            .map_err(ffmpeg_error(format!(
                "libx264 (preset {}, tune {})",
                settings.preset, settings.tune
            )))?;
        Ok(Self {
            encoder,
            packet: ffmpeg::Packet::empty(),
            fps: format.fps,
            kbps: settings.bitrate_kbps,
        })
    }

    /// The bitrate now, kbit/s.
    pub fn bitrate_kbps(&self) -> u32 {
        self.kbps
    }

    /// Change the bitrate (and the VBV with it) from the next frame on; at least [`MIN_KBPS`].
    pub fn set_bitrate(&mut self, kbps: u32) {
        let kbps = kbps.max(MIN_KBPS);
        if kbps != self.kbps {
            self.kbps = kbps;
            // SAFETY: the context is ours; libx264's wrapper reads these fields before each
            // frame it is sent (on this thread) and reconfigures x264 when they changed.
            unsafe { set_rate(self.encoder.as_mut_ptr(), kbps, self.fps) };
        }
    }

    /// Encode one I420 frame (FFmpeg's own, from [`lantern_media::ffmpeg::i420_frame`], so
    /// it is handed over without a copy) and give every packet it yields (with zerolatency,
    /// exactly one) to `sink`. x264 has copied the picture when this returns: the frame may be
    /// filled again.
    ///
    /// With `keyframe`, the frame is coded as an IDR (a new group for viewers).
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
    use super::*;
    use crate::source::Cube;

    const FORMAT: Format = Format {
        width: 640,
        height: 360,
        fps: 30.0,
    };

    /// Encode frames `from..to` of the cube, giving each packet's size and keyframe flag.
    fn encode(
        encoder: &mut Encoder,
        cube: &Cube,
        frames: std::ops::Range<u32>,
        keyframe_at: Option<u32>,
    ) -> Vec<(usize, bool)> {
        let mut out = Vec::new();
        let mut frame = lantern_media::ffmpeg::i420_frame(FORMAT.width, FORMAT.height);
        for n in frames {
            cube.render(n, &mut lantern_media::ffmpeg::i420_mut(&mut frame).unwrap())
                .unwrap();
            let pts = u64::from(n) * 33_333;
            encoder
                .encode(&mut frame, pts, keyframe_at == Some(n), |p| {
                    out.push((p.data.len(), p.keyframe));
                    Ok(())
                })
                .unwrap();
        }
        out
    }

    fn mean(sizes: &[(usize, bool)]) -> f64 {
        sizes.iter().map(|(n, _)| *n as f64).sum::<f64>() / sizes.len() as f64
    }

    fn settings(kbps: u32) -> H264Settings {
        H264Settings {
            bitrate_kbps: kbps,
            gop: 300,
            preset: "ultrafast".into(),
            tune: "zerolatency".into(),
            slice_max_bytes: None,
        }
    }

    #[test]
    fn a_lower_bitrate_gives_smaller_frames_within_a_few_frames_and_a_higher_one_larger() {
        let cube = Cube::new(FORMAT).unwrap();
        let mut encoder = Encoder::new(FORMAT, &settings(4000)).unwrap();
        let high = encode(&mut encoder, &cube, 0..30, None);
        encoder.set_bitrate(400);
        assert_eq!(encoder.bitrate_kbps(), 400);
        let low = encode(&mut encoder, &cube, 30..60, None);
        // Skip the first few frames after the change (the VBV drains), then compare.
        let (before, after) = (mean(&high[10..]), mean(&low[4..]));
        assert!(
            after < before / 3.0,
            "frames after the drop average {after:.0} bytes, before {before:.0}"
        );
        encoder.set_bitrate(4000);
        let back = encode(&mut encoder, &cube, 60..90, None);
        assert!(
            mean(&back[4..]) > after * 3.0,
            "frames after the rise average {:.0} bytes, at the low rate {after:.0}",
            mean(&back[4..])
        );
        assert!(back.iter().chain(&low).all(|(_, key)| !key));
    }

    #[test]
    fn a_keyframe_comes_when_asked_for_and_the_next_frame_is_no_keyframe() {
        let cube = Cube::new(FORMAT).unwrap();
        let mut encoder = Encoder::new(FORMAT, &settings(2000)).unwrap();
        let packets = encode(&mut encoder, &cube, 0..12, Some(7));
        let keys: Vec<usize> = (0..packets.len()).filter(|&i| packets[i].1).collect();
        assert_eq!(keys, [0, 7]);
    }

    #[test]
    fn the_bitrate_never_goes_below_the_floor() {
        let mut encoder = Encoder::new(FORMAT, &settings(1000)).unwrap();
        encoder.set_bitrate(1);
        assert_eq!(encoder.bitrate_kbps(), MIN_KBPS);
    }
}
