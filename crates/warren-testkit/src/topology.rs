//! Jump-host topologies: a chain of network namespaces
//! host — bastion1 — bastion2 — … — target, one veth pair per adjacent pair,
//! each hop running its own [`Sshd`], all accepting one client key.
//!
//! Design choice: reachability is only ever between adjacent hops. Every
//! link is its own /30, no namespace has a route beyond its neighbours,
//! forwarding is off everywhere, and the host namespace gets an
//! `unreachable` route for the topology's whole /24 (so a stray connect
//! fails at once instead of leaking to the default gateway). The /24,
//! `10.X.Y.0/24`, is claimed with a lock file so parallel tests and test
//! processes never share one, and skips prefixes the host already routes.

use std::fmt::Write as _;
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;

use crate::netns::{Link, LinkEnd, Netns, ip, try_ip};
use crate::sshd::{Sshd, keygen, local_user};

/// Builds a [`Topology`].
pub struct TopologyBuilder {
    bastions: usize,
    sshd_config: Vec<String>,
}

impl TopologyBuilder {
    /// How many bastions sit between the host and the target (default 1).
    pub fn bastions(mut self, n: usize) -> Self {
        self.bastions = n;
        self
    }

    /// One `sshd_config` line for every hop's sshd (see `SshdBuilder::config`).
    pub fn sshd_config(mut self, line: impl Into<String>) -> Self {
        self.sshd_config.push(line.into());
        self
    }

    pub fn start(self) -> Topology {
        let hop_count = self.bastions + 1;
        assert!(hop_count <= 63, "a /24 holds at most 63 /30 links");
        let dir = tempfile::Builder::new()
            .prefix("warren-topology-")
            .tempdir()
            .expect("temp dir");
        // Declared first so that, should anything below panic, it drops
        // last: the host device and route go, then the block is released.
        let block = HostSide::claim();
        let names: Vec<String> = (1..=self.bastions)
            .map(|i| format!("bastion{i}"))
            .chain(std::iter::once("target".to_owned()))
            .collect();
        let namespaces: Vec<Netns> = names.iter().map(|_| Netns::new()).collect();
        let links = wire(&block, &namespaces);
        let client_key = keygen(dir.path(), "id_ed25519", "ed25519", "");
        let hops = names
            .into_iter()
            .zip(namespaces)
            .enumerate()
            .map(|(k, (name, netns))| {
                let addr = block.hop_addr(k);
                let mut builder = Sshd::builder()
                    .netns(&netns)
                    .listen(&addr.to_string())
                    .client_key(&client_key);
                for line in &self.sshd_config {
                    builder = builder.config(line.clone());
                }
                Hop {
                    name,
                    addr,
                    sshd: builder.start(),
                    netns,
                }
            })
            .collect();
        let topology = Topology {
            hops,
            links,
            client_key,
            host: block,
            dir,
        };
        topology.write_client_files();
        topology
    }
}

/// One hop of the chain: its namespace, its address facing the previous
/// hop (where its sshd listens, port 22) and its sshd.
pub struct Hop {
    name: String,
    addr: Ipv4Addr,
    sshd: Sshd,
    netns: Netns,
}

impl Hop {
    /// `bastion1`, `bastion2`, …, `target`: also its `Host` in the config.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// Where its sshd listens.
    pub fn ssh_addr(&self) -> SocketAddr {
        self.sshd.addr()
    }

    pub fn sshd(&self) -> &Sshd {
        &self.sshd
    }

    pub fn netns(&self) -> &Netns {
        &self.netns
    }
}

/// A running chain of namespaces; everything is torn down on `Drop`
/// (sshds killed, namespaces deleted, host device and route removed).
pub struct Topology {
    // Field order is drop order: sshds die before their namespaces go, and
    // the host side (device, route, block lock) goes last.
    hops: Vec<Hop>,
    links: Vec<Link>,
    client_key: PathBuf,
    host: HostSide,
    dir: TempDir,
}

impl Topology {
    pub fn builder() -> TopologyBuilder {
        TopologyBuilder {
            bastions: 1,
            sshd_config: Vec::new(),
        }
    }

    /// host — bastion1 — … — bastion`n` — target with default sshds.
    pub fn with_bastions(n: usize) -> Topology {
        Topology::builder().bastions(n).start()
    }

    /// Every hop in chain order (bastions, then the target).
    pub fn hops(&self) -> &[Hop] {
        &self.hops
    }

    /// The hop named `name`; panics if there is none.
    pub fn hop(&self, name: &str) -> &Hop {
        self.hops
            .iter()
            .find(|h| h.name == name)
            .unwrap_or_else(|| panic!("no hop {name:?} in this topology"))
    }

    pub fn bastions(&self) -> &[Hop] {
        &self.hops[..self.hops.len() - 1]
    }

    pub fn target(&self) -> &Hop {
        self.hops.last().expect("a topology has a target")
    }

    /// The link leading into hop `name` from the previous hop (or from the
    /// host namespace for `bastion1`): cut it with [`Link::cut`].
    pub fn link_to(&self, name: &str) -> &Link {
        let k = self
            .hops
            .iter()
            .position(|h| h.name == name)
            .unwrap_or_else(|| panic!("no hop {name:?} in this topology"));
        &self.links[k]
    }

