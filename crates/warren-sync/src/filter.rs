//! rsync's include/exclude rules for everyday use: `--exclude`,
//! `--include`, `--exclude-from` and `--include-from`, with rsync's pattern
//! language (rsync(1), "INCLUDE/EXCLUDE PATTERN RULES").
//!
//! The one design choice: matching follows rsync's own matcher (its
//! `wildmatch` and `rule_matches`) case by case rather than a generic glob
//! crate, because the corners are where a sync goes wrong:
//! - a leading `/` anchors the pattern to the transfer root; a trailing `/`
//!   makes it match directories only;
//! - `*` and `?` and `[...]` never match `/`; `**` does (but `a/**/b` does
//!   not match `a/b`, unlike git); a pattern that starts with `**` may match
//!   from the root, and one that ends in `/***` matches the directory too;
//! - a pattern with no `/` (and no `**`) matches the last component at any
//!   depth; one with an inner `/` matches that many trailing components;
//! - the first rule that matches decides; no match means included.
//!
//! Paths are bytes relative to the transfer root, `/`-separated, with no
//! trailing `/`. [`Filters::excluded`] judges one path; rsync never looks
//! inside an excluded directory, which [`Filters::excluded_with_parents`]
//! adds for a path whose parents were not judged by a walk.
//!
//! Rule text comes from the command line or from files the caller read
//! (this module does no I/O): a `--*-from` file is split into lines at `\n`
//! or `\r`, blank lines and lines starting with `#` or `;` are skipped, and
//! a line (like an `--exclude`/`--include` argument) may start with `+ ` or
//! `- ` to say which kind it is; a lone `!` clears the rules before it.

use std::fmt;

/// Longest rule accepted, like rsync's line buffer: a longer one is an
/// error rather than a silently different rule.
pub const MAX_RULE_LEN: usize = 4096;

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Include,
    Exclude,
}

/// One filter option as typed: the pattern of `--exclude`/`--include`, or
/// the contents of the file named by `--exclude-from`/`--include-from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterArg<'a> {
    Exclude(&'a [u8]),
    Include(&'a [u8]),
    ExcludeFrom(&'a [u8]),
    IncludeFrom(&'a [u8]),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FilterError {
    #[error("empty filter rule `{}`", warren_wire::escape(.0))]
    Empty(Vec<u8>),
    #[error("filter rule of {0} bytes is longer than the {MAX_RULE_LEN}-byte limit")]
    TooLong(usize),
    #[error("filter rule `{}` contains a NUL byte", warren_wire::Escaped::truncated(.0, 200))]
    Nul(Vec<u8>),
}

/// An ordered list of rules; the first that matches a path decides.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Filters {
    rules: Vec<Rule>,
}

impl fmt::Debug for Filters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.rules).finish()
    }
}

#[derive(Clone, PartialEq, Eq)]
struct Rule {
    action: Action,
    /// The pattern without its trailing `/`, with its leading `/`.
    pattern: Vec<u8>,
    dir_only: bool,
    /// `/` characters in `pattern` (the leading one included).
    slashes: usize,
    /// Contains `*`, `?` or `[`: matched as a glob, else literally.
    wild: bool,
    /// Contains `**`.
    wild2: bool,
    /// Starts with `**`.
    wild2_prefix: bool,
    /// Ends with `***`.
    wild3_suffix: bool,
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = match self.action {
            Action::Include => '+',
            Action::Exclude => '-',
        };
        let slash = if self.dir_only { "/" } else { "" };
        write!(f, "{sign} {}{slash}", warren_wire::escape(&self.pattern))
    }
}

