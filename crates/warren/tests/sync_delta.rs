//! `warren sync`'s delta transfer against real peers: the driver
//! (warren-core's `RemoteHelper`) on a session to OpenSSH's sshd, with
//! this build's binary installed on the "remote" as the helper, and to
//! `warren serve`, which runs itself as the helper. The sshd sessions get
//! their own HOME and PATH (`SetEnv`), so an install lands in a temp dir
//! and a fake `uname` can stand for another system.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]

mod common;
use common::script;
use common::serve::Serve;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tempfile::TempDir;
use warren_core::delta::{DeltaStats, FileMeta, HelperMode, RemoteHelper};
use warren_core::prompt::NoPrompt;
use warren_core::session::{self, ConnectOptions, Session, StrictHostKeyChecking};
use warren_core::transfer::client::SftpClient;
use warren_core::transfer::connect;
use warren_sync::testing::noise;
use warren_testkit::{Sshd, local_user};

const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The helper as `--remote-helper install` would upload it: this build.
const WARREN: &str = env!("CARGO_BIN_EXE_warren");
/// The literal bytes a 1 KiB insertion and a 64 KiB rewrite may cost in a
/// 4 MiB file (the edits, plus a block around each: 2 KiB blocks here).
const LITERAL_BOUND: u64 = 200 * 1024;

/// A 4 MiB file, and the same with 1 KiB inserted near its start and
/// 64 KiB rewritten in the middle.
fn old_and_new() -> (Vec<u8>, Vec<u8>) {
    let old = noise(4 << 20, 1);
    let mut new = old.clone();
    new.splice(4096..4096, noise(1024, 2));
    new[2 << 20..(2 << 20) + 65536].copy_from_slice(&noise(65536, 3));
    (old, new)
}

/// A temp dir with the remote user's home, a bin dir early on its PATH,
/// and room for files on both "sides" (one machine plays both).
struct Dirs {
    tmp: TempDir,
}

impl Dirs {
    fn new() -> Dirs {
        let tmp = tempfile::tempdir().unwrap();
        for d in ["home", "bin", "files"] {
            std::fs::create_dir(tmp.path().join(d)).unwrap();
        }
        Dirs { tmp }
    }
    fn home(&self) -> PathBuf {
        self.tmp.path().join("home")
    }
    fn bin(&self) -> PathBuf {
        self.tmp.path().join("bin")
    }
    fn file(&self, name: &str) -> PathBuf {
        self.tmp.path().join("files").join(name)
    }
    fn installed(&self) -> PathBuf {
        self.home().join(format!(".cache/warren/{VERSION}/warren"))
    }

    /// An sshd whose sessions have this HOME and PATH (`SetEnv`: sshd
    /// takes the first SetEnv line, so the fixture's SHLVL=1 is repeated).
    fn sshd(&self, extra: &[String]) -> Sshd {
        let mut b = Sshd::builder().config(format!(
            "SetEnv SHLVL=1 HOME={} PATH={}:/usr/local/bin:/usr/bin:/bin",
            self.home().display(),
            self.bin().display()
        ));
        for line in extra {
            b = b.config(line.clone());
        }
        b.start()
    }
}

fn options(port: u16, known_hosts: &Path, key: &Path) -> ConnectOptions {
    let mut o = ConnectOptions::new("127.0.0.1", port, &local_user());
    o.connect_timeout = Some(Duration::from_secs(30));
    o.host_keys.user_known_hosts = vec![known_hosts.to_owned()];
    o.host_keys.strict = StrictHostKeyChecking::Yes;
    o.auth.identity_files = vec![key.to_owned()];
    o.auth.identity_files_explicit = true;
    o.auth.identities_only = true;
    o.auth.identity_agent = None;
    o.auth.batch_mode = true;
    o.auth.preferred = vec!["publickey".into()];
    o
}

async fn login(opts: &ConnectOptions) -> (Session, SftpClient) {
    let s = session::connect(opts, Arc::new(NoPrompt))
        .await
        .expect("log in");
    let sftp = connect::over_channel(s.handle(), None)
        .await
        .expect("an SFTP session");
    (s, sftp)
}

async fn login_sshd(sshd: &Sshd) -> (Session, SftpClient) {
    login(&options(
        sshd.port(),
        &sshd.known_hosts(),
        sshd.client_key(),
    ))
    .await
}

