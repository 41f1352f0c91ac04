//! The staged connection against a real OpenSSH sshd: dial, handshake,
//! host key and authentication as separate steps, each with its result
//! and its time, and a failure reported by the stage it belongs to.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use warren_core::exec;
use warren_core::prompt::NoPrompt;
use warren_core::session::stages;
use warren_core::session::{
    AuthError, ConnectOptions, HostKeyError, SessionError, StrictHostKeyChecking,
};
use warren_testkit::{Sshd, keygen, local_user};

/// Options for the fixture's server: its known_hosts, its client key, no
/// agent, no prompts.
fn options(sshd: &Sshd, known_hosts: &Path, key: &Path) -> ConnectOptions {
    let addr = sshd.addr();
    let mut o = ConnectOptions::new(&addr.ip().to_string(), addr.port(), &local_user());
    o.connect_timeout = Some(Duration::from_secs(30));
    o.host_keys.user_known_hosts = vec![known_hosts.to_owned()];
    o.host_keys.strict = StrictHostKeyChecking::Yes;
    o.auth.identity_files = vec![key.to_owned()];
    o.auth.identity_files_explicit = true;
    o.auth.identities_only = true;
    o.auth.identity_agent = None;
    o.auth.batch_mode = true;
    o.auth.preferred = vec!["publickey".into()];
    o
}

/// `SHA256:...` of the server's ed25519 key, as ssh-keygen prints it.
fn fingerprint_by_ssh_keygen(sshd: &Sshd, dir: &Path) -> String {
    let line = sshd
        .host_public_keys()
        .into_iter()
        .find(|l| l.starts_with("ssh-ed25519 "))
        .expect("an ed25519 host key");
    let file: PathBuf = dir.join("host.pub");
    std::fs::write(&file, format!("{line}\n")).unwrap();
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(&file)
        .output()
        .expect("ssh-keygen");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    text.split_whitespace().nth(1).unwrap().to_owned()
}

/// Each stage returns what it learned and how long it took; the session
/// at the end runs commands. (New: the connection was one opaque call
/// with no stage to time or report.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_stage_reports_its_result_and_time() {
    let sshd = Sshd::start();
    let tmp = tempfile::tempdir().unwrap();
    let opts = options(&sshd, &sshd.known_hosts(), sshd.client_key());
    let start = Instant::now();

    let dialed = stages::dial(&opts).await.expect("dial");
    let dial_time = dialed.elapsed;
    let handshake = dialed
        .handshake(&opts, Arc::new(NoPrompt))
        .await
        .expect("handshake");
    let key = handshake.server_key.clone();
    let handshake_time = handshake.elapsed;
    let checked = handshake.check_host_key().await.expect("host key");
    let algorithms = checked.algorithms.clone();
    let host_key_time = checked.elapsed;
    let login = checked.authenticate().await.expect("authentication");
    let total = start.elapsed();

    assert_eq!(key.algorithm, "ssh-ed25519");
    assert_eq!(
        key.fingerprint,
        fingerprint_by_ssh_keygen(&sshd, tmp.path())
    );
    assert!(!key.certificate);
    assert_eq!(algorithms.host_key, "ssh-ed25519");
    assert!(
        warren_core::algorithms::DEFAULT_KEX.contains(&algorithms.kex.as_str()),
        "{algorithms:?}"
    );
    assert!(!algorithms.cipher.is_empty(), "{algorithms:?}");
    assert!(!algorithms.compression);
    for (stage, took) in [
        ("dial", dial_time),
        ("handshake", handshake_time),
        ("host key", host_key_time),
        ("authentication", login.elapsed),
    ] {
        assert!(took > Duration::ZERO, "{stage} took no time");
    }
    assert!(dial_time + handshake_time + host_key_time + login.elapsed <= total);
    eprintln!(
        "dial {dial_time:?}, handshake {handshake_time:?}, host key {host_key_time:?}, \
         authentication {:?}, total {total:?}",
        login.elapsed
    );

    let out = exec::capture(login.session.handle(), "echo staged", b"")
        .await
        .expect("a command over the session");
    assert_eq!(out.stdout, b"staged\n");
    login.session.close().await;
}

/// An unknown key: the handshake succeeds and names the key, the host key
/// stage refuses it, and no login is attempted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_host_key_fails_in_the_host_key_stage() {
    let sshd = Sshd::start();
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("known_hosts");
    std::fs::write(&empty, "").unwrap();
    let opts = options(&sshd, &empty, sshd.client_key());
    let dialed = stages::dial(&opts).await.expect("dial");
    let handshake = dialed
        .handshake(&opts, Arc::new(NoPrompt))
        .await
        .expect("handshake");
    assert_eq!(handshake.server_key.algorithm, "ssh-ed25519");
    let err = handshake
        .check_host_key()
        .await
        .err()
        .expect("an unknown key is refused");
    assert!(
        matches!(err, SessionError::HostKey(HostKeyError::Unknown { .. })),
        "{err:?}"
    );
    assert!(!err.is_transient());
    assert!(
        !sshd.log().contains("Accepted publickey"),
        "no login was attempted: {}",
        sshd.log()
    );
}

/// A key the server does not know: dial, handshake and host key pass, the
/// authentication stage fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_key_fails_in_the_authentication_stage() {
    let sshd = Sshd::start();
    let tmp = tempfile::tempdir().unwrap();
    let stranger = keygen(tmp.path(), "stranger", "ed25519", "");
    let opts = options(&sshd, &sshd.known_hosts(), &stranger);
    let dialed = stages::dial(&opts).await.expect("dial");
    let handshake = dialed
        .handshake(&opts, Arc::new(NoPrompt))
        .await
        .expect("handshake");
    let checked = handshake.check_host_key().await.expect("host key");
    let err = checked.authenticate().await.err().expect("refused");
    assert!(
        matches!(err, SessionError::Auth(AuthError::Denied { .. })),
        "{err:?}"
    );
}

/// Nothing listens: the dial stage fails, as a transient error.
#[tokio::test]
async fn refused_connection_fails_in_the_dial_stage() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let o = ConnectOptions::new("127.0.0.1", port, "me");
    let err = stages::dial(&o).await.err().expect("nothing listens");
    assert!(matches!(err, SessionError::Connect { .. }), "{err:?}");
    assert!(err.is_transient());
}
