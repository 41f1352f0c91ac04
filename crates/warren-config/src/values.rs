//! Typed option values and their OpenSSH spellings: multistate keywords,
//! durations, ports, log levels, IPQoS, escape characters.
//!
//! Design choice: every enum carries OpenSSH's own table (first entry for a
//! value is the name `ssh -G` prints, matching is case-insensitive), so
//! parsing and printing cannot drift apart.

macro_rules! multistate {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident),+ $(,)? }
     [$(($key:literal, $value:ident)),+ $(,)?]) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            const TABLE: &'static [(&'static str, $name)] = &[$(($key, $name::$value)),+];

            /// Parse OpenSSH's spelling (case-insensitive).
            pub fn parse(s: &str) -> Option<Self> {
                Self::TABLE.iter().find(|(k, _)| k.eq_ignore_ascii_case(s)).map(|(_, v)| *v)
            }

            /// The spelling `ssh -G` prints.
            pub fn as_str(self) -> &'static str {
                Self::TABLE.iter().find(|(_, v)| *v == self).map_or("UNKNOWN", |(k, _)| *k)
            }
        }
    };
}

multistate! {
    /// VerifyHostKeyDNS and UpdateHostKeys.
    YesNoAsk { Yes, No, Ask }
    [("true", Yes), ("false", No), ("yes", Yes), ("no", No), ("ask", Ask)]
}

multistate! {
    /// StrictHostKeyChecking.
    StrictHostKeyChecking { Yes, Off, Ask, AcceptNew }
    [("true", Yes), ("false", Off), ("yes", Yes), ("no", Off), ("ask", Ask), ("off", Off),
     ("accept-new", AcceptNew)]
}

multistate! {
    /// AddKeysToAgent (the lifespan is kept beside it).
    AddKeysToAgent { Yes, No, Ask, Confirm }
    [("true", Yes), ("false", No), ("yes", Yes), ("no", No), ("ask", Ask), ("confirm", Confirm)]
}

multistate! {
    /// AddressFamily (`-4`, `-6`).
    AddressFamily { Inet, Inet6, Any }
    [("inet", Inet), ("inet6", Inet6), ("any", Any)]
}

multistate! {
    /// ControlMaster (`-M`, `-MM`).
    ControlMaster { Yes, No, Auto, Ask, AutoAsk }
    [("true", Yes), ("yes", Yes), ("false", No), ("no", No), ("auto", Auto), ("ask", Ask),
     ("autoask", AutoAsk)]
}

multistate! {
    /// Tunnel (`-w`). OpenSSH's default tunnel mode *is* point-to-point,
    /// so `yes` reads and prints as that.
    Tunnel { Ethernet, PointToPoint, No }
    [("ethernet", Ethernet), ("point-to-point", PointToPoint), ("true", PointToPoint),
     ("yes", PointToPoint), ("false", No), ("no", No)]
}

multistate! {
    /// RequestTTY (`-t`, `-tt`, `-T`).
    RequestTty { Yes, No, Force, Auto }
    [("true", Yes), ("yes", Yes), ("false", No), ("no", No), ("force", Force), ("auto", Auto)]
}

multistate! {
    /// SessionType (`-N`, `-s`).
    SessionType { None, Subsystem, Default }
    [("none", None), ("subsystem", Subsystem), ("default", Default)]
}

multistate! {
    /// CanonicalizeHostname.
    CanonicalizeHostname { Yes, No, Always }
    [("true", Yes), ("false", No), ("yes", Yes), ("no", No), ("always", Always)]
}

multistate! {
    /// PubkeyAuthentication.
    PubkeyAuthentication { Yes, No, Unbound, HostBound }
    [("true", Yes), ("false", No), ("yes", Yes), ("no", No), ("unbound", Unbound),
     ("host-bound", HostBound)]
}

multistate! {
    /// LogLevel (`-q`, `-v`); ordered from quietest to noisiest. Debian's
    /// ssh prints QUIET as SILENT.
    LogLevel { Quiet, Fatal, Error, Info, Verbose, Debug1, Debug2, Debug3 }
    [("SILENT", Quiet), ("QUIET", Quiet), ("FATAL", Fatal), ("ERROR", Error), ("INFO", Info),
     ("VERBOSE", Verbose), ("DEBUG", Debug1), ("DEBUG1", Debug1), ("DEBUG2", Debug2),
     ("DEBUG3", Debug3)]
}

