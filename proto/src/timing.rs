//! The timing decisions of Lantern's pipelines as small state machines that take the time as
//! an argument (µs on any one monotonic clock) and never read a clock or sleep, so they are
//! tested on simulated time. The runtime code around them reads the clock, sleeps and does
//! the I/O.
//!
//! - [`Pacer`]: when a live source's next frame is due.
//! - [`CaptureTimeline`]: timestamps of captured sound, with lost quanta and re-anchoring.
//! - [`PlayoutGaps`]: missing sound at the viewer, and how much silence may stand in for it.
//! - [`LipSync`]: how long a picture waits for its sound.
//! - [`Joiner`]: where a viewer joining mid-stream starts showing pictures.
//! - [`JoinCheck`]: whether the group a viewer joined into is live or an earlier one's backlog.
//! - [`KeyframeClock`]: a keyframe at least every so long, however few frames come.

use crate::audio::RATE;

/// A live source's pace: slots on a grid from an origin, one per frame interval. A consumer
/// more than a frame late skips to the next slot after now rather than bursting to catch up.
#[derive(Clone, Debug)]
pub struct Pacer {
    interval_us: f64,
    origin_us: Option<u64>,
    next_slot: u64,
}

impl Pacer {
    /// A pacer at `fps` whose origin is the first call's `now`.
    pub fn new(fps: f64) -> Self {
        Self {
            interval_us: 1e6 / fps,
            origin_us: None,
            next_slot: 0,
        }
    }

    /// A pacer whose slot 0 is at `origin_us` (which may be in the past).
    pub fn on_grid(fps: f64, origin_us: u64) -> Self {
        Self {
            origin_us: Some(origin_us),
            ..Self::new(fps)
        }
    }

    /// The next slot and when it is due (`due_us` may be before `now_us`: go at once).
    pub fn next(&mut self, now_us: u64) -> (u64, u64) {
        let origin = *self.origin_us.get_or_insert(now_us);
        let mut slot = self.next_slot;
        if now_us.saturating_sub(self.due(origin, slot)) as f64 > self.interval_us {
            slot = (now_us.saturating_sub(origin) as f64 / self.interval_us).ceil() as u64;
        }
        self.next_slot = slot + 1;
        (slot, self.due(origin, slot))
    }

    fn due(&self, origin: u64, slot: u64) -> u64 {
        origin + (slot as f64 * self.interval_us).round() as u64
    }
}

/// µs of `frames` samples (per channel) at 48 kHz.
pub fn samples_us(frames: u64) -> u64 {
    frames * 1_000_000 / RATE as u64
}

/// How far a quantum's measured capture time may stray from the running sample count before
/// the timeline is re-anchored (a stall): beyond scheduling jitter, well under anything audible
/// as drift.
pub const REANCHOR_US: u64 = 20_000;

/// Timestamps for captured sound. Sound arrives in quanta, each with the time it was measured
/// to start and (when the server counts them) its position in samples; it leaves in frames of
/// any length. Timestamps follow the sample count, so consecutive frames abut exactly; the
/// measured time only re-anchors them when the two disagree by more than [`REANCHOR_US`].
/// Samples the server skipped (an xrun) come back as silence to insert, so the timeline stays
/// true and the loss is counted rather than hidden.
///
/// Timestamps never go back: a frame once taken is published, and a track refuses a frame
/// that starts before the last one ended. A re-anchor to an earlier time (the first quantum's
/// callback ran late, so the anchor was late) moves the timeline back only as far as the end
/// of what was taken; the rest of the difference stays (the sound is stamped a little late).
#[derive(Clone, Debug, Default)]
pub struct CaptureTimeline {
    /// Capture time of the first sample not yet taken.
    start_us: u64,
    /// Samples (per channel) received and not yet taken.
    pending: u64,
    next_position: Option<u64>,
    started: bool,
    lost: u64,
    /// Where the last frame taken ended: the earliest the next may start.
    taken_until_us: Option<u64>,
}

