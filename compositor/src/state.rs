//! The compositor's state and its Wayland handlers: surfaces and their buffers, the shown
//! toplevel (the newest, fullscreen), popups, the seat, and the pacing of frame callbacks.

use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lantern_proto::app_pacing::{AppPacer, Wake};
use smithay::desktop::{
    PopupKind, PopupManager, find_popup_root_surface, get_popup_toplevel_coords,
};
use smithay::input::keyboard::XkbConfig;
use smithay::input::{Seat, SeatHandler, SeatState};
use smithay::output::{Mode as OutputMode, Output, PhysicalProperties, Scale, Subpixel};
use smithay::reexports::wayland_protocols::wp::presentation_time::server::wp_presentation_feedback;
use smithay::reexports::wayland_protocols::xdg::shell::server::{xdg_toplevel, xdg_wm_base::XdgWmBase};
use smithay::reexports::wayland_protocols_misc::zwp_virtual_keyboard_v1::server::zwp_virtual_keyboard_v1::{
    self, ZwpVirtualKeyboardV1,
};
use smithay::reexports::wayland_server::backend::{ClientData, ClientId, DisconnectReason};
use smithay::reexports::wayland_server::protocol::{wl_buffer, wl_output, wl_seat, wl_surface::WlSurface};
use smithay::reexports::wayland_server::{Client, DataInit, Dispatch, DisplayHandle, Resource};
use smithay::utils::{Clock, Logical, Monotonic, Point, Rectangle, Serial, Transform, SERIAL_COUNTER};
use smithay::wayland::buffer::BufferHandler;
use smithay::wayland::compositor::{
    BufferAssignment, CompositorClientState, SurfaceData, CompositorHandler, CompositorState, RectangleKind,
    SubsurfaceCachedState, SurfaceAttributes, TraversalAction, get_parent,
    with_states, with_surface_tree_downward, with_surface_tree_upward,
};
use smithay::wayland::output::{OutputHandler, OutputManagerState};
use smithay::input::pointer::{CursorImageStatus, MotionEvent, PointerHandle};
use smithay::wayland::pointer_constraints::{
    PointerConstraint, PointerConstraintsHandler, PointerConstraintsState, with_pointer_constraint,
};
use smithay::wayland::presentation::{PresentationFeedbackCachedState, PresentationState, Refresh};
use smithay::wayland::relative_pointer::RelativePointerManagerState;
use smithay::wayland::selection::SelectionHandler;
use smithay::wayland::selection::data_device::{
    ClientDndGrabHandler, DataDeviceHandler, DataDeviceState, ServerDndGrabHandler,
    set_data_device_focus,
};
use smithay::wayland::shell::xdg::{
    PopupSurface, PositionerState, SurfaceCachedState, ToplevelSurface, XdgShellHandler,
    XdgShellState, XdgToplevelSurfaceData,
};
use smithay::wayland::dmabuf::{DmabufGlobal, DmabufState};
use smithay::wayland::shm::{ShmHandler, ShmState};
use smithay::wayland::viewporter::{ViewporterState, ensure_viewport_valid};
use smithay::wayland::virtual_keyboard::{VirtualKeyboardManagerState, VirtualKeyboardUserData};
use smithay::wayland::xwayland_shell::XWaylandShellState;
use smithay::xwayland::{X11Wm, XWaylandClientData};

use crate::buffer;
use crate::cursor::{Cursor, Look};
use crate::paint::Target;
use crate::screencopy::Screencopy;
use crate::view::{self, View};
use crate::window::Window;
use crate::{Config, Summary, figures};

/// The xdg_wm_base version offered.
const XDG_WM_BASE_VERSION: u32 = 3;

/// One client's data: whether it came on the daemon's socket (the only one that sees the
/// capture and input globals).
pub struct ClientState {
    pub compositor: CompositorClientState,
    pub privileged: bool,
}

impl ClientData for ClientState {
    fn initialized(&self, _: ClientId) {}
    fn disconnected(&self, _: ClientId, _: DisconnectReason) {}
}

pub fn privileged(client: &Client) -> bool {
    client
        .get_data::<ClientState>()
        .is_some_and(|data| data.privileged)
}

/// The buffer a surface shows until it commits another (released then).
#[derive(Default)]
struct Held(Option<wl_buffer::WlBuffer>);

