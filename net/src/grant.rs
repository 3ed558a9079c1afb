//! Input grants: which viewers' input a host injects.
//!
//! A grant is a JWT (HS256, through the jsonwebtoken crate) that the host signs with a secret
//! of its own, made fresh for each session and never sent anywhere. It names the session
//! (`aud`), the viewer (`sub`, which is also the viewer's broadcast path
//! `<session>/viewer/<sub>`) and an expiry (`exp`). The viewer presents it on its broadcast's
//! `grant` track; the host checks the signature, the session, the viewer and the expiry
//! before it injects anything from that viewer. A token copied onto another viewer path is
//! refused, so a grant read off a relay serves only the path it was made for (which relay
//! auth can reserve to the viewer, see README).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::Rng;

use crate::Error;

const ISSUER: &str = "lantern-host";
/// How long a grant lasts unless asked otherwise: one evening of play.
pub const DEFAULT_TTL: Duration = Duration::from_secs(12 * 3600);

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Claims {
    iss: String,
    aud: String,
    sub: String,
    iat: u64,
    exp: u64,
}

/// A grant as handed out.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Grant {
    pub token: String,
    pub viewer: String,
    /// Seconds since the UNIX epoch.
    pub expires: u64,
}

/// Why a viewer's grant was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not a JWT at all, or not one of ours in shape.
    Malformed,
    /// The signature does not check out (another key, or altered claims).
    Forged,
    Expired,
    /// Signed by this host for another session, or another viewer path.
    Elsewhere,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Forged => "forged",
            Self::Expired => "expired",
            Self::Elsewhere => "elsewhere",
        }
    }
}

/// One session's grant key.
pub struct Grants {
    session: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for Grants {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grants")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl Grants {
    /// A fresh random key for `session` (its broadcast name).
    pub fn generate(session: &str) -> Self {
        let secret: [u8; 32] = rand::rng().random();
        Self {
            session: session.to_string(),
            encoding: EncodingKey::from_secret(&secret),
            decoding: DecodingKey::from_secret(&secret),
        }
    }

    /// Sign a grant for `viewer` (a fresh random id when `None`) lasting `ttl`.
    pub fn issue(&self, viewer: Option<&str>, ttl: Duration) -> Result<Grant, Error> {
        let viewer = match viewer {
            Some(viewer) => check_viewer_id(viewer)?.to_string(),
            None => random_viewer_id(),
        };
        let now = unix_now();
        let claims = Claims {
            iss: ISSUER.into(),
            aud: self.session.clone(),
            sub: viewer.clone(),
            iat: now,
            exp: now.saturating_add(ttl.as_secs().max(1)),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(Error::Grant)?;
        Ok(Grant {
            token,
            viewer,
            expires: claims.exp,
        })
    }

    /// Whether `token` lets viewer `viewer` send input into this session now; its expiry
    /// (seconds since the UNIX epoch) when it does.
    pub fn check(&self, token: &str, viewer: &str) -> Result<u64, Refusal> {
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
        if claims.sub != viewer {
            return Err(Refusal::Elsewhere);
        }
        Ok(claims.exp)
    }
}

/// The viewer a grant was made for, read without checking it (the viewer cannot, and need
/// not: the host does): it names the path the viewer publishes its input under.
pub fn viewer_of(token: &str) -> Result<String, Error> {
    let bad = |why: String| Error::Config(format!("--input-token: {why}"));
    let claims = jsonwebtoken::dangerous::insecure_decode::<Claims>(token)
        .map_err(|e| bad(format!("not a Lantern input grant ({e})")))?
        .claims;
    check_viewer_id(&claims.sub).map_err(|e| bad(e.to_string()))?;
    Ok(claims.sub)
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

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_lets_its_own_viewer_in_and_no_one_else() {
        let grants = Grants::generate("game");
        let grant = grants.issue(Some("alice"), DEFAULT_TTL).unwrap();
        assert_eq!(grant.viewer, "alice");
        assert_eq!(viewer_of(&grant.token).unwrap(), "alice");
        assert_eq!(grants.check(&grant.token, "alice"), Ok(grant.expires));
        assert_eq!(
            grants.check(&grant.token, "mallory"),
            Err(Refusal::Elsewhere)
        );
        let random = grants.issue(None, DEFAULT_TTL).unwrap();
        assert_eq!(random.viewer.len(), 16);
        assert_eq!(
            grants.check(&random.token, &random.viewer),
            Ok(random.expires)
        );
    }

    #[test]
    fn forged_foreign_expired_and_malformed_tokens_are_told_apart() {
        let grants = Grants::generate("game");
        let other_key = Grants::generate("game")
            .issue(Some("a"), DEFAULT_TTL)
            .unwrap();
        assert_eq!(grants.check(&other_key.token, "a"), Err(Refusal::Forged));
        let other_session = Grants::generate("other");
        let foreign = other_session.issue(Some("a"), DEFAULT_TTL).unwrap();
        assert_eq!(
            other_session.check(&foreign.token, "a"),
            Ok(foreign.expires)
        );
        assert_eq!(grants.check(&foreign.token, "a"), Err(Refusal::Forged));
        assert_eq!(grants.check("not a token", "a"), Err(Refusal::Malformed));
        assert_eq!(grants.check("", "a"), Err(Refusal::Malformed));
        // A claim altered after signing breaks the signature.
        let good = grants.issue(Some("a"), DEFAULT_TTL).unwrap();
        let payload = good.token.split('.').nth(1).unwrap();
        let mut changed = payload.to_string();
        let tenth = if &changed[10..11] == "A" { "B" } else { "A" };
        changed.replace_range(10..11, tenth);
        let altered = good.token.replace(payload, &changed);
        assert_eq!(grants.check(&altered, "a"), Err(Refusal::Forged));
        // Expiry: sign one already past its time.
        let claims = Claims {
            iss: ISSUER.into(),
            aud: "game".into(),
            sub: "a".into(),
            iat: 1,
            exp: 2,
        };
        let old = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &grants.encoding)
            .unwrap();
        assert_eq!(grants.check(&old, "a"), Err(Refusal::Expired));
        let elsewhere = Claims {
            aud: "other".into(),
            exp: u64::MAX / 2,
            ..claims
        };
        let elsewhere =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &elsewhere, &grants.encoding)
                .unwrap();
        assert_eq!(grants.check(&elsewhere, "a"), Err(Refusal::Elsewhere));
    }

    #[test]
    fn viewer_ids_are_one_safe_path_segment() {
        assert!(check_viewer_id("player-1_A").is_ok());
        for bad in ["", "a/b", "..", "a b", &"x".repeat(65)] {
            assert!(check_viewer_id(bad).is_err(), "{bad:?}");
        }
        assert!(viewer_of("garbage").is_err());
    }
}
