//! Lantern's own compositor ([`lantern_compositor`]), run as the session's user by this very
//! executable (`host-daemon compositor`): capture on commit and frame callbacks paced for
//! input-to-photon. Apps get `wayland-lantern`; the session's capture and input helpers
//! use `lantern-control`, the only socket whose clients see screencopy and the virtual
//! keyboard and pointer. X11 apps run through XWayland where it is installed.

use std::path::Path;

use super::{CaptureFrom, Compositor, Launch, Ready, Setup, base_env};
use crate::Error;
use crate::process::find;
use lantern_compositor::figures::Report;

pub struct Lantern;

/// The apps' socket, in the session's runtime directory.
pub const APP_SOCKET: &str = "wayland-lantern";
/// The daemon's socket.
pub const CONTROL_SOCKET: &str = "lantern-control";
/// Made once both sockets listen.
const READY_FILE: &str = "lantern-compositor.ready";
/// The pacing's figures, replaced once a second.
const FIGURES_FILE: &str = "lantern-figures";

impl Compositor for Lantern {
    fn name(&self) -> &'static str {
        "lantern"
    }

    fn prepare(&self, setup: &Setup) -> Result<Launch, Error> {
        // This very executable, through the child's own link to it: the session's user may
        // not be able to reach the directory it was started from (a build under /root), and
        // the link needs no search permission on the way.
        let program = std::path::PathBuf::from("/proc/self/exe");
        let xwayland = setup.xwayland && find("Xwayland", Some("xwayland")).is_ok();
        let dir = setup.dir.path();
        let format = setup.format;
        let mut env = base_env(dir);
        env.extend(setup.env.iter().cloned());
        let mut args: Vec<String> = vec![
            "compositor".into(),
            "--socket".into(),
            dir.join(APP_SOCKET).display().to_string(),
            "--control".into(),
            dir.join(CONTROL_SOCKET).display().to_string(),
            "--ready".into(),
            dir.join(READY_FILE).display().to_string(),
            "--figures".into(),
            dir.join(FIGURES_FILE).display().to_string(),
        ];
        args.extend(super::mode_args(format));
        if xwayland {
            args.push("--xwayland".into());
        }
        // Apps render on the GPU where there is one (and read back here), not in software.
        if let Some(node) = super::render_node() {
            args.push("--dmabuf-device".into());
            args.push(node.display().to_string());
        }
        Ok(Launch { program, args, env })
    }

    fn ready(&self, dir: &Path) -> Result<Option<Ready>, Error> {
        // Empty, or XWayland's DISPLAY.
        let Some(display) = crate::files::read(dir, Path::new(READY_FILE), 64) else {
            return Ok(None);
        };
        let mut env = vec![("WAYLAND_DISPLAY".to_string(), APP_SOCKET.to_string())];
        if !display.is_empty() {
            env.push(("DISPLAY".into(), display));
        }
        Ok(Some(Ready {
            env,
            capture: CaptureFrom::Screencopy {
                socket: dir.join(CONTROL_SOCKET),
            },
            input: Some(dir.join(CONTROL_SOCKET)),
            figures: Some(dir.join(FIGURES_FILE)),
        }))
    }
}

/// The figures the compositor last wrote to `path` (a file in the session's directory, which
/// its user can write: read bounded, never through a link, and parsed as untrusted text).
pub fn figures(path: &Path) -> Option<Report> {
    let (dir, name) = (path.parent()?, path.file_name()?);
    Report::parse(&crate::files::read(dir, Path::new(name), 1024)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_once_the_compositor_says_so_and_apps_never_get_the_control_socket() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Lantern.ready(dir.path()).unwrap().is_none());
        std::fs::write(dir.path().join(READY_FILE), "").unwrap();
        let ready = Lantern.ready(dir.path()).unwrap().unwrap();
        assert_eq!(
            ready.env,
            vec![("WAYLAND_DISPLAY".to_string(), APP_SOCKET.to_string())]
        );
        std::fs::write(dir.path().join(READY_FILE), ":7").unwrap();
        let ready = Lantern.ready(dir.path()).unwrap().unwrap();
        assert!(ready.env.contains(&("DISPLAY".into(), ":7".into())));
        assert_eq!(ready.input, Some(dir.path().join(CONTROL_SOCKET)));
        assert_eq!(
            ready.capture,
            CaptureFrom::Screencopy {
                socket: dir.path().join(CONTROL_SOCKET)
            }
        );
    }

    #[test]
    fn figures_are_read_from_a_file_never_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FIGURES_FILE);
        assert_eq!(figures(&path), None);
        let mut report = Report::default();
        report.total.callbacks = 7;
        std::fs::write(&path, report.to_text()).unwrap();
        assert_eq!(figures(&path), Some(report));
        std::fs::remove_file(&path).unwrap();
        let elsewhere = dir.path().join("elsewhere");
        std::fs::write(&elsewhere, report.to_text()).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
        assert_eq!(figures(&path), None);
    }
}
