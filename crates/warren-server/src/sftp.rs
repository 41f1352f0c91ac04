//! The `sftp` subsystem on the real filesystem, as the login user, so
//! OpenSSH's `sftp` and `scp` (SFTP mode by default since OpenSSH 9) work.
//! The protocol is russh-sftp's; this module maps each request onto
//! tokio's filesystem calls.
//!
//! Design choices: relative paths are resolved against the login's home
//! directory (the server process never changes directory: sessions share
//! it), as sftp-server resolves them against its working directory, home.
//! OpenSSH's quirks are kept: SSH_FXP_SYMLINK takes the target first, and
//! a plain rename refuses to replace an existing file while the
//! `posix-rename@openssh.com` extension replaces it.

use std::collections::HashMap;
use std::io::SeekFrom;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use russh::Channel;
use russh::server::Msg;
use russh_sftp::protocol::{
    Attrs, Data, File, FileAttributes, Handle, Name, OpenFlags, Packet, Status, StatusCode, Version,
};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _, AsyncWriteExt as _};
use tracing::{debug, info};
use warren_core::forward::SERVER_QUEUE_LIMIT;
use warren_core::forward::pump::{Counters, pump};

use crate::session::Context;

/// Largest read served at once (OpenSSH's sftp-server limit).
const MAX_READ: u32 = 256 * 1024;
/// Directory entries per SSH_FXP_NAME reply.
const DIR_CHUNK: usize = 100;
/// Open handles per session, at most.
const MAX_HANDLES: usize = 512;

/// Starts the subsystem `name` on `channel`.
pub fn start(ctx: &Context<'_>, name: &str, channel: Channel<Msg>) -> Result<(), String> {
    if name != "sftp" {
        return Err(format!("unknown subsystem {name:?}"));
    }
    if !ctx.config.sftp {
        return Err("the sftp subsystem is disabled (--no-sftp)".into());
    }
    info!(peer = %ctx.peer, "sftp session");
    let handler = Fs::new(ctx.config.login.home.clone());
    // russh-sftp ends by dropping its stream, which would close the
    // channel with no exit status (scp then reports failure); serving it
    // through a pipe lets the session end as sftp-server's does.
    let (ours, theirs) = tokio::io::duplex(256 * 1024);
    let (id, handle, token) = (channel.id(), ctx.handle.clone(), ctx.token.clone());
    tokio::spawn(async move {
        russh_sftp::server::run(theirs, handler).await;
        let counters = Arc::new(Counters::default());
        tokio::select! {
            _ = pump(ours, channel, Bytes::new(), SERVER_QUEUE_LIMIT, counters) => {}
            () = token.cancelled() => {}
        }
        let _ = handle.exit_status_request(id, 0).await;
        let _ = handle.close(id).await;
    });
    Ok(())
}

enum Open {
    File(tokio::fs::File),
    Dir(Option<std::vec::IntoIter<File>>, PathBuf),
}

/// One SFTP session's state: its open handles.
struct Fs {
    home: PathBuf,
    handles: HashMap<String, Open>,
    next: u64,
}

fn status(id: u32) -> Status {
    Status {
        id,
        status_code: StatusCode::Ok,
        error_message: "Ok".into(),
        language_tag: "en-US".into(),
    }
}

fn io_status(e: &std::io::Error) -> StatusCode {
    match e.kind() {
        std::io::ErrorKind::NotFound => StatusCode::NoSuchFile,
        std::io::ErrorKind::PermissionDenied => StatusCode::PermissionDenied,
        _ => StatusCode::Failure,
    }
}

/// Attributes as sftp-server reports them: mode with its type bits.
fn attrs(m: &std::fs::Metadata) -> FileAttributes {
    FileAttributes {
        size: Some(m.size()),
        uid: Some(m.uid()),
        gid: Some(m.gid()),
        permissions: Some(m.mode()),
        atime: Some(u32::try_from(m.atime()).unwrap_or(0)),
        mtime: Some(u32::try_from(m.mtime()).unwrap_or(0)),
        ..Default::default()
    }
}

fn file_times(atime: u32, mtime: u32) -> std::fs::FileTimes {
    let t = |s: u32| std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::from(s));
    std::fs::FileTimes::new()
        .set_accessed(t(atime))
        .set_modified(t(mtime))
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

