//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workplace's shared data (`../shared` beside the repository).
pub fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared")
}

pub fn in_ci() -> bool {
    std::env::var("CI").map(|v| v == "true" || v == "1").unwrap_or(false)
}

/// True when `tool` runs. Under CI a missing tool fails the test; elsewhere it says loudly that
/// the test is skipped, so a green run never hides an untested path.
pub fn have_tool(tool: &str, test: &str) -> bool {
    let found = Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().map(|o| o.status.success()).unwrap_or(false);
    if !found {
        if in_ci() {
            panic!("{test}: `{tool}` is required under CI=true but is not installed");
        }
        eprintln!("SKIPPED {test}: `{tool}` is not installed");
    }
    found
}

/// Same as [`have_tool`] for a file the test needs, such as the shared data.
pub fn have_file(path: &Path, test: &str) -> bool {
    if !path.exists() {
        if in_ci() {
            panic!("{test}: {} is required under CI=true but is missing", path.display());
        }
        eprintln!("SKIPPED {test}: {} is missing", path.display());
        return false;
    }
    true
}

/// A store path for test graphs: a fixed-width fake hash, then the name.
pub fn sp(name: &str) -> String {
    let h: String = name.bytes().cycle().take(32).map(|b| (b'a' + b % 26) as char).collect();
    format!("/nix/store/{h}-{name}")
}
