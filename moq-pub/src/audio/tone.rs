//! `--audio testsrc`: a 1 kHz beep once per cube rotation, silent between, paced in real time
//! like a capture device: a frame is handed over once its last sample has "happened". Samples
//! count from the same epoch as the cube's frames, so each beep starts with a flashed frame.

use std::time::Duration;

use lantern_proto::{audio::RATE, sync};

use super::{AudioSource, CHANNELS};
use crate::Error;
use crate::source::SyncEpoch;

pub struct Tone {
    epoch: SyncEpoch,
    /// Samples since the epoch at the start of the next frame (set by the first frame).
    samples: Option<u64>,
}

impl Tone {
    pub fn new(epoch: SyncEpoch) -> Self {
        Self {
            epoch,
            samples: None,
        }
    }
}

impl AudioSource for Tone {
    fn next(&mut self, frame: &mut [f32]) -> Result<Option<u64>, Error> {
        let count = (frame.len() / CHANNELS) as u64;
        let at = |samples: u64| Duration::from_micros(samples * 1_000_000 / RATE as u64);
        // Start at the next frame boundary on the epoch's grid (never replaying the past).
        let first = *self.samples.get_or_insert_with(|| {
            let since = self.epoch.elapsed_us() * RATE as u64 / 1_000_000;
            since.div_ceil(count) * count
        });
        self.samples = Some(first + count);
        // Hand the frame over once its last sample is due.
        self.epoch.sleep_until(at(first + count).as_micros() as u64);
        for (i, pair) in frame.chunks_exact_mut(CHANNELS).enumerate() {
            pair.fill(sync::tone_sample(first + i as u64, RATE));
        }
        Ok(Some(self.epoch.unix_us + at(first).as_micros() as u64))
    }
}
