//! PerSourcePenalties, as OpenSSH 9.8's sshd has them: a connection that
//! ends badly (failed authentication, an unknown user, no authentication at
//! all, LoginGraceTime exceeded, a crashed session task) earns its source
//! address block a penalty; penalties of one block add up to a cap, and
//! while a block's penalty is *active* its new connections are refused.
//! Exempt addresses are never penalised.
//!
//! Design choice: a penalty never slows a login in progress, and it only
//! takes effect once it has accumulated past `min`. A few failed logins
//! (the owner's wrong key, a mistyped user) therefore cost nothing, while a
//! source failing faster than its penalties expire is shut out, for up to
//! `max`. The defaults are sshd's except for the two the owner meets most:
//! `authfail` and `invaliduser` are smaller, since a server that accepts
//! only public keys has no password to guess. The table is a plain value
//! fed explicit instants, so it is tested without sleeping.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use tokio::time::Instant;

use crate::authorized_keys::from_permits;

/// What a connection did to earn a penalty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Its session task ended abnormally.
    Crash,
    /// It tried to authenticate, failed, and left.
    AuthFail,
    /// It tried to log in as a user this server does not serve.
    InvalidUser,
    /// It left without trying to authenticate.
    NoAuth,
    /// It did not authenticate within LoginGraceTime.
    GraceExceeded,
}

impl Event {
    /// What the log says.
    pub fn reason(self) -> &'static str {
        match self {
            Event::Crash => "its session crashed",
            Event::AuthFail => "failed authentication",
            Event::InvalidUser => "authentication as an invalid user",
            Event::NoAuth => "a connection without authentication",
            Event::GraceExceeded => "LoginGraceTime exceeded",
        }
    }
}

/// What to do when more address blocks are penalised than the table holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// Forget the penalties closest to expiry to make room.
    Permissive,
    /// Refuse every connection (but exempt ones) until penalties expire.
    DenyAll,
}

/// `--per-source-penalties`: how long each event refuses its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PenaltyConfig {
    pub enabled: bool,
    pub crash: Duration,
    pub authfail: Duration,
    pub invaliduser: Duration,
    pub noauth: Duration,
    pub grace_exceeded: Duration,
    /// The longest a block is refused, however many penalties it earns.
    pub max: Duration,
    /// Penalties accumulate silently up to this much before they refuse.
    pub min: Duration,
    pub max_sources4: usize,
    pub max_sources6: usize,
    pub overflow4: Overflow,
    pub overflow6: Overflow,
}

impl Default for PenaltyConfig {
    fn default() -> Self {
        PenaltyConfig {
            enabled: true,
            crash: Duration::from_secs(90),
            authfail: Duration::from_secs(1),
            invaliduser: Duration::from_secs(2),
            noauth: Duration::from_secs(1),
            grace_exceeded: Duration::from_secs(10),
            max: Duration::from_secs(600),
            min: Duration::from_secs(15),
            max_sources4: 65536,
            max_sources6: 65536,
            overflow4: Overflow::Permissive,
            overflow6: Overflow::Permissive,
        }
    }
}

impl PenaltyConfig {
    pub fn penalty(&self, event: Event) -> Duration {
        match event {
            Event::Crash => self.crash,
            Event::AuthFail => self.authfail,
            Event::InvalidUser => self.invaliduser,
            Event::NoAuth => self.noauth,
            Event::GraceExceeded => self.grace_exceeded,
        }
    }
}

/// sshd's syntax: `no`, `yes`, or `keyword:value` items (separated by
/// blanks or commas) that override the defaults, e.g.
/// `authfail:5s max:10m overflow:deny-all`.
impl FromStr for PenaltyConfig {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut c = PenaltyConfig::default();
        let items: Vec<&str> = s
            .split(|ch: char| ch == ',' || ch.is_ascii_whitespace())
            .filter(|i| !i.is_empty())
            .collect();
        match items.as_slice() {
            ["no"] => {
                c.enabled = false;
                return Ok(c);
            }
            ["yes"] => return Ok(c),
            [] => return Err("expected `no`, `yes` or keyword:value items".into()),
            _ => {}
        }
        for item in items {
            let (key, value) = item
                .split_once(':')
                .ok_or_else(|| format!("{item}: expected keyword:value"))?;
            c.set(key, value).map_err(|e| format!("{item}: {e}"))?;
        }
        Ok(c)
    }
}

