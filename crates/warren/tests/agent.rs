//! `warren agent` with OpenSSH's tools as clients: ssh-add (add with -t and
//! -c, -l, -L, -d, -D, -x/-X) and ssh logging in with its keys (every key
//! type and a certificate); the socket's modes, the uid check, -s/-k and
//! the COMMAND form. (warren's client against OpenSSH's ssh-agent is
//! `ssh_hostkey_auth::agent_identities_authenticate`.)
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{script, text, warren};
use warren_testkit::{Sshd, keygen, sign};

/// `warren agent -D -a SOCK`, killed on drop.
struct WarrenAgent {
    child: Child,
    sock: PathBuf,
    _dir: tempfile::TempDir,
}

impl WarrenAgent {
    fn start(extra: &[&str]) -> WarrenAgent {
        let dir = tempfile::tempdir().expect("tmp");
        let sock = dir.path().join("agent.sock");
        let child = warren()
            .args(["agent", "-D", "-a"])
            .arg(&sock)
            .args(extra)
            .stdout(Stdio::null())
            .spawn()
            .expect("warren agent");
        wait_for(&sock);
        WarrenAgent {
            child,
            sock,
            _dir: dir,
        }
    }

    fn ssh_add(&self, args: &[&str]) -> Output {
        Command::new("ssh-add")
            .args(args)
            .env("SSH_AUTH_SOCK", &self.sock)
            .env_remove("SSH_ASKPASS")
            .stdin(Stdio::null())
            .output()
            .expect("ssh-add")
    }
}

impl Drop for WarrenAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({:?}): {}\n{}",
        out.status,
        text(&out.stderr),
        text(&out.stdout)
    );
    text(&out.stdout)
}

fn fingerprint_line(key: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(format!("{}.pub", key.display()))
        .output()
        .expect("ssh-keygen -l");
    ok(&out, "ssh-keygen -l").trim().to_owned()
}

/// A config for `ssh -F` / `warren ssh -F` reaching `sshd` with only the
/// agent at `sock` (no key files).
fn agent_config(sshd: &Sshd, sock: &Path) -> PathBuf {
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
    let cfg = sshd.dir().join(format!("agent_cfg_{}", std::process::id()));
    std::fs::write(
        &cfg,
        format!(
            "Host test\n  IdentityAgent {}\n  IdentityFile /nonexistent/key\n{base}",
            sock.display()
        ),
    )
    .expect("cfg");
    cfg
}

fn ssh(cfg: &Path, command: &str, env: &[(&str, &str)]) -> Output {
    Command::new("ssh")
        .arg("-F")
        .arg(cfg)
        .args(["test", command])
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("ssh")
}

