//! `warren sync --server` frames from any bytes: decoding never panics,
//! and every frame that decodes encodes back to exactly its own bytes (the
//! encoding is canonical, so the two sides can never disagree on a frame).
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use warren_sync::proto;

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    loop {
        let before = buf.clone();
        let Ok(Some(msg)) = proto::decode(&mut buf) else {
            return;
        };
        let used = before.len() - buf.len();
        let mut again = BytesMut::new();
        msg.encode(&mut again)
            .expect("a decoded frame is under the cap");
        assert_eq!(&again[..], &before[..used], "re-encoding {msg:?}");
    }
});