impl LogLevel {
    /// The next noisier level (OpenSSH's `log_level++`), saturating.
    pub(crate) fn succ(self) -> Self {
        match self {
            Self::Quiet => Self::Fatal,
            Self::Fatal => Self::Error,
            Self::Error => Self::Info,
            Self::Info => Self::Verbose,
            Self::Verbose => Self::Debug1,
            Self::Debug1 => Self::Debug2,
            Self::Debug2 | Self::Debug3 => Self::Debug3,
        }
    }
}

/// Parse a yes/no flag (`true`/`false`/`yes`/`no`).
pub(crate) fn parse_flag(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "yes" => Some(true),
        "false" | "no" => Some(false),
        _ => None,
    }
}

/// How `ssh -G` prints a plain flag.
pub(crate) fn yes_no(v: bool) -> &'static str {
    if v { "yes" } else { "no" }
}

/// ControlPersist: `no`, `yes`, or a timeout in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlPersist {
    /// The master exits with the last client.
    No,
    /// The master stays until told to exit.
    Yes,
    /// The master stays this many seconds after the last client.
    Timeout(u32),
}

/// OpenSSH's `convtime`: `90`, `90s`, `1h30m`, `2d`, `1w` -> seconds.
pub fn parse_duration(s: &str) -> Option<u32> {
    if s.is_empty() {
        return None;
    }
    let mut total: i64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let (secs, tail) = leading_long(rest)?;
        let (multiplier, tail) = match tail.chars().next() {
            None => (1, tail),
            Some(c) => (unit_seconds(c)?, &tail[1..]),
        };
        total = total.checked_add(secs.checked_mul(multiplier)?)?;
        if total > i64::from(i32::MAX) {
            return None;
        }
        rest = tail;
    }
    u32::try_from(total).ok()
}

fn unit_seconds(c: char) -> Option<i64> {
    Some(match c.to_ascii_lowercase() {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86400,
        'w' => 604_800,
        _ => return None,
    })
}

/// `strtol(s, &end, 10)` for a non-negative value: the number and the rest.
fn leading_long(s: &str) -> Option<(i64, &str)> {
    let trimmed = s.trim_start_matches([' ', '\t', '\n', '\r', '\u{b}', '\u{c}']);
    let unsigned = trimmed.strip_prefix('+').unwrap_or(trimmed);
    let digits = unsigned.len()
        - unsigned
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .len();
    if digits == 0 {
        return None;
    }
    let value = unsigned[..digits]
        .parse::<i64>()
        .ok()
        .filter(|v| *v < i64::from(i32::MAX))?;
    Some((value, &unsigned[digits..]))
}

/// OpenBSD's `strtonum(s, min, max)`: the value, or OpenSSH's error word.
pub(crate) fn strtonum(s: &str, min: i64, max: i64) -> Result<i64, &'static str> {
    let trimmed = s.trim_start_matches([' ', '\t', '\n', '\r', '\u{b}', '\u{c}']);
    let value: i64 = trimmed
        .strip_prefix('+')
        .unwrap_or(trimmed)
        .parse()
        .map_err(|_| {
            if trimmed.is_empty() {
                "invalid"
            } else {
                overflow_word(trimmed)
            }
        })?;
    if value < min {
        Err("too small")
    } else if value > max {
        Err("too large")
    } else {
        Ok(value)
    }
}

fn overflow_word(s: &str) -> &'static str {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        if s.starts_with('-') {
            "too small"
        } else {
            "too large"
        }
    } else {
        "invalid"
    }
}

/// OpenSSH's `atoi_err`: a non-negative int or "missing"/"invalid"/...
pub(crate) fn atoi_err(s: Option<&str>) -> Result<i32, &'static str> {
    match s {
        None | Some("") => Err("missing"),
        Some(s) => strtonum(s, 0, i64::from(i32::MAX)).map(|v| v as i32),
    }
}

