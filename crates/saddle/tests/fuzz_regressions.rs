//! Every saved fuzz input through its target, on stable: the seeds in
//! `fuzz/seeds/TARGET/` and the inputs that once crashed (or were made by hand
//! from the bug reports) in `fuzz/regressions/TARGET/`. A target may return
//! any error; it must not panic, abort or hang.

#[path = "../../../fuzz/targets.rs"]
mod targets;

use std::path::Path;

#[test]
fn every_saved_input_is_read_without_a_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut ran = 0;
    for (name, target) in targets::TARGETS {
        for kind in ["seeds", "regressions"] {
            let dir = root.join(kind).join(name);
            let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
            files.sort();
            assert!(!files.is_empty() || kind == "regressions", "{} holds no input", dir.display());
            for f in files {
                println!("{name}: {}", f.display());
                target(&std::fs::read(&f).unwrap());
                ran += 1;
            }
        }
    }
    assert!(ran >= 40, "only {ran} saved inputs");
}
