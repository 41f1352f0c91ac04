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
