//! Input scripts (`moq-sub --input-script FILE`): timed input for automation and tests.
//!
//! One step per line, `MS ACTION ARGS…`, MS being milliseconds from the script's start
//! (non-decreasing); `#` starts a comment. Actions:
//!
//! ```text
//! 0     key KeyA down        a key by KeyboardEvent.code, down or up
//! 10    tap Enter            down and up
//! 20    text Hello, world\n  the rest of the line (\n, \t and \\ escapes)
//! 30    move 0.5 0.25        absolute pointer, 0..1 across the video frame
//! 40    rel 10 -5            relative motion in video pixels
//! 50    button left down     left, right, middle, back, forward
//! 60    click left           down and up
//! 70    wheel 0 120          120ths of a notch, x then y (+ is right and down)
//! 80    pad 0 buttons=0x1 sticks=0,0,0,0 triggers=0,0   a pad's whole state
//! 90    pad 0 off            the pad is gone
//! 100   touch 0 down 0.5 0.5 down, move, up or cancel
//! ```

use super::{Button, Event, GAMEPAD_BUTTONS, Gamepad, MAX_GAMEPADS, MAX_TOUCHES, TouchPhase, keys};
use crate::Error;

/// Events to send at a time from the script's start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub at_ms: u64,
    pub events: Vec<Event>,
}

/// Read a whole script; an error names the line and what is wrong with it.
pub fn parse(text: &str) -> Result<Vec<Step>, Error> {
    let mut steps: Vec<Step> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let at = |why: String| Error::Input(format!("line {}: {why}", i + 1));
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (time, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let at_ms: u64 = time
            .parse()
            .map_err(|_| at(format!("{time:?} is not a time in milliseconds")))?;
        if steps.last().is_some_and(|last| last.at_ms > at_ms) {
            return Err(at(format!("{at_ms} ms is earlier than the line before")));
        }
        let events = action(rest.trim_start()).map_err(at)?;
        steps.push(Step { at_ms, events });
    }
    Ok(steps)
}

fn action(line: &str) -> Result<Vec<Event>, String> {
    let (verb, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    if verb == "text" {
        return text(rest.strip_prefix(' ').unwrap_or(rest)).map(|t| vec![Event::Text(t)]);
    }
    let args: Vec<&str> = rest.split_whitespace().collect();
    let want = |n: usize| {
        if args.len() == n {
            Ok(())
        } else {
            Err(format!("{verb} takes {n} argument(s), not {}", args.len()))
        }
    };
    Ok(match verb {
        "key" => {
            want(2)?;
            vec![Event::Key {
                usage: key(args[0])?,
                down: down(args[1])?,
            }]
        }
        "tap" => {
            want(1)?;
            let usage = key(args[0])?;
            vec![
                Event::Key { usage, down: true },
                Event::Key { usage, down: false },
            ]
        }
        "move" => {
            want(2)?;
            vec![Event::PointerAbs {
                x: unit(args[0])?,
                y: unit(args[1])?,
            }]
        }
        "rel" => {
            want(2)?;
            vec![Event::PointerRel {
                dx: number(args[0])?,
                dy: number(args[1])?,
            }]
        }
        "button" => {
            want(2)?;
            vec![Event::Button {
                button: button(args[0])?,
                down: down(args[1])?,
            }]
        }
        "click" => {
            want(1)?;
            let button = button(args[0])?;
            vec![
                Event::Button { button, down: true },
                Event::Button {
                    button,
                    down: false,
                },
            ]
        }
        "wheel" => {
            want(2)?;
            vec![Event::Wheel {
                dx: number(args[0])?,
                dy: number(args[1])?,
            }]
        }
        "pad" => vec![Event::Gamepad(pad(&args)?)],
        "touch" => {
            want(4)?;
            let id: u8 = number(args[0])?;
            if id >= MAX_TOUCHES {
                return Err(format!("touch point {id}: 0 to {}", MAX_TOUCHES - 1));
            }
            let phase = match args[1] {
                "down" => TouchPhase::Down,
                "move" => TouchPhase::Move,
                "up" => TouchPhase::Up,
                "cancel" => TouchPhase::Cancel,
                other => return Err(format!("touch phase {other:?}: down, move, up or cancel")),
            };
            vec![Event::Touch {
                id,
                phase,
                x: unit(args[2])?,
                y: unit(args[3])?,
            }]
        }
        other => {
            return Err(format!(
                "unknown action {other:?} (key, tap, text, move, rel, button, click, wheel, pad, touch)"
            ));
        }
    })
}

fn key(code: &str) -> Result<u16, String> {
    keys::usage_of_code(code)
        .ok_or_else(|| format!("{code:?} is not a KeyboardEvent.code Lantern knows (e.g. KeyA)"))
}

fn down(word: &str) -> Result<bool, String> {
    match word {
        "down" => Ok(true),
        "up" => Ok(false),
        other => Err(format!("{other:?}: down or up")),
    }
}

fn button(name: &str) -> Result<Button, String> {
    Ok(match name {
        "left" => Button::Left,
        "right" => Button::Right,
        "middle" => Button::Middle,
        "back" => Button::Back,
        "forward" => Button::Forward,
        other => {
            return Err(format!(
                "button {other:?}: left, right, middle, back or forward"
            ));
        }
    })
}

fn number<T: std::str::FromStr>(word: &str) -> Result<T, String> {
    word.parse()
        .map_err(|_| format!("{word:?} is not a number in range"))
}

/// 0..1 across the frame, as the wire's 0..=65535.
fn unit(word: &str) -> Result<u16, String> {
    let value: f64 = number(word)?;
    if !(0.0..=1.0).contains(&value) {
        return Err(format!("{word}: a position is 0 to 1"));
    }
    Ok((value * 65535.0).round() as u16)
}

fn text(raw: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        out.push(match (c, c == '\\') {
            (_, false) => c,
            (_, true) => match chars.next() {
                Some('n') => '\n',
                Some('t') => '\t',
                Some('\\') => '\\',
                other => return Err(format!("unknown escape \\{}", other.unwrap_or(' '))),
            },
        });
    }
    if out.is_empty() {
        return Err("text needs something to type".into());
    }
    Ok(out)
}

