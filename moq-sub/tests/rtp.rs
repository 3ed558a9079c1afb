//! The RTP copy (`moq-pub --rtp … --sdp FILE`) end to end: ffmpeg and GStreamer (players that
//! know nothing of MoQ) read the SDP and decode the stamped cube and the Opus sound, and
//! `moq-sub --sdp` plays it beside a MoQ subscriber of the same publisher. Plus the errors.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lantern_testkit::*;

const LONG: Duration = Duration::from_secs(60);

/// A publisher sending RTP (and, with `more`, whatever else `more` asks) of the cube at
/// 640x360 and the test tone, and the SDP file it wrote.
fn publish_rtp(dir: &Path, frames: &str, more: &[&str]) -> (Proc, PathBuf, u16) {
    let port = free_rtp_port();
    let sdp = dir.join("cube.sdp");
    let url = format!("rtp://127.0.0.1:{port}");
    let mut args = vec![
        "--rtp",
        &url,
        "--sdp",
        sdp.to_str().unwrap(),
        "--width",
        "640",
        "--height",
        "360",
        "--audio",
        "testsrc",
        "--frames",
        frames,
        "--stats",
    ];
    args.extend_from_slice(more);
    let publisher = spawn(bin("moq-pub"), &args);
    wait_for("the SDP", LONG, || sdp.exists());
    (publisher, sdp, port)
}

/// The stamps of a y4m file's frames: all there, frame numbers rising.
fn assert_stamped_in_order(y4m: &Path, at_least: usize) {
    let stamps = stamps(y4m);
    assert!(stamps.len() >= at_least, "{} frames", stamps.len());
    let frames: Vec<u32> = stamps
        .iter()
        .map(|s| s.expect("a frame without its stamp").frame)
        .collect();
    assert!(
        frames.windows(2).all(|w| w[0] < w[1]),
        "stamps out of order: {frames:?}"
    );
}

