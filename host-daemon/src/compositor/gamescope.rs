//! gamescope (Valve's game compositor), headless: one output of exactly the session's mode, the
//! app in gamescope's own Xwayland (and Wayland, with `--expose-wayland`), and its picture
//! taken from the PipeWire node gamescope offers ("gamescope": BGRx or NV12, DMA-BUF or shared
//! memory), which is what it composited, without a screencopy round trip.
//!
//! It needs a GPU (Vulkan) and a gamescope with the headless backend (`--backend headless`,
//! newer than Debian 12's 3.11). The session's PipeWire starts before it, so its node is on the
//! session's PipeWire. gamescope offers no input protocol to inject with: such sessions are
//! view-only for now.
//!
//! gamescope starts one program of its own; ours writes what its children see (DISPLAY and
//! WAYLAND_DISPLAY) into the session's directory and then waits, and the session starts the app
//! with that environment, as with sway.

use std::path::{Path, PathBuf};

use super::{CaptureFrom, Compositor, Launch, Ready, Setup, base_env};
use crate::Error;

pub struct Gamescope {
    program: PathBuf,
}

/// The file gamescope's child writes: DISPLAY, then WAYLAND_DISPLAY, a line each.
const DISPLAY_FILE: &str = "display";

/// gamescope's PipeWire node (its stream's name).
pub const NODE: &str = "gamescope";

impl Gamescope {
    /// gamescope at `program`, if `help` (its `--help`) shows it can run headless.
    pub fn new(program: PathBuf, help: &str) -> Result<Self, Error> {
        if !runs_headless(help) {
            return Err(Error::Config(format!(
                "{} has no headless backend (`--backend headless`, in gamescope releases newer \
                 than Debian 12's 3.11): use --compositor sway",
                program.display()
            )));
        }
        Ok(Self { program })
    }
}

/// Whether gamescope's `--help` offers the headless backend.
pub fn runs_headless(help: &str) -> bool {
    help.contains("--backend") && help.contains("headless =>")
}

impl Compositor for Gamescope {
    fn name(&self) -> &'static str {
        "gamescope"
    }

    fn captures_through_pipewire(&self) -> bool {
        true
    }

    fn prepare(&self, setup: &Setup) -> Result<Launch, Error> {
        let (width, height) = (setup.format.width, setup.format.height);
        let mut args: Vec<String> = vec!["--backend".into(), "headless".into()];
        // The game's size and the output's are the same: no scaling anywhere.
        for (flag, value) in [("-W", width), ("-H", height), ("-w", width), ("-h", height)] {
            args.extend([flag.to_string(), value.to_string()]);
        }
        args.extend([
            "-r".to_string(),
            format!("{}", setup.format.fps.round().max(1.0)),
            "--expose-wayland".into(),
            "--".into(),
            "sh".into(),
            "-c".into(),
            format!(
                "printf '%s\\n%s\\n' \"${{DISPLAY:-}}\" \"${{WAYLAND_DISPLAY:-}}\" \
                 > \"$XDG_RUNTIME_DIR/{DISPLAY_FILE}.new\" && \
                 mv \"$XDG_RUNTIME_DIR/{DISPLAY_FILE}.new\" \"$XDG_RUNTIME_DIR/{DISPLAY_FILE}\" && \
                 exec sleep 2147483647"
            ),
        ]);
        let mut env = base_env(setup.dir.path());
        env.extend(setup.env.iter().cloned());
        Ok(Launch {
            program: self.program.clone(),
            args,
            env,
        })
    }

    fn ready(&self, dir: &Path) -> Result<Option<Ready>, Error> {
        // A file in the session's directory: read capped, never through a link or a FIFO.
        let Some(text) = crate::files::read(dir, Path::new(DISPLAY_FILE), 4096) else {
            return Ok(None);
        };
        let mut lines = text.lines();
        let (display, wayland) = (lines.next().unwrap_or(""), lines.next().unwrap_or(""));
        if display.is_empty() && wayland.is_empty() {
            return Err(Error::Compositor(
                "gamescope gave its app neither an X display nor a Wayland socket".into(),
            ));
        }
        let mut env = Vec::new();
        if !display.is_empty() {
            env.push(("DISPLAY".to_string(), display.to_string()));
        }
        if !wayland.is_empty() {
            env.push(("WAYLAND_DISPLAY".to_string(), wayland.to_string()));
        }
        Ok(Some(Ready {
            env,
            capture: CaptureFrom::PipeWire { node: NODE.into() },
            input: None,
            figures: None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::RuntimeDir;

    /// The backend lines of a gamescope that has it, and Debian 12's 3.11.49, which has not.
    const NEWER: &str = "  --backend                      select rendering backend\n\
        \x20                                    auto => autodetect (default)\n\
        \x20                                    headless => use headless backend (no window, no DRM output)\n";
    const BOOKWORM: &str = "  -w, --nested-width             game width\n\
        \x20 --xwayland-count               create N xwayland servers\n";

    #[test]
    fn only_a_gamescope_with_the_headless_backend_is_taken() {
        assert!(runs_headless(NEWER));
        assert!(!runs_headless(BOOKWORM));
        let err = Gamescope::new("/usr/games/gamescope".into(), BOOKWORM)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("no headless backend"), "{err}");
        assert!(err.contains("--compositor sway"), "{err}");
    }

    #[test]
    fn it_runs_headless_at_the_sessions_mode_with_the_sessions_pipewire() {
        let dir = RuntimeDir::create("gamescope-test", None).unwrap();
        let gamescope = Gamescope::new("/usr/bin/gamescope".into(), NEWER).unwrap();
        let pipewire = vec![(
            "PIPEWIRE_REMOTE".to_string(),
            "/run/x/pipewire-0".to_string(),
        )];
        let launch = gamescope
            .prepare(&Setup {
                format: moq_pub::source::Format {
                    width: 1920,
                    height: 1080,
                    fps: 59.94,
                },
                dir: &dir,
                account: None,
                xwayland: true,
                env: &pipewire,
            })
            .unwrap();
        let args = launch.args.join(" ");
        assert!(
            args.starts_with("--backend headless -W 1920 -H 1080 -w 1920 -h 1080 -r 60 "),
            "{args}"
        );
        assert!(launch.env.contains(&pipewire[0]), "{:?}", launch.env);
        assert!(gamescope.captures_through_pipewire());
    }

    #[test]
    fn ready_once_its_child_said_where_apps_go() {
        let dir = tempfile::tempdir().unwrap();
        let gamescope = Gamescope::new("gamescope".into(), NEWER).unwrap();
        assert!(gamescope.ready(dir.path()).unwrap().is_none());
        std::fs::write(dir.path().join(DISPLAY_FILE), ":1\ngamescope-0\n").unwrap();
        let ready = gamescope.ready(dir.path()).unwrap().unwrap();
        assert_eq!(
            ready.env,
            [
                ("DISPLAY".to_string(), ":1".to_string()),
                ("WAYLAND_DISPLAY".to_string(), "gamescope-0".to_string())
            ]
        );
        assert_eq!(ready.capture, CaptureFrom::PipeWire { node: NODE.into() });
        assert!(ready.input.is_none());
        std::fs::write(dir.path().join(DISPLAY_FILE), "\n\n").unwrap();
        assert!(gamescope.ready(dir.path()).is_err());
    }
}
