//! Escape sequences typed into `warren ssh` (through a pseudo-terminal made
//! by util-linux `script`, or a piped stdin with `-tt`) against real sshd:
//! `~C` forwards carrying traffic, `~?`, `~B`, `~R`, `~v`, `~^Z`.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]

mod common;
use common::{connect_when_up, free_port, warren};

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use warren_testkit::{Sshd, TcpEcho};

/// A running `warren ssh` whose output (stdout and stderr, or the whole
/// terminal under `script`) is collected as it comes.
struct Session {
    child: Child,
    stdin: ChildStdin,
    output: Arc<Mutex<Vec<u8>>>,
}

impl Session {
    /// `warren ssh -t ... test 'sleep 60'` inside a pseudo-terminal.
    fn in_pty(sshd: &Sshd) -> Session {
        let bin = env!("CARGO_BIN_EXE_warren");
        let cfg = sshd.client_config();
        let command = format!("{bin} ssh -t -F {} test 'sleep 60'", cfg.display());
        let mut cmd = Command::new("script");
        cmd.args(["-qfec", &command, "/dev/null"]);
        Session::spawn(cmd, true)
    }

    /// `warren ssh -tt ... test 'sleep 60'` with a pipe for stdin (escapes
    /// follow the PTY request, as in ssh).
    fn piped(sshd: &Sshd, extra: &[&str]) -> Session {
        let mut cmd = warren();
        cmd.args(["ssh", "-tt", "-F"])
            .arg(sshd.client_config())
            .args(extra)
            .args(["test", "sleep 60"]);
        // A group of its own whose parent (this test) is outside it, so it
        // is not orphaned and `~^Z` may stop it, as under a shell.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        Session::spawn(cmd, false)
    }

