//! The codec against the real peer: OpenSSH's `sftp-server` run on pipes
//! in a temporary directory, driven packet by packet. Every request warren
//! encodes is read by OpenSSH, and every reply OpenSSH sends decodes.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{Read as _, Write as _};
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use bytes::{Bytes, BytesMut};
use warren_sftp::ext::{self, Limits, Statvfs};
use warren_sftp::{Attrs, MAX_PACKET, Request, Response, VERSION, open_flags, status};

const SFTP_SERVER: &str = "/usr/lib/openssh/sftp-server";

/// sftp-server on pipes, killed on drop.
struct Server {
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
    next_id: u32,
}

impl Server {
    fn start(dir: &Path) -> Server {
        assert!(
            Path::new(SFTP_SERVER).exists(),
            "{SFTP_SERVER} is missing: install Debian's openssh-sftp-server \
             (scripts/test installs openssh-server, which pulls it in)"
        );
        let mut child = Command::new(SFTP_SERVER)
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {SFTP_SERVER}: {e}"));
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        Server {
            child,
            stdin,
            stdout,
            next_id: 0,
        }
    }

    fn id(&mut self) -> u32 {
        self.next_id += 1;
        self.next_id
    }

    fn send(&mut self, request: &Request) {
        let mut out = BytesMut::new();
        request.encode(&mut out);
        self.stdin.write_all(&out).unwrap();
    }

    fn recv(&mut self) -> Response {
        let mut len = [0u8; 4];
        self.stdout.read_exact(&mut len).unwrap();
        let len = u32::from_be_bytes(len) as usize;
        assert!(len <= MAX_PACKET, "reply of {len} bytes");
        let mut body = vec![0u8; len];
        self.stdout.read_exact(&mut body).unwrap();
        Response::decode(Bytes::from(body)).unwrap()
    }

    /// Sends one request and returns its reply.
    fn call(&mut self, request: Request) -> Response {
        let id = request.id();
        self.send(&request);
        let reply = self.recv();
        assert_eq!(reply.id(), id, "{reply:?}");
        reply
    }

    fn expect_ok(&mut self, request: Request) {
        let what = format!("{request:?}");
        match self.call(request) {
            Response::Status { code, .. } if code == status::OK => {}
            other => panic!("{what}: {other:?}"),
        }
    }

    fn handle(&mut self, request: Request) -> Bytes {
        match self.call(request) {
            Response::Handle { handle, .. } => handle,
            other => panic!("no handle: {other:?}"),
        }
    }

