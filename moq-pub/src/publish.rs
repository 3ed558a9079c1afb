//! The hang broadcast: `catalog.json` plus one H.264 (avc3, legacy container) video track,
//! one group per GOP, with every frame's PTS on the broadcast clock that the catalog maps to
//! wall time, so PTS is the capture time for any hang subscriber.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::Error;
use crate::encode::Packet;
use crate::source::Format;

/// The video track's name in the catalog.
pub const VIDEO_TRACK: &str = "video";

/// How far before the broadcast starts its PTS zero lies, so the first frames (captured just
/// before the broadcast was built) still have a positive PTS.
const CLOCK_LEAD: Duration = Duration::from_secs(10);

pub struct Broadcast {
    broadcast: moq_net::broadcast::Producer,
    catalog: moq_mux::catalog::Producer,
    video: moq_mux::import::Track,
    /// Wall time of PTS zero, µs since the UNIX epoch.
    epoch_unix_us: u64,
}

impl Broadcast {
    /// Create the broadcast `name` in `origin` with its catalog and video track, and announce it.
    pub fn new(
        origin: &moq_net::origin::Producer,
        name: &str,
        format: Format,
        bitrate_kbps: u32,
    ) -> Result<Self, Error> {
        let moq = |what: &str, e: &dyn std::fmt::Display| Error::Publish(format!("{what}: {e}"));
        let (now, wall) = (Instant::now(), SystemTime::now());
        let (epoch, epoch_wall) = (now - CLOCK_LEAD, wall - CLOCK_LEAD);
        let epoch_unix_us = epoch_wall
            .duration_since(UNIX_EPOCH)
            .map_err(|_| Error::Publish("the system clock is before 1970".into()))?
            .as_micros() as u64;
        let clock =
            moq_mux::Clock::at(epoch, epoch_wall).map_err(|e| moq("broadcast clock", &e))?;

        let mut broadcast = origin
            .create_broadcast(name)
            .map_err(|e| moq(&format!("broadcast name {name:?}"), &e))?;
        let catalog = moq_mux::catalog::Producer::new(
            &mut broadcast,
            moq_mux::catalog::Config::default().with_clock(clock),
        )
        .map_err(|e| moq("catalog", &e))?;

        let mut init = moq_mux::import::VideoInit::new(
            moq_mux::import::VideoFormat::Avc3,
            bytes::Bytes::new(),
        );
        init.hint.coded_width = Some(format.width);
        init.hint.coded_height = Some(format.height);
        init.hint.framerate = Some(format.fps);
        init.hint.bitrate = Some(bitrate_kbps as u64 * 1000);
        init.hint.optimize_for_latency = Some(true);
        let request = broadcast
            .reserve_track(VIDEO_TRACK)
            .map_err(|e| moq("video track", &e))?;
        let video = moq_mux::import::Track::video(request, catalog.reserve(), init)
            .map_err(|e| moq("video track", &e))?;

        broadcast
            .announce(Default::default())
            .map_err(|e| moq("announce", &e))?;
        Ok(Self {
            broadcast,
            catalog,
            video,
            epoch_unix_us,
        })
    }

    /// Publish one encoded access unit. A keyframe starts a new group.
    pub fn write_video(&mut self, packet: &Packet) -> Result<(), Error> {
        let pts = moq_net::Timestamp::from_micros(packet.pts_us.saturating_sub(self.epoch_unix_us))
            .map_err(|e| Error::Publish(format!("timestamp: {e}")))?;
        self.video
            .decode(bytes::Bytes::copy_from_slice(packet.data), Some(pts))
            .map_err(|e| Error::Publish(format!("video frame: {e}")))?;
        // The encoder handed this frame over just now: that feeds the catalog's jitter estimate.
        self.video
            .flush(pts, Instant::now())
            .map_err(|e| Error::Publish(format!("video flush: {e}")))
    }

    /// End the tracks cleanly, so subscribers see the end rather than an error.
    pub fn finish(&mut self) -> Result<(), Error> {
        self.video
            .finish()
            .map_err(|e| Error::Publish(format!("finish video: {e}")))?;
        self.catalog
            .finish()
            .map_err(|e| Error::Publish(format!("finish catalog: {e}")))?;
        self.broadcast.close();
        Ok(())
    }
}
