//! `--audio-out pipewire[:TARGET]`: play decoded sound into a PipeWire sink (the default one,
//! or a node by name or serial), through a short queue that PipeWire drains each quantum.
//!
//! Underruns (PipeWire asked and the queue was dry) are counted; a queue that grows past
//! [`MAX_QUEUE_US`] (the sender's clock running ahead of the sink's) sheds its oldest samples,
//! also counted, so latency cannot creep up.

use std::collections::VecDeque;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use lantern_proto::audio::RATE;
use moq_pub::audio::pipewire::{connect, run_stream, ticks_to};
use pipewire as pw;
use pw::{properties::properties, spa};

use crate::Error;

/// The most sound the queue holds before it sheds the oldest.
const MAX_QUEUE_US: u64 = 100_000;
/// How long the sink may take to accept the stream.
const START_TIMEOUT: Duration = Duration::from_secs(5);
const CHANNELS: usize = 2;

#[derive(Default)]
struct Queue {
    samples: VecDeque<f32>,
    /// Set once the first sound arrived: silence before it is not an underrun.
    started: bool,
    underruns: u64,
    shed_samples: u64,
    /// What PipeWire reports between the stream and the device (filters, the device's own
    /// buffer), in µs: sound leaves our queue this long before it is heard.
    device_delay_us: u64,
}

pub struct Playback {
    queue: Arc<Mutex<Queue>>,
    stop: pw::channel::Sender<()>,
}

impl Playback {
    pub fn open(target: Option<&str>) -> Result<Self, Error> {
        let what = match target {
            Some(target) => format!("PipeWire target {target:?}"),
            None => "PipeWire's default sink".to_string(),
        };
        let queue = Arc::new(Mutex::new(Queue::default()));
        let (ready, started) = mpsc::sync_channel(4);
        let (stop, stopped) = pw::channel::channel();
        let (target, shared) = (target.map(str::to_string), queue.clone());
        std::thread::Builder::new()
            .name("pipewire-playback".into())
            .spawn(move || {
                if let Err(e) = run(target, shared, ready.clone(), stopped) {
                    let _ = ready.send(Err(e));
                }
            })
            .map_err(|e| Error::Output(format!("pipewire thread: {e}")))?;
        match started.recv_timeout(START_TIMEOUT) {
            Ok(Ok(())) => {}
            Ok(Err(why)) => return Err(Error::Output(format!("{what}: {why}"))),
            Err(_) => {
                return Err(Error::Output(format!(
                    "{what}: not playing within {START_TIMEOUT:?} (no such sink?)"
                )));
            }
        }
        tracing::info!(sink = what, "playing audio");
        Ok(Self { queue, stop })
    }

    /// Queue interleaved samples of `channels` (1 or 2); returns how long until the first of
    /// them is heard (µs from now): the sound queued ahead, plus the device's delay.
    pub fn write(&self, samples: &[f32], channels: usize) -> u64 {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        let ahead = (queue.samples.len() / CHANNELS) as u64 * 1_000_000 / RATE as u64
            + queue.device_delay_us;
        for frame in samples.chunks_exact(channels) {
            queue.samples.push_back(frame[0]);
            queue.samples.push_back(frame[channels - 1]);
        }
        queue.started = true;
        let max = (MAX_QUEUE_US * RATE as u64 / 1_000_000) as usize * CHANNELS;
        if queue.samples.len() > max {
            let shed = queue.samples.len() - max;
            queue.samples.drain(..shed);
            queue.shed_samples += (shed / CHANNELS) as u64;
        }
        ahead
    }

    /// Underruns so far, and samples (per channel) shed from an overfull queue.
    pub fn faults(&self) -> (u64, u64) {
        let queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        (queue.underruns, queue.shed_samples)
    }
}

impl Drop for Playback {
    fn drop(&mut self) {
        let _ = self.stop.send(());
    }
}

fn run(
    target: Option<String>,
    queue: Arc<Mutex<Queue>>,
    ready: mpsc::SyncSender<Result<(), String>>,
    stopped: pw::channel::Receiver<()>,
) -> Result<(), String> {
    let (mainloop, _context, core) = connect()?;
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
    let stream = pw::stream::StreamBox::new(&core, "lantern-playback", props)
        .map_err(|e| format!("stream: {e}"))?;
    let _listener = stream
        .add_local_listener_with_user_data(())
        .state_changed(move |_, _, _, state| match state {
            pw::stream::StreamState::Streaming => {
                let _ = ready.try_send(Ok(()));
            }
            pw::stream::StreamState::Error(why) => {
                let _ = ready.try_send(Err(format!("stream failed: {why}")));
            }
            _ => {}
        })
        .process(move |stream, _| {
            let Some(mut buffer) = stream.dequeue_buffer() else {
                return;
            };
            let requested = buffer.requested() as usize;
            let Some(data) = buffer.datas_mut().first_mut() else {
                return;
            };
            let stride = CHANNELS * 4;
            let Some(bytes) = data.data() else {
                return;
            };
            let mut frames = bytes.len() / stride;
            if requested > 0 {
                frames = frames.min(requested);
            }
            let device_delay_us = stream.time().ok().map_or(0, |time| {
                let ticks = u64::try_from(time.delay()).unwrap_or(0);
                ticks_to(ticks, time.rate(), 1_000_000).unwrap_or(0)
            });
            let mut queue = queue.lock().unwrap_or_else(PoisonError::into_inner);
            queue.device_delay_us = device_delay_us;
            if queue.started && queue.samples.len() < frames * CHANNELS {
                queue.underruns += 1;
            }
            for sample in bytes[..frames * stride].chunks_exact_mut(4) {
                let value = queue.samples.pop_front().unwrap_or(0.0);
                sample.copy_from_slice(&value.to_le_bytes());
            }
            drop(queue);
            let chunk = data.chunk_mut();
            *chunk.offset_mut() = 0;
            *chunk.stride_mut() = stride as i32;
            *chunk.size_mut() = (frames * stride) as u32;
        })
        .register()
        .map_err(|e| format!("listener: {e}"))?;
    run_stream(&mainloop, &stream, spa::utils::Direction::Output, stopped)
}
