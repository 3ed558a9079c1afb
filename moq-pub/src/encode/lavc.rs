//! H.264 through libavcodec (ffmpeg-next): libx264 in software, or on the GPU where the host
//! has one and its driver: NVIDIA's NVENC (`h264_nvenc`) or VAAPI (`h264_vaapi`, Intel and
//! AMD). Every way: no B-frames, no lookahead (x264's `zerolatency`, NVENC's ultra-low-latency
//! tune with no delay, VAAPI's one picture in flight), SPS/PPS repeated on every keyframe,
//! constant bitrate.
//!
//! x264's and NVENC's bitrate can change between any two frames ([`Encoder::set_bitrate`]):
//! the rate and the VBV live on the codec context, where both FFmpeg wrappers look for changes
//! before each frame and reconfigure the encoder (x264-params would be read once, at open).
//! The VBV holds a few frames, not a second, so a lower rate shows in the very next frames and
//! no frame can burst far above what the path takes. FFmpeg 5.1's VAAPI reads its rate only
//! when it opens: a new one opens the encoder again, as [`FixedRate`] says. A keyframe can be
//! asked for on any frame.
//!
//! VAAPI encodes from its own surfaces: each I420 frame is interleaved into an NV12 picture
//! (libyuv, a fraction of a millisecond at 1080p) and uploaded into a surface from a small
//! pool. (A DMA-BUF capture could be imported as a surface without the trip through system
//! memory; Lantern does not do that yet.)

use std::ptr;

use ffmpeg::ffi::{AVBufferRef, AVHWFramesContext, AVPixelFormat};
use ffmpeg_next as ffmpeg;

use super::{Backend, FixedRate, Packet, VBV_FRAMES, VideoSettings};
use crate::Error;
use crate::source::Format;

pub struct Encoder {
    backend: Backend,
    encoder: ffmpeg::encoder::Video,
    packet: ffmpeg::Packet,
    format: Format,
    settings: VideoSettings,
    /// The bitrate asked for last, kbit/s.
    kbps: u32,
    vaapi: Option<Vaapi>,
    /// For an encoder that reads its rate only when it opens: when to open it again.
    reopening: Option<Reopening>,
}

/// An encoder whose rate is read at open: the rate, and its frames since it opened and since
/// its last keyframe.
struct Reopening {
    rate: FixedRate,
    opened: u64,
    since_key: u64,
    gop: u32,
}

impl Reopening {
    /// Whether the next frame is a keyframe of the encoder's own (its first, or a group's).
    fn key_due(&self) -> bool {
        self.opened == 0 || self.since_key >= u64::from(self.gop)
    }

    /// One more frame sent, a keyframe or not.
    fn sent(&mut self, keyframe: bool) {
        if keyframe || self.key_due() {
            self.since_key = 0;
        }
        (self.opened, self.since_key) = (self.opened + 1, self.since_key + 1);
    }
}

/// VAAPI surfaces this many: the one being uploaded, the one being encoded, the reference
/// picture, and room for the driver.
const SURFACES: i32 = 8;

/// A VAAPI device, its pool of NV12 surfaces, and the NV12 picture each frame is uploaded
/// from.
struct Vaapi {
    device: *mut AVBufferRef,
    frames: *mut AVBufferRef,
    nv12: ffmpeg::frame::Video,
}

// SAFETY: the device and surface pool are reference-counted FFmpeg objects that may be used
// from any thread, one at a time; `Vaapi` is owned by one `Encoder`, which `&mut self` keeps
// to one thread at a time.
unsafe impl Send for Vaapi {}

impl Drop for Vaapi {
    fn drop(&mut self) {
        // SAFETY: each is null or a reference this struct holds; av_buffer_unref drops it (an
        // encoder opened on them holds references of its own) and nulls the pointer.
        unsafe {
            ffmpeg::ffi::av_buffer_unref(&mut self.frames);
            ffmpeg::ffi::av_buffer_unref(&mut self.device);
        }
    }
}

