//! Each SFTP request done on the real filesystem, as the login user, with
//! blocking std calls (the session runs them on tokio's blocking pool).
//!
//! Design choices: [`Fs::plan`] splits requests into jobs that may run
//! beside others (READ, WRITE, STAT, LSTAT, FSTAT: they take what they need,
//! an `Arc<File>` or a path, and use positional I/O, so many run on one
//! handle at once) and barriers, which [`Fs::barrier`] runs with the
//! session's state to itself. Paths are bytes, never text: relative ones
//! are resolved against the login's home directory (the server process
//! never changes directory: sessions share it), as sftp-server resolves
//! them against its working directory, home. OpenSSH's quirks are kept:
//! SSH_FXP_SYMLINK takes the target first, and a plain rename refuses to
//! replace an existing file while `posix-rename@openssh.com` replaces it.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{File, Metadata};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::fs::{DirBuilderExt as _, FileExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use rustix::io::Errno;
use warren_sftp::ext::{self, Limits, Statvfs};
use warren_sftp::{Attrs, MAX_PACKET, NameEntry, Request, Response, open_flags, status};

use super::order::{Access, FileId};

/// Largest read served at once: OpenSSH's sftp-server's (255 KiB), so a
/// DATA reply stays within the 256 KiB OpenSSH's sftp client accepts.
pub(crate) const MAX_READ: u32 = 255 * 1024;
/// Largest write advertised: OpenSSH's sftp client (9.2) sends writes of
/// the size the limits say, and refuses to send a packet over 256 KiB.
/// Larger writes that fit in [`MAX_PACKET`] are served too.
pub(crate) const MAX_WRITE: u32 = 255 * 1024;
/// Open handles per session, at most.
pub(crate) const MAX_HANDLES: usize = 512;
/// Directory entries per SSH_FXP_NAME reply.
const DIR_CHUNK: usize = 100;

/// The extensions served, with the versions OpenSSH's sftp-server
/// advertises, in its order.
pub(crate) const EXTENSIONS: [(&str, &str); 5] = [
    (ext::POSIX_RENAME, ext::POSIX_RENAME_VERSION),
    (ext::STATVFS, ext::STATVFS_VERSION),
    (ext::HARDLINK, ext::HARDLINK_VERSION),
    (ext::FSYNC, ext::FSYNC_VERSION),
    (ext::LIMITS, ext::LIMITS_VERSION),
];

/// What the limits extension answers.
pub(crate) fn limits() -> Limits {
    Limits {
        max_packet: MAX_PACKET as u64,
        max_read: MAX_READ.into(),
        max_write: MAX_WRITE.into(),
        max_open_handles: MAX_HANDLES as u64,
    }
}

/// Work that may run beside other requests.
pub(crate) type Job = Box<dyn FnOnce() -> Response + Send + 'static>;

/// How a request is to be served.
pub(crate) enum Plan {
    /// Answered already (a handle that is not open, say).
    Reply(Response),
    /// Runs alone, with the session's state: [`Fs::barrier`].
    Barrier(Request),
    /// Runs beside the requests its access does not conflict with.
    Job { access: Access, job: Job },
}

enum Open {
    File {
        file: Arc<File>,
        id: FileId,
        append: bool,
    },
    Dir {
        path: PathBuf,
        /// Listed at the first READDIR, then handed out in chunks.
        entries: Option<std::vec::IntoIter<NameEntry>>,
    },
}

/// A failed request: the status code to answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fail(pub(crate) u32);

impl From<std::io::Error> for Fail {
    /// sftp-server's `errno_to_portable`.
    fn from(e: std::io::Error) -> Fail {
        Fail(match Errno::from_io_error(&e) {
            Some(Errno::NOENT | Errno::NOTDIR | Errno::BADF | Errno::LOOP) => status::NO_SUCH_FILE,
            Some(Errno::PERM | Errno::ACCESS | Errno::FAULT) => status::PERMISSION_DENIED,
            Some(Errno::NAMETOOLONG | Errno::INVAL) => status::BAD_MESSAGE,
            Some(Errno::NOSYS) => status::OP_UNSUPPORTED,
            _ => status::FAILURE,
        })
    }
}

