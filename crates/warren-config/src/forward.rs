//! Forwarding specifications (`-L`, `-R`, `-D`, LocalForward, ...), parsed
//! by a transcription of OpenSSH's `parse_forward` and printed as `ssh -G`
//! prints them.
//!
//! Design choice: a dynamic forward is represented as OpenSSH represents
//! it, a local forward whose target is the host `socks` port 0, because
//! `ssh -G` output and de-duplication depend on that representation.

use crate::env::Environment;
use crate::expand::dollar_expand;
use crate::values::a2port;

/// One side of a forward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardEndpoint {
    /// A TCP address; `host` is `None` for "the default address". For a
    /// dynamic forward the target is `Tcp { host: Some("socks"), port: 0 }`.
    Tcp { host: Option<String>, port: u16 },
    /// A Unix-domain socket path.
    Unix(String),
}

/// A validated forwarding specification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    /// Where to listen.
    pub listen: ForwardEndpoint,
    /// Where to connect (see [`ForwardEndpoint::Tcp`] for dynamic forwards).
    pub connect: ForwardEndpoint,
}

const NI_MAXHOST: usize = 1025;
const PATH_MAX_SUN: usize = 108;

struct Field {
    text: String,
    is_path: bool,
}

impl Forward {
    /// Whether this is a SOCKS (dynamic) forward.
    pub fn is_dynamic(&self) -> bool {
        matches!(&self.connect, ForwardEndpoint::Tcp { host: Some(h), .. } if h == "socks")
    }

    /// Parse a specification as `parse_forward(spec, dynamic, remote)` does,
    /// after `${VAR}` expansion.
    pub(crate) fn parse(
        spec: &str,
        dynamic: bool,
        remote: bool,
        env: &dyn Environment,
    ) -> Option<Self> {
        let expanded = dollar_expand(spec, env).ok()?;
        let fields = split_fields(expanded.trim_start_matches(|c: char| c.is_ascii_whitespace()))?;
        let raw = RawForward::from_fields(&fields)?;
        raw.validate(fields.len(), dynamic, remote)
    }

    /// Parse a specification typed at runtime (the `~C` command line):
    /// as [`Forward::parse`] but with no `${VAR}` expansion, as ssh's
    /// command line does.
    pub fn parse_typed(spec: &str, dynamic: bool, remote: bool) -> Option<Self> {
        let fields = split_fields(spec.trim_start_matches(|c: char| c.is_ascii_whitespace()))?;
        let raw = RawForward::from_fields(&fields)?;
        raw.validate(fields.len(), dynamic, remote)
    }

    /// The `ssh -G` line for this forward under `keyword`
    /// (`dynamicforward`, `localforward` or `remoteforward`).
    pub(crate) fn dump_line(&self, keyword: &str) -> String {
        let side = |e: &ForwardEndpoint| match e {
            ForwardEndpoint::Unix(path) => path.clone(),
            ForwardEndpoint::Tcp { host: None, port } => port.to_string(),
            ForwardEndpoint::Tcp {
                host: Some(h),
                port,
            } => format!("[{h}]:{port}"),
        };
        if keyword == "dynamicforward" {
            format!("{keyword} {}", side(&self.listen))
        } else {
            format!("{keyword} {} {}", side(&self.listen), side(&self.connect))
        }
    }
}

/// Up to four `:`-separated fields; `None` on a malformed field or trailing
/// garbage.
fn split_fields(spec: &str) -> Option<Vec<Field>> {
    let mut fields = Vec::new();
    let mut rest = spec;
    while fields.len() < 4 && !rest.is_empty() {
        let (field, tail) = next_field(rest)?;
        fields.push(field);
        rest = tail;
    }
    rest.is_empty().then_some(fields)
}

/// OpenSSH's `parse_fwd_field`.
fn next_field(s: &str) -> Option<(Field, &str)> {
    if let Some(inner) = s.strip_prefix('[') {
        let close = inner.find(']')?;
        let after = &inner[close + 1..];
        let tail = match after.strip_prefix(':') {
            Some(tail) => tail,
            None if after.is_empty() => after,
            None => return None,
        };
        let text = &inner[..close];
        return Some((
            Field {
                text: text.to_owned(),
                is_path: text.contains('/'),
            },
            tail,
        ));
    }
    let mut text = String::new();
    let mut is_path = false;
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => text.push(chars.next()?.1),
            ':' => return Some((Field { text, is_path }, &s[i + 1..])),
            _ => {
                is_path |= c == '/';
                text.push(c);
            }
        }
    }
    Some((Field { text, is_path }, ""))
}

/// The C struct before validation: ports may be -1 (invalid) or -2
/// (PORT_STREAMLOCAL, the endpoint is a path).
struct RawForward {
    listen_host: Option<String>,
    listen_port: i32,
    listen_path: Option<String>,
    connect_host: Option<String>,
    connect_port: i32,
    connect_path: Option<String>,
}

const STREAMLOCAL: i32 = -2;

fn port(s: &str) -> i32 {
    a2port(s).map_or(-1, i32::from)
}

