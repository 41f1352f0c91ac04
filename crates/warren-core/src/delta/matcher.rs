//! rsync's matching over a file read in chunks: the same algorithm as
//! `warren_sync::delta::delta` (which is the oracle in the tests below),
//! but never holding more than a few MiB of the file, and handing ops out
//! as they are found so literal data goes on the wire while the rest of the
//! file is still being read. Signatures and whole-file hashes of files are
//! here too.

use std::collections::HashMap;
use std::io::{self, Read};

use warren_sync::delta::{Rolling, STRONG_LEN, Signature, SignatureBuilder, block_len, strong};
use warren_sync::{Op, Signature as Sig};

/// Bytes read from a file at a time.
pub const READ_CHUNK: usize = 1 << 20;
/// Longest literal run handed out in one `Op::Data` (a frame holds it).
pub const LITERAL_CHUNK: usize = 256 * 1024;

/// The signature of everything `src` yields, with rsync's block length for
/// `len_hint` bytes (the file's length when it was opened).
pub fn signature_of(mut src: impl Read, len_hint: u64) -> io::Result<Signature> {
    let mut b = SignatureBuilder::new(block_len(len_hint));
    let mut buf = vec![0; READ_CHUNK];
    loop {
        let n = read_some(&mut src, &mut buf)?;
        if n == 0 {
            return Ok(b.finish());
        }
        b.update(&buf[..n]);
    }
}

/// Length and BLAKE3 hash of everything `src` yields.
pub fn hash_of(mut src: impl Read) -> io::Result<(u64, [u8; 32])> {
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0; READ_CHUNK];
    let mut len = 0u64;
    loop {
        let n = read_some(&mut src, &mut buf)?;
        if n == 0 {
            return Ok((len, *h.finalize().as_bytes()));
        }
        len += n as u64;
        h.update(&buf[..n]);
    }
}

fn read_some(src: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match src.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// What [`delta_stream`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub file_len: u64,
    pub file_hash: [u8; 32],
    pub literal_bytes: u64,
}

/// The delta of what `src` yields against `sig`, handed to `emit` op by op
/// (consecutive copies merged, literal runs cut at [`LITERAL_CHUNK`]).
/// `sig` must be consistent (`Signature::is_consistent`); only the first
/// `strong_len` bytes of its strong sums are compared (the rest may be
/// zero: that is what came over the wire).
pub fn delta_stream(
    sig: &Sig,
    strong_len: usize,
    src: impl Read,
    emit: impl FnMut(Op) -> io::Result<()>,
) -> io::Result<Summary> {
    let mut m = Matcher {
        index: Index::new(sig, strong_len),
        sig,
        src,
        buf: Vec::new(),
        lit: 0,
        eof: false,
        hasher: blake3::Hasher::new(),
        file_len: 0,
        literal: 0,
        pending_copy: None,
        emit,
    };
    m.run()?;
    Ok(Summary {
        file_len: m.file_len,
        file_hash: *m.hasher.finalize().as_bytes(),
        literal_bytes: m.literal,
    })
}

struct Matcher<'a, R, E> {
    index: Index,
    sig: &'a Sig,
    src: R,
    /// File bytes read and not yet dropped.
    buf: Vec<u8>,
    /// Where in `buf` the literal bytes not yet handed out start.
    lit: usize,
    eof: bool,
    hasher: blake3::Hasher,
    file_len: u64,
    literal: u64,
    pending_copy: Option<(u32, u32)>,
    emit: E,
}

