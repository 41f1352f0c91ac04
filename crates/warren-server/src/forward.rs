//! Forwarding on the server side: direct-tcpip and direct-streamlocal
//! (the client's -L, -D and -W: the server connects), and tcpip-forward and
//! streamlocal-forward (the client's -R: the server listens and opens a
//! channel back per connection).
//!
//! Design choices: the policy (AllowTcpForwarding, the key's
//! `no-port-forwarding`, `permitopen=`, `permitlisten=`, GatewayPorts) is
//! decided in [`Policy`] before any socket is touched, and a refused
//! request is logged with the rule that refused it. Without
//! `--gateway-ports` a remote forward asking for a non-loopback address is
//! refused outright rather than quietly bound to loopback, so the client
//! learns that its forward is not what it asked for. Bytes move through
//! warren-core's pump, as on the client side.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use russh::server::{ChannelOpenHandle, Handle, Msg};
use russh::{Channel, ChannelOpenFailure};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use warren_core::forward::SERVER_QUEUE_LIMIT;
use warren_core::forward::pump::{Counters, pump};
use warren_wire::Escaped;

use crate::auth::Permissions;
use crate::authorized_keys::is_default_listen_host;
use crate::config::ServerConfig;

/// How long connecting to a direct-tcpip target may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// The forwarding rules of one authenticated connection.
pub struct Policy<'a> {
    pub config: &'a ServerConfig,
    pub perms: &'a Permissions,
}

impl Policy<'_> {
    fn tcp_allowed(&self) -> Result<(), String> {
        if !self.config.allow_tcp_forwarding {
            return Err("TCP forwarding is disabled on this server".into());
        }
        if !self.perms.port_forwarding {
            return Err("the key's authorized_keys options forbid port forwarding".into());
        }
        Ok(())
    }

    fn streamlocal_allowed(&self) -> Result<(), String> {
        if !self.config.allow_streamlocal_forwarding {
            return Err("unix socket forwarding is disabled on this server".into());
        }
        if !self.perms.port_forwarding {
            return Err("the key's authorized_keys options forbid port forwarding".into());
        }
        Ok(())
    }

    /// direct-tcpip to `host:port`.
    pub fn open(&self, host: &str, port: u16) -> Result<(), String> {
        self.tcp_allowed()?;
        let permitted = self.perms.permit_open.is_empty()
            || self
                .perms
                .permit_open
                .iter()
                .any(|p| p.permits_open(host, port));
        if !permitted {
            return Err(format!("{host}:{port} is not in the key's permitopen list"));
        }
        Ok(())
    }

    /// tcpip-forward on `host:port`: the addresses to bind.
    pub fn listen(&self, host: &str, port: u16) -> Result<Vec<IpAddr>, String> {
        self.tcp_allowed()?;
        let permitted = self.perms.permit_listen.is_empty()
            || self
                .perms
                .permit_listen
                .iter()
                .any(|p| p.permits_listen(host, port));
        if !permitted {
            return Err(format!(
                "{host}:{port} is not in the key's permitlisten list"
            ));
        }
        bind_addresses(host, self.config.gateway_ports)
    }

    pub fn open_unix(&self) -> Result<(), String> {
        self.streamlocal_allowed()
    }

    pub fn listen_unix(&self) -> Result<(), String> {
        self.streamlocal_allowed()
    }
}

/// Where a remote forward listens: loopback for the default names; any
/// other address only with GatewayPorts.
fn bind_addresses(host: &str, gateway_ports: bool) -> Result<Vec<IpAddr>, String> {
    if host.is_empty() || host == "localhost" {
        return Ok(vec![Ipv4Addr::LOCALHOST.into()]);
    }
    if is_default_listen_host(host) {
        return host
            .parse()
            .map(|ip| vec![ip])
            .map_err(|_| format!("bad address {host}"));
    }
    if !gateway_ports {
        return Err(format!(
            "listening on {host} needs --gateway-ports (without it remote forwards bind loopback only)"
        ));
    }
    match host {
        "*" | "0.0.0.0" => Ok(vec![Ipv4Addr::UNSPECIFIED.into()]),
        "::" => Ok(vec![Ipv6Addr::UNSPECIFIED.into()]),
        h => h.parse::<IpAddr>().map(|ip| vec![ip]).map_err(|_| {
            format!("{h} is not an IP address (remote forwards bind addresses, not names)")
        }),
    }
}

/// The remote forwards one connection holds, to cancel them by name.
#[derive(Default)]
pub struct Listeners {
    tcp: HashMap<(String, u32), CancellationToken>,
    unix: HashMap<String, CancellationToken>,
}

impl Listeners {
    pub fn cancel_tcp(&mut self, host: &str, port: u32) -> bool {
        self.tcp
            .remove(&(host.to_owned(), port))
            .map(|t| t.cancel())
            .is_some()
    }

    pub fn cancel_unix(&mut self, path: &str) -> bool {
        self.unix.remove(path).map(|t| t.cancel()).is_some()
    }
}

/// Connects to `host:port` and, once connected, accepts the channel and
/// pumps it; the connect runs in its own task.
pub fn direct_tcpip(
    channel: Channel<Msg>,
    reply: ChannelOpenHandle,
    host: String,
    port: u16,
    token: CancellationToken,
) {
    tokio::spawn(async move {
        let target = format!("{}:{port}", Escaped::truncated(host.as_bytes(), 200));
        let connect =
            tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host.as_str(), port)));
        let stream = tokio::select! {
            r = connect => r,
            () = token.cancelled() => return,
        };
        match stream {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                reply.accept().await;
                debug!(%target, "direct-tcpip connected");
                run_pump(stream, channel, token).await;
            }
            Ok(Err(e)) => {
                info!(%target, error = %e, "direct-tcpip: connect failed");
                reply.reject(ChannelOpenFailure::ConnectFailed).await;
            }
            Err(_) => {
                info!(%target, "direct-tcpip: connect timed out");
                reply.reject(ChannelOpenFailure::ConnectFailed).await;
            }
        }
    });
}

