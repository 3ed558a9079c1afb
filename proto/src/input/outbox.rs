//! The viewer's side of input: what goes into each datagram, and how input-to-photon is paired.
//!
//! An [`Outbox`] numbers the viewer's messages, keeps the held set (keys, buttons and the
//! connected pads' state) that every message repeats, splits what does not fit one datagram,
//! and sends the held set on its own every [`HEARTBEAT_US`] while anything is held, so the
//! host can tell a held key from a viewer that is gone. It never reads a clock.
//!
//! A [`PhotonMeter`] pairs presses with pictures: the test app draws the number of presses it
//! has received into each frame (the [`crate::stamp::Echo`]), so the first decoded picture
//! whose count reaches a press's place shows that press's effect.

use std::collections::VecDeque;

use super::{Button, Event, Gamepad, HEARTBEAT_US, Held, MAX_DATAGRAM, MAX_GAMEPADS, Message};
use super::{MAX_HELD_KEYS, keys};
use crate::Error;

/// Room left in a datagram for events after the header and the largest held set.
const EVENT_ROOM: usize = MAX_DATAGRAM - 20 - 2 * MAX_HELD_KEYS;

#[derive(Clone, Debug, Default)]
pub struct Outbox {
    seq: u64,
    held: Held,
    pads: [Option<Gamepad>; MAX_GAMEPADS as usize],
    last_sent_us: Option<u64>,
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

    /// The held set alone (with the connected pads' state), when something is held and
    /// nothing went out for [`HEARTBEAT_US`].
    pub fn heartbeat(&mut self, now_us: u64) -> Option<Vec<u8>> {
        let holding = !self.held.keys.is_empty()
            || self.held.buttons != 0
            || self.pads.iter().any(Option::is_some);
        let due = self
            .last_sent_us
            .is_none_or(|last| now_us.saturating_sub(last) >= HEARTBEAT_US);
        if !holding || !due {
            return None;
        }
        let pads = self.pads.iter().flatten().map(|p| Event::Gamepad(*p));
        let message = self.message(pads.collect(), now_us);
        message.encode().ok()
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
        Message {
            seq,
            sent_us: now_us,
            held: self.held.clone(),
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
    use crate::input::{Gate, Limits};

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

    #[test]
    fn heartbeats_go_out_only_while_something_is_held() {
        let mut outbox = Outbox::new();
        assert_eq!(outbox.heartbeat(10_000_000), None);
        outbox.send(&[key(0x04, true)], 0).unwrap();
        assert_eq!(outbox.heartbeat(HEARTBEAT_US - 1), None);
        let beat = Message::decode(&outbox.heartbeat(HEARTBEAT_US).unwrap()).unwrap();
        assert_eq!(
            (beat.seq, beat.held.keys, beat.events),
            (1, vec![0x04], vec![])
        );
        outbox.send(&[key(0x04, false)], HEARTBEAT_US + 1).unwrap();
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
