//! File attributes (draft section 5) and the entries of an SSH_FXP_NAME
//! reply.
//!
//! Attribute flags this version does not know are skipped as OpenSSH's
//! `decode_attrib` skips them: only the fields the flags announce are on
//! the wire, so the packet still reads exactly.

use bytes::{BufMut as _, Bytes, BytesMut};

use crate::Malformed;
use crate::codec::{Body, put_string, u32_len};

const SIZE: u32 = 0x0000_0001;
const UIDGID: u32 = 0x0000_0002;
const PERMISSIONS: u32 = 0x0000_0004;
const ACMODTIME: u32 = 0x0000_0008;
const EXTENDED: u32 = 0x8000_0000;

const S_IFMT: u32 = 0o170_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFREG: u32 = 0o100_000;

/// The smallest extended pair: two empty strings.
const MIN_PAIR: usize = 8;
/// The smallest NAME entry: two empty strings and attribute flags.
const MIN_ENTRY: usize = 12;

/// What a file's attributes say, each field present only if sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attrs {
    pub size: Option<u64>,
    pub uid_gid: Option<(u32, u32)>,
    /// The mode, with its file type bits (`S_IFMT`) as OpenSSH sends it.
    pub permissions: Option<u32>,
    /// (atime, mtime), seconds
    pub times: Option<(u32, u32)>,
    /// `extended_type`, `extended_data` pairs.
    pub extended: Vec<(Bytes, Bytes)>,
}

impl Attrs {
    /// Whether the permissions say directory (false if absent).
    pub fn is_dir(&self) -> bool {
        self.file_type() == Some(S_IFDIR)
    }

    /// Whether the permissions say symbolic link (false if absent).
    pub fn is_symlink(&self) -> bool {
        self.file_type() == Some(S_IFLNK)
    }

    /// Whether the permissions say regular file (false if absent).
    pub fn is_regular(&self) -> bool {
        self.file_type() == Some(S_IFREG)
    }

    fn file_type(&self) -> Option<u32> {
        self.permissions.map(|p| p & S_IFMT)
    }

    pub(crate) fn encode(&self, out: &mut BytesMut) {
        let flags = [
            (self.size.is_some(), SIZE),
            (self.uid_gid.is_some(), UIDGID),
            (self.permissions.is_some(), PERMISSIONS),
            (self.times.is_some(), ACMODTIME),
            (!self.extended.is_empty(), EXTENDED),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .fold(0, |acc, (_, bit)| acc | bit);
        out.put_u32(flags);
        if let Some(size) = self.size {
            out.put_u64(size);
        }
        if let Some((uid, gid)) = self.uid_gid {
            out.put_u32(uid);
            out.put_u32(gid);
        }
        if let Some(mode) = self.permissions {
            out.put_u32(mode);
        }
        if let Some((atime, mtime)) = self.times {
            out.put_u32(atime);
            out.put_u32(mtime);
        }
        if !self.extended.is_empty() {
            out.put_u32(u32_len(self.extended.len()));
            for (kind, data) in &self.extended {
                put_string(out, kind);
                put_string(out, data);
            }
        }
    }

    pub(crate) fn decode(b: &mut Body<'_>) -> Result<Attrs, Malformed> {
        let flags = b.u32("attribute flags")?;
        let mut a = Attrs::default();
        if flags & SIZE != 0 {
            a.size = Some(b.u64("attribute size")?);
        }
        if flags & UIDGID != 0 {
            a.uid_gid = Some((b.u32("attribute uid")?, b.u32("attribute gid")?));
        }
        if flags & PERMISSIONS != 0 {
            a.permissions = Some(b.u32("attribute permissions")?);
        }
        if flags & ACMODTIME != 0 {
            a.times = Some((b.u32("attribute atime")?, b.u32("attribute mtime")?));
        }
        if flags & EXTENDED != 0 {
            let count = usize::try_from(b.u32("extended attribute count")?).unwrap_or(usize::MAX);
            a.extended = Vec::with_capacity(count.min(b.remaining() / MIN_PAIR));
            for _ in 0..count {
                let kind = b.string("extended attribute type")?;
                a.extended
                    .push((kind, b.string("extended attribute data")?));
            }
        }
        Ok(a)
    }
}

/// One entry of an SSH_FXP_NAME reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameEntry {
    /// The name as the server's filesystem has it: bytes, any encoding.
    pub filename: Bytes,
    /// A line like `ls -l` prints, for display only (the draft says not to
    /// parse it).
    pub longname: Bytes,
    pub attrs: Attrs,
}

impl NameEntry {
    pub(crate) fn encode(&self, out: &mut BytesMut) {
        put_string(out, &self.filename);
        put_string(out, &self.longname);
        self.attrs.encode(out);
    }

    /// `count` entries, allocating no more than what is left could hold.
    pub(crate) fn decode_list(b: &mut Body<'_>, count: u32) -> Result<Vec<NameEntry>, Malformed> {
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        let mut entries = Vec::with_capacity(count.min(b.remaining() / MIN_ENTRY));
        for _ in 0..count {
            entries.push(NameEntry {
                filename: b.string("name entry filename")?,
                longname: b.string("name entry longname")?,
                attrs: Attrs::decode(b)?,
            });
        }
        Ok(entries)
    }
}