/// As [`direct_tcpip`], to a unix socket.
pub fn direct_streamlocal(
    channel: Channel<Msg>,
    reply: ChannelOpenHandle,
    path: String,
    token: CancellationToken,
) {
    tokio::spawn(async move {
        match UnixStream::connect(&path).await {
            Ok(stream) => {
                reply.accept().await;
                run_pump(stream, channel, token).await;
            }
            Err(e) => {
                info!(path = %Escaped::truncated(path.as_bytes(), 200), error = %e, "direct-streamlocal: connect failed");
                reply.reject(ChannelOpenFailure::ConnectFailed).await;
            }
        }
    });
}

async fn run_pump<S>(stream: S, channel: Channel<Msg>, token: CancellationToken)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    tokio::select! {
        _ = pump(stream, channel, Bytes::new(), SERVER_QUEUE_LIMIT, Arc::new(Counters::default())) => {}
        () = token.cancelled() => {}
    }
}

/// Binds a remote forward and serves it until cancelled; returns the
/// bound port (the allocated one for port 0).
pub async fn listen_tcp(
    listeners: &mut Listeners,
    addrs: Vec<IpAddr>,
    host: &str,
    port: u32,
    handle: Handle,
    token: CancellationToken,
) -> Result<u32, String> {
    let port16 = u16::try_from(port).map_err(|_| format!("port {port} is out of range"))?;
    let mut bound = Vec::new();
    let mut actual = port16;
    for ip in addrs {
        let listener = TcpListener::bind(SocketAddr::new(ip, actual))
            .await
            .map_err(|e| format!("cannot listen on {ip}:{actual}: {e}"))?;
        actual = listener.local_addr().map_err(|e| e.to_string())?.port();
        bound.push(listener);
    }
    let token = token.child_token();
    listeners
        .tcp
        .insert((host.to_owned(), u32::from(actual)), token.clone());
    for listener in bound {
        tokio::spawn(accept_tcp(
            listener,
            host.to_owned(),
            u32::from(actual),
            handle.clone(),
            token.clone(),
        ));
    }
    Ok(u32::from(actual))
}

async fn accept_tcp(
    listener: TcpListener,
    host: String,
    port: u32,
    handle: Handle,
    token: CancellationToken,
) {
    while let Some(accepted) = token.run_until_cancelled(listener.accept()).await {
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                warn!(error = %e, "remote forward: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (handle, host, token) = (handle.clone(), host.clone(), token.clone());
        tokio::spawn(async move {
            let opened = handle
                .channel_open_forwarded_tcpip(
                    host,
                    port,
                    peer.ip().to_string(),
                    u32::from(peer.port()),
                )
                .await;
            match opened {
                Ok(channel) => run_pump(stream, channel, token).await,
                Err(e) => debug!(error = %e, "remote forward: the client refused the channel"),
            }
        });
    }
}

/// Binds a unix socket for streamlocal-forward (0600) and serves it until
/// cancelled, then removes it.
pub fn listen_unix(
    listeners: &mut Listeners,
    path: &str,
    handle: Handle,
    token: CancellationToken,
) -> Result<(), String> {
    let listener = UnixListener::bind(path).map_err(|e| format!("cannot listen on {path}: {e}"))?;
    {
        use std::os::unix::fs::PermissionsExt as _;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
    let token = token.child_token();
    listeners.unix.insert(path.to_owned(), token.clone());
    let path = PathBuf::from(path);
    tokio::spawn(async move {
        while let Some(accepted) = token.run_until_cancelled(listener.accept()).await {
            let Ok((stream, _)) = accepted else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let (handle, token, name) = (handle.clone(), token.clone(), path.display().to_string());
            tokio::spawn(async move {
                match handle.channel_open_forwarded_streamlocal(name).await {
                    Ok(channel) => run_pump(stream, channel, token).await,
                    Err(e) => {
                        debug!(error = %e, "remote unix forward: the client refused the channel")
                    }
                }
            });
        }
        let _ = std::fs::remove_file(&path);
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_bind_addresses() {
        let cases: &[(&str, bool, Result<&str, &str>)] = &[
            ("", false, Ok("127.0.0.1")),
            ("localhost", false, Ok("127.0.0.1")),
            ("127.0.0.1", false, Ok("127.0.0.1")),
            ("::1", false, Ok("::1")),
            ("0.0.0.0", false, Err("--gateway-ports")),
            ("*", false, Err("--gateway-ports")),
            ("192.0.2.7", false, Err("--gateway-ports")),
            ("0.0.0.0", true, Ok("0.0.0.0")),
            ("*", true, Ok("0.0.0.0")),
            ("192.0.2.7", true, Ok("192.0.2.7")),
            ("example.com", true, Err("not an IP address")),
        ];
        for &(host, gw, want) in cases {
            match (bind_addresses(host, gw), want) {
                (Ok(got), Ok(w)) => assert_eq!(got, vec![w.parse::<IpAddr>().unwrap()], "{host}"),
                (Err(got), Err(w)) => assert!(got.contains(w), "{host}: {got}"),
                (got, want) => panic!("{host} gw={gw}: got {got:?}, want {want:?}"),
            }
        }
    }
}
