//! Parsing one known_hosts file into entries, leniently.
//!
//! Like OpenSSH's lookups, a line that cannot be used is skipped, never
//! fatal — a line that is not UTF-8 included; unlike OpenSSH (which only
//! notices bad lines whose host matches) every skipped line is remembered
//! in [`KnownHostsFile::bad_lines`] so a caller can warn once at `-v`.
//! [`KnownHostsFile::read`] reads line by line and keeps only the entries
//! the caller asks for, so memory does not grow with the file.

use std::io::{self, BufRead};

use crate::error::{BadLine, Location, ParseError};
use crate::key::HostKey;
use crate::line::{
    Fields, Front, HostField, LineRead, MAX_LINE, Marker, escaped_prefix, front, key_words, lines,
    read_line,
};

/// At most this many bad lines are remembered per file (the rest are
/// counted): a file of garbage must not fill memory with complaints.
pub const MAX_BAD_LINES: usize = 100;

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
    /// Anything after the key (may be empty), as written.
    pub comment: Vec<u8>,
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
    more_bad_lines: usize,
}

impl KnownHostsFile {
    /// Parse `text`; `label` (normally the path) names the file in
    /// locations and messages. Never fails: bad lines are collected.
    pub fn parse(label: &str, text: impl AsRef<[u8]>) -> Self {
        let mut file = Self::empty(label);
        for (number, raw) in lines(text.as_ref()) {
            file.add_line(number, raw, &mut |_| true);
        }
        file
    }

    /// Read a file line by line, keeping only the entries `keep` accepts
    /// (a lookup keeps those naming the host, as OpenSSH's
    /// `load_hostkeys` does). A line longer than [`MAX_LINE`] is skipped
    /// as bad without being held in memory. Fails only when reading does.
    pub fn read(
        label: &str,
        mut reader: impl BufRead,
        mut keep: impl FnMut(&Entry) -> bool,
    ) -> io::Result<Self> {
        let mut file = Self::empty(label);
        let mut buf = Vec::new();
        for number in 1.. {
            match read_line(&mut reader, &mut buf, MAX_LINE)? {
                LineRead::Eof => break,
                LineRead::Line => file.add_line(number, &buf, &mut keep),
                LineRead::TooLong => file.bad(number, ParseError::LineTooLong(MAX_LINE)),
            }
        }
        Ok(file)
    }

    fn empty(label: &str) -> Self {
        Self {
            label: label.to_owned(),
            entries: Vec::new(),
            bad_lines: Vec::new(),
            more_bad_lines: 0,
        }
    }

    fn add_line(&mut self, number: usize, raw: &[u8], keep: &mut impl FnMut(&Entry) -> bool) {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        match parse_line(line) {
            Ok(None) => {}
            Ok(Some(fields)) => {
                let entry = fields.at(number);
                if keep(&entry) {
                    self.entries.push(entry);
                }
            }
            Err(error) => self.bad(number, error),
        }
    }

    fn bad(&mut self, line: usize, error: ParseError) {
        if self.bad_lines.len() < MAX_BAD_LINES {
            self.bad_lines.push(BadLine {
                file: self.label.clone(),
                line,
                error,
            });
        } else {
            self.more_bad_lines += 1;
        }
    }

    /// The label given to [`KnownHostsFile::parse`].
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Usable entries in file order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Lines that were skipped, with why (the first [`MAX_BAD_LINES`]).
    pub fn bad_lines(&self) -> &[BadLine] {
        &self.bad_lines
    }

    /// How many more bad lines there were than [`Self::bad_lines`] holds.
    pub fn more_bad_lines(&self) -> usize {
        self.more_bad_lines
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
    comment: Vec<u8>,
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
fn parse_line(line: &[u8]) -> Result<Option<Parsed>, ParseError> {
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
    if rest.is_empty() || rest.starts_with(b"#") {
        return Err(ParseError::MissingKeyType);
    }
    let (ktype, b64, comment) = key_words(rest);
    if b64.is_empty() {
        return Err(ParseError::MissingKeyData(escaped_prefix(ktype)));
    }
    let Ok(ktype) = std::str::from_utf8(ktype) else {
        return Err(ParseError::UnknownKeyType(escaped_prefix(ktype)));
    };
    let b64 = std::str::from_utf8(b64).map_err(|_| ParseError::BadBase64)?;
    let key = HostKey::from_openssh_line_fields(ktype, b64)?;
    Ok(Some(Parsed {
        marker,
        hosts,
        key,
        comment: comment.to_vec(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkeys::{ed, k};

    /// Parse one line; `Ok(Some(marker, hashed))`, `Ok(None)` for a comment.
    fn one(line: &str) -> Result<Option<(Marker, bool, Vec<u8>)>, ParseError> {
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
        let ok = |m, h: bool, c: &str| Ok(Some((m, h, c.as_bytes().to_vec())));
        type Want = Result<Option<(Marker, bool, Vec<u8>)>, ParseError>;
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
            let f = KnownHostsFile::parse("kh", format!("{hosts} {key}"));
            let got = f.entries().first().is_some_and(|e| e.matches(name));
            assert_eq!(got, want, "{hosts} vs {name}");
        }
    }

    // known_hosts was read with read_to_string, so one byte that is not
    // UTF-8 anywhere dropped the whole file: a known host read as unknown.
    #[test]
    fn a_line_that_is_not_utf8_costs_only_that_line() {
        let key = format!(" {}", k(&ed(1)));
        let key = key.as_bytes();
        let text = [
            b"x\xe9\n".as_slice(),
            b"# caf\xe9\n",
            b"host",
            key,
            b" comm\xe9nt\n",
            b"h\xe9st,alias",
            key,
            b"\nh \xe9",
            key,
            b"\n|1|\xe9|x",
            key,
            b"\n",
        ]
        .concat();
        let f = KnownHostsFile::parse("kh", &text);
        let got: Vec<(usize, bool, bool)> = f
            .entries()
            .iter()
            .map(|e| (e.line, e.matches("host"), e.matches("alias")))
            .collect();
        assert_eq!(got, [(3, true, false), (4, false, true)]);
        assert_eq!(f.entries()[0].comment, b"comm\xe9nt");
        let bad: Vec<String> = f.bad_lines().iter().map(ToString::to_string).collect();
        assert_eq!(
            bad,
            [
                "kh:1: line ends before the key type",
                "kh:5: unknown key type \"\\xe9\"",
                "kh:6: malformed hashed host name \"|1|\\xe9|x\" (expected |1|<base64 salt>|<base64 hash>)",
            ]
        );
    }

    #[test]
    fn reading_keeps_what_is_asked_and_bounds_lines() {
        let key = k(&ed(1));
        let long = "a".repeat(crate::line::MAX_LINE + 1);
        let text = format!("a {key}\n{long}\nb {key}\r\nc {key}");
        let f = KnownHostsFile::read("kh", text.as_bytes(), |e| !e.matches("a")).unwrap();
        let lines: Vec<usize> = f.entries().iter().map(|e| e.line).collect();
        assert_eq!(lines, [3, 4]);
        let bad: Vec<String> = f.bad_lines().iter().map(ToString::to_string).collect();
        assert_eq!(bad, ["kh:2: line longer than 262144 bytes"]);
        // Bad lines past the cap are counted, not kept.
        let garbage = "x\n".repeat(MAX_BAD_LINES + 5);
        let f = KnownHostsFile::read("kh", garbage.as_bytes(), |_| true).unwrap();
        assert_eq!(
            (f.bad_lines().len(), f.more_bad_lines()),
            (MAX_BAD_LINES, 5)
        );
    }
}
