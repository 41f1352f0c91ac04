//! ProxyCommand: a child run through `sh -c` whose stdin/stdout carry the
//! SSH connection. Its stderr stays ours, so its messages reach the user.
//! The child is killed when the transport is dropped.

use std::pin::Pin;
use std::process::Stdio;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tracing::info;

use super::error::SessionError;

/// The child's stdout (read) and stdin (write) as one stream.
pub struct ProxyStream {
    stdout: ChildStdout,
    stdin: ChildStdin,
    _child: Child,
}

/// Starts `command` (tokens already expanded).
pub fn spawn(command: &str) -> Result<ProxyStream, SessionError> {
    info!("Executing proxy command: exec {command}");
    let fail = |source| SessionError::ProxyCommand {
        command: command.to_owned(),
        source,
    };
    let shell = std::env::var("SHELL")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "/bin/sh".into());
    let mut child = Command::new(shell)
        .arg("-c")
        .arg(format!("exec {command}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(fail)?;
    let missing = || fail(std::io::Error::other("no stdio pipe"));
    let stdout = child.stdout.take().ok_or_else(missing)?;
    let stdin = child.stdin.take().ok_or_else(missing)?;
    Ok(ProxyStream {
        stdout,
        stdin,
        _child: child,
    })
}

impl AsyncRead for ProxyStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stdout).poll_read(cx, buf)
    }
}

impl AsyncWrite for ProxyStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stdin).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stdin).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stdin).poll_shutdown(cx)
    }
}
