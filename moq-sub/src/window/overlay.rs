//! The stats overlay: the last second's figures as a few lines of text, drawn with an 8x8
//! bitmap font into a small ARGB image once a second. The window blends that image over the
//! picture; the picture itself is never copied or touched.

use font8x8::legacy::BASIC_LEGACY;

use crate::stats::{LatencyFrom, Line};

/// Glyphs are 8x8; the window scales the image up on large screens.
const GLYPH: usize = 8;
const PAD: usize = 3;
/// 75 % black behind the text, so it reads over any picture.
const BACKGROUND: u32 = 0xC000_0000;
const INK: u32 = 0xFFFF_FFFF;

/// The overlay's lines for one stats line (see `Stats::tick`).
pub fn lines(stats: &Line) -> Vec<String> {
    let ms = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.1}"));
    let mut lines = vec![format!(
        "{:.0} fps  {} kbit/s  drops {}",
        stats.fps.unwrap_or(0.0),
        stats.kbps.map_or_else(|| "-".into(), |v| format!("{v:.0}")),
        stats.drops,
    )];
    // Glass to glass needs the stamp in the picture; any stream has timestamps.
    match stats.latency_from {
        Some(LatencyFrom::Stamp) => lines.push(format!(
            "glass-to-glass {} ms (p99 {})",
            ms(stats.g2g_ms_p50),
            ms(stats.g2g_ms_p99)
        )),
        Some(LatencyFrom::Pts) => lines.push(format!(
            "pts-to-shown {} ms (p99 {})",
            ms(stats.pts_to_shown_ms_p50),
            ms(stats.pts_to_shown_ms_p99)
        )),
        None => lines.push("latency -".into()),
    }
    let present = stats.window.as_ref().and_then(|w| w.present_ms_p50);
    lines.push(format!(
        "decode {} ms  present {} ms  rtt {} ms",
        ms(stats.decode_ms_p50),
        ms(present),
        ms(stats.rtt_ms),
    ));
    if let Some(input) = &stats.input {
        lines.push(format!(
            "input-to-photon {} ms (p99 {})",
            ms(input.input_to_photon_ms_p50),
            ms(input.input_to_photon_ms_p99)
        ));
    }
    lines
}

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
    use serde_json::json;

    #[test]
    fn the_lines_say_what_the_stats_measured() {
        let stats = json!({
            "role": "sub", "fps": 59.8, "kbps": 2400.0, "drops": 0, "latency_from": "stamp",
            "g2g_ms_p50": 19.7, "g2g_ms_p99": 22.3, "decode_ms_p50": 1.2,
            "present_ms_p50": 0.4, "present_ms_p99": 0.9, "window_replaced": 0, "rtt_ms": 0.3,
            "input_events": 3, "input_datagrams": 5, "input_unanswered": 0,
            "input_to_photon_count": 3, "input_to_photon_ms_p50": 33.3,
            "input_to_photon_ms_p99": 42.5,
        });
        let lines = lines(&serde_json::from_value(stats).unwrap());
        assert_eq!(lines[0], "60 fps  2400 kbit/s  drops 0");
        assert_eq!(lines[1], "glass-to-glass 19.7 ms (p99 22.3)");
        assert_eq!(lines[2], "decode 1.2 ms  present 0.4 ms  rtt 0.3 ms");
        assert_eq!(lines[3], "input-to-photon 33.3 ms (p99 42.5)");
        // Unstamped pictures fall back to timestamps, and nothing measured says so.
        let stats = json!({"latency_from": "pts", "pts_to_shown_ms_p50": 5.0});
        let lines = super::lines(&serde_json::from_value(stats).unwrap());
        assert_eq!(lines[1], "pts-to-shown 5.0 ms (p99 -)");
        assert_eq!(lines.len(), 3);
    }

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
