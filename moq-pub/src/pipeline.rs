//! The video pipeline: a capture thread that has the source fill frames of the encoder's own
//! (stamping test content), and the encoding thread (which hands each frame to MoQ and RTP),
//! joined by a [`Latest`] hand-off. When the encoder falls behind, the capture thread replaces
//! the waiting frame (the oldest) with the newest and counts a drop: a late frame is worth
//! nothing to a live viewer. Frames go back to the capture thread to fill again: a few exist
//! (one filling, one waiting, one encoding, one spare).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ffmpeg_next as ffmpeg;
use lantern_media::latest::{Empty, Latest};
use lantern_proto::{clock, histogram::Histogram, stamp::Stamp};
use tokio_util::sync::CancellationToken;

use crate::encode::{Backend, Encoder, VideoSettings};
use crate::outlet::Outlet;
use crate::publish::VideoTrack;
use crate::rate::{Feedback, RateStats};
use crate::source::{Canvas, Captured, Source};
use crate::stats::{Behind, Event, StageTimes, VideoStats, VideoSummary};
use crate::{Error, Events};
use lantern_proto::rate::RateControl;
use lantern_proto::timing::KeyframeClock;

/// What the pipeline is asked to do.
pub(crate) struct Options {
    pub frames: Option<u64>,
    /// Draw the frame stamp into pictures that do not carry one.
    pub stamp: bool,
    /// Adaptive bitrate: the controller, and where viewers' feedback lands for it.
    pub rate: Option<(RateControl, Feedback)>,
    /// The direct server's sessions, to report each second.
    pub seats: Option<lantern_net::listen::Seats>,
    /// Set by the network when a relay took the broadcast again (after a drop or a restart):
    /// every viewer behind it starts over, and a keyframe spares them the wait for the next.
    pub rejoined: Arc<AtomicBool>,
}

/// Counters the two threads share.
#[derive(Default)]
struct Counters {
    captured: AtomicU64,
    dropped: AtomicU64,
}

type Slot = (ffmpeg::frame::Video, Captured);

