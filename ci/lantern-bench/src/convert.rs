//! `convert`: the capture → I420 conversion, timed for each implementation on the same
//! pictures: libyuv (what lantern-media's converter uses), the `yuv` crate, and FFmpeg's
//! swscale, from BGRx (what a compositor's shared-memory buffer holds) and NV12 (what
//! hardware capture hands over).
//!
//! Wall time per frame on one thread (the rusage clock ticks too coarsely for sub-ms work);
//! each candidate converts the same frames. Also how far each one's pixels are from
//! libyuv's (max absolute difference, luma and chroma), so a faster one is not a wronger one.

use ffmpeg_next::{format::Pixel, software::scaling};
use lantern_proto::picture::{Image, PixelFormat};
use lantern_proto::yuv::Frame;
use serde_json::json;

use crate::Size;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value = "1280x720")]
    size: Size,
    /// Frames each candidate converts.
    #[arg(long, default_value_t = 300)]
    frames: u32,
}

/// Different pictures a candidate cycles through, so caches do not flatter it.
const PICTURES: usize = 8;

pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.frames > 0, "--frames must be at least 1");
    lantern_media::ffmpeg::init()?;
    let (width, height) = (args.size.width, args.size.height);
    let w = width as usize;
    let cube = crate::cube_cycle(args.size.format(60.0))?;
    let bgrx = (cube.iter().take(PICTURES))
        .map(to_bgrx)
        .collect::<anyhow::Result<Vec<_>>>()?;
    let nv12: Vec<Vec<u8>> = cube.iter().take(PICTURES).map(to_nv12).collect();
    let frames = args.frames as usize;
    let time = |convert: &mut dyn FnMut(usize) -> anyhow::Result<()>| -> anyhow::Result<f64> {
        let started = std::time::Instant::now();
        for n in 0..frames {
            convert(n % PICTURES)?;
        }
        let us = started.elapsed().as_micros() as f64;
        Ok((us / frames as f64 / 10.0).round() / 100.0)
    };
    let mut results = serde_json::Map::new();
    let mut put = |key: &str, value: serde_json::Value| results.insert(key.into(), value);

    // libyuv, through lantern-media's converter: the product's own path.
    let mut out = Frame::new(width, height)?;
    put(
        "bgrx_libyuv_ms",
        json!(time(&mut |i| {
            let image = Image::new(PixelFormat::Bgrx, width, height, &[&bgrx[i]], &[w * 4])?;
            Ok(lantern_media::convert::to_i420(
                &image,
                &mut out.view_mut(),
            )?)
        })?),
    );
    let reference = out.clone();
    put(
        "nv12_libyuv_ms",
        json!(time(&mut |i| {
            let (y, uv) = nv12[i].split_at(w * height as usize);
            let image = Image::new(PixelFormat::Nv12, width, height, &[y, uv], &[w, w])?;
            Ok(lantern_media::convert::to_i420(
                &image,
                &mut out.view_mut(),
            )?)
        })?),
    );

    // The `yuv` crate (BGRx only: NV12 is a plane copy for everyone).
    put(
        "bgrx_yuv_crate_ms",
        json!(time(&mut |i| {
            let [(y, ys), (u, us), (v, vs)] = out.planes_mut();
            let mut planar = yuv::YuvPlanarImageMut {
                y_plane: yuv::BufferStoreMut::Borrowed(y),
                y_stride: ys as u32,
                u_plane: yuv::BufferStoreMut::Borrowed(u),
                u_stride: us as u32,
                v_plane: yuv::BufferStoreMut::Borrowed(v),
                v_stride: vs as u32,
                width,
                height,
            };
            yuv::bgra_to_yuv420(
                &mut planar,
                &bgrx[i],
                width * 4,
                yuv::YuvRange::Limited,
                yuv::YuvStandardMatrix::Bt601,
                yuv::YuvConversionMode::Balanced,
            )
            .map_err(|e| anyhow::anyhow!("yuv: {e}"))
        })?),
    );
    put("bgrx_yuv_crate_max_diff", json!(max_diff(&reference, &out)));

    // swscale works on FFmpeg's frames: the sources are made ahead; the scaling and the copy
    // out of FFmpeg's frame (which a pipeline would not need) are timed.
    for (key, format, planes) in [("bgrx", Pixel::BGRZ, &bgrx), ("nv12", Pixel::NV12, &nv12)] {
        let sources: Vec<_> = planes
            .iter()
            .map(|data| ffmpeg_frame(format, width, height, data))
            .collect();
        let mut scaler = scaling::Context::get(
            format,
            width,
            height,
            Pixel::YUV420P,
            width,
            height,
            scaling::Flags::POINT,
        )?;
        let mut scaled = ffmpeg_next::frame::Video::new(Pixel::YUV420P, width, height);
        let ms = time(&mut |i| {
            scaler.run(&sources[i], &mut scaled)?;
            out.view_mut()
                .copy_from(&lantern_media::ffmpeg::image(&scaled)?)?;
            Ok(())
        })?;
        put(&format!("{key}_swscale_ms"), json!(ms));
        if key == "bgrx" {
            put("bgrx_swscale_max_diff", json!(max_diff(&reference, &out)));
        }
    }

    let mut line = serde_json::Map::new();
    line.extend([
        ("role".to_string(), json!("convert")),
        ("width".to_string(), json!(width)),
        ("height".to_string(), json!(height)),
        ("frames".to_string(), json!(frames)),
    ]);
    line.extend(results);
    println!("{}", serde_json::Value::Object(line));
    Ok(())
}

