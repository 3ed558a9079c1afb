//! Video encoding: H.264 with libx264 (through ffmpeg-next, or on a GPU: NVENC, VAAPI) or AV1
//! with libaom's real-time mode (ffmpeg-next) or SVT-AV1 (driven directly, see [`svtav1`]),
//! all tuned for latency: no B-frames, no lookahead, one frame in and its packet out before
//! the next (SVT-AV1: the one before), parameter sets / sequence headers repeated on every
//! keyframe so a late joiner can start at any group, timestamps in µs of capture time.
//!
//! AV1's default is libaom (speed 9, real-time, no lag, cyclic-refresh AQ, SSIM tuning, costs
//! not updated within a frame): the 720p60 cube through moq-relay, same run (1200 frames at
//! 4424 kbit/s): glass-to-glass p50/p99 10.6/16.6 ms, publisher CPU 15.4 s (with costs updated
//! as libaom's default: 12.2/21 ms, 20.7 s; x264 3.6/5.4 ms, 2.8 s). Earlier runs: speed 8
//! 17.7/44.5 ms with 48 stale stamps where speed 9 left 7; SVT-AV1 preset 10 36.4/78.9 ms.
//! libaom takes about 11 ms of CPU a frame at 720p (two threads), SVT-AV1 27 ms.
//!
//! The bitrate can change between frames and a keyframe can be asked for on any frame; how
//! soon a new bitrate shows depends on the encoder (see [`Encoder::set_bitrate`]).

pub mod hw;
mod lavc;
mod svtav1;

use ffmpeg_next as ffmpeg;

use crate::Error;
use crate::source::Format;

/// The video codec a broadcast carries (`--codec`).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    /// H.264: every browser and player decodes it; the cheapest to encode here.
    H264,
    /// AV1: fewer bytes for the same picture, more CPU to encode.
    Av1,
}

impl Codec {
    pub fn name(self) -> &'static str {
        match self {
            Codec::H264 => "h264",
            Codec::Av1 => "av1",
        }
    }
}

/// Which encoder makes the codec (`--encoder`).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum EncoderChoice {
    /// The codec's usual encoder (a GPU's for h264 where there is one).
    Auto,
    /// libx264 (H.264).
    X264,
    /// NVIDIA's NVENC (H.264), where the host has the GPU and driver.
    Nvenc,
    /// VAAPI (H.264) on an Intel or AMD GPU, where the host has one and its driver.
    Vaapi,
    /// SVT-AV1 (AV1).
    Svtav1,
    /// libaom (AV1) in its real-time mode.
    Aom,
}

/// The encoder a stream is made with, once `auto` is resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    X264,
    Nvenc,
    Vaapi,
    SvtAv1,
    Aom,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::X264 => "x264",
            Backend::Nvenc => "nvenc",
            Backend::Vaapi => "vaapi",
            Backend::SvtAv1 => "svtav1",
            Backend::Aom => "aom",
        }
    }

    pub fn codec(self) -> Codec {
        match self {
            Backend::X264 | Backend::Nvenc | Backend::Vaapi => Codec::H264,
            Backend::SvtAv1 | Backend::Aom => Codec::Av1,
        }
    }

    /// Whether the encoder reads its bitrate only when it opens (see [`FixedRate`]).
    fn rate_fixed_at_open(self) -> bool {
        matches!(self, Backend::Vaapi | Backend::SvtAv1 | Backend::Aom)
    }

    /// The preset when none is given: the fastest that keeps the picture clean.
    fn default_preset(self, format: Format) -> String {
        match self {
            Backend::X264 => "ultrafast".into(),
            // The fastest of NVENC's seven; its ultra-low-latency tune does the rest.
            Backend::Nvenc => "p1".into(),
            // VAAPI has no presets: its speed is the driver's.
            Backend::Vaapi => String::new(),
            Backend::SvtAv1 => svtav1::default_preset(format).to_string(),
            // Faster than 8 and, with cyclic refresh, the fewest stale blocks (see the module
            // docs); 10 leaves many more.
            Backend::Aom => "9".into(),
        }
    }
}

