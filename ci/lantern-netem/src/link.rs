//! One direction of an emulated path, as a pure state machine on simulated time (µs from the
//! link's start): packets go in with [`Link::send`], come out with [`Link::poll`], and
//! [`Link::next_wake`] says when to look again. It never reads a clock.
//!
//! A packet meets, in order:
//! 1. an outage (scheduled, or [`Link::set_down`]): lost;
//! 2. the loss model: lost;
//! 3. the bottleneck's drop-tail queue: dropped when full, else it waits for delivery
//!    opportunities, 1504 bytes each, a packet spanning several when it must and an
//!    opportunity's unused bytes wasted (mahimahi's link);
//! 4. the propagation delay, ± jitter, in order (a later packet never overtakes).
//!
//! A link is written `rate=5mbit queue=256 delay=20ms jitter=5ms loss=1% outage=10s+3s seed=7`
//! (any order, any subset; see [`LinkConfig::parse`]).

use std::collections::VecDeque;

use serde::Serialize;

use crate::Error;
use crate::capacity::{Capacity, OPPORTUNITY_BYTES};
use crate::loss::{Dropper, Loss};
use crate::units::{QueueLimit, duration_us, queue_limit};

/// What an IPv4 and UDP header add to each datagram's payload on the wire.
pub const HEADER_BYTES: usize = 28;
/// The queue a bottleneck gets when none is given (the packets mahimahi's users often pick).
pub const DEFAULT_QUEUE: QueueLimit = QueueLimit::Packets(256);

#[derive(Clone, Debug, PartialEq)]
pub struct LinkConfig {
    pub capacity: Capacity,
    pub queue: QueueLimit,
    pub delay_us: u64,
    pub jitter_us: u64,
    pub loss: Loss,
    /// (start, length) in µs from the link's start: everything entering then is lost.
    pub outages: Vec<(u64, u64)>,
    pub seed: u64,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            capacity: Capacity::Unlimited,
            queue: DEFAULT_QUEUE,
            delay_us: 0,
            jitter_us: 0,
            loss: Loss::None,
            outages: Vec::new(),
            seed: 1,
        }
    }
}

impl LinkConfig {
    /// Parse `key=value` settings separated by spaces: `rate=` (a [`Capacity`]), `queue=`,
    /// `delay=`, `jitter=`, `loss=` (a [`Loss`]), `outage=START+LENGTH` (repeatable) and
    /// `seed=`. Later settings override earlier ones, so a shared spec can be followed by a
    /// direction's own.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let mut config = Self::default();
        config.apply(text)?;
        Ok(config)
    }

    /// Apply more settings on top of these.
    pub fn apply(&mut self, text: &str) -> Result<(), Error> {
        let settings: Vec<(&str, &str)> = text
            .split_whitespace()
            .map(|s| {
                s.split_once('=').ok_or_else(|| {
                    Error::spec(s, "settings are key=value (e.g. rate=5mbit delay=20ms)")
                })
            })
            .collect::<Result<_, _>>()?;
        // The seed first: the walk's trace depends on it wherever it is written.
        if let Some((_, seed)) = settings.iter().rev().find(|(k, _)| *k == "seed") {
            self.seed = seed
                .parse()
                .map_err(|_| Error::spec(*seed, "a seed is a whole number"))?;
        }
        for (key, value) in settings {
            match key {
                "rate" => self.capacity = Capacity::parse(value, self.seed)?,
                "queue" => self.queue = queue_limit(value)?,
                "delay" => self.delay_us = duration_us(value)?,
                "jitter" => self.jitter_us = duration_us(value)?,
                "loss" => self.loss = Loss::parse(value)?,
                "outage" => {
                    let (start, length) = value.split_once('+').ok_or_else(|| {
                        Error::spec(value, "an outage is START+LENGTH (e.g. 10s+3s)")
                    })?;
                    self.outages
                        .push((duration_us(start)?, duration_us(length)?));
                }
                "seed" => {}
                _ => {
                    return Err(Error::spec(
                        key,
                        "unknown setting (rate, queue, delay, jitter, loss, outage, seed)",
                    ));
                }
            }
        }
        if self.jitter_us > self.delay_us {
            return Err(Error::spec(
                text,
                "jitter beyond the delay would send packets back in time",
            ));
        }
        Ok(())
    }

    /// The queue's bound in bytes (and packets, if it is counted in packets).
    fn queue_bounds(&self) -> (Option<usize>, usize) {
        match self.queue {
            QueueLimit::Packets(n) => (Some(n), usize::MAX),
            QueueLimit::Bytes(b) => (None, b),
            QueueLimit::Time(us) => {
                let bps = self.capacity.mean_bps().unwrap_or(0.0);
                let bytes = (bps * us as f64 / 8e6) as usize;
                (None, bytes.max(OPPORTUNITY_BYTES as usize))
            }
        }
    }
}