type Outcome = Result<Response, Fail>;

fn ok(id: u32) -> Response {
    Response::status(id, status::OK)
}

fn answer(id: u32, outcome: Outcome) -> Response {
    outcome.unwrap_or_else(|Fail(code)| Response::status(id, code))
}

/// One session's state: its home and its open handles.
#[derive(Default)]
pub(crate) struct Fs {
    home: PathBuf,
    handles: HashMap<Bytes, Open>,
    next: u64,
}

impl Fs {
    pub(crate) fn new(home: PathBuf) -> Fs {
        Fs {
            home,
            ..Fs::default()
        }
    }

    fn path(&self, p: &[u8]) -> PathBuf {
        if p.is_empty() {
            self.home.clone()
        } else {
            self.home.join(OsStr::from_bytes(p))
        }
    }

    fn add(&mut self, open: Open) -> Result<Bytes, Fail> {
        if self.handles.len() >= MAX_HANDLES {
            return Err(Fail(status::FAILURE));
        }
        self.next += 1;
        let handle = Bytes::from(self.next.to_string());
        self.handles.insert(handle.clone(), open);
        Ok(handle)
    }

    fn file(&self, handle: &[u8]) -> Result<&Arc<File>, Fail> {
        match self.handles.get(handle) {
            Some(Open::File { file, .. }) => Ok(file),
            _ => Err(Fail(status::FAILURE)),
        }
    }

    /// Decides how `request` is served; a job takes what it needs along.
    pub(crate) fn plan(&self, request: Request) -> Plan {
        match request {
            Request::Read {
                id,
                handle,
                offset,
                len,
            } => self.plan_read(id, &handle, offset, len),
            Request::Write {
                id,
                handle,
                offset,
                data,
            } => self.plan_write(id, &handle, offset, data),
            Request::Stat { id, path } => self.plan_stat(id, &path, true),
            Request::Lstat { id, path } => self.plan_stat(id, &path, false),
            Request::Fstat { id, handle } => self.plan_fstat(id, &handle),
            other => Plan::Barrier(other),
        }
    }

    fn plan_read(&self, id: u32, handle: &[u8], offset: u64, len: u32) -> Plan {
        let Some(Open::File { file, id: fid, .. }) = self.handles.get(handle) else {
            return Plan::Reply(Response::status(id, status::FAILURE));
        };
        let (file, len) = (Arc::clone(file), len.min(MAX_READ));
        Plan::Job {
            access: Access::Read {
                file: *fid,
                start: offset,
                end: offset.saturating_add(len.into()),
            },
            job: Box::new(move || answer(id, read(id, &file, offset, len))),
        }
    }

    fn plan_write(&self, id: u32, handle: &[u8], offset: u64, data: Bytes) -> Plan {
        let Some(Open::File {
            file,
            id: fid,
            append,
        }) = self.handles.get(handle)
        else {
            return Plan::Reply(Response::status(id, status::FAILURE));
        };
        let (start, end) = if *append {
            (0, u64::MAX)
        } else {
            (offset, offset.saturating_add(data.len() as u64))
        };
        let file = Arc::clone(file);
        Plan::Job {
            access: Access::Write {
                file: *fid,
                start,
                end,
            },
            job: Box::new(move || {
                answer(
                    id,
                    file.write_all_at(&data, offset)
                        .map(|()| ok(id))
                        .map_err(Fail::from),
                )
            }),
        }
    }

    fn plan_stat(&self, id: u32, path: &[u8], follow: bool) -> Plan {
        let path = self.path(path);
        Plan::Job {
            access: Access::Meta,
            job: Box::new(move || {
                let m = if follow {
                    std::fs::metadata(&path)
                } else {
                    std::fs::symlink_metadata(&path)
                };
                answer(id, attrs_reply(id, m))
            }),
        }
    }

