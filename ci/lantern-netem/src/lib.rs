//! A userspace link emulator for the paths players are on: no root, no netem.
//!
//! [`Proxy`] sits between a client and a server (a relay, or `moq-pub --listen`) on loopback
//! and passes UDP (QUIC) through two [`Link`]s, one a direction, each with loss (random,
//! Gilbert-Elliott bursts, outages), a bottleneck (a fixed rate, steps and ramps, a mahimahi
//! trace, a seeded LTE-like walk) with a drop-tail queue, and delay with jitter. One proxy per
//! viewer gives each viewer its own link. TCP on the same port (the relay's certificate
//! fingerprint, the page, `/clock`) is passed through unimpaired.
//!
//! The links are pure state machines on simulated time, tested without sockets; the proxy is
//! their runtime.

mod capacity;
mod link;
mod loss;
mod proxy;
mod units;

use std::path::PathBuf;

pub use capacity::{Capacity, OPPORTUNITY_BYTES, Trace, walk};
pub use link::{Counters, DEFAULT_QUEUE, HEADER_BYTES, Link, LinkConfig};
pub use loss::Loss;
pub use proxy::{Direction, Proxy, Stats, describe};
pub use units::QueueLimit;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A link setting that does not parse or makes no sense.
    #[error("{text:?}: {why}")]
    Spec { text: String, why: String },
    #[error("reading the trace {path}")]
    Trace {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("binding {what} {addr}")]
    Bind {
        what: &'static str,
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the proxy's socket failed")]
    Socket(#[source] std::io::Error),
}

impl Error {
    fn spec(text: impl Into<String>, why: impl Into<String>) -> Self {
        Self::Spec {
            text: text.into(),
            why: why.into(),
        }
    }
}
