//! Producing and rewriting known_hosts text: new entries (what ssh adds
//! after "Permanently added") and the `ssh-keygen -F`, `-R` and `-H`
//! equivalents.
//!
//! Design choice: these stream the file as bytes line by line (as
//! ssh-keygen does, in bounded memory) and validate lines the way
//! ssh-keygen does (key type name only, no key decoding), so every line
//! they do not touch is written back byte for byte, CR and bytes that are
//! not UTF-8 included. Like ssh-keygen, each output line ends with `\n`.

use std::io::{self, BufRead, Write};

use crate::error::FormatError;
use crate::hash::{SALT_LEN, hash_host, hash_host_bytes};
use crate::key::HostKey;
use crate::line::{
    Fields, Front, HostField, LineRead, MAX_LINE, Marker, front, raw_key_ok, read_line,
};
use crate::pattern::has_wildcard;

/// What an edit did; the new text went to the writer given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Edited {
    /// Lines removed (for `remove_host`) or hashed (for `hash_all`),
    /// 1-based numbers in the original text.
    pub changed: Vec<usize>,
    /// Lines ssh-keygen calls "invalid line"; ssh-keygen then refuses to
    /// replace the file, and so should the caller.
    pub invalid: Vec<usize>,
}

/// A line found by [`find_host`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// 1-based line number.
    pub line: usize,
    /// The line as written (without `\n`), bytes as in the file.
    pub text: Vec<u8>,
    /// Its marker (ssh-keygen -F prints "CA" or "REVOKED").
    pub marker: Marker,
}

/// `host,ip key` lines for a new entry: one unhashed line naming every
/// name, lowercased like OpenSSH's `write_host_entry`.
pub fn format_entry(names: &[&str], key: &HostKey) -> Result<String, FormatError> {
    let names = checked_names(names)?;
    Ok(format!("{} {}\n", names.join(","), key.to_openssh()))
}

/// Hashed lines for a new entry: one line per name, each with a fresh
/// salt from `salt` (OpenSSH hashes host and IP separately).
pub fn format_hashed_entry(
    names: &[&str],
    key: &HostKey,
    mut salt: impl FnMut() -> [u8; SALT_LEN],
) -> Result<String, FormatError> {
    let names = checked_names(names)?;
    let key = key.to_openssh();
    Ok(names
        .iter()
        .map(|n| format!("{} {key}\n", hash_host(n, &salt())))
        .collect())
}

fn checked_names(names: &[&str]) -> Result<Vec<String>, FormatError> {
    if names.is_empty() {
        return Err(FormatError::NoNames);
    }
    names
        .iter()
        .map(|n| {
            let bad = n.is_empty()
                || n.contains(|c: char| c.is_whitespace() || c.is_control())
                || n.contains([',', '*', '?'])
                || n.starts_with(['!', '|', '#', '@']);
            if bad {
                Err(FormatError::InvalidName((*n).to_owned()))
            } else {
                Ok(n.to_ascii_lowercase())
            }
        })
        .collect()
}

