//! `--capture pipewire:NODE`: the picture of any PipeWire video node (gamescope's, a portal's,
//! OBS's, a GStreamer `pipewiresink`'s) on the session's PipeWire.
//!
//! Two formats are offered: a DMA-BUF one with the linear modifier (the only layout a CPU can
//! read without a GPU to de-tile) and a shared-memory one; the node picks. Each buffer is
//! copied, on PipeWire's loop thread, into a picture of ours and handed back at once (a
//! producer must never wait on our encoder); the picture goes to the encoding thread through a
//! [`Latest`] hand-off, and the encoding thread converts the newest once, straight into the
//! encoder's buffer. Pictures go back to the loop thread to fill again, so neither side
//! allocates once running. The stream is not real-time (no `RT_PROCESS`): its callback runs on
//! the loop thread, where the hand-off's brief lock is allowed. A picture the encoder did not
//! take before the next one arrived counts as a drop; a still node repeats its last picture
//! every [`REPEAT_AFTER`](super::REPEAT_AFTER), as screencopy does.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use lantern_media::latest::{Empty, Latest};
use lantern_media::pipewire::{Stopper, connect_to, pod, run_with};
use lantern_proto::clock::now_unix_us;
use lantern_proto::picture::{Image, PixelFormat};
use moq_pub::source::{Canvas, Captured, Format, Source};
use pipewire as pw;
use pw::properties::properties;
use pw::spa;
use spa::buffer::DataType;
use spa::param::format::{FormatProperties, MediaSubtype, MediaType};
use spa::param::video::{VideoFormat, VideoInfoRaw};
use spa::pod::{Property, PropertyFlags, Value};
use spa::utils::{Choice, ChoiceEnum, ChoiceFlags, Fraction, Rectangle, SpaTypes};
use tokio_util::sync::CancellationToken;

use super::{Meter, REPEAT_AFTER, shared};
use crate::Error;

/// DRM_FORMAT_MOD_LINEAR: rows in memory order, readable through a mapping.
const LINEAR: i64 = 0;

/// The formats we convert from, in PipeWire's names and ours.
const FORMATS: [(VideoFormat, PixelFormat); 4] = [
    (VideoFormat::BGRx, PixelFormat::Bgrx),
    (VideoFormat::BGRA, PixelFormat::Bgra),
    (VideoFormat::I420, PixelFormat::I420),
    (VideoFormat::NV12, PixelFormat::Nv12),
];

pub struct PipeWireVideo {
    shared: Arc<Shared>,
    /// The encoder side's picture: the newest taken, converted again for a repeat.
    picture: Picture,
    have_picture: bool,
    /// `picture` is the one [`PipeWireVideo::open`] waited for, not delivered yet.
    opening: bool,
    /// The kind of buffer the pictures come in, as last told to the meter.
    buffers: &'static str,
    format: Format,
    meter: Arc<Meter>,
    cancel: CancellationToken,
    last_delivered: Instant,
    node: String,
    _stopper: StopOnDrop,
}

/// One picture as the node delivered it (planes back to back).
#[derive(Clone, Default)]
struct Picture {
    bytes: Vec<u8>,
    pixels: Option<PixelFormat>,
    width: u32,
    height: u32,
    stride: usize,
    arrived_us: u64,
    /// It came in a DMA-BUF (else in shared memory).
    dmabuf: bool,
}

#[derive(Default)]
struct Shared {
    latest: Latest<Picture>,
    /// Fresh pictures a newer one replaced.
    replaced: AtomicU64,
    /// Buffers that could not be read (no mapping: a tiled DMA-BUF needs a GPU).
    unreadable: AtomicU64,
    failed: Mutex<Option<lantern_media::Error>>,
}

impl Shared {
    /// The capture is over: why, if it failed, for the encoding thread, which wakes.
    fn end(&self, failed: Option<lantern_media::Error>) {
        if let Some(err) = failed {
            self.failed
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get_or_insert(err);
        }
        self.latest.close();
    }

    fn failure(&self) -> Option<lantern_media::Error> {
        self.failed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

struct StopOnDrop(Stopper);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop();
    }
}

