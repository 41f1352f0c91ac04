//! `warren copy-id` against a real sshd whose user's home is a temp dir:
//! ~/.ssh made 0700 and authorized_keys 0600, the key added once however
//! often it runs, -n changes nothing, and the new key alone logs in (with
//! OpenSSH's ssh as the judge too).
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
use warren_testkit::{Sshd, keygen};

struct Remote {
    sshd: Sshd,
    home: tempfile::TempDir,
    _keys: tempfile::TempDir,
}

/// An sshd whose user has HOME in a temp dir, authorized_keys read from
/// there, plus a bootstrap file authorizing the fixture's login key.
fn remote() -> Remote {
    let home = tempfile::tempdir().expect("home");
    let keys = tempfile::tempdir().expect("keys");
    let login = keygen(keys.path(), "login", "ed25519", "");
    let bootstrap = keys.path().join("bootstrap_keys");
    std::fs::copy(login.with_extension("pub"), &bootstrap).expect("bootstrap");
    let sshd = Sshd::builder()
        .client_key(&login)
        .config(format!(
            "AuthorizedKeysFile {}/.ssh/authorized_keys {}",
            home.path().display(),
            bootstrap.display()
        ))
        .config(format!("SetEnv HOME={} SHLVL=1", home.path().display()))
        .start();
    Remote {
        sshd,
        home,
        _keys: keys,
    }
}

fn copy_id(r: &Remote, extra: &[&str], key: &Path) -> Output {
    warren()
        .args(["copy-id", "-F"])
        .arg(r.sshd.client_config())
        .args(extra)
        .arg("-i")
        .arg(key)
        .arg("test")
        .stdin(Stdio::null())
        .output()
        .expect("warren copy-id")
}

fn authorized(r: &Remote) -> PathBuf {
    r.home.path().join(".ssh/authorized_keys")
}

fn count(r: &Remote, key: &Path) -> usize {
    let line = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let blob = line.split_whitespace().nth(1).unwrap().to_owned();
    std::fs::read_to_string(authorized(r))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(&blob))
        .count()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn installs_once_with_private_modes_and_verifies() {
    let r = remote();
    let tmp = tempfile::tempdir().expect("tmp");
    let key = keygen(tmp.path(), "new_key", "ecdsa", "");
    assert!(!r.home.path().join(".ssh").exists());
    let out = copy_id(&r, &[], &key);
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stderr),
        r.sshd.log()
    );
    let said = text(&out.stdout);
    assert!(said.contains("Number of key(s) added: 1"), "{said}");
    assert!(said.contains("Verified: logged in to test with"), "{said}");
    assert_eq!(mode(&r.home.path().join(".ssh")), 0o700);
    assert_eq!(mode(&authorized(&r)), 0o600);
    assert_eq!(count(&r, &key), 1);
    // Idempotent: a second run adds nothing.
    let again = copy_id(&r, &[], &key);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(
        text(&again.stderr).contains("already exist"),
        "{}",
        text(&again.stderr)
    );
    assert_eq!(count(&r, &key), 1);
    // OpenSSH logs in with the new key alone.
    let ssh = Command::new("ssh")
        .arg("-F")
        .arg(r.sshd.client_config())
        .args(["-o", "IdentityFile=none"])
        .arg("-i")
        .arg(&key)
        .args(["test", "echo new-key-works"])
        .stdin(Stdio::null())
        .output()
        .expect("ssh");
    assert_eq!(
        text(&ssh.stdout),
        "new-key-works\n",
        "{}",
        text(&ssh.stderr)
    );
    assert!(
        r.sshd.log().contains("ECDSA"),
        "sshd saw the new key: {}",
        r.sshd.log()
    );
}

#[test]
fn dry_run_changes_nothing_and_force_adds_again() {
    let r = remote();
    let tmp = tempfile::tempdir().expect("tmp");
    let key = keygen(tmp.path(), "dry", "ed25519", "");
    let out = copy_id(&r, &["-n"], &key);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("Would have added"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(count(&r, &key), 0);
    assert!(copy_id(&r, &[], &key).status.success());
    assert!(copy_id(&r, &["-f"], &key).status.success());
    assert_eq!(count(&r, &key), 2, "-f adds even when present");
}

#[test]
fn appends_after_a_file_without_final_newline() {
    let r = remote();
    let tmp = tempfile::tempdir().expect("tmp");
    let key = keygen(tmp.path(), "nl", "ed25519", "");
    let dot_ssh = r.home.path().join(".ssh");
    std::fs::create_dir(&dot_ssh).unwrap();
    std::fs::set_permissions(&dot_ssh, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::write(authorized(&r), "# kept, no newline").unwrap();
    let out = copy_id(&r, &[], &key);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let content = std::fs::read_to_string(authorized(&r)).unwrap();
    assert!(content.starts_with("# kept, no newline\n"), "{content}");
    assert_eq!(count(&r, &key), 1);
}

/// copy-id takes the connection flags every subcommand shares, in the
/// order typed, as ssh does: the first of `-p` and `-o Port=` wins.
#[test]
fn connection_flags_are_shared_and_apply_in_typed_order() {
    // Broke: copy-id rejected -l, -4 and -v, and rebuilt an ssh argv with
    // every -o before -p, so `-p 1 -o Port=N` connected to N.
    let r = remote();
    let tmp = tempfile::tempdir().expect("tmp");
    let key = keygen(tmp.path(), "flags", "ed25519", "");
    let real = format!("Port={}", r.sshd.port());
    let user = warren_testkit::local_user();
    let out = copy_id(&r, &["-4", "-l", &user, "-v", "-p", "1", "-o", &real], &key);
    assert!(
        !out.status.success(),
        "-p 1 came first: {}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains("port 1"),
        "{}",
        text(&out.stderr)
    );
    let out = copy_id(&r, &["-4", "-l", &user, "-v", "-o", &real, "-p", "1"], &key);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(&format!("Authenticating to 127.0.0.1:{}", r.sshd.port())),
        "-v logs each step: {}",
        text(&out.stderr)
    );
    assert_eq!(count(&r, &key), 1);
}
