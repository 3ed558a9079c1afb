//! The stats overlay: the last second's figures as a few lines of text (`stats::text`), drawn with an 8x8
//! bitmap font into a small ARGB image once a second. The window blends that image over the
//! picture; the picture itself is never copied or touched.

use font8x8::legacy::BASIC_LEGACY;

/// Glyphs are 8x8; the window scales the image up on large screens.
const GLYPH: usize = 8;
const PAD: usize = 3;
/// 75 % black behind the text, so it reads over any picture.
const BACKGROUND: u32 = 0xC000_0000;
const INK: u32 = 0xFFFF_FFFF;

/// How many screen pixels a font pixel takes in a window `height` pixels high: 1 up to
/// 720p, then 2, 3 from 1440p.
pub fn scale(height: u32) -> u32 {
    (height / 720).clamp(1, 3)
}

/// An ARGB8888 image of `lines`, row by row, `width` pixels a row.
pub struct Image {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u32>,
}

pub fn render(lines: &[String]) -> Image {
    let columns = lines.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let width = columns * GLYPH + 2 * PAD;
    let height = lines.len() * (GLYPH + 1) + 2 * PAD;
    let mut pixels = vec![BACKGROUND; width * height];
    for (row, line) in lines.iter().enumerate() {
        let top = PAD + row * (GLYPH + 1);
        for (column, c) in line.chars().enumerate() {
            let glyph = BASIC_LEGACY[if c.is_ascii() {
                c as usize
            } else {
                b'?' as usize
            }];
            let left = PAD + column * GLYPH;
            for (gy, bits) in glyph.iter().enumerate() {
                for gx in (0..8).filter(|gx| bits & (1 << gx) != 0) {
                    pixels[(top + gy) * width + left + gx] = INK;
                }
            }
        }
    }
    Image {
        width,
        height,
        pixels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_ink_on_a_dark_box() {
        let image = render(&["I".to_string()]);
        assert_eq!(image.width, GLYPH + 2 * PAD);
        assert_eq!(image.pixels.len(), image.width * image.height);
        let ink = image.pixels.iter().filter(|&&p| p == INK).count();
        // The font's I: a 4-wide bar top and bottom and a 2-wide stem 5 rows high.
        assert_eq!(ink, 18);
        assert_eq!(image.pixels[0], BACKGROUND);
    }
}
