//! When Lantern's own compositor lets the app draw its next frame (the `wl_surface.frame`
//! callback), chosen for input-to-photon rather than a free-running output clock:
//!
//! - a callback goes out once the frame the app committed with it has been **taken** (copied
//!   for the encoder), so the app never draws frames nobody will see;
//! - at most one a frame interval (the session's fps), measured from the last release;
//! - a discrete input (a key, a button, a touch) delivered to the app **boosts**: the held
//!   callback goes at once, cap or not, so the press lands in the very next app frame.
//!   Continuous motion does not boost;
//! - a frame nobody takes is let go after [`HOLD_MAX_US`], so an app whose picture is not
//!   being captured (before the capture connects, or while the encoder is stalled) slows down
//!   instead of freezing.
//!
//! Times are µs on any one monotonic clock; the compositor reads the clock and sends the
//! callbacks.

/// The longest a callback waits for its frame to be taken.
pub const HOLD_MAX_US: u64 = 100_000;

/// What the compositor does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// Send the held callbacks now. The app has waited `waited_us` for them since its
    /// commit; `boosted`: an input sent them before the cap would have.
    Release { waited_us: u64, boosted: bool },
    /// Ask again at this time (or when something happens first).
    At(u64),
    /// Nothing is held: wait for the app's next commit.
    Idle,
}

#[derive(Clone, Debug)]
pub struct AppPacer {
    interval_us: u64,
    last_release_us: Option<u64>,
    /// The app committed asking for a callback, at this time.
    held_since_us: Option<u64>,
    /// The frame committed with the held callback has been taken (or carried no new picture).
    taken: bool,
    /// A discrete input reached the app since the last release.
    boost: bool,
}

impl AppPacer {
    pub fn new(fps: f64) -> Self {
        Self {
            interval_us: (1e6 / fps.max(1.0)) as u64,
            last_release_us: None,
            held_since_us: None,
            taken: false,
            boost: false,
        }
    }

    /// The app committed. `wants_callback`: the commit asked for a frame callback;
    /// `new_picture`: it brought a new buffer (which must be taken before the callback goes).
    pub fn committed(&mut self, now_us: u64, wants_callback: bool, new_picture: bool) {
        if new_picture {
            self.taken = false;
        } else if self.held_since_us.is_none() {
            // A commit with nothing to show waits only for the cap.
            self.taken = true;
        }
        if wants_callback && self.held_since_us.is_none() {
            self.held_since_us = Some(now_us);
        }
    }

    /// The newest committed picture was copied for the encoder.
    pub fn taken(&mut self) {
        self.taken = true;
    }

    /// A key, button or touch was delivered to the app.
    pub fn discrete_input(&mut self) {
        self.boost = true;
    }

