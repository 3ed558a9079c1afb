//! moq-sub: subscribe to a hang broadcast over MoQ, decode its H.264 or AV1 video and Opus
//! sound, and hand them to a viewer (a window, a y4m file or pipe, a WAV file, PipeWire),
//! measuring latency.
//!
//! [`run`] dials a relay (or a `--listen` server) and plays; [`watch`] plays a broadcast from
//! an origin that something else feeds (a connection, or an in-process publisher). Both take
//! a cancellation token and report through an events channel of typed [`stats::Line`]s; the
//! library prints nothing.
//!
//! Inside: [`Config`] (`config.rs`) says what to play; `session.rs` runs it (dialing, input
//! and feedback, the players side by side); `player.rs` is the video player's loop, `audio`
//! the sound's; `subscribe.rs` finds the broadcast and its tracks (again after an outage).

mod arrivals;
pub mod audio;
mod config;
pub mod decode;
mod error;
mod feed;
mod feedback;
pub mod input;
pub mod output;
mod playback;
mod player;
pub mod rtp;
mod sdl_audio;
mod session;
pub mod stats;
mod subscribe;
pub mod window;

pub use config::Config;
pub use error::Error;
pub use feed::{Encoded, Feed};
pub use session::{run, watch};
pub use subscribe::{Audio, Choice, Join, Video, choose};

/// Where a run reports as it goes: one stats line a second, when asked for. Bounded (see
/// [`events`]): lines its reader leaves waiting past a minute's are dropped, and counted in the
/// closing line's `lines_dropped`.
pub type Events = tokio::sync::mpsc::Sender<stats::Line>;

/// How many stats lines may wait for their reader: a minute's.
const EVENTS_QUEUED: usize = 60;

/// A channel for a run's stats lines (see [`Events`]).
pub fn events() -> (Events, tokio::sync::mpsc::Receiver<stats::Line>) {
    tokio::sync::mpsc::channel(EVENTS_QUEUED)
}

/// What a run did: the counts, and the closing stats line (also when playing failed).
#[derive(Clone, Debug)]
pub struct Outcome {
    pub summary: stats::Summary,
    pub total: stats::Line,
}

impl Outcome {
    /// A run stopped before anything played.
    fn empty() -> Self {
        let stats = stats::Stats::default();
        Self {
            summary: stats.summary.clone(),
            total: stats.total(),
        }
    }
}

/// A run that failed: why, and what it measured until then (a stream that stalled or broke
/// after playing still has its closing line).
#[derive(Debug)]
pub struct Failed {
    pub error: Error,
    pub outcome: Option<Outcome>,
}

impl Failed {
    fn after(error: Error, outcome: Outcome) -> Self {
        Self {
            error,
            outcome: Some(outcome),
        }
    }
}

impl From<Error> for Failed {
    fn from(error: Error) -> Self {
        Self {
            error,
            outcome: None,
        }
    }
}
