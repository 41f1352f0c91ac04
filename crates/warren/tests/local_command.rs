//! LocalCommand / PermitLocalCommand against a real sshd, with real ssh's
//! result as the oracle.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]

mod common;
use common::{text, warren};

use std::path::Path;
use std::process::{Command, Output, Stdio};

use warren_testkit::Sshd;

fn run(program: &str, pre: &[&str], sshd: &Sshd, options: &[String]) -> Output {
    let mut cmd = Command::new(program);
    if program == "warren" {
        cmd = warren();
    }
    cmd.args(pre)
        .args(options)
        .arg("-F")
        .arg(sshd.client_config())
        .args(["test", "true"])
        .stdin(Stdio::null())
        .output()
        .expect("run client")
}

/// What a LocalCommand writing every token to `out` leaves there.
fn tokens_written(program: &str, pre: &[&str], sshd: &Sshd, out: &Path, permit: &str) -> String {
    let _ = std::fs::remove_file(out);
    let options = vec![
        "-o".to_owned(),
        format!("PermitLocalCommand={permit}"),
        "-o".to_owned(),
        format!(
            "LocalCommand=printf '%%s\\n' %h %p %r %n %C %L %l %u %d %i %k %T %% > {}",
            out.display()
        ),
    ];
    let o = run(program, pre, sshd, &options);
    assert!(
        o.status.success(),
        "{program}: {}\nsshd: {}",
        text(&o.stderr),
        sshd.log()
    );
    std::fs::read_to_string(out).unwrap_or_else(|_| "(not run)".to_owned())
}

/// A LocalCommand runs, with ssh's tokens, only with PermitLocalCommand
/// yes. Broke: LocalCommand was parsed and never run (the file was never
/// written).
#[test]
fn local_command_runs_with_tokens_like_ssh() {
    let sshd = Sshd::start();
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("tokens");
    let theirs = tokens_written("ssh", &[], &sshd, &out, "yes");
    assert!(theirs.lines().count() >= 13, "ssh wrote {theirs:?}");
    let ours = tokens_written("warren", &["ssh"], &sshd, &out, "yes");
    assert_eq!(
        ours, theirs,
        "warren's LocalCommand tokens differ from ssh's"
    );

    // Without PermitLocalCommand, neither runs it.
    let theirs = tokens_written("ssh", &[], &sshd, &out, "no");
    let ours = tokens_written("warren", &["ssh"], &sshd, &out, "no");
    assert_eq!((ours.as_str(), theirs.as_str()), ("(not run)", "(not run)"));
}