    fn plan_fstat(&self, id: u32, handle: &[u8]) -> Plan {
        let job: Job = match self.handles.get(handle) {
            Some(Open::File { file, .. }) => {
                let file = Arc::clone(file);
                Box::new(move || answer(id, attrs_reply(id, file.metadata())))
            }
            Some(Open::Dir { path, .. }) => {
                let path = path.clone();
                Box::new(move || answer(id, attrs_reply(id, std::fs::metadata(path))))
            }
            None => return Plan::Reply(Response::status(id, status::FAILURE)),
        };
        Plan::Job {
            access: Access::Meta,
            job,
        }
    }

    /// Runs a request that waits for every earlier one and runs alone.
    /// (A request [`Fs::plan`] would run as a job runs here too, alone.)
    pub(crate) fn barrier(&mut self, request: Request) -> Response {
        match self.plan(request) {
            Plan::Barrier(request) => {
                let id = request.id().unwrap_or(0);
                answer(id, self.run(request))
            }
            Plan::Job { job, .. } => job(),
            Plan::Reply(reply) => reply,
        }
    }

    fn run(&mut self, request: Request) -> Outcome {
        use Request as R;
        match request {
            R::Open {
                id,
                path,
                flags,
                attrs,
            } => self.open(id, &path, flags, &attrs),
            R::Close { id, handle } => match self.handles.remove(&handle) {
                Some(_) => Ok(ok(id)),
                None => Err(Fail(status::FAILURE)),
            },
            R::SetStat { id, path, attrs } => {
                set_attrs(&self.path(&path), &attrs)?;
                Ok(ok(id))
            }
            R::FSetStat { id, handle, attrs } => self.fsetstat(id, &handle, &attrs),
            R::OpenDir { id, path } => self.opendir(id, &path),
            R::ReadDir { id, handle } => self.readdir(id, &handle),
            R::Remove { id, path } => done(id, std::fs::remove_file(self.path(&path))),
            R::MkDir { id, path, attrs } => {
                let mode = attrs.permissions.unwrap_or(0o777) & 0o7777;
                let made = std::fs::DirBuilder::new()
                    .mode(mode)
                    .create(self.path(&path));
                done(id, made)
            }
            R::RmDir { id, path } => done(id, std::fs::remove_dir(self.path(&path))),
            R::RealPath { id, path } => Ok(self.realpath(id, &path)),
            R::Rename { id, from, to } => {
                let to = self.path(&to);
                // sftp-server refuses to replace (it links, then unlinks).
                if std::fs::symlink_metadata(&to).is_ok() {
                    return Err(Fail(status::FAILURE));
                }
                done(id, std::fs::rename(self.path(&from), to))
            }
            R::ReadLink { id, path } => {
                let target = std::fs::read_link(self.path(&path))?;
                Ok(one_name(
                    id,
                    Bytes::copy_from_slice(target.as_os_str().as_bytes()),
                ))
            }
            // OpenSSH sends the target first (its documented deviation
            // from the draft); its clients and sftp-server agree on it.
            R::Symlink { id, target, link } => done(
                id,
                std::os::unix::fs::symlink(OsStr::from_bytes(&target), self.path(&link)),
            ),
            R::Extended { id, name, data } => self.extended(id, &name, data),
            // Jobs ([`Fs::plan`]) and the handshake never come here.
            R::Init { .. }
            | R::Read { .. }
            | R::Write { .. }
            | R::Stat { .. }
            | R::Lstat { .. }
            | R::Fstat { .. } => Err(Fail(status::BAD_MESSAGE)),
        }
    }
}

impl Fs {
    fn open(&mut self, id: u32, path: &[u8], flags: u32, attrs: &Attrs) -> Outcome {
        if self.handles.len() >= MAX_HANDLES {
            return Err(Fail(status::FAILURE));
        }
        let has = |bit: u32| flags & bit != 0;
        let file = std::fs::OpenOptions::new()
            .read(has(open_flags::READ))
            .write(has(open_flags::WRITE))
            .append(has(open_flags::APPEND))
            .create(has(open_flags::CREAT))
            .truncate(has(open_flags::TRUNC))
            .create_new(has(open_flags::CREAT) && has(open_flags::EXCL))
            .mode(attrs.permissions.unwrap_or(0o666) & 0o7777)
            .open(self.path(path))?;
        let m = file.metadata()?;
        let handle = self.add(Open::File {
            file: Arc::new(file),
            id: (m.dev(), m.ino()),
            append: has(open_flags::APPEND),
        })?;
        Ok(Response::Handle { id, handle })
    }

