//! Either end of a copy: this machine's filesystem or a remote one over
//! SFTP, behind one set of operations, so local to remote, remote to local
//! and remote to remote (through this machine) are the same code.
//!
//! Design choice: paths are bytes on both sides (`OsStr::from_bytes`
//! locally, SFTP strings remotely). A remote side is a set of SFTP
//! sessions, its *lanes* (several channels, possibly on several
//! connections); an open remote file holds one handle per lane it uses,
//! since a handle belongs to the session that opened it. Local file I/O is
//! positional (`pread`/`pwrite` on a shared `File`) in tokio's blocking
//! pool, so every lane reads or writes its own chunks at once.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::{
    DirBuilderExt as _, FileExt as _, MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _,
};
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::OwnedSemaphorePermit;
use warren_sftp::{Attrs, open_flags, status};
use warren_wire::Escaped;

use super::client::{self, SftpClient, SftpError};

/// What a copy needs to know about a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub kind: Kind,
    pub size: u64,
    /// Permission bits (0o7777).
    pub mode: u32,
    pub atime: i64,
    pub mtime: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Other,
}

impl Meta {
    fn from_attrs(a: &Attrs) -> Meta {
        let kind = if a.is_regular() {
            Kind::File
        } else if a.is_dir() {
            Kind::Dir
        } else if a.is_symlink() {
            Kind::Symlink
        } else {
            Kind::Other
        };
        let (atime, mtime) = a.times.unwrap_or((0, 0));
        Meta {
            kind,
            size: a.size.unwrap_or(0),
            mode: a.permissions.unwrap_or(0o644) & 0o7777,
            atime: i64::from(atime),
            mtime: i64::from(mtime),
        }
    }

    fn from_local(m: &std::fs::Metadata) -> Meta {
        let t = m.file_type();
        let kind = if t.is_file() {
            Kind::File
        } else if t.is_dir() {
            Kind::Dir
        } else if t.is_symlink() {
            Kind::Symlink
        } else {
            Kind::Other
        };
        Meta {
            kind,
            size: m.len(),
            mode: m.mode() & 0o7777,
            atime: m.atime(),
            mtime: m.mtime(),
        }
    }
}

/// Why an operation on one side failed, in the words a user needs.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SideError {
    #[error(transparent)]
    Sftp(#[from] SftpError),
    #[error("{}", local_words(.0))]
    Local(Arc<io::Error>),
}

impl From<io::Error> for SideError {
    fn from(e: io::Error) -> SideError {
        SideError::Local(Arc::new(e))
    }
}

fn local_words(e: &io::Error) -> String {
    // io::Error's Display adds "(os error N)"; keep the words.
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

impl SideError {
    pub fn not_found(&self) -> bool {
        match self {
            SideError::Sftp(e) => e.code() == Some(status::NO_SUCH_FILE),
            SideError::Local(e) => e.kind() == io::ErrorKind::NotFound,
        }
    }

    /// The session itself is gone: nothing more can be done on this side.
    pub fn fatal(&self) -> bool {
        matches!(self, SideError::Sftp(SftpError::Lost(_)))
    }
}

/// A remote filesystem: SFTP sessions to one host.
pub struct Remote {
    pub lanes: Vec<Arc<SftpClient>>,
    /// What the user typed for the host, for messages.
    pub name: String,
}

/// One end of a copy.
#[derive(Clone)]
pub enum Side {
    Local,
    Remote(Arc<Remote>),
}

/// An open file, on the lanes it is used through.
pub enum Open {
    Local(Arc<File>),
    /// One `(lane, handle)` per lane in use.
    Remote(Arc<Remote>, Vec<(usize, Bytes)>),
}

/// A path as the user knows it: `host:path` for a remote side.
pub fn shown(side: &Side, path: &[u8]) -> String {
    match side {
        Side::Local => Escaped::new(path).to_string(),
        Side::Remote(r) => format!("{}:{}", r.name, Escaped::new(path)),
    }
}

/// A name that is one path component: not empty, `.` or `..`, no `/`.
pub fn one_component(name: &[u8]) -> bool {
    !name.is_empty() && name != b"." && name != b".." && !name.contains(&b'/')
}

fn os(p: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(p))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> Result<T, SideError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(SideError::from),
        Err(e) => Err(io::Error::other(e).into()),
    }
}

