//! The session loop driven through a pipe with warren-sftp's codec: the
//! ordering rule holds with many requests in flight, malformed packets are
//! answered or end the session as documented.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests: failing loudly is the point"
)]

use std::path::Path;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, DuplexStream};
use tokio::task::JoinHandle;
use warren_sftp::{Attrs, MAX_PACKET, Request, Response, open_flags, split_packet, status};

use super::serve::{SessionEnd, serve};

struct Client {
    io: DuplexStream,
    buf: BytesMut,
    server: JoinHandle<Result<(), SessionEnd>>,
    next: u32,
}

impl Client {
    async fn start(home: &Path) -> Client {
        let (io, theirs) = tokio::io::duplex(1 << 20);
        let server = tokio::spawn(serve(theirs, home.to_path_buf()));
        let mut c = Client {
            io,
            buf: BytesMut::new(),
            server,
            next: 0,
        };
        c.send(&Request::Init {
            version: 3,
            extensions: vec![],
        })
        .await;
        assert!(matches!(
            c.recv().await,
            Some(Response::Version { version: 3, .. })
        ));
        c
    }

    fn id(&mut self) -> u32 {
        self.next += 1;
        self.next
    }

    async fn send(&mut self, r: &Request) {
        let mut out = BytesMut::new();
        r.encode(&mut out);
        self.io.write_all(&out).await.unwrap();
    }

    async fn send_raw(&mut self, body: &[u8]) {
        let len = u32::try_from(body.len()).unwrap().to_be_bytes();
        self.io.write_all(&len).await.unwrap();
        self.io.write_all(body).await.unwrap();
    }

    /// The next reply; `None` once the server closed the stream.
    async fn recv(&mut self) -> Option<Response> {
        loop {
            if let Some(p) = split_packet(&mut self.buf, MAX_PACKET).unwrap() {
                return Some(Response::decode(p).unwrap());
            }
            if self.io.read_buf(&mut self.buf).await.unwrap() == 0 {
                return None;
            }
        }
    }

    async fn handle(&mut self, path: &[u8], flags: u32) -> Bytes {
        let id = self.id();
        self.send(&Request::Open {
            id,
            path: Bytes::copy_from_slice(path),
            flags,
            attrs: Attrs::default(),
        })
        .await;
        match self.recv().await {
            Some(Response::Handle { handle, .. }) => handle,
            other => panic!("open: {other:?}"),
        }
    }
}

fn code_of(r: &Response) -> u32 {
    match r {
        Response::Status { code, .. } => *code,
        other => panic!("not a status: {other:?}"),
    }
}

const RW: u32 = open_flags::READ | open_flags::WRITE | open_flags::CREAT | open_flags::TRUNC;

// A barrier (FSETSTAT truncating the file) sent after 32 pipelined writes
// answers after all of them and truncates what they wrote; had it run
// beside them, a write would land after it and the file would be longer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_barrier_waits_for_the_writes_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Client::start(dir.path()).await;
    let handle = c.handle(b"f", RW).await;
    let chunk = Bytes::from(vec![7u8; 64 * 1024]);
    let mut writes = Vec::new();
    for i in 0..32u64 {
        let id = c.id();
        writes.push(id);
        c.send(&Request::Write {
            id,
            handle: handle.clone(),
            offset: i * chunk.len() as u64,
            data: chunk.clone(),
        })
        .await;
    }
    let truncate = c.id();
    c.send(&Request::FSetStat {
        id: truncate,
        handle: handle.clone(),
        attrs: Attrs {
            size: Some(10),
            ..Attrs::default()
        },
    })
    .await;
    let stat = c.id();
    c.send(&Request::Fstat {
        id: stat,
        handle: handle.clone(),
    })
    .await;
    for n in 0..32 {
        let reply = c.recv().await.unwrap();
        assert_eq!(code_of(&reply), status::OK, "{reply:?}");
        let id = reply.id().unwrap();
        assert!(
            writes.contains(&id),
            "reply {n} is {reply:?}, not a write's"
        );
        writes.retain(|w| *w != id);
    }
    let reply = c.recv().await.unwrap();
    assert_eq!((reply.id(), code_of(&reply)), (Some(truncate), status::OK));
    match c.recv().await.unwrap() {
        Response::Attrs { id, attrs } => {
            assert_eq!(id, stat);
            assert_eq!(attrs.size, Some(10), "the FSTAT after the barrier sees it");
        }
        other => panic!("fstat: {other:?}"),
    }
    assert_eq!(std::fs::metadata(dir.path().join("f")).unwrap().len(), 10);
}

// A READ pipelined right behind an overlapping WRITE returns what the
// write wrote, every time, with many such pairs in flight at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_behind_an_overlapping_write_sees_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Client::start(dir.path()).await;
    let handle = c.handle(b"f", RW).await;
    let mut want = std::collections::HashMap::new();
    for i in 0..40u8 {
        let data = Bytes::from(vec![i; 200_000]);
        let (w, r) = (c.id(), c.id());
        // Every pair rewrites the same bytes.
        c.send(&Request::Write {
            id: w,
            handle: handle.clone(),
            offset: 500,
            data: data.clone(),
        })
        .await;
        c.send(&Request::Read {
            id: r,
            handle: handle.clone(),
            offset: 0,
            len: 250_000,
        })
        .await;
        want.insert(r, i);
    }
    for _ in 0..80 {
        match c.recv().await.unwrap() {
            Response::Data { id, data } => {
                let i = want.remove(&id).unwrap();
                assert_eq!(data.len(), 200_500);
                assert!(data[..500].iter().all(|b| *b == 0));
                assert!(
                    data[500..].iter().all(|b| *b == i),
                    "read {id} saw another write"
                );
            }
            Response::Status { code, .. } => assert_eq!(code, status::OK),
            other => panic!("{other:?}"),
        }
    }
    assert!(want.is_empty());
}