impl Fs {
    fn new(home: PathBuf) -> Fs {
        Fs {
            home,
            handles: HashMap::new(),
            next: 0,
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        if p.is_empty() {
            self.home.clone()
        } else {
            self.home.join(p)
        }
    }

    fn add(&mut self, open: Open) -> Result<String, StatusCode> {
        if self.handles.len() >= MAX_HANDLES {
            return Err(StatusCode::Failure);
        }
        self.next += 1;
        let h = self.next.to_string();
        self.handles.insert(h.clone(), open);
        Ok(h)
    }

    fn file(&mut self, handle: &str) -> Result<&mut tokio::fs::File, StatusCode> {
        match self.handles.get_mut(handle) {
            Some(Open::File(f)) => Ok(f),
            _ => Err(StatusCode::Failure),
        }
    }

    async fn set_attrs(path: &Path, a: &FileAttributes) -> Result<(), StatusCode> {
        let e = |e: std::io::Error| io_status(&e);
        if let Some(size) = a.size {
            let f = tokio::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .await
                .map_err(e)?;
            f.set_len(size).await.map_err(e)?;
        }
        if let Some(mode) = a.permissions {
            tokio::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o7777))
                .await
                .map_err(e)?;
        }
        if let (Some(atime), Some(mtime)) = (a.atime, a.mtime) {
            let f = std::fs::File::open(path).map_err(e)?;
            f.set_times(file_times(atime, mtime)).map_err(e)?;
        }
        Ok(())
    }

    async fn list(path: &Path) -> std::io::Result<Vec<File>> {
        let mut files = Vec::new();
        for name in [".", ".."] {
            if let Ok(m) = tokio::fs::metadata(path.join(name)).await {
                files.push(File::new(name, attrs(&m)));
            }
        }
        let mut dir = tokio::fs::read_dir(path).await?;
        while let Some(entry) = dir.next_entry().await? {
            let Ok(m) = tokio::fs::symlink_metadata(entry.path()).await else {
                continue;
            };
            files.push(File::new(entry.file_name().to_string_lossy(), attrs(&m)));
        }
        Ok(files)
    }

    async fn extension(
        &mut self,
        id: u32,
        request: &str,
        data: &[u8],
    ) -> Result<Packet, StatusCode> {
        let e = |e: std::io::Error| io_status(&e);
        let mut r = data;
        match request {
            "posix-rename@openssh.com" => {
                let (from, to) = (ssh_string(&mut r)?, ssh_string(&mut r)?);
                tokio::fs::rename(self.path(&from), self.path(&to))
                    .await
                    .map_err(e)?;
            }
            "hardlink@openssh.com" => {
                let (from, to) = (ssh_string(&mut r)?, ssh_string(&mut r)?);
                tokio::fs::hard_link(self.path(&from), self.path(&to))
                    .await
                    .map_err(e)?;
            }
            "fsync@openssh.com" => {
                let handle = ssh_string(&mut r)?;
                self.file(&handle)?.sync_all().await.map_err(e)?;
            }
            _ => return Err(StatusCode::OpUnsupported),
        }
        Ok(Packet::Status(status(id)))
    }
}