impl Vaapi {
    /// Open the device `settings` names and a pool of surfaces of `format`'s size.
    fn new(format: Format, settings: &VideoSettings) -> Result<Self, Error> {
        let path = settings
            .vaapi_device
            .as_deref()
            .ok_or_else(|| Error::Config("--encoder vaapi: no render node was found".into()))?;
        let failed = |what: String| {
            move |status: i32| Error::Encoder {
                what,
                source: ffmpeg::Error::from(status),
            }
        };
        let node = std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()))
            .map_err(|_| Error::Config(format!("--vaapi-device {path:?} has a NUL byte")))?;
        let mut vaapi = Vaapi {
            device: ptr::null_mut(),
            frames: ptr::null_mut(),
            nv12: ffmpeg::frame::Video::new(
                ffmpeg::format::Pixel::NV12,
                format.width,
                format.height,
            ),
        };
        // SAFETY: a valid out-pointer and C string; on success `device` holds a reference
        // that Drop gives back.
        let status = unsafe {
            ffmpeg::ffi::av_hwdevice_ctx_create(
                &mut vaapi.device,
                ffmpeg::ffi::AVHWDeviceType::AV_HWDEVICE_TYPE_VAAPI,
                node.as_ptr(),
                ptr::null_mut(),
                0,
            )
        };
        if status < 0 {
            return Err(failed(format!("VAAPI on {}", path.display()))(status));
        }
        // SAFETY: `device` is a live VAAPI device; the frames context it gives is filled in
        // before av_hwframe_ctx_init, as FFmpeg asks, and held (then given back) by `vaapi`.
        unsafe {
            vaapi.frames = ffmpeg::ffi::av_hwframe_ctx_alloc(vaapi.device);
            if vaapi.frames.is_null() {
                return Err(failed("VAAPI surfaces".into())(-libc::ENOMEM));
            }
            let pool = (*vaapi.frames).data.cast::<AVHWFramesContext>();
            (*pool).format = AVPixelFormat::AV_PIX_FMT_VAAPI;
            (*pool).sw_format = AVPixelFormat::AV_PIX_FMT_NV12;
            (*pool).width = format.width as i32;
            (*pool).height = format.height as i32;
            (*pool).initial_pool_size = SURFACES;
            let status = ffmpeg::ffi::av_hwframe_ctx_init(vaapi.frames);
            if status < 0 {
                return Err(failed(format!(
                    "VAAPI surfaces of {}x{} NV12 on {}",
                    format.width,
                    format.height,
                    path.display()
                ))(status));
            }
        }
        Ok(vaapi)
    }

    /// `frame` (I420) in a surface of the pool, ready to encode.
    fn upload(&mut self, frame: &ffmpeg::frame::Video) -> Result<ffmpeg::frame::Video, Error> {
        let image = lantern_media::ffmpeg::image(frame)?;
        let (y_stride, uv_stride) = (self.nv12.stride(0), self.nv12.stride(1));
        // The NV12 picture is ours alone: the upload copies out of it before returning.
        let (y, uv) = nv12_planes(&mut self.nv12);
        lantern_media::convert::i420_to_nv12(&image, (y, y_stride), (uv, uv_stride))?;
        let mut surface = ffmpeg::frame::Video::empty();
        // SAFETY: `frames` is a live, initialised pool; `surface` is an empty frame it fills
        // with a surface reference; the NV12 picture matches the pool's format and size.
        let status = unsafe {
            let status = ffmpeg::ffi::av_hwframe_get_buffer(self.frames, surface.as_mut_ptr(), 0);
            if status < 0 {
                status
            } else {
                ffmpeg::ffi::av_hwframe_transfer_data(surface.as_mut_ptr(), self.nv12.as_ptr(), 0)
            }
        };
        if status < 0 {
            return Err(Error::Encoder {
                what: "uploading a frame to a VAAPI surface".into(),
                source: ffmpeg::Error::from(status),
            });
        }
        Ok(surface)
    }
}

