//! Splitting known_hosts bytes into lines and a line into marker, host
//! field and key part — the front half of OpenSSH's
//! `hostkeys_foreach_file`, shared by lookups and by the editing helpers.
//!
//! Design choice: a line is bytes, never text, exactly like OpenSSH: a
//! byte that is not UTF-8 makes that one line fail (or, in a comment or
//! host pattern, changes nothing), never the file. Only `\n` ends a line
//! and only space and tab separate fields; a CR before the newline stays
//! part of the line (lookups drop it, edits write it back untouched).
//! Lines are read through [`read_line`] with a length cap, so a file of
//! any size is read in bounded memory.

use std::io::{self, BufRead};

use crate::error::ParseError;
use crate::hash::{SALT_LEN, extract_salt, hashed_matches};
use crate::key::key_type_of_name;
use crate::pattern::{ListMatch, match_hostname};

/// Longest line kept. OpenSSH reads lines of any length; the longest real
/// line (a certificate with many principals) is a few KiB, so a longer
/// one is skipped as bad instead of being held in memory.
pub const MAX_LINE: usize = 256 * 1024;

/// A line's marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Marker {
    /// An ordinary host key line.
    None,
    /// `@cert-authority`: the key is a CA trusted for host certificates.
    CertAuthority,
    /// `@revoked`: the key must never be accepted.
    Revoked,
}

/// The parts of a non-comment line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fields<'a> {
    pub marker: Marker,
    /// The host pattern list or hashed name.
    pub hosts: &'a [u8],
    /// Everything after the host field and its trailing blanks (key type,
    /// key, comment); may be empty.
    pub rest: &'a [u8],
}

/// What a line is, before looking at the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Front<'a> {
    /// Blank or `#` comment.
    Comment,
    /// Unusable marker.
    BadMarker,
    /// Marker, hosts and the rest.
    Entry(Fields<'a>),
}

/// Iterate over `(1-based number, line without its '\n')`.
pub(crate) fn lines(text: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    text.split_inclusive(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\n").unwrap_or(l))
        .enumerate()
        .map(|(i, l)| (i + 1, l))
}

/// What [`read_line`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineRead {
    /// A line, now in the buffer (without its `\n`).
    Line,
    /// A line longer than the cap: consumed, not kept (the buffer is empty).
    TooLong,
    /// End of input.
    Eof,
}

/// Read one line into `buf` (cleared first), keeping at most `max` bytes
/// of it in memory; OpenSSH's `getline` loop with a bound.
pub(crate) fn read_line(
    reader: &mut impl BufRead,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<LineRead> {
    buf.clear();
    let (mut any, mut too_long) = (false, false);
    loop {
        let available = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(match (any, too_long) {
                (false, _) => LineRead::Eof,
                (true, true) => LineRead::TooLong,
                (true, false) => LineRead::Line,
            });
        }
        any = true;
        let newline = available.iter().position(|&b| b == b'\n');
        let chunk = &available[..newline.unwrap_or(available.len())];
        if !too_long && buf.len() + chunk.len() > max {
            too_long = true;
            buf.clear();
        } else if !too_long {
            buf.extend_from_slice(chunk);
        }
        let used = newline.map_or(available.len(), |i| i + 1);
        reader.consume(used);
        if newline.is_some() {
            return Ok(if too_long {
                LineRead::TooLong
            } else {
                LineRead::Line
            });
        }
    }
}

fn skip_blanks(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| b != b' ' && b != b'\t');
    &s[start.unwrap_or(s.len())..]
}

fn split_word(s: &[u8]) -> (&[u8], &[u8]) {
    match s.iter().position(|&b| b == b' ' || b == b'\t') {
        Some(i) => s.split_at(i),
        None => (s, &[]),
    }
}

pub(crate) fn front(line: &[u8]) -> Front<'_> {
    let cp = skip_blanks(line);
    if cp.is_empty() || cp.starts_with(b"#") {
        return Front::Comment;
    }
    let Some((marker, cp)) = markers(cp) else {
        return Front::BadMarker;
    };
    let (hosts, rest) = split_word(cp);
    Front::Entry(Fields {
        marker,
        hosts,
        rest: skip_blanks(rest),
    })
}

/// OpenSSH's `check_markers`: at most one `@word`, terminated by the first
/// space in the line (or, failing that, the first tab).
fn markers(mut cp: &[u8]) -> Option<(Marker, &[u8])> {
    let mut marker = Marker::None;
    while cp.starts_with(b"@") {
        if marker != Marker::None {
            return None;
        }
        let find = |c: u8| cp.iter().position(|&b| b == c);
        let end = find(b' ').or_else(|| find(b'\t'))?;
        if end <= 1 || end >= 32 {
            return None;
        }
        marker = match &cp[..end] {
            b"@cert-authority" => Marker::CertAuthority,
            b"@revoked" => Marker::Revoked,
            _ => return None,
        };
        cp = skip_blanks(&cp[end..]);
    }
    Some((marker, cp))
}

/// A host field, ready for matching.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostField {
    /// Comma-separated patterns, possibly with wildcards and negation, as
    /// written (bytes: a pattern need not be UTF-8, as in OpenSSH).
    Patterns(Vec<u8>),
    /// `|1|salt|hash`.
    Hashed {
        /// The field as written.
        field: String,
        /// Its decoded salt.
        salt: [u8; SALT_LEN],
    },
}

impl HostField {
    /// Parse a host field; a field starting with `|` must be a valid hash.
    pub fn parse(hosts: &[u8]) -> Result<Self, ParseError> {
        if hosts.starts_with(b"|") {
            let Ok(field) = std::str::from_utf8(hosts) else {
                return Err(ParseError::BadHash(escaped_prefix(hosts)));
            };
            let salt = extract_salt(field)?;
            return Ok(Self::Hashed {
                field: field.to_owned(),
                salt,
            });
        }
        Ok(Self::Patterns(hosts.to_owned()))
    }

    /// Whether `name` matches (OpenSSH's `match_maybe_hashed` == 1).
    pub fn matches(&self, name: &str) -> bool {
        match self {
            Self::Patterns(p) => match_hostname(name, p) == ListMatch::Positive,
            Self::Hashed { field, salt } => hashed_matches(field, salt, name),
        }
    }

    /// Whether the field is hashed.
    pub fn is_hashed(&self) -> bool {
        matches!(self, Self::Hashed { .. })
    }
}

/// Validity check used by `ssh-keygen -F/-R/-H` (no key parsing): a known
/// key type name followed by something that is not a comment.
pub(crate) fn raw_key_ok(rest: &[u8]) -> bool {
    if rest.is_empty() || rest.starts_with(b"#") {
        return false;
    }
    let (ktype, after) = split_word(rest);
    if after.is_empty() || ktype.len() <= 1 || ktype.len() >= 128 {
        return false;
    }
    let known = std::str::from_utf8(ktype)
        .ok()
        .and_then(key_type_of_name)
        .is_some();
    if !known {
        return false;
    }
    let after = skip_blanks(after);
    !(after.is_empty() || after.starts_with(b"#"))
}

/// File text for a message: escaped, and cut at 64 bytes.
pub(crate) fn escaped_prefix(bytes: &[u8]) -> String {
    warren_wire::Escaped::truncated(bytes, 64).to_string()
}

/// The key type and base64 words of `rest`, and the comment after them.
pub(crate) fn key_words(rest: &[u8]) -> (&[u8], &[u8], &[u8]) {
    let (ktype, after) = split_word(rest);
    let (b64, after) = split_word(skip_blanks(after));
    (ktype, b64, skip_blanks(after))
}
