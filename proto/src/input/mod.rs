//! Input from a viewer to the host, one [`Message`] per datagram: keys, text, pointer,
//! buttons, wheel, gamepads and touch, in a versioned binary format of at most
//! [`MAX_DATAGRAM`] bytes.
//!
//! Every message carries a sequence number and the viewer's send time (for ordering,
//! staleness and the input leg's latency), the full set of keys and buttons held at the
//! viewer, and the key, button and touch edges of its last few messages ([`Edge`]): a lost
//! datagram never leaves a key stuck (the next one says what is held), and never loses a press
//! or a release, not even a tap whose press and release were both in it (the next one repeats
//! them, and the host plays those it missed). Continuous state (pointer position, gamepads)
//! is absolute, so the latest message wins.
//!
//! Layout (little-endian):
//!
//! ```text
//! version u8 = 2 · seq u64 · sent_us u64 · held buttons u8 (bit per Button)
//! · held key count u8 · held keys u16… (HID usages, ascending)
//! · edge count u8 · edges…, each back u8 (1..=255: how many messages before this one it
//!   was first sent in, oldest first) and a Key, Button or Touch (not Move) event as below
//! · event count u8 · events…, each a tag u8 and its fields:
//!   1 Key        usage u16, down u8
//!   2 Text       length u8, UTF-8 bytes
//!   3 PointerAbs x u16, y u16          (0..=65535 across the video frame)
//!   4 PointerRel dx i16, dy i16        (video pixels)
//!   5 Button     button u8, down u8
//!   6 Wheel      dx i16, dy i16        (120 per notch; + is right and down)
//!   7 Gamepad    index u8, connected u8, buttons u32, sticks 4×i16, triggers 2×u16
//!   8 Touch      id u8, phase u8, x u16, y u16
//! ```
//!
//! Decoding checks everything (version, lengths, ranges, UTF-8, no trailing bytes) and
//! never panics; encoding refuses what decoding would. [`Gate`] is what the host does with a
//! viewer's datagrams: drops (counted by reason), and presses and releases exactly once;
//! [`Outbox`] is the viewer's side (numbering, the held set, recent edges, heartbeats and
//! repeats).
//! [`keys`] names keys as browsers do and maps them to the wire's HID usages and to evdev.

mod gate;
pub mod keys;
mod outbox;
pub mod script;

pub use gate::{Counters, Gate, HEARTBEAT_US, Limits, Rejected, SILENT_AFTER_US, Taken};
pub use outbox::{Outbox, PHOTON_GIVE_UP_US, PhotonMeter, REPEAT_FIRST_US, REPEATS, presses};

use crate::Error;

pub const VERSION: u8 = 2;
/// The largest message: fits one QUIC datagram on any path with a 1280-byte MTU.
pub const MAX_DATAGRAM: usize = 900;
pub const MAX_GAMEPADS: u8 = 16;
/// Keys held at once that a message can name (n-key rollover beyond it is not a use case).
pub const MAX_HELD_KEYS: usize = 32;
/// Earlier edges a message repeats: a burst of typing's worth.
pub const MAX_EDGES: usize = 16;
/// An edge's encoded size at most: back, tag, and the largest of a key's, a button's or a
/// touch's fields.
pub const EDGE_BYTES: usize = 8;
pub const MAX_TOUCHES: u8 = 10;
/// The W3C standard gamepad's buttons: bits 0..=16.
pub const GAMEPAD_BUTTONS: u32 = (1 << 17) - 1;
/// HID usage page 0x07 (keyboard/keypad): `a` is 0x04, the last modifier (right GUI) 0xE7.
pub const KEY_USAGES: std::ops::RangeInclusive<u16> = 0x04..=0xE7;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// Counts the viewer's messages from 0: the host drops duplicates and older ones.
    pub seq: u64,
    /// When the viewer sent it, µs since the UNIX epoch.
    pub sent_us: u64,
    pub held: Held,
    /// Key and button edges of earlier messages, oldest first.
    pub edges: Vec<Edge>,
    pub events: Vec<Event>,
}

