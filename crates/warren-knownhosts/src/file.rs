//! Parsing one known_hosts file into entries, leniently.
//!
//! Like OpenSSH's lookups, a line that cannot be used is skipped, never
//! fatal; unlike OpenSSH (which only notices bad lines whose host matches)
//! every skipped line is remembered in [`KnownHostsFile::bad_lines`] so a
//! caller can warn once at `-v`.

use crate::error::{BadLine, Location, ParseError};
use crate::key::HostKey;
use crate::line::{Fields, Front, HostField, Marker, front, key_words, lines};

/// One usable known_hosts line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// 1-based line number.
    pub line: usize,
    /// `@cert-authority`, `@revoked` or none.
    pub marker: Marker,
    /// Host patterns or hashed name.
    pub hosts: HostField,
    /// The key on the line.
    pub key: HostKey,
    /// Anything after the key (may be empty).
    pub comment: String,
}

impl Entry {
    /// Whether the line applies to `name` (negation and hashing honoured).
    pub fn matches(&self, name: &str) -> bool {
        self.hosts.matches(name)
    }
}

/// A parsed known_hosts file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownHostsFile {
    label: String,
    entries: Vec<Entry>,
    bad_lines: Vec<BadLine>,
}

impl KnownHostsFile {
    /// Parse `text`; `label` (normally the path) names the file in
    /// locations and messages. Never fails: bad lines are collected.
    pub fn parse(label: &str, text: &str) -> Self {
        let mut file = Self {
            label: label.to_owned(),
            entries: Vec::new(),
            bad_lines: Vec::new(),
        };
        for (number, raw) in lines(text) {
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            match parse_line(line) {
                Ok(None) => {}
                Ok(Some(fields)) => file.entries.push(fields.at(number)),
                Err(error) => file.bad_lines.push(BadLine {
                    file: label.to_owned(),
                    line: number,
                    error,
                }),
            }
        }
        file
    }

    /// The label given to [`KnownHostsFile::parse`].
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Usable entries in file order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Lines that were skipped, with why.
    pub fn bad_lines(&self) -> &[BadLine] {
        &self.bad_lines
    }

    /// Where an entry is.
    pub fn location(&self, entry: &Entry) -> Location {
        Location {
            file: self.label.clone(),
            line: entry.line,
        }
    }
}

/// An entry without its line number yet.
struct Parsed {
    marker: Marker,
    hosts: HostField,
    key: HostKey,
    comment: String,
}

impl Parsed {
    fn at(self, line: usize) -> Entry {
        Entry {
            line,
            marker: self.marker,
            hosts: self.hosts,
            key: self.key,
            comment: self.comment,
        }
    }
}

/// Parse one line (without newline or trailing CR). `Ok(None)` for blank
/// and comment lines.
fn parse_line(line: &str) -> Result<Option<Parsed>, ParseError> {
    let Fields {
        marker,
        hosts,
        rest,
    } = match front(line) {
        Front::Comment => return Ok(None),
        Front::BadMarker => return Err(ParseError::BadMarker),
        Front::Entry(fields) => fields,
    };
    let hosts = HostField::parse(hosts)?;
    if rest.is_empty() || rest.starts_with('#') {
        return Err(ParseError::MissingKeyType);
    }
    let (ktype, b64, comment) = key_words(rest);
    if b64.is_empty() {
        return Err(ParseError::MissingKeyData(ktype.to_owned()));
    }
    let key = HostKey::from_openssh_line_fields(ktype, b64)?;
    Ok(Some(Parsed {
        marker,
        hosts,
        key,
        comment: comment.to_owned(),
    }))
}