/// The luma and the interleaved chroma plane of an NV12 frame, both writable at once.
fn nv12_planes(frame: &mut ffmpeg::frame::Video) -> (&mut [u8], &mut [u8]) {
    let (y, uv) = (frame.data_mut(0).as_mut_ptr(), frame.data_mut(1));
    let uv = (uv.as_mut_ptr(), uv.len());
    let y_len = frame.data(0).len();
    // SAFETY: the two planes of one frame are disjoint regions of its buffer, each as long as
    // ffmpeg-next says, borrowed for the frame's (mutable) lifetime.
    unsafe {
        (
            std::slice::from_raw_parts_mut(y, y_len),
            std::slice::from_raw_parts_mut(uv.0, uv.1),
        )
    }
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
        Backend::Vaapi => "h264_vaapi",
        Backend::Aom => "libaom-av1",
        _ => "libx264",
    };
    let codec = ffmpeg::encoder::find_by_name(name).ok_or_else(|| {
        Error::Config(format!(
            "this FFmpeg has no {name} encoder (install a libavcodec built with it)"
        ))
    })?;
    let mut options = ffmpeg::Dictionary::new();
    if !matches!(backend, Backend::Vaapi | Backend::Aom) {
        options.set("preset", &settings.preset);
        // A keyframe asked for is an IDR, a point where any viewer can start (VAAPI makes
        // one of any frame marked I).
        options.set("forced-idr", "1");
    }
    match backend {
        Backend::Aom => {
            let speed = settings.preset.parse::<u8>().ok().filter(|s| *s <= 10);
            let Some(speed) = speed else {
                return Err(Error::Config(format!(
                    "--preset {:?} is not a libaom speed (0, slowest, to 10)",
                    settings.preset
                )));
            };
            options.set("usage", "realtime");
            // FFmpeg 5.1's `cpu-used` stops at 8; libaom's real-time mode goes on to 10,
            // reached through its own option names.
            options.set("cpu-used", &speed.min(8).to_string());
            // Tuned for SSIM, with cyclic refresh (a share of the blocks coded again each
            // frame): at the SSIM x264 reaches on the cube at a quarter of the default bitrate,
            // 0.63× its bytes where plain speed 9 needs 0.89×; and far fewer blocks left stale
            // (2–7 stamps of 1200 at 720p where speed 8 leaves 28–48).
            // Coefficient and mode costs kept from the frame's start rather than updated as
            // it goes: a third less CPU a frame (720p60 cube: 16.7 → 11.2 ms) at the same SSIM
            // and size. Not motion vectors' too: libaom 3.6 then writes tiles its own decoder
            // and dav1d refuse (one stream in three at 720p).
            let mut params = "tune=ssim:coeff-cost-upd-freq=3:mode-cost-upd-freq=3".to_string();
            if speed > 8 {
                params += &format!(":cpu-used={speed}");
            }
            options.set("aom-params", &params);
            options.set("aq-mode", "3");
            // No look-ahead: each frame's packet comes out as it goes in.
            options.set("lag-in-frames", "0");
            options.set("row-mt", "1");
            options.set("tile-columns", "1");
        }
        Backend::Vaapi => {
            options.set("rc_mode", "CBR");
            // One picture in flight: its packet comes out before the next frame goes in.
            options.set("async_depth", "1");
        }
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
    refuse_unknown(&codec, &options)?;
    Ok((codec, options))
}

/// Refuse an option `codec` does not have: libavcodec leaves it in the dictionary and opens
/// anyway, so a misspelt or dropped option would silently not apply.
fn refuse_unknown(codec: &ffmpeg::Codec, options: &ffmpeg::Dictionary) -> Result<(), Error> {
    for (key, _) in options.iter() {
        let name = std::ffi::CString::new(key)
            .map_err(|_| Error::Config(format!("option name {key:?} has a NUL")))?;
        // SAFETY: AV_OPT_SEARCH_FAKE_OBJ takes a pointer to a pointer to an AVClass (the
        // codec's private class, null when it has none, or the context's own): the first
        // lives in the codec's static description, the second in `context` below, and the
        // classes themselves as long as the library.
        let found = unsafe {
            let context = ffmpeg::ffi::avcodec_get_class();
            let private = ptr::addr_of!((*codec.as_ptr()).priv_class) as *mut libc::c_void;
            let generic = ptr::addr_of!(context) as *mut libc::c_void;
            [private, generic].into_iter().any(|class| {
                !ffmpeg::ffi::av_opt_find(
                    class,
                    name.as_ptr(),
                    ptr::null(),
                    0,
                    ffmpeg::ffi::AV_OPT_SEARCH_FAKE_OBJ,
                )
                .is_null()
            })
        };
        if !found {
            return Err(Error::Config(format!(
                "this FFmpeg's {} has no option {key:?} (a libavcodec older than Lantern expects?)",
                codec.name()
            )));
        }
    }
    Ok(())
}

