//! How a connection is dialed and trusted: the relay URL, TLS, tokens, protocol versions and
//! the timeout. Every Lantern binary flattens [`ConnectArgs`] into its flags, so all of them
//! take identical ones.

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use crate::Error;

/// Flags for dialing a relay (or a `moq-pub --listen` server).
#[derive(clap::Args, Clone, Debug)]
pub struct ConnectArgs {
    /// The relay to connect to. `https://HOST:PORT/PATH` (WebTransport, TLS verified against
    /// the system roots), `http://HOST:PORT/PATH` (fetches the server's self-signed certificate
    /// fingerprint from /certificate.sha256 first: for local relays only), or `moqt://` /
    /// `moql://` (raw QUIC). The PATH is the relay's auth scope, e.g. `/anon`.
    #[arg(long, env = "LANTERN_URL")]
    pub url: Option<Url>,

    /// A JWT for relays that require one (sent as `?jwt=`).
    #[arg(long, env = "LANTERN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// Trust a server whose certificate has this SHA-256 fingerprint (hex), as printed by
    /// `moq-relay` and `moq-pub --listen`. Repeat for several.
    #[arg(long, value_name = "HEX")]
    pub tls_fingerprint: Vec<String>,

    /// Also trust certificates signed by this CA (PEM). Repeat for several.
    #[arg(long, value_name = "PEM")]
    pub tls_root: Vec<PathBuf>,

    /// Skip TLS verification entirely. Anyone on the path can then read and alter the stream:
    /// only for debugging.
    #[arg(long)]
    pub tls_insecure: bool,

    /// Offer only this MoQ protocol version (e.g. `moq-lite-03`, `moq-transport-14`). Repeat
    /// for several; by default every supported version is offered and the server picks.
    #[arg(long, value_name = "VERSION")]
    pub moq_version: Vec<String>,

    /// Give up if the first connection (or the broadcast) is not up within this many seconds.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    pub timeout: f64,

    /// Declare the peer gone after this many seconds without hearing from it (the QUIC idle
    /// timeout; keep-alives go out at a quarter of it, so a live but quiet path never trips
    /// it). Short, because a game stream that has been silent this long is already broken.
    #[arg(long, default_value_t = 1.2, value_name = "SECONDS")]
    pub idle_timeout: f64,
}

/// The flags' own defaults, for callers that build the settings in code.
impl Default for ConnectArgs {
    fn default() -> Self {
        Self {
            url: None,
            token: None,
            tls_fingerprint: Vec::new(),
            tls_root: Vec::new(),
            tls_insecure: false,
            moq_version: Vec::new(),
            timeout: 10.0,
            idle_timeout: 1.2,
        }
    }
}

impl ConnectArgs {
    pub fn timeout(&self) -> Result<Duration, Error> {
        seconds("--timeout", self.timeout)
    }

    /// The URL with the token attached, or an error when none was given.
    pub fn url(&self) -> Result<Url, Error> {
        let mut url = self.url.clone().ok_or_else(|| {
            Error::Config("--url is required (e.g. --url https://relay.example:4443/anon)".into())
        })?;
        if !matches!(url.scheme(), "https" | "http" | "moqt" | "moql") {
            return Err(Error::Config(format!(
                "--url {url}: unsupported scheme {:?} (use https, http, moqt or moql)",
                url.scheme()
            )));
        }
        if let Some(token) = &self.token {
            url.query_pairs_mut().append_pair("jwt", token);
        }
        Ok(url)
    }

    fn versions(&self) -> Result<Vec<moq_net::Version>, Error> {
        self.moq_version
            .iter()
            .map(|v| {
                v.parse()
                    .map_err(|e| Error::Config(format!("--moq-version {v}: {e}")))
            })
            .collect()
    }

    /// Build a client for these settings (the socket is bound, nothing is dialed yet).
    pub fn client(&self) -> Result<(moq_tokio::Client, Url), Error> {
        let url = self.url()?;
        let mut config = moq_tokio::connect::Config::default();
        config.version = self.versions()?;
        config.timeout = self.timeout()?;
        config.tls.fingerprint = self.tls_fingerprint.clone();
        config.tls.root = self.tls_root.clone();
        if self.tls_insecure {
            tracing::warn!(
                "TLS verification is off (--tls-insecure): the connection is not authenticated"
            );
            config.tls.insecure = Some(true);
        }
        let mut quic = moq_tokio::quic::Config::default();
        quic.idle_timeout = seconds("--idle-timeout", self.idle_timeout)?;
        quic.keep_alive = quic.idle_timeout / 4;
        let client = config.init(quic).map_err(Error::Client)?;
        Ok((client, url))
    }
}

/// A flag's seconds as a duration, refused unless positive.
fn seconds(flag: &str, value: f64) -> Result<Duration, Error> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|t| !t.is_zero())
        .ok_or_else(|| {
            Error::Config(format!(
                "{flag} {value} must be a positive number of seconds"
            ))
        })
}

/// Wait for a connection's first session, bounded by `timeout`.
pub async fn established(
    connection: moq_tokio::Connection,
    url: &Url,
    timeout: Duration,
) -> Result<moq_tokio::Connection, Error> {
    let shown = redacted(url);
    match tokio::time::timeout(timeout, connection.established()).await {
        Ok(Ok(connection)) => {
            tracing::info!(url = %shown, "connected");
            Ok(connection)
        }
        Ok(Err(source)) => Err(Error::Connect { url: shown, source }),
        Err(_) => Err(Error::ConnectTimeout {
            url: shown,
            timeout,
        }),
    }
}

/// The URL without its query, so tokens never reach a log line.
pub fn redacted(url: &Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.to_string()
}