pub struct State {
    pub dh: DisplayHandle,
    compositor: CompositorState,
    xdg: XdgShellState,
    shm: ShmState,
    _output_manager: OutputManagerState,
    seat_state: SeatState<State>,
    pub seat: Seat<State>,
    data_device: DataDeviceState,
    _presentation: PresentationState,
    _viewporter: ViewporterState,
    pub dmabuf: DmabufState,
    _dmabuf_global: Option<DmabufGlobal>,
    _relative_pointer: RelativePointerManagerState,
    _pointer_constraints: PointerConstraintsState,
    _virtual_keyboard: VirtualKeyboardManagerState,
    pub screencopy: Screencopy,
    output: Output,
    popups: PopupManager,
    /// Windows, oldest first; the newest with a picture is shown.
    pub windows: Vec<Window>,
    /// XWayland's connection and window manager, once it runs.
    pub xwayland: Option<Client>,
    pub xwm: Option<X11Wm>,
    pub xwayland_shell: XWaylandShellState,
    /// The shown window's surface as [`State::refresh`] last saw it.
    last_shown: Option<WlSurface>,
    pub width: i32,
    pub height: i32,
    interval: Duration,
    clock: Clock<Monotonic>,
    pacer: AppPacer,
    /// The dmabufs apps draw into, mapped for reading.
    mappings: buffer::Mappings,
    figures: figures::Meter,
    /// What the pointer looks like, for a capture that asks for it in the picture.
    cursor: Cursor,
    presented: u64,
    pub summary: Summary,
}

impl State {
    pub fn new(config: &Config, dh: DisplayHandle) -> Self {
        let compositor = CompositorState::new::<Self>(&dh);
        let xdg = XdgShellState::new::<Self>(&dh);
        // Offered at version 3 (popup repositioning), not smithay's 6: some clients bind the
        // version offered without handling what later ones add (weston 10's demo clients
        // abort on xdg_toplevel.configure_bounds, version 4). sway 1.7 offers 2.
        dh.remove_global::<Self>(xdg.global());
        dh.create_global::<Self, XdgWmBase, _>(XDG_WM_BASE_VERSION, ());
        let shm = ShmState::new::<Self>(&dh, vec![]);
        let output_manager = OutputManagerState::new_with_xdg_output::<Self>(&dh);
        let mut seat_state = SeatState::new();
        let mut seat = seat_state.new_wl_seat(&dh, "lantern");
        // The daemon's virtual keyboard brings the player's keymap; this one is for apps
        // that read a keymap before the first key.
        if let Err(err) = seat.add_keyboard(XkbConfig::default(), 600, 25) {
            tracing::warn!("no keyboard: {err:?}");
        }
        seat.add_pointer();
        seat.add_touch();
        let data_device = DataDeviceState::new::<Self>(&dh);
        let presentation = PresentationState::new::<Self>(&dh, libc::CLOCK_MONOTONIC as u32);
        let viewporter = ViewporterState::new::<Self>(&dh);
        let mut dmabuf = DmabufState::new();
        let dmabuf_global = config.dmabuf_device.as_deref().and_then(|device| {
            crate::dmabuf::global(&dh, &mut dmabuf, device)
                .inspect_err(|err| tracing::warn!("no linux-dmabuf: {err}"))
                .ok()
        });
        let relative_pointer = RelativePointerManagerState::new::<Self>(&dh);
        let pointer_constraints = PointerConstraintsState::new::<Self>(&dh);
        let virtual_keyboard = VirtualKeyboardManagerState::new::<Self, _>(&dh, privileged);
        let screencopy = Screencopy::new(&dh);
        let xwayland_shell = XWaylandShellState::new::<Self>(&dh);
        crate::pointer::global(&dh);
        crate::touch::global(&dh);

        let output = Output::new(
            "LANTERN-1".into(),
            PhysicalProperties {
                size: (0, 0).into(),
                subpixel: Subpixel::Unknown,
                make: "Lantern".into(),
                model: "headless".into(),
            },
        );
        let _ = output.create_global::<Self>(&dh);
        let mode = OutputMode {
            size: (config.width as i32, config.height as i32).into(),
            refresh: (config.fps * 1000.0).round() as i32,
        };
        output.change_current_state(
            Some(mode),
            Some(Transform::Normal),
            Some(Scale::Integer(1)),
            Some((0, 0).into()),
        );
        output.set_preferred(mode);

        Self {
            dh,
            compositor,
            xdg,
            shm,
            _output_manager: output_manager,
            seat_state,
            seat,
            data_device,
            _presentation: presentation,
            _viewporter: viewporter,
            dmabuf,
            _dmabuf_global: dmabuf_global,
            _relative_pointer: relative_pointer,
            _pointer_constraints: pointer_constraints,
            _virtual_keyboard: virtual_keyboard,
            screencopy,
            output,
            popups: PopupManager::default(),
            windows: Vec::new(),
            xwayland: None,
            xwm: None,
            xwayland_shell,
            last_shown: None,
            width: config.width as i32,
            height: config.height as i32,
            interval: Duration::from_secs_f64(1.0 / config.fps),
            clock: Clock::new(),
            pacer: AppPacer::new(config.fps),
            mappings: buffer::Mappings::default(),
            figures: figures::Meter::new(config.figures.clone()),
            cursor: Cursor::new(),
            presented: 0,
            summary: Summary::default(),
        }
    }

