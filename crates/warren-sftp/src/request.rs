//! Client-to-server packets (draft sections 4 to 8).

use bytes::{Bytes, BytesMut};

use crate::codec::{Body, Frame};
use crate::packet_type as t;
use crate::{Attrs, Malformed};

/// Client -> server. `id` is the request id (absent for Init).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Init {
        version: u32,
        extensions: Vec<(Bytes, Bytes)>,
    },
    Open {
        id: u32,
        path: Bytes,
        flags: u32,
        attrs: Attrs,
    },
    Close {
        id: u32,
        handle: Bytes,
    },
    Read {
        id: u32,
        handle: Bytes,
        offset: u64,
        len: u32,
    },
    Write {
        id: u32,
        handle: Bytes,
        offset: u64,
        data: Bytes,
    },
    Lstat {
        id: u32,
        path: Bytes,
    },
    Fstat {
        id: u32,
        handle: Bytes,
    },
    SetStat {
        id: u32,
        path: Bytes,
        attrs: Attrs,
    },
    FSetStat {
        id: u32,
        handle: Bytes,
        attrs: Attrs,
    },
    OpenDir {
        id: u32,
        path: Bytes,
    },
    ReadDir {
        id: u32,
        handle: Bytes,
    },
    Remove {
        id: u32,
        path: Bytes,
    },
    MkDir {
        id: u32,
        path: Bytes,
        attrs: Attrs,
    },
    RmDir {
        id: u32,
        path: Bytes,
    },
    RealPath {
        id: u32,
        path: Bytes,
    },
    Stat {
        id: u32,
        path: Bytes,
    },
    Rename {
        id: u32,
        from: Bytes,
        to: Bytes,
    },
    ReadLink {
        id: u32,
        path: Bytes,
    },
    /// Fields in wire order. OpenSSH's sftp-server (and so every OpenSSH
    /// client) sends the link's TARGET first, then the link path: the
    /// reverse of the draft. Named for that: `target`, `link`.
    Symlink {
        id: u32,
        target: Bytes,
        link: Bytes,
    },
    /// `data` is the rest of the packet after the name.
    Extended {
        id: u32,
        name: Bytes,
        data: Bytes,
    },
}

impl Request {
    /// The request id; `None` for Init, which has none.
    pub fn id(&self) -> Option<u32> {
        use Request as R;
        match self {
            R::Init { .. } => None,
            R::Open { id, .. }
            | R::Close { id, .. }
            | R::Read { id, .. }
            | R::Write { id, .. }
            | R::Lstat { id, .. }
            | R::Fstat { id, .. }
            | R::SetStat { id, .. }
            | R::FSetStat { id, .. }
            | R::OpenDir { id, .. }
            | R::ReadDir { id, .. }
            | R::Remove { id, .. }
            | R::MkDir { id, .. }
            | R::RmDir { id, .. }
            | R::RealPath { id, .. }
            | R::Stat { id, .. }
            | R::Rename { id, .. }
            | R::ReadLink { id, .. }
            | R::Symlink { id, .. }
            | R::Extended { id, .. } => Some(*id),
        }
    }

    /// The packet type byte.
    pub fn kind(&self) -> u8 {
        use Request as R;
        match self {
            R::Init { .. } => t::INIT,
            R::Open { .. } => t::OPEN,
            R::Close { .. } => t::CLOSE,
            R::Read { .. } => t::READ,
            R::Write { .. } => t::WRITE,
            R::Lstat { .. } => t::LSTAT,
            R::Fstat { .. } => t::FSTAT,
            R::SetStat { .. } => t::SETSTAT,
            R::FSetStat { .. } => t::FSETSTAT,
            R::OpenDir { .. } => t::OPENDIR,
            R::ReadDir { .. } => t::READDIR,
            R::Remove { .. } => t::REMOVE,
            R::MkDir { .. } => t::MKDIR,
            R::RmDir { .. } => t::RMDIR,
            R::RealPath { .. } => t::REALPATH,
            R::Stat { .. } => t::STAT,
            R::Rename { .. } => t::RENAME,
            R::ReadLink { .. } => t::READLINK,
            R::Symlink { .. } => t::SYMLINK,
            R::Extended { .. } => t::EXTENDED,
        }
    }