/// The cube as BGRx, through FFmpeg's own I420 → BGR0 (the direction nobody times here).
fn to_bgrx(frame: &Frame) -> anyhow::Result<Vec<u8>> {
    let (w, h) = (frame.width(), frame.height());
    let mut src = ffmpeg_next::frame::Video::new(Pixel::YUV420P, w, h);
    lantern_media::ffmpeg::i420_mut(&mut src)?.copy_from(&frame.image())?;
    let mut dst = ffmpeg_next::frame::Video::empty();
    scaling::Context::get(
        Pixel::YUV420P,
        w,
        h,
        Pixel::BGRZ,
        w,
        h,
        scaling::Flags::POINT,
    )?
    .run(&src, &mut dst)?;
    let mut out = Vec::with_capacity(w as usize * h as usize * 4);
    for row in dst.data(0).chunks(dst.stride(0)).take(h as usize) {
        out.extend_from_slice(&row[..w as usize * 4]);
    }
    Ok(out)
}

/// The cube as NV12: its luma, then U and V interleaved.
fn to_nv12(frame: &Frame) -> Vec<u8> {
    let [(y, _), (u, _), (v, _)] = frame.planes();
    let mut out = y.to_vec();
    out.extend(u.iter().zip(v).flat_map(|(&u, &v)| [u, v]));
    out
}

/// An FFmpeg frame of `format` (BGR0 or NV12) holding `data` (packed rows, planes in order).
fn ffmpeg_frame(format: Pixel, width: u32, height: u32, data: &[u8]) -> ffmpeg_next::frame::Video {
    let mut frame = ffmpeg_next::frame::Video::new(format, width, height);
    let mut rest = data;
    for i in 0..frame.planes() {
        let rows = frame.plane_height(i) as usize;
        let row = if format == Pixel::BGRZ {
            width as usize * 4
        } else {
            width as usize
        };
        let stride = frame.stride(i);
        let (plane, tail) = rest.split_at(row * rows);
        for (r, src) in plane.chunks(row).enumerate() {
            frame.data_mut(i)[r * stride..][..row].copy_from_slice(src);
        }
        rest = tail;
    }
    frame
}

/// The largest difference between two pictures, in luma and in chroma.
fn max_diff(a: &Frame, b: &Frame) -> [u8; 2] {
    let (luma, _) = lantern_proto::yuv::plane_sizes(a.width(), a.height());
    let diff = |x: &[u8], y: &[u8]| {
        x.iter()
            .zip(y)
            .map(|(p, q)| p.abs_diff(*q))
            .max()
            .unwrap_or(0)
    };
    [
        diff(&a.data()[..luma], &b.data()[..luma]),
        diff(&a.data()[luma..], &b.data()[luma..]),
    ]
}
