//! Recording a broadcast as it arrives: its tracks copied, never re-encoded, into fragmented
//! MP4 (moq-mux's fMP4 export: an init segment, then a moof+mdat every [`FRAGMENT`] or at
//! each keyframe). Each fragment is written whole as soon as it is complete, so the file plays
//! while it grows and a recorder killed at any moment leaves every fragment before the one it
//! was writing intact.
//!
//! A broadcast that goes away (its relay restarted, the path dropped) and comes back is
//! recorded on into the same file when it is the same stream (the same clock in its catalog,
//! the same init segment), what was written already not twice; a publisher that restarted (a
//! new clock, or without one, time going back) or changed its settings goes on in a new part
//! beside the first: `match.mp4`, then `match.2.mp4`, …
//!
//! Each part starts at time zero: the broadcast's own clock (time since its publisher
//! started) is moved back by the moment the recording began.

mod fmp4;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use moq_mux::catalog::Stream as _;
use moq_mux::container::fmp4::{Chunk, Export};
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use crate::Error;

/// The longest a fragment runs before it is written: what a kill can cost at most, beyond
/// the fragment being written.
pub const FRAGMENT: Duration = Duration::from_millis(200);
/// How far the recorder may fall behind the live edge before it skips ahead (a disk slower
/// than the stream): far more than a player would wait, since a recording wants every frame.
const MAX_AGE: Duration = Duration::from_secs(10);
/// How far behind the live edge an export begins after one that wrote nothing new: it read
/// again what was written and failed where the last did (a frame moq-mux cannot put in MP4),
/// so the next starts past that place, leaving a hole rather than ending the recording.
const SKIP_AHEAD: Duration = Duration::from_secs(1);
/// How long one look for a broadcast that went away may take, and how soon it is looked for
/// again.
const LOOK: Duration = Duration::from_secs(3);
const LOOK_AGAIN: Duration = Duration::from_millis(200);
/// After the caller stops, how long fragments on their way are still written.
const DRAIN: Duration = Duration::from_millis(400);

/// Which renditions to record: by track name, or every one of a kind (`None`).
#[derive(Clone, Debug, Default)]
pub struct Selection {
    pub video: Option<String>,
    pub audio: Option<String>,
}

/// What a recorder has written so far, read while it runs (for stats lines).
#[derive(Debug, Default)]
pub struct Progress {
    bytes: AtomicU64,
    fragments: AtomicU64,
    /// The longest track's media time written, in milliseconds.
    media_ms: AtomicU64,
    /// Fragments left out: not whole, or of a track the part's init segment lacks.
    left_out: AtomicU64,
}

impl Progress {
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
    pub fn fragments(&self) -> u64 {
        self.fragments.load(Ordering::Relaxed)
    }
    pub fn media_seconds(&self) -> f64 {
        self.media_ms.load(Ordering::Relaxed) as f64 / 1000.0
    }
    pub fn left_out(&self) -> u64 {
        self.left_out.load(Ordering::Relaxed)
    }
}

/// A finished recording: the files written, in order.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Summary {
    pub parts: Vec<PathBuf>,
    pub bytes: u64,
    pub fragments: u64,
    pub media_seconds: f64,
    /// Fragments that could not go in the file (see [`Progress`]); a warning said why.
    pub left_out: u64,
}

/// A recording file, open and empty, waiting for [`Recorder::run`].
pub struct Recorder {
    base: PathBuf,
    parts: Vec<PathBuf>,
    file: tokio::fs::File,
    progress: Arc<Progress>,
    /// The init segment the current part began with, and the part's timeline.
    init: Option<Bytes>,
    timeline: Option<fmp4::Timeline>,
    /// The export was restarted: the next fragment is checked against this part.
    rejoined: bool,
    /// The clock of the stream the current part holds, and of the one being read.
    part_clock: Option<moq_net::Timestamp>,
    clock: StreamClock,
    /// Media in earlier parts (so progress keeps counting across parts).
    earlier: Duration,
}

impl Recorder {
    /// Create (or truncate) the file at `path`: a path that cannot be written is refused
    /// here, before anything plays.
    pub async fn create(path: &Path) -> Result<Self, Error> {
        let file = create(path).await?;
        Ok(Self {
            base: path.to_path_buf(),
            parts: vec![path.to_path_buf()],
            file,
            progress: Arc::default(),
            init: None,
            timeline: None,
            rejoined: false,
            part_clock: None,
            clock: StreamClock::default(),
            earlier: Duration::ZERO,
        })
    }

