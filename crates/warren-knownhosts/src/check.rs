//! Host key verification against a set of known_hosts files, modelled on
//! OpenSSH 9.2's `check_host_key` (sshconnect.c) and
//! `check_key_in_hostkeys` (hostfile.c).
//!
//! Design choice: this module decides, it does not talk. It returns a
//! [`Verdict`] carrying every file:line OpenSSH would print; prompting,
//! `StrictHostKeyChecking` and writing new entries belong to the caller.
//! Note OpenSSH 9.2's rule that *any* recorded plain key for the host
//! that differs from the offered one — even of another key type — makes
//! the key "changed"; only a host with no plain entries at all is unknown.

use crate::error::Location;
use crate::file::{Entry, KnownHostsFile};
use crate::key::{HostKey, plain_type_of};
use crate::line::Marker;

/// The names a host is looked up under, as OpenSSH builds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostNames {
    hostname: String,
    port: u16,
    alias: Option<String>,
    ip: Option<String>,
}

impl HostNames {
    /// Host as given (after any canonicalisation) and port; port 22 or 0
    /// means "no port suffix". Like ssh, names that are not IP addresses
    /// are lowercased.
    pub fn new(hostname: &str, port: u16) -> Self {
        let hostname = if hostname.parse::<std::net::IpAddr>().is_ok() {
            hostname.to_owned()
        } else {
            hostname.to_ascii_lowercase()
        };
        Self {
            hostname,
            port,
            alias: None,
            ip: None,
        }
    }

    /// `HostKeyAlias`: looked up lowercased (as ssh does), without any
    /// port suffix.
    pub fn with_host_key_alias(mut self, alias: &str) -> Self {
        self.alias = Some(alias.to_ascii_lowercase());
        self
    }

    /// `CheckHostIP yes`: also look up the peer address (numeric text,
    /// e.g. `192.0.2.7` or `2001:db8::7`). The caller leaves it out where
    /// OpenSSH turns CheckHostIP off (loopback peer, ProxyCommand).
    pub fn with_ip(mut self, ip: &str) -> Self {
        self.ip = Some(ip.to_owned());
        self
    }

    /// Name for host lookups: the alias, or `host` / `[host]:port`.
    pub fn host(&self) -> String {
        match &self.alias {
            Some(alias) => alias.clone(),
            None => host_port(&self.hostname, self.port),
        }
    }

    /// Name for address lookups (`ip` / `[ip]:port`), if CheckHostIP
    /// applies. Like OpenSSH it is off when the host was given as that
    /// same address.
    pub fn ip(&self) -> Option<String> {
        let ip = host_port(self.ip.as_deref()?, self.port);
        (ip != self.hostname).then_some(ip)
    }

    /// Whether [`KnownHosts::check`] for these names could use `entry`:
    /// the filter for [`KnownHostsFile::read`], so a lookup keeps only the
    /// lines naming the host, as OpenSSH's `load_hostkeys` does.
    pub fn wants(&self, entry: &Entry) -> bool {
        let portless = self.without_port();
        let names = [Some(self), portless.as_ref()];
        names
            .into_iter()
            .flatten()
            .flat_map(|n| [Some(n.host()), n.ip()])
            .flatten()
            .any(|name| entry.matches(&name))
    }

    /// OpenSSH retries an unknown `[host]:port` as plain `host` (no alias
    /// set, port not 22): a key recorded without port is accepted.
    fn without_port(&self) -> Option<Self> {
        if self.alias.is_some() || self.port == 0 || self.port == 22 {
            return None;
        }
        Some(Self {
            port: 0,
            ..self.clone()
        })
    }
}

/// `host` for port 22 (or 0), `[host]:port` otherwise (`put_host_port`).
pub fn host_port(host: &str, port: u16) -> String {
    if port == 0 || port == 22 {
        host.to_owned()
    } else {
        format!("[{host}]:{port}")
    }
}

