//! What publishing reports to its caller: events as they happen (through the channel given to
//! [`crate::publish`]), and the totals it returns. All of them serialise to the JSON lines
//! that `moq-pub --stats` prints.

use std::borrow::Cow;
use std::net::SocketAddr;

use lantern_proto::histogram::Histogram;

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

impl VideoStats {
    /// The second as a person reads it, on one line: `60 fps · 3.6 Mbit/s · encode 1.5 ms ·
    /// capture → sent 2.1 ms`, then what the rate control does and any drops.
    pub fn text(&self) -> String {
        let mut parts = vec![
            format!("{:.0} fps", self.fps),
            format!("{:.1} Mbit/s", self.kbps / 1000.0),
            format!("encode {:.1} ms", self.times.encode_ms_p50),
            format!("capture → sent {:.1} ms", self.times.capture_to_sent_ms_p50),
        ];
        if let Some(rate) = &self.rate {
            let target = format!("target {:.1} Mbit/s", rate.target_kbps as f64 / 1000.0);
            parts.push(match rate.viewers {
                0 => target,
                1 => format!("{target} following 1 viewer"),
                n => format!("{target} following {n} viewers"),
            });
        }
        if self.drops > 0 {
            parts.push(format!("{} dropped so far", self.drops));
        }
        parts.join(" · ")
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_reads_as_one_line() {
        let mut video = VideoStats {
            codec: "h264".into(),
            encoder: "x264".into(),
            fps: 59.96,
            kbps: 3580.0,
            times: StageTimes {
                encode_ms_p50: 1.49,
                capture_to_sent_ms_p50: 2.1,
                ..StageTimes::default()
            },
            ..VideoStats::default()
        };
        assert_eq!(
            video.text(),
            "60 fps · 3.6 Mbit/s · encode 1.5 ms · capture → sent 2.1 ms"
        );
        video.drops = 3;
        video.rate = Some(crate::rate::RateStats {
            target_kbps: 2500,
            viewers: 2,
            ..Default::default()
        });
        assert_eq!(
            video.text(),
            "60 fps · 3.6 Mbit/s · encode 1.5 ms · capture → sent 2.1 ms · target 2.5 Mbit/s \
             following 2 viewers · 3 dropped so far"
        );
    }
}
