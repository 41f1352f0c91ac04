//! `warren tunnel` against real sshd: faults injected from outside (killed
//! sessions, sshd stopped and restarted on its port, frozen sessions, a
//! cut link in a network namespace, a changed host key) while the tunnel's
//! local listener keeps accepting; status, down, background and install.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]

mod common;
use common::{free_port, pattern, text, warren};

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;
use warren_core::tunnel::{State, TunnelStatus};
use warren_testkit::{Sshd, TcpEcho, Topology, faults};

/// A `warren tunnel up` in the foreground, with its own runtime dir;
/// killed on drop.
struct Up {
    child: Child,
    name: String,
    dir: TempDir,
}

impl Up {
    fn start(config: &Path, name: &str, args: &[&str], dest: &str) -> Up {
        let dir = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(dir.path().join("stderr")).unwrap();
        let child = warren()
            .env("XDG_RUNTIME_DIR", dir.path())
            .args(["tunnel", "up", "--name", name, "-F"])
            .arg(config)
            .args(args)
            .arg(dest)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn warren tunnel up");
        Up {
            child,
            name: name.to_owned(),
            dir,
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `warren tunnel status --json NAME`, `None` while it does not answer.
    fn status(&self) -> Option<TunnelStatus> {
        let out = warren()
            .env("XDG_RUNTIME_DIR", self.dir.path())
            .args(["tunnel", "status", "--json", &self.name])
            .output()
            .unwrap();
        if !out.status.success() {
            return None;
        }
        let mut all: Vec<TunnelStatus> = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("status --json: {e}: {}", text(&out.stdout)));
        all.pop()
    }

    /// Waits until the status satisfies `ok`, or fails after `within`.
    fn wait_for(
        &mut self,
        what: &str,
        within: Duration,
        ok: impl Fn(&TunnelStatus) -> bool,
    ) -> TunnelStatus {
        let deadline = Instant::now() + within;
        let mut last = None;
        loop {
            if let Ok(Some(exit)) = self.child.try_wait() {
                panic!(
                    "the tunnel exited ({exit}) waiting for {what}; stderr:\n{}",
                    self.stderr()
                );
            }
            if let Some(s) = self.status() {
                if ok(&s) {
                    return s;
                }
                last = Some(s);
            }
            assert!(
                Instant::now() < deadline,
                "no {what} within {within:?}; last status {last:#?}\nstderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_up(&mut self, reconnects: u64, within: Duration) -> TunnelStatus {
        self.wait_for(
            &format!("state up after {reconnects} reconnects"),
            within,
            |s| s.state == State::Up && s.reconnects >= reconnects,
        )
    }

    /// Waits for the process to end; its exit code.
    fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "the tunnel did not exit within {within:?}; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Connects to the tunnel's listener (which must accept at once: it is
/// never closed), sends `data` and reads it back through the echo.
fn echo_through(port: u16, data: &[u8]) -> Result<Vec<u8>, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(40))).unwrap();
    s.write_all(data).map_err(|e| format!("write: {e}"))?;
    let mut got = vec![0u8; data.len()];
    s.read_exact(&mut got).map_err(|e| format!("read: {e}"))?;
    Ok(got)
}

fn assert_echoes(port: u16, seed: u8) {
    let data = pattern(64 * 1024, seed);
    let got = echo_through(port, &data).unwrap_or_else(|e| panic!("through :{port}: {e}"));
    assert!(got == data, "bytes through :{port} differ");
}

fn sshd() -> Sshd {
    Sshd::builder().config("ClientAliveInterval 2").start()
}

/// Killing the session's sshd process: the tunnel reconnects by itself,
/// the local listener never closes, and status counts the reconnect.
#[test]
fn killed_session_comes_back_on_the_same_listener() {
    let sshd = sshd();
    let echo = TcpEcho::start("127.0.0.1:0");
    let port = free_port();
    let fwd = format!("{port}:127.0.0.1:{}", echo.addr().port());
    let mut up = Up::start(&sshd.client_config(), "kill", &["-L", &fwd], "test");
    let first = up.wait_up(0, Duration::from_secs(20));
    assert_eq!(first.forwards.len(), 1);
    assert_echoes(port, 1);
    for round in 1..=3u64 {
        assert!(sshd.kill_sessions() > 0, "no session to kill");
        // Straight after the kill: accepted, and served once the session is back.
        assert_echoes(port, round as u8);
        up.wait_up(round, Duration::from_secs(20));
    }
    let s = up.wait_up(3, Duration::from_secs(20));
    assert_eq!(s.reconnects, 3, "{s:#?}");
    assert!(s.faults >= 3);
    assert!(
        s.last_error.as_deref().unwrap_or("").contains("lost"),
        "{s:#?}"
    );
    let f = &s.forwards[0];
    assert!(f.spec.starts_with(&format!("-L {port}:")), "{f:?}");
    assert!(
        f.connections >= 4 && f.bytes_out >= 4 * 64 * 1024 && f.bytes_in >= 4 * 64 * 1024,
        "{f:?}"
    );
}

/// sshd stopped altogether, then started again on the same port: a
/// connection made during the outage waits and is served afterwards.
#[test]
fn sshd_restarted_on_the_same_port() {
    let sshd = sshd();
    let echo = TcpEcho::start("127.0.0.1:0");
    let port = free_port();
    let fwd = format!("{port}:127.0.0.1:{}", echo.addr().port());
    let mut up = Up::start(
        &sshd.client_config(),
        "restart",
        &[
            "--backoff-initial",
            "200ms",
            "--backoff-max",
            "1s",
            "-L",
            &fwd,
        ],
        "test",
    );
    up.wait_up(0, Duration::from_secs(20));
    faults::stop(&sshd);
    let down = up.wait_for("a refused reconnect", Duration::from_secs(20), |s| {
        s.state != State::Up && s.last_error.as_deref().unwrap_or("").contains("refused")
    });
    assert_eq!(down.reconnects, 0);
    // The listener is still there; this connection waits for the session.
    let data = pattern(100_000, 7);
    let during = {
        let data = data.clone();
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("the listener stayed open");
        std::thread::spawn(move || {
            s.set_read_timeout(Some(Duration::from_secs(40))).unwrap();
            s.write_all(&data).unwrap();
            let mut got = vec![0u8; data.len()];
            s.read_exact(&mut got).map(|()| got)
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let _restarted = faults::restart(&sshd);
    let s = up.wait_up(1, Duration::from_secs(20));
    assert_eq!(s.reconnects, 1);
    let got = during
        .join()
        .unwrap()
        .expect("the connection made during the outage was served");
    assert!(got == data);
    assert_echoes(port, 8);
}

/// Frozen sessions (SIGSTOP): the connection stays open and silent; with
/// ServerAliveInterval 1 (and no probes) keepalives notice and the tunnel
/// comes back on a new session.
#[test]
fn frozen_server_is_detected_by_keepalives() {
    let sshd = sshd();
    let echo = TcpEcho::start("127.0.0.1:0");
    let port = free_port();
    let fwd = format!("{port}:127.0.0.1:{}", echo.addr().port());
    let mut up = Up::start(
        &sshd.client_config(),
        "freeze",
        &[
            "--probe-interval",
            "0",
            "-o",
            "ServerAliveInterval=1",
            "-L",
            &fwd,
        ],
        "test",
    );
    up.wait_up(0, Duration::from_secs(20));
    assert_echoes(port, 1);
    let frozen = faults::freeze_sessions(&sshd);
    assert!(!frozen.is_empty());
    let s = up.wait_up(1, Duration::from_secs(30));
    assert!(
        s.last_error.as_deref().unwrap_or("").contains("lost"),
        "{s:#?}"
    );
    assert_echoes(port, 2);
    frozen.thaw();
}

/// The same freeze caught by the end-to-end probe: keepalives every 60 s
/// would take minutes, the probe notices within its timeout.
#[test]
fn frozen_server_is_detected_by_the_probe() {
    let sshd = sshd();
    let echo = TcpEcho::start("127.0.0.1:0");
    let port = free_port();
    let fwd = format!("{port}:127.0.0.1:{}", echo.addr().port());
    let mut up = Up::start(
        &sshd.client_config(),
        "probe",
        &[
            "--probe-interval",
            "1s",
            "--probe-timeout",
            "2s",
            "-o",
            "ServerAliveInterval=60",
            "-L",
            &fwd,
        ],
        "test",
    );
    up.wait_up(0, Duration::from_secs(20));
    let frozen = faults::freeze_sessions(&sshd);
    let s = up.wait_up(1, Duration::from_secs(30));
    assert!(
        s.last_error
            .as_deref()
            .unwrap_or("")
            .contains("probe failed"),
        "{s:#?}"
    );
    assert_echoes(port, 3);
    drop(frozen);
}

/// The link to the server cut in a network namespace and restored: the
/// tunnel backs off while it is down and is up again after.
#[test]
fn cut_link_in_a_namespace() {
    let topo = Topology::builder().bastions(0).start();
    let target = topo.target();
    let port = free_port();
    // Through the tunnel to the target's own sshd: its banner proves the path.
    let fwd = format!("{port}:{}:22", target.addr());
    let mut up = Up::start(
        &topo.client_config(),
        "cut",
        &[
            "-o",
            "ServerAliveInterval=1",
            "-o",
            "ConnectTimeout=2",
            "--backoff-initial",
            "200ms",
            "--backoff-max",
            "1s",
            "--probe-interval",
            "1s",
            "--probe-timeout",
            "2s",
            "-L",
            &fwd,
        ],
        "target",
    );
    up.wait_up(0, Duration::from_secs(20));
    assert_banner(port);
    let link = topo.link_to("target");
    link.cut();
    let s = up.wait_for(
        "a fault while the link is cut",
        Duration::from_secs(30),
        |s| s.state != State::Up && s.faults >= 1,
    );
    assert_eq!(s.reconnects, 0);
    link.restore();
    let s = up.wait_up(1, Duration::from_secs(30));
    assert!(s.faults >= 1);
    assert_banner(port);
}

fn assert_banner(port: u16) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).expect("a banner through the tunnel");
    assert_eq!(&buf, b"SSH-2.0");
}

/// A server that comes back with another host key: the tunnel stops with
/// the host key error (exit 255) instead of retrying.
#[test]
fn changed_host_key_stops_the_tunnel() {
    let sshd = sshd();
    let echo = TcpEcho::start("127.0.0.1:0");
    let port = free_port();
    let fwd = format!("{port}:127.0.0.1:{}", echo.addr().port());
    let mut up = Up::start(
        &sshd.client_config(),
        "hostkey",
        &[
            "--backoff-initial",
            "100ms",
            "--backoff-max",
            "200ms",
            "-L",
            &fwd,
        ],
        "test",
    );
    up.wait_up(0, Duration::from_secs(20));
    faults::stop(&sshd);
    faults::new_host_key(&sshd);
    let _restarted = faults::restart(&sshd);
    let code = up.wait_exit(Duration::from_secs(30));
    let stderr = up.stderr();
    assert_eq!(code, Some(255), "stderr:\n{stderr}");
    assert!(
        stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
            && stderr.contains("not retrying"),
        "stderr:\n{stderr}"
    );
    // Stopped for good: the listener is gone with the process.
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    // status still shows it, failed, with the reason, until `down`.
    let s = up.status().expect("the failed tunnel is listed");
    assert_eq!(s.state, State::Failed);
    assert!(
        s.last_error
            .unwrap()
            .contains("Host key verification failed")
    );
    let down = warren()
        .env("XDG_RUNTIME_DIR", up.dir.path())
        .args(["tunnel", "down", "hostkey"])
        .output()
        .unwrap();
    assert!(down.status.success(), "{}", text(&down.stderr));
    assert!(text(&down.stderr).contains("had stopped"));
    assert!(up.status().is_none());
}

/// -R: the server's port comes back with every new session (retried while
/// the server still holds it for the lost one).
#[test]
fn remote_forward_is_requested_again_after_a_reconnect() {
    let sshd = sshd();
    let echo = TcpEcho::start("127.0.0.1:0");
    let rport = free_port();
    let fwd = format!("{rport}:127.0.0.1:{}", echo.addr().port());
    let mut up = Up::start(&sshd.client_config(), "remote", &["-R", &fwd], "test");
    let s = up.wait_up(0, Duration::from_secs(20));
    assert_eq!(s.forwards[0].error, None, "{s:#?}");
    assert_echoes_remote(rport, 1);
    for round in 1..=2u64 {
        sshd.kill_sessions();
        up.wait_for("the remote forward back", Duration::from_secs(30), |s| {
            s.state == State::Up && s.reconnects >= round && s.forwards[0].error.is_none()
        });
        assert_echoes_remote(rport, round as u8 + 1);
    }
}

/// The server-side port answers (retrying while it is being re-requested).
fn assert_echoes_remote(port: u16, seed: u8) {
    let data = pattern(10_000, seed);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match echo_through(port, &data) {
            Ok(got) => {
                assert!(got == data);
                return;
            }
            Err(e) => assert!(Instant::now() < deadline, "-R port {port}: {e}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `-f`: the launcher returns once the tunnel is up; `down` stops it and
/// its listener closes.
#[test]
fn background_tunnel_status_table_and_down() {
    let sshd = sshd();
    let echo = TcpEcho::start("127.0.0.1:0");
    let port = free_port();
    let fwd = format!("{port}:127.0.0.1:{}", echo.addr().port());
    let runtime = tempfile::tempdir().unwrap();
    let out = warren()
        .env("XDG_RUNTIME_DIR", runtime.path())
        .args(["tunnel", "up", "-f", "--name", "bg", "-F"])
        .arg(sshd.client_config())
        .args(["-L", &fwd, "test"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Whatever happens below, the background tunnel must not outlive the test.
    let guard = DownOnDrop(runtime.path().to_owned());
    let sock = runtime.path().join("warren/tunnels/bg.sock");
    assert!(sock.exists());
    let mode = |p: &Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions())
            & 0o777
    };
    assert_eq!(mode(&runtime.path().join("warren/tunnels")), 0o700);
    assert_eq!(mode(&sock), 0o600);
    assert_echoes(port, 4);
    let table = warren()
        .env("XDG_RUNTIME_DIR", runtime.path())
        .args(["tunnel", "status"])
        .output()
        .unwrap();
    let table = text(&table.stdout);
    assert!(table.starts_with("NAME"), "{table}");
    let line = table.lines().nth(1).unwrap();
    assert!(line.starts_with("bg ") && line.contains(" up "), "{table}");
    assert!(
        table.contains(&format!("-L {port}:")) && table.contains("connections 1"),
        "{table}"
    );
    let down = warren()
        .env("XDG_RUNTIME_DIR", runtime.path())
        .args(["tunnel", "down", "bg"])
        .output()
        .unwrap();
    assert!(down.status.success(), "{}", text(&down.stderr));
    assert!(!sock.exists());
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the listener closed"
    );
    std::mem::forget(guard);
    let again = warren()
        .env("XDG_RUNTIME_DIR", runtime.path())
        .args(["tunnel", "down", "bg"])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(text(&again.stderr).contains("no tunnel named bg is running"));
}

struct DownOnDrop(PathBuf);

impl Drop for DownOnDrop {
    fn drop(&mut self) {
        let _ = warren()
            .env("XDG_RUNTIME_DIR", &self.0)
            .args(["tunnel", "down", "bg"])
            .output();
    }
}

/// A second tunnel under a name in use is refused; one without forwards
/// too, with what to do.
#[test]
fn duplicate_names_and_missing_forwards_are_refused() {
    let sshd = sshd();
    let port = free_port();
    let fwd = format!("{port}:127.0.0.1:9");
    let mut up = Up::start(&sshd.client_config(), "dup", &["-L", &fwd], "test");
    up.wait_up(0, Duration::from_secs(20));
    let second = warren()
        .env("XDG_RUNTIME_DIR", up.dir.path())
        .args(["tunnel", "up", "--name", "dup", "-F"])
        .arg(sshd.client_config())
        .args(["-L", &format!("{}:127.0.0.1:9", free_port()), "test"])
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(255));
    assert!(
        text(&second.stderr).contains("already running"),
        "{}",
        text(&second.stderr)
    );
    let none = warren()
        .env("XDG_RUNTIME_DIR", up.dir.path())
        .args(["tunnel", "up", "-F"])
        .arg(sshd.client_config())
        .arg("test")
        .output()
        .unwrap();
    assert_eq!(none.status.code(), Some(255));
    assert!(
        text(&none.stderr).contains("has no forwards"),
        "{}",
        text(&none.stderr)
    );
}

/// `install` writes the unit under ~/.config/systemd/user and prints it.
#[test]
fn install_writes_a_user_unit() {
    let sshd = sshd();
    let home = tempfile::tempdir().unwrap();
    let out = warren()
        .env("HOME", home.path())
        .env_remove("XDG_CONFIG_HOME")
        .args(["tunnel", "install", "db", "--wait", "10s", "-F"])
        .arg(sshd.client_config())
        .args(["-L", "15432:127.0.0.1:5432", "test"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let path = home
        .path()
        .join(".config/systemd/user/warren-tunnel-db.service");
    let unit = std::fs::read_to_string(&path).unwrap();
    assert_eq!(unit, text(&out.stdout));
    let exec = unit.lines().find(|l| l.starts_with("ExecStart=")).unwrap();
    assert!(
        exec.ends_with(&format!(
            " tunnel up --name db --wait=10s -F {} -L 15432:127.0.0.1:5432 test",
            sshd.client_config().display()
        )),
        "{exec}"
    );
    assert!(unit.contains("Restart=on-failure"));
}

fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Soak: many faults in a row (killed sessions, and every tenth a frozen
/// one, abandoned by the probe) with traffic running throughout and
/// carried by every reconnected session; the listener accepts every
/// connection, and descriptors, tasks and memory do not grow.
#[test]
fn soak_faults_under_traffic_leak_nothing() {
    const FAULTS: u64 = 100;
    let sshd = sshd();
    let echo = TcpEcho::start("127.0.0.1:0");
    let port = free_port();
    let fwd = format!("{port}:127.0.0.1:{}", echo.addr().port());
    let mut up = Up::start(
        &sshd.client_config(),
        "soak",
        &[
            "--probe-interval",
            "500ms",
            "--probe-timeout",
            "1s",
            "-L",
            &fwd,
        ],
        "test",
    );
    up.wait_up(0, Duration::from_secs(20));
    // Warm up (allocator, runtime threads) before the baseline.
    for i in 0..20 {
        assert_echoes(port, i);
    }
    std::thread::sleep(Duration::from_millis(300));
    let pid = up.pid();
    let base = up.status().unwrap();
    let (fds_before, rss_before, tasks_before) = (fd_count(pid), rss_kib(pid), base.tasks.unwrap());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let traffic: Vec<_> = (0..2u8)
        .map(|t| {
            let (stop, done) = (stop.clone(), done.clone());
            std::thread::spawn(move || {
                let (mut ok, mut failed) = (0u64, Vec::new());
                let mut i = 0u8;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    i = i.wrapping_add(1);
                    let data = pattern(16 * 1024, i ^ t);
                    match echo_through(port, &data) {
                        Ok(got) if got == data => {
                            ok += 1;
                            done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        Ok(_) => failed.push("bytes differ".to_owned()),
                        // A connection cut by the fault mid-transfer ends; the
                        // listener must still accept the next one.
                        Err(e) => failed.push(e),
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    let started = Instant::now();
    for round in 1..=FAULTS {
        // Each reconnected session carries traffic before the next fault
        // (else the faults could outrun the transfers and prove nothing).
        let before = done.load(std::sync::atomic::Ordering::Relaxed);
        let waiting = Instant::now();
        while done.load(std::sync::atomic::Ordering::Relaxed) == before {
            assert!(
                waiting.elapsed() < Duration::from_secs(20),
                "no transfer completed within 20 s after reconnect {}",
                round - 1
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        if round % 10 == 0 {
            let frozen = faults::freeze_sessions(&sshd);
            up.wait_up(round, Duration::from_secs(20));
            frozen.thaw();
        } else {
            sshd.kill_sessions();
            up.wait_up(round, Duration::from_secs(20));
        }
    }
    let elapsed = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut ok = 0;
    let mut failed = Vec::new();
    for t in traffic {
        let (o, f) = t.join().unwrap();
        ok += o;
        failed.extend(f);
    }
    std::thread::sleep(Duration::from_millis(500));
    let s = up.wait_up(FAULTS, Duration::from_secs(20));
    let (fds_after, rss_after, tasks_after) = (fd_count(pid), rss_kib(pid), s.tasks.unwrap());
    eprintln!(
        "soak: {FAULTS} faults in {elapsed:.1?}; transfers ok {ok}, cut {}; fds {fds_before} -> {fds_after}; \
         tasks {tasks_before} -> {tasks_after}; RSS {rss_before} -> {rss_after} KiB; reconnects {}",
        failed.len(),
        s.reconnects
    );
    assert_eq!(s.reconnects, FAULTS);
    assert!(ok >= FAULTS, "traffic kept flowing: {ok} transfers");
    // A cut can only end transfers that were under way at a fault.
    assert!(
        failed.iter().all(|e| !e.starts_with("connect")),
        "the listener refused a connection: {failed:?}"
    );
    assert!(failed.len() as u64 <= 2 * FAULTS, "{failed:?}");
    assert!(
        fds_after <= fds_before + 2,
        "descriptors leaked: {fds_before} -> {fds_after}"
    );
    assert!(
        tasks_after <= tasks_before + 2,
        "tasks leaked: {tasks_before} -> {tasks_after}"
    );
    assert!(
        rss_after < rss_before + 16 * 1024,
        "RSS grew: {rss_before} -> {rss_after} KiB"
    );
}

/// SIGSTOP on a process, SIGCONT on drop.
struct Stopped(u32);

impl Stopped {
    /// Stops `pid` and waits until every one of its threads is stopped: the
    /// signal takes effect as each thread next runs, and on a busy machine
    /// a status request sent right after `kill` was still answered.
    fn new(pid: u32) -> Stopped {
        signal_pid(pid, "-STOP");
        let stopped = Stopped(pid);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !all_threads_stopped(pid) {
            assert!(Instant::now() < deadline, "pid {pid} did not stop");
            std::thread::sleep(Duration::from_millis(10));
        }
        stopped
    }
}

/// Every thread of `pid` in state T (stopped), from /proc/PID/task/*/stat.
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().all(|task| {
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // The state follows the parenthesised command name.
        let state = stat.rsplit_once(") ").map(|(_, rest)| rest.chars().next());
        matches!(state, Some(Some('T' | 't')))
    })
}

impl Drop for Stopped {
    fn drop(&mut self) {
        signal_pid(self.0, "-CONT");
    }
}

fn signal_pid(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success(), "kill {sig} {pid}");
}

/// Runs `cmd` to its end, or kills it and fails after `within`.
fn run_within(cmd: &mut std::process::Command, within: Duration) -> std::process::Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(within) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            signal_pid(pid, "-KILL");
            panic!("{cmd:?} still running after {within:?}");
        }
    }
}

/// A tunnel stopped (SIGSTOP) for longer than status waits for an answer
/// is alive: status lists it as not responding and keeps its socket, a
/// second `up` under its name is refused, `down` says why it cannot stop
/// it; continued, it is up again and `down` stops it.
#[test]
fn stopped_tunnel_is_not_responding_and_keeps_its_socket() {
    // Broke: status took 5 s without an answer for a dead tunnel and
    // deleted the live tunnel's socket; status and down lost it.
    let sshd = sshd();
    let fwd = format!("{}:127.0.0.1:9", free_port());
    let mut up = Up::start(&sshd.client_config(), "stop", &["-L", &fwd], "test");
    up.wait_up(0, Duration::from_secs(20));
    let sock = up.dir.path().join("warren/tunnels/stop.sock");
    let pid = up.pid();
    let stopped = Stopped::new(pid);
    let runtime = up.dir.path().to_owned();
    let run = |args: &[&str]| {
        run_within(
            warren()
                .env("XDG_RUNTIME_DIR", &runtime)
                .args(["tunnel"])
                .args(args),
            Duration::from_secs(60),
        )
    };

    let out = run(&["status", "--json", "stop"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let all: Vec<TunnelStatus> = serde_json::from_slice(&out.stdout).unwrap();
    let [s] = &all[..] else {
        panic!("one tunnel: {all:#?}")
    };
    assert_eq!(
        (s.state, s.pid, s.name.as_str()),
        (State::NotResponding, pid, "stop"),
        "all threads of {pid} stopped: {}",
        all_threads_stopped(pid)
    );
    let why = s.last_error.as_deref().unwrap_or_default();
    assert!(
        why.contains("did not answer") && why.contains(&format!("kill -CONT {pid}")),
        "{why}"
    );
    assert!(sock.exists(), "status deleted the live tunnel's socket");

    let table = run(&["status"]);
    let table = text(&table.stdout);
    let line = table.lines().nth(1).unwrap_or_default();
    assert!(
        line.starts_with("stop ") && line.contains(" not responding "),
        "{table}"
    );

    // Refused at once from the lock, without waiting for an answer.
    let second = run_within(
        warren()
            .env("XDG_RUNTIME_DIR", up.dir.path())
            .args(["tunnel", "up", "--name", "stop", "-F"])
            .arg(sshd.client_config())
            .args(["-L", &format!("{}:127.0.0.1:9", free_port()), "test"]),
        Duration::from_secs(30),
    );
    assert_eq!(second.status.code(), Some(255), "{}", text(&second.stderr));
    let err = text(&second.stderr);
    assert!(
        err.contains(&format!("already running (pid {pid})")),
        "{err}"
    );

    let down = run(&["down", "stop"]);
    let err = text(&down.stderr);
    assert!(!down.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "tunnel stop (pid {pid}) is not responding, so it was not stopped"
        )) && err.contains(&format!("kill -CONT {pid}")),
        "{err}"
    );
    assert!(sock.exists());

    drop(stopped);
    up.wait_up(0, Duration::from_secs(30));
    let down = run(&["down", "stop"]);
    assert!(down.status.success(), "{}", text(&down.stderr));
    assert_eq!(up.wait_exit(Duration::from_secs(20)), Some(0));
    assert!(!sock.exists());
}

/// Something that answers `status` with 128 MiB on a tunnel's socket,
/// its lock held as a live tunnel's is: status reports the oversized
/// answer, within an address-space cap far below the answer's size.
#[test]
fn oversized_status_answer_is_read_bounded() {
    // Broke: the answer was read whole into memory (and the socket was
    // then deleted as if nobody had answered).
    const ANSWER: usize = 128 << 20;
    use std::os::unix::fs::DirBuilderExt;
    let runtime = tempfile::tempdir().unwrap();
    let dir = runtime.path().join("warren/tunnels");
    std::fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(&dir)
        .unwrap();
    let lock = std::fs::File::create(dir.join("big.lock")).unwrap();
    lock.try_lock().unwrap();
    std::fs::write(dir.join("big.lock"), format!("{}\n", std::process::id())).unwrap();
    let sock = dir.join("big.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let written = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    {
        let written = written.clone();
        std::thread::spawn(move || {
            let chunk = vec![b'x'; 1 << 20];
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                for _ in 0..ANSWER / chunk.len() {
                    if conn.write_all(&chunk).is_err() {
                        break;
                    }
                    written.fetch_add(chunk.len(), std::sync::atomic::Ordering::Relaxed);
                }
            }
        });
    }
    // 64 MiB of address space: half the answer, ample for warren itself.
    let started = Instant::now();
    let out = run_within(
        std::process::Command::new("sh")
            .env("XDG_RUNTIME_DIR", runtime.path())
            .arg("-c")
            .arg("ulimit -v 65536 && exec \"$0\" tunnel status --json big")
            .arg(env!("CARGO_BIN_EXE_warren")),
        Duration::from_secs(60),
    );
    eprintln!(
        "status took {:.1?}; {} MiB written before the client hung up",
        started.elapsed(),
        written.load(std::sync::atomic::Ordering::Relaxed) >> 20
    );
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        text(&out.stderr)
    );
    let all: Vec<TunnelStatus> = serde_json::from_slice(&out.stdout).unwrap();
    let [s] = &all[..] else {
        panic!("one tunnel: {all:#?}")
    };
    assert_eq!(s.state, State::NotResponding);
    let why = s.last_error.as_deref().unwrap_or_default();
    assert!(why.contains("longer than 1024 KiB"), "{why}");
    assert!(
        sock.exists(),
        "the socket of a live lock holder was deleted"
    );
    drop(lock);
}
