//! H.264 decoding with ffmpeg-next, set up for latency: slice threads only (frame threads
//! would hold frames back) and low-delay output. Accepts both in-band parameter sets
//! (`avc3`, Annex-B) and out-of-band ones (`avc1`, the catalog's avcC `description`).

use ffmpeg_next as ffmpeg;
use lantern_proto::yuv;

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
        moq_pub::encode::init_ffmpeg().map_err(|e| Error::Decoder(e.to_string()))?;
        let codec = ffmpeg::decoder::find(ffmpeg::codec::Id::H264)
            .ok_or_else(|| Error::Decoder("this FFmpeg has no H.264 decoder".into()))?;
        let mut ctx = ffmpeg::codec::context::Context::new_with_codec(codec);
        ctx.set_threading(ffmpeg::threading::Config {
            kind: ffmpeg::threading::Type::Slice,
            count: 2,
            ..Default::default()
        });
        ctx.set_flags(ffmpeg::codec::Flags::LOW_DELAY);
        if let Some(avcc) = description.filter(|d| !d.is_empty()) {
            set_extradata(&mut ctx, avcc);
        }
        let decoder = ctx
            .decoder()
            .video()
            .map_err(|e| Error::Decoder(format!("open H.264 decoder: {e}")))?;
        Ok(Self {
            decoder,
            decoded: ffmpeg::frame::Video::empty(),
            scaler: None,
            annexb: Vec::new(),
            has_avcc: description.is_some_and(|d| !d.is_empty()),
        })
    }

    /// Decode one access unit; calls `out` with each picture it completes (as an I420 view).
    pub fn decode(
        &mut self,
        payload: &[u8],
        mut out: impl FnMut(Picture<'_>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let data = if self.has_avcc || is_annexb(payload) {
            payload
        } else {
            to_annexb(payload, &mut self.annexb)?;
            &self.annexb
        };
        let packet = ffmpeg::Packet::copy(data);
        self.decoder
            .send_packet(&packet)
            .map_err(|e| Error::Decoder(format!("corrupt access unit: {e}")))?;
        loop {
            match self.decoder.receive_frame(&mut self.decoded) {
                Ok(()) => out(self.picture()?)?,
                Err(ffmpeg::Error::Other {
                    errno: ffmpeg::error::EAGAIN,
                })
                | Err(ffmpeg::Error::Eof) => return Ok(()),
                Err(e) => return Err(Error::Decoder(format!("decode: {e}"))),
            }
        }
    }

    fn picture(&mut self) -> Result<Picture<'_>, Error> {
        use ffmpeg::format::Pixel;
        let (width, height) = (self.decoded.width(), self.decoded.height());
        let frame = match self.decoded.format() {
            Pixel::YUV420P | Pixel::YUVJ420P => &self.decoded,
            format => {
                let stale = self.scaler.as_ref().is_none_or(|(s, _)| {
                    s.input().width != width
                        || s.input().height != height
                        || s.input().format != format
                });
                if stale {
                    let scaler = ffmpeg::software::scaling::Context::get(
                        format,
                        width,
                        height,
                        Pixel::YUV420P,
                        width,
                        height,
                        ffmpeg::software::scaling::Flags::POINT,
                    )
                    .map_err(|e| Error::Decoder(format!("convert {format:?} to I420: {e}")))?;
                    self.scaler = Some((scaler, ffmpeg::frame::Video::empty()));
                }
                let (scaler, converted) = self.scaler.as_mut().expect("set above");
                scaler
                    .run(&self.decoded, converted)
                    .map_err(|e| Error::Decoder(format!("convert to I420: {e}")))?;
                converted
            }
        };
        Ok(Picture { frame })
    }
}

/// A decoded picture in 8-bit 4:2:0, still in the decoder's buffers.
pub struct Picture<'a> {
    frame: &'a ffmpeg::frame::Video,
}

