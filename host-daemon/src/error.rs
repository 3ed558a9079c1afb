use std::time::Duration;

/// Everything that can stop a session. Display gives this layer's words; the cause follows
/// through `source()`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting that cannot work, with what to do instead.
    #[error("{0}")]
    Config(String),
    /// A program the session needs is not installed.
    #[error("{program} not found: {hint}")]
    Missing { program: String, hint: String },
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A child process (compositor, app, helper) that failed or ended too early.
    #[error("{0}")]
    Child(String),
    #[error("{what}: not within {timeout:?}")]
    Timeout { what: String, timeout: Duration },
    #[error("the compositor: {0}")]
    Compositor(String),
    /// Lantern's own compositor (`host-daemon compositor`) failed.
    #[error("the lantern compositor")]
    Lantern(#[from] lantern_compositor::Error),
    #[error("wayland: {what}")]
    Wayland {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("capture: {0}")]
    Capture(String),
    /// The session's picture capture process ended (its log says why).
    #[error("capture: the session's picture capture ended")]
    CaptureEnded,
    #[error("capture: PipeWire node {node:?}")]
    Node {
        node: String,
        #[source]
        source: lantern_media::Error,
    },
    #[error("sound: {0}")]
    Sound(String),
    /// The control API: a call that failed, or an answer that makes no sense.
    #[error("control: {0}")]
    Control(String),
    /// The control API's exchange (`ctl`'s side) failed at `what`.
    #[error("control: {what}")]
    ControlCall {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A captured buffer that does not hold the picture it is said to.
    #[error("capture: {what}")]
    Buffer {
        what: String,
        #[source]
        source: lantern_proto::Error,
    },
    #[error("capture: libgbm.so.1 cannot be loaded; install libgbm1 for DMA-BUF capture")]
    Gbm(#[source] libloading::Error),
    /// A task or blocking thread of ours that panicked (or was cancelled under it).
    #[error("the {what} failed")]
    Task {
        what: &'static str,
        #[source]
        source: tokio::task::JoinError,
    },
    #[error(transparent)]
    Media(#[from] lantern_media::Error),
    #[error(transparent)]
    Net(#[from] lantern_net::Error),
    #[error(transparent)]
    Publish(#[from] moq_pub::Error),
}

impl Error {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }

    pub(crate) fn control(
        what: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::ControlCall {
            what: what.into(),
            source: source.into(),
        }
    }

    pub(crate) fn node(node: &str, source: lantern_media::Error) -> Self {
        Self::Node {
            node: node.to_string(),
            source,
        }
    }

    pub(crate) fn wayland(
        what: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Wayland {
            what: what.into(),
            source: source.into(),
        }
    }
}

/// Whether `err` is, at its root, that the session's picture capture process ended.
pub(crate) fn capture_ended(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(err);
    while let Some(this) = cause {
        if matches!(this.downcast_ref::<Error>(), Some(Error::CaptureEnded)) {
            return true;
        }
        cause = this.source();
    }
    false
}
