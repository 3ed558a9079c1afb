//! The few fields of fragmented MP4 a recording rewrites, found by walking the boxes
//! (ISO/IEC 14496-12): each track's timescale in the init segment, and each track's decode
//! time (`tfdt`) in a fragment, rewritten in place so a recording starts at zero.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

/// How many fragments are held at a part's start while waiting for every track and a video
/// keyframe after them (a GOP's worth of audio packets and video fragments, and more).
const HELD_AT_START: usize = 1024;
/// And how many bytes of them at most (a publisher is a stranger: its fragments can be big).
const HELD_BYTES_AT_START: usize = 64 << 20;

/// How much later than the first video keyframe the other tracks may start for the part to
/// begin at that keyframe anyway (their first moments silent). Beyond it the part begins at
/// the next keyframe: players read a track that starts late as a longer recording.
const LATE_START: Duration = Duration::from_millis(250);
/// How far past the first video keyframe the video may run before the part begins there even
/// though a track has not started yet, or no keyframe has come since it did (a host's sound
/// still coming up on a loaded machine, a publisher whose audio stalled): that track comes in
/// late, its first moments silent, rather than costing the recording its start. Longer than a
/// GOP (2 s by default), so a viewer that joined a group before the live sound still starts
/// at the next keyframe.
const WAIT_FOR_TRACKS: Duration = Duration::from_secs(3);
/// How many of the latest fragments' starts are kept to tell a group read again (an export
/// that came back to a broadcast that never went: it starts at the current group) from a
/// restarted stream: a 10 s GOP's video and audio fragments.
const RECENT: usize = 256;

/// How far a fragment may start before where its track's taken media ends and still be new:
/// a frame's time rounded on the way through two timescales, far under any frame's length.
const SLACK_NS: u128 = 1_000_000;

/// One moof+mdat fragment, owned, with its tracks' decode times.
pub(super) struct Fragment {
    pub data: Vec<u8>,
    /// Each track's decode time; `None` when a track fragment does not say both which track
    /// it is and when it starts (a player could not read it either).
    times: Option<Vec<DecodeTime>>,
    duration: Duration,
    /// It begins with a sync sample (a keyframe; every audio fragment does).
    independent: bool,
}

impl Fragment {
    pub(super) fn new(data: Vec<u8>, duration: Duration, independent: bool) -> Self {
        let times = decode_times(&data);
        Self {
            data,
            times,
            duration,
            independent,
        }
    }

    /// Each track's decode time (none when the fragment is not whole: see `times`).
    fn times(&self) -> impl Iterator<Item = &DecodeTime> {
        self.times.iter().flatten()
    }
}

/// Puts one part's fragments on a timeline that starts at zero, every track together: the
/// part begins at the first video keyframe if every track has started by then (or soon
/// after: [`LATE_START`]), else at the first keyframe after they all have (a viewer joins a
/// video group that began before the live sound it joins at the same moment), or, once the
/// video has run [`WAIT_FOR_TRACKS`] past its first keyframe, at that keyframe anyway; what comes
/// before it is left out, and the broadcast's clock is moved back to it. Fragments wait (a
/// bounded few) until that keyframe is known.
pub(super) struct Timeline {
    tracks: HashMap<u32, Track>,
    /// The video track, whose keyframe starts the part (the first there is).
    video: Option<u32>,
    start_ns: Option<u128>,
    held: Vec<Fragment>,
    /// Where the media written so far ends, on this timeline.
    end_ns: u128,
    /// How much of what arrived before the part's start was left out: known at the first
    /// flush.
    left_out_ns: Option<u128>,
    /// The starts (track, decode time) of the latest fragments taken, at most [`RECENT`].
    recent: VecDeque<(u32, u64)>,
}

#[derive(Clone, Copy, Debug, Default)]
struct Track {
    timescale: u32,
    /// The broadcast's time of its first fragment (ns) and decode time of its latest.
    first_ns: Option<u128>,
    latest: Option<u64>,
    /// Where what was taken of it ends, on the broadcast's clock (ns).
    end_ns: Option<u128>,
    /// A fragment of it that was partly taken already was left out: it goes on at its next
    /// sync sample, so no frame is written whose reference is missing.
    wants_sync: bool,
}