/// Encoder settings (`--codec`, `--encoder`, `--bitrate`, `--gop`, `--preset`, `--tune`).
#[derive(Clone, Debug, PartialEq)]
pub struct VideoSettings {
    pub backend: Backend,
    /// Target bitrate in kbit/s.
    pub bitrate_kbps: u32,
    /// Frames per group of pictures: one keyframe, and one MoQ group, every `gop` frames.
    pub gop: u32,
    /// The encoder's preset: x264's names (ultrafast … placebo), SVT-AV1's numbers (0 … 13).
    pub preset: String,
    /// x264 tune (zerolatency keeps the encoder from holding frames back); unused by AV1.
    pub tune: String,
    /// Cut pictures into slices of at most this many bytes (set for RTP, so that each slice
    /// travels whole in one packet); H.264 only.
    pub slice_max_bytes: Option<u32>,
    /// The encoder was chosen by `--encoder auto`: hardware that will not open gives way to
    /// software.
    pub auto: bool,
    /// The render node VAAPI encodes on (for [`Backend::Vaapi`]).
    pub vaapi_device: Option<std::path::PathBuf>,
}

/// The encoder flags, shared by moq-pub, host-daemon and the benchmark's bare-encode floor so
/// all encode with exactly the same settings.
#[derive(clap::Args, Clone, Debug)]
pub struct VideoArgs {
    /// Video codec: h264 (cheapest, plays everywhere) or av1 (fewer bytes, more CPU).
    #[arg(long, value_enum, default_value = "h264")]
    pub codec: Codec,

    /// Encoder: auto takes, for h264 and unless --preset names a software encoder's, NVENC
    /// where the host has an NVIDIA GPU and driver, else VAAPI where it has a render node
    /// (Intel, AMD) that opens, else x264; for av1 libaom in its real-time mode (aom), or
    /// svtav1 when --preset gives an SVT-AV1 preset. nvenc and vaapi refuse in one line when
    /// something they need is missing.
    #[arg(long, value_enum, default_value = "auto")]
    pub encoder: EncoderChoice,

    /// The GPU render node VAAPI encodes on [default: the first /dev/dri/renderD* that
    /// opens].
    #[arg(long, value_name = "PATH")]
    pub vaapi_device: Option<std::path::PathBuf>,

    /// Video bitrate in kbit/s [default: 0.08 bit per pixel per frame, 4424 at 720p60].
    #[arg(long)]
    pub bitrate: Option<u32>,

    /// Frames between keyframes; each keyframe starts a MoQ group [default: one second; two
    /// when an adaptive bitrate follows viewers' feedback, since each viewer then asks for a
    /// keyframe when it needs one (joining, or after a loss)].
    #[arg(long)]
    pub gop: Option<u32>,

    /// Encoder preset: x264's names (ultrafast … veryslow), NVENC's p1 (fastest) … p7, SVT-AV1's
    /// numbers (13 fastest … 0), libaom's speed (10 fastest … 0) [default: ultrafast; p1; SVT-AV1
    /// 10 up to 720p60, 12 above; libaom 9].
    #[arg(long)]
    pub preset: Option<String>,

    /// x264 tune; zerolatency keeps every frame from being held back.
    #[arg(long, default_value = "zerolatency")]
    pub tune: String,
}

/// The flags' own defaults, for callers that build the settings in code.
impl Default for VideoArgs {
    fn default() -> Self {
        Self {
            codec: Codec::H264,
            encoder: EncoderChoice::Auto,
            bitrate: None,
            gop: None,
            preset: None,
            tune: "zerolatency".into(),
            vaapi_device: None,
        }
    }
}