    /// The host namespace's own address on the link to `bastion1`.
    pub fn host_addr(&self) -> Ipv4Addr {
        self.host.link_addrs(0).0
    }

    /// `bastion1,bastion2,…` for `ssh -J` / `ProxyJump`.
    pub fn jump_spec(&self) -> String {
        let names: Vec<&str> = self.bastions().iter().map(Hop::name).collect();
        names.join(",")
    }

    /// The client key every hop authorizes (ed25519, no passphrase).
    pub fn client_key(&self) -> &Path {
        &self.client_key
    }

    /// `known_hosts` with every hop's host key under its address.
    pub fn known_hosts(&self) -> PathBuf {
        self.dir.path().join("known_hosts")
    }

    /// A client config (`-F`) with one `Host` per hop (`bastion1`, …,
    /// `target`) pinned to its address, key and known_hosts, no agent, no
    /// prompts. No `ProxyJump` is set: say `-J` (or `jump_spec`) yourself.
    pub fn client_config(&self) -> PathBuf {
        self.dir.path().join("ssh_config")
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Every hop's sshd log, labelled, for failure messages.
    pub fn logs(&self) -> String {
        let mut all = String::new();
        for hop in &self.hops {
            writeln!(all, "--- {} sshd log ---\n{}", hop.name, hop.sshd.log()).expect("fmt");
        }
        all
    }

    /// Panics unless only adjacent hops can reach each other: the host
    /// namespace reaches `bastion1` but no hop beyond it, and no namespace
    /// reaches a hop two or more links away.
    pub fn assert_isolated(&self) {
        let timeout = Duration::from_secs(2);
        let first = self.hops[0].ssh_addr();
        assert!(
            TcpStream::connect_timeout(&first, timeout).is_ok(),
            "the host namespace cannot reach bastion1 at {first}"
        );
        for hop in &self.hops[1..] {
            assert_unreachable(hop.ssh_addr());
        }
        for (i, from) in self.hops.iter().enumerate() {
            for to in self.hops.iter().skip(i + 2) {
                assert!(
                    !from.netns.can_connect(to.ssh_addr(), timeout),
                    "{} reaches {} at {} directly, skipping the hops between",
                    from.name,
                    to.name,
                    to.ssh_addr()
                );
            }
        }
    }

    fn write_client_files(&self) {
        let known: String = self
            .hops
            .iter()
            .map(|h| h.sshd.known_hosts_lines())
            .collect();
        std::fs::write(self.known_hosts(), known).expect("known_hosts");
        let user = local_user();
        let mut config = String::new();
        for hop in &self.hops {
            write!(
                config,
                "Host {name}\n  HostName {ip}\n  Port {port}\n  User {user}\n  IdentityFile {key}\n  \
                 IdentitiesOnly yes\n  IdentityAgent none\n  BatchMode yes\n  \
                 UserKnownHostsFile {known}\n  GlobalKnownHostsFile /dev/null\n  \
                 StrictHostKeyChecking yes\n  ConnectTimeout 30\n",
                name = hop.name,
                ip = hop.addr,
                port = hop.sshd.port(),
                key = self.client_key.display(),
                known = self.known_hosts().display(),
            )
            .expect("fmt");
        }
        std::fs::write(self.client_config(), config).expect("ssh_config");
    }
}

/// Panics unless a TCP connect from the test process (the host namespace)
/// to `addr` fails within 2 s: the address must be reachable only by
/// hopping through a bastion.
pub fn assert_unreachable(addr: SocketAddr) {
    if let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
        panic!(
            "{addr} is directly reachable from the host namespace (local {:?})",
            s.local_addr()
        );
    }
}

/// Creates the veth pairs: host `wtkX-Y` <-> bastion1 `prev`, then each
/// hop's `next` <-> the following hop's `prev`, with their /30 addresses.
fn wire(block: &HostSide, namespaces: &[Netns]) -> Vec<Link> {
    let mut links = Vec::new();
    for (k, ns) in namespaces.iter().enumerate() {
        let (left_addr, right_addr) = block.link_addrs(k);
        let left = match k {
            0 => {
                ip(&[
                    "link",
                    "add",
                    &block.dev,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    "prev",
                    "netns",
                    ns.name(),
                ]);
                LinkEnd {
                    netns: None,
                    dev: block.dev.clone(),
                    addr: left_addr,
                }
            }
            _ => {
                let prev = &namespaces[k - 1];
                prev.ip(&[
                    "link",
                    "add",
                    "next",
                    "type",
                    "veth",
                    "peer",
                    "name",
                    "prev",
                    "netns",
                    ns.name(),
                ]);
                LinkEnd {
                    netns: Some(prev.clone()),
                    dev: "next".to_owned(),
                    addr: left_addr,
                }
            }
        };
        let right = LinkEnd {
            netns: Some(ns.clone()),
            dev: "prev".to_owned(),
            addr: right_addr,
        };
        address(&left);
        address(&right);
        links.push(Link { a: left, b: right });
    }
    links
}

