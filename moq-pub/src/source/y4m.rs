//! `--source y4m:PATH`: frames from any y4m stream: a file (read at the stream's rate), or a
//! pipe (`-` for stdin, or a FIFO) from ffmpeg or GStreamer, paced by its producer. Frames are
//! read straight into the encoder's buffer. A frame that already carries a stamp (a feeder's)
//! keeps its capture time; any other is timed on arrival.
//!
//! A pipe is read through `poll`, so a stalled producer can neither hang a stop (the read
//! looks at the cancellation token between polls) nor the stream (no byte for `timeout` is
//! an error that says so).

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use lantern_proto::timing::Pacer;
use lantern_proto::{clock, stamp::Stamp, y4m};
use tokio_util::sync::CancellationToken;

use super::{Canvas, Captured, Format, Source, SyncEpoch};
use crate::Error;

/// Enough for the header lines. Kept small because a frame is read straight into its buffer
/// only when little is buffered ahead of it; a large buffer would copy each frame twice.
const READ_BUFFER: usize = 4096;
/// How often a blocked pipe read looks up to see whether it should stop.
const POLL: Duration = Duration::from_millis(50);

pub struct Y4m {
    path: String,
    reader: y4m::Reader<Box<dyn BufRead + Send>>,
    /// Files are read at the stream's rate; pipes arrive paced by their producer.
    pacer: Option<(Pacer, SyncEpoch)>,
    cancel: CancellationToken,
    timeout: Duration,
}

impl Y4m {
    pub fn open(path: &str, cancel: CancellationToken, timeout: Duration) -> Result<Self, Error> {
        let open = |source| Error::Open {
            path: path.to_string(),
            source,
        };
        let file = if path == "-" {
            File::from(
                std::io::stdin()
                    .as_fd()
                    .try_clone_to_owned()
                    .map_err(open)?,
            )
        } else {
            File::open(path).map_err(open)?
        };
        let regular = file.metadata().map(|m| m.is_file()).unwrap_or(false);
        let input: Box<dyn BufRead + Send> = if regular {
            Box::new(BufReader::with_capacity(READ_BUFFER, file))
        } else {
            widen_pipe(&file);
            let pipe = Pipe {
                file,
                cancel: cancel.clone(),
                timeout,
            };
            Box::new(BufReader::with_capacity(READ_BUFFER, pipe))
        };
        let what = if path == "-" { "stdin" } else { path };
        let reader = y4m::Reader::new(input).map_err(|e| read_error(what, &cancel, timeout, e))?;
        let header = reader.header();
        if lantern_proto::stamp::Layout::new(header.width, header.height).is_err() {
            tracing::warn!(
                width = header.width,
                height = header.height,
                "frames are too small to carry a stamp: latency comes from timestamps only"
            );
        }
        Ok(Self {
            path: what.to_string(),
            pacer: regular.then(|| (Pacer::new(header.fps()), SyncEpoch::now())),
            reader,
            cancel,
            timeout,
        })
    }
}

impl Source for Y4m {
    fn format(&self) -> Format {
        let header = self.reader.header();
        Format {
            width: header.width,
            height: header.height,
            fps: header.fps(),
        }
    }

    fn next(&mut self, canvas: &mut Canvas) -> Result<Option<Captured>, Error> {
        if let Some((pacer, clock)) = &mut self.pacer {
            clock.pace(pacer);
        }
        let frame = canvas.i420();
        match self.reader.read_frame(frame) {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(_) if self.cancel.is_cancelled() => return Ok(None),
            Err(e) => return Err(read_error(&self.path, &self.cancel, self.timeout, e)),
        }
        let stamp = Stamp::read(&frame.image());
        Ok(Some(Captured {
            capture_us: stamp.map_or_else(clock::now_unix_us, |s| s.capture_us),
            stamped: stamp.is_some(),
        }))
    }
}

/// A read error in words: a stall, or a malformed stream.
fn read_error(
    what: &str,
    cancel: &CancellationToken,
    timeout: Duration,
    err: lantern_proto::Error,
) -> Error {
    match err {
        lantern_proto::Error::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => Error::Stalled {
            what: what.to_string(),
            timeout,
        },
        _ if cancel.is_cancelled() => Error::Stopped(what.to_string()),
        source => Error::Format {
            what: what.to_string(),
            source,
        },
    }
}

/// A pipe read through `poll`: a read waits for data at most `timeout` (then fails with
/// `TimedOut`), and fails at once when `cancel` fires.
struct Pipe {
    file: File,
    cancel: CancellationToken,
    timeout: Duration,
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let deadline = Instant::now() + self.timeout;
        loop {
            if self.cancel.is_cancelled() {
                return Err(std::io::Error::other("stopped"));
            }
            let mut fd = libc::pollfd {
                fd: self.file.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd for the duration of the call.
            let ready = unsafe { libc::poll(&mut fd, 1, POLL.as_millis() as i32) };
            if ready > 0 {
                // Readable, or hung up (the read then returns 0: the end of the stream).
                return self.file.read(buf);
            }
            if ready < 0 {
                let err = std::io::Error::last_os_error();
                if err.kind() != std::io::ErrorKind::Interrupted {
                    return Err(err);
                }
            }
            if Instant::now() >= deadline {
                return Err(std::io::ErrorKind::TimedOut.into());
            }
        }
    }
}

/// A pipe holds 64 KiB by default, so a 720p frame crosses it in ~22 pieces, each a sleep and
/// a wake-up on both sides. Ask for 1 MiB (Linux's default ceiling for unprivileged
/// processes); anything that is not a pipe, or a refusal, just keeps the default.
fn widen_pipe(input: &File) {
    // SAFETY: F_SETPIPE_SZ only changes the pipe's capacity; it fails harmlessly on other fds.
    let size = unsafe { libc::fcntl(input.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20) };
    tracing::debug!(size, "input pipe capacity");
}
