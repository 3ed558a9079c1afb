//! The viewer's queue between the network and its decoder.
//!
//! Frames are read off the network as they arrive, so that what the viewer tells the host of
//! its path (arrival times, the queue on the way) is the path's and never its own decoder's;
//! the player takes them from this queue as fast as it decodes and shows them. When it cannot
//! keep up (a slow decoder, a slow output), the queue decides what is still worth showing:
//!
//! - a new group (a keyframe) makes every frame before it worthless: they go, and the player
//!   goes on from the keyframe (the newest group wins, as the track consumer decides on the
//!   network's side);
//! - a frame that waited here longer than [`BEHIND_US`] means the player is behind: a keyframe
//!   is asked for (once until one comes), so that it can skip ahead instead of waiting for the
//!   group's end;
//! - nothing waits without bound: past [`MAX_WAIT_US`] of waiting, [`MAX_FRAMES`] or
//!   [`MAX_BYTES`], every frame goes and the player waits for the next keyframe.
//!
//! Frames that come in pieces without groups (RTP) are only bounded: a piece is no keyframe
//! to restart from.

use std::collections::VecDeque;

/// A frame that waited this long (µs) means the player has fallen behind the stream.
pub const BEHIND_US: u64 = 150_000;
/// Frames that waited this long (µs) are dropped, all of them: a second late is worth nothing.
pub const MAX_WAIT_US: u64 = 1_000_000;
/// At most this many frames wait.
pub const MAX_FRAMES: usize = 1024;
/// At most this many bytes wait.
pub const MAX_BYTES: usize = 64 << 20;

struct Queued<T> {
    item: T,
    arrived_us: u64,
    bytes: usize,
}

/// A frame taken from the queue, with what was dropped before it.
#[derive(Debug, PartialEq, Eq)]
pub struct Taken<T> {
    pub item: T,
    /// Frames dropped since the last one taken.
    pub dropped: u64,
    /// Frames were dropped that later ones may depend on: show nothing until a keyframe.
    pub after_hole: bool,
}

/// What a frame's arrival asks of the viewer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pushed {
    /// The player is behind: ask the host for a keyframe.
    pub ask_keyframe: bool,
}

pub struct Backlog<T> {
    frames: VecDeque<Queued<T>>,
    bytes: usize,
    /// Frames come in groups led by a keyframe.
    groups: bool,
    dropped: u64,
    hole: bool,
    /// A keyframe was asked for and none has come since.
    asked: bool,
}

impl<T> Backlog<T> {
    /// A queue for frames in groups (`groups`: a keyframe starts one), or in pieces.
    pub fn new(groups: bool) -> Self {
        Self {
            frames: VecDeque::new(),
            bytes: 0,
            groups,
            dropped: 0,
            hole: false,
            asked: false,
        }
    }

    /// A frame of `bytes` arrived at `now_us`.
    pub fn push(&mut self, item: T, bytes: usize, key: bool, now_us: u64) -> Pushed {
        let key = key && self.groups;
        if key {
            // Whatever still waits belongs to an older group: the keyframe replaces it, and
            // nothing after it refers back.
            self.drop_all();
            self.hole = false;
            self.asked = false;
        }
        self.frames.push_back(Queued {
            item,
            arrived_us: now_us,
            bytes,
        });
        self.bytes += bytes;
        let waited = self.oldest_wait(now_us);
        if waited > MAX_WAIT_US || self.frames.len() > MAX_FRAMES || self.bytes > MAX_BYTES {
            self.drop_all();
            self.hole = true;
        }
        let behind = self.hole || waited > BEHIND_US;
        let ask_keyframe = self.groups && behind && !self.asked;
        self.asked |= ask_keyframe;
        Pushed { ask_keyframe }
    }

    /// The oldest frame waiting.
    pub fn pop(&mut self) -> Option<Taken<T>> {
        let queued = self.frames.pop_front()?;
        self.bytes -= queued.bytes;
        let taken = Taken {
            item: queued.item,
            dropped: std::mem::take(&mut self.dropped),
            after_hole: std::mem::take(&mut self.hole),
        };
        Some(taken)
    }

