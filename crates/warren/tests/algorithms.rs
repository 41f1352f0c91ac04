//! Algorithms negotiated with a real sshd restricted to one of them, and
//! the ones warren deliberately leaves out refused by name.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]

mod common;
use common::{text, warren};

use std::process::{Output, Stdio};

use warren_testkit::Sshd;

/// `warren ssh -v [extra] test echo ok` against `sshd`.
fn run(sshd: &Sshd, extra: &[&str]) -> Output {
    warren()
        .arg("ssh")
        .arg("-v")
        .args(extra)
        .arg("-F")
        .arg(sshd.client_config())
        .args(["test", "echo", "ok"])
        .stdin(Stdio::null())
        .output()
        .expect("run warren")
}

/// sshd allowing only `config`'s algorithms; warren must log in and say
/// it agreed on `expect` (its "kex: ..., cipher: ..., MAC: ..." line).
fn negotiates(config: &[&str], expect: &str) {
    let mut builder = Sshd::builder();
    for line in config {
        builder = builder.config(*line);
    }
    let sshd = builder.start();
    let out = run(&sshd, &[]);
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}\nsshd: {}", sshd.log());
    assert_eq!(text(&out.stdout), "ok\n");
    assert!(err.contains(expect), "no {expect:?} in:\n{err}");
}

/// Broke: sntrup761x25519-sha512@openssh.com (OpenSSH 9.0-9.8's first
/// choice) was not implemented: a server allowing only it was unreachable.
#[test]
fn sntrup761_is_negotiated_with_a_post_quantum_only_server() {
    negotiates(
        &["KexAlgorithms sntrup761x25519-sha512@openssh.com"],
        "kex: sntrup761x25519-sha512@openssh.com,",
    );
}

/// Broke: hmac-sha1 (old servers' only MAC) was not in warren's offer,
/// though it is in ssh's.
#[test]
fn hmac_sha1_is_negotiated() {
    negotiates(&["Ciphers aes128-ctr", "MACs hmac-sha1"], "MAC: hmac-sha1");
}

/// Broke: hmac-sha1-etm@openssh.com was not offered either.
#[test]
fn hmac_sha1_etm_is_negotiated() {
    negotiates(
        &["Ciphers aes128-ctr", "MACs hmac-sha1-etm@openssh.com"],
        "MAC: hmac-sha1-etm@openssh.com",
    );
}

/// Broke: asking for only 3des-cbc, ssh-dss or a UMAC said "no supported
/// algorithm" without saying warren leaves them out on purpose.
#[test]
fn three_des_dsa_and_umac_are_refused_as_not_supported() {
    let sshd = Sshd::start();
    for (args, expect) in [
        (["-c", "3des-cbc"], "3des-cbc is not supported"),
        (["-o", "HostKeyAlgorithms=ssh-dss"], "DSA is not supported"),
        (
            ["-o", "MACs=umac-64-etm@openssh.com"],
            "UMAC is not supported",
        ),
        (["-o", "MACs=umac-128@openssh.com"], "UMAC is not supported"),
    ] {
        let out = run(&sshd, &args);
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{args:?} connected");
        assert!(err.contains(expect), "{args:?}: no {expect:?} in:\n{err}");
    }
}

/// Broke: a server whose only host key is DSA ended the connection with
/// "no matching host key type" and nothing saying DSA is left out on
/// purpose.
#[test]
fn a_dsa_only_server_is_refused_as_not_supported() {
    let sshd = Sshd::builder()
        .host_keys(&["dsa"])
        .config("HostKeyAlgorithms ssh-dss")
        .start();
    let out = run(&sshd, &[]);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "connected:\n{err}");
    assert!(err.contains("no matching host key"), "{err}");
    assert!(err.contains("DSA is not supported"), "{err}");
}
