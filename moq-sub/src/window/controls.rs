//! The player's keyboard and mouse, from SDL's events to the input format, and the window's
//! own chords.
//!
//! Keys go by scancode: SDL's scancodes are the USB HID keyboard usages, which is what the
//! input format carries, so a key means its place on the keyboard whatever the layout.
//!
//! The mouse works one of two ways, as in Moonlight:
//! - **direct** (the default): the pointer over the picture is sent as a place on the frame
//!   (through the letterbox); over the bars, nothing is sent;
//! - **captured** (`--relative-mouse`, or the chord Ctrl+Alt+Shift+M): a click in the window
//!   grabs the pointer (that click is not sent) and motion is sent as relative movement, for
//!   games that steer a camera with the mouse; Ctrl+Alt+Shift+Z lets the pointer go.
//!
//! Chords (Ctrl+Alt+Shift + a key) belong to the window and never reach the host:
//! X fullscreen, S the stats overlay, M the mouse mode, Z release the pointer, Q quit.

use lantern_proto::input::{Button, Event as Input, KEY_USAGES};
use sdl2::event::{Event, WindowEvent};
use sdl2::keyboard::{Mod, Scancode};
use sdl2::mouse::{MouseButton, MouseWheelDirection};

use super::layout::{Rect, to_frame};

/// What the window does for a chord, a click or a change of focus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Fullscreen,
    Overlay,
    /// Grab (true) or let go of (false) the pointer: SDL's relative mouse mode.
    Capture(bool),
    Quit,
    /// Focus went elsewhere: everything held is released at the host.
    ReleaseAll,
}

/// What one SDL event meant.
#[derive(Debug, Default, PartialEq)]
pub struct Step {
    pub events: Vec<Input>,
    pub action: Option<Action>,
}

pub struct Controls {
    relative: bool,
    captured: bool,
    /// Keys whose press was a chord: their release is not sent either.
    chord_keys: Vec<Scancode>,
}

const CHORD: [Mod; 3] = [
    Mod::LCTRLMOD.union(Mod::RCTRLMOD),
    Mod::LALTMOD.union(Mod::RALTMOD),
    Mod::LSHIFTMOD.union(Mod::RSHIFTMOD),
];

impl Controls {
    pub fn new(relative: bool) -> Self {
        Self {
            relative,
            captured: false,
            chord_keys: Vec::new(),
        }
    }

    #[cfg(test)]
    fn captured(&self) -> bool {
        self.captured
    }

    /// One SDL event; `picture` is where the video is in the window (window coordinates).
    pub fn event(&mut self, event: &Event, picture: Rect) -> Step {
        let mut step = Step::default();
        match *event {
            Event::KeyDown {
                scancode: Some(scancode),
                keymod,
                repeat,
                ..
            } => {
                if let Some(action) = self.chord(scancode, keymod) {
                    self.chord_keys.push(scancode);
                    step.action = Some(action);
                } else if !repeat {
                    // The host's compositor repeats held keys itself.
                    step.events.extend(key(scancode, true));
                }
            }
            Event::KeyUp {
                scancode: Some(scancode),
                ..
            } => {
                if let Some(at) = self.chord_keys.iter().position(|&k| k == scancode) {
                    self.chord_keys.swap_remove(at);
                } else {
                    step.events.extend(key(scancode, false));
                }
            }
            Event::MouseMotion {
                x, y, xrel, yrel, ..
            } => {
                if self.captured {
                    step.events.push(Input::PointerRel {
                        dx: clamp16(xrel),
                        dy: clamp16(yrel),
                    });
                } else if !self.relative
                    && let Some((x, y)) = to_frame(picture, x, y)
                {
                    step.events.push(Input::PointerAbs { x, y });
                }
            }
            Event::MouseButtonDown {
                mouse_btn, x, y, ..
            } => {
                if self.relative && !self.captured {
                    // This click grabs the pointer; the game does not see it.
                    if to_frame(picture, x, y).is_some() {
                        self.captured = true;
                        step.action = Some(Action::Capture(true));
                    }
                } else {
                    step.events
                        .extend(self.button(mouse_btn, true, picture, x, y));
                }
            }
            Event::MouseButtonUp {
                mouse_btn, x, y, ..
            } if !self.relative || self.captured => {
                step.events
                    .extend(self.button(mouse_btn, false, picture, x, y));
            }
            Event::MouseWheel {
                direction,
                precise_x,
                precise_y,
                ..
            } if !self.relative || self.captured => {
                // SDL's +y scrolls up (away from the player); the format's, like the
                // compositor's, scrolls down.
                let flip = if direction == MouseWheelDirection::Flipped {
                    -1.0
                } else {
                    1.0
                };
                let v120 = |v: f32| (v * 120.0 * flip).round().clamp(-32768.0, 32767.0) as i16;
                let (dx, dy) = (v120(precise_x), v120(-precise_y));
                if dx != 0 || dy != 0 {
                    step.events.push(Input::Wheel { dx, dy });
                }
            }
            Event::Window {
                win_event: WindowEvent::FocusLost,
                ..
            } => {
                self.chord_keys.clear();
                step.action = Some(Action::ReleaseAll);
                self.captured = false;
            }
            _ => {}
        }
        step
    }

