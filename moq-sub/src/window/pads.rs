//! Gamepads through SDL's game controller API: any pad SDL knows a mapping for (and virtual
//! ones) appears in the W3C standard layout the input format uses. Pads come and go while
//! playing; each takes the lowest free index (0..15) and keeps it until unplugged.

use lantern_proto::input::{Event as Input, Gamepad, MAX_GAMEPADS};
use sdl2::GameControllerSubsystem;
use sdl2::controller::{Axis, Button, GameController};
use sdl2::event::Event;

/// A trigger pulled past this (of 65535) also presses its standard button (6 or 7), as
/// XInput's threshold does.
const TRIGGER_PRESSED: u16 = 30 * 257;

struct Pad {
    instance: u32,
    /// Held open: SDL sends a pad's events only while it is.
    _controller: GameController,
    state: Gamepad,
}

pub struct Pads {
    subsystem: GameControllerSubsystem,
    pads: Vec<Pad>,
}

impl Pads {
    pub fn new(subsystem: GameControllerSubsystem) -> Self {
        Self {
            subsystem,
            pads: Vec::new(),
        }
    }

    /// A controller event: the changed pad's whole state, if it changed.
    pub fn event(&mut self, event: &Event) -> Option<Input> {
        match *event {
            Event::ControllerDeviceAdded { which, .. } => self.add(which),
            Event::ControllerDeviceRemoved { which, .. } => {
                let at = self.pads.iter().position(|p| p.instance == which)?;
                let pad = self.pads.remove(at);
                tracing::info!(index = pad.state.index, "gamepad gone");
                Some(Input::Gamepad(Gamepad {
                    index: pad.state.index,
                    connected: false,
                    ..Gamepad::default()
                }))
            }
            Event::ControllerButtonDown { which, button, .. }
            | Event::ControllerButtonUp { which, button, .. } => {
                let down = matches!(event, Event::ControllerButtonDown { .. });
                let bit = standard_button(button)?;
                let pad = self.pads.iter_mut().find(|p| p.instance == which)?;
                let before = pad.state.buttons;
                pad.state.buttons = if down { before | bit } else { before & !bit };
                (pad.state.buttons != before).then_some(Input::Gamepad(pad.state))
            }
            Event::ControllerAxisMotion {
                which, axis, value, ..
            } => {
                let pad = self.pads.iter_mut().find(|p| p.instance == which)?;
                let before = pad.state;
                set_axis(&mut pad.state, axis, value);
                (pad.state != before).then_some(Input::Gamepad(pad.state))
            }
            _ => None,
        }
    }

    /// Forget what is held (the window lost focus and the host released it): the next event
    /// of a pad starts from rest.
    pub fn rest(&mut self) {
        for pad in &mut self.pads {
            pad.state = Gamepad {
                index: pad.state.index,
                connected: true,
                ..Gamepad::default()
            };
        }
    }

    fn add(&mut self, device: u32) -> Option<Input> {
        let controller = match self.subsystem.open(device) {
            Ok(controller) => controller,
            Err(err) => {
                tracing::warn!(device, %err, "cannot open a gamepad");
                return None;
            }
        };
        let instance = controller.instance_id();
        if self.pads.iter().any(|p| p.instance == instance) {
            return None;
        }
        let Some(index) = (0..MAX_GAMEPADS).find(|i| self.pads.iter().all(|p| p.state.index != *i))
        else {
            tracing::warn!(
                name = controller.name(),
                "more than {MAX_GAMEPADS} gamepads: ignored"
            );
            return None;
        };
        tracing::info!(index, name = controller.name(), "gamepad");
        let state = Gamepad {
            index,
            connected: true,
            ..Gamepad::default()
        };
        self.pads.push(Pad {
            instance,
            _controller: controller,
            state,
        });
        Some(Input::Gamepad(state))
    }
}

/// The W3C standard gamepad's bit for an SDL button; SDL's extras (paddles, touchpad, misc)
/// have none.
fn standard_button(button: Button) -> Option<u32> {
    let index = match button {
        Button::A => 0,
        Button::B => 1,
        Button::X => 2,
        Button::Y => 3,
        Button::LeftShoulder => 4,
        Button::RightShoulder => 5,
        Button::Back => 8,
        Button::Start => 9,
        Button::LeftStick => 10,
        Button::RightStick => 11,
        Button::DPadUp => 12,
        Button::DPadDown => 13,
        Button::DPadLeft => 14,
        Button::DPadRight => 15,
        Button::Guide => 16,
        _ => return None,
    };
    Some(1 << index)
}

/// SDL's axes: sticks -32768..32767 with + right and down, as the format's; triggers
/// 0..32767, scaled to 0..65535 (and pressing buttons 6 and 7 past the threshold).
fn set_axis(state: &mut Gamepad, axis: Axis, value: i16) {
    let trigger = |value: i16| (u32::from(value.max(0) as u16) * 65535 / 32767) as u16;
    let (slot, bit) = match axis {
        Axis::LeftX => return state.sticks[0] = value,
        Axis::LeftY => return state.sticks[1] = value,
        Axis::RightX => return state.sticks[2] = value,
        Axis::RightY => return state.sticks[3] = value,
        Axis::TriggerLeft => (0, 1 << 6),
        Axis::TriggerRight => (1, 1 << 7),
    };
    state.triggers[slot] = trigger(value);
    if state.triggers[slot] > TRIGGER_PRESSED {
        state.buttons |= bit;
    } else {
        state.buttons &= !bit;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdl_buttons_take_the_standard_layout() {
        assert_eq!(standard_button(Button::A), Some(1));
        assert_eq!(standard_button(Button::Start), Some(1 << 9));
        assert_eq!(standard_button(Button::Guide), Some(1 << 16));
        assert_eq!(standard_button(Button::Paddle1), None);
    }

    #[test]
    fn triggers_scale_and_press_their_buttons() {
        let mut state = Gamepad::default();
        set_axis(&mut state, Axis::TriggerRight, 32767);
        assert_eq!(state.triggers, [0, 65535]);
        assert_eq!(state.buttons, 1 << 7);
        set_axis(&mut state, Axis::TriggerRight, 1000);
        assert_eq!(state.buttons, 0, "below the threshold the button is up");
        set_axis(&mut state, Axis::LeftY, -32768);
        assert_eq!(state.sticks, [0, -32768, 0, 0]);
    }
}
