//! `warren doctor` against a real OpenSSH sshd: a healthy host passes
//! (exit 0, the JSON contract), and each classic failure is named with
//! its fix: closed port, a non-SSH service, wrong key, a key file others
//! can read, a changed host key (and no login attempted), a chatty login
//! shell, a jump host that is down, a host that drops packets (a netns
//! whose router blackholes it), authorized_keys refused by StrictModes, a
//! LocalForward to a closed port, an encrypted key with no agent, a key
//! type sshd's PubkeyAcceptedAlgorithms leaves out, a certificate expired
//! or for another principal, IdentitiesOnly no with seven agent keys;
//! `--speed`, `--fix`, and snapshots of the checklist.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]

mod common;
use common::{free_port, text, warren};

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::Value;
use warren_testkit::{Sshd, keygen, local_user};

/// What one doctor run said.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!("not JSON ({e}):\n{}\nstderr:\n{}", self.stdout, self.stderr)
        })
    }
}

/// `warren doctor ARGS` with HOME in `home` (so the real ~/.ssh is never
/// read) and no agent.
fn doctor(home: &Path, args: &[&str]) -> Run {
    let out = warren()
        .arg("doctor")
        .args(args)
        .env("HOME", home)
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .output()
        .expect("run warren doctor");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: text(&out.stdout),
        stderr: text(&out.stderr),
    }
}

/// `Host test` for `sshd`, with `extra` lines added to it (they win over
/// the defaults: first value wins in ssh_config).
fn config(sshd: &Sshd, name: &str, extra: &str) -> PathBuf {
    let base = std::fs::read_to_string(sshd.client_config()).expect("client config");
    let (head, rest) = base.split_once('\n').expect("Host line");
    // IdentityFile adds to the list: a test that names a key names the only one.
    let rest: String = rest
        .lines()
        .filter(|l| !(extra.contains("IdentityFile") && l.trim_start().starts_with("IdentityFile")))
        .map(|l| format!("{l}\n"))
        .collect();
    let path = sshd.dir().join(name);
    std::fs::write(&path, format!("{head}\n{extra}{rest}\n")).expect("write config");
    path
}

/// One test's world: an sshd, an empty HOME for the client (so the real
/// ~/.ssh is never read), and the doctor run against them, so that each
/// test says only what differs.
struct Setup {
    sshd: Sshd,
    home: tempfile::TempDir,
    /// Temp dirs the server reads (its sessions' HOME, a user CA).
    _keep: Vec<tempfile::TempDir>,
}

impl Setup {
    /// The stock sshd.
    fn new() -> Setup {
        Setup::on(Sshd::start())
    }

    fn on(sshd: Sshd) -> Setup {
        Setup {
            sshd,
            home: home(),
            _keep: Vec::new(),
        }
    }

    /// The stock sshd, its sessions' HOME an empty temp dir, so the remote
    /// files check does not depend on this machine's own ~/.ssh.
    fn own_home() -> Setup {
        let (sshd, remote_home) = sshd_with_own_home();
        Setup {
            _keep: vec![remote_home],
            ..Setup::on(sshd)
        }
    }

    /// The stock sshd trusting a user CA for certificates; returns the
    /// CA's private key.
    fn with_user_ca() -> (Setup, PathBuf) {
        let ca_dir = tempfile::tempdir().expect("ca dir");
        let ca_key = keygen(ca_dir.path(), "user_ca", "ed25519", "");
        let t = Setup::on(
            Sshd::builder()
                .config(format!(
                    "TrustedUserCAKeys {}",
                    ca_key.with_extension("pub").display()
                ))
                .start(),
        );
        let t = Setup {
            _keep: vec![ca_dir],
            ..t
        };
        (t, ca_key)
    }

    /// `Host test` with `extra` lines (see [`config`]).
    fn config(&self, name: &str, extra: &str) -> PathBuf {
        config(&self.sshd, name, extra)
    }

    /// `Host test` whose only IdentityFile is `key`.
    fn with_key(&self, name: &str, key: &Path) -> PathBuf {
        self.config(name, &format!("  IdentityFile {}\n", key.display()))
    }

    /// An agent in HOME holding `count` new keys (`PREFIX1`, ...) that
    /// the server does not know, and `Host test` offering them first
    /// (IdentitiesOnly no).
    fn stray_agent(&self, prefix: &str, count: usize) -> (Agent, PathBuf) {
        let agent = Agent::start(self.home.path());
        for i in 1..=count {
            agent.add(&keygen(
                self.sshd.dir(),
                &format!("{prefix}{i}"),
                "ed25519",
                "",
            ));
        }
        let extra = format!(
            "  IdentitiesOnly no\n  IdentityAgent {}\n",
            agent.socket.display()
        );
        let cfg = self.config(&format!("{prefix}-config"), &extra);
        (agent, cfg)
    }

    /// `Host test` (with `extra`) through `ProxyJump bastion`, and
    /// `Host bastion`: this sshd's user and keys on 127.0.0.1:`port`.
    fn via_bastion(&self, name: &str, extra: &str, port: u16) -> PathBuf {
        let cfg = self.config(name, &format!("  ProxyJump bastion\n{extra}"));
        let mut text = std::fs::read_to_string(&cfg).unwrap();
        text.push_str(&format!(
            "Host bastion\n  HostName 127.0.0.1\n  Port {port}\n  User {}\n  IdentityFile {}\n  \
             IdentitiesOnly yes\n  IdentityAgent none\n  UserKnownHostsFile {}\n",
            local_user(),
            self.sshd.client_key().display(),
            self.sshd.known_hosts().display()
        ));
        std::fs::write(&cfg, text).unwrap();
        cfg
    }

    /// `warren doctor ARGS`.
    fn doctor(&self, args: &[&str]) -> Run {
        doctor(self.home.path(), args)
    }

    /// `warren doctor --json -F CFG test`: its exit code and report (the
    /// JSON contract checked).
    fn report(&self, cfg: &Path) -> (i32, Value) {
        let run = self.doctor(&["--json", "-F", cfg.to_str().unwrap(), "test"]);
        let report = run.json();
        assert_contract(&report, "test");
        (run.code, report)
    }

    /// The checklist of `warren doctor -F CFG test` (after `flags`).
    fn checklist(&self, flags: &[&str], cfg: &Path) -> Run {
        let mut args = flags.to_vec();
        args.extend(["-F", cfg.to_str().unwrap(), "test"]);
        self.doctor(&args)
    }
}

/// The checks whose name starts with `prefix`.
fn checks_named<'a>(report: &'a Value, prefix: &str) -> Vec<&'a Value> {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["name"].as_str().unwrap_or("").starts_with(prefix))
        .collect()
}

/// The check named `name` in a JSON report, asserting its status.
fn expect<'a>(report: &'a Value, name: &str, status: &str) -> &'a Value {
    let found = check(report, name);
    assert_eq!(found["status"], status, "{name}: {report:#}");
    found
}

/// Asserts that `field` of `check` contains `words`.
fn assert_says(check: &Value, field_name: &str, words: impl AsRef<str>) {
    let words = words.as_ref();
    assert!(
        field(check, field_name).contains(words),
        "{field_name} should say {words:?}: {check}"
    );
}

