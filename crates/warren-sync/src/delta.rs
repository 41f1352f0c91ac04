//! rsync's delta algorithm, sans-IO: the side that has the old file sends a
//! [`Signature`] (a weak rolling checksum and a strong hash per block); the
//! side with the new file answers with a [`Delta`] (copy these old blocks,
//! insert these bytes); [`apply`] rebuilds the new file from the old one and
//! refuses the result unless its whole-file hash is the sender's.
//!
//! - Block length as rsync picks it ([`block_len`]): the square root of the
//!   file length, rounded down to a multiple of 8, at least 700 bytes and at
//!   most 128 KiB.
//! - The weak checksum is rsync's Adler-32-like pair of 16-bit sums, written
//!   here by hand because it must *roll* (drop a byte, take a byte in O(1)),
//!   which no hashing crate offers. Bytes count as unsigned (rsync uses
//!   signed chars; this protocol is our own, so nothing needs that quirk).
//! - Strong hashes are BLAKE3 (the `blake3` crate): per block truncated to
//!   16 bytes, for the whole file all 32. Against the alternatives:
//!   `xxhash-rust` (XXH3) is faster still but not collision resistant, so a
//!   file crafted to collide with a block of the old one would rebuild into
//!   something else; `fast_rsync` (Dropbox's librsync port) is fast but
//!   carries librsync's MD4 signature format and has seen few releases in
//!   years. `blake3` is the BLAKE3 team's own crate, released steadily,
//!   cryptographic, and at several GB/s with SIMD it is never the
//!   bottleneck next to the network or the disk.
//!
//! Everything works on byte slices; [`SignatureBuilder`] takes the old file
//! in chunks of any size so it never has to be in memory at once.

use std::collections::HashMap;

/// rsync's smallest (and default) block.
pub const MIN_BLOCK_LEN: u32 = 700;
/// rsync's largest block (protocol 30 and later).
pub const MAX_BLOCK_LEN: u32 = 128 * 1024;
/// Bytes of BLAKE3 kept per block.
pub const STRONG_LEN: usize = 16;

/// The block length rsync uses for a file of `len` bytes.
pub fn block_len(len: u64) -> u32 {
    let root = len.isqrt() & !7;
    u32::try_from(root)
        .unwrap_or(MAX_BLOCK_LEN)
        .clamp(MIN_BLOCK_LEN, MAX_BLOCK_LEN)
}

/// The rolling weak checksum over a window: `s1` is the sum of the bytes,
/// `s2` the sum of the running `s1`s, both kept modulo 2^16 by `digest`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rolling {
    s1: u32,
    s2: u32,
    len: u32,
}

impl Rolling {
    /// The checksum of `window`.
    pub fn new(window: &[u8]) -> Self {
        let mut r = Self::default();
        for &b in window {
            r.push(b);
        }
        r
    }

    /// Takes `b` in at the end of the window.
    pub fn push(&mut self, b: u8) {
        self.s1 = self.s1.wrapping_add(u32::from(b));
        self.s2 = self.s2.wrapping_add(self.s1);
        self.len = self.len.wrapping_add(1);
    }

    /// Drops `b`, the first byte of the window.
    pub fn pop(&mut self, b: u8) {
        self.s1 = self.s1.wrapping_sub(u32::from(b));
        self.s2 = self.s2.wrapping_sub(self.len.wrapping_mul(u32::from(b)));
        self.len = self.len.wrapping_sub(1);
    }

    /// Slides the window one byte: drops `out`, takes `inb`.
    pub fn roll(&mut self, out: u8, inb: u8) {
        self.pop(out);
        self.push(inb);
    }

    pub fn digest(&self) -> u32 {
        (self.s1 & 0xffff) | (self.s2 << 16)
    }
}

/// rsync's weak checksum of one block.
pub fn weak(block: &[u8]) -> u32 {
    Rolling::new(block).digest()
}

/// The strong hash of one block.
pub fn strong(block: &[u8]) -> [u8; STRONG_LEN] {
    let mut out = [0; STRONG_LEN];
    out.copy_from_slice(&blake3::hash(block).as_bytes()[..STRONG_LEN]);
    out
}

/// The whole-file hash a rebuilt file must match (also what `-c` compares).
pub fn file_hash(data: &[u8]) -> [u8; 32] {
    *blake3::hash(data).as_bytes()
}

/// The sums of one block of the old file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockSum {
    pub weak: u32,
    pub strong: [u8; STRONG_LEN],
}

/// What the receiver knows of its old file: its length, the block length,
/// and each block's sums (the last block may be short).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub block_len: u32,
    pub file_len: u64,
    pub blocks: Vec<BlockSum>,
}