    /// A chord, if `scancode` with `keymod` is one.
    fn chord(&mut self, scancode: Scancode, keymod: Mod) -> Option<Action> {
        if !CHORD.iter().all(|m| keymod.intersects(*m)) {
            return None;
        }
        Some(match scancode {
            Scancode::X => Action::Fullscreen,
            Scancode::S => Action::Overlay,
            Scancode::Q => Action::Quit,
            Scancode::Z => {
                self.captured = false;
                Action::Capture(false)
            }
            Scancode::M => {
                self.relative = !self.relative;
                self.captured = false;
                let mode = if self.relative { "captured" } else { "direct" };
                tracing::info!(mode, "mouse mode");
                Action::Capture(false)
            }
            _ => return None,
        })
    }

    /// A button, preceded in direct mode by the pointer's place (a click may come with no
    /// motion before it).
    fn button(&self, button: MouseButton, down: bool, picture: Rect, x: i32, y: i32) -> Vec<Input> {
        let button = match button {
            MouseButton::Left => Button::Left,
            MouseButton::Right => Button::Right,
            MouseButton::Middle => Button::Middle,
            MouseButton::X1 => Button::Back,
            MouseButton::X2 => Button::Forward,
            MouseButton::Unknown => return Vec::new(),
        };
        let mut events = Vec::with_capacity(2);
        if !self.relative {
            match to_frame(picture, x, y) {
                Some((x, y)) => events.push(Input::PointerAbs { x, y }),
                // A press over the bars is not the game's; a release always is.
                None if down => return events,
                None => {}
            }
        }
        events.push(Input::Button { button, down });
        events
    }
}

/// Merge what the format can merge without losing anything: neighbouring relative motions
/// add up, neighbouring absolute places keep the last, neighbouring wheel turns add up. Keys,
/// buttons and pads stay as they are, in order (a click between two motions keeps them apart).
pub fn coalesce(events: &mut Vec<Input>) {
    // `later` merges into `kept` (the event before it that stays) when this returns true.
    events.dedup_by(|later, kept| match (kept, &*later) {
        (Input::PointerRel { dx, dy }, Input::PointerRel { dx: x, dy: y })
        | (Input::Wheel { dx, dy }, Input::Wheel { dx: x, dy: y }) => add(dx, dy, *x, *y),
        (kept @ Input::PointerAbs { .. }, Input::PointerAbs { .. }) => {
            *kept = later.clone();
            true
        }
        _ => false,
    });
}

/// (`dx`, `dy`) += (`x`, `y`) if neither overflows.
fn add(dx: &mut i16, dy: &mut i16, x: i16, y: i16) -> bool {
    match (dx.checked_add(x), dy.checked_add(y)) {
        (Some(sx), Some(sy)) => {
            (*dx, *dy) = (sx, sy);
            true
        }
        _ => false,
    }
}

fn key(scancode: Scancode, down: bool) -> Option<Input> {
    let usage = scancode as i32;
    let usage = u16::try_from(usage)
        .ok()
        .filter(|u| KEY_USAGES.contains(u))?;
    Some(Input::Key { usage, down })
}

fn clamp16(v: i32) -> i16 {
    v.clamp(i16::MIN.into(), i16::MAX.into()) as i16
}

#[cfg(test)]
mod tests {
    use super::*;
    use sdl2::mouse::MouseState;

    const PICTURE: Rect = Rect {
        x: 180,
        y: 0,
        width: 640,
        height: 360,
    };

    fn key_event(scancode: Scancode, keymod: Mod, down: bool) -> Event {
        let (timestamp, window_id, keycode, scancode, repeat) = (0, 1, None, Some(scancode), false);
        if down {
            Event::KeyDown {
                timestamp,
                window_id,
                keycode,
                scancode,
                keymod,
                repeat,
            }
        } else {
            Event::KeyUp {
                timestamp,
                window_id,
                keycode,
                scancode,
                keymod,
                repeat,
            }
        }
    }

    fn motion(x: i32, y: i32, xrel: i32, yrel: i32) -> Event {
        Event::MouseMotion {
            timestamp: 0,
            window_id: 1,
            which: 0,
            mousestate: MouseState::from_sdl_state(0),
            x,
            y,
            xrel,
            yrel,
        }
    }

    fn click(x: i32, y: i32) -> Event {
        Event::MouseButtonDown {
            timestamp: 0,
            window_id: 1,
            which: 0,
            mouse_btn: MouseButton::Left,
            clicks: 1,
            x,
            y,
        }
    }

    #[test]
    fn keys_go_by_scancode_as_hid_usages() {
        let mut controls = Controls::new(false);
        let step = controls.event(&key_event(Scancode::A, Mod::NOMOD, true), PICTURE);
        assert_eq!(
            step.events,
            [Input::Key {
                usage: 0x04,
                down: true
            }]
        );
        let step = controls.event(&key_event(Scancode::LShift, Mod::NOMOD, false), PICTURE);
        assert_eq!(
            step.events,
            [Input::Key {
                usage: 0xE1,
                down: false
            }]
        );
        // Keys beyond the keyboard page's range (media keys) are not the format's.
        let step = controls.event(&key_event(Scancode::AudioPlay, Mod::NOMOD, true), PICTURE);
        assert!(step.events.is_empty());
    }

