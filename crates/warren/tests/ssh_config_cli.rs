//! `warren ssh -G` against `ssh -G` on the same command line (the
//! keyword-by-keyword corpus lives in warren-config's oracle test; this one
//! checks the CLI wiring: flags, destination forms, -F, -o).
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]

use std::collections::BTreeMap;
use std::process::Command;

/// Keywords whose values are warren's own (algorithm lists).
const OWN: &[&str] = &[
    "ciphers",
    "macs",
    "kexalgorithms",
    "hostkeyalgorithms",
    "pubkeyacceptedalgorithms",
    "casignaturealgorithms",
    "hostbasedacceptedalgorithms",
];

fn dump(program: &str, pre: &[&str], args: &[&str]) -> BTreeMap<String, Vec<String>> {
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
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let (k, v) = line.split_once(' ').unwrap_or((line, ""));
        if !OWN.contains(&k) {
            map.entry(k.to_owned()).or_default().push(v.to_owned());
        }
    }
    map
}

#[test]
fn dash_g_agrees_with_openssh_on_cli_forms() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cfg = tmp.path().join("config");
    std::fs::write(
        &cfg,
        "Host alias\n  HostName real.example.invalid\n  User cfguser\n  Port 2200\n  IdentityFile ~/.ssh/alias_key\n\
         Host *\n  ServerAliveInterval 30\n  ControlPath ~/.ssh/cm-%C\n",
    )
    .expect("write");
    let cfg = cfg.display().to_string();
    let cases: &[&[&str]] = &[
        &["-F", &cfg, "alias"],
        &["-F", &cfg, "-p", "2222", "-l", "bob", "alias"],
        &["-F", &cfg, "bob@alias"],
        &["-F", &cfg, "ssh://carol@alias:2022"],
        &[
            "-F",
            &cfg,
            "-i",
            "/tmp/k1",
            "-i",
            "/tmp/k2",
            "-o",
            "User=dave",
            "alias",
        ],
        &["-F", &cfg, "-4", "-C", "-T", "-n", "-q", "alias"],
        &["-F", "none", "-tt", "-N", "-o", "ConnectTimeout=5", "other"],
        &["-F", &cfg, "-vv", "-e", "none", "-b", "127.0.0.1", "alias"],
    ];
    for args in cases {
        let ours = dump(env!("CARGO_BIN_EXE_warren"), &["ssh", "-G"], args);
        let theirs = dump("ssh", &["-G"], args);
        let mut diffs = Vec::new();
        for key in theirs.keys().chain(ours.keys()) {
            if ours.get(key) != theirs.get(key) {
                diffs.push(format!(
                    "{key}: ours {:?} theirs {:?}",
                    ours.get(key),
                    theirs.get(key)
                ));
            }
        }
        diffs.dedup();
        assert!(
            diffs.is_empty(),
            "warren ssh -G {args:?} differs from ssh -G:\n{}",
            diffs.join("\n")
        );
    }
}
