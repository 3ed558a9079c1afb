//! Reading a buffer that another process shares with us, without trusting it.
//!
//! A PipeWire node's buffers come from whoever made the node: a session's app, or its
//! PipeWire daemon, both running as the session's user. A memory file they share can be
//! truncated under our mapping at any moment, and a read of the mapping past the new end
//! kills the whole daemon with SIGBUS. So shared memory files are read with `pread`, which
//! returns short instead; the mapping is read only for what cannot shrink: a real DMA-BUF
//! (checked by its file system, not by what the peer says it is) and memory of our own.
//! The chunk's offset and size come from the peer too: they are checked against the buffer.

use std::os::fd::{BorrowedFd, RawFd};

/// The file system magic of DMA-BUF descriptors (linux/magic.h).
const DMA_BUF_MAGIC: i64 = 0x444d_4142;

/// What the peer says a buffer is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A memory file (memfd), read with `pread`.
    MemFd,
    /// A DMA-BUF, read through its mapping once its descriptor is known to be one.
    DmaBuf,
    /// Memory in our own address space.
    MemPtr,
}

/// Why a buffer was not read (the frame is counted as a capture failure).
#[derive(Debug, PartialEq, Eq)]
pub enum Unreadable {
    /// The chunk lies outside the buffer.
    OutOfBounds,
    /// Called a DMA-BUF, but its descriptor is something else (which could shrink).
    NotDmaBuf,
    /// The file ended before the chunk did: it was truncated.
    Short,
    /// No descriptor, or no mapping where one is needed.
    Missing,
    /// The system refused a read.
    Io(std::io::ErrorKind),
}

/// One buffer as the peer describes it.
#[derive(Clone, Copy, Debug)]
pub struct Buffer<'a> {
    pub kind: Kind,
    /// Its descriptor (negative: none).
    pub fd: RawFd,
    /// Where the buffer starts in the file.
    pub mapoffset: u64,
    /// Its size.
    pub maxsize: u64,
    /// Our mapping of it, when there is one.
    pub mapped: Option<&'a [u8]>,
}

impl Buffer<'_> {
    /// Copy the `size` bytes at `offset` into `out` (replacing what it held).
    pub fn copy(&self, offset: u64, size: u64, out: &mut Vec<u8>) -> Result<(), Unreadable> {
        let end = offset.checked_add(size).ok_or(Unreadable::OutOfBounds)?;
        if end > self.maxsize {
            return Err(Unreadable::OutOfBounds);
        }
        let range = offset as usize..end as usize;
        out.clear();
        match self.kind {
            Kind::MemFd => {
                let fd = self.descriptor()?;
                let at = self
                    .mapoffset
                    .checked_add(offset)
                    .ok_or(Unreadable::OutOfBounds)?;
                out.resize(size as usize, 0);
                read_at(fd, at, out)
            }
            Kind::DmaBuf => {
                if !is_dmabuf(self.descriptor()?)? {
                    return Err(Unreadable::NotDmaBuf);
                }
                self.copy_mapped(range, out)
            }
            Kind::MemPtr => self.copy_mapped(range, out),
        }
    }

    fn descriptor(&self) -> Result<BorrowedFd<'_>, Unreadable> {
        if self.fd < 0 {
            return Err(Unreadable::Missing);
        }
        // SAFETY: the descriptor belongs to the buffer, which outlives this call.
        Ok(unsafe { BorrowedFd::borrow_raw(self.fd) })
    }

    fn copy_mapped(
        &self,
        range: std::ops::Range<usize>,
        out: &mut Vec<u8>,
    ) -> Result<(), Unreadable> {
        let bytes = self.mapped.and_then(|m| m.get(range));
        out.extend_from_slice(bytes.ok_or(Unreadable::Missing)?);
        Ok(())
    }
}

