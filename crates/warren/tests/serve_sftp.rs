//! File transfer against `warren serve` with OpenSSH's own tools: `scp`
//! (SFTP mode, OpenSSH 9's default) both ways and recursive, `sftp -b`
//! batch mode, and `rsync -e ssh` through exec; bytes verified. Beside
//! them, warren-sftp's codec over `ssh -s ... sftp` drives the subsystem
//! packet by packet: many requests in flight, and each OpenSSH extension.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]

mod common;
use common::serve::Serve;
use common::{pattern, text};

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{Read as _, Write as _};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use bytes::{Bytes, BytesMut};
use warren_sftp::ext::{self, Limits, Statvfs};
use warren_sftp::{Attrs, MAX_PACKET, Request, Response, open_flags, status};

/// A small tree: files of several sizes, an empty file, a nested directory.
fn make_tree(root: &Path) {
    std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
    std::fs::write(root.join("big.bin"), pattern(3 * 1024 * 1024 + 5, 1)).unwrap();
    std::fs::write(root.join("empty"), b"").unwrap();
    std::fs::write(root.join("sub/small.txt"), b"hello\n").unwrap();
    std::fs::write(root.join("sub/deeper/mid.bin"), pattern(70_000, 2)).unwrap();
}

fn assert_same_tree(a: &Path, b: &Path) {
    for rel in ["big.bin", "empty", "sub/small.txt", "sub/deeper/mid.bin"] {
        let (x, y) = (
            std::fs::read(a.join(rel)).unwrap(),
            std::fs::read(b.join(rel)),
        );
        let y = y.unwrap_or_else(|e| panic!("{rel} missing in {}: {e}", b.display()));
        assert!(x == y, "{rel} differs");
    }
}

fn scp(serve: &Serve, args: &[&str]) -> std::process::Output {
    Command::new("scp")
        .args(serve.client_options(&serve.client_key()))
        .args(["-P", &serve.port().to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn scp_uploads_and_downloads_files_and_trees() {
    let serve = Serve::start();
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    make_tree(&src);
    let remote = work.path().join("remote");
    std::fs::create_dir(&remote).unwrap();

    let file = src.join("big.bin");
    let out = scp(
        &serve,
        &[
            file.to_str().unwrap(),
            &format!("127.0.0.1:{}/one.bin", remote.display()),
        ],
    );
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stderr),
        serve.log()
    );
    assert!(std::fs::read(remote.join("one.bin")).unwrap() == std::fs::read(&file).unwrap());
    assert!(
        serve.log().contains("sftp session"),
        "scp used SFTP: {}",
        serve.log()
    );

    let out = scp(
        &serve,
        &[
            "-r",
            src.to_str().unwrap(),
            &format!("127.0.0.1:{}/tree", remote.display()),
        ],
    );
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stderr),
        serve.log()
    );
    assert_same_tree(&src, &remote.join("tree"));

    let back = work.path().join("back");
    let out = scp(
        &serve,
        &[
            "-r",
            &format!("127.0.0.1:{}/tree", remote.display()),
            back.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stderr),
        serve.log()
    );
    assert_same_tree(&src, &back);

    let out = scp(
        &serve,
        &[
            &format!("127.0.0.1:{}/missing", remote.display()),
            back.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success(), "a missing file fails");
}

