//! The helper's side (`warren sync --server`): one blocking loop over its
//! stdin and stdout, one request at a time.
//!
//! It says Hello, waits for the driver's, then serves: a signature request
//! (then the delta for it, rebuilt beside the target and renamed into
//! place), a delta request (a pull: the driver's signature, then the delta
//! of our file against it), a hash request. A file that cannot be served
//! is answered with `Error { ERROR_FILE }` and the loop goes on; a peer
//! that breaks the protocol gets `Error { ERROR_PROTOCOL }` and the helper
//! stops. Nothing a peer sends can make it panic or allocate more than a
//! frame, plus [`MAX_BLOCKS`] block sums for a pull's signature.

use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

use bytes::BytesMut;
use warren_sync::delta::{BlockSum, MAX_BLOCK_LEN, Signature};
use warren_sync::proto::{self, ERROR_FILE, ERROR_PROTOCOL, Msg, ProtoError};

use super::FileMeta;
use super::matcher::{self, LITERAL_CHUNK};
use super::rebuild::{self, Basis, Rebuild, RebuildError};

/// The most block sums a signature may claim (80 MiB of sums: a file up to
/// 512 GiB at rsync's largest block).
pub const MAX_BLOCKS: u32 = 1 << 22;

/// Why the loop stopped early.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("reading a request")]
    Read(#[source] io::Error),
    #[error("writing an answer")]
    Write(#[source] io::Error),
    #[error(transparent)]
    Proto(#[from] ProtoError),
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("the input ended in the middle of a request")]
    Truncated,
}

/// Whether a signature's header describes a file: a block length rsync
/// could pick, one sum per block, and not more than [`MAX_BLOCKS`].
pub fn check_header(block_len: u32, file_len: u64, block_count: u32) -> Result<(), String> {
    if block_len == 0 || block_len > MAX_BLOCK_LEN {
        return Err(format!("a signature with {block_len}-byte blocks"));
    }
    if file_len.div_ceil(u64::from(block_len)) != u64::from(block_count) {
        return Err(format!(
            "a signature of {block_count} blocks of {block_len} bytes for {file_len} bytes"
        ));
    }
    if block_count > MAX_BLOCKS {
        return Err(format!(
            "a signature of {block_count} blocks (at most {MAX_BLOCKS})"
        ));
    }
    Ok(())
}

/// Serves requests from `input` until `Done` or the end of the input.
pub fn serve(input: impl Read, output: impl Write) -> Result<(), ServeError> {
    let mut h = Helper {
        input,
        output,
        buf: BytesMut::new(),
        state: State::Idle,
    };
    h.send(&[Msg::Hello {
        version: proto::VERSION,
        features: 0,
    }])?;
    let result = h.run();
    if let Err(e) = &result
        && !matches!(e, ServeError::Read(_) | ServeError::Write(_))
    {
        let _ = h.send(&[Msg::Error {
            code: ERROR_PROTOCOL,
            message: e.to_string().into_bytes(),
        }]);
    }
    result
}

enum State {
    Idle,
    /// A signature was sent for `target`; its delta is coming.
    Push(Box<Push>),
    /// A pull of `path`: its signature is coming.
    PullSig {
        id: u32,
        path: Vec<u8>,
        header: Option<(u32, u64, u32)>,
        blocks: Vec<BlockSum>,
    },
}

struct Push {
    id: u32,
    target: PathBuf,
    basis: Option<Basis>,
    basis_mode: Option<u32>,
    meta: FileMeta,
    rebuild: Option<Rebuild>,
    /// Why the rebuild already failed: the rest of the delta is read and
    /// dropped, and this is the answer.
    failed: Option<String>,
}

struct Helper<R, W> {
    input: R,
    output: W,
    buf: BytesMut,
    state: State,
}

impl<R: Read, W: Write> Helper<R, W> {
    fn run(&mut self) -> Result<(), ServeError> {
        match self.recv()? {
            Some(Msg::Hello { version, .. }) if version >= 1 => {}
            Some(Msg::Hello { version, .. }) => {
                return Err(ServeError::Protocol(format!("unknown version {version}")));
            }
            Some(other) => return Err(unexpected(&other)),
            None => return Ok(()),
        }
        loop {
            let Some(msg) = self.recv()? else {
                return match self.state {
                    State::Idle => Ok(()),
                    _ => Err(ServeError::Truncated),
                };
            };
            if matches!(msg, Msg::Done) {
                return Ok(());
            }
            self.dispatch(msg)?;
        }
    }

    fn dispatch(&mut self, msg: Msg) -> Result<(), ServeError> {
        let state = std::mem::replace(&mut self.state, State::Idle);
        self.state = match (state, msg) {
            (State::Idle, Msg::SigRequest { id, path }) => self.sig_request(id, &path)?,
            (State::Idle, Msg::DeltaRequest { id, path }) => State::PullSig {
                id,
                path,
                header: None,
                blocks: Vec::new(),
            },
            (State::Idle, Msg::HashRequest { id, path }) => {
                self.hash_request(id, &path)?;
                State::Idle
            }
            (State::Push(p), msg) => self.push_msg(p, msg)?,
            (
                State::PullSig {
                    id,
                    path,
                    header,
                    blocks,
                },
                msg,
            ) => self.pull_msg(id, path, header, blocks, msg)?,
            (State::Idle, other) => return Err(unexpected(&other)),
        };
        Ok(())
    }

    fn sig_request(&mut self, id: u32, path: &[u8]) -> Result<State, ServeError> {
        let target = path_of(path);
        let opened = rebuild::open_basis(&target).and_then(|b| match b {
            None => Ok((None, Signature::of(b""))),
            Some((file, len, mode)) => matcher::signature_of(&file, len)
                .map(|sig| (Some((file, mode)), sig))
                .map_err(|source| RebuildError::Io {
                    what: "reading",
                    path: target.clone(),
                    source,
                }),
        });
        let (basis, sig) = match opened {
            Ok(x) => x,
            Err(e) => {
                self.file_error(&e.to_string())?;
                return Ok(State::Idle);
            }
        };
        self.send(&proto::signature_msgs(id, &sig))?;
        let basis_mode = basis.as_ref().map(|(_, m)| *m);
        let basis = basis.map(|(file, _)| Basis {
            file,
            block_len: sig.block_len,
            file_len: sig.file_len,
            blocks: sig.blocks.len() as u32,
        });
        Ok(State::Push(Box::new(Push {
            id,
            target,
            basis,
            basis_mode,
            meta: FileMeta::default(),
            rebuild: None,
            failed: None,
        })))
    }

    fn push_msg(&mut self, mut p: Box<Push>, msg: Msg) -> Result<State, ServeError> {
        match msg {
            Msg::SetAttrs { id, mode, mtime } if id == p.id => {
                p.meta = FileMeta { mode, mtime };
            }
            Msg::DeltaOps { id, ops } if id == p.id => {
                if p.failed.is_none()
                    && let Err(e) = p.apply(&ops)
                {
                    p.failed = Some(e.to_string());
                    p.rebuild = None;
                }
            }
            Msg::DeltaEnd {
                id,
                file_len,
                file_hash,
            } if id == p.id => {
                let result = match p.failed.take() {
                    Some(why) => Err(why),
                    None => p.finish(file_len, &file_hash).map_err(|e| e.to_string()),
                };
                match result {
                    Ok(()) => self.send(&[Msg::Applied { id }])?,
                    Err(why) => self.file_error(&format!(
                        "{}: {why}",
                        warren_wire::escape(p.target.as_os_str().as_encoded_bytes())
                    ))?,
                }
                return Ok(State::Idle);
            }
            other => return Err(unexpected(&other)),
        }
        Ok(State::Push(p))
    }

    fn pull_msg(
        &mut self,
        id: u32,
        path: Vec<u8>,
        mut header: Option<(u32, u64, u32)>,
        mut blocks: Vec<BlockSum>,
        msg: Msg,
    ) -> Result<State, ServeError> {
        match (msg, header) {
            (
                Msg::SigHeader {
                    id: hid,
                    block_len,
                    file_len,
                    block_count,
                },
                None,
            ) if hid == id => {
                check_header(block_len, file_len, block_count).map_err(ServeError::Protocol)?;
                header = Some((block_len, file_len, block_count));
            }
            (Msg::SigBlocks { id: bid, blocks: more }, Some((_, _, count))) if bid == id => {
                if blocks.len() + more.len() > count as usize {
                    return Err(ServeError::Protocol(format!(
                        "more block sums than the {count} announced"
                    )));
                }
                blocks.extend(more);
            }
            (other, _) => return Err(unexpected(&other)),
        }
        match header {
            Some((block_len, file_len, count)) if blocks.len() == count as usize => {
                let sig = Signature {
                    block_len,
                    file_len,
                    blocks,
                };
                self.send_delta(id, &path, &sig)?;
                Ok(State::Idle)
            }
            _ => Ok(State::PullSig {
                id,
                path,
                header,
                blocks,
            }),
        }
    }

    /// The delta of our `path` against `sig`, frames going out as found.
    fn send_delta(&mut self, id: u32, path: &[u8], sig: &Signature) -> Result<(), ServeError> {
        let source = path_of(path);
        let file = match rebuild::open_basis(&source) {
            Ok(Some((file, _, _))) => file,
            Ok(None) => {
                let why = format!("{}: no such file", warren_wire::escape(path));
                return self.file_error(&why);
            }
            Err(e) => return self.file_error(&e.to_string()),
        };
        let mut batch = OpsBatch::new(id);
        let mut write_err = None;
        let result = matcher::delta_stream(sig, &file, |op| {
            if let Some(msg) = batch.push(op) {
                self.send(&[msg]).map_err(|e| {
                    write_err = Some(e);
                    io::Error::other("the driver went away")
                })?;
            }
            Ok(())
        });
        if let Some(e) = write_err {
            return Err(e);
        }
        match result {
            Ok(summary) => {
                let mut msgs: Vec<Msg> = batch.finish().into_iter().collect();
                msgs.push(Msg::DeltaEnd {
                    id,
                    file_len: summary.file_len,
                    file_hash: summary.file_hash,
                });
                self.send(&msgs)
            }
            // The ops sent so far are dropped by the driver with the error.
            Err(e) => self.file_error(&format!("reading {}: {e}", warren_wire::escape(path))),
        }
    }

    fn hash_request(&mut self, id: u32, path: &[u8]) -> Result<(), ServeError> {
        let file = match rebuild::open_basis(&path_of(path)) {
            Ok(Some((file, _, _))) => file,
            Ok(None) => {
                let why = format!("{}: no such file", warren_wire::escape(path));
                return self.file_error(&why);
            }
            Err(e) => return self.file_error(&e.to_string()),
        };
        match matcher::hash_of(&file) {
            Ok((file_len, file_hash)) => self.send(&[Msg::FileHash {
                id,
                file_len,
                file_hash,
            }]),
            Err(e) => self.file_error(&format!("reading {}: {e}", warren_wire::escape(path))),
        }
    }

    fn file_error(&mut self, why: &str) -> Result<(), ServeError> {
        self.send(&[Msg::Error {
            code: ERROR_FILE,
            message: why.as_bytes().to_vec(),
        }])
    }

    fn send(&mut self, msgs: &[Msg]) -> Result<(), ServeError> {
        let mut out = BytesMut::new();
        for m in msgs {
            m.encode(&mut out)?;
        }
        self.output.write_all(&out).map_err(ServeError::Write)?;
        self.output.flush().map_err(ServeError::Write)
    }

    /// The next message; `None` at the end of the input between frames.
    fn recv(&mut self) -> Result<Option<Msg>, ServeError> {
        let mut chunk = vec![0; 64 * 1024];
        loop {
            if let Some(m) = proto::decode(&mut self.buf)? {
                return Ok(Some(m));
            }
            let n = match self.input.read(&mut chunk) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ServeError::Read(e)),
            };
            if n == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(ServeError::Truncated)
                };
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

impl Push {
    fn apply(&mut self, ops: &[warren_sync::Op]) -> Result<(), RebuildError> {
        if self.rebuild.is_none() {
            let mode = self.meta.mode.or(self.basis_mode);
            self.rebuild = Some(Rebuild::create(&self.target, self.basis.take(), mode)?);
        }
        if let Some(r) = &mut self.rebuild {
            for op in ops {
                r.op(op)?;
            }
        }
        Ok(())
    }

    fn finish(&mut self, file_len: u64, file_hash: &[u8; 32]) -> Result<(), RebuildError> {
        self.apply(&[])?;
        match self.rebuild.take() {
            Some(r) => r.finish(file_len, file_hash, &self.meta),
            None => Ok(()),
        }
    }
}

/// Ops gathered into `DeltaOps` frames under the cap.
pub struct OpsBatch {
    id: u32,
    ops: Vec<warren_sync::Op>,
    size: usize,
}

impl OpsBatch {
    pub fn new(id: u32) -> Self {
        OpsBatch {
            id,
            ops: Vec::new(),
            size: 0,
        }
    }

    /// Adds `op`; returns a full frame's message when one is ready.
    pub fn push(&mut self, op: warren_sync::Op) -> Option<Msg> {
        let len = match &op {
            warren_sync::Op::Copy { .. } => 9,
            warren_sync::Op::Data(d) => 5 + d.len(),
        };
        let ready = if self.size + len > 2 * LITERAL_CHUNK {
            self.finish()
        } else {
            None
        };
        self.size += len;
        self.ops.push(op);
        ready
    }

    /// What is gathered, as one message.
    pub fn finish(&mut self) -> Option<Msg> {
        self.size = 0;
        if self.ops.is_empty() {
            return None;
        }
        Some(Msg::DeltaOps {
            id: self.id,
            ops: std::mem::take(&mut self.ops),
        })
    }
}

/// A path from the wire: bytes, relative to the working directory or
/// absolute, as SFTP's are.
fn path_of(bytes: &[u8]) -> PathBuf {
    Path::new(OsStr::from_bytes(bytes)).to_owned()
}

fn unexpected(msg: &Msg) -> ServeError {
    let name = match msg {
        Msg::Hello { .. } => "Hello",
        Msg::Entry(_) => "Entry",
        Msg::ListEnd => "ListEnd",
        Msg::SigRequest { .. } => "SigRequest",
        Msg::SigHeader { .. } => "SigHeader",
        Msg::SigBlocks { .. } => "SigBlocks",
        Msg::DeltaOps { .. } => "DeltaOps",
        Msg::DeltaEnd { .. } => "DeltaEnd",
        Msg::Done => "Done",
        Msg::Error { .. } => "Error",
        Msg::DeltaRequest { .. } => "DeltaRequest",
        Msg::SetAttrs { .. } => "SetAttrs",
        Msg::Applied { .. } => "Applied",
        Msg::HashRequest { .. } => "HashRequest",
        Msg::FileHash { .. } => "FileHash",
    };
    ServeError::Protocol(format!("unexpected {name} message here"))
}
