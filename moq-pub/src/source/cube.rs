//! `--source testsrc`: a rotating, lit 3D cube rendered in software straight into I420, paced
//! at the configured rate and stamped. It is deterministic in the frame number, so a run can
//! be reproduced, and it moves everywhere on screen, so the encoder does real work.

use std::f64::consts::TAU;

use lantern_proto::picture::I420Mut;
use lantern_proto::timing::Pacer;
use lantern_proto::{sync, yuv};

use super::{Canvas, Captured, Format, Source, SyncEpoch};
use crate::Error;

/// Seconds for one full turn about the vertical axis.
pub const ROTATION_SECS: f64 = 4.0;

type Vec3 = [f64; 3];

const CORNERS: [Vec3; 8] = [
    [-1., -1., -1.],
    [1., -1., -1.],
    [1., 1., -1.],
    [-1., 1., -1.],
    [-1., -1., 1.],
    [1., -1., 1.],
    [1., 1., 1.],
    [-1., 1., 1.],
];

/// Each face: its corners in order, its outward normal and its colour (RGB, 0..1).
const FACES: [([usize; 4], Vec3, Vec3); 6] = [
    ([0, 1, 2, 3], [0., 0., -1.], [0.95, 0.30, 0.25]),
    ([5, 4, 7, 6], [0., 0., 1.], [0.25, 0.75, 0.35]),
    ([4, 0, 3, 7], [-1., 0., 0.], [0.25, 0.45, 0.95]),
    ([1, 5, 6, 2], [1., 0., 0.], [0.95, 0.80, 0.20]),
    ([3, 2, 6, 7], [0., 1., 0.], [0.85, 0.35, 0.85]),
    ([4, 5, 1, 0], [0., -1., 0.], [0.20, 0.80, 0.85]),
];

pub struct Cube {
    format: Format,
    background: yuv::Frame,
    pacer: Pacer,
    /// The clock the pacer runs on: its own, or the A/V sync schedule's.
    epoch: SyncEpoch,
    frames: u32,
    /// Whether the corner flashes on the beep-and-flash schedule.
    flash: bool,
}

impl Cube {
    pub fn new(format: Format) -> Result<Self, Error> {
        if !(1.0..=240.0).contains(&format.fps) {
            return Err(Error::Config(format!(
                "--fps {} is out of range (1 to 240)",
                format.fps
            )));
        }
        let size = |source| Error::Format {
            what: "test source size".into(),
            source,
        };
        let mut background = yuv::Frame::new(format.width, format.height).map_err(size)?;
        lantern_proto::stamp::Layout::new(format.width, format.height).map_err(size)?;
        paint_background(&mut background.view_mut());
        Ok(Self {
            format,
            background,
            pacer: Pacer::new(format.fps),
            epoch: SyncEpoch::now(),
            frames: 0,
            flash: false,
        })
    }

    /// Flash the corner once per rotation, on the schedule that `--audio testsrc` beeps on
    /// (see [`lantern_proto::sync`]), with frames paced on a grid from `epoch`, so that a
    /// flash is captured exactly when its beep starts.
    pub fn with_flash(mut self, epoch: SyncEpoch) -> Self {
        self.flash = true;
        self.pacer = Pacer::on_grid(self.format.fps, 0);
        self.epoch = epoch;
        self
    }

