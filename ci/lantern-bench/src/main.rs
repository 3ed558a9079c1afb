//! lantern-bench: the measuring parts of `ci/bench` that a shell script cannot do.
//!
//! - `feed`: the stamped cube as y4m on stdout, paced in real time, each frame stamped with
//!   the time it leaves the feeder, so that every path under test is timed from one point.
//! - `encode`: the bare cost of x264 (Lantern's own encoder settings) and of the H.264
//!   decoder on the same frames, in CPU ms per frame; optionally writes the stream out.
//! - `fanout`: many light subscribers on one relay, each timing frame arrival.
//! - `convert`: the capture → I420 conversion by swscale, the `yuv` crate and libyuv.
//! - `app`: the test app, a real Wayland client drawing the stamped cube (host-daemon's).
//!
//! Every subcommand prints one JSON line with its results on stdout (`feed`: on stderr).

mod app;
mod app_input;
mod convert;
mod cpu;
mod encode;
mod fanout;
mod feed;
mod quality;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(version, about)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The stamped cube as y4m on stdout, paced in real time.
    Feed(feed::Args),
    /// The test app: a Wayland client drawing the stamped cube, logging the input it gets.
    App(app::Args),
    /// The capture → I420 conversion, timed for libyuv, the yuv crate and swscale.
    Convert(convert::Args),
    /// The encode and decode floors: CPU per frame for each stage alone.
    Encode(encode::Args),
    /// Many receive-only subscribers to one broadcast, timing each frame's arrival.
    Fanout(fanout::Args),
    /// The PSNR of the pictures a viewer wrote (y4m) against their stamped source frames.
    Quality(quality::Args),
}

fn main() -> std::process::ExitCode {
    // SAFETY: the first thing main does, before any thread starts.
    unsafe { lantern_cli::quiet_svt_log() };
    lantern_cli::init_logging("");
    let result = match Args::parse().command {
        Command::Feed(args) => feed::run(args),
        Command::App(args) => app::run(args),
        Command::Convert(args) => convert::run(args),
        Command::Encode(args) => encode::run(args),
        Command::Fanout(args) => fanout::run(args),
        Command::Quality(args) => quality::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("lantern-bench: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `WIDTHxHEIGHT`.
#[derive(Clone, Copy, Debug)]
pub struct Size {
    pub width: u32,
    pub height: u32,
}

impl std::str::FromStr for Size {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parse = |v: &str| v.parse::<u32>().ok();
        match s.split_once('x').map(|(w, h)| (parse(w), parse(h))) {
            Some((Some(width), Some(height))) => Ok(Self { width, height }),
            _ => Err(format!("{s:?} is not WIDTHxHEIGHT")),
        }
    }
}

impl Size {
    pub fn format(self, fps: f64) -> moq_pub::source::Format {
        moq_pub::source::Format {
            width: self.width,
            height: self.height,
            fps,
        }
    }
}

/// One rotation of the cube, rendered ahead so that feeding costs only a stamp and a write.
pub fn cube_cycle(
    format: moq_pub::source::Format,
) -> anyhow::Result<Vec<lantern_proto::yuv::Frame>> {
    let cube = moq_pub::source::Cube::new(format)?;
    let count = (moq_pub::source::ROTATION_SECS * format.fps)
        .round()
        .max(1.0) as u32;
    (0..count)
        .map(|n| {
            let mut frame = lantern_proto::yuv::Frame::new(format.width, format.height)?;
            cube.render(n, &mut frame.view_mut())?;
            Ok(frame)
        })
        .collect()
}

/// Real-time pacing at a frame rate, from when it is made.
pub struct Paced {
    pacer: lantern_proto::timing::Pacer,
    clock: moq_pub::source::SyncEpoch,
}

impl Paced {
    pub fn new(fps: f64) -> Self {
        Self {
            pacer: lantern_proto::timing::Pacer::new(fps),
            clock: moq_pub::source::SyncEpoch::now(),
        }
    }

    pub fn wait(&mut self) {
        self.clock.pace(&mut self.pacer);
    }
}
