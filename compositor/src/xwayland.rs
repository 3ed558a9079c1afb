//! X11 apps through XWayland: started with the compositor, its windows fullscreen like any
//! toplevel, override-redirect windows (menus, tooltips) drawn over them. Debian 12's XWayland
//! (22.1) predates xwayland-shell: its windows name their surfaces by protocol id, which
//! [`Window::surface`] resolves.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::process::Stdio;

use smithay::input::keyboard::KeyboardTarget;
use smithay::reexports::calloop::LoopHandle;
use smithay::utils::{Logical, Rectangle, Serial};
use smithay::wayland::xwayland_shell::{XWaylandShellHandler, XWaylandShellState};
use smithay::xwayland::xwm::{Reorder, ResizeEdge, XwmId};
use smithay::xwayland::{X11Surface, X11Wm, XWayland, XWaylandEvent, XwmHandler};

use crate::state::State;
use crate::window::Window;

/// Where every X server on the host puts its sockets (smithay binds XWayland's there).
const X11_SOCKET_DIR: &str = "/tmp/.X11-unix";

/// Make [`X11_SOCKET_DIR`] if it is missing (a fresh container or CI machine, where no
/// systemd-tmpfiles made it at boot; an X server would make it itself, but XWayland is given
/// sockets already bound): world-writable and sticky, as every X server makes it, owned by
/// whoever calls (a root daemon calls before its sessions start, so no session's user owns
/// it). One that is there (or a link to one) is left as it is, with a warning when another
/// user owns it; a path there that is no directory is refused.
pub fn ensure_socket_dir() -> Result<(), crate::Error> {
    ensure_dir(Path::new(X11_SOCKET_DIR))
}

fn ensure_dir(dir: &Path) -> Result<(), crate::Error> {
    let failed = |source| crate::Error::Io {
        what: format!("making X11's socket directory {}", dir.display()),
        source,
    };
    match std::fs::DirBuilder::new().mode(0o1777).create(dir) {
        Ok(()) => {
            // The umask took bits away: set them on the directory just made, never through
            // a link (no one else can swap an entry of ours in sticky /tmp, but be sure).
            let made = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
                .open(dir)
                .map_err(failed)?;
            made.set_permissions(std::fs::Permissions::from_mode(0o1777))
                .map_err(failed)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            // Followed if a link (WSLg links it to its own): X clients follow it too.
            let meta = std::fs::metadata(dir).map_err(failed)?;
            if !meta.is_dir() {
                return Err(failed(std::io::Error::other(
                    "it is there but is no directory",
                )));
            }
            // Whoever owns it can replace the sockets in it: root, or the user running it.
            let owner = meta.uid();
            if owner != 0 && owner != effective_uid() {
                tracing::warn!(
                    dir = %dir.display(),
                    owner,
                    "X11's socket directory belongs to another user, who can take over the \
                     X11 sockets in it"
                );
            }
            Ok(())
        }
        Err(e) => Err(failed(e)),
    }
}

/// This process's effective user.
fn effective_uid() -> u32 {
    // SAFETY: geteuid cannot fail and touches no memory of ours.
    unsafe { libc::geteuid() }
}

/// Start XWayland; `on_ready` gets its display number (`None`: it failed) once it can take
/// X11 clients.
pub fn start(
    handle: &LoopHandle<'static, State>,
    state: &mut State,
    mut on_ready: impl FnMut(Option<u32>) + 'static,
) -> Result<(), crate::Error> {
    ensure_socket_dir()?;
    let (xwayland, client) = XWayland::spawn(
        &state.dh,
        None,
        std::iter::empty::<(String, String)>(),
        true,
        Stdio::null(),
        Stdio::inherit(),
        |_| {},
    )
    .map_err(|source| crate::Error::Io {
        what: "starting XWayland".into(),
        source,
    })?;
    state.xwayland = Some(client.clone());
    let wm_handle = handle.clone();
    handle
        .insert_source(xwayland, move |event, _, state: &mut State| match event {
            XWaylandEvent::Ready {
                x11_socket,
                display_number,
            } => match X11Wm::start_wm(wm_handle.clone(), x11_socket, client.clone()) {
                Ok(wm) => {
                    state.xwm = Some(wm);
                    on_ready(Some(display_number));
                }
                Err(err) => {
                    tracing::warn!("XWayland's window manager did not start: {err}");
                    on_ready(None);
                }
            },
            XWaylandEvent::Error => {
                tracing::warn!("XWayland did not start");
                on_ready(None);
            }
        })
        .map_err(|e| crate::Error::EventLoop(e.error))?;
    Ok(())
}