/// One SSH string (u32 length, bytes) off the front of `r` (public for
/// the fuzz targets).
#[doc(hidden)]
pub fn ssh_string(r: &mut &[u8]) -> Result<String, StatusCode> {
    let len = r
        .get(..4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .ok_or(StatusCode::BadMessage)?;
    let s = r.get(4..4 + len).ok_or(StatusCode::BadMessage)?;
    let out = String::from_utf8_lossy(s).into_owned();
    *r = &r[4 + len..];
    Ok(out)
}

impl russh_sftp::server::Handler for Fs {
    type Error = StatusCode;

    fn unimplemented(&self) -> StatusCode {
        StatusCode::OpUnsupported
    }

    async fn init(
        &mut self,
        version: u32,
        _: HashMap<String, String>,
    ) -> Result<Version, StatusCode> {
        debug!(version, "sftp init");
        let mut v = Version::new();
        for ext in [
            "posix-rename@openssh.com",
            "hardlink@openssh.com",
            "fsync@openssh.com",
        ] {
            v.extensions.insert(ext.into(), "1".into());
        }
        Ok(v)
    }

    async fn open(
        &mut self,
        id: u32,
        filename: String,
        pflags: OpenFlags,
        a: FileAttributes,
    ) -> Result<Handle, StatusCode> {
        let mut options: std::fs::OpenOptions = pflags.into();
        std::os::unix::fs::OpenOptionsExt::mode(
            &mut options,
            a.permissions.unwrap_or(0o666) & 0o7777,
        );
        let path = self.path(&filename);
        let file = tokio::fs::OpenOptions::from(options)
            .open(&path)
            .await
            .map_err(|e| io_status(&e))?;
        Ok(Handle {
            id,
            handle: self.add(Open::File(file))?,
        })
    }

    async fn close(&mut self, id: u32, handle: String) -> Result<Status, StatusCode> {
        match self.handles.remove(&handle) {
            Some(Open::File(mut f)) => {
                f.flush().await.map_err(|e| io_status(&e))?;
                Ok(status(id))
            }
            Some(Open::Dir(..)) => Ok(status(id)),
            None => Err(StatusCode::Failure),
        }
    }

    async fn read(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        len: u32,
    ) -> Result<Data, StatusCode> {
        let f = self.file(&handle)?;
        f.seek(SeekFrom::Start(offset))
            .await
            .map_err(|e| io_status(&e))?;
        let mut data = vec![0u8; len.min(MAX_READ) as usize];
        let mut filled = 0;
        while filled < data.len() {
            match f
                .read(&mut data[filled..])
                .await
                .map_err(|e| io_status(&e))?
            {
                0 => break,
                n => filled += n,
            }
        }
        if filled == 0 && !data.is_empty() {
            return Err(StatusCode::Eof);
        }
        data.truncate(filled);
        Ok(Data { id, data })
    }

    async fn write(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        data: Vec<u8>,
    ) -> Result<Status, StatusCode> {
        let f = self.file(&handle)?;
        f.seek(SeekFrom::Start(offset))
            .await
            .map_err(|e| io_status(&e))?;
        f.write_all(&data).await.map_err(|e| io_status(&e))?;
        Ok(status(id))
    }

    async fn lstat(&mut self, id: u32, path: String) -> Result<Attrs, StatusCode> {
        let m = tokio::fs::symlink_metadata(self.path(&path))
            .await
            .map_err(|e| io_status(&e))?;
        Ok(Attrs {
            id,
            attrs: attrs(&m),
        })
    }

    async fn stat(&mut self, id: u32, path: String) -> Result<Attrs, StatusCode> {
        let m = tokio::fs::metadata(self.path(&path))
            .await
            .map_err(|e| io_status(&e))?;
        Ok(Attrs {
            id,
            attrs: attrs(&m),
        })
    }

    async fn fstat(&mut self, id: u32, handle: String) -> Result<Attrs, StatusCode> {
        let m = match self.handles.get(&handle) {
            Some(Open::File(f)) => f.metadata().await,
            Some(Open::Dir(_, p)) => tokio::fs::metadata(p).await,
            None => return Err(StatusCode::Failure),
        };
        Ok(Attrs {
            id,
            attrs: attrs(&m.map_err(|e| io_status(&e))?),
        })
    }

    async fn setstat(
        &mut self,
        id: u32,
        path: String,
        a: FileAttributes,
    ) -> Result<Status, StatusCode> {
        Self::set_attrs(&self.path(&path), &a).await?;
        Ok(status(id))
    }

    async fn fsetstat(
        &mut self,
        id: u32,
        handle: String,
        a: FileAttributes,
    ) -> Result<Status, StatusCode> {
        let f = self.file(&handle)?;
        if let Some(size) = a.size {
            f.set_len(size).await.map_err(|e| io_status(&e))?;
        }
        if let Some(mode) = a.permissions {
            f.set_permissions(std::fs::Permissions::from_mode(mode & 0o7777))
                .await
                .map_err(|e| io_status(&e))?;
        }
        if let (Some(atime), Some(mtime)) = (a.atime, a.mtime) {
            let f = f
                .try_clone()
                .await
                .map_err(|e| io_status(&e))?
                .into_std()
                .await;
            f.set_times(file_times(atime, mtime))
                .map_err(|e| io_status(&e))?;
        }
        Ok(status(id))
    }

    async fn opendir(&mut self, id: u32, path: String) -> Result<Handle, StatusCode> {
        let path = self.path(&path);
        let m = tokio::fs::metadata(&path)
            .await
            .map_err(|e| io_status(&e))?;
        if !m.is_dir() {
            return Err(StatusCode::Failure);
        }
        Ok(Handle {
            id,
            handle: self.add(Open::Dir(None, path))?,
        })
    }

    async fn readdir(&mut self, id: u32, handle: String) -> Result<Name, StatusCode> {
        let Some(Open::Dir(entries, path)) = self.handles.get_mut(&handle) else {
            return Err(StatusCode::Failure);
        };
        if entries.is_none() {
            *entries = Some(
                Self::list(path)
                    .await
                    .map_err(|e| io_status(&e))?
                    .into_iter(),
            );
        }
        let files: Vec<File> = entries
            .as_mut()
            .map(|it| it.take(DIR_CHUNK).collect())
            .unwrap_or_default();
        if files.is_empty() {
            return Err(StatusCode::Eof);
        }
        Ok(Name { id, files })
    }

    async fn remove(&mut self, id: u32, filename: String) -> Result<Status, StatusCode> {
        tokio::fs::remove_file(self.path(&filename))
            .await
            .map_err(|e| io_status(&e))?;
        Ok(status(id))
    }

    async fn mkdir(
        &mut self,
        id: u32,
        path: String,
        a: FileAttributes,
    ) -> Result<Status, StatusCode> {
        let mut b = tokio::fs::DirBuilder::new();
        b.mode(a.permissions.unwrap_or(0o777) & 0o7777);
        b.create(self.path(&path))
            .await
            .map_err(|e| io_status(&e))?;
        Ok(status(id))
    }

    async fn rmdir(&mut self, id: u32, path: String) -> Result<Status, StatusCode> {
        tokio::fs::remove_dir(self.path(&path))
            .await
            .map_err(|e| io_status(&e))?;
        Ok(status(id))
    }

    async fn realpath(&mut self, id: u32, path: String) -> Result<Name, StatusCode> {
        let full = self.path(&path);
        let resolved = tokio::fs::canonicalize(&full)
            .await
            .unwrap_or_else(|_| normalize(&full));
        Ok(Name {
            id,
            files: vec![File::dummy(resolved.to_string_lossy())],
        })
    }

    async fn rename(
        &mut self,
        id: u32,
        oldpath: String,
        newpath: String,
    ) -> Result<Status, StatusCode> {
        let to = self.path(&newpath);
        if tokio::fs::symlink_metadata(&to).await.is_ok() {
            return Err(StatusCode::Failure);
        }
        tokio::fs::rename(self.path(&oldpath), to)
            .await
            .map_err(|e| io_status(&e))?;
        Ok(status(id))
    }

    async fn readlink(&mut self, id: u32, path: String) -> Result<Name, StatusCode> {
        let target = tokio::fs::read_link(self.path(&path))
            .await
            .map_err(|e| io_status(&e))?;
        Ok(Name {
            id,
            files: vec![File::dummy(target.to_string_lossy())],
        })
    }

    // OpenSSH sends the target first (its documented deviation from the
    // draft); its clients and sftp-server agree on that order.
    async fn symlink(
        &mut self,
        id: u32,
        linkpath: String,
        targetpath: String,
    ) -> Result<Status, StatusCode> {
        let (target, link) = (linkpath, targetpath);
        tokio::fs::symlink(&target, self.path(&link))
            .await
            .map_err(|e| io_status(&e))?;
        Ok(status(id))
    }

    async fn extended(
        &mut self,
        id: u32,
        request: String,
        data: Vec<u8>,
    ) -> Result<Packet, StatusCode> {
        self.extension(id, &request, &data).await
    }
}

#[cfg(test)]
mod tests {
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
    fn ssh_strings() {
        let data = [0, 0, 0, 1, b'a', 0, 0, 0, 2, b'b', b'c'];
        let mut r = &data[..];
        assert_eq!(ssh_string(&mut r).unwrap(), "a");
        assert_eq!(ssh_string(&mut r).unwrap(), "bc");
        assert!(ssh_string(&mut r).is_err());
        let short = [0, 0, 0, 9, b'a'];
        assert!(ssh_string(&mut &short[..]).is_err());
    }
}
