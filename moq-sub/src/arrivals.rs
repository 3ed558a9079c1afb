//! The video's frames as they arrive: a task reads them off the network the moment they come
//! and feeds the path's meter with that moment, so a slow decoder or output is never taken
//! for a slow path (which would have the host cut the stream for every viewer). The player
//! takes them from a [`Backlog`], which skips what a player that fell behind no longer needs
//! and asks for a keyframe to catch up with.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use lantern_proto::backlog::{Backlog, Taken};
use lantern_proto::clock;
use lantern_proto::timing::{JoinCheck, Joined};
use tokio_util::sync::CancellationToken;

use crate::error::Cause;
use crate::feed::{Encoded, Feed};
use crate::feedback;

/// A frame and when it came off the network (µs since the UNIX epoch).
pub(crate) struct Arrived {
    pub frame: Encoded,
    pub arrived_us: u64,
}

/// What the player gets next.
pub(crate) enum Next {
    Frame(Taken<Arrived>),
    /// The track ended.
    Ended,
    Failed(Cause),
    /// Nothing came within the wait.
    Quiet,
    Stopped,
}

#[derive(Default)]
enum End {
    #[default]
    Open,
    Ended,
    Failed(Cause),
    Stopped,
}

struct State {
    backlog: Backlog<Arrived>,
    end: End,
}

struct Shared {
    state: Mutex<State>,
    arrived: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn end(&self, end: End) {
        self.lock().end = end;
        self.arrived.notify_all();
    }
}

/// The reading task and the queue it fills; the task ends with this.
pub(crate) struct Arrivals {
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Arrivals {
    /// Read `feed` on `runtime` until it ends, fails or `stop`. Frames in groups (a MoQ
    /// track) are skipped by group; RTP's pieces only bounded.
    pub fn start(
        runtime: &tokio::runtime::Handle,
        feed: Feed,
        path: feedback::Path,
        stop: CancellationToken,
    ) -> Self {
        let groups = !matches!(feed, Feed::Rtp(_));
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                backlog: Backlog::new(groups),
                end: End::Open,
            }),
            arrived: Condvar::new(),
        });
        let task = runtime.spawn(read(feed, shared.clone(), path, stop));
        Self { shared, task }
    }

    /// The next frame, waiting for one at most `within`.
    pub fn next(&self, within: Duration) -> Next {
        let deadline = Instant::now() + within;
        let mut state = self.shared.lock();
        loop {
            if let Some(taken) = state.backlog.pop() {
                return Next::Frame(taken);
            }
            match std::mem::take(&mut state.end) {
                End::Open => {}
                End::Ended => return Next::Ended,
                End::Failed(cause) => return Next::Failed(cause),
                End::Stopped => return Next::Stopped,
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return Next::Quiet;
            };
            state = self.wait(state, left);
        }
    }

    /// Whether the group of the keyframe just taken (media time `pts_us`, arrived at
    /// `arrived_us`) began well before the viewer joined: the frames behind it are looked at
    /// where they wait, as they come, until a [`JoinCheck`] tells. A newer keyframe among them
    /// makes it stale too; the end of the track, or of the look, makes it live.
    pub fn began_before(&self, pts_us: u64, arrived_us: u64) -> bool {
        let check = JoinCheck::new(pts_us, arrived_us);
        let look = check.until_us().saturating_sub(clock::now_unix_us());
        let deadline = Instant::now() + Duration::from_micros(look);
        let mut looked = 0;
        let mut state = self.shared.lock();
        loop {
            // Fewer waiting than looked at: a keyframe came and dropped the rest.
            if state.backlog.len() < looked {
                return true;
            }
            for (behind, arrived_us) in state.backlog.waiting().skip(looked) {
                looked += 1;
                if behind.frame.keyframe {
                    return true;
                }
                match check.frame(behind.frame.pts_us, arrived_us) {
                    Joined::Backlog => return true,
                    Joined::Live => return false,
                    Joined::Unsure => {}
                }
            }
            let open = matches!(state.end, End::Open);
            let left = deadline.checked_duration_since(Instant::now());
            let Some(left) = left.filter(|_| open) else {
                return false;
            };
            state = self.wait(state, left);
        }
    }

    fn wait<'a>(&self, state: MutexGuard<'a, State>, left: Duration) -> MutexGuard<'a, State> {
        self.shared
            .arrived
            .wait_timeout(state, left)
            .unwrap_or_else(PoisonError::into_inner)
            .0
    }
}

impl Drop for Arrivals {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn read(mut feed: Feed, shared: Arc<Shared>, path: feedback::Path, stop: CancellationToken) {
    loop {
        let read = tokio::select! {
            read = feed.read() => read,
            () = stop.cancelled() => return shared.end(End::Stopped),
        };
        let frame = match read {
            Ok(Some(frame)) => frame,
            Ok(None) => return shared.end(End::Ended),
            Err(cause) => return shared.end(End::Failed(cause)),
        };
        let now = clock::now_unix_us();
        let (bytes, key) = (frame.payload.len(), frame.keyframe);
        path.lock()
            .frame(now, frame.pts_us, frame.captured_us, bytes, key);
        let arrived = Arrived {
            frame,
            arrived_us: now,
        };
        let pushed = shared.lock().backlog.push(arrived, bytes, key, now);
        shared.arrived.notify_one();
        if pushed.ask_keyframe {
            path.lock().want_keyframe();
        }
    }
}
