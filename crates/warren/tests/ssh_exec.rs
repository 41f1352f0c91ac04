//! `warren ssh` against a real OpenSSH sshd: exec, exit status, stdio, EOF,
//! env, PTY, and connection errors.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]

mod common;
use common::{text, warren};

use std::io::Write;
use std::process::{Command, Output, Stdio};

use warren_testkit::Sshd;

fn ssh(sshd: &Sshd, args: &[&str]) -> Output {
    warren()
        .arg("ssh")
        .arg("-F")
        .arg(sshd.client_config())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run warren")
}

#[test]
fn exec_returns_remote_exit_status_and_splits_stdout_stderr() {
    let sshd = Sshd::start();
    let out = ssh(&sshd, &["test", "echo out; echo err >&2; exit 7"]);
    assert_eq!(
        out.status.code(),
        Some(7),
        "stderr: {}\nsshd: {}",
        text(&out.stderr),
        sshd.log()
    );
    assert_eq!(text(&out.stdout), "out\n");
    assert!(
        text(&out.stderr).contains("err\n"),
        "stderr: {}",
        text(&out.stderr)
    );
}

#[test]
fn command_words_are_joined_like_ssh() {
    let sshd = Sshd::start();
    let out = ssh(&sshd, &["test", "printf", "'%s|'", "a", "b c"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // ssh joins with spaces and the remote shell re-splits: "b c" becomes two words.
    assert_eq!(text(&out.stdout), "a|b|c|");
}

#[test]
fn options_after_destination_are_parsed_like_ssh() {
    let sshd = Sshd::start();
    let port = sshd.port().to_string();
    let out = warren()
        .args(["ssh", "-F"])
        .arg(sshd.client_config())
        .args(["test", "-p", &port, "echo", "-n", "x"])
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "x");
}

#[test]
fn stdin_is_forwarded_and_eof_ends_remote_input() {
    let sshd = Sshd::start();
    let mut child = warren()
        .args(["ssh", "-F"])
        .arg(sshd.client_config())
        .args(["test", "wc -c; echo done"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&[7u8; 300_000])
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "300000\ndone\n");
}

#[test]
fn hundred_megabytes_round_trip_through_cat_byte_identical() {
    let sshd = Sshd::start();
    let dir = tempfile::tempdir().expect("tmp");
    let input = dir.path().join("in.bin");
    let mut data = vec![0u8; 100 * 1024 * 1024];
    let mut x: u64 = 0x9E3779B97F4A7C15;
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    std::fs::write(&input, &data).expect("write input");
    let out = warren()
        .args(["ssh", "-F"])
        .arg(sshd.client_config())
        .args(["test", "cat"])
        .stdin(std::fs::File::open(&input).expect("open"))
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(out.stdout.len(), data.len());
    assert!(out.stdout == data, "bytes differ");
}

#[test]
fn stdin_null_flag_gives_remote_immediate_eof() {
    let sshd = Sshd::start();
    let mut child = warren()
        .args(["ssh", "-n", "-F"])
        .arg(sshd.client_config())
        .args(["test", "cat; echo end"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Keep our end of stdin open: with -n the remote must not wait for it.
    let _stdin = child.stdin.take();
    let out = child.wait_with_output().expect("wait");
    assert_eq!(text(&out.stdout), "end\n");
}

#[test]
fn remote_killed_by_signal_exits_255() {
    let sshd = Sshd::start();
    let out = ssh(&sshd, &["test", "kill -TERM $$"]);
    assert_eq!(out.status.code(), Some(255), "{}", text(&out.stderr));
}

#[test]
fn setenv_and_sendenv_reach_the_remote() {
    let sshd = Sshd::start();
    let out = warren()
        .args(["ssh", "-F"])
        .arg(sshd.client_config())
        .args([
            "-o",
            "SetEnv=WARREN_A=one",
            "-o",
            "SendEnv=WARREN_B",
            "test",
            "echo $WARREN_A $WARREN_B",
        ])
        .env("WARREN_B", "two")
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "one two\n");
}

#[test]
fn forced_tty_allocates_a_pty() {
    let sshd = Sshd::start();
    let out = ssh(&sshd, &["-tt", "test", "tty"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("/dev/pts/"),
        "stdout: {}",
        text(&out.stdout)
    );
    let out = ssh(&sshd, &["-T", "test", "tty"]);
    assert!(
        text(&out.stdout).contains("not a tty"),
        "stdout: {}",
        text(&out.stdout)
    );
}

#[test]
fn remote_command_from_config_runs() {
    let sshd = Sshd::start();
    let out = ssh(&sshd, &["-o", "RemoteCommand=echo from-config", "test"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "from-config\n");
}

#[test]
fn connection_refused_names_host_port_and_exits_255() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let out = warren()
        .args([
            "ssh",
            "-F",
            "none",
            "-o",
            "BatchMode=yes",
            "-p",
            &port.to_string(),
            "127.0.0.1",
            "true",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(255));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "connect to host 127.0.0.1 port {port}: Connection refused"
        )),
        "{err}"
    );
}

#[test]
fn unresolvable_name_is_reported() {
    let out = warren()
        .args([
            "ssh",
            "-F",
            "none",
            "-o",
            "BatchMode=yes",
            "no-such-host.invalid",
            "true",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(255));
    assert!(
        text(&out.stderr).contains("Could not resolve hostname no-such-host.invalid"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn later_flags_are_rejected_clearly() {
    let out = warren()
        .args(["ssh", "-w", "0", "host"])
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(255));
    assert!(
        text(&out.stderr).contains("-w (tun forwarding) is not supported yet"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn version_flag() {
    let out = warren().args(["ssh", "-V"]).output().expect("run");
    assert!(out.status.success());
    assert!(
        text(&out.stderr).starts_with("warren "),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn tilde_dot_disconnects_a_pty_session() {
    let sshd = Sshd::start();
    let mut child = warren()
        .args(["ssh", "-tt", "-F"])
        .arg(sshd.client_config())
        .args(["test", "sleep 30"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"\n~.").expect("write");
    let started = std::time::Instant::now();
    let out = child.wait_with_output().expect("wait");
    drop(stdin);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "~. must end the session"
    );
    assert_eq!(out.status.code(), Some(255), "{}", text(&out.stderr));
}

#[test]
fn log_file_takes_the_debug_output_and_stdout_stays_data() {
    let sshd = Sshd::start();
    let log = sshd.dir().join("client.log");
    let out = warren()
        .args(["ssh", "-v", "-E"])
        .arg(&log)
        .arg("-F")
        .arg(sshd.client_config())
        .args(["test", "echo data"])
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "data\n");
    assert!(
        !text(&out.stderr).contains("Connecting to"),
        "logs went to -E: {}",
        text(&out.stderr)
    );
    let logged = std::fs::read_to_string(&log).expect("log file");
    for step in [
        "Resolved test to",
        "Connecting to 127.0.0.1",
        "Server host key: ssh-ed25519 SHA256:",
        "kex: ",
        "Trying private key",
        "Authenticated to",
    ] {
        assert!(logged.contains(step), "-v log lacks {step:?}:\n{logged}");
    }
}

/// Runs `shell_cmd` under `script`, which gives it a real terminal, feeding
/// `input` as keystrokes.
fn under_terminal(shell_cmd: &str, input: &[u8]) -> Output {
    let mut child = Command::new("script")
        .args(["-qefc", shell_cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script(1) from util-linux is required");
    let mut stdin = child.stdin.take().expect("stdin");
    // Give the session time to start before typing, as a user would.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    stdin.write_all(input).expect("type");
    let out = child.wait_with_output().expect("wait");
    drop(stdin);
    out
}

#[test]
fn interactive_shell_gets_a_pty_and_the_terminal_is_restored() {
    let sshd = Sshd::start();
    let cmd = format!(
        "{} ssh -F {} test; echo \"exit=$?\"; stty -a",
        env!("CARGO_BIN_EXE_warren"),
        sshd.client_config().display()
    );
    let out = under_terminal(&cmd, b"echo sum=$((6*7)); tty; exit 3\n");
    let screen = text(&out.stdout);
    assert!(screen.contains("sum=42"), "{screen}");
    assert!(
        screen.contains("/dev/pts/"),
        "the remote shell has a PTY: {screen}"
    );
    assert!(screen.contains("exit=3"), "{screen}");
    // After warren exits, the local terminal is cooked again.
    let stty = screen
        .lines()
        .skip_while(|l| !l.contains("exit=3"))
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        stty.contains(" icanon") && stty.contains(" echo "),
        "terminal left raw: {stty}"
    );
}
