//! A connection that has gone mute: the application keeps handing it messages (a viewer's
//! reports go every [`crate::feedback::INTERVAL_US`]) and it is still up, but no packet
//! leaves it for [`MUTE_US`]. Pure: every call takes the time.
//!
//! Seen on mahimahi's AT&T LTE trace (10 s with one delivery a second, the queue holding
//! what went in before): in two runs of five the viewer's connection stopped sending at all,
//! reports, acknowledgements and keep-alives alike, from about 7 s into the outage until 8 s
//! after the path had come back (its smoothed round trip had grown to 5–6.6 s from packets
//! that waited out the outage in the queue), and was never closed, so nothing redialed; the
//! player's own quiet rule (`--timeout`, 10 s without a frame) ended it. A live connection on
//! a dead path still sends: the reports went out at their 13 kbit/s through every other
//! outage. So a mute one is taken as lost, and dialed afresh.

/// No packet sent for this long, with messages handed over all of it, is mute.
pub const MUTE_US: u64 = 3_000_000;
/// At least this many messages handed while nothing was sent (a viewer hands about 60 in
/// [`MUTE_US`]): an application that has nothing to send is no mute connection.
pub const MUTE_HANDED: u64 = 10;

/// Watches one connection's packets sent against the messages handed to it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Mute {
    /// The packets sent when last seen to change, when, and the messages handed by then.
    last: Option<(u64, u64, u64)>,
}

impl Mute {
    pub fn new() -> Self {
        Self::default()
    }

    /// At `now_us`: the connection's packets sent so far (`None` while it is not up) and
    /// the messages handed to it so far. True when it has gone mute; the watch then starts
    /// again (for the connection that replaces it).
    pub fn check(&mut self, now_us: u64, packets_sent: Option<u64>, handed: u64) -> bool {
        let Some(sent) = packets_sent else {
            self.last = None;
            return false;
        };
        match self.last {
            Some((seen, since, handed_then))
                if seen == sent
                    && now_us.saturating_sub(since) >= MUTE_US
                    && handed.saturating_sub(handed_then) >= MUTE_HANDED =>
            {
                self.last = None;
                true
            }
            Some((seen, ..)) if seen == sent => false,
            // Sent something (or a new connection's count): watch from here.
            _ => {
                self.last = Some((sent, now_us, handed));
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1000;

    /// Checks every 500 ms from `from` for `seconds`: a report handed every 50 ms, and the
    /// connection's packets from `sent` (µs → packets so far, or `None`). The first time it
    /// is found mute.
    fn watch(mute: &mut Mute, seconds: u64, sent: impl Fn(u64) -> Option<u64>) -> Option<u64> {
        (0..=seconds * 2)
            .map(|i| i * 500 * MS)
            .find(|&now| mute.check(now, sent(now), now / (50 * MS)))
    }

    #[test]
    fn a_connection_that_sends_is_never_mute() {
        assert_eq!(
            watch(&mut Mute::new(), 30, |now| Some(now / (50 * MS))),
            None
        );
        // A few packets a second (a dead path's probes and reports) are enough.
        assert_eq!(
            watch(&mut Mute::new(), 30, |now| Some(now / (900 * MS))),
            None
        );
    }

    #[test]
    fn one_that_sends_nothing_for_three_seconds_while_handed_reports_is_mute_once() {
        let mut mute = Mute::new();
        let sent = |now: u64| {
            Some(if now < 10_000 * MS {
                now / (50 * MS)
            } else {
                200
            })
        };
        assert_eq!(watch(&mut mute, 30, sent), Some(13_000 * MS));
        // The watch starts again: three more seconds of nothing for the next.
        assert!(!mute.check(13_500 * MS, Some(200), 300));
        assert!(!mute.check(16_000 * MS, Some(200), 330));
        assert!(mute.check(16_500 * MS, Some(200), 340));
    }

    #[test]
    fn nothing_handed_or_no_connection_is_no_mute() {
        let mut mute = Mute::new();
        // An application with nothing to send (a viewer without feedback).
        assert!((0..20).all(|i| !mute.check(i * 500 * MS, Some(5), 3)));
        // Between dials there are no figures; the new connection's count starts at zero.
        let mut mute = Mute::new();
        assert!(!mute.check(0, Some(100), 0));
        assert!(!mute.check(2_500 * MS, None, 50));
        assert!(!mute.check(3_000 * MS, Some(0), 60));
        assert!(!mute.check(5_500 * MS, Some(0), 110));
        assert!(mute.check(6_000 * MS, Some(0), 120));
    }
}
