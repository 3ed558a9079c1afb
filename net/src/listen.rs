//! The direct server (`--listen`): QUIC + WebTransport on a UDP port, with a freshly generated
//! self-signed certificate whose fingerprint is served over HTTP on the same TCP port at
//! `/certificate.sha256`, exactly as moq-relay does, so the same subscriber URLs work; the
//! host's clock at `/clock`, so a viewer on another machine can estimate the offset between
//! its clock and the capture times the frames carry; and the browser viewer at `/` (see
//! [`crate::web`]). With the operator's certificate ([`ServerTls`]) both sides use it and the
//! TCP side speaks HTTPS, so the page is a secure context anywhere.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::Error;
pub use crate::https::ServerTls;
use crate::sessions::Kind;
pub use crate::sessions::Seated;

/// Where and how a direct server serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Serve {
    pub addr: SocketAddr,
    /// The operator's certificate; `None`: a generated one, pinned by fingerprint.
    pub tls: Option<ServerTls>,
    /// The built browser viewer to serve at `/` (see [`crate::web::installed`]); `None`: no
    /// page, only MoQ, the fingerprint and the clock.
    pub web: Option<std::path::PathBuf>,
    /// QUIC sessions held at once (players, spectators, anything that connects); beyond them
    /// a new one takes the place of one idle for a while, or is refused (503) until one ends
    /// (see [`crate::sessions`]). At least one.
    pub max_sessions: usize,
    /// Of those, sessions that presented no grant (spectators; every viewer when the server
    /// knows of no grants): each one watching costs the host a stream of upload. Zero: players
    /// only.
    pub max_spectators: usize,
}

impl Serve {
    /// On `addr`, with a generated certificate and no page.
    pub fn generated(addr: SocketAddr) -> Self {
        Self {
            addr,
            tls: None,
            web: None,
            max_sessions: MAX_SESSIONS,
            max_spectators: MAX_SPECTATORS,
        }
    }
}

/// The direct server's flags, as every binary that serves takes them.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ListenArgs {
    /// Serve viewers directly on this address (UDP for MoQ; TCP for the certificate
    /// fingerprint at /certificate.sha256, the clock and the browser viewer) instead of
    /// publishing to a relay.
    #[arg(long, conflicts_with = "url")]
    pub listen: Option<SocketAddr>,

    /// With --listen: serve with this certificate chain (PEM, e.g. from an ACME client)
    /// instead of a generated one, and the browser viewer over HTTPS, so players on other
    /// machines can open it (by the certificate's host name).
    #[arg(long, value_name = "PEM", requires_all = ["listen", "tls_key"])]
    pub tls_cert: Option<std::path::PathBuf>,

    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "PEM", requires_all = ["listen", "tls_cert"])]
    pub tls_key: Option<std::path::PathBuf>,

    /// With --listen: serve the browser viewer built in DIR (holding index.html) at `/`.
    /// Default: `web/` beside this binary (an install), or the checkout's `web/dist` when run
    /// from `target/`; none found, no page is served.
    #[arg(long, value_name = "DIR", env = "LANTERN_WEB")]
    pub web: Option<std::path::PathBuf>,

    /// With --listen: hold at most N QUIC sessions at once (players, spectators and whatever
    /// else connects); beyond them a new one takes the place of a session that moved nothing
    /// for 10 s, or is refused (503) until one ends [default: 1024].
    #[arg(long, value_name = "N", requires = "listen", value_parser = clap::value_parser!(u32).range(1..=MAX_SESSIONS_CAP))]
    pub max_sessions: Option<u32>,

    /// With --listen: let at most N viewers watch without a grant (spectators; with no grants,
    /// as from moq-pub alone, every viewer) at once, since each one costs the host a stream
    /// of upload. Beyond them a new one takes the place of a spectator that moved nothing for
    /// 10 s, or is refused (503) until one leaves; a player with a grant never waits for one.
    /// 0: players only [default: 8].
    #[arg(long, value_name = "N", requires = "listen", value_parser = clap::value_parser!(u32).range(0..=MAX_SESSIONS_CAP))]
    pub max_spectators: Option<u32>,
}

impl ListenArgs {
    /// What to serve, when --listen was given.
    pub fn serve(&self) -> Option<Serve> {
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(ServerTls {
                cert: cert.clone(),
                key: key.clone(),
            }),
            _ => None,
        };
        let web = self.web.clone().or_else(crate::web::installed);
        let max_sessions = self.max_sessions.map_or(MAX_SESSIONS, |n| n as usize);
        let max_spectators = self.max_spectators.map_or(MAX_SPECTATORS, |n| n as usize);
        self.listen.map(|addr| Serve {
            addr,
            tls,
            web,
            max_sessions,
            max_spectators,
        })
    }
}

pub struct Listener {
    server: moq_tokio::Server,
    http: tokio::net::TcpListener,
    /// HTTPS with the operator's certificate, when given.
    https: Option<Arc<rustls::ServerConfig>>,
    addr: SocketAddr,
    fingerprint: String,
    /// The browser viewer, served at `/` when it is built.
    site: Option<crate::web::Site>,
    sessions: crate::sessions::Sessions,
}