impl Side {
    pub fn lanes(&self) -> usize {
        match self {
            Side::Local => usize::MAX,
            Side::Remote(r) => r.lanes.len(),
        }
    }

    /// The largest read and write this side takes.
    pub fn chunk(&self) -> (u32, u32) {
        match self {
            Side::Local => (client::MAX_CHUNK, client::MAX_CHUNK),
            Side::Remote(r) => r
                .lanes
                .iter()
                .fold((client::MAX_CHUNK, client::MAX_CHUNK), |(rd, wr), c| {
                    (rd.min(c.sizes.read), wr.min(c.sizes.write))
                }),
        }
    }

    /// A request slot on `lane` (none needed locally).
    pub async fn permit(&self, lane: usize) -> Option<OwnedSemaphorePermit> {
        match self {
            Side::Local => None,
            Side::Remote(r) => {
                let c = &r.lanes[lane % r.lanes.len()];
                c.permits().clone().acquire_owned().await.ok()
            }
        }
    }

    fn lane(&self, lane: usize) -> Option<&Arc<SftpClient>> {
        match self {
            Side::Local => None,
            Side::Remote(r) => r.lanes.get(lane % r.lanes.len()),
        }
    }

    /// A path's metadata, symlinks followed.
    pub async fn stat(&self, path: &[u8]) -> Result<Meta, SideError> {
        self.meta(path, true).await
    }

    /// A path's metadata, a symlink itself.
    pub async fn lstat(&self, path: &[u8]) -> Result<Meta, SideError> {
        self.meta(path, false).await
    }

    async fn meta(&self, path: &[u8], follow: bool) -> Result<Meta, SideError> {
        match self.lane(0) {
            None => {
                let p = path.to_vec();
                blocking(move || {
                    if follow {
                        std::fs::metadata(os(&p))
                    } else {
                        std::fs::symlink_metadata(os(&p))
                    }
                })
                .await
                .map(|m| Meta::from_local(&m))
            }
            Some(c) if follow => Ok(Meta::from_attrs(&c.stat(path).await?)),
            Some(c) => Ok(Meta::from_attrs(&c.lstat(path).await?)),
        }
    }

    /// A directory's entries with their (not followed) metadata, sorted by
    /// name.
    pub async fn read_dir(&self, path: &[u8]) -> Result<Vec<(Vec<u8>, Meta)>, SideError> {
        let mut out = match self.lane(0) {
            None => {
                let p = path.to_vec();
                blocking(move || {
                    let mut v = Vec::new();
                    for e in std::fs::read_dir(os(&p))? {
                        let e = e?;
                        let m = e.path().symlink_metadata()?;
                        v.push((e.file_name().as_bytes().to_vec(), Meta::from_local(&m)));
                    }
                    Ok(v)
                })
                .await?
            }
            Some(c) => {
                let mut v = Vec::new();
                for e in c.read_dir(path).await? {
                    // A name is one path component: a server that sends
                    // `../x` or `a/b` (scp's CVE-2019-6111) would have the
                    // copy write outside its target.
                    if !one_component(&e.filename) {
                        return Err(SideError::Sftp(SftpError::Protocol(format!(
                            "the server listed {:?} in {}: not a file name",
                            Escaped::new(&e.filename).to_string(),
                            Escaped::new(path)
                        ))));
                    }
                    // A NAME entry's attributes are lstat's (sftp-server).
                    // Without a type, ask.
                    let meta = if e.attrs.permissions.is_some() {
                        Meta::from_attrs(&e.attrs)
                    } else {
                        Meta::from_attrs(&c.lstat(&join(path, &e.filename)).await?)
                    };
                    v.push((e.filename.to_vec(), meta));
                }
                v
            }
        };
        out.sort_by(|a, b| a.0.cmp(&b.0));
        // The same name twice would be created twice: as a symlink, then
        // as a directory to write into.
        let before = out.len();
        out.dedup_by(|a, b| a.0 == b.0);
        if out.len() != before {
            return Err(SideError::Sftp(SftpError::Protocol(format!(
                "the server listed a name twice in {}",
                Escaped::new(path)
            ))));
        }
        Ok(out)
    }

