//! The direct server's TCP connections (the certificate fingerprint, the clock, the browser
//! viewer), bounded so that strangers cannot starve it: at most [`MAX_CONNECTIONS`] open at
//! once, each closed after [`IDLE_TIMEOUT`] without a byte either way (a request's headers
//! that never finish, a keep-alive nobody uses, a client that stops reading). At the bound, a
//! new connection closes the one idle the longest, so a thousand idle connections cannot
//! keep a player out: the player's own connection is never the idlest while it asks. Out of
//! descriptors, the idlest goes too.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// TCP connections open at once.
pub(crate) const MAX_CONNECTIONS: usize = 512;
/// How long a connection may pass without a byte either way.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(15);

/// The open connections, with when each last moved.
#[derive(Clone)]
pub(crate) struct Registry {
    inner: Arc<Mutex<Open>>,
    max: usize,
    idle_timeout: Duration,
}

struct Open {
    next_id: u64,
    epoch: Instant,
    conns: HashMap<u64, Entry>,
    /// Connections closed to make room, and for idling.
    evicted: u64,
}

struct Entry {
    /// When the connection last moved, in ms since `epoch`.
    moved_ms: Arc<AtomicU64>,
    evict: CancellationToken,
}

impl Registry {
    pub(crate) fn new(max: usize, idle_timeout: Duration) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Open {
                next_id: 0,
                epoch: Instant::now(),
                conns: HashMap::new(),
                evicted: 0,
            })),
            max: max.max(1),
            idle_timeout,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        // Plain bookkeeping: a panic elsewhere leaves it usable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Connections open now.
    #[cfg(test)]
    pub(crate) fn open(&self) -> usize {
        self.lock().conns.len()
    }

    /// Connections closed to make room so far.
    #[cfg(test)]
    pub(crate) fn evicted(&self) -> u64 {
        self.lock().evicted
    }

    /// Take `io` in; at the bound, the connection idle the longest is closed first.
    pub(crate) fn admit<S>(&self, io: S) -> Conn<S> {
        let mut open = self.lock();
        if open.conns.len() >= self.max {
            evict_idlest(&mut open);
        }
        let id = open.next_id;
        open.next_id += 1;
        let moved_ms = Arc::new(AtomicU64::new(open.epoch.elapsed().as_millis() as u64));
        let evict = CancellationToken::new();
        open.conns.insert(
            id,
            Entry {
                moved_ms: moved_ms.clone(),
                evict: evict.clone(),
            },
        );
        Conn {
            io,
            id,
            registry: self.clone(),
            epoch: open.epoch,
            moved_ms,
            idle: Box::pin(tokio::time::sleep(self.idle_timeout)),
            evicted: Box::pin(evict.cancelled_owned()),
        }
    }

    /// Close the connection idle the longest (out of descriptors, say).
    pub(crate) fn evict_idlest(&self) {
        evict_idlest(&mut self.lock());
    }
}

fn evict_idlest(open: &mut Open) {
    let idlest = open
        .conns
        .iter()
        .min_by_key(|(_, entry)| entry.moved_ms.load(Ordering::Relaxed))
        .map(|(id, _)| *id);
    if let Some(entry) = idlest.and_then(|id| open.conns.remove(&id)) {
        entry.evict.cancel();
        open.evicted += 1;
        tracing::debug!(
            evicted = open.evicted,
            "closed the idlest connection to make room"
        );
    }
}

