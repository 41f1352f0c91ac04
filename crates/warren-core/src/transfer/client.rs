//! A pipelined SFTP v3 client over any byte stream (an SSH channel, a
//! ControlMaster's socket, a child's pipes).
//!
//! Design choice: sending a request is synchronous ([`SftpClient::send`]
//! encodes it and queues it for the writer task) and answers arrive as
//! futures matched by request id, so a caller puts many requests in
//! flight by sending several before awaiting any, and requests that must
//! reach the server in order (WRITEs, then FSYNC, then CLOSE) do, in the
//! order sent. How many are in flight is the caller's business: the copy
//! engine bounds it per channel ([`SftpClient::permits`]). Small packets
//! queued together go out in one write (one SSH packet for a burst of
//! READ requests); a large one goes alone, without another copy.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tracing::debug;
use warren_sftp::{Attrs, MAX_PACKET, NameEntry, Request, Response, ext, open_flags, status};
use warren_wire::Escaped;

/// Entries read from one directory, at most (a server that never says
/// EOF would otherwise fill memory).
const MAX_DIR_ENTRIES: usize = 10_000_000;
/// Packets below this size are gathered into one write.
const GATHER_BELOW: usize = 16 * 1024;
/// At most this much is gathered into one write.
const GATHER_LIMIT: usize = 256 * 1024;

/// Why a request failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SftpError {
    /// The server answered with an error status.
    #[error("{}", describe(*.code, .message))]
    Status { code: u32, message: String },
    /// The channel closed or broke before the answer came.
    #[error("the SFTP session ended: {0}")]
    Lost(String),
    /// The server answered something the request cannot be answered with.
    #[error("the SFTP server sent an unexpected reply: {0}")]
    Protocol(String),
    /// The server does not offer what is needed.
    #[error("the SFTP server does not support {0}")]
    Unsupported(&'static str),
}

impl SftpError {
    /// The SFTP status code, if the server gave one.
    pub fn code(&self) -> Option<u32> {
        match self {
            SftpError::Status { code, .. } => Some(*code),
            _ => None,
        }
    }
}

fn describe(code: u32, message: &str) -> String {
    let generic = status::describe(code);
    // sftp-server's messages are the generic ones ("No such file");
    // say a server's own words only when they add something.
    if message.is_empty() || message.eq_ignore_ascii_case(generic) {
        generic.to_owned()
    } else {
        format!("{generic} ({message})")
    }
}

/// What the server offered in its VERSION reply.
#[derive(Debug, Clone, Default)]
pub struct Extensions {
    pub limits: bool,
    pub posix_rename: bool,
    pub fsync: bool,
    pub statvfs: bool,
    pub hardlink: bool,
    pub expand_path: bool,
}

/// The request sizes to use with this server.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub read: u32,
    pub write: u32,
    pub open_handles: Option<u64>,
}

/// The draft's minimum every server must take; used without
/// `limits@openssh.com`.
pub const DEFAULT_CHUNK: u32 = 32 * 1024;
/// The largest chunk used even if a server allows more.
pub const MAX_CHUNK: u32 = 255 * 1024;

type Waiters = Mutex<Waiting>;

#[derive(Default)]
struct Waiting {
    map: HashMap<u32, oneshot::Sender<Response>>,
    /// Set once the reader has stopped: why.
    ended: Option<String>,
}

/// READDIR requests sent at once by [`SftpClient::read_dir`].
const READDIR_AHEAD: usize = 4;

/// One SFTP session.
pub struct SftpClient {
    out: mpsc::UnboundedSender<Bytes>,
    waiters: Arc<Waiters>,
    next_id: AtomicU32,
    pub extensions: Extensions,
    pub sizes: Sizes,
    permits: Arc<Semaphore>,
    /// How long the `limits@openssh.com` request took: a round trip, for
    /// free.
    pub round_trip: Option<std::time::Duration>,
    /// The writer and the reader; ended with the client.
    tasks: [tokio::task::AbortHandle; 2],
}

impl Drop for SftpClient {
    fn drop(&mut self) {
        // The writer ends by itself once the queue closes (after sending
        // what is queued, CLOSEs included); the reader would wait for the
        // server.
        self.tasks[1].abort();
    }
}

/// An answer on its way.
pub struct Pending {
    rx: oneshot::Receiver<Response>,
    waiters: Arc<Waiters>,
}

impl Pending {
    pub async fn reply(self) -> Result<Response, SftpError> {
        match self.rx.await {
            Ok(r) => Ok(r),
            Err(_) => Err(SftpError::Lost(ended(&self.waiters))),
        }
    }

