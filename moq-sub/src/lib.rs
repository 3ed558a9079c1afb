//! moq-sub: subscribe to a hang broadcast over MoQ, decode its H.264 video and hand the
//! frames to a viewer (a y4m file or pipe), measuring latency from the frame stamps.
//!
//! The binary is a thin wrapper: it parses flags into a [`Config`] and calls [`run`].

pub mod audio;
pub mod decode;
mod error;
pub mod output;
mod playback;
pub mod stats;
mod subscribe;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, UNIX_EPOCH};

use lantern_proto::{clock, stamp::Stamp, sync};
use moq_pub::net::{self, ConnectArgs};

pub use error::Error;
pub use subscribe::{Join, Video};

/// Everything a subscribing run needs.
#[derive(Clone, Debug)]
pub struct Config {
    pub connect: ConnectArgs,
    pub name: String,
    /// Where decoded frames go: a y4m path, `-` for stdout, or nowhere.
    pub output: Option<String>,
    /// Stop after this many decoded frames.
    pub frames: Option<u64>,
    /// Print a JSON stats line every second (and a closing one).
    pub stats: bool,
    pub join: Join,
    /// Write one CSV line per shown frame (frame, capture time, shown time) here.
    pub latency_log: Option<std::path::PathBuf>,
    /// Where decoded sound goes: a WAV path, `-` for raw PCM on stdout, or nowhere.
    pub audio_out: Option<String>,
    /// Hold each picture until its sound is out (lip sync), when there is sound.
    pub av_sync: bool,
}

/// The longest a picture is held back for its sound; beyond it, the sound path is broken and
/// the picture goes out late rather than never.
const MAX_LIP_SYNC_HOLD: Duration = Duration::from_millis(250);

/// Play until the broadcast ends, `frames` are decoded, or the stream stalls.
pub async fn run(config: Config) -> Result<stats::Summary, Error> {
    if config.output.as_deref() == Some("-") && config.audio_out.as_deref() == Some("-") {
        return Err(Error::Config(
            "-o - and --audio-out - cannot both use stdout".into(),
        ));
    }
    let timeout = config.connect.timeout()?;
    let origin = moq_tokio::origin::spawn();
    let (client, url) = config.connect.client()?;
    let dialing = client.with_subscriber(origin.clone()).connect(url.clone());
    let connection = net::established(dialing, &url, timeout).await?;

    let (video, audio) =
        tokio::time::timeout(timeout, subscribe::open(&origin, &config.name, true))
            .await
            .map_err(|_| Error::Broadcast {
                name: config.name.clone(),
                why: format!("not found at {} within {timeout:?}", net::redacted(&url)),
            })??;
    tracing::info!(
        name = config.name,
        track = video.track,
        codec = video.codec,
        audio = audio.as_ref().map(|a| a.track.as_str()),
        "playing"
    );

    let handle = tokio::runtime::Handle::current();
    let mut stats = stats::Stats::default();
    let stop = Arc::new(AtomicBool::new(false));
    let audio = match audio {
        Some(audio) => {
            let out = audio::AudioOut::open(config.audio_out.as_deref(), audio.channels as u16)?;
            let shared = Arc::new(Mutex::new(stats::AudioStats::default()));
            stats.audio = Some(shared.clone());
            let (handle, stop) = (handle.clone(), stop.clone());
            Some(tokio::task::spawn_blocking(move || {
                audio::play(handle, audio, out, shared, stop, timeout)
            }))
        }
        None => {
            if config.audio_out.is_some() {
                tracing::warn!("the broadcast has no Opus audio: --audio-out stays empty");
            }
            None
        }
    };
    let stats_on = config.stats;
    let (played, stats) = tokio::task::spawn_blocking(move || {
        let played = play(handle, video, &config, timeout, &mut stats);
        (played, stats)
    })
    .await
    .map_err(|e| Error::Decoder(format!("player thread: {e}")))?;
    stop.store(true, Ordering::Relaxed);
    let audio = match audio {
        Some(audio) => Some(
            audio
                .await
                .map_err(|e| Error::Decoder(format!("audio thread: {e}")))?,
        ),
        None => None,
    };
    // The totals are printed however playing ended: a stalled or failed stream still
    // reports what it delivered.
    if stats_on {
        eprintln!("{}", stats.total());
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), connection.close()).await;
    played?;
    audio.transpose()?;
    Ok(stats.summary)
}