/// Outcome of checking a host key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The key is recorded for the host (for a certificate: a
    /// `@cert-authority` entry for the host names its signing CA; the
    /// caller must still verify the certificate, and on failure re-check
    /// with [`HostKey::certified_key`], as OpenSSH does).
    Known {
        /// The matching entry (first one, in file order).
        at: Location,
        /// Matched as plain `host` although a port was in use.
        without_port: bool,
        /// Result of the address lookup.
        ip: IpStatus,
    },
    /// The key (or, for a certificate, its CA or certified key) appears
    /// in an `@revoked` line for this host. Refuse; beats everything.
    Revoked {
        /// The first `@revoked` entry that names it.
        at: Location,
    },
    /// Plain keys are recorded for the host and none is this one
    /// ("REMOTE HOST IDENTIFICATION HAS CHANGED"). Never reported for
    /// certificates: an untrusted CA is `Unknown`.
    Changed {
        /// OpenSSH's "Offending key": the *last* differing entry.
        at: Location,
        /// Key type of that entry (may differ from the offered key's).
        old_algorithm: String,
        /// Every differing entry, in order.
        conflicting: Vec<Location>,
        /// Result of the address lookup.
        ip: IpStatus,
        /// OpenSSH's `host_ip_differ`: print "POSSIBLE DNS SPOOFING".
        ip_differs: bool,
    },
    /// Nothing recorded for the host (for certificates: no trusted CA;
    /// the caller should re-check with [`HostKey::certified_key`]).
    Unknown {
        /// Result of the address lookup (add the IP too when `Unknown`).
        ip: IpStatus,
    },
}

/// Result of the CheckHostIP lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpStatus {
    /// No address lookup (CheckHostIP off, or a certificate).
    NotChecked,
    /// The key is recorded for the address.
    Known(Location),
    /// No plain key recorded for the address.
    Unknown,
    /// Another key is recorded for the address.
    Changed {
        /// The last differing entry.
        at: Location,
        /// Its key type.
        old_algorithm: String,
    },
    /// The key is revoked by a line matching the address.
    Revoked(Location),
}

/// OpenSSH's `HostStatus` for one name.
enum Status {
    Ok(Location),
    New,
    Changed {
        at: Location,
        key: HostKey,
        all: Vec<Location>,
    },
    Revoked(Location),
}

/// Several known_hosts files searched in order (user files, then global).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KnownHosts {
    files: Vec<KnownHostsFile>,
}

impl KnownHosts {
    /// Files in search order.
    pub fn new(files: Vec<KnownHostsFile>) -> Self {
        Self { files }
    }

    /// The files, in order.
    pub fn files(&self) -> &[KnownHostsFile] {
        &self.files
    }

    /// Check `key` for `names`, like OpenSSH's `check_host_key`.
    pub fn check(&self, names: &HostNames, key: &HostKey) -> Verdict {
        let verdict = self.check_once(names, key);
        if !matches!(verdict, Verdict::Unknown { .. }) {
            return verdict;
        }
        let Some(portless) = names.without_port() else {
            return verdict;
        };
        match self.check_once(&portless, key) {
            Verdict::Known { at, ip, .. } => Verdict::Known {
                at,
                without_port: true,
                ip,
            },
            _ => verdict,
        }
    }

    fn check_once(&self, names: &HostNames, key: &HostKey) -> Verdict {
        let host = self.status(&names.host(), key);
        let ip_status = match names.ip() {
            Some(ip) if !key.is_certificate() => Some(self.status(&ip, key)),
            _ => None,
        };
        let ip_differs = ip_differs(&host, ip_status.as_ref());
        let ip = ip_status.map_or(IpStatus::NotChecked, IpStatus::from);
        match host {
            Status::Ok(at) => Verdict::Known {
                at,
                without_port: false,
                ip,
            },
            Status::New => Verdict::Unknown { ip },
            Status::Revoked(at) => Verdict::Revoked { at },
            Status::Changed { at, key, all } => Verdict::Changed {
                at,
                old_algorithm: key.key_type(),
                conflicting: all,
                ip,
                ip_differs,
            },
        }
    }

