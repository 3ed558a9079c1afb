use std::time::Duration;

/// A boxed cause from a library whose error types this crate does not name one by one.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// Everything that can stop publishing. Display gives this layer's words; the cause follows
/// through `source()`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting that cannot work, with what to do instead.
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Net(#[from] lantern_net::Error),
    #[error(transparent)]
    Media(#[from] lantern_media::Error),
    #[error("{path}")]
    Open {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}")]
    Format {
        what: String,
        #[source]
        source: lantern_proto::Error,
    },
    /// A source of another crate's failed (a compositor's capture, say).
    #[error("video source")]
    Source(#[source] Cause),
    #[error("{what}: no frame for {timeout:?} (has the producer stalled?)")]
    Stalled { what: String, timeout: Duration },
    #[error("audio source: {0}")]
    Audio(String),
    #[error("audio source: {what}")]
    AudioCapture {
        what: String,
        #[source]
        source: lantern_media::Error,
    },
    #[error("encoder: {what}")]
    Encoder {
        what: String,
        #[source]
        source: ffmpeg_next::Error,
    },
    /// A frame the encoder was not made for: a bug of ours, not a setting.
    #[error("encoder: a {got} frame for a {want} encoder")]
    FrameMismatch { got: String, want: String },
    /// SVT-AV1 refused a call; its error code (EbErrorType) is all it says.
    #[error("SVT-AV1 {what} failed (error {code:#x})")]
    SvtAv1 { what: String, code: i32 },
    #[error("opus {what}")]
    Opus {
        what: &'static str,
        #[source]
        source: opus::Error,
    },
    #[error("publish: {what}")]
    Publish {
        what: String,
        #[source]
        source: Cause,
    },
    /// A thread of ours ended in a panic.
    #[error("the {0} thread failed")]
    Thread(&'static str),
    /// A thread could not be started (the system's limit on threads, memory).
    #[error("cannot start the {what} thread")]
    Spawn {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// A source asked to stop in the middle of a read.
    #[error("{0}: stopped while reading")]
    Stopped(String),
    /// libavformat's RTP muxer did what it should not (in its words, or ours).
    #[error("RTP: {0}")]
    Rtp(String),
}

impl Error {
    /// A publishing error from any MoQ layer, keeping it as the cause.
    pub(crate) fn publish(what: impl Into<String>, source: impl Into<Cause>) -> Self {
        Self::Publish {
            what: what.into(),
            source: source.into(),
        }
    }
}