/// Read, decode and output frames on this (blocking) thread. Reading only as fast as the
/// decoder and the output keep up is what lets the track consumer skip stale groups.
fn play(
    handle: tokio::runtime::Handle,
    mut video: Video,
    config: &Config,
    timeout: Duration,
    stats: &mut stats::Stats,
) -> Result<(), Error> {
    let mut decoder = decode::Decoder::new(video.description.as_deref())?;
    let mut output = output::Output::open(config.output.as_deref(), video.framerate)?;
    let mut log = stats::LatencyLog::create(config.latency_log.as_deref())?;
    let mut keyframe_seen = false;
    let mut joining = config.join == Join::Next;
    let mut decode_errors = 0u64;
    loop {
        let frame = match handle.block_on(tokio::time::timeout(timeout, video.consumer.read())) {
            Err(_) => return Err(stalled(&config.name, timeout)),
            Ok(Err(e)) => {
                return Err(Error::Broadcast {
                    name: config.name.clone(),
                    why: format!("track failed: {e}"),
                });
            }
            Ok(Ok(None)) => break,
            Ok(Ok(Some(frame))) => frame,
        };
        if joining && frame.keyframe {
            joining = false;
            // The relay serves the newest group from its keyframe. If the next frame is
            // already waiting, that group began in the past: skip it and start live at the
            // next keyframe. (A group that is just starting has no second frame yet.)
            let peek = handle.block_on(tokio::time::timeout(JOIN_PEEK, video.consumer.read()));
            if let Ok(Ok(Some(_))) = peek {
                tracing::info!("joined mid-group: waiting for the next keyframe");
                continue;
            }
        }
        let arrived = clock::now_unix_us();
        let captured = video.wall_clock(frame.timestamp);
        stats.received(frame.payload.len(), captured, arrived);
        // Start (and restart after damage) on a keyframe: never show a corrupt picture.
        keyframe_seen |= frame.keyframe;
        if !keyframe_seen {
            continue;
        }
        let started = Instant::now();
        let decoded = decoder.decode(&frame.payload, |picture| {
            // Decode time ends here; writing to the output is not part of it.
            let decode_us = started.elapsed().as_micros() as u64;
            let (luma, stride) = picture.luma();
            let stamp = Stamp::read_luma(luma, stride, picture.width(), picture.height());
            if config.av_sync
                && let Some(due) = captured.and_then(|c| stats.lip_sync_due(c))
            {
                let hold = Duration::from_micros(due.saturating_sub(clock::now_unix_us()));
                std::thread::sleep(hold.min(MAX_LIP_SYNC_HOLD));
            }
            output.write(&picture)?;
            let shown = clock::now_unix_us();
            stats.shown(stamp, decode_us, shown);
            let flash = sync::flash_visible(luma, stride, picture.width(), picture.height());
            stats.flash(flash, shown);
            match stamp {
                Some(stamp) => log.record(stamp, shown),
                None => Ok(()),
            }
        });
        match decoded {
            Ok(()) => {}
            Err(Error::Output(why)) if why == output::CLOSED => break,
            Err(err @ Error::Output(_)) => return Err(err),
            Err(err) => {
                decode_errors += 1;
                keyframe_seen = false;
                tracing::warn!(%err, decode_errors, "skipping to the next keyframe");
            }
        }
        if config.stats
            && let Some(line) = stats.tick()
        {
            eprintln!("{line}");
        }
        if config.frames.is_some_and(|n| stats.summary.frames >= n) {
            break;
        }
    }
    log.finish()
}

/// How long a frame after the joining keyframe may take to arrive and still be live rather
/// than queued: well under one frame interval at 240 fps.
const JOIN_PEEK: Duration = Duration::from_millis(2);

fn stalled(name: &str, timeout: Duration) -> Error {
    Error::Broadcast {
        name: name.to_string(),
        why: format!("no video frame for {timeout:?} (publisher gone?)"),
    }
}

/// µs since the UNIX epoch of a wall-clock time.
fn unix_us(time: std::time::SystemTime) -> Option<u64> {
    time.duration_since(UNIX_EPOCH)
        .ok()
        .map(|d| d.as_micros() as u64)
}