impl<R: Read, E: FnMut(Op) -> io::Result<()>> Matcher<'_, R, E> {
    fn run(&mut self) -> io::Result<()> {
        if self.sig.blocks.is_empty() {
            return self.all_literal();
        }
        let bl = (self.sig.block_len as usize).max(1);
        let mut next_expected = 0usize;
        // `pos`: the window's start in `buf`; `buf[self.lit..pos]` is
        // literal not yet handed out.
        let mut pos = 0;
        pos = self.fill(pos, pos + bl)?;
        let mut win = bl.min(self.buf.len() - pos);
        let mut roll = Rolling::new(&self.buf[pos..pos + win]);
        while win > 0 {
            let window = &self.buf[pos..pos + win];
            if let Some(i) = self
                .index
                .find(self.sig, roll.digest(), window, next_expected)
            {
                self.literal_out(pos)?;
                self.copy_out(i)?;
                next_expected = i + 1;
                pos += win;
                self.lit = pos;
                pos = self.fill(pos, pos + bl)?;
                win = bl.min(self.buf.len() - pos);
                roll = Rolling::new(&self.buf[pos..pos + win]);
                continue;
            }
            if pos - self.lit >= LITERAL_CHUNK {
                self.literal_out(pos)?;
            }
            pos = self.fill(pos, pos + win + 1)?;
            match self.buf.get(pos + win) {
                Some(&inb) => roll.roll(self.buf[pos], inb),
                None => {
                    roll.pop(self.buf[pos]);
                    win -= 1;
                }
            }
            pos += 1;
        }
        self.literal_out(self.buf.len())?;
        self.flush_copy()
    }

    /// Nothing to match against: the whole file is literal data.
    fn all_literal(&mut self) -> io::Result<()> {
        while !self.eof {
            let end = self.buf.len();
            self.literal_out(end)?;
            self.fill(end, end + LITERAL_CHUNK)?;
        }
        self.literal_out(self.buf.len())
    }

    /// Reads until `buf` holds `want` bytes or the file ends, first
    /// dropping what is before the pending literal; returns where `pos`
    /// is then.
    fn fill(&mut self, pos: usize, want: usize) -> io::Result<usize> {
        if self.buf.len() >= want || self.eof {
            return Ok(pos);
        }
        let drop = self.lit;
        self.buf.drain(..drop);
        self.lit = 0;
        let (pos, want) = (pos - drop, want - drop);
        while self.buf.len() < want && !self.eof {
            let start = self.buf.len();
            self.buf.resize(start + READ_CHUNK, 0);
            let n = read_some(&mut self.src, &mut self.buf[start..])?;
            self.buf.truncate(start + n);
            self.eof = n == 0;
            self.hasher.update(&self.buf[start..]);
            self.file_len += n as u64;
        }
        Ok(pos)
    }

    /// Hands out `buf[lit..end]` as literal data.
    fn literal_out(&mut self, end: usize) -> io::Result<()> {
        if end > self.lit {
            self.flush_copy()?;
            for chunk in self.buf[self.lit..end].chunks(LITERAL_CHUNK) {
                (self.emit)(Op::Data(chunk.to_vec()))?;
            }
            self.literal += (end - self.lit) as u64;
        }
        self.lit = end;
        Ok(())
    }

    fn copy_out(&mut self, index: usize) -> io::Result<()> {
        let index = index as u32;
        match &mut self.pending_copy {
            Some((first, count)) if first.checked_add(*count) == Some(index) => *count += 1,
            _ => {
                self.flush_copy()?;
                self.pending_copy = Some((index, 1));
            }
        }
        Ok(())
    }

    fn flush_copy(&mut self) -> io::Result<()> {
        match self.pending_copy.take() {
            Some((index, count)) => (self.emit)(Op::Copy { index, count }),
            None => Ok(()),
        }
    }
}

/// Blocks by weak checksum, with a 64 Ki-bit table in front so most
/// windows cost no hash lookup.
struct Index {
    seen: Vec<u64>,
    by_weak: HashMap<u32, Vec<u32>>,
    strong_len: usize,
}

impl Index {
    fn new(sig: &Sig, strong_len: usize) -> Self {
        let mut seen = vec![0u64; 1024];
        let mut by_weak: HashMap<u32, Vec<u32>> = HashMap::new();
        for (i, b) in sig.blocks.iter().enumerate() {
            let t = tag(b.weak);
            seen[t / 64] |= 1 << (t % 64);
            by_weak.entry(b.weak).or_default().push(i as u32);
        }
        Self {
            seen,
            by_weak,
            strong_len: strong_len.clamp(1, STRONG_LEN),
        }
    }

    /// A block equal to `window`, preferring `preferred` (the one after
    /// the last match, so runs of copies stay runs).
    fn find(&self, sig: &Sig, weak: u32, window: &[u8], preferred: usize) -> Option<usize> {
        let t = tag(weak);
        if self.seen[t / 64] & (1 << (t % 64)) == 0 {
            return None;
        }
        let candidates = self.by_weak.get(&weak)?;
        let mut strong_of_window = None;
        let mut check = |i: usize| {
            if block_len_of(sig, i) != window.len() as u64 {
                return false;
            }
            let s = strong_of_window.get_or_insert_with(|| strong(window));
            sig.blocks[i].strong[..self.strong_len] == s[..self.strong_len]
        };
        if candidates.iter().any(|&c| c as usize == preferred) && check(preferred) {
            return Some(preferred);
        }
        candidates
            .iter()
            .map(|&c| c as usize)
            .find(|&i| i != preferred && check(i))
    }
}

