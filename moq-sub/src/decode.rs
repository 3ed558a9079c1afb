//! H.264 decoding with ffmpeg-next, set up for latency: slice threads only (frame threads
//! would hold frames back) and low-delay output. Accepts both in-band parameter sets
//! (`avc3`, Annex-B) and out-of-band ones (`avc1`, the catalog's avcC `description`).

use ffmpeg_next as ffmpeg;
use lantern_proto::h264::{is_annexb, to_annexb};
use lantern_proto::picture::Image;

use crate::Error;

pub struct Decoder {
    decoder: ffmpeg::decoder::Video,
    decoded: ffmpeg::frame::Video,
    /// Set for frames that are not already 8-bit 4:2:0.
    scaler: Option<(ffmpeg::software::scaling::Context, ffmpeg::frame::Video)>,
    /// Length-prefixed NAL units with no avcC to describe them are rewritten to Annex-B here.
    annexb: Vec<u8>,
    has_avcc: bool,
}

impl Decoder {
    /// `description` is the catalog's avcC for `avc1` renditions.
    pub fn new(description: Option<&[u8]>) -> Result<Self, Error> {
        Self::open(description, false)
    }

    /// A decoder fed whole NAL units a few at a time (as RTP brings them) rather than whole
    /// access units: it finishes a picture as soon as its last slice is in, without waiting
    /// for the next picture to begin.
    pub fn chunked() -> Result<Self, Error> {
        Self::open(None, true)
    }

    fn open(description: Option<&[u8]>, chunks: bool) -> Result<Self, Error> {
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
        Ok(Self {
            decoder,
            decoded: ffmpeg::frame::Video::empty(),
            scaler: None,
            annexb: Vec::new(),
            has_avcc: description.is_some_and(|d| !d.is_empty()),
        })
    }

    /// Decode one access unit; calls `out` with each picture it completes, as an I420 view
    /// of the decoder's own buffers.
    pub fn decode(
        &mut self,
        payload: &[u8],
        mut out: impl FnMut(Picture<'_>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let data = if self.has_avcc || is_annexb(payload) {
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
