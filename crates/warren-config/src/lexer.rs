//! Tokenizing one config line the way OpenSSH does (`misc.c`).
//!
//! Design choice: OpenSSH uses two different tokenizers on the same line,
//! and their differences are observable, so both are transcribed as is:
//! `strdelim` (splits the keyword off, understands `=` and double quotes
//! only, and is also what `Match` uses for its criteria) and `argv_split`
//! (the arguments: single and double quotes, backslash escapes, `#`
//! comments at the start of a word).

const WHITESPACE: &[char] = &[' ', '\t', '\r', '\n'];

fn skip_ws(s: &str) -> &str {
    s.trim_start_matches(WHITESPACE)
}

/// OpenSSH's `strdelim`: the next word of `rest`, splitting on whitespace or
/// one `=`, with `"quoted words"`. `None` when `rest` is exhausted or a quote
/// is unterminated (which also ends the line, as in OpenSSH).
pub(crate) fn strdelim(rest: &mut Option<&str>) -> Option<String> {
    let s = (*rest)?;
    let Some(pos) = s.find(|c: char| WHITESPACE.contains(&c) || c == '"' || c == '=') else {
        *rest = None;
        return Some(s.to_owned());
    };
    let delimiter = s.as_bytes()[pos];
    if delimiter == b'"' {
        let after = &s[pos + 1..];
        let Some(close) = after.find('"') else {
            *rest = None;
            return None;
        };
        *rest = Some(skip_ws(&after[close + 1..]));
        return Some(format!("{}{}", &s[..pos], &after[..close]));
    }
    let mut tail = skip_ws(&s[pos + 1..]);
    if delimiter != b'=' && tail.starts_with('=') {
        tail = skip_ws(&tail[1..]);
    }
    *rest = Some(tail);
    Some(s[..pos].to_owned())
}

/// Words as OpenSSH splits a command line (quotes and backslashes as
/// `argv_split`, `#` an ordinary character); `None` for unbalanced
/// quotes.
pub fn command_words(s: &str) -> Option<Vec<String>> {
    argv_split_all(s).ok()
}

/// OpenSSH's `argv_split` with `terminate_on_comment`: `Err(())` means
/// "invalid quotes".
pub(crate) fn argv_split(s: &str) -> Result<Vec<String>, ()> {
    split_words(s, true)
}

/// OpenSSH's `argv_split` without `terminate_on_comment` (a `#` is an
/// ordinary character, as for KnownHostsCommand).
pub(crate) fn argv_split_all(s: &str) -> Result<Vec<String>, ()> {
    split_words(s, false)
}

fn split_words(s: &str, terminate_on_comment: bool) -> Result<Vec<String>, ()> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b' ' || b[i] == b'\t' {
            i += 1;
            continue;
        }
        if terminate_on_comment && b[i] == b'#' {
            break;
        }
        let (word, end) = split_word(b, i)?;
        out.push(String::from_utf8_lossy(&word).into_owned());
        i = end + 1;
    }
    Ok(out)
}

/// One argv word starting at `i`: the unescaped bytes and the index of the
/// byte that ended it (the separator, or `b.len()`).
fn split_word(b: &[u8], mut i: usize) -> Result<(Vec<u8>, usize), ()> {
    let mut word = Vec::new();
    let mut quote = 0u8;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == b'\\' {
            if matches!(next, Some(b'\'' | b'"' | b'\\')) || (quote == 0 && next == Some(b' ')) {
                i += 1;
                word.push(b[i]);
            } else {
                word.push(c);
            }
        } else if quote == 0 && (c == b' ' || c == b'\t') {
            break;
        } else if quote == 0 && (c == b'"' || c == b'\'') {
            quote = c;
        } else if quote != 0 && c == quote {
            quote = 0;
        } else {
            word.push(c);
        }
        i += 1;
    }
    if i >= b.len() && quote != 0 {
        return Err(());
    }
    Ok((word, i))
}

