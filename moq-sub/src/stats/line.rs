//! A stats line, typed: what `--stats` prints (one JSON object a line), what the window's
//! overlay shows and what the tests and ci/bench-report read. The per-second lines and the
//! closing one (`"final": true`) share this one definition; fields only one of them carries
//! are left out of the other. Latencies are milliseconds (two decimals), `null` when nothing
//! was measured.

use serde::{Deserialize, Serialize};

/// Who wrote the line (moq-pub and host-daemon write lines of their own beside these).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    #[default]
    Sub,
}

/// Where the headline latency comes from: the stamp drawn in the picture (test content, glass
/// to glass), or the capture time the publisher gave the frame (any content).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LatencyFrom {
    Stamp,
    Pts,
}

/// One line. Read leniently (a field missing is its default); a section is there when its
/// own fields are.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Line {
    pub role: Role,
    /// The closing line, over the whole run; absent from the per-second ones.
    #[serde(rename = "final", default, skip_serializing_if = "is_false")]
    pub closing: bool,
    /// Per second: pictures shown a second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fps: Option<f64>,
    /// Closing: seconds since the first frame arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    /// Closing: the first frame's arrival → the first picture shown, what joining cost (a
    /// group under way is skipped for the next keyframe).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join_ms: Option<f64>,
    /// The video received, kbit/s (closing: `null` before a frame came).
    pub kbps: Option<f64>,
    /// Closing: the video's bytes received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Pictures decoded and handed to the output, since the start.
    pub frames: u64,
    /// Gaps in the stamps' frame numbers: every drop on the way, wherever it happened.
    pub drops: u64,
    /// Closing: pictures shown whose stamp could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unstamped: Option<u64>,
    pub latency_from: Option<LatencyFrom>,
    /// Glass to glass: the stamp's capture time → handed to the output.
    pub g2g_ms_p50: Option<f64>,
    pub g2g_ms_p99: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub g2g_ms_max: Option<f64>,
    /// The capture time in the frame's timestamp → handed to the output.
    pub pts_to_shown_ms_p50: Option<f64>,
    pub pts_to_shown_ms_p99: Option<f64>,
    /// The capture time in the frame's timestamp → its arrival here.
    pub net_ms_p50: Option<f64>,
    pub net_ms_p99: Option<f64>,
    pub decode_ms_p50: Option<f64>,
    /// Per second: the stream is away and being waited for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconnecting: Option<bool>,
    /// Times the stream went away and was waited for.
    pub outages: u64,
    /// Frames skipped here because the player fell behind the stream: its decoder or output
    /// slower than the frames came (left out when none were).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub behind_skipped: u64,
    /// Closing: seconds without the stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outage_s: Option<f64>,
    /// Closing: per-second lines dropped because their reader fell a minute behind (left
    /// out when none were).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lines_dropped: u64,
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub frame_delay: Option<FrameDelayFigures>,
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<AudioFigures>,
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub input: Option<InputFigures>,
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowFigures>,
    /// The connection's smoothed round-trip time.
    pub rtt_ms: Option<f64>,
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub record: Option<RecordFigures>,
    /// The catalog's codec string of what plays (`avc3.42c01f`, `av01.0.08M.08`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codec: Option<String>,
}

/// Closing, on stamped content: Salsify's frame delay (for every source frame, capture → it
/// or a newer frame shown), stalls, and the share of source frames shown.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FrameDelayFigures {
    pub frame_delay_ms_p50: Option<f64>,
    pub frame_delay_ms_p95: Option<f64>,
    pub frame_delay_ms_p99: Option<f64>,
    pub frame_delay_ms_max: Option<f64>,
    pub shown_fraction: f64,
    /// The screen unchanged over 200 ms, and over 500 ms.
    pub stalls: u64,
    pub long_stalls: u64,
    pub stalled_s: f64,
}

/// The sound, when the broadcast has some: capture → decoded and handed to the output.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AudioFigures {
    pub audio_ms_p50: Option<f64>,
    /// Times packets never arrived and silence was played.
    pub audio_gaps: u64,
    /// Per second: the A/V offset measured in it (a beep/flash pair; + is sound late).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub av_offset_ms: Option<f64>,
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub run: Option<AudioRun>,
}

