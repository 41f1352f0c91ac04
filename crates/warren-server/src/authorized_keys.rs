//! authorized_keys in OpenSSH's format (sshd(8), "AUTHORIZED_KEYS FILE
//! FORMAT"): one public key per line, optionally preceded by
//! comma-separated options (`restrict`, `no-pty`, `permitopen="h:p"`,
//! `from="pattern-list"`, `command="..."`, `cert-authority`, ...).
//!
//! Design choice: parsing is pure (bytes in, entries out) and lenient per
//! line as sshd is: a line that cannot be parsed (not UTF-8 included) is
//! reported with its line number and skipped, never failing the whole
//! file, so one bad line does not lock every key out. As in sshd, the
//! comment after a key may hold any bytes. The file is read again at every
//! login, like sshd.

use std::net::IpAddr;

use russh::keys::{HashAlg, PublicKey};
use warren_wire::Escaped;

/// One usable line of an authorized_keys file.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The user key, or the CA key of a `cert-authority` line.
    pub key: PublicKey,
    pub options: KeyOptions,
    /// 1-based line number, for log messages.
    pub line: usize,
}

/// A line that was skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    pub reason: String,
    /// The line as it is in the file.
    pub text: Vec<u8>,
}

/// `line N: REASON: "TEXT"`, escaped, the line cut to 200 bytes.
impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}: {}: \"{}\"",
            self.line,
            Escaped::new(self.reason.as_bytes()),
            Escaped::truncated(&self.text, 200)
        )
    }
}

/// The options of one line, with `restrict` and the `no-*` options
/// already applied: each permission says what the key may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOptions {
    pub cert_authority: bool,
    /// `command=`: runs instead of whatever the client asked for.
    pub command: Option<String>,
    /// `environment=` (applied only when the server permits user
    /// environment).
    pub environment: Vec<(String, String)>,
    /// `from=`: a pattern list the client's address must match.
    pub from: Option<String>,
    /// `permitopen=`: where direct-tcpip may connect (empty: anywhere).
    pub permit_open: Vec<HostPort>,
    /// `permitlisten=`: where tcpip-forward may listen (empty: anywhere
    /// the server allows).
    pub permit_listen: Vec<HostPort>,
    /// `expiry-time=`, as seconds since the epoch.
    pub expiry: Option<i64>,
    /// `principals=` of a `cert-authority` line.
    pub principals: Option<String>,
    pub port_forwarding: bool,
    pub pty: bool,
    pub agent_forwarding: bool,
    pub x11_forwarding: bool,
    pub user_rc: bool,
}

impl Default for KeyOptions {
    fn default() -> Self {
        KeyOptions {
            cert_authority: false,
            command: None,
            environment: Vec::new(),
            from: None,
            permit_open: Vec::new(),
            permit_listen: Vec::new(),
            expiry: None,
            principals: None,
            port_forwarding: true,
            pty: true,
            agent_forwarding: true,
            x11_forwarding: true,
            user_rc: true,
        }
    }
}

/// A `host:port` of permitopen/permitlisten; `None` is the `*` wildcard
/// (for the host of permitlisten, no host given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub host: Option<String>,
    pub port: Option<u16>,
}

impl HostPort {
    /// permitopen: the host must be given literally (case-insensitive) or
    /// be `*`; the port must match or be `*`.
    pub fn permits_open(&self, host: &str, port: u16) -> bool {
        let host_ok = match &self.host {
            None => true,
            Some(h) => h == "*" || h.eq_ignore_ascii_case(host),
        };
        host_ok && self.port.is_none_or(|p| p == port)
    }

    /// permitlisten: without a host only the default (loopback) listen
    /// address is permitted; `*` as host permits any.
    pub fn permits_listen(&self, host: &str, port: u16) -> bool {
        let host_ok = match &self.host {
            None => is_default_listen_host(host),
            Some(h) => h == "*" || h.eq_ignore_ascii_case(host),
        };
        host_ok && self.port.is_none_or(|p| p == port)
    }
}

