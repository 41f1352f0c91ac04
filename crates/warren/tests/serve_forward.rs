//! OpenSSH's `ssh -L/-R/-D/-J` through `warren serve`, bytes verified, and
//! the forwarding rules: permitopen, permitlisten, restrict, and remote
//! binds beyond loopback only with --gateway-ports.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]

mod common;
use common::serve::Serve;
use common::{connect_when_up, free_port, pattern, text, warren};

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use warren_testkit::{HttpHello, TcpEcho, UnixEcho};

/// A background `ssh -N ...`, killed on drop.
struct Tunnel(Child);

impl Drop for Tunnel {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tunnel(mut cmd: Command, args: &[&str]) -> Tunnel {
    let child = cmd
        .args(["-N", "-o", "ExitOnForwardFailure=yes"])
        .args(args)
        .arg("127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ssh");
    Tunnel(child)
}

/// Sends `data` while reading the echo back (concurrently: the echo only
/// writes as fast as it is read), then compares.
fn assert_echo_tcp(mut s: TcpStream, data: &[u8]) {
    let mut reader = s.try_clone().unwrap();
    let expected = data.len();
    let read = std::thread::spawn(move || {
        let mut got = Vec::with_capacity(expected);
        reader.read_to_end(&mut got).unwrap();
        got
    });
    s.write_all(data).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let got = read.join().unwrap();
    assert_eq!(got.len(), data.len(), "echoed length");
    assert!(got == data, "echoed bytes differ");
}

/// A connection the far side refuses ends without echoing anything.
fn assert_refused_tcp(mut s: TcpStream) {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(b"hello");
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert!(buf.is_empty(), "a refused forward echoed {buf:?}");
}

#[test]
fn local_forward_moves_bytes_to_a_tcp_service() {
    let serve = Serve::start();
    let echo = TcpEcho::start("127.0.0.1:0");
    let port = free_port();
    let _t = tunnel(serve.ssh(), &["-L", &format!("{port}:{}", echo.addr())]);
    let s = connect_when_up(&format!("127.0.0.1:{port}"));
    assert_echo_tcp(s, &pattern(4 * 1024 * 1024, 1));
}

#[test]
fn remote_forward_moves_bytes_back_to_the_client_side() {
    let serve = Serve::start();
    let echo = TcpEcho::start("127.0.0.1:0");
    let port = free_port();
    let _t = tunnel(serve.ssh(), &["-R", &format!("{port}:{}", echo.addr())]);
    let s = connect_when_up(&format!("127.0.0.1:{port}"));
    assert_echo_tcp(s, &pattern(2 * 1024 * 1024, 2));
    assert!(serve.wait_log("remote forward"), "{}", serve.log());
}

#[test]
fn remote_forward_on_port_0_allocates_and_reports_the_port() {
    let serve = Serve::start();
    let echo = TcpEcho::start("127.0.0.1:0");
    let mut cmd = serve.ssh();
    // LogLevel INFO for ssh's "Allocated port" line (first -o wins).
    let mut args: Vec<String> = cmd
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let i = args.iter().position(|a| a == "LogLevel=ERROR").unwrap();
    args[i] = "LogLevel=INFO".into();
    cmd = Command::new("ssh");
    cmd.args(&args);
    let mut t = tunnel(cmd, &["-R", &format!("0:{}", echo.addr())]);
    let mut stderr = t.0.stderr.take().unwrap();
    let mut line = String::new();
    let mut byte = [0u8; 1];
    while !line.contains("Allocated port") || !line.ends_with('\n') {
        assert_eq!(
            stderr.read(&mut byte).unwrap(),
            1,
            "ssh said: {line}\n{}",
            serve.log()
        );
        line.push(byte[0] as char);
    }
    let port: u16 = line
        .split("Allocated port ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert_ne!(port, 0);
    assert_echo_tcp(
        connect_when_up(&format!("127.0.0.1:{port}")),
        &pattern(65536, 3),
    );
}

#[test]
fn dynamic_forward_serves_curl_through_socks() {
    let serve = Serve::start();
    let http = HttpHello::start("127.0.0.1:0");
    let port = free_port();
    let _t = tunnel(serve.ssh(), &["-D", &port.to_string()]);
    drop(connect_when_up(&format!("127.0.0.1:{port}")));
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "--socks5-hostname"])
        .arg(format!("127.0.0.1:{port}"))
        .arg(format!("http://{}/", http.addr()))
        .output()
        .expect("curl is required (scripts/test installs it)");
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stderr),
        serve.log()
    );
    assert!(!out.stdout.is_empty(), "empty body");
    assert!(http.requests() >= 1);
}