    /// Draw frame number `n` of the animation into `frame` (of the cube's size).
    pub fn render(&self, n: u32, frame: &mut I420Mut) -> Result<(), Error> {
        frame
            .copy_from(&self.background.image())
            .map_err(|source| Error::Format {
                what: "the cube's frame".into(),
                source,
            })?;
        let t = n as f64 / self.format.fps;
        let (yaw, pitch) = (
            t * TAU / ROTATION_SECS,
            0.5 + t * TAU / (ROTATION_SECS * 2.7),
        );
        let rotate = |v: Vec3| {
            let (x, z) = (
                v[0] * yaw.cos() + v[2] * yaw.sin(),
                -v[0] * yaw.sin() + v[2] * yaw.cos(),
            );
            [
                x,
                v[1] * pitch.cos() - z * pitch.sin(),
                v[1] * pitch.sin() + z * pitch.cos(),
            ]
        };
        let (w, h) = (self.format.width as f64, self.format.height as f64);
        let focal = h.min(w) * 0.9;
        let project = |v: Vec3| {
            let z = v[2] + 4.0;
            (w / 2.0 + focal * v[0] / z, h / 2.0 - focal * v[1] / z)
        };
        let corners = CORNERS.map(|c| project(rotate(c)));
        let light = normalize([-0.4, 0.6, -1.0]);
        for (indices, normal, rgb) in FACES {
            let normal = rotate(normal);
            if normal[2] >= 0.0 {
                continue; // facing away from the camera, which looks along +z
            }
            let lit = 0.25 + 0.75 * dot(normal, light).max(0.0);
            let colour = to_yuv(rgb.map(|c| c * lit));
            let [a, b, c, d] = indices.map(|i| corners[i]);
            fill_triangle(frame, [a, b, c], colour);
            fill_triangle(frame, [a, c, d], colour);
        }
        Ok(())
    }
}

impl Source for Cube {
    fn format(&self) -> Format {
        self.format
    }

    fn next(&mut self, canvas: &mut Canvas) -> Result<Option<Captured>, Error> {
        let slot = self.epoch.pace(&mut self.pacer);
        let capture_us = lantern_proto::clock::now_unix_us();
        let frame = canvas.i420();
        self.render(self.frames, frame)?;
        if self.flash && sync::pulse_on((slot as f64 * 1e6 / self.format.fps) as u64) {
            sync::paint_flash(frame);
        }
        self.frames = self.frames.wrapping_add(1);
        Ok(Some(Captured {
            capture_us,
            stamped: false,
        }))
    }
}

/// A dark blue vertical gradient.
fn paint_background(frame: &mut I420Mut) {
    let height = frame.height() as usize;
    let [(y, ys), (u, us), (v, vs)] = frame.planes_mut();
    for row in 0..height {
        let shade = 0.05 + 0.20 * row as f64 / height as f64;
        let [ly, lu, lv] = to_yuv([shade * 0.4, shade * 0.5, shade]);
        y[row * ys..][..ys].fill(ly);
        if row % 2 == 0 {
            u[row / 2 * us..][..us].fill(lu);
            v[row / 2 * vs..][..vs].fill(lv);
        }
    }
}

/// Fill a triangle in luma at full resolution and in chroma at half, testing pixel centres.
fn fill_triangle(frame: &mut I420Mut, tri: [(f64, f64); 3], [cy, cu, cv]: [u8; 3]) {
    let (width, height) = (frame.width() as usize, frame.height() as usize);
    let [(y, ys), (u, us), (v, vs)] = frame.planes_mut();
    for_each_inside(tri, 1.0, width, height, |x, row| y[row * ys + x] = cy);
    for_each_inside(tri, 2.0, width / 2, height / 2, |x, row| {
        u[row * us + x] = cu;
        v[row * vs + x] = cv;
    });
}

/// Call `put` for every pixel of a `width`x`height` grid (each `scale` frame pixels wide)
/// whose centre lies inside the triangle.
fn for_each_inside(
    [a, b, c]: [(f64, f64); 3],
    scale: f64,
    width: usize,
    height: usize,
    mut put: impl FnMut(usize, usize),
) {
    let edge = |p: (f64, f64), q: (f64, f64), x: f64, y: f64| {
        (q.0 - p.0) * (y - p.1) - (q.1 - p.1) * (x - p.0)
    };
    let area = edge(a, b, c.0, c.1);
    if area.abs() < 1e-9 {
        return;
    }
    let clamp = |v: f64, max: usize| (v / scale).clamp(0.0, max as f64) as usize;
    let (x0, x1) = (
        clamp(a.0.min(b.0).min(c.0), width),
        clamp(a.0.max(b.0).max(c.0) + scale, width),
    );
    let (y0, y1) = (
        clamp(a.1.min(b.1).min(c.1), height),
        clamp(a.1.max(b.1).max(c.1) + scale, height),
    );
    for row in y0..y1 {
        let py = (row as f64 + 0.5) * scale;
        for x in x0..x1 {
            let px = (x as f64 + 0.5) * scale;
            let (e0, e1, e2) = (edge(b, c, px, py), edge(c, a, px, py), edge(a, b, px, py));
            let inside = if area > 0.0 {
                e0 >= 0.0 && e1 >= 0.0 && e2 >= 0.0
            } else {
                e0 <= 0.0 && e1 <= 0.0 && e2 <= 0.0
            };
            if inside {
                put(x, row);
            }
        }
    }
}

