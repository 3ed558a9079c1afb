//! The direct server's QUIC sessions, bounded ([`crate::listen::Serve::max_sessions`]) so
//! that strangers cannot keep players out. At the bound, a newcomer takes the place of the
//! session idle the longest, if one has moved fewer than [`ACTIVE_BYTES`] either way for
//! [`IDLE_AFTER`]: nothing but keep-alives, a connection opened and left, or one waiting for a
//! broadcast that never comes. A session that watches or plays moves far more than that
//! (pictures one way, input and acknowledgements the other), so it is never the one to go;
//! when no session is idle, the newcomer is refused (503) as before. A session still in its
//! handshake is bounded by the handshake's own deadline and is not evicted.
//!
//! Every session may watch, and every picture sent is the host's upload, so strangers are
//! bounded apart: a newcomer that presents no live grant of the session
//! ([`crate::listen::GRANT_PARAM`]) is a spectator, and spectators hold at most
//! [`crate::listen::Serve::max_spectators`] places, the one idle longest making way for a
//! newcomer as above. A crowd of strangers who all watch fills those places and is refused
//! beyond them; a player with a grant never waits for one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// How long a session must have been idle to make way for a newcomer.
pub(crate) const IDLE_AFTER: Duration = Duration::from_secs(10);
/// Bytes either way that count as moving: a few keep-alives stay below it, a picture does not.
pub(crate) const ACTIVE_BYTES: u64 = 4096;
/// How often the sessions' byte counts are looked at.
pub(crate) const SAMPLE: Duration = Duration::from_secs(1);

/// When a session last moved, from samples of the bytes it sent and received in all.
#[derive(Clone, Copy, Debug)]
struct Activity {
    /// The byte count when it last moved, and when that was.
    bytes: u64,
    moved_at: Instant,
}

impl Activity {
    fn new(now: Instant) -> Self {
        Self {
            bytes: 0,
            moved_at: now,
        }
    }

    /// The session had moved `bytes` in all by `now`.
    fn observe(&mut self, bytes: u64, now: Instant) {
        if bytes.saturating_sub(self.bytes) >= ACTIVE_BYTES {
            (self.bytes, self.moved_at) = (bytes, now);
        }
    }

    fn idle_at(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.moved_at) >= IDLE_AFTER
    }
}

/// Who a newcomer is, as far as the server can tell when it arrives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// It presented a live grant of the session: the grant's id.
    Player(String),
    /// Anyone else: it may watch while a spectator's place is free.
    Spectator,
}

/// Sessions one grant holds as a player at once: a player's connection and the one that
/// replaces it while the old one times out; beyond them it is a spectator. A grant's token is
/// no secret (it travels on the viewer's `grant` track), so one read off the path wins its
/// reader one place at most.
pub(crate) const PLACES_PER_GRANT: usize = 2;

/// Why a newcomer was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Full {
    /// Every place is held by a session that moves or is still shaking hands.
    Sessions,
    /// Every spectator's place is, and the newcomer presented no grant that holds one.
    Spectators,
}

/// The sessions held: at most `max`, of which at most `max_spectators` without a grant.
#[derive(Clone)]
pub(crate) struct Sessions {
    inner: Arc<Mutex<Held>>,
    max: usize,
    max_spectators: usize,
}

struct Held {
    next_id: u64,
    live: HashMap<u64, Live>,
    /// Sessions closed to make room.
    evicted: u64,
    /// Newcomers refused, every place taken.
    refused: u64,
}

/// Who a direct server holds now, and whom it turned away so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Seated {
    /// Sessions that presented a live grant, and the others (spectators).
    pub players: u32,
    pub spectators: u32,
    /// Newcomers refused (503) with every place taken, and sessions closed idle to make room.
    pub refused: u64,
    pub evicted: u64,
}

struct Live {
    kind: Kind,
    /// Set once the handshake is done; the handle is `None` only in unit tests.
    established: bool,
    session: Option<moq_net::Session>,
    activity: Activity,
}

/// A place among the sessions held; given back when dropped.
pub(crate) struct Place {
    id: u64,
    kind: Kind,
    sessions: Sessions,
}

impl Place {
    /// The handshake is done: `session` is the one this place holds.
    pub(crate) fn established(&self, session: moq_net::Session) {
        if let Some(live) = self.sessions.lock().live.get_mut(&self.id) {
            live.established = true;
            live.session = Some(session);
        }
    }

