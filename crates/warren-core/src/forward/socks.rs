//! The server side of SOCKS4, SOCKS4a and SOCKS5, as used by dynamic
//! forwarding (`-D [bind:]port` and `-R port`): a local client (a browser,
//! curl) says where it wants to go, and warren opens one SSH `direct-tcpip`
//! channel per connection to that target.
//!
//! The design choice to know: this is a sans-IO codec. [`Handshake::advance`]
//! reads from a `BytesMut` the caller fills and returns either a reply to send
//! back or the finished [`Request`]; it never touches a socket, so every byte
//! boundary is testable without one. [`accept`] is the thin async loop over a
//! stream for callers that just want the request.
//!
//! Scope: SOCKS5 (RFC 1928) with the "no authentication" method only and the
//! CONNECT command only; SOCKS4 and SOCKS4a CONNECT. Address types are IPv4,
//! IPv6 and domain names, and names are never resolved here: they travel in
//! the `direct-tcpip` request and the server resolves them, which is the point
//! of SOCKS4a and SOCKS5 "remote DNS".
//!
//! Hand-written because no crate offers server-side SOCKS4/4a/5 as a sans-IO
//! codec: the existing ones either own the socket and dial the target
//! themselves, or speak only the client side, and neither fits a design where
//! the "connect" is an SSH channel opened by the caller.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use warren_wire::{Escaped, escape_str};

/// Longest SOCKS4 user id, and longest SOCKS4a host name, we accept (in bytes,
/// not counting the terminating NUL). The protocol sets no limit; without one
/// a client could make us buffer forever while we look for the NUL.
pub const MAX_NUL_FIELD: usize = 255;

const SOCKS4: u8 = 0x04;
const SOCKS5: u8 = 0x05;
const CMD_CONNECT: u8 = 0x01;
const METHOD_NO_AUTH: u8 = 0x00;
const METHOD_NONE_ACCEPTABLE: u8 = 0xFF;
/// SOCKS5 method selection: "no authentication" chosen.
const V5_NO_AUTH_CHOSEN: &[u8] = &[SOCKS5, METHOD_NO_AUTH];
/// SOCKS5 method selection: none of the offered methods is acceptable.
const V5_NO_METHOD_ACCEPTABLE: &[u8] = &[SOCKS5, METHOD_NONE_ACCEPTABLE];
const ATYP_IPV4: u8 = 0x01;
const ATYP_DOMAIN: u8 = 0x03;
const ATYP_IPV6: u8 = 0x04;
const SOCKS4_REPLY_VERSION: u8 = 0x00;
const SOCKS4_GRANTED: u8 = 0x5A;
const SOCKS4_REJECTED: u8 = 0x5B;

/// Which protocol the client spoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    V4,
    /// SOCKS4 with the host name sent after the user id (destination IP
    /// `0.0.0.x`, `x != 0`).
    V4a,
    V5,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Version::V4 => "SOCKS4",
            Version::V4a => "SOCKS4a",
            Version::V5 => "SOCKS5",
        })
    }
}

/// Where the client wants to connect.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    Ip(SocketAddr),
    /// A name to be resolved on the remote side, and a port.
    Domain(String, u16),
}

impl Target {
    /// The host as it goes into a `direct-tcpip` request: an address without
    /// brackets, or the name as the client sent it.
    pub fn host(&self) -> String {
        match self {
            Target::Ip(addr) => addr.ip().to_string(),
            Target::Domain(name, _) => name.clone(),
        }
    }

    pub fn port(&self) -> u16 {
        match self {
            Target::Ip(addr) => addr.port(),
            Target::Domain(_, port) => *port,
        }
    }
}

/// `host:port`, with an IPv6 address (or a name containing `:`) in brackets.
impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Ip(addr) => addr.fmt(f),
            // The name is the SOCKS client's: escaped, so it cannot forge
            // log lines or act on the terminal.
            Target::Domain(name, port) if name.contains(':') => {
                write!(f, "[{}]:{port}", escape_str(name))
            }
            Target::Domain(name, port) => write!(f, "{}:{port}", escape_str(name)),
        }
    }
}

/// A complete CONNECT request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub version: Version,
    pub target: Target,
}

/// What [`Handshake::advance`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send these bytes to the client, then call `advance` again (the buffer
    /// may already hold the next message, so call it even if nothing new was
    /// read).
    Reply(Bytes),
    /// The handshake is over. Open the connection, then send
    /// [`success_reply`] or [`failure_reply`]. Bytes left in the buffer are
    /// data the client sent ahead: forward them.
    Done(Request),
}

/// Why a request is refused; maps to a SOCKS5 reply code (SOCKS4 has only
/// "rejected").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Failure {
    General,
    NotAllowed,
    NetworkUnreachable,
    HostUnreachable,
    ConnectionRefused,
    CommandNotSupported,
    AddressTypeNotSupported,
}

impl Failure {
    /// The SOCKS5 `REP` code (RFC 1928 §6).
    pub fn code(self) -> u8 {
        match self {
            Failure::General => 0x01,
            Failure::NotAllowed => 0x02,
            Failure::NetworkUnreachable => 0x03,
            Failure::HostUnreachable => 0x04,
            Failure::ConnectionRefused => 0x05,
            Failure::CommandNotSupported => 0x07,
            Failure::AddressTypeNotSupported => 0x08,
        }
    }
}

