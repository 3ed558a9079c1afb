//! Input grants: which viewers' input a host injects, and the keys that seal it.
//!
//! A grant has two parts. The *token* is a JWT (HS256, through the jsonwebtoken crate) that
//! the host signs with a key of its own, made fresh for each session and never sent
//! anywhere: it names the session (`aud`), the viewer (`sub`, which is also the viewer's
//! broadcast path `<session>/viewer/<sub>`), the grant (`jti`) and an expiry (`exp`). The
//! *secret* is `HMAC-SHA256(seal key, jti)`, 32 bytes that only the host and the player
//! know. A player holds both as one string, its [`Credential`], `TOKEN~SECRET` (the secret
//! in hex); it publishes the token on its broadcast's `grant` track, which anyone on the
//! path may read, and seals every input and feedback datagram with keys from the secret
//! (see [`crate::seal`]), which never goes on the wire.
//!
//! The host checks the token's signature, session, viewer and expiry, that it issued the
//! grant and has not revoked it, then opens each datagram with the grant's keys and keeps
//! one replay window per grant and track for the grant's lifetime, across re-announces and
//! reconnects: a token read off a relay cannot seal, and a recorded datagram played again
//! is refused.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::Rng;

use crate::Error;
use crate::seal::{Opener, Sealer, Track, Unsealed};

const ISSUER: &str = "lantern-host";
/// How long a grant lasts unless asked otherwise: one evening of play.
pub const DEFAULT_TTL: Duration = Duration::from_secs(12 * 3600);
/// The longest a grant may last: a week; a player who stays longer gets a new one.
pub const MAX_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Grants one session keeps alive at once (issued, not yet expired).
pub const MAX_LIVE_GRANTS: usize = 4096;
/// Between a credential's token and its secret.
const SEPARATOR: char = '~';

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Claims {
    iss: String,
    aud: String,
    sub: String,
    jti: String,
    iat: u64,
    exp: u64,
}

/// A grant as the host hands it out.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Grant {
    /// What the player holds, `TOKEN~SECRET`: give it to the player only (`moq-sub
    /// --grant`, or the page address's `#grant=`); it never goes on the wire.
    pub credential: String,
    pub viewer: String,
    /// The grant's id, for `ctl revoke`.
    pub id: String,
    /// Seconds since the UNIX epoch.
    pub expires: u64,
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grant")
            .field("viewer", &self.viewer)
            .field("id", &self.id)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

/// A grant as the player holds it: the public token and the secret that seals.
#[derive(Clone)]
pub struct Credential {
    /// The signed claims, published on the `grant` track.
    pub token: String,
    secret: [u8; 32],
    pub viewer: String,
    pub id: String,
    pub expires: u64,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("viewer", &self.viewer)
            .field("id", &self.id)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

impl Credential {
    /// Read `TOKEN~SECRET` without checking the signature (the viewer cannot, and need not:
    /// the host does): it names the viewer's path and carries the secret.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let bad = |why: &str| Error::Config(format!("the input grant is {why}"));
        let (token, secret) = text.trim().split_once(SEPARATOR).ok_or_else(|| {
            bad("only a token, without its secret part (TOKEN~SECRET): ask the host for the whole grant")
        })?;
        let secret = from_hex(secret)
            .ok_or_else(|| bad("not TOKEN~SECRET: its secret is not 64 hex digits"))?;
        let claims = jsonwebtoken::dangerous::insecure_decode::<Claims>(token)
            .map_err(|e| bad(&format!("not a Lantern input grant ({e})")))?
            .claims;
        check_viewer_id(&claims.sub)?;
        Ok(Self {
            token: token.to_string(),
            secret,
            viewer: claims.sub,
            id: claims.jti,
            expires: claims.exp,
        })
    }

    /// Seals `track`'s datagrams for the viewer broadcast at `path`.
    pub fn sealer(&self, track: Track, path: &str) -> Sealer {
        Sealer::new(&self.secret, track, path)
    }
}

