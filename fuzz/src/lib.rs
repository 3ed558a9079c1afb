//! What each fuzz target does with its input, in one place: the fuzzer binaries under
//! `fuzz_targets/` call these, and `tests/replay.rs` runs every kept input through them in
//! the ordinary test command. Each must never panic, whatever the bytes.

use lantern_proto::{audio::OpusHead, h264, input, stamp::Stamp, y4m};

/// What a target does with one input.
pub type Target = fn(&[u8]);

/// Every target, by the name of its fuzzer binary and its folders.
pub const TARGETS: &[(&str, Target)] = &[
    ("y4m", y4m),
    ("stamp", stamp),
    ("opus_head", opus_head),
    ("annexb", annexb),
    ("catalog", catalog),
    ("input", input),
    ("input_gate", input_gate),
    ("input_script", input_script),
    ("feedback", feedback),
    ("h264_params", h264_params),
    ("seal", seal),
    ("opus_packets", opus_packets),
    ("sdp", sdp),
];

/// The most pixels a fuzzed y4m frame may have: big enough for every path, small enough
/// that an input is not a 100 MB allocation (which a real stream may still ask for).
const MAX_FUZZ_PIXELS: u64 = 1 << 20;

/// A y4m stream as `moq-pub --source y4m:` reads it: the header, then frames.
pub fn y4m(data: &[u8]) {
    let Ok(mut reader) = y4m::Reader::new(data) else {
        return;
    };
    let header = reader.header();
    if header.width as u64 * header.height as u64 > MAX_FUZZ_PIXELS {
        return;
    }
    let _ = header.fps();
    let mut frame = reader.new_frame();
    for _ in 0..4 {
        match reader.read_frame(&mut frame.view_mut()) {
            Ok(true) => {
                let _ = Stamp::read(&frame.image());
            }
            _ => return,
        }
    }
}

/// The stamp reader on a luma plane of any size and stride, as a decoder hands it over:
/// the first four bytes choose the size and stride, the rest are the pixels.
pub fn stamp(data: &[u8]) {
    let [w, h, s, _, pixels @ ..] = data else {
        return;
    };
    let width = u32::from(*w) * 16;
    let height = u32::from(*h) * 8;
    let stride = width as usize + *s as usize;
    let _ = Stamp::read_luma(pixels, stride, width, height);
}

/// An OpusHead from a catalog's description.
pub fn opus_head(data: &[u8]) {
    let _ = OpusHead::parse(data);
}

/// Opus packets from a publisher, as moq-sub's audio player takes them: each a length byte,
/// an 8-byte timestamp (µs) and the packet; decoded by a stereo decoder into the player's
/// 120 ms buffer, then through the playout-gap filler with a fuzzed room.
pub fn opus_packets(data: &[u8]) {
    let Ok(mut decoder) = opus::Decoder::new(48_000, opus::Channels::Stereo) else {
        return;
    };
    let mut pcm = vec![0f32; 48_000 * 120 / 1000 * 2];
    let mut gaps = lantern_proto::timing::PlayoutGaps::default();
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let Some((pts, tail)) = tail.split_first_chunk::<8>() else {
            return;
        };
        let (packet, after) = tail.split_at(usize::from(len).min(tail.len()));
        rest = after;
        let Ok(samples) = decoder.decode_float(packet, &mut pcm, false) else {
            continue;
        };
        assert!(samples * 2 <= pcm.len(), "{samples} samples");
        let pts = u64::from_le_bytes(*pts);
        if let Some(gap) = gaps.packet(pts, samples as u64, u64::from(len) * 100) {
            assert!(gap.fill <= gap.missing && gap.fill <= 48_000);
        }
    }
}

/// An access unit from the network, as the decoder frames it.
pub fn annexb(data: &[u8]) {
    let _ = h264::is_annexb(data);
    let mut out = Vec::new();
    let _ = h264::to_annexb(data, &mut out);
}

/// H.264 parameter sets from a publisher, as a viewer reads them before its decoder does:
/// the input as an avcC (a catalog's `description`) and as Annex-B access units. A size is
/// whole macroblocks, never zero; one beyond u32 reads as u32::MAX (refused by any limit).
pub fn h264_params(data: &[u8]) {
    let whole = |side: u32| side >= 16 && (side.is_multiple_of(16) || side == u32::MAX);
    let sized = |unit: &[u8]| {
        if let Ok((width, height)) = h264::sps_size(unit) {
            assert!(whole(width) && whole(height), "{width}x{height}");
        }
    };
    if let Ok(units) = h264::avcc_sps(data) {
        units.into_iter().for_each(sized);
    }
    h264::annexb_units(data).for_each(sized);
}

