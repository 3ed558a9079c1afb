//! The host's side of one viewer's input: which datagrams are taken, and what they do.
//!
//! A [`Gate`] takes the viewer's datagrams with the time they arrived (µs on the host's
//! monotonic or wall clock: any one clock, as long as it is the same for every call) and turns
//! them into the [`Event`]s the compositor is to see: presses and releases exactly once each
//! (reconciled with the held set), pads only when they change, pointer, wheel, text and touch
//! as sent. It never reads a clock, so it is tested on simulated time.
//!
//! What it drops, each counted by reason ([`Counters`]):
//! - *rate-limited*: more than [`Limits::per_second`] datagrams (a token bucket of
//!   [`Limits::burst`]), checked before anything is decoded;
//! - *malformed*: what [`Message::decode`] refuses (version, lengths, ranges);
//! - *duplicate* and *out of order*: a sequence number already seen, or older than the
//!   newest; the newer message's held set and edges already say what the older one would
//!   have;
//! - *text limited*: characters of text beyond [`Limits::text_per_second`] (a bucket of
//!   [`Limits::text_burst`]): typing each one costs the compositor several key events, so a
//!   viewer pasting without end cannot crowd out the others. A text event goes whole or not
//!   at all; the datagram's other events still count.
//!
//! A datagram sent more than [`Limits::max_age_us`] before it arrived (measured against the
//! quickest arrival seen so far, so a constant offset between the viewer's clock and the
//! host's does not count, only delay beyond the path's best) is *late*: its motion (pointer,
//! wheel, touch moves) is dropped as no longer meant, but its presses, releases, text, pads
//! and held set still count. Lateness never loses a press.
//!
//! Keys and buttons follow each message's edges: first those repeated from earlier messages
//! that never arrived (counted as *recovered*), then its own, then its held set: anything
//! held that is not pressed is pressed, anything pressed that is not held is released. A lost
//! datagram therefore costs at most the time to the next one, never a stuck key nor a lost
//! tap. A viewer that goes silent for [`SILENT_AFTER_US`] (or leaves) has everything released
//! ([`Gate::release_all`]).

use super::{Button, Edge, Event, Gamepad, MAX_GAMEPADS, Message, TouchPhase};

/// How often a viewer holding anything down sends its state even when nothing changes, so
/// the host can tell a held key from a viewer that is gone.
pub const HEARTBEAT_US: u64 = 250_000;
/// Silence after which the host releases what a viewer held: four missed heartbeats.
pub const SILENT_AFTER_US: u64 = 4 * HEARTBEAT_US;

/// What a gate lets through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The most a datagram may lag the path's quickest, in µs.
    pub max_age_us: u64,
    /// Datagrams per second, sustained.
    pub per_second: u32,
    /// Datagrams in a burst beyond the sustained rate.
    pub burst: u32,
    /// Characters of text per second, sustained.
    pub text_per_second: u32,
    /// Characters of text in a burst (a paste) beyond the sustained rate.
    pub text_burst: u32,
}

impl Default for Limits {
    /// 250 ms of lag: a press older than that is no longer what the player meant (a game's
    /// input is stale after a few frames; a quarter second leaves room for a bad Wi-Fi
    /// moment). 1000 datagrams a second with bursts of 250: a 1000 Hz mouse with a gamepad,
    /// never a flood. Text at 100 characters a second (a fast typist makes 15) with pastes of
    /// up to 2000 typed at once.
    fn default() -> Self {
        Self {
            max_age_us: 250_000,
            per_second: 1000,
            burst: 250,
            text_per_second: 100,
            text_burst: 2000,
        }
    }
}

/// Why a datagram was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejected {
    RateLimited,
    Malformed,
    Duplicate,
    OutOfOrder,
}

/// What a taken datagram was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Taken {
    /// When the viewer sent it (the viewer's clock).
    pub sent_us: u64,
    /// It came too late for its motion, which was dropped (its presses were not).
    pub late: bool,
    /// Key and button edges of lost datagrams that it brought back.
    pub recovered: u32,
    /// Characters of text dropped over the text budget.
    pub text_limited: u32,
}

