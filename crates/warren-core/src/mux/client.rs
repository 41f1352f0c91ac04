//! The client side of connection sharing: ask a running master (warren's
//! or OpenSSH's) for a session, a stdio forward, a forward, or a control
//! command (`-O check|forward|cancel|exit|stop`).

use std::os::fd::BorrowedFd;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use tokio::net::UnixStream;
use tracing::debug;

use super::fdpass::send_fd;
use super::proto::{self, MuxForward, Reply, Request, read_packet, write_packet};
use super::{MuxError, check_path};

/// A connection to a master, past the hello exchange.
pub struct MuxClient {
    stream: UnixStream,
    path: PathBuf,
    next_id: u32,
}

/// A new session as a multiplexed client asks for it.
#[derive(Debug, Clone, Default)]
pub struct SessionRequest {
    pub tty: bool,
    pub agent: bool,
    pub subsystem: bool,
    /// `None`: no escape character.
    pub escape: Option<u8>,
    pub term: String,
    /// Empty for a login shell.
    pub command: String,
    /// `NAME=value` strings.
    pub env: Vec<String>,
}

/// What happened to a multiplexed session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// The remote command's exit status.
    Exit(u32),
    /// The master closed the connection without one.
    NoStatus,
}

impl MuxClient {
    /// Connects to the master at `path` and exchanges hellos. The socket
    /// must belong to this user (or root).
    pub async fn connect(path: &Path) -> Result<MuxClient, MuxError> {
        check_path(path)?;
        let connect_err = |source| MuxError::Connect {
            path: path.to_owned(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(connect_err)?;
        let me = rustix::process::getuid().as_raw();
        if meta.uid() != me && meta.uid() != 0 {
            return Err(MuxError::NotOwner {
                path: path.to_owned(),
                owner: meta.uid(),
                me,
            });
        }
        let mut stream = UnixStream::connect(path).await.map_err(connect_err)?;
        write_packet(
            &mut stream,
            &Request::Hello {
                version: proto::VERSION,
            }
            .encode(),
        )
        .await?;
        match Reply::decode(&read(&mut stream).await?)? {
            Reply::Hello { version } if version == proto::VERSION => {}
            Reply::Hello { version } => return Err(MuxError::Version(version)),
            other => return Err(MuxError::Protocol(format!("{other:?} instead of hello"))),
        }
        debug!("connected to the master at {}", path.display());
        Ok(MuxClient {
            stream,
            path: path.to_owned(),
            next_id: 0,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `-O check`: the master's pid.
    pub async fn alive(&mut self) -> Result<u32, MuxError> {
        let id = self.id();
        match self.ask(Request::AliveCheck { id }).await? {
            Reply::Alive { pid, .. } => Ok(pid),
            other => Err(unexpected(other)),
        }
    }

    /// `-O exit`.
    pub async fn terminate(&mut self) -> Result<(), MuxError> {
        let id = self.id();
        self.expect_ok(Request::Terminate { id }).await
    }

    /// `-O stop`: the master stops accepting clients and removes its socket.
    pub async fn stop_listening(&mut self) -> Result<(), MuxError> {
        let id = self.id();
        self.expect_ok(Request::StopListening { id }).await
    }

    /// `-O forward` (open) or `-O cancel`; the allocated port for `-R 0`.
    pub async fn forward(
        &mut self,
        open: bool,
        forward: MuxForward,
    ) -> Result<Option<u32>, MuxError> {
        let id = self.id();
        let req = if open {
            Request::OpenForward { id, forward }
        } else {
            Request::CloseForward { id, forward }
        };
        match self.ask(req).await? {
            Reply::Ok { .. } => Ok(None),
            Reply::RemotePort { port, .. } => Ok(Some(port)),
            other => Err(unexpected(other)),
        }
    }

    /// Runs a session through the master on our stdin, stdout and stderr;
    /// `on_open` runs once the master has opened it, `on_tty_fail` if the
    /// master reports the PTY was refused. Ends when the master closes the
    /// connection.
    pub async fn session(
        mut self,
        req: SessionRequest,
        stdio: [BorrowedFd<'_>; 3],
        on_open: impl FnOnce(),
        on_tty_fail: impl FnOnce(),
    ) -> Result<SessionEnd, MuxError> {
        let pid = self.alive().await?;
        let id = self.id();
        let request = Request::NewSession {
            id,
            tty: req.tty,
            x11: false,
            agent: req.agent,
            subsystem: req.subsystem,
            escape: req.escape.map_or(proto::NO_ESCAPE, u32::from),
            term: req.term,
            command: req.command,
            env: req.env,
        };
        write_packet(&mut self.stream, &request.encode()).await?;
        for fd in stdio {
            send_fd(&self.stream, fd).await?;
        }
        let session = match Reply::decode(&read(&mut self.stream).await?)? {
            Reply::SessionOpened { session, .. } => session,
            other => return Err(unexpected(other)),
        };
        debug!(session, master = pid, "multiplexed session open");
        on_open();
        let relay = tokio::spawn(relay_window_changes(pid));
        let mut on_tty_fail = Some(on_tty_fail);
        let mut end = SessionEnd::NoStatus;
        while let Some(body) = read_packet(&mut self.stream).await? {
            match Reply::decode(&body)? {
                Reply::TtyAllocFail { .. } => {
                    if let Some(f) = on_tty_fail.take() {
                        f();
                    }
                }
                Reply::ExitMessage { status, .. } => end = SessionEnd::Exit(status),
                other => {
                    relay.abort();
                    return Err(unexpected(other));
                }
            }
        }
        relay.abort();
        Ok(end)
    }

    /// `-W host:port` through the master, on our stdin and stdout.
    pub async fn stdio_forward(
        mut self,
        host: &str,
        port: u16,
        stdio: [BorrowedFd<'_>; 2],
    ) -> Result<(), MuxError> {
        self.alive().await?;
        let id = self.id();
        let req = Request::StdioForward {
            id,
            host: host.to_owned(),
            port: u32::from(port),
        };
        write_packet(&mut self.stream, &req.encode()).await?;
        for fd in stdio {
            send_fd(&self.stream, fd).await?;
        }
        match Reply::decode(&read(&mut self.stream).await?)? {
            Reply::SessionOpened { .. } => {}
            other => return Err(unexpected(other)),
        }
        // The master moves the bytes; wait for it to close.
        while read_packet(&mut self.stream).await?.is_some() {}
        Ok(())
    }

    fn id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        id
    }

    async fn ask(&mut self, req: Request) -> Result<Reply, MuxError> {
        write_packet(&mut self.stream, &req.encode()).await?;
        Ok(Reply::decode(&read(&mut self.stream).await?)?)
    }

    async fn expect_ok(&mut self, req: Request) -> Result<(), MuxError> {
        match self.ask(req).await {
            Ok(Reply::Ok { .. }) => Ok(()),
            Ok(other) => Err(unexpected(other)),
            // The master may exit before its reply reaches us.
            Err(MuxError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(()),
            Err(e) => Err(e),
        }
    }
}

async fn read(stream: &mut UnixStream) -> Result<Vec<u8>, MuxError> {
    read_packet(stream).await?.ok_or_else(|| {
        MuxError::Io(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the master closed the connection",
        ))
    })
}

fn unexpected(reply: Reply) -> MuxError {
    match reply {
        Reply::PermissionDenied { reason, .. } => MuxError::Refused(reason),
        Reply::Failure { reason, .. } => MuxError::Failed(reason),
        other => MuxError::Protocol(format!("{other:?}")),
    }
}

/// The master reads the window size from the terminal we passed it; it
/// learns of a change by the signal, as OpenSSH's clients tell it.
async fn relay_window_changes(master: u32) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut winch) = signal(SignalKind::window_change()) else {
        return;
    };
    let Some(pid) = i32::try_from(master)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return;
    };
    while winch.recv().await.is_some() {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::WINCH);
    }
}

/// The three stdio descriptors of this process.
pub fn process_stdio() -> [BorrowedFd<'static>; 3] {
    [
        rustix::stdio::stdin(),
        rustix::stdio::stdout(),
        rustix::stdio::stderr(),
    ]
}
