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
    /// Host as typed (after canonicalisation; OpenSSH lowercases it) and
    /// port. Port 22 or 0 means "no port suffix".
    pub fn new(hostname: &str, port: u16) -> Self {
        Self {
            hostname: hostname.to_owned(),
            port,
            alias: None,
            ip: None,
        }
    }

    /// `HostKeyAlias`: looked up verbatim, without any port suffix.
    pub fn with_host_key_alias(mut self, alias: &str) -> Self {
        self.alias = Some(alias.to_owned());
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

    /// Every key the caller would revoke-check a certificate's CA against
    /// is covered by [`KnownHosts::check`]; this lists the CA keys trusted
    /// for the host (`@cert-authority` lines matching [`HostNames::host`]).
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