/// Datagrams taken and dropped, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub accepted: u64,
    pub rate_limited: u64,
    pub malformed: u64,
    pub duplicate: u64,
    pub out_of_order: u64,
    /// Taken datagrams whose motion was dropped for lateness.
    pub late: u64,
    /// Edges played from repeats because the datagram that first carried them was lost.
    pub recovered: u64,
    /// Characters of text dropped over the text budget.
    pub text_limited: u64,
}

/// A token bucket: `per_second` tokens a second, holding at most `burst`.
#[derive(Clone, Debug)]
struct Bucket {
    per_second: u32,
    burst: u32,
    /// In millionths of a token.
    micros: u64,
    filled_us: Option<u64>,
}

impl Bucket {
    fn full(per_second: u32, burst: u32) -> Self {
        Self {
            per_second,
            burst: burst.max(1),
            micros: u64::from(burst.max(1)) * 1_000_000,
            filled_us: None,
        }
    }

    /// Take `n` tokens at `now_us`, if the bucket holds them.
    fn take(&mut self, n: u64, now_us: u64) -> bool {
        let capacity = u64::from(self.burst) * 1_000_000;
        let since = self
            .filled_us
            .map_or(0, |filled| now_us.saturating_sub(filled));
        self.filled_us = Some(now_us);
        // µs × tokens per second = millionths of a token.
        let refill = since.saturating_mul(u64::from(self.per_second));
        self.micros = self.micros.saturating_add(refill).min(capacity);
        let want = n.saturating_mul(1_000_000);
        if self.micros < want {
            return false;
        }
        self.micros -= want;
        true
    }
}

/// One viewer's input, as the host takes it.
#[derive(Clone, Debug)]
pub struct Gate {
    limits: Limits,
    counters: Counters,
    datagrams: Bucket,
    text: Bucket,
    newest_seq: Option<u64>,
    /// The next message is a new sender's first taken anywhere ([`Gate::new_sender`]).
    new_sender: bool,
    /// The smallest arrival − send seen: the path's best plus the clocks' offset.
    quickest: Option<i128>,
    last_accepted_us: Option<u64>,
    keys: Vec<u16>,
    buttons: u8,
    pads: [Option<Gamepad>; MAX_GAMEPADS as usize],
    touches: u16,
}

