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
    /// the system roots), `http://HOST:PORT/PATH` (a server with a self-signed certificate:
    /// pinned by --tls-fingerprint, else its fingerprint is fetched from /certificate.sha256
    /// over plain HTTP, which is trusted on loopback only), or `moqt://` / `moql://` (raw
    /// QUIC). The PATH is the relay's auth scope, e.g. `/anon`. Repeat (or separate with
    /// commas) for fallbacks, e.g. the other relays of a cluster: the first that answers is
    /// used, and when it dies the next (or, later, the first again) without a restart.
    #[arg(long, env = "LANTERN_URL", value_delimiter = ',')]
    pub url: Vec<Url>,

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

    /// Trust a certificate fingerprint fetched over plain HTTP from a server that is not on
    /// this machine (anyone on the path can replace it): prefer --tls-fingerprint.
    #[arg(long)]
    pub trust_http_fingerprint: bool,

    /// Skip TLS verification entirely. Anyone on the path can then read and alter the stream:
    /// only for debugging.
    #[arg(long)]
    pub tls_insecure: bool,

    /// Offer only this MoQ protocol version (e.g. `moq-lite-03`, `moq-transport-14`). Repeat
    /// for several; by default every supported version is offered and the server picks.
    #[arg(long, value_name = "VERSION")]
    pub moq_version: Vec<String>,

    /// Where QUIC (UDP) cannot get through, fall back to WebSocket over TCP when QUIC has not
    /// connected within a second: for the picture and sound only. Through moq-relay no
    /// datagram crosses it (a player's input, a viewer's reports on the path), and the stream
    /// waits behind every lost packet. Off by default, so a slow QUIC handshake never puts a
    /// player on it. Only with `https://` relays (to an `http://` one the fallback is plain
    /// `ws://`, in the clear), or on this machine.
    #[arg(long)]
    pub websocket_fallback: bool,

    /// Give up if the first connection (or the broadcast) is not up within this many seconds.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    pub timeout: f64,

    /// Declare the path dead after this many seconds without hearing from the peer (the QUIC
    /// idle timeout; keep-alives go out at a quarter of it, so a live but quiet path never
    /// trips it), and redial. Default: 6 with one relay, which rides out a cellular fade or
    /// dead zone (a connection that lives through it resumes within a round trip; a redial
    /// needs a handshake through a path that barely carries anything) and still finds a relay
    /// restarted within 5 s about a second after it is back; 1.2 with fallbacks, where moving
    /// to the next relay is the quicker cure.
    #[arg(long, value_name = "SECONDS")]
    pub idle_timeout: Option<f64>,

    /// Keep redialing (and resubscribing, or republishing) for this many seconds when the
    /// connection drops: a dead path, a relay restarting. 0 keeps at it for as long as it
    /// takes. Default: forever for publishers, hosts and a viewer's window; 30 for a viewer
    /// that writes to a file or pipe.
    #[arg(long, value_name = "SECONDS")]
    pub give_up: Option<f64>,

    /// The player's grant token (never its secret), presented to a direct server as
    /// `?grant=` so that it is taken as a player and not held back with the spectators (see
    /// [`crate::listen::GRANT_PARAM`]). Set from the player's grant, not a flag of its own;
    /// a relay ignores it.
    #[arg(skip)]
    pub grant: Option<String>,
}

/// The default idle timeouts, s. Measured on mahimahi's recorded traces: on Verizon's LTE
/// trace (a 1.45 s fade) redialing at 1.2 s added about a second to the fade (frame delay max
/// 2.6 s, p99 1.2 s) where a connection that lived through it lost nothing more (1.5 s,
/// 0.96 s). T-Mobile's UMTS trace has 45 s near zero with gaps of 3.0 to 5.75 s without a
/// single delivery: a viewer that redialed there (3 s; 5 s in one run of two) was away for
/// 11-14 s and its frame delay p95 was 12-14 s; one that lived through it (6 s) 6.1 s. (A
/// bloated queue hid this before the rate control kept queues short: QUIC waits at least
/// three probe timeouts, which grow with the round trip.) A relay that restarts (its
/// connections lost with it) is noticed only this long after it went.
const IDLE_ALONE: f64 = 6.0;
const IDLE_WITH_FALLBACK: f64 = 1.2;

/// With `--websocket-fallback`, QUIC's head start: a handshake across an ocean and back
/// (and a certificate fetched over HTTP first) still wins it. moq-tokio gives none to a
/// server where WebSocket won once in this process.
const WEBSOCKET_AFTER: Duration = Duration::from_secs(1);

