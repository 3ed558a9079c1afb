//! What a subscribing run is told: where to connect, what to play, where it goes.

use std::time::Duration;

use lantern_net::ConnectArgs;

use crate::{Error, Join, decode, input, window};

/// Everything a subscribing run needs.
#[derive(Clone, Debug)]
pub struct Config {
    pub connect: ConnectArgs,
    pub name: String,
    /// Where decoded frames go: a y4m path, `-` for stdout, or nowhere.
    pub output: Option<String>,
    /// Stop after this many decoded frames.
    pub frames: Option<u64>,
    /// Send a stats line every second.
    pub stats: bool,
    pub join: Join,
    /// Write one CSV line per shown frame (frame, capture time, shown time) here.
    pub latency_log: Option<std::path::PathBuf>,
    /// Where decoded sound goes: a WAV path, `-` for raw PCM on stdout, or nowhere.
    pub audio_out: Option<String>,
    /// Hold each picture until its sound is out (lip sync), when there is sound.
    pub av_sync: bool,
    /// How long to wait for the broadcast, and for each next frame.
    pub timeout: Duration,
    /// Report this viewer's path to the publisher (delay, skipped frames, keyframe requests)
    /// even when it sends no input; a player (with input) always reports.
    pub feedback: bool,
    /// Send input to the host: from `--input-script`, else from the window (with the grant).
    pub input: Option<input::InputConfig>,
    /// Show the stream in a window (and take the player's input there).
    pub window: Option<window::WindowConfig>,
    /// Play the RTP session this SDP describes instead of a MoQ broadcast.
    pub sdp: Option<std::path::PathBuf>,
    /// What this viewer takes from the publisher (picture size, rate), checked before
    /// decoding.
    pub limits: decode::Limits,
    /// Record what arrives, without re-encoding, into this fragmented MP4 file.
    pub record: Option<std::path::PathBuf>,
}

impl Config {
    /// Settings that cannot work together, refused before anything starts.
    pub(crate) fn check(&self) -> Result<(), Error> {
        if self.output.as_deref() == Some("-") && self.audio_out.as_deref() == Some("-") {
            return Err(Error::Config(
                "-o - and --audio-out - cannot both use stdout".into(),
            ));
        }
        if self.sdp.is_some() && self.input.is_some() {
            return Err(Error::Config(
                "input goes back over MoQ only: not with --sdp".into(),
            ));
        }
        if self.sdp.is_some() && self.record.is_some() {
            return Err(Error::Config(
                "--record records MoQ broadcasts only: not with --sdp".into(),
            ));
        }
        Ok(())
    }
}
