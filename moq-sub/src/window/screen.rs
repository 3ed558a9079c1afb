//! SDL's side of the window: opening it (and refusing a display nobody sees), the picture's
//! IYUV texture and the overlay's, drawing them letterboxed, fullscreen.

use ffmpeg_next as ffmpeg;
use sdl2::pixels::{Color, PixelFormatEnum};
use sdl2::render::{BlendMode, Texture, TextureAccess, WindowCanvas};
use sdl2::video::FullscreenType;

use super::{Renderer, WindowConfig, layout, overlay, pads};
use crate::Error;

/// SDL's side: the window, its renderer and event queue.
pub(super) struct Screen {
    pub(super) _sdl: sdl2::Sdl,
    pub(super) events: sdl2::EventSubsystem,
    pub(super) mouse: sdl2::mouse::MouseUtil,
    pub(super) pump: sdl2::EventPump,
    pub(super) canvas: WindowCanvas,
    pub(super) pads: pads::Pads,
    pub(super) wake_kind: u32,
    /// The picture's texture and its size.
    pub(super) texture: Option<(Texture, (u32, u32))>,
    pub(super) overlay: Option<(Texture, (u32, u32))>,
    /// The window was sized by the player (or is fullscreen): pictures no longer size it.
    pub(super) sized: bool,
}

fn sdl_error(what: &str) -> impl FnOnce(String) -> Error + '_ {
    move |why| Error::Output {
        what: format!("window: {what}: {why}"),
        source: None,
    }
}

fn no_display(why: &str) -> Error {
    Error::Config(format!(
        "no display to open a window on ({why}): set DISPLAY or WAYLAND_DISPLAY, or write the \
         frames to a pipe with -o - (moq-sub … -o - | mpv -), or measure only with --no-window"
    ))
}

impl Screen {
    pub(super) fn open(config: &WindowConfig) -> Result<Self, Error> {
        let renderer = config.renderer.resolve();
        if renderer == Renderer::Software {
            // The window's own framebuffer (shared memory to the X server), not a GL
            // context presenting it: without a GPU that GL is Mesa's llvmpipe, 4x slower.
            sdl2::hint::set("SDL_FRAMEBUFFER_ACCELERATION", "0");
        }
        // An X display and no Wayland one: X11, and if it does not answer, SDL's own reason
        // rather than a fall through to its offscreen driver.
        if std::env::var_os("SDL_VIDEODRIVER").is_none() && super::x_only() {
            sdl2::hint::set("SDL_VIDEODRIVER", "x11");
        }
        // Ctrl-C and SIGTERM are the program's to handle, not SDL's.
        sdl2::hint::set("SDL_NO_SIGNAL_HANDLERS", "1");
        // The click that focuses the window is also the game's.
        sdl2::hint::set("SDL_MOUSE_FOCUS_CLICKTHROUGH", "1");
        sdl2::hint::set("SDL_RENDER_SCALE_QUALITY", "linear");
        let sdl = sdl2::init().map_err(sdl_error("SDL"))?;
        let video = sdl.video().map_err(|why| no_display(&why))?;
        // SDL falls back to its offscreen driver when no display answers; a window nobody
        // sees is not what the player asked for (unless SDL_VIDEODRIVER says so).
        if std::env::var_os("SDL_VIDEODRIVER").is_none()
            && matches!(video.current_video_driver(), "offscreen" | "dummy")
        {
            return Err(no_display("none answered"));
        }
        let controllers = sdl
            .game_controller()
            .map_err(sdl_error("game controllers"))?;
        let events = sdl.event().map_err(sdl_error("events"))?;
        // SAFETY: called once, before any event of this kind exists.
        let wake_kind = unsafe { events.register_event() }.map_err(sdl_error("events"))?;
        let mut window = video.window(&config.title, 1280, 720);
        window.position_centered().resizable().allow_highdpi();
        if config.fullscreen {
            window.fullscreen_desktop();
        }
        let window = window
            .build()
            .map_err(|e| sdl_error("create")(e.to_string()))?;
        let mut canvas = window.into_canvas();
        if config.vsync {
            canvas = canvas.present_vsync();
        }
        // SDL_RENDER_DRIVER, when set, chooses for itself.
        if std::env::var_os("SDL_RENDER_DRIVER").is_none() {
            canvas = match renderer {
                Renderer::Software => canvas.software(),
                _ => canvas.accelerated(),
            };
        }
        let canvas = canvas
            .build()
            .map_err(|e| sdl_error("renderer")(e.to_string()))?;
        let pump = sdl.event_pump().map_err(sdl_error("events"))?;
        tracing::info!(
            renderer = canvas.info().name,
            vsync = config.vsync,
            "window open"
        );
        Ok(Self {
            mouse: sdl.mouse(),
            _sdl: sdl,
            events,
            pump,
            canvas,
            pads: pads::Pads::new(controllers),
            wake_kind,
            texture: None,
            overlay: None,
            sized: config.fullscreen,
        })
    }

    /// What wakes the window's thread: a sender of SDL events, and the event's kind.
    pub(super) fn waker(&self) -> (sdl2::event::EventSender, u32) {
        (self.events.event_sender(), self.wake_kind)
    }

