//! `lantern-netem floor`: the least frame delay a path allows, as a user runs it.

use std::process::Command;

fn floor(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lantern-netem"))
        .arg("floor")
        .args(args)
        .output()
        .unwrap()
}

/// A figure of the line, ms.
fn figure(line: &str, name: &str) -> u64 {
    let at = line.find(&format!("{name} ")).unwrap() + name.len() + 1;
    line[at..].split(' ').next().unwrap().parse().unwrap()
}

/// A dead second then a live one, from 50 ms in: the frames of the dead second wait for
/// its end (50 ms to 950 ms), those of the live one go at once.
#[test]
fn the_floor_of_a_dead_second_is_its_end() {
    let out = floor(&[
        "off/1s,12032kbit/1s",
        "--from",
        "0.05",
        "--seconds",
        "2",
        "--fps",
        "10",
        "--delay-ms",
        "0",
    ]);
    let line = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{line}");
    assert!(line.contains("over 20 frames"), "{line}");
    // The tenth-smallest is the dead second's last frame.
    assert!((50..=52).contains(&figure(&line, "p50")), "{line}");
    assert!((950..=952).contains(&figure(&line, "max")), "{line}");
}

#[test]
fn a_path_without_a_bottleneck_has_no_floor_and_says_so() {
    let out = floor(&["unlimited"]);
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no bottleneck"), "{err}");
}

/// Durations beyond what the tool can count, and more frames than it keeps, are one line each.
#[test]
fn a_floor_too_long_to_count_is_refused_in_one_line() {
    for args in [
        &["10mbit", "--seconds", "1e15"][..],
        &["10mbit", "--from", "1e13", "--seconds", "1e13"],
        &["10mbit", "--seconds", "1e6", "--fps", "1000"],
    ] {
        let out = floor(args);
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
}
