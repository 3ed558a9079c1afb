//! wlr-screencopy with shared memory: two copies always in flight (a copy completes at the
//! output's next frame, so one in flight would halve the rate), `copy_with_damage` so a copy
//! completes only when the screen changed, and the newest completed picture converted once,
//! straight into the encoder's buffer.
//!
//! Three buffers: two in flight, one holding the last picture delivered (for repeats, and so
//! the compositor never writes into a buffer being read). A still screen repeats that picture
//! every [`REPEAT_AFTER`](super::REPEAT_AFTER).
//!
//! The compositor may offer linux-dmabuf buffers (v3's `linux_dmabuf` event); they need a GPU
//! render node to allocate, which is noted and left to shared memory here.

use std::collections::VecDeque;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lantern_proto::clock::now_unix_us;
use lantern_proto::picture::Image;
use moq_pub::source::{Canvas, Captured, Format, Source};
use tokio_util::sync::CancellationToken;
use wayland_client::globals::registry_queue_init;
use wayland_client::protocol::{wl_buffer, wl_output, wl_shm, wl_shm_pool};
use wayland_client::{Connection, Dispatch, EventQueue, Proxy, QueueHandle, WEnum, delegate_noop};
use wayland_protocols_wlr::screencopy::v1::client::{
    zwlr_screencopy_frame_v1::{self, ZwlrScreencopyFrameV1},
    zwlr_screencopy_manager_v1::ZwlrScreencopyManagerV1,
};

use super::{Meter, REPEAT_AFTER};
use crate::Error;
use crate::wl::{ShmBuffer, dispatch, pixel_format};

const IN_FLIGHT: usize = 2;
const SLOTS: usize = IN_FLIGHT + 1;

pub struct Screencopy {
    queue: EventQueue<State>,
    state: State,
    format: Format,
    meter: Arc<Meter>,
    cancel: CancellationToken,
    timeout: Duration,
    started: Instant,
    last_delivered: Instant,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Use {
    Free,
    Copying,
    Done,
    Latest,
}

/// The buffers' size and format, as the compositor asked for them.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Layout {
    format: WEnum<wl_shm::Format>,
    width: u32,
    height: u32,
    stride: u32,
}

struct Copy {
    id: u64,
    frame: ZwlrScreencopyFrameV1,
    layout: Option<Layout>,
    slot: Option<usize>,
}

struct Completed {
    slot: usize,
    /// When the compositor presented it, on CLOCK_MONOTONIC, in µs.
    presented_us: u64,
}

struct State {
    qh: QueueHandle<State>,
    shm: wl_shm::WlShm,
    manager: ZwlrScreencopyManagerV1,
    output: wl_output::WlOutput,
    /// The output's current mode: width, height, refresh in mHz.
    mode: Option<(i32, i32, i32)>,
    slots: Vec<(ShmBuffer, Use)>,
    layout: Option<Layout>,
    copies: Vec<Copy>,
    completed: VecDeque<Completed>,
    next_id: u64,
    failures: u64,
    dmabuf_offered: bool,
    error: Option<Error>,
    meter: Arc<Meter>,
}

impl Screencopy {
    /// Connect to the compositor on `socket` and start capturing its (first) output, which
    /// must have `format`'s size. `cancel` ends `next`'s waits; no picture within `timeout`
    /// is an error.
    pub fn open(
        socket: &Path,
        format: Format,
        meter: Arc<Meter>,
        cancel: CancellationToken,
        timeout: Duration,
    ) -> Result<Self, Error> {
        let stream = UnixStream::connect(socket)
            .map_err(|e| Error::io(format!("connecting to {}", socket.display()), e))?;
        let connection =
            Connection::from_socket(stream).map_err(|e| Error::wayland("connecting", e))?;
        let (globals, mut queue) = registry_queue_init::<State>(&connection)
            .map_err(|e| Error::wayland("reading the globals", e))?;
        let qh = queue.handle();
        fn bind_error(what: &'static str) -> impl Fn(wayland_client::globals::BindError) -> Error {
            move |e| Error::wayland(format!("the compositor offers no {what}"), e)
        }
        let shm = globals.bind(&qh, 1..=1, ()).map_err(bind_error("wl_shm"))?;
        let output = globals.bind(&qh, 1..=4, ()).map_err(bind_error("output"))?;
        let manager = globals
            .bind(&qh, 1..=3, ())
            .map_err(bind_error("wlr-screencopy (is it a wlroots compositor?)"))?;
        let mut state = State {
            qh,
            shm,
            manager,
            output,
            mode: None,
            slots: Vec::new(),
            layout: None,
            copies: Vec::new(),
            completed: VecDeque::new(),
            next_id: 0,
            failures: 0,
            dmabuf_offered: false,
            error: None,
            meter: meter.clone(),
        };
        queue
            .roundtrip(&mut state)
            .map_err(|e| Error::wayland("reading the output's mode", e))?;
        let (width, height, refresh) = state.mode.unwrap_or_default();
        if (width as u32, height as u32) != (format.width, format.height) {
            return Err(Error::Compositor(format!(
                "its output is {width}x{height}, not the {}x{} asked for (did it refuse the mode?)",
                format.width, format.height
            )));
        }
        let hz = refresh as f64 / 1000.0;
        if (hz - format.fps).abs() > 0.5 {
            tracing::warn!(
                asked = format.fps,
                got = hz,
                "the output's refresh rate differs from the one asked for"
            );
        }
        let now = Instant::now();
        Ok(Self {
            queue,
            state,
            format,
            meter,
            cancel,
            timeout,
            started: now,
            last_delivered: now,
        })
    }

