//! warren installed as `ssh` (a symlink of that name, as users and
//! packagers do): `-fN -L` scripts, and rsync, scp and git driving it as
//! their ssh, against a real sshd.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]

mod common;
use common::{free_port, text};

use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use warren_testkit::Sshd;

/// A directory holding `ssh`, a symlink to the warren binary.
fn ssh_symlink() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let ssh = dir.path().join("ssh");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_warren"), &ssh).unwrap();
    (dir, ssh)
}

/// Waits for `child` at most `limit`; a launcher that never returns fails
/// the test (and is killed) instead of hanging it.
fn wait_bounded(mut child: Child, limit: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not return within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Kills (by pid) the processes whose command line contains `marker`: the
/// background clients a test started.
fn kill_background(marker: &str) {
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if pid != std::process::id() && String::from_utf8_lossy(&cmdline).contains(marker) {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    }
}

#[test]
fn dash_f_through_a_symlink_named_ssh_forwards_and_returns() {
    // Broke: the background re-exec dropped the name, so the client saw
    // `warren -f -N ...` without a subcommand and clap refused it (exit 2).
    let sshd = Sshd::start();
    let (dir, ssh) = ssh_symlink();
    let port = free_port();
    let spec = format!("{port}:127.0.0.1:{}", sshd.port());
    let log = dir.path().join("bg.log");
    let launcher = Command::new(&ssh)
        .arg("-F")
        .arg(sshd.client_config())
        .args(["-fN", "-o", "ExitOnForwardFailure=yes", "-L", &spec, "test"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let status = wait_bounded(launcher, Duration::from_secs(60), "ssh -fN");
    let err = std::fs::read_to_string(&log).unwrap_or_default();
    // The forward is up when -f returns: sshd's banner comes through it.
    let banner = TcpStream::connect(("127.0.0.1", port)).map(|mut s| {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut b = [0u8; 8];
        s.read_exact(&mut b).map(|()| b)
    });
    kill_background(&format!("-L {spec}"));
    assert!(status.success(), "ssh -fN failed ({status}): {err}");
    let banner = banner.expect("forward listening").expect("banner");
    assert_eq!(&banner, b"SSH-2.0-", "{err}");
}

#[test]
fn rsync_scp_and_git_drive_warren_named_ssh() {
    // Pins warren as `ssh` under the real tools' own argument lists
    // (scp's -x -oForwardAgent=no ... -s sftp, rsync's and git's
    // commands). None of them uses -f, so this held before the -f fix too:
    // it guards the name-based dispatch those tools depend on.
    let sshd = Sshd::start();
    let (dir, ssh) = ssh_symlink();
    let config = sshd.client_config();
    let data = common::pattern(300_000, 9);
    let src = dir.path().join("src.bin");
    std::fs::write(&src, &data).unwrap();

    let transport = format!("{} -F {}", ssh.display(), config.display());
    let via_rsync = dir.path().join("via-rsync.bin");
    let out = Command::new("rsync")
        .args(["-a", "-e", &transport])
        .arg(&src)
        .arg(format!("test:{}", via_rsync.display()))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "rsync: {}", text(&out.stderr));
    assert!(
        std::fs::read(&via_rsync).unwrap() == data,
        "rsync copy differs"
    );

    let via_scp = dir.path().join("via-scp.bin");
    let out = Command::new("scp")
        .arg("-S")
        .arg(&ssh)
        .arg("-F")
        .arg(&config)
        .arg(&src)
        .arg(format!("test:{}", via_scp.display()))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "scp -S: {}", text(&out.stderr));
    assert!(std::fs::read(&via_scp).unwrap() == data, "scp copy differs");

    git_clone_over(&ssh, &config, dir.path());
}

fn git(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn git_clone_over(ssh: &Path, config: &Path, dir: &Path) {
    let bare = dir.join("repo.git");
    let work = dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    for args in [
        &["init", "-q", "--bare", bare.to_str().unwrap()][..],
        &["init", "-q", work.to_str().unwrap()][..],
    ] {
        let out = git(dir, args);
        assert!(out.status.success(), "git {args:?}: {}", text(&out.stderr));
    }
    std::fs::write(work.join("file"), "over warren\n").unwrap();
    for args in [
        &["add", "file"][..],
        &["commit", "-q", "-m", "one"][..],
        &["push", "-q", bare.to_str().unwrap(), "HEAD:main"][..],
    ] {
        let out = git(&work, args);
        assert!(out.status.success(), "git {args:?}: {}", text(&out.stderr));
    }
    let clone = dir.join("clone");
    let out = Command::new("git")
        .current_dir(dir)
        .env(
            "GIT_SSH_COMMAND",
            format!("{} -F {}", ssh.display(), config.display()),
        )
        .args(["clone", "-q", "-b", "main"])
        .arg(format!("test:{}", bare.display()))
        .arg(&clone)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "git clone: {}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(clone.join("file")).unwrap(),
        "over warren\n"
    );
}