    pub async fn readlink(&self, path: &[u8]) -> Result<Vec<u8>, SideError> {
        match self.lane(0) {
            None => {
                let p = path.to_vec();
                blocking(move || std::fs::read_link(os(&p)))
                    .await
                    .map(|t| t.as_os_str().as_bytes().to_vec())
            }
            Some(c) => Ok(c.readlink(path).await?.to_vec()),
        }
    }

    /// Makes `link` a symlink to `target`, replacing a symlink or file
    /// already there.
    pub async fn symlink(&self, target: &[u8], link: &[u8]) -> Result<(), SideError> {
        match self.lane(0) {
            None => {
                let (t, l) = (target.to_vec(), link.to_vec());
                blocking(move || match std::os::unix::fs::symlink(os(&t), os(&l)) {
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        if std::fs::symlink_metadata(os(&l))?.is_dir() {
                            return Err(e);
                        }
                        std::fs::remove_file(os(&l))?;
                        std::os::unix::fs::symlink(os(&t), os(&l))
                    }
                    other => other,
                })
                .await
            }
            Some(c) => match c.symlink(target, link).await {
                Err(e) if c.lstat(link).await.is_ok_and(|a| !a.is_dir()) => {
                    let _ = e;
                    c.remove(link).await?;
                    Ok(c.symlink(target, link).await?)
                }
                other => Ok(other?),
            },
        }
    }

    /// Creates directory `path` (a directory already there is fine).
    pub async fn mkdir(&self, path: &[u8], mode: u32) -> Result<(), SideError> {
        match self.lane(0) {
            None => {
                let p = path.to_vec();
                blocking(
                    move || match std::fs::DirBuilder::new().mode(mode).create(os(&p)) {
                        // Not followed: a symlink is not a directory to
                        // write into.
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                            if std::fs::symlink_metadata(os(&p))?.is_dir() {
                                Ok(())
                            } else {
                                Err(io::Error::new(
                                    io::ErrorKind::AlreadyExists,
                                    "exists and is not a directory",
                                ))
                            }
                        }
                        other => other,
                    },
                )
                .await
            }
            Some(c) => {
                let attrs = Attrs {
                    permissions: Some(mode),
                    ..Attrs::default()
                };
                match c.mkdir(path, attrs).await {
                    Ok(()) => Ok(()),
                    Err(e) => match c.stat(path).await {
                        Ok(a) if a.is_dir() => Ok(()),
                        Ok(_) => Err(SftpError::Status {
                            code: status::FAILURE,
                            message: "exists and is not a directory".to_owned(),
                        }
                        .into()),
                        Err(_) => Err(e.into()),
                    },
                }
            }
        }
    }

    /// Sets a path's mode and times (`-p`), following symlinks; only the
    /// mode when `meta.atime` is negative.
    pub async fn set_meta(&self, path: &[u8], meta: &Meta) -> Result<(), SideError> {
        let m = *meta;
        match self.lane(0) {
            None => {
                let p = path.to_vec();
                blocking(move || {
                    std::fs::set_permissions(os(&p), std::fs::Permissions::from_mode(m.mode))?;
                    if m.atime < 0 {
                        return Ok(());
                    }
                    set_local_times(os(&p), m.atime, m.mtime)
                })
                .await
            }
            Some(c) => {
                let mut attrs = preserve_attrs(&m);
                if m.atime < 0 {
                    attrs.times = None;
                }
                Ok(c.setstat(path, attrs).ok().await?)
            }
        }
    }

    pub async fn remove(&self, path: &[u8]) -> Result<(), SideError> {
        match self.lane(0) {
            None => {
                let p = path.to_vec();
                blocking(move || std::fs::remove_file(os(&p))).await
            }
            Some(c) => Ok(c.remove(path).await?),
        }
    }

    /// Removes an empty directory.
    pub async fn rmdir(&self, path: &[u8]) -> Result<(), SideError> {
        match self.lane(0) {
            None => {
                let p = path.to_vec();
                blocking(move || std::fs::remove_dir(os(&p))).await
            }
            Some(c) => Ok(c
                .send(|id| warren_sftp::Request::RmDir {
                    id,
                    path: Bytes::copy_from_slice(path),
                })
                .ok()
                .await?),
        }
    }

    /// Renames `from` onto `to`, replacing it atomically where the side
    /// can.
    pub async fn rename_over(&self, from: &[u8], to: &[u8]) -> Result<(), SideError> {
        match self.lane(0) {
            None => {
                let (f, t) = (from.to_vec(), to.to_vec());
                blocking(move || std::fs::rename(os(&f), os(&t))).await
            }
            Some(c) => Ok(c.rename_over(from, to).await?),
        }
    }

    /// Opens `path` for reading on `lanes` lanes, starting at `first`.
    pub async fn open_read(
        &self,
        path: &[u8],
        first: usize,
        lanes: usize,
    ) -> Result<Open, SideError> {
        match self {
            Side::Local => {
                let p = path.to_vec();
                blocking(move || File::open(os(&p)))
                    .await
                    .map(|f| Open::Local(Arc::new(f)))
            }
            Side::Remote(r) => {
                open_lanes(r, path, open_flags::READ, Attrs::default(), first, lanes).await
            }
        }
    }

    /// Opens `path` for writing on `lanes` lanes: created (mode `mode`)
    /// and emptied when `truncate`, else kept as it is.
    pub async fn open_write(
        &self,
        path: &[u8],
        mode: u32,
        truncate: bool,
        first: usize,
        lanes: usize,
    ) -> Result<Open, SideError> {
        match self {
            Side::Local => {
                let p = path.to_vec();
                blocking(move || {
                    std::fs::OpenOptions::new()
                        .write(true)
                        .read(true)
                        .create(true)
                        .truncate(truncate)
                        .mode(mode)
                        // The partial name is never followed: a symlink
                        // there (a remote tree can hold one) would have
                        // the copy write wherever it points.
                        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
                        .open(os(&p))
                })
                .await
                .map(|f| Open::Local(Arc::new(f)))
            }
            Side::Remote(r) => {
                let attrs = Attrs {
                    permissions: Some(mode),
                    ..Attrs::default()
                };
                // The first lane creates (and empties) the file; the
                // others open what it made.
                let flags = open_flags::WRITE | open_flags::READ | open_flags::CREAT;
                let head = open_lanes(
                    r,
                    path,
                    if truncate {
                        flags | open_flags::TRUNC
                    } else {
                        flags
                    },
                    attrs.clone(),
                    first,
                    1,
                )
                .await?;
                if lanes <= 1 {
                    return Ok(head);
                }
                let rest = open_lanes(r, path, flags, attrs, first + 1, lanes - 1).await;
                match (head, rest) {
                    (Open::Remote(r, mut a), Ok(Open::Remote(_, b))) => {
                        a.extend(b);
                        Ok(Open::Remote(r, a))
                    }
                    (head, Err(e)) => {
                        head.close().await;
                        Err(e)
                    }
                    (head, Ok(_)) => Ok(head),
                }
            }
        }
    }
}

