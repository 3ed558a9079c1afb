//! `--audio pipewire[:TARGET]`: capture a PipeWire node, or a sink's monitor (by default the
//! default sink's, i.e. what the game plays), as 48 kHz stereo f32 in small quanta.
//!
//! PipeWire's objects are single-threaded, so they live on a thread of their own that runs the
//! PipeWire loop and hands each quantum, with its capture time, to [`Capture::next`].

use std::sync::mpsc;
use std::time::Duration;

use lantern_proto::{audio::RATE, clock};
use pipewire as pw;
use pw::{properties::properties, spa};

use super::{AudioSettings, AudioSource, CHANNELS};
use crate::Error;

/// One quantum from PipeWire: interleaved samples, the capture time of the first, and the
/// stream's position in samples (PipeWire's clock), which shows any quanta lost on the way.
type Quantum = (Vec<f32>, u64, Option<u64>);

pub struct Capture {
    quanta: mpsc::Receiver<Result<Quantum, String>>,
    stop: pw::channel::Sender<()>,
    pending: Vec<f32>,
    /// Capture time of `pending[0]`.
    pending_us: u64,
    /// Where PipeWire's position should be at the next quantum.
    next_position: Option<u64>,
    lost: u64,
    what: String,
    timeout: Duration,
}

impl Capture {
    /// Connect to PipeWire and wait (up to `timeout`) for the first sound, so a missing
    /// daemon or an unknown target is an error now rather than silence later.
    pub fn open(
        target: Option<&str>,
        settings: AudioSettings,
        timeout: Duration,
    ) -> Result<Self, Error> {
        let what = match target {
            Some(target) => format!("PipeWire target {target:?}"),
            None => "PipeWire's default sink monitor".to_string(),
        };
        let (send, quanta) = mpsc::sync_channel(64);
        let (stop, stopped) = pw::channel::channel();
        let (target, samples) = (target.map(str::to_string), settings.samples());
        std::thread::Builder::new()
            .name("pipewire-capture".into())
            .spawn(move || {
                if let Err(e) = run(target, samples, send.clone(), stopped) {
                    let _ = send.send(Err(e.to_string()));
                }
            })
            .map_err(|e| Error::Source(format!("pipewire thread: {e}")))?;
        let mut capture = Self {
            quanta,
            stop,
            pending: Vec::new(),
            pending_us: 0,
            next_position: None,
            lost: 0,
            what,
            timeout,
        };
        let (first, at, position) = capture.receive()?;
        capture.next_position = position.map(|p| p + (first.len() / CHANNELS) as u64);
        capture.pending = first;
        capture.pending_us = at;
        tracing::info!(source = capture.what, "capturing audio");
        Ok(capture)
    }

    fn receive(&mut self) -> Result<Quantum, Error> {
        match self.quanta.recv_timeout(self.timeout) {
            Ok(Ok(quantum)) => Ok(quantum),
            Ok(Err(why)) => Err(Error::Source(format!("{}: {why}", self.what))),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(Error::Source(format!(
                "{}: no audio within {:?} (no such node, or nothing links it?)",
                self.what, self.timeout
            ))),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err(Error::Source(format!("{}: capture stopped", self.what)))
            }
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.stop.send(());
    }
}

/// How far a quantum's measured capture time may stray from the running sample count before
/// the timeline is re-anchored (a stall or an xrun): beyond scheduling jitter, well under
/// anything audible as drift.
const REANCHOR_US: u64 = 20_000;

impl AudioSource for Capture {
    fn next(&mut self, frame: &mut [f32]) -> Result<Option<u64>, Error> {
        while self.pending.len() < frame.len() {
            let (samples, at, position) = self.receive()?;
            // Quanta PipeWire could not deliver (an xrun) are played as silence, and
            // counted, so the timeline stays true and nothing goes missing unreported.
            if let (Some(expected), Some(position)) = (self.next_position, position)
                && let lost = position.saturating_sub(expected)
                && (1..RATE as u64 * 10).contains(&lost)
            {
                tracing::debug!(lost, "PipeWire skipped samples");
                self.lost += lost;
                self.pending
                    .extend(std::iter::repeat_n(0.0, lost as usize * CHANNELS));
            }
            self.next_position = position.map(|p| p + (samples.len() / CHANNELS) as u64);
            // Timestamps run on the sample count, so consecutive frames abut exactly; the
            // wall clock only re-anchors them when the two disagree by more than jitter.
            let expected = self.pending_us + samples_us(self.pending.len());
            if expected.abs_diff(at) > REANCHOR_US {
                tracing::debug!(expected, at, "audio timeline re-anchored");
                self.pending_us = at.saturating_sub(samples_us(self.pending.len()));
            }
            self.pending.extend_from_slice(&samples);
        }
        frame.copy_from_slice(&self.pending[..frame.len()]);
        self.pending.drain(..frame.len());
        let pts = self.pending_us;
        self.pending_us += samples_us(frame.len());
        Ok(Some(pts))
    }

    fn lost_samples(&self) -> u64 {
        self.lost
    }
}

/// Duration of `len` interleaved samples.
fn samples_us(len: usize) -> u64 {
    (len / CHANNELS) as u64 * 1_000_000 / RATE as u64
}

