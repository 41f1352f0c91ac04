//! Splitting known_hosts text into lines and a line into marker, host
//! field and key part — the front half of OpenSSH's
//! `hostkeys_foreach_file`, shared by lookups and by the editing helpers.
//!
//! Design choice: only `\n` ends a line and only space and tab separate
//! fields, exactly like OpenSSH; a CR before the newline stays part of the
//! line (lookups drop it, edits write it back untouched).

use crate::error::ParseError;
use crate::hash::{SALT_LEN, extract_salt, hashed_matches};
use crate::key::key_type_of_name;
use crate::pattern::{ListMatch, match_hostname};

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
    pub hosts: &'a str,
    /// Everything after the host field and its trailing blanks (key type,
    /// key, comment); may be empty.
    pub rest: &'a str,
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
pub(crate) fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split_inclusive('\n')
        .map(|l| l.strip_suffix('\n').unwrap_or(l))
        .enumerate()
        .map(|(i, l)| (i + 1, l))
}

fn skip_blanks(s: &str) -> &str {
    s.trim_start_matches([' ', '\t'])
}

fn split_word(s: &str) -> (&str, &str) {
    match s.find([' ', '\t']) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    }
}

pub(crate) fn front(line: &str) -> Front<'_> {
    let cp = skip_blanks(line);
    if cp.is_empty() || cp.starts_with('#') {
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
fn markers(mut cp: &str) -> Option<(Marker, &str)> {
    let mut marker = Marker::None;
    while cp.starts_with('@') {
        if marker != Marker::None {
            return None;
        }
        let end = cp.find(' ').or_else(|| cp.find('\t'))?;
        if end <= 1 || end >= 32 {
            return None;
        }
        marker = match &cp[..end] {
            "@cert-authority" => Marker::CertAuthority,
            "@revoked" => Marker::Revoked,
            _ => return None,
        };
        cp = skip_blanks(&cp[end..]);
    }
    Some((marker, cp))
}

/// A host field, ready for matching.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostField {
    /// Comma-separated patterns, possibly with wildcards and negation.
    Patterns(String),
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
    pub fn parse(hosts: &str) -> Result<Self, ParseError> {
        if hosts.starts_with('|') {
            let salt = extract_salt(hosts)?;
            return Ok(Self::Hashed {
                field: hosts.to_owned(),
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
pub(crate) fn raw_key_ok(rest: &str) -> bool {
    if rest.is_empty() || rest.starts_with('#') {
        return false;
    }
    let (ktype, after) = split_word(rest);
    if after.is_empty() || ktype.len() <= 1 || ktype.len() >= 128 {
        return false;
    }
    if key_type_of_name(ktype).is_none() {
        return false;
    }
    let after = skip_blanks(after);
    !(after.is_empty() || after.starts_with('#'))
}

/// The key type and base64 words of `rest`, and the comment after them.
pub(crate) fn key_words(rest: &str) -> (&str, &str, &str) {
    let (ktype, after) = split_word(rest);
    let (b64, after) = split_word(skip_blanks(after));
    (ktype, b64, skip_blanks(after))
}
