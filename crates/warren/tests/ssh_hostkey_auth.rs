//! Host key verification and authentication against a real sshd, with the
//! real ssh-keygen and ssh-agent as peers.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]

mod common;
use common::{script, text, warren};

use std::process::{Command, Output, Stdio};

use warren_testkit::{Sshd, keygen};

/// A config for the fixture with one changed line set.
fn config_with(sshd: &Sshd, extra: &str) -> std::path::PathBuf {
    let base = std::fs::read_to_string(sshd.client_config()).expect("config");
    // IdentityFile accumulates: a test that names its own key drops the fixture's.
    let base: String = if extra.contains("IdentityFile") {
        base.lines()
            .filter(|l| !l.contains("IdentityFile"))
            .map(|l| format!("{l}\n"))
            .collect()
    } else {
        base
    };
    let path = sshd.dir().join(format!("cfg-{}", rand_suffix()));
    std::fs::write(&path, format!("Host test\n{extra}\n{base}")).expect("write cfg");
    path
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn run(cfg: &std::path::Path, args: &[&str]) -> Output {
    warren()
        .arg("ssh")
        .arg("-F")
        .arg(cfg)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run warren")
}

#[test]
fn changed_host_key_is_refused_naming_file_line_and_fix() {
    let sshd = Sshd::start();
    let other = keygen(sshd.dir(), "other_host", "ed25519", "");
    let other_pub = std::fs::read_to_string(other.with_extension("pub")).expect("pub");
    let b64 = other_pub.split_whitespace().nth(1).expect("b64");
    let known = sshd.dir().join("changed_known_hosts");
    std::fs::write(
        &known,
        format!("# comment\n[127.0.0.1]:{} ssh-ed25519 {b64}\n", sshd.port()),
    )
    .expect("write");
    let cfg = config_with(&sshd, &format!("  UserKnownHostsFile {}", known.display()));
    for strict in ["yes", "no", "accept-new"] {
        let out = run(
            &cfg,
            &[
                "-o",
                &format!("StrictHostKeyChecking={strict}"),
                "test",
                "true",
            ],
        );
        assert_eq!(out.status.code(), Some(255), "strict={strict}");
        let err = text(&out.stderr);
        assert!(
            err.contains("REMOTE HOST IDENTIFICATION HAS CHANGED"),
            "{err}"
        );
        assert!(
            err.contains(&format!("{}:2", known.display())),
            "names file:line: {err}"
        );
        assert!(err.contains("warren keygen -f"), "names the fix: {err}");
    }
    // The command the hint names works: after it, accept-new records the new key.
    let out = run(&cfg, &["test", "true"]);
    let err = text(&out.stderr);
    let hint = err
        .lines()
        .find(|l| l.contains("warren keygen -f"))
        .expect("hint line");
    let cmd = &hint[hint.find("warren keygen").expect("cmd")..];
    let args: Vec<String> = cmd
        .split('"')
        .enumerate()
        .flat_map(|(i, part)| {
            if i % 2 == 1 {
                vec![part.to_owned()]
            } else {
                part.split_whitespace().map(String::from).collect()
            }
        })
        .collect();
    let fixed = warren().args(&args[1..]).output().expect("run hint");
    assert!(fixed.status.success(), "{cmd}: {}", text(&fixed.stderr));
    let out = run(
        &cfg,
        &[
            "-o",
            "StrictHostKeyChecking=accept-new",
            "test",
            "echo fixed",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "fixed\n");
}

// known_hosts was read with read_to_string: one byte that is not UTF-8
// dropped the whole file, the changed key read as unknown, and accept-new
// saved it and connected (exit 0) where ssh refuses with 255.
#[test]
fn a_line_that_is_not_utf8_does_not_hide_a_changed_key() {
    let sshd = Sshd::start();
    let other = keygen(sshd.dir(), "other_host", "ed25519", "");
    let other_pub = std::fs::read_to_string(other.with_extension("pub")).expect("pub");
    let b64 = other_pub.split_whitespace().nth(1).expect("b64");
    let known = sshd.dir().join("latin1_known_hosts");
    let mut bytes = b"x\xe9\n".to_vec();
    bytes.extend(format!("[127.0.0.1]:{} ssh-ed25519 {b64}\n", sshd.port()).as_bytes());
    std::fs::write(&known, &bytes).expect("write");
    let cfg = config_with(&sshd, "");
    let kh = format!("UserKnownHostsFile={}", known.display());
    let args = ["-v", "-o", &kh, "-o", "StrictHostKeyChecking=accept-new"];
    let out = run(&cfg, &[&args[..], &["test", "true"]].concat());
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(255), "{err}");
    assert!(
        err.contains("REMOTE HOST IDENTIFICATION HAS CHANGED"),
        "{err}"
    );
    assert!(err.contains(&format!("{}:2", known.display())), "{err}");
    // The bad line is named at -v, and the file is left as it was.
    assert!(err.contains(&format!("{}:1:", known.display())), "{err}");
    assert_eq!(std::fs::read(&known).expect("read"), bytes);
    // ssh agrees.
    let ssh = Command::new("ssh")
        .arg("-F")
        .arg(&cfg)
        .args([
            "-o",
            &kh,
            "-o",
            "StrictHostKeyChecking=accept-new",
            "test",
            "true",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run ssh");
    assert_eq!(ssh.status.code(), Some(255), "{}", text(&ssh.stderr));
}

#[test]
fn revoked_host_key_is_refused() {
    let sshd = Sshd::start();
    let host_pub = sshd.host_public_keys().remove(0);
    let known = sshd.dir().join("revoked_known_hosts");
    std::fs::write(
        &known,
        format!(
            "@revoked * {host_pub}\n[127.0.0.1]:{} {host_pub}\n",
            sshd.port()
        ),
    )
    .expect("write");
    let cfg = config_with(&sshd, &format!("  UserKnownHostsFile {}", known.display()));
    let out = run(&cfg, &["test", "true"]);
    assert_eq!(out.status.code(), Some(255));
    assert!(
        text(&out.stderr).contains("revoked"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn unknown_host_strict_yes_refuses_and_accept_new_records_hashed() {
    let sshd = Sshd::start();
    let known = sshd.dir().join("empty_known_hosts");
    let cfg = config_with(
        &sshd,
        &format!(
            "  UserKnownHostsFile {}\n  HashKnownHosts yes",
            known.display()
        ),
    );
    let out = run(&cfg, &["test", "true"]);
    assert_eq!(
        out.status.code(),
        Some(255),
        "strict yes must refuse an unknown key"
    );
    assert!(
        text(&out.stderr).contains("Host key verification failed"),
        "{}",
        text(&out.stderr)
    );
    assert!(!known.exists() || std::fs::read_to_string(&known).expect("read").is_empty());

    let out = run(
        &cfg,
        &["-o", "StrictHostKeyChecking=accept-new", "test", "echo ok"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("Permanently added"),
        "{}",
        text(&out.stderr)
    );
    let recorded = std::fs::read_to_string(&known).expect("known_hosts written");
    assert!(
        recorded.starts_with("|1|"),
        "hashed entry expected: {recorded}"
    );
    // The real ssh-keygen finds the hashed entry: the file is OpenSSH's format.
    let found = Command::new("ssh-keygen")
        .args(["-F", &format!("[127.0.0.1]:{}", sshd.port()), "-f"])
        .arg(&known)
        .output()
        .expect("ssh-keygen -F");
    assert!(found.status.success(), "ssh-keygen -F did not find it");
    // And now the key is known: strict yes connects.
    let out = run(&cfg, &["test", "echo again"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "again\n");
}

#[test]
fn host_key_alias_is_used_for_lookup() {
    let sshd = Sshd::start();
    let host_pub = sshd.host_public_keys().remove(0);
    let known = sshd.dir().join("alias_known_hosts");
    std::fs::write(&known, format!("myalias {host_pub}\n")).expect("write");
    let cfg = config_with(
        &sshd,
        &format!(
            "  UserKnownHostsFile {}\n  HostKeyAlias myalias",
            known.display()
        ),
    );
    let out = run(&cfg, &["test", "echo ok"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn wrong_key_lists_offered_methods_and_what_was_tried() {
    let sshd = Sshd::start();
    let stranger = keygen(sshd.dir(), "stranger", "ed25519", "");
    let cfg = config_with(&sshd, &format!("  IdentityFile {}", stranger.display()));
    let out = run(&cfg, &["-o", "IdentitiesOnly=yes", "test", "true"]);
    assert_eq!(out.status.code(), Some(255));
    let err = text(&out.stderr);
    assert!(err.contains("Permission denied (publickey"), "{err}");
    assert!(
        err.contains(&stranger.display().to_string()),
        "names the key tried: {err}"
    );
}

#[test]
fn private_key_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let sshd = Sshd::start();
    let key = sshd.dir().join("loose_key");
    std::fs::copy(sshd.client_key(), &key).expect("copy");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let cfg = config_with(&sshd, &format!("  IdentityFile {}", key.display()));
    let out = run(&cfg, &["-o", "IdentitiesOnly=yes", "test", "true"]);
    assert_eq!(out.status.code(), Some(255));
    let err = text(&out.stderr);
    assert!(err.contains("UNPROTECTED PRIVATE KEY FILE"), "{err}");
    assert!(err.contains("are too open"), "{err}");
}

#[test]
fn rsa_and_ecdsa_keys_authenticate() {
    let sshd = Sshd::start();
    for kind in ["rsa", "ecdsa"] {
        let key = keygen(sshd.dir(), &format!("id_{kind}"), kind, "");
        sshd.authorize(&std::fs::read_to_string(key.with_extension("pub")).expect("pub"));
        let cfg = config_with(&sshd, &format!("  IdentityFile {}", key.display()));
        let out = run(&cfg, &["test", "echo", kind]);
        assert!(
            out.status.success(),
            "{kind}: {}\n{}",
            text(&out.stderr),
            sshd.log()
        );
        assert_eq!(text(&out.stdout), format!("{kind}\n"));
    }
    // RSA must have signed with SHA-2: OpenSSH 9 rejects ssh-rsa (SHA-1).
    assert!(
        sshd.log().contains("RSA SHA256:"),
        "sshd log: {}",
        sshd.log()
    );
}

#[test]
fn encrypted_key_passphrase_through_askpass() {
    let sshd = Sshd::start();
    let key = keygen(sshd.dir(), "id_locked", "ed25519", "s3cret phrase");
    sshd.authorize(&std::fs::read_to_string(key.with_extension("pub")).expect("pub"));
    let askpass = script(sshd.dir().join("askpass.sh"), "echo 's3cret phrase'\n");
    let cfg = sshd.dir().join("locked_cfg");
    let base = std::fs::read_to_string(sshd.client_config()).expect("cfg");
    std::fs::write(
        &cfg,
        format!(
            "Host test\n  IdentityFile {}\n  BatchMode no\n{base}",
            key.display()
        ),
    )
    .expect("cfg");
    let out = warren()
        .args(["ssh", "-F"])
        .arg(&cfg)
        .args(["-o", "IdentitiesOnly=yes", "test", "echo unlocked"])
        .env("SSH_ASKPASS", &askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stderr),
        sshd.log()
    );
    assert_eq!(text(&out.stdout), "unlocked\n");
}

#[test]
fn agent_identities_authenticate() {
    let sshd = Sshd::start();
    let sock = sshd.dir().join("agent.sock");
    let mut agent = Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&sock)
        .stdout(Stdio::null())
        .spawn()
        .expect("ssh-agent");
    for _ in 0..100 {
        if sock.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let added = Command::new("ssh-add")
        .arg(sshd.client_key())
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .expect("ssh-add");
    assert!(added.status.success(), "ssh-add: {}", text(&added.stderr));
    // No IdentityFile this time: the key is only in the agent.
    let cfg = sshd.dir().join("agent_cfg");
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
    std::fs::write(
        &cfg,
        format!(
            "Host test\n  IdentityAgent {}\n  IdentityFile /nonexistent/key\n{base}",
            sock.display()
        ),
    )
    .expect("cfg");
    let out = warren()
        .args(["ssh", "-F"])
        .arg(&cfg)
        .args(["-v", "test", "echo via-agent"])
        .stdin(Stdio::null())
        .output()
        .expect("run");
    let _ = agent.kill();
    let _ = agent.wait();
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stderr),
        sshd.log()
    );
    assert_eq!(text(&out.stdout), "via-agent\n");
    assert!(
        text(&out.stderr).contains("agent"),
        "-v names the agent key: {}",
        text(&out.stderr)
    );
}

#[test]
fn host_certificate_from_trusted_cert_authority_is_accepted() {
    let ca_dir = tempfile::tempdir().expect("tmp");
    let ca = keygen(ca_dir.path(), "host_ca", "ed25519", "");
    let sshd = Sshd::builder().host_certificates(&ca, "127.0.0.1").start();
    let ca_pub = std::fs::read_to_string(ca.with_extension("pub")).expect("ca pub");
    let known = sshd.dir().join("ca_known_hosts");
    // Only the CA is known: no plain host key at all.
    std::fs::write(&known, format!("@cert-authority * {ca_pub}")).expect("write");
    let cfg = config_with(&sshd, &format!("  UserKnownHostsFile {}", known.display()));
    let out = run(&cfg, &["-v", "test", "echo certified"]);
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stderr),
        sshd.log()
    );
    assert_eq!(text(&out.stdout), "certified\n");
    assert!(
        text(&out.stderr).contains("Host certificate signed by CA"),
        "{}",
        text(&out.stderr)
    );

    // A different CA is not trusted: the certificate's plain key is then
    // unknown and StrictHostKeyChecking=yes refuses.
    let other = keygen(ca_dir.path(), "other_ca", "ed25519", "");
    let other_pub = std::fs::read_to_string(other.with_extension("pub")).expect("pub");
    std::fs::write(&known, format!("@cert-authority * {other_pub}")).expect("write");
    let out = run(&cfg, &["test", "true"]);
    assert_eq!(out.status.code(), Some(255), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("Host key verification failed"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn user_certificate_authenticates() {
    let ca_dir = tempfile::tempdir().expect("tmp");
    let ca = keygen(ca_dir.path(), "user_ca", "ed25519", "");
    let sshd = Sshd::builder()
        .config(format!(
            "TrustedUserCAKeys {}",
            ca.with_extension("pub").display()
        ))
        .start();
    // A key that is NOT in authorized_keys, only certified by the CA.
    let key = keygen(sshd.dir(), "certified_user", "ed25519", "");
    warren_testkit::sign(
        &ca,
        &key.with_extension("pub"),
        &["-n", &warren_testkit::local_user()],
    );
    let cfg = config_with(&sshd, &format!("  IdentityFile {}", key.display()));
    let out = run(&cfg, &["test", "echo cert-login"]);
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stderr),
        sshd.log()
    );
    assert_eq!(text(&out.stdout), "cert-login\n");
    assert!(
        sshd.log().contains("ED25519-CERT"),
        "sshd saw a certificate: {}",
        sshd.log()
    );
}

#[test]
fn unknown_host_ask_takes_yes_and_records_the_key() {
    let sshd = Sshd::start();
    let known = sshd.dir().join("ask_known_hosts");
    let cfg = config_with(
        &sshd,
        &format!(
            "  UserKnownHostsFile {}\n  StrictHostKeyChecking ask\n  BatchMode no",
            known.display()
        ),
    );
    let prompts = sshd.dir().join("asked.log");
    let askpass = script(
        sshd.dir().join("yes.sh"),
        &format!("printf '%s' \"$1\" >> {}\necho yes\n", prompts.display()),
    );
    let out = warren()
        .arg("ssh")
        .arg("-F")
        .arg(&cfg)
        .args(["test", "echo asked"])
        .env("SSH_ASKPASS", &askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let asked = std::fs::read_to_string(&prompts).expect("prompted");
    assert!(
        asked.contains("can't be established") && asked.contains("SHA256:"),
        "{asked}"
    );
    let recorded = std::fs::read_to_string(&known).expect("recorded");
    assert!(
        recorded.starts_with(&format!("[127.0.0.1]:{} ssh-ed25519 ", sshd.port())),
        "{recorded}"
    );
}

#[test]
fn silent_server_hits_connect_timeout_during_banner() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let holder = std::thread::spawn(move || {
        let (conn, _) = listener.accept().expect("accept");
        std::thread::sleep(std::time::Duration::from_secs(4));
        drop(conn);
    });
    let started = std::time::Instant::now();
    let out = warren()
        .args([
            "ssh",
            "-F",
            "none",
            "-o",
            "ConnectTimeout=1",
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
    assert!(
        text(&out.stderr).contains("timed out during banner exchange"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(4),
        "the timeout must end the wait"
    );
    holder.join().expect("holder");
}

#[test]
fn bind_address_sets_the_source_address() {
    let sshd = Sshd::start();
    let out = run(
        &sshd.client_config(),
        &["-b", "127.0.0.2", "test", "echo $SSH_CLIENT"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("127.0.0.2 "),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn encrypted_key_the_server_refuses_is_never_unlocked() {
    let sshd = Sshd::start();
    let locked = keygen(sshd.dir(), "id_locked_stranger", "ed25519", "pw");
    let asked = sshd.dir().join("asked");
    let askpass = script(
        sshd.dir().join("count.sh"),
        &format!("echo x >> {}\necho pw\n", asked.display()),
    );
    let base = std::fs::read_to_string(sshd.client_config()).expect("cfg");
    let cfg = sshd.dir().join("two_keys_cfg");
    // The locked key comes first; the fixture's key (authorized) second.
    std::fs::write(
        &cfg,
        format!(
            "Host test\n  IdentityFile {}\n  BatchMode no\n{base}",
            locked.display()
        ),
    )
    .expect("cfg");
    let out = warren()
        .arg("ssh")
        .arg("-F")
        .arg(&cfg)
        .args(["test", "echo in"])
        .env("SSH_ASKPASS", &askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !asked.exists(),
        "asked for the passphrase of a key the server would not accept"
    );
}

/// The scripting idiom `-o StrictHostKeyChecking=no -o
/// UserKnownHostsFile=/dev/null` connects and says what ssh says; a
/// known_hosts that cannot be written costs a message, not the login.
#[test]
fn unknown_key_with_dev_null_or_unwritable_known_hosts_still_connects() {
    let sshd = Sshd::start();
    let cfg = config_with(&sshd, "  StrictHostKeyChecking no");
    for (known, message) in [
        ("/dev/null".to_owned(), "Warning: Permanently added"),
        (
            // A directory: neither client can append to it.
            sshd.dir().display().to_string(),
            "Failed to add the host to the list of known hosts",
        ),
    ] {
        let opt = format!("UserKnownHostsFile={known}");
        let out = run(&cfg, &["-o", &opt, "test", "echo in"]);
        let err = text(&out.stderr);
        assert!(out.status.success(), "{known}: {err}");
        assert_eq!(text(&out.stdout), "in\n");
        assert!(err.contains(message), "{known}: {err}");
        let ssh = Command::new("ssh")
            .arg("-F")
            .arg(&cfg)
            .args(["-o", &opt, "test", "echo in"])
            .stdin(Stdio::null())
            .output()
            .expect("run ssh");
        assert!(ssh.status.success(), "ssh, {known}: {}", text(&ssh.stderr));
        assert!(
            text(&ssh.stderr).contains(message),
            "ssh says otherwise for {known}: {}",
            text(&ssh.stderr)
        );
    }
}