    /// A STATUS that must be OK.
    pub async fn ok(self) -> Result<(), SftpError> {
        match self.reply().await? {
            Response::Status { code, .. } if code == status::OK => Ok(()),
            other => Err(failure(other)),
        }
    }
}

fn ended(w: &Waiters) -> String {
    w.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .ended
        .clone()
        .unwrap_or_else(|| "connection closed".to_owned())
}

/// A reply that is not the one expected: the server's error, or a
/// protocol error.
fn failure(r: Response) -> SftpError {
    match r {
        Response::Status { code, message, .. } => SftpError::Status {
            code,
            message: Escaped::truncated(&message, 200).to_string(),
        },
        other => SftpError::Protocol(format!("{:?}", kind(&other))),
    }
}

fn kind(r: &Response) -> &'static str {
    match r {
        Response::Version { .. } => "VERSION",
        Response::Status { .. } => "STATUS",
        Response::Handle { .. } => "HANDLE",
        Response::Data { .. } => "DATA",
        Response::Name { .. } => "NAME",
        Response::Attrs { .. } => "ATTRS",
        Response::ExtendedReply { .. } => "EXTENDED_REPLY",
    }
}

impl SftpClient {
    /// Runs the SFTP handshake over `stream` and asks the server's limits
    /// when it offers them. `in_flight` bounds the requests the copy
    /// engine keeps outstanding on this session.
    pub async fn start<S>(stream: S, in_flight: usize) -> Result<SftpClient, SftpError>
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (rd, mut wr) = tokio::io::split(stream);
        wr.write_all(&init_packet())
            .await
            .map_err(|e| SftpError::Lost(format!("sending INIT: {e}")))?;
        Self::after_init(rd, wr, BytesMut::new(), in_flight, None).await
    }

    /// The handshake's second half, INIT already sent: `buf` holds what
    /// was read already. With `like`, the sizes are that session's (another
    /// session to the same server): no `limits@openssh.com` round trip.
    pub async fn after_init<R, W>(
        mut rd: R,
        wr: W,
        mut buf: BytesMut,
        in_flight: usize,
        like: Option<&SftpClient>,
    ) -> Result<SftpClient, SftpError>
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        buf.reserve(64 * 1024);
        let version = loop {
            if let Some(p) =
                warren_sftp::split_packet(&mut buf, MAX_PACKET).map_err(protocol_error)?
            {
                break Response::decode(p).map_err(protocol_error)?;
            }
            let n = rd
                .read_buf(&mut buf)
                .await
                .map_err(|e| SftpError::Lost(format!("waiting for VERSION: {e}")))?;
            if n == 0 {
                return Err(SftpError::Lost(
                    "the server closed the channel before the SFTP version \
                     (is the sftp subsystem enabled on the server?)"
                        .to_owned(),
                ));
            }
        };
        let Response::Version {
            version,
            extensions: offered,
        } = version
        else {
            return Err(SftpError::Protocol(format!(
                "{} instead of VERSION",
                kind(&version)
            )));
        };
        if version < 3 {
            return Err(SftpError::Protocol(format!("SFTP version {version}")));
        }
        let has = |name: &str| offered.iter().any(|(n, _)| n.as_ref() == name.as_bytes());
        let extensions = Extensions {
            limits: has(ext::LIMITS),
            posix_rename: has(ext::POSIX_RENAME),
            fsync: has(ext::FSYNC),
            statvfs: has(ext::STATVFS),
            hardlink: has(ext::HARDLINK),
            expand_path: has("expand-path@openssh.com"),
        };
        let waiters = Arc::new(Waiters::default());
        let (out, rx) = mpsc::unbounded_channel();
        let writer = tokio::spawn(write_loop(wr, rx)).abort_handle();
        let reader = tokio::spawn(read_loop(rd, buf, waiters.clone())).abort_handle();
        let mut client = SftpClient {
            out,
            waiters,
            next_id: AtomicU32::new(1),
            extensions,
            sizes: Sizes {
                read: DEFAULT_CHUNK,
                write: DEFAULT_CHUNK,
                open_handles: None,
            },
            permits: Arc::new(Semaphore::new(in_flight.max(1))),
            tasks: [writer, reader],
            round_trip: None,
        };
        if let Some(other) = like {
            client.sizes = other.sizes;
        } else if client.extensions.limits {
            let asked = std::time::Instant::now();
            let limits = client.limits().await?;
            client.round_trip = Some(asked.elapsed());
            let pick = |v: u64| {
                if v == 0 {
                    DEFAULT_CHUNK
                } else {
                    u32::try_from(v.min(u64::from(MAX_CHUNK))).unwrap_or(MAX_CHUNK)
                }
            };
            client.sizes = Sizes {
                read: pick(limits.max_read),
                write: pick(limits.max_write),
                open_handles: (limits.max_open_handles > 0).then_some(limits.max_open_handles),
            };
        }
        debug!(
            "SFTP version {version}; extensions {:?}; chunks read {} write {}",
            client.extensions, client.sizes.read, client.sizes.write
        );
        Ok(client)
    }

    /// The requests the copy engine may keep in flight on this session.
    pub fn permits(&self) -> &Arc<Semaphore> {
        &self.permits
    }

    /// Queues a request; its answer comes through the returned [`Pending`].
    pub fn send(&self, make: impl FnOnce(u32) -> Request) -> Pending {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let pending = Pending {
            rx,
            waiters: self.waiters.clone(),
        };
        {
            let mut w = self.waiters.lock().unwrap_or_else(PoisonError::into_inner);
            if w.ended.is_some() {
                return pending; // tx dropped: the reply is Lost
            }
            w.map.insert(id, tx);
        }
        let mut packet = BytesMut::new();
        make(id).encode(&mut packet);
        if self.out.send(packet.freeze()).is_err() {
            self.waiters
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .map
                .remove(&id);
        }
        pending
    }

    /// SSH_FXP_OPEN; the answer is a handle ([`handle`]).
    pub fn open_request(&self, path: &[u8], flags: u32, attrs: Attrs) -> Pending {
        let path = Bytes::copy_from_slice(path);
        self.send(|id| Request::Open {
            id,
            path,
            flags,
            attrs,
        })
    }

    pub fn close(&self, handle: &Bytes) -> Pending {
        let handle = handle.clone();
        self.send(|id| Request::Close { id, handle })
    }

    pub fn read(&self, handle: &Bytes, offset: u64, len: u32) -> Pending {
        let handle = handle.clone();
        self.send(|id| Request::Read {
            id,
            handle,
            offset,
            len,
        })
    }

    pub fn write(&self, handle: &Bytes, offset: u64, data: Bytes) -> Pending {
        let handle = handle.clone();
        self.send(|id| Request::Write {
            id,
            handle,
            offset,
            data,
        })
    }

    pub async fn stat(&self, path: &[u8]) -> Result<Attrs, SftpError> {
        let path = Bytes::copy_from_slice(path);
        attrs(self.send(|id| Request::Stat { id, path }).reply().await?)
    }

    pub async fn lstat(&self, path: &[u8]) -> Result<Attrs, SftpError> {
        let path = Bytes::copy_from_slice(path);
        attrs(self.send(|id| Request::Lstat { id, path }).reply().await?)
    }

    pub fn fstat(&self, handle: &Bytes) -> Pending {
        let handle = handle.clone();
        self.send(|id| Request::Fstat { id, handle })
    }

    pub fn setstat(&self, path: &[u8], attrs: Attrs) -> Pending {
        let path = Bytes::copy_from_slice(path);
        self.send(|id| Request::SetStat { id, path, attrs })
    }

    pub fn fsetstat(&self, handle: &Bytes, attrs: Attrs) -> Pending {
        let handle = handle.clone();
        self.send(|id| Request::FSetStat { id, handle, attrs })
    }

    pub async fn mkdir(&self, path: &[u8], attrs: Attrs) -> Result<(), SftpError> {
        let path = Bytes::copy_from_slice(path);
        self.send(|id| Request::MkDir { id, path, attrs })
            .ok()
            .await
    }

    pub async fn remove(&self, path: &[u8]) -> Result<(), SftpError> {
        let path = Bytes::copy_from_slice(path);
        self.send(|id| Request::Remove { id, path }).ok().await
    }

    pub async fn readlink(&self, path: &[u8]) -> Result<Bytes, SftpError> {
        let path = Bytes::copy_from_slice(path);
        match self
            .send(|id| Request::ReadLink { id, path })
            .reply()
            .await?
        {
            Response::Name { mut entries, .. } if !entries.is_empty() => {
                Ok(entries.swap_remove(0).filename)
            }
            other => Err(failure(other)),
        }
    }

    pub async fn realpath(&self, path: &[u8]) -> Result<Bytes, SftpError> {
        let path = Bytes::copy_from_slice(path);
        match self
            .send(|id| Request::RealPath { id, path })
            .reply()
            .await?
        {
            Response::Name { mut entries, .. } if !entries.is_empty() => {
                Ok(entries.swap_remove(0).filename)
            }
            other => Err(failure(other)),
        }
    }

    /// `expand-path@openssh.com`: `~user/x` as the server sees it.
    pub async fn expand_path(&self, path: &[u8]) -> Result<Bytes, SftpError> {
        if !self.extensions.expand_path {
            return Err(SftpError::Unsupported(
                "expand-path@openssh.com (~user paths)",
            ));
        }
        let data = ext::one_string(path);
        match self
            .send(|id| Request::Extended {
                id,
                name: Bytes::from_static(b"expand-path@openssh.com"),
                data,
            })
            .reply()
            .await?
        {
            Response::Name { mut entries, .. } if !entries.is_empty() => {
                Ok(entries.swap_remove(0).filename)
            }
            other => Err(failure(other)),
        }
    }

    /// SSH_FXP_SYMLINK as OpenSSH sends it: the link's target first.
    pub async fn symlink(&self, target: &[u8], link: &[u8]) -> Result<(), SftpError> {
        let (target, link) = (Bytes::copy_from_slice(target), Bytes::copy_from_slice(link));
        self.send(|id| Request::Symlink { id, target, link })
            .ok()
            .await
    }

    /// Renames over an existing `to` (`posix-rename@openssh.com`); without
    /// the extension, removes `to` first (not atomic: said at -v).
    pub async fn rename_over(&self, from: &[u8], to: &[u8]) -> Result<(), SftpError> {
        if self.extensions.posix_rename {
            let data = ext::two_paths(from, to);
            return self
                .send(|id| Request::Extended {
                    id,
                    name: Bytes::from_static(ext::POSIX_RENAME.as_bytes()),
                    data,
                })
                .ok()
                .await;
        }
        debug!("no posix-rename@openssh.com: removing the target before renaming onto it");
        match self.remove(to).await {
            Ok(()) => {}
            Err(SftpError::Status { code, .. }) if code == status::NO_SUCH_FILE => {}
            Err(e) => return Err(e),
        }
        let (from, to) = (Bytes::copy_from_slice(from), Bytes::copy_from_slice(to));
        self.send(|id| Request::Rename { id, from, to }).ok().await
    }

    /// `fsync@openssh.com`, or nothing (`Ok(false)`) when not offered.
    pub fn fsync(&self, handle: &Bytes) -> Option<Pending> {
        if !self.extensions.fsync {
            return None;
        }
        let data = ext::one_string(handle);
        Some(self.send(|id| Request::Extended {
            id,
            name: Bytes::from_static(ext::FSYNC.as_bytes()),
            data,
        }))
    }

    async fn limits(&self) -> Result<ext::Limits, SftpError> {
        match self
            .send(|id| Request::Extended {
                id,
                name: Bytes::from_static(ext::LIMITS.as_bytes()),
                data: Bytes::new(),
            })
            .reply()
            .await?
        {
            Response::ExtendedReply { data, .. } => {
                ext::Limits::decode(data).map_err(protocol_error)
            }
            other => Err(failure(other)),
        }
    }

    /// Every entry of directory `path` (`.` and `..` left out).
    pub async fn read_dir(&self, path: &[u8]) -> Result<Vec<NameEntry>, SftpError> {
        let p = Bytes::copy_from_slice(path);
        let handle = match self
            .send(|id| Request::OpenDir { id, path: p })
            .reply()
            .await?
        {
            Response::Handle { handle, .. } => handle,
            other => return Err(failure(other)),
        };
        // READDIRs go out READDIR_AHEAD at a time: a directory of a few
        // hundred entries is listed in one round trip after the OPENDIR,
        // not one per hundred (sftp-server answers them in order; past
        // the end each is an EOF).
        let mut all = Vec::new();
        let result = 'listing: loop {
            let batch: Vec<Pending> = (0..READDIR_AHEAD)
                .map(|_| {
                    let h = handle.clone();
                    self.send(|id| Request::ReadDir { id, handle: h })
                })
                .collect();
            let mut end = None;
            for pending in batch {
                if end.is_some() {
                    // Answered after the end: nothing more to read.
                    drop(pending);
                    continue;
                }
                match pending.reply().await {
                    Ok(Response::Name { .. }) if all.len() > MAX_DIR_ENTRIES => {
                        end = Some(Err(SftpError::Protocol(format!(
                            "a directory of more than {MAX_DIR_ENTRIES} entries"
                        ))));
                    }
                    Ok(Response::Name { entries, .. }) => {
                        all.extend(entries.into_iter().filter(|e| {
                            e.filename.as_ref() != b"." && e.filename.as_ref() != b".."
                        }))
                    }
                    Ok(Response::Status { code, .. }) if code == status::EOF => end = Some(Ok(())),
                    Ok(other) => end = Some(Err(failure(other))),
                    Err(e) => end = Some(Err(e)),
                }
            }
            if let Some(end) = end {
                break 'listing end.map(|()| all);
            }
        };
        // The CLOSE's answer is not waited for: nothing depends on it.
        drop(self.close(&handle));
        result
    }
}

