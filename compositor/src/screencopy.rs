//! wlr-screencopy (version 3), for the daemon's capture only, completed on the app's commit:
//! a `copy_with_damage` waits for the next new picture and is filled the moment the app
//! commits it (a plain `copy` is filled at once), stamped with the commit's time. The picture
//! is always the whole output in XRGB8888, into the client's shared memory, with the pointer
//! drawn in where the capture asks for it (`overlay_cursor`).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use smithay::reexports::wayland_protocols_wlr::screencopy::v1::server::{
    zwlr_screencopy_frame_v1::{self, ZwlrScreencopyFrameV1},
    zwlr_screencopy_manager_v1::{self, ZwlrScreencopyManagerV1},
};
use smithay::reexports::wayland_server::backend::ClientId;
use smithay::reexports::wayland_server::protocol::{wl_buffer::WlBuffer, wl_shm};
use smithay::reexports::wayland_server::{
    Client, DataInit, Dispatch, DisplayHandle, GlobalDispatch, New, Resource,
};
use smithay::wayland::shm::{with_buffer_contents, with_buffer_contents_mut};

use crate::paint::Target;
use crate::state::{State, privileged};

const VERSION: u32 = 3;

/// Copies waiting for a picture, and which picture each client saw last.
pub struct Screencopy {
    pending: VecDeque<Pending>,
    /// Pictures the app committed (0: none yet).
    generation: u64,
    /// When the newest one was committed (monotonic).
    committed: Duration,
    delivered: HashMap<ClientId, u64>,
    /// The last copy asked for the pointer in the picture: its moves are new pictures then.
    cursor: bool,
}

struct Pending {
    frame: ZwlrScreencopyFrameV1,
    buffer: WlBuffer,
    with_damage: bool,
    cursor: bool,
}

/// A frame object's state: one copy each, with the pointer or not.
#[derive(Default)]
pub struct FrameData {
    used: Mutex<bool>,
    cursor: bool,
}

impl Screencopy {
    pub fn new(dh: &DisplayHandle) -> Self {
        dh.create_global::<State, ZwlrScreencopyManagerV1, _>(VERSION, ());
        Self {
            pending: VecDeque::new(),
            generation: 0,
            committed: Duration::ZERO,
            delivered: HashMap::new(),
            cursor: false,
        }
    }

    pub fn wants_cursor(&self) -> bool {
        self.cursor
    }

    /// The picture changed at `now`.
    pub fn changed(&mut self, now: Duration) {
        self.generation += 1;
        self.committed = now;
    }
}

/// Fill every waiting copy that can be: a plain copy, or one whose client has not seen the
/// newest picture (one copy per client per picture).
pub fn serve(state: &mut State) {
    let mut waiting = VecDeque::new();
    while let Some(pending) = state.screencopy.pending.pop_front() {
        if !pending.frame.is_alive() {
            continue;
        }
        let client = pending.frame.client().map(|c| c.id());
        let seen = client
            .as_ref()
            .and_then(|c| state.screencopy.delivered.get(c).copied())
            .unwrap_or(0);
        let generation = state.screencopy.generation;
        if pending.with_damage && (generation == 0 || generation <= seen) {
            waiting.push_back(pending);
            continue;
        }
        fill(state, &pending);
        if let Some(client) = client {
            state.screencopy.delivered.insert(client, generation);
        }
    }
    state.screencopy.pending = waiting;
    // Bounded: clients that come and go (on the control socket) leave no trace for long.
    if state.screencopy.delivered.len() > MAX_CLIENTS {
        let screencopy = &mut state.screencopy;
        let live: Vec<ClientId> = screencopy
            .pending
            .iter()
            .filter_map(|p| Some(p.frame.client()?.id()))
            .collect();
        screencopy.delivered.retain(|id, _| live.contains(id));
    }
}

/// Capture clients whose last picture is remembered.
const MAX_CLIENTS: usize = 16;

