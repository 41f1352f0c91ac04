//! Pure pieces shared by warren's crates: nothing here does I/O or depends on
//! tokio or russh, so each piece is unit-tested from byte literals and fuzzed
//! with a light build.
//!
//! - [`text`]: peer- and file-supplied bytes made safe for a terminal or a log.
//! - [`wire`]: SSH wire primitives read from a byte slice, bounds-checked.
//! - [`chain`]: an error and its causes on one line, each said once.

pub mod chain;
pub mod text;
pub mod wire;

pub use chain::Chain;
pub use text::{Escaped, escape, escape_str};
