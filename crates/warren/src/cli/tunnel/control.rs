//! The control socket of a running tunnel: where `warren tunnel status`
//! and `warren tunnel down` reach it.
//!
//! Each tunnel listens on `NAME.sock` in a private runtime directory
//! (`$XDG_RUNTIME_DIR/warren/tunnels`, else `/tmp/warren-UID/tunnels`),
//! every level created 0700 and refused if another user owns it or others
//! may enter it; the socket itself is 0600. The protocol is one JSON
//! request per line (`{"cmd":"status"}`, `{"cmd":"down"}`) answered by
//! one JSON line: small, readable with `socat`, and versioned by fields.
//!
//! Design choice: whether a tunnel is alive is decided by its process,
//! never by how fast it answers. Each tunnel holds an exclusive `flock` on
//! `NAME.lock` (0600, holding its pid) for as long as it runs, and binds
//! its socket only once it holds the lock. A socket is stale, and removed,
//! only when its lock can be taken (and it is removed while holding it, so
//! a tunnel starting under the same name cannot lose its new socket); a
//! tunnel that holds its lock but does not answer is shown as not
//! responding. Lock files are never removed: unlinking a lock file while
//! another process may be opening it would let two holders in.
//!
//! A tunnel that stopped for good leaves `NAME.failed` beside the sockets,
//! its last status with the reason, so `status` still shows it as failed
//! after the process has exited; `down NAME` or a new `up` clears it.

use std::collections::BTreeSet;
use std::fs::{File, TryLockError};
use std::io::Read as _;
use std::os::unix::fs::{
    DirBuilderExt as _, FileExt as _, MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt as _, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use warren_core::tunnel::{State, StatusCell, TunnelStatus};

/// A request on the control socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase")]
pub enum Request {
    Status,
    Down,
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<TunnelStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// How long a client waits for a tunnel to answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest request line a tunnel reads.
const MAX_REQUEST: u64 = 4096;

/// Longest answer a client reads (a status with thousands of forwards
/// fits many times over).
const MAX_ANSWER: usize = 1 << 20;

/// How long a starting tunnel waits for its lock while a `status` or
/// `down` holds it for a moment (checking for a stale socket).
const LOCK_PATIENCE: Duration = Duration::from_secs(2);

/// The private directory holding the tunnels' sockets, created if needed.
pub fn runtime_dir() -> anyhow::Result<PathBuf> {
    let uid = rustix::process::geteuid().as_raw();
    let base = match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(xdg) => PathBuf::from(xdg).join("warren"),
        None => PathBuf::from(format!("/tmp/warren-{uid}")),
    };
    private_dir(&base, uid)?;
    let dir = base.join("tunnels");
    private_dir(&dir, uid)?;
    Ok(dir)
}

/// Creates `dir` 0700, or checks that the one there is ours and closed to
/// others (a directory under /tmp could have been made by anyone).
fn private_dir(dir: &Path, uid: u32) -> anyhow::Result<()> {
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", dir.display())),
    }
    let meta = std::fs::symlink_metadata(dir).with_context(|| format!("{}", dir.display()))?;
    anyhow::ensure!(
        meta.is_dir() && meta.uid() == uid,
        "refusing to use {}: it is not a directory owned by uid {uid}; remove it",
        dir.display()
    );
    anyhow::ensure!(
        meta.mode() & 0o077 == 0,
        "refusing to use {}: others may enter it (mode {:o}); fix with: chmod 700 {}",
        dir.display(),
        meta.mode() & 0o777,
        dir.display()
    );
    Ok(())
}

/// The socket of tunnel `name` in `dir`.
pub fn socket_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.sock"))
}

/// Where a tunnel that failed leaves its last status.
pub fn failed_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.failed"))
}

/// The lock file of tunnel `name` in `dir`.
pub fn lock_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.lock"))
}

/// A lock on `NAME.lock`: held exclusively by a running tunnel for its
/// whole life, or shared, for a moment, by readers that found the tunnel
/// gone (so that no tunnel starts while they clear its leftovers).
/// Released when dropped or when the process ends, however it ends.
#[derive(Debug)]
pub struct Lock {
    // Never read: holding the open file holds the lock.
    _file: File,
}