/// Fill `out` from `fd` at `offset`; a file that ends first is [`Unreadable::Short`].
fn read_at(fd: BorrowedFd<'_>, mut offset: u64, mut out: &mut [u8]) -> Result<(), Unreadable> {
    use std::os::fd::AsRawFd;
    while !out.is_empty() {
        let at = libc::off_t::try_from(offset).map_err(|_| Unreadable::OutOfBounds)?;
        // SAFETY: `out` is valid for writes of its length; the descriptor is borrowed.
        let read = unsafe { libc::pread(fd.as_raw_fd(), out.as_mut_ptr().cast(), out.len(), at) };
        match read {
            0 => return Err(Unreadable::Short),
            n if n < 0 => {
                let err = std::io::Error::last_os_error();
                if err.kind() != std::io::ErrorKind::Interrupted {
                    return Err(Unreadable::Io(err.kind()));
                }
            }
            n => {
                out = &mut out[n as usize..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

/// Whether `fd` is a DMA-BUF (which no one can truncate), by its file system.
fn is_dmabuf(fd: BorrowedFd<'_>) -> Result<bool, Unreadable> {
    use std::os::fd::AsRawFd;
    let mut stat = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: fstatfs fills `stat` when it returns 0.
    if unsafe { libc::fstatfs(fd.as_raw_fd(), stat.as_mut_ptr()) } != 0 {
        return Err(Unreadable::Io(std::io::Error::last_os_error().kind()));
    }
    // SAFETY: filled above.
    let stat = unsafe { stat.assume_init() };
    // f_type's type is the architecture's (i64 here, u32 on some).
    #[allow(clippy::unnecessary_cast)]
    Ok(stat.f_type as i64 == DMA_BUF_MAGIC)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::fd::{AsRawFd, FromRawFd};

    use super::*;

    fn memfd(bytes: &[u8]) -> std::fs::File {
        // SAFETY: a new descriptor we own, or -1.
        let fd = unsafe { libc::memfd_create(c"test".as_ptr(), libc::MFD_CLOEXEC) };
        assert!(fd >= 0);
        // SAFETY: fd is valid and ours alone.
        let mut file = std::fs::File::from(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) });
        file.write_all(bytes).unwrap();
        file
    }

    #[test]
    fn a_memory_file_truncated_by_its_sharer_is_a_short_read_not_a_crash() {
        let bytes: Vec<u8> = (0..=255).cycle().take(64 * 1024).collect();
        let file = memfd(&bytes);
        let shared = Buffer {
            kind: Kind::MemFd,
            fd: file.as_raw_fd(),
            mapoffset: 4096,
            maxsize: 60 * 1024,
            mapped: None,
        };
        let mut out = Vec::new();
        shared.copy(100, 1000, &mut out).unwrap();
        assert_eq!(out, bytes[4196..5196]);
        // The sharer truncates the file under us: what a mapping would die of.
        file.set_len(8192).unwrap();
        assert_eq!(shared.copy(0, 8192, &mut out), Err(Unreadable::Short));
        file.set_len(0).unwrap();
        assert_eq!(shared.copy(0, 1, &mut out), Err(Unreadable::Short));
    }

    #[test]
    fn a_chunk_outside_its_buffer_is_refused() {
        let file = memfd(&[0; 4096]);
        let shared = Buffer {
            kind: Kind::MemFd,
            fd: file.as_raw_fd(),
            mapoffset: 0,
            maxsize: 4096,
            mapped: None,
        };
        let mut out = Vec::new();
        assert_eq!(
            shared.copy(4000, 97, &mut out),
            Err(Unreadable::OutOfBounds)
        );
        assert_eq!(
            shared.copy(u64::MAX, 2, &mut out),
            Err(Unreadable::OutOfBounds)
        );
        assert!(shared.copy(4000, 96, &mut out).is_ok());
        let none = Buffer { fd: -1, ..shared };
        assert_eq!(none.copy(0, 1, &mut out), Err(Unreadable::Missing));
    }

    #[test]
    fn a_memory_file_that_claims_to_be_a_dmabuf_is_not_read_through_its_mapping() {
        let file = memfd(&[7; 4096]);
        let mapping = [7u8; 4096];
        let shared = Buffer {
            kind: Kind::DmaBuf,
            fd: file.as_raw_fd(),
            mapoffset: 0,
            maxsize: 4096,
            mapped: Some(&mapping),
        };
        let mut out = Vec::new();
        assert_eq!(shared.copy(0, 16, &mut out), Err(Unreadable::NotDmaBuf));
        // Our own memory is read as it is.
        let own = Buffer {
            kind: Kind::MemPtr,
            fd: -1,
            ..shared
        };
        own.copy(10, 6, &mut out).unwrap();
        assert_eq!(out, [7; 6]);
    }
}
