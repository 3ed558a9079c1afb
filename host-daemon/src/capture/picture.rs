//! The session's picture, captured by a process of the session's own account, so that root
//! is never a client of the session's compositor or PipeWire: their messages are parsed, and
//! their buffers read, by a process with nothing more than the session already has.
//!
//! `host-daemon picture-capture` (hidden; the session starts it as its user, in its cgroup)
//! runs the capture the daemon would otherwise run itself ([`Screencopy`] or
//! [`PipeWireVideo`]), and converts each picture into a slot of a ring the daemon made: a
//! memory file of [`SLOTS`] I420 pictures, sealed so that nobody can shrink it under the
//! daemon's mapping. The ring is the helper's stdin. Its stdout is a Unix socket, on which it
//! says hello (the pictures' size) once its capture is open, then tells of every slot it
//! filled; the daemon hands a slot back by writing its number once it has copied it out.
//!
//! The daemon reads the helper as any input from the session: a size the ring cannot hold, a
//! slot the helper does not hold, a capture time far from the daemon's clock and counts that
//! go back are refused or replaced, and a helper that tells of nothing for [`SILENT`] after
//! its first picture has stopped (a still screen is sent again every
//! [`REPEAT_AFTER`](super::REPEAT_AFTER); before the first, it has the session's start-up
//! deadline, as an app can be slow to draw). The
//! one conversion happens in the helper; the daemon copies the I420 picture out once. A
//! helper that scribbles into a slot while it is copied spoils only its own picture.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lantern_proto::clock::now_unix_us;
use lantern_proto::picture::{I420Mut, Image};
use moq_pub::source::{Canvas, Captured, Format, Source};
use tokio_util::sync::CancellationToken;

use super::{Capture, Meter, PipeWireVideo, Screencopy};
use crate::Error;

/// Pictures in the ring: one being filled, one being copied out, one ready between them.
pub const SLOTS: usize = 3;
/// A helper that tells of no picture for this long, once it has sent its first, has stopped.
pub const SILENT: Duration = Duration::from_secs(5);
/// Every message from the helper has this many bytes.
const MESSAGE: usize = 40;
/// The first message: the pictures' width and height.
const HELLO: u8 = b'H';
/// Every other: a slot filled.
const PICTURE: u8 = b'P';
/// A picture's flags: a new one (rather than the last one again), already stamped.
const NEW: u8 = 1;
const STAMPED: u8 = 2;
/// The largest picture a PipeWire node's ring holds (8K; a compositor's ring holds its
/// output's size). The memory is only used as far as the pictures fill it.
const LARGEST: (u32, u32) = (7680, 4320);
/// The furthest a picture's capture time may be from the daemon's clock before the daemon's
/// clock is taken instead.
const CLOCK_SLACK_US: u64 = 10_000_000;
/// The longest conversion a helper may report.
const LONGEST_US: u64 = 10_000_000;
/// The most messages read at one wake-up: a legitimate helper tells of at most [`SLOTS`]
/// between two pictures, and one that floods the socket must not keep the daemon reading.
const MOST_AT_ONCE: usize = 4 * SLOTS;

/// Bytes of one I420 picture (`None` for a size 4:2:0 cannot take).
fn slot_bytes(width: u32, height: u32) -> Option<usize> {
    lantern_proto::yuv::validate(width, height).ok()?;
    Some(width as usize * height as usize * 3 / 2)
}

/// Where the planes of a `width`×`height` picture lie in a slot: Y, then U, then V, packed.
fn plane_sizes(width: u32, height: u32) -> (usize, usize) {
    let luma = width as usize * height as usize;
    (luma, luma / 4)
}

/// The ring, as the daemon makes it for a capture of `capture` at `format`.
pub struct Ring {
    file: std::fs::File,
}

impl Ring {
    pub fn new(capture: &Capture, format: Format) -> Result<Self, Error> {
        let (width, height) = match capture {
            Capture::Compositor(_) => (format.width, format.height),
            Capture::PipeWire(_) => LARGEST,
        };
        let slot = slot_bytes(width, height).ok_or_else(|| {
            Error::Config(format!("a {width}x{height} picture cannot be captured"))
        })?;
        Ok(Self {
            file: crate::wl::sealed_memfd((slot * SLOTS) as u64)?,
        })
    }

