//! The viewer's side of input: what goes into each datagram, and how input-to-photon is paired.
//!
//! An [`Outbox`] numbers the viewer's messages, keeps the held set (keys, buttons and the
//! connected pads' state) that every message repeats, splits what does not fit one datagram,
//! and sends the held set on its own every [`HEARTBEAT_US`] while anything is held, so the
//! host can tell a held key from a viewer that is gone. Each key and button edge rides the
//! next [`REPEATS`] messages too, and every message for [`REPEAT_SPAN_US`]; when nothing else
//! goes out, repeats go on their own ([`REPEAT_FIRST_US`] after, then twice and four times
//! that): a lost datagram, or a burst of them, loses no press and no release. It never reads
//! a clock.
//!
//! A [`PhotonMeter`] pairs presses with pictures: the test app draws the number of presses it
//! has received into each frame (the [`crate::stamp::Echo`]), so the first decoded picture
//! whose count reaches a press's place shows that press's effect.

use std::collections::VecDeque;

use super::{Button, Edge, Event, Gamepad, HEARTBEAT_US, Held, MAX_DATAGRAM, MAX_GAMEPADS};
use super::{EDGE_BYTES, MAX_EDGES, MAX_HELD_KEYS, Message, keys};
use crate::Error;

/// Room left in a datagram for events after the header, the largest held set and the most
/// edges.
const EVENT_ROOM: usize = MAX_DATAGRAM - 21 - 2 * MAX_HELD_KEYS - EDGE_BYTES * MAX_EDGES;
/// Messages after its own that repeat an edge, at least.
pub const REPEATS: u8 = 3;
/// How long after it first went out an edge is still repeated, at least: longer than a
/// burst of loss that a player would forgive.
pub const REPEAT_SPAN_US: u64 = 100_000;
/// When an edge's first repeat goes on its own if nothing else went out (about a frame); the
/// next ones wait twice as long each, so a burst of loss up to ~100 ms is outlasted.
pub const REPEAT_FIRST_US: u64 = 16_000;

#[derive(Clone, Debug, Default)]
pub struct Outbox {
    seq: u64,
    held: Held,
    pads: [Option<Gamepad>; MAX_GAMEPADS as usize],
    last_sent_us: Option<u64>,
    /// Edges still to repeat, oldest first, with when each first went out and the repeats
    /// it has left.
    recent: VecDeque<(Edge, u64, u8)>,
    /// Repeats sent on their own since the newest edge.
    repeats_alone: u32,
}

impl Outbox {
    pub fn new() -> Self {
        Self::default()
    }

    /// The datagrams that carry `events` (most often one), sent at `now_us`. Events the
    /// format refuses (an unknown key, empty text, a pad index beyond 15) are an error and
    /// nothing is sent; text longer than a message holds is split between characters.
    pub fn send(&mut self, events: &[Event], now_us: u64) -> Result<Vec<Vec<u8>>, Error> {
        let (mut batches, mut batch) = (Vec::new(), Vec::new());
        let mut room = EVENT_ROOM;
        for event in events.iter().flat_map(split_text) {
            let size = event_size(&event);
            if size > room || batch.len() == u8::MAX as usize {
                batches.push(std::mem::take(&mut batch));
                room = EVENT_ROOM;
            }
            room -= size;
            batch.push(event);
        }
        batches.push(batch);
        let mut out = Vec::with_capacity(batches.len());
        let saved = self.clone();
        for batch in batches {
            for event in &batch {
                self.hold(event);
            }
            match self.message(batch, now_us).encode() {
                Ok(datagram) => out.push(datagram),
                Err(err) => {
                    *self = saved;
                    return Err(err);
                }
            }
        }
        Ok(out)
    }

    /// The held set alone (with the connected pads' state and the edges to repeat), when
    /// it is due (see [`Self::next_due`]).
    pub fn heartbeat(&mut self, now_us: u64) -> Option<Vec<u8>> {
        if self.next_due().is_none_or(|due| now_us < due) {
            return None;
        }
        if !self.recent.is_empty() {
            self.repeats_alone += 1;
        }
        let pads = self.pads.iter().flatten().map(|p| Event::Gamepad(*p));
        let message = self.message(pads.collect(), now_us);
        message.encode().ok()
    }

