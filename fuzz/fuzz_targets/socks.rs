//! The SOCKS4/4a/5 handshake: fed in random pieces it gives the same
//! replies, request or error and leftover as fed at once; a request, sent
//! again the way a client would send it, decodes to the same request.
//!
//! Input: a count N (mod 8), N chunk lengths, then the client's bytes.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use warren_core::forward::socks::{
    Failure, Handshake, Request, Step, Target, Version, failure_reply, success_reply,
};
use warren_fuzz::chunks;

/// Everything one handshake produced.
#[derive(Debug, PartialEq)]
struct Outcome {
    replies: Vec<Vec<u8>>,
    /// The request, or the error's message and the reply it asks for;
    /// `None` when the input ran out first.
    result: Option<Result<Request, (String, Option<Vec<u8>>)>>,
    /// Bytes not consumed, fed or not.
    leftover: Vec<u8>,
}

fn feed(pieces: &[&[u8]]) -> Outcome {
    let mut handshake = Handshake::new();
    let mut buf = BytesMut::new();
    let mut replies = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        buf.extend_from_slice(piece);
        loop {
            let result = match handshake.advance(&mut buf) {
                Ok(None) => break,
                Ok(Some(Step::Reply(r))) => {
                    replies.push(r.to_vec());
                    continue;
                }
                Ok(Some(Step::Done(request))) => Ok(request),
                Err(e) => Err((e.to_string(), e.reply().map(|r| r.to_vec()))),
            };
            for rest in &pieces[i + 1..] {
                buf.extend_from_slice(rest);
            }
            // Once finished, nothing more is consumed.
            assert!(matches!(handshake.advance(&mut buf), Ok(None)));
            return Outcome {
                replies,
                result: Some(result),
                leftover: buf.to_vec(),
            };
        }
    }
    Outcome {
        replies,
        result: None,
        leftover: buf.to_vec(),
    }
}

/// The bytes a client sends for `request`.
fn client_bytes(request: &Request) -> Vec<u8> {
    let port = request.target.port().to_be_bytes();
    match (request.version, &request.target) {
        (Version::V4, Target::Ip(addr)) => {
            let std::net::IpAddr::V4(ip) = addr.ip() else {
                panic!("SOCKS4 request for an IPv6 address: {request:?}");
            };
            [&[4, 1][..], &port, &ip.octets(), b"user\0"].concat()
        }
        (Version::V4a, Target::Domain(name, _)) => [
            &[4, 1][..],
            &port,
            &[0, 0, 0, 7],
            b"\0",
            name.as_bytes(),
            b"\0",
        ]
        .concat(),
        (Version::V5, target) => {
            let address = match target {
                Target::Ip(std::net::SocketAddr::V4(a)) => [&[1][..], &a.ip().octets()].concat(),
                Target::Ip(std::net::SocketAddr::V6(a)) => [&[4][..], &a.ip().octets()].concat(),
                Target::Domain(name, _) => {
                    let len = u8::try_from(name.len()).expect("a SOCKS5 name fits 255 bytes");
                    [&[3, len][..], name.as_bytes()].concat()
                }
            };
            [&[5, 2, 2, 0, 5, 1, 0][..], &address, &port].concat()
        }
        _ => panic!("impossible request {request:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n % 8).min(rest.len());
    let (head, input) = rest.split_at(n);
    let whole = feed(&[input]);
    let split = feed(&chunks(head, input));
    assert_eq!(whole, split);

    let Some(Ok(request)) = &whole.result else {
        return;
    };
    let _ = (
        request.target.to_string(),
        request.target.host(),
        request.version.to_string(),
    );
    let _ = success_reply(request.version, "[::1]:22".parse().expect("address"));
    let _ = failure_reply(request.version, Failure::HostUnreachable);
    let again = feed(&[&client_bytes(request)]);
    assert_eq!(again.result, Some(Ok(request.clone())), "{request:?}");
    assert!(again.leftover.is_empty());
});
