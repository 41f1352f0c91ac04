//! Faults to inject into a running [`Sshd`]: freeze its sessions (SIGSTOP,
//! a peer that is alive but silent), stop it altogether, start it again on
//! the same port with the same config, or with a new host key.
//!
//! Design choice: these work from the outside, through the pid sshd writes
//! to its PidFile and /proc, so the fixture itself stays as it is. An
//! OpenSSH session is a privileged monitor with an unprivileged child that
//! owns the network connection; freezing stops every descendant of the
//! listener, or the connection would still be served.

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::sshd::{Sshd, keygen};

/// The listener's pid, from its PidFile.
fn listener_pid(dir: &Path) -> u32 {
    let text = std::fs::read_to_string(dir.join("sshd.pid"))
        .unwrap_or_else(|e| panic!("sshd.pid in {}: {e}", dir.display()));
    text.trim()
        .parse()
        .unwrap_or_else(|e| panic!("sshd.pid holds {text:?}: {e}"))
}

/// Every descendant of `root` (children, their children, ...), from /proc.
pub fn descendants(root: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for e in entries.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if let Some(ppid) = ppid {
                parents.push((pid, ppid));
            }
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for &(pid, ppid) in &parents {
            if ppid == p && !out.contains(&pid) {
                out.push(pid);
                frontier.push(pid);
            }
        }
    }
    out
}

fn signal(pids: &[u32], sig: &str) {
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .args(pids.iter().map(u32::to_string))
        .stderr(Stdio::null())
        .status();
}

/// The session processes of `sshd` (every descendant of its listener).
pub fn session_pids(sshd: &Sshd) -> Vec<u32> {
    descendants(listener_pid(sshd.dir()))
}

/// Sessions stopped with SIGSTOP; continued on [`Frozen::thaw`] or drop.
pub struct Frozen {
    pids: Vec<u32>,
}

impl Frozen {
    pub fn thaw(mut self) {
        signal(&std::mem::take(&mut self.pids), "CONT");
    }

    /// How many processes were stopped.
    pub fn len(&self) -> usize {
        self.pids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pids.is_empty()
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        signal(&self.pids, "CONT");
    }
}

/// Freezes every current session of `sshd`: the TCP connection stays open
/// and nothing answers on it. New logins still work.
pub fn freeze_sessions(sshd: &Sshd) -> Frozen {
    let pids = session_pids(sshd);
    signal(&pids, "STOP");
    Frozen { pids }
}

/// Kills the listener and every session: nothing accepts on the port
/// until [`restart`].
pub fn stop(sshd: &Sshd) {
    let pid = listener_pid(sshd.dir());
    // Stopped first, the listener forks no session between our listing
    // of its children and the kill (one would survive, orphaned, and keep
    // a client connected to the "stopped" server).
    signal(&[pid], "STOP");
    let mut all = descendants(pid);
    all.push(pid);
    signal(&all, "KILL");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect_timeout(&sshd.addr(), Duration::from_millis(200)).is_ok() {
        assert!(
            Instant::now() < deadline,
            "sshd on {} did not stop",
            sshd.addr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Replaces the host key (same type, ed25519 by default fixtures) with a
/// new one; takes effect at the next [`restart`].
pub fn new_host_key(sshd: &Sshd) {
    let key = sshd.dir().join("host_ed25519");
    let _ = std::fs::remove_file(&key);
    let _ = std::fs::remove_file(key.with_extension("pub"));
    keygen(sshd.dir(), "host_ed25519", "ed25519", "");
}

/// An sshd started again by [`restart`]; killed (with its sessions) on drop.
/// Drop it before the [`Sshd`] whose directory it uses.
pub struct Restarted {
    child: Child,
}

impl Drop for Restarted {
    fn drop(&mut self) {
        signal(&descendants(self.child.id()), "KILL");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts sshd again with the fixture's config (same port, keys as they
/// are now), after [`stop`]; returns once it answers with a banner.
pub fn restart(sshd: &Sshd) -> Restarted {
    assert!(
        sshd.netns().is_none(),
        "restart works for an sshd on the host"
    );
    let log = std::fs::OpenOptions::new()
        .append(true)
        .open(sshd.dir().join("sshd.log"))
        .expect("sshd.log");
    let child = Command::new("/usr/sbin/sshd")
        .args(["-D", "-e", "-f"])
        .arg(sshd.dir().join("sshd_config"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("spawn sshd");
    let mut restarted = Restarted { child };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !banner(sshd.addr()) {
        if let Ok(Some(status)) = restarted.child.try_wait() {
            panic!("sshd did not start again ({status}): {}", sshd.log());
        }
        assert!(
            Instant::now() < deadline,
            "sshd did not start again within 10 s: {}",
            sshd.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    restarted
}

fn banner(addr: SocketAddr) -> bool {
    use std::io::Read;
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).is_ok() && &buf == b"SSH-2.0"
}
