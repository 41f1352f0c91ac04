//! `warren sync` end to end against OpenSSH's sshd, with real `rsync` over
//! the same sshd as the oracle: each case runs rsync and warren sync on
//! identical inputs and compares the trees they leave (names, kinds,
//! bytes, modes, modification times in seconds, symlink targets), the
//! exit status, and what each says it changed.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]

mod common;
use common::{text, warren};

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use tempfile::TempDir;
use warren_testkit::Sshd;

struct Fixture {
    work: TempDir,
    sshd: Sshd,
}

impl Fixture {
    fn start() -> Fixture {
        let work = tempfile::Builder::new()
            .prefix("warren-sync-")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        Fixture {
            work,
            sshd: Sshd::start(),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.work.path().join(rel)
    }

    /// `test:` + the absolute path of `rel` (a trailing `/` kept).
    fn remote(&self, rel: &str) -> String {
        let mut p = self.path(rel.trim_end_matches('/')).display().to_string();
        if rel.ends_with('/') {
            p.push('/');
        }
        format!("test:{p}")
    }

    fn rsh(&self) -> String {
        format!("ssh -F {}", self.sshd.client_config().display())
    }

    /// `TOOL ARGS` in the work dir, `-e` naming the test's ssh config.
    fn run(&self, tool: Tool, args: &[&str]) -> Output {
        let mut cmd = match tool {
            Tool::Rsync => Command::new("rsync"),
            Tool::Warren => {
                let mut c = warren();
                c.arg("sync");
                c
            }
        };
        cmd.arg("-e")
            .arg(self.rsh())
            .args(args)
            .current_dir(self.work.path())
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| {
                panic!("{tool:?} could not run ({e}): rsync is installed by scripts/test")
            })
    }

