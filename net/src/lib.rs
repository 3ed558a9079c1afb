//! lantern-net: the MoQ session set-up both ends of Lantern share.
//!
//! - [`catalog`]: a broadcast's hang catalog, checked before hang parses it.
//! - [`connect`]: the connection flags (`--url`, TLS trust, `--token`, protocol versions,
//!   `--timeout`) and dialing a relay or a direct server.
//! - [`listen`]: the direct server (`--listen`), which serves broadcasts to subscribers with no
//!   relay in between, and publishes its certificate fingerprint as moq-relay does.
//! - [`web`]: the browser viewer's built files, which the direct server serves at `/`.
//! - [`grant`]: input grants, the signed tokens that let a viewer's input be injected, and
//!   [`seal`]: the sealed datagrams a granted viewer sends.
//! - [`input`]: the input channel's transport, viewer broadcasts found by announcement.
//! - [`record`]: a broadcast written as it arrives into fragmented MP4, without re-encoding.
//!
//! It knows nothing about media: broadcasts are opaque here (a recording copies their
//! tracks into MP4 through moq-mux, never decoding them).

pub mod catalog;
pub mod connect;
mod conns;
mod error;
pub mod grant;
mod https;
pub mod input;
pub mod listen;
pub mod record;
pub mod seal;
mod sessions;
pub mod web;

pub use connect::{ConnectArgs, Redial, Relays, Replaced, close, established, redacted, refused};
pub use error::Error;
pub use listen::Listener;
