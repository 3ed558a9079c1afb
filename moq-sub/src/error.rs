/// A boxed cause from a library whose error types this crate does not name one by one.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// Everything that can stop moq-sub. Display gives this layer's words; the cause follows
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
    #[error("broadcast {name:?}: {why}")]
    Broadcast {
        name: String,
        why: String,
        #[source]
        source: Option<Cause>,
    },
    #[error("unsupported video codec {0:?} in the catalog (moq-sub decodes H.264 and AV1)")]
    UnsupportedCodec(String),
    #[error("decoder: {what}")]
    Decoder {
        what: String,
        #[source]
        source: Option<Cause>,
    },
    #[error("output {what}")]
    Output {
        what: String,
        #[source]
        source: Option<Cause>,
    },
    /// The reader of the output (a viewer on a pipe) closed it: a normal way to stop.
    #[error("the output was closed by its reader")]
    OutputClosed,
    /// The publisher sends more than this viewer takes (`--max-size`, `--max-kbps`).
    #[error("refusing the stream: {0}")]
    Refused(String),
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
    /// A file a flag names (`--input-script`, `--sdp`) that cannot be read or makes no sense.
    #[error("{flag} {}", path.display())]
    File {
        flag: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: Cause,
    },
    /// Input events the format refuses (nothing of them is sent).
    #[error("input")]
    Input(#[source] lantern_proto::Error),
    /// `--input-script` found no host taking this viewer's input in time.
    #[error(
        "--input-script: no host took this viewer's input within {timeout:?} (does the session take input?)"
    )]
    InputUnheard { timeout: std::time::Duration },
    /// The window's thread did not say it was open in time.
    #[error("the window did not open within {timeout:?}")]
    WindowTimeout { timeout: std::time::Duration },
    /// The catalog's audio has a channel count moq-sub does not play.
    #[error("Opus with {0} channels is not supported (1 or 2)")]
    AudioChannels(u32),
    /// The audio track came back (after a restart) with another channel count.
    #[error("the audio came back with {now} channels instead of {before}")]
    AudioChanged { before: u32, now: u32 },
    #[error("{}: cannot receive on UDP port {port}: is another receiver using it?", sdp.display())]
    RtpPort {
        sdp: std::path::PathBuf,
        port: u16,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn file(
        flag: &'static str,
        path: &std::path::Path,
        source: impl Into<Cause>,
    ) -> Self {
        Self::File {
            flag,
            path: path.to_path_buf(),
            source: source.into(),
        }
    }

    pub(crate) fn broadcast(name: &str, why: impl Into<String>, source: Option<Cause>) -> Self {
        Self::Broadcast {
            name: name.to_string(),
            why: why.into(),
            source,
        }
    }

    pub(crate) fn decoder(what: impl Into<String>, source: impl Into<Cause>) -> Self {
        Self::Decoder {
            what: what.into(),
            source: Some(source.into()),
        }
    }

    pub(crate) fn output(what: impl Into<String>, source: impl Into<Cause>) -> Self {
        Self::Output {
            what: what.into(),
            source: Some(source.into()),
        }
    }
}