/// Run `source` → encoder → the video track until the source ends, `frames` are captured, or
/// `cancel` fires. Blocks: call it from a blocking thread.
pub(crate) fn run(
    mut source: Box<dyn Source>,
    settings: &VideoSettings,
    mut video: Outlet<VideoTrack>,
    mut options: Options,
    cancel: CancellationToken,
    events: Events,
) -> Result<VideoSummary, Error> {
    let format = source.format();
    let mut encoder = Encoder::new(format, settings)?;
    let mailbox = Arc::new(Latest::<Slot>::new());
    let counters = Arc::new(Counters::default());

    let mut rate = options.rate.take();
    let seats = options.seats.take();
    let rejoined = options.rejoined.clone();
    let capture = {
        let (mailbox, counters, cancel) = (mailbox.clone(), counters.clone(), cancel.clone());
        std::thread::Builder::new()
            .name("capture".into())
            .spawn(move || {
                let result = capture_loop(&mut *source, &mailbox, &counters, &options, &cancel);
                mailbox.close();
                result
            })
            .map_err(|source| Error::Spawn {
                what: "capture",
                source,
            })?
    };

    let mut report = Report::new(counters.clone(), events, encoder.backend(), format.fps);
    report.seats = seats;
    let mut result = Ok(());
    // An encoder that holds a picture back (SVT-AV1) gets it out by a repeat when the source
    // sends nothing new for a frame and a half (a still screen after one change).
    let frame_us = (1e6 / format.fps.max(1.0)) as u64;
    // A still screen's repeats come a few a second: keyframes by time too, for joiners.
    let mut keyframes = KeyframeClock::new(settings.gop, format.fps);
    let nudge = Duration::from_micros(frame_us * 3 / 2);
    loop {
        let (mut frame, captured) = match mailbox.take(encoder.holding().then_some(nudge)) {
            Ok(slot) => slot,
            Err(Empty::Closed) => break,
            Err(Empty::Quiet) => {
                let outcome = encoder.repeat(frame_us, |packet| {
                    report.bytes += packet.data.len() as u64;
                    video.write(packet.data, packet.pts_us, |track, pts_us| {
                        track.write(packet.data, pts_us)
                    })
                });
                if let Err(err) = outcome {
                    cancel.cancel();
                    result = Err(err);
                    break;
                }
                continue;
            }
        };
        let started = Instant::now();
        let mut keyframe = false;
        if let Some((control, feedback)) = &mut rate {
            let now = clock::now_unix_us();
            let drops = feedback.drain(control);
            let decision = control.frame(now);
            tracing::trace!(?decision, "frame");
            report.rate = Some(RateStats::of(control, now, drops));
            if decision.skip {
                keyframes.skipped();
                mailbox.recycle((frame, captured));
                continue;
            }
            encoder.set_bitrate((decision.bitrate_bps / 1000) as u32);
            keyframe = decision.keyframe;
        }
        keyframe |= keyframes.due(captured.capture_us);
        keyframe |= rejoined.swap(false, Ordering::Relaxed);
        let (mut bytes, mut made_keyframe) = (0, false);
        let outcome = encoder.encode(&mut frame, captured.capture_us, keyframe, |packet| {
            bytes += packet.data.len();
            made_keyframe |= packet.keyframe;
            video.write(packet.data, packet.pts_us, |track, pts_us| {
                track.write(packet.data, pts_us)
            })
        });
        report.bytes += bytes as u64;
        tracing::trace!(bytes, keyframe = made_keyframe, "encoded");
        if made_keyframe {
            keyframes.keyframe(captured.capture_us);
        }
        if let Some((control, _)) = &mut rate {
            // Viewers name the frames they received by their timestamps on the track: the
            // last one written is the newest whose bytes are sent (an encoder that holds a
            // picture back gives the one before; a time that stepped back was moved).
            let ts = video
                .moq
                .as_ref()
                .zip(video.last_us())
                .map(|(t, us)| t.timestamp_us(us));
            control.sent(clock::now_unix_us(), ts, bytes);
            if made_keyframe {
                control.keyframe_sent();
            }
        }
        mailbox.recycle((frame, captured));
        if let Err(err) = outcome {
            // Stop the source too; the capture thread ends when it next looks.
            cancel.cancel();
            result = Err(err);
            break;
        }
        report.frame(started, captured.capture_us);
    }
    // Drain whatever the encoder still holds (nothing with zerolatency), then end the track.
    if result.is_ok() {
        result = encoder.finish(|packet| {
            video.write(packet.data, packet.pts_us, |track, pts_us| {
                track.write(packet.data, pts_us)
            })
        });
    }
    // End the track and collect the capture thread before reporting, so neither is skipped
    // and the first error (the encoder's, if any) is the one the caller sees.
    let finished = video.finish(VideoTrack::finish);
    let captured = capture.join().map_err(|_| Error::Thread("capture"))?;
    result?;
    finished?;
    captured?;
    Ok(report.summary())
}

fn capture_loop(
    source: &mut dyn Source,
    mailbox: &Latest<Slot>,
    counters: &Counters,
    options: &Options,
    cancel: &CancellationToken,
) -> Result<(), Error> {
    let format = source.format();
    let mut spare = None;
    let mut number = 0u32;
    let stampable = lantern_proto::stamp::Layout::new(format.width, format.height).is_ok();
    while !cancel.is_cancelled() && options.frames.is_none_or(|n| u64::from(number) < n) {
        let mut frame = spare
            .take()
            .or_else(|| mailbox.spare().map(|(frame, _)| frame))
            .unwrap_or_else(|| lantern_media::ffmpeg::i420_frame(format.width, format.height));
        if !lantern_media::ffmpeg::is_writable(&frame) {
            // The encoder still holds this buffer (it never should once it returned): give
            // it up rather than write under it.
            frame = lantern_media::ffmpeg::i420_frame(format.width, format.height);
        }
        let mut canvas = Canvas::new(lantern_media::ffmpeg::i420_mut(&mut frame)?);
        let Some(captured) = source.next(&mut canvas)? else {
            break;
        };
        if options.stamp && !captured.stamped && stampable {
            Stamp {
                frame: number,
                capture_us: captured.capture_us,
            }
            .write(canvas.i420())
            .map_err(|source| Error::Format {
                what: "frame stamp".into(),
                source,
            })?;
        }
        number = number.wrapping_add(1);
        counters.captured.fetch_add(1, Ordering::Relaxed);
        if let Some((displaced, _)) = mailbox.put((frame, captured)) {
            counters.dropped.fetch_add(1, Ordering::Relaxed);
            spare = Some(displaced);
        }
    }
    Ok(())
}

