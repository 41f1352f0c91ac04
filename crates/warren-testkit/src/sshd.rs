//! A real OpenSSH server for one test: temp dir, free port, ed25519 host key,
//! a client key in authorized_keys, and a client config that pins all of it.
//!
//! By default it listens on 127.0.0.1 and a free port; with
//! [`SshdBuilder::netns`] it runs inside a network namespace
//! (`ip netns exec NS sshd ...`) on a chosen address, port 22 by default,
//! and readiness is read from its log since this process cannot connect there.

use std::fmt::Write as _;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::netns::Netns;

const SSHD: &str = "/usr/sbin/sshd";

/// The login name of the user running the tests (sshd logs in as this user).
pub fn local_user() -> String {
    let out = Command::new("id")
        .arg("-un")
        .output()
        .expect("run `id -un`");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Generates a key with the real `ssh-keygen` and returns its path.
pub fn keygen(dir: &Path, name: &str, kind: &str, passphrase: &str) -> PathBuf {
    let path = dir.join(name);
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", passphrase, "-C", name, "-f"])
        .arg(&path)
        .stdin(Stdio::null())
        .status()
        .expect("ssh-keygen is required (apt-get install openssh-client)");
    assert!(status.success(), "ssh-keygen -t {kind} failed");
    path
}

/// Signs a public key with the real `ssh-keygen -s CA -I warren-test ...`;
/// the certificate lands beside it as `NAME-cert.pub`.
pub fn sign(ca: &Path, public_key: &Path, args: &[&str]) {
    let out = Command::new("ssh-keygen")
        .arg("-q")
        .arg("-s")
        .arg(ca)
        .args(["-I", "warren-test"])
        .args(args)
        .arg(public_key)
        .output()
        .expect("ssh-keygen -s");
    assert!(
        out.status.success(),
        "ssh-keygen -s failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Builds an [`Sshd`] with extra `sshd_config` lines.
#[derive(Default)]
pub struct SshdBuilder {
    extra: Vec<String>,
    host_key_kinds: Vec<&'static str>,
    host_ca: Option<(PathBuf, String)>,
    host_cert_args: Vec<String>,
    netns: Option<Netns>,
    listen: Option<IpAddr>,
    port: Option<u16>,
    client_key: Option<PathBuf>,
}

impl SshdBuilder {
    /// Adds one `sshd_config` line (first value wins in sshd too, so these
    /// come before the fixture's defaults).
    pub fn config(mut self, line: impl Into<String>) -> Self {
        self.extra.push(line.into());
        self
    }

    /// Host key types to generate (default: ed25519 only).
    pub fn host_keys(mut self, kinds: &[&'static str]) -> Self {
        self.host_key_kinds = kinds.to_vec();
        self
    }

    /// Signs the host keys with this CA private key (principals as
    /// `ssh-keygen -n`) and serves the certificates (HostCertificate).
    pub fn host_certificates(mut self, ca_key: &Path, principals: &str) -> Self {
        self.host_ca = Some((ca_key.to_owned(), principals.to_owned()));
        self
    }

    /// Extra `ssh-keygen -s` arguments for the host certificates, e.g.
    /// `["-O", "critical:name=value"]`.
    pub fn host_certificate_args(mut self, args: &[&str]) -> Self {
        self.host_cert_args = args.iter().map(|a| (*a).to_owned()).collect();
        self
    }

    /// Runs sshd inside this network namespace (it keeps the namespace
    /// alive until the sshd is dropped). Pair it with [`SshdBuilder::listen`]:
    /// the namespace's own addresses are the only ones sshd can bind there.
    pub fn netns(mut self, netns: &Netns) -> Self {
        self.netns = Some(netns.clone());
        self
    }

    /// The address to listen on (default 127.0.0.1).
    pub fn listen(mut self, addr: &str) -> Self {
        let ip = addr
            .parse()
            .unwrap_or_else(|e| panic!("SshdBuilder::listen({addr:?}): {e}"));
        self.listen = Some(ip);
        self
    }

    /// The port to listen on (default: a free one on the host, 22 in a
    /// namespace, where nothing else listens).
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Authorizes this existing private key (its `.pub` beside it) instead of
    /// generating one, so several servers accept the same client identity.
    pub fn client_key(mut self, private_key: &Path) -> Self {
        self.client_key = Some(private_key.to_owned());
        self
    }

    pub fn start(mut self) -> Sshd {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} not found: install openssh-server (scripts/test does it with apt-get)"
        );
        std::fs::create_dir_all("/run/sshd").expect("create /run/sshd (privilege separation dir)");
        let dir = tempfile::Builder::new()
            .prefix("warren-sshd-")
            .tempdir()
            .expect("temp dir");
        let kinds = if self.host_key_kinds.is_empty() {
            vec!["ed25519"]
        } else {
            self.host_key_kinds.clone()
        };
        let host_keys: Vec<PathBuf> = kinds
            .iter()
            .map(|k| keygen(dir.path(), &format!("host_{k}"), k, ""))
            .collect();
        if let Some((ca, principals)) = &self.host_ca {
            for key in &host_keys {
                let mut args = vec!["-h", "-n", principals.as_str()];
                args.extend(self.host_cert_args.iter().map(String::as_str));
                sign(ca, &key.with_extension("pub"), &args);
                let cert = PathBuf::from(format!("{}-cert.pub", key.display()));
                self.extra
                    .push(format!("HostCertificate {}", cert.display()));
            }
        }
        let client_key = match &self.client_key {
            Some(key) => key.clone(),
            None => keygen(dir.path(), "id_ed25519", "ed25519", ""),
        };
        let authorized = dir.path().join("authorized_keys");
        std::fs::copy(client_key.with_extension("pub"), &authorized).expect("authorized_keys");
        let ip = self.listen.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        // A chosen port is not retried: a second try would collide the same way.
        let attempts = if self.port.is_some() || self.netns.is_some() {
            1
        } else {
            5
        };
        for attempt in 0..attempts {
            let port = match (self.port, &self.netns) {
                (Some(port), _) => port,
                (None, Some(_)) => 22,
                (None, None) => free_port(ip),
            };
            let config = write_config(dir.path(), ip, port, &host_keys, &self.extra);
            let mut command = match &self.netns {
                Some(ns) => ns.command(SSHD),
                None => Command::new(SSHD),
            };
            let mut child = command
                .args(["-D", "-e", "-f"])
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(
                    std::fs::File::create(dir.path().join("sshd.log")).expect("sshd.log"),
                ))
                .spawn()
                .expect("spawn sshd");
            let ready = match &self.netns {
                Some(_) => wait_for_listening(dir.path(), ip, port, &mut child),
                None => wait_for_banner(SocketAddr::new(ip, port), &mut child),
            };
            if ready {
                let sshd = Sshd {
                    dir,
                    ip,
                    port,
                    child,
                    host_keys,
                    client_key,
                    netns: self.netns,
                };
                sshd.write_client_files();
                return sshd;
            }
            let _ = child.kill();
            let _ = child.wait();
            eprintln!("sshd on {ip} port {port} did not come up (attempt {attempt}); retrying");
        }
        let log = std::fs::read_to_string(dir.path().join("sshd.log")).unwrap_or_default();
        let place = self
            .netns
            .as_ref()
            .map_or(String::new(), |ns| format!(" in netns {}", ns.name()));
        panic!("sshd did not start on {ip}{place}; its log:\n{log}");
    }
}

/// A running `sshd -D` (on 127.0.0.1 unless built otherwise); killed when
/// dropped.
pub struct Sshd {
    dir: TempDir,
    ip: IpAddr,
    port: u16,
    child: Child,
    host_keys: Vec<PathBuf>,
    client_key: PathBuf,
    /// Dropped after the child is killed (the `Drop` body runs first).
    netns: Option<Netns>,
}

impl Sshd {
    /// An sshd with the fixture's defaults.
    pub fn start() -> Sshd {
        Sshd::builder().start()
    }

    pub fn builder() -> SshdBuilder {
        SshdBuilder::default()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.port)
    }

    /// The namespace it runs in (`None`: the test process's own).
    pub fn netns(&self) -> Option<&Netns> {
        self.netns.as_ref()
    }

    /// The `known_hosts` host pattern for this server: `IP` on port 22,
    /// `[IP]:PORT` otherwise (what OpenSSH looks up).
    pub fn known_hosts_pattern(&self) -> String {
        if self.port == 22 {
            self.ip.to_string()
        } else {
            format!("[{}]:{}", self.ip, self.port)
        }
    }

    /// This server's `known_hosts` lines (one per host key type).
    pub fn known_hosts_lines(&self) -> String {
        let mut known = String::new();
        for line in self.host_public_keys() {
            let mut parts = line.split_whitespace();
            let (kind, b64) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            writeln!(known, "{} {kind} {b64}", self.known_hosts_pattern()).expect("fmt");
        }
        known
    }

    /// The fixture's temp dir (sshd.log, keys, client files).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The client private key authorized on this server (ed25519, no passphrase).
    pub fn client_key(&self) -> &Path {
        &self.client_key
    }

    /// `known_hosts` holding this server's host keys as `[127.0.0.1]:PORT`
    /// (see [`Sshd::known_hosts_pattern`] for other addresses).
    pub fn known_hosts(&self) -> PathBuf {
        self.dir.path().join("known_hosts")
    }

    /// The public host keys, one OpenSSH line each (`type base64 comment`).
    pub fn host_public_keys(&self) -> Vec<String> {
        self.host_keys
            .iter()
            .map(|k| std::fs::read_to_string(k.with_extension("pub")).expect("host .pub"))
            .map(|l| l.trim().to_owned())
            .collect()
    }

    /// A client config (`-F`) with `Host test` pinned to this server, key and
    /// known_hosts, and no agent or prompts: usable by both warren and ssh.
    pub fn client_config(&self) -> PathBuf {
        self.dir.path().join("ssh_config")
    }

    /// sshd's log so far (LogLevel VERBOSE).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// Appends a public key line to authorized_keys.
    pub fn authorize(&self, public_key_line: &str) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.path().join("authorized_keys"))
            .expect("open authorized_keys");
        writeln!(f, "{}", public_key_line.trim()).expect("write authorized_keys");
    }

    fn write_client_files(&self) {
        std::fs::write(self.known_hosts(), self.known_hosts_lines()).expect("known_hosts");
        let config = format!(
            "Host test\n  HostName {ip}\n  Port {port}\n  User {user}\n  IdentityFile {key}\n  \
             IdentitiesOnly yes\n  IdentityAgent none\n  BatchMode yes\n  UserKnownHostsFile {known}\n  \
             GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n",
            ip = self.ip,
            port = self.port,
            user = local_user(),
            key = self.client_key.display(),
            known = self.known_hosts().display(),
        );
        std::fs::write(self.client_config(), config).expect("ssh_config");
    }
}

