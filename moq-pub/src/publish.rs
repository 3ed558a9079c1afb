//! The hang broadcast: `catalog.json`, one video track (H.264 as avc3, Annex-B with in-band
//! parameter sets; or AV1 as av01, OBUs with the sequence header on keyframes; the legacy
//! container) with one group per GOP, and optionally one Opus audio track with one group per packet. Every
//! frame's PTS is on the broadcast clock that the catalog maps to wall time, so PTS is the
//! capture time for any hang subscriber, and audio and video share it.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::Error;
use crate::encode::{Codec, VideoSettings};
use crate::source::Format;

/// The tracks' names in the catalog.
pub const VIDEO_TRACK: &str = "video";
pub const AUDIO_TRACK: &str = "audio";

/// How far before the broadcast starts its PTS zero lies, so the first frames (captured just
/// before the broadcast was built) still have a positive PTS.
const CLOCK_LEAD: Duration = Duration::from_secs(10);

pub struct Broadcast {
    broadcast: moq_net::broadcast::Producer,
    catalog: moq_mux::catalog::Producer,
}

/// The video track, written by the video pipeline's thread.
pub struct VideoTrack {
    track: moq_mux::import::Track,
    clock: PtsClock,
}

/// The audio track, written by the audio thread.
pub struct AudioTrack {
    track: moq_mux::import::Track,
    clock: PtsClock,
}

/// Maps capture time (UNIX µs) to the broadcast's PTS.
#[derive(Clone, Copy)]
struct PtsClock {
    /// Wall time of PTS zero, µs since the UNIX epoch.
    epoch_unix_us: u64,
}

impl PtsClock {
    /// µs since PTS zero.
    fn micros(&self, unix_us: u64) -> u64 {
        unix_us.saturating_sub(self.epoch_unix_us)
    }

    fn pts(&self, unix_us: u64) -> Result<moq_net::Timestamp, Error> {
        moq_net::Timestamp::from_micros(self.micros(unix_us))
            .map_err(|e| Error::publish("timestamp", e))
    }
}

impl Broadcast {
    /// Create the broadcast `name` in `origin` with its catalog, its video track and, given an
    /// OpusHead, its audio track, and announce it.
    pub fn new(
        origin: &moq_net::origin::Producer,
        name: &str,
        format: Format,
        settings: &VideoSettings,
        opus_head: Option<Vec<u8>>,
    ) -> Result<(Self, VideoTrack, Option<AudioTrack>), Error> {
        let (now, wall) = (Instant::now(), SystemTime::now());
        let (epoch, epoch_wall) = (now - CLOCK_LEAD, wall - CLOCK_LEAD);
        let epoch_unix_us = epoch_wall
            .duration_since(UNIX_EPOCH)
            .map_err(|e| Error::publish("the system clock is before 1970", e))?
            .as_micros() as u64;
        let clock = moq_mux::Clock::at(epoch, epoch_wall)
            .map_err(|e| Error::publish("broadcast clock", e))?;

        let mut broadcast = origin
            .create_broadcast(name)
            .map_err(|e| Error::publish(format!("broadcast name {name:?}"), e))?;
        let catalog = moq_mux::catalog::Producer::new(
            &mut broadcast,
            moq_mux::catalog::Config::default().with_clock(clock),
        )
        .map_err(|e| Error::publish("catalog", e))?;

        let video_format = match settings.codec() {
            Codec::H264 => moq_mux::import::VideoFormat::Avc3,
            Codec::Av1 => moq_mux::import::VideoFormat::Av01,
        };
        let mut init = moq_mux::import::VideoInit::new(video_format, bytes::Bytes::new());
        init.hint.coded_width = Some(format.width);
        init.hint.coded_height = Some(format.height);
        init.hint.framerate = Some(format.fps);
        init.hint.bitrate = Some(u64::from(settings.bitrate_kbps) * 1000);
        init.hint.optimize_for_latency = Some(true);
        let request = broadcast
            .reserve_track(VIDEO_TRACK)
            .map_err(|e| Error::publish("video track", e))?;
        let clock = PtsClock { epoch_unix_us };
        let video = VideoTrack {
            track: moq_mux::import::Track::video(request, catalog.reserve(), init)
                .map_err(|e| Error::publish("video track", e))?,
            clock,
        };
        let audio = match opus_head {
            None => None,
            Some(head) => {
                let request = broadcast
                    .reserve_track(AUDIO_TRACK)
                    .map_err(|e| Error::publish("audio track", e))?;
                let init =
                    moq_mux::import::AudioInit::new(moq_mux::import::AudioFormat::Opus, head);
                Some(AudioTrack {
                    track: moq_mux::import::Track::audio(request, catalog.reserve(), init)
                        .map_err(|e| Error::publish("audio track", e))?,
                    clock,
                })
            }
        };

        broadcast
            .announce(Default::default())
            .map_err(|e| Error::publish("announce", e))?;
        Ok((Self { broadcast, catalog }, video, audio))
    }

    /// End the catalog and the broadcast (after the tracks), so subscribers see the end
    /// rather than an error.
    pub fn finish(&mut self) -> Result<(), Error> {
        self.catalog
            .finish()
            .map_err(|e| Error::publish("finish catalog", e))?;
        self.broadcast.close();
        Ok(())
    }
}

impl VideoTrack {
    /// The timestamp a frame captured at `unix_us` has on this track, µs (as viewers see it).
    pub fn timestamp_us(&self, unix_us: u64) -> u64 {
        self.clock.micros(unix_us)
    }

    /// Publish one encoded access unit captured at `pts_us`. A keyframe starts a new group.
    pub fn write(&mut self, data: &[u8], pts_us: u64) -> Result<(), Error> {
        let pts = self.clock.pts(pts_us)?;
        self.track
            .decode(bytes::Bytes::copy_from_slice(data), Some(pts))
            .map_err(|e| Error::publish("video frame", e))?;
        // The encoder handed this frame over just now: that feeds the catalog's jitter estimate.
        self.track
            .flush(pts, Instant::now())
            .map_err(|e| Error::publish("video flush", e))
    }

    pub fn finish(&mut self) -> Result<(), Error> {
        self.track
            .finish()
            .map_err(|e| Error::publish("finish video", e))
    }
}

impl AudioTrack {
    /// Publish one Opus packet captured at `pts_us` (UNIX µs of its first sample), lasting
    /// `duration_us`, as a group of its own: a late joiner starts at the next packet, and a
    /// lost packet never holds back the ones after it.
    pub fn write(&mut self, packet: &[u8], pts_us: u64, duration_us: u64) -> Result<(), Error> {
        let pts = self.clock.pts(pts_us)?;
        self.track
            .decode(bytes::Bytes::copy_from_slice(packet), Some(pts))
            .map_err(|e| Error::publish("audio frame", e))?;
        self.track
            .cut(Some(self.clock.pts(pts_us + duration_us)?))
            .map_err(|e| Error::publish("audio group", e))
    }

    pub fn finish(&mut self) -> Result<(), Error> {
        self.track
            .finish()
            .map_err(|e| Error::publish("finish audio", e))
    }
}