fn pad(args: &[&str]) -> Result<Gamepad, String> {
    let (&index, rest) = args.split_first().ok_or("pad needs an index")?;
    let index: u8 = number(index)?;
    if index >= MAX_GAMEPADS {
        return Err(format!("pad {index}: 0 to {}", MAX_GAMEPADS - 1));
    }
    let mut pad = Gamepad {
        index,
        connected: true,
        ..Gamepad::default()
    };
    if rest == ["off"] {
        pad.connected = false;
        return Ok(pad);
    }
    for arg in rest {
        let (name, value) = arg
            .split_once('=')
            .ok_or_else(|| format!("{arg:?}: buttons=, sticks= or triggers="))?;
        let list = |n: usize| -> Result<Vec<&str>, String> {
            let parts: Vec<&str> = value.split(',').collect();
            if parts.len() == n {
                Ok(parts)
            } else {
                Err(format!("{name} takes {n} comma-separated values"))
            }
        };
        match name {
            "buttons" => {
                let hex = value.trim_start_matches("0x");
                pad.buttons = u32::from_str_radix(hex, 16)
                    .ok()
                    .filter(|b| b & !GAMEPAD_BUTTONS == 0)
                    .ok_or_else(|| {
                        format!(
                            "buttons={value}: a hexadecimal mask of bits 0 to 16 (at most 0x1ffff)"
                        )
                    })?;
            }
            "sticks" => {
                for (slot, v) in pad.sticks.iter_mut().zip(list(4)?) {
                    *slot = number(v)?;
                }
            }
            "triggers" => {
                for (slot, v) in pad.triggers.iter_mut().zip(list(2)?) {
                    *slot = number(v)?;
                }
            }
            other => return Err(format!("{other:?}: buttons=, sticks= or triggers=")),
        }
    }
    Ok(pad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::Message;

    #[test]
    fn every_action_reads() {
        let steps = parse(
            "# a comment\n\
             0 key KeyA down\n\
             0 key KeyA up\n\
             5 tap Enter\n\
             10 text Hi, you\\n\n\
             20 move 0.5 1\n\
             20 rel -3 4\n\
             30 click left\n\
             30 button right down\n\
             40 wheel 0 -120\n\
             50 pad 2 buttons=0x11 sticks=1,-2,3,-4 triggers=0,65535\n\
             60 pad 2 off\n\
             70 touch 0 down 0.25 0.75\n",
        )
        .unwrap();
        assert_eq!(steps.len(), 12);
        assert_eq!(
            steps[0].events,
            [Event::Key {
                usage: 0x04,
                down: true
            }]
        );
        assert_eq!(steps[3].events, [Event::Text("Hi, you\n".into())]);
        assert_eq!(steps[4].events, [Event::PointerAbs { x: 32768, y: 65535 }]);
        let Event::Gamepad(pad) = steps[9].events[0] else {
            panic!("a pad")
        };
        assert_eq!(
            (pad.index, pad.buttons, pad.sticks, pad.triggers),
            (2, 0x11, [1, -2, 3, -4], [0, 65535])
        );
        assert!(matches!(
            steps[10].events[0],
            Event::Gamepad(Gamepad {
                connected: false,
                ..
            })
        ));
        // Every step is something the format carries.
        for step in steps {
            let message = Message {
                events: step.events,
                ..Message::default()
            };
            assert!(message.encode().is_ok());
        }
    }

    #[test]
    fn mistakes_name_their_line() {
        for (script, line) in [
            ("0 key KeyQQ down", "line 1"),
            ("0 tap KeyA\nx tap KeyA", "line 2"),
            ("10 tap KeyA\n5 tap KeyA", "line 2"),
            ("0 move 1.5 0", "line 1"),
            ("0 wheel 0 99999", "line 1"),
            ("0 fly away", "line 1"),
            ("0 text", "line 1"),
            ("0 text bad \\q", "line 1"),
            ("0 pad 16", "line 1"),
            ("0 pad 0 sticks=1,2", "line 1"),
            ("0 pad 2 buttons=0x115535", "line 1"),
            ("0 touch 10 down 0 0", "line 1"),
            ("0 button left sideways", "line 1"),
        ] {
            let err = parse(script).unwrap_err().to_string();
            assert!(err.contains(line), "{script:?}: {err}");
        }
    }
}
