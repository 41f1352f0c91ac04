//! Text a peer or a file supplied, made safe to print.
//!
//! Anything that did not come from this program (a SOCKS client's host name,
//! a server's banner or disconnect reason, a user name, a remote error
//! message, a file name, a line of authorized_keys) may hold a newline that
//! forges a log line, an escape sequence that rewrites the terminal, a bidi
//! override that reorders what the reader sees, or bytes that are not UTF-8.
//! [`Escaped`] prints such bytes with every control character written as an
//! escape (`\n`, `\r`, `\t`, `\e`, `\x7f`, `\u{202e}`) and every byte that is
//! not UTF-8 as `\xNN`; printable text, non-ASCII included, passes unchanged.
//! Backslashes are not doubled: paths stay readable, and what matters here is
//! that nothing the peer sends can act on the terminal.
//!
//! [`Escaped::truncated`] caps what is shown (a hostile peer can send a line
//! of megabytes) and says how much was cut.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

/// Bytes to print safely: `format!("{}", Escaped::new(bytes))`.
#[derive(Clone, Copy)]
pub struct Escaped<'a> {
    bytes: &'a [u8],
    limit: usize,
}

impl<'a> Escaped<'a> {
    /// All of `bytes`, escaped.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            limit: usize::MAX,
        }
    }

    /// At most `limit` input bytes shown, then `... (N more bytes)`.
    pub fn truncated(bytes: &'a [u8], limit: usize) -> Self {
        Self { bytes, limit }
    }
}

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = self.bytes.len().min(self.limit);
        let mut rest = &self.bytes[..shown];
        while !rest.is_empty() {
            match std::str::from_utf8(rest) {
                Ok(text) => {
                    write_chars(f, text)?;
                    break;
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    // `valid_up_to` bytes are UTF-8 by the error's contract.
                    write_chars(f, std::str::from_utf8(valid).unwrap_or_default())?;
                    // A sequence cut by the limit is shown as bytes too.
                    let bad = e.error_len().unwrap_or(after.len());
                    for b in &after[..bad] {
                        write!(f, "\\x{b:02x}")?;
                    }
                    rest = &after[bad..];
                }
            }
        }
        if shown < self.bytes.len() {
            write!(f, "... ({} more bytes)", self.bytes.len() - shown)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

fn write_chars(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if needs_escape(c) {
            f.write_str(&text[start..i])?;
            write_escape(f, c)?;
            start = i + c.len_utf8();
        }
    }
    f.write_str(&text[start..])
}

/// Control characters (C0, DEL, C1) and the invisible characters that reorder
/// or hide text on a terminal (bidi controls, zero-width marks).
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2069}'
            | '\u{feff}')
}

fn write_escape(f: &mut fmt::Formatter<'_>, c: char) -> fmt::Result {
    match c {
        '\n' => f.write_str("\\n"),
        '\r' => f.write_str("\\r"),
        '\t' => f.write_str("\\t"),
        '\u{1b}' => f.write_str("\\e"),
        c if (c as u32) < 0x80 => write!(f, "\\x{:02x}", c as u32),
        c => {
            f.write_str("\\u{")?;
            write!(f, "{:x}", c as u32)?;
            f.write_char('}')
        }
    }
}

/// `bytes` escaped; borrowed when nothing needed escaping.
pub fn escape(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) if !text.chars().any(needs_escape) => Cow::Borrowed(text),
        _ => Cow::Owned(Escaped::new(bytes).to_string()),
    }
}

/// `text` escaped; borrowed when nothing needed escaping.
pub fn escape_str(text: &str) -> Cow<'_, str> {
    escape(text.as_bytes())
}

/// `text` escaped line by line: newlines kept (a server's
/// keyboard-interactive instructions span lines, and ssh shows them so),
/// every other control character escaped.
pub fn escape_lines(text: &str) -> String {
    text.split('\n')
        .map(escape_str)
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_each_kind_of_hostile_byte() {
        let cases: &[(&[u8], &str)] = &[
            (b"plain host.example", "plain host.example"),
            (b"evil\nwarren: forged", "evil\\nwarren: forged"),
            (b"a\r\tb", "a\\r\\tb"),
            (b"\x1b[2J\x1b]0;title\x07", "\\e[2J\\e]0;title\\x07"),
            (b"del\x7f", "del\\x7f"),
            (b"nul\0", "nul\\x00"),
            (b"caf\xc3\xa9", "café"),
            (b"x\xe9y", "x\\xe9y"),
            ("c1\u{85}".as_bytes(), "c1\\u{85}"),
            ("rtl\u{202e}gpj.exe".as_bytes(), "rtl\\u{202e}gpj.exe"),
            ("zw\u{200b}".as_bytes(), "zw\\u{200b}"),
            (b"back\\slash", "back\\slash"),
            (b"", ""),
        ];
        for (input, want) in cases {
            assert_eq!(escape(input), *want, "input {input:?}");
        }
    }

    #[test]
    fn lines_keep_their_newlines_only() {
        assert_eq!(
            escape_lines("Welcome\nType the code\x1b[2J\r\n"),
            "Welcome\nType the code\\e[2J\\r\n"
        );
    }

    #[test]
    fn borrows_when_clean() {
        assert!(matches!(escape(b"clean"), Cow::Borrowed(_)));
        assert!(matches!(escape(b"dirty\n"), Cow::Owned(_)));
    }

    #[test]
    fn truncation_says_how_much_was_cut() {
        let long = [b'a'; 300];
        let shown = Escaped::truncated(&long, 200).to_string();
        assert_eq!(shown, format!("{}... (100 more bytes)", "a".repeat(200)));
        // A multi-byte character cut by the limit shows as bytes, not as garbage.
        let cut = Escaped::truncated("é".as_bytes(), 1).to_string();
        assert_eq!(cut, "\\xc3... (1 more bytes)");
    }

    proptest::proptest! {
        #[test]
        fn output_never_holds_a_control_character(bytes: Vec<u8>) {
            let out = Escaped::new(&bytes).to_string();
            proptest::prop_assert!(!out.chars().any(needs_escape), "{out:?}");
        }
    }
}
