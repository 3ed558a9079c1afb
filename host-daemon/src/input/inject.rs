//! Injecting viewers' input into the session's compositor: a virtual keyboard
//! (zwp_virtual_keyboard_v1, with a US keymap compiled by xkbcommon) and a virtual pointer
//! (zwlr_virtual_pointer_v1) for each viewer, on a Wayland connection of the injector's own.
//!
//! Keys arrive as HID usages and go out as evdev codes (xkb keycode − 8), so they are keys
//! by place whatever the app's layout. Text is typed with the keys that make each character
//! in the keymap (Shift when the character needs it); a character the keymap cannot make is
//! counted and skipped. Touches go to a touch device of each viewer's where the compositor
//! offers them (Lantern's own: lantern-touch-v1); elsewhere (wlroots has no virtual touch
//! device) touch point 0 drives the pointer (down and up are the left button).

use std::collections::HashMap;
use std::io::Write;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

use lantern_proto::input::{Button, Event, TouchPhase, keys};
use wayland_client::globals::{GlobalListContents, registry_queue_init};
use wayland_client::protocol::wl_pointer::{Axis, AxisSource, ButtonState};
use wayland_client::protocol::{wl_registry, wl_seat::WlSeat};
use wayland_client::{Connection, Dispatch, EventQueue, QueueHandle};
use wayland_protocols_misc::zwp_virtual_keyboard_v1::client::{
    zwp_virtual_keyboard_manager_v1::ZwpVirtualKeyboardManagerV1,
    zwp_virtual_keyboard_v1::ZwpVirtualKeyboardV1,
};
use wayland_protocols_wlr::virtual_pointer::v1::client::{
    zwlr_virtual_pointer_manager_v1::ZwlrVirtualPointerManagerV1,
    zwlr_virtual_pointer_v1::ZwlrVirtualPointerV1,
};
use xkbcommon::xkb;

use crate::Error;
use protocol::lantern_touch_manager_v1::LanternTouchManagerV1;
use protocol::lantern_touch_v1::LanternTouchV1;

mod protocol {
    //! The client side of lantern-touch-v1, generated from the compositor's XML.
    #![allow(non_upper_case_globals, non_camel_case_types, unused_imports)]
    #![allow(missing_docs, clippy::all)]
    use wayland_client;
    use wayland_client::protocol::*;

    pub mod __interfaces {
        use wayland_client::backend as wayland_backend;
        use wayland_client::protocol::__interfaces::*;
        wayland_scanner::generate_interfaces!("../compositor/protocols/lantern-touch-v1.xml");
    }
    use self::__interfaces::*;
    use wayland_client::backend as wayland_backend;

    wayland_scanner::generate_client_code!("../compositor/protocols/lantern-touch-v1.xml");
}

/// evdev's left shift.
const KEY_LEFTSHIFT: u32 = 42;
/// evdev's first mouse button (BTN_LEFT); right, middle, side and extra follow.
const BTN_LEFT: u32 = 0x110;
/// libinput's scroll distance for one wheel notch.
const NOTCH: f64 = 15.0;
/// The absolute pointer's extent on the wire: 0..=65535 across the frame.
const EXTENT: u32 = 65_535;
/// How long the compositor may leave its socket full before it is taken for hung.
const FLUSH_WAIT: Duration = Duration::from_secs(5);

/// What one batch of events did at the compositor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Injected {
    /// Events that reached the compositor.
    pub events: u64,
    /// Characters of text the keymap cannot type.
    pub untypable: u64,
    /// Touch points beyond the first where touch drives the pointer (there is one).
    pub extra_touches: u64,
}

