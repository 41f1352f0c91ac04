//! -R: the server listens and opens a `forwarded-tcpip` (or
//! `forwarded-streamlocal@openssh.com`) channel per connection; we connect
//! to the local target, or serve SOCKS on the channel for `-R port`.
//!
//! The russh handler only looks the listen address up here and hands the
//! channel to a task; nothing in the callback waits on the network.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tracing::{debug, info, warn};

use super::pump::{Counters, pump};
use super::{Endpoint, socks};

/// What to do with connections the server forwards for one listen address.
#[derive(Debug, Clone)]
pub struct RemoteTarget {
    pub spec: String,
    /// `None`: `-R port`, SOCKS served locally.
    pub connect: Option<Endpoint>,
    pub counters: Arc<Counters>,
    pub queue_limit: usize,
    /// PermitRemoteOpen entries (`host:port`, `*` wildcards, `any`, `none`).
    pub permit: Vec<String>,
}

/// Remote forwards by (listen address, port) as the server reports them,
/// and unix listen paths.
#[derive(Debug, Default)]
pub struct RemoteForwards {
    tcp: Mutex<HashMap<u32, Vec<(String, RemoteTarget)>>>,
    unix: Mutex<HashMap<String, RemoteTarget>>,
    /// X11 forwarding, once a session channel asked for it.
    x11: crate::session::x11::X11Slot,
}

impl RemoteForwards {
    /// Where x11 channels the server opens go.
    pub fn x11(&self) -> &crate::session::x11::X11Slot {
        &self.x11
    }

    pub fn add_tcp(&self, address: &str, port: u32, target: RemoteTarget) {
        if let Ok(mut m) = self.tcp.lock() {
            m.entry(port)
                .or_default()
                .push((address.to_owned(), target));
        }
    }

    /// Undoes [`RemoteForwards::add_tcp`] for a request the server refused.
    pub fn remove_tcp(&self, address: &str, port: u32) {
        if let Ok(mut m) = self.tcp.lock()
            && let Some(list) = m.get_mut(&port)
        {
            list.retain(|(a, _)| a != address);
        }
    }

    pub fn remove_unix(&self, path: &str) {
        if let Ok(mut m) = self.unix.lock() {
            m.remove(path);
        }
    }

    pub fn add_unix(&self, path: &str, target: RemoteTarget) {
        if let Ok(mut m) = self.unix.lock() {
            m.insert(path.to_owned(), target);
        }
    }

    /// The target for a connection the server reports on `address:port`.
    /// The address may be reported differently from how it was requested
    /// ("" vs "0.0.0.0", "localhost" vs "127.0.0.1"), so a port with one
    /// forward matches on the port alone.
    pub fn lookup_tcp(&self, address: &str, port: u32) -> Option<RemoteTarget> {
        let m = self.tcp.lock().ok()?;
        let list = m.get(&port)?;
        list.iter()
            .find(|(a, _)| a == address)
            .or_else(|| (list.len() == 1).then(|| &list[0]))
            .map(|(_, t)| t.clone())
    }

    pub fn lookup_unix(&self, path: &str) -> Option<RemoteTarget> {
        self.unix.lock().ok()?.get(path).cloned()
    }
}

/// Serves one forwarded channel: connect locally (or SOCKS), then pump.
/// The channel open is confirmed only once the local side is reachable;
/// otherwise it is refused with "connect failed", as ssh does.
pub async fn serve_channel(
    channel: russh::Channel<russh::client::Msg>,
    reply: russh::client::ChannelOpenHandle,
    target: RemoteTarget,
    origin: String,
) {
    match &target.connect {
        Some(Endpoint::Tcp { host, port }) => {
            let host = host.as_deref().unwrap_or("localhost");
            match tokio::net::TcpStream::connect((host, *port)).await {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    reply.accept().await;
                    debug!(forward = %target.spec, %origin, "remote connection");
                    pump(
                        stream,
                        channel,
                        Bytes::new(),
                        target.queue_limit,
                        target.counters.clone(),
                    )
                    .await;
                }
                Err(e) => {
                    warn!("{}: connect to {host}:{port} failed: {e}", target.spec);
                    reply.reject(russh::ChannelOpenFailure::ConnectFailed).await;
                }
            }
        }
        Some(Endpoint::Unix(path)) => match tokio::net::UnixStream::connect(path).await {
            Ok(stream) => {
                reply.accept().await;
                pump(
                    stream,
                    channel,
                    Bytes::new(),
                    target.queue_limit,
                    target.counters.clone(),
                )
                .await;
            }
            Err(e) => {
                warn!("{}: connect to {} failed: {e}", target.spec, path.display());
                reply.reject(russh::ChannelOpenFailure::ConnectFailed).await;
            }
        },
        None => {
            reply.accept().await;
            serve_socks(channel, target).await;
        }
    }
}

