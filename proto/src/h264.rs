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
}
