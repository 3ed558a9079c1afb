//! The frame stamp survives a real encode (moq-pub's encoders, fed the way the pipeline feeds
//! them: FFmpeg's own frame, filled in place) and decode (moq-sub's decoders) of the moving
//! cube, in H.264 (x264) and AV1 (SVT-AV1, dav1d), at the default bitrate and at a starved one.
//! AV1 runs at preset 9: from 10 up SVT-AV1 1.4 leaves a few changed blocks stale (about one
//! frame in 25 at the default preset 10, whose stamp then fails its CRC; see
//! `moq_pub::encode`'s SVT-AV1 notes).

use lantern_proto::stamp::Stamp;
use moq_pub::encode::{Codec, Encoder, VideoArgs};
use moq_pub::source::{Cube, Format};
use moq_sub::decode::Decoder;

fn round_trip(codec: Codec, width: u32, height: u32, kbps: u32) {
    let format = Format {
        width,
        height,
        fps: 60.0,
    };
    let cube = Cube::new(format).unwrap();
    let args = VideoArgs {
        codec,
        bitrate: Some(kbps),
        gop: Some(30),
        preset: (codec == Codec::Av1).then(|| "9".into()),
        ..VideoArgs::default()
    };
    let mut encoder = Encoder::new(format, &args.settings(format).unwrap()).unwrap();
    let mut decoder = match codec {
        Codec::H264 => Decoder::new(None, Default::default()).unwrap(),
        Codec::Av1 => Decoder::av1(Default::default()).unwrap(),
    };
    let mut frame = lantern_media::ffmpeg::i420_frame(width, height);
    let stamp = |n: u32| Stamp {
        frame: n,
        capture_us: 1_763_700_000_000_000 + n as u64 * 16_667,
    };
    let mut packets = Vec::new();
    let mut keep = |packet: moq_pub::encode::Packet| {
        let n = ((packet.pts_us - stamp(0).capture_us) / 16_667) as u32;
        assert_eq!(packet.keyframe, n.is_multiple_of(30), "frame {n}");
        packets.push(packet.data.to_vec());
        Ok(())
    };
    for n in 0..90u32 {
        if !lantern_media::ffmpeg::is_writable(&frame) {
            frame = lantern_media::ffmpeg::i420_frame(width, height);
        }
        let mut picture = lantern_media::ffmpeg::i420_mut(&mut frame).unwrap();
        cube.render(n, &mut picture).unwrap();
        stamp(n).write(&mut picture).unwrap();
        encoder
            .encode(&mut frame, stamp(n).capture_us, false, &mut keep)
            .unwrap();
    }
    encoder.finish(&mut keep).unwrap();
    let mut read = Vec::new();
    for packet in &packets {
        decoder
            .decode(packet, |picture| {
                read.push(Stamp::read(&picture.image));
                Ok(())
            })
            .unwrap();
    }
    let expected: Vec<_> = (0..90u32).map(|n| Some(stamp(n))).collect();
    assert_eq!(
        read, expected,
        "{codec:?} {width}x{height} at {kbps} kbit/s"
    );
}

#[test]
fn stamps_survive_x264_round_trip() {
    for (width, height, kbps) in [(1280, 720, 4424), (1280, 720, 300), (320, 240, 100)] {
        round_trip(Codec::H264, width, height, kbps);
    }
}

#[test]
fn stamps_survive_svt_av1_and_dav1d_round_trip() {
    for (width, height, kbps) in [(1280, 720, 4424), (1280, 720, 300), (320, 240, 100)] {
        round_trip(Codec::Av1, width, height, kbps);
    }
}