/// The compositor's input side, with each viewer's devices.
pub struct Injector {
    connection: Connection,
    queue: EventQueue<State>,
    state: State,
    seat: WlSeat,
    keyboards: ZwpVirtualKeyboardManagerV1,
    pointers: ZwlrVirtualPointerManagerV1,
    /// Where the compositor offers touch devices.
    touches: Option<LanternTouchManagerV1>,
    keymap: Keymap,
    devices: HashMap<u64, Devices>,
    /// Devices of viewers that left, kept for the next ones (see [`Injector::forget`]).
    idle: Vec<Devices>,
    started: Instant,
}

/// Devices kept for viewers to come.
const IDLE_DEVICES: usize = 4;

struct Devices {
    keyboard: ZwpVirtualKeyboardV1,
    pointer: ZwlrVirtualPointerV1,
    xkb: xkb::State,
    touch: Touch,
}

enum Touch {
    /// A touch device; the points down, a bit each.
    Device(LanternTouchV1, u16),
    /// The pointer; whether touch point 0 is down (holding the left button).
    Pointer(bool),
}

struct State;

impl Injector {
    /// Connect to the compositor on `socket` and bind its virtual keyboard and pointer.
    pub fn open(socket: &Path) -> Result<Self, Error> {
        let stream = crate::files::connect(socket)?;
        let connection =
            Connection::from_socket(stream).map_err(|e| Error::wayland("connecting", e))?;
        let (globals, queue) = registry_queue_init::<State>(&connection)
            .map_err(|e| Error::wayland("reading the globals", e))?;
        let qh = queue.handle();
        fn missing(what: &'static str) -> impl Fn(wayland_client::globals::BindError) -> Error {
            move |e| {
                Error::wayland(
                    format!("the compositor offers no {what} to inject input"),
                    e,
                )
            }
        }
        let seat = globals.bind(&qh, 1..=1, ()).map_err(missing("wl_seat"))?;
        let keyboards = globals
            .bind(&qh, 1..=1, ())
            .map_err(missing("virtual keyboard (zwp_virtual_keyboard_v1)"))?;
        let pointers = globals
            .bind(&qh, 1..=2, ())
            .map_err(missing("virtual pointer (zwlr_virtual_pointer_v1)"))?;
        let touches = globals.bind(&qh, 1..=1, ()).ok();
        Ok(Self {
            connection,
            queue,
            state: State,
            seat,
            keyboards,
            pointers,
            touches,
            keymap: Keymap::us()?,
            devices: HashMap::new(),
            idle: Vec::new(),
            started: Instant::now(),
        })
    }

    /// Make viewer `viewer`'s keyboard and pointer, and wait until the compositor has them:
    /// a key sent to a keyboard the seat has not taken in yet is lost.
    pub fn join(&mut self, viewer: u64) -> Result<(), Error> {
        if !self.devices.contains_key(&viewer) {
            if let Some(devices) = self.idle.pop() {
                self.devices.insert(viewer, devices);
                return Ok(());
            }
            let devices = self.create_devices()?;
            self.devices.insert(viewer, devices);
            self.queue
                .roundtrip(&mut self.state)
                .map_err(|e| Error::wayland("adding a viewer's devices", e))?;
        }
        Ok(())
    }

