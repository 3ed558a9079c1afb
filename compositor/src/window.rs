//! What the compositor shows: xdg toplevels and X11 windows (through XWayland), the newest
//! with a picture fullscreen, and X11's override-redirect windows (menus, tooltips) over it.

use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::reexports::wayland_server::{Client, DisplayHandle};
use smithay::utils::{Logical, Point};
use smithay::wayland::shell::xdg::ToplevelSurface;
use smithay::xwayland::X11Surface;

use crate::state::window_geometry;

#[derive(Clone, Debug, PartialEq)]
pub enum Window {
    Xdg(ToplevelSurface),
    X11(X11Surface),
}

impl Window {
    /// Its surface, once known. XWayland before 23.1 (Debian 12's 22.1) names an X11
    /// window's surface by its protocol id on XWayland's own connection (`WL_SURFACE_ID`),
    /// which smithay keeps but does not resolve.
    pub fn surface(&self, xwayland: Option<&Client>, dh: &DisplayHandle) -> Option<WlSurface> {
        match self {
            Self::Xdg(toplevel) => Some(toplevel.wl_surface().clone()),
            Self::X11(window) => window.wl_surface().or_else(|| {
                #[allow(deprecated)] // the only way XWayland 22.1 names the surface
                let id = window.wl_surface_id()?;
                xwayland?.object_from_protocol_id::<WlSurface>(dh, id).ok()
            }),
        }
    }

    /// Where its surface's origin goes on the output.
    pub fn origin(&self) -> Point<i32, Logical> {
        match self {
            // The window's geometry (without client-side shadows) fills the output.
            Self::Xdg(toplevel) => Point::default() - window_geometry(toplevel.wl_surface()).loc,
            Self::X11(window) => window.geometry().loc,
        }
    }

    /// An override-redirect X11 window: drawn over the shown one, never focused.
    pub fn overlay(&self) -> bool {
        matches!(self, Self::X11(window) if window.is_override_redirect())
    }
}
