//! `encode`: the stage floors. Encodes frames with Lantern's encoder (libx264 through
//! ffmpeg-next, the settings moq-pub uses) and decodes them again with moq-sub's decoder,
//! counting this process's CPU time for each stage alone: no capture, no network, no relay,
//! and the wall time of each frame's call (what the stage adds to glass-to-glass: with threads
//! it is less than the CPU time, when the machine is busy more).

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::time::{Duration, Instant};

use lantern_proto::{clock, histogram::Histogram, stamp::Stamp, y4m};
use moq_pub::encode::{Encoder, VideoArgs};
use serde_json::json;

use crate::{Paced, Size, cpu};

#[derive(clap::Args)]
pub struct Args {
    /// Frames to encode: a y4m file (at its own size), or the cube at --size by default.
    #[arg(long)]
    input: Option<String>,
    #[arg(long, default_value = "1280x720")]
    size: Size,
    #[arg(long, default_value_t = 60.0)]
    fps: f64,
    #[arg(long)]
    frames: u32,
    /// The same encoder flags as moq-pub, with the same defaults.
    #[command(flatten)]
    video: VideoArgs,
    /// Feed the encoder (and the decoder) at --fps as a live source would, rather than as
    /// fast as they go: a live encoder pays for waking up once per frame.
    #[arg(long)]
    paced: bool,
    /// Write the encoded stream here (H.264 Annex-B, or AV1 OBUs), e.g. to compare its quality.
    #[arg(long)]
    output: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.frames > 0, "--frames must be at least 1");
    let (frames, fps, stamp) = match &args.input {
        Some(path) => {
            let file = File::open(path).map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
            let mut reader = y4m::Reader::new(BufReader::new(file))?;
            let mut frames = Vec::new();
            let mut frame = reader.new_frame();
            while frames.len() < args.frames as usize && reader.read_frame(&mut frame.view_mut())? {
                frames.push(frame.clone());
            }
            anyhow::ensure!(!frames.is_empty(), "{path}: no frames");
            (frames, reader.header().fps(), false)
        }
        None => (
            crate::cube_cycle(args.size.format(args.fps))?,
            args.fps,
            true,
        ),
    };
    let format = moq_pub::source::Format {
        width: frames[0].width(),
        height: frames[0].height(),
        fps,
    };
    let settings = args.video.settings(format)?;

    let mut encoder = Encoder::new(format, &settings)?;
    let mut packets: Vec<Vec<u8>> = Vec::with_capacity(args.frames as usize);
    // The encoder's own frame, filled as a source fills it: one copy (or render) per frame.
    let mut frame = lantern_media::ffmpeg::i420_frame(format.width, format.height);
    let mut pacer = args.paced.then(|| Paced::new(fps));
    let mut encode_wall = Histogram::new();
    let started = cpu::process_us();
    for n in 0..args.frames {
        if let Some(pacer) = &mut pacer {
            pacer.wait();
        }
        if !lantern_media::ffmpeg::is_writable(&frame) {
            // An encoder that keeps the last picture handed back another (at first, none).
            frame = lantern_media::ffmpeg::i420_frame(format.width, format.height);
        }
        let mut picture = lantern_media::ffmpeg::i420_mut(&mut frame)?;
        picture.copy_from(&frames[n as usize % frames.len()].image())?;
        if stamp {
            Stamp {
                frame: n,
                capture_us: clock::now_unix_us(),
            }
            .write(&mut picture)?;
        }
        let pts = (n as f64 * 1e6 / fps) as u64;
        let called = Instant::now();
        encoder.encode(&mut frame, pts, false, |p| {
            packets.push(p.data.to_vec());
            Ok(())
        })?;
        encode_wall.record(called.elapsed().as_micros() as u64);
    }
    encoder.finish(|p| {
        packets.push(p.data.to_vec());
        Ok(())
    })?;
    let encode_us = cpu::process_us() - started;

    let bytes: usize = packets.iter().map(Vec::len).sum();
    if let Some(path) = &args.output {
        let mut out =
            BufWriter::new(File::create(path).map_err(|e| anyhow::anyhow!("{path}: {e}"))?);
        for packet in &packets {
            out.write_all(packet)?;
        }
        out.flush()?;
    }
    let codec = match settings.codec() {
        moq_pub::encode::Codec::H264 => moq_sub::decode::Codec::H264,
        moq_pub::encode::Codec::Av1 => moq_sub::decode::Codec::Av1,
    };
    let mut decoder = moq_sub::decode::Decoder::of(codec, None, Default::default())?;
    let (mut pictures, mut stamps) = (0u32, 0u32);
    let mut pacer = args.paced.then(|| Paced::new(fps));
    let mut decode_wall = Histogram::new();
    let started = cpu::process_us();
    for packet in &packets {
        if let Some(pacer) = &mut pacer {
            pacer.wait();
        }
        let called = Instant::now();
        // Reading the stamp is the bench's work, not the decoder's: its time is left out.
        let mut reading = Duration::ZERO;
        decoder.decode(packet, |picture| {
            let read = Instant::now();
            pictures += 1;
            stamps += Stamp::read(&picture.image).is_some() as u32;
            reading += read.elapsed();
            Ok(())
        })?;
        decode_wall.record((called.elapsed() - reading).as_micros() as u64);
    }
    let decode_us = cpu::process_us() - started;

    let per_frame = |us: u64| (us as f64 / args.frames as f64 / 10.0).round() / 100.0;
    let p50_ms = |h: &Histogram| h.quantile(0.5).map(|us| (us as f64 / 10.0).round() / 100.0);
    println!(
        "{}",
        json!({
            "role": "encode",
            "width": format.width,
            "height": format.height,
            "frames": args.frames,
            "target_kbps": settings.bitrate_kbps,
            "kbps": (bytes as f64 * 8.0 * fps / args.frames as f64 / 1000.0).round(),
            "bytes_per_frame": bytes / args.frames as usize,
            "encode_cpu_ms": per_frame(encode_us),
            "decode_cpu_ms": per_frame(decode_us),
            "encode_wall_p50_ms": p50_ms(&encode_wall),
            "decode_wall_p50_ms": p50_ms(&decode_wall),
            "decoded": pictures,
            "stamps_read": stamps,
        })
    );
    Ok(())
}