/// Closing: the sound over the whole run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AudioRun {
    pub audio_frames: u64,
    pub audio_ms_p99: Option<f64>,
    pub audio_missing_ms: f64,
    pub audio_decode_errors: u64,
    /// A PipeWire sink's underruns, and the sound shed from its queue.
    pub audio_underruns: u64,
    pub audio_shed_ms: f64,
    /// A/V offsets measured (one per beep/flash pair).
    pub av_pairs: usize,
    pub av_offset_ms_min: Option<f64>,
    pub av_offset_ms_max: Option<f64>,
    pub av_offsets_ms: Vec<f64>,
}

/// This viewer's input, when it sends some: what went out, and input-to-photon (a press → the
/// first picture that shows it).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InputFigures {
    pub input_events: u64,
    pub input_datagrams: u64,
    pub input_to_photon_ms_p50: Option<f64>,
    pub input_to_photon_ms_p99: Option<f64>,
    pub input_to_photon_count: u64,
    /// Presses no picture has answered yet.
    pub input_unanswered: u64,
    /// Closing: where input-to-photon goes (to the app, waiting for its frame, back here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_to_app_ms_p50: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_frame_wait_ms_p50: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_commit_to_shown_ms_p50: Option<f64>,
}

/// The window, when there is one: decoded → on the screen.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowFigures {
    pub present_ms_p50: Option<f64>,
    pub present_ms_p99: Option<f64>,
    /// Pictures a newer one replaced before the screen took them.
    pub window_replaced: u64,
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub run: Option<WindowRun>,
}

/// Closing: the window over the whole run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowRun {
    pub renderer: String,
    pub presented: u64,
    pub present_wait_ms_p50: Option<f64>,
    pub present_upload_ms_p50: Option<f64>,
    pub present_draw_ms_p50: Option<f64>,
    /// Input the player gave before the host listened, which was not sent.
    pub input_unsent: u64,
}

/// What `--record` has written.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RecordFigures {
    pub record_bytes: u64,
    pub record_s: f64,
}

/// The line as `--stats` prints it: one JSON object.
impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let json = serde_json::to_string(self).map_err(|_| std::fmt::Error)?;
        f.write_str(&json)
    }
}