impl Signature {
    /// The signature of `data`, with rsync's block length.
    pub fn of(data: &[u8]) -> Self {
        Self::with_block_len(data, block_len(data.len() as u64))
    }

    /// The signature of `data` cut into blocks of `block_len` (at least 1).
    pub fn with_block_len(data: &[u8], block_len: u32) -> Self {
        let mut b = SignatureBuilder::new(block_len);
        b.update(data);
        b.finish()
    }

    /// Whether a signature from a peer describes a file at all: a block
    /// length rsync could pick or smaller, and one sum per block of
    /// `file_len` bytes. Check this before [`delta`] trusts it.
    pub fn is_consistent(&self) -> bool {
        let bl = u64::from(self.block_len);
        (1..=u64::from(MAX_BLOCK_LEN)).contains(&bl)
            && self.blocks.len() as u64 == self.file_len.div_ceil(bl)
    }

    /// Length of block `index` (the last one may be short; zero for one
    /// that an inconsistent signature lists past the end).
    fn len_of(&self, index: usize) -> usize {
        let start = (index as u64).saturating_mul(u64::from(self.block_len));
        self.file_len
            .saturating_sub(start)
            .min(u64::from(self.block_len)) as usize
    }
}

/// Builds a [`Signature`] from the old file fed in chunks of any size.
#[derive(Debug)]
pub struct SignatureBuilder {
    block_len: u32,
    file_len: u64,
    pending: Vec<u8>,
    blocks: Vec<BlockSum>,
}

impl SignatureBuilder {
    /// For a file of `len` bytes, rsync's block length is
    /// `SignatureBuilder::new(block_len(len))`.
    pub fn new(block_len: u32) -> Self {
        let block_len = block_len.max(1);
        Self {
            block_len,
            file_len: 0,
            pending: Vec::new(),
            blocks: Vec::new(),
        }
    }

    pub fn update(&mut self, mut chunk: &[u8]) {
        self.file_len += chunk.len() as u64;
        let bl = self.block_len as usize;
        while !chunk.is_empty() {
            if self.pending.is_empty() && chunk.len() >= bl {
                let (block, rest) = chunk.split_at(bl);
                self.push(block);
                chunk = rest;
                continue;
            }
            let take = (bl - self.pending.len()).min(chunk.len());
            self.pending.extend_from_slice(&chunk[..take]);
            chunk = &chunk[take..];
            if self.pending.len() == bl {
                let block = std::mem::take(&mut self.pending);
                self.push(&block);
            }
        }
    }

    fn push(&mut self, block: &[u8]) {
        self.blocks.push(BlockSum {
            weak: weak(block),
            strong: strong(block),
        });
    }

    pub fn finish(mut self) -> Signature {
        if !self.pending.is_empty() {
            let block = std::mem::take(&mut self.pending);
            self.push(&block);
        }
        Signature {
            block_len: self.block_len,
            file_len: self.file_len,
            blocks: self.blocks,
        }
    }
}

/// One instruction for rebuilding the new file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `count` old blocks from block `index` on.
    Copy { index: u32, count: u32 },
    /// Bytes the old file does not have.
    Data(Vec<u8>),
}

/// The new file as instructions against the old one, with what the result
/// must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delta {
    /// The signature's block length, which `Copy` indexes count in.
    pub block_len: u32,
    pub ops: Vec<Op>,
    pub file_len: u64,
    pub file_hash: [u8; 32],
}

impl Delta {
    /// Bytes of literal data in the delta (what cannot be copied).
    pub fn literal_len(&self) -> usize {
        self.ops
            .iter()
            .map(|op| match op {
                Op::Data(d) => d.len(),
                Op::Copy { .. } => 0,
            })
            .sum()
    }
}

/// The new file `new` as copies of the blocks `sig` describes plus data.
pub fn delta(sig: &Signature, new: &[u8]) -> Delta {
    let mut ops = Ops::default();
    let finder = Finder::new(sig);
    let bl = sig.block_len as usize;
    let mut pos = 0; // start of the window
    let mut lit = 0; // start of literal bytes not yet sent
    let mut win = bl.min(new.len());
    let mut roll = Rolling::new(&new[..win]);
    let mut next_expected = 0usize;
    while win > 0 {
        let window = &new[pos..pos + win];
        if let Some(index) = finder.find(roll.digest(), window, next_expected) {
            ops.data(&new[lit..pos]);
            ops.copy(index);
            next_expected = index + 1;
            pos += win;
            lit = pos;
            win = bl.min(new.len() - pos);
            roll = Rolling::new(&new[pos..pos + win]);
            continue;
        }
        // Slide by one byte; near the end the window shrinks instead.
        match new.get(pos + win) {
            Some(&inb) => roll.roll(new[pos], inb),
            None => {
                roll.pop(new[pos]);
                win -= 1;
            }
        }
        pos += 1;
    }
    ops.data(&new[lit..]);
    Delta {
        block_len: sig.block_len,
        ops: ops.0,
        file_len: new.len() as u64,
        file_hash: file_hash(new),
    }
}

