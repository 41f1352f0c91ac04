//! A `warren serve` child process for one test: temp dir, throwaway host
//! key, a client key in its authorized_keys, a free port read from its
//! start line, and OpenSSH client options that pin all of it. Killed on
//! `Drop`; its log is kept for failure messages.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::warren;

pub struct Serve {
    child: Child,
    dir: TempDir,
    port: u16,
    fingerprint: String,
    log: Arc<Mutex<String>>,
}

/// Options for [`Serve`].
#[derive(Default)]
pub struct ServeBuilder {
    /// authorized_keys text; `KEY` stands for the client's public key.
    authorized_keys: Option<String>,
    args: Vec<String>,
}

impl ServeBuilder {
    pub fn authorized_keys(mut self, text: &str) -> Self {
        self.authorized_keys = Some(text.to_owned());
        self
    }

    pub fn arg(mut self, a: &str) -> Self {
        self.args.push(a.to_owned());
        self
    }

    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| (*a).to_owned()));
        self
    }

    pub fn start(self) -> Serve {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = warren_testkit::keygen(dir.path(), "id", "ed25519", "");
        let public = std::fs::read_to_string(dir.path().join("id.pub")).expect("id.pub");
        let ak = self
            .authorized_keys
            .unwrap_or_else(|| "KEY".into())
            .replace("KEY", public.trim());
        std::fs::write(dir.path().join("authorized_keys"), ak).expect("authorized_keys");
        let mut child = warren()
            .args(["serve", "--listen", "127.0.0.1:0", "--host-key"])
            .arg(dir.path().join("host_key"))
            .arg("--authorized-keys")
            .arg(dir.path().join("authorized_keys"))
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn warren serve");
        let log = Arc::new(Mutex::new(String::new()));
        {
            let log = log.clone();
            let mut stderr = child.stderr.take().expect("stderr");
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = stderr.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    log.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut port = None;
        let mut fingerprint = None;
        while port.is_none() || fingerprint.is_none() {
            let Ok(line) = rx.recv_timeout(Duration::from_secs(30)) else {
                let _ = child.kill();
                panic!(
                    "warren serve did not print its start lines; log:\n{}",
                    log.lock().unwrap()
                );
            };
            if let Some(addr) = line.strip_prefix("warren serve: listening on ") {
                port = addr.rsplit(':').next().and_then(|p| p.parse::<u16>().ok());
            } else if let Some(fp) = line.strip_prefix("warren serve: host key ") {
                fingerprint = Some(fp.to_owned());
            }
        }
        let port = port.unwrap();
        let host_pub =
            std::fs::read_to_string(dir.path().join("host_key.pub")).expect("host_key.pub");
        let mut fields = host_pub.split_whitespace();
        let (kind, blob) = (fields.next().unwrap(), fields.next().unwrap());
        std::fs::write(
            dir.path().join("known_hosts"),
            format!("[127.0.0.1]:{port} {kind} {blob}\n"),
        )
        .expect("known_hosts");
        let _ = key;
        Serve {
            child,
            dir,
            port,
            fingerprint: fingerprint.unwrap(),
            log,
        }
    }
}

impl Serve {
    pub fn start() -> Serve {
        ServeBuilder::default().start()
    }

    pub fn builder() -> ServeBuilder {
        ServeBuilder::default()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    pub fn client_key(&self) -> PathBuf {
        self.dir.path().join("id")
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits (at most 10 s) until the log contains `needle`.
    pub fn wait_log(&self, needle: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// OpenSSH client options pinning this server's key and the client key
    /// (no port: `ssh -p` and `scp -P` differ).
    pub fn client_options(&self, key: &Path) -> Vec<String> {
        let kh = self.dir.path().join("known_hosts");
        [
            "-F",
            "none",
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "IdentityAgent=none",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "ConnectTimeout=10",
            "-o",
            "LogLevel=ERROR",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .chain([
            "-o".into(),
            format!("UserKnownHostsFile={}", kh.display()),
            "-i".into(),
            key.display().to_string(),
        ])
        .collect()
    }

    /// `ssh [options] -p PORT` with the fixture's client key; append the
    /// destination `127.0.0.1` and a command.
    pub fn ssh(&self) -> Command {
        self.ssh_with_key(&self.client_key())
    }

    pub fn ssh_with_key(&self, key: &Path) -> Command {
        let mut c = Command::new("ssh");
        c.args(self.client_options(key))
            .args(["-p", &self.port.to_string()])
            .stdin(Stdio::null());
        c
    }

    /// Sends SIGTERM (graceful shutdown) without waiting.
    pub fn sigterm(&self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
    }

    /// Asks the server to shut down (SIGTERM) and waits for it, at most
    /// `limit`; returns its exit code.
    pub fn terminate(&mut self, limit: Duration) -> Option<i32> {
        self.sigterm();
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
