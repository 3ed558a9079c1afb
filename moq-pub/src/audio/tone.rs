//! `--audio testsrc`: a 1 kHz beep once per cube rotation, silent between, paced in real time
//! like a capture device: a frame is handed over once its last sample has "happened". The beep
//! is scheduled from the same start instant as the cube's flash.

use std::time::{Duration, Instant};

use lantern_proto::{audio::RATE, clock, sync};

use super::{AudioSource, CHANNELS};
use crate::Error;

pub struct Tone {
    sync_epoch_us: u64,
    /// When sample 0 was captured: monotonic for pacing, UNIX µs for timestamps.
    start: Option<(Instant, u64)>,
    samples: u64,
}

impl Tone {
    pub fn new(sync_epoch_us: u64) -> Self {
        Self {
            sync_epoch_us,
            start: None,
            samples: 0,
        }
    }
}

impl AudioSource for Tone {
    fn next(&mut self, frame: &mut [f32]) -> Result<Option<u64>, Error> {
        let (start, start_us) = *self
            .start
            .get_or_insert_with(|| (Instant::now(), clock::now_unix_us()));
        let count = frame.len() / CHANNELS;
        let first = self.samples;
        self.samples += count as u64;
        // Sleep until the frame's last sample is due.
        let due = start + Duration::from_micros(self.samples * 1_000_000 / RATE as u64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        // Sample n of this source lies this many samples into the beep schedule.
        let lead = start_us.saturating_sub(self.sync_epoch_us) * RATE as u64 / 1_000_000;
        for (i, pair) in frame.chunks_exact_mut(CHANNELS).enumerate() {
            pair.fill(sync::tone_sample(lead + first + i as u64, RATE));
        }
        Ok(Some(start_us + first * 1_000_000 / RATE as u64))
    }
}