/// PermitRemoteOpen as ssh checks it: no entries or `any` allow all,
/// `none` nothing; otherwise `host:port` with `*` for either part.
pub fn permitted(permit: &[String], host: &str, port: u16) -> bool {
    if permit.is_empty() || permit.iter().any(|p| p.eq_ignore_ascii_case("any")) {
        return true;
    }
    permit.iter().any(|entry| {
        let Some((h, p)) = entry.rsplit_once(':') else {
            return false;
        };
        let h = h.trim_start_matches('[').trim_end_matches(']');
        (h == "*" || h.eq_ignore_ascii_case(host)) && (p == "*" || p.parse::<u16>() == Ok(port))
    })
}

/// `-R port`: the channel speaks SOCKS; we resolve and connect locally.
async fn serve_socks(channel: russh::Channel<russh::client::Msg>, target: RemoteTarget) {
    let mut stream = channel.into_stream();
    let (request, leftover) = match tokio::time::timeout(
        super::SOCKS_HANDSHAKE_TIMEOUT,
        socks::accept(&mut stream),
    )
    .await
    {
        Ok(Ok(r)) => r,
        Err(_) => {
            debug!("SOCKS handshake timed out");
            return;
        }
        Ok(Err(e)) => {
            debug!(forward = %target.spec, error = %e, "SOCKS handshake failed");
            return;
        }
    };
    let dest = &request.target;
    if !permitted(&target.permit, &dest.host(), dest.port()) {
        warn!(
            "{}: SOCKS connect to {dest} not permitted by PermitRemoteOpen",
            target.spec
        );
        let _ = stream
            .write_all(&socks::failure_reply(
                request.version,
                socks::Failure::NotAllowed,
            ))
            .await;
        return;
    }
    let local = match tokio::net::TcpStream::connect((dest.host(), dest.port())).await {
        Ok(s) => s,
        Err(e) => {
            warn!("{}: SOCKS connect to {dest} failed: {e}", target.spec);
            let _ = stream
                .write_all(&socks::failure_reply(
                    request.version,
                    socks::Failure::ConnectionRefused,
                ))
                .await;
            return;
        }
    };
    info!("{}: SOCKS connect to {dest}", target.spec);
    let bound = local
        .local_addr()
        .unwrap_or_else(|_| std::net::SocketAddr::from(([0, 0, 0, 0], 0)));
    if stream
        .write_all(&socks::success_reply(request.version, bound))
        .await
        .is_err()
    {
        return;
    }
    let _ = local.set_nodelay(true);
    let (mut lr, mut lw) = local.into_split();
    if !leftover.is_empty() && lw.write_all(&leftover).await.is_err() {
        return;
    }
    let (mut cr, mut cw) = tokio::io::split(stream);
    let up = async {
        let _ = tokio::io::copy(&mut cr, &mut lw).await;
        let _ = lw.shutdown().await;
    };
    let down = async {
        let _ = tokio::io::copy(&mut lr, &mut cw).await;
        let _ = cw.shutdown().await;
    };
    tokio::join!(up, down);
}

#[cfg(test)]
mod tests {
    use super::permitted;

    #[test]
    fn permit_remote_open_table() {
        let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let cases: &[(&[&str], &str, u16, bool)] = &[
            (&[], "db", 5432, true),
            (&["any"], "db", 5432, true),
            (&["none"], "db", 5432, false),
            (&["db:5432"], "db", 5432, true),
            (&["db:5432"], "db", 5433, false),
            (&["db:*"], "db", 1, true),
            (&["*:443"], "web", 443, true),
            (&["*:443"], "web", 80, false),
            (&["[::1]:22"], "::1", 22, true),
        ];
        for (entries, host, port, want) in cases {
            assert_eq!(
                permitted(&list(entries), host, *port),
                *want,
                "{entries:?} {host}:{port}"
            );
        }
    }
}
