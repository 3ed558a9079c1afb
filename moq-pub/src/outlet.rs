//! Where each encoded frame goes: its MoQ track, its RTP stream, or both. One encode feeds
//! both transports.

use crate::Error;
use crate::rtp;

/// How far after the last frame one whose capture time is not after it is written. A track's
/// frames must stand at least a tick of its timescale apart for a reader that writes them into
/// MP4 (moq-mux's fMP4 export, and so every recording and `moq export`, uses the frame rate ×
/// 1000: 33 µs at 30 fps): 1 µs made that export fail at the frame, for good.
const STEP_US: u64 = 1_000;

/// One medium's destinations: `T` is its MoQ track.
pub(crate) struct Outlet<T> {
    pub moq: Option<T>,
    pub rtp: Option<rtp::Stream>,
    /// The capture time of the last frame written, UNIX µs.
    last_us: Option<u64>,
}

impl<T> Outlet<T> {
    pub fn new(moq: Option<T>, rtp: Option<rtp::Stream>) -> Self {
        Self {
            moq,
            rtp,
            last_us: None,
        }
    }

    /// The time the last frame was written at (its capture time, or just after the one
    /// before), UNIX µs.
    pub fn last_us(&self) -> Option<u64> {
        self.last_us
    }

    /// Hand one encoded frame, captured at `pts_us`, to MoQ (through `moq`, which writes it
    /// to the track at the time it is given) and to RTP. A frame whose capture time is not
    /// after the last one's is written [`STEP_US`] after it: neither transport takes time going back
    /// (moq-mux refuses such a keyframe, FFmpeg's RTP muxer such a frame), and a source whose
    /// clock steps back (a new picture presented before a still one's repeat was stamped, the
    /// wall clock set back) must not end a game.
    pub fn write(
        &mut self,
        data: &[u8],
        pts_us: u64,
        moq: impl FnOnce(&mut T, u64) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let pts_us = match self.last_us {
            Some(last) if pts_us <= last => {
                tracing::debug!(back_us = last - pts_us, "a capture time stepped back");
                last.saturating_add(STEP_US)
            }
            _ => pts_us,
        };
        self.last_us = Some(pts_us);
        if let Some(track) = &mut self.moq {
            moq(track, pts_us)?;
        }
        match &mut self.rtp {
            Some(rtp) => rtp.write(data, pts_us),
            None => Ok(()),
        }
    }

    /// End both (through `moq` for the track); the first failure is returned.
    pub fn finish(&mut self, moq: impl FnOnce(&mut T) -> Result<(), Error>) -> Result<(), Error> {
        let track = self.moq.as_mut().map_or(Ok(()), moq);
        let rtp = self.rtp.as_mut().map_or(Ok(()), rtp::Stream::finish);
        track.and(rtp)
    }
}

#[cfg(test)]
mod tests {
    use super::Outlet;
    use crate::encode::tests::{FORMAT, settings};
    use crate::encode::{Backend, Encoder};
    use crate::publish::{Broadcast, VideoTrack};
    use crate::source::Cube;

    /// The cube, encoded by x264 into broadcast `cube` of an origin through an outlet.
    struct Encoded {
        broadcast: Broadcast,
        outlet: Outlet<VideoTrack>,
        encoder: Encoder,
        cube: Cube,
        frame: ffmpeg_next::frame::Video,
        /// The times the frames were written at, in order.
        written: Vec<u64>,
    }

    impl Encoded {
        fn new(origin: &moq_net::origin::Producer) -> Self {
            let settings = settings(Backend::X264, 1000);
            let (broadcast, video, _) = Broadcast::new(origin, "cube", FORMAT, &settings, None)
                .expect("a broadcast in a local origin");
            Self {
                broadcast,
                outlet: Outlet::new(Some(video), None),
                encoder: Encoder::new(FORMAT, &settings).unwrap(),
                cube: Cube::new(FORMAT).unwrap(),
                frame: lantern_media::ffmpeg::i420_frame(FORMAT.width, FORMAT.height),
                written: Vec::new(),
            }
        }

        /// Picture `n`, captured at `captured_us`.
        fn frame(&mut self, n: usize, captured_us: u64, keyframe: bool) {
            let mut picture = lantern_media::ffmpeg::i420_mut(&mut self.frame).unwrap();
            self.cube.render(n as u32, &mut picture).unwrap();
            let (outlet, written) = (&mut self.outlet, &mut self.written);
            self.encoder
                .encode(&mut self.frame, captured_us, keyframe, |packet| {
                    outlet.write(packet.data, packet.pts_us, |track, pts_us| {
                        written.push(pts_us);
                        track.write(packet.data, pts_us)
                    })
                })
                .expect("every frame written");
        }

        /// End the track and the broadcast.
        fn finish(&mut self) {
            let outlet = &mut self.outlet;
            self.encoder
                .finish(|packet| {
                    outlet.write(packet.data, packet.pts_us, |track, pts_us| {
                        track.write(packet.data, pts_us)
                    })
                })
                .unwrap();
            self.outlet.finish(VideoTrack::finish).unwrap();
            self.broadcast.finish().unwrap();
        }
    }

    /// A keyframe captured before the frame written last (a new picture presented before a
    /// still one's repeat was stamped): moq-mux refuses such a keyframe, so it is written just
    /// after the last frame, and the broadcast goes on.
    #[tokio::test]
    async fn a_keyframe_captured_before_the_last_frame_is_written_just_after_it() {
        let origin = moq_tokio::origin::spawn();
        let mut cube = Encoded::new(&origin);
        let now = lantern_proto::clock::now_unix_us();
        for (n, at) in [0, 33_000, 20_000, 20_000, 60_000].into_iter().enumerate() {
            cube.frame(n, now + at, true);
        }
        let expected = [0, 33_000, 34_000, 35_000, 60_000].map(|at| now + at);
        assert_eq!(cube.written, expected);
        assert_eq!(cube.outlet.last_us(), Some(now + 60_000));
    }

    /// Frames whose capture times stepped back are still far enough apart for MP4: a
    /// recording of the broadcast (moq-mux's fMP4 export) takes every one of them. With
    /// frames 1 µs apart it failed at the first such frame, and every export after.
    #[tokio::test]
    async fn frames_moved_past_a_step_back_are_recorded() {
        let origin = moq_tokio::origin::spawn();
        let dir = tempfile::tempdir().unwrap();
        let recorder = lantern_net::record::Recorder::create(&dir.path().join("r.mp4"))
            .await
            .unwrap();
        let selection = lantern_net::record::Selection::default();
        let recording = recorder.start(origin.consume(), "cube".into(), selection);
        let mut cube = Encoded::new(&origin);
        let now = lantern_proto::clock::now_unix_us();
        let captured = [0, 33_000, 20_000, 20_000, 66_000, 99_000, 99_000, 132_000];
        for (n, at) in captured.into_iter().enumerate() {
            cube.frame(n, now + at, n % 4 == 0);
        }
        // The first group is written once the second began; the second once the track ends.
        let progress = recording.progress();
        let written = |fragments| {
            let progress = progress.clone();
            async move {
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
                while progress.fragments() < fragments && std::time::Instant::now() < deadline {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        };
        written(1).await;
        cube.finish();
        written(2).await;
        let summary = recording.stop().await.unwrap();
        // Two groups (a keyframe every fourth frame), each a fragment, 132 ms and a frame.
        assert_eq!(summary.fragments, 2, "{summary:?}");
        assert!(summary.media_seconds > 0.13, "{summary:?}");
    }
}
