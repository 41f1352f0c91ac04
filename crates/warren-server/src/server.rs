//! The listener and the life of each connection: accept, refuse sources
//! under a penalty (PerSourcePenalties), drop early when too many
//! connections have not authenticated (MaxStartups), give each connection
//! LoginGraceTime to authenticate, penalise it by how it ended, and on
//! shutdown stop accepting, let sessions finish for a grace period, then
//! cut them.
//!
//! Design choice: connections are accepted here and handed to russh with
//! `run_stream` (not russh's own accept loop), so every limit is applied
//! before russh spends anything on a connection, and every connection task
//! lives in one `JoinSet` that shutdown can wait for.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::keys::{HashAlg, PublicKey};
use russh::{Disconnect, MethodKind, MethodSet};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use warren_wire::Escaped;

use crate::ServerError;
use crate::config::ServerConfig;
use crate::handler::{Attempts, Connection, KeysCache};
use crate::penalties::{Event, Penalties};
use crate::startups::{Admission, Banner, LogBudget, Place, SILENT_AFTER, Startups, Watched};

/// What every connection of one server shares.
pub(crate) struct Shared {
    pub config: ServerConfig,
    pub local_addr: SocketAddr,
    pub penalties: Mutex<Penalties>,
    pub startups: Arc<Mutex<Startups>>,
    /// The authorized_keys last read, so a bad line is reported once per
    /// change of the file rather than at every login.
    pub keys: Mutex<KeysCache>,
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
                local_addr,
                penalties: Mutex::new(Penalties::new(
                    config.per_source_penalties.clone(),
                    config.per_source_penalty_exempt_list.clone(),
                    config.per_source_net_block_size,
                )),
                startups: Arc::default(),
                keys: Mutex::default(),
                config,
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
        let kill = CancellationToken::new();
        let mut connections = JoinSet::new();
        let mut sources: HashMap<tokio::task::Id, SocketAddr> = HashMap::new();
        let mut gate = Gate::default();
        let result = loop {
            let accepted = tokio::select! {
                () = stop.cancelled() => break Ok(()),
                accepted = listener.accept() => accepted,
                Some(done) = connections.join_next_with_id() => {
                    reap(&shared, &mut sources, done);
                    continue;
                }
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
            let Some((place, banner, evict)) = gate.admit(&shared, peer) else {
                // sshd's courtesy line to a client it turns away.
                let _ = stream.try_write(b"Not allowed at this time\r\n");
                continue;
            };
            info!(%peer, "connection");
            let task = connections.spawn(serve_connection(
                shared.clone(),
                russh.clone(),
                Accepted {
                    stream,
                    peer,
                    place,
                    banner,
                    evict,
                },
                kill.child_token(),
            ));
            sources.insert(task.id(), peer);
        };
        drop(listener);
        drain(&mut connections, shared.config.shutdown_grace, &kill).await;
        result
    }
}

/// The checks a new connection passes before anything is spent on it:
/// PerSourcePenalties, then MaxStartups.
struct Gate {
    penalty_log: LogBudget,
    startups_log: LogBudget,
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            penalty_log: LogBudget::new(8),
            startups_log: LogBudget::new(4),
        }
    }
}

impl Gate {
    fn admit(
        &mut self,
        shared: &Arc<Shared>,
        peer: SocketAddr,
    ) -> Option<(Place, Arc<Banner>, CancellationToken)> {
        let now = Instant::now();
        if let Err(refusal) = lock(&shared.penalties).check(peer.ip(), now) {
            if let Some(hidden) = self.penalty_log.take(now) {
                info!(%peer, "refused connection: {refusal} (PerSourcePenalties){}", more(hidden));
            }
            return None;
        }
        let limit = &shared.config.max_startups;
        let roll = rand::random_range(0..100u32);
        let admission = lock(&shared.startups).admit(limit, peer, now, roll);
        match admission {
            Admission::Drop { startups } => {
                if let Some(hidden) = self.startups_log.take(now) {
                    info!(
                        %peer,
                        startups,
                        "refused connection: too many unauthenticated connections (MaxStartups {limit}){}",
                        more(hidden)
                    );
                }
                None
            }
            Admission::Admit {
                id,
                banner,
                evict,
                evicted,
            } => {
                if let Some(old) = evicted {
                    info!(
                        peer = %old,
                        "closing a connection that sent nothing for {} s, to make room for {peer} (MaxStartups {limit})",
                        SILENT_AFTER.as_secs()
                    );
                }
                Some((Place::new(shared.startups.clone(), id), banner, evict))
            }
        }
    }
}

fn more(hidden: u64) -> String {
    if hidden == 0 {
        String::new()
    } else {
        format!("; {hidden} more refused before this (logging rate-limited)")
    }
}

/// A finished connection task; one that panicked earns its source the
/// crash penalty.
fn reap(
    shared: &Shared,
    sources: &mut HashMap<tokio::task::Id, SocketAddr>,
    done: Result<(tokio::task::Id, ()), tokio::task::JoinError>,
) {
    match done {
        Ok((id, ())) => {
            sources.remove(&id);
        }
        Err(e) => {
            let peer = sources.remove(&e.id());
            if let (true, Some(peer)) = (e.is_panic(), peer) {
                warn!(%peer, "connection task panicked");
                penalise(shared, peer, Event::Crash);
            }
        }
    }
}

