//! AV1 with SVT-AV1 in its low-delay configuration: low-delay prediction (every frame refers
//! only to earlier ones), no lookahead, no scene-change detection, constant bitrate within a
//! buffer of [`VBV_FRAMES`] frames, closed keyframes with the sequence header in band.
//!
//! SVT-AV1 is driven through a small C shim (`csrc/svt.c`) rather than FFmpeg's libsvtav1:
//! FFmpeg 5.1's wrapper asks for a packet only when handed the next frame, so every packet
//! would leave two to three frames late. SVT-AV1 1.4 itself holds each picture until the next
//! one is sent (measured: always exactly one; no setting removes it), so frame N's packet
//! comes out while frame N+1 is encoded, one frame interval late. So that a lone change on a
//! still screen does not wait for the next capture, the encoder keeps the last picture (the
//! frame handed in; the caller gets the one kept before) and [`Encoder::repeat`] sends it
//! again, which pushes the held one out.
//!
//! SVT-AV1 1.4 can neither change its bitrate while it runs nor force a keyframe in low-delay
//! CBR ("only supported with RA CRF/CQP mode"): both open a new encoder, whose first frame is
//! a keyframe (some 40 ms at 720p). A keyframe asked for does so at once; a new bitrate as
//! [`FixedRate`] says (at the group's end SVT-AV1 makes a keyframe anyway).

use std::ffi::{CStr, c_char, c_int};
use std::time::{Duration, Instant};

use ffmpeg_next as ffmpeg;

use super::{FixedRate, Packet, VBV_FRAMES, VideoSettings};
use crate::Error;
use crate::source::Format;

/// What the shim takes to open an encoder (`struct lantern_svt_config`).
#[repr(C)]
struct Config {
    width: u32,
    height: u32,
    fps_num: u32,
    fps_den: u32,
    kbps: u32,
    keyint: u32,
    buffer_ms: u32,
    preset: i32,
    threads: u32,
}

/// The shim's encoder (`struct lantern_svt`), only ever behind a pointer.
#[repr(C)]
struct Svt {
    _opaque: [u8; 0],
}

unsafe extern "C" {
    fn lantern_svt_version() -> *const c_char;
    fn lantern_svt_open(config: *const Config, out: *mut *mut Svt) -> i32;
    fn lantern_svt_send(
        svt: *mut Svt,
        planes: *const *mut u8,
        strides: *const u32,
        pts: i64,
    ) -> i32;
    fn lantern_svt_finish(svt: *mut Svt) -> i32;
    fn lantern_svt_receive(
        svt: *mut Svt,
        data: *mut *const u8,
        len: *mut u32,
        pts: *mut i64,
        keyframe: *mut c_int,
    ) -> i32;
    fn lantern_svt_close(svt: *mut Svt);
}

/// The longest a frame's packet is waited for; SVT-AV1 takes a few ms.
const PACKET_DEADLINE: Duration = Duration::from_secs(2);

/// How often a packet is looked for while waiting.
const POLL: Duration = Duration::from_micros(100);

/// The version of the SVT-AV1 library this process runs.
fn version() -> String {
    // SAFETY: the library returns a static NUL-terminated string.
    unsafe { CStr::from_ptr(lantern_svt_version()) }
        .to_string_lossy()
        .into_owned()
}

/// The preset when none is given: 10 up to 720p60, 12 above.
///
/// Measured on 2 cores (`lantern-bench encode --frames 600 --paced --codec av1 --preset P`,
/// the 720p60 cube at 4.4 Mbit/s): CPU per frame and the frames whose stamp still reads —
/// preset 9: 39 ms, 600/600 (more than two cores at 60 fps); 10: 27 ms, 576/600; 12: 16 ms,
/// 465/600. From preset 10 up SVT-AV1 1.4 leaves some changed 16x16 blocks as they were in
/// the frame before (the stamps that fail read crisp but stale blocks), so the default is the
/// fastest preset that rarely does. Above 720p60 only 12 comes near the frame rate (and at
/// 1080p60 not even it, here: use H.264 there).
pub fn default_preset(format: Format) -> i32 {
    let pixel_rate = f64::from(format.width) * f64::from(format.height) * format.fps;
    if pixel_rate <= 1280.0 * 720.0 * 60.0 {
        10
    } else {
        12
    }
}

/// One open SVT-AV1 encoder.
struct Handle(*mut Svt);

