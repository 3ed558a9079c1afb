//! Viewers' touches into the seat: `lantern_touch_v1` (protocols/lantern-touch-v1.xml, ours:
//! wlroots has no virtual touch device), for the daemon's input only. A touch goes to the
//! surface under the point where it went down, as on a touch screen; a finger down or up is a
//! discrete input for the pacer. Each device's fingers have seat slots of their own (so two
//! viewers' touches do not mix), [`SLOTS`] of them, and there are [`DEVICES`] sets of slots
//! in turn: a client cannot grow the seat's state.

use smithay::input::touch::{DownEvent, MotionEvent, UpEvent};
use smithay::reexports::wayland_server::{
    Client, DataInit, Dispatch, DisplayHandle, GlobalDispatch, New,
};
use smithay::utils::SERIAL_COUNTER;

use crate::state::{State, privileged};

pub mod protocol {
    //! The server side of lantern-touch-v1, generated from its XML.
    #![allow(non_upper_case_globals, non_camel_case_types, unused_imports)]
    #![allow(missing_docs, clippy::all)]
    use smithay::reexports::wayland_server;
    use smithay::reexports::wayland_server::protocol::*;

    pub mod __interfaces {
        use smithay::reexports::wayland_server::backend as wayland_backend;
        use smithay::reexports::wayland_server::protocol::__interfaces::*;
        wayland_scanner::generate_interfaces!("protocols/lantern-touch-v1.xml");
    }
    use self::__interfaces::*;
    use smithay::reexports::wayland_server::backend as wayland_backend;

    wayland_scanner::generate_server_code!("protocols/lantern-touch-v1.xml");
}

use protocol::lantern_touch_manager_v1::{self, LanternTouchManagerV1};
use protocol::lantern_touch_v1::{self, LanternTouchV1};

const VERSION: u32 = 1;
/// Fingers at once, on one device.
pub const SLOTS: u32 = 10;
/// Devices whose slots stay apart (the next one shares the first's).
pub const DEVICES: u32 = 8;

/// A manager's count of the devices it made.
#[derive(Default)]
pub struct ManagerData(std::sync::atomic::AtomicU32);

/// A device's first seat slot.
pub struct TouchData {
    base: u32,
}

pub fn global(dh: &DisplayHandle) {
    dh.create_global::<State, LanternTouchManagerV1, _>(VERSION, ());
}

impl GlobalDispatch<LanternTouchManagerV1, ()> for State {
    fn bind(
        _: &mut Self,
        _: &DisplayHandle,
        _: &Client,
        resource: New<LanternTouchManagerV1>,
        _: &(),
        data_init: &mut DataInit<'_, Self>,
    ) {
        data_init.init(resource, ManagerData::default());
    }

    fn can_view(client: Client, _: &()) -> bool {
        privileged(&client)
    }
}

impl Dispatch<LanternTouchManagerV1, ManagerData> for State {
    fn request(
        _: &mut Self,
        _: &Client,
        _: &LanternTouchManagerV1,
        request: lantern_touch_manager_v1::Request,
        made: &ManagerData,
        _: &DisplayHandle,
        data_init: &mut DataInit<'_, Self>,
    ) {
        if let lantern_touch_manager_v1::Request::CreateTouch { id } = request {
            let n = made.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let base = n % DEVICES * SLOTS;
            data_init.init(id, TouchData { base });
        }
    }
}

impl Dispatch<LanternTouchV1, TouchData> for State {
    fn request(
        state: &mut Self,
        _: &Client,
        _: &LanternTouchV1,
        request: lantern_touch_v1::Request,
        data: &TouchData,
        _: &DisplayHandle,
        _: &mut DataInit<'_, Self>,
    ) {
        let Some(touch) = state.seat.get_touch() else {
            return;
        };
        let seat_slot = |slot: u32| Some(data.base + slot).into();
        let down = matches!(request, lantern_touch_v1::Request::Down { .. });
        match request {
            lantern_touch_v1::Request::Down {
                time,
                slot,
                x,
                y,
                x_extent,
                y_extent,
            }
            | lantern_touch_v1::Request::Motion {
                time,
                slot,
                x,
                y,
                x_extent,
                y_extent,
            } if slot < SLOTS => {
                let Some(location) = state.place(x, y, x_extent, y_extent) else {
                    return;
                };
                let focus = state.surface_under(location);
                let slot = seat_slot(slot);
                if down {
                    let serial = SERIAL_COUNTER.next_serial();
                    let event = DownEvent {
                        slot,
                        location,
                        serial,
                        time,
                    };
                    touch.down(state, focus, &event);
                    state.discrete_input();
                } else {
                    let event = MotionEvent {
                        slot,
                        location,
                        time,
                    };
                    touch.motion(state, focus, &event);
                }
            }
            lantern_touch_v1::Request::Up { time, slot } if slot < SLOTS => {
                let event = UpEvent {
                    slot: seat_slot(slot),
                    serial: SERIAL_COUNTER.next_serial(),
                    time,
                };
                touch.up(state, &event);
                state.discrete_input();
            }
            lantern_touch_v1::Request::Cancel => touch.cancel(state),
            lantern_touch_v1::Request::Frame => touch.frame(state),
            _ => {}
        }
    }
}
