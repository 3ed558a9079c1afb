//! What every Lantern binary does around its run: logging, turning SIGINT/SIGTERM into one
//! cancellation, and the exit line and status. For binaries only: libraries never install
//! signal handlers or print.

use std::process::ExitCode;
use std::sync::{Arc, OnceLock};

use tokio_util::sync::CancellationToken;

pub mod throttle;

/// What every binary logs of the MoQ stack by default: its warnings, but not those it gives
/// on every ordinary run of Lantern's (the certificate fetched over HTTP to be pinned by
/// fingerprint, a viewer dialing an address rather than a name, a session closed without
/// an error); `RUST_LOG` shows them again.
const MOQ: &str =
    "moq_tokio=warn,moq_tokio::noq=error,moq_tokio::tls=error,moq_tokio::server=error";

/// What every binary logs of Lantern's network library by default: its warnings (TLS
/// verification turned off, a recording that had to leave something out), and what a
/// recording did (where it began, its parts, what it wrote), but not each connection made.
const NET: &str = "lantern_net=warn,lantern_net::record=info";

/// Log to stderr, filtered by `RUST_LOG` or else by errors, the MoQ stack's warnings (those
/// that repeat thinned, see [`throttle`]), the network library's (see [`NET`]), and `own`
/// (the binary's own targets, e.g. `moq_pub=info`); colour only on a terminal.
pub fn init_logging(own: &str) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let default = match own {
        "" => format!("error,{MOQ},{NET}"),
        own => format!("error,{MOQ},{NET},{own}"),
    };
    let (filter, thinned) = match tracing_subscriber::EnvFilter::try_from_default_env() {
        Ok(filter) => (filter, None),
        Err(_) => (default.into(), Some(throttle::Throttle::default())),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .finish()
        .with(thinned)
        .init();
}

/// Keep SVT-AV1 (moq-pub's AV1 encoder), which writes its own log lines to stderr, to its
/// errors unless `SVT_LOG` says otherwise.
///
/// # Safety
/// Call before this process starts a second thread: it sets an environment variable.
pub unsafe fn quiet_svt_log() {
    if std::env::var_os("SVT_LOG").is_none() {
        // SAFETY: per the contract, no other thread reads the environment meanwhile.
        unsafe { std::env::set_var("SVT_LOG", "1") };
    }
}

/// Raise this process's soft limit on open files to its hard limit, and return the limit
/// now in force: a server holds a descriptor per connection and per stream, and the usual
/// soft limit of 1024 runs out long before memory does (the direct server also bounds its
/// connections, see `listen`).
pub fn raise_fd_limit() -> std::io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid resource and a pointer to a live rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            ..limit
        };
        // SAFETY: as above; the soft limit never above the hard one.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        limit = raised;
    }
    Ok(limit.rlim_cur)
}

/// The stop request: a token cancelled by the first SIGINT or SIGTERM, which the binary hands
/// to its library; the library's every task and thread watches it. A second signal exits at
/// once, for a stop that hangs.
#[derive(Clone)]
pub struct Shutdown {
    token: CancellationToken,
    signal: Arc<OnceLock<&'static str>>,
}

impl Shutdown {
    /// Install the signal handlers (inside a tokio runtime).
    pub fn install() -> Self {
        let shutdown = Self {
            token: CancellationToken::new(),
            signal: Arc::new(OnceLock::new()),
        };
        let (token, signal) = (shutdown.token.clone(), shutdown.signal.clone());
        // Both watched from here on, each by one stream for the process's life: a signal that
        // comes between two waits is kept for the next (a `ctrl_c()` made anew for each wait
        // misses one that came before it).
        use tokio::signal::unix::{SignalKind, signal as watch};
        let (Ok(mut int), Ok(mut term)) = (
            watch(SignalKind::interrupt()),
            watch(SignalKind::terminate()),
        ) else {
            tracing::warn!("cannot watch SIGINT and SIGTERM: they end the process at once");
            return shutdown;
        };
        tokio::spawn(async move {
            let first = tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            };
            let _ = signal.set(first);
            tracing::info!(signal = first, "stopping");
            token.cancel();
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            eprintln!("second signal: exiting at once");
            std::process::exit(exit_status(first).into());
        });
        shutdown
    }

    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// The signal that asked for the stop, if one did.
    pub fn signal(&self) -> Option<&'static str> {
        self.signal.get().copied()
    }
}

/// The shell's convention: 128 + the signal's number.
fn exit_status(signal: &str) -> u8 {
    match signal {
        "SIGINT" => 130,
        _ => 143,
    }
}

/// The exit: success; or one line `PROGRAM: error: cause: cause…` on stderr and status 1; or,
/// when a signal stopped the run (whatever the run made of the stop), `PROGRAM: stopped by
/// SIGNAL` and 130 (SIGINT) or 143 (SIGTERM), as a shell reports a process a signal ended.
pub fn exit<T, E: std::error::Error>(
    program: &str,
    result: Result<T, E>,
    shutdown: &Shutdown,
) -> ExitCode {
    match (result, shutdown.signal()) {
        (result, Some(signal)) => {
            if let Err(err) = result {
                tracing::debug!(err = chain(&err), "after the stop");
            }
            eprintln!("{program}: stopped by {signal}");
            ExitCode::from(exit_status(signal))
        }
        (Err(err), None) => {
            eprintln!("{program}: {}", chain(&err));
            ExitCode::FAILURE
        }
        (Ok(_), None) => ExitCode::SUCCESS,
    }
}

/// An error and every cause below it, on one line (see [`lantern_proto::error_line`]).
pub use lantern_proto::error_line as chain;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_open_file_limit_is_raised_to_the_hard_one() {
        let now = raise_fd_limit().unwrap();
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        assert_eq!(
            unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
            0
        );
        assert_eq!((limit.rlim_cur, limit.rlim_cur), (now, limit.rlim_max));
    }
}
