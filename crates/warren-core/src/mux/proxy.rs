//! Proxy mode (PROTOCOL.mux section 9, `ssh -O proxy`): after the master
//! answers `MUX_S_PROXY`, the client speaks the SSH connection protocol
//! over the control socket, one message per unencrypted packet (`uint32`
//! length, a zero padding length, the message).
//!
//! Design choice: OpenSSH's master relays those packets to the server with
//! the channel numbers rewritten. russh does not hand out its packet layer,
//! so a warren master ends each of the client's channels itself and opens
//! one of its own on the connection for it, relaying requests, data, flow
//! control and the exit status both ways. Session, `direct-tcpip` and
//! `direct-streamlocal@openssh.com` channels are served; remote forwards
//! (`tcpip-forward`) and other global requests are refused, which the
//! client reports as ssh does for a server that refuses them.
//!
//! The codec half ([`decode_packet`], [`Down`], [`Up`]) does no I/O.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Buf, Bytes, BytesMut};
use russh::client::{Handle, Msg};
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf, Pty, Sig};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tracing::debug;

use super::proto::{Malformed, Reader, Writer};
use crate::session::ClientHandler;

const GLOBAL_REQUEST: u8 = 80;
const REQUEST_FAILURE: u8 = 82;
const CHANNEL_OPEN: u8 = 90;
const CHANNEL_OPEN_CONFIRMATION: u8 = 91;
const CHANNEL_OPEN_FAILURE: u8 = 92;
const CHANNEL_WINDOW_ADJUST: u8 = 93;
const CHANNEL_DATA: u8 = 94;
const CHANNEL_EXTENDED_DATA: u8 = 95;
const CHANNEL_EOF: u8 = 96;
const CHANNEL_CLOSE: u8 = 97;
const CHANNEL_REQUEST: u8 = 98;
const CHANNEL_SUCCESS: u8 = 99;
const CHANNEL_FAILURE: u8 = 100;

/// SSH_OPEN_CONNECT_FAILED and SSH_OPEN_UNKNOWN_CHANNEL_TYPE.
const OPEN_CONNECT_FAILED: u32 = 2;
const OPEN_UNKNOWN_CHANNEL_TYPE: u32 = 3;

/// Longest packet accepted from the client (OpenSSH's PACKET_MAX_SIZE).
pub const MAX_PACKET: usize = 256 * 1024;

/// The window each client channel gets, and the largest data packet it
/// may send.
const WINDOW: u32 = 2 * 1024 * 1024;
const CHANNEL_MAX_PACKET: u32 = 32 * 1024;

/// Takes one packet's message (type byte first) off `buf`; `Ok(None)`
/// until a whole packet is there.
pub fn decode_packet(buf: &mut BytesMut) -> Result<Option<Bytes>, Malformed> {
    let Some(len) = buf
        .first_chunk::<4>()
        .map(|b| u32::from_be_bytes(*b) as usize)
    else {
        return Ok(None);
    };
    if !(2..=MAX_PACKET).contains(&len) {
        return Err(Malformed("proxy packet length out of range"));
    }
    if buf.len() < 4 + len {
        return Ok(None);
    }
    buf.advance(4);
    let mut packet = buf.split_to(len).freeze();
    // The padding length: OpenSSH's client sends none.
    let padding = usize::from(packet[0]);
    if padding + 2 > len {
        return Err(Malformed("proxy packet padding longer than the packet"));
    }
    packet.advance(1);
    packet.truncate(packet.len() - padding);
    Ok(Some(packet))
}

/// `message` framed as a proxy-mode packet.
pub fn encode_packet(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + message.len());
    out.extend_from_slice(&(message.len() as u32 + 1).to_be_bytes());
    out.push(0);
    out.extend_from_slice(message);
    out
}