impl CaptureTimeline {
    /// A quantum of `frames` samples arrived, measured to start at `at_us`, at server
    /// position `position`. Returns the samples of silence to insert before it.
    pub fn quantum(&mut self, frames: u64, at_us: u64, position: Option<u64>) -> u64 {
        let mut silence = 0;
        if let (Some(expected), Some(position)) = (self.next_position, position) {
            let skipped = position.saturating_sub(expected);
            // More than ten seconds is a restarted server, not a loss to fill.
            if (1..RATE as u64 * 10).contains(&skipped) {
                silence = skipped;
                self.lost += skipped;
            }
        }
        self.next_position = position.map(|p| p + frames);
        if !self.started {
            self.started = true;
            self.start_us = at_us;
        } else {
            let at_silence = at_us.saturating_sub(samples_us(silence));
            let expected = self.start_us + samples_us(self.pending);
            if expected.abs_diff(at_silence) > REANCHOR_US {
                let anchored = at_silence.saturating_sub(samples_us(self.pending));
                self.start_us = anchored.max(self.taken_until_us.unwrap_or(0));
            }
        }
        self.pending += silence + frames;
        silence
    }

    /// Take `frames` samples (which must have arrived); returns the capture time of the first.
    pub fn take(&mut self, frames: u64) -> u64 {
        let pts = self.start_us;
        self.pending = self.pending.saturating_sub(frames);
        self.start_us += samples_us(frames);
        self.taken_until_us = Some(self.start_us);
        pts
    }

    /// Samples (per channel) the server skipped so far.
    pub fn lost(&self) -> u64 {
        self.lost
    }
}

/// Missing sound at the viewer: a packet that starts later than the last one ended.
#[derive(Clone, Debug, Default)]
pub struct PlayoutGaps {
    next_pts_us: Option<u64>,
}

/// What to do about a gap before a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gap {
    /// Samples (per channel) that never arrived: counted.
    pub missing: u64,
    /// Samples of silence to play in their place: at most a second (a longer break is a
    /// paused publisher, not a hole to fill) and never more than the output can take.
    pub fill: u64,
}

impl PlayoutGaps {
    /// A packet of `frames` samples with timestamp `pts_us` is about to be played, and the
    /// output has room for `room` samples. A jitter of up to a millisecond is not a gap.
    pub fn packet(&mut self, pts_us: u64, frames: u64, room: u64) -> Option<Gap> {
        // Timestamps are the publisher's: no jump, however wild, may overflow here.
        let expected = self
            .next_pts_us
            .replace(pts_us.saturating_add(samples_us(frames)));
        let expected = expected?;
        if pts_us <= expected.saturating_add(1_000) {
            return None;
        }
        let missing = u128::from(pts_us - expected) * u128::from(RATE) / 1_000_000;
        let missing = u64::try_from(missing).unwrap_or(u64::MAX);
        Some(Gap {
            missing,
            fill: missing.min(RATE as u64).min(room),
        })
    }
}

/// Sound heard more than this many times the longest hold after its capture is taken for a
/// wrong capture time, not a slow sound path.
const IMPLAUSIBLE_HOLDS: u64 = 20;

/// Lip sync: a picture is shown as long after its capture as its sound is heard. The sound's
/// capture-to-heard time is smoothed over about 16 packets so that the picture's wait does
/// not jitter with each packet.
#[derive(Clone, Debug)]
pub struct LipSync {
    heard_us: Option<u64>,
    max_hold_us: u64,
}

impl LipSync {
    /// `max_hold_us`: the longest a picture waits; beyond it the sound path is broken and the
    /// picture goes out late rather than never.
    pub fn new(max_hold_us: u64) -> Self {
        Self {
            heard_us: None,
            max_hold_us,
        }
    }

    /// A packet captured at `captured_us` was handed to the output at `written_us`, and is
    /// heard `ahead_us` after that (codec delay, the sink's queue).
    pub fn sound(&mut self, captured_us: u64, written_us: u64, ahead_us: u64) {
        let heard = written_us
            .saturating_sub(captured_us)
            .saturating_add(ahead_us);
        // A capture time that far behind is not this sound's (a clock jump, a stranger's
        // forged RTCP report): taken in, it would hold every picture by the bound.
        if heard > self.max_hold_us.saturating_mul(IMPLAUSIBLE_HOLDS) {
            return;
        }
        self.heard_us = Some(match self.heard_us {
            None => heard,
            Some(old) => (old * 15 + heard) / 16,
        });
    }

    /// How long after capture sound is heard, smoothed; `None` before any sound.
    pub fn heard_us(&self) -> Option<u64> {
        self.heard_us
    }

