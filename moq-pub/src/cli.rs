//! What both binaries do around their run: logging setup and the exit status.

use std::process::ExitCode;

/// Log to stderr, filtered by `RUST_LOG` or else by `default`; colour only on a terminal.
pub fn init_logging(default: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| default.into()),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}

/// Success, or one line `PROGRAM: error` on stderr and a failing status.
pub fn exit<T, E: std::fmt::Display>(program: &str, result: Result<T, E>) -> ExitCode {
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{program}: {err}");
            ExitCode::FAILURE
        }
    }
}
