//! File transfer against `warren serve` with OpenSSH's own tools: `scp`
//! (SFTP mode, OpenSSH 9's default) both ways and recursive, `sftp -b`
//! batch mode, and `rsync -e ssh` through exec; bytes verified.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]

mod common;
use common::serve::Serve;
use common::{pattern, text};

use std::path::Path;
use std::process::{Command, Stdio};

/// A small tree: files of several sizes, an empty file, a nested directory.
fn make_tree(root: &Path) {
    std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
    std::fs::write(root.join("big.bin"), pattern(3 * 1024 * 1024 + 5, 1)).unwrap();
    std::fs::write(root.join("empty"), b"").unwrap();
    std::fs::write(root.join("sub/small.txt"), b"hello\n").unwrap();
    std::fs::write(root.join("sub/deeper/mid.bin"), pattern(70_000, 2)).unwrap();
}

fn assert_same_tree(a: &Path, b: &Path) {
    for rel in ["big.bin", "empty", "sub/small.txt", "sub/deeper/mid.bin"] {
        let (x, y) = (
            std::fs::read(a.join(rel)).unwrap(),
            std::fs::read(b.join(rel)),
        );
        let y = y.unwrap_or_else(|e| panic!("{rel} missing in {}: {e}", b.display()));
        assert!(x == y, "{rel} differs");
    }
}

fn scp(serve: &Serve, args: &[&str]) -> std::process::Output {
    Command::new("scp")
        .args(serve.client_options(&serve.client_key()))
        .args(["-P", &serve.port().to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn scp_uploads_and_downloads_files_and_trees() {
    let serve = Serve::start();
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    make_tree(&src);
    let remote = work.path().join("remote");
    std::fs::create_dir(&remote).unwrap();

    let file = src.join("big.bin");
    let out = scp(
        &serve,
        &[
            file.to_str().unwrap(),
            &format!("127.0.0.1:{}/one.bin", remote.display()),
        ],
    );
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stderr),
        serve.log()
    );
    assert!(std::fs::read(remote.join("one.bin")).unwrap() == std::fs::read(&file).unwrap());
    assert!(
        serve.log().contains("sftp session"),
        "scp used SFTP: {}",
        serve.log()
    );

    let out = scp(
        &serve,
        &[
            "-r",
            src.to_str().unwrap(),
            &format!("127.0.0.1:{}/tree", remote.display()),
        ],
    );
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stderr),
        serve.log()
    );
    assert_same_tree(&src, &remote.join("tree"));

    let back = work.path().join("back");
    let out = scp(
        &serve,
        &[
            "-r",
            &format!("127.0.0.1:{}/tree", remote.display()),
            back.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stderr),
        serve.log()
    );
    assert_same_tree(&src, &back);

    let out = scp(
        &serve,
        &[
            &format!("127.0.0.1:{}/missing", remote.display()),
            back.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success(), "a missing file fails");
}

#[test]
fn sftp_batch_mode_puts_gets_lists_renames_and_removes() {
    let serve = Serve::start();
    let work = tempfile::tempdir().unwrap();
    let local = work.path().join("up.bin");
    std::fs::write(&local, pattern(1_000_000, 9)).unwrap();
    let remote = work.path().join("r");
    let batch = work.path().join("batch");
    std::fs::write(
        &batch,
        format!(
            "mkdir {r}\ncd {r}\nput {l} a.bin\nrename a.bin b.bin\nls -l\nget b.bin {w}/down.bin\nsymlink b.bin link\nchmod 600 b.bin\nrm link\nmkdir d\nrmdir d\npwd\n",
            r = remote.display(),
            l = local.display(),
            w = work.path().display()
        ),
    )
    .unwrap();
    let out = Command::new("sftp")
        .args(serve.client_options(&serve.client_key()))
        .args(["-P", &serve.port().to_string(), "-b"])
        .arg(&batch)
        .arg("127.0.0.1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let said = text(&out.stdout);
    assert!(
        out.status.success(),
        "{said}\n{}\n{}",
        text(&out.stderr),
        serve.log()
    );
    assert!(said.contains("b.bin"), "ls lists the file: {said}");
    assert!(std::fs::read(work.path().join("down.bin")).unwrap() == std::fs::read(&local).unwrap());
    assert!(!remote.join("a.bin").exists() && remote.join("b.bin").exists());
    assert!(!remote.join("link").exists() && !remote.join("d").exists());
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(remote.join("b.bin"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    assert!(
        said.contains(&format!("Remote working directory: {}", remote.display())),
        "{said}"
    );
}

#[test]
fn rsync_over_ssh_copies_a_tree_through_exec() {
    let serve = Serve::start();
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    make_tree(&src);
    let dst = work.path().join("dst");
    let opts: Vec<String> = serve
        .client_options(&serve.client_key())
        .into_iter()
        .map(|o| format!("'{o}'"))
        .collect();
    let rsh = format!("ssh {} -p {}", opts.join(" "), serve.port());
    let out = Command::new("rsync")
        .args(["-a", "-e", &rsh])
        .arg(format!("{}/", src.display()))
        .arg(format!("127.0.0.1:{}/", dst.display()))
        .stdin(Stdio::null())
        .output()
        .expect("rsync is required (scripts/test installs it)");
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stderr),
        serve.log()
    );
    assert_same_tree(&src, &dst);
    // A second run has nothing to send but still works.
    std::fs::write(src.join("sub/small.txt"), b"changed\n").unwrap();
    let out = Command::new("rsync")
        .args(["-a", "-e", &rsh])
        .arg(format!("{}/", src.display()))
        .arg(format!("127.0.0.1:{}/", dst.display()))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read(dst.join("sub/small.txt")).unwrap(),
        b"changed\n"
    );
}
