//! scp-style operands: `[user@]host:path`, `[user@][::1]:path` and
//! `scp://[user@]host[:port][/path]`, or a local path. These are the
//! rules of OpenSSH's scp (`parse_scp_uri`, `colon`,
//! `parse_user_host_path`, `okname`), so an argument means the same to
//! `warren cp` as to scp.
//!
//! Design choice: an operand is bytes, and so is a path in it. Local file
//! names need not be UTF-8 and neither do remote ones; only the user and
//! host must be text (they go through ssh_config).

use crate::jump::{clean_hostname, valid_hostname, valid_remote_user};
use crate::uri::{UriParse, parse_uri};

/// One operand of a copy, as typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    /// A path on this machine, as typed.
    Local(Vec<u8>),
    Remote(RemotePath),
}

/// A path on another host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemotePath {
    pub user: Option<String>,
    /// Brackets removed (`[::1]:x` is host `::1`).
    pub host: String,
    /// Only `scp://host:port/` gives one.
    pub port: Option<u16>,
    /// As the server should see it, `~/` prefixes left in place (see
    /// [`RemotePath::relative_to_home`]). Never empty: an empty path is
    /// `.`, the remote home.
    pub path: Vec<u8>,
}

/// Why an operand is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OperandError {
    /// OpenSSH: "invalid uri".
    #[error("{operand}: invalid uri")]
    InvalidUri { operand: String },
    /// OpenSSH's `okname` (no quotes, '`', '#', spaces or non-ASCII) and
    /// ssh's rule for user names typed on the command line (no control
    /// characters or shell operators, no leading '-').
    #[error("{operand}: invalid user name")]
    InvalidUser { operand: String },
    /// Empty, a leading '-', shell metacharacters or spaces (ssh's rule
    /// for host names typed on the command line).
    #[error("{operand}: invalid host name")]
    InvalidHost { operand: String },
}

impl Operand {
    /// Parses one operand as scp does.
    pub fn parse(arg: &[u8]) -> Result<Operand, OperandError> {
        let remote = match parse_uri("scp", arg) {
            UriParse::Invalid => {
                return Err(OperandError::InvalidUri {
                    operand: shown(arg),
                });
            }
            UriParse::Uri {
                user,
                host,
                port,
                path,
            } => RemotePath {
                user,
                host,
                port,
                path: path.unwrap_or_else(|| b".".to_vec()),
            },
            UriParse::NotUri => match user_host_path(arg)? {
                Some(remote) => remote,
                None => return Ok(Operand::Local(arg.to_vec())),
            },
        };
        if remote
            .user
            .as_deref()
            .is_some_and(|u| !okname(u) || !valid_remote_user(u))
        {
            return Err(OperandError::InvalidUser {
                operand: shown(arg),
            });
        }
        if remote.host.is_empty() || !valid_hostname(&remote.host) {
            return Err(OperandError::InvalidHost {
                operand: shown(arg),
            });
        }
        Ok(Operand::Remote(remote))
    }
}

impl RemotePath {
    /// The path with scp's `~` rules applied: `~`, `~/` and an empty path
    /// are the home directory (`.`), `~/x` is `x` (an SFTP server starts
    /// in the home directory); `None` for `~user/...`, which needs the
    /// server's `expand-path@openssh.com`.
    pub fn relative_to_home(&self) -> Option<&[u8]> {
        let p = self.path.as_slice();
        if p.is_empty() || p == b"~" {
            return Some(b".");
        }
        if p.first() != Some(&b'~') {
            return Some(p);
        }
        let rest = p.strip_prefix(b"~/")?;
        let start = rest.iter().position(|&b| b != b'/');
        Some(start.map_or(b".", |i| &rest[i..]))
    }
}