/// Give an X11 window the X server's input focus (its surface gets the seat's from the caller).
pub fn focus(state: &mut State, window: &X11Surface, serial: Serial) {
    if let Err(err) = window.set_activated(true) {
        tracing::debug!("activating an X11 window: {err}");
    }
    // With the surface known to smithay (xwayland-shell), the seat's focus reaches it already.
    if window.wl_surface().is_none() {
        let seat = state.seat.clone();
        KeyboardTarget::<State>::enter(window, &seat, state, Vec::new(), serial);
    }
}

impl State {
    fn full(&self) -> Rectangle<i32, Logical> {
        Rectangle::new((0, 0).into(), (self.width, self.height).into())
    }
}

impl XwmHandler for State {
    fn xwm_state(&mut self, _: XwmId) -> &mut X11Wm {
        self.xwm
            .as_mut()
            .expect("X11 events come only from a running window manager")
    }

    fn new_window(&mut self, _: XwmId, _: X11Surface) {}

    fn new_override_redirect_window(&mut self, _: XwmId, _: X11Surface) {}

    fn map_window_request(&mut self, _: XwmId, window: X11Surface) {
        let full = self.full();
        let mapped = window
            .set_mapped(true)
            .and_then(|()| window.configure(full))
            .map_err(|e| e.to_string())
            .and_then(|()| window.set_fullscreen(true).map_err(|e| e.to_string()));
        if let Err(err) = mapped {
            tracing::debug!("mapping an X11 window: {err}");
            return;
        }
        // Shown, and focused, from its first picture.
        self.windows.push(Window::X11(window));
    }

    fn mapped_override_redirect_window(&mut self, _: XwmId, window: X11Surface) {
        self.windows.push(Window::X11(window));
    }

    fn unmapped_window(&mut self, _: XwmId, window: X11Surface) {
        if !window.is_override_redirect()
            && let Err(err) = window.set_mapped(false)
        {
            tracing::debug!("unmapping an X11 window: {err}");
        }
        self.remove(&Window::X11(window));
    }

    fn destroyed_window(&mut self, _: XwmId, window: X11Surface) {
        self.remove(&Window::X11(window));
    }

    fn configure_request(
        &mut self,
        _: XwmId,
        window: X11Surface,
        _x: Option<i32>,
        _y: Option<i32>,
        _w: Option<u32>,
        _h: Option<u32>,
        _reorder: Option<Reorder>,
    ) {
        // Every window stays fullscreen: it is told so again.
        if let Err(err) = window.configure(self.full()) {
            tracing::debug!("configuring an X11 window: {err}");
        }
    }

    fn configure_notify(
        &mut self,
        _: XwmId,
        _: X11Surface,
        _: Rectangle<i32, Logical>,
        _: Option<u32>,
    ) {
    }

    fn resize_request(&mut self, _: XwmId, _: X11Surface, _: u32, _: ResizeEdge) {}

    fn move_request(&mut self, _: XwmId, _: X11Surface, _: u32) {}
}

impl XWaylandShellHandler for State {
    fn xwayland_shell_state(&mut self) -> &mut XWaylandShellState {
        &mut self.xwayland_shell
    }
}

smithay::delegate_xwayland_shell!(State);

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::ensure_dir;

    #[test]
    fn a_missing_socket_directory_is_made_sticky_and_open_to_all_a_link_taken_and_a_file_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(".X11-unix");
        ensure_dir(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o1777, "{mode:o}");
        // There already: left as it is.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        ensure_dir(&dir).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o755);
        let file = tmp.path().join("file");
        std::fs::write(&file, "").unwrap();
        let err = ensure_dir(&file).unwrap_err();
        let cause = std::error::Error::source(&err).unwrap().to_string();
        assert_eq!(cause, "it is there but is no directory");
        // A link to a directory (WSLg makes one) is taken, as X clients take it.
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        ensure_dir(&link).unwrap();
        let dangling = tmp.path().join("dangling");
        std::os::unix::fs::symlink(tmp.path().join("nowhere"), &dangling).unwrap();
        assert!(ensure_dir(&dangling).is_err());
    }
}
