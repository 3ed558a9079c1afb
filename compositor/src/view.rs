//! How a surface's buffer shows on the output: its buffer scale and the crop and size an app
//! set through wp_viewporter (games render small and have it scaled up; video players crop).
//! Buffer transforms are not applied (no app of a headless, unrotated output asks for one).

use smithay::wayland::compositor::{SurfaceAttributes, SurfaceData};
use smithay::wayland::viewporter::ViewportCachedState;

use crate::paint::Crop;

/// The part of the buffer shown (in its pixels), and the size it has on the output.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct View {
    pub crop: Crop,
    pub size: (i32, i32),
}

impl View {
    /// Whether the buffer shows one pixel for one, whole: copied as it is.
    pub fn is_identity(&self, buffer: (i32, i32)) -> bool {
        let whole = Crop {
            x: 0.0,
            y: 0.0,
            w: f64::from(buffer.0),
            h: f64::from(buffer.1),
        };
        self.crop == whole && self.size == buffer
    }
}

/// The view of a `buffer` (width, height in pixels) at buffer `scale`, with the viewport's
/// `source` (surface coordinates) and `destination` if the app set them.
pub fn view(
    buffer: (i32, i32),
    scale: i32,
    source: Option<Crop>,
    destination: Option<(i32, i32)>,
) -> View {
    let scale = f64::from(scale.max(1));
    let source = source.unwrap_or(Crop {
        x: 0.0,
        y: 0.0,
        w: f64::from(buffer.0) / scale,
        h: f64::from(buffer.1) / scale,
    });
    let size = destination.unwrap_or((source.w.round() as i32, source.h.round() as i32));
    View {
        crop: Crop {
            x: source.x * scale,
            y: source.y * scale,
            w: source.w * scale,
            h: source.h * scale,
        },
        size,
    }
}

/// The view of a surface's current state, its buffer `buffer` pixels large.
pub fn of(states: &SurfaceData, buffer: (i32, i32)) -> View {
    let scale = states
        .cached_state
        .get::<SurfaceAttributes>()
        .current()
        .buffer_scale;
    let viewport = *states.cached_state.get::<ViewportCachedState>().current();
    let source = viewport.src.map(|src| Crop {
        x: src.loc.x,
        y: src.loc.y,
        w: src.size.w,
        h: src.size.h,
    });
    view(buffer, scale, source, viewport.dst.map(|d| (d.w, d.h)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_buffer_shows_as_it_is_and_viewports_crop_and_scale() {
        let plain = view((1280, 720), 1, None, None);
        assert!(plain.is_identity((1280, 720)));
        // A game's 1280x720 scaled to a 1920x1080 output.
        let up = view((1280, 720), 1, None, Some((1920, 1080)));
        assert_eq!(up.size, (1920, 1080));
        assert_eq!(up.crop.w, 1280.0);
        assert!(!up.is_identity((1280, 720)));
        // A crop alone keeps its size; a buffer scale of 2 halves the surface.
        let crop = Crop {
            x: 10.0,
            y: 20.0,
            w: 100.0,
            h: 50.0,
        };
        let cropped = view((640, 480), 1, Some(crop), None);
        assert_eq!((cropped.crop, cropped.size), (crop, (100, 50)));
        let hidpi = view((640, 480), 2, None, None);
        assert_eq!(hidpi.size, (320, 240));
        assert_eq!(hidpi.crop.w, 640.0);
        // A scale a client got wrong counts as 1.
        assert!(view((64, 64), 0, None, None).is_identity((64, 64)));
    }
}
