//! When the X server goes away under the window (it stopped, or an ssh forward dropped),
//! Xlib's default is to print a line and `exit(1)` the whole process from inside whatever X
//! call noticed, so nothing gets to finish its files or print its totals. Instead, the
//! handler installed here tells the player the display is gone and parks the window's thread
//! (Xlib must never get control back from it): the run then ends as if the window had been
//! closed, and the process exits normally, taking the parked thread with it.
//!
//! libX11 is the one SDL loaded (SDL opens it at run time, so this does too); where there is
//! none (Wayland), there is nothing to install.

use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use tokio_util::sync::CancellationToken;

type Handler = unsafe extern "C" fn(*mut c_void) -> c_int;

static LOST: AtomicBool = AtomicBool::new(false);
/// Cancelled when the display is lost: each open window's `closed`.
static WATCHERS: OnceLock<Mutex<Vec<CancellationToken>>> = OnceLock::new();

/// Whether an X display was lost (the window's thread is then parked for good).
pub fn lost() -> bool {
    LOST.load(Ordering::SeqCst)
}

/// Cancel `closed` if the X display is lost; install the handler the first time.
pub fn watch(closed: CancellationToken) {
    let watchers = WATCHERS.get_or_init(|| {
        install();
        Mutex::default()
    });
    watchers
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(closed);
}

fn install() {
    // SAFETY: dlopen/dlsym with NUL-terminated names; RTLD_NOLOAD only finds a libX11 that
    // is already loaded (SDL's), and the symbol has XSetIOErrorHandler's C signature.
    unsafe {
        let lib = libc::dlopen(c"libX11.so.6".as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD);
        if lib.is_null() {
            return;
        }
        let set = libc::dlsym(lib, c"XSetIOErrorHandler".as_ptr());
        if set.is_null() {
            return;
        }
        let set: unsafe extern "C" fn(Option<Handler>) -> Option<Handler> =
            std::mem::transmute(set);
        set(Some(display_lost));
    }
}

unsafe extern "C" fn display_lost(_display: *mut c_void) -> c_int {
    LOST.store(true, Ordering::SeqCst);
    tracing::warn!("the X display closed");
    if let Some(watchers) = WATCHERS.get() {
        for closed in watchers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            closed.cancel();
        }
    }
    // Returning would let Xlib exit the process.
    loop {
        std::thread::park();
    }
}
