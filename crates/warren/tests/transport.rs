//! warren as the transport of other tools: `rsync -e`, `GIT_SSH_COMMAND`,
//! `scp -S` — against a real sshd, bytes verified.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]

mod common;
use common::text;

use std::path::Path;
use std::process::{Command, Stdio};

use warren_testkit::Sshd;

fn warren_ssh_command(sshd: &Sshd) -> String {
    format!(
        "{} ssh -F {}",
        env!("CARGO_BIN_EXE_warren"),
        sshd.client_config().display()
    )
}

fn fill_tree(root: &Path) {
    std::fs::create_dir_all(root.join("sub/deeper")).expect("mkdir");
    std::fs::write(root.join("a.txt"), "alpha\n").expect("write");
    std::fs::write(
        root.join("sub/b.bin"),
        (0..=255u8).cycle().take(1 << 20).collect::<Vec<_>>(),
    )
    .expect("write");
    std::fs::write(root.join("sub/deeper/c"), "").expect("write");
}

fn assert_same_tree(a: &Path, b: &Path) {
    let out = Command::new("diff")
        .arg("-r")
        .arg(a)
        .arg(b)
        .output()
        .expect("diff");
    assert!(out.status.success(), "trees differ: {}", text(&out.stdout));
}

fn require(tool: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success());
    assert!(
        found.unwrap_or(false),
        "{tool} is required: scripts/test installs it with apt-get"
    );
}

#[test]
fn rsync_over_warren_both_directions() {
    require("rsync");
    let sshd = Sshd::start();
    let tmp = tempfile::tempdir().expect("tmp");
    let src = tmp.path().join("src");
    fill_tree(&src);
    let remote = tmp.path().join("remote");
    let push = Command::new("rsync")
        .args(["-a", "-e", &warren_ssh_command(&sshd)])
        .arg(format!("{}/", src.display()))
        .arg(format!("test:{}/", remote.display()))
        .output()
        .expect("rsync push");
    assert!(push.status.success(), "rsync push: {}", text(&push.stderr));
    assert_same_tree(&src, &remote);
    let back = tmp.path().join("back");
    let pull = Command::new("rsync")
        .args(["-a", "-e", &warren_ssh_command(&sshd)])
        .arg(format!("test:{}/", remote.display()))
        .arg(format!("{}/", back.display()))
        .output()
        .expect("rsync pull");
    assert!(pull.status.success(), "rsync pull: {}", text(&pull.stderr));
    assert_same_tree(&src, &back);
}

#[test]
fn git_clone_and_push_with_git_ssh_command() {
    require("git");
    let sshd = Sshd::start();
    let tmp = tempfile::tempdir().expect("tmp");
    let git = |dir: &Path, args: &[&str]| {
        let out = Command::new("git")
            .current_dir(dir)
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@example.invalid",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .env("GIT_SSH_COMMAND", warren_ssh_command(&sshd))
            .stdin(Stdio::null())
            .output()
            .expect("git");
        assert!(out.status.success(), "git {args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    let origin = tmp.path().join("origin");
    std::fs::create_dir_all(&origin).expect("mkdir");
    git(&origin, &["init", "-q"]);
    std::fs::write(origin.join("README"), "hello\n").expect("write");
    git(&origin, &["add", "README"]);
    git(&origin, &["commit", "-qm", "first"]);
    git(
        &origin,
        &["config", "receive.denyCurrentBranch", "updateInstead"],
    );
    let url = format!("test:{}", origin.display());
    git(tmp.path(), &["clone", "-q", &url, "clone"]);
    let clone = tmp.path().join("clone");
    assert_eq!(
        std::fs::read_to_string(clone.join("README")).expect("cloned"),
        "hello\n"
    );
    std::fs::write(clone.join("NEW"), "pushed\n").expect("write");
    git(&clone, &["add", "NEW"]);
    git(&clone, &["commit", "-qm", "second"]);
    git(&clone, &["push", "-q", "origin", "HEAD"]);
    assert_eq!(
        std::fs::read_to_string(origin.join("NEW")).expect("pushed"),
        "pushed\n"
    );
}

#[test]
fn scp_with_warren_as_its_ssh_program() {
    let sshd = Sshd::start();
    let tmp = tempfile::tempdir().expect("tmp");
    // scp -S wants one program: warren behaves as `warren ssh` under this name.
    let program = tmp.path().join("warren-ssh");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_warren"), &program).expect("symlink");
    let src = tmp.path().join("file.bin");
    std::fs::write(
        &src,
        (0..200_000u32)
            .flat_map(|i| i.to_le_bytes())
            .collect::<Vec<_>>(),
    )
    .expect("write");
    let dst = tmp.path().join("copied.bin");
    for mode in [&["-s"][..], &["-O"][..]] {
        let _ = std::fs::remove_file(&dst);
        let out = Command::new("scp")
            .args(mode)
            .arg("-S")
            .arg(&program)
            .arg("-F")
            .arg(sshd.client_config())
            .arg(&src)
            .arg(format!("test:{}", dst.display()))
            .stdin(Stdio::null())
            .output()
            .expect("scp");
        assert!(out.status.success(), "scp {mode:?}: {}", text(&out.stderr));
        assert_eq!(
            std::fs::read(&dst).expect("copied"),
            std::fs::read(&src).expect("src"),
            "scp {mode:?}"
        );
    }
}
