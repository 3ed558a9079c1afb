//! The A/V sync signal: Lantern's test sources beep and flash together, once per cube
//! rotation, both timed from one start instant. A subscriber finds each flash in the decoded
//! pictures and each beep in the decoded sound, and the difference between when it showed one
//! and played the other is the A/V offset it delivers.

use std::collections::VecDeque;

use crate::picture::I420Mut;

/// One beep and one flash per period: one rotation of the test cube.
pub const PERIOD_US: u64 = 4_000_000;
/// How long each beep and each flash lasts.
pub const PULSE_US: u64 = 100_000;
/// The beep's pitch.
pub const TONE_HZ: f64 = 1000.0;
/// The beep's amplitude (full scale is 1.0).
pub const TONE_LEVEL: f32 = 0.5;

/// Whether the beep sounds and the flash shows at `t_us` after the sources' start.
pub fn pulse_on(t_us: u64) -> bool {
    t_us % PERIOD_US < PULSE_US
}

/// Sample `n` of the test tone at `rate` Hz: the beep during a pulse, silence between.
pub fn tone_sample(n: u64, rate: u32) -> f32 {
    let t_us = n * 1_000_000 / rate as u64;
    if !pulse_on(t_us) {
        return 0.0;
    }
    let phase = (n % rate as u64) as f64 / rate as f64 * TONE_HZ;
    TONE_LEVEL * (phase.fract() * std::f64::consts::TAU).sin() as f32
}

/// The flash: a white square in the bottom-right corner, where the cube never reaches.
/// Macroblock-aligned so that the encoder keeps its edges.
fn flash_rect(width: u32, height: u32) -> (usize, usize, usize) {
    let side = ((height / 8) & !15).max(16) as usize;
    let x = (width as usize).saturating_sub(side) & !15;
    let y = (height as usize).saturating_sub(side) & !15;
    (x, y, side)
}

/// Draw the flash into `frame`.
pub fn paint_flash(frame: &mut I420Mut) {
    let (x, y, side) = flash_rect(frame.width(), frame.height());
    if x + side > frame.width() as usize || y + side > frame.height() as usize {
        return; // a picture smaller than the square has no corner to flash
    }
    for (i, (plane, stride)) in frame.planes_mut().into_iter().enumerate() {
        let (scale, value) = if i == 0 { (1, 235) } else { (2, 128) };
        for row in y / scale..(y + side) / scale {
            plane[row * stride + x / scale..][..side / scale].fill(value);
        }
    }
}

/// Whether a decoded picture shows the flash: the middle of its square is bright.
pub fn flash_visible(luma: &[u8], stride: usize, width: u32, height: u32) -> bool {
    let (x, y, side) = flash_rect(width, height);
    let (inner_x, inner_y, inner) = (x + side / 4, y + side / 4, side / 2);
    let mut sum = 0u64;
    for row in luma.chunks(stride).skip(inner_y).take(inner) {
        let Some(pixels) = row.get(inner_x..inner_x + inner) else {
            return false;
        };
        sum += pixels.iter().map(|&p| p as u64).sum::<u64>();
    }
    sum > 200 * (inner * inner) as u64
}

/// Finds where beeps start in a stream of samples: the first loud sample after a stretch of
/// quiet at least as long as half the gap between beeps.
#[derive(Debug)]
pub struct OnsetDetector {
    quiet_needed: u64,
    quiet: u64,
}

impl OnsetDetector {
    pub fn new(rate: u32) -> Self {
        let gap_us = PERIOD_US - PULSE_US;
        Self {
            quiet_needed: gap_us / 2 * rate as u64 / 1_000_000,
            quiet: 0,
        }
    }

    /// Feed one sample (any channel); true at the first loud sample of a beep.
    pub fn push(&mut self, sample: f32) -> bool {
        if sample.abs() < TONE_LEVEL / 8.0 {
            self.quiet += 1;
            return false;
        }
        let onset = self.quiet >= self.quiet_needed && sample.abs() >= TONE_LEVEL / 2.0;
        if sample.abs() >= TONE_LEVEL / 2.0 {
            self.quiet = 0;
        }
        onset
    }
}

/// Pairs each flash shown with the beep played nearest to it, giving the A/V offset: positive
/// when the sound comes after the picture.
#[derive(Debug, Default)]
pub struct SyncMeter {
    flashes: VecDeque<u64>,
    beeps: VecDeque<u64>,
}

impl SyncMeter {
    /// A flash was shown at this time (µs on any one clock shared with the beeps).
    pub fn flash(&mut self, shown_us: u64) -> Option<i64> {
        self.flashes.push_back(shown_us);
        self.pair()
    }

    /// A beep started playing at this time.
    pub fn beep(&mut self, played_us: u64) -> Option<i64> {
        self.beeps.push_back(played_us);
        self.pair()
    }

    fn pair(&mut self) -> Option<i64> {
        let half = (PERIOD_US / 2) as i64;
        while let (Some(&flash), Some(&beep)) = (self.flashes.front(), self.beeps.front()) {
            let offset = beep as i64 - flash as i64;
            if offset.abs() < half {
                self.flashes.pop_front();
                self.beeps.pop_front();
                return Some(offset);
            }
            // Unpaired (its partner was lost): drop whichever is older.
            if offset > 0 {
                self.flashes.pop_front();
            } else {
                self.beeps.pop_front();
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yuv;

    #[test]
    fn the_tone_beeps_once_per_period() {
        let rate = 48_000;
        let mut onsets = Vec::new();
        let mut detector = OnsetDetector::new(rate);
        for n in 0..(rate as u64 * 9) {
            if detector.push(tone_sample(n, rate)) {
                onsets.push(n);
            }
        }
        // The first beep follows no quiet; the next two start on the period, give or take
        // the sine's first rise.
        let period = rate as u64 * PERIOD_US / 1_000_000;
        assert_eq!(onsets.len(), 2, "{onsets:?}");
        for (k, onset) in onsets.iter().enumerate() {
            let due = period * (k as u64 + 1);
            assert!((due..due + 10).contains(onset), "{onset} vs {due}");
        }
    }

    #[test]
    fn the_flash_is_seen_only_when_painted() {
        let mut frame = yuv::Frame::new(1280, 720).unwrap();
        let visible = |f: &yuv::Frame| {
            let [(luma, stride), _, _] = f.planes();
            flash_visible(luma, stride, f.width(), f.height())
        };
        assert!(!visible(&frame));
        paint_flash(&mut frame.view_mut());
        assert!(visible(&frame));
        let mut small = yuv::Frame::new(160, 96).unwrap();
        paint_flash(&mut small.view_mut());
        assert!(visible(&small));
    }

    #[test]
    fn offsets_pair_flashes_with_the_nearest_beep() {
        let mut meter = SyncMeter::default();
        assert_eq!(meter.flash(1_000_000), None);
        assert_eq!(meter.beep(1_004_000), Some(4_000));
        assert_eq!(meter.beep(4_990_000), None);
        assert_eq!(meter.flash(5_000_000), Some(-10_000));
        // A flash whose beep was lost is dropped once the next beep arrives.
        assert_eq!(meter.flash(9_000_000), None);
        assert_eq!(meter.flash(13_000_000), None);
        assert_eq!(meter.beep(13_002_000), Some(2_000));
    }
}