/// An ssh_config naming both servers, so ProxyJump's own ssh finds keys
/// and known hosts too.
fn jump_config(bastion: &Serve, target: &Serve) -> std::path::PathBuf {
    let mut cfg = String::new();
    for (name, s) in [("bastion", bastion), ("target", target)] {
        cfg.push_str(&format!(
            "Host {name}\n  HostName 127.0.0.1\n  Port {}\n  IdentityFile {}\n  IdentitiesOnly yes\n  IdentityAgent none\n  BatchMode yes\n  StrictHostKeyChecking yes\n  UserKnownHostsFile {}\n  LogLevel ERROR\n",
            s.port(),
            s.client_key().display(),
            s.dir().join("known_hosts").display(),
        ));
    }
    let path = bastion.dir().join("jump_config");
    std::fs::write(&path, cfg).unwrap();
    path
}

#[test]
fn jump_through_warren_serve_as_the_bastion() {
    let bastion = Serve::start();
    let target = Serve::start();
    let cfg = jump_config(&bastion, &target);
    let out = Command::new("ssh")
        .arg("-F")
        .arg(&cfg)
        .args([
            "-J",
            "bastion",
            "target",
            "echo through; echo $SSH_CONNECTION",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}\n{}",
        text(&out.stderr),
        bastion.log(),
        target.log()
    );
    assert!(
        text(&out.stdout).starts_with("through\n"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        bastion.log().contains("accepted publickey"),
        "{}",
        bastion.log()
    );
    assert!(
        target.log().contains("accepted publickey"),
        "{}",
        target.log()
    );
}

#[test]
fn unix_socket_forwards_both_ways() {
    let serve = Serve::start();
    let dir = tempfile::tempdir().unwrap();
    let uecho = UnixEcho::start(dir.path().join("echo.sock"));
    let port = free_port();
    // -L: local TCP port to a unix socket on the server.
    let _l = tunnel(
        serve.ssh(),
        &["-L", &format!("{port}:{}", uecho.path().display())],
    );
    assert_echo_tcp(
        connect_when_up(&format!("127.0.0.1:{port}")),
        &pattern(300_000, 4),
    );
    // -R: a unix socket on the server to a local TCP service.
    let echo = TcpEcho::start("127.0.0.1:0");
    let remote_sock = dir.path().join("remote.sock");
    let _r = tunnel(
        serve.ssh(),
        &["-R", &format!("{}:{}", remote_sock.display(), echo.addr())],
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut s = loop {
        match UnixStream::connect(&remote_sock) {
            Ok(s) => break s,
            Err(e) if Instant::now() > deadline => panic!("{e}\n{}", serve.log()),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    let data = pattern(200_000, 5);
    let mut reader = s.try_clone().unwrap();
    let read = std::thread::spawn(move || {
        let mut got = Vec::new();
        reader.read_to_end(&mut got).unwrap();
        got
    });
    s.write_all(&data).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    assert!(read.join().unwrap() == data, "unix -R bytes differ");
}

#[test]
fn permitopen_allows_only_the_listed_target() {
    let allowed = TcpEcho::start("127.0.0.1:0");
    let other = TcpEcho::start("127.0.0.1:0");
    let serve = Serve::builder()
        .authorized_keys(&format!(
            "permitopen=\"127.0.0.1:{}\" KEY\n",
            allowed.addr().port()
        ))
        .start();
    let (p1, p2) = (free_port(), free_port());
    let _t = tunnel(
        serve.ssh(),
        &[
            "-L",
            &format!("{p1}:{}", allowed.addr()),
            "-L",
            &format!("{p2}:{}", other.addr()),
        ],
    );
    assert_echo_tcp(connect_when_up(&format!("127.0.0.1:{p1}")), b"allowed");
    assert_refused_tcp(connect_when_up(&format!("127.0.0.1:{p2}")));
    assert!(
        serve.wait_log("not in the key's permitopen list"),
        "{}",
        serve.log()
    );
}

#[test]
fn permitlisten_allows_only_the_listed_port() {
    let echo = TcpEcho::start("127.0.0.1:0");
    let (ok, refused) = (free_port(), free_port());
    let serve = Serve::builder()
        .authorized_keys(&format!("permitlisten=\"localhost:{ok}\" KEY\n"))
        .start();
    let _t = tunnel(serve.ssh(), &["-R", &format!("{ok}:{}", echo.addr())]);
    assert_echo_tcp(connect_when_up(&format!("127.0.0.1:{ok}")), b"listed");
    let out = serve
        .ssh()
        .args(["-N", "-o", "ExitOnForwardFailure=yes", "-R"])
        .arg(format!("{refused}:{}", echo.addr()))
        .arg("127.0.0.1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(255), "{}", text(&out.stderr));
    assert!(
        serve.wait_log("not in the key's permitlisten list"),
        "{}",
        serve.log()
    );
    assert!(
        TcpStream::connect(("127.0.0.1", refused)).is_err(),
        "nothing listens there"
    );
}

#[test]
fn restrict_forbids_forwarding() {
    let echo = TcpEcho::start("127.0.0.1:0");
    let serve = Serve::builder().authorized_keys("restrict KEY\n").start();
    let port = free_port();
    let _t = tunnel(serve.ssh(), &["-L", &format!("{port}:{}", echo.addr())]);
    assert_refused_tcp(connect_when_up(&format!("127.0.0.1:{port}")));
    assert!(serve.wait_log("forbid port forwarding"), "{}", serve.log());
}

#[test]
fn remote_forward_beyond_loopback_needs_gateway_ports() {
    let echo = TcpEcho::start("127.0.0.1:0");
    let serve = Serve::start();
    let port = free_port();
    let out = serve
        .ssh()
        .args(["-N", "-o", "ExitOnForwardFailure=yes", "-R"])
        .arg(format!("0.0.0.0:{port}:{}", echo.addr()))
        .arg("127.0.0.1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(255), "{}", text(&out.stderr));
    assert!(serve.wait_log("needs --gateway-ports"), "{}", serve.log());
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing listens there"
    );

    let serve = Serve::builder().arg("--gateway-ports").start();
    let _t = tunnel(
        serve.ssh(),
        &["-R", &format!("0.0.0.0:{port}:{}", echo.addr())],
    );
    assert_echo_tcp(connect_when_up(&format!("127.0.0.1:{port}")), b"gateway");
}

/// Busy threads competing with the processes under test for the CPUs, so
/// that their tasks get scheduled late and in odd orders (the way a loaded
/// machine does); stopped on drop, and after `limit` in any case.
struct CpuPressure {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl CpuPressure {
    fn start(threads: usize, limit: Duration) -> CpuPressure {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..threads)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let until = Instant::now() + limit;
                    while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                        for _ in 0..10_000 {
                            std::hint::spin_loop();
                        }
                    }
                })
            })
            .collect();
        CpuPressure { stop, threads }
    }
}

