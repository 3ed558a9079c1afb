//! `feed`: the stamped cube as y4m on stdout at a real-time pace. Each frame is stamped with
//! its number and the current time just before it is written, so latency is measured from
//! the moment a frame leaves the feeder, whatever path it then takes.

use std::io::{BufWriter, ErrorKind};
use std::time::Duration;

use lantern_proto::{clock, stamp::Stamp, y4m};
use serde_json::json;

use crate::{Paced, Size};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value = "1280x720")]
    size: Size,
    #[arg(long, default_value_t = 60.0)]
    fps: f64,
    /// How many frames to send.
    #[arg(long)]
    frames: u32,
    /// Wait this long after the y4m header before the first frame, so that subscribers that
    /// start with the publisher see the stream from its first keyframe.
    #[arg(long, default_value_t = 0.0, value_name = "SECONDS")]
    delay: f64,
    /// Write frames as fast as the reader takes them (for making test files).
    #[arg(long)]
    unpaced: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let format = args.size.format(args.fps);
    let mut cycle = crate::cube_cycle(format)?;
    let header = y4m::Header {
        width: format.width,
        height: format.height,
        rate: ((args.fps * 1000.0).round() as u32, 1000),
    };
    // Every path reads the same wide pipe (moq-pub would widen it itself; ffmpeg would not).
    // SAFETY: F_SETPIPE_SZ only changes a pipe's capacity; on anything else it fails harmlessly.
    unsafe { libc::fcntl(1, libc::F_SETPIPE_SZ, 1 << 20) };
    let stdout = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let mut writer = y4m::Writer::new(stdout, header)?;
    writer.flush()?;
    std::thread::sleep(Duration::from_secs_f64(args.delay.max(0.0)));
    let mut pacer = Paced::new(args.fps);
    let mut sent = 0u32;
    let mut closed = false;
    for n in 0..args.frames {
        if !args.unpaced {
            pacer.wait();
        }
        let len = cycle.len();
        let frame = &mut cycle[n as usize % len];
        Stamp {
            frame: n,
            capture_us: clock::now_unix_us(),
        }
        .write(&mut frame.view_mut())?;
        match writer
            .write_frame(&frame.image())
            .and_then(|()| writer.flush())
        {
            Ok(()) => sent += 1,
            Err(lantern_proto::Error::Io(e)) if e.kind() == ErrorKind::BrokenPipe => {
                closed = true;
                break;
            }
            Err(e) => return Err(e.into()),
        }
    }
    eprintln!(
        "{}",
        json!({"role": "feed", "width": format.width, "height": format.height, "fps": args.fps,
               "sent": sent, "reader_closed": closed})
    );
    Ok(())
}
