//! `warren cp` end to end against real peers: OpenSSH's sshd and
//! sftp-server (with `scp` as the oracle), a jump host in network
//! namespaces, an OpenSSH ControlMaster, and `warren serve`. Every test
//! runs the binary as a user would and checks the bytes, names, modes and
//! times that land on disk, the exit status and what is said on stderr.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]

mod common;
use common::serve::Serve;
use common::{text, warren};

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt as _, OsStringExt as _};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

use tempfile::TempDir;
use warren_testkit::{Sshd, Topology, assert_unreachable};

/// sftp-server as Debian installs it.
const SFTP_SERVER: &str = "/usr/lib/openssh/sftp-server";
/// The unprivileged account scripts/test creates (uid and gid 1001 there).
const TEST_USER: &str = "warren-test";
/// How far below a partial file's length `--resume` starts (the engine's
/// RESUME_SLACK: 64 chunks of 255 KiB).
const RESUME_SLACK: u64 = 64 * 255 * 1024;

/// `len` bytes in which every 8-byte word differs from its neighbours and
/// from the same word in another seed: a chunk written at the wrong
/// offset, twice, or not at all changes the bytes (a short-period pattern
/// would hide a shift by a multiple of its period).
fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    let mut i = 0u64;
    while out.len() < len {
        let w = i
            .wrapping_add(seed << 40)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(17);
        out.extend_from_slice(&w.to_le_bytes());
        i += 1;
    }
    out.truncate(len);
    out
}

/// A real sshd and a work directory the test's files live in (local and
/// "remote" alike: the server is on this machine).
struct Fixture {
    work: TempDir,
    sshd: Sshd,
}

impl Fixture {
    /// The stock fixture: `Subsystem sftp` is OpenSSH's sftp-server.
    fn start() -> Fixture {
        let work = workdir();
        let sshd = Sshd::start();
        Fixture { work, sshd }
    }

    /// sftp-server run as `command` instead (a ForceCommand, which sshd
    /// applies to subsystems too); `HOME` in it stands for `home()`.
    fn with_sftp(command: &str) -> Fixture {
        let work = workdir();
        std::fs::create_dir(work.path().join("home")).unwrap();
        let command = command.replace("HOME", &work.path().join("home").display().to_string());
        let sshd = Sshd::builder()
            .config(format!("ForceCommand {command}"))
            .start();
        Fixture { work, sshd }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.work.path().join(rel)
    }

    /// `test:` + the absolute path of `rel` in the work dir.
    fn remote(&self, rel: &str) -> OsString {
        remote("test", &self.path(rel))
    }

    /// `warren cp -F CONFIG ARGS` in the work dir.
    fn cp(&self, args: &[&OsStr]) -> Output {
        run_cp(&self.sshd.client_config(), self.work.path(), args)
    }

    /// Like [`Fixture::cp`], failing the test unless it exits 0.
    fn cp_ok(&self, args: &[&OsStr]) -> Output {
        let out = self.cp(args);
        assert!(
            out.status.success(),
            "warren cp {args:?} failed ({:?}): {}\nsshd log:\n{}",
            out.status,
            text(&out.stderr),
            self.sshd.log()
        );
        out
    }

    /// OpenSSH's scp with the same config.
    fn scp(&self, args: &[&OsStr]) -> Output {
        let out = Command::new("scp")
            .arg("-q")
            .arg("-F")
            .arg(self.sshd.client_config())
            .args(args)
            .current_dir(self.work.path())
            .stdin(Stdio::null())
            .output()
            .expect("scp is required (openssh-client)");
        assert!(out.status.success(), "scp {args:?}: {}", text(&out.stderr));
        out
    }

    /// Logins the sshd accepted so far.
    fn logins(&self) -> usize {
        self.sshd.log().matches("Accepted publickey").count()
    }
}