#[test]
fn ssh_add_lists_shows_and_removes_keys_of_every_type() {
    let agent = WarrenAgent::start(&[]);
    let tmp = tempfile::tempdir().expect("tmp");
    let keys: Vec<PathBuf> = [("ed", "ed25519"), ("ec", "ecdsa"), ("rsa", "rsa")]
        .iter()
        .map(|(name, kind)| keygen(tmp.path(), name, kind, ""))
        .collect();
    let out = agent.ssh_add(&["-l"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("The agent has no identities."));
    for k in &keys {
        let said = agent.ssh_add(&[k.to_str().unwrap()]);
        ok(&said, "ssh-add");
        assert!(
            text(&said.stderr).contains("Identity added:"),
            "{}",
            text(&said.stderr)
        );
    }
    let listed = ok(&agent.ssh_add(&["-l"]), "ssh-add -l");
    let want: Vec<String> = keys.iter().map(|k| fingerprint_line(k)).collect();
    assert_eq!(
        listed.lines().collect::<Vec<_>>(),
        want,
        "in the order added, with comments"
    );
    let public = ok(&agent.ssh_add(&["-L"]), "ssh-add -L");
    let want: Vec<String> = keys
        .iter()
        .map(|k| {
            std::fs::read_to_string(format!("{}.pub", k.display()))
                .expect("pub")
                .trim()
                .to_owned()
        })
        .collect();
    assert_eq!(public.lines().collect::<Vec<_>>(), want);
    ok(
        &agent.ssh_add(&["-d", keys[1].to_str().unwrap()]),
        "ssh-add -d",
    );
    let listed = ok(&agent.ssh_add(&["-l"]), "ssh-add -l");
    assert_eq!(listed.lines().count(), 2);
    assert!(!listed.contains(&fingerprint_line(&keys[1])));
    ok(&agent.ssh_add(&["-D"]), "ssh-add -D");
    assert_eq!(agent.ssh_add(&["-l"]).status.code(), Some(1));
}

#[test]
fn ssh_logs_in_with_every_key_type_and_a_certificate_from_warren_agent() {
    let tmp = tempfile::tempdir().expect("tmp");
    let ca = keygen(tmp.path(), "user_ca", "ed25519", "");
    let sshd = Sshd::builder()
        .config(format!("TrustedUserCAKeys {}.pub", ca.display()))
        .start();
    for kind in ["ed25519", "ecdsa", "rsa", "cert"] {
        let agent = WarrenAgent::start(&[]);
        let key = if kind == "cert" {
            let k = keygen(tmp.path(), "certified", "ed25519", "");
            sign(&ca, &k.with_extension("pub"), &["-n", &common_user()]);
            k
        } else {
            let k = keygen(tmp.path(), &format!("id_{kind}"), kind, "");
            sshd.authorize(&std::fs::read_to_string(format!("{}.pub", k.display())).unwrap());
            k
        };
        let added = agent.ssh_add(&[key.to_str().unwrap()]);
        ok(&added, "ssh-add");
        if kind == "cert" {
            assert!(
                text(&added.stderr).contains("Certificate added:"),
                "ssh-add sent the certificate: {}",
                text(&added.stderr)
            );
            let listed = ok(&agent.ssh_add(&["-l"]), "ssh-add -l");
            assert!(listed.contains("(ED25519-CERT)"), "{listed}");
        }
        let cfg = agent_config(&sshd, &agent.sock);
        let out = ssh(&cfg, "echo agent-$((40+2))", &[]);
        assert_eq!(
            ok(&out, &format!("ssh with {kind} from warren agent")),
            "agent-42\n",
            "{}",
            sshd.log()
        );
        if kind == "cert" {
            assert!(sshd.log().contains("ED25519-CERT"), "{}", sshd.log());
        }
    }
}

fn common_user() -> String {
    warren_testkit::local_user()
}

#[test]
fn lifetime_removes_the_key_and_default_lifetime_applies() {
    let tmp = tempfile::tempdir().expect("tmp");
    let key = keygen(tmp.path(), "short", "ed25519", "");
    for (agent_args, add_args) in [(&[][..], &["-t", "2"][..]), (&["-t", "2"][..], &[][..])] {
        let agent = WarrenAgent::start(agent_args);
        let mut args = add_args.to_vec();
        args.push(key.to_str().unwrap());
        ok(&agent.ssh_add(&args), "ssh-add");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = agent.ssh_add(&["-l"]);
            if out.status.code() == Some(1) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "key still listed 30 s after a 2 s lifetime ({agent_args:?} {add_args:?})"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

#[test]
fn confirm_asks_through_ssh_askpass_and_honours_the_answer() {
    let tmp = tempfile::tempdir().expect("tmp");
    let key = keygen(tmp.path(), "confirm_me", "ed25519", "");
    let sshd = Sshd::builder().client_key(&key).start();
    let asked = tmp.path().join("asked");
    let answer = tmp.path().join("answer");
    let askpass = script(
        tmp.path().join("askpass"),
        &format!(
            "printf '%s|%s\\n' \"$SSH_ASKPASS_PROMPT\" \"$1\" >> {asked}\nexit $(cat {answer})\n",
            asked = asked.display(),
            answer = answer.display()
        ),
    );
    let dir = tempfile::tempdir().expect("tmp");
    let sock = dir.path().join("agent.sock");
    let mut child = warren()
        .args(["agent", "-D", "-a"])
        .arg(&sock)
        .env("SSH_ASKPASS", &askpass)
        .stdout(Stdio::null())
        .spawn()
        .expect("agent");
    wait_for(&sock);
    let added = Command::new("ssh-add")
        .args(["-c"])
        .arg(&key)
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .expect("ssh-add -c");
    ok(&added, "ssh-add -c");
    let cfg = agent_config(&sshd, &sock);
    std::fs::write(&answer, "1").unwrap();
    let refused = ssh(&cfg, "echo no", &[]);
    std::fs::write(&answer, "0").unwrap();
    let allowed = ssh(&cfg, "echo yes", &[]);
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        !refused.status.success(),
        "askpass said no: {}",
        text(&refused.stdout)
    );
    assert_eq!(ok(&allowed, "ssh after yes"), "yes\n");
    let log = std::fs::read_to_string(&asked).expect("askpass was run");
    assert!(log.starts_with("confirm|Allow use of key "), "{log}");
    assert!(log.contains("Key fingerprint SHA256:"), "{log}");
}

#[test]
fn lock_and_unlock_with_ssh_add() {
    let agent = WarrenAgent::start(&[]);
    let tmp = tempfile::tempdir().expect("tmp");
    let key = keygen(tmp.path(), "locked", "ed25519", "");
    ok(&agent.ssh_add(&[key.to_str().unwrap()]), "ssh-add");
    let sock = agent.sock.clone();
    let dir = tmp.path().to_owned();
    let pass = move |word: &str, args: &[&str]| {
        let askpass = script(dir.join(format!("pw_{word}")), &format!("echo {word}\n"));
        Command::new("ssh-add")
            .args(args)
            .env("SSH_AUTH_SOCK", &sock)
            .env("SSH_ASKPASS", &askpass)
            .env("SSH_ASKPASS_REQUIRE", "force")
            .stdin(Stdio::null())
            .output()
            .expect("ssh-add")
    };
    ok(&pass("sesame", &["-x"]), "ssh-add -x");
    let listed = agent.ssh_add(&["-l"]);
    assert_eq!(listed.status.code(), Some(1), "locked: no identities shown");
    let wrong = pass("wrong", &["-X"]);
    assert!(!wrong.status.success(), "wrong passphrase does not unlock");
    assert_eq!(agent.ssh_add(&["-l"]).status.code(), Some(1));
    ok(&pass("sesame", &["-X"]), "ssh-add -X");
    let listed = ok(&agent.ssh_add(&["-l"]), "ssh-add -l");
    assert!(listed.contains(&fingerprint_line(&key)), "{listed}");
}

#[test]
fn socket_is_private_and_other_users_are_refused() {
    // The default place: a fresh 0700 directory, the socket 0600.
    let out = warren().args(["agent", "-s"]).output().expect("agent -s");
    let said = ok(&out, "warren agent -s");
    let sock = said
        .split("SSH_AUTH_SOCK=")
        .nth(1)
        .and_then(|s| s.split(';').next())
        .expect("SSH_AUTH_SOCK line")
        .to_owned();
    let pid = said
        .split("SSH_AGENT_PID=")
        .nth(1)
        .and_then(|s| s.split(';').next())
        .expect("SSH_AGENT_PID line")
        .to_owned();
    assert!(said.contains(&format!("echo Agent pid {pid};")), "{said}");
    let sock = PathBuf::from(sock);
    let dir = sock.parent().unwrap().to_owned();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&sock), 0o600);
    let listed = Command::new("ssh-add")
        .arg("-l")
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .expect("ssh-add");
    assert_eq!(
        listed.status.code(),
        Some(1),
        "reachable: {}",
        text(&listed.stderr)
    );
    // Opened up on purpose: the uid check alone must turn another user away.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    let other = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "ssh-add",
            "-l",
        ])
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .expect("setpriv (util-linux)");
    let said_other = format!("{}{}", text(&other.stdout), text(&other.stderr));
    assert!(
        !other.status.success() && !said_other.contains("The agent has no identities"),
        "uid 65534 must be refused: {said_other}"
    );
    let killed = warren()
        .args(["agent", "-k"])
        .env("SSH_AGENT_PID", &pid)
        .output()
        .expect("agent -k");
    let said = ok(&killed, "warren agent -k");
    assert!(said.contains("unset SSH_AUTH_SOCK;"), "{said}");
    assert!(
        said.contains(&format!("echo Agent pid {pid} killed;")),
        "{said}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while dir.exists() {
        assert!(Instant::now() < deadline, "socket dir left behind after -k");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn c_shell_lines_and_command_mode() {
    let tmp = tempfile::tempdir().expect("tmp");
    let key = keygen(tmp.path(), "cmd", "ed25519", "");
    let sock = tmp.path().join("cmd.sock");
    let out = warren()
        .args(["agent", "-a"])
        .arg(&sock)
        .args(["sh", "-c"])
        .arg(format!(
            "ssh-add -q {} && ssh-add -l && test \"$SSH_AUTH_SOCK\" = {} && exit 7",
            key.display(),
            sock.display()
        ))
        .output()
        .expect("agent COMMAND");
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&fingerprint_line(&key)));
    assert!(!sock.exists(), "socket removed when the command ends");
    let out = warren()
        .args(["agent", "-c", "-D", "-a"])
        .arg(tmp.path().join("c.sock"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("agent -c");
    let mut child = out;
    let mut first = String::new();
    use std::io::BufRead as _;
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        first,
        format!(
            "setenv SSH_AUTH_SOCK {};\n",
            tmp.path().join("c.sock").display()
        )
    );
}
