//! The native viewer's window (SDL2, as Moonlight): the newest decoded picture on screen with
//! the least delay, and the player's keyboard, mouse and gamepads sent back to the host.
//!
//! The window lives on a thread of its own, which owns everything SDL (SDL's video calls must
//! all come from one thread). The video player hands it each decoded picture as another
//! reference to the decoder's buffers (no copy) through a [`Latest`] hand-off: a newer
//! picture replaces one the screen has not taken yet (counted), so a slow screen never makes
//! the stream fall behind. The picture goes to the screen as an IYUV streaming texture: the
//! renderer (the GPU, where there is one) converts the colours, the CPU does not. No vsync
//! unless asked: a picture is presented as soon as it arrives.
//!
//! What the window measures: decoded → presented (`present_ms`), pictures presented and
//! replaced, and input-to-photon at present time when the player's input goes from here.

mod controls;
pub mod layout;
mod overlay;
mod pads;
mod screen;
mod x11;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::Duration;

use ffmpeg_next as ffmpeg;
use lantern_media::latest::Latest;
use lantern_proto::clock;
use lantern_proto::histogram::Histogram;
use lantern_proto::input::{Event as Input, HEARTBEAT_US};
use lantern_proto::stamp::{Echo, Stamp};
use sdl2::event::{Event, EventSender, WindowEvent};
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::input::{InputChannel, Photon};
use crate::stats::line::{WindowFigures, WindowRun, ms};
use crate::stats::{Line, Part};
use controls::{Action, Controls};
use screen::Screen;

/// How the window starts.
#[derive(Clone, Debug, Default)]
pub struct WindowConfig {
    pub title: String,
    pub fullscreen: bool,
    /// Wait for the display's refresh before each present (smoother, up to a refresh later).
    pub vsync: bool,
    /// Show the stats overlay from the start (Ctrl+Alt+Shift+S toggles it).
    pub overlay: bool,
    /// Start in captured mouse mode (Ctrl+Alt+Shift+M toggles it).
    pub relative_mouse: bool,
    pub renderer: Renderer,
}

/// How the window draws.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Renderer {
    /// The GPU when the host has one (a DRM render node), else the CPU.
    #[default]
    Auto,
    /// SDL's accelerated renderer (OpenGL or GLES; Mesa's llvmpipe without a GPU).
    Gpu,
    /// SDL's software renderer on the window's own framebuffer (shared memory with the X
    /// server): the fastest where there is no GPU (measured 2.1 ms from decoded to presented
    /// at 720p on Xvfb, against 9.9 ms through llvmpipe).
    Software,
}

impl Renderer {
    /// Auto decided: a GPU is a render node under /dev/dri.
    pub fn resolve(self) -> Self {
        match self {
            Self::Auto => {
                let gpu = std::fs::read_dir("/dev/dri").is_ok_and(|dir| {
                    dir.flatten()
                        .any(|e| e.file_name().to_string_lossy().starts_with("renderD"))
                });
                if gpu { Self::Gpu } else { Self::Software }
            }
            other => other,
        }
    }
}

/// A decoded picture for the window, and what its present time is measured against.
pub struct Frame {
    /// Another reference to the decoder's buffers (see `decode::Picture::share`).
    pub picture: ffmpeg::frame::Video,
    /// When the decoder handed it over (µs since the UNIX epoch).
    pub decoded_us: u64,
    pub stamp: Option<Stamp>,
    pub echo: Option<Echo>,
}

/// What the window measured, shared with the stats lines.
#[derive(Default)]
pub struct WindowStats {
    presented: u64,
    /// Pictures a newer one replaced before the screen took them.
    replaced: u64,
    present: Histogram,
    total_present: Histogram,
    /// Where the present time goes: decoded → the window takes it, the upload into the
    /// texture, drawing and presenting (whole run).
    wait: Histogram,
    upload: Histogram,
    draw: Histogram,
    /// Input the player gave before the host listened, which was not sent.
    input_unsent: u64,
    renderer: String,
}

