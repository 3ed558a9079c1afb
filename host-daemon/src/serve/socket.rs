//! The control socket: a Unix socket only the daemon's owner can use, and the client that
//! talks to it.
//!
//! Two locks keep others out: the socket is 0600 in a 0700 directory (it is created under a
//! 0177 umask, so it never exists with wider rights), and every connection's peer is checked
//! (SO_PEERCRED) before a byte of HTTP is read: a peer that is not the owner is dropped.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::net::{UnixListener, UnixStream};

use crate::Error;
use crate::account::{effective_uid, is_root};

/// The socket when neither `--socket` nor the config names one.
pub fn default_path() -> Result<PathBuf, Error> {
    if is_root() {
        return Ok(PathBuf::from("/run/lantern/host-daemon.sock"));
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => Ok(PathBuf::from(dir).join("lantern/host-daemon.sock")),
        _ => Err(Error::Config(
            "no XDG_RUNTIME_DIR for the control socket: give --socket PATH (in a directory \
             only you can enter)"
                .into(),
        )),
    }
}

/// The listening control socket; its file is removed when it is dropped.
pub struct Control {
    listener: UnixListener,
    path: PathBuf,
    owner: u32,
}

impl Control {
    /// Bind `path`, creating its directory (0700) if needed. A live daemon already on it is an
    /// error; a stale socket file left by a killed one is replaced.
    pub async fn bind(path: &Path) -> Result<Self, Error> {
        let io = |what: &str, err| Error::io(format!("{what} {}", path.display()), err);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.exists()
        {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|err| io("cannot create the directory of", err))?;
        }
        if path.exists() {
            if UnixStream::connect(path).await.is_ok() {
                return Err(Error::Config(format!(
                    "another host-daemon is serving on {}: stop it, or give this one --socket",
                    path.display()
                )));
            }
            std::fs::remove_file(path).map_err(|err| io("cannot remove the stale socket", err))?;
        }
        // SAFETY: umask only swaps the process's file-creation mask; the daemon creates no
        // other file while the socket is being bound (it starts no session before serving).
        let old = unsafe { libc::umask(0o177) };
        let bound = UnixListener::bind(path);
        unsafe { libc::umask(old) };
        let listener = bound.map_err(|err| io("cannot listen on", err))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|err| io("cannot restrict", err))?;
        Ok(Self {
            listener,
            path: path.to_path_buf(),
            owner: effective_uid(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Control {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl axum::serve::Listener for Control {
    type Io = UnixStream;
    type Addr = u32;

    /// The next connection from the owner; others are logged and dropped.
    async fn accept(&mut self) -> (UnixStream, u32) {
        loop {
            let stream = match self.listener.accept().await {
                Ok((stream, _)) => stream,
                Err(err) => {
                    tracing::warn!(err = %err, "control socket: accept failed");
                    // Out of descriptors, most likely: let some close.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            match stream.peer_cred().map(|cred| cred.uid()) {
                Ok(uid) if uid == self.owner => return (stream, uid),
                Ok(uid) => {
                    tracing::warn!(uid, "control socket: refused a peer that is not its owner")
                }
                Err(err) => {
                    tracing::warn!(err = %err, "control socket: refused a peer without credentials")
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<u32> {
        Ok(self.owner)
    }
}

/// One API call: `method path` with an optional JSON body. Returns the HTTP status and the
/// JSON answer.
pub async fn call(
    socket: &Path,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
    timeout: Duration,
) -> Result<(u16, serde_json::Value), Error> {
    let exchange = async {
        let stream = UnixStream::connect(socket).await.map_err(|err| {
            let why = match err.kind() {
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                    "no host-daemon serves there (start one with `host-daemon serve`)"
                }
                std::io::ErrorKind::PermissionDenied => {
                    "permission denied: the daemon belongs to another user"
                }
                _ => "cannot connect",
            };
            Error::io(format!("{}: {why}", socket.display()), err)
        })?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|err| Error::control("the HTTP handshake", err))?;
        tokio::spawn(connection);
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "host-daemon")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|err| Error::control("the request", err))?;
        let response = sender.send_request(request).await.map_err(|err| {
            let why = "the daemon closed the connection (is it yours?)";
            Error::control(format!("{}: {why}", socket.display()), err)
        })?;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|err| Error::control("reading the answer", err))?
            .to_bytes();
        let json = serde_json::from_slice(&bytes)
            .map_err(|err| Error::control("the daemon's answer is not JSON", err))?;
        Ok((status, json))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| Error::Timeout {
            what: format!("an answer from {}", socket.display()),
            timeout,
        })?
}