// SAFETY: an SVT-AV1 encoder may be used from any thread, one at a time; `Handle` is owned by
// exactly one `Encoder`, which `&mut self` keeps to one thread at a time.
unsafe impl Send for Handle {}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the pointer came from lantern_svt_open and is closed only here.
        unsafe { lantern_svt_close(self.0) }
    }
}

fn svt_error(what: impl Into<String>, code: i32) -> Error {
    Error::SvtAv1 {
        what: what.into(),
        code,
    }
}

pub struct Encoder {
    svt: Handle,
    format: Format,
    /// The last picture sent, and its capture time: what a repeat sends again.
    last: Option<(ffmpeg::frame::Video, u64)>,
    /// The picture SVT-AV1 holds is a repeat (nothing new waits in it).
    holding_repeat: bool,
    preset: i32,
    gop: u32,
    rate: FixedRate,
    /// Frames sent, and packets received, since the encoder was opened.
    sent: u64,
    received: u64,
}

impl Encoder {
    pub fn new(format: Format, settings: &VideoSettings) -> Result<Self, Error> {
        let preset = settings
            .preset
            .parse::<i32>()
            .ok()
            .filter(|p| (-1..=13).contains(p));
        let Some(preset) = preset else {
            return Err(Error::Config(format!(
                "--preset {:?} is not an SVT-AV1 preset (a number from -1, slowest, to 13)",
                settings.preset
            )));
        };
        if !format.width.is_multiple_of(2)
            || !format.height.is_multiple_of(2)
            || format.width < 64
            || format.height < 64
        {
            return Err(Error::Config(format!(
                "SVT-AV1 takes even sizes of at least 64x64, not {}x{}",
                format.width, format.height
            )));
        }
        let svt = open(format, preset, settings.bitrate_kbps, settings.gop)?;
        tracing::debug!(version = version(), preset, "SVT-AV1 encoder");
        Ok(Self {
            svt,
            format,
            last: None,
            holding_repeat: false,
            preset,
            gop: settings.gop,
            rate: FixedRate::new(settings.bitrate_kbps),
            sent: 0,
            received: 0,
        })
    }

    pub fn bitrate_kbps(&self) -> u32 {
        self.rate.asked
    }

    /// Ask for a bitrate; it takes effect as the module's header says.
    pub fn set_bitrate(&mut self, kbps: u32) {
        self.rate.asked = kbps;
    }

    pub fn encode(
        &mut self,
        frame: &mut ffmpeg::frame::Video,
        pts_us: u64,
        keyframe: bool,
        mut sink: impl FnMut(Packet) -> Result<(), Error>,
    ) -> Result<(), Error> {
        // SVT-AV1 makes the first frame of each group a keyframe itself.
        let due = self.sent.is_multiple_of(u64::from(self.gop));
        let new_rate = self.rate.reopen(self.sent, self.format.fps, due);
        if (keyframe && !due) || new_rate {
            // Whatever the old encoder holds comes out first, in order.
            self.drain(true, &mut sink)?;
            self.svt = open(self.format, self.preset, self.rate.asked, self.gop)?;
            self.rate.running = self.rate.asked;
            (self.sent, self.received) = (0, 0);
        }
        self.send(frame, pts_us)?;
        self.holding_repeat = false;
        // Keep this picture for repeats; the caller gets the one kept before (or an empty
        // frame, the first time), to fill again.
        let kept = match self.last.take() {
            Some((previous, _)) => std::mem::replace(frame, previous),
            None => std::mem::replace(frame, ffmpeg::frame::Video::empty()),
        };
        self.last = Some((kept, pts_us));
        self.drain(false, &mut sink)
    }

    /// Whether SVT-AV1 holds a new picture that only the next one sent lets out.
    pub fn holding(&self) -> bool {
        self.received < self.sent && !self.holding_repeat
    }

    /// Send the last picture again, `after_us` later, so the one SVT-AV1 holds comes out.
    pub fn repeat(
        &mut self,
        after_us: u64,
        mut sink: impl FnMut(Packet) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let Some((mut frame, pts_us)) = self.last.take() else {
            return Ok(());
        };
        let pts_us = pts_us + after_us;
        let sent = self.send(&mut frame, pts_us);
        self.last = Some((frame, pts_us));
        sent?;
        self.holding_repeat = true;
        self.drain(false, &mut sink)
    }

