//! H.264 bitstream framing: Annex-B (start codes, as `avc3` tracks and x264 carry it) and
//! length-prefixed NAL units (as MP4 and `avc1` tracks carry them).

use crate::Error;

/// Whether an access unit starts with an Annex-B start code.
pub fn is_annexb(data: &[u8]) -> bool {
    data.starts_with(&[0, 0, 0, 1]) || data.starts_with(&[0, 0, 1])
}

/// H.264's sequence parameter set: what a keyframe's access unit starts with.
pub const NAL_SPS: u8 = 7;

/// The type of the first NAL unit of Annex-B data (`None` when it does not start with a
/// start code, as a fragment's continuation does not).
pub fn first_nal_type(data: &[u8]) -> Option<u8> {
    let body = data
        .strip_prefix(&[0, 0, 0, 1])
        .or_else(|| data.strip_prefix(&[0, 0, 1]))?;
    body.first().map(|header| header & 0x1f)
}

/// Rewrite 4-byte length-prefixed NAL units as Annex-B into `out` (cleared first).
pub fn to_annexb(mut data: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
    out.clear();
    while !data.is_empty() {
        let (len, rest) = data
            .split_first_chunk::<4>()
            .ok_or(Error::H264("a NAL unit length is cut short"))?;
        let len = u32::from_be_bytes(*len) as usize;
        let nal = rest
            .get(..len)
            .ok_or(Error::H264("a NAL unit is longer than the access unit"))?;
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(nal);
        data = &rest[len..];
    }
    Ok(())
}

/// The NAL units of Annex-B data (start codes removed; empty units skipped).
pub fn annexb_units(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = data;
    std::iter::from_fn(move || {
        loop {
            let start = find_start_code(rest)?;
            let body = &rest[start..];
            let end = find_start_code(body).map_or(body.len(), |next| {
                // The next unit's start code: 3 bytes, or 4 with its leading zero.
                let code = if next >= 4 && body[next - 4] == 0 {
                    4
                } else {
                    3
                };
                next - code
            });
            let unit = &body[..end];
            rest = &body[end..];
            if !unit.is_empty() {
                return Some(unit);
            }
        }
    })
}

/// Where the data after the first start code (0 0 1) begins.
fn find_start_code(data: &[u8]) -> Option<usize> {
    data.windows(3)
        .position(|w| w == [0, 0, 1])
        .map(|at| at + 3)
}

/// The SPS units an avcC (ISO 14496-15 AVCDecoderConfigurationRecord) carries.
pub fn avcc_sps(avcc: &[u8]) -> Result<Vec<&[u8]>, Error> {
    let short = Error::H264("the avcC is cut short");
    let count = *avcc.get(5).ok_or(short)? & 0x1f;
    let mut rest = &avcc[6..];
    let mut units = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let (len, tail) = rest
            .split_first_chunk::<2>()
            .ok_or(Error::H264("the avcC is cut short"))?;
        let len = usize::from(u16::from_be_bytes(*len));
        units.push(
            tail.get(..len)
                .ok_or(Error::H264("an avcC parameter set is cut short"))?,
        );
        rest = &tail[len..];
    }
    Ok(units)
}

