//! `warren add` against OpenSSH's ssh-agent and warren's own: what it adds
//! lists exactly as `ssh-add` would have added it (every key type, an
//! encrypted key, a certificate), and -l/-L/-d/-D/-x/-X/-t agree with
//! ssh-add's view of the agent.
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

use common::{script, text, warren};
use warren_testkit::{keygen, sign};

/// An agent on a private socket: OpenSSH's or warren's. Killed on drop.
struct AnyAgent {
    child: Child,
    sock: PathBuf,
    _dir: tempfile::TempDir,
}

impl AnyAgent {
    fn start(openssh: bool) -> AnyAgent {
        let dir = tempfile::tempdir().expect("tmp");
        let sock = dir.path().join("agent.sock");
        let mut cmd = if openssh {
            Command::new("ssh-agent")
        } else {
            let mut c = warren();
            c.arg("agent");
            c
        };
        let child = cmd
            .arg("-D")
            .arg("-a")
            .arg(&sock)
            .stdout(Stdio::null())
            .spawn()
            .expect("agent");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !sock.exists() {
            assert!(Instant::now() < deadline, "agent socket never appeared");
            std::thread::sleep(Duration::from_millis(20));
        }
        AnyAgent {
            child,
            sock,
            _dir: dir,
        }
    }

    fn run(&self, mut cmd: Command, askpass: Option<&Path>) -> Output {
        cmd.env("SSH_AUTH_SOCK", &self.sock).stdin(Stdio::null());
        match askpass {
            Some(p) => cmd
                .env("SSH_ASKPASS", p)
                .env("SSH_ASKPASS_REQUIRE", "force"),
            None => cmd.env_remove("SSH_ASKPASS"),
        };
        cmd.output().expect("run")
    }

    fn warren_add(&self, args: &[&str], askpass: Option<&Path>) -> Output {
        let mut c = warren();
        c.arg("add").args(args);
        self.run(c, askpass)
    }

    fn ssh_add(&self, args: &[&str], askpass: Option<&Path>) -> Output {
        let mut c = Command::new("ssh-add");
        c.args(args);
        self.run(c, askpass)
    }
}

impl Drop for AnyAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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

struct Keys {
    _tmp: tempfile::TempDir,
    files: Vec<PathBuf>,
    askpass: PathBuf,
}

/// One key of each type, one encrypted (passphrase through askpass), and
/// one with a certificate beside it.
fn keys() -> Keys {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    let ca = keygen(d, "ca", "ed25519", "");
    let certified = keygen(d, "certified", "ecdsa", "");
    sign(&ca, &certified.with_extension("pub"), &["-n", "someone"]);
    let files = vec![
        keygen(d, "ed", "ed25519", ""),
        keygen(d, "ec", "ecdsa", ""),
        keygen(d, "rsa", "rsa", ""),
        keygen(d, "locked", "ed25519", "opensesame"),
        certified,
    ];
    let askpass = script(d.join("askpass"), "echo opensesame\n");
    Keys {
        _tmp: tmp,
        files,
        askpass,
    }
}

fn paths(keys: &Keys) -> Vec<&str> {
    keys.files.iter().map(|p| p.to_str().unwrap()).collect()
}

#[test]
fn warren_add_adds_what_ssh_add_would_to_both_agents() {
    let k = keys();
    for openssh in [true, false] {
        let theirs = AnyAgent::start(openssh);
        ok(&theirs.ssh_add(&paths(&k), Some(&k.askpass)), "ssh-add");
        let ours = AnyAgent::start(openssh);
        let added = ours.warren_add(&paths(&k), Some(&k.askpass));
        ok(&added, "warren add");
        let said = text(&added.stderr);
        assert!(said.contains("Identity added:"), "{said}");
        assert!(said.contains("Certificate added:"), "{said}");
        for flags in [&["-l"][..], &["-L"], &["-l", "-E", "md5"]] {
            let want = ok(&theirs.ssh_add(flags, None), "ssh-add -l oracle");
            let got = ok(&ours.ssh_add(flags, None), "ssh-add -l after warren add");
            assert_eq!(got, want, "{flags:?} openssh-agent={openssh}");
            let listed = ok(&ours.warren_add(flags, None), "warren add -l");
            assert_eq!(listed, want, "warren add {flags:?} openssh-agent={openssh}");
        }
    }
}

