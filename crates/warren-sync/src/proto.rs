//! The wire protocol between `warren sync` and its helper started as
//! `warren sync --server` over an SSH exec channel, as a sans-IO codec.
//!
//! Every message is one frame: a big-endian u32 length, then a type byte
//! and its fields (integers big-endian, byte strings as a u32 length and
//! the bytes). A frame is at most [`MAX_FRAME`] bytes: the decoder refuses a
//! longer length before buffering it, and the encoder refuses to build one,
//! so a signature or a delta of any size travels as several
//! [`Msg::SigBlocks`]/[`Msg::DeltaOps`] frames ([`signature_msgs`],
//! [`delta_msgs`]). [`decode`] returns `Ok(None)` until a whole frame is
//! buffered and never panics on any bytes; counts are checked against the
//! bytes present before anything is allocated.
//!
//! Versioning: both sides send [`Msg::Hello`] first; they speak the lower
//! of the two versions and only the features both announce.

use bytes::{Buf as _, BufMut as _, BytesMut};
use warren_wire::wire::Reader;

use crate::delta::{BlockSum, Delta, Op, STRONG_LEN, Signature};

/// This build's protocol version.
pub const VERSION: u32 = 1;
/// Largest frame body (type byte and fields), either way.
pub const MAX_FRAME: usize = 1 << 20;
/// Room kept in a frame for a message's own fields around its payload.
const FRAME_OVERHEAD: usize = 64;
/// Largest literal chunk one `Op::Data` carries on the wire.
pub const MAX_DATA_CHUNK: usize = MAX_FRAME - FRAME_OVERHEAD;
/// Block sums per `SigBlocks` frame.
pub const BLOCKS_PER_FRAME: usize = (MAX_FRAME - FRAME_OVERHEAD) / (4 + STRONG_LEN);

/// What a file-list entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
}

/// One entry of a file list; the path is relative to the transfer root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: Vec<u8>,
    pub kind: Kind,
    pub size: u64,
    /// Seconds since the epoch (negative before 1970) and nanoseconds.
    pub mtime: i64,
    pub mtime_nsec: u32,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    /// The link's target for a symlink, empty otherwise.
    pub target: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// First message either way.
    Hello {
        version: u32,
        features: u64,
    },
    Entry(Entry),
    /// The file list is complete.
    ListEnd,
    /// Asks for the signature of the receiver's copy of `path`; replies and
    /// deltas name it by `id`.
    SigRequest {
        id: u32,
        path: Vec<u8>,
    },
    /// Starts a signature: `block_count` sums follow in `SigBlocks`.
    SigHeader {
        id: u32,
        block_len: u32,
        file_len: u64,
        block_count: u32,
    },
    /// Block sums with the first `strong_len` bytes (1 to `STRONG_LEN`) of
    /// each strong hash on the wire; the rest are zero here. A shorter
    /// strong sum makes a signature smaller (rsync's trick); a block that
    /// matched falsely is still caught by the whole-file hash.
    SigBlocks {
        id: u32,
        strong_len: u8,
        blocks: Vec<BlockSum>,
    },
    DeltaOps {
        id: u32,
        ops: Vec<Op>,
    },
    /// Ends a delta with what the rebuilt file must be.
    DeltaEnd {
        id: u32,
        file_len: u64,
        file_hash: [u8; 32],
    },
    /// Nothing more will be sent.
    Done,
    /// A request failed; `code` is one of the `ERROR_*` constants, the
    /// message is for the user (escape it before printing).
    Error {
        code: u32,
        message: Vec<u8>,
    },
    /// Asks for a delta of the helper's `path` against the signature that
    /// follows (`SigHeader`, `SigBlocks`, same `id`): a pull. The answer is
    /// `DeltaOps` frames and a `DeltaEnd`.
    DeltaRequest {
        id: u32,
        path: Vec<u8>,
    },
    /// What to set on the file a push rebuilds (sent before its
    /// `DeltaEnd`); `None` leaves it as it is.
    SetAttrs {
        id: u32,
        mode: Option<u32>,
        mtime: Option<(i64, u32)>,
    },
    /// A pushed file is in place.
    Applied {
        id: u32,
    },
    /// Asks for the whole-file hash of the helper's `path`.
    HashRequest {
        id: u32,
        path: Vec<u8>,
    },
    FileHash {
        id: u32,
        file_len: u64,
        file_hash: [u8; 32],
    },
}

