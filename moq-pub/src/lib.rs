//! moq-pub: encode pictures and sound from any source and publish them as a hang broadcast
//! over MoQ, to a relay or straight to subscribers (`--listen`).
//!
//! [`publish`] takes any video [`Source`](source::Source) (the test cube, a y4m stream, a
//! compositor's capture), an optional [`AudioSource`](audio::AudioSource), a cancellation
//! token and a channel for [`Event`]s; it prints nothing and installs no signal handler. The
//! binary is a thin wrapper that opens the sources its flags name and prints the events.
//!
//! The same encoded frames can also go out as plain RTP ([`Options::rtp`], see [`rtp`]),
//! alongside MoQ or alone.
//!
//! Inside: [`Options`] (`options.rs`) says what to publish where; `run.rs` runs it (the
//! network side included); `pipeline.rs` is the video thread (source → convert → encode →
//! tracks), `audio` the sound's; `publish.rs` the hang broadcast, `outlet.rs` where encoded
//! frames go (MoQ and RTP).

pub mod audio;
pub mod encode;
mod error;
mod options;
mod outlet;
mod pipeline;
pub mod publish;
pub mod rate;
pub mod rtp;
mod run;
pub mod source;
pub mod stats;

pub use error::Error;
pub use options::{Inbound, Options, PublishArgs, Target};
pub use run::publish;
pub use stats::{Event, Summary};

/// Where publishing reports what happens (stats once a second, the connection). Sends never
/// block; events nobody reads are dropped with the receiver.
pub type Events = tokio::sync::mpsc::UnboundedSender<Event>;
