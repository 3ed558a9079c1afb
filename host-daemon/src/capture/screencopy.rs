//! wlr-screencopy: two copies always in flight (a copy completes at the output's next frame,
//! so one in flight would halve the rate), `copy_with_damage` so a copy completes only when
//! the screen changed, and the newest completed picture converted once, straight into the
//! encoder's buffer.
//!
//! Three buffers: two in flight, one holding the last picture delivered (for repeats, and so
//! the compositor never writes into a buffer being read). A still screen repeats that picture
//! every [`REPEAT_AFTER`](super::REPEAT_AFTER).
//!
//! The buffers are shared memory, or DMA-BUFs where the compositor offers them (version 3's
//! `linux_dmabuf` event) and the host has a GPU render node ([`Buffers`]): the compositor then
//! copies on the GPU rather than reading its picture back while it renders. DMA-BUFs are made
//! with GBM on the compositor's own GPU (as its linux-dmabuf feedback names it) and imported
//! before the first copy; a compositor that refuses them leaves `auto` on shared memory.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lantern_proto::clock::now_unix_us;
use lantern_proto::picture::{Image, PixelFormat};
use moq_pub::source::{Canvas, Captured, Format, Source};
use tokio_util::sync::CancellationToken;
use wayland_client::globals::{GlobalList, registry_queue_init};
use wayland_client::protocol::{wl_buffer, wl_output, wl_shm, wl_shm_pool};
use wayland_client::{
    Connection, Dispatch, EventQueue, Proxy, QueueHandle, WEnum, delegate_noop, event_created_child,
};
use wayland_protocols::wp::linux_dmabuf::zv1::client::{
    zwp_linux_buffer_params_v1::{self, ZwpLinuxBufferParamsV1},
    zwp_linux_dmabuf_feedback_v1::{self, ZwpLinuxDmabufFeedbackV1},
    zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1,
};
use wayland_protocols_wlr::screencopy::v1::client::{
    zwlr_screencopy_frame_v1::{self, ZwlrScreencopyFrameV1},
    zwlr_screencopy_manager_v1::ZwlrScreencopyManagerV1,
};

use super::dmabuf::{self, DmaBuf, Gbm};
use super::slots::Slots;
use super::{Buffers, Meter, REPEAT_AFTER};
use crate::Error;
use crate::wl::{ShmBuffer, dispatch, pixel_format};

const IN_FLIGHT: usize = 2;
const SLOTS: usize = IN_FLIGHT + 1;

/// How long the compositor may take to say whether it took our DMA-BUFs.
const IMPORT_TIMEOUT: Duration = Duration::from_secs(2);

pub struct Screencopy {
    queue: EventQueue<State>,
    state: State,
    format: Format,
    buffers: Buffers,
    meter: Arc<Meter>,
    cancel: CancellationToken,
    timeout: Duration,
    started: Instant,
    last_delivered: Instant,
}

/// The buffers' kind, size and format, as the compositor asked for them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    Shm {
        format: WEnum<wl_shm::Format>,
        width: u32,
        height: u32,
        stride: u32,
    },
    /// A DRM format.
    DmaBuf {
        format: u32,
        width: u32,
        height: u32,
    },
}

impl Layout {
    fn pixels(self) -> Option<PixelFormat> {
        match self {
            Self::Shm { format, .. } => pixel_format(format),
            Self::DmaBuf { format, .. } => dmabuf::pixel_format(format),
        }
    }

    fn kind(self) -> &'static str {
        match self {
            Self::Shm { .. } => "shm",
            Self::DmaBuf { .. } => "dmabuf",
        }
    }
}

/// What the compositor offered for one copy: a shared-memory layout, a DMA-BUF one, or both.
#[derive(Clone, Copy, Default)]
struct Offer {
    shm: Option<Layout>,
    dmabuf: Option<Layout>,
    /// The offer is complete (`buffer_done`, or the shm description before version 3).
    done: bool,
}

struct Copy {
    id: u64,
    frame: ZwlrScreencopyFrameV1,
    offer: Offer,
    slot: Option<usize>,
}