    /// When [`Self::heartbeat`] next has something to send (on the caller's clock, as given
    /// to `send`): a repeat of recent edges, or the held set while anything is held; None
    /// while neither is needed.
    pub fn next_due(&self) -> Option<u64> {
        let last = self.last_sent_us.unwrap_or(0);
        let holding = !self.held.keys.is_empty()
            || self.held.buttons != 0
            || self.pads.iter().any(Option::is_some);
        let heartbeat = holding.then(|| last.saturating_add(HEARTBEAT_US));
        let repeat = (!self.recent.is_empty())
            .then(|| last.saturating_add(REPEAT_FIRST_US << self.repeats_alone.min(8)));
        heartbeat.into_iter().chain(repeat).min()
    }

    /// Releases for everything held (the window lost focus, or the viewer is leaving).
    pub fn release_all(&mut self, now_us: u64) -> Result<Vec<Vec<u8>>, Error> {
        let keys = self
            .held
            .keys
            .iter()
            .map(|&usage| Event::Key { usage, down: false });
        let buttons = Button::ALL
            .into_iter()
            .filter(|b| self.held.buttons & 1 << *b as u8 != 0)
            .map(|button| Event::Button {
                button,
                down: false,
            });
        let pads = self.pads.iter().flatten().map(|p| {
            Event::Gamepad(Gamepad {
                index: p.index,
                ..Gamepad::default()
            })
        });
        let events: Vec<Event> = keys.chain(buttons).chain(pads).collect();
        if events.is_empty() {
            return Ok(Vec::new());
        }
        self.send(&events, now_us)
    }

    fn message(&mut self, events: Vec<Event>, now_us: u64) -> Message {
        let seq = self.seq;
        self.seq += 1;
        self.last_sent_us = Some(now_us);
        // The format reaches 255 messages back (a 1000 Hz mouse sends fewer in the span).
        self.recent.retain(|(edge, ..)| seq - edge.seq <= 255);
        let edges = self.recent.iter().map(|(edge, ..)| edge.clone()).collect();
        for (_, _, left) in self.recent.iter_mut() {
            *left = left.saturating_sub(1);
        }
        self.recent.retain(|(_, first_us, left)| {
            *left > 0 || now_us.saturating_sub(*first_us) < REPEAT_SPAN_US
        });
        let own = events.iter().filter(|e| e.is_edge());
        for event in own {
            if self.recent.len() == MAX_EDGES {
                self.recent.pop_front();
            }
            let edge = Edge {
                seq,
                event: event.clone(),
            };
            self.recent.push_back((edge, now_us, REPEATS));
            self.repeats_alone = 0;
        }
        Message {
            seq,
            sent_us: now_us,
            held: self.held.clone(),
            edges,
            events,
        }
    }

    fn hold(&mut self, event: &Event) {
        match *event {
            Event::Key { usage, down } => {
                let at = self.held.keys.binary_search(&usage);
                match (down, at) {
                    // Beyond the 32 a message names, a key is pressed and let go at once
                    // by the host's reconciling: far past any real use.
                    (true, Err(i)) if self.held.keys.len() < MAX_HELD_KEYS => {
                        self.held.keys.insert(i, usage)
                    }
                    (false, Ok(i)) => {
                        self.held.keys.remove(i);
                    }
                    _ => {}
                }
            }
            Event::Button { button, down } => {
                let bit = 1 << button as u8;
                self.held.buttons = if down {
                    self.held.buttons | bit
                } else {
                    self.held.buttons & !bit
                };
            }
            Event::Gamepad(pad) => {
                if let Some(slot) = self.pads.get_mut(pad.index as usize) {
                    *slot = pad.connected.then_some(pad);
                }
            }
            _ => {}
        }
    }
}

/// Text longer than one event holds, as several (split between characters).
fn split_text(event: &Event) -> Vec<Event> {
    let Event::Text(text) = event else {
        return vec![event.clone()];
    };
    let mut out = Vec::new();
    let mut piece = String::new();
    for c in text.chars() {
        if piece.len() + c.len_utf8() > u8::MAX as usize {
            out.push(Event::Text(std::mem::take(&mut piece)));
        }
        piece.push(c);
    }
    // Empty text stays one (refused) event, so the caller hears of it.
    out.push(Event::Text(piece));
    out
}

/// An event's encoded size (tag included).
fn event_size(event: &Event) -> usize {
    1 + match event {
        Event::Key { .. } => 3,
        Event::Text(text) => 1 + text.len(),
        Event::PointerAbs { .. } | Event::PointerRel { .. } | Event::Wheel { .. } => 4,
        Event::Button { .. } => 2,
        Event::Gamepad(_) => 18,
        Event::Touch { .. } => 6,
    }
}