async fn open_lanes(
    r: &Arc<Remote>,
    path: &[u8],
    flags: u32,
    attrs: Attrs,
    first: usize,
    lanes: usize,
) -> Result<Open, SideError> {
    let n = r.lanes.len();
    // All the OPENs go out before any answer is awaited: one round trip.
    let sent: Vec<_> = (0..lanes.min(n))
        .map(|i| {
            let lane = (first + i) % n;
            (lane, r.lanes[lane].open_request(path, flags, attrs.clone()))
        })
        .collect();
    let mut opened: Vec<(usize, Bytes)> = Vec::with_capacity(sent.len());
    let mut failed = None;
    for (lane, pending) in sent {
        match pending.reply().await.and_then(client::handle) {
            Ok(h) => opened.push((lane, h)),
            Err(e) => failed = Some(e),
        }
    }
    let open = Open::Remote(r.clone(), opened);
    match failed {
        Some(e) => {
            open.close().await;
            Err(e.into())
        }
        None => Ok(open),
    }
}

/// The attributes `-p` sets: mode and times.
pub fn preserve_attrs(m: &Meta) -> Attrs {
    let t = |v: i64| u32::try_from(v.max(0)).unwrap_or(u32::MAX);
    Attrs {
        permissions: Some(m.mode),
        // A negative atime: the mode only.
        times: (m.atime >= 0).then(|| (t(m.atime), t(m.mtime))),
        ..Attrs::default()
    }
}

