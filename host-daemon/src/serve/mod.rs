//! `host-daemon serve`: many sessions at once, each with its own compositor, sound server,
//! account and broadcast name, created, listed, watched and stopped through an HTTP/JSON API
//! on a Unix socket only the daemon's owner can use (see [`socket`]; there is no TCP control
//! port). [`api`] is the API, [`spec`] what a session asks for, [`Settings`] the TOML config.

pub mod api;
pub mod ctl;
pub mod socket;
pub mod spec;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::account::Claim;
use crate::capture::CaptureStats;
use crate::session::{self, Ended, Event};
pub use spec::{Create, Spec};

/// The daemon's TOML config (`--config`).
///
/// ```toml
/// socket = "/run/lantern/host-daemon.sock"
/// max_sessions = 4
/// users = ["lantern-1", "lantern-2", "lantern-3", "lantern-4"]
///
/// [session]           # defaults for every session; a request's own fields win
/// url = "https://relay.example.com/anon"
/// width = 1920
/// height = 1080
/// ```
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The control socket [default: /run/lantern/host-daemon.sock as root, else
    /// $XDG_RUNTIME_DIR/lantern/host-daemon.sock].
    pub socket: Option<PathBuf>,
    /// Sessions running at once [default: 4]; a create beyond it is refused.
    pub max_sessions: Option<usize>,
    /// The accounts sessions run as, one session each host-wide (claimed under
    /// /run/lantern/accounts), so that no session can see, signal or talk to another (root
    /// daemons only) [default: the `lantern-N` that exist, N = 1 … max_sessions and on while
    /// they continue; when none does, every session runs as `lantern`]. Accounts for Lantern alone:
    /// whatever runs as one when its session ends is killed.
    pub users: Option<Vec<String>>,
    #[serde(default)]
    pub session: Spec,
}

/// Where the config is looked for when `--config` is not given.
pub fn default_config() -> PathBuf {
    if crate::account::is_root() {
        return PathBuf::from("/etc/lantern/host-daemon.toml");
    }
    let home = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("/etc"));
    home.join("lantern/host-daemon.toml")
}

impl Settings {
    /// Read `path`; a missing file is an error only when it was asked for by name.
    pub fn load(path: &Path, named: bool) -> Result<Self, Error> {
        let text = match std::fs::read_to_string(path) {
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && !named => {
                return Ok(Self::default());
            }
            read => read.map_err(|err| Error::io(format!("{}", path.display()), err))?,
        };
        let settings: Self = toml::from_str(&text).map_err(|err| {
            // One line: the file, the line, the line's text and what is wrong with it.
            let at = err.span().map_or(0, |span| span.start);
            let line = text[..at.min(text.len())].matches('\n').count();
            let quoted = text.lines().nth(line).unwrap_or("").trim();
            Error::Config(format!(
                "{}:{}: `{quoted}`: {}",
                path.display(),
                line + 1,
                err.message()
            ))
        })?;
        if settings.session.token.is_some() {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path).map(|m| m.permissions().mode());
            if mode.is_ok_and(|mode| mode & 0o077 != 0) {
                tracing::warn!(
                    path = %path.display(),
                    "the config holds a relay token but others may read it: chmod 600 it"
                );
            }
        }
        Ok(settings)
    }
}

/// The accounts a root daemon's sessions run as: those the config names, else the
/// `lantern-N` accounts that exist, N from 1 through max_sessions and on while they continue
/// (so that two daemons on one host, or an admin who made more, find enough). Empty (every
/// session as the default account, shared) when the daemon is not root or none exists.
fn session_users(named: Option<&[String]>, max_sessions: usize) -> Vec<String> {
    if !crate::account::is_root() {
        return Vec::new();
    }
    if let Some(named) = named {
        return named.to_vec();
    }
    let mut users = Vec::new();
    for n in 1.. {
        let user = format!("{}-{n}", crate::account::DEFAULT_USER);
        let exists = crate::account::Account::lookup(&user).is_ok();
        if exists {
            users.push(user);
        } else if n >= max_sessions {
            break;
        }
    }
    if users.is_empty() {
        tracing::warn!(
            "every session runs as the one user {:?}, so a session's app can reach another \
             session's: create lantern-1 … lantern-{max_sessions} (useradd --system \
             --user-group --no-create-home --shell /usr/sbin/nologin lantern-1, …) for a user \
             per session",
            crate::account::DEFAULT_USER
        );
    }
    users
}

