//! Agent forwarding on the server side: for a session whose client sent
//! `auth-agent-req@openssh.com`, a unix socket in a fresh 0700 directory
//! (named by SSH_AUTH_SOCK in the session); each connection to it opens an
//! `auth-agent@openssh.com` channel back to the client, whose agent
//! answers.
//!
//! Design choice: the directory is private (0700) like sshd's
//! `/tmp/ssh-XXXX/agent.PID`, so only the login user's processes reach the
//! agent, and the socket and directory are removed when the connection
//! ends.

use std::os::unix::fs::DirBuilderExt as _;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use russh::server::Handle;
use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;
use tracing::debug;
use warren_core::forward::SERVER_QUEUE_LIMIT;
use warren_core::forward::pump::{Counters, pump};

/// Creates the socket and serves it until `token` is cancelled; returns
/// its path.
pub fn listen(handle: Handle, token: CancellationToken) -> std::io::Result<PathBuf> {
    let base = std::env::var_os("TMPDIR")
        .filter(|v| !v.is_empty())
        .map_or_else(std::env::temp_dir, PathBuf::from);
    let dir = base.join(format!("warren-agent-{:016x}", rand::random::<u64>()));
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    let path = dir.join("agent.sock");
    let listener = match UnixListener::bind(&path) {
        Ok(l) => l,
        Err(e) => {
            let _ = std::fs::remove_dir(&dir);
            return Err(e);
        }
    };
    let socket = path.clone();
    tokio::spawn(async move {
        while let Some(accepted) = token.run_until_cancelled(listener.accept()).await {
            let Ok((stream, _)) = accepted else {
                continue;
            };
            let (handle, token) = (handle.clone(), token.clone());
            tokio::spawn(async move {
                match handle.channel_open_agent().await {
                    Ok(channel) => {
                        tokio::select! {
                            _ = pump(stream, channel, Bytes::new(), SERVER_QUEUE_LIMIT, Arc::new(Counters::default())) => {}
                            () = token.cancelled() => {}
                        }
                    }
                    Err(e) => {
                        debug!(error = %e, "agent forwarding: the client refused the channel")
                    }
                }
            });
        }
        let _ = std::fs::remove_file(&socket);
        let _ = std::fs::remove_dir(&dir);
    });
    Ok(path)
}