/// `[user@]host:[path]` (OpenSSH's `colon` and `parse_user_host_path`);
/// `None` for a local path.
fn user_host_path(arg: &[u8]) -> Result<Option<RemotePath>, OperandError> {
    let Some(colon) = colon(arg) else {
        return Ok(None);
    };
    let path = match &arg[colon + 1..] {
        [] => b".".to_vec(),
        p => p.to_vec(),
    };
    let left = &arg[..colon];
    let (user, host) = match left.iter().rposition(|&b| b == b'@') {
        Some(at) => (Some(&left[..at]).filter(|u| !u.is_empty()), &left[at + 1..]),
        None => (None, left),
    };
    let text = |b: &[u8], bad: fn(String) -> OperandError| {
        String::from_utf8(b.to_vec()).map_err(|_| bad(shown(arg)))
    };
    let user = user
        .map(|u| text(u, |operand| OperandError::InvalidUser { operand }))
        .transpose()?;
    let host = text(host, |operand| OperandError::InvalidHost { operand })?;
    Ok(Some(RemotePath {
        user,
        host: clean_hostname(&host).to_owned(),
        port: None,
        path,
    }))
}

/// OpenSSH's `colon`: where the `:` that makes an operand remote is. A
/// leading `:` is part of a file name, a `/` before any `:` makes the
/// operand local (`./a:b`, `/x/y:z`), and inside `[...]` (at the start or
/// after `user@`) colons belong to an IPv6 address.
fn colon(arg: &[u8]) -> Option<usize> {
    if arg.first() == Some(&b':') {
        return None;
    }
    let mut bracket = arg.first() == Some(&b'[');
    for (i, &b) in arg.iter().enumerate() {
        let next = arg.get(i + 1).copied();
        if b == b'@' && next == Some(b'[') {
            bracket = true;
        }
        if b == b']' && next == Some(b':') && bracket {
            return Some(i + 1);
        }
        if b == b':' && !bracket {
            return Some(i);
        }
        if b == b'/' {
            return None;
        }
    }
    None
}

/// OpenSSH's `okname` for scp's remote user names.
fn okname(user: &str) -> bool {
    user.bytes()
        .all(|b| b.is_ascii() && !matches!(b, b'\'' | b'"' | b'`' | b' ' | b'#'))
}