    /// Where the picture is, in window coordinates (the pointer's).
    pub(super) fn picture_in_window(&self) -> layout::Rect {
        let video = self.texture.as_ref().map_or((16, 9), |(_, size)| *size);
        layout::letterbox(self.canvas.window().size(), video)
    }

    /// Upload a picture into the texture (a new one when its size changed).
    pub(super) fn upload(&mut self, picture: &ffmpeg::frame::Video) -> Result<(), Error> {
        let image = lantern_media::ffmpeg::image(picture)?;
        let size = (image.width(), image.height());
        let plane = |i: usize, rows: u32| {
            let (data, stride) = image.plane(i);
            (&data[..(stride * rows as usize).min(data.len())], stride)
        };
        let (y, ys) = plane(0, size.1);
        let (u, us) = plane(1, size.1 / 2);
        let (v, vs) = plane(2, size.1 / 2);
        let (texture, fresh) = sized_texture(
            &mut self.texture,
            &self.canvas,
            (PixelFormatEnum::IYUV, TextureAccess::Streaming),
            size,
        )?;
        texture
            .update_yuv(None, y, ys, u, us, v, vs)
            .map_err(|e| sdl_error("upload")(e.to_string()))?;
        if fresh && !self.sized {
            self.fit_to(size);
        }
        Ok(())
    }

    /// Size the window to the video (scaled down to the display when larger).
    pub(super) fn fit_to(&mut self, video: (u32, u32)) {
        let window = self.canvas.window_mut();
        let bounds = window
            .display_index()
            .and_then(|d| window.subsystem().display_usable_bounds(d))
            .map_or((1920, 1080), |r| (r.width(), r.height()));
        let (w, h) = layout::initial_size(video, bounds);
        let _ = window.set_size(w, h);
        window.set_position(
            sdl2::video::WindowPos::Centered,
            sdl2::video::WindowPos::Centered,
        );
    }

    pub(super) fn set_overlay(&mut self, lines: &[String]) -> Result<(), Error> {
        let image = overlay::render(lines);
        let size = (image.width as u32, image.height as u32);
        let (texture, fresh) = sized_texture(
            &mut self.overlay,
            &self.canvas,
            (PixelFormatEnum::ARGB8888, TextureAccess::Static),
            size,
        )?;
        if fresh {
            texture.set_blend_mode(BlendMode::Blend);
            texture.set_scale_mode(sdl2::render::ScaleMode::Nearest);
        }
        let bytes: Vec<u8> = image.pixels.iter().flat_map(|p| p.to_ne_bytes()).collect();
        texture
            .update(None, &bytes, image.width * 4)
            .map_err(|e| sdl_error("overlay")(e.to_string()))
    }

    /// Draw the picture letterboxed (and the overlay, when shown), and present.
    pub(super) fn draw(&mut self, overlay: bool) -> Result<(), Error> {
        let output = self.canvas.output_size().map_err(sdl_error("size"))?;
        self.canvas.set_draw_color(Color::BLACK);
        self.canvas.clear();
        if let Some((texture, size)) = &self.texture {
            let r = layout::letterbox(output, *size);
            let dst = sdl2::rect::Rect::new(r.x, r.y, r.width.max(1), r.height.max(1));
            self.canvas
                .copy(texture, None, dst)
                .map_err(sdl_error("draw"))?;
        }
        if overlay && let Some((texture, (w, h))) = &self.overlay {
            // Bottom left: the top rows carry the test stamp, and games' HUDs sit there.
            let scale = overlay::scale(output.1);
            let (w, h) = (w * scale, h * scale);
            let y = output.1.saturating_sub(h + 8) as i32;
            let dst = sdl2::rect::Rect::new(8, y, w, h);
            self.canvas
                .copy(texture, None, dst)
                .map_err(sdl_error("overlay"))?;
        }
        self.canvas.present();
        Ok(())
    }

    pub(super) fn fullscreen(&mut self) {
        let window = self.canvas.window_mut();
        let next = match window.fullscreen_state() {
            FullscreenType::Off => FullscreenType::Desktop,
            _ => FullscreenType::Off,
        };
        if let Err(err) = window.set_fullscreen(next) {
            tracing::warn!(%err, "cannot change fullscreen");
        }
        self.sized = true;
    }
}

/// The texture in `slot`, made anew (the old one destroyed) when there is none or it has
/// another size; true when it is new.
fn sized_texture<'a>(
    slot: &'a mut Option<(Texture, (u32, u32))>,
    canvas: &WindowCanvas,
    (format, access): (PixelFormatEnum, TextureAccess),
    size: (u32, u32),
) -> Result<(&'a mut Texture, bool), Error> {
    if slot.as_ref().is_none_or(|(_, s)| *s != size) {
        if let Some((old, _)) = slot.take() {
            // SAFETY: the old texture belongs to this renderer and is not used again.
            unsafe { old.destroy() };
        }
        let texture = canvas
            .create_texture(format, access, size.0, size.1)
            .map_err(|e| sdl_error("texture")(e.to_string()))?;
        return Ok((&mut slot.insert((texture, size)).0, true));
    }
    slot.as_mut()
        .map(|(texture, _)| (texture, false))
        .ok_or_else(|| sdl_error("texture")("none".into()))
}
