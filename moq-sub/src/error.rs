/// Everything that can stop moq-sub.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Net(#[from] moq_pub::Error),
    #[error("broadcast {name:?}: {why}")]
    Broadcast { name: String, why: String },
    #[error("unsupported video codec {0:?} in the catalog (moq-sub decodes H.264)")]
    UnsupportedCodec(String),
    #[error("decoder: {0}")]
    Decoder(String),
    #[error("output: {0}")]
    Output(String),
}
