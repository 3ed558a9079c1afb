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
    /// The direct server's sessions: players and spectators held, newcomers turned away
    /// (absent without `--listen`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direct: Option<lantern_net::listen::Seated>,
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
        if let Some(direct) = &self.direct {
            let mut held = format!("{} playing, {} watching", direct.players, direct.spectators);
            if direct.refused > 0 {
                held += &format!(", {} turned away", direct.refused);
            }
            parts.push(held);
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

/// Seconds in a row the encoder must fall behind before [`Behind`] says so.
const BEHIND_SECONDS: u32 = 3;
/// Seconds after saying it before it is said again (while, or once more, behind).
const BEHIND_QUIET_S: u32 = 60;

/// Tells a person when the encoder cannot keep up with its source: for [`BEHIND_SECONDS`]
/// seconds in a row, a tenth or more of the frames captured dropped because the encoder was
/// still busy with an older one. A source that slows down (a still screen) drops nothing and
/// is never taken for it. Said at most once a minute.
#[derive(Debug, Default)]
pub(crate) struct Behind {
    /// Frames captured and dropped in all, as of the last second.
    captured: u64,
    drops: u64,
    streak: u32,
    quiet_s: u32,
}

impl Behind {
    /// One second's figures (`captured` and `drops` are totals so far), from a source of
    /// `fps` frames a second: what to tell the person, when it is due.
    pub(crate) fn second(&mut self, video: &VideoStats, fps: f64) -> Option<String> {
        let captured = video.captured.saturating_sub(self.captured);
        let dropped = video.drops.saturating_sub(self.drops);
        (self.captured, self.drops) = (video.captured, video.drops);
        self.quiet_s = self.quiet_s.saturating_sub(1);
        let behind = dropped >= 2 && dropped * 10 >= captured;
        self.streak = if behind { self.streak + 1 } else { 0 };
        if self.streak < BEHIND_SECONDS || self.quiet_s > 0 {
            return None;
        }
        self.quiet_s = BEHIND_QUIET_S;
        // The two totals are read one after the other: a drop may land between them.
        let kept = captured.saturating_sub(dropped);
        let (encode, every) = (video.times.encode_ms_p50, 1000.0 / fps.max(1.0));
        let why = match encode > every {
            true => format!(
                "{} takes {encode:.1} ms a frame and they come every {every:.1} ms",
                video.encoder
            ),
            false => format!(
                "{} takes {encode:.1} ms a frame, under the {every:.1} ms between frames: \
                 the host's CPU is busy elsewhere",
                video.encoder
            ),
        };
        let try_this = match video.codec.as_ref() {
            "av1" => "--codec h264, a faster --preset or a smaller picture",
            _ => "a faster --preset or a smaller picture",
        };
        Some(format!(
            "the encoder keeps {kept} of the {captured} frames captured a second ({why}); \
             the rest are dropped: {try_this} would keep them all"
        ))
    }
}

/// A percentile in ms (0 when empty), rounded to µs.
pub fn ms(h: &Histogram, q: f64) -> f64 {
    h.quantile(q).unwrap_or(0) as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three seconds in a row of a tenth or more dropped are said, once, naming the cost;
    /// a source that slows (fewer frames, none dropped) is not the encoder falling behind.
    #[test]
    fn an_encoder_that_falls_behind_is_said_once_a_minute() {
        let mut behind = Behind::default();
        let mut video = VideoStats {
            codec: "av1".into(),
            encoder: "aom".into(),
            ..VideoStats::default()
        };
        video.times.encode_ms_p50 = 24.5;
        let mut second = |captured: u64, dropped: u64| {
            video.captured += captured;
            video.drops += dropped;
            behind.second(&video, 60.0)
        };
        // A still screen: few frames, none dropped.
        for _ in 0..5 {
            assert_eq!(second(3, 0), None);
        }
        // Behind for two seconds, then caught up: nothing yet.
        assert_eq!(second(60, 20), None);
        assert_eq!(second(60, 20), None);
        assert_eq!(second(60, 1), None);
        assert_eq!(second(60, 20), None);
        assert_eq!(second(60, 20), None);
        assert_eq!(
            second(60, 20).as_deref(),
            Some(
                "the encoder keeps 40 of the 60 frames captured a second (aom takes 24.5 ms a \
                 frame and they come every 16.7 ms); the rest are dropped: --codec h264, a \
                 faster --preset or a smaller picture would keep them all"
            )
        );
        for _ in 0..59 {
            assert_eq!(second(60, 20), None, "said once a minute");
        }
        assert!(second(60, 20).is_some());
    }

    #[test]
    fn a_busy_host_is_told_apart_from_a_slow_encoder() {
        let mut behind = Behind::default();
        let mut video = VideoStats {
            codec: "h264".into(),
            encoder: "x264".into(),
            ..VideoStats::default()
        };
        video.times.encode_ms_p50 = 3.0;
        let said = (1..=3)
            .map(|n| {
                (video.captured, video.drops) = (60 * n, 10 * n);
                behind.second(&video, 60.0)
            })
            .last()
            .flatten()
            .unwrap();
        assert!(said.contains("the host's CPU is busy elsewhere"), "{said}");
        assert!(said.ends_with("a faster --preset or a smaller picture would keep them all"));
    }

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
        video.drops = 0;
        video.rate = None;
        video.direct = Some(lantern_net::listen::Seated {
            players: 1,
            spectators: 8,
            refused: 4,
            evicted: 0,
        });
        assert_eq!(
            video.text(),
            "60 fps · 3.6 Mbit/s · encode 1.5 ms · capture → sent 2.1 ms · 1 playing, 8 watching, \
             4 turned away"
        );
    }
}