/// The names a client sends for "listen where the server chooses":
/// ssh sends `localhost` when `-R` gives no bind address.
pub fn is_default_listen_host(host: &str) -> bool {
    matches!(host, "" | "localhost" | "127.0.0.1" | "::1")
}

/// Parses a whole file; lines that fail are returned beside the entries.
pub fn parse(bytes: impl AsRef<[u8]>) -> (Vec<Entry>, Vec<LineError>) {
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    for (i, raw) in bytes.as_ref().split(|&b| b == b'\n').enumerate() {
        let line = raw.trim_ascii();
        if line.is_empty() || line.starts_with(b"#") {
            continue;
        }
        match parse_bytes(line) {
            Ok((key, options)) => entries.push(Entry {
                key,
                options,
                line: i + 1,
            }),
            Err(reason) => errors.push(LineError {
                line: i + 1,
                reason,
                text: raw.strip_suffix(b"\r").unwrap_or(raw).to_vec(),
            }),
        }
    }
    (entries, errors)
}

/// One line as bytes. A line that is not UTF-8 is usable only when the
/// bad bytes are in the comment: what comes before them, up to the last
/// blank, must hold the whole key (and its options).
fn parse_bytes(line: &[u8]) -> Result<(PublicKey, KeyOptions), String> {
    let e = match std::str::from_utf8(line) {
        Ok(text) => return parse_line(text),
        Err(e) => e,
    };
    let not_utf8 = || format!("not UTF-8 (byte {} of the line)", e.valid_up_to() + 1);
    let valid = &line[..e.valid_up_to()];
    let cut = valid
        .iter()
        .rposition(u8::is_ascii_whitespace)
        .ok_or_else(not_utf8)?;
    let text = std::str::from_utf8(&valid[..cut]).map_err(|_| not_utf8())?;
    parse_line(text.trim_end()).map_err(|_| not_utf8())
}

/// One non-empty, non-comment line.
fn parse_line(line: &str) -> Result<(PublicKey, KeyOptions), String> {
    let first = line.split_ascii_whitespace().next().unwrap_or_default();
    if russh::keys::Algorithm::new(first).is_ok() {
        return Ok((parse_key(line)?, KeyOptions::default()));
    }
    let (options, rest) = split_options(line)?;
    let options = parse_options(&options)?;
    Ok((parse_key(rest.trim_start())?, options))
}

fn parse_key(text: &str) -> Result<PublicKey, String> {
    let mut fields = text.split_ascii_whitespace();
    let (Some(kind), Some(blob)) = (fields.next(), fields.next()) else {
        return Err("expected a key type and base64 key".into());
    };
    PublicKey::from_openssh(&format!("{kind} {blob}")).map_err(|e| format!("bad {kind} key: {e}"))
}

/// An option as written: name and unquoted value.
type RawOption = (String, Option<String>);

/// Splits the options field (up to the first unquoted blank) into
/// options, honouring `"..."` with `\"` escapes.
fn split_options(line: &str) -> Result<(Vec<RawOption>, &str), String> {
    let mut options = Vec::new();
    let mut chars = line.char_indices().peekable();
    let mut name = String::new();
    let mut value: Option<String> = None;
    let mut end = line.len();
    while let Some((i, c)) = chars.next() {
        match c {
            ' ' | '\t' => {
                end = i;
                break;
            }
            ',' => options.push((std::mem::take(&mut name), value.take())),
            '=' if value.is_none() => {
                if chars.next_if(|&(_, c)| c == '"').is_none() {
                    return Err(format!("option {name}: value must be in double quotes"));
                }
                value = Some(
                    quoted(&mut chars).ok_or(format!("option {name}: missing closing quote"))?,
                );
            }
            c if value.is_none() => name.push(c),
            _ => return Err(format!("option {name}: text after its closing quote")),
        }
    }
    options.push((name, value));
    if options.iter().any(|(n, _)| n.is_empty()) {
        return Err("empty option".into());
    }
    Ok((options, &line[end..]))
}