impl VideoArgs {
    /// The settings for a source of `format`, defaults filled in; a codec and an encoder
    /// that do not go together are refused.
    pub fn settings(&self, format: Format) -> Result<VideoSettings, Error> {
        let vaapi = || hw::vaapi_device(self.vaapi_device.as_deref());
        let mut vaapi_device = None;
        let backend = match (self.codec, self.encoder) {
            // A preset names one encoder's scale: with one given, auto stays in software.
            (Codec::H264, EncoderChoice::Auto) if self.preset.is_none() => {
                if hw::nvenc_missing().is_none() {
                    Backend::Nvenc
                } else if let Ok(device) = vaapi() {
                    vaapi_device = Some(device);
                    Backend::Vaapi
                } else {
                    Backend::X264
                }
            }
            (Codec::H264, EncoderChoice::Auto | EncoderChoice::X264) => Backend::X264,
            (Codec::H264, EncoderChoice::Nvenc) => match hw::nvenc_missing() {
                None => Backend::Nvenc,
                Some(missing) => {
                    return Err(Error::Config(format!(
                        "--encoder nvenc: {missing} (use --encoder x264)"
                    )));
                }
            },
            (Codec::H264, EncoderChoice::Vaapi) if self.preset.is_some() => {
                return Err(Error::Config(
                    "--preset does not apply to --encoder vaapi (its speed is the driver's)".into(),
                ));
            }
            (Codec::H264, EncoderChoice::Vaapi) => match vaapi() {
                Ok(device) => {
                    vaapi_device = Some(device);
                    Backend::Vaapi
                }
                Err(missing) => {
                    return Err(Error::Config(format!(
                        "--encoder vaapi: {missing} (use --encoder x264)"
                    )));
                }
            },
            // A preset given is SVT-AV1's scale, as it always was; the default is libaom.
            (Codec::Av1, EncoderChoice::Auto) if self.preset.is_none() => Backend::Aom,
            (Codec::Av1, EncoderChoice::Auto | EncoderChoice::Svtav1) => Backend::SvtAv1,
            (Codec::Av1, EncoderChoice::Aom) => Backend::Aom,
            (Codec::Av1, hw @ (EncoderChoice::Nvenc | EncoderChoice::Vaapi)) => {
                let name = if hw == EncoderChoice::Nvenc {
                    "nvenc"
                } else {
                    "vaapi"
                };
                return Err(Error::Config(format!(
                    "--encoder {name} makes h264 only (this FFmpeg, 5.1, has no av1_{name})"
                )));
            }
            (codec, EncoderChoice::X264 | EncoderChoice::Svtav1 | EncoderChoice::Aom) => {
                return Err(Error::Config(format!(
                    "--encoder {} does not make {} (use --encoder auto)",
                    match self.encoder {
                        EncoderChoice::X264 => "x264",
                        EncoderChoice::Aom => "aom",
                        _ => "svtav1",
                    },
                    codec.name()
                )));
            }
        };
        let auto = self.encoder == EncoderChoice::Auto;
        Ok(VideoSettings {
            backend,
            bitrate_kbps: self
                .bitrate
                .unwrap_or_else(|| VideoSettings::default_bitrate_kbps(format)),
            gop: self.gop.unwrap_or(VideoSettings::gop_of(format, GOP_S)),
            preset: self
                .preset
                .clone()
                .unwrap_or_else(|| backend.default_preset(format)),
            tune: self.tune.clone(),
            slice_max_bytes: None,
            auto,
            vaapi_device,
        })
    }
}

/// The keyframe interval, s, unless `--gop` says otherwise.
pub const GOP_S: f64 = 1.0;
/// The keyframe interval, s, where viewers ask for keyframes when they need one (an adaptive
/// bitrate that follows their feedback). A keyframe is about twelve frames' worth of bits
/// (the VBV) and a narrow link queues every frame behind it; but a new group is also where a
/// relay drops what a lost packet holds up. Measured (720p60 through moq-relay, frame delay
/// p95): on mahimahi's AT&T LTE trace 1 s groups gave 532 ms, 2 s 438 ms, 4 s 438 ms; on its
/// Verizon LTE trace 324, 324 and 266 ms; on a 10 Mbit/s link with 5 % loss each way 158/128,
/// 120/130 and 203/240 ms (two runs each). Two seconds keeps both.
pub const ON_DEMAND_GOP_S: f64 = 2.0;

impl VideoSettings {
    /// `seconds` of frames at `format`'s rate, at least one.
    pub fn gop_of(format: Format, seconds: f64) -> u32 {
        (format.fps * seconds).round().max(1.0) as u32
    }

    /// A bitrate that keeps the cube and the stamp clean: 0.08 bit per pixel per frame
    /// (about 4.4 Mbit/s at 720p60).
    pub fn default_bitrate_kbps(format: Format) -> u32 {
        ((format.width as f64 * format.height as f64 * format.fps * 0.08) / 1000.0).round() as u32
    }

    pub fn codec(&self) -> Codec {
        self.backend.codec()
    }

