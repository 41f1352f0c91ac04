//! Multiplexing messages (OpenSSH's mux protocol): any decoded request or
//! reply encodes to bytes that decode to the same message; a forward a
//! client asks for converts to a spec and back unchanged.
//!
//! Input: the first byte picks request (even) or reply (odd), the rest is a
//! message body (after the length).
#![no_main]

use libfuzzer_sys::fuzz_target;
use warren_core::mux::proto::{Reply, Request};
use warren_core::mux::{from_mux, to_mux};

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    if which % 2 == 1 {
        if let Ok(reply) = Reply::decode(body) {
            assert_eq!(Reply::decode(&reply.encode()), Ok(reply));
        }
        return;
    }
    let Ok(request) = Request::decode(body) else {
        return;
    };
    assert_eq!(Request::decode(&request.encode()).as_ref(), Ok(&request));
    if let Request::OpenForward { forward, .. } | Request::CloseForward { forward, .. } = &request
        && let Ok(spec) = from_mux(forward)
    {
        let _ = spec.to_string();
        assert_eq!(from_mux(&to_mux(&spec)), Ok(spec));
    }
});