#[test]
fn remove_lock_and_lifetime_against_both_agents() {
    let k = keys();
    for openssh in [true, false] {
        let agent = AnyAgent::start(openssh);
        ok(&agent.warren_add(&paths(&k)[..3], None), "warren add");
        let removed = agent.warren_add(&["-d", paths(&k)[1]], None);
        ok(&removed, "warren add -d");
        assert!(text(&removed.stderr).contains("Identity removed:"));
        let listed = ok(&agent.ssh_add(&["-l"], None), "ssh-add -l");
        assert_eq!(listed.lines().count(), 2, "{listed}");
        assert!(!listed.contains("(ECDSA)"), "{listed}");

        let tmp = tempfile::tempdir().expect("tmp");
        let pw = script(tmp.path().join("pw"), "echo hunter2\n");
        let bad = script(tmp.path().join("bad"), "echo nope\n");
        ok(&agent.warren_add(&["-x"], Some(&pw)), "warren add -x");
        assert_eq!(
            agent.ssh_add(&["-l"], None).status.code(),
            Some(1),
            "locked"
        );
        assert!(!agent.warren_add(&["-X"], Some(&bad)).status.success());
        ok(&agent.warren_add(&["-X"], Some(&pw)), "warren add -X");
        assert_eq!(
            ok(&agent.ssh_add(&["-l"], None), "unlocked")
                .lines()
                .count(),
            2
        );

        let cleared = agent.warren_add(&["-D"], None);
        ok(&cleared, "warren add -D");
        assert!(text(&cleared.stderr).contains("All identities removed."));
        let none = agent.warren_add(&["-l"], None);
        assert_eq!(none.status.code(), Some(1));
        assert_eq!(text(&none.stdout), "The agent has no identities.\n");

        let added = agent.warren_add(&["-t", "1", paths(&k)[0]], None);
        ok(&added, "warren add -t");
        assert!(text(&added.stderr).contains("Lifetime set to 1 seconds"));
        let deadline = Instant::now() + Duration::from_secs(30);
        while agent.ssh_add(&["-l"], None).status.code() != Some(1) {
            assert!(Instant::now() < deadline, "key outlived its lifetime");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

#[test]
fn no_agent_is_named() {
    let out = warren()
        .args(["add", "-l"])
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("Could not open a connection to your authentication agent.")
    );
}

/// The fixture's client config, talking to `agent` and with `extra` lines.
fn config_with_agent(sshd: &warren_testkit::Sshd, sock: &Path, extra: &str) -> PathBuf {
    let base = std::fs::read_to_string(sshd.client_config()).expect("cfg");
    let base: String = base
        .lines()
        .filter(|l| !l.contains("IdentityAgent") && !l.contains("BatchMode"))
        .map(|l| format!("{l}\n"))
        .collect();
    let cfg = sshd.dir().join(format!("cfg_{}", rand_suffix()));
    std::fs::write(
        &cfg,
        format!(
            "Host test\n  IdentityAgent {}\n{extra}{base}",
            sock.display()
        ),
    )
    .expect("cfg");
    cfg
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

#[test]
fn add_keys_to_agent_in_warren_ssh() {
    let tmp = tempfile::tempdir().expect("tmp");
    let askpass = script(tmp.path().join("askpass"), "echo pp\n");
    for (i, (pass, setting, added)) in [
        ("", "  AddKeysToAgent yes\n", true),
        ("pp", "  AddKeysToAgent yes\n", true),
        ("", "  AddKeysToAgent 1h\n", true),
        ("", "  AddKeysToAgent no\n", false),
    ]
    .into_iter()
    .enumerate()
    {
        let key = keygen(tmp.path(), &format!("k{i}"), "ed25519", pass);
        let sshd = warren_testkit::Sshd::builder().client_key(&key).start();
        for openssh in [true, false] {
            let agent = AnyAgent::start(openssh);
            let cfg = config_with_agent(&sshd, &agent.sock, setting);
            let out = warren()
                .args(["ssh", "-F"])
                .arg(&cfg)
                .args(["test", "echo in"])
                .env("SSH_ASKPASS", &askpass)
                .env("SSH_ASKPASS_REQUIRE", "force")
                .stdin(Stdio::null())
                .output()
                .expect("warren ssh");
            assert_eq!(ok(&out, "warren ssh"), "in\n", "{}", sshd.log());
            let listed = agent.ssh_add(&["-l"], None);
            let fp = text(
                &Command::new("ssh-keygen")
                    .arg("-lf")
                    .arg(key.with_extension("pub"))
                    .output()
                    .expect("ssh-keygen")
                    .stdout,
            );
            let fp = fp.split_whitespace().nth(1).unwrap().to_owned();
            assert_eq!(
                text(&listed.stdout).contains(&fp),
                added,
                "{setting:?} pass={pass:?} openssh-agent={openssh}: {}",
                text(&listed.stdout)
            );
        }
    }
}