impl Filters {
    /// The rules of these options, in order.
    pub fn parse<'a>(args: impl IntoIterator<Item = FilterArg<'a>>) -> Result<Self, FilterError> {
        let mut filters = Self::default();
        for arg in args {
            match arg {
                FilterArg::Exclude(p) => filters.add_rule(Action::Exclude, p)?,
                FilterArg::Include(p) => filters.add_rule(Action::Include, p)?,
                FilterArg::ExcludeFrom(text) => filters.add_file(Action::Exclude, text)?,
                FilterArg::IncludeFrom(text) => filters.add_file(Action::Include, text)?,
            }
        }
        Ok(filters)
    }

    /// Whether no rule was given (everything is included).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Adds one `--exclude`/`--include` argument (`default` says which):
    /// `+ PAT`/`- PAT` override it, a lone `!` clears the list.
    pub fn add_rule(&mut self, default: Action, text: &[u8]) -> Result<(), FilterError> {
        if text.len() > MAX_RULE_LEN {
            return Err(FilterError::TooLong(text.len()));
        }
        if text.contains(&0) {
            return Err(FilterError::Nul(text.to_vec()));
        }
        let (action, pattern) = match text {
            [b'-', b' ', rest @ ..] => (Action::Exclude, rest),
            [b'+', b' ', rest @ ..] => (Action::Include, rest),
            b"!" => {
                self.rules.clear();
                return Ok(());
            }
            _ => (default, text),
        };
        if pattern.is_empty() {
            return Err(FilterError::Empty(text.to_vec()));
        }
        self.rules.push(Rule::new(action, pattern));
        Ok(())
    }

    /// Adds the rules of an `--exclude-from`/`--include-from` file.
    pub fn add_file(&mut self, default: Action, text: &[u8]) -> Result<(), FilterError> {
        for line in text.split(|&b| b == b'\n' || b == b'\r') {
            if line.is_empty() || line[0] == b'#' || line[0] == b';' {
                continue;
            }
            self.add_rule(default, line)?;
        }
        Ok(())
    }

    /// Whether the first rule matching `path` (relative to the transfer
    /// root) excludes it. Its parents are not looked at.
    pub fn excluded(&self, path: &[u8], is_dir: bool) -> bool {
        self.rules
            .iter()
            .find(|r| r.matches(path, is_dir))
            .is_some_and(|r| r.action == Action::Exclude)
    }

    /// Whether `path` or any directory above it is excluded: what rsync's
    /// walk, which never enters an excluded directory, decides.
    pub fn excluded_with_parents(&self, path: &[u8], is_dir: bool) -> bool {
        let parents = path
            .iter()
            .enumerate()
            .filter(|&(i, &b)| b == b'/' && i > 0)
            .map(|(i, _)| &path[..i]);
        for parent in parents {
            if self.excluded(parent, true) {
                return true;
            }
        }
        self.excluded(path, is_dir)
    }
}

impl Rule {
    fn new(action: Action, pattern: &[u8]) -> Self {
        let (pattern, dir_only) = match pattern {
            [rest @ .., b'/'] if !rest.is_empty() => (rest, true),
            _ => (pattern, false),
        };
        let wild = pattern.iter().any(|b| matches!(b, b'*' | b'?' | b'['));
        let wild2 = wild && pattern.windows(2).any(|w| w == b"**");
        Self {
            action,
            pattern: pattern.to_vec(),
            dir_only,
            slashes: pattern.iter().filter(|&&b| b == b'/').count(),
            wild,
            wild2,
            wild2_prefix: wild2 && pattern.starts_with(b"**"),
            wild3_suffix: wild2 && pattern.ends_with(b"***"),
        }
    }

    fn matches(&self, path: &[u8], is_dir: bool) -> bool {
        let name = path.strip_prefix(b"/").unwrap_or(path);
        if name.is_empty() || (self.dir_only && !is_dir) {
            return false;
        }
        let mut text = Vec::with_capacity(name.len() + 2);
        if self.slashes == 0 && !self.wild2 {
            let last = name.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
            text.extend_from_slice(&name[last..]);
        } else {
            if self.wild2_prefix {
                // Lets `**/x` match `x` at the root.
                text.push(b'/');
            }
            text.extend_from_slice(name);
        }
        if is_dir && self.wild3_suffix {
            // Lets `dir/***` match `dir` itself.
            text.push(b'/');
        }
        let (pattern, anchored) = match self.pattern.strip_prefix(b"/") {
            Some(p) => (p, true),
            None => (&self.pattern[..], false),
        };
        let place = if !anchored && self.slashes > 0 && !self.wild2 {
            Place::Trailing(self.slashes + 1)
        } else if !anchored && self.wild2 && !self.wild2_prefix {
            Place::AnySlash
        } else {
            Place::Start
        };
        if self.wild {
            wildmatch_at(pattern, &text, place)
        } else {
            literal_at(pattern, &text, anchored)
        }
    }
}