impl Picture<'_> {
    pub fn width(&self) -> u32 {
        self.frame.width()
    }

    pub fn height(&self) -> u32 {
        self.frame.height()
    }

    /// The luma plane and its stride.
    pub fn luma(&self) -> (&[u8], usize) {
        (self.frame.data(0), self.frame.stride(0))
    }

    /// Copy into a packed I420 frame of the same size.
    pub fn copy_to(&self, frame: &mut yuv::Frame) {
        for (plane, (dst, width)) in frame.planes_mut().into_iter().enumerate() {
            let (src, stride) = (self.frame.data(plane), self.frame.stride(plane));
            for (row, dst_row) in dst.chunks_exact_mut(width).enumerate() {
                dst_row.copy_from_slice(&src[row * stride..][..width]);
            }
        }
    }
}

fn is_annexb(data: &[u8]) -> bool {
    data.starts_with(&[0, 0, 0, 1]) || data.starts_with(&[0, 0, 1])
}

/// Rewrite 4-byte length-prefixed NAL units as Annex-B.
fn to_annexb(mut data: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
    out.clear();
    while !data.is_empty() {
        let bad = || Error::Decoder("access unit is neither Annex-B nor length-prefixed".into());
        let len = u32::from_be_bytes(
            data.get(..4)
                .ok_or_else(bad)?
                .try_into()
                .map_err(|_| bad())?,
        ) as usize;
        let nal = data.get(4..4 + len).ok_or_else(bad)?;
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(nal);
        data = &data[4 + len..];
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use lantern_proto::stamp::Stamp;
    use moq_pub::encode::{Encoder, H264Settings};
    use moq_pub::source::{Cube, Format};

    /// The frame stamp survives a real x264 encode and FFmpeg decode of the moving cube, at
    /// the default bitrate and at a starved one.
    #[test]
    fn stamps_survive_x264_round_trip() {
        for (width, height, kbps) in [(1280, 720, 4424), (1280, 720, 300), (320, 240, 100)] {
            let format = Format {
                width,
                height,
                fps: 60.0,
            };
            let cube = Cube::new(format).unwrap();
            let settings = H264Settings {
                bitrate_kbps: kbps,
                gop: 30,
                preset: "ultrafast".into(),
                tune: "zerolatency".into(),
            };
            let mut encoder = Encoder::new(format, &settings).unwrap();
            let mut decoder = Decoder::new(None).unwrap();
            let mut frame = yuv::Frame::new(width, height).unwrap();
            let mut read = Vec::new();
            let mut packets = Vec::new();
            for n in 0..90u32 {
                cube.render(n, &mut frame);
                let stamp = Stamp {
                    frame: n,
                    capture_us: 1_763_700_000_000_000 + n as u64 * 16_667,
                };
                stamp.write(&mut frame).unwrap();
                encoder
                    .encode(&frame, stamp.capture_us, |packet| {
                        assert_eq!(packet.keyframe, n % 30 == 0, "frame {n}");
                        packets.push(packet.data.to_vec());
                        Ok(())
                    })
                    .unwrap();
            }
            for packet in &packets {
                decoder
                    .decode(packet, |picture| {
                        let (luma, stride) = picture.luma();
                        read.push(Stamp::read_luma(
                            luma,
                            stride,
                            picture.width(),
                            picture.height(),
                        ));
                        Ok(())
                    })
                    .unwrap();
            }
            let expected: Vec<_> = (0..90u32)
                .map(|n| {
                    Some(Stamp {
                        frame: n,
                        capture_us: 1_763_700_000_000_000 + n as u64 * 16_667,
                    })
                })
                .collect();
            assert_eq!(read, expected, "{width}x{height} at {kbps} kbit/s");
        }
    }

    #[test]
    fn length_prefixed_units_become_annexb() {
        let mut out = Vec::new();
        to_annexb(&[0, 0, 0, 2, 0x67, 1, 0, 0, 0, 1, 0x68], &mut out).unwrap();
        assert_eq!(out, [0, 0, 0, 1, 0x67, 1, 0, 0, 0, 1, 0x68]);
        assert!(to_annexb(&[0, 0, 0, 9, 1], &mut out).is_err());
        assert!(to_annexb(&[0, 0], &mut out).is_err());
        assert!(is_annexb(&[0, 0, 1, 0x65]) && !is_annexb(&[0, 0, 2, 0x65]));
    }
}
