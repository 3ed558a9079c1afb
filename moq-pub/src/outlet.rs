//! Where each encoded frame goes: its MoQ track, its RTP stream, or both. One encode feeds
//! both transports.

use crate::Error;
use crate::rtp;

/// One medium's destinations: `T` is its MoQ track.
pub(crate) struct Outlet<T> {
    pub moq: Option<T>,
    pub rtp: Option<rtp::Stream>,
}

impl<T> Outlet<T> {
    /// Hand one encoded frame, captured at `pts_us`, to MoQ (through `moq`, which writes it
    /// to the track) and to RTP.
    pub fn write(
        &mut self,
        data: &[u8],
        pts_us: u64,
        moq: impl FnOnce(&mut T) -> Result<(), Error>,
    ) -> Result<(), Error> {
        if let Some(track) = &mut self.moq {
            moq(track)?;
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
