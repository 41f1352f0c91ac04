//! OpenSSH's multiplexing protocol (PROTOCOL.mux, version 4) as values:
//! every message a client sends ([`Request`]) and a master sends
//! ([`Reply`]), encoded and decoded without I/O. Each message travels as
//! an SSH `string` (uint32 length, then the bytes); [`read_packet`] and
//! [`write_packet`] do that framing on a stream.
//!
//! Written here because no crate speaks this protocol; it is small, and
//! the tests below pin the byte layout OpenSSH's `mux.c` uses.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub const VERSION: u32 = 4;

pub const MSG_HELLO: u32 = 0x0000_0001;
pub const C_NEW_SESSION: u32 = 0x1000_0002;
pub const C_ALIVE_CHECK: u32 = 0x1000_0004;
pub const C_TERMINATE: u32 = 0x1000_0005;
pub const C_OPEN_FWD: u32 = 0x1000_0006;
pub const C_CLOSE_FWD: u32 = 0x1000_0007;
pub const C_NEW_STDIO_FWD: u32 = 0x1000_0008;
pub const C_STOP_LISTENING: u32 = 0x1000_0009;
pub const C_PROXY: u32 = 0x1000_000f;
pub const S_OK: u32 = 0x8000_0001;
pub const S_PERMISSION_DENIED: u32 = 0x8000_0002;
pub const S_FAILURE: u32 = 0x8000_0003;
pub const S_EXIT_MESSAGE: u32 = 0x8000_0004;
pub const S_ALIVE: u32 = 0x8000_0005;
pub const S_SESSION_OPENED: u32 = 0x8000_0006;
pub const S_REMOTE_PORT: u32 = 0x8000_0007;
pub const S_TTY_ALLOC_FAIL: u32 = 0x8000_0008;
pub const S_PROXY: u32 = 0x8000_000f;

pub const FWD_LOCAL: u32 = 1;
pub const FWD_REMOTE: u32 = 2;
pub const FWD_DYNAMIC: u32 = 3;

/// A port of `-2`: the host field is a unix socket path.
pub const PORT_STREAMLOCAL: u32 = 0xffff_fffe;

/// No escape character.
pub const NO_ESCAPE: u32 = 0xffff_ffff;

/// Longest message accepted; OpenSSH's own limit is 256 KiB.
pub const MAX_PACKET: usize = 256 * 1024;

/// A forward as the mux protocol carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MuxForward {
    /// [`FWD_LOCAL`], [`FWD_REMOTE`] or [`FWD_DYNAMIC`].
    pub kind: u32,
    /// "" for the default address, "*" for all; a path when
    /// `listen_port` is [`PORT_STREAMLOCAL`].
    pub listen_host: String,
    pub listen_port: u32,
    pub connect_host: String,
    pub connect_port: u32,
}

/// What a client asks of a master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Hello {
        version: u32,
    },
    NewSession {
        id: u32,
        tty: bool,
        x11: bool,
        agent: bool,
        subsystem: bool,
        /// [`NO_ESCAPE`] for none.
        escape: u32,
        term: String,
        command: String,
        env: Vec<String>,
    },
    AliveCheck {
        id: u32,
    },
    Terminate {
        id: u32,
    },
    OpenForward {
        id: u32,
        forward: MuxForward,
    },
    CloseForward {
        id: u32,
        forward: MuxForward,
    },
    StdioForward {
        id: u32,
        host: String,
        port: u32,
    },
    StopListening {
        id: u32,
    },
    /// Proxy mode: from here on the connection carries SSH connection
    /// protocol messages (see [`super::proxy`]).
    Proxy {
        id: u32,
    },
    /// Anything else: answered with a failure.
    Other {
        kind: u32,
        id: u32,
    },
}

/// What a master answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Hello {
        version: u32,
    },
    Ok {
        id: u32,
    },
    PermissionDenied {
        id: u32,
        reason: String,
    },
    Failure {
        id: u32,
        reason: String,
    },
    ExitMessage {
        session: u32,
        status: u32,
    },
    Alive {
        id: u32,
        pid: u32,
    },
    SessionOpened {
        id: u32,
        session: u32,
    },
    RemotePort {
        id: u32,
        port: u32,
    },
    TtyAllocFail {
        session: u32,
    },
    /// The connection is in proxy mode from the next byte on.
    Proxy {
        id: u32,
    },
}