/// The arguments of one line, consumed left to right (OpenSSH's
/// `argv_next`/`argv_consume`).
#[derive(Debug)]
pub(crate) struct Args {
    words: Vec<String>,
    next: usize,
}

impl Args {
    pub(crate) fn new(words: Vec<String>) -> Self {
        Self { words, next: 0 }
    }

    pub(crate) fn next_arg(&mut self) -> Option<String> {
        let word = self.words.get(self.next).cloned();
        if word.is_some() {
            self.next += 1;
        }
        word
    }

    pub(crate) fn peek(&self) -> Option<&str> {
        self.words.get(self.next).map(String::as_str)
    }

    pub(crate) fn remaining(&self) -> usize {
        self.words.len() - self.next
    }

    pub(crate) fn consume(&mut self) {
        self.next = self.words.len();
    }
}

/// Strip trailing whitespace (and form feeds) as OpenSSH does: never the
/// first byte of the line.
pub(crate) fn trim_line_end(line: &str) -> &str {
    let trimmed = line.trim_end_matches([' ', '\t', '\r', '\n', '\u{c}']);
    if trimmed.is_empty() && !line.is_empty() {
        &line[..1]
    } else {
        trimmed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn words(line: &str) -> Vec<Option<String>> {
        let mut rest = Some(line);
        let mut out = Vec::new();
        while rest.is_some() {
            out.push(strdelim(&mut rest));
        }
        out
    }

    #[test]
    fn strdelim_splits_like_openssh() {
        let s = |v: &str| Some(v.to_owned());
        assert_eq!(words("Port 22"), vec![s("Port"), s("22")]);
        assert_eq!(words("Port=22"), vec![s("Port"), s("22")]);
        assert_eq!(words("Port = 22"), vec![s("Port"), s("22")]);
        assert_eq!(words("Port==22"), vec![s("Port"), s(""), s("22")]);
        assert_eq!(words("\"Port\" 22"), vec![s("Port"), s("22")]);
        assert_eq!(words("a\"b c\" d"), vec![s("ab c"), s("d")]);
        assert_eq!(words("\"open"), vec![None]);
        assert_eq!(words("  x"), vec![s(""), s("x")]);
    }

    #[test]
    fn argv_split_like_openssh() {
        let ok = |v: &[&str]| Ok(v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let cases: &[(&str, Result<Vec<String>, ()>)] = &[
            ("a b", ok(&["a", "b"])),
            ("  a\tb  ", ok(&["a", "b"])),
            ("\"a b\" c", ok(&["a b", "c"])),
            ("'a b' c", ok(&["a b", "c"])),
            ("a\\ b", ok(&["a b"])),
            ("\"a\\ b\"", ok(&["a\\ b"])),
            ("a\\\"b", ok(&["a\"b"])),
            ("a\\x", ok(&["a\\x"])),
            ("a # comment", ok(&["a"])),
            ("a#b", ok(&["a#b"])),
            ("x\"y z\"w", ok(&["xy zw"])),
            ("\"\"", ok(&[""])),
            ("\"a", Err(())),
            ("'a\"", Err(())),
        ];
        for (line, want) in cases {
            assert_eq!(&argv_split(line), want, "{line:?}");
        }
    }

    #[test]
    fn trims_line_ends() {
        assert_eq!(trim_line_end("Port 22 \t\r\n"), "Port 22");
        assert_eq!(trim_line_end("\n"), "\n");
        assert_eq!(trim_line_end("x\u{c}"), "x");
    }

    /// Quote a word so that argv_split gives it back.
    fn quote(word: &str) -> String {
        let mut out = String::from("\"");
        for c in word.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
        out
    }

    proptest! {
        #[test]
        fn quoting_round_trips(ws in proptest::collection::vec("[^\\x00]{0,12}", 1..5)) {
            let line: Vec<String> = ws.iter().map(|w| quote(w)).collect();
            prop_assert_eq!(argv_split(&line.join(" ")), Ok(ws));
        }

        #[test]
        fn tokenizers_never_panic(line in ".{0,60}") {
            let _ = argv_split(&line);
            let _ = words(&line);
        }
    }
}