/// What was wrong with the client's handshake.
#[derive(thiserror::Error, Debug)]
pub enum SocksError {
    #[error("unknown SOCKS version byte {byte:#04x} (expected 0x04 or 0x05){}", http_hint(*byte))]
    UnknownVersion { byte: u8 },
    #[error(
        "SOCKS5 client offered no acceptable authentication method \
         (client offered [{}]; warren accepts only 0x00, no authentication)",
        hex_list(offered)
    )]
    NoAcceptableMethod { offered: Vec<u8> },
    #[error("SOCKS5 request starts with version byte {byte:#04x}, expected 0x05")]
    RequestVersion { byte: u8 },
    #[error(
        "unsupported {version} command {command:#04x} ({}); only CONNECT (0x01) is supported",
        command_name(*command)
    )]
    UnsupportedCommand { version: Version, command: u8 },
    #[error("SOCKS5 request reserved byte is {byte:#04x}, expected 0x00")]
    Reserved { byte: u8 },
    #[error(
        "bad SOCKS5 address type {atyp:#04x} (expected 0x01 IPv4, 0x03 domain name or 0x04 IPv6)"
    )]
    AddressType { atyp: u8 },
    #[error("{version} domain name is empty")]
    EmptyDomain { version: Version },
    #[error("{version} domain name is not UTF-8: \"{escaped}\"")]
    DomainNotUtf8 { version: Version, escaped: String },
    #[error("SOCKS4 user id is longer than {MAX_NUL_FIELD} bytes (no NUL terminator found)")]
    UserIdTooLong,
    #[error("SOCKS4a host name is longer than {MAX_NUL_FIELD} bytes (no NUL terminator found)")]
    HostTooLong,
    #[error("client closed the connection {stage} ({buffered} bytes of it received)")]
    UnexpectedEof {
        stage: &'static str,
        buffered: usize,
    },
    #[error("I/O error during the SOCKS handshake: {0}")]
    Io(#[from] std::io::Error),
}

impl SocksError {
    /// The bytes to send the client before closing, when the protocol has a
    /// way to say what went wrong. [`accept`] sends them itself.
    pub fn reply(&self) -> Option<Bytes> {
        let (version, failure) = match self {
            Self::UnknownVersion { .. } | Self::UnexpectedEof { .. } | Self::Io(_) => return None,
            Self::NoAcceptableMethod { .. } => {
                return Some(Bytes::from_static(V5_NO_METHOD_ACCEPTABLE));
            }
            Self::UnsupportedCommand { version, .. } => (*version, Failure::CommandNotSupported),
            Self::AddressType { .. } => (Version::V5, Failure::AddressTypeNotSupported),
            Self::RequestVersion { .. } | Self::Reserved { .. } => (Version::V5, Failure::General),
            Self::EmptyDomain { version } | Self::DomainNotUtf8 { version, .. } => {
                (*version, Failure::General)
            }
            Self::UserIdTooLong => (Version::V4, Failure::General),
            Self::HostTooLong => (Version::V4a, Failure::General),
        };
        Some(failure_reply(version, failure))
    }
}

fn http_hint(byte: u8) -> &'static str {
    if byte.is_ascii_uppercase() {
        "; it looks like text, is the client speaking HTTP to a SOCKS port?"
    } else {
        ""
    }
}

fn hex_list(bytes: &[u8]) -> String {
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:#04x}")).collect();
    hex.join(", ")
}

fn command_name(command: u8) -> &'static str {
    match command {
        0x01 => "CONNECT",
        0x02 => "BIND",
        0x03 => "UDP ASSOCIATE",
        _ => "unknown",
    }
}

/// Where the handshake is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    /// Nothing consumed yet: a SOCKS5 greeting or a whole SOCKS4 request.
    #[default]
    Start,
    /// SOCKS5 method selection answered; the request comes next.
    V5Request,
    /// Done or failed; nothing more is consumed.
    Finished,
}

/// The server side of one SOCKS handshake, fed bytes as they arrive.
///
/// Each message is consumed only once it is complete, so feeding one byte at
/// a time gives the same steps, errors and leftover as feeding everything at
/// once.
#[derive(Debug, Default)]
pub struct Handshake {
    state: State,
}

impl Handshake {
    pub fn new() -> Self {
        Self::default()
    }

    /// Consumes what it can from `buf`. `Ok(None)` means "need more bytes";
    /// once `Done` or an error has been returned it consumes nothing more and
    /// keeps returning `Ok(None)`.
    ///
    /// # Errors
    ///
    /// Any protocol violation or unsupported request; [`SocksError::reply`]
    /// says what, if anything, to send the client before closing.
    pub fn advance(&mut self, buf: &mut BytesMut) -> Result<Option<Step>, SocksError> {
        let step = self.step(buf);
        if !matches!(step, Ok(None | Some(Step::Reply(_)))) {
            self.state = State::Finished;
        }
        step
    }

    fn step(&mut self, buf: &mut BytesMut) -> Result<Option<Step>, SocksError> {
        match self.state {
            State::Start => self.start(buf),
            State::V5Request => Ok(consume(buf, parse_v5_request(buf)?).map(Step::Done)),
            State::Finished => Ok(None),
        }
    }

    fn start(&mut self, buf: &mut BytesMut) -> Result<Option<Step>, SocksError> {
        match buf.first() {
            None => Ok(None),
            Some(&SOCKS4) => Ok(consume(buf, parse_v4(buf)?).map(Step::Done)),
            Some(&SOCKS5) => {
                let Some(len) = parse_v5_greeting(buf)? else {
                    return Ok(None);
                };
                buf.advance(len);
                self.state = State::V5Request;
                Ok(Some(Step::Reply(Bytes::from_static(V5_NO_AUTH_CHOSEN))))
            }
            Some(&byte) => Err(SocksError::UnknownVersion { byte }),
        }
    }

    /// What the handshake is waiting for, for error messages.
    fn stage(&self) -> &'static str {
        match self.state {
            State::Start => "before sending a complete SOCKS greeting",
            State::V5Request => "before sending a complete SOCKS5 request",
            State::Finished => "after the SOCKS handshake",
        }
    }
}

/// Drops a parsed message's bytes from `buf` and hands back the message.
fn consume<T>(buf: &mut BytesMut, parsed: Option<(T, usize)>) -> Option<T> {
    let (msg, len) = parsed?;
    buf.advance(len);
    Some(msg)
}

