//! A track's encoded frames, whichever transport brings them: a MoQ track (a hang container
//! whose catalog clock maps timestamps to capture time) or the RTP receiver (see
//! [`crate::rtp`]). The players read both the same way.

use crate::error::Cause;

/// One encoded frame as the players take it. From RTP it may be part of a frame (whole NAL
/// units): the decoder completes a picture when its last slice is in.
#[derive(Clone, Debug)]
pub struct Encoded {
    pub payload: bytes::Bytes,
    /// Presentation time, µs, on the stream's own clock.
    pub pts_us: u64,
    pub keyframe: bool,
    /// When it was captured (µs since the UNIX epoch), when the sender's clock is known.
    pub captured_us: Option<u64>,
}

type Container = moq_mux::catalog::hang::Container;

/// Where a track's frames come from.
pub enum Feed {
    Moq {
        // Boxed: it is much larger than the RTP side.
        consumer: Box<moq_mux::container::Consumer<Container>>,
        /// Maps timestamps to wall time, when the publisher advertises its clock.
        clock: Option<hang::catalog::Clock>,
    },
    /// Filled by the RTP receiver's thread; an error ends it.
    Rtp(tokio::sync::mpsc::Receiver<Result<Encoded, Cause>>),
}

impl Feed {
    /// The next frame, or `None` at the track's end.
    pub async fn read(&mut self) -> Result<Option<Encoded>, Cause> {
        match self {
            Self::Moq { consumer, clock } => {
                let Some(frame) = consumer.read().await? else {
                    return Ok(None);
                };
                let captured_us = clock
                    .as_ref()
                    .and_then(|c| c.wall_clock(frame.timestamp).ok())
                    .and_then(unix_us);
                Ok(Some(Encoded {
                    pts_us: frame.timestamp.as_micros() as u64,
                    payload: frame.payload,
                    keyframe: frame.keyframe,
                    captured_us,
                }))
            }
            Self::Rtp(receiver) => receiver.recv().await.transpose(),
        }
    }
}

/// µs since the UNIX epoch of a wall-clock time.
fn unix_us(time: std::time::SystemTime) -> Option<u64> {
    time.duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_micros() as u64)
}