/// A work dir others may traverse (sftp-server may run as another user).
fn workdir() -> TempDir {
    let work = tempfile::Builder::new()
        .prefix("warren-cp-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    work
}

fn remote(host: &str, path: &Path) -> OsString {
    let mut s = OsString::from(format!("{host}:"));
    s.push(path.as_os_str());
    s
}

fn run_cp(config: &Path, cwd: &Path, args: &[&OsStr]) -> Output {
    warren()
        .arg("cp")
        .arg("-F")
        .arg(config)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

/// What a tree holds, by relative path: file bytes, a directory, or a
/// symlink's target (never followed).
#[derive(Debug, PartialEq, Eq)]
enum Entry {
    File(Vec<u8>),
    Dir,
    Link(Vec<u8>),
}

fn tree(root: &Path) -> BTreeMap<Vec<u8>, Entry> {
    fn walk(root: &Path, rel: &Path, out: &mut BTreeMap<Vec<u8>, Entry>) {
        for e in std::fs::read_dir(root.join(rel)).unwrap() {
            let e = e.unwrap();
            let rel = rel.join(e.file_name());
            let path = root.join(&rel);
            let key = rel.as_os_str().as_bytes().to_vec();
            let t = std::fs::symlink_metadata(&path).unwrap().file_type();
            if t.is_symlink() {
                let to = std::fs::read_link(&path).unwrap();
                out.insert(key, Entry::Link(to.as_os_str().as_bytes().to_vec()));
            } else if t.is_dir() {
                out.insert(key, Entry::Dir);
                walk(root, &rel, out);
            } else {
                out.insert(key, Entry::File(std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, Path::new(""), &mut out);
    out
}

/// Names in a directory, as bytes, sorted.
fn names(dir: &Path) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_vec())
        .collect();
    v.sort();
    v
}

fn no_partial_files(dir: &Path) {
    for name in names(dir) {
        assert!(
            !name.ends_with(b".warren-partial"),
            "a partial file was left in {}: {}",
            dir.display(),
            String::from_utf8_lossy(&name)
        );
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().mode() & 0o7777
}

fn mtime(p: &Path) -> i64 {
    std::fs::metadata(p).unwrap().mtime()
}

/// The bytes the summary line says were copied ("copied N files, 71.6 MiB
/// in ..."), to within its rounding.
fn summary_bytes(stderr: &str) -> f64 {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("copied "))
        .unwrap_or_else(|| panic!("no summary line in: {stderr}"));
    let amount = line.split(", ").nth(1).unwrap_or("");
    let mut words = amount.split_whitespace();
    let n: f64 = words.next().unwrap_or("").parse().unwrap();
    let unit = match words.next() {
        Some("B") => 1.0,
        Some("KiB") => 1024.0,
        Some("MiB") => 1024.0 * 1024.0,
        Some("GiB") => 1024.0 * 1024.0 * 1024.0,
        other => panic!("unit {other:?} in {line}"),
    };
    n * unit
}

/// Waits, at most `limit`, until `done` holds.
fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out ({limit:?}) waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_file_up_and_down_lands_where_and_as_scp_puts_it() {
    // Catches: chunks lost, repeated or written at the wrong offset; a
    // target directory taken as a file name (or the reverse); a mode or a
    // partial file left that scp would not leave.
    let fx = Fixture::start();
    let src = fx.path("src.bin");
    std::fs::write(&src, data(3 * 1024 * 1024 + 4099, 1)).unwrap();
    std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o604)).unwrap();
    for d in ["up-w", "up-s", "down-w", "down-s"] {
        std::fs::create_dir(fx.path(d)).unwrap();
    }
    // Into a directory, and to a new name.
    for (dir, tool) in [("up-w", "warren"), ("up-s", "scp")] {
        let into = fx.remote(&format!("{dir}/"));
        let named = fx.remote(&format!("{dir}/named.bin"));
        for target in [&into, &named] {
            let args = [src.as_os_str(), target.as_os_str()];
            if tool == "warren" {
                fx.cp_ok(&args);
            } else {
                fx.scp(&args);
            }
        }
    }
    for (dir, tool) in [("down-w", "warren"), ("down-s", "scp")] {
        let from = fx.remote("up-w/src.bin");
        let into = fx.path(dir);
        let named = fx.path(&format!("{dir}/named.bin"));
        for target in [&into, &named] {
            let args = [from.as_os_str(), target.as_os_str()];
            if tool == "warren" {
                fx.cp_ok(&args);
            } else {
                fx.scp(&args);
            }
        }
    }
    let want = std::fs::read(&src).unwrap();
    for (ours, theirs) in [("up-w", "up-s"), ("down-w", "down-s")] {
        assert_eq!(names(&fx.path(ours)), names(&fx.path(theirs)), "{ours}");
        for name in ["src.bin", "named.bin"] {
            let (a, b) = (
                fx.path(&format!("{ours}/{name}")),
                fx.path(&format!("{theirs}/{name}")),
            );
            assert!(
                std::fs::read(&a).unwrap() == want,
                "{} differs",
                a.display()
            );
            assert!(
                std::fs::read(&b).unwrap() == want,
                "scp's {} differs",
                b.display()
            );
            assert_eq!(
                mode(&a),
                mode(&b),
                "{} has another mode than scp's",
                a.display()
            );
        }
        no_partial_files(&fx.path(ours));
    }
}

#[test]
fn recursive_copies_keep_empty_dirs_empty_files_and_symlinks_both_ways() {
    // Catches: an empty directory or a 0-byte file dropped, a symlink
    // followed (or its target rewritten) instead of copied as a link, a
    // nested level lost.
    let fx = Fixture::start();
    let src = fx.path("src");
    std::fs::create_dir_all(src.join("a/b/c")).unwrap();
    std::fs::create_dir_all(src.join("empty")).unwrap();
    std::fs::write(src.join("a/b/c/deep.bin"), data(300_000, 2)).unwrap();
    std::fs::write(src.join("a/top.txt"), b"top\n").unwrap();
    std::fs::write(src.join("zero"), b"").unwrap();
    std::os::unix::fs::symlink("a/b/c/deep.bin", src.join("link")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/dangling", src.join("a/dangling")).unwrap();
    let want = tree(&src);

    let out = fx.cp_ok(&[os("-r"), src.as_os_str(), &fx.remote("up")]);
    assert_eq!(tree(&fx.path("up")), want, "upload: {}", text(&out.stderr));
    let out = fx.cp_ok(&[os("-r"), &fx.remote("up"), fx.path("down").as_os_str()]);
    assert_eq!(
        tree(&fx.path("down")),
        want,
        "download: {}",
        text(&out.stderr)
    );
    // A second run copies into the now existing directory, as scp does.
    fx.cp_ok(&[os("-r"), &fx.remote("up"), fx.path("down").as_os_str()]);
    assert_eq!(tree(&fx.path("down/up")), want);
    no_partial_files(&fx.path("up/a/b/c"));
    no_partial_files(&fx.path("down/a/b/c"));
}

#[test]
fn preserve_keeps_modes_and_times_and_without_it_times_are_now() {
    // Catches: -p not setting mtime (remotely by FSETSTAT, locally after
    // the rename), a directory's mtime changed by the files written into
    // it after it was set, modes lost; and times copied without -p.
    let fx = Fixture::start();
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(981_173_106); // 2001-02-03
    let src = fx.path("src");
    std::fs::create_dir(&src).unwrap();
    for (name, m) in [("rw-r", 0o640), ("exec", 0o755)] {
        let p = src.join(name);
        std::fs::write(&p, data(5000, 3)).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(m)).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o750)).unwrap();
    std::fs::File::open(&src)
        .unwrap()
        .set_modified(old)
        .unwrap();

    let a = src.join("rw-r");
    let b = src.join("exec");
    std::fs::create_dir(fx.path("up")).unwrap();
    std::fs::create_dir(fx.path("down")).unwrap();
    fx.cp_ok(&[os("-p"), a.as_os_str(), b.as_os_str(), &fx.remote("up/")]);
    fx.cp_ok(&[
        os("-p"),
        &fx.remote("up/rw-r"),
        &fx.remote("up/exec"),
        fx.path("down").as_os_str(),
    ]);
    fx.cp_ok(&[os("-rp"), src.as_os_str(), &fx.remote("tree-up")]);
    fx.cp_ok(&[
        os("-rp"),
        &fx.remote("tree-up"),
        fx.path("tree-down").as_os_str(),
    ]);
    for dir in ["up", "down", "tree-up", "tree-down"] {
        for (name, m) in [("rw-r", 0o640), ("exec", 0o755)] {
            let p = fx.path(&format!("{dir}/{name}"));
            assert_eq!(mode(&p), m, "{}", p.display());
            assert_eq!(mtime(&p), 981_173_106, "{}", p.display());
        }
    }
    for dir in ["tree-up", "tree-down"] {
        let p = fx.path(dir);
        assert_eq!(mode(&p), 0o750, "{}", p.display());
        assert_eq!(mtime(&p), 981_173_106, "{}", p.display());
    }

    // Without -p: the mode still comes from the source (as scp), the
    // times are the copy's.
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    fx.cp_ok(&[a.as_os_str(), &fx.remote("plain-up")]);
    fx.cp_ok(&[&fx.remote("up/exec"), fx.path("plain-down").as_os_str()]);
    for (name, m) in [("plain-up", 0o640), ("plain-down", 0o755)] {
        let p = fx.path(name);
        assert_eq!(mode(&p), m, "{}", p.display());
        let t = mtime(&p);
        assert!(
            (now - 600..=now + 600).contains(&t),
            "{}: mtime {t}, now {now}",
            p.display()
        );
    }
}

#[test]
fn odd_names_round_trip_byte_for_byte() {
    // Catches: names mangled through UTF-8 (lossy conversion of 0xff), a
    // space split or quoted, `-x` read as an option, a relative remote
    // path not taken from the remote home.
    let fx = Fixture::with_sftp(&format!("{SFTP_SERVER} -d HOME"));
    let home = fx.path("home");
    let local = fx.path("local");
    std::fs::create_dir(&local).unwrap();
    let odd: Vec<Vec<u8>> = vec![
        b"with space".to_vec(),
        "ünïcödé ☃".as_bytes().to_vec(),
        b"-x".to_vec(),
        b"bad\xffname".to_vec(),
    ];
    for (i, name) in odd.iter().enumerate() {
        std::fs::write(
            local.join(OsStr::from_bytes(name)),
            data(1000 + i, i as u64),
        )
        .unwrap();
    }
    // One at a time, each with the odd name on both sides: `./NAME` and
    // `test:NAME` (relative: the remote home).
    for name in &odd {
        let mut from = OsString::from("./local/");
        from.push(OsStr::from_bytes(name));
        let mut to = OsString::from("test:");
        to.push(OsStr::from_bytes(name));
        fx.cp_ok(&[&from, &to]);
    }
    let mut want = odd.clone();
    want.sort();
    assert_eq!(names(&home), want);
    // All at once back, into a directory.
    let back = fx.path("back");
    std::fs::create_dir(&back).unwrap();
    let sources: Vec<OsString> = odd
        .iter()
        .map(|n| {
            let mut s = OsString::from("test:");
            s.push(OsStr::from_bytes(n));
            s
        })
        .collect();
    let mut args: Vec<&OsStr> = sources.iter().map(OsString::as_os_str).collect();
    args.push(back.as_os_str());
    fx.cp_ok(&args);
    assert_eq!(names(&back), want);
    for name in &odd {
        let n = OsStr::from_bytes(name);
        assert!(
            std::fs::read(back.join(n)).unwrap() == std::fs::read(local.join(n)).unwrap(),
            "{n:?} differs"
        );
    }
}

#[test]
fn a_missing_source_among_several_fails_alone_and_is_named_once() {
    // Catches: one failure stopping the others, exit 0 after a failure,
    // the error printed twice (as it happens and again at the end).
    let fx = Fixture::start();
    std::fs::write(fx.path("a"), b"aaa").unwrap();
    std::fs::write(fx.path("b"), b"bbb").unwrap();
    std::fs::create_dir(fx.path("up")).unwrap();
    std::fs::create_dir(fx.path("down")).unwrap();
    let up = fx.cp(&[os("a"), os("no-such-source"), os("b"), &fx.remote("up/")]);
    let down = fx.cp(&[
        &fx.remote("a"),
        &fx.remote("no-such-source"),
        &fx.remote("b"),
        fx.path("down").as_os_str(),
    ]);
    for (what, out, dir) in [("upload", up, "up"), ("download", down, "down")] {
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{what}: {err}");
        assert_eq!(
            names(&fx.path(dir)),
            [b"a".to_vec(), b"b".to_vec()],
            "{what}"
        );
        assert_eq!(std::fs::read(fx.path(&format!("{dir}/b"))).unwrap(), b"bbb");
        assert_eq!(err.matches("no-such-source").count(), 1, "{what}: {err}");
        assert!(
            err.lines()
                .any(|l| l.starts_with("warren cp: ") && l.contains("no-such-source")),
            "{what}: {err}"
        );
        assert!(
            err.contains("copied 2 files") && err.contains("1 failed"),
            "{what}: {err}"
        );
    }
}

#[test]
fn two_sources_with_one_name_never_mix_in_the_target() {
    // Catches: `cp one/f two/f dir/` copying both at once through the same
    // `.f.warren-partial`, which left a mix of the two files (matching
    // neither) at dir/f and a baffling "no such file" for the loser.
    let fx = Fixture::start();
    for (dir, seed) in [("one", 13), ("two", 14)] {
        std::fs::create_dir(fx.path(dir)).unwrap();
        std::fs::write(fx.path(&format!("{dir}/f")), data(12 * 1024 * 1024, seed)).unwrap();
    }
    std::fs::create_dir(fx.path("up")).unwrap();
    std::fs::create_dir(fx.path("down")).unwrap();
    let up = fx.cp(&[os("one/f"), os("two/f"), &fx.remote("up")]);
    let down = fx.cp(&[
        &fx.remote("one/f"),
        &fx.remote("two/f"),
        fx.path("down").as_os_str(),
    ]);
    let first = std::fs::read(fx.path("one/f")).unwrap();
    for (what, out, dir) in [("upload", up, "up"), ("download", down, "down")] {
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{what}: {err}");
        assert!(
            std::fs::read(fx.path(&format!("{dir}/f"))).unwrap() == first,
            "{what}: {dir}/f is not the first source: {err}"
        );
        assert_eq!(names(&fx.path(dir)), [b"f".to_vec()], "{what}");
        let line = err.lines().next().unwrap_or("");
        assert!(
            line.starts_with("warren cp: ") && line.contains("two/f: not copied"),
            "{what}: {err}"
        );
        assert!(
            err.contains("copied 1 file") && err.contains("1 failed"),
            "{what}: {err}"
        );
    }
}

/// The unprivileged account's uid and gid; fails (does not skip) without
/// it: root ignores directory modes, so a read-only target needs it.
fn test_account() -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let out = Command::new("id").args([flag, TEST_USER]).output().unwrap();
        assert!(
            out.status.success(),
            "account {TEST_USER} missing: scripts/test creates it (useradd); \
             this test runs sftp-server and warren as it because root ignores \
             directory modes"
        );
        text(&out.stdout).trim().parse().unwrap()
    };
    (id("-u"), id("-g"))
}