fn block_len_of(sig: &Sig, index: usize) -> u64 {
    let start = (index as u64).saturating_mul(u64::from(sig.block_len));
    sig.file_len
        .saturating_sub(start)
        .min(u64::from(sig.block_len))
}

fn tag(weak: u32) -> usize {
    ((weak ^ (weak >> 16)) & 0xffff) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use warren_sync::delta::{self, Delta};
    use warren_sync::testing::noise;

    /// A reader that hands out at most `step` bytes per call.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(self.1).min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn normalized(ops: Vec<Op>) -> Vec<Op> {
        let mut out: Vec<Op> = Vec::new();
        for op in ops {
            match (out.last_mut(), op) {
                (Some(Op::Data(d)), Op::Data(more)) => d.extend_from_slice(&more),
                (_, op) => out.push(op),
            }
        }
        out
    }

    fn streamed(sig: &Sig, new: &[u8], step: usize) -> (Vec<Op>, Summary) {
        let mut ops = Vec::new();
        let summary = delta_stream(sig, STRONG_LEN, Trickle(new, step), |op| {
            ops.push(op);
            Ok(())
        })
        .unwrap();
        (ops, summary)
    }

    // The streamed delta is the in-memory one (the oracle), whatever the
    // read sizes, and rebuilds the new file.
    proptest! {
        #[test]
        fn streamed_delta_is_the_in_memory_one(
            seed in any::<u64>(),
            len in 0usize..20_000,
            edits in proptest::collection::vec((any::<u16>(), 0usize..300, any::<bool>()), 0..4),
            block in 1u32..900,
            step in 1usize..5000,
        ) {
            let old = noise(len, seed);
            let mut new = old.clone();
            for (at, n, insert) in edits {
                let at = usize::from(at) % (new.len() + 1);
                if insert {
                    new.splice(at..at, noise(n, seed ^ 7));
                } else {
                    let end = (at + n).min(new.len());
                    new.drain(at..end);
                }
            }
            let sig = Signature::with_block_len(&old, block);
            let want = delta::delta(&sig, &new);
            let (ops, summary) = streamed(&sig, &new, step);
            prop_assert_eq!(summary.file_len, new.len() as u64);
            prop_assert_eq!(summary.file_hash, want.file_hash);
            prop_assert_eq!(summary.literal_bytes, want.literal_len() as u64);
            let ops = normalized(ops);
            prop_assert_eq!(&ops, &want.ops);
            let d = Delta { block_len: block, ops, file_len: summary.file_len, file_hash: summary.file_hash };
            prop_assert_eq!(delta::apply(&old, &d).unwrap(), new);
        }
    }

    // With strong sums cut short (as they travel), the delta still
    // rebuilds the file and finds the same blocks.
    #[test]
    fn short_strong_sums_match_the_same_blocks() {
        let old = noise(200_000, 12);
        let mut new = old.clone();
        new.splice(777..777, noise(1000, 13));
        let mut sig = Signature::of(&old);
        for b in &mut sig.blocks {
            b.strong[8..].fill(0);
        }
        let mut ops = Vec::new();
        let summary = delta_stream(&sig, 8, &new[..], |op| {
            ops.push(op);
            Ok(())
        })
        .unwrap();
        let want = delta::delta(&Signature::of(&old), &new);
        assert_eq!(normalized(ops.clone()), want.ops);
        let d = Delta {
            block_len: sig.block_len,
            ops,
            file_len: summary.file_len,
            file_hash: summary.file_hash,
        };
        assert_eq!(delta::apply(&old, &d).unwrap(), new);
    }

    // Literal runs longer than a chunk are cut, and a file with no match
    // at all is never held whole.
    #[test]
    fn long_literal_runs_come_in_chunks() {
        let new = noise(3 * LITERAL_CHUNK + 17, 3);
        let sig = Signature::of(&noise(5000, 4));
        let (ops, summary) = streamed(&sig, &new, READ_CHUNK);
        assert!(ops.len() >= 4, "{} ops", ops.len());
        assert!(
            ops.iter()
                .all(|op| matches!(op, Op::Data(d) if d.len() <= LITERAL_CHUNK))
        );
        assert_eq!(summary.literal_bytes, new.len() as u64);
    }

    #[test]
    fn signature_and_hash_of_a_reader_match_the_slice_ones() {
        let data = noise(3 * READ_CHUNK + 5, 11);
        let sig = signature_of(Trickle(&data, 70_000), data.len() as u64).unwrap();
        assert_eq!(sig, Signature::of(&data));
        let (len, hash) = hash_of(Trickle(&data, 999)).unwrap();
        assert_eq!((len, hash), (data.len() as u64, delta::file_hash(&data)));
    }
}