/// What a link did, counted since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    pub sent: u64,
    pub sent_bytes: u64,
    pub delivered: u64,
    pub delivered_bytes: u64,
    /// Lost to the loss model.
    pub lost: u64,
    /// Lost in an outage.
    pub lost_outage: u64,
    /// Dropped at the tail of a full queue.
    pub dropped_queue: u64,
}

struct Queued<P> {
    packet: P,
    /// Bytes of it still to go through the bottleneck.
    left: usize,
    size: usize,
}

pub struct Link<P> {
    config: LinkConfig,
    max_packets: Option<usize>,
    max_bytes: usize,
    rng: fastrand::Rng,
    dropper: Dropper,
    down: bool,
    queue: VecDeque<Queued<P>>,
    queue_bytes: usize,
    /// The next delivery opportunity not yet used or passed.
    next_opportunity: u64,
    /// Through the bottleneck, waiting out the delay: (when it arrives, size, packet).
    wire: VecDeque<(u64, usize, P)>,
    counters: Counters,
}

impl<P> Link<P> {
    pub fn new(config: LinkConfig) -> Self {
        let (max_packets, max_bytes) = config.queue_bounds();
        Self {
            max_packets,
            max_bytes,
            rng: fastrand::Rng::with_seed(config.seed),
            dropper: Dropper::new(config.loss),
            down: false,
            queue: VecDeque::new(),
            queue_bytes: 0,
            next_opportunity: 0,
            wire: VecDeque::new(),
            counters: Counters::default(),
            config,
        }
    }

