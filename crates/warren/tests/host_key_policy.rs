//! RequiredRSASize and CASignatureAlgorithms for the server's host key,
//! with real ssh as the oracle.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]

mod common;
use common::{text, warren};

use std::process::{Command, Output, Stdio};

use warren_testkit::{Sshd, keygen};

fn run(program: &str, sshd: &Sshd, options: &[&str]) -> Output {
    let mut cmd = if program == "warren" {
        let mut c = warren();
        c.arg("ssh");
        c
    } else {
        Command::new(program)
    };
    for option in options {
        cmd.args(["-o", option]);
    }
    cmd.arg("-F")
        .arg(sshd.client_config())
        .args(["test", "echo", "ok"])
        .stdin(Stdio::null())
        .output()
        .expect("run client")
}

/// Both clients under `options`: whether each logged in.
fn both(sshd: &Sshd, options: &[&str]) -> [(bool, String); 2] {
    ["warren", "ssh"].map(|program| {
        let out = run(program, sshd, options);
        (out.status.success(), text(&out.stderr))
    })
}

/// Broke: RequiredRSASize was ignored, so an RSA host key shorter than
/// it was accepted; ssh refuses it ("Invalid key length").
#[test]
fn required_rsa_size_refuses_a_short_rsa_host_key_as_ssh_does() {
    let sshd = Sshd::builder().host_keys(&["rsa"]).start();
    for (ok, err) in both(&sshd, &[]) {
        assert!(ok, "default RequiredRSASize: {err}");
    }
    // The fixture's RSA host key has ssh-keygen's default 3072 bits.
    for (ok, err) in both(&sshd, &["RequiredRSASize=4096"]) {
        assert!(!ok, "a 3072-bit key was accepted: {err}");
        assert!(err.contains("Invalid key length"), "{err}");
    }
}

/// Broke: CASignatureAlgorithms was ignored, so a host certificate its CA
/// signed with SHA-1 RSA (ssh-rsa) was accepted; ssh refuses it by
/// default (then checks the plain key, unknown here) and accepts it once
/// the list allows ssh-rsa.
#[test]
fn ca_signature_algorithms_refuse_a_sha1_signed_host_certificate() {
    let ca_dir = tempfile::tempdir().unwrap();
    let ca = keygen(ca_dir.path(), "host_ca", "rsa", "");
    let sshd = Sshd::builder()
        .host_certificates(&ca, "127.0.0.1")
        .host_certificate_args(&["-t", "ssh-rsa"])
        .start();
    let ca_pub = std::fs::read_to_string(ca.with_extension("pub")).unwrap();
    let known = sshd.dir().join("ca_known_hosts");
    std::fs::write(&known, format!("@cert-authority * {ca_pub}")).unwrap();
    let known = format!("UserKnownHostsFile={}", known.display());
    for (ok, err) in both(&sshd, &[&known]) {
        assert!(!ok, "a SHA-1 CA signature was accepted: {err}");
    }
    let allow = "CASignatureAlgorithms=ssh-rsa,rsa-sha2-512,rsa-sha2-256";
    for (ok, err) in both(&sshd, &[&known, allow]) {
        assert!(ok, "{allow}: {err}");
    }
}