    fn fsetstat(&mut self, id: u32, handle: &[u8], a: &Attrs) -> Outcome {
        match self.handles.get(handle) {
            Some(Open::File { file, .. }) => {
                if let Some(size) = a.size {
                    file.set_len(size)?;
                }
                if let Some(mode) = a.permissions {
                    file.set_permissions(std::fs::Permissions::from_mode(mode & 0o7777))?;
                }
                if let Some((atime, mtime)) = a.times {
                    file.set_times(file_times(atime, mtime))?;
                }
            }
            Some(Open::Dir { path, .. }) => set_attrs(path, a)?,
            None => return Err(Fail(status::FAILURE)),
        }
        Ok(ok(id))
    }

    fn opendir(&mut self, id: u32, path: &[u8]) -> Outcome {
        let path = self.path(path);
        if !std::fs::metadata(&path)?.is_dir() {
            return Err(Fail(status::FAILURE));
        }
        let handle = self.add(Open::Dir {
            path,
            entries: None,
        })?;
        Ok(Response::Handle { id, handle })
    }

    fn readdir(&mut self, id: u32, handle: &[u8]) -> Outcome {
        let Some(Open::Dir { path, entries }) = self.handles.get_mut(handle) else {
            return Err(Fail(status::FAILURE));
        };
        if entries.is_none() {
            *entries = Some(list(path)?.into_iter());
        }
        let chunk: Vec<NameEntry> = entries
            .as_mut()
            .map(|it| it.take(DIR_CHUNK).collect())
            .unwrap_or_default();
        if chunk.is_empty() {
            return Err(Fail(status::EOF));
        }
        Ok(Response::Name { id, entries: chunk })
    }

    fn realpath(&self, id: u32, path: &[u8]) -> Response {
        let full = self.path(path);
        let resolved = std::fs::canonicalize(&full).unwrap_or_else(|_| normalize(&full));
        one_name(id, Bytes::copy_from_slice(resolved.as_os_str().as_bytes()))
    }

    fn extended(&mut self, id: u32, name: &[u8], data: Bytes) -> Outcome {
        let bad = |_| Fail(status::BAD_MESSAGE);
        match std::str::from_utf8(name).unwrap_or("") {
            ext::LIMITS => Ok(Response::ExtendedReply {
                id,
                data: limits().encode(),
            }),
            ext::POSIX_RENAME => {
                let (from, to) = ext::parse_two_paths(data).map_err(bad)?;
                done(id, std::fs::rename(self.path(&from), self.path(&to)))
            }
            ext::HARDLINK => {
                let (from, to) = ext::parse_two_paths(data).map_err(bad)?;
                done(id, std::fs::hard_link(self.path(&from), self.path(&to)))
            }
            ext::FSYNC => {
                let handle = ext::parse_one_string(data).map_err(bad)?;
                done(id, self.file(&handle)?.sync_all())
            }
            ext::STATVFS => {
                let path = ext::parse_one_string(data).map_err(bad)?;
                let vfs = rustix::fs::statvfs(self.path(&path)).map_err(std::io::Error::from)?;
                Ok(Response::ExtendedReply {
                    id,
                    data: statvfs(&vfs).encode(),
                })
            }
            _ => Err(Fail(status::OP_UNSUPPORTED)),
        }
    }
}

/// OK, or the status of what went wrong.
fn done(id: u32, result: std::io::Result<()>) -> Outcome {
    result.map(|()| ok(id)).map_err(Fail::from)
}