/// A key, button or touch edge ([`Event::is_edge`]) first sent in an earlier message, repeated
/// in case that one is lost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edge {
    /// The sequence number of the message that first carried it (1 to 255 before this one).
    pub seq: u64,
    /// An [`Event::Key`] or [`Event::Button`].
    pub event: Event,
}

/// What the viewer holds down as it sends.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Held {
    /// HID keyboard usages, ascending, no repeats.
    pub keys: Vec<u16>,
    /// A bit per [`Button`].
    pub buttons: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Button {
    Left = 0,
    Right = 1,
    Middle = 2,
    Back = 3,
    Forward = 4,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum TouchPhase {
    Down = 0,
    Move = 1,
    Up = 2,
    Cancel = 3,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A key, by HID keyboard usage (the key's place, whatever the layout).
    Key {
        usage: u16,
        down: bool,
    },
    /// Text to type, as the viewer's input method produced it (1 to 255 bytes).
    Text(String),
    /// The pointer's place on the video frame, 0..=65535 on each axis, so it survives any
    /// window size at the viewer.
    PointerAbs {
        x: u16,
        y: u16,
    },
    /// Pointer motion in video pixels (a game's mouse look).
    PointerRel {
        dx: i16,
        dy: i16,
    },
    Button {
        button: Button,
        down: bool,
    },
    /// Scrolling in 120ths of a notch (high-resolution wheels send less than 120).
    Wheel {
        dx: i16,
        dy: i16,
    },
    /// One gamepad's whole state.
    Gamepad(Gamepad),
    Touch {
        id: u8,
        phase: TouchPhase,
        x: u16,
        y: u16,
    },
}

/// A gamepad's full state, in the W3C standard gamepad's layout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Gamepad {
    /// 0 to 15.
    pub index: u8,
    /// False once the pad is gone: the host releases everything on it.
    pub connected: bool,
    /// A bit per standard button (0..=16).
    pub buttons: u32,
    /// Left x, left y, right x, right y; + is right and down.
    pub sticks: [i16; 4],
    /// Left and right, 0 (released) to 65535.
    pub triggers: [u16; 2],
}

fn bad(why: impl Into<String>) -> Error {
    Error::Input(why.into())
}

impl Button {
    pub const ALL: [Button; 5] = [
        Self::Left,
        Self::Right,
        Self::Middle,
        Self::Back,
        Self::Forward,
    ];

    fn from_u8(b: u8) -> Result<Self, Error> {
        Self::ALL
            .get(b as usize)
            .copied()
            .ok_or_else(|| bad(format!("button {b}: 0 to 4")))
    }
}

impl TouchPhase {
    fn from_u8(b: u8) -> Result<Self, Error> {
        [Self::Down, Self::Move, Self::Up, Self::Cancel]
            .get(b as usize)
            .copied()
            .ok_or_else(|| bad(format!("touch phase {b}: 0 to 3")))
    }
}

fn check_key(usage: u16) -> Result<(), Error> {
    if KEY_USAGES.contains(&usage) {
        Ok(())
    } else {
        Err(bad(format!(
            "key usage {usage:#06x} is not a keyboard key (0x04 to 0xe7)"
        )))
    }
}

impl Message {
    /// The message's bytes; an error for what a host would refuse.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        self.check()?;
        let mut out = Vec::with_capacity(64);
        out.push(VERSION);
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&self.sent_us.to_le_bytes());
        out.push(self.held.buttons);
        out.push(self.held.keys.len() as u8);
        for key in &self.held.keys {
            out.extend_from_slice(&key.to_le_bytes());
        }
        out.push(self.edges.len() as u8);
        for edge in &self.edges {
            // check() bounded the distance to 1..=255.
            out.push((self.seq - edge.seq) as u8);
            edge.event.encode(&mut out);
        }
        out.push(self.events.len() as u8);
        for event in &self.events {
            event.encode(&mut out);
        }
        if out.len() > MAX_DATAGRAM {
            return Err(bad(format!(
                "{} bytes: a message is at most {MAX_DATAGRAM}",
                out.len()
            )));
        }
        Ok(out)
    }

    /// Read one datagram; anything malformed is an error naming what.
    pub fn decode(data: &[u8]) -> Result<Self, Error> {
        if data.len() > MAX_DATAGRAM {
            return Err(bad(format!(
                "{} bytes: a message is at most {MAX_DATAGRAM}",
                data.len()
            )));
        }
        let mut r = Reader(data);
        let version = r.u8()?;
        if version != VERSION {
            return Err(bad(format!(
                "version {version}: this host reads version {VERSION}"
            )));
        }
        let seq = r.u64()?;
        let sent_us = r.u64()?;
        let buttons = r.u8()?;
        let count = r.u8()? as usize;
        let keys = (0..count).map(|_| r.u16()).collect::<Result<_, _>>()?;
        let count = r.u8()? as usize;
        if count > MAX_EDGES {
            return Err(bad(format!("{count} edges: at most {MAX_EDGES}")));
        }
        let edges = (0..count)
            .map(|_| {
                let back = u64::from(r.u8()?);
                let seq = seq
                    .checked_sub(back)
                    .filter(|_| back > 0)
                    .ok_or_else(|| bad(format!("an edge {back} messages back from {seq}")))?;
                Ok(Edge {
                    seq,
                    event: Event::decode(&mut r)?,
                })
            })
            .collect::<Result<_, Error>>()?;
        let count = r.u8()? as usize;
        let events = (0..count)
            .map(|_| Event::decode(&mut r))
            .collect::<Result<_, _>>()?;
        if !r.0.is_empty() {
            return Err(bad(format!("{} bytes after the last event", r.0.len())));
        }
        let message = Self {
            seq,
            sent_us,
            held: Held { keys, buttons },
            edges,
            events,
        };
        message.check()?;
        Ok(message)
    }

    /// Ranges and counts, the same for both directions.
    fn check(&self) -> Result<(), Error> {
        if self.held.buttons >> Button::ALL.len() != 0 {
            return Err(bad(format!(
                "held buttons {:#04x}: only bits 0 to 4",
                self.held.buttons
            )));
        }
        if self.held.keys.len() > MAX_HELD_KEYS {
            return Err(bad(format!(
                "{} held keys: at most {MAX_HELD_KEYS}",
                self.held.keys.len()
            )));
        }
        for &key in &self.held.keys {
            check_key(key)?;
        }
        if self.held.keys.windows(2).any(|pair| pair[0] >= pair[1]) {
            return Err(bad("held keys must be ascending, each once"));
        }
        if self.edges.len() > MAX_EDGES {
            return Err(bad(format!(
                "{} edges: at most {MAX_EDGES}",
                self.edges.len()
            )));
        }
        for edge in &self.edges {
            if !edge.event.is_edge() {
                return Err(bad(
                    "an edge is a key, a button, or a touch's down, up or cancel",
                ));
            }
            if !(1..=255).contains(&self.seq.wrapping_sub(edge.seq)) || edge.seq >= self.seq {
                return Err(bad(format!(
                    "an edge of message {} in message {}: 1 to 255 before it",
                    edge.seq, self.seq
                )));
            }
            edge.event.check()?;
        }
        if self.edges.windows(2).any(|pair| pair[0].seq > pair[1].seq) {
            return Err(bad("edges must be oldest first"));
        }
        if self.events.len() > u8::MAX as usize {
            return Err(bad("more than 255 events"));
        }
        self.events.iter().try_for_each(Event::check)
    }
}

