//! The network stages of one hop: name resolution (every address), a TCP
//! connect to each address, and the banner: what answers on the port.
//!
//! Design choice: the banner is probed on a connection of its own. The
//! probe sends an SSH identification line first, as an SSH client does,
//! so a service that waits for a request (HTTP) answers and is named; the
//! connection used for the handshake is never touched by the probe.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use warren_wire::{Escaped, escape_str};

use super::{Check, shell_quote};
use crate::session::{AddressFamily, ConnectCause};

/// The most of a banner read: RFC 4253 allows lines before the
/// identification, each up to 255 bytes.
const BANNER_LIMIT: usize = 2048;

/// The addresses `host` resolves to, filtered by AddressFamily, as a
/// check.
pub async fn resolve(
    label: &str,
    host: &str,
    port: u16,
    family: AddressFamily,
    wait: Duration,
) -> (Check, Vec<SocketAddr>) {
    let start = Instant::now();
    let name = format!("{label} resolve");
    let looked = tokio::time::timeout(wait, tokio::net::lookup_host((host, port))).await;
    let shown = escape_str(host);
    let fix = "check the name, or set HostName for this host in ~/.ssh/config";
    let addrs: Vec<SocketAddr> = match looked {
        Err(_) => {
            let check = Check::fail(
                name,
                format!("no answer resolving {shown} within {}s", wait.as_secs()),
            );
            return (
                check
                    .fix("check your DNS resolver (/etc/resolv.conf)")
                    .since(start),
                vec![],
            );
        }
        Ok(Err(e)) => {
            let check = Check::fail(name, format!("could not resolve {shown}: {e}"));
            return (check.fix(fix).since(start), vec![]);
        }
        Ok(Ok(a)) => a.collect(),
    };
    let all = addrs.len();
    let addrs: Vec<SocketAddr> = addrs
        .into_iter()
        .filter(|a| match family {
            AddressFamily::Any => true,
            AddressFamily::Inet => a.is_ipv4(),
            AddressFamily::Inet6 => a.is_ipv6(),
        })
        .collect();
    let list: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
    let check = if addrs.is_empty() {
        Check::fail(
            name,
            format!("{shown} has {all} address(es), none of the family AddressFamily asks for"),
        )
        .fix("drop -4 / -6 or AddressFamily for this host")
    } else {
        Check::ok(name, format!("{shown} is {}", list.join(", ")))
    };
    (check.since(start), addrs)
}

/// A TCP connect to `addr`, as a check, and the connection if it opened.
pub async fn connect(
    label: &str,
    host: &str,
    addr: SocketAddr,
    wait: Duration,
) -> (Check, Option<TcpStream>) {
    let start = Instant::now();
    let name = format!("{label} tcp {addr}");
    let cause = match tokio::time::timeout(wait, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            let check = Check::ok(name, format!("connected to {addr}")).since(start);
            return (check, Some(stream));
        }
        Ok(Err(e)) => ConnectCause::from_io(e),
        Err(_) => ConnectCause::TimedOut,
    };
    let (summary, fix) = explain(&cause, host, addr, wait);
    (Check::fail(name, summary).fix(fix).since(start), None)
}

/// What a failed connect means and what to do about it.
fn explain(cause: &ConnectCause, host: &str, addr: SocketAddr, wait: Duration) -> (String, String) {
    let host = escape_str(host);
    let port = addr.port();
    match cause {
        ConnectCause::Refused => (
            format!(
                "connection refused: nothing listens on port {port} of {}",
                addr.ip()
            ),
            format!(
                "check the port (-p / Port; sshd's is usually 22) and that sshd runs on {host} (systemctl status ssh)"
            ),
        ),
        ConnectCause::TimedOut => (
            format!(
                "timed out after {}s: no answer from {addr}; the packets are dropped (a firewall) or the host is down",
                wait.as_secs()
            ),
            format!(
                "check that {} is the right address for {host} (HostName), that {host} is up, and that \
                 firewalls between here and it allow TCP port {port}; on a slow link raise ConnectTimeout \
                 (-o ConnectTimeout=30)",
                addr.ip()
            ),
        ),
        ConnectCause::NoRoute => (
            "no route to host: the address is not reachable from here".to_owned(),
            format!("check the address of {host} and your network or VPN"),
        ),
        ConnectCause::Unreachable => (
            "network unreachable: no route to that network from here".to_owned(),
            "check your network connection, VPN, or IPv6 setup (-4 forces IPv4)".to_owned(),
        ),
        ConnectCause::Other(e) if e.kind() == std::io::ErrorKind::ConnectionReset => (
            "connection reset while connecting".to_owned(),
            format!("a firewall or load balancer in front of {host} is refusing the connection"),
        ),
        other => (
            format!("connect failed: {other}"),
            format!("check the address and port of {host}"),
        ),
    }
}