/// The presses among `events` that the test app counts in its echo: key presses other than
/// modifiers, each character of text, and button presses.
pub fn presses(events: &[Event]) -> u32 {
    events
        .iter()
        .map(|event| match event {
            Event::Key { usage, down: true } if !keys::is_modifier(*usage) => 1,
            Event::Text(text) => text.chars().count() as u32,
            Event::Button { down: true, .. } => 1,
            _ => 0,
        })
        .sum()
}

/// How long a press may wait for its picture before it counts as unanswered.
pub const PHOTON_GIVE_UP_US: u64 = 2_000_000;

/// Pairs the presses a viewer sends with the first picture whose echo counts them.
#[derive(Clone, Debug, Default)]
pub struct PhotonMeter {
    /// The echo's count when pairing began: presses from before (or from other viewers
    /// before) are not ours.
    base: Option<u32>,
    /// Presses sent (running count) and when, oldest first, not yet seen.
    waiting: VecDeque<(u64, u64)>,
    sent: u64,
    unanswered: u64,
}

impl PhotonMeter {
    pub fn new() -> Self {
        Self::default()
    }

    /// `count` presses went out at `sent_us`. Presses sent before any echo was seen cannot
    /// be paired (the count they would reach is unknown) and are not measured.
    pub fn sent(&mut self, count: u32, sent_us: u64) {
        if self.base.is_none() {
            return;
        }
        for _ in 0..count {
            self.sent += 1;
            self.waiting.push_back((self.sent, sent_us));
        }
    }

    /// A picture whose echo reads `presses` was shown at `shown_us`: the send times of the
    /// presses it is the first to show. Presses waiting longer than [`PHOTON_GIVE_UP_US`]
    /// are given up on (see [`Self::unanswered`]).
    pub fn shown(&mut self, presses: u32, shown_us: u64) -> Vec<u64> {
        let base = *self.base.get_or_insert(presses);
        let seen = u64::from(presses.wrapping_sub(base));
        let mut answered = Vec::new();
        while let Some(&(place, sent_us)) = self.waiting.front() {
            if place <= seen {
                answered.push(sent_us);
            } else if shown_us.saturating_sub(sent_us) > PHOTON_GIVE_UP_US {
                self.unanswered += 1;
            } else {
                break;
            }
            self.waiting.pop_front();
        }
        answered
    }

