//! The fixture itself works: real `ssh` logs in with the generated config.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]

use std::process::Command;
use warren_testkit::Sshd;

#[test]
fn real_ssh_logs_in_through_fixture_config() {
    let sshd = Sshd::start();
    let out = Command::new("ssh")
        .arg("-F")
        .arg(sshd.client_config())
        .args(["test", "echo", "hello"])
        .output()
        .expect("run ssh");
    assert!(
        out.status.success(),
        "ssh failed: {}\nsshd log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        sshd.log()
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\n");
}