/// Timing of the encoding thread: a [`VideoStats`] event a second, and the totals.
struct Report {
    counters: Arc<Counters>,
    backend: Backend,
    events: Events,
    since: Instant,
    frames: u64,
    published: u64,
    bytes: u64,
    encode_us: Histogram,
    pipeline_us: Histogram,
    total_encode_us: Histogram,
    total_pipeline_us: Histogram,
    /// The rate control's figures as of the last frame (adaptive only).
    rate: Option<RateStats>,
    /// The direct server's sessions, when it serves.
    seats: Option<lantern_net::listen::Seats>,
    /// The source's frame rate, and whether the encoder keeps up with it.
    fps: f64,
    behind: Behind,
}

impl Report {
    fn new(counters: Arc<Counters>, events: Events, backend: Backend, fps: f64) -> Self {
        Self {
            counters,
            backend,
            events,
            fps,
            behind: Behind::default(),
            since: Instant::now(),
            frames: 0,
            published: 0,
            bytes: 0,
            encode_us: Histogram::new(),
            pipeline_us: Histogram::new(),
            total_encode_us: Histogram::new(),
            total_pipeline_us: Histogram::new(),
            rate: None,
            seats: None,
        }
    }

    fn frame(&mut self, started: Instant, capture_us: u64) {
        self.frames += 1;
        self.published += 1;
        let encode_us = started.elapsed().as_micros() as u64;
        let pipeline_us = clock::elapsed_us(capture_us, clock::now_unix_us());
        for h in [&mut self.encode_us, &mut self.total_encode_us] {
            h.record(encode_us);
        }
        for h in [&mut self.pipeline_us, &mut self.total_pipeline_us] {
            h.record(pipeline_us);
        }
        let elapsed = self.since.elapsed().as_secs_f64();
        if elapsed < 1.0 {
            return;
        }
        let second = VideoStats {
            codec: self.backend.codec().name().into(),
            encoder: self.backend.name().into(),
            fps: (self.frames as f64 / elapsed * 10.0).round() / 10.0,
            kbps: (self.bytes as f64 * 8.0 / elapsed / 1000.0).round(),
            captured: self.counters.captured.load(Ordering::Relaxed),
            drops: self.counters.dropped.load(Ordering::Relaxed),
            times: StageTimes::of(&self.encode_us, &self.pipeline_us),
            rate: self.rate.clone(),
            direct: self.seats.as_ref().map(lantern_net::listen::Seats::now),
        };
        if let Some(advice) = self.behind.second(&second, self.fps) {
            tracing::warn!("{advice}");
        }
        let _ = self.events.send(Event::Video(second));
        self.since = Instant::now();
        self.frames = 0;
        self.bytes = 0;
        self.encode_us.clear();
        self.pipeline_us.clear();
    }

    fn summary(&self) -> VideoSummary {
        VideoSummary {
            codec: self.backend.codec().name(),
            encoder: self.backend.name(),
            captured: self.counters.captured.load(Ordering::Relaxed),
            published: self.published,
            drops: self.counters.dropped.load(Ordering::Relaxed),
            times: StageTimes::of(&self.total_encode_us, &self.total_pipeline_us),
            rate: self.rate.clone(),
        }
    }
}