/// Who a direct server holds, to read while it serves ([`Listener::seats`]).
#[derive(Clone)]
pub struct Seats(crate::sessions::Sessions);

impl Seats {
    pub fn now(&self) -> crate::sessions::Seated {
        self.0.seated()
    }
}

impl Listener {
    /// Bind `addr` (UDP for MoQ, TCP for the fingerprint; either in use is an error now)
    /// with the operator's certificate, or one generated for `localhost` and the bound IP.
    pub async fn bind(serve: &Serve) -> Result<Self, Error> {
        let (addr, tls) = (serve.addr, serve.tls.as_ref());
        let mut config = moq_tokio::server::Config::default();
        config.quic = crate::connect::quic();
        config.listen.bind = Some(moq_tokio::listen::Bind::Addr(addr));
        let https = match tls {
            Some(tls) => {
                let https = tls.config()?;
                config.listen.tls.cert = vec![tls.cert.clone()];
                config.listen.tls.key = vec![tls.key.clone()];
                Some(https)
            }
            None => {
                config.listen.tls.generate = vec!["localhost".into(), addr.ip().to_string()];
                None
            }
        };
        let listen = |source| Error::Listen { addr, source };
        let server = config.init().map_err(listen)?;
        let addr = server.local_addr().map_err(listen)?;
        let http = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| Error::ListenHttp { addr, source })?;
        let fingerprint = server
            .certificates()
            .fingerprints()
            .into_iter()
            .next()
            .ok_or(Error::NoCertificate { addr })?;
        let site = match &serve.web {
            Some(dir) => Some(crate::web::Site::load(dir)?),
            None => {
                tracing::info!(
                    "no built web viewer (cd web && npm ci && npm run build): not serving one"
                );
                None
            }
        };
        Ok(Self {
            server,
            http,
            https,
            addr,
            fingerprint,
            site,
            sessions: crate::sessions::Sessions::new(serve.max_sessions, serve.max_spectators),
        })
    }

    /// Who it holds, and turned away, as it serves.
    pub fn seats(&self) -> Seats {
        Seats(self.sessions.clone())
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The browser viewer's address for broadcast `name` here, when the page is built: over
    /// HTTPS with the operator's certificate (which the browser verifies), else over HTTP
    /// with the generated certificate's fingerprint pinned.
    pub fn page(&self, name: &str) -> Option<String> {
        self.site.as_ref().map(|_| match self.https {
            Some(_) => crate::web::page_url_https(self.addr, name),
            None => crate::web::page_url(self.addr, name, &self.fingerprint),
        })
    }

    /// Whether the TCP side speaks HTTPS (the operator's certificate).
    pub fn is_https(&self) -> bool {
        self.https.is_some()
    }

    /// The generated certificate's SHA-256 fingerprint (hex), for `--tls-fingerprint`.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Serve `origin` to every subscriber until the listener fails (it never ends without an
    /// error; drop the future to stop it). Given `inbound`, peers may also publish into it
    /// (viewers' input: pass a scope such as [`crate::input::viewers_scope`], so nothing else
    /// can be published here). Given `players`, a newcomer presenting one of their live
    /// grants ([`GRANT_PARAM`]) is a player, whom the spectators' bound never holds back.
    pub async fn serve(
        self,
        origin: moq_net::origin::Consumer,
        inbound: Option<moq_net::origin::Producer>,
        players: Option<Arc<crate::grant::Grants>>,
    ) -> Result<(), Error> {
        let addr = self.addr;
        let fingerprint = self.fingerprint.clone();
        let app = axum::Router::new()
            .route(
                "/certificate.sha256",
                axum::routing::get(move || std::future::ready(fingerprint.clone())),
            )
            .route("/clock", axum::routing::get(clock));
        let app = match self.site {
            Some(site) => site.serve(app),
            None => app,
        };
        let registry =
            crate::conns::Registry::new(crate::conns::MAX_CONNECTIONS, crate::conns::IDLE_TIMEOUT);
        let stopped = tokio::select! {
            res = serve_sessions(self.server, origin, inbound, players, self.sessions) => res.err(),
            res = async {
                match self.https {
                    Some(config) => {
                        let listener = crate::https::Listener::new(self.http, registry, config)?;
                        axum::serve(listener, app).await
                    }
                    None => axum::serve(crate::conns::Plain { tcp: self.http, registry }, app).await,
                }
            } => {
                return Err(match res {
                    Ok(()) => Error::ServerStopped { addr, source: None },
                    Err(source) => Error::ListenHttp { addr, source },
                });
            }
        };
        Err(Error::ServerStopped {
            addr,
            source: stopped,
        })
    }
}

/// QUIC sessions a direct server holds at once by default (viewers, and whatever else
/// connects); beyond them, new ones are refused (503) until some end. Each holds buffers, not
/// descriptors.
pub const MAX_SESSIONS: usize = 1024;
/// The most sessions an operator may allow.
pub const MAX_SESSIONS_CAP: i64 = 65_536;
/// Spectators a direct server lets watch at once by default: at the default bitrate, about
/// 35 Mbit/s of the host's upload.
pub const MAX_SPECTATORS: usize = 8;
/// The query parameter of the URL a player dials a direct server with that carries its
/// grant's token (never the secret), so that it is a player from its first packet on: a
/// viewer path's grant is only read once the session is up, too late to choose its place.
pub const GRANT_PARAM: &str = "grant";

