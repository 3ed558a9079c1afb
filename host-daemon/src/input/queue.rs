//! What viewers' tasks hand the injector thread: one bounded queue per viewer, served in
//! turn, so one viewer's flood neither grows the daemon's memory nor puts another viewer's
//! press behind it. A viewer whose queue is full has its next batch dropped (counted by the
//! caller); joining, leaving and the releases the host makes itself always go in, since
//! each viewer makes at most a few of them.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use lantern_proto::input::Event;

/// Batches one viewer may have waiting.
pub const PER_VIEWER: usize = 64;

/// What a viewer's task asks of the injector thread.
#[derive(Debug, PartialEq)]
pub enum Command {
    /// An authorized viewer arrived: make its devices before its first press.
    Join,
    Inject {
        events: Vec<Event>,
        /// The viewer's send time and when the datagram arrived, for the input leg (`None`
        /// for releases made here).
        sent_us: Option<(u64, u64)>,
    },
    Forget,
}

impl Command {
    /// Whether it goes in even over the bound: the viewer's coming and going, and releases
    /// the host makes (a dropped release would leave a key held).
    fn always(&self) -> bool {
        !matches!(
            self,
            Self::Inject {
                sent_us: Some(_),
                ..
            }
        )
    }
}

/// What the injector thread is handed.
#[derive(Debug, PartialEq)]
pub enum Next {
    Command(u64, Command),
    /// Nothing came within the wait.
    Idle,
    /// Closed, and everything queued was taken.
    Closed,
}

#[derive(Default)]
pub struct Queue {
    state: Mutex<State>,
    ready: Condvar,
}

#[derive(Default)]
struct State {
    viewers: BTreeMap<u64, VecDeque<Command>>,
    /// The viewer served last: the next turn is the next one after it.
    last: u64,
    closed: bool,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A queue of plain data: a panic elsewhere leaves it usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queue `command` from `viewer`; false when it was dropped (the viewer has
    /// [`PER_VIEWER`] batches waiting already, or the queue is closed).
    pub fn push(&self, viewer: u64, command: Command) -> bool {
        let mut state = self.lock();
        if state.closed {
            return false;
        }
        let queued = state.viewers.entry(viewer).or_default();
        if queued.len() >= PER_VIEWER && !command.always() {
            return false;
        }
        queued.push_back(command);
        drop(state);
        self.ready.notify_one();
        true
    }

    /// The next viewer's next command, waiting up to `wait`. Viewers take turns: each turn is
    /// one command of the next viewer (by slot) after the one served last.
    pub fn next(&self, wait: Duration) -> Next {
        let mut state = self.lock();
        if state.viewers.is_empty() && !state.closed {
            state = self
                .ready
                .wait_timeout_while(state, wait, |s| s.viewers.is_empty() && !s.closed)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        let after = state.last;
        let Some(viewer) = (state.viewers.range(after + 1..).next())
            .or_else(|| state.viewers.iter().next())
            .map(|(viewer, _)| *viewer)
        else {
            return if state.closed {
                Next::Closed
            } else {
                Next::Idle
            };
        };
        let queued = state.viewers.get_mut(&viewer);
        let command = queued.and_then(|queued| Some((queued.pop_front()?, queued.is_empty())));
        // A queue is removed when it empties, so the one found holds a command.
        let Some((command, emptied)) = command else {
            return Next::Idle;
        };
        if emptied {
            state.viewers.remove(&viewer);
        }
        state.last = viewer;
        Next::Command(viewer, command)
    }

    /// Drop the batches `viewer` sent that are still waiting (its grant ended: nothing more
    /// of it lands); its coming, going and the host's releases stay. How many were dropped.
    pub fn discard(&self, viewer: u64) -> usize {
        let mut state = self.lock();
        let Some(queued) = state.viewers.get_mut(&viewer) else {
            return 0;
        };
        let before = queued.len();
        queued.retain(Command::always);
        let discarded = before - queued.len();
        if queued.is_empty() {
            state.viewers.remove(&viewer);
        }
        discarded
    }

    /// No more commands: the injector takes what is queued, then [`Next::Closed`].
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u16) -> Command {
        Command::Inject {
            events: vec![Event::Key {
                usage: n,
                down: true,
            }],
            sent_us: Some((0, 0)),
        }
    }

    #[test]
    fn a_flooding_viewer_is_bounded_and_another_viewer_goes_next() {
        let queue = Queue::default();
        assert!(queue.push(1, Command::Join));
        for n in 1..PER_VIEWER as u16 {
            assert!(queue.push(1, key(n)));
        }
        // Full: more input is dropped, its own release is not.
        assert!(!queue.push(1, key(999)));
        let release = Command::Inject {
            events: vec![],
            sent_us: None,
        };
        assert!(queue.push(1, release));
        // Viewer 2's press goes second, not after the 65 of viewer 1.
        assert!(queue.push(2, key(7)));
        assert_eq!(queue.next(Duration::ZERO), Next::Command(1, Command::Join));
        assert_eq!(queue.next(Duration::ZERO), Next::Command(2, key(7)));
        // Each viewer's own order holds.
        for n in 1..PER_VIEWER as u16 {
            assert_eq!(queue.next(Duration::ZERO), Next::Command(1, key(n)));
        }
        assert!(matches!(
            queue.next(Duration::ZERO),
            Next::Command(1, Command::Inject { sent_us: None, .. })
        ));
        assert_eq!(queue.next(Duration::ZERO), Next::Idle);
    }

    #[test]
    fn a_viewer_whose_grant_ended_has_its_waiting_input_dropped_but_not_its_releases() {
        let queue = Queue::default();
        assert!(queue.push(1, Command::Join));
        assert!(queue.push(1, key(1)));
        assert!(queue.push(2, key(2)));
        assert!(queue.push(1, key(3)));
        assert_eq!(queue.discard(1), 2);
        let release = Command::Inject {
            events: vec![],
            sent_us: None,
        };
        assert!(queue.push(1, release));
        assert_eq!(queue.next(Duration::ZERO), Next::Command(1, Command::Join));
        assert_eq!(queue.next(Duration::ZERO), Next::Command(2, key(2)));
        assert!(matches!(
            queue.next(Duration::ZERO),
            Next::Command(1, Command::Inject { sent_us: None, .. })
        ));
        assert_eq!(queue.next(Duration::ZERO), Next::Idle);
        assert_eq!(queue.discard(1), 0);
        // A viewer left with nothing waiting is gone from the turns.
        assert!(queue.push(4, key(4)));
        assert_eq!(queue.discard(4), 1);
        assert_eq!(queue.next(Duration::ZERO), Next::Idle);
    }

    #[test]
    fn a_closed_queue_hands_out_what_it_holds_then_says_so() {
        let queue = Queue::default();
        assert!(queue.push(3, Command::Forget));
        queue.close();
        assert!(!queue.push(3, key(1)));
        assert_eq!(
            queue.next(Duration::ZERO),
            Next::Command(3, Command::Forget)
        );
        assert_eq!(queue.next(Duration::from_secs(60)), Next::Closed);
    }

    #[test]
    fn a_waiting_injector_wakes_for_a_push() {
        let queue = std::sync::Arc::new(Queue::default());
        let pusher = {
            let queue = queue.clone();
            std::thread::spawn(move || queue.push(5, Command::Join))
        };
        // Waits until the push, however late it comes (an hour is never reached).
        loop {
            match queue.next(Duration::from_secs(3600)) {
                Next::Command(5, Command::Join) => break,
                Next::Idle => continue,
                other => panic!("{other:?}"),
            }
        }
        assert!(pusher.join().unwrap());
    }
}
