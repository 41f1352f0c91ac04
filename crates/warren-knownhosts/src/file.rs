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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkeys::{ed, k};

    /// Parse one line; `Ok(Some(marker, hashed))`, `Ok(None)` for a comment.
    fn one(line: &str) -> Result<Option<(Marker, bool, String)>, ParseError> {
        let f = KnownHostsFile::parse("kh", line);
        if let Some(bad) = f.bad_lines().first() {
            assert_eq!((bad.file.as_str(), bad.line), ("kh", 1));
            return Err(bad.error.clone());
        }
        Ok(f.entries()
            .first()
            .map(|e| (e.marker, e.hosts.is_hashed(), e.comment.clone())))
    }

    #[test]
    fn line_forms() {
        let key = k(&ed(1));
        let hashed = "|1|AAECAwQFBgcICQoLDA0ODxAREhM=|nnUK16ANsXd3hL31YfAkGOluSjU=";
        let ok = |m, h: bool, c: &str| Ok(Some((m, h, c.to_owned())));
        type Want = Result<Option<(Marker, bool, String)>, ParseError>;
        let cases: Vec<(String, Want)> = vec![
            (format!("host {key}"), ok(Marker::None, false, "")),
            (
                format!("a,b,[c]:2222 {key} my comment"),
                ok(Marker::None, false, "my comment"),
            ),
            (
                format!("  \thost\t {key}\t c"),
                ok(Marker::None, false, "c"),
            ),
            (format!("{hashed} {key}"), ok(Marker::None, true, "")),
            (format!("@revoked * {key}"), ok(Marker::Revoked, false, "")),
            (
                format!("@cert-authority *.example {key}"),
                ok(Marker::CertAuthority, false, ""),
            ),
            (
                format!("@cert-authority  h {key}"),
                ok(Marker::CertAuthority, false, ""),
            ),
            // OpenSSH ends a marker at the first space of the line, so a
            // tab after it makes the marker unreadable (checked with
            // ssh-keygen -F).
            (
                format!("@cert-authority\t  h {key}"),
                Err(ParseError::BadMarker),
            ),
            (format!("host {key}\r"), ok(Marker::None, false, "")),
            (format!("host {key} c\r"), ok(Marker::None, false, "c")),
            ("".into(), Ok(None)),
            ("   ".into(), Ok(None)),
            ("\r".into(), Ok(None)),
            ("# comment".into(), Ok(None)),
            ("   # indented comment".into(), Ok(None)),
            (format!("@foo h {key}"), Err(ParseError::BadMarker)),
            (
                format!("@revoked @revoked h {key}"),
                Err(ParseError::BadMarker),
            ),
            ("@revoked".into(), Err(ParseError::BadMarker)),
            ("host".into(), Err(ParseError::MissingKeyType)),
            ("host   # c".into(), Err(ParseError::MissingKeyType)),
            (
                "host ssh-ed25519".into(),
                Err(ParseError::MissingKeyData("ssh-ed25519".into())),
            ),
            (
                "host 1024 35 12345".into(),
                Err(ParseError::UnknownKeyType("1024".into())),
            ),
            ("host ssh-ed25519 %%%".into(), Err(ParseError::BadBase64)),
            (
                format!("|1|AAAA|x {key}"),
                Err(ParseError::BadHash("|1|AAAA|x".into())),
            ),
        ];
        for (line, want) in cases {
            assert_eq!(one(&line), want, "{line:?}");
        }
    }

    #[test]
    fn bad_lines_keep_numbers_and_skip_only_themselves() {
        let key = k(&ed(1));
        let text = format!("# c\r\nbroken\r\na {key}\r\n\r\n@nope b {key}\nc {key}");
        let f = KnownHostsFile::parse("/etc/ssh/ssh_known_hosts", &text);
        let lines: Vec<usize> = f.entries().iter().map(|e| e.line).collect();
        assert_eq!(lines, [3, 6]);
        let bad: Vec<String> = f.bad_lines().iter().map(ToString::to_string).collect();
        assert_eq!(
            bad,
            [
                "/etc/ssh/ssh_known_hosts:2: line ends before the key type",
                "/etc/ssh/ssh_known_hosts:5: invalid marker (only one of @cert-authority or @revoked is allowed)",
            ]
        );
    }

    #[test]
    fn entry_matching() {
        let key = k(&ed(1));
        let hashed = "|1|AAECAwQFBgcICQoLDA0ODxAREhM=|nnUK16ANsXd3hL31YfAkGOluSjU=";
        let cases = [
            ("host", "host", true),
            ("host", "HOST", true),
            ("Host,other", "host", true),
            ("*.example.com,!bad.example.com", "good.example.com", true),
            ("*.example.com,!bad.example.com", "bad.example.com", false),
            ("!bad,*", "bad", false),
            ("[host]:2222", "[host]:2222", true),
            ("[host]:2222", "host", false),
            ("host", "[host]:2222", false),
            ("10.0.0.?", "10.0.0.5", true),
            ("10.0.0.?", "10.0.0.50", false),
            (hashed, "example.com", true),
            // Hashed names are compared as given, not lowercased.
            (hashed, "EXAMPLE.com", false),
        ];
        for (hosts, name, want) in cases {
            let f = KnownHostsFile::parse("kh", &format!("{hosts} {key}"));
            let got = f.entries().first().is_some_and(|e| e.matches(name));
            assert_eq!(got, want, "{hosts} vs {name}");
        }
    }
}