impl Drop for CpuPressure {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// warren on both ends and both directions full at once through a -L
/// echo, with two busy threads beside it: russh's loop wrote all its
/// output before reading again, and the server's loop waited for room in
/// a channel, so the two could freeze each other for good (it did under
/// CPU load: "the echo stalled after 53607344 of 100663296 bytes").
#[test]
fn warren_to_warren_echo_both_ways_at_once_does_not_freeze() {
    let _pressure = CpuPressure::start(2, Duration::from_secs(120));
    let serve = Serve::start();
    let echo = TcpEcho::start("127.0.0.1:0");
    let port = free_port();
    let mut cmd = warren();
    cmd.arg("ssh")
        .args(serve.client_options(&serve.client_key()))
        .args(["-p", &serve.port().to_string()])
        .stdin(Stdio::null());
    let spec = format!("{port}:{}", echo.addr());
    let _t = tunnel(cmd, &["-L", &spec]);
    let mut s = connect_when_up(&format!("127.0.0.1:{port}"));
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let data: Vec<u8> = (0..96 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    let mut w = s.try_clone().unwrap();
    let input = data.clone();
    let writer = std::thread::spawn(move || {
        w.write_all(&input).unwrap();
        w.shutdown(Shutdown::Write).unwrap();
    });
    let mut got = Vec::with_capacity(data.len());
    let read = s.read_to_end(&mut got);
    assert!(
        read.is_ok(),
        "the echo stalled after {} of {} bytes: {read:?}",
        got.len(),
        data.len()
    );
    writer.join().unwrap();
    assert_eq!(got.len(), data.len());
    assert!(got == data, "bytes differ");
}