/// An SDP file as `moq-sub --sdp` reads its media ports (libavformat reads the rest): ports
/// it names, or one short line saying why not.
pub fn sdp(data: &[u8]) {
    match lantern_proto::sdp::media_ports(&String::from_utf8_lossy(data)) {
        Ok(ports) => assert!(!ports.is_empty()),
        Err(why) => assert!(why.chars().count() < 200 && !why.contains("\n"), "{why}"),
    }
}

/// A sealed datagram from anyone on a viewer's path, as the host opens it, and a grant as a
/// player's viewer reads it: nothing made without the secret opens.
pub fn seal(data: &[u8]) {
    use lantern_net::seal::{Opener, Track};
    let opener = Opener::new(&[7; 32], Track::Input, "game/viewer/alice");
    assert!(opener.open(data).is_err(), "a forged seal opened");
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = lantern_net::grant::Credential::parse(text);
    }
}

/// A catalog from the network, as every viewer reads it (checked, then parsed by hang), and
/// what moq-sub reads of it to choose what to play: each rendition's codec and any OpusHead.
pub fn catalog(data: &[u8]) {
    let Ok(value) = serde_json::from_slice(data) else {
        return;
    };
    if let Ok(catalog) = lantern_net::catalog::parse(value) {
        for config in catalog.video.renditions.values() {
            let _ = config.codec.to_string();
        }
        for config in catalog.audio.renditions.values() {
            let _ = config.codec.to_string();
            if let Some(head) = config.description.as_deref() {
                let _ = OpusHead::parse(head);
            }
        }
    }
}

/// A viewer's input datagram, as the host reads it: whatever decodes must encode back to the
/// same bytes (one meaning per message, so a check on the decoded message holds for what the
/// viewer sent).
pub fn input(data: &[u8]) {
    if let Ok(message) = input::Message::decode(data) {
        let bytes = message.encode().expect("a decoded message encodes");
        assert_eq!(bytes, data, "a message with two encodings");
    }
}

/// A viewer's datagrams through the host's gate: the input is a run of datagrams, each
/// preceded by its length (one byte) and the µs since the last one (one byte, ×1000). Whatever
/// arrives, the keys held stay a set, and releasing everything leaves nothing held.
pub fn input_gate(data: &[u8]) {
    let mut gate = input::Gate::new(input::Limits::default());
    let (mut rest, mut now_us, mut out) = (data, 0u64, Vec::new());
    while let [len, gap, tail @ ..] = rest {
        let len = (*len as usize).min(tail.len());
        now_us += u64::from(*gap) * 1000;
        let _ = gate.receive(&tail[..len], now_us, &mut out);
        let _ = gate.check_silence(now_us, &mut out);
        assert!(gate.held_keys().windows(2).all(|pair| pair[0] < pair[1]));
        rest = &tail[len..];
    }
    gate.release_all(&mut out);
    assert!(gate.held_keys().is_empty());
}

/// Viewers' feedback reports as a publisher's rate control takes them: each report preceded
/// by the viewer it comes from (one byte) and the ms since the last one (one byte). A report
/// taken re-encodes to its bytes (a version 1 one to the same report), and the bitrate stays
/// within its bounds whatever arrives.
pub fn feedback(data: &[u8]) {
    use lantern_proto::feedback::{BYTES, Report, V1_BYTES};
    use lantern_proto::rate::{Config, RateControl};
    let config = Config {
        start_bps: 4_000_000,
        min_bps: 200_000,
        max_bps: 12_000_000,
        blind_start: true,
    };
    let mut control = RateControl::new(config);
    let (mut rest, mut now_us) = (data, 0u64);
    while let [viewer, gap, tail @ ..] = rest {
        let size = if tail.first() == Some(&1) {
            V1_BYTES
        } else {
            BYTES
        };
        let len = size.min(tail.len());
        now_us += u64::from(*gap) * 1000;
        if let Ok(report) = Report::decode(&tail[..len]) {
            // A version 1 report is written back as this version, with the same content.
            match len {
                BYTES => assert_eq!(report.encode().as_slice(), &tail[..len]),
                _ => assert_eq!(Report::decode(&report.encode()).unwrap(), report),
            }
            let _ = control.report(now_us, u64::from(*viewer), &report);
        }
        // Frames named by their time, so reports may name one.
        control.sent(now_us, Some(now_us), usize::from(*gap) * 100);
        let frame = control.frame(now_us);
        assert!((config.min_bps..=config.max_bps).contains(&frame.bitrate_bps));
        rest = &tail[len..];
    }
}

/// An input script as `moq-sub --input-script` reads it; what it accepts must be what the
/// format carries.
pub fn input_script(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(steps) = input::script::parse(text) else {
        return;
    };
    let mut outbox = input::Outbox::new();
    for step in steps {
        assert!(
            outbox.send(&step.events, step.at_ms).is_ok(),
            "{:?}",
            step.events
        );
    }
}