/// OpenSSH's `a2port`: 0..=65535, or a well-known service name.
/// (OpenSSH asks getservbyname; we know the one name that matters here.)
pub(crate) fn a2port(s: &str) -> Option<u16> {
    match strtonum(s, 0, 65535) {
        Ok(port) => u16::try_from(port).ok(),
        Err(_) if s == "ssh" => Some(22),
        Err(_) => None,
    }
}

/// OpenBSD's `scan_scaled`: `100`, `1K`, `1.5G` (binary multiples).
pub(crate) fn scan_scaled(s: &str) -> Result<u64, &'static str> {
    let (number, unit) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&s[..i], Some(c.to_ascii_uppercase())),
        _ => (s, None),
    };
    let shift = match unit {
        None | Some('B') => 0,
        Some('K') => 10,
        Some('M') => 20,
        Some('G') => 30,
        Some('T') => 40,
        Some('P') => 50,
        Some('E') => 60,
        Some(_) => return Err("Invalid argument"),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let valid = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !valid(whole) || !valid(fraction) {
        return Err("Invalid argument");
    }
    let whole: u64 = whole.parse().map_err(|_| "Result too large")?;
    let scaled = whole
        .checked_shl(shift)
        .filter(|v| v >> shift == whole)
        .ok_or("Result too large")?;
    let frac = fraction_part(fraction, shift);
    Ok(scaled + frac)
}

fn fraction_part(fraction: &str, shift: u32) -> u64 {
    if fraction.is_empty() || shift == 0 {
        return 0;
    }
    let digits = &fraction[..fraction.len().min(9)];
    let value: u64 = digits.parse().unwrap_or(0);
    let scale = 10u64.pow(digits.len() as u32);
    ((u128::from(value) << shift) / u128::from(scale)) as u64
}

/// IPQoS names and their TOS values (Debian's table order).
const IPQOS: &[(&str, i32)] = &[
    ("none", i32::MAX),
    ("af11", 0x28),
    ("af12", 0x30),
    ("af13", 0x38),
    ("af21", 0x48),
    ("af22", 0x50),
    ("af23", 0x58),
    ("af31", 0x68),
    ("af32", 0x70),
    ("af33", 0x78),
    ("af41", 0x88),
    ("af42", 0x90),
    ("af43", 0x98),
    ("cs0", 0x00),
    ("cs1", 0x20),
    ("cs2", 0x40),
    ("cs3", 0x60),
    ("cs4", 0x80),
    ("cs5", 0xa0),
    ("cs6", 0xc0),
    ("cs7", 0xe0),
    ("ef", 0xb8),
    ("le", 0x01),
    ("lowdelay", 0x10),
    ("throughput", 0x08),
    ("reliability", 0x04),
];

/// Debian's default IPQoS: `lowdelay throughput`.
pub(crate) const IPQOS_DEFAULT: (i32, i32) = (0x10, 0x08);

/// OpenSSH's `parse_ipqos`: a name or a number 0..=255 (C integer syntax).
pub(crate) fn parse_ipqos(s: &str) -> Option<i32> {
    if let Some((_, v)) = IPQOS.iter().find(|(name, _)| name.eq_ignore_ascii_case(s)) {
        return Some(*v);
    }
    let v = parse_c_integer(s)?;
    (0..=255).contains(&v).then_some(v as i32)
}

/// `strtol(s, &end, 0)` requiring the whole string: decimal, 0x hex, 0 octal.
fn parse_c_integer(s: &str) -> Option<i64> {
    let (negative, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let value = if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        i64::from_str_radix(hex, 16).ok()?
    } else if body.len() > 1 && body.starts_with('0') {
        i64::from_str_radix(&body[1..], 8).ok()?
    } else {
        body.parse().ok()?
    };
    Some(if negative { -value } else { value })
}

/// OpenSSH's `iptos2str`.
pub(crate) fn ipqos_name(v: i32) -> String {
    IPQOS
        .iter()
        .find(|(_, value)| *value == v)
        .map_or_else(|| format!("0x{v:02x}"), |(name, _)| (*name).to_owned())
}

