//! wlr virtual pointer (version 2), for the daemon's input only: each request goes straight
//! into the seat's pointer (relative motion also as wp_relative_pointer events; only those
//! while the app has locked the pointer), and a button counts as a discrete input for the
//! pacer.

use smithay::backend::input::{Axis, AxisSource, ButtonState};
use smithay::input::pointer::{AxisFrame, ButtonEvent, MotionEvent, RelativeMotionEvent};
use smithay::reexports::wayland_protocols_wlr::virtual_pointer::v1::server::{
    zwlr_virtual_pointer_manager_v1::{self, ZwlrVirtualPointerManagerV1},
    zwlr_virtual_pointer_v1::{self, ZwlrVirtualPointerV1},
};
use smithay::reexports::wayland_server::protocol::wl_pointer;
use smithay::reexports::wayland_server::{
    Client, DataInit, Dispatch, DisplayHandle, GlobalDispatch, New, WEnum,
};
use smithay::utils::{Logical, Point, SERIAL_COUNTER};

use crate::state::{State, privileged};

const VERSION: u32 = 2;

pub fn global(dh: &DisplayHandle) {
    dh.create_global::<State, ZwlrVirtualPointerManagerV1, _>(VERSION, ());
}

/// One virtual pointer's axis frame being put together until its `frame`.
#[derive(Default)]
pub struct PointerData {
    axis: std::sync::Mutex<Option<AxisFrame>>,
}

impl GlobalDispatch<ZwlrVirtualPointerManagerV1, ()> for State {
    fn bind(
        _: &mut Self,
        _: &DisplayHandle,
        _: &Client,
        resource: New<ZwlrVirtualPointerManagerV1>,
        _: &(),
        data_init: &mut DataInit<'_, Self>,
    ) {
        data_init.init(resource, ());
    }

    fn can_view(client: Client, _: &()) -> bool {
        privileged(&client)
    }
}

impl Dispatch<ZwlrVirtualPointerManagerV1, ()> for State {
    fn request(
        _: &mut Self,
        _: &Client,
        _: &ZwlrVirtualPointerManagerV1,
        request: zwlr_virtual_pointer_manager_v1::Request,
        _: &(),
        _: &DisplayHandle,
        data_init: &mut DataInit<'_, Self>,
    ) {
        match request {
            zwlr_virtual_pointer_manager_v1::Request::CreateVirtualPointer { id, .. }
            | zwlr_virtual_pointer_manager_v1::Request::CreateVirtualPointerWithOutput {
                id, ..
            } => {
                data_init.init(id, PointerData::default());
            }
            _ => {}
        }
    }
}

