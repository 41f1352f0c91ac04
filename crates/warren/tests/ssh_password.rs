//! Password and keyboard-interactive authentication against a real sshd and
//! the `warren-test` account that scripts/test unlocks for the run with a
//! random password (in the 0600 file named by WARREN_TEST_PASSWORD_FILE); the
//! password comes through SSH_ASKPASS, which is also how the prompts are
//! checked.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]

mod common;
use common::{script, text};

use std::process::{Command, Output, Stdio};

use warren_testkit::Sshd;

const USER: &str = "warren-test";

/// This run's password for the account, written by scripts/test.
fn password() -> String {
    let file = std::env::var_os("WARREN_TEST_PASSWORD_FILE").expect(
        "WARREN_TEST_PASSWORD_FILE unset: run the suite through scripts/test, \
         which sets a random password on the warren-test account for the run",
    );
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{}: {e}", std::path::Path::new(&file).display()));
    let password = text.trim().to_owned();
    assert!(
        password.len() >= 16 && password.bytes().all(|b| b.is_ascii_alphanumeric()),
        "the password file must hold one random alphanumeric password"
    );
    password
}

fn require_account() {
    let ok = Command::new("id")
        .arg(USER)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "account {USER} missing: scripts/test creates it (useradd + chpasswd)"
    );
}

fn askpass(sshd: &Sshd, answer: &str) -> std::path::PathBuf {
    let path = sshd.dir().join(format!("askpass-{}", answer.len()));
    let log = sshd.dir().join("prompts.log");
    script(
        path,
        &format!("echo \"$1\" >> {}\necho '{answer}'\n", log.display()),
    )
}

fn login(sshd: &Sshd, method: &str, answer: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warren"))
        .args([
            "ssh",
            "-F",
            "none",
            "-p",
            &sshd.port().to_string(),
            "-l",
            USER,
        ])
        .args([
            "-o",
            &format!("UserKnownHostsFile={}", sshd.known_hosts().display()),
        ])
        .args([
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "IdentityAgent=none",
            "-o",
            "PubkeyAuthentication=no",
        ])
        .args(["-o", &format!("PreferredAuthentications={method}")])
        .args(extra)
        .args(["127.0.0.1", "echo logged-in-as $(id -un)"])
        .env("SSH_ASKPASS", askpass(sshd, answer))
        .env("SSH_ASKPASS_REQUIRE", "force")
        .stdin(Stdio::null())
        .output()
        .expect("run warren")
}

#[test]
fn password_authentication() {
    require_account();
    let sshd = Sshd::builder()
        .config("PasswordAuthentication yes")
        .config("KbdInteractiveAuthentication no")
        .start();
    let out = login(&sshd, "password", &password(), &[]);
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stderr),
        sshd.log()
    );
    assert_eq!(text(&out.stdout), format!("logged-in-as {USER}\n"));
    let prompts = std::fs::read_to_string(sshd.dir().join("prompts.log")).expect("prompted");
    assert!(
        prompts.contains(&format!("{USER}@127.0.0.1's password:")),
        "{prompts}"
    );
}

#[test]
fn wrong_password_is_retried_number_of_password_prompts_times() {
    require_account();
    let sshd = Sshd::builder()
        .config("PasswordAuthentication yes")
        .config("KbdInteractiveAuthentication no")
        .start();
    let out = login(
        &sshd,
        "password",
        "wrong",
        &["-o", "NumberOfPasswordPrompts=2"],
    );
    assert_eq!(out.status.code(), Some(255));
    let prompts = std::fs::read_to_string(sshd.dir().join("prompts.log")).expect("prompted");
    assert_eq!(prompts.lines().count(), 2, "{prompts}");
    assert!(
        text(&out.stderr).contains("Permission denied"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn keyboard_interactive_authentication() {
    require_account();
    let sshd = Sshd::builder()
        .config("UsePAM yes")
        .config("KbdInteractiveAuthentication yes")
        .config("PasswordAuthentication no")
        .start();
    let out = login(&sshd, "keyboard-interactive", &password(), &[]);
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stderr),
        sshd.log()
    );
    assert_eq!(text(&out.stdout), format!("logged-in-as {USER}\n"));
}

#[test]
fn batch_mode_never_prompts() {
    require_account();
    let sshd = Sshd::builder().config("PasswordAuthentication yes").start();
    let out = login(&sshd, "password", &password(), &["-o", "BatchMode=yes"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(
        !sshd.dir().join("prompts.log").exists(),
        "BatchMode must not prompt"
    );
    assert!(
        text(&out.stderr).contains("Permission denied"),
        "{}",
        text(&out.stderr)
    );
}