/// Serve the control API on `socket` until `cancel`, then stop every session.
pub async fn serve(
    settings: Settings,
    socket: &Path,
    cancel: CancellationToken,
    print_stats: bool,
) -> Result<(), Error> {
    let control = socket::Control::bind(socket).await?;
    tracing::info!(socket = %control.path().display(), "serving the control API");
    let daemon = Arc::new(Daemon::new(&settings, cancel.child_token(), print_stats));
    let served = axum::serve(control, api::router(daemon.clone()))
        .with_graceful_shutdown(cancel.cancelled_owned())
        .await;
    daemon.stop_all().await;
    served.map_err(|err| Error::io("the control socket", err))
}

/// Which grants to revoke.
#[derive(Clone, Copy, Debug)]
pub enum Revoke<'a> {
    Grant(&'a str),
    Viewer(&'a str),
}

/// What a revocation did.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Revoked {
    pub revoked: usize,
}

/// A grant the API made, and the session's page with it (when it serves one).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Granted {
    #[serde(flatten)]
    pub grant: lantern_net::grant::Grant,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
}

/// What the API shows of a session.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Info {
    pub name: String,
    pub app: Vec<String>,
    pub state: State,
    pub width: u32,
    pub height: u32,
    pub fps: f64,
    /// The relay (token left out) or the direct address.
    pub target: String,
    /// When it was created, in seconds since 1970.
    pub created: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compositor: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_pid: Option<i32>,
    /// The account it runs as (a root daemon's sessions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Viewers' certificate fingerprint, for a session serving them directly.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// The browser viewer page (view-only; a grant's answer gives one with the grant), for a
    /// session serving viewers directly with the page built.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
    /// The last second's capture and encoder figures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<SessionStats>,
    /// How it ended, and its figures over the whole run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended: Option<EndInfo>,
}

/// A second of a running session: the capture's and the encoder's figures, and the input's
/// totals so far (absent when input is off). The API writes it; `ctl` reads it back,
/// leniently (a field an older daemon did not write is its default).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionStats {
    pub capture: crate::capture::CaptureStats,
    pub video: moq_pub::stats::VideoStats,
    pub input: Option<Box<crate::input::InputStats>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// The compositor, the app or the stream are starting.
    Starting,
    /// Streaming.
    Running,
    Ended,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct EndInfo {
    /// `app exited`, `stopped`, `stream ended` or `failed`.
    pub reason: &'static str,
    /// The app's exit status (128 + signal when killed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The app's last lines of output, when it ended.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub tail: String,
    pub capture: CaptureStats,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<moq_pub::Summary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<crate::input::InputStats>,
    /// The API status a failure at start answers with (422 for what the request asked
    /// wrong, 500 for the host's failures).
    #[serde(skip)]
    failure_status: u16,
}

struct Entry {
    info: watch::Sender<Info>,
    /// The account it runs as, when the daemon chose one.
    user: Option<String>,
    cancel: CancellationToken,
    input: crate::input::Settings,
}

/// The running daemon: its sessions by name.
pub struct Daemon {
    defaults: Spec,
    max_sessions: usize,
    /// The accounts sessions are given, one each (empty: the default account, shared).
    users: Vec<String>,
    sessions: Mutex<BTreeMap<String, Entry>>,
    /// Cancelled when the daemon stops: every session stops with it.
    cancel: CancellationToken,
    /// Print each session's stats as JSON lines on stderr.
    print_stats: bool,
}

/// Why a request was refused, as the API's status and message.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub message: String,
}

