//! The RTP copy of a broadcast (`--rtp rtp://HOST:PORT`), for players that do not speak MoQ:
//! the same encoded H.264 (RFC 6184) and Opus (RFC 7587) through libavformat's RTP muxer, video
//! to PORT and sound to PORT+2 (each with its RTCP on the next odd port), and the SDP that
//! describes both.
//!
//! Packets stay within [`PAYLOAD_BYTES`], and the encoder is asked to keep every slice within
//! one packet: a receiver then holds whole NAL units as they arrive and can decode a picture
//! the moment its last slice lands, rather than when the next picture begins.
//!
//! RTP timestamps count from one epoch shared by both streams, and the muxer's RTCP sender
//! reports map that epoch to wall time, so a receiver can recover each frame's capture time
//! and keep sound and picture in sync.

use std::net::{IpAddr, ToSocketAddrs};
use std::str::FromStr;

use ffmpeg::Rescale as _;
use ffmpeg::ffi;
use ffmpeg::packet::Mut as _;
use ffmpeg_next as ffmpeg;

use crate::Error;
use crate::source::Format;

/// The largest RTP payload sent: a 1200-byte packet less its 12-byte header, under any path's
/// MTU once IP, UDP and a tunnel's headers are added.
pub const PAYLOAD_BYTES: u32 = 1188;

/// The RTP packet size handed to libavformat (header included).
const PACKET_BYTES: u32 = PAYLOAD_BYTES + 12;

/// `--rtp rtp://HOST:PORT`: where the RTP copy goes. PORT (even) carries video, PORT+2 sound;
/// the odd port above each carries its RTCP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtpUrl {
    pub host: String,
    /// The address HOST resolved to.
    pub addr: IpAddr,
    pub port: u16,
}

impl FromStr for RtpUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let url = url::Url::parse(s).map_err(|e| format!("{s:?} is not a URL ({e})"))?;
        if url.scheme() != "rtp" {
            return Err(format!("{s:?}: the URL must be rtp://HOST:PORT"));
        }
        if !url.path().trim_matches('/').is_empty()
            || url.query().is_some()
            || url.fragment().is_some()
        {
            return Err(format!("{s:?}: only rtp://HOST:PORT (no path or options)"));
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("{s:?}: no host"))?
            .trim_matches(|c| c == '[' || c == ']')
            .to_string();
        let port = url.port().ok_or_else(|| format!("{s:?}: no port"))?;
        if port % 2 != 0 || port == 0 || port > u16::MAX - 3 {
            return Err(format!(
                "{s:?}: the port must be even and at most {} (video on PORT, sound on PORT+2, \
                 RTCP on the odd ports above)",
                u16::MAX - 3
            ));
        }
        let addr = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| format!("{s:?}: cannot resolve {host} ({e})"))?
            .next()
            .ok_or_else(|| format!("{s:?}: {host} has no address"))?
            .ip();
        Ok(Self { host, addr, port })
    }
}

impl std::fmt::Display for RtpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.addr {
            IpAddr::V6(addr) => write!(f, "rtp://[{addr}]:{}", self.port),
            IpAddr::V4(addr) => write!(f, "rtp://{addr}:{}", self.port),
        }
    }
}

impl RtpUrl {
    /// The URL of the stream on `port`, as libavformat's RTP protocol takes it.
    fn stream(&self, port: u16) -> String {
        Self {
            port,
            ..self.clone()
        }
        .to_string()
    }
}

/// One RTP stream: one libavformat RTP muxer (it carries a single stream) on its own port.
pub struct Stream {
    output: ffmpeg::format::context::Output,
    url: String,
    /// The wall time (UNIX µs) of RTP timestamp zero, shared by a broadcast's streams.
    epoch_us: u64,
    time_base: ffmpeg::Rational,
    packet: ffmpeg::Packet,
}

// SAFETY: the muxer is used from one thread at a time (the thread that owns the stream).
unsafe impl Send for Stream {}

/// What a stream carries.
pub enum Media {
    Video(Format),
    /// Opus at 48 kHz with this many channels.
    Opus(u16),
}

fn ffmpeg_error(what: String) -> impl FnOnce(ffmpeg::Error) -> Error {
    move |source| Error::Encoder { what, source }
}

