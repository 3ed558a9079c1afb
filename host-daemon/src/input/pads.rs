//! Gamepads: each viewer's pad becomes a virtual Xbox-style controller through uinput (the
//! evdev crate), which games find as they find a real one. Where /dev/uinput is missing or
//! closed to the daemon, pad state is still received, validated and counted, and one warning
//! says why it goes nowhere.

use std::collections::HashMap;

use evdev::uinput::VirtualDevice;
use evdev::{
    AbsInfo, AbsoluteAxisCode, AttributeSet, EventType, InputEvent, InputId, KeyCode,
    UinputAbsSetup,
};
use lantern_proto::input::Gamepad;

/// The W3C standard gamepad's buttons 0..=16 as evdev codes; 12..=15 (the d-pad) go to the
/// hat axes instead.
const BUTTONS: [KeyCode; 17] = [
    KeyCode::BTN_SOUTH,
    KeyCode::BTN_EAST,
    KeyCode::BTN_WEST,
    KeyCode::BTN_NORTH,
    KeyCode::BTN_TL,
    KeyCode::BTN_TR,
    KeyCode::BTN_TL2,
    KeyCode::BTN_TR2,
    KeyCode::BTN_SELECT,
    KeyCode::BTN_START,
    KeyCode::BTN_THUMBL,
    KeyCode::BTN_THUMBR,
    KeyCode::BTN_DPAD_UP,
    KeyCode::BTN_DPAD_DOWN,
    KeyCode::BTN_DPAD_LEFT,
    KeyCode::BTN_DPAD_RIGHT,
    KeyCode::BTN_MODE,
];
const STICKS: [AbsoluteAxisCode; 4] = [
    AbsoluteAxisCode::ABS_X,
    AbsoluteAxisCode::ABS_Y,
    AbsoluteAxisCode::ABS_RX,
    AbsoluteAxisCode::ABS_RY,
];
const TRIGGERS: [AbsoluteAxisCode; 2] = [AbsoluteAxisCode::ABS_Z, AbsoluteAxisCode::ABS_RZ];

/// Where pads go.
pub enum Pads {
    Uinput(HashMap<(u64, u8), VirtualDevice>),
    /// No uinput here: states are counted, with this reason given once.
    Unavailable(String),
}

impl Pads {
    /// uinput when /dev/uinput can be opened for writing.
    pub fn open() -> Self {
        match std::fs::OpenOptions::new().write(true).open("/dev/uinput") {
            Ok(_) => Self::Uinput(HashMap::new()),
            Err(err) => Self::Unavailable(format!(
                "/dev/uinput: {err}: gamepad input is received and counted but not injected"
            )),
        }
    }

    /// Apply one pad's state from viewer `viewer`; false when it went nowhere.
    pub fn apply(&mut self, viewer: u64, pad: &Gamepad) -> Result<bool, std::io::Error> {
        let Self::Uinput(devices) = self else {
            return Ok(false);
        };
        let key = (viewer, pad.index);
        if !pad.connected {
            // Released first (the gate sends an all-zero state), then unplugged.
            if let Some(mut device) = devices.remove(&key) {
                device.emit(&events(pad))?;
            }
            return Ok(true);
        }
        let device = match devices.entry(key) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => entry.insert(create(pad.index)?),
        };
        device.emit(&events(pad))?;
        Ok(true)
    }

    /// Unplug a viewer's pads.
    pub fn forget(&mut self, viewer: u64) {
        if let Self::Uinput(devices) = self {
            devices.retain(|(owner, _), _| *owner != viewer);
        }
    }
}

