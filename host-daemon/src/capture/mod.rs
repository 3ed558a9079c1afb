//! Capturing the session's picture as a moq-pub [`Source`](moq_pub::source::Source), and the
//! capture's own figures.

mod dmabuf;
pub mod picture;
mod pipewire;
mod screencopy;
mod shared;
mod slots;
pub mod sound;

use std::sync::Mutex;

use lantern_compositor::figures::Figures;
use lantern_proto::histogram::Histogram;
use moq_pub::stats::ms;

pub use pipewire::PipeWireVideo;
pub use screencopy::Screencopy;

/// `--capture`: where a session's picture comes from.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(try_from = "String", into = "String")]
pub enum Capture {
    /// The compositor's own way (wlr-screencopy for sway), into these buffers.
    Compositor(Buffers),
    /// A PipeWire video node on the session's PipeWire, by `node.name` or serial: one an app
    /// of the session offers (gamescope, a GStreamer `pipewiresink`, OBS).
    PipeWire(String),
}

impl Default for Capture {
    fn default() -> Self {
        Self::Compositor(Buffers::Auto)
    }
}

/// Which buffers the compositor copies its output into.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Buffers {
    /// DMA-BUF where the compositor offers it and the host has a GPU render node (the
    /// compositor then copies on the GPU instead of reading back), else shared memory.
    #[default]
    Auto,
    /// Shared memory always.
    Shm,
    /// DMA-BUF, or the session does not start.
    DmaBuf,
}

impl Buffers {
    fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Shm => "shm",
            Self::DmaBuf => "dmabuf",
        }
    }
}

impl std::str::FromStr for Capture {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let compositor = |name: &str| name == "compositor" || name == "screencopy";
        match s.split_once(':') {
            None if compositor(s) => Ok(Self::default()),
            Some((name, buffers)) if compositor(name) => {
                [Buffers::Auto, Buffers::Shm, Buffers::DmaBuf]
                    .into_iter()
                    .find(|b| b.name() == buffers)
                    .map(Self::Compositor)
                    .ok_or_else(|| {
                        format!("capture {s:?}: the buffers are `auto`, `shm` or `dmabuf`")
                    })
            }
            Some(("pipewire", node)) if !node.is_empty() => Ok(Self::PipeWire(node.into())),
            _ => Err(format!(
                "capture {s:?}: expected `compositor[:auto|shm|dmabuf]` (or `screencopy…`) or \
                 `pipewire:NODE`"
            )),
        }
    }
}

impl TryFrom<String> for Capture {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<Capture> for String {
    fn from(capture: Capture) -> String {
        match capture {
            Capture::Compositor(Buffers::Auto) => "compositor".into(),
            Capture::Compositor(buffers) => format!("compositor:{}", buffers.name()),
            Capture::PipeWire(node) => format!("pipewire:{node}"),
        }
    }
}

/// How long a screen may stay unchanged before its last picture is sent again, so viewers
/// never take a still screen for a stalled stream (and keep a picture to join on).
pub const REPEAT_AFTER: std::time::Duration = std::time::Duration::from_millis(100);

/// The capture's figures over a stretch of time (a second, or the whole session).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct CaptureStats {
    /// What the pictures arrive in: `shm` (shared memory) or `dmabuf`; empty before the first.
    pub buffers: std::borrow::Cow<'static, str>,
    /// New pictures taken from the compositor.
    pub frames: u64,
    /// Pictures sent again because the screen did not change.
    pub repeats: u64,
    /// Pictures the compositor delivered that a newer one replaced before the encoder took
    /// them.
    pub drops: u64,
    /// Copies the compositor reported as failed, or buffers that could not be read.
    pub failures: u64,
    /// From the compositor's presentation of a picture to its being in the encoder's buffer.
    pub latency_ms_p50: f64,
    pub latency_ms_p99: f64,
    /// The one pixel conversion (shared memory → the encoder's I420).
    pub convert_ms_p50: f64,
    pub convert_ms_p99: f64,
    /// With Lantern's compositor, which captures on commit and paces the app (absent with
    /// the others): the latency above, which then runs from the app's commit,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit_to_encoder_ms_p50: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit_to_encoder_ms_p99: Option<f64>,
    /// how long the app waited from a commit to its next frame callback,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_frame_wait_ms_p50: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_frame_wait_ms_p99: Option<f64>,
    /// the frames it was let draw, and how many of them an input brought forward.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_frames: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_frames_boosted: Option<u64>,
}

