//! The compositor in-process with Wayland clients of its own: an app (xdg-shell, wl_shm, a
//! subsurface, a pointer lock) and the daemon's side on the control socket (a wlr-screencopy
//! capture, a virtual pointer). The capture receives the app's picture, composited, and only
//! once it changed; a locked pointer gets relative motion only.

use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use lantern_compositor::figures::Report;
use memmap2::MmapMut;
use wayland_client::globals::{GlobalList, GlobalListContents, registry_queue_init};
use wayland_client::protocol::{
    wl_buffer, wl_callback, wl_compositor, wl_output, wl_pointer, wl_registry, wl_seat, wl_shm,
    wl_shm_pool, wl_subcompositor, wl_subsurface, wl_surface,
};
use wayland_client::{Connection, Dispatch, EventQueue, QueueHandle, delegate_noop};
use wayland_protocols::wp::linux_dmabuf::zv1::client::{
    zwp_linux_buffer_params_v1, zwp_linux_dmabuf_v1,
};
use wayland_protocols::wp::pointer_constraints::zv1::client::{
    zwp_locked_pointer_v1, zwp_pointer_constraints_v1,
};
use wayland_protocols::wp::relative_pointer::zv1::client::{
    zwp_relative_pointer_manager_v1, zwp_relative_pointer_v1,
};
use wayland_protocols::wp::viewporter::client::{wp_viewport, wp_viewporter};
use wayland_protocols::xdg::shell::client::{xdg_surface, xdg_toplevel, xdg_wm_base};
use wayland_protocols_wlr::screencopy::v1::client::{
    zwlr_screencopy_frame_v1, zwlr_screencopy_manager_v1,
};
use wayland_protocols_wlr::virtual_pointer::v1::client::{
    zwlr_virtual_pointer_manager_v1, zwlr_virtual_pointer_v1,
};

const W: i32 = 64;
const H: i32 = 48;
const RED: u32 = 0x00ff_0000;
const GREEN: u32 = 0x0000_ff00;
const BLUE: u32 = 0xff00_00ff;

#[derive(Default)]
struct State {
    configured: Option<u32>,
    callbacks_done: u32,
    /// The screencopy frame's buffer description, then its ready time.
    described: bool,
    ready: Option<Duration>,
    failed: bool,
    /// The pointer: where it entered, motions, relative motions, and the lock.
    entered: bool,
    motions: Vec<(f64, f64)>,
    relative: Vec<(f64, f64)>,
    locked: bool,
}

/// A wl_shm buffer over a memfd of its own.
struct Buffer {
    buffer: wl_buffer::WlBuffer,
    map: MmapMut,
    file: std::fs::File,
}

impl Buffer {
    fn new(
        shm: &wl_shm::WlShm,
        qh: &QueueHandle<State>,
        w: i32,
        h: i32,
        format: wl_shm::Format,
    ) -> Self {
        let size = (w * h * 4) as usize;
        let file = memfd(size);
        // SAFETY: the file is ours and sized.
        let map = unsafe { MmapMut::map_mut(&file) }.unwrap();
        let pool = shm.create_pool(file.as_fd(), size as i32, qh, ());
        let buffer = pool.create_buffer(0, w, h, w * 4, format, qh, ());
        pool.destroy();
        Self { buffer, map, file }
    }

    fn fill(&mut self, colour: u32) {
        for px in self.map.chunks_exact_mut(4) {
            px.copy_from_slice(&colour.to_le_bytes());
        }
    }

    fn pixel(&self, x: i32, y: i32) -> u32 {
        let at = ((y * W + x) * 4) as usize;
        u32::from_le_bytes(self.map[at..at + 4].try_into().unwrap()) & 0x00ff_ffff
    }
}

fn memfd(size: usize) -> std::fs::File {
    // SAFETY: a fresh memfd, owned at once.
    let fd = unsafe { libc::memfd_create(c"test-buffer".as_ptr(), libc::MFD_CLOEXEC) };
    assert!(fd >= 0);
    // SAFETY: fd is ours.
    let file = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    file.set_len(size as u64).unwrap();
    file
}