/// The first redial after a drop comes this soon; the next ones back off (×2) to
/// [`REDIAL_MAX`], so a relay that comes back is found within about a second.
const REDIAL_FIRST: Duration = Duration::from_millis(200);
const REDIAL_MAX: Duration = Duration::from_secs(1);
/// Each dial's bound: a handshake that long is a dead peer, and a fresh dial (new Initial
/// packets) finds a relay that came back sooner than waiting out QUIC's retransmission
/// backoff would. At 2 s no dial finished across a 1.2 s round trip (a certificate fetched,
/// QUIC's handshake and moq's SETUP: never connected, where 5 s connects); relay restarts of
/// 3, 5 and 8 s were found 0.19-0.74 s after the return at 2 s, 0.42-0.93 s at 5 s (two runs
/// each).
const DIAL_MAX: Duration = Duration::from_secs(5);

/// The flags' own defaults, for callers that build the settings in code.
impl Default for ConnectArgs {
    fn default() -> Self {
        Self {
            url: Vec::new(),
            token: None,
            tls_fingerprint: Vec::new(),
            tls_root: Vec::new(),
            trust_http_fingerprint: false,
            tls_insecure: false,
            moq_version: Vec::new(),
            websocket_fallback: false,
            timeout: 10.0,
            idle_timeout: None,
            give_up: None,
            grant: None,
        }
    }
}

impl ConnectArgs {
    pub fn timeout(&self) -> Result<Duration, Error> {
        seconds("--timeout", self.timeout)
    }

    /// `--idle-timeout`, or its default for `relays`: a connection lives through a fade
    /// shorter than [`IDLE_ALONE`] when there is nowhere else to go, and leaves after
    /// [`IDLE_WITH_FALLBACK`] when another relay may answer.
    fn idle_timeout(&self, relays: &Relays) -> f64 {
        self.idle_timeout.unwrap_or(match relays.0.len() {
            1 => IDLE_ALONE,
            _ => IDLE_WITH_FALLBACK,
        })
    }

    /// How long a connection to `relays` may hear nothing while it sends before a fresh dial
    /// looks for the relay again (see [`Redial`]): [`lantern_proto::deaf::deaf_after_us`] of
    /// its idle timeout.
    pub fn deaf_after(&self, relays: &Relays) -> Result<Duration, Error> {
        let idle = seconds("--idle-timeout", self.idle_timeout(relays))?;
        let after = lantern_proto::deaf::deaf_after_us(idle.as_micros() as u64);
        Ok(Duration::from_micros(after))
    }

    /// How long to keep redialing after a drop (`--give-up`), `default` when not given;
    /// None: for as long as it takes.
    pub fn give_up(&self, default: Option<Duration>) -> Result<Option<Duration>, Error> {
        match self.give_up {
            None => Ok(default),
            Some(0.0) => Ok(None),
            Some(value) => seconds("--give-up", value).map(Some),
        }
    }

    /// The relays to dial, in order, with the token attached; an error when none was given.
    pub fn relays(&self) -> Result<Relays, Error> {
        if self.url.is_empty() {
            return Err(Error::Config(
                "--url is required (e.g. --url https://relay.example:4443/anon)".into(),
            ));
        }
        if self.url.len() > MAX_RELAYS {
            return Err(Error::Config(format!(
                "{} relays given with --url: at most {MAX_RELAYS}",
                self.url.len()
            )));
        }
        self.url
            .iter()
            .map(|url| self.checked(url))
            .collect::<Result<_, _>>()
            .map(Relays)
    }

    /// One relay's URL, checked, with the token attached.
    fn checked(&self, url: &Url) -> Result<Url, Error> {
        let mut url = url.clone();
        if !matches!(url.scheme(), "https" | "http" | "moqt" | "moql") {
            return Err(Error::Config(format!(
                "--url {}: unsupported scheme {:?} (use https, http, moqt or moql)",
                redacted(&url),
                url.scheme()
            )));
        }
        if url.scheme() == "http"
            && self.tls_fingerprint.is_empty()
            && !self.tls_insecure
            && !self.trust_http_fingerprint
            && !is_loopback(&url)
        {
            return Err(Error::Config(format!(
                "--url {}: the server's certificate fingerprint would come over plain HTTP, which \
                 anyone on the path can replace; give --tls-fingerprint HEX (the host prints it), \
                 use https://, or accept the risk with --trust-http-fingerprint",
                redacted(&url)
            )));
        }
        if url.scheme() == "http" && self.websocket_fallback && !is_loopback(&url) {
            return Err(Error::Config(format!(
                "--url {}: --websocket-fallback would send the stream (and its token) over plain \
                 ws://, in the clear; use https://",
                redacted(&url)
            )));
        }
        if let Some(token) = &self.token {
            url.query_pairs_mut().append_pair("jwt", token);
        }
        if let Some(grant) = &self.grant {
            url.query_pairs_mut()
                .append_pair(crate::listen::GRANT_PARAM, grant);
        }
        Ok(url)
    }