/// A message from the proxy client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Down {
    Open {
        kind: String,
        sender: u32,
        window: u32,
        max_packet: u32,
        /// The type-specific fields.
        extra: Bytes,
    },
    Request {
        recipient: u32,
        name: String,
        want_reply: bool,
        extra: Bytes,
    },
    Data {
        recipient: u32,
        data: Bytes,
    },
    ExtendedData {
        recipient: u32,
        data: Bytes,
    },
    WindowAdjust {
        recipient: u32,
        bytes: u32,
    },
    Eof {
        recipient: u32,
    },
    Close {
        recipient: u32,
    },
    GlobalRequest {
        name: String,
        want_reply: bool,
    },
    /// Anything else (answers to requests this master never makes,
    /// SSH_MSG_IGNORE, ...): ignored.
    Other(u8),
}

impl Down {
    pub fn decode(msg: &Bytes) -> Result<Down, Malformed> {
        let mut r = Reader(msg);
        let kind = r.u8()?;
        let tail = |r: &Reader<'_>| msg.slice(msg.len() - r.0.len()..);
        Ok(match kind {
            CHANNEL_OPEN => {
                let kind = r.text()?;
                let (sender, window, max_packet) = (r.u32()?, r.u32()?, r.u32()?);
                Down::Open {
                    kind,
                    sender,
                    window,
                    max_packet,
                    extra: tail(&r),
                }
            }
            CHANNEL_REQUEST => {
                let recipient = r.u32()?;
                let name = r.text()?;
                let want_reply = r.u8()? != 0;
                Down::Request {
                    recipient,
                    name,
                    want_reply,
                    extra: tail(&r),
                }
            }
            CHANNEL_DATA => {
                let recipient = r.u32()?;
                let data = r.string()?;
                let start = msg.len() - r.0.len() - data.len();
                Down::Data {
                    recipient,
                    data: msg.slice(start..start + data.len()),
                }
            }
            CHANNEL_EXTENDED_DATA => {
                let recipient = r.u32()?;
                let _code = r.u32()?;
                let data = Bytes::copy_from_slice(r.string()?);
                Down::ExtendedData { recipient, data }
            }
            CHANNEL_WINDOW_ADJUST => Down::WindowAdjust {
                recipient: r.u32()?,
                bytes: r.u32()?,
            },
            CHANNEL_EOF => Down::Eof {
                recipient: r.u32()?,
            },
            CHANNEL_CLOSE => Down::Close {
                recipient: r.u32()?,
            },
            GLOBAL_REQUEST => Down::GlobalRequest {
                name: r.text()?,
                want_reply: r.u8()? != 0,
            },
            other => Down::Other(other),
        })
    }

    /// The channel (as this master numbered it) a message is for.
    fn recipient(&self) -> Option<u32> {
        match self {
            Down::Request { recipient, .. }
            | Down::Data { recipient, .. }
            | Down::ExtendedData { recipient, .. }
            | Down::WindowAdjust { recipient, .. }
            | Down::Eof { recipient }
            | Down::Close { recipient } => Some(*recipient),
            _ => None,
        }
    }
}

/// Messages to the proxy client.
pub struct Up;

impl Up {
    pub fn open_confirmation(recipient: u32, sender: u32) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(CHANNEL_OPEN_CONFIRMATION).u32(recipient).u32(sender);
        w.u32(WINDOW).u32(CHANNEL_MAX_PACKET);
        w.0
    }
    pub fn open_failure(recipient: u32, code: u32, reason: &str) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(CHANNEL_OPEN_FAILURE).u32(recipient).u32(code);
        w.string(reason.as_bytes()).string(b"");
        w.0
    }
    pub fn window_adjust(recipient: u32, bytes: u32) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(CHANNEL_WINDOW_ADJUST).u32(recipient).u32(bytes);
        w.0
    }
    /// Data (`ext` None) or extended data.
    pub fn data(recipient: u32, ext: Option<u32>, data: &[u8]) -> Vec<u8> {
        let mut w = Writer::default();
        match ext {
            None => w.u8(CHANNEL_DATA).u32(recipient),
            Some(code) => w.u8(CHANNEL_EXTENDED_DATA).u32(recipient).u32(code),
        };
        w.string(data);
        w.0
    }
    /// EOF, CLOSE, SUCCESS or FAILURE: a type and the recipient.
    fn bare(kind: u8, recipient: u32) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(kind).u32(recipient);
        w.0
    }
    pub fn request(recipient: u32, name: &str, extra: &[u8]) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(CHANNEL_REQUEST).u32(recipient).string(name.as_bytes());
        w.u8(0);
        w.0.extend_from_slice(extra);
        w.0
    }
}