    /// Record broadcast `name` from `origin` on a task of its own (see [`Recorder::run`])
    /// until [`Recording::stop`].
    pub fn start(
        self,
        origin: moq_net::origin::Consumer,
        name: String,
        selection: Selection,
    ) -> Recording {
        let stop = CancellationToken::new();
        let progress = self.progress.clone();
        let token = stop.clone();
        let task = tokio::spawn(async move { self.run(origin, &name, selection, token).await });
        Recording {
            task,
            stop,
            progress,
        }
    }

    /// Record broadcast `name` from `origin` until `stop`, waiting for it whenever it is
    /// not there (before it starts, and after it went away). Ends with an error only when
    /// the file cannot be written (a full disk), said at once through tracing: the caller
    /// plays or publishes on, and may end with it.
    async fn run(
        self,
        origin: moq_net::origin::Consumer,
        name: &str,
        selection: Selection,
        stop: CancellationToken,
    ) -> Result<Summary, Error> {
        let result = self.record(origin, name, selection, stop).await;
        match &result {
            Ok(summary) => tracing::info!(
                parts = ?summary.parts,
                bytes = summary.bytes,
                seconds = summary.media_seconds,
                "recorded"
            ),
            Err(err) => {
                let cause = std::error::Error::source(err).map(ToString::to_string);
                tracing::error!(%err, cause, "recording stopped");
            }
        }
        result
    }

    async fn record(
        mut self,
        origin: moq_net::origin::Consumer,
        name: &str,
        selection: Selection,
        stop: CancellationToken,
    ) -> Result<Summary, Error> {
        let mut max_age = MAX_AGE;
        loop {
            let export = tokio::select! {
                () = stop.cancelled() => return self.finish().await,
                export = export(&origin, name, &selection, max_age) => export,
            };
            let mut export = match export {
                Ok((export, clock)) => {
                    self.clock = clock;
                    export
                }
                Err(why) => {
                    tracing::debug!(%why, "recording: the broadcast is not there (yet)");
                    tokio::select! {
                        () = stop.cancelled() => return self.finish().await,
                        () = tokio::time::sleep(LOOK_AGAIN) => continue,
                    }
                }
            };
            let written = self.progress.fragments();
            loop {
                let chunk = tokio::select! {
                    () = stop.cancelled() => {
                        // What is already on its way is still written, for a moment: a live
                        // broadcast never runs dry.
                        let deadline = tokio::time::Instant::now() + DRAIN;
                        while let Ok(Ok(Some(chunk))) =
                            tokio::time::timeout_at(deadline, export.next_chunk()).await
                        {
                            self.write(chunk).await?;
                        }
                        return self.finish().await;
                    }
                    chunk = export.next_chunk() => chunk,
                };
                match chunk {
                    Ok(Some(chunk)) => self.write(chunk).await?,
                    Ok(None) => break,
                    Err(why) => {
                        tracing::info!(%why, "recording: the broadcast went away; waiting for it");
                        break;
                    }
                }
            }
            self.rejoined = self.init.is_some();
            if self.progress.fragments() == written {
                tracing::info!(
                    "recording: nothing new came before the broadcast ended; going on from \
                     its live edge"
                );
                max_age = SKIP_AHEAD;
            } else {
                max_age = MAX_AGE;
            }
            // An export that ends at once each time (an error while the broadcast goes on)
            // is begun again at a walk, not in a spin.
            tokio::select! {
                () = stop.cancelled() => return self.finish().await,
                () = tokio::time::sleep(LOOK_AGAIN) => {}
            }
        }
    }