fn fill(state: &mut State, pending: &Pending) {
    let (width, height) = (state.width, state.height);
    // The capture's buffer is mapped here and written below while each client buffer is
    // read under smithay's guard (which cannot be taken twice at once). The daemon's buffers
    // are sealed against shrinking; the pool cannot be remapped before this returns, since no
    // request is dispatched meanwhile.
    let mapped = with_buffer_contents_mut(&pending.buffer, |ptr, len, data| {
        (ptr as usize, len, data.offset, data.stride)
    });
    let Ok((ptr, len, offset, stride)) = mapped else {
        pending.frame.failed();
        return;
    };
    // Safety: the mapping of `len` bytes stays in place until this function returns (above).
    let pool = unsafe { std::slice::from_raw_parts_mut(ptr as *mut u8, len) };
    let Some(pixels) = pool.get_mut(offset.max(0) as usize..) else {
        pending.frame.failed();
        return;
    };
    let mut target = Target {
        data: pixels,
        width,
        height,
        stride,
    };
    if !target.fits() {
        pending.frame.failed();
        return;
    }
    let direct = state.paint(&mut target, pending.cursor);
    let time = if state.screencopy.generation == 0 {
        state.now()
    } else {
        state.screencopy.committed
    };
    pending
        .frame
        .flags(zwlr_screencopy_frame_v1::Flags::empty());
    if pending.with_damage {
        pending.frame.damage(0, 0, width as u32, height as u32);
    }
    let secs = time.as_secs();
    pending
        .frame
        .ready((secs >> 32) as u32, secs as u32, time.subsec_nanos());
    if state.screencopy.generation > 0 {
        state.taken(direct, time);
    }
}

impl GlobalDispatch<ZwlrScreencopyManagerV1, ()> for State {
    fn bind(
        _: &mut Self,
        _: &DisplayHandle,
        _: &Client,
        resource: New<ZwlrScreencopyManagerV1>,
        _: &(),
        data_init: &mut DataInit<'_, Self>,
    ) {
        data_init.init(resource, ());
    }

    fn can_view(client: Client, _: &()) -> bool {
        privileged(&client)
    }
}

impl Dispatch<ZwlrScreencopyManagerV1, ()> for State {
    fn request(
        state: &mut Self,
        _: &Client,
        _: &ZwlrScreencopyManagerV1,
        request: zwlr_screencopy_manager_v1::Request,
        _: &(),
        _: &DisplayHandle,
        data_init: &mut DataInit<'_, Self>,
    ) {
        let (frame, overlay_cursor) = match request {
            zwlr_screencopy_manager_v1::Request::CaptureOutput {
                frame,
                overlay_cursor,
                ..
            } => (frame, overlay_cursor != 0),
            zwlr_screencopy_manager_v1::Request::CaptureOutputRegion { frame, .. } => {
                // Only whole outputs are offered.
                data_init.init(frame, FrameData::default()).failed();
                return;
            }
            _ => return,
        };
        let data = FrameData {
            used: Mutex::new(false),
            cursor: overlay_cursor,
        };
        let frame = data_init.init(frame, data);
        let (width, height) = (state.width as u32, state.height as u32);
        frame.buffer(wl_shm::Format::Xrgb8888, width, height, width * 4);
        if frame.version() >= 3 {
            frame.buffer_done();
        }
    }
}

impl Dispatch<ZwlrScreencopyFrameV1, FrameData> for State {
    fn request(
        state: &mut Self,
        _: &Client,
        frame: &ZwlrScreencopyFrameV1,
        request: zwlr_screencopy_frame_v1::Request,
        data: &FrameData,
        _: &DisplayHandle,
        _: &mut DataInit<'_, Self>,
    ) {
        let (buffer, with_damage) = match request {
            zwlr_screencopy_frame_v1::Request::Copy { buffer } => (buffer, false),
            zwlr_screencopy_frame_v1::Request::CopyWithDamage { buffer } => (buffer, true),
            zwlr_screencopy_frame_v1::Request::Destroy => {
                state.screencopy.pending.retain(|p| &p.frame != frame);
                return;
            }
            _ => return,
        };
        let Ok(mut used) = data.used.lock() else {
            return;
        };
        if std::mem::replace(&mut *used, true) {
            frame.post_error(
                zwlr_screencopy_frame_v1::Error::AlreadyUsed,
                "this frame was already copied",
            );
            return;
        }
        let (width, height) = (state.width, state.height);
        let fits = with_buffer_contents(&buffer, |_, _, data| {
            data.format == wl_shm::Format::Xrgb8888
                && data.width == width
                && data.height == height
                && data.stride >= width * 4
        });
        if !matches!(fits, Ok(true)) {
            frame.post_error(
                zwlr_screencopy_frame_v1::Error::InvalidBuffer,
                "the buffer is not the shared-memory XRGB8888 picture the frame described",
            );
            return;
        }
        state.screencopy.cursor = data.cursor;
        state.screencopy.pending.push_back(Pending {
            frame: frame.clone(),
            buffer,
            with_damage,
            cursor: data.cursor,
        });
        serve(state);
    }

    fn destroyed(state: &mut Self, _: ClientId, frame: &ZwlrScreencopyFrameV1, _: &FrameData) {
        state.screencopy.pending.retain(|p| &p.frame != frame);
    }
}