    /// How long a picture captured at `captured_us` should wait at `now_us` to show with its
    /// sound: zero when it is already late or there is no sound yet.
    pub fn hold_us(&self, captured_us: u64, now_us: u64) -> u64 {
        let Some(heard) = self.heard_us else {
            return 0;
        };
        // A picture captured in the future beyond the bound has a capture time not to be
        // trusted: it goes out at once rather than being held the longest.
        if captured_us > now_us.saturating_add(self.max_hold_us) {
            return 0;
        }
        captured_us
            .saturating_add(heard)
            .saturating_sub(now_us)
            .min(self.max_hold_us)
    }
}

/// Where a viewer starts: the relay hands a new subscriber the newest group, from its
/// keyframe; [`Joiner`] decides what to show from there, and from where to restart after a
/// damaged picture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinPolicy {
    /// Live from the next keyframe: a group that began in the past is skipped.
    Next,
    /// At once, from the current group's keyframe, playing its older frames late.
    Current,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum JoinState {
    /// The first frame is yet to come.
    Joining,
    /// Waiting for a keyframe (after skipping a stale group, or after damage).
    WaitingForKey,
    Playing,
}

/// What to do with an arriving frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    Decode,
    Skip,
}

#[derive(Clone, Debug)]
pub struct Joiner {
    policy: JoinPolicy,
    state: JoinState,
}

impl Joiner {
    pub fn new(policy: JoinPolicy) -> Self {
        Self {
            policy,
            state: JoinState::Joining,
        }
    }

    /// A frame arrived. `behind_it` says whether its group began well before the viewer
    /// joined (asked only for the first keyframe under [`JoinPolicy::Next`], see
    /// [`JoinCheck`]): if so, the group is skipped.
    pub fn frame(&mut self, keyframe: bool, behind_it: impl FnOnce() -> bool) -> Admit {
        self.state = match (self.state, keyframe) {
            (JoinState::Joining, true) if self.policy == JoinPolicy::Next && behind_it() => {
                JoinState::WaitingForKey
            }
            (_, true) | (JoinState::Playing, false) => JoinState::Playing,
            (_, false) => JoinState::WaitingForKey,
        };
        match self.state {
            JoinState::Playing => Admit::Decode,
            _ => Admit::Skip,
        }
    }

    /// A picture failed to decode: show nothing more until the next keyframe.
    pub fn damaged(&mut self) {
        self.state = JoinState::WaitingForKey;
    }
}

/// The joined group's frames running ahead of their arrival by more than this (µs) make it a
/// backlog worth skipping: the player would be this far behind (as [`crate::backlog`] counts
/// a player behind). Less is played in a burst: a keyframe slow to cross a narrow path has
/// the frames captured meanwhile right behind it as well, and skipping it would only wait
/// for another keyframe as slow.
pub const JOIN_BACKLOG_US: u64 = crate::backlog::BEHIND_US;
/// How long after the joining keyframe's arrival (µs) its group's frames are looked at before
/// it is taken for live.
pub const JOIN_LOOK_US: u64 = 100_000;

/// What [`JoinCheck`] makes of the frames so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Joined {
    /// Live, or near enough to play from its keyframe.
    Live,
    /// The group began well before the viewer joined: skip it for the next keyframe.
    Backlog,
    /// Not clear yet: look at the next frame, or take it for live at [`JoinCheck::until_us`].
    Unsure,
}

/// Whether the group a viewer joined into is live. The relay hands a new subscriber the
/// newest group from its keyframe: when the group began a while ago, its backlog comes in a
/// burst, its media time running ahead of its arrival; a live group's frames come as they are
/// captured. Its frames after the keyframe are looked at (not shown) until they have run
/// [`JOIN_BACKLOG_US`] ahead, or for [`JOIN_LOOK_US`] of arrivals.
///
/// Whether a frame is waiting the instant the keyframe is read is no test: a backlog that came
/// in one burst may still be parsed one frame at a time (a page took a second-old keyframe for
/// live that way in most joins), and a keyframe slow to arrive has frames right behind it.
#[derive(Clone, Debug)]
pub struct JoinCheck {
    key_pts_us: u64,
    key_arrived_us: u64,
}

