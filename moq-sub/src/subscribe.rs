//! Finding the media in a broadcast: read the hang catalog, pick the H.264 rendition (and
//! the Opus one, if any) and subscribe to their tracks, starting at the newest group (which,
//! for video, opens with a keyframe).

use std::time::Duration;

use moq_mux::catalog::Stream as _;

use crate::Error;

/// Where a subscriber joining mid-stream starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Join {
    /// At the next keyframe: the first picture is live, after waiting up to one GOP.
    #[default]
    Next,
    /// At the current group's keyframe: a picture at once, but the group's older frames
    /// are played first, late, until the subscriber catches up.
    Current,
}

/// A subscribed video track and what the catalog says about it.
pub struct Video {
    pub track: String,
    pub codec: String,
    /// The avcC, for `avc1` renditions.
    pub description: Option<Vec<u8>>,
    pub framerate: Option<f64>,
    /// Maps PTS to wall time, when the publisher advertises its clock.
    pub clock: Option<hang::catalog::Clock>,
    pub consumer: moq_mux::container::Consumer<moq_mux::catalog::hang::Container>,
}

/// A subscribed Opus audio track and what the catalog says about it.
pub struct Audio {
    pub track: String,
    pub channels: u32,
    pub sample_rate: u32,
    /// The codec's delay (OpusHead pre-skip, at 48 kHz): sound comes out of the decoder
    /// this much after its timestamp.
    pub pre_skip: u16,
    pub clock: Option<hang::catalog::Clock>,
    pub consumer: moq_mux::container::Consumer<moq_mux::catalog::hang::Container>,
}

type Container = moq_mux::catalog::hang::Container;

/// Subscribe to `track`, skipping to the newest group whenever one exists (no lag budget).
async fn subscribe(
    broadcast: &moq_net::broadcast::Consumer,
    track: &str,
    container: Container,
    priority: u8,
) -> Result<moq_mux::container::Consumer<Container>, String> {
    let subscription = moq_net::track::Subscription::default()
        .with_priority(priority)
        .with_max_age(Duration::ZERO);
    let consumer = broadcast
        .track(track)
        .map_err(|e| format!("track {track}: {e}"))?;
    let subscriber = consumer
        .subscribe(subscription)
        .await
        .map_err(|e| format!("subscribe {track}: {e}"))?;
    Ok(moq_mux::container::Consumer::new(subscriber, container))
}

impl Video {
    /// Wait for the catalog of broadcast `name` and subscribe to its H.264 video.
    pub async fn open(origin: &moq_net::origin::Producer, name: &str) -> Result<Self, Error> {
        Ok(open(origin, name, false).await?.0)
    }
    /// The capture time (µs since the UNIX epoch) of a frame's PTS, per the catalog clock.
    pub fn wall_clock(&self, pts: moq_net::Timestamp) -> Option<u64> {
        wall_clock(self.clock.as_ref(), pts)
    }
}

/// Wait for the catalog of broadcast `name` and subscribe to its H.264 video and, when
/// `with_audio`, to its Opus audio if it has any.
pub async fn open(
    origin: &moq_net::origin::Producer,
    name: &str,
    with_audio: bool,
) -> Result<(Video, Option<Audio>), Error> {
    let err = |why: String| Error::Broadcast {
        name: name.to_string(),
        why,
    };
    // Waits for the announcement (the caller bounds the wait), so a subscriber may start first.
    let broadcast = origin
        .consume()
        .routed_broadcast(name)
        .await
        .map_err(|e| err(format!("not available: {e}")))?;
    let mut catalog =
        moq_mux::catalog::Consumer::<()>::new(&broadcast, moq_mux::catalog::CatalogFormat::Hang)
            .await
            .map_err(|e| err(format!("no catalog: {e}")))?;
    // A publisher may list its video only once the first keyframe resolved the codec.
    let snapshot = loop {
        match catalog
            .next()
            .await
            .map_err(|e| err(format!("bad catalog: {e}")))?
        {
            Some(snapshot) if !snapshot.video.renditions.is_empty() => break snapshot,
            Some(_) => continue,
            None => return Err(err("the catalog ended without any video".into())),
        }
    };
    let (track, config) = snapshot
        .video
        .renditions
        .iter()
        .find(|(_, c)| matches!(c.codec, hang::catalog::VideoCodec::H264(_)))
        .ok_or_else(|| {
            let codecs: Vec<_> = snapshot
                .video
                .renditions
                .values()
                .map(|c| c.codec.to_string())
                .collect();
            Error::UnsupportedCodec(codecs.join(", "))
        })?;
    let container =
        Container::try_from(config).map_err(|e| err(format!("rendition {track}: {e}")))?;
    let video = Video {
        track: track.clone(),
        codec: config.codec.to_string(),
        description: config.description.as_ref().map(|d| d.to_vec()),
        framerate: config.framerate,
        clock: snapshot.clock,
        consumer: subscribe(&broadcast, track, container, hang::catalog::PRIORITY.video)
            .await
            .map_err(err)?,
    };

    let opus = snapshot
        .audio
        .renditions
        .iter()
        .find(|(_, c)| matches!(c.codec, hang::catalog::AudioCodec::Opus));
    let audio = match opus.filter(|_| with_audio) {
        None => {
            if with_audio && !snapshot.audio.renditions.is_empty() {
                tracing::warn!("the broadcast's audio is not Opus: playing video only");
            }
            None
        }
        Some((track, config)) => {
            let container =
                Container::try_from(config).map_err(|e| err(format!("rendition {track}: {e}")))?;
            // OpusHead (RFC 7845): pre-skip is bytes 10..12, little-endian.
            let pre_skip = config
                .description
                .as_ref()
                .and_then(|head| head.get(10..12))
                .map_or(0, |b| u16::from_le_bytes([b[0], b[1]]));
            Some(Audio {
                track: track.clone(),
                channels: config.channel_count,
                sample_rate: config.sample_rate,
                pre_skip,
                clock: snapshot.clock,
                consumer: subscribe(&broadcast, track, container, hang::catalog::PRIORITY.audio)
                    .await
                    .map_err(err)?,
            })
        }
    };
    Ok((video, audio))
}

/// The capture time (µs since the UNIX epoch) of a PTS, per the catalog clock.
fn wall_clock(clock: Option<&hang::catalog::Clock>, pts: moq_net::Timestamp) -> Option<u64> {
    crate::unix_us(clock?.wall_clock(pts).ok()?)
}

impl Audio {
    /// The capture time (µs since the UNIX epoch) of a packet's PTS.
    pub fn wall_clock(&self, pts: moq_net::Timestamp) -> Option<u64> {
        wall_clock(self.clock.as_ref(), pts)
    }
}
