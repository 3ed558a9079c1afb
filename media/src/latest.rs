//! "The newest wins": the hand-off between a thread that makes pictures and one that uses
//! them, where a picture not taken before the next one comes is worth nothing (a live viewer
//! wants the newest). The newer replaces it, and the displaced one is handed back to its maker
//! to count as a drop and to fill again; a picture the user is done with can be handed back
//! the same way ([`Latest::recycle`]), so that neither side allocates once running. At most
//! one picture waits and one spare is kept, whatever the pace of either side.
//!
//! Used between moq-pub's capture and encoding threads, moq-sub's player and its window, and
//! host-daemon's PipeWire loop and its encoding thread.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

pub struct Latest<T> {
    slot: Mutex<Slot<T>>,
    ready: Condvar,
}

struct Slot<T> {
    value: Option<T>,
    spare: Option<T>,
    closed: bool,
    /// Takers waiting for a value.
    waiting: usize,
}

/// Why [`Latest::take`] came back without a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Empty {
    /// Closed, and the last value taken.
    Closed,
    /// Nothing came within the wait.
    Quiet,
}

impl<T> Default for Latest<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Latest<T> {
    pub fn new() -> Self {
        Self {
            slot: Mutex::new(Slot {
                value: None,
                spare: None,
                closed: false,
                waiting: 0,
            }),
            ready: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Slot<T>> {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Leave `value`, handing back the one it displaced (never taken).
    pub fn put(&self, value: T) -> Option<T> {
        let old = self.lock().value.replace(value);
        self.ready.notify_one();
        old
    }

    /// The waiting value, if one is, without waiting.
    pub fn try_take(&self) -> Option<T> {
        self.lock().value.take()
    }

    /// The next value, waiting at most `within` (`None`: until one comes or it is closed). A
    /// closed hand-off still gives its last value first.
    pub fn take(&self, within: Option<Duration>) -> Result<T, Empty> {
        let deadline = within.map(|within| Instant::now() + within);
        let mut slot = self.lock();
        loop {
            if let Some(value) = slot.value.take() {
                return Ok(value);
            }
            if slot.closed {
                return Err(Empty::Closed);
            }
            slot.waiting += 1;
            slot = match deadline {
                None => self
                    .ready
                    .wait(slot)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                        slot.waiting -= 1;
                        return Err(Empty::Quiet);
                    };
                    self.ready
                        .wait_timeout(slot, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
            slot.waiting -= 1;
        }
    }

    /// No more values will come: a waiting taker wakes, and takes what is left.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    /// Hand a used value back for the maker to fill again (one is kept; more are dropped).
    pub fn recycle(&self, value: T) {
        self.lock().spare.get_or_insert(value);
    }

    /// A value handed back by [`recycle`](Self::recycle), to fill again.
    pub fn spare(&self) -> Option<T> {
        self.lock().spare.take()
    }

    /// How many takers wait now (for tests that must reach the wait).
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.lock().waiting
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn the_newest_wins_and_a_closed_one_drains_first() {
        let latest = Latest::new();
        assert_eq!(latest.put(1), None);
        assert_eq!(latest.put(2), Some(1));
        latest.close();
        assert_eq!(latest.take(None), Ok(2));
        assert_eq!(latest.take(None), Err(Empty::Closed));
    }

    #[test]
    fn nothing_in_time_is_quiet() {
        let latest = Latest::<u32>::new();
        assert_eq!(latest.take(Some(Duration::ZERO)), Err(Empty::Quiet));
        assert_eq!(latest.waiting(), 0, "a taker that gave up does not wait on");
        assert_eq!(latest.try_take(), None);
        latest.put(3);
        assert_eq!(latest.take(Some(Duration::ZERO)), Ok(3));
        latest.put(4);
        assert_eq!(latest.try_take(), Some(4));
    }

    #[test]
    fn one_spare_is_kept() {
        let latest = Latest::<u32>::new();
        assert_eq!(latest.spare(), None);
        latest.recycle(5);
        latest.recycle(6);
        assert_eq!(latest.spare(), Some(5));
        assert_eq!(latest.spare(), None);
    }

    /// A value put while the taker waits wakes it (the put comes only once the taker is seen
    /// waiting, so this is the wake-up, not a value found on arrival); so does a close.
    #[test]
    fn a_waiting_taker_wakes_for_a_value_and_for_a_close() {
        for close in [false, true] {
            let latest = Arc::new(Latest::new());
            let taker = {
                let latest = latest.clone();
                std::thread::spawn(move || latest.take(None))
            };
            let deadline = Instant::now() + Duration::from_secs(10);
            while latest.waiting() == 0 {
                assert!(Instant::now() < deadline, "the taker never waited");
                std::thread::yield_now();
            }
            if close {
                latest.close();
            } else {
                latest.put(7);
            }
            let expected = if close { Err(Empty::Closed) } else { Ok(7) };
            assert_eq!(taker.join().unwrap(), expected);
        }
    }
}
