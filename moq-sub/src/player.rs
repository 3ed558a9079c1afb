//! The video player: read, decode and output frames on a thread of its own, reporting as it
//! goes, and riding out a stream that goes away.

use std::time::{Duration, Instant};

use lantern_proto::stamp::{Echo, Stamp};
use lantern_proto::timing::{Admit, Joiner};
use lantern_proto::{clock, sync};
use tokio_util::sync::CancellationToken;

use crate::arrivals::{Arrivals, Arrived, Next};
use crate::subscribe::{self, Video};
use crate::{Config, Error, Events, Feed, decode, feedback, output, stats, window};

/// Decode and output frames on this (blocking) thread as they arrive (see [`crate::arrivals`]:
/// a player that falls behind skips to a newer group and asks for a keyframe). With
/// `reopen`, a track that fails or stalls is a reconnect: the outputs stay open while the
/// broadcast is waited for, and play goes on from its next keyframe.
#[allow(clippy::too_many_arguments)]
pub(crate) fn play(
    handle: tokio::runtime::Handle,
    video: Video,
    config: &Config,
    stop: &CancellationToken,
    events: &Events,
    stats: &mut stats::Stats,
    shown_to: &Shown,
    reopen: Option<&subscribe::Resubscribe>,
) -> Result<(), Error> {
    // RTP brings pictures in pieces, as they are sent: no groups to join, and the decoder
    // takes the pieces.
    let rtp = matches!(video.feed, Feed::Rtp(_));
    if let Some(size) = video.coded {
        config.limits.check_size(size, "the catalog")?;
    }
    let mut decoder = match rtp {
        true => decode::Decoder::chunked(config.limits)?,
        false => decode::Decoder::of(video.decoder, video.description.as_deref(), config.limits)?,
    };
    let mut output = output::Output::open(config.output.as_deref(), video.framerate)?;
    let mut log = stats::LatencyLog::create(config.latency_log.as_deref())?;
    let mut joiner = (!rtp).then(|| Joiner::new(config.join.into()));
    let mut decode_errors = 0u64;
    let timeout = config.timeout;
    let start = |feed| Arrivals::start(&handle, feed, shown_to.path.clone(), stop.clone());
    let mut arrivals = start(video.feed);
    loop {
        let read = match arrivals.next(timeout) {
            Next::Ended | Next::Stopped => break,
            Next::Frame(taken) => Ok(taken),
            Next::Quiet => Err(stalled(&config.name, timeout)),
            Next::Failed(e) => Err(Error::broadcast(&config.name, "track failed", Some(e))),
        };
        let taken = match (read, reopen) {
            (Ok(taken), _) => taken,
            (Err(err), None) => return Err(err),
            (Err(err), Some(reopen)) => {
                tracing::warn!(%err, "the stream went away: reconnecting");
                match wait_for_return(&handle, reopen, stop, stats, config, events, shown_to)? {
                    None => break,
                    Some(back) => {
                        if let Some(size) = back.coded {
                            config.limits.check_size(size, "the catalog")?;
                        }
                        decoder = decode::Decoder::of(
                            back.decoder,
                            back.description.as_deref(),
                            config.limits,
                        )?;
                        // Back from an outage the screen holds a stale picture: the current
                        // group's keyframe gives a new one at once (its older frames decode in
                        // a burst to catch up), where waiting for the next keyframe would add
                        // up to a GOP to the outage.
                        joiner = Some(Joiner::new(lantern_proto::timing::JoinPolicy::Current));
                        arrivals = start(back.feed);
                        continue;
                    }
                }
            }
        };
        stats.summary.behind_skipped += taken.dropped;
        if taken.after_hole
            && let Some(joiner) = &mut joiner
        {
            joiner.damaged();
        }
        let Arrived { frame, arrived_us } = taken.item;
        // The relay serves the newest group from its keyframe; how its next frames arrive
        // tells a group that began well before from one just starting.
        let admit = joiner.as_mut().map_or(Admit::Decode, |joiner| {
            joiner.frame(frame.keyframe, || {
                arrivals.began_before(frame.pts_us, arrived_us)
            })
        });
        let captured = frame.captured_us;
        stats.received(frame.payload.len(), captured, arrived_us);
        // Waiting for the next keyframe (joined in a group's middle, or a picture did not
        // decode): ask for one rather than wait a whole group.
        if admit == Admit::Skip {
            shown_to.path.lock().want_keyframe();
            continue;
        }
        let started = Instant::now();
        let decoded = decoder.decode(&frame.payload, |picture| {
            // Decode time ends here; writing to the output is not part of it.
            let decode_us = started.elapsed().as_micros() as u64;
            let image = &picture.image;
            let stamp = Stamp::read(image);
            if config.av_sync
                && let (Some(captured), Some(lip_sync)) = (captured, &shown_to.lip_sync)
            {
                let hold = lip_sync.hold_us(captured, clock::now_unix_us());
                std::thread::sleep(Duration::from_micros(hold));
            }
            output.write(image)?;
            let shown = clock::now_unix_us();
            stats.shown(stamp, captured, decode_us, shown);
            let echo = shown_to.photon.as_ref().and_then(|_| Echo::read(image));
            match &shown_to.window {
                // The window pairs presses with pictures when it presents them.
                Some(window) => window.show(window::Frame {
                    picture: picture.share()?,
                    decoded_us: shown,
                    stamp,
                    echo,
                }),
                None => {
                    if let (Some(photon), Some(echo)) = (&shown_to.photon, echo) {
                        photon.shown(echo, stamp, shown);
                    }
                }
            }
            // After the picture's echo is taken: a script starts on this, and a press sent
            // before the meter has seen an echo cannot be paired.
            shown_to.first.cancel();
            let (luma, stride) = image.plane(0);
            let flash = sync::flash_visible(luma, stride, image.width(), image.height());
            stats.flash(flash, shown);
            match stamp {
                Some(stamp) => log.record(stamp, shown),
                None => Ok(()),
            }
        });
        match decoded {
            Ok(()) => {}
            Err(Error::OutputClosed) => break,
            Err(err @ (Error::Output { .. } | Error::Config(_) | Error::Refused(_))) => {
                return Err(err);
            }
            Err(err) => {
                decode_errors += 1;
                if let Some(joiner) = &mut joiner {
                    joiner.damaged();
                }
                let mut path = shown_to.path.lock();
                path.skipped(1);
                path.want_keyframe();
                let err = &err as &dyn std::error::Error;
                tracing::warn!(err, decode_errors, "skipping to the next keyframe");
            }
        }
        report(stats, config, events, shown_to);
        if config.frames.is_some_and(|n| stats.summary.frames >= n) {
            break;
        }
    }
    log.finish()
}