/// The picture size an SPS unit (with its NAL header) declares: width and height in
/// pixels, before cropping (an upper bound of what the decoder will allocate).
pub fn sps_size(unit: &[u8]) -> Result<(u32, u32), Error> {
    if unit.first().map(|h| h & 0x1f) != Some(NAL_SPS) {
        return Err(Error::H264("not a sequence parameter set"));
    }
    // The SPS's fields come well within its first bytes; a larger one is read in part.
    let rbsp = unescape(&unit[1..unit.len().min(1024)]);
    let mut bits = Bits::new(&rbsp);
    let profile = bits.read(8)?;
    bits.read(16)?; // constraint flags, level
    bits.ue()?; // seq_parameter_set_id
    if matches!(
        profile,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        let chroma_format = bits.ue()?;
        if chroma_format == 3 {
            bits.read(1)?; // separate_colour_plane_flag
        }
        bits.ue()?; // bit_depth_luma_minus8
        bits.ue()?; // bit_depth_chroma_minus8
        bits.read(1)?; // qpprime_y_zero_transform_bypass_flag
        if bits.read(1)? == 1 {
            let lists = if chroma_format == 3 { 12 } else { 8 };
            for i in 0..lists {
                if bits.read(1)? == 1 {
                    skip_scaling_list(&mut bits, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    bits.ue()?; // log2_max_frame_num_minus4
    match bits.ue()? {
        0 => {
            bits.ue()?; // log2_max_pic_order_cnt_lsb_minus4
        }
        1 => {
            bits.read(1)?; // delta_pic_order_always_zero_flag
            bits.se()?; // offset_for_non_ref_pic
            bits.se()?; // offset_for_top_to_bottom_field
            for _ in 0..bits.ue()?.min(255) {
                bits.se()?; // offset_for_ref_frame
            }
        }
        _ => {}
    }
    bits.ue()?; // max_num_ref_frames
    bits.read(1)?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = u64::from(bits.ue()?) + 1;
    let height_units = u64::from(bits.ue()?) + 1;
    let frame_mbs_only = bits.read(1)?;
    let height_mbs = height_units * (2 - u64::from(frame_mbs_only));
    let clamp = |mbs: u64| u32::try_from(mbs * 16).unwrap_or(u32::MAX);
    Ok((clamp(width_mbs), clamp(height_mbs)))
}

fn skip_scaling_list(bits: &mut Bits<'_>, size: usize) -> Result<(), Error> {
    let (mut last, mut next) = (8i64, 8i64);
    for _ in 0..size {
        if next != 0 {
            next = (last + i64::from(bits.se()?) + 256) % 256;
        }
        if next != 0 {
            last = next;
        }
    }
    Ok(())
}

/// An RBSP: emulation prevention bytes (the 3 of 0 0 3) removed.
fn unescape(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut zeros = 0;
    for &byte in data {
        if zeros >= 2 && byte == 3 {
            zeros = 0;
            continue;
        }
        zeros = if byte == 0 { zeros + 1 } else { 0 };
        out.push(byte);
    }
    out
}

/// A big-endian bit reader with Exp-Golomb codes.
struct Bits<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data, at: 0 }
    }

    fn bit(&mut self) -> Result<u32, Error> {
        let byte = self
            .data
            .get(self.at / 8)
            .ok_or(Error::H264("the parameter set is cut short"))?;
        let bit = (byte >> (7 - self.at % 8)) & 1;
        self.at += 1;
        Ok(u32::from(bit))
    }

    fn read(&mut self, n: u32) -> Result<u32, Error> {
        (0..n).try_fold(0, |value, _| Ok((value << 1) | self.bit()?))
    }

    fn ue(&mut self) -> Result<u32, Error> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return Err(Error::H264("an Exp-Golomb code over 32 bits"));
            }
        }
        let rest = self.read(zeros)?;
        Ok(((1u64 << zeros) - 1 + u64::from(rest)).min(u64::from(u32::MAX)) as u32)
    }

    fn se(&mut self) -> Result<i32, Error> {
        let k = i64::from(self.ue()?);
        let value = if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) };
        Ok(value.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_keyframe_is_known_by_its_parameter_set() {
        use super::{NAL_SPS, first_nal_type};
        assert_eq!(first_nal_type(&[0, 0, 0, 1, 0x67, 0x42]), Some(NAL_SPS));
        assert_eq!(first_nal_type(&[0, 0, 1, 0x41, 0x9a]), Some(1));
        assert_eq!(
            first_nal_type(&[0x9a, 0x00]),
            None,
            "a fragment's continuation"
        );
        assert_eq!(first_nal_type(&[0, 0, 0, 1]), None);
    }

    use super::*;

    #[test]
    fn length_prefixed_units_become_annexb() {
        let mut out = Vec::new();
        to_annexb(&[0, 0, 0, 2, 0x67, 1, 0, 0, 0, 1, 0x68], &mut out).unwrap();
        assert_eq!(out, [0, 0, 0, 1, 0x67, 1, 0, 0, 0, 1, 0x68]);
        assert!(to_annexb(&[0, 0, 0, 9, 1], &mut out).is_err());
        assert!(to_annexb(&[0, 0], &mut out).is_err());
        assert!(to_annexb(&[0xff, 0xff, 0xff, 0xff, 1], &mut out).is_err());
        assert!(is_annexb(&[0, 0, 1, 0x65]) && !is_annexb(&[0, 0, 2, 0x65]));
    }

    /// x264's SPS for 1280x720 (High profile), and one for 8192x4608 (Baseline), as
    /// `ffmpeg -f lavfi -i testsrc2=size=WxH -c:v libx264 -f h264` writes them.
    const SPS_720P: &[u8] = &[
        0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01, 0x10, 0x00, 0x00, 0x03,
        0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0x20, 0xf1, 0x83, 0x19, 0x60,
    ];
    const SPS_8K: &[u8] = &[
        0x67, 0x42, 0xc0, 0x3e, 0xda, 0x00, 0x20, 0x00, 0x09, 0x06, 0xc0, 0x44, 0x00, 0x00, 0x03,
        0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xc8, 0x3c, 0x20, 0x10, 0xa8,
    ];

    #[test]
    fn an_sps_says_its_picture_size() {
        assert_eq!(sps_size(SPS_720P).unwrap(), (1280, 720));
        assert_eq!(sps_size(SPS_8K).unwrap(), (8192, 4608));
        let mut stream = vec![0, 0, 0, 1];
        stream.extend_from_slice(SPS_720P);
        stream.extend_from_slice(&[0, 0, 1, 0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0]);
        let units: Vec<&[u8]> = annexb_units(&stream).collect();
        assert_eq!(units.len(), 2);
        assert_eq!(units[0], SPS_720P);
        assert_eq!(units[1][0], 0x68);
        let mut avcc = vec![1, 0x64, 0, 0x1f, 0xff, 0xe1, 0, SPS_720P.len() as u8];
        avcc.extend_from_slice(SPS_720P);
        avcc.extend_from_slice(&[1, 0, 1, 0x68]);
        assert_eq!(avcc_sps(&avcc).unwrap(), [SPS_720P]);
        assert!(avcc_sps(&avcc[..9]).is_err());
        for cut in 1..8 {
            assert!(sps_size(&SPS_720P[..cut]).is_err(), "{cut}");
        }
        assert!(sps_size(&[0x68, 1, 2]).is_err());
        assert!(sps_size(&[0x67, 0x42, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }
}
