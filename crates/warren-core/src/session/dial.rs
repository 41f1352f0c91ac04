//! The TCP leg: resolve, pick addresses by AddressFamily, bind BindAddress,
//! connect with ConnectTimeout, retry ConnectionAttempts times, and set
//! TCP_NODELAY before the handshake (OpenSSH sets it only after login, and
//! Nagle then stalls each handshake round trip).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream};
use tracing::{debug, info};

use super::error::{ConnectCause, SessionError};
use super::options::{AddressFamily, ConnectOptions};

/// Opens the TCP connection for `opts`.
pub async fn dial(opts: &ConnectOptions) -> Result<TcpStream, SessionError> {
    let addrs = resolve(&opts.hostname, opts.port, opts.address_family).await?;
    let mut last = None;
    for attempt in 0..opts.connection_attempts.max(1) {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        for addr in &addrs {
            info!(%addr, "Connecting to {} [{}] port {}.", opts.hostname, addr.ip(), addr.port());
            match connect_one(*addr, opts).await {
                Ok(stream) => {
                    info!("Connection established.");
                    return Ok(stream);
                }
                Err(cause) => {
                    debug!(%addr, %cause, "connect failed");
                    last = Some(cause);
                }
            }
        }
    }
    Err(SessionError::Connect {
        host: opts.hostname.clone(),
        port: opts.port,
        cause: last.unwrap_or(ConnectCause::Unreachable),
    })
}

async fn resolve(
    host: &str,
    port: u16,
    family: AddressFamily,
) -> Result<Vec<SocketAddr>, SessionError> {
    let fail = |reason: String| SessionError::Resolve {
        host: host.to_owned(),
        reason,
    };
    let addrs: Vec<SocketAddr> = match tokio::net::lookup_host((host, port)).await {
        Ok(a) => a.collect(),
        Err(e) => return Err(fail(resolve_reason(&e))),
    };
    let addrs: Vec<SocketAddr> = addrs
        .into_iter()
        .filter(|a| match family {
            AddressFamily::Any => true,
            AddressFamily::Inet => a.is_ipv4(),
            AddressFamily::Inet6 => a.is_ipv6(),
        })
        .collect();
    if addrs.is_empty() {
        return Err(fail("Address family for hostname not supported".into()));
    }
    Ok(addrs)
}

fn resolve_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    // getaddrinfo's message comes wrapped ("failed to lookup address
    // information: Name or service not known"); keep the resolver's words.
    match text.rsplit_once(": ") {
        Some((_, reason)) => reason.to_owned(),
        None => text,
    }
}

async fn connect_one(addr: SocketAddr, opts: &ConnectOptions) -> Result<TcpStream, ConnectCause> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    };
    let socket = socket.map_err(ConnectCause::from_io)?;
    if let Some(bind) = &opts.bind_address {
        let ip: IpAddr = bind.parse().map_err(|_| {
            ConnectCause::Other(std::io::Error::other(format!("bad BindAddress {bind}")))
        })?;
        socket
            .bind(SocketAddr::new(ip, 0))
            .map_err(ConnectCause::from_io)?;
    } else if let Some(interface) = &opts.bind_interface {
        let local =
            super::interface::source_address(interface, addr).map_err(ConnectCause::Other)?;
        debug!(%interface, %local, "binding to the interface's address");
        socket.bind(local).map_err(ConnectCause::from_io)?;
    }
    socket.set_nodelay(true).map_err(ConnectCause::from_io)?;
    socket
        .set_keepalive(opts.tcp_keep_alive)
        .map_err(ConnectCause::from_io)?;
    let connect = socket.connect(addr);
    let stream = match opts.connect_timeout {
        Some(t) => tokio::time::timeout(t, connect)
            .await
            .map_err(|_| ConnectCause::TimedOut)?,
        None => connect.await,
    };
    stream.map_err(ConnectCause::from_io)
}
