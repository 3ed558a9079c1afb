//! Audio: where sound comes from (the A/V sync test tone, or PipeWire capture), Opus
//! encoding, and the thread that runs them into the broadcast's audio track. Timestamps are
//! capture times on the same UNIX-µs clock as video, so subscribers can line the two up.

mod encode;
pub mod pipewire;
mod tone;

use std::str::FromStr;

use lantern_proto::audio::frame_samples;
use tokio_util::sync::CancellationToken;

pub use encode::OpusEncoder;
pub use lantern_media::pipewire::CHANNELS;
pub use tone::Tone;

use crate::Error;
use crate::outlet::Outlet;
use crate::publish::AudioTrack;
use crate::stats::AudioSummary;

/// `--audio`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum AudioSpec {
    /// PipeWire's default sink monitor if there is a PipeWire daemon, else no audio (with a
    /// warning): what `--audio` means when not given.
    #[default]
    Auto,
    None,
    /// A tone that beeps once per cube rotation, with the cube's flash.
    TestSrc,
    /// Capture a PipeWire node or sink monitor (by name or serial), or the default sink's
    /// monitor.
    PipeWire(Option<String>),
}

impl FromStr for AudioSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            None if s == "auto" => Ok(Self::Auto),
            None if s == "none" => Ok(Self::None),
            None if s == "testsrc" => Ok(Self::TestSrc),
            None if s == "pipewire" => Ok(Self::PipeWire(None)),
            Some(("pipewire", target)) if !target.is_empty() => {
                Ok(Self::PipeWire(Some(target.to_string())))
            }
            _ => Err(format!(
                "unknown audio source {s:?}: use none, testsrc, pipewire or pipewire:TARGET"
            )),
        }
    }
}

/// The Opus flags, shared by moq-pub and host-daemon so both take and check them alike.
#[derive(clap::Args, Clone, Copy, Debug, PartialEq)]
pub struct AudioArgs {
    /// Opus frame length in ms: 2.5, 5, 10 or 20. Shorter is lower latency, longer is
    /// cheaper and better per bit.
    #[arg(long = "audio-frame-ms", default_value_t = 10.0, value_name = "MS")]
    pub frame_ms: f64,

    /// Opus bitrate in kbit/s (stereo).
    #[arg(long = "audio-bitrate", default_value_t = 128, value_name = "KBPS")]
    pub bitrate_kbps: u32,
}

/// The flags' own defaults, for callers that build the settings in code.
impl Default for AudioArgs {
    fn default() -> Self {
        Self {
            frame_ms: 10.0,
            bitrate_kbps: 128,
        }
    }
}

impl AudioArgs {
    /// The settings, checked.
    pub fn settings(&self) -> Result<AudioSettings, Error> {
        AudioSettings::new(self.frame_ms, self.bitrate_kbps)
    }
}

/// `--audio-frame-ms` and `--audio-bitrate`, checked.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AudioSettings {
    /// Opus frame length: 2500, 5000, 10000 or 20000 µs.
    pub frame_us: u64,
    pub bitrate_kbps: u32,
}

impl AudioSettings {
    pub fn new(frame_ms: f64, bitrate_kbps: u32) -> Result<Self, Error> {
        let frame_us = (frame_ms * 1000.0).round() as u64;
        if ![2_500, 5_000, 10_000, 20_000].contains(&frame_us) {
            return Err(Error::Config(format!(
                "--audio-frame-ms {frame_ms}: Opus frames are 2.5, 5, 10 or 20 ms"
            )));
        }
        if !(6..=510).contains(&bitrate_kbps) {
            return Err(Error::Config(format!(
                "--audio-bitrate {bitrate_kbps}: Opus takes 6 to 510 kbit/s"
            )));
        }
        Ok(Self {
            frame_us,
            bitrate_kbps,
        })
    }

    /// Samples per channel in one frame.
    pub fn samples(&self) -> usize {
        frame_samples(self.frame_us)
    }
}