/// An ATTRS reply's attributes.
pub fn attrs(r: Response) -> Result<Attrs, SftpError> {
    match r {
        Response::Attrs { attrs, .. } => Ok(attrs),
        other => Err(failure(other)),
    }
}

/// A DATA reply's bytes; `None` at end of file.
pub fn data(r: Response) -> Result<Option<Bytes>, SftpError> {
    match r {
        Response::Data { data, .. } => Ok(Some(data)),
        Response::Status { code, .. } if code == status::EOF => Ok(None),
        other => Err(failure(other)),
    }
}

/// A STATUS that must be OK.
pub fn ok(r: Response) -> Result<(), SftpError> {
    match r {
        Response::Status { code, .. } if code == status::OK => Ok(()),
        other => Err(failure(other)),
    }
}

/// A HANDLE reply's handle.
pub fn handle(r: Response) -> Result<Bytes, SftpError> {
    match r {
        Response::Handle { handle, .. } => Ok(handle),
        other => Err(failure(other)),
    }
}

fn protocol_error(e: warren_sftp::Malformed) -> SftpError {
    SftpError::Protocol(e.to_string())
}

/// SSH_FXP_INIT, framed.
pub fn init_packet() -> Bytes {
    let mut init = BytesMut::new();
    Request::Init {
        version: warren_sftp::VERSION,
        extensions: Vec::new(),
    }
    .encode(&mut init);
    init.freeze()
}