impl Event {
    /// A press or a release (of a key, a button, or a touch point), which later messages
    /// repeat as an [`Edge`] so that a lost datagram never loses it.
    pub fn is_edge(&self) -> bool {
        match self {
            Self::Key { .. } | Self::Button { .. } => true,
            Self::Touch { phase, .. } => *phase != TouchPhase::Move,
            _ => false,
        }
    }

    fn check(&self) -> Result<(), Error> {
        match self {
            Self::Key { usage, .. } => check_key(*usage),
            Self::Text(text) if text.is_empty() || text.len() > u8::MAX as usize => {
                Err(bad(format!("text of {} bytes: 1 to 255", text.len())))
            }
            Self::Gamepad(pad) if pad.index >= MAX_GAMEPADS => Err(bad(format!(
                "gamepad {}: 0 to {}",
                pad.index,
                MAX_GAMEPADS - 1
            ))),
            Self::Gamepad(pad) if pad.buttons & !GAMEPAD_BUTTONS != 0 => Err(bad(format!(
                "gamepad buttons {:#x}: only bits 0 to 16",
                pad.buttons
            ))),
            Self::Touch { id, .. } if *id >= MAX_TOUCHES => {
                Err(bad(format!("touch point {id}: 0 to {}", MAX_TOUCHES - 1)))
            }
            _ => Ok(()),
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Key { usage, down } => {
                out.push(1);
                out.extend_from_slice(&usage.to_le_bytes());
                out.push(*down as u8);
            }
            Self::Text(text) => {
                out.push(2);
                out.push(text.len() as u8);
                out.extend_from_slice(text.as_bytes());
            }
            Self::PointerAbs { x, y } => {
                out.push(3);
                out.extend_from_slice(&x.to_le_bytes());
                out.extend_from_slice(&y.to_le_bytes());
            }
            Self::PointerRel { dx, dy } => {
                out.push(4);
                out.extend_from_slice(&dx.to_le_bytes());
                out.extend_from_slice(&dy.to_le_bytes());
            }
            Self::Button { button, down } => {
                out.extend_from_slice(&[5, *button as u8, *down as u8])
            }
            Self::Wheel { dx, dy } => {
                out.push(6);
                out.extend_from_slice(&dx.to_le_bytes());
                out.extend_from_slice(&dy.to_le_bytes());
            }
            Self::Gamepad(pad) => {
                out.extend_from_slice(&[7, pad.index, pad.connected as u8]);
                out.extend_from_slice(&pad.buttons.to_le_bytes());
                for axis in pad.sticks {
                    out.extend_from_slice(&axis.to_le_bytes());
                }
                for trigger in pad.triggers {
                    out.extend_from_slice(&trigger.to_le_bytes());
                }
            }
            Self::Touch { id, phase, x, y } => {
                out.extend_from_slice(&[8, *id, *phase as u8]);
                out.extend_from_slice(&x.to_le_bytes());
                out.extend_from_slice(&y.to_le_bytes());
            }
        }
    }

