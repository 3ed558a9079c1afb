//! The direct server's HTTP side over TLS, with the operator's certificate (`--tls-cert`,
//! `--tls-key`, e.g. from an ACME client): what makes the browser viewer a secure context for
//! a player on another machine.
//!
//! Connections are admitted as plain HTTP's are (see [`crate::conns`]: bounded in number and
//! idle time); handshakes run in tasks of their own, each bounded in time, so a client that
//! stalls or floods slows nobody else; finished ones are handed to axum as plain streams.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::Error;

use crate::conns::{Conn, Registry};

/// Handshakes finished and not yet taken by axum.
const READY: usize = 64;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The operator's certificate chain and key (PEM files).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerTls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl ServerTls {
    /// A rustls server configuration for HTTP/1.1 from the PEM files.
    pub(crate) fn config(&self) -> Result<Arc<rustls::ServerConfig>, Error> {
        let chain = CertificateDer::pem_file_iter(&self.cert)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| Error::file("--tls-cert", &self.cert, e))?;
        if chain.is_empty() {
            return Err(Error::file(
                "--tls-cert",
                &self.cert,
                "no certificate in it",
            ));
        }
        let key = PrivateKeyDer::from_pem_file(&self.key)
            .map_err(|e| Error::file("--tls-key", &self.key, e))?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::file("--tls-cert", &self.cert, e))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| Error::file("--tls-key", &self.key, e))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// TCP connections, TLS-handshaken, as axum takes them.
pub(crate) struct Listener {
    addr: std::net::SocketAddr,
    ready: mpsc::Receiver<(TlsStream<Conn<TcpStream>>, std::net::SocketAddr)>,
    _accepting: tokio::task::JoinHandle<()>,
}

impl Listener {
    pub(crate) fn new(
        tcp: TcpListener,
        registry: Registry,
        config: Arc<rustls::ServerConfig>,
    ) -> std::io::Result<Self> {
        let addr = tcp.local_addr()?;
        let (done, ready) = mpsc::channel(READY);
        let accepting = tokio::spawn(accept(tcp, registry, TlsAcceptor::from(config), done));
        Ok(Self {
            addr,
            ready,
            _accepting: accepting,
        })
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self._accepting.abort();
    }
}

async fn accept(
    tcp: TcpListener,
    registry: Registry,
    acceptor: TlsAcceptor,
    done: mpsc::Sender<(TlsStream<Conn<TcpStream>>, std::net::SocketAddr)>,
) {
    loop {
        let (stream, peer) = crate::conns::accept(&tcp, &registry).await;
        let (acceptor, done) = (acceptor.clone(), done.clone());
        tokio::spawn(async move {
            if let Ok(Ok(stream)) =
                tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
            {
                let _ = done.send((stream, peer)).await;
            }
        });
    }
}

impl axum::serve::Listener for Listener {
    type Io = TlsStream<Conn<TcpStream>>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(ready) => ready,
            // The accepting task never ends while the listener lives.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.addr)
    }
}