    pub fn add_client(&mut self, stream: UnixStream, privileged: bool) {
        let data = ClientState {
            compositor: CompositorClientState::default(),
            privileged,
        };
        match self.dh.insert_client(stream, Arc::new(data)) {
            Ok(_) => self.summary.clients += 1,
            Err(err) => tracing::warn!("a client could not be added: {err}"),
        }
    }

    pub fn flush(&mut self) {
        if let Err(err) = self.dh.flush_clients() {
            tracing::debug!("flushing clients: {err}");
        }
    }

    pub fn summary(&self) -> Summary {
        Summary {
            boosts: self.figures.report().total.boosts,
            ..self.summary.clone()
        }
    }

    /// The monotonic clock, as a duration since boot.
    pub fn now(&self) -> Duration {
        self.clock.now().into()
    }

    fn now_us(&self) -> u64 {
        self.now().as_micros() as u64
    }

    /// Release the app's frame callbacks when the pacer says so; how long until it should be
    /// asked again.
    pub fn pace(&mut self) -> Option<Duration> {
        let now = self.now_us();
        match self.pacer.poll(now) {
            Wake::Release { waited_us, boosted } => {
                self.figures.released(waited_us, boosted);
                self.send_frame_callbacks();
                None
            }
            Wake::At(at) => Some(Duration::from_micros(at.saturating_sub(now))),
            Wake::Idle => None,
        }
    }

    pub fn write_figures(&mut self) {
        let now = self.now();
        self.figures.write_if_due(now);
    }

    /// A key, button or touch reached the app: its held callback may go at once.
    pub fn discrete_input(&mut self) {
        self.pacer.discrete_input();
        self.pace();
    }

    /// The window on screen: the newest (not an overlay) with a picture, and its surface.
    fn shown(&self) -> Option<(&Window, WlSurface)> {
        self.windows.iter().rev().find_map(|window| {
            let surface = self.surface_of(window)?;
            (!window.overlay() && held(&surface).is_some()).then_some((window, surface))
        })
    }

    pub fn surface_of(&self, window: &Window) -> Option<WlSurface> {
        window.surface(self.xwayland.as_ref(), &self.dh)
    }

    /// Every window's surface, with xdg popups.
    fn all_roots(&self) -> Vec<WlSurface> {
        let mut roots = Vec::new();
        for window in &self.windows {
            let Some(surface) = self.surface_of(window) else {
                continue;
            };
            roots.extend(
                PopupManager::popups_for_surface(&surface)
                    .map(|(popup, _)| popup.wl_surface().clone()),
            );
            roots.push(surface);
        }
        roots.extend(self.cursor.surface().cloned());
        roots
    }

    fn send_frame_callbacks(&mut self) {
        let time = self.now().as_millis() as u32;
        for_each_surface(&self.all_roots(), |states| {
            for callback in states
                .cached_state
                .get::<SurfaceAttributes>()
                .current()
                .frame_callbacks
                .drain(..)
            {
                callback.done(time);
            }
        });
    }