impl Timeline {
    pub(super) fn new(init: &[u8]) -> Self {
        let found = tracks(init);
        let video = found.iter().find(|t| t.video).map(|t| t.id);
        let tracks = found
            .iter()
            .map(|t| {
                let track = Track {
                    timescale: t.timescale,
                    ..Track::default()
                };
                (t.id, track)
            })
            .collect();
        Self {
            tracks,
            video,
            start_ns: None,
            held: Vec::new(),
            end_ns: 0,
            left_out_ns: None,
            recent: VecDeque::new(),
        }
    }

    /// Whether `fragment` goes back in time on one of its tracks: the stream restarted.
    pub(super) fn goes_back(&self, fragment: &Fragment) -> bool {
        fragment.times().any(|at| {
            let latest = self.tracks.get(&at.track).and_then(|t| t.latest);
            latest.is_some_and(|latest| at.time < latest)
        })
    }

    /// Whether `fragment` was taken already: every track of it starts where one of the latest
    /// fragments did. An export that ends while its broadcast goes on (an error on the way)
    /// and is begun again reads the current group from its start: that is no restart, and
    /// what it repeats is not written twice.
    pub(super) fn seen(&self, fragment: &Fragment) -> bool {
        let mut times = fragment.times().peekable();
        times.peek().is_some() && times.all(|at| self.recent.contains(&(at.track, at.time)))
    }

    /// Whether `fragment` is new to this part, and so to be taken. An export begun again on the
    /// same stream (after a relay restart, or an error on the way) reads its current groups
    /// again from their start, and draws its fragments' edges by timing, so they may fall
    /// elsewhere than the first time: a fragment that starts inside what was taken is left
    /// out, whole or in part, and when in part its track goes on at its next sync sample (a
    /// keyframe; every audio packet is one) rather than with frames whose references were left
    /// out. The hole is at most a GOP, and only where the edges did not line up.
    pub(super) fn is_new(&mut self, fragment: &Fragment) -> bool {
        let mut new = true;
        let mut partly = Vec::new();
        for at in fragment.times() {
            let Some(start) = self.ns(at.track, at.time) else {
                continue;
            };
            let Some(track) = self.tracks.get(&at.track) else {
                continue;
            };
            match track.end_ns {
                Some(end) if start + SLACK_NS < end => {
                    new = false;
                    if start + fragment.duration.as_nanos() > end + SLACK_NS {
                        partly.push(at.track);
                    }
                }
                _ if track.wants_sync && !fragment.independent => new = false,
                _ => {}
            }
        }
        for id in partly {
            if let Some(track) = self.tracks.get_mut(&id) {
                track.wants_sync = true;
            }
        }
        new
    }

    /// Whether `fragment` belongs in this part: it names only tracks of the part's init
    /// segment, each with its decode time. moq-mux's export writes its init segment once, yet
    /// numbers a track anew when the catalog brings it back after it ended (at a publisher's
    /// shutdown, a catalog update can land between a track's end and its removal): a fragment
    /// of such a track would make the whole file unreadable to players.
    pub(super) fn knows(&self, fragment: &Fragment) -> bool {
        let Some(times) = &fragment.times else {
            return false;
        };
        !times.is_empty() && times.iter().all(|at| self.tracks.contains_key(&at.track))
    }

    /// Take a fragment; the fragments now ready to write, in order, rebased.
    pub(super) fn push(&mut self, fragment: Fragment) -> Vec<Fragment> {
        for at in fragment.times() {
            let ns = self.ns(at.track, at.time);
            if let Some(track) = self.tracks.get_mut(&at.track) {
                track.latest = Some(at.time);
                track.first_ns = track.first_ns.or(ns);
                let end = ns.map(|ns| ns + fragment.duration.as_nanos());
                track.end_ns = track.end_ns.max(end);
                track.wants_sync = false;
            }
            if self.recent.len() == RECENT {
                self.recent.pop_front();
            }
            self.recent.push_back((at.track, at.time));
        }
        self.held.push(fragment);
        if self.start_ns.is_none() {
            self.start_ns = self.start();
            let bytes: usize = self.held.iter().map(|f| f.data.len()).sum();
            let room = self.held.len() < HELD_AT_START && bytes < HELD_BYTES_AT_START;
            if self.start_ns.is_none() && room {
                return Vec::new();
            }
        }
        self.flush()
    }