/// `Error` code: this one file could not be served or rebuilt (unreadable,
/// not a regular file, a hash that did not match): send it whole; the
/// helper goes on serving.
pub const ERROR_FILE: u32 = 1;
/// `Error` code: the peer broke the protocol; the helper stops.
pub const ERROR_PROTOCOL: u32 = 2;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtoError {
    #[error("sync frame of {0} bytes is larger than the {MAX_FRAME}-byte limit")]
    TooLarge(usize),
    #[error("empty sync frame")]
    Empty,
    #[error("unknown sync message type {0}")]
    UnknownType(u8),
    #[error("malformed sync message: {0}")]
    Malformed(&'static str),
}

const HELLO: u8 = 1;
const ENTRY: u8 = 2;
const LIST_END: u8 = 3;
const SIG_REQUEST: u8 = 4;
const SIG_HEADER: u8 = 5;
const SIG_BLOCKS: u8 = 6;
const DELTA_OPS: u8 = 7;
const DELTA_END: u8 = 8;
const DONE: u8 = 9;
const ERROR: u8 = 10;
const DELTA_REQUEST: u8 = 11;
const SET_ATTRS: u8 = 12;
const APPLIED: u8 = 13;
const HASH_REQUEST: u8 = 14;
const FILE_HASH: u8 = 15;

/// `SetAttrs` flags: which fields follow.
const ATTR_MODE: u8 = 1;
const ATTR_MTIME: u8 = 2;

const OP_COPY: u8 = 0;
const OP_DATA: u8 = 1;

impl Msg {
    /// Appends this message's frame to `out`; refuses one over the cap
    /// (`out` is then unchanged).
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), ProtoError> {
        let start = out.len();
        out.put_u32(0);
        self.encode_body(out);
        let len = out.len() - start - 4;
        if len > MAX_FRAME {
            out.truncate(start);
            return Err(ProtoError::TooLarge(len));
        }
        out[start..start + 4].copy_from_slice(&(len as u32).to_be_bytes());
        Ok(())
    }

    fn encode_body(&self, out: &mut BytesMut) {
        match self {
            Msg::Hello { version, features } => {
                out.put_u8(HELLO);
                out.put_u32(*version);
                out.put_u64(*features);
            }
            Msg::Entry(e) => {
                out.put_u8(ENTRY);
                put_string(out, &e.path);
                out.put_u8(match e.kind {
                    Kind::File => 0,
                    Kind::Dir => 1,
                    Kind::Symlink => 2,
                });
                out.put_u64(e.size);
                out.put_i64(e.mtime);
                out.put_u32(e.mtime_nsec);
                out.put_u32(e.mode);
                put_string(out, &e.target);
            }
            Msg::ListEnd => out.put_u8(LIST_END),
            Msg::SigRequest { id, path } => {
                out.put_u8(SIG_REQUEST);
                out.put_u32(*id);
                put_string(out, path);
            }
            Msg::SigHeader {
                id,
                block_len,
                file_len,
                block_count,
            } => {
                out.put_u8(SIG_HEADER);
                out.put_u32(*id);
                out.put_u32(*block_len);
                out.put_u64(*file_len);
                out.put_u32(*block_count);
            }
            Msg::SigBlocks {
                id,
                strong_len,
                blocks,
            } => {
                let n = usize::from(*strong_len).clamp(1, STRONG_LEN);
                out.put_u8(SIG_BLOCKS);
                out.put_u32(*id);
                out.put_u8(n as u8);
                out.put_u32(blocks.len() as u32);
                for b in blocks {
                    out.put_u32(b.weak);
                    out.put_slice(&b.strong[..n]);
                }
            }
            Msg::DeltaOps { id, ops } => {
                out.put_u8(DELTA_OPS);
                out.put_u32(*id);
                out.put_u32(ops.len() as u32);
                for op in ops {
                    match op {
                        Op::Copy { index, count } => {
                            out.put_u8(OP_COPY);
                            out.put_u32(*index);
                            out.put_u32(*count);
                        }
                        Op::Data(d) => {
                            out.put_u8(OP_DATA);
                            put_string(out, d);
                        }
                    }
                }
            }
            Msg::DeltaEnd {
                id,
                file_len,
                file_hash,
            } => {
                out.put_u8(DELTA_END);
                out.put_u32(*id);
                out.put_u64(*file_len);
                out.put_slice(file_hash);
            }
            Msg::Done => out.put_u8(DONE),
            Msg::Error { code, message } => {
                out.put_u8(ERROR);
                out.put_u32(*code);
                put_string(out, message);
            }
            Msg::DeltaRequest { id, path } => {
                out.put_u8(DELTA_REQUEST);
                out.put_u32(*id);
                put_string(out, path);
            }
            Msg::SetAttrs { id, mode, mtime } => {
                out.put_u8(SET_ATTRS);
                out.put_u32(*id);
                let flags = if mode.is_some() { ATTR_MODE } else { 0 }
                    | if mtime.is_some() { ATTR_MTIME } else { 0 };
                out.put_u8(flags);
                if let Some(mode) = mode {
                    out.put_u32(*mode);
                }
                if let Some((secs, nsec)) = mtime {
                    out.put_i64(*secs);
                    out.put_u32(*nsec);
                }
            }
            Msg::Applied { id } => {
                out.put_u8(APPLIED);
                out.put_u32(*id);
            }
            Msg::HashRequest { id, path } => {
                out.put_u8(HASH_REQUEST);
                out.put_u32(*id);
                put_string(out, path);
            }
            Msg::FileHash {
                id,
                file_len,
                file_hash,
            } => {
                out.put_u8(FILE_HASH);
                out.put_u32(*id);
                out.put_u64(*file_len);
                out.put_slice(file_hash);
            }
        }
    }
}