impl Gate {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            counters: Counters::default(),
            datagrams: Bucket::full(limits.per_second, limits.burst),
            text: Bucket::full(limits.text_per_second, limits.text_burst),
            newest_seq: None,
            new_sender: false,
            quickest: None,
            last_accepted_us: None,
            keys: Vec::new(),
            buttons: 0,
            pads: [None; MAX_GAMEPADS as usize],
            touches: 0,
        }
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Keys held at the host for this viewer (HID usages, ascending).
    pub fn held_keys(&self) -> &[u16] {
        &self.keys
    }

    /// Take one datagram that arrived at `now_us`; its actions are appended to `out`.
    pub fn receive(
        &mut self,
        datagram: &[u8],
        now_us: u64,
        out: &mut Vec<Event>,
    ) -> Result<Taken, Rejected> {
        let newest = self.newest_seq;
        let result = self.admit(datagram, now_us);
        let counter = match result {
            Ok(_) => &mut self.counters.accepted,
            Err(Rejected::RateLimited) => &mut self.counters.rate_limited,
            Err(Rejected::Malformed) => &mut self.counters.malformed,
            Err(Rejected::Duplicate) => &mut self.counters.duplicate,
            Err(Rejected::OutOfOrder) => &mut self.counters.out_of_order,
        };
        *counter += 1;
        let (mut message, late) = result?;
        self.last_accepted_us = Some(now_us);
        let mut taken = Taken {
            sent_us: message.sent_us,
            late,
            recovered: 0,
            text_limited: 0,
        };
        message.events.retain(|event| match event {
            Event::Text(text) => {
                let chars = text.chars().count();
                let typed = self.text.take(chars as u64, now_us);
                if !typed {
                    taken.text_limited += chars as u32;
                }
                typed
            }
            _ => true,
        });
        self.counters.text_limited += u64::from(taken.text_limited);
        // Edges of messages this gate never took. On a viewer's first message there is no
        // telling which were taken before (by another gate, or before a restart), so none,
        // unless it is a new sender's: then none were, and all were lost.
        let new_sender = std::mem::take(&mut self.new_sender);
        for Edge { seq, event } in std::mem::take(&mut message.edges) {
            if newest.map_or(new_sender, |newest| seq > newest) {
                taken.recovered += 1;
                self.edge(event, out);
            }
        }
        self.counters.late += u64::from(late);
        self.counters.recovered += u64::from(taken.recovered);
        self.apply(message, late, out);
        Ok(taken)
    }

    /// The next datagram is the first taken from its sender anywhere (the host knows it by
    /// the sender's seal): its repeated edges were all lost on the way, and are played. Only
    /// for a gate that has taken nothing yet.
    pub fn new_sender(&mut self) {
        self.new_sender = self.newest_seq.is_none();
    }

    /// Release everything if the viewer has said nothing for [`SILENT_AFTER_US`]; true if it
    /// did.
    pub fn check_silence(&mut self, now_us: u64, out: &mut Vec<Event>) -> bool {
        match self.last_accepted_us {
            Some(last) if now_us.saturating_sub(last) >= SILENT_AFTER_US => {
                self.last_accepted_us = None;
                self.release_all(out);
                true
            }
            _ => false,
        }
    }

    /// Release every key, button, pad and touch the viewer holds (it left, or went silent).
    pub fn release_all(&mut self, out: &mut Vec<Event>) {
        for usage in std::mem::take(&mut self.keys) {
            out.push(Event::Key { usage, down: false });
        }
        self.set_buttons(0, out);
        for pad in self.pads.iter_mut() {
            if let Some(state) = pad.take() {
                out.push(Event::Gamepad(Gamepad {
                    index: state.index,
                    ..Gamepad::default()
                }));
            }
        }
        for id in 0..16u8 {
            if self.touches & (1 << id) != 0 {
                out.push(Event::Touch {
                    id,
                    phase: TouchPhase::Cancel,
                    x: 0,
                    y: 0,
                });
            }
        }
        self.touches = 0;
    }

    /// The message, and whether it is late.
    fn admit(&mut self, datagram: &[u8], now_us: u64) -> Result<(Message, bool), Rejected> {
        self.take_token(now_us)?;
        let message = Message::decode(datagram).map_err(|_| Rejected::Malformed)?;
        match self.newest_seq {
            Some(newest) if message.seq == newest => return Err(Rejected::Duplicate),
            Some(newest) if message.seq < newest => return Err(Rejected::OutOfOrder),
            _ => {}
        }
        let lag = i128::from(now_us) - i128::from(message.sent_us);
        let quickest = *self.quickest.get_or_insert(lag);
        self.quickest = Some(quickest.min(lag));
        let late = lag - quickest > i128::from(self.limits.max_age_us);
        self.newest_seq = Some(message.seq);
        Ok((message, late))
    }

    fn take_token(&mut self, now_us: u64) -> Result<(), Rejected> {
        if self.datagrams.take(1, now_us) {
            Ok(())
        } else {
            Err(Rejected::RateLimited)
        }
    }

    /// A key, button or touch edge of a message never taken: played unless the state it
    /// leads to is already so.
    fn edge(&mut self, event: Event, out: &mut Vec<Event>) {
        match event {
            Event::Touch { id, phase, .. } => {
                let down = self.touches & (1 << id) != 0;
                if down != (phase == TouchPhase::Down) {
                    self.touch(event, out);
                }
            }
            Event::Key { usage, down } => self.set_key(usage, down, out),
            Event::Button { button, down } => {
                let bit = 1 << button as u8;
                let buttons = if down {
                    self.buttons | bit
                } else {
                    self.buttons & !bit
                };
                self.set_buttons(buttons, out);
            }
            _ => {}
        }
    }

    fn apply(&mut self, message: Message, late: bool, out: &mut Vec<Event>) {
        for event in message.events {
            match event {
                Event::Key { .. } | Event::Button { .. } => self.edge(event, out),
                Event::PointerAbs { .. }
                | Event::PointerRel { .. }
                | Event::Wheel { .. }
                | Event::Touch {
                    phase: TouchPhase::Move,
                    ..
                } if late => {}
                Event::Text(_)
                | Event::PointerAbs { .. }
                | Event::PointerRel { .. }
                | Event::Wheel { .. } => out.push(event),
                Event::Gamepad(pad) => {
                    let slot = &mut self.pads[pad.index as usize];
                    let state = if pad.connected {
                        pad
                    } else {
                        Gamepad {
                            index: pad.index,
                            ..Gamepad::default()
                        }
                    };
                    if *slot != Some(state) && (pad.connected || slot.is_some()) {
                        out.push(Event::Gamepad(state));
                    }
                    *slot = pad.connected.then_some(state);
                }
                Event::Touch { .. } => self.touch(event, out),
            }
        }
        // The held set is the truth as of this message: press and release what its edges (or
        // lost ones) left different.
        let held = message.held;
        let stale: Vec<u16> = self
            .keys
            .iter()
            .copied()
            .filter(|k| !held.keys.contains(k))
            .collect();
        for usage in stale {
            self.set_key(usage, false, out);
        }
        for usage in held.keys {
            self.set_key(usage, true, out);
        }
        self.set_buttons(held.buttons, out);
    }

    /// Press or release a key, once: a press of a held key or a release of a free one does
    /// nothing.
    fn set_key(&mut self, usage: u16, down: bool, out: &mut Vec<Event>) {
        match (self.keys.binary_search(&usage), down) {
            (Err(at), true) => self.keys.insert(at, usage),
            (Ok(at), false) => {
                self.keys.remove(at);
            }
            _ => return,
        }
        out.push(Event::Key { usage, down });
    }

    /// A touch point's event: which points are down follows it.
    fn touch(&mut self, event: Event, out: &mut Vec<Event>) {
        if let Event::Touch { id, phase, .. } = event {
            let bit = 1u16 << id;
            match phase {
                TouchPhase::Down => self.touches |= bit,
                TouchPhase::Up | TouchPhase::Cancel => self.touches &= !bit,
                TouchPhase::Move => {}
            }
        }
        out.push(event);
    }

    fn set_buttons(&mut self, buttons: u8, out: &mut Vec<Event>) {
        for button in Button::ALL {
            let bit = 1 << button as u8;
            let (was, is) = (self.buttons & bit != 0, buttons & bit != 0);
            if was != is {
                out.push(Event::Button { button, down: is });
            }
        }
        self.buttons = buttons;
    }
}