    pub fn finish(
        &mut self,
        mut sink: impl FnMut(Packet) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.drain(true, &mut sink)
    }

    fn send(&mut self, frame: &mut ffmpeg::frame::Video, pts_us: u64) -> Result<(), Error> {
        // SVT-AV1 reads the encoder's size from the planes, whatever the frame holds.
        let (width, height) = (frame.width(), frame.height());
        if (width, height) != (self.format.width, self.format.height)
            || frame.format() != ffmpeg::format::Pixel::YUV420P
        {
            return Err(Error::FrameMismatch {
                got: format!("{width}x{height} {:?}", frame.format()),
                want: format!("{}x{} I420 AV1", self.format.width, self.format.height),
            });
        }
        let mut planes = [0, 1, 2].map(|i| frame.data_mut(i).as_mut_ptr());
        let strides = [0, 1, 2].map(|i| frame.stride(i) as u32);
        // SAFETY: the three planes are the frame's own, I420 of the encoder's size (checked
        // above) with these strides, alive for the call; SVT-AV1 copies the picture before
        // lantern_svt_send returns.
        let status = unsafe {
            lantern_svt_send(
                self.svt.0,
                planes.as_mut_ptr(),
                strides.as_ptr(),
                pts_us as i64,
            )
        };
        if status != 0 {
            return Err(svt_error("send picture", status));
        }
        self.sent += 1;
        Ok(())
    }

    /// Hand every packet SVT-AV1 can give to `sink`, waiting (up to [`PACKET_DEADLINE`]) for
    /// all but the one it holds back; with `end`, it is told no more frames come, and gives
    /// that one too.
    fn drain(
        &mut self,
        end: bool,
        sink: &mut impl FnMut(Packet) -> Result<(), Error>,
    ) -> Result<(), Error> {
        if end && self.sent > 0 {
            // SAFETY: a live encoder.
            let status = unsafe { lantern_svt_finish(self.svt.0) };
            if status != 0 {
                return Err(svt_error("finish", status));
            }
        }
        let deadline = Instant::now() + PACKET_DEADLINE;
        let held = u64::from(!end);
        while self.received + held < self.sent {
            let (mut data, mut len, mut pts, mut key) = (std::ptr::null(), 0u32, 0i64, 0);
            // SAFETY: a live encoder and four places to write to; the packet's bytes stay
            // valid until the next call on this encoder, after `sink` has returned.
            let status =
                unsafe { lantern_svt_receive(self.svt.0, &mut data, &mut len, &mut pts, &mut key) };
            match status {
                1 => {
                    self.received += 1;
                    // SAFETY: per the shim, `len` bytes at `data`.
                    let data = unsafe { std::slice::from_raw_parts(data, len as usize) };
                    sink(Packet {
                        data,
                        pts_us: pts.max(0) as u64,
                        keyframe: key != 0,
                    })?;
                }
                2 => break,
                0 if Instant::now() >= deadline => {
                    return Err(Error::Stalled {
                        what: "SVT-AV1 encoder".into(),
                        timeout: PACKET_DEADLINE,
                    });
                }
                0 => std::thread::sleep(POLL),
                code => return Err(svt_error("receive packet", code)),
            }
        }
        Ok(())
    }
}

