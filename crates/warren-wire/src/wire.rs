//! SSH wire primitives (RFC 4251 section 5) read from a byte slice.
//!
//! Every length is checked against the bytes that remain before anything
//! is taken, so a hostile length can neither read past the input nor make
//! anything allocate: a read that does not fit returns `None` and takes
//! nothing. Callers map `None` to their own error with what they were
//! reading.

/// A cursor over SSH wire data.
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self(bytes)
    }

    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// What is left, without taking it.
    pub fn remaining(&self) -> &'a [u8] {
        self.0
    }

    /// Takes everything that is left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.0)
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }

    pub fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    pub fn u32(&mut self) -> Option<u32> {
        self.take(4)?.try_into().ok().map(u32::from_be_bytes)
    }

    pub fn u64(&mut self) -> Option<u64> {
        self.take(8)?.try_into().ok().map(u64::from_be_bytes)
    }

    /// A `string`: a u32 length, then that many bytes.
    pub fn string(&mut self) -> Option<&'a [u8]> {
        let mut ahead = *self;
        let len = usize::try_from(ahead.u32()?).ok()?;
        let s = ahead.take(len)?;
        *self = ahead;
        Some(s)
    }

    /// Skips `n` strings, returning the raw bytes they occupied.
    pub fn strings(&mut self, n: usize) -> Option<&'a [u8]> {
        let start = self.0;
        let mut ahead = *self;
        for _ in 0..n {
            ahead.string()?;
        }
        *self = ahead;
        Some(&start[..start.len() - self.0.len()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_primitive_and_nothing_past_the_end() {
        let bytes = [
            &[7u8][..],
            &1u32.to_be_bytes(),
            &2u64.to_be_bytes(),
            &3u32.to_be_bytes(),
            b"abc",
            &1u32.to_be_bytes(),
            b"x",
            b"tail",
        ]
        .concat();
        let mut r = Reader::new(&bytes);
        assert_eq!(r.u8(), Some(7));
        assert_eq!(r.u32(), Some(1));
        assert_eq!(r.u64(), Some(2));
        assert_eq!(r.string(), Some(&b"abc"[..]));
        assert_eq!(r.strings(1), Some(&[0, 0, 0, 1, b'x'][..]));
        assert_eq!(r.remaining(), b"tail");
        assert_eq!(r.u64(), None, "4 bytes left, not 8");
        assert_eq!(r.rest(), b"tail");
        assert!(r.is_empty());
    }

    #[test]
    fn a_length_past_the_end_takes_nothing() {
        let bytes = [&100u32.to_be_bytes()[..], b"short"].concat();
        let mut r = Reader::new(&bytes);
        assert_eq!(r.string(), None);
        assert_eq!(r.remaining(), &bytes[..]);
        assert_eq!(Reader::new(&[0, 0, 0, 5, b'a']).strings(1), None);
    }

    proptest::proptest! {
        #[test]
        fn never_reads_past_the_input(bytes: Vec<u8>, n in 0usize..4) {
            let mut r = Reader::new(&bytes);
            let mut taken = 0;
            while let Some(s) = r.string() {
                taken += 4 + s.len();
            }
            let _ = r.strings(n);
            proptest::prop_assert!(taken <= bytes.len());
        }
    }
}
