//! Debian's patched ssh defaults, checked against this machine's `ssh -G`:
//! BatchMode yes without ServerAliveInterval means keepalives every 300 s.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]

use std::process::Command;

fn alive_interval(program: &str, pre: &[&str], args: &[&str]) -> String {
    let out = Command::new(program)
        .args(pre)
        .args(args)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("serveraliveinterval "))
        .unwrap_or_else(|| panic!("{program} -G printed no serveraliveinterval"))
        .to_owned()
}

#[test]
fn batch_mode_keepalive_matches_debians_ssh_dash_g() {
    // Catches: warren printing serveraliveinterval 0 where Debian's ssh
    // prints 300 (BatchMode yes, no ServerAliveInterval).
    assert!(
        std::path::Path::new("/etc/debian_version").exists(),
        "this test compares with Debian's patched ssh: run it on Debian"
    );
    let cases: &[&[&str]] = &[
        &["-F", "none", "-o", "BatchMode=yes", "h"],
        &[
            "-F",
            "none",
            "-o",
            "BatchMode=yes",
            "-o",
            "ServerAliveInterval=7",
            "h",
        ],
        &[
            "-F",
            "none",
            "-o",
            "ServerAliveInterval=0",
            "-o",
            "BatchMode=yes",
            "h",
        ],
        &["-F", "none", "h"],
    ];
    for args in cases {
        let ours = alive_interval(env!("CARGO_BIN_EXE_warren"), &["ssh", "-G"], args);
        let theirs = alive_interval("ssh", &["-G"], args);
        assert_eq!(ours, theirs, "{args:?}");
    }
    let batch = alive_interval("ssh", &["-G"], cases[0]);
    assert_eq!(batch, "300", "this ssh is not Debian's patched one");
}