/// SOCKS4/4a: `VN=4 CD DSTPORT(2) DSTIP(4) USERID NUL [HOST NUL]`.
/// Returns the request and its length.
fn parse_v4(b: &[u8]) -> Result<Option<(Request, usize)>, SocksError> {
    let Some((&[_, command, p0, p1, i0, i1, i2, i3], rest)) = b.split_first_chunk::<8>() else {
        return Ok(None);
    };
    let port = u16::from_be_bytes([p0, p1]);
    let is_4a = [i0, i1, i2] == [0, 0, 0] && i3 != 0;
    let version = if is_4a { Version::V4a } else { Version::V4 };
    if command != CMD_CONNECT {
        return Err(SocksError::UnsupportedCommand { version, command });
    }
    // The user id is only checked for length: OpenSSH ignores it too.
    let after_user = match nul_terminated(rest) {
        NulField::Complete { after, .. } => after,
        NulField::Incomplete => return Ok(None),
        NulField::TooLong => return Err(SocksError::UserIdTooLong),
    };
    if !is_4a {
        let target = Target::Ip(SocketAddr::from((Ipv4Addr::new(i0, i1, i2, i3), port)));
        return Ok(Some((
            Request { version, target },
            b.len() - after_user.len(),
        )));
    }
    let (host, after_host) = match nul_terminated(after_user) {
        NulField::Complete { field, after } => (field, after),
        NulField::Incomplete => return Ok(None),
        NulField::TooLong => return Err(SocksError::HostTooLong),
    };
    let target = Target::Domain(domain(version, host)?, port);
    Ok(Some((
        Request { version, target },
        b.len() - after_host.len(),
    )))
}

enum NulField<'a> {
    /// The field without its NUL, and what follows the NUL.
    Complete {
        field: &'a [u8],
        after: &'a [u8],
    },
    Incomplete,
    TooLong,
}

/// A NUL-terminated field of at most [`MAX_NUL_FIELD`] bytes at the start of `b`.
fn nul_terminated(b: &[u8]) -> NulField<'_> {
    let mut parts = b.splitn(2, |&byte| byte == 0);
    match (parts.next(), parts.next()) {
        (Some(field), Some(after)) if field.len() <= MAX_NUL_FIELD => {
            NulField::Complete { field, after }
        }
        _ if b.len() > MAX_NUL_FIELD => NulField::TooLong,
        _ => NulField::Incomplete,
    }
}

/// SOCKS5 greeting: `VER=5 NMETHODS METHODS...`. Returns its length if the
/// client offered "no authentication".
fn parse_v5_greeting(b: &[u8]) -> Result<Option<usize>, SocksError> {
    let Some(&[_, count]) = b.get(..2) else {
        return Ok(None);
    };
    let len = 2 + usize::from(count);
    let Some(methods) = b.get(2..len) else {
        return Ok(None);
    };
    if !methods.contains(&METHOD_NO_AUTH) {
        return Err(SocksError::NoAcceptableMethod {
            offered: methods.to_vec(),
        });
    }
    Ok(Some(len))
}

/// SOCKS5 request: `VER CMD RSV ATYP DST.ADDR DST.PORT(2)`.
/// Returns the request and its length.
fn parse_v5_request(b: &[u8]) -> Result<Option<(Request, usize)>, SocksError> {
    let Some(&[ver, command, rsv, atyp]) = b.get(..4) else {
        return Ok(None);
    };
    if ver != SOCKS5 {
        return Err(SocksError::RequestVersion { byte: ver });
    }
    if command != CMD_CONNECT {
        let version = Version::V5;
        return Err(SocksError::UnsupportedCommand { version, command });
    }
    if rsv != 0 {
        return Err(SocksError::Reserved { byte: rsv });
    }
    let parsed = match atyp {
        ATYP_IPV4 => parse_v5_ip(b, 4),
        ATYP_IPV6 => parse_v5_ip(b, 16),
        ATYP_DOMAIN => parse_v5_domain(b)?,
        _ => return Err(SocksError::AddressType { atyp }),
    };
    let request = |(target, len)| {
        let version = Version::V5;
        (Request { version, target }, len)
    };
    Ok(parsed.map(request))
}

/// The address and port after a SOCKS5 request header, for an IP address of
/// `addr_len` (4 or 16) bytes.
fn parse_v5_ip(b: &[u8], addr_len: usize) -> Option<(Target, usize)> {
    let end = 4 + addr_len;
    let ip = ip_from(b.get(4..end)?)?;
    let &[p0, p1] = b.get(end..end + 2)? else {
        return None;
    };
    let port = u16::from_be_bytes([p0, p1]);
    Some((Target::Ip(SocketAddr::new(ip, port)), end + 2))
}

fn ip_from(octets: &[u8]) -> Option<IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(octets) {
        return Some(IpAddr::from(v4));
    }
    <[u8; 16]>::try_from(octets).ok().map(IpAddr::from)
}

/// The length-prefixed name and port after a SOCKS5 request header.
fn parse_v5_domain(b: &[u8]) -> Result<Option<(Target, usize)>, SocksError> {
    let Some(&name_len) = b.get(4) else {
        return Ok(None);
    };
    if name_len == 0 {
        let version = Version::V5;
        return Err(SocksError::EmptyDomain { version });
    }
    let name_end = 5 + usize::from(name_len);
    let len = name_end + 2;
    let (Some(name), Some(&[p0, p1])) = (b.get(5..name_end), b.get(name_end..len)) else {
        return Ok(None);
    };
    let port = u16::from_be_bytes([p0, p1]);
    Ok(Some((
        Target::Domain(domain(Version::V5, name)?, port),
        len,
    )))
}