    fn versions(&self) -> Result<Vec<moq_net::Version>, Error> {
        self.moq_version
            .iter()
            .map(|v| {
                v.parse().map_err(|e: String| Error::MoqVersion {
                    version: v.clone(),
                    source: e.into(),
                })
            })
            .collect()
    }

    /// Build a client for these settings (the socket is bound, nothing is dialed yet). Its
    /// connections redial after a drop until `give_up` (None: forever); the caller bounds
    /// the wait for the first one (see [`established`]).
    pub fn client(&self, give_up: Option<Duration>) -> Result<(moq_tokio::Client, Relays), Error> {
        let relays = self.relays()?;
        let mut config = moq_tokio::connect::Config::default();
        config.version = self.versions()?;
        config.timeout = self.timeout()?.min(DIAL_MAX);
        config.backoff.initial = REDIAL_FIRST;
        config.backoff.max = REDIAL_MAX;
        config.backoff.multiplier = 2;
        config.backoff.timeout = give_up.unwrap_or(Duration::ZERO);
        config.websocket.enabled = Some(self.websocket_fallback);
        config.websocket.delay = WEBSOCKET_AFTER;
        config.tls.fingerprint = self.tls_fingerprint.clone();
        config.tls.root = self.tls_root.clone();
        if self.tls_insecure {
            tracing::warn!(
                "TLS verification is off (--tls-insecure): the connection is not authenticated"
            );
            config.tls.insecure = Some(true);
        }
        let mut quic = quic();
        quic.idle_timeout = seconds("--idle-timeout", self.idle_timeout(&relays))?;
        quic.keep_alive = quic.idle_timeout / 4;
        let client = config.init(quic).map_err(Error::Client)?;
        Ok((client, relays))
    }
}

/// The QUIC settings of every endpoint Lantern runs (its clients and its direct server):
/// path MTU discovery on, which moq-tokio leaves off. Its packets then grow from 1200 bytes
/// to what the path carries (up to 1452), about 15 % fewer for a stream: fewer to lose, each
/// loss a smaller share of a round, less work per byte. A path that drops the larger probes
/// keeps the smaller packets.
pub(crate) fn quic() -> moq_tokio::quic::Config {
    let mut quic = moq_tokio::quic::Config::default();
    quic.mtu_discovery = Some(true);
    quic
}

/// Relays a client may use, at most this many: a cluster's nodes near the player.
const MAX_RELAYS: usize = 16;

/// The relays to dial, in order (tokens attached): a connection walks them on every dial,
/// keeping the first that answers, so losing one moves it to the next.
#[derive(Clone)]
pub struct Relays(Vec<Url>);

impl Relays {
    /// What a client dials: the first, then each fallback in turn.
    pub fn addrs(&self) -> moq_tokio::Addrs {
        moq_tokio::Addrs::collect(self.0.iter().cloned()).expect("--url checked non-empty")
    }

    /// The same relays starting from the `by`-th (wrapping): clients spread across them.
    pub fn rotated(&self, by: usize) -> Relays {
        let mut urls = self.0.clone();
        let by = by % urls.len();
        urls.rotate_left(by);
        Relays(urls)
    }
}

/// The relays without their tokens, for logs and errors: `A` or `A (or B, C)`.
impl std::fmt::Display for Relays {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut shown = self.0.iter().map(redacted);
        write!(f, "{}", shown.next().unwrap_or_default())?;
        let rest: Vec<String> = shown.collect();
        if !rest.is_empty() {
            write!(f, " (or {})", rest.join(", "))?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for Relays {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Relays({self})")
    }
}

/// Whether `url` names this machine (a loopback address, or `localhost`).
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => {
            name.eq_ignore_ascii_case("localhost")
                || name.to_ascii_lowercase().ends_with(".localhost")
        }
        None => false,
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
    relays: &Relays,
    timeout: Duration,
) -> Result<moq_tokio::Connection, Error> {
    let shown = relays.to_string();
    match tokio::time::timeout(timeout, connection.established()).await {
        Ok(Ok(connection)) => {
            tracing::info!(url = %shown, "connected");
            Ok(connection)
        }
        // A refusal of the credentials may end the first dial as well as a later one.
        Ok(Err(source)) if source.connect_error().is_some() => {
            Err(Error::Refused { url: shown, source })
        }
        Ok(Err(source)) => Err(Error::Connect { url: shown, source }),
        Err(_) => Err(Error::ConnectTimeout {
            url: shown,
            timeout,
        }),
    }
}

