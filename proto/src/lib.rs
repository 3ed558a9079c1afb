//! Lantern's pure formats: everything the publisher, the subscriber and the tools share,
//! with no I/O, no tasks and no codec or network dependency, so it can be tested (and
//! fuzzed) in memory.
//!
//! - [`y4m`]: the raw-video pipe format between Lantern and any ffmpeg/GStreamer/mpv.
//! - [`yuv`]: an owned, packed 4:2:0 frame (files, tests, tools).
//! - [`picture`]: strided views of pictures in other owners' buffers, in any capture format.
//! - [`stamp`]: the machine-readable strip drawn into each frame (frame number + capture
//!   time) that makes glass-to-glass latency measurable from decoded pixels.
//! - [`clock`]: UNIX-µs capture times and their mapping onto the hang broadcast clock.
//! - [`h264`]: Annex-B and length-prefixed H.264 framing.
//! - [`histogram`]: latency percentiles in bounded memory.
//! - [`audio`]: the raw audio format, OpusHead and WAV.
//! - [`sync`]: the beep-and-flash signal that makes A/V offset measurable.
//! - [`input`]: the viewer's input (keys, text, pointer, wheel, gamepads, touch) as one
//!   versioned datagram per message.
//! - [`feedback`]: what a viewer reports of its path (the datagram, and the viewer's meter).
//! - [`rate`]: the publisher's bitrate and keyframes, from viewers' reports.
//! - [`mute`]: a connection that still takes messages but has stopped sending.
//! - [`backlog`]: the viewer's queue between the network and its decoder (what a player
//!   that falls behind skips).
//! - [`app_pacing`]: when Lantern's own compositor lets the app draw its next frame.
//! - [`timing`]: the pipelines' timing decisions (pacing, audio timelines, lip sync, joining)
//!   as state machines that take the time as an argument.

pub mod app_pacing;
pub mod audio;
pub mod backlog;
pub mod clock;
pub mod deaf;
mod error;
pub mod feedback;
pub mod frame_delay;
pub mod h264;
pub mod histogram;
pub mod input;
pub mod mute;
pub mod picture;
pub mod rate;
pub mod sdp;
pub mod stamp;
pub mod sync;
pub mod timing;
pub mod y4m;
pub mod yuv;

pub use error::{Error, error_line};