/// Open `settings`' encoder for frames of `format` at `kbps`, on `vaapi`'s surfaces for VAAPI.
fn open(
    format: Format,
    settings: &VideoSettings,
    kbps: u32,
    vaapi: Option<&Vaapi>,
) -> Result<ffmpeg::encoder::Video, Error> {
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
    // SAFETY: the context is ours and not yet open; these are plain fields, and the surface
    // pool's reference is the context's own (freed with it).
    unsafe {
        set_rate(ctx.as_mut_ptr(), kbps, format.fps);
        if settings.backend == Backend::Aom {
            let ctx = ctx.as_mut_ptr();
            // libaom's wrapper takes CBR from a minimum equal to the maximum and the target.
            (*ctx).rc_min_rate = (*ctx).bit_rate;
            (*ctx).thread_count =
                std::thread::available_parallelism().map_or(2, |n| n.get()) as i32;
        }
        if let Some(vaapi) = vaapi {
            let ctx = ctx.as_mut_ptr();
            (*ctx).pix_fmt = AVPixelFormat::AV_PIX_FMT_VAAPI;
            (*ctx).hw_frames_ctx = ffmpeg::ffi::av_buffer_ref(vaapi.frames);
            if (*ctx).hw_frames_ctx.is_null() {
                return Err(ffmpeg_error("VAAPI surfaces")(ffmpeg::Error::from(
                    -libc::ENOMEM,
                )));
            }
        }
    }
    let what = match settings.preset.is_empty() {
        true => codec.name().to_string(),
        false => format!("{} (preset {})", codec.name(), settings.preset),
    };
    ctx.open_as_with(codec, options).map_err(ffmpeg_error(what))
}