/// Close `connection` (what it queued delivered first, for at most `grace`) and send the
/// close from `client`'s endpoint before the process exits. A connection dropped only queues
/// its close, which nothing sends once the runtime stops: the peer would hold the session
/// (a place under a direct server's cap, a viewer whose reports still count) until its idle
/// timeout.
pub async fn close(
    connection: Option<moq_tokio::Connection>,
    client: moq_tokio::Client,
    grace: Duration,
) {
    if let Some(connection) = connection {
        let _ = tokio::time::timeout(grace, connection.close()).await;
    }
    let _ = tokio::time::timeout(grace, client.close()).await;
}

/// Wait until the server refuses `connection`'s credentials (its reconnect loop ends on an
/// HTTP 401/403 or moq's unauthorized); never returns otherwise.
pub async fn refused(connection: &moq_tokio::Connection, relays: &Relays) -> Error {
    match connection.closed().await {
        Err(source) if source.connect_error().is_some() => Error::Refused {
            url: relays.to_string(),
            source,
        },
        _ => std::future::pending().await,
    }
}

/// Finds a relay that restarted under a connection (see [`lantern_proto::deaf`]): looked at
/// every [`Redial::EVERY`] by whoever keeps the connection, it keeps a fresh dial going while
/// the connection hears nothing, and hands back the fresh connection once it is answered
/// with the old one still deaf, to use in its place. The fresh connection is the client's,
/// like any redial (it publishes and subscribes what the old one did); one not answered
/// before the old connection hears again is dropped.
pub struct Redial {
    client: moq_tokio::Client,
    relays: Relays,
    deaf: lantern_proto::deaf::Deaf,
    dial: Option<tokio::task::JoinHandle<Option<moq_tokio::Connection>>>,
    start: tokio::time::Instant,
}

/// A connection that takes the place of one whose relay restarted, and how long the old one
/// had heard nothing.
pub struct Replaced {
    pub connection: moq_tokio::Connection,
    pub silent: Duration,
}

impl Redial {
    /// How often the connection is looked at: a silence is timed from the look that saw the
    /// last packet, so a look every 250 ms found a relay gone with fallbacks (deaf after 0.6 s)
    /// 0.85-0.96 s after it died, within a few tenths of the idle timeout's own end.
    pub const EVERY: Duration = Duration::from_millis(100);

    /// Watch connections of `client` to `relays`, deaf after `deaf_after` (see
    /// [`ConnectArgs::deaf_after`]).
    pub fn new(client: moq_tokio::Client, relays: Relays, deaf_after: Duration) -> Self {
        Self {
            client,
            relays,
            deaf: lantern_proto::deaf::Deaf::after(deaf_after.as_micros() as u64),
            dial: None,
            start: tokio::time::Instant::now(),
        }
    }

    /// Look at `connection` now: what takes its place when its relay was found gone (the
    /// caller aborts the old one).
    pub async fn check(&mut self, connection: &moq_tokio::Connection) -> Option<Replaced> {
        let stats = connection.monitor().stats();
        let received = stats.as_ref().and_then(|s| s.packets_received);
        let sent = stats.as_ref().and_then(|s| s.packets_sent);
        let now_us = self.start.elapsed().as_micros() as u64;
        if !self.deaf.check(now_us, received, sent) {
            // Hearing again (or redialing by itself): a dial still going is not wanted.
            if let Some(dial) = self.dial.take() {
                dial.abort();
            }
            return None;
        }
        let Some(dial) = &self.dial else {
            tracing::debug!(url = %self.relays, "the relay answers nothing: dialing it afresh");
            let dialing = self.client.connect(self.relays.addrs());
            self.dial = Some(tokio::spawn(
                async move { dialing.established().await.ok() },
            ));
            return None;
        };
        if !dial.is_finished() {
            return None;
        }
        let answered = self.dial.take()?.await.ok().flatten();
        let silent = Duration::from_micros(self.deaf.silent_us(now_us));
        // A dial that gave up (as the old connection will have): watch afresh.
        self.deaf.forget();
        answered.map(|connection| Replaced { connection, silent })
    }
}

impl Drop for Redial {
    fn drop(&mut self) {
        if let Some(dial) = self.dial.take() {
            dial.abort();
        }
    }
}

