//! Playing the audio track: Opus decoding, gaps filled with silence (and counted, so nothing
//! is lost silently), output to a WAV file, raw PCM on stdout, a PipeWire sink, SDL's audio or
//! nowhere, and the beep onsets that the A/V sync meter pairs with the video's flashes.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use lantern_proto::audio::{RATE, Wav, to_pcm16};
use lantern_proto::timing::{LipSync, PlayoutGaps, samples_us};
use lantern_proto::{clock, sync};
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::playback::Playback;
use crate::sdl_audio::SdlAudio;
use crate::stats::AudioStats;
use crate::subscribe::{Audio, Resubscribe};

/// Where decoded sound goes.
pub enum AudioOut {
    None,
    /// A WAV file (16-bit PCM; its header gets the real sizes at the end).
    Wav(Wav<BufWriter<File>>),
    /// Raw interleaved 16-bit little-endian PCM at 48 kHz on stdout.
    Raw(BufWriter<std::io::Stdout>),
    /// A PipeWire sink.
    PipeWire(Playback, usize),
    /// SDL's default output.
    Sdl(SdlAudio),
}

impl AudioOut {
    /// `--audio-out`: `None` discards (stats only), `-` is raw PCM on stdout,
    /// `pipewire[:TARGET]` plays into PipeWire, `sdl` through SDL's audio, `auto` into
    /// PipeWire when its daemon answers, else through SDL (else nowhere, with a warning); a
    /// path is WAV.
    pub fn open(spec: Option<&str>, channels: u16) -> Result<Self, Error> {
        Ok(match spec {
            None => Self::None,
            Some("-") => Self::Raw(BufWriter::new(std::io::stdout())),
            Some("sdl") => Self::Sdl(SdlAudio::open(channels)?),
            Some("auto") => match Playback::open(None) {
                Ok(playback) => Self::PipeWire(playback, channels as usize),
                Err(pipewire) => {
                    let pipewire = &pipewire as &dyn std::error::Error;
                    tracing::info!(pipewire, "no PipeWire: trying SDL's audio");
                    match SdlAudio::open(channels) {
                        Ok(sdl) => Self::Sdl(sdl),
                        Err(sdl) => {
                            let sdl = &sdl as &dyn std::error::Error;
                            tracing::warn!(
                                pipewire,
                                sdl,
                                "no sound output: the sound is not played"
                            );
                            Self::None
                        }
                    }
                }
            },
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
                let file = File::create(path).map_err(|e| Error::output(path, e))?;
                Self::Wav(
                    Wav::new(BufWriter::new(file), channels).map_err(|e| Error::output(path, e))?,
                )
            }
        })
    }

    /// Output interleaved samples; returns how long until the first of them is heard (µs:
    /// what is queued ahead of them in a sink, nothing for files and pipes).
    fn write(&mut self, samples: &[f32]) -> Result<u64, Error> {
        match self {
            Self::None => Ok(0),
            Self::Wav(wav) => wav
                .write(samples)
                .and_then(|()| wav.flush())
                .map(|()| 0)
                .map_err(|e| Error::output("audio", e)),
            Self::Raw(out) => out
                .write_all(&to_pcm16(samples))
                .and_then(|()| out.flush())
                .map(|()| 0)
                .map_err(|e| Error::output("audio", e)),
            Self::PipeWire(playback, channels) => Ok(playback.write(samples, *channels)),
            Self::Sdl(sdl) => Ok(sdl.write(samples)),
        }
    }

    /// Samples (per channel) the output can take now without shedding: files take any.
    fn room(&self) -> u64 {
        match self {
            Self::PipeWire(playback, _) => playback.room() as u64,
            Self::Sdl(sdl) => sdl.room() as u64,
            _ => u64::MAX,
        }
    }

    /// Underruns and shed samples of a sink.
    fn faults(&self) -> Option<(u64, u64)> {
        match self {
            Self::PipeWire(playback, _) => Some(playback.faults()),
            Self::Sdl(sdl) => Some(sdl.faults()),
            _ => None,
        }
    }

    fn finish(self) -> Result<(), Error> {
        match self {
            Self::Wav(wav) => wav
                .finish()
                .map(drop)
                .map_err(|e| Error::output("audio", e)),
            _ => Ok(()),
        }
    }
}

/// The longest a picture is held back for its sound; beyond it, the sound path is broken and
/// the picture goes out late rather than never.
const MAX_LIP_SYNC_HOLD_US: u64 = 250_000;

/// Lip sync between the two players: the audio player says when each packet's sound is
/// heard, the video player asks how long a picture waits to be shown with it (see
/// [`LipSync`]).
#[derive(Clone)]
pub(crate) struct SharedLipSync(Arc<Mutex<LipSync>>);

impl Default for SharedLipSync {
    fn default() -> Self {
        Self(Arc::new(Mutex::new(LipSync::new(MAX_LIP_SYNC_HOLD_US))))
    }
}