#[cfg(test)]
mod tests {
    use super::super::Held;
    use super::*;

    const MS: u64 = 1000;

    /// A viewer whose clock is `skew` ahead of the host's, sending numbered messages.
    struct Viewer {
        seq: u64,
        skew_us: i64,
    }

    impl Viewer {
        fn new(skew_us: i64) -> Self {
            Self { seq: 0, skew_us }
        }

        fn send(&mut self, now_us: u64, keys: &[u16], buttons: u8, events: Vec<Event>) -> Vec<u8> {
            let message = Message {
                seq: self.seq,
                sent_us: (now_us as i64 + self.skew_us) as u64,
                held: Held {
                    keys: keys.to_vec(),
                    buttons,
                },
                edges: Vec::new(),
                events,
            };
            self.seq += 1;
            message.encode().unwrap()
        }
    }

    fn key(usage: u16, down: bool) -> Event {
        Event::Key { usage, down }
    }

    fn taken(gate: &mut Gate, datagram: &[u8], now_us: u64) -> Vec<Event> {
        let mut out = Vec::new();
        gate.receive(datagram, now_us, &mut out).unwrap();
        out
    }

    #[test]
    fn edges_pass_once_and_the_held_set_recovers_lost_ones() {
        let mut gate = Gate::new(Limits::default());
        let mut viewer = Viewer::new(1_795_000_000_000_000);
        let t = 1_000_000;
        let down = viewer.send(t, &[0x04], 0, vec![key(0x04, true)]);
        assert_eq!(
            taken(&mut gate, &down, t),
            [Event::Key {
                usage: 4,
                down: true
            }]
        );
        // The release is lost; the next message holds nothing: the key comes up.
        let _lost = viewer.send(t + 10 * MS, &[], 0, vec![key(0x04, false)]);
        let moved = viewer.send(
            t + 20 * MS,
            &[],
            0,
            vec![Event::PointerRel { dx: 1, dy: 0 }],
        );
        assert_eq!(
            taken(&mut gate, &moved, t + 21 * MS),
            [
                Event::PointerRel { dx: 1, dy: 0 },
                Event::Key {
                    usage: 4,
                    down: false
                }
            ]
        );
        // A press lost, then only the held set: pressed once, not again.
        let _lost = viewer.send(t + 30 * MS, &[0x05], 1, vec![key(0x05, true)]);
        let heartbeat = viewer.send(t + 40 * MS, &[0x05], 1, vec![]);
        assert_eq!(
            taken(&mut gate, &heartbeat, t + 41 * MS),
            [
                Event::Key {
                    usage: 5,
                    down: true
                },
                Event::Button {
                    button: Button::Left,
                    down: true
                }
            ]
        );
        let again = viewer.send(t + 50 * MS, &[0x05], 1, vec![]);
        assert_eq!(taken(&mut gate, &again, t + 51 * MS), []);
        // A tap inside one message: down and up, in order.
        let tap = viewer.send(
            t + 60 * MS,
            &[0x05],
            1,
            vec![key(0x06, true), key(0x06, false)],
        );
        assert_eq!(
            taken(&mut gate, &tap, t + 61 * MS),
            [
                Event::Key {
                    usage: 6,
                    down: true
                },
                Event::Key {
                    usage: 6,
                    down: false
                }
            ]
        );
        assert_eq!(gate.held_keys(), [0x05]);
        assert_eq!(gate.counters().accepted, 5);
    }