fn put_string(out: &mut BytesMut, s: &[u8]) {
    // Anything near u32::MAX is far over MAX_FRAME, which encode refuses.
    out.put_u32(u32::try_from(s.len()).unwrap_or(u32::MAX));
    out.put_slice(s);
}

/// Takes one message off the front of `buf`; `Ok(None)` until a whole
/// frame is there (nothing is taken then).
pub fn decode(buf: &mut BytesMut) -> Result<Option<Msg>, ProtoError> {
    let Some(head) = buf.get(..4) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
    if len > MAX_FRAME {
        return Err(ProtoError::TooLarge(len));
    }
    if buf.len() < 4 + len {
        return Ok(None);
    }
    buf.advance(4);
    let body = buf.split_to(len);
    decode_body(&body).map(Some)
}

/// One frame's body (type byte and fields), all of it.
pub fn decode_body(body: &[u8]) -> Result<Msg, ProtoError> {
    let mut r = Reader::new(body);
    let ty = r.u8().ok_or(ProtoError::Empty)?;
    let msg = match ty {
        HELLO => Msg::Hello {
            version: u32_(&mut r)?,
            features: u64_(&mut r)?,
        },
        ENTRY => Msg::Entry(entry(&mut r)?),
        LIST_END => Msg::ListEnd,
        SIG_REQUEST => Msg::SigRequest {
            id: u32_(&mut r)?,
            path: string(&mut r)?,
        },
        SIG_HEADER => Msg::SigHeader {
            id: u32_(&mut r)?,
            block_len: u32_(&mut r)?,
            file_len: u64_(&mut r)?,
            block_count: u32_(&mut r)?,
        },
        SIG_BLOCKS => sig_blocks(&mut r)?,
        DELTA_OPS => delta_ops(&mut r)?,
        DELTA_END => Msg::DeltaEnd {
            id: u32_(&mut r)?,
            file_len: u64_(&mut r)?,
            file_hash: array(&mut r)?,
        },
        DONE => Msg::Done,
        ERROR => Msg::Error {
            code: u32_(&mut r)?,
            message: string(&mut r)?,
        },
        DELTA_REQUEST => Msg::DeltaRequest {
            id: u32_(&mut r)?,
            path: string(&mut r)?,
        },
        SET_ATTRS => set_attrs(&mut r)?,
        APPLIED => Msg::Applied { id: u32_(&mut r)? },
        HASH_REQUEST => Msg::HashRequest {
            id: u32_(&mut r)?,
            path: string(&mut r)?,
        },
        FILE_HASH => Msg::FileHash {
            id: u32_(&mut r)?,
            file_len: u64_(&mut r)?,
            file_hash: array(&mut r)?,
        },
        other => return Err(ProtoError::UnknownType(other)),
    };
    if !r.is_empty() {
        return Err(ProtoError::Malformed("bytes after the message"));
    }
    Ok(msg)
}

