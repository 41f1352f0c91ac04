//! Completion scripts complete destinations from the user's ~/.ssh, as
//! ssh's bash completion does: driven through real bash and fish with
//! the script `warren completions` prints and this warren on PATH.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]

mod common;
use common::{text, warren};

use std::path::{Path, PathBuf};
use std::process::Command;

/// A home whose ~/.ssh has a config with an Include and a known_hosts.
fn home() -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let ssh = home.path().join(".ssh");
    std::fs::create_dir_all(&ssh).unwrap();
    std::fs::write(ssh.join("config"), "Host prod-db *.wild\nInclude more\n").unwrap();
    std::fs::write(ssh.join("more"), "Host prod-web\n").unwrap();
    std::fs::write(
        ssh.join("known_hosts"),
        "production.example ssh-ed25519 AAAA\n|1|c2FsdA==|aGFzaA== ssh-ed25519 AAAA\n",
    )
    .unwrap();
    home
}

fn script(home: &Path, shell: &str) -> PathBuf {
    let out = warren().args(["completions", shell]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let path = home.join(format!("warren.{shell}"));
    std::fs::write(&path, &out.stdout).unwrap();
    path
}

/// PATH with this build's warren first.
fn path_with_warren() -> String {
    let bin = Path::new(env!("CARGO_BIN_EXE_warren")).parent().unwrap();
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

fn lines(out: &std::process::Output) -> Vec<String> {
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).lines().map(str::to_owned).collect()
}

// There were no completions: `warren ssh bob@prod<TAB>` offered nothing.
#[test]
fn bash_completes_destinations() {
    let home = home();
    let script = script(home.path(), "bash");
    let out = Command::new("bash")
        .arg("-c")
        .arg(
            r#"source "$1"
COMP_WORDS=(warren ssh bob@prod); COMP_CWORD=2
COMP_LINE="warren ssh bob@prod"; COMP_POINT=${#COMP_LINE}
_warren_with_hosts warren bob@prod ssh
printf '%s\n' "${COMPREPLY[@]}""#,
        )
        .arg("bash")
        .arg(&script)
        .env("HOME", home.path())
        .env("PATH", path_with_warren())
        .current_dir(home.path())
        .output()
        .expect("bash is needed");
    let got = lines(&out);
    for want in ["bob@prod-db", "bob@prod-web", "bob@production.example"] {
        assert!(got.iter().any(|l| l == want), "{want} in {got:?}");
    }
    assert!(!got.iter().any(|l| l.contains("wild")), "{got:?}");
    // `tunnel status` takes a tunnel's name, not a destination.
    let out = Command::new("bash")
        .arg("-c")
        .arg(
            r#"source "$1"
COMP_WORDS=(warren tunnel status prod); COMP_CWORD=3
COMP_LINE="warren tunnel status prod"; COMP_POINT=${#COMP_LINE}
_warren_with_hosts warren prod status
printf '%s\n' "${COMPREPLY[@]}""#,
        )
        .arg("bash")
        .arg(&script)
        .env("HOME", home.path())
        .env("PATH", path_with_warren())
        .current_dir(home.path())
        .output()
        .expect("bash is needed");
    assert!(
        !text(&out.stdout).contains("prod-db"),
        "{}",
        text(&out.stdout)
    );
}

// The same in fish, for `warren tunnel up` too.
#[test]
fn fish_completes_destinations() {
    let home = home();
    let script = script(home.path(), "fish");
    for line in ["warren ssh prod", "warren tunnel up -N prod"] {
        let out = Command::new("fish")
            .arg("--no-config")
            .arg("-c")
            .arg(format!(
                "source {}; complete --do-complete '{line}'",
                script.display()
            ))
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path().join(".config"))
            .env("XDG_DATA_HOME", home.path().join(".local/share"))
            .env("PATH", path_with_warren())
            .output()
            .unwrap_or_else(|e| panic!("fish is needed (scripts/test installs it): {e}"));
        let got: Vec<String> = lines(&out)
            .into_iter()
            .map(|l| l.split('\t').next().unwrap_or("").to_owned())
            .collect();
        for want in ["prod-db", "prod-web", "production.example"] {
            assert!(got.iter().any(|l| l == want), "{line}: {want} in {got:?}");
        }
    }
}