/// The URL without its query, so tokens never reach a log line.
pub fn redacted(url: &Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_over_plain_http_is_trusted_on_loopback_only() {
        let args = |url: &str| ConnectArgs {
            url: vec![url.parse().unwrap()],
            ..Default::default()
        };
        for local in [
            "http://127.0.0.1:4443/",
            "http://[::1]:4443/",
            "http://localhost:1/anon",
        ] {
            assert!(args(local).relays().is_ok(), "{local}");
        }
        let err = args("http://192.168.1.5:4443/")
            .relays()
            .unwrap_err()
            .to_string();
        assert!(err.contains("--tls-fingerprint"), "{err}");
        assert!(args("https://192.168.1.5:4443/").relays().is_ok());
        let pinned = ConnectArgs {
            tls_fingerprint: vec!["ab".into()],
            ..args("http://192.168.1.5:4443/")
        };
        assert!(pinned.relays().is_ok());
        let asked = ConnectArgs {
            trust_http_fingerprint: true,
            ..args("http://relay.lan:4443/")
        };
        assert!(asked.relays().is_ok());
    }

    #[test]
    fn several_relays_are_each_checked_and_shown_without_their_token() {
        let args = ConnectArgs {
            url: vec![
                "https://a.example/anon".parse().unwrap(),
                "http://127.0.0.1:4443/anon".parse().unwrap(),
            ],
            token: Some("secret".into()),
            grant: Some("granted".into()),
            ..Default::default()
        };
        let relays = args.relays().unwrap();
        assert_eq!(relays.addrs().as_slice().len(), 2);
        let addrs = relays.addrs();
        assert!(
            addrs
                .as_slice()
                .iter()
                .all(|a| a.url().query() == Some("jwt=secret&grant=granted"))
        );
        let shown = relays.to_string();
        assert_eq!(
            shown,
            "https://a.example/anon (or http://127.0.0.1:4443/anon)"
        );
        let far = ConnectArgs {
            url: vec![
                "https://a.example/anon".parse().unwrap(),
                "http://relay.lan/anon".parse().unwrap(),
            ],
            ..Default::default()
        };
        let err = far.relays().unwrap_err().to_string();
        assert!(
            err.contains("relay.lan") && err.contains("--tls-fingerprint"),
            "{err}"
        );
        assert!(ConnectArgs::default().relays().is_err());
    }

    #[test]
    fn give_up_defaults_to_the_callers_and_zero_means_never() {
        let mut args = ConnectArgs::default();
        let pipe = Some(Duration::from_secs(30));
        assert_eq!(args.give_up(pipe).unwrap(), pipe);
        assert_eq!(args.give_up(None).unwrap(), None);
        args.give_up = Some(0.0);
        assert_eq!(args.give_up(pipe).unwrap(), None);
        args.give_up = Some(2.5);
        assert_eq!(
            args.give_up(None).unwrap(),
            Some(Duration::from_millis(2500))
        );
        args.give_up = Some(-1.0);
        let err = args.give_up(None).unwrap_err().to_string();
        assert!(err.contains("--give-up"), "{err}");
    }

    #[test]
    fn the_idle_timeout_waits_out_a_fade_alone_and_leaves_sooner_with_a_fallback() {
        let one = ConnectArgs {
            url: vec!["https://a.example/anon".parse().unwrap()],
            ..Default::default()
        };
        let two = ConnectArgs {
            url: vec![
                "https://a.example/anon".parse().unwrap(),
                "https://b.example/anon".parse().unwrap(),
            ],
            ..Default::default()
        };
        assert_eq!(one.idle_timeout(&one.relays().unwrap()), IDLE_ALONE);
        assert_eq!(two.idle_timeout(&two.relays().unwrap()), IDLE_WITH_FALLBACK);
        let told = ConnectArgs {
            idle_timeout: Some(0.5),
            ..two.clone()
        };
        assert_eq!(told.idle_timeout(&told.relays().unwrap()), 0.5);
        // A silent connection is looked for afresh before it would end itself.
        let deaf = |args: &ConnectArgs| args.deaf_after(&args.relays().unwrap()).unwrap();
        assert_eq!(deaf(&one), Duration::from_millis(2500));
        assert_eq!(deaf(&two), Duration::from_millis(600));
        assert_eq!(deaf(&told), Duration::from_millis(250));
        let zero = ConnectArgs {
            idle_timeout: Some(0.0),
            ..one
        };
        let err = zero.client(None).err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("--idle-timeout")));
    }
}
