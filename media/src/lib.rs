//! lantern-media: the runtime glue for media that the publisher and the viewer share, and
//! nothing about MoQ.
//!
//! - [`ffmpeg`]: initialising FFmpeg once, with its logging kept to errors.
//! - [`convert`]: the one pixel conversion between a capture's buffer and the encoder's.
//! - [`latest`]: the newest-wins hand-off between a thread that makes pictures and one
//!   that uses them.
//! - [`pipewire`]: connecting to the daemon and running a stream in Lantern's one raw audio
//!   format on a PipeWire loop.
//! - [`ring`]: the lock-free sample ring between PipeWire's real-time callbacks and the
//!   threads that encode or decode.

pub mod convert;
mod error;
pub mod ffmpeg;
pub mod latest;
pub mod pipewire;
pub mod ring;

pub use error::Error;