impl Sshd {
    /// Kills the per-connection session processes (the listener's
    /// children), as a dropped connection would; the listener stays.
    pub fn kill_sessions(&self) -> usize {
        let children = children_of(self.child.id());
        for pid in &children {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        children.len()
    }

    /// Stops (SIGSTOP) every session process and its descendants: the
    /// server stays connected but answers nothing, as a hung host or a
    /// silently dropped link looks. Returns how many were stopped.
    pub fn freeze_sessions(&self) -> usize {
        self.signal_sessions("-STOP")
    }

    /// Resumes what [`Sshd::freeze_sessions`] stopped.
    pub fn thaw_sessions(&self) -> usize {
        self.signal_sessions("-CONT")
    }

    fn signal_sessions(&self, signal: &str) -> usize {
        let mut all = Vec::new();
        let mut queue = children_of(self.child.id());
        while let Some(pid) = queue.pop() {
            queue.extend(children_of(pid));
            all.push(pid);
        }
        for pid in &all {
            let _ = Command::new("kill")
                .args([signal, &pid.to_string()])
                .status();
        }
        all.len()
    }
}

/// Pids whose parent is `parent`, from /proc.
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let ppid: u32 = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            (ppid == parent).then_some(pid)
        })
        .collect()
}

impl Drop for Sshd {
    fn drop(&mut self) {
        // Sessions outlive their listener in sshd; end them too, so no
        // client of this test lingers on a connection to it (a stopped
        // one is resumed first, or it would not die before the listener).
        self.thaw_sessions();
        self.kill_sessions();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port(ip: IpAddr) -> u16 {
    TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a free loopback port")
}

fn write_config(
    dir: &Path,
    ip: IpAddr,
    port: u16,
    host_keys: &[PathBuf],
    extra: &[String],
) -> PathBuf {
    let mut cfg = String::new();
    for line in extra {
        writeln!(cfg, "{line}").expect("fmt");
    }
    writeln!(cfg, "Port {port}\nListenAddress {ip}").expect("fmt");
    for key in host_keys {
        writeln!(cfg, "HostKey {}", key.display()).expect("fmt");
    }
    write!(
        cfg,
        "AuthorizedKeysFile {dir}/authorized_keys\nPidFile {dir}/sshd.pid\nStrictModes no\n\
         UsePAM no\nPermitRootLogin prohibit-password\nAllowTcpForwarding yes\n\
         AllowAgentForwarding yes\nAllowStreamLocalForwarding yes\nGatewayPorts no\n\
         PermitUserEnvironment no\nAcceptEnv LANG LC_* WARREN_*\n\
         Subsystem sftp /usr/lib/openssh/sftp-server\nSetEnv SHLVL=1\nLogLevel VERBOSE\n",
        dir = dir.display()
    )
    .expect("fmt");
    let path = dir.join("sshd_config");
    std::fs::write(&path, cfg).expect("sshd_config");
    path
}

/// Waits until the port answers with an SSH banner (or sshd exits).
fn wait_for_banner(addr: SocketAddr, child: &mut Child) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 8];
            if s.read_exact(&mut buf).is_ok() && buf.starts_with(b"SSH-2.0") {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Waits until sshd logs that it listens on `ip` port `port` (it does so
/// right after `listen()`), or exits. For a namespace this process cannot
/// connect into.
fn wait_for_listening(dir: &Path, ip: IpAddr, port: u16, child: &mut Child) -> bool {
    let needle = format!("Server listening on {ip} port {port}.");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        let log = std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default();
        if log.contains(&needle) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}
