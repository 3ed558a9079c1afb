//! The publishing pipeline: a source thread and an encoder thread joined by a one-slot
//! mailbox. When the encoder falls behind, the source replaces the waiting frame (the oldest)
//! with the newest and counts a drop: a late frame is worth nothing to a live viewer.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use lantern_proto::{clock, histogram::Histogram, stamp::Stamp, yuv};

use crate::Error;
use crate::encode::{Encoder, H264Settings};
use crate::publish::VideoTrack;
use crate::source::{Format, Source};

/// A one-slot hand-off that keeps only the newest value.
struct Mailbox<T> {
    slot: Mutex<(Option<T>, bool)>,
    ready: Condvar,
}

impl<T> Mailbox<T> {
    fn new() -> Self {
        Self {
            slot: Mutex::new((None, false)),
            ready: Condvar::new(),
        }
    }

    /// Leave `value`, handing back the one it displaced (never taken).
    fn put(&self, value: T) -> Option<T> {
        let old = self.slot.lock().expect("mailbox poisoned").0.replace(value);
        self.ready.notify_one();
        old
    }

    /// No more values will come; `take` drains what is left, then returns `None`.
    fn close(&self) {
        self.slot.lock().expect("mailbox poisoned").1 = true;
        self.ready.notify_one();
    }

    fn take(&self) -> Option<T> {
        let mut slot = self.slot.lock().expect("mailbox poisoned");
        loop {
            if let Some(value) = slot.0.take() {
                return Some(value);
            }
            if slot.1 {
                return None;
            }
            slot = self.ready.wait(slot).expect("mailbox poisoned");
        }
    }
}

/// Counters the two threads share, read by the stats line.
#[derive(Default)]
pub struct Counters {
    pub captured: AtomicU64,
    pub dropped: AtomicU64,
}

/// What one run of the pipeline did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub captured: u64,
    pub dropped: u64,
    pub published: u64,
}

/// Run `source` → encoder → the video track until the source ends, `frames` have been captured,
/// or `stop` is set. Blocks: call it from a blocking thread.
pub fn run(
    mut source: Box<dyn Source>,
    settings: &H264Settings,
    mut video: VideoTrack,
    frames: Option<u64>,
    stop: Arc<AtomicBool>,
    stats: bool,
) -> Result<Summary, Error> {
    let format = source.format();
    let mut encoder = Encoder::new(format, settings)?;
    let mailbox = Arc::new(Mailbox::<(yuv::Frame, Stamp)>::new());
    let counters = Arc::new(Counters::default());
    let (recycle, free) = mpsc::channel::<yuv::Frame>();

    let capture = {
        let (mailbox, counters, stop) = (mailbox.clone(), counters.clone(), stop.clone());
        std::thread::Builder::new()
            .name("capture".into())
            .spawn(move || {
                let result = capture_loop(
                    &mut *source,
                    format,
                    &mailbox,
                    &counters,
                    free,
                    frames,
                    &stop,
                );
                mailbox.close();
                result
            })
            .map_err(|e| Error::Source(format!("capture thread: {e}")))?
    };

    let mut report = stats.then(|| Report::new(counters.clone()));
    let mut published = 0u64;
    let mut result = Ok(());
    while let Some((frame, stamp)) = mailbox.take() {
        let started = Instant::now();
        let outcome = encoder.encode(&frame, stamp.capture_us, |packet| {
            video.write(&packet)?;
            if let Some(report) = &mut report {
                report.bytes += packet.data.len() as u64;
            }
            Ok(())
        });
        let _ = recycle.send(frame);
        if let Err(err) = outcome {
            // Stop the source too; the capture thread ends when it next looks.
            stop.store(true, Ordering::Relaxed);
            result = Err(err);
            break;
        }
        published += 1;
        if let Some(report) = &mut report {
            report.frame(started, stamp);
        }
    }
    // Drain whatever the encoder still holds (nothing with zerolatency), then end the tracks.
    if result.is_ok() {
        result = encoder.finish(|packet| video.write(&packet));
    }
    // End the tracks and collect the capture thread before reporting, so neither is skipped
    // and the first error (the encoder's, if any) is the one the caller sees.
    let finished = video.finish();
    let captured = capture
        .join()
        .map_err(|_| Error::Source("capture thread panicked".into()))?;
    result?;
    finished?;
    let captured = captured?;
    if let Some(report) = &report {
        eprintln!("{}", report.total(published));
    }
    Ok(Summary {
        captured,
        dropped: counters.dropped.load(Ordering::Relaxed),
        published,
    })
}