    async fn write(&mut self, chunk: Chunk) -> Result<(), Error> {
        match chunk {
            Chunk::Init(init) => match &self.init {
                None => {
                    self.append(&init).await?;
                    self.timeline = Some(fmp4::Timeline::new(&init));
                    self.init = Some(init);
                }
                Some(same) if *same == init => {}
                Some(_) => self.next_part(init).await?,
            },
            Chunk::Fragment(fragment) => {
                let fragment = fmp4::Fragment::new(
                    fragment.data.to_vec(),
                    fragment.duration,
                    fragment.independent,
                );
                let Some(timeline) = self.timeline.as_ref().filter(|t| t.knows(&fragment)) else {
                    self.leave_out();
                    return Ok(());
                };
                if self.rejoined {
                    let restarted = match (self.part_clock, self.clock.get()) {
                        (Some(part), Some(now)) => part != now,
                        // A catalog without a clock: time going back on a fragment not taken
                        // already (the first one after the broadcast came back tells).
                        _ if timeline.seen(&fragment) => return Ok(()),
                        _ => timeline.goes_back(&fragment),
                    };
                    self.rejoined = false;
                    if restarted {
                        let init = self.init.clone().unwrap_or_default();
                        self.next_part(init).await?;
                    }
                }
                let Some(timeline) = self.timeline.as_mut() else {
                    return Ok(());
                };
                if !timeline.is_new(&fragment) {
                    return Ok(());
                }
                if self.part_clock.is_none() {
                    self.part_clock = self.clock.get();
                }
                let fresh = timeline.length().is_zero();
                let ready = timeline.push(fragment);
                if fresh && !ready.is_empty() {
                    self.tell_start();
                }
                self.append_fragments(ready).await?;
            }
        }
        Ok(())
    }

    /// Say what the part's start left out, if anything: a track that began after the first
    /// keyframe (see [`fmp4::Timeline`]) costs the recording its first moments.
    fn tell_start(&self) {
        let left_out = self
            .timeline
            .as_ref()
            .map_or(Duration::ZERO, fmp4::Timeline::left_out_at_start);
        if !left_out.is_zero() {
            tracing::info!(
                seconds = left_out.as_secs_f64(),
                "recording: begins at the first keyframe after every track had started; what \
                 came before is left out"
            );
        }
    }

    /// Count a fragment that cannot go in the part (see [`fmp4::Timeline::knows`]), and
    /// say so once: written, it would leave the whole file unreadable.
    fn leave_out(&self) {
        if self.progress.left_out.fetch_add(1, Ordering::Relaxed) == 0 {
            tracing::warn!(
                "recording: a fragment of a track this part's header does not describe is \
                 left out (the broadcast changed its tracks); later ones are only counted"
            );
        }
    }

    async fn append_fragments(&mut self, fragments: Vec<fmp4::Fragment>) -> Result<(), Error> {
        for fragment in &fragments {
            self.append(&fragment.data).await?;
            self.progress.fragments.fetch_add(1, Ordering::Relaxed);
        }
        let part = self
            .timeline
            .as_ref()
            .map_or(Duration::ZERO, |t| t.length());
        let ms = (self.earlier + part).as_millis() as u64;
        self.progress.media_ms.store(ms, Ordering::Relaxed);
        Ok(())
    }

    /// Close the current part and go on in the next, beginning with `init`.
    async fn next_part(&mut self, init: Bytes) -> Result<(), Error> {
        let path = part(&self.base, self.parts.len() + 1);
        tracing::info!(
            path = %path.display(),
            "recording: the broadcast came back as a new stream; going on in a new part"
        );
        self.close_part().await?;
        self.file = create(&path).await?;
        self.parts.push(path);
        self.part_clock = None;
        self.earlier = Duration::from_millis(self.progress.media_ms.load(Ordering::Relaxed));
        self.append(&init).await?;
        self.timeline = Some(fmp4::Timeline::new(&init));
        self.init = Some(init);
        Ok(())
    }

    async fn append(&mut self, data: &[u8]) -> Result<(), Error> {
        let failed = |source| Error::Record {
            path: self.parts.last().cloned().unwrap_or_default(),
            source,
        };
        // Written through at once: a reader sees whole fragments, a kill loses none of them.
        if let Err(e) = self.file.write_all(data).await {
            return Err(failed(e));
        }
        if let Err(e) = self.file.flush().await {
            return Err(failed(e));
        }
        self.progress
            .bytes
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Write what the current part still holds, and put it on disk.
    async fn close_part(&mut self) -> Result<(), Error> {
        let held = self.timeline.as_mut().map(fmp4::Timeline::flush);
        self.append_fragments(held.unwrap_or_default()).await?;
        let path = self.parts.last().cloned().unwrap_or_default();
        self.file
            .sync_data()
            .await
            .map_err(|source| Error::Record { path, source })
    }

    async fn finish(mut self) -> Result<Summary, Error> {
        self.close_part().await?;
        Ok(Summary {
            parts: self.parts.clone(),
            bytes: self.progress.bytes(),
            fragments: self.progress.fragments(),
            media_seconds: self.progress.media_seconds(),
            left_out: self.progress.left_out(),
        })
    }
}

/// A recorder at work (see [`Recorder::start`]).
pub struct Recording {
    task: tokio::task::JoinHandle<Result<Summary, Error>>,
    stop: CancellationToken,
    progress: Arc<Progress>,
}

impl Recording {
    /// What it has written so far.
    pub fn progress(&self) -> Arc<Progress> {
        self.progress.clone()
    }