fn setpriv(uid: u32, gid: u32) -> String {
    format!("setpriv --reuid={uid} --regid={gid} --clear-groups")
}

#[test]
fn a_read_only_target_directory_fails_with_its_path_and_no_partial_file() {
    // Catches: a permission error without the path or the cause, exit 0,
    // a `.NAME.warren-partial` left behind. Root ignores modes, so the
    // writer is the unprivileged account: sftp-server runs as it
    // (setpriv in a ForceCommand) for the upload, warren itself for the
    // download.
    let (uid, gid) = test_account();
    let fx = Fixture::with_sftp(&format!("{} {SFTP_SERVER} -d HOME", setpriv(uid, gid)));
    let src = fx.path("src");
    std::fs::write(&src, data(600_000, 4)).unwrap();
    std::fs::create_dir_all(fx.path("tree/sub")).unwrap();
    std::fs::write(fx.path("tree/sub/f"), b"f").unwrap();
    let ro = fx.path("ro");
    std::fs::create_dir(&ro).unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();

    for args in [
        vec![src.as_os_str().to_owned(), fx.remote("ro/")],
        vec![src.as_os_str().to_owned(), fx.remote("ro/named")],
        vec![
            OsString::from("-r"),
            fx.path("tree").into(),
            fx.remote("ro"),
        ],
    ] {
        let refs: Vec<&OsStr> = args.iter().map(OsString::as_os_str).collect();
        let out = fx.cp(&refs);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "upload {args:?}: {err}");
        let line = err
            .lines()
            .find(|l| l.starts_with("warren cp: "))
            .unwrap_or_else(|| panic!("no error line: {err}"));
        assert!(
            line.contains(&ro.display().to_string()) && line.contains("ermission denied"),
            "upload {args:?}: {err}"
        );
        assert!(
            names(&ro).is_empty(),
            "upload {args:?} left {:?}",
            names(&ro)
        );
    }

    // The download: warren as the account, into a read-only local
    // directory; its key, known_hosts and config copied where it can read
    // them.
    let mine = fx.path("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::copy(fx.sshd.client_key(), mine.join("id")).unwrap();
    std::fs::copy(fx.sshd.known_hosts(), mine.join("known_hosts")).unwrap();
    let config = std::fs::read_to_string(fx.sshd.client_config())
        .unwrap()
        .replace(
            &fx.sshd.client_key().display().to_string(),
            &mine.join("id").display().to_string(),
        )
        .replace(
            &fx.sshd.known_hosts().display().to_string(),
            &mine.join("known_hosts").display().to_string(),
        );
    std::fs::write(mine.join("config"), config).unwrap();
    let chown = Command::new("chown")
        .args(["-R", &format!("{uid}:{gid}")])
        .arg(&mine)
        .status()
        .unwrap();
    assert!(chown.success());
    let out = Command::new("setpriv")
        .args([
            &format!("--reuid={uid}"),
            &format!("--regid={gid}"),
            "--clear-groups",
        ])
        .arg(env!("CARGO_BIN_EXE_warren"))
        .arg("cp")
        .arg("-F")
        .arg(mine.join("config"))
        .arg(fx.remote("src"))
        .arg(&ro)
        .env("HOME", &mine)
        .current_dir(fx.work.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "download: {err}");
    assert!(
        err.contains(&format!(
            "warren cp: {}/src: Permission denied",
            ro.display()
        )),
        "download: {err}"
    );
    assert!(names(&ro).is_empty(), "download left {:?}", names(&ro));
}

