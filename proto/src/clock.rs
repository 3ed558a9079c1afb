//! The one clock every frame carries: capture time in µs since the UNIX epoch.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in µs since the UNIX epoch. (Reading the clock is the only thing here that is not
/// arithmetic; a clock set before 1970 reads as 0.)
pub fn now_unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Latency from `then` to `now` in µs, clamped at zero: two hosts' clocks can disagree by
/// more than the latency itself, and a negative latency is noise, not information.
pub fn elapsed_us(then_us: u64, now_us: u64) -> u64 {
    now_us.saturating_sub(then_us)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elapsed_never_goes_negative() {
        assert_eq!(elapsed_us(10, 25), 15);
        assert_eq!(elapsed_us(25, 10), 0);
        assert!(now_unix_us() > 1_600_000_000_000_000);
    }
}
