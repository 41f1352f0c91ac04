//! Connection sharing against real OpenSSH: OpenSSH's `ssh -S` through a
//! warren master, warren through an OpenSSH master, warren with itself,
//! ControlPersist, `-O` commands; and keepalives against a frozen server.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]

mod common;
use common::{free_port, text, warren};

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use warren_testkit::{Sshd, TcpEcho};

/// Logins sshd accepted so far: a multiplexed session adds none.
fn logins(sshd: &Sshd) -> usize {
    sshd.log().matches("Accepted publickey").count()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn openssh(sshd: &Sshd, ctl: &Path) -> Command {
    let mut c = Command::new("ssh");
    c.arg("-F").arg(sshd.client_config()).arg("-S").arg(ctl);
    c
}

fn warren_ssh(sshd: &Sshd, ctl: &Path) -> Command {
    let mut c = warren();
    c.arg("ssh")
        .arg("-F")
        .arg(sshd.client_config())
        .arg("-S")
        .arg(ctl);
    c
}

fn run(mut c: Command, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = c
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Written from a thread while the output is read: a large input
    // echoed back never fills both pipes. A client that fails early stops
    // reading; its status tells why.
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let out = child.wait_with_output().unwrap();
    let _ = writer.join();
    out
}

fn echo_once(port: u16, data: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect through the forward");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(data).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    got
}

/// A master in the background (`-fN`), stopped with `-O exit` on drop.
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

fn start_master(sshd: &Sshd, ctl: &Path, mut launcher: Command) -> Master {
    let out = launcher
        .args(["-M", "-fN", "test"])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("start master");
    assert!(out.status.success(), "master: {}", text(&out.stderr));
    wait_for("the control socket", || ctl.exists());
    Master {
        ctl: ctl.to_owned(),
        config: sshd.client_config(),
    }
}

#[test]
fn openssh_clients_share_a_warren_master() {
    let sshd = Sshd::start();
    let dir = tempfile::tempdir().unwrap();
    let ctl = dir.path().join("ctl");
    let _master = start_master(&sshd, &ctl, warren_ssh(&sshd, &ctl));
    let mode = std::fs::metadata(&ctl).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o600
    );
    assert_eq!(logins(&sshd), 1);

    let check = run(openssh(&sshd, &ctl), &["-O", "check", "test"], b"");
    assert!(check.status.success(), "{}", text(&check.stderr));
    assert!(
        text(&check.stderr).contains("Master running (pid="),
        "{}",
        text(&check.stderr)
    );

    // Exec with stdin, stdout, stderr and the exit status, all through the master.
    let out = run(
        openssh(&sshd, &ctl),
        &["test", "cat; echo to-stderr >&2; exit 7"],
        b"passed through",
    );
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "passed through");
    assert!(text(&out.stderr).contains("to-stderr"));

    // A PTY through the master.
    let out = run(openssh(&sshd, &ctl), &["-tt", "test", "tty"], b"");
    assert!(
        text(&out.stdout).contains("/dev/pts/"),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    // Forwards added and cancelled through the master.
    let echo = TcpEcho::start("127.0.0.1:0");
    let port = free_port();
    let spec = format!("{port}:127.0.0.1:{}", echo.addr().port());
    let fwd = run(
        openssh(&sshd, &ctl),
        &["-O", "forward", "-L", &spec, "test"],
        b"",
    );
    assert!(fwd.status.success(), "{}", text(&fwd.stderr));
    assert_eq!(echo_once(port, b"via master"), b"via master");
    let cancel = run(
        openssh(&sshd, &ctl),
        &["-O", "cancel", "-L", &spec, "test"],
        b"",
    );
    assert!(cancel.status.success(), "{}", text(&cancel.stderr));
    wait_for("the cancelled listener to close", || {
        TcpStream::connect(("127.0.0.1", port)).is_err()
    });

    assert_eq!(logins(&sshd), 1, "a shared session logged in again");

    let exit = run(openssh(&sshd, &ctl), &["-O", "exit", "test"], b"");
    assert!(exit.status.success(), "{}", text(&exit.stderr));
    wait_for("the master to remove its socket", || !ctl.exists());
}

