//! Binding the local side of -L and -D: loopback by default, every address
//! under GatewayPorts, unix sockets with StreamLocalBindMask/Unlink; a port
//! already in use names the process holding it when /proc shows it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

use tokio::net::{TcpListener, UnixListener};
use tracing::info;

use super::{Endpoint, ForwardError, ForwardOptions};

/// A bound local listener.
pub enum Listener {
    Tcp(Vec<TcpListener>),
    Unix(UnixListener),
}

impl Listener {
    /// The TCP port bound (every address of one listener shares it).
    pub fn tcp_port(&self) -> Option<u16> {
        match self {
            Listener::Tcp(ls) => ls
                .iter()
                .find_map(|l| l.local_addr().ok())
                .map(|a| a.port()),
            Listener::Unix(_) => None,
        }
    }
}

/// The addresses to bind for `host` as ssh chooses them.
pub fn bind_addresses(
    host: Option<&str>,
    port: u16,
    gateway_ports: bool,
) -> Result<Vec<SocketAddr>, String> {
    let any = || {
        vec![
            SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port),
            SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port),
        ]
    };
    let loopback = || {
        vec![
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port),
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), port),
        ]
    };
    match host {
        None if gateway_ports => Ok(any()),
        None => Ok(loopback()),
        Some("localhost") => Ok(loopback()),
        Some("" | "*") => Ok(any()),
        Some(h) => match h.parse::<IpAddr>() {
            Ok(ip) => Ok(vec![SocketAddr::new(ip, port)]),
            Err(_) => {
                use std::net::ToSocketAddrs;
                let addrs: Vec<SocketAddr> = (h, port)
                    .to_socket_addrs()
                    .map_err(|e| format!("cannot resolve bind address {h}: {e}"))?
                    .collect();
                if addrs.is_empty() {
                    Err(format!("bind address {h} has no addresses"))
                } else {
                    Ok(addrs)
                }
            }
        },
    }
}

/// Binds `endpoint`; on loopback/any, an IPv6 failure is tolerated when the
/// IPv4 bind worked (hosts without IPv6).
pub async fn bind(
    spec: &str,
    endpoint: &Endpoint,
    opts: &ForwardOptions,
) -> Result<Listener, ForwardError> {
    match endpoint {
        Endpoint::Tcp { host, port } => bind_tcp(spec, host.as_deref(), *port, opts).await,
        Endpoint::Unix(path) => bind_unix(spec, path, opts),
    }
}

async fn bind_tcp(
    spec: &str,
    host: Option<&str>,
    port: u16,
    opts: &ForwardOptions,
) -> Result<Listener, ForwardError> {
    let invalid = |reason: String| ForwardError::Invalid {
        spec: spec.to_owned(),
        reason,
    };
    let addrs = bind_addresses(host, port, opts.gateway_ports).map_err(invalid)?;
    let mut listeners = Vec::new();
    let mut first_err = None;
    let mut port = port;
    for mut addr in addrs {
        if addr.port() == 0 && port != 0 {
            addr.set_port(port);
        }
        match bind_one(addr) {
            Ok(l) => {
                if let Ok(a) = l.local_addr() {
                    port = a.port();
                    info!("Local forwarding listening on {a}");
                }
                listeners.push(l);
            }
            Err(e) => {
                let addr_text = addr.to_string();
                let holder = (e.kind() == std::io::ErrorKind::AddrInUse)
                    .then(|| holder_of(addr.port()))
                    .flatten();
                first_err.get_or_insert(ForwardError::Bind {
                    spec: spec.to_owned(),
                    addr: addr_text,
                    source: e,
                    holder,
                });
            }
        }
    }
    match (listeners.is_empty(), first_err) {
        (false, Some(ForwardError::Bind { source, .. }))
            if source.kind() != std::io::ErrorKind::AddrInUse =>
        {
            Ok(Listener::Tcp(listeners))
        }
        (false, None) => Ok(Listener::Tcp(listeners)),
        (_, Some(e)) => Err(e),
        (true, None) => Err(invalid("no address to listen on".into())),
    }
}

fn bind_one(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

fn bind_unix(spec: &str, path: &Path, opts: &ForwardOptions) -> Result<Listener, ForwardError> {
    let fail = |source: std::io::Error| ForwardError::Bind {
        spec: spec.to_owned(),
        addr: path.display().to_string(),
        source,
        holder: None,
    };
    if opts.stream_local_bind_unlink {
        let _ = std::fs::remove_file(path);
    }
    // The umask decides the socket's mode at bind time.
    let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(opts.stream_local_bind_mask));
    let bound = UnixListener::bind(path);
    rustix::process::umask(old);
    Ok(Listener::Unix(bound.map_err(fail)?))
}

/// "pid 1234 (postgres)" for the process listening on TCP `port`, from
/// /proc/net/tcp{,6} and /proc/*/fd (only our own processes are visible
/// unless we are root).
pub fn holder_of(port: u16) -> Option<String> {
    let inode = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .find_map(|table| listening_inode(&table, port))?;
    let target = format!("socket:[{inode}]");
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let pid = entry.file_name();
        let Some(pid) = pid
            .to_str()
            .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == target.as_str()) {
                let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
                // A process names itself: escaped, it is shown to the user.
                return Some(format!(
                    "pid {pid} ({})",
                    warren_wire::escape_str(comm.trim())
                ));
            }
        }
    }
    None
}

/// The inode of the socket listening (state 0A) on `port` in a
/// /proc/net/tcp table.
fn listening_inode(table: &str, port: u16) -> Option<String> {
    let want = format!(":{port:04X}");
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        (f.len() > 9 && f[1].ends_with(&want) && f[3] == "0A").then(|| f[9].to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_addresses_follow_gateway_ports() {
        let v4 = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(
            bind_addresses(None, 5, false).unwrap(),
            vec![v4("127.0.0.1:5"), v4("[::1]:5")]
        );
        assert_eq!(
            bind_addresses(None, 5, true).unwrap(),
            vec![v4("0.0.0.0:5"), v4("[::]:5")]
        );
        assert_eq!(
            bind_addresses(Some("*"), 5, false).unwrap(),
            vec![v4("0.0.0.0:5"), v4("[::]:5")]
        );
        assert_eq!(
            bind_addresses(Some("localhost"), 5, true).unwrap(),
            vec![v4("127.0.0.1:5"), v4("[::1]:5")]
        );
        assert_eq!(
            bind_addresses(Some("127.0.0.2"), 5, false).unwrap(),
            vec![v4("127.0.0.2:5")]
        );
    }

    #[test]
    fn finds_the_listening_inode() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
           0: 0100007F:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1\n\
           1: 0100007F:1538 0100007F:9999 01 00000000:00000000 00:00000000 00000000     0        0 4343 1\n";
        assert_eq!(listening_inode(table, 0x1538).as_deref(), Some("4242"));
        assert_eq!(listening_inode(table, 80), None);
    }

    #[tokio::test]
    async fn port_in_use_names_port_and_holder() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let spec = format!("-L {port}:h:1");
        let endpoint = Endpoint::Tcp {
            host: Some("127.0.0.1".into()),
            port,
        };
        let err = bind(&spec, &endpoint, &ForwardOptions::default())
            .await
            .err()
            .expect("in use");
        // The message names the port and holder; the cause (in use) follows.
        let text = warren_wire::Chain(&err).to_string();
        assert!(
            text.contains(&format!("127.0.0.1:{port}")) && text.contains("in use"),
            "{text}"
        );
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "names the holder: {text}"
        );
    }
}
