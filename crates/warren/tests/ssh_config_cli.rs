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

/// Repeated single-value flags and attached values, as ssh's getopt loop
/// treats them (OpenSSH 9.2 ssh.c): the first `-p`/`-l` wins, the last
/// `-c`/`-m`/`-S`/`-b`/`-e`/`-E`/`-F` wins, `-i`/`-L` append, and every
/// spelling of an option applies before the destination's `user@`/`:port`
/// when typed before it. Broke: a repeated flag was a clap error ("cannot
/// be used multiple times"), and `-oUser=foo baz@h`, `-lbar baz@h` and
/// `-p1 ssh://h:5` let the destination win (clap's value indices put an
/// attached value after the destination).
#[test]
fn dash_g_repeated_and_attached_flags_agree_with_openssh() {
    let tmp = tempfile::tempdir().expect("tmp");
    let cfg = tmp.path().join("config");
    std::fs::write(&cfg, "Host h\n  User cfguser\n").expect("write");
    let cfg = cfg.display().to_string();
    let log_a = tmp.path().join("a.log").display().to_string();
    let log_b = tmp.path().join("b.log").display().to_string();
    let cases: &[&[&str]] = &[
        &["-F", "none", "-oUser=foo", "baz@h"],
        &["-F", "none", "-o", "User=foo", "baz@h"],
        &["-F", "none", "-lbar", "baz@h"],
        &["-F", "none", "baz@h", "-lbar"],
        &["-F", "none", "-p1", "ssh://h:5"],
        &["-F", "none", "-oPort=7", "ssh://u@h:5"],
        &["-F", "none", "ssh://u@h:5", "-p1", "-lx"],
        &["-F", "none", "-p", "1", "-p", "2", "h"],
        &["-F", "none", "-p1", "-p2", "-oPort=3", "h"],
        &["-F", "none", "-l", "a", "-l", "b", "h"],
        &["-F", "none", "-la", "-oUser=b", "c@h"],
        &["-F", "none", "-c", "aes128-ctr", "-c", "aes256-ctr", "h"],
        &["-F", "none", "-m", "hmac-sha1", "-m", "hmac-sha2-256", "h"],
        &["-F", "none", "-S", "/tmp/a", "-S", "/tmp/b", "h"],
        &["-F", "none", "-b", "127.0.0.1", "-b", "127.0.0.2", "h"],
        &["-F", "none", "-e", "a", "-e", "^B", "h"],
        &["-F", "none", "-E", &log_a, "-E", &log_b, "h"],
        &["-F", "none", "-F", &cfg, "h"],
        &["-F", &cfg, "-F", "none", "h"],
        &["-F", "none", "-i", "/tmp/k1", "-i", "/tmp/k2", "h"],
        &["-F", "none", "-L", "1:a:1", "-L", "2:b:2", "h"],
        &["-F", "none", "-vvp1", "-T", "-t", "h"],
        &["-F", "none", "-4", "-6", "-g", "h"],
        &["-F", "none", "-M", "-M", "-qv", "h"],
        // 9.2's -P takes no value (deprecated, ignored): h is the destination.
        &["-F", "none", "-P", "h"],
        &["-F", "none", "-Pp1", "h"],
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

/// A second -J, -W or -O is refused with ssh's words, as is -1. Broke:
/// clap refused the repetition with its own message, and -1 was accepted.
#[test]
fn dash_g_refuses_repeats_like_openssh() {
    let cases: &[&[&str]] = &[
        &["-F", "none", "-J", "a", "-J", "b", "h"],
        &["-F", "none", "-W", "a:1", "-W", "b:1", "h"],
        &["-F", "none", "-O", "check", "-O", "exit", "h"],
        &["-F", "none", "-W", "a:1", "-O", "check", "h"],
        &["-F", "none", "-O", "check", "-W", "a:1", "h"],
        &["-F", "none", "-1", "h"],
    ];
    for args in cases {
        let run = |program: &str, pre: &[&str]| {
            let out = Command::new(program)
                .args(pre)
                .args(*args)
                .output()
                .expect("run");
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        };
        let (ours, our_err) = run(env!("CARGO_BIN_EXE_warren"), &["ssh", "-G"]);
        let (theirs, their_err) = run("ssh", &["-G"]);
        assert_eq!(ours, theirs, "{args:?}: {our_err} / {their_err}");
        let their_line = their_err.lines().next().unwrap_or_default().trim();
        assert!(
            !their_line.is_empty() && our_err.contains(their_line),
            "{args:?}: ssh says {their_err:?}, warren {our_err:?}"
        );
    }
}
