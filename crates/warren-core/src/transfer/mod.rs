//! Copying files over SFTP: `warren cp`'s engine (and `warren sync`'s).
//!
//! - [`client`]: a pipelined SFTP v3 client on any byte stream;
//! - [`side`]: this machine's filesystem or a remote one behind the same
//!   operations, so every direction is one code path;
//! - [`connect`]: SFTP sessions to a host: channels on one connection,
//!   more connections, or a running ControlMaster;
//! - [`copy`]: what to copy where (scp's rules for operands and
//!   targets), and copying each file: many chunks in flight on several
//!   lanes, to a temporary name, made durable, checked, renamed into
//!   place; resumable.
//!
//! Design choice: SFTP only, so nothing is installed on the server and
//! every OpenSSH server works. What SFTP lacks in speed is made up in
//! flight: many requests per session, several sessions (each with its own
//! channel window) per connection, and many files at once.

pub mod client;
pub mod connect;
pub mod copy;
pub mod side;
pub mod sync;

pub use copy::{Options, Summary, copy};
pub use side::{Remote, Side};

/// What a copy reports as it goes. Implemented by the command line
/// (progress bars, or one line at the end) and by tests.
pub trait Progress: Send + Sync {
    /// A file starts: its name (as the user knows it), its size, and how
    /// much of it a resumed copy already had. Returns an id for the calls
    /// below.
    fn start(&self, name: &[u8], size: u64, done: u64) -> u64;
    /// `bytes` more of file `id` were copied.
    fn advance(&self, id: u64, bytes: u64);
    /// File `id` is in place (or failed: `ok` false).
    fn finish(&self, id: u64, ok: bool);
    /// One failure, worded for the user (printed once, as it happens).
    fn error(&self, message: &str);
    /// Something the user should know that is not a failure.
    fn note(&self, message: &str);
}

/// A [`Progress`] that says nothing.
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _: &[u8], _: u64, _: u64) -> u64 {
        0
    }
    fn advance(&self, _: u64, _: u64) {}
    fn finish(&self, _: u64, _: bool) {}
    fn error(&self, _: &str) {}
    fn note(&self, _: &str) {}
}
