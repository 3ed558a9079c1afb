/// Every way a Lantern format can be malformed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("y4m: {0}")]
    Y4m(String),
    #[error("y4m: unsupported colorspace {0:?} (only 4:2:0 8-bit is supported)")]
    Y4mColorspace(String),
    #[error("frame size {width}x{height} is invalid: {why}")]
    FrameSize {
        width: u32,
        height: u32,
        why: &'static str,
    },
    #[error("H.264: {0}")]
    H264(&'static str),
    #[error("OpusHead: {0}")]
    OpusHead(&'static str),
    /// A viewer's input message that is malformed or out of range.
    #[error("input: {0}")]
    Input(String),
    /// A viewer's feedback report that is malformed.
    #[error("feedback: {0}")]
    Feedback(String),
    #[error("i/o")]
    Io(#[from] std::io::Error),
}