    /// The surfaces to draw, bottom first, with their places on the output: the shown
    /// window, its popups, and the overlays above.
    fn layers(&self) -> Vec<(WlSurface, Point<i32, Logical>)> {
        let mut layers = Vec::new();
        let Some((window, surface)) = self.shown() else {
            return layers;
        };
        let origin = window.origin();
        tree_layers(&surface, origin, &mut layers);
        for (popup, offset) in PopupManager::popups_for_surface(&surface) {
            let at = origin + offset - popup.geometry().loc;
            tree_layers(popup.wl_surface(), at, &mut layers);
        }
        for overlay in self.windows.iter().filter(|w| w.overlay()) {
            if let Some(surface) = self.surface_of(overlay) {
                tree_layers(&surface, overlay.origin(), &mut layers);
            }
        }
        layers
    }

    /// Draw the shown picture into `target`, with the pointer if `cursor`; whether it was
    /// one buffer copied straight.
    pub fn paint(&mut self, target: &mut Target, cursor: bool) -> bool {
        let mut layers = self.layers();
        let pointer = self.pointer_at();
        let mut arrow = None;
        if cursor {
            self.cursor.drawn_at = pointer;
            match self.cursor.look() {
                Some(Look::Surface(surface, hotspot)) => {
                    tree_layers(&surface, pointer - hotspot, &mut layers);
                }
                Some(Look::Arrow(picture)) => arrow = Some(picture),
                None => {}
            }
        }
        let full = Rectangle::new((0, 0).into(), (self.width, self.height).into());
        let direct = layers.len() == 1 && arrow.is_none() && {
            let (surface, at) = &layers[0];
            let one_for_one = surface_view(surface).is_some_and(|(_, v, size)| v.is_identity(size));
            one_for_one && opaque_cover(surface, *at, full)
        };
        if !direct {
            target.clear();
        }
        for (surface, at) in &layers {
            let Some((buffer, view, size)) = surface_view(surface) else {
                continue;
            };
            // Copied rather than blended where nothing of it is translucent.
            let whole = Rectangle::new(*at, view.size.into());
            let covered = region_covers(surface, *at, whole);
            let drawn = buffer::with_picture(&buffer, &mut self.mappings, |mut picture| {
                picture.opaque |= covered;
                if view.is_identity(size) {
                    target.draw(&picture, (at.x, at.y));
                } else {
                    target.draw_scaled(&picture, view.crop, (at.x, at.y), view.size);
                }
            });
            if drawn.is_none() {
                tracing::debug!("a surface's buffer could not be drawn");
            }
        }
        if let Some(arrow) = arrow {
            target.draw(&arrow, (pointer.x, pointer.y));
        }
        direct
    }

    /// Where the pointer is, in whole pixels.
    fn pointer_at(&self) -> Point<i32, Logical> {
        self.seat
            .get_pointer()
            .map(|pointer| pointer.current_location().to_i32_round())
            .unwrap_or_default()
    }

    /// A new picture is there to take.
    fn picture_changed(&mut self) {
        self.screencopy.changed(self.now());
        crate::screencopy::serve(self);
    }

    /// The capture took the newest picture (at `time`).
    pub fn taken(&mut self, direct: bool, time: Duration) {
        self.pacer.taken();
        self.summary.taken += 1;
        if direct {
            self.summary.direct += 1;
        }
        self.presented += 1;
        let refresh = Refresh::Fixed(self.interval);
        let (output, seq) = (&self.output, self.presented);
        for_each_surface(&self.all_roots(), |states| {
            for feedback in states
                .cached_state
                .get::<PresentationFeedbackCachedState>()
                .current()
                .callbacks
                .drain(..)
            {
                feedback.presented(
                    output,
                    time,
                    refresh,
                    seq,
                    wp_presentation_feedback::Kind::empty(),
                );
            }
        });
        self.pace();
    }

    /// The surface under a point of the output (the topmost whose picture covers it), and
    /// where that surface's origin is.
    pub fn surface_under(
        &self,
        at: Point<f64, Logical>,
    ) -> Option<(WlSurface, Point<f64, Logical>)> {
        self.layers()
            .into_iter()
            .rev()
            .find_map(|(surface, origin)| {
                let (_, view, _) = surface_view(&surface)?;
                let area = Rectangle::new(origin, view.size.into()).to_f64();
                area.contains(at).then(|| (surface, origin.to_f64()))
            })
    }

