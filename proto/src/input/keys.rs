//! Keys by place, in the three numberings Lantern's ends use: the W3C `KeyboardEvent.code`
//! names a browser reports (and input scripts use), the USB HID keyboard usages on the wire
//! (SDL's scancodes are the same numbers), and the Linux evdev key codes the host injects
//! (xkb keycodes are these + 8). The evdev column was generated from
//! `linux/input-event-codes.h`.

/// `KeyboardEvent.code`, HID usage (page 7), evdev code: the keys of a 105-key ISO/ANSI
/// keyboard with its keypad and F13–F24, and the two Japanese extras.
const KEYS: &[(&str, u16, u16)] = &[
    ("KeyA", 0x04, 30),           // KEY_A
    ("KeyB", 0x05, 48),           // KEY_B
    ("KeyC", 0x06, 46),           // KEY_C
    ("KeyD", 0x07, 32),           // KEY_D
    ("KeyE", 0x08, 18),           // KEY_E
    ("KeyF", 0x09, 33),           // KEY_F
    ("KeyG", 0x0A, 34),           // KEY_G
    ("KeyH", 0x0B, 35),           // KEY_H
    ("KeyI", 0x0C, 23),           // KEY_I
    ("KeyJ", 0x0D, 36),           // KEY_J
    ("KeyK", 0x0E, 37),           // KEY_K
    ("KeyL", 0x0F, 38),           // KEY_L
    ("KeyM", 0x10, 50),           // KEY_M
    ("KeyN", 0x11, 49),           // KEY_N
    ("KeyO", 0x12, 24),           // KEY_O
    ("KeyP", 0x13, 25),           // KEY_P
    ("KeyQ", 0x14, 16),           // KEY_Q
    ("KeyR", 0x15, 19),           // KEY_R
    ("KeyS", 0x16, 31),           // KEY_S
    ("KeyT", 0x17, 20),           // KEY_T
    ("KeyU", 0x18, 22),           // KEY_U
    ("KeyV", 0x19, 47),           // KEY_V
    ("KeyW", 0x1A, 17),           // KEY_W
    ("KeyX", 0x1B, 45),           // KEY_X
    ("KeyY", 0x1C, 21),           // KEY_Y
    ("KeyZ", 0x1D, 44),           // KEY_Z
    ("Digit1", 0x1E, 2),          // KEY_1
    ("Digit2", 0x1F, 3),          // KEY_2
    ("Digit3", 0x20, 4),          // KEY_3
    ("Digit4", 0x21, 5),          // KEY_4
    ("Digit5", 0x22, 6),          // KEY_5
    ("Digit6", 0x23, 7),          // KEY_6
    ("Digit7", 0x24, 8),          // KEY_7
    ("Digit8", 0x25, 9),          // KEY_8
    ("Digit9", 0x26, 10),         // KEY_9
    ("Digit0", 0x27, 11),         // KEY_0
    ("Enter", 0x28, 28),          // KEY_ENTER
    ("Escape", 0x29, 1),          // KEY_ESC
    ("Backspace", 0x2A, 14),      // KEY_BACKSPACE
    ("Tab", 0x2B, 15),            // KEY_TAB
    ("Space", 0x2C, 57),          // KEY_SPACE
    ("Minus", 0x2D, 12),          // KEY_MINUS
    ("Equal", 0x2E, 13),          // KEY_EQUAL
    ("BracketLeft", 0x2F, 26),    // KEY_LEFTBRACE
    ("BracketRight", 0x30, 27),   // KEY_RIGHTBRACE
    ("Backslash", 0x31, 43),      // KEY_BACKSLASH
    ("Semicolon", 0x33, 39),      // KEY_SEMICOLON
    ("Quote", 0x34, 40),          // KEY_APOSTROPHE
    ("Backquote", 0x35, 41),      // KEY_GRAVE
    ("Comma", 0x36, 51),          // KEY_COMMA
    ("Period", 0x37, 52),         // KEY_DOT
    ("Slash", 0x38, 53),          // KEY_SLASH
    ("CapsLock", 0x39, 58),       // KEY_CAPSLOCK
    ("F1", 0x3A, 59),             // KEY_F1
    ("F2", 0x3B, 60),             // KEY_F2
    ("F3", 0x3C, 61),             // KEY_F3
    ("F4", 0x3D, 62),             // KEY_F4
    ("F5", 0x3E, 63),             // KEY_F5
    ("F6", 0x3F, 64),             // KEY_F6
    ("F7", 0x40, 65),             // KEY_F7
    ("F8", 0x41, 66),             // KEY_F8
    ("F9", 0x42, 67),             // KEY_F9
    ("F10", 0x43, 68),            // KEY_F10
    ("F11", 0x44, 87),            // KEY_F11
    ("F12", 0x45, 88),            // KEY_F12
    ("PrintScreen", 0x46, 99),    // KEY_SYSRQ
    ("ScrollLock", 0x47, 70),     // KEY_SCROLLLOCK
    ("Pause", 0x48, 119),         // KEY_PAUSE
    ("Insert", 0x49, 110),        // KEY_INSERT
    ("Home", 0x4A, 102),          // KEY_HOME
    ("PageUp", 0x4B, 104),        // KEY_PAGEUP
    ("Delete", 0x4C, 111),        // KEY_DELETE
    ("End", 0x4D, 107),           // KEY_END
    ("PageDown", 0x4E, 109),      // KEY_PAGEDOWN
    ("ArrowRight", 0x4F, 106),    // KEY_RIGHT
    ("ArrowLeft", 0x50, 105),     // KEY_LEFT
    ("ArrowDown", 0x51, 108),     // KEY_DOWN
    ("ArrowUp", 0x52, 103),       // KEY_UP
    ("NumLock", 0x53, 69),        // KEY_NUMLOCK
    ("NumpadDivide", 0x54, 98),   // KEY_KPSLASH
    ("NumpadMultiply", 0x55, 55), // KEY_KPASTERISK
    ("NumpadSubtract", 0x56, 74), // KEY_KPMINUS
    ("NumpadAdd", 0x57, 78),      // KEY_KPPLUS
    ("NumpadEnter", 0x58, 96),    // KEY_KPENTER
    ("Numpad1", 0x59, 79),        // KEY_KP1
    ("Numpad2", 0x5A, 80),        // KEY_KP2
    ("Numpad3", 0x5B, 81),        // KEY_KP3
    ("Numpad4", 0x5C, 75),        // KEY_KP4
    ("Numpad5", 0x5D, 76),        // KEY_KP5
    ("Numpad6", 0x5E, 77),        // KEY_KP6
    ("Numpad7", 0x5F, 71),        // KEY_KP7
    ("Numpad8", 0x60, 72),        // KEY_KP8
    ("Numpad9", 0x61, 73),        // KEY_KP9
    ("Numpad0", 0x62, 82),        // KEY_KP0
    ("NumpadDecimal", 0x63, 83),  // KEY_KPDOT
    ("IntlBackslash", 0x64, 86),  // KEY_102ND
    ("ContextMenu", 0x65, 127),   // KEY_COMPOSE
    ("NumpadEqual", 0x67, 117),   // KEY_KPEQUAL
    ("F13", 0x68, 183),           // KEY_F13
    ("F14", 0x69, 184),           // KEY_F14
    ("F15", 0x6A, 185),           // KEY_F15
    ("F16", 0x6B, 186),           // KEY_F16
    ("F17", 0x6C, 187),           // KEY_F17
    ("F18", 0x6D, 188),           // KEY_F18
    ("F19", 0x6E, 189),           // KEY_F19
    ("F20", 0x6F, 190),           // KEY_F20
    ("F21", 0x70, 191),           // KEY_F21
    ("F22", 0x71, 192),           // KEY_F22
    ("F23", 0x72, 193),           // KEY_F23
    ("F24", 0x73, 194),           // KEY_F24
    ("IntlRo", 0x87, 89),         // KEY_RO
    ("IntlYen", 0x89, 124),       // KEY_YEN
    ("ControlLeft", 0xE0, 29),    // KEY_LEFTCTRL
    ("ShiftLeft", 0xE1, 42),      // KEY_LEFTSHIFT
    ("AltLeft", 0xE2, 56),        // KEY_LEFTALT
    ("MetaLeft", 0xE3, 125),      // KEY_LEFTMETA
    ("ControlRight", 0xE4, 97),   // KEY_RIGHTCTRL
    ("ShiftRight", 0xE5, 54),     // KEY_RIGHTSHIFT
    ("AltRight", 0xE6, 100),      // KEY_RIGHTALT
    ("MetaRight", 0xE7, 126),     // KEY_RIGHTMETA
];

