//! The MoQ stack's warnings that repeat. While a relay is down, moq-tokio logs every dial that
//! failed and every backoff it waits: about three lines a second in every process that uses
//! the relay (measured: 55 lines from moq-pub and as many from moq-sub over a 20 s outage), so
//! an hour's outage buries everything else in its log. Each of its log lines is shown, then
//! left out for [`QUIET`] wherever it repeats; the binaries' own lines say when the relay was
//! lost and when it came back. `RUST_LOG` shows them all.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use tracing::callsite::Identifier;
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// How long a line, once shown, is left out when it comes again.
pub const QUIET: Duration = Duration::from_secs(10);

/// The targets whose lines are thinned: the MoQ stack's connection handling.
const TARGET: &str = "moq_tokio";

/// Which lines to show, by where in the code they come from. Pure: every call takes the time.
/// Its keys are the program's own log statements, so it grows with the code, not with what
/// a peer sends.
#[derive(Debug)]
pub struct Repeats<K> {
    shown: HashMap<K, Instant>,
}

impl<K: Eq + Hash> Repeats<K> {
    pub fn new() -> Self {
        Self {
            shown: HashMap::new(),
        }
    }

    /// Whether the line from `key` at `now` is shown: the first time, and once [`QUIET`] has
    /// passed since it was last shown.
    pub fn show(&mut self, key: K, now: Instant) -> bool {
        match self.shown.get(&key) {
            Some(&at) if now.saturating_duration_since(at) < QUIET => false,
            _ => {
                self.shown.insert(key, now);
                true
            }
        }
    }
}

impl<K: Eq + Hash> Default for Repeats<K> {
    fn default() -> Self {
        Self::new()
    }
}

/// A layer that leaves out the MoQ stack's repeated lines (see the module's words).
#[derive(Default)]
pub struct Throttle {
    repeats: Mutex<Repeats<Identifier>>,
}

impl<S: Subscriber> Layer<S> for Throttle {
    fn event_enabled(&self, event: &Event<'_>, _: Context<'_, S>) -> bool {
        let metadata = event.metadata();
        if !metadata.target().starts_with(TARGET) {
            return true;
        }
        self.repeats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .show(metadata.callsite(), Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_that_repeats_is_shown_once_in_each_quiet_spell() {
        let start = Instant::now();
        let mut repeats = Repeats::new();
        // The dial's line and the backoff's, each about every 350 ms for a minute.
        let shown: Vec<(u64, &str)> = (0..170u64)
            .flat_map(|i| [(i * 350, "dial failed"), (i * 350 + 1, "backing off")])
            .filter(|&(ms, line)| repeats.show(line, start + Duration::from_millis(ms)))
            .collect();
        let at = |line: &str| -> Vec<u64> {
            shown
                .iter()
                .filter(|(_, l)| *l == line)
                .map(|(ms, _)| *ms)
                .collect()
        };
        // The first at once, then the first of each spell of 10 s after one shown.
        assert_eq!(at("dial failed"), [0, 10150, 20300, 30450, 40600, 50750]);
        assert_eq!(at("backing off"), [1, 10151, 20301, 30451, 40601, 50751]);
    }

    #[test]
    fn a_line_after_a_long_quiet_is_shown_at_once() {
        let start = Instant::now();
        let mut repeats = Repeats::new();
        assert!(repeats.show("session closed", start));
        assert!(!repeats.show("session closed", start + Duration::from_secs(9)));
        assert!(repeats.show("session closed", start + Duration::from_secs(60)));
        // Another line is its own.
        assert!(repeats.show("reconnecting", start + Duration::from_secs(60)));
    }
}