const SHORT: ProtoError = ProtoError::Malformed("message ends early");

fn u32_(r: &mut Reader<'_>) -> Result<u32, ProtoError> {
    r.u32().ok_or(SHORT)
}

fn u64_(r: &mut Reader<'_>) -> Result<u64, ProtoError> {
    r.u64().ok_or(SHORT)
}

fn string(r: &mut Reader<'_>) -> Result<Vec<u8>, ProtoError> {
    r.string().map(<[u8]>::to_vec).ok_or(SHORT)
}

fn array<const N: usize>(r: &mut Reader<'_>) -> Result<[u8; N], ProtoError> {
    r.take(N).and_then(|s| s.try_into().ok()).ok_or(SHORT)
}

fn entry(r: &mut Reader<'_>) -> Result<Entry, ProtoError> {
    let path = string(r)?;
    let kind = match r.u8().ok_or(SHORT)? {
        0 => Kind::File,
        1 => Kind::Dir,
        2 => Kind::Symlink,
        _ => return Err(ProtoError::Malformed("unknown file kind")),
    };
    Ok(Entry {
        path,
        kind,
        size: u64_(r)?,
        mtime: u64_(r)? as i64,
        mtime_nsec: u32_(r)?,
        mode: u32_(r)?,
        target: string(r)?,
    })
}

/// A count of items of at least `min_size` bytes each, refused when the
/// rest of the frame cannot hold them (so nothing hostile is allocated).
fn count(r: &mut Reader<'_>, min_size: usize) -> Result<usize, ProtoError> {
    let n = u32_(r)? as usize;
    if n.saturating_mul(min_size) > r.remaining().len() {
        return Err(ProtoError::Malformed("count larger than the frame"));
    }
    Ok(n)
}

fn set_attrs(r: &mut Reader<'_>) -> Result<Msg, ProtoError> {
    let id = u32_(r)?;
    let flags = r.u8().ok_or(SHORT)?;
    if flags & !(ATTR_MODE | ATTR_MTIME) != 0 {
        return Err(ProtoError::Malformed("unknown attribute flags"));
    }
    let mode = if flags & ATTR_MODE != 0 {
        Some(u32_(r)?)
    } else {
        None
    };
    let mtime = if flags & ATTR_MTIME != 0 {
        Some((u64_(r)? as i64, u32_(r)?))
    } else {
        None
    };
    Ok(Msg::SetAttrs { id, mode, mtime })
}

fn sig_blocks(r: &mut Reader<'_>) -> Result<Msg, ProtoError> {
    let id = u32_(r)?;
    let strong_len = r.u8().ok_or(SHORT)?;
    let len = usize::from(strong_len);
    if !(1..=STRONG_LEN).contains(&len) {
        return Err(ProtoError::Malformed("strong sum length out of range"));
    }
    let n = count(r, 4 + len)?;
    let mut blocks = Vec::with_capacity(n);
    for _ in 0..n {
        let weak = u32_(r)?;
        let mut strong = [0; STRONG_LEN];
        strong[..len].copy_from_slice(r.take(len).ok_or(SHORT)?);
        blocks.push(BlockSum { weak, strong });
    }
    Ok(Msg::SigBlocks {
        id,
        strong_len,
        blocks,
    })
}

fn delta_ops(r: &mut Reader<'_>) -> Result<Msg, ProtoError> {
    let id = u32_(r)?;
    let n = count(r, 5)?;
    let mut ops = Vec::with_capacity(n);
    for _ in 0..n {
        ops.push(match r.u8().ok_or(SHORT)? {
            OP_COPY => Op::Copy {
                index: u32_(r)?,
                count: u32_(r)?,
            },
            OP_DATA => Op::Data(string(r)?),
            _ => return Err(ProtoError::Malformed("unknown delta op")),
        });
    }
    Ok(Msg::DeltaOps { id, ops })
}

