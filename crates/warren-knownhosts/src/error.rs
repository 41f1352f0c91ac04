//! Error types. `ParseError` says what is wrong with one line or key;
//! `BadLine` adds the file:line it came from so a caller can warn at `-v`
//! exactly like OpenSSH's `debug("%s:%ld: parse error in hostkeys file")`.
//! Text taken from a file or a peer's key is held escaped (and cut short),
//! so printing an error can never act on a terminal.

use std::fmt;

/// What is wrong with a known_hosts line or a public key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A word starting with `@` that is not `@cert-authority` or `@revoked`,
    /// or more than one marker.
    #[error("invalid marker (only one of @cert-authority or @revoked is allowed)")]
    BadMarker,
    /// Host patterns but nothing after them.
    #[error("line ends before the key type")]
    MissingKeyType,
    /// A key type but no base64 key data.
    #[error("line ends after key type \"{0}\"; no key data")]
    MissingKeyData(String),
    /// A key type OpenSSH 9.2 does not know (this includes SSH-1 RSA lines).
    #[error("unknown key type \"{0}\"")]
    UnknownKeyType(String),
    /// The key data is not valid base64.
    #[error("key data is not valid base64")]
    BadBase64,
    /// The decoded key blob does not have the structure its type requires.
    #[error("malformed {algorithm} key blob: {reason}")]
    MalformedBlob {
        /// Key type read from the blob (or the field, if unreadable).
        algorithm: String,
        /// What is missing or left over.
        reason: &'static str,
    },
    /// The key type field and the type inside the blob disagree.
    #[error("key type \"{field}\" does not match the key data, which is \"{blob}\"")]
    TypeMismatch {
        /// Type written on the line.
        field: String,
        /// Type found inside the blob.
        blob: String,
    },
    /// A host field starting with `|` that is not `|1|<salt>|<hash>` with a
    /// 20-byte salt.
    #[error("malformed hashed host name \"{0}\" (expected |1|<base64 salt>|<base64 hash>)")]
    BadHash(String),
    /// A line longer than the longest one read (OpenSSH has no limit; no
    /// real entry comes near it).
    #[error("line longer than {0} bytes")]
    LineTooLong(usize),
}

/// A line that was skipped, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {error}")]
pub struct BadLine {
    /// Label the file was parsed with (normally its path).
    pub file: String,
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub error: ParseError,
}

/// Errors from producing known_hosts text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// The name would corrupt the file or change meaning (whitespace, comma,
    /// wildcard, or a leading `!`, `|`, `#` or `@`).
    #[error(
        "host name {0:?} cannot be recorded in known_hosts (empty, or contains whitespace, ',', '*', '?', or starts with '!', '|', '#', '@')"
    )]
    InvalidName(String),
    /// No names were given.
    #[error("no host names to record")]
    NoNames,
}

/// Where an entry is: the file label and 1-based line number.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Location {
    /// Label the file was parsed with.
    pub file: String,
    /// 1-based line number.
    pub line: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}