    pub fn poll(&mut self, now_us: u64) -> Wake {
        let Some(held_since) = self.held_since_us else {
            return Wake::Idle;
        };
        let give_up = held_since + HOLD_MAX_US;
        let due = self
            .last_release_us
            .map_or(now_us, |last| last + self.interval_us);
        let release = if self.taken {
            self.boost || now_us >= due
        } else {
            now_us >= give_up
        };
        if release {
            let boosted = self.boost && now_us < due;
            self.last_release_us = Some(now_us);
            self.held_since_us = None;
            self.boost = false;
            return Wake::Release {
                waited_us: now_us.saturating_sub(held_since),
                boosted,
            };
        }
        Wake::At(if self.taken { due } else { give_up })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: u64 = 16_666;

    /// Drive an app that commits a new picture with a callback as soon as it gets one, and a
    /// capture that takes each picture `take_after` µs after its commit (`None`: never), for
    /// `until` µs; the release times, and how many of them an input brought forward.
    fn run(take_after: Option<u64>, until: u64, inputs: &[u64]) -> (Vec<u64>, u64) {
        let mut pacer = AppPacer::new(60.0);
        let (mut releases, mut boosts) = (Vec::new(), 0);
        let mut now = 0;
        let mut committed_at = Some(0);
        pacer.committed(0, true, true);
        let mut inputs = inputs.iter().copied().peekable();
        while now < until {
            if let (Some(at), Some(after)) = (committed_at, take_after)
                && now >= at + after
            {
                pacer.taken();
                committed_at = None;
            }
            if inputs.peek().is_some_and(|&t| t <= now) {
                inputs.next();
                pacer.discrete_input();
            }
            if let Wake::Release { boosted, .. } = pacer.poll(now) {
                releases.push(now);
                boosts += u64::from(boosted);
                // The app draws for 2 ms and commits again.
                now += 2_000;
                pacer.committed(now, true, true);
                committed_at = Some(now);
                continue;
            }
            now += 500;
        }
        (releases, boosts)
    }

    #[test]
    fn callbacks_wait_for_the_frame_to_be_taken_and_never_beat_the_fps() {
        let (releases, _) = run(Some(1_000), 1_000_000, &[]);
        let gaps: Vec<u64> = releases.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.iter().all(|&g| g >= FRAME), "{gaps:?}");
        assert!(gaps.iter().all(|&g| g <= FRAME + 500), "{gaps:?}");
        // A capture slower than the fps sets the pace instead.
        let (slow, _) = run(Some(30_000), 1_000_000, &[]);
        let gaps: Vec<u64> = slow.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.iter().all(|&g| g >= 32_000), "{gaps:?}");
    }

    #[test]
    fn a_press_releases_the_held_callback_at_once_and_motion_does_not() {
        let (plain, _) = run(Some(1_000), 200_000, &[]);
        let (boosted, boosts) = run(Some(1_000), 200_000, &[50_000]);
        assert_eq!(boosts, 1);
        let first_after = |r: &[u64]| *r.iter().find(|&&t| t >= 50_000).unwrap();
        assert!(first_after(&boosted) < first_after(&plain));
        assert_eq!(first_after(&boosted), 50_000);
    }

    #[test]
    fn a_press_before_the_frame_is_taken_waits_for_the_take() {
        let mut pacer = AppPacer::new(60.0);
        pacer.committed(0, true, true);
        pacer.discrete_input();
        assert_eq!(pacer.poll(1_000), Wake::At(HOLD_MAX_US));
        pacer.taken();
        // The first callback is due at once: the input did not bring it forward.
        let released = Wake::Release {
            waited_us: 2_000,
            boosted: false,
        };
        assert_eq!(pacer.poll(2_000), released);
    }

    #[test]
    fn an_untaken_frame_is_let_go_after_the_hold_limit() {
        let (releases, _) = run(None, 1_000_000, &[]);
        let gaps: Vec<u64> = releases.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(!gaps.is_empty());
        assert!(gaps.iter().all(|&g| g >= HOLD_MAX_US), "{gaps:?}");
    }

    /// Random commits, takes, inputs and polls (a seeded generator, many runs): a release
    /// never comes with nothing held, never before the cap unless an input asked, and never
    /// before the picture was taken unless it was held for the hold limit.
    #[test]
    fn whatever_happens_the_rules_hold() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..200 {
            let mut pacer = AppPacer::new([30.0, 60.0, 144.0][next(3) as usize]);
            let interval = pacer.interval_us;
            let (mut now, mut last_release) = (0u64, None::<u64>);
            let (mut held_since, mut taken, mut input) = (None::<u64>, true, false);
            for _ in 0..500 {
                now += next(20_000);
                match next(4) {
                    0 => {
                        let (wants, picture) = (next(4) != 0, next(3) != 0);
                        pacer.committed(now, wants, picture);
                        if picture {
                            taken = false;
                        } else if held_since.is_none() {
                            taken = true;
                        }
                        if wants && held_since.is_none() {
                            held_since = Some(now);
                        }
                    }
                    1 => {
                        pacer.taken();
                        taken = true;
                    }
                    2 => {
                        pacer.discrete_input();
                        input = true;
                    }
                    _ => {}
                }
                match pacer.poll(now) {
                    Wake::Release { waited_us, boosted } => {
                        assert!(!boosted || input, "a boost with no input");
                        let since = held_since.expect("a release with nothing held");
                        assert_eq!(waited_us, now - since);
                        assert!(
                            taken || now >= since + HOLD_MAX_US,
                            "released an untaken picture"
                        );
                        if let Some(last) = last_release {
                            assert!(input || now >= last + interval, "released before the cap");
                        }
                        (last_release, held_since, input) = (Some(now), None, false);
                    }
                    Wake::At(at) => assert!(at > now, "asked to wait for the past"),
                    Wake::Idle => assert!(held_since.is_none()),
                }
            }
        }
    }

    #[test]
    fn a_commit_without_a_picture_waits_only_for_the_cap() {
        let mut pacer = AppPacer::new(60.0);
        assert_eq!(pacer.poll(0), Wake::Idle);
        pacer.committed(0, true, false);
        let first = Wake::Release {
            waited_us: 0,
            boosted: false,
        };
        assert_eq!(pacer.poll(0), first);
        pacer.committed(1_000, true, false);
        assert_eq!(pacer.poll(1_000), Wake::At(FRAME));
        assert_eq!(
            pacer.poll(FRAME),
            Wake::Release {
                waited_us: FRAME - 1_000,
                boosted: false,
            }
        );
        assert_eq!(pacer.poll(FRAME + 1), Wake::Idle);
    }
}
