//! host-daemon: runs a game or desktop app inside a headless compositor of its own, captures
//! its picture (wlr-screencopy) and its sound (a private PipeWire whose null sink is the
//! app's speaker), and publishes both through moq-pub's library.
//!
//! [`session::run`] is one session, from start to the last process stopped. The library
//! prints nothing and installs no signal handler; the binary does that.

pub mod account;
pub mod capture;
pub mod cgroup;
pub mod compositor;
mod error;
pub mod files;
pub mod input;
pub mod process;
pub mod serve;
pub mod session;
pub mod sound;
pub mod wl;

pub use error::Error;
