//! sway, headless: one output of exactly the session's mode, no bar, no user configuration,
//! every window fullscreen, XWayland where installed.

use std::path::Path;

use super::{CaptureFrom, Compositor, Launch, Ready, Setup, base_env, render_node};
use crate::Error;
use crate::process::find;

pub struct Sway;

/// The file sway's config writes once it has run its startup, with XWayland's DISPLAY (empty
/// without XWayland): its presence means sway is up.
const DISPLAY_FILE: &str = "display";

impl Compositor for Sway {
    fn name(&self) -> &'static str {
        "sway"
    }

    fn prepare(&self, setup: &Setup) -> Result<Launch, Error> {
        let program = find("sway", Some("sway"))?;
        let xwayland = setup.xwayland && find("Xwayland", Some("xwayland")).is_ok();
        let config = config(
            setup.format.width,
            setup.format.height,
            setup.format.fps,
            xwayland,
        );
        let path = setup.dir.write("sway.conf", &config, setup.account)?;
        let mut env = base_env(setup.dir.path());
        env.extend(
            [
                ("WLR_BACKENDS", "headless"),
                ("WLR_HEADLESS_OUTPUTS", "1"),
                ("WLR_LIBINPUT_NO_DEVICES", "1"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        env.extend(setup.env.iter().cloned());
        if render_node().is_none() {
            // No GPU: wlroots' software renderer.
            env.push(("WLR_RENDERER".into(), "pixman".into()));
        }
        Ok(Launch {
            program,
            args: vec!["--config".into(), path.display().to_string()],
            env,
        })
    }

    fn ready(&self, dir: &Path) -> Result<Option<Ready>, Error> {
        // Files in the session's directory: read capped, never through a link or a FIFO.
        let Some(display) = crate::files::read(dir, Path::new(DISPLAY_FILE), 64) else {
            return Ok(None);
        };
        // A config line sway rejects would leave a session unlike the one asked for.
        let log = crate::files::read(dir, Path::new("sway.log"), 1 << 20).unwrap_or_default();
        if let Some(line) = log.lines().find(|l| l.contains("Error on line")) {
            return Err(Error::Compositor(format!(
                "sway rejected its configuration: {line}"
            )));
        }
        let Some(socket) = std::fs::read_dir(dir)
            .map_err(|e| Error::io(format!("{}", dir.display()), e))?
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .find(|name| name.starts_with("wayland-") && !name.ends_with(".lock"))
        else {
            return Ok(None);
        };
        let mut env = vec![("WAYLAND_DISPLAY".to_string(), socket.clone())];
        if !display.is_empty() {
            env.push(("DISPLAY".into(), display));
        }
        Ok(Some(Ready {
            env,
            capture: CaptureFrom::Screencopy {
                socket: dir.join(&socket),
            },
            input: Some(dir.join(socket)),
            figures: None,
        }))
    }
}

/// The whole configuration: nothing else is read. No swaynag (it would draw over the app),
/// and every window, Wayland or X11, fullscreen.
fn config(width: u32, height: u32, fps: f64, xwayland: bool) -> String {
    format!(
        "# Written by host-daemon for one session.\n\
         output HEADLESS-1 mode --custom {width}x{height}@{fps}Hz position 0 0\n\
         default_border none\n\
         default_floating_border none\n\
         focus_follows_mouse no\n\
         xwayland {xwayland}\n\
         swaynag_command -\n\
         for_window [app_id=\".*\"] fullscreen enable\n\
         for_window [class=\".*\"] fullscreen enable\n\
         exec printf '%s' \"${{DISPLAY:-}}\" > \"$XDG_RUNTIME_DIR/{DISPLAY_FILE}.new\" && \
         mv \"$XDG_RUNTIME_DIR/{DISPLAY_FILE}.new\" \"$XDG_RUNTIME_DIR/{DISPLAY_FILE}\"\n",
        xwayland = if xwayland { "enable" } else { "disable" },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_sets_the_mode_and_nothing_of_the_users() {
        let text = config(1280, 720, 60.0, false);
        assert!(text.contains("output HEADLESS-1 mode --custom 1280x720@60Hz"));
        assert!(text.contains("xwayland disable"));
        assert!(!text.contains("bar"));
        assert!(config(1920, 1080, 59.94, true).contains("1920x1080@59.94Hz"));
    }

    #[test]
    fn ready_once_the_socket_and_display_are_there() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Sway.ready(dir.path()).unwrap().is_none());
        std::fs::write(dir.path().join("wayland-1.lock"), "").unwrap();
        std::fs::write(dir.path().join("wayland-1"), "").unwrap();
        assert!(Sway.ready(dir.path()).unwrap().is_none());
        std::fs::write(dir.path().join(DISPLAY_FILE), ":3").unwrap();
        let ready = Sway.ready(dir.path()).unwrap().unwrap();
        assert!(
            ready
                .env
                .contains(&("WAYLAND_DISPLAY".into(), "wayland-1".into()))
        );
        assert!(ready.env.contains(&("DISPLAY".into(), ":3".into())));
        assert_eq!(
            ready.capture,
            CaptureFrom::Screencopy {
                socket: dir.path().join("wayland-1")
            }
        );
        let error = "00:00:00.004 [ERROR] [sway/config.c:857] Error on line 7 'x': no";
        std::fs::write(dir.path().join("sway.log"), error).unwrap();
        let err = Sway.ready(dir.path()).unwrap_err().to_string();
        assert!(err.contains("rejected its configuration"), "{err}");
    }
}