    /// Whether the app locked the pointer where it is (mouse look): then only relative
    /// motion reaches it. A constraint on the surface under the pointer becomes active here.
    pub fn pointer_locked(&mut self, pointer: &PointerHandle<Self>) -> bool {
        let Some(surface) = pointer.current_focus() else {
            return false;
        };
        with_pointer_constraint(&surface, pointer, |constraint| match constraint {
            Some(constraint) => {
                if !constraint.is_active() {
                    constraint.activate();
                }
                matches!(&*constraint, PointerConstraint::Locked(_))
            }
            None => false,
        })
    }

    /// Keyboard focus to the shown toplevel (only once it has a picture: some apps, foot
    /// among them, crash on a focus before their first configure is acked).
    fn refocus(&mut self) {
        let shown = self
            .shown()
            .map(|(window, surface)| (window.clone(), surface));
        let focus = shown.as_ref().map(|(_, surface)| surface.clone());
        if let Some(keyboard) = self.seat.get_keyboard()
            && keyboard.current_focus() != focus
        {
            let serial = SERIAL_COUNTER.next_serial();
            if let Some((Window::X11(window), _)) = &shown {
                crate::xwayland::focus(self, window, serial);
            }
            keyboard.set_focus(self, focus, serial);
        }
        // The pointer enters what is now under it, without moving: a click before any motion
        // reaches the app.
        if let Some(pointer) = self.seat.get_pointer() {
            let at = pointer.current_location();
            let under = self.surface_under(at);
            if pointer.current_focus() != under.as_ref().map(|(surface, _)| surface.clone()) {
                let time = self.now().as_millis() as u32;
                pointer.motion(
                    self,
                    under,
                    &MotionEvent {
                        location: at,
                        serial: SERIAL_COUNTER.next_serial(),
                        time,
                    },
                );
                pointer.frame(self);
            }
        }
    }

    /// Notice what changed outside a commit: an X11 window's surface becomes known when
    /// XWayland names it, which may come after its first picture.
    /// A drawn pointer that moved is a new picture too.
    pub fn refresh(&mut self) {
        let shown = self.shown().map(|(_, surface)| surface);
        if shown != self.last_shown {
            self.last_shown = shown;
            self.refocus();
            self.picture_changed();
        }
        if self.screencopy.wants_cursor()
            && self.cursor.look().is_some()
            && self.cursor.drawn_at != self.pointer_at()
        {
            self.picture_changed();
        }
    }

    fn configure_fullscreen(&self, toplevel: &ToplevelSurface) {
        let output = toplevel
            .wl_surface()
            .client()
            .and_then(|client| self.output.client_outputs(&client).next());
        toplevel.with_pending_state(|state| {
            state.states.set(xdg_toplevel::State::Fullscreen);
            state.states.set(xdg_toplevel::State::Activated);
            state.size = Some((self.width, self.height).into());
            state.fullscreen_output = output;
        });
    }
}

/// Whether a surface covers `area` with opaque pixels (an opaque region over it all, or an
/// XRGB buffer).
fn opaque_cover(
    surface: &WlSurface,
    at: Point<i32, Logical>,
    area: Rectangle<i32, Logical>,
) -> bool {
    region_covers(surface, at, area) || {
        // An XRGB buffer over the whole area is opaque whatever its region says.
        let Some((buffer, view, _)) = surface_view(surface) else {
            return false;
        };
        buffer::opacity(&buffer) == Some(true)
            && Rectangle::new(at, view.size.into()).contains_rect(area)
    }
}

/// Whether the opaque region a surface (placed at `at`) declared covers `area`.
fn region_covers(
    surface: &WlSurface,
    at: Point<i32, Logical>,
    area: Rectangle<i32, Logical>,
) -> bool {
    with_states(surface, |states| {
        let mut attributes = states.cached_state.get::<SurfaceAttributes>();
        let Some(region) = &attributes.current().opaque_region else {
            return false;
        };
        region.rects.iter().any(|(kind, rect)| {
            matches!(kind, RectangleKind::Add)
                && Rectangle::new(rect.loc + at, rect.size).contains_rect(area)
        })
    })
}

/// The buffer a surface shows, how it is seen on the output, and its size in pixels.
fn surface_view(surface: &WlSurface) -> Option<(wl_buffer::WlBuffer, View, (i32, i32))> {
    let buffer = held(surface)?;
    let size = buffer::size(&buffer)?;
    let view = with_states(surface, |states| view::of(states, size));
    Some((buffer, view, size))
}