/// The PipeWire thread: connect, capture until told to stop.
fn run(
    target: Option<String>,
    samples: usize,
    send: mpsc::SyncSender<Result<Quantum, String>>,
    stopped: pw::channel::Receiver<()>,
) -> Result<(), String> {
    let (mainloop, _context, core) = connect()?;

    let mut props = properties! {
        *pw::keys::MEDIA_TYPE => "Audio",
        *pw::keys::MEDIA_CATEGORY => "Capture",
        *pw::keys::MEDIA_ROLE => "Game",
        *pw::keys::NODE_NAME => "lantern-capture",
        *pw::keys::NODE_LATENCY => format!("{samples}/{RATE}"),
    };
    match &target {
        Some(target) => props.insert(*pw::keys::TARGET_OBJECT, target.as_str()),
        // No target: the default sink's monitor, which is what the host plays.
        None => props.insert(*pw::keys::STREAM_CAPTURE_SINK, "true"),
    }
    let stream = pw::stream::StreamBox::new(&core, "lantern-capture", props)
        .map_err(|e| format!("stream: {e}"))?;

    let failed = send.clone();
    let _listener = stream
        .add_local_listener_with_user_data(())
        .state_changed(move |_, _, _, state| {
            if let pw::stream::StreamState::Error(why) = state {
                let _ = failed.try_send(Err(format!("stream failed: {why}")));
            }
        })
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
            let quantum: Vec<f32> = bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            // The quantum ends now; its first sample was captured its length ago.
            let first_us = clock::now_unix_us().saturating_sub(samples_us(quantum.len()));
            let position = stream
                .time()
                .ok()
                .and_then(|time| ticks_to(time.ticks(), time.rate(), RATE as u64));
            // A full queue means the encoder is stuck: drop rather than block PipeWire.
            let _ = send.try_send(Ok((quantum, first_us, position)));
        })
        .register()
        .map_err(|e| format!("listener: {e}"))?;

    // Ask for exactly what Opus takes; PipeWire's adapter converts whatever the node has.
    run_stream(&mainloop, &stream, spa::utils::Direction::Input, stopped)
}

/// A connection to the PipeWire daemon (the loop, the context that must outlive the core, and
/// the core), with an error that says what to check when there is no daemon.
pub fn connect() -> Result<
    (
        pw::main_loop::MainLoopRc,
        pw::context::ContextRc,
        pw::core::CoreRc,
    ),
    String,
> {
    pw::init();
    let mainloop = pw::main_loop::MainLoopRc::new(None).map_err(|e| format!("main loop: {e}"))?;
    let context =
        pw::context::ContextRc::new(&mainloop, None).map_err(|e| format!("context: {e}"))?;
    let core = context.connect_rc(None).map_err(|e| {
        format!(
            "cannot connect to the PipeWire daemon ({e}); is it running, with XDG_RUNTIME_DIR={}?",
            std::env::var("XDG_RUNTIME_DIR").unwrap_or_else(|_| "(unset)".into())
        )
    })?;
    Ok((mainloop, context, core))
}

/// Connect `stream` in `direction` with Lantern's one raw format, and run the PipeWire loop
/// until a message arrives on `stopped`.
pub fn run_stream(
    mainloop: &pw::main_loop::MainLoopRc,
    stream: &pw::stream::Stream,
    direction: spa::utils::Direction,
    stopped: pw::channel::Receiver<()>,
) -> Result<(), String> {
    let format = format_param()?;
    let mut params = [spa::pod::Pod::from_bytes(&format).ok_or_else(|| "format pod".to_string())?];
    stream
        .connect(
            direction,
            None,
            pw::stream::StreamFlags::AUTOCONNECT
                | pw::stream::StreamFlags::MAP_BUFFERS
                | pw::stream::StreamFlags::RT_PROCESS,
            &mut params,
        )
        .map_err(|e| format!("connect: {e}"))?;
    let quit = mainloop.clone();
    let _stop = stopped.attach(mainloop.loop_(), move |()| quit.quit());
    mainloop.run();
    Ok(())
}

/// PipeWire ticks (counted at `rate`, a fraction of a second) in units of `per_second`:
/// samples at 48 kHz, or µs.
pub fn ticks_to(ticks: u64, rate: spa::utils::Fraction, per_second: u64) -> Option<u64> {
    (rate.denom > 0).then(|| ticks * per_second * rate.num as u64 / rate.denom as u64)
}

/// The EnumFormat parameter for Lantern's one raw format: F32LE, 48 kHz, stereo (FL, FR).
fn format_param() -> Result<Vec<u8>, String> {
    let mut info = spa::param::audio::AudioInfoRaw::new();
    info.set_format(spa::param::audio::AudioFormat::F32LE);
    info.set_rate(RATE);
    info.set_channels(CHANNELS as u32);
    let mut position = [0; spa::param::audio::MAX_CHANNELS];
    position[0] = spa::sys::SPA_AUDIO_CHANNEL_FL;
    position[1] = spa::sys::SPA_AUDIO_CHANNEL_FR;
    info.set_position(position);
    Ok(spa::pod::serialize::PodSerializer::serialize(
        std::io::Cursor::new(Vec::new()),
        &spa::pod::Value::Object(spa::pod::Object {
            type_: spa::utils::SpaTypes::ObjectParamFormat.as_raw(),
            id: spa::param::ParamType::EnumFormat.as_raw(),
            properties: info.into(),
        }),
    )
    .map_err(|e| format!("format: {e:?}"))?
    .0
    .into_inner())
}