/// A host name as sent by the client: non-empty UTF-8.
fn domain(version: Version, name: &[u8]) -> Result<String, SocksError> {
    if name.is_empty() {
        return Err(SocksError::EmptyDomain { version });
    }
    String::from_utf8(name.to_vec()).map_err(|_| SocksError::DomainNotUtf8 {
        version,
        escaped: Escaped::truncated(name, 255).to_string(),
    })
}

/// The reply telling the client its connection is up. `bound` is the address
/// the server side is using; clients ignore it, so `0.0.0.0:0` is fine. SOCKS4
/// cannot carry an IPv6 address and sends `0.0.0.0` with the port instead.
pub fn success_reply(version: Version, bound: SocketAddr) -> Bytes {
    match version {
        Version::V4 | Version::V4a => socks4_reply(SOCKS4_GRANTED, bound),
        Version::V5 => socks5_reply(0x00, bound),
    }
}

/// The reply refusing the request. SOCKS4 has a single "rejected" code, so
/// `reason` only shows in SOCKS5.
pub fn failure_reply(version: Version, reason: Failure) -> Bytes {
    let unbound = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
    match version {
        Version::V4 | Version::V4a => socks4_reply(SOCKS4_REJECTED, unbound),
        Version::V5 => socks5_reply(reason.code(), unbound),
    }
}

/// `VN=0 CD DSTPORT(2) DSTIP(4)`.
fn socks4_reply(code: u8, bound: SocketAddr) -> Bytes {
    let ip = match bound {
        SocketAddr::V4(v4) => *v4.ip(),
        SocketAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
    };
    let mut out = BytesMut::with_capacity(8);
    out.put_u8(SOCKS4_REPLY_VERSION);
    out.put_u8(code);
    out.put_u16(bound.port());
    out.put_slice(&ip.octets());
    out.freeze()
}

/// `VER=5 REP RSV=0 ATYP BND.ADDR BND.PORT(2)`.
fn socks5_reply(code: u8, bound: SocketAddr) -> Bytes {
    let mut out = BytesMut::with_capacity(22);
    out.put_slice(&[SOCKS5, code, 0x00]);
    match bound {
        SocketAddr::V4(v4) => {
            out.put_u8(ATYP_IPV4);
            out.put_slice(&v4.ip().octets());
        }
        SocketAddr::V6(v6) => {
            out.put_u8(ATYP_IPV6);
            out.put_slice(&v6.ip().octets());
        }
    }
    out.put_u16(bound.port());
    out.freeze()
}

/// Reads the client's greeting and request from `stream`, answering SOCKS5
/// method selection. Returns the request and any bytes the client already
/// sent after it, which the caller must forward before anything else read
/// from the stream.
///
/// On a protocol error the matching refusal (for example `05 FF` when no
/// method is acceptable, "command not supported" for BIND) is written before
/// the error is returned. The success or failure reply to the request itself
/// is the caller's, once it knows whether the channel opened.
///
/// This waits as long as the client takes; wrap it in `tokio::time::timeout`.
///
/// # Errors
///
/// A protocol error from [`Handshake::advance`] (after its refusal was sent),
/// [`SocksError::UnexpectedEof`] if the client hangs up first, or
/// [`SocksError::Io`].
pub async fn accept<S>(stream: &mut S) -> Result<(Request, BytesMut), SocksError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut handshake = Handshake::new();
    let mut buf = BytesMut::with_capacity(512);
    loop {
        match handshake.advance(&mut buf) {
            Ok(Some(Step::Done(request))) => return Ok((request, buf)),
            Ok(Some(Step::Reply(reply))) => send(stream, &reply).await?,
            Ok(None) => read_more(stream, &mut buf, &handshake).await?,
            Err(err) => {
                if let Some(reply) = err.reply() {
                    // Best effort: the protocol error is what the caller
                    // needs to hear about, not a failed write of the refusal.
                    let _ = send(stream, &reply).await;
                }
                return Err(err);
            }
        }
    }
}

async fn send<S: AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) -> Result<(), SocksError> {
    stream.write_all(bytes).await?;
    stream.flush().await?;
    Ok(())
}

