//! A bottleneck's capacity over time, in mahimahi's terms: a series of delivery
//! opportunities, each able to send [`OPPORTUNITY_BYTES`], numbered from 0.
//!
//! A capacity is written as
//! - `unlimited` (no bottleneck);
//! - a fixed rate, `5mbit`;
//! - segments, each a rate held (`8mbit/10s`), a linear ramp (`2mbit..8mbit/5s`) or nothing at
//!   all (`off/2s`), comma-separated: `8mbit/10s,2mbit/10s,8mbit/10s`;
//! - `trace:PATH`, a mahimahi trace file: one line per opportunity, the millisecond it comes
//!   at, non-decreasing;
//! - `walk:MEAN`, a seeded random walk around a mean rate with outages, LTE-like (see
//!   [`walk`]).
//!
//! Segments, traces and walks repeat after their last millisecond, as mahimahi's traces do.

use std::path::Path;

use crate::Error;
use crate::units::{duration_us, rate_bps};

/// What one delivery opportunity carries: mahimahi's packet size (a 1500-byte MTU and the
/// tunnel's 4-byte header).
pub const OPPORTUNITY_BYTES: u32 = 1504;
const OPPORTUNITY_BITS: f64 = OPPORTUNITY_BYTES as f64 * 8.0;
/// The longest trace taken (about 41 hours of 100 Mbit/s at one opportunity per ms: far past
/// any use, and a bound on memory).
const MAX_OPPORTUNITIES: usize = 100_000_000;

#[derive(Clone, Debug, PartialEq)]
pub enum Capacity {
    Unlimited,
    /// A fixed rate in bits per second: opportunity k comes at k × 1504 × 8 / rate.
    Fixed(u64),
    Trace(Trace),
}

/// Delivery opportunities within one period, repeating.
#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    /// The millisecond of each opportunity within the period, non-decreasing, each < period.
    at_ms: Vec<u64>,
    period_ms: u64,
}

impl Capacity {
    /// Parse a capacity as the module describes; `seed` drives `walk:`.
    pub fn parse(text: &str, seed: u64) -> Result<Self, Error> {
        let text = text.trim();
        if text == "unlimited" {
            return Ok(Self::Unlimited);
        }
        if let Some(path) = text.strip_prefix("trace:") {
            return Trace::read(Path::new(path)).map(Self::Trace);
        }
        if let Some(mean) = text.strip_prefix("walk:") {
            let (mean, seconds) = match mean.split_once('/') {
                Some((mean, period)) => (mean, duration_us(period)? / 1000),
                None => (mean, 120_000),
            };
            return Ok(Self::Trace(walk(rate_bps(mean)?, seconds, seed)?));
        }
        if text.contains('/') {
            return Trace::from_segments(text).map(Self::Trace);
        }
        match rate_bps(text)? {
            0 => Err(Error::spec(
                text,
                "a fixed rate of 0 sends nothing; use segments (off/2s,5mbit/8s) for outages",
            )),
            bps => Ok(Self::Fixed(bps)),
        }
    }

    /// When opportunity `k` comes, µs from the link's start; None without a bottleneck.
    pub fn opportunity_us(&self, k: u64) -> Option<u64> {
        match self {
            Self::Unlimited => None,
            Self::Fixed(bps) => Some((k as f64 * OPPORTUNITY_BITS * 1e6 / *bps as f64) as u64),
            Self::Trace(trace) => {
                let n = trace.at_ms.len() as u64;
                let ms = (k / n) * trace.period_ms + trace.at_ms[(k % n) as usize];
                Some(ms * 1000)
            }
        }
    }