/// Reads a quoted value after its opening quote, through the closing one.
fn quoted(chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>) -> Option<String> {
    let mut value = String::new();
    loop {
        match chars.next()?.1 {
            '"' => return Some(value),
            '\\' if chars.peek().is_some_and(|&(_, c)| c == '"') => {
                chars.next();
                value.push('"');
            }
            c => value.push(c),
        }
    }
}

fn parse_options(options: &[RawOption]) -> Result<KeyOptions, String> {
    let mut o = KeyOptions::default();
    for (name, value) in options {
        let lower = name.to_ascii_lowercase();
        match (lower.as_str(), value) {
            ("restrict", None) => {
                o.port_forwarding = false;
                o.pty = false;
                o.agent_forwarding = false;
                o.x11_forwarding = false;
                o.user_rc = false;
            }
            ("cert-authority", None) => o.cert_authority = true,
            ("no-port-forwarding", None) => o.port_forwarding = false,
            ("port-forwarding", None) => o.port_forwarding = true,
            ("no-pty", None) => o.pty = false,
            ("pty", None) => o.pty = true,
            ("no-agent-forwarding", None) => o.agent_forwarding = false,
            ("agent-forwarding", None) => o.agent_forwarding = true,
            ("no-x11-forwarding", None) => o.x11_forwarding = false,
            ("x11-forwarding", None) => o.x11_forwarding = true,
            ("no-user-rc", None) => o.user_rc = false,
            ("user-rc", None) => o.user_rc = true,
            ("no-touch-required" | "verify-required", None) => {}
            ("command", Some(v)) => o.command = Some(v.clone()),
            ("from", Some(v)) => o.from = Some(v.clone()),
            ("principals", Some(v)) => o.principals = Some(v.clone()),
            ("environment", Some(v)) => {
                let (k, val) = v
                    .split_once('=')
                    .filter(|(k, _)| !k.is_empty())
                    .ok_or(format!("environment=\"{v}\": expected NAME=value"))?;
                o.environment.push((k.to_owned(), val.to_owned()));
            }
            ("permitopen", Some(v)) => o.permit_open.push(
                parse_host_port(v, true)
                    .ok_or(format!("permitopen=\"{v}\": expected host:port"))?,
            ),
            ("permitlisten", Some(v)) => o.permit_listen.push(
                parse_host_port(v, false)
                    .ok_or(format!("permitlisten=\"{v}\": expected [host:]port"))?,
            ),
            ("expiry-time", Some(v)) => {
                o.expiry = Some(parse_expiry(v).ok_or(format!(
                    "expiry-time=\"{v}\": expected YYYYMMDD[HHMM[SS]][Z]"
                ))?)
            }
            (_, Some(_)) | (_, None) => {
                return Err(format!("unknown or malformed option {name:?}"));
            }
        }
    }
    Ok(o)
}

/// `host:port`, `[v6]:port`, and for permitlisten a bare `port`; `*` as
/// port is any port.
fn parse_host_port(s: &str, host_required: bool) -> Option<HostPort> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, p) = rest.split_once("]:")?;
        (Some(h.to_owned()), p)
    } else if let Some((h, p)) = s.rsplit_once(':') {
        (Some(h.to_owned()), p)
    } else if host_required {
        return None;
    } else {
        (None, s)
    };
    if host.as_deref().is_some_and(str::is_empty) {
        return None;
    }
    let port = match port {
        "*" => None,
        p => Some(p.parse::<u16>().ok().filter(|&p| p != 0)?),
    };
    Some(HostPort { host, port })
}

/// OpenSSH's absolute time: `YYYYMMDD`, `YYYYMMDDHHMM` or
/// `YYYYMMDDHHMMSS`, in local time, or UTC with a trailing `Z`.
pub fn parse_expiry(s: &str) -> Option<i64> {
    use chrono::{NaiveDate, TimeZone};
    let (digits, utc) = match s.strip_suffix(['Z', 'z']) {
        Some(d) => (d, true),
        None => (s, false),
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) || ![8, 12, 14].contains(&digits.len()) {
        return None;
    }
    let num = |r: std::ops::Range<usize>| digits.get(r).map_or(Some(0), |d| d.parse::<u32>().ok());
    let date = NaiveDate::from_ymd_opt(num(0..4)? as i32, num(4..6)?, num(6..8)?)?;
    let time = date.and_hms_opt(num(8..10)?, num(10..12)?, num(12..14)?)?;
    if utc {
        Some(time.and_utc().timestamp())
    } else {
        chrono::Local
            .from_local_datetime(&time)
            .earliest()
            .map(|t| t.timestamp())
    }
}