/// BT.601 limited-range YUV from RGB in 0..1.
fn to_yuv([r, g, b]: Vec3) -> [u8; 3] {
    let y = 16.0 + 65.481 * r + 128.553 * g + 24.966 * b;
    let u = 128.0 - 37.797 * r - 74.203 * g + 112.0 * b;
    let v = 128.0 + 112.0 * r - 93.786 * g - 18.214 * b;
    [y, u, v].map(|c| c.round().clamp(0.0, 255.0) as u8)
}

fn dot(a: Vec3, b: Vec3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn normalize(v: Vec3) -> Vec3 {
    let len = dot(v, v).sqrt();
    v.map(|c| c / len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cube() -> Cube {
        Cube::new(Format {
            width: 320,
            height: 240,
            fps: 30.0,
        })
        .unwrap()
    }

    #[test]
    fn the_cube_is_drawn_and_moves() {
        let cube = cube();
        let (mut a, mut b) = (cube.background.clone(), cube.background.clone());
        cube.render(0, &mut a.view_mut()).unwrap();
        cube.render(10, &mut b.view_mut()).unwrap();
        let changed = |f: &yuv::Frame| {
            f.data()
                .iter()
                .zip(cube.background.data())
                .filter(|(x, y)| x != y)
                .count()
        };
        // The cube covers a good part of the frame, and a different part a third of a second later.
        assert!(
            changed(&a) > 320 * 240 / 10,
            "cube too small: {}",
            changed(&a)
        );
        assert_ne!(a, b);
        // Rendering is deterministic in the frame number.
        let mut again = cube.background.clone();
        cube.render(10, &mut again.view_mut()).unwrap();
        assert_eq!(again, b);
    }

    /// Frames come drawn in order, each captured after the last. (When they come is the
    /// pacer's business: `lantern_proto::timing::Pacer`, tested on simulated time.)
    #[test]
    fn frames_come_in_order_each_captured_after_the_last() {
        let mut cube = Cube::new(Format {
            width: 320,
            height: 240,
            fps: 240.0,
        })
        .unwrap();
        let mut frame = yuv::Frame::new(320, 240).unwrap();
        let mut next = |frame: &mut yuv::Frame| {
            let mut canvas = Canvas::new(frame.view_mut());
            cube.next(&mut canvas).unwrap().unwrap()
        };
        let first = next(&mut frame);
        let mut expected = yuv::Frame::new(320, 240).unwrap();
        Cube::new(Format {
            width: 320,
            height: 240,
            fps: 240.0,
        })
        .unwrap()
        .render(0, &mut expected.view_mut())
        .unwrap();
        assert_eq!(frame, expected);
        let second = next(&mut frame);
        assert!(second.capture_us > first.capture_us && !second.stamped);
    }

    #[test]
    fn bad_formats_are_refused() {
        let bad = |width, height, fps| Cube::new(Format { width, height, fps }).is_err();
        assert!(bad(320, 240, 0.0));
        assert!(bad(321, 240, 30.0));
        assert!(bad(64, 64, 30.0));
        // A frame of another size is an error, not a panic.
        let mut small = yuv::Frame::new(160, 120).unwrap();
        assert!(cube().render(0, &mut small.view_mut()).is_err());
    }

    #[test]
    fn colours_map_to_video_range() {
        assert_eq!(to_yuv([0.0, 0.0, 0.0]), [16, 128, 128]);
        assert_eq!(to_yuv([1.0, 1.0, 1.0]), [235, 128, 128]);
    }
}