/// Serves a control connection in proxy mode until the client leaves.
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    handle: Arc<Handle<ClientHandler>>,
    stream: S,
    forward_agent: bool,
) -> std::io::Result<()> {
    let (mut read, mut write) = tokio::io::split(stream);
    let (out, mut outgoing) = mpsc::channel::<Vec<u8>>(64);
    let writer = async move {
        while let Some(msg) = outgoing.recv().await {
            write.write_all(&encode_packet(&msg)).await?;
        }
        write.flush().await
    };
    let proxy = Proxy {
        handle,
        out,
        forward_agent,
        channels: HashMap::new(),
        tasks: JoinSet::new(),
        next_id: 0,
    };
    let reader = proxy.run(&mut read);
    // The writer ends once every sender (the reader and each channel
    // task) is gone.
    let (read_result, write_result) = tokio::join!(reader, writer);
    read_result.and(write_result)
}

/// The client's channels, as this master numbered them.
struct Proxy {
    handle: Arc<Handle<ClientHandler>>,
    out: mpsc::Sender<Vec<u8>>,
    forward_agent: bool,
    channels: HashMap<u32, ChannelEntry>,
    tasks: JoinSet<()>,
    next_id: u32,
}

struct ChannelEntry {
    tx: mpsc::UnboundedSender<Down>,
    /// Bytes the client may still send before we adjust its window.
    granted: Arc<AtomicU32>,
}

impl Proxy {
    async fn run<R: AsyncRead + Unpin>(mut self, read: &mut R) -> std::io::Result<()> {
        let mut buf = BytesMut::with_capacity(64 * 1024);
        let result = loop {
            let msg = match decode_packet(&mut buf) {
                Ok(Some(msg)) => msg,
                Ok(None) => match read.read_buf(&mut buf).await {
                    Ok(0) => break Ok(()),
                    Ok(_) => continue,
                    Err(e) => break Err(e),
                },
                Err(e) => break Err(invalid(e)),
            };
            let down = match Down::decode(&msg) {
                Ok(d) => d,
                Err(e) => break Err(invalid(e)),
            };
            if let Err(e) = self.dispatch(down).await {
                break Err(e);
            }
            while self.tasks.try_join_next().is_some() {}
        };
        // Client gone: each channel task closes its channel.
        self.channels.clear();
        drop(self.out);
        while self.tasks.join_next().await.is_some() {}
        result
    }

    async fn dispatch(&mut self, down: Down) -> std::io::Result<()> {
        match down {
            Down::Open {
                kind,
                sender,
                window,
                max_packet,
                extra,
            } => {
                let id = self.next_id;
                self.next_id = self.next_id.wrapping_add(1);
                let (tx, rx) = mpsc::unbounded_channel();
                let granted = Arc::new(AtomicU32::new(WINDOW));
                self.channels.insert(
                    id,
                    ChannelEntry {
                        tx,
                        granted: granted.clone(),
                    },
                );
                let open = Open {
                    kind,
                    down_id: sender,
                    id,
                    window,
                    max_packet,
                    extra,
                };
                let relay = Relay {
                    out: self.out.clone(),
                    forward_agent: self.forward_agent,
                    granted,
                };
                self.tasks
                    .spawn(relay.channel(self.handle.clone(), open, rx));
            }
            Down::GlobalRequest { name, want_reply } => {
                debug!(request = %warren_wire::Escaped::new(name.as_bytes()), "proxy client's global request refused");
                if want_reply {
                    self.send(vec![REQUEST_FAILURE]).await?;
                }
            }
            Down::Other(kind) => debug!(kind, "proxy client message ignored"),
            msg => self.route(msg)?,
        }
        Ok(())
    }