/// Starts the helper as `mode` says; the notes it gave.
async fn start(
    s: &Session,
    sftp: &SftpClient,
    mode: HelperMode,
) -> (Option<RemoteHelper>, Vec<String>) {
    let notes = Arc::new(Mutex::new(Vec::new()));
    let n = notes.clone();
    let note = move |m: &str| n.lock().unwrap().push(m.to_owned());
    let h = RemoteHelper::start_with(s.handle(), sftp, mode, Path::new(WARREN), &note)
        .await
        .expect("starting the helper");
    let notes = notes.lock().unwrap().clone();
    (h, notes)
}

fn bytes_of(p: &Path) -> Vec<u8> {
    p.as_os_str().as_encoded_bytes().to_vec()
}

fn mtime(p: &Path) -> SystemTime {
    std::fs::metadata(p).unwrap().modified().unwrap()
}

fn assert_small(stats: &DeltaStats, len: usize) {
    assert!(
        stats.literal_bytes < LITERAL_BOUND,
        "{} literal bytes for a {len}-byte file",
        stats.literal_bytes
    );
    assert!(
        stats.wire_bytes < LITERAL_BOUND + 64 * 1024,
        "{} bytes on the wire",
        stats.wire_bytes
    );
    assert_eq!(stats.literal_bytes + stats.matched_bytes, len as u64);
}

/// Push and pull with `--remote-helper install`: this binary lands in
/// ~/.cache/warren/VERSION/ (same bytes, mode 755), both directions move
/// only the changed blocks, results are byte-identical with the mode and
/// time asked for. A second session reuses the install. (Was: no driver,
/// and `warren sync --server` refused to run.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_then_push_and_pull_send_only_changed_blocks() {
    let dirs = Dirs::new();
    let sshd = dirs.sshd(&[]);
    let (s, sftp) = login_sshd(&sshd).await;
    let (h, notes) = start(&s, &sftp, HelperMode::Install).await;
    let mut h = h.unwrap_or_else(|| panic!("no helper: {notes:?}\n{}", sshd.log()));
    let installed = dirs.installed();
    assert_eq!(
        std::fs::read(&installed).unwrap(),
        std::fs::read(WARREN).unwrap()
    );
    assert_eq!(
        std::fs::metadata(&installed).unwrap().permissions().mode() & 0o777,
        0o755
    );

    let (old, new) = old_and_new();
    let (local, remote) = (dirs.file("local"), dirs.file("remote"));
    std::fs::write(&local, &new).unwrap();
    std::fs::write(&remote, &old).unwrap();
    let meta = FileMeta {
        mode: Some(0o640),
        mtime: Some((1_500_000_000, 0)),
    };
    let stats = h
        .push(&local, &bytes_of(&remote), Some(meta))
        .await
        .unwrap();
    assert_small(&stats, new.len());
    assert!(
        std::fs::read(&remote).unwrap() == new,
        "pushed file differs"
    );
    assert_eq!(
        std::fs::metadata(&remote).unwrap().permissions().mode() & 0o7777,
        0o640
    );
    assert_eq!(
        mtime(&remote),
        UNIX_EPOCH + Duration::from_secs(1_500_000_000)
    );

    let (pulled, source) = (dirs.file("pulled"), dirs.file("source"));
    std::fs::write(&pulled, &old).unwrap();
    std::fs::write(&source, &new).unwrap();
    let stats = h
        .pull(&bytes_of(&source), &pulled, Some(meta))
        .await
        .unwrap();
    assert_small(&stats, new.len());
    assert!(
        std::fs::read(&pulled).unwrap() == new,
        "pulled file differs"
    );
    assert_eq!(
        mtime(&pulled),
        UNIX_EPOCH + Duration::from_secs(1_500_000_000)
    );

    // A pull onto nothing: all literal, still right.
    let fresh = dirs.file("fresh");
    let stats = h.pull(&bytes_of(&source), &fresh, None).await.unwrap();
    assert_eq!(stats.literal_bytes, new.len() as u64);
    assert!(std::fs::read(&fresh).unwrap() == new);
    h.finish().await;

    // The next session finds the helper in place and does not upload.
    let before = mtime(&installed);
    let (s2, sftp2) = login_sshd(&sshd).await;
    let (h2, notes) = start(&s2, &sftp2, HelperMode::Install).await;
    assert!(h2.is_some(), "{notes:?}");
    assert_eq!(mtime(&installed), before, "the helper was uploaded again");
    let (h3, notes) = start(&s2, &sftp2, HelperMode::Auto).await;
    assert!(h3.is_some(), "auto did not find the install: {notes:?}");
}