    pub fn config(&self) -> &LinkConfig {
        &self.config
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Packets and bytes waiting at the bottleneck.
    pub fn queued(&self) -> (usize, usize) {
        (self.queue.len(), self.queue_bytes)
    }

    /// Take the link down (everything entering is lost) or bring it back, beside the
    /// scheduled outages.
    pub fn set_down(&mut self, down: bool) {
        self.down = down;
    }

    fn in_outage(&self, now_us: u64) -> bool {
        self.down
            || self
                .config
                .outages
                .iter()
                .any(|&(start, length)| (start..start.saturating_add(length)).contains(&now_us))
    }

    /// A packet of `payload` bytes enters the link at `now_us`.
    pub fn send(&mut self, now_us: u64, payload: usize, packet: P) {
        self.advance(now_us);
        let size = payload + HEADER_BYTES;
        self.counters.sent += 1;
        self.counters.sent_bytes += size as u64;
        if self.in_outage(now_us) {
            self.counters.lost_outage += 1;
            return;
        }
        if self.dropper.lose(&mut self.rng) {
            self.counters.lost += 1;
            return;
        }
        if matches!(self.config.capacity, Capacity::Unlimited) {
            self.propagate(now_us, size, packet);
            return;
        }
        let full = self.max_packets.is_some_and(|n| self.queue.len() >= n)
            || self.queue_bytes + size > self.max_bytes;
        if full {
            self.counters.dropped_queue += 1;
            return;
        }
        if self.queue.is_empty() {
            // Opportunities that passed while nothing waited were wasted.
            let first = self.config.capacity.first_at_or_after(now_us);
            self.next_opportunity = self.next_opportunity.max(first);
        }
        self.queue_bytes += size;
        self.queue.push_back(Queued {
            packet,
            left: size,
            size,
        });
    }

    /// The next packet out of the link at `now_us`, if one has arrived.
    pub fn poll(&mut self, now_us: u64) -> Option<P> {
        self.advance(now_us);
        if self.wire.front().is_some_and(|(at, ..)| *at <= now_us) {
            let (_, size, packet) = self.wire.pop_front()?;
            self.counters.delivered += 1;
            self.counters.delivered_bytes += size as u64;
            return Some(packet);
        }
        None
    }

    /// When something next happens (a packet arrives or an opportunity serves the queue).
    pub fn next_wake(&self) -> Option<u64> {
        let arrival = self.wire.front().map(|(at, ..)| *at);
        let opportunity = (!self.queue.is_empty())
            .then(|| self.config.capacity.opportunity_us(self.next_opportunity))
            .flatten();
        arrival.into_iter().chain(opportunity).min()
    }

    /// Use every delivery opportunity up to `now_us`.
    fn advance(&mut self, now_us: u64) {
        while !self.queue.is_empty() {
            let Some(at) = self.config.capacity.opportunity_us(self.next_opportunity) else {
                return;
            };
            if at > now_us {
                return;
            }
            self.next_opportunity += 1;
            let mut budget = OPPORTUNITY_BYTES as usize;
            while budget > 0 {
                let Some(head) = self.queue.front_mut() else {
                    break;
                };
                if head.left > budget {
                    head.left -= budget;
                    break;
                }
                budget -= head.left;
                let Some(done) = self.queue.pop_front() else {
                    break;
                };
                self.queue_bytes -= done.size;
                self.propagate(at, done.size, done.packet);
            }
        }
    }

    /// Through the bottleneck at `at_us`: on the wire for the delay ± jitter, in order.
    fn propagate(&mut self, at_us: u64, size: usize, packet: P) {
        let jitter = self.config.jitter_us;
        let delay = if jitter == 0 {
            self.config.delay_us
        } else {
            self.config.delay_us.saturating_sub(jitter) + self.rng.u64(0..=2 * jitter)
        };
        let arrives = (at_us + delay).max(self.wire.back().map_or(0, |(last, ..)| *last));
        self.wire.push_back((arrives, size, packet));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1000;
    /// The payload that fills one opportunity exactly.
    const FULL: usize = OPPORTUNITY_BYTES as usize - HEADER_BYTES;

    fn link(spec: &str) -> Link<u32> {
        Link::new(LinkConfig::parse(spec).unwrap())
    }

    /// Run the link until `until`, collecting (arrival time, packet).
    fn drain(link: &mut Link<u32>, until: u64) -> Vec<(u64, u32)> {
        let mut out = Vec::new();
        while let Some(at) = link.next_wake().filter(|&at| at <= until) {
            while let Some(p) = link.poll(at) {
                out.push((at, p));
            }
        }
        out
    }

    #[test]
    fn delay_alone_delays() {
        let mut l = link("delay=20ms");
        l.send(5 * MS, 100, 1);
        assert_eq!(l.poll(24 * MS), None);
        assert_eq!(l.next_wake(), Some(25 * MS));
        assert_eq!(l.poll(25 * MS), Some(1));
        assert_eq!(l.counters().delivered_bytes, 128);
    }

    #[test]
    fn a_bottleneck_serves_one_opportunity_a_packet() {
        // One opportunity a millisecond; five full packets at once take five of them.
        let mut l = link("rate=12.032mbit delay=10ms");
        for i in 0..5 {
            l.send(0, FULL, i);
        }
        let out = drain(&mut l, 100 * MS);
        let times: Vec<u64> = out.iter().map(|(at, _)| at / MS).collect();
        assert_eq!(times, [10, 11, 12, 13, 14]);
        assert_eq!(
            out.iter().map(|(_, p)| *p).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4]
        );
    }

    #[test]
    fn small_packets_share_an_opportunity_and_large_ones_span_two() {
        let mut l = link("rate=12.032mbit");
        // Three of 472 bytes on the wire fit one opportunity of 1504.
        for i in 0..3 {
            l.send(500, 472 - HEADER_BYTES, i);
        }
        let times: Vec<u64> = drain(&mut l, 10 * MS).iter().map(|(at, _)| *at).collect();
        assert_eq!(times, [MS, MS, MS]);
        // 2000 bytes take the opportunities at 5 and 6 ms.
        l.send(4500, 2000 - HEADER_BYTES, 9);
        assert_eq!(drain(&mut l, 20 * MS), [(6 * MS, 9)]);
    }

    #[test]
    fn a_full_queue_drops_at_its_tail() {
        // Between opportunities (one each ms), so nothing leaves while they are sent.
        let mut l = link("rate=12.032mbit queue=3");
        for i in 0..5 {
            l.send(500, FULL, i);
        }
        assert_eq!(l.counters().dropped_queue, 2);
        let delivered: Vec<u32> = drain(&mut l, 10 * MS).iter().map(|(_, p)| *p).collect();
        assert_eq!(delivered, [0, 1, 2]);
        // A queue in bytes counts the headers too.
        let mut l = link("rate=12.032mbit queue=3008b");
        for i in 0..3 {
            l.send(500, FULL, i);
        }
        assert_eq!(l.counters().dropped_queue, 1);
    }

    #[test]
    fn a_queue_in_time_holds_that_long_at_the_mean_rate() {
        // 500 ms at 5 Mbit/s is 312,500 bytes: 207 full packets.
        let l = link("rate=5mbit queue=500ms");
        assert_eq!(l.max_bytes, 312_500);
        assert_eq!(l.max_packets, None);
    }

    #[test]
    fn idle_time_is_not_banked() {
        // Nothing waited through the first second: a burst then still goes one a millisecond.
        let mut l = link("rate=12.032mbit");
        for i in 0..3 {
            l.send(1_000 * MS, FULL, i);
        }
        let times: Vec<u64> = drain(&mut l, 2_000 * MS)
            .iter()
            .map(|(at, _)| at / MS)
            .collect();
        assert_eq!(times, [1000, 1001, 1002]);
    }

    #[test]
    fn a_capacity_gap_holds_packets_until_it_ends() {
        let mut l = link("rate=off/100ms,12.032mbit/100ms");
        l.send(10 * MS, FULL, 1);
        assert_eq!(l.poll(99 * MS), None);
        assert_eq!(drain(&mut l, 200 * MS), [(101 * MS, 1)]);
    }

    #[test]
    fn outages_lose_what_enters_them() {
        let mut l = link("outage=1s+3s");
        l.send(999 * MS, 10, 1);
        l.send(1_000 * MS, 10, 2);
        l.send(3_999 * MS, 10, 3);
        l.send(4_000 * MS, 10, 4);
        l.set_down(true);
        l.send(5_000 * MS, 10, 5);
        l.set_down(false);
        l.send(6_000 * MS, 10, 6);
        let delivered: Vec<u32> = drain(&mut l, 10_000 * MS).iter().map(|(_, p)| *p).collect();
        assert_eq!(delivered, [1, 4, 6]);
        assert_eq!(l.counters().lost_outage, 3);
    }

    #[test]
    fn jitter_varies_the_delay_but_keeps_the_order() {
        // Packets further apart than the jitter's spread keep their own delays.
        let mut l = link("delay=50ms jitter=20ms seed=3");
        for i in 0..200 {
            l.send(u64::from(i) * 50 * MS, 100, i);
        }
        let out = drain(&mut l, 100_000 * MS);
        let delays: Vec<u64> = out
            .iter()
            .map(|(at, p)| at - u64::from(*p) * 50 * MS)
            .collect();
        assert!(delays.iter().all(|d| (30 * MS..=70 * MS).contains(d)));
        assert!(delays.iter().any(|&d| d < 35 * MS) && delays.iter().any(|&d| d > 65 * MS));
        // Closer ones wait for those before them rather than overtake.
        for i in 0..200 {
            l.send(100_000 * MS + u64::from(i) * MS, 100, i);
        }
        let order: Vec<u32> = drain(&mut l, 200_000 * MS)
            .iter()
            .map(|(_, p)| *p)
            .collect();
        assert_eq!(order, (0..200).collect::<Vec<_>>());
    }

    #[test]
    fn random_loss_loses_about_its_share() {
        let mut l = link("loss=10% seed=5");
        for i in 0..10_000 {
            l.send(u64::from(i), 100, i);
        }
        let lost = l.counters().lost;
        assert!((800..1200).contains(&lost), "{lost}");
        assert_eq!(drain(&mut l, 20_000).len() as u64, 10_000 - lost);
    }

    #[test]
    fn a_link_tells_its_mistakes() {
        for bad in [
            "rate",
            "rate=fast",
            "delay=5",
            "jitter=10ms delay=5ms",
            "outage=3s",
            "colour=blue",
            "seed=x",
        ] {
            assert!(LinkConfig::parse(bad).is_err(), "{bad} was taken");
        }
        let mut c = LinkConfig::parse("rate=5mbit delay=20ms").unwrap();
        c.apply("delay=30ms").unwrap();
        assert_eq!(
            (c.capacity, c.delay_us),
            (Capacity::Fixed(5_000_000), 30_000)
        );
    }
}
