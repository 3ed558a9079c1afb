//! The frame stamp survives a real x264 encode (moq-pub's encoder, fed the way the pipeline
//! feeds it: FFmpeg's own frame, filled in place) and FFmpeg decode (moq-sub's decoder) of the
//! moving cube, at the default bitrate and at a starved one.

use lantern_proto::stamp::Stamp;
use moq_pub::encode::{Encoder, H264Settings};
use moq_pub::source::{Cube, Format};

#[test]
fn stamps_survive_x264_round_trip() {
    for (width, height, kbps) in [(1280, 720, 4424), (1280, 720, 300), (320, 240, 100)] {
        let format = Format {
            width,
            height,
            fps: 60.0,
        };
        let cube = Cube::new(format).unwrap();
        let settings = H264Settings {
            bitrate_kbps: kbps,
            gop: 30,
            preset: "ultrafast".into(),
            tune: "zerolatency".into(),
            slice_max_bytes: None,
        };
        let mut encoder = Encoder::new(format, &settings).unwrap();
        let mut decoder = moq_sub::decode::Decoder::new(None, Default::default()).unwrap();
        let mut frame = lantern_media::ffmpeg::i420_frame(width, height);
        let stamp = |n: u32| Stamp {
            frame: n,
            capture_us: 1_763_700_000_000_000 + n as u64 * 16_667,
        };
        let mut packets = Vec::new();
        for n in 0..90u32 {
            let mut picture = lantern_media::ffmpeg::i420_mut(&mut frame).unwrap();
            cube.render(n, &mut picture).unwrap();
            stamp(n).write(&mut picture).unwrap();
            encoder
                .encode(&mut frame, stamp(n).capture_us, false, |packet| {
                    assert_eq!(packet.keyframe, n % 30 == 0, "frame {n}");
                    packets.push(packet.data.to_vec());
                    Ok(())
                })
                .unwrap();
        }
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
        assert_eq!(read, expected, "{width}x{height} at {kbps} kbit/s");
    }
}
