//! Lock-free single-producer single-consumer rings (rtrb) between PipeWire's real-time
//! callbacks and ordinary threads. Neither end ever locks or allocates: the ring is allocated
//! once, a push that does not fit is refused whole (the caller counts it), and a reader that
//! waits is woken by a futex (`Thread::unpark`), not a mutex.

use std::sync::{Arc, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// A ring of `capacity` items; the writer end wakes a reader parked in [`Reader::wait`].
pub fn ring<T: Copy>(capacity: usize) -> (Writer<T>, Reader<T>) {
    let (producer, consumer) = rtrb::RingBuffer::new(capacity);
    let waiter = Arc::new(OnceLock::new());
    (
        Writer {
            producer,
            waiter: waiter.clone(),
        },
        Reader { consumer, waiter },
    )
}

pub struct Writer<T> {
    producer: rtrb::Producer<T>,
    /// The thread that reads, once it has waited for the first time.
    waiter: Arc<OnceLock<Thread>>,
}

impl<T: Copy> Writer<T> {
    /// Push the `len` items of `items`, or none when they do not all fit (false). An
    /// iterator that runs short pushes what it had (and returns false).
    pub fn push(&mut self, len: usize, items: impl IntoIterator<Item = T>) -> bool {
        let Ok(chunk) = self.producer.write_chunk_uninit(len) else {
            return false;
        };
        chunk.fill_from_iter(items) == len
    }

    /// Room left, in items.
    pub fn free(&self) -> usize {
        self.producer.slots()
    }

    /// Items waiting to be read.
    pub fn queued(&self) -> usize {
        self.producer.buffer().capacity() - self.producer.slots()
    }

    /// Wake the reader if it waits.
    pub fn wake(&self) {
        if let Some(thread) = self.waiter.get() {
            thread.unpark();
        }
    }
}

pub struct Reader<T> {
    consumer: rtrb::Consumer<T>,
    waiter: Arc<OnceLock<Thread>>,
}

impl<T: Copy> Reader<T> {
    /// Items waiting.
    pub fn len(&self) -> usize {
        self.consumer.slots()
    }

    pub fn is_empty(&self) -> bool {
        self.consumer.is_empty()
    }

    pub fn pop(&mut self) -> Option<T> {
        self.consumer.pop().ok()
    }

    /// Move up to `out.len()` items into `out`; returns how many.
    pub fn pop_into(&mut self, out: &mut [T]) -> usize {
        let n = out.len().min(self.consumer.slots());
        let Ok(chunk) = self.consumer.read_chunk(n) else {
            return 0;
        };
        let (a, b) = chunk.as_slices();
        out[..a.len()].copy_from_slice(a);
        out[a.len()..n].copy_from_slice(b);
        chunk.commit_all();
        n
    }

    /// Throw away the `n` oldest items (at most all of them); returns how many went.
    pub fn discard(&mut self, n: usize) -> usize {
        let n = n.min(self.consumer.slots());
        if let Ok(chunk) = self.consumer.read_chunk(n) {
            chunk.commit_all();
        }
        n
    }

    /// Park this thread until an item is there or `deadline` passes; true when one is there.
    /// Not for a real-time thread: parking is the one thing here that blocks.
    pub fn wait(&mut self, deadline: Instant) -> bool {
        let me = self.waiter.get_or_init(std::thread::current);
        debug_assert_eq!(me.id(), std::thread::current().id(), "one reader thread");
        while self.consumer.is_empty() {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            std::thread::park_timeout((deadline - now).min(Duration::from_millis(100)));
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushes_are_whole_or_refused_and_reads_wrap() {
        let (mut w, mut r) = ring::<u32>(5);
        assert!(w.push(3, [1, 2, 3]));
        assert!(!w.push(3, [4, 5, 6]), "3 do not fit in 2");
        assert_eq!((w.queued(), w.free()), (3, 2));
        let mut out = [0; 2];
        assert_eq!(r.pop_into(&mut out), 2);
        assert_eq!(out, [1, 2]);
        assert!(w.push(3, [4, 5, 6]), "now they fit, wrapping around");
        let mut out = [0; 8];
        assert_eq!(r.pop_into(&mut out), 4);
        assert_eq!(out[..4], [3, 4, 5, 6]);
        assert!(r.is_empty());
    }

    #[test]
    fn discard_drops_the_oldest() {
        let (mut w, mut r) = ring::<u8>(4);
        w.push(3, [1, 2, 3]);
        assert_eq!(r.discard(2), 2);
        assert_eq!(r.pop(), Some(3));
        assert_eq!(r.discard(9), 0);
    }

    #[test]
    fn a_waiting_reader_is_woken_by_the_writer() {
        let (mut w, mut r) = ring::<u8>(4);
        let reader = std::thread::spawn(move || {
            let got = r.wait(Instant::now() + Duration::from_secs(30));
            (got, r.pop())
        });
        // The reader may or may not be parked yet: either way it must see the item.
        w.push(1, [7]);
        w.wake();
        assert_eq!(reader.join().unwrap(), (true, Some(7)));
        let (_w, mut r) = ring::<u8>(1);
        assert!(!r.wait(Instant::now()), "an empty ring at the deadline");
    }
}
