//! Errors are said once and say the right thing: each classic failure
//! against a real sshd prints its text exactly once (`X: X` was the rule),
//! with the hint that fixes it, and a closed stdout or stderr never makes
//! warren panic or complain.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]

mod common;
use common::{free_port, text, warren};

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use warren_testkit::{Sshd, keygen, local_user};

/// A `Host test` config for `sshd` with these keys and known_hosts; no
/// agent, no prompts.
fn config(sshd: &Sshd, known_hosts: &Path, keys: &[&Path]) -> PathBuf {
    let mut cfg = format!(
        "Host test\n  HostName 127.0.0.1\n  Port {}\n  User {}\n  IdentitiesOnly yes\n  \
         IdentityAgent none\n  BatchMode yes\n  UserKnownHostsFile {}\n  \
         GlobalKnownHostsFile /dev/null\n",
        sshd.port(),
        local_user(),
        known_hosts.display()
    );
    for k in keys {
        cfg.push_str(&format!("  IdentityFile {}\n", k.display()));
    }
    let path = sshd.dir().join(format!("errors-cfg-{}", rand_suffix()));
    std::fs::write(&path, cfg).expect("write config");
    path
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn ssh(cfg: &Path, command: &str) -> Output {
    warren()
        .arg("ssh")
        .arg("-F")
        .arg(cfg)
        .args(["test", command])
        .stdin(Stdio::null())
        .output()
        .expect("run warren ssh")
}

/// `warren tunnel up` with one -L, expected to stop at once; killed and
/// failed if it is still running after a minute.
fn tunnel(cfg: &Path) -> Output {
    let runtime = tempfile::tempdir().expect("runtime dir");
    let fwd = format!("{}:127.0.0.1:9", free_port());
    let mut child = warren()
        .env("XDG_RUNTIME_DIR", runtime.path())
        .args(["tunnel", "up", "--name", "errors", "-F"])
        .arg(cfg)
        .args(["-L", &fwd, "test"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn warren tunnel up");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "tunnel up did not stop on a permanent failure:\n{}",
                text(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

/// Exactly one occurrence of `needle` in `stderr`, and exit 255.
fn once(out: &Output, needle: &str) {
    let err = text(&out.stderr);
    assert_eq!(
        err.matches(needle).count(),
        1,
        "{needle:?} must be said exactly once; stderr:\n{err}"
    );
    assert_eq!(out.status.code(), Some(255), "stderr:\n{err}");
}

/// known_hosts that records another key for the server.
fn changed_known_hosts(sshd: &Sshd) -> PathBuf {
    let other = keygen(sshd.dir(), "other_host", "ed25519", "");
    let other_pub = std::fs::read_to_string(other.with_extension("pub")).expect("pub");
    let b64 = other_pub.split_whitespace().nth(1).expect("b64");
    let known = sshd.dir().join("changed_known_hosts");
    std::fs::write(
        &known,
        format!("[127.0.0.1]:{} ssh-ed25519 {b64}\n", sshd.port()),
    )
    .expect("write known_hosts");
    known
}

// Regression: the 7-line warning came twice from `warren ssh` (`X: X`) and
// four times from `warren tunnel up` (a log line plus three wrappers).
#[test]
fn changed_host_key_warning_is_printed_once() {
    let sshd = Sshd::start();
    let known = changed_known_hosts(&sshd);
    let cfg = config(&sshd, &known, &[sshd.client_key()]);
    for out in [ssh(&cfg, "true"), tunnel(&cfg)] {
        once(&out, "REMOTE HOST IDENTIFICATION HAS CHANGED");
        once(&out, "Host key verification failed.");
        once(&out, "warren keygen -f");
    }
}

// Regression: "No ... host key is known ... Host key verification failed."
// was printed twice.
#[test]
fn unknown_host_in_batch_mode_is_reported_once() {
    let sshd = Sshd::start();
    let empty = sshd.dir().join("empty_known_hosts");
    std::fs::write(&empty, "").expect("write");
    let cfg = config(&sshd, &empty, &[sshd.client_key()]);
    let out = ssh(&cfg, "true");
    once(&out, "host key is known for [127.0.0.1]");
    once(&out, "Host key verification failed.");
}

// Regression: "Permission denied (...)" came twice from ssh and three
// times from a tunnel.
#[test]
fn permission_denied_is_reported_once_by_ssh_and_by_a_tunnel() {
    let sshd = Sshd::start();
    let stranger = keygen(sshd.dir(), "stranger", "ed25519", "");
    let cfg = config(&sshd, &sshd.known_hosts(), &[&stranger]);
    for out in [ssh(&cfg, "true"), tunnel(&cfg)] {
        once(&out, "Permission denied (");
        once(&out, "hint: ");
    }
}

// Regression: sshd's "Too many authentication failures" came out as
// `Load key "USER": connection failed during authentication: Channel send
// error` (twice), and warren went on offering keys to the closed connection.
#[test]
fn too_many_authentication_failures_says_what_the_server_said_and_how_to_fix_it() {
    let sshd = Sshd::builder().config("MaxAuthTries 2").start();
    let keys: Vec<PathBuf> = (1..=3)
        .map(|i| keygen(sshd.dir(), &format!("unauthorized{i}"), "ed25519", ""))
        .collect();
    let refs: Vec<&Path> = keys.iter().map(PathBuf::as_path).collect();
    let cfg = config(&sshd, &sshd.known_hosts(), &refs);
    let out = ssh(&cfg, "true");
    let err = text(&out.stderr);
    once(&out, "Too many authentication failures");
    assert!(!err.contains("Load key \""), "{err}");
    assert!(!err.contains("Channel send error"), "{err}");
    assert!(
        err.contains("IdentitiesOnly yes") && err.contains("-i"),
        "the hint names the fix: {err}"
    );
    // It stopped at the disconnect: the third key was never offered.
    assert!(!err.contains("unauthorized3"), "{err}");
}

// Regression: a 0644 key got the "check authorized_keys" hint; the fix is
// chmod 600 on the file.
#[test]
fn loose_key_permissions_hint_is_chmod_600() {
    use std::os::unix::fs::PermissionsExt as _;
    let sshd = Sshd::start();
    let loose = sshd.dir().join("loose_key");
    std::fs::copy(sshd.client_key(), &loose).expect("copy key");
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let cfg = config(&sshd, &sshd.known_hosts(), &[&loose]);
    let out = ssh(&cfg, "true");
    let err = text(&out.stderr);
    once(&out, "UNPROTECTED PRIVATE KEY FILE!");
    once(&out, "Permission denied (");
    assert!(
        err.contains(&format!("chmod 600 {}", loose.display())) && err.contains("hint: "),
        "{err}"
    );
    assert!(!err.contains("authorized_keys"), "wrong hint: {err}");
}

// Regression: a truncated -i key was skipped silently at the default log
// level (its reason only at -vv); ssh says `Load key "FILE": invalid format`.
#[test]
fn truncated_key_says_invalid_format_at_the_default_level() {
    use std::os::unix::fs::PermissionsExt as _;
    let sshd = Sshd::start();
    let whole = std::fs::read(sshd.client_key()).expect("read key");
    let cut = sshd.dir().join("truncated_key");
    std::fs::write(&cut, &whole[..whole.len() / 2]).expect("write");
    std::fs::set_permissions(&cut, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let cfg = config(&sshd, &sshd.known_hosts(), &[&cut]);
    let out = ssh(&cfg, "true");
    once(
        &out,
        &format!("Load key \"{}\": invalid format", cut.display()),
    );
}

// Regression: key files were read with read_to_string, so a Latin-1 byte
// in a .pub comment made `keygen -l` fail where ssh-keygen reads the key.
#[test]
fn public_key_with_a_non_utf8_comment_is_read_as_ssh_keygen_reads_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let key = keygen(dir.path(), "latin1", "ed25519", "");
    let public = key.with_extension("pub");
    let line = std::fs::read_to_string(&public).expect("pub");
    let mut bytes: Vec<u8> = line
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
        .into();
    bytes.extend_from_slice(b" ren\xe9@h\xf4te\n");
    std::fs::write(&public, &bytes).expect("write pub");
    let oracle = Command::new("ssh-keygen")
        .args(["-l", "-f"])
        .arg(&public)
        .output()
        .expect("ssh-keygen -l");
    assert!(oracle.status.success(), "{}", text(&oracle.stderr));
    let fingerprint = text(&oracle.stdout)
        .split_whitespace()
        .nth(1)
        .expect("fingerprint")
        .to_owned();
    let out = warren()
        .args(["keygen", "-l", "-f"])
        .arg(&public)
        .output()
        .expect("warren keygen -l");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&fingerprint),
        "{}",
        text(&out.stdout)
    );
}

// Regression: `warren ssh host 'seq ...' | head -1` printed
// "Broken pipe (os error 32): Broken pipe (os error 32)"; ssh is silent and
// exits 255.
#[test]
fn closed_stdout_pipe_is_silent_with_exit_255() {
    let sshd = Sshd::start();
    let cfg = config(&sshd, &sshd.known_hosts(), &[sshd.client_key()]);
    assert_head_is_silent(&cfg, &[]);
}

// Regression: through a ControlMaster the master writes to the passed
// stdout and printed "warren: cannot write to stdout: Broken pipe" on the
// client's stderr.
#[test]
fn closed_stdout_pipe_through_a_control_master_is_silent() {
    let sshd = Sshd::start();
    let cfg = config(&sshd, &sshd.known_hosts(), &[sshd.client_key()]);
    let ctl = sshd.dir().join("cm");
    let path = format!("ControlPath={}", ctl.display());
    let master = warren()
        .args(["ssh", "-F"])
        .arg(&cfg)
        .args(["-o", "ControlMaster=yes", "-o", &path])
        .args(["-o", "ControlPersist=60", "-f", "-N", "test"])
        .stdin(Stdio::null())
        .output()
        .expect("master");
    assert!(master.status.success(), "{}", text(&master.stderr));
    assert_head_is_silent(&cfg, &["-o", &path]);
    let exit = warren()
        .args(["ssh", "-F"])
        .arg(&cfg)
        .args(["-o", &path, "-O", "exit", "test"])
        .output()
        .expect("-O exit");
    assert!(exit.status.success(), "{}", text(&exit.stderr));
}

/// `warren ssh ... 'seq 1e7' | head -1`: one line out, nothing on stderr,
/// exit 255, as ssh.
fn assert_head_is_silent(cfg: &Path, options: &[&str]) {
    let dir = tempfile::tempdir().expect("tmp");
    let (errors, status) = (dir.path().join("stderr"), dir.path().join("status"));
    let out = Command::new("sh")
        .arg("-c")
        .arg(r#"{ "$0" ssh -F "$1" $4 test 'seq 10000000' 2>"$2"; echo $? >"$3"; } | head -1"#)
        .arg(env!("CARGO_BIN_EXE_warren"))
        .arg(cfg)
        .arg(&errors)
        .arg(&status)
        .arg(options.join(" "))
        .stdin(Stdio::null())
        .output()
        .expect("sh");
    assert_eq!(text(&out.stdout), "1\n");
    let err = std::fs::read_to_string(&errors).expect("stderr file");
    assert_eq!(err, "", "nothing to say about a reader that left");
    let code = std::fs::read_to_string(&status).expect("status file");
    assert_eq!(code.trim(), "255");
}

// Regression: with stderr a pipe nobody reads, the first eprintln! panicked
// (exit 101) instead of exiting 255 like ssh.
#[test]
fn closed_stderr_never_panics() {
    let sshd = Sshd::start();
    let empty = sshd.dir().join("empty_known_hosts");
    std::fs::write(&empty, "").expect("write");
    let failing = config(&sshd, &empty, &[sshd.client_key()]);
    let working = config(&sshd, &sshd.known_hosts(), &[sshd.client_key()]);
    for (cfg, command, want) in [
        (&failing, "true", 255),
        // -v logs each step to the closed stderr, and the remote writes
        // to it too.
        (&working, "echo to-stderr >&2; exit 3", 3),
    ] {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let out = warren()
            .args(["ssh", "-v", "-F"])
            .arg(cfg)
            .args(["test", command])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(writer)
            .status()
            .expect("run warren");
        let code = out.code();
        assert_ne!(code, Some(101), "panicked on a closed stderr");
        if command == "true" {
            assert_eq!(code, Some(want), "{command}");
        } else {
            // The remote's stderr cannot be delivered: ssh gives up with 255
            // too; either way, no panic.
            assert!(code == Some(want) || code == Some(255), "{code:?}");
        }
        // `2>&-`: no stderr at all.
        let status = Command::new("sh")
            .arg("-c")
            .arg(r#""$0" ssh -v -F "$1" test "$2" 2>&-"#)
            .arg(env!("CARGO_BIN_EXE_warren"))
            .arg(cfg)
            .arg(command)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .expect("sh");
        assert_ne!(status.code(), Some(101), "panicked with stderr closed");
        assert_eq!(status.code(), Some(want), "{command} with 2>&-");
    }
}