    /// The handshake is done, with no session to hold (unit tests).
    #[cfg(test)]
    fn mark_established(&self) {
        if let Some(live) = self.sessions.lock().live.get_mut(&self.id) {
            live.established = true;
        }
    }

    /// What the newcomer was taken as (a player over its grant's places is a spectator).
    pub(crate) fn kind(&self) -> &Kind {
        &self.kind
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        self.sessions.lock().live.remove(&self.id);
    }
}

impl Held {
    /// Close the session idle the longest among those `eligible`, if one is idle at `now`.
    fn evict_idlest(&mut self, now: Instant, eligible: impl Fn(&Kind) -> bool) -> bool {
        let idlest = self
            .live
            .iter()
            .filter(|(_, live)| {
                live.established && eligible(&live.kind) && live.activity.idle_at(now)
            })
            .min_by_key(|(_, live)| live.activity.moved_at)
            .map(|(id, _)| *id);
        let Some(live) = idlest.and_then(|id| self.live.remove(&id)) else {
            return false;
        };
        if let Some(session) = live.session {
            session.abort(moq_net::Error::App(503));
        }
        self.evicted += 1;
        tracing::debug!(
            evicted = self.evicted,
            "closed the idlest session to make room"
        );
        true
    }

    fn count(&self, kind: &Kind) -> usize {
        self.live.values().filter(|live| &live.kind == kind).count()
    }
}