/// What answered on the port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Banner {
    /// An SSH-2 server; its software/version text (escaped).
    Ssh(String),
    /// An SSH-1-only server.
    Ssh1(String),
    /// An HTTP server; its first line (escaped).
    Http(String),
    /// Something else; what it said (escaped, truncated).
    Other(String),
    /// Nothing within the wait.
    Silent,
    /// The connection closed before anything was said.
    Closed,
}

/// Classifies what the server said so far. `None`: more is needed (no
/// complete line yet, below the limit, not at the end).
pub fn classify(said: &[u8], ended: bool) -> Option<Banner> {
    let complete = said.ends_with(b"\n") || said.len() >= BANNER_LIMIT || ended;
    let lines: Vec<&[u8]> = said.split(|b| *b == b'\n').collect();
    // A full line is every piece but the last (which has no newline yet).
    let full = &lines[..lines.len().saturating_sub(1)];
    for line in full {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(rest) = line.strip_prefix(b"SSH-") {
            let (proto, software) = match rest.iter().position(|b| *b == b'-') {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (rest, &b""[..]),
            };
            let software = Escaped::truncated(software, 200).to_string();
            return Some(if proto == b"2.0" || proto == b"1.99" {
                Banner::Ssh(software)
            } else {
                Banner::Ssh1(software)
            });
        }
    }
    let first = said.split(|b| *b == b'\n').next().unwrap_or(said);
    let first = first.strip_suffix(b"\r").unwrap_or(first);
    if first.starts_with(b"HTTP/") && (said.contains(&b'\n') || ended) {
        return Some(Banner::Http(Escaped::truncated(first, 100).to_string()));
    }
    if !complete {
        return None;
    }
    if said.is_empty() {
        return Some(if ended {
            Banner::Closed
        } else {
            Banner::Silent
        });
    }
    // Lines before the identification are allowed: a server that said a
    // line or two and nothing SSH-like yet may still be one, unless the
    // limit or the end was reached.
    if !ended && said.len() < BANNER_LIMIT && full.len() < 5 && !first.starts_with(b"HTTP/") {
        return None;
    }
    Some(Banner::Other(Escaped::truncated(first, 100).to_string()))
}

/// Sends an SSH identification and reads what comes back, up to `wait`.
pub async fn probe<S>(mut stream: S, wait: Duration) -> Banner
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let _ = stream.write_all(b"SSH-2.0-warren_doctor\r\n").await;
    let _ = stream.flush().await;
    let mut said = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    let mut buf = [0u8; 512];
    loop {
        let read = tokio::time::timeout_at(deadline, stream.read(&mut buf)).await;
        let ended = match read {
            Err(_) => {
                return match classify(&said, true) {
                    Some(Banner::Closed) => Banner::Silent,
                    Some(b) => b,
                    None => Banner::Silent,
                };
            }
            Ok(Ok(0)) | Ok(Err(_)) => true,
            Ok(Ok(n)) => {
                let room = BANNER_LIMIT.saturating_sub(said.len());
                said.extend_from_slice(&buf[..n.min(room)]);
                false
            }
        };
        if let Some(b) = classify(&said, ended) {
            return b;
        }
        if ended {
            return Banner::Closed;
        }
    }
}

