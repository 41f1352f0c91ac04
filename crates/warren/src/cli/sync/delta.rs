//! The delta sender of `warren sync`: the remote helper (warren itself,
//! `warren sync --server` over an exec channel) behind the engine's
//! [`engine::Delta`] callback.
//!
//! Design choice: one helper per sync, one file at a time: a file's
//! transfer is a signature round trip then a stream, and sshd's
//! MaxSessions (10 channels per connection) is mostly taken by the SFTP
//! lanes. Small files never come here (`DELTA_FROM`): SFTP sends many at
//! once.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{Mutex, OnceCell};
use warren_core::delta::{FileMeta, HelperMode, RemoteHelper};
use warren_core::transfer::copy::Pair;
use warren_core::transfer::side::Side;
use warren_core::transfer::sync::{self as engine, DeltaFailed, DeltaSent};
use warren_wire::Chain;

use super::RemoteHelper as Mode;
use crate::cli::cp::Host;

/// What the engine calls for each file to send by delta. The helper is
/// started (found or installed, as `mode` says) at the first such file,
/// so a sync with nothing to update never runs it; `None` when delta
/// transfer is off for this sync. Why it is off is said through `note`,
/// once.
pub fn sender(host: &Host, mode: Mode, note: Note) -> Option<engine::Delta> {
    let mode = match mode {
        Mode::Never => return None,
        Mode::Auto => HelperMode::Auto,
        Mode::Install => HelperMode::Install,
    };
    let Some(session) = host.sessions.first() else {
        note(
            "through a ControlMaster: changed files are sent whole (the helper needs its own connection)",
        );
        return None;
    };
    let handle = session.shared_handle();
    let sftp = host.lanes[0].clone();
    let helper: Arc<OnceCell<Option<Mutex<RemoteHelper>>>> = Arc::new(OnceCell::new());
    let gone = Arc::new(AtomicBool::new(false));
    Some(Arc::new(move |p: Pair| {
        let (helper, gone) = (helper.clone(), gone.clone());
        let (handle, sftp, note) = (handle.clone(), sftp.clone(), note.clone());
        Box::pin(async move {
            let started = helper
                .get_or_init(|| async {
                    match RemoteHelper::start(&handle, &sftp, mode, &*note).await {
                        Ok(h) => h.map(Mutex::new),
                        Err(e) => {
                            note(&format!("{}: changed files are sent whole", Chain(&e)));
                            None
                        }
                    }
                })
                .await;
            let Some(helper) = started else {
                return Err(DeltaFailed("no helper".to_owned()));
            };
            if gone.load(Ordering::Relaxed) {
                return Err(DeltaFailed("the helper is gone".to_owned()));
            }
            let meta = FileMeta {
                mode: Some(p.meta.mode),
                mtime: (p.meta.atime >= 0).then_some((p.meta.mtime, 0)),
            };
            let mut h = helper.lock().await;
            let sent = match (&p.src, &p.dst) {
                (Side::Local, _) => h.push(local(&p.src_path), &p.dst_path, Some(meta)).await,
                (_, Side::Local) => h.pull(&p.src_path, local(&p.dst_path), Some(meta)).await,
                _ => return Err(DeltaFailed("both sides are remote".to_owned())),
            };
            match sent {
                Ok(s) => Ok(DeltaSent {
                    literal: s.literal_bytes,
                    matched: s.matched_bytes,
                }),
                Err(e) => {
                    if !e.send_whole() {
                        gone.store(true, Ordering::Relaxed);
                        note(&format!(
                            "{}: the remaining changed files are sent whole",
                            Chain(&e)
                        ));
                    }
                    Err(DeltaFailed(Chain(&e).to_string()))
                }
            }
        })
    }))
}

/// Says something to the user (unless `-q`).
pub type Note = Arc<dyn Fn(&str) + Send + Sync>;

fn local(p: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(p))
}