impl Stream {
    /// Open the RTP stream for `media` to `url` (video on its port, sound two above), with RTP
    /// timestamp zero at wall time `epoch_us`.
    pub fn open(url: &RtpUrl, media: Media, epoch_us: u64, title: &str) -> Result<Self, Error> {
        lantern_media::ffmpeg::init()?;
        let port = match media {
            Media::Video(_) => url.port,
            Media::Opus(_) => url.port + 2,
        };
        let url = url.stream(port);
        let mut options = ffmpeg::Dictionary::new();
        options.set("pkt_size", &PACKET_BYTES.to_string());
        let mut output = ffmpeg::format::output_as_with(&url, "rtp", options)
            .map_err(ffmpeg_error(format!("{url}: cannot send RTP there")))?;
        output.set_metadata({
            let mut metadata = ffmpeg::Dictionary::new();
            metadata.set("title", title);
            metadata
        });
        {
            let mut stream = output
                .add_stream(ffmpeg::encoder::find(ffmpeg::codec::Id::None))
                .map_err(ffmpeg_error(format!("{url}: RTP stream")))?;
            // SAFETY: the stream's parameters are ours to fill until the header is written.
            unsafe {
                let par = (*stream.as_mut_ptr()).codecpar;
                match media {
                    Media::Video(format) => {
                        (*par).codec_type = ffi::AVMediaType::AVMEDIA_TYPE_VIDEO;
                        (*par).codec_id = ffi::AVCodecID::AV_CODEC_ID_H264;
                        (*par).width = format.width as i32;
                        (*par).height = format.height as i32;
                    }
                    Media::Opus(channels) => {
                        (*par).codec_type = ffi::AVMediaType::AVMEDIA_TYPE_AUDIO;
                        (*par).codec_id = ffi::AVCodecID::AV_CODEC_ID_OPUS;
                        (*par).sample_rate = lantern_proto::audio::RATE as i32;
                        ffi::av_channel_layout_default(&mut (*par).ch_layout, channels.into());
                    }
                }
            }
        }
        // SAFETY: a plain field of the context; the muxer's RTCP reports map RTP timestamp
        // zero to this wall time.
        unsafe { (*output.as_mut_ptr()).start_time_realtime = epoch_us as i64 };
        // An RTCP goodbye at the end, so receivers end too rather than wait for a timeout.
        let mut muxer = ffmpeg::Dictionary::new();
        muxer.set("rtpflags", "send_bye");
        output
            .write_header_with(muxer)
            .map_err(ffmpeg_error(format!("{url}: RTP header")))?;
        let time_base = output
            .stream(0)
            .map(|s| s.time_base())
            .ok_or_else(|| Error::Rtp(format!("{url}: the muxer lost its stream")))?;
        Ok(Self {
            output,
            url,
            epoch_us,
            time_base,
            packet: ffmpeg::Packet::empty(),
        })
    }

    /// Send one encoded frame (an Annex-B access unit, or an Opus packet) captured at
    /// `pts_us` (UNIX µs). The muxer splits it into packets and sends them before returning.
    pub fn write(&mut self, data: &[u8], pts_us: u64) -> Result<(), Error> {
        let since = pts_us.saturating_sub(self.epoch_us) as i64;
        let pts = since.rescale((1, 1_000_000), self.time_base);
        let size = i32::try_from(data.len())
            .map_err(|_| Error::Rtp(format!("{}: a {} byte frame", self.url, data.len())))?;
        // SAFETY: the packet borrows `data` for this call only (no buffer reference, so the
        // muxer copies what it keeps); its pointers are cleared before returning.
        let written = unsafe {
            let packet = self.packet.as_mut_ptr();
            (*packet).data = data.as_ptr().cast_mut();
            (*packet).size = size;
            (*packet).pts = pts;
            (*packet).dts = pts;
            (*packet).stream_index = 0;
            let written = ffi::av_write_frame(self.output.as_mut_ptr(), packet);
            (*packet).data = std::ptr::null_mut();
            (*packet).size = 0;
            written
        };
        if written < 0 {
            return Err(ffmpeg_error(format!("{}: sending RTP", self.url))(
                ffmpeg::Error::from(written),
            ));
        }
        Ok(())
    }

