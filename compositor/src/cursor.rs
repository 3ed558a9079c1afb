//! The pointer drawn into the picture, when the session asks for it (`--cursor`): the surface
//! the app set as its cursor, placed by its hotspot, or a plain arrow where the app asked for
//! a named cursor (we carry no cursor theme). Hidden when the app hides it (mouse look).

use smithay::input::pointer::{CursorImageStatus, CursorImageSurfaceData};
use smithay::reexports::wayland_server::Resource;
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::utils::{Logical, Point};
use smithay::wayland::compositor::with_states;

use crate::paint::Picture;

const ARROW_WIDTH: i32 = 12;
const ARROW_HEIGHT: i32 = 17;

/// What the pointer looks like, as the focused app last said.
pub struct Cursor {
    pub status: CursorImageStatus,
    /// Where the pointer was in the last picture.
    pub drawn_at: Point<i32, Logical>,
    /// The arrow's pixels (premultiplied B, G, R, A), its tip at the top left.
    arrow: Vec<u8>,
}

/// How to draw the pointer.
pub enum Look<'a> {
    /// The app's surface, its hotspot this far into it.
    Surface(WlSurface, Point<i32, Logical>),
    Arrow(Picture<'a>),
}

impl Cursor {
    pub fn new() -> Self {
        Self {
            status: CursorImageStatus::default_named(),
            drawn_at: (0, 0).into(),
            arrow: arrow(),
        }
    }

    pub fn look(&self) -> Option<Look<'_>> {
        match &self.status {
            CursorImageStatus::Hidden => None,
            CursorImageStatus::Named(_) => Some(Look::Arrow(Picture {
                data: &self.arrow,
                width: ARROW_WIDTH,
                height: ARROW_HEIGHT,
                stride: ARROW_WIDTH * 4,
                opaque: false,
            })),
            CursorImageStatus::Surface(surface) => {
                if !surface.is_alive() {
                    return None;
                }
                let hotspot = with_states(surface, |states| {
                    states
                        .data_map
                        .get::<CursorImageSurfaceData>()
                        .and_then(|data| Some(data.lock().ok()?.hotspot))
                        .unwrap_or_default()
                });
                Some(Look::Surface(surface.clone(), hotspot))
            }
        }
    }

    /// The app's cursor surface, if it set one.
    pub fn surface(&self) -> Option<&WlSurface> {
        match &self.status {
            CursorImageStatus::Surface(surface) => Some(surface),
            _ => None,
        }
    }
}

/// A white arrow with a black edge: the triangle between its tip, the bottom of its left
/// edge and the end of its right wing.
fn arrow() -> Vec<u8> {
    let inside = |x: i32, y: i32| {
        let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
        (0..ARROW_WIDTH).contains(&x)
            && (0..ARROW_HEIGHT).contains(&y)
            && px <= py
            && py <= ARROW_HEIGHT as f32 - px * 5.0 / 11.0
    };
    let mut pixels = Vec::with_capacity((ARROW_WIDTH * ARROW_HEIGHT * 4) as usize);
    for y in 0..ARROW_HEIGHT {
        for x in 0..ARROW_WIDTH {
            let edge = [(1, 0), (-1, 0), (0, 1), (0, -1)]
                .iter()
                .any(|(dx, dy)| !inside(x + dx, y + dy));
            pixels.extend_from_slice(match (inside(x, y), edge) {
                (false, _) => &[0, 0, 0, 0],
                (true, true) => &[0, 0, 0, 255],
                (true, false) => &[255, 255, 255, 255],
            });
        }
    }
    pixels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_arrow_is_white_inside_a_black_edge_with_its_tip_at_the_corner() {
        let pixels = arrow();
        let at = |x: i32, y: i32| &pixels[((y * ARROW_WIDTH + x) * 4) as usize..][..4];
        assert_eq!(at(0, 0), [0, 0, 0, 255], "the tip");
        assert_eq!(at(ARROW_WIDTH - 1, 0), [0, 0, 0, 0], "beside the tip");
        assert_eq!(at(2, 8), [255, 255, 255, 255], "inside");
        assert_eq!(at(0, 8), [0, 0, 0, 255], "the left edge");
        let lit = pixels.chunks(4).filter(|p| p[3] == 255).count();
        assert!(lit > 50, "{lit} pixels drawn");
    }
}
