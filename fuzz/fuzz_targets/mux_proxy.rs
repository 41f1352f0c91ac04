//! The ControlMaster's proxy mode (`ssh -O proxy`): packets framed by a
//! client are cut from any byte stream without panicking, each message
//! decodes or is refused, and a message framed again decodes to itself.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use warren_core::mux::proxy::{Down, decode_packet, encode_packet};

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    while let Ok(Some(message)) = decode_packet(&mut buf) {
        let _ = Down::decode(&message);
        if message.is_empty() {
            continue;
        }
        let mut again = BytesMut::from(&encode_packet(&message)[..]);
        assert_eq!(
            decode_packet(&mut again).ok().flatten().as_deref(),
            Some(&message[..])
        );
    }
});