    /// Presses that never showed within [`PHOTON_GIVE_UP_US`].
    pub fn unanswered(&self) -> u64 {
        self.unanswered
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::{Gate, Limits, TouchPhase};

    fn key(usage: u16, down: bool) -> Event {
        Event::Key { usage, down }
    }

    #[test]
    fn messages_are_numbered_and_carry_the_held_set() {
        let mut outbox = Outbox::new();
        let first = outbox.send(&[key(0x04, true)], 1_000).unwrap();
        let second = outbox.send(&[key(0x05, true)], 2_000).unwrap();
        let (a, b) = (
            Message::decode(&first[0]).unwrap(),
            Message::decode(&second[0]).unwrap(),
        );
        assert_eq!((a.seq, b.seq), (0, 1));
        assert_eq!(a.held.keys, [0x04]);
        assert_eq!(b.held.keys, [0x04, 0x05]);
        assert_eq!(b.sent_us, 2_000);
        let released = outbox.send(&[key(0x04, false)], 3_000).unwrap();
        assert_eq!(Message::decode(&released[0]).unwrap().held.keys, [0x05]);
    }

    #[test]
    fn long_text_and_many_events_split_into_datagrams_that_fit() {
        let mut outbox = Outbox::new();
        let text = "é".repeat(600);
        let moves: Vec<Event> = (0..400)
            .map(|i| Event::PointerRel { dx: i, dy: 1 })
            .collect();
        let mut events = vec![Event::Text(text.clone())];
        events.extend(moves);
        let datagrams = outbox.send(&events, 5).unwrap();
        assert!(datagrams.len() > 3);
        let mut typed = String::new();
        let mut count = 0;
        for (i, datagram) in datagrams.iter().enumerate() {
            assert!(datagram.len() <= MAX_DATAGRAM);
            let message = Message::decode(datagram).unwrap();
            assert_eq!(message.seq, i as u64);
            for event in message.events {
                count += 1;
                if let Event::Text(piece) = event {
                    typed.push_str(&piece);
                }
            }
        }
        assert_eq!(typed, text);
        // 1200 bytes of two-byte characters: 127 to a piece (254 bytes), so five pieces.
        assert_eq!(count, 5 + 400);
    }

    #[test]
    fn a_refused_event_sends_nothing_and_changes_nothing() {
        let mut outbox = Outbox::new();
        assert!(
            outbox
                .send(&[key(0x04, true), key(0x300, true)], 1)
                .is_err()
        );
        assert!(outbox.send(&[Event::Text(String::new())], 1).is_err());
        let next = outbox.send(&[key(0x05, true)], 2).unwrap();
        let message = Message::decode(&next[0]).unwrap();
        assert_eq!((message.seq, message.held.keys), (0, vec![0x05]));
    }

    fn decode(datagram: Option<Vec<u8>>) -> Message {
        Message::decode(&datagram.expect("a datagram")).unwrap()
    }

    #[test]
    fn a_touchs_down_and_up_are_repeated_and_its_moves_are_not() {
        let mut outbox = Outbox::new();
        let touch = |phase| Event::Touch {
            id: 0,
            phase,
            x: 5,
            y: 5,
        };
        let tap = [
            touch(TouchPhase::Down),
            touch(TouchPhase::Move),
            touch(TouchPhase::Up),
        ];
        outbox.send(&tap, 0).unwrap();
        let pointer = [Event::PointerAbs { x: 1, y: 1 }];
        let next = decode(outbox.send(&pointer, 1_000).unwrap().pop());
        let repeated: Vec<_> = next.edges.into_iter().map(|edge| edge.event).collect();
        assert_eq!(repeated, [touch(TouchPhase::Down), touch(TouchPhase::Up)]);
    }

    #[test]
    fn edges_repeat_then_heartbeats_go_out_while_something_is_held() {
        let mut outbox = Outbox::new();
        assert_eq!(outbox.heartbeat(10_000_000), None);
        assert_eq!(outbox.next_due(), None);
        outbox.send(&[key(0x04, true)], 0).unwrap();
        // The press repeats on its own 16, 48 and 112 ms on.
        let mut repeats = Vec::new();
        while let Some(due) = outbox.next_due().filter(|&due| due < HEARTBEAT_US) {
            assert_eq!(outbox.heartbeat(due - 1), None);
            let message = decode(outbox.heartbeat(due));
            assert_eq!(
                message.edges,
                [Edge {
                    seq: 0,
                    event: key(0x04, true)
                }]
            );
            repeats.push(due / 1000);
        }
        assert_eq!(repeats, [16, 48, 112]);
        // Then the held set alone, a heartbeat after the last.
        let due = outbox.next_due().unwrap();
        assert_eq!(due, 112_000 + HEARTBEAT_US);
        let beat = decode(outbox.heartbeat(due));
        assert_eq!(
            (beat.seq, beat.held.keys, beat.edges, beat.events),
            (4, vec![0x04], vec![], vec![])
        );
        // The release repeats too, then nothing is due.
        outbox.send(&[key(0x04, false)], 1_000_000).unwrap();
        for _ in 0..3 {
            let due = outbox.next_due().unwrap();
            assert_eq!(decode(outbox.heartbeat(due)).edges.len(), 1);
        }
        assert_eq!(outbox.next_due(), None);
        assert_eq!(outbox.heartbeat(10 * HEARTBEAT_US), None);
        // A connected pad is held state too, and its state rides the heartbeat.
        let pad = Gamepad {
            index: 3,
            connected: true,
            buttons: 1,
            ..Gamepad::default()
        };
        outbox
            .send(&[Event::Gamepad(pad)], 20 * HEARTBEAT_US)
            .unwrap();
        let beat = outbox.heartbeat(21 * HEARTBEAT_US).unwrap();
        assert_eq!(
            Message::decode(&beat).unwrap().events,
            [Event::Gamepad(pad)]
        );
    }

    /// A seeded xorshift: the same losses every run.
    struct Coin(u64);

    impl Coin {
        fn below(&mut self, p: f64) -> bool {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 11) as f64 / (1u64 << 53) as f64 <= p
        }
    }