/// Text to append to a file whose last byte is `last_byte` (`None` for an
/// empty or missing file) so `entry` starts on a line of its own and ends
/// with a newline. OpenSSH appends blindly and would glue the entry onto
/// an unterminated last line; this never does.
pub fn append_text(last_byte: Option<u8>, entry: &str) -> String {
    let mut out = String::new();
    if last_byte.is_some_and(|b| b != b'\n') {
        out.push('\n');
    }
    out.push_str(entry);
    if !entry.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// `ssh-keygen -F name`: valid lines (any marker) whose host field matches
/// `name` exactly as given (hashed names are not lowercased). Reads line by
/// line; a line longer than [`MAX_LINE`] is skipped.
pub fn find_host(mut input: impl BufRead, name: &str) -> io::Result<Vec<Found>> {
    let mut found = Vec::new();
    let mut buf = Vec::new();
    for number in 1.. {
        match read_line(&mut input, &mut buf, MAX_LINE)? {
            LineRead::Eof => break,
            LineRead::TooLong => continue,
            LineRead::Line => {}
        }
        let Front::Entry(fields) = front(&buf) else {
            continue;
        };
        let Ok(hosts) = HostField::parse(fields.hosts) else {
            continue;
        };
        if hosts.matches(name) && raw_key_ok(fields.rest) {
            found.push(Found {
                line: number,
                text: buf.clone(),
                marker: fields.marker,
            });
        }
    }
    Ok(found)
}

/// `ssh-keygen -R name`: copy `input` to `output` without the valid
/// unmarked lines matching `name`; everything else (including
/// `@cert-authority`/`@revoked` lines and lines that are not UTF-8) is
/// written byte for byte. A line longer than [`MAX_LINE`] counts as
/// invalid, so the caller keeps the file as it is.
pub fn remove_host(input: impl BufRead, output: impl Write, name: &str) -> io::Result<Edited> {
    edit_lines(input, output, |edit, number, line| match front(line) {
        Front::Comment => edit.keep(line),
        Front::BadMarker => edit.invalid(number, line),
        Front::Entry(fields) => match HostField::parse(fields.hosts) {
            Err(_) => edit.invalid(number, line),
            Ok(_) if !raw_key_ok(fields.rest) => edit.invalid(number, line),
            Ok(hosts) if hosts.matches(name) && fields.marker == Marker::None => {
                edit.changed.push(number);
                Ok(())
            }
            Ok(_) => edit.keep(line),
        },
    })
}

/// `ssh-keygen -H`: copy `input` to `output`, replacing each plain,
/// unmarked entry by one hashed line per (lowercased) name, each with a
/// salt from `salt`. Lines already hashed, with wildcards or negation, or
/// with a marker stay as written.
pub fn hash_all(
    input: impl BufRead,
    output: impl Write,
    mut salt: impl FnMut() -> [u8; SALT_LEN],
) -> io::Result<Edited> {
    edit_lines(input, output, |edit, number, line| {
        let fields = match front(line) {
            Front::Comment => None,
            Front::BadMarker => return edit.invalid(number, line),
            Front::Entry(f) if !raw_key_ok(f.rest) => return edit.invalid(number, line),
            Front::Entry(f) => Some(f),
        };
        let plain = |f: &Fields<'_>| {
            !f.hosts.starts_with(b"|") && !has_wildcard(f.hosts) && f.marker == Marker::None
        };
        let Some(f) = fields.filter(plain) else {
            return edit.keep(line);
        };
        // ssh-keygen stops at the first empty name ("a,,b" loses "b");
        // skipping empty names instead keeps every host. A name that is
        // not UTF-8 is hashed as the bytes it is, as ssh-keygen does.
        for name in f.hosts.split(|&b| b == b',').filter(|n| !n.is_empty()) {
            let hashed = hash_host_bytes(&name.to_ascii_lowercase(), &salt());
            edit.write(&[hashed.as_bytes(), b" ", f.rest])?;
        }
        edit.changed.push(number);
        Ok(())
    })
}

/// The loop shared by the editors: one call of `each` per line, with an
/// over-long line counted as invalid (and not written).
fn edit_lines<W: Write>(
    mut input: impl BufRead,
    output: W,
    mut each: impl FnMut(&mut Editor<W>, usize, &[u8]) -> io::Result<()>,
) -> io::Result<Edited> {
    let mut edit = Editor {
        out: output,
        changed: Vec::new(),
        invalid: Vec::new(),
    };
    let mut buf = Vec::new();
    for number in 1.. {
        match read_line(&mut input, &mut buf, MAX_LINE)? {
            LineRead::Eof => break,
            LineRead::TooLong => edit.invalid.push(number),
            LineRead::Line => each(&mut edit, number, &buf)?,
        }
    }
    edit.out.flush()?;
    Ok(Edited {
        changed: edit.changed,
        invalid: edit.invalid,
    })
}

struct Editor<W> {
    out: W,
    changed: Vec<usize>,
    invalid: Vec<usize>,
}

impl<W: Write> Editor<W> {
    /// Write the parts and a newline (ssh-keygen ends every line with one).
    fn write(&mut self, parts: &[&[u8]]) -> io::Result<()> {
        for part in parts {
            self.out.write_all(part)?;
        }
        self.out.write_all(b"\n")
    }

    fn keep(&mut self, line: &[u8]) -> io::Result<()> {
        self.write(&[line])
    }