    fn check(&self) -> Result<(), Error> {
        if self.gop == 0 {
            return Err(Error::Config("--gop must be at least 1".into()));
        }
        if self.bitrate_kbps < MIN_KBPS {
            return Err(Error::Config(format!(
                "--bitrate {} kbit/s is too low (at least {MIN_KBPS})",
                self.bitrate_kbps
            )));
        }
        Ok(())
    }
}

/// One encoded access unit: H.264 Annex-B with parameter sets in band on keyframes, or an AV1
/// temporal unit (low-overhead OBUs, a sequence header on keyframes).
pub struct Packet<'a> {
    pub data: &'a [u8],
    /// Capture time of the frame, µs since the UNIX epoch.
    pub pts_us: u64,
    pub keyframe: bool,
}

/// How many frames' worth of bits the rate control's buffer holds: small, so no frame (even a
/// keyframe) takes long to cross a path running at the bitrate. Six starved the frames after
/// each keyframe at a few hundred kbit/s (the stamp no longer read in 720p at 300 kbit/s);
/// twelve holds.
pub const VBV_FRAMES: f64 = 12.0;

/// The lowest bitrate the encoder is ever set to, kbit/s.
pub const MIN_KBPS: u32 = 50;

/// The bitrate of an encoder that reads it only when it opens (SVT-AV1 1.4, FFmpeg 5.1's
/// VAAPI and libaom wrappers), so a new one means opening a new encoder, whose first frame is
/// a keyframe: a new bitrate waits for the next keyframe (asked for, or the group's end),
/// unless it falls by half or more, which cannot wait, and the encoder has run for a second's
/// frames.
#[derive(Clone, Copy, Debug)]
struct FixedRate {
    /// The bitrate asked for, and the one the open encoder runs at, kbit/s.
    asked: u32,
    running: u32,
}

impl FixedRate {
    fn new(kbps: u32) -> Self {
        Self {
            asked: kbps,
            running: kbps,
        }
    }

    /// Whether to open a new encoder at [`Self::asked`] before the next frame: `opened` frames
    /// were sent since the encoder opened, at `fps`; `keyframe_next` says whether that frame
    /// is a keyframe anyway.
    fn reopen(&self, opened: u64, fps: f64, keyframe_next: bool) -> bool {
        self.asked != self.running
            && opened as f64 >= fps
            && (keyframe_next || self.asked.saturating_mul(2) <= self.running)
    }
}

/// A video encoder of either codec.
pub enum Encoder {
    /// libx264, NVENC, VAAPI or libaom.
    Lavc(Box<lavc::Encoder>),
    SvtAv1(svtav1::Encoder),
}

impl Encoder {
    pub fn new(format: Format, settings: &VideoSettings) -> Result<Self, Error> {
        settings.check()?;
        Ok(match settings.backend {
            Backend::X264 | Backend::Aom => {
                Encoder::Lavc(Box::new(lavc::Encoder::new(format, settings)?))
            }
            Backend::Nvenc | Backend::Vaapi => match lavc::Encoder::new(format, settings) {
                Ok(encoder) => Encoder::Lavc(Box::new(encoder)),
                // The device was there but would not open (a consumer GPU's NVENC sessions
                // all taken, a GPU libva has no driver for): auto passes on to x264.
                Err(err) if settings.auto => {
                    let err = &err as &dyn std::error::Error;
                    let backend = settings.backend.name();
                    tracing::warn!(err, "{backend} would not open: encoding with x264");
                    let x264 = VideoSettings {
                        backend: Backend::X264,
                        preset: Backend::X264.default_preset(format),
                        ..settings.clone()
                    };
                    Encoder::Lavc(Box::new(lavc::Encoder::new(format, &x264)?))
                }
                Err(err) => return Err(err),
            },
            Backend::SvtAv1 => Encoder::SvtAv1(svtav1::Encoder::new(format, settings)?),
        })
    }

    pub fn backend(&self) -> Backend {
        match self {
            Encoder::Lavc(e) => e.backend(),
            Encoder::SvtAv1(_) => Backend::SvtAv1,
        }
    }

    /// The bitrate asked for last, kbit/s.
    pub fn bitrate_kbps(&self) -> u32 {
        match self {
            Encoder::Lavc(e) => e.bitrate_kbps(),
            Encoder::SvtAv1(e) => e.bitrate_kbps(),
        }
    }