    /// Where the part starts, once known (see [`Timeline`]; with no video, where the last
    /// track started).
    fn start(&self) -> Option<u128> {
        let firsts: Option<Vec<u128>> = self.tracks.values().map(|t| t.first_ns).collect();
        let all_started = firsts.and_then(|firsts| firsts.into_iter().max());
        let Some(video) = self.video else {
            return all_started;
        };
        let mut keyframes = self
            .held
            .iter()
            .filter(|f| f.independent)
            .flat_map(Fragment::times)
            .filter(|at| at.track == video)
            .filter_map(|at| self.ns(at.track, at.time));
        let first = keyframes.next()?;
        let after_all = match all_started {
            Some(all) if all <= first + LATE_START.as_nanos() => return Some(first),
            Some(all) => keyframes.find(|ns| *ns >= all),
            None => None,
        };
        let newest = self.tracks.get(&video).and_then(|t| t.latest);
        let waited = newest
            .and_then(|time| self.ns(video, time))
            .is_some_and(|ns| ns >= first + WAIT_FOR_TRACKS.as_nanos());
        after_all.or(waited.then_some(first))
    }

    /// The fragments held, rebased, leaving out what comes before the part's start. When it
    /// is not known (at the end, or too much held), the earliest fragment starts the part.
    pub(super) fn flush(&mut self) -> Vec<Fragment> {
        let held = std::mem::take(&mut self.held);
        let earliest = held
            .iter()
            .flat_map(Fragment::times)
            .filter_map(|at| self.ns(at.track, at.time))
            .min();
        let Some(start) = self.start_ns.or(earliest) else {
            return held;
        };
        let left_out = start.saturating_sub(earliest.unwrap_or(start));
        self.left_out_ns = self.left_out_ns.or(Some(left_out));
        self.start_ns = Some(start);
        let mut ready = Vec::with_capacity(held.len());
        for mut fragment in held {
            let before = fragment
                .times()
                .any(|at| self.ns(at.track, at.time).is_some_and(|ns| ns < start));
            if before {
                continue;
            }
            // The field, not `times()`: the loop rewrites the data beside it.
            for at in fragment.times.iter().flatten() {
                let Some(track) = self.tracks.get(&at.track) else {
                    continue;
                };
                let offset = start * track.timescale as u128 / 1_000_000_000;
                let time = (at.time as u128).saturating_sub(offset) as u64;
                set_decode_time(&mut fragment.data, at, time);
                let end = self.ns(at.track, time).unwrap_or(0) + fragment.duration.as_nanos();
                self.end_ns = self.end_ns.max(end);
            }
            ready.push(fragment);
        }
        ready
    }

    /// How much media this part holds so far.
    pub(super) fn length(&self) -> Duration {
        Duration::from_nanos(self.end_ns.min(u64::MAX as u128) as u64)
    }

    /// How much of what arrived before the part's start was left out (a track that began
    /// after the first keyframe: see [`Timeline`]); zero until the start is known.
    pub(super) fn left_out_at_start(&self) -> Duration {
        let ns = self.left_out_ns.unwrap_or(0);
        Duration::from_nanos(ns.min(u64::MAX as u128) as u64)
    }

    fn ns(&self, track: u32, time: u64) -> Option<u128> {
        let scale = self.tracks.get(&track)?.timescale as u128;
        Some(time as u128 * 1_000_000_000 / scale)
    }
}

/// What the init segment says of one track.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TrackInfo {
    id: u32,
    timescale: u32,
    video: bool,
}

