//! Playing the audio track: Opus decoding, gaps filled with silence (and counted, so nothing
//! is lost silently), output to a WAV file, raw PCM on stdout, a PipeWire sink or nowhere, and
//! the beep onsets that the A/V sync meter pairs with the video's flashes.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lantern_proto::audio::{RATE, Wav, to_pcm16};
use lantern_proto::{clock, sync};

use crate::Error;
use crate::playback::Playback;
use crate::stats::AudioStats;
use crate::subscribe::Audio;

/// Where decoded sound goes.
pub enum AudioOut {
    None,
    /// A WAV file (16-bit PCM; its header gets the real sizes at the end).
    Wav(Wav<BufWriter<File>>),
    /// Raw interleaved 16-bit little-endian PCM at 48 kHz on stdout.
    Raw(BufWriter<std::io::Stdout>),
    /// A PipeWire sink.
    PipeWire(Playback, usize),
}

impl AudioOut {
    /// `--audio-out`: `None` discards (stats only), `-` is raw PCM on stdout,
    /// `pipewire[:TARGET]` plays into PipeWire, a path is WAV.
    pub fn open(spec: Option<&str>, channels: u16) -> Result<Self, Error> {
        Ok(match spec {
            None => Self::None,
            Some("-") => Self::Raw(BufWriter::new(std::io::stdout())),
            Some("pipewire") => Self::PipeWire(Playback::open(None)?, channels as usize),
            Some(spec) if spec.starts_with("pipewire:") => {
                let target = spec["pipewire:".len()..].trim();
                if target.is_empty() {
                    return Err(Error::Config(
                        "--audio-out pipewire:TARGET needs a sink name or serial".into(),
                    ));
                }
                Self::PipeWire(Playback::open(Some(target))?, channels as usize)
            }
            Some(path) => {
                let err = |e: &dyn std::fmt::Display| Error::Output(format!("{path}: {e}"));
                let file = File::create(path).map_err(|e| err(&e))?;
                Self::Wav(Wav::new(BufWriter::new(file), channels).map_err(|e| err(&e))?)
            }
        })
    }

    /// Output interleaved samples; returns how long until the first of them is heard (µs:
    /// what is queued ahead of them in a sink, nothing for files and pipes).
    fn write(&mut self, samples: &[f32]) -> Result<u64, Error> {
        let err = |e: &dyn std::fmt::Display| Error::Output(format!("audio: {e}"));
        match self {
            Self::None => Ok(0),
            Self::Wav(wav) => wav
                .write(samples)
                .and_then(|()| wav.flush())
                .map(|()| 0)
                .map_err(|e| err(&e)),
            Self::Raw(out) => out
                .write_all(&to_pcm16(samples))
                .and_then(|()| out.flush())
                .map(|()| 0)
                .map_err(|e| err(&e)),
            Self::PipeWire(playback, channels) => Ok(playback.write(samples, *channels)),
        }
    }

    /// Underruns and shed samples of a sink.
    fn faults(&self) -> Option<(u64, u64)> {
        match self {
            Self::PipeWire(playback, _) => Some(playback.faults()),
            _ => None,
        }
    }

    fn finish(self) -> Result<(), Error> {
        match self {
            Self::Wav(wav) => wav
                .finish()
                .map(drop)
                .map_err(|e| Error::Output(format!("audio: {e}"))),
            _ => Ok(()),
        }
    }
}

/// How often the player looks up from a quiet track to see whether it should stop.
const POLL: Duration = Duration::from_millis(100);

/// Read, decode and output the audio track until it ends, `stop` is set, or it stalls for
/// `timeout`. Blocking: runs on its own thread beside the video player.
pub fn play(
    handle: tokio::runtime::Handle,
    mut audio: Audio,
    mut out: AudioOut,
    stats: Arc<Mutex<AudioStats>>,
    stop: Arc<AtomicBool>,
    timeout: Duration,
) -> Result<(), Error> {
    let channels = match audio.channels {
        1 => opus::Channels::Mono,
        2 => opus::Channels::Stereo,
        n => {
            return Err(Error::Decoder(format!(
                "Opus with {n} channels is not supported (1 or 2)"
            )));
        }
    };
    if audio.sample_rate != RATE {
        tracing::info!(
            rate = audio.sample_rate,
            "Opus decodes at 48 kHz whatever the source rate"
        );
    }
    let mut decoder = opus::Decoder::new(RATE, channels)
        .map_err(|e| Error::Decoder(format!("opus decoder: {e}")))?;
    let width = audio.channels as usize;
    // The longest Opus packet: 120 ms.
    let mut pcm = vec![0f32; RATE as usize * 120 / 1000 * width];
    let mut onsets = sync::OnsetDetector::new(RATE);
    let mut next_pts_us: Option<u64> = None;
    let codec_delay_us = audio.pre_skip as u64 * 1_000_000 / RATE as u64;
    let mut quiet = Duration::ZERO;
    while !stop.load(Ordering::Relaxed) {
        let frame = match handle.block_on(tokio::time::timeout(POLL, audio.consumer.read())) {
            Err(_) => {
                quiet += POLL;
                if quiet >= timeout {
                    tracing::warn!(?timeout, "no audio for a while: the audio track stalled");
                    break;
                }
                continue;
            }
            Ok(Err(e)) => return Err(Error::Decoder(format!("audio track failed: {e}"))),
            Ok(Ok(None)) => break,
            Ok(Ok(Some(frame))) => frame,
        };
        quiet = Duration::ZERO;
        let pts_us = frame.timestamp.as_micros() as u64;
        // A packet later than the end of the last one: the gap is silence we never got.
        if let Some(expected) = next_pts_us
            && pts_us > expected + 1_000
        {
            let missing = (pts_us - expected) * RATE as u64 / 1_000_000;
            tracing::debug!(pts_us, missing, "audio gap filled with silence");
            stats.lock().expect("stats lock").gap(missing);
            // Up to a second of silence keeps the timeline; a longer break (a paused
            // publisher) is only counted, not written out.
            let fill = missing.min(RATE as u64) as usize;
            out.write(&vec![0.0; fill * width])?;
        }
        let samples = match decoder.decode_float(&frame.payload, &mut pcm, false) {
            Ok(samples) => samples,
            Err(e) => {
                stats.lock().expect("stats lock").decode_error();
                tracing::warn!(%e, "undecodable Opus packet skipped");
                continue;
            }
        };
        next_pts_us = Some(pts_us + samples as u64 * 1_000_000 / RATE as u64);
        let decoded = &pcm[..samples * width];
        let ahead_us = out.write(decoded)?;
        let written = clock::now_unix_us();
        let mut stats = stats.lock().expect("stats lock");
        stats.frame(
            audio.wall_clock(frame.timestamp),
            written,
            ahead_us + codec_delay_us,
        );
        if let Some((underruns, shed)) = out.faults() {
            stats.sink(underruns, shed);
        }
        for (j, sample) in decoded.chunks_exact(width).map(|s| s[0]).enumerate() {
            if onsets.push(sample) {
                // Sample j is heard j samples after the first one of this packet, which is
                // heard once what is queued ahead of it has played.
                stats.beep(written + ahead_us + j as u64 * 1_000_000 / RATE as u64);
            }
        }
    }
    out.finish()
}