    /// Apply `events` from viewer `viewer`.
    pub fn inject(&mut self, viewer: u64, events: &[Event]) -> Result<Injected, Error> {
        let time = self.started.elapsed().as_millis() as u32;
        let mut done = Injected::default();
        self.join(viewer)?;
        let Some(devices) = self.devices.get_mut(&viewer) else {
            return Ok(done);
        };
        for event in events {
            match event {
                Event::Key { usage, down } => {
                    if let Some(code) = keys::evdev_of_usage(*usage) {
                        devices.key(u32::from(code), *down, time);
                        done.events += 1;
                    }
                }
                Event::Text(text) => {
                    for c in text.chars() {
                        match self.keymap.keys_for(c) {
                            Some((code, shift)) => {
                                devices.type_key(code, shift, time);
                                done.events += 1;
                                // A character's few requests at a time: the client's buffer
                                // never overflows, whatever the text.
                                crate::wl::flush(&self.connection, FLUSH_WAIT)?;
                            }
                            None => done.untypable += 1,
                        }
                    }
                }
                Event::PointerAbs { x, y } => {
                    devices
                        .pointer
                        .motion_absolute(time, (*x).into(), (*y).into(), EXTENT, EXTENT);
                    devices.pointer.frame();
                    done.events += 1;
                }
                Event::PointerRel { dx, dy } => {
                    devices.pointer.motion(time, (*dx).into(), (*dy).into());
                    devices.pointer.frame();
                    done.events += 1;
                }
                Event::Button { button, down } => {
                    devices.button(*button, *down, time);
                    done.events += 1;
                }
                Event::Wheel { dx, dy } => {
                    devices.pointer.axis_source(AxisSource::Wheel);
                    for (axis, v120) in [(Axis::HorizontalScroll, *dx), (Axis::VerticalScroll, *dy)]
                    {
                        if v120 == 0 {
                            continue;
                        }
                        let value = f64::from(v120) / 120.0 * NOTCH;
                        if v120 % 120 == 0 {
                            devices
                                .pointer
                                .axis_discrete(time, axis, value, i32::from(v120 / 120));
                        } else {
                            devices.pointer.axis(time, axis, value);
                        }
                    }
                    devices.pointer.frame();
                    done.events += 1;
                }
                Event::Touch { id, phase, x, y } => {
                    if devices.touch(*id, *phase, (*x, *y), time) {
                        done.events += 1;
                    } else {
                        done.extra_touches += 1;
                    }
                }
                // Pads go to uinput, never to the compositor.
                Event::Gamepad(_) => {}
            }
            // Each event's requests go before the next's are written: a full socket waits
            // (backpressure) rather than overflowing the client's buffer, which would end the
            // connection.
            crate::wl::flush(&self.connection, FLUSH_WAIT)?;
        }
        Ok(done)
    }

    /// Let viewer `viewer`'s devices go (release its held keys and buttons first). A few are
    /// kept for the viewers to come: sway 1.7 delivers no key from a virtual keyboard made
    /// after one was destroyed, so a player who reconnects would type into nothing.
    pub fn forget(&mut self, viewer: u64) -> Result<(), Error> {
        if let Some(mut devices) = self.devices.remove(&viewer) {
            if self.idle.len() < IDLE_DEVICES {
                devices.xkb = xkb::State::new(&self.keymap.keymap);
                devices.lift(self.started.elapsed().as_millis() as u32);
                self.idle.push(devices);
            } else {
                devices.keyboard.destroy();
                devices.pointer.destroy();
                if let Touch::Device(touch, _) = &devices.touch {
                    touch.destroy();
                }
            }
        }
        crate::wl::flush(&self.connection, FLUSH_WAIT)
    }

    /// Read what the compositor said (nothing, unless it raised a protocol error), waiting
    /// up to `timeout`.
    pub fn check(&mut self, timeout: Duration) -> Result<(), Error> {
        crate::wl::dispatch(&mut self.queue, &mut self.state, timeout)
    }

    fn create_devices(&mut self) -> Result<Devices, Error> {
        let qh = self.queue.handle();
        let keyboard = self.keyboards.create_virtual_keyboard(&self.seat, &qh, ());
        let fd = self.keymap.memfd()?;
        // The keymap goes before any key, or the compositor raises a protocol error.
        keyboard.keymap(
            xkb::KEYMAP_FORMAT_TEXT_V1,
            fd.as_fd(),
            self.keymap.text.len() as u32 + 1,
        );
        let pointer = self
            .pointers
            .create_virtual_pointer(Some(&self.seat), &qh, ());
        let touch = match &self.touches {
            Some(touches) => Touch::Device(touches.create_touch(&qh, ()), 0),
            None => Touch::Pointer(false),
        };
        Ok(Devices {
            keyboard,
            pointer,
            xkb: xkb::State::new(&self.keymap.keymap),
            touch,
        })
    }
}