/// Accept sessions until the listener stops: each is served `origin` and, given `inbound`,
/// may publish into it; as many at once as `held` has places, an idle one making way for a
/// newcomer (see [`crate::sessions`]).
async fn serve_sessions(
    server: moq_tokio::Server,
    origin: moq_net::origin::Consumer,
    inbound: Option<moq_net::origin::Producer>,
    players: Option<Arc<crate::grant::Grants>>,
    held: crate::sessions::Sessions,
) -> Result<(), moq_tokio::Error> {
    let mut listener = server.listen().await?;
    let mut sample = tokio::time::interval(crate::sessions::SAMPLE);
    loop {
        let request = tokio::select! {
            request = listener.accept() => match request {
                Some(request) => request,
                None => return Ok(()),
            },
            _ = sample.tick() => {
                held.sample(std::time::Instant::now());
                continue;
            }
        };
        let kind = newcomer(request.url(), players.as_deref());
        let place = match held.admit(std::time::Instant::now(), kind) {
            Ok(place) => place,
            Err(full) => {
                tracing::debug!(?full, "refusing a session: every place is taken, none idle");
                tokio::spawn(request.reject(moq_tokio::server::Reject::App(503)));
                continue;
            }
        };
        tracing::debug!(kind = ?place.kind(), "a session arrives");
        let mut request = request.with_publisher(origin.clone());
        if let Some(inbound) = &inbound {
            request = request.with_subscriber(inbound.clone());
        }
        tokio::spawn(async move {
            // A peer that goes away is the usual end of a session, not news.
            match request.ok().await {
                Ok(session) => {
                    place.established(session.clone());
                    let _ = session.closed().await;
                }
                Err(err) => tracing::debug!(%err, "a session's handshake failed"),
            }
            drop(place);
        });
    }
}

/// Who a newcomer dialing `url` is: a player when it presents a live grant of `players`.
fn newcomer(url: Option<&url::Url>, players: Option<&crate::grant::Grants>) -> Kind {
    let token = url.and_then(|url| {
        url.query_pairs()
            .find(|(name, _)| name == GRANT_PARAM)
            .map(|(_, token)| token)
    });
    let (Some(players), Some(token)) = (players, token) else {
        return Kind::Spectator;
    };
    if token.len() as u64 > crate::input::MAX_GRANT_BYTES {
        tracing::debug!(
            bytes = token.len(),
            "a newcomer's grant is oversized: a spectator"
        );
        return Kind::Spectator;
    }
    match players.holder(&token) {
        Ok(id) => Kind::Player(id),
        Err(why) => {
            tracing::debug!(
                why = why.as_str(),
                "a newcomer's grant was refused: a spectator"
            );
            Kind::Spectator
        }
    }
}

/// `GET /clock`: the host's clock (µs since the UNIX epoch, the clock of the frames' capture
/// times), for a viewer's round-trip offset estimate. Never cached; any page may ask, since
/// the viewer page may be served from elsewhere (a relay's query) and the time is no secret.
async fn clock() -> impl axum::response::IntoResponse {
    use axum::http::header;
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
            (header::CONTENT_TYPE, "text/plain"),
        ],
        lantern_proto::clock::now_unix_us().to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grant::{Credential, DEFAULT_TTL, Grants};

    /// A newcomer is a player only by a live grant of the server's session in its URL.
    #[test]
    fn a_newcomer_is_a_player_by_the_grant_it_presents() {
        let grants = Grants::generate("game");
        let grant = grants.issue(Some("alice"), DEFAULT_TTL).unwrap();
        let token = Credential::parse(&grant.credential).unwrap().token;
        let dialed =
            |query: &str| -> url::Url { format!("https://host:4443/?{query}").parse().unwrap() };
        let presented = dialed(&format!("jwt=x&{GRANT_PARAM}={token}"));
        assert_eq!(
            newcomer(Some(&presented), Some(&grants)),
            Kind::Player(grant.id.clone())
        );
        // No grants to know it by, no URL, none presented, a forged or oversized one.
        assert_eq!(newcomer(Some(&presented), None), Kind::Spectator);
        assert_eq!(newcomer(None, Some(&grants)), Kind::Spectator);
        assert_eq!(
            newcomer(Some(&dialed("jwt=x")), Some(&grants)),
            Kind::Spectator
        );
        let other = Grants::generate("game");
        assert_eq!(newcomer(Some(&presented), Some(&other)), Kind::Spectator);
        let huge = dialed(&format!("{GRANT_PARAM}={}", "e".repeat(8192)));
        assert_eq!(newcomer(Some(&huge), Some(&grants)), Kind::Spectator);
        grants.revoke(&grant.id);
        assert_eq!(newcomer(Some(&presented), Some(&grants)), Kind::Spectator);
    }
}