    fn extended(&mut self, name: &str, data: Bytes) -> Response {
        let id = self.id();
        self.call(Request::Extended {
            id,
            name: Bytes::copy_from_slice(name.as_bytes()),
            data,
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn b(s: &[u8]) -> Bytes {
    Bytes::copy_from_slice(s)
}

/// The handshake; returns the extensions advertised.
fn init(server: &mut Server) -> HashMap<Vec<u8>, Vec<u8>> {
    server.send(&Request::Init {
        version: VERSION,
        extensions: vec![],
    });
    match server.recv() {
        Response::Version {
            version,
            extensions,
        } => {
            assert_eq!(version, VERSION);
            extensions
                .into_iter()
                .map(|(k, v)| (k.to_vec(), v.to_vec()))
                .collect()
        }
        other => panic!("no VERSION: {other:?}"),
    }
}

#[test]
fn handshake_advertises_the_extensions_with_their_versions_and_limits_decode() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path());
    let exts = init(&mut server);
    for (name, version) in [
        (ext::LIMITS, ext::LIMITS_VERSION),
        (ext::POSIX_RENAME, ext::POSIX_RENAME_VERSION),
        (ext::FSYNC, ext::FSYNC_VERSION),
        (ext::STATVFS, ext::STATVFS_VERSION),
        (ext::HARDLINK, ext::HARDLINK_VERSION),
    ] {
        assert_eq!(
            exts.get(name.as_bytes()).map(Vec::as_slice),
            Some(version.as_bytes()),
            "{name} in {exts:?}"
        );
    }
    let Response::ExtendedReply { data, .. } = server.extended(ext::LIMITS, Bytes::new()) else {
        panic!("no limits reply");
    };
    let limits = Limits::decode(data).unwrap();
    assert_eq!(limits.max_packet, 256 * 1024, "{limits:?}");
    assert!(
        limits.max_read > 0 && limits.max_read <= limits.max_packet,
        "{limits:?}"
    );
    assert!(
        limits.max_write > 0 && limits.max_write <= limits.max_packet,
        "{limits:?}"
    );
    assert!(
        (MAX_PACKET as u64) >= limits.max_packet,
        "warren accepts what OpenSSH sends"
    );
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn pipelined_writes_then_reads_round_trip_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path());
    init(&mut server);
    const CHUNK: usize = 32 * 1024;
    const CHUNKS: usize = 8;
    let content = pattern(CHUNK * CHUNKS - 100, 5);

    let id = server.id();
    let handle = server.handle(Request::Open {
        id,
        path: b(b"file"),
        flags: open_flags::WRITE | open_flags::CREAT | open_flags::TRUNC,
        attrs: Attrs {
            permissions: Some(0o644),
            ..Attrs::default()
        },
    });
    // Every write is sent before any reply is read.
    let mut pending = Vec::new();
    for (i, chunk) in content.chunks(CHUNK).enumerate() {
        let id = server.id();
        pending.push(id);
        server.send(&Request::Write {
            id,
            handle: handle.clone(),
            offset: (i * CHUNK) as u64,
            data: b(chunk),
        });
    }
    for _ in 0..pending.len() {
        match server.recv() {
            Response::Status { id, code, .. } if code == status::OK => {
                pending.retain(|p| *p != id);
            }
            other => panic!("write: {other:?}"),
        }
    }
    assert!(pending.is_empty(), "unanswered writes {pending:?}");
    let Response::Status { code, .. } = server.extended(ext::FSYNC, ext::one_string(&handle))
    else {
        panic!("no fsync status");
    };
    assert_eq!(code, status::OK);
    let id = server.id();
    server.expect_ok(Request::Close { id, handle });
    assert_eq!(std::fs::read(dir.path().join("file")).unwrap(), content);

    let id = server.id();
    let Response::Attrs { attrs, .. } = server.call(Request::Stat {
        id,
        path: b(b"file"),
    }) else {
        panic!("no attrs");
    };
    assert_eq!(attrs.size, Some(content.len() as u64));
    assert!(attrs.is_regular() && !attrs.is_dir(), "{attrs:?}");
    assert_eq!(attrs.permissions.map(|p| p & 0o777), Some(0o644));

    let id = server.id();
    let handle = server.handle(Request::Open {
        id,
        path: b(b"file"),
        flags: open_flags::READ,
        attrs: Attrs::default(),
    });
    let mut ids = HashMap::new();
    for i in 0..CHUNKS {
        let id = server.id();
        ids.insert(id, i);
        server.send(&Request::Read {
            id,
            handle: handle.clone(),
            offset: (i * CHUNK) as u64,
            len: CHUNK as u32,
        });
    }
    let mut back = vec![0u8; content.len()];
    for _ in 0..CHUNKS {
        match server.recv() {
            Response::Data { id, data } => {
                let at = ids.remove(&id).expect("a known id") * CHUNK;
                back[at..at + data.len()].copy_from_slice(&data);
            }
            other => panic!("read: {other:?}"),
        }
    }
    assert_eq!(back, content);
    let id = server.id();
    let eof = server.call(Request::Read {
        id,
        handle,
        offset: content.len() as u64,
        len: 10,
    });
    assert!(
        matches!(eof, Response::Status { code, .. } if code == status::EOF),
        "{eof:?}"
    );
}

#[test]
fn readdir_returns_a_non_utf8_name_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let name: &[u8] = b"caf\xe9 \x01.txt";
    std::fs::create_dir(dir.path().join("d")).unwrap();
    std::fs::write(dir.path().join("d").join(OsStr::from_bytes(name)), b"x").unwrap();
    let mut server = Server::start(dir.path());
    init(&mut server);