/// Up to `len` bytes at `offset`: fewer only at the end of the file, and
/// none there is EOF (a read of zero bytes is an empty DATA, as
/// sftp-server answers it).
fn read(id: u32, file: &File, offset: u64, len: u32) -> Outcome {
    let mut data = vec![0u8; len as usize];
    let mut filled = 0;
    while filled < data.len() {
        match file.read_at(&mut data[filled..], offset.saturating_add(filled as u64)) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    if filled == 0 && len > 0 {
        return Err(Fail(status::EOF));
    }
    data.truncate(filled);
    Ok(Response::Data {
        id,
        data: data.into(),
    })
}

fn attrs_reply(id: u32, m: std::io::Result<Metadata>) -> Outcome {
    Ok(Response::Attrs {
        id,
        attrs: attrs(&m?),
    })
}

/// A NAME reply of one entry, as sftp-server sends REALPATH and READLINK:
/// the long name is the name, no attributes.
fn one_name(id: u32, name: Bytes) -> Response {
    Response::Name {
        id,
        entries: vec![NameEntry {
            filename: name.clone(),
            longname: name,
            attrs: Attrs::default(),
        }],
    }
}

/// Attributes as sftp-server reports them: mode with its type bits.
pub(crate) fn attrs(m: &Metadata) -> Attrs {
    Attrs {
        size: Some(m.size()),
        uid_gid: Some((m.uid(), m.gid())),
        permissions: Some(m.mode()),
        times: Some((
            u32::try_from(m.atime()).unwrap_or(0),
            u32::try_from(m.mtime()).unwrap_or(0),
        )),
        extended: Vec::new(),
    }
}

fn file_times(atime: u32, mtime: u32) -> std::fs::FileTimes {
    let t = |s: u32| std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::from(s));
    std::fs::FileTimes::new()
        .set_accessed(t(atime))
        .set_modified(t(mtime))
}

/// SETSTAT's order (sftp-server's): size, permissions, times. Owner and
/// group are not changed.
fn set_attrs(path: &Path, a: &Attrs) -> Result<(), Fail> {
    if let Some(size) = a.size {
        std::fs::OpenOptions::new()
            .write(true)
            .open(path)?
            .set_len(size)?;
    }
    if let Some(mode) = a.permissions {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o7777))?;
    }
    if let Some((atime, mtime)) = a.times {
        let at = |s: u32| rustix::fs::Timespec {
            tv_sec: s.into(),
            tv_nsec: 0,
        };
        let times = rustix::fs::Timestamps {
            last_access: at(atime),
            last_modification: at(mtime),
        };
        rustix::fs::utimensat(rustix::fs::CWD, path, &times, rustix::fs::AtFlags::empty())
            .map_err(std::io::Error::from)?;
    }
    Ok(())
}

fn statvfs(v: &rustix::fs::StatVfs) -> Statvfs {
    use rustix::fs::StatVfsMountFlags as M;
    let mut flag = 0;
    if v.f_flag.contains(M::RDONLY) {
        flag |= ext::statvfs_flags::RDONLY;
    }
    if v.f_flag.contains(M::NOSUID) {
        flag |= ext::statvfs_flags::NOSUID;
    }
    Statvfs {
        bsize: v.f_bsize,
        frsize: v.f_frsize,
        blocks: v.f_blocks,
        bfree: v.f_bfree,
        bavail: v.f_bavail,
        files: v.f_files,
        ffree: v.f_ffree,
        favail: v.f_favail,
        fsid: v.f_fsid,
        flag,
        namemax: v.f_namemax,
    }
}

/// A directory's entries, `.` and `..` first, each with its `lstat`
/// attributes and an `ls -l` line; entries that vanish while listed are
/// left out.
fn list(path: &Path) -> std::io::Result<Vec<NameEntry>> {
    let mut entries = Vec::new();
    let now = chrono::Utc::now().timestamp();
    let mut push = |name: &[u8], m: &Metadata| {
        entries.push(NameEntry {
            filename: Bytes::copy_from_slice(name),
            longname: longname(name, m, now),
            attrs: attrs(m),
        });
    };
    for name in [".", ".."] {
        if let Ok(m) = std::fs::metadata(path.join(name)) {
            push(name.as_bytes(), &m);
        }
    }
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        if let Ok(m) = std::fs::symlink_metadata(entry.path()) {
            push(entry.file_name().as_bytes(), &m);
        }
    }
    Ok(entries)
}

