//! A connection whose peer may be gone: it sends (stream data, acknowledgements,
//! keep-alives) but nothing has come back for [`DEAF_US`]. Either the path is dead for now, or
//! the peer lost the connection: a relay that restarted drops the packets of connections it
//! never had, so nothing ends this one but its idle timeout (6 s with one relay, 7.5 s with
//! QUIC's probes), and a relay down for 2 s was found again 5 s after it was back. A fresh
//! dial tells the two apart, as it is answered only where the peer is up and the path
//! carries: while the connection is deaf, one is kept dialing (backing off as any redial
//! does), and one answered while the old connection still hears nothing takes its place. One
//! that is not answered before the old connection hears again is dropped.
//!
//! After a fade the old connection may stay deaf well past the path's return, while its
//! peer's retransmissions back off (after 2 s of outage on loopback the relay's next comes
//! 1.3 s after the path is back); a fresh dial then resumes sooner, the subscriptions moving
//! to it. [`DEAF_US`] is longer than a cellular fade's usual 1–1.5 s, which the connection
//! rides out alone. Where the connection itself gives up sooner (a short idle timeout, as
//! with other relays to go to), it is deaf after half of that: see [`deaf_after_us`]. Pure:
//! every call takes the time.

/// Nothing received for this long, while sending, is deaf: a live peer answers what it is
/// sent within a round trip, and acknowledges a stream's packets as they come.
pub const DEAF_US: u64 = 2_500_000;
/// At least this many packets sent since the last one came: an answer was due (a viewer
/// that only receives sends nothing once nothing comes, until its keep-alive and the
/// keep-alive's retransmission; a quiet but live connection's keep-alive is answered).
pub const DEAF_SENT: u64 = 2;

/// How long a connection whose idle timeout is `idle_us` may hear nothing before it is deaf:
/// [`DEAF_US`], or half the idle timeout where that is shorter. A connection that ends itself
/// after 1.2 s of silence (the default with other relays to go to) would otherwise be gone
/// before it was found deaf, and only then redial; half of it leaves room for its two
/// keep-alives (a quarter of the idle timeout apart) to go unanswered first.
pub fn deaf_after_us(idle_us: u64) -> u64 {
    (idle_us / 2).min(DEAF_US)
}

/// Watches one connection's packets received against those it sends.
#[derive(Clone, Copy, Debug)]
pub struct Deaf {
    /// Packets received when last seen to change, when, and packets sent then.
    heard: Option<(u64, u64, u64)>,
    /// Hearing nothing this long (µs) is deaf.
    after_us: u64,
}

impl Default for Deaf {
    fn default() -> Self {
        Self::new()
    }
}

impl Deaf {
    /// Deaf after [`DEAF_US`].
    pub fn new() -> Self {
        Self::after(DEAF_US)
    }

    /// Deaf after `after_us` of hearing nothing (see [`deaf_after_us`]).
    pub fn after(after_us: u64) -> Self {
        Self {
            heard: None,
            after_us,
        }
    }

    /// At `now_us`, with the connection's packets received and sent so far (`None` while it
    /// is not up, redialing by itself): whether it is deaf.
    pub fn check(&mut self, now_us: u64, received: Option<u64>, sent: Option<u64>) -> bool {
        let (Some(received), Some(sent)) = (received, sent) else {
            self.heard = None;
            return false;
        };
        match self.heard {
            Some((heard, since, sent_then)) if heard == received => {
                now_us.saturating_sub(since) >= self.after_us
                    && sent.saturating_sub(sent_then) >= DEAF_SENT
            }
            // Heard something (or a new connection's count): watch from here.
            _ => {
                self.heard = Some((received, now_us, sent));
                false
            }
        }
    }

    /// Watch afresh from the next check, as for a new connection.
    pub fn forget(&mut self) {
        self.heard = None;
    }

