//! Lantern's own headless Wayland compositor (smithay), run by host-daemon as the session's
//! user, one per session. What it does differently from a general compositor:
//!
//! - **Capture on commit.** There is no output clock: when the app commits a new picture, a
//!   waiting wlr-screencopy copy (the daemon keeps two in flight) is filled at once, straight
//!   from the app's buffer (one copy, no composition pass when one opaque fullscreen surface
//!   is all there is), and stamped with the commit's time.
//! - **Frame callbacks paced for input-to-photon** ([`lantern_proto::app_pacing`]): the app
//!   draws again once its last picture was taken, at most at the session's fps, and at once
//!   after a key, button or touch reached it.
//! - **Every toplevel fullscreen** at the session's one mode (scaled or cropped where the app
//!   asks through wp_viewporter); popups and subsurfaces are composited over it in software,
//!   with the pointer where the capture asks for it.
//! - **Input from the daemon** through the virtual keyboard and pointer protocols and our own
//!   virtual touch ([`touch`]), fed straight into the seat.
//! - **X11 apps** through XWayland, fullscreen like the rest.
//! - **GPU apps** where the host has a GPU: linux-dmabuf for linear buffers, read back like
//!   shared memory.
//!
//! What it does not do yet: composite on the GPU (GLES), buffer transforms.

mod buffer;
mod cursor;
mod dmabuf;
pub mod figures;
mod paint;
mod pointer;
mod screencopy;
mod state;
pub mod touch;
mod view;
mod window;
mod xwayland;

pub use xwayland::ensure_socket_dir as ensure_x11_socket_dir;

use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use smithay::reexports::calloop::generic::Generic;
use smithay::reexports::calloop::{EventLoop, Interest, Mode, PostAction};
use smithay::reexports::wayland_server::Display;

use state::State;

/// What the compositor offers.
#[derive(Clone, Debug)]
pub struct Config {
    /// The one output's mode.
    pub width: u32,
    pub height: u32,
    pub fps: f64,
    /// The apps' Wayland socket (a path; its directory must exist).
    pub socket: PathBuf,
    /// The daemon's Wayland socket: the only one whose clients see the capture
    /// (wlr-screencopy) and input (virtual keyboard and pointer) globals.
    pub control: PathBuf,
    /// A file made once both sockets listen, and XWayland is up if asked for (its presence
    /// means the compositor is up): XWayland's DISPLAY (`:N`), or nothing without it.
    pub ready: Option<PathBuf>,
    /// Run XWayland for X11 apps.
    pub xwayland: bool,
    /// A file replaced once a second with the pacing's figures ([`figures::Report`]).
    pub figures: Option<PathBuf>,
    /// A GPU's render node: offer linux-dmabuf for apps that render on it.
    pub dmabuf_device: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the Wayland display")]
    Display(#[source] smithay::reexports::wayland_server::backend::InitError),
    #[error("the event loop")]
    EventLoop(#[source] smithay::reexports::calloop::Error),
    #[error("the mode {width}x{height}@{fps} is not one a compositor can offer")]
    Mode { width: u32, height: u32, fps: f64 },
}

/// What a compositor did, for its log at the end.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub clients: u64,
    pub commits: u64,
    /// Pictures copied for the capture.
    pub taken: u64,
    /// Of them, copied straight from one fullscreen buffer.
    pub direct: u64,
    /// Frame callbacks a key, button or touch brought forward.
    pub boosts: u64,
}

/// The longest the loop sleeps without looking at `stop`.
const TICK: Duration = Duration::from_millis(50);

/// Serve until `stop` is set.
pub fn run(config: &Config, stop: &AtomicBool) -> Result<Summary, Error> {
    if config.width == 0
        || config.height == 0
        || config.width > 8192
        || config.height > 8192
        || !(1.0..=1000.0).contains(&config.fps)
    {
        return Err(Error::Mode {
            width: config.width,
            height: config.height,
            fps: config.fps,
        });
    }
    let mut event_loop: EventLoop<'static, State> =
        EventLoop::try_new().map_err(Error::EventLoop)?;
    let display: Display<State> = Display::new().map_err(Error::Display)?;
    let mut state = State::new(config, display.handle());

    let handle = event_loop.handle();
    for (path, privileged) in [(&config.socket, false), (&config.control, true)] {
        let listener = UnixListener::bind(path).map_err(|source| Error::Io {
            what: format!("listening on {}", path.display()),
            source,
        })?;
        listener.set_nonblocking(true).map_err(|source| Error::Io {
            what: "a non-blocking listener".into(),
            source,
        })?;
        handle
            .insert_source(
                Generic::new(listener, Interest::READ, Mode::Level),
                move |_, listener, state: &mut State| {
                    while let Ok((stream, _)) = listener.accept() {
                        state.add_client(stream, privileged);
                    }
                    Ok(PostAction::Continue)
                },
            )
            .map_err(|e| Error::EventLoop(e.error))?;
    }
    handle
        .insert_source(
            Generic::new(display, Interest::READ, Mode::Level),
            |_, display, state: &mut State| {
                // Safety: the display is not dropped while the loop runs.
                let display = unsafe { display.get_mut() };
                if let Err(err) = display.dispatch_clients(state) {
                    tracing::warn!("dispatching clients: {err}");
                }
                Ok(PostAction::Continue)
            },
        )
        .map_err(|e| Error::EventLoop(e.error))?;

    let ready = config.ready.clone();
    if config.xwayland {
        xwayland::start(&handle, &mut state, move |display| {
            let display = display.map(|n| format!(":{n}")).unwrap_or_default();
            if let Some(ready) = &ready
                && let Err(err) = write_ready(ready, &display)
            {
                tracing::warn!("{err}");
            }
        })?;
    } else if let Some(ready) = &ready {
        write_ready(ready, "")?;
    }
    while !stop.load(Ordering::Relaxed) {
        let wait = state.pace().unwrap_or(TICK).min(TICK);
        event_loop
            .dispatch(Some(wait), &mut state)
            .map_err(Error::EventLoop)?;
        state.refresh();
        state.pace();
        state.flush();
        state.write_figures();
    }
    Ok(state.summary())
}

/// Say the compositor is up (atomically: the file appears whole).
fn write_ready(path: &std::path::Path, display: &str) -> Result<(), Error> {
    let new = path.with_extension("new");
    std::fs::write(&new, display)
        .and_then(|()| std::fs::rename(&new, path))
        .map_err(|source| Error::Io {
            what: format!("writing {}", path.display()),
            source,
        })
}
