//! What a publishing run is told besides its sources: where the broadcast goes and how it is
//! encoded, paced, copied and recorded.

use lantern_net::ConnectArgs;

use crate::{audio, encode, rate, rtp};

/// Where the broadcast goes.
#[derive(Clone)]
pub enum Target {
    /// Publish to a relay.
    Relay(ConnectArgs),
    /// Serve subscribers directly.
    Listen(lantern_net::listen::Serve),
    /// Publish into this origin, in this process (a caller serving it itself, or a test).
    Origin(moq_net::origin::Producer),
    /// No MoQ at all: only the RTP copy ([`Options::rtp`]).
    RtpOnly,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Relay(args) => f.debug_tuple("Relay").field(&args.url).finish(),
            Self::Listen(serve) => f.debug_tuple("Listen").field(&serve.addr).finish(),
            Self::Origin(_) => f.write_str("Origin"),
            Self::RtpOnly => f.write_str("RtpOnly"),
        }
    }
}

/// Everything a publishing run needs besides its sources.
#[derive(Clone, Debug)]
pub struct Options {
    /// Broadcast name (under the URL's path on a relay).
    pub name: String,
    pub target: Target,
    /// Encoder flags; unset bitrate and GOP follow the source's format.
    pub video: encode::VideoArgs,
    /// Fixed or adaptive bitrate, and its bounds.
    pub rate: rate::RateArgs,
    /// Where the viewers' feedback that counts is put (see [`rate`]); `None`: no viewer's
    /// feedback, the rate follows only the connection's own estimate.
    pub feedback: Option<rate::Feedback>,
    /// Stop after this many frames.
    pub frames: Option<u64>,
    /// Draw the frame stamp into pictures that carry none (test content; `--stamp`).
    pub stamp: bool,
    pub audio: audio::AudioSettings,
    /// Where what peers publish back on this run's connection goes (the viewers' input,
    /// which a host reads): a relay connection also subscribes into it, a direct server
    /// takes peers' publishes into it. Scope it (see `lantern_net::input::viewers_scope`):
    /// only what it allows is taken. `None`: publish only.
    pub inbound: Option<Inbound>,
    /// Also send the encoded frames as RTP here (video on its port, sound two above); the
    /// SDP that describes them comes as [`crate::Event::Rtp`] before the first frame.
    pub rtp: Option<rtp::RtpUrl>,
    /// Record the broadcast as published into this fragmented MP4 file (see
    /// `lantern_net::record`).
    pub record: Option<std::path::PathBuf>,
}

/// Where peers' publishes go (see [`Options::inbound`]).
#[derive(Clone)]
pub struct Inbound(pub moq_net::origin::Producer);

impl std::fmt::Debug for Inbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Inbound")
    }
}