impl JoinCheck {
    /// The group's keyframe, of media time `pts_us`, arrived at `arrived_us`.
    pub fn new(pts_us: u64, arrived_us: u64) -> Self {
        Self {
            key_pts_us: pts_us,
            key_arrived_us: arrived_us,
        }
    }

    /// A later frame of the group, of media time `pts_us`, arrived at `arrived_us`.
    pub fn frame(&self, pts_us: u64, arrived_us: u64) -> Joined {
        let media = pts_us.saturating_sub(self.key_pts_us);
        let waited = arrived_us.saturating_sub(self.key_arrived_us);
        if media.saturating_sub(waited) > JOIN_BACKLOG_US {
            Joined::Backlog
        } else if waited >= JOIN_LOOK_US {
            Joined::Live
        } else {
            Joined::Unsure
        }
    }

    /// When, with no verdict, the group is taken for live (µs, the arrivals' clock).
    pub fn until_us(&self) -> u64 {
        self.key_arrived_us.saturating_add(JOIN_LOOK_US)
    }
}

/// Keyframes by time as well as by count. The encoder makes one every GOP's frames; a still
/// screen, though, is sent again only a few times a second, so its GOP in frames could last
/// many seconds, and a viewer joining it (one that cannot ask for a keyframe: a spectator)
/// would wait that long for its first picture. A keyframe is due once a GOP and a half of
/// time has passed since the last one: never before the encoder's own at the full rate.
/// Not while frames are being skipped to spare a full path, though: a keyframe is the
/// costliest frame, and there every few frames would be one.
#[derive(Clone, Debug)]
pub struct KeyframeClock {
    every_us: u64,
    last_us: Option<u64>,
    skipping: bool,
}

impl KeyframeClock {
    /// For a GOP of `gop` frames at `fps`.
    pub fn new(gop: u32, fps: f64) -> Self {
        Self {
            every_us: (f64::from(gop) / fps.max(1.0) * 1.5e6) as u64,
            last_us: None,
            skipping: false,
        }
    }

    /// A frame was skipped (the path is full): no keyframe by time until the next one.
    pub fn skipped(&mut self) {
        self.skipping = true;
    }

    /// Whether the frame at `now_us` must be a keyframe.
    pub fn due(&self, now_us: u64) -> bool {
        !self.skipping
            && self
                .last_us
                .is_some_and(|last| now_us >= last.saturating_add(self.every_us))
    }