    /// Type `taps` keys (a press, 15 ms later its release, one every `every_ms`) through a
    /// path that loses datagrams by `lose(ms)`; the keys the host saw, as (usage, down), and
    /// how many of them it recovered from repeats.
    fn type_through(
        taps: u16,
        every_ms: u64,
        mut lose: impl FnMut(u64) -> bool,
    ) -> (Vec<(u16, bool)>, u64) {
        let mut outbox = Outbox::new();
        let mut gate = Gate::new(Limits::default());
        let mut seen = Vec::new();
        let usage = |tap: u64| 0x04 + (tap % 26) as u16;
        let end = u64::from(taps) * every_ms + 500;
        for ms in 0..end {
            let now = ms * 1000;
            let (tap, within) = (ms / every_ms, ms % every_ms);
            let mut datagrams = match within {
                0 if tap < u64::from(taps) => outbox.send(&[key(usage(tap), true)], now).unwrap(),
                15 if tap < u64::from(taps) => outbox.send(&[key(usage(tap), false)], now).unwrap(),
                _ => Vec::new(),
            };
            datagrams.extend(outbox.heartbeat(now));
            for datagram in datagrams {
                if !lose(ms) {
                    gate.receive(&datagram, now + 2000, &mut seen).unwrap();
                }
            }
        }
        let keys = seen
            .iter()
            .map(|e| match e {
                Event::Key { usage, down } => (*usage, *down),
                other => panic!("{other:?}"),
            })
            .collect();
        (keys, gate.counters().recovered)
    }

    fn typed(taps: u16) -> Vec<(u16, bool)> {
        (0..u64::from(taps))
            .flat_map(|tap| {
                let usage = 0x04 + (tap % 26) as u16;
                [(usage, true), (usage, false)]
            })
            .collect()
    }

    #[test]
    fn every_press_and_release_arrives_once_in_order_through_loss() {
        // 5 % and 20 % random loss, typing fast (every 40 ms) and slowly (every 300 ms).
        for (p, every_ms) in [(0.05, 40), (0.05, 300), (0.2, 40), (0.2, 300)] {
            let mut coin = Coin(0x9E37_79B9_7F4A_7C15);
            let (seen, recovered) = type_through(500, every_ms, |_| coin.below(p));
            assert_eq!(seen, typed(500), "{p} loss, a tap every {every_ms} ms");
            assert!(recovered > 0);
        }
    }

    #[test]
    fn a_burst_of_loss_shorter_than_the_span_loses_nothing() {
        for every_ms in [40, 300] {
            // 90 ms of silence every 700 ms, after the first datagram (a host replays no
            // edges from a viewer's first: see the gate).
            let (seen, recovered) = type_through(200, every_ms, |ms| (ms + 300) % 700 < 90);
            assert_eq!(seen, typed(200), "a tap every {every_ms} ms");
            assert!(recovered > 0);
        }
    }

    #[test]
    fn a_host_gate_sees_each_press_once_whatever_is_lost() {
        let mut outbox = Outbox::new();
        let mut gate = Gate::new(Limits::default());
        let mut seen = Vec::new();
        let sent = [
            outbox.send(&[key(0x04, true)], 0).unwrap(),
            outbox.send(&[key(0x05, true)], 10).unwrap(),
            outbox.release_all(20).unwrap(),
        ];
        // The first datagram is lost: the second's held set still presses 0x04.
        for datagram in sent[1..].iter().flatten() {
            gate.receive(datagram, 30, &mut seen).unwrap();
        }
        let downs = seen
            .iter()
            .filter(|e| matches!(e, Event::Key { down: true, .. }));
        assert_eq!(downs.count(), 2);
        assert!(gate.held_keys().is_empty());
    }

    #[test]
    fn presses_count_what_the_app_counts() {
        let events = [
            key(0x04, true),
            key(0x04, false),
            key(0xE1, true), // left shift: a modifier
            Event::Text("hé!".into()),
            Event::Button {
                button: Button::Left,
                down: true,
            },
            Event::Wheel { dx: 0, dy: 120 },
        ];
        assert_eq!(presses(&events), 1 + 3 + 1);
    }

    #[test]
    fn the_photon_meter_pairs_presses_with_the_first_picture_that_counts_them() {
        let mut meter = PhotonMeter::new();
        meter.sent(1, 100); // before any picture: not measured
        assert_eq!(meter.shown(7, 1_000), Vec::<u64>::new());
        meter.sent(2, 2_000);
        meter.sent(1, 3_000);
        assert_eq!(meter.shown(7, 4_000), Vec::<u64>::new());
        assert_eq!(meter.shown(8, 5_000), [2_000]);
        assert_eq!(meter.shown(10, 6_000), [2_000, 3_000]);
        meter.sent(1, 7_000);
        assert_eq!(
            meter.shown(10, 7_000 + PHOTON_GIVE_UP_US + 1),
            Vec::<u64>::new()
        );
        assert_eq!(meter.unanswered(), 1);
    }
}
