//! SFTP version 3 (draft-ietf-secsh-filexfer-02) and OpenSSH's extensions
//! (`PROTOCOL` in openssh-portable) as a sans-IO codec: [`Request`] and
//! [`Response`] encode to and decode from packets, [`split_packet`] cuts
//! framed packets off a receive buffer, and [`ext`] holds the extension
//! payloads. Nothing here does I/O or depends on tokio or russh.
//!
//! Why it is written by hand rather than taken from russh-sftp: russh-sftp
//! keeps file names and handles as `String`, but SFTP names and handles are
//! byte strings (a file whose name is not UTF-8 cannot be copied through
//! it, and a server handle with a byte >= 0x80 breaks it); its client gives
//! every request a timer and a map entry, and its server answers one
//! request at a time. warren needs bytes end to end, a pipelined client
//! with a bounded number of requests in flight, and a concurrent server;
//! version 3 plus five OpenSSH extensions is a small protocol.
//!
//! The design choice a reader must know: every path, handle, name, message
//! and data payload is a [`bytes::Bytes`] sliced out of the received packet
//! (no copy, no UTF-8 assumption), and every length a peer sends is checked
//! against the bytes that remain before anything is taken or allocated
//! (through [`warren_wire::wire::Reader`]).

mod attrs;
mod codec;
pub mod ext;
mod request;
mod response;
pub mod status;

pub use attrs::{Attrs, NameEntry};
pub use request::Request;
pub use response::Response;

use bytes::{Buf as _, Bytes, BytesMut};

/// The protocol version spoken (draft-ietf-secsh-filexfer-02), the one
/// OpenSSH speaks.
pub const VERSION: u32 = 3;

/// Largest packet body (after its length) accepted from a peer: OpenSSH's
/// `SFTP_MAX_MSG_LENGTH` (256 KiB) plus 1 KiB of slack, so a peer that sends
/// a full 256 KiB of data plus its header is still read.
///
/// OpenSSH's own sftp-server and sftp client drop a peer whose packet is
/// longer than 256 KiB: what warren sends stays within that (a server
/// serves reads of at most [`MAX_PACKET`] minus 2 KiB, as OpenSSH's serves
/// 255 KiB).
pub const MAX_PACKET: usize = 256 * 1024 + 1024;

/// Packet type numbers (draft section 3 and OpenSSH's extensions).
pub mod packet_type {
    pub const INIT: u8 = 1;
    pub const VERSION: u8 = 2;
    pub const OPEN: u8 = 3;
    pub const CLOSE: u8 = 4;
    pub const READ: u8 = 5;
    pub const WRITE: u8 = 6;
    pub const LSTAT: u8 = 7;
    pub const FSTAT: u8 = 8;
    pub const SETSTAT: u8 = 9;
    pub const FSETSTAT: u8 = 10;
    pub const OPENDIR: u8 = 11;
    pub const READDIR: u8 = 12;
    pub const REMOVE: u8 = 13;
    pub const MKDIR: u8 = 14;
    pub const RMDIR: u8 = 15;
    pub const REALPATH: u8 = 16;
    pub const STAT: u8 = 17;
    pub const RENAME: u8 = 18;
    pub const READLINK: u8 = 19;
    pub const SYMLINK: u8 = 20;
    pub const STATUS: u8 = 101;
    pub const HANDLE: u8 = 102;
    pub const DATA: u8 = 103;
    pub const NAME: u8 = 104;
    pub const ATTRS: u8 = 105;
    pub const EXTENDED: u8 = 200;
    pub const EXTENDED_REPLY: u8 = 201;
}

/// `pflags` of SSH_FXP_OPEN (draft section 6.3).
pub mod open_flags {
    pub const READ: u32 = 0x01;
    pub const WRITE: u32 = 0x02;
    pub const APPEND: u32 = 0x04;
    pub const CREAT: u32 = 0x08;
    pub const TRUNC: u32 = 0x10;
    pub const EXCL: u32 = 0x20;
}

/// A packet that does not follow the format; the text names what was
/// being read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed SFTP packet: {0}")]
pub struct Malformed(pub &'static str);

/// If `buf` starts with a whole framed packet (u32 length, then that many
/// bytes), removes it and returns its body without the length (a slice of
/// `buf`'s memory, not a copy); `Ok(None)` when more bytes are needed.
/// A length of zero or above `max` is [`Malformed`]: the stream cannot be
/// resynchronised after it.
pub fn split_packet(buf: &mut BytesMut, max: usize) -> Result<Option<Bytes>, Malformed> {
    let Some(head) = buf.first_chunk::<4>() else {
        return Ok(None);
    };
    let len = usize::try_from(u32::from_be_bytes(*head)).unwrap_or(usize::MAX);
    if len == 0 {
        return Err(Malformed("packet length is zero"));
    }
    if len > max {
        return Err(Malformed("packet longer than the maximum accepted"));
    }
    if buf.len() - 4 < len {
        buf.reserve(len + 4 - buf.len());
        return Ok(None);
    }
    buf.advance(4);
    Ok(Some(buf.split_to(len).freeze()))
}

#[cfg(test)]
mod tests;