    fn invalid(&mut self, number: usize, line: &[u8]) -> io::Result<()> {
        self.invalid.push(number);
        self.keep(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkeys::{ed, k};

    #[test]
    fn entries() {
        let key = ed(1);
        assert_eq!(
            format_entry(&["Host.Example", "192.0.2.1"], &key),
            Ok(format!("host.example,192.0.2.1 {}\n", k(&key)))
        );
        let hashed = format_hashed_entry(&["a", "[b]:2222"], &key, || [0; SALT_LEN]);
        let want = format!(
            "{} {}\n{} {}\n",
            hash_host("a", &[0; SALT_LEN]),
            k(&key),
            hash_host("[b]:2222", &[0; SALT_LEN]),
            k(&key)
        );
        assert_eq!(hashed, Ok(want));
        for bad in [
            "", "a b", "a,b", "*", "h?", "!h", "|1|x", "#h", "@revoked", "a\tb",
        ] {
            assert_eq!(
                format_entry(&[bad], &key),
                Err(FormatError::InvalidName(bad.to_owned())),
                "{bad:?}"
            );
        }
        assert_eq!(format_entry(&[], &key), Err(FormatError::NoNames));
        assert!(format_entry(&["[host]:2222"], &key).is_ok());
    }

    #[test]
    fn appending_never_glues_lines() {
        let cases = [
            (None, "a k\n", "a k\n"),
            (Some(b'\n'), "a k\n", "a k\n"),
            (Some(b'x'), "a k\n", "\na k\n"),
            (Some(b'\r'), "a k", "\na k\n"),
        ];
        for (last, entry, want) in cases {
            assert_eq!(append_text(last, entry), want, "{last:?}");
        }
    }

    /// `remove_host` into a buffer: what it reported and what it wrote.
    fn removed(text: &[u8], name: &str) -> (Edited, Vec<u8>) {
        let mut out = Vec::new();
        let edited = remove_host(text, &mut out, name).unwrap();
        (edited, out)
    }

    fn hashed(text: &[u8]) -> (Edited, Vec<u8>) {
        let mut out = Vec::new();
        let mut n = 0u8;
        let edited = hash_all(text, &mut out, || {
            n += 1;
            [n; SALT_LEN]
        })
        .unwrap();
        (edited, out)
    }

    #[test]
    fn editing() {
        let key = k(&ed(1));
        let text = format!(
            "# c\nh,g {key}\n@revoked h {key}\n*.x {key}\n|1|AAAA|b {key}\nh {key} c\r\nh\n"
        );
        let found: Vec<(usize, Marker)> = find_host(text.as_bytes(), "h")
            .unwrap()
            .into_iter()
            .map(|f| (f.line, f.marker))
            .collect();
        assert_eq!(
            found,
            [(2, Marker::None), (3, Marker::Revoked), (6, Marker::None)]
        );
        let (edited, out) = removed(text.as_bytes(), "h");
        assert_eq!(edited.changed, [2, 6]);
        assert_eq!(edited.invalid, [5, 7]);
        assert_eq!(
            out,
            format!("# c\n@revoked h {key}\n*.x {key}\n|1|AAAA|b {key}\nh\n").as_bytes()
        );
        let (nothing, out) = removed(text.as_bytes(), "zzz");
        assert!(nothing.changed.is_empty());
        assert_eq!(out, text.as_bytes());

        let (edited, out) = hashed(text.as_bytes());
        assert_eq!(edited.changed, [2, 6]);
        assert_eq!(edited.invalid, [7]);
        let h = |name: &str, s: u8| hash_host(name, &[s; SALT_LEN]);
        assert_eq!(
            out,
            format!(
                "# c\n{} {key}\n{} {key}\n@revoked h {key}\n*.x {key}\n|1|AAAA|b {key}\n{} {key} c\r\nh\n",
                h("h", 1),
                h("g", 2),
                h("h", 3)
            )
            .as_bytes()
        );
    }

    // Editing used to take the file as a String, so the caller could not
    // read a file holding one byte that is not UTF-8 at all.
    #[test]
    fn lines_that_are_not_utf8_are_kept_byte_for_byte() {
        let key = format!(" {}", k(&ed(1)));
        let key = key.as_bytes();
        let text = [
            b"# caf\xe9\n".as_slice(),
            b"h",
            key,
            b" comm\xc3nt\n",
            b"h\xe9st",
            key,
            b"\nx\xe9\nother",
            key,
            b" \xff\r\n",
        ]
        .concat();
        let found = find_host(text.as_slice(), "h").unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].text, [b"h", key, b" comm\xc3nt"].concat());

        let (edited, out) = removed(&text, "h");
        assert_eq!((edited.changed, edited.invalid), (vec![2], vec![4]));
        let want = [
            b"# caf\xe9\n".as_slice(),
            b"h\xe9st",
            key,
            b"\nx\xe9\nother",
            key,
            b" \xff\r\n",
        ]
        .concat();
        assert_eq!(out, want);

        // The name is hashed as the bytes it is.
        let (edited, out) = hashed(&text);
        assert_eq!(edited.changed, [2, 3, 5]);
        let third = [hash_host_bytes(b"h\xe9st", &[2; SALT_LEN]).as_bytes(), key].concat();
        assert!(out.windows(third.len()).any(|w| w == third));
    }

    // A line of megabytes is not held in memory: it is invalid for edits
    // (so the file is left alone) and skipped by -F.
    #[test]
    fn overlong_lines_are_invalid_not_buffered() {
        let key = k(&ed(1));
        let long = vec![b'a'; MAX_LINE + 1];
        let first = format!("h {key}\n");
        let text = [first.as_bytes(), &long, b"\nh2 x\n"].concat();
        let (edited, _) = removed(&text, "h");
        assert_eq!((edited.changed, edited.invalid), (vec![1], vec![2, 3]));
        let found = find_host(text.as_slice(), "h").unwrap();
        assert_eq!(found.len(), 1);
    }
}
