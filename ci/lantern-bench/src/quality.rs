//! `quality`: how good the pictures a viewer showed were. Reads moq-sub's y4m output (the
//! feeder's stamped cube, decoded), finds each picture's source frame by the number in its
//! stamp, and measures the luma PSNR against it, below the stamp's rows (the stamp is the
//! feeder's own, drawn after the cube). One JSON line at the end: mean and worst-5 % PSNR
//! over the pictures shown.

use std::io::BufReader;

use lantern_proto::histogram::Histogram;
use lantern_proto::stamp::{Layout, Stamp};
use lantern_proto::y4m;
use serde_json::json;

#[derive(clap::Args)]
pub struct Args {
    /// The feeder's frame rate (the cube's cycle depends on it).
    #[arg(long, default_value_t = 60.0)]
    fps: f64,
}

/// PSNR above this is a picture identical to its source: counted as this.
const MAX_DB: f64 = 99.0;

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut reader = y4m::Reader::new(BufReader::with_capacity(1 << 20, std::io::stdin().lock()))?;
    let header = reader.header();
    let format = moq_pub::source::Format {
        width: header.width,
        height: header.height,
        fps: args.fps,
    };
    let cycle = crate::cube_cycle(format)?;
    let skip_rows = 2 * Layout::new(format.width, format.height)?.height();
    let mut frame = reader.new_frame();
    let (mut shown, mut unstamped, mut sum_db) = (0u64, 0u64, 0.0f64);
    // Tenths of a dB, for the percentiles.
    let mut tenths = Histogram::new();
    while reader.read_frame(&mut frame.view_mut())? {
        let Some(stamp) = Stamp::read(&frame.image()) else {
            unstamped += 1;
            continue;
        };
        let source = &cycle[stamp.frame as usize % cycle.len()];
        let db = psnr(&frame.image(), &source.image(), skip_rows);
        shown += 1;
        sum_db += db;
        tenths.record((db * 10.0).round() as u64);
    }
    let db = |q: f64| tenths.quantile(q).map(|t| t as f64 / 10.0);
    println!(
        "{}",
        json!({"role": "quality", "shown": shown, "unstamped": unstamped,
               "psnr_db_mean": (shown > 0).then(|| (sum_db / shown as f64 * 100.0).round() / 100.0),
               "psnr_db_p5": db(0.05), "psnr_db_p50": db(0.5)})
    );
    Ok(())
}

/// Luma PSNR of `a` against `b`, rows from `from` down.
fn psnr(a: &lantern_proto::picture::Image, b: &lantern_proto::picture::Image, from: usize) -> f64 {
    let ((ya, sa), (yb, sb)) = (a.plane(0), b.plane(0));
    let (width, height) = (a.width() as usize, a.height() as usize);
    let mut sse = 0u64;
    for row in from..height {
        let (ra, rb) = (&ya[row * sa..][..width], &yb[row * sb..][..width]);
        sse += ra
            .iter()
            .zip(rb)
            .map(|(&p, &q)| {
                let d = i32::from(p) - i32::from(q);
                (d * d) as u64
            })
            .sum::<u64>();
    }
    let pixels = (width * height.saturating_sub(from)).max(1) as f64;
    let mse = sse as f64 / pixels;
    if mse == 0.0 {
        MAX_DB
    } else {
        (10.0 * (255.0f64 * 255.0 / mse).log10()).min(MAX_DB)
    }
}