fn y4m_size(y4m: &Path) -> String {
    let header = std::fs::read(y4m).unwrap();
    let line = header.split(|&b| b == b'\n').next().unwrap().to_vec();
    let line = String::from_utf8(line).unwrap();
    line.split(' ')
        .filter(|f| f.starts_with('W') || f.starts_with('H'))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn the_sdp_describes_h264_and_opus_on_even_ports() {
    let dir = tempfile::tempdir().unwrap();
    let (publisher, sdp, port) = publish_rtp(dir.path(), "600", &[]);
    let text = std::fs::read_to_string(&sdp).unwrap();
    publisher.stop_ok("moq-pub");
    assert!(
        text.contains(&format!("m=video {port} RTP/AVP 96")),
        "{text}"
    );
    assert!(text.contains("a=rtpmap:96 H264/90000"), "{text}");
    assert!(text.contains("packetization-mode=1"), "{text}");
    assert!(
        text.contains(&format!("m=audio {} RTP/AVP 97", port + 2)),
        "{text}"
    );
    assert!(text.contains("a=rtpmap:97 opus/48000/2"), "{text}");
    assert!(text.contains("c=IN IP4 127.0.0.1"), "{text}");
}

#[test]
fn ffmpeg_decodes_the_rtp_copy_with_its_stamps() {
    let dir = tempfile::tempdir().unwrap();
    let (publisher, sdp, _) = publish_rtp(dir.path(), "1200", &[]);
    let (y4m, wav) = (dir.path().join("ffmpeg.y4m"), dir.path().join("ffmpeg.wav"));
    let ffmpeg = spawn(
        tool("ffmpeg"),
        &[
            "-hide_banner",
            "-protocol_whitelist",
            "file,udp,rtp",
            "-i",
            sdp.to_str().unwrap(),
            "-map",
            "0:v",
            // Each decoded frame once (no duplicates to fill a constant rate).
            "-fps_mode",
            "passthrough",
            "-frames:v",
            "120",
            "-f",
            "yuv4mpegpipe",
            "-y",
            y4m.to_str().unwrap(),
            "-map",
            "0:a",
            "-t",
            "2",
            "-y",
            wav.to_str().unwrap(),
        ],
    )
    .finish(LONG);
    let log = String::from_utf8_lossy(&ffmpeg.stderr);
    assert!(ffmpeg.status.success(), "ffmpeg failed:\n{log}");
    publisher.stop_ok("moq-pub");
    assert!(log.contains("Video: h264"), "{log}");
    assert!(log.contains("Audio: opus, 48000 Hz, stereo"), "{log}");
    assert_eq!(y4m_size(&y4m), "W640 H360");
    assert_stamped_in_order(&y4m, 120);
    // Two seconds of the tone track: it beeps (1 kHz) twice a second, silent between.
    let sound = read_wav(&wav);
    assert!(sound.len() >= 90_000, "{} samples", sound.len());
    let loud = sound
        .chunks_exact(480)
        .filter(|w| tone_of(w).1 > 0.05)
        .count();
    assert!(loud > 0, "no beep in the decoded sound");
}

#[test]
fn gstreamer_plays_the_same_sdp() {
    let dir = tempfile::tempdir().unwrap();
    let (publisher, sdp, _) = publish_rtp(dir.path(), "1200", &[]);
    let y4m = dir.path().join("gst.y4m");
    // avdec_h264 without direct rendering: this GStreamer's y4menc would otherwise write the
    // decoder's padded buffers whole.
    let pipeline = format!(
        "filesrc location={sdp} ! sdpdemux latency=0 name=d \
         d. ! queue ! rtph264depay ! h264parse ! avdec_h264 direct-rendering=false ! videoconvert ! \
         video/x-raw,format=I420 ! identity eos-after=90 ! y4menc ! filesink location={y4m} \
         d. ! queue ! rtpopusdepay ! opusdec ! identity eos-after=100 ! fakesink",
        sdp = sdp.display(),
        y4m = y4m.display()
    );
    let mut args = vec!["-e"];
    args.extend(pipeline.split_whitespace());
    let gst = spawn(tool("gst-launch-1.0"), &args).finish(LONG);
    let log =
        String::from_utf8_lossy(&gst.stdout).to_string() + &String::from_utf8_lossy(&gst.stderr);
    assert!(gst.status.success(), "gst-launch failed:\n{log}");
    publisher.stop_ok("moq-pub");
    assert_eq!(y4m_size(&y4m), "W640 H360");
    assert_stamped_in_order(&y4m, 80);
}

#[test]
fn moq_sub_plays_the_rtp_copy_beside_a_moq_subscriber() {
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let (publisher, sdp, _) = publish_rtp(dir.path(), "1500", &["--listen", &listen]);
    let wav = dir.path().join("rtp.wav");
    let over_rtp = play_sdp(&sdp, "300", &["--audio-out", wav.to_str().unwrap()]);
    let over_moq = spawn(
        bin("moq-sub"),
        &[
            "--url",
            &format!("http://{listen}/"),
            "--name",
            "lantern",
            "--no-window",
            "--frames",
            "300",
            "--stats",
        ],
    );
    let (over_rtp, over_moq) = (over_rtp.finish(LONG), over_moq.finish(LONG));
    publisher.stop_ok("moq-pub");
    for (what, out) in [("RTP", &over_rtp), ("MoQ", &over_moq)] {
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "moq-sub over {what} failed:\n{log}");
        let total = final_stats(&out.stderr);
        assert_eq!(total["frames"], 300, "{what}: {total}");
        assert_eq!(total["latency_from"], "stamp", "{what}: {total}");
        assert_eq!(total["unstamped"], 0, "{what}: {total}");
    }
    let total = final_stats(&over_rtp.stderr);
    // The sender's RTCP reports gave the capture times, and the sound came too.
    assert!(total["pts_to_shown_ms_p50"].is_number(), "{total}");
    assert!(total["audio_frames"].as_u64() > Some(0), "{total}");
    assert!(total["av_pairs"].as_u64() >= Some(1), "{total}");
    assert!(read_wav(&wav).len() > 48_000);
}

/// When the sender ends (its RTCP goodbye), so does the receiver: at once, and cleanly.
#[test]
fn the_senders_goodbye_ends_the_receiver() {
    let dir = tempfile::tempdir().unwrap();
    let (publisher, sdp, _) = publish_rtp(dir.path(), "300", &[]);
    // No --frames, and a timeout no run of this test reaches: only the goodbye ends it.
    let viewer = play_sdp(&sdp, "1000000", &["--timeout", "600"]).finish(LONG);
    let log = String::from_utf8_lossy(&viewer.stderr);
    assert!(viewer.status.success(), "moq-sub failed:\n{log}");
    assert!(log.contains("the RTP sender said goodbye"), "{log}");
    assert!(
        final_stats(&viewer.stderr)["frames"].as_u64() > Some(200),
        "{log}"
    );
    publisher.stop_ok("moq-pub");
}