/// The text of `field` of `check`.
fn field<'a>(check: &'a Value, field: &str) -> &'a str {
    check[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {check}"))
}

/// The check named `name` in a JSON report.
fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {report:#}"))
}

fn home() -> tempfile::TempDir {
    tempfile::tempdir().expect("home")
}

/// The JSON contract: `{destination, ok, checks: [{name, status,
/// summary, fix, ms}]}` with those types.
fn assert_contract(report: &Value, destination: &str) {
    assert_eq!(report["destination"], destination);
    assert!(report["ok"].is_boolean(), "{report:#}");
    let checks = report["checks"].as_array().expect("checks is an array");
    assert!(!checks.is_empty());
    for c in checks {
        let fields: Vec<&String> = c.as_object().expect("check object").keys().collect();
        assert_eq!(fields.len(), 5, "exactly five fields: {c}");
        assert!(c["name"].is_string(), "{c}");
        assert!(
            ["ok", "warn", "fail", "skip"].contains(&c["status"].as_str().unwrap_or("")),
            "{c}"
        );
        assert!(c["summary"].is_string(), "{c}");
        assert!(c["fix"].is_null() || c["fix"].is_string(), "{c}");
        assert!(c["ms"].is_u64(), "{c}");
    }
    let all_pass = checks
        .iter()
        .all(|c| c["status"] == "ok" || c["status"] == "skip");
    assert_eq!(report["ok"], all_pass, "ok must mean every check passed");
}

// Fails on the old code: there was no `warren doctor` subcommand.
#[test]
fn healthy_host_passes_with_the_json_contract() {
    // The remote files check looks at the session's HOME: a temp
    // dir, not the ~/.ssh of whoever runs the tests.
    let t = Setup::own_home();
    let cfg = t.sshd.client_config();
    let run = t.doctor(&["--json", "-F", cfg.to_str().unwrap(), "test"]);
    let report = run.json();
    assert_contract(&report, "test");
    assert_eq!(run.code, 0, "{report:#}\n{}", run.stderr);
    assert_eq!(report["ok"], true);
    for name in [
        "config",
        "files",
        "test resolve",
        "test banner",
        "test host key",
        "test algorithms",
        "test auth",
        "test session",
        "test sftp",
    ] {
        assert_eq!(check(&report, name)["status"], "ok", "{name}: {report:#}");
    }
    let tcp = format!("test tcp 127.0.0.1:{}", t.sshd.port());
    assert_eq!(check(&report, &tcp)["status"], "ok");
    assert!(
        check(&report, "test banner")["summary"]
            .as_str()
            .unwrap()
            .contains("OpenSSH")
    );
    let auth = check(&report, "test auth")["summary"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        auth.contains(&t.sshd.client_key().display().to_string()),
        "which key: {auth}"
    );

    // The checklist says the same on a terminal-less stdout, uncoloured.
    let run = t.doctor(&["-F", cfg.to_str().unwrap(), "test"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.starts_with("warren doctor test\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("  ok    test auth: logged in as "),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("all good: "), "{}", run.stdout);
    assert!(
        !run.stdout.contains('\x1b'),
        "no colour off a terminal: {}",
        run.stdout
    );
}

// Fails on the old code: there was no `warren doctor` subcommand.
#[test]
fn closed_port_is_refused_and_login_skipped() {
    let t = Setup::new();
    let port = free_port();
    let cfg = t.config("closed", &format!("  Port {port}\n"));
    let (code, report) = t.report(&cfg);
    assert_eq!(code, 1);
    let tcp = expect(&report, &format!("test tcp 127.0.0.1:{port}"), "fail");
    assert_says(tcp, "summary", "connection refused");
    assert_says(tcp, "fix", "-p / Port");
    assert_eq!(check(&report, "test auth")["status"], "skip");

    let run = t.doctor(&["-F", cfg.to_str().unwrap(), "test"]);
    assert_eq!(run.code, 1);
    let line = format!(
        "  FAIL  test tcp 127.0.0.1:{port}: connection refused: nothing listens on port {port} of 127.0.0.1"
    );
    assert!(run.stdout.contains(&line), "{}", run.stdout);
    assert!(
        run.stdout.contains("        fix: check the port"),
        "{}",
        run.stdout
    );
}

/// A plain TCP service that answers every connection as a web server
/// answers an SSH client: `400 Bad Request`.
fn http_400() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 256];
                let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(5)));
                let _ = conn.read(&mut buf);
                let _ = conn.write_all(
                    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            });
        }
    });
    port
}

// Fails on the old code: there was no `warren doctor` subcommand.
#[test]
fn http_on_the_port_is_named() {
    let t = Setup::new();
    let port = http_400();
    let cfg = t.config("http", &format!("  Port {port}\n"));
    let (code, report) = t.report(&cfg);
    assert_eq!(code, 1);
    assert_eq!(
        check(&report, &format!("test tcp 127.0.0.1:{port}"))["status"],
        "ok"
    );
    let banner = expect(&report, "test banner", "fail");
    let summary = banner["summary"].as_str().unwrap();
    assert!(summary.contains("an HTTP server answers"), "{summary}");
    assert!(summary.contains("HTTP/1.1 400 Bad Request"), "{summary}");
    assert_says(banner, "fix", "check the port");
    assert_eq!(check(&report, "test auth")["status"], "skip");
}

// Fails on the old code: there was no `warren doctor` subcommand.
#[test]
fn wrong_key_fails_auth_with_the_attempts() {
    let t = Setup::new();
    let other = keygen(t.sshd.dir(), "other_key", "ed25519", "");
    let cfg = t.with_key("wrong", &other);
    let (code, report) = t.report(&cfg);
    assert_eq!(code, 1);
    assert_eq!(check(&report, "test host key")["status"], "ok");
    let auth = expect(&report, "test auth", "fail");
    let summary = auth["summary"].as_str().unwrap();
    assert!(summary.contains("Permission denied"), "{summary}");
    assert!(
        summary.contains(&other.display().to_string()),
        "names the key tried: {summary}"
    );
    assert_says(auth, "fix", "authorized_keys");
    assert_eq!(check(&report, "test session")["status"], "skip");
}

