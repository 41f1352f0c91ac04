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

// keygen read known_hosts with read_to_string: a file holding one byte
// that is not UTF-8 could not be edited or searched at all. ssh-keygen
// edits it and keeps every other byte; an unusable line (no key) makes
// both refuse to rewrite the file.
#[test]
fn lines_that_are_not_utf8_are_kept_byte_for_byte_like_ssh_keygen() {
    let tmp = tempfile::tempdir().expect("tmp");
    let k1 = keygen(tmp.path(), "k1", "ed25519", "");
    let pub_text = std::fs::read_to_string(k1.with_extension("pub")).expect("pub");
    let key: Vec<&str> = pub_text.split_whitespace().take(2).collect();
    let key = format!(" {}", key.join(" "));
    let key = key.as_bytes();
    let usable = [
        b"# caf\xe9\n".as_slice(),
        b"h\xe9st",
        key,
        b"\nexample.com",
        key,
        b" comm\xe9nt\nother",
        key,
        b"\n",
    ]
    .concat();
    let unusable = [b"x\xe9\nexample.com".as_slice(), key, b"\n"].concat();
    for (name, text) in [("usable", &usable), ("unusable", &unusable)] {
        let ours = tmp.path().join(format!("ours-{name}"));
        let theirs = tmp.path().join(format!("theirs-{name}"));
        std::fs::write(&ours, text).expect("write");
        std::fs::write(&theirs, text).expect("write");
        let (o_path, t_path) = (ours.to_str().unwrap(), theirs.to_str().unwrap());
        let warren = env!("CARGO_BIN_EXE_warren");
        let of = run(warren, &["keygen"], &["-f", o_path, "-F", "example.com"]);
        let tf = run("ssh-keygen", &[], &["-f", t_path, "-F", "example.com"]);
        // The found lines, byte for byte (the "# Host" headers are worded
        // differently).
        let found = |b: &[u8]| -> Vec<Vec<u8>> {
            b.split(|&c| c == b'\n')
                .filter(|l| !l.starts_with(b"#"))
                .map(<[u8]>::to_vec)
                .collect()
        };
        assert_eq!(found(&of.stdout), found(&tf.stdout), "-F on {name}");
        assert_eq!(of.status.code(), tf.status.code(), "-F on {name}");
        let o = run(warren, &["keygen"], &["-f", o_path, "-R", "example.com"]);
        let t = run("ssh-keygen", &[], &["-f", t_path, "-R", "example.com"]);
        assert_eq!(o.status.success(), t.status.success(), "-R on {name}");
        let after = std::fs::read(&ours).expect("ours");
        assert_eq!(
            after,
            std::fs::read(&theirs).expect("theirs"),
            "-R on {name}"
        );
        if name == "unusable" {
            assert_eq!(&after, text, "an invalid line leaves the file alone");
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(err.contains(":1: invalid line"), "{err}");
        }
    }
}
