//! PipeWire glue both ends share: connecting to the daemon, and running a stream in Lantern's
//! one raw audio format (48 kHz, stereo, F32LE) on a loop of its own until told to stop.
//!
//! PipeWire's objects are single-threaded: a capture or playback owns a thread that builds its
//! stream with these helpers and runs the loop; [`Stopper`] ends it from any other thread.

use lantern_proto::audio::RATE;
use pipewire as pw;
use pw::spa;

use crate::Error;

/// Interleaved channels in Lantern's raw format.
pub const CHANNELS: usize = 2;

/// A connection to the daemon: the loop, the context that must outlive the core, the core.
pub struct Connection {
    pub mainloop: pw::main_loop::MainLoopRc,
    _context: pw::context::ContextRc,
    pub core: pw::core::CoreRc,
}

/// Connect to the PipeWire daemon, with an error that says what to check when there is none.
pub fn connect() -> Result<Connection, Error> {
    connect_to(None)
}

/// Connect to the daemon listening on `socket` (an absolute path: a session's private
/// PipeWire), or to the default one (`XDG_RUNTIME_DIR`, `PIPEWIRE_REMOTE`).
pub fn connect_to(socket: Option<&std::path::Path>) -> Result<Connection, Error> {
    pw::init();
    let mainloop = pw::main_loop::MainLoopRc::new(None).map_err(|source| Error::PipeWire {
        what: "main loop",
        source,
    })?;
    let context =
        pw::context::ContextRc::new(&mainloop, None).map_err(|source| Error::PipeWire {
            what: "context",
            source,
        })?;
    let remote = socket.map(|path| {
        pw::properties::properties! { *pw::keys::REMOTE_NAME => path.to_string_lossy().into_owned() }
    });
    let core = context
        .connect_rc(remote)
        .map_err(|source| Error::PipeWireConnect {
            remote: match socket {
                Some(path) => path.display().to_string(),
                None => format!(
                    "XDG_RUNTIME_DIR={}",
                    std::env::var("XDG_RUNTIME_DIR").unwrap_or_else(|_| "(unset)".into())
                ),
            },
            source,
        })?;
    Ok(Connection {
        mainloop,
        _context: context,
        core,
    })
}

/// Ends a PipeWire loop from another thread.
pub struct Stopper(pw::channel::Sender<()>);

impl Stopper {
    /// A stopper and the receiver [`run_stream`] watches.
    pub fn new() -> (Self, pw::channel::Receiver<()>) {
        let (send, receive) = pw::channel::channel();
        (Self(send), receive)
    }

    pub fn stop(&self) {
        let _ = self.0.send(());
    }
}

/// Connect `stream` in `direction` with Lantern's one raw format, and run the loop until
/// `stopped` hears from its [`Stopper`] (or the Stopper is gone).
pub fn run_stream(
    connection: &Connection,
    stream: &pw::stream::Stream,
    direction: spa::utils::Direction,
    stopped: pw::channel::Receiver<()>,
) -> Result<(), Error> {
    let format = format_param()?;
    let flags = pw::stream::StreamFlags::AUTOCONNECT
        | pw::stream::StreamFlags::MAP_BUFFERS
        | pw::stream::StreamFlags::RT_PROCESS;
    run_with(connection, stream, direction, flags, &[format], stopped)
}

/// Connect `stream` offering `params` (serialized pods, see [`pod`]) and run the loop until
/// `stopped` hears from its [`Stopper`].
pub fn run_with(
    connection: &Connection,
    stream: &pw::stream::Stream,
    direction: spa::utils::Direction,
    flags: pw::stream::StreamFlags,
    params: &[Vec<u8>],
    stopped: pw::channel::Receiver<()>,
) -> Result<(), Error> {
    let mut pods = params
        .iter()
        .map(|bytes| {
            spa::pod::Pod::from_bytes(bytes)
                .ok_or_else(|| Error::PipeWireFormat("a parameter does not parse as a pod".into()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    stream
        .connect(direction, None, flags, &mut pods)
        .map_err(|source| Error::PipeWire {
            what: "stream connect",
            source,
        })?;
    let quit = connection.mainloop.clone();
    let _stop = stopped.attach(connection.mainloop.loop_(), move |()| quit.quit());
    connection.mainloop.run();
    Ok(())
}

/// A parameter object as the bytes of a pod.
pub fn pod(object: spa::pod::Object) -> Result<Vec<u8>, Error> {
    Ok(spa::pod::serialize::PodSerializer::serialize(
        std::io::Cursor::new(Vec::new()),
        &spa::pod::Value::Object(object),
    )
    .map_err(|e| Error::PipeWireFormat(format!("{e:?}")))?
    .0
    .into_inner())
}

/// Fill an output stream's next buffer in Lantern's raw format: `fill` gets the bytes of as
/// many whole frames as PipeWire asks for (or as fit) and must write them all. For the
/// real-time process callback: it neither locks nor allocates.
pub fn fill_output(stream: &pw::stream::Stream, fill: impl FnOnce(&mut [u8])) {
    let Some(mut buffer) = stream.dequeue_buffer() else {
        return;
    };
    let requested = buffer.requested() as usize;
    let Some(data) = buffer.datas_mut().first_mut() else {
        return;
    };
    let stride = CHANNELS * 4;
    let Some(bytes) = data.data() else {
        return;
    };
    let mut frames = bytes.len() / stride;
    if requested > 0 {
        frames = frames.min(requested);
    }
    fill(&mut bytes[..frames * stride]);
    let chunk = data.chunk_mut();
    *chunk.offset_mut() = 0;
    *chunk.stride_mut() = stride as i32;
    *chunk.size_mut() = (frames * stride) as u32;
}

/// PipeWire ticks (counted at `rate`, a fraction of a second) in units of `per_second`:
/// samples at 48 kHz, or µs. `None` for a rate with no denominator.
pub fn ticks_to(ticks: u64, rate: spa::utils::Fraction, per_second: u64) -> Option<u64> {
    (rate.denom > 0).then(|| {
        (ticks as u128 * per_second as u128 * rate.num as u128 / rate.denom as u128) as u64
    })
}

/// The EnumFormat parameter for Lantern's one raw format: F32LE, 48 kHz, stereo (FL, FR).
fn format_param() -> Result<Vec<u8>, Error> {
    let mut info = spa::param::audio::AudioInfoRaw::new();
    info.set_format(spa::param::audio::AudioFormat::F32LE);
    info.set_rate(RATE);
    info.set_channels(CHANNELS as u32);
    let mut position = [0; spa::param::audio::MAX_CHANNELS];
    position[0] = spa::sys::SPA_AUDIO_CHANNEL_FL;
    position[1] = spa::sys::SPA_AUDIO_CHANNEL_FR;
    info.set_position(position);
    pod(spa::pod::Object {
        type_: spa::utils::SpaTypes::ObjectParamFormat.as_raw(),
        id: spa::param::ParamType::EnumFormat.as_raw(),
        properties: info.into(),
    })
}
