//! Sets `cfg(has_chromium)` when a Chromium is on the PATH (or named by
//! `CHROMIUM`), so that the test that renders `report.html` in a headless
//! browser runs where one is installed (CI installs Debian's `chromium`) and
//! reports itself ignored elsewhere.

use std::path::PathBuf;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(has_chromium)");
    println!("cargo::rerun-if-env-changed=PATH");
    println!("cargo::rerun-if-env-changed=CHROMIUM");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::var_os("CHROMIUM").map(PathBuf::from).filter(|p| p.is_file()).or_else(|| {
        std::env::split_paths(&path)
            .flat_map(|dir| ["chromium", "chromium-browser"].map(|n| dir.join(n)))
            .find(|p| p.is_file())
    });
    match found {
        Some(p) => {
            println!("cargo::rerun-if-changed={}", p.display());
            println!("cargo::rustc-env=SADDLE_TEST_CHROMIUM={}", p.display());
            println!("cargo::rustc-cfg=has_chromium");
        }
        // Looked for again when a browser appears where Debian puts it.
        None => println!("cargo::rerun-if-changed=/usr/bin/chromium"),
    }
}