/// A remote whose `uname -sm` is another system's: nothing is installed,
/// no helper, and the note says why. (Was: no driver at all.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_of_another_system_gets_no_helper() {
    let dirs = Dirs::new();
    script(dirs.bin().join("uname"), "echo 'Darwin arm64'\n");
    let sshd = dirs.sshd(&[]);
    let (s, sftp) = login_sshd(&sshd).await;
    let (h, notes) = start(&s, &sftp, HelperMode::Install).await;
    assert!(h.is_none());
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].contains("Darwin arm64") && notes[0].contains("whole"),
        "{notes:?}"
    );
    assert!(
        !dirs.home().join(".cache").exists(),
        "something was installed"
    );
}

/// `auto` with no helper on the remote: none, and one note naming
/// `--remote-helper install`; a `warren` on the PATH that is something
/// else: none, and a note quoting what it printed. `never`: none, silently.
/// (Was: no driver at all.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_without_a_helper_says_how_to_enable_delta() {
    let dirs = Dirs::new();
    let sshd = dirs.sshd(&[]);
    let (s, sftp) = login_sshd(&sshd).await;
    let (h, notes) = start(&s, &sftp, HelperMode::Auto).await;
    assert!(h.is_none());
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].contains("--remote-helper install"), "{notes:?}");

    let (h, notes) = start(&s, &sftp, HelperMode::Never).await;
    assert!(h.is_none() && notes.is_empty(), "{notes:?}");

    script(
        dirs.bin().join("warren"),
        "echo 'warren: unknown command sync'\nexit 2\n",
    );
    let (h, notes) = start(&s, &sftp, HelperMode::Auto).await;
    assert!(h.is_none());
    assert!(
        notes.len() == 1 && notes[0].contains("not a sync helper's greeting"),
        "{notes:?}"
    );
    assert!(
        notes[0].contains("warren: unknown command sync"),
        "{notes:?}"
    );
}

/// A login that prints before every command (as a chatty ~/.bashrc does):
/// the helper's greeting is found after the noise, a note says what was
/// skipped, and the helper works. (Was: no driver at all.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chatty_login_does_not_break_the_helper() {
    let dirs = Dirs::new();
    let installed = dirs.installed();
    std::fs::create_dir_all(installed.parent().unwrap()).unwrap();
    std::fs::copy(WARREN, &installed).unwrap();
    // sftp-server is spared: the noise would break SFTP itself.
    let sshd = dirs.sshd(&[
        "ForceCommand case \"$SSH_ORIGINAL_COMMAND\" in *sftp-server) ;; \
         *) printf 'Welcome to the build farm!\\n' ;; esac; eval \"$SSH_ORIGINAL_COMMAND\""
            .to_owned(),
    ]);
    let (s, sftp) = login_sshd(&sshd).await;
    let (h, notes) = start(&s, &sftp, HelperMode::Auto).await;
    let mut h = h.unwrap_or_else(|| panic!("no helper: {notes:?}\n{}", sshd.log()));
    assert!(
        notes.len() == 1 && notes[0].contains("printed 27 bytes"),
        "{notes:?}"
    );
    let (old, new) = old_and_new();
    let (local, remote) = (dirs.file("local"), dirs.file("remote"));
    std::fs::write(&local, &new).unwrap();
    std::fs::write(&remote, &old).unwrap();
    let stats = h.push(&local, &bytes_of(&remote), None).await.unwrap();
    assert_small(&stats, new.len());
    assert!(std::fs::read(&remote).unwrap() == new);
}

