//! `--audio-out sdl`: sound through SDL's own audio backends (PulseAudio, PipeWire's Pulse
//! server, ALSA, …), for a player's machine without a PipeWire daemon; the window uses it
//! when PipeWire does not answer.
//!
//! SDL's queue, not its callback: the audio player pushes decoded samples and SDL's audio
//! thread drains them, so nothing of ours runs in real time. The queue is kept short (sound
//! past [`MAX_QUEUE_US`] is shed and counted, as with PipeWire), and what is queued ahead of
//! a packet is its delay until heard, which lip sync waits for.
//!
//! Raw SDL calls (sdl2's own wrapper needs the process's one `Sdl` context, which the window's
//! thread holds); SDL's audio functions are thread-safe.

use std::ffi::CStr;
use std::time::{Duration, Instant};

use lantern_proto::audio::RATE;
use lantern_proto::timing::samples_us;
use sdl2::sys;

use crate::Error;
use crate::playback::MAX_QUEUE_US;

/// SDL's own buffer, in samples per channel: 5.3 ms at 48 kHz.
const DEVICE_SAMPLES: u16 = 256;
/// Scheduling noise allowed before a late write counts as an underrun.
const UNDERRUN_SLACK: Duration = Duration::from_millis(2);

pub struct SdlAudio {
    device: sys::SDL_AudioDeviceID,
    channels: usize,
    /// When everything queued so far will have played (set once sound was queued): a write
    /// after that finds the device ran dry.
    drains_at: Option<Instant>,
    underruns: u64,
    shed_samples: u64,
}

fn sdl_error(what: &str) -> Error {
    // SAFETY: SDL_GetError returns a NUL-terminated string SDL owns.
    let why = unsafe { CStr::from_ptr(sys::SDL_GetError()) }.to_string_lossy();
    Error::Output {
        what: format!("SDL audio: {what}: {why}"),
        source: None,
    }
}

impl SdlAudio {
    /// Open SDL's default output for interleaved f32 `channels` at 48 kHz (SDL converts to
    /// whatever the device takes).
    pub fn open(channels: u16) -> Result<Self, Error> {
        let desired = sys::SDL_AudioSpec {
            freq: RATE as i32,
            format: sys::AUDIO_F32SYS as u16,
            channels: channels as u8,
            silence: 0,
            samples: DEVICE_SAMPLES,
            padding: 0,
            size: 0,
            callback: None,
            userdata: std::ptr::null_mut(),
        };
        // SAFETY: plain SDL calls; `desired` lives across the call, `obtained` may be null.
        let device = unsafe {
            if sys::SDL_InitSubSystem(sys::SDL_INIT_AUDIO) != 0 {
                return Err(sdl_error("init"));
            }
            let device =
                sys::SDL_OpenAudioDevice(std::ptr::null(), 0, &desired, std::ptr::null_mut(), 0);
            if device == 0 {
                let err = sdl_error("open the default output");
                sys::SDL_QuitSubSystem(sys::SDL_INIT_AUDIO);
                return Err(err);
            }
            sys::SDL_PauseAudioDevice(device, 0);
            device
        };
        // SAFETY: the driver's name is a static string SDL owns, while audio is initialised.
        let driver = unsafe { CStr::from_ptr(sys::SDL_GetCurrentAudioDriver()) };
        tracing::info!(driver = %driver.to_string_lossy(), "playing audio through SDL");
        Ok(Self {
            device,
            channels: channels as usize,
            drains_at: None,
            underruns: 0,
            shed_samples: 0,
        })
    }

    fn queued(&self) -> usize {
        // SAFETY: the device is open until drop.
        let bytes = unsafe { sys::SDL_GetQueuedAudioSize(self.device) } as usize;
        bytes / (4 * self.channels)
    }

    /// Queue interleaved samples; returns how long until the first of them is heard (µs).
    pub fn write(&mut self, samples: &[f32]) -> u64 {
        let queued = self.queued();
        let now = Instant::now();
        // The queue is often empty between packets (SDL drains it a device buffer at a time);
        // the device only starved if the sound queued last time had all played.
        if queued == 0 && self.drains_at.is_some_and(|at| now > at + UNDERRUN_SLACK) {
            self.underruns += 1;
        }
        let frames = samples.len() / self.channels;
        let fits = frames.min(self.room());
        if fits < frames {
            self.shed_samples += (frames - fits) as u64;
        }
        let bytes = (fits * self.channels * 4) as u32;
        // SAFETY: `samples` holds at least `bytes` bytes; SDL copies them into its queue.
        if unsafe { sys::SDL_QueueAudio(self.device, samples.as_ptr().cast(), bytes) } != 0 {
            self.shed_samples += fits as u64;
        }
        let ahead = samples_us(queued as u64) + samples_us(u64::from(DEVICE_SAMPLES));
        let end = ahead + samples_us(fits as u64);
        self.drains_at = Some(now + Duration::from_micros(end));
        ahead
    }

    /// Samples (per channel) the queue takes before shedding.
    pub fn room(&self) -> usize {
        let max = (MAX_QUEUE_US * u64::from(RATE) / 1_000_000) as usize;
        max.saturating_sub(self.queued())
    }

    /// Underruns so far, and samples (per channel) shed.
    pub fn faults(&self) -> (u64, u64) {
        (self.underruns, self.shed_samples)
    }
}

impl Drop for SdlAudio {
    fn drop(&mut self) {
        // SAFETY: closing what open opened, once.
        unsafe {
            sys::SDL_CloseAudioDevice(self.device);
            sys::SDL_QuitSubSystem(sys::SDL_INIT_AUDIO);
        }
    }
}