    #[test]
    fn duplicates_older_messages_and_garbage_are_dropped_and_counted() {
        let mut gate = Gate::new(Limits::default());
        let mut viewer = Viewer::new(0);
        let first = viewer.send(0, &[], 0, vec![key(0x04, true)]);
        let second = viewer.send(MS, &[0x04], 0, vec![]);
        let mut out = Vec::new();
        gate.receive(&second, 2 * MS, &mut out).unwrap();
        assert_eq!(
            gate.receive(&second, 3 * MS, &mut out),
            Err(Rejected::Duplicate)
        );
        assert_eq!(
            gate.receive(&first, 3 * MS, &mut out),
            Err(Rejected::OutOfOrder)
        );
        assert_eq!(
            gate.receive(&[1, 2, 3], 3 * MS, &mut out),
            Err(Rejected::Malformed)
        );
        assert_eq!(
            gate.receive(&[], 3 * MS, &mut out),
            Err(Rejected::Malformed)
        );
        let c = gate.counters();
        assert_eq!(
            (c.accepted, c.duplicate, c.out_of_order, c.malformed),
            (1, 1, 1, 2)
        );
        // The newer message's held set pressed the key the older one would have.
        assert_eq!(
            out,
            [Event::Key {
                usage: 4,
                down: true
            }]
        );
    }

