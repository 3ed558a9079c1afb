//! `--audio-out pipewire[:TARGET]`: play decoded sound into a PipeWire sink (the default one,
//! or a node by name or serial) through a short lock-free ring that PipeWire's real-time
//! callback drains each quantum. Neither side locks or allocates; what they share besides
//! the ring is atomics.
//!
//! Underruns (PipeWire asked and the ring was dry) are counted. Sound past [`MAX_QUEUE_US`]
//! (the sender's clock running ahead of the sink's) is shed, oldest first, and counted, so
//! latency cannot creep up; so is sound that does not fit the ring at all.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use lantern_media::pipewire::{CHANNELS, Stopper, connect, fill_output, run_stream, ticks_to};
use lantern_media::ring::{self, Reader, Writer};
use lantern_proto::audio::RATE;
use lantern_proto::timing::samples_us;
use pipewire as pw;
use pw::{properties::properties, spa};

use crate::Error;

/// The most sound the sink's queue holds before the oldest is shed.
pub(crate) const MAX_QUEUE_US: u64 = 100_000;
const MAX_QUEUE: usize = (MAX_QUEUE_US * RATE as u64 / 1_000_000) as usize * CHANNELS;
/// How long the sink may take to accept the stream.
const START_TIMEOUT: Duration = Duration::from_secs(5);

/// What the callback and the writer share, all atomics.
#[derive(Default)]
struct Shared {
    /// Set once the first sound arrived: silence before it is not an underrun.
    started: AtomicBool,
    underruns: AtomicU64,
    shed_samples: AtomicU64,
    /// What PipeWire reports between the stream and the device (filters, the device's own
    /// buffer), in µs: sound leaves the ring this long before it is heard.
    device_delay_us: AtomicU64,
}

pub struct Playback {
    ring: Writer<f32>,
    shared: Arc<Shared>,
    stopper: Stopper,
}

impl Playback {
    pub fn open(target: Option<&str>) -> Result<Self, Error> {
        let what = match target {
            Some(target) => format!("PipeWire target {target:?}"),
            None => "PipeWire's default sink".to_string(),
        };
        let (writer, reader) = ring::ring(2 * MAX_QUEUE)?;
        let shared = Arc::new(Shared::default());
        let (ready, started) = mpsc::sync_channel(4);
        let (stopper, stopped) = Stopper::new();
        let (target, state) = (target.map(str::to_string), shared.clone());
        std::thread::Builder::new()
            .name("pipewire-playback".into())
            .spawn(move || {
                if let Err(e) = run(target, reader, state, ready.clone(), stopped) {
                    let _ = ready.send(Err(e));
                }
            })
            .map_err(|source| Error::Spawn {
                what: "pipewire-playback",
                source,
            })?;
        match started.recv_timeout(START_TIMEOUT) {
            Ok(Ok(())) => {}
            Ok(Err(source)) => return Err(Error::output(what, source)),
            Err(_) => {
                return Err(Error::Output {
                    what: format!("{what}: not playing within {START_TIMEOUT:?} (no such sink?)"),
                    source: None,
                });
            }
        }
        tracing::info!(sink = what, "playing audio");
        Ok(Self {
            ring: writer,
            shared,
            stopper,
        })
    }

    /// Queue interleaved samples of `channels` (1 or 2); returns how long until the first of
    /// them is heard (µs from now): the sound queued ahead, plus the device's delay.
    pub fn write(&mut self, samples: &[f32], channels: usize) -> u64 {
        let ahead = samples_us((self.ring.queued() / CHANNELS) as u64)
            + self.shared.device_delay_us.load(Ordering::Relaxed);
        let frames = samples.len() / channels;
        let fits = frames.min(self.room());
        let stereo = samples
            .chunks_exact(channels)
            .take(fits)
            .flat_map(|frame| [frame[0], frame[channels - 1]]);
        self.ring.push(fits * CHANNELS, stereo);
        if fits < frames {
            let shed = (frames - fits) as u64;
            self.shared.shed_samples.fetch_add(shed, Ordering::Relaxed);
        }
        self.shared.started.store(true, Ordering::Relaxed);
        ahead
    }

    /// Samples (per channel) the ring can take now: the most silence a gap may add.
    pub fn room(&self) -> usize {
        self.ring.free() / CHANNELS
    }

    /// Underruns so far, and samples (per channel) shed.
    pub fn faults(&self) -> (u64, u64) {
        (
            self.shared.underruns.load(Ordering::Relaxed),
            self.shared.shed_samples.load(Ordering::Relaxed),
        )
    }
}

impl Drop for Playback {
    fn drop(&mut self) {
        self.stopper.stop();
    }
}

fn run(
    target: Option<String>,
    mut ring: Reader<f32>,
    shared: Arc<Shared>,
    ready: mpsc::SyncSender<Result<(), lantern_media::Error>>,
    stopped: pw::channel::Receiver<()>,
) -> Result<(), lantern_media::Error> {
    let connection = connect()?;
    let mut props = properties! {
        *pw::keys::MEDIA_TYPE => "Audio",
        *pw::keys::MEDIA_CATEGORY => "Playback",
        *pw::keys::MEDIA_ROLE => "Game",
        *pw::keys::NODE_NAME => "lantern-playback",
        *pw::keys::NODE_LATENCY => format!("{}/{RATE}", RATE / 100),
    };
    if let Some(target) = &target {
        props.insert(*pw::keys::TARGET_OBJECT, target.as_str());
    }
    let stream = pw::stream::StreamBox::new(&connection.core, "lantern-playback", props).map_err(
        |source| lantern_media::Error::PipeWire {
            what: "playback stream",
            source,
        },
    )?;
    let _listener = stream
        .add_local_listener_with_user_data(())
        .state_changed(move |_, _, _, state| match state {
            pw::stream::StreamState::Streaming => {
                let _ = ready.try_send(Ok(()));
            }
            pw::stream::StreamState::Error(why) => {
                let _ = ready.try_send(Err(lantern_media::Error::StreamFailed(why)));
            }
            _ => {}
        })
        // Real time: no lock, no allocation, no blocking below.
        .process(move |stream, _| {
            let delay_us = stream.time().ok().map_or(0, |time| {
                let ticks = u64::try_from(time.delay()).unwrap_or(0);
                ticks_to(ticks, time.rate(), 1_000_000).unwrap_or(0)
            });
            shared.device_delay_us.store(delay_us, Ordering::Relaxed);
            fill_output(stream, |bytes| {
                // The sender's clock ran ahead: drop the oldest rather than play it late.
                let excess = ring.len().saturating_sub(MAX_QUEUE);
                if excess > 0 {
                    let shed = ring.discard(excess) / CHANNELS;
                    shared
                        .shed_samples
                        .fetch_add(shed as u64, Ordering::Relaxed);
                }
                if shared.started.load(Ordering::Relaxed) && ring.len() < bytes.len() / 4 {
                    shared.underruns.fetch_add(1, Ordering::Relaxed);
                }
                let mut scratch = [0f32; 256];
                for out in bytes.chunks_mut(scratch.len() * 4) {
                    let want = out.len() / 4;
                    let got = ring.pop_into(&mut scratch[..want]);
                    scratch[got..want].fill(0.0);
                    for (dst, value) in out.chunks_exact_mut(4).zip(&scratch[..want]) {
                        dst.copy_from_slice(&value.to_le_bytes());
                    }
                }
            });
        })
        .register()
        .map_err(|source| lantern_media::Error::PipeWire {
            what: "playback listener",
            source,
        })?;
    run_stream(&connection, &stream, spa::utils::Direction::Output, stopped)
}