/// Each track in an init segment (ftyp + moov): its id, timescale, and whether it is video.
fn tracks(init: &[u8]) -> Vec<TrackInfo> {
    let mut found = Vec::new();
    for (kind, moov) in boxes(init) {
        if kind != *b"moov" {
            continue;
        }
        for (kind, trak) in boxes(moov) {
            if kind != *b"trak" {
                continue;
            }
            let (mut id, mut timescale, mut video) = (None, None, false);
            for (kind, body) in boxes(trak) {
                match &kind {
                    b"tkhd" => id = after_times(body).and_then(|rest| be_u32(rest, 0)),
                    b"mdia" => {
                        for (kind, body) in boxes(body) {
                            match &kind {
                                b"mdhd" => {
                                    timescale = after_times(body).and_then(|rest| be_u32(rest, 0))
                                }
                                // Full box, pre_defined, then the handler type.
                                b"hdlr" => video = body.get(8..12) == Some(b"vide"),
                                _ => {}
                            }
                        }
                    }
                    _ => {}
                }
            }
            if let (Some(id), Some(timescale)) = (id, timescale.filter(|t| *t > 0)) {
                found.push(TrackInfo {
                    id,
                    timescale,
                    video,
                });
            }
        }
    }
    found
}

/// Where one track's decode time sits in a fragment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct DecodeTime {
    track: u32,
    time: u64,
    /// Offset of the value in the fragment, and whether it is 64 bits wide (else 32).
    at: usize,
    wide: bool,
}

/// The decode time of each track in a moof+mdat fragment; `None` if a track fragment lacks
/// its track id or its decode time.
fn decode_times(fragment: &[u8]) -> Option<Vec<DecodeTime>> {
    let mut found = Vec::new();
    let base = fragment.as_ptr() as usize;
    for (kind, moof) in boxes(fragment) {
        if kind != *b"moof" {
            continue;
        }
        for (kind, traf) in boxes(moof) {
            if kind != *b"traf" {
                continue;
            }
            let mut track = None;
            let mut time = None;
            for (kind, body) in boxes(traf) {
                match &kind {
                    // Full box: version and flags, then the track id.
                    b"tfhd" => track = be_u32(body, 4),
                    b"tfdt" => {
                        let wide = body.first() == Some(&1);
                        let at = body.as_ptr() as usize - base + 4;
                        let value = match wide {
                            true => be_u64(body, 4),
                            false => be_u32(body, 4).map(u64::from),
                        };
                        time = value.map(|time| (time, at, wide));
                    }
                    _ => {}
                }
            }
            let (track, (time, at, wide)) = (track?, time?);
            found.push(DecodeTime {
                track,
                time,
                at,
                wide,
            });
        }
    }
    Some(found)
}

/// Write `time` as `at`'s track decode time (it must fit the field: an earlier time does).
fn set_decode_time(fragment: &mut [u8], at: &DecodeTime, time: u64) {
    match at.wide {
        true => fragment[at.at..at.at + 8].copy_from_slice(&time.to_be_bytes()),
        false => {
            let time = u32::try_from(time).unwrap_or(u32::MAX);
            fragment[at.at..at.at + 4].copy_from_slice(&time.to_be_bytes())
        }
    }
}

/// The boxes in `data`, each its type and its body; a box running past the end ends the walk.
fn boxes(mut data: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    std::iter::from_fn(move || {
        let size = be_u32(data, 0)? as usize;
        let kind: [u8; 4] = data.get(4..8)?.try_into().ok()?;
        let (header, size) = match size {
            0 => (8, data.len()),
            1 => (16, usize::try_from(be_u64(data, 8)?).ok()?),
            size => (8, size),
        };
        let body = data.get(header..size)?;
        data = &data[size..];
        Some((kind, body))
    })
}

/// A full box's body past its version, flags, creation and modification times (32 or 64
/// bits each, by version): where tkhd's track id and mdhd's timescale begin.
fn after_times(body: &[u8]) -> Option<&[u8]> {
    match body.first()? {
        1 => body.get(4 + 16..),
        _ => body.get(4 + 8..),
    }
}

fn be_u32(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

fn be_u64(data: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(data.get(at..at + 8)?.try_into().ok()?))
}