#[test]
fn warren_shares_an_openssh_master() {
    let sshd = Sshd::start();
    let dir = tempfile::tempdir().unwrap();
    let ctl = dir.path().join("ctl");
    let _master = start_master(&sshd, &ctl, openssh(&sshd, &ctl));
    assert_eq!(logins(&sshd), 1);

    let check = run(warren_ssh(&sshd, &ctl), &["-O", "check", "test"], b"");
    assert!(check.status.success(), "{}", text(&check.stderr));
    assert!(text(&check.stderr).contains("Master running (pid="));

    let out = run(
        warren_ssh(&sshd, &ctl),
        &["test", "cat; echo err >&2; exit 4"],
        b"stdin bytes",
    );
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "stdin bytes");
    assert!(text(&out.stderr).contains("err"));

    // -R 0: the allocated port comes back on stdout.
    let echo = TcpEcho::start("127.0.0.1:0");
    let spec = format!("0:127.0.0.1:{}", echo.addr().port());
    let fwd = run(
        warren_ssh(&sshd, &ctl),
        &["-O", "forward", "-R", &spec, "test"],
        b"",
    );
    assert!(fwd.status.success(), "{}", text(&fwd.stderr));
    let port: u16 = text(&fwd.stdout).trim().parse().expect("allocated port");
    assert_eq!(echo_once(port, b"remote"), b"remote");

    assert_eq!(logins(&sshd), 1, "warren logged in instead of sharing");
    let exit = run(warren_ssh(&sshd, &ctl), &["-O", "exit", "test"], b"");
    assert!(exit.status.success(), "{}", text(&exit.stderr));
    assert!(text(&exit.stderr).contains("Exit request sent."));
    wait_for("the OpenSSH master to exit", || !ctl.exists());
}