impl Devices {
    /// A key by evdev code, and the modifiers it leaves (xkb's own state machine decides).
    fn key(&mut self, code: u32, down: bool, time: u32) {
        let direction = if down {
            xkb::KeyDirection::Down
        } else {
            xkb::KeyDirection::Up
        };
        self.keyboard.key(time, code, down as u32);
        self.xkb.update_key(xkb::Keycode::new(code + 8), direction);
        self.keyboard.modifiers(
            self.xkb.serialize_mods(xkb::STATE_MODS_DEPRESSED),
            self.xkb.serialize_mods(xkb::STATE_MODS_LATCHED),
            self.xkb.serialize_mods(xkb::STATE_MODS_LOCKED),
            self.xkb.serialize_layout(xkb::STATE_LAYOUT_EFFECTIVE),
        );
    }

    fn type_key(&mut self, code: u32, shift: bool, time: u32) {
        if shift {
            self.key(KEY_LEFTSHIFT, true, time);
        }
        self.key(code, true, time);
        self.key(code, false, time);
        if shift {
            self.key(KEY_LEFTSHIFT, false, time);
        }
    }

    fn button(&mut self, button: Button, down: bool, time: u32) {
        let state = if down {
            ButtonState::Pressed
        } else {
            ButtonState::Released
        };
        self.pointer.button(time, BTN_LEFT + button as u32, state);
        self.pointer.frame();
    }

    /// Touch point `id`; whether it went anywhere (the pointer takes point 0 only).
    fn touch(&mut self, id: u8, phase: TouchPhase, (x, y): (u16, u16), time: u32) -> bool {
        let (x, y, slot) = (u32::from(x), u32::from(y), u32::from(id));
        match &mut self.touch {
            Touch::Device(touch, down) => {
                let bit = 1u16.checked_shl(slot).unwrap_or(0);
                match phase {
                    TouchPhase::Down => {
                        *down |= bit;
                        touch.down(time, slot, x, y, EXTENT, EXTENT);
                    }
                    TouchPhase::Move if *down & bit != 0 => {
                        touch.motion(time, slot, x, y, EXTENT, EXTENT)
                    }
                    // A cancelled point of one viewer's is lifted: wl_touch's cancel would
                    // end every viewer's touches.
                    TouchPhase::Up | TouchPhase::Cancel if *down & bit != 0 => {
                        *down &= !bit;
                        touch.up(time, slot);
                    }
                    _ => return true,
                }
                touch.frame();
                true
            }
            Touch::Pointer(_) if id != 0 => false,
            Touch::Pointer(touching) => {
                let was = std::mem::replace(
                    touching,
                    match phase {
                        TouchPhase::Down => true,
                        TouchPhase::Move => *touching,
                        TouchPhase::Up | TouchPhase::Cancel => false,
                    },
                );
                let now = *touching;
                self.pointer.motion_absolute(time, x, y, EXTENT, EXTENT);
                self.pointer.frame();
                if was != now {
                    self.button(Button::Left, now, time);
                }
                true
            }
        }
    }

    /// Lift every touch point still down (the devices go to the next viewer).
    fn lift(&mut self, time: u32) {
        match &mut self.touch {
            Touch::Device(touch, down) => {
                for slot in (0..16).filter(|slot| *down & (1 << slot) != 0) {
                    touch.up(time, slot);
                }
                if *down != 0 {
                    touch.frame();
                }
                *down = 0;
            }
            Touch::Pointer(touching) => *touching = false,
        }
    }
}

/// The keymap every virtual keyboard gets, and which keys type which character.
struct Keymap {
    keymap: xkb::Keymap,
    text: String,
}