impl Sessions {
    pub(crate) fn new(max: usize, max_spectators: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Held {
                next_id: 0,
                live: HashMap::new(),
                evicted: 0,
                refused: 0,
            })),
            max: max.max(1),
            max_spectators,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Held> {
        // Plain bookkeeping: a panic elsewhere leaves it usable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A place for a newcomer of `kind` at `now`: a free one, or the place of the session
    /// idle the longest (closed, as a server at its bound would refuse it). A spectator
    /// needs a spectator's place too, and may only take an idle spectator's; a player never
    /// waits for one. Idleness is as last sampled (at most [`SAMPLE`] old, against
    /// [`IDLE_AFTER`]): a flood of newcomers at the bound costs no look at every session
    /// each.
    pub(crate) fn admit(&self, now: Instant, kind: Kind) -> Result<Place, Full> {
        let mut held = self.lock();
        let admitted = self.place(&mut held, now, kind);
        if admitted.is_err() {
            held.refused += 1;
        }
        admitted
    }

    fn place(&self, held: &mut Held, now: Instant, kind: Kind) -> Result<Place, Full> {
        let kind = match kind {
            Kind::Player(id) if held.count(&Kind::Player(id.clone())) < PLACES_PER_GRANT => {
                Kind::Player(id)
            }
            _ => Kind::Spectator,
        };
        if kind == Kind::Spectator
            && held.count(&Kind::Spectator) >= self.max_spectators
            && !held.evict_idlest(now, |kind| kind == &Kind::Spectator)
        {
            return Err(Full::Spectators);
        }
        if held.live.len() >= self.max && !held.evict_idlest(now, |_| true) {
            return Err(Full::Sessions);
        }
        let id = held.next_id;
        held.next_id += 1;
        held.live.insert(
            id,
            Live {
                kind: kind.clone(),
                established: false,
                session: None,
                activity: Activity::new(now),
            },
        );
        Ok(Place {
            id,
            kind,
            sessions: self.clone(),
        })
    }

    /// Who is held now, and who was turned away so far.
    pub(crate) fn seated(&self) -> Seated {
        let held = self.lock();
        let players = held
            .live
            .values()
            .filter(|live| matches!(live.kind, Kind::Player(_)))
            .count();
        Seated {
            players: players as u32,
            spectators: (held.live.len() - players) as u32,
            refused: held.refused,
            evicted: held.evicted,
        }
    }

    /// Look at how much each session has moved by `now`.
    pub(crate) fn sample(&self, now: Instant) {
        for live in self.lock().live.values_mut() {
            if let Some(session) = &live.session {
                let stats = session.stats();
                let bytes = stats.bytes_sent.unwrap_or(0) + stats.bytes_received.unwrap_or(0);
                live.activity.observe(bytes, now);
            }
        }
    }

    /// `place`'s session moved at `now` (what [`Self::sample`] finds of a real one).
    #[cfg(test)]
    fn mark_moved(&self, place: &Place, now: Instant) {
        if let Some(live) = self.lock().live.get_mut(&place.id) {
            live.activity.moved_at = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_moves_only_by_more_than_keep_alives() {
        let start = Instant::now();
        let mut activity = Activity::new(start);
        let at = |s: u64| start + Duration::from_secs(s);
        // Keep-alives: a few hundred bytes now and then.
        for s in 1..=10 {
            activity.observe(s * 100, at(s));
        }
        assert!(activity.idle_at(at(10)), "keep-alives are no activity");
        activity.observe(1000 + ACTIVE_BYTES, at(11));
        assert!(!activity.idle_at(at(11)) && !activity.idle_at(at(20)));
        assert!(activity.idle_at(at(21)));
        // The count never goes back; a smaller one is no movement.
        activity.observe(0, at(22));
        assert!(activity.idle_at(at(22)));
    }

    /// Without sessions to close, a full server refuses: a place in its handshake is not
    /// evicted, and a place given back is free again.
    #[test]
    fn places_are_bounded_and_given_back() {
        let now = Instant::now();
        let sessions = Sessions::new(2, 2);
        let first = sessions.admit(now, Kind::Spectator).unwrap();
        let _second = sessions.admit(now, Kind::Spectator).unwrap();
        let later = now + IDLE_AFTER * 2;
        assert_eq!(
            sessions.admit(later, Kind::Spectator).err(),
            Some(Full::Spectators),
            "handshakes are not evicted"
        );
        drop(first);
        assert!(sessions.admit(later, Kind::Spectator).is_ok());
        let seated = Seated {
            spectators: 1,
            refused: 1,
            ..Seated::default()
        };
        assert_eq!(sessions.seated(), seated);
    }

    fn player(grant: &str) -> Kind {
        Kind::Player(grant.into())
    }

    /// Spectators beyond their places wait for one, however many places players leave free;
    /// a player never waits for a spectator's place, and one idle stranger makes way for
    /// anyone.
    #[test]
    fn strangers_watch_only_in_spectators_places_and_players_never_wait_for_one() {
        let now = Instant::now();
        let later = now + IDLE_AFTER * 2;
        let sessions = Sessions::new(4, 1);
        let watching = sessions.admit(now, Kind::Spectator).unwrap();
        watching.mark_established();
        assert_eq!(
            sessions.admit(now, Kind::Spectator).err(),
            Some(Full::Spectators)
        );
        let alice = sessions.admit(now, player("alice")).unwrap();
        alice.mark_established();
        assert_eq!(alice.kind(), &player("alice"));
        // Idle: the stranger makes way for another stranger.
        sessions.mark_moved(&alice, later);
        let newcomer = sessions.admit(later, Kind::Spectator).unwrap();
        let seated = Seated {
            players: 1,
            spectators: 1,
            refused: 1,
            evicted: 1,
        };
        assert_eq!(sessions.seated(), seated);
        newcomer.mark_established();
        // A watching stranger holds its place; a player who moves is never closed.
        sessions.mark_moved(&newcomer, later);
        assert_eq!(
            sessions.admit(later, Kind::Spectator).err(),
            Some(Full::Spectators)
        );
        let _bob = sessions.admit(later, player("bob")).unwrap();
        let _carol = sessions.admit(later, player("carol")).unwrap();
        assert_eq!(
            sessions.admit(later, player("dave")).err(),
            Some(Full::Sessions),
            "every place moves or shakes hands"
        );
    }

    /// A grant holds two players' places; a third session presenting it is a spectator.
    #[test]
    fn a_grant_holds_at_most_two_players_places() {
        let now = Instant::now();
        let sessions = Sessions::new(8, 1);
        let first = sessions.admit(now, player("alice")).unwrap();
        let _second = sessions.admit(now, player("alice")).unwrap();
        let third = sessions.admit(now, player("alice")).unwrap();
        assert_eq!(third.kind(), &Kind::Spectator);
        assert_eq!(
            sessions.admit(now, player("alice")).err(),
            Some(Full::Spectators)
        );
        drop(first);
        assert_eq!(
            sessions.admit(now, player("alice")).unwrap().kind(),
            &player("alice")
        );
    }
}