/// An operand for a message: control characters escaped.
fn shown(arg: &[u8]) -> String {
    warren_wire::Escaped::truncated(arg, 200).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(user: Option<&str>, host: &str, port: Option<u16>, path: &[u8]) -> Operand {
        Operand::Remote(RemotePath {
            user: user.map(str::to_owned),
            host: host.to_owned(),
            port,
            path: path.to_vec(),
        })
    }

    fn local(path: &[u8]) -> Operand {
        Operand::Local(path.to_vec())
    }

    /// The same operands are checked against OpenSSH's scp itself in
    /// `tests/scp_oracle.rs`.
    #[test]
    fn operands_as_scp_reads_them() {
        let cases: Vec<(&[u8], Operand)> = vec![
            (b"file", local(b"file")),
            (b"host:", remote(None, "host", None, b".")),
            (b"host:x", remote(None, "host", None, b"x")),
            (b"host:/etc/x", remote(None, "host", None, b"/etc/x")),
            (b"host:~/x", remote(None, "host", None, b"~/x")),
            (b"me@host:x", remote(Some("me"), "host", None, b"x")),
            (b"a@b@host:x", remote(Some("a@b"), "host", None, b"x")),
            (b"@host:x", remote(None, "host", None, b"x")),
            (b"host:a:b", remote(None, "host", None, b"a:b")),
            (b"host:a b", remote(None, "host", None, b"a b")),
            (b"[::1]:x", remote(None, "::1", None, b"x")),
            (b"me@[::1]:x", remote(Some("me"), "::1", None, b"x")),
            (b"[::1]:", remote(None, "::1", None, b".")),
            (
                b"me@[fe80::1%eth0]:/t",
                remote(Some("me"), "fe80::1%eth0", None, b"/t"),
            ),
            (b"[::1]", local(b"[::1]")),
            (b"::1:x", local(b"::1:x")),
            (b":x", local(b":x")),
            (b"./a:b", local(b"./a:b")),
            (b"/tmp/a:b", local(b"/tmp/a:b")),
            (b"dir/host:x", local(b"dir/host:x")),
            (b"a\xffb", local(b"a\xffb")),
            (b"host:\xff", remote(None, "host", None, b"\xff")),
            (b"scp://host", remote(None, "host", None, b".")),
            (b"scp://host/x", remote(None, "host", None, b"x")),
            (b"scp://host//etc/x", remote(None, "host", None, b"/etc/x")),
            (b"scp://host/~/x", remote(None, "host", None, b"~/x")),
            (
                b"scp://me@host:2222/a%20b",
                remote(Some("me"), "host", Some(2222), b"a b"),
            ),
            (
                b"scp://a%2Bb@host/x",
                remote(Some("a+b"), "host", None, b"x"),
            ),
            (b"ssh://host/x", remote(None, "ssh", None, b"//host/x")),
        ];
        for (input, want) in cases {
            assert_eq!(
                Operand::parse(input),
                Ok(want),
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn bad_operands_are_named() {
        let cases: [(&[u8], &str); 11] = [
            (b"scp://@host/x", "scp://@host/x: invalid uri"),
            (b"scp://host:0/x", "scp://host:0/x: invalid uri"),
            (b"scp://host/%00", "scp://host/%00: invalid uri"),
            (b"scp://[::1]/x", "scp://[::1]/x: invalid uri"),
            (b"it's@host:x", "it's@host:x: invalid user name"),
            (b"a b@host:x", "a b@host:x: invalid user name"),
            (b"j\xc3\xb6rg@host:x", "j\u{f6}rg@host:x: invalid user name"),
            (b":host:x", ""),
            (b"@:x", "@:x: invalid host name"),
            (
                b"-oProxyCommand=x:y",
                "-oProxyCommand=x:y: invalid host name",
            ),
            (b"a;b:x", "a;b:x: invalid host name"),
        ];
        for (input, want) in cases {
            let got = Operand::parse(input).map_err(|e| e.to_string());
            if want.is_empty() {
                assert!(got.is_ok(), "{got:?}");
            } else {
                assert_eq!(
                    got,
                    Err(want.to_owned()),
                    "{}",
                    String::from_utf8_lossy(input)
                );
            }
        }
        // A peer- or user-supplied control character never reaches a
        // terminal raw.
        let err = Operand::parse(b"a\x1b[2Jb@h:x").map_err(|e| e.to_string());
        assert_eq!(err, Err("a\\e[2Jb@h:x: invalid user name".to_owned()));
    }

    #[test]
    fn home_relative_paths() {
        let cases: [(&[u8], Option<&[u8]>); 9] = [
            (b"", Some(b".")),
            (b"~", Some(b".")),
            (b"~/", Some(b".")),
            (b"~//", Some(b".")),
            (b"~/x/y", Some(b"x/y")),
            (b"~//x", Some(b"x")),
            (b"/abs", Some(b"/abs")),
            (b"rel", Some(b"rel")),
            (b"~bob/x", None),
        ];
        for (path, want) in cases {
            let r = RemotePath {
                user: None,
                host: "h".into(),
                port: None,
                path: path.to_vec(),
            };
            assert_eq!(
                r.relative_to_home(),
                want,
                "{}",
                String::from_utf8_lossy(path)
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics(arg in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let _ = Operand::parse(&arg);
        }

        #[test]
        fn never_panics_on_scp_syntax(arg in "(scp://)?[a-z@:/\\[\\]%0-9+;~.-]{0,24}") {
            if let Ok(Operand::Remote(r)) = Operand::parse(arg.as_bytes()) {
                proptest::prop_assert!(!r.path.is_empty());
                proptest::prop_assert!(!r.host.is_empty());
                let _ = r.relative_to_home();
            }
        }

        /// What `user@host:path` writes is what parses back.
        #[test]
        fn user_host_path_round_trips(
            user in proptest::option::of("[a-z][a-z0-9._-]{0,8}"),
            host in "[a-z][a-z0-9.-]{0,12}",
            path in proptest::collection::vec(proptest::num::u8::ANY, 1..32),
        ) {
            let mut arg = Vec::new();
            if let Some(u) = &user {
                arg.extend_from_slice(u.as_bytes());
                arg.push(b'@');
            }
            arg.extend_from_slice(host.as_bytes());
            arg.push(b':');
            arg.extend_from_slice(&path);
            let want = Operand::Remote(RemotePath { user, host, port: None, path });
            proptest::prop_assert_eq!(Operand::parse(&arg), Ok(want));
        }
    }
}