    let id = server.id();
    let handle = server.handle(Request::OpenDir { id, path: b(b"d") });
    let mut names = Vec::new();
    loop {
        let id = server.id();
        match server.call(Request::ReadDir {
            id,
            handle: handle.clone(),
        }) {
            Response::Name { entries, .. } => {
                names.extend(entries.into_iter().map(|e| (e.filename, e.attrs)));
            }
            Response::Status { code, .. } if code == status::EOF => break,
            other => panic!("readdir: {other:?}"),
        }
    }
    let (_, attrs) = names
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("{name:?} not in {names:?}"));
    assert_eq!(attrs.size, Some(1));
    assert!(
        names.iter().any(|(n, a)| n == &b"."[..] && a.is_dir()),
        "{names:?}"
    );
    let id = server.id();
    server.expect_ok(Request::Close { id, handle });
}

#[test]
fn symlink_takes_the_target_first_and_renames_follow_openssh() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("a"), b"A").unwrap();
    std::fs::write(d.join("b"), b"B").unwrap();
    let mut server = Server::start(d);
    init(&mut server);

    let id = server.id();
    server.expect_ok(Request::Symlink {
        id,
        target: b(b"a"),
        link: b(b"lnk"),
    });
    assert_eq!(
        std::fs::read_link(d.join("lnk")).unwrap(),
        Path::new("a"),
        "OpenSSH reads the target first"
    );
    let id = server.id();
    match server.call(Request::ReadLink {
        id,
        path: b(b"lnk"),
    }) {
        Response::Name { entries, .. } => {
            assert_eq!(entries.len(), 1);
            assert_eq!(entries[0].filename, b(b"a"));
        }
        other => panic!("readlink: {other:?}"),
    }
    let id = server.id();
    let Response::Attrs { attrs, .. } = server.call(Request::Lstat {
        id,
        path: b(b"lnk"),
    }) else {
        panic!("no lstat attrs");
    };
    assert!(attrs.is_symlink(), "{attrs:?}");

    // A plain rename onto an existing file is refused ...
    let id = server.id();
    let refused = server.call(Request::Rename {
        id,
        from: b(b"a"),
        to: b(b"b"),
    });
    assert!(
        matches!(refused, Response::Status { code, .. } if code == status::FAILURE),
        "{refused:?}"
    );
    // ... posix-rename replaces it.
    let Response::Status { code, .. } =
        server.extended(ext::POSIX_RENAME, ext::two_paths(b"a", b"b"))
    else {
        panic!("no posix-rename status");
    };
    assert_eq!(code, status::OK);
    assert_eq!(std::fs::read(d.join("b")).unwrap(), b"A");
    assert!(!d.join("a").exists());

    let Response::Status { code, .. } =
        server.extended(ext::HARDLINK, ext::two_paths(b"b", b"hard"))
    else {
        panic!("no hardlink status");
    };
    assert_eq!(code, status::OK);
    use std::os::unix::fs::MetadataExt as _;
    assert_eq!(
        std::fs::metadata(d.join("hard")).unwrap().ino(),
        std::fs::metadata(d.join("b")).unwrap().ino()
    );

    let Response::ExtendedReply { data, .. } = server.extended(ext::STATVFS, ext::one_string(b"."))
    else {
        panic!("no statvfs reply");
    };
    let vfs = Statvfs::decode(data).unwrap();
    assert!(
        vfs.bsize > 0 && vfs.namemax > 0 && vfs.blocks >= vfs.bfree,
        "{vfs:?}"
    );
}
