//! The master side of connection sharing: a unix socket beside an
//! authenticated connection, serving OpenSSH's mux protocol to warren's
//! and OpenSSH's clients alike.
//!
//! Each client connection is one task. Sessions run on the descriptors the
//! client passed (see [`super::passed`]); the client only waits for the
//! exit status. The socket is created 0600 under a temporary name and
//! linked into place, so nobody connects to a half-made socket, and a
//! second master never replaces a live one; connections from other users
//! are refused (SO_PEERCRED).

use std::io::Write as _;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use russh::client::Handle;
use tokio::io::AsyncReadExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::fdpass::recv_fd;
use super::proto::{self, Reply, Request, read_packet, write_packet};
use super::{MuxError, check_path, from_mux, passed, proxy};
use crate::exec::{self, EscapeContext, Exit, RunOptions, Stdio};
use crate::forward::manage::Forwards;
use crate::forward::pump::{Counters, pump};
use crate::forward::{Endpoint, local};
use crate::prompt::Prompter;
use crate::session::ClientHandler;
use crate::terminal;

/// How a master behaves.
pub struct MasterOptions {
    /// The destination, for messages.
    pub host: String,
    /// ControlMaster ask/autoask: confirm each new session.
    pub ask: bool,
    pub prompter: Arc<dyn Prompter>,
    /// Bytes a stdio forward may queue toward a slow reader.
    pub queue_limit: usize,
    /// This connection forwards the agent (ForwardAgent): a client's
    /// session may ask for it.
    pub forward_agent: bool,
}

/// A listening control socket, removed when dropped (if still ours).
pub struct ControlSocket {
    listener: UnixListener,
    path: PathBuf,
    id: (u64, u64),
}

