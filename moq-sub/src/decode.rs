//! Video decoding with ffmpeg-next, set up for latency. H.264 with FFmpeg's decoder: slice
//! threads only (frame threads would hold frames back) and low-delay output; both in-band
//! parameter sets (`avc3`, Annex-B) and out-of-band ones (`avc1`, the catalog's avcC
//! `description`). AV1 with dav1d (libdav1d): at most one frame in flight, so each picture
//! comes out of the call that fed it.

use std::time::{Duration, Instant};

use ffmpeg_next as ffmpeg;
use lantern_proto::h264::{annexb_units, avcc_sps, is_annexb, sps_size, to_annexb};
use lantern_proto::picture::Image;

use crate::Error;

/// What a viewer takes from a publisher, checked before anything reaches the decoder: a
/// publisher is a stranger, and a picture's size is what the decoder allocates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest picture, in pixels.
    pub max_width: u32,
    pub max_height: u32,
    /// The fastest stream, kbit/s over a few seconds; a single frame may hold one second's
    /// worth.
    pub max_kbps: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_width: 4096,
            max_height: 2304,
            max_kbps: 100_000,
        }
    }
}

/// The window the rate is measured over.
const RATE_WINDOW: Duration = Duration::from_secs(2);

impl Limits {
    /// Refuse a picture size above the limits.
    pub fn check_size(&self, (width, height): (u32, u32), from: &str) -> Result<(), Error> {
        if width > self.max_width || height > self.max_height {
            return Err(Error::Refused(format!(
                "{from} declares {width}x{height} pictures, above this viewer's {}x{} (--max-size)",
                self.max_width, self.max_height
            )));
        }
        Ok(())
    }

    fn frame_bytes(&self) -> usize {
        usize::try_from(self.max_kbps.saturating_mul(1000) / 8).unwrap_or(usize::MAX)
    }

    /// Every SPS among an access unit's NAL units checks out. One this reader cannot read
    /// never reaches the decoder either: a size unknown is a size unchecked.
    fn check_units<'a>(&self, units: impl Iterator<Item = &'a [u8]>) -> Result<(), Error> {
        for unit in units {
            if unit.first().map(|h| h & 0x1f) == Some(lantern_proto::h264::NAL_SPS) {
                let size = sps_size(unit).map_err(|e| Error::decoder("a parameter set", e))?;
                self.check_size(size, "the stream's parameter set")?;
            }
        }
        Ok(())
    }

    /// Every SPS of an avcC checks out.
    fn check_avcc(&self, avcc: &[u8]) -> Result<(), Error> {
        let units = avcc_sps(avcc).map_err(|e| Error::decoder("the catalog's avcC", e))?;
        for unit in units {
            let size = sps_size(unit).map_err(|e| Error::decoder("the catalog's avcC", e))?;
            self.check_size(size, "the catalog's avcC")?;
        }
        Ok(())
    }
}

/// The codecs moq-sub decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    H264,
    Av1,
}

impl Codec {
    /// The codec of a catalog rendition, if moq-sub decodes it.
    pub fn of(codec: &hang::catalog::VideoCodec) -> Option<Self> {
        match codec {
            hang::catalog::VideoCodec::H264(_) => Some(Codec::H264),
            hang::catalog::VideoCodec::AV1(_) => Some(Codec::Av1),
            _ => None,
        }
    }
}

pub struct Decoder {
    codec: Codec,
    decoder: ffmpeg::decoder::Video,
    decoded: ffmpeg::frame::Video,
    /// Set for frames that are not already 8-bit 4:2:0.
    scaler: Option<(ffmpeg::software::scaling::Context, ffmpeg::frame::Video)>,
    /// Length-prefixed NAL units with no avcC to describe them are rewritten to Annex-B here.
    annexb: Vec<u8>,
    has_avcc: bool,
    limits: Limits,
    /// Bytes taken since `window_start`, for the rate limit.
    window_start: Instant,
    window_bytes: usize,
}

impl Decoder {
    /// An H.264 decoder; `description` is the catalog's avcC for `avc1` renditions.
    pub fn new(description: Option<&[u8]>, limits: Limits) -> Result<Self, Error> {
        Self::open(description, false, limits)
    }

