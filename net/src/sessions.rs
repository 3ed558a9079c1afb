//! The direct server's QUIC sessions, bounded ([`crate::listen::Serve::max_sessions`]) so
//! that strangers cannot keep players out. At the bound, a newcomer takes the place of the
//! session idle the longest, if one has moved fewer than [`ACTIVE_BYTES`] either way for
//! [`IDLE_AFTER`]: nothing but keep-alives, a connection opened and left, or one waiting for a
//! broadcast that never comes. A session that watches or plays moves far more than that
//! (pictures one way, input and acknowledgements the other), so it is never the one to go;
//! when no session is idle, the newcomer is refused (503) as before. A session still in its
//! handshake is bounded by the handshake's own deadline and is not evicted.

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

/// The sessions held, at most `max`.
#[derive(Clone)]
pub(crate) struct Sessions {
    inner: Arc<Mutex<Held>>,
    max: usize,
}

struct Held {
    next_id: u64,
    live: HashMap<u64, Live>,
    /// Sessions closed to make room.
    evicted: u64,
}

struct Live {
    /// `None` while the handshake runs.
    session: Option<moq_net::Session>,
    activity: Activity,
}

/// A place among the sessions held; given back when dropped.
pub(crate) struct Place {
    id: u64,
    sessions: Sessions,
}

impl Place {
    /// The handshake is done: `session` is the one this place holds.
    pub(crate) fn established(&self, session: moq_net::Session) {
        if let Some(live) = self.sessions.lock().live.get_mut(&self.id) {
            live.session = Some(session);
        }
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        self.sessions.lock().live.remove(&self.id);
    }
}

impl Sessions {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Held {
                next_id: 0,
                live: HashMap::new(),
                evicted: 0,
            })),
            max: max.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Held> {
        // Plain bookkeeping: a panic elsewhere leaves it usable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A place for a newcomer at `now`: a free one, or the place of the session idle the
    /// longest (closed, as a server at its bound would refuse it); None when every place is
    /// held by a session that moves or is still shaking hands. Idleness is as last sampled
    /// (at most [`SAMPLE`] old, against [`IDLE_AFTER`]): a flood of newcomers at the bound
    /// costs no look at every session each.
    pub(crate) fn admit(&self, now: Instant) -> Option<Place> {
        let mut held = self.lock();
        if held.live.len() >= self.max {
            let idlest = held
                .live
                .iter()
                .filter(|(_, live)| live.session.is_some() && live.activity.idle_at(now))
                .min_by_key(|(_, live)| live.activity.moved_at)
                .map(|(id, _)| *id);
            let live = idlest.and_then(|id| held.live.remove(&id))?;
            if let Some(session) = live.session {
                session.abort(moq_net::Error::App(503));
            }
            held.evicted += 1;
            tracing::debug!(
                evicted = held.evicted,
                "closed the idlest session to make room"
            );
        }
        let id = held.next_id;
        held.next_id += 1;
        held.live.insert(
            id,
            Live {
                session: None,
                activity: Activity::new(now),
            },
        );
        Some(Place {
            id,
            sessions: self.clone(),
        })
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

    /// Sessions held now, and closed to make room so far.
    #[cfg(test)]
    fn counts(&self) -> (usize, u64) {
        let held = self.lock();
        (held.live.len(), held.evicted)
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
        let sessions = Sessions::new(2);
        let first = sessions.admit(now).unwrap();
        let _second = sessions.admit(now).unwrap();
        let later = now + IDLE_AFTER * 2;
        assert!(
            sessions.admit(later).is_none(),
            "handshakes are not evicted"
        );
        drop(first);
        assert!(sessions.admit(later).is_some());
        assert_eq!(sessions.counts(), (1, 0));
    }
}