    /// Entries whose host field matches `name`, in search order.
    fn matching<'a>(&'a self, name: &'a str) -> impl Iterator<Item = (Location, &'a Entry)> + 'a {
        self.files.iter().flat_map(move |f| {
            f.entries()
                .iter()
                .filter(move |e| e.matches(name))
                .map(move |e| (f.location(e), e))
        })
    }

    /// `check_hostkeys_by_key_or_type` for one lookup name.
    fn status(&self, name: &str, key: &HostKey) -> Status {
        let ca = key.signature_key();
        let want = if key.is_certificate() {
            Marker::CertAuthority
        } else {
            Marker::None
        };
        if let Some(at) = self.revoked_at(name, key, ca.as_ref()) {
            return Status::Revoked(at);
        }
        let mut changed: Option<(Location, HostKey)> = None;
        let mut all = Vec::new();
        for (at, entry) in self.matching(name).filter(|(_, e)| e.marker == want) {
            if let Some(ca) = &ca {
                if ca.same_public_key(&entry.key) {
                    return Status::Ok(at);
                }
            } else if entry.key.blob() == key.blob() {
                return Status::Ok(at);
            } else if !key.is_certificate() {
                all.push(at.clone());
                changed = Some((at, entry.key.clone()));
            }
        }
        match changed {
            Some((at, key)) => Status::Changed { at, key, all },
            None => Status::New,
        }
    }

    /// `check_key_not_revoked`: the first `@revoked` line for `name` whose
    /// key is this key's public key or its CA.
    fn revoked_at(&self, name: &str, key: &HostKey, ca: Option<&HostKey>) -> Option<Location> {
        self.matching(name)
            .filter(|(_, e)| e.marker == Marker::Revoked)
            .find(|(_, e)| {
                e.key.same_public_key(key) || ca.is_some_and(|ca| ca.same_public_key(&e.key))
            })
            .map(|(at, _)| at)
    }

    /// CA keys trusted for the host: `@cert-authority` lines matching
    /// [`HostNames::host`], in search order. (Revocation of a CA is part
    /// of [`KnownHosts::check`] for the certificate.)
    pub fn cert_authorities(&self, names: &HostNames) -> Vec<(HostKey, Location)> {
        let host = names.host();
        self.matching(&host)
            .filter(|(_, e)| e.marker == Marker::CertAuthority)
            .map(|(at, e)| (e.key.clone(), at))
            .collect()
    }

    /// Key types of the plain keys recorded for the host, first-seen
    /// order, without duplicates.
    pub fn known_algorithms(&self, names: &HostNames) -> Vec<String> {
        let host = names.host();
        let mut out: Vec<String> = Vec::new();
        for (_, e) in self
            .matching(&host)
            .filter(|(_, e)| e.marker == Marker::None)
        {
            let t = e.key.key_type();
            if !out.contains(&t) {
                out.push(t);
            }
        }
        out
    }

    /// Whether an `@cert-authority` line matches the host.
    pub fn has_cert_authority(&self, names: &HostNames) -> bool {
        !self.cert_authorities(names).is_empty()
    }

    /// OpenSSH's `order_hostkeyalgs`: if a key of the type of the first
    /// configured algorithm is known, keep `configured` as is; otherwise
    /// move algorithms with a known key (and all certificate algorithms,
    /// when a CA is trusted) to the front, keeping relative order.
    pub fn order_host_key_algorithms(&self, names: &HostNames, configured: &[&str]) -> Vec<String> {
        let known = self.known_algorithms(names);
        let has_key =
            |alg: &str| plain_type_of(alg).is_some_and(|plain| known.iter().any(|k| k == plain));
        let keep = configured.first().is_some_and(|best| has_key(best));
        if keep {
            return configured.iter().map(|a| (*a).to_owned()).collect();
        }
        let has_ca = self.has_cert_authority(names);
        let (first, last): (Vec<&str>, Vec<&str>) = configured
            .iter()
            .partition(|alg| (has_ca && alg.ends_with("-cert-v01@openssh.com")) || has_key(alg));
        first.into_iter().chain(last).map(str::to_owned).collect()
    }
}

impl From<Status> for IpStatus {
    fn from(status: Status) -> Self {
        match status {
            Status::Ok(at) => Self::Known(at),
            Status::New => Self::Unknown,
            Status::Changed { at, key, .. } => Self::Changed {
                at,
                old_algorithm: key.key_type(),
            },
            Status::Revoked(at) => Self::Revoked(at),
        }
    }
}