    /// A decoder of `codec`, for a rendition with the catalog's `description`.
    pub fn of(codec: Codec, description: Option<&[u8]>, limits: Limits) -> Result<Self, Error> {
        match codec {
            Codec::H264 => Self::new(description, limits),
            Codec::Av1 => Self::av1(limits),
        }
    }

    /// An AV1 decoder (dav1d), holding no frame back.
    pub fn av1(limits: Limits) -> Result<Self, Error> {
        lantern_media::ffmpeg::init()?;
        let codec = ffmpeg::decoder::find_by_name("libdav1d").ok_or_else(|| {
            Error::Config("this FFmpeg has no dav1d decoder (libavcodec with libdav1d)".into())
        })?;
        let mut ctx = ffmpeg::codec::context::Context::new_with_codec(codec);
        // One thread: dav1d then decodes inside the call that feeds it, so the picture is
        // there when it returns. With worker threads and frame threading it decodes behind
        // the call, and FFmpeg's wrapper hands each picture out a call late (measured: 41 ms
        // glass-to-glass at 720p60 where one thread gives 10). Low delay (one frame in flight,
        // FFmpeg 5.1's only way to set dav1d's max_frame_delay) brings that back, but two
        // tile threads decoded no faster than one on this 2-core host, beside the encoder.
        ctx.set_threading(ffmpeg::threading::Config {
            kind: ffmpeg::threading::Type::Frame,
            count: 1,
            ..Default::default()
        });
        // SAFETY: a plain field of the unopened context. dav1d refuses pictures above it
        // (its frame_size_limit) before allocating them.
        unsafe {
            (*ctx.as_mut_ptr()).max_pixels =
                i64::from(limits.max_width) * i64::from(limits.max_height)
        };
        ctx.set_flags(ffmpeg::codec::Flags::LOW_DELAY);
        let decoder = ctx
            .decoder()
            .open_as(codec)
            .and_then(|opened| opened.video())
            .map_err(|e| Error::decoder("open AV1 decoder (dav1d)", e))?;
        Ok(Self::with(Codec::Av1, decoder, false, limits))
    }

    /// A decoder fed whole NAL units a few at a time (as RTP brings them) rather than whole
    /// access units: it finishes a picture as soon as its last slice is in, without waiting
    /// for the next picture to begin.
    pub fn chunked(limits: Limits) -> Result<Self, Error> {
        Self::open(None, true, limits)
    }

    fn with(codec: Codec, decoder: ffmpeg::decoder::Video, has_avcc: bool, limits: Limits) -> Self {
        Self {
            codec,
            decoder,
            decoded: ffmpeg::frame::Video::empty(),
            scaler: None,
            annexb: Vec::new(),
            has_avcc,
            limits,
            window_start: Instant::now(),
            window_bytes: 0,
        }
    }

