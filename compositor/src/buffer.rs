//! The pixels of the buffers apps attach: wl_shm pools (read under smithay's guard against a
//! client shrinking its pool) and linux-dmabuf buffers (one linear plane, mapped for reading
//! once per buffer: a GPU app's picture read back without a renderer). Both are 32-bit ARGB
//! or XRGB.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, BorrowedFd};

use smithay::backend::allocator::dmabuf::{Dmabuf, DmabufSyncFlags};
use smithay::backend::allocator::{Buffer, Fourcc};
use smithay::reexports::wayland_server::Resource;
use smithay::reexports::wayland_server::backend::ObjectId;
use smithay::reexports::wayland_server::protocol::{wl_buffer::WlBuffer, wl_shm};
use smithay::wayland::dmabuf::get_dmabuf;
use smithay::wayland::shm::with_buffer_contents;

use crate::paint::Picture;

/// A buffer's size in pixels.
pub fn size(buffer: &WlBuffer) -> Option<(i32, i32)> {
    if let Ok(dmabuf) = get_dmabuf(buffer) {
        let size = dmabuf.size();
        return Some((size.w, size.h));
    }
    with_buffer_contents(buffer, |_, _, data| (data.width, data.height)).ok()
}

/// `Some(true)` for a buffer without alpha, `Some(false)` with it, `None` for one not drawn.
pub fn opacity(buffer: &WlBuffer) -> Option<bool> {
    if let Ok(dmabuf) = get_dmabuf(buffer) {
        return fourcc_opacity(dmabuf.format().code);
    }
    with_buffer_contents(buffer, |_, _, data| shm_opacity(data.format))
        .ok()
        .flatten()
}

fn shm_opacity(format: wl_shm::Format) -> Option<bool> {
    match format {
        wl_shm::Format::Xrgb8888 => Some(true),
        wl_shm::Format::Argb8888 => Some(false),
        _ => None,
    }
}

pub fn fourcc_opacity(code: Fourcc) -> Option<bool> {
    match code {
        Fourcc::Xrgb8888 => Some(true),
        Fourcc::Argb8888 => Some(false),
        _ => None,
    }
}

/// The dmabufs' mappings, made at a buffer's first picture and kept while it lives (apps
/// draw into a few buffers in turn), at most [`MAPPINGS`] of them.
#[derive(Default)]
pub struct Mappings(HashMap<ObjectId, Mapping>);

const MAPPINGS: usize = 16;

impl Mappings {
    /// The buffer is gone: so is its mapping.
    pub fn forget(&mut self, buffer: &WlBuffer) {
        self.0.remove(&buffer.id());
    }

    fn of(&mut self, buffer: &WlBuffer, fd: BorrowedFd) -> Option<&Mapping> {
        if !self.0.contains_key(&buffer.id()) {
            if self.0.len() >= MAPPINGS {
                self.0.clear();
            }
            self.0.insert(buffer.id(), Mapping::new(fd)?);
        }
        self.0.get(&buffer.id())
    }
}

/// Run `f` on the buffer's picture (`opaque` as its format says); `None` when it cannot be
/// read.
pub fn with_picture<T>(
    buffer: &WlBuffer,
    mappings: &mut Mappings,
    f: impl FnOnce(Picture) -> T,
) -> Option<T> {
    if let Ok(dmabuf) = get_dmabuf(buffer) {
        let map = mappings.of(buffer, dmabuf.handles().next()?)?;
        return with_dmabuf(dmabuf, map, f);
    }
    with_buffer_contents(buffer, |ptr, len, data| {
        let opaque = shm_opacity(data.format)?;
        // Safety: smithay maps the pool for `len` bytes and guards reads against a client
        // shrinking it (SIGBUS).
        let pool = unsafe { std::slice::from_raw_parts(ptr, len) };
        Some(f(Picture {
            data: pool.get(data.offset.max(0) as usize..)?,
            width: data.width,
            height: data.height,
            stride: data.stride,
            opaque,
        }))
    })
    .ok()
    .flatten()
}

fn with_dmabuf<T>(dmabuf: &Dmabuf, map: &Mapping, f: impl FnOnce(Picture) -> T) -> Option<T> {
    let opaque = fourcc_opacity(dmabuf.format().code)?;
    let offset = dmabuf.offsets().next()? as usize;
    let stride = i32::try_from(dmabuf.strides().next()?).ok()?;
    // The GPU's writes are visible once the sync begins (a no-op where caches are coherent).
    let _ = dmabuf.sync_plane(0, DmabufSyncFlags::START | DmabufSyncFlags::READ);
    let size = dmabuf.size();
    let picture = Picture {
        data: map.bytes().get(offset..)?,
        width: size.w,
        height: size.h,
        stride,
        opaque,
    };
    let result = f(picture);
    let _ = dmabuf.sync_plane(0, DmabufSyncFlags::END | DmabufSyncFlags::READ);
    Some(result)
}

/// Whether a dmabuf can be read here: one linear plane of a format we draw, inside its
/// memory, and memory that cannot shrink under us (a real dmabuf, or a memfd sealed against
/// shrinking): reading a shrunk mapping would kill the compositor.
pub fn readable(dmabuf: &Dmabuf) -> bool {
    let (Some(fd), Some(offset), Some(stride)) = (
        dmabuf.handles().next(),
        dmabuf.offsets().next(),
        dmabuf.strides().next(),
    ) else {
        return false;
    };
    let size = dmabuf.size();
    let fits = Mapping::length(fd).is_some_and(|len| {
        let picture = Picture {
            data: &[],
            width: size.w,
            height: size.h,
            stride: i32::try_from(stride).unwrap_or(-1),
            opaque: true,
        };
        picture.fits_in(len.saturating_sub(offset as usize))
    });
    dmabuf.num_planes() == 1
        && fourcc_opacity(dmabuf.format().code).is_some()
        && (1..=8192).contains(&size.w)
        && (1..=8192).contains(&size.h)
        && fits
        && cannot_shrink(fd)
}

fn cannot_shrink(fd: BorrowedFd) -> bool {
    let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    if link.is_ok_and(|l| l.to_string_lossy().starts_with("/dmabuf:")) {
        return true;
    }
    // SAFETY: F_GET_SEALS on a descriptor we hold; no memory is touched.
    let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
    seals >= 0 && seals & libc::F_SEAL_SHRINK != 0
}

/// A read-only mapping of a whole dmabuf.
struct Mapping {
    ptr: *mut libc::c_void,
    len: usize,
}

impl Mapping {
    /// The memory's length (dmabufs say it through lseek).
    fn length(fd: BorrowedFd) -> Option<usize> {
        // SAFETY: lseek on a descriptor we hold.
        let end = unsafe { libc::lseek(fd.as_raw_fd(), 0, libc::SEEK_END) };
        usize::try_from(end).ok().filter(|&len| len > 0)
    }

    fn new(fd: BorrowedFd) -> Option<Self> {
        let len = Self::length(fd)?;
        // SAFETY: a fresh shared read-only mapping of `len` bytes, unmapped on drop.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        (ptr != libc::MAP_FAILED).then_some(Self { ptr, len })
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: mapped for `len` bytes while self lives; its memory cannot shrink
        // ([`readable`] let only such buffers in).
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`.
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}