    /// Change the bitrate; at least [`MIN_KBPS`]. x264 and NVENC take it from the next frame;
    /// SVT-AV1 and VAAPI (whose rate cannot change while they run) as [`FixedRate`] says.
    pub fn set_bitrate(&mut self, kbps: u32) {
        let kbps = kbps.max(MIN_KBPS);
        match self {
            Encoder::Lavc(e) => e.set_bitrate(kbps),
            Encoder::SvtAv1(e) => e.set_bitrate(kbps),
        }
    }

    /// Encode one I420 frame (FFmpeg's own, from [`lantern_media::ffmpeg::i420_frame`], so
    /// it is handed over without a copy) and give `sink` the packets ready: x264's of this
    /// frame, SVT-AV1's of the frame before (see [`Encoder::holding`]). When this returns,
    /// `frame` may be filled again; it may be another frame than the one handed in (an
    /// encoder that keeps the last picture hands back the one it kept before, or an empty
    /// frame), so check it with [`lantern_media::ffmpeg::is_writable`].
    ///
    /// With `keyframe`, the frame is coded as a keyframe (a new group for viewers).
    pub fn encode(
        &mut self,
        frame: &mut ffmpeg::frame::Video,
        pts_us: u64,
        keyframe: bool,
        sink: impl FnMut(Packet) -> Result<(), Error>,
    ) -> Result<(), Error> {
        match self {
            Encoder::Lavc(e) => e.encode(frame, pts_us, keyframe, sink),
            Encoder::SvtAv1(e) => e.encode(frame, pts_us, keyframe, sink),
        }
    }

    /// Whether the encoder holds a new picture back until the next one comes (SVT-AV1 does,
    /// one); then [`Encoder::repeat`] lets it out when no new picture comes in time.
    pub fn holding(&self) -> bool {
        match self {
            Encoder::Lavc(_) => false,
            Encoder::SvtAv1(e) => e.holding(),
        }
    }

    /// Send the last picture again, `after_us` after it, giving the packets that lets out.
    pub fn repeat(
        &mut self,
        after_us: u64,
        sink: impl FnMut(Packet) -> Result<(), Error>,
    ) -> Result<(), Error> {
        match self {
            Encoder::Lavc(_) => Ok(()),
            Encoder::SvtAv1(e) => e.repeat(after_us, sink),
        }
    }

