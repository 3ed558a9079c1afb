//! H.264 encoding with libx264 through ffmpeg-next, tuned for latency: no B-frames, no
//! lookahead (`zerolatency`), SPS/PPS repeated on every keyframe so a late joiner can start at
//! any group, and timestamps in µs of capture time.

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

pub struct Encoder {
    encoder: ffmpeg::encoder::Video,
    packet: ffmpeg::Packet,
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
        if settings.bitrate_kbps < 50 {
            return Err(Error::Config(format!(
                "--bitrate {} kbit/s is too low (at least 50)",
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
        let bitrate = settings.bitrate_kbps as usize * 1000;
        ctx.set_bit_rate(bitrate);
        ctx.set_max_bit_rate(bitrate);
        ctx.set_gop(settings.gop);
        ctx.set_max_b_frames(0);
        let mut options = ffmpeg::Dictionary::new();
        options.set("preset", &settings.preset);
        options.set("tune", &settings.tune);
        // A one-second VBV keeps keyframes from bursting far above the average, and no scene
        // cuts keeps groups exactly `gop` long (a group is what a late joiner waits for).
        let mut params = format!("vbv-bufsize={}:scenecut=0", settings.bitrate_kbps);
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
        })
    }

    /// Encode one I420 frame (FFmpeg's own, from [`lantern_media::ffmpeg::i420_frame`], so
    /// it is handed over without a copy) and give every packet it yields (with zerolatency,
    /// exactly one) to `sink`. x264 has copied the picture when this returns: the frame may be
    /// filled again.
    pub fn encode(
        &mut self,
        frame: &mut ffmpeg::frame::Video,
        pts_us: u64,
        sink: impl FnMut(Packet) -> Result<(), Error>,
    ) -> Result<(), Error> {
        frame.set_pts(Some(pts_us as i64));
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