/// Open flags for a new file that replaces what is there.
pub const CREATE: u32 = open_flags::WRITE | open_flags::CREAT | open_flags::TRUNC;

async fn write_loop<W: AsyncWrite>(wr: W, mut rx: mpsc::UnboundedReceiver<Bytes>) {
    tokio::pin!(wr);
    let mut gathered = BytesMut::new();
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(p) = next.take() {
            if p.len() >= GATHER_BELOW {
                if !gathered.is_empty() {
                    if wr.write_all(&gathered).await.is_err() {
                        return;
                    }
                    gathered.clear();
                }
                if wr.write_all(&p).await.is_err() {
                    return;
                }
            } else {
                gathered.extend_from_slice(&p);
            }
            if gathered.len() < GATHER_LIMIT {
                next = rx.try_recv().ok();
            }
        }
        if !gathered.is_empty() {
            if wr.write_all(&gathered).await.is_err() {
                return;
            }
            gathered.clear();
        }
        if wr.flush().await.is_err() {
            return;
        }
    }
    let _ = wr.shutdown().await;
}

async fn read_loop<R: AsyncRead>(rd: R, mut buf: BytesMut, waiters: Arc<Waiters>) {
    tokio::pin!(rd);
    let why = loop {
        match warren_sftp::split_packet(&mut buf, MAX_PACKET) {
            Ok(Some(p)) => {
                let r = match Response::decode(p) {
                    Ok(r) => r,
                    Err(e) => break format!("the server sent a malformed packet: {e}"),
                };
                let Some(id) = r.id() else {
                    break "the server sent a second VERSION".to_owned();
                };
                let tx = waiters
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .map
                    .remove(&id);
                match tx {
                    Some(tx) => {
                        let _ = tx.send(r);
                    }
                    None => break format!("the server answered request {id}, which was not asked"),
                }
                continue;
            }
            Ok(None) => {}
            Err(e) => break format!("the server sent a malformed packet: {e}"),
        }
        if buf.capacity() - buf.len() < 64 * 1024 {
            buf.reserve(256 * 1024);
        }
        match rd.read_buf(&mut buf).await {
            Ok(0) => break "the server closed the channel".to_owned(),
            Ok(_) => {}
            Err(e) => break format!("reading from the server: {e}"),
        }
    };
    debug!("SFTP session ended: {why}");
    let mut w = waiters.lock().unwrap_or_else(PoisonError::into_inner);
    w.ended = Some(why);
    w.map.clear();
}
