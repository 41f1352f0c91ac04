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

/// A port that was free a moment ago on 127.0.0.1 (for a client that must
/// be told where to listen).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind 127.0.0.1:0")
        .local_addr()
        .expect("local_addr")
        .port()
}

/// Retries until `addr` accepts (a tunnel comes up) or 10 s pass.
pub fn connect_when_up(addr: &str) -> std::net::TcpStream {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match std::net::TcpStream::connect(addr) {
            Ok(s) => return s,
            Err(e) if std::time::Instant::now() > deadline => panic!("{addr} never came up: {e}"),
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    }
}

/// `len` bytes of a repeating pattern (shifted by `seed`), so a transfer
/// that drops, repeats or reorders bytes is caught.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}
