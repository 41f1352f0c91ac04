//! Authentication as OpenSSH's ssh does it, against a real sshd with the
//! real ssh-keygen, ssh-agent and ssh-add as peers: RSA certificates
//! signed with SHA-2, keys whose private half only the agent holds,
//! certificates paired with the key they certify, the server's Banner,
//! and ECDSA keys whose private scalar is shorter than the curve.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]

mod common;
use common::{text, warren};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use warren_testkit::{Sshd, keygen, local_user, sign};

/// A client config for the fixture's `test` host: its lines minus those
/// containing any of `drop`, with `extra` first (first value wins).
fn config(sshd: &Sshd, name: &str, extra: &str, drop: &[&str]) -> PathBuf {
    let base = std::fs::read_to_string(sshd.client_config()).expect("config");
    let base: String = base
        .lines()
        .filter(|l| !drop.iter().any(|d| l.contains(d)))
        .map(|l| format!("{l}\n"))
        .collect();
    let path = sshd.dir().join(name);
    std::fs::write(&path, format!("Host test\n{extra}\n{base}")).expect("write cfg");
    path
}

fn run(cfg: &Path, args: &[&str]) -> Output {
    warren()
        .arg("ssh")
        .arg("-F")
        .arg(cfg)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run warren")
}

/// OpenSSH's own ssh with the same config, the oracle for what should log in.
fn openssh(cfg: &Path, args: &[&str]) -> Output {
    Command::new("ssh")
        .arg("-F")
        .arg(cfg)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("ssh is required (openssh-client)")
}

fn assert_ran(out: &Output, want: &str, sshd: &Sshd) {
    assert!(
        out.status.success(),
        "warren failed:\n{}\nsshd:\n{}",
        text(&out.stderr),
        sshd.log()
    );
    assert_eq!(text(&out.stdout), want);
}

/// A real ssh-agent on a socket in `dir`; killed on drop.
struct Agent {
    child: Child,
    sock: PathBuf,
}

impl Agent {
    fn start(dir: &Path) -> Agent {
        let sock = dir.join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&sock)
            .stdout(Stdio::null())
            .spawn()
            .expect("ssh-agent is required (openssh-client)");
        for _ in 0..250 {
            if sock.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(sock.exists(), "ssh-agent never made {}", sock.display());
        Agent { child, sock }
    }

    /// `ssh-add KEY` (which also adds `KEY-cert.pub` when present).
    fn add(&self, key: &Path) {
        let out = Command::new("ssh-add")
            .arg(key)
            .env("SSH_AUTH_SOCK", &self.sock)
            .output()
            .expect("ssh-add");
        assert!(out.status.success(), "ssh-add: {}", text(&out.stderr));
    }

