//! `warren ssh -Q`: each list, checked against OpenSSH's own `ssh -Q` and
//! by negotiating every listed cipher, MAC and key exchange with sshd.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]

mod common;
use common::{text, warren};

use std::process::Command;

use warren_testkit::Sshd;

/// Names warren supports that this OpenSSH (9.2) does not know, so sshd
/// cannot confirm them: ML-KEM arrived in OpenSSH 9.9, and groups 15 and
/// 17 (RFC 8268) were never in OpenSSH.
const NEWER_THAN_THIS_OPENSSH: &[&str] = &[
    "mlkem768x25519-sha256",
    "diffie-hellman-group15-sha512",
    "diffie-hellman-group17-sha512",
];

fn warren_q(query: &str) -> Vec<String> {
    let out = warren().args(["ssh", "-Q", query]).output().unwrap();
    assert!(out.status.success(), "-Q {query}: {}", text(&out.stderr));
    text(&out.stdout).lines().map(str::to_owned).collect()
}

fn ssh_q(query: &str) -> Vec<String> {
    let out = Command::new("ssh").args(["-Q", query]).output().unwrap();
    assert!(out.status.success(), "ssh -Q {query}");
    text(&out.stdout).lines().map(str::to_owned).collect()
}

#[test]
fn each_query_lists_names_openssh_knows() {
    // Catches: -Q rejected as "not supported yet" (it printed nothing).
    let queries = warren_q("help");
    for q in [
        "cipher",
        "cipher-auth",
        "mac",
        "kex",
        "key",
        "key-cert",
        "key-plain",
        "sig",
    ] {
        assert!(queries.iter().any(|h| h == q), "{q} not in -Q help");
        let ours = warren_q(q);
        assert!(!ours.is_empty(), "-Q {q} is empty");
        let theirs = ssh_q(q);
        for name in &ours {
            assert!(
                theirs.contains(name) || NEWER_THAN_THIS_OPENSSH.contains(&name.as_str()),
                "-Q {q} lists {name}, which ssh -Q {q} does not know"
            );
        }
    }
    let out = warren().args(["ssh", "-Q", "nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(255));
    assert!(text(&out.stderr).contains("Unsupported query \"nope\""));
}

#[test]
fn every_listed_cipher_mac_and_kex_negotiates_with_sshd() {
    // Catches: a listed algorithm that warren cannot actually use.
    let lists = [
        ("Ciphers", warren_q("cipher")),
        ("MACs", warren_q("mac")),
        ("KexAlgorithms", warren_q("kex")),
    ];
    let mut sshd = Sshd::builder();
    for (option, names) in &lists {
        let known: Vec<&str> = names
            .iter()
            .map(String::as_str)
            .filter(|n| !NEWER_THAN_THIS_OPENSSH.contains(n))
            .collect();
        sshd = sshd.config(format!("{option} {}", known.join(",")));
    }
    let sshd = sshd.start();
    let mut failed = Vec::new();
    for (option, names) in &lists {
        for name in names {
            if NEWER_THAN_THIS_OPENSSH.contains(&name.as_str()) {
                continue;
            }
            // A MAC is only used with a cipher that has none of its own.
            let mut args = vec![format!("-o{option}={name}")];
            if *option == "MACs" {
                args.push("-oCiphers=aes128-ctr".into());
            }
            let out = warren()
                .args(["ssh", "-F"])
                .arg(sshd.client_config())
                .args(&args)
                .args(["test", "echo ok"])
                .output()
                .unwrap();
            if text(&out.stdout).trim() != "ok" {
                failed.push(format!("{option}={name}: {}", text(&out.stderr)));
            }
        }
    }
    assert!(failed.is_empty(), "failed:\n{}", failed.join("\n"));
}