impl Part for Mutex<WindowStats> {
    /// Present times over the last second (whose window then restarts), or the whole run
    /// with where they went.
    fn fill(&self, line: &mut Line) {
        let mut stats = lock(self);
        let closing = line.closing;
        let present = if closing {
            &stats.total_present
        } else {
            &stats.present
        };
        let mut figures = WindowFigures {
            present_ms_p50: ms(present.quantile(0.5)),
            present_ms_p99: ms(present.quantile(0.99)),
            window_replaced: stats.replaced,
            run: None,
        };
        if closing {
            figures.run = Some(WindowRun {
                renderer: stats.renderer.clone(),
                presented: stats.presented,
                present_wait_ms_p50: ms(stats.wait.quantile(0.5)),
                present_upload_ms_p50: ms(stats.upload.quantile(0.5)),
                present_draw_ms_p50: ms(stats.draw.quantile(0.5)),
                input_unsent: stats.input_unsent,
            });
        } else {
            stats.present.clear();
        }
        line.window = Some(figures);
    }
}

/// What the player leaves for the window's thread: the newest picture (a newer one replaces
/// one the screen has not taken), the overlay's next lines, and the word to stop.
#[derive(Default)]
struct Mailbox {
    frame: Latest<Frame>,
    overlay: Mutex<Option<Vec<String>>>,
    stop: AtomicBool,
}

type Shared = Arc<Mailbox>;

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The open window: its thread, and the handle the video player shows pictures through.
pub struct Window {
    handle: Handle,
    thread: Option<std::thread::JoinHandle<Result<(), Error>>>,
}

/// What the video player holds: the mailbox the window takes pictures from.
#[derive(Clone)]
pub struct Handle {
    mailbox: Shared,
    waker: Arc<Waker>,
    stats: Arc<Mutex<WindowStats>>,
}

/// Wakes the window's thread from its wait for events, through a thread of its own: pushing
/// an event while the window waits makes SDL write to the X server from the pushing thread,
/// and should the display be gone that thread never returns (see `x11`). The video player
/// must not be that thread.
struct Waker(mpsc::SyncSender<()>);

impl Waker {
    fn spawn(sender: EventSender, kind: u32) -> Result<Self, Error> {
        let (wake, woken) = mpsc::sync_channel::<()>(1);
        std::thread::Builder::new()
            .name("window-waker".into())
            .spawn(move || {
                for () in woken {
                    let _ = sender.push_event(Event::User {
                        timestamp: 0,
                        window_id: 0,
                        type_: kind,
                        code: 0,
                        data1: std::ptr::null_mut(),
                        data2: std::ptr::null_mut(),
                    });
                }
            })
            .map_err(|source| Error::Spawn {
                what: "window-waker",
                source,
            })?;
        Ok(Self(wake))
    }

    fn wake(&self) {
        // Full: a wake-up is already on its way.
        let _ = self.0.try_send(());
    }
}

/// Whether the X display went away while a window was open (see `x11`): the window's
/// thread then holds Xlib's lock for good, so the process should leave with `_exit`.
pub fn display_lost() -> bool {
    x11::lost()
}

/// Whether this process has a display to open a window on (DISPLAY or WAYLAND_DISPLAY).
pub fn display_available() -> bool {
    env_set("DISPLAY") || env_set("WAYLAND_DISPLAY")
}

/// An X display and no Wayland one.
fn x_only() -> bool {
    env_set("DISPLAY") && !env_set("WAYLAND_DISPLAY")
}

fn env_set(var: &str) -> bool {
    std::env::var_os(var).is_some_and(|v| !v.is_empty())
}

/// How long the window may take to open.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