    fn open(description: Option<&[u8]>, chunks: bool, limits: Limits) -> Result<Self, Error> {
        if let Some(avcc) = description.filter(|d| !d.is_empty()) {
            limits.check_avcc(avcc)?;
        }
        lantern_media::ffmpeg::init()?;
        let codec = ffmpeg::decoder::find(ffmpeg::codec::Id::H264)
            .ok_or_else(|| Error::Config("this FFmpeg has no H.264 decoder".into()))?;
        let mut ctx = ffmpeg::codec::context::Context::new_with_codec(codec);
        ctx.set_threading(ffmpeg::threading::Config {
            kind: ffmpeg::threading::Type::Slice,
            count: 2,
            ..Default::default()
        });
        ctx.set_flags(ffmpeg::codec::Flags::LOW_DELAY);
        if chunks {
            // SAFETY: a plain field of the unopened context.
            unsafe { (*ctx.as_mut_ptr()).flags2 |= ffmpeg::ffi::AV_CODEC_FLAG2_CHUNKS };
        }
        if let Some(avcc) = description.filter(|d| !d.is_empty()) {
            set_extradata(&mut ctx, avcc);
        }
        let decoder = ctx
            .decoder()
            .video()
            .map_err(|e| Error::decoder("open H.264 decoder", e))?;
        let has_avcc = description.is_some_and(|d| !d.is_empty());
        Ok(Self::with(Codec::H264, decoder, has_avcc, limits))
    }

    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// Refuse what is above the limits before the decoder sees it: an oversized frame, a
    /// stream faster than allowed, a parameter set declaring oversized pictures.
    fn admit(&mut self, payload: &[u8]) -> Result<(), Error> {
        let limits = self.limits;
        if payload.len() > limits.frame_bytes() {
            return Err(Error::Refused(format!(
                "a {} kB frame, above one second at this viewer's {} kbit/s (--max-kbps)",
                payload.len() / 1000,
                limits.max_kbps
            )));
        }
        if self.window_start.elapsed() >= RATE_WINDOW {
            self.window_start = Instant::now();
            self.window_bytes = 0;
        }
        self.window_bytes += payload.len();
        let allowed = limits
            .frame_bytes()
            .saturating_mul(RATE_WINDOW.as_secs() as usize);
        if self.window_bytes > allowed {
            return Err(Error::Refused(format!(
                "the publisher sends over {} kbit/s, above this viewer's {} kbit/s (--max-kbps)",
                self.window_bytes as u64 * 8 / 1000 / RATE_WINDOW.as_secs(),
                limits.max_kbps
            )));
        }
        match self.codec {
            // dav1d checks sizes itself (max_pixels), and `picture` checks each side.
            Codec::Av1 => Ok(()),
            Codec::H264 if is_annexb(payload) => limits.check_units(annexb_units(payload)),
            Codec::H264 => limits.check_units(length_prefixed(payload)),
        }
    }

    /// Decode one access unit; calls `out` with each picture it completes, as an I420 view
    /// of the decoder's own buffers.
    pub fn decode(
        &mut self,
        payload: &[u8],
        mut out: impl FnMut(Picture<'_>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.admit(payload)?;
        let data = if self.codec == Codec::Av1 || self.has_avcc || is_annexb(payload) {
            payload
        } else {
            to_annexb(payload, &mut self.annexb)
                .map_err(|e| Error::decoder("access unit framing", e))?;
            &self.annexb
        };
        let packet = ffmpeg::Packet::copy(data);
        self.decoder
            .send_packet(&packet)
            .map_err(|e| Error::decoder("corrupt access unit", e))?;
        loop {
            match self.decoder.receive_frame(&mut self.decoded) {
                Ok(()) => out(self.picture()?)?,
                Err(ffmpeg::Error::Other {
                    errno: ffmpeg::error::EAGAIN,
                })
                | Err(ffmpeg::Error::Eof) => return Ok(()),
                Err(e) => return Err(Error::decoder("decode", e)),
            }
        }
    }

    fn picture(&mut self) -> Result<Picture<'_>, Error> {
        use ffmpeg::format::Pixel;
        let (width, height) = (self.decoded.width(), self.decoded.height());
        self.limits
            .check_size((width, height), "a decoded picture")?;
        let frame = match self.decoded.format() {
            Pixel::YUV420P | Pixel::YUVJ420P => &self.decoded,
            format => {
                let stale = self.scaler.as_ref().is_some_and(|(s, _)| {
                    s.input().width != width
                        || s.input().height != height
                        || s.input().format != format
                });
                if stale {
                    self.scaler = None;
                }
                let (scaler, converted) = match &mut self.scaler {
                    Some(kept) => kept,
                    slot => {
                        let scaler = ffmpeg::software::scaling::Context::get(
                            format,
                            width,
                            height,
                            Pixel::YUV420P,
                            width,
                            height,
                            ffmpeg::software::scaling::Flags::POINT,
                        )
                        .map_err(|e| Error::decoder(format!("convert {format:?} to I420"), e))?;
                        slot.insert((scaler, ffmpeg::frame::Video::empty()))
                    }
                };
                // The window may still hold the last converted picture: convert into new
                // buffers rather than under it.
                if !lantern_media::ffmpeg::is_writable(converted) {
                    *converted = ffmpeg::frame::Video::empty();
                }
                scaler
                    .run(&self.decoded, converted)
                    .map_err(|e| Error::decoder("convert to I420", e))?;
                converted
            }
        };
        Ok(Picture {
            image: lantern_media::ffmpeg::image(frame)?,
            frame,
        })
    }
}

