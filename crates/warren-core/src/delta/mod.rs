//! Delta transfer for `warren sync`: the helper that runs on the far side
//! as `warren sync --server` over an SSH exec channel, and the driver that
//! speaks to it (warren-sync's `proto`), both directions.
//!
//! - [`helper`]: the far side's blocking loop on stdin and stdout;
//! - [`driver`]: [`RemoteHelper`], which finds or installs the helper and
//!   pushes or pulls one file at a time;
//! - [`matcher`]: rsync's matching over a file read in chunks;
//! - [`rebuild`]: a file rebuilt from its basis into a temp file beside
//!   it, checked against the source's hash, renamed into place.
//!
//! Design choice: a rebuilt file is trusted only when its length and
//! whole-file BLAKE3 hash are the source's; anything else (a changed
//! basis, a hostile or buggy delta) leaves the target untouched and is
//! reported as [`DeltaError::Refused`], which means "send this file whole".

pub mod driver;
pub mod helper;
pub mod matcher;
pub mod rebuild;

use std::ffi::OsString;
use std::path::PathBuf;

pub use driver::{HelperMode, RemoteHelper, auto_command};

/// Strong-sum bytes per block a signature carries on the wire. rsync
/// sends as few as 2 to 3 (a 1 GiB file: 3) and redoes a file whose
/// checksum then fails; 8 bytes after the 32-bit weak sum make a false
/// block match practically impossible (about 2^-96 per candidate), and the
/// whole-file hash still catches one. Against all 16 this takes 40% off a
/// signature: 12 bytes a block instead of 20.
pub const STRONG_ON_WIRE: u8 = 8;

/// Attributes to set on a transferred file; `None` leaves them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileMeta {
    /// Permission bits (`& 0o7777`).
    pub mode: Option<u32>,
    /// Seconds since the epoch and nanoseconds.
    pub mtime: Option<(i64, u32)>,
}

/// What one delta transfer cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeltaStats {
    /// Bytes sent as literal data (not found in the basis).
    pub literal_bytes: u64,
    /// Bytes copied from the basis.
    pub matched_bytes: u64,
    /// Bytes on the helper's channel, both ways (signature, delta, framing).
    pub wire_bytes: u64,
}

/// Why a delta transfer failed.
#[derive(Debug, thiserror::Error)]
pub enum DeltaError {
    /// This file could not be done by delta (the helper refused it, or the
    /// rebuilt file's hash did not match): send it whole. The helper goes on.
    #[error("{path}: delta transfer failed: {reason}")]
    Refused { path: String, reason: String },
    /// A local file could not be read or written.
    #[error("{what} {}", .path.display())]
    Local {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The helper or the session is gone: no more delta on this session.
    #[error("{0}")]
    Gone(String),
    /// The helper said something it should not have; it is unusable.
    #[error("sync helper protocol error: {0}")]
    Protocol(String),
    /// Installing the helper failed.
    #[error("installing the sync helper: {0}")]
    Install(String),
}

impl DeltaError {
    /// Whether only this file failed (send it whole; the helper is still
    /// usable), as opposed to the helper or the session being gone.
    pub fn send_whole(&self) -> bool {
        matches!(self, DeltaError::Refused { .. } | DeltaError::Local { .. })
    }
}

/// `warren sync --server ARGS`: the helper's side, on stdin and stdout.
/// Returns the process's exit status.
pub fn serve_stdio(args: &[OsString]) -> u8 {
    if let Some(a) = args.first() {
        eprintln!(
            "warren sync --server: unexpected argument {}",
            warren_wire::escape(a.as_encoded_bytes())
        );
        return 1;
    }
    let stdin = std::io::stdin().lock();
    let stdout = std::io::stdout().lock();
    match helper::serve(stdin, std::io::BufWriter::new(stdout)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("warren sync --server: {}", warren_wire::Chain(&e));
            1
        }
    }
}