    fn route(&mut self, msg: Down) -> std::io::Result<()> {
        let Some(id) = msg.recipient() else {
            return Ok(());
        };
        let Some(entry) = self.channels.get(&id) else {
            debug!(id, "proxy client message for an unknown channel");
            return Ok(());
        };
        if let Down::Data { data, .. } | Down::ExtendedData { data, .. } = &msg {
            let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
            let within = entry
                .granted
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |g| g.checked_sub(len))
                .is_ok();
            if !within {
                return Err(invalid(Malformed(
                    "proxy client sent more than its channel window",
                )));
            }
        }
        let closing = matches!(msg, Down::Close { .. });
        let _ = entry.tx.send(msg);
        if closing {
            // The client sends nothing more on it; the task finishes.
            self.channels.remove(&id);
        }
        Ok(())
    }

    async fn send(&self, msg: Vec<u8>) -> std::io::Result<()> {
        self.out
            .send(msg)
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
    }
}

fn invalid(e: Malformed) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e)
}

/// A client's CHANNEL_OPEN, with the number this master gave it.
struct Open {
    kind: String,
    down_id: u32,
    id: u32,
    window: u32,
    max_packet: u32,
    extra: Bytes,
}

/// One channel's relay between the client and the connection.
struct Relay {
    out: mpsc::Sender<Vec<u8>>,
    forward_agent: bool,
    granted: Arc<AtomicU32>,
}

impl Relay {
    async fn channel(
        self,
        handle: Arc<Handle<ClientHandler>>,
        open: Open,
        rx: mpsc::UnboundedReceiver<Down>,
    ) {
        let down = open.down_id;
        let channel = match open_upstream(&handle, &open).await {
            Ok(c) => c,
            Err((code, reason)) => {
                debug!(kind = %open.kind, %reason, "proxy client's channel refused");
                let _ = self.out.send(Up::open_failure(down, code, &reason)).await;
                return;
            }
        };
        if self
            .out
            .send(Up::open_confirmation(down, open.id))
            .await
            .is_err()
        {
            return;
        }
        let (read, write) = channel.split();
        // The client's window for what we send it.
        let window = Arc::new(Semaphore::new(open.window as usize));
        let replies = Arc::new(Mutex::new(VecDeque::new()));
        let max_packet = open.max_packet.clamp(1024, CHANNEL_MAX_PACKET * 8) as usize;
        let to_client = ToClient {
            out: self.out.clone(),
            down,
            window: window.clone(),
            max_packet,
            replies: replies.clone(),
        };
        let to_server = ToServer {
            relay: self,
            down,
            window,
            replies,
        };
        tokio::join!(to_server.run(write, rx), to_client.run(read));
    }
}

async fn open_upstream(
    handle: &Handle<ClientHandler>,
    open: &Open,
) -> Result<russh::Channel<Msg>, (u32, String)> {
    let mut r = Reader(&open.extra);
    let malformed = |e: Malformed| (OPEN_CONNECT_FAILED, e.to_string());
    let opened = match open.kind.as_str() {
        "session" => handle.channel_open_session().await,
        "direct-tcpip" => {
            let host = r.text().map_err(malformed)?;
            let port = r.u32().map_err(malformed)?;
            let from = r.text().map_err(malformed)?;
            let from_port = r.u32().map_err(malformed)?;
            handle
                .channel_open_direct_tcpip(host, port, from, from_port)
                .await
        }
        "direct-streamlocal@openssh.com" => {
            let path = r.text().map_err(malformed)?;
            handle.channel_open_direct_streamlocal(path).await
        }
        other => {
            return Err((
                OPEN_UNKNOWN_CHANNEL_TYPE,
                format!(
                    "unsupported channel type {}",
                    warren_wire::Escaped::new(other.as_bytes())
                ),
            ));
        }
    };
    opened.map_err(|e| match e {
        russh::Error::ChannelOpenFailure(f) => (open_failure_code(&f), format!("{f:?}")),
        e => (OPEN_CONNECT_FAILED, e.to_string()),
    })
}

fn open_failure_code(f: &russh::ChannelOpenFailure) -> u32 {
    match f {
        russh::ChannelOpenFailure::AdministrativelyProhibited => 1,
        russh::ChannelOpenFailure::ConnectFailed => 2,
        russh::ChannelOpenFailure::UnknownChannelType => 3,
        russh::ChannelOpenFailure::ResourceShortage => 4,
        russh::ChannelOpenFailure::Other { code, .. } => *code,
    }
}

