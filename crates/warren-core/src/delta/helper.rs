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
use warren_sync::delta::{BlockSum, MAX_BLOCK_LEN, STRONG_LEN, Signature};
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
        chunk: vec![0; 64 * 1024],
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
    PullSig(Box<PullSig>),
}

struct PullSig {
    id: u32,
    path: Vec<u8>,
    header: Option<(u32, u64, u32)>,
    blocks: Vec<BlockSum>,
    /// Strong-sum bytes every block came with.
    strong_len: usize,
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
    /// What each read of the input lands in.
    chunk: Vec<u8>,
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
            (State::Idle, Msg::DeltaRequest { id, path }) => State::PullSig(Box::new(PullSig {
                id,
                path,
                header: None,
                blocks: Vec::new(),
                strong_len: STRONG_LEN,
            })),
            (State::Idle, Msg::HashRequest { id, path }) => {
                self.hash_request(id, &path)?;
                State::Idle
            }
            (State::Push(p), msg) => self.push_msg(p, msg)?,
            (State::PullSig(p), msg) => self.pull_msg(p, msg)?,
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
        self.send(&proto::signature_msgs_with(id, &sig, super::STRONG_ON_WIRE))?;
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

    fn pull_msg(&mut self, mut p: Box<PullSig>, msg: Msg) -> Result<State, ServeError> {
        match (msg, p.header) {
            (
                Msg::SigHeader {
                    id,
                    block_len,
                    file_len,
                    block_count,
                },
                None,
            ) if id == p.id => {
                check_header(block_len, file_len, block_count).map_err(ServeError::Protocol)?;
                p.header = Some((block_len, file_len, block_count));
            }
            (
                Msg::SigBlocks {
                    id,
                    strong_len,
                    blocks,
                },
                Some((_, _, count)),
            ) if id == p.id => {
                if p.blocks.len() + blocks.len() > count as usize {
                    return Err(ServeError::Protocol(format!(
                        "more block sums than the {count} announced"
                    )));
                }
                p.strong_len = p.strong_len.min(usize::from(strong_len));
                p.blocks.extend(blocks);
            }
            (other, _) => return Err(unexpected(&other)),
        }
        match p.header {
            Some((block_len, file_len, count)) if p.blocks.len() == count as usize => {
                let sig = Signature {
                    block_len,
                    file_len,
                    blocks: std::mem::take(&mut p.blocks),
                };
                self.send_delta(p.id, &p.path, &sig, p.strong_len)?;
                Ok(State::Idle)
            }
            _ => Ok(State::PullSig(p)),
        }
    }

