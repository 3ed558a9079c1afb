/// Everything that can go wrong in the media glue.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("cannot initialise FFmpeg")]
    FfmpegInit(#[source] ffmpeg_next::Error),
    /// `remote` says where it looked: a socket's path, or `XDG_RUNTIME_DIR=…`.
    #[error("cannot connect to the PipeWire daemon; is it running, at {remote}?")]
    PipeWireConnect {
        remote: String,
        #[source]
        source: pipewire::Error,
    },
    #[error("PipeWire {what}")]
    PipeWire {
        what: &'static str,
        #[source]
        source: pipewire::Error,
    },
    /// A stream PipeWire put in its error state, in PipeWire's words (it gives no cause).
    #[error("the PipeWire stream failed: {0}")]
    StreamFailed(String),
    #[error("picture layout")]
    Picture(#[source] lantern_proto::Error),
    #[error("pixel conversion: {0}")]
    Convert(String),
    #[error("PipeWire format: {0}")]
    PipeWireFormat(String),
    /// The descriptor a ring's reader is woken through (out of file descriptors?).
    #[error("a ring's wake-up eventfd")]
    RingWaker(#[source] std::io::Error),
}
