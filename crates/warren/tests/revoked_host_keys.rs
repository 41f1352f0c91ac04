//! RevokedHostKeys and host certificate checks against a real sshd, with
//! the real `ssh` run on the same config as the oracle for every outcome.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]

mod common;
use common::{text, warren};

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use warren_testkit::{Sshd, keygen};

/// The fixture's config with `extra` lines first (first value wins).
fn config_with(sshd: &Sshd, name: &str, extra: &str) -> PathBuf {
    let base = std::fs::read_to_string(sshd.client_config()).expect("config");
    let path = sshd.dir().join(format!("cfg-{name}"));
    std::fs::write(&path, format!("Host test\n{extra}\n{base}")).expect("write cfg");
    path
}

fn run(program: &str, cfg: &Path) -> Output {
    let mut cmd = if program == "warren" {
        let mut c = warren();
        c.arg("ssh");
        c
    } else {
        Command::new(program)
    };
    cmd.arg("-F")
        .arg(cfg)
        .args(["test", "echo connected"])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"))
}

/// Runs warren and ssh; both must exit 255 with `needle` in stderr, or both
/// connect when `needle` is `None`.
fn both(cfg: &Path, needle: Option<&str>) -> String {
    let mut warren_err = String::new();
    for program in ["warren", "ssh"] {
        let out = run(program, cfg);
        let err = text(&out.stderr);
        match needle {
            Some(needle) => {
                assert_eq!(out.status.code(), Some(255), "{program} connected: {err}");
                assert!(err.contains(needle), "{program}: no {needle:?} in: {err}");
                assert!(
                    err.contains("Host key verification failed"),
                    "{program}: {err}"
                );
            }
            None => {
                assert!(out.status.success(), "{program} refused: {err}");
                assert_eq!(text(&out.stdout), "connected\n", "{program}");
            }
        }
        if program == "warren" {
            warren_err = err;
        }
    }
    warren_err
}

fn ssh_keygen(dir: &Path, args: &[&str]) {
    let out = Command::new("ssh-keygen")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("ssh-keygen is required");
    assert!(
        out.status.success(),
        "ssh-keygen {args:?}: {}",
        text(&out.stderr)
    );
}

fn host_pub(sshd: &Sshd) -> PathBuf {
    sshd.dir().join("host_ed25519.pub")
}

// Before this change RevokedHostKeys was ignored: the revoked key connected.
#[test]
fn host_key_revoked_by_krl_is_refused_like_ssh() {
    let sshd = Sshd::start();
    let dir = sshd.dir();
    ssh_keygen(
        dir,
        &["-k", "-f", "krl", &host_pub(&sshd).display().to_string()],
    );
    let cfg = config_with(
        &sshd,
        "krl",
        &format!("  RevokedHostKeys {}", dir.join("krl").display()),
    );
    let err = both(&cfg, Some("revoked by file"));
    assert!(
        err.contains("Host key ED25519 SHA256:") && err.contains("/krl"),
        "{err}"
    );

    // Revoked by SHA256 fingerprint, in a KRL built from a spec.
    let line = std::fs::read_to_string(host_pub(&sshd)).expect("pub");
    std::fs::write(dir.join("spec"), format!("sha256: {line}")).expect("spec");
    ssh_keygen(dir, &["-k", "-f", "krl-hash", "spec"]);
    let cfg = config_with(
        &sshd,
        "krl-hash",
        &format!("  RevokedHostKeys {}", dir.join("krl-hash").display()),
    );
    both(&cfg, Some("revoked by file"));

    // A KRL that revokes another key: both connect.
    let other = keygen(dir, "other", "ed25519", "");
    ssh_keygen(
        dir,
        &[
            "-k",
            "-f",
            "krl-other",
            &other.with_extension("pub").display().to_string(),
        ],
    );
    let cfg = config_with(
        &sshd,
        "krl-other",
        &format!("  RevokedHostKeys {}", dir.join("krl-other").display()),
    );
    both(&cfg, None);
}

// Before this change RevokedHostKeys was ignored: the listed key connected.
#[test]
fn host_key_in_revoked_key_list_is_refused_like_ssh() {
    let sshd = Sshd::start();
    let dir = sshd.dir();
    let other = keygen(dir, "other", "ed25519", "");
    let other_line = std::fs::read_to_string(other.with_extension("pub")).expect("pub");
    let host_line = std::fs::read_to_string(host_pub(&sshd)).expect("pub");
    let list = dir.join("revoked.txt");
    std::fs::write(
        &list,
        format!("# retired keys\n\n{other_line}  {host_line}"),
    )
    .expect("write");
    let cfg = config_with(
        &sshd,
        "list",
        &format!("  RevokedHostKeys {}", list.display()),
    );
    both(&cfg, Some("revoked by file"));

    std::fs::write(&list, format!("# retired keys\n{other_line}")).expect("write");
    both(&cfg, None);
}