/// The order the client's want-reply requests must be answered in: `true`
/// for one the server answers, `false` for one refused here.
type Replies = Arc<Mutex<VecDeque<bool>>>;

/// Client to server: data, EOF, CLOSE and requests.
struct ToServer {
    relay: Relay,
    down: u32,
    window: Arc<Semaphore>,
    replies: Replies,
}

impl ToServer {
    async fn run(self, write: ChannelWriteHalf<Msg>, mut rx: mpsc::UnboundedReceiver<Down>) {
        let mut consumed = 0u32;
        while let Some(msg) = rx.recv().await {
            match msg {
                Down::Data { data, .. } => {
                    let len = data.len() as u32;
                    if write.data_bytes(data).await.is_err() {
                        break;
                    }
                    consumed += len;
                }
                // Nothing on the server reads a client's extended data.
                Down::ExtendedData { data, .. } => consumed += data.len() as u32,
                Down::WindowAdjust { bytes, .. } => {
                    // A window never exceeds 2^32-1 bytes (RFC 4254 5.2).
                    let room = (u32::MAX as usize).saturating_sub(self.window.available_permits());
                    self.window.add_permits((bytes as usize).min(room));
                }
                Down::Eof { .. } => {
                    let _ = write.eof().await;
                }
                Down::Close { .. } => {
                    let _ = write.close().await;
                    return;
                }
                Down::Request {
                    name,
                    want_reply,
                    extra,
                    ..
                } => self.request(&write, &name, want_reply, &extra).await,
                _ => {}
            }
            if consumed >= WINDOW / 2 {
                self.relay.granted.fetch_add(consumed, Ordering::AcqRel);
                let _ = self
                    .relay
                    .out
                    .send(Up::window_adjust(self.down, consumed))
                    .await;
                consumed = 0;
            }
        }
        // The client left: end the channel, and whatever waits on its
        // window.
        self.window.close();
        let _ = write.close().await;
    }

    async fn request(
        &self,
        write: &ChannelWriteHalf<Msg>,
        name: &str,
        want_reply: bool,
        extra: &[u8],
    ) {
        let sent = match forward_request(write, name, want_reply, extra, self.relay.forward_agent)
            .await
        {
            Ok(sent) => sent,
            Err(e) => {
                debug!(request = %warren_wire::Escaped::new(name.as_bytes()), "proxy client's channel request: {e}");
                false
            }
        };
        if !want_reply {
            return;
        }
        let answer_now = {
            let Ok(mut queue) = self.replies.lock() else {
                return;
            };
            if sent {
                queue.push_back(true);
                false
            } else if queue.is_empty() {
                true
            } else {
                queue.push_back(false);
                false
            }
        };
        if answer_now {
            let _ = self
                .relay
                .out
                .send(Up::bare(CHANNEL_FAILURE, self.down))
                .await;
        }
    }
}

/// Sends a client's channel request on to the server; `Ok(false)` if it is
/// one this master does not pass on.
async fn forward_request(
    write: &ChannelWriteHalf<Msg>,
    name: &str,
    want_reply: bool,
    extra: &[u8],
    forward_agent: bool,
) -> Result<bool, Box<dyn std::error::Error + Send + Sync>> {
    let mut r = Reader(extra);
    match name {
        "pty-req" => {
            let term = r.text()?;
            let (cols, rows, px, py) = (r.u32()?, r.u32()?, r.u32()?, r.u32()?);
            let modes = terminal_modes(r.string()?);
            write
                .request_pty(want_reply, &term, cols, rows, px, py, &modes)
                .await?;
        }
        "shell" => write.request_shell(want_reply).await?,
        "exec" => write.exec(want_reply, r.string()?.to_vec()).await?,
        "subsystem" => write.request_subsystem(want_reply, r.text()?).await?,
        "env" => {
            let name = r.text()?;
            write.set_env(want_reply, name, r.text()?).await?;
        }
        "window-change" => {
            let (cols, rows, px, py) = (r.u32()?, r.u32()?, r.u32()?, r.u32()?);
            write.window_change(cols, rows, px, py).await?;
            return Ok(false);
        }
        "signal" => {
            write.signal(signal(&r.text()?)).await?;
            return Ok(false);
        }
        "auth-agent-req@openssh.com" if forward_agent => write.agent_forward(want_reply).await?,
        _ => return Ok(false),
    }
    Ok(want_reply)
}

