//! A private X server (Xvfb) for the viewer window's tests, driven as a player would: xdotool
//! for keys, clicks and window sizes, and screenshots (ffmpeg's x11grab) of what is on it.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::{Proc, tool, wait_for};

/// An Xvfb of its own, 1920x1080, stopped when dropped.
pub struct Display {
    /// `:N`, for DISPLAY.
    pub name: String,
    proc: Option<Proc>,
}

/// A window's place on the screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl Display {
    pub fn start() -> Self {
        // Servers starting at the same moment can contend for a display number; the loser
        // exits without one. Then start another.
        for _ in 0..5 {
            if let Some(display) = Self::try_start() {
                return display;
            }
        }
        panic!("Xvfb did not start (5 tries)");
    }

    fn try_start() -> Option<Self> {
        // Xvfb picks a free display number and writes it to -displayfd once it listens.
        // -noreset: by default the server resets when its last client leaves (the probe
        // below, say), refusing connections meanwhile.
        let mut child = Command::new(tool("Xvfb"))
            .args(["-displayfd", "1", "-screen", "0", "1920x1080x24"])
            .args(["-nolisten", "tcp", "-noreset"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let proc = Proc(child);
        let (number, read) = mpsc::channel();
        std::thread::spawn(move || {
            let mut text = String::new();
            let mut byte = [0u8; 1];
            while stdout.read(&mut byte).unwrap_or(0) == 1 && byte[0] != b'\n' {
                text.push(byte[0] as char);
            }
            let _ = number.send(text);
        });
        let number = read
            .recv_timeout(Duration::from_secs(15))
            .expect("Xvfb did not start within 15 s");
        let number = number.trim();
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let display = Self {
            name: format!(":{number}"),
            proc: Some(proc),
        };
        // A client must get in before it counts as started.
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if display
                .try_xdotool(&["getdisplaygeometry"])
                .status
                .success()
            {
                return Some(display);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// The environment a client of this display needs.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![("DISPLAY".into(), self.name.clone())]
    }

    /// Run xdotool on this display, whatever it says.
    fn try_xdotool(&self, args: &[&str]) -> std::process::Output {
        Command::new(tool("xdotool"))
            .args(args)
            .env("DISPLAY", &self.name)
            .output()
            .unwrap()
    }

    /// Run xdotool on this display; its output.
    pub fn xdotool(&self, args: &[&str]) -> String {
        let out = self.try_xdotool(args);
        assert!(
            out.status.success(),
            "xdotool {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The id of the first window whose title matches `title`, once there is one; with the
    /// `owner` process, its output should it end first.
    pub fn window(&self, title: &str, mut owner: Option<&mut Proc>, deadline: Duration) -> String {
        let mut id = String::new();
        wait_for(&format!("a window titled {title:?}"), deadline, || {
            if let Some(owner) = owner.as_deref_mut()
                && let Ok(Some(status)) = owner.0.try_wait()
            {
                let mut err = String::new();
                if let Some(mut stderr) = owner.0.stderr.take() {
                    let _ = stderr.read_to_string(&mut err);
                }
                panic!("the window's program ended ({status}) before showing one:\n{err}");
            }
            let out = self.try_xdotool(&["search", "--onlyvisible", "--name", title]);
            id = String::from_utf8_lossy(&out.stdout)
                .lines()
                .next()
                .unwrap_or_default()
                .to_string();
            !id.is_empty()
        });
        id
    }

    pub fn geometry(&self, window: &str) -> Geometry {
        let out = self.xdotool(&["getwindowgeometry", "--shell", window]);
        let value = |key: &str| -> u32 {
            out.lines()
                .find_map(|l| l.strip_prefix(&format!("{key}=")))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no {key} in {out}"))
        };
        Geometry {
            x: value("X"),
            y: value("Y"),
            width: value("WIDTH"),
            height: value("HEIGHT"),
        }
    }

    /// Give `window` the keyboard (there is no window manager to do it).
    pub fn focus(&self, window: &str) {
        self.xdotool(&["windowfocus", "--sync", window]);
    }

    /// A screenshot of `area` as I420 (ffmpeg's x11grab, then its RGB → YUV conversion).
    pub fn grab(&self, area: Geometry) -> Vec<u8> {
        let size = format!("{}x{}", area.width, area.height);
        let input = format!("{}+{},{}", self.name, area.x, area.y);
        let out = Command::new(tool("ffmpeg"))
            .args(["-loglevel", "error", "-f", "x11grab", "-draw_mouse", "0"])
            .args(["-video_size", &size, "-i", &input, "-frames:v", "1"])
            .args(["-f", "rawvideo", "-pix_fmt", "yuv420p", "-"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "x11grab: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Stop the X server, as a display that goes away does.
    pub fn stop(&mut self) {
        self.proc.take();
    }
}

/// The stamp in an I420 screenshot `width` x `height`, if it reads.
pub fn stamp_of(i420: &[u8], width: u32, height: u32) -> Option<lantern_proto::stamp::Stamp> {
    let (w, h) = (width as usize, height as usize);
    let (y, rest) = i420.split_at(w * h);
    let (u, v) = rest.split_at(w.div_ceil(2) * h.div_ceil(2));
    let image = lantern_proto::picture::Image::i420(
        width,
        height,
        [(y, w), (u, w.div_ceil(2)), (v, w.div_ceil(2))],
    )
    .ok()?;
    lantern_proto::stamp::Stamp::read(&image)
}
