//! The session's sound, captured by a process of the session's own account, so that root is
//! never a client of the session's PipeWire (whose messages libpipewire, in C, would parse in
//! the daemon as root, with everything the daemon holds).
//!
//! `host-daemon sound-capture` (hidden; the session starts it as its user, in its group)
//! opens the session sink's monitor, says [`READY`] once it is open, then writes every frame
//! to its stdout: [`HEADER`] bytes (the frame's capture time, and the samples lost and
//! overflowed so far, as little-endian u64) and the frame's interleaved f32 samples. The
//! daemon reads them through [`PipedSound`] as any input from the session: frames of a fixed
//! size, samples that are no numbers silenced and the rest clamped to full scale, capture
//! times far from the daemon's clock replaced by it, counts that never go back, and a helper
//! that sends nothing for [`SILENT`] taken as failed.

use std::io::Write;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use moq_pub::audio::{AudioSettings, AudioSource, CHANNELS};

/// Said once the capture is open.
pub const READY: u8 = 0x4c;
/// Before every frame's samples: capture time (UNIX µs), samples lost, samples overflowed.
pub const HEADER: usize = 24;
/// A helper that sends no frame for this long has stopped (it sends silence itself while the
/// session's PipeWire has none).
pub const SILENT: Duration = Duration::from_secs(5);
/// The furthest a frame's capture time may be from the daemon's clock before the daemon's
/// clock is taken instead.
const CLOCK_SLACK_US: u64 = 10_000_000;

/// The helper: capture `target` of the PipeWire at `remote` (retried until `timeout` while
/// it is not up yet) and write its frames to stdout until stdout closes or capture fails.
pub fn serve(
    remote: &std::path::Path,
    target: &str,
    settings: AudioSettings,
    timeout: Duration,
) -> Result<(), crate::Error> {
    let never = tokio_util::sync::CancellationToken::new();
    let mut capture = crate::session::retry("the session's sound", timeout, &never, |left| {
        moq_pub::audio::pipewire::Capture::open(
            Some(remote),
            Some(target),
            settings,
            left,
            never.clone(),
        )
    })?;
    // Stdout as a file: unbuffered, so that no frame waits for a line's end.
    let stdout = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| crate::Error::io("stdout", e))?;
    let mut out = std::fs::File::from(stdout);
    let wrote = |e| crate::Error::io("writing the sound to the daemon", e);
    out.write_all(&[READY]).map_err(wrote)?;
    let mut frame = vec![0f32; settings.samples() * CHANNELS];
    let mut bytes = Vec::with_capacity(HEADER + frame.len() * 4);
    while let Some(captured_us) = capture.next(&mut frame)? {
        bytes.clear();
        for figure in [
            captured_us,
            capture.lost_samples(),
            capture.overflowed_samples(),
        ] {
            bytes.extend_from_slice(&figure.to_le_bytes());
        }
        for sample in &frame {
            bytes.extend_from_slice(&sample.to_le_bytes());
        }
        out.write_all(&bytes).map_err(wrote)?;
    }
    Ok(())
}

/// The helper's frames, read in the daemon.
pub struct PipedSound {
    pipe: std::io::PipeReader,
    bytes: Vec<u8>,
    lost: u64,
    overflowed: u64,
}

impl PipedSound {
    /// Wait (up to `timeout`) for the helper on the other end of `pipe` to say its capture is
    /// open; an error if it ends or says something else first.
    pub fn open(
        mut pipe: std::io::PipeReader,
        settings: AudioSettings,
        timeout: Duration,
    ) -> Result<Self, crate::Error> {
        let mut ready = [0u8];
        crate::process::read_by(&mut pipe, &mut ready, Instant::now() + timeout).map_err(|e| {
            crate::Error::Sound(format!("the session's sound capture did not start: {e}"))
        })?;
        if ready[0] != READY {
            return Err(crate::Error::Sound(
                "the session's sound capture said something else than that it is ready".into(),
            ));
        }
        Ok(Self {
            pipe,
            bytes: vec![0; HEADER + settings.samples() * CHANNELS * 4],
            lost: 0,
            overflowed: 0,
        })
    }
}