/// Records a penalty for `peer`'s source; logs it at INFO once it
/// refuses connections.
fn penalise(shared: &Shared, peer: SocketAddr, event: Event) {
    let recorded = lock(&shared.penalties).penalise(peer.ip(), event, Instant::now());
    let Some(p) = recorded else {
        return;
    };
    let left = p.left.as_secs().max(1);
    if p.active {
        let what = if p.activated {
            "penalty"
        } else {
            "penalty extended"
        };
        info!(
            %peer,
            "{what} for {}: new connections from {} refused for {left} s (PerSourcePenalties)",
            event.reason(),
            p.block
        );
    } else {
        debug!(
            %peer,
            "penalty for {}: {left} s accumulated against {}, not yet refusing",
            event.reason(),
            p.block
        );
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
        preferred: russh::Preferred {
            cipher: std::borrow::Cow::Borrowed(CIPHERS),
            ..russh::Preferred::default()
        },
        ..Default::default()
    }
}

/// sshd's default ciphers, in its order (russh's default list lacks
/// aes128-gcm, which OpenSSH's clients and rclone may insist on).
const CIPHERS: &[russh::cipher::Name] = &[
    russh::cipher::CHACHA20_POLY1305,
    russh::cipher::AES_128_CTR,
    russh::cipher::AES_192_CTR,
    russh::cipher::AES_256_CTR,
    russh::cipher::AES_128_GCM,
    russh::cipher::AES_256_GCM,
];

/// A connection that passed the [`Gate`].
struct Accepted {
    stream: TcpStream,
    peer: SocketAddr,
    place: Place,
    banner: Arc<Banner>,
    evict: CancellationToken,
}

/// How a connection ended, for PerSourcePenalties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Authenticated,
    ShutDown,
    GraceExceeded,
    /// Closed for sending nothing while the server was at MaxStartups.
    Evicted,
    /// The session task failed before authentication.
    Crashed,
    ClosedBeforeAuth,
}

impl End {
    fn penalty(self, attempts: &Attempts) -> Option<Event> {
        match self {
            End::Authenticated | End::ShutDown => None,
            End::GraceExceeded => Some(Event::GraceExceeded),
            End::Crashed => Some(Event::Crash),
            End::Evicted | End::ClosedBeforeAuth => Some(attempts.event()),
        }
    }
}

/// One connection from accept to close.
async fn serve_connection(
    shared: Arc<Shared>,
    russh: Arc<russh::server::Config>,
    conn: Accepted,
    token: CancellationToken,
) {
    let peer = conn.peer;
    let attempts = Arc::new(Attempts::default());
    let end = drive(&shared, russh, conn, &token, &attempts).await;
    if let Some(event) = end.penalty(&attempts) {
        penalise(&shared, peer, event);
    }
}

async fn drive(
    shared: &Arc<Shared>,
    russh: Arc<russh::server::Config>,
    conn: Accepted,
    token: &CancellationToken,
    attempts: &Arc<Attempts>,
) -> End {
    let Accepted {
        stream,
        peer,
        place,
        banner,
        evict,
    } = conn;
    let _ = stream.set_nodelay(true);
    let grace = shared.config.login_grace_time;
    let deadline = Instant::now() + grace;
    let (authed_tx, authed_rx) = oneshot::channel();
    let handler = Connection::new(
        shared.clone(),
        peer,
        token.clone(),
        authed_tx,
        attempts.clone(),
    );
    let stream = Watched::new(stream, banner.clone());
    let start =
        tokio::time::timeout_at(deadline, russh::server::run_stream(russh, stream, handler));
    let session = tokio::select! {
        started = start => match started {
            Ok(Ok(session)) => session,
            Ok(Err(e)) => {
                info!(%peer, error = %e, "connection closed before key exchange");
                return End::ClosedBeforeAuth;
            }
            Err(_) => {
                info!(%peer, "connection closed: no SSH greeting within the login grace time");
                return End::GraceExceeded;
            }
        },
        () = evict.cancelled() => {
            info!(%peer, "connection closed: it sent nothing while the server was at MaxStartups");
            return End::Evicted;
        }
        () = token.cancelled() => return End::ShutDown,
    };
    debug!(%peer, client = %Escaped::truncated(&banner.line(), 200), "client version");
    let handle = session.handle();
    tokio::pin!(session);
    let refused = tokio::select! {
        r = &mut session => {
            let end = if log_end(peer, r, false) { End::Crashed } else { End::ClosedBeforeAuth };
            token.cancel();
            return end;
        }
        Ok(()) = authed_rx => None,
        () = tokio::time::sleep_until(deadline) => {
            info!(%peer, "connection closed: not authenticated within the login grace time");
            Some(End::GraceExceeded)
        }
        () = token.cancelled() => Some(End::ShutDown),
    };
    drop(place);
    let end = match refused {
        Some(end) => end,
        None => tokio::select! {
            r = &mut session => {
                log_end(peer, r, true);
                token.cancel();
                return End::Authenticated;
            }
            () = token.cancelled() => End::ShutDown,
        },
    };
    let reason = if end == End::GraceExceeded {
        "login grace time exceeded"
    } else {
        "server shutting down"
    };
    let _ = handle
        .disconnect(Disconnect::ByApplication, reason.into(), String::new())
        .await;
    token.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(2), &mut session).await;
    info!(%peer, reason, "connection closed");
    if refused.is_none() {
        End::Authenticated
    } else {
        end
    }
}

/// Logs how a session ended; true when its task failed (a crash).
fn log_end(peer: SocketAddr, result: Result<(), russh::Error>, authenticated: bool) -> bool {
    match result {
        Ok(()) => info!(%peer, "connection closed"),
        Err(russh::Error::Join(_)) => {
            warn!(%peer, "connection closed: its session task failed");
            return true;
        }
        Err(e) if !authenticated => info!(%peer, error = %e, "connection closed during login"),
        Err(e) => info!(%peer, error = %e, "connection closed"),
    }
    false
}

/// Locks a mutex, recovering it if a panicking holder poisoned it (the
/// data here stays valid at every step).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
