//! Finding the media in a broadcast: read the hang catalog, pick the H.264 rendition (and
//! the Opus one, if any) and subscribe to their tracks, starting at the newest group (which,
//! for video, opens with a keyframe).

use std::time::Duration;

use hang::catalog::{AudioCodec, Catalog};
use lantern_proto::audio::OpusHead;

use crate::Error;
use crate::feed::Feed;

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

impl From<Join> for lantern_proto::timing::JoinPolicy {
    fn from(join: Join) -> Self {
        match join {
            Join::Next => Self::Next,
            Join::Current => Self::Current,
        }
    }
}

/// The renditions moq-sub plays from a catalog: its H.264 or AV1 video, and its Opus audio if
/// any.
#[derive(Debug)]
pub struct Choice<'a> {
    pub video: (&'a str, &'a hang::catalog::VideoConfig),
    pub audio: Option<(&'a str, &'a hang::catalog::AudioConfig, OpusHead)>,
}

/// Pick what to play from a catalog: the first H.264 or AV1 rendition (an error naming the
/// codecs there are when there is none), and the first Opus one whose OpusHead (when given)
/// parses.
pub fn choose(catalog: &Catalog) -> Result<Choice<'_>, Error> {
    let video = catalog
        .video
        .renditions
        .iter()
        .find(|(_, c)| crate::decode::Codec::of(&c.codec).is_some())
        .map(|(name, config)| (name.as_str(), config))
        .ok_or_else(|| {
            let codecs: Vec<_> = catalog
                .video
                .renditions
                .values()
                .map(|c| c.codec.to_string())
                .collect();
            Error::UnsupportedCodec(codecs.join(", "))
        })?;
    let audio = catalog
        .audio
        .renditions
        .iter()
        .filter(|(_, c)| matches!(c.codec, AudioCodec::Opus))
        .find_map(|(name, config)| {
            let head = match config.description.as_deref() {
                // No OpusHead: what moq-mux assumes, mono or stereo with no codec delay.
                None => OpusHead {
                    channels: u8::try_from(config.channel_count).ok()?,
                    pre_skip: 0,
                    input_rate: config.sample_rate,
                },
                Some(head) => match OpusHead::parse(head) {
                    Ok(head) => head,
                    Err(err) => {
                        tracing::warn!(%err, rendition = name, "skipping an Opus rendition");
                        return None;
                    }
                },
            };
            Some((name.as_str(), config, head))
        });
    Ok(Choice { video, audio })
}

/// A subscribed video track and what the catalog says about it.
pub struct Video {
    pub track: String,
    /// The catalog's codec string, and the decoder it takes.
    pub codec: String,
    pub decoder: crate::decode::Codec,
    /// The avcC, for `avc1` renditions.
    pub description: Option<Vec<u8>>,
    pub framerate: Option<f64>,
    /// The picture size the catalog declares, when it does.
    pub coded: Option<(u32, u32)>,
    pub feed: Feed,
}

/// A subscribed Opus audio track and what the catalog says about it.
pub struct Audio {
    pub track: String,
    pub channels: u32,
    pub sample_rate: u32,
    /// The codec's delay (OpusHead pre-skip, at 48 kHz): sound comes out of the decoder
    /// this much after its timestamp.
    pub pre_skip: u16,
    pub feed: Feed,
}

type Container = moq_mux::catalog::hang::Container;

/// Subscribe to `track`, skipping to the newest group whenever one exists (no lag budget).
async fn subscribe(
    broadcast: &moq_net::broadcast::Consumer,
    track: &str,
    container: Container,
    priority: u8,
) -> Result<moq_mux::container::Consumer<Container>, moq_net::Error> {
    let subscription = moq_net::track::Subscription::default()
        .with_priority(priority)
        .with_max_age(Duration::ZERO);
    let subscriber = broadcast.track(track)?.subscribe(subscription).await?;
    Ok(moq_mux::container::Consumer::new(subscriber, container))
}

impl Video {
    /// Wait for the catalog of broadcast `name` and subscribe to its H.264 video.
    pub async fn open(origin: &moq_net::origin::Producer, name: &str) -> Result<Self, Error> {
        Ok(open(origin, name, false).await?.0)
    }
}

/// Where a player finds its track again when the path, the relay or the publisher went away:
/// the origin that the connection fills again once it has redialed, and the broadcast's name.
#[derive(Clone)]
pub(crate) struct Resubscribe {
    origin: moq_net::origin::Producer,
    name: String,
    /// How long to keep trying (None: for as long as it takes).
    give_up: Option<Duration>,
}

/// How soon a broadcast that is not back yet is looked for again.
const RESUBSCRIBE_EVERY: Duration = Duration::from_millis(200);
/// How long one look may take: a route left over from the dropped session can hang.
const RESUBSCRIBE_ATTEMPT: Duration = Duration::from_secs(3);

impl Resubscribe {
    pub(crate) fn new(
        origin: moq_net::origin::Producer,
        name: &str,
        give_up: Option<Duration>,
    ) -> Self {
        Self {
            origin,
            name: name.to_string(),
            give_up,
        }
    }

    /// The broadcast's video once it is back (see [`Self::retry`]).
    pub(crate) async fn video(&self) -> Result<Video, Error> {
        self.retry(|| async {
            let (broadcast, snapshot) = catalog(&self.origin, &self.name).await?;
            video(&broadcast, &snapshot, &self.name).await
        })
        .await
    }

    /// The broadcast's video and audio, as [`open`] gives them, once it is there (see
    /// [`Self::retry`]).
    pub(crate) async fn both(&self) -> Result<(Video, Option<Audio>), Error> {
        self.retry(|| open(&self.origin, &self.name, true)).await
    }

