//! ssh-agent messages: frames cut from any byte stream, in any pieces, are
//! the same frames; a decoded request or answer encodes to a message that
//! decodes and encodes to the same bytes (requests hold keys, which have no
//! equality, so their encodings are compared).
//!
//! Input: a count N (mod 8), N chunk lengths, then a stream of frames. Each
//! frame is decoded as a request (what the agent reads) and as an answer
//! (what the client reads).
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use warren_core::agent::proto::{Request, Response, decode_frame};
use warren_fuzz::chunks;

/// Frames cut from `pieces` fed one after another, and whether the stream
/// ended in an error.
fn frames(pieces: &[&[u8]]) -> (Vec<Vec<u8>>, bool) {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            match decode_frame(&mut buf) {
                Ok(Some(frame)) => out.push(frame.to_vec()),
                Ok(None) => break,
                Err(_) => return (out, true),
            }
        }
    }
    (out, false)
}

/// The one frame in an encoded message.
fn unframe(message: &[u8]) -> Vec<u8> {
    let mut buf = BytesMut::from(message);
    let frame = decode_frame(&mut buf).expect("an encoded message frames");
    assert!(buf.is_empty(), "bytes after the frame");
    frame.expect("a whole frame").to_vec()
}

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n % 8).min(rest.len());
    let (head, input) = rest.split_at(n);
    let whole = frames(&[input]);
    assert_eq!(whole, frames(&chunks(head, input)));

    for body in &whole.0 {
        // An add with an extension constraint this agent does not know is
        // refused, and its contents cannot be written back.
        let unknown_extension = |r: &Request| matches!(r, Request::Add { constraints, .. } if constraints.unknown_extension.is_some());
        if let Ok(request) = Request::decode(body)
            && !unknown_extension(&request)
            && let Ok(encoded) = request.encode()
        {
            let again = Request::decode(&unframe(&encoded)).expect("an encoded request decodes");
            let reencoded = again.encode().expect("a decoded request encodes");
            assert_eq!(encoded, reencoded, "{request:?}");
        }
        if let Ok(response) = Response::decode(body) {
            let again = Response::decode(&unframe(&response.encode()));
            assert_eq!(again.ok(), Some(response));
        }
    }
});
