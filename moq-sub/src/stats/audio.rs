//! What the audio player measured, for the stats lines.

use lantern_proto::{audio::RATE, clock, histogram::Histogram, sync::SyncMeter};

use super::line::{AudioFigures, AudioRun, ms};

/// What the audio player measured: latency (capture of a packet's first sample → decoded
/// and handed to the output), gaps, and the A/V offset from beep/flash pairs. Shared with the
/// video player, which reports it in the same lines and tells it of the flashes it shows.
pub struct AudioStats {
    frames: u64,
    gaps: u64,
    missing_samples: u64,
    decode_errors: u64,
    /// A PipeWire sink's underruns and samples shed from its queue.
    underruns: u64,
    shed_samples: u64,
    latency: Histogram,
    total_latency: Histogram,
    sync: SyncMeter,
    /// Every A/V offset measured (µs; one per beep, so a few a minute).
    offsets: Vec<i64>,
    window_offsets: usize,
}

impl Default for AudioStats {
    fn default() -> Self {
        Self {
            frames: 0,
            gaps: 0,
            missing_samples: 0,
            decode_errors: 0,
            underruns: 0,
            shed_samples: 0,
            latency: Histogram::new(),
            total_latency: Histogram::new(),
            sync: SyncMeter::default(),
            offsets: Vec::new(),
            window_offsets: 0,
        }
    }
}

impl AudioStats {
    /// A packet was decoded and handed to the output at `written_unix_us`.
    pub fn frame(&mut self, captured_unix_us: Option<u64>, written_unix_us: u64) {
        self.frames += 1;
        if let Some(captured) = captured_unix_us {
            let us = clock::elapsed_us(captured, written_unix_us);
            self.latency.record(us);
            self.total_latency.record(us);
        }
    }

    /// `samples` (per channel) never arrived and were played as silence.
    pub fn gap(&mut self, samples: u64) {
        self.gaps += 1;
        self.missing_samples += samples;
    }

    /// A sink's running totals of underruns and shed samples.
    pub fn sink(&mut self, underruns: u64, shed_samples: u64) {
        self.underruns = underruns;
        self.shed_samples = shed_samples;
    }

    pub fn decode_error(&mut self) {
        self.decode_errors += 1;
    }

    /// A beep started playing.
    pub fn beep(&mut self, played_unix_us: u64) {
        if let Some(offset) = self.sync.beep(played_unix_us) {
            self.offsets.push(offset);
        }
    }

    /// A flash was shown.
    pub fn flash(&mut self, shown_unix_us: u64) {
        if let Some(offset) = self.sync.flash(shown_unix_us) {
            self.offsets.push(offset);
        }
    }

    /// The last second's figures (its window then restarts).
    pub(super) fn tick(&mut self) -> AudioFigures {
        let offset = (self.offsets.len() > self.window_offsets)
            .then(|| self.offsets.last().map(|&o| signed_ms(o)))
            .flatten();
        self.window_offsets = self.offsets.len();
        let figures = AudioFigures {
            audio_ms_p50: ms(self.latency.quantile(0.5)),
            audio_gaps: self.gaps,
            av_offset_ms: offset,
            run: None,
        };
        self.latency.clear();
        figures
    }

    /// The whole run's figures.
    pub(super) fn total(&self) -> AudioFigures {
        let samples_ms = |samples: u64| (samples as f64 * 1000.0 / RATE as f64).round();
        AudioFigures {
            audio_ms_p50: ms(self.total_latency.quantile(0.5)),
            audio_gaps: self.gaps,
            av_offset_ms: None,
            run: Some(AudioRun {
                audio_frames: self.frames,
                audio_ms_p99: ms(self.total_latency.quantile(0.99)),
                audio_missing_ms: samples_ms(self.missing_samples),
                audio_decode_errors: self.decode_errors,
                audio_underruns: self.underruns,
                audio_shed_ms: samples_ms(self.shed_samples),
                av_pairs: self.offsets.len(),
                av_offset_ms_min: self.offsets.iter().min().map(|&o| signed_ms(o)),
                av_offset_ms_max: self.offsets.iter().max().map(|&o| signed_ms(o)),
                av_offsets_ms: self.offsets.iter().map(|&o| signed_ms(o)).collect(),
            }),
        }
    }
}

fn signed_ms(us: i64) -> f64 {
    (us as f64 / 10.0).round() / 100.0
}