impl CaptureStats {
    /// Add the figures of a compositor that captures on commit and paces the app.
    pub fn paced(self, figures: Option<Figures>) -> Self {
        let Some(f) = figures else {
            return self;
        };
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            commit_to_encoder_ms_p50: Some(self.latency_ms_p50),
            commit_to_encoder_ms_p99: Some(self.latency_ms_p99),
            app_frame_wait_ms_p50: Some(ms(f.wait_us_p50)),
            app_frame_wait_ms_p99: Some(ms(f.wait_us_p99)),
            app_frames: Some(f.callbacks),
            app_frames_boosted: Some(f.boosts),
            ..self
        }
    }
}

#[derive(Default)]
struct Counts {
    stats: CaptureStats,
    latency: Histogram,
    convert: Histogram,
}

impl Counts {
    fn snapshot(&self) -> CaptureStats {
        CaptureStats {
            latency_ms_p50: ms(&self.latency, 0.5),
            latency_ms_p99: ms(&self.latency, 0.99),
            convert_ms_p50: ms(&self.convert, 0.5),
            convert_ms_p99: ms(&self.convert, 0.99),
            ..self.stats.clone()
        }
    }

    fn clear(&mut self) {
        self.stats = CaptureStats {
            buffers: self.stats.buffers.clone(),
            ..CaptureStats::default()
        };
        self.latency.clear();
        self.convert.clear();
    }
}

/// The capture's counters, shared between the capturing thread and whoever reports them:
/// the current second's, and the session's totals.
#[derive(Default)]
pub struct Meter {
    counts: Mutex<[Counts; 2]>,
    /// The conversion time of the last new picture, until taken (see [`Meter::take_new`]).
    new: Mutex<Option<u64>>,
}

impl Meter {
    fn update(&self, change: impl Fn(&mut Counts)) {
        if let Ok(mut counts) = self.counts.lock() {
            counts.iter_mut().for_each(change);
        }
    }

    fn frame(&self, latency_us: u64, convert_us: u64) {
        self.update(|c| {
            c.stats.frames += 1;
            c.latency.record(latency_us);
            c.convert.record(convert_us);
        });
        if let Ok(mut new) = self.new.lock() {
            *new = Some(convert_us);
        }
    }

    /// Whether a new picture was counted since the last call (rather than a repeat), and its
    /// conversion time: what a capture process tells the daemon about each picture.
    fn take_new(&self) -> Option<u64> {
        self.new.lock().ok().and_then(|mut new| new.take())
    }

    fn buffers(&self, kind: &'static str) {
        self.update(|c| c.stats.buffers = kind.into());
    }

    fn repeat(&self) {
        self.update(|c| c.stats.repeats += 1);
    }

    fn drops(&self, n: u64) {
        self.update(|c| c.stats.drops += n);
    }

    fn failures(&self, n: u64) {
        self.update(|c| c.stats.failures += n);
    }

    /// The figures since the last call, starting a new stretch.
    pub fn take(&self) -> CaptureStats {
        self.counts
            .lock()
            .map(|mut counts| {
                let stretch = counts[0].snapshot();
                counts[0].clear();
                stretch
            })
            .unwrap_or_default()
    }

    /// The whole session's counts (frames, repeats, drops, failures, buffers), without the
    /// percentiles: what a capture process tells the daemon with every picture.
    fn counts(&self) -> CaptureStats {
        self.counts
            .lock()
            .map(|counts| counts[1].stats.clone())
            .unwrap_or_default()
    }

    /// The whole session's figures.
    pub fn total(&self) -> CaptureStats {
        self.counts
            .lock()
            .map(|counts| counts[1].snapshot())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_parse_and_print_back() {
        for (text, capture) in [
            ("compositor", Capture::Compositor(Buffers::Auto)),
            ("compositor:shm", Capture::Compositor(Buffers::Shm)),
            ("compositor:dmabuf", Capture::Compositor(Buffers::DmaBuf)),
            ("pipewire:gamescope", Capture::PipeWire("gamescope".into())),
        ] {
            assert_eq!(text.parse::<Capture>().unwrap(), capture);
            assert_eq!(String::from(capture), text);
        }
        assert_eq!("screencopy".parse::<Capture>().unwrap(), Capture::default());
        assert_eq!(
            "screencopy:auto".parse::<Capture>().unwrap(),
            Capture::default()
        );
        let err = "compositor:gpu".parse::<Capture>().unwrap_err();
        assert!(err.contains("`auto`, `shm` or `dmabuf`"), "{err}");
        for bad in ["pipewire:", "x11", ""] {
            assert!(bad.parse::<Capture>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_buffers_kind_outlives_each_second() {
        let meter = Meter::default();
        meter.buffers("dmabuf");
        meter.frame(1000, 100);
        assert_eq!(meter.take().frames, 1);
        let second = meter.take();
        assert_eq!((second.frames, second.buffers.as_ref()), (0, "dmabuf"));
        assert_eq!(meter.total().buffers, "dmabuf");
    }
}