impl Dispatch<ZwlrVirtualPointerV1, PointerData> for State {
    fn request(
        state: &mut Self,
        _: &Client,
        _: &ZwlrVirtualPointerV1,
        request: zwlr_virtual_pointer_v1::Request,
        data: &PointerData,
        _: &DisplayHandle,
        _: &mut DataInit<'_, Self>,
    ) {
        let Some(pointer) = state.seat.get_pointer() else {
            return;
        };
        // A frame's time is that of its timed requests (axis_source carries none).
        let axis = |f: &mut dyn FnMut(AxisFrame) -> AxisFrame, time: Option<u32>| {
            if let Ok(mut axis) = data.axis.lock() {
                let mut frame = axis.take().unwrap_or_else(|| AxisFrame::new(0));
                if let Some(time) = time {
                    frame.time = time;
                }
                *axis = Some(f(frame));
            }
        };
        match request {
            zwlr_virtual_pointer_v1::Request::Motion { time, dx, dy } => {
                let delta: Point<f64, Logical> = (dx, dy).into();
                let locked = state.pointer_locked(&pointer);
                let at = if locked {
                    pointer.current_location()
                } else {
                    state.clamp(pointer.current_location() + delta)
                };
                let focus = state.surface_under(at);
                if !locked {
                    pointer.motion(
                        state,
                        focus.clone(),
                        &MotionEvent {
                            location: at,
                            serial: SERIAL_COUNTER.next_serial(),
                            time,
                        },
                    );
                }
                pointer.relative_motion(
                    state,
                    focus,
                    &RelativeMotionEvent {
                        delta,
                        delta_unaccel: delta,
                        utime: u64::from(time) * 1000,
                    },
                );
            }
            zwlr_virtual_pointer_v1::Request::MotionAbsolute {
                time,
                x,
                y,
                x_extent,
                y_extent,
            } => {
                // A locked pointer stays where the app locked it.
                if state.pointer_locked(&pointer) {
                    return;
                }
                let Some(at) = state.place(x, y, x_extent, y_extent) else {
                    return;
                };
                let focus = state.surface_under(at);
                pointer.motion(
                    state,
                    focus,
                    &MotionEvent {
                        location: at,
                        serial: SERIAL_COUNTER.next_serial(),
                        time,
                    },
                );
            }
            zwlr_virtual_pointer_v1::Request::Button {
                time,
                button,
                state: pressed,
            } => {
                let pressed = matches!(pressed, WEnum::Value(wl_pointer::ButtonState::Pressed));
                pointer.button(
                    state,
                    &ButtonEvent {
                        serial: SERIAL_COUNTER.next_serial(),
                        time,
                        button,
                        state: if pressed {
                            ButtonState::Pressed
                        } else {
                            ButtonState::Released
                        },
                    },
                );
                state.discrete_input();
            }
            zwlr_virtual_pointer_v1::Request::Axis {
                time,
                axis: a,
                value,
            } => {
                if let Some(a) = axis_of(a) {
                    axis(&mut |f| f.value(a, value), Some(time));
                }
            }
            zwlr_virtual_pointer_v1::Request::AxisSource { axis_source } => {
                let source = match axis_source {
                    WEnum::Value(wl_pointer::AxisSource::Finger) => AxisSource::Finger,
                    WEnum::Value(wl_pointer::AxisSource::Continuous) => AxisSource::Continuous,
                    WEnum::Value(wl_pointer::AxisSource::WheelTilt) => AxisSource::WheelTilt,
                    _ => AxisSource::Wheel,
                };
                axis(&mut |f| f.source(source), None);
            }
            zwlr_virtual_pointer_v1::Request::AxisStop { time, axis: a } => {
                if let Some(a) = axis_of(a) {
                    axis(&mut |f| f.stop(a), Some(time));
                }
            }
            zwlr_virtual_pointer_v1::Request::AxisDiscrete {
                time,
                axis: a,
                value,
                discrete,
            } => {
                if let Some(a) = axis_of(a) {
                    axis(
                        &mut |f| f.value(a, value).v120(a, discrete.saturating_mul(120)),
                        Some(time),
                    );
                }
            }
            zwlr_virtual_pointer_v1::Request::Frame => {
                let frame = data.axis.lock().ok().and_then(|mut a| a.take());
                if let Some(frame) = frame {
                    pointer.axis(state, frame);
                }
                pointer.frame(state);
            }
            _ => {}
        }
    }
}

fn axis_of(axis: WEnum<wl_pointer::Axis>) -> Option<Axis> {
    match axis {
        WEnum::Value(wl_pointer::Axis::VerticalScroll) => Some(Axis::Vertical),
        WEnum::Value(wl_pointer::Axis::HorizontalScroll) => Some(Axis::Horizontal),
        _ => None,
    }
}

impl State {
    /// A point given as `x` of `x_extent` and `y` of `y_extent` across the output, on it;
    /// `None` for an empty extent.
    pub(crate) fn place(
        &self,
        x: u32,
        y: u32,
        x_extent: u32,
        y_extent: u32,
    ) -> Option<Point<f64, Logical>> {
        if x_extent == 0 || y_extent == 0 {
            return None;
        }
        let at = (
            f64::from(x) / f64::from(x_extent) * f64::from(self.width),
            f64::from(y) / f64::from(y_extent) * f64::from(self.height),
        );
        Some(self.clamp(at.into()))
    }

    /// A point kept on the output.
    fn clamp(&self, at: Point<f64, Logical>) -> Point<f64, Logical> {
        (
            at.x.clamp(0.0, f64::from(self.width - 1)),
            at.y.clamp(0.0, f64::from(self.height - 1)),
        )
            .into()
    }
}
