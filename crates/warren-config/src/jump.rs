//! ProxyJump / `-J` specifications and destinations (`parse_jump`,
//! `parse_ssh_uri`, `parse_user_host_port`); the URI syntax itself is in
//! `uri.rs`.
//!
//! Design choice: only the last hop is kept as structured data (user, host,
//! port), the earlier hops stay one string, exactly as OpenSSH stores them:
//! the client runs `ssh -J <earlier hops> <last hop>` recursively.

use crate::uri::{UriParse, hpdelim2, parse_uri};
use crate::values::a2port;

/// A parsed ProxyJump value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JumpHost {
    /// User for the last hop, if given.
    pub user: Option<String>,
    /// Host of the last hop (brackets removed).
    pub host: String,
    /// Port of the last hop, if given.
    pub port: Option<u16>,
    /// The hops before the last one, comma separated, as written.
    pub extra: Option<String>,
}

/// What a ProxyJump line sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Jump {
    /// `ProxyJump none`: blocks later ProxyJump/ProxyCommand lines.
    None,
    Hosts(JumpHost),
}

impl JumpHost {
    /// `[user@]host[:port]` as `ssh -G` prints the last hop.
    pub(crate) fn dump_value(&self) -> String {
        let numeric =
            self.host.contains(':') || self.host.bytes().all(|b| b.is_ascii_digit() || b == b'.');
        let mut out = String::new();
        if let Some(extra) = &self.extra {
            out.push_str(extra);
            out.push(',');
        }
        if let Some(user) = &self.user {
            out.push_str(user);
            out.push('@');
        }
        if numeric {
            out.push_str(&format!("[{}]", self.host));
        } else {
            out.push_str(&self.host);
        }
        if let Some(port) = self.port {
            out.push_str(&format!(":{port}"));
        }
        out
    }
}

/// OpenSSH's `parse_jump`: `None` when the syntax is invalid. With
/// `strict` (the command line, a Debian backport from 10.3), host and user
/// names must not carry shell metacharacters.
pub(crate) fn parse_jump(s: &str, strict: bool) -> Option<Jump> {
    let cleaned = s
        .split('#')
        .next()
        .unwrap_or(s)
        .trim_end_matches([' ', '\t', '\r', '\n']);
    if s.eq_ignore_ascii_case("none") {
        return Some(Jump::None);
    }
    let mut hops = cleaned.rsplit(',');
    let last = hops.next().unwrap_or("");
    let (user, host, port) = parse_hop(last, strict)?;
    for hop in hops {
        parse_hop(hop, strict)?;
    }
    let extra = s.rfind(',').filter(|&i| i > 0).map(|i| s[..i].to_owned());
    Some(Jump::Hosts(JumpHost {
        user,
        host,
        port,
        extra,
    }))
}

type Hop = (Option<String>, String, Option<u16>);

fn parse_hop(hop: &str, strict: bool) -> Option<Hop> {
    let parsed = parse_hop_syntax(hop)?;
    let valid =
        !strict || (valid_hostname(&parsed.1) && parsed.0.as_deref().is_none_or(valid_remote_user));
    valid.then_some(parsed)
}

fn parse_hop_syntax(hop: &str) -> Option<Hop> {
    match parse_ssh_uri(hop) {
        UriParse::Uri { path: Some(_), .. } | UriParse::Invalid => None,
        UriParse::Uri {
            user,
            host,
            port,
            path: None,
        } => Some((user, host, port)),
        UriParse::NotUri => parse_user_host_port(hop),
    }
}

/// OpenSSH's `parse_uri` for the `ssh` scheme.
pub(crate) fn parse_ssh_uri(uri: &str) -> UriParse {
    parse_uri("ssh", uri.as_bytes())
}

/// `ssh_valid_hostname`: no leading `-`, no shell metacharacters, spaces or
/// control characters (applied to names typed on the command line).
pub(crate) fn valid_hostname(s: &str) -> bool {
    !s.starts_with('-')
        && !s
            .chars()
            .any(|c| "'`\"$\\;&<>|(){},".contains(c) || c.is_ascii_whitespace() || c.is_control())
}