// Fails on the old code: there was no `warren doctor` subcommand.
#[test]
fn key_file_0644_says_chmod_600() {
    use std::os::unix::fs::PermissionsExt;
    let t = Setup::new();
    let key = t.sshd.dir().join("loose_key");
    std::fs::copy(t.sshd.client_key(), &key).expect("copy key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let cfg = t.with_key("loose", &key);
    let (code, report) = t.report(&cfg);
    assert_eq!(code, 1);
    let file = expect(&report, &format!("file {}", key.display()), "fail");
    assert_eq!(file["fix"], format!("chmod 600 {}", key.display()));
    assert_says(file, "summary", "mode 0644");
    // The key was not used, and the auth failure says why.
    let auth = expect(&report, "test auth", "fail");
    assert_says(auth, "fix", "chmod 600");
}

// Fails on the old code: there was no `warren doctor` subcommand.
#[test]
fn changed_host_key_names_the_removal_and_never_logs_in() {
    let t = Setup::new();
    let impostor = keygen(t.sshd.dir(), "impostor", "ed25519", "");
    let public = std::fs::read_to_string(impostor.with_extension("pub")).expect("pub");
    let mut fields = public.split_whitespace();
    let (kind, b64) = (fields.next().unwrap(), fields.next().unwrap());
    let known = t.sshd.dir().join("changed_known_hosts");
    std::fs::write(
        &known,
        format!("{} {kind} {b64}\n", t.sshd.known_hosts_pattern()),
    )
    .unwrap();
    let cfg = t.config(
        "changed",
        &format!("  UserKnownHostsFile {}\n", known.display()),
    );
    let (code, report) = t.report(&cfg);
    assert_eq!(code, 1);
    let key = expect(&report, "test host key", "fail");
    let summary = key["summary"].as_str().unwrap();
    // The server's real key, to check out of band.
    let real = std::process::Command::new("ssh-keygen")
        .arg("-lf")
        .arg(t.sshd.dir().join("host_ed25519.pub"))
        .output()
        .expect("ssh-keygen -lf");
    let fingerprint = text(&real.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned();
    assert!(summary.contains("CHANGED"), "{summary}");
    assert!(
        summary.contains(&fingerprint),
        "the new fingerprint {fingerprint}: {summary}"
    );
    assert!(
        summary.contains(&format!("{}:1", known.display())),
        "file:line: {summary}"
    );
    let fix = key["fix"].as_str().unwrap();
    let pattern = format!("'{}'", t.sshd.known_hosts_pattern());
    assert!(
        fix.contains(&format!(
            "warren keygen -f {} -R {pattern}",
            known.display()
        )),
        "{fix}"
    );
    assert!(
        fix.contains(&format!("ssh-keygen -f {} -R {pattern}", known.display())),
        "{fix}"
    );
    assert_eq!(check(&report, "test auth")["status"], "skip");
    // sshd saw no authentication at all.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let log = t.sshd.log();
    for word in [
        "Accepted",
        "Failed",
        "authenticating user",
        "Postponed",
        "userauth",
    ] {
        assert!(
            !log.contains(word),
            "sshd saw an authentication ({word}):\n{log}"
        );
    }
}

// Fails on the old code: there was no `warren doctor` subcommand.
#[test]
fn chatty_login_shell_is_flagged() {
    let dir = tempfile::tempdir().expect("dir");
    let rc = dir.path().join("chatty.sh");
    std::fs::write(&rc, "echo 'Welcome to prod!'\n").expect("rc");
    // bash sources BASH_ENV for a non-interactive command, as Debian's
    // bash sources ~/.bashrc under sshd: a chatty rc file.
    let t = Setup::on(
        Sshd::builder()
            .config(format!("SetEnv BASH_ENV={} SHLVL=1", rc.display()))
            .start(),
    );
    assert!(
        std::fs::read_to_string("/etc/passwd")
            .unwrap()
            .lines()
            .any(|l| l.starts_with(&format!("{}:", local_user())) && l.ends_with("/bash")),
        "this test needs the login shell of {} to be bash",
        local_user()
    );
    let (code, report) = t.report(&t.sshd.client_config());
    assert_eq!(code, 1);
    assert_eq!(check(&report, "test auth")["status"], "ok");
    let session = expect(&report, "test session", "warn");
    let summary = session["summary"].as_str().unwrap();
    assert!(summary.contains("Welcome to prod!"), "{summary}");
    assert!(summary.contains("breaks scp, sftp and rsync"), "{summary}");
    assert_says(session, "fix", "~/.bashrc");
    // And SFTP really breaks on it.
    assert_eq!(check(&report, "test sftp")["status"], "fail", "{report:#}");
}

// Fails on the old code: there was no `warren doctor` subcommand.
#[test]
fn jump_host_down_is_named() {
    let t = Setup::new();
    let port = free_port();
    let cfg = t.via_bastion("jump-down", "", port);
    let (code, report) = t.report(&cfg);
    assert_eq!(code, 1);
    let tcp = expect(&report, &format!("bastion tcp 127.0.0.1:{port}"), "fail");
    assert_says(tcp, "summary", "connection refused");
    let target = expect(&report, "test", "skip");
    assert_says(target, "summary", "bastion failed");
}

// Fails on the old code: there was no `warren doctor` subcommand.
#[test]
fn jump_host_up_checks_each_hop() {
    // The remote files check looks at the session's HOME: a temp
    // dir, not the ~/.ssh of whoever runs the tests.
    let t = Setup::own_home();
    let cfg = t.via_bastion("jump-up", "  ServerAliveInterval 30\n", t.sshd.port());
    let (code, report) = t.report(&cfg);
    assert_eq!(code, 0, "{report:#}");
    for name in [
        "bastion auth",
        "test channel",
        "test banner",
        "test host key",
        "test auth",
        "test session",
    ] {
        assert_eq!(check(&report, name)["status"], "ok", "{name}: {report:#}");
    }
}

// Fails on the old code: `warren ssh`'s hint for a refused connection
// did not point at the doctor.
#[test]
fn ssh_failure_hint_ends_with_warren_doctor() {
    let t = Setup::new();
    let cfg = t.config("ssh-closed", &format!("  Port {}\n", free_port()));
    let out = warren()
        .args(["ssh", "-F", cfg.to_str().unwrap(), "test", "true"])
        .env("HOME", t.home.path())
        .stdin(Stdio::null())
        .output()
        .expect("run warren ssh");
    assert_eq!(out.status.code(), Some(255));
    let err = text(&out.stderr);
    let hint = err
        .lines()
        .find(|l| l.starts_with("hint: "))
        .unwrap_or_default();
    assert!(hint.contains("check the port"), "{err}");
    assert!(
        hint.ends_with("`warren doctor test` checks each stage"),
        "{err}"
    );
}

/// An `ssh-agent -D` on a socket in `dir`; killed on drop.
struct Agent {
    child: std::process::Child,
    socket: PathBuf,
}

impl Agent {
    fn start(dir: &Path) -> Agent {
        let socket = dir.join("agent.sock");
        let child = std::process::Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ssh-agent is required (openssh-client)");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !socket.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "ssh-agent did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Agent { child, socket }
    }

    fn add(&self, key: &Path) {
        let status = std::process::Command::new("ssh-add")
            .arg(key)
            .env("SSH_AUTH_SOCK", &self.socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("ssh-add");
        assert!(status.success(), "ssh-add {}", key.display());
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// Fails on the old code: there was no `warren doctor` subcommand.
#[test]
fn agent_with_more_keys_than_max_auth_tries_says_identities_only() {
    let t = Setup::on(Sshd::builder().config("MaxAuthTries 3").start());
    // The right key is the IdentityFile, offered after the agent's six.
    let (_agent, cfg) = t.stray_agent("agent_key", 6);
    let (code, report) = t.report(&cfg);
    assert_eq!(code, 1);
    let auth = expect(&report, "test auth", "fail");
    assert_says(auth, "summary", "Too many authentication failures");
    let fix = auth["fix"].as_str().unwrap();
    assert!(
        fix.contains("IdentitiesOnly yes") && fix.contains("-i"),
        "{fix}"
    );
}

/// A client namespace whose only way out is a veth to a router namespace
/// that forwards 192.0.2.0/24 into a blackhole route: a connect from the
/// client to 192.0.2.10 is silently dropped, as a firewall drops it (a
/// blackhole route in the client's own namespace would fail the connect
/// at once with EINVAL instead). Returns (client, router).
fn dropping_network() -> (warren_testkit::Netns, warren_testkit::Netns) {
    use warren_testkit::Netns;
    let (client, router) = (Netns::new(), Netns::new());
    client.ip(&[
        "link",
        "add",
        "out0",
        "type",
        "veth",
        "peer",
        "name",
        "in0",
        "netns",
        router.name(),
    ]);
    client.ip(&["addr", "add", "10.9.9.1/30", "dev", "out0"]);
    client.ip(&["link", "set", "out0", "up"]);
    client.ip(&["route", "add", "192.0.2.0/24", "via", "10.9.9.2"]);
    router.ip(&["addr", "add", "10.9.9.2/30", "dev", "in0"]);
    router.ip(&["link", "set", "in0", "up"]);
    router.exec_ok(&["sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"]);
    router.ip(&["route", "add", "blackhole", "192.0.2.0/24"]);
    (client, router)
}

// Fails on the old code: a dropped connect waited out the 10 s default
// and its fix named neither the address nor ConnectTimeout.
#[test]
fn host_that_drops_packets_times_out_with_the_firewall_fix() {
    let t = Setup::new();
    let (client, _router) = dropping_network();
    let cfg = t.config(
        "dropped",
        "  HostName 192.0.2.10\n  Port 22\n  ConnectTimeout 2\n",
    );
    let started = std::time::Instant::now();
    let out = client
        .command(env!("CARGO_BIN_EXE_warren"))
        .args(["doctor", "--json", "-F", cfg.to_str().unwrap(), "test"])
        .env("HOME", t.home.path())
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::null())
        .output()
        .expect("run warren doctor in the client namespace");
    let took = started.elapsed();
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: text(&out.stdout),
        stderr: text(&out.stderr),
    };
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    assert_contract(&report, "test");
    let tcp = expect(&report, "test tcp 192.0.2.10:22", "fail");
    let summary = tcp["summary"].as_str().unwrap();
    assert!(summary.contains("timed out after 2s"), "{summary}");
    let fix = tcp["fix"].as_str().unwrap();
    for word in ["firewall", "192.0.2.10", "HostName", "ConnectTimeout"] {
        assert!(fix.contains(word), "{word}: {fix}");
    }
    // The wait is ConnectTimeout's: never shorter, and bounded.
    assert!(tcp["ms"].as_u64().unwrap() >= 2000, "{tcp}");
    assert!(took < std::time::Duration::from_secs(60), "took {took:?}");
    assert_eq!(check(&report, "test auth")["status"], "skip");
}

/// A directory for StrictModes tests: sshd walks from authorized_keys up
/// to `/` and refuses any directory writable by group or others, so the
/// world-writable /tmp cannot hold it. The first place whose every parent
/// is writable only by its owner: cargo's target tmp dir (unless the
/// checkout itself is under /tmp), $XDG_RUNTIME_DIR, /run, $HOME.
fn strict_dir() -> tempfile::TempDir {
    let mut candidates = vec![PathBuf::from(env!("CARGO_TARGET_TMPDIR"))];
    candidates.extend(std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from));
    candidates.push(PathBuf::from("/run"));
    candidates.extend(std::env::var_os("HOME").map(PathBuf::from));
    for base in &candidates {
        if base == Path::new(env!("CARGO_TARGET_TMPDIR")) {
            let _ = std::fs::create_dir_all(base);
        }
        let Ok(base) = base.canonicalize() else {
            continue;
        };
        if !strict_ancestry(&base) {
            continue;
        }
        if let Ok(dir) = tempfile::Builder::new()
            .prefix("warren-doctor-strict-")
            .tempdir_in(&base)
        {
            return dir;
        }
    }
    panic!(
        "this test needs a directory whose parents are all writable only by their owner \
         (sshd's StrictModes); none of {candidates:?} is"
    );
}

/// Whether `dir` and all its parents are writable only by their owner,
/// root or the test's user.
fn strict_ancestry(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    dir.ancestors().all(|d| {
        std::fs::metadata(d)
            .is_ok_and(|m| m.mode() & 0o022 == 0 && (m.uid() == 0 || m.uid() == test_uid()))
    })
}

/// The uid running the tests (from `id -u`).
fn test_uid() -> u32 {
    let out = std::process::Command::new("id")
        .arg("-u")
        .output()
        .expect("id -u");
    text(&out.stdout).trim().parse().expect("uid")
}

/// A server with StrictModes yes whose user's HOME is a temp dir with a
/// group-writable ~/.ssh/authorized_keys (in the group `users`, shared
/// with others, which even Debian's sshd refuses) holding the returned
/// key only; the fixture's key is a second way in, from a file
/// StrictModes accepts. Returns (the dir, the setup, the key, the
/// authorized_keys file).
fn strict_modes_server() -> (tempfile::TempDir, Setup, PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let base = strict_dir();
    let remote_home = base.path().join("home");
    let ssh_dir = remote_home.join(".ssh");
    std::fs::create_dir_all(&ssh_dir).unwrap();
    std::fs::set_permissions(&remote_home, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&ssh_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let key = keygen(base.path(), "strict_key", "ed25519", "");
    let authorized = ssh_dir.join("authorized_keys");
    std::fs::copy(key.with_extension("pub"), &authorized).unwrap();
    std::fs::set_permissions(&authorized, std::fs::Permissions::from_mode(0o664)).unwrap();
    // Debian's sshd lets a file writable by the user's own private group
    // pass, no other.
    let chgrp = std::process::Command::new("chgrp")
        .arg("users")
        .arg(&authorized)
        .status()
        .expect("chgrp");
    assert!(chgrp.success(), "this test needs the group `users`");
    let good = base.path().join("good_keys");
    let t = Setup::on(
        Sshd::builder()
            .config("StrictModes yes")
            .config(format!(
                "AuthorizedKeysFile {} {}",
                authorized.display(),
                good.display()
            ))
            .config(format!("SetEnv HOME={} SHLVL=1", remote_home.display()))
            .start(),
    );
    std::fs::copy(t.sshd.client_key().with_extension("pub"), &good).unwrap();
    std::fs::set_permissions(&good, std::fs::Permissions::from_mode(0o600)).unwrap();
    (base, t, key, authorized)
}

// Fails on the old code: a key refused for the server's file modes got
// only "check that the key is in authorized_keys", and nothing read the
// remote modes after login.
#[test]
fn group_writable_authorized_keys_with_strict_modes_is_explained() {
    use std::os::unix::fs::PermissionsExt;
    let (_base, t, key, authorized) = strict_modes_server();
    let with_key = t.with_key("strict", &key);

    // Logging in with that key fails; the fix says to check the modes.
    let (code, report) = t.report(&with_key);
    assert_eq!(code, 1);
    let auth = expect(&report, "test auth", "fail");
    let fix = auth["fix"].as_str().unwrap();
    assert!(fix.contains("StrictModes"), "{fix}");
    assert!(
        fix.contains("`chmod go-w ~ ~/.ssh ~/.ssh/authorized_keys` on the server"),
        "{fix}"
    );
    assert!(
        t.sshd.log().contains("bad ownership or modes"),
        "sshd refused the file for its modes:\n{}",
        t.sshd.log()
    );

    // Logged in the second way, the doctor reads the modes and names the file.
    let run = t.doctor(&[
        "--json",
        "-F",
        t.sshd.client_config().to_str().unwrap(),
        "test",
    ]);
    assert_eq!(run.code, 1);
    let report = run.json();
    assert_eq!(check(&report, "test auth")["status"], "ok", "{report:#}");
    let files = expect(&report, "test remote files", "fail");
    let summary = files["summary"].as_str().unwrap();
    assert!(
        summary.contains("~/.ssh/authorized_keys is writable by group or others (-rw-rw-r--)"),
        "{summary}"
    );
    assert_eq!(
        files["fix"],
        "on the server: chmod go-w ~/.ssh/authorized_keys \
         (from here: warren ssh test 'chmod go-w ~/.ssh/authorized_keys')"
    );

    // The fix works: the key logs in, and every check passes.
    std::fs::set_permissions(&authorized, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (code, report) = t.report(&with_key);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(check(&report, "test remote files")["status"], "ok");
}

// Fails on the old code: forwards were not tried; a LocalForward whose
// target is closed passed every check.
#[test]
fn local_forward_to_a_closed_port_is_named() {
    let t = Setup::new();
    let closed = free_port();
    let extra = format!(
        "  LocalForward {} 127.0.0.1:{closed}\n  LocalForward {} 127.0.0.1:{}\n  \
         RemoteForward {} 127.0.0.1:22\n  ServerAliveInterval 30\n",
        free_port(),
        free_port(),
        t.sshd.port(),
        free_port()
    );
    let cfg = t.config("forwards", &extra);
    let (code, report) = t.report(&cfg);
    assert_eq!(code, 1);
    let forwards: Vec<&Value> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"].as_str().unwrap().starts_with("test forward "))
        .collect();
    assert_eq!(forwards.len(), 3, "{report:#}");
    let bad = forwards
        .iter()
        .find(|c| {
            c["name"]
                .as_str()
                .unwrap()
                .ends_with(&format!(":127.0.0.1:{closed}"))
        })
        .unwrap_or_else(|| panic!("no check for the closed target: {report:#}"));
    assert_eq!(bad["status"], "fail", "{bad}");
    assert_says(
        bad,
        "summary",
        format!("the server could not connect to 127.0.0.1:{closed}"),
    );
    assert_says(
        bad,
        "fix",
        format!("warren ssh test 'nc -zv 127.0.0.1 {closed}'"),
    );
    // The open target and the remote listen pass.
    let passed = forwards.iter().filter(|c| c["status"] == "ok").count();
    assert_eq!(passed, 2, "{report:#}");
    // Only the forward failed.
    let failed: Vec<&Value> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] != "ok" && c["status"] != "skip")
        .collect();
    assert_eq!(failed.len(), 1, "{report:#}");
}

// Fails on the old code: there was no --speed.
#[test]
fn speed_reports_round_trip_and_throughput() {
    // The remote files check looks at the session's HOME: a temp
    // dir, not the ~/.ssh of whoever runs the tests.
    let t = Setup::own_home();
    let cfg = t.sshd.client_config();
    let run = t.doctor(&["--json", "--speed", "-F", cfg.to_str().unwrap(), "test"]);
    let report = run.json();
    assert_eq!(run.code, 0, "{report:#}");
    let speed = expect(&report, "test speed", "ok");
    let summary = speed["summary"].as_str().unwrap();
    eprintln!("speed: {summary}");
    // Numbers only reported, never judged here.
    assert!(summary.starts_with("round trip "), "{summary}");
    assert!(summary.contains("8 MiB down in "), "{summary}");
    assert!(summary.contains(" MB/s)"), "{summary}");
    // Without --speed, no measurement.
    let run = t.doctor(&["--json", "-F", cfg.to_str().unwrap(), "test"]);
    let report = run.json();
    assert!(
        !report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "test speed"),
        "{report:#}"
    );
}

/// The checklist as a user sees it, with what changes from run to run
/// (ports, temp paths, fingerprints, times, the user, the server's
/// version) replaced by names.
fn assert_checklist(name: &str, stdout: &str) {
    let filters = vec![
        (r"/tmp/[^\s:'`,)]+", "[TMP]"),
        (r"SHA256:[A-Za-z0-9+/]+", "SHA256:[FINGERPRINT]"),
        (r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]"),
        (r"port \d+", "port [PORT]"),
        (r"Port \d+", "Port [PORT]"),
        (r"\(\d+ ms\)", "([MS] ms)"),
        (r"in \d+ ms", "in [MS] ms"),
        (r"logged in as \S+", "logged in as [USER]"),
        (r"User [^\s,]+( |,)", "User [USER]$1"),
        (r"\S+@127\.0\.0\.1", "[USER]@127.0.0.1"),
        (r"OpenSSH_\S+( \S+)?", "OpenSSH_[VERSION]"),
    ];
    insta::with_settings!({ filters => filters, prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!(name, stdout);
    });
}

/// An sshd whose sessions see HOME as an empty temp dir, so the remote
/// files check does not depend on this machine's own ~/.ssh.
fn sshd_with_own_home() -> (Sshd, tempfile::TempDir) {
    let remote_home = tempfile::tempdir().expect("remote home");
    let sshd = Sshd::builder()
        .config(format!(
            "SetEnv HOME={} SHLVL=1",
            remote_home.path().display()
        ))
        .start();
    (sshd, remote_home)
}

// Fails on the old code: the checklist had no remote files check and
// no snapshot held its shape.
#[test]
fn checklist_snapshot_healthy() {
    let t = Setup::own_home();
    let run = t.doctor(&["-F", t.sshd.client_config().to_str().unwrap(), "test"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_checklist("doctor_healthy", &run.stdout);
}

// Fails on the old code: no snapshot held the shape of a refused port.
#[test]
fn checklist_snapshot_closed_port() {
    let t = Setup::new();
    let cfg = t.config("snap-closed", &format!("  Port {}\n", free_port()));
    let run = t.doctor(&["-F", cfg.to_str().unwrap(), "test"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_checklist("doctor_closed_port", &run.stdout);
}

// Fails on the old code: a refused key's fix did not name StrictModes.
#[test]
fn checklist_snapshot_wrong_key() {
    let t = Setup::own_home();
    let other = keygen(t.sshd.dir(), "other_key", "ed25519", "");
    let cfg = t.with_key("snap-wrong", &other);
    let run = t.doctor(&["-F", cfg.to_str().unwrap(), "test"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_checklist("doctor_wrong_key", &run.stdout);
}

// Fails on the old code: a login behind two refused agent keys showed
// no warning, and no snapshot held its shape.
#[test]
fn checklist_snapshot_refused_keys_before_login() {
    let t = Setup::own_home();
    let (_agent, cfg) = t.stray_agent("snap_stray", 2);
    let run = t.doctor(&["-F", cfg.to_str().unwrap(), "test"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_checklist("doctor_refused_keys", &run.stdout);
}

// Fails on the old code: there was no --fix.
#[test]
fn fix_refuses_without_a_terminal_and_applies_with_yes() {
    use std::os::unix::fs::PermissionsExt;
    // The remote files check looks at the session's HOME: a temp
    // dir, not the ~/.ssh of whoever runs the tests.
    let t = Setup::own_home();
    let key = t.sshd.dir().join("fix_key");
    std::fs::copy(t.sshd.client_key(), &key).expect("copy key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let cfg = t.with_key("fix", &key);
    let mode = || std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;

    // No terminal to confirm on: nothing changes, and it says so.
    let run = t.doctor(&["--fix", "-F", cfg.to_str().unwrap(), "test"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout
            .contains("not a terminal to confirm each fix, so nothing was changed"),
        "{}",
        run.stdout
    );
    assert_eq!(mode(), 0o644);

    // --yes applies it; the next run passes.
    let run = t.doctor(&["--fix", "--yes", "-F", cfg.to_str().unwrap(), "test"]);
    assert_eq!(run.code, 1, "the report is of before the fix");
    assert!(
        run.stdout
            .contains(&format!("  done: chmod 600 {}", key.display())),
        "{}",
        run.stdout
    );
    assert_eq!(mode(), 0o600);
    let run = t.doctor(&["--json", "-F", cfg.to_str().unwrap(), "test"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
}

// Fails on the old code: there was no --fix.
#[test]
fn fix_yes_removes_a_changed_host_key_line() {
    let t = Setup::new();
    let impostor = keygen(t.sshd.dir(), "impostor", "ed25519", "");
    let public = std::fs::read_to_string(impostor.with_extension("pub")).expect("pub");
    let mut fields = public.split_whitespace();
    let (kind, b64) = (fields.next().unwrap(), fields.next().unwrap());
    let known = t.sshd.dir().join("fix_known_hosts");
    std::fs::write(
        &known,
        format!(
            "{} {kind} {b64}\nother.example ssh-ed25519 {b64}\n",
            t.sshd.known_hosts_pattern()
        ),
    )
    .unwrap();
    let cfg = t.config(
        "fix-changed",
        &format!("  UserKnownHostsFile {}\n", known.display()),
    );
    let run = t.doctor(&["--fix", "--yes", "-F", cfg.to_str().unwrap(), "test"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.contains("  done: remove the old key of"),
        "{}",
        run.stdout
    );
    let left = std::fs::read_to_string(&known).unwrap();
    assert!(
        !left.contains(&t.sshd.known_hosts_pattern()),
        "the changed line is gone: {left}"
    );
    assert!(left.contains("other.example"), "other hosts stay: {left}");
    // --fix and --json do not mix: stdout is the JSON.
    let run = t.doctor(&["--fix", "--json", "-F", cfg.to_str().unwrap(), "test"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("cannot be used with"), "{}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
}

/// `key`'s public half, authorized on `sshd`.
fn authorize(sshd: &Sshd, key: &Path) {
    let line = std::fs::read_to_string(key.with_extension("pub")).expect("public key");
    sshd.authorize(&line);
}

// Fails on the old code: an encrypted key with no agent gave only
// "Tried: nothing" and the generic "add a key with -i" hint; the key
// was never named.
#[test]
fn encrypted_key_without_agent_says_load_it_into_the_agent() {
    let t = Setup::new();
    let key = keygen(t.sshd.dir(), "locked_key", "ed25519", "a long passphrase");
    authorize(&t.sshd, &key);
    let cfg = t.with_key("locked", &key);
    let (code, report) = t.report(&cfg);
    assert_eq!(code, 1);
    let auth = expect(&report, "test auth", "fail");
    let summary = auth["summary"].as_str().unwrap();
    assert!(
        summary.contains(&format!(
            "{} is encrypted and no agent holds it",
            key.display()
        )),
        "{summary}"
    );
    let fix = auth["fix"].as_str().unwrap();
    assert!(
        fix.contains(&format!("`warren add {}`", key.display())),
        "{fix}"
    );
    assert!(fix.contains("`warren ssh test`"), "{fix}");
    assert!(
        !fix.contains("authorized_keys"),
        "the cause is known: {fix}"
    );
}

// Fails on the old code: a key of a type sshd's PubkeyAcceptedAlgorithms
// leaves out got the same "is the key in authorized_keys" fix as any
// other refusal; the type was never named.
#[test]
fn key_type_the_server_refuses_is_named() {
    let t = Setup::on(
        Sshd::builder()
            .config("PubkeyAcceptedAlgorithms ssh-ed25519")
            .start(),
    );
    let key = keygen(t.sshd.dir(), "ecdsa_key", "ecdsa", "");
    authorize(&t.sshd, &key);
    let cfg = t.with_key("ecdsa", &key);
    let (code, report) = t.report(&cfg);
    assert_eq!(code, 1);
    let auth = expect(&report, "test auth", "fail");
    let summary = auth["summary"].as_str().unwrap();
    assert!(
        summary.contains("the server refused key type(s) ecdsa-sha2-nistp256"),
        "{summary}"
    );
    let fix = auth["fix"].as_str().unwrap();
    for words in [
        "may not accept ecdsa-sha2-nistp256 keys",
        "PubkeyAcceptedAlgorithms",
        "`warren keygen -t ed25519`",
    ] {
        assert!(fix.contains(words), "{words}: {fix}");
    }
    assert!(
        t.sshd.log().contains("not in PubkeyAcceptedAlgorithms"),
        "sshd refused the type:\n{}",
        t.sshd.log()
    );
}

// Fails on the old code: a refused certificate got the generic
// authorized_keys fix; neither its expiry nor its principals were read.
#[test]
fn certificate_expired_or_for_another_principal_is_named() {
    let (t, ca_key) = Setup::with_user_ca();
    let user = local_user();
    let cases = [
        (
            "expired_key",
            vec!["-n", user.as_str(), "-V", "20200101:20200102"],
        ),
        ("other_key", vec!["-n", "someoneelse"]),
    ];
    for (name, args) in &cases {
        let key = keygen(t.sshd.dir(), name, "ed25519", "");
        warren_testkit::sign(&ca_key, &key.with_extension("pub"), args);
    }
    let run_with = |name: &str| {
        let key = t.sshd.dir().join(name);
        let cfg = t.with_key(&format!("cert-{name}"), &key);
        let run = t.doctor(&["--json", "-F", cfg.to_str().unwrap(), "test"]);
        assert_eq!(run.code, 1, "{}", run.stdout);
        let auth = check(&run.json(), "test auth").clone();
        assert_eq!(auth["status"], "fail", "{auth}");
        (key, auth)
    };

    let (key, auth) = run_with("expired_key");
    let summary = auth["summary"].as_str().unwrap();
    assert!(
        summary.contains(&format!(
            "the certificate of {} expired 2020-01-0",
            key.display()
        )),
        "{summary}"
    );
    let fix = auth["fix"].as_str().unwrap();
    assert!(fix.contains(&format!("-n {user} -V +52w")), "{fix}");

    let (key, auth) = run_with("other_key");
    let summary = auth["summary"].as_str().unwrap();
    assert!(
        summary.contains(&format!(
            "the certificate of {} is for principal(s) someoneelse, not the login user {user}",
            key.display()
        )),
        "{summary}"
    );
    let fix = auth["fix"].as_str().unwrap();
    assert!(fix.contains(&format!("principal {user}")), "{fix}");
}

// Fails on the old code: IdentitiesOnly no with more agent keys than
// sshd's default MaxAuthTries passed the configuration stage.
#[test]
fn identities_only_no_with_many_agent_keys_warns() {
    let t = Setup::new();
    let (agent, cfg) = t.stray_agent("many_key", 7);
    let (code, report) = t.report(&cfg);
    assert_eq!(code, 1);
    let warn = expect(&report, "config IdentitiesOnly", "warn");
    assert_says(warn, "summary", "the agent holds 7 keys");
    let fix = warn["fix"].as_str().unwrap();
    assert!(
        fix.contains("IdentitiesOnly yes") && fix.contains("IdentityFile"),
        "{fix}"
    );
    // With IdentitiesOnly yes the same agent raises nothing.
    let cfg = t.config(
        "seven-keys-only",
        &format!("  IdentityAgent {}\n", agent.socket.display()),
    );
    let report = t
        .doctor(&["--json", "-F", cfg.to_str().unwrap(), "test"])
        .json();
    assert!(
        !report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "config IdentitiesOnly"),
        "{report:#}"
    );
}

// Fails on the old code: `warren ssh` in BatchMode with only an
// encrypted key said "no credentials were available" without naming it.
#[test]
fn ssh_batch_mode_hint_names_the_encrypted_key() {
    let t = Setup::new();
    let key = keygen(
        t.sshd.dir(),
        "batch_locked_key",
        "ed25519",
        "a long passphrase",
    );
    authorize(&t.sshd, &key);
    let cfg = t.with_key("batch-locked", &key);
    let out = warren()
        .args(["ssh", "-F", cfg.to_str().unwrap(), "test", "true"])
        .env("HOME", t.home.path())
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::null())
        .output()
        .expect("run warren ssh");
    assert_eq!(out.status.code(), Some(255));
    let err = text(&out.stderr);
    let hint = err
        .lines()
        .find(|l| l.starts_with("hint: "))
        .unwrap_or_default();
    assert!(
        hint.contains(&format!(
            "{} is encrypted and BatchMode forbids asking for its passphrase",
            key.display()
        )),
        "{err}"
    );
    assert!(
        hint.contains(&format!("warren add {}", key.display())),
        "{err}"
    );
}

// Fails on the old code: a login that got in with the third key said
// only "ok"; the expired certificate, the key file others can read and
// the refused key behind it were never mentioned.
#[test]
fn login_that_succeeded_anyway_warns_of_what_failed_first() {
    let (t, ca_key) = Setup::with_user_ca();
    let user = local_user();
    // Authorized, but others can read it: skipped before it is offered.
    let loose = keygen(t.sshd.dir(), "loose_key", "ed25519", "");
    authorize(&t.sshd, &loose);
    std::fs::set_permissions(&loose, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    // Not authorized; its certificate expired: refused twice.
    let expired = keygen(t.sshd.dir(), "expired_key", "ed25519", "");
    warren_testkit::sign(
        &ca_key,
        &expired.with_extension("pub"),
        &["-n", &user, "-V", "20200101:20200102"],
    );
    let cfg = t.config(
        "behind",
        &format!(
            "  IdentityFile {}\n  IdentityFile {}\n  IdentityFile {}\n",
            loose.display(),
            expired.display(),
            t.sshd.client_key().display()
        ),
    );
    let (code, report) = t.report(&cfg);
    assert_eq!(code, 1, "{report:#}");
    let auth = expect(&report, "test auth", "ok");
    assert!(
        field(auth, "summary").contains(&t.sshd.client_key().display().to_string()),
        "{auth}"
    );

    let cert = expect(&report, "test auth certificate", "warn");
    assert!(
        field(cert, "summary").contains(&format!(
            "the certificate of {} expired 2020-01-0",
            expired.display()
        )),
        "{cert}"
    );
    assert!(
        field(cert, "fix").contains(&format!("-n {user} -V +52w")),
        "{cert}"
    );

    let modes = expect(&report, "test auth key modes", "warn");
    assert!(
        field(modes, "summary").contains(&format!("{} was skipped", loose.display())),
        "{modes}"
    );
    assert_eq!(modes["fix"], format!("chmod 600 {}", loose.display()));

    let refused = expect(&report, "test auth refused keys", "warn");
    let summary = field(refused, "summary");
    // The expired key is offered plain, then with its certificate (as
    // ssh offers a key and the KEY-cert.pub beside it): two refusals.
    assert!(summary.contains("refused 2 key(s) first"), "{summary}");
    assert!(
        summary.contains(&expired.display().to_string()),
        "{summary}"
    );
    assert!(summary.contains("MaxAuthTries"), "{summary}");
    let fix = field(refused, "fix");
    assert!(
        fix.contains(&format!(
            "`IdentitiesOnly yes` and `IdentityFile {}`",
            t.sshd.client_key().display()
        )),
        "{fix}"
    );
}

// Fails on the old code: three agent keys refused before the key that
// got in left the login "ok", with nothing said of MaxAuthTries.
#[test]
fn agent_keys_refused_before_the_right_one_warn_of_max_auth_tries() {
    let t = Setup::new();
    let (_agent, cfg) = t.stray_agent("stray_key", 3);
    let (_, report) = t.report(&cfg);
    assert_eq!(check(&report, "test auth")["status"], "ok", "{report:#}");
    let refused = expect(&report, "test auth refused keys", "warn");
    let summary = field(refused, "summary");
    assert!(summary.contains("refused 3 key(s) first"), "{summary}");
    assert_eq!(
        summary.matches("(agent: ssh-ed25519 SHA256:").count(),
        3,
        "{summary}"
    );
    assert!(
        summary.contains("Too many authentication failures"),
        "{summary}"
    );
    assert!(
        field(refused, "fix")
            .contains(&format!("`IdentityFile {}`", t.sshd.client_key().display())),
        "{refused}"
    );
}

/// An RSA key in the legacy PEM format, encrypted with `passphrase`
/// (`ssh-keygen -m PEM -N ...`).
fn encrypted_pem_key(dir: &Path, name: &str, passphrase: &str) -> PathBuf {
    let path = dir.join(name);
    let status = std::process::Command::new("ssh-keygen")
        .args([
            "-q", "-t", "rsa", "-b", "2048", "-m", "PEM", "-N", passphrase, "-C", name, "-f",
        ])
        .arg(&path)
        .stdin(Stdio::null())
        .status()
        .expect("ssh-keygen");
    assert!(status.success(), "ssh-keygen -m PEM failed");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n"),
        "not a legacy encrypted PEM key: {}",
        text.lines().take(2).collect::<Vec<_>>().join(" | ")
    );
    path
}

// Fails on the old code: an encrypted legacy PEM key read as "invalid
// format", and `warren add` (the fix) could not load it either.
#[test]
fn encrypted_pem_key_is_named_with_its_fix() {
    let t = Setup::own_home();
    let key = encrypted_pem_key(t.sshd.dir(), "pem_key", "a long passphrase");
    authorize(&t.sshd, &key);
    let cfg = t.with_key("pem", &key);
    let run = t.checklist(&["--json"], &cfg);
    assert!(!run.stdout.contains("invalid format"), "{}", run.stdout);
    let report = run.json();
    let auth = expect(&report, "test auth", "fail");
    assert!(
        field(auth, "summary").contains(&format!("{} is an encrypted PEM key", key.display())),
        "{auth}"
    );
    let shown = key.display();
    assert!(
        field(auth, "fix").starts_with(&format!(
            "encrypted PEM key: load it with `warren add {shown}` (or ssh-add) or convert it: \
             `ssh-keygen -p -f {shown}`"
        )),
        "{auth}"
    );
    assert!(
        !field(auth, "fix").contains("authorized_keys"),
        "the cause is known: {auth}"
    );

    // `warren ssh` says the same in its hint.
    let out = warren()
        .args(["ssh", "-F", cfg.to_str().unwrap(), "test", "true"])
        .env("HOME", t.home.path())
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::null())
        .output()
        .expect("run warren ssh");
    assert_eq!(out.status.code(), Some(255));
    let err = text(&out.stderr);
    assert!(!err.contains("invalid format"), "{err}");
    assert!(
        err.lines().any(|l| l.starts_with("hint: ")
            && l.contains(&format!("{shown} is an encrypted PEM key"))
            && l.contains(&format!("`ssh-keygen -p -f {shown}`"))),
        "{err}"
    );

    // The fix works: `warren add` loads it (passphrase from SSH_ASKPASS),
    // and the login goes through the agent.
    let agent = Agent::start(t.home.path());
    let askpass = t.sshd.dir().join("askpass");
    std::fs::write(&askpass, "#!/bin/sh\necho 'a long passphrase'\n").unwrap();
    std::fs::set_permissions(
        &askpass,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let added = warren()
        .arg("add")
        .arg(&key)
        .env("SSH_AUTH_SOCK", &agent.socket)
        .env("SSH_ASKPASS", &askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("DISPLAY", ":0")
        .stdin(Stdio::null())
        .output()
        .expect("warren add");
    assert!(
        added.status.success(),
        "warren add: {}",
        text(&added.stderr)
    );
    let cfg = t.config(
        "pem-agent",
        &format!(
            "  IdentityFile {}\n  IdentityAgent {}\n",
            key.display(),
            agent.socket.display()
        ),
    );
    let (code, report) = t.report(&cfg);
    assert_eq!(code, 0, "{report:#}");
    assert!(
        field(check(&report, "test auth"), "summary").contains("pem_key, agent)"),
        "{report:#}"
    );
}

// Fails on the old code: a RemoteForward on a Unix socket was skipped
// ("a Unix socket listen is not tried").
#[test]
fn remote_forward_on_a_unix_socket_is_requested_and_cancelled() {
    let t = Setup::own_home();
    let socket = t.sshd.dir().join("fwd.sock");
    let nowhere = t.sshd.dir().join("no-such-dir").join("fwd.sock");
    let cfg = t.config(
        "unix-forward",
        &format!(
            "  RemoteForward {} 127.0.0.1:22\n  RemoteForward {} 127.0.0.1:22\n  ServerAliveInterval 30\n",
            socket.display(),
            nowhere.display()
        ),
    );
    let (code, report) = t.report(&cfg);
    assert_eq!(code, 1, "{report:#}");
    let forwards = checks_named(&report, "test forward ");
    assert_eq!(forwards.len(), 2, "{report:#}");
    let named = |path: &Path| {
        *forwards
            .iter()
            .find(|c| field(c, "name").contains(&path.display().to_string()))
            .unwrap_or_else(|| panic!("no check for {}: {report:#}", path.display()))
    };
    let ok = named(&socket);
    assert_eq!(ok["status"], "ok", "{ok}");
    assert!(
        field(ok, "summary").contains("requested and cancelled"),
        "{ok}"
    );
    // Nothing is left behind for the next real forward to trip on.
    assert!(!socket.exists(), "the socket file was removed");
    let refused = named(&nowhere);
    assert_eq!(refused["status"], "fail", "{refused}");
    assert!(
        field(refused, "summary").contains("the server refused to listen on"),
        "{refused}"
    );
    assert!(
        field(refused, "fix").contains("AllowStreamLocalForwarding"),
        "{refused}"
    );
    assert!(
        t.sshd.log().contains(&format!(
            "unix_listener: cannot bind to path {}",
            nowhere.display()
        )),
        "the server tried to listen there:\n{}",
        t.sshd.log()
    );
}

// Fails on the old code: --fix applied only local fixes ("nothing here
// can be fixed locally"); the server's authorized_keys kept its modes.
#[test]
fn fix_yes_runs_the_remote_chmod_that_strict_modes_asks_for() {
    use std::os::unix::fs::PermissionsExt;
    let (_base, t, key, authorized) = strict_modes_server();
    let with_key = t.with_key("strict-fix", &key);
    let real_ssh = || {
        std::process::Command::new("ssh")
            .args(["-F", with_key.to_str().unwrap(), "test", "true"])
            .stdin(Stdio::null())
            .output()
            .expect("ssh")
    };
    assert!(
        !real_ssh().status.success(),
        "StrictModes refuses the key first"
    );

    // Logged in with the fixture's key, the doctor finds the modes and
    // fixes them over a session.
    let run = t.checklist(&["--fix", "--yes"], &t.sshd.client_config());
    assert_eq!(run.code, 1, "the report is of before the fix");
    assert!(
        run.stdout
            .contains("  done: on test: chmod go-w ~/.ssh/authorized_keys\n"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    let mode = std::fs::metadata(&authorized).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);

    // A second run with the key is clean, and real ssh logs in with it.
    let (code, report) = t.report(&with_key);
    assert_eq!(code, 0, "{report:#}");
    let out = real_ssh();
    assert!(out.status.success(), "ssh: {}", text(&out.stderr));
}

// Fails on the old code: a key owned by another user got only the
// `chown` to type; --fix applied nothing, even as root.
#[test]
fn fix_yes_as_root_chowns_a_key_owned_by_another_user() {
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        test_uid(),
        0,
        "this test runs as root: only root can chown a file to itself"
    );
    let t = Setup::own_home();
    let key = t.sshd.dir().join("foreign_key");
    std::fs::copy(t.sshd.client_key(), &key).unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(&key, Some(4242), Some(4242)).unwrap();
    let cfg = t.with_key("foreign", &key);
    let (_, report) = t.report(&cfg);
    let file = expect(&report, &format!("file {}", key.display()), "fail");
    assert_eq!(file["fix"], format!("chown 0 {}", key.display()));

    let run = t.checklist(&["--fix", "--yes"], &cfg);
    assert!(
        run.stdout
            .contains(&format!("  done: chown 0 {}\n", key.display())),
        "{}",
        run.stdout
    );
    assert_eq!(std::fs::metadata(&key).unwrap().uid(), 0);
    let (code, report) = t.report(&cfg);
    assert_eq!(code, 0, "{report:#}");
}
