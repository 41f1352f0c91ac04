//! OpenSSH's `ssh` against `warren serve`: exec with exit codes, stdio and
//! signals, PTYs and window changes, environment, and who may log in
//! (wrong, expired, restricted, forced-command and certificate keys).
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]

mod common;
use common::serve::Serve;
use common::{pattern, text, warren};

use std::io::Write;
use std::process::{Command, Output, Stdio};

use warren_testkit::Sshd;

fn run(mut cmd: Command, what: &str) -> Output {
    cmd.arg("127.0.0.1").arg(what).output().expect("run ssh")
}

#[test]
fn start_lines_name_the_address_and_the_host_key_fingerprint() {
    let serve = Serve::start();
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(serve.dir().join("host_key.pub"))
        .output()
        .unwrap();
    let listed = text(&out.stdout);
    assert!(
        listed.contains(serve.fingerprint()),
        "ssh-keygen says {listed}, warren printed {}",
        serve.fingerprint()
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(serve.dir().join("host_key"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn exec_returns_exit_status_and_splits_stdout_stderr() {
    let serve = Serve::start();
    let out = run(serve.ssh(), "echo out; echo err >&2; exit 7");
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}\n{}",
        text(&out.stderr),
        serve.log()
    );
    assert_eq!(text(&out.stdout), "out\n");
    assert!(text(&out.stderr).contains("err"), "{}", text(&out.stderr));
    assert!(
        serve.log().contains("accepted publickey"),
        "{}",
        serve.log()
    );
}

#[test]
fn stdin_reaches_the_command_and_comes_back_byte_for_byte() {
    let serve = Serve::start();
    let data = pattern(3 * 1024 * 1024 + 17, 7);
    let mut child = serve
        .ssh()
        .args(["127.0.0.1", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = data.clone();
    let writer = std::thread::spawn(move || stdin.write_all(&input).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stderr),
        serve.log()
    );
    assert_eq!(out.stdout.len(), data.len());
    assert!(out.stdout == data, "bytes differ");
}

/// warren on both ends, both directions full at once: russh's loop
/// writes before it reads, so two of them can freeze each other unless
/// the server's writes never wait (it buffers them).
#[test]
fn warren_client_and_server_stream_both_ways_at_once() {
    let serve = Serve::start();
    let data = pattern(64 * 1024 * 1024, 7);
    let mut child = warren()
        .arg("ssh")
        .args(serve.client_options(&serve.client_key()))
        .args(["-p", &serve.port().to_string(), "127.0.0.1", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    let input = data.clone();
    let writer = std::thread::spawn(move || stdin.write_all(&input).unwrap());
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        let froze = done_rx
            .recv_timeout(std::time::Duration::from_secs(90))
            .is_err();
        if froze {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        froze
    });
    let out = child.wait_with_output().unwrap();
    let _ = done_tx.send(());
    assert!(
        !watchdog.join().unwrap(),
        "the connection froze: 90 s without finishing"
    );
    writer.join().unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stderr),
        serve.log()
    );
    assert_eq!(out.stdout.len(), data.len());
    assert!(out.stdout == data, "bytes differ");
}

#[test]
fn session_environment_matches_sshd_conventions() {
    let serve = Serve::start();
    let out = run(
        serve.ssh(),
        "echo \"$USER|$HOME|${SSH_CONNECTION%% *}|$(pwd)\"",
    );
    let user = warren_testkit::local_user();
    let line = text(&out.stdout);
    assert!(line.starts_with(&format!("{user}|")), "{line}");
    assert!(line.contains("|127.0.0.1|"), "{line}");
    let home = line.split('|').nth(1).unwrap().to_owned();
    assert!(line.trim_end().ends_with(&home), "cwd is home: {line}");
}

#[test]
fn accepted_env_is_set_and_others_refused() {
    let serve = Serve::builder().arg("--accept-env").arg("WARREN_*").start();
    let mut cmd = serve.ssh();
    cmd.args(["-o", "SetEnv=WARREN_A=one FOO=two"]);
    let out = run(cmd, "echo \"[$WARREN_A][$FOO]\"");
    assert_eq!(text(&out.stdout), "[one][]\n", "{}", serve.log());
    assert!(
        serve.wait_log("variable FOO is not accepted"),
        "{}",
        serve.log()
    );
}

#[test]
fn killed_by_a_signal_exits_like_against_sshd() {
    let serve = Serve::start();
    let ours = run(serve.ssh(), "kill -TERM $$");
    let sshd = Sshd::start();
    let theirs = Command::new("ssh")
        .arg("-F")
        .arg(sshd.client_config())
        .args(["test", "kill -TERM $$"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        ours.status.code(),
        theirs.status.code(),
        "warren: {} / sshd: {}",
        text(&ours.stderr),
        text(&theirs.stderr)
    );
    assert!(
        serve.wait_log("program killed by a signal"),
        "{}",
        serve.log()
    );
}

/// Runs `shell_cmd` under `script(1)`, which gives it a real terminal.
fn under_terminal(shell_cmd: &str) -> Output {
    Command::new("timeout")
        .args(["60", "script", "-qefc", shell_cmd, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("script(1) from util-linux is required")
}

fn ssh_line(serve: &Serve, extra: &str) -> String {
    let opts: Vec<String> = serve
        .client_options(&serve.client_key())
        .into_iter()
        .map(|o| format!("'{o}'"))
        .collect();
    format!("ssh {} -p {} {extra}", opts.join(" "), serve.port())
}

#[test]
fn forced_tty_gets_a_pty_with_the_terminal_size_and_term() {
    let serve = Serve::start();
    let cmd = format!(
        "stty rows 40 cols 100; TERM=xterm-warren {} 127.0.0.1 'tty; stty size; echo $TERM'",
        ssh_line(&serve, "-tt")
    );
    let out = text(&under_terminal(&cmd).stdout);
    assert!(out.contains("/dev/pts/"), "{out}\n{}", serve.log());
    assert!(out.contains("40 100"), "{out}");
    assert!(out.contains("xterm-warren"), "{out}");
    let out = run(serve.ssh(), "tty");
    assert!(text(&out.stdout).contains("not a tty"), "no pty without -t");
}

#[test]
fn window_change_reaches_the_pty() {
    let serve = Serve::start();
    let remote = "stty size; i=0; while [ \"$(stty size)\" = \"40 100\" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; stty size";
    let dir = serve.dir().display().to_string();
    let cmd = format!(
        "stty rows 40 cols 100; {ssh} 127.0.0.1 '{remote}' </dev/tty >{dir}/out 2>&1 & p=$!; \
         i=0; until grep -q '40 100' {dir}/out || [ $i -ge 200 ]; do sleep 0.1; i=$((i+1)); done; \
         stty rows 50 cols 120; kill -WINCH $p; wait $p; cat {dir}/out",
        ssh = ssh_line(&serve, "-tt"),
    );
    let out = text(&under_terminal(&cmd).stdout);
    let first = out
        .find("40 100")
        .unwrap_or_else(|| panic!("{out}\n{}", serve.log()));
    assert!(out[first..].contains("50 120"), "{out}");
}

#[test]
fn interactive_shell_runs_typed_commands() {
    let serve = Serve::start();
    let mut child = Command::new("timeout")
        .args([
            "60",
            "script",
            "-qefc",
            &ssh_line(&serve, "127.0.0.1"),
            "/dev/null",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"echo sum=$((6*7)); exit 3\n").unwrap();
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    let screen = text(&out.stdout);
    assert!(screen.contains("sum=42"), "{screen}\n{}", serve.log());
    assert_eq!(out.status.code(), Some(3), "{screen}");
}

#[test]
fn wrong_key_is_refused() {
    let serve = Serve::start();
    let other = warren_testkit::keygen(serve.dir(), "other", "ed25519", "");
    let out = run(serve.ssh_with_key(&other), "true");
    assert_eq!(out.status.code(), Some(255));
    assert!(
        text(&out.stderr).contains("Permission denied"),
        "{}",
        text(&out.stderr)
    );
    assert!(serve.wait_log("refused publickey"), "{}", serve.log());
    assert!(
        !serve.log().contains("accepted publickey"),
        "{}",
        serve.log()
    );
}

#[test]
fn expired_key_is_refused_and_a_future_expiry_is_not() {
    let serve = Serve::builder()
        .authorized_keys("expiry-time=\"20000101\" KEY\n")
        .start();
    let out = run(serve.ssh(), "true");
    assert_eq!(out.status.code(), Some(255), "{}", serve.log());
    assert!(serve.wait_log("expired"), "{}", serve.log());
    let serve = Serve::builder()
        .authorized_keys("expiry-time=\"29991231\" KEY\n")
        .start();
    assert!(run(serve.ssh(), "true").status.success(), "{}", serve.log());
}

#[test]
fn from_option_refuses_other_addresses() {
    let serve = Serve::builder()
        .authorized_keys("from=\"10.0.0.0/8\" KEY\n")
        .start();
    assert_eq!(run(serve.ssh(), "true").status.code(), Some(255));
    assert!(serve.wait_log("does not match from"), "{}", serve.log());
    let serve = Serve::builder()
        .authorized_keys("from=\"127.0.0.*\" KEY\n")
        .start();
    assert!(run(serve.ssh(), "true").status.success(), "{}", serve.log());
}

#[test]
fn restrict_forbids_a_pty_and_pty_reenables_it() {
    let serve = Serve::builder().authorized_keys("restrict KEY\n").start();
    let mut cmd = serve.ssh();
    cmd.arg("-tt");
    let out = run(cmd, "tty");
    // ssh -tt gives up when a forced pty is refused, as against sshd.
    assert_eq!(out.status.code(), Some(255), "{}", text(&out.stdout));
    assert!(
        !text(&out.stdout).contains("/dev/pts/"),
        "{}",
        text(&out.stdout)
    );
    assert!(serve.wait_log("forbid a pty"), "{}", serve.log());

    let serve = Serve::builder()
        .authorized_keys("restrict,pty KEY\n")
        .start();
    let mut cmd = serve.ssh();
    cmd.arg("-tt");
    assert!(text(&run(cmd, "tty").stdout).contains("/dev/pts/"));
}

#[test]
fn forced_command_runs_with_the_original_command_in_the_environment() {
    let serve = Serve::builder()
        .authorized_keys("command=\"echo forced:$SSH_ORIGINAL_COMMAND\" KEY\n")
        .start();
    let out = run(serve.ssh(), "whoami");
    assert_eq!(text(&out.stdout), "forced:whoami\n", "{}", serve.log());
}

#[test]
fn certificate_from_a_cert_authority_logs_in_for_its_principal_only() {
    let serve = Serve::builder().authorized_keys("").start();
    let ca = warren_testkit::keygen(serve.dir(), "ca", "ed25519", "");
    let ca_pub = std::fs::read_to_string(serve.dir().join("ca.pub")).unwrap();
    std::fs::write(
        serve.dir().join("authorized_keys"),
        format!("cert-authority {ca_pub}"),
    )
    .unwrap();
    let user = warren_testkit::local_user();
    let good = warren_testkit::keygen(serve.dir(), "good", "ed25519", "");
    warren_testkit::sign(&ca, &serve.dir().join("good.pub"), &["-n", &user]);
    let out = run(serve.ssh_with_key(&good), "echo in");
    assert_eq!(
        text(&out.stdout),
        "in\n",
        "{}\n{}",
        text(&out.stderr),
        serve.log()
    );
    assert!(serve.log().contains("certificate"), "{}", serve.log());

    let bad = warren_testkit::keygen(serve.dir(), "bad", "ed25519", "");
    warren_testkit::sign(&ca, &serve.dir().join("bad.pub"), &["-n", "someone-else"]);
    let out = run(serve.ssh_with_key(&bad), "true");
    assert_eq!(out.status.code(), Some(255));
    assert!(serve.wait_log("no principal"), "{}", serve.log());
}

/// A private ssh-agent holding `key`, killed on drop.
struct Agent {
    pid: String,
    sock: std::path::PathBuf,
}

impl Agent {
    fn start(dir: &std::path::Path, key: &std::path::Path) -> Agent {
        let sock = dir.join("agent.sock");
        let out = Command::new("ssh-agent")
            .arg("-a")
            .arg(&sock)
            .arg("-s")
            .output()
            .expect("ssh-agent is required");
        let said = text(&out.stdout);
        let pid = said
            .split("SSH_AGENT_PID=")
            .nth(1)
            .and_then(|r| r.split(';').next())
            .unwrap_or_else(|| panic!("{said}"))
            .to_owned();
        let agent = Agent { pid, sock };
        let added = Command::new("ssh-add")
            .arg(key)
            .env("SSH_AUTH_SOCK", &agent.sock)
            .output()
            .unwrap();
        assert!(added.status.success(), "{}", text(&added.stderr));
        agent
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(&self.pid).status();
    }
}

/// The fixture's ssh with the agent as IdentityAgent (ssh forwards no
/// agent it does not use itself) and -A.
fn ssh_forwarding_agent(serve: &Serve, agent: &Agent) -> Command {
    let agent_opt = format!("IdentityAgent={}", agent.sock.display());
    let opts = serve
        .client_options(&serve.client_key())
        .into_iter()
        .map(|o| {
            if o == "IdentityAgent=none" {
                agent_opt.clone()
            } else {
                o
            }
        });
    let mut cmd = Command::new("ssh");
    cmd.args(opts)
        .args(["-A", "-p", &serve.port().to_string()])
        .stdin(Stdio::null());
    cmd
}

#[test]
fn agent_forwarding_reaches_the_clients_agent_unless_forbidden() {
    let serve = Serve::start();
    let agent = Agent::start(serve.dir(), &serve.client_key());
    let fp = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(serve.dir().join("id.pub"))
        .output()
        .unwrap();
    let fingerprint = text(&fp.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned();
    let cmd = ssh_forwarding_agent(&serve, &agent);
    let out = run(cmd, "echo \"sock=$SSH_AUTH_SOCK\"; ssh-add -l");
    let said = text(&out.stdout);
    assert!(
        said.contains(&fingerprint),
        "{said}\n{}\n{}",
        text(&out.stderr),
        serve.log()
    );
    let sock = said
        .lines()
        .next()
        .unwrap()
        .trim_start_matches("sock=")
        .to_owned();
    assert!(!sock.is_empty());
    // The socket goes away with the connection.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::path::Path::new(&sock).exists() {
        assert!(std::time::Instant::now() < deadline, "{sock} left behind");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    let serve = Serve::builder()
        .authorized_keys("no-agent-forwarding KEY\n")
        .start();
    let agent = Agent::start(serve.dir(), &serve.client_key());
    let cmd = ssh_forwarding_agent(&serve, &agent);
    let out = run(cmd, "echo \"sock=$SSH_AUTH_SOCK\"");
    assert_eq!(text(&out.stdout), "sock=\n", "{}", serve.log());
    assert!(serve.wait_log("forbid agent forwarding"), "{}", serve.log());
}

#[test]
fn every_cipher_sshd_offers_by_default_is_offered() {
    // Catches: russh's default cipher list, which lacks aes128-gcm, so an
    // `ssh -c aes128-gcm@openssh.com` (or a tool with a fixed list) could
    // not reach warren serve.
    let serve = Serve::start();
    for cipher in [
        "chacha20-poly1305@openssh.com",
        "aes128-ctr",
        "aes192-ctr",
        "aes256-ctr",
        "aes128-gcm@openssh.com",
        "aes256-gcm@openssh.com",
    ] {
        let mut cmd = serve.ssh();
        cmd.args(["-c", cipher]);
        let out = run(cmd, "echo ok");
        assert_eq!(text(&out.stdout), "ok\n", "{cipher}: {}", text(&out.stderr));
    }
}