#[test]
fn a_read_only_file_uploads_for_an_unprivileged_account() {
    // Catches: the temporary file created with the source's mode 0444, so
    // the second lane's OPEN of it (and --resume's) was refused for anyone
    // but root ("permission denied"), and the 0-byte partial file left.
    let (uid, gid) = test_account();
    let fx = Fixture::with_sftp(&format!("{} {SFTP_SERVER} -d HOME", setpriv(uid, gid)));
    let src = fx.path("ro.bin");
    // Over 16 MiB: two lanes for the file.
    std::fs::write(&src, data(17 * 1024 * 1024, 15)).unwrap();
    std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o444)).unwrap();
    let theirs = fx.path("home");
    let chown = Command::new("chown")
        .arg(format!("{uid}:{gid}"))
        .arg(&theirs)
        .status()
        .unwrap();
    assert!(chown.success());
    for (args, name) in [
        (vec![os("ro.bin"), os("test:")], "ro.bin"),
        (
            vec![os("-p"), os("ro.bin"), os("test:kept.bin")],
            "kept.bin",
        ),
    ] {
        fx.cp_ok(&args);
        let p = theirs.join(name);
        assert!(
            std::fs::read(&p).unwrap() == std::fs::read(&src).unwrap(),
            "{args:?}"
        );
        assert_eq!(mode(&p), 0o444, "{args:?}");
        assert_eq!(std::fs::metadata(&p).unwrap().uid(), uid);
    }
    no_partial_files(&theirs);
}

