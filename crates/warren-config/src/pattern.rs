//! OpenSSH's wildcard patterns (`match.c`): `*`, `?`, comma lists, `!`.
//!
//! Design choice: matching is byte-wise like OpenSSH's, but iterative with
//! single-star backtracking instead of OpenSSH's recursion, so a hostile
//! pattern cannot take exponential time. The set of accepted strings is the
//! same.

/// Result of matching a comma-separated pattern list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListMatch {
    /// A `!pattern` matched: the list rejects the string outright.
    Negated,
    /// A positive pattern matched and no negated one did.
    Positive,
    /// Nothing matched.
    NoMatch,
}

/// Whether `s` matches `pattern` (`*` any run, `?` any one byte).
pub fn match_pattern(s: &str, pattern: &str) -> bool {
    let (s, p) = (s.as_bytes(), pattern.as_bytes());
    let (mut si, mut pi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) && p[pi] != b'*' {
            si += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((star_pi, star_si)) = star {
            pi = star_pi + 1;
            si = star_si + 1;
            star = Some((star_pi, star_si + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// OpenSSH's `match_pattern_list`: `list` is comma separated, each entry
/// optionally negated with `!`. With `lowercase_patterns`, pattern letters
/// are lowercased before matching (the string is not).
pub fn match_pattern_list(s: &str, list: &str, lowercase_patterns: bool) -> ListMatch {
    let mut positive = false;
    for entry in list.split(',') {
        let (negated, sub) = match entry.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, entry),
        };
        // OpenSSH copies each subpattern into a 1024-byte buffer and gives
        // up ("no match") on longer ones.
        if sub.len() >= 1023 {
            return ListMatch::NoMatch;
        }
        let sub = if lowercase_patterns {
            sub.to_ascii_lowercase()
        } else {
            sub.to_owned()
        };
        if match_pattern(s, &sub) {
            if negated {
                return ListMatch::Negated;
            }
            positive = true;
        }
    }
    if positive {
        ListMatch::Positive
    } else {
        ListMatch::NoMatch
    }
}

/// OpenSSH's `match_hostname`: case-insensitive [`match_pattern_list`].
pub fn match_host_pattern_list(host: &str, list: &str) -> ListMatch {
    match_pattern_list(&host.to_ascii_lowercase(), list, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn wildcards() {
        let cases = [
            ("host", "host", true),
            ("host", "h*", true),
            ("host", "*", true),
            ("", "*", true),
            ("", "", true),
            ("", "?", false),
            ("host", "h?st", true),
            ("host", "h??st", false),
            ("a.example.com", "*.example.com", true),
            ("example.com", "*.example.com", false),
            ("abcabd", "*abd", true),
            ("aaa", "a*a*a", true),
            ("aa", "a*a*a", false),
            ("Host", "host", false),
            ("x", "**?**", true),
        ];
        for (s, p, want) in cases {
            assert_eq!(match_pattern(s, p), want, "{s:?} vs {p:?}");
        }
    }

    #[test]
    fn lists() {
        use ListMatch::*;
        let cases = [
            ("a.com", "*.com,!a.com", Negated),
            ("b.com", "*.com,!a.com", Positive),
            ("b.org", "*.com,!a.com", NoMatch),
            ("b.org", "!a.com", NoMatch),
            ("x", "", NoMatch),
            ("", "", Positive),
            ("x", "y,,x", Positive),
        ];
        for (s, p, want) in cases {
            assert_eq!(match_pattern_list(s, p, false), want, "{s:?} vs {p:?}");
        }
        assert_eq!(match_host_pattern_list("A.COM", "*.Com"), Positive);
        assert_eq!(match_pattern_list("root", "ROOT", false), NoMatch);
    }

    /// Reference: OpenSSH's recursive algorithm, transcribed.
    fn reference(s: &[u8], p: &[u8]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some(b'*') => (0..=s.len()).any(|i| reference(&s[i..], &p[1..])),
            Some(&c) => !s.is_empty() && (c == b'?' || c == s[0]) && reference(&s[1..], &p[1..]),
        }
    }

    proptest! {
        #[test]
        fn agrees_with_openssh_recursion(s in "[ab.]{0,8}", p in "[ab.*?]{0,6}") {
            prop_assert_eq!(match_pattern(&s, &p), reference(s.as_bytes(), p.as_bytes()));
        }

        #[test]
        fn never_panics(s in ".{0,40}", p in ".{0,40}") {
            let _ = match_pattern_list(&s, &p, true);
        }
    }
}