// Before this change RevokedHostKeys was ignored: a file that could not be
// read or parsed did not stop the connection, while ssh refuses.
#[test]
fn missing_or_damaged_revoked_file_refuses_like_ssh() {
    let sshd = Sshd::start();
    let dir = sshd.dir();
    let missing = dir.join("no-such-file");
    let cfg = config_with(
        &sshd,
        "missing",
        &format!("  RevokedHostKeys {}", missing.display()),
    );
    let err = both(&cfg, Some("Error checking host key"));
    assert!(err.contains("No such file or directory"), "{err}");

    // A KRL cut short, and a key list with a line that is not a key.
    let other = keygen(dir, "other", "ed25519", "");
    ssh_keygen(
        dir,
        &[
            "-k",
            "-f",
            "krl",
            &other.with_extension("pub").display().to_string(),
        ],
    );
    let mut krl = std::fs::read(dir.join("krl")).expect("krl");
    krl.truncate(krl.len() - 3);
    std::fs::write(dir.join("krl-cut"), krl).expect("write");
    let cfg = config_with(
        &sshd,
        "cut",
        &format!("  RevokedHostKeys {}", dir.join("krl-cut").display()),
    );
    both(&cfg, Some("Error checking host key"));
    std::fs::write(dir.join("list-bad"), "not a key\n").expect("write");
    let cfg = config_with(
        &sshd,
        "bad",
        &format!("  RevokedHostKeys {}", dir.join("list-bad").display()),
    );
    both(&cfg, Some("Error checking host key"));
}

fn certified_sshd(cert_args: &[&str]) -> (tempfile::TempDir, PathBuf, Sshd) {
    let ca_dir = tempfile::tempdir().expect("tmp");
    let ca = keygen(ca_dir.path(), "host_ca", "ed25519", "");
    let sshd = Sshd::builder()
        .host_certificates(&ca, "127.0.0.1")
        .host_certificate_args(cert_args)
        .start();
    let ca_line = std::fs::read_to_string(ca.with_extension("pub")).expect("ca pub");
    // Only the CA is known: no plain host key at all.
    std::fs::write(sshd.known_hosts(), format!("@cert-authority * {ca_line}")).expect("write");
    (ca_dir, ca, sshd)
}

// Before this change RevokedHostKeys was ignored: a certificate whose CA,
// or whose key ID, the KRL revokes connected.
#[test]
fn host_certificate_revoked_by_ca_or_key_id_is_refused_like_ssh() {
    let (ca_dir, ca, sshd) = certified_sshd(&[]);
    let dir = sshd.dir();
    let plain = config_with(&sshd, "plain", "");
    both(&plain, None);

    ssh_keygen(
        dir,
        &[
            "-k",
            "-f",
            "krl-ca",
            &ca.with_extension("pub").display().to_string(),
        ],
    );
    let cfg = config_with(
        &sshd,
        "ca",
        &format!("  RevokedHostKeys {}", dir.join("krl-ca").display()),
    );
    let err = both(&cfg, Some("revoked by file"));
    assert!(err.contains("Host key ED25519-CERT SHA256:"), "{err}");

    // The fixture's certificates carry key ID "warren-test".
    std::fs::write(dir.join("spec"), "id: warren-test\n").expect("spec");
    let ca_pub = ca.with_extension("pub").display().to_string();
    ssh_keygen(dir, &["-k", "-f", "krl-id", "-s", &ca_pub, "spec"]);
    let cfg = config_with(
        &sshd,
        "id",
        &format!("  RevokedHostKeys {}", dir.join("krl-id").display()),
    );
    both(&cfg, Some("revoked by file"));
    drop(ca_dir);
}

// Before this change a host certificate with a critical option was
// accepted; ssh refuses it ("Certificate contains unsupported critical
// options"), then checks the plain key, which is unknown here.
#[test]
fn host_certificate_with_critical_option_is_refused_like_ssh() {
    let (_ca_dir, _ca, sshd) = certified_sshd(&["-O", "force-command=/bin/true"]);
    let cfg = config_with(&sshd, "critical", "");
    let err = both(
        &cfg,
        Some("Certificate contains unsupported critical options"),
    );
    assert!(!err.contains("connected"), "{err}");
}