fn open(format: Format, preset: i32, kbps: u32, gop: u32) -> Result<Handle, Error> {
    let fps_den = 1000;
    let config = Config {
        width: format.width,
        height: format.height,
        fps_num: (format.fps * f64::from(fps_den)).round().max(1.0) as u32,
        fps_den,
        kbps,
        keyint: gop,
        buffer_ms: (VBV_FRAMES * 1000.0 / format.fps.max(1.0)).round() as u32,
        preset,
        threads: 0,
    };
    let mut svt = std::ptr::null_mut();
    // SAFETY: a valid config and a place for the pointer, which is ours on success.
    let status = unsafe { lantern_svt_open(&config, &mut svt) };
    if status != 0 || svt.is_null() {
        return Err(svt_error(
            format!(
                "open ({}x{} at {} fps, preset {preset}, {kbps} kbit/s)",
                format.width, format.height, format.fps
            ),
            status,
        ));
    }
    Ok(Handle(svt))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{FORMAT, encode, finish, keyframes, mean, settings};
    use super::super::{Backend, Encoder};
    use crate::source::Cube;

    fn svt(kbps: u32) -> Encoder {
        Encoder::new(FORMAT, &settings(Backend::SvtAv1, kbps)).unwrap()
    }

    #[test]
    fn each_frame_comes_out_when_the_next_goes_in_and_the_last_at_the_end() {
        // `encode` (the helper) asserts that at most one frame is held back.
        let cube = Cube::new(FORMAT).unwrap();
        let mut encoder = svt(2000);
        let mut packets = encode(&mut encoder, &cube, 0..20, None);
        assert_eq!(packets.len(), 19);
        packets.extend(finish(&mut encoder));
        let frames: Vec<u32> = packets.iter().map(|p| p.0).collect();
        assert_eq!(frames, (0..20).collect::<Vec<_>>());
        assert_eq!(keyframes(&packets), [0]);
    }

    #[test]
    fn a_repeat_lets_out_the_picture_held_back() {
        let cube = Cube::new(FORMAT).unwrap();
        let Encoder::SvtAv1(mut encoder) = svt(2000) else {
            unreachable!()
        };
        let mut frame = lantern_media::ffmpeg::i420_frame(FORMAT.width, FORMAT.height);
        cube.render(0, &mut lantern_media::ffmpeg::i420_mut(&mut frame).unwrap())
            .unwrap();
        let mut out = Vec::new();
        let mut keep = |p: super::Packet| {
            out.push(p.pts_us);
            Ok(())
        };
        encoder.encode(&mut frame, 0, false, &mut keep).unwrap();
        assert!(encoder.holding(), "nothing out yet");
        encoder.repeat(16_667, &mut keep).unwrap();
        assert!(!encoder.holding(), "a held repeat needs no repeat");
        encoder.finish(&mut keep).unwrap();
        assert_eq!(out, [0, 16_667], "the held picture came out first");
    }

    #[test]
    fn a_new_bitrate_starts_with_a_keyframe_and_shows_in_the_frames_after_it() {
        let cube = Cube::new(FORMAT).unwrap();
        let mut encoder = svt(3000);
        // Past the second an encoder runs at least: 40 frames at 30 fps.
        let high = encode(&mut encoder, &cube, 0..40, None);
        encoder.set_bitrate(300);
        let low = encode(&mut encoder, &cube, 40..80, None);
        assert_eq!(
            keyframes(&low),
            [40],
            "the first frame at the new rate is a keyframe"
        );
        let (before, after) = (mean(&high, 10..40), mean(&low, 50..80));
        assert!(
            after < before / 3.0,
            "frames after the drop average {after:.0} bytes, before {before:.0}"
        );
    }

    #[test]
    fn a_new_encoder_runs_at_least_a_second() {
        let cube = Cube::new(FORMAT).unwrap();
        let mut encoder = svt(3000);
        encode(&mut encoder, &cube, 0..10, None);
        encoder.set_bitrate(300);
        let packets = encode(&mut encoder, &cube, 10..40, None);
        assert_eq!(
            keyframes(&packets),
            [30],
            "the first frame after a second at 30 fps"
        );
    }

    #[test]
    fn a_small_change_waits_for_the_next_keyframe() {
        let cube = Cube::new(FORMAT).unwrap();
        let mut encoder = svt(2000);
        encode(&mut encoder, &cube, 0..35, None);
        encoder.set_bitrate(1500);
        let packets = encode(&mut encoder, &cube, 35..45, Some(40));
        assert_eq!(
            keyframes(&packets),
            [40],
            "no keyframe but the one asked for"
        );
    }

    #[test]
    fn a_frame_of_another_size_is_refused_not_read() {
        let mut encoder = svt(1000);
        let mut small = lantern_media::ffmpeg::i420_frame(FORMAT.width / 2, FORMAT.height);
        let err = encoder
            .encode(&mut small, 0, false, |_| Ok(()))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("320x360"), "{err}");
    }

    #[test]
    fn presets_and_sizes_svt_av1_cannot_take_are_refused_in_one_line() {
        let mut bad = settings(Backend::SvtAv1, 1000);
        bad.preset = "ultrafast".into();
        let err = Encoder::new(FORMAT, &bad).err().unwrap().to_string();
        assert!(err.contains("not an SVT-AV1 preset"), "{err}");
        let odd = crate::source::Format {
            width: 641,
            ..FORMAT
        };
        let err = Encoder::new(odd, &settings(Backend::SvtAv1, 1000))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("even sizes"), "{err}");
    }
}