    #[test]
    fn lag_beyond_the_paths_best_drops_motion_not_presses_whatever_the_clocks_offset() {
        for skew in [1_795_000_000_000_000i64, 0, -5_000_000] {
            let mut gate = Gate::new(Limits::default());
            let mut viewer = Viewer::new(skew);
            let t = 10_000_000u64;
            // 3 ms on the way, then one delayed by 300 ms (beyond 250), then 200 ms (within).
            let quick = viewer.send(t, &[], 0, vec![]);
            taken(&mut gate, &quick, t + 3 * MS);
            let motion = Event::PointerRel { dx: 5, dy: 0 };
            let late = viewer.send(
                t + 10 * MS,
                &[0x04],
                0,
                vec![motion.clone(), key(0x04, true)],
            );
            let mut out = Vec::new();
            let got = gate.receive(&late, t + 313 * MS, &mut out).unwrap();
            assert!(got.late, "skew {skew}");
            assert_eq!(out, [key(0x04, true)], "skew {skew}");
            let slow = viewer.send(t + 400 * MS, &[0x04], 0, vec![motion.clone()]);
            let got = gate.receive(&slow, t + 603 * MS, &mut out).unwrap();
            assert!(!got.late, "skew {skew}");
            assert_eq!(out.last(), Some(&motion), "skew {skew}");
            assert_eq!(gate.counters().late, 1);
        }
    }

    #[test]
    fn a_lost_tap_is_played_from_the_next_messages_edges_once() {
        let mut gate = Gate::new(Limits::default());
        let mut viewer = Viewer::new(0);
        let first = viewer.send(0, &[], 0, vec![]);
        taken(&mut gate, &first, MS);
        // Message 1, a tap of 0x04 and a click, is lost.
        let _lost = viewer.send(MS, &[], 0, vec![key(0x04, true), key(0x04, false)]);
        // Message 2 repeats its edges and adds a press of its own.
        let click = |down| Event::Button {
            button: Button::Left,
            down,
        };
        let mut next =
            Message::decode(&viewer.send(2 * MS, &[0x05], 0, vec![key(0x05, true)])).unwrap();
        next.edges = [key(0x04, true), key(0x04, false), click(true), click(false)]
            .into_iter()
            .map(|event| Edge { seq: 1, event })
            .collect();
        let mut out = Vec::new();
        let got = gate.receive(&next.encode().unwrap(), 3 * MS, &mut out);
        assert_eq!(got.unwrap().recovered, 4);
        assert_eq!(
            out,
            [
                key(0x04, true),
                key(0x04, false),
                click(true),
                click(false),
                key(0x05, true)
            ]
        );
        // Message 3 repeats message 1's and 2's edges again: all taken already.
        let mut again = Message::decode(&viewer.send(4 * MS, &[0x05], 0, vec![])).unwrap();
        again.edges = next.edges.clone();
        again.edges.push(Edge {
            seq: 2,
            event: key(0x05, true),
        });
        assert_eq!(taken(&mut gate, &again.encode().unwrap(), 5 * MS), []);
        assert_eq!(gate.counters().recovered, 4);
    }

    #[test]
    fn a_lost_touch_is_played_from_the_next_messages_edges_once() {
        let mut gate = Gate::new(Limits::default());
        let mut viewer = Viewer::new(0);
        let first = viewer.send(0, &[], 0, vec![]);
        taken(&mut gate, &first, MS);
        let touch = |phase, x| Event::Touch {
            id: 1,
            phase,
            x,
            y: 100,
        };
        let (down, up) = (TouchPhase::Down, TouchPhase::Up);
        // Message 1, a tap, is lost; message 2 repeats its down and up.
        let _lost = viewer.send(MS, &[], 0, vec![touch(down, 10), touch(up, 10)]);
        let mut next = Message::decode(&viewer.send(2 * MS, &[], 0, vec![])).unwrap();
        next.edges = [touch(down, 10), touch(up, 10)]
            .into_iter()
            .map(|event| Edge { seq: 1, event })
            .collect();
        let tap = taken(&mut gate, &next.encode().unwrap(), 3 * MS);
        assert_eq!(tap, [touch(down, 10), touch(up, 10)]);
        // Message 3, a down, is taken; 4, its up, is lost; 5 repeats both: the up alone
        // is played, and the point is not left down.
        let pressed = viewer.send(4 * MS, &[], 0, vec![touch(down, 20)]);
        assert_eq!(taken(&mut gate, &pressed, 5 * MS), [touch(down, 20)]);
        let _lost = viewer.send(6 * MS, &[], 0, vec![touch(up, 20)]);
        let mut last = Message::decode(&viewer.send(7 * MS, &[], 0, vec![])).unwrap();
        last.edges = vec![
            Edge {
                seq: 3,
                event: touch(down, 20),
            },
            Edge {
                seq: 4,
                event: touch(up, 20),
            },
            Edge {
                seq: 4,
                event: touch(up, 20),
            },
        ];
        assert_eq!(
            taken(&mut gate, &last.encode().unwrap(), 8 * MS),
            [touch(up, 20)]
        );
        let mut out = Vec::new();
        gate.release_all(&mut out);
        assert_eq!(out, [], "a touch point left down");
    }

