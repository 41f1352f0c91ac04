//! The listener and the life of each connection: accept, cap the
//! connections that have not authenticated, hold back sources that keep
//! failing, give each connection LoginGraceTime to authenticate, and on
//! shutdown stop accepting, let sessions finish for a grace period, then
//! cut them.
//!
//! Design choice: connections are accepted here and handed to russh with
//! `run_stream` (not russh's own accept loop), so every limit is applied
//! before russh spends anything on a connection, and every connection task
//! lives in one `JoinSet` that shutdown can wait for.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::keys::{HashAlg, PublicKey};
use russh::{Disconnect, MethodKind, MethodSet};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::ServerError;
use crate::config::ServerConfig;
use crate::handler::Connection;
use crate::limits::Penalties;

/// What every connection of one server shares.
pub(crate) struct Shared {
    pub config: ServerConfig,
    pub local_addr: SocketAddr,
    pub penalties: Mutex<Penalties>,
}

/// A bound server; [`Server::run`] serves it until shut down.
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
    russh: Arc<russh::server::Config>,
    host_public: PublicKey,
    stop: CancellationToken,
}

/// Asks a running server to shut down (gracefully: see
/// [`ServerConfig::shutdown_grace`]).
#[derive(Debug, Clone)]
pub struct ShutdownHandle(CancellationToken);

impl ShutdownHandle {
    pub fn shutdown(&self) {
        self.0.cancel();
    }
}

impl Server {
    /// Binds the listening socket; nothing is served until [`Server::run`].
    pub async fn bind(config: ServerConfig) -> Result<Server, ServerError> {
        let host_public = config
            .host_keys
            .first()
            .ok_or(ServerError::NoHostKey)?
            .public_key()
            .clone();
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServerError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: config.listen,
            source,
        })?;
        let russh = Arc::new(russh_config(&config));
        Ok(Server {
            listener,
            shared: Arc::new(Shared {
                config,
                local_addr,
                penalties: Mutex::new(Penalties::default()),
            }),
            russh,
            host_public,
            stop: CancellationToken::new(),
        })
    }

    /// The bound address (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// The host key clients will see.
    pub fn host_public_key(&self) -> &PublicKey {
        &self.host_public
    }

    /// `SHA256:...` of the host key, as `ssh-keygen -l` prints it.
    pub fn host_key_fingerprint(&self) -> String {
        self.host_public.fingerprint(HashAlg::Sha256).to_string()
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.stop.clone())
    }

    /// Serves connections until shut down, then waits for the sessions
    /// (at most the grace period) and returns.
    pub async fn run(self) -> Result<(), ServerError> {
        let Server {
            listener,
            shared,
            russh,
            stop,
            ..
        } = self;
        let startups = Arc::new(Semaphore::new(shared.config.max_startups.max(1)));
        let kill = CancellationToken::new();
        let mut connections = JoinSet::new();
        let result = loop {
            let accepted = tokio::select! {
                () = stop.cancelled() => break Ok(()),
                accepted = listener.accept() => accepted,
                Some(_) = connections.join_next() => continue,
            };
            let (stream, peer) = match accepted {
                Ok(a) => a,
                Err(e) if is_transient_accept_error(&e) => {
                    warn!(error = %e, "accept failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                Err(source) => {
                    break Err(ServerError::Accept {
                        addr: shared.local_addr,
                        source,
                    });
                }
            };
            let Ok(permit) = startups.clone().try_acquire_owned() else {
                warn!(%peer, max = shared.config.max_startups, "refused connection: too many unauthenticated connections");
                continue;
            };
            info!(%peer, "connection");
            connections.spawn(serve_connection(
                shared.clone(),
                russh.clone(),
                stream,
                peer,
                permit,
                kill.child_token(),
            ));
        };
        drop(listener);
        drain(&mut connections, shared.config.shutdown_grace, &kill).await;
        result
    }
}

