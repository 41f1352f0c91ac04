//! The echo and HTTP peers answer, serve many connections at once, and stop
//! on drop.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::Duration;

use warren_testkit::{HttpHello, TcpEcho, UnixEcho};

fn round_trip<S: Read + Write>(s: &mut S, shutdown: impl FnOnce(&S), msg: &[u8]) -> Vec<u8> {
    s.write_all(msg).unwrap();
    shutdown(s);
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    got
}

#[test]
fn tcp_echo_round_trips_many_connections_at_once() {
    let echo = TcpEcho::start("127.0.0.1:0");
    let addr = echo.addr();
    let clients: Vec<_> = (0..32)
        .map(|i| {
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let msg = format!("hello {i}\n").repeat(1000);
                let got = round_trip(
                    &mut s,
                    |s| s.shutdown(Shutdown::Write).unwrap(),
                    msg.as_bytes(),
                );
                assert_eq!(got, msg.as_bytes(), "connection {i}");
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
}

#[test]
fn tcp_echo_stops_on_drop() {
    let echo = TcpEcho::start("127.0.0.1:0");
    let addr = echo.addr();
    let mut open = TcpStream::connect(addr).unwrap();
    open.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    open.write_all(b"x").unwrap();
    let mut b = [0u8; 1];
    open.read_exact(&mut b).unwrap();
    drop(echo);
    // The open connection was shut down, and nothing listens any more.
    assert_eq!(open.read(&mut b).unwrap_or(0), 0);
    assert!(
        TcpStream::connect(addr).is_err(),
        "still listening after drop"
    );
}

#[test]
fn unix_echo_round_trips_and_removes_its_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("echo.sock");
    let echo = UnixEcho::start(&path);
    assert_eq!(echo.path(), path);
    let mut s = UnixStream::connect(&path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let got = round_trip(
        &mut s,
        |s| s.shutdown(Shutdown::Write).unwrap(),
        b"over unix\n",
    );
    assert_eq!(got, b"over unix\n");
    drop(echo);
    assert!(!path.exists(), "socket file left behind");
}

#[test]
fn http_hello_answers_curl() {
    let http = HttpHello::start("127.0.0.1:0");
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .arg(format!("http://{}/anything", http.addr()))
        .output()
        .expect("run curl");
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), HttpHello::BODY);
    // Counted once the response is written and the client has closed.
    for _ in 0..100 {
        if http.requests() == 1 {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("requests() = {}, want 1", http.requests());
}