    #[test]
    fn a_first_message_replays_no_edges() {
        // Its edges may have been taken before this gate existed (a host restart, a new
        // announcement): the held set is all it goes by.
        let mut gate = Gate::new(Limits::default());
        let mut message = Message {
            seq: 9,
            ..Message::default()
        };
        message.edges.push(Edge {
            seq: 8,
            event: key(0x04, true),
        });
        assert_eq!(taken(&mut gate, &message.encode().unwrap(), MS), []);
    }

    #[test]
    fn a_new_senders_first_message_brings_back_what_it_repeats() {
        // Its first datagram (a tap, seq 0) was lost; the next repeats the tap's edges.
        let mut second = Message {
            seq: 1,
            sent_us: MS,
            ..Message::default()
        };
        for down in [true, false] {
            second.edges.push(Edge {
                seq: 0,
                event: key(0x04, down),
            });
        }
        let mut gate = Gate::new(Limits::default());
        gate.new_sender();
        assert_eq!(
            taken(&mut gate, &second.encode().unwrap(), 2 * MS),
            [key(0x04, true), key(0x04, false)]
        );
        assert_eq!(gate.counters().recovered, 2);
        // Told so once a gate has taken a message, it changes nothing: the edges it took
        // are not played twice.
        let third = Message {
            seq: 2,
            sent_us: 2 * MS,
            ..second.clone()
        };
        gate.new_sender();
        assert_eq!(taken(&mut gate, &third.encode().unwrap(), 3 * MS), []);
    }

    #[test]
    fn a_flood_is_cut_to_the_rate() {
        let limits = Limits {
            per_second: 100,
            burst: 10,
            ..Limits::default()
        };
        let mut gate = Gate::new(limits);
        let mut viewer = Viewer::new(0);
        let mut out = Vec::new();
        // 1000 datagrams in one second: the burst, then 100 a second.
        for i in 0..1000u64 {
            let now = i * MS;
            let datagram = viewer.send(now, &[], 0, vec![]);
            let _ = gate.receive(&datagram, now, &mut out);
        }
        let c = gate.counters();
        assert!((105..=111).contains(&c.accepted), "{c:?}");
        assert_eq!(c.accepted + c.rate_limited, 1000);
        // Rate limiting comes before decoding: garbage in a flood costs no parse.
        for _ in 0..50 {
            let _ = gate.receive(&[0xFF; 900], 1_000 * MS, &mut out);
        }
        assert!(gate.counters().malformed < 5, "{:?}", gate.counters());
    }

