//! The limits that protect `warren serve`, each against a real client:
//! MaxAuthTries, a garbage-sending client dropped without harm to others,
//! LoginGraceTime, the cap on unauthenticated connections, the idle
//! timeout, and graceful shutdown on SIGTERM that lets a session finish.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]

mod common;
use common::serve::Serve;
use common::text;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::Duration;

/// Reads until the server closes the connection (bounded: 30 s).
fn read_until_closed(mut s: TcpStream) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut got = Vec::new();
    match s.read_to_end(&mut got) {
        Ok(_) => got,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => got,
        Err(e) => panic!("the server did not close the connection: {e}"),
    }
}

#[test]
fn max_auth_tries_is_enforced() {
    for (tries, should_log_in) in [("2", false), ("3", true)] {
        let serve = Serve::builder().arg("--max-auth-tries").arg(tries).start();
        let w1 = warren_testkit::keygen(serve.dir(), "w1", "ed25519", "");
        let w2 = warren_testkit::keygen(serve.dir(), "w2", "ed25519", "");
        let out = serve
            .ssh_with_key(&w1)
            .arg("-i")
            .arg(&w2)
            .arg("-i")
            .arg(serve.client_key())
            .args(["127.0.0.1", "echo in"])
            .output()
            .unwrap();
        if should_log_in {
            assert_eq!(
                text(&out.stdout),
                "in\n",
                "{}\n{}",
                text(&out.stderr),
                serve.log()
            );
        } else {
            assert_eq!(out.status.code(), Some(255), "{}", serve.log());
            assert!(
                serve.wait_log("too many authentication failures"),
                "{}",
                serve.log()
            );
            assert!(
                !serve.log().contains("accepted publickey"),
                "{}",
                serve.log()
            );
        }
    }
}

#[test]
fn a_client_sending_garbage_is_dropped_and_others_carry_on() {
    let serve = Serve::start();
    let mut session = serve
        .ssh()
        .args(["127.0.0.1", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = session.stdin.take().unwrap();
    let mut output = BufReader::new(session.stdout.take().unwrap());
    input.write_all(b"before\n").unwrap();
    let mut line = String::new();
    output.read_line(&mut line).unwrap();
    assert_eq!(line, "before\n");

    let mut garbage = TcpStream::connect(("127.0.0.1", serve.port())).unwrap();
    garbage
        .write_all(b"SSH-2.0-junk\r\n\x00\x00\x00\x10\x00garbage garbage garbage\r\n")
        .unwrap();
    let _ = garbage.write_all(&[0xff; 4096]);
    let got = read_until_closed(garbage);
    assert!(got.starts_with(b"SSH-2.0-warren"), "{}", text(&got));

    input.write_all(b"after\n").unwrap();
    line.clear();
    output.read_line(&mut line).unwrap();
    assert_eq!(line, "after\n", "{}", serve.log());
    drop(input);
    assert!(session.wait().unwrap().success());
}

#[test]
fn login_grace_time_closes_a_silent_connection() {
    let serve = Serve::builder().arg("--login-grace-time").arg("1").start();
    let s = TcpStream::connect(("127.0.0.1", serve.port())).unwrap();
    let got = read_until_closed(s);
    assert!(got.starts_with(b"SSH-2.0-warren"), "{}", text(&got));
    assert!(serve.wait_log("login grace time"), "{}", serve.log());
}

#[test]
fn unauthenticated_connections_are_capped() {
    let serve = Serve::builder().arg("--max-startups").arg("1").start();
    let mut idle = TcpStream::connect(("127.0.0.1", serve.port())).unwrap();
    let mut banner = [0u8; 8];
    idle.read_exact(&mut banner).unwrap();
    let out = serve.ssh().args(["127.0.0.1", "true"]).output().unwrap();
    assert_eq!(out.status.code(), Some(255), "{}", serve.log());
    assert!(
        serve.wait_log("too many unauthenticated connections"),
        "{}",
        serve.log()
    );
    drop(idle);
    // The slot frees when the idle connection ends.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let out = serve.ssh().args(["127.0.0.1", "echo in"]).output().unwrap();
        if text(&out.stdout) == "in\n" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", serve.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn idle_connections_are_dropped() {
    let serve = Serve::builder().arg("--idle-timeout").arg("1").start();
    let out = serve.ssh().args(["-N", "127.0.0.1"]).output().unwrap();
    assert_eq!(out.status.code(), Some(255), "{}", serve.log());
    assert!(serve.wait_log("connection closed"), "{}", serve.log());
}

#[test]
fn sigterm_lets_running_sessions_finish_then_exits() {
    let mut serve = Serve::start();
    let mut session = serve
        .ssh()
        .args(["127.0.0.1", "echo started; read x; echo finished"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = session.stdin.take().unwrap();
    let mut output = BufReader::new(session.stdout.take().unwrap());
    let mut line = String::new();
    output.read_line(&mut line).unwrap();
    assert_eq!(line, "started\n");

    serve.sigterm();
    assert!(serve.wait_log("shutting down"), "{}", serve.log());
    // New connections are no longer accepted...
    let refused = serve.ssh().args(["127.0.0.1", "true"]).output().unwrap();
    assert_eq!(refused.status.code(), Some(255));
    // ...while the running session finishes its work.
    input.write_all(b"go\n").unwrap();
    drop(input);
    line.clear();
    output.read_line(&mut line).unwrap();
    assert_eq!(line, "finished\n", "{}", serve.log());
    assert!(session.wait().unwrap().success());
    assert_eq!(
        serve.terminate(Duration::from_secs(20)),
        Some(0),
        "{}",
        serve.log()
    );
}