/// Where in the text a pattern may start.
#[derive(Debug, Clone, Copy)]
enum Place {
    /// At the start only.
    Start,
    /// At the start of the last N `/`-separated components.
    Trailing(usize),
    /// At the start or after any `/`.
    AnySlash,
}

/// The last `n` components of `text`, or `None` if it has fewer.
fn trailing(text: &[u8], n: usize) -> Option<&[u8]> {
    let mut left = n;
    for (i, &b) in text.iter().enumerate().rev() {
        if b == b'/' {
            left -= 1;
            if left == 0 {
                return Some(&text[i + 1..]);
            }
        }
    }
    (left == 1).then_some(text)
}

/// A pattern without wildcards: the whole path when anchored, else the
/// end of the path from a component start (for a pattern without `/`,
/// the text is already the last component).
fn literal_at(pattern: &[u8], text: &[u8], anchored: bool) -> bool {
    if anchored {
        return text == pattern;
    }
    text.ends_with(pattern)
        && (text.len() == pattern.len() || text[text.len() - pattern.len() - 1] == b'/')
}

fn wildmatch_at(pattern: &[u8], text: &[u8], place: Place) -> bool {
    let text = match place {
        Place::Trailing(n) => match trailing(text, n) {
            Some(t) => t,
            None => return false,
        },
        _ => text,
    };
    let mut m = dowild(pattern, text);
    if m != Wild::Match && m != Wild::AbortAll && matches!(place, Place::AnySlash) {
        for (i, _) in text.iter().enumerate().filter(|&(_, &b)| b == b'/') {
            m = dowild(pattern, &text[i + 1..]);
            if m == Wild::Match || m == Wild::AbortAll {
                break;
            }
        }
    }
    m == Wild::Match
}

/// The outcome of matching a pattern against a text, with rsync's two
/// early exits that keep `*` from trying every split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wild {
    Match,
    NoMatch,
    /// The text ran out: no later start can match either.
    AbortAll,
    /// A single `*` reached a `/`: only an enclosing `**` may go on.
    AbortToStarStar,
}

fn dowild(p: &[u8], t: &[u8]) -> Wild {
    let (mut pi, mut ti) = (0, 0);
    while let Some(&pc) = p.get(pi) {
        let Some(&tc) = t.get(ti) else {
            if pc != b'*' {
                return Wild::AbortAll;
            }
            return star(p, pi, t, ti);
        };
        match pc {
            b'\\' => {
                pi += 1;
                if p.get(pi) != Some(&tc) {
                    return Wild::NoMatch;
                }
            }
            b'?' if tc == b'/' => return Wild::NoMatch,
            b'?' => {}
            b'*' => return star(p, pi, t, ti),
            b'[' => match class(p, pi + 1, tc) {
                Ok((end, true)) => pi = end,
                Ok((_, false)) => return Wild::NoMatch,
                Err(()) => return Wild::AbortAll,
            },
            _ if pc != tc => return Wild::NoMatch,
            _ => {}
        }
        pi += 1;
        ti += 1;
    }
    if ti == t.len() {
        Wild::Match
    } else {
        Wild::NoMatch
    }
}

/// `p[pi]` is `*`: tries every way it (or `**`) can end.
fn star(p: &[u8], mut pi: usize, t: &[u8], mut ti: usize) -> Wild {
    pi += 1;
    let double = p.get(pi) == Some(&b'*');
    while p.get(pi) == Some(&b'*') {
        pi += 1;
    }
    if pi == p.len() {
        // A trailing `**` matches everything, a trailing `*` only what has
        // no more `/`.
        return if double || !t[ti..].contains(&b'/') {
            Wild::Match
        } else {
            Wild::NoMatch
        };
    }
    let rest = &p[pi..];
    while ti < t.len() {
        let m = dowild(rest, &t[ti..]);
        if m != Wild::NoMatch {
            if !double || m != Wild::AbortToStarStar {
                return m;
            }
        } else if !double && t[ti] == b'/' {
            return Wild::AbortToStarStar;
        }
        ti += 1;
    }
    Wild::AbortAll
}