    #[test]
    fn endless_text_is_cut_to_its_budget_and_keys_still_pass() {
        let limits = Limits {
            text_per_second: 100,
            text_burst: 1000,
            ..Limits::default()
        };
        let mut gate = Gate::new(limits);
        let mut viewer = Viewer::new(0);
        let line = "x".repeat(200);
        let mut typed = 0;
        let mut keys = 0;
        // Twenty lines of 200 in 20 ms, each with a press: a burst's worth of text goes.
        for i in 0..20u64 {
            let now = i * MS;
            let held: &[u16] = if i % 2 == 0 { &[0x04] } else { &[] };
            let events = vec![key(0x04, i % 2 == 0), Event::Text(line.clone())];
            let mut out = Vec::new();
            gate.receive(&viewer.send(now, held, 0, events), now, &mut out)
                .unwrap();
            for event in out {
                match event {
                    Event::Text(text) => typed += text.len(),
                    Event::Key { .. } => keys += 1,
                    _ => {}
                }
            }
        }
        // The burst (1000), and the 2 characters the 19 ms since refilled: not a whole line.
        assert_eq!(typed, 1000);
        assert_eq!(keys, 20);
        assert_eq!(gate.counters().text_limited, 20 * 200 - 1000);
        // A second later the bucket holds 100 again: half a line does not fit, a short one does.
        let now = 1_019 * MS;
        let mut out = Vec::new();
        let events = vec![Event::Text("y".repeat(150)), Event::Text("z".repeat(90))];
        let taken = gate.receive(&viewer.send(now, &[], 0, events), now, &mut out);
        assert_eq!(taken.unwrap().text_limited, 150);
        assert_eq!(out, [Event::Text("z".repeat(90))]);
    }

    #[test]
    fn silence_or_leaving_releases_everything_once() {
        let mut gate = Gate::new(Limits::default());
        let mut viewer = Viewer::new(0);
        let pad = Gamepad {
            index: 2,
            connected: true,
            buttons: 1,
            sticks: [100, 0, 0, 0],
            triggers: [0, 9],
        };
        let events = vec![
            key(0x04, true),
            Event::Gamepad(pad),
            Event::Touch {
                id: 3,
                phase: TouchPhase::Down,
                x: 5,
                y: 5,
            },
        ];
        let datagram = viewer.send(0, &[0x04], 0b10, events);
        taken(&mut gate, &datagram, MS);
        let mut out = Vec::new();
        assert!(!gate.check_silence(MS + SILENT_AFTER_US - 1, &mut out));
        assert!(gate.check_silence(MS + SILENT_AFTER_US, &mut out));
        assert_eq!(
            out,
            [
                Event::Key {
                    usage: 4,
                    down: false
                },
                Event::Button {
                    button: Button::Right,
                    down: false
                },
                Event::Gamepad(Gamepad {
                    index: 2,
                    ..Gamepad::default()
                }),
                Event::Touch {
                    id: 3,
                    phase: TouchPhase::Cancel,
                    x: 0,
                    y: 0
                },
            ]
        );
        out.clear();
        assert!(!gate.check_silence(MS + 2 * SILENT_AFTER_US, &mut out));
        gate.release_all(&mut out);
        assert_eq!(out, [], "nothing is released twice");
    }

    #[test]
    fn pads_report_changes_and_a_disconnect_once() {
        let mut gate = Gate::new(Limits::default());
        let mut viewer = Viewer::new(0);
        let pad = Gamepad {
            index: 0,
            connected: true,
            buttons: 0b101,
            ..Gamepad::default()
        };
        let first = viewer.send(0, &[], 0, vec![Event::Gamepad(pad)]);
        assert_eq!(taken(&mut gate, &first, MS), [Event::Gamepad(pad)]);
        let same = viewer.send(MS, &[], 0, vec![Event::Gamepad(pad)]);
        assert_eq!(taken(&mut gate, &same, 2 * MS), []);
        let gone = Gamepad {
            connected: false,
            ..pad
        };
        let left = viewer.send(2 * MS, &[], 0, vec![Event::Gamepad(gone)]);
        let neutral = Gamepad::default();
        assert_eq!(taken(&mut gate, &left, 3 * MS), [Event::Gamepad(neutral)]);
        let again = viewer.send(3 * MS, &[], 0, vec![Event::Gamepad(gone)]);
        assert_eq!(taken(&mut gate, &again, 4 * MS), []);
    }
}