#[test]
fn sftp_batch_mode_puts_gets_lists_renames_and_removes() {
    let serve = Serve::start();
    let work = tempfile::tempdir().unwrap();
    let local = work.path().join("up.bin");
    std::fs::write(&local, pattern(1_000_000, 9)).unwrap();
    let remote = work.path().join("r");
    let batch = work.path().join("batch");
    std::fs::write(
        &batch,
        format!(
            "mkdir {r}\ncd {r}\nput {l} a.bin\nrename a.bin b.bin\nls -l\nget b.bin {w}/down.bin\nsymlink b.bin link\nchmod 600 b.bin\nrm link\nmkdir d\nrmdir d\npwd\n",
            r = remote.display(),
            l = local.display(),
            w = work.path().display()
        ),
    )
    .unwrap();
    let out = Command::new("sftp")
        .args(serve.client_options(&serve.client_key()))
        .args(["-P", &serve.port().to_string(), "-b"])
        .arg(&batch)
        .arg("127.0.0.1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let said = text(&out.stdout);
    assert!(
        out.status.success(),
        "{said}\n{}\n{}",
        text(&out.stderr),
        serve.log()
    );
    assert!(said.contains("b.bin"), "ls lists the file: {said}");
    assert!(std::fs::read(work.path().join("down.bin")).unwrap() == std::fs::read(&local).unwrap());
    assert!(!remote.join("a.bin").exists() && remote.join("b.bin").exists());
    assert!(!remote.join("link").exists() && !remote.join("d").exists());
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(remote.join("b.bin"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    assert!(
        said.contains(&format!("Remote working directory: {}", remote.display())),
        "{said}"
    );
}

#[test]
fn rsync_over_ssh_copies_a_tree_through_exec() {
    let serve = Serve::start();
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    make_tree(&src);
    let dst = work.path().join("dst");
    let opts: Vec<String> = serve
        .client_options(&serve.client_key())
        .into_iter()
        .map(|o| format!("'{o}'"))
        .collect();
    let rsh = format!("ssh {} -p {}", opts.join(" "), serve.port());
    let out = Command::new("rsync")
        .args(["-a", "-e", &rsh])
        .arg(format!("{}/", src.display()))
        .arg(format!("127.0.0.1:{}/", dst.display()))
        .stdin(Stdio::null())
        .output()
        .expect("rsync is required (scripts/test installs it)");
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stderr),
        serve.log()
    );
    assert_same_tree(&src, &dst);
    // A second run has nothing to send but still works.
    std::fs::write(src.join("sub/small.txt"), b"changed\n").unwrap();
    let out = Command::new("rsync")
        .args(["-a", "-e", &rsh])
        .arg(format!("{}/", src.display()))
        .arg(format!("127.0.0.1:{}/", dst.display()))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read(dst.join("sub/small.txt")).unwrap(),
        b"changed\n"
    );
}

/// The sftp subsystem of `serve` through OpenSSH's `ssh -s`, spoken with
/// warren-sftp's codec; `ssh` is killed on drop.
struct Subsystem {
    ssh: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
    next_id: u32,
    extensions: HashMap<Vec<u8>, Vec<u8>>,
}