#[test]
fn control_persist_keeps_a_master_then_ends_it() {
    let sshd = Sshd::start();
    let dir = tempfile::tempdir().unwrap();
    let pattern = format!("{}/%C", dir.path().display());
    let opts = [
        "-o",
        "ControlMaster=auto",
        "-o",
        &format!("ControlPath={pattern}"),
        "-o",
        "ControlPersist=3",
    ];
    let mut first = vec!["ssh", "-F"];
    let config = sshd.client_config();
    first.push(config.to_str().unwrap());
    first.extend(opts);
    first.extend(["test", "echo first"]);
    let out = warren().args(&first).stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "first\n");

    // The master outlived its first client, under the %C name.
    let sockets: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(sockets.len(), 1, "{sockets:?}");
    let name = sockets[0].file_name().unwrap().to_str().unwrap().to_owned();
    assert_eq!(name.len(), 40, "%C is a SHA-1 hex digest: {name}");

    // A second run reuses it: no new login.
    let mut second = first.clone();
    *second.last_mut().unwrap() = "echo second";
    let out = warren()
        .args(&second)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "second\n");
    assert_eq!(logins(&sshd), 1);

    // And it ends on its own once idle for the persist time.
    let deadline = Instant::now() + Duration::from_secs(20);
    while sockets[0].exists() {
        assert!(
            Instant::now() < deadline,
            "ControlPersist=3 master still there after 20 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn warren_master_with_warren_clients_and_stop() {
    let sshd = Sshd::start();
    let dir = tempfile::tempdir().unwrap();
    let ctl = dir.path().join("ctl");
    let _master = start_master(&sshd, &ctl, warren_ssh(&sshd, &ctl));
    let out = run(
        warren_ssh(&sshd, &ctl),
        &["test", "head -c 3000000 /dev/zero | tr '\\0' x; exit 3"],
        b"",
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(out.stdout.len(), 3_000_000);
    assert!(out.stdout.iter().all(|&b| b == b'x'));
    // -W through the master.
    let echo = TcpEcho::start("127.0.0.1:0");
    let target = format!("127.0.0.1:{}", echo.addr().port());
    let out = run(warren_ssh(&sshd, &ctl), &["-W", &target, "test"], b"stdio");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "stdio");
    assert_eq!(logins(&sshd), 1);
    // -O stop: no new clients, the socket goes, the master stays.
    let stop = run(warren_ssh(&sshd, &ctl), &["-O", "stop", "test"], b"");
    assert!(stop.status.success(), "{}", text(&stop.stderr));
    wait_for("the socket to go", || !ctl.exists());
}

#[test]
fn a_control_socket_of_another_user_is_refused() {
    let uid: u32 = text(
        &Command::new("id")
            .args(["-u", "warren-test"])
            .output()
            .expect("id (scripts/test creates the warren-test account)")
            .stdout,
    )
    .trim()
    .parse()
    .expect("warren-test account missing: run the suite through scripts/test");
    let dir = tempfile::tempdir().unwrap();
    let ctl = dir.path().join("ctl");
    let _listener = std::os::unix::net::UnixListener::bind(&ctl).unwrap();
    std::os::unix::fs::chown(&ctl, Some(uid), None).unwrap();
    let out = warren()
        .args(["ssh", "-S"])
        .arg(&ctl)
        .args(["-O", "check", "somehost"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(255));
    assert!(
        text(&out.stderr).contains(&format!("belongs to uid {uid}")),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn o_check_without_a_master_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let ctl = dir.path().join("none");
    let out = warren()
        .args(["ssh", "-S"])
        .arg(&ctl)
        .args(["-O", "check", "somehost"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(255));
    assert!(
        text(&out.stderr).contains("Control socket connect(")
            && text(&out.stderr).contains("No such file"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn keepalives_detect_a_frozen_server() {
    let sshd = Sshd::start();
    let child = warren()
        .arg("ssh")
        .arg("-F")
        .arg(sshd.client_config())
        .args([
            "-o",
            "ServerAliveInterval=1",
            "-o",
            "ServerAliveCountMax=2",
            "test",
            "echo up; sleep 60",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = scopeguard(child);
    let mut stdout = child.0.stdout.take().unwrap();
    let mut up = [0u8; 3];
    stdout.read_exact(&mut up).unwrap();
    assert_eq!(&up, b"up\n");
    assert!(sshd.freeze_sessions() > 0, "no session process to freeze");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "a frozen server was not detected within 30 s (interval 1 s, count 2)"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    sshd.thaw_sessions();
    assert_eq!(status.code(), Some(255));
    let mut err = String::new();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        err.contains("Timeout, server 127.0.0.1 not responding."),
        "{err}"
    );
}

/// Kills the child if the test fails before it exits.
struct Guard(std::process::Child);
fn scopeguard(c: std::process::Child) -> Guard {
    Guard(c)
}
impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// ControlMaster ask (-MM): each new session is confirmed through
/// SSH_ASKPASS. A refused client connects by itself instead, as ssh does
/// (OpenSSH's client and warren's alike).
#[test]
fn control_master_ask_confirms_each_session() {
    let sshd = Sshd::start();
    let dir = tempfile::tempdir().unwrap();
    let ctl = dir.path().join("ctl");
    let allow = dir.path().join("allow");
    let asked = dir.path().join("asked");
    let askpass = common::script(
        dir.path().join("askpass"),
        &format!(
            "echo \"$1\" >> {asked}\n[ -e {allow} ] && {{ echo yes; exit 0; }}\nexit 1\n",
            asked = asked.display(),
            allow = allow.display()
        ),
    );
    let mut launcher = warren_ssh(&sshd, &ctl);
    launcher
        .env("SSH_ASKPASS", &askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .args(["-o", "BatchMode=no", "-M"]);
    let _master = start_master(&sshd, &ctl, launcher);
    assert_eq!(logins(&sshd), 1);

    // Refused: each client says so, then logs in by itself.
    for client in [openssh(&sshd, &ctl), warren_ssh(&sshd, &ctl)] {
        let out = run(client, &["test", "echo direct"], b"");
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "direct\n");
        assert!(
            text(&out.stderr).contains("refused session request: Permission denied"),
            "{}",
            text(&out.stderr)
        );
    }
    assert_eq!(logins(&sshd), 3, "refused clients connect directly");

    // Allowed: shared, no new login.
    std::fs::write(&allow, "").unwrap();
    let out = run(warren_ssh(&sshd, &ctl), &["test", "echo shared"], b"");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "shared\n");
    assert_eq!(logins(&sshd), 3);
    let prompts = std::fs::read_to_string(&asked).unwrap();
    assert_eq!(
        prompts.lines().collect::<Vec<_>>(),
        ["Allow shared connection to test? "; 3]
    );
}

/// The pid `-O check` reports for the master at `ctl`.
fn master_pid(sshd: &Sshd, ctl: &Path) -> u32 {
    let check = run(openssh(sshd, ctl), &["-O", "check", "test"], b"");
    let err = text(&check.stderr);
    assert!(check.status.success(), "{err}");
    err.split("pid=")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid in: {err}"))
}

/// Whether process `pid` still runs (a zombie has ended).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit(')').next().map(|r| r.trim_start().to_owned()))
        .is_some_and(|state| !state.starts_with('Z'))
}

/// Waits for `child` at most `limit`; one that never returns fails the
/// test (and is killed) instead of hanging it.
fn wait_bounded(mut child: std::process::Child, limit: Duration, what: &str) -> ExitStatus {
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

#[test]
fn dash_f_with_control_persist_returns_and_the_master_persists() {
    // Broke: the persistent master inherited the launcher's readiness pipe
    // and never wrote on it, so `-f ... ControlPersist=yes HOST cmd` hung.
    let sshd = Sshd::start();
    let dir = tempfile::tempdir().unwrap();
    let ctl = dir.path().join("cm");
    let out = dir.path().join("out");
    let launcher = warren_ssh(&sshd, &ctl)
        .args(["-f", "-o", "ControlMaster=yes", "-o", "ControlPersist=yes"])
        .args(["test", "echo ran"])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _master = Master {
        ctl: ctl.clone(),
        config: sshd.client_config(),
    };
    let status = wait_bounded(
        launcher,
        Duration::from_secs(60),
        "ssh -f with ControlPersist",
    );
    assert!(status.success(), "{status}");
    wait_for("the command's output", || {
        std::fs::read_to_string(&out).is_ok_and(|s| s == "ran\n")
    });
    // The master persists after its first client, as ssh's does.
    let pid = master_pid(&sshd, &ctl);
    assert!(running(pid));
    let again = run(openssh(&sshd, &ctl), &["test", "echo again"], b"");
    assert_eq!(text(&again.stdout), "again\n", "{}", text(&again.stderr));
    assert_eq!(logins(&sshd), 1);
    // -O stop ends a ControlPersist=yes master with no client left (it
    // would persist forever otherwise), as ssh's.
    let stop = run(openssh(&sshd, &ctl), &["-O", "stop", "test"], b"");
    assert!(stop.status.success(), "{}", text(&stop.stderr));
    let deadline = Instant::now() + Duration::from_secs(20);
    while running(pid) {
        assert!(
            Instant::now() < deadline,
            "a stopped persistent master still runs after 20 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn o_stop_ends_a_dash_n_master_once_its_last_session_ends() {
    // Broke: after -O stop a -N master removed its socket and lived on.
    let sshd = Sshd::start();
    let dir = tempfile::tempdir().unwrap();
    for (n, stopper) in [
        ("openssh", openssh as fn(&Sshd, &Path) -> Command),
        ("warren", warren_ssh),
    ] {
        let ctl = dir.path().join(n);
        let _master = start_master(&sshd, &ctl, warren_ssh(&sshd, &ctl));
        let pid = master_pid(&sshd, &ctl);
        // A session through the master keeps it until the session ends.
        let flag = dir.path().join(format!("{n}-go"));
        let sessions = sshd.log().matches("Starting session").count();
        let session = openssh(&sshd, &ctl)
            .args([
                "test",
                &format!(
                    "while [ ! -e {} ]; do sleep 0.1; done; echo finished",
                    flag.display()
                ),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for("the session to start", || {
            sshd.log().matches("Starting session").count() > sessions
        });
        let stop = run(stopper(&sshd, &ctl), &["-O", "stop", "test"], b"");
        assert!(stop.status.success(), "{n}: {}", text(&stop.stderr));
        assert!(text(&stop.stderr).contains("Stop listening request sent."));
        wait_for("the socket to go", || !ctl.exists());
        std::thread::sleep(Duration::from_millis(500));
        assert!(
            running(pid),
            "{n}: the master ended under a running session"
        );
        std::fs::write(&flag, "").unwrap();
        let out = session.wait_with_output().unwrap();
        assert_eq!(
            text(&out.stdout),
            "finished\n",
            "{n}: {}",
            text(&out.stderr)
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while running(pid) {
            assert!(
                Instant::now() < deadline,
                "{n}: a stopped -N master still runs 20 s after its last session"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A copy of the fixture's client config where `test` uses the master at
/// `ctl` (ControlMaster no) and `inner`, the same server, jumps through
/// `test`.
fn jump_config(sshd: &Sshd, ctl: &Path, dir: &Path) -> PathBuf {
    let base = std::fs::read_to_string(sshd.client_config()).unwrap();
    let config = format!(
        "{base}  ControlMaster no\n  ControlPath {}\n{}  ProxyJump test\n",
        ctl.display(),
        base.replace("Host test", "Host inner")
    );
    let path = dir.join("jump_config");
    std::fs::write(&path, config).unwrap();
    path
}

#[test]
fn openssh_proxy_mode_and_proxyjump_through_a_warren_master() {
    // Broke: -O proxy (MUX_C_PROXY) was answered "unsupported request".
    let sshd = Sshd::start();
    let dir = tempfile::tempdir().unwrap();
    let ctl = dir.path().join("ctl");
    let _master = start_master(&sshd, &ctl, warren_ssh(&sshd, &ctl));

    // ssh -O proxy: stdin, stdout, stderr and the exit status.
    let data = common::pattern(3_000_000, 3);
    let out = run(
        openssh(&sshd, &ctl),
        &["-O", "proxy", "test", "cat; echo on-stderr >&2; exit 5"],
        &data,
    );
    assert_eq!(out.status.code(), Some(5), "{}", text(&out.stderr));
    assert!(
        out.stdout == data,
        "{} of {} bytes back",
        out.stdout.len(),
        data.len()
    );
    assert!(
        text(&out.stderr).contains("on-stderr"),
        "{}",
        text(&out.stderr)
    );
    // A PTY, and a -L forward the proxy client serves itself.
    let out = run(
        openssh(&sshd, &ctl),
        &["-O", "proxy", "-tt", "test", "tty"],
        b"",
    );
    assert!(
        text(&out.stdout).contains("/dev/pts/"),
        "{}",
        text(&out.stderr)
    );
    let echo = TcpEcho::start("127.0.0.1:0");
    let port = free_port();
    let spec = format!("{port}:127.0.0.1:{}", echo.addr().port());
    let forwarder = openssh(&sshd, &ctl)
        .args(["-O", "proxy", "-N", "-L", &spec, "test"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let forwarder = scopeguard(forwarder);
    drop(common::connect_when_up(&format!("127.0.0.1:{port}")));
    assert_eq!(echo_once(port, b"proxied forward"), b"proxied forward");
    drop(forwarder);

    // ProxyJump whose jump host has the master: ssh's `-W` for the jump
    // goes through it (no login for the jump), the target logs in.
    let config = jump_config(&sshd, &ctl, dir.path());
    let out = Command::new("ssh")
        .arg("-F")
        .arg(&config)
        .args(["inner", "echo through-the-jump"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "through-the-jump\n");
    assert_eq!(logins(&sshd), 2, "the jump logged in instead of sharing");
}

#[test]
fn warren_o_proxy_runs_through_warren_and_openssh_masters() {
    // Broke: warren refused `-O proxy` ("not supported").
    let sshd = Sshd::start();
    let dir = tempfile::tempdir().unwrap();
    for (n, launcher) in [
        ("openssh", openssh as fn(&Sshd, &Path) -> Command),
        ("warren", warren_ssh),
    ] {
        let ctl = dir.path().join(n);
        let _master = start_master(&sshd, &ctl, launcher(&sshd, &ctl));
        let out = run(
            warren_ssh(&sshd, &ctl),
            &["-O", "proxy", "test", "cat; exit 4"],
            b"through the master",
        );
        assert_eq!(out.status.code(), Some(4), "{n}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "through the master");
    }
    assert_eq!(logins(&sshd), 2, "one login per master, none for -O proxy");
    // No master: an error, not a connection of its own.
    let out = run(
        warren_ssh(&sshd, &dir.path().join("none")),
        &["-O", "proxy", "test", "true"],
        b"",
    );
    assert_eq!(out.status.code(), Some(255));
    assert!(
        text(&out.stderr).contains("Control socket connect("),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(logins(&sshd), 2);
}
