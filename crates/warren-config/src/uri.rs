//! OpenSSH's `parse_uri`: `ssh://[user@]host[:port][/path]` and the same
//! for `scp://` (draft-ietf-secsh-scp-sftp-ssh-uri-04).
//!
//! Design choice: the URI is bytes. The user and host must be UTF-8 (they
//! end up in ssh_config matching); the path stays bytes, because a remote
//! file name is whatever the server's file system holds.

use crate::jump::clean_hostname;
use crate::values::{a2port, valid_domain};

/// Result of OpenSSH's `parse_uri(scheme, ...)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UriParse {
    /// Not this scheme: the caller tries its other syntaxes.
    NotUri,
    /// This scheme, but malformed: OpenSSH says "invalid uri".
    Invalid,
    Uri {
        user: Option<String>,
        host: String,
        port: Option<u16>,
        /// Percent-decoded, without the `/` that ended the host part
        /// (`scp://h/etc` is `etc`, relative to the remote home;
        /// `scp://h//etc` is `/etc`).
        path: Option<Vec<u8>>,
    },
}

/// `scheme://...` parsed as OpenSSH's `parse_uri` does.
pub(crate) fn parse_uri(scheme: &str, uri: &[u8]) -> UriParse {
    let Some(rest) = uri
        .strip_prefix(scheme.as_bytes())
        .and_then(|r| r.strip_prefix(b"://"))
    else {
        return UriParse::NotUri;
    };
    parse_body(rest).unwrap_or(UriParse::Invalid)
}

fn parse_body(rest: &[u8]) -> Option<UriParse> {
    // The first '@' anywhere ends the user part, as in OpenSSH (even one
    // in the path: `scp://h/a@b` names user `h/a` on host `b`).
    let (user, rest) = match rest.iter().position(|&b| b == b'@') {
        Some(at) => {
            let info = &rest[..at];
            // Connection parameters after ';' are ignored.
            let name = info.split(|&b| b == b';').next().unwrap_or(info);
            if name.is_empty() {
                return None;
            }
            (
                Some(String::from_utf8(urldecode(name)?).ok()?),
                &rest[at + 1..],
            )
        }
        None => (None, rest),
    };
    let (host, delimiter, tail) = hpdelim2(rest)?;
    if host.is_empty() {
        return None;
    }
    let host = clean_hostname(std::str::from_utf8(host).ok()?).to_owned();
    valid_domain(&host).ok()?;
    let (port, path_part) = match (delimiter, tail) {
        (Some(b':'), Some(t)) if !t.is_empty() => {
            let (p, after) = match t.iter().position(|&b| b == b'/') {
                Some(i) => (&t[..i], Some(&t[i + 1..])),
                None => (t, None),
            };
            let p = std::str::from_utf8(p).ok()?;
            (Some(a2port(p).filter(|&p| p > 0)?), after)
        }
        (_, t) => (None, t),
    };
    let path = match path_part {
        Some(p) if !p.is_empty() => Some(urldecode(p)?),
        _ => None,
    };
    Some(UriParse::Uri {
        user,
        host,
        port,
        path,
    })
}

/// OpenSSH's `urldecode`: `+` is a space, `%XX` a byte; `%00` and a
/// malformed escape make the URI invalid.
pub(crate) fn urldecode(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                let byte = u8::from_str_radix(hex, 16).ok()?;
                if byte == 0 {
                    return None;
                }
                out.push(byte);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    Some(out)
}

/// The host part, the delimiter that ended it, and the rest.
pub(crate) type HostSplit<'a> = (&'a [u8], Option<u8>, Option<&'a [u8]>);

/// OpenSSH's `hpdelim2`: the host part, the delimiter (`:` or `/`) that
/// ended it, and the rest.
pub(crate) fn hpdelim2(s: &[u8]) -> Option<HostSplit<'_>> {
    let end = if s.first() == Some(&b'[') {
        s.iter().position(|&b| b == b']')? + 1
    } else {
        s.iter()
            .position(|&b| b == b':' || b == b'/')
            .unwrap_or(s.len())
    };
    match s.get(end) {
        None => Some((s, None, None)),
        Some(&c @ (b':' | b'/')) => Some((&s[..end], Some(c), Some(&s[end + 1..]))),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(user: Option<&str>, host: &str, port: Option<u16>, path: Option<&[u8]>) -> UriParse {
        UriParse::Uri {
            user: user.map(str::to_owned),
            host: host.to_owned(),
            port,
            path: path.map(<[u8]>::to_vec),
        }
    }

    #[test]
    fn uris_as_openssh_parses_them() {
        let cases: Vec<(&[u8], UriParse)> = vec![
            (b"host", UriParse::NotUri),
            (b"ssh:/host", UriParse::NotUri),
            (b"scp://host", uri(None, "host", None, None)),
            (b"scp://host/", uri(None, "host", None, None)),
            (
                b"scp://a%40b@host:2222",
                uri(Some("a@b"), "host", Some(2222), None),
            ),
            (
                b"scp://me;fp=x@host/p",
                uri(Some("me"), "host", None, Some(b"p")),
            ),
            (b"scp://host/etc/x", uri(None, "host", None, Some(b"etc/x"))),
            (
                b"scp://host//etc/x",
                uri(None, "host", None, Some(b"/etc/x")),
            ),
            (
                b"scp://host:22/~/x",
                uri(None, "host", Some(22), Some(b"~/x")),
            ),
            (
                b"scp://host/a%20b+c",
                uri(None, "host", None, Some(b"a b c")),
            ),
            (b"scp://host/%ff", uri(None, "host", None, Some(b"\xff"))),
            (b"scp://h/a@b", uri(Some("h/a"), "b", None, None)),
            (
                b"scp://HOST.example./x",
                uri(None, "HOST.example.", None, Some(b"x")),
            ),
            (b"scp://@host", UriParse::Invalid),
            (b"scp://host:x/p", UriParse::Invalid),
            (b"scp://host:0", UriParse::Invalid),
            (b"scp://host:/p", UriParse::Invalid),
            (b"scp://host/%00", UriParse::Invalid),
            (b"scp://host/%4", UriParse::Invalid),
            (b"scp://host/%+1", UriParse::Invalid),
            (b"scp://[::1]/x", UriParse::Invalid),
            (b"scp://-h/x", UriParse::Invalid),
            (b"scp://", UriParse::Invalid),
        ];
        for (input, want) in cases {
            assert_eq!(
                parse_uri("scp", input),
                want,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }
}