    /// A descriptor of the ring, for the helper's stdin.
    pub fn share(&self) -> Result<OwnedFd, Error> {
        self.file
            .try_clone()
            .map(OwnedFd::from)
            .map_err(|e| Error::io("sharing the picture's ring", e))
    }
}

/// The helper: open the capture of `capture` at `path` (the compositor's socket, or the
/// session's PipeWire), then fill the ring on stdin and tell the daemon on stdout, until the
/// daemon goes or the capture ends.
pub fn serve(
    capture: &Capture,
    path: &Path,
    format: Format,
    cursor: bool,
    timeout: Duration,
) -> Result<(), Error> {
    let ring = std::fs::File::from(stdio(std::io::stdin().as_fd(), "stdin")?);
    let mut socket = UnixStream::from(stdio(std::io::stdout().as_fd(), "stdout")?);
    // SAFETY: the daemon sealed the file against shrinking, so the mapping stays backed.
    let mut map = unsafe { memmap2::MmapMut::map_mut(&ring) }
        .map_err(|e| Error::io("mapping the daemon's ring", e))?;
    let meter = Arc::new(Meter::default());
    let never = CancellationToken::new();
    let mut source: Box<dyn Source> = match capture {
        Capture::Compositor(buffers) => Box::new(Screencopy::open(
            path,
            format,
            *buffers,
            cursor,
            meter.clone(),
            never,
            timeout,
        )?),
        Capture::PipeWire(node) => Box::new(crate::session::retry(
            "the PipeWire video node",
            timeout,
            &never,
            |left| PipeWireVideo::open(path, node, format.fps, meter.clone(), never.clone(), left),
        )?),
    };
    let Format { width, height, .. } = source.format();
    let slot = slot_bytes(width, height)
        .filter(|bytes| bytes * SLOTS <= map.len())
        .ok_or_else(|| {
            Error::Capture(format!(
                "{width}x{height} pictures are larger than a session takes ({}x{})",
                LARGEST.0, LARGEST.1
            ))
        })?;
    let mut hello = [0u8; MESSAGE];
    hello[0] = HELLO;
    hello[4..8].copy_from_slice(&width.to_le_bytes());
    hello[8..12].copy_from_slice(&height.to_le_bytes());
    if !told(socket.write_all(&hello))? {
        return Ok(());
    }
    let mut free = [true; SLOTS];
    let mut handed_back = [0u8; 64];
    loop {
        let Some(at) = free.iter().position(|free| *free) else {
            // Every slot is the daemon's: wait for one back.
            match socket.read(&mut handed_back) {
                Ok(0) => return Ok(()),
                Ok(n) => {
                    for &slot in &handed_back[..n] {
                        if let Some(free) = free.get_mut(slot as usize) {
                            *free = true;
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io("reading from the daemon", e)),
            }
            continue;
        };
        let (luma, chroma) = plane_sizes(width, height);
        let (y, rest) = map[at * slot..(at + 1) * slot].split_at_mut(luma);
        let (u, v) = rest.split_at_mut(chroma);
        let half = width as usize / 2;
        let picture = I420Mut::new(width, height, [(y, width as usize), (u, half), (v, half)])
            .map_err(|source| Error::Buffer {
                what: "a slot of the ring".into(),
                source,
            })?;
        let Some(captured) = source.next(&mut Canvas::new(picture))? else {
            return Ok(());
        };
        free[at] = false;
        let totals = meter.counts();
        let new = meter.take_new();
        let mut message = [0u8; MESSAGE];
        message[0] = PICTURE;
        message[1] = at as u8;
        message[2] =
            if new.is_some() { NEW } else { 0 } | if captured.stamped { STAMPED } else { 0 };
        message[3] = match totals.buffers.as_ref() {
            "shm" => 1,
            "dmabuf" => 2,
            _ => 0,
        };
        for (i, figure) in [
            captured.capture_us,
            new.unwrap_or(0),
            totals.drops,
            totals.failures,
        ]
        .into_iter()
        .enumerate()
        {
            message[8 + i * 8..16 + i * 8].copy_from_slice(&figure.to_le_bytes());
        }
        if !told(socket.write_all(&message))? {
            return Ok(());
        }
    }
}

/// One of the helper's standard descriptors, as its own.
fn stdio(fd: std::os::fd::BorrowedFd<'_>, name: &str) -> Result<OwnedFd, Error> {
    fd.try_clone_to_owned()
        .map_err(|e| Error::io(format!("the daemon's {name}"), e))
}

/// Whether a write to the daemon went through: `false` once the daemon has gone (the
/// helper's end), an error for anything else.
fn told(written: std::io::Result<()>) -> Result<bool, Error> {
    match written {
        Ok(()) => Ok(true),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            ) =>
        {
            Ok(false)
        }
        Err(e) => Err(Error::io("telling the daemon", e)),
    }
}

/// A slot the helper filled, as it told of it.
#[derive(Clone, Copy, Debug)]
struct Filled {
    slot: usize,
    flags: u8,
    buffers: u8,
    capture_us: u64,
    convert_us: u64,
    drops: u64,
    failures: u64,
}

impl Filled {
    fn parse(message: &[u8; MESSAGE]) -> Self {
        let figure = |i: usize| {
            let at = 8 + i * 8;
            u64::from_le_bytes(message[at..at + 8].try_into().unwrap_or_default())
        };
        Self {
            slot: message[1] as usize,
            flags: message[2],
            buffers: message[3],
            capture_us: figure(0),
            convert_us: figure(1),
            drops: figure(2),
            failures: figure(3),
        }
    }
}

/// The helper's pictures, read in the daemon.
pub struct PipedPicture {
    map: memmap2::Mmap,
    socket: UnixStream,
    format: Format,
    slot: usize,
    /// The slots the helper holds (and may fill); the others wait in `filled` for us.
    lent: [bool; SLOTS],
    filled: VecDeque<Filled>,
    /// A message as far as it has come.
    message: [u8; MESSAGE],
    received: usize,
    /// The helper's counts as last told, which never go back.
    drops: u64,
    failures: u64,
    /// The kind of buffers as last told, passed to the meter when it changes.
    buffers: u8,
    meter: Arc<Meter>,
    cancel: CancellationToken,
    /// How long the helper may tell of nothing: until its first picture, as long as its own
    /// wait for one (an app that is slow to commit), then [`SILENT`].
    silent: Duration,
}

impl PipedPicture {
    /// Wait (up to `timeout`) for the helper on the other end of `socket` to say its capture
    /// is open and how large its pictures are; an error if it ends or says something else.
    pub fn open(
        ring: Ring,
        socket: UnixStream,
        fps: f64,
        meter: Arc<Meter>,
        cancel: CancellationToken,
        timeout: Duration,
    ) -> Result<Self, Error> {
        // SAFETY: the file is sealed against shrinking, so every page of the mapping stays
        // backed whatever the helper does; it may change the bytes as we read them, which
        // spoils only the picture it sends.
        let map = unsafe { memmap2::Mmap::map(&ring.file) }
            .map_err(|e| Error::io("mapping the picture's ring", e))?;
        socket
            .set_nonblocking(true)
            .map_err(|e| Error::io("the picture's capture socket", e))?;
        let mut piped = Self {
            map,
            socket,
            format: Format {
                width: 0,
                height: 0,
                fps,
            },
            slot: 0,
            lent: [true; SLOTS],
            filled: VecDeque::with_capacity(SLOTS),
            message: [0; MESSAGE],
            received: 0,
            drops: 0,
            failures: 0,
            buffers: 0,
            meter,
            cancel,
            silent: timeout.max(SILENT),
        };
        let deadline = Instant::now() + timeout;
        let hello = loop {
            if let Some(message) = piped.receive()? {
                break message;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || piped.cancel.is_cancelled() {
                return Err(Error::Timeout {
                    what: "the session's picture capture to start".into(),
                    timeout,
                });
            }
            piped.wait(left)?;
        };
        let side = |at: usize| u32::from_le_bytes(hello[at..at + 4].try_into().unwrap_or_default());
        let (width, height) = (side(4), side(8));
        piped.slot = slot_bytes(width, height)
            .filter(|bytes| hello[0] == HELLO && bytes * SLOTS <= piped.map.len())
            .ok_or_else(|| {
                Error::Capture(format!(
                    "the session's picture capture offered {width}x{height} pictures, which its \
                     ring cannot hold"
                ))
            })?;
        (piped.format.width, piped.format.height) = (width, height);
        Ok(piped)
    }

    /// The next whole message, if it has come; an error once the helper has ended.
    fn receive(&mut self) -> Result<Option<[u8; MESSAGE]>, Error> {
        loop {
            match self.socket.read(&mut self.message[self.received..]) {
                // A helper that closes with hand-backs unread resets the connection.
                Ok(0) => return Err(Error::CaptureEnded),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    return Err(Error::CaptureEnded);
                }
                Ok(n) => {
                    self.received += n;
                    if self.received == MESSAGE {
                        self.received = 0;
                        return Ok(Some(self.message));
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io("reading the session's picture capture", e)),
            }
        }
    }

    fn wait(&self, left: Duration) -> Result<(), Error> {
        crate::process::readable(self.socket.as_fd(), left.min(Duration::from_millis(50)))
            .map(drop)
            .map_err(|e| Error::io("waiting for the session's picture capture", e))
    }

    /// Take a message about a filled slot; one about a slot the helper does not hold is
    /// counted as a failure and ignored.
    fn accept(&mut self, message: &[u8; MESSAGE]) -> Result<(), Error> {
        if message[0] != PICTURE {
            return Err(Error::Capture(
                "the session's picture capture broke its protocol".into(),
            ));
        }
        let filled = Filled::parse(message);
        match self.lent.get_mut(filled.slot) {
            Some(lent) if *lent => {
                *lent = false;
                self.filled.push_back(filled);
            }
            _ => self.meter.failures(1),
        }
        Ok(())
    }

    /// Give `slot` back to the helper. A helper that does not read them runs out of slots,
    /// which stops only its own pictures.
    fn hand_back(&mut self, slot: usize) {
        self.lent[slot] = true;
        let _ = self.socket.write(&[slot as u8]);
    }

    /// The newest filled slot copied into `canvas`, the older ones handed back unread.
    fn take(&mut self, canvas: &mut Canvas) -> Result<Option<Captured>, Error> {
        let deadline = Instant::now() + self.silent;
        loop {
            if self.cancel.is_cancelled() {
                return Ok(None);
            }
            for _ in 0..MOST_AT_ONCE {
                match self.receive()? {
                    Some(message) => self.accept(&message)?,
                    None => break,
                }
            }
            if let Some(newest) = self.filled.pop_back() {
                if !self.filled.is_empty() {
                    self.meter.drops(self.filled.len() as u64);
                }
                while let Some(stale) = self.filled.pop_front() {
                    self.hand_back(stale.slot);
                }
                let copied = self.copy(newest.slot, canvas);
                self.hand_back(newest.slot);
                copied?;
                self.silent = SILENT;
                return Ok(Some(self.count(&newest)));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Capture(format!(
                    "the session's picture capture sent nothing for {:?}",
                    self.silent
                )));
            }
            self.wait(left)?;
        }
    }

    fn copy(&self, slot: usize, canvas: &mut Canvas) -> Result<(), Error> {
        let Format { width, height, .. } = self.format;
        let (luma, chroma) = plane_sizes(width, height);
        let bytes = &self.map[slot * self.slot..(slot + 1) * self.slot];
        let (y, rest) = bytes.split_at(luma);
        let (u, v) = rest.split_at(chroma);
        let half = width as usize / 2;
        let bad = |source| Error::Buffer {
            what: "a slot of the picture's ring".into(),
            source,
        };
        let image =
            Image::i420(width, height, [(y, width as usize), (u, half), (v, half)]).map_err(bad)?;
        canvas.i420().copy_from(&image).map_err(bad)
    }

    /// The capture's figures for a picture just copied out, and what the encoder is told.
    fn count(&mut self, filled: &Filled) -> Captured {
        let now = now_unix_us();
        let capture_us = match filled.capture_us.abs_diff(now) <= CLOCK_SLACK_US {
            true => filled.capture_us,
            false => now,
        };
        match filled.flags & NEW != 0 {
            true => self.meter.frame(
                now.saturating_sub(capture_us),
                filled.convert_us.min(LONGEST_US),
            ),
            false => self.meter.repeat(),
        }
        if filled.drops > self.drops {
            self.meter.drops(filled.drops - self.drops);
            self.drops = filled.drops;
        }
        if filled.failures > self.failures {
            self.meter.failures(filled.failures - self.failures);
            self.failures = filled.failures;
        }
        if filled.buffers != self.buffers {
            self.buffers = filled.buffers;
            match filled.buffers {
                1 => self.meter.buffers("shm"),
                2 => self.meter.buffers("dmabuf"),
                _ => {}
            }
        }
        Captured {
            capture_us,
            stamped: filled.flags & STAMPED != 0,
        }
    }
}

impl Source for PipedPicture {
    fn format(&self) -> Format {
        self.format
    }

    fn next(&mut self, canvas: &mut Canvas) -> Result<Option<Captured>, moq_pub::Error> {
        self.take(canvas)
            .map_err(|e| moq_pub::Error::Source(Box::new(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORMAT: Format = Format {
        width: 64,
        height: 32,
        fps: 60.0,
    };

    /// The daemon's side, opened on a ring for `FORMAT`, with the helper's side of the socket
    /// and its own mapping of the ring.
    fn opened(hello: (u32, u32)) -> Result<(PipedPicture, UnixStream, memmap2::MmapMut), Error> {
        let ring = Ring::new(&Capture::default(), FORMAT)?;
        // SAFETY: a file of ours, sealed against shrinking.
        let map = unsafe { memmap2::MmapMut::map_mut(&std::fs::File::from(ring.share()?)) }
            .map_err(|e| Error::io("map", e))?;
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let mut message = [0u8; MESSAGE];
        message[0] = HELLO;
        message[4..8].copy_from_slice(&hello.0.to_le_bytes());
        message[8..12].copy_from_slice(&hello.1.to_le_bytes());
        theirs.write_all(&message).unwrap();
        let piped = PipedPicture::open(
            ring,
            ours,
            FORMAT.fps,
            Arc::new(Meter::default()),
            CancellationToken::new(),
            Duration::from_secs(5),
        )?;
        Ok((piped, theirs, map))
    }

    fn filled(slot: u8, flags: u8, capture_us: u64, drops: u64) -> [u8; MESSAGE] {
        let mut message = [0u8; MESSAGE];
        message[..4].copy_from_slice(&[PICTURE, slot, flags, 1]);
        for (i, figure) in [capture_us, 300, drops, 0].into_iter().enumerate() {
            message[8 + i * 8..16 + i * 8].copy_from_slice(&figure.to_le_bytes());
        }
        message
    }

    /// Fill `slot` of the ring with a picture whose every byte is `value`.
    fn paint(map: &mut memmap2::MmapMut, slot: usize, value: u8) {
        let bytes = slot_bytes(FORMAT.width, FORMAT.height).unwrap();
        map[slot * bytes..(slot + 1) * bytes].fill(value);
    }

    fn take(piped: &mut PipedPicture) -> Result<(Captured, u8), moq_pub::Error> {
        let (w, h) = (FORMAT.width as usize, FORMAT.height as usize);
        let mut planes = [vec![0u8; w * h], vec![0u8; w * h / 4], vec![0u8; w * h / 4]];
        let [y, u, v] = &mut planes;
        let picture = I420Mut::new(
            FORMAT.width,
            FORMAT.height,
            [(y, w), (u, w / 2), (v, w / 2)],
        )
        .unwrap();
        let captured = piped.next(&mut Canvas::new(picture))?.unwrap();
        assert!(planes.iter().all(|p| p.iter().all(|b| *b == planes[0][0])));
        Ok((captured, planes[0][0]))
    }

    /// What the helper tells is read as untrusted input: the newest picture wins and the
    /// older ones go back unread, a slot it does not hold is counted and ignored, a capture
    /// time far off is replaced, counts never go back, and its end is the capture's end.
    #[test]
    fn the_helpers_pictures_are_read_as_untrusted_input() {
        let (mut piped, mut helper, mut map) = opened((FORMAT.width, FORMAT.height)).unwrap();
        assert_eq!(piped.format(), FORMAT);
        let now = now_unix_us();
        paint(&mut map, 0, 10);
        paint(&mut map, 1, 20);
        helper.write_all(&filled(0, NEW, now, 5)).unwrap();
        helper.write_all(&filled(1, NEW | STAMPED, now, 7)).unwrap();
        // Not the helper's to fill: slot 1 is told of already, and there is no slot 9.
        helper.write_all(&filled(1, NEW, now, 7)).unwrap();
        helper.write_all(&filled(9, NEW, now, 7)).unwrap();
        let (captured, value) = take(&mut piped).unwrap();
        assert_eq!(value, 20, "the newest picture");
        assert_eq!(
            captured,
            Captured {
                capture_us: now,
                stamped: true
            }
        );
        let mut back = [0u8; 8];
        let n = helper.read(&mut back).unwrap();
        assert_eq!(
            &back[..n],
            &[0, 1],
            "the older slot first, unread, then the one copied"
        );
        let stats = piped.meter.total();
        assert_eq!((stats.frames, stats.drops, stats.failures), (1, 8, 2));
        assert_eq!(stats.buffers, "shm");
        // A repeat, with a capture time from nowhere and a count gone back.
        paint(&mut map, 2, 30);
        helper.write_all(&filled(2, 0, u64::MAX, 1)).unwrap();
        let (captured, value) = take(&mut piped).unwrap();
        assert_eq!(value, 30);
        assert!(captured.capture_us.abs_diff(now) < CLOCK_SLACK_US);
        let stats = piped.meter.total();
        assert_eq!((stats.frames, stats.repeats, stats.drops), (1, 1, 8));
        // Half a message, then the helper ends.
        helper.write_all(&filled(0, NEW, now, 0)[..10]).unwrap();
        drop(helper);
        let err = take(&mut piped).unwrap_err();
        assert!(crate::error::capture_ended(&err), "{err:?}");
    }

    /// Whatever bytes a helper sends after its hello (here, seeded noise shaped like its
    /// messages, and raw noise), the daemon never panics, never takes a slot twice, and ends
    /// with an error once the helper is gone.
    #[test]
    fn noise_from_a_helper_is_survived() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut all = 0;
        for round in 0..200 {
            let (mut piped, mut helper, _map) = opened((FORMAT.width, FORMAT.height)).unwrap();
            let mut bytes = Vec::new();
            for _ in 0..rng.u8(..16) {
                let mut message = [0u8; MESSAGE];
                rng.fill(&mut message);
                if round % 2 == 0 {
                    // Shaped: a picture message, its slot often one that exists.
                    message[0] = PICTURE;
                    message[1] %= 4;
                }
                bytes.extend_from_slice(&message);
            }
            bytes.truncate(bytes.len().saturating_sub(rng.usize(..3)));
            helper.write_all(&bytes).unwrap();
            drop(helper);
            let mut pictures = 0;
            while take(&mut piped).is_ok() {
                pictures += 1;
                assert!(pictures <= 16, "more pictures than were told of");
            }
            let stats = piped.meter.total();
            assert!(stats.frames + stats.repeats == pictures, "round {round}");
            all += pictures;
        }
        // Told of all at once, a round's pictures are mostly handed back for the newest: a
        // picture or two a shaped round.
        assert!(
            all > 10,
            "the shaped noise was taken for pictures too: {all}"
        );
    }

    /// A size the ring cannot hold, a size 4:2:0 cannot take, something other than a hello,
    /// or no hello at all: the capture does not open.
    #[test]
    fn a_helper_that_offers_what_the_ring_cannot_hold_is_refused() {
        for size in [(FORMAT.width * 2, FORMAT.height), (63, 32), (0, 0)] {
            let err = opened(size).err().unwrap();
            assert!(
                err.to_string().contains("ring cannot hold"),
                "{size:?}: {err}"
            );
        }
        let ring = Ring::new(&Capture::default(), FORMAT).unwrap();
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        theirs.write_all(&filled(0, NEW, 0, 0)).unwrap();
        let open = |ring, ours, wait| {
            PipedPicture::open(
                ring,
                ours,
                60.0,
                Arc::new(Meter::default()),
                CancellationToken::new(),
                wait,
            )
        };
        assert!(open(ring, ours, Duration::from_secs(5)).is_err());
        let ring = Ring::new(&Capture::default(), FORMAT).unwrap();
        let (ours, _silent) = UnixStream::pair().unwrap();
        let err = open(ring, ours, Duration::from_millis(50)).err().unwrap();
        assert!(matches!(err, Error::Timeout { .. }), "{err}");
    }
}
