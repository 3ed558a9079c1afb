//! The units a link is written in: durations (`20ms`, `1.5s`, `500us`), rates (`5mbit`,
//! `800kbit`, `1.2Mbit/s`), sizes (`256` packets, `64kb`, `1mb` bytes) and fractions (`5%`,
//! `0.05`). Every parser names what it expected in its error.

use crate::Error;

fn number(text: &str, what: &str, whole: &str) -> Result<f64, Error> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| Error::spec(whole, format!("{what}: {text:?} is not a number ≥ 0")))
}

/// Splits `20ms` into (`20`, `ms`).
fn split_unit(text: &str) -> (&str, String) {
    let at = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    (&text[..at], text[at..].trim().to_ascii_lowercase())
}

/// A duration in µs: `us`, `ms`, `s` or `min`, a unit always given.
pub fn duration_us(text: &str) -> Result<u64, Error> {
    let (value, unit) = split_unit(text.trim());
    let scale = match unit.as_str() {
        "us" | "µs" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        "min" => 60e6,
        _ => {
            return Err(Error::spec(
                text,
                "a duration needs a unit: us, ms, s or min (e.g. 20ms)",
            ));
        }
    };
    let us = number(value, "duration", text)? * scale;
    if us > 1e15 {
        return Err(Error::spec(text, "duration too long"));
    }
    Ok(us.round() as u64)
}

/// A rate in bits per second: `bit`, `kbit`, `mbit` or `gbit` (also `…/s` and `…ps`).
pub fn rate_bps(text: &str) -> Result<u64, Error> {
    let (value, unit) = split_unit(text.trim());
    let unit = unit
        .trim_end_matches("/s")
        .trim_end_matches("ps")
        .to_string();
    let scale = match unit.as_str() {
        "bit" | "b" => 1.0,
        "kbit" | "kb" => 1e3,
        "mbit" | "mb" => 1e6,
        "gbit" | "gb" => 1e9,
        _ => {
            return Err(Error::spec(
                text,
                "a rate needs a unit: bit, kbit, mbit or gbit (e.g. 5mbit)",
            ));
        }
    };
    let bps = number(value, "rate", text)? * scale;
    if bps > 1e12 {
        return Err(Error::spec(text, "rate above 1 Tbit/s"));
    }
    Ok(bps.round() as u64)
}

/// A fraction from `5%` or `0.05`, at most 1.
pub fn fraction(text: &str) -> Result<f64, Error> {
    let text = text.trim();
    let value = match text.strip_suffix('%') {
        Some(percent) => number(percent, "percentage", text)? / 100.0,
        None => number(text, "fraction", text)?,
    };
    if value > 1.0 {
        return Err(Error::spec(text, "a probability is at most 100%"));
    }
    Ok(value)
}

/// How much a drop-tail queue holds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum QueueLimit {
    Packets(usize),
    Bytes(usize),
    /// Bytes the bottleneck's mean rate sends in this many µs (a "500 ms queue").
    Time(u64),
}

/// `256` or `256p` (packets), `64kb`/`1mb`/`9000b` (bytes, powers of 1000), `500ms` (time at
/// the mean rate).
pub fn queue_limit(text: &str) -> Result<QueueLimit, Error> {
    let text = text.trim();
    let (value, unit) = split_unit(text);
    let whole = |scale: f64| -> Result<usize, Error> {
        let v = number(value, "queue size", text)? * scale;
        if !(1.0..=1e10).contains(&v) {
            return Err(Error::spec(
                text,
                "a queue holds 1 to 10^10 packets or bytes",
            ));
        }
        Ok(v as usize)
    };
    Ok(match unit.as_str() {
        "" | "p" | "pkt" | "packets" => QueueLimit::Packets(whole(1.0)?),
        "b" | "bytes" => QueueLimit::Bytes(whole(1.0)?),
        "kb" => QueueLimit::Bytes(whole(1e3)?),
        "mb" => QueueLimit::Bytes(whole(1e6)?),
        "us" | "ms" | "s" => QueueLimit::Time(duration_us(text)?.max(1)),
        _ => {
            return Err(Error::spec(
                text,
                "a queue is packets (256), bytes (64kb) or time at the link's rate (500ms)",
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration_us("20ms").unwrap(), 20_000);
        assert_eq!(duration_us("1.5s").unwrap(), 1_500_000);
        assert_eq!(duration_us("500us").unwrap(), 500);
        assert_eq!(duration_us("2min").unwrap(), 120_000_000);
        assert!(duration_us("20").is_err());
        assert!(duration_us("-1ms").is_err());
        assert!(duration_us("fast").is_err());
    }

    #[test]
    fn rates() {
        assert_eq!(rate_bps("5mbit").unwrap(), 5_000_000);
        assert_eq!(rate_bps("1.2Mbit/s").unwrap(), 1_200_000);
        assert_eq!(rate_bps("800kbps").unwrap(), 800_000);
        assert_eq!(rate_bps("0mbit").unwrap(), 0);
        assert!(rate_bps("5").is_err());
        assert!(rate_bps("5 furlongs").is_err());
    }

    #[test]
    fn fractions() {
        assert_eq!(fraction("5%").unwrap(), 0.05);
        assert_eq!(fraction("0.25").unwrap(), 0.25);
        assert!(fraction("150%").is_err());
        assert!(fraction("x%").is_err());
    }

    #[test]
    fn queues() {
        assert_eq!(queue_limit("256").unwrap(), QueueLimit::Packets(256));
        assert_eq!(queue_limit("64kb").unwrap(), QueueLimit::Bytes(64_000));
        assert_eq!(queue_limit("500ms").unwrap(), QueueLimit::Time(500_000));
        assert!(queue_limit("0").is_err());
        assert!(queue_limit("12 parsecs").is_err());
    }
}