/// Who holds a tunnel's lock.
#[derive(Debug)]
pub enum Probe {
    /// A live tunnel process; its pid when it has written it already.
    Live { pid: Option<u32> },
    /// No tunnel does: we hold it shared now, until dropped, and no tunnel
    /// of this name can start meanwhile.
    Free(Lock),
}

fn open_lock(path: &Path) -> anyhow::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))
}

/// Whether a tunnel holds the lock of `name`, without waiting.
pub fn probe(dir: &Path, name: &str) -> anyhow::Result<Probe> {
    let path = lock_path(dir, name);
    let file = open_lock(&path)?;
    match file.try_lock_shared() {
        Ok(()) => Ok(Probe::Free(Lock { _file: file })),
        Err(TryLockError::WouldBlock) => Ok(Probe::Live {
            pid: read_pid(&file),
        }),
        Err(TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

/// The pid a live tunnel wrote in its lock file (`None` while it is
/// still starting, or if the file holds anything else).
fn read_pid(file: &File) -> Option<u32> {
    let mut buf = [0u8; 16];
    let n = file.read_at(&mut buf, 0).ok()?;
    std::str::from_utf8(&buf[..n]).ok()?.trim().parse().ok()
}

impl Lock {
    /// Takes the lock for a tunnel starting under `name`, exclusively, and
    /// writes our pid in it; refuses at once while another tunnel holds
    /// it, and waits (a little) while only readers do.
    pub async fn acquire(dir: &Path, name: &str) -> anyhow::Result<Lock> {
        let path = lock_path(dir, name);
        let deadline = tokio::time::Instant::now() + LOCK_PATIENCE;
        loop {
            let file = open_lock(&path)?;
            let failed = |e| Err(e).with_context(|| format!("cannot lock {}", path.display()));
            match file.try_lock() {
                Ok(()) => {
                    let pid = format!("{}\n", std::process::id());
                    file.set_len(0)
                        .and_then(|()| file.write_all_at(pid.as_bytes(), 0))
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    return Ok(Lock { _file: file });
                }
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) => return failed(e),
            }
            // Shared holders are readers, gone in a moment; an exclusive
            // one is a tunnel.
            match file.try_lock_shared() {
                Ok(()) => drop(file),
                Err(TryLockError::WouldBlock) => {
                    let pid = read_pid(&file).map_or(String::new(), |p| format!(" (pid {p})"));
                    anyhow::bail!(
                        "a tunnel named {name} is already running{pid}; stop it with: warren tunnel down {name}"
                    );
                }
                Err(TryLockError::Error(e)) => return failed(e),
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "cannot take {}: other warren commands keep it locked; try again",
                path.display()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// What to do about a live tunnel process that does not answer, from
/// its state in /proc.
pub fn unresponsive_hint(pid: Option<u32>) -> String {
    let Some(pid) = pid else {
        return "it may still be starting; try again in a moment".into();
    };
    if process_state(pid).is_some_and(|s| s == b'T' || s == b't') {
        format!(
            "process {pid} is stopped (SIGSTOP or a debugger): resume it with: kill -CONT {pid}; or end it with: kill -KILL {pid}"
        )
    } else {
        format!("process {pid} may be overloaded; end it with: kill {pid}")
    }
}

/// The one-letter state of process `pid` (`R`, `S`, `T`, ...).
fn process_state(pid: u32) -> Option<u8> {
    let mut stat = Vec::new();
    File::open(format!("/proc/{pid}/stat"))
        .ok()?
        .take(4096)
        .read_to_end(&mut stat)
        .ok()?;
    // "PID (COMM) S ...", where COMM may itself hold ") ".
    let end = stat.iter().rposition(|&b| b == b')')?;
    stat.get(end + 2).copied()
}

/// Records the final status of a tunnel that stopped for good.
pub fn record_failure(dir: &Path, status: &TunnelStatus) -> anyhow::Result<()> {
    let path = failed_path(dir, &status.name);
    std::fs::write(&path, serde_json::to_vec(status)?)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The recorded status of a failed tunnel, if there is one, with the age
/// of its last error brought up to `now`.
pub fn failure(dir: &Path, name: &str, now: SystemTime) -> Option<TunnelStatus> {
    let mut bytes = Vec::new();
    let file = File::open(failed_path(dir, name)).ok()?;
    let recorded = file.metadata().ok()?.modified().ok()?;
    file.take(MAX_ANSWER as u64).read_to_end(&mut bytes).ok()?;
    let status: TunnelStatus = serde_json::from_slice(&bytes).ok()?;
    Some(aged(status, recorded, now))
}

/// A status recorded at `recorded` (the record's modification time), its
/// error's age counted on to `now`: the record says how old the error was
/// when written, which stays true only at that moment.
pub fn aged(mut status: TunnelStatus, recorded: SystemTime, now: SystemTime) -> TunnelStatus {
    let since = now.duration_since(recorded).unwrap_or_default().as_secs();
    status.last_error_secs = status.last_error_secs.map(|s| s.saturating_add(since));
    status
}

/// A bound control socket and the tunnel's lock; the socket file goes
/// away on drop, before the lock is released.
pub struct ControlSocket {
    listener: UnixListener,
    path: PathBuf,
    // Dropped after `Drop::drop` removed the socket (fields drop last).
    _lock: Lock,
}

impl ControlSocket {
    /// Takes the lock of `NAME`, refusing while a tunnel of that name
    /// holds it, and binds `NAME.sock`; a socket there is left over from a
    /// tunnel that was killed (it no longer holds the lock) and replaced.
    pub async fn bind(dir: &Path, name: &str) -> anyhow::Result<ControlSocket> {
        let lock = Lock::acquire(dir, name).await?;
        let path = socket_path(dir, name);
        let _ = std::fs::remove_file(&path);
        let _ = std::fs::remove_file(failed_path(dir, name));
        let listener = UnixListener::bind(&path)
            .with_context(|| format!("cannot listen on {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        Ok(ControlSocket {
            listener,
            path,
            _lock: lock,
        })
    }

    /// Answers requests until `token` is cancelled; `down` cancels it once
    /// answered.
    pub async fn serve(
        self,
        status: Arc<StatusCell>,
        token: CancellationToken,
        tasks: impl Fn() -> u64 + Send + Sync + 'static,
    ) {
        let tasks = Arc::new(tasks);
        let mut conns = JoinSet::new();
        while let Some(accepted) = token.run_until_cancelled(self.listener.accept()).await {
            while conns.try_join_next().is_some() {}
            let Ok((stream, _)) = accepted else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let (status, token, tasks) = (status.clone(), token.clone(), tasks.clone());
            conns.spawn(async move {
                let answer = async {
                    let (read, mut write) = stream.into_split();
                    let mut line = String::new();
                    BufReader::new(read.take_bounded())
                        .read_line(&mut line)
                        .await
                        .ok()?;
                    let (response, stop) = answer(&line, &status, tasks.as_ref());
                    let mut out = serde_json::to_string(&response).ok()?;
                    out.push('\n');
                    write.write_all(out.as_bytes()).await.ok()?;
                    // Only once the answer is delivered: a `down` queued
                    // while this process was stopped, whose client gave up
                    // and said so, is not acted on when it resumes (the
                    // write fails on the closed connection).
                    if stop {
                        token.cancel();
                    }
                    Some(())
                };
                let _ = tokio::time::timeout(CLIENT_TIMEOUT, answer).await;
            });
        }
        conns.shutdown().await;
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Bounds what one request may make us read.
trait TakeBounded: tokio::io::AsyncRead + Sized {
    fn take_bounded(self) -> tokio::io::Take<Self> {
        tokio::io::AsyncReadExt::take(self, MAX_REQUEST)
    }
}

impl<R: tokio::io::AsyncRead> TakeBounded for R {}

fn answer(
    line: &str,
    status: &StatusCell,
    tasks: &(dyn Fn() -> u64 + Send + Sync),
) -> (Response, bool) {
    match serde_json::from_str::<Request>(line.trim()) {
        Ok(Request::Status) => {
            let mut s = status.snapshot();
            s.tasks = Some(tasks());
            let r = Response {
                ok: true,
                status: Some(s),
                error: None,
            };
            (r, false)
        }
        Ok(Request::Down) => {
            let r = Response {
                ok: true,
                status: None,
                error: None,
            };
            (r, true)
        }
        Err(e) => {
            let r = Response {
                ok: false,
                status: None,
                error: Some(format!("bad request: {e}")),
            };
            (r, false)
        }
    }
}

/// Sends one request to the tunnel at `path` and reads its answer (one
/// line of at most [`MAX_ANSWER`] bytes).
pub async fn request(path: &Path, request: Request) -> anyhow::Result<Response> {
    let exchange = async {
        let stream = UnixStream::connect(path)
            .await
            .with_context(|| format!("cannot reach {}", path.display()))?;
        let (read, mut write) = stream.into_split();
        let mut line = serde_json::to_string(&request)?;
        line.push('\n');
        write.write_all(line.as_bytes()).await?;
        let mut answer = Vec::new();
        BufReader::new(read.take(MAX_ANSWER as u64 + 1))
            .read_until(b'\n', &mut answer)
            .await?;
        anyhow::ensure!(
            answer.len() <= MAX_ANSWER,
            "the answer from {} is longer than {} KiB: not a warren tunnel",
            path.display(),
            MAX_ANSWER / 1024
        );
        serde_json::from_slice::<Response>(&answer)
            .with_context(|| format!("unreadable answer from {}", path.display()))
    };
    tokio::time::timeout(CLIENT_TIMEOUT, exchange)
        .await
        .with_context(|| {
            format!(
                "{} did not answer within {CLIENT_TIMEOUT:?}",
                path.display()
            )
        })?
}

/// Every tunnel in `dir` by name: those answering, those whose process
/// is alive but not answering (shown as [`State::NotResponding`]), and
/// those that failed. Sockets left by tunnels whose process is gone are
/// removed.
pub async fn all(dir: &Path) -> anyhow::Result<Vec<TunnelStatus>> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    let names: BTreeSet<String> = entries
        .flatten()
        .filter_map(|e| {
            let path = e.path();
            let ext = path.extension()?;
            let ours = ext == "sock" || ext == "lock" || ext == "failed";
            ours.then(|| path.file_stem()?.to_str().map(str::to_owned))?
        })
        .collect();
    let mut out = Vec::new();
    for name in names {
        out.extend(one(dir, &name).await?);
    }
    Ok(out)
}

/// The status of tunnel `name`, if there is one to show (as [`all`]).
pub async fn one(dir: &Path, name: &str) -> anyhow::Result<Option<TunnelStatus>> {
    let path = socket_path(dir, name);
    let pid = match probe(dir, name)? {
        Probe::Free(_lock) => {
            // Left by a tunnel that was killed; removed under the lock so
            // that no tunnel starting under this name loses its socket.
            if path.exists() {
                let _ = std::fs::remove_file(&path);
            }
            return Ok(failure(dir, name, SystemTime::now()));
        }
        Probe::Live { pid } => pid,
    };
    let why = if path.exists() {
        match request(&path, Request::Status).await {
            Ok(Response {
                status: Some(s), ..
            }) => return Ok(Some(s)),
            Ok(Response { error, .. }) => error.unwrap_or_else(|| "an empty answer".into()),
            Err(e) => format!("{e:#}"),
        }
    } else {
        format!("its control socket {} is gone", path.display())
    };
    let why = format!("{why}; {}", unresponsive_hint(pid));
    Ok(Some(not_responding(name, pid, why)))
}

/// What `status` shows for a live tunnel process that did not answer.
fn not_responding(name: &str, pid: Option<u32>, why: String) -> TunnelStatus {
    TunnelStatus {
        name: name.to_owned(),
        destination: String::new(),
        pid: pid.unwrap_or(0),
        state: State::NotResponding,
        uptime_secs: None,
        reconnects: 0,
        faults: 0,
        last_error: Some(why),
        last_error_secs: None,
        forwards: Vec::new(),
        tasks: None,
        next_attempt_secs: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_one_json_object_each() {
        let cases = [
            (Request::Status, r#"{"cmd":"status"}"#),
            (Request::Down, r#"{"cmd":"down"}"#),
        ];
        for (req, text) in cases {
            assert_eq!(serde_json::to_string(&req).unwrap(), text);
            assert_eq!(serde_json::from_str::<Request>(text).unwrap(), req);
        }
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"reboot"}"#).is_err());
    }

    #[test]
    fn a_bad_request_is_answered_with_the_reason() {
        let status = StatusCell::new("t", "host");
        let (r, stop) = answer("nonsense", &status, &|| 0);
        assert!(!r.ok && !stop);
        assert!(r.error.unwrap().contains("bad request"));
        let (r, stop) = answer("{\"cmd\":\"status\"}\n", &status, &|| 7);
        assert_eq!(r.status.unwrap().tasks, Some(7));
        assert!(!stop);
        let (r, stop) = answer("{\"cmd\":\"down\"}", &status, &|| 0);
        assert!(r.ok && stop);
    }

    #[tokio::test]
    async fn the_lock_tells_a_live_tunnel_from_a_gone_one() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let held = Lock::acquire(dir, "t").await.unwrap();
        let mode = std::fs::metadata(lock_path(dir, "t")).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        match probe(dir, "t").unwrap() {
            Probe::Live { pid } => assert_eq!(pid, Some(std::process::id())),
            Probe::Free(_) => panic!("a held lock was taken"),
        }
        let err = Lock::acquire(dir, "t").await.unwrap_err().to_string();
        assert!(
            err.contains(&format!("already running (pid {})", std::process::id())),
            "{err}"
        );
        drop(held);
        assert!(matches!(probe(dir, "t").unwrap(), Probe::Free(_)));
        // Readers share the lock; a tunnel starting meanwhile waits for them.
        let (Probe::Free(a), Probe::Free(b)) = (probe(dir, "t").unwrap(), probe(dir, "t").unwrap())
        else {
            panic!("readers exclude each other");
        };
        let starting = tokio::spawn({
            let dir = dir.to_owned();
            async move { Lock::acquire(&dir, "t").await }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!starting.is_finished());
        drop((a, b));
        let held = starting.await.unwrap().unwrap();
        assert!(matches!(probe(dir, "t").unwrap(), Probe::Live { .. }));
        drop(held);
        // Another pid in the file (a tunnel that was killed) does not matter.
        std::fs::write(lock_path(dir, "t"), "1\n").unwrap();
        assert!(matches!(probe(dir, "t").unwrap(), Probe::Free(_)));
    }

    #[test]
    fn a_stopped_process_is_told_apart_in_the_hint() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        let signal = |sig: &str| {
            let ok = std::process::Command::new("kill")
                .args([sig, &pid.to_string()])
                .status()
                .unwrap();
            assert!(ok.success());
        };
        assert!(!unresponsive_hint(Some(pid)).contains("-CONT"));
        signal("-STOP");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while process_state(pid) != Some(b'T') {
            assert!(std::time::Instant::now() < deadline, "never stopped");
            std::thread::sleep(Duration::from_millis(10));
        }
        let hint = unresponsive_hint(Some(pid));
        assert!(hint.contains(&format!("kill -CONT {pid}")), "{hint}");
        signal("-KILL");
        child.wait().unwrap();
    }

    #[test]
    fn directories_open_to_others_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let uid = rustix::process::geteuid().as_raw();
        let dir = tmp.path().join("w");
        private_dir(&dir, uid).unwrap();
        let mode = std::fs::metadata(&dir).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = private_dir(&dir, uid).unwrap_err().to_string();
        assert!(err.contains("chmod 700"), "{err}");
        let err = private_dir(&dir, uid + 1).unwrap_err().to_string();
        assert!(err.contains("not a directory owned by"), "{err}");
    }
}