fn held(surface: &WlSurface) -> Option<wl_buffer::WlBuffer> {
    with_states(surface, |states| {
        states
            .data_map
            .get::<Mutex<Held>>()
            .and_then(|held| held.lock().ok()?.0.clone())
    })
}

/// Run `f` on the state of every surface in the trees of `roots`.
fn for_each_surface(roots: &[WlSurface], mut f: impl FnMut(&SurfaceData)) {
    for root in roots {
        with_surface_tree_downward(
            root,
            (),
            |_, _, _| TraversalAction::DoChildren(()),
            |_, states, _| f(states),
            |_, _, _| true,
        );
    }
}

/// A toplevel's window geometry (its picture without client-side shadows).
pub fn window_geometry(surface: &WlSurface) -> Rectangle<i32, Logical> {
    with_states(surface, |states| {
        states
            .cached_state
            .get::<SurfaceCachedState>()
            .current()
            .geometry
            .unwrap_or_default()
    })
}

/// Where a surface goes, given where its parent's origin is.
fn placed(states: &SurfaceData, parent: Point<i32, Logical>) -> Point<i32, Logical> {
    if states.role == Some("subsurface") {
        parent
            + states
                .cached_state
                .get::<SubsurfaceCachedState>()
                .current()
                .location
    } else {
        parent
    }
}

/// A surface and its subsurfaces, bottom first, placed from `origin`.
fn tree_layers(
    surface: &WlSurface,
    origin: Point<i32, Logical>,
    layers: &mut Vec<(WlSurface, Point<i32, Logical>)>,
) {
    with_surface_tree_upward(
        surface,
        origin,
        |_, states, at| TraversalAction::DoChildren(placed(states, *at)),
        |surface, states, at| {
            if states.data_map.get::<Mutex<Held>>().is_some() {
                layers.push((surface.clone(), placed(states, *at)));
            }
        },
        |_, _, _| true,
    );
}

/// Take the buffers a commit brought into the surfaces of `root`'s tree (releasing the ones
/// they replace); whether any did, and whether any surface asked for a frame callback.
fn absorb(root: &WlSurface) -> (bool, bool) {
    let mut new_picture = false;
    let mut wants_callback = false;
    with_surface_tree_downward(
        root,
        (),
        |_, _, _| TraversalAction::DoChildren(()),
        |_, states, _| {
            let mut attributes = states.cached_state.get::<SurfaceAttributes>();
            let current = attributes.current();
            wants_callback |= !current.frame_callbacks.is_empty();
            let replacement = match current.buffer.take() {
                Some(BufferAssignment::NewBuffer(buffer)) => Some(Some(buffer)),
                Some(BufferAssignment::Removed) => Some(None),
                None => None,
            };
            let scale = current.buffer_scale.max(1);
            drop(attributes);
            // A viewport's crop must lie in the buffer: a protocol error otherwise.
            if let Some(Some(buffer)) = &replacement
                && let Some(size) = buffer::size(buffer)
            {
                ensure_viewport_valid(states, (size.0 / scale, size.1 / scale).into());
            }
            if let Some(replacement) = replacement {
                new_picture = true;
                states
                    .data_map
                    .insert_if_missing_threadsafe(|| Mutex::new(Held::default()));
                if let Some(held) = states.data_map.get::<Mutex<Held>>()
                    && let Ok(mut held) = held.lock()
                    && let Some(old) = std::mem::replace(&mut held.0, replacement)
                    && Some(&old) != held.0.as_ref()
                {
                    old.release();
                }
            }
        },
        |_, _, _| true,
    );
    (new_picture, wants_callback)
}

fn root_of(surface: &WlSurface) -> WlSurface {
    let mut root = surface.clone();
    while let Some(parent) = get_parent(&root) {
        root = parent;
    }
    root
}

impl CompositorHandler for State {
    fn compositor_state(&mut self) -> &mut CompositorState {
        &mut self.compositor
    }

