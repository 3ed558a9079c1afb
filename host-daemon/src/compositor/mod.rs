//! The compositor a session's app runs in. Each kind says how to start it, configured by the
//! daemon alone, and how to tell it is up; the session starts, watches and stops it.
//!
//! sway (wlroots) runs headless anywhere, with the pixman renderer when there is no GPU.
//! gamescope, which offers its picture as a PipeWire node, needs a GPU (Vulkan) and its
//! headless backend: `auto` takes it where both are there (see [`Kind::choose`]), and our
//! own otherwise. `lantern` is ours (smithay): capture on commit and frame callbacks paced
//! for input-to-photon, X11 apps through XWayland.

mod gamescope;
mod lantern;
mod sway;

use std::path::{Path, PathBuf};
use std::time::Duration;

use moq_pub::source::Format;

pub use gamescope::Gamescope;
pub use lantern::{Lantern, figures};
pub use sway::Sway;

use crate::Error;
use crate::account::{Account, RuntimeDir};

/// What a compositor needs to start.
pub struct Setup<'a> {
    /// The one output's mode.
    pub format: Format,
    pub dir: &'a RuntimeDir,
    pub account: Option<&'a Account>,
    /// Start XWayland for X11 apps (where it is installed).
    pub xwayland: bool,
    /// More environment for it: the session's PipeWire, for one that captures through it.
    pub env: &'a [(String, String)],
}

/// How to start it.
pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
}

/// A compositor that is up.
#[derive(Clone, Debug)]
pub struct Ready {
    /// What an app needs to reach it (WAYLAND_DISPLAY, and DISPLAY with XWayland).
    pub env: Vec<(String, String)>,
    pub capture: CaptureFrom,
    /// The Wayland socket that takes injected input (virtual keyboard and pointer); `None`
    /// when the compositor offers no way in.
    pub input: Option<PathBuf>,
    /// Where Lantern's compositor, which stamps each picture with the app's commit and paces
    /// the app's frames, writes its pacing figures once a second; `None` for the others.
    pub figures: Option<PathBuf>,
}

/// Where the session's picture is captured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaptureFrom {
    /// wlr-screencopy on this Wayland socket.
    Screencopy { socket: PathBuf },
    /// A PipeWire video node (by name or serial).
    PipeWire { node: String },
}

pub trait Compositor: Send + Sync {
    /// Its name, for messages ("sway").
    fn name(&self) -> &'static str;

    /// Whether its picture comes through the session's PipeWire (which then starts first).
    fn captures_through_pipewire(&self) -> bool {
        false
    }

    /// Write its configuration into the session's directory and say how to start it.
    fn prepare(&self, setup: &Setup) -> Result<Launch, Error>;

    /// `Some` once it is up and apps can connect; `None` while it is starting; an error when
    /// it came up unlike asked (a configuration it refused).
    fn ready(&self, dir: &Path) -> Result<Option<Ready>, Error>;
}

/// `--compositor`.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Deserialize,
    serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// gamescope where it can run (installed with its headless backend, and a GPU render
    /// node), else Lantern's own.
    #[default]
    Auto,
    Sway,
    Gamescope,
    /// Lantern's own (capture on commit, input-paced frames); Wayland apps only so far.
    Lantern,
}

impl Kind {
    pub fn choose(self) -> Result<Box<dyn Compositor>, Error> {
        match self {
            Self::Sway => Ok(Box::new(Sway)),
            Self::Lantern => Ok(Box::new(Lantern)),
            Self::Auto => match gamescope() {
                Ok(gamescope) => Ok(Box::new(gamescope)),
                Err(why) => {
                    tracing::debug!("not gamescope ({why}): Lantern's own compositor");
                    Ok(Box::new(Lantern))
                }
            },
            Self::Gamescope => Ok(Box::new(gamescope()?)),
        }
    }
}

/// gamescope, if it can run here: installed, with its headless backend, and a GPU.
fn gamescope() -> Result<Gamescope, Error> {
    let program = crate::process::find("gamescope", None).map_err(|_| Error::Missing {
        program: "gamescope".into(),
        hint: "install it (Debian: apt-get install gamescope; it needs a GPU with Vulkan) \
               or use --compositor sway"
            .into(),
    })?;
    if render_node().is_none() {
        return Err(Error::Config(
            "gamescope needs a GPU (Vulkan), and this host has no render node \
             (/dev/dri/renderD*): use --compositor sway"
                .into(),
        ));
    }
    let help = crate::process::output_within(&program, &["--help"], Duration::from_secs(5))?;
    Gamescope::new(program, &help)
}

/// The host's first DRM render node, if it has a GPU the compositor can render with.
pub fn render_node() -> Option<PathBuf> {
    let mut nodes: Vec<PathBuf> = std::fs::read_dir("/dev/dri")
        .ok()?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("renderD"))
        })
        .collect();
    nodes.sort();
    nodes.into_iter().next()
}

/// `format` as the flags the daemon's own subcommands take: `--width W --height H --fps F`.
pub fn mode_args(format: moq_pub::source::Format) -> Vec<String> {
    [
        ("--width", format.width.to_string()),
        ("--height", format.height.to_string()),
        ("--fps", format.fps.to_string()),
    ]
    .into_iter()
    .flat_map(|(flag, value)| [flag.to_string(), value])
    .collect()
}

/// The base environment of the session's processes: a PATH, the locale, the session's
/// private runtime directory as home and runtime dir, and its own config home (so nothing of
/// a user's configuration is read).
pub fn base_env(dir: &Path) -> Vec<(String, String)> {
    let mut env = vec![
        (
            "PATH".to_string(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
        ),
        ("HOME".into(), dir.display().to_string()),
        ("XDG_RUNTIME_DIR".into(), dir.display().to_string()),
        (
            "XDG_CONFIG_HOME".into(),
            dir.join("config").display().to_string(),
        ),
    ];
    for key in ["LANG", "LC_ALL", "TZ"] {
        if let Ok(value) = std::env::var(key) {
            env.push((key.into(), value));
        }
    }
    env
}