    fn decode(r: &mut Reader) -> Result<Self, Error> {
        Ok(match r.u8()? {
            1 => Self::Key {
                usage: r.u16()?,
                down: r.bool()?,
            },
            2 => {
                let len = r.u8()? as usize;
                let bytes = r.take(len)?;
                let text = std::str::from_utf8(bytes).map_err(|_| bad("text that is not UTF-8"))?;
                Self::Text(text.to_string())
            }
            3 => Self::PointerAbs {
                x: r.u16()?,
                y: r.u16()?,
            },
            4 => Self::PointerRel {
                dx: r.i16()?,
                dy: r.i16()?,
            },
            5 => Self::Button {
                button: Button::from_u8(r.u8()?)?,
                down: r.bool()?,
            },
            6 => Self::Wheel {
                dx: r.i16()?,
                dy: r.i16()?,
            },
            7 => Self::Gamepad(Gamepad {
                index: r.u8()?,
                connected: r.bool()?,
                buttons: r.u32()?,
                sticks: [r.i16()?, r.i16()?, r.i16()?, r.i16()?],
                triggers: [r.u16()?, r.u16()?],
            }),
            8 => Self::Touch {
                id: r.u8()?,
                phase: TouchPhase::from_u8(r.u8()?)?,
                x: r.u16()?,
                y: r.u16()?,
            },
            tag => return Err(bad(format!("unknown event {tag}"))),
        })
    }
}