/// Matches `tc` against the class that starts at `p[pi]` (just after `[`):
/// `Ok((index of the closing ']', matched))`, `Err` for a class that never
/// closes (rsync then gives up on the whole pattern).
fn class(p: &[u8], mut pi: usize, tc: u8) -> Result<(usize, bool), ()> {
    let at = |i: usize| p.get(i).copied().unwrap_or(0);
    let mut pc = at(pi);
    let negated = pc == b'!' || pc == b'^';
    if negated {
        pi += 1;
        pc = at(pi);
    }
    let mut prev = 0u8;
    let mut matched = false;
    loop {
        if pc == 0 {
            return Err(());
        }
        if pc == b'\\' {
            pi += 1;
            pc = at(pi);
            if pc == 0 {
                return Err(());
            }
            matched |= tc == pc;
        } else if pc == b'-' && prev != 0 && at(pi + 1) != 0 && at(pi + 1) != b']' {
            pi += 1;
            pc = at(pi);
            if pc == b'\\' {
                pi += 1;
                pc = at(pi);
                if pc == 0 {
                    return Err(());
                }
            }
            matched |= prev <= tc && tc <= pc;
            pc = 0;
        } else if pc == b'[' && at(pi + 1) == b':' {
            match named_class(p, pi + 2, tc)? {
                Some((end, hit)) => {
                    matched |= hit;
                    pi = end;
                    pc = 0;
                }
                // No `:]` before the next `]`: a plain `[`.
                None => matched |= tc == b'[',
            }
        } else {
            matched |= tc == pc;
        }
        prev = pc;
        pi += 1;
        pc = at(pi);
        if pc == b']' {
            break;
        }
    }
    Ok((pi, matched != negated && tc != b'/'))
}