/// A buffer the compositor copies into.
enum Buffer {
    Shm(ShmBuffer),
    DmaBuf(Imported),
}

/// A DMA-BUF the compositor imported as a wl_buffer.
struct Imported {
    dmabuf: DmaBuf,
    buffer: wl_buffer::WlBuffer,
}

impl Drop for Imported {
    fn drop(&mut self) {
        self.buffer.destroy();
    }
}

impl Buffer {
    fn wl_buffer(&self) -> &wl_buffer::WlBuffer {
        match self {
            Self::Shm(shm) => &shm.buffer,
            Self::DmaBuf(imported) => &imported.buffer,
        }
    }

    /// Read the picture: `read` gets its bytes and their stride.
    fn read<R>(&self, read: impl FnOnce(&[u8], u32) -> R) -> Result<R, Error> {
        match self {
            Self::Shm(shm) => Ok(read(shm.bytes(), shm.stride)),
            Self::DmaBuf(imported) => imported.dmabuf.read(read),
        }
    }
}

/// DMA-BUF capture's means: the compositor's linux-dmabuf global and a GBM device on its GPU.
struct DmaBufs {
    global: ZwpLinuxDmabufV1,
    gbm: Gbm,
}

struct State {
    qh: QueueHandle<State>,
    shm: wl_shm::WlShm,
    manager: ZwlrScreencopyManagerV1,
    output: wl_output::WlOutput,
    /// The output's current mode: width, height, refresh in mHz.
    mode: Option<(i32, i32, i32)>,
    /// Where DMA-BUFs come from, while they are wanted and work.
    dmabufs: Option<DmaBufs>,
    /// The GPU the compositor renders on (linux-dmabuf feedback's main device), as a dev_t.
    main_device: Option<u64>,
    /// The compositor's answers to our DMA-BUF imports, by slot.
    imports: Vec<Option<Result<wl_buffer::WlBuffer, ()>>>,
    /// The buffers copied into, and which of them is in which use.
    buffers: Vec<Buffer>,
    slots: Slots,
    layout: Option<Layout>,
    copies: Vec<Copy>,
    next_id: u64,
    failures: u64,
    error: Option<Error>,
    meter: Arc<Meter>,
    /// Ask for the pointer drawn into the picture.
    cursor: bool,
}

