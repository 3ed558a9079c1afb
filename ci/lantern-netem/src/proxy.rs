//! The links' runtime: a UDP proxy on loopback. Each client address gets its own socket
//! towards the server (so the server sees one peer per client, as it would across a real
//! path); client → server packets go through the `up` link, server → client through `down`.
//! Both links are shared by every client of the proxy, as one access link would be.
//!
//! TCP on the same port is passed through for plain HTTP (a relay's certificate
//! fingerprint, the page, `/clock`), but WebSocket upgrades are refused: moq-tokio falls back
//! to WebSocket when QUIC is slow to connect, and a fallback around the emulated link would
//! measure a path nobody asked for.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::link::{Counters, Link, LinkConfig};
use crate::{Error, capacity::Capacity};

/// Clients (source addresses) a proxy serves at once; QUIC reconnects use new ports, so old
/// flows are let go after [`FLOW_IDLE`].
const MAX_FLOWS: usize = 256;
const FLOW_IDLE: Duration = Duration::from_secs(30);
/// Server → client packets waiting to enter the down link (a bound, never reached on
/// loopback unless the proxy's task starves).
const FROM_SERVER_QUEUE: usize = 8192;
const MAX_TCP: usize = 64;

type Packet = (SocketAddr, Vec<u8>);

/// One direction's figures.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Direction {
    #[serde(flatten)]
    pub counters: Counters,
    pub queue_packets: usize,
    pub queue_bytes: usize,
    /// What the bottleneck could have carried since the first packet (None: no bottleneck).
    pub capacity_bits: Option<u64>,
}

/// What a proxy has done since it started.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Stats {
    /// Time since the first client packet (the links' clock; 0 before it).
    pub elapsed_us: u64,
    pub up: Direction,
    pub down: Direction,
    pub flows: usize,
    /// Clients turned away because [`MAX_FLOWS`] were open.
    pub flows_refused: u64,
    /// Packets the proxy itself could not pass on (a full socket or queue).
    pub proxy_drops: u64,
}

/// A running proxy; it stops when dropped or when its token is cancelled.
pub struct Proxy {
    addr: SocketAddr,
    down: Arc<AtomicBool>,
    stats: Arc<Mutex<Stats>>,
    cancel: CancellationToken,
    task: JoinHandle<Result<(), Error>>,
}

/// The UDP socket on `listen` and, with `tcp`, a TCP listener on the same port. When the
/// port is left to the system, the one it picks for UDP may be taken for TCP by another
/// program: then another port is tried (a few times) rather than failing.
async fn bind_pair(
    listen: SocketAddr,
    tcp: bool,
) -> Result<(UdpSocket, Option<TcpListener>), Error> {
    let bind = |what, addr, source| Error::Bind { what, addr, source };
    let mut attempts = if listen.port() == 0 { 16 } else { 1 };
    loop {
        let socket = UdpSocket::bind(listen)
            .await
            .map_err(|e| bind("UDP", listen, e))?;
        if !tcp {
            return Ok((socket, None));
        }
        let addr = socket.local_addr().map_err(Error::Socket)?;
        attempts -= 1;
        match TcpListener::bind(addr).await {
            Ok(listener) => return Ok((socket, Some(listener))),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && attempts > 0 => continue,
            Err(e) => return Err(bind("TCP", addr, e)),
        }
    }
}

impl Proxy {
    /// Listen on `listen` (port 0 picks one) and pass traffic to `target` through links `up`
    /// (client → server) and `down`; with `tcp`, also pass TCP on the same port, unimpaired.
    pub async fn start(
        listen: SocketAddr,
        target: SocketAddr,
        up: LinkConfig,
        down: LinkConfig,
        tcp: bool,
    ) -> Result<Self, Error> {
        let (socket, listener) = bind_pair(listen, tcp).await?;
        let addr = socket.local_addr().map_err(Error::Socket)?;
        let cancel = CancellationToken::new();
        if let Some(listener) = listener {
            tokio::spawn(pass_tcp(listener, target, cancel.clone()));
        }
        let down_flag = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Mutex::new(Stats::default()));
        let state = State {
            send: sender(&socket)?,
            socket: Arc::new(socket),
            target,
            up: Link::new(up),
            down: Link::new(down),
            flows: HashMap::new(),
            stats: Stats::default(),
            cancel: cancel.clone(),
        };
        let task = tokio::spawn(state.run(down_flag.clone(), stats.clone()));
        Ok(Self {
            addr,
            down: down_flag,
            stats,
            cancel,
            task,
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Take the path down both ways (everything entering is lost) or bring it back.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::Relaxed);
    }