    /// Convert the picture in `slot` into `canvas`; returns how long that took, in µs.
    fn convert(&self, slot: usize, canvas: &mut Canvas) -> Result<u64, Error> {
        let start = Instant::now();
        let (buffer, _) = &self.state.slots[slot];
        let layout = self
            .state
            .layout
            .ok_or_else(|| Error::Capture("a picture before its buffer".into()))?;
        let pixels = pixel_format(layout.format).ok_or_else(|| {
            Error::Capture(format!(
                "the compositor's pixel format {:?} is not supported",
                layout.format
            ))
        })?;
        let image = Image::new(
            pixels,
            buffer.width,
            buffer.height,
            &[buffer.bytes()],
            &[buffer.stride as usize],
        )
        .map_err(|e| Error::Capture(format!("the compositor's buffer: {e}")))?;
        canvas.convert(&image)?;
        Ok(start.elapsed().as_micros() as u64)
    }
}

impl Source for Screencopy {
    fn format(&self) -> Format {
        self.format
    }

    fn next(&mut self, canvas: &mut Canvas) -> Result<Option<Captured>, moq_pub::Error> {
        self.take(canvas)
            .map_err(|e| moq_pub::Error::Source(Box::new(e)))
    }
}

impl Screencopy {
    /// The newest picture, or the last one again after a still stretch; `None` on a stop.
    fn take(&mut self, canvas: &mut Canvas) -> Result<Option<Captured>, Error> {
        loop {
            if self.cancel.is_cancelled() {
                return Ok(None);
            }
            while self.state.copies.len() < IN_FLIGHT {
                self.state.request();
            }
            if let Some(err) = self.state.error.take() {
                return Err(err);
            }
            if let Some(newest) = self.state.completed.pop_back() {
                // Older pictures lost the race: a late frame is worth nothing.
                let older = self.state.completed.len() as u64;
                for stale in self.state.completed.drain(..) {
                    self.state.slots[stale.slot].1 = Use::Free;
                }
                if older > 0 {
                    self.meter.drops(older);
                }
                for (_, use_) in &mut self.state.slots {
                    if *use_ == Use::Latest {
                        *use_ = Use::Free;
                    }
                }
                self.state.slots[newest.slot].1 = Use::Latest;
                let convert_us = self.convert(newest.slot, canvas)?;
                let now_us = now_unix_us();
                let capture_us = unix_from_monotonic(newest.presented_us, now_us);
                self.meter
                    .frame(now_us.saturating_sub(capture_us), convert_us);
                self.last_delivered = Instant::now();
                return Ok(Some(Captured {
                    capture_us,
                    stamped: false,
                }));
            }
            let idle = self.last_delivered.elapsed();
            let latest = self.state.slots.iter().position(|(_, u)| *u == Use::Latest);
            match latest {
                Some(slot) if idle >= REPEAT_AFTER => {
                    self.convert(slot, canvas)?;
                    self.meter.repeat();
                    self.last_delivered = Instant::now();
                    return Ok(Some(Captured {
                        capture_us: now_unix_us(),
                        stamped: false,
                    }));
                }
                None if self.started.elapsed() >= self.timeout => {
                    return Err(Error::Timeout {
                        what: "the first picture from the compositor".into(),
                        timeout: self.timeout,
                    });
                }
                _ => {}
            }
            let wait = REPEAT_AFTER
                .saturating_sub(idle)
                .min(Duration::from_millis(50));
            dispatch(&mut self.queue, &mut self.state, wait)?;
        }
    }
}

impl State {
    /// Ask for the next picture of the output (without the cursor: viewers draw their own).
    fn request(&mut self) {
        let id = self.next_id;
        self.next_id += 1;
        let frame = self.manager.capture_output(0, &self.output, &self.qh, id);
        self.copies.push(Copy {
            id,
            frame,
            layout: None,
            slot: None,
        });
    }