/// Why a viewer's grant, or a datagram under it, was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not a JWT at all, or not one of ours in shape.
    Malformed,
    /// The signature does not check out (another key, or altered claims).
    Forged,
    Expired,
    /// Signed by this host for another session, or another viewer path.
    Elsewhere,
    /// Revoked by the host (or not one it issued).
    Revoked,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Forged => "forged",
            Self::Expired => "expired",
            Self::Elsewhere => "elsewhere",
            Self::Revoked => "revoked",
        }
    }
}

/// Why a sealed datagram was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dropped {
    Unsealed(Unsealed),
    /// Its counter is not above the newest taken under this grant: played again.
    Replayed,
    /// The grant was revoked since the viewer joined.
    Revoked,
}

/// A grant the host checked: what opening its viewer's datagrams needs.
pub struct Checked {
    pub id: String,
    /// Seconds since the UNIX epoch.
    pub expires: u64,
    secret: [u8; 32],
}

impl Checked {
    pub fn opener(&self, track: Track, path: &str) -> Opener {
        Opener::new(&self.secret, track, path)
    }
}

/// What the host knows of a grant it issued.
struct Issued {
    viewer: String,
    expires: u64,
    revoked: bool,
    /// The newest counter taken, per track: the replay window.
    newest: HashMap<Track, u64>,
    /// The senders (seal epochs, per track) whose datagrams were taken, newest last.
    senders: std::collections::VecDeque<(Track, [u8; 4])>,
}

/// The senders a grant remembers: a player's reloads and reconnects, many times over. One
/// forgotten sends its first datagram's repeated presses again, at worst.
const MAX_SENDERS: usize = 16;

/// A datagram opened under a grant.
#[derive(Debug, PartialEq, Eq)]
pub struct Read {
    pub plain: Vec<u8>,
    /// The first taken from its sender (a fresh seal epoch): nothing it sent before was
    /// taken, so what its datagram repeats of earlier ones was lost on the way.
    pub new_sender: bool,
}

/// One session's grant keys, and the grants it issued.
pub struct Grants {
    session: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    seal: hmac::Key,
    issued: Mutex<HashMap<String, Issued>>,
    /// Bumped at each revocation, so that viewers playing under a grant stop at once.
    revocations: tokio::sync::watch::Sender<u64>,
}

impl std::fmt::Debug for Grants {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grants")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl Grants {
    /// Fresh random keys for `session` (its broadcast name).
    pub fn generate(session: &str) -> Self {
        let signing: [u8; 32] = rand::rng().random();
        let sealing: [u8; 32] = rand::rng().random();
        Self {
            session: session.to_string(),
            encoding: EncodingKey::from_secret(&signing),
            decoding: DecodingKey::from_secret(&signing),
            seal: hmac::Key::new(hmac::HMAC_SHA256, &sealing),
            issued: Mutex::new(HashMap::new()),
            revocations: tokio::sync::watch::Sender::new(0),
        }
    }

    fn issued(&self) -> std::sync::MutexGuard<'_, HashMap<String, Issued>> {
        // A map of plain values: a panic elsewhere leaves it usable.
        self.issued.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn secret(&self, id: &str) -> [u8; 32] {
        let mut label = b"lantern grant v1\0".to_vec();
        label.extend_from_slice(id.as_bytes());
        let tag = hmac::sign(&self.seal, &label);
        tag.as_ref().try_into().expect("HMAC-SHA256 is 32 bytes")
    }