impl SharedLipSync {
    fn lock(&self) -> std::sync::MutexGuard<'_, LipSync> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sound captured at `captured_unix_us`, handed over at `written_unix_us`, is heard
    /// `ahead_us` later.
    fn sound(&self, captured_unix_us: u64, written_unix_us: u64, ahead_us: u64) {
        self.lock()
            .sound(captured_unix_us, written_unix_us, ahead_us);
    }

    /// How long a picture captured at `captured_unix_us` waits at `now_unix_us`.
    pub(crate) fn hold_us(&self, captured_unix_us: u64, now_unix_us: u64) -> u64 {
        self.lock().hold_us(captured_unix_us, now_unix_us)
    }
}

/// How often the player looks up from a quiet track to see whether it should stop.
const POLL: Duration = Duration::from_millis(100);

/// Read, decode and output the audio track until it ends, `cancel` fires, or it stalls for
/// `timeout`; with `reopen`, a track that fails is waited for and played again (the output
/// stays open). Blocking: runs on its own thread beside the video player.
pub(crate) fn play(
    handle: tokio::runtime::Handle,
    mut audio: Audio,
    mut out: AudioOut,
    (stats, lip_sync): (Arc<Mutex<AudioStats>>, SharedLipSync),
    cancel: CancellationToken,
    timeout: Duration,
    reopen: Option<Resubscribe>,
) -> Result<(), Error> {
    let channels = match audio.channels {
        1 => opus::Channels::Mono,
        2 => opus::Channels::Stereo,
        n => return Err(Error::AudioChannels(n)),
    };
    if audio.sample_rate != RATE {
        tracing::info!(
            rate = audio.sample_rate,
            "Opus decodes at 48 kHz whatever the source rate"
        );
    }
    let mut decoder =
        opus::Decoder::new(RATE, channels).map_err(|e| Error::decoder("opus decoder", e))?;
    let stats = || stats.lock().unwrap_or_else(PoisonError::into_inner);
    let width = audio.channels as usize;
    // The longest Opus packet: 120 ms.
    let mut pcm = vec![0f32; RATE as usize * 120 / 1000 * width];
    let mut onsets = sync::OnsetDetector::new(RATE);
    let mut gaps = PlayoutGaps::default();
    let codec_delay_us = samples_us(audio.pre_skip as u64);
    let mut silence = Vec::new();
    let mut quiet = Duration::ZERO;
    while !cancel.is_cancelled() {
        let frame = match handle.block_on(tokio::time::timeout(POLL, audio.feed.read())) {
            Err(_) => {
                quiet += POLL;
                if quiet >= timeout {
                    tracing::warn!(?timeout, "no audio for a while: the audio track stalled");
                    break;
                }
                continue;
            }
            Ok(Err(e)) => {
                let Some(reopen) = &reopen else {
                    return Err(Error::decoder("audio track failed", e));
                };
                tracing::debug!(%e, "the audio track went away: waiting for it");
                let reopened = handle.block_on(async {
                    tokio::select! {
                        reopened = reopen.audio() => Some(reopened),
                        () = cancel.cancelled() => None,
                    }
                });
                match reopened.transpose()?.flatten() {
                    Some(back) if back.channels == audio.channels => {
                        audio = back;
                        // A new decoder for a new stream; the gap since is no gap to fill.
                        decoder = opus::Decoder::new(RATE, channels)
                            .map_err(|e| Error::decoder("opus decoder", e))?;
                        gaps = PlayoutGaps::default();
                        continue;
                    }
                    Some(back) => {
                        return Err(Error::AudioChanged {
                            before: audio.channels,
                            now: back.channels,
                        });
                    }
                    // Stopped, or the broadcast came back without sound.
                    None => break,
                }
            }
            Ok(Ok(None)) => break,
            Ok(Ok(Some(frame))) => frame,
        };
        quiet = Duration::ZERO;
        let samples = match decoder.decode_float(&frame.payload, &mut pcm, false) {
            Ok(samples) => samples,
            Err(e) => {
                stats().decode_error();
                tracing::warn!(%e, "undecodable Opus packet skipped");
                continue;
            }
        };
        // A packet later than the end of the last one: the gap is sound we never got.
        let pts_us = frame.pts_us;
        // Silence never takes the room this packet needs.
        let room = out.room().saturating_sub(samples as u64);
        if let Some(gap) = gaps.packet(pts_us, samples as u64, room) {
            tracing::debug!(
                pts_us,
                missing = gap.missing,
                "audio gap filled with silence"
            );
            stats().gap(gap.missing);
            silence.resize(gap.fill as usize * width, 0.0);
            out.write(&silence)?;
        }
        let decoded = &pcm[..samples * width];
        let ahead_us = out.write(decoded)?;
        let written = clock::now_unix_us();
        let mut stats = stats();
        stats.frame(frame.captured_us, written);
        if let Some(captured) = frame.captured_us {
            lip_sync.sound(captured, written, ahead_us + codec_delay_us);
        }
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