impl PenaltyConfig {
    fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let time = || {
            warren_config::parse_duration(value)
                .map(|s| Duration::from_secs(u64::from(s)))
                .ok_or_else(|| "expected a time such as 5s, 2m or 1h".to_owned())
        };
        let count = || {
            value
                .parse::<usize>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| "expected a number above 0".to_owned())
        };
        let mode = || match value {
            "permissive" => Ok(Overflow::Permissive),
            "deny-all" => Ok(Overflow::DenyAll),
            _ => Err("expected permissive or deny-all".to_owned()),
        };
        match key {
            "crash" => self.crash = time()?,
            "authfail" => self.authfail = time()?,
            "invaliduser" => self.invaliduser = time()?,
            "noauth" => self.noauth = time()?,
            "grace-exceeded" => self.grace_exceeded = time()?,
            "max" => self.max = time()?,
            "min" => self.min = time()?,
            "max-sources4" => self.max_sources4 = count()?,
            "max-sources6" => self.max_sources6 = count()?,
            "overflow" => {
                self.overflow4 = mode()?;
                self.overflow6 = self.overflow4;
            }
            "overflow6" => self.overflow6 = mode()?,
            _ => {
                return Err(
                    "unknown keyword (known: crash, authfail, invaliduser, noauth, \
                     grace-exceeded, max, min, max-sources4, max-sources6, overflow, overflow6)"
                        .into(),
                );
            }
        }
        Ok(())
    }
}

/// `--per-source-net-block-size`: how many leading bits of an address
/// make one source (sshd's PerSourceNetBlockSize, default `32:128`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetBlockSize {
    pub v4: u8,
    pub v6: u8,
}

impl Default for NetBlockSize {
    fn default() -> Self {
        NetBlockSize { v4: 32, v6: 128 }
    }
}

impl FromStr for NetBlockSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bits = |t: &str, max: u8| {
            t.parse::<u8>()
                .ok()
                .filter(|&b| b <= max)
                .ok_or_else(|| format!("{t}: expected 0 to {max} bits"))
        };
        let (v4, v6) = match s.split_once(':') {
            Some((a, b)) => (bits(a, 32)?, bits(b, 128)?),
            None => (bits(s, 32)?, 128),
        };
        Ok(NetBlockSize { v4, v6 })
    }
}

impl NetBlockSize {
    /// The block `ip` belongs to: its address with the host bits cleared,
    /// and the prefix length. An IPv4-mapped IPv6 address counts as IPv4.
    fn block(&self, ip: IpAddr) -> (IpAddr, u8) {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match ip {
            IpAddr::V4(a) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.v4)).unwrap_or(0);
                (IpAddr::V4((u32::from(a) & mask).into()), self.v4)
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.v6)).unwrap_or(0);
                (IpAddr::V6((u128::from(a) & mask).into()), self.v6)
            }
        }
    }
}

