//! Finds the system programs some tests need, so that those tests run where
//! the program is installed (CI installs them) and report themselves ignored
//! elsewhere: Chromium renders `report.html` (`cfg(has_chromium)`, or the
//! program named by `CHROMIUM`), Open MPI's `mpirun` launches data-parallel
//! runs (`cfg(has_mpirun)`, or `MPIRUN`).

use std::path::PathBuf;

fn main() {
    println!("cargo::rerun-if-env-changed=PATH");
    let path = std::env::var_os("PATH").unwrap_or_default();
    for (cfg, env, names, usual) in [
        ("has_chromium", "CHROMIUM", &["chromium", "chromium-browser"][..], "/usr/bin/chromium"),
        ("has_mpirun", "MPIRUN", &["mpirun"][..], "/usr/bin/mpirun"),
    ] {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        println!("cargo::rerun-if-env-changed={env}");
        let found = std::env::var_os(env).map(PathBuf::from).filter(|p| p.is_file()).or_else(|| {
            std::env::split_paths(&path).flat_map(|dir| names.iter().map(move |n| dir.join(n))).find(|p| p.is_file())
        });
        match found {
            Some(p) => {
                println!("cargo::rerun-if-changed={}", p.display());
                println!("cargo::rustc-env=SADDLE_TEST_{env}={}", p.display());
                println!("cargo::rustc-cfg={cfg}");
            }
            // Looked for again when the program appears where Debian puts it.
            None => println!("cargo::rerun-if-changed={usual}"),
        }
    }
}
