//! Helpers shared by the command-line tests.
#![allow(dead_code)] // each test binary uses its own share of them

use std::path::PathBuf;
use std::process::{Command, Output};

/// Runs the `saddle` binary with `args`.
pub fn saddle(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_saddle")).args(args).output().expect("the saddle binary runs")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A fresh, empty scratch folder for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("saddle-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Asserts a failure with one `error:` line that contains every `needle`.
#[track_caller]
pub fn assert_fails_with(o: &Output, needles: &[&str]) {
    assert!(!o.status.success(), "expected a failure, got success: {}", stdout(o));
    let err = stderr(o);
    assert!(!err.contains("panicked"), "panic instead of an error: {err}");
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}: {err}");
    }
}
