//! What publishing reports to its caller: events as they happen (through the channel given to
//! [`crate::publish`]), and the totals it returns. All of them serialise to the JSON lines
//! that `moq-pub --stats` prints.

use std::net::SocketAddr;

use lantern_proto::histogram::Histogram;
use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// Something the caller may want to show as it happens.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Event {
    /// The direct server is up: subscribers connect here, trusting this fingerprint.
    Listening {
        addr: SocketAddr,
        fingerprint: String,
        /// The browser viewer page for this broadcast, when the built page is served.
        page: Option<String>,
    },
    /// The relay accepted the session.
    Connected { url: String },
    /// The RTP copy is going to `url`: `sdp` describes it for receivers.
    Rtp { url: String, sdp: String },
    /// A second of video.
    Video(VideoStats),
}

/// One second of the video pipeline.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VideoStats {
    /// The codec (`h264`, `av1`) and the encoder making it (`x264`, `svtav1`).
    pub codec: Cow<'static, str>,
    pub encoder: Cow<'static, str>,
    pub fps: f64,
    pub kbps: f64,
    /// Frames captured so far, and dropped because the encoder was behind.
    pub captured: u64,
    pub drops: u64,
    #[serde(flatten)]
    pub times: StageTimes,
    /// The adaptive bitrate's state (absent with `--bitrate-mode fixed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<crate::rate::RateStats>,
}

/// How long the stages took: encoding alone, and capture to the frame handed to MoQ.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct StageTimes {
    pub encode_ms_p50: f64,
    pub encode_ms_p99: f64,
    pub capture_to_sent_ms_p50: f64,
    pub capture_to_sent_ms_p99: f64,
}

impl StageTimes {
    /// Percentiles of encode and capture-to-sent histograms (µs).
    pub fn of(encode_us: &Histogram, capture_to_sent_us: &Histogram) -> Self {
        Self {
            encode_ms_p50: ms(encode_us, 0.5),
            encode_ms_p99: ms(encode_us, 0.99),
            capture_to_sent_ms_p50: ms(capture_to_sent_us, 0.5),
            capture_to_sent_ms_p99: ms(capture_to_sent_us, 0.99),
        }
    }
}

/// The video pipeline over the whole run.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct VideoSummary {
    pub codec: &'static str,
    pub encoder: &'static str,
    pub captured: u64,
    pub published: u64,
    pub drops: u64,
    #[serde(flatten)]
    pub times: StageTimes,
    /// The adaptive bitrate's totals (absent with `--bitrate-mode fixed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<crate::rate::RateStats>,
}

/// The audio thread over the whole run.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct AudioSummary {
    pub frames: u64,
    pub bytes: u64,
    pub kbps: Option<f64>,
    /// Sound the source lost (the server skipped it): sent as silence.
    pub lost_ms: f64,
    /// Sound dropped because encoding fell a second behind the capture.
    pub overflow_ms: f64,
}

/// What a publishing run did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    pub video: VideoSummary,
    pub audio: Option<AudioSummary>,
    /// What `--record` wrote.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<lantern_net::record::Summary>,
}

/// A percentile in ms (0 when empty), rounded to µs.
pub fn ms(h: &Histogram, q: f64) -> f64 {
    h.quantile(q).unwrap_or(0) as f64 / 1000.0
}