/// sshd's `from=` check: each comma-separated entry is a wildcard pattern
/// or a CIDR block, `!` negates; a negated match refuses outright.
/// (Host names are not matched: the server does no reverse lookups.)
pub fn from_permits(list: &str, addr: IpAddr) -> bool {
    let ip = addr.to_string();
    let mut positive = false;
    for entry in list.split(',') {
        let (negated, pattern) = match entry.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, entry),
        };
        let matched = if pattern.contains('/') {
            cidr_contains(pattern, addr)
        } else {
            warren_config::match_pattern(&ip, &pattern.to_ascii_lowercase())
        };
        if matched && negated {
            return false;
        }
        positive |= matched;
    }
    positive
}

fn cidr_contains(cidr: &str, addr: IpAddr) -> bool {
    let Some((net, bits)) = cidr.split_once('/') else {
        return false;
    };
    let (Ok(net), Ok(bits)) = (net.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    let addr = match (net, addr) {
        (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        _ => addr,
    };
    match (net, addr) {
        (IpAddr::V4(n), IpAddr::V4(a)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

/// The SHA256 fingerprint as OpenSSH prints it.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINx5wj9wm10NkrCYOmDhDHRsUFoPaDuCfohFXKHSJx7p me@host";

    fn one(line: &str) -> KeyOptions {
        let (entries, errors) = parse(line);
        assert!(errors.is_empty(), "{line}: {errors:?}");
        assert_eq!(entries.len(), 1, "{line}");
        entries.into_iter().next().unwrap().options
    }

    #[test]
    fn plain_key_and_comments() {
        let text = format!("# comment\n\n{ED}\n   \n");
        let (entries, errors) = parse(&text);
        assert!(errors.is_empty());
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].line, 3);
        assert_eq!(entries[0].options, KeyOptions::default());
    }

    #[test]
    fn restrict_and_re_enabling() {
        let o = one(&format!("restrict {ED}"));
        assert!(!o.pty && !o.port_forwarding && !o.agent_forwarding && !o.x11_forwarding);
        let o = one(&format!("restrict,pty {ED}"));
        assert!(o.pty && !o.port_forwarding);
        let o = one(&format!("no-pty,no-agent-forwarding {ED}"));
        assert!(!o.pty && !o.agent_forwarding && o.port_forwarding);
        let o = one(&format!("no-port-forwarding {ED}"));
        assert!(!o.port_forwarding && o.pty);
    }

    #[test]
    fn quoted_values() {
        let o = one(&format!(
            r#"command="echo \"hi there\", ok",from="10.0.0.0/8,!10.1.*",environment="A=b=c" {ED}"#
        ));
        assert_eq!(o.command.as_deref(), Some(r#"echo "hi there", ok"#));
        assert_eq!(o.from.as_deref(), Some("10.0.0.0/8,!10.1.*"));
        assert_eq!(o.environment, vec![("A".into(), "b=c".into())]);
    }

    #[test]
    fn permitopen_and_permitlisten() {
        let o = one(&format!(
            r#"permitopen="db:5432",permitopen="[::1]:*",permitlisten="8080",permitlisten="0.0.0.0:*" {ED}"#
        ));
        let cases = [
            ("db", 5432, true),
            ("DB", 5432, true),
            ("db", 5433, false),
            ("::1", 22, true),
            ("other", 5432, false),
        ];
        for (host, port, want) in cases {
            let got = o.permit_open.iter().any(|p| p.permits_open(host, port));
            assert_eq!(got, want, "open {host}:{port}");
        }
        let cases = [
            ("localhost", 8080, true),
            ("", 8080, true),
            ("localhost", 8081, false),
            ("0.0.0.0", 1234, true),
            ("10.0.0.1", 8080, false),
        ];
        for (host, port, want) in cases {
            let got = o.permit_listen.iter().any(|p| p.permits_listen(host, port));
            assert_eq!(got, want, "listen {host}:{port}");
        }
    }

    #[test]
    fn bad_lines_are_skipped_with_their_number() {
        let text = format!(
            "{ED}\nbogus-option {ED}\npermitopen=\"nohost\" {ED}\ncommand=\"unterminated {ED}\nssh-ed25519 !!!\n{ED}\n"
        );
        let (entries, errors) = parse(&text);
        assert_eq!(entries.iter().map(|e| e.line).collect::<Vec<_>>(), [1, 6]);
        assert_eq!(
            errors.iter().map(|e| e.line).collect::<Vec<_>>(),
            [2, 3, 4, 5]
        );
        assert!(errors[0].reason.contains("bogus-option"), "{}", errors[0]);
    }

    #[test]
    fn lines_that_are_not_utf8() {
        // A non-UTF-8 line used to fail the whole file (read_to_string).
        let mut text = b"\xff\xfe garbage \x1b[2J\n".to_vec();
        text.extend_from_slice(format!("{ED}\n").as_bytes());
        // sshd ignores the comment, whatever its bytes.
        let key_then_latin1 =
            [format!("restrict {ED} caf").into_bytes(), vec![0xe9, b'\n']].concat();
        text.extend_from_slice(&key_then_latin1);
        // Bad bytes inside the options or the key are not a comment.
        let in_options = [
            b"command=\"ls \xff\" ".to_vec(),
            ED.as_bytes().to_vec(),
            b"\n".to_vec(),
        ]
        .concat();
        text.extend_from_slice(&in_options);
        let in_blob = [
            ED.split(' ')
                .take(2)
                .collect::<Vec<_>>()
                .join(" ")
                .into_bytes(),
            b"\xff\n".to_vec(),
        ]
        .concat();
        text.extend_from_slice(&in_blob);
        let (entries, errors) = parse(&text);
        assert_eq!(entries.iter().map(|e| e.line).collect::<Vec<_>>(), [2, 3]);
        assert!(!entries[1].options.pty, "restrict applied");
        assert_eq!(errors.iter().map(|e| e.line).collect::<Vec<_>>(), [1, 4, 5]);
        let shown = errors[0].to_string();
        assert!(shown.starts_with("line 1: not UTF-8"), "{shown}");
        assert!(shown.contains(r"\xff\xfe garbage \e[2J"), "{shown}");
        let long = [vec![0xffu8], vec![b'x'; 5000]].concat();
        let (_, errors) = parse(&long);
        let shown = errors[0].to_string();
        assert!(shown.len() < 300 && shown.contains("more bytes"), "{shown}");
    }

    #[test]
    fn expiry_formats() {
        let cases = [
            ("20000101Z", Some(946_684_800)),
            ("200001010000Z", Some(946_684_800)),
            ("20000101000001Z", Some(946_684_801)),
            ("2000010", None),
            ("20001301Z", None),
            ("2000010100Z", None),
            ("abcdefgh", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_expiry(s), want, "{s}");
        }
        assert!(parse_expiry("20000101").is_some());
    }

    #[test]
    fn from_patterns() {
        let v4: IpAddr = "192.168.1.20".parse().unwrap();
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        let cases = [
            ("192.168.1.*", v4, true),
            ("192.168.0.0/16", v4, true),
            ("192.168.0.0/24", v4, false),
            ("192.168.0.0/16,!192.168.1.20", v4, false),
            ("127.0.0.1", lo, true),
            ("127.0.0.0/8", mapped, true),
            ("10.*", lo, false),
            ("0.0.0.0/0", lo, true),
            ("bad/cidr", lo, false),
        ];
        for (list, addr, want) in cases {
            assert_eq!(from_permits(list, addr), want, "{list} vs {addr}");
        }
    }
}
