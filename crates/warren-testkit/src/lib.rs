//! Dev-only fixtures for warren's integration tests: a real OpenSSH `sshd`
//! on 127.0.0.1 with its own keys, config and authorized_keys, killed on
//! `Drop` (the shape of hickory-dns's BIND fixture).
//!
//! Tests talk to real peers, never mocks. A fixture that cannot start (sshd
//! not installed, no free port) panics with the reason and the fix, so a test
//! that cannot run fails loudly instead of skipping.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "test fixture: failing loudly with the reason is the point"
)]

mod sshd;

pub use sshd::{Sshd, SshdBuilder, keygen, local_user, sign};
