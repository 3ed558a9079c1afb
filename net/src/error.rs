use std::net::SocketAddr;
use std::time::Duration;

/// Everything that can go wrong setting up a MoQ session. Display gives this layer's words;
/// the cause follows through `source()` (the binaries print the chain: `lantern_cli::exit`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A flag that cannot work, with what to do instead.
    #[error("{0}")]
    Config(String),
    #[error("cannot set up the MoQ client")]
    Client(#[source] moq_tokio::Error),
    #[error("cannot connect to {url}")]
    Connect {
        url: String,
        #[source]
        source: moq_tokio::Error,
    },
    #[error(
        "cannot connect to {url}: no session within {timeout:?} (is the relay running and the URL right? where UDP is blocked, --websocket-fallback tries TCP)"
    )]
    ConnectTimeout { url: String, timeout: Duration },
    #[error(
        "{url} refused this client: not authorized (is --token expired, signed by another key, or not for this path?)"
    )]
    Refused {
        url: String,
        #[source]
        source: moq_tokio::Error,
    },
    #[error("cannot listen on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: moq_tokio::Error,
    },
    #[error("the direct server on {addr} was given no certificate")]
    NoCertificate { addr: SocketAddr },
    #[error("cannot serve the certificate fingerprint on tcp {addr}")]
    ListenHttp {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the direct server on {addr} stopped")]
    ServerStopped {
        addr: SocketAddr,
        #[source]
        source: Option<moq_tokio::Error>,
    },
    #[error("input channel: {what}")]
    Input {
        what: String,
        #[source]
        source: moq_net::Error,
    },
    #[error("input channel: {what} did not open within {timeout:?}")]
    InputTimeout { what: String, timeout: Duration },
    #[error("cannot sign an input grant")]
    Grant(#[source] jsonwebtoken::errors::Error),
    #[error("cannot write the recording {}", path.display())]
    Record {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the recorder's task failed")]
    RecorderFailed(#[source] tokio::task::JoinError),
    /// A file a flag names that cannot be read or used (`--tls-cert`, `--web`).
    #[error("{flag} {}", path.display())]
    File {
        flag: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("--moq-version {version}")]
    MoqVersion {
        version: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("session name {session:?} cannot name viewer paths")]
    ViewerPaths {
        session: String,
        #[source]
        source: moq_net::InvalidPattern,
    },
    #[error("cannot subscribe to the catalog track")]
    CatalogTrack(#[source] moq_net::Error),
    #[error("cannot read the catalog track")]
    CatalogRead(#[source] moq_json::Error),
    /// A string hang's parsers would choke on (its first 64 characters).
    #[error("the catalog's codec {0:?} is not a codec string")]
    CatalogCodec(String),
    #[error("not a hang catalog")]
    CatalogJson(#[source] serde_json::Error),
    #[error("the catalog's renditions")]
    CatalogRenditions(#[source] hang::Error),
    #[error("{live} grants of this session are live: revoke some, or wait for them to expire")]
    GrantLimit { live: usize },
}

impl Error {
    pub(crate) fn file(
        flag: &'static str,
        path: &std::path::Path,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::File {
            flag,
            path: path.to_path_buf(),
            source: source.into(),
        }
    }
}
