#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests: failing loudly is the point"
)]

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use crate::ext::{self, Limits, Statvfs};
use crate::{Attrs, Malformed, NameEntry, Request, Response, open_flags, split_packet, status};

fn b(s: &[u8]) -> Bytes {
    Bytes::copy_from_slice(s)
}

fn encoded_request(r: &Request) -> Vec<u8> {
    let mut out = BytesMut::new();
    r.encode(&mut out);
    out.to_vec()
}

fn encoded_response(r: &Response) -> Vec<u8> {
    let mut out = BytesMut::new();
    r.encode(&mut out);
    out.to_vec()
}

/// The body of one framed packet (checks the length is right).
fn body(framed: &[u8]) -> Bytes {
    let mut buf = BytesMut::from(framed);
    let body = split_packet(&mut buf, usize::MAX).unwrap().unwrap();
    assert!(buf.is_empty(), "exactly one packet");
    body
}

// OpenSSH's sftp client opens with SSH2_FXP_INIT version 3 and no
// extensions (sftp-client.c `sftp_init`).
#[test]
fn openssh_init_packet() {
    let bytes = [0, 0, 0, 5, 1, 0, 0, 0, 3];
    let init = Request::Init {
        version: 3,
        extensions: vec![],
    };
    assert_eq!(encoded_request(&init), bytes);
    assert_eq!(Request::decode(body(&bytes)), Ok(init));
}

// sftp-server's `send_status` for version 3: id, code, message "Success",
// an empty language tag.
#[test]
fn openssh_status_packet() {
    let bytes = [
        &[0, 0, 0, 0x18, 101, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 7][..],
        b"Success",
        &[0, 0, 0, 0],
    ]
    .concat();
    let ok = Response::Status {
        id: 7,
        code: status::OK,
        message: b(b"Success"),
        language: Bytes::new(),
    };
    assert_eq!(encoded_response(&ok), bytes);
    assert_eq!(Response::decode(body(&bytes)), Ok(ok));
}

// sftp-server's VERSION begins with the version, then name/data pairs.
#[test]
fn openssh_version_packet_with_an_extension() {
    let mut bytes = vec![0, 0, 0, 0x26, 2, 0, 0, 0, 3, 0, 0, 0, 24];
    bytes.extend_from_slice(b"posix-rename@openssh.com");
    bytes.extend_from_slice(&[0, 0, 0, 1, b'1']);
    assert_eq!(bytes.len() - 4, 0x26);
    let version = Response::decode(body(&bytes)).unwrap();
    assert_eq!(
        version,
        Response::Version {
            version: 3,
            extensions: vec![(b(ext::POSIX_RENAME.as_bytes()), b(b"1"))],
        }
    );
    assert_eq!(encoded_response(&version), bytes);
}

// An OPEN as OpenSSH's client sends it for `put`: WRITE|CREAT|TRUNC with
// the permissions attribute.
#[test]
fn open_with_permissions() {
    let bytes = [
        &[0, 0, 0, 0x19, 3, 0, 0, 0, 1, 0, 0, 0, 4][..],
        b"a\xffb\0",
        &[0, 0, 0, 0x1a, 0, 0, 0, 4, 0, 0, 0x81, 0xa4],
    ]
    .concat();
    let open = Request::decode(body(&bytes)).unwrap();
    assert_eq!(
        open,
        Request::Open {
            id: 1,
            path: b(b"a\xffb\0"),
            flags: open_flags::WRITE | open_flags::CREAT | open_flags::TRUNC,
            attrs: Attrs {
                permissions: Some(0o100644),
                ..Attrs::default()
            },
        }
    );
    assert_eq!(encoded_request(&open), bytes);
}

#[test]
fn symlink_keeps_openssh_order() {
    let link = Request::Symlink {
        id: 9,
        target: b(b"T"),
        link: b(b"L"),
    };
    let bytes = encoded_request(&link);
    assert_eq!(&bytes[9..], &[0, 0, 0, 1, b'T', 0, 0, 0, 1, b'L']);
}