/// The daemon's capture: wlr-screencopy on the control socket, into a buffer of its own.
struct Capture {
    _connection: Connection,
    queue: EventQueue<State>,
    state: State,
    manager: zwlr_screencopy_manager_v1::ZwlrScreencopyManagerV1,
    output: wl_output::WlOutput,
    target: Buffer,
}

impl Capture {
    fn connect(compositor: &Compositor) -> Self {
        let (connection, globals, queue) = Compositor::connect(&compositor.control);
        let qh = queue.handle();
        let manager = globals.bind(&qh, 3..=3, ()).unwrap();
        let output = globals.bind(&qh, 1..=4, ()).unwrap();
        let shm: wl_shm::WlShm = globals.bind(&qh, 1..=1, ()).unwrap();
        let target = Buffer::new(&shm, &qh, W, H, wl_shm::Format::Xrgb8888);
        Self {
            _connection: connection,
            queue,
            state: State::default(),
            manager,
            output,
            target,
        }
    }

    /// Ask for the next picture (`copy_with_damage`); the request has reached the compositor
    /// when this returns.
    fn ask(&mut self) -> zwlr_screencopy_frame_v1::ZwlrScreencopyFrameV1 {
        self.ask_with(false)
    }

    /// The same, with the pointer drawn in if `cursor`.
    fn ask_with(&mut self, cursor: bool) -> zwlr_screencopy_frame_v1::ZwlrScreencopyFrameV1 {
        self.state = State::default();
        let qh = self.queue.handle();
        let overlay_cursor = i32::from(cursor);
        let frame = self
            .manager
            .capture_output(overlay_cursor, &self.output, &qh, ());
        wait(
            &mut self.queue,
            &mut self.state,
            "the frame's description",
            |s| s.described,
        );
        frame.copy_with_damage(&self.target.buffer);
        self.queue.roundtrip(&mut self.state).unwrap();
        frame
    }

    /// Wait for the copy asked for; whether it succeeded.
    fn done(&mut self, what: &str) -> bool {
        wait(&mut self.queue, &mut self.state, what, |s| {
            s.ready.is_some() || s.failed
        });
        !self.state.failed
    }
}

/// Handle the queue's events until `done`, failing after 20 s without it.
fn wait(
    queue: &mut EventQueue<State>,
    state: &mut State,
    what: &str,
    done: impl Fn(&State) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(20);
    queue.dispatch_pending(state).unwrap();
    while !done(state) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "waiting for {what}");
        queue.flush().unwrap();
        if let Some(guard) = queue.prepare_read() {
            let mut poll = libc::pollfd {
                fd: std::os::fd::AsRawFd::as_raw_fd(&guard.connection_fd()),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            if unsafe { libc::poll(&mut poll, 1, left.as_millis().min(1000) as i32) } > 0 {
                guard.read().unwrap();
            }
        }
        queue.dispatch_pending(state).unwrap();
    }
}

struct Compositor {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<lantern_compositor::Summary>>,
    _dir: tempfile::TempDir,
    app: std::path::PathBuf,
    control: std::path::PathBuf,
}

impl Compositor {
    fn start() -> Self {
        Self::start_with(None)
    }