    fn ok(&self, tool: Tool, args: &[&str]) -> Output {
        let out = self.run(tool, args);
        assert!(
            out.status.success(),
            "{tool:?} {args:?} failed ({:?}): {}\n{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        out
    }
}

#[derive(Debug, Clone, Copy)]
enum Tool {
    Rsync,
    Warren,
}

/// One entry of a tree as compared: kind and content, mode, mtime.
#[derive(Debug, PartialEq, Eq)]
enum Entry {
    File {
        data: Vec<u8>,
        mode: u32,
        mtime: i64,
    },
    Dir {
        mode: u32,
        mtime: i64,
    },
    /// Symlink times are not compared: SFTP cannot set them.
    Link(Vec<u8>),
}

fn tree(root: &Path) -> BTreeMap<Vec<u8>, Entry> {
    fn walk(root: &Path, rel: &Path, out: &mut BTreeMap<Vec<u8>, Entry>) {
        let Ok(dir) = std::fs::read_dir(root.join(rel)) else {
            return;
        };
        for e in dir {
            let e = e.unwrap();
            let rel = rel.join(e.file_name());
            let path = root.join(&rel);
            let key = rel.as_os_str().as_bytes().to_vec();
            let m = std::fs::symlink_metadata(&path).unwrap();
            if m.file_type().is_symlink() {
                let to = std::fs::read_link(&path).unwrap();
                out.insert(key, Entry::Link(to.as_os_str().as_bytes().to_vec()));
            } else if m.is_dir() {
                out.insert(
                    key,
                    Entry::Dir {
                        mode: m.mode() & 0o7777,
                        mtime: m.mtime(),
                    },
                );
                walk(root, &rel, out);
            } else {
                out.insert(
                    key,
                    Entry::File {
                        data: std::fs::read(&path).unwrap(),
                        mode: m.mode() & 0o7777,
                        mtime: m.mtime(),
                    },
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, Path::new(""), &mut out);
    out
}

fn write(path: &Path, data: &[u8], mode: u32, mtime: i64) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    set_mtime(path, mtime);
}

fn set_mtime(path: &Path, mtime: i64) {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime as u64);
    let f = std::fs::File::options()
        .write(true)
        .open(path)
        .or_else(|_| std::fs::File::open(path))
        .unwrap();
    f.set_times(std::fs::FileTimes::new().set_modified(t).set_accessed(t))
        .unwrap();
}

/// A project tree: nested directories, modes, old times, a symlink, a
/// node_modules and a .git to exclude, a log file.
fn project(root: &Path) {
    write(
        &root.join("README.md"),
        b"# project\n",
        0o644,
        1_600_000_000,
    );
    write(
        &root.join("bin/run.sh"),
        b"#!/bin/sh\necho run\n",
        0o755,
        1_600_000_100,
    );
    write(
        &root.join("src/main.rs"),
        &vec![b'x'; 70_000],
        0o640,
        1_600_000_200,
    );
    write(
        &root.join("src/deep/er/mod.rs"),
        b"mod er;\n",
        0o600,
        1_600_000_300,
    );
    write(
        &root.join("node_modules/pkg/index.js"),
        b"module.exports = 1\n",
        0o644,
        1_600_000_400,
    );
    write(
        &root.join(".git/HEAD"),
        b"ref: refs/heads/main\n",
        0o644,
        1_600_000_500,
    );
    write(&root.join("debug.log"), b"log line\n", 0o644, 1_600_000_600);
    write(&root.join("empty"), b"", 0o644, 1_600_000_700);
    std::os::unix::fs::symlink("bin/run.sh", root.join("run")).unwrap();
    std::fs::create_dir_all(root.join("emptydir")).unwrap();
    for d in [
        "",
        "bin",
        "src/deep/er",
        "src/deep",
        "src",
        "node_modules/pkg",
        "node_modules",
        ".git",
        "emptydir",
    ] {
        set_mtime(&root.join(d), 1_500_000_000);
    }
}

/// A destination that already holds an older copy: a changed file, a file
/// the source no longer has, a file of the same size and time but other
/// bytes (the quick check keeps it; -c would not).
fn stale_copy(root: &Path) {
    project(root);
    write(
        &root.join("README.md"),
        b"# old project, longer\n",
        0o644,
        1_500_000_000,
    );
    write(
        &root.join("src/gone.rs"),
        b"deleted upstream\n",
        0o644,
        1_600_000_000,
    );
    write(
        &root.join("obsolete/old.txt"),
        b"old\n",
        0o644,
        1_600_000_000,
    );
    write(
        &root.join("bin/run.sh"),
        b"#!/bin/sh\necho RUN\n",
        0o755,
        1_600_000_100,
    );
    // Fixed times for what the writes above touched: the two copies
    // (rsync's, warren's) are made at different moments.
    for d in ["", "src", "bin", "obsolete"] {
        set_mtime(&root.join(d), 1_400_000_000);
    }
}

/// Runs `args` (with `SRC` and `DST` standing for a source and a
/// destination of the test's choosing) through rsync and warren sync on
/// identical inputs, and checks the results are the same tree.
fn same_as_rsync(args: &[&str], src: &str, dst: &str, setup_dst: bool) {
    let f = Fixture::start();
    for tool in ["rsync", "warren"] {
        project(&f.path(&format!("{tool}/src")));
        if setup_dst {
            stale_copy(&f.path(&format!("{tool}/dst")));
        }
    }
    let mut said = Vec::new();
    for (tool, name) in [(Tool::Rsync, "rsync"), (Tool::Warren, "warren")] {
        let resolve = |s: &str| {
            let local = format!("{name}/{}", s.trim_start_matches("test:"));
            if s.starts_with("test:") {
                f.remote(&local)
            } else {
                local
            }
        };
        let (s, d) = (resolve(src), resolve(dst));
        let full: Vec<&str> = args
            .iter()
            .copied()
            .chain([s.as_str(), d.as_str()])
            .collect();
        let out = f.ok(tool, &full);
        said.push(itemized(&out.stdout));
    }
    let (mut want, mut got) = (tree(&f.path("rsync")), tree(&f.path("warren")));
    if !setup_dst && !src.ends_with('/') {
        // The destination directory itself is made by each tool, at its
        // own moment, and is not part of the source: its time is not
        // compared.
        for t in [&mut want, &mut got] {
            if let Some(Entry::Dir { mtime, .. }) = t.get_mut(dst.trim_end_matches('/').as_bytes())
            {
                *mtime = 0;
            }
        }
    }
    let diff = differences(&got, &want);
    assert!(
        diff.is_empty(),
        "warren sync {args:?} {src} {dst} left another tree than rsync:\n{diff}"
    );
    if args.iter().any(|a| a.contains('i')) {
        assert_eq!(said[1], said[0], "itemized changes differ from rsync's");
    }
}

/// What differs between two trees, one line per path (file data by
/// length and a hash, not byte by byte).
fn differences(got: &BTreeMap<Vec<u8>, Entry>, want: &BTreeMap<Vec<u8>, Entry>) -> String {
    let short = |e: Option<&Entry>| match e {
        None => "missing".to_owned(),
        Some(Entry::File { data, mode, mtime }) => {
            let sum = data
                .iter()
                .fold(0u64, |h, &b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
            format!(
                "file len {} sum {sum:x} mode {mode:o} mtime {mtime}",
                data.len()
            )
        }
        Some(Entry::Dir { mode, mtime }) => format!("dir mode {mode:o} mtime {mtime}"),
        Some(Entry::Link(t)) => format!("link -> {}", String::from_utf8_lossy(t)),
    };
    let mut out = String::new();
    let keys: std::collections::BTreeSet<&Vec<u8>> = got.keys().chain(want.keys()).collect();
    for key in keys {
        let (g, w) = (got.get(key), want.get(key));
        if g != w {
            out.push_str(&format!(
                "  {}: warren {} / rsync {}\n",
                String::from_utf8_lossy(key),
                short(g),
                short(w)
            ));
        }
    }
    out
}

/// rsync's `-i` lines, sorted, without its "created directory" line.
fn itemized(stdout: &[u8]) -> Vec<String> {
    let mut v: Vec<String> = text(stdout)
        .lines()
        .filter(|l| l.len() > 12 && l.as_bytes()[11] == b' ')
        // A symlink's own time: rsync sets it, SFTP cannot (a documented
        // difference), so rsync's "only the link's time differs" lines
        // are not compared.
        .filter(|l| !l.starts_with(".L..t......"))
        .map(str::to_owned)
        .collect();
    v.sort();
    v
}

// The field guide's rsync lines, with warren sync in rsync's place.

/// `rsync -avz ./local-dir/ user@remote:/path/to/remote-dir/`: a first
/// copy into a missing directory. (Before `warren sync` existed: no such
/// subcommand.)
#[test]
fn field_guide_avz_first_copy_is_rsyncs_tree() {
    same_as_rsync(&["-az"], "src/", "test:dst/", false);
}

/// The same line onto an older copy: changed files sent, the rest kept.
#[test]
fn field_guide_avz_onto_a_stale_copy_is_rsyncs_tree() {
    same_as_rsync(&["-azi"], "src/", "test:dst/", true);
}

/// `rsync -avz --delete`: extraneous files go.
#[test]
fn field_guide_delete_is_rsyncs_tree() {
    same_as_rsync(&["-azi", "--delete"], "src/", "test:dst/", true);
}

/// `rsync -avz --exclude='node_modules' --exclude='.git' ./project/ ...`
#[test]
fn field_guide_excludes_are_rsyncs() {
    same_as_rsync(
        &[
            "-az",
            "--exclude=node_modules",
            "--exclude=.git",
            "--delete",
        ],
        "src/",
        "test:dst/",
        true,
    );
}

/// `src` without a slash copies the directory itself; pulling works the
/// same way.
#[test]
fn trailing_slash_and_pull_are_rsyncs() {
    same_as_rsync(&["-a"], "src", "dst", false);
    same_as_rsync(&["-ai"], "test:src", "dst/", true);
    same_as_rsync(&["-ai", "--delete"], "test:src/", "dst", true);
}

/// Filters as rsync's: anchored, `**`, directory-only, include before
/// exclude, and exclude-from files.
#[test]
fn filter_rules_are_rsyncs() {
    for rules in [
        vec!["--exclude=/bin", "--exclude=src/**/mod.rs"],
        vec!["--exclude=deep/", "--include=*.rs", "--exclude=*"],
        vec!["--include=*/", "--include=*.rs", "--exclude=*"],
        vec!["--exclude=er", "--exclude=.git/"],
    ] {
        let mut args = vec!["-ai", "--delete"];
        args.extend(rules.iter());
        same_as_rsync(&args, "src/", "test:dst/", true);
    }
}

/// `--exclude-from` reads rules from a file, `#` comments skipped.
#[test]
fn exclude_from_is_rsyncs() {
    let f = Fixture::start();
    let rules = f.path("rules");
    std::fs::write(&rules, b"# comment\n*.log\n/README.md\nnode_modules/\n").unwrap();
    let from = format!("--exclude-from={}", rules.display());
    for tool in ["rsync", "warren"] {
        project(&f.path(&format!("{tool}/src")));
    }
    for (tool, name) in [(Tool::Rsync, "rsync"), (Tool::Warren, "warren")] {
        f.ok(
            tool,
            &[
                "-a",
                &from,
                &format!("{name}/src/"),
                &f.remote(&format!("{name}/dst/")),
            ],
        );
    }
    let got = tree(&f.path("warren/dst"));
    assert_eq!(got, tree(&f.path("rsync/dst")));
    assert!(!got.contains_key(b"debug.log".as_slice()));
    assert!(!got.contains_key(b"README.md".as_slice()));
}

/// `-n` changes nothing, even with --delete, and says what it would do.
#[test]
fn dry_run_changes_nothing() {
    let f = Fixture::start();
    project(&f.path("src"));
    stale_copy(&f.path("dst"));
    let before = tree(&f.path("dst"));
    let out = f.ok(
        Tool::Warren,
        &["-ain", "--delete", "src/", &f.remote("dst/")],
    );
    assert_eq!(tree(&f.path("dst")), before, "-n changed the destination");
    let said = text(&out.stdout);
    assert!(said.contains("*deleting   obsolete/old.txt"), "{said}");
    assert!(said.contains("<f.st...... README.md"), "{said}");
}

/// A re-run with nothing changed sends nothing and says nothing.
#[test]
fn unchanged_rerun_sends_nothing() {
    let f = Fixture::start();
    project(&f.path("src"));
    f.ok(Tool::Warren, &["-a", "src/", &f.remote("dst/")]);
    let out = f.ok(Tool::Warren, &["-ai", "--stats", "src/", &f.remote("dst/")]);
    let said = text(&out.stdout);
    assert!(
        itemized(&out.stdout).is_empty(),
        "an unchanged re-run itemized changes: {said}"
    );
    assert!(
        said.contains("Number of regular files transferred: 0"),
        "{said}"
    );
    assert!(said.contains("Literal data: 0 bytes"), "{said}");
}

/// `--delete` with a source that is missing (a typo) or unreadable
/// refuses before changing anything, with rsync's status 23.
#[test]
fn delete_refuses_when_the_source_is_missing() {
    let f = Fixture::start();
    stale_copy(&f.path("dst"));
    let before = tree(&f.path("dst"));
    let out = f.run(
        Tool::Warren,
        &["-a", "--delete", "srcc/", &f.remote("dst/")],
    );
    assert_eq!(out.status.code(), Some(23), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("nothing was changed"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(tree(&f.path("dst")), before);
    let rsync = f.run(Tool::Rsync, &["-a", "--delete", "srcc/", &f.remote("dst/")]);
    assert_eq!(rsync.status.code(), Some(23), "the oracle's status");
    assert_eq!(tree(&f.path("dst")), before);
}

/// Usage errors are rsync's status 1; two remote operands are refused.
#[test]
fn usage_errors_are_status_1() {
    let f = Fixture::start();
    for args in [
        vec!["--no-such-flag", "a", "b"],
        vec!["-a", "test:/a", "test:/b"],
        vec!["-a", "--bwlimit=fast", "a", "b"],
        vec!["only-one"],
    ] {
        let out = f.run(Tool::Warren, &args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

/// `-e "ssh -i KEY -p PORT"` is read as ssh's flags: a config with no
/// port or key for the host still connects.
#[test]
fn rsh_flags_are_ssh_flags() {
    let f = Fixture::start();
    project(&f.path("src"));
    let config = f.path("bare_config");
    std::fs::write(
        &config,
        format!(
            "Host bare\n  HostName 127.0.0.1\n  UserKnownHostsFile {}\n  BatchMode yes\n  IdentitiesOnly yes\n  IdentityAgent none\n",
            f.sshd.known_hosts().display()
        ),
    )
    .unwrap();
    let rsh = format!(
        "ssh -F {} -i {} -p {}",
        config.display(),
        f.sshd.client_key().display(),
        f.sshd.port()
    );
    let dst = format!("bare:{}/", f.path("dst").display());
    let out = warren()
        .args(["sync", "-a", "-e", &rsh, "src/", &dst])
        .current_dir(f.work.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(tree(&f.path("dst")), tree(&f.path("src")));
}

/// `--partial` keeps what an interrupted transfer wrote and the next run
/// continues it; the result is whole.
#[test]
fn partial_then_resumed() {
    let f = Fixture::start();
    let big: Vec<u8> = (0..40u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    write(&f.path("src/big.bin"), &big, 0o644, 1_600_000_000);
    let dst = f.remote("dst/");
    let mut child = warren()
        .args([
            "sync",
            "-a",
            "--partial",
            "--bwlimit=4M",
            "-e",
            &f.rsh(),
            "src/",
            &dst,
        ])
        .current_dir(f.work.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let partial = f.path("dst/.big.bin.warren-partial");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::fs::metadata(&partial).map_or(0, |m| m.len()) < 24 << 20 {
        assert!(std::time::Instant::now() < deadline, "no partial file grew");
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before it could be stopped"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(partial.exists(), "--partial did not keep the partial file");
    let out = f.ok(Tool::Warren, &["-a", "--partial", "-v", "src/", &dst]);
    assert!(
        text(&out.stderr).contains("resuming at"),
        "the second run did not continue: {}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read(f.path("dst/big.bin")).unwrap(), big);
    assert!(!partial.exists());
}

/// `--watch` keeps the destination in step: a file written after the
/// first sync, in a directory created after it, arrives without another
/// command; a deleted file goes with --delete.
#[test]
fn watch_follows_local_changes() {
    let f = Fixture::start();
    write(&f.path("src/first.txt"), b"first\n", 0o644, 1_600_000_000);
    write(
        &f.path("src/gone.txt"),
        b"to be deleted\n",
        0o644,
        1_600_000_000,
    );
    let mut child = warren()
        .args([
            "sync",
            "-a",
            "--delete",
            "--watch",
            "-e",
            &f.rsh(),
            "src/",
            &f.remote("dst/"),
        ])
        .current_dir(f.work.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let wait_for = |what: &str, cond: &dyn Fn() -> bool, child: &mut std::process::Child| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !cond() {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("warren sync --watch ended ({status}) before {what}");
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    wait_for(
        "the first sync",
        &|| f.path("dst/first.txt").exists(),
        &mut child,
    );
    write(
        &f.path("src/new/deeper/later.txt"),
        b"later\n",
        0o600,
        1_600_000_100,
    );
    std::fs::remove_file(f.path("src/gone.txt")).unwrap();
    wait_for(
        "the change to arrive",
        &|| {
            std::fs::read(f.path("dst/new/deeper/later.txt")).is_ok_and(|d| d == b"later\n")
                && !f.path("dst/gone.txt").exists()
        },
        &mut child,
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let m = std::fs::metadata(f.path("dst/new/deeper/later.txt")).unwrap();
    assert_eq!((m.mode() & 0o777, m.mtime()), (0o600, 1_600_000_100));
}

/// A remote directory of 1,500 entries (many READDIR batches, several
/// asked for at once) is listed whole: every file arrives, once.
#[test]
fn a_large_remote_directory_is_listed_whole() {
    let f = Fixture::start();
    for i in 0..1500 {
        std::fs::create_dir_all(f.path("src")).unwrap();
        std::fs::write(f.path(&format!("src/f{i:04}")), i.to_string()).unwrap();
    }
    f.ok(Tool::Warren, &["-a", &f.remote("src/"), "dst/"]);
    let got = tree(&f.path("dst"));
    assert_eq!(got.len(), 1500);
    assert_eq!(got, tree(&f.path("src")));
}

/// Without -l a symlink is skipped, and a file standing at its name at
/// the destination stays, as with rsync (it was removed as "in the way").
#[test]
fn a_skipped_symlink_leaves_the_destination_alone() {
    let f = Fixture::start();
    for tool in ["rsync", "warren"] {
        write(
            &f.path(&format!("{tool}/src/a")),
            b"a\n",
            0o644,
            1_600_000_000,
        );
        std::os::unix::fs::symlink("a", f.path(&format!("{tool}/src/x"))).unwrap();
        write(
            &f.path(&format!("{tool}/dst/x")),
            b"keep me\n",
            0o644,
            1_600_000_000,
        );
        for d in ["src", "dst"] {
            set_mtime(&f.path(&format!("{tool}/{d}")), 1_500_000_000);
        }
    }
    for (tool, name) in [(Tool::Rsync, "rsync"), (Tool::Warren, "warren")] {
        f.ok(
            tool,
            &[
                "-rt",
                &format!("{name}/src/"),
                &f.remote(&format!("{name}/dst/")),
            ],
        );
    }
    assert_eq!(std::fs::read(f.path("warren/dst/x")).unwrap(), b"keep me\n");
    assert_eq!(tree(&f.path("warren/dst")), tree(&f.path("rsync/dst")));
}