    /// A keyframe went out at `now_us` (asked for or the encoder's own).
    pub fn keyframe(&mut self, now_us: u64) {
        self.last_us = Some(now_us);
        self.skipping = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wild_timestamp_is_a_bounded_gap_never_an_overflow() {
        let mut gaps = PlayoutGaps::default();
        assert_eq!(gaps.packet(1_000, 960, 48_000), None);
        let gap = gaps.packet(u64::MAX - 5, 960, 48_000).unwrap();
        assert_eq!(gap.fill, 48_000);
        assert!(gap.missing > 48_000);
        assert_eq!(
            gaps.packet(u64::MAX, 960, 10),
            None,
            "within the jitter after it"
        );
    }

    #[test]
    fn a_pacer_keeps_its_grid_and_skips_when_late() {
        let mut pacer = Pacer::new(100.0);
        assert_eq!(pacer.next(1_000), (0, 1_000));
        // On time, or a little late: the next slot on the grid.
        assert_eq!(pacer.next(5_000), (1, 11_000));
        assert_eq!(pacer.next(25_000), (2, 21_000));
        // More than a frame late: skip to the next slot after now, never burst.
        assert_eq!(pacer.next(75_500), (8, 81_000));
        assert_eq!(pacer.next(81_000), (9, 91_000));
        // A grid whose origin is in the past.
        let mut pacer = Pacer::on_grid(100.0, 0);
        assert_eq!(pacer.next(105_000), (11, 110_000));
    }

    #[test]
    fn captured_sound_abuts_fills_xruns_and_reanchors() {
        let mut t = CaptureTimeline::default();
        // 480-sample quanta (10 ms) at positions 0, 480, measured with jitter.
        assert_eq!(t.quantum(480, 1_000_000, Some(0)), 0);
        assert_eq!(t.quantum(480, 1_010_700, Some(480)), 0);
        assert_eq!(t.take(480), 1_000_000);
        assert_eq!(t.take(480), 1_010_000, "follows the count, not the jitter");
        // The server skipped 960 samples: they come back as silence, counted.
        assert_eq!(t.quantum(480, 1_040_000, Some(1_920)), 960);
        assert_eq!(t.lost(), 960);
        assert_eq!(t.take(960), 1_020_000);
        assert_eq!(t.take(480), 1_040_000);
        // A stall with no position: the measured time wins once it is 20 ms off.
        assert_eq!(t.quantum(480, 1_200_000, None), 0);
        assert_eq!(t.take(480), 1_200_000);
    }

    #[test]
    fn captured_sound_never_goes_back_past_what_was_taken() {
        let mut t = CaptureTimeline::default();
        // The first callback ran 40 ms late: the anchor is late.
        t.quantum(480, 1_040_000, Some(0));
        assert_eq!(t.take(480), 1_040_000);
        // The next quanta tell the truth: 40 ms earlier than the count says.
        t.quantum(480, 1_010_000, Some(480));
        t.quantum(480, 1_020_000, Some(960));
        assert_eq!(t.take(480), 1_050_000, "starts where the last frame ended");
        assert_eq!(t.take(480), 1_060_000);
        // Before anything is taken, the anchor may move back freely.
        let mut t = CaptureTimeline::default();
        t.quantum(480, 1_040_000, Some(0));
        t.quantum(480, 1_010_000, Some(480));
        assert_eq!(t.take(960), 1_000_000);
    }

    #[test]
    fn playout_gaps_are_counted_and_filled_within_bounds() {
        let mut g = PlayoutGaps::default();
        assert_eq!(g.packet(0, 480, 10_000), None);
        assert_eq!(g.packet(10_500, 480, 10_000), None, "jitter under 1 ms");
        assert_eq!(
            g.packet(40_500, 480, 10_000),
            Some(Gap {
                missing: 960,
                fill: 960
            })
        );
        // A long break fills at most a second, and never more than the output takes.
        assert_eq!(
            g.packet(5_050_500, 480, 100_000),
            Some(Gap {
                missing: 240_000,
                fill: 48_000
            })
        );
        assert_eq!(
            g.packet(5_100_500, 480, 100),
            Some(Gap {
                missing: 1_920,
                fill: 100
            })
        );
    }

    #[test]
    fn lip_sync_holds_pictures_for_their_sound_within_a_bound() {
        let mut sync = LipSync::new(250_000);
        assert_eq!(sync.hold_us(0, 0), 0, "no sound yet: no wait");
        sync.sound(1_000, 13_000, 2_000);
        assert_eq!(sync.heard_us(), Some(14_000));
        // A picture captured at 100 000 and decoded at 105 000 waits until 114 000.
        assert_eq!(sync.hold_us(100_000, 105_000), 9_000);
        assert_eq!(sync.hold_us(100_000, 120_000), 0, "already late");
        // Smoothing: one slow packet moves the wait by a sixteenth of its excess.
        sync.sound(0, 30_000, 0);
        assert_eq!(sync.heard_us(), Some(15_000));
        let mut broken = LipSync::new(250_000);
        broken.sound(0, 1_000_000, 0);
        assert_eq!(broken.hold_us(0, 0), 250_000);
        // Capture times that cannot be right (a forged sender report, a clock jump) are not
        // taken: sound "heard" a day after capture, a picture from the future.
        broken.sound(0, 86_400_000_000, 0);
        assert_eq!(broken.heard_us(), Some(1_000_000));
        assert_eq!(broken.hold_us(u64::MAX - 5, 1_000), 0);
        assert_eq!(broken.hold_us(2_000_000, 1_000_000), 0);
        let mut forged = LipSync::new(250_000);
        forged.sound(0, 86_400_000_000, 0);
        assert_eq!(forged.heard_us(), None);
    }

    #[test]
    fn joining_next_skips_a_stale_group_and_damage_waits_for_a_key() {
        let mut j = Joiner::new(JoinPolicy::Next);
        assert_eq!(j.frame(true, || true), Admit::Skip, "stale group");
        assert_eq!(j.frame(false, || unreachable!()), Admit::Skip);
        assert_eq!(j.frame(true, || unreachable!()), Admit::Decode);
        assert_eq!(j.frame(false, || unreachable!()), Admit::Decode);
        j.damaged();
        assert_eq!(j.frame(false, || unreachable!()), Admit::Skip);
        assert_eq!(j.frame(true, || unreachable!()), Admit::Decode);

        let mut fresh = Joiner::new(JoinPolicy::Next);
        assert_eq!(
            fresh.frame(true, || false),
            Admit::Decode,
            "a group just starting"
        );
        let mut current = Joiner::new(JoinPolicy::Current);
        assert_eq!(current.frame(false, || unreachable!()), Admit::Skip);
        assert_eq!(current.frame(true, || unreachable!()), Admit::Decode);
    }

    /// Frame `i` of a 60 fps group whose keyframe has media time 0 (µs).
    fn pts(i: u64) -> u64 {
        i * 16_667
    }

    #[test]
    fn a_joined_groups_backlog_is_told_from_live_by_how_far_it_runs_ahead() {
        // Joined a second into a group: its frames come back to back, 0.3 ms apart.
        let backlog = JoinCheck::new(0, 5_000_000);
        let verdicts: Vec<Joined> = (1..=12)
            .map(|i| backlog.frame(pts(i), 5_000_000 + i * 300))
            .collect();
        // 150 ms of media ahead by the tenth frame: skipped.
        assert_eq!(verdicts[..9], [Joined::Unsure; 9], "{verdicts:?}");
        assert_eq!(verdicts[9..], [Joined::Backlog; 3], "{verdicts:?}");
        // The same burst parsed with pauses (a busy page) is still a backlog.
        let paused = JoinCheck::new(0, 0);
        assert_eq!(paused.frame(pts(1), 5_600), Joined::Unsure);
        assert_eq!(paused.frame(pts(12), 20_000), Joined::Backlog);

        // A live group: a frame each 16.7 ms, give or take jitter, until the look is over.
        let live = JoinCheck::new(0, 1_000);
        for i in 1..6 {
            let at = 1_000 + pts(i) + [3_000, 0, 5_000][i as usize % 3];
            assert_eq!(live.frame(pts(i), at), Joined::Unsure, "frame {i}");
        }
        assert_eq!(live.frame(pts(6), 1_000 + pts(6)), Joined::Live);
        assert_eq!(live.until_us(), 101_000);

        // A 120 ms keyframe (a narrow path): the frames captured meanwhile come right behind
        // it, and the rest on time. Played: skipping would wait for another keyframe as slow.
        let slow = JoinCheck::new(0, 120_000);
        assert_eq!(slow.frame(pts(7), 121_000), Joined::Unsure);
        assert_eq!(slow.frame(pts(13), pts(13) + 20_000), Joined::Live);
    }

    #[test]
    fn a_joined_groups_odd_timestamps_never_make_a_backlog() {
        let check = JoinCheck::new(1_000_000, 1_000_000);
        // Media time going back, arrivals going back (another clock's), the ends of the range.
        assert_eq!(check.frame(0, 1_000_100), Joined::Unsure);
        assert_eq!(check.frame(1_000_100, 0), Joined::Unsure);
        assert_eq!(check.frame(u64::MAX, u64::MAX), Joined::Live);
        assert_eq!(JoinCheck::new(0, u64::MAX).until_us(), u64::MAX);
        assert_eq!(check.frame(u64::MAX, 1_000_000), Joined::Backlog);
    }

    #[test]
    fn a_keyframe_is_due_after_a_gop_and_a_half_of_time_whatever_the_frame_count() {
        // A GOP of 120 frames at 60 fps: two seconds; due after three.
        let mut clock = KeyframeClock::new(120, 60.0);
        assert!(!clock.due(0), "nothing before the first keyframe");
        clock.keyframe(0);
        // At the full rate the encoder's own keyframe (at 2 s) comes first.
        assert!(!clock.due(2_000_000));
        clock.keyframe(2_000_000);
        // A still screen repeated ten times a second: 120 frames would be 12 s.
        let repeats: Vec<u64> = (1..=40).map(|i| 2_000_000 + i * 100_000).collect();
        let first_due = repeats.iter().find(|&&t| clock.due(t));
        assert_eq!(first_due, Some(&5_000_000));
        // Frames skipped for a full path: the encoder's own keyframes only.
        clock.keyframe(5_000_000);
        clock.skipped();
        assert!(!clock.due(60_000_000));
        clock.keyframe(60_000_000);
        assert!(clock.due(63_000_000));
    }
}