fn create(index: u8) -> Result<VirtualDevice, std::io::Error> {
    let mut keys = AttributeSet::<KeyCode>::new();
    for button in BUTTONS {
        keys.insert(button);
    }
    let stick = AbsInfo::new(0, -32768, 32767, 16, 128, 0);
    let trigger = AbsInfo::new(0, 0, 65535, 0, 0, 0);
    let hat = AbsInfo::new(0, -1, 1, 0, 0, 0);
    let name = format!("Lantern pad {index}");
    let mut builder = VirtualDevice::builder()?
        .name(&name)
        // Microsoft's Xbox 360 pad ids: games and SDL map it without asking.
        .input_id(InputId::new(
            evdev::BusType::BUS_USB,
            0x045e,
            0x028e,
            0x0110,
        ))
        .with_keys(&keys)?;
    for axis in STICKS {
        builder = builder.with_absolute_axis(&UinputAbsSetup::new(axis, stick))?;
    }
    for axis in TRIGGERS {
        builder = builder.with_absolute_axis(&UinputAbsSetup::new(axis, trigger))?;
    }
    for axis in [AbsoluteAxisCode::ABS_HAT0X, AbsoluteAxisCode::ABS_HAT0Y] {
        builder = builder.with_absolute_axis(&UinputAbsSetup::new(axis, hat))?;
    }
    builder.build()
}

/// A pad's whole state as evdev events (emit adds the SYN_REPORT).
fn events(pad: &Gamepad) -> Vec<InputEvent> {
    let pressed = |bit: usize| i32::from(pad.buttons & (1 << bit) != 0);
    let key = |code: KeyCode, value| InputEvent::new(EventType::KEY.0, code.0, value);
    let abs = |code: AbsoluteAxisCode, value| InputEvent::new(EventType::ABSOLUTE.0, code.0, value);
    let mut out: Vec<InputEvent> = BUTTONS
        .iter()
        .enumerate()
        .map(|(bit, &code)| key(code, pressed(bit)))
        .collect();
    out.extend(
        STICKS
            .iter()
            .zip(pad.sticks)
            .map(|(&a, v)| abs(a, v.into())),
    );
    out.extend(
        TRIGGERS
            .iter()
            .zip(pad.triggers)
            .map(|(&a, v)| abs(a, v.into())),
    );
    out.push(abs(AbsoluteAxisCode::ABS_HAT0X, pressed(15) - pressed(14)));
    out.push(abs(AbsoluteAxisCode::ABS_HAT0Y, pressed(13) - pressed(12)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pad_state_becomes_buttons_sticks_triggers_and_a_hat() {
        let pad = Gamepad {
            index: 0,
            connected: true,
            buttons: 1 | 1 << 13 | 1 << 14,
            sticks: [-32768, 32767, 1, -1],
            triggers: [65535, 0],
        };
        let events = events(&pad);
        let value = |type_: EventType, code: u16| {
            events
                .iter()
                .find(|e| e.event_type() == type_ && e.code() == code)
                .map(|e| e.value())
        };
        assert_eq!(value(EventType::KEY, KeyCode::BTN_SOUTH.0), Some(1));
        assert_eq!(value(EventType::KEY, KeyCode::BTN_EAST.0), Some(0));
        assert_eq!(
            value(EventType::ABSOLUTE, AbsoluteAxisCode::ABS_X.0),
            Some(-32768)
        );
        assert_eq!(
            value(EventType::ABSOLUTE, AbsoluteAxisCode::ABS_Z.0),
            Some(65535)
        );
        // Down and left held.
        assert_eq!(
            value(EventType::ABSOLUTE, AbsoluteAxisCode::ABS_HAT0X.0),
            Some(-1)
        );
        assert_eq!(
            value(EventType::ABSOLUTE, AbsoluteAxisCode::ABS_HAT0Y.0),
            Some(1)
        );
    }

    #[test]
    fn without_uinput_pads_are_counted_not_injected() {
        if std::path::Path::new("/dev/uinput").exists() {
            return; // a machine with uinput takes the other branch
        }
        let mut pads = Pads::open();
        assert!(matches!(&pads, Pads::Unavailable(why) if why.contains("/dev/uinput")));
        assert!(!pads.apply(1, &Gamepad::default()).unwrap());
    }
}