impl AudioSource for PipedSound {
    fn next(&mut self, frame: &mut [f32]) -> Result<Option<u64>, moq_pub::Error> {
        let wanted = HEADER + frame.len() * 4;
        if self.bytes.len() != wanted {
            return Err(moq_pub::Error::Audio(format!(
                "a frame of {} samples from a capture of {}",
                frame.len(),
                (self.bytes.len() - HEADER) / 4
            )));
        }
        match crate::process::read_by(&mut self.pipe, &mut self.bytes, Instant::now() + SILENT) {
            Ok(()) => {}
            // The helper ended: at the session's end, it is stopped with it.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => {
                return Err(moq_pub::Error::Audio(format!(
                    "the session's sound capture: {e}"
                )));
            }
        }
        let figure =
            |at: usize| u64::from_le_bytes(self.bytes[at..at + 8].try_into().unwrap_or_default());
        let (captured_us, lost, overflowed) = (figure(0), figure(8), figure(16));
        self.lost = self.lost.max(lost);
        self.overflowed = self.overflowed.max(overflowed);
        for (sample, bytes) in frame.iter_mut().zip(self.bytes[HEADER..].chunks_exact(4)) {
            let value = f32::from_le_bytes(bytes.try_into().unwrap_or_default());
            *sample = if value.is_finite() {
                value.clamp(-1.0, 1.0)
            } else {
                0.0
            };
        }
        let now = lantern_proto::clock::now_unix_us();
        Ok(Some(match captured_us.abs_diff(now) <= CLOCK_SLACK_US {
            true => captured_us,
            false => now,
        }))
    }

    fn lost_samples(&self) -> u64 {
        self.lost
    }

    fn overflowed_samples(&self) -> u64 {
        self.overflowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> AudioSettings {
        AudioSettings::new(10.0, 64).unwrap()
    }

    fn frame_bytes(captured_us: u64, lost: u64, samples: &[f32]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for figure in [captured_us, lost, 0] {
            bytes.extend_from_slice(&figure.to_le_bytes());
        }
        for sample in samples {
            bytes.extend_from_slice(&sample.to_le_bytes());
        }
        bytes
    }

    /// What the helper sends is read as input from the session: samples that are no numbers
    /// silenced, the rest clamped, a capture time far off replaced, counts that never go back,
    /// and its end the sound's end.
    #[test]
    fn the_helpers_frames_are_read_as_untrusted_input() {
        let settings = settings();
        let n = settings.samples() * CHANNELS;
        let (reader, mut writer) = std::io::pipe().unwrap();
        writer.write_all(&[READY]).unwrap();
        let mut sound = PipedSound::open(reader, settings, Duration::from_secs(5)).unwrap();
        let now = lantern_proto::clock::now_unix_us();
        let mut samples = vec![0.25f32; n];
        samples[0] = f32::NAN;
        samples[1] = f32::INFINITY;
        samples[2] = -7.0;
        writer.write_all(&frame_bytes(now, 30, &samples)).unwrap();
        writer
            .write_all(&frame_bytes(u64::MAX, 10, &samples))
            .unwrap();
        let mut frame = vec![0f32; n];
        assert_eq!(sound.next(&mut frame).unwrap(), Some(now));
        assert_eq!(&frame[..4], &[0.0, 0.0, -1.0, 0.25]);
        assert_eq!(sound.lost_samples(), 30);
        let far = sound.next(&mut frame).unwrap().unwrap();
        assert!(far.abs_diff(now) < CLOCK_SLACK_US, "{far}");
        assert_eq!(sound.lost_samples(), 30, "a count never goes back");
        // Half a frame, then the helper ends: the sound ends.
        writer
            .write_all(&frame_bytes(now, 0, &samples)[..HEADER + 8])
            .unwrap();
        drop(writer);
        assert_eq!(sound.next(&mut frame).unwrap(), None);
    }

    /// A helper that dies before it is ready, or answers anything else, is a clear error.
    #[test]
    fn a_helper_that_never_says_ready_is_an_error() {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(writer);
        let err = PipedSound::open(reader, settings(), Duration::from_secs(5)).err();
        assert!(err.is_some_and(|e| e.to_string().contains("did not start")));
        let (reader, mut writer) = std::io::pipe().unwrap();
        writer.write_all(b"x").unwrap();
        assert!(PipedSound::open(reader, settings(), Duration::from_secs(5)).is_err());
        let (reader, _writer) = std::io::pipe().unwrap();
        let err = PipedSound::open(reader, settings(), Duration::from_millis(50)).err();
        assert!(
            err.is_some_and(|e| e.to_string().contains("timed out")),
            "a silent helper"
        );
    }
}
