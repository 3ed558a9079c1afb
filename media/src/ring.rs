//! Lock-free single-producer single-consumer rings (rtrb) between PipeWire's real-time
//! callbacks and ordinary threads. Neither end ever locks or allocates: the ring is allocated
//! once, a push that does not fit is refused whole (the caller counts it), and a reader that
//! waits is woken through an eventfd (one non-blocking write), not a mutex.
//!
//! An eventfd rather than `Thread::unpark`: the reader may move between threads (opened on
//! one, read on another), and a wake-up must reach whichever thread waits now. Parking the
//! first waiter's thread once sent every wake-up of a moved reader to the wrong thread, which
//! then only noticed its items on a 100 ms timeout: sound in bursts.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Instant;

/// A ring of `capacity` items; the writer end wakes a reader waiting in [`Reader::wait`].
pub fn ring<T: Copy>(capacity: usize) -> Result<(Writer<T>, Reader<T>), crate::Error> {
    // SAFETY: eventfd returns a new descriptor we own, or -1.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        return Err(crate::Error::RingWaker(std::io::Error::last_os_error()));
    }
    // SAFETY: fd is valid and ours alone.
    let waker = Arc::new(unsafe { OwnedFd::from_raw_fd(fd) });
    let (producer, consumer) = rtrb::RingBuffer::new(capacity);
    Ok((
        Writer {
            producer,
            waker: waker.clone(),
        },
        Reader { consumer, waker },
    ))
}

pub struct Writer<T> {
    producer: rtrb::Producer<T>,
    waker: Arc<OwnedFd>,
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

    /// Wake the reader if it waits (a wake-up before it waits is kept).
    pub fn wake(&self) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: an 8-byte write to our eventfd; it never blocks (EFD_NONBLOCK), and a full
        // counter (EAGAIN) means a wake-up is pending anyway.
        unsafe { libc::write(self.waker.as_raw_fd(), one.as_ptr().cast(), one.len()) };
    }
}

pub struct Reader<T> {
    consumer: rtrb::Consumer<T>,
    waker: Arc<OwnedFd>,
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

    /// Block until an item is there or `deadline` passes; true when one is there. Not for a
    /// real-time thread: this is the one thing here that blocks.
    pub fn wait(&mut self, deadline: Instant) -> bool {
        let fd = self.waker.as_raw_fd();
        while self.consumer.is_empty() {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            let ms = (deadline - now).as_millis().clamp(1, i32::MAX as u128) as i32;
            let mut poll = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            let mut count = [0u8; 8];
            // SAFETY: one valid pollfd; an 8-byte read that clears the eventfd's counter (it
            // never blocks: EFD_NONBLOCK).
            unsafe {
                libc::poll(&mut poll, 1, ms);
                libc::read(fd, count.as_mut_ptr().cast(), count.len());
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn pushes_are_whole_or_refused_and_reads_wrap() {
        let (mut w, mut r) = ring::<u32>(5).unwrap();
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
        let (mut w, mut r) = ring::<u8>(4).unwrap();
        w.push(3, [1, 2, 3]);
        assert_eq!(r.discard(2), 2);
        assert_eq!(r.pop(), Some(3));
        assert_eq!(r.discard(9), 0);
    }

    #[test]
    fn a_waiting_reader_is_woken_by_the_writer() {
        let (mut w, mut r) = ring::<u8>(4).unwrap();
        let reader = std::thread::spawn(move || {
            let got = r.wait(Instant::now() + Duration::from_secs(30));
            (got, r.pop())
        });
        // The reader may or may not be parked yet: either way it must see the item.
        w.push(1, [7]);
        w.wake();
        assert_eq!(reader.join().unwrap(), (true, Some(7)));
        let (_w, mut r) = ring::<u8>(1).unwrap();
        assert!(!r.wait(Instant::now()), "an empty ring at the deadline");
    }

    /// A reader that waited on one thread and then moved to another is still woken there
    /// (there is no periodic re-check: a lost wake-up would wait out the whole deadline).
    #[test]
    fn a_reader_that_moved_threads_is_still_woken() {
        let (mut w, mut r) = ring::<u8>(4).unwrap();
        assert!(!r.wait(Instant::now() + Duration::from_millis(1)));
        let (started, ready) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            started.send(()).unwrap();
            (r.wait(Instant::now() + Duration::from_secs(60)), r.pop())
        });
        ready.recv().unwrap();
        w.push(1, [9]);
        w.wake();
        assert_eq!(reader.join().unwrap(), (true, Some(9)));
    }
}
