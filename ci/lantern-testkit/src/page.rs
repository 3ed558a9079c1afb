//! What the browser viewer measured: `window.lantern.figures()` as `web/tests/play.mjs`
//! prints it. The page defines it in TypeScript (`Figures` in web/src/meter.ts, `PageFigures`
//! in web/src/main.ts, `InputFigures` in web/src/input.ts); this is the tests' reading of it,
//! and a test below pins the field lists to each other. A field either side lacks is refused
//! when read, so neither side drifts unnoticed.

use serde::{Deserialize, Serialize};

/// Where the page's latencies come from: the stamp in the picture, or the frame's capture
/// timestamp.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LatencyFrom {
    #[default]
    Stamp,
    Pts,
}

/// Whose clock the page's latencies are on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Clock {
    /// The host's, through the estimated offset from its `/clock`.
    #[default]
    Host,
    /// The page's own (a page told to trust it).
    Local,
}

/// The page's figures over the whole run, and its state when it was read.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageFigures {
    pub frames: u64,
    pub fps: f64,
    pub kbps: f64,
    pub drops: u64,
    /// Frames skipped because the decoder fell behind the stream.
    pub behind_skipped: u64,
    /// Glass to glass from the stamp, else capture timestamp → shown (see `latency_from`).
    pub latency_ms_p50: Option<f64>,
    pub latency_ms_p99: Option<f64>,
    pub latency_from: Option<LatencyFrom>,
    pub pts_to_shown_ms_p50: Option<f64>,
    pub pts_to_shown_ms_p99: Option<f64>,
    /// Pictures whose stamp read, and the pictures missing between them.
    pub stamped: u64,
    pub stamp_gaps: u64,
    pub audio_frames: u64,
    pub audio_drops: u64,
    /// How much later the sound is heard than its picture is shown (+ is sound late).
    pub av_offset_ms: Option<f64>,
    pub rtt_ms: Option<f64>,
    /// Salsify's frame delay on stamped content, and the share of source frames shown.
    pub frame_delay_ms_p50: Option<f64>,
    pub frame_delay_ms_p95: Option<f64>,
    pub frame_delay_ms_p99: Option<f64>,
    pub frame_delay_ms_max: Option<f64>,
    pub shown_fraction: Option<f64>,
    pub stalls: u64,
    pub long_stalls: u64,
    /// The first frame's arrival → the first picture shown.
    pub join_ms: Option<f64>,
    /// The group the page joined into had begun before: it waited for the next keyframe
    /// rather than show that group's backlog late.
    pub joined_mid_group: bool,
    pub clock: Clock,
    pub clock_offset_ms: f64,
    /// The most the offset can be off by (half the quickest exchange's round trip).
    pub clock_error_ms: Option<f64>,
    /// The page's state: "starting", "playing", … (see web/src/main.ts).
    pub status: String,
    /// What stopped the page, when something did.
    pub error: Option<String>,
    /// The page's input, when it has a grant.
    pub input: Option<PageInput>,
    pub fullscreen: bool,
    pub keyboard_locked: bool,
    /// Sessions begun after the first.
    pub reconnects: u64,
    /// Of those, the sessions ended because their relay answered a fresh dial and not them
    /// (it restarted).
    pub relay_restarts: u64,
    /// The server the page dials (host:port).
    pub server: String,
    /// Added by play.mjs: the page's address when read.
    pub address: String,
    /// Added by play.mjs when it serves the page itself: the requests its server saw.
    pub requests: Option<Vec<String>>,
}

/// As play.mjs printed it: one JSON object (for assertion messages).
impl std::fmt::Display for PageFigures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&serde_json::to_string(self).map_err(|_| std::fmt::Error)?)
    }
}

/// What the page counts of its input.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageInput {
    pub granted: bool,
    pub events: u64,
    pub datagrams: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// What play.mjs adds to the page's own figures.
    const ADDED_BY_PLAY: [&str; 2] = ["address", "requests"];

    /// The field names of `interface NAME` in the TypeScript file `file` of web/src.
    fn ts_fields(file: &str, name: &str) -> BTreeSet<String> {
        let path = crate::web_dir().join("src").join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let start = text
            .find(&format!("interface {name} "))
            .unwrap_or_else(|| panic!("no interface {name} in {}", path.display()));
        let body = &text[start..];
        let body = &body[body.find('{').unwrap() + 1..body.find("\n}").unwrap()];
        body.lines()
            .map(str::trim)
            .filter_map(|line| line.split_once(':').map(|(field, _)| field))
            .filter(|field| field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            .map(str::to_string)
            .collect()
    }

    fn rust_fields(value: impl Serialize) -> BTreeSet<String> {
        match serde_json::to_value(value).unwrap() {
            serde_json::Value::Object(fields) => fields.keys().cloned().collect(),
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn the_page_figures_here_are_the_pages_own() {
        let mut page = ts_fields("meter.ts", "Figures");
        page.extend(ts_fields("main.ts", "PageFigures"));
        page.extend(ADDED_BY_PLAY.map(String::from));
        assert_eq!(rust_fields(PageFigures::default()), page);
        assert_eq!(
            rust_fields(PageInput::default()),
            ts_fields("input.ts", "InputFigures")
        );
    }

    #[test]
    fn a_field_the_tests_do_not_know_is_refused() {
        let mut known = serde_json::to_value(PageFigures::default()).unwrap();
        let parsed: PageFigures = serde_json::from_value(known.clone()).unwrap();
        assert_eq!(parsed, PageFigures::default());
        known["latency_ms_p95"] = 3.0.into();
        let err = serde_json::from_value::<PageFigures>(known).unwrap_err();
        assert!(err.to_string().contains("latency_ms_p95"), "{err}");
    }
}