/// `warren serve` runs itself for the driver's helper command: delta with
/// nothing installed and nothing on the PATH. (Was: the command went to
/// the shell, which found no `warren`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warren_serve_is_its_own_helper() {
    let serve = Serve::start();
    let dirs = Dirs::new();
    let opts = options(
        serve.port(),
        &serve.dir().join("known_hosts"),
        &serve.client_key(),
    );
    let (s, sftp) = login(&opts).await;
    let (h, notes) = start(&s, &sftp, HelperMode::Auto).await;
    let mut h = h.unwrap_or_else(|| panic!("no helper: {notes:?}\n{}", serve.log()));
    assert!(notes.is_empty(), "{notes:?}");
    let (old, new) = old_and_new();
    let (local, remote) = (dirs.file("local"), dirs.file("remote"));
    std::fs::write(&local, &new).unwrap();
    std::fs::write(&remote, &old).unwrap();
    let stats = h.push(&local, &bytes_of(&remote), None).await.unwrap();
    assert_small(&stats, new.len());
    assert!(std::fs::read(&remote).unwrap() == new);
    let (pulled, source) = (dirs.file("pulled"), dirs.file("source"));
    std::fs::write(&pulled, &old).unwrap();
    std::fs::write(&source, &new).unwrap();
    let stats = h.pull(&bytes_of(&source), &pulled, None).await.unwrap();
    assert_small(&stats, new.len());
    assert!(std::fs::read(&pulled).unwrap() == new);
    // A file the helper cannot serve is "send whole", and the helper
    // goes on.
    let err = h
        .push(&local, b"/nonexistent-dir/f", None)
        .await
        .unwrap_err();
    assert!(err.send_whole(), "{err}");
    assert_eq!(
        h.hash(&bytes_of(&remote)).await.unwrap().0,
        new.len() as u64
    );
}

/// `warren sync` as a user runs it: with `--remote-helper install` a
/// changed 4 MiB file goes as a delta both ways (rsync's `--stats` lines
/// say how much was literal), the result is the new file; a first copy
/// never starts the helper (nothing to update, so no note); under `auto`
/// without a helper the changed file goes whole, said once.
#[test]
fn warren_sync_sends_only_the_changed_blocks() {
    let dirs = Dirs::new();
    let sshd = dirs.sshd(&[]);
    let (old, new) = old_and_new();
    let local = dirs.file("local");
    let remote = dirs.file("remote");
    std::fs::create_dir_all(&local).unwrap();
    std::fs::write(local.join("big"), &old).unwrap();
    let sync = |args: &[&str], from: String, to: String| {
        let out = std::process::Command::new(WARREN)
            .arg("sync")
            .arg("-e")
            .arg(format!("ssh -F {}", sshd.client_config().display()))
            .args(args)
            .arg(from)
            .arg(to)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        assert!(out.status.success(), "warren sync {args:?}: {stderr}");
        (stdout, stderr)
    };
    let literal = |stats: &str| -> u64 {
        let line = stats
            .lines()
            .find(|l| l.starts_with("Literal data: "))
            .unwrap_or_else(|| panic!("no Literal data line in {stats}"));
        line.trim_start_matches("Literal data: ")
            .trim_end_matches(" bytes")
            .replace(',', "")
            .parse()
            .unwrap()
    };
    let local_s = format!("{}/", local.display());
    let remote_s = format!("test:{}/", remote.display());
    // First copy: nothing to update, so no helper and no note.
    let (_, said) = sync(&["-a"], local_s.clone(), remote_s.clone());
    assert!(
        !said.contains("helper"),
        "a first copy spoke of the helper: {said}"
    );
    assert!(!dirs.installed().exists());
    // Push the change by delta.
    std::fs::write(local.join("big"), &new).unwrap();
    let (stats, _) = sync(
        &["-a", "--stats", "--remote-helper", "install"],
        local_s.clone(),
        remote_s.clone(),
    );
    assert!(literal(&stats) < LITERAL_BOUND, "{stats}");
    assert_eq!(std::fs::read(remote.join("big")).unwrap(), new);
    assert!(dirs.installed().exists(), "the helper was not installed");
    // Pull the old one back over the new one, by delta, through auto
    // (the helper is installed now).
    std::fs::write(remote.join("big"), &old).unwrap();
    let (stats, _) = sync(&["-a", "--stats"], remote_s.clone(), local_s.clone());
    assert!(literal(&stats) < LITERAL_BOUND, "{stats}");
    assert_eq!(std::fs::read(local.join("big")).unwrap(), old);
    // Without a helper, auto sends it whole and says how to get delta.
    std::fs::remove_file(dirs.installed()).unwrap();
    std::fs::write(local.join("big"), &new).unwrap();
    let (stats, said) = sync(&["-a", "--stats"], local_s, remote_s);
    assert_eq!(literal(&stats), new.len() as u64, "{stats}");
    assert_eq!(said.matches("--remote-helper install").count(), 1, "{said}");
    assert_eq!(std::fs::read(remote.join("big")).unwrap(), new);
}
