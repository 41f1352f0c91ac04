//! -L, -R, -D, -W, ProxyJump and ProxyCommand against real sshd instances,
//! with real clients (TCP and unix echo, curl through SOCKS), bytes verified.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]

mod common;
use common::{connect_when_up, free_port, pattern, text, warren};

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use warren_testkit::{HttpHello, Sshd, TcpEcho, UnixEcho};

/// A background `warren ssh -N ...`, killed on drop.
struct Tunnel(Child);

impl Drop for Tunnel {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tunnel(sshd: &Sshd, args: &[&str]) -> Tunnel {
    let child = warren()
        .args(["ssh", "-N", "-F"])
        .arg(sshd.client_config())
        .args(args)
        .arg("test")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn warren");
    Tunnel(child)
}

/// Sends `data`, half-closes, reads everything back.
fn echo_through(mut s: impl Read + Write + Shutdown, data: &[u8]) -> Vec<u8> {
    s.write_all(data).unwrap();
    s.shutdown_write();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    got
}

trait Shutdown {
    fn shutdown_write(&mut self);
}
impl Shutdown for TcpStream {
    fn shutdown_write(&mut self) {
        self.shutdown(std::net::Shutdown::Write).unwrap();
    }
}
impl Shutdown for std::os::unix::net::UnixStream {
    fn shutdown_write(&mut self) {
        self.shutdown(std::net::Shutdown::Write).unwrap();
    }
}

#[test]
fn local_forward_tcp_echo_bytes_verified() {
    let sshd = Sshd::start();
    let echo = TcpEcho::start("127.0.0.1:0");
    let port = free_port();
    let _t = tunnel(
        &sshd,
        &["-L", &format!("{port}:127.0.0.1:{}", echo.addr().port())],
    );
    let data = pattern(3 << 20, 1);
    let got = echo_through(connect_when_up(&format!("127.0.0.1:{port}")), &data);
    assert!(
        got == data,
        "echo through -L differs ({} of {} bytes)",
        got.len(),
        data.len()
    );
}

#[test]
fn local_forward_from_unix_socket_to_unix_socket() {
    let sshd = Sshd::start();
    let dir = tempfile::tempdir().unwrap();
    let echo = UnixEcho::start(dir.path().join("echo.sock"));
    let local = dir.path().join("local.sock");
    let spec = format!("{}:{}", local.display(), echo.path().display());
    let _t = tunnel(&sshd, &["-L", &spec]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let s = loop {
        if let Ok(s) = std::os::unix::net::UnixStream::connect(&local) {
            break s;
        }
        assert!(Instant::now() < deadline, "unix listener never came up");
        std::thread::sleep(Duration::from_millis(50));
    };
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&local).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "StreamLocalBindMask 0177 gives 0600");
    let data = pattern(200_000, 2);
    assert!(echo_through(s, &data) == data);
}

