//! The pure foundations of `warren sync`: everything that decides *what*
//! an rsync-style transfer does, with no I/O, no tokio and no russh, so each
//! piece is tested from byte literals (and against real rsync as the oracle)
//! and fuzzed with a light build.
//!
//! - [`filter`]: rsync's `--exclude`/`--include`/`--exclude-from`/
//!   `--include-from` rules. Written by hand after rsync's own matcher: the
//!   glob crates (globset, glob, wildmatch) differ from rsync exactly where
//!   it matters (`*` against `/`, `**/` matching no directory, a pattern
//!   without `/` matching the last component, `/***`), and a sync that
//!   filters differently from rsync deletes the wrong files.
//! - [`paths`]: rsync's trailing-slash rules (`src` vs `src/`, a single file
//!   to a new name, several sources into a directory) as one pure function.
//!   By hand: it is a dozen rules, checked against rsync's documented cases.
//! - [`delta`]: rsync's algorithm (block size as rsync chooses it, a rolling
//!   weak checksum, a strong hash per block, a whole-file hash). The rolling
//!   checksum is by hand (a few lines, and it must roll); the strong hashes
//!   are BLAKE3 from the `blake3` crate (see the module for why not
//!   xxhash or fast_rsync).
//! - [`proto`]: the versioned, length-prefixed wire protocol spoken with
//!   `warren sync --server`, as a sans-IO codec with a hard frame cap. By
//!   hand on top of `warren_wire::wire::Reader`, like warren's other codecs.

pub mod delta;
pub mod filter;
pub mod paths;
pub mod proto;
pub mod testing;

pub use delta::{Delta, Op, Signature};
pub use filter::Filters;