    fn client_compositor_state<'a>(&self, client: &'a Client) -> &'a CompositorClientState {
        if let Some(xwayland) = client.get_data::<XWaylandClientData>() {
            return &xwayland.compositor_state;
        }
        &client
            .get_data::<ClientState>()
            .expect("every other client is added with ClientState")
            .compositor
    }

    fn commit(&mut self, surface: &WlSurface) {
        self.summary.commits += 1;
        self.popups.commit(surface);
        if let Some(toplevel) = self.windows.iter().find_map(|w| match w {
            Window::Xdg(t) if t.wl_surface() == surface => Some(t),
            _ => None,
        }) {
            let sent = with_states(surface, |states| {
                states
                    .data_map
                    .get::<XdgToplevelSurfaceData>()
                    .and_then(|data| Some(data.lock().ok()?.initial_configure_sent))
                    .unwrap_or(true)
            });
            if !sent {
                toplevel.send_configure();
            }
        }
        if let Some(PopupKind::Xdg(popup)) = self.popups.find_popup(surface)
            && !popup.is_initial_configure_sent()
            && let Err(err) = popup.send_configure()
        {
            tracing::debug!("a popup's first configure: {err}");
        }
        // A synchronized subsurface's state applies with its parent's commit, and smithay may
        // report the two in either order: whichever surface committed, the whole tree's new
        // buffers are taken (a commit whose state is still cached brings none).
        let root = root_of(surface);
        let toplevel = match self.popups.find_popup(&root) {
            Some(popup) => find_popup_root_surface(&popup).ok(),
            None => Some(root.clone()),
        };
        self.output.enter(&root);
        let (new_picture, wants_callback) = absorb(&root);
        if new_picture {
            self.refocus();
        }
        if toplevel.is_some() && toplevel == self.shown().map(|(_, surface)| surface)
            || self.is_overlay(&root)
        {
            let now = self.now();
            self.pacer
                .committed(now.as_micros() as u64, wants_callback, new_picture);
            if new_picture {
                self.screencopy.changed(now);
                crate::screencopy::serve(self);
            }
            self.pace();
        } else if new_picture
            && self.cursor.surface() == Some(&root)
            && self.screencopy.wants_cursor()
        {
            self.picture_changed();
        }
    }
}

impl PointerConstraintsHandler for State {
    fn new_constraint(&mut self, _surface: &WlSurface, pointer: &PointerHandle<Self>) {
        self.pointer_locked(pointer);
    }

    fn cursor_position_hint(
        &mut self,
        _surface: &WlSurface,
        _pointer: &PointerHandle<Self>,
        _location: Point<f64, Logical>,
    ) {
        // The cursor is not drawn: where the app would have it shown changes nothing.
    }
}

impl BufferHandler for State {
    fn buffer_destroyed(&mut self, buffer: &wl_buffer::WlBuffer) {
        self.mappings.forget(buffer);
    }
}

impl ShmHandler for State {
    fn shm_state(&self) -> &ShmState {
        &self.shm
    }
}

impl SeatHandler for State {
    type KeyboardFocus = WlSurface;
    type PointerFocus = WlSurface;
    type TouchFocus = WlSurface;

    fn seat_state(&mut self) -> &mut SeatState<Self> {
        &mut self.seat_state
    }

    fn cursor_image(&mut self, _seat: &Seat<Self>, image: CursorImageStatus) {
        if self.cursor.status != image {
            self.cursor.status = image;
            if self.screencopy.wants_cursor() {
                self.picture_changed();
            }
        }
    }

    fn focus_changed(&mut self, seat: &Seat<Self>, focused: Option<&WlSurface>) {
        let client = focused.and_then(|s| self.dh.get_client(s.id()).ok());
        set_data_device_focus(&self.dh, seat, client);
    }
}

impl SelectionHandler for State {
    type SelectionUserData = ();
}

impl DataDeviceHandler for State {
    fn data_device_state(&self) -> &DataDeviceState {
        &self.data_device
    }
}

impl ClientDndGrabHandler for State {}
impl ServerDndGrabHandler for State {}

impl OutputHandler for State {}

impl XdgShellHandler for State {
    fn xdg_shell_state(&mut self) -> &mut XdgShellState {
        &mut self.xdg
    }

    fn new_toplevel(&mut self, surface: ToplevelSurface) {
        self.configure_fullscreen(&surface);
        // Shown, and focused, from its first picture.
        self.windows.push(Window::Xdg(surface));
    }

    fn toplevel_destroyed(&mut self, surface: ToplevelSurface) {
        self.remove(&Window::Xdg(surface));
    }

