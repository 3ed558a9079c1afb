//! Audio formats: the one raw format Lantern passes around (48 kHz, interleaved f32), the
//! OpusHead that describes an Opus track in a hang catalog, and WAV for recordings.

use std::io::{Seek, SeekFrom, Write};

use crate::Error;

/// Every Lantern audio stage runs at Opus's native rate.
pub const RATE: u32 = 48_000;

/// Samples per channel in a frame of `frame_us` at [`RATE`].
pub fn frame_samples(frame_us: u64) -> usize {
    (RATE as u64 * frame_us / 1_000_000) as usize
}

/// The 19-byte OpusHead (RFC 7845, section 5.1) for a mapping-family-0 stream: what a hang
/// catalog carries as the Opus rendition's description.
pub fn opus_head(channels: u8, pre_skip: u16, input_rate: u32) -> Vec<u8> {
    let mut head = Vec::with_capacity(19);
    head.extend_from_slice(b"OpusHead");
    head.push(1); // version
    head.push(channels);
    head.extend_from_slice(&pre_skip.to_le_bytes());
    head.extend_from_slice(&input_rate.to_le_bytes());
    head.extend_from_slice(&0i16.to_le_bytes()); // output gain
    head.push(0); // mapping family 0: mono or stereo, no table
    head
}

/// What an OpusHead says about a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpusHead {
    pub channels: u8,
    /// Samples (at 48 kHz) the decoder's output runs late: its first ones are not sound.
    pub pre_skip: u16,
    pub input_rate: u32,
}

impl OpusHead {
    /// Parse an OpusHead (RFC 7845, section 5.1), as a catalog's description carries it.
    pub fn parse(head: &[u8]) -> Result<Self, Error> {
        let body = head
            .strip_prefix(b"OpusHead")
            .ok_or(Error::OpusHead("no OpusHead signature"))?;
        let [version, channels, p0, p1, r0, r1, r2, r3, _, _, family, ..] = *body else {
            return Err(Error::OpusHead("shorter than 19 bytes"));
        };
        if version >> 4 != 0 {
            return Err(Error::OpusHead("an incompatible major version"));
        }
        if channels == 0 || (family == 0 && channels > 2) {
            return Err(Error::OpusHead(
                "a channel count its mapping family cannot carry",
            ));
        }
        Ok(Self {
            channels,
            pre_skip: u16::from_le_bytes([p0, p1]),
            input_rate: u32::from_le_bytes([r0, r1, r2, r3]),
        })
    }
}

/// Convert a float sample to 16-bit PCM, clipping.
pub fn to_i16(sample: f32) -> i16 {
    (sample.clamp(-1.0, 1.0) * i16::MAX as f32).round() as i16
}

/// Float samples as 16-bit little-endian PCM bytes (WAV's data, or a raw PCM pipe).
pub fn to_pcm16(samples: &[f32]) -> Vec<u8> {
    samples
        .iter()
        .flat_map(|&s| to_i16(s).to_le_bytes())
        .collect()
}

/// A 16-bit PCM WAV stream. The header is written first with "unknown" sizes, so the file
/// plays even if the writer is killed; [`Wav::finish`] puts in the real sizes when the
/// output can seek.
pub struct Wav<W: Write> {
    out: W,
    bytes: u64,
}

impl<W: Write> Wav<W> {
    pub fn new(mut out: W, channels: u16) -> Result<Self, Error> {
        let block = channels * 2;
        let mut header = Vec::with_capacity(44);
        header.extend_from_slice(b"RIFF");
        header.extend_from_slice(&u32::MAX.to_le_bytes());
        header.extend_from_slice(b"WAVEfmt ");
        header.extend_from_slice(&16u32.to_le_bytes());
        header.extend_from_slice(&1u16.to_le_bytes()); // PCM
        header.extend_from_slice(&channels.to_le_bytes());
        header.extend_from_slice(&RATE.to_le_bytes());
        header.extend_from_slice(&(RATE * block as u32).to_le_bytes());
        header.extend_from_slice(&block.to_le_bytes());
        header.extend_from_slice(&16u16.to_le_bytes());
        header.extend_from_slice(b"data");
        header.extend_from_slice(&u32::MAX.to_le_bytes());
        out.write_all(&header)?;
        Ok(Self { out, bytes: 0 })
    }

    /// Append interleaved samples.
    pub fn write(&mut self, samples: &[f32]) -> Result<(), Error> {
        let pcm = to_pcm16(samples);
        self.out.write_all(&pcm)?;
        self.bytes += pcm.len() as u64;
        Ok(())
    }

    pub fn flush(&mut self) -> Result<(), Error> {
        Ok(self.out.flush()?)
    }
}

impl<W: Write + Seek> Wav<W> {
    /// Write the real sizes into the header (up to the format's 4 GiB).
    pub fn finish(mut self) -> Result<W, Error> {
        let data = u32::try_from(self.bytes).unwrap_or(u32::MAX);
        self.out.seek(SeekFrom::Start(4))?;
        self.out.write_all(&data.saturating_add(36).to_le_bytes())?;
        self.out.seek(SeekFrom::Start(40))?;
        self.out.write_all(&data.to_le_bytes())?;
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opus_head_matches_rfc_7845() {
        let head = opus_head(2, 312, 48_000);
        assert_eq!(head.len(), 19);
        assert_eq!(&head[..8], b"OpusHead");
        assert_eq!(head[9], 2);
        assert_eq!(u16::from_le_bytes([head[10], head[11]]), 312);
        assert_eq!(u32::from_le_bytes(head[12..16].try_into().unwrap()), 48_000);
        assert_eq!(
            OpusHead::parse(&head).unwrap(),
            OpusHead {
                channels: 2,
                pre_skip: 312,
                input_rate: 48_000
            }
        );
        for bad in [
            &b"OpusHead"[..],
            &head[..18],
            b"OpusTags",
            &opus_head(3, 0, 48_000),
        ] {
            assert!(OpusHead::parse(bad).is_err());
        }
    }

    #[test]
    fn wav_header_gets_its_sizes() {
        let mut wav = Wav::new(std::io::Cursor::new(Vec::new()), 2).unwrap();
        wav.write(&[0.0, 1.0, -1.0, 2.0]).unwrap();
        let bytes = wav.finish().unwrap().into_inner();
        assert_eq!(bytes.len(), 44 + 8);
        assert_eq!(u32::from_le_bytes(bytes[40..44].try_into().unwrap()), 8);
        assert_eq!(u32::from_le_bytes(bytes[4..8].try_into().unwrap()), 44);
        assert_eq!(i16::from_le_bytes([bytes[46], bytes[47]]), i16::MAX);
        assert_eq!(i16::from_le_bytes([bytes[48], bytes[49]]), -i16::MAX);
        assert_eq!(frame_samples(10_000), 480);
    }
}