impl Refused {
    fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

impl From<Error> for Refused {
    fn from(err: Error) -> Self {
        let status = match err {
            Error::Config(_)
            | Error::Missing { .. }
            | Error::Net(lantern_net::Error::Config(_))
            | Error::Publish(moq_pub::Error::Config(_)) => 422,
            _ => 500,
        };
        Self::new(status, lantern_proto::error_line(&err))
    }
}

impl Daemon {
    pub fn new(settings: &Settings, cancel: CancellationToken, print_stats: bool) -> Self {
        let max_sessions = settings.max_sessions.unwrap_or(4).max(1);
        let users = session_users(settings.users.as_deref(), max_sessions);
        Self {
            defaults: settings.session.clone(),
            max_sessions,
            users,
            sessions: Mutex::default(),
            cancel,
            print_stats,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
        // A panic while holding the lock leaves plain data behind: keep serving it.
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every session, running or ended.
    pub fn list(&self) -> Vec<Info> {
        self.lock()
            .values()
            .map(|e| e.info.borrow().clone())
            .collect()
    }

    pub fn get(&self, name: &str) -> Result<Info, Refused> {
        self.lock()
            .get(name)
            .map(|e| e.info.borrow().clone())
            .ok_or_else(|| Refused::new(404, format!("no session {name:?}")))
    }

    /// Start a session and answer once it streams (or failed to start).
    pub async fn create(self: &Arc<Self>, request: Create) -> Result<Info, Refused> {
        let mut config = request.config(&self.defaults)?;
        let name = config.name.clone();
        let (mut watching, answer_within) = {
            let mut sessions = self.lock();
            let live = sessions
                .values()
                .filter(|e| e.info.borrow().state != State::Ended)
                .count();
            if sessions
                .get(&name)
                .is_some_and(|e| e.info.borrow().state != State::Ended)
            {
                return Err(Refused::new(
                    409,
                    format!("session {name:?} is already running"),
                ));
            }
            if live >= self.max_sessions {
                return Err(Refused::new(
                    429,
                    format!(
                        "{live} sessions are running, the most this daemon allows \
                         (max_sessions in its config)"
                    ),
                ));
            }
            let (user, claim) = self.account_for(&sessions, config.user.as_deref())?;
            if user.is_some() {
                config.user = user.clone();
            }
            // One of the daemon's own accounts, claimed: nothing else runs as it, so whatever
            // is left of it when the session ends is the session's, and goes.
            config.own_user = claim.is_some();
            let info = watch::Sender::new(Info::starting(&config));
            let watching = info.subscribe();
            let cancel = self.cancel.child_token();
            sessions.insert(
                name.clone(),
                Entry {
                    info: info.clone(),
                    user,
                    cancel: cancel.clone(),
                    input: config.input.clone(),
                },
            );
            let timeout = config.timeout;
            tokio::spawn(self.clone().run(config, cancel, info, claim));
            // Start-up has deadlines of its own at every step; this one only bounds the
            // answer.
            (watching, timeout * 4)
        };
        let started = tokio::time::timeout(
            answer_within,
            watching.wait_for(|info| info.state != State::Starting),
        )
        .await;
        let info = match started {
            Ok(Ok(info)) => info.clone(),
            _ => self.get(&name)?,
        };
        match &info.ended {
            Some(EndInfo {
                reason: "failed",
                error,
                failure_status,
                ..
            }) => {
                self.lock().remove(&name);
                Err(Refused::new(
                    *failure_status,
                    format!(
                        "session {name:?} failed to start: {}",
                        error.as_deref().unwrap_or("")
                    ),
                ))
            }
            _ => Ok(info),
        }
    }

    /// The account a new session runs as, when the daemon chooses it: `asked` if no running
    /// session has it, else the first account of the daemon's that no session of any daemon
    /// on the host holds; with the claim that holds it, for the daemon's own accounts.
    /// `None`: the session's own default (a daemon that is not root, or has no accounts).
    fn account_for(
        &self,
        sessions: &BTreeMap<String, Entry>,
        asked: Option<&str>,
    ) -> Result<(Option<String>, Option<Claim>), Refused> {
        if !crate::account::is_root() {
            return Ok((None, None));
        }
        let taken: Vec<(&str, &str)> = sessions
            .iter()
            .filter(|(_, e)| e.info.borrow().state != State::Ended)
            .filter_map(|(name, e)| Some((e.user.as_deref()?, name.as_str())))
            .collect();
        let holder = |user: &str| taken.iter().find(|(u, _)| *u == user).map(|(_, n)| *n);
        let claim = |user: &str| Claim::take(user).map_err(Refused::from);
        match asked {
            Some(user) => {
                if let Some(session) = holder(user) {
                    return Err(Refused::new(
                        409,
                        format!(
                            "user {user:?} runs session {session:?}: sessions never share a \
                             user (leave the user out, and the daemon gives each one of its own)"
                        ),
                    ));
                }
                if !self.users.iter().any(|u| u == user) {
                    return Ok((Some(user.to_string()), None));
                }
                match claim(user)? {
                    Some(held) => Ok((Some(user.to_string()), Some(held))),
                    None => Err(Refused::new(
                        409,
                        format!("user {user:?} runs a session of another daemon on this host"),
                    )),
                }
            }
            None if self.users.is_empty() => Ok((None, None)),
            None => {
                for user in self.users.iter().filter(|u| holder(u).is_none()) {
                    if let Some(held) = claim(user)? {
                        return Ok((Some(user.clone()), Some(held)));
                    }
                }
                Err(Refused::new(
                    429,
                    format!(
                        "every session account is in use ({}): add accounts to `users` in \
                         the config",
                        self.users.join(", ")
                    ),
                ))
            }
        }
    }

    /// Sign an input grant for a running session (`viewer`: the id it names, else a random
    /// one; `ttl`: how long it lasts, else twelve hours).
    pub fn grant(
        &self,
        name: &str,
        viewer: Option<&str>,
        ttl: Option<std::time::Duration>,
    ) -> Result<Granted, Refused> {
        let sessions = self.lock();
        let entry = sessions
            .get(name)
            .filter(|e| e.info.borrow().state != State::Ended)
            .ok_or_else(|| Refused::new(404, format!("no running session {name:?}")))?;
        if entry.input.auth != crate::input::Auth::Granted {
            let auth = serde_json::to_value(entry.input.auth).unwrap_or_default();
            return Err(Refused::new(
                409,
                format!("session {name:?} takes no grants: its input is {auth}"),
            ));
        }
        let ttl = ttl.unwrap_or(lantern_net::grant::DEFAULT_TTL);
        let grant = entry
            .input
            .grants
            .issue(viewer, ttl)
            .map_err(|e| Refused::new(422, lantern_proto::error_line(&e)))?;
        let page = (entry.info.borrow().page.as_deref())
            .map(|page| lantern_net::web::with_grant(page, &grant.credential));
        Ok(Granted { grant, page })
    }

    /// Revoke a running session's grant `id`, or every grant of viewer `viewer`: their
    /// viewers' input stops within a heartbeat (everything they held is released). How many
    /// live grants were revoked.
    pub fn revoke(&self, name: &str, which: Revoke<'_>) -> Result<Revoked, Refused> {
        let sessions = self.lock();
        let entry = sessions
            .get(name)
            .filter(|e| e.info.borrow().state != State::Ended)
            .ok_or_else(|| Refused::new(404, format!("no running session {name:?}")))?;
        let grants = &entry.input.grants;
        let revoked = match which {
            Revoke::Grant(id) => usize::from(grants.revoke(id)),
            Revoke::Viewer(viewer) => grants.revoke_viewer(viewer),
        };
        if revoked == 0 {
            let what = match which {
                Revoke::Grant(id) => format!("grant {id:?}"),
                Revoke::Viewer(viewer) => format!("grant for viewer {viewer:?}"),
            };
            return Err(Refused::new(
                404,
                format!("session {name:?} has no live {what}"),
            ));
        }
        Ok(Revoked { revoked })
    }

    /// Stop a session (or forget an ended one) and give its last figures.
    pub async fn stop(&self, name: &str) -> Result<Info, Refused> {
        let (cancel, mut watching) = {
            let sessions = self.lock();
            let entry = sessions
                .get(name)
                .ok_or_else(|| Refused::new(404, format!("no session {name:?}")))?;
            (entry.cancel.clone(), entry.info.subscribe())
        };
        cancel.cancel();
        // A session stops its processes with a grace period each (app, sound, compositor).
        let ended = tokio::time::timeout(
            Duration::from_secs(30),
            watching.wait_for(|info| info.state == State::Ended),
        )
        .await;
        let info = match ended {
            Ok(Ok(info)) => info.clone(),
            _ => {
                return Err(Refused::new(
                    500,
                    format!("session {name:?} did not stop within 30 s"),
                ));
            }
        };
        self.lock().remove(name);
        Ok(info)
    }

    /// Stop every session and wait for them all.
    pub async fn stop_all(&self) {
        self.cancel.cancel();
        let watching: Vec<_> = self.lock().values().map(|e| e.info.subscribe()).collect();
        for mut info in watching {
            let _ = tokio::time::timeout(
                Duration::from_secs(30),
                info.wait_for(|info| info.state == State::Ended),
            )
            .await;
        }
    }

    /// One session, from start to its last process, its figures flowing into its `Info`.
    async fn run(
        self: Arc<Self>,
        config: session::Config,
        cancel: CancellationToken,
        info: watch::Sender<Info>,
        // Held until the session's processes are gone.
        _claim: Option<crate::account::Claim>,
    ) {
        let name = config.name.clone();
        let (events, mut receive) = tokio::sync::mpsc::unbounded_channel();
        let watcher = info.clone();
        let print_stats = self.print_stats;
        let forward = tokio::spawn(async move {
            while let Some(event) = receive.recv().await {
                watcher.send_modify(|info| info.update(event, print_stats));
            }
        });
        tracing::info!(session = %name, app = ?config.app, "session starting");
        let outcome = session::run(config, cancel, events).await;
        let _ = forward.await;
        let end = match outcome {
            Ok(outcome) => EndInfo {
                reason: match outcome.ended {
                    Ended::App { .. } => "app exited",
                    Ended::Stopped => "stopped",
                    Ended::StreamEnded => "stream ended",
                },
                status: outcome.app_status(),
                error: None,
                tail: match &outcome.ended {
                    Ended::App { tail, .. } => tail.clone(),
                    _ => String::new(),
                },
                capture: outcome.capture,
                summary: outcome.summary,
                input: outcome.input,
                failure_status: 0,
            },
            Err(err) => {
                let refused = Refused::from(err);
                EndInfo {
                    reason: "failed",
                    status: None,
                    error: Some(refused.message),
                    tail: String::new(),
                    capture: CaptureStats::default(),
                    summary: None,
                    input: None,
                    failure_status: refused.status,
                }
            }
        };
        tracing::info!(session = %name, reason = end.reason, status = ?end.status, error = ?end.error, "session ended");
        info.send_modify(|info| {
            info.state = State::Ended;
            info.stats = None;
            info.ended = Some(end);
        });
    }
}

impl Info {
    fn starting(config: &session::Config) -> Self {
        Self {
            name: config.name.clone(),
            app: config.app.clone(),
            state: State::Starting,
            width: config.format.width,
            height: config.format.height,
            fps: config.format.fps,
            target: match &config.target {
                moq_pub::Target::Listen(serve) => format!("listen {}", serve.addr),
                moq_pub::Target::Relay(args) => args
                    .url
                    .iter()
                    .map(lantern_net::redacted)
                    .collect::<Vec<_>>()
                    .join(", "),
                moq_pub::Target::Origin(_) => "in-process".into(),
                moq_pub::Target::RtpOnly => "rtp".into(),
            },
            created: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            compositor: None,
            app_pid: None,
            user: config.user.clone(),
            fingerprint: None,
            page: None,
            stats: None,
            ended: None,
        }
    }

    fn update(&mut self, event: Event, print_stats: bool) {
        match event {
            Event::Started {
                compositor,
                app_pid,
            } => {
                self.compositor = Some(compositor);
                self.app_pid = Some(app_pid);
            }
            Event::Publish(moq_pub::Event::Listening {
                addr,
                fingerprint,
                page,
            }) => {
                self.target = format!("listen {addr}");
                self.fingerprint = Some(fingerprint);
                self.page = page;
                self.state = State::Running;
            }
            Event::Publish(moq_pub::Event::Connected { .. }) => self.state = State::Running,
            Event::Publish(_) => {}
            Event::Stats {
                capture,
                video,
                input,
            } => {
                if print_stats {
                    eprintln!(
                        "{}",
                        serde_json::json!({ "role": "host", "session": self.name, "capture": capture, "video": video, "input": input })
                    );
                }
                self.stats = Some(SessionStats {
                    capture,
                    video,
                    input,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What ctl reads of a session is what the daemon writes of it: `Info` as JSON reads
    /// back as ctl's `Listed`, field for field.
    #[test]
    fn ctl_reads_what_the_api_writes() {
        let config = Create {
            name: "game".into(),
            app: vec!["foot".into()],
            env: BTreeMap::new(),
            spec: Spec {
                listen: Some("127.0.0.1:4443".parse().unwrap()),
                ..Spec::default()
            },
            unknown: BTreeMap::new(),
        }
        .config(&Spec::default())
        .unwrap();
        let mut info = Info::starting(&config);
        let stats = SessionStats {
            video: moq_pub::stats::VideoStats {
                fps: 59.9,
                kbps: 4000.0,
                ..Default::default()
            },
            ..Default::default()
        };
        info.stats = Some(stats.clone());
        let listed: super::ctl::Listed =
            serde_json::from_value(serde_json::to_value(&info).unwrap()).unwrap();
        assert_eq!(
            (listed.name.as_str(), listed.state),
            ("game", State::Starting)
        );
        assert_eq!((listed.width, listed.height), (1280, 720));
        assert_eq!(listed.target, "listen 127.0.0.1:4443");
        assert_eq!(listed.stats, Some(stats));
    }

    #[test]
    fn the_shipped_example_config_parses() {
        let settings: Settings = toml::from_str(include_str!("../../host-daemon.toml")).unwrap();
        assert_eq!(settings.max_sessions, Some(4));
        assert_eq!(settings.session.width, Some(1280));
    }

    #[test]
    fn a_bad_config_names_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "max_sessions = 2\n[session]\nwidht = 3\n").unwrap();
        let err = Settings::load(&path, true).unwrap_err().to_string();
        assert!(err.contains(":3: `widht = 3`: unknown field"), "{err}");
        let missing = dir.path().join("none.toml");
        assert!(Settings::load(&missing, true).is_err());
        assert!(Settings::load(&missing, false).is_ok());
    }
}