    /// The compositor said what buffer it wants for copy `id`: give it a free one.
    fn start_copy(&mut self, id: u64) -> Result<(), Error> {
        let Some(index) = self.copies.iter().position(|c| c.id == id) else {
            return Ok(());
        };
        let layout = self.copies[index].layout.ok_or_else(|| {
            Error::Capture("the compositor described no shared-memory buffer".into())
        })?;
        if self.layout != Some(layout) {
            // First copy, or the output changed: (re)allocate every buffer.
            if self.slots.iter().any(|(_, u)| *u == Use::Copying) {
                return Err(Error::Capture(
                    "the output changed size during capture".into(),
                ));
            }
            let WEnum::Value(format) = layout.format else {
                return Err(Error::Capture(format!(
                    "unknown pixel format {:?}",
                    layout.format
                )));
            };
            if pixel_format(layout.format).is_none() {
                return Err(Error::Capture(format!(
                    "the compositor's pixel format {format:?} is not supported"
                )));
            }
            self.completed.clear();
            self.slots = (0..SLOTS)
                .map(|_| {
                    let size = (layout.width, layout.height, layout.stride);
                    ShmBuffer::new(&self.shm, &self.qh, size, format, ()).map(|b| (b, Use::Free))
                })
                .collect::<Result<_, _>>()?;
            self.layout = Some(layout);
            if self.dmabuf_offered {
                tracing::info!(
                    "the compositor offers linux-dmabuf, but this host has no render node: capturing through shared memory"
                );
            }
        }
        let slot = self
            .slots
            .iter()
            .position(|(_, u)| *u == Use::Free)
            .ok_or_else(|| Error::Capture("no free buffer for a copy".into()))?;
        self.slots[slot].1 = Use::Copying;
        let copy = &mut self.copies[index];
        copy.slot = Some(slot);
        if copy.frame.version() >= 2 {
            copy.frame.copy_with_damage(&self.slots[slot].0.buffer);
        } else {
            copy.frame.copy(&self.slots[slot].0.buffer);
        }
        Ok(())
    }

    /// Copy `id` is over (ready or failed): forget it, and return its slot.
    fn finish(&mut self, id: u64) -> Option<usize> {
        let index = self.copies.iter().position(|c| c.id == id)?;
        let copy = self.copies.swap_remove(index);
        copy.frame.destroy();
        copy.slot
    }
}

impl Dispatch<ZwlrScreencopyFrameV1, u64> for State {
    fn event(
        state: &mut Self,
        frame: &ZwlrScreencopyFrameV1,
        event: zwlr_screencopy_frame_v1::Event,
        id: &u64,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        use zwlr_screencopy_frame_v1::Event;
        match event {
            Event::Buffer {
                format,
                width,
                height,
                stride,
            } => {
                if let Some(copy) = state.copies.iter_mut().find(|c| c.id == *id) {
                    copy.layout = Some(Layout {
                        format,
                        width,
                        height,
                        stride,
                    });
                }
                // Before version 3 there is no buffer_done: the shm description is all.
                if frame.version() < 3
                    && let Err(err) = state.start_copy(*id)
                {
                    state.error.get_or_insert(err);
                }
            }
            Event::LinuxDmabuf { .. } => state.dmabuf_offered = true,
            Event::BufferDone => {
                if let Err(err) = state.start_copy(*id) {
                    state.error.get_or_insert(err);
                }
            }
            Event::Ready {
                tv_sec_hi,
                tv_sec_lo,
                tv_nsec,
            } => {
                let secs = ((tv_sec_hi as u64) << 32) | tv_sec_lo as u64;
                let presented_us = secs * 1_000_000 + tv_nsec as u64 / 1000;
                if let Some(slot) = state.finish(*id) {
                    state.slots[slot].1 = Use::Done;
                    state.completed.push_back(Completed { slot, presented_us });
                }
                state.failures = 0;
            }
            Event::Failed => {
                if let Some(slot) = state.finish(*id) {
                    state.slots[slot].1 = Use::Free;
                }
                state.failures += 1;
                state.meter.failures(1);
                if state.failures >= 10 {
                    state.error.get_or_insert(Error::Capture(
                        "the compositor failed ten copies in a row".into(),
                    ));
                }
            }
            _ => {}
        }
    }
}

impl Dispatch<wl_output::WlOutput, ()> for State {
    fn event(
        state: &mut Self,
        _: &wl_output::WlOutput,
        event: wl_output::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wl_output::Event::Mode {
            flags: WEnum::Value(flags),
            width,
            height,
            refresh,
        } = event
            && flags.contains(wl_output::Mode::Current)
        {
            state.mode = Some((width, height, refresh));
        }
    }
}

crate::ignore_registry_events!(State);

delegate_noop!(State: ignore wl_shm::WlShm);
delegate_noop!(State: ignore wl_shm_pool::WlShmPool);
delegate_noop!(State: ignore wl_buffer::WlBuffer);
delegate_noop!(State: ZwlrScreencopyManagerV1);

/// A CLOCK_MONOTONIC time (µs) as UNIX time, given the UNIX time now. A time that is not in
/// the last second (a compositor on another clock) is taken as now.
fn unix_from_monotonic(monotonic_us: u64, now_unix_us: u64) -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    let now_mono = now.tv_sec as u64 * 1_000_000 + now.tv_nsec as u64 / 1000;
    match now_mono.checked_sub(monotonic_us) {
        Some(age) if age < 1_000_000 => now_unix_us - age,
        _ => now_unix_us,
    }
}