impl Encoder {
    pub fn new(format: Format, settings: &VideoSettings) -> Result<Self, Error> {
        lantern_media::ffmpeg::init()?;
        let vaapi = match settings.backend {
            Backend::Vaapi => Some(Vaapi::new(format, settings)?),
            _ => None,
        };
        let encoder = open(format, settings, settings.bitrate_kbps, vaapi.as_ref())?;
        let reopening = settings.backend.rate_fixed_at_open().then(|| Reopening {
            rate: FixedRate::new(settings.bitrate_kbps),
            opened: 0,
            since_key: 0,
            gop: settings.gop,
        });
        Ok(Self {
            backend: settings.backend,
            encoder,
            packet: ffmpeg::Packet::empty(),
            format,
            settings: settings.clone(),
            kbps: settings.bitrate_kbps,
            vaapi,
            reopening,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The bitrate now, kbit/s.
    pub fn bitrate_kbps(&self) -> u32 {
        self.kbps
    }

    /// Change the bitrate (and the VBV with it): from the next frame on, or for VAAPI and
    /// libaom as [`FixedRate`] says.
    pub fn set_bitrate(&mut self, kbps: u32) {
        if kbps == self.kbps {
            return;
        }
        self.kbps = kbps;
        match &mut self.reopening {
            Some(reopening) => reopening.rate.asked = kbps,
            // SAFETY: the context is ours; the wrapper reads these fields before each frame it
            // is sent (on this thread) and reconfigures the encoder when they changed.
            None => unsafe { set_rate(self.encoder.as_mut_ptr(), kbps, self.format.fps) },
        }
    }

    /// Encode one frame and give every packet it yields (with zerolatency, exactly one) to
    /// `sink`. With `keyframe`, the frame is coded as an IDR (a new group for viewers).
    pub fn encode(
        &mut self,
        frame: &mut ffmpeg::frame::Video,
        pts_us: u64,
        keyframe: bool,
        mut sink: impl FnMut(Packet) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let fps = self.format.fps;
        let reopen = self.reopening.as_ref().is_some_and(|reopening| {
            let keyframe_next = keyframe || reopening.key_due();
            reopening.rate.reopen(reopening.opened, fps, keyframe_next)
        });
        if reopen {
            // What the old encoder holds comes out first, in order.
            self.encoder
                .send_eof()
                .map_err(ffmpeg_error("flush before a new bitrate"))?;
            self.drain(&mut sink)?;
            self.encoder = open(self.format, &self.settings, self.kbps, self.vaapi.as_ref())?;
            if let Some(reopening) = &mut self.reopening {
                (reopening.rate.running, reopening.opened) = (self.kbps, 0);
            }
        }
        if let Some(reopening) = &mut self.reopening {
            reopening.sent(keyframe);
        }
        let mut surface;
        let frame = match &mut self.vaapi {
            Some(vaapi) => {
                surface = vaapi.upload(frame)?;
                &mut surface
            }
            None => frame,
        };
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

    /// libaom's wrapper reads the rate only at open: a halving opens a new encoder at once
    /// (a keyframe), after which frames are smaller; a small change waits for a keyframe.
    #[test]
    fn libaom_takes_a_halved_bitrate_at_once_with_a_keyframe() {
        let cube = Cube::new(FORMAT).unwrap();
        let mut settings = settings(Backend::Aom, 4000);
        settings.gop = 45;
        let mut encoder = Encoder::new(FORMAT, &settings).unwrap();
        let high = encode(&mut encoder, &cube, 0..30, None);
        encoder.set_bitrate(400);
        let low = encode(&mut encoder, &cube, 30..60, None);
        assert_eq!(keyframes(&low), [30], "the halving opened a new encoder");
        let (before, after) = (mean(&high, 10..30), mean(&low, 34..60));
        assert!(
            after < before / 3.0,
            "frames after the drop average {after:.0} bytes, before {before:.0}"
        );
        encoder.set_bitrate(500);
        let small = encode(&mut encoder, &cube, 60..80, None);
        assert_eq!(
            keyframes(&small),
            [75],
            "the group's own keyframe, no earlier"
        );
    }

    /// Every option set for an encoder this FFmpeg has is one it takes (NVENC's and VAAPI's
    /// wrappers are there without a GPU); one it lacks is refused at open, not ignored.
    #[test]
    fn every_option_set_is_one_the_encoder_takes() {
        let mut checked = Vec::new();
        for backend in [Backend::X264, Backend::Aom, Backend::Nvenc, Backend::Vaapi] {
            // NVENC and VAAPI settings are refused here (no device): the options alone.
            let mut settings = settings(Backend::X264, 1000);
            settings.backend = backend;
            settings.preset = match backend {
                Backend::Aom => "9".into(),
                Backend::Nvenc => "p1".into(),
                _ => settings.preset,
            };
            match super::codec_and_options(backend, &settings) {
                Ok(_) => checked.push(backend),
                // A host whose FFmpeg lacks the encoder: nothing to check.
                Err(e) => assert!(
                    e.to_string().contains("encoder (install"),
                    "{backend:?}: {e}"
                ),
            }
        }
        assert!(checked.contains(&Backend::X264) && checked.contains(&Backend::Aom));
        let codec = ffmpeg_next::encoder::find_by_name("libx264").unwrap();
        let mut options = ffmpeg_next::Dictionary::new();
        options.set("preset", "ultrafast");
        options.set("max_frame_delay", "1");
        let err = super::refuse_unknown(&codec, &options)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("libx264 has no option \"max_frame_delay\""),
            "{err}"
        );
    }

    /// Speeds past FFmpeg 5.1's limit of 8 reach libaom through its own option names (an
    /// option libaom does not take would fail the open); past 10 is refused in one line.
    #[test]
    fn libaom_runs_at_speeds_past_ffmpegs_limit_and_refuses_past_its_own() {
        let cube = Cube::new(FORMAT).unwrap();
        for speed in ["9", "10"] {
            let mut settings = settings(Backend::Aom, 1000);
            settings.preset = speed.into();
            let mut encoder = Encoder::new(FORMAT, &settings).unwrap();
            let packets = encode(&mut encoder, &cube, 0..5, None);
            assert_eq!(packets.len(), 5, "speed {speed}: one packet a frame");
        }
        let mut settings = settings(Backend::Aom, 1000);
        settings.preset = "11".into();
        let err = Encoder::new(FORMAT, &settings).err().unwrap().to_string();
        assert_eq!(
            err,
            "--preset \"11\" is not a libaom speed (0, slowest, to 10)"
        );
    }
}