impl Subsystem {
    fn start(serve: &Serve) -> Subsystem {
        let mut ssh = serve
            .ssh()
            .args(["-s", "127.0.0.1", "sftp"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let (stdin, stdout) = (ssh.stdin.take().unwrap(), ssh.stdout.take().unwrap());
        let mut s = Subsystem {
            ssh,
            stdin,
            stdout,
            next_id: 0,
            extensions: HashMap::new(),
        };
        s.send(&Request::Init {
            version: 3,
            extensions: vec![],
        });
        match s.recv() {
            Response::Version {
                version: 3,
                extensions,
            } => {
                s.extensions = extensions
                    .into_iter()
                    .map(|(k, v)| (k.to_vec(), v.to_vec()))
                    .collect();
            }
            other => panic!("no VERSION 3: {other:?}\n{}", serve.log()),
        }
        s
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
        assert!(len <= MAX_PACKET, "a reply of {len} bytes");
        let mut body = vec![0u8; len];
        self.stdout.read_exact(&mut body).unwrap();
        Response::decode(Bytes::from(body)).unwrap()
    }

    fn call(&mut self, request: Request) -> Response {
        let id = request.id();
        self.send(&request);
        let reply = self.recv();
        assert_eq!(reply.id(), id, "{reply:?}");
        reply
    }

    fn status(&mut self, request: Request) -> u32 {
        match self.call(request) {
            Response::Status { code, .. } => code,
            other => panic!("not a status: {other:?}"),
        }
    }

    fn open(&mut self, path: &[u8], flags: u32) -> Bytes {
        let id = self.id();
        match self.call(Request::Open {
            id,
            path: Bytes::copy_from_slice(path),
            flags,
            attrs: Attrs::default(),
        }) {
            Response::Handle { handle, .. } => handle,
            other => panic!("open {:?}: {other:?}", Bytes::copy_from_slice(path)),
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

impl Drop for Subsystem {
    fn drop(&mut self) {
        let _ = self.ssh.kill();
        let _ = self.ssh.wait();
    }
}

fn bytes_of(p: &Path) -> Vec<u8> {
    p.as_os_str().as_bytes().to_vec()
}

fn path_of(dir: &Path, name: &[u8]) -> PathBuf {
    dir.join(OsStr::from_bytes(name))
}

// 64 READs sent before any reply is read, on a file whose name is not
// UTF-8, all answered with the right bytes, and the session still serves
// requests after. (russh-sftp's server took names as UTF-8 text and could
// not open this file at all.)
#[test]
fn sixty_four_reads_in_flight_are_answered_with_the_right_bytes() {
    let serve = Serve::start();
    let work = tempfile::tempdir().unwrap();
    const CHUNK: usize = 32 * 1024;
    let content = pattern(64 * CHUNK - 7, 3);
    let file = path_of(work.path(), b"reads-\xff\xe9.bin");
    std::fs::write(&file, &content).unwrap();
    let mut s = Subsystem::start(&serve);
    let handle = s.open(&bytes_of(&file), open_flags::READ);
    for round in 0..3 {
        let mut asked = HashMap::new();
        for i in 0..64usize {
            let id = s.id();
            asked.insert(id, i);
            s.send(&Request::Read {
                id,
                handle: handle.clone(),
                offset: (i * CHUNK) as u64,
                len: CHUNK as u32,
            });
        }
        for _ in 0..64 {
            match s.recv() {
                Response::Data { id, data } => {
                    let i = asked.remove(&id).expect("a reply to a READ asked");
                    let end = ((i + 1) * CHUNK).min(content.len());
                    assert!(
                        data[..] == content[i * CHUNK..end],
                        "round {round}, read {i}"
                    );
                }
                other => panic!("round {round}: {other:?}\n{}", serve.log()),
            }
        }
        assert!(asked.is_empty());
    }
    let id = s.id();
    match s.call(Request::Fstat {
        id,
        handle: handle.clone(),
    }) {
        Response::Attrs { attrs, .. } => assert_eq!(attrs.size, Some(content.len() as u64)),
        other => panic!("fstat: {other:?}"),
    }
    let id = s.id();
    assert_eq!(s.status(Request::Close { id, handle }), status::OK);
}

// Each extension OpenSSH's sftp-server offers that warren serves, with
// OpenSSH's version strings: limits (the values warren accepts), fsync,
// statvfs, hardlink, posix-rename; a plain RENAME still refuses to
// replace. (russh-sftp's server offered neither limits nor statvfs.)
#[test]
fn openssh_extensions_work() {
    let serve = Serve::start();
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    let mut s = Subsystem::start(&serve);
    for (name, version) in [
        (ext::LIMITS, "1"),
        (ext::POSIX_RENAME, "1"),
        (ext::FSYNC, "1"),
        (ext::STATVFS, "2"),
        (ext::HARDLINK, "1"),
    ] {
        assert_eq!(
            s.extensions.get(name.as_bytes()).map(Vec::as_slice),
            Some(version.as_bytes()),
            "{name}: {:?}",
            s.extensions
        );
    }

    let Response::ExtendedReply { data, .. } = s.extended(ext::LIMITS, Bytes::new()) else {
        panic!("no limits reply");
    };
    let limits = Limits::decode(data).unwrap();
    assert_eq!(
        limits,
        Limits {
            max_packet: MAX_PACKET as u64,
            max_read: 255 * 1024,
            max_write: 255 * 1024,
            max_open_handles: 512,
        }
    );

    // A write of the advertised size is taken, and a read of it is served
    // whole, in a reply OpenSSH's 256 KiB limit accepts.
    let a = d.join("a");
    let handle = s.open(
        &bytes_of(&a),
        open_flags::READ | open_flags::WRITE | open_flags::CREAT,
    );
    let big = pattern(limits.max_write as usize, 4);
    let id = s.id();
    let wrote = s.status(Request::Write {
        id,
        handle: handle.clone(),
        offset: 0,
        data: Bytes::from(big.clone()),
    });
    assert_eq!(wrote, status::OK);
    let Response::Status { code, .. } = s.extended(ext::FSYNC, ext::one_string(&handle)) else {
        panic!("no fsync status");
    };
    assert_eq!(code, status::OK);
    let id = s.id();
    match s.call(Request::Read {
        id,
        handle: handle.clone(),
        offset: 0,
        len: u32::MAX,
    }) {
        Response::Data { data, .. } => {
            assert_eq!(data.len() as u64, limits.max_read);
            assert!(data[..] == big[..]);
        }
        other => panic!("read: {other:?}"),
    }
    let id = s.id();
    assert_eq!(s.status(Request::Close { id, handle }), status::OK);

    let Response::ExtendedReply { data, .. } =
        s.extended(ext::STATVFS, ext::one_string(&bytes_of(d)))
    else {
        panic!("no statvfs reply");
    };
    let vfs = Statvfs::decode(data).unwrap();
    assert!(
        vfs.bsize > 0 && vfs.frsize > 0 && vfs.namemax >= 255 && vfs.bfree <= vfs.blocks,
        "{vfs:?}"
    );
    assert!(vfs.bavail <= vfs.bfree && vfs.ffree <= vfs.files, "{vfs:?}");

    let (b, hard) = (d.join("b"), d.join("hard"));
    let linked = s.extended(
        ext::HARDLINK,
        ext::two_paths(&bytes_of(&a), &bytes_of(&hard)),
    );
    assert!(
        matches!(
            linked,
            Response::Status {
                code: status::OK,
                ..
            }
        ),
        "{linked:?}"
    );
    assert_eq!(
        std::fs::metadata(&hard).unwrap().ino(),
        std::fs::metadata(&a).unwrap().ino()
    );

    std::fs::write(&b, b"old").unwrap();
    let id = s.id();
    let refused = s.status(Request::Rename {
        id,
        from: Bytes::from(bytes_of(&a)),
        to: Bytes::from(bytes_of(&b)),
    });
    assert_eq!(refused, status::FAILURE, "a plain rename does not replace");
    assert_eq!(std::fs::read(&b).unwrap(), b"old");
    let renamed = s.extended(
        ext::POSIX_RENAME,
        ext::two_paths(&bytes_of(&a), &bytes_of(&b)),
    );
    assert!(
        matches!(
            renamed,
            Response::Status {
                code: status::OK,
                ..
            }
        ),
        "{renamed:?}"
    );
    assert!(std::fs::read(&b).unwrap() == big && !a.exists());

    let unknown = s.extended("nothing@example.com", Bytes::new());
    assert!(
        matches!(
            unknown,
            Response::Status {
                code: status::OP_UNSUPPORTED,
                ..
            }
        ),
        "{unknown:?}"
    );
}

// OpenSSH's sftp (put, get) and scp (both ways) copy a 20 MB file whose
// name is not UTF-8, byte for byte, at the sizes the limits extension
// gives them. (russh-sftp's server read the name as UTF-8 text, turning
// the stray bytes into U+FFFD: the file could be neither found nor made.
// And scp 9.2 writes in place: a server replying out of request order
// made it truncate the copy at the first reordered reply, exiting 0.)
#[test]
fn openssh_sftp_and_scp_copy_a_20_mb_file_with_a_non_utf8_name() {
    let serve = Serve::start();
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    let name: &[u8] = b"big-\xe9\xff.bin";
    let content = pattern(20 * 1024 * 1024 + 3, 11);
    let local = path_of(d, name);
    std::fs::write(&local, &content).unwrap();
    let remote = d.join("remote");
    std::fs::create_dir(&remote).unwrap();

    let mut batch = Vec::new();
    for line in [
        [
            b"put ".as_slice(),
            &bytes_of(&local),
            b" ",
            &bytes_of(&path_of(&remote, name)),
        ]
        .concat(),
        [
            b"get ".as_slice(),
            &bytes_of(&path_of(&remote, name)),
            b" ",
            &bytes_of(&d.join("got")),
        ]
        .concat(),
    ] {
        batch.extend_from_slice(&line);
        batch.push(b'\n');
    }
    std::fs::write(d.join("batch"), &batch).unwrap();
    let out = Command::new("sftp")
        .args(serve.client_options(&serve.client_key()))
        .args(["-P", &serve.port().to_string(), "-b"])
        .arg(d.join("batch"))
        .arg("127.0.0.1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr),
        serve.log()
    );
    assert!(
        std::fs::read(path_of(&remote, name)).unwrap() == content,
        "sftp put"
    );
    assert!(std::fs::read(d.join("got")).unwrap() == content, "sftp get");

    let scp_dir = d.join("scp");
    std::fs::create_dir(&scp_dir).unwrap();
    let mut up = OsStr::from_bytes(b"127.0.0.1:").to_os_string();
    up.push(path_of(&scp_dir, name));
    let out = Command::new("scp")
        .args(serve.client_options(&serve.client_key()))
        .args(["-P", &serve.port().to_string()])
        .arg(&local)
        .arg(&up)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stderr),
        serve.log()
    );
    let got = std::fs::read(path_of(&scp_dir, name)).unwrap();
    let first = got.iter().zip(&content).position(|(a, b)| a != b);
    assert!(
        got == content,
        "scp up: {} bytes, want {}, first difference at {first:?}\n{}\n{}",
        got.len(),
        content.len(),
        text(&out.stderr),
        serve.log()
    );
    let back = d.join("back");
    std::fs::create_dir(&back).unwrap();
    let out = Command::new("scp")
        .args(serve.client_options(&serve.client_key()))
        .args(["-P", &serve.port().to_string()])
        .arg(&up)
        .arg(&back)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stderr),
        serve.log()
    );
    let got = std::fs::read(path_of(&back, name)).unwrap();
    let first = got.iter().zip(&content).position(|(a, b)| a != b);
    assert!(
        got == content,
        "scp down: {} bytes, want {}, first difference at {first:?}\n{}\n{}",
        got.len(),
        content.len(),
        text(&out.stderr),
        serve.log()
    );
}