/// A message that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed multiplexing message: {0}")]
pub struct Malformed(pub &'static str);

impl Request {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        match self {
            Request::Hello { version } => {
                w.u32(MSG_HELLO).u32(*version);
            }
            Request::NewSession {
                id,
                tty,
                x11,
                agent,
                subsystem,
                escape,
                term,
                command,
                env,
            } => {
                w.u32(C_NEW_SESSION).u32(*id).string(b"");
                w.u32((*tty).into()).u32((*x11).into()).u32((*agent).into());
                w.u32((*subsystem).into()).u32(*escape);
                w.string(term.as_bytes()).string(command.as_bytes());
                for e in env {
                    w.string(e.as_bytes());
                }
            }
            Request::AliveCheck { id } => {
                w.u32(C_ALIVE_CHECK).u32(*id);
            }
            Request::Terminate { id } => {
                w.u32(C_TERMINATE).u32(*id);
            }
            Request::OpenForward { id, forward } | Request::CloseForward { id, forward } => {
                let kind = if matches!(self, Request::OpenForward { .. }) {
                    C_OPEN_FWD
                } else {
                    C_CLOSE_FWD
                };
                w.u32(kind).u32(*id).u32(forward.kind);
                w.string(forward.listen_host.as_bytes())
                    .u32(forward.listen_port);
                w.string(forward.connect_host.as_bytes())
                    .u32(forward.connect_port);
            }
            Request::StdioForward { id, host, port } => {
                w.u32(C_NEW_STDIO_FWD).u32(*id).string(b"");
                w.string(host.as_bytes()).u32(*port);
            }
            Request::StopListening { id } => {
                w.u32(C_STOP_LISTENING).u32(*id);
            }
            Request::Proxy { id } => {
                w.u32(C_PROXY).u32(*id);
            }
            Request::Other { kind, id } => {
                w.u32(*kind).u32(*id);
            }
        }
        w.0
    }

    pub fn decode(buf: &[u8]) -> Result<Request, Malformed> {
        let mut r = Reader(buf);
        let kind = r.u32()?;
        if kind == MSG_HELLO {
            // Extensions (name/value pairs) may follow; none are used.
            return Ok(Request::Hello { version: r.u32()? });
        }
        let id = r.u32()?;
        Ok(match kind {
            C_NEW_SESSION => {
                r.string()?; // reserved
                let tty = r.u32()? != 0;
                let x11 = r.u32()? != 0;
                let agent = r.u32()? != 0;
                let subsystem = r.u32()? != 0;
                let escape = r.u32()?;
                let term = r.text()?;
                let command = r.text()?;
                let mut env = Vec::new();
                while !r.0.is_empty() {
                    env.push(r.text()?);
                }
                Request::NewSession {
                    id,
                    tty,
                    x11,
                    agent,
                    subsystem,
                    escape,
                    term,
                    command,
                    env,
                }
            }
            C_ALIVE_CHECK => Request::AliveCheck { id },
            C_TERMINATE => Request::Terminate { id },
            C_OPEN_FWD | C_CLOSE_FWD => {
                let forward = MuxForward {
                    kind: r.u32()?,
                    listen_host: r.text()?,
                    listen_port: r.u32()?,
                    connect_host: r.text()?,
                    connect_port: r.u32()?,
                };
                if kind == C_OPEN_FWD {
                    Request::OpenForward { id, forward }
                } else {
                    Request::CloseForward { id, forward }
                }
            }
            C_NEW_STDIO_FWD => {
                r.string()?; // reserved
                Request::StdioForward {
                    id,
                    host: r.text()?,
                    port: r.u32()?,
                }
            }
            C_STOP_LISTENING => Request::StopListening { id },
            C_PROXY => Request::Proxy { id },
            kind => Request::Other { kind, id },
        })
    }
}