    fn new_popup(&mut self, surface: PopupSurface, _positioner: PositionerState) {
        self.unconstrain(&surface);
        if let Err(err) = self.popups.track_popup(PopupKind::Xdg(surface)) {
            tracing::debug!("a popup went before it was tracked: {err:?}");
        }
    }

    fn reposition_request(
        &mut self,
        surface: PopupSurface,
        positioner: PositionerState,
        token: u32,
    ) {
        surface.with_pending_state(|state| {
            state.geometry = positioner.get_geometry();
            state.positioner = positioner;
        });
        self.unconstrain(&surface);
        surface.send_repositioned(token);
    }

    fn grab(&mut self, _surface: PopupSurface, _seat: wl_seat::WlSeat, _serial: Serial) {
        // No popup grabs: the one app owns the whole screen and every input.
    }

    fn fullscreen_request(
        &mut self,
        surface: ToplevelSurface,
        _output: Option<wl_output::WlOutput>,
    ) {
        self.configure_fullscreen(&surface);
        surface.send_pending_configure();
    }

    fn unfullscreen_request(&mut self, surface: ToplevelSurface) {
        // Every toplevel stays fullscreen.
        surface.send_pending_configure();
    }

    fn maximize_request(&mut self, surface: ToplevelSurface) {
        surface.send_pending_configure();
    }
}

impl State {
    /// A window went: what is shown may have changed.
    pub fn remove(&mut self, window: &Window) {
        self.windows.retain(|w| w != window);
        self.refocus();
        self.picture_changed();
    }

    fn is_overlay(&self, surface: &WlSurface) -> bool {
        self.windows
            .iter()
            .any(|w| w.overlay() && self.surface_of(w).as_ref() == Some(surface))
    }

    /// Keep a popup on the output.
    fn unconstrain(&self, popup: &PopupSurface) {
        let kind = PopupKind::Xdg(popup.clone());
        let Ok(root) = find_popup_root_surface(&kind) else {
            return;
        };
        let mut target = Rectangle::new((0, 0).into(), (self.width, self.height).into());
        target.loc -= get_popup_toplevel_coords(&kind);
        target.loc += window_geometry(&root).loc;
        popup.with_pending_state(|state| {
            state.geometry = state.positioner.get_unconstrained_geometry(target);
        });
    }
}

// The virtual keyboard is smithay's, seen through a layer that notes each key as a discrete
// input for the pacer.
smithay::reexports::wayland_server::delegate_global_dispatch!(State: [
    smithay::reexports::wayland_protocols_misc::zwp_virtual_keyboard_v1::server::zwp_virtual_keyboard_manager_v1::ZwpVirtualKeyboardManagerV1:
        smithay::wayland::virtual_keyboard::VirtualKeyboardManagerGlobalData
] => VirtualKeyboardManagerState);
smithay::reexports::wayland_server::delegate_dispatch!(State: [
    smithay::reexports::wayland_protocols_misc::zwp_virtual_keyboard_v1::server::zwp_virtual_keyboard_manager_v1::ZwpVirtualKeyboardManagerV1: ()
] => VirtualKeyboardManagerState);

impl Dispatch<ZwpVirtualKeyboardV1, VirtualKeyboardUserData<State>> for State {
    fn request(
        state: &mut Self,
        client: &Client,
        resource: &ZwpVirtualKeyboardV1,
        request: zwp_virtual_keyboard_v1::Request,
        data: &VirtualKeyboardUserData<State>,
        dh: &DisplayHandle,
        data_init: &mut DataInit<'_, Self>,
    ) {
        let key = matches!(request, zwp_virtual_keyboard_v1::Request::Key { .. });
        <VirtualKeyboardManagerState as Dispatch<
            ZwpVirtualKeyboardV1,
            VirtualKeyboardUserData<State>,
            State,
        >>::request(state, client, resource, request, data, dh, data_init);
        if key {
            state.discrete_input();
        }
    }
}

smithay::delegate_compositor!(State);
smithay::delegate_shm!(State);
smithay::delegate_xdg_shell!(State);
smithay::delegate_seat!(State);
smithay::delegate_data_device!(State);
smithay::delegate_output!(State);
smithay::delegate_presentation!(State);
smithay::delegate_viewporter!(State);
smithay::delegate_relative_pointer!(State);
smithay::delegate_pointer_constraints!(State);
