//! `quality`: how good the pictures a viewer showed were. Reads moq-sub's y4m output (the
//! feeder's stamped cube, decoded), finds each picture's source frame by the number in its
//! stamp, and measures the luma PSNR against it, below the stamp's rows (the stamp is the
//! feeder's own, drawn after the cube). Two views, one JSON line at the end:
//! - `psnr_db_*`: each picture shown against its own source frame;
//! - `screen_psnr_db_*` (Salsify's): for every source frame since the first shown, the
//!   picture on the screen while it was the newest (the last one shown before it, when it
//!   was skipped) against it, so a stream that skips frames pays for the ones it skipped.
//!
//! The pipe is read on a thread of its own into a buffer of [`BUFFERED`] pictures, so the
//! viewer writing it never waits for the meter's work (rendering the cube's cycle at the
//! start, a burst of skipped frames' PSNR): a viewer held up by its output would show its
//! pictures late and report the wait as a queue on its path.

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

/// Pictures read ahead of the meter: two seconds at 60 fps.
const BUFFERED: usize = 120;

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut reader = y4m::Reader::new(BufReader::with_capacity(1 << 20, std::io::stdin()))?;
    let header = reader.header();
    let (pictures, received) = std::sync::mpsc::sync_channel(BUFFERED);
    let reading = std::thread::spawn(move || -> anyhow::Result<()> {
        loop {
            let mut frame = reader.new_frame();
            if !reader.read_frame(&mut frame.view_mut())? || pictures.send(frame).is_err() {
                return Ok(());
            }
        }
    });
    let format = moq_pub::source::Format {
        width: header.width,
        height: header.height,
        fps: args.fps,
    };
    let cycle = crate::cube_cycle(format)?;
    let skip_rows = 2 * Layout::new(format.width, format.height)?.height();
    let mut on_screen: Option<lantern_proto::yuv::Frame> = None;
    let mut previous: Option<u32> = None;
    let (mut shown_db, mut screen_db) = (Meter::default(), Meter::default());
    let mut unstamped = 0u64;
    for frame in received {
        let Some(stamp) = Stamp::read(&frame.image()) else {
            unstamped += 1;
            continue;
        };
        let source = |n: u32| cycle[n as usize % cycle.len()].image();
        // The source frames the previous picture stood in for, up to this one (a jump
        // beyond MAX_GAP is a new source, not frames skipped).
        if let (Some(last), Some(on_screen)) = (previous, &on_screen)
            && stamp.frame > last
            && stamp.frame - last <= MAX_GAP
        {
            for n in last + 1..stamp.frame {
                screen_db.record(psnr(&on_screen.image(), &source(n), skip_rows));
            }
        }
        let db = psnr(&frame.image(), &source(stamp.frame), skip_rows);
        shown_db.record(db);
        screen_db.record(db);
        previous = Some(stamp.frame);
        on_screen = Some(frame);
    }
    reading
        .join()
        .map_err(|_| anyhow::anyhow!("the pipe's reader panicked"))??;
    println!(
        "{}",
        json!({"role": "quality", "shown": shown_db.count, "unstamped": unstamped,
               "psnr_db_mean": shown_db.mean(), "psnr_db_p5": shown_db.quantile(0.05),
               "psnr_db_p50": shown_db.quantile(0.5),
               "screen_frames": screen_db.count, "screen_psnr_db_mean": screen_db.mean(),
               "screen_psnr_db_p5": screen_db.quantile(0.05)})
    );
    Ok(())
}

/// The most source frames one picture is taken to have stood in for (10 s at 60 fps).
const MAX_GAP: u32 = 600;

/// PSNR figures in bounded memory.
#[derive(Default)]
struct Meter {
    count: u64,
    sum: f64,
    /// Tenths of a dB, for the percentiles.
    tenths: Histogram,
}

impl Meter {
    fn record(&mut self, db: f64) {
        self.count += 1;
        self.sum += db;
        self.tenths.record((db * 10.0).round() as u64);
    }

    fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| (self.sum / self.count as f64 * 100.0).round() / 100.0)
    }

    fn quantile(&self, q: f64) -> Option<f64> {
        self.tenths.quantile(q).map(|t| t as f64 / 10.0)
    }
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