impl RawForward {
    fn from_fields(f: &[Field]) -> Option<Self> {
        let mut r = RawForward {
            listen_host: None,
            listen_port: 0,
            listen_path: None,
            connect_host: None,
            connect_port: 0,
            connect_path: None,
        };
        let text = |i: usize| Some(f[i].text.clone());
        match f.len() {
            1 if f[0].is_path => (r.listen_path, r.listen_port) = (text(0), STREAMLOCAL),
            1 => r.listen_port = port(&f[0].text),
            2 if f[0].is_path && f[1].is_path => {
                (r.listen_path, r.listen_port) = (text(0), STREAMLOCAL);
                (r.connect_path, r.connect_port) = (text(1), STREAMLOCAL);
            }
            2 if f[1].is_path => {
                r.listen_port = port(&f[0].text);
                (r.connect_path, r.connect_port) = (text(1), STREAMLOCAL);
            }
            2 => (r.listen_host, r.listen_port) = (text(0), port(&f[1].text)),
            3 if f[0].is_path => {
                (r.listen_path, r.listen_port) = (text(0), STREAMLOCAL);
                (r.connect_host, r.connect_port) = (text(1), port(&f[2].text));
            }
            3 if f[2].is_path => {
                (r.listen_host, r.listen_port) = (text(0), port(&f[1].text));
                (r.connect_path, r.connect_port) = (text(2), STREAMLOCAL);
            }
            3 => {
                r.listen_port = port(&f[0].text);
                (r.connect_host, r.connect_port) = (text(1), port(&f[2].text));
            }
            4 => {
                (r.listen_host, r.listen_port) = (text(0), port(&f[1].text));
                (r.connect_host, r.connect_port) = (text(2), port(&f[3].text));
            }
            _ => return None,
        }
        if f.len() <= 2 && r.connect_path.is_none() {
            r.connect_host = Some("socks".to_owned());
        }
        Some(r)
    }

    fn validate(self, fields: usize, dynamic: bool, remote: bool) -> Option<Forward> {
        if dynamic {
            if fields > 2 {
                return None;
            }
        } else {
            let has_path = self.connect_path.is_some() || self.listen_path.is_some();
            if !(fields == 3 || fields == 4 || has_path) {
                return None;
            }
            if self.connect_port <= 0 && self.connect_path.is_none() {
                return None;
            }
        }
        if (self.listen_port < 0 && self.listen_path.is_none())
            || (!remote && self.listen_port == 0)
        {
            return None;
        }
        let too_long = |s: &Option<String>, max: usize| s.as_ref().is_some_and(|s| s.len() >= max);
        if too_long(&self.connect_host, NI_MAXHOST)
            || too_long(&self.listen_host, NI_MAXHOST)
            || too_long(&self.connect_path, PATH_MAX_SUN)
            || too_long(&self.listen_path, PATH_MAX_SUN)
        {
            return None;
        }
        Some(Forward {
            listen: endpoint(self.listen_host, self.listen_port, self.listen_path),
            connect: endpoint(self.connect_host, self.connect_port, self.connect_path),
        })
    }
}

fn endpoint(host: Option<String>, port: i32, path: Option<String>) -> ForwardEndpoint {
    match path {
        Some(path) => ForwardEndpoint::Unix(path),
        None => ForwardEndpoint::Tcp {
            host,
            port: u16::try_from(port).unwrap_or(0),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::tests::FakeEnv;

    fn parse(spec: &str, dynamic: bool, remote: bool) -> Option<String> {
        let env = FakeEnv::default().var("SOCKDIR", "/run");
        let f = Forward::parse(spec, dynamic, remote, &env)?;
        let keyword = if f.is_dynamic() && dynamic {
            "dynamicforward"
        } else {
            "localforward"
        };
        Some(f.dump_line(keyword))
    }

    #[test]
    fn local_forwards() {
        let cases = [
            ("5432:db:5432", Some("localforward 5432 [db]:5432")),
            (
                "127.0.0.1:5432:db:5432",
                Some("localforward [127.0.0.1]:5432 [db]:5432"),
            ),
            (
                "[::1]:5432:[fe80::1]:22",
                Some("localforward [::1]:5432 [fe80::1]:22"),
            ),
            ("*:80:web:80", Some("localforward [*]:80 [web]:80")),
            (
                "/tmp/l.sock:/tmp/r.sock",
                Some("localforward /tmp/l.sock /tmp/r.sock"),
            ),
            ("5432:/run/pg.sock", Some("localforward 5432 /run/pg.sock")),
            ("${SOCKDIR}/a:db:1", Some("localforward /run/a [db]:1")),
            ("0:db:5432", None),
            ("5432:db", None),
            ("5432:db:0", None),
            ("5432:db:x", None),
            ("a:b:c:d:e", None),
            ("[db:1:2", None),
            ("${NOPE}:db:1", None),
        ];
        for (spec, want) in cases {
            assert_eq!(parse(spec, false, false).as_deref(), want, "{spec:?}");
        }
    }

    #[test]
    fn dynamic_and_remote() {
        assert_eq!(
            parse("1080", true, false).as_deref(),
            Some("dynamicforward 1080")
        );
        assert_eq!(
            parse("localhost:1080", true, false).as_deref(),
            Some("dynamicforward [localhost]:1080")
        );
        assert_eq!(parse("0", true, false), None);
        assert_eq!(parse("1:2:3", true, false), None);
        // Remote forwards may listen on port 0 (server allocates).
        assert!(parse("0:localhost:22", false, true).is_some());
    }
}
