//! `app`: the test app, a real Wayland client. It asks to be fullscreen, draws the rotating
//! cube into wl_shm buffers paced by the compositor's frame callbacks, and stamps each frame
//! with the time it commits it, so glass-to-glass through host-daemon is measured from the
//! app's own commit to the viewer's decoded picture. `--tone` plays a sine into the default
//! PipeWire output (the session's sink), for the sound path. It takes the seat's keyboard
//! and pointer: `--input-log` writes what it receives, and every frame carries the echo
//! strip (presses received so far) for input-to-photon.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use host_daemon::wl::{ShmBuffer, dispatch};
use lantern_proto::{clock::now_unix_us, stamp::Echo, stamp::Stamp, yuv};
use moq_pub::source::{Cube, Format};
use wayland_client::globals::registry_queue_init;
use wayland_client::protocol::{
    wl_buffer, wl_callback, wl_compositor, wl_seat, wl_shm, wl_shm_pool, wl_surface,
};
use wayland_client::{Connection, Dispatch, QueueHandle, delegate_noop};

use crate::app_input::Input;
use wayland_protocols::xdg::shell::client::{xdg_surface, xdg_toplevel, xdg_wm_base};

#[derive(clap::Args)]
pub struct Args {
    /// Exit (status 0) after this many frames.
    #[arg(long)]
    frames: Option<u64>,

    /// Play a sine of this frequency (Hz) into PipeWire's default output while running.
    #[arg(long, value_name = "HZ")]
    tone: Option<f64>,

    /// The size to draw until the compositor says otherwise.
    #[arg(long, default_value = "1280x720")]
    size: crate::Size,

    /// Write each input event received (keys with the text they make, pointer motion,
    /// buttons, wheel) to this file as JSON lines.
    #[arg(long, value_name = "FILE")]
    input_log: Option<std::path::PathBuf>,
}

#[derive(Default)]
pub(crate) struct State {
    /// The size the compositor last asked for (0: ours to choose).
    size: (u32, u32),
    /// A configure to acknowledge.
    serial: Option<u32>,
    closed: bool,
    frame_done: bool,
    busy: [bool; 2],
    pub(crate) input: Input,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let _tone = args.tone.map(tone::Player::start).transpose()?;
    let connection =
        Connection::connect_to_env().context("no Wayland compositor (WAYLAND_DISPLAY)")?;
    let (globals, mut queue) = registry_queue_init::<State>(&connection)?;
    let qh = queue.handle();
    let compositor: wl_compositor::WlCompositor = globals.bind(&qh, 4..=6, ())?;
    let shm: wl_shm::WlShm = globals.bind(&qh, 1..=1, ())?;
    let wm: xdg_wm_base::XdgWmBase = globals.bind(&qh, 1..=5, ())?;
    // Version 5 for discrete wheel steps; the seat's devices come with its capabilities.
    let _seat: wl_seat::WlSeat = globals.bind(&qh, 5..=7, ())?;
    let surface = compositor.create_surface(&qh, ());
    let xdg = wm.get_xdg_surface(&surface, &qh, ());
    let toplevel = xdg.get_toplevel(&qh, ());
    toplevel.set_title("Lantern test app".into());
    toplevel.set_app_id("lantern-app".into());
    toplevel.set_fullscreen(None);
    surface.commit();

    let mut state = State {
        input: Input::new(args.input_log.as_deref())?,
        ..State::default()
    };
    let mut size = (0, 0);
    let mut drawing: Option<Drawing> = None;
    let mut n = 0u64;
    let mut last_frame = Instant::now();
    while !state.closed && args.frames.is_none_or(|frames| n < frames) {
        dispatch(&mut queue, &mut state, Duration::from_millis(100))?;
        if let Some(serial) = state.serial.take() {
            xdg.ack_configure(serial);
            let (width, height) = match state.size {
                (0, _) | (_, 0) => (args.size.width, args.size.height),
                other => other,
            };
            if (width, height) != size || drawing.is_none() {
                size = (width, height);
                drawing = Some(Drawing::new(&shm, &qh, width, height)?);
                state.busy = [false; 2];
                state.frame_done = true;
            }
        }
        let Some(drawing) = &mut drawing else {
            continue;
        };
        if !state.frame_done {
            if last_frame.elapsed() > Duration::from_secs(10) {
                bail!("no frame callback from the compositor for 10 s");
            }
            continue;
        }
        let Some(slot) = state.busy.iter().position(|busy| !busy) else {
            continue;
        };
        drawing.draw(n, slot, state.input.echo)?;
        state.busy[slot] = true;
        state.frame_done = false;
        surface.attach(Some(&drawing.buffers[slot].buffer), 0, 0);
        surface.damage_buffer(0, 0, size.0 as i32, size.1 as i32);
        surface.frame(&qh, ());
        surface.commit();
        last_frame = Instant::now();
        n += 1;
    }
    connection.flush()?;
    Ok(())
}

/// The cube and the two buffers it is drawn into by turns.
struct Drawing {
    cube: Cube,
    frame: yuv::Frame,
    buffers: Vec<ShmBuffer>,
}