#[test]
fn trailing_bytes_and_short_packets_are_malformed() {
    let mut bytes = encoded_request(&Request::Stat {
        id: 1,
        path: b(b"/x"),
    });
    bytes.push(0);
    let extra = body(&[&[0, 0, 0, 12][..], &bytes[4..]].concat());
    assert!(Request::decode(extra).is_err());
    for cut in 0..(bytes.len() - 5) {
        let short = Bytes::copy_from_slice(&bytes[4..4 + cut]);
        assert!(Request::decode(short).is_err(), "cut at {cut}");
    }
    assert_eq!(
        Request::decode(b(&[250])),
        Err(Malformed("unknown request type"))
    );
    assert_eq!(
        Response::decode(b(&[3, 0, 0, 0, 1])),
        Err(Malformed("unknown response type"))
    );
}

#[test]
fn extended_data_is_the_rest_of_the_packet() {
    let request = Request::Extended {
        id: 4,
        name: b(ext::HARDLINK.as_bytes()),
        data: ext::two_paths(b"old", b"new"),
    };
    let decoded = Request::decode(body(&encoded_request(&request))).unwrap();
    assert_eq!(decoded, request);
    let Request::Extended { data, .. } = decoded else {
        unreachable!()
    };
    assert_eq!(ext::parse_two_paths(data).unwrap(), (b(b"old"), b(b"new")));
    assert!(ext::parse_two_paths(b(&[0, 0, 0, 1, b'a'])).is_err());
    assert!(ext::parse_one_string(b(&[0, 0, 0, 1, b'a', 0])).is_err());
    assert_eq!(
        ext::parse_one_string(ext::one_string(b"h\x80")).unwrap(),
        b(b"h\x80")
    );
}

