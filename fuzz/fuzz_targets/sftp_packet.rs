//! SFTP packets through warren-sftp's codec, both directions: any body
//! that decodes as a request (or a response) encodes to one framed packet
//! that `split_packet` cuts back out whole and that decodes to the same
//! value; the extension payloads warren reads round-trip the same way.
//!
//! Input: one packet body, type byte first (no length).
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use warren_sftp::{MAX_PACKET, Request, Response, ext, split_packet};

/// The body of the one framed packet in `framed`.
fn body(framed: BytesMut) -> Bytes {
    let mut buf = framed;
    let body = split_packet(&mut buf, usize::MAX)
        .expect("an encoded packet frames")
        .expect("an encoded packet is whole");
    assert!(buf.is_empty(), "encode wrote one packet");
    body
}

fn extension_payloads(data: &Bytes) {
    if let Ok((a, b)) = ext::parse_two_paths(data.clone()) {
        assert_eq!(ext::two_paths(&a, &b), data);
    }
    if let Ok(s) = ext::parse_one_string(data.clone()) {
        assert_eq!(ext::one_string(&s), data);
    }
    if let Ok(limits) = ext::Limits::decode(data.clone()) {
        assert_eq!(ext::Limits::decode(limits.encode()), Ok(limits));
    }
    if let Ok(vfs) = ext::Statvfs::decode(data.clone()) {
        assert_eq!(ext::Statvfs::decode(vfs.encode()), Ok(vfs));
    }
}

fuzz_target!(|data: &[u8]| {
    let packet = Bytes::copy_from_slice(data);
    if let Ok(request) = Request::decode(packet.clone()) {
        let mut out = BytesMut::new();
        request.encode(&mut out);
        assert!(out.len() <= data.len() + 4 + 8 * 1024, "no blow-up");
        assert_eq!(Request::decode(body(out)).as_ref(), Ok(&request));
        if let Request::Extended { data, .. } = &request {
            extension_payloads(data);
        }
    }
    if let Ok(response) = Response::decode(packet.clone()) {
        let mut out = BytesMut::new();
        response.encode(&mut out);
        assert_eq!(Response::decode(body(out)).as_ref(), Ok(&response));
        if let Response::ExtendedReply { data, .. } = &response {
            extension_payloads(data);
        }
    }
    // Framed whole, the same body comes back out of a receive buffer.
    let mut framed = BytesMut::new();
    framed.extend_from_slice(&u32::try_from(data.len()).unwrap_or(u32::MAX).to_be_bytes());
    framed.extend_from_slice(data);
    match split_packet(&mut framed, MAX_PACKET) {
        Ok(Some(body)) => assert_eq!(body, packet),
        Ok(None) => panic!("a whole packet was not split"),
        Err(_) => assert!(data.is_empty() || data.len() > MAX_PACKET),
    }
});