impl Drawing {
    fn new(
        shm: &wl_shm::WlShm,
        qh: &QueueHandle<State>,
        width: u32,
        height: u32,
    ) -> anyhow::Result<Self> {
        let format = Format {
            width,
            height,
            fps: 60.0,
        };
        let buffers = (0..2)
            .map(|slot| {
                ShmBuffer::new(
                    shm,
                    qh,
                    (width, height, width * 4),
                    wl_shm::Format::Xrgb8888,
                    slot,
                )
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            cube: Cube::new(format)?,
            frame: yuv::Frame::new(width, height)?,
            buffers,
        })
    }

    /// Draw frame `n` into buffer `slot`, stamped with the time now (just before its commit)
    /// and with the input echo under the stamp.
    fn draw(&mut self, n: u64, slot: usize, echo: Echo) -> anyhow::Result<()> {
        let mut picture = self.frame.view_mut();
        self.cube.render(n as u32, &mut picture)?;
        Stamp {
            frame: n as u32,
            capture_us: now_unix_us(),
        }
        .write(&mut picture)?;
        // Frames too small for both strips carry the stamp alone.
        let _ = echo.write(&mut picture);
        let buffer = &mut self.buffers[slot];
        let stride = buffer.stride as usize;
        lantern_media::convert::i420_to_bgrx(&self.frame.image(), buffer.bytes_mut(), stride)?;
        Ok(())
    }
}

impl Dispatch<xdg_wm_base::XdgWmBase, ()> for State {
    fn event(
        _: &mut Self,
        wm: &xdg_wm_base::XdgWmBase,
        event: xdg_wm_base::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let xdg_wm_base::Event::Ping { serial } = event {
            wm.pong(serial);
        }
    }
}

impl Dispatch<xdg_surface::XdgSurface, ()> for State {
    fn event(
        state: &mut Self,
        _: &xdg_surface::XdgSurface,
        event: xdg_surface::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let xdg_surface::Event::Configure { serial } = event {
            state.serial = Some(serial);
        }
    }
}

impl Dispatch<xdg_toplevel::XdgToplevel, ()> for State {
    fn event(
        state: &mut Self,
        _: &xdg_toplevel::XdgToplevel,
        event: xdg_toplevel::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        match event {
            // The size comes before the xdg_surface configure that completes it.
            xdg_toplevel::Event::Configure { width, height, .. } => {
                state.size = (width.max(0) as u32, height.max(0) as u32);
            }
            xdg_toplevel::Event::Close => state.closed = true,
            _ => {}
        }
    }
}

impl Dispatch<wl_callback::WlCallback, ()> for State {
    fn event(
        state: &mut Self,
        _: &wl_callback::WlCallback,
        event: wl_callback::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wl_callback::Event::Done { .. } = event {
            state.frame_done = true;
        }
    }
}

impl Dispatch<wl_buffer::WlBuffer, usize> for State {
    fn event(
        state: &mut Self,
        _: &wl_buffer::WlBuffer,
        event: wl_buffer::Event,
        slot: &usize,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let wl_buffer::Event::Release = event {
            state.busy[*slot] = false;
        }
    }
}

host_daemon::ignore_registry_events!(State);

delegate_noop!(State: ignore wl_compositor::WlCompositor);
delegate_noop!(State: ignore wl_surface::WlSurface);
delegate_noop!(State: ignore wl_shm::WlShm);
delegate_noop!(State: ignore wl_shm_pool::WlShmPool);

mod tone {
    //! A sine into PipeWire's default output, on a loop thread of its own.

    use lantern_media::pipewire::{CHANNELS, Stopper, connect, fill_output, run_stream};
    use lantern_proto::audio::RATE;
    use pipewire as pw;
    use pw::{properties::properties, spa};

    pub struct Player {
        stopper: Stopper,
    }

    impl Player {
        pub fn start(hz: f64) -> anyhow::Result<Self> {
            let (stopper, stopped) = Stopper::new();
            std::thread::Builder::new()
                .name("tone".into())
                .spawn(move || {
                    if let Err(err) = play(hz, stopped) {
                        eprintln!("lantern-bench app: tone: {err}");
                    }
                })?;
            Ok(Self { stopper })
        }
    }

    impl Drop for Player {
        fn drop(&mut self) {
            self.stopper.stop();
        }
    }

    fn play(hz: f64, stopped: pw::channel::Receiver<()>) -> anyhow::Result<()> {
        let connection = connect()?;
        let props = properties! {
            *pw::keys::MEDIA_TYPE => "Audio",
            *pw::keys::MEDIA_CATEGORY => "Playback",
            *pw::keys::MEDIA_ROLE => "Game",
            *pw::keys::NODE_NAME => "lantern-app-tone",
        };
        let stream = pw::stream::StreamBox::new(&connection.core, "lantern-app-tone", props)?;
        let mut phase = 0.0f64;
        let step = hz / RATE as f64;
        let _listener = stream
            .add_local_listener_with_user_data(())
            .process(move |stream, _| {
                fill_output(stream, |bytes| {
                    for frame in bytes.chunks_exact_mut(CHANNELS * 4) {
                        let value = (0.25 * (phase * std::f64::consts::TAU).sin()) as f32;
                        phase = (phase + step).fract();
                        for sample in frame.chunks_exact_mut(4) {
                            sample.copy_from_slice(&value.to_le_bytes());
                        }
                    }
                });
            })
            .register()?;
        run_stream(&connection, &stream, spa::utils::Direction::Output, stopped)?;
        Ok(())
    }
}