impl Reply {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        match self {
            Reply::Hello { version } => {
                w.u32(MSG_HELLO).u32(*version);
            }
            Reply::Ok { id } => {
                w.u32(S_OK).u32(*id);
            }
            Reply::PermissionDenied { id, reason } => {
                w.u32(S_PERMISSION_DENIED)
                    .u32(*id)
                    .string(reason.as_bytes());
            }
            Reply::Failure { id, reason } => {
                w.u32(S_FAILURE).u32(*id).string(reason.as_bytes());
            }
            Reply::ExitMessage { session, status } => {
                w.u32(S_EXIT_MESSAGE).u32(*session).u32(*status);
            }
            Reply::Alive { id, pid } => {
                w.u32(S_ALIVE).u32(*id).u32(*pid);
            }
            Reply::SessionOpened { id, session } => {
                w.u32(S_SESSION_OPENED).u32(*id).u32(*session);
            }
            Reply::RemotePort { id, port } => {
                w.u32(S_REMOTE_PORT).u32(*id).u32(*port);
            }
            Reply::TtyAllocFail { session } => {
                w.u32(S_TTY_ALLOC_FAIL).u32(*session);
            }
            Reply::Proxy { id } => {
                w.u32(S_PROXY).u32(*id);
            }
        }
        w.0
    }

    pub fn decode(buf: &[u8]) -> Result<Reply, Malformed> {
        let mut r = Reader(buf);
        let kind = r.u32()?;
        Ok(match kind {
            MSG_HELLO => Reply::Hello { version: r.u32()? },
            S_OK => Reply::Ok { id: r.u32()? },
            S_PERMISSION_DENIED => Reply::PermissionDenied {
                id: r.u32()?,
                reason: r.text()?,
            },
            S_FAILURE => Reply::Failure {
                id: r.u32()?,
                reason: r.text()?,
            },
            S_EXIT_MESSAGE => Reply::ExitMessage {
                session: r.u32()?,
                status: r.u32()?,
            },
            S_ALIVE => Reply::Alive {
                id: r.u32()?,
                pid: r.u32()?,
            },
            S_SESSION_OPENED => Reply::SessionOpened {
                id: r.u32()?,
                session: r.u32()?,
            },
            S_REMOTE_PORT => Reply::RemotePort {
                id: r.u32()?,
                port: r.u32()?,
            },
            S_TTY_ALLOC_FAIL => Reply::TtyAllocFail { session: r.u32()? },
            S_PROXY => Reply::Proxy { id: r.u32()? },
            _ => return Err(Malformed("unknown reply type")),
        })
    }
}

/// Reads one framed message; `None` at a clean end of stream. Reads
/// exactly the message's bytes, never more: descriptors passed right after
/// a message must stay in the socket for `recvmsg`.
pub async fn read_packet<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_PACKET {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("multiplexing message of {len} bytes is too long"),
        ));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    Ok(Some(body))
}

/// Writes one framed message.
pub async fn write_packet<W: AsyncWrite + Unpin>(w: &mut W, body: &[u8]) -> std::io::Result<()> {
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
    w.write_all(&out).await?;
    w.flush().await
}

/// SSH wire encoding into a buffer (shared with proxy mode).
#[derive(Default)]
pub(super) struct Writer(pub(super) Vec<u8>);

impl Writer {
    pub(super) fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    pub(super) fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub(super) fn string(&mut self, s: &[u8]) -> &mut Self {
        self.u32(s.len() as u32);
        self.0.extend_from_slice(s);
        self
    }
}

/// SSH wire decoding from a buffer (shared with proxy mode).
pub(super) struct Reader<'a>(pub(super) &'a [u8]);