    /// With linux-dmabuf offered, naming `device` as the GPU.
    fn start_with(device: Option<&str>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = lantern_compositor::Config {
            width: W as u32,
            height: H as u32,
            fps: 60.0,
            socket: dir.path().join("wayland-test"),
            control: dir.path().join("control"),
            ready: Some(dir.path().join("ready")),
            xwayland: false,
            figures: Some(dir.path().join("figures")),
            dmabuf_device: device.map(Into::into),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let cfg = config.clone();
        let thread = std::thread::spawn(move || lantern_compositor::run(&cfg, &flag).unwrap());
        let deadline = Instant::now() + Duration::from_secs(20);
        while !dir.path().join("ready").exists() {
            assert!(Instant::now() < deadline, "the compositor never got ready");
            std::thread::sleep(Duration::from_millis(10));
        }
        Self {
            stop,
            thread: Some(thread),
            _dir: dir,
            app: config.socket,
            control: config.control,
        }
    }

    fn connect(path: &Path) -> (Connection, GlobalList, EventQueue<State>) {
        let connection = Connection::from_socket(UnixStream::connect(path).unwrap()).unwrap();
        let (globals, queue) = registry_queue_init::<State>(&connection).unwrap();
        (connection, globals, queue)
    }

    /// The pacing's figures, once the file says `want` of them.
    fn figures(&self, want: impl Fn(&Report) -> bool) -> Report {
        let path = self._dir.path().join("figures");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            match Report::parse(&text) {
                Some(report) if want(&report) => return report,
                _ => assert!(Instant::now() < deadline, "no such figures: {text:?}"),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(mut self) -> lantern_compositor::Summary {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

fn has(globals: &GlobalList, interface: &str) -> bool {
    globals
        .contents()
        .with_list(|list| list.iter().any(|g| g.interface == interface))
}

/// A fullscreen toplevel showing `buffer`'s picture.
fn map_toplevel(
    app: &mut EventQueue<State>,
    state: &mut State,
    globals: &GlobalList,
) -> (
    wl_surface::WlSurface,
    xdg_surface::XdgSurface,
    xdg_toplevel::XdgToplevel,
    Buffer,
) {
    let qh = app.handle();
    let wl_compositor: wl_compositor::WlCompositor = globals.bind(&qh, 4..=6, ()).unwrap();
    let shm: wl_shm::WlShm = globals.bind(&qh, 1..=1, ()).unwrap();
    let wm: xdg_wm_base::XdgWmBase = globals.bind(&qh, 1..=2, ()).unwrap();
    let surface = wl_compositor.create_surface(&qh, ());
    let xdg = wm.get_xdg_surface(&surface, &qh, ());
    let toplevel = xdg.get_toplevel(&qh, ());
    surface.commit();
    wait(app, state, "the first configure", |s| {
        s.configured.is_some()
    });
    xdg.ack_configure(state.configured.unwrap());
    let mut buffer = Buffer::new(&shm, &qh, W, H, wl_shm::Format::Xrgb8888);
    buffer.fill(RED);
    surface.attach(Some(&buffer.buffer), 0, 0);
    surface.commit();
    app.roundtrip(state).unwrap();
    (surface, xdg, toplevel, buffer)
}

/// An app that locks the pointer (mouse look) gets the daemon's relative motion as relative
/// events only: the pointer stays where it was locked.
#[test]
fn a_locked_pointer_gets_relative_motion_only() {
    let compositor = Compositor::start();
    let (_app_conn, globals, mut app) = Compositor::connect(&compositor.app);
    let qh = app.handle();
    let mut state = State::default();
    // As apps do, the pointer first: it enters the window as the window is shown.
    let seat: wl_seat::WlSeat = globals.bind(&qh, 5..=7, ()).unwrap();
    let pointer = seat.get_pointer(&qh, ());
    let (surface, _xdg, _toplevel, _buffer) = map_toplevel(&mut app, &mut state, &globals);
    wait(&mut app, &mut state, "the pointer to enter", |s| s.entered);
    let constraints: zwp_pointer_constraints_v1::ZwpPointerConstraintsV1 =
        globals.bind(&qh, 1..=1, ()).unwrap();
    let relative: zwp_relative_pointer_manager_v1::ZwpRelativePointerManagerV1 =
        globals.bind(&qh, 1..=1, ()).unwrap();
    let _relative = relative.get_relative_pointer(&pointer, &qh, ());
    let _lock = constraints.lock_pointer(
        &surface,
        &pointer,
        None,
        zwp_pointer_constraints_v1::Lifetime::Persistent,
        &qh,
        (),
    );
    wait(&mut app, &mut state, "the lock", |s| s.locked);

    let (_control_conn, cglobals, mut control) = Compositor::connect(&compositor.control);
    let cqh = control.handle();
    let mut cstate = State::default();
    let manager: zwlr_virtual_pointer_manager_v1::ZwlrVirtualPointerManagerV1 =
        cglobals.bind(&cqh, 1..=2, ()).unwrap();
    let cseat: wl_seat::WlSeat = cglobals.bind(&cqh, 1..=7, ()).unwrap();
    let virtual_pointer = manager.create_virtual_pointer(Some(&cseat), &cqh, ());
    // An absolute move leaves a locked pointer where it is; relative motion arrives as such.
    virtual_pointer.motion_absolute(0, 32, 24, W as u32, H as u32);
    virtual_pointer.frame();
    for t in 1..=3 {
        virtual_pointer.motion(t, 5.0, -2.0);
        virtual_pointer.frame();
    }
    control.roundtrip(&mut cstate).unwrap();
    wait(&mut app, &mut state, "the relative motion", |s| {
        s.relative.len() == 3
    });
    assert_eq!(state.relative, vec![(5.0, -2.0); 3]);
    let entered_at = state.motions[0];
    assert!(
        state.motions.iter().all(|&m| m == entered_at),
        "{:?}",
        state.motions
    );
    compositor.stop();
}

/// A capture that asks for the pointer (`overlay_cursor`) gets it drawn where it is (an arrow,
/// as the app set no cursor of its own), and its moves are new pictures; one that does not
/// gets the app's picture alone.
#[test]
fn the_pointer_is_drawn_for_a_capture_that_asks_and_its_moves_are_new_pictures() {
    let compositor = Compositor::start();
    let (_app_conn, globals, mut app) = Compositor::connect(&compositor.app);
    let mut state = State::default();
    let (_surface, _xdg, _toplevel, _buffer) = map_toplevel(&mut app, &mut state, &globals);

    let (_control_conn, cglobals, mut control) = Compositor::connect(&compositor.control);
    let cqh = control.handle();
    let manager: zwlr_virtual_pointer_manager_v1::ZwlrVirtualPointerManagerV1 =
        cglobals.bind(&cqh, 1..=2, ()).unwrap();
    let cseat: wl_seat::WlSeat = cglobals.bind(&cqh, 1..=7, ()).unwrap();
    let pointer = manager.create_virtual_pointer(Some(&cseat), &cqh, ());
    let mut point_at = |x: u32, y: u32| {
        pointer.motion_absolute(0, x, y, W as u32, H as u32);
        pointer.frame();
        control.roundtrip(&mut State::default()).unwrap();
    };
    point_at(20, 10);

    let mut plain = Capture::connect(&compositor);
    let _frame = plain.ask();
    assert!(plain.done("a copy without the pointer"));
    assert_eq!(plain.target.pixel(20, 10), RED);
    assert_eq!(plain.target.pixel(22, 18), RED);

    let mut capture = Capture::connect(&compositor);
    let _frame = capture.ask_with(true);
    assert!(capture.done("a copy with the pointer"));
    // The arrow's tip (its black edge) at the pointer, white inside.
    assert_eq!(capture.target.pixel(20, 10), 0);
    assert_eq!(capture.target.pixel(22, 18), 0x00ff_ffff);
    assert_eq!(capture.target.pixel(19, 10), RED);

    // The app draws nothing new, the pointer moves: the waiting copy gets the new place.
    let _frame = capture.ask_with(true);
    assert!(
        capture.state.ready.is_none(),
        "a copy of an unchanged screen"
    );
    point_at(40, 20);
    assert!(capture.done("the copy after the move"));
    assert_eq!(capture.target.pixel(42, 28), 0x00ff_ffff);
    assert_eq!(capture.target.pixel(22, 18), RED);
    compositor.stop();
}

/// An app that renders small and has wp_viewporter scale its picture to the output (as
/// SDL's games do) is captured scaled; a crop shows only its part.
#[test]
fn a_viewport_scales_and_crops_the_picture() {
    let compositor = Compositor::start();
    let (_app_conn, globals, mut app) = Compositor::connect(&compositor.app);
    let qh = app.handle();
    let mut state = State::default();
    let (surface, _xdg, _toplevel, _buffer) = map_toplevel(&mut app, &mut state, &globals);
    let shm: wl_shm::WlShm = globals.bind(&qh, 1..=1, ()).unwrap();
    let viewporter: wp_viewporter::WpViewporter = globals.bind(&qh, 1..=1, ()).unwrap();
    let viewport = viewporter.get_viewport(&surface, &qh, ());
    // Half the output's size: its left half red, its right half green.
    let (w, h) = (W / 2, H / 2);
    let mut small = Buffer::new(&shm, &qh, w, h, wl_shm::Format::Xrgb8888);
    for (i, px) in small.map.chunks_exact_mut(4).enumerate() {
        let colour = if (i as i32 % w) < w / 2 { RED } else { GREEN };
        px.copy_from_slice(&colour.to_le_bytes());
    }
    viewport.set_destination(W, H);
    surface.attach(Some(&small.buffer), 0, 0);
    surface.damage_buffer(0, 0, w, h);
    surface.commit();
    app.roundtrip(&mut state).unwrap();

    let mut capture = Capture::connect(&compositor);
    let _frame = capture.ask();
    assert!(capture.done("the scaled picture"));
    let row: Vec<u32> = [0, W / 2 - 1, W / 2, W - 1]
        .iter()
        .map(|&x| capture.target.pixel(x, H - 1))
        .collect();
    assert_eq!(row, [RED, RED, GREEN, GREEN]);

    // The right half alone, over the whole output.
    viewport.set_source(f64::from(w / 2), 0.0, f64::from(w / 2), f64::from(h));
    surface.attach(Some(&small.buffer), 0, 0);
    surface.damage_buffer(0, 0, w, h);
    surface.commit();
    app.flush().unwrap();
    let _frame = capture.ask();
    assert!(capture.done("the cropped picture"));
    assert_eq!(capture.target.pixel(0, 0), GREEN);
    assert_eq!(capture.target.pixel(W - 1, H - 1), GREEN);
    let summary = compositor.stop();
    assert_eq!(
        summary.direct, 0,
        "a scaled picture is never copied straight"
    );
}

/// A whole-output picture in memory standing in for a GPU's linear dmabuf (there is no GPU
/// here; the compositor reads both through the same mapping): green, and sealed against
/// shrinking if `sealed`.
fn fake_dmabuf(sealed: bool) -> std::fs::File {
    use std::io::Write;
    // SAFETY: a fresh memfd, owned at once.
    let fd = unsafe {
        libc::memfd_create(
            c"test-dmabuf".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    assert!(fd >= 0);
    // SAFETY: fd is ours.
    let mut file = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let picture: Vec<u8> = (0..W * H).flat_map(|_| GREEN.to_le_bytes()).collect();
    file.write_all(&picture).unwrap();
    if sealed {
        // SAFETY: F_ADD_SEALS on our memfd.
        let sealed = unsafe {
            libc::fcntl(
                std::os::fd::AsRawFd::as_raw_fd(&file),
                libc::F_ADD_SEALS,
                libc::F_SEAL_SHRINK,
            )
        };
        assert_eq!(sealed, 0);
    }
    file
}

/// Import `file` as a one-plane linear XRGB8888 dmabuf of the output's size.
fn import(
    dmabuf: &zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1,
    file: &std::fs::File,
    qh: &QueueHandle<State>,
) -> wl_buffer::WlBuffer {
    const XRGB8888: u32 = u32::from_le_bytes(*b"XR24");
    let params = dmabuf.create_params(qh, ());
    params.add(file.as_fd(), 0, 0, (W * 4) as u32, 0, 0);
    let flags = zwp_linux_buffer_params_v1::Flags::empty();
    params.create_immed(W, H, XRGB8888, flags, qh, ())
}

/// An app's linear dmabuf (linux-dmabuf, offered where the host has a GPU) is read into the
/// capture; one whose memory could shrink under the compositor is refused, and the
/// compositor serves on.
#[test]
fn a_linear_dmabuf_is_captured_and_one_that_could_shrink_is_refused() {
    let compositor = Compositor::start_with(Some("/dev/null"));
    {
        let (_connection, globals, mut queue) = Compositor::connect(&compositor.app);
        let qh = queue.handle();
        let dmabuf: zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1 = globals.bind(&qh, 3..=3, ()).unwrap();
        let _buffer = import(&dmabuf, &fake_dmabuf(false), &qh);
        assert!(
            queue.roundtrip(&mut State::default()).is_err(),
            "a buffer that could shrink was taken"
        );
    }
    let (_connection, globals, mut app) = Compositor::connect(&compositor.app);
    let qh = app.handle();
    let mut state = State::default();
    let (surface, _xdg, _toplevel, _red) = map_toplevel(&mut app, &mut state, &globals);
    let dmabuf: zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1 = globals.bind(&qh, 3..=3, ()).unwrap();
    let file = fake_dmabuf(true);
    let buffer = import(&dmabuf, &file, &qh);
    surface.attach(Some(&buffer), 0, 0);
    surface.damage_buffer(0, 0, W, H);
    surface.commit();
    app.roundtrip(&mut state).unwrap();
    let mut capture = Capture::connect(&compositor);
    let _frame = capture.ask();
    assert!(capture.done("the dmabuf's picture"));
    assert_eq!(capture.target.pixel(0, 0), GREEN);
    assert_eq!(capture.target.pixel(W - 1, H - 1), GREEN);
    // Committed again (read through the mapping kept from the first time).
    capture.target.fill(0);
    surface.attach(Some(&buffer), 0, 0);
    surface.damage_buffer(0, 0, W, H);
    surface.commit();
    app.flush().unwrap();
    let _frame = capture.ask();
    assert!(capture.done("the dmabuf's picture again"));
    assert_eq!(capture.target.pixel(W / 2, H / 2), GREEN);
    compositor.stop();
}

#[test]
fn the_capture_gets_each_new_picture_composited_at_commit_and_apps_cannot_capture() {
    let compositor = Compositor::start();

    // The app: a fullscreen toplevel, red, with a blue subsurface at (8, 8).
    let (_app_conn, globals, mut app) = Compositor::connect(&compositor.app);
    for privileged in [
        "zwlr_screencopy_manager_v1",
        "zwp_virtual_keyboard_manager_v1",
        "zwlr_virtual_pointer_manager_v1",
    ] {
        assert!(!has(&globals, privileged), "apps see {privileged}");
    }
    let qh = app.handle();
    let mut state = State::default();
    let wl_compositor: wl_compositor::WlCompositor = globals.bind(&qh, 4..=6, ()).unwrap();
    let subcompositor: wl_subcompositor::WlSubcompositor = globals.bind(&qh, 1..=1, ()).unwrap();
    let shm: wl_shm::WlShm = globals.bind(&qh, 1..=1, ()).unwrap();
    let wm: xdg_wm_base::XdgWmBase = globals.bind(&qh, 1..=2, ()).unwrap();
    let surface = wl_compositor.create_surface(&qh, ());
    let xdg = wm.get_xdg_surface(&surface, &qh, ());
    let _toplevel = xdg.get_toplevel(&qh, ());
    surface.commit();
    wait(&mut app, &mut state, "the first configure", |s| {
        s.configured.is_some()
    });
    xdg.ack_configure(state.configured.unwrap());
    let mut red = Buffer::new(&shm, &qh, W, H, wl_shm::Format::Xrgb8888);
    red.fill(RED);
    let child = wl_compositor.create_surface(&qh, ());
    let sub = subcompositor.get_subsurface(&child, &surface, &qh, ());
    sub.set_position(8, 8);
    let mut blue = Buffer::new(&shm, &qh, 16, 16, wl_shm::Format::Argb8888);
    blue.fill(BLUE);
    child.attach(Some(&blue.buffer), 0, 0);
    child.commit();
    surface.attach(Some(&red.buffer), 0, 0);
    surface.damage_buffer(0, 0, W, H);
    surface.frame(&qh, ());
    surface.commit();
    app.roundtrip(&mut state).unwrap();

    // The capture, on the daemon's socket.
    let mut capture = Capture::connect(&compositor);

    // A picture already committed is copied at once, composited.
    let _first = capture.ask();
    assert!(capture.done("the first copy"));
    let target = &capture.target;
    assert_eq!(target.pixel(0, 0), RED);
    assert_eq!(target.pixel(10, 10), BLUE & 0x00ff_ffff);
    assert_eq!(target.pixel(23, 23), BLUE & 0x00ff_ffff);
    assert_eq!(target.pixel(24, 24), RED);
    assert_eq!(target.pixel(W - 1, H - 1), RED);
    // Taken, the app's frame callback goes.
    wait(&mut app, &mut state, "the frame callback", |s| {
        s.callbacks_done == 1
    });

    // Nothing new: the next copy waits (the compositor has read it when the roundtrip ends).
    capture.target.fill(0);
    let _second = capture.ask();
    let waiting = &capture.state;
    assert!(
        waiting.ready.is_none() && !waiting.failed,
        "a copy of an unchanged screen completed"
    );

    // The app commits a new picture under the subsurface: the waiting copy completes.
    let mut green = Buffer::new(&shm, &qh, W, H, wl_shm::Format::Xrgb8888);
    green.fill(GREEN);
    surface.attach(Some(&green.buffer), 0, 0);
    surface.damage_buffer(0, 0, W, H);
    surface.commit();
    app.flush().unwrap();
    assert!(capture.done("the copy of the new picture"));
    assert_eq!(capture.target.pixel(0, 0), GREEN);
    assert_eq!(capture.target.pixel(10, 10), BLUE & 0x00ff_ffff);
    // The picture's time is the commit's, on the monotonic clock.
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    let now = Duration::new(now.tv_sec as u64, now.tv_nsec as u32);
    let ready = capture.state.ready.unwrap();
    assert!(
        ready <= now && now - ready < Duration::from_secs(20),
        "{ready:?} vs {now:?}"
    );

    // Without the subsurface, one opaque buffer covers the output: copied straight.
    sub.destroy();
    child.destroy();
    surface.attach(Some(&red.buffer), 0, 0);
    surface.damage_buffer(0, 0, W, H);
    surface.commit();
    app.flush().unwrap();
    let _third = capture.ask();
    assert!(capture.done("the copy without the subsurface"));
    assert_eq!(capture.target.pixel(10, 10), RED);

    // The app waited for its one frame callback, and the daemon's stats file says so.
    let figures = compositor.figures(|r| r.total.callbacks >= 1);
    assert_eq!(figures.total.callbacks, 1, "{figures:?}");
    assert_eq!(figures.total.boosts, 0, "{figures:?}");
    assert!(figures.total.wait_us_p50 > 0, "{figures:?}");

    drop((red, green, blue));
    let summary = compositor.stop();
    assert_eq!(summary.taken, 3, "{summary:?}");
    assert_eq!(summary.direct, 1, "{summary:?}");
}

/// A client asking for a buffer larger than its pool, and one whose picture's memory is cut
/// short under the compositor: the first is cut off, the second's picture is dropped, and the
/// compositor serves on.
#[test]
fn misbehaving_clients_cannot_take_the_compositor_down() {
    let compositor = Compositor::start();
    {
        let (_connection, globals, mut queue) = Compositor::connect(&compositor.app);
        let qh = queue.handle();
        let shm: wl_shm::WlShm = globals.bind(&qh, 1..=1, ()).unwrap();
        let file = memfd(4096);
        let pool = shm.create_pool(file.as_fd(), 4096, &qh, ());
        let _buffer = pool.create_buffer(0, W, H, W * 4, wl_shm::Format::Xrgb8888, &qh, ());
        let mut state = State::default();
        assert!(
            queue.roundtrip(&mut state).is_err(),
            "the client was not cut off"
        );
    }

    let (_connection, globals, mut app) = Compositor::connect(&compositor.app);
    let mut state = State::default();
    let (surface, _xdg, _toplevel, buffer) = map_toplevel(&mut app, &mut state, &globals);
    let mut capture = Capture::connect(&compositor);
    let _first = capture.ask();
    assert!(capture.done("the first copy"));
    assert_eq!(capture.target.pixel(0, 0), RED);
    // The pool's memory goes, then the picture is committed again.
    buffer.file.set_len(0).unwrap();
    surface.attach(Some(&buffer.buffer), 0, 0);
    surface.damage_buffer(0, 0, W, H);
    surface.commit();
    app.flush().unwrap();
    let _second = capture.ask();
    capture.done("the copy of the cut picture");
    // Still serving: a new app connects and shows its picture.
    let (_again, globals, mut app2) = Compositor::connect(&compositor.app);
    let mut state2 = State::default();
    let (_surface, _xdg, _toplevel, _buffer) = map_toplevel(&mut app2, &mut state2, &globals);
    let _third = capture.ask();
    assert!(capture.done("the copy of the next app"));
    assert_eq!(capture.target.pixel(0, 0), RED);
    compositor.stop();
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
            state.configured = Some(serial);
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
            state.callbacks_done += 1;
        }
    }
}

impl Dispatch<zwlr_screencopy_frame_v1::ZwlrScreencopyFrameV1, ()> for State {
    fn event(
        state: &mut Self,
        _: &zwlr_screencopy_frame_v1::ZwlrScreencopyFrameV1,
        event: zwlr_screencopy_frame_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        match event {
            zwlr_screencopy_frame_v1::Event::BufferDone => state.described = true,
            zwlr_screencopy_frame_v1::Event::Ready {
                tv_sec_hi,
                tv_sec_lo,
                tv_nsec,
            } => {
                let secs = (u64::from(tv_sec_hi) << 32) | u64::from(tv_sec_lo);
                state.ready = Some(Duration::new(secs, tv_nsec));
            }
            zwlr_screencopy_frame_v1::Event::Failed => state.failed = true,
            _ => {}
        }
    }
}

impl Dispatch<wl_registry::WlRegistry, GlobalListContents> for State {
    fn event(
        _: &mut Self,
        _: &wl_registry::WlRegistry,
        _: wl_registry::Event,
        _: &GlobalListContents,
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
    }
}

impl Dispatch<wl_pointer::WlPointer, ()> for State {
    fn event(
        state: &mut Self,
        _: &wl_pointer::WlPointer,
        event: wl_pointer::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        match event {
            wl_pointer::Event::Enter {
                surface_x,
                surface_y,
                ..
            } => {
                state.entered = true;
                state.motions.push((surface_x, surface_y));
            }
            wl_pointer::Event::Motion {
                surface_x,
                surface_y,
                ..
            } => state.motions.push((surface_x, surface_y)),
            _ => {}
        }
    }
}

impl Dispatch<zwp_relative_pointer_v1::ZwpRelativePointerV1, ()> for State {
    fn event(
        state: &mut Self,
        _: &zwp_relative_pointer_v1::ZwpRelativePointerV1,
        event: zwp_relative_pointer_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let zwp_relative_pointer_v1::Event::RelativeMotion { dx, dy, .. } = event {
            state.relative.push((dx, dy));
        }
    }
}

impl Dispatch<zwp_locked_pointer_v1::ZwpLockedPointerV1, ()> for State {
    fn event(
        state: &mut Self,
        _: &zwp_locked_pointer_v1::ZwpLockedPointerV1,
        event: zwp_locked_pointer_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let zwp_locked_pointer_v1::Event::Locked = event {
            state.locked = true;
        }
    }
}

delegate_noop!(State: ignore wl_seat::WlSeat);
delegate_noop!(State: ignore zwp_linux_dmabuf_v1::ZwpLinuxDmabufV1);
delegate_noop!(State: ignore zwp_linux_buffer_params_v1::ZwpLinuxBufferParamsV1);
delegate_noop!(State: ignore wp_viewporter::WpViewporter);
delegate_noop!(State: ignore wp_viewport::WpViewport);
delegate_noop!(State: ignore zwp_pointer_constraints_v1::ZwpPointerConstraintsV1);
delegate_noop!(State: ignore zwp_relative_pointer_manager_v1::ZwpRelativePointerManagerV1);
delegate_noop!(State: ignore zwlr_virtual_pointer_manager_v1::ZwlrVirtualPointerManagerV1);
delegate_noop!(State: ignore zwlr_virtual_pointer_v1::ZwlrVirtualPointerV1);
delegate_noop!(State: ignore wl_compositor::WlCompositor);
delegate_noop!(State: ignore wl_subcompositor::WlSubcompositor);
delegate_noop!(State: ignore wl_subsurface::WlSubsurface);
delegate_noop!(State: ignore wl_surface::WlSurface);
delegate_noop!(State: ignore wl_shm::WlShm);
delegate_noop!(State: ignore wl_shm_pool::WlShmPool);
delegate_noop!(State: ignore wl_buffer::WlBuffer);
delegate_noop!(State: ignore wl_output::WlOutput);
delegate_noop!(State: ignore xdg_toplevel::XdgToplevel);
delegate_noop!(State: ignore zwlr_screencopy_manager_v1::ZwlrScreencopyManagerV1);