/// Accept the next connection on `tcp` into `registry`. Out of descriptors (or any other
/// failure to accept), the idlest connection is let go and the accept tried again shortly.
pub(crate) async fn accept(
    tcp: &TcpListener,
    registry: &Registry,
) -> (Conn<TcpStream>, SocketAddr) {
    loop {
        match tcp.accept().await {
            Ok((stream, peer)) => {
                // Small requests and answers: no waiting to fill a segment.
                let _ = stream.set_nodelay(true);
                return (registry.admit(stream), peer);
            }
            Err(err) => {
                tracing::debug!(%err, "cannot accept a connection: closing the idlest");
                registry.evict_idlest();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// One admitted connection: `S` with an idle deadline, closed when evicted.
pub(crate) struct Conn<S> {
    io: S,
    id: u64,
    registry: Registry,
    epoch: Instant,
    moved_ms: Arc<AtomicU64>,
    idle: Pin<Box<Sleep>>,
    evicted: Pin<Box<WaitForCancellationFutureOwned>>,
}

impl<S> Conn<S> {
    fn moved(&mut self) {
        let now = Instant::now();
        self.moved_ms.store(
            now.duration_since(self.epoch).as_millis() as u64,
            Ordering::Relaxed,
        );
        self.idle.as_mut().reset(now + self.registry.idle_timeout);
    }

    /// Whether the connection must end: evicted, or idle too long. Registers the task to be
    /// woken for either.
    fn ended(&mut self, cx: &mut Context<'_>) -> Option<std::io::Error> {
        use std::io::{Error, ErrorKind};
        if self.evicted.as_mut().poll(cx).is_ready() {
            return Some(Error::new(
                ErrorKind::ConnectionAborted,
                "closed to make room for another connection",
            ));
        }
        if self.idle.as_mut().poll(cx).is_ready() {
            return Some(Error::new(ErrorKind::TimedOut, "idle too long"));
        }
        None
    }

    fn pending_or_ended<T>(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<T>> {
        match self.ended(cx) {
            Some(err) => Poll::Ready(Err(err)),
            None => Poll::Pending,
        }
    }
}

impl<S> Drop for Conn<S> {
    fn drop(&mut self) {
        self.registry.lock().conns.remove(&self.id);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Conn<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if let Some(err) = self.ended(cx) {
            return Poll::Ready(Err(err));
        }
        let before = buf.filled().len();
        match Pin::new(&mut self.io).poll_read(cx, buf) {
            Poll::Pending => self.pending_or_ended(cx),
            Poll::Ready(res) => {
                if buf.filled().len() > before {
                    self.moved();
                }
                Poll::Ready(res)
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Conn<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if let Some(err) = self.ended(cx) {
            return Poll::Ready(Err(err));
        }
        match Pin::new(&mut self.io).poll_write(cx, data) {
            Poll::Pending => self.pending_or_ended(cx),
            Poll::Ready(res) => {
                if matches!(res, Ok(n) if n > 0) {
                    self.moved();
                }
                Poll::Ready(res)
            }
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match Pin::new(&mut self.io).poll_flush(cx) {
            Poll::Pending => self.pending_or_ended(cx),
            ready => ready,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        ready!(Pin::new(&mut self.io).poll_shutdown(cx))?;
        Poll::Ready(Ok(()))
    }
}

/// Plain HTTP: admitted connections as axum takes them.
pub(crate) struct Plain {
    pub(crate) tcp: TcpListener,
    pub(crate) registry: Registry,
}

impl axum::serve::Listener for Plain {
    type Io = Conn<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        accept(&self.tcp, &self.registry).await
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn pair(listener: &TcpListener, registry: &Registry) -> (TcpStream, Conn<TcpStream>) {
        let addr = listener.local_addr().unwrap();
        let (client, accepted) = tokio::join!(TcpStream::connect(addr), accept(listener, registry));
        (client.unwrap(), accepted.0)
    }

    /// Enough for the millisecond clock of "last moved" to tell connections apart.
    async fn tick() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    #[tokio::test]
    async fn at_the_bound_the_idlest_connection_makes_room_and_a_busy_one_stays() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let registry = Registry::new(3, Duration::from_secs(3600));
        let (_c0, mut idle) = pair(&listener, &registry).await;
        tick().await;
        let (mut c1, mut busy) = pair(&listener, &registry).await;
        tick().await;
        let (_c2, _third) = pair(&listener, &registry).await;
        tick().await;
        // The second one moves: now the first is the idlest, the busy one the latest to move.
        c1.write_all(b"GET").await.unwrap();
        let mut got = [0; 3];
        busy.read_exact(&mut got).await.unwrap();
        assert_eq!(registry.open(), 3);

        let (_c3, _fourth) = pair(&listener, &registry).await;
        assert_eq!((registry.open(), registry.evicted()), (3, 1));
        let err = idle.read(&mut got).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionAborted);
        // The busy one still reads.
        c1.write_all(b"!").await.unwrap();
        assert_eq!(busy.read(&mut got).await.unwrap(), 1);
        drop(idle);
        assert_eq!(registry.open(), 3);
    }

    #[tokio::test]
    async fn a_connection_that_sends_nothing_is_closed_and_every_byte_moves_the_deadline() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let registry = Registry::new(8, Duration::from_millis(300));
        let (mut talker, mut talks) = pair(&listener, &registry).await;
        let (_quiet, mut silent) = pair(&listener, &registry).await;
        let mut got = [0; 1];
        let before = talks.idle.deadline();
        tick().await;
        talker.write_all(b"x").await.unwrap();
        talks.read_exact(&mut got).await.unwrap();
        assert!(talks.idle.deadline() > before);
        let before = talks.idle.deadline();
        tick().await;
        talks.write_all(b"y").await.unwrap();
        assert!(talks.idle.deadline() > before);
        let err = silent.read(&mut got).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        drop(silent);
        assert_eq!(registry.open(), 1);
    }
}