impl PipeWireVideo {
    /// Connect to the PipeWire on `remote` and capture `node` (its `node.name` or serial),
    /// waiting up to `timeout` for its first picture, whose size becomes the stream's.
    pub fn open(
        remote: &std::path::Path,
        node: &str,
        fps: f64,
        meter: Arc<Meter>,
        cancel: CancellationToken,
        timeout: Duration,
    ) -> Result<Self, Error> {
        let shared = Arc::new(Shared::default());
        let (stopper, stopped) = Stopper::new();
        let (remote, target, thread_shared) =
            (remote.to_path_buf(), node.to_string(), shared.clone());
        std::thread::Builder::new()
            .name("pipewire-video".into())
            .spawn(move || {
                let ran = run(&remote, &target, fps, thread_shared.clone(), stopped);
                thread_shared.end(ran.err());
            })
            .map_err(|err| Error::io("cannot start the PipeWire video thread", err))?;
        let mut capture = Self {
            shared,
            picture: Picture::default(),
            have_picture: false,
            opening: true,
            buffers: "",
            format: Format {
                width: 0,
                height: 0,
                fps,
            },
            meter,
            cancel,
            last_delivered: Instant::now(),
            node: node.to_string(),
            _stopper: StopOnDrop(stopper),
        };
        capture.picture = capture.first_picture(timeout)?;
        capture.format.width = capture.picture.width;
        capture.format.height = capture.picture.height;
        tracing::info!(
            node,
            width = capture.format.width,
            height = capture.format.height,
            "capturing a PipeWire video node"
        );
        Ok(capture)
    }

    /// Wait up to `timeout` for the node's first picture.
    fn first_picture(&self, timeout: Duration) -> Result<Picture, Error> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let waited = self
                .shared
                .latest
                .take(Some(left.min(Duration::from_millis(100))));
            match waited {
                Ok(picture) => return Ok(picture),
                Err(Empty::Closed) => {
                    let why = lantern_media::Error::StreamFailed("the stream ended".into());
                    return Err(Error::node(
                        &self.node,
                        self.shared.failure().unwrap_or(why),
                    ));
                }
                Err(Empty::Quiet) if left.is_zero() || self.cancel.is_cancelled() => {
                    let node = &self.node;
                    return Err(Error::Timeout {
                        what: format!(
                            "a picture from PipeWire node {node:?} (is it there, and a video \
                             source in BGRx, BGRA, I420 or NV12?)"
                        ),
                        timeout,
                    });
                }
                Err(Empty::Quiet) => {}
            }
        }
    }

    /// The newest picture, or the last one again after a still stretch; `None` on a stop.
    fn take(&mut self, canvas: &mut Canvas) -> Result<Option<Captured>, Error> {
        loop {
            if self.cancel.is_cancelled() {
                return Ok(None);
            }
            let unreadable = self.shared.unreadable.swap(0, Ordering::Relaxed);
            if unreadable > 0 {
                self.meter.failures(unreadable);
            }
            let replaced = self.shared.replaced.swap(0, Ordering::Relaxed);
            if replaced > 0 {
                self.meter.drops(replaced);
            }
            let idle = self.last_delivered.elapsed();
            let wait = REPEAT_AFTER
                .saturating_sub(idle)
                .clamp(Duration::from_millis(1), Duration::from_millis(50));
            let next = match std::mem::take(&mut self.opening) {
                // The picture `open` waited for, unless a newer one came since.
                true => Ok(self.shared.latest.try_take()),
                false => self.shared.latest.take(Some(wait)).map(Some),
            };
            match next {
                Ok(newer) => {
                    if let Some(newer) = newer {
                        let older = std::mem::replace(&mut self.picture, newer);
                        self.shared.latest.recycle(older);
                    }
                    return self.deliver(canvas).map(Some);
                }
                Err(Empty::Closed) => {
                    return match self.shared.failure() {
                        Some(source) => Err(Error::node(&self.node, source)),
                        None => Ok(None),
                    };
                }
                Err(Empty::Quiet) => {
                    if self.have_picture && self.last_delivered.elapsed() >= REPEAT_AFTER {
                        self.convert(canvas)?;
                        self.meter.repeat();
                        self.last_delivered = Instant::now();
                        return Ok(Some(Captured {
                            capture_us: now_unix_us(),
                            stamped: false,
                        }));
                    }
                }
            }
        }
    }

    /// The picture just taken, converted for the encoder.
    fn deliver(&mut self, canvas: &mut Canvas) -> Result<Captured, Error> {
        let buffers = if self.picture.dmabuf { "dmabuf" } else { "shm" };
        if !self.have_picture || buffers != self.buffers {
            // Said once, and again only if the node renegotiates.
            self.buffers = buffers;
            self.meter.buffers(buffers);
        }
        self.have_picture = true;
        let convert_us = self.convert(canvas)?;
        let now_us = now_unix_us();
        self.meter
            .frame(now_us.saturating_sub(self.picture.arrived_us), convert_us);
        self.last_delivered = Instant::now();
        Ok(Captured {
            capture_us: self.picture.arrived_us,
            stamped: false,
        })
    }

    /// Convert the encoder side's picture into the encoder's buffer; its time in µs.
    fn convert(&self, canvas: &mut Canvas) -> Result<u64, Error> {
        let start = Instant::now();
        let p = &self.picture;
        if (p.width, p.height) != (self.format.width, self.format.height) {
            return Err(Error::Capture(format!(
                "PipeWire node {:?} changed its size from {}x{} to {}x{}: start the session \
                 again",
                self.node, self.format.width, self.format.height, p.width, p.height
            )));
        }
        let pixels = p
            .pixels
            .ok_or_else(|| Error::Capture("a picture before its format".into()))?;
        let (planes, strides) = planes(pixels, &p.bytes, p.stride, p.height as usize);
        let image = Image::new(pixels, p.width, p.height, &planes, &strides).map_err(|source| {
            Error::Buffer {
                what: format!("PipeWire node {:?}'s buffer", self.node),
                source,
            }
        })?;
        canvas.convert(&image)?;
        Ok(start.elapsed().as_micros() as u64)
    }
}