/// `[:name:]` starting at `p[start]` (just after `[:`): `Ok(None)` when it
/// is not one, else the index of its `]` and whether `tc` is in it.
fn named_class(p: &[u8], start: usize, tc: u8) -> Result<Option<(usize, bool)>, ()> {
    let Some(len) = p
        .get(start..)
        .and_then(|s| s.iter().position(|&b| b == b']'))
    else {
        return Err(());
    };
    let end = start + len;
    if len == 0 || p[end - 1] != b':' {
        return Ok(None);
    }
    let hit = match &p[start..end - 1] {
        b"alnum" => tc.is_ascii_alphanumeric(),
        b"alpha" => tc.is_ascii_alphabetic(),
        b"blank" => tc == b' ' || tc == b'\t',
        b"cntrl" => tc.is_ascii_control(),
        b"digit" => tc.is_ascii_digit(),
        b"graph" => tc.is_ascii_graphic(),
        b"lower" => tc.is_ascii_lowercase(),
        b"print" => tc.is_ascii_graphic() || tc == b' ',
        b"punct" => tc.is_ascii_punctuation(),
        b"space" => tc.is_ascii_whitespace() || tc == 0x0b,
        b"upper" => tc.is_ascii_uppercase(),
        b"xdigit" => tc.is_ascii_hexdigit(),
        _ => return Err(()),
    };
    Ok(Some((end, hit)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ex(rules: &[&str]) -> Filters {
        Filters::parse(rules.iter().map(|r| FilterArg::Exclude(r.as_bytes()))).unwrap()
    }

    // Each row: rules (as --exclude args), path, is_dir, excluded. These
    // are the rsync(1) examples; tests/rsync_oracle.rs checks the same
    // matcher against rsync itself.
    #[test]
    fn patterns_as_rsync_documents_them() {
        let rows: &[(&[&str], &str, bool, bool)] = &[
            (&["*.o"], "a/b/x.o", false, true),
            (&["*.o"], "x.o.c", false, false),
            (&["/foo"], "foo", false, true),
            (&["/foo"], "bar/foo", false, false),
            (&["foo/"], "a/foo", true, true),
            (&["foo/"], "a/foo", false, false),
            (&["foo/bar"], "x/foo/bar", false, true),
            (&["foo/bar"], "foo/bar", false, true),
            (&["foo/bar"], "xfoo/bar", false, false),
            (&["/foo/*/bar"], "foo/x/bar", false, true),
            (&["/foo/*/bar"], "foo/x/y/bar", false, false),
            (&["/foo/**/bar"], "foo/x/y/bar", false, true),
            (&["/foo/**/bar"], "foo/bar", false, false),
            (&["**/bar"], "bar", false, true),
            (&["**/bar"], "a/b/bar", false, true),
            (&["dir/***"], "dir", true, true),
            (&["dir/***"], "dir/x/y", false, true),
            (&["dir/**"], "dir", true, false),
            (&["ba?"], "a/bat", false, true),
            (&["ba?"], "a/ba", false, false),
            (&["[a-c]x"], "bx", false, true),
            (&["[!a-c]x"], "bx", false, false),
            (&["[[:digit:]]*"], "d/9lives", false, true),
            (&["*"], "anything/at/all", false, true),
            (&["a*"], "x/a/b", false, false),
            (&["\\*x"], "*x", false, true),
            (&["\\x"], "\\x", false, true),
        ];
        for (rules, path, is_dir, want) in rows {
            let f = ex(rules);
            assert_eq!(
                f.excluded(path.as_bytes(), *is_dir),
                *want,
                "{rules:?} {path} dir={is_dir}"
            );
        }
    }

    #[test]
    fn first_match_wins_and_prefixes_choose_the_kind() {
        let f = Filters::parse([
            FilterArg::Include(b"keep.log"),
            FilterArg::Exclude(b"*.log"),
            FilterArg::Exclude(b"+ *.tmp"),
        ])
        .unwrap();
        assert!(!f.excluded(b"a/keep.log", false));
        assert!(f.excluded(b"a/other.log", false));
        assert!(
            !f.excluded(b"x.tmp", false),
            "`+ ` makes an --exclude an include"
        );
        assert!(!f.excluded(b"x.c", false), "no match is included");
    }

    #[test]
    fn from_files_skip_comments_and_blank_lines_and_take_crlf() {
        let text = b"# comment\n; also\n\n- *.o\r\n+ keep\r\n*.tmp\n!\n*.bak\n";
        let f = Filters::parse([
            FilterArg::IncludeFrom(b"x.o\n"),
            FilterArg::ExcludeFrom(text),
        ])
        .unwrap();
        // `!` cleared everything before it, the include file's rule too.
        assert!(f.excluded(b"x.bak", false));
        assert!(!f.excluded(b"x.o", false));
        assert!(!f.excluded(b"x.tmp", false));
        let f = Filters::parse([FilterArg::IncludeFrom(b"x.o\n- y\n")]).unwrap();
        assert_eq!(format!("{f:?}"), "[+ x.o, - y]");
    }

    #[test]
    fn bad_rules_are_refused() {
        assert!(matches!(
            Filters::parse([FilterArg::Exclude(b"")]),
            Err(FilterError::Empty(_))
        ));
        assert!(matches!(
            Filters::parse([FilterArg::Exclude(b"- ")]),
            Err(FilterError::Empty(_))
        ));
        assert!(matches!(
            Filters::parse([FilterArg::Exclude(b"a\0b")]),
            Err(FilterError::Nul(_))
        ));
        let long = vec![b'a'; MAX_RULE_LEN + 1];
        assert!(matches!(
            Filters::parse([FilterArg::Exclude(&long)]),
            Err(FilterError::TooLong(_))
        ));
    }

    #[test]
    fn an_excluded_directory_hides_its_contents() {
        let f = Filters::parse([FilterArg::Exclude(b"node_modules/")]).unwrap();
        assert!(!f.excluded(b"web/node_modules/x.js", false));
        assert!(f.excluded_with_parents(b"web/node_modules/x.js", false));
        assert!(!f.excluded_with_parents(b"web/src/x.js", false));
    }

    proptest! {
        #[test]
        fn never_panics_on_any_bytes(
            rules in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..24), 0..6),
            path in proptest::collection::vec(any::<u8>(), 0..40),
            is_dir: bool,
        ) {
            let mut f = Filters::default();
            for r in &rules {
                let _ = f.add_rule(Action::Exclude, r);
            }
            let _ = f.add_file(Action::Include, &rules.concat());
            let _ = f.excluded(&path, is_dir);
            let _ = f.excluded_with_parents(&path, is_dir);
        }

        #[test]
        fn never_panics_on_glob_shaped_bytes(
            rule in "[-+ /*?\\[\\]!^:a-c\\\\]{0,16}",
            path in "[/*?\\[\\]a-c]{0,16}",
        ) {
            let f = Filters::parse([FilterArg::Exclude(rule.as_bytes())]);
            if let Ok(f) = f {
                let _ = f.excluded(path.as_bytes(), true);
                let _ = f.excluded(path.as_bytes(), false);
            }
        }
    }
}