/// Lets connections finish for `grace`, then cuts the rest.
async fn drain(connections: &mut JoinSet<()>, grace: Duration, kill: &CancellationToken) {
    if !connections.is_empty() {
        info!(
            open = connections.len(),
            grace_secs = grace.as_secs(),
            "shutting down: waiting for open sessions"
        );
        let wait_all = async { while connections.join_next().await.is_some() {} };
        if tokio::time::timeout(grace, wait_all).await.is_err() {
            info!(
                open = connections.len(),
                "grace period over: closing the rest"
            );
        }
    }
    kill.cancel();
    let wait_all = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(5), wait_all)
        .await
        .is_err()
    {
        connections.abort_all();
    }
    info!("server stopped");
}

fn is_transient_accept_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock
    ) || matches!(e.raw_os_error(), Some(code) if code == rustix::io::Errno::MFILE.raw_os_error() || code == rustix::io::Errno::NFILE.raw_os_error() || code == rustix::io::Errno::NOBUFS.raw_os_error() || code == rustix::io::Errno::NOMEM.raw_os_error())
}

fn russh_config(config: &ServerConfig) -> russh::server::Config {
    let mut methods = MethodSet::empty();
    methods.push(MethodKind::PublicKey);
    russh::server::Config {
        server_id: russh::SshId::Standard(std::borrow::Cow::Borrowed(concat!(
            "SSH-2.0-warren_",
            env!("CARGO_PKG_VERSION")
        ))),
        methods,
        auth_rejection_time: Duration::from_millis(200),
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys: config.host_keys.clone(),
        // russh counts the client's initial "none" probe as an attempt;
        // sshd does not.
        max_auth_attempts: config.max_auth_tries as usize + 1,
        inactivity_timeout: config.idle_timeout,
        window_size: config.window_size,
        maximum_packet_size: 65535,
        nodelay: true,
        ..Default::default()
    }
}

/// One connection from accept to close.
async fn serve_connection(
    shared: Arc<Shared>,
    russh: Arc<russh::server::Config>,
    stream: TcpStream,
    peer: SocketAddr,
    permit: OwnedSemaphorePermit,
    token: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let grace = shared.config.login_grace_time;
    let backoff = lock(&shared.penalties).delay(peer.ip(), tokio::time::Instant::now());
    if !backoff.is_zero() {
        debug!(%peer, delay_ms = backoff.as_millis() as u64, "holding back a source with failed logins");
        tokio::time::sleep(backoff).await;
    }
    let (authed_tx, authed_rx) = oneshot::channel();
    let handler = Connection::new(shared.clone(), peer, token.clone(), authed_tx);
    let start = tokio::time::timeout(grace, russh::server::run_stream(russh, stream, handler));
    let session = match start.await {
        Ok(Ok(session)) => session,
        Ok(Err(e)) => {
            info!(%peer, error = %e, "connection closed before key exchange");
            return;
        }
        Err(_) => {
            info!(%peer, "connection closed: no SSH greeting within the login grace time");
            return;
        }
    };
    let handle = session.handle();
    tokio::pin!(session);
    let authenticated = tokio::select! {
        r = &mut session => {
            log_end(peer, r, false);
            token.cancel();
            return;
        }
        r = authed_rx => r.is_ok(),
        () = tokio::time::sleep(grace) => {
            info!(%peer, "connection closed: not authenticated within the login grace time");
            false
        }
        () = token.cancelled() => false,
    };
    drop(permit);
    if authenticated {
        tokio::select! {
            r = &mut session => {
                log_end(peer, r, true);
                token.cancel();
                return;
            }
            () = token.cancelled() => {}
        }
    }
    let reason = if token.is_cancelled() {
        "server shutting down"
    } else {
        "login grace time exceeded"
    };
    let _ = handle
        .disconnect(Disconnect::ByApplication, reason.into(), String::new())
        .await;
    token.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(2), &mut session).await;
    info!(%peer, reason, "connection closed");
}

fn log_end(peer: SocketAddr, result: Result<(), russh::Error>, authenticated: bool) {
    match result {
        Ok(()) => info!(%peer, "connection closed"),
        Err(e) if !authenticated => info!(%peer, error = %e, "connection closed during login"),
        Err(e) => info!(%peer, error = %e, "connection closed"),
    }
}

/// Locks a mutex, recovering it if a panicking holder poisoned it (the
/// data here stays valid at every step).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
