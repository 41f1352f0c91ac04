//! OpenSSH host pattern lists (`match_hostname` in match.c).
//!
//! A list is comma-separated; `*` and `?` are wildcards; a `!` prefix
//! negates, and any negated match makes the whole list fail, whatever
//! positive patterns also matched. Names and patterns are compared in
//! ASCII lowercase.

/// OpenSSH gives up (no match) on a sub-pattern this long or longer.
const MAX_SUBPATTERN: usize = 1023;

/// Result of matching a name against a pattern list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListMatch {
    /// Some positive pattern matched and no negated one did.
    Positive,
    /// A negated pattern matched.
    Negative,
    /// Nothing matched.
    None,
}

/// Match `host` against a comma-separated pattern list, like OpenSSH's
/// `match_hostname`. The list is bytes as read from the file: a byte that
/// is not UTF-8 is compared like any other, as OpenSSH does.
pub fn match_hostname(host: &str, list: impl AsRef<[u8]>) -> ListMatch {
    let list = list.as_ref();
    let host = host.to_ascii_lowercase();
    let mut positive = false;
    // OpenSSH stops at the end of the string, so a trailing comma does not
    // add an empty sub-pattern (and an empty list matches nothing).
    let empty = list.is_empty();
    let list = list.strip_suffix(b",").unwrap_or(list);
    let subs = list.split(|&b| b == b',').filter(|_| !empty);
    for sub in subs {
        let (negated, sub) = match sub.strip_prefix(b"!") {
            Some(rest) => (true, rest),
            None => (false, sub),
        };
        if sub.len() >= MAX_SUBPATTERN {
            return ListMatch::None;
        }
        if glob(host.as_bytes(), &sub.to_ascii_lowercase()) {
            if negated {
                return ListMatch::Negative;
            }
            positive = true;
        }
    }
    if positive {
        ListMatch::Positive
    } else {
        ListMatch::None
    }
}

/// Whether `pattern` contains wildcard or negation characters.
pub fn has_wildcard(hosts: &[u8]) -> bool {
    hosts.iter().any(|b| matches!(b, b'*' | b'?' | b'!'))
}

/// `*`/`?` glob over bytes, iterative with single-star backtracking
/// (same answers as OpenSSH's recursive `match_pattern`, linear memory).
fn glob(s: &[u8], p: &[u8]) -> bool {
    let (mut si, mut pi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, si));
                pi += 1;
            }
            Some(&c) if c == b'?' || c == s[si] => {
                si += 1;
                pi += 1;
            }
            _ => match star {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_lists() {
        use ListMatch::*;
        let cases = [
            ("host", "host", Positive),
            ("HOST", "host", Positive),
            ("host", "HoSt", Positive),
            ("host", "other", None),
            ("host", "other,host", Positive),
            ("a.example.com", "*.example.com", Positive),
            ("example.com", "*.example.com", None),
            ("host1", "host?", Positive),
            ("host12", "host?", None),
            ("a.example.com", "*.example.com,!a.example.com", Negative),
            ("b.example.com", "*.example.com,!a.example.com", Positive),
            ("a.example.com", "!a.example.com", Negative),
            ("b.example.com", "!a.example.com", None),
            ("[host]:2222", "[host]:2222", Positive),
            ("[host]:2222", "host", None),
            ("[host]:2222", "[host]:*", Positive),
            ("", "", None),
            ("", ",", Positive),
            ("", "a,", None),
            ("", "a,,b", Positive),
            ("x", "", None),
            ("host", "h*t", Positive),
            ("hostt", "h*t", Positive),
            ("hos", "h*t", None),
            ("aaa", "**a", Positive),
            ("ab", "*?*?*", Positive),
            ("a", "*?*?*", None),
        ];
        let bytes: [(&str, &[u8], ListMatch); 4] = [
            // A pattern that is not UTF-8 is still a list of byte patterns.
            ("myhost", b"h\xe9st,myhost", Positive),
            ("h\u{e9}st", b"h\xe9st", None),
            ("h\u{e9}st", b"h\xc3*", Positive),
            ("host", b"!h\xff,host", Positive),
        ];
        for (host, list, want) in bytes {
            assert_eq!(match_hostname(host, list), want, "{host} vs {list:?}");
        }
        for (host, list, want) in cases {
            assert_eq!(match_hostname(host, list), want, "{host} vs {list}");
        }
    }

    #[test]
    fn overlong_subpattern_never_matches() {
        let long = "a".repeat(MAX_SUBPATTERN);
        assert_eq!(match_hostname(&long, &long), ListMatch::None);
        let short = "a".repeat(MAX_SUBPATTERN - 1);
        assert_eq!(match_hostname(&short, &short), ListMatch::Positive);
    }
}