    /// Appends this request as one framed packet (length, type, body).
    pub fn encode(&self, out: &mut BytesMut) {
        use Request as R;
        let mut f = Frame::new(out, self.kind());
        match self {
            R::Init {
                version,
                extensions,
            } => {
                f.u32(*version);
                for (name, data) in extensions {
                    f.string(name).string(data);
                }
            }
            R::Open {
                id,
                path,
                flags,
                attrs,
            } => {
                f.u32(*id).string(path).u32(*flags);
                attrs.encode(f.out());
            }
            R::Read {
                id,
                handle,
                offset,
                len,
            } => {
                f.u32(*id).string(handle).u64(*offset).u32(*len);
            }
            R::Write {
                id,
                handle,
                offset,
                data,
            } => {
                f.u32(*id).string(handle).u64(*offset).string(data);
            }
            R::SetStat { id, path, attrs }
            | R::FSetStat {
                id,
                handle: path,
                attrs,
            }
            | R::MkDir { id, path, attrs } => {
                f.u32(*id).string(path);
                attrs.encode(f.out());
            }
            R::Close { id, handle: one }
            | R::Lstat { id, path: one }
            | R::Fstat { id, handle: one }
            | R::OpenDir { id, path: one }
            | R::ReadDir { id, handle: one }
            | R::Remove { id, path: one }
            | R::RmDir { id, path: one }
            | R::RealPath { id, path: one }
            | R::Stat { id, path: one }
            | R::ReadLink { id, path: one } => {
                f.u32(*id).string(one);
            }
            R::Rename { id, from: a, to: b }
            | R::Symlink {
                id,
                target: a,
                link: b,
            } => {
                f.u32(*id).string(a).string(b);
            }
            R::Extended { id, name, data } => {
                f.u32(*id).string(name).raw(data);
            }
        }
    }

    /// Reads one packet body (type byte first, no length), all of it.
    pub fn decode(packet: Bytes) -> Result<Request, Malformed> {
        let mut b = Body::new(&packet);
        let kind = b.u8("packet type")?;
        let request = match kind {
            t::INIT => {
                let version = b.u32("init version")?;
                Request::Init {
                    version,
                    extensions: b.pairs_to_end("init extension")?,
                }
            }
            t::EXTENDED => Request::Extended {
                id: b.u32("request id")?,
                name: b.string("extended request name")?,
                data: b.rest(),
            },
            _ => Self::decode_with_id(kind, &mut b)?,
        };
        b.end("bytes after the end of the request")?;
        Ok(request)
    }

    fn decode_with_id(kind: u8, b: &mut Body<'_>) -> Result<Request, Malformed> {
        if !(t::OPEN..=t::SYMLINK).contains(&kind) {
            return Err(Malformed("unknown request type"));
        }
        let id = b.u32("request id")?;
        let path = |b: &mut Body<'_>| b.string("path");
        let handle = |b: &mut Body<'_>| b.string("handle");
        Ok(match kind {
            t::OPEN => Request::Open {
                id,
                path: path(b)?,
                flags: b.u32("open flags")?,
                attrs: Attrs::decode(b)?,
            },
            t::CLOSE => Request::Close {
                id,
                handle: handle(b)?,
            },
            t::READ => Request::Read {
                id,
                handle: handle(b)?,
                offset: b.u64("read offset")?,
                len: b.u32("read length")?,
            },
            t::WRITE => Request::Write {
                id,
                handle: handle(b)?,
                offset: b.u64("write offset")?,
                data: b.string("write data")?,
            },
            t::LSTAT => Request::Lstat { id, path: path(b)? },
            t::FSTAT => Request::Fstat {
                id,
                handle: handle(b)?,
            },
            t::SETSTAT => Request::SetStat {
                id,
                path: path(b)?,
                attrs: Attrs::decode(b)?,
            },
            t::FSETSTAT => Request::FSetStat {
                id,
                handle: handle(b)?,
                attrs: Attrs::decode(b)?,
            },
            t::OPENDIR => Request::OpenDir { id, path: path(b)? },
            t::READDIR => Request::ReadDir {
                id,
                handle: handle(b)?,
            },
            t::REMOVE => Request::Remove { id, path: path(b)? },
            t::MKDIR => Request::MkDir {
                id,
                path: path(b)?,
                attrs: Attrs::decode(b)?,
            },
            t::RMDIR => Request::RmDir { id, path: path(b)? },
            t::REALPATH => Request::RealPath { id, path: path(b)? },
            t::STAT => Request::Stat { id, path: path(b)? },
            t::RENAME => Request::Rename {
                id,
                from: path(b)?,
                to: path(b)?,
            },
            t::READLINK => Request::ReadLink { id, path: path(b)? },
            t::SYMLINK => Request::Symlink {
                id,
                target: b.string("symlink target")?,
                link: b.string("symlink path")?,
            },
            _ => return Err(Malformed("unknown request type")),
        })
    }
}