/// The banner as a check: ok for an SSH-2 server, else a failure naming
/// what answers instead.
pub fn banner_check(
    label: &str,
    host: &str,
    port: u16,
    banner: &Banner,
    elapsed: Duration,
) -> Check {
    let name = format!("{label} banner");
    let host = escape_str(host);
    let port_fix = format!(
        "check the port: sshd usually listens on 22; set it with -p or `Port` for {host} in ~/.ssh/config"
    );
    let check = match banner {
        Banner::Ssh(software) => Check::ok(name, format!("SSH-2.0 server: {software}")),
        Banner::Ssh1(software) => Check::fail(
            name,
            format!("an SSH protocol 1 server ({software}): protocol 1 is insecure and unsupported"),
        )
        .fix(format!("upgrade the SSH server on {host}")),
        Banner::Http(line) => Check::fail(
            name,
            format!("an HTTP server answers on port {port}, not SSH (it said: {line})"),
        )
        .fix(port_fix),
        Banner::Other(line) => Check::fail(
            name,
            format!("not an SSH server on port {port}: it said \"{line}\""),
        )
        .fix(port_fix),
        Banner::Silent => Check::fail(
            name,
            format!("connected, but nothing answered on port {port}"),
        )
        .fix(format!(
            "something other than sshd holds port {port}, or sshd on {host} is overloaded (MaxStartups); {port_fix}"
        )),
        Banner::Closed => Check::fail(
            name,
            format!("the connection on port {port} was closed before any banner"),
        )
        .fix(format!(
            "sshd on {host} drops this client: check its log (journalctl -u ssh), MaxStartups, PerSourcePenalties, tcp wrappers or fail2ban"
        )),
    };
    check.took(elapsed)
}

/// `warren keygen -R` and `ssh-keygen -R` for a known_hosts line.
pub fn removal_commands(file: &str, host: &str) -> (String, String) {
    let (file, host) = (shell_quote(file), shell_quote(host));
    (
        format!("warren keygen -f {file} -R {host}"),
        format!("ssh-keygen -f {file} -R {host}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banners_table() {
        let ssh = |s: &str| Some(Banner::Ssh(s.to_owned()));
        let cases: Vec<(&[u8], bool, Option<Banner>)> = vec![
            (
                b"SSH-2.0-OpenSSH_9.2p1 Debian\r\n",
                false,
                ssh("OpenSSH_9.2p1 Debian"),
            ),
            (b"SSH-1.99-Old\r\n", false, ssh("Old")),
            (b"SSH-2.0-OpenSSH", false, None),
            (
                b"SSH-1.5-Ancient\n",
                false,
                Some(Banner::Ssh1("Ancient".into())),
            ),
            (b"hello\r\nSSH-2.0-X\r\n", false, ssh("X")),
            (b"hello\r\n", false, None),
            (b"hello\r\n", true, Some(Banner::Other("hello".into()))),
            (
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n",
                false,
                Some(Banner::Http("HTTP/1.1 400 Bad Request".into())),
            ),
            (b"HTTP/1.1 400", false, None),
            (b"", true, Some(Banner::Closed)),
            (b"", false, None),
            (b"SSH-2.0-evil\x1b[2J\r\n", false, ssh("evil\\e[2J")),
        ];
        for (said, ended, want) in cases {
            assert_eq!(
                classify(said, ended),
                want,
                "{:?}",
                String::from_utf8_lossy(said)
            );
        }
        let long = vec![b'x'; BANNER_LIMIT];
        assert!(matches!(classify(&long, false), Some(Banner::Other(_))));
    }

    #[test]
    fn removal_commands_quote() {
        let (w, s) = removal_commands("/home/u/.ssh/known_hosts", "[127.0.0.1]:2222");
        assert_eq!(
            w,
            "warren keygen -f /home/u/.ssh/known_hosts -R '[127.0.0.1]:2222'"
        );
        assert_eq!(
            s,
            "ssh-keygen -f /home/u/.ssh/known_hosts -R '[127.0.0.1]:2222'"
        );
    }
}