    /// The number of the first opportunity at or after `t_us` (0 without a bottleneck).
    pub fn first_at_or_after(&self, t_us: u64) -> u64 {
        match self {
            Self::Unlimited => 0,
            Self::Fixed(bps) => {
                let mut k = (t_us as f64 * *bps as f64 / (OPPORTUNITY_BITS * 1e6)) as u64;
                // The float estimate may land one either side.
                while k > 0 && self.opportunity_us(k - 1).is_some_and(|at| at >= t_us) {
                    k -= 1;
                }
                while self.opportunity_us(k).is_some_and(|at| at < t_us) {
                    k += 1;
                }
                k
            }
            Self::Trace(trace) => {
                let ms = t_us.div_ceil(1000);
                let (period, within) = (ms / trace.period_ms, ms % trace.period_ms);
                let n = trace.at_ms.len() as u64;
                let index = trace.at_ms.partition_point(|&at| at < within) as u64;
                period * n + index
            }
        }
    }

    /// Bits the bottleneck could carry in [`from_us`, `to_us`); None without a bottleneck.
    pub fn bits_between(&self, from_us: u64, to_us: u64) -> Option<u64> {
        if matches!(self, Self::Unlimited) {
            return None;
        }
        let count = self
            .first_at_or_after(to_us)
            .saturating_sub(self.first_at_or_after(from_us));
        Some(count * u64::from(OPPORTUNITY_BYTES) * 8)
    }

    /// The least frame delay any sender could reach over this bottleneck, by Salsify's
    /// metric (capture → that frame or a newer one delivered), µs, for frames captured at
    /// `fps` over [`from_us`, `to_us`) (the link's time): each frame of `frame_bytes` takes
    /// the first opportunities at or after its capture, as if no other frame were queued
    /// ahead of it (a sender that skips whatever would wait), then `delay_us` one way. A
    /// floor, not a goal: real frames are bigger than one opportunity, and a path's transport
    /// has its own packets. Empty without a bottleneck.
    pub fn frame_delay_floor(
        &self,
        from_us: u64,
        to_us: u64,
        fps: f64,
        frame_bytes: u32,
        delay_us: u64,
    ) -> Vec<u64> {
        if matches!(self, Self::Unlimited) || fps <= 0.0 || !fps.is_finite() {
            return Vec::new();
        }
        let needed = u64::from(frame_bytes.div_ceil(OPPORTUNITY_BYTES).max(1));
        let mut delays = Vec::new();
        for n in 0u64.. {
            let captured = from_us + (n as f64 * 1e6 / fps) as u64;
            if captured >= to_us {
                break;
            }
            let last = self.first_at_or_after(captured) + needed - 1;
            let Some(at) = self.opportunity_us(last) else {
                break;
            };
            delays.push(at - captured + delay_us);
        }
        delays
    }

    /// The long-run rate in bits per second; None without a bottleneck.
    pub fn mean_bps(&self) -> Option<f64> {
        match self {
            Self::Unlimited => None,
            Self::Fixed(bps) => Some(*bps as f64),
            Self::Trace(trace) => Some(trace.mean_bps()),
        }
    }
}

impl Trace {
    fn new(at_ms: Vec<u64>, period_ms: u64, what: &str) -> Result<Self, Error> {
        if at_ms.is_empty() {
            return Err(Error::spec(what, "the link never delivers anything"));
        }
        if at_ms.len() > MAX_OPPORTUNITIES {
            return Err(Error::spec(
                what,
                format!("more than {MAX_OPPORTUNITIES} opportunities"),
            ));
        }
        debug_assert!(at_ms.windows(2).all(|w| w[0] <= w[1]));
        debug_assert!(at_ms.iter().all(|&at| at < period_ms));
        Ok(Self { at_ms, period_ms })
    }

    /// Read a mahimahi trace: a millisecond per line, non-decreasing; the last one is the
    /// period (mahimahi's rule), so its opportunities are those of the next period's ms 0.
    pub fn read(path: &Path) -> Result<Self, Error> {
        let what = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Trace {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, &what)
    }