impl Source for PipeWireVideo {
    fn format(&self) -> Format {
        self.format
    }

    fn next(&mut self, canvas: &mut Canvas) -> Result<Option<Captured>, moq_pub::Error> {
        self.take(canvas)
            .map_err(|e| moq_pub::Error::Source(Box::new(e)))
    }
}

/// The planes of a picture whose planes lie back to back in one buffer, the first `stride`
/// bytes a row and the chroma planes at half of it.
fn planes(
    pixels: PixelFormat,
    bytes: &[u8],
    stride: usize,
    height: usize,
) -> (Vec<&[u8]>, Vec<usize>) {
    let luma = (stride * height).min(bytes.len());
    let chroma_rows = height.div_ceil(2);
    match pixels {
        PixelFormat::Bgrx | PixelFormat::Bgra => (vec![bytes], vec![stride]),
        PixelFormat::Nv12 => (vec![&bytes[..luma], &bytes[luma..]], vec![stride, stride]),
        PixelFormat::I420 => {
            let half = stride.div_ceil(2);
            let u_end = (luma + half * chroma_rows).min(bytes.len());
            (
                vec![&bytes[..luma], &bytes[luma..u_end], &bytes[u_end..]],
                vec![stride, half, half],
            )
        }
    }
}

/// What the loop thread knows of the negotiated format.
#[derive(Clone, Copy, Default)]
struct Negotiated {
    pixels: Option<PixelFormat>,
    width: u32,
    height: u32,
    dmabuf: bool,
}