    /// The broadcast's Opus audio once it is back, None if it came back without any (see
    /// [`Self::retry`]). Only the audio track is subscribed to.
    pub(crate) async fn audio(&self) -> Result<Option<Audio>, Error> {
        self.retry(|| async {
            let (broadcast, snapshot) = catalog(&self.origin, &self.name).await?;
            audio(&broadcast, &snapshot, &self.name).await
        })
        .await
    }

    /// Try `attempt` until it succeeds: an error when the broadcast is not back within the
    /// give-up time, or at once for what waiting cannot fix (a codec moq-sub does not play).
    async fn retry<T, F, A>(&self, attempt: F) -> Result<T, Error>
    where
        F: Fn() -> A,
        A: std::future::Future<Output = Result<T, Error>>,
    {
        let attempts = async {
            loop {
                match tokio::time::timeout(RESUBSCRIBE_ATTEMPT, attempt()).await {
                    Ok(Ok(opened)) => return Ok(opened),
                    Ok(Err(err @ Error::Broadcast { .. })) => {
                        tracing::debug!(%err, "the broadcast is not back yet");
                    }
                    Ok(Err(err)) => return Err(err),
                    Err(_) => tracing::debug!("the broadcast is not back yet"),
                }
                tokio::time::sleep(RESUBSCRIBE_EVERY).await;
            }
        };
        match self.give_up {
            None => attempts.await,
            Some(limit) => tokio::time::timeout(limit, attempts)
                .await
                .unwrap_or_else(|_| {
                    let why = format!("not back within {limit:?} (see --give-up)");
                    Err(Error::broadcast(&self.name, why, None))
                }),
        }
    }
}

/// Wait for the catalog of broadcast `name` and subscribe to its H.264 video and, when
/// `with_audio`, to its Opus audio if it has any.
pub async fn open(
    origin: &moq_net::origin::Producer,
    name: &str,
    with_audio: bool,
) -> Result<(Video, Option<Audio>), Error> {
    let (broadcast, snapshot) = catalog(origin, name).await?;
    let video = video(&broadcast, &snapshot, name).await?;
    let audio = match with_audio {
        true => audio(&broadcast, &snapshot, name).await?,
        false => None,
    };
    Ok((video, audio))
}

fn failed(name: &str, why: &str, cause: impl Into<crate::error::Cause>) -> Error {
    Error::broadcast(name, why, Some(cause.into()))
}

/// Broadcast `name` once announced (the caller bounds the wait, so a subscriber may start
/// first) and its first catalog that lists video (a publisher may list its video only once
/// the first keyframe resolved the codec).
async fn catalog(
    origin: &moq_net::origin::Producer,
    name: &str,
) -> Result<(moq_net::broadcast::Consumer, Catalog), Error> {
    let broadcast = origin
        .consume()
        .routed_broadcast(name)
        .await
        .map_err(|e| failed(name, "not available", e))?;
    let mut catalog = lantern_net::catalog::CatalogReader::subscribe(&broadcast)
        .await
        .map_err(|e| failed(name, "no catalog", e))?;
    loop {
        match catalog
            .next()
            .await
            .map_err(|e| failed(name, "bad catalog", e))?
        {
            Some(snapshot) if !snapshot.video.renditions.is_empty() => {
                return Ok((broadcast, snapshot));
            }
            Some(_) => continue,
            None => {
                return Err(Error::broadcast(
                    name,
                    "the catalog ended without any video",
                    None,
                ));
            }
        }
    }
}

/// Subscribe to the H.264 video a catalog lists.
async fn video(
    broadcast: &moq_net::broadcast::Consumer,
    snapshot: &Catalog,
    name: &str,
) -> Result<Video, Error> {
    let (track, config) = choose(snapshot)?.video;
    let decoder = crate::decode::Codec::of(&config.codec)
        .ok_or_else(|| Error::UnsupportedCodec(config.codec.to_string()))?;
    let container = Container::try_from(config).map_err(|e| failed(name, "video rendition", e))?;
    let consumer = subscribe(broadcast, track, container, hang::catalog::PRIORITY.video)
        .await
        .map_err(|e| failed(name, "video track", e))?;
    Ok(Video {
        track: track.to_string(),
        codec: config.codec.to_string(),
        decoder,
        description: config.description.as_ref().map(|d| d.to_vec()),
        framerate: config.framerate,
        coded: config.coded_width.zip(config.coded_height),
        feed: Feed::Moq {
            consumer: Box::new(consumer),
            clock: snapshot.clock,
        },
    })
}

/// Subscribe to the Opus audio a catalog lists, if any.
async fn audio(
    broadcast: &moq_net::broadcast::Consumer,
    snapshot: &Catalog,
    name: &str,
) -> Result<Option<Audio>, Error> {
    let Some((track, config, head)) = choose(snapshot)?.audio else {
        if !snapshot.audio.renditions.is_empty() {
            tracing::warn!("the broadcast's audio is not Opus: playing video only");
        }
        return Ok(None);
    };
    let container = Container::try_from(config).map_err(|e| failed(name, "audio rendition", e))?;
    let consumer = subscribe(broadcast, track, container, hang::catalog::PRIORITY.audio)
        .await
        .map_err(|e| failed(name, "audio track", e))?;
    Ok(Some(Audio {
        track: track.to_string(),
        channels: head.channels as u32,
        sample_rate: config.sample_rate,
        pre_skip: head.pre_skip,
        feed: Feed::Moq {
            consumer: Box::new(consumer),
            clock: snapshot.clock,
        },
    }))
}