/// OpenSSH's `host_ip_differ`.
fn ip_differs(host: &Status, ip: Option<&Status>) -> bool {
    let (Status::Changed { key: host_key, .. }, Some(ip)) = (host, ip) else {
        return false;
    };
    match ip {
        Status::Changed { key: ip_key, .. } => ip_key != host_key,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkeys::{ecdsa, ed, ed_cert, k, rsa};

    fn at(file: &str, line: usize) -> Location {
        Location {
            file: file.to_owned(),
            line,
        }
    }

    fn hosts(files: &[(&str, String)]) -> KnownHosts {
        KnownHosts::new(
            files
                .iter()
                .map(|(label, text)| KnownHostsFile::parse(label, text))
                .collect(),
        )
    }

    fn known(a: Location) -> Verdict {
        Verdict::Known {
            at: a,
            without_port: false,
            ip: IpStatus::NotChecked,
        }
    }

    fn changed(a: Location, old: &str, all: Vec<Location>) -> Verdict {
        Verdict::Changed {
            at: a,
            old_algorithm: old.to_owned(),
            conflicting: all,
            ip: IpStatus::NotChecked,
            ip_differs: false,
        }
    }

    const UNKNOWN: Verdict = Verdict::Unknown {
        ip: IpStatus::NotChecked,
    };

    #[test]
    fn verdicts_for_plain_keys() {
        let (a, b, e) = (k(&ed(1)), k(&ed(2)), k(&ecdsa(3)));
        let host = HostNames::new("host", 22);
        type Files<'a> = Vec<(&'a str, String)>;
        let cases: Vec<(&str, Files<'_>, Verdict)> = vec![
            ("empty", vec![("u", String::new())], UNKNOWN),
            ("known", vec![("u", format!("host {a}"))], known(at("u", 1))),
            (
                "known in global file",
                vec![("u", format!("other {b}")), ("g", format!("# x\nhost {a}"))],
                known(at("g", 2)),
            ),
            (
                "first hit reported",
                vec![
                    ("u", format!("host {a}\nhost {a}")),
                    ("g", format!("host {a}")),
                ],
                known(at("u", 1)),
            ),
            (
                "match beats earlier conflict",
                vec![("u", format!("host {b}")), ("g", format!("host {a}"))],
                known(at("g", 1)),
            ),
            (
                "changed, same type",
                vec![("u", format!("host {b}"))],
                changed(at("u", 1), "ssh-ed25519", vec![at("u", 1)]),
            ),
            (
                // OpenSSH 9.2: a recorded key of another type is "changed"
                // too (verified against real ssh), offending = last one.
                "changed, other type; last offender reported",
                vec![("u", format!("host {e}\nhost {b}")), ("g", String::new())],
                changed(at("u", 2), "ssh-ed25519", vec![at("u", 1), at("u", 2)]),
            ),
            (
                "other type only",
                vec![("u", format!("host {e}"))],
                changed(at("u", 1), "ecdsa-sha2-nistp256", vec![at("u", 1)]),
            ),
            (
                "negated line does not apply",
                vec![("u", format!("*,!host {b}"))],
                UNKNOWN,
            ),
            (
                "wildcard applies",
                vec![("u", format!("h?s* {a}"))],
                known(at("u", 1)),
            ),
            (
                "other host only",
                vec![("u", format!("hostx {b}"))],
                UNKNOWN,
            ),
            (
                "revoked beats a match",
                vec![("u", format!("host {a}")), ("g", format!("@revoked * {a}"))],
                Verdict::Revoked { at: at("g", 1) },
            ),
            (
                "revoked beats a conflict",
                vec![("u", format!("host {b}\n@revoked host {a}"))],
                Verdict::Revoked { at: at("u", 2) },
            ),
            (
                "revoked line for another host does not apply",
                vec![("u", format!("@revoked other {a}\nhost {a}"))],
                known(at("u", 2)),
            ),
            (
                "revoked other key is irrelevant",
                vec![("u", format!("@revoked * {b}\nhost {a}"))],
                known(at("u", 2)),
            ),
            (
                "CA line is not a host key",
                vec![("u", format!("@cert-authority host {a}"))],
                UNKNOWN,
            ),
            (
                "bad lines are skipped",
                vec![("u", format!("host\n@bad host {b}\nhost {a}"))],
                known(at("u", 3)),
            ),
        ];
        for (name, files, want) in cases {
            let got = hosts(&files).check(&host, &ed(1));
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn ports_and_aliases() {
        let (a, b) = (k(&ed(1)), k(&ed(2)));
        let key = ed(1);
        let names = HostNames::new("HOST", 2222);
        assert_eq!(names.host(), "[host]:2222");
        assert_eq!(HostNames::new("2001:DB8::1", 2).host(), "[2001:DB8::1]:2");
        let kh = hosts(&[("u", format!("[host]:2222 {a}"))]);
        assert_eq!(kh.check(&names, &key), known(at("u", 1)));
        assert_eq!(kh.check(&HostNames::new("host", 22), &key), UNKNOWN);
        // Unknown with port, known without: accepted like OpenSSH.
        let kh = hosts(&[("u", format!("host {a}"))]);
        let want = Verdict::Known {
            at: at("u", 1),
            without_port: true,
            ip: IpStatus::NotChecked,
        };
        assert_eq!(kh.check(&names, &key), want);
        // ... but not when something is recorded for [host]:port.
        let kh = hosts(&[("u", format!("host {a}\n[host]:2222 {b}"))]);
        assert!(matches!(kh.check(&names, &key), Verdict::Changed { .. }));
        // ... and not with HostKeyAlias, which is looked up verbatim.
        let alias = HostNames::new("host", 2222).with_host_key_alias("Nick");
        assert_eq!(alias.host(), "nick");
        assert_eq!(
            hosts(&[("u", format!("host {a}"))]).check(&alias, &key),
            UNKNOWN
        );
        let kh = hosts(&[("u", format!("nick {a}"))]);
        assert_eq!(kh.check(&alias, &key), known(at("u", 1)));
    }

    #[test]
    fn check_host_ip() {
        let (a, b) = (k(&ed(1)), k(&ed(2)));
        let key = ed(1);
        let names = HostNames::new("host", 22).with_ip("192.0.2.1");
        let cases = [
            (
                format!("host,192.0.2.1 {a}"),
                known_ip(1, IpStatus::Known(at("u", 1))),
            ),
            (format!("host {a}"), known_ip(1, IpStatus::Unknown)),
            (
                format!("host {a}\n192.0.2.1 {b}"),
                known_ip(
                    1,
                    IpStatus::Changed {
                        at: at("u", 2),
                        old_algorithm: "ssh-ed25519".into(),
                    },
                ),
            ),
            (
                format!("host {b}\n192.0.2.1 {a}"),
                Verdict::Changed {
                    at: at("u", 1),
                    old_algorithm: "ssh-ed25519".into(),
                    conflicting: vec![at("u", 1)],
                    ip: IpStatus::Known(at("u", 2)),
                    ip_differs: true,
                },
            ),
            (
                format!("host,192.0.2.1 {b}"),
                Verdict::Changed {
                    at: at("u", 1),
                    old_algorithm: "ssh-ed25519".into(),
                    conflicting: vec![at("u", 1)],
                    ip: IpStatus::Changed {
                        at: at("u", 1),
                        old_algorithm: "ssh-ed25519".into(),
                    },
                    ip_differs: false,
                },
            ),
        ];
        for (text, want) in cases {
            assert_eq!(
                hosts(&[("u", text.clone())]).check(&names, &key),
                want,
                "{text}"
            );
        }
        // Host given as the address itself: no separate IP lookup.
        assert_eq!(
            HostNames::new("192.0.2.1", 22).with_ip("192.0.2.1").ip(),
            None
        );
        let v6 = HostNames::new("h", 2200).with_ip("2001:db8::1");
        assert_eq!(v6.ip().as_deref(), Some("[2001:db8::1]:2200"));
    }

    fn known_ip(line: usize, ip: IpStatus) -> Verdict {
        Verdict::Known {
            at: at("u", line),
            without_port: false,
            ip,
        }
    }

    #[test]
    fn certificates() {
        let (ca, other_ca) = (ecdsa(7), ecdsa(8));
        let cert = ed_cert(1, &ca);
        let names = HostNames::new("web.example", 22).with_ip("192.0.2.1");
        let (c, o, p) = (k(&ca), k(&other_ca), k(&ed(1)));
        let cases = [
            (format!("@cert-authority *.example {c}"), known(at("u", 1))),
            (format!("@cert-authority *.example {o}"), UNKNOWN),
            (format!("@cert-authority other {c}"), UNKNOWN),
            // A plain line with the CA key does not make it a CA.
            (format!("web.example {c}"), UNKNOWN),
            (
                format!("@cert-authority * {c}\n@revoked * {c}"),
                Verdict::Revoked { at: at("u", 2) },
            ),
            (
                format!("@cert-authority * {c}\n@revoked * {p}"),
                Verdict::Revoked { at: at("u", 2) },
            ),
        ];
        for (text, want) in cases {
            assert_eq!(
                hosts(&[("u", text.clone())]).check(&names, &cert),
                want,
                "{text}"
            );
        }
        let kh = hosts(&[(
            "u",
            format!("@cert-authority *.example {c}\n@cert-authority * {o}"),
        )]);
        let cas: Vec<(HostKey, usize)> = kh
            .cert_authorities(&names)
            .into_iter()
            .map(|(key, loc)| (key, loc.line))
            .collect();
        assert_eq!(cas, [(ca, 1), (other_ca, 2)]);
    }

    #[test]
    fn algorithm_preferences() {
        let names = HostNames::new("host", 22);
        let kh = hosts(&[
            (
                "u",
                format!(
                    "host {}\nhost {}\n@revoked host {}",
                    k(&ecdsa(1)),
                    k(&rsa(2)),
                    k(&ed(3))
                ),
            ),
            ("g", format!("host {}", k(&ecdsa(4)))),
        ]);
        assert_eq!(
            kh.known_algorithms(&names),
            ["ecdsa-sha2-nistp256", "ssh-rsa"]
        );
        let configured = [
            "ssh-ed25519-cert-v01@openssh.com",
            "ssh-ed25519",
            "ecdsa-sha2-nistp256",
            "rsa-sha2-512",
            "rsa-sha2-256",
        ];
        assert_eq!(
            kh.order_host_key_algorithms(&names, &configured),
            [
                "ecdsa-sha2-nistp256",
                "rsa-sha2-512",
                "rsa-sha2-256",
                "ssh-ed25519-cert-v01@openssh.com",
                "ssh-ed25519",
            ]
        );
        let kh = hosts(&[(
            "u",
            format!("host {}\n@cert-authority * {}", k(&ed(1)), k(&ed(2))),
        )]);
        assert!(kh.has_cert_authority(&names));
        // Best preference already known: order kept verbatim.
        assert_eq!(
            kh.order_host_key_algorithms(&names, &configured[1..]),
            configured[1..]
        );
        let kh = hosts(&[("u", format!("@cert-authority * {}", k(&ed(2))))]);
        assert_eq!(
            kh.order_host_key_algorithms(
                &names,
                &["ssh-ed25519", "ssh-ed25519-cert-v01@openssh.com"]
            ),
            ["ssh-ed25519-cert-v01@openssh.com", "ssh-ed25519"]
        );
    }

    #[test]
    fn a_lookup_keeps_the_lines_its_check_could_use() {
        let a = k(&ed(1));
        let names = HostNames::new("host", 2222).with_ip("192.0.2.1");
        let cases = [
            ("[host]:2222", true),
            ("host", true),
            ("[192.0.2.1]:2222", true),
            ("192.0.2.1", true),
            ("*", true),
            ("other,[host]:22", false),
            ("!*host*,!*192.0.2.1*,*", false),
        ];
        for (hosts, want) in cases {
            let f = KnownHostsFile::parse("kh", format!("{hosts} {a}"));
            assert_eq!(names.wants(&f.entries()[0]), want, "{hosts}");
        }
        // With an alias only the alias is looked up.
        let alias = HostNames::new("host", 2222).with_host_key_alias("al");
        let f = KnownHostsFile::parse("kh", format!("host {a}\nal {a}"));
        let kept: Vec<bool> = f.entries().iter().map(|e| alias.wants(e)).collect();
        assert_eq!(kept, [false, true]);
    }
}