/// The encoded terminal modes of a pty-req, as russh takes them; modes
/// russh does not know are dropped.
fn terminal_modes(mut encoded: &[u8]) -> Vec<(Pty, u32)> {
    let mut modes = Vec::new();
    while let Some((&op, rest)) = encoded.split_first() {
        if op == 0 || op >= 160 {
            break;
        }
        let Some((value, rest)) = rest.split_first_chunk::<4>() else {
            break;
        };
        if let Some(mode) = Pty::from_u8(op) {
            modes.push((mode, u32::from_be_bytes(*value)));
        }
        encoded = rest;
    }
    modes
}

fn signal(name: &str) -> Sig {
    match name {
        "ABRT" => Sig::ABRT,
        "ALRM" => Sig::ALRM,
        "FPE" => Sig::FPE,
        "HUP" => Sig::HUP,
        "ILL" => Sig::ILL,
        "INT" => Sig::INT,
        "KILL" => Sig::KILL,
        "PIPE" => Sig::PIPE,
        "QUIT" => Sig::QUIT,
        "SEGV" => Sig::SEGV,
        "TERM" => Sig::TERM,
        "USR1" => Sig::USR1,
        other => Sig::Custom(other.to_owned()),
    }
}

fn signal_name(sig: &Sig) -> &str {
    match sig {
        Sig::ABRT => "ABRT",
        Sig::ALRM => "ALRM",
        Sig::FPE => "FPE",
        Sig::HUP => "HUP",
        Sig::ILL => "ILL",
        Sig::INT => "INT",
        Sig::KILL => "KILL",
        Sig::PIPE => "PIPE",
        Sig::QUIT => "QUIT",
        Sig::SEGV => "SEGV",
        Sig::TERM => "TERM",
        Sig::USR1 => "USR1",
        Sig::Custom(name) => name,
    }
}

/// Server to client: data within the client's window, EOF, CLOSE, exit
/// status and the answers to requests.
struct ToClient {
    out: mpsc::Sender<Vec<u8>>,
    down: u32,
    window: Arc<Semaphore>,
    max_packet: usize,
    replies: Replies,
}

impl ToClient {
    async fn run(self, mut read: ChannelReadHalf) {
        while let Some(msg) = read.wait().await {
            let sent = match msg {
                ChannelMsg::Data { data } => self.data(None, &data).await,
                ChannelMsg::ExtendedData { data, ext } => self.data(Some(ext), &data).await,
                ChannelMsg::Eof => self.send(Up::bare(CHANNEL_EOF, self.down)).await,
                ChannelMsg::Close => break,
                ChannelMsg::ExitStatus { exit_status } => {
                    let status = exit_status.to_be_bytes();
                    self.send(Up::request(self.down, "exit-status", &status))
                        .await
                }
                ChannelMsg::ExitSignal {
                    signal_name: sig,
                    core_dumped,
                    error_message,
                    lang_tag,
                } => {
                    let mut w = Writer::default();
                    w.string(signal_name(&sig).as_bytes())
                        .u8(core_dumped.into());
                    w.string(error_message.as_bytes())
                        .string(lang_tag.as_bytes());
                    self.send(Up::request(self.down, "exit-signal", &w.0)).await
                }
                ChannelMsg::Success => self.answer(true).await,
                ChannelMsg::Failure => self.answer(false).await,
                _ => true,
            };
            if !sent {
                return;
            }
        }
        let _ = self.send(Up::bare(CHANNEL_CLOSE, self.down)).await;
    }

    async fn send(&self, msg: Vec<u8>) -> bool {
        self.out.send(msg).await.is_ok()
    }

    /// Sends `data` in packets the client accepts, as its window allows.
    async fn data(&self, ext: Option<u32>, data: &[u8]) -> bool {
        for chunk in data.chunks(self.max_packet) {
            let Ok(permit) = self.window.acquire_many(chunk.len() as u32).await else {
                return false;
            };
            permit.forget();
            if !self.send(Up::data(self.down, ext, chunk)).await {
                return false;
            }
        }
        true
    }