fn is_false(value: &bool) -> bool {
    !value
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

/// µs as milliseconds with two decimals.
pub fn ms(us: Option<u64>) -> Option<f64> {
    us.map(|us| (us as f64 / 10.0).round() / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wire form is pinned: ci/bench-report, the tests and anyone scripting `--stats`
    /// read these names. A change here is a change for them.
    #[test]
    fn a_closing_line_is_this_json_and_reads_back_the_same() {
        let line = Line {
            closing: true,
            seconds: Some(10.0),
            kbps: Some(2400.0),
            bytes: Some(3_000_000),
            frames: 600,
            drops: 1,
            unstamped: Some(0),
            latency_from: Some(LatencyFrom::Stamp),
            g2g_ms_p50: Some(7.5),
            g2g_ms_p99: Some(9.25),
            g2g_ms_max: Some(12.0),
            pts_to_shown_ms_p50: Some(7.0),
            pts_to_shown_ms_p99: Some(9.0),
            net_ms_p50: Some(1.5),
            net_ms_p99: None,
            decode_ms_p50: Some(1.25),
            outages: 1,
            behind_skipped: 29,
            outage_s: Some(0.5),
            frame_delay: Some(FrameDelayFigures {
                frame_delay_ms_p50: Some(8.0),
                frame_delay_ms_p95: Some(9.0),
                frame_delay_ms_p99: Some(10.0),
                frame_delay_ms_max: Some(30.0),
                shown_fraction: 0.998,
                stalls: 0,
                long_stalls: 0,
                stalled_s: 0.0,
            }),
            audio: Some(AudioFigures {
                audio_ms_p50: Some(20.0),
                audio_gaps: 0,
                av_offset_ms: None,
                run: Some(AudioRun {
                    audio_frames: 1000,
                    audio_ms_p99: Some(25.0),
                    audio_missing_ms: 0.0,
                    audio_decode_errors: 0,
                    audio_underruns: 0,
                    audio_shed_ms: 0.0,
                    av_pairs: 1,
                    av_offset_ms_min: Some(4.0),
                    av_offset_ms_max: Some(4.0),
                    av_offsets_ms: vec![4.0],
                }),
            }),
            input: Some(InputFigures {
                input_events: 4,
                input_datagrams: 9,
                input_to_photon_ms_p50: Some(7.1),
                input_to_photon_ms_p99: Some(9.3),
                input_to_photon_count: 2,
                input_unanswered: 0,
                input_to_app_ms_p50: Some(0.5),
                input_frame_wait_ms_p50: Some(1.0),
                input_commit_to_shown_ms_p50: Some(5.5),
            }),
            window: Some(WindowFigures {
                present_ms_p50: Some(0.4),
                present_ms_p99: Some(0.9),
                window_replaced: 0,
                run: Some(WindowRun {
                    renderer: "software".into(),
                    presented: 599,
                    present_wait_ms_p50: Some(0.1),
                    present_upload_ms_p50: Some(0.2),
                    present_draw_ms_p50: Some(0.1),
                    input_unsent: 0,
                }),
            }),
            rtt_ms: Some(0.3),
            record: Some(RecordFigures {
                record_bytes: 123,
                record_s: 9.9,
            }),
            codec: Some("avc3.42c01f".into()),
            ..Line::default()
        };
        let json = concat!(
            r#"{"role":"sub","final":true,"seconds":10.0,"kbps":2400.0,"bytes":3000000,"#,
            r#""frames":600,"drops":1,"unstamped":0,"latency_from":"stamp","#,
            r#""g2g_ms_p50":7.5,"g2g_ms_p99":9.25,"g2g_ms_max":12.0,"#,
            r#""pts_to_shown_ms_p50":7.0,"pts_to_shown_ms_p99":9.0,"net_ms_p50":1.5,"#,
            r#""net_ms_p99":null,"decode_ms_p50":1.25,"outages":1,"behind_skipped":29,"#,
            r#""outage_s":0.5,"#,
            r#""frame_delay_ms_p50":8.0,"frame_delay_ms_p95":9.0,"frame_delay_ms_p99":10.0,"#,
            r#""frame_delay_ms_max":30.0,"shown_fraction":0.998,"stalls":0,"long_stalls":0,"#,
            r#""stalled_s":0.0,"audio_ms_p50":20.0,"audio_gaps":0,"audio_frames":1000,"#,
            r#""audio_ms_p99":25.0,"audio_missing_ms":0.0,"audio_decode_errors":0,"#,
            r#""audio_underruns":0,"audio_shed_ms":0.0,"av_pairs":1,"av_offset_ms_min":4.0,"#,
            r#""av_offset_ms_max":4.0,"av_offsets_ms":[4.0],"input_events":4,"#,
            r#""input_datagrams":9,"input_to_photon_ms_p50":7.1,"input_to_photon_ms_p99":9.3,"#,
            r#""input_to_photon_count":2,"input_unanswered":0,"input_to_app_ms_p50":0.5,"#,
            r#""input_frame_wait_ms_p50":1.0,"input_commit_to_shown_ms_p50":5.5,"#,
            r#""present_ms_p50":0.4,"present_ms_p99":0.9,"window_replaced":0,"#,
            r#""renderer":"software","presented":599,"present_wait_ms_p50":0.1,"#,
            r#""present_upload_ms_p50":0.2,"present_draw_ms_p50":0.1,"input_unsent":0,"#,
            r#""rtt_ms":0.3,"record_bytes":123,"record_s":9.9,"codec":"avc3.42c01f"}"#,
        );
        assert_eq!(line.to_string(), json);
        assert_eq!(serde_json::from_str::<Line>(json).unwrap(), line);
    }

    /// A per-second line carries no closing-only fields, and a section that was not measured
    /// is absent, not empty, both ways.
    #[test]
    fn a_per_second_line_leaves_out_what_it_does_not_measure() {
        let line = Line {
            fps: Some(59.9),
            kbps: Some(2000.0),
            frames: 60,
            reconnecting: Some(false),
            audio: Some(AudioFigures {
                audio_ms_p50: None,
                audio_gaps: 0,
                av_offset_ms: Some(-3.5),
                run: None,
            }),
            ..Line::default()
        };
        let json = concat!(
            r#"{"role":"sub","fps":59.9,"kbps":2000.0,"frames":60,"drops":0,"#,
            r#""latency_from":null,"g2g_ms_p50":null,"g2g_ms_p99":null,"#,
            r#""pts_to_shown_ms_p50":null,"pts_to_shown_ms_p99":null,"net_ms_p50":null,"#,
            r#""net_ms_p99":null,"decode_ms_p50":null,"reconnecting":false,"outages":0,"#,
            r#""audio_ms_p50":null,"audio_gaps":0,"av_offset_ms":-3.5,"rtt_ms":null}"#,
        );
        assert_eq!(line.to_string(), json);
        let back: Line = serde_json::from_str(json).unwrap();
        assert_eq!(back, line);
        assert!(back.input.is_none() && back.window.is_none() && back.frame_delay.is_none());
    }
}