impl Screencopy {
    /// Connect to the compositor on `socket` and start capturing its (first) output, which
    /// must have `format`'s size, into `buffers`, with the pointer drawn in if `cursor`.
    /// `cancel` ends `next`'s waits; no picture within `timeout` is an error.
    pub fn open(
        socket: &Path,
        format: Format,
        buffers: Buffers,
        cursor: bool,
        meter: Arc<Meter>,
        cancel: CancellationToken,
        timeout: Duration,
    ) -> Result<Self, Error> {
        let stream = crate::files::connect(socket)?;
        let connection =
            Connection::from_socket(stream).map_err(|e| Error::wayland("connecting", e))?;
        let (globals, mut queue) = registry_queue_init::<State>(&connection)
            .map_err(|e| Error::wayland("reading the globals", e))?;
        let qh = queue.handle();
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
            dmabufs: None,
            main_device: None,
            imports: Vec::new(),
            buffers: Vec::new(),
            slots: Slots::default(),
            layout: None,
            copies: Vec::new(),
            next_id: 0,
            failures: 0,
            error: None,
            meter: meter.clone(),
            cursor,
        };
        let global = match buffers {
            Buffers::Shm => None,
            Buffers::Auto | Buffers::DmaBuf => dmabuf_global(&globals, &state.qh),
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
        if buffers != Buffers::Shm {
            match DmaBufs::open(global, state.main_device) {
                Ok(dmabufs) => state.dmabufs = Some(dmabufs),
                Err(why) if buffers == Buffers::Auto => {
                    tracing::info!("capturing through shared memory: {why}");
                }
                Err(why) => {
                    return Err(Error::Capture(format!(
                        "no DMA-BUFs: {why}; use --capture compositor:shm (or :auto)"
                    )));
                }
            }
        }
        let now = Instant::now();
        Ok(Self {
            queue,
            state,
            format,
            buffers,
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
        let buffer = &self.state.buffers[slot];
        let layout = self
            .state
            .layout
            .ok_or_else(|| Error::Capture("a picture before its buffer".into()))?;
        let pixels = layout.pixels().ok_or_else(|| {
            Error::Capture(format!(
                "the compositor's pixel format in {layout:?} is not supported"
            ))
        })?;
        let (Layout::Shm { width, height, .. } | Layout::DmaBuf { width, height, .. }) = layout;
        buffer.read(|bytes, stride| {
            let image = Image::new(pixels, width, height, &[bytes], &[stride as usize]).map_err(
                |source| Error::Buffer {
                    what: "the compositor's buffer".into(),
                    source,
                },
            )?;
            canvas.convert(&image).map_err(Error::from)
        })??;
        Ok(start.elapsed().as_micros() as u64)
    }
}

fn bind_error(what: &'static str) -> impl Fn(wayland_client::globals::BindError) -> Error {
    move |e| Error::wayland(format!("the compositor offers no {what}"), e)
}

/// The compositor's linux-dmabuf global, if it has one (version 3, for modifiers), asking it
/// (from version 4) which GPU it renders on.
fn dmabuf_global(globals: &GlobalList, qh: &QueueHandle<State>) -> Option<ZwpLinuxDmabufV1> {
    let global: ZwpLinuxDmabufV1 = globals.bind(qh, 3..=4, ()).ok()?;
    if global.version() >= 4 {
        global.get_default_feedback(qh, ());
    }
    Some(global)
}

impl DmaBufs {
    /// DMA-BUF capture's means, or why there are none.
    fn open(global: Option<ZwpLinuxDmabufV1>, main_device: Option<u64>) -> Result<Self, String> {
        let nodes = dmabuf::render_nodes(Path::new("/dev/dri"));
        let Some(first) = nodes.first() else {
            return Err("this host has no GPU render node (/dev/dri/renderD*)".into());
        };
        let Some(global) = global else {
            return Err(
                "the compositor offers no linux-dmabuf v3 (it may render without a GPU)".into(),
            );
        };
        let node: PathBuf = main_device
            .and_then(|device| dmabuf::render_node_of(device, &nodes, Path::new("/sys")))
            .unwrap_or_else(|| first.clone());
        let gbm = Gbm::open(&node).map_err(|e| e.to_string())?;
        tracing::info!(node = %node.display(), "DMA-BUF capture available");
        Ok(Self { global, gbm })
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
            self.start_copies()?;
            if let Some((newest, stale)) = self.state.slots.take_newest() {
                // Older pictures lost the race: a late frame is worth nothing.
                if stale > 0 {
                    self.meter.drops(stale);
                }
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
            match self.state.slots.latest() {
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

    /// Give every copy the compositor has described a free buffer, making the buffers first
    /// when they are not the kind and size it asks for.
    fn start_copies(&mut self) -> Result<(), Error> {
        while let Some(index) = self
            .state
            .copies
            .iter()
            .position(|c| c.offer.done && c.slot.is_none())
        {
            let layout = self.choose(self.state.copies[index].offer)?;
            if self.state.layout != Some(layout) {
                self.make_buffers(layout)?;
                // Making DMA-BUFs dispatches events, which may have ended copies.
                continue;
            }
            let slot = (self.state.slots.start_copy())
                .ok_or_else(|| Error::Capture("no free buffer for a copy".into()))?;
            let copy = &mut self.state.copies[index];
            copy.slot = Some(slot);
            let buffer = self.state.buffers[slot].wl_buffer();
            if copy.frame.version() >= 2 {
                copy.frame.copy_with_damage(buffer);
            } else {
                copy.frame.copy(buffer);
            }
        }
        Ok(())
    }

    /// The buffers to copy into: DMA-BUF when offered and possible, else shared memory.
    fn choose(&self, offer: Offer) -> Result<Layout, Error> {
        if let (Some(layout), Some(_)) = (offer.dmabuf, &self.state.dmabufs) {
            if layout.pixels().is_some() {
                return Ok(layout);
            }
            if self.buffers == Buffers::DmaBuf {
                return Err(Error::Capture(format!(
                    "the compositor's DMA-BUF format {layout:?} is not one we read; use \
                     --capture compositor:shm"
                )));
            }
        } else if self.buffers == Buffers::DmaBuf && self.state.dmabufs.is_some() {
            return Err(Error::Capture(
                "the compositor offers no DMA-BUF for its output; use --capture compositor:shm"
                    .into(),
            ));
        }
        let layout = offer.shm.ok_or_else(|| {
            Error::Capture("the compositor described no shared-memory buffer".into())
        })?;
        match layout.pixels() {
            Some(_) => Ok(layout),
            None => Err(Error::Capture(format!(
                "the compositor's pixel format in {layout:?} is not supported"
            ))),
        }
    }

    /// (Re)make every buffer in `layout`: at the first copy, or when the output changed.
    fn make_buffers(&mut self, layout: Layout) -> Result<(), Error> {
        if self.state.slots.copying() {
            return Err(Error::Capture(
                "the output changed size during capture".into(),
            ));
        }
        self.state.slots = Slots::default();
        self.state.buffers.clear();
        self.state.layout = None;
        let buffers = match layout {
            Layout::Shm {
                format,
                width,
                height,
                stride,
            } => {
                let WEnum::Value(format) = format else {
                    return Err(Error::Capture(format!("unknown pixel format {format:?}")));
                };
                (0..SLOTS)
                    .map(|_| {
                        let size = (width, height, stride);
                        ShmBuffer::new(&self.state.shm, &self.state.qh, size, format, ())
                            .map(Buffer::Shm)
                    })
                    .collect::<Result<_, _>>()?
            }
            Layout::DmaBuf {
                format,
                width,
                height,
            } => match self.import(format, width, height) {
                Ok(buffers) => buffers,
                Err(err) if self.buffers == Buffers::Auto => {
                    tracing::warn!(
                        "DMA-BUF capture failed ({err}): capturing through shared memory"
                    );
                    self.state.dmabufs = None;
                    // The next pass chooses shared memory from the same offer.
                    return Ok(());
                }
                Err(err) => return Err(err),
            },
        };
        self.state.slots = Slots::new(buffers.len());
        self.state.buffers = buffers;
        self.state.layout = Some(layout);
        self.meter.buffers(layout.kind());
        tracing::info!(buffers = layout.kind(), ?layout, "capturing");
        Ok(())
    }

    /// Allocate the DMA-BUFs and have the compositor import them, waiting for its answers.
    fn import(&mut self, format: u32, width: u32, height: u32) -> Result<Vec<Buffer>, Error> {
        let Some(dmabufs) = &self.state.dmabufs else {
            return Err(Error::Capture("DMA-BUF capture is off".into()));
        };
        let made: Vec<DmaBuf> = (0..SLOTS)
            .map(|_| dmabufs.gbm.allocate(format, width, height))
            .collect::<Result<_, _>>()?;
        self.state.imports = vec![None; SLOTS];
        for (slot, dmabuf) in made.iter().enumerate() {
            let params = dmabufs.global.create_params(&self.state.qh, slot);
            let modifier = dmabuf.modifier;
            params.add(
                dmabuf.fd.as_fd(),
                0,
                dmabuf.offset,
                dmabuf.stride,
                (modifier >> 32) as u32,
                modifier as u32,
            );
            params.create(
                width as i32,
                height as i32,
                format,
                zwp_linux_buffer_params_v1::Flags::empty(),
            );
        }
        let deadline = Instant::now() + IMPORT_TIMEOUT;
        while self.state.imports.iter().any(Option::is_none) {
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: "the compositor's answer to our DMA-BUFs".into(),
                    timeout: IMPORT_TIMEOUT,
                });
            }
            dispatch(&mut self.queue, &mut self.state, Duration::from_millis(50))?;
        }
        let answers = std::mem::take(&mut self.state.imports);
        let buffers: Vec<_> = answers.into_iter().flatten().flatten().collect();
        if buffers.len() < SLOTS {
            buffers.iter().for_each(wl_buffer::WlBuffer::destroy);
            return Err(Error::Capture(format!(
                "the compositor refused our {width}x{height} {} DMA-BUFs",
                dmabuf::format_name(format)
            )));
        }
        Ok(made
            .into_iter()
            .zip(buffers)
            .map(|(dmabuf, buffer)| Buffer::DmaBuf(Imported { dmabuf, buffer }))
            .collect())
    }
}

impl State {
    /// Ask for the next picture of the output (by default without the pointer: viewers draw
    /// their own).
    fn request(&mut self) {
        let id = self.next_id;
        self.next_id += 1;
        let overlay_cursor = i32::from(self.cursor);
        let frame = self
            .manager
            .capture_output(overlay_cursor, &self.output, &self.qh, id);
        self.copies.push(Copy {
            id,
            frame,
            offer: Offer::default(),
            slot: None,
        });
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
        let offer = state
            .copies
            .iter_mut()
            .find(|c| c.id == *id)
            .map(|c| &mut c.offer);
        match event {
            Event::Buffer {
                format,
                width,
                height,
                stride,
            } => {
                if let Some(offer) = offer {
                    offer.shm = Some(Layout::Shm {
                        format,
                        width,
                        height,
                        stride,
                    });
                    // Before version 3 there is no buffer_done: the shm description is all.
                    offer.done |= frame.version() < 3;
                }
            }
            Event::LinuxDmabuf {
                format,
                width,
                height,
            } => {
                if let Some(offer) = offer {
                    offer.dmabuf = Some(Layout::DmaBuf {
                        format,
                        width,
                        height,
                    });
                }
            }
            Event::BufferDone => {
                if let Some(offer) = offer {
                    offer.done = true;
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
                    state.slots.ready(slot, presented_us);
                }
                state.failures = 0;
            }
            Event::Failed => {
                if let Some(slot) = state.finish(*id) {
                    state.slots.failed(slot);
                }
                state.failures += 1;
                state.meter.failures(1);
                if state.failures >= 10 {
                    let into = match state.layout {
                        Some(Layout::DmaBuf { .. }) => {
                            " (into DMA-BUFs: --capture compositor:shm may work)"
                        }
                        _ => "",
                    };
                    state.error.get_or_insert(Error::Capture(format!(
                        "the compositor failed ten copies in a row{into}"
                    )));
                }
            }
            _ => {}
        }
    }
}

impl Dispatch<ZwpLinuxBufferParamsV1, usize> for State {
    fn event(
        state: &mut Self,
        params: &ZwpLinuxBufferParamsV1,
        event: zwp_linux_buffer_params_v1::Event,
        slot: &usize,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        let answer = match event {
            zwp_linux_buffer_params_v1::Event::Created { buffer } => Ok(buffer),
            zwp_linux_buffer_params_v1::Event::Failed => Err(()),
            _ => return,
        };
        if let Some(place) = state.imports.get_mut(*slot) {
            *place = Some(answer);
        }
        params.destroy();
    }

    event_created_child!(State, ZwpLinuxBufferParamsV1, [
        zwp_linux_buffer_params_v1::EVT_CREATED_OPCODE => (wl_buffer::WlBuffer, ()),
    ]);
}

impl Dispatch<ZwpLinuxDmabufFeedbackV1, ()> for State {
    fn event(
        state: &mut Self,
        feedback: &ZwpLinuxDmabufFeedbackV1,
        event: zwp_linux_dmabuf_feedback_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        match event {
            zwp_linux_dmabuf_feedback_v1::Event::MainDevice { device } => {
                if let Ok(bytes) = <[u8; 8]>::try_from(device.as_slice()) {
                    state.main_device = Some(u64::from_ne_bytes(bytes));
                }
            }
            // The feedback is asked for once, at start.
            zwp_linux_dmabuf_feedback_v1::Event::Done => feedback.destroy(),
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
delegate_noop!(State: ignore ZwpLinuxDmabufV1);

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