/// Syslog facility names, as OpenSSH prints them.
const FACILITIES: &[&str] = &[
    "DAEMON", "USER", "AUTH", "AUTHPRIV", "LOCAL0", "LOCAL1", "LOCAL2", "LOCAL3", "LOCAL4",
    "LOCAL5", "LOCAL6", "LOCAL7",
];

pub(crate) fn parse_log_facility(s: &str) -> Option<&'static str> {
    FACILITIES
        .iter()
        .find(|f| f.eq_ignore_ascii_case(s))
        .copied()
}

/// EscapeChar: `none` (None), one character, or `^X`.
pub(crate) fn parse_escape_char(s: &str) -> Option<Option<u8>> {
    let b = s.as_bytes();
    if s == "none" {
        Some(None)
    } else if b.len() == 1 {
        Some(Some(b[0]))
    } else if b.len() == 2 && b[0] == b'^' && (64..128).contains(&b[1]) {
        Some(Some(b[1] & 31))
    } else {
        None
    }
}

/// `vis(3)` with `VIS_WHITE`, as `ssh -G` prints the escape character.
pub(crate) fn vis_char(c: u8) -> String {
    if c == b'\\' {
        return "\\\\".to_owned();
    }
    if c.is_ascii_graphic() {
        return (c as char).to_string();
    }
    if c & 0x7f == b' ' {
        return format!("\\{:03o}", c);
    }
    let mut out = String::from("\\");
    let low = if c & 0x80 != 0 {
        out.push('M');
        c & 0x7f
    } else {
        c
    };
    if low.is_ascii_control() {
        out.push('^');
        out.push(if low == 0x7f {
            '?'
        } else {
            (low + b'@') as char
        });
    } else {
        out.push('-');
        out.push(low as char);
    }
    out
}

/// Tunnel device numbers: `any` is this sentinel, as in OpenSSH.
pub(crate) const TUN_ANY: i32 = 0x7fff_ffff;
const TUN_MAX: i64 = 0x7fff_fffd;

/// OpenSSH's `a2tun`: `local[:remote]`, each a number or `any`.
pub(crate) fn parse_tun_device(s: &str) -> Option<(i32, i32)> {
    let one = |s: &str| -> Option<i32> {
        if s.eq_ignore_ascii_case("any") {
            return Some(TUN_ANY);
        }
        strtonum(s, 0, TUN_MAX).ok().map(|v| v as i32)
    };
    match s.split_once(':') {
        Some((local, remote)) => Some((one(local)?, one(remote)?)),
        None => Some((one(s)?, TUN_ANY)),
    }
}

/// OpenSSH's `valid_domain` (lowercasing, trailing dot removed).
pub(crate) fn valid_domain(name: &str) -> Result<String, String> {
    let lower = name.to_ascii_lowercase();
    let first = lower
        .bytes()
        .next()
        .ok_or_else(|| "empty domain name".to_owned())?;
    if !first.is_ascii_alphanumeric() {
        return Err(format!(
            "domain name \"{name}\" starts with invalid character"
        ));
    }
    if lower.contains("..") {
        return Err(format!(
            "domain name \"{lower}\" contains consecutive separators"
        ));
    }
    if !lower
        .bytes()
        .all(|c| c == b'.' || c == b'-' || c == b'_' || c.is_ascii_alphanumeric())
    {
        return Err(format!(
            "domain name \"{lower}\" contains invalid characters"
        ));
    }
    Ok(lower.strip_suffix('.').unwrap_or(&lower).to_owned())
}