/// The line `ls -l` prints, as OpenSSH's `ls_file` writes it (owner and
/// group as numbers): the date with the time if the file changed in the
/// last six months, with the year otherwise. The name is its raw bytes.
fn longname(name: &[u8], m: &Metadata, now: i64) -> Bytes {
    let mtime = m.mtime();
    let recent = now - 365 * 24 * 60 * 60 / 2 < mtime && now >= mtime;
    let when = chrono::DateTime::from_timestamp(mtime, 0)
        .map(|t| t.with_timezone(&chrono::Local))
        .map(|t| {
            t.format(if recent { "%b %e %H:%M" } else { "%b %e  %Y" })
                .to_string()
        })
        .unwrap_or_default();
    let mut line = format!(
        "{} {:>3} {:<8} {:<8} {:>8} {when} ",
        mode_string(m.mode()),
        m.nlink(),
        m.uid(),
        m.gid(),
        m.size()
    )
    .into_bytes();
    line.extend_from_slice(name);
    line.into()
}

/// `strmode(3)`: the type letter, then rwx for owner, group and others
/// with the set-id and sticky bits folded in, then a space (the ACL slot).
fn mode_string(mode: u32) -> String {
    let kind = match mode & 0o170_000 {
        0o040_000 => 'd',
        0o120_000 => 'l',
        0o020_000 => 'c',
        0o060_000 => 'b',
        0o010_000 => 'p',
        0o140_000 => 's',
        _ => '-',
    };
    let bit = |b: u32, c: char| if mode & b != 0 { c } else { '-' };
    let exec =
        |x: u32, special: u32, on: char, off: char| match (mode & x != 0, mode & special != 0) {
            (true, true) => on,
            (false, true) => off,
            (true, false) => 'x',
            (false, false) => '-',
        };
    [
        kind,
        bit(0o400, 'r'),
        bit(0o200, 'w'),
        exec(0o100, 0o4000, 's', 'S'),
        bit(0o040, 'r'),
        bit(0o020, 'w'),
        exec(0o010, 0o2000, 's', 'S'),
        bit(0o004, 'r'),
        bit(0o002, 'w'),
        exec(0o001, 0o1000, 't', 'T'),
        ' ',
    ]
    .iter()
    .collect()
}

/// Removes `.` and resolves `..` without touching the filesystem.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn normalize_paths() {
        let cases = [
            ("/home/u/./a/../b", "/home/u/b"),
            ("/../..", "/"),
            ("/a//b/", "/a/b"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize(Path::new(input)), PathBuf::from(want), "{input}");
        }
    }

    #[test]
    fn mode_strings_as_strmode_writes_them() {
        let cases = [
            (0o100644, "-rw-r--r-- "),
            (0o040755, "drwxr-xr-x "),
            (0o120777, "lrwxrwxrwx "),
            (0o104755, "-rwsr-xr-x "),
            (0o102644, "-rw-r-Sr-- "),
            (0o041777, "drwxrwxrwt "),
            (0o010600, "prw------- "),
        ];
        for (mode, want) in cases {
            assert_eq!(mode_string(mode), want, "{mode:o}");
        }
    }

    // A name that is not UTF-8 is listed byte for byte (russh-sftp's
    // String names replaced \xe9 with U+FFFD).
    #[test]
    fn listing_keeps_names_as_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let name: &[u8] = b"caf\xe9";
        std::fs::write(dir.path().join(OsStr::from_bytes(name)), b"abc").unwrap();
        let entries = list(dir.path()).unwrap();
        let e = entries.iter().find(|e| e.filename == name).unwrap();
        assert_eq!(e.attrs.size, Some(3));
        assert!(e.longname.starts_with(b"-rw"), "{:?}", e.longname);
        assert!(e.longname.ends_with(b" caf\xe9"), "{:?}", e.longname);
        assert_eq!(entries[0].filename, &b"."[..]);
    }
}
