//! Every input the fuzzers kept (the crashes they found, under `regressions/`, and the
//! minimised corpus of what they covered, under `corpus/`) replays through its target here,
//! in the ordinary test command: a fixed crash stays fixed.

use std::path::Path;

#[test]
fn every_kept_input_replays_without_a_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut replayed = 0;
    for (name, target) in lantern_fuzz::TARGETS {
        for folder in ["regressions", "corpus"] {
            let Ok(entries) = std::fs::read_dir(root.join(folder).join(name)) else {
                continue;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                let data = std::fs::read(&path).unwrap();
                let caught = std::panic::catch_unwind(|| target(&data));
                assert!(caught.is_ok(), "{name}: {} panics", path.display());
                replayed += 1;
            }
        }
    }
    assert!(
        replayed > 0,
        "no kept inputs found under {}",
        root.display()
    );
}