    #[test]
    fn chords_stay_in_the_window() {
        let mut controls = Controls::new(false);
        let all = Mod::LCTRLMOD | Mod::LALTMOD | Mod::RSHIFTMOD;
        let step = controls.event(&key_event(Scancode::S, all, true), PICTURE);
        assert_eq!(step.action, Some(Action::Overlay));
        assert!(step.events.is_empty());
        // Its release is not sent either, even when the modifiers went up first.
        let step = controls.event(&key_event(Scancode::S, Mod::NOMOD, false), PICTURE);
        assert!(step.events.is_empty() && step.action.is_none());
        // Two of the three modifiers are not a chord.
        let step = controls.event(
            &key_event(Scancode::S, Mod::LCTRLMOD | Mod::LALTMOD, true),
            PICTURE,
        );
        assert_eq!(
            step.events,
            [Input::Key {
                usage: 0x16,
                down: true
            }]
        );
    }

    #[test]
    fn direct_mode_maps_the_pointer_through_the_letterbox() {
        let mut controls = Controls::new(false);
        assert!(
            controls
                .event(&motion(10, 10, 1, 1), PICTURE)
                .events
                .is_empty()
        );
        let step = controls.event(&motion(500, 180, 1, 1), PICTURE);
        assert!(matches!(step.events[..], [Input::PointerAbs { .. }]));
        let step = controls.event(&click(500, 180), PICTURE);
        assert!(matches!(
            step.events[..],
            [
                Input::PointerAbs { .. },
                Input::Button {
                    button: Button::Left,
                    down: true
                }
            ]
        ));
        // A click on the bars is the player's, not the game's.
        assert!(controls.event(&click(10, 10), PICTURE).events.is_empty());
    }

    #[test]
    fn captured_mode_grabs_on_a_click_and_lets_go_on_the_chord() {
        let mut controls = Controls::new(true);
        assert!(
            controls
                .event(&motion(500, 180, 3, -2), PICTURE)
                .events
                .is_empty()
        );
        let step = controls.event(&click(500, 180), PICTURE);
        assert_eq!(step.action, Some(Action::Capture(true)));
        assert!(step.events.is_empty(), "the grabbing click is not sent");
        let step = controls.event(&motion(500, 180, 3, -2), PICTURE);
        assert_eq!(step.events, [Input::PointerRel { dx: 3, dy: -2 }]);
        let step = controls.event(&click(500, 180), PICTURE);
        assert_eq!(
            step.events,
            [Input::Button {
                button: Button::Left,
                down: true
            }]
        );
        let all = Mod::LCTRLMOD | Mod::LALTMOD | Mod::LSHIFTMOD;
        let step = controls.event(&key_event(Scancode::Z, all, true), PICTURE);
        assert_eq!(step.action, Some(Action::Capture(false)));
        assert!(!controls.captured());
    }

    #[test]
    fn losing_focus_releases_and_lets_go() {
        let mut controls = Controls::new(true);
        controls.event(&click(500, 180), PICTURE);
        let lost = Event::Window {
            timestamp: 0,
            window_id: 1,
            win_event: WindowEvent::FocusLost,
        };
        assert_eq!(
            controls.event(&lost, PICTURE).action,
            Some(Action::ReleaseAll)
        );
        assert!(!controls.captured());
    }

    #[test]
    fn motion_coalesces_around_what_cannot() {
        let rel = |dx, dy| Input::PointerRel { dx, dy };
        let click = Input::Button {
            button: Button::Left,
            down: true,
        };
        let mut events = vec![
            rel(1, 2),
            rel(3, -1),
            click.clone(),
            rel(5, 5),
            Input::PointerAbs { x: 1, y: 1 },
            Input::PointerAbs { x: 9, y: 9 },
            Input::Wheel { dx: 0, dy: 120 },
            Input::Wheel { dx: 0, dy: 120 },
            rel(i16::MAX, 0),
            rel(1, 0),
        ];
        coalesce(&mut events);
        assert_eq!(
            events,
            [
                rel(4, 1),
                click,
                rel(5, 5),
                Input::PointerAbs { x: 9, y: 9 },
                Input::Wheel { dx: 0, dy: 240 },
                rel(i16::MAX, 0),
                rel(1, 0),
            ]
        );
    }

    #[test]
    fn the_wheel_scrolls_the_format_s_way() {
        let mut controls = Controls::new(false);
        let wheel = Event::MouseWheel {
            timestamp: 0,
            window_id: 1,
            which: 0,
            x: 0,
            y: 1,
            direction: MouseWheelDirection::Normal,
            precise_x: 0.0,
            precise_y: 1.0,
            mouse_x: 500,
            mouse_y: 180,
        };
        assert_eq!(
            controls.event(&wheel, PICTURE).events,
            [Input::Wheel { dx: 0, dy: -120 }]
        );
    }
}
