//! `warren keygen` key files against the real ssh-keygen, both directions:
//! generation, encryption, -y, -l (every type, SHA256 and MD5, randomart),
//! -p, and the refusals (overwrite without a terminal, loose permissions).
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{text, warren};

/// Runs without a controlling terminal (setsid) and with stdin closed, as
/// automation does.
fn detached(cmd: &mut Command) -> Output {
    let program = cmd.get_program().to_owned();
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    let envs: Vec<_> = cmd
        .get_envs()
        .map(|(k, v)| (k.to_owned(), v.map(|v| v.to_owned())))
        .collect();
    let mut setsid = Command::new("setsid");
    setsid.arg("-w").arg(program).args(args);
    for (k, v) in envs {
        match v {
            Some(v) => setsid.env(k, v),
            None => setsid.env_remove(k),
        };
    }
    setsid
        .stdin(Stdio::null())
        .output()
        .expect("setsid (util-linux) runs")
}

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        text(&out.stderr),
        text(&out.stdout)
    );
    text(&out.stdout)
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).expect("stat").permissions().mode() & 0o777
}

fn pub_path(p: &Path) -> PathBuf {
    PathBuf::from(format!("{}.pub", p.display()))
}

const TYPES: [(&str, Option<&str>); 5] = [
    ("ed25519", None),
    ("ecdsa", Some("256")),
    ("ecdsa", Some("384")),
    ("ecdsa", Some("521")),
    ("rsa", Some("2048")),
];

fn warren_keygen(dir: &Path, name: &str, kind: &str, bits: Option<&str>, pass: &str) -> PathBuf {
    let path = dir.join(name);
    let mut cmd = warren();
    cmd.args(["keygen", "-q", "-t", kind, "-N", pass, "-a", "4", "-C"])
        .arg(format!("{name}@test"))
        .arg("-f")
        .arg(&path);
    if let Some(b) = bits {
        cmd.args(["-b", b]);
    }
    ok(&detached(&mut cmd), "warren keygen");
    path
}

#[test]
fn ssh_keygen_reads_warren_keys_clear_and_encrypted() {
    let tmp = tempfile::tempdir().expect("tmp");
    for (i, (kind, bits)) in TYPES.iter().enumerate() {
        for pass in ["", "s3cret pass"] {
            let name = format!("k{i}{}", if pass.is_empty() { "" } else { "e" });
            let key = warren_keygen(tmp.path(), &name, kind, *bits, pass);
            assert_eq!(mode(&key), 0o600, "{name}");
            assert_eq!(mode(&pub_path(&key)), 0o644, "{name}");
            let ours = std::fs::read_to_string(pub_path(&key)).expect("pub");
            assert!(ours.ends_with(&format!(" {name}@test\n")), "{ours}");
            let out = Command::new("ssh-keygen")
                .args(["-y", "-P", pass, "-f"])
                .arg(&key)
                .output()
                .expect("ssh-keygen");
            assert_eq!(
                ok(&out, "ssh-keygen -y"),
                ours,
                "{kind} {bits:?} pass={pass:?}"
            );
            if !pass.is_empty() {
                let wrong = Command::new("ssh-keygen")
                    .args(["-y", "-P", "wrong", "-f"])
                    .arg(&key)
                    .output()
                    .expect("ssh-keygen");
                assert!(!wrong.status.success(), "{name} is really encrypted");
            }
        }
    }
}

#[test]
fn warren_reads_ssh_keygen_keys_clear_and_encrypted() {
    let tmp = tempfile::tempdir().expect("tmp");
    for (i, (kind, bits)) in TYPES.iter().enumerate() {
        for pass in ["", "their pass"] {
            let key = tmp.path().join(format!("t{i}{}", pass.len()));
            let mut cmd = Command::new("ssh-keygen");
            cmd.args(["-q", "-t", kind, "-N", pass, "-C", "theirs", "-f"])
                .arg(&key);
            if let Some(b) = bits {
                cmd.args(["-b", b]);
            }
            ok(&cmd.output().expect("ssh-keygen"), "ssh-keygen");
            let out = warren()
                .args(["keygen", "-y", "-P", pass, "-f"])
                .arg(&key)
                .output()
                .expect("warren");
            let theirs = std::fs::read_to_string(pub_path(&key)).expect("pub");
            assert_eq!(ok(&out, "warren keygen -y"), theirs, "{kind} {bits:?}");
            if !pass.is_empty() {
                let out = warren()
                    .args(["keygen", "-y", "-P", "nope", "-f"])
                    .arg(&key)
                    .output()
                    .expect("warren");
                assert!(!out.status.success());
                let err = text(&out.stderr);
                assert!(err.contains("incorrect passphrase"), "{err}");
            }
        }
    }
}