#[test]
fn several_sources_need_a_directory_target() {
    // Catches: several sources written one over another into one file,
    // a target created, exit 0, or an unclear message.
    let fx = Fixture::start();
    std::fs::write(fx.path("a"), b"aaa").unwrap();
    std::fs::write(fx.path("b"), b"bbb").unwrap();
    std::fs::write(fx.path("file"), b"untouched").unwrap();
    let cases: Vec<(Vec<OsString>, &str)> = vec![
        (vec!["a".into(), "b".into(), fx.remote("file")], "file"),
        (
            vec!["a".into(), "b".into(), fx.remote("nothing")],
            "nothing",
        ),
        (vec![fx.remote("a"), fx.remote("b"), "file".into()], "file"),
        (
            vec![fx.remote("a"), fx.remote("b"), "nothing".into()],
            "nothing",
        ),
    ];
    for (args, target) in cases {
        let refs: Vec<&OsStr> = args.iter().map(OsString::as_os_str).collect();
        let out = fx.cp(&refs);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        let line = err.lines().next().unwrap_or("");
        assert!(
            line.starts_with("warren cp: ")
                && line.contains(target)
                && line.contains("several sources need a directory"),
            "{args:?}: {err}"
        );
        assert_eq!(std::fs::read(fx.path("file")).unwrap(), b"untouched");
        assert!(!fx.path("nothing").exists(), "{args:?} created the target");
    }
}