#[test]
fn a_name_count_larger_than_the_packet_fails_without_allocating() {
    // u32::MAX entries announced in a 13-byte packet.
    let bytes = [104, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0];
    assert!(Response::decode(b(&bytes)).is_err());
    // The same for extended attribute pairs.
    let attrs = [105, 0, 0, 0, 1, 0x80, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
    assert!(Response::decode(b(&attrs)).is_err());
}

#[test]
fn unknown_attribute_flags_are_skipped() {
    // flags: size | 0x40 (v4's ACCESSTIME, not in v3): only the size is on
    // the wire.
    let bytes = [105, 0, 0, 0, 1, 0, 0, 0, 0x41, 0, 0, 0, 0, 0, 0, 0, 5];
    assert_eq!(
        Response::decode(b(&bytes)),
        Ok(Response::Attrs {
            id: 1,
            attrs: Attrs {
                size: Some(5),
                ..Attrs::default()
            }
        })
    );
}

#[test]
fn a_status_without_message_reads_as_empty() {
    let bytes = [101, 0, 0, 0, 2, 0, 0, 0, 1];
    assert_eq!(
        Response::decode(b(&bytes)),
        Ok(Response::Status {
            id: 2,
            code: status::EOF,
            message: Bytes::new(),
            language: Bytes::new(),
        })
    );
}

#[test]
fn decoded_strings_are_slices_of_the_packet() {
    let packet = body(&encoded_request(&Request::Write {
        id: 1,
        handle: b(b"h"),
        offset: 0,
        data: b(&[7; 100]),
    }));
    let range = packet.as_ptr_range();
    let Request::Write { data, .. } = Request::decode(packet.clone()).unwrap() else {
        unreachable!()
    };
    assert!(range.contains(&data.as_ptr()), "no copy");
}

#[test]
fn split_packet_waits_for_a_whole_packet() {
    let framed = encoded_request(&Request::Close {
        id: 3,
        handle: b(b"h"),
    });
    let mut buf = BytesMut::new();
    for (i, byte) in framed.iter().enumerate() {
        assert_eq!(split_packet(&mut buf, 1024), Ok(None), "after {i} bytes");
        buf.extend_from_slice(&[*byte]);
    }
    buf.extend_from_slice(&framed[..2]);
    let one = split_packet(&mut buf, 1024).unwrap().unwrap();
    assert_eq!(one, &framed[4..]);
    assert_eq!(&buf[..], &framed[..2], "the next packet's start is kept");
}

#[test]
fn split_packet_refuses_zero_and_oversized_lengths() {
    let mut zero = BytesMut::from(&[0u8, 0, 0, 0, 1][..]);
    assert!(split_packet(&mut zero, 1024).is_err());
    let mut big = BytesMut::from(&[0u8, 0, 4, 1][..]);
    assert!(split_packet(&mut big, 1024).is_err());
    let mut at_max = BytesMut::from(&[0u8, 0, 4, 0][..]);
    assert_eq!(split_packet(&mut at_max, 1024), Ok(None));
}

#[test]
fn extension_replies_round_trip() {
    let limits = Limits {
        max_packet: 1,
        max_read: 2,
        max_write: 3,
        max_open_handles: 4,
    };
    assert_eq!(Limits::decode(limits.encode()), Ok(limits));
    assert_eq!(limits.encode().len(), 32);
    let vfs = Statvfs {
        bsize: 4096,
        namemax: 255,
        ..Statvfs::default()
    };
    assert_eq!(vfs.encode().len(), 88);
    assert_eq!(Statvfs::decode(vfs.encode()), Ok(vfs));
    assert!(Limits::decode(b(&[0; 31])).is_err());
}

#[test]
fn file_types_from_permissions() {
    let with = |mode| Attrs {
        permissions: Some(mode),
        ..Attrs::default()
    };
    assert!(with(0o040755).is_dir());
    assert!(with(0o120777).is_symlink());
    assert!(with(0o100644).is_regular());
    assert!(!with(0o100644).is_dir());
    assert!(!Attrs::default().is_regular());
}

#[test]
fn describe_statuses() {
    assert_eq!(status::describe(status::NO_SUCH_FILE), "no such file");
    assert_eq!(
        status::describe(status::PERMISSION_DENIED),
        "permission denied"
    );
    assert_eq!(status::describe(99), "unknown status");
}

fn bytes_strategy() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..24).prop_map(Bytes::from)
}

fn pairs_strategy() -> impl Strategy<Value = Vec<(Bytes, Bytes)>> {
    proptest::collection::vec((bytes_strategy(), bytes_strategy()), 0..3)
}

fn attrs_strategy() -> impl Strategy<Value = Attrs> {
    (
        any::<Option<u64>>(),
        any::<Option<(u32, u32)>>(),
        any::<Option<u32>>(),
        any::<Option<(u32, u32)>>(),
        pairs_strategy(),
    )
        .prop_map(|(size, uid_gid, permissions, times, extended)| Attrs {
            size,
            uid_gid,
            permissions,
            times,
            extended,
        })
}