    /// End the stream: the muxer sends its RTCP goodbye.
    pub fn finish(&mut self) -> Result<(), Error> {
        self.output
            .write_trailer()
            .map_err(ffmpeg_error(format!("{}: ending RTP", self.url)))
    }
}

/// Where a binary puts the SDP (`--sdp`): a file (written whole before it appears there, as
/// receivers may be waiting for it), stdout (`-`), or, unless told, stderr.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum SdpOut {
    #[default]
    Stderr,
    Stdout,
    File(std::path::PathBuf),
}

impl FromStr for SdpOut {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "" => Err("an empty path".into()),
            "-" => Ok(Self::Stdout),
            path => Ok(Self::File(path.into())),
        }
    }
}

impl SdpOut {
    pub fn write(&self, sdp: &str) -> Result<(), Error> {
        use std::io::Write;
        let failed = |what: String| {
            move |source| Error::Open {
                path: format!("writing the SDP to {what}"),
                source,
            }
        };
        match self {
            Self::Stderr => {
                let mut err = std::io::stderr().lock();
                err.write_all(sdp.as_bytes())
                    .map_err(failed("stderr".into()))
            }
            Self::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(sdp.as_bytes())
                    .and_then(|()| out.flush())
                    .map_err(failed("stdout".into()))
            }
            Self::File(path) => {
                let partial = path.with_extension("sdp.partial");
                std::fs::write(&partial, sdp)
                    .and_then(|()| std::fs::rename(&partial, path))
                    .map_err(failed(path.display().to_string()))
            }
        }
    }
}

/// The SDP that describes `streams` (one media section each), for receivers to open.
pub fn sdp(streams: &mut [&mut Stream]) -> Result<String, Error> {
    let mut contexts: Vec<*mut ffi::AVFormatContext> = streams
        .iter_mut()
        // SAFETY: the pointers live as long as `streams`, which outlives this call.
        .map(|s| unsafe { s.output.as_mut_ptr() })
        .collect();
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: `contexts` holds open RTP muxers; the buffer's size is passed with it.
    let made = unsafe {
        ffi::av_sdp_create(
            contexts.as_mut_ptr(),
            contexts.len() as i32,
            buf.as_mut_ptr().cast(),
            buf.len() as i32,
        )
    };
    if made < 0 {
        return Err(ffmpeg_error("writing the SDP".into())(ffmpeg::Error::from(
            made,
        )));
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    buf.truncate(end);
    String::from_utf8(buf).map_err(|_| Error::Rtp("the muxer's SDP is not UTF-8".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdp_destinations_parse() {
        assert_eq!("-".parse(), Ok(SdpOut::Stdout));
        assert_eq!("a.sdp".parse(), Ok(SdpOut::File("a.sdp".into())));
        assert!("".parse::<SdpOut>().is_err());
    }

    #[test]
    fn an_sdp_file_appears_whole() {
        let dir = std::env::temp_dir().join(format!("lantern-sdp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.sdp");
        SdpOut::File(path.clone()).write("v=0\r\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "v=0\r\n");
        assert!(!dir.join("x.sdp.partial").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rtp_urls_parse() {
        let url: RtpUrl = "rtp://127.0.0.1:5004".parse().unwrap();
        assert_eq!((url.addr.to_string(), url.port), ("127.0.0.1".into(), 5004));
        assert_eq!(url.stream(5006), "rtp://127.0.0.1:5006");
        let v6: RtpUrl = "rtp://[::1]:6000".parse().unwrap();
        assert_eq!(v6.to_string(), "rtp://[::1]:6000");
        for bad in [
            "udp://127.0.0.1:5004",
            "rtp://127.0.0.1",
            "rtp://127.0.0.1:5005",
            "rtp://127.0.0.1:65534",
            "rtp://127.0.0.1:5004/path",
            "rtp://127.0.0.1:5004?pkt_size=9000",
            "127.0.0.1:5004",
            "rtp://no-such-host.invalid:5004",
        ] {
            assert!(bad.parse::<RtpUrl>().is_err(), "{bad}");
        }
    }
}