/// Checks `--per-source-penalty-exempt-list`: comma-separated addresses,
/// wildcard patterns or CIDR blocks (`!` negates). As sshd does, a CIDR
/// block with host bits set or a prefix too long is an error.
pub fn check_exempt_list(list: &str) -> Result<(), String> {
    for entry in list.split(',') {
        let pattern = entry.strip_prefix('!').unwrap_or(entry);
        if pattern.is_empty() {
            return Err("empty entry".into());
        }
        let Some((net, bits)) = pattern.split_once('/') else {
            continue;
        };
        let net: IpAddr = net
            .parse()
            .map_err(|_| format!("{pattern}: expected ADDRESS/BITS"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let bits = bits
            .parse::<u8>()
            .ok()
            .filter(|&b| b <= max)
            .ok_or_else(|| format!("{pattern}: the mask must be 0 to {max} bits"))?;
        let masked = NetBlockSize { v4: bits, v6: bits }.block(net).0;
        if masked != net {
            return Err(format!(
                "{pattern}: host bits are set (did you mean {masked}/{bits}?)"
            ));
        }
    }
    Ok(())
}

/// A block's penalty, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Penalised {
    /// `ADDRESS/BITS`.
    pub block: String,
    pub event: Event,
    /// How long the block's penalty now runs.
    pub left: Duration,
    /// Whether it refuses new connections now.
    pub active: bool,
    /// Whether it became active with this event.
    pub activated: bool,
}

/// Why a new connection is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub block: String,
    /// The event that last extended the penalty; `None` when the table is
    /// full and overflow is deny-all.
    pub event: Option<Event>,
    pub left: Duration,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.event {
            Some(e) => write!(
                f,
                "{} is penalised for {} ({} s left)",
                self.block,
                e.reason(),
                self.left.as_secs().max(1)
            ),
            None => write!(
                f,
                "too many penalised addresses (overflow:deny-all; {} s until one expires)",
                self.left.as_secs().max(1)
            ),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    expiry: Instant,
    active: bool,
    event: Event,
}

/// The penalty table of one server.
#[derive(Debug)]
pub struct Penalties {
    config: PenaltyConfig,
    exempt: Option<String>,
    blocks: NetBlockSize,
    v4: HashMap<IpAddr, Entry>,
    v6: HashMap<IpAddr, Entry>,
    /// When expired entries were last swept out.
    swept: Option<Instant>,
}

impl Penalties {
    pub fn new(config: PenaltyConfig, exempt: Option<String>, blocks: NetBlockSize) -> Penalties {
        Penalties {
            config,
            exempt: exempt.filter(|e| !e.is_empty()),
            blocks,
            v4: HashMap::new(),
            v6: HashMap::new(),
            swept: None,
        }
    }

    /// Drops expired entries, at most once a second unless `force`d (a
    /// lookup ignores an expired entry anyway; the sweep bounds memory).
    fn sweep(&mut self, now: Instant, force: bool) {
        let due = self
            .swept
            .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(1));
        if force || due {
            self.v4.retain(|_, e| e.expiry > now);
            self.v6.retain(|_, e| e.expiry > now);
            self.swept = Some(now);
        }
    }

    fn is_exempt(&self, ip: IpAddr) -> bool {
        self.exempt.as_deref().is_some_and(|l| from_permits(l, ip))
    }

    /// The table of `block`, its capacity and its overflow mode.
    fn table(&mut self, block: IpAddr) -> (&mut HashMap<IpAddr, Entry>, usize, Overflow) {
        match block {
            IpAddr::V4(_) => (
                &mut self.v4,
                self.config.max_sources4,
                self.config.overflow4,
            ),
            IpAddr::V6(_) => (
                &mut self.v6,
                self.config.max_sources6,
                self.config.overflow6,
            ),
        }
    }

    /// Whether a new connection from `ip` may be served.
    pub fn check(&mut self, ip: IpAddr, now: Instant) -> Result<(), Refusal> {
        if !self.config.enabled || self.is_exempt(ip) {
            return Ok(());
        }
        let (block, bits) = self.blocks.block(ip);
        self.sweep(now, false);
        let (table, capacity, overflow) = self.table(block);
        let full = overflow == Overflow::DenyAll && table.len() >= capacity;
        if full {
            self.sweep(now, true);
        }
        let (table, capacity, _) = self.table(block);
        if full && table.len() >= capacity {
            let soonest = table.values().map(|e| e.expiry).min().unwrap_or(now);
            return Err(Refusal {
                block: format!("{block}/{bits}"),
                event: None,
                left: soonest.saturating_duration_since(now),
            });
        }
        match table.get(&block) {
            Some(e) if e.active && e.expiry > now => Err(Refusal {
                block: format!("{block}/{bits}"),
                event: Some(e.event),
                left: e.expiry.saturating_duration_since(now),
            }),
            _ => Ok(()),
        }
    }

    /// Records `event` against the block of `ip`; `None` when nothing was
    /// recorded (penalties off, an exempt address, a zero penalty, or a
    /// full table under deny-all).
    pub fn penalise(&mut self, ip: IpAddr, event: Event, now: Instant) -> Option<Penalised> {
        let secs = self.config.penalty(event);
        if !self.config.enabled || secs.is_zero() || self.is_exempt(ip) {
            return None;
        }
        let (min, max) = (self.config.min, self.config.max);
        let (block, bits) = self.blocks.block(ip);
        self.sweep(now, false);
        let (table, capacity, _) = self.table(block);
        if !table.contains_key(&block) && table.len() >= capacity {
            self.sweep(now, true);
        }
        let (table, capacity, overflow) = self.table(block);
        if !table.contains_key(&block) && table.len() >= capacity {
            if overflow == Overflow::DenyAll {
                return None;
            }
            make_room(table, capacity - 1);
        }
        let entry = table.entry(block).or_insert(Entry {
            expiry: now,
            active: false,
            event,
        });
        if entry.expiry <= now {
            // Expired but not swept yet: a fresh start.
            entry.expiry = now;
            entry.active = false;
        }
        entry.expiry = (entry.expiry + secs).min(now + max);
        entry.event = event;
        let left = entry.expiry.saturating_duration_since(now);
        let activated = !entry.active && left > min;
        entry.active |= activated;
        Some(Penalised {
            block: format!("{block}/{bits}"),
            event,
            left,
            active: entry.active,
            activated,
        })
    }
}

