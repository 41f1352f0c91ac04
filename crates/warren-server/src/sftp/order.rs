//! Which requests may run at the same time: the ordering rule of
//! draft-ietf-secsh-filexfer-02 section 6.1, "the results in the responses
//! will be the same as if [the client] had sent the requests one at a time
//! and waited for the response in each case ... the server may process
//! non-overlapping read/write requests to the same file in parallel, but
//! overlapping reads and writes cannot be reordered or parallelized".
//!
//! Requests start in the order they arrive; a request starts once no
//! earlier request still running [`Access::blocks`] it. READ, WRITE, STAT,
//! LSTAT and FSTAT are the only requests that overlap others; every other
//! request is a barrier: it waits for all earlier requests and runs alone,
//! so OPEN, CLOSE, renames, fsync and the rest see exactly the state a
//! sequential server (OpenSSH's sftp-server) would show them.
//!
//! One difference is left on purpose: a READ may change a file's access
//! time, which a STAT running beside it may or may not show (on a
//! `relatime` mount a sequential server's answer is no more predictable).

/// A file, as the filesystem names it: (device, inode). Two handles open
/// on one file are the same file.
pub(crate) type FileId = (u64, u64);

/// What a request touches, for deciding what it must wait for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
///
/// Barriers (every request but these) have no `Access`: the session waits
/// for everything before them and starts nothing beside them.
pub(crate) enum Access {
    /// READ of bytes `start..end` (what the request could return).
    Read { file: FileId, start: u64, end: u64 },
    /// WRITE of bytes `start..end`; an append-mode handle writes wherever
    /// the file ends, which is `0..u64::MAX` here.
    Write { file: FileId, start: u64, end: u64 },
    /// STAT, LSTAT, FSTAT: a file's size and times, of a path that may
    /// name any file.
    Meta,
}

impl Access {
    /// Whether `later` must wait for `self`, an earlier request that is
    /// still running.
    pub(crate) fn blocks(&self, later: &Access) -> bool {
        use Access::{Meta, Read, Write};
        match (*self, *later) {
            // Nothing changes under reads.
            (Read { .. } | Meta, Read { .. } | Meta) => false,
            // A write changes a size a STAT reports, of some file.
            (Write { .. }, Meta) | (Meta, Write { .. }) => true,
            (
                Write {
                    file: a,
                    start: s1,
                    end: e1,
                },
                Write {
                    file: b,
                    start: s2,
                    end: e2,
                },
            ) => a == b && s1 < e2 && s2 < e1,
            (
                Read { file: a, start, .. },
                Write {
                    file: b,
                    start: ws,
                    end: we,
                },
            )
            | (
                Write {
                    file: a,
                    start: ws,
                    end: we,
                },
                Read { file: b, start, .. },
            ) => {
                // A write at or past a read's start changes what it
                // returns: its bytes, or (past its end, when the file
                // grows over it) the end of file it meets. A write wholly
                // before it leaves both alone. Empty writes change nothing.
                a == b && ws < we && we > start
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Access::{self, Meta, Read, Write};

    const F: (u64, u64) = (1, 10);
    const G: (u64, u64) = (1, 11);

    fn r(file: (u64, u64), start: u64, end: u64) -> Access {
        Read { file, start, end }
    }

    fn w(file: (u64, u64), start: u64, end: u64) -> Access {
        Write { file, start, end }
    }

    #[test]
    fn what_waits_for_what() {
        let cases = [
            (r(F, 0, 10), r(F, 0, 10), false),
            (r(F, 0, 10), Meta, false),
            (Meta, Meta, false),
            (w(F, 0, 10), Meta, true),
            (Meta, w(F, 0, 10), true),
            // Writes: only overlapping ones on the same file.
            (w(F, 0, 10), w(F, 10, 20), false),
            (w(F, 0, 10), w(F, 9, 20), true),
            (w(F, 0, 10), w(G, 0, 10), false),
            (w(F, 0, u64::MAX), w(F, 100, 200), true),
            // Read then write, and write then read, same file.
            (r(F, 0, 10), w(F, 5, 6), true),
            (w(F, 5, 6), r(F, 0, 10), true),
            (r(F, 100, 110), w(F, 0, 100), false),
            (w(F, 0, 100), r(F, 100, 110), false),
            // A write past the read can grow the file over it.
            (w(F, 200, 300), r(F, 100, 110), true),
            (r(F, 100, 110), w(F, 200, 300), true),
            (r(F, 0, 10), w(G, 0, 10), false),
            (w(F, 5, 5), r(F, 0, 10), false),
        ];
        for (earlier, later, want) in cases {
            assert_eq!(earlier.blocks(&later), want, "{earlier:?} then {later:?}");
        }
    }
}