    /// The server answered the oldest request it was sent; requests
    /// refused here right after it are answered in their turn.
    async fn answer(&self, success: bool) -> bool {
        let mut answers = vec![success];
        if let Ok(mut queue) = self.replies.lock() {
            queue.pop_front();
            while queue.front() == Some(&false) {
                queue.pop_front();
                answers.push(false);
            }
        }
        for ok in answers {
            let kind = if ok { CHANNEL_SUCCESS } else { CHANNEL_FAILURE };
            if !self.send(Up::bare(kind, self.down)).await {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_frame_and_unframe() {
        let mut buf = BytesMut::from(&encode_packet(&[CHANNEL_EOF, 0, 0, 0, 7])[..]);
        buf.extend_from_slice(&[0, 0]);
        let msg = decode_packet(&mut buf).unwrap().unwrap();
        assert_eq!(Down::decode(&msg), Ok(Down::Eof { recipient: 7 }));
        assert_eq!(&buf[..], &[0, 0], "only one packet taken");
        assert_eq!(decode_packet(&mut buf), Ok(None), "incomplete");
    }

    #[test]
    fn hostile_lengths_are_refused() {
        let mut huge = BytesMut::from(&u32::MAX.to_be_bytes()[..]);
        assert!(decode_packet(&mut huge).is_err());
        // Padding longer than the packet.
        let mut padded = BytesMut::from(&[0, 0, 0, 2, 9, CHANNEL_EOF][..]);
        assert!(decode_packet(&mut padded).is_err());
    }

    #[test]
    fn openssh_messages_decode() {
        // CHANNEL_OPEN "session", sender 0, window 2 MiB, max packet 32 KiB.
        let mut w = Writer::default();
        w.u8(CHANNEL_OPEN)
            .string(b"session")
            .u32(0)
            .u32(WINDOW)
            .u32(32768);
        let open = Down::decode(&Bytes::from(w.0)).unwrap();
        assert!(matches!(open, Down::Open { ref kind, sender: 0, .. } if kind == "session"));
        let mut w = Writer::default();
        w.u8(CHANNEL_REQUEST)
            .u32(3)
            .string(b"exec")
            .u8(1)
            .string(b"echo hi");
        let Down::Request {
            recipient: 3,
            name,
            want_reply: true,
            extra,
        } = Down::decode(&Bytes::from(w.0)).unwrap()
        else {
            panic!("not an exec request");
        };
        assert_eq!(name, "exec");
        assert_eq!(Reader(&extra).string().unwrap(), b"echo hi");
        let data = Down::decode(&Bytes::from(Up::data(5, None, b"xyz"))).unwrap();
        assert_eq!(
            data,
            Down::Data {
                recipient: 5,
                data: Bytes::from_static(b"xyz")
            }
        );
    }

    proptest::proptest! {
        #[test]
        fn any_message_survives_framing(msg in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..300)) {
            let mut buf = BytesMut::from(&encode_packet(&msg)[..]);
            let back = decode_packet(&mut buf).unwrap().unwrap();
            proptest::prop_assert_eq!(&back[..], &msg[..]);
            proptest::prop_assert!(buf.is_empty());
            let _ = Down::decode(&back);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let mut buf = BytesMut::from(&bytes[..]);
            while let Ok(Some(msg)) = decode_packet(&mut buf) {
                let _ = Down::decode(&msg);
            }
            let _ = terminal_modes(&bytes);
        }
    }

    #[test]
    fn terminal_modes_stop_at_the_end_marker() {
        // VINTR=3, opcode 100 (unknown to russh, skipped), CS8=1,
        // TTY_OP_END, then junk.
        let encoded = [1, 0, 0, 0, 3, 100, 0, 0, 0, 1, 91, 0, 0, 0, 1, 0, 7, 7];
        assert_eq!(
            terminal_modes(&encoded),
            vec![(Pty::VINTR, 3), (Pty::CS8, 1)]
        );
    }
}