/// Starts `warren cp -F CONFIG -l KBIT ARGS` in the work dir, stderr
/// piped.
fn spawn_cp(fx: &Fixture, kbit: &str, args: &[&OsStr]) -> std::process::Child {
    warren()
        .arg("cp")
        .arg("-F")
        .arg(fx.sshd.client_config())
        .args(["-l", kbit])
        .args(args)
        .current_dir(fx.work.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits (at most 60 s) until `partial` holds more than `bytes`, failing
/// if `child` ends first.
fn wait_for_growth(child: &mut std::process::Child, partial: &Path, bytes: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let len = std::fs::metadata(partial).map_or(0, |m| m.len());
        if len > bytes {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "warren cp ended ({status}) before {} grew past {bytes} bytes (it had {len}): \
                 too fast for -l, or it failed",
                partial.display()
            );
        }
        assert!(
            Instant::now() < deadline,
            "{} did not grow past {bytes} bytes in 60 s (it has {len})",
            partial.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Starts `warren cp -l 200000 ARGS` (25 MB/s) and SIGKILLs it once
/// `partial` holds more than 40 MiB; waits until `partial` stops growing.
fn kill_mid_copy(fx: &Fixture, args: &[&OsStr], partial: &Path) {
    let mut child = spawn_cp(fx, "200000", args);
    wait_for_growth(&mut child, partial, 40 << 20);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // The server may still write what it had received.
    let mut last = u64::MAX;
    wait_for(
        "the partial file to stop growing",
        Duration::from_secs(10),
        || {
            std::thread::sleep(Duration::from_millis(150));
            let len = std::fs::metadata(partial).unwrap().len();
            std::mem::replace(&mut last, len) == len
        },
    );
}

#[test]
fn kill_9_mid_copy_leaves_the_old_target_and_resume_sends_only_the_rest() {
    // Catches: the target name holding a partial file after a crash (no
    // temp-then-rename), --resume starting over or resuming from a point
    // not yet written (holes would make the result differ), the summary
    // counting bytes not sent.
    let fx = Fixture::start();
    let size = 96 << 20;
    let src = fx.path("big.src");
    std::fs::write(&src, data(size, 5)).unwrap();
    std::fs::write(fx.path("big.up"), b"old upload target").unwrap();
    std::fs::write(fx.path("big.down"), b"old download target").unwrap();
    let upload = [src.as_os_str().to_owned(), fx.remote("big.up")];
    let download = [fx.remote("big.src"), fx.path("big.down").into_os_string()];
    for (what, args, target) in [
        ("upload", upload, "big.up"),
        ("download", download, "big.down"),
    ] {
        let args: Vec<&OsStr> = args.iter().map(OsString::as_os_str).collect();
        let partial = fx.path(&format!(".{target}.warren-partial"));
        kill_mid_copy(&fx, &args, &partial);
        let old = format!("old {what} target");
        assert_eq!(
            std::fs::read(fx.path(target)).unwrap(),
            old.as_bytes(),
            "{what}: the target changed before the copy was whole"
        );
        let had = std::fs::metadata(&partial).unwrap().len();

        let mut resume = vec![os("--resume")];
        resume.extend(&args);
        let out = fx.cp_ok(&resume);
        let err = text(&out.stderr);
        assert!(
            std::fs::read(fx.path(target)).unwrap() == std::fs::read(&src).unwrap(),
            "{what}: the resumed copy differs from the source"
        );
        assert!(!partial.exists(), "{what}: the partial file is still there");
        let at: u64 = err
            .split("resuming at ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{what}: no \"resuming at N\": {err}"));
        assert_eq!(at, had - RESUME_SLACK, "{what}: {err}");
        let sent = summary_bytes(&err);
        let rest = (size as u64 - at) as f64;
        // The line rounds to 0.1 MiB.
        assert!(
            (sent - rest).abs() <= 0.06 * 1024.0 * 1024.0,
            "{what}: the summary says {sent} bytes were sent, {rest} remained: {err}"
        );
    }
}

#[test]
fn a_failure_in_the_middle_of_a_file_names_the_file() {
    // Catches: an error met while moving a chunk printed without the file
    // ("warren cp: writing: the SFTP session ended ..."), a partial file
    // left on the side that still works, or exit 0.
    let fx = Fixture::start();
    let src = fx.path("shrinks");
    std::fs::write(&src, data(8 * 1024 * 1024, 16)).unwrap();
    // The source shrinks while it is uploaded.
    let mut child = spawn_cp(&fx, "50000", &[os("shrinks"), &fx.remote("up")]);
    wait_for_growth(&mut child, &fx.path(".up.warren-partial"), 1 << 20);
    std::fs::File::options()
        .write(true)
        .open(&src)
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.lines()
            .next()
            .is_some_and(|l| l.starts_with("warren cp: shrinks: the source ended at ")),
        "{err}"
    );
    assert!(!fx.path("up").exists(), "{err}");

    // The connection is lost while a file is downloaded.
    std::fs::write(fx.path("whole"), data(8 * 1024 * 1024, 17)).unwrap();
    let down = fx.path("down");
    let mut child = spawn_cp(&fx, "50000", &[&fx.remote("whole"), down.as_os_str()]);
    wait_for_growth(&mut child, &fx.path(".down.warren-partial"), 1 << 20);
    assert!(fx.sshd.kill_sessions() > 0);
    let out = child.wait_with_output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let line = err.lines().next().unwrap_or("");
    assert!(
        line.starts_with(&format!(
            "warren cp: {}: reading: ",
            fx.remote("whole").to_string_lossy()
        )),
        "{err}"
    );
    assert!(!down.exists(), "{err}");
    no_partial_files(fx.work.path());
}

#[test]
fn a_lost_connection_under_a_rate_limit_ends_the_copy_promptly() {
    // Catches: -l booking every chunk of every file in flight ahead of
    // time, so that after the connection was lost warren cp slept out the
    // whole job's budget (here ~24 s at 1 MB/s) before it reported and
    // exited.
    let fx = Fixture::start();
    let src = fx.path("many");
    std::fs::create_dir(&src).unwrap();
    for i in 0..6 {
        std::fs::write(src.join(format!("f{i}")), data(4 * 1024 * 1024, 20 + i)).unwrap();
    }
    let up = fx.path("up");
    let mut child = spawn_cp(&fx, "8000", &[os("-r"), os("many"), &fx.remote("up")]);
    let written = || -> u64 {
        std::fs::read_dir(&up).map_or(0, |d| {
            d.flatten()
                .map(|e| e.metadata().map_or(0, |m| m.len()))
                .sum()
        })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while written() < 256 * 1024 {
        assert!(child.try_wait().unwrap().is_none(), "warren cp ended early");
        assert!(Instant::now() < deadline, "nothing was written in 60 s");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(fx.sshd.kill_sessions() > 0);
    let lost = Instant::now();
    let out = child.wait_with_output().unwrap();
    let took = lost.elapsed();
    let err = text(&out.stderr);
    assert!(
        took < Duration::from_secs(10),
        "it took {took:?} to give up: {err}"
    );
    assert_eq!(out.status.code(), Some(1), "{err}");
    // The lost session is said once (not once per file in flight), and
    // every file counts as failed.
    assert_eq!(
        err.matches(": writing: the SFTP session ended").count(),
        1,
        "{err}"
    );
    assert!(err.contains("; stopping"), "{err}");
    assert!(err.contains(&format!("test:{}/f", up.display())), "{err}");
    assert!(err.contains("6 failed"), "{err}");
}

#[test]
fn remote_to_remote_through_this_machine() {
    // Catches: a second host alias not connected (or both operands sent
    // to the first host), bytes lost between the two sessions.
    let fx = Fixture::start();
    let config = std::fs::read_to_string(fx.sshd.client_config()).unwrap();
    std::fs::write(
        fx.sshd.client_config(),
        format!(
            "{config}\n{}",
            config.replacen("Host test", "Host other", 1)
        ),
    )
    .unwrap();
    std::fs::write(fx.path("src"), data(2 * 1024 * 1024 + 17, 6)).unwrap();
    std::fs::create_dir_all(fx.path("tree/d/e")).unwrap();
    std::fs::write(fx.path("tree/d/e/f"), data(70_000, 7)).unwrap();
    std::os::unix::fs::symlink("d/e/f", fx.path("tree/l")).unwrap();
    let before = fx.logins();
    fx.cp_ok(&[&fx.remote("src"), &remote("other", &fx.path("two-hosts"))]);
    assert_eq!(fx.logins() - before, 2, "one login per host alias");
    fx.cp_ok(&[&fx.remote("src"), &fx.remote("one-host")]);
    fx.cp_ok(&[
        os("-r"),
        &fx.remote("tree"),
        &remote("other", &fx.path("tree2")),
    ]);
    let want = std::fs::read(fx.path("src")).unwrap();
    for name in ["two-hosts", "one-host"] {
        assert!(
            std::fs::read(fx.path(name)).unwrap() == want,
            "{name} differs"
        );
    }
    assert_eq!(tree(&fx.path("tree2")), tree(&fx.path("tree")));
}

#[test]
fn jump_host_reaches_a_target_only_the_bastion_can_reach() {
    // Catches: -J ignored by cp (the direct connection fails: the target
    // is in a namespace only the bastion routes to), or SFTP not opened
    // over the jumped session.
    let topo = Topology::with_bastions(1);
    assert_unreachable(topo.target().ssh_addr());
    let work = workdir();
    let src = work.path().join("src");
    std::fs::write(&src, data(1024 * 1024 + 3, 8)).unwrap();
    let config = topo.client_config();
    // Namespaces share the filesystem: the target writes into `work`.
    let up = remote("target", &work.path().join("up"));
    let out = run_cp(
        &config,
        work.path(),
        &[os("-J"), os("bastion1"), src.as_os_str(), &up],
    );
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stderr),
        topo.logs()
    );
    let down = work.path().join("down");
    let out = run_cp(
        &config,
        work.path(),
        &[os("-J"), os("bastion1"), &up, down.as_os_str()],
    );
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stderr),
        topo.logs()
    );
    let want = std::fs::read(&src).unwrap();
    assert!(std::fs::read(work.path().join("up")).unwrap() == want);
    assert!(std::fs::read(&down).unwrap() == want);
    // Without the jump the target cannot be reached: exit 255.
    let out = run_cp(
        &config,
        work.path(),
        &[os("-o"), os("ConnectTimeout=3"), src.as_os_str(), &up],
    );
    assert_eq!(out.status.code(), Some(255), "{}", text(&out.stderr));
}

