//! The delay proxy adds its one-way delay in each direction, both as a
//! library fixture and as the `warren-delay-proxy` binary.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use warren_testkit::{DelayProxy, TcpEcho};

/// The fastest of a few 1-byte round trips through `addr` (an echo behind).
fn min_rtt(addr: SocketAddr) -> Duration {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    (0..5)
        .map(|_| {
            let start = Instant::now();
            s.write_all(b"?").unwrap();
            let mut b = [0u8; 1];
            s.read_exact(&mut b).unwrap();
            assert_eq!(&b, b"?");
            start.elapsed()
        })
        .min()
        .unwrap()
}

#[test]
fn round_trip_through_proxy_gains_two_one_way_delays() {
    let echo = TcpEcho::start("127.0.0.1:0");
    let one_way = Duration::from_millis(30);
    let proxy = DelayProxy::start("127.0.0.1:0", echo.addr(), one_way);
    let rtt = min_rtt(proxy.addr());
    assert!(rtt >= 2 * one_way, "rtt {rtt:?} below 2 x {one_way:?}");
    assert!(
        rtt < 2 * one_way + Duration::from_millis(200),
        "rtt {rtt:?} far above 2 x {one_way:?}"
    );
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn binary_prints_its_address_and_delays() {
    let echo = TcpEcho::start("127.0.0.1:0");
    let mut child = Killed(
        Command::new(env!("CARGO_BIN_EXE_warren-delay-proxy"))
            .args(["127.0.0.1:0", &echo.addr().to_string(), "20"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn warren-delay-proxy"),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr: SocketAddr = line
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{line:?}: {e}"));
    let rtt = min_rtt(addr);
    assert!(rtt >= Duration::from_millis(40), "rtt {rtt:?}");
}

#[test]
fn binary_rejects_bad_arguments() {
    let out = Command::new(env!("CARGO_BIN_EXE_warren-delay-proxy"))
        .args(["127.0.0.1:0", "127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage"));
}
