//! Lantern's pure formats: everything the publisher, the subscriber and the tools share,
//! with no I/O, no tasks and no codec or network dependency, so it can be tested (and
//! fuzzed) in memory.
//!
//! - [`y4m`]: the raw-video pipe format between Lantern and any ffmpeg/GStreamer/mpv.
//! - [`yuv`]: the 4:2:0 planar frame every stage passes around.
//! - [`stamp`]: the machine-readable strip drawn into each frame (frame number + capture
//!   time) that makes glass-to-glass latency measurable from decoded pixels.
//! - [`clock`]: UNIX-µs capture times and their mapping onto the hang broadcast clock.
//! - [`histogram`]: latency percentiles in bounded memory.
//! - [`audio`]: the raw audio format, OpusHead and WAV.
//! - [`sync`]: the beep-and-flash signal that makes A/V offset measurable.

pub mod audio;
pub mod clock;
mod error;
pub mod histogram;
pub mod stamp;
pub mod sync;
pub mod y4m;
pub mod yuv;

pub use error::Error;