/// A cursor over a datagram; running out is an error, never a panic.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if self.0.len() < n {
            return Err(bad("the message ends early"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let mut bytes = [0; N];
        bytes.copy_from_slice(self.take(N)?);
        Ok(bytes)
    }

    fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }

    fn bool(&mut self) -> Result<bool, Error> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(bad(format!("{b} where a flag (0 or 1) belongs"))),
        }
    }

    fn u16(&mut self) -> Result<u16, Error> {
        self.array().map(u16::from_le_bytes)
    }

    fn i16(&mut self) -> Result<i16, Error> {
        self.array().map(i16::from_le_bytes)
    }

    fn u32(&mut self) -> Result<u32, Error> {
        self.array().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, Error> {
        self.array().map(u64::from_le_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One of every event, as a viewer would send them.
    fn every_event() -> Message {
        Message {
            seq: 7,
            sent_us: 1_795_000_000_000_000,
            held: Held {
                keys: vec![0x04, 0xE1],
                buttons: 1 << Button::Left as u8,
            },
            edges: vec![
                Edge {
                    seq: 3,
                    event: Event::Key {
                        usage: 0x05,
                        down: true,
                    },
                },
                Edge {
                    seq: 6,
                    event: Event::Button {
                        button: Button::Left,
                        down: true,
                    },
                },
            ],
            events: vec![
                Event::Key {
                    usage: 0x04,
                    down: true,
                },
                Event::Text("héllo ✓".into()),
                Event::PointerAbs { x: 0, y: 65535 },
                Event::PointerRel { dx: -3, dy: 120 },
                Event::Button {
                    button: Button::Forward,
                    down: false,
                },
                Event::Wheel { dx: 0, dy: -120 },
                Event::Gamepad(Gamepad {
                    index: 15,
                    connected: true,
                    buttons: GAMEPAD_BUTTONS,
                    sticks: [i16::MIN, i16::MAX, 0, -1],
                    triggers: [0, u16::MAX],
                }),
                Event::Touch {
                    id: 9,
                    phase: TouchPhase::Cancel,
                    x: 1,
                    y: 2,
                },
            ],
        }
    }

    #[test]
    fn every_event_round_trips() {
        let message = every_event();
        let bytes = message.encode().unwrap();
        assert_eq!(Message::decode(&bytes).unwrap(), message);
        // The version, the sequence number, then (after the send time) the held buttons and
        // keys, then the edges: 4 and 1 messages back.
        assert_eq!(bytes[0], VERSION);
        assert_eq!(&bytes[1..9], &7u64.to_le_bytes());
        assert_eq!(&bytes[17..23], &[1, 2, 0x04, 0x00, 0xE1, 0x00]);
        assert_eq!(&bytes[23..34], &[2, 4, 1, 0x05, 0x00, 1, 1, 5, 0, 1, 8]);
    }

    #[test]
    fn the_largest_state_fits_a_datagram() {
        // Every pad, every held key and a pointer: what a busy four-player couch sends.
        let message = Message {
            seq: u64::MAX,
            sent_us: u64::MAX,
            held: Held {
                keys: (0x04..0x04 + MAX_HELD_KEYS as u16).collect(),
                buttons: 0x1F,
            },
            edges: (0..MAX_EDGES as u64)
                .map(|i| Edge {
                    seq: u64::MAX - 255 + i,
                    event: Event::Key {
                        usage: 0x04,
                        down: i % 2 == 0,
                    },
                })
                .collect(),
            events: (0..MAX_GAMEPADS)
                .map(|index| {
                    Event::Gamepad(Gamepad {
                        index,
                        ..Gamepad::default()
                    })
                })
                .chain([Event::PointerAbs { x: 1, y: 1 }])
                .collect(),
        };
        let bytes = message.encode().unwrap();
        assert!(bytes.len() <= MAX_DATAGRAM, "{} bytes", bytes.len());
        assert_eq!(Message::decode(&bytes).unwrap(), message);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = every_event().encode().unwrap();
        for len in 0..bytes.len() {
            assert!(Message::decode(&bytes[..len]).is_err(), "{len} bytes");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        let err = Message::decode(&longer).unwrap_err().to_string();
        assert!(err.contains("after the last event"), "{err}");
    }

    #[test]
    fn out_of_range_values_are_refused_both_ways() {
        let cases: Vec<(Message, &str)> = vec![
            (
                Message {
                    events: vec![Event::Key {
                        usage: 0x300,
                        down: true,
                    }],
                    ..Message::default()
                },
                "not a keyboard key",
            ),
            (
                Message {
                    held: Held {
                        keys: vec![0x05, 0x04],
                        buttons: 0,
                    },
                    ..Message::default()
                },
                "ascending",
            ),
            (
                Message {
                    held: Held {
                        keys: vec![],
                        buttons: 0x20,
                    },
                    ..Message::default()
                },
                "held buttons",
            ),
            (
                Message {
                    events: vec![Event::Gamepad(Gamepad {
                        index: 16,
                        ..Gamepad::default()
                    })],
                    ..Message::default()
                },
                "gamepad 16",
            ),
            (
                Message {
                    events: vec![Event::Gamepad(Gamepad {
                        buttons: 1 << 17,
                        ..Gamepad::default()
                    })],
                    ..Message::default()
                },
                "gamepad buttons",
            ),
            (
                Message {
                    events: vec![Event::Text(String::new())],
                    ..Message::default()
                },
                "text of 0 bytes",
            ),
            (
                Message {
                    events: vec![Event::Text("x".repeat(256))],
                    ..Message::default()
                },
                "text of 256 bytes",
            ),
            (
                Message {
                    events: vec![Event::Text("y".repeat(200)); 5],
                    ..Message::default()
                },
                "at most 900",
            ),
            (
                Message {
                    seq: 300,
                    edges: vec![edge(44)],
                    ..Message::default()
                },
                "1 to 255 before it",
            ),
            (
                Message {
                    seq: 3,
                    edges: vec![edge(3)],
                    ..Message::default()
                },
                "1 to 255 before it",
            ),
            (
                Message {
                    seq: 9,
                    edges: vec![edge(5), edge(4)],
                    ..Message::default()
                },
                "oldest first",
            ),
            (
                Message {
                    seq: 9,
                    edges: vec![Edge {
                        seq: 8,
                        event: Event::Wheel { dx: 0, dy: 1 },
                    }],
                    ..Message::default()
                },
                "an edge is a key, a button",
            ),
            (
                Message {
                    seq: 9,
                    edges: vec![Edge {
                        seq: 8,
                        event: Event::Touch {
                            id: 0,
                            phase: TouchPhase::Move,
                            x: 0,
                            y: 0,
                        },
                    }],
                    ..Message::default()
                },
                "a touch's down, up or cancel",
            ),
            (
                Message {
                    seq: 100,
                    edges: (0..=MAX_EDGES as u64).map(|i| edge(50 + i)).collect(),
                    ..Message::default()
                },
                "at most 16",
            ),
        ];
        for (message, needle) in cases {
            let err = message.encode().unwrap_err().to_string();
            assert!(err.contains(needle), "{message:?}: {err}");
        }
    }

    fn edge(seq: u64) -> Edge {
        Edge {
            seq,
            event: Event::Key {
                usage: 0x04,
                down: true,
            },
        }
    }

    #[test]
    fn malformed_bytes_say_what_is_wrong() {
        let good = every_event().encode().unwrap();
        let mut wrong_version = good.clone();
        wrong_version[0] = 1;
        // An edge from before the first message.
        let mut before_start = Message {
            seq: 2,
            edges: vec![edge(1)],
            ..Message::default()
        }
        .encode()
        .unwrap();
        before_start[20] = 3;
        let mut bad_flag = Message {
            events: vec![Event::Key {
                usage: 4,
                down: true,
            }],
            ..Message::default()
        }
        .encode()
        .unwrap();
        *bad_flag.last_mut().unwrap() = 2;
        let mut bad_text = Message {
            events: vec![Event::Text("ab".into())],
            ..Message::default()
        }
        .encode()
        .unwrap();
        *bad_text.last_mut().unwrap() = 0xFF;
        let mut unknown = Message::default().encode().unwrap();
        *unknown.last_mut().unwrap() = 1;
        unknown.push(99);
        let cases = [
            (wrong_version, "version 1"),
            (before_start, "3 messages back from 2"),
            (bad_flag, "flag"),
            (bad_text, "UTF-8"),
            (unknown, "unknown event 99"),
            (vec![0; MAX_DATAGRAM + 1], "at most 900"),
        ];
        for (bytes, needle) in cases {
            let err = Message::decode(&bytes).unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
        }
    }
}
