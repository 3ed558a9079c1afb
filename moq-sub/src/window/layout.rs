//! Where the picture goes in the window: the largest rectangle of the video's aspect that fits,
//! centred, with black bars on the other sides (letterboxing); and the way back, from a
//! pointer in the window to a place on the video frame.

/// A rectangle in window (or drawable) pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    pub x: i32,
    pub y: i32,
    pub width: u32,
    pub height: u32,
}

/// The video's place in an area of `area` pixels, for a `video` of that size.
pub fn letterbox(area: (u32, u32), video: (u32, u32)) -> Rect {
    let (aw, ah) = (u64::from(area.0), u64::from(area.1));
    let (vw, vh) = (u64::from(video.0.max(1)), u64::from(video.1.max(1)));
    // Full width if the area is relatively taller than the video, else full height.
    let (width, height) = if aw * vh <= ah * vw {
        (aw, (aw * vh + vw / 2) / vw)
    } else {
        ((ah * vw + vh / 2) / vh, ah)
    };
    let (width, height) = (width.min(aw) as u32, height.min(ah) as u32);
    Rect {
        x: ((area.0 - width) / 2) as i32,
        y: ((area.1 - height) / 2) as i32,
        width,
        height,
    }
}

/// A pointer at window point (`x`, `y`) as a place on the frame (0..=65535 on each axis, the
/// input format's scale), when it is over the picture `rect`; `None` over the bars.
pub fn to_frame(rect: Rect, x: i32, y: i32) -> Option<(u16, u16)> {
    let inside = |p: i32, start: i32, len: u32| p >= start && p < start + len as i32;
    if rect.width == 0 || rect.height == 0 || !inside(x, rect.x, rect.width) {
        return None;
    }
    if !inside(y, rect.y, rect.height) {
        return None;
    }
    // Pixel centres: the first pixel maps to its centre, so the scale is symmetric.
    let scale = |p: i32, start: i32, len: u32| {
        let at = (f64::from(p - start) + 0.5) / f64::from(len);
        (at * 65535.0).round().clamp(0.0, 65535.0) as u16
    };
    Some((scale(x, rect.x, rect.width), scale(y, rect.y, rect.height)))
}

/// The window size to open for a video: its own size, scaled down to fit `bounds` (the
/// display's usable area) with its aspect kept.
pub fn initial_size(video: (u32, u32), bounds: (u32, u32)) -> (u32, u32) {
    if video.0 <= bounds.0 && video.1 <= bounds.1 {
        return video;
    }
    let fit = letterbox(bounds, video);
    (fit.width.max(1), fit.height.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wider_window_gets_bars_left_and_right() {
        let rect = letterbox((1000, 360), (640, 360));
        assert_eq!(
            rect,
            Rect {
                x: 180,
                y: 0,
                width: 640,
                height: 360
            }
        );
    }

    #[test]
    fn a_taller_window_gets_bars_top_and_bottom() {
        let rect = letterbox((1280, 1024), (1920, 1080));
        assert_eq!((rect.width, rect.height), (1280, 720));
        assert_eq!((rect.x, rect.y), (0, 152));
    }

    #[test]
    fn an_exact_fit_fills_the_window() {
        let rect = letterbox((1280, 720), (1280, 720));
        assert_eq!((rect.x, rect.y, rect.width, rect.height), (0, 0, 1280, 720));
        // Degenerate sizes never divide by zero.
        assert_eq!(letterbox((0, 0), (1280, 720)).width, 0);
        assert_eq!(letterbox((100, 100), (0, 0)).width, 100);
    }

    #[test]
    fn the_pointer_maps_through_the_letterbox() {
        let rect = letterbox((1000, 360), (640, 360));
        assert_eq!(to_frame(rect, 179, 100), None, "left bar");
        assert_eq!(to_frame(rect, 820, 100), None, "right bar");
        assert_eq!(to_frame(rect, 180, 0), Some((51, 91)));
        assert_eq!(to_frame(rect, 819, 359), Some((65484, 65444)));
        // The middle of the window is the middle of the frame.
        let (x, y) = to_frame(rect, 500, 180).unwrap();
        assert!((32700..=32900).contains(&x) && (32700..=32900).contains(&y));
    }

    #[test]
    fn a_large_video_opens_scaled_to_the_display() {
        assert_eq!(initial_size((1280, 720), (1920, 1080)), (1280, 720));
        assert_eq!(initial_size((3840, 2160), (1920, 1050)), (1867, 1050));
    }
}
