//! `warren demo -v`'s log: held back while the results table prints, then
//! written to stderr after it, so a terminal shows the table in one piece.
//!
//! Design choice: the log is kept in memory with a bound (a `-vvv` run
//! logs every packet); what does not fit is counted and said to be
//! dropped rather than growing without limit.

use std::io::Write as _;
use std::sync::{Arc, Mutex};

/// The most log kept for printing after the table.
const LIMIT: usize = 8 << 20;

#[derive(Default)]
struct Held {
    bytes: Vec<u8>,
    dropped: usize,
}

/// The log lines of one run, until [`HeldLog::print`].
#[derive(Clone, Default)]
pub struct HeldLog(Arc<Mutex<Held>>);

impl HeldLog {
    /// Writes what was held to stderr, under a heading.
    pub fn print(&self) {
        let held = std::mem::take(&mut *self.lock());
        if held.bytes.is_empty() && held.dropped == 0 {
            return;
        }
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "\nlog (-v), held back while the table printed:");
        let _ = err.write_all(&held.bytes);
        if held.dropped > 0 {
            let _ = writeln!(
                err,
                "({} bytes of log dropped past the first {} MiB)",
                held.dropped,
                LIMIT >> 20
            );
        }
        let _ = err.flush();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        // A plain append: a panic elsewhere cannot leave it half done.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl std::io::Write for HeldLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut held = self.lock();
        let room = LIMIT.saturating_sub(held.bytes.len());
        let keep = buf.len().min(room);
        held.bytes.extend_from_slice(&buf[..keep]);
        held.dropped += buf.len() - keep;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_up_to_the_limit_and_counts_the_rest() {
        let mut log = HeldLog::default();
        let chunk = vec![b'x'; LIMIT - 1];
        log.write_all(&chunk).unwrap_or_default();
        log.write_all(b"abc").unwrap_or_default();
        let held = log.lock();
        assert_eq!(held.bytes.len(), LIMIT);
        assert_eq!(held.dropped, 2);
    }
}
