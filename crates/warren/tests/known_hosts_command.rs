//! KnownHostsCommand against a real sshd, with real ssh as the oracle: a
//! host known only through the command connects under
//! StrictHostKeyChecking yes, each lookup sees ssh's tokens, and a failing
//! command stops the connection.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]

mod common;
use common::{script, text, warren};

use std::path::Path;
use std::process::{Command, Output, Stdio};

use warren_testkit::Sshd;

/// `program` logging in to `test` with `command` as KnownHostsCommand and
/// no known_hosts file at all.
fn login(program: &str, sshd: &Sshd, command: &str) -> Output {
    let mut cmd = if program == "warren" {
        let mut c = warren();
        c.arg("ssh");
        c
    } else {
        Command::new(program)
    };
    cmd.args(["-o", "UserKnownHostsFile=/dev/null"])
        .args(["-o", &format!("KnownHostsCommand={command}")])
        .arg("-F")
        .arg(sshd.client_config())
        .args(["test", "echo in"])
        .stdin(Stdio::null())
        .output()
        .expect("run client")
}

/// A KnownHostsCommand that logs its arguments to `log` and prints the
/// server's known_hosts lines.
fn helper(dir: &Path, sshd: &Sshd, log: &Path, status: i32) -> String {
    let known = dir.join("lines");
    std::fs::write(&known, sshd.known_hosts_lines()).expect("lines");
    let path = script(
        dir.join("kh"),
        &format!(
            "echo \"$@\" >> '{}'\ncat '{}'\nexit {status}\n",
            log.display(),
            known.display()
        ),
    );
    format!("{} %I %H %t %f %K %h %p %r %n", path.display())
}

/// Broke: KnownHostsCommand never ran, so a host known only through it was
/// unknown and StrictHostKeyChecking yes refused it.
#[test]
fn known_hosts_command_makes_a_host_known_like_ssh() {
    let sshd = Sshd::start();
    let tmp = tempfile::tempdir().expect("tmp");
    let (ours_log, theirs_log) = (tmp.path().join("ours"), tmp.path().join("theirs"));

    let theirs = login("ssh", &sshd, &helper(tmp.path(), &sshd, &theirs_log, 0));
    assert!(
        theirs.status.success(),
        "ssh: {}\nsshd: {}",
        text(&theirs.stderr),
        sshd.log()
    );
    let ours = login("warren", &sshd, &helper(tmp.path(), &sshd, &ours_log, 0));
    assert!(
        ours.status.success(),
        "warren: {}\nsshd: {}",
        text(&ours.stderr),
        sshd.log()
    );
    assert_eq!(text(&ours.stdout), "in\n");

    // The lookups and their tokens: ORDER (no key yet), then HOSTNAME with
    // the key the server presented.
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let (ours, theirs) = (read(&ours_log), read(&theirs_log));
    assert!(theirs.contains("HOSTNAME "), "ssh's lookups: {theirs}");
    assert_eq!(ours, theirs, "KnownHostsCommand invocations differ");
}

/// A command that exits non-zero ends the connection, as in ssh (the host
/// would otherwise be known: the lines it printed are not used).
#[test]
fn failing_known_hosts_command_stops_the_connection() {
    let sshd = Sshd::start();
    let tmp = tempfile::tempdir().expect("tmp");
    let log = tmp.path().join("log");
    let command = helper(tmp.path(), &sshd, &log, 3);
    let theirs = login("ssh", &sshd, &command);
    let ours = login("warren", &sshd, &command);
    assert_eq!(
        theirs.status.code(),
        Some(255),
        "ssh: {}",
        text(&theirs.stderr)
    );
    assert_eq!(
        ours.status.code(),
        Some(255),
        "warren: {}",
        text(&ours.stderr)
    );
    assert!(
        text(&theirs.stderr).contains("KnownHostsCommand failed"),
        "ssh: {}",
        text(&theirs.stderr)
    );
    let err = text(&ours.stderr);
    assert!(
        err.contains("KnownHostsCommand failed") && err.contains("failed, status 3"),
        "warren: {err}"
    );
}

/// A command that never stops writing is cut off at the output bound and
/// the connection refused, instead of being read forever (ssh would hang
/// here, so there is no oracle). Broke: the command never ran and the
/// host was refused as unknown, without naming the command.
#[test]
fn endless_known_hosts_command_is_bounded() {
    let sshd = Sshd::start();
    let ours = login("warren", &sshd, "/usr/bin/yes %h");
    let err = text(&ours.stderr);
    assert_eq!(ours.status.code(), Some(255), "warren: {err}");
    assert!(
        err.contains("wrote more than") && err.contains("KnownHostsCommand failed"),
        "warren: {err}"
    );
}