    /// Stop (what is on its way is still written, for a moment) and wait for the end.
    pub async fn stop(self) -> Result<Summary, Error> {
        self.stop.cancel();
        self.task
            .await
            .unwrap_or_else(|e| Err(Error::RecorderFailed(e)))
    }
}

/// The clock a broadcast's catalog names (the wall time of its media's time zero), as its
/// export reads the catalog. A publisher keeps it for its stream's life, through relay
/// restarts and redials; one that started over has a new one.
#[derive(Clone, Debug, Default)]
struct StreamClock(Arc<std::sync::Mutex<Option<moq_net::Timestamp>>>);

impl StreamClock {
    fn get(&self) -> Option<moq_net::Timestamp> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A catalog stream that notes each snapshot's clock in a [`StreamClock`] on its way to the
/// export.
struct Clocked<S> {
    catalogs: S,
    clock: StreamClock,
}

impl<S: moq_mux::catalog::Stream> moq_mux::catalog::Stream for Clocked<S> {
    type Ext = S::Ext;

    fn poll_next(
        &mut self,
        waiter: &moq_net::kio::Waiter,
    ) -> std::task::Poll<moq_mux::Result<Option<hang::Catalog<S::Ext>>>> {
        let polled = self.catalogs.poll_next(waiter);
        if let std::task::Poll::Ready(Ok(Some(catalog))) = &polled {
            let wall = catalog.clock.as_ref().map(|clock| clock.wall);
            *self.clock.0.lock().unwrap_or_else(|e| e.into_inner()) = wall;
        }
        polled
    }
}

/// Subscribe to broadcast `name` (once it is there) and its catalog, narrowed to `selection`;
/// the export, and the clock its catalog names.
async fn export(
    origin: &moq_net::origin::Consumer,
    name: &str,
    selection: &Selection,
    max_age: Duration,
) -> Result<(Export<impl moq_mux::catalog::Stream>, StreamClock), String> {
    let look = async {
        origin
            .routed_broadcast(name)
            .await
            .map_err(|e| e.to_string())?;
        let source = moq_mux::Source::new(origin.clone(), name);
        let catalog = source
            .catalog::<()>(moq_mux::catalog::CatalogFormat::Hang)
            .await
            .map_err(|e| e.to_string())?;
        let clock = StreamClock::default();
        let catalog = Clocked {
            catalogs: catalog,
            clock: clock.clone(),
        };
        let catalog = catalog.select(renditions(selection));
        let export = Export::new(source, catalog)
            .with_max_age(max_age)
            .with_fragment_duration(FRAGMENT);
        Ok((export, clock))
    };
    tokio::time::timeout(LOOK, look)
        .await
        .unwrap_or_else(|_| Err("no answer".to_string()))
}

fn renditions(selection: &Selection) -> moq_mux::select::Broadcast {
    use moq_mux::select::{Audio, Broadcast, Video};
    let video = match &selection.video {
        Some(name) => Video::default().name(name.clone()),
        None => Video::default(),
    };
    let audio = match &selection.audio {
        Some(name) => Audio::default().name(name.clone()),
        None => Audio::default(),
    };
    Broadcast::default().video(video).audio(audio)
}

/// Part `n` (from 2) of a recording at `base`: `match.mp4` → `match.2.mp4`.
fn part(base: &Path, n: usize) -> PathBuf {
    let stem = base.file_stem().unwrap_or_default().to_string_lossy();
    let name = match base.extension() {
        Some(ext) => format!("{stem}.{n}.{}", ext.to_string_lossy()),
        None => format!("{stem}.{n}"),
    };
    base.with_file_name(name)
}

/// Create or truncate the file at `path`, never through a symbolic link: a root daemon
/// recording into a directory others can write must not be led to a file of theirs.
async fn create(path: &Path) -> Result<tokio::fs::File, Error> {
    tokio::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .await
        .map_err(|source| Error::Record {
            path: path.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::fmp4::testing::{fragment_bytes, init};
    use super::*;

    /// A fragment of a track the part's init segment does not describe (moq-mux's export
    /// numbers a track anew when the catalog brings it back after it ended) is left out and
    /// counted, and the fragments around it are written.
    #[tokio::test]
    async fn a_fragment_of_a_track_the_header_lacks_is_left_out_and_counted() {
        let path =
            std::env::temp_dir().join(format!("lantern-left-out-{}.mp4", std::process::id()));
        let mut recorder = Recorder::create(&path).await.unwrap();
        let fragment = |track, time| {
            Chunk::Fragment(moq_mux::container::fmp4::Fragment {
                data: fragment_bytes(track, time).into(),
                independent: true,
                duration: Duration::from_millis(100),
            })
        };
        let header = init(&[(1, 60_000), (2, 48_000)]);
        recorder
            .write(Chunk::Init(header.clone().into()))
            .await
            .unwrap();
        for chunk in [
            fragment(1, 0),
            fragment(2, 0),
            fragment(3, 0),
            fragment(1, 6_000),
        ] {
            recorder.write(chunk).await.unwrap();
        }
        let summary = recorder.finish().await.unwrap();
        let written = std::fs::read(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!((summary.fragments, summary.left_out), (3, 1), "{summary:?}");
        let fragments =
            [(1, 0), (2, 0), (1, 6_000)].map(|(track, time)| fragment_bytes(track, time));
        assert_eq!(written, [header, fragments.concat()].concat());
    }

    /// A broadcast that came back with the clock it had is the same stream, recorded on in the
    /// same part though its first fragments go back (read again); one with a new clock is a
    /// publisher that started over, in a new part though its time goes on.
    #[tokio::test]
    async fn the_catalogs_clock_tells_the_same_stream_from_a_new_one() {
        let dir = std::env::temp_dir().join(format!("lantern-clock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("match.mp4");
        let mut recorder = Recorder::create(&path).await.unwrap();
        let video = |time, independent| {
            Chunk::Fragment(moq_mux::container::fmp4::Fragment {
                data: fragment_bytes(1, time).into(),
                independent,
                duration: Duration::from_millis(200),
            })
        };
        let clock = |secs: u64| {
            let wall = moq_net::Timestamp::from_micros(secs * 1_000_000).unwrap();
            StreamClock(Arc::new(std::sync::Mutex::new(Some(wall))))
        };
        recorder.clock = clock(100);
        let header = init(&[(1, 60_000)]);
        recorder
            .write(Chunk::Init(header.clone().into()))
            .await
            .unwrap();
        for (time, independent) in [(600_000, true), (612_000, false), (624_000, false)] {
            recorder.write(video(time, independent)).await.unwrap();
        }
        // The relay restarted; the export begun again reads the group from its keyframe.
        recorder.rejoined = true;
        recorder.clock = clock(100);
        recorder
            .write(Chunk::Init(header.clone().into()))
            .await
            .unwrap();
        for (time, independent) in [(600_000, true), (618_000, false), (636_000, true)] {
            recorder.write(video(time, independent)).await.unwrap();
        }
        assert_eq!(recorder.parts.len(), 1);
        assert_eq!(recorder.progress.fragments(), 4);
        // A publisher that started over, its time after the last.
        recorder.rejoined = true;
        recorder.clock = clock(130);
        recorder.write(video(648_000, true)).await.unwrap();
        let summary = recorder.finish().await.unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(summary.parts, [path, dir.join("match.2.mp4")]);
        assert_eq!(summary.fragments, 5);
    }

    #[test]
    fn parts_are_numbered_beside_the_first() {
        assert_eq!(
            part(Path::new("/r/match.mp4"), 2),
            PathBuf::from("/r/match.2.mp4")
        );
        assert_eq!(part(Path::new("match"), 3), PathBuf::from("match.3"));
    }
}