    /// What `ssh-add -L` lists, one identity a line.
    fn list(&self) -> String {
        let out = Command::new("ssh-add")
            .arg("-L")
            .env("SSH_AUTH_SOCK", &self.sock)
            .output()
            .expect("ssh-add -L");
        text(&out.stdout)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn cert_path(key: &Path) -> PathBuf {
    PathBuf::from(format!("{}-cert.pub", key.display()))
}

/// An sshd trusting a fresh user CA, and that CA's private key.
fn sshd_with_user_ca(extra: &[&str]) -> (Sshd, tempfile::TempDir, PathBuf) {
    let ca_dir = tempfile::tempdir().expect("tmp");
    let ca = keygen(ca_dir.path(), "user_ca", "ed25519", "");
    let mut builder = Sshd::builder().config(format!(
        "TrustedUserCAKeys {}",
        ca.with_extension("pub").display()
    ));
    for line in extra {
        builder = builder.config(*line);
    }
    (builder.start(), ca_dir, ca)
}

// Item 6: an RSA user certificate was offered as ssh-rsa-cert-v01 (SHA-1),
// which sshd 8.8+ refuses with its default PubkeyAcceptedAlgorithms.
#[test]
fn rsa_user_certificate_is_offered_with_sha2() {
    let (sshd, _ca_dir, ca) = sshd_with_user_ca(&["LogLevel DEBUG"]);
    // Not in authorized_keys: only the certificate can log it in.
    let key = keygen(sshd.dir(), "rsa_user", "rsa", "");
    sign(&ca, &key.with_extension("pub"), &["-n", &local_user()]);
    let cfg = config(
        &sshd,
        "cfg_rsa_cert",
        &format!("  IdentityFile {}", key.display()),
        &["IdentityFile"],
    );
    let out = run(&cfg, &["test", "echo rsa-cert"]);
    assert_ran(&out, "rsa-cert\n", &sshd);
    let log = sshd.log();
    assert!(
        log.contains("rsa-sha2-512-cert-v01@openssh.com") && log.contains("RSA-CERT"),
        "sshd saw an RSA certificate signed with SHA-512:\n{log}"
    );
    // PubkeyAcceptedAlgorithms names the certificate's algorithm.
    let out = run(
        &cfg,
        &[
            "-o",
            "PubkeyAcceptedAlgorithms=rsa-sha2-256-cert-v01@openssh.com",
            "test",
            "echo rsa-cert-256",
        ],
    );
    assert_ran(&out, "rsa-cert-256\n", &sshd);
    assert!(
        sshd.log().contains("rsa-sha2-256-cert-v01@openssh.com"),
        "{}",
        sshd.log()
    );
}

// Item 6: PubkeyAcceptedAlgorithms was ignored: an RSA key signed with
// rsa-sha2-512 whatever it said, and keys of types it leaves out were
// offered anyway.
#[test]
fn pubkey_accepted_algorithms_picks_the_signature_as_ssh_does() {
    let dir = tempfile::tempdir().expect("tmp");
    let rsa = keygen(dir.path(), "rsa_key", "rsa", "");
    let sshd = Sshd::builder()
        .client_key(&rsa)
        .config("LogLevel DEBUG")
        .start();
    let cfg = sshd.client_config();
    let out = run(
        &cfg,
        &[
            "-o",
            "PubkeyAcceptedAlgorithms=rsa-sha2-256",
            "test",
            "echo sha256",
        ],
    );
    assert_ran(&out, "sha256\n", &sshd);
    let log = sshd.log();
    assert!(
        log.contains("pkalg rsa-sha2-256") && !log.contains("pkalg rsa-sha2-512"),
        "{log}"
    );
    // A list without RSA: the key is skipped, as ssh skips it.
    let out = run(
        &cfg,
        &[
            "-v",
            "-o",
            "PubkeyAcceptedAlgorithms=ssh-ed25519",
            "test",
            "true",
        ],
    );
    assert_eq!(out.status.code(), Some(255), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("Skipping ssh-rsa key"),
        "{}",
        text(&out.stderr)
    );
    let theirs = openssh(
        &cfg,
        &["-o", "PubkeyAcceptedAlgorithms=ssh-ed25519", "test", "true"],
    );
    assert_eq!(theirs.status.code(), Some(255), "ssh refuses too");
}

// Item 7: `-i k.pub` with the private half only in the agent was refused
// ("permissions 0644 too open"), and `IdentityFile k` with only k.pub on
// disk was dropped as missing.
#[test]
fn agent_key_is_picked_by_its_public_file() {
    let sshd = Sshd::start();
    let agent = Agent::start(sshd.dir());
    // The fixture's authorized key, copied so its private half can go.
    let dir = tempfile::tempdir().expect("tmp");
    let key = dir.path().join("k");
    std::fs::copy(sshd.client_key(), &key).expect("copy key");
    std::fs::copy(
        sshd.client_key().with_extension("pub"),
        key.with_extension("pub"),
    )
    .expect("copy pub");
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    agent.add(&key);
    std::fs::remove_file(&key).expect("remove private half");
    let agent_line = format!("  IdentityAgent {}", agent.sock.display());
    let drop = ["IdentityFile", "IdentityAgent"];

    // -i k.pub with IdentitiesOnly: the agent's key matching k.pub signs.
    let cfg = config(&sshd, "cfg_pub_only", &agent_line, &drop);
    let public = key.with_extension("pub");
    let by_pub = [
        "-i",
        public.to_str().expect("utf-8 path"),
        "-o",
        "IdentitiesOnly=yes",
    ];
    let mut args = by_pub.to_vec();
    args.extend(["test", "echo by-pub"]);
    assert_ran(&openssh(&cfg, &args), "by-pub\n", &sshd);
    let out = run(
        &cfg,
        &[
            "-i",
            public.to_str().expect("utf-8 path"),
            "-o",
            "IdentitiesOnly=yes",
            "test",
            "echo by-pub",
        ],
    );
    assert_ran(&out, "by-pub\n", &sshd);
    assert!(
        !text(&out.stderr).contains("too open"),
        "a .pub file is not a private key: {}",
        text(&out.stderr)
    );

    // IdentityFile k where only k.pub exists.
    let cfg = config(
        &sshd,
        "cfg_key_without_private",
        &format!("{agent_line}\n  IdentityFile {}", key.display()),
        &drop,
    );
    let out = run(&cfg, &["test", "echo by-name"]);
    assert_ran(&out, "by-name\n", &sshd);
}

// Item 8: only the first CertificateFile was used, attached to every key:
// key B was offered with key A's certificate and never with its own.
#[test]
fn each_certificate_file_pairs_with_the_key_it_certifies() {
    let (sshd, _ca_dir, ca) = sshd_with_user_ca(&[]);
    let dir = tempfile::tempdir().expect("tmp");
    let a = keygen(dir.path(), "a", "ed25519", "");
    let b = keygen(dir.path(), "b", "ecdsa", "");
    // A's certificate is for another user: sshd refuses it if offered.
    sign(&ca, &a.with_extension("pub"), &["-n", "somebody-else"]);
    sign(&ca, &b.with_extension("pub"), &["-n", &local_user()]);
    // Certificates under names that are not KEY-cert.pub.
    let cert_a = dir.path().join("first.cert");
    let cert_b = dir.path().join("second.cert");
    std::fs::rename(cert_path(&a), &cert_a).expect("rename");
    std::fs::rename(cert_path(&b), &cert_b).expect("rename");
    let cfg = config(
        &sshd,
        "cfg_two_certs",
        &format!(
            "  IdentityFile {}\n  CertificateFile {}\n  CertificateFile {}",
            b.display(),
            cert_a.display(),
            cert_b.display()
        ),
        &["IdentityFile"],
    );
    let out = run(&cfg, &["-v", "test", "echo second-cert"]);
    assert_ran(&out, "second-cert\n", &sshd);
    let log = sshd.log();
    assert!(
        log.contains("Accepted publickey") && log.contains("ECDSA-CERT"),
        "B logged in with its own certificate:\n{log}"
    );
    // ssh offers A's certificate too (sshd refuses it before any
    // signature is due); warren does not offer a certificate whose key
    // nothing it holds can sign for, which spares one of MaxAuthTries.
    assert!(
        !log.contains("ED25519-CERT"),
        "A's certificate is never offered with another key:\n{log}"
    );
    // The oracle: OpenSSH's ssh logs in with the same files.
    assert_ran(
        &openssh(&cfg, &["test", "echo second-cert"]),
        "second-cert\n",
        &sshd,
    );
}

// Item 8: a KEY-cert.pub beside a key whose private half is only in the
// agent was ignored, and agent keys were never combined with certificates.
#[test]
fn certificate_beside_an_agent_key_is_signed_by_the_agent() {
    let (sshd, _ca_dir, ca) = sshd_with_user_ca(&["LogLevel DEBUG"]);
    let agent = Agent::start(sshd.dir());
    let dir = tempfile::tempdir().expect("tmp");
    // RSA, so the agent must also sign the certificate with SHA-2.
    let key = keygen(dir.path(), "k", "rsa", "");
    agent.add(&key);
    assert_eq!(agent.list().lines().count(), 1, "{}", agent.list());
    std::fs::remove_file(&key).expect("remove private half");
    sign(&ca, &key.with_extension("pub"), &["-n", &local_user()]);
    let cfg = config(
        &sshd,
        "cfg_agent_cert",
        &format!(
            "  IdentityAgent {}\n  IdentityFile {}",
            agent.sock.display(),
            key.display()
        ),
        &["IdentityFile", "IdentityAgent"],
    );
    assert_ran(
        &openssh(&cfg, &["test", "echo agent-cert"]),
        "agent-cert\n",
        &sshd,
    );
    let out = run(&cfg, &["test", "echo agent-cert"]);
    assert_ran(&out, "agent-cert\n", &sshd);
    assert!(
        sshd.log().contains("rsa-sha2-512-cert-v01@openssh.com"),
        "{}",
        sshd.log()
    );

    // ssh-add with the certificate beside the key: the agent holds both,
    // and without IdentitiesOnly the agent's certificate logs in.
    let key2 = keygen(dir.path(), "k2", "ed25519", "");
    sign(&ca, &key2.with_extension("pub"), &["-n", &local_user()]);
    agent.add(&key2);
    let cfg = config(
        &sshd,
        "cfg_agent_own_cert",
        &format!("  IdentityAgent {}", agent.sock.display()),
        &["IdentityFile", "IdentityAgent", "IdentitiesOnly"],
    );
    let out = run(&cfg, &["test", "echo agent-own-cert"]);
    assert_ran(&out, "agent-own-cert\n", &sshd);
}

// Item 11: the server's Banner (SSH_MSG_USERAUTH_BANNER) was never shown.
#[test]
fn banner_is_shown_escaped_unless_quiet() {
    let dir = tempfile::tempdir().expect("tmp");
    let banner = dir.path().join("banner");
    // A Latin-1 byte too: sshd sends the file as it is (russh ended the
    // connection on a banner that was not UTF-8).
    std::fs::write(
        &banner,
        b"Authorized use only\n\tsecond\x1b[31m line\ncaf\xe9\n",
    )
    .expect("banner");
    let sshd = Sshd::builder()
        .config(format!("Banner {}", banner.display()))
        .start();
    let cfg = sshd.client_config();
    let out = run(&cfg, &["test", "echo hi"]);
    assert_ran(&out, "hi\n", &sshd);
    let err = text(&out.stderr);
    assert!(
        err.contains("Authorized use only\n\tsecond\\e[31m line\ncaf\u{fffd}\n"),
        "banner on stderr, newline and tab kept, escape escaped: {err:?}"
    );
    // ssh's -q and LogLevel ERROR hide it.
    for args in [&["-q"][..], &["-o", "LogLevel=ERROR"]] {
        let mut all = args.to_vec();
        all.extend(["test", "echo hi"]);
        let out = run(&cfg, &all);
        assert_ran(&out, "hi\n", &sshd);
        assert!(
            !text(&out.stderr).contains("Authorized"),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

/// Standard base64 (with padding), enough for a key file's body.
fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let clean: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    let mut out = Vec::new();
    for chunk in clean.chunks(4) {
        let data: Vec<u8> = chunk.iter().copied().filter(|&c| c != b'=').collect();
        let mut n = 0u32;
        for (i, &c) in data.iter().enumerate() {
            n |= val(c) << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..data.len()]);
    }
    out
}

/// A cursor over SSH wire data, for the test's own look into key files.
struct Wire<'a>(&'a [u8]);

impl<'a> Wire<'a> {
    fn u32(&mut self) -> u32 {
        let (n, rest) = self.0.split_at(4);
        self.0 = rest;
        u32::from_be_bytes(n.try_into().expect("4 bytes"))
    }

    fn string(&mut self) -> &'a [u8] {
        let n = self.u32() as usize;
        let (s, rest) = self.0.split_at(n);
        self.0 = rest;
        s
    }
}

/// The length of the private scalar's mpint in an unencrypted OpenSSH
/// ECDSA key file.
fn scalar_len(path: &Path) -> usize {
    let pem = std::fs::read_to_string(path).expect("key");
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let raw = base64_decode(&body);
    let mut w = Wire(raw.strip_prefix(b"openssh-key-v1\0").expect("openssh key"));
    assert_eq!(w.string(), b"none", "unencrypted");
    w.string(); // kdf
    w.string(); // kdf options
    assert_eq!(w.u32(), 1, "one key");
    w.string(); // public key
    let mut private = Wire(w.string());
    assert_eq!(private.u32(), private.u32(), "check ints");
    assert!(private.string().starts_with(b"ecdsa-sha2-nistp"));
    private.string(); // curve
    private.string(); // public point
    private.string().len()
}

// Bug: about one ssh-keygen ECDSA P-256 key in 256 has a private scalar
// of 31 bytes or fewer (the mpint drops leading zeros); warren refused
// such keys ("length invalid") while OpenSSH reads them.
#[test]
fn ecdsa_key_with_a_short_scalar_is_read_and_logs_in() {
    let sshd = Sshd::start();
    let dir = tempfile::tempdir().expect("tmp");
    // The chance that 4000 keys all have a full-length scalar is e^-15.
    let key = (0..4000)
        .find_map(|i| {
            let _ = std::fs::remove_file(dir.path().join(format!("short{i}")));
            let key = keygen(dir.path(), &format!("short{i}"), "ecdsa", "");
            if scalar_len(&key) < 32 {
                return Some(key);
            }
            std::fs::remove_file(&key).expect("rm");
            std::fs::remove_file(key.with_extension("pub")).expect("rm");
            None
        })
        .expect("no ECDSA key with a short scalar in 4000 from ssh-keygen");
    let theirs = Command::new("ssh-keygen")
        .args(["-y", "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen -y");
    assert!(theirs.status.success(), "OpenSSH reads it");
    let ours = warren()
        .args(["keygen", "-y", "-f"])
        .arg(&key)
        .output()
        .expect("warren keygen -y");
    assert!(ours.status.success(), "{}", text(&ours.stderr));
    assert_eq!(text(&ours.stdout), text(&theirs.stdout));

    sshd.authorize(&text(&theirs.stdout));
    let cfg = config(
        &sshd,
        "cfg_short_scalar",
        &format!("  IdentityFile {}", key.display()),
        &["IdentityFile"],
    );
    let out = run(&cfg, &["test", "echo short-scalar"]);
    assert_ran(&out, "short-scalar\n", &sshd);

    // ssh-add sends the scalar to an agent as an mpint too: warren's agent
    // takes it and signs with it.
    let sock = dir.path().join("warren-agent.sock");
    let mut agent = warren()
        .args(["agent", "-D", "-a"])
        .arg(&sock)
        .stdout(Stdio::null())
        .spawn()
        .expect("warren agent");
    for _ in 0..250 {
        if sock.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let added = Command::new("ssh-add")
        .arg(&key)
        .env("SSH_AUTH_SOCK", &sock)
        .output()
        .expect("ssh-add");
    let via_agent = config(
        &sshd,
        "cfg_short_scalar_agent",
        &format!(
            "  IdentityAgent {}\n  IdentityFile {}",
            sock.display(),
            key.with_extension("pub").display()
        ),
        &["IdentityFile", "IdentityAgent"],
    );
    let out = run(&via_agent, &["test", "echo short-scalar-agent"]);
    let _ = agent.kill();
    let _ = agent.wait();
    assert!(added.status.success(), "ssh-add: {}", text(&added.stderr));
    assert_ran(&out, "short-scalar-agent\n", &sshd);

    // The same key encrypted (ssh-keygen -p): decrypted and read as well.
    let changed = Command::new("ssh-keygen")
        .args(["-q", "-p", "-P", "", "-N", "pw", "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen -p");
    assert!(changed.status.success(), "{}", text(&changed.stderr));
    let ours = warren()
        .args(["keygen", "-y", "-P", "pw", "-f"])
        .arg(&key)
        .output()
        .expect("warren keygen -y -P");
    assert!(ours.status.success(), "{}", text(&ours.stderr));
    assert_eq!(text(&ours.stdout), text(&theirs.stdout));
}