/// Shift, Control, Alt and GUI, left and right (usages 0xE0 to 0xE7).
pub fn is_modifier(usage: u16) -> bool {
    (0xE0..=0xE7).contains(&usage)
}

/// The HID usage of a `KeyboardEvent.code` name (`"KeyA"`, `"ShiftLeft"`, `"ArrowUp"`).
pub fn usage_of_code(code: &str) -> Option<u16> {
    KEYS.iter().find(|(c, _, _)| *c == code).map(|&(_, u, _)| u)
}

/// The `KeyboardEvent.code` name of a HID usage.
pub fn code_of_usage(usage: u16) -> Option<&'static str> {
    KEYS.iter()
        .find(|(_, u, _)| *u == usage)
        .map(|&(c, _, _)| c)
}

/// The Linux evdev key code of a HID usage, to inject it.
pub fn evdev_of_usage(usage: u16) -> Option<u16> {
    KEYS.iter()
        .find(|(_, u, _)| *u == usage)
        .map(|&(_, _, e)| e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_is_one_to_one() {
        for (i, a) in KEYS.iter().enumerate() {
            for b in &KEYS[i + 1..] {
                assert!(a.0 != b.0 && a.1 != b.1 && a.2 != b.2, "{a:?} and {b:?}");
            }
        }
        for &(code, usage, evdev) in KEYS {
            assert!(super::super::KEY_USAGES.contains(&usage), "{code}");
            assert_eq!(usage_of_code(code), Some(usage));
            assert_eq!(code_of_usage(usage), Some(code));
            assert_eq!(evdev_of_usage(usage), Some(evdev));
        }
    }

    #[test]
    fn well_known_keys() {
        // HID Usage Tables 1.4, §10; linux/input-event-codes.h.
        assert_eq!(usage_of_code("KeyA"), Some(0x04));
        assert_eq!(evdev_of_usage(0x04), Some(30));
        assert_eq!(usage_of_code("Enter"), Some(0x28));
        assert_eq!(evdev_of_usage(0x28), Some(28));
        assert_eq!(usage_of_code("ShiftLeft"), Some(0xE1));
        assert_eq!(evdev_of_usage(0xE1), Some(42));
        assert_eq!(usage_of_code("ArrowUp"), Some(0x52));
        assert_eq!(evdev_of_usage(0x52), Some(103));
        assert_eq!(usage_of_code("F24"), Some(0x73));
        assert_eq!(usage_of_code("Keya"), None);
        assert_eq!(code_of_usage(0x01), None);
    }
}