#[test]
fn remote_forward_tcp_and_allocated_port_is_printed() {
    let sshd = Sshd::start();
    let echo = TcpEcho::start("127.0.0.1:0");
    let mut t = tunnel(
        &sshd,
        &["-R", &format!("0:127.0.0.1:{}", echo.addr().port())],
    );
    // ssh's exact line, which scripts parse.
    let mut stderr = BufReader::new(t.0.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let port: u16 = line
        .strip_prefix("Allocated port ")
        .and_then(|r| r.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"));
    assert!(
        line.trim_end().ends_with(&format!(
            "for remote forward to 127.0.0.1:{}",
            echo.addr().port()
        )),
        "{line}"
    );
    let data = pattern(1 << 20, 3);
    let got = echo_through(connect_when_up(&format!("127.0.0.1:{port}")), &data);
    assert!(got == data);
}

#[test]
fn dynamic_forward_socks5_and_socks4a_with_curl() {
    let sshd = Sshd::start();
    let http = HttpHello::start("127.0.0.1:0");
    let port = free_port();
    let _t = tunnel(&sshd, &["-D", &port.to_string()]);
    drop(connect_when_up(&format!("127.0.0.1:{port}")));
    for flag in ["--socks5-hostname", "--socks4a", "--socks5", "--socks4"] {
        // "localhost" is resolved by the server for the -hostname/4a forms.
        let out = Command::new("curl")
            .args([
                "-sS",
                "--max-time",
                "10",
                flag,
                &format!("127.0.0.1:{port}"),
            ])
            .arg(format!("http://localhost:{}/", http.addr().port()))
            .output()
            .expect("curl is required (apt-get install curl)");
        assert!(out.status.success(), "curl {flag}: {}", text(&out.stderr));
        assert_eq!(
            text(&out.stdout),
            HttpHello::BODY,
            "curl {flag}: body through the tunnel"
        );
    }
    // The server counts a request after answering it: give the last one a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    while http.requests() < 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(http.requests(), 4, "every curl went through the tunnel");
}

// A SOCKS client's host name went into the "SOCKS connect to ... failed"
// warning as it was sent, so a newline in it forged a "warren: ..." line
// on stderr.
#[test]
fn a_socks_host_name_cannot_forge_a_line_on_stderr() {
    let sshd = Sshd::start();
    let port = free_port();
    let mut t = tunnel(&sshd, &["-D", &port.to_string()]);
    let mut s = connect_when_up(&format!("127.0.0.1:{port}"));
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(&[5, 1, 0]).unwrap();
    let mut chosen = [0u8; 2];
    s.read_exact(&mut chosen).unwrap();
    assert_eq!(chosen, [5, 0]);
    let name = b"nohost.invalid\nwarren: forged\x1b[2J";
    let mut request = vec![5, 1, 0, 3, name.len() as u8];
    request.extend_from_slice(name);
    request.extend_from_slice(&80u16.to_be_bytes());
    s.write_all(&request).unwrap();
    // The server cannot resolve the name: the SOCKS reply is a failure.
    let mut reply = [0u8; 2];
    s.read_exact(&mut reply).unwrap();
    assert_eq!(reply[0], 5);
    assert_ne!(reply[1], 0, "connect must fail");
    drop(s);
    let mut stderr = t.0.stderr.take().unwrap();
    let _ = t.0.kill();
    let _ = t.0.wait();
    let mut err = String::new();
    stderr.read_to_string(&mut err).unwrap();
    assert!(
        err.lines().all(|l| !l.starts_with("warren: forged")),
        "{err}"
    );
    assert!(!err.contains('\x1b'), "{err}");
    assert!(
        err.contains("nohost.invalid\\nwarren: forged\\e[2J"),
        "the name is shown escaped: {err}"
    );
}

#[test]
fn local_port_in_use_names_the_port_and_exit_on_forward_failure_exits() {
    let sshd = Sshd::start();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = warren()
        .args(["ssh", "-N", "-o", "ExitOnForwardFailure=yes", "-F"])
        .arg(sshd.client_config())
        .args(["-L", &format!("127.0.0.1:{port}:127.0.0.1:1"), "test"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(255));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) && err.contains("in use"),
        "{err}"
    );
    assert!(
        err.contains(&format!("pid {}", std::process::id())),
        "names the holder: {err}"
    );
}

#[test]
fn refused_target_closes_the_local_connection_promptly() {
    let sshd = Sshd::start();
    let closed_port = free_port();
    let port = free_port();
    let _t = tunnel(&sshd, &["-L", &format!("{port}:127.0.0.1:{closed_port}")]);
    let mut s = connect_when_up(&format!("127.0.0.1:{port}"));
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 16];
    let n = s.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "expected EOF");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "closed at once, not on a timeout"
    );
}