    /// How long it has heard nothing, at `now_us` (zero before the first check).
    pub fn silent_us(&self, now_us: u64) -> u64 {
        self.heard
            .map_or(0, |(_, since, _)| now_us.saturating_sub(since))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1000;

    /// Checks every 250 ms for `seconds`, with the connection's packets received and sent
    /// (µs → packets so far); when it was deaf.
    fn deaf_at(deaf: &mut Deaf, seconds: u64, packets: impl Fn(u64) -> (u64, u64)) -> Vec<u64> {
        (0..=seconds * 4)
            .map(|i| i * 250 * MS)
            .filter(|&now| {
                let (received, sent) = packets(now);
                deaf.check(now, Some(received), Some(sent))
            })
            .collect()
    }

    #[test]
    fn a_connection_that_hears_is_never_deaf() {
        // A stream and its acknowledgements.
        let streaming = |now: u64| (now / (2 * MS), now / (20 * MS));
        assert!(deaf_at(&mut Deaf::new(), 30, streaming).is_empty());
        // A quiet one: a keep-alive every 1.5 s, answered at once.
        let quiet = |now: u64| (now / (1500 * MS), now / (1500 * MS));
        assert!(deaf_at(&mut Deaf::new(), 30, quiet).is_empty());
        // A fade of 1.5 s, heard again 0.3 s after it.
        let faded = |now: u64| {
            let heard = if (5_000 * MS..6_800 * MS).contains(&now) {
                5_000 * MS
            } else {
                now
            };
            (heard / (2 * MS), now / (20 * MS))
        };
        assert!(deaf_at(&mut Deaf::new(), 30, faded).is_empty());
    }

    #[test]
    fn one_that_sends_and_hears_nothing_is_deaf_until_it_hears() {
        // Its peer gone at 5 s: sending on (a publisher's stream), hearing nothing until 12 s.
        let packets = |now: u64| {
            let heard = if (5_000 * MS..12_000 * MS).contains(&now) {
                5_000 * MS
            } else {
                now
            };
            (heard / (2 * MS), now / (2 * MS))
        };
        let mut deaf = Deaf::new();
        let at = deaf_at(&mut deaf, 15, packets);
        assert_eq!(at.first(), Some(&(7_500 * MS)));
        assert_eq!(at.last(), Some(&(11_750 * MS)));
        assert_eq!(at.len(), 18);
        assert_eq!(deaf.silent_us(15_000 * MS), 0);
    }

    #[test]
    fn a_viewer_that_only_receives_is_deaf_once_its_keep_alives_go_unanswered() {
        // Nothing comes after 5 s; its acknowledgements stop with it, and the keep-alive (at
        // 6.5 s) and its retransmission (at 6.8 s) are the next packets out.
        let packets = |now: u64| {
            let received = now.min(5_000 * MS) / (2 * MS);
            let sent = now.min(5_000 * MS) / (20 * MS)
                + u64::from(now >= 6_500 * MS)
                + u64::from(now >= 6_800 * MS);
            (received, sent)
        };
        let mut deaf = Deaf::new();
        assert_eq!(deaf_at(&mut deaf, 9, packets).first(), Some(&(7_500 * MS)));
        assert_eq!(deaf.silent_us(9_000 * MS), 4_000 * MS);
    }

    #[test]
    fn with_a_short_idle_timeout_it_is_deaf_after_half_of_it() {
        assert_eq!(deaf_after_us(6_000 * MS), DEAF_US);
        assert_eq!(deaf_after_us(1_200 * MS), 600 * MS);
        // A publisher whose relay died at 5 s: found at 5.75 s (looked at every 250 ms)
        // rather than at 7.5 s, which its 1.2 s idle timeout would not have lived to see.
        let packets = |now: u64| {
            let heard = now.min(5_000 * MS);
            (heard / (2 * MS), now / (2 * MS))
        };
        let mut deaf = Deaf::after(deaf_after_us(1_200 * MS));
        assert_eq!(deaf_at(&mut deaf, 8, packets).first(), Some(&(5_750 * MS)));
        // A viewer's keep-alives (every 300 ms) going unanswered after its stream stopped.
        let viewer = |now: u64| {
            let received = now.min(5_000 * MS) / (2 * MS);
            let sent =
                now.min(5_000 * MS) / (20 * MS) + now.saturating_sub(5_000 * MS) / (300 * MS);
            (received, sent)
        };
        let mut deaf = Deaf::after(deaf_after_us(1_200 * MS));
        assert_eq!(deaf_at(&mut deaf, 8, viewer).first(), Some(&(5_750 * MS)));
    }

    #[test]
    fn a_connection_that_is_not_up_is_not_deaf() {
        let mut deaf = Deaf::new();
        assert!(!deaf.check(0, Some(10), Some(10)));
        assert!(!deaf.check(3_000 * MS, None, None));
        // A new connection's counts start afresh.
        assert!(!deaf.check(3_500 * MS, Some(0), Some(3)));
        assert!(!deaf.check(5_500 * MS, Some(0), Some(9)));
        assert!(deaf.check(6_000 * MS, Some(0), Some(12)));
    }
}
