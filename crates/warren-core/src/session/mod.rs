//! One SSH connection: route (`resolve`), dial (TCP), handshake, host key
//! check, login.
//!
//! `connect` returns a [`Session`] that is authenticated and ready for
//! channels; every failure on the way is a [`SessionError`] that names what
//! failed and says whether retrying can help. [`stages`] runs the same
//! steps one at a time, each timed, for callers that report them.

mod auth;
mod dial;
pub mod error;
pub mod handler;
mod hostkey;
mod hostkeys_update;
mod identities;
mod interface;
pub mod options;
pub mod proxy;
pub mod resolve;
mod revoked;
pub mod stages;
pub mod window;
pub mod x11;

use std::sync::Arc;
use std::time::Duration;

use russh::client::Handle;
use tracing::info;

pub use error::{AuthError, ConnectCause, DenialNotes, HostKeyError, LoggedIn, SessionError};
pub use handler::ClientHandler;
pub use options::{
    AddKeys, AddressFamily, AuthOptions, ConnectOptions, HostKeyOptions, RekeyLimits,
    StrictHostKeyChecking, UpdateHostKeys,
};
pub use resolve::{ResolveError, Resolved, resolve};

use crate::forward::remote::RemoteForwards;
use crate::prompt::Prompter;

/// An authenticated connection.
pub struct Session {
    handle: Arc<Handle<ClientHandler>>,
    remote: Arc<RemoteForwards>,
    /// The jump host this session runs through; kept alive with it.
    via: Option<Box<Session>>,
    /// UpdateHostKeys' task, if it applies; `close` lets it finish.
    host_keys_update: std::sync::Mutex<Option<hostkeys_update::Task>>,
}

impl Session {
    pub fn handle(&self) -> &Handle<ClientHandler> {
        &self.handle
    }

    /// A shared handle, for tasks that open channels.
    pub fn shared_handle(&self) -> Arc<Handle<ClientHandler>> {
        self.handle.clone()
    }

    /// Where connections forwarded by the server (-R) are routed.
    pub fn remote_forwards(&self) -> Arc<RemoteForwards> {
        self.remote.clone()
    }

    /// Resolves when the connection is gone.
    pub async fn closed(&self) {
        closed(&self.handle).await;
    }

    /// Closes the connection politely, once a host key update under way
    /// (UpdateHostKeys) has finished.
    pub async fn close(&self) {
        let update = self
            .host_keys_update
            .lock()
            .ok()
            .and_then(|mut task| task.take());
        if let Some(task) = update {
            task.settle().await;
        }
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }
}

/// russh's client configuration for `opts`: 65535-byte packets, windows
/// that start at 2 MiB and grow to the path (up to `opts.window_size`,
/// see [`window`]), NODELAY, keepalives from ServerAliveInterval.
pub fn client_config(opts: &ConnectOptions) -> Result<russh::client::Config, SessionError> {
    Ok(russh::client::Config {
        window_size: window::WindowTuner::initial(opts.window_size),
        maximum_packet_size: 65535,
        preferred: opts.algorithms.to_preferred()?,
        nodelay: true,
        keepalive_interval: opts.server_alive_interval,
        // russh reads 0 as "never give up"; ssh gives up at the first
        // unanswered interval. One is the closest russh can do.
        keepalive_max: (opts.server_alive_count_max as usize).max(1),
        inactivity_timeout: None,
        limits: rekey_limits(opts.rekey),
        ..Default::default()
    })
}

/// RekeyLimit as russh's limits: the data limit for both directions (as
/// ssh counts each), capped at 1 GiB, which russh requires (more often
/// than asked is always safe); no interval means never for time alone.
fn rekey_limits(rekey: options::RekeyLimits) -> russh::Limits {
    const MOST: u64 = 1 << 30;
    let data = rekey.data.map_or(MOST, |d| d.min(MOST));
    let data = usize::try_from(data).unwrap_or(1 << 30);
    russh::Limits::new(data, data, rekey.interval.unwrap_or(Duration::MAX))
}

/// How to reach a host: directly, through a ProxyCommand, or through a
/// jump host (itself reached by its own route).
#[derive(Debug, Clone)]
pub struct Hop {
    pub opts: ConnectOptions,
    pub route: Route,
}

#[derive(Debug, Clone)]
pub enum Route {
    Direct,
    /// The command (tokens expanded), run through `sh -c`; its stdio is
    /// the transport.
    ProxyCommand(String),
    /// Through the previous hop: a direct-tcpip channel to this host.
    Jump(Box<Hop>),
}