fn address(end: &LinkEnd) {
    let cidr = format!("{}/30", end.addr);
    let add = ["addr", "add", cidr.as_str(), "dev", end.dev.as_str()];
    let up = ["link", "set", "dev", end.dev.as_str(), "up"];
    match &end.netns {
        Some(ns) => {
            ns.ip(&add);
            ns.ip(&up);
        }
        None => {
            ip(&add);
            ip(&up);
        }
    }
}

/// The topology's claim on `10.X.Y.0/24` in the host namespace: the lock
/// file, the host veth end and the `unreachable` route; released on `Drop`.
struct HostSide {
    octets: (u8, u8),
    dev: String,
    /// Held (flock) for the topology's life; the kernel drops it if the
    /// process dies, so a crashed test never leaks its block for good.
    _lock: File,
}

/// Second octets used for blocks: 10.20.0.0 – 10.219.255.0.
const FIRST_OCTET2: u32 = 20;
const BLOCKS: u32 = 200 * 256;

impl HostSide {
    fn claim() -> HostSide {
        let lock_dir = std::env::temp_dir().join("warren-testkit-netblocks");
        std::fs::create_dir_all(&lock_dir).expect("create the block lock dir");
        let routed = host_prefixes();
        let start = std::process::id().wrapping_mul(7919) % BLOCKS;
        for i in 0..BLOCKS {
            let b = (start + i) % BLOCKS;
            let octets = ((FIRST_OCTET2 + b / 256) as u8, (b % 256) as u8);
            let net = u32::from(Ipv4Addr::new(10, octets.0, octets.1, 0));
            if routed.iter().any(|&(p, len)| overlaps(p, len, net, 24)) {
                continue;
            }
            let path = lock_dir.join(format!("10.{}.{}.lock", octets.0, octets.1));
            let Ok(lock) = File::create(&path) else {
                continue;
            };
            if lock.try_lock().is_err() {
                continue;
            }
            let side = HostSide {
                octets,
                dev: format!("wtk{}-{}", octets.0, octets.1),
                _lock: lock,
            };
            // Leftovers of a process that died holding this block.
            side.remove_from_host();
            ip(&["route", "add", "unreachable", &side.net()]);
            return side;
        }
        panic!("no free 10.x.y.0/24 block for a topology (all locked or routed)");
    }

    fn net(&self) -> String {
        format!("10.{}.{}.0/24", self.octets.0, self.octets.1)
    }

    /// Link `k`'s two addresses: 10.X.Y.(4k+1) on the host side, +2 beyond.
    fn link_addrs(&self, k: usize) -> (Ipv4Addr, Ipv4Addr) {
        let base = 4 * k as u8;
        let (x, y) = self.octets;
        (
            Ipv4Addr::new(10, x, y, base + 1),
            Ipv4Addr::new(10, x, y, base + 2),
        )
    }

    /// Hop `k` listens on its address facing hop `k - 1`.
    fn hop_addr(&self, k: usize) -> Ipv4Addr {
        self.link_addrs(k).1
    }

    fn remove_from_host(&self) {
        let _ = try_ip(&["link", "del", &self.dev]);
        let _ = try_ip(&["route", "del", "unreachable", &self.net()]);
    }
}

impl Drop for HostSide {
    fn drop(&mut self) {
        self.remove_from_host();
    }
}

/// The IPv4 prefixes the host namespace routes, except our own blocks
/// (`unreachable 10.X.Y.0/24`, `wtk*` devices) and the default route.
fn host_prefixes() -> Vec<(u32, u8)> {
    let out = try_ip(&["-4", "route", "show", "table", "all"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.contains(" dev wtk") && !l.starts_with("unreachable 10."))
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let mut first = words.next()?;
            if matches!(
                first,
                "unreachable" | "blackhole" | "prohibit" | "local" | "broadcast"
            ) {
                first = words.next()?;
            }
            parse_prefix(first)
        })
        .collect()
}

fn parse_prefix(s: &str) -> Option<(u32, u8)> {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, l.parse().ok()?),
        None => (s, 32),
    };
    let addr: Ipv4Addr = addr.parse().ok()?;
    (len <= 32).then_some((u32::from(addr), len))
}

fn overlaps(a: u32, a_len: u8, b: u32, b_len: u8) -> bool {
    let len = a_len.min(b_len);
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    a & mask == b & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_overlap_when_the_shorter_one_covers_the_other() {
        let net = |s: &str| parse_prefix(s).unwrap();
        let cases = [
            ("10.0.0.0/8", "10.20.3.0/24", true),
            ("10.20.3.0/24", "10.20.3.0/24", true),
            ("10.20.3.128/25", "10.20.3.0/24", true),
            ("10.20.4.0/24", "10.20.3.0/24", false),
            ("192.0.2.0/24", "10.20.3.0/24", false),
            ("127.0.0.1", "10.20.3.0/24", false),
        ];
        for (a, b, want) in cases {
            let ((pa, la), (pb, lb)) = (net(a), net(b));
            assert_eq!(overlaps(pa, la, pb, lb), want, "{a} vs {b}");
        }
        assert_eq!(parse_prefix("default"), None);
    }
}