/// `ssh_valid_ruser`: no leading `-`, no quotes or shell operators, no
/// control characters, no `-` after whitespace, no trailing backslash.
pub(crate) fn valid_remote_user(s: &str) -> bool {
    let b = s.as_bytes();
    !s.starts_with('-')
        && !s.ends_with('\\')
        && !s
            .chars()
            .any(|c| c.is_control() || "'`\";&<>|(){}".contains(c))
        && !b
            .windows(2)
            .any(|w| w[0].is_ascii_whitespace() && w[1] == b'-')
}

/// OpenSSH's `cleanhostname`: strip one pair of surrounding brackets.
pub(crate) fn clean_hostname(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// OpenSSH's `parse_user_host_port`: `[user@]host[:port]`.
pub(crate) fn parse_user_host_port(s: &str) -> Option<Hop> {
    let (user, rest) = match s.rfind('@') {
        Some(0) => return None,
        Some(i) => (Some(s[..i].to_owned()), &s[i + 1..]),
        None => (None, s),
    };
    let (host, delimiter, tail) = hpdelim2(rest.as_bytes())?;
    if delimiter == Some(b'/') || host.is_empty() {
        return None;
    }
    // The delimiters are ASCII, so both sides are still UTF-8.
    let host = std::str::from_utf8(host).ok()?;
    let port = match tail.map(std::str::from_utf8) {
        Some(Ok(t)) if !t.is_empty() => Some(a2port(t).filter(|&p| p > 0)?),
        Some(Err(_)) => return None,
        _ => None,
    };
    Some((user, clean_hostname(host).to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(s: &str) -> Option<JumpHost> {
        match parse_jump(s, false)? {
            Jump::Hosts(h) => Some(h),
            Jump::None => None,
        }
    }

    #[test]
    fn jumps() {
        let cases = [
            ("bastion", Some("bastion")),
            ("me@bastion:2222", Some("me@bastion:2222")),
            ("a,b@c:3", Some("a,b@c:3")),
            ("ssh://me@bastion:2200", Some("me@bastion:2200")),
            ("10.0.0.1", Some("[10.0.0.1]")),
            ("[::1]:22", Some("[::1]:22")),
            ("bastion:0", None),
            ("@bastion", None),
            ("a,@b", None),
            ("ssh://bastion/path", None),
        ];
        for (input, want) in cases {
            assert_eq!(
                hosts(input).map(|h| h.dump_value()).as_deref(),
                want,
                "{input:?}"
            );
        }
        assert_eq!(parse_jump("NONE", false), Some(Jump::None));
        assert!(parse_jump("a;b", false).is_some());
        assert!(parse_jump("a;b", true).is_none());
        assert!(parse_jump("x,u|v@b", true).is_none());
        assert!(parse_jump("me@b:22,c", true).is_some());
    }

    #[test]
    fn command_line_name_checks() {
        for ok in ["deploy", "a$b", "a b", "j\u{f6}rg"] {
            assert!(valid_remote_user(ok), "{ok:?}");
        }
        for bad in ["-x", "a;b", "a b -c", "a\\", "a\tb", "a'b"] {
            assert!(!valid_remote_user(bad), "{bad:?}");
        }
        assert!(valid_hostname("db.example"));
        for bad in ["-h", "a;b", "a b", "a$b", "a,b"] {
            assert!(!valid_hostname(bad), "{bad:?}");
        }
    }

    #[test]
    fn uris() {
        assert_eq!(parse_ssh_uri("host"), UriParse::NotUri);
        assert_eq!(
            parse_ssh_uri("ssh://a%40b@host:2222"),
            UriParse::Uri {
                user: Some("a@b".into()),
                host: "host".into(),
                port: Some(2222),
                path: None
            }
        );
        assert_eq!(parse_ssh_uri("ssh://@host"), UriParse::Invalid);
        assert_eq!(parse_ssh_uri("ssh://host:x"), UriParse::Invalid);
    }
}