impl Keymap {
    /// The US layout on a pc105 keyboard: keys by place match the HID usages' names.
    fn us() -> Result<Self, Error> {
        let context = xkb::Context::new(xkb::CONTEXT_NO_FLAGS);
        let keymap = xkb::Keymap::new_from_names(
            &context,
            "evdev",
            "pc105",
            "us",
            "",
            None,
            xkb::KEYMAP_COMPILE_NO_FLAGS,
        )
        .ok_or_else(|| {
            Error::Config(
                "xkbcommon cannot compile the US keymap: install xkb-data (Debian: apt-get install xkb-data)"
                    .into(),
            )
        })?;
        let text = keymap.get_as_string(xkb::KEYMAP_FORMAT_TEXT_V1);
        Ok(Self { keymap, text })
    }

    /// The keymap's text and a NUL in a sealed memfd, as the protocol wants it.
    fn memfd(&self) -> Result<std::os::fd::OwnedFd, Error> {
        let io = |e| Error::io("a memfd for the keymap", e);
        // SAFETY: a NUL-terminated name and valid flags.
        let fd = unsafe { libc::memfd_create(c"lantern-keymap".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(io(std::io::Error::last_os_error()));
        }
        // SAFETY: a fresh fd we own.
        let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        let mut file = std::fs::File::from(fd);
        file.write_all(self.text.as_bytes()).map_err(io)?;
        file.write_all(&[0]).map_err(io)?;
        Ok(file.into())
    }

    /// The evdev key that types `c`, and whether it needs Shift; `None` when no key does.
    fn keys_for(&self, c: char) -> Option<(u32, bool)> {
        let keysym = match c {
            '\n' | '\r' => xkb::Keysym::Return,
            '\t' => xkb::Keysym::Tab,
            '\u{8}' => xkb::Keysym::BackSpace,
            _ => xkb::utf32_to_keysym(c as u32),
        };
        if keysym == xkb::Keysym::NoSymbol {
            return None;
        }
        let (min, max) = (
            self.keymap.min_keycode().raw(),
            self.keymap.max_keycode().raw(),
        );
        for level in 0..2 {
            for raw in min..=max {
                let key = xkb::Keycode::new(raw);
                if level < self.keymap.num_levels_for_key(key, 0)
                    && raw >= 8
                    && self.keymap.key_get_syms_by_level(key, 0, level) == [keysym]
                {
                    return Some((raw - 8, level == 1));
                }
            }
        }
        None
    }
}

impl Dispatch<wl_registry::WlRegistry, GlobalListContents> for State {
    fn event(
        _: &mut Self,
        _: &wl_registry::WlRegistry,
        _: wl_registry::Event,
        _: &GlobalListContents,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
    }
}

/// None of the objects used here send events the injector needs.
macro_rules! no_events {
    ($($proxy:ty),*) => {$(
        impl Dispatch<$proxy, ()> for State {
            fn event(
                _: &mut Self,
                _: &$proxy,
                _: <$proxy as wayland_client::Proxy>::Event,
                _: &(),
                _: &Connection,
                _: &QueueHandle<Self>,
            ) {
            }
        }
    )*};
}
no_events!(
    WlSeat,
    ZwpVirtualKeyboardManagerV1,
    ZwpVirtualKeyboardV1,
    ZwlrVirtualPointerManagerV1,
    ZwlrVirtualPointerV1,
    LanternTouchManagerV1,
    LanternTouchV1
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_us_keymap_types_ascii_and_says_when_it_cannot() {
        let keymap = Keymap::us().unwrap();
        // evdev: KEY_A 30, KEY_1 2, KEY_SPACE 57, KEY_ENTER 28.
        assert_eq!(keymap.keys_for('a'), Some((30, false)));
        assert_eq!(keymap.keys_for('A'), Some((30, true)));
        assert_eq!(keymap.keys_for('!'), Some((2, true)));
        assert_eq!(keymap.keys_for(' '), Some((57, false)));
        assert_eq!(keymap.keys_for('\n'), Some((28, false)));
        assert_eq!(keymap.keys_for('é'), None);
        assert!(keymap.text.starts_with("xkb_keymap"));
    }
}
