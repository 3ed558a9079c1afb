//! Receiving plain RTP (`moq-sub --sdp FILE`): the H.264 and Opus streams an SDP describes,
//! through libavformat's SDP demuxer, fed to the same players as a MoQ broadcast, so the two
//! transports can be compared on one stream.
//!
//! The demuxer's parser, which would gather each picture whole, is off: it can only tell a
//! picture has ended when the next one begins, a frame late. The depacketized NAL units go to
//! the decoder as they come instead ([`crate::decode::Decoder::chunked`]), which finishes a
//! picture with its last slice. Capture times come from the sender's RTCP reports, which map
//! RTP timestamps to its wall clock.
//!
//! RTP has no authentication: whoever reaches the receiver's ports can send to them, and
//! libavformat takes any datagram with the right payload type. A stranger's datagrams cost
//! pictures (the decoder skips to the next keyframe); they must not end the session, so an
//! RTCP goodbye, which anyone can forge, ends it only once the sender's media stops too.

use std::net::UdpSocket;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ffmpeg::Rescale as _;
use ffmpeg::ffi;
use ffmpeg_next as ffmpeg;
use lantern_proto::h264::{NAL_SPS, first_nal_type};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::error::Cause;
use crate::feed::{Encoded, Feed};
use crate::subscribe::{Audio, Video};

/// Depacketized units waiting for the video player (about a second of 720p60), and Opus
/// packets for the audio player (a second at 2.5 ms frames). Past these, units are dropped
/// and counted: the player has stalled.
const VIDEO_QUEUE: usize = 4096;
const AUDIO_QUEUE: usize = 400;

/// How long the demuxer waits for a lost packet before going on without it.
const REORDER_DELAY_US: &str = "20000";

/// After a goodbye, how long the receiver listens again for the sender's media before it
/// takes the sender to have left.
const GOODBYE_SILENCE: Duration = Duration::from_secs(2);

/// When the demuxer's reads give up: set while listening for media after a goodbye.
#[derive(Default)]
struct Deadline(std::sync::Mutex<Option<Instant>>);

impl Deadline {
    fn set(&self, after: Duration) {
        *lock(&self.0) = Some(Instant::now() + after);
    }

    /// Clear it; whether it was set.
    fn clear(&self) -> bool {
        lock(&self.0).take().is_some()
    }