    /// Sign a grant for `viewer` (a fresh random id when `None`) lasting `ttl` (at most
    /// [`MAX_TTL`]).
    pub fn issue(&self, viewer: Option<&str>, ttl: Duration) -> Result<Grant, Error> {
        if ttl > MAX_TTL {
            return Err(Error::Config(format!(
                "a grant lasts at most {} s (a week); asked for {} s",
                MAX_TTL.as_secs(),
                ttl.as_secs()
            )));
        }
        let viewer = match viewer {
            Some(viewer) => check_viewer_id(viewer)?.to_string(),
            None => random_viewer_id(),
        };
        let now = unix_now();
        let mut issued = self.issued();
        issued.retain(|_, grant| grant.expires > now);
        if issued.len() >= MAX_LIVE_GRANTS {
            return Err(Error::GrantLimit {
                live: MAX_LIVE_GRANTS,
            });
        }
        let id = format!("{:032x}", rand::rng().random::<u128>());
        let claims = Claims {
            iss: ISSUER.into(),
            aud: self.session.clone(),
            sub: viewer.clone(),
            jti: id.clone(),
            iat: now,
            exp: now.saturating_add(ttl.as_secs().max(1)),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(Error::Grant)?;
        issued.insert(
            id.clone(),
            Issued {
                viewer: viewer.clone(),
                expires: claims.exp,
                revoked: false,
                newest: HashMap::new(),
                senders: std::collections::VecDeque::new(),
            },
        );
        Ok(Grant {
            credential: format!("{token}{SEPARATOR}{}", to_hex(&self.secret(&id))),
            viewer,
            id,
            expires: claims.exp,
        })
    }

    /// Whether `token` lets viewer `viewer` send input into this session now.
    pub fn check(&self, token: &str, viewer: &str) -> Result<Checked, Refusal> {
        let claims = self.verify(token)?;
        if claims.sub != viewer {
            return Err(Refusal::Elsewhere);
        }
        Ok(Checked {
            secret: self.secret(&claims.jti),
            id: claims.jti,
            expires: claims.exp,
        })
    }

    /// The id of the grant `token` is, when it is a live one of this session for any viewer:
    /// what a direct server asks of a newcomer that presents it (see
    /// [`crate::listen::GRANT_PARAM`]).
    pub fn holder(&self, token: &str) -> Result<String, Refusal> {
        self.verify(token).map(|claims| claims.jti)
    }

    /// The claims of `token`: signed by this session's key, for this session, unexpired, and
    /// a grant it issued and did not revoke.
    fn verify(&self, token: &str) -> Result<Claims, Refusal> {
        use jsonwebtoken::errors::ErrorKind;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[&self.session]);
        validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
        validation.leeway = 0;
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature => Refusal::Forged,
                ErrorKind::ExpiredSignature => Refusal::Expired,
                ErrorKind::InvalidAudience | ErrorKind::InvalidIssuer => Refusal::Elsewhere,
                _ => Refusal::Malformed,
            })?
            .claims;
        match self.issued().get(&claims.jti) {
            Some(grant) if !grant.revoked => Ok(claims),
            _ => Err(Refusal::Revoked),
        }
    }

    /// Whether the grant `id` still lets its viewer in (issued, not revoked, not expired).
    pub fn live(&self, id: &str) -> Result<(), Refusal> {
        match self.issued().get(id) {
            None => Err(Refusal::Revoked),
            Some(grant) if grant.revoked => Err(Refusal::Revoked),
            Some(grant) if grant.expires <= unix_now() => Err(Refusal::Expired),
            Some(_) => Ok(()),
        }
    }

    /// Open a datagram of `track` sent under `checked`, and take its counter into the
    /// grant's replay window.
    pub fn open(
        &self,
        checked: &Checked,
        opener: &Opener,
        track: Track,
        datagram: &[u8],
    ) -> Result<Read, Dropped> {
        let opened = opener.open(datagram).map_err(Dropped::Unsealed)?;
        let mut issued = self.issued();
        let grant = match issued.get_mut(&checked.id) {
            Some(grant) if !grant.revoked => grant,
            _ => return Err(Dropped::Revoked),
        };
        let newest = grant.newest.entry(track).or_insert(0);
        if opened.counter <= *newest {
            return Err(Dropped::Replayed);
        }
        *newest = opened.counter;
        let sender = (track, opened.epoch);
        let new_sender = !grant.senders.contains(&sender);
        if new_sender {
            if grant.senders.len() == MAX_SENDERS {
                grant.senders.pop_front();
            }
            grant.senders.push_back(sender);
        }
        Ok(Read {
            plain: opened.plain,
            new_sender,
        })
    }

    /// Changes at each revocation: a viewer playing under a grant checks it is
    /// [`live`](Self::live) then, not only on its next tick.
    pub fn revocations(&self) -> tokio::sync::watch::Receiver<u64> {
        self.revocations.subscribe()
    }

    fn tell_viewers(&self, count: usize) -> usize {
        if count > 0 {
            self.revocations.send_modify(|n| *n += 1);
        }
        count
    }

    /// Revoke the grant `id`; false when this session has no such live grant.
    pub fn revoke(&self, id: &str) -> bool {
        let revoked = self
            .issued()
            .get_mut(id)
            .is_some_and(|grant| !std::mem::replace(&mut grant.revoked, true));
        self.tell_viewers(usize::from(revoked)) > 0
    }

    /// Revoke every grant of `viewer`; how many were live.
    pub fn revoke_viewer(&self, viewer: &str) -> usize {
        let mut revoked = 0;
        for grant in self.issued().values_mut() {
            if grant.viewer == viewer && !grant.revoked {
                grant.revoked = true;
                revoked += 1;
            }
        }
        self.tell_viewers(revoked)
    }
}