    /// A mahimahi trace's text; `what` names it in errors.
    pub fn parse(text: &str, what: &str) -> Result<Self, Error> {
        let mut at_ms = Vec::new();
        for (line_no, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let ms: u64 = line.parse().map_err(|_| {
                Error::spec(
                    what,
                    format!("line {}: {line:?} is not a whole millisecond", line_no + 1),
                )
            })?;
            if at_ms.last().is_some_and(|&last| ms < last) {
                return Err(Error::spec(
                    what,
                    format!("line {}: {ms} goes back in time", line_no + 1),
                ));
            }
            if at_ms.len() == MAX_OPPORTUNITIES {
                return Err(Error::spec(
                    what,
                    format!("more than {MAX_OPPORTUNITIES} lines"),
                ));
            }
            at_ms.push(ms);
        }
        let period_ms = match at_ms.last() {
            Some(&0) | None => return Err(Error::spec(what, "a trace needs a last line above 0")),
            Some(&last) => last,
        };
        // Lines at the period itself are ms 0 of the next period.
        let at_period = at_ms
            .iter()
            .rev()
            .take_while(|&&at| at == period_ms)
            .count();
        at_ms.truncate(at_ms.len() - at_period);
        let mut wrapped = vec![0; at_period];
        wrapped.extend(at_ms);
        Self::new(wrapped, period_ms, what)
    }

    /// Segments as the module describes: `8mbit/10s,2mbit..8mbit/5s,off/2s`.
    pub fn from_segments(text: &str) -> Result<Self, Error> {
        let mut rates = Vec::new();
        for segment in text.split(',') {
            let (rate, length) = segment.trim().split_once('/').ok_or_else(|| {
                Error::spec(segment, "a segment is RATE/DURATION, e.g. 8mbit/10s")
            })?;
            let ms = duration_us(length)? / 1000;
            if ms == 0 {
                return Err(Error::spec(segment, "a segment lasts at least 1ms"));
            }
            let (from, to) = match rate.split_once("..") {
                Some((from, to)) => (parse_rate(from)?, parse_rate(to)?),
                None => (parse_rate(rate)?, parse_rate(rate)?),
            };
            for i in 0..ms {
                rates.push(from + (to - from) * (i as f64 + 0.5) / ms as f64);
                if rates.len() > 1_000_000_000 {
                    return Err(Error::spec(text, "segments longer than 11 days"));
                }
            }
        }
        Self::from_rates(&rates, text)
    }

    /// Opportunities for a rate per millisecond (bits per second in each): each one comes at
    /// the end of the millisecond in which its 1504 bytes have accumulated.
    fn from_rates(rates: &[f64], what: &str) -> Result<Self, Error> {
        let mut at_ms = Vec::new();
        let (mut bits, mut made) = (0.0, 0u64);
        for (ms, bps) in rates.iter().enumerate() {
            bits += bps / 1000.0;
            let due = (bits / OPPORTUNITY_BITS) as u64;
            for _ in made..due {
                // The end of ms `ms` is the start of the next; the last wraps to 0.
                at_ms.push((ms as u64 + 1) % rates.len() as u64);
                if at_ms.len() > MAX_OPPORTUNITIES {
                    return Err(Error::spec(
                        what,
                        format!("more than {MAX_OPPORTUNITIES} opportunities"),
                    ));
                }
            }
            made = due;
        }
        at_ms.sort_unstable();
        Self::new(at_ms, rates.len() as u64, what)
    }

    pub fn mean_bps(&self) -> f64 {
        self.at_ms.len() as f64 * OPPORTUNITY_BITS * 1000.0 / self.period_ms as f64
    }

    /// The trace as a mahimahi file. A period that ends in silence cannot be said in that
    /// format (its last line is the period): the silence is kept by an opportunity at the
    /// period's end, one more than the trace has.
    pub fn to_mahimahi(&self) -> String {
        let mut out = String::with_capacity(self.at_ms.len() * 6);
        let mut wrapped = self.at_ms.iter().take_while(|&&at| at == 0).count();
        for &at in &self.at_ms[wrapped..] {
            out.push_str(&format!("{at}\n"));
        }
        wrapped = wrapped.max(1);
        for _ in 0..wrapped {
            out.push_str(&format!("{}\n", self.period_ms));
        }
        out
    }
}