/// Forgets the penalties closest to expiry until `keep` are left.
fn make_room(table: &mut HashMap<IpAddr, Entry>, keep: usize) {
    let mut by_expiry: Vec<(Instant, IpAddr)> = table.iter().map(|(k, e)| (e.expiry, *k)).collect();
    by_expiry.sort_unstable();
    let excess = table.len().saturating_sub(keep);
    for (_, k) in by_expiry.into_iter().take(excess) {
        table.remove(&k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn table(spec: &str) -> Penalties {
        Penalties::new(spec.parse().unwrap(), None, NetBlockSize::default())
    }

    #[test]
    fn config_syntax() {
        let d = PenaltyConfig::default();
        let cases: &[(&str, Option<PenaltyConfig>)] = &[
            ("yes", Some(d.clone())),
            (
                "no",
                Some(PenaltyConfig {
                    enabled: false,
                    ..d.clone()
                }),
            ),
            (
                "authfail:5s max:2m",
                Some(PenaltyConfig {
                    authfail: secs(5),
                    max: secs(120),
                    ..d.clone()
                }),
            ),
            (
                "crash:1m,noauth:0,grace-exceeded:3",
                Some(PenaltyConfig {
                    crash: secs(60),
                    noauth: secs(0),
                    grace_exceeded: secs(3),
                    ..d.clone()
                }),
            ),
            (
                "overflow:deny-all overflow6:permissive max-sources4:10",
                Some(PenaltyConfig {
                    overflow4: Overflow::DenyAll,
                    max_sources4: 10,
                    ..d.clone()
                }),
            ),
            ("", None),
            ("authfail", None),
            ("authfail:soon", None),
            ("bogus:5s", None),
            ("max-sources4:0", None),
            ("overflow:maybe", None),
        ];
        for (input, want) in cases {
            let got = input.parse::<PenaltyConfig>().ok();
            assert_eq!(&got, want, "{input:?}");
        }
    }

    #[test]
    fn net_block_sizes() {
        let cases = [
            ("32:128", Some((32, 128))),
            ("24", Some((24, 128))),
            ("16:48", Some((16, 48))),
            ("33", None),
            ("24:129", None),
            ("x", None),
        ];
        for (input, want) in cases {
            let got = input.parse::<NetBlockSize>().ok().map(|b| (b.v4, b.v6));
            assert_eq!(got, want, "{input}");
        }
        let b = NetBlockSize { v4: 24, v6: 64 };
        assert_eq!(b.block(ip("192.0.2.77")), (ip("192.0.2.0"), 24));
        assert_eq!(b.block(ip("::ffff:192.0.2.77")), (ip("192.0.2.0"), 24));
        assert_eq!(b.block(ip("2001:db8::1")), (ip("2001:db8::"), 64));
        let all = NetBlockSize { v4: 0, v6: 0 };
        assert_eq!(all.block(ip("192.0.2.77")), (ip("0.0.0.0"), 0));
    }

    #[test]
    fn exempt_lists() {
        let cases = [
            ("127.0.0.1", true),
            ("127.0.0.0/8,::1", true),
            ("10.*,!10.1.2.3", true),
            ("192.0.2.0/24", true),
            ("192.0.2.1/24", false),
            ("192.0.2.0/33", false),
            ("nonsense/8", false),
            ("a,,b", false),
        ];
        for (input, ok) in cases {
            assert_eq!(check_exempt_list(input).is_ok(), ok, "{input}");
        }
    }

    #[test]
    fn penalties_accumulate_past_min_then_refuse() {
        let mut p = table("authfail:5s min:15s max:60s");
        let a = ip("192.0.2.1");
        let t0 = Instant::now();
        // Three failures: 15 s, not above min: still served.
        for _ in 0..3 {
            let got = p.penalise(a, Event::AuthFail, t0).unwrap();
            assert!(!got.active);
        }
        assert_eq!(p.check(a, t0), Ok(()));
        let got = p.penalise(a, Event::AuthFail, t0).unwrap();
        assert!(got.active && got.activated);
        assert_eq!(got.left, secs(20));
        let refused = p.check(a, t0 + secs(5)).unwrap_err();
        assert_eq!(refused.left, secs(15));
        assert_eq!(refused.event, Some(Event::AuthFail));
        assert!(refused.to_string().contains("192.0.2.1/32"), "{refused}");
        // Other sources are not affected; the penalty ends on time.
        assert_eq!(p.check(ip("192.0.2.2"), t0), Ok(()));
        assert_eq!(p.check(a, t0 + secs(20)), Ok(()));
    }

    #[test]
    fn penalties_are_capped_at_max() {
        let mut p = table("crash:90s max:2m");
        let a = ip("2001:db8::1");
        let t0 = Instant::now();
        p.penalise(a, Event::Crash, t0);
        let got = p.penalise(a, Event::Crash, t0).unwrap();
        assert_eq!(got.left, secs(120));
        assert!(p.check(a, t0 + secs(119)).is_err());
        assert_eq!(p.check(a, t0 + secs(120)), Ok(()));
    }

    #[test]
    fn defaults_let_a_few_failures_pass() {
        // The owner's wrong key eight times in a row costs nothing.
        let mut p = Penalties::new(PenaltyConfig::default(), None, NetBlockSize::default());
        let a = ip("127.0.0.1");
        let t0 = Instant::now();
        for _ in 0..8 {
            p.penalise(a, Event::AuthFail, t0);
        }
        assert_eq!(p.check(a, t0), Ok(()));
        // A source failing without pause is shut out.
        for _ in 0..8 {
            p.penalise(a, Event::AuthFail, t0);
        }
        assert!(p.check(a, t0).is_err());
    }

    #[test]
    fn exempt_sources_disabled_and_blocks() {
        let t0 = Instant::now();
        let mut p = Penalties::new(
            "crash:1m".parse().unwrap(),
            Some("127.0.0.0/8".into()),
            NetBlockSize { v4: 24, v6: 64 },
        );
        assert_eq!(p.penalise(ip("127.0.0.1"), Event::Crash, t0), None);
        assert_eq!(p.check(ip("127.0.0.1"), t0), Ok(()));
        let got = p.penalise(ip("192.0.2.1"), Event::Crash, t0).unwrap();
        assert_eq!(got.block, "192.0.2.0/24");
        assert!(p.check(ip("192.0.2.200"), t0).is_err(), "same /24");
        assert_eq!(p.check(ip("192.0.3.1"), t0), Ok(()));
        let mut off = table("no");
        assert_eq!(off.penalise(ip("192.0.2.1"), Event::Crash, t0), None);
    }

    #[test]
    fn overflow_modes() {
        let t0 = Instant::now();
        let mut p = table("crash:1m max-sources4:2");
        for (i, a) in ["192.0.2.1", "192.0.2.2", "192.0.2.3"].iter().enumerate() {
            p.penalise(ip(a), Event::Crash, t0 + secs(i as u64));
        }
        assert!(p.v4.len() <= 2);
        assert_eq!(
            p.check(ip("192.0.2.1"), t0 + secs(3)),
            Ok(()),
            "forgotten first"
        );
        assert!(p.check(ip("192.0.2.3"), t0 + secs(3)).is_err());

        let mut p = table("crash:1m max-sources4:2 overflow:deny-all");
        p.penalise(ip("192.0.2.1"), Event::Crash, t0);
        p.penalise(ip("192.0.2.2"), Event::Crash, t0);
        assert_eq!(p.penalise(ip("192.0.2.3"), Event::Crash, t0), None);
        let refused = p.check(ip("198.51.100.1"), t0).unwrap_err();
        assert_eq!(refused.event, None);
        // IPv6 has its own table.
        assert_eq!(p.check(ip("2001:db8::1"), t0), Ok(()));
        assert_eq!(p.check(ip("198.51.100.1"), t0 + secs(60)), Ok(()));
    }
}
