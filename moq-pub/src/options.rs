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
    /// At a direct server: the grants whose holders are players, never held back by its
    /// bound on spectators (see `lantern_net::listen::Serve::max_spectators`). `None`: every
    /// viewer is a spectator.
    pub players: Option<std::sync::Arc<lantern_net::grant::Grants>>,
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

/// Where and how to publish, as every publishing binary takes it on its command line
/// (`moq-pub`, `host-daemon run`): the relay or the direct server, the RTP copy, the
/// recording, and the encoders' and the rate control's settings.
#[derive(clap::Args, Clone, Debug)]
pub struct PublishArgs {
    #[command(flatten)]
    pub listen: lantern_net::listen::ListenArgs,

    #[command(flatten)]
    pub connect: ConnectArgs,

    /// Also send the stream as plain RTP (H.264 per RFC 6184, Opus per RFC 7587) to this
    /// address: video to PORT, sound to PORT+2, RTCP on the odd port above each (PORT must be
    /// even). Without --url or --listen, RTP is all that is sent.
    #[arg(long, value_name = "rtp://HOST:PORT")]
    pub rtp: Option<rtp::RtpUrl>,

    /// Write the SDP that describes the RTP stream here (`-` for stdout) for receivers to
    /// open (ffplay, VLC, GStreamer's sdpdemux, moq-sub --sdp) [default: on stderr].
    #[arg(long, value_name = "FILE", requires = "rtp")]
    pub sdp: Option<rtp::SdpOut>,

    /// Record the stream into this MP4 file as it is sent: video (H.264 or AV1) and Opus
    /// sound as encoded, never re-encoded, in fragmented MP4 (a fragment at least every
    /// 200 ms), so the file plays while it grows and survives a kill. A full disk stops the
    /// recording with one error line, not the stream.
    #[arg(long, value_name = "FILE.mp4")]
    pub record: Option<std::path::PathBuf>,

    #[command(flatten)]
    pub video: encode::VideoArgs,

    #[command(flatten)]
    pub rate: rate::RateArgs,

    #[command(flatten)]
    pub opus: audio::AudioArgs,
}

impl PublishArgs {
    /// Where the broadcast goes: the direct server with --listen; nowhere but RTP with only
    /// --rtp; else the relay(s) of --url.
    pub fn target(&self) -> Target {
        match self.listen.serve() {
            Some(serve) => Target::Listen(serve),
            None if self.connect.url.is_empty() && self.rtp.is_some() => Target::RtpOnly,
            None => Target::Relay(self.connect.clone()),
        }
    }
}
