//! Finding the video in a broadcast: read the hang catalog, pick the H.264 rendition and
//! subscribe to its track, starting at the newest group (which opens with a keyframe).

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

impl Video {
    /// Wait for the catalog of broadcast `name` and subscribe to its H.264 video.
    pub async fn open(origin: &moq_net::origin::Producer, name: &str) -> Result<Self, Error> {
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
        let mut catalog = moq_mux::catalog::Consumer::<()>::new(
            &broadcast,
            moq_mux::catalog::CatalogFormat::Hang,
        )
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
        let container = moq_mux::catalog::hang::Container::try_from(config)
            .map_err(|e| err(format!("rendition {track}: {e}")))?;
        let subscription = moq_net::track::Subscription::default()
            .with_priority(hang::catalog::PRIORITY.video)
            // No lag budget: whenever a newer group exists, skip to it.
            .with_max_age(Duration::ZERO);
        let consumer = broadcast
            .track(track)
            .map_err(|e| err(format!("track {track}: {e}")))?;
        let subscriber = consumer
            .subscribe(subscription)
            .await
            .map_err(|e| err(format!("subscribe {track}: {e}")))?;
        Ok(Self {
            track: track.clone(),
            codec: config.codec.to_string(),
            description: config.description.as_ref().map(|d| d.to_vec()),
            framerate: config.framerate,
            clock: snapshot.clock,
            consumer: moq_mux::container::Consumer::new(subscriber, container),
        })
    }

    /// The capture time (µs since the UNIX epoch) of a frame's PTS, per the catalog clock.
    pub fn wall_clock(&self, pts: moq_net::Timestamp) -> Option<u64> {
        crate::unix_us(self.clock.as_ref()?.wall_clock(pts).ok()?)
    }
}
