//! Opus encoding with the `opus` crate (libopus): restricted low-delay mode, 48 kHz stereo,
//! one packet per frame.

use lantern_proto::audio::{RATE, opus_head};

use super::{AudioSettings, CHANNELS};
use crate::Error;

pub struct OpusEncoder {
    encoder: opus::Encoder,
    settings: AudioSettings,
    packet: Vec<u8>,
    pre_skip: u16,
}

impl OpusEncoder {
    pub fn new(settings: AudioSettings) -> Result<Self, Error> {
        let err = |what, source| Error::Opus { what, source };
        let mut encoder =
            opus::Encoder::new(RATE, opus::Channels::Stereo, opus::Application::LowDelay)
                .map_err(|e| err("encoder", e))?;
        encoder
            .set_bitrate(opus::Bitrate::Bits(settings.bitrate_kbps as i32 * 1000))
            .map_err(|e| err("bitrate", e))?;
        let pre_skip = encoder.get_lookahead().map_err(|e| err("lookahead", e))?;
        Ok(Self {
            encoder,
            settings,
            // The largest packet Opus makes (RFC 6716 §3.4: 1275 bytes per frame).
            packet: vec![0; 1275 * 3],
            pre_skip: u16::try_from(pre_skip).unwrap_or(0),
        })
    }

    pub fn settings(&self) -> AudioSettings {
        self.settings
    }

    /// The OpusHead for the catalog: channels, the encoder's lookahead as pre-skip, the rate.
    pub fn head(&self) -> Vec<u8> {
        opus_head(CHANNELS as u8, self.pre_skip, RATE)
    }

    /// Encode one frame of interleaved samples.
    pub fn encode(&mut self, frame: &[f32]) -> Result<&[u8], Error> {
        let len = self
            .encoder
            .encode_float(frame, &mut self.packet)
            .map_err(|source| Error::Opus {
                what: "encode",
                source,
            })?;
        Ok(&self.packet[..len])
    }
}
