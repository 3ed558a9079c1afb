//! Telling the publisher what this viewer's path does: the player thread feeds a
//! [`lantern_proto::feedback::Meter`] as frames arrive (and asks for keyframes when it must
//! wait for one), and a task sends its reports on the viewer's `feedback` track, with the
//! relay's (or server's) own estimate of the path when moq-lite's PROBE carries one.
//! A host takes the reports of its granted players only; `moq-pub --feedback open` takes
//! everyone's.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use lantern_net::input::FeedbackSender;
use lantern_proto::clock;
use lantern_proto::feedback::Meter;
use tokio_util::sync::CancellationToken;

/// How often the task looks whether a report is due (reports go every 50 ms, and at once
/// for a keyframe request).
const LOOK_EVERY: Duration = Duration::from_millis(10);

/// The meter the player thread feeds. Cheap to clone.
#[derive(Clone, Default)]
pub struct Path(Arc<Mutex<Meter>>);

impl Path {
    pub fn lock(&self) -> std::sync::MutexGuard<'_, Meter> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Send `path`'s reports through `sender` until `stop`, counting each one handed over in
/// `handed`; `estimate` is the current connection's receive-side bandwidth (what the far
/// end's congestion controller says it can send here), swapped when the connection is.
pub async fn send(
    path: Path,
    mut sender: FeedbackSender,
    estimate: tokio::sync::watch::Receiver<moq_net::bandwidth::Consumer>,
    handed: Arc<AtomicU64>,
    stop: CancellationToken,
) {
    let mut every = tokio::time::interval(LOOK_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failed = false;
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = stop.cancelled() => return,
        }
        let report = {
            let mut meter = path.lock();
            let kbps = estimate.borrow().peek().map(|rate| rate.as_bps() / 1000);
            meter.path_estimate(kbps);
            meter.report(clock::now_unix_us())
        };
        let Some(report) = report else { continue };
        match sender.send(&report) {
            Ok(()) => {
                failed = false;
                handed.fetch_add(1, Ordering::Relaxed);
            }
            Err(err) if !failed => {
                // Once per failure run: the connection redials and the track comes back.
                failed = true;
                tracing::debug!(err = &err as &dyn std::error::Error, "feedback not sent");
            }
            Err(_) => {}
        }
    }
}