/// A fresh viewer id: 16 random hex digits.
pub fn random_viewer_id() -> String {
    format!("{:016x}", rand::rng().random::<u64>())
}

/// A viewer id is one path segment: 1 to 64 of `A-Z a-z 0-9 _ -`.
pub fn check_viewer_id(id: &str) -> Result<&str, Error> {
    let ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(id)
    } else {
        Err(Error::Config(format!(
            "viewer id {id:?}: use 1 to 64 letters, digits, '_' or '-'"
        )))
    }
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(text: &str) -> Option<[u8; 32]> {
    let text = text.as_bytes();
    if text.len() != 64 || !text.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(text.chunks(2)) {
        let pair = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = "game/viewer/alice";

    fn token_of(grant: &Grant) -> String {
        Credential::parse(&grant.credential).unwrap().token
    }

    #[test]
    fn a_grant_lets_its_own_viewer_in_and_no_one_else() {
        let grants = Grants::generate("game");
        let grant = grants.issue(Some("alice"), DEFAULT_TTL).unwrap();
        assert_eq!(grant.viewer, "alice");
        let credential = Credential::parse(&grant.credential).unwrap();
        assert_eq!(credential.viewer, "alice");
        assert_eq!(credential.id, grant.id);
        let checked = grants.check(&credential.token, "alice").unwrap();
        assert_eq!(
            (checked.id.as_str(), checked.expires),
            (grant.id.as_str(), grant.expires)
        );
        assert_eq!(
            grants.check(&credential.token, "mallory").err(),
            Some(Refusal::Elsewhere)
        );
        let random = grants.issue(None, DEFAULT_TTL).unwrap();
        assert_eq!(random.viewer.len(), 16);
        assert!(grants.check(&token_of(&random), &random.viewer).is_ok());
        // Nothing secret in what a log would print.
        assert!(!format!("{grant:?}{credential:?}").contains(&credential.token));
    }

    /// What a direct server asks of a newcomer's token: one of this session's live grants,
    /// whichever viewer it names.
    #[test]
    fn a_holder_is_known_by_a_live_grant_of_this_session() {
        let grants = Grants::generate("game");
        let grant = grants.issue(Some("alice"), DEFAULT_TTL).unwrap();
        let token = token_of(&grant);
        assert_eq!(grants.holder(&token), Ok(grant.id.clone()));
        let other = Grants::generate("game");
        assert_eq!(other.holder(&token), Err(Refusal::Forged));
        let elsewhere = Grants::generate("other");
        let theirs = token_of(&elsewhere.issue(None, DEFAULT_TTL).unwrap());
        assert_eq!(elsewhere.holder(&theirs).map(|_| ()), Ok(()));
        assert!(grants.holder(&theirs).is_err());
        assert_eq!(grants.holder("not a token"), Err(Refusal::Malformed));
        assert!(grants.revoke(&grant.id));
        assert_eq!(grants.holder(&token), Err(Refusal::Revoked));
    }

    #[test]
    fn the_token_alone_cannot_seal_and_the_secret_is_the_hosts() {
        let grants = Grants::generate("game");
        let grant = grants.issue(Some("alice"), DEFAULT_TTL).unwrap();
        let credential = Credential::parse(&grant.credential).unwrap();
        // The token is what travels; the secret is not in it.
        let secret_hex = grant.credential.split_once('~').unwrap().1;
        assert!(!credential.token.contains(secret_hex));
        assert!(
            Credential::parse(&credential.token).is_err(),
            "a token alone is no credential"
        );
        for bad in [
            "",
            "~",
            "a.b.c~00",
            &format!("{}~{}", credential.token, "g".repeat(64)),
            &format!("{}~+{}", credential.token, "0".repeat(63)),
        ] {
            assert!(Credential::parse(bad).is_err(), "{bad:?}");
        }
        // The player's seal opens at the host; a seal made with a guessed secret does not.
        let checked = grants.check(&credential.token, "alice").unwrap();
        let opener = checked.opener(Track::Input, PATH);
        let sealed = credential.sealer(Track::Input, PATH).seal(b"keys", 100);
        assert_eq!(
            grants
                .open(&checked, &opener, Track::Input, &sealed)
                .unwrap()
                .plain,
            b"keys"
        );
        let guess = Sealer::new(&[0; 32], Track::Input, PATH).seal(b"keys", 200);
        assert_eq!(
            grants.open(&checked, &opener, Track::Input, &guess),
            Err(Dropped::Unsealed(Unsealed::Forged))
        );
        assert_eq!(
            grants.open(&checked, &opener, Track::Input, &[2, 0, 0]),
            Err(Dropped::Unsealed(Unsealed::Plain))
        );
    }

    #[test]
    fn a_replay_is_refused_for_the_grants_life_across_joins() {
        let grants = Grants::generate("game");
        let grant = grants.issue(Some("alice"), DEFAULT_TTL).unwrap();
        let credential = Credential::parse(&grant.credential).unwrap();
        let mut sealer = credential.sealer(Track::Input, PATH);
        let recorded: Vec<Vec<u8>> = (0..3).map(|i| sealer.seal(b"k", 1_000 + i)).collect();
        let join = || {
            let checked = grants.check(&credential.token, "alice").unwrap();
            let opener = checked.opener(Track::Input, PATH);
            (checked, opener)
        };
        let (checked, opener) = join();
        let senders: Vec<bool> = recorded
            .iter()
            .map(|datagram| {
                grants
                    .open(&checked, &opener, Track::Input, datagram)
                    .unwrap()
                    .new_sender
            })
            .collect();
        // The first datagram taken from a sender says so; the rest do not.
        assert_eq!(senders, [true, false, false]);
        assert_eq!(
            grants.open(&checked, &opener, Track::Input, &recorded[1]),
            Err(Dropped::Replayed)
        );
        // The viewer announces itself again (a reconnect): the window is the grant's.
        let (checked, opener) = join();
        for datagram in &recorded {
            assert_eq!(
                grants.open(&checked, &opener, Track::Input, datagram),
                Err(Dropped::Replayed)
            );
        }
        // A new sender (a reload) goes on from the time it sends at.
        let mut reloaded = credential.sealer(Track::Input, PATH);
        let fresh = reloaded.seal(b"k", 2_000);
        let taken = grants
            .open(&checked, &opener, Track::Input, &fresh)
            .unwrap();
        assert!(taken.new_sender);
        let next = reloaded.seal(b"k", 2_001);
        let taken = grants.open(&checked, &opener, Track::Input, &next).unwrap();
        assert!(!taken.new_sender);
        // Each track has its own window.
        let feedback = checked.opener(Track::Feedback, PATH);
        let report = credential.sealer(Track::Feedback, PATH).seal(b"r", 1_500);
        assert!(
            grants
                .open(&checked, &feedback, Track::Feedback, &report)
                .is_ok()
        );
    }

    #[test]
    fn revoked_grants_stop_at_once_one_or_all_of_a_viewers() {
        let grants = Grants::generate("game");
        let one = grants.issue(Some("alice"), DEFAULT_TTL).unwrap();
        let two = grants.issue(Some("alice"), DEFAULT_TTL).unwrap();
        let bob = grants.issue(Some("bob"), DEFAULT_TTL).unwrap();
        let credential = Credential::parse(&one.credential).unwrap();
        let checked = grants.check(&credential.token, "alice").unwrap();
        let opener = checked.opener(Track::Input, PATH);
        let mut sealer = credential.sealer(Track::Input, PATH);
        let mut revocations = grants.revocations();
        assert!(grants.revoke(&one.id));
        assert!(revocations.has_changed().unwrap(), "viewers are told");
        revocations.mark_unchanged();
        assert!(!grants.revoke(&one.id), "revoked once");
        assert!(!grants.revoke("no-such-grant"));
        assert!(!revocations.has_changed().unwrap(), "nothing to tell");
        assert_eq!(grants.live(&one.id), Err(Refusal::Revoked));
        assert_eq!(
            grants.open(&checked, &opener, Track::Input, &sealer.seal(b"k", 1)),
            Err(Dropped::Revoked)
        );
        assert_eq!(
            grants.check(&credential.token, "alice").err(),
            Some(Refusal::Revoked)
        );
        assert_eq!(grants.revoke_viewer("alice"), 1, "the other of alice's");
        assert!(revocations.has_changed().unwrap());
        assert_eq!(grants.live(&two.id), Err(Refusal::Revoked));
        assert_eq!(grants.live(&bob.id), Ok(()));
        // Another session's host never issued it, whatever its key.
        let other = Grants::generate("game")
            .issue(Some("a"), DEFAULT_TTL)
            .unwrap();
        assert_eq!(grants.live(&other.id), Err(Refusal::Revoked));
    }

    #[test]
    fn forged_foreign_expired_and_malformed_tokens_are_told_apart() {
        let grants = Grants::generate("game");
        let other_key = Grants::generate("game")
            .issue(Some("a"), DEFAULT_TTL)
            .unwrap();
        assert_eq!(
            grants.check(&token_of(&other_key), "a").err(),
            Some(Refusal::Forged)
        );
        let other_session = Grants::generate("other");
        let foreign = other_session.issue(Some("a"), DEFAULT_TTL).unwrap();
        assert!(other_session.check(&token_of(&foreign), "a").is_ok());
        assert_eq!(
            grants.check(&token_of(&foreign), "a").err(),
            Some(Refusal::Forged)
        );
        assert_eq!(
            grants.check("not a token", "a").err(),
            Some(Refusal::Malformed)
        );
        assert_eq!(grants.check("", "a").err(), Some(Refusal::Malformed));
        // A claim altered after signing breaks the signature.
        let good = token_of(&grants.issue(Some("a"), DEFAULT_TTL).unwrap());
        let payload = good.split('.').nth(1).unwrap();
        let mut changed = payload.to_string();
        let tenth = if &changed[10..11] == "A" { "B" } else { "A" };
        changed.replace_range(10..11, tenth);
        let altered = good.replace(payload, &changed);
        assert_eq!(grants.check(&altered, "a").err(), Some(Refusal::Forged));
        // Expiry: sign one already past its time.
        let claims = Claims {
            iss: ISSUER.into(),
            aud: "game".into(),
            sub: "a".into(),
            jti: "x".into(),
            iat: 1,
            exp: 2,
        };
        let old = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &grants.encoding)
            .unwrap();
        assert_eq!(grants.check(&old, "a").err(), Some(Refusal::Expired));
        let elsewhere = Claims {
            aud: "other".into(),
            exp: u64::MAX / 2,
            ..claims
        };
        let elsewhere =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &elsewhere, &grants.encoding)
                .unwrap();
        assert_eq!(
            grants.check(&elsewhere, "a").err(),
            Some(Refusal::Elsewhere)
        );
    }

    #[test]
    fn lifetimes_are_bounded() {
        let grants = Grants::generate("game");
        assert!(grants.issue(Some("a"), MAX_TTL).is_ok());
        assert!(
            grants
                .issue(Some("a"), MAX_TTL + Duration::from_secs(1))
                .is_err()
        );
    }

    #[test]
    fn viewer_ids_are_one_safe_path_segment() {
        assert!(check_viewer_id("player-1_A").is_ok());
        for bad in ["", "a/b", "..", "a b", &"x".repeat(65)] {
            assert!(check_viewer_id(bad).is_err(), "{bad:?}");
        }
    }
}
