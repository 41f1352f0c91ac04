//! The SFTP packets `warren serve` reads: russh-sftp decodes each packet
//! (after its length) and warren reads the strings of the OpenSSH
//! extensions it serves. A decoded packet encodes to bytes that decode and
//! encode to the same bytes (packets have no equality; their `Debug` text
//! is compared too); the extension strings read back what was written.
//! Init and Version carry their extensions in a `HashMap`, whose order
//! changes from map to map, so those are compared as maps.
//!
//! Input: one packet body, type byte first.
#![no_main]

use std::collections::HashMap;

use bytes::{BufMut, Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use russh_sftp::protocol::Packet;
use warren_server::sftp_ssh_string;

/// Packet bytes without the length in front.
fn body(encoded: &Bytes) -> Bytes {
    let (len, body) = encoded.split_at(4);
    assert_eq!(
        u32::from_be_bytes(len.try_into().expect("four bytes")) as usize,
        body.len()
    );
    Bytes::copy_from_slice(body)
}

/// The extension strings (`posix-rename`, `hardlink`, `fsync` data) warren
/// reads, written back as SSH strings, read the same.
fn assert_strings_round_trip(data: &[u8]) {
    let mut r = data;
    let mut strings = Vec::new();
    while let Ok(s) = sftp_ssh_string(&mut r) {
        strings.push(s);
    }
    let mut written = BytesMut::new();
    for s in &strings {
        written.put_u32(u32::try_from(s.len()).expect("a string read fits u32"));
        written.put_slice(s.as_bytes());
    }
    let mut r = &written[..];
    for s in &strings {
        assert_eq!(sftp_ssh_string(&mut r).as_ref(), Ok(s));
    }
    assert!(r.is_empty());
}

/// The version and extensions of an Init or Version packet.
fn handshake(packet: &Packet) -> Option<(u32, HashMap<String, String>)> {
    match packet {
        Packet::Init(p) => Some((p.version, p.extensions.clone())),
        Packet::Version(p) => Some((p.version, p.extensions.clone())),
        _ => None,
    }
}

fuzz_target!(|data: &[u8]| {
    assert_strings_round_trip(data);
    let Ok(packet) = Packet::try_from(&mut Bytes::copy_from_slice(data)) else {
        return;
    };
    let debug = format!("{packet:?}");
    let first = handshake(&packet);
    if let Packet::Extended(extended) = &packet {
        assert_strings_round_trip(&extended.data);
    }
    let Ok(encoded) = Bytes::try_from(packet) else {
        return;
    };
    let again = Packet::try_from(&mut body(&encoded)).expect("an encoded packet decodes");
    if first.is_some() {
        assert_eq!(handshake(&again), first);
        return;
    }
    assert_eq!(format!("{again:?}"), debug);
    let reencoded = Bytes::try_from(again).expect("a decoded packet encodes");
    assert_eq!(reencoded, encoded);
});