/// Looks blocks up by weak checksum, with a 64 Ki-bit table in front so
/// most windows cost no hash lookup.
struct Finder<'a> {
    sig: &'a Signature,
    seen: Vec<u64>,
    by_weak: HashMap<u32, Vec<usize>>,
}

impl<'a> Finder<'a> {
    fn new(sig: &'a Signature) -> Self {
        let mut seen = vec![0u64; 1024];
        let mut by_weak: HashMap<u32, Vec<usize>> = HashMap::new();
        for (i, b) in sig.blocks.iter().enumerate() {
            let t = tag(b.weak);
            seen[t / 64] |= 1 << (t % 64);
            by_weak.entry(b.weak).or_default().push(i);
        }
        Self { sig, seen, by_weak }
    }

    /// A block equal to `window`, preferring `preferred` (the one after the
    /// last match, so runs of copies stay runs).
    fn find(&self, weak: u32, window: &[u8], preferred: usize) -> Option<usize> {
        let t = tag(weak);
        if self.seen[t / 64] & (1 << (t % 64)) == 0 {
            return None;
        }
        let candidates = self.by_weak.get(&weak)?;
        let mut strong_of_window = None;
        let mut check = |i: usize| {
            if self.sig.len_of(i) != window.len() {
                return false;
            }
            let s = strong_of_window.get_or_insert_with(|| strong(window));
            self.sig.blocks[i].strong == *s
        };
        if candidates.contains(&preferred) && check(preferred) {
            return Some(preferred);
        }
        candidates
            .iter()
            .copied()
            .find(|&i| i != preferred && check(i))
    }
}

fn tag(weak: u32) -> usize {
    ((weak ^ (weak >> 16)) & 0xffff) as usize
}

/// Ops under construction: consecutive copies merge, empty data is dropped.
#[derive(Default)]
struct Ops(Vec<Op>);

impl Ops {
    fn data(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if let Some(Op::Data(d)) = self.0.last_mut() {
            d.extend_from_slice(bytes);
        } else {
            self.0.push(Op::Data(bytes.to_vec()));
        }
    }

    fn copy(&mut self, index: usize) {
        let index = index as u32;
        if let Some(Op::Copy {
            index: first,
            count,
        }) = self.0.last_mut()
            && first.checked_add(*count) == Some(index)
        {
            *count += 1;
            return;
        }
        self.0.push(Op::Copy { index, count: 1 });
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ApplyError {
    #[error(
        "delta copies blocks {index}..+{count} of {block_len} bytes, beyond the old file's {old_len} bytes"
    )]
    CopyOutOfRange {
        index: u32,
        count: u32,
        block_len: u32,
        old_len: u64,
    },
    #[error("delta builds more than the {file_len} bytes it announced")]
    TooLong { file_len: u64 },
    #[error("rebuilt file is {got} bytes, the delta announced {file_len}")]
    WrongLength { got: u64, file_len: u64 },
    #[error("rebuilt file's hash differs from the source's: the file must be sent whole")]
    HashMismatch,
}

/// Rebuilds the new file from `old` and `delta`, checking every copy
/// against `old`, the length as it grows, and the whole-file hash.
pub fn apply(old: &[u8], delta: &Delta) -> Result<Vec<u8>, ApplyError> {
    let cap = usize::try_from(delta.file_len).unwrap_or(usize::MAX);
    let mut out = Vec::with_capacity(cap.min(64 << 20));
    for op in &delta.ops {
        let piece = match op {
            Op::Data(d) => &d[..],
            Op::Copy { index, count } => copy_range(old, delta.block_len, *index, *count)?,
        };
        if (out.len() + piece.len()) as u64 > delta.file_len {
            return Err(ApplyError::TooLong {
                file_len: delta.file_len,
            });
        }
        out.extend_from_slice(piece);
    }
    if out.len() as u64 != delta.file_len {
        return Err(ApplyError::WrongLength {
            got: out.len() as u64,
            file_len: delta.file_len,
        });
    }
    if file_hash(&out) != delta.file_hash {
        return Err(ApplyError::HashMismatch);
    }
    Ok(out)
}