    /// The delta of our `path` against `sig`, frames going out as found.
    fn send_delta(
        &mut self,
        id: u32,
        path: &[u8],
        sig: &Signature,
        strong_len: usize,
    ) -> Result<(), ServeError> {
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
        let result = matcher::delta_stream(sig, strong_len, &file, |op| {
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
        loop {
            if let Some(m) = proto::decode(&mut self.buf)? {
                return Ok(Some(m));
            }
            let n = match self.input.read(&mut self.chunk) {
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
            self.buf.extend_from_slice(&self.chunk[..n]);
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;
    use warren_sync::Op;
    use warren_sync::delta::{self, Delta};
    use warren_sync::proto::{delta_msgs, signature_msgs};
    use warren_sync::testing::noise;

    fn hello() -> Msg {
        Msg::Hello {
            version: proto::VERSION,
            features: 0,
        }
    }

    /// Runs the helper on `msgs` (a Hello put first); its answers, and how
    /// the loop ended.
    fn run(msgs: &[Msg]) -> (Vec<Msg>, Result<(), ServeError>) {
        let mut input = BytesMut::new();
        hello().encode(&mut input).unwrap();
        for m in msgs {
            m.encode(&mut input).unwrap();
        }
        run_bytes(&input)
    }

    fn run_bytes(input: &[u8]) -> (Vec<Msg>, Result<(), ServeError>) {
        let mut out = Vec::new();
        let result = serve(input, &mut out);
        let mut buf = BytesMut::from(&out[..]);
        let mut answers = Vec::new();
        while let Some(m) = proto::decode(&mut buf).unwrap() {
            answers.push(m);
        }
        assert!(buf.is_empty(), "a partial frame from the helper");
        assert_eq!(answers.first(), Some(&hello()), "the helper greets first");
        answers.remove(0);
        (answers, result)
    }

    fn path_bytes(p: &Path) -> Vec<u8> {
        p.as_os_str().as_encoded_bytes().to_vec()
    }

    fn with_hash(mut d: Delta, hash: [u8; 32]) -> Delta {
        d.file_hash = hash;
        d
    }

    /// A push against the basis at `target`, as the driver sends it.
    fn push_msgs(target: &Path, old: &[u8], new: &[u8], meta: FileMeta) -> (Vec<Msg>, Delta) {
        let d = delta::delta(&Signature::of(old), new);
        let mut msgs = vec![
            Msg::SigRequest {
                id: 1,
                path: path_bytes(target),
            },
            Msg::SetAttrs {
                id: 1,
                mode: meta.mode,
                mtime: meta.mtime,
            },
        ];
        msgs.extend(delta_msgs(1, &d));
        (msgs, d)
    }

    fn sig_of(answers: &[Msg]) -> Signature {
        let Some(Msg::SigHeader {
            block_len,
            file_len,
            ..
        }) = answers.first().cloned()
        else {
            panic!("no signature: {answers:?}");
        };
        let blocks = answers
            .iter()
            .filter_map(|m| match m {
                Msg::SigBlocks { blocks, .. } => Some(blocks.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        Signature {
            block_len,
            file_len,
            blocks,
        }
    }

    fn partials(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".warren-partial"))
            .collect()
    }

    // A push rebuilds the target from its old blocks, sets mode and mtime,
    // and answers Applied. (Was: `serve_stdio` refused everything.)
    #[test]
    fn push_rebuilds_the_target_with_its_attributes() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("f");
        let old = noise(300_000, 1);
        let mut new = old.clone();
        new.splice(1000..1000, noise(1024, 2));
        new[200_000..210_000].copy_from_slice(&noise(10_000, 3));
        std::fs::write(&target, &old).unwrap();
        let meta = FileMeta {
            mode: Some(0o640),
            mtime: Some((1_600_000_000, 5)),
        };
        let (msgs, d) = push_msgs(&target, &old, &new, meta);
        assert!(d.literal_len() < 20_000, "{} literal", d.literal_len());
        let (answers, result) = run(&msgs);
        result.unwrap();
        // The signature, with its strong sums cut as they travel.
        let mut want = Signature::of(&old);
        for b in &mut want.blocks {
            b.strong[usize::from(super::super::STRONG_ON_WIRE)..].fill(0);
        }
        assert_eq!(sig_of(&answers), want);
        assert_eq!(answers.last(), Some(&Msg::Applied { id: 1 }));
        assert_eq!(std::fs::read(&target).unwrap(), new);
        let m = std::fs::metadata(&target).unwrap();
        assert_eq!(m.permissions().mode() & 0o7777, 0o640);
        assert_eq!(
            m.modified().unwrap(),
            rebuild::system_time(1_600_000_000, 5)
        );
        assert!(partials(dir.path()).is_empty());
    }

    // A delta whose DeltaEnd hash is not the rebuilt file's: the helper
    // answers ERROR_FILE (the driver reads it as "send whole"), removes its
    // temp file and leaves the target as it was, then serves on.
    #[test]
    fn wrong_hash_is_refused_and_the_target_is_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("f");
        let old = noise(50_000, 4);
        let mut new = old.clone();
        new[10] ^= 1;
        std::fs::write(&target, &old).unwrap();
        let d = delta::delta(&Signature::of(&old), &new);
        let mut msgs = vec![Msg::SigRequest {
            id: 1,
            path: path_bytes(&target),
        }];
        msgs.extend(delta_msgs(1, &with_hash(d, [7; 32])));
        msgs.push(Msg::HashRequest {
            id: 2,
            path: path_bytes(&target),
        });
        let (answers, result) = run(&msgs);
        result.unwrap();
        let n = answers.len();
        let Msg::Error { code, message } = &answers[n - 2] else {
            panic!("{answers:?}");
        };
        assert_eq!(*code, ERROR_FILE);
        let err = super::super::driver::answer_error(b"f", *code, message);
        assert!(err.send_whole(), "{err}");
        assert!(err.to_string().contains("hash"), "{err}");
        assert_eq!(std::fs::read(&target).unwrap(), old);
        assert!(partials(dir.path()).is_empty());
        assert_eq!(
            answers[n - 1],
            Msg::FileHash {
                id: 2,
                file_len: old.len() as u64,
                file_hash: delta::file_hash(&old),
            }
        );
    }

    // COPY of a block the basis does not have (past its end, overflowing,
    // none at all for an absent file): refused, nothing written, no panic.
    #[test]
    fn copies_of_missing_blocks_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("f");
        let old = noise(1500, 5);
        std::fs::write(&target, &old).unwrap();
        for (path, copy) in [
            (target.clone(), Op::Copy { index: 3, count: 1 }),
            (
                target.clone(),
                Op::Copy {
                    index: u32::MAX,
                    count: 2,
                },
            ),
            (target.clone(), Op::Copy { index: 0, count: 0 }),
            (dir.path().join("absent"), Op::Copy { index: 0, count: 1 }),
        ] {
            let msgs = vec![
                Msg::SigRequest {
                    id: 9,
                    path: path_bytes(&path),
                },
                Msg::DeltaOps {
                    id: 9,
                    ops: vec![Op::Data(b"x".to_vec()), copy.clone()],
                },
                Msg::DeltaEnd {
                    id: 9,
                    file_len: 701,
                    file_hash: [0; 32],
                },
            ];
            let (answers, result) = run(&msgs);
            result.unwrap();
            let Some(Msg::Error { code, message }) = answers.last() else {
                panic!("{copy:?}: {answers:?}");
            };
            assert_eq!(*code, ERROR_FILE, "{copy:?}");
            assert!(
                String::from_utf8_lossy(message).contains("blocks"),
                "{copy:?}: {}",
                String::from_utf8_lossy(message)
            );
            assert_eq!(std::fs::read(&target).unwrap(), old);
            assert!(!dir.path().join("absent").exists());
            assert!(partials(dir.path()).is_empty());
        }
    }

    // A symlink where the temp file goes is replaced, never followed; a
    // symlink at the target is not read as the basis.
    #[test]
    fn symlinks_at_the_temp_name_and_the_target_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep me").unwrap();
        let target = dir.path().join("f");
        std::os::unix::fs::symlink(&victim, dir.path().join(".f.warren-partial")).unwrap();
        std::os::unix::fs::symlink(&victim, &target).unwrap();
        let new = noise(5000, 6);
        let (msgs, _) = push_msgs(&target, b"", &new, FileMeta::default());
        let (answers, result) = run(&msgs);
        result.unwrap();
        assert_eq!(
            sig_of(&answers).file_len,
            0,
            "the symlink's target was read"
        );
        assert_eq!(answers.last(), Some(&Msg::Applied { id: 1 }));
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep me");
        assert!(!std::fs::symlink_metadata(&target).unwrap().is_symlink());
        assert_eq!(std::fs::read(&target).unwrap(), new);
    }

    // A pull: the helper answers the driver's signature with a delta that
    // rebuilds its file.
    #[test]
    fn pull_sends_a_delta_against_the_drivers_signature() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("s");
        let old = noise(200_000, 7);
        let mut new = old.clone();
        new.splice(50..50, noise(1024, 8));
        std::fs::write(&src, &new).unwrap();
        let sig = Signature::of(&old);
        let mut msgs = vec![Msg::DeltaRequest {
            id: 4,
            path: path_bytes(&src),
        }];
        msgs.extend(signature_msgs(4, &sig));
        let (answers, result) = run(&msgs);
        result.unwrap();
        let mut ops = Vec::new();
        let mut end = None;
        for m in answers {
            match m {
                Msg::DeltaOps { id: 4, ops: o } => ops.extend(o),
                Msg::DeltaEnd {
                    id: 4,
                    file_len,
                    file_hash,
                } => end = Some((file_len, file_hash)),
                other => panic!("{other:?}"),
            }
        }
        let (file_len, file_hash) = end.unwrap();
        let d = Delta {
            block_len: sig.block_len,
            ops,
            file_len,
            file_hash,
        };
        assert!(d.literal_len() < 3000, "{}", d.literal_len());
        assert_eq!(delta::apply(&old, &d).unwrap(), new);
    }

    // Signatures that claim more blocks than their length allows, more
    // than the cap, or more sums than announced: a protocol error, with
    // nothing allocated for the claim.
    #[test]
    fn hostile_signatures_stop_the_helper() {
        let pull = |header: Msg, more: Vec<Msg>| {
            let mut msgs = vec![
                Msg::DeltaRequest {
                    id: 1,
                    path: b"x".to_vec(),
                },
                header,
            ];
            msgs.extend(more);
            run(&msgs)
        };
        let header = |block_len, file_len, block_count| Msg::SigHeader {
            id: 1,
            block_len,
            file_len,
            block_count,
        };
        let extra = vec![Msg::SigBlocks {
            id: 1,
            strong_len: 16,
            blocks: vec![
                BlockSum {
                    weak: 0,
                    strong: [0; 16]
                };
                3
            ],
        }];
        for (h, more) in [
            (header(1, 1 << 40, u32::MAX), vec![]),
            (header(700, 1400, 5), vec![]),
            (header(0, 0, 0), vec![]),
            (header(1 << 20, 1 << 20, 1), vec![]),
            (header(1, u64::from(MAX_BLOCKS) + 1, MAX_BLOCKS + 1), vec![]),
            (header(700, 1400, 2), extra),
        ] {
            let (answers, result) = pull(h.clone(), more);
            assert!(
                matches!(result, Err(ServeError::Protocol(_))),
                "{h:?}: {result:?}"
            );
            assert!(
                matches!(
                    answers.last(),
                    Some(Msg::Error {
                        code: ERROR_PROTOCOL,
                        ..
                    })
                ),
                "{h:?}: {answers:?}"
            );
        }
    }

    // Out-of-turn messages, a wrong id, no Hello, a truncated frame: an
    // error, never a panic.
    #[test]
    fn out_of_turn_messages_are_errors() {
        let (_, r) = run(&[Msg::DeltaOps { id: 1, ops: vec![] }]);
        assert!(matches!(r, Err(ServeError::Protocol(_))), "{r:?}");
        let (_, r) = run(&[
            Msg::SigRequest {
                id: 1,
                path: b"/nonexistent/x".to_vec(),
            },
            Msg::DeltaEnd {
                id: 2,
                file_len: 0,
                file_hash: [0; 32],
            },
        ]);
        assert!(matches!(r, Err(ServeError::Protocol(_))), "{r:?}");
        let mut input = BytesMut::new();
        Msg::Done.encode(&mut input).unwrap();
        let (_, r) = run_bytes(&input);
        assert!(matches!(r, Err(ServeError::Protocol(_))), "{r:?}");
        let (_, r) = run_bytes(&[0, 0, 0, 13, 1, 0]);
        assert!(matches!(r, Err(ServeError::Truncated)), "{r:?}");
        let (_, r) = run_bytes(b"Welcome to the server\n");
        assert!(r.is_err(), "{r:?}");
    }

    proptest::proptest! {
        // Any bytes after a Hello: the loop ends, with or without an
        // error, and never panics.
        #[test]
        fn any_input_ends_the_loop_without_a_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let mut input = BytesMut::new();
            hello().encode(&mut input).unwrap();
            input.extend_from_slice(&data);
            let mut out = Vec::new();
            let _ = serve(&input[..], &mut out);
        }
    }
}
