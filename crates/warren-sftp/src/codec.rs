//! The two halves every message is built from: [`Body`] reads a received
//! packet into zero-copy [`Bytes`] slices, [`Frame`] writes one packet with
//! its length in front.

use bytes::{BufMut as _, Bytes, BytesMut};
use warren_wire::wire::Reader;

use crate::Malformed;

/// A cursor over a received packet body whose strings come out as slices
/// of the packet.
pub(crate) struct Body<'a> {
    packet: &'a Bytes,
    r: Reader<'a>,
}

impl<'a> Body<'a> {
    pub(crate) fn new(packet: &'a Bytes) -> Self {
        Self {
            packet,
            r: Reader::new(packet),
        }
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, Malformed> {
        self.r.u8().ok_or(Malformed(what))
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, Malformed> {
        self.r.u32().ok_or(Malformed(what))
    }

    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64, Malformed> {
        self.r.u64().ok_or(Malformed(what))
    }

    pub(crate) fn string(&mut self, what: &'static str) -> Result<Bytes, Malformed> {
        let s = self.r.string().ok_or(Malformed(what))?;
        Ok(self.packet.slice_ref(s))
    }

    /// Everything that is left ("the rest of the packet").
    pub(crate) fn rest(&mut self) -> Bytes {
        self.packet.slice_ref(self.r.rest())
    }

    pub(crate) fn remaining(&self) -> usize {
        self.r.remaining().len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.r.is_empty()
    }

    /// Fails unless everything was read.
    pub(crate) fn end(&self, what: &'static str) -> Result<(), Malformed> {
        if self.r.is_empty() {
            Ok(())
        } else {
            Err(Malformed(what))
        }
    }

    /// `string name, string data` pairs up to the end of the packet (the
    /// extensions of INIT and VERSION).
    pub(crate) fn pairs_to_end(
        &mut self,
        what: &'static str,
    ) -> Result<Vec<(Bytes, Bytes)>, Malformed> {
        let mut pairs = Vec::new();
        while !self.is_empty() {
            pairs.push((self.string(what)?, self.string(what)?));
        }
        Ok(pairs)
    }
}

/// One framed packet being written at the end of `out`: its length is
/// filled in when it is finished.
pub(crate) struct Frame<'a> {
    out: &'a mut BytesMut,
    start: usize,
}

impl<'a> Frame<'a> {
    pub(crate) fn new(out: &'a mut BytesMut, kind: u8) -> Self {
        let start = out.len();
        out.put_u32(0);
        out.put_u8(kind);
        Self { out, start }
    }

    pub(crate) fn u32(&mut self, v: u32) -> &mut Self {
        self.out.put_u32(v);
        self
    }

    pub(crate) fn u64(&mut self, v: u64) -> &mut Self {
        self.out.put_u64(v);
        self
    }

    pub(crate) fn string(&mut self, s: &[u8]) -> &mut Self {
        put_string(self.out, s);
        self
    }

    pub(crate) fn raw(&mut self, s: &[u8]) -> &mut Self {
        self.out.put_slice(s);
        self
    }

    pub(crate) fn out(&mut self) -> &mut BytesMut {
        self.out
    }
}

impl Drop for Frame<'_> {
    fn drop(&mut self) {
        let len = u32_len(self.out.len() - self.start - 4);
        self.out[self.start..self.start + 4].copy_from_slice(&len.to_be_bytes());
    }
}

/// A length as the wire's u32. Nothing warren sends comes near 4 GiB (a
/// packet is at most [`crate::MAX_PACKET`]); a longer one is not
/// representable and saturates, which the peer reads as malformed.
pub(crate) fn u32_len(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

pub(crate) fn put_string(out: &mut BytesMut, s: &[u8]) {
    out.put_u32(u32_len(s.len()));
    out.put_slice(s);
}