/// A producer of raw 48 kHz stereo sound. `next` blocks until a whole frame is there.
pub trait AudioSource: Send {
    /// Fill `frame` (interleaved, [`CHANNELS`] × samples) with the next frame and return the
    /// capture time of its first sample (UNIX µs); `None` when the source has ended.
    fn next(&mut self, frame: &mut [f32]) -> Result<Option<u64>, Error>;

    /// Samples (per channel) the source lost and replaced with silence so far.
    fn lost_samples(&self) -> u64 {
        0
    }

    /// Samples (per channel) dropped because the encoding thread fell a second behind.
    fn overflowed_samples(&self) -> u64 {
        0
    }
}

impl AudioSpec {
    /// Open the source. `epoch` is when the test sources' beep-and-flash schedule starts
    /// (shared with the cube); `cancel` ends a capture's waits. `Ok(None)`: no audio.
    pub fn open(
        &self,
        settings: AudioSettings,
        epoch: crate::source::SyncEpoch,
        timeout: std::time::Duration,
        cancel: CancellationToken,
    ) -> Result<Option<Box<dyn AudioSource>>, Error> {
        let capture = |target: Option<&str>, cancel| {
            pipewire::Capture::open(None, target, settings, timeout, cancel)
        };
        Ok(match self {
            Self::None => None,
            Self::TestSrc => Some(Box::new(Tone::new(epoch))),
            Self::PipeWire(target) => Some(Box::new(capture(target.as_deref(), cancel)?)),
            Self::Auto => match capture(None, cancel) {
                Ok(capture) => Some(Box::new(capture)),
                Err(err) => {
                    let err = &err as &dyn std::error::Error;
                    tracing::warn!(
                        err,
                        "no audio source found: streaming video only (--audio none to silence this)"
                    );
                    None
                }
            },
        })
    }
}

/// Capture, encode and publish until the source ends or `cancel` fires. Blocks.
pub(crate) fn run(
    mut source: Box<dyn AudioSource>,
    mut encoder: OpusEncoder,
    mut track: Outlet<AudioTrack>,
    cancel: CancellationToken,
) -> Result<AudioSummary, Error> {
    let settings = encoder.settings();
    let mut frame = vec![0f32; settings.samples() * CHANNELS];
    let mut summary = AudioSummary::default();
    let result = (|| {
        while !cancel.is_cancelled() {
            let Some(pts_us) = source.next(&mut frame)? else {
                break;
            };
            let packet = encoder.encode(&frame)?;
            summary.bytes += packet.len() as u64;
            track.write(packet, pts_us, |track, pts_us| {
                track.write(packet, pts_us, settings.frame_us)
            })?;
            summary.frames += 1;
        }
        Ok(())
    })();
    let seconds = summary.frames as f64 * settings.frame_us as f64 / 1e6;
    summary.kbps = (seconds > 0.0).then(|| (summary.bytes as f64 * 8.0 / seconds / 1000.0).round());
    let ms = |samples: u64| (samples as f64 * 1000.0 / lantern_proto::audio::RATE as f64).round();
    summary.lost_ms = ms(source.lost_samples());
    summary.overflow_ms = ms(source.overflowed_samples());
    let finished = track.finish(AudioTrack::finish);
    result.and(finished).map(|()| summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_specs_parse() {
        assert_eq!("testsrc".parse(), Ok(AudioSpec::TestSrc));
        assert_eq!("none".parse(), Ok(AudioSpec::None));
        assert_eq!("pipewire".parse(), Ok(AudioSpec::PipeWire(None)));
        assert_eq!(
            "pipewire:game.monitor".parse(),
            Ok(AudioSpec::PipeWire(Some("game.monitor".into())))
        );
        for bad in ["", "pipewire:", "alsa", "testsrc:1"] {
            assert!(bad.parse::<AudioSpec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn frame_lengths_are_opus_frames() {
        assert_eq!(AudioSettings::new(2.5, 128).unwrap().samples(), 120);
        assert_eq!(AudioSettings::new(10.0, 128).unwrap().samples(), 480);
        assert!(AudioSettings::new(7.0, 128).is_err());
        assert!(AudioSettings::new(10.0, 1000).is_err());
    }
}
