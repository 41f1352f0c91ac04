//! Network namespaces for topology tests: a [`Netns`] guard around
//! `ip netns add` / `ip netns del`, commands run inside one, and the veth
//! [`Link`]s between them (which a fault test can cut and restore).
//!
//! Design choice: everything goes through the real `ip` binary (iproute2),
//! never `setns` in this process, so the test process itself always stays in
//! the host namespace and no `unsafe` is needed. A namespace is named
//! `warren-<pid>-<n>`; namespaces left behind by a test process that died
//! (its pid gone) are deleted the first time this process creates one.

use std::io::Read;
use std::net::SocketAddr;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

const IP: &str = "ip";
/// Upper bound for any one helper command (`ip`, a probe, `Netns::exec`).
pub(crate) const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `ip ARGS` and panics with its stderr if it fails (or `ip` is
/// missing): a topology that cannot be built must fail the test loudly.
pub(crate) fn ip(args: &[&str]) -> Output {
    let out = try_ip(args);
    assert!(
        out.status.success(),
        "`ip {}` failed ({}): {}\n(topology tests need root and iproute2 with network namespaces)",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    out
}

/// Runs `ip ARGS`, returning its output whatever the status (for cleanup).
pub(crate) fn try_ip(args: &[&str]) -> Output {
    let mut cmd = Command::new(IP);
    cmd.args(args);
    run(&mut cmd, COMMAND_TIMEOUT)
        .unwrap_or_else(|e| panic!("cannot run `ip {}`: {e} (install iproute2)", args.join(" ")))
}

/// Runs a command to completion with stdout and stderr captured; kills it
/// after `timeout` (its output then ends there and the status says killed).
pub(crate) fn run(cmd: &mut Command, timeout: Duration) -> std::io::Result<Output> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let status = wait_deadline(&mut child, timeout)?;
    Ok(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        buf
    })
}

fn wait_deadline(
    child: &mut Child,
    timeout: Duration,
) -> std::io::Result<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            return child.wait();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A network namespace that exists while any clone of this guard lives
/// (clones share one namespace; an [`crate::Sshd`] started in it holds one).
/// On the last drop every process still inside is killed, then
/// `ip netns del`.
#[derive(Clone)]
pub struct Netns {
    inner: Arc<NetnsInner>,
}

struct NetnsInner {
    name: String,
}

impl Netns {
    /// Creates `warren-<pid>-<n>` with its loopback up and IPv4 forwarding
    /// off (so a namespace never routes between its neighbours).
    pub fn new() -> Netns {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        static SWEEP: Once = Once::new();
        SWEEP.call_once(remove_stale_namespaces);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("warren-{}-{n}", std::process::id());
        ip(&["netns", "add", &name]);
        let ns = Netns {
            inner: Arc::new(NetnsInner { name }),
        };
        ns.ip(&["link", "set", "lo", "up"]);
        ns.exec_ok(&["sh", "-c", "echo 0 > /proc/sys/net/ipv4/ip_forward"]);
        ns
    }

    /// The name `ip netns` knows it by.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// `ip -n NAME ARGS`, panicking with stderr on failure.
    pub fn ip(&self, args: &[&str]) -> Output {
        let mut full = vec!["-n", self.name()];
        full.extend_from_slice(args);
        ip(&full)
    }

    /// A `Command` for `program` run inside the namespace
    /// (`ip netns exec NAME program ...`); add args, spawn it yourself.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(IP);
        cmd.args(["netns", "exec", self.name(), program]);
        cmd
    }

    /// Runs `argv` inside the namespace with output captured, killed after
    /// 30 s. Does not check the exit status (see [`Netns::exec_ok`]).
    pub fn exec(&self, argv: &[&str]) -> Output {
        let (program, args) = argv.split_first().expect("Netns::exec: empty argv");
        let mut cmd = self.command(program);
        cmd.args(args);
        run(&mut cmd, COMMAND_TIMEOUT)
            .unwrap_or_else(|e| panic!("ip netns exec {} {argv:?}: {e}", self.name()))
    }

    /// [`Netns::exec`], panicking with stderr unless the command succeeded.
    pub fn exec_ok(&self, argv: &[&str]) -> Output {
        let out = self.exec(argv);
        assert!(
            out.status.success(),
            "in netns {}: {argv:?} failed ({}): {}",
            self.name(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
        out
    }

    /// Whether a TCP connect from inside this namespace to `addr` succeeds
    /// within `timeout` (bash's /dev/tcp; `ping` is not installed here).
    pub fn can_connect(&self, addr: SocketAddr, timeout: Duration) -> bool {
        let script = format!("exec 3<>/dev/tcp/{}/{}", addr.ip(), addr.port());
        let secs = format!("{:.3}", timeout.as_secs_f64());
        self.exec(&["timeout", &secs, "bash", "-c", &script])
            .status
            .success()
    }
}

impl Default for Netns {
    fn default() -> Self {
        Netns::new()
    }
}

impl std::fmt::Debug for Netns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Netns").field(&self.inner.name).finish()
    }
}

impl Drop for NetnsInner {
    fn drop(&mut self) {
        delete_namespace(&self.name);
    }
}

/// Kills whatever still runs inside (sshd session children outlive a killed
/// listener and would keep the namespace alive), then deletes it.
fn delete_namespace(name: &str) {
    let out = try_ip(&["netns", "pids", name]);
    let pids = String::from_utf8_lossy(&out.stdout);
    let pids: Vec<&str> = pids.split_whitespace().collect();
    if !pids.is_empty() {
        let mut kill = Command::new("kill");
        kill.arg("-KILL").args(&pids);
        let _ = run(&mut kill, COMMAND_TIMEOUT);
    }
    let out = try_ip(&["netns", "del", name]);
    if !out.status.success() && !std::thread::panicking() {
        eprintln!(
            "warren-testkit: ip netns del {name}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
}

/// Deletes `warren-<pid>-*` namespaces whose process no longer exists.
fn remove_stale_namespaces() {
    let out = try_ip(&["netns", "list"]);
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(pid) = name
            .strip_prefix("warren-")
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            delete_namespace(name);
        }
    }
}

/// One end of a veth pair: a device in a namespace (`None`: the host one,
/// where the test process runs) and its address.
#[derive(Clone, Debug)]
pub struct LinkEnd {
    pub netns: Option<Netns>,
    pub dev: String,
    pub addr: std::net::Ipv4Addr,
}

impl LinkEnd {
    fn set(&self, state: &str) {
        let args = ["link", "set", "dev", self.dev.as_str(), state];
        match &self.netns {
            Some(ns) => ns.ip(&args),
            None => ip(&args),
        };
    }
}

/// A veth pair between two adjacent hops.
#[derive(Clone, Debug)]
pub struct Link {
    pub a: LinkEnd,
    pub b: LinkEnd,
}

impl Link {
    /// Cuts the link: both ends administratively down. New connections
    /// across it fail with "network unreachable"; established ones stall
    /// (their packets are dropped) until [`Link::restore`] or they time out.
    pub fn cut(&self) {
        self.a.set("down");
        self.b.set("down");
    }

    /// Brings both ends up again (the kernel restores their connected routes).
    pub fn restore(&self) {
        self.a.set("up");
        self.b.set("up");
    }
}