/// A stats line a second, to `--stats` and the window's overlay (which shows the same
/// figures the lines carry).
fn report(stats: &mut stats::Stats, config: &Config, events: &Events, shown_to: &Shown) {
    if (config.stats || shown_to.window.is_some())
        && let Some(line) = stats.tick()
    {
        if let Some(window) = &shown_to.window {
            window.overlay(&line);
        }
        if config.stats {
            stats.send(events, line);
        }
    }
}

/// Wait for the broadcast to come back (the connection redials meanwhile), the stats lines
/// going on and saying so; its video, or None when stopped first.
fn wait_for_return(
    handle: &tokio::runtime::Handle,
    reopen: &subscribe::Resubscribe,
    stop: &CancellationToken,
    stats: &mut stats::Stats,
    config: &Config,
    events: &Events,
    shown_to: &Shown,
) -> Result<Option<Video>, Error> {
    stats.away();
    let mut reopening = std::pin::pin!(reopen.video());
    loop {
        let next = handle.block_on(async {
            tokio::select! {
                reopened = &mut reopening => Some(Some(reopened)),
                () = tokio::time::sleep(Duration::from_millis(250)) => Some(None),
                () = stop.cancelled() => None,
            }
        });
        match next {
            None => return Ok(None),
            Some(None) => report(stats, config, events, shown_to),
            Some(Some(reopened)) => {
                stats.back();
                let video = reopened?;
                tracing::info!(name = config.name, "the stream is back");
                return Ok(Some(video));
            }
        }
    }
}

/// Where shown pictures are announced: the first one to the input script, each one to the
/// window or, without one, to the input-to-photon meter; the path's meter, which the feedback
/// reports come from; and the sound's clock a picture waits for (lip sync).
pub(crate) struct Shown {
    pub first: CancellationToken,
    pub window: Option<window::Handle>,
    pub photon: Option<crate::input::Photon>,
    pub path: feedback::Path,
    pub lip_sync: Option<crate::audio::SharedLipSync>,
}

fn stalled(name: &str, timeout: Duration) -> Error {
    let why = format!("no video frame for {timeout:?} (publisher gone?)");
    Error::broadcast(name, why, None)
}