    fn passed(&self) -> bool {
        lock(&self.0).is_some_and(|at| Instant::now() >= at)
    }
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A running RTP receiver: the thread that reads the sockets.
pub struct Receiver {
    thread: std::thread::JoinHandle<()>,
    /// Units dropped because a player's queue was full.
    pub dropped: Arc<AtomicU64>,
}

impl Receiver {
    /// Wait for the thread (after `cancel` fired or the players let go of their feeds).
    pub fn join(self) -> Result<(), Error> {
        self.thread
            .join()
            .map_err(|_| Error::Thread("RTP receiver"))
    }
}

/// Open the RTP session `sdp` describes and start receiving: the H.264 video (required) and
/// Opus sound (if the SDP has it, and `with_audio`). Receiving stops when `cancel` fires, the
/// sender says goodbye (RTCP BYE), or the players drop their feeds.
pub fn open(
    sdp: &Path,
    with_audio: bool,
    cancel: CancellationToken,
) -> Result<(Video, Option<Audio>, Receiver), Error> {
    let shown = sdp.display().to_string();
    let text = std::fs::read_to_string(sdp).map_err(|e| Error::file("--sdp", sdp, e))?;
    let ports =
        lantern_proto::sdp::media_ports(&text).map_err(|why| Error::file("--sdp", sdp, why))?;
    for port in ports.iter().flat_map(|&p| [p, p.saturating_add(1)]) {
        if let Err(source) = UdpSocket::bind(("0.0.0.0", port)) {
            return Err(Error::RtpPort {
                sdp: sdp.to_path_buf(),
                port,
                source,
            });
        }
    }
    lantern_media::ffmpeg::init()?;
    let deadline = Arc::new(Deadline::default());
    let reopen = {
        let (sdp, shown, cancel, deadline) = (
            sdp.to_owned(),
            shown.clone(),
            cancel.clone(),
            deadline.clone(),
        );
        move || open_input(&sdp, &shown, cancel.clone(), deadline.clone())
    };
    let input = reopen()?;

    let streams: Vec<_> = input
        .streams()
        .map(|s| (s.index(), s.parameters().id(), s.time_base()))
        .collect();
    let find = |id| streams.iter().find(|(_, codec, _)| *codec == id).copied();
    let video = find(ffmpeg::codec::Id::H264).ok_or_else(|| {
        let found: Vec<_> = streams.iter().map(|(_, c, _)| format!("{c:?}")).collect();
        Error::Config(format!(
            "{shown}: no H.264 video in the SDP (found: {})",
            if found.is_empty() {
                "nothing".into()
            } else {
                found.join(", ")
            }
        ))
    })?;
    let opus = find(ffmpeg::codec::Id::OPUS).filter(|_| with_audio);
    if with_audio && opus.is_none() && streams.len() > 1 {
        tracing::warn!("the SDP's audio is not Opus: playing video only");
    }
    let audio_channels = match opus {
        // SAFETY: reading the stream's parameters, filled from the SDP.
        Some((index, ..)) => input
            .stream(index)
            .map(|s| unsafe { (*s.parameters().as_ptr()).ch_layout.nb_channels })
            .unwrap_or(2)
            .clamp(1, 2) as u32,
        None => 0,
    };

    let (video_tx, video_rx) = mpsc::channel(VIDEO_QUEUE);
    let (audio_tx, audio_rx) = mpsc::channel(AUDIO_QUEUE);
    let dropped = Arc::new(AtomicU64::new(0));
    let routes = Routes {
        video: (video.0, video.2, video_tx),
        audio: opus.map(|(index, _, base)| (index, base, audio_tx)),
        dropped: dropped.clone(),
    };
    let thread = std::thread::Builder::new()
        .name("rtp".into())
        .spawn(move || receive(input, reopen, routes, &cancel, &deadline))
        .map_err(|source| Error::Spawn {
            what: "RTP receiver",
            source,
        })?;
    let video = Video {
        coded: None,
        track: format!("rtp video ({shown})"),
        codec: "h264".into(),
        decoder: crate::decode::Codec::H264,
        description: None,
        framerate: None,
        feed: Feed::Rtp(video_rx),
    };
    let audio = opus.map(|_| Audio {
        track: format!("rtp audio ({shown})"),
        channels: audio_channels,
        sample_rate: lantern_proto::audio::RATE,
        pre_skip: 0,
        feed: Feed::Rtp(audio_rx),
    });
    Ok((video, audio, Receiver { thread, dropped }))
}

/// Open the SDP with libavformat, without probing the streams (that would read, and hold
/// back, the first packets): the SDP says what they are, and the decoder finds the rest in
/// band. Reads give up when `cancel` fires or the `deadline` passes.
fn open_input(
    sdp: &Path,
    shown: &str,
    cancel: CancellationToken,
    deadline: Arc<Deadline>,
) -> Result<ffmpeg::format::context::Input, Error> {
    let path = std::ffi::CString::new(sdp.as_os_str().as_encoded_bytes())
        .map_err(|_| Error::Config(format!("{shown}: a path with a NUL byte")))?;
    let mut options = ffmpeg::Dictionary::new();
    options.set("protocol_whitelist", "file,udp,rtp");
    // No parser (see the module's note), no buffering, little waiting for lost packets.
    options.set("fflags", "nobuffer+noparse+nofillin");
    options.set("max_delay", REORDER_DELAY_US);
    let interrupt =
        ffmpeg::util::interrupt::new(Box::new(move || cancel.is_cancelled() || deadline.passed()));
    // SAFETY: the context is allocated, given the interrupt and options, opened, and handed
    // to `Input` (which closes it) or closed here on failure; the interrupt's opaque lives in
    // its guard, which the `Input` keeps.
    unsafe {
        let mut context = ffi::avformat_alloc_context();
        if context.is_null() {
            return Err(Error::decoder("opening the SDP", "out of memory"));
        }
        (*context).interrupt_callback = interrupt.interrupt;
        let format = ffi::av_find_input_format(c"sdp".as_ptr());
        let mut raw = options.disown();
        let opened = ffi::avformat_open_input(&mut context, path.as_ptr(), format, &mut raw);
        ffmpeg::Dictionary::own(raw);
        if opened < 0 {
            // avformat_open_input freed the context.
            return Err(Error::decoder(
                format!("{shown}: not an RTP session libavformat can open"),
                ffmpeg::Error::from(opened),
            ));
        }
        Ok(ffmpeg::format::context::Input::wrap_with_interrupt(
            context,
            interrupt.guard,
        ))
    }
}

type Route = (
    usize,
    ffmpeg::Rational,
    mpsc::Sender<Result<Encoded, Cause>>,
);

/// Which stream goes to which player.
struct Routes {
    video: Route,
    audio: Option<Route>,
    dropped: Arc<AtomicU64>,
}

/// Read packets until a stop, the sender's goodbye, or both players are gone. libavformat
/// ends the input at the first goodbye of every stream, forged or not: the receiver then
/// listens afresh (`reopen`), and plays on if media still comes.
fn receive(
    mut input: ffmpeg::format::context::Input,
    reopen: impl Fn() -> Result<ffmpeg::format::context::Input, Error>,
    routes: Routes,
    cancel: &CancellationToken,
    deadline: &Deadline,
) {
    let mut packet = ffmpeg::Packet::empty();
    // Joining mid-stream, nothing decodes before the parameter sets of a keyframe.
    let mut joined = false;
    let mut forged = 0u64;
    loop {
        let read = packet.read(&mut input);
        if cancel.is_cancelled() {
            return;
        }
        match read {
            Ok(()) => {
                if deadline.clear() {
                    forged += 1;
                    // Said once in a while: a stranger could send a goodbye every few ms.
                    if forged.is_power_of_two() {
                        tracing::warn!(
                            forged,
                            "media came after an RTCP goodbye: someone else sent it; playing on"
                        );
                    }
                }
            }
            Err(ffmpeg::Error::Eof) => {
                // The ports are the new input's: the old one goes first.
                drop(input);
                deadline.set(GOODBYE_SILENCE);
                joined = false;
                input = match reopen() {
                    Ok(input) => input,
                    Err(err) => {
                        let _ = routes.video.2.blocking_send(Err(Box::new(err)));
                        return;
                    }
                };
                continue;
            }
            Err(_) if deadline.passed() => {
                tracing::info!("the RTP sender said goodbye");
                return;
            }
            Err(err) => {
                let _ = routes.video.2.blocking_send(Err(Box::new(err)));
                return;
            }
        }
        let Some((_, time_base, to)) = [Some(&routes.video), routes.audio.as_ref()]
            .into_iter()
            .flatten()
            .find(|(index, ..)| *index == packet.stream())
        else {
            continue;
        };
        let Some(data) = packet.data() else { continue };
        let is_video = packet.stream() == routes.video.0;
        let opens_keyframe = is_video && first_nal_type(data) == Some(NAL_SPS);
        if is_video && !joined {
            joined = opens_keyframe;
            if !joined {
                continue;
            }
        }
        let pts_us = packet
            .pts()
            .map_or(0, |pts| pts.rescale(*time_base, (1, 1_000_000)));
        // SAFETY: a plain field, set by the demuxer once the first RTCP report came.
        let start = unsafe { (*input.as_ptr()).start_time_realtime };
        let encoded = Encoded {
            payload: bytes::Bytes::copy_from_slice(data),
            pts_us: pts_us.max(0) as u64,
            // Without the demuxer's parser nothing marks keyframes: a unit that opens with
            // the parameter sets begins one (a decoder waiting for a keyframe after damage
            // would otherwise wait forever).
            keyframe: packet.is_key() || opens_keyframe,
            captured_us: (start != ffi::AV_NOPTS_VALUE && packet.pts().is_some())
                .then(|| (start + pts_us).max(0) as u64),
        };
        match to.try_send(Ok(encoded)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                routes.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                if routes.video.2.is_closed() {
                    return;
                }
            }
        }
    }
}
