//! The driver: starts the helper over an exec channel (finding it, or
//! installing this very binary over SFTP), and pushes or pulls one file at
//! a time through it.
//!
//! Design choice: one request at a time on one channel. The helper only
//! answers a push at its end and only reads while a pull's signature comes
//! in, so neither side ever waits on a peer that is itself blocked on a
//! write; file reading, matching and rebuilding run on blocking threads
//! fed through small bounded queues.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use russh::client::Handle;
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf};
use tokio::io::AsyncReadExt as _;
use tokio::sync::mpsc;
use tracing::debug;
use warren_sftp::Attrs;
use warren_sync::Op;
use warren_sync::delta::{BlockSum, STRONG_LEN, Signature};
use warren_sync::proto::{self, ERROR_FILE, Msg};
use warren_wire::Escaped;

use super::helper::{OpsBatch, check_header};
use super::rebuild::{self, Basis, Rebuild, RebuildError};
use super::{DeltaError, DeltaStats, FileMeta, matcher};
use crate::session::handler::ClientHandler;
use crate::transfer::client::{self as sftp_client, SftpClient};

/// `--remote-helper`: how the remote end of delta transfers is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HelperMode {
    /// Use a helper already on the remote; otherwise none (files go whole).
    #[default]
    Auto,
    /// Install this binary on the remote when its system matches.
    Install,
    /// Never use one.
    Never,
}

/// This build's version: the helper's directory under `~/.cache/warren/`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// How long a started helper may take to say Hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(60);
/// How much a login shell may print before the helper's Hello.
const MAX_NOISE: usize = 64 * 1024;
/// The stderr kept from a helper, for messages.
const MAX_STDERR: usize = 4096;

/// The command `--remote-helper auto` runs: the installed helper, else
/// `warren` on the PATH. `warren serve` recognises exactly this string and
/// runs itself instead.
pub fn auto_command() -> String {
    format!(
        "sh -c 'h=\"$HOME/.cache/warren/{VERSION}/warren\"; [ -x \"$h\" ] || h=warren; exec \"$h\" sync --server'"
    )
}

/// The command that runs the helper at `path` (quoted for the shell).
fn path_command(path: &str) -> String {
    format!("'{}' sync --server", path.replace('\'', "'\\''"))
}

/// Prints a marker (so a login script's noise is skipped), the system and
/// the home directory.
const PROBE: &str = "printf 'warren-probe\\n'; uname -sm; printf '%s\\n' \"$HOME\"";

/// A running helper on the remote side of a session.
pub struct RemoteHelper {
    read: ChannelReadHalf,
    write: ChannelWriteHalf<russh::client::Msg>,
    buf: BytesMut,
    stderr: Vec<u8>,
    exit: Option<u32>,
    next_id: u32,
    /// Bytes in and out on the channel so far.
    wire: u64,
    /// The protocol version both sides speak.
    pub version: u32,
}

/// How starting a helper went.
enum Launch {
    Ready(Box<RemoteHelper>),
    /// It ended (or never started) without a Hello: what it said.
    Missing(String),
    /// Something other than a helper answered.
    Garbage(String),
}

