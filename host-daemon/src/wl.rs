//! Wayland client plumbing the capture and the test app share: waiting for events with a
//! deadline, and wl_shm buffers in memfds.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use lantern_proto::picture::PixelFormat;
use memmap2::MmapMut;
use wayland_client::protocol::{wl_buffer::WlBuffer, wl_shm, wl_shm_pool::WlShmPool};
use wayland_client::{Dispatch, EventQueue, QueueHandle, WEnum};

use crate::Error;

/// Send what is queued, wait up to `timeout` for events, and handle them.
pub fn dispatch<S>(
    queue: &mut EventQueue<S>,
    state: &mut S,
    timeout: Duration,
) -> Result<(), Error> {
    let failed = |e: wayland_client::DispatchError| Error::wayland("dispatching events", e);
    queue.dispatch_pending(state).map_err(failed)?;
    queue
        .flush()
        .map_err(|e| Error::wayland("sending requests", e))?;
    if let Some(guard) = queue.prepare_read() {
        let mut poll = libc::pollfd {
            fd: std::os::fd::AsRawFd::as_raw_fd(&guard.connection_fd()),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd.
        let ready = unsafe { libc::poll(&mut poll, 1, ms) };
        if ready > 0 {
            match guard.read() {
                Ok(_) => {}
                Err(wayland_client::backend::WaylandError::Io(e))
                    if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(Error::wayland("reading events", e)),
            }
        }
    }
    queue.dispatch_pending(state).map_err(failed)?;
    Ok(())
}

/// Send what is queued on `connection`, waiting while its socket is full (a compositor slow
/// to read: backpressure, never a lost request) up to `wait`, after which the compositor is
/// taken for hung.
pub fn flush(connection: &wayland_client::Connection, wait: Duration) -> Result<(), Error> {
    use wayland_client::backend::WaylandError;
    let deadline = std::time::Instant::now() + wait;
    loop {
        match connection.flush() {
            Ok(()) => return Ok(()),
            Err(WaylandError::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    return Err(Error::wayland(
                        format!("the compositor read nothing for {wait:?}"),
                        e,
                    ));
                }
                let mut poll = libc::pollfd {
                    fd: std::os::fd::AsRawFd::as_raw_fd(&connection.backend().poll_fd()),
                    events: libc::POLLOUT,
                    revents: 0,
                };
                let ms = left.as_millis().clamp(1, i32::MAX as u128) as i32;
                // SAFETY: one valid pollfd.
                unsafe { libc::poll(&mut poll, 1, ms) };
            }
            Err(e) => return Err(Error::wayland("sending requests", e)),
        }
    }
}

/// The registry's events, which a client that binds its globals once at start ignores
/// (`registry_queue_init` needs a handler for them).
#[macro_export]
macro_rules! ignore_registry_events {
    ($state:ty) => {
        impl
            wayland_client::Dispatch<
                wayland_client::protocol::wl_registry::WlRegistry,
                wayland_client::globals::GlobalListContents,
            > for $state
        {
            fn event(
                _: &mut Self,
                _: &wayland_client::protocol::wl_registry::WlRegistry,
                _: wayland_client::protocol::wl_registry::Event,
                _: &wayland_client::globals::GlobalListContents,
                _: &wayland_client::Connection,
                _: &wayland_client::QueueHandle<Self>,
            ) {
            }
        }
    };
}

/// The pixel layout of a wl_shm format, for the formats Lantern converts.
pub fn pixel_format(format: WEnum<wl_shm::Format>) -> Option<PixelFormat> {
    match format {
        // wl_shm's formats name little-endian words: XRGB8888 is bytes B, G, R, X.
        WEnum::Value(wl_shm::Format::Xrgb8888) => Some(PixelFormat::Bgrx),
        WEnum::Value(wl_shm::Format::Argb8888) => Some(PixelFormat::Bgra),
        _ => None,
    }
}

/// One wl_buffer in a memfd of its own, mapped.
pub struct ShmBuffer {
    pub buffer: WlBuffer,
    pool: WlShmPool,
    map: MmapMut,
    pub width: u32,
    pub height: u32,
    pub stride: u32,
}

impl ShmBuffer {
    pub fn new<D, U>(
        shm: &wl_shm::WlShm,
        qh: &QueueHandle<D>,
        (width, height, stride): (u32, u32, u32),
        format: wl_shm::Format,
        data: U,
    ) -> Result<Self, Error>
    where
        D: Dispatch<WlShmPool, ()> + Dispatch<WlBuffer, U> + 'static,
        U: Send + Sync + 'static,
    {
        let size = stride as usize * height as usize;
        if size == 0 || size > i32::MAX as usize || (stride as usize) < width as usize * 4 {
            return Err(Error::Capture(format!(
                "a {width}x{height} buffer with stride {stride} cannot be made"
            )));
        }
        let file = sealed_memfd(size as u64)?;
        // SAFETY: the memfd is ours; the compositor writes it only while a copy is pending,
        // and we read it only after the copy reported ready.
        let map = unsafe { MmapMut::map_mut(&file) }
            .map_err(|e| Error::io("mapping a shared-memory buffer", e))?;
        let pool = shm.create_pool(file.as_fd(), size as i32, qh, ());
        let buffer = pool.create_buffer(
            0,
            width as i32,
            height as i32,
            stride as i32,
            format,
            qh,
            data,
        );
        Ok(Self {
            buffer,
            pool,
            map,
            width,
            height,
            stride,
        })
    }

    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.map
    }
}

/// A shared-memory file of `size` bytes that nobody can shrink or grow: whoever else gets a
/// descriptor to it (the compositor, a capture process) runs as the session's user, and a
/// file truncated under our mapping would kill the daemon with SIGBUS on the next read.
pub(crate) fn sealed_memfd(size: u64) -> Result<std::fs::File, Error> {
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // SAFETY: memfd_create returns a new descriptor we own, or -1.
    let fd = unsafe { libc::memfd_create(c"lantern-shm".as_ptr(), flags) };
    if fd < 0 {
        return Err(Error::io("memfd_create", std::io::Error::last_os_error()));
    }
    // SAFETY: fd is valid and ours alone.
    let file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    file.set_len(size)
        .map_err(|e| Error::io("sizing a shared-memory buffer", e))?;
    let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
    // SAFETY: F_ADD_SEALS on a descriptor we own, with an integer argument.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        let err = std::io::Error::last_os_error();
        return Err(Error::io("sealing a shared-memory buffer", err));
    }
    Ok(file)
}

impl Drop for ShmBuffer {
    fn drop(&mut self) {
        self.buffer.destroy();
        self.pool.destroy();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_buffer_we_share_cannot_be_shrunk_or_grown_by_whoever_holds_it() {
        let file = super::sealed_memfd(4096).unwrap();
        assert_eq!(file.metadata().unwrap().len(), 4096);
        // The compositor holds the same file: it could try either on its descriptor.
        assert!(file.set_len(0).is_err(), "shrunk");
        assert!(file.set_len(8192).is_err(), "grown");
        assert_eq!(file.metadata().unwrap().len(), 4096);
    }
}
