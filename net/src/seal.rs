//! Sealed datagrams: what a granted viewer sends on its `input` and `feedback` tracks,
//! readable and forgeable by nobody but the holder of the grant's secret and the host that
//! made it. A relay, or anyone subscribed to the viewer's path, sees only ciphertext, and
//! a recorded datagram played again is refused (see [`crate::grant::Grants::open`]).
//!
//! Each track has its own AES-256-GCM key, `HMAC-SHA256(secret, "lantern seal v1\0" ‖
//! track)`. A sealed datagram is
//!
//! ```text
//! version u8 = 0x81 · epoch [u8; 4] · counter u64 (big-endian) · ciphertext · tag [u8; 16]
//! ```
//!
//! The nonce is epoch ‖ counter. The epoch is random per sender (a page reload, a second
//! tab or a reconnect draws a new one); the counter is the send time in µs since the UNIX
//! epoch, made strictly increasing, so it grows across reloads and reconnects too and the
//! host can keep one replay window per grant: a datagram whose counter is not above the
//! newest it took is refused. The associated data is the header and the viewer's path, so
//! a datagram cannot be moved to another viewer or another track.
//!
//! The first byte tells a sealed datagram (0x81) from a plain one (an input message's
//! version is 2, a feedback report's 1): a session open to everyone reads plain ones.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hmac;
use rand::Rng;

/// The first byte of a sealed datagram.
pub const VERSION: u8 = 0x81;
const HEADER: usize = 1 + 4 + 8;
const TAG: usize = 16;
/// What sealing adds to a datagram.
pub const OVERHEAD: usize = HEADER + TAG;
/// The largest sealed datagram opened: the largest input message sealed. Anything larger is
/// refused before any work is spent on it.
pub const MAX_SEALED: usize = lantern_proto::input::MAX_DATAGRAM + OVERHEAD;

/// Which of a viewer's tracks a datagram is for: each has its own key and replay window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Track {
    Input,
    Feedback,
}

impl Track {
    pub fn name(self) -> &'static str {
        match self {
            Self::Input => crate::input::INPUT_TRACK,
            Self::Feedback => crate::input::FEEDBACK_TRACK,
        }
    }
}

/// Why a datagram was not opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unsealed {
    /// A plain datagram where a sealed one was due.
    Plain,
    /// Too short, or an unknown version.
    Malformed,
    /// The tag does not check: another key, another path or track, or altered bytes.
    Forged,
}

/// A track's key, from the grant's secret.
fn track_key(secret: &[u8; 32], track: Track) -> LessSafeKey {
    let hmac_key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut label = b"lantern seal v1\0".to_vec();
    label.extend_from_slice(track.name().as_bytes());
    let key = hmac::sign(&hmac_key, &label);
    // An HMAC-SHA256 tag is 32 bytes: AES-256's key length, so this cannot fail.
    let key = UnboundKey::new(&AES_256_GCM, key.as_ref()).expect("a 32-byte AES-256 key");
    LessSafeKey::new(key)
}

fn aad(header: &[u8], path: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(header.len() + path.len());
    aad.extend_from_slice(header);
    aad.extend_from_slice(path.as_bytes());
    aad
}

/// The viewer's end: seals one track's datagrams.
pub struct Sealer {
    key: LessSafeKey,
    epoch: [u8; 4],
    counter: u64,
    path: String,
}

impl Sealer {
    /// For `track` of the viewer broadcast at `path`, with a fresh random epoch.
    pub fn new(secret: &[u8; 32], track: Track, path: &str) -> Self {
        Self {
            key: track_key(secret, track),
            epoch: rand::rng().random(),
            counter: 0,
            path: path.to_string(),
        }
    }

    /// Seal `plain`, sent at `now_us` (µs since the UNIX epoch).
    pub fn seal(&mut self, plain: &[u8], now_us: u64) -> Vec<u8> {
        self.counter = now_us.max(self.counter + 1);
        let mut out = Vec::with_capacity(plain.len() + OVERHEAD);
        out.push(VERSION);
        out.extend_from_slice(&self.epoch);
        out.extend_from_slice(&self.counter.to_be_bytes());
        let aad = aad(&out, &self.path);
        let mut body = plain.to_vec();
        // Sealing fails only for inputs over AES-GCM's 64 GB limit.
        self.key
            .seal_in_place_append_tag(nonce(&out), Aad::from(&aad), &mut body)
            .expect("a datagram is far below AES-GCM's limit");
        out.extend_from_slice(&body);
        out
    }
}

/// The host's end: opens one track's datagrams (the replay window is the caller's, kept for
/// the grant's lifetime).
pub struct Opener {
    key: LessSafeKey,
    path: String,
}