impl RemoteHelper {
    /// Finds, installs (`Install`: this very executable) or skips the
    /// helper as `mode` says. `Ok(None)`: no delta transfer on this
    /// session; `note` has said why in one line.
    pub async fn start(
        handle: &Handle<ClientHandler>,
        sftp: &SftpClient,
        mode: HelperMode,
        note: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<Option<RemoteHelper>, DeltaError> {
        let exe = std::env::current_exe().map_err(|source| DeltaError::Local {
            what: "finding this program's executable",
            path: PathBuf::new(),
            source,
        })?;
        Self::start_with(handle, sftp, mode, &exe, note).await
    }

    /// [`RemoteHelper::start`] installing `exe` (a warren binary) rather
    /// than the running executable.
    pub async fn start_with(
        handle: &Handle<ClientHandler>,
        sftp: &SftpClient,
        mode: HelperMode,
        exe: &Path,
        note: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<Option<RemoteHelper>, DeltaError> {
        match mode {
            HelperMode::Never => Ok(None),
            HelperMode::Auto => match launch(handle, &auto_command(), note).await? {
                Launch::Ready(h) => Ok(Some(*h)),
                Launch::Missing(said) => {
                    note(&format!(
                        "no warren helper on the remote (~/.cache/warren/{VERSION}/warren or \
                         warren on its PATH{said}): changed files are sent whole; \
                         --remote-helper install enables delta transfer"
                    ));
                    Ok(None)
                }
                Launch::Garbage(why) => {
                    note(&format!("{why}: changed files are sent whole"));
                    Ok(None)
                }
            },
            HelperMode::Install => install(handle, sftp, exe, note).await,
        }
    }

    /// Makes remote `dest` equal to local `src`, sending only changed
    /// blocks; `meta` is set on the result.
    pub async fn push(
        &mut self,
        src: &Path,
        dest: &[u8],
        meta: Option<FileMeta>,
    ) -> Result<DeltaStats, DeltaError> {
        let wire_start = self.wire;
        let id = self.id();
        self.send(&[Msg::SigRequest {
            id,
            path: dest.to_vec(),
        }])
        .await?;
        let (sig, strong_len) = match self.recv_signature(id).await? {
            Ok(x) => x,
            Err(why) => return Err(refused(dest, why)),
        };
        if let Some(m) = meta {
            self.send(&[Msg::SetAttrs {
                id,
                mode: m.mode,
                mtime: m.mtime,
            }])
            .await?;
        }
        let (tx, mut rx) = mpsc::channel::<Bytes>(4);
        let path = src.to_owned();
        let worker =
            tokio::task::spawn_blocking(move || compute_delta(&path, &sig, strong_len, id, &tx));
        while let Some(frames) = rx.recv().await {
            self.send_bytes(frames).await?;
        }
        let summary = worker
            .await
            .map_err(|e| DeltaError::Gone(format!("the delta task failed: {e}")))?;
        // A local failure still ends the helper's side of the push: an
        // impossible hash makes it drop what it received.
        let (file_len, file_hash) = match &summary {
            Ok(s) => (s.file_len, s.file_hash),
            Err(_) => (u64::MAX, [0; 32]),
        };
        self.send(&[Msg::DeltaEnd {
            id,
            file_len,
            file_hash,
        }])
        .await?;
        let answer = self.recv().await?;
        let summary = summary.map_err(|source| DeltaError::Local {
            what: "reading",
            path: src.to_owned(),
            source,
        })?;
        match answer {
            Msg::Applied { id: a } if a == id => Ok(DeltaStats {
                literal_bytes: summary.literal_bytes,
                matched_bytes: summary.file_len - summary.literal_bytes,
                wire_bytes: self.wire - wire_start,
            }),
            Msg::Error { code, message } => Err(answer_error(dest, code, &message)),
            other => Err(self.unexpected(&other)),
        }
    }

    /// Makes local `dest` equal to remote `src`, rebuilt from what is at
    /// `dest` into a temp file beside it, checked, renamed into place.
    pub async fn pull(
        &mut self,
        src: &[u8],
        dest: &Path,
        meta: Option<FileMeta>,
    ) -> Result<DeltaStats, DeltaError> {
        let wire_start = self.wire;
        let id = self.id();
        let target = dest.to_owned();
        let (basis, sig) = tokio::task::spawn_blocking(move || local_signature(&target))
            .await
            .map_err(|e| DeltaError::Gone(format!("the signature task failed: {e}")))?
            .map_err(|e| local(dest, e))?;
        let mut msgs = vec![Msg::DeltaRequest {
            id,
            path: src.to_vec(),
        }];
        msgs.extend(proto::signature_msgs_with(id, &sig, super::STRONG_ON_WIRE));
        self.send(&msgs).await?;

        let (tx, rx) = mpsc::channel::<Job>(4);
        let target = dest.to_owned();
        let meta = meta.unwrap_or_default();
        let worker = tokio::task::spawn_blocking(move || rebuild_from(&target, basis, &meta, rx));
        let mut literal = 0u64;
        let mut tx = Some(tx);
        let outcome = loop {
            match self.recv().await? {
                Msg::DeltaOps { id: o, ops } if o == id => {
                    literal += ops
                        .iter()
                        .map(|op| match op {
                            Op::Data(d) => d.len() as u64,
                            Op::Copy { .. } => 0,
                        })
                        .sum::<u64>();
                    // A worker that already failed says why below.
                    if let Some(t) = &tx
                        && t.send(Job::Ops(ops)).await.is_err()
                    {
                        tx = None;
                    }
                }
                Msg::DeltaEnd {
                    id: e,
                    file_len,
                    file_hash,
                } if e == id => {
                    if let Some(t) = tx.take() {
                        let _ = t.send(Job::End(file_len, file_hash)).await;
                    }
                    break Ok(file_len);
                }
                Msg::Error { code, message } => break Err(answer_error(src, code, &message)),
                other => return Err(self.unexpected(&other)),
            }
        };
        drop(tx);
        let rebuilt = worker
            .await
            .map_err(|e| DeltaError::Gone(format!("the rebuild task failed: {e}")))?;
        let file_len = outcome?;
        rebuilt.map_err(|e| match e {
            RebuildError::Io {
                what, path, source, ..
            } => DeltaError::Local { what, path, source },
            other => refused(src, other.to_string().into_bytes()),
        })?;
        Ok(DeltaStats {
            literal_bytes: literal,
            matched_bytes: file_len.saturating_sub(literal),
            wire_bytes: self.wire - wire_start,
        })
    }

    /// The length and BLAKE3 hash of the remote `path` (what `-c`
    /// compares, and how an installed helper is checked).
    pub async fn hash(&mut self, path: &[u8]) -> Result<(u64, [u8; 32]), DeltaError> {
        let id = self.id();
        self.send(&[Msg::HashRequest {
            id,
            path: path.to_vec(),
        }])
        .await?;
        match self.recv().await? {
            Msg::FileHash {
                id: h,
                file_len,
                file_hash,
            } if h == id => Ok((file_len, file_hash)),
            Msg::Error { code, message } => Err(answer_error(path, code, &message)),
            other => Err(self.unexpected(&other)),
        }
    }

    /// Ends the helper politely.
    pub async fn finish(self) {
        let mut out = BytesMut::new();
        if Msg::Done.encode(&mut out).is_ok() {
            let _ = self.write.data_bytes(out.freeze()).await;
        }
        let _ = self.write.eof().await;
    }

    fn id(&mut self) -> u32 {
        self.next_id = self.next_id.wrapping_add(1);
        self.next_id
    }

    /// A signature and the strong-sum bytes it came with (`Ok`), or the
    /// helper's refusal (`Err`, its message).
    async fn recv_signature(
        &mut self,
        id: u32,
    ) -> Result<Result<(Signature, usize), Vec<u8>>, DeltaError> {
        let (block_len, file_len, count) = match self.recv().await? {
            Msg::SigHeader {
                id: h,
                block_len,
                file_len,
                block_count,
            } if h == id => (block_len, file_len, block_count),
            Msg::Error { code, message } if code == ERROR_FILE => return Ok(Err(message)),
            other => return Err(self.unexpected(&other)),
        };
        check_header(block_len, file_len, count).map_err(DeltaError::Protocol)?;
        let mut blocks: Vec<BlockSum> = Vec::new();
        let mut strong = STRONG_LEN;
        while blocks.len() < count as usize {
            match self.recv().await? {
                Msg::SigBlocks {
                    id: b,
                    strong_len,
                    blocks: more,
                } if b == id && blocks.len() + more.len() <= count as usize => {
                    strong = strong.min(usize::from(strong_len));
                    blocks.extend(more);
                }
                other => return Err(self.unexpected(&other)),
            }
        }
        let sig = Signature {
            block_len,
            file_len,
            blocks,
        };
        Ok(Ok((sig, strong)))
    }

    async fn send(&mut self, msgs: &[Msg]) -> Result<(), DeltaError> {
        let mut out = BytesMut::new();
        for m in msgs {
            m.encode(&mut out)
                .map_err(|e| DeltaError::Protocol(e.to_string()))?;
        }
        self.send_bytes(out.freeze()).await
    }

    async fn send_bytes(&mut self, data: Bytes) -> Result<(), DeltaError> {
        self.wire += data.len() as u64;
        self.write
            .data_bytes(data)
            .await
            .map_err(|e| DeltaError::Gone(format!("sending to the helper: {e}")))
    }

    /// The next message from the helper; a protocol error it reports, or
    /// its end, is [`DeltaError::Gone`].
    async fn recv(&mut self) -> Result<Msg, DeltaError> {
        loop {
            match proto::decode(&mut self.buf) {
                Ok(Some(Msg::Error { code, message })) if code != ERROR_FILE => {
                    return Err(answer_error(b"", code, &message));
                }
                Ok(Some(m)) => return Ok(m),
                Ok(None) => {}
                Err(e) => return Err(DeltaError::Protocol(e.to_string())),
            }
            match self.read.wait().await {
                Some(ChannelMsg::Data { data }) => {
                    self.wire += data.len() as u64;
                    self.buf.extend_from_slice(&data);
                }
                Some(ChannelMsg::ExtendedData { data, .. }) => keep_tail(&mut self.stderr, &data),
                Some(ChannelMsg::ExitStatus { exit_status }) => self.exit = Some(exit_status),
                Some(ChannelMsg::Close) | None => return Err(self.gone()),
                Some(_) => {}
            }
        }
    }

    fn gone(&self) -> DeltaError {
        let status = self
            .exit
            .map_or(String::new(), |s| format!(" with status {s}"));
        let said = if self.stderr.is_empty() {
            String::new()
        } else {
            format!(": {}", Escaped::truncated(self.stderr.trim_ascii(), 300))
        };
        DeltaError::Gone(format!("the helper on the remote ended{status}{said}"))
    }

    fn unexpected(&self, msg: &Msg) -> DeltaError {
        DeltaError::Protocol(format!(
            "the helper answered out of turn ({})",
            Escaped::truncated(format!("{msg:?}").as_bytes(), 120)
        ))
    }
}

/// Reading local `src` and matching it against `sig`, its frames handed
/// to the async side as they fill.
fn compute_delta(
    src: &Path,
    sig: &Signature,
    strong_len: usize,
    id: u32,
    tx: &mpsc::Sender<Bytes>,
) -> std::io::Result<matcher::Summary> {
    let file = std::fs::File::open(src)?;
    let mut batch = OpsBatch::new(id);
    let send = |msg: Msg| -> std::io::Result<()> {
        let mut out = BytesMut::new();
        msg.encode(&mut out).map_err(std::io::Error::other)?;
        tx.blocking_send(out.freeze())
            .map_err(|_| std::io::Error::other("the session went away"))
    };
    let summary = matcher::delta_stream(sig, strong_len, &file, |op| match batch.push(op) {
        Some(msg) => send(msg),
        None => Ok(()),
    })?;
    if let Some(msg) = batch.finish() {
        send(msg)?;
    }
    Ok(summary)
}

/// What a pull rebuilds from: the file at `dest` (none when absent or a
/// symlink) and its signature.
fn local_signature(dest: &Path) -> Result<(Option<(Basis, u32)>, Signature), RebuildError> {
    match rebuild::open_basis(dest)? {
        None => Ok((None, Signature::of(b""))),
        Some((file, len, mode)) => {
            let sig = matcher::signature_of(&file, len).map_err(|source| RebuildError::Io {
                what: "reading",
                path: dest.to_owned(),
                source,
            })?;
            let basis = Basis {
                file,
                block_len: sig.block_len,
                file_len: sig.file_len,
                blocks: sig.blocks.len() as u32,
            };
            Ok((Some((basis, mode)), sig))
        }
    }
}

enum Job {
    Ops(Vec<Op>),
    End(u64, [u8; 32]),
}

fn rebuild_from(
    target: &Path,
    basis: Option<(Basis, u32)>,
    meta: &FileMeta,
    mut rx: mpsc::Receiver<Job>,
) -> Result<(), RebuildError> {
    let (basis, basis_mode) = match basis {
        Some((b, mode)) => (Some(b), Some(mode)),
        None => (None, None),
    };
    let mut r = Rebuild::create(target, basis, meta.mode.or(basis_mode))?;
    while let Some(job) = rx.blocking_recv() {
        match job {
            Job::Ops(ops) => {
                for op in &ops {
                    r.op(op)?;
                }
            }
            Job::End(len, hash) => return r.finish(len, &hash, meta),
        }
    }
    // Dropped: the temp file goes with it.
    Err(RebuildError::Io {
        what: "rebuilding",
        path: target.to_owned(),
        source: std::io::Error::other("the delta ended early"),
    })
}

/// Opens an exec channel running `command` and waits for the helper's
/// Hello, skipping what a login script printed before it.
async fn launch(
    handle: &Handle<ClientHandler>,
    command: &str,
    note: &(dyn Fn(&str) + Send + Sync),
) -> Result<Launch, DeltaError> {
    let channel = handle
        .channel_open_session()
        .await
        .map_err(|e| DeltaError::Gone(format!("opening a channel for the helper: {e}")))?;
    debug!("starting the sync helper: {command}");
    channel
        .exec(true, command.as_bytes())
        .await
        .map_err(|e| DeltaError::Gone(format!("starting the helper: {e}")))?;
    let (read, write) = channel.split();
    let mut h = RemoteHelper {
        read,
        write,
        buf: BytesMut::new(),
        stderr: Vec::new(),
        exit: None,
        next_id: 0,
        wire: 0,
        version: 0,
    };
    let hello = match tokio::time::timeout(HELLO_TIMEOUT, wait_hello(&mut h)).await {
        Ok(r) => r,
        Err(_) => {
            return Ok(Launch::Garbage(format!(
                "the remote helper did not answer within {}s",
                HELLO_TIMEOUT.as_secs()
            )));
        }
    };
    match hello {
        Hello::Version(v, skipped) => {
            if skipped > 0 {
                note(&format!(
                    "the remote login shell printed {skipped} bytes before the sync helper \
                     started; skipped (a quiet ~/.bashrc for non-interactive shells avoids it)"
                ));
            }
            h.version = v.min(proto::VERSION);
            h.send(&[Msg::Hello {
                version: proto::VERSION,
                features: 0,
            }])
            .await?;
            Ok(Launch::Ready(Box::new(h)))
        }
        Hello::Ended => {
            let said = if h.stderr.is_empty() {
                String::new()
            } else {
                format!(": {}", Escaped::truncated(h.stderr.trim_ascii(), 200))
            };
            Ok(Launch::Missing(said))
        }
        Hello::Garbage => Ok(Launch::Garbage(format!(
            "the remote printed {} bytes that are not a sync helper's greeting (\"{}\"): \
             is a login script printing, or is the `warren` there something else?",
            h.buf.len(),
            Escaped::truncated(&h.buf, 80)
        ))),
    }
}

enum Hello {
    /// The helper's version, and how many noise bytes came before it.
    Version(u32, usize),
    Ended,
    Garbage,
}

/// Reads until the helper's Hello frame (`00 00 00 0d 01`: text never
/// holds NUL bytes, so a login script's output cannot look like it).
async fn wait_hello(h: &mut RemoteHelper) -> Hello {
    let mut magic = BytesMut::new();
    let hello = Msg::Hello {
        version: 0,
        features: 0,
    };
    if hello.encode(&mut magic).is_err() {
        return Hello::Garbage;
    }
    let magic = &magic[..5];
    loop {
        if let Some(at) = h.buf.windows(magic.len()).position(|w| w == magic) {
            let _ = h.buf.split_to(at);
            match proto::decode(&mut h.buf) {
                Ok(Some(Msg::Hello { version, .. })) if version >= 1 => {
                    return Hello::Version(version, at);
                }
                Ok(None) => {}
                _ => return Hello::Garbage,
            }
        } else if h.buf.len() > MAX_NOISE {
            return Hello::Garbage;
        }
        match h.read.wait().await {
            Some(ChannelMsg::Data { data }) => h.buf.extend_from_slice(&data),
            Some(ChannelMsg::ExtendedData { data, .. }) => keep_tail(&mut h.stderr, &data),
            Some(ChannelMsg::ExitStatus { exit_status }) => h.exit = Some(exit_status),
            Some(ChannelMsg::Failure) => {
                h.stderr.extend_from_slice(b"the server refused to run it");
                return Hello::Ended;
            }
            Some(ChannelMsg::Close) | None => {
                return if h.buf.is_empty() {
                    Hello::Ended
                } else {
                    Hello::Garbage
                };
            }
            Some(_) => {}
        }
    }
}

fn keep_tail(kept: &mut Vec<u8>, data: &[u8]) {
    kept.extend_from_slice(data);
    if kept.len() > MAX_STDERR {
        kept.drain(..kept.len() - MAX_STDERR);
    }
}

/// `--remote-helper install`: the helper at `~/.cache/warren/VERSION/`
/// when it is this binary, else this binary uploaded there, when the
/// remote's `uname -sm` is this machine's.
async fn install(
    handle: &Handle<ClientHandler>,
    sftp: &SftpClient,
    exe: &Path,
    note: &(dyn Fn(&str) + Send + Sync),
) -> Result<Option<RemoteHelper>, DeltaError> {
    let probe = crate::exec::capture(handle, PROBE, b"")
        .await
        .map_err(|e| DeltaError::Gone(format!("asking the remote for its system: {e}")))?;
    let Some((system, home)) = parse_probe(&probe.stdout) else {
        note(&format!(
            "could not learn the remote's system (`uname -sm` said \"{}\"): changed files are \
             sent whole",
            Escaped::truncated(probe.stderr.trim_ascii(), 200)
        ));
        return Ok(None);
    };
    let ours = local_system();
    if system != ours {
        note(&format!(
            "the remote is {} and this machine {ours}: this warren cannot run there, so no \
             helper is installed and changed files are sent whole",
            Escaped::truncated(system.as_bytes(), 100)
        ));
        return Ok(None);
    }
    let path = format!("{home}/.cache/warren/{VERSION}/warren");
    let exe_owned = exe.to_owned();
    let want = tokio::task::spawn_blocking(move || {
        std::fs::File::open(&exe_owned).and_then(matcher::hash_of)
    })
    .await
    .map_err(|e| DeltaError::Gone(format!("the hashing task failed: {e}")))?
    .map_err(|e| local(exe, e))?;
    if let Some(h) = checked(handle, &path, want, &|_: &str| {}).await? {
        debug!("the installed sync helper is this build");
        return Ok(Some(h));
    }
    if let Err(e) = upload(sftp, exe, &home, &path).await {
        let _ = sftp.remove(upload_temp(&path).as_bytes()).await;
        note(&format!(
            "installing the sync helper at {} failed ({e}): changed files are sent whole",
            Escaped::truncated(path.as_bytes(), 200)
        ));
        return Ok(None);
    }
    match checked(handle, &path, want, note).await? {
        Some(h) => Ok(Some(h)),
        None => {
            note(&format!(
                "the sync helper installed at {} does not run or does not match this binary: \
                 changed files are sent whole",
                Escaped::truncated(path.as_bytes(), 200)
            ));
            Ok(None)
        }
    }
}

/// The helper at `path`, if it runs and its file is `want` (length, hash).
async fn checked(
    handle: &Handle<ClientHandler>,
    path: &str,
    want: (u64, [u8; 32]),
    note: &(dyn Fn(&str) + Send + Sync),
) -> Result<Option<RemoteHelper>, DeltaError> {
    let Launch::Ready(mut h) = launch(handle, &path_command(path), note).await? else {
        return Ok(None);
    };
    match h.hash(path.as_bytes()).await {
        Ok(got) if got == want => Ok(Some(*h)),
        Ok(_) => {
            h.finish().await;
            Ok(None)
        }
        Err(e) if e.send_whole() => {
            h.finish().await;
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// `Linux x86_64`: what `uname -sm` prints here.
fn local_system() -> String {
    let u = rustix::system::uname();
    format!(
        "{} {}",
        u.sysname().to_string_lossy(),
        u.machine().to_string_lossy()
    )
}

/// The system and home directory after the probe's marker line.
fn parse_probe(out: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(out).ok()?;
    let mut lines = text.lines().skip_while(|l| *l != "warren-probe").skip(1);
    let system = lines.next()?.trim().to_owned();
    let home = lines.next()?.trim_end().to_owned();
    (!system.is_empty() && home.starts_with('/')).then_some((system, home))
}

/// Uploads `exe` to `path` over SFTP: directories made, a temp name
/// written and made durable, mode 755, renamed over `path`.
async fn upload(sftp: &SftpClient, exe: &Path, home: &str, path: &str) -> Result<(), DeltaError> {
    let sftp_err = |what: &'static str| {
        move |e: sftp_client::SftpError| DeltaError::Install(format!("{what}: {e}"))
    };
    let mut dir = home.to_owned();
    for part in [".cache", "warren", VERSION] {
        dir = format!("{dir}/{part}");
        let attrs = Attrs {
            permissions: Some(0o700),
            ..Attrs::default()
        };
        if sftp.mkdir(dir.as_bytes(), attrs).await.is_err() {
            let st = sftp
                .stat(dir.as_bytes())
                .await
                .map_err(sftp_err("making its directory"))?;
            if !st.is_dir() {
                return Err(DeltaError::Install(format!(
                    "{} is not a directory",
                    Escaped::truncated(dir.as_bytes(), 200)
                )));
            }
        }
    }
    let temp = upload_temp(path);
    let attrs = Attrs {
        permissions: Some(0o700),
        ..Attrs::default()
    };
    let fh = sftp
        .open_request(temp.as_bytes(), sftp_client::CREATE, attrs)
        .reply()
        .await
        .and_then(sftp_client::handle)
        .map_err(sftp_err("creating the upload"))?;
    let mut local_file = tokio::fs::File::open(exe)
        .await
        .map_err(|e| local(exe, e))?;
    let chunk = sftp.sizes.write.clamp(1024, 255 * 1024) as usize;
    let mut pending = std::collections::VecDeque::new();
    let mut offset = 0u64;
    loop {
        let mut buf = vec![0; chunk];
        let mut n = 0;
        while n < chunk {
            let got = local_file
                .read(&mut buf[n..])
                .await
                .map_err(|e| local(exe, e))?;
            if got == 0 {
                break;
            }
            n += got;
        }
        if n == 0 {
            break;
        }
        buf.truncate(n);
        pending.push_back(sftp.write(&fh, offset, Bytes::from(buf)));
        offset += n as u64;
        if pending.len() >= 32
            && let Some(p) = pending.pop_front()
        {
            p.ok().await.map_err(sftp_err("writing the upload"))?;
        }
    }
    for p in pending {
        p.ok().await.map_err(sftp_err("writing the upload"))?;
    }
    let mode = Attrs {
        permissions: Some(0o755),
        ..Attrs::default()
    };
    sftp.fsetstat(&fh, mode)
        .ok()
        .await
        .map_err(sftp_err("making the upload executable"))?;
    if let Some(p) = sftp.fsync(&fh) {
        p.ok().await.map_err(sftp_err("syncing the upload"))?;
    }
    sftp.close(&fh)
        .ok()
        .await
        .map_err(sftp_err("closing the upload"))?;
    sftp.rename_over(temp.as_bytes(), path.as_bytes())
        .await
        .map_err(sftp_err("renaming the upload into place"))
}

/// What an `Error` answer means for the driver: [`ERROR_FILE`] is this
/// file only (send it whole), anything else the helper stopping.
pub fn answer_error(path: &[u8], code: u32, message: &[u8]) -> DeltaError {
    if code == ERROR_FILE {
        refused(path, message)
    } else {
        DeltaError::Protocol(format!(
            "the helper stopped: {}",
            Escaped::truncated(message, 300)
        ))
    }
}

/// Where an upload to `path` is written before it is renamed into place.
fn upload_temp(path: &str) -> String {
    format!("{path}.{}.tmp", std::process::id())
}

fn refused(path: &[u8], why: impl AsRef<[u8]>) -> DeltaError {
    DeltaError::Refused {
        path: warren_wire::escape(path).into_owned(),
        reason: Escaped::truncated(why.as_ref(), 300).to_string(),
    }
}

fn local(path: &Path, e: impl Into<LocalCause>) -> DeltaError {
    match e.into() {
        LocalCause::Io(source) => DeltaError::Local {
            what: "reading",
            path: path.to_owned(),
            source,
        },
        LocalCause::Rebuild(RebuildError::Io { what, path, source }) => {
            DeltaError::Local { what, path, source }
        }
        LocalCause::Rebuild(other) => DeltaError::Refused {
            path: path.display().to_string(),
            reason: other.to_string(),
        },
    }
}

enum LocalCause {
    Io(std::io::Error),
    Rebuild(RebuildError),
}

impl From<std::io::Error> for LocalCause {
    fn from(e: std::io::Error) -> Self {
        LocalCause::Io(e)
    }
}

impl From<RebuildError> for LocalCause {
    fn from(e: RebuildError) -> Self {
        LocalCause::Rebuild(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_skips_a_chatty_login() {
        let out = b"Welcome!\nwarren-probe\nLinux x86_64\n/home/ann\n";
        assert_eq!(
            parse_probe(out),
            Some(("Linux x86_64".into(), "/home/ann".into()))
        );
        assert_eq!(parse_probe(b"Linux x86_64\n/home/ann\n"), None);
        assert_eq!(parse_probe(b"warren-probe\nLinux x86_64\nrelative\n"), None);
    }

    #[test]
    fn helper_paths_are_quoted_for_the_shell() {
        assert_eq!(
            path_command("/home/o'k/.cache/warren/1/warren"),
            "'/home/o'\\''k/.cache/warren/1/warren' sync --server"
        );
    }
}
