//! moq-pub: capture or generate frames, encode them to H.264 and publish them as a hang
//! broadcast over MoQ, to a relay or straight to subscribers (`--listen`).
//!
//! The binary is a thin wrapper: it parses flags into a [`Config`] and calls [`run`].

pub mod audio;
pub mod cli;
pub mod encode;
mod error;
pub mod net;
pub mod pipeline;
pub mod publish;
pub mod source;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub use error::Error;

use source::{Format, SourceSpec};

/// Where the broadcast goes.
#[derive(Clone, Debug)]
pub enum Target {
    /// Publish to a relay.
    Relay(net::ConnectArgs),
    /// Serve subscribers directly.
    Listen(SocketAddr),
}

/// Everything a publishing run needs.
#[derive(Clone, Debug)]
pub struct Config {
    pub source: SourceSpec,
    /// Size and rate of the test source (a y4m stream brings its own).
    pub format: Format,
    /// Encoder settings; unset bitrate and GOP follow the source's format.
    pub h264: encode::H264Args,
    pub name: String,
    pub target: Target,
    /// Stop after this many frames.
    pub frames: Option<u64>,
    /// Print a JSON stats line every second.
    pub stats: bool,
    pub audio: audio::AudioSpec,
    pub audio_settings: audio::AudioSettings,
}

/// How long an audio source may take to deliver its first sound.
const AUDIO_START_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Publish until the source ends, `frames` are sent, or Ctrl-C.
pub async fn run(config: Config) -> Result<pipeline::Summary, Error> {
    if config.name.is_empty() {
        return Err(Error::Config("--name must not be empty".into()));
    }
    // The test sources' beep and flash are scheduled from this one instant.
    let epoch = source::SyncEpoch::now();
    let spec = config.source.clone();
    let source = tokio::task::spawn_blocking(move || spec.open(config.format, epoch))
        .await
        .map_err(|e| Error::Source(e.to_string()))??;
    let (spec, audio_settings) = (config.audio.clone(), config.audio_settings);
    let audio_source =
        tokio::task::spawn_blocking(move || spec.open(audio_settings, epoch, AUDIO_START_TIMEOUT))
            .await
            .map_err(|e| Error::Source(e.to_string()))??;
    let audio_encoder = match &audio_source {
        Some(_) => Some(audio::OpusEncoder::new(audio_settings)?),
        None => None,
    };
    let format = source.format();
    let settings = config.h264.settings(format);

    let origin = moq_tokio::origin::spawn();
    let (mut broadcast, video, audio_track) = publish::Broadcast::new(
        &origin,
        &config.name,
        format,
        settings.bitrate_kbps,
        audio_encoder.as_ref().map(audio::OpusEncoder::head),
    )?;

    let mut connection = None;
    let mut server = None;
    match &config.target {
        Target::Relay(args) => {
            let (client, url) = args.client()?;
            let dialing = client.with_publisher(origin.consume()).connect(url.clone());
            connection = Some(net::established(dialing, &url, args.timeout()?).await?);
        }
        Target::Listen(addr) => {
            let listener = net::Listener::bind(*addr).await?;
            eprintln!(
                "moq-pub: serving {:?} on {} — subscribe with --url http://{}/ --name {} (fingerprint {})",
                config.name,
                listener.local_addr(),
                listener.local_addr(),
                config.name,
                listener.fingerprint()
            );
            server = Some(tokio::spawn(listener.serve(origin.consume())));
        }
    }
    tracing::info!(
        name = config.name,
        width = format.width,
        height = format.height,
        fps = format.fps,
        kbps = settings.bitrate_kbps,
        gop = settings.gop,
        "publishing"
    );

    let stop = Arc::new(AtomicBool::new(false));
    let audio = match (audio_source, audio_encoder, audio_track) {
        (Some(source), Some(encoder), Some(track)) => {
            let stop = stop.clone();
            Some(tokio::task::spawn_blocking(move || {
                let result = audio::run(source, encoder, track, stop.clone());
                // Never stream on silently without the sound that was asked for.
                stop.store(true, Ordering::Relaxed);
                result
            }))
        }
        _ => None,
    };
    let (frames, stats) = (config.frames, config.stats);
    let pipeline = {
        let stop = stop.clone();
        tokio::task::spawn_blocking(move || {
            pipeline::run(source, &settings, video, frames, stop, stats)
        })
    };
    tokio::pin!(pipeline);
    let video = loop {
        tokio::select! {
            done = &mut pipeline => break done.map_err(|e| Error::Source(e.to_string()))?,
            _ = tokio::signal::ctrl_c() => {
                tracing::info!("interrupted, finishing the broadcast");
                stop.store(true, Ordering::Relaxed);
            }
            Some(res) = async { Some(server.as_mut()?.await) } => {
                return Err(match res {
                    Ok(Err(e)) => e,
                    Ok(Ok(())) => Error::Listen("the listener stopped".into()),
                    Err(e) => Error::Listen(e.to_string()),
                });
            }
        }
    };
    // The video has ended: end the audio, then the broadcast, and report the first error.
    stop.store(true, Ordering::Relaxed);
    let audio = match audio {
        Some(audio) => Some(audio.await.map_err(|e| Error::Source(e.to_string()))?),
        None => None,
    };
    let finished = broadcast.finish();
    let summary = video?;
    let audio = audio.transpose()?;
    finished?;
    if let Some(audio) = audio {
        tracing::info!(?audio, "audio done");
        if config.stats {
            eprintln!("{}", audio.stats_line(audio_settings));
        }
    }
    if let Some(connection) = connection {
        // Deliver what is still queued before closing, but never wait long for a dead peer.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), connection.close()).await;
    }
    tracing::info!(?summary, "done");
    Ok(summary)
}