    /// The frames waiting, oldest first, each with when it arrived (µs).
    pub fn waiting(&self) -> impl Iterator<Item = (&T, u64)> {
        self.frames.iter().map(|q| (&q.item, q.arrived_us))
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// How long the oldest frame has waited at `now_us`, µs.
    fn oldest_wait(&self, now_us: u64) -> u64 {
        self.frames
            .front()
            .map_or(0, |q| now_us.saturating_sub(q.arrived_us))
    }

    fn drop_all(&mut self) {
        self.dropped += self.frames.len() as u64;
        self.frames.clear();
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME_US: u64 = 16_667;

    /// `frames` at 60 fps from `start_us`, the first a keyframe when `key`; the asks made.
    fn feed(q: &mut Backlog<u32>, first: u32, frames: u32, key: bool, start_us: u64) -> u32 {
        (0..frames)
            .filter(|i| {
                let now = start_us + u64::from(*i) * FRAME_US;
                q.push(first + i, 1000, key && *i == 0, now).ask_keyframe
            })
            .count() as u32
    }

    #[test]
    fn a_player_that_keeps_up_loses_nothing_and_asks_nothing() {
        let mut q = Backlog::new(true);
        for i in 0..600u32 {
            let now = u64::from(i) * FRAME_US;
            assert!(!q.push(i, 1000, i % 120 == 0, now).ask_keyframe);
            let taken = q.pop().unwrap();
            assert_eq!((taken.item, taken.dropped, taken.after_hole), (i, 0, false));
        }
        // A burst (frames held up on the way, then all at once) is no sign of being behind.
        for i in 0..20 {
            assert!(!q.push(600 + i, 1000, false, 10_000_000).ask_keyframe);
        }
        assert_eq!(q.len(), 20);
    }

    #[test]
    fn a_slow_player_asks_once_and_a_keyframe_drops_the_older_group() {
        let mut q = Backlog::new(true);
        // Nothing taken for half a second: one ask, once a frame has waited 150 ms.
        assert_eq!(feed(&mut q, 0, 30, true, 0), 1);
        assert_eq!(q.len(), 30);
        q.pop().unwrap();
        // The keyframe asked for comes: the 29 waiting frames go, it is next.
        assert_eq!(feed(&mut q, 30, 1, true, 30 * FRAME_US), 0);
        let taken = q.pop().unwrap();
        assert_eq!(
            (taken.item, taken.dropped, taken.after_hole),
            (30, 29, false)
        );
        // Behind again later: asked again.
        assert_eq!(feed(&mut q, 31, 30, false, 31 * FRAME_US), 1);
    }

    #[test]
    fn nothing_waits_past_a_second_and_what_follows_waits_for_a_keyframe() {
        let mut q = Backlog::new(true);
        feed(&mut q, 0, 61, true, 0);
        // The 61st frame finds the first a second old: everything goes.
        assert!(q.is_empty());
        feed(&mut q, 61, 1, false, 61 * FRAME_US);
        let taken = q.pop().unwrap();
        assert_eq!(
            (taken.item, taken.dropped, taken.after_hole),
            (61, 61, true)
        );
        // Bytes are bounded too.
        let mut q = Backlog::new(true);
        q.push(0, MAX_BYTES, true, 0);
        assert_eq!(q.len(), 1);
        q.push(1, 1, false, 1);
        assert!(q.is_empty() && q.pop().is_none());
    }

    #[test]
    fn pieces_without_groups_are_never_dropped_at_a_keyframe_nor_ask_for_one() {
        let mut q = Backlog::new(false);
        assert_eq!(feed(&mut q, 0, 30, true, 0), 0);
        assert_eq!(feed(&mut q, 30, 1, true, 30 * FRAME_US), 0);
        assert_eq!(q.len(), 31);
        // They are bounded all the same.
        feed(&mut q, 31, 40, false, 31 * FRAME_US);
        assert!(q.len() < 71);
    }

    /// Random arrivals, keyframes, sizes and takes (a seeded generator, many runs): frames
    /// come out in the order they went in, every frame is taken or counted as dropped (the
    /// gap before a frame taken is what it says was dropped), the bounds hold, and a frame
    /// taken after a hole had frames dropped before it.
    #[test]
    fn random_arrivals_keep_order_and_bounds_and_count_every_frame() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..200 {
            let mut q = Backlog::new(next(4) != 0);
            let (mut now, mut pushed, mut taken, mut dropped) = (0u64, 0u64, 0u64, 0u64);
            let mut last = None;
            for _ in 0..500 {
                now += next(40_000);
                if next(3) != 0 {
                    let bytes = [1000, 100_000, MAX_BYTES / 8][next(3) as usize];
                    q.push(pushed, bytes, next(30) == 0, now);
                    pushed += 1;
                }
                assert!(q.len() <= MAX_FRAMES && q.bytes <= MAX_BYTES);
                if next(2) == 0
                    && let Some(t) = q.pop()
                {
                    // In order, and the frames between two taken are the ones it says dropped.
                    let expected = last.map_or(0, |l| l + 1) + t.dropped;
                    assert_eq!(t.item, expected, "a frame lost or out of order");
                    assert!(!t.after_hole || t.dropped > 0, "a hole drops frames");
                    last = Some(t.item);
                    taken += 1;
                    dropped += t.dropped;
                }
            }
            assert_eq!(pushed, taken + dropped + q.dropped + q.len() as u64);
        }
    }
}
