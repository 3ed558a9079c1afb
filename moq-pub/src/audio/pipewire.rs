//! `--audio pipewire[:TARGET]`: capture a PipeWire node, or a sink's monitor (by default the
//! default sink's, i.e. what the game plays), as 48 kHz stereo f32 in small quanta.
//!
//! The stream lives on a PipeWire loop thread of its own. Its real-time process callback
//! neither locks nor allocates: it copies each quantum into a lock-free ring, notes the
//! quantum's capture time and server position in a second ring, and wakes the encoding
//! thread, which turns quanta into frames on [`CaptureTimeline`]'s timestamps.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use lantern_media::pipewire::{CHANNELS, Stopper, connect_to, run_stream, ticks_to};
use lantern_media::ring::{self, Reader, Writer};
use lantern_proto::timing::{CaptureTimeline, samples_us};
use lantern_proto::{audio::RATE, clock};
use pipewire as pw;
use pw::{properties::properties, spa};
use tokio_util::sync::CancellationToken;

use super::{AudioSettings, AudioSource};
use crate::Error;

/// A quantum's bookkeeping, beside its samples in the sample ring.
#[derive(Clone, Copy, Default)]
struct Quantum {
    frames: u32,
    first_us: u64,
    position: Option<u64>,
}

/// A second of sound: the encoding thread would have to stall that long to overflow it.
const RING_SAMPLES: usize = RATE as usize * CHANNELS;
const RING_QUANTA: usize = 512;

pub struct Capture {
    samples: Reader<f32>,
    quanta: Reader<Quantum>,
    stopper: Stopper,
    /// Samples (per channel) the callback dropped because the ring was full.
    overflowed: Arc<AtomicU64>,
    failed: mpsc::Receiver<lantern_media::Error>,
    timeline: CaptureTimeline,
    /// Received samples not yet handed out (silence for lost quanta included).
    pending: Vec<f32>,
    what: String,
    timeout: Duration,
    cancel: CancellationToken,
}

impl Capture {
    /// Connect to PipeWire (the daemon on `remote`, a socket path, or the default one) and
    /// wait (up to `timeout`) for the first sound, so a missing daemon or an unknown target
    /// is an error now rather than silence later.
    pub fn open(
        remote: Option<&std::path::Path>,
        target: Option<&str>,
        settings: AudioSettings,
        timeout: Duration,
        cancel: CancellationToken,
    ) -> Result<Self, Error> {
        let what = match target {
            Some(target) => format!("PipeWire target {target:?}"),
            None => "PipeWire's default sink monitor".to_string(),
        };
        let (sample_writer, samples) = ring::ring(RING_SAMPLES)?;
        let (quantum_writer, quanta) = ring::ring(RING_QUANTA)?;
        let overflowed = Arc::new(AtomicU64::new(0));
        let (fail, failed) = mpsc::sync_channel(4);
        let (stopper, stopped) = Stopper::new();
        let (remote, target, frames, counter) = (
            remote.map(std::path::Path::to_path_buf),
            target.map(str::to_string),
            settings.samples(),
            overflowed.clone(),
        );
        std::thread::Builder::new()
            .name("pipewire-capture".into())
            .spawn(move || {
                let rings = (sample_writer, quantum_writer, counter);
                if let Err(e) = run(remote, target, frames, rings, fail.clone(), stopped) {
                    let _ = fail.send(e);
                }
            })
            .map_err(|source| Error::Spawn {
                what: "pipewire-capture",
                source,
            })?;
        let mut capture = Self {
            samples,
            quanta,
            stopper,
            overflowed,
            failed,
            timeline: CaptureTimeline::default(),
            pending: Vec::with_capacity(RING_SAMPLES),
            what,
            timeout,
            cancel,
        };
        if !capture.receive()? {
            return Err(Error::Audio(format!(
                "{}: stopped while starting",
                capture.what
            )));
        }
        tracing::info!(source = capture.what, "capturing audio");
        Ok(capture)
    }