impl ControlSocket {
    /// Creates the socket at `path`, 0600; fails if one is there already.
    pub fn bind(path: &Path) -> Result<ControlSocket, MuxError> {
        check_path(path)?;
        let listen_err = |source| MuxError::Listen {
            path: path.to_owned(),
            source,
        };
        let temp = PathBuf::from(format!(
            "{}.{}",
            path.display(),
            rand::random::<u64>() & 0xffff_ffff_ffff
        ));
        let listener = UnixListener::bind(&temp).map_err(listen_err)?;
        let made = std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o600))
            .and_then(|()| std::fs::hard_link(&temp, path));
        let _ = std::fs::remove_file(&temp);
        match made {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(MuxError::Exists {
                    path: path.to_owned(),
                });
            }
            Err(e) => return Err(listen_err(e)),
        }
        let meta = std::fs::metadata(path).map_err(listen_err)?;
        Ok(ControlSocket {
            listener,
            path: path.to_owned(),
            id: (meta.dev(), meta.ino()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        // Only our own socket: another master may have taken the name.
        if let Ok(meta) = std::fs::symlink_metadata(&self.path)
            && (meta.dev(), meta.ino()) == self.id
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A master: the connection's handle and forwards, and its clients.
pub struct Master {
    handle: Arc<Handle<ClientHandler>>,
    forwards: Arc<Forwards>,
    opts: MasterOptions,
    clients: watch::Sender<usize>,
    sessions: AtomicU32,
    stop: CancellationToken,
    terminate: CancellationToken,
}

impl Master {
    pub fn new(
        handle: Arc<Handle<ClientHandler>>,
        forwards: Arc<Forwards>,
        opts: MasterOptions,
    ) -> Arc<Master> {
        Arc::new(Master {
            handle,
            forwards,
            opts,
            clients: watch::Sender::new(0),
            sessions: AtomicU32::new(1),
            stop: CancellationToken::new(),
            terminate: CancellationToken::new(),
        })
    }

    /// How many clients are connected, as it changes.
    pub fn clients(&self) -> watch::Receiver<usize> {
        self.clients.subscribe()
    }

    /// Cancelled by `-O exit`.
    pub fn terminated(&self) -> CancellationToken {
        self.terminate.clone()
    }

    /// Stops accepting clients (and removes the socket); open ones go on.
    pub fn stop_listening(&self) {
        self.stop.cancel();
    }

    /// Cancelled once the master stops listening (`-O stop`, or its own
    /// end): a master with no session of its own then ends with its last
    /// client, as ssh's.
    pub fn stopped(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Accepts clients until told to stop; removes the socket then.
    pub async fn serve(self: Arc<Self>, socket: ControlSocket) {
        info!(
            "multiplexing master listening on {}",
            socket.path().display()
        );
        loop {
            let accepted = tokio::select! {
                a = socket.listener.accept() => a,
                () = self.stop.cancelled() => break,
                () = self.terminate.cancelled() => break,
            };
            match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(self.clone().client(stream));
                }
                Err(e) => {
                    warn!("control socket accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        debug!("control socket {} closed", socket.path().display());
    }

    async fn client(self: Arc<Self>, mut stream: UnixStream) {
        let me = rustix::process::getuid().as_raw();
        match stream.peer_cred() {
            Ok(cred) if cred.uid() == me || cred.uid() == 0 => {}
            Ok(cred) => {
                warn!(
                    "refusing a multiplexing client of uid {} (the master runs as uid {me})",
                    cred.uid()
                );
                return;
            }
            Err(e) => {
                warn!("cannot tell who connected to the control socket: {e}");
                return;
            }
        }
        self.clients.send_modify(|n| *n += 1);
        let _count = ClientCount(&self.clients);
        if let Err(e) = self.converse(&mut stream).await {
            debug!("multiplexing client: {e}");
        }
    }

    async fn converse(self: &Arc<Self>, stream: &mut UnixStream) -> Result<(), MuxError> {
        let hello = Reply::Hello {
            version: proto::VERSION,
        };
        write_packet(stream, &hello.encode()).await?;
        let Some(body) = read_packet(stream).await? else {
            return Ok(());
        };
        match Request::decode(&body)? {
            Request::Hello { version } if version == proto::VERSION => {}
            Request::Hello { version } => return Err(MuxError::Version(version)),
            other => return Err(MuxError::Protocol(format!("{other:?} before hello"))),
        }
        while let Some(body) = read_packet(stream).await? {
            let reply = match Request::decode(&body)? {
                Request::Hello { .. } => {
                    return Err(MuxError::Protocol("hello received twice".into()));
                }
                Request::AliveCheck { id } => Reply::Alive {
                    id,
                    pid: std::process::id(),
                },
                Request::Terminate { id } => {
                    info!("exit requested through the control socket");
                    write_packet(stream, &Reply::Ok { id }.encode()).await?;
                    self.terminate.cancel();
                    return Ok(());
                }
                Request::StopListening { id } => {
                    info!("stop listening requested through the control socket");
                    self.stop.cancel();
                    Reply::Ok { id }
                }
                Request::OpenForward { id, forward } => match from_mux(&forward) {
                    Err(reason) => Reply::Failure { id, reason },
                    Ok(spec) => match self.forwards.add(&spec).await {
                        Ok(added) => match added.allocated_port {
                            Some(port) => Reply::RemotePort { id, port },
                            None => Reply::Ok { id },
                        },
                        Err(e) => Reply::Failure {
                            id,
                            reason: warren_wire::Chain(&e).to_string(),
                        },
                    },
                },
                Request::CloseForward { id, forward } => match from_mux(&forward) {
                    Err(reason) => Reply::Failure { id, reason },
                    Ok(spec) => match self.forwards.remove(&spec).await {
                        Ok(()) => Reply::Ok { id },
                        Err(e) => Reply::Failure {
                            id,
                            reason: warren_wire::Chain(&e).to_string(),
                        },
                    },
                },
                Request::NewSession {
                    id,
                    tty,
                    agent,
                    subsystem,
                    escape,
                    term,
                    command,
                    env,
                    ..
                } => {
                    let run = RunOptions {
                        command: (!command.is_empty() || subsystem).then_some(command),
                        subsystem,
                        pty: tty,
                        term,
                        env: env
                            .iter()
                            .filter_map(|e| e.split_once('='))
                            .map(|(k, v)| (k.to_owned(), v.to_owned()))
                            .collect(),
                        stdin_null: false,
                        forward_agent: agent && self.opts.forward_agent,
                        escape_char: if tty && escape != proto::NO_ESCAPE {
                            u8::try_from(escape).ok()
                        } else {
                            None
                        },
                        forwards: self.forwards.list(),
                        escapes: EscapeContext {
                            forwards: Some(self.forwards.clone()),
                            log_level: None,
                            multiplexed: true,
                        },
                        x11_request: None,
                        x11: None,
                    };
                    return self.session(stream, id, run).await;
                }
                Request::StdioForward { id, host, port } => {
                    return self.stdio_forward(stream, id, host, port).await;
                }
                Request::Proxy { id } => {
                    if !self.permitted().await {
                        let reason = "Permission denied".to_owned();
                        write_packet(stream, &Reply::PermissionDenied { id, reason }.encode())
                            .await?;
                        continue;
                    }
                    write_packet(stream, &Reply::Proxy { id }.encode()).await?;
                    info!("multiplexing client in proxy mode");
                    return Ok(
                        proxy::serve(self.handle.clone(), stream, self.opts.forward_agent).await?,
                    );
                }
                Request::Other { kind, id } => {
                    debug!("unsupported multiplexing request 0x{kind:08x}");
                    Reply::Failure {
                        id,
                        reason: "unsupported request".into(),
                    }
                }
            };
            write_packet(stream, &reply.encode()).await?;
        }
        Ok(())
    }

    /// Whether the user lets this client share the connection
    /// (ControlMaster ask).
    async fn permitted(&self) -> bool {
        if !self.opts.ask {
            return true;
        }
        let prompter = self.opts.prompter.clone();
        let prompt = format!("Allow shared connection to {}? ", self.opts.host);
        let answer = tokio::task::spawn_blocking(move || prompter.ask(&prompt))
            .await
            .ok()
            .flatten();
        matches!(
            answer.as_deref().map(str::trim),
            Some("" | "yes" | "y" | "Yes" | "YES")
        )
    }

    async fn receive_fds<const N: usize>(stream: &UnixStream) -> Result<[OwnedFd; N], MuxError> {
        let mut fds = Vec::with_capacity(N);
        for _ in 0..N {
            fds.push(recv_fd(stream).await?);
        }
        fds.try_into()
            .map_err(|_| MuxError::Protocol("descriptor count".into()))
    }

    async fn session(
        &self,
        stream: &mut UnixStream,
        id: u32,
        run: RunOptions,
    ) -> Result<(), MuxError> {
        let fds: [OwnedFd; 3] = match Self::receive_fds(stream).await {
            Ok(fds) => fds,
            Err(e) => {
                let reason = "did not receive file descriptors".to_owned();
                let _ = write_packet(stream, &Reply::Failure { id, reason }.encode()).await;
                return Err(e);
            }
        };
        if !self.permitted().await {
            let reason = "Permission denied".to_owned();
            write_packet(stream, &Reply::PermissionDenied { id, reason }.encode()).await?;
            return Ok(());
        }
        let session = self.sessions.fetch_add(1, Ordering::Relaxed);
        let term_fd = (run.pty && terminal::is_terminal(fds[0].as_fd()))
            .then(|| fds[0].try_clone().ok())
            .flatten();
        let err_fd = fds[2].try_clone().ok();
        let ([stdin, stdout, stderr], restore) = passed::wrap(fds);
        let stdio = Stdio {
            stdin: Box::new(stdin),
            stdout: Box::new(stdout),
            stderr: Box::new(stderr),
            terminal: term_fd,
            raw_mode: false,
        };
        write_packet(stream, &Reply::SessionOpened { id, session }.encode()).await?;
        info!(session, command = ?run.command, "multiplexed session");

        let (mut control_read, mut control_write) = stream.split();
        let (tx, mut rx) = mpsc::unbounded_channel::<Reply>();
        let tty_fail = tx.clone();
        let running = exec::run_with(&self.handle, &run, stdio, move || {
            let _ = tty_fail.send(Reply::TtyAllocFail { session });
        });
        let mut running = std::pin::pin!(running);
        // The client only waits; it closing means it was interrupted.
        let client_gone = async {
            let mut byte = [0u8; 1];
            let _ = control_read.read(&mut byte).await;
        };
        let mut client_gone = std::pin::pin!(client_gone);
        let outcome = loop {
            tokio::select! {
                r = &mut running => break Some(r),
                Some(reply) = rx.recv() => write_packet(&mut control_write, &reply.encode()).await?,
                () = &mut client_gone => break None,
            }
        };
        drop(restore);
        match outcome {
            None => debug!(session, "multiplexing client left; session abandoned"),
            Some(Ok(Exit::Status(status))) => {
                while let Ok(reply) = rx.try_recv() {
                    write_packet(&mut control_write, &reply.encode()).await?;
                }
                let exit = Reply::ExitMessage { session, status };
                write_packet(&mut control_write, &exit.encode()).await?;
            }
            // No status to report: the client exits 255, as ssh's would.
            Some(Ok(_)) => {}
            // The client's stdout is a pipe nobody reads (`| head -1`):
            // silent, as a session of its own would be.
            Some(Err(e)) if e.is_closed_output() => {}
            Some(Err(e)) => {
                if let Some(fd) = err_fd {
                    let _ = std::fs::File::from(fd)
                        .write_all(format!("warren: {}\r\n", warren_wire::Chain(&e)).as_bytes());
                }
            }
        }
        Ok(())
    }

    async fn stdio_forward(
        &self,
        stream: &mut UnixStream,
        id: u32,
        host: String,
        port: u32,
    ) -> Result<(), MuxError> {
        let [input, output]: [OwnedFd; 2] = Self::receive_fds(stream).await?;
        let Ok(port) = u16::try_from(port) else {
            let reason = format!("invalid port {port}");
            write_packet(stream, &Reply::Failure { id, reason }.encode()).await?;
            return Ok(());
        };
        let target = Endpoint::Tcp {
            host: Some(host),
            port,
        };
        let channel = match local::open(&self.handle, &target, "127.0.0.1", 0).await {
            Ok(c) => c,
            Err(e) => {
                let reason = format!("stdio forwarding to {target} failed: {e}");
                write_packet(stream, &Reply::Failure { id, reason }.encode()).await?;
                return Ok(());
            }
        };
        let session = self.sessions.fetch_add(1, Ordering::Relaxed);
        write_packet(stream, &Reply::SessionOpened { id, session }.encode()).await?;
        info!(session, "multiplexed stdio forward to {target}");
        let ([input, output], restore) = passed::wrap([input, output]);
        pump(
            tokio::io::join(input, output),
            channel,
            Bytes::new(),
            self.opts.queue_limit,
            Arc::new(Counters::default()),
        )
        .await;
        drop(restore);
        Ok(())
    }
}

/// Counts a client out when its task ends, however it ends.
struct ClientCount<'a>(&'a watch::Sender<usize>);

impl Drop for ClientCount<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// ControlPersist: returns once no client has been connected for `idle`
/// (at once if `idle` is zero and none is).
pub async fn idle_for(mut clients: watch::Receiver<usize>, idle: Duration) {
    loop {
        if *clients.borrow_and_update() == 0 {
            tokio::select! {
                () = tokio::time::sleep(idle) => return,
                changed = clients.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
            }
        } else if clients.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn persist_waits_for_idle_time_after_the_last_client() {
        let (tx, rx) = watch::channel(1usize);
        let start = tokio::time::Instant::now();
        let idle = tokio::spawn(idle_for(rx, Duration::from_secs(600)));
        tokio::time::sleep(Duration::from_secs(1000)).await;
        assert!(!idle.is_finished(), "a connected client keeps the master");
        tx.send_replace(0);
        tokio::time::sleep(Duration::from_secs(599)).await;
        assert!(!idle.is_finished(), "ended before the idle time");
        // A client coming and going restarts the clock.
        tx.send_replace(1);
        tokio::time::sleep(Duration::from_secs(5)).await;
        tx.send_replace(0);
        tokio::time::sleep(Duration::from_secs(599)).await;
        assert!(!idle.is_finished());
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(idle.is_finished(), "did not end after the idle time");
        assert!(start.elapsed() >= Duration::from_secs(2205));
    }

    #[test]
    fn the_socket_is_private_and_never_replaced() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _guard = rt.enter();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctl");
        let first = ControlSocket::bind(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let second = ControlSocket::bind(&path);
        assert!(matches!(second, Err(MuxError::Exists { .. })));
        drop(first);
        assert!(!path.exists(), "the socket is removed with its master");
        // No temporary names left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
