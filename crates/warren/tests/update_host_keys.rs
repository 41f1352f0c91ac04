//! UpdateHostKeys against a real sshd with several host keys, real ssh
//! as the oracle for what the user's known_hosts becomes.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]

mod common;
use common::{text, warren};

use std::path::Path;
use std::process::{Command, Stdio};

use warren_testkit::{Sshd, keygen};

/// `program` logs in once with its own known_hosts `file`.
fn login(program: &str, sshd: &Sshd, file: &Path) {
    let mut cmd = if program == "warren" {
        let mut c = warren();
        c.arg("ssh");
        c
    } else {
        Command::new(program)
    };
    let out = cmd
        .arg("-v")
        .args(["-o", &format!("UserKnownHostsFile={}", file.display())])
        .args(["-o", "UpdateHostKeys=yes", "-o", "HashKnownHosts=no"])
        .arg("-F")
        .arg(sshd.client_config())
        .args(["test", "true"])
        .stdin(Stdio::null())
        .output()
        .expect("run client");
    assert!(
        out.status.success(),
        "{program}: {}\nsshd: {}",
        text(&out.stderr),
        sshd.log()
    );
}

/// Broke: the server's announcement (hostkeys-00@openssh.com) was
/// ignored, so a known_hosts holding one of the server's two keys stayed
/// as it was, and a key the server no longer has stayed too; ssh learns
/// the second key and drops the stale one.
#[test]
fn update_host_keys_learns_the_second_key_as_ssh_does() {
    let sshd = Sshd::builder().host_keys(&["ed25519", "ecdsa"]).start();
    let keys = sshd.host_public_keys();
    let ed25519 = keys.iter().find(|k| k.starts_with("ssh-ed25519")).unwrap();
    let ecdsa = keys.iter().find(|k| k.starts_with("ecdsa-")).unwrap();
    let field = |line: &str| {
        line.split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    };
    // A key recorded for the host that the server does not have.
    let scratch = tempfile::tempdir().unwrap();
    let stale = keygen(scratch.path(), "stale", "ed25519", "");
    let stale = std::fs::read_to_string(stale.with_extension("pub")).unwrap();
    let pattern = sshd.known_hosts_pattern();
    let start = format!(
        "# mine\n{pattern} {}\n{pattern} {}\n",
        field(ed25519),
        field(&stale)
    );
    let mut results = Vec::new();
    for program in ["warren", "ssh"] {
        let file = sshd.dir().join(format!("known_hosts.{program}"));
        std::fs::write(&file, &start).unwrap();
        login(program, &sshd, &file);
        results.push(std::fs::read_to_string(&file).unwrap());
    }
    let (warren_kh, ssh_kh) = (&results[0], &results[1]);
    assert!(
        ssh_kh.contains(&field(ecdsa)),
        "ssh did not learn the key:\n{ssh_kh}"
    );
    assert_eq!(warren_kh, ssh_kh, "warren's known_hosts differs from ssh's");
    assert!(!warren_kh.contains(&field(&stale)));
    assert!(warren_kh.starts_with("# mine\n"));
}

/// A key the server announces that is recorded under another name stops
/// the update, as in ssh: nothing is written. (A guard on the refusal
/// rules that came with the update, not a regression: old code wrote
/// nothing either.)
#[test]
fn update_host_keys_leaves_a_key_known_under_another_name() {
    let sshd = Sshd::builder().host_keys(&["ed25519", "ecdsa"]).start();
    let keys = sshd.host_public_keys();
    let ed25519 = keys.iter().find(|k| k.starts_with("ssh-ed25519")).unwrap();
    let ecdsa = keys.iter().find(|k| k.starts_with("ecdsa-")).unwrap();
    let field = |line: &str| {
        line.split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    };
    let pattern = sshd.known_hosts_pattern();
    let start = format!(
        "other.example {}\n{pattern} {}\n",
        field(ecdsa),
        field(ed25519)
    );
    for program in ["warren", "ssh"] {
        let file = sshd.dir().join(format!("known_hosts.{program}"));
        std::fs::write(&file, &start).unwrap();
        login(program, &sshd, &file);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), start, "{program}");
    }
}
