//! Producing and rewriting known_hosts text: new entries (what ssh adds
//! after "Permanently added") and the `ssh-keygen -F`, `-R` and `-H`
//! equivalents.
//!
//! Design choice: these work on the raw text line by line and validate
//! lines the way ssh-keygen does (key type name only, no key decoding), so
//! every line they do not touch is written back byte for byte, CR included.
//! Like ssh-keygen, each output line ends with `\n`.

use crate::error::FormatError;
use crate::hash::{SALT_LEN, hash_host};
use crate::key::HostKey;
use crate::line::{Front, HostField, Marker, front, lines, raw_key_ok};
use crate::pattern::has_wildcard;

/// An edited file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Edited {
    /// The new text.
    pub text: String,
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
    /// The line as written (without `\n`).
    pub text: String,
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
/// `name` exactly as given (hashed names are not lowercased).
pub fn find_host(text: &str, name: &str) -> Vec<Found> {
    lines(text)
        .filter_map(|(number, line)| {
            let Front::Entry(fields) = front(line) else {
                return None;
            };
            let hosts = HostField::parse(fields.hosts).ok()?;
            (hosts.matches(name) && raw_key_ok(fields.rest)).then(|| Found {
                line: number,
                text: line.to_owned(),
                marker: fields.marker,
            })
        })
        .collect()
}

/// `ssh-keygen -R name`: drop valid unmarked lines matching `name`; keep
/// everything else (including `@cert-authority`/`@revoked` lines).
pub fn remove_host(text: &str, name: &str) -> Edited {
    let mut out = Edited::default();
    for (number, line) in lines(text) {
        match front(line) {
            Front::Comment => {}
            Front::BadMarker => out.invalid.push(number),
            Front::Entry(fields) => match HostField::parse(fields.hosts) {
                Err(_) => out.invalid.push(number),
                Ok(_) if !raw_key_ok(fields.rest) => out.invalid.push(number),
                Ok(hosts) if hosts.matches(name) && fields.marker == Marker::None => {
                    out.changed.push(number);
                    continue;
                }
                Ok(_) => {}
            },
        }
        out.push_line(line);
    }
    out
}

/// `ssh-keygen -H`: replace each plain, unmarked entry by one hashed line
/// per (lowercased) name, each with a salt from `salt`. Lines already
/// hashed, with wildcards or negation, or with a marker stay as written.
pub fn hash_all(text: &str, mut salt: impl FnMut() -> [u8; SALT_LEN]) -> Edited {
    let mut out = Edited::default();
    for (number, line) in lines(text) {
        let fields = match front(line) {
            Front::Comment => None,
            Front::BadMarker => {
                out.invalid.push(number);
                None
            }
            Front::Entry(f) if !raw_key_ok(f.rest) => {
                out.invalid.push(number);
                None
            }
            Front::Entry(f) => Some(f),
        };
        let Some(f) = fields.filter(|f| {
            !f.hosts.starts_with('|') && !has_wildcard(f.hosts) && f.marker == Marker::None
        }) else {
            out.push_line(line);
            continue;
        };
        // ssh-keygen stops at the first empty name ("a,,b" loses "b");
        // skipping empty names instead keeps every host.
        for name in f.hosts.split(',').filter(|n| !n.is_empty()) {
            let hashed = hash_host(&name.to_ascii_lowercase(), &salt());
            out.push_line(&format!("{hashed} {}", f.rest));
        }
        out.changed.push(number);
    }
    out
}

impl Edited {
    fn push_line(&mut self, line: &str) {
        self.text.push_str(line);
        self.text.push('\n');
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

    #[test]
    fn editing() {
        let key = k(&ed(1));
        let text = format!(
            "# c\nh,g {key}\n@revoked h {key}\n*.x {key}\n|1|AAAA|b {key}\nh {key} c\r\nh\n"
        );
        let found: Vec<(usize, Marker)> = find_host(&text, "h")
            .into_iter()
            .map(|f| (f.line, f.marker))
            .collect();
        assert_eq!(
            found,
            [(2, Marker::None), (3, Marker::Revoked), (6, Marker::None)]
        );
        let removed = remove_host(&text, "h");
        assert_eq!(removed.changed, [2, 6]);
        assert_eq!(removed.invalid, [5, 7]);
        assert_eq!(
            removed.text,
            format!("# c\n@revoked h {key}\n*.x {key}\n|1|AAAA|b {key}\nh\n")
        );
        let nothing = remove_host(&text, "zzz");
        assert!(nothing.changed.is_empty());
        assert_eq!(nothing.text, text);

        let mut n = 0u8;
        let hashed = hash_all(&text, || {
            n += 1;
            [n; SALT_LEN]
        });
        assert_eq!(hashed.changed, [2, 6]);
        assert_eq!(hashed.invalid, [7]);
        let h = |name: &str, s: u8| hash_host(name, &[s; SALT_LEN]);
        assert_eq!(
            hashed.text,
            format!(
                "# c\n{} {key}\n{} {key}\n@revoked h {key}\n*.x {key}\n|1|AAAA|b {key}\n{} {key} c\r\nh\n",
                h("h", 1),
                h("g", 2),
                h("h", 3)
            )
        );
    }
}
