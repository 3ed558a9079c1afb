//! Software composition of 32-bit pictures (wl_shm's ARGB8888 and XRGB8888: B, G, R, A bytes
//! in memory, alpha premultiplied) into the capture's XRGB8888 buffer. Sizes and strides come
//! from clients, so every access is checked against the slices' lengths.

/// A picture to draw into.
pub struct Target<'a> {
    pub data: &'a mut [u8],
    pub width: i32,
    pub height: i32,
    pub stride: i32,
}

/// A client's picture.
#[derive(Clone, Copy)]
pub struct Picture<'a> {
    pub data: &'a [u8],
    pub width: i32,
    pub height: i32,
    pub stride: i32,
    /// XRGB, or an ARGB the client said is opaque: copied, not blended.
    pub opaque: bool,
}

impl Picture<'_> {
    /// Whether the sizes describe memory the slice holds.
    pub fn fits(&self) -> bool {
        self.fits_in(self.data.len())
    }

    /// Whether they describe memory `len` bytes long holds.
    pub fn fits_in(&self, len: usize) -> bool {
        fits(len, self.width, self.height, self.stride)
    }
}

fn fits(len: usize, width: i32, height: i32, stride: i32) -> bool {
    if width <= 0 || height <= 0 || stride < width.saturating_mul(4) {
        return false;
    }
    let need = (height as usize - 1) * stride as usize + width as usize * 4;
    need <= len
}

impl Target<'_> {
    pub fn fits(&self) -> bool {
        fits(self.data.len(), self.width, self.height, self.stride)
    }

    pub fn clear(&mut self) {
        for y in 0..self.height.max(0) as usize {
            let row = y * self.stride as usize;
            if let Some(row) = self.data.get_mut(row..row + self.width as usize * 4) {
                row.fill(0);
            }
        }
    }

    /// Draw `picture` with its top left corner at `(x, y)`, clipped to the target.
    pub fn draw(&mut self, picture: &Picture, (x, y): (i32, i32)) {
        if !self.fits() || !picture.fits() {
            return;
        }
        let left = x.max(0);
        let top = y.max(0);
        // Places come from clients: never overflow on them.
        let right = x.saturating_add(picture.width).min(self.width);
        let bottom = y.saturating_add(picture.height).min(self.height);
        if left >= right || top >= bottom {
            return;
        }
        let bytes = (right - left) as usize * 4;
        for row in top..bottom {
            let from = (row - y) as usize * picture.stride as usize + (left - x) as usize * 4;
            let to = row as usize * self.stride as usize + left as usize * 4;
            let source = &picture.data[from..from + bytes];
            let dest = &mut self.data[to..to + bytes];
            if picture.opaque {
                dest.copy_from_slice(source);
            } else {
                over(dest, source);
            }
        }
    }
}

/// A part of a picture, in its pixels: x, y, width, height.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Crop {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

impl Target<'_> {
    /// Draw the `crop` of `picture` scaled to `size` with its top left corner at `(x, y)`,
    /// clipped to the target: the nearest source pixel for each (wp_viewporter's cropping and
    /// scaling, and buffer scales).
    pub fn draw_scaled(
        &mut self,
        picture: &Picture,
        crop: Crop,
        (x, y): (i32, i32),
        (width, height): (i32, i32),
    ) {
        if !self.fits() || !picture.fits() || width <= 0 || height <= 0 {
            return;
        }
        let left = x.max(0);
        let top = y.max(0);
        let right = x.saturating_add(width).min(self.width);
        let bottom = y.saturating_add(height).min(self.height);
        if left >= right || top >= bottom {
            return;
        }
        // The source pixel for a target place `i` of `n` across a crop: clamped, so a crop a
        // client put past the edge reads the edge.
        let nearest = |i: i32, n: i32, from: f64, span: f64, limit: i32| {
            let at = from + (f64::from(i) + 0.5) * span / f64::from(n);
            (at.floor() as i64).clamp(0, i64::from(limit) - 1) as usize
        };
        let columns: Vec<usize> = (left..right)
            .map(|col| nearest(col - x, width, crop.x, crop.w, picture.width) * 4)
            .collect();
        for row in top..bottom {
            let source_row = nearest(row - y, height, crop.y, crop.h, picture.height);
            let from = source_row * picture.stride as usize;
            let to = row as usize * self.stride as usize + left as usize * 4;
            let dest = &mut self.data[to..to + columns.len() * 4];
            for (d, &column) in dest.chunks_exact_mut(4).zip(&columns) {
                let s = &picture.data[from + column..from + column + 4];
                if picture.opaque {
                    d.copy_from_slice(s);
                } else {
                    over(d, s);
                }
            }
        }
    }
}