fn request_strategy() -> impl Strategy<Value = Request> {
    let s = bytes_strategy;
    prop_oneof![
        (any::<u32>(), pairs_strategy()).prop_map(|(version, extensions)| Request::Init {
            version,
            extensions
        }),
        (any::<u32>(), s(), any::<u32>(), attrs_strategy()).prop_map(|(id, path, flags, attrs)| {
            Request::Open {
                id,
                path,
                flags,
                attrs,
            }
        }),
        (any::<u32>(), s()).prop_map(|(id, handle)| Request::Close { id, handle }),
        (any::<u32>(), s(), any::<u64>(), any::<u32>()).prop_map(|(id, handle, offset, len)| {
            Request::Read {
                id,
                handle,
                offset,
                len,
            }
        }),
        (any::<u32>(), s(), any::<u64>(), s()).prop_map(|(id, handle, offset, data)| {
            Request::Write {
                id,
                handle,
                offset,
                data,
            }
        }),
        (any::<u32>(), s()).prop_map(|(id, path)| Request::Lstat { id, path }),
        (any::<u32>(), s()).prop_map(|(id, handle)| Request::Fstat { id, handle }),
        (any::<u32>(), s(), attrs_strategy()).prop_map(|(id, path, attrs)| Request::SetStat {
            id,
            path,
            attrs
        }),
        (any::<u32>(), s(), attrs_strategy()).prop_map(|(id, handle, attrs)| Request::FSetStat {
            id,
            handle,
            attrs
        }),
        (any::<u32>(), s()).prop_map(|(id, path)| Request::OpenDir { id, path }),
        (any::<u32>(), s()).prop_map(|(id, handle)| Request::ReadDir { id, handle }),
        (any::<u32>(), s()).prop_map(|(id, path)| Request::Remove { id, path }),
        (any::<u32>(), s(), attrs_strategy()).prop_map(|(id, path, attrs)| Request::MkDir {
            id,
            path,
            attrs
        }),
        (any::<u32>(), s()).prop_map(|(id, path)| Request::RmDir { id, path }),
        (any::<u32>(), s()).prop_map(|(id, path)| Request::RealPath { id, path }),
        (any::<u32>(), s()).prop_map(|(id, path)| Request::Stat { id, path }),
        (any::<u32>(), s(), s()).prop_map(|(id, from, to)| Request::Rename { id, from, to }),
        (any::<u32>(), s()).prop_map(|(id, path)| Request::ReadLink { id, path }),
        (any::<u32>(), s(), s()).prop_map(|(id, target, link)| Request::Symlink {
            id,
            target,
            link
        }),
        (any::<u32>(), s(), s()).prop_map(|(id, name, data)| Request::Extended { id, name, data }),
    ]
}

fn response_strategy() -> impl Strategy<Value = Response> {
    let s = bytes_strategy;
    let entry = (s(), s(), attrs_strategy()).prop_map(|(filename, longname, attrs)| NameEntry {
        filename,
        longname,
        attrs,
    });
    prop_oneof![
        (any::<u32>(), pairs_strategy()).prop_map(|(version, extensions)| Response::Version {
            version,
            extensions
        }),
        (any::<u32>(), any::<u32>(), s(), s()).prop_map(|(id, code, message, language)| {
            Response::Status {
                id,
                code,
                message,
                language,
            }
        }),
        (any::<u32>(), s()).prop_map(|(id, handle)| Response::Handle { id, handle }),
        (any::<u32>(), s()).prop_map(|(id, data)| Response::Data { id, data }),
        (any::<u32>(), proptest::collection::vec(entry, 0..4))
            .prop_map(|(id, entries)| Response::Name { id, entries }),
        (any::<u32>(), attrs_strategy()).prop_map(|(id, attrs)| Response::Attrs { id, attrs }),
        (any::<u32>(), s()).prop_map(|(id, data)| Response::ExtendedReply { id, data }),
    ]
}

proptest! {
    #[test]
    fn requests_round_trip(request in request_strategy()) {
        let framed = encoded_request(&request);
        prop_assert_eq!(Request::decode(body(&framed)), Ok(request));
    }

    #[test]
    fn responses_round_trip(response in response_strategy()) {
        let framed = encoded_response(&response);
        prop_assert_eq!(Response::decode(body(&framed)), Ok(response));
    }

    #[test]
    fn decoding_never_panics_and_what_decodes_re_encodes(bytes: Vec<u8>) {
        if let Ok(request) = Request::decode(Bytes::from(bytes.clone())) {
            prop_assert_eq!(Request::decode(body(&encoded_request(&request))), Ok(request));
        }
        if let Ok(response) = Response::decode(Bytes::from(bytes)) {
            prop_assert_eq!(Response::decode(body(&encoded_response(&response))), Ok(response));
        }
    }

    #[test]
    fn two_paths_round_trip(a in bytes_strategy(), c in bytes_strategy()) {
        prop_assert_eq!(ext::parse_two_paths(ext::two_paths(&a, &c)), Ok((a, c)));
    }
}
