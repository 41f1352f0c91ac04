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
//! A tunnel that stopped for good leaves `NAME.failed` beside the sockets,
//! its last status with the reason, so `status` still shows it as failed
//! after the process has exited; `down NAME` or a new `up` clears it.

use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use warren_core::tunnel::{StatusCell, TunnelStatus};

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

/// Records the final status of a tunnel that stopped for good.
pub fn record_failure(dir: &Path, status: &TunnelStatus) -> anyhow::Result<()> {
    let path = failed_path(dir, &status.name);
    std::fs::write(&path, serde_json::to_vec(status)?)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The recorded status of a failed tunnel, if there is one.
pub fn failure(dir: &Path, name: &str) -> Option<TunnelStatus> {
    let bytes = std::fs::read(failed_path(dir, name)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// A bound control socket; the file goes away on drop.
pub struct ControlSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl ControlSocket {
    /// Binds `NAME.sock`, refusing when a tunnel of that name answers
    /// there; a socket nobody answers on is left over and replaced.
    pub async fn bind(dir: &Path, name: &str) -> anyhow::Result<ControlSocket> {
        let path = socket_path(dir, name);
        if path.exists() {
            if let Ok(Response {
                status: Some(s), ..
            }) = request(&path, Request::Status).await
            {
                anyhow::bail!(
                    "a tunnel named {name} is already running (pid {}, {}); stop it with: warren tunnel down {name}",
                    s.pid,
                    s.state
                );
            }
            let _ = std::fs::remove_file(&path);
        }
        let _ = std::fs::remove_file(failed_path(dir, name));
        let listener = UnixListener::bind(&path)
            .with_context(|| format!("cannot listen on {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        Ok(ControlSocket { listener, path })
    }

    /// Answers requests until `token` is cancelled; `down` cancels it.
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
                    let response = answer(&line, &status, &token, tasks.as_ref());
                    let mut out = serde_json::to_string(&response).ok()?;
                    out.push('\n');
                    write.write_all(out.as_bytes()).await.ok()
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
    token: &CancellationToken,
    tasks: &(dyn Fn() -> u64 + Send + Sync),
) -> Response {
    match serde_json::from_str::<Request>(line.trim()) {
        Ok(Request::Status) => {
            let mut s = status.snapshot();
            s.tasks = Some(tasks());
            Response {
                ok: true,
                status: Some(s),
                error: None,
            }
        }
        Ok(Request::Down) => {
            token.cancel();
            Response {
                ok: true,
                status: None,
                error: None,
            }
        }
        Err(e) => Response {
            ok: false,
            status: None,
            error: Some(format!("bad request: {e}")),
        },
    }
}

/// Sends one request to the tunnel at `path` and reads its answer.
pub async fn request(path: &Path, request: Request) -> anyhow::Result<Response> {
    let exchange = async {
        let stream = UnixStream::connect(path)
            .await
            .with_context(|| format!("cannot reach {}", path.display()))?;
        let (read, mut write) = stream.into_split();
        let mut line = serde_json::to_string(&request)?;
        line.push('\n');
        write.write_all(line.as_bytes()).await?;
        let mut answer = String::new();
        BufReader::new(read).read_line(&mut answer).await?;
        serde_json::from_str::<Response>(answer.trim())
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

/// Every tunnel answering in `dir`, and those that failed, by name;
/// sockets nobody answers on (a tunnel that was killed) are removed.
pub async fn all(dir: &Path) -> anyhow::Result<Vec<TunnelStatus>> {
    let mut out = Vec::new();
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "sock" || e == "failed"))
        .collect();
    paths.sort();
    for path in paths {
        if path.extension().is_some_and(|e| e == "failed") {
            let name = path.file_stem().unwrap_or_default().to_string_lossy();
            out.extend(failure(dir, &name));
            continue;
        }
        match request(&path, Request::Status).await {
            Ok(Response {
                status: Some(s), ..
            }) => out.push(s),
            _ => {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
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
        let token = CancellationToken::new();
        let r = answer("nonsense", &status, &token, &|| 0);
        assert!(!r.ok);
        assert!(r.error.unwrap().contains("bad request"));
        assert!(!token.is_cancelled());
        let r = answer("{\"cmd\":\"status\"}\n", &status, &token, &|| 7);
        assert_eq!(r.status.unwrap().tasks, Some(7));
        let r = answer("{\"cmd\":\"down\"}", &status, &token, &|| 0);
        assert!(r.ok && token.is_cancelled());
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