#[test]
fn remote_forward_the_server_refuses_fails_under_exit_on_forward_failure() {
    let sshd = Sshd::builder().config("AllowTcpForwarding local").start();
    let out = warren()
        .args(["ssh", "-N", "-o", "ExitOnForwardFailure=yes", "-F"])
        .arg(sshd.client_config())
        .args(["-R", "0:127.0.0.1:1", "test"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(255));
    assert!(
        text(&out.stderr).contains("remote port forwarding failed"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn jump_through_one_sshd_to_another() {
    let bastion = Sshd::start();
    let target = Sshd::start();
    // One config naming both, keys and known_hosts of both.
    let dir = tempfile::tempdir().unwrap();
    let known = dir.path().join("known_hosts");
    let mut k = std::fs::read_to_string(bastion.known_hosts()).unwrap();
    k.push_str(&std::fs::read_to_string(target.known_hosts()).unwrap());
    std::fs::write(&known, k).unwrap();
    target.authorize(&std::fs::read_to_string(bastion.client_key().with_extension("pub")).unwrap());
    let cfg = dir.path().join("config");
    let user = warren_testkit::local_user();
    std::fs::write(
        &cfg,
        format!(
            "Host bastion\n  HostName 127.0.0.1\n  Port {}\nHost target\n  HostName 127.0.0.1\n  Port {}\n  ProxyJump bastion\n\
             Host *\n  User {user}\n  IdentityFile {}\n  IdentitiesOnly yes\n  IdentityAgent none\n  BatchMode yes\n  \
             UserKnownHostsFile {}\n  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n",
            bastion.port(),
            target.port(),
            bastion.client_key().display(),
            known.display()
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        warren()
            .arg("ssh")
            .arg("-F")
            .arg(&cfg)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    // ProxyJump from ssh_config.
    let out = run(&["target", "echo $SSH_CONNECTION"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).ends_with(&format!(" {}\n", target.port())),
        "{}",
        text(&out.stdout)
    );
    // -J on the command line, and a chain bastion -> bastion -> target.
    let out = run(&[
        "-J",
        "bastion,bastion",
        "-o",
        "ProxyJump=none",
        "target",
        "echo chained",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "chained\n");
    assert!(
        bastion.log().matches("Accepted publickey").count() >= 3,
        "{}",
        bastion.log()
    );
    // ProxyCommand with warren -W as the proxy, and OpenSSH using warren -W.
    let proxy = format!(
        "ProxyCommand={} ssh -F {} -W %h:%p bastion",
        env!("CARGO_BIN_EXE_warren"),
        cfg.display()
    );
    let out = run(&["-o", &proxy, "target", "echo via-proxycommand"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "via-proxycommand\n");
    let out = Command::new("ssh")
        .arg("-F")
        .arg(&cfg)
        .args(["-o", &proxy, "target", "echo openssh-through-warren"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "OpenSSH with warren -W as ProxyCommand: {}",
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout), "openssh-through-warren\n");
}

#[test]
fn connection_dropped_mid_transfer_ends_the_tunnel_with_failure() {
    let sshd = Sshd::start();
    let echo = TcpEcho::start("127.0.0.1:0");
    let port = free_port();
    let mut t = tunnel(
        &sshd,
        &["-L", &format!("{port}:127.0.0.1:{}", echo.addr().port())],
    );
    let mut s = connect_when_up(&format!("127.0.0.1:{port}"));
    s.write_all(b"hello").unwrap();
    let mut buf = [0u8; 5];
    s.read_exact(&mut buf).unwrap();
    // Kill this sshd's session processes, keeping its listener.
    assert!(sshd.kill_sessions() > 0, "no session process found");
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(st) = t.0.try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "warren kept running after its connection died"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(255));
    assert!(
        TcpStream::connect(format!("127.0.0.1:{port}")).is_err(),
        "the listener must close"
    );
}

#[test]
fn five_hundred_concurrent_connections_through_one_local_forward() {
    let sshd = Sshd::start();
    let echo = TcpEcho::start("127.0.0.1:0");
    let port = free_port();
    let _t = tunnel(
        &sshd,
        &["-L", &format!("{port}:127.0.0.1:{}", echo.addr().port())],
    );
    drop(connect_when_up(&format!("127.0.0.1:{port}")));
    // Open all 500 first, so they really are concurrent, then echo 64 KiB each.
    let conns: Vec<TcpStream> = (0..500)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    let workers: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, mut s)| {
            std::thread::spawn(move || {
                s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                let data = pattern(64 * 1024, i as u8);
                s.write_all(&data).unwrap();
                s.shutdown(std::net::Shutdown::Write).unwrap();
                let mut got = Vec::with_capacity(data.len());
                s.read_to_end(&mut got).unwrap();
                (got == data, got.len())
            })
        })
        .collect();
    let results: Vec<(bool, usize)> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    let bad: Vec<usize> = results
        .iter()
        .filter(|(ok, _)| !ok)
        .map(|(_, n)| *n)
        .collect();
    let ok = results.len() - bad.len();
    if !bad.is_empty() {
        let log = sshd.log();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        eprintln!(
            "byte counts of the failed connections: {bad:?}\nsshd log tail:\n{}",
            tail.join("\n")
        );
    }
    assert_eq!(ok, 500, "every connection must echo its 64 KiB intact");
}

#[test]
fn a_stalled_reader_does_not_stall_the_other_connections() {
    let sshd = Sshd::start();
    let echo = TcpEcho::start("127.0.0.1:0");
    let port = free_port();
    let _t = tunnel(
        &sshd,
        &["-L", &format!("{port}:127.0.0.1:{}", echo.addr().port())],
    );
    // A sends 48 MiB and does not read its echo for now: more than the
    // socket buffers and the connection's queue in warren hold, so its
    // channel's window must close without stopping the session.
    let stalled = connect_when_up(&format!("127.0.0.1:{port}"));
    let stalled_data = pattern(48 << 20, 7);
    let mut writer = stalled.try_clone().unwrap();
    let sent = stalled_data.clone();
    let pusher = std::thread::spawn(move || writer.write_all(&sent).unwrap());
    std::thread::sleep(Duration::from_secs(1));
    // B moves 32 MiB at full speed meanwhile.
    let fast = TcpStream::connect(("127.0.0.1", port)).unwrap();
    fast.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    fast.set_write_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let data = pattern(32 << 20, 9);
    let mut reader = fast.try_clone().unwrap();
    let reading = std::thread::spawn(move || {
        let mut got = Vec::new();
        reader.read_to_end(&mut got).map(|_| got)
    });
    let mut w = fast;
    w.write_all(&data)
        .expect("the fast connection must not stall behind the stalled one");
    w.shutdown(std::net::Shutdown::Write).unwrap();
    let got = reading
        .join()
        .unwrap()
        .expect("the fast connection must not stall behind the stalled one");
    assert!(got == data, "fast connection bytes differ");
    // Now A reads: everything it sent comes back intact.
    stalled
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut reader = stalled.try_clone().unwrap();
    let reading = std::thread::spawn(move || {
        let mut back = Vec::new();
        reader.read_to_end(&mut back).map(|_| back)
    });
    pusher.join().unwrap();
    stalled.shutdown(std::net::Shutdown::Write).unwrap();
    let back = reading.join().unwrap().unwrap();
    assert!(
        back == stalled_data,
        "stalled connection lost bytes ({} of {})",
        back.len(),
        stalled_data.len()
    );
}

/// Kills every process whose command line contains `marker`.
fn kill_matching(marker: &str) {
    let _ = Command::new("pkill").args(["-f", "--", marker]).status();
}

/// Runs `warren ssh -f ...` to completion of its foreground part. The
/// background client keeps stderr, so it goes to a file, not a pipe that
/// would stay open as long as the client lives.
fn warren_f(sshd: &Sshd, args: &[&str]) -> (std::process::ExitStatus, String) {
    let log = sshd.dir().join(format!("bg-{}.log", free_port()));
    let status = warren()
        .args(["ssh", "-F"])
        .arg(sshd.client_config())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .status()
        .unwrap();
    (status, std::fs::read_to_string(&log).unwrap_or_default())
}

#[test]
fn background_after_forwards_are_up_with_dash_f() {
    let sshd = Sshd::start();
    let echo = TcpEcho::start("127.0.0.1:0");
    let port = free_port();
    let spec = format!("{port}:127.0.0.1:{}", echo.addr().port());
    let (status, err) = warren_f(
        &sshd,
        &["-fN", "-o", "ExitOnForwardFailure=yes", "-L", &spec, "test"],
    );
    assert!(status.success(), "{err}");
    // The forward is up the moment -f returns: no retry needed.
    let s = TcpStream::connect(("127.0.0.1", port));
    let data = pattern(100_000, 5);
    let echoed = s.map(|s| echo_through(s, &data));
    kill_matching(&format!("-L {spec}"));
    assert!(echoed.expect("listening when -f returned") == data);

    // A forward that cannot be set up makes -f fail instead of backgrounding.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = format!("{}:127.0.0.1:1", taken.local_addr().unwrap().port());
    let (status, err) = warren_f(
        &sshd,
        &["-fN", "-o", "ExitOnForwardFailure=yes", "-L", &busy, "test"],
    );
    kill_matching(&format!("-L {busy}"));
    assert_eq!(status.code(), Some(255), "{err}");
    assert!(err.contains("in use"), "{err}");
}

#[test]
fn background_command_with_dash_f() {
    let sshd = Sshd::start();
    let marker = sshd.dir().join("ran-in-background");
    let command = format!("sleep 1; echo done > {}", marker.display());
    let (status, err) = warren_f(&sshd, &["-f", "test", &command]);
    assert!(status.success(), "{err}");
    assert!(!marker.exists(), "-f returns before the command finishes");
    let deadline = Instant::now() + Duration::from_secs(15);
    while !marker.exists() {
        assert!(
            Instant::now() < deadline,
            "the background command never ran"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn tilde_hash_lists_the_forwards_and_their_connections() {
    let sshd = Sshd::start();
    let echo = TcpEcho::start("127.0.0.1:0");
    let port = free_port();
    let spec = format!("{port}:127.0.0.1:{}", echo.addr().port());
    let mut child = warren()
        .args(["ssh", "-tt", "-F"])
        .arg(sshd.client_config())
        .args(["-L", &spec, "test", "sleep 5"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut open = connect_when_up(&format!("127.0.0.1:{port}"));
    open.write_all(b"ping").unwrap();
    let mut back = [0u8; 4];
    open.read_exact(&mut back).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // The pump counts a chunk once its write returns, which can be a moment
    // after the client already read it.
    std::thread::sleep(Duration::from_millis(300));
    stdin.write_all(b"\n~#").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    stdin.write_all(b"\n~.").unwrap();
    let out = child.wait_with_output().unwrap();
    let err = text(&out.stderr);
    assert!(err.contains("The following connections are open"), "{err}");
    assert!(
        err.contains(&format!(
            "-L {spec}: 1 open, 1 total, 4 bytes out, 4 bytes in"
        )),
        "{err}"
    );
}

#[test]
fn remote_dynamic_forward_serves_socks_on_the_servers_port() {
    let sshd = Sshd::start();
    let http = HttpHello::start("127.0.0.1:0");
    let port = free_port();
    let _t = tunnel(&sshd, &["-R", &port.to_string()]);
    drop(connect_when_up(&format!("127.0.0.1:{port}")));
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            "--socks5-hostname",
            &format!("127.0.0.1:{port}"),
        ])
        .arg(format!("http://localhost:{}/", http.addr().port()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "curl through -R {port}: {}",
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout), HttpHello::BODY);
}

#[test]
fn remote_forward_from_a_server_unix_socket_to_a_local_unix_socket() {
    let sshd = Sshd::start();
    let dir = tempfile::tempdir().unwrap();
    let echo = UnixEcho::start(dir.path().join("local-echo.sock"));
    let remote = dir.path().join("remote.sock");
    let spec = format!("{}:{}", remote.display(), echo.path().display());
    let _t = tunnel(&sshd, &["-R", &spec]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let s = loop {
        if let Ok(s) = std::os::unix::net::UnixStream::connect(&remote) {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the server's unix listener never came up"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let data = pattern(300_000, 4);
    assert!(echo_through(s, &data) == data);
}

/// Channel windows start at OpenSSH's 2 MiB and grow on a path whose
/// bandwidth-delay product needs more: over a 50 ms round trip (the delay
/// proxy) a download makes the window grow, and -vv says so.
#[test]
fn the_channel_window_grows_over_a_long_link() {
    let sshd = Sshd::start();
    let wan =
        warren_testkit::DelayProxy::start("127.0.0.1:0", sshd.addr(), Duration::from_millis(25));
    let size = 32usize << 20;
    let out = warren()
        .args(["ssh", "-vv", "-F"])
        .arg(sshd.client_config())
        .args(["-p", &wan.addr().port().to_string()])
        .arg("-o")
        .arg(format!("HostKeyAlias={}", sshd.known_hosts_pattern()))
        .args(["test", &format!("head -c {size} /dev/zero")])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let log = text(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert_eq!(out.stdout.len(), size);
    assert!(
        log.contains("window used up within two round trips"),
        "the window never grew over a 50 ms round trip:\n{log}"
    );
}