#[test]
fn fingerprints_and_randomart_match_ssh_keygen_for_every_type() {
    let tmp = tempfile::tempdir().expect("tmp");
    for (i, (kind, bits)) in TYPES.iter().enumerate() {
        let key = warren_keygen(tmp.path(), &format!("f{i}"), kind, *bits, "");
        let theirs = tmp.path().join(format!("g{i}"));
        let mut cmd = Command::new("ssh-keygen");
        cmd.args(["-q", "-t", kind, "-N", "", "-C", "", "-f"])
            .arg(&theirs);
        if let Some(b) = bits {
            cmd.args(["-b", b]);
        }
        ok(&cmd.output().expect("ssh-keygen"), "ssh-keygen");
        for file in [
            pub_path(&key),
            key.clone(),
            pub_path(&theirs),
            theirs.clone(),
        ] {
            for flags in [
                &["-l"][..],
                &["-l", "-E", "md5"],
                &["-lv"],
                &["-lv", "-E", "md5"],
            ] {
                let oracle = Command::new("ssh-keygen")
                    .args(flags)
                    .arg("-f")
                    .arg(&file)
                    .output()
                    .expect("ssh-keygen -l");
                let ours = warren()
                    .arg("keygen")
                    .args(flags)
                    .arg("-f")
                    .arg(&file)
                    .output()
                    .expect("warren keygen -l");
                assert_eq!(
                    ok(&ours, "warren keygen -l"),
                    ok(&oracle, "ssh-keygen -l"),
                    "{flags:?} {}",
                    file.display()
                );
            }
        }
    }
}

#[test]
fn passphrase_changes_interoperate() {
    let tmp = tempfile::tempdir().expect("tmp");
    let key = warren_keygen(tmp.path(), "p", "ed25519", None, "one");
    let want = std::fs::read_to_string(pub_path(&key)).expect("pub");
    let out = warren()
        .args(["keygen", "-p", "-P", "one", "-N", "two", "-a", "4", "-f"])
        .arg(&key)
        .output()
        .expect("warren -p");
    let said = ok(&out, "warren keygen -p");
    assert!(said.contains("Key has comment 'p@test'"), "{said}");
    assert!(said.contains("saved with the new passphrase"), "{said}");
    assert_eq!(mode(&key), 0o600);
    let y = |pass: &str| {
        Command::new("ssh-keygen")
            .args(["-y", "-P", pass, "-f"])
            .arg(&key)
            .output()
            .expect("ssh-keygen -y")
    };
    assert!(
        !y("one").status.success(),
        "old passphrase no longer opens it"
    );
    assert_eq!(ok(&y("two"), "ssh-keygen -y new"), want);
    let out = Command::new("ssh-keygen")
        .args(["-p", "-P", "two", "-N", "three", "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen -p");
    ok(&out, "ssh-keygen -p");
    let out = warren()
        .args(["keygen", "-y", "-P", "three", "-f"])
        .arg(&key)
        .output()
        .expect("warren -y");
    assert_eq!(ok(&out, "warren -y after ssh-keygen -p"), want);
    // Removing the passphrase leaves a clear key ssh-keygen opens without one.
    let out = warren()
        .args(["keygen", "-p", "-P", "three", "-N", "", "-f"])
        .arg(&key)
        .output()
        .expect("warren -p");
    ok(&out, "warren keygen -p to none");
    assert_eq!(ok(&y(""), "ssh-keygen -y clear"), want);
}

#[test]
fn existing_key_is_not_overwritten_without_a_terminal() {
    let tmp = tempfile::tempdir().expect("tmp");
    let key = warren_keygen(tmp.path(), "keep", "ed25519", None, "");
    let before = std::fs::read(&key).expect("read");
    let out = detached(warren().args(["keygen", "-q", "-N", "", "-f"]).arg(&key));
    assert!(!out.status.success(), "must refuse");
    let err = text(&out.stderr);
    assert!(err.contains("already exists"), "{err}");
    assert!(err.contains("terminal"), "{err}");
    assert_eq!(std::fs::read(&key).expect("read"), before, "untouched");
}

#[test]
fn default_path_creates_dot_ssh_0700() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = detached(
        warren()
            .args(["keygen", "-t", "ed25519", "-N", "", "-C", "home@test"])
            .env("HOME", tmp.path()),
    );
    let said = ok(&out, "warren keygen");
    let key = tmp.path().join(".ssh/id_ed25519");
    assert!(
        said.contains("Generating public/private ed25519 key pair."),
        "{said}"
    );
    assert!(
        said.contains(&format!(
            "Your identification has been saved in {}",
            key.display()
        )),
        "{said}"
    );
    assert!(said.contains("+--[ED25519 256]--+"), "{said}");
    assert_eq!(mode(&tmp.path().join(".ssh")), 0o700);
    assert_eq!(mode(&key), 0o600);
    assert_eq!(mode(&pub_path(&key)), 0o644);
}

#[test]
fn passphrase_without_a_terminal_must_be_given() {
    let tmp = tempfile::tempdir().expect("tmp");
    let key = tmp.path().join("k");
    let out = detached(
        warren()
            .args(["keygen", "-q", "-f"])
            .arg(&key)
            .env_remove("SSH_ASKPASS"),
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("-N"), "{err}");
    assert!(!key.exists(), "nothing written");
}

#[test]
fn loose_private_key_is_refused_with_openssh_message() {
    let tmp = tempfile::tempdir().expect("tmp");
    let key = warren_keygen(tmp.path(), "loose", "ed25519", None, "");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = warren()
        .args(["keygen", "-y", "-f"])
        .arg(&key)
        .output()
        .expect("warren");
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("WARNING: UNPROTECTED PRIVATE KEY FILE!"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "Permissions 0644 for '{}' are too open.",
            key.display()
        )),
        "{err}"
    );
    assert!(!err.contains("BEGIN OPENSSH"), "no key material in errors");
}