/// OpenSSH's `valid_env_name`.
pub(crate) fn valid_env_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let cases = [
            ("0", Some(0)),
            ("90", Some(90)),
            ("90s", Some(90)),
            ("90m", Some(5400)),
            ("1h30m", Some(5400)),
            ("1H30M", Some(5400)),
            ("2d", Some(172_800)),
            ("1w", Some(604_800)),
            ("1w2d3h4m5s", Some(788_645)),
            ("", None),
            ("-1", None),
            ("1x", None),
            ("h", None),
            ("1hh", None),
            ("99999999w", None),
            ("2147483647", None),
            ("2147483646", Some(2_147_483_646)),
        ];
        for (input, want) in cases {
            assert_eq!(parse_duration(input), want, "{input:?}");
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(atoi_err(Some("3")), Ok(3));
        assert_eq!(atoi_err(Some("")), Err("missing"));
        assert_eq!(atoi_err(None), Err("missing"));
        assert_eq!(atoi_err(Some("x")), Err("invalid"));
        assert_eq!(atoi_err(Some("3x")), Err("invalid"));
        assert_eq!(atoi_err(Some("-1")), Err("too small"));
        assert_eq!(atoi_err(Some("99999999999")), Err("too large"));
        assert_eq!(a2port("22"), Some(22));
        assert_eq!(a2port("0"), Some(0));
        assert_eq!(a2port("65536"), None);
        assert_eq!(a2port("ssh"), Some(22));
        assert_eq!(a2port("x"), None);
    }

    #[test]
    fn scaled() {
        assert_eq!(scan_scaled("100"), Ok(100));
        assert_eq!(scan_scaled("100K"), Ok(102_400));
        assert_eq!(scan_scaled("1G"), Ok(1 << 30));
        assert_eq!(scan_scaled("1.5k"), Ok(1536));
        assert!(scan_scaled("x").is_err());
        assert!(scan_scaled("1Q").is_err());
    }

    #[test]
    fn ipqos() {
        assert_eq!(parse_ipqos("AF11"), Some(0x28));
        assert_eq!(parse_ipqos("12"), Some(12));
        assert_eq!(parse_ipqos("0x10"), Some(16));
        assert_eq!(parse_ipqos("256"), None);
        assert_eq!(parse_ipqos("bogus"), None);
        assert_eq!(ipqos_name(12), "0x0c");
        assert_eq!(ipqos_name(0x10), "lowdelay");
        assert_eq!(ipqos_name(i32::MAX), "none");
    }

    #[test]
    fn escape_chars() {
        assert_eq!(parse_escape_char("~"), Some(Some(b'~')));
        assert_eq!(parse_escape_char("^A"), Some(Some(1)));
        assert_eq!(parse_escape_char("none"), Some(None));
        assert_eq!(parse_escape_char("^?"), None);
        assert_eq!(parse_escape_char("ab"), None);
        let printed = [
            (b'~', "~"),
            (1, "\\^A"),
            (0, "\\^@"),
            (b' ', "\\040"),
            (b'\\', "\\\\"),
        ];
        for (c, want) in printed {
            assert_eq!(vis_char(c), want);
        }
    }

    #[test]
    fn multistates() {
        assert_eq!(
            StrictHostKeyChecking::parse("No"),
            Some(StrictHostKeyChecking::Off)
        );
        assert_eq!(StrictHostKeyChecking::Off.as_str(), "false");
        assert_eq!(StrictHostKeyChecking::AcceptNew.as_str(), "accept-new");
        assert_eq!(ControlMaster::Yes.as_str(), "true");
        assert_eq!(LogLevel::parse("debug1"), Some(LogLevel::Debug1));
        assert_eq!(LogLevel::Debug1.as_str(), "DEBUG");
        assert_eq!(
            LogLevel::parse("quiet").map(LogLevel::as_str),
            Some("SILENT")
        );
        assert_eq!(PubkeyAuthentication::parse("bogus"), None);
        assert_eq!(parse_flag("YES"), Some(true));
        assert_eq!(parse_flag("ask"), None);
    }

    #[test]
    fn tun_and_domains() {
        assert_eq!(parse_tun_device("3:4"), Some((3, 4)));
        assert_eq!(parse_tun_device("any"), Some((TUN_ANY, TUN_ANY)));
        assert_eq!(parse_tun_device("x"), None);
        assert_eq!(valid_domain("Example.COM."), Ok("example.com".to_owned()));
        assert!(valid_domain("-bad").is_err());
        assert!(valid_domain("a..b").is_err());
        assert!(valid_env_name("LC_ALL"));
        assert!(!valid_env_name("A-B"));
    }
}