fn parse_rate(text: &str) -> Result<f64, Error> {
    match text.trim() {
        "off" | "0" => Ok(0.0),
        rate => rate_bps(rate).map(|bps| bps as f64),
    }
}

/// An LTE-like capacity: a random walk of the log-rate around `mean_bps` (mean-reverting,
/// steps every 100 ms, mostly between a quarter and 2.5 times the mean), with outages of
/// 0.2 to 2 s about every 40 s, for `period_ms`. The same seed gives the same trace.
pub fn walk(mean_bps: u64, period_ms: u64, seed: u64) -> Result<Trace, Error> {
    if mean_bps == 0 || period_ms < 1000 {
        return Err(Error::spec(
            "walk",
            "a walk needs a mean rate above 0 and at least 1s",
        ));
    }
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut rates = Vec::with_capacity(period_ms as usize);
    let (mut log_rate, mut outage_ms) = (0.0f64, 0u64);
    for ms in 0..period_ms {
        if ms % 100 == 0 {
            // Ornstein-Uhlenbeck in log space: σ 0.25 a step, pulled back by 10 % a step.
            let normal = (0..12).map(|_| rng.f64()).sum::<f64>() - 6.0;
            log_rate = 0.9 * log_rate + 0.25 * normal;
            if outage_ms == 0 && rng.f64() < 0.0025 {
                outage_ms = 200 + rng.u64(0..1800);
            }
        }
        let bps = if outage_ms > 0 {
            outage_ms -= 1;
            0.0
        } else {
            // exp(N(0, σ²)) has mean exp(σ²/2): divide so the walk's mean is the mean asked.
            mean_bps as f64 * log_rate.exp() / (0.25f64.powi(2) / 0.19 / 2.0).exp()
        };
        rates.push(bps);
    }
    Trace::from_rates(&rates, "walk")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(c: &Capacity) -> &Trace {
        match c {
            Capacity::Trace(t) => t,
            other => panic!("not a trace: {other:?}"),
        }
    }

    #[test]
    fn the_frame_delay_floor_waits_out_a_dead_spell_and_counts_a_big_frames_opportunities() {
        // One opportunity a ms for a second, then none for a second, repeating (the last
        // line, the period, is the next period's ms 0).
        let ms: String = (1..=1000).map(|m| format!("{m}\n")).collect::<String>() + "2000\n";
        let c = Capacity::Trace(Trace::parse(&ms, "test").unwrap());
        let floor = c.frame_delay_floor(0, 2_000_000, 100.0, 1504, 20_000);
        assert_eq!(floor.len(), 200);
        // Frames in the live second go at once (within a ms, plus the way).
        assert!(
            floor[..=100].iter().all(|d| (20_000..=21_000).contains(d)),
            "{floor:?}"
        );
        // Frames in the dead second wait for its end.
        assert_eq!(floor[101], 990_000 + 20_000);
        assert_eq!(floor[199], 10_000 + 20_000);
        // A frame of three opportunities' bytes takes three ms.
        let big = c.frame_delay_floor(0, 10_000, 100.0, 3 * 1504, 0);
        assert_eq!(big, vec![2_000]);
        assert!(
            Capacity::Unlimited
                .frame_delay_floor(0, 1_000_000, 60.0, 1504, 0)
                .is_empty()
        );
    }

    #[test]
    fn a_mahimahi_trace_repeats_after_its_last_line() {
        let t = Capacity::Trace(Trace::parse("1\n1\n5\n10\n", "t").unwrap());
        let at: Vec<_> = (0..8)
            .map(|k| t.opportunity_us(k).unwrap() / 1000)
            .collect();
        // Line "10" is ms 0 of each following period.
        assert_eq!(at, [0, 1, 1, 5, 10, 11, 11, 15]);
        assert_eq!(t.first_at_or_after(0), 0);
        assert_eq!(t.first_at_or_after(1000), 1);
        assert_eq!(t.first_at_or_after(1001), 3);
        assert_eq!(t.first_at_or_after(10_000), 4);
        assert_eq!(t.bits_between(0, 10_000), Some(4 * 1504 * 8));
    }

    #[test]
    fn bad_traces_are_refused_with_the_line() {
        let err = Trace::parse("1\n5\n3\n", "t").unwrap_err().to_string();
        assert!(err.contains("line 3"), "{err}");
        let err = Trace::parse("1\nfast\n", "t").unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
        assert!(Trace::parse("", "t").is_err());
        assert!(Trace::parse("0\n0\n", "t").is_err());
    }

    #[test]
    fn a_fixed_rate_spaces_its_opportunities_evenly() {
        // 12.032 Mbit/s is one 1504-byte opportunity a millisecond.
        let c = Capacity::parse("12.032mbit", 0).unwrap();
        assert_eq!(c.opportunity_us(3), Some(3000));
        assert_eq!(c.first_at_or_after(2500), 3);
        assert_eq!(c.first_at_or_after(3000), 3);
        let bits = c.bits_between(0, 1_000_000).unwrap();
        assert_eq!(bits, 1000 * 1504 * 8);
    }

    #[test]
    fn segments_hold_each_rate_for_its_time() {
        let c = Capacity::parse("12.032mbit/1s,off/1s,6.016mbit/1s", 0).unwrap();
        assert_eq!(c.bits_between(0, 1_000_000), Some(1000 * 12_032));
        assert_eq!(c.bits_between(1_001_000, 2_000_000), Some(0));
        // Each opportunity comes at the end of its millisecond.
        assert_eq!(c.bits_between(2_001_000, 3_001_000), Some(500 * 12_032));
        // And again in the next period.
        assert_eq!(c.bits_between(3_001_000, 4_001_000), Some(1000 * 12_032));
    }

    #[test]
    fn a_ramp_rises_through_its_segment() {
        let c = Capacity::parse("0mbit..12.032mbit/1s", 0).unwrap();
        let first = c.bits_between(0, 500_000).unwrap();
        let second = c.bits_between(500_000, 1_000_000).unwrap();
        assert!(second > 2 * first, "{first} then {second}");
        let mean = c.mean_bps().unwrap();
        assert!((mean - 6.016e6).abs() < 0.01 * 6.016e6, "{mean}");
    }

    #[test]
    fn a_walk_is_seeded_and_keeps_its_mean() {
        let a = walk(5_000_000, 600_000, 7).unwrap();
        assert_eq!(a, walk(5_000_000, 600_000, 7).unwrap());
        assert_ne!(a, walk(5_000_000, 600_000, 8).unwrap());
        let mean = a.mean_bps();
        assert!((2.5e6..10e6).contains(&mean), "{mean}");
        // It has outages: whole seconds without an opportunity.
        let c = Capacity::Trace(a);
        let silent = (0..600)
            .filter(|s| c.bits_between(s * 1_000_000, (s + 1) * 1_000_000) == Some(0))
            .count();
        assert!(silent > 0);
    }

    #[test]
    fn a_trace_survives_a_round_trip_through_mahimahi() {
        let c = Capacity::parse("6.016mbit/2s,off/1s", 0).unwrap();
        let t = trace(&c);
        let back = Trace::parse(&t.to_mahimahi(), "t").unwrap();
        assert_eq!(back.period_ms, t.period_ms);
        // The silence at the end costs one extra opportunity, no more.
        assert!(back.at_ms.len() - t.at_ms.len() <= 1);
        let plain = trace(&Capacity::parse("12.032mbit/1s", 0).unwrap()).clone();
        assert_eq!(Trace::parse(&plain.to_mahimahi(), "t").unwrap(), plain);
    }

    #[test]
    fn capacities_name_their_mistakes() {
        for bad in [
            "0mbit",
            "fast",
            "5mbit/",
            "5mbit/0ms",
            "off/1s",
            "walk:0mbit",
        ] {
            assert!(Capacity::parse(bad, 0).is_err(), "{bad} was taken");
        }
    }
}