/// A signature as frames: a header, then its sums in frames under the cap.
pub fn signature_msgs(id: u32, sig: &Signature) -> Vec<Msg> {
    signature_msgs_with(id, sig, STRONG_LEN as u8)
}

/// [`signature_msgs`] with only the first `strong_len` bytes (1 to
/// `STRONG_LEN`) of each strong sum; the receiver compares that many.
pub fn signature_msgs_with(id: u32, sig: &Signature, strong_len: u8) -> Vec<Msg> {
    let strong_len = strong_len.clamp(1, STRONG_LEN as u8);
    let mut msgs = vec![Msg::SigHeader {
        id,
        block_len: sig.block_len,
        file_len: sig.file_len,
        block_count: u32::try_from(sig.blocks.len()).unwrap_or(u32::MAX),
    }];
    for chunk in sig.blocks.chunks(BLOCKS_PER_FRAME) {
        let mut blocks = chunk.to_vec();
        for b in &mut blocks {
            b.strong[usize::from(strong_len)..].fill(0);
        }
        msgs.push(Msg::SigBlocks {
            id,
            strong_len,
            blocks,
        });
    }
    msgs
}

/// A delta as frames under the cap (long data split), then its end.
pub fn delta_msgs(id: u32, delta: &Delta) -> Vec<Msg> {
    let mut msgs = Vec::new();
    let mut ops = Vec::new();
    let mut size = 0;
    let mut flush = |ops: &mut Vec<Op>, size: &mut usize| {
        if !ops.is_empty() {
            msgs.push(Msg::DeltaOps {
                id,
                ops: std::mem::take(ops),
            });
        }
        *size = 0;
    };
    for op in &delta.ops {
        let pieces: Vec<Op> = match op {
            Op::Copy { .. } => vec![op.clone()],
            Op::Data(d) => d
                .chunks(MAX_DATA_CHUNK / 2)
                .map(|c| Op::Data(c.to_vec()))
                .collect(),
        };
        for piece in pieces {
            let len = match &piece {
                Op::Copy { .. } => 9,
                Op::Data(d) => 5 + d.len(),
            };
            if size + len > MAX_DATA_CHUNK {
                flush(&mut ops, &mut size);
            }
            size += len;
            ops.push(piece);
        }
    }
    flush(&mut ops, &mut size);
    msgs.push(Msg::DeltaEnd {
        id,
        file_len: delta.file_len,
        file_hash: delta.file_hash,
    });
    msgs
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Bytes without repeats, so every block is unique.
    fn noise(len: usize) -> Vec<u8> {
        crate::testing::noise(len, 0x9e37_79b9_7f4a_7c15)
    }

    fn frames(msgs: &[Msg]) -> BytesMut {
        let mut buf = BytesMut::new();
        for m in msgs {
            m.encode(&mut buf).unwrap();
        }
        buf
    }

    fn decode_all(mut buf: BytesMut) -> Vec<Msg> {
        let mut out = Vec::new();
        while let Some(m) = decode(&mut buf).unwrap() {
            out.push(m);
        }
        assert!(buf.is_empty(), "{} bytes left", buf.len());
        out
    }

    fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(any::<u8>(), 0..max)
    }

    fn msg() -> impl Strategy<Value = Msg> {
        let kind = prop_oneof![Just(Kind::File), Just(Kind::Dir), Just(Kind::Symlink)];
        let entry = (
            bytes(40),
            kind,
            any::<u64>(),
            any::<i64>(),
            any::<u32>(),
            any::<u32>(),
            bytes(20),
        )
            .prop_map(|(path, kind, size, mtime, mtime_nsec, mode, target)| {
                Msg::Entry(Entry {
                    path,
                    kind,
                    size,
                    mtime,
                    mtime_nsec,
                    mode,
                    target,
                })
            });
        let block = (any::<u32>(), any::<[u8; STRONG_LEN]>())
            .prop_map(|(weak, strong)| BlockSum { weak, strong });
        let op = prop_oneof![
            (any::<u32>(), any::<u32>()).prop_map(|(index, count)| Op::Copy { index, count }),
            bytes(50).prop_map(Op::Data),
        ];
        prop_oneof![
            (any::<u32>(), any::<u64>())
                .prop_map(|(version, features)| Msg::Hello { version, features }),
            entry,
            Just(Msg::ListEnd),
            (any::<u32>(), bytes(40)).prop_map(|(id, path)| Msg::SigRequest { id, path }),
            (any::<u32>(), any::<u32>(), any::<u64>(), any::<u32>()).prop_map(
                |(id, block_len, file_len, block_count)| {
                    Msg::SigHeader {
                        id,
                        block_len,
                        file_len,
                        block_count,
                    }
                }
            ),
            (
                any::<u32>(),
                1..=STRONG_LEN as u8,
                proptest::collection::vec(block, 0..8)
            )
                .prop_map(|(id, strong_len, mut blocks)| {
                    // What is past `strong_len` does not travel.
                    for b in &mut blocks {
                        b.strong[usize::from(strong_len)..].fill(0);
                    }
                    Msg::SigBlocks {
                        id,
                        strong_len,
                        blocks,
                    }
                }),
            (any::<u32>(), proptest::collection::vec(op, 0..8))
                .prop_map(|(id, ops)| Msg::DeltaOps { id, ops }),
            (any::<u32>(), any::<u64>(), any::<[u8; 32]>()).prop_map(
                |(id, file_len, file_hash)| Msg::DeltaEnd {
                    id,
                    file_len,
                    file_hash
                }
            ),
            Just(Msg::Done),
            (any::<u32>(), bytes(60)).prop_map(|(code, message)| Msg::Error { code, message }),
            (any::<u32>(), bytes(40)).prop_map(|(id, path)| Msg::DeltaRequest { id, path }),
            (
                any::<u32>(),
                proptest::option::of(any::<u32>()),
                proptest::option::of((any::<i64>(), any::<u32>()))
            )
                .prop_map(|(id, mode, mtime)| Msg::SetAttrs { id, mode, mtime }),
            any::<u32>().prop_map(|id| Msg::Applied { id }),
            (any::<u32>(), bytes(40)).prop_map(|(id, path)| Msg::HashRequest { id, path }),
            (any::<u32>(), any::<u64>(), any::<[u8; 32]>()).prop_map(
                |(id, file_len, file_hash)| Msg::FileHash {
                    id,
                    file_len,
                    file_hash
                }
            ),
        ]
    }

    proptest! {
        #[test]
        fn encode_then_decode_round_trips(msgs in proptest::collection::vec(msg(), 0..6)) {
            let buf = frames(&msgs);
            // Every strict prefix is "need more bytes", never an error.
            for cut in 0..buf.len().min(200) {
                let mut part = BytesMut::from(&buf[..cut]);
                let mut got = 0;
                while let Some(_m) = decode(&mut part).unwrap() {
                    got += 1;
                }
                prop_assert!(got <= msgs.len());
            }
            prop_assert_eq!(decode_all(buf), msgs);
        }

        #[test]
        fn decode_never_panics(data in bytes(300)) {
            let mut buf = BytesMut::from(&data[..]);
            while let Ok(Some(_)) = decode(&mut buf) {}
            let _ = decode_body(&data);
        }
    }

    #[test]
    fn oversized_frames_are_refused_both_ways() {
        let mut buf = BytesMut::new();
        buf.put_u32(MAX_FRAME as u32 + 1);
        assert_eq!(decode(&mut buf), Err(ProtoError::TooLarge(MAX_FRAME + 1)));
        let mut out = BytesMut::from(&b"kept"[..]);
        let big = Msg::Error {
            code: 1,
            message: vec![0; MAX_FRAME],
        };
        assert!(matches!(big.encode(&mut out), Err(ProtoError::TooLarge(_))));
        assert_eq!(&out[..], b"kept");
    }

    #[test]
    fn hostile_counts_allocate_nothing() {
        // A SigBlocks frame claiming 2^32-1 blocks in 10 bytes.
        let mut buf = BytesMut::new();
        buf.put_u32(10);
        buf.put_u8(SIG_BLOCKS);
        buf.put_u32(7);
        buf.put_u8(8);
        buf.put_u32(u32::MAX);
        assert_eq!(
            decode(&mut buf),
            Err(ProtoError::Malformed("count larger than the frame"))
        );
        assert_eq!(decode_body(&[]), Err(ProtoError::Empty));
        assert_eq!(decode_body(&[200]), Err(ProtoError::UnknownType(200)));
        assert_eq!(
            decode_body(&[DONE, 0]),
            Err(ProtoError::Malformed("bytes after the message"))
        );
        // Strong sums of no bytes, or longer than a block's.
        for len in [0, STRONG_LEN as u8 + 1] {
            assert_eq!(
                decode_body(&[SIG_BLOCKS, 0, 0, 0, 1, len, 0, 0, 0, 0]),
                Err(ProtoError::Malformed("strong sum length out of range"))
            );
        }
        // SetAttrs with a flag bit no version defines.
        assert_eq!(
            decode_body(&[SET_ATTRS, 0, 0, 0, 1, 4]),
            Err(ProtoError::Malformed("unknown attribute flags"))
        );
    }

    #[test]
    fn large_signatures_and_deltas_travel_in_capped_frames() {
        let old = noise(3_000_000);
        let sig = Signature::with_block_len(&old, 16);
        let mut new = old.clone();
        new.splice(100..100, std::iter::repeat_n(7u8, 2_500_000));
        let d = crate::delta::delta(&sig, &new);

        let msgs = signature_msgs(3, &sig);
        assert!(msgs.len() > 2, "{} frames", msgs.len());
        let back = decode_all(frames(&msgs));
        let blocks: Vec<BlockSum> = back
            .iter()
            .flat_map(|m| match m {
                Msg::SigBlocks { blocks, .. } => blocks.clone(),
                _ => Vec::new(),
            })
            .collect();
        assert_eq!(blocks, sig.blocks);

        let msgs = delta_msgs(3, &d);
        let back = decode_all(frames(&msgs));
        let ops: Vec<Op> = back
            .iter()
            .flat_map(|m| match m {
                Msg::DeltaOps { ops, .. } => ops.clone(),
                _ => Vec::new(),
            })
            .collect();
        let Some(Msg::DeltaEnd {
            file_len,
            file_hash,
            ..
        }) = back.last().cloned()
        else {
            panic!("no DeltaEnd");
        };
        let rebuilt = Delta {
            block_len: sig.block_len,
            ops,
            file_len,
            file_hash,
        };
        assert_eq!(crate::delta::apply(&old, &rebuilt).unwrap(), new);
    }

    #[test]
    fn short_strong_sums_shrink_the_signature() {
        let sig = Signature::with_block_len(&noise(100_000), 700);
        let full = frames(&signature_msgs(1, &sig)).len();
        let short = frames(&signature_msgs_with(1, &sig, 8));
        assert_eq!(full - short.len(), sig.blocks.len() * 8);
        let mut seen = 0;
        for m in decode_all(short) {
            if let Msg::SigBlocks {
                strong_len, blocks, ..
            } = m
            {
                assert_eq!(strong_len, 8);
                for (b, o) in blocks.iter().zip(&sig.blocks[seen..]) {
                    assert_eq!(b.weak, o.weak);
                    assert_eq!(b.strong[..8], o.strong[..8]);
                    assert_eq!(b.strong[8..], [0; 8]);
                }
                seen += blocks.len();
            }
        }
        assert_eq!(seen, sig.blocks.len());
    }

    // The wire cost of a 1 KiB insertion near the start of an 8 MiB file:
    // the inserted bytes, one block and a few dozen bytes of framing.
    #[test]
    fn small_edit_of_a_big_file_is_small_on_the_wire() {
        let old = noise(8 << 20);
        let mut new = old.clone();
        new.splice(4096..4096, (0..1024u32).map(|i| (i * 31) as u8));
        let d = crate::delta::delta(&Signature::of(&old), &new);
        let wire = frames(&delta_msgs(1, &d)).len();
        assert!(wire <= 1024 + 2896 + 100, "{wire} bytes on the wire");
    }
}
