//! Rebuilding a file from a basis and a delta, on either side: into
//! `.NAME.warren-partial` beside the target (created exclusively, never
//! through a symlink), every copy checked against the basis's blocks, the
//! length and whole-file hash checked at the end, then fsync, mode and
//! mtime, rename into place. A rebuild dropped before it finished removes
//! its temp file.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::ffi::OsStringExt as _;
use std::os::unix::fs::{FileExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use warren_sync::Op;

use super::FileMeta;
use super::matcher::READ_CHUNK;

/// Why a rebuild failed (each: this file goes whole instead).
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error("{what} {}", .path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the delta copies blocks {index}..+{count}, but the basis has {blocks} blocks")]
    CopyOutOfRange { index: u32, count: u32, blocks: u32 },
    #[error("the basis changed while it was used (it is shorter than its signature said)")]
    BasisShrank,
    #[error("the rebuilt file is {got} bytes, the source {want}")]
    WrongLength { got: u64, want: u64 },
    #[error("the rebuilt file's hash differs from the source's")]
    HashMismatch,
}

/// The basis a delta's copies refer to: the file and the shape of the
/// signature sent for it.
pub struct Basis {
    pub file: File,
    pub block_len: u32,
    pub file_len: u64,
    pub blocks: u32,
}

/// Opens `path` as a basis candidate: a regular file, not through a
/// symlink. `Ok(None)` when there is nothing usable there (absent, a
/// symlink): everything is then sent as literal data.
pub fn open_basis(path: &Path) -> Result<Option<(File, u64, u32)>, RebuildError> {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
            return Ok(None);
        }
        Err(source) => {
            return Err(RebuildError::Io {
                what: "opening",
                path: path.to_owned(),
                source,
            });
        }
    };
    let meta = file.metadata().map_err(|source| RebuildError::Io {
        what: "reading the attributes of",
        path: path.to_owned(),
        source,
    })?;
    if !meta.is_file() {
        return Err(RebuildError::Io {
            what: "rebuilding",
            path: path.to_owned(),
            source: io::Error::other("not a regular file"),
        });
    }
    Ok(Some((file, meta.len(), meta.permissions().mode())))
}

/// `.NAME.warren-partial` beside `target`.
pub fn temp_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.as_encoded_bytes())
        .unwrap_or(b"file");
    let mut temp = b".".to_vec();
    temp.extend_from_slice(name);
    temp.extend_from_slice(b".warren-partial");
    target.with_file_name(OsString::from_vec(temp))
}

/// A file being rebuilt.
pub struct Rebuild {
    target: PathBuf,
    temp: PathBuf,
    file: File,
    basis: Option<Basis>,
    hasher: blake3::Hasher,
    written: u64,
    done: bool,
}