async fn read_more<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut BytesMut,
    handshake: &Handshake,
) -> Result<(), SocksError> {
    if stream.read_buf(buf).await? == 0 {
        return Err(SocksError::UnexpectedEof {
            stage: handshake.stage(),
            buffered: buf.len(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{SocketAddrV4, SocketAddrV6};

    /// Everything a handshake produced from one input.
    #[derive(Debug, PartialEq)]
    struct Outcome {
        replies: Vec<Vec<u8>>,
        /// The request, or the error's message and the reply it asks for.
        result: Result<Request, (String, Option<Vec<u8>>)>,
        leftover: Vec<u8>,
    }

    /// Feeds `input` split at `cuts` (sorted or not, out of range ignored).
    /// `result` is `Err(("incomplete", None))` if the input runs out first;
    /// `leftover` is everything not consumed, fed or not.
    fn feed(input: &[u8], cuts: &[usize]) -> Outcome {
        let mut cuts: Vec<usize> = cuts.iter().copied().filter(|&c| c < input.len()).collect();
        cuts.push(input.len());
        cuts.sort_unstable();
        let mut handshake = Handshake::new();
        let mut buf = BytesMut::new();
        let mut replies = Vec::new();
        let mut start = 0;
        for end in cuts {
            buf.extend_from_slice(&input[start..end]);
            start = end;
            loop {
                match handshake.advance(&mut buf) {
                    Ok(None) => break,
                    Ok(Some(Step::Reply(r))) => replies.push(r.to_vec()),
                    Ok(Some(Step::Done(request))) => {
                        buf.extend_from_slice(&input[start..]);
                        let leftover = buf.to_vec();
                        return Outcome {
                            replies,
                            result: Ok(request),
                            leftover,
                        };
                    }
                    Err(e) => {
                        let reply = e.reply().map(|r| r.to_vec());
                        buf.extend_from_slice(&input[start..]);
                        let leftover = buf.to_vec();
                        return Outcome {
                            replies,
                            result: Err((e.to_string(), reply)),
                            leftover,
                        };
                    }
                }
            }
        }
        let result = Err(("incomplete".to_owned(), None));
        Outcome {
            replies,
            result,
            leftover: buf.to_vec(),
        }
    }

    fn every_split(input: &[u8]) -> Vec<Vec<usize>> {
        let mut splits = vec![vec![], (1..input.len()).collect()];
        splits.extend((1..input.len()).map(|c| vec![c]));
        splits
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    fn ip(s: &str) -> Target {
        Target::Ip(s.parse().unwrap())
    }

    fn named(name: &str, port: u16) -> Target {
        Target::Domain(name.to_owned(), port)
    }

    const V5_HELLO: &[u8] = &[5, 1, 0];
    const V5_OK: &[u8] = &[5, 0];
    const LOCALHOST_V6: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

    /// Name, input, replies expected before the end, request, leftover.
    type ValidCase = (
        &'static str,
        Vec<u8>,
        Vec<&'static [u8]>,
        Version,
        Target,
        &'static [u8],
    );
    /// Name, input, replies expected before the error, message, refusal.
    type BadCase = (
        &'static str,
        Vec<u8>,
        Vec<&'static [u8]>,
        &'static str,
        Option<Vec<u8>>,
    );

    // The client's name went into log lines as sent: a newline in it
    // forged a "warren: ..." line.
    #[test]
    fn a_target_name_is_shown_escaped_and_sent_unchanged() {
        let name = "evil\nwarren: forged\x1b[2J";
        let t = Target::Domain(name.into(), 80);
        assert_eq!(t.to_string(), "[evil\\nwarren: forged\\e[2J]:80");
        assert_eq!(t.host(), name);
        let v6 = Target::Domain("::1\r".into(), 1);
        assert_eq!(v6.to_string(), "[::1\\r]:1");
        let e = domain(Version::V5, b"caf\xe9\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "SOCKS5 domain name is not UTF-8: \"caf\\xe9\\n\""
        );
    }

    #[test]
    fn decodes_valid_requests() {
        let v6_req = cat(&[V5_HELLO, &[5, 1, 0, 4], &LOCALHOST_V6, &[0x1f, 0x90]]);
        #[rustfmt::skip]
        let cases: Vec<ValidCase> = vec![
            ("v4 with user id", cat(&[&[4, 1, 0, 80, 93, 184, 216, 34], b"alice\0"]),
                vec![], Version::V4, ip("93.184.216.34:80"), b""),
            ("v4 empty user id", vec![4, 1, 0, 22, 10, 0, 0, 1, 0],
                vec![], Version::V4, ip("10.0.0.1:22"), b""),
            ("v4 pipelined data stays", cat(&[&[4, 1, 0, 80, 10, 0, 0, 1, 0], b"GET /"]),
                vec![], Version::V4, ip("10.0.0.1:80"), b"GET /"),
            // 0.0.0.0 is a plain (if odd) SOCKS4 address, not a 4a marker.
            ("v4 to 0.0.0.0 is not 4a", vec![4, 1, 0, 80, 0, 0, 0, 0, 0],
                vec![], Version::V4, ip("0.0.0.0:80"), b""),
            ("v4a", cat(&[&[4, 1, 1, 0xbb, 0, 0, 0, 1, 0], b"example.com\0"]),
                vec![], Version::V4a, named("example.com", 443), b""),
            ("v4a with user id and data", cat(&[&[4, 1, 0, 80, 0, 0, 0, 255], b"bob\0h\0", &[0, 1]]),
                vec![], Version::V4a, named("h", 80), &[0, 1]),
            ("v4a max user id and host",
                cat(&[&[4, 1, 0, 80, 0, 0, 0, 9], &[b'u'; 255], b"\0", &[b'h'; 255], b"\0"]),
                vec![], Version::V4a, named(&"h".repeat(255), 80), b""),
            ("v5 ipv4", cat(&[V5_HELLO, &[5, 1, 0, 1, 127, 0, 0, 1, 0, 22]]),
                vec![V5_OK], Version::V5, ip("127.0.0.1:22"), b""),
            ("v5 several methods", cat(&[&[5, 3, 2, 1, 0], &[5, 1, 0, 1, 127, 0, 0, 1, 0, 22]]),
                vec![V5_OK], Version::V5, ip("127.0.0.1:22"), b""),
            ("v5 ipv6", v6_req,
                vec![V5_OK], Version::V5, ip("[::1]:8080"), b""),
            ("v5 domain", cat(&[V5_HELLO, &[5, 1, 0, 3, 11], b"example.com", &[0, 80]]),
                vec![V5_OK], Version::V5, named("example.com", 80), b""),
            ("v5 unicode domain", cat(&[V5_HELLO, &[5, 1, 0, 3, 6], "bü.de".as_bytes(), &[0, 80]]),
                vec![V5_OK], Version::V5, named("bü.de", 80), b""),
            ("v5 pipelined data stays", cat(&[V5_HELLO, &[5, 1, 0, 3, 1, b'h', 1, 0], b"\x16\x03\x01"]),
                vec![V5_OK], Version::V5, named("h", 256), b"\x16\x03\x01"),
        ];
        for (name, input, replies, version, target, leftover) in cases {
            let expected = Outcome {
                replies: replies.iter().map(|r| r.to_vec()).collect(),
                result: Ok(Request { version, target }),
                leftover: leftover.to_vec(),
            };
            for cuts in every_split(&input) {
                assert_eq!(feed(&input, &cuts), expected, "{name}, split at {cuts:?}");
            }
        }
    }

    #[test]
    fn rejects_bad_requests() {
        let refused_v4: &[u8] = &[0, 0x5b, 0, 0, 0, 0, 0, 0];
        let v5_refusal = |code| vec![5, code, 0, 1, 0, 0, 0, 0, 0, 0];
        #[rustfmt::skip]
        let cases: Vec<BadCase> = vec![
            ("http to a socks port", b"GET / HTTP/1.1\r\n".to_vec(), vec![],
                "unknown SOCKS version byte 0x47 (expected 0x04 or 0x05); it looks like text, \
                 is the client speaking HTTP to a SOCKS port?", None),
            ("socks version 6", vec![6, 1, 0], vec![],
                "unknown SOCKS version byte 0x06 (expected 0x04 or 0x05)", None),
            ("v5 offers no methods", vec![5, 0], vec![],
                "SOCKS5 client offered no acceptable authentication method (client offered []; \
                 warren accepts only 0x00, no authentication)", Some(vec![5, 0xff])),
            ("v5 offers only gssapi and password", vec![5, 2, 1, 2], vec![],
                "SOCKS5 client offered no acceptable authentication method (client offered \
                 [0x01, 0x02]; warren accepts only 0x00, no authentication)", Some(vec![5, 0xff])),
            ("v5 bind", cat(&[V5_HELLO, &[5, 2, 0, 1, 1, 2, 3, 4, 0, 80]]), vec![V5_OK],
                "unsupported SOCKS5 command 0x02 (BIND); only CONNECT (0x01) is supported",
                Some(v5_refusal(7))),
            ("v5 udp associate", cat(&[V5_HELLO, &[5, 3, 0, 1]]), vec![V5_OK],
                "unsupported SOCKS5 command 0x03 (UDP ASSOCIATE); only CONNECT (0x01) is supported",
                Some(v5_refusal(7))),
            ("v5 request version 4", cat(&[V5_HELLO, &[4, 1, 0, 1]]), vec![V5_OK],
                "SOCKS5 request starts with version byte 0x04, expected 0x05", Some(v5_refusal(1))),
            ("v5 reserved byte set", cat(&[V5_HELLO, &[5, 1, 7, 1]]), vec![V5_OK],
                "SOCKS5 request reserved byte is 0x07, expected 0x00", Some(v5_refusal(1))),
            ("v5 address type 2", cat(&[V5_HELLO, &[5, 1, 0, 2]]), vec![V5_OK],
                "bad SOCKS5 address type 0x02 (expected 0x01 IPv4, 0x03 domain name or 0x04 IPv6)",
                Some(v5_refusal(8))),
            ("v5 empty domain", cat(&[V5_HELLO, &[5, 1, 0, 3, 0]]), vec![V5_OK],
                "SOCKS5 domain name is empty", Some(v5_refusal(1))),
            ("v5 domain not utf-8", cat(&[V5_HELLO, &[5, 1, 0, 3, 2, 0xff, b'a', 0, 80]]), vec![V5_OK],
                "SOCKS5 domain name is not UTF-8: \"\\xffa\"", Some(v5_refusal(1))),
            ("v4 bind", vec![4, 2, 0, 80, 1, 2, 3, 4], vec![],
                "unsupported SOCKS4 command 0x02 (BIND); only CONNECT (0x01) is supported",
                Some(refused_v4.to_vec())),
            ("v4a command 9", vec![4, 9, 0, 80, 0, 0, 0, 1], vec![],
                "unsupported SOCKS4a command 0x09 (unknown); only CONNECT (0x01) is supported",
                Some(refused_v4.to_vec())),
            ("v4 user id too long", cat(&[&[4, 1, 0, 80, 1, 2, 3, 4], &[b'u'; 256]]), vec![],
                "SOCKS4 user id is longer than 255 bytes (no NUL terminator found)",
                Some(refused_v4.to_vec())),
            ("v4a host too long", cat(&[&[4, 1, 0, 80, 0, 0, 0, 1, 0], &[b'h'; 256]]), vec![],
                "SOCKS4a host name is longer than 255 bytes (no NUL terminator found)",
                Some(refused_v4.to_vec())),
            ("v4a empty host", vec![4, 1, 0, 80, 0, 0, 0, 1, b'u', 0, 0], vec![],
                "SOCKS4a domain name is empty", Some(refused_v4.to_vec())),
            ("v4a host not utf-8", vec![4, 1, 0, 80, 0, 0, 0, 1, 0, 0xc3, 0], vec![],
                "SOCKS4a domain name is not UTF-8: \"\\xc3\"", Some(refused_v4.to_vec())),
        ];
        for (name, input, replies, message, reply) in cases {
            let replies: Vec<Vec<u8>> = replies.iter().map(|r| r.to_vec()).collect();
            for cuts in every_split(&input) {
                let outcome = feed(&input, &cuts);
                assert_eq!(outcome.replies, replies, "{name}, split at {cuts:?}");
                let expected = Err((message.to_owned(), reply.clone()));
                assert_eq!(outcome.result, expected, "{name}, split at {cuts:?}");
            }
        }
    }

    #[test]
    fn incomplete_input_waits_and_consumes_nothing() {
        let inputs: [&[u8]; 6] = [
            &[],
            &[4, 1, 0, 80, 1, 2, 3],
            &[4, 1, 0, 80, 0, 0, 0, 1, b'u', 0, b'h'],
            &[5, 2, 0],
            &[5, 1, 0, 5, 1, 0, 4, 0],
            &[5, 1, 0, 5, 1, 0, 3, 4, b'h', b'o', b's', b't', 0],
        ];
        for input in inputs {
            let mut handshake = Handshake::new();
            let mut buf = BytesMut::from(input);
            let mut replies = 0;
            while let Some(Step::Reply(_)) = handshake.advance(&mut buf).unwrap() {
                replies += 1;
            }
            let after_greeting = if replies == 1 { 3 } else { 0 };
            assert_eq!(&buf[..], &input[after_greeting..], "{input:?}");
        }
    }

    #[test]
    fn finished_handshake_consumes_nothing_more() {
        let mut handshake = Handshake::new();
        let mut buf = BytesMut::from(&[4, 1, 0, 80, 1, 2, 3, 4, 0, 4, 1][..]);
        assert!(matches!(
            handshake.advance(&mut buf),
            Ok(Some(Step::Done(_)))
        ));
        assert_eq!(handshake.advance(&mut buf).unwrap(), None);
        assert_eq!(&buf[..], &[4, 1]);
    }

    #[test]
    fn encodes_success_replies() {
        let v6: SocketAddr = "[2001:db8::7]:1080".parse().unwrap();
        let mut v6_reply = vec![5, 0, 0, 4, 0x20, 0x01, 0x0d, 0xb8];
        v6_reply.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0x04, 0x38]);
        #[rustfmt::skip]
        let cases: Vec<(Version, &str, Vec<u8>)> = vec![
            (Version::V4, "0.0.0.0:0", vec![0, 0x5a, 0, 0, 0, 0, 0, 0]),
            (Version::V4, "10.1.2.3:1080", vec![0, 0x5a, 0x04, 0x38, 10, 1, 2, 3]),
            (Version::V4a, "10.1.2.3:1080", vec![0, 0x5a, 0x04, 0x38, 10, 1, 2, 3]),
            (Version::V4, "[2001:db8::7]:1080", vec![0, 0x5a, 0x04, 0x38, 0, 0, 0, 0]),
            (Version::V5, "0.0.0.0:0", vec![5, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
            (Version::V5, "192.168.1.1:443", vec![5, 0, 0, 1, 192, 168, 1, 1, 1, 0xbb]),
            (Version::V5, "[2001:db8::7]:1080", v6_reply),
        ];
        for (version, bound, expected) in cases {
            let bound: SocketAddr = bound.parse().unwrap();
            assert_eq!(
                &success_reply(version, bound)[..],
                &expected[..],
                "{version} {bound}"
            );
        }
        assert_eq!(success_reply(Version::V5, v6).len(), 22);
    }

    #[test]
    fn encodes_failure_replies() {
        let cases = [
            (Failure::General, 0x01),
            (Failure::NotAllowed, 0x02),
            (Failure::NetworkUnreachable, 0x03),
            (Failure::HostUnreachable, 0x04),
            (Failure::ConnectionRefused, 0x05),
            (Failure::CommandNotSupported, 0x07),
            (Failure::AddressTypeNotSupported, 0x08),
        ];
        for (failure, code) in cases {
            let v5 = [5, code, 0, 1, 0, 0, 0, 0, 0, 0];
            assert_eq!(&failure_reply(Version::V5, failure)[..], &v5, "{failure:?}");
            let v4 = [0, 0x5b, 0, 0, 0, 0, 0, 0];
            assert_eq!(&failure_reply(Version::V4, failure)[..], &v4, "{failure:?}");
            assert_eq!(
                &failure_reply(Version::V4a, failure)[..],
                &v4,
                "{failure:?}"
            );
        }
    }

    #[test]
    fn target_display_host_port() {
        let cases = [
            (ip("10.0.0.1:22"), "10.0.0.1:22", "10.0.0.1", 22),
            (ip("[::1]:8080"), "[::1]:8080", "::1", 8080),
            (
                named("example.com", 443),
                "example.com:443",
                "example.com",
                443,
            ),
            // An IPv6 literal sent as a name keeps host:port unambiguous.
            (named("fe80::1", 80), "[fe80::1]:80", "fe80::1", 80),
        ];
        for (target, display, host, port) in cases {
            assert_eq!(target.to_string(), display);
            assert_eq!(target.host(), host);
            assert_eq!(target.port(), port);
        }
    }

    /// A test-only client: the bytes a client sends for `request`.
    fn encode_client(request: &Request, user_id: &[u8], methods: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let port = request.target.port().to_be_bytes();
        match (request.version, &request.target) {
            (Version::V4, Target::Ip(SocketAddr::V4(addr))) => {
                out.extend_from_slice(&[4, 1, port[0], port[1]]);
                out.extend_from_slice(&addr.ip().octets());
                out.extend_from_slice(&[user_id, b"\0"].concat());
            }
            (Version::V4a, Target::Domain(name, _)) => {
                out.extend_from_slice(&[4, 1, port[0], port[1], 0, 0, 0, 1]);
                out.extend_from_slice(&[user_id, b"\0", name.as_bytes(), b"\0"].concat());
            }
            (Version::V5, target) => {
                out.extend_from_slice(&[5, methods.len() as u8]);
                out.extend_from_slice(methods);
                out.extend_from_slice(&[5, 1, 0]);
                match target {
                    Target::Ip(SocketAddr::V4(a)) => out.extend(cat(&[&[1], &a.ip().octets()])),
                    Target::Ip(SocketAddr::V6(a)) => out.extend(cat(&[&[4], &a.ip().octets()])),
                    Target::Domain(name, _) => {
                        out.extend_from_slice(&[3, name.len() as u8]);
                        out.extend_from_slice(name.as_bytes());
                    }
                }
                out.extend_from_slice(&port);
            }
            other => panic!("not encodable: {other:?}"),
        }
        out
    }

    fn name_strategy() -> impl Strategy<Value = String> {
        "[^\\x00]{1,60}".prop_filter("at most 255 bytes", |s| s.len() <= 255)
    }

    fn v4_addr() -> impl Strategy<Value = SocketAddr> {
        (any::<[u8; 4]>(), any::<u16>())
            // 0.0.0.x with x != 0 means SOCKS4a.
            .prop_filter("not a 4a marker", |(ip, _)| {
                ip[..3] != [0, 0, 0] || ip[3] == 0
            })
            .prop_map(|(ip, port)| SocketAddr::V4(SocketAddrV4::new(ip.into(), port)))
    }

    fn request_strategy() -> impl Strategy<Value = Request> {
        let v6 = (any::<[u8; 16]>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::V6(SocketAddrV6::new(ip.into(), port, 0, 0)));
        let v5_target = prop_oneof![
            v4_addr().prop_map(Target::Ip),
            v6.prop_map(Target::Ip),
            (name_strategy(), any::<u16>()).prop_map(|(n, p)| Target::Domain(n, p)),
        ];
        prop_oneof![
            v4_addr().prop_map(|a| Request {
                version: Version::V4,
                target: Target::Ip(a)
            }),
            (name_strategy(), any::<u16>()).prop_map(|(n, p)| Request {
                version: Version::V4a,
                target: Target::Domain(n, p)
            }),
            v5_target.prop_map(|target| Request {
                version: Version::V5,
                target
            }),
        ]
    }

    proptest! {
        #[test]
        fn any_split_gives_the_request_and_leftover(
            request in request_strategy(),
            user_id in proptest::collection::vec(1u8..=255, 0..=255),
            other_methods in proptest::collection::vec(1u8..=255, 0..=254),
            no_auth_at in any::<prop::sample::Index>(),
            trailing in proptest::collection::vec(any::<u8>(), 0..64),
            cuts in proptest::collection::vec(0usize..1100, 0..12),
        ) {
            let mut methods = other_methods;
            methods.insert(no_auth_at.index(methods.len() + 1), METHOD_NO_AUTH);
            let input = cat(&[&encode_client(&request, &user_id, &methods), &trailing]);
            let replies = match request.version {
                Version::V5 => vec![V5_OK.to_vec()],
                Version::V4 | Version::V4a => vec![],
            };
            let expected = Outcome { replies, result: Ok(request), leftover: trailing };
            prop_assert_eq!(feed(&input, &cuts), expected);
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_ignore_splits(
            input in proptest::collection::vec(any::<u8>(), 0..600),
            cuts in proptest::collection::vec(0usize..600, 0..12),
        ) {
            prop_assert_eq!(feed(&input, &cuts), feed(&input, &[]));
        }

        #[test]
        fn plausible_bytes_never_panic_and_ignore_splits(
            version in prop_oneof![Just(4u8), Just(5u8)],
            rest in proptest::collection::vec(
                prop_oneof![Just(0u8), Just(1), Just(3), Just(4), Just(5), any::<u8>()], 0..40),
            cuts in proptest::collection::vec(0usize..41, 0..12),
        ) {
            let input = cat(&[&[version], &rest]);
            prop_assert_eq!(feed(&input, &cuts), feed(&input, &[]));
        }
    }

    #[tokio::test]
    async fn accept_over_duplex_keeps_early_data() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        let payload = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n";
        let input = cat(&[
            V5_HELLO,
            &[5, 1, 0, 3, 11],
            b"example.com",
            &[0, 80],
            payload,
        ]);
        let client_task = tokio::spawn(async move {
            client.write_all(&input).await.unwrap();
            let mut method = [0; 2];
            client.read_exact(&mut method).await.unwrap();
            assert_eq!(method, [5, 0]);
            let mut reply = [0; 10];
            client.read_exact(&mut reply).await.unwrap();
            reply
        });
        let (request, mut early) = accept(&mut server).await.unwrap();
        assert_eq!(
            request,
            Request {
                version: Version::V5,
                target: named("example.com", 80)
            }
        );
        while early.len() < payload.len() {
            server.read_buf(&mut early).await.unwrap();
        }
        assert_eq!(&early[..], payload);
        let bound = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
        server
            .write_all(&success_reply(request.version, bound))
            .await
            .unwrap();
        assert_eq!(client_task.await.unwrap(), [5, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    }

    #[tokio::test]
    async fn accept_over_duplex_v4a() {
        let (mut client, mut server) = tokio::io::duplex(64);
        let input = cat(&[&[4, 1, 0, 22, 0, 0, 0, 1], b"me\0bastion.internal\0"]);
        client.write_all(&input).await.unwrap();
        let (request, early) = accept(&mut server).await.unwrap();
        assert_eq!(request.target, named("bastion.internal", 22));
        assert_eq!(request.version, Version::V4a);
        assert!(early.is_empty());
    }

    #[tokio::test]
    async fn accept_refuses_before_returning_the_error() {
        #[rustfmt::skip]
        let cases: Vec<(Vec<u8>, Vec<u8>)> = vec![
            (vec![5, 1, 2], vec![5, 0xff]),
            (cat(&[V5_HELLO, &[5, 2, 0, 1, 1, 2, 3, 4, 0, 80]]), vec![5, 0, 5, 7, 0, 1, 0, 0, 0, 0, 0, 0]),
            (vec![4, 3, 0, 80, 1, 2, 3, 4, 0], vec![0, 0x5b, 0, 0, 0, 0, 0, 0]),
            (b"CONNECT example.com:443 HTTP/1.1\r\n".to_vec(), vec![]),
        ];
        for (input, expected) in cases {
            let (mut client, mut server) = tokio::io::duplex(1024);
            client.write_all(&input).await.unwrap();
            let err = accept(&mut server).await.unwrap_err();
            drop(server);
            let mut answer = Vec::new();
            client.read_to_end(&mut answer).await.unwrap();
            assert_eq!(answer, expected, "{err}");
        }
    }

    #[tokio::test]
    async fn accept_reports_eof_mid_handshake() {
        let (mut client, mut server) = tokio::io::duplex(64);
        client.write_all(&[5, 1, 0, 5, 1]).await.unwrap();
        client.shutdown().await.unwrap();
        let err = accept(&mut server).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "client closed the connection before sending a complete SOCKS5 request \
             (2 bytes of it received)"
        );
    }
}
