//! Server-to-client packets (draft sections 4 and 7).

use bytes::{Bytes, BytesMut};

use crate::codec::{Body, Frame, u32_len};
use crate::packet_type as t;
use crate::{Attrs, Malformed, NameEntry};

/// Server -> client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    Version {
        version: u32,
        extensions: Vec<(Bytes, Bytes)>,
    },
    Status {
        id: u32,
        code: u32,
        message: Bytes,
        language: Bytes,
    },
    Handle {
        id: u32,
        handle: Bytes,
    },
    Data {
        id: u32,
        data: Bytes,
    },
    Name {
        id: u32,
        entries: Vec<NameEntry>,
    },
    Attrs {
        id: u32,
        attrs: Attrs,
    },
    /// `data` is the rest of the packet.
    ExtendedReply {
        id: u32,
        data: Bytes,
    },
}

impl Response {
    /// The id of the request answered; `None` for Version.
    pub fn id(&self) -> Option<u32> {
        use Response as R;
        match self {
            R::Version { .. } => None,
            R::Status { id, .. }
            | R::Handle { id, .. }
            | R::Data { id, .. }
            | R::Name { id, .. }
            | R::Attrs { id, .. }
            | R::ExtendedReply { id, .. } => Some(*id),
        }
    }

    /// A status reply whose message is [`crate::status::describe`]'s text
    /// for `code`, language empty (as OpenSSH's sftp-server sends it).
    pub fn status(id: u32, code: u32) -> Response {
        Response::Status {
            id,
            code,
            message: Bytes::from_static(crate::status::describe(code).as_bytes()),
            language: Bytes::new(),
        }
    }

    /// The packet type byte.
    pub fn kind(&self) -> u8 {
        use Response as R;
        match self {
            R::Version { .. } => t::VERSION,
            R::Status { .. } => t::STATUS,
            R::Handle { .. } => t::HANDLE,
            R::Data { .. } => t::DATA,
            R::Name { .. } => t::NAME,
            R::Attrs { .. } => t::ATTRS,
            R::ExtendedReply { .. } => t::EXTENDED_REPLY,
        }
    }

    /// Appends this response as one framed packet (length, type, body).
    pub fn encode(&self, out: &mut BytesMut) {
        use Response as R;
        let mut f = Frame::new(out, self.kind());
        match self {
            R::Version {
                version,
                extensions,
            } => {
                f.u32(*version);
                for (name, data) in extensions {
                    f.string(name).string(data);
                }
            }
            R::Status {
                id,
                code,
                message,
                language,
            } => {
                f.u32(*id).u32(*code).string(message).string(language);
            }
            R::Handle { id, handle: s } | R::Data { id, data: s } => {
                f.u32(*id).string(s);
            }
            R::Name { id, entries } => {
                f.u32(*id).u32(u32_len(entries.len()));
                for entry in entries {
                    entry.encode(f.out());
                }
            }
            R::Attrs { id, attrs } => {
                f.u32(*id);
                attrs.encode(f.out());
            }
            R::ExtendedReply { id, data } => {
                f.u32(*id).raw(data);
            }
        }
    }

    /// Reads one packet body (type byte first, no length), all of it.
    ///
    /// A STATUS without its message and language (servers before the
    /// draft's version 3 text sent none) reads as both empty.
    pub fn decode(packet: Bytes) -> Result<Response, Malformed> {
        let mut b = Body::new(&packet);
        let kind = b.u8("packet type")?;
        let response = match kind {
            t::VERSION => {
                let version = b.u32("version")?;
                Response::Version {
                    version,
                    extensions: b.pairs_to_end("version extension")?,
                }
            }
            t::STATUS => {
                let (id, code) = (b.u32("response id")?, b.u32("status code")?);
                let message = if b.is_empty() {
                    Bytes::new()
                } else {
                    b.string("status message")?
                };
                let language = if b.is_empty() {
                    Bytes::new()
                } else {
                    b.string("status language")?
                };
                Response::Status {
                    id,
                    code,
                    message,
                    language,
                }
            }
            t::HANDLE => Response::Handle {
                id: b.u32("response id")?,
                handle: b.string("handle")?,
            },
            t::DATA => Response::Data {
                id: b.u32("response id")?,
                data: b.string("data")?,
            },
            t::NAME => {
                let id = b.u32("response id")?;
                let count = b.u32("name count")?;
                Response::Name {
                    id,
                    entries: NameEntry::decode_list(&mut b, count)?,
                }
            }
            t::ATTRS => Response::Attrs {
                id: b.u32("response id")?,
                attrs: Attrs::decode(&mut b)?,
            },
            t::EXTENDED_REPLY => Response::ExtendedReply {
                id: b.u32("response id")?,
                data: b.rest(),
            },
            _ => return Err(Malformed("unknown response type")),
        };
        b.end("bytes after the end of the response")?;
        Ok(response)
    }
}