/// The first line of a failed run's stderr (and that there is no more than a line or two).
fn failure(program: &str, args: &[&str]) -> String {
    let out = spawn(bin(program), args).finish(LONG);
    let log = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !out.status.success(),
        "{program} {args:?} succeeded:\n{log}"
    );
    log
}

#[test]
fn bad_rtp_urls_and_sdps_are_one_clear_error() {
    for (url, says) in [
        ("rtp://127.0.0.1:5005", "must be even"),
        ("udp://127.0.0.1:5004", "rtp://HOST:PORT"),
        ("rtp://127.0.0.1", "no port"),
        (
            "rtp://no-such-host.invalid:5004",
            "cannot resolve no-such-host.invalid",
        ),
    ] {
        let log = failure("moq-pub", &["--rtp", url]);
        assert!(log.contains(says), "{url}: {log}");
    }
    let port = format!("rtp://127.0.0.1:{}", free_rtp_port());
    let log = failure("moq-pub", &["--rtp", &port, "--sdp", "/no/such/dir/x.sdp"]);
    assert!(
        log.contains("writing the SDP to /no/such/dir/x.sdp"),
        "{log}"
    );

    let dir = tempfile::tempdir().unwrap();
    let log = failure("moq-sub", &["--sdp", "/no/such.sdp", "--no-window"]);
    assert!(
        log.lines().count() == 1 && log.contains("/no/such.sdp"),
        "{log}"
    );
    let garbage = dir.path().join("garbage.sdp");
    std::fs::write(&garbage, "this is not an SDP\n").unwrap();
    let log = failure(
        "moq-sub",
        &["--sdp", garbage.to_str().unwrap(), "--no-window"],
    );
    assert!(log.contains("not an SDP with media"), "{log}");
    let port = free_rtp_port();
    let audio_only = dir.path().join("audio.sdp");
    std::fs::write(
        &audio_only,
        format!("v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 97\r\na=rtpmap:97 opus/48000/2\r\n"),
    )
    .unwrap();
    let log = failure(
        "moq-sub",
        &["--sdp", audio_only.to_str().unwrap(), "--no-window"],
    );
    assert!(log.contains("no H.264 video in the SDP"), "{log}");
    // Another receiver holds the port.
    let (publisher, sdp, port) = publish_rtp(dir.path(), "600", &[]);
    let held = std::net::UdpSocket::bind(("0.0.0.0", port)).unwrap();
    let log = failure("moq-sub", &["--sdp", sdp.to_str().unwrap(), "--no-window"]);
    assert!(
        log.contains(&format!("cannot receive on UDP port {port}")),
        "{log}"
    );
    drop(held);
    publisher.stop_ok("moq-pub");
}

/// RTP has no authentication: anyone who can reach the receiver's ports can send to them.
/// A stranger spraying datagrams for 3 s at every port of the session (noise, and RTCP
/// sender reports and goodbyes around garbage) does not end it: moq-sub plays on to its frame
/// count, without a panic. (RTP packets forged with the stream's payload type and a far
/// sequence number are another matter: libavformat's depacketizer then drops the real ones as
/// old. README says RTP is for trusted networks.)
#[test]
fn a_strangers_datagrams_on_the_rtp_ports_do_not_stop_the_receiver() {
    let dir = tempfile::tempdir().unwrap();
    let (publisher, sdp, port) = publish_rtp(dir.path(), "1500", &[]);
    let viewer = play_sdp(&sdp, "600", &["--timeout", "60"]);
    let stranger = std::thread::spawn(move || {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut sent = 0u64;
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_secs(3) {
            let len = 1 + next() as usize % 1400;
            let mut datagram: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            // Half of them look like the session's RTCP (version 2: a sender report or a
            // goodbye), with garbage after the header; the rest are not RTP at all.
            datagram[0] &= 0x3f;
            if len >= 12 && next() % 2 == 0 {
                datagram[0] = 0x80 | (next() as u8 & 0x1f);
                datagram[1] = if next() % 2 == 0 { 200 } else { 203 };
            }
            let to = port + (next() % 4) as u16;
            let _ = socket.send_to(&datagram, ("127.0.0.1", to));
            sent += 1;
            if sent.is_multiple_of(20) {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        sent
    });
    let sent = stranger.join().unwrap();
    let out = viewer.finish(LONG);
    publisher.stop_ok("moq-pub");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(sent > 1000, "the stranger sent {sent} datagrams");
    assert!(!log.contains("panicked"), "{log}");
    assert!(out.status.success(), "moq-sub failed under noise:\n{log}");
    assert_eq!(final_stats(&out.stderr)["frames"], 600, "{log}");
}