impl Rebuild {
    /// Starts rebuilding `target` from `basis` (its mode is kept unless
    /// the meta given to [`Rebuild::finish`] says otherwise).
    pub fn create(
        target: &Path,
        basis: Option<Basis>,
        mode: Option<u32>,
    ) -> Result<Self, RebuildError> {
        let temp = temp_path(target);
        let io_err = |what, source| RebuildError::Io {
            what,
            path: temp.clone(),
            source,
        };
        let open = || {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode.unwrap_or(0o666) & 0o7777)
                .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
                .open(&temp)
        };
        let file = match open() {
            Ok(f) => f,
            // A partial file left by an earlier run (or anything else put
            // at that name, a symlink included): unlinked, not followed.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                std::fs::remove_file(&temp).map_err(|e| io_err("removing the stale", e))?;
                open().map_err(|e| io_err("creating", e))?
            }
            Err(e) => return Err(io_err("creating", e)),
        };
        Ok(Rebuild {
            target: target.to_owned(),
            temp,
            file,
            basis,
            hasher: blake3::Hasher::new(),
            written: 0,
            done: false,
        })
    }

    pub fn op(&mut self, op: &Op) -> Result<(), RebuildError> {
        match op {
            Op::Data(d) => self.write(d),
            Op::Copy { index, count } => self.copy(*index, *count),
        }
    }

    fn write(&mut self, data: &[u8]) -> Result<(), RebuildError> {
        self.file
            .write_all(data)
            .map_err(|source| RebuildError::Io {
                what: "writing",
                path: self.temp.clone(),
                source,
            })?;
        self.hasher.update(data);
        self.written += data.len() as u64;
        Ok(())
    }

    fn copy(&mut self, index: u32, count: u32) -> Result<(), RebuildError> {
        let out_of_range = |blocks| RebuildError::CopyOutOfRange {
            index,
            count,
            blocks,
        };
        let Some(basis) = &self.basis else {
            return Err(out_of_range(0));
        };
        let blocks = basis.blocks;
        if count == 0 || index.checked_add(count).is_none_or(|end| end > blocks) {
            return Err(out_of_range(blocks));
        }
        let bl = u64::from(basis.block_len);
        let start = u64::from(index) * bl;
        let end = (start + u64::from(count) * bl).min(basis.file_len);
        let basis = self.basis.take();
        let result = self.copy_from(basis.as_ref().map(|b| &b.file), start, end);
        self.basis = basis;
        result
    }

    fn copy_from(&mut self, file: Option<&File>, start: u64, end: u64) -> Result<(), RebuildError> {
        let Some(file) = file else {
            return Err(RebuildError::BasisShrank);
        };
        let mut buf = vec![0; READ_CHUNK.min((end - start) as usize)];
        let mut at = start;
        while at < end {
            let n = buf.len().min((end - at) as usize);
            file.read_exact_at(&mut buf[..n], at).map_err(|e| {
                if e.kind() == io::ErrorKind::UnexpectedEof {
                    RebuildError::BasisShrank
                } else {
                    RebuildError::Io {
                        what: "reading the basis",
                        path: self.target.clone(),
                        source: e,
                    }
                }
            })?;
            self.write(&buf[..n])?;
            at += n as u64;
        }
        Ok(())
    }

    /// Checks the result against the source's length and hash, makes it
    /// durable, sets `meta` and renames it into place.
    pub fn finish(
        mut self,
        file_len: u64,
        file_hash: &[u8; 32],
        meta: &FileMeta,
    ) -> Result<(), RebuildError> {
        if self.written != file_len {
            return Err(RebuildError::WrongLength {
                got: self.written,
                want: file_len,
            });
        }
        if self.hasher.finalize().as_bytes() != file_hash {
            return Err(RebuildError::HashMismatch);
        }
        let io_err = |what, path: &Path, source| RebuildError::Io {
            what,
            path: path.to_owned(),
            source,
        };
        if let Some(mode) = meta.mode {
            self.file
                .set_permissions(std::fs::Permissions::from_mode(mode & 0o7777))
                .map_err(|e| io_err("setting the mode of", &self.temp, e))?;
        }
        if let Some((secs, nsec)) = meta.mtime {
            self.file
                .set_modified(system_time(secs, nsec))
                .map_err(|e| io_err("setting the time of", &self.temp, e))?;
        }
        self.file
            .sync_all()
            .map_err(|e| io_err("syncing", &self.temp, e))?;
        std::fs::rename(&self.temp, &self.target)
            .map_err(|e| io_err("renaming into place", &self.target, e))?;
        self.done = true;
        // The rename itself is made durable with the directory; a failure
        // here loses nothing that is not already in place.
        if let Some(dir) = self.target.parent() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

impl Drop for Rebuild {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// `secs` and `nsec` since the epoch (negative before 1970).
pub fn system_time(secs: i64, nsec: u32) -> SystemTime {
    let nanos = Duration::from_nanos(u64::from(nsec.min(999_999_999)));
    if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs as u64) + nanos
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()) + nanos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partial_exists(target: &Path) -> bool {
        temp_path(target).symlink_metadata().is_ok()
    }

    // The pull side's check: a wrong length or hash leaves the target as
    // it was and removes the temp file. (Was: no rebuild on the driver.)
    #[test]
    fn a_wrong_result_leaves_the_target_and_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("t");
        std::fs::write(&target, b"old contents").unwrap();
        let (file, len, _) = open_basis(&target).unwrap().unwrap();
        let basis = || Basis {
            file: file.try_clone().unwrap(),
            block_len: 4,
            file_len: len,
            blocks: 3,
        };
        let right = *blake3::hash(b"new old ").as_bytes();
        let ops = [Op::Data(b"new ".to_vec()), Op::Copy { index: 0, count: 1 }];
        for (len, hash, want) in [(8, [0; 32], "hash"), (9, right, "9")] {
            let mut r = Rebuild::create(&target, Some(basis()), None).unwrap();
            assert!(partial_exists(&target));
            for op in &ops {
                r.op(op).unwrap();
            }
            let err = r.finish(len, &hash, &FileMeta::default()).unwrap_err();
            assert!(err.to_string().contains(want), "{err}");
            assert_eq!(std::fs::read(&target).unwrap(), b"old contents");
            assert!(!partial_exists(&target));
        }
        let mut r = Rebuild::create(&target, Some(basis()), None).unwrap();
        for op in &ops {
            r.op(op).unwrap();
        }
        r.finish(8, &right, &FileMeta::default()).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"new old ");
        assert!(!partial_exists(&target));
    }

    #[test]
    fn temp_names_sit_beside_the_target() {
        assert_eq!(
            temp_path(Path::new("a/b.txt")),
            Path::new("a/.b.txt.warren-partial")
        );
        assert_eq!(temp_path(Path::new("b")), Path::new(".b.warren-partial"));
    }
}