/// The PipeWire thread: connect, capture until told to stop.
fn run(
    remote: &std::path::Path,
    node: &str,
    fps: f64,
    shared: Arc<Shared>,
    stopped: pw::channel::Receiver<()>,
) -> Result<(), lantern_media::Error> {
    let connection = connect_to(Some(remote))?;
    let props = properties! {
        *pw::keys::MEDIA_TYPE => "Video",
        *pw::keys::MEDIA_CATEGORY => "Capture",
        *pw::keys::MEDIA_ROLE => "Screen",
        *pw::keys::NODE_NAME => "lantern-video-capture",
        *pw::keys::TARGET_OBJECT => node,
    };
    let stream = pw::stream::StreamBox::new(&connection.core, "lantern-video-capture", props)
        .map_err(|source| lantern_media::Error::PipeWire {
            what: "video capture stream",
            source,
        })?;
    let (on_state, on_process) = (shared.clone(), shared);
    let _listener = stream
        .add_local_listener_with_user_data(Negotiated::default())
        .state_changed(move |_, _, _, state| {
            if let pw::stream::StreamState::Error(why) = state {
                on_state.end(Some(lantern_media::Error::StreamFailed(why)));
            }
        })
        .param_changed(|stream, negotiated, id, param| {
            let Some(param) = param else { return };
            if id != spa::param::ParamType::Format.as_raw() {
                return;
            }
            match negotiate(param) {
                Some(found) => {
                    *negotiated = found;
                    tracing::info!(
                        width = found.width,
                        height = found.height,
                        format = ?found.pixels,
                        dmabuf = found.dmabuf,
                        "PipeWire video format"
                    );
                    if let Err(err) = request_buffers(stream, found.dmabuf) {
                        tracing::warn!(err = %err, "cannot ask for the buffers' kind");
                    }
                }
                None => tracing::warn!("PipeWire offered a video format Lantern cannot read"),
            }
        })
        .process(move |stream, negotiated| {
            let Some(mut buffer) = stream.dequeue_buffer() else {
                return;
            };
            let Some(data) = buffer.datas_mut().first_mut() else {
                return;
            };
            let (offset, size) = (data.chunk().offset(), data.chunk().size());
            let stride = data.chunk().stride().max(0) as usize;
            let kind = match data.type_() {
                DataType::MemFd => shared::Kind::MemFd,
                DataType::DmaBuf => shared::Kind::DmaBuf,
                DataType::MemPtr => shared::Kind::MemPtr,
                _ => {
                    on_process.unreadable.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            };
            let raw = data.as_raw();
            let (fd, mapoffset, maxsize) = (raw.fd, raw.mapoffset, raw.maxsize);
            let buffer = shared::Buffer {
                kind,
                fd: fd.try_into().unwrap_or(-1),
                mapoffset: mapoffset.into(),
                maxsize: maxsize.into(),
                mapped: data.data().map(|d| &*d),
            };
            let mut picture = on_process.latest.spare().unwrap_or_default();
            if let Err(why) = buffer.copy(offset.into(), size.into(), &mut picture.bytes) {
                tracing::debug!(?why, "a PipeWire buffer not read");
                on_process.unreadable.fetch_add(1, Ordering::Relaxed);
                on_process.latest.recycle(picture);
                return;
            }
            let size = size as usize;
            picture.pixels = negotiated.pixels;
            (picture.width, picture.height) = (negotiated.width, negotiated.height);
            picture.stride = if stride > 0 {
                stride
            } else {
                size / negotiated.height.max(1) as usize
            };
            picture.arrived_us = now_unix_us();
            picture.dmabuf = negotiated.dmabuf;
            if let Some(older) = on_process.latest.put(picture) {
                on_process.replaced.fetch_add(1, Ordering::Relaxed);
                on_process.latest.recycle(older);
            }
        })
        .register()
        .map_err(|source| lantern_media::Error::PipeWire {
            what: "video capture listener",
            source,
        })?;
    let params = [enum_format(Some(LINEAR), fps)?, enum_format(None, fps)?];
    let flags = pw::stream::StreamFlags::AUTOCONNECT | pw::stream::StreamFlags::MAP_BUFFERS;
    run_with(
        &connection,
        &stream,
        spa::utils::Direction::Input,
        flags,
        &params,
        stopped,
    )
}

/// The negotiated format, if it is one we read.
fn negotiate(param: &spa::pod::Pod) -> Option<Negotiated> {
    let (media_type, subtype) = spa::param::format_utils::parse_format(param).ok()?;
    if media_type != MediaType::Video || subtype != MediaSubtype::Raw {
        return None;
    }
    let mut info = VideoInfoRaw::new();
    info.parse(param).ok()?;
    let pixels = FORMATS
        .iter()
        .find(|(theirs, _)| *theirs == info.format())
        .map(|(_, ours)| *ours)?;
    let dmabuf = param.as_object().ok().is_some_and(|object| {
        object
            .find_prop(spa::utils::Id(FormatProperties::VideoModifier.as_raw()))
            .is_some()
    });
    Some(Negotiated {
        pixels: Some(pixels),
        width: info.size().width,
        height: info.size().height,
        dmabuf,
    })
}

/// Ask for DMA-BUF buffers when the format carries a modifier, shared memory otherwise.
fn request_buffers(stream: &pw::stream::Stream, dmabuf: bool) -> Result<(), lantern_media::Error> {
    let kinds: i32 = if dmabuf {
        1 << DataType::DmaBuf.as_raw()
    } else {
        (1 << DataType::MemFd.as_raw()) | (1 << DataType::MemPtr.as_raw())
    };
    let buffers = pod(spa::pod::Object {
        type_: SpaTypes::ObjectParamBuffers.as_raw(),
        id: spa::param::ParamType::Buffers.as_raw(),
        properties: vec![Property {
            key: spa::sys::SPA_PARAM_BUFFERS_dataType,
            flags: PropertyFlags::empty(),
            value: Value::Choice(spa::pod::ChoiceValue::Int(Choice(
                ChoiceFlags::empty(),
                ChoiceEnum::Flags {
                    default: kinds,
                    flags: vec![kinds],
                },
            ))),
        }],
    })?;
    let pod = spa::pod::Pod::from_bytes(&buffers)
        .ok_or_else(|| lantern_media::Error::PipeWireFormat("the buffers pod".into()))?;
    stream
        .update_params(&mut [pod])
        .map_err(|source| lantern_media::Error::PipeWire {
            what: "buffer parameters",
            source,
        })
}

/// An EnumFormat: raw video in a format we read, any size, up to the session's rate; with
/// `modifier`, DMA-BUF of that layout.
fn enum_format(modifier: Option<i64>, fps: f64) -> Result<Vec<u8>, lantern_media::Error> {
    let id = |key: FormatProperties, value: u32| Property {
        key: key.as_raw(),
        flags: PropertyFlags::empty(),
        value: Value::Id(spa::utils::Id(value)),
    };
    let formats: Vec<spa::utils::Id> = FORMATS
        .iter()
        .map(|(format, _)| spa::utils::Id(format.as_raw()))
        .collect();
    let rate = fps.round().clamp(1.0, 1000.0) as u32;
    let mut properties = vec![
        id(FormatProperties::MediaType, MediaType::Video.as_raw()),
        id(FormatProperties::MediaSubtype, MediaSubtype::Raw.as_raw()),
        Property {
            key: FormatProperties::VideoFormat.as_raw(),
            flags: PropertyFlags::empty(),
            value: Value::Choice(spa::pod::ChoiceValue::Id(Choice(
                ChoiceFlags::empty(),
                ChoiceEnum::Enum {
                    default: formats[0],
                    alternatives: formats.clone(),
                },
            ))),
        },
        Property {
            key: FormatProperties::VideoSize.as_raw(),
            flags: PropertyFlags::empty(),
            value: Value::Choice(spa::pod::ChoiceValue::Rectangle(Choice(
                ChoiceFlags::empty(),
                ChoiceEnum::Range {
                    default: Rectangle {
                        width: 1280,
                        height: 720,
                    },
                    min: Rectangle {
                        width: 16,
                        height: 16,
                    },
                    max: Rectangle {
                        width: 8192,
                        height: 8192,
                    },
                },
            ))),
        },
        Property {
            key: FormatProperties::VideoFramerate.as_raw(),
            flags: PropertyFlags::empty(),
            value: Value::Choice(spa::pod::ChoiceValue::Fraction(Choice(
                ChoiceFlags::empty(),
                ChoiceEnum::Range {
                    default: Fraction {
                        num: rate,
                        denom: 1,
                    },
                    min: Fraction { num: 0, denom: 1 },
                    max: Fraction {
                        num: 1000,
                        denom: 1,
                    },
                },
            ))),
        },
    ];
    if let Some(modifier) = modifier {
        properties.push(Property {
            key: FormatProperties::VideoModifier.as_raw(),
            flags: PropertyFlags::MANDATORY,
            value: Value::Long(modifier),
        });
    }
    pod(spa::pod::Object {
        type_: SpaTypes::ObjectParamFormat.as_raw(),
        id: spa::param::ParamType::EnumFormat.as_raw(),
        properties,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planes_of_one_buffer_split_where_the_chroma_starts() {
        let bytes = vec![0u8; 8 * 4 * 3 / 2];
        let lengths = |split: &[&[u8]]| split.iter().map(|p| p.len()).collect::<Vec<_>>();
        let (split, strides) = planes(PixelFormat::I420, &bytes, 8, 4);
        assert_eq!(lengths(&split), [32, 8, 8]);
        assert_eq!(strides, [8, 4, 4]);
        assert!(Image::new(PixelFormat::I420, 8, 4, &split, &strides).is_ok());
        let (split, _) = planes(PixelFormat::Nv12, &bytes, 8, 4);
        assert_eq!(lengths(&split), [32, 16]);
        let short = vec![0u8; 10];
        let (split, strides) = planes(PixelFormat::I420, &short, 8, 4);
        assert!(Image::new(PixelFormat::I420, 8, 4, &split, &strides).is_err());
    }

    #[test]
    fn both_offers_serialize_and_only_the_first_asks_for_a_modifier() {
        let with = enum_format(Some(LINEAR), 60.0).unwrap();
        let without = enum_format(None, 60.0).unwrap();
        assert!(with.len() > without.len());
        let pod = spa::pod::Pod::from_bytes(&with).unwrap();
        let object = pod.as_object().unwrap();
        let key = spa::utils::Id(FormatProperties::VideoModifier.as_raw());
        assert!(object.find_prop(key).is_some());
        let pod = spa::pod::Pod::from_bytes(&without).unwrap();
        assert!(pod.as_object().unwrap().find_prop(key).is_none());
    }
}