    pub fn stats(&self) -> Stats {
        *self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stop, and say whether the proxy had failed.
    pub async fn stop(mut self) -> Result<(), Error> {
        self.cancel.cancel();
        (&mut self.task).await.unwrap_or(Ok(()))
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// A socket's sending half as the kernel's non-blocking socket: a packet the links release
/// goes out at once or (a full buffer) is counted as dropped. tokio's own `try_send` would
/// refuse until its reactor had seen the socket writable, losing each flow's first packet.
fn sender(socket: &UdpSocket) -> Result<std::net::UdpSocket, Error> {
    let fd = socket2::SockRef::from(socket);
    let sender: std::net::UdpSocket = fd.try_clone().map_err(Error::Socket)?.into();
    sender.set_nonblocking(true).map_err(Error::Socket)?;
    Ok(sender)
}

struct Flow {
    send: std::net::UdpSocket,
    last_seen: Instant,
    reader: JoinHandle<()>,
}

struct State {
    socket: Arc<UdpSocket>,
    send: std::net::UdpSocket,
    target: SocketAddr,
    up: Link<Packet>,
    down: Link<Packet>,
    flows: HashMap<SocketAddr, Flow>,
    stats: Stats,
    cancel: CancellationToken,
}

impl State {
    async fn run(mut self, down: Arc<AtomicBool>, shared: Arc<Mutex<Stats>>) -> Result<(), Error> {
        // The links' clock starts at the first client packet: "outage=8s+3s" and a rate
        // schedule mean 8 s into the path's use, however long the client took to start.
        let mut start: Option<Instant> = None;
        let since = |start: Option<Instant>| start.map_or(0, |s| s.elapsed().as_micros() as u64);
        let (to_down, mut from_server) = mpsc::channel::<Packet>(FROM_SERVER_QUEUE);
        let mut buf = vec![0u8; 65_536];
        // Also refreshes the shared figures when no packet moves.
        let mut sweep = tokio::time::interval(Duration::from_millis(250));
        let result = loop {
            let wake = self
                .up
                .next_wake()
                .into_iter()
                .chain(self.down.next_wake())
                .min();
            let sleep = async {
                match (start, wake) {
                    (Some(start), Some(us)) => {
                        tokio::time::sleep_until((start + Duration::from_micros(us)).into()).await
                    }
                    _ => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = self.cancel.cancelled() => break Ok(()),
                received = self.socket.recv_from(&mut buf) => match received {
                    Ok((n, client)) => {
                        start.get_or_insert_with(Instant::now);
                        let now = since(start);
                        self.up.set_down(down.load(Ordering::Relaxed));
                        if self.flow(client, &to_down).await {
                            self.up.send(now, n, (client, buf[..n].to_vec()));
                        }
                    }
                    // A client's ICMP "port unreachable" surfaces here on Linux: not ours.
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
                    Err(e) => break Err(Error::Socket(e)),
                },
                Some((client, data)) = from_server.recv() => {
                    let now = since(start);
                    self.down.set_down(down.load(Ordering::Relaxed));
                    self.down.send(now, data.len(), (client, data));
                }
                _ = sweep.tick() => self.sweep(),
                _ = sleep => {}
            }
            let now = since(start);
            self.deliver(now);
            self.stats.elapsed_us = now;
            *shared.lock().unwrap_or_else(PoisonError::into_inner) = self.snapshot(now);
        };
        for flow in self.flows.values() {
            flow.reader.abort();
        }
        result
    }

    /// The flow of `client`, made on its first packet; false when no more can be made.
    async fn flow(&mut self, client: SocketAddr, to_down: &mpsc::Sender<Packet>) -> bool {
        if let Some(flow) = self.flows.get_mut(&client) {
            flow.last_seen = Instant::now();
            return true;
        }
        if self.flows.len() >= MAX_FLOWS {
            self.stats.flows_refused += 1;
            return false;
        }
        let local: SocketAddr = if self.target.is_ipv4() {
            ([127, 0, 0, 1], 0).into()
        } else {
            (std::net::Ipv6Addr::LOCALHOST, 0).into()
        };
        let made = match UdpSocket::bind(local).await {
            Ok(s) if s.connect(self.target).await.is_ok() => sender(&s).map(|send| (s, send)),
            _ => Err(Error::Socket(std::io::ErrorKind::AddrNotAvailable.into())),
        };
        let Ok((socket, send)) = made else {
            self.stats.flows_refused += 1;
            return false;
        };
        let reader = tokio::spawn(read_server(socket, client, to_down.clone()));
        self.flows.insert(
            client,
            Flow {
                send,
                last_seen: Instant::now(),
                reader,
            },
        );
        true
    }

    fn sweep(&mut self) {
        self.flows.retain(|_, flow| {
            let live = flow.last_seen.elapsed() < FLOW_IDLE;
            if !live {
                flow.reader.abort();
            }
            live
        });
    }

    fn deliver(&mut self, now: u64) {
        while let Some((client, data)) = self.up.poll(now) {
            let sent = self
                .flows
                .get(&client)
                .is_some_and(|flow| flow.send.send(&data).is_ok());
            self.stats.proxy_drops += u64::from(!sent);
        }
        while let Some((client, data)) = self.down.poll(now) {
            let sent = self.send.send_to(&data, client).is_ok();
            self.stats.proxy_drops += u64::from(!sent);
        }
    }

    fn snapshot(&self, now: u64) -> Stats {
        let direction = |link: &Link<Packet>| {
            let (queue_packets, queue_bytes) = link.queued();
            Direction {
                counters: link.counters(),
                queue_packets,
                queue_bytes,
                capacity_bits: link.config().capacity.bits_between(0, now),
            }
        };
        Stats {
            up: direction(&self.up),
            down: direction(&self.down),
            flows: self.flows.len(),
            ..self.stats
        }
    }
}

/// The server's packets for `client`, into the down link.
async fn read_server(socket: UdpSocket, client: SocketAddr, to_down: mpsc::Sender<Packet>) {
    let mut buf = vec![0u8; 65_536];
    loop {
        match socket.recv(&mut buf).await {
            Ok(n) => {
                // A full hand-off loses the packet, as a full NIC ring would.
                let _ = to_down.try_send((client, buf[..n].to_vec()));
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
            Err(_) => return,
        }
    }
}

/// TCP on the proxy's port, passed to the server's as it is.
async fn pass_tcp(listener: TcpListener, target: SocketAddr, cancel: CancellationToken) {
    let slots = Arc::new(Semaphore::new(MAX_TCP));
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((mut client, _)) = accepted else {
            continue;
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            continue;
        };
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let pass = async {
                let head = request_head(&mut client).await?;
                if is_websocket(&head) {
                    return None;
                }
                let mut server = TcpStream::connect(target).await.ok()?;
                server.write_all(&head).await.ok()?;
                tokio::io::copy_bidirectional(&mut client, &mut server)
                    .await
                    .ok()
            };
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = pass => {}
            }
        });
    }
}

/// The start of an HTTP request, up to the end of its headers (at most 16 kB, within 10 s).
async fn request_head(client: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::with_capacity(1024);
    let read = async {
        let mut buf = [0u8; 2048];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16_384 {
            let n = client.read(&mut buf).await.ok().filter(|&n| n > 0)?;
            head.extend_from_slice(&buf[..n]);
        }
        Some(())
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .ok()??;
    Some(head)
}

/// Whether an HTTP request head asks to become a WebSocket.
fn is_websocket(head: &[u8]) -> bool {
    String::from_utf8_lossy(head).lines().any(|line| {
        let line = line.to_ascii_lowercase();
        line.starts_with("upgrade:") && line.contains("websocket")
    })
}

/// What a link's capacity is, in a few words, for the proxy's first line.
pub fn describe(config: &LinkConfig) -> String {
    let rate = match &config.capacity {
        Capacity::Unlimited => "no bottleneck".to_string(),
        other => format!(
            "{:.2} Mbit/s mean",
            other.mean_bps().unwrap_or_default() / 1e6
        ),
    };
    format!(
        "{rate}, delay {} ± {} ms, loss {:.1} %, {} outage(s)",
        config.delay_us / 1000,
        config.jitter_us / 1000,
        config.loss.mean() * 100.0,
        config.outages.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A UDP echo server on loopback.
    async fn echo() -> SocketAddr {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            while let Ok((n, from)) = socket.recv_from(&mut buf).await {
                let _ = socket.send_to(&buf[..n], from).await;
            }
        });
        addr
    }

    async fn exchange(client: &UdpSocket, proxy: SocketAddr, what: &[u8]) -> Option<Vec<u8>> {
        client.send_to(what, proxy).await.unwrap();
        let mut buf = [0u8; 2048];
        match tokio::time::timeout(Duration::from_secs(2), client.recv(&mut buf)).await {
            Ok(Ok(n)) => Some(buf[..n].to_vec()),
            _ => None,
        }
    }

    #[test]
    fn websocket_upgrades_are_told_from_plain_requests() {
        let upgrade =
            b"GET /anon HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n\r\n";
        let plain = b"GET /certificate.sha256 HTTP/1.1\r\nHost: x\r\n\r\n";
        assert!(is_websocket(upgrade));
        assert!(!is_websocket(plain));
    }

    #[tokio::test]
    async fn packets_cross_both_links_and_an_outage_stops_them() {
        let server = echo().await;
        let link = LinkConfig::parse("delay=5ms").unwrap();
        let proxy = Proxy::start(
            "127.0.0.1:0".parse().unwrap(),
            server,
            link.clone(),
            link,
            false,
        )
        .await
        .unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        assert_eq!(
            exchange(&client, proxy.addr(), b"hello").await.as_deref(),
            Some(&b"hello"[..])
        );
        proxy.set_down(true);
        assert_eq!(exchange(&client, proxy.addr(), b"lost").await, None);
        proxy.set_down(false);
        assert_eq!(
            exchange(&client, proxy.addr(), b"back").await.as_deref(),
            Some(&b"back"[..])
        );
        let stats = proxy.stats();
        assert_eq!(stats.up.counters.lost_outage, 1);
        assert_eq!(stats.up.counters.delivered, 2);
        assert_eq!(stats.down.counters.delivered, 2);
        assert_eq!(stats.flows, 1);
        assert_eq!(
            stats.proxy_drops, 0,
            "a new flow's first packet goes through"
        );
        proxy.stop().await.unwrap();
    }
}
