/// Everything that can go wrong in the media glue.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("cannot initialise FFmpeg")]
    FfmpegInit(#[source] ffmpeg_next::Error),
    #[error(
        "cannot connect to the PipeWire daemon; is it running, with XDG_RUNTIME_DIR={runtime_dir}?"
    )]
    PipeWireConnect {
        runtime_dir: String,
        #[source]
        source: pipewire::Error,
    },
    #[error("PipeWire {what}")]
    PipeWire {
        what: &'static str,
        #[source]
        source: pipewire::Error,
    },
    #[error("picture layout")]
    Picture(#[source] lantern_proto::Error),
    #[error("pixel conversion: {0}")]
    Convert(String),
    #[error("PipeWire format: {0}")]
    PipeWireFormat(String),
}
