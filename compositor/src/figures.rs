//! The pacing's figures for the daemon's stats: how long the app waited for its frame
//! callbacks, how many it got, and how many an input brought forward. The compositor runs as
//! the session's user, so it hands them over the one way that needs no channel of its own:
//! a small file it replaces whole once a second ([`Report::to_text`]), which the daemon reads
//! (bounded, never following a link) and parses as untrusted text ([`Report::parse`]).

use std::path::PathBuf;
use std::time::Duration;

use lantern_proto::histogram::Histogram;

/// How often the file is replaced.
const EVERY: Duration = Duration::from_secs(1);

/// The figures over a stretch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Figures {
    /// Frame callbacks sent (the app's frames it was let draw).
    pub callbacks: u64,
    /// Of them, sent early because a key, button or touch reached the app.
    pub boosts: u64,
    /// From the app's commit to its frame callback, µs.
    pub wait_us_p50: u64,
    pub wait_us_p99: u64,
}

/// The last second's figures and the whole run's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub second: Figures,
    pub total: Figures,
}

const FIELDS: [&str; 4] = ["callbacks", "boosts", "wait_us_p50", "wait_us_p99"];

impl Report {
    /// Two lines, `second k=v…` and `total k=v…`.
    pub fn to_text(&self) -> String {
        let line = |name: &str, f: &Figures| {
            let values = [f.callbacks, f.boosts, f.wait_us_p50, f.wait_us_p99];
            let pairs: Vec<String> = FIELDS
                .iter()
                .zip(values)
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            format!("{name} {}\n", pairs.join(" "))
        };
        line("second", &self.second) + &line("total", &self.total)
    }

    /// Read what [`Report::to_text`] wrote; `None` for anything else (a half-written or
    /// forged file gives no figures rather than wrong ones).
    pub fn parse(text: &str) -> Option<Self> {
        let mut lines = text.lines();
        let mut figures = |name: &str| -> Option<Figures> {
            let mut words = lines.next()?.split(' ');
            (words.next()? == name).then_some(())?;
            let mut values = [0u64; 4];
            for (field, value) in FIELDS.iter().zip(values.iter_mut()) {
                let (key, number) = words.next()?.split_once('=')?;
                (key == *field).then_some(())?;
                *value = number.parse().ok()?;
            }
            words.next().is_none().then_some(())?;
            let [callbacks, boosts, wait_us_p50, wait_us_p99] = values;
            Some(Figures {
                callbacks,
                boosts,
                wait_us_p50,
                wait_us_p99,
            })
        };
        let report = Self {
            second: figures("second")?,
            total: figures("total")?,
        };
        lines.next().is_none().then_some(report)
    }
}

/// Counts the releases and writes the file when due.
pub struct Meter {
    path: Option<PathBuf>,
    second: (Histogram, u64),
    total: (Histogram, u64),
    written: Option<Duration>,
}

impl Meter {
    pub fn new(path: Option<PathBuf>) -> Self {
        Self {
            path,
            second: (Histogram::new(), 0),
            total: (Histogram::new(), 0),
            written: None,
        }
    }

    /// Callbacks went out after the app waited `waited_us`; `boosted` if an input sent
    /// them early.
    pub fn released(&mut self, waited_us: u64, boosted: bool) {
        for (waits, boosts) in [&mut self.second, &mut self.total] {
            waits.record(waited_us);
            *boosts += u64::from(boosted);
        }
    }

    pub fn report(&self) -> Report {
        let figures = |(waits, boosts): &(Histogram, u64)| Figures {
            callbacks: waits.count(),
            boosts: *boosts,
            wait_us_p50: waits.quantile(0.5).unwrap_or(0),
            wait_us_p99: waits.quantile(0.99).unwrap_or(0),
        };
        Report {
            second: figures(&self.second),
            total: figures(&self.total),
        }
    }

    /// Replace the file if a second has passed since the last time (`now` on the
    /// compositor's clock), and start a new second.
    pub fn write_if_due(&mut self, now: Duration) {
        let Some(path) = &self.path else {
            return;
        };
        if self.written.is_some_and(|at| now < at + EVERY) {
            return;
        }
        self.written = Some(now);
        let new = path.with_extension("new");
        let written = std::fs::write(&new, self.report().to_text())
            .and_then(|()| std::fs::rename(&new, path));
        if let Err(err) = written {
            tracing::debug!("writing {}: {err}", path.display());
        }
        self.second.0.clear();
        self.second.1 = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_reads_back_and_nothing_else_does() {
        let mut meter = Meter::new(None);
        for wait in [1_000, 2_000, 3_000] {
            meter.released(wait, wait == 2_000);
        }
        let report = meter.report();
        assert_eq!(report.second.callbacks, 3);
        assert_eq!(report.total.boosts, 1);
        assert!((1_900..=2_100).contains(&report.second.wait_us_p50));
        let text = report.to_text();
        assert_eq!(Report::parse(&text), Some(report));
        for bad in [
            "",
            &text[..text.len() / 2],
            &text.replace("boosts", "boost"),
            &text.replace("=1 ", "=-1 "),
            &(text.clone() + "more\n"),
            &text.replace("second", "total"),
            "second callbacks=99999999999999999999999 boosts=0 wait_us_p50=0 wait_us_p99=0\n",
        ] {
            assert_eq!(Report::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_file_is_replaced_once_a_second_with_that_seconds_figures() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pacing");
        let mut meter = Meter::new(Some(path.clone()));
        let read = || Report::parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
        meter.released(5_000, false);
        meter.write_if_due(Duration::from_secs(10));
        assert_eq!(read().second.callbacks, 1);
        meter.released(5_000, true);
        meter.write_if_due(Duration::from_millis(10_500));
        assert_eq!(read().second.callbacks, 1, "not yet a second");
        meter.write_if_due(Duration::from_secs(11));
        let report = read();
        assert_eq!((report.second.callbacks, report.second.boosts), (1, 1));
        assert_eq!((report.total.callbacks, report.total.boosts), (2, 1));
    }
}