/// Premultiplied source-over, four bytes a pixel.
fn over(dest: &mut [u8], source: &[u8]) {
    for (d, s) in dest.chunks_exact_mut(4).zip(source.chunks_exact(4)) {
        let alpha = s[3] as u32;
        match alpha {
            255 => d.copy_from_slice(s),
            0 => {}
            _ => {
                for i in 0..3 {
                    d[i] = (s[i] as u32 + d[i] as u32 * (255 - alpha) / 255).min(255) as u8;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(data: &mut [u8], width: i32, height: i32) -> Target<'_> {
        Target {
            data,
            width,
            height,
            stride: width * 4,
        }
    }

    #[test]
    fn a_picture_is_clipped_to_the_target() {
        let mut out = vec![0u8; 4 * 4 * 4];
        let source = vec![9u8; 3 * 3 * 4];
        let picture = Picture {
            data: &source,
            width: 3,
            height: 3,
            stride: 12,
            opaque: true,
        };
        target(&mut out, 4, 4).draw(&picture, (2, -1));
        let pixel = |x: usize, y: usize| out[(y * 4 + x) * 4];
        assert_eq!(pixel(2, 0), 9);
        assert_eq!(pixel(3, 1), 9);
        assert_eq!(pixel(1, 0), 0);
        assert_eq!(pixel(2, 2), 0);
        // Wholly outside, however far: nothing.
        target(&mut out, 4, 4).draw(&picture, (10, 10));
        target(&mut out, 4, 4).draw(&picture, (i32::MAX, i32::MIN));
    }

    #[test]
    fn a_short_buffer_is_never_read_past_its_end() {
        let mut out = vec![0u8; 4 * 4 * 4];
        let source = vec![9u8; 20];
        let picture = Picture {
            data: &source,
            width: 3,
            height: 3,
            stride: 12,
            opaque: true,
        };
        assert!(!picture.fits());
        target(&mut out, 4, 4).draw(&picture, (0, 0));
        assert!(out.iter().all(|&b| b == 0));
        let stride_too_small = Picture {
            stride: 4,
            ..picture
        };
        assert!(!stride_too_small.fits());
    }

    #[test]
    fn a_crop_is_scaled_to_its_size_and_never_read_past_the_picture() {
        // A 2x2 picture: pixel values 1, 2 / 3, 4.
        let source: Vec<u8> = [1u8, 2, 3, 4].iter().flat_map(|&v| [v; 4]).collect();
        let picture = Picture {
            data: &source,
            width: 2,
            height: 2,
            stride: 8,
            opaque: true,
        };
        let mut out = vec![0u8; 4 * 4 * 4];
        let whole = Crop {
            x: 0.0,
            y: 0.0,
            w: 2.0,
            h: 2.0,
        };
        target(&mut out, 4, 4).draw_scaled(&picture, whole, (0, 0), (4, 4));
        let pixel = |out: &[u8], x: usize, y: usize| out[(y * 4 + x) * 4];
        assert_eq!(
            [
                pixel(&out, 0, 0),
                pixel(&out, 1, 1),
                pixel(&out, 2, 0),
                pixel(&out, 3, 3)
            ],
            [1, 1, 2, 4]
        );
        // The bottom right pixel alone, over the whole target.
        let corner = Crop {
            x: 1.0,
            y: 1.0,
            w: 1.0,
            h: 1.0,
        };
        target(&mut out, 4, 4).draw_scaled(&picture, corner, (0, 0), (4, 4));
        assert!(out.iter().all(|&b| b == 4));
        // A crop past the picture reads its edge; places far off draw nothing.
        let past = Crop {
            x: 1.5,
            y: 1.5,
            w: 100.0,
            h: 100.0,
        };
        target(&mut out, 4, 4).draw_scaled(&picture, past, (-3, -3), (8, 8));
        target(&mut out, 4, 4).draw_scaled(&picture, whole, (i32::MAX, i32::MIN), (9, 9));
        assert!(out.iter().all(|&b| b == 4));
    }

    #[test]
    fn translucent_pixels_blend_over_what_is_below() {
        let mut out = vec![200u8; 4];
        // Half-transparent black (premultiplied: colour 0, alpha 128) and full transparency.
        let source = [0, 0, 0, 128, 50, 50, 50, 0];
        let half = Picture {
            data: &source[..4],
            width: 1,
            height: 1,
            stride: 4,
            opaque: false,
        };
        target(&mut out, 1, 1).draw(&half, (0, 0));
        assert!((98..=101).contains(&out[0]), "{}", out[0]);
        let clear = Picture {
            data: &source[4..],
            ..half
        };
        let before = out.clone();
        target(&mut out, 1, 1).draw(&clear, (0, 0));
        assert_eq!(out, before);
    }
}