    /// Flush the encoder at the end of the stream.
    pub fn finish(&mut self, sink: impl FnMut(Packet) -> Result<(), Error>) -> Result<(), Error> {
        match self {
            Encoder::Lavc(e) => e.finish(sink),
            Encoder::SvtAv1(e) => e.finish(sink),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::source::Cube;

    pub const FORMAT: Format = Format {
        width: 640,
        height: 360,
        fps: 30.0,
    };

    /// One packet: the number of the frame it carries, its size, whether it is a keyframe.
    pub type Out = (u32, usize, bool);

    const FRAME_US: u64 = 33_333;

    /// Encode frames `frames` of the cube (a keyframe asked for at `keyframe_at`), giving each
    /// packet that came out. No encoder holds more than one frame back.
    pub fn encode(
        encoder: &mut Encoder,
        cube: &Cube,
        frames: std::ops::Range<u32>,
        keyframe_at: Option<u32>,
    ) -> Vec<Out> {
        let mut out = Vec::new();
        let mut frame = lantern_media::ffmpeg::i420_frame(FORMAT.width, FORMAT.height);
        let start = frames.start;
        for n in frames {
            if !lantern_media::ffmpeg::is_writable(&frame) {
                frame = lantern_media::ffmpeg::i420_frame(FORMAT.width, FORMAT.height);
            }
            cube.render(n, &mut lantern_media::ffmpeg::i420_mut(&mut frame).unwrap())
                .unwrap();
            let pts = u64::from(n) * FRAME_US;
            encoder
                .encode(&mut frame, pts, keyframe_at == Some(n), collect(&mut out))
                .unwrap();
            let last = out.last().map(|(f, _, _)| *f);
            assert!(
                last.map_or(n == start, |f| f + 1 >= n),
                "after frame {n} the last packet out is of frame {last:?}"
            );
        }
        out
    }

    /// What the encoder still holds.
    pub fn finish(encoder: &mut Encoder) -> Vec<Out> {
        let mut out = Vec::new();
        encoder.finish(collect(&mut out)).unwrap();
        out
    }

    fn collect(out: &mut Vec<Out>) -> impl FnMut(Packet) -> Result<(), Error> + '_ {
        |p| {
            out.push(((p.pts_us / FRAME_US) as u32, p.data.len(), p.keyframe));
            Ok(())
        }
    }

    pub fn keyframes(packets: &[Out]) -> Vec<u32> {
        packets.iter().filter(|p| p.2).map(|p| p.0).collect()
    }

    /// The mean size of the packets of frames in `range`.
    pub fn mean(packets: &[Out], range: std::ops::Range<u32>) -> f64 {
        let sizes: Vec<f64> = packets
            .iter()
            .filter(|p| range.contains(&p.0))
            .map(|p| p.1 as f64)
            .collect();
        sizes.iter().sum::<f64>() / sizes.len() as f64
    }

    pub fn settings(backend: Backend, kbps: u32) -> VideoSettings {
        let args = VideoArgs {
            codec: backend.codec(),
            encoder: match backend {
                Backend::X264 => EncoderChoice::X264,
                Backend::Nvenc => EncoderChoice::Nvenc,
                Backend::Vaapi => EncoderChoice::Vaapi,
                Backend::SvtAv1 => EncoderChoice::Svtav1,
                Backend::Aom => EncoderChoice::Aom,
            },
            bitrate: Some(kbps),
            gop: Some(300),
            ..VideoArgs::default()
        };
        args.settings(FORMAT).unwrap()
    }

    /// Without NVENC (this machine), asking for it is one line naming what is missing and
    /// auto takes x264; with it, both take NVENC and it encodes.
    #[test]
    fn nvenc_is_taken_where_it_works_and_refused_in_one_line_where_not() {
        let nvenc = VideoArgs {
            encoder: EncoderChoice::Nvenc,
            ..VideoArgs::default()
        };
        let auto = VideoArgs::default().settings(FORMAT).unwrap();
        match hw::nvenc_missing() {
            Some(missing) => {
                let err = nvenc.settings(FORMAT).unwrap_err().to_string();
                assert!(err.starts_with("--encoder nvenc: "), "{err}");
                assert!(err.contains(&missing) && !err.contains('\n'), "{err}");
                assert_eq!(auto.backend, Backend::X264);
            }
            None => {
                assert_eq!(auto.backend, Backend::Nvenc);
                let cube = crate::source::Cube::new(FORMAT).unwrap();
                let mut encoder = Encoder::new(FORMAT, &settings(Backend::Nvenc, 2000)).unwrap();
                let sizes = encode(&mut encoder, &cube, 0..30, Some(10));
                assert_eq!(keyframes(&sizes), [0, 10]);
            }
        }
        let av1 = VideoArgs {
            codec: Codec::Av1,
            ..nvenc
        };
        let err = av1.settings(FORMAT).unwrap_err().to_string();
        assert!(err.contains("no av1_nvenc"), "{err}");
    }

    /// Without a GPU render node (this machine), asking for VAAPI is one line naming what is
    /// missing and auto takes x264. A node that opens but is no GPU (/dev/null) passes the
    /// look before opening; then the encoder itself will not open: one error with its cause
    /// when VAAPI was asked for, x264 when auto chose it.
    #[test]
    fn vaapi_is_refused_in_one_line_where_missing_and_auto_falls_back_when_it_will_not_open() {
        let vaapi = VideoArgs {
            encoder: EncoderChoice::Vaapi,
            ..VideoArgs::default()
        };
        if let Err(missing) = hw::vaapi_device(None) {
            let err = vaapi.settings(FORMAT).unwrap_err().to_string();
            assert!(err.starts_with("--encoder vaapi: "), "{err}");
            assert!(err.contains(&missing) && !err.contains('\n'), "{err}");
            if hw::nvenc_missing().is_some() {
                let auto = VideoArgs::default().settings(FORMAT).unwrap();
                assert_eq!(auto.backend, Backend::X264);
            }
        }
        let preset = VideoArgs {
            preset: Some("fast".into()),
            ..vaapi.clone()
        };
        let err = preset.settings(FORMAT).unwrap_err().to_string();
        assert!(err.contains("--preset does not apply"), "{err}");
        let av1 = VideoArgs {
            codec: Codec::Av1,
            ..vaapi.clone()
        };
        let err = av1.settings(FORMAT).unwrap_err().to_string();
        assert!(err.contains("no av1_vaapi"), "{err}");

        let not_a_gpu = VideoArgs {
            vaapi_device: Some("/dev/null".into()),
            ..vaapi
        };
        let settings = not_a_gpu.settings(FORMAT).unwrap();
        assert_eq!(settings.backend, Backend::Vaapi);
        let Err(err) = Encoder::new(FORMAT, &settings) else {
            panic!("VAAPI opened on /dev/null");
        };
        assert!(err.to_string().contains("VAAPI on /dev/null"), "{err}");
        assert!(std::error::Error::source(&err).is_some(), "{err:?}");
        let auto = VideoSettings {
            auto: true,
            ..settings
        };
        let mut encoder = Encoder::new(FORMAT, &auto).unwrap();
        assert_eq!(encoder.backend(), Backend::X264);
        let cube = Cube::new(FORMAT).unwrap();
        assert_eq!(keyframes(&encode(&mut encoder, &cube, 0..5, None)), [0]);
    }

    /// An encoder whose rate is read at open takes a new one at the next keyframe, or at once
    /// when it falls by half, never in its first second.
    #[test]
    fn a_fixed_rate_changes_at_a_keyframe_or_when_it_halves() {
        let fps = 30.0;
        let mut rate = FixedRate::new(4000);
        assert!(!rate.reopen(100, fps, true), "nothing new asked");
        rate.asked = 3000;
        assert!(!rate.reopen(100, fps, false), "a small cut waits");
        assert!(rate.reopen(100, fps, true), "at a keyframe");
        assert!(!rate.reopen(10, fps, true), "not in the first second");
        rate.asked = 2000;
        assert!(rate.reopen(30, fps, false), "a halving cannot wait");
        rate.asked = 9000;
        assert!(!rate.reopen(100, fps, false) && rate.reopen(100, fps, true));
    }

    #[test]
    fn a_codec_and_an_encoder_that_do_not_match_are_refused_in_one_line() {
        let args = VideoArgs {
            codec: Codec::Av1,
            encoder: EncoderChoice::X264,
            ..VideoArgs::default()
        };
        let err = args.settings(FORMAT).unwrap_err().to_string();
        assert_eq!(err, "--encoder x264 does not make av1 (use --encoder auto)");
        let auto = VideoArgs {
            codec: Codec::Av1,
            ..VideoArgs::default()
        };
        let settings = auto.settings(FORMAT).unwrap();
        assert_eq!(settings.backend, Backend::Aom);
        assert_eq!(settings.preset, "9");
        // A preset is SVT-AV1's scale.
        let svt = VideoArgs {
            preset: Some("10".into()),
            ..auto
        };
        assert_eq!(svt.settings(FORMAT).unwrap().backend, Backend::SvtAv1);
    }

    #[test]
    fn the_bitrate_never_goes_below_the_floor() {
        for backend in [Backend::X264, Backend::SvtAv1, Backend::Aom] {
            let mut encoder = Encoder::new(FORMAT, &settings(backend, 1000)).unwrap();
            encoder.set_bitrate(1);
            assert_eq!(encoder.bitrate_kbps(), MIN_KBPS, "{backend:?}");
        }
    }

    #[test]
    fn a_keyframe_comes_when_asked_for_and_the_next_frame_is_no_keyframe() {
        let cube = Cube::new(FORMAT).unwrap();
        for backend in [Backend::X264, Backend::SvtAv1, Backend::Aom] {
            let mut encoder = Encoder::new(FORMAT, &settings(backend, 2000)).unwrap();
            let mut packets = encode(&mut encoder, &cube, 0..12, Some(7));
            packets.extend(finish(&mut encoder));
            assert_eq!(packets.len(), 12);
            assert_eq!(keyframes(&packets), [0, 7], "{backend:?}");
        }
    }

    #[test]
    fn keyframes_come_every_gop_frames() {
        let cube = Cube::new(FORMAT).unwrap();
        for backend in [Backend::X264, Backend::SvtAv1, Backend::Aom] {
            let mut settings = settings(backend, 2000);
            settings.gop = 10;
            let mut encoder = Encoder::new(FORMAT, &settings).unwrap();
            let packets = encode(&mut encoder, &cube, 0..25, None);
            assert_eq!(keyframes(&packets), [0, 10, 20], "{backend:?}");
        }
    }
}