/// An opened datagram.
#[derive(Debug, PartialEq, Eq)]
pub struct Opened {
    /// Its sender's epoch (random per sender).
    pub epoch: [u8; 4],
    pub counter: u64,
    pub plain: Vec<u8>,
}

impl Opener {
    pub fn new(secret: &[u8; 32], track: Track, path: &str) -> Self {
        Self {
            key: track_key(secret, track),
            path: path.to_string(),
        }
    }

    pub fn open(&self, datagram: &[u8]) -> Result<Opened, Unsealed> {
        match datagram.first() {
            Some(&VERSION) => {}
            Some(&version) if version & 0x80 == 0 => return Err(Unsealed::Plain),
            _ => return Err(Unsealed::Malformed),
        }
        if !(OVERHEAD..=MAX_SEALED).contains(&datagram.len()) {
            return Err(Unsealed::Malformed);
        }
        let (header, body) = datagram.split_at(HEADER);
        let aad = aad(header, &self.path);
        let mut body = body.to_vec();
        let plain = self
            .key
            .open_in_place(nonce(header), Aad::from(&aad), &mut body)
            .map_err(|_| Unsealed::Forged)?;
        let len = plain.len();
        body.truncate(len);
        let epoch = header[1..5].try_into().expect("4 bytes");
        let counter = u64::from_be_bytes(header[5..HEADER].try_into().expect("8 bytes"));
        Ok(Opened {
            epoch,
            counter,
            plain: body,
        })
    }
}

/// The nonce of a header: its epoch and counter.
fn nonce(header: &[u8]) -> Nonce {
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&header[1..HEADER]);
    Nonce::assume_unique_for_key(nonce)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = "game/viewer/alice";

    #[test]
    fn a_sealed_datagram_opens_only_with_its_key_path_and_track() {
        let secret = [7u8; 32];
        let mut sealer = Sealer::new(&secret, Track::Input, PATH);
        let sealed = sealer.seal(b"press A", 1_000);
        assert_eq!(sealed.len(), 7 + OVERHEAD);
        assert!(!sealed.windows(7).any(|w| w == b"press A"), "no plain text");
        let opened = Opener::new(&secret, Track::Input, PATH)
            .open(&sealed)
            .unwrap();
        assert_eq!(opened.plain, b"press A");
        assert_eq!(opened.counter, 1_000);
        let forged = Err(Unsealed::Forged);
        assert_eq!(
            Opener::new(&[8; 32], Track::Input, PATH).open(&sealed),
            forged
        );
        assert_eq!(
            Opener::new(&secret, Track::Feedback, PATH).open(&sealed),
            forged
        );
        let elsewhere = Opener::new(&secret, Track::Input, "game/viewer/mallory");
        assert_eq!(elsewhere.open(&sealed), forged);
        // Any bit changed, header or body, breaks the tag.
        let opener = Opener::new(&secret, Track::Input, PATH);
        for i in 1..sealed.len() {
            let mut altered = sealed.clone();
            altered[i] ^= 1;
            assert_eq!(opener.open(&altered), forged, "byte {i}");
        }
    }

    #[test]
    fn counters_rise_strictly_and_epochs_differ() {
        let secret = [1u8; 32];
        let mut a = Sealer::new(&secret, Track::Input, PATH);
        let opener = Opener::new(&secret, Track::Input, PATH);
        let counter = |d: &[u8]| opener.open(d).unwrap().counter;
        let first = counter(&a.seal(b"x", 5_000));
        // The same µs, or a clock that stepped back: still later than the last.
        let second = counter(&a.seal(b"x", 5_000));
        let third = counter(&a.seal(b"x", 10));
        assert_eq!((first, second, third), (5_000, 5_001, 5_002));
        let b = Sealer::new(&secret, Track::Input, PATH);
        assert_ne!(a.epoch, b.epoch, "a fresh epoch per sender");
    }

    #[test]
    fn plain_short_and_unknown_datagrams_are_told_apart() {
        let opener = Opener::new(&[0; 32], Track::Input, PATH);
        assert_eq!(opener.open(&[2, 0, 0]), Err(Unsealed::Plain));
        assert_eq!(opener.open(&[]), Err(Unsealed::Malformed));
        assert_eq!(opener.open(&[0xFF; 40]), Err(Unsealed::Malformed));
        assert_eq!(opener.open(&[VERSION; 20]), Err(Unsealed::Malformed));
        // Sealed with the right key, but larger than any message: refused all the same.
        let mut sealer = Sealer::new(&[0; 32], Track::Input, PATH);
        let largest = sealer.seal(&[0; lantern_proto::input::MAX_DATAGRAM], 1);
        assert!(opener.open(&largest).is_ok());
        let larger = sealer.seal(&[0; lantern_proto::input::MAX_DATAGRAM + 1], 1);
        assert_eq!(opener.open(&larger), Err(Unsealed::Malformed));
    }
}
