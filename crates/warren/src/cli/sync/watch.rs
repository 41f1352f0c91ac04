//! `warren sync --watch`: after the first sync, keep the destination in
//! step with the local source until interrupted.
//!
//! Design choice: inotify through rustix (already a dependency) rather
//! than the notify crate: one platform, a few calls. Every directory of
//! the source is watched (new ones as they appear); a thread blocks on the
//! events and wakes the sync loop, which waits for a quiet moment
//! ([`QUIET`], at most [`MAX_WAIT`] after the first event) so a burst of
//! writes (a build, a checkout) is one sync, then runs the whole quick
//! check again: only what changed is sent.

use std::ffi::OsStr;
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::fs::inotify::{self, CreateFlags, WatchFlags};
use tokio::sync::mpsc;

/// Quiet time that ends a burst of changes.
const QUIET: Duration = Duration::from_millis(300);
/// Longest wait after the first change of a burst.
const MAX_WAIT: Duration = Duration::from_secs(2);
/// Directories watched, at most.
const MAX_WATCHES: usize = 500_000;

/// Watches every directory under some roots.
pub struct Watcher {
    fd: Arc<OwnedFd>,
    roots: Vec<PathBuf>,
    changes: mpsc::Receiver<()>,
    watched: usize,
}

impl Watcher {
    /// Starts watching `roots` (local directories; a file root watches its
    /// directory).
    pub fn start(roots: Vec<PathBuf>) -> anyhow::Result<Watcher> {
        let fd = Arc::new(
            inotify::init(CreateFlags::CLOEXEC)
                .map_err(|e| anyhow::anyhow!("--watch: inotify: {e}"))?,
        );
        let (tx, changes) = mpsc::channel(1);
        let reader = fd.clone();
        std::thread::Builder::new()
            .name("sync-watch".to_owned())
            .spawn(move || read_events(&reader, &tx))?;
        let mut w = Watcher {
            fd,
            roots,
            changes,
            watched: 0,
        };
        w.rewatch()?;
        Ok(w)
    }

    /// Adds a watch on every directory not yet watched (watching one
    /// twice is harmless: the kernel returns the same watch).
    pub fn rewatch(&mut self) -> anyhow::Result<()> {
        let flags = WatchFlags::CLOSE_WRITE
            | WatchFlags::CREATE
            | WatchFlags::DELETE
            | WatchFlags::MOVED_FROM
            | WatchFlags::MOVED_TO
            | WatchFlags::ATTRIB
            | WatchFlags::MODIFY
            | WatchFlags::DELETE_SELF
            | WatchFlags::ONLYDIR
            | WatchFlags::DONT_FOLLOW;
        let mut dirs: Vec<PathBuf> = self
            .roots
            .iter()
            .map(|r| {
                if r.is_dir() {
                    r.clone()
                } else {
                    r.parent()
                        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
                }
            })
            .collect();
        let mut count = 0;
        while let Some(dir) = dirs.pop() {
            count += 1;
            if count > MAX_WATCHES {
                anyhow::bail!("--watch: more than {MAX_WATCHES} directories to watch");
            }
            match inotify::add_watch(&*self.fd, &dir, flags) {
                Ok(_) => {}
                Err(rustix::io::Errno::NOSPC) => anyhow::bail!(
                    "--watch: the kernel's limit on watches is reached after {count} directories \
                     (raise it: sysctl fs.inotify.max_user_watches=524288)"
                ),
                // Gone since it was listed: the next sync sees that.
                Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR) => continue,
                Err(e) => anyhow::bail!("--watch: {}: {e}", dir.display()),
            }
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    dirs.push(dir.join(e.file_name()));
                }
            }
        }
        self.watched = count;
        Ok(())
    }

    /// Directories watched.
    pub fn watched(&self) -> usize {
        self.watched
    }

    /// Waits for a burst of changes to end; `false` when the watch ended.
    pub async fn next_burst(&mut self) -> bool {
        if self.changes.recv().await.is_none() {
            return false;
        }
        let first = Instant::now();
        loop {
            let left = MAX_WAIT.saturating_sub(first.elapsed());
            if left.is_zero() {
                return true;
            }
            match tokio::time::timeout(QUIET.min(left), self.changes.recv()).await {
                Ok(Some(())) => {}
                Ok(None) => return true,
                Err(_) => return true,
            }
        }
    }
}

/// Blocks on the events and wakes the loop (one pending wake-up is
/// enough: the loop rescans everything).
fn read_events(fd: &OwnedFd, tx: &mpsc::Sender<()>) {
    let mut buf = [MaybeUninit::<u8>::uninit(); 64 * 1024];
    let mut reader = inotify::Reader::new(fd, &mut buf);
    loop {
        match reader.next() {
            Ok(e) => {
                // Temporary files of a copy in flight are not changes.
                let partial = e
                    .file_name()
                    .is_some_and(|n| is_partial(OsStr::from_bytes(n.to_bytes())));
                if partial {
                    continue;
                }
                if tx.is_closed() {
                    return;
                }
                let _ = tx.try_send(());
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return,
        }
    }
}

fn is_partial(name: &OsStr) -> bool {
    let b = name.as_bytes();
    b.starts_with(b".") && b.ends_with(b".warren-partial")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_names_are_not_changes() {
        assert!(is_partial(OsStr::new(".a.bin.warren-partial")));
        assert!(!is_partial(OsStr::new("a.bin")));
    }

    /// A file written under a watched directory, and one in a directory
    /// created after the watch started, each wake the loop.
    #[tokio::test]
    async fn changes_in_new_directories_are_seen() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Watcher::start(vec![dir.path().to_path_buf()]).unwrap();
        std::fs::write(dir.path().join("a"), b"1").unwrap();
        let woke = tokio::time::timeout(Duration::from_secs(20), w.next_burst()).await;
        assert_eq!(woke.ok(), Some(true));
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let _ = tokio::time::timeout(Duration::from_secs(20), w.next_burst()).await;
        w.rewatch().unwrap();
        assert_eq!(w.watched(), 2);
        std::fs::write(dir.path().join("sub/b"), b"2").unwrap();
        let woke = tokio::time::timeout(Duration::from_secs(20), w.next_burst()).await;
        assert_eq!(
            woke.ok(),
            Some(true),
            "a change in a new directory was missed"
        );
    }
}