    /// Wait for the next quantum and move it (after any silence for lost ones) into
    /// `pending`. `Ok(false)` on a stop.
    fn receive(&mut self) -> Result<bool, Error> {
        let deadline = Instant::now() + self.timeout;
        let quantum = loop {
            if let Ok(source) = self.failed.try_recv() {
                return Err(Error::AudioCapture {
                    what: self.what.clone(),
                    source,
                });
            }
            if self.cancel.is_cancelled() {
                return Ok(false);
            }
            if let Some(quantum) = self.quanta.pop() {
                break quantum;
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::Audio(format!(
                    "{}: no audio within {:?} (no such node, or nothing links it?)",
                    self.what, self.timeout
                )));
            }
            self.quanta
                .wait(deadline.min(now + Duration::from_millis(100)));
        };
        let frames = quantum.frames as u64;
        let silence = self
            .timeline
            .quantum(frames, quantum.first_us, quantum.position);
        if silence > 0 {
            tracing::debug!(silence, "PipeWire skipped samples: filled with silence");
        }
        let start = self.pending.len();
        self.pending
            .resize(start + (silence + frames) as usize * CHANNELS, 0.0);
        let got = self
            .samples
            .pop_into(&mut self.pending[start + silence as usize * CHANNELS..]);
        debug_assert_eq!(
            got,
            frames as usize * CHANNELS,
            "samples precede their quantum"
        );
        Ok(true)
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stopper.stop();
    }
}

impl AudioSource for Capture {
    fn next(&mut self, frame: &mut [f32]) -> Result<Option<u64>, Error> {
        while self.pending.len() < frame.len() {
            if !self.receive()? {
                return Ok(None);
            }
        }
        frame.copy_from_slice(&self.pending[..frame.len()]);
        self.pending.drain(..frame.len());
        Ok(Some(self.timeline.take((frame.len() / CHANNELS) as u64)))
    }

    fn lost_samples(&self) -> u64 {
        self.timeline.lost()
    }

    fn overflowed_samples(&self) -> u64 {
        self.overflowed.load(Ordering::Relaxed)
    }
}

/// The PipeWire thread: connect, capture until told to stop.
fn run(
    remote: Option<std::path::PathBuf>,
    target: Option<String>,
    frames: usize,
    (mut samples, mut quanta, overflowed): (Writer<f32>, Writer<Quantum>, Arc<AtomicU64>),
    fail: mpsc::SyncSender<lantern_media::Error>,
    stopped: pw::channel::Receiver<()>,
) -> Result<(), lantern_media::Error> {
    let connection = connect_to(remote.as_deref())?;
    let mut props = properties! {
        *pw::keys::MEDIA_TYPE => "Audio",
        *pw::keys::MEDIA_CATEGORY => "Capture",
        *pw::keys::MEDIA_ROLE => "Game",
        *pw::keys::NODE_NAME => "lantern-capture",
        *pw::keys::NODE_LATENCY => format!("{frames}/{RATE}"),
    };
    match &target {
        Some(target) => props.insert(*pw::keys::TARGET_OBJECT, target.as_str()),
        // No target: the default sink's monitor, which is what the host plays.
        None => props.insert(*pw::keys::STREAM_CAPTURE_SINK, "true"),
    }
    let stream = pw::stream::StreamBox::new(&connection.core, "lantern-capture", props).map_err(
        |source| lantern_media::Error::PipeWire {
            what: "capture stream",
            source,
        },
    )?;
    let _listener = stream
        .add_local_listener_with_user_data(())
        .state_changed(move |_, _, _, state| {
            if let pw::stream::StreamState::Error(why) = state {
                let _ = fail.try_send(lantern_media::Error::StreamFailed(why));
            }
        })
        // Real time: no lock, no allocation, no blocking below.
        .process(move |stream, _| {
            let Some(mut buffer) = stream.dequeue_buffer() else {
                return;
            };
            let Some(data) = buffer.datas_mut().first_mut() else {
                return;
            };
            let (offset, size) = (data.chunk().offset() as usize, data.chunk().size() as usize);
            let Some(bytes) = data.data().and_then(|d| d.get(offset..offset + size)) else {
                return;
            };
            let count = bytes.len() / (4 * CHANNELS);
            let bytes = &bytes[..count * 4 * CHANNELS];
            // The quantum ends now; its first sample was captured its length ago.
            let first_us = clock::now_unix_us().saturating_sub(samples_us(count as u64));
            let position = stream
                .time()
                .ok()
                .and_then(|time| ticks_to(time.ticks(), time.rate(), RATE as u64));
            let values = bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]));
            // A full ring means the encoder is stuck: drop (counted) rather than block.
            if quanta.free() == 0 || !samples.push(count * CHANNELS, values) {
                overflowed.fetch_add(count as u64, Ordering::Relaxed);
                return;
            }
            let quantum = Quantum {
                frames: count as u32,
                first_us,
                position,
            };
            quanta.push(1, [quantum]);
            quanta.wake();
        })
        .register()
        .map_err(|source| lantern_media::Error::PipeWire {
            what: "capture listener",
            source,
        })?;
    // Ask for exactly what Opus takes; PipeWire's adapter converts whatever the node has.
    run_stream(&connection, &stream, spa::utils::Direction::Input, stopped)
}