impl Window {
    /// Open the window. `closed` is cancelled when the player closes it (or quits with the
    /// chord); `input`, when given, carries the player's input to the host, and `photon`
    /// pairs presses with presented pictures.
    pub fn open(
        config: WindowConfig,
        input: Option<InputChannel>,
        photon: Option<Photon>,
        closed: CancellationToken,
    ) -> Result<Self, Error> {
        let mailbox = Shared::default();
        let stats = Arc::new(Mutex::new(WindowStats::default()));
        let (ready, opened) = mpsc::sync_channel(1);
        let thread = {
            let (mailbox, stats) = (mailbox.clone(), stats.clone());
            std::thread::Builder::new()
                .name("window".into())
                .spawn(move || {
                    let screen = match Screen::open(&config) {
                        Ok(screen) => screen,
                        Err(err) => {
                            let _ = ready.send(Err(err));
                            return Ok(());
                        }
                    };
                    x11::watch(closed.clone());
                    lock(&stats).renderer = screen.canvas.info().name.to_string();
                    let _ = ready.send(Ok(screen.waker()));
                    let mut viewer = Viewer {
                        screen,
                        mailbox,
                        stats,
                        controls: Controls::new(config.relative_mouse),
                        input,
                        photon,
                        overlay: config.overlay,
                        unsent_warned: false,
                        host_seen: false,
                        events: Vec::new(),
                        input_events: Vec::new(),
                    };
                    let result = viewer.run();
                    closed.cancel();
                    result
                })
                .map_err(|source| Error::Spawn {
                    what: "window",
                    source,
                })?
        };
        let waker = match opened.recv_timeout(OPEN_TIMEOUT) {
            Ok(Ok((sender, kind))) => Waker::spawn(sender, kind)?,
            Ok(Err(err)) => return Err(err),
            Err(_) => {
                return Err(Error::WindowTimeout {
                    timeout: OPEN_TIMEOUT,
                });
            }
        };
        Ok(Self {
            handle: Handle {
                mailbox,
                waker: Arc::new(waker),
                stats,
            },
            thread: Some(thread),
        })
    }

    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Close the window (releasing the player's held input at the host) and wait for it.
    pub fn close(mut self) -> Result<(), Error> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), Error> {
        if x11::lost() {
            // The window's thread is parked in Xlib's error handler for good.
            return Ok(());
        }
        self.handle.mailbox.stop.store(true, Ordering::Relaxed);
        self.handle.waker.wake();
        match self.thread.take().map(std::thread::JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(Error::Thread("window")),
            None => Ok(()),
        }
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

impl Handle {
    /// Show this picture as soon as the screen can (replacing one still waiting).
    pub fn show(&self, frame: Frame) {
        let replaced = self.mailbox.frame.put(frame).is_some();
        if replaced {
            lock(&self.stats).replaced += 1;
        } else {
            self.waker.wake();
        }
    }

    /// The overlay's figures for the last second (one stats line).
    pub fn overlay(&self, line: &Line) {
        *lock(&self.mailbox.overlay) = Some(crate::stats::text::second(line));
    }

    pub fn stats(&self) -> Arc<Mutex<WindowStats>> {
        self.stats.clone()
    }
}

/// The window's thread.
struct Viewer {
    screen: Screen,
    mailbox: Shared,
    stats: Arc<Mutex<WindowStats>>,
    controls: Controls,
    input: Option<InputChannel>,
    photon: Option<Photon>,
    overlay: bool,
    unsent_warned: bool,
    /// The host subscribed to this viewer's input (said once).
    host_seen: bool,
    /// The events of one turn, and the input they made, kept for their allocations.
    events: Vec<Event>,
    input_events: Vec<Input>,
}

impl Viewer {
    fn run(&mut self) -> Result<(), Error> {
        let idle = Duration::from_micros(HEARTBEAT_US / 2);
        let result = loop {
            // Awake for the input's next repeat or heartbeat, if it is sooner.
            let due = self.input.as_ref().and_then(InputChannel::next_due_in);
            let wait = due.map_or(idle, |due| due.min(idle)).as_millis().max(1) as u32;
            let mut events = std::mem::take(&mut self.events);
            events.extend(self.screen.pump.wait_event_timeout(wait));
            events.extend(self.screen.pump.poll_iter());
            let mut redraw = false;
            let mut quit = false;
            let mut input = std::mem::take(&mut self.input_events);
            for event in events.drain(..) {
                match self.event(&event, &mut input) {
                    Ok(Next::Quit) => quit = true,
                    Ok(Next::Redraw) => redraw = true,
                    Ok(Next::Continue) => {}
                    Err(err) => return self.leave(Err(err)),
                }
            }
            self.events = events;
            // One batch a turn: a 1000 Hz mouse's motion becomes one movement.
            controls::coalesce(&mut input);
            self.send(&input);
            input.clear();
            self.input_events = input;
            if quit {
                break Ok(());
            }
            if self.mailbox.stop.load(Ordering::Relaxed) {
                break Ok(());
            }
            let (frame, lines) = (
                self.mailbox.frame.try_take(),
                lock(&self.mailbox.overlay).take(),
            );
            if let Some(lines) = lines
                && let Err(err) = self.screen.set_overlay(&lines)
            {
                break Err(err);
            }
            let drawn = match frame {
                Some(frame) => self.present(frame),
                None if redraw => self.screen.draw(self.overlay),
                None => Ok(()),
            };
            if let Err(err) = drawn {
                break Err(err);
            }
            if let Some(input) = &mut self.input {
                if !self.host_seen && input.host_listening() {
                    self.host_seen = true;
                    tracing::info!("the host takes this viewer's input");
                }
                if let Err(err) = input.heartbeat() {
                    tracing::debug!(%err, "input heartbeat");
                }
            }
        };
        self.leave(result)
    }

    /// Release whatever the player holds at the host before the window goes.
    fn leave(&mut self, result: Result<(), Error>) -> Result<(), Error> {
        if let Some(input) = &mut self.input {
            let _ = input.release_all();
        }
        result
    }

    fn present(&mut self, frame: Frame) -> Result<(), Error> {
        let taken = clock::now_unix_us();
        self.screen.upload(&frame.picture)?;
        // The decoder may reuse the buffers now.
        drop(frame.picture);
        let uploaded = clock::now_unix_us();
        self.screen.draw(self.overlay)?;
        let presented = clock::now_unix_us();
        {
            let mut stats = lock(&self.stats);
            let us = clock::elapsed_us(frame.decoded_us, presented);
            stats.present.record(us);
            stats.total_present.record(us);
            stats
                .wait
                .record(clock::elapsed_us(frame.decoded_us, taken));
            stats.upload.record(clock::elapsed_us(taken, uploaded));
            stats.draw.record(clock::elapsed_us(uploaded, presented));
            stats.presented += 1;
        }
        if let (Some(photon), Some(echo)) = (&self.photon, frame.echo) {
            photon.shown(echo, frame.stamp, presented);
        }
        Ok(())
    }

    /// One SDL event: what it asks of the window, and the player's input it makes (added to
    /// `input`).
    fn event(&mut self, event: &Event, input: &mut Vec<Input>) -> Result<Next, Error> {
        match event {
            Event::Quit { .. } => return Ok(Next::Quit),
            Event::User { type_, .. } if *type_ == self.screen.wake_kind => {}
            Event::Window {
                win_event:
                    WindowEvent::Exposed | WindowEvent::SizeChanged(..) | WindowEvent::Resized(..),
                ..
            } => {
                if matches!(
                    event,
                    Event::Window {
                        win_event: WindowEvent::Resized(..),
                        ..
                    }
                ) {
                    self.screen.sized = true;
                }
                return Ok(Next::Redraw);
            }
            Event::ControllerDeviceAdded { .. }
            | Event::ControllerDeviceRemoved { .. }
            | Event::ControllerButtonDown { .. }
            | Event::ControllerButtonUp { .. }
            | Event::ControllerAxisMotion { .. } => {
                input.extend(self.screen.pads.event(event));
            }
            _ => {
                let step = self.controls.event(event, self.screen.picture_in_window());
                input.extend(step.events);
                if let Some(action) = step.action {
                    // What came before the action goes first (a release follows the presses).
                    self.send(input);
                    input.clear();
                    return Ok(self.act(action));
                }
            }
        }
        Ok(Next::Continue)
    }

    fn act(&mut self, action: Action) -> Next {
        match action {
            Action::Quit => return Next::Quit,
            Action::Fullscreen => self.screen.fullscreen(),
            Action::Overlay => {
                self.overlay = !self.overlay;
                tracing::info!(shown = self.overlay, "stats overlay");
                return Next::Redraw;
            }
            Action::Capture(on) => {
                self.screen.mouse.set_relative_mouse_mode(on);
                tracing::info!(captured = on, "pointer");
            }
            Action::ReleaseAll => {
                self.screen.mouse.set_relative_mouse_mode(false);
                self.screen.pads.rest();
                if let Some(input) = &mut self.input
                    && let Err(err) = input.release_all()
                {
                    tracing::warn!(%err, "cannot release the player's input");
                }
            }
        }
        Next::Continue
    }

    /// Send the player's input, once the host listens (moq-lite would replay anything sent
    /// before to the host's first subscription; a late press is worse than none).
    fn send(&mut self, events: &[Input]) {
        let Some(input) = &mut self.input else {
            return;
        };
        if events.is_empty() {
            return;
        }
        if !input.host_listening() {
            lock(&self.stats).input_unsent += events.len() as u64;
            if !std::mem::replace(&mut self.unsent_warned, true) {
                tracing::warn!("the host does not take this viewer's input yet: not sent");
            }
            return;
        }
        if let Err(err) = input.send(events) {
            tracing::warn!(%err, "input not sent");
        }
    }
}

enum Next {
    Continue,
    Redraw,
    Quit,
}
