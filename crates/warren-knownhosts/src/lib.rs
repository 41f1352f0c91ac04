//! warren-knownhosts: OpenSSH 9.2-compatible known_hosts handling, pure
//! (no file or network I/O of its own). The caller opens files and hands
//! a reader to [`KnownHostsFile::read`] (or bytes to
//! [`KnownHostsFile::parse`]), asks [`KnownHosts::check`] about a
//! server's key, and writes back what [`format_entry`] / [`append_text`]
//! or the `ssh-keygen`-style editors produce. Files are bytes, read line
//! by line: a line that is not UTF-8 is skipped or kept as it is, never
//! the reason a file is dropped. [`RevokedKeys::parse`] reads a
//! `RevokedHostKeys` file (a [`Krl`] or a list of keys).
//!
//! ```
//! use warren_knownhosts::{HostKey, HostNames, KnownHosts, KnownHostsFile, Verdict};
//!
//! let key = HostKey::from_openssh_line_fields(
//!     "ssh-ed25519",
//!     "AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f",
//! )
//! .unwrap();
//! let text = format!("example.com,192.0.2.7 {}\n", key.to_openssh());
//! let known = KnownHosts::new(vec![KnownHostsFile::parse("~/.ssh/known_hosts", &text)]);
//! let names = HostNames::new("example.com", 22).with_ip("192.0.2.7");
//! assert!(matches!(known.check(&names, &key), Verdict::Known { .. }));
//! ```

mod check;
mod edit;
mod error;
mod file;
mod hash;
mod key;
mod krl;
mod line;
mod pattern;
mod revoked;
mod update;

pub use check::{HostNames, IpStatus, KnownHosts, Verdict, host_port};
pub use edit::{
    Edited, Found, append_text, find_host, format_entry, format_hashed_entry, hash_all, remove_host,
};
pub use error::{BadLine, FormatError, Location, ParseError};
pub use file::{Entry, KnownHostsFile, MAX_BAD_LINES};
pub use hash::{SALT_LEN, hash_host, hash_host_bytes};
pub use key::{HostKey, key_type_of_name, plain_type_of};
pub use krl::{CertEntry, CertSection, Extension, KRL_MAGIC, Krl, KrlError, Section};
pub use line::{HostField, MAX_LINE, Marker};
pub use pattern::{ListMatch, match_hostname};
pub use revoked::{RevokedKeys, RevokedKeysError};
pub use update::{Plan, Replaced, UpdateNames, plan, replace};

#[cfg(test)]
mod testkeys;