    fn spawn(mut cmd: Command, merged: bool) -> Session {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let output = Arc::new(Mutex::new(Vec::new()));
        let mut streams: Vec<Box<dyn Read + Send>> = vec![Box::new(child.stderr.take().unwrap())];
        let stdout = child.stdout.take().unwrap();
        if merged {
            streams.push(Box::new(stdout));
        } else {
            // The remote side's output is not what these tests read.
            std::thread::spawn(move || std::io::copy(&mut { stdout }, &mut std::io::sink()));
        }
        for mut s in streams {
            let out = output.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    out.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            });
        }
        let stdin = child.stdin.take().unwrap();
        Session {
            child,
            stdin,
            output,
        }
    }

    fn output(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }

    fn type_in(&mut self, bytes: &[u8]) {
        self.stdin.write_all(bytes).unwrap();
        self.stdin.flush().unwrap();
    }

    /// Waits (up to 20 s) until the output holds `text` `times` times.
    fn wait_for(&self, text: &str, times: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = self.output();
            if out.matches(text).count() >= times {
                return out;
            }
            assert!(
                Instant::now() < deadline,
                "never saw {text:?} x{times} in:\n{out}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the session is up (the PTY's remote shell runs the
    /// command, so the first thing to show is sshd accepting the key).
    fn wait_logged_in(&self, sshd: &Sshd) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !sshd.log().contains("Starting session") {
            assert!(Instant::now() < deadline, "no session:\n{}", sshd.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `~.`, then the exit, with a deadline.
    fn disconnect(mut self) -> String {
        self.type_in(b"\r~.");
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "~. did not end:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(200));
        self.output()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn echo_round_trip(addr: &str) {
    let mut s: TcpStream = connect_when_up(addr);
    s.write_all(b"through the new forward").unwrap();
    let mut back = [0u8; 23];
    s.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"through the new forward");
}

#[test]
fn tilde_c_adds_and_cancels_a_local_forward_through_a_pty() {
    // Catches: `~C` unknown (typed text went to the remote side, no forward).
    let sshd = Sshd::start();
    let echo = TcpEcho::start("127.0.0.1:0");
    let port = free_port();
    let mut s = Session::in_pty(&sshd);
    s.wait_logged_in(&sshd);
    s.type_in(format!("\r~C-L {port}:127.0.0.1:{}\r", echo.addr().port()).as_bytes());
    s.wait_for("Forwarding port.", 1);
    echo_round_trip(&format!("127.0.0.1:{port}"));
    s.type_in(b"~C?\r");
    s.wait_for("-KL[bind_address:]port", 1);
    s.type_in(format!("~C-KL {port}\r").as_bytes());
    s.wait_for("Canceled forwarding.", 1);
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the cancelled forward still listens"
    );
    s.type_in(b"~C-KL 1\r");
    s.wait_for("Unknown port forwarding.", 1);
    s.disconnect();
}

#[test]
fn tilde_c_adds_remote_and_dynamic_forwards() {
    // Catches: `~C -R` / `-D` unknown, so no listener appears.
    let sshd = Sshd::start();
    let echo = TcpEcho::start("127.0.0.1:0");
    let (remote, dynamic) = (free_port(), free_port());
    let mut s = Session::piped(&sshd, &[]);
    s.wait_logged_in(&sshd);
    s.type_in(format!("\n~C-R {remote}:127.0.0.1:{}\n", echo.addr().port()).as_bytes());
    s.wait_for("Forwarding port.", 1);
    echo_round_trip(&format!("127.0.0.1:{remote}"));
    s.type_in(format!("~C-D {dynamic}\n").as_bytes());
    s.wait_for("Forwarding port.", 2);
    drop(connect_when_up(&format!("127.0.0.1:{dynamic}")));
    s.type_in(format!("~C-KR {remote}\n").as_bytes());
    s.wait_for("Canceled forwarding.", 1);
    s.type_in(b"~C-Q\n");
    s.wait_for("Invalid command.", 1);
    s.disconnect();
}

#[test]
fn tilde_question_lists_exactly_the_working_escapes() {
    // Catches: ~B, ~C, ~R, ~V/v and ~^Z missing from the help (they did
    // not work), or ~& listed though it does not.
    let sshd = Sshd::start();
    let mut s = Session::piped(&sshd, &[]);
    s.wait_logged_in(&sshd);
    s.type_in(b"\n~?");
    let out = s.wait_for("this message", 1);
    for line in [
        "~.   - terminate connection",
        "~B   - send a BREAK to the remote system",
        "~C   - open a command line",
        "~R   - request rekey",
        "~V/v - decrease/increase verbosity (LogLevel)",
        "~^Z  - suspend warren",
        "~#   - list forwarded connections",
        "~~   - send the escape character by typing it twice",
    ] {
        assert!(out.contains(line), "{line:?} missing from:\n{out}");
    }
    assert!(
        !out.contains("~&"),
        "~& is listed but not supported:\n{out}"
    );
    s.disconnect();
}

#[test]
fn tilde_b_reaches_sshd_as_a_break_request() {
    // Catches: ~B sent as text (no "break" channel request at the server).
    let sshd = Sshd::builder().config("LogLevel DEBUG").start();
    let mut s = Session::piped(&sshd, &[]);
    s.wait_logged_in(&sshd);
    s.type_in(b"\n~B");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !sshd.log().contains("req break") {
        assert!(
            Instant::now() < deadline,
            "no break at sshd:\n{}",
            sshd.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    s.disconnect();
}

#[test]
fn tilde_v_raises_the_log_level_and_tilde_r_rekeys() {
    // Catches: ~v and ~R sent as text: no level change, no new key exchange.
    let sshd = Sshd::builder().config("LogLevel DEBUG").start();
    let mut s = Session::piped(&sshd, &[]);
    s.wait_logged_in(&sshd);
    let kexinits = || sshd.log().matches("SSH2_MSG_KEXINIT received").count();
    let before = kexinits();
    s.type_in(b"\n~v");
    s.wait_for("~v [LogLevel VERBOSE]", 1);
    s.type_in(b"\n~R");
    // Logged at info, so only shown once ~v took effect.
    s.wait_for("Requesting rekey", 1);
    let deadline = Instant::now() + Duration::from_secs(20);
    while kexinits() <= before {
        assert!(
            Instant::now() < deadline,
            "no rekey at sshd:\n{}",
            sshd.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    s.type_in(b"\n~V");
    s.wait_for("~V [LogLevel INFO]", 1);
    // The session still works after the new keys.
    s.type_in(b"\n~#");
    s.wait_for("The following connections are open", 1);
    s.disconnect();
}

#[test]
fn tilde_ctrl_z_stops_the_process_until_continued() {
    // Catches: ~^Z sent as text (the process never stops).
    let sshd = Sshd::start();
    let mut s = Session::piped(&sshd, &[]);
    s.wait_logged_in(&sshd);
    let pid = s.child.id();
    let state = || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // The state follows the command name in parentheses.
        stat.rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next())
            .unwrap_or('?')
    };
    s.type_in(b"\n~\x1a");
    let deadline = Instant::now() + Duration::from_secs(20);
    while state() != 'T' {
        assert!(
            Instant::now() < deadline,
            "never stopped: state {}",
            state()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    s.wait_for("^Z [suspend warren]", 1);
    let cont = Command::new("kill")
        .args(["-CONT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(cont.success());
    s.type_in(b"\n~#");
    s.wait_for("The following connections are open", 1);
    s.disconnect();
}

#[test]
fn multiplexed_sessions_refuse_suspend_and_log_level() {
    // Catches: ~^Z and ~v typed in a multiplexed session acting on the
    // master process (stopping it stops every session it carries).
    let sshd = Sshd::start();
    let dir = tempfile::tempdir().unwrap();
    let ctl = dir.path().join("ctl");
    let master = warren()
        .args(["ssh", "-F"])
        .arg(sshd.client_config())
        .arg("-S")
        .arg(&ctl)
        .args(["-M", "-fN", "test"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        master.status.success(),
        "{}",
        String::from_utf8_lossy(&master.stderr)
    );
    let mut cmd = warren();
    cmd.args(["ssh", "-tt", "-F"])
        .arg(sshd.client_config())
        .arg("-S")
        .arg(&ctl)
        .args(["test", "sleep 60"]);
    let mut s = Session::spawn(cmd, false);
    s.wait_logged_in(&sshd);
    s.type_in(b"\n~\x1a");
    s.wait_for("~^Z escape not available to multiplexed sessions", 1);
    s.type_in(b"\n~v");
    s.wait_for("~v escape not available to multiplexed sessions", 1);
    s.disconnect();
    let exit = warren()
        .args(["ssh", "-F"])
        .arg(sshd.client_config())
        .arg("-S")
        .arg(&ctl)
        .args(["-O", "exit", "test"])
        .output()
        .unwrap();
    assert!(
        exit.status.success(),
        "{}",
        String::from_utf8_lossy(&exit.stderr)
    );
}
