//! The local side of -L and -D: accept, open one channel per connection
//! (direct-tcpip or direct-streamlocal; for SOCKS after the handshake),
//! pump. A channel the server cannot open closes the local connection at
//! once and logs the server's reason. The session comes from a
//! [`SessionSlot`]: fixed under `warren ssh`, swapped by the tunnel
//! supervisor across reconnects (a connection then waits for the session).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use russh::client::Handle;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::Endpoint;
use super::listen::Listener;
use super::pump::{Counters, pump};
use super::slot::{OpenError, SessionSlot};
use super::socks;
use crate::session::ClientHandler;

/// What a local listener does with each connection.
#[derive(Debug, Clone)]
pub enum Target {
    /// -L: connect the server to this endpoint.
    Fixed(Endpoint),
    /// -D: ask the client (SOCKS) where to.
    Socks,
}

/// Everything a connection task needs, shared by a listener's connections.
pub struct Forwarder {
    pub session: SessionSlot,
    pub spec: String,
    pub target: Target,
    pub counters: Arc<Counters>,
    pub queue_limit: usize,
}

/// Serves `listener` until `token` is cancelled; then stops accepting and
/// ends the open connections.
pub async fn serve(listener: Listener, forwarder: Arc<Forwarder>, token: CancellationToken) {
    let mut accepts = JoinSet::new();
    match listener {
        Listener::Tcp(ls) => {
            for l in ls {
                accepts.spawn(accept_tcp(l, forwarder.clone(), token.clone()));
            }
        }
        Listener::Unix(l) => {
            accepts.spawn(accept_unix(l, forwarder.clone(), token.clone()));
        }
    }
    while accepts.join_next().await.is_some() {}
}

async fn accept_tcp(listener: TcpListener, f: Arc<Forwarder>, token: CancellationToken) {
    let mut conns = JoinSet::new();
    while let Some(accepted) = token.run_until_cancelled(listener.accept()).await {
        reap(&mut conns);
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                debug!(%peer, forward = %f.spec, "accepted");
                conns.spawn(token.clone().run_until_cancelled_owned(handle_conn(
                    stream,
                    Some(peer),
                    f.clone(),
                )));
            }
            Err(e) => {
                warn!(forward = %f.spec, error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
    conns.shutdown().await;
}

async fn accept_unix(listener: UnixListener, f: Arc<Forwarder>, token: CancellationToken) {
    let mut conns = JoinSet::new();
    while let Some(accepted) = token.run_until_cancelled(listener.accept()).await {
        reap(&mut conns);
        match accepted {
            Ok((stream, _)) => {
                conns.spawn(token.clone().run_until_cancelled_owned(handle_conn(
                    stream,
                    None,
                    f.clone(),
                )));
            }
            Err(e) => {
                warn!(forward = %f.spec, error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
    conns.shutdown().await;
}

fn reap<T: 'static>(set: &mut JoinSet<T>) {
    while set.try_join_next().is_some() {}
}

async fn handle_conn<S>(mut stream: S, peer: Option<SocketAddr>, f: Arc<Forwarder>)
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (origin_ip, origin_port) = peer
        .map(|p| (p.ip().to_string(), u32::from(p.port())))
        .unwrap_or(("127.0.0.1".into(), 0));
    let origin = origin_ip.as_str();
    let (channel, leftover) = match &f.target {
        Target::Fixed(endpoint) => match f
            .session
            .open(|h| async move { open(&h, endpoint, origin, origin_port).await })
            .await
        {
            Ok(c) => (c, Bytes::new()),
            Err(e) => {
                warn!("{}: channel open to {endpoint} failed: {e}", f.spec);
                return;
            }
        },
        Target::Socks => match socks_open(&mut stream, &f, &origin_ip, origin_port).await {
            Some(opened) => opened,
            None => return,
        },
    };
    let totals = pump(stream, channel, leftover, f.queue_limit, f.counters.clone()).await;
    debug!(forward = %f.spec, sent = totals.sent, received = totals.received, "connection closed");
}

/// Opens the channel for a fixed target.
pub async fn open(
    handle: &Handle<ClientHandler>,
    endpoint: &Endpoint,
    origin_ip: &str,
    origin_port: u32,
) -> Result<russh::Channel<russh::client::Msg>, russh::Error> {
    match endpoint {
        Endpoint::Tcp { host, port } => {
            let host = host.as_deref().unwrap_or("localhost");
            handle
                .channel_open_direct_tcpip(host, u32::from(*port), origin_ip, origin_port)
                .await
        }
        Endpoint::Unix(path) => {
            handle
                .channel_open_direct_streamlocal(path.to_string_lossy())
                .await
        }
    }
}

/// SOCKS handshake, then the channel to the requested target; answers the
/// client either way.
async fn socks_open<S>(
    stream: &mut S,
    f: &Forwarder,
    origin_ip: &str,
    origin_port: u32,
) -> Option<(russh::Channel<russh::client::Msg>, Bytes)>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (request, leftover) =
        match tokio::time::timeout(super::SOCKS_HANDSHAKE_TIMEOUT, socks::accept(stream)).await {
            Ok(Ok(r)) => r,
            Err(_) => {
                debug!("SOCKS handshake timed out");
                return None;
            }
            Ok(Err(e)) => {
                debug!(forward = %f.spec, error = %e, "SOCKS handshake failed");
                return None;
            }
        };
    let target = &request.target;
    let opened = f
        .session
        .open(|h| async move {
            h.channel_open_direct_tcpip(
                target.host(),
                u32::from(target.port()),
                origin_ip,
                origin_port,
            )
            .await
        })
        .await;
    match opened {
        Ok(channel) => {
            info!("{}: SOCKS connect to {target}", f.spec);
            let bound = SocketAddr::from(([0, 0, 0, 0], 0));
            stream
                .write_all(&socks::success_reply(request.version, bound))
                .await
                .ok()?;
            Some((channel, leftover.freeze()))
        }
        Err(e) => {
            warn!("{}: SOCKS connect to {target} failed: {e}", f.spec);
            let reason = match e {
                OpenError::Ssh(russh::Error::ChannelOpenFailure(
                    russh::ChannelOpenFailure::ConnectFailed,
                )) => socks::Failure::ConnectionRefused,
                OpenError::Ssh(russh::Error::ChannelOpenFailure(
                    russh::ChannelOpenFailure::AdministrativelyProhibited,
                )) => socks::Failure::NotAllowed,
                _ => socks::Failure::General,
            };
            let _ = stream
                .write_all(&socks::failure_reply(request.version, reason))
                .await;
            None
        }
    }
}