/// Builders of the boxes the tests here and the recorder's read.
#[cfg(test)]
pub(super) mod testing {
    pub fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        out
    }

    pub fn full(version: u8, rest: &[u8]) -> Vec<u8> {
        let mut out = vec![version, 0, 0, 0];
        out.extend_from_slice(rest);
        out
    }

    pub fn traf(track: u32, tfdt: Vec<u8>) -> Vec<u8> {
        let tfhd = boxed(b"tfhd", &full(0, &track.to_be_bytes()));
        boxed(b"traf", &[tfhd, boxed(b"tfdt", &tfdt)].concat())
    }

    /// An init segment with these (track id, timescale) tracks; tkhd and mdhd of version 1
    /// (64-bit times) for even ids, version 0 for odd ones.
    /// Track 1 is video.
    pub fn init(tracks: &[(u32, u32)]) -> Vec<u8> {
        let trak = |&(id, timescale): &(u32, u32)| {
            let version = (id % 2 == 0) as u8;
            let times = vec![0u8; if version == 1 { 16 } else { 8 }];
            let tkhd = [times.clone(), id.to_be_bytes().to_vec()].concat();
            let mdhd = [times, timescale.to_be_bytes().to_vec()].concat();
            let handler: &[u8; 4] = if id == 1 { b"vide" } else { b"soun" };
            let hdlr = full(0, &[&[0u8; 4][..], handler, &[0u8; 12]].concat());
            let mdia = [boxed(b"mdhd", &full(version, &mdhd)), boxed(b"hdlr", &hdlr)];
            let mdia = boxed(b"mdia", &mdia.concat());
            boxed(
                b"trak",
                &[boxed(b"tkhd", &full(version, &tkhd)), mdia].concat(),
            )
        };
        let moov = boxed(b"moov", &tracks.iter().flat_map(trak).collect::<Vec<_>>());
        [boxed(b"ftyp", b"isom"), moov].concat()
    }

    /// A moof (one track fragment of `track` starting at `time`, a 64-bit tfdt) and an mdat.
    pub fn fragment_bytes(track: u32, time: u64) -> Vec<u8> {
        let moof = boxed(b"moof", &traf(track, full(1, &time.to_be_bytes())));
        [moof, boxed(b"mdat", b"x")].concat()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    fn fragment(track: u32, time: u64, ms: u64, independent: bool) -> Fragment {
        Fragment::new(
            fragment_bytes(track, time),
            Duration::from_millis(ms),
            independent,
        )
    }

    #[test]
    fn decode_times_are_found_and_rewritten_in_place() {
        let video = traf(1, full(1, &90_000u64.to_be_bytes()));
        let audio = traf(2, full(0, &48_000u32.to_be_bytes()));
        let mfhd = boxed(b"mfhd", &full(0, &7u32.to_be_bytes()));
        let moof = boxed(b"moof", &[mfhd, video, audio].concat());
        let mut fragment = [moof, boxed(b"mdat", b"frames")].concat();
        let times = decode_times(&fragment).unwrap();
        let seen: Vec<_> = times.iter().map(|t| (t.track, t.time)).collect();
        assert_eq!(seen, [(1, 90_000), (2, 48_000)]);
        let len = fragment.len();
        set_decode_time(&mut fragment, &times[0], 15);
        set_decode_time(&mut fragment, &times[1], 16);
        let seen: Vec<_> = decode_times(&fragment)
            .unwrap()
            .iter()
            .map(|t| t.time)
            .collect();
        assert_eq!(seen, [15, 16]);
        assert_eq!(fragment.len(), len);
        assert!(fragment.ends_with(b"mdatframes"));
    }

    fn times(fragments: &[Fragment]) -> Vec<(u32, u64)> {
        let all = fragments
            .iter()
            .flat_map(|f| decode_times(&f.data).unwrap());
        all.map(|at| (at.track, at.time)).collect()
    }

    #[test]
    fn tracks_come_from_each_tracks_headers() {
        let init = init(&[(1, 60_000), (2, 48_000)]);
        let info = |id, timescale, video| TrackInfo {
            id,
            timescale,
            video,
        };
        assert_eq!(
            tracks(&init),
            [info(1, 60_000, true), info(2, 48_000, false)]
        );
    }

    #[test]
    fn a_part_starts_at_the_first_keyframe_once_every_track_has_started() {
        let mut timeline = Timeline::new(&init(&[(1, 60_000), (2, 48_000)]));
        // Video joined at a group that began before the live audio (11 s, 48 kHz)...
        assert!(timeline.push(fragment(1, 600_000, 200, true)).is_empty());
        assert!(timeline.push(fragment(2, 528_000, 10, true)).is_empty());
        assert!(timeline.push(fragment(1, 612_000, 200, false)).is_empty());
        assert!(timeline.push(fragment(2, 528_480, 10, true)).is_empty());
        // ... so the part starts at the next keyframe (11.2 s), audio from there on.
        assert!(timeline.push(fragment(2, 537_600, 10, true)).is_empty());
        let out = timeline.push(fragment(1, 672_000, 200, true));
        assert_eq!(times(&out), [(2, 0), (1, 0)]);
        assert_eq!(timeline.left_out_at_start(), Duration::from_millis(1200));
        let out = timeline.push(fragment(2, 538_080, 10, true));
        assert_eq!(times(&out), [(2, 480)]);
        assert_eq!(timeline.length(), Duration::from_millis(200));
        assert!(timeline.goes_back(&fragment(1, 600_000, 200, true)));
        assert!(!timeline.goes_back(&fragment(1, 684_000, 200, false)));
    }

    #[test]
    fn sound_starting_just_after_the_first_keyframe_keeps_it() {
        let mut timeline = Timeline::new(&init(&[(1, 60_000), (2, 48_000)]));
        assert!(timeline.push(fragment(1, 600_000, 200, true)).is_empty());
        // 10.1 s: 100 ms after the keyframe.
        let out = timeline.push(fragment(2, 484_800, 10, true));
        assert_eq!(times(&out), [(1, 0), (2, 4_800)]);
        assert_eq!(timeline.left_out_at_start(), Duration::ZERO);
    }

    #[test]
    fn a_track_that_starts_long_after_the_video_comes_in_late() {
        // A host's sound coming up 4 s after its first picture: the part starts at that
        // picture's keyframe once the video has run 3 s past it, not at a keyframe after 4 s.
        let mut timeline = Timeline::new(&init(&[(1, 60_000), (2, 48_000)]));
        assert!(timeline.push(fragment(1, 600_000, 200, true)).is_empty());
        for n in 1..15 {
            let keyframe = n % 10 == 0;
            let held = timeline.push(fragment(1, 600_000 + n * 12_000, 200, keyframe));
            assert!(held.is_empty(), "{n}");
        }
        let out = timeline.push(fragment(1, 600_000 + 15 * 12_000, 200, false));
        assert_eq!(out.len(), 16);
        assert_eq!(times(&out)[..2], [(1, 0), (1, 12_000)]);
        // The sound, when it comes, is placed where it began.
        let out = timeline.push(fragment(2, 480_000 + 4 * 48_000, 10, true));
        assert_eq!(times(&out), [(2, 4 * 48_000)]);
    }

    #[test]
    fn a_group_read_again_is_seen_and_a_restart_is_not() {
        let mut timeline = Timeline::new(&init(&[(1, 60_000), (2, 48_000)]));
        for n in 0..6 {
            timeline.push(fragment(1, 600_000 + n * 12_000, 200, n % 3 == 0));
            timeline.push(fragment(2, 480_000 + n * 9_600, 200, true));
        }
        // The export begun again reads the current group (from the keyframe at 10.6 s).
        let again = fragment(1, 636_000, 200, true);
        assert!(timeline.seen(&again) && timeline.goes_back(&again));
        assert!(timeline.seen(&fragment(2, 508_800, 200, true)));
        // What follows the group's end is new; a publisher that started over is not seen.
        assert!(!timeline.seen(&fragment(1, 672_000, 200, false)));
        let restarted = fragment(1, 6_000, 200, true);
        assert!(!timeline.seen(&restarted) && timeline.goes_back(&restarted));
    }

    /// An export begun again on the same stream reads its groups from their start, its
    /// fragments' edges drawn elsewhere: what was taken is not taken twice, and a track whose
    /// fragment was partly taken goes on at its next keyframe.
    #[test]
    fn a_stream_read_again_with_other_edges_is_taken_once() {
        let mut timeline = Timeline::new(&init(&[(1, 60_000), (2, 48_000)]));
        // Video 10.0–10.6 s (a keyframe at 10.0), audio 10.0–10.2 s.
        for (time, ind) in [(600_000, true), (612_000, false), (624_000, false)] {
            let video = fragment(1, time, 200, ind);
            assert!(timeline.is_new(&video));
            timeline.push(video);
        }
        for n in 0..20 {
            let audio = fragment(2, 480_000 + n * 480, 10, true);
            assert!(timeline.is_new(&audio));
            timeline.push(audio);
        }
        // Read again from the keyframe: 10.0–10.15 and 10.15–10.35 were taken, 10.35–10.65
        // partly; 10.65 is a frame after one left out, 10.8 the next keyframe.
        let again = [
            (600_000, 150, true, false),
            (609_000, 200, false, false),
            (621_000, 300, false, false),
            (639_000, 150, false, false),
            (648_000, 200, true, true),
            (660_000, 200, false, true),
        ];
        for (time, ms, ind, new) in again {
            let video = fragment(1, time, ms, ind);
            assert_eq!(timeline.is_new(&video), new, "video at {time}");
            if new {
                timeline.push(video);
            }
        }
        // Sound: each packet is whole, so it goes on right where it was taken up to.
        assert!(!timeline.is_new(&fragment(2, 480_000 + 19 * 480, 10, true)));
        assert!(timeline.is_new(&fragment(2, 480_000 + 20 * 480, 10, true)));
    }

    #[test]
    fn the_start_is_waited_for_only_so_long() {
        // A video track that never shows: the audio is not held for ever.
        let mut timeline = Timeline::new(&init(&[(1, 60_000), (2, 48_000)]));
        for n in 1..HELD_AT_START as u64 {
            assert!(
                timeline
                    .push(fragment(2, 48_000 + n * 480, 10, true))
                    .is_empty()
            );
        }
        let out = timeline.push(fragment(2, 48_000 * 9, 10, true));
        assert_eq!(out.len(), HELD_AT_START);
        assert_eq!(times(&out)[0], (2, 0));
    }

    #[test]
    fn big_fragments_are_held_only_so_many_bytes() {
        let mut timeline = Timeline::new(&init(&[(1, 60_000), (2, 48_000)]));
        let mut big = fragment(2, 48_000, 10, true);
        big.data.resize(HELD_BYTES_AT_START / 2, 0);
        assert!(timeline.push(big).is_empty());
        let mut big = fragment(2, 48_480, 10, true);
        big.data.resize(HELD_BYTES_AT_START / 2, 0);
        assert_eq!(timeline.push(big).len(), 2);
    }

    #[test]
    fn truncated_or_garbled_boxes_yield_nothing_rather_than_panicking() {
        let video = traf(1, full(1, &90_000u64.to_be_bytes()));
        let moof = boxed(b"moof", &video);
        for cut in 0..moof.len() {
            let _ = decode_times(&moof[..cut]);
            let _ = tracks(&moof[..cut]);
        }
        let mut lying = moof.clone();
        lying[0..4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(decode_times(&lying), Some(vec![]));
        lying[0..4].copy_from_slice(&1u32.to_be_bytes());
        assert_eq!(decode_times(&lying), Some(vec![]));
    }

    /// A part takes only whole fragments of its own tracks: one of a track its init segment
    /// lacks (moq-mux numbers a track anew when it comes back), or whose track fragment does
    /// not say which track or when, would make the file unreadable.
    #[test]
    fn a_part_knows_only_whole_fragments_of_its_own_tracks() {
        let timeline = Timeline::new(&init(&[(1, 60_000), (2, 48_000)]));
        let known = |data: Vec<u8>| timeline.knows(&Fragment::new(data, Duration::ZERO, true));
        assert!(known(fragment_bytes(1, 0)));
        assert!(known(fragment_bytes(2, 0)));
        assert!(!known(fragment_bytes(3, 0)), "a track the init lacks");
        let tfdt = boxed(b"tfdt", &full(0, &0u32.to_be_bytes()));
        let tfhd = boxed(b"tfhd", &full(0, &1u32.to_be_bytes()));
        let moof = |traf: Vec<u8>| [boxed(b"moof", &boxed(b"traf", &traf)), boxed(b"mdat", b"x")];
        assert!(!known(moof(tfdt).concat()), "no tfhd");
        assert!(!known(moof(tfhd).concat()), "no tfdt");
        let mfhd = boxed(b"mfhd", &full(0, &1u32.to_be_bytes()));
        assert!(!known(boxed(b"moof", &mfhd)), "no track fragment at all");
    }
}
