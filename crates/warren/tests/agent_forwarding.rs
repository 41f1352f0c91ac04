//! Agent forwarding in `warren ssh` with two real sshd: on the first host
//! `ssh-add -l` shows the forwarded keys and OpenSSH's ssh there logs in to
//! the second host with them. -A, ForwardAgent yes|$ENV, -a, and the -v line.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{text, warren};
use warren_testkit::{Sshd, keygen, local_user};

struct Agent {
    child: Child,
    sock: PathBuf,
}

impl Agent {
    /// OpenSSH's ssh-agent holding `key` (warren's agent has its own tests).
    fn with_key(dir: &Path, name: &str, key: &Path) -> Agent {
        let sock = dir.join(name);
        let child = Command::new("ssh-agent")
            .args(["-D", "-a"])
            .arg(&sock)
            .stdout(Stdio::null())
            .spawn()
            .expect("ssh-agent");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !sock.exists() {
            assert!(Instant::now() < deadline, "ssh-agent socket never appeared");
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = Command::new("ssh-add")
            .arg(key)
            .env("SSH_AUTH_SOCK", &sock)
            .output()
            .expect("ssh-add");
        assert!(out.status.success(), "ssh-add: {}", text(&out.stderr));
        Agent { child, sock }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn fingerprint(key: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(key.with_extension("pub"))
        .output()
        .expect("ssh-keygen");
    text(&out.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned()
}

/// `Host test` for `sshd`, logging in with the agent at `sock` only.
fn config(sshd: &Sshd, sock: &Path, extra: &str) -> PathBuf {
    let base = std::fs::read_to_string(sshd.client_config()).expect("cfg");
    let base: String = base
        .lines()
        .filter(|l| {
            !l.contains("IdentityFile")
                && !l.contains("IdentityAgent")
                && !l.contains("IdentitiesOnly")
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let cfg = sshd.dir().join(format!("fwd_cfg_{n}"));
    std::fs::write(
        &cfg,
        format!(
            "Host test\n  IdentityAgent {}\n  IdentityFile /nonexistent/key\n{extra}{base}",
            sock.display()
        ),
    )
    .expect("cfg");
    cfg
}

/// On the first host: list the agent, then hop to the second with OpenSSH.
fn hop_command(second: &Sshd) -> String {
    format!(
        "echo sock=${{SSH_AUTH_SOCK:-none}}; ssh-add -l; ssh -F /dev/null -o BatchMode=yes \
         -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
         -o IdentityFile=/nonexistent/key -p {} {}@127.0.0.1 echo second-hop-ok",
        second.port(),
        local_user()
    )
}

fn run(cfg: &Path, flags: &[&str], command: &str, env: &[(&str, &Path)]) -> Output {
    warren()
        .args(["ssh", "-F"])
        .arg(cfg)
        .args(flags)
        .args(["test", command])
        .envs(env.iter().map(|(k, v)| (*k, v.as_os_str())))
        .stdin(Stdio::null())
        .output()
        .expect("warren ssh")
}

#[test]
fn forwarded_agent_lists_keys_and_logs_in_to_the_next_host() {
    let tmp = tempfile::tempdir().expect("tmp");
    let key = keygen(tmp.path(), "fwd", "ed25519", "");
    let first = Sshd::builder().client_key(&key).start();
    let second = Sshd::builder().client_key(&key).start();
    let agent = Agent::with_key(tmp.path(), "agent.sock", &key);
    let cfg = config(&first, &agent.sock, "");
    let out = run(&cfg, &["-A", "-v"], &hop_command(&second), &[]);
    let said = text(&out.stdout);
    assert!(
        said.contains(&fingerprint(&key)),
        "ssh-add -l on the remote: {said}\n{}",
        text(&out.stderr)
    );
    assert!(
        said.contains("second-hop-ok"),
        "ssh from the remote with the forwarded agent: {said}\n{}",
        second.log()
    );
    assert!(
        text(&out.stderr).contains("Requesting authentication agent forwarding."),
        "-v says agent forwarding is on: {}",
        text(&out.stderr)
    );
}

#[test]
fn without_a_the_remote_sees_no_agent_and_minus_a_wins_over_config() {
    let tmp = tempfile::tempdir().expect("tmp");
    let key = keygen(tmp.path(), "nofwd", "ed25519", "");
    let first = Sshd::builder().client_key(&key).start();
    let second = Sshd::builder().client_key(&key).start();
    let agent = Agent::with_key(tmp.path(), "agent.sock", &key);
    for (extra, flags) in [("", &[][..]), ("  ForwardAgent yes\n", &["-a"][..])] {
        let cfg = config(&first, &agent.sock, extra);
        let out = run(&cfg, flags, &hop_command(&second), &[]);
        let said = text(&out.stdout);
        assert!(said.contains("sock=none"), "{extra:?} {flags:?}: {said}");
        assert!(
            !said.contains("second-hop-ok"),
            "{extra:?} {flags:?}: {said}"
        );
    }
}

#[test]
fn forward_agent_env_names_another_agent() {
    let tmp = tempfile::tempdir().expect("tmp");
    let login = keygen(tmp.path(), "login", "ed25519", "");
    let other = keygen(tmp.path(), "other", "ecdsa", "");
    let first = Sshd::builder().client_key(&login).start();
    let second = Sshd::builder().client_key(&other).start();
    let login_agent = Agent::with_key(tmp.path(), "login.sock", &login);
    let other_agent = Agent::with_key(tmp.path(), "other.sock", &other);
    let cfg = config(
        &first,
        &login_agent.sock,
        "  ForwardAgent $WARREN_TEST_FWD_AGENT\n",
    );
    let out = run(
        &cfg,
        &[],
        &hop_command(&second),
        &[("WARREN_TEST_FWD_AGENT", &other_agent.sock)],
    );
    let said = text(&out.stdout);
    assert!(
        said.contains(&fingerprint(&other)),
        "{said}\n{}",
        text(&out.stderr)
    );
    assert!(
        !said.contains(&fingerprint(&login)),
        "only the named agent is forwarded: {said}"
    );
    assert!(said.contains("second-hop-ok"), "{said}");
}
