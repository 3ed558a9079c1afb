//! The test app's input side: it takes the seat's keyboard, pointer and touch, logs each event it
//! receives as a JSON line (`--input-log`), and counts presses for the echo strip it draws
//! under the stamp, so a viewer can pair each press with the first picture showing it.

use std::io::Write;
use std::os::fd::OwnedFd;

use lantern_proto::clock::now_unix_us;
use lantern_proto::input::{KEY_USAGES, keys};
use lantern_proto::stamp::Echo;
use serde_json::json;
use wayland_client::protocol::{wl_keyboard, wl_pointer, wl_seat, wl_touch};
use wayland_client::{Connection, Dispatch, QueueHandle, WEnum};
use xkbcommon::xkb;

use crate::app::State;

/// Whether evdev key `key` is a modifier (Ctrl, Shift, Alt, Meta): the echo counts presses
/// as `lantern_proto::input::presses` does, which leaves them out.
fn is_modifier(key: u32) -> bool {
    KEY_USAGES
        .filter(|&usage| keys::is_modifier(usage))
        .any(|usage| keys::evdev_of_usage(usage).map(u32::from) == Some(key))
}

/// What the app knows of its input.
#[derive(Default)]
pub struct Input {
    log: Option<std::fs::File>,
    keymap: Option<(xkb::Keymap, xkb::State)>,
    pub echo: Echo,
    keyboard: Option<wl_keyboard::WlKeyboard>,
    pointer: Option<wl_pointer::WlPointer>,
    touch: Option<wl_touch::WlTouch>,
}

impl Input {
    pub fn new(log: Option<&std::path::Path>) -> anyhow::Result<Self> {
        let log = log.map(std::fs::File::create).transpose()?;
        Ok(Self {
            log,
            ..Self::default()
        })
    }

    fn record(&mut self, mut line: serde_json::Value) {
        line["t"] = now_unix_us().into();
        if let Some(log) = &mut self.log {
            // One write per line, so a reader never sees half of one.
            let _ = log.write_all(format!("{line}\n").as_bytes());
        }
    }

    fn pressed(&mut self) {
        self.echo.presses = self.echo.presses.wrapping_add(1);
        self.echo.received_us = now_unix_us();
    }

    fn key(&mut self, key: u32, down: bool) {
        let utf8 = self.keymap.as_mut().map(|(_, state)| {
            let code = xkb::Keycode::new(key + 8);
            let text = if down {
                state.key_get_utf8(code)
            } else {
                String::new()
            };
            let direction = if down {
                xkb::KeyDirection::Down
            } else {
                xkb::KeyDirection::Up
            };
            state.update_key(code, direction);
            text
        });
        if down && !is_modifier(key) {
            self.pressed();
        }
        self.record(json!({ "kind": "key", "key": key, "down": down, "utf8": utf8 }));
    }

    fn keymap(&mut self, fd: OwnedFd, size: u32) {
        let context = xkb::Context::new(xkb::CONTEXT_NO_FLAGS);
        // SAFETY: the compositor's keymap fd and size, as wl_keyboard hands them over.
        let keymap = unsafe {
            xkb::Keymap::new_from_fd(
                &context,
                fd,
                size as usize,
                xkb::KEYMAP_FORMAT_TEXT_V1,
                xkb::KEYMAP_COMPILE_NO_FLAGS,
            )
        };
        match keymap {
            Ok(Some(keymap)) => {
                let state = xkb::State::new(&keymap);
                self.keymap = Some((keymap, state));
            }
            _ => eprintln!("lantern-bench app: cannot read the compositor's keymap"),
        }
    }
}

impl Dispatch<wl_seat::WlSeat, ()> for State {
    fn event(
        state: &mut Self,
        seat: &wl_seat::WlSeat,
        event: wl_seat::Event,
        _: &(),
        _: &Connection,
        qh: &QueueHandle<Self>,
    ) {
        let input = &mut state.input;
        if let wl_seat::Event::Capabilities {
            capabilities: WEnum::Value(caps),
        } = event
        {
            if caps.contains(wl_seat::Capability::Keyboard) && input.keyboard.is_none() {
                input.keyboard = Some(seat.get_keyboard(qh, ()));
            }
            if caps.contains(wl_seat::Capability::Pointer) && input.pointer.is_none() {
                input.pointer = Some(seat.get_pointer(qh, ()));
            }
            if caps.contains(wl_seat::Capability::Touch) && input.touch.is_none() {
                input.touch = Some(seat.get_touch(qh, ()));
            }
        }
    }
}

impl Dispatch<wl_keyboard::WlKeyboard, ()> for State {
    fn event(
        state: &mut Self,
        _: &wl_keyboard::WlKeyboard,
        event: wl_keyboard::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        let input = &mut state.input;
        match event {
            wl_keyboard::Event::Keymap { fd, size, .. } => input.keymap(fd, size),
            wl_keyboard::Event::Key {
                key,
                state: WEnum::Value(key_state),
                ..
            } => input.key(key, key_state == wl_keyboard::KeyState::Pressed),
            wl_keyboard::Event::Enter { keys, .. } => {
                input.record(json!({ "kind": "keyboard_enter", "held": keys.len() / 4 }))
            }
            _ => {}
        }
    }
}

impl Dispatch<wl_pointer::WlPointer, ()> for State {
    fn event(
        state: &mut Self,
        _: &wl_pointer::WlPointer,
        event: wl_pointer::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        let input = &mut state.input;
        match event {
            wl_pointer::Event::Enter {
                surface_x,
                surface_y,
                ..
            }
            | wl_pointer::Event::Motion {
                surface_x,
                surface_y,
                ..
            } => input.record(json!({ "kind": "motion", "x": surface_x, "y": surface_y })),
            wl_pointer::Event::Button {
                button,
                state: WEnum::Value(button_state),
                ..
            } => {
                let down = button_state == wl_pointer::ButtonState::Pressed;
                if down {
                    input.pressed();
                }
                input.record(json!({ "kind": "button", "button": button, "down": down }));
            }
            wl_pointer::Event::AxisDiscrete { axis, discrete } => {
                let axis = matches!(axis, WEnum::Value(wl_pointer::Axis::HorizontalScroll));
                input.record(json!({ "kind": "wheel", "horizontal": axis, "notches": discrete }));
            }
            _ => {}
        }
    }
}

/// Touches are logged, not counted: a viewer counts keys and buttons as presses.
impl Dispatch<wl_touch::WlTouch, ()> for State {
    fn event(
        state: &mut Self,
        _: &wl_touch::WlTouch,
        event: wl_touch::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        let line = match event {
            wl_touch::Event::Down { id, x, y, .. } => {
                json!({ "kind": "touch", "phase": "down", "id": id, "x": x, "y": y })
            }
            wl_touch::Event::Motion { id, x, y, .. } => {
                json!({ "kind": "touch", "phase": "move", "id": id, "x": x, "y": y })
            }
            wl_touch::Event::Up { id, .. } => json!({ "kind": "touch", "phase": "up", "id": id }),
            wl_touch::Event::Cancel => json!({ "kind": "touch", "phase": "cancel" }),
            _ => return,
        };
        state.input.record(line);
    }
}