fn set_local_times(p: &Path, atime: i64, mtime: i64) -> io::Result<()> {
    use rustix::fs::{AtFlags, CWD, Timespec, Timestamps, utimensat};
    let ts = |s: i64| Timespec {
        tv_sec: s,
        tv_nsec: 0,
    };
    utimensat(
        CWD,
        p,
        &Timestamps {
            last_access: ts(atime),
            last_modification: ts(mtime),
        },
        AtFlags::empty(),
    )
    .map_err(io::Error::from)
}

/// `dir/name` (a `dir` of `.` or empty gives `name`).
pub fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    if dir.is_empty() || dir == b"." {
        return name.to_vec();
    }
    let mut p = dir.to_vec();
    if p.last() != Some(&b'/') {
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

impl Open {
    /// Reads `len` bytes at `offset` through `lane`; fewer only at end of
    /// file.
    pub async fn read_at(&self, lane: usize, offset: u64, len: u32) -> Result<Bytes, SideError> {
        match self {
            Open::Local(f) => {
                let f = f.clone();
                blocking(move || {
                    let mut buf = vec![0u8; len as usize];
                    let mut got = 0;
                    while got < buf.len() {
                        match f.read_at(&mut buf[got..], offset + got as u64) {
                            Ok(0) => break,
                            Ok(n) => got += n,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(e) => return Err(e),
                        }
                    }
                    buf.truncate(got);
                    Ok(Bytes::from(buf))
                })
                .await
            }
            Open::Remote(r, handles) => {
                let (l, h) = &handles[lane % handles.len()];
                let c = &r.lanes[*l];
                let first = client::data(c.read(h, offset, len).reply().await?)?;
                let Some(first) = first else {
                    return Ok(Bytes::new());
                };
                if first.len() > len as usize {
                    return Err(SideError::Sftp(SftpError::Protocol(format!(
                        "{} bytes in answer to a read of {len}",
                        first.len()
                    ))));
                }
                if first.len() == len as usize {
                    return Ok(first);
                }
                // A short read that is not the end: ask for the rest.
                let mut all = first.to_vec();
                while all.len() < len as usize {
                    let at = offset + all.len() as u64;
                    let want = len - u32::try_from(all.len()).unwrap_or(len);
                    match client::data(c.read(h, at, want).reply().await?)? {
                        Some(more) if more.len() > want as usize => {
                            return Err(SideError::Sftp(SftpError::Protocol(format!(
                                "{} bytes in answer to a read of {want}",
                                more.len()
                            ))));
                        }
                        Some(more) if !more.is_empty() => all.extend_from_slice(&more),
                        _ => break,
                    }
                }
                Ok(Bytes::from(all))
            }
        }
    }

    /// Writes `data` at `offset` through `lane`.
    pub async fn write_at(&self, lane: usize, offset: u64, data: Bytes) -> Result<(), SideError> {
        match self {
            Open::Local(f) => {
                let f = f.clone();
                blocking(move || f.write_all_at(&data, offset)).await
            }
            Open::Remote(r, handles) => {
                let (l, h) = &handles[lane % handles.len()];
                Ok(r.lanes[*l].write(h, offset, data).ok().await?)
            }
        }
    }

    /// The file's size as the side sees it now (after every write).
    pub async fn size(&self) -> Result<u64, SideError> {
        match self {
            Open::Local(f) => {
                let f = f.clone();
                blocking(move || f.metadata().map(|m| m.len())).await
            }
            Open::Remote(r, handles) => {
                let (l, h) = handles.first().ok_or_else(no_handle)?;
                let a = client::attrs(r.lanes[*l].fstat(h).reply().await?)?;
                a.size.ok_or_else(|| {
                    SideError::Sftp(SftpError::Protocol("FSTAT without a size".to_owned()))
                })
            }
        }
    }

    /// Writes `tail` (offset, data) if given, makes the written data
    /// durable (fsync; `fsync@openssh.com` remotely, when offered), checks
    /// the size is `size`, sets `meta`'s mode and times if given, and
    /// closes every handle. Remotely these go out together: one round trip
    /// (a small file is written and finished in one).
    pub async fn finish(
        self,
        tail: Option<(u64, Bytes)>,
        size: u64,
        meta: Option<&Meta>,
    ) -> Result<(), SideError> {
        match self {
            Open::Local(f) => {
                let m = meta.copied();
                blocking(move || {
                    if let Some((offset, data)) = tail {
                        f.write_all_at(&data, offset)?;
                    }
                    f.sync_data()?;
                    let got = f.metadata()?.len();
                    if got != size {
                        return Err(io::Error::other(format!(
                            "wrote {got} bytes where {size} were expected"
                        )));
                    }
                    if let Some(m) = m {
                        f.set_permissions(std::fs::Permissions::from_mode(m.mode))?;
                    }
                    Ok(())
                })
                .await
            }
            Open::Remote(r, handles) => {
                let Some((first_lane, first)) = handles.first().cloned() else {
                    return Err(no_handle());
                };
                let c = r.lanes[first_lane].clone();
                // Every lane's writes must be answered before one fsync
                // covers them: the callers await each write, so they are;
                // `tail` goes on this handle, before the fsync.
                let write = tail.map(|(offset, data)| c.write(&first, offset, data));
                let fsync = c.fsync(&first);
                let fstat = c.fstat(&first);
                let set = meta.map(|m| c.fsetstat(&first, preserve_attrs(m)));
                let closes: Vec<_> = handles.iter().map(|(l, h)| r.lanes[*l].close(h)).collect();
                let mut result = Ok(());
                if let Some(p) = write {
                    result = result.and(p.ok().await.map_err(SideError::from));
                }
                if let Some(p) = fsync {
                    result = result.and(p.ok().await.map_err(SideError::from));
                }
                let got = client::attrs(fstat.reply().await?)?.size;
                if let Some(p) = set {
                    result = result.and(p.ok().await.map_err(SideError::from));
                }
                for p in closes {
                    result = result.and(p.ok().await.map_err(SideError::from));
                }
                result?;
                match got {
                    Some(got) if got != size => Err(SideError::Sftp(SftpError::Protocol(format!(
                        "the file holds {got} bytes where {size} were written"
                    )))),
                    _ => Ok(()),
                }
            }
        }
    }

    /// Asks for the data written so far to be made durable, and waits for
    /// it; a failure is left for the fsync that ends the copy to report.
    pub async fn flush(&self) {
        match self {
            Open::Local(f) => {
                let f = f.clone();
                let _ = blocking(move || f.sync_data()).await;
            }
            Open::Remote(r, handles) => {
                if let Some((l, h)) = handles.first()
                    && let Some(p) = r.lanes[*l].fsync(h)
                {
                    let _ = p.reply().await;
                }
            }
        }
    }

    /// Closes every handle without waiting for the answers (a file that
    /// was only read).
    pub fn release(self) {
        if let Open::Remote(r, handles) = self {
            for (l, h) in &handles {
                drop(r.lanes[*l].close(h));
            }
        }
    }

    /// Closes every handle, ignoring errors (after a failure).
    pub async fn close(self) {
        if let Open::Remote(r, handles) = self {
            let closes: Vec<_> = handles.iter().map(|(l, h)| r.lanes[*l].close(h)).collect();
            for p in closes {
                let _ = p.reply().await;
            }
        }
    }
}

fn no_handle() -> SideError {
    SideError::Sftp(SftpError::Protocol("no handle open".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_single_components_are_file_names() {
        for bad in [&b""[..], b".", b"..", b"../x", b"a/b", b"/etc"] {
            assert!(!one_component(bad), "{bad:?}");
        }
        for good in [&b"a"[..], b"..a", b"-x", b"\xff name"] {
            assert!(one_component(good), "{good:?}");
        }
    }

    #[test]
    fn joined_paths_have_one_slash() {
        assert_eq!(join(b".", b"x"), b"x");
        assert_eq!(join(b"", b"x"), b"x");
        assert_eq!(join(b"a/", b"x"), b"a/x");
        assert_eq!(join(b"/", b"x"), b"/x");
    }
}
