//! The buffers a screencopy capture copies into, as a pure state machine: which are free,
//! being copied into, done, or holding the picture last handed out. The Wayland side
//! (`screencopy.rs`) asks it for a free buffer for each copy and tells it how copies end; it
//! answers with the newest picture, freeing the older ones (a late frame is worth nothing)
//! and the one handed out before, which is kept until then so a still screen can be repeated.

use std::collections::VecDeque;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Use {
    Free,
    Copying,
    Done,
    Latest,
}

/// A completed copy: its buffer, and when the compositor presented the picture
/// (CLOCK_MONOTONIC, µs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Picture {
    pub slot: usize,
    pub presented_us: u64,
}

#[derive(Debug, Default)]
pub struct Slots {
    uses: Vec<Use>,
    /// Completed copies, oldest first.
    completed: VecDeque<Picture>,
}

impl Slots {
    /// `count` free buffers.
    pub fn new(count: usize) -> Self {
        Self {
            uses: vec![Use::Free; count],
            completed: VecDeque::new(),
        }
    }

    /// A free buffer for a new copy, now being copied into; `None` when all are taken.
    pub fn start_copy(&mut self) -> Option<usize> {
        let slot = self.uses.iter().position(|u| *u == Use::Free)?;
        self.uses[slot] = Use::Copying;
        Some(slot)
    }

    /// The copy into `slot` completed (a slot not being copied into is ignored).
    pub fn ready(&mut self, slot: usize, presented_us: u64) {
        if self.uses.get(slot) == Some(&Use::Copying) {
            self.uses[slot] = Use::Done;
            self.completed.push_back(Picture { slot, presented_us });
        }
    }

    /// The copy into `slot` failed: the buffer is free again.
    pub fn failed(&mut self, slot: usize) {
        if self.uses.get(slot) == Some(&Use::Copying) {
            self.uses[slot] = Use::Free;
        }
    }

    /// The newest completed picture, which becomes the one handed out, and how many older
    /// completed ones it made stale (freed). The picture handed out before is freed.
    pub fn take_newest(&mut self) -> Option<(Picture, u64)> {
        let newest = self.completed.pop_back()?;
        let stale = self.completed.len() as u64;
        for picture in self.completed.drain(..) {
            self.uses[picture.slot] = Use::Free;
        }
        for use_ in &mut self.uses {
            if *use_ == Use::Latest {
                *use_ = Use::Free;
            }
        }
        self.uses[newest.slot] = Use::Latest;
        Some((newest, stale))
    }

    /// The buffer holding the picture last handed out, to hand out again on a still screen.
    pub fn latest(&self) -> Option<usize> {
        self.uses.iter().position(|u| *u == Use::Latest)
    }

    /// A copy is under way: the buffers cannot be replaced now.
    pub fn copying(&self) -> bool {
        self.uses.contains(&Use::Copying)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_picture_wins_and_the_older_ones_are_freed() {
        let mut slots = Slots::new(3);
        let (a, b) = (slots.start_copy().unwrap(), slots.start_copy().unwrap());
        assert_ne!(a, b);
        slots.ready(a, 100);
        slots.ready(b, 200);
        let (picture, stale) = slots.take_newest().unwrap();
        assert_eq!(
            (picture, stale),
            (
                Picture {
                    slot: b,
                    presented_us: 200
                },
                1
            )
        );
        // `a` is free again; `b` is held as the latest; one more is free.
        assert_eq!(slots.latest(), Some(b));
        let (c, d) = (slots.start_copy().unwrap(), slots.start_copy().unwrap());
        assert!(c != b && d != b && c != d);
        assert_eq!(slots.start_copy(), None, "the latest is never copied over");
        assert_eq!(slots.take_newest(), None);
    }

    #[test]
    fn the_latest_is_kept_until_a_newer_picture_replaces_it() {
        let mut slots = Slots::new(3);
        let a = slots.start_copy().unwrap();
        slots.ready(a, 1);
        slots.take_newest().unwrap();
        // A still screen: nothing new comes, and the latest stays to be repeated.
        assert_eq!(slots.take_newest(), None);
        assert_eq!(slots.latest(), Some(a));
        let b = slots.start_copy().unwrap();
        slots.ready(b, 2);
        assert_eq!(slots.take_newest().unwrap().0.slot, b);
        assert_eq!(slots.latest(), Some(b));
        // `a` was freed when `b` replaced it.
        assert_eq!(slots.start_copy(), Some(a));
    }

    #[test]
    fn a_failed_copy_frees_its_buffer_and_stray_answers_change_nothing() {
        let mut slots = Slots::new(2);
        let a = slots.start_copy().unwrap();
        assert!(slots.copying());
        slots.failed(a);
        assert!(!slots.copying());
        // Answers for buffers not being copied into (or out of range) are ignored.
        slots.ready(a, 5);
        slots.ready(7, 5);
        slots.failed(9);
        assert_eq!(slots.take_newest(), None);
        assert_eq!(slots.start_copy(), Some(a));
    }
}
