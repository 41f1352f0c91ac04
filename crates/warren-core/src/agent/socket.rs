//! The agent's socket: by default `$TMPDIR/ssh-XXXXXXXXXX/agent.PID` in a
//! fresh 0700 directory, the socket itself 0600; removed (with the
//! directory) when the agent ends. Connections from other users are
//! refused by their SO_PEERCRED uid, as ssh-agent does (root may connect).

use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use tokio::net::{UnixListener, UnixStream};
use tracing::warn;

/// A bound agent socket; the file (and the directory warren made for it)
/// go away on drop.
pub struct AgentSocket {
    pub listener: UnixListener,
    pub path: PathBuf,
    dir: Option<PathBuf>,
}

impl AgentSocket {
    /// Binds at `path`, or in a new private directory when `None`.
    pub fn bind(path: Option<&Path>) -> std::io::Result<AgentSocket> {
        let (path, dir) = match path {
            Some(p) => (p.to_owned(), None),
            None => {
                let dir = private_dir()?;
                (dir.join(format!("agent.{}", std::process::id())), Some(dir))
            }
        };
        let listener = UnixListener::bind(&path)
            .map_err(|e| std::io::Error::new(e.kind(), format!("bind {}: {e}", path.display())))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        Ok(AgentSocket {
            listener,
            path,
            dir,
        })
    }

    /// The directory made for the socket, if warren made one.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }
}

impl Drop for AgentSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

fn private_dir() -> std::io::Result<PathBuf> {
    let base = std::env::var_os("TMPDIR")
        .filter(|t| !t.is_empty())
        .map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    const LETTERS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut last = None;
    for _ in 0..16 {
        let suffix: String = (0..10)
            .map(|_| char::from(LETTERS[rand::random_range(0..LETTERS.len())]))
            .collect();
        let dir = base.join(format!("ssh-{suffix}"));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
                return Ok(dir);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => {
                return Err(std::io::Error::new(
                    e.kind(),
                    format!("create a directory in {}: {e}", base.display()),
                ));
            }
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free directory name")))
}

/// Whether the peer may use the agent: the same uid as the agent, or root.
pub fn peer_allowed(stream: &UnixStream) -> bool {
    let me = rustix::process::geteuid().as_raw();
    match stream.peer_cred() {
        Ok(cred) if cred.uid() == me || cred.uid() == 0 => true,
        Ok(cred) => {
            warn!(
                "refused agent connection from uid {} (agent runs as {me})",
                cred.uid()
            );
            false
        }
        Err(e) => {
            warn!("refused agent connection: cannot read its credentials: {e}");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt as _;

    #[tokio::test]
    async fn default_socket_is_0600_in_a_0700_dir_and_cleaned_up() {
        let tmp = tempfile::tempdir().expect("tmp");
        let path = {
            let dir = tmp.path().join("ssh-test");
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&dir)
                .expect("dir");
            dir.join("agent.sock")
        };
        let sock = AgentSocket::bind(Some(&path)).expect("bind");
        assert_eq!(
            std::fs::metadata(&path).expect("stat").mode() & 0o777,
            0o600
        );
        let client = UnixStream::connect(&path).await.expect("connect");
        let (server, _) = sock.listener.accept().await.expect("accept");
        assert!(peer_allowed(&server), "our own uid is allowed");
        drop(client);
        drop(sock);
        assert!(!path.exists(), "socket removed");
    }

    #[test]
    fn private_dir_is_0700() {
        let dir = private_dir().expect("dir");
        assert_eq!(std::fs::metadata(&dir).expect("stat").mode() & 0o777, 0o700);
        std::fs::remove_dir(&dir).expect("rm");
    }
}
