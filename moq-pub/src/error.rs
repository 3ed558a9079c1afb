/// Everything that can stop moq-pub.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{0}")]
    Config(String),
    #[error("source: {0}")]
    Source(String),
    #[error("encoder: {0}")]
    Encoder(String),
    #[error("publish: {0}")]
    Publish(String),
    #[error("cannot connect to {0}")]
    Connect(String),
    #[error("listen: {0}")]
    Listen(String),
    #[error("moq: {0}")]
    Moq(#[from] moq_tokio::Error),
}