fn capture_loop(
    source: &mut dyn Source,
    format: Format,
    mailbox: &Mailbox<(yuv::Frame, Stamp)>,
    counters: &Counters,
    free: mpsc::Receiver<yuv::Frame>,
    frames: Option<u64>,
    stop: &AtomicBool,
) -> Result<u64, Error> {
    let mut captured = 0u64;
    let mut spare = None;
    while !stop.load(Ordering::Relaxed) && frames.is_none_or(|n| captured < n) {
        // At most three frames ever exist: one filling, one waiting, one encoding.
        let mut frame = match spare.take().or_else(|| free.try_recv().ok()) {
            Some(frame) => frame,
            None => yuv::Frame::new(format.width, format.height)
                .map_err(|e| Error::Source(e.to_string()))?,
        };
        let Some(stamp) = source.next(&mut frame)? else {
            break;
        };
        captured += 1;
        counters.captured.fetch_add(1, Ordering::Relaxed);
        if let Some((displaced, _)) = mailbox.put((frame, stamp)) {
            counters.dropped.fetch_add(1, Ordering::Relaxed);
            spare = Some(displaced);
        }
    }
    Ok(captured)
}

/// The `--stats` line: one JSON object a second on stderr.
struct Report {
    counters: Arc<Counters>,
    since: Instant,
    frames: u64,
    bytes: u64,
    encode_us: Histogram,
    pipeline_us: Histogram,
    total_encode_us: Histogram,
    total_pipeline_us: Histogram,
}

impl Report {
    fn new(counters: Arc<Counters>) -> Self {
        Self {
            counters,
            since: Instant::now(),
            frames: 0,
            bytes: 0,
            encode_us: Histogram::new(),
            pipeline_us: Histogram::new(),
            total_encode_us: Histogram::new(),
            total_pipeline_us: Histogram::new(),
        }
    }

    fn frame(&mut self, started: Instant, stamp: Stamp) {
        self.frames += 1;
        let encode_us = started.elapsed().as_micros() as u64;
        let pipeline_us = clock::elapsed_us(stamp.capture_us, clock::now_unix_us());
        self.encode_us.record(encode_us);
        self.pipeline_us.record(pipeline_us);
        self.total_encode_us.record(encode_us);
        self.total_pipeline_us.record(pipeline_us);
        let elapsed = self.since.elapsed().as_secs_f64();
        if elapsed < 1.0 {
            return;
        }
        let line = serde_json::json!({
            "role": "pub",
            "fps": (self.frames as f64 / elapsed * 10.0).round() / 10.0,
            "kbps": (self.bytes as f64 * 8.0 / elapsed / 1000.0).round(),
            "captured": self.counters.captured.load(Ordering::Relaxed),
            "drops": self.counters.dropped.load(Ordering::Relaxed),
            "encode_ms_p50": ms(&self.encode_us, 0.5),
            "encode_ms_p99": ms(&self.encode_us, 0.99),
            "capture_to_sent_ms_p50": ms(&self.pipeline_us, 0.5),
            "capture_to_sent_ms_p99": ms(&self.pipeline_us, 0.99),
        });
        eprintln!("{line}");
        self.since = Instant::now();
        self.frames = 0;
        self.bytes = 0;
        self.encode_us.clear();
        self.pipeline_us.clear();
    }

    /// The closing line, over the whole run.
    fn total(&self, published: u64) -> String {
        serde_json::json!({
            "role": "pub",
            "final": true,
            "captured": self.counters.captured.load(Ordering::Relaxed),
            "published": published,
            "drops": self.counters.dropped.load(Ordering::Relaxed),
            "encode_ms_p50": ms(&self.total_encode_us, 0.5),
            "encode_ms_p99": ms(&self.total_encode_us, 0.99),
            "capture_to_sent_ms_p50": ms(&self.total_pipeline_us, 0.5),
            "capture_to_sent_ms_p99": ms(&self.total_pipeline_us, 0.99),
        })
        .to_string()
    }
}

fn ms(h: &Histogram, q: f64) -> f64 {
    h.quantile(q).unwrap_or(0) as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailbox_keeps_the_newest_and_drains_after_close() {
        let mailbox = Mailbox::new();
        assert_eq!(mailbox.put(1), None);
        assert_eq!(mailbox.put(2), Some(1));
        mailbox.close();
        assert_eq!(mailbox.take(), Some(2));
        assert_eq!(mailbox.take(), None);
    }

    #[test]
    fn mailbox_wakes_a_waiting_taker() {
        let mailbox = Arc::new(Mailbox::new());
        let taker = {
            let mailbox = mailbox.clone();
            std::thread::spawn(move || mailbox.take())
        };
        mailbox.put(7);
        assert_eq!(taker.join().unwrap(), Some(7));
    }
}