// Overlapping writes land in the order sent: after 64 pipelined writes of
// the same range, a read finds the last one's bytes, none of the others'.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_writes_land_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Client::start(dir.path()).await;
    let handle = c.handle(b"f", RW).await;
    for i in 0..64u8 {
        let id = c.id();
        c.send(&Request::Write {
            id,
            handle: handle.clone(),
            offset: u64::from(i % 4),
            data: Bytes::from(vec![i; 250_000]),
        })
        .await;
    }
    for _ in 0..64 {
        assert_eq!(code_of(&c.recv().await.unwrap()), status::OK);
    }
    let content = std::fs::read(dir.path().join("f")).unwrap();
    assert_eq!(content.len(), 250_003);
    assert!(
        content[3..].iter().all(|b| *b == 63),
        "a write landed out of order"
    );
}

// Replies leave in request order even when later requests finish first:
// OpenSSH 9.2's scp truncates a file at the first reordered reply. Big
// reads alternate with tiny ones and stats, 64 in flight, three rounds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_leave_in_request_order() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), vec![5u8; 4 << 20]).unwrap();
    let mut c = Client::start(dir.path()).await;
    let handle = c.handle(b"f", open_flags::READ).await;
    for _ in 0..3 {
        let mut sent = Vec::new();
        for i in 0..64u64 {
            let id = c.id();
            sent.push(id);
            let request = match i % 3 {
                0 => Request::Read {
                    id,
                    handle: handle.clone(),
                    offset: i * 60_000,
                    len: 255 * 1024,
                },
                1 => Request::Read {
                    id,
                    handle: handle.clone(),
                    offset: i,
                    len: 1,
                },
                _ => Request::Lstat {
                    id,
                    path: Bytes::from_static(b"f"),
                },
            };
            c.send(&request).await;
        }
        let mut got = Vec::new();
        for _ in 0..64 {
            got.push(c.recv().await.unwrap().id().unwrap());
        }
        assert_eq!(got, sent);
    }
}

// A truncated request gets BAD_MESSAGE, an unknown type OP_UNSUPPORTED,
// and the session goes on; a packet with no id ends it.
#[tokio::test]
async fn malformed_packets_are_answered_by_id_or_end_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Client::start(dir.path()).await;
    // STAT (17), id 5, a path length of 100 with 1 byte behind it.
    c.send_raw(&[17, 0, 0, 0, 5, 0, 0, 0, 100, b'x']).await;
    let reply = c.recv().await.unwrap();
    assert_eq!(
        (reply.id(), code_of(&reply)),
        (Some(5), status::BAD_MESSAGE)
    );
    c.send_raw(&[99, 0, 0, 0, 6]).await;
    let reply = c.recv().await.unwrap();
    assert_eq!(
        (reply.id(), code_of(&reply)),
        (Some(6), status::OP_UNSUPPORTED)
    );
    let id = c.id();
    c.send(&Request::Stat {
        id,
        path: Bytes::new(),
    })
    .await;
    assert!(matches!(c.recv().await, Some(Response::Attrs { .. })));
    c.send_raw(&[17, 0]).await;
    assert_eq!(c.recv().await, None, "the server closed the stream");
    let ended = c.server.await.unwrap();
    assert!(matches!(ended, Err(SessionEnd::NoId)), "{ended:?}");
}

#[tokio::test]
async fn a_session_must_begin_with_init() {
    let dir = tempfile::tempdir().unwrap();
    let (mut io, theirs) = tokio::io::duplex(1 << 16);
    let server = tokio::spawn(serve(theirs, dir.path().to_path_buf()));
    let mut out = BytesMut::new();
    Request::Stat {
        id: 1,
        path: Bytes::new(),
    }
    .encode(&mut out);
    io.write_all(&out).await.unwrap();
    assert!(matches!(server.await.unwrap(), Err(SessionEnd::NoInit)));
}

// Closing the stream with requests in flight: each is answered before the
// server closes its side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_flight_are_answered_after_the_client_closes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), vec![1u8; 100_000]).unwrap();
    let mut c = Client::start(dir.path()).await;
    let handle = c.handle(b"f", open_flags::READ).await;
    for i in 0..64u64 {
        let id = c.id();
        c.send(&Request::Read {
            id,
            handle: handle.clone(),
            offset: i * 1000,
            len: 1000,
        })
        .await;
    }
    c.io.shutdown().await.unwrap();
    let mut n = 0;
    while let Some(reply) = c.recv().await {
        assert!(
            matches!(reply, Response::Data { ref data, .. } if data.len() == 1000),
            "{reply:?}"
        );
        n += 1;
    }
    assert_eq!(n, 64);
    assert!(c.server.await.unwrap().is_ok());
}
