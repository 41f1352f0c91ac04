//! `warren keygen -R/-F/-H` against the real ssh-keygen on the same file.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]

use std::process::Command;

use warren_testkit::keygen;

const CORPUS: &str = "# a comment\n\
    example.com,192.0.2.1 KEY1\n\
    [example.com]:2222 KEY1\n\
    other.example KEY2\n\
    @cert-authority *.example.com KEY2\n\
    *.wild KEY1\n";

fn corpus(dir: &std::path::Path) -> String {
    let k1 = keygen(dir, "k1", "ed25519", "");
    let k2 = keygen(dir, "k2", "ecdsa", "");
    let key = |p: &std::path::Path| {
        let text = std::fs::read_to_string(p.with_extension("pub")).expect("pub");
        text.split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    };
    CORPUS.replace("KEY1", &key(&k1)).replace("KEY2", &key(&k2))
}

fn run(program: &str, pre: &[&str], args: &[&str]) -> std::process::Output {
    Command::new(program)
        .args(pre)
        .args(args)
        .output()
        .expect("run")
}

#[test]
fn remove_matches_ssh_keygen() {
    let tmp = tempfile::tempdir().expect("tmp");
    let text = corpus(tmp.path());
    for host in [
        "example.com",
        "[example.com]:2222",
        "192.0.2.1",
        "other.example",
        "absent.example",
    ] {
        let ours = tmp.path().join("ours");
        let theirs = tmp.path().join("theirs");
        std::fs::write(&ours, &text).expect("write");
        std::fs::write(&theirs, &text).expect("write");
        let o = run(
            env!("CARGO_BIN_EXE_warren"),
            &["keygen"],
            &["-f", ours.to_str().unwrap(), "-R", host],
        );
        let t = run(
            "ssh-keygen",
            &[],
            &["-f", theirs.to_str().unwrap(), "-R", host],
        );
        assert_eq!(o.status.success(), t.status.success(), "{host}");
        assert_eq!(
            std::fs::read_to_string(&ours).expect("ours"),
            std::fs::read_to_string(&theirs).expect("theirs"),
            "-R {host}"
        );
        if text != std::fs::read_to_string(&ours).expect("ours") {
            assert_eq!(
                std::fs::read_to_string(tmp.path().join("ours.old")).expect("backup"),
                text
            );
        }
    }
}

#[test]
fn find_reports_the_same_lines_as_ssh_keygen() {
    let tmp = tempfile::tempdir().expect("tmp");
    let file = tmp.path().join("known_hosts");
    std::fs::write(&file, corpus(tmp.path())).expect("write");
    for host in ["example.com", "192.0.2.1", "x.wild", "nothing.example"] {
        let o = run(
            env!("CARGO_BIN_EXE_warren"),
            &["keygen"],
            &["-f", file.to_str().unwrap(), "-F", host],
        );
        let t = run(
            "ssh-keygen",
            &[],
            &["-f", file.to_str().unwrap(), "-F", host],
        );
        assert_eq!(o.status.code(), t.status.code(), "-F {host}");
        let lines = |b: &[u8]| {
            String::from_utf8_lossy(b)
                .lines()
                .filter(|l| !l.starts_with('#'))
                .map(String::from)
                .collect::<Vec<_>>()
        };
        assert_eq!(lines(&o.stdout), lines(&t.stdout), "-F {host}");
    }
}

#[test]
fn hashed_file_is_found_by_ssh_keygen() {
    let tmp = tempfile::tempdir().expect("tmp");
    let file = tmp.path().join("known_hosts");
    std::fs::write(&file, corpus(tmp.path())).expect("write");
    let o = run(
        env!("CARGO_BIN_EXE_warren"),
        &["keygen"],
        &["-f", file.to_str().unwrap(), "-H"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let hashed = std::fs::read_to_string(&file).expect("read");
    assert!(!hashed.contains("other.example"), "{hashed}");
    for host in [
        "example.com",
        "192.0.2.1",
        "[example.com]:2222",
        "other.example",
    ] {
        let t = run(
            "ssh-keygen",
            &[],
            &["-f", file.to_str().unwrap(), "-F", host],
        );
        assert!(
            t.status.success(),
            "ssh-keygen -F {host} on our hashed file"
        );
    }
}
