//! Helpers shared by warren's integration tests.
#![allow(dead_code, reason = "each test crate uses a different subset")]

use std::process::Command;

/// The warren binary under test.
pub fn warren() -> Command {
    Command::new(env!("CARGO_BIN_EXE_warren"))
}

/// Bytes as text, for messages and comparisons.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Writes an executable shell script (`#!/bin/sh` + `body`), e.g. an
/// SSH_ASKPASS helper, and returns its path.
pub fn script(path: std::path::PathBuf, body: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(&path, format!("#!/bin/sh\n{body}")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod script");
    path
}
pub mod serve;