impl<'a> Reader<'a> {
    pub(super) fn u8(&mut self) -> Result<u8, Malformed> {
        let (head, rest) = self.0.split_first().ok_or(Malformed("truncated byte"))?;
        self.0 = rest;
        Ok(*head)
    }
    pub(super) fn u32(&mut self) -> Result<u32, Malformed> {
        let (head, rest) = self
            .0
            .split_first_chunk::<4>()
            .ok_or(Malformed("truncated integer"))?;
        self.0 = rest;
        Ok(u32::from_be_bytes(*head))
    }
    pub(super) fn string(&mut self) -> Result<&'a [u8], Malformed> {
        let len = self.u32()? as usize;
        if len > self.0.len() {
            return Err(Malformed("truncated string"));
        }
        let (s, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(s)
    }
    pub(super) fn text(&mut self) -> Result<String, Malformed> {
        Ok(String::from_utf8_lossy(self.string()?).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn alive_check_is_type_then_id() {
        assert_eq!(
            Request::AliveCheck { id: 7 }.encode(),
            [0x10, 0, 0, 4, 0, 0, 0, 7]
        );
        assert_eq!(
            Reply::decode(&[0x80, 0, 0, 5, 0, 0, 0, 7, 0, 0, 0x30, 0x39]),
            Ok(Reply::Alive { id: 7, pid: 12345 })
        );
    }

    #[test]
    fn hello_with_extensions_parses() {
        // OpenSSH's master sends the "info" extension.
        let mut w = Writer::default();
        w.u32(MSG_HELLO).u32(4).string(b"info").string(b"0");
        assert_eq!(Reply::decode(&w.0), Ok(Reply::Hello { version: 4 }));
        assert_eq!(Request::decode(&w.0), Ok(Request::Hello { version: 4 }));
    }

    #[test]
    fn new_session_layout() {
        let req = Request::NewSession {
            id: 1,
            tty: true,
            x11: false,
            agent: false,
            subsystem: false,
            escape: u32::from(b'~'),
            term: "xterm".into(),
            command: "echo hi".into(),
            env: vec!["LANG=C".into()],
        };
        let bytes = req.encode();
        // type, id, empty reserved string, four flags, escape.
        assert_eq!(&bytes[..12], &[0x10, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0]);
        assert_eq!(&bytes[12..16], &[0, 0, 0, 1]);
        assert_eq!(Request::decode(&bytes), Ok(req));
    }

    #[test]
    fn truncated_messages_are_malformed() {
        assert!(Request::decode(&[0x10, 0, 0]).is_err());
        assert!(Reply::decode(&[0x80, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 9, b'x']).is_err());
        assert!(Reply::decode(&[0x12, 0, 0, 0]).is_err());
    }

    #[tokio::test]
    async fn framing_reads_exactly_one_message() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        write_packet(&mut a, &Request::Terminate { id: 3 }.encode())
            .await
            .unwrap();
        a.write_all(b"next").await.unwrap();
        drop(a);
        let body = read_packet(&mut b).await.unwrap().unwrap();
        assert_eq!(Request::decode(&body), Ok(Request::Terminate { id: 3 }));
        let mut rest = Vec::new();
        b.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"next");
    }

    #[tokio::test]
    async fn oversized_length_is_refused() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
        assert!(read_packet(&mut b).await.is_err());
    }

    fn forward() -> impl Strategy<Value = MuxForward> {
        (1u32..4, ".{0,20}", any::<u32>(), ".{0,20}", any::<u32>()).prop_map(
            |(kind, listen_host, listen_port, connect_host, connect_port)| MuxForward {
                kind,
                listen_host,
                listen_port,
                connect_host,
                connect_port,
            },
        )
    }

    proptest! {
        #[test]
        fn requests_round_trip(
            id in any::<u32>(),
            fwd in forward(),
            text in ".{0,30}",
            env in proptest::collection::vec(".{0,12}", 0..4),
            flags in any::<[bool; 4]>(),
        ) {
            let all = [
                Request::Hello { version: id },
                Request::NewSession {
                    id, tty: flags[0], x11: flags[1], agent: flags[2], subsystem: flags[3],
                    escape: id, term: text.clone(), command: text.clone(), env,
                },
                Request::AliveCheck { id },
                Request::Terminate { id },
                Request::OpenForward { id, forward: fwd.clone() },
                Request::CloseForward { id, forward: fwd },
                Request::StdioForward { id, host: text, port: id },
                Request::StopListening { id },
                Request::Proxy { id },
            ];
            for req in all {
                prop_assert_eq!(Request::decode(&req.encode()), Ok(req));
            }
        }

        #[test]
        fn replies_round_trip(id in any::<u32>(), n in any::<u32>(), reason in ".{0,40}") {
            let all = [
                Reply::Hello { version: n },
                Reply::Ok { id },
                Reply::PermissionDenied { id, reason: reason.clone() },
                Reply::Failure { id, reason },
                Reply::ExitMessage { session: id, status: n },
                Reply::Alive { id, pid: n },
                Reply::SessionOpened { id, session: n },
                Reply::RemotePort { id, port: n },
                Reply::TtyAllocFail { session: id },
                Reply::Proxy { id },
            ];
            for reply in all {
                prop_assert_eq!(Reply::decode(&reply.encode()), Ok(reply));
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Request::decode(&bytes);
            let _ = Reply::decode(&bytes);
        }
    }
}