/// The old bytes of `count` blocks from `index` (the last may be short).
fn copy_range(old: &[u8], block_len: u32, index: u32, count: u32) -> Result<&[u8], ApplyError> {
    let bl = u64::from(block_len);
    let start = u64::from(index) * bl;
    let end = (start + u64::from(count) * bl).min(old.len() as u64);
    if count == 0 || block_len == 0 || start >= end || end - start <= (u64::from(count) - 1) * bl {
        return Err(ApplyError::CopyOutOfRange {
            index,
            count,
            block_len,
            old_len: old.len() as u64,
        });
    }
    Ok(&old[start as usize..end as usize])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::noise;
    use proptest::prelude::*;

    #[test]
    fn block_len_is_rsyncs() {
        // rsync: 700 up to 700^2 bytes, then sqrt rounded down to a multiple
        // of 8, at most 128 KiB.
        let rows: &[(u64, u32)] = &[
            (0, 700),
            (1, 700),
            (490_000, 700),
            (490_001, 700),
            (1 << 20, 1024),
            (8 << 20, 2896),
            (1 << 30, 32768),
            (1_000_000_000, 31616),
            ((1 << 34) - 1, 131064),
            (1 << 34, 131072),
            (1 << 40, 131072),
            (u64::MAX, 131072),
        ];
        for &(len, want) in rows {
            assert_eq!(block_len(len), want, "len {len}");
        }
    }

    #[test]
    fn weak_checksum_is_rsyncs_and_rolls() {
        // rsync's get_checksum1 of "abcd": s1 = 394, s2 = 4*97+3*98+2*99+100.
        assert_eq!(
            weak(b"abcd"),
            394 | ((4 * 97 + 3 * 98 + 2 * 99 + 100) << 16)
        );
        let data: Vec<u8> = (0..3000u32).map(|i| (i * 7919 % 251) as u8).collect();
        let w = 700;
        let mut r = Rolling::new(&data[..w]);
        for start in 1..data.len() - w {
            r.roll(data[start - 1], data[start + w - 1]);
            assert_eq!(r.digest(), weak(&data[start..start + w]), "at {start}");
        }
    }

    #[test]
    fn inconsistent_signatures_are_told_apart_and_do_not_panic() {
        let data = noise(2000, 9);
        let good = Signature::with_block_len(&data, 700);
        assert!(good.is_consistent());
        assert!(Signature::of(b"").is_consistent());
        let mut bad = good.clone();
        bad.blocks.push(bad.blocks[0]);
        assert!(!bad.is_consistent());
        // A block listed past the end never matches.
        let d = delta(&bad, &data);
        assert_eq!(apply(&data, &d).unwrap(), data);
        let mut bad = good.clone();
        bad.block_len = 0;
        assert!(!bad.is_consistent());
        assert_eq!(delta(&bad, &data).ops, vec![Op::Data(data.clone())]);
    }

    #[test]
    fn signature_is_the_same_whatever_the_chunks() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 253) as u8).collect();
        let whole = Signature::with_block_len(&data, 700);
        let mut b = SignatureBuilder::new(700);
        for chunk in data.chunks(333) {
            b.update(chunk);
        }
        assert_eq!(b.finish(), whole);
        assert_eq!(whole.blocks.len(), 15);
        assert_eq!(whole.blocks[14].weak, weak(&data[9800..]));
    }

    // A 1 KiB insertion near the start of an 8 MiB file: only the insertion
    // and the one block it split travel as data.
    #[test]
    fn insertion_near_start_of_8_mib_sends_little_more_than_itself() {
        let old = noise(8 << 20, 42);
        let mut new = old.clone();
        let inserted = noise(1024, 7);
        new.splice(5000..5000, inserted.iter().copied());
        let sig = Signature::of(&old);
        assert_eq!(sig.block_len, 2896);
        let d = delta(&sig, &new);
        assert!(
            d.literal_len() <= 1024 + 2896,
            "literal {} bytes for a 1 KiB insertion",
            d.literal_len()
        );
        assert!(d.ops.len() <= 4, "{} ops", d.ops.len());
        assert_eq!(apply(&old, &d).unwrap(), new);
    }

    #[test]
    fn identical_files_are_all_copies_and_a_new_file_all_data() {
        let old = noise(50_000, 1);
        let d = delta(&Signature::of(&old), &old);
        assert_eq!(
            d.ops,
            vec![Op::Copy {
                index: 0,
                count: 72
            }]
        );
        let d = delta(&Signature::of(b""), &old);
        assert_eq!(d.ops, vec![Op::Data(old.clone())]);
        assert_eq!(apply(b"", &d).unwrap(), old);
        let d = delta(&Signature::of(&old), b"");
        assert!(d.ops.is_empty());
        assert_eq!(apply(&old, &d).unwrap(), b"");
    }

    #[test]
    fn hostile_deltas_are_refused() {
        let old = noise(3000, 3);
        let good = delta(&Signature::with_block_len(&old, 1000), &old);
        let mut d = good.clone();
        d.ops = vec![Op::Copy { index: 3, count: 1 }];
        assert!(matches!(
            apply(&old, &d),
            Err(ApplyError::CopyOutOfRange { .. })
        ));
        d.ops = vec![Op::Copy { index: 2, count: 2 }];
        assert!(matches!(
            apply(&old, &d),
            Err(ApplyError::CopyOutOfRange { .. })
        ));
        d.ops = vec![Op::Copy {
            index: u32::MAX,
            count: u32::MAX,
        }];
        assert!(matches!(
            apply(&old, &d),
            Err(ApplyError::CopyOutOfRange { .. })
        ));
        d.ops = vec![Op::Copy { index: 0, count: 0 }];
        assert!(matches!(
            apply(&old, &d),
            Err(ApplyError::CopyOutOfRange { .. })
        ));
        d = good.clone();
        d.file_len -= 1;
        assert_eq!(apply(&old, &d), Err(ApplyError::TooLong { file_len: 2999 }));
        d = good.clone();
        d.file_hash[0] ^= 1;
        assert_eq!(apply(&old, &d), Err(ApplyError::HashMismatch));
        // The same delta against a changed old file fails the hash check.
        let mut other = old.clone();
        other[10] ^= 1;
        assert_eq!(apply(&other, &good), Err(ApplyError::HashMismatch));
    }

    #[derive(Debug, Clone)]
    enum Edit {
        Insert(usize, Vec<u8>),
        Delete(usize, usize),
        Rewrite(usize, Vec<u8>),
    }

    fn edit() -> impl Strategy<Value = Edit> {
        prop_oneof![
            (
                any::<usize>(),
                proptest::collection::vec(any::<u8>(), 1..300)
            )
                .prop_map(|(a, b)| Edit::Insert(a, b)),
            (any::<usize>(), 1usize..400).prop_map(|(a, n)| Edit::Delete(a, n)),
            (
                any::<usize>(),
                proptest::collection::vec(any::<u8>(), 1..300)
            )
                .prop_map(|(a, b)| Edit::Rewrite(a, b)),
        ]
    }

    fn edited(old: &[u8], edits: &[Edit]) -> Vec<u8> {
        let mut new = old.to_vec();
        for e in edits {
            let at = |a: usize, len: usize| if len == 0 { 0 } else { a % len };
            match e {
                Edit::Insert(a, b) => {
                    let i = at(*a, new.len() + 1);
                    new.splice(i..i, b.iter().copied());
                }
                Edit::Delete(a, n) => {
                    let i = at(*a, new.len());
                    let end = (i + n).min(new.len());
                    new.drain(i..end);
                }
                Edit::Rewrite(a, b) => {
                    let i = at(*a, new.len());
                    let end = (i + b.len()).min(new.len());
                    new.splice(i..end, b.iter().copied());
                }
            }
        }
        new
    }

    proptest! {
        #[test]
        fn apply_of_delta_rebuilds_the_new_file(
            seed: u64,
            len in 0usize..6000,
            block in 1u32..800,
            edits in proptest::collection::vec(edit(), 0..5),
        ) {
            let old = noise(len, seed);
            let new = edited(&old, &edits);
            let sig = Signature::with_block_len(&old, block);
            let d = delta(&sig, &new);
            prop_assert_eq!(apply(&old, &d).unwrap(), new.clone());
            // What was not touched travels as copies: no more literal bytes
            // than the edits brought, plus one block either side of each.
            let touched: usize = edits.iter().map(|e| match e {
                Edit::Insert(_, b) | Edit::Rewrite(_, b) => b.len(),
                Edit::Delete(..) => 0,
            }).sum();
            prop_assert!(d.literal_len() <= touched + 2 * edits.len() * block as usize + block as usize);
        }

        #[test]
        fn repetitive_files_round_trip(
            unit in proptest::collection::vec(any::<u8>(), 1..4),
            reps in 0usize..2000,
            edits in proptest::collection::vec(edit(), 0..4),
            block in 1u32..64,
        ) {
            let old: Vec<u8> = unit.iter().copied().cycle().take(unit.len() * reps).collect();
            let new = edited(&old, &edits);
            let d = delta(&Signature::with_block_len(&old, block), &new);
            prop_assert_eq!(apply(&old, &d).unwrap(), new);
        }
    }
}