/// An OpenSSH master (`ssh -M -S CTL -fN test`), stopped on drop.
struct Master {
    ctl: PathBuf,
    config: PathBuf,
}

impl Drop for Master {
    fn drop(&mut self) {
        let _ = Command::new("ssh")
            .arg("-F")
            .arg(&self.config)
            .arg("-S")
            .arg(&self.ctl)
            .args(["-O", "exit", "test"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn a_control_master_carries_the_copy_without_a_new_login() {
    // Catches: ControlPath ignored (a second login), or SFTP through the
    // master failing (and quietly falling back to a new connection).
    let fx = Fixture::start();
    let ctl = fx.path("ctl");
    let out = Command::new("ssh")
        .arg("-F")
        .arg(fx.sshd.client_config())
        .arg("-S")
        .arg(&ctl)
        .args(["-M", "-fN", "test"])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(out.status.success(), "ssh -M: {}", text(&out.stderr));
    let _master = Master {
        ctl: ctl.clone(),
        config: fx.sshd.client_config(),
    };
    wait_for("the control socket", Duration::from_secs(15), || {
        ctl.exists()
    });
    assert_eq!(fx.logins(), 1);
    // Large enough (8 MiB and more) for more than one SFTP session.
    let src = fx.path("src");
    std::fs::write(&src, data(9 * 1024 * 1024, 9)).unwrap();
    let path = format!("ControlPath={}", ctl.display());
    let out = fx.cp_ok(&[
        os("-vv"),
        os("-o"),
        os(&path),
        src.as_os_str(),
        &fx.remote("up"),
    ]);
    let err = text(&out.stderr);
    assert!(err.contains("SFTP through the ControlMaster"), "{err}");
    let out = fx.cp_ok(&[
        os("-o"),
        os(&path),
        &fx.remote("up"),
        fx.path("down").as_os_str(),
    ]);
    assert_eq!(
        fx.logins(),
        1,
        "a copy logged in again: {}",
        text(&out.stderr)
    );
    let want = std::fs::read(&src).unwrap();
    assert!(std::fs::read(fx.path("up")).unwrap() == want);
    assert!(std::fs::read(fx.path("down")).unwrap() == want);
}

/// `warren cp` against `warren serve`: its OpenSSH-style client options
/// and the port.
fn cp_to_serve(serve: &Serve, cwd: &Path, args: &[&OsStr]) -> Output {
    let out = warren()
        .arg("cp")
        .args(serve.client_options(&serve.client_key()))
        .args(["-P", &serve.port().to_string()])
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "warren cp {args:?}: {}\nwarren serve log:\n{}",
        text(&out.stderr),
        serve.log()
    );
    out
}

#[test]
fn warren_serve_takes_a_large_file_on_four_channels_and_a_tree() {
    // Catches: warren serve mixing up handles or offsets across channels
    // of one connection, or a tree's empty dir, empty file or symlink.
    let serve = Serve::start();
    let work = workdir();
    let src = work.path().join("big");
    std::fs::write(&src, data(24 * 1024 * 1024 + 1, 10)).unwrap();
    let r = |p: &str| remote("127.0.0.1", &work.path().join(p));
    let ch = ["--channels", "4"].map(OsStr::new);
    cp_to_serve(
        &serve,
        work.path(),
        &[ch[0], ch[1], src.as_os_str(), &r("up")],
    );
    let down = work.path().join("down");
    cp_to_serve(
        &serve,
        work.path(),
        &[ch[0], ch[1], &r("up"), down.as_os_str()],
    );
    let want = std::fs::read(&src).unwrap();
    assert!(
        std::fs::read(work.path().join("up")).unwrap() == want,
        "upload differs"
    );
    assert!(std::fs::read(&down).unwrap() == want, "download differs");

    let t = work.path().join("tree");
    std::fs::create_dir_all(t.join("a/b")).unwrap();
    std::fs::create_dir_all(t.join("empty")).unwrap();
    std::fs::write(t.join("zero"), b"").unwrap();
    for i in 0..40 {
        std::fs::write(
            t.join(format!("a/b/f{i}")),
            data(10_000 + i * 777, i as u64),
        )
        .unwrap();
    }
    std::os::unix::fs::symlink("a/b/f1", t.join("link")).unwrap();
    cp_to_serve(
        &serve,
        work.path(),
        &[os("-r"), t.as_os_str(), &r("tree-up")],
    );
    let tree_down = work.path().join("tree-down");
    cp_to_serve(
        &serve,
        work.path(),
        &[os("-r"), &r("tree-up"), tree_down.as_os_str()],
    );
    assert_eq!(tree(&work.path().join("tree-up")), tree(&t));
    assert_eq!(tree(&tree_down), tree(&t));
}

#[test]
fn warren_serve_answers_64_requests_in_flight_on_one_channel() {
    // Catches: warren serve answering concurrent READs or WRITEs on one
    // handle out of place (replies matched to the wrong id, writes
    // landing at another request's offset). One channel: the engine's 64
    // requests are all in flight on one SFTP session.
    let serve = Serve::start();
    let work = workdir();
    let src = work.path().join("src");
    std::fs::write(&src, data(32 * 1024 * 1024 + 12_345, 11)).unwrap();
    let up = remote("127.0.0.1", &work.path().join("up"));
    let one = ["--channels", "1"].map(OsStr::new);
    cp_to_serve(&serve, work.path(), &[one[0], one[1], src.as_os_str(), &up]);
    let down = work.path().join("down");
    cp_to_serve(
        &serve,
        work.path(),
        &[one[0], one[1], &up, down.as_os_str()],
    );
    let want = std::fs::read(&src).unwrap();
    assert!(
        std::fs::read(work.path().join("up")).unwrap() == want,
        "upload differs"
    );
    assert!(std::fs::read(&down).unwrap() == want, "download differs");
    assert_eq!(
        serve.log().matches("sftp session").count(),
        2,
        "{}",
        serve.log()
    );
}

#[test]
fn quiet_says_nothing_and_otherwise_one_summary_line() {
    // Catches: -q printing the summary (or anything), the summary missing
    // without a terminal, data or messages on stdout.
    let fx = Fixture::start();
    std::fs::write(fx.path("f"), data(100_000, 12)).unwrap();
    let out = fx.cp_ok(&[os("-q"), os("f"), &fx.remote("q")]);
    assert!(
        out.stdout.is_empty() && out.stderr.is_empty(),
        "-q said: {}",
        text(&out.stderr)
    );
    let out = fx.cp_ok(&[os("f"), &fx.remote("loud")]);
    assert!(out.stdout.is_empty(), "stdout: {}", text(&out.stdout));
    let err = text(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].starts_with("copied 1 file, 97.7 KiB in ") && lines[0].ends_with("/s"),
        "{err}"
    );
}

#[test]
fn a_large_file_flushed_as_it_goes_is_finished_both_ways() {
    // Catches: the background fsync every 32 MiB still holding the file
    // when the copy finished it ("still in use", exit 1): a file just
    // past 64 MiB starts a flush as its last chunks land.
    let fx = Fixture::start();
    let src = fx.path("large.bin");
    let want = data(64 * 1024 * 1024 + 300_000, 21);
    std::fs::write(&src, &want).unwrap();
    fx.cp_ok(&[src.as_os_str(), &fx.remote("up.bin")]);
    assert!(
        std::fs::read(fx.path("up.bin")).unwrap() == want,
        "upload differs"
    );
    let down = fx.path("down.bin");
    fx.cp_ok(&[&fx.remote("up.bin"), down.as_os_str()]);
    assert!(std::fs::read(&down).unwrap() == want, "download differs");
    no_partial_files(fx.work.path());
}