/// Connects along `hop`'s route: every jump host is verified under its own
/// name and logged in to with its own settings, as ssh does.
pub fn connect_hop<'a>(
    hop: &'a Hop,
    prompter: Arc<dyn Prompter>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Session, SessionError>> + Send + 'a>>
{
    Box::pin(async move {
        match &hop.route {
            Route::Direct => connect(&hop.opts, prompter).await,
            Route::ProxyCommand(command) => {
                let stream = proxy::spawn(command)?;
                connect_stream(&hop.opts, prompter, stream, None).await
            }
            Route::Jump(via) => {
                let via_session = connect_hop(via, prompter.clone()).await?;
                let opts = &hop.opts;
                info!(
                    "Connecting to {}:{} through {}",
                    opts.hostname, opts.port, via.opts.host
                );
                let channel = via_session
                    .handle()
                    .channel_open_direct_tcpip(
                        opts.hostname.as_str(),
                        u32::from(opts.port),
                        "127.0.0.1",
                        0,
                    )
                    .await
                    .map_err(|source| SessionError::Jump {
                        via: via.opts.host.clone(),
                        target: format!("{} port {}", opts.hostname, opts.port),
                        source: Box::new(source),
                    })?;
                let mut session =
                    connect_stream(opts, prompter, channel.into_stream(), None).await?;
                session.via = Some(Box::new(via_session));
                Ok(session)
            }
        }
    })
}

/// Dials, verifies and logs in: the [`stages`] back to back.
pub async fn connect(
    opts: &ConnectOptions,
    prompter: Arc<dyn Prompter>,
) -> Result<Session, SessionError> {
    let dialed = stages::dial(opts).await?;
    through_stages(dialed, opts, prompter).await
}

/// The SSH handshake, host key check and login over an open transport.
pub async fn connect_stream<S>(
    opts: &ConnectOptions,
    prompter: Arc<dyn Prompter>,
    stream: S,
    peer_ip: Option<std::net::IpAddr>,
) -> Result<Session, SessionError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    through_stages(stages::Dialed::over(stream, peer_ip), opts, prompter).await
}

async fn through_stages<S>(
    dialed: stages::Dialed<S>,
    opts: &ConnectOptions,
    prompter: Arc<dyn Prompter>,
) -> Result<Session, SessionError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let handshake = dialed.handshake(opts, prompter).await?;
    let checked = handshake.check_host_key().await?;
    Ok(checked.authenticate().await?.session)
}

/// Times a few keepalive pings for the window tuner (the smallest
/// counts). In the background: nothing waits for it, and it lets go of
/// the connection between pings.
async fn measure_round_trip(
    handle: std::sync::Weak<Handle<ClientHandler>>,
    rtt: Arc<window::RoundTrip>,
) {
    for _ in 0..3 {
        let Some(handle) = handle.upgrade() else {
            return;
        };
        let start = std::time::Instant::now();
        if handle.send_ping().await.is_err() || handle.is_closed() {
            return;
        }
        rtt.record(start.elapsed());
    }
    tracing::debug!("round trip to the server: {:?}", rtt.get());
}

/// -v: what we offer (russh does not expose the negotiated names; -vvv
/// shows them in its own trace).
fn log_offer(p: &russh::Preferred) {
    let names = |v: Vec<&str>| v.join(",");
    info!(
        "kex offer: {}",
        names(p.kex.iter().map(|n| n.as_ref()).collect())
    );
    info!(
        "host key algorithms offer: {}",
        names(p.key.iter().map(|a| a.as_str()).collect())
    );
    info!(
        "cipher offer: {}",
        names(p.cipher.iter().map(|n| n.as_ref()).collect())
    );
    info!(
        "MAC offer: {}",
        names(p.mac.iter().map(|n| n.as_ref()).collect())
    );
}

fn handshake_error(e: SessionError, opts: &ConnectOptions) -> SessionError {
    match e {
        SessionError::Russh(russh::Error::NoCommonAlgo { kind, ours, theirs }) => {
            SessionError::NoCommonAlgorithm {
                host: opts.hostname.clone(),
                port: opts.port,
                // ssh's words (kex.c's kex_choose_conf).
                kind: match kind {
                    russh::AlgorithmKind::Kex => "key exchange method",
                    russh::AlgorithmKind::Key => "host key type",
                    russh::AlgorithmKind::Cipher => "cipher",
                    russh::AlgorithmKind::Mac => "MAC",
                    russh::AlgorithmKind::Compression => "compression method",
                }
                .to_owned(),
                ours: ours.join(","),
                theirs: theirs.join(","),
            }
        }
        SessionError::Russh(source) => SessionError::Protocol {
            host: opts.hostname.clone(),
            port: opts.port,
            source,
        },
        other => other,
    }
}

/// Resolves when the connection behind `handle` is gone. russh's handle
/// offers no future for that, so this looks every 100 ms.
pub async fn closed(handle: &Handle<ClientHandler>) {
    while !handle.is_closed() {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
