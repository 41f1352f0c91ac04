//! OpenSSH's extensions (`PROTOCOL` in openssh-portable, section 4): their
//! names and the versions OpenSSH's sftp-server advertises in VERSION, and
//! the payloads: the `data` of a [`crate::Request::Extended`] and of its
//! [`crate::Response::ExtendedReply`].
//!
//! Replies ([`Limits`], [`Statvfs`]) read the fields this version knows and
//! ignore any after them, so a server that appends fields still works;
//! request payloads are read exactly.

use bytes::{BufMut as _, Bytes, BytesMut};

use crate::Malformed;
use crate::codec::{Body, put_string};

/// Asks for the server's limits; replied to with [`Limits`]. No payload.
pub const LIMITS: &str = "limits@openssh.com";
pub const LIMITS_VERSION: &str = "1";
/// Rename that replaces an existing target ([`two_paths`]: old, new).
pub const POSIX_RENAME: &str = "posix-rename@openssh.com";
pub const POSIX_RENAME_VERSION: &str = "1";
/// fsync(2) on an open handle ([`one_string`]: the handle).
pub const FSYNC: &str = "fsync@openssh.com";
pub const FSYNC_VERSION: &str = "1";
/// statvfs(3) of a path ([`one_string`]: the path); replied to with
/// [`Statvfs`].
pub const STATVFS: &str = "statvfs@openssh.com";
pub const STATVFS_VERSION: &str = "2";
/// link(2) ([`two_paths`]: existing path, new link).
pub const HARDLINK: &str = "hardlink@openssh.com";
pub const HARDLINK_VERSION: &str = "1";

/// The reply to [`LIMITS`]; zero means "no limit given".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// Longest packet the server accepts (OpenSSH: whole message, length
    /// excluded).
    pub max_packet: u64,
    pub max_read: u64,
    pub max_write: u64,
    pub max_open_handles: u64,
}

impl Limits {
    pub fn encode(&self) -> Bytes {
        u64s(&[
            self.max_packet,
            self.max_read,
            self.max_write,
            self.max_open_handles,
        ])
    }

    pub fn decode(data: Bytes) -> Result<Self, Malformed> {
        let mut b = Body::new(&data);
        let mut f = || b.u64("limits reply");
        Ok(Limits {
            max_packet: f()?,
            max_read: f()?,
            max_write: f()?,
            max_open_handles: f()?,
        })
    }
}

/// `f_flag` bits of [`Statvfs`].
pub mod statvfs_flags {
    pub const RDONLY: u64 = 0x1;
    pub const NOSUID: u64 = 0x2;
}

/// The reply to [`STATVFS`]: statvfs(3)'s fields in OpenSSH's order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Statvfs {
    pub bsize: u64,
    pub frsize: u64,
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub favail: u64,
    pub fsid: u64,
    /// [`statvfs_flags`] bits.
    pub flag: u64,
    pub namemax: u64,
}

impl Statvfs {
    pub fn encode(&self) -> Bytes {
        u64s(&[
            self.bsize,
            self.frsize,
            self.blocks,
            self.bfree,
            self.bavail,
            self.files,
            self.ffree,
            self.favail,
            self.fsid,
            self.flag,
            self.namemax,
        ])
    }

    pub fn decode(data: Bytes) -> Result<Self, Malformed> {
        let mut b = Body::new(&data);
        let mut f = || b.u64("statvfs reply");
        Ok(Statvfs {
            bsize: f()?,
            frsize: f()?,
            blocks: f()?,
            bfree: f()?,
            bavail: f()?,
            files: f()?,
            ffree: f()?,
            favail: f()?,
            fsid: f()?,
            flag: f()?,
            namemax: f()?,
        })
    }
}

fn u64s(values: &[u64]) -> Bytes {
    let mut out = BytesMut::with_capacity(values.len() * 8);
    for v in values {
        out.put_u64(*v);
    }
    out.freeze()
}

/// Two strings: the data of [`POSIX_RENAME`] and [`HARDLINK`].
pub fn two_paths(a: &[u8], b: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(8 + a.len() + b.len());
    put_string(&mut out, a);
    put_string(&mut out, b);
    out.freeze()
}

/// Reads [`two_paths`]' data, exactly.
pub fn parse_two_paths(data: Bytes) -> Result<(Bytes, Bytes), Malformed> {
    let mut b = Body::new(&data);
    let paths = (b.string("first path")?, b.string("second path")?);
    b.end("bytes after the second path")?;
    Ok(paths)
}

/// One string: the data of [`FSYNC`] (a handle) and [`STATVFS`] (a path).
pub fn one_string(s: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(4 + s.len());
    put_string(&mut out, s);
    out.freeze()
}

/// Reads [`one_string`]'s data, exactly.
pub fn parse_one_string(data: Bytes) -> Result<Bytes, Malformed> {
    let mut b = Body::new(&data);
    let s = b.string("extension argument")?;
    b.end("bytes after the extension argument")?;
    Ok(s)
}