/// A decoded picture: an I420 view of the decoder's buffers, which the decoder reuses once
/// the callback returns, unless a reference to them is taken with [`Picture::share`].
pub struct Picture<'a> {
    pub image: Image<'a>,
    frame: &'a ffmpeg::frame::Video,
}

impl Picture<'_> {
    /// Another reference to this picture's buffers, to keep it past the callback (the
    /// window shows it from its own thread): no pixels are copied.
    pub fn share(&self) -> Result<ffmpeg::frame::Video, Error> {
        Ok(lantern_media::ffmpeg::share(self.frame)?)
    }
}

fn set_extradata(ctx: &mut ffmpeg::codec::context::Context, data: &[u8]) {
    // SAFETY: the buffer is allocated with FFmpeg's allocator and the padding it requires; the
    // codec context takes ownership and frees it.
    unsafe {
        let size = data.len() + ffmpeg::ffi::AV_INPUT_BUFFER_PADDING_SIZE as usize;
        let buf = ffmpeg::ffi::av_mallocz(size) as *mut u8;
        if buf.is_null() {
            return;
        }
        std::ptr::copy_nonoverlapping(data.as_ptr(), buf, data.len());
        let raw = ctx.as_mut_ptr();
        (*raw).extradata = buf;
        (*raw).extradata_size = data.len() as i32;
    }
}

/// The NAL units of 4-byte length-prefixed data, as far as it is well formed.
fn length_prefixed(mut data: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let (len, rest) = data.split_first_chunk::<4>()?;
        let unit = rest.get(..u32::from_be_bytes(*len) as usize)?;
        data = &rest[unit.len()..];
        Some(unit)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// x264's SPS for 8192x4608 pictures (Baseline).
    const SPS_8K: &[u8] = &[
        0x67, 0x42, 0xc0, 0x3e, 0xda, 0x00, 0x20, 0x00, 0x09, 0x06, 0xc0, 0x44, 0x00, 0x00, 0x03,
        0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xc8, 0x3c, 0x20, 0x10, 0xa8,
    ];

    fn refused(result: Result<(), Error>) -> String {
        match result {
            Err(Error::Refused(why)) => why,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn oversized_pictures_and_frames_never_reach_the_decoder() {
        let limits = Limits::default();
        // In band, Annex-B or length-prefixed: refused before the decoder sees it.
        let mut decoder = Decoder::new(None, limits).unwrap();
        let annexb = [&[0, 0, 0, 1][..], SPS_8K].concat();
        let why = refused(decoder.decode(&annexb, |_| Ok(())));
        assert!(why.contains("8192x4608"), "{why}");
        let prefixed = [&[0, 0, 0, SPS_8K.len() as u8][..], SPS_8K].concat();
        refused(decoder.decode(&prefixed, |_| Ok(())));
        // Out of band, in the catalog's avcC.
        let avcc = [
            &[1, 0x42, 0xc0, 0x3e, 0xff, 0xe1, 0, SPS_8K.len() as u8][..],
            SPS_8K,
        ]
        .concat();
        assert!(matches!(
            Decoder::new(Some(&avcc), limits),
            Err(Error::Refused(_))
        ));
        // A bigger allowance takes the same parameter set to the decoder.
        let roomy = Limits {
            max_width: 8192,
            max_height: 4608,
            ..limits
        };
        let mut decoder = Decoder::new(None, roomy).unwrap();
        assert!(!matches!(
            decoder.decode(&annexb, |_| Ok(())),
            Err(Error::Refused(_))
        ));
        // A frame over a second's worth of the rate, and a rate kept over it.
        let slow = Limits {
            max_kbps: 800,
            ..limits
        };
        let mut decoder = Decoder::new(None, slow).unwrap();
        let why = refused(decoder.decode(&vec![0; 100_001], |_| Ok(())));
        assert!(why.contains("--max-kbps"), "{why}");
        let frame = vec![0; 60_000];
        let mut result = Ok(());
        for _ in 0..4 {
            result = decoder.admit(&frame);
        }
        assert!(refused(result).contains("sends over"));
    }
}
