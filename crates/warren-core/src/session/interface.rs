//! BindInterface (`-B`): the connection's source address is an address of
//! the named interface, of the target's family, picked as OpenSSH's
//! `check_ifaddrs` picks it.
//!
//! Design choice: bind to the interface's address rather than
//! SO_BINDTODEVICE, which needs privileges; OpenSSH does the same.

use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};

use nix::ifaddrs::getifaddrs;
use nix::net::if_::InterfaceFlags;

/// The address (port 0) to bind before connecting to `target` from
/// `interface`.
pub(super) fn source_address(interface: &str, target: SocketAddr) -> std::io::Result<SocketAddr> {
    let addrs =
        getifaddrs().map_err(|e| std::io::Error::other(format!("getifaddrs: {interface}: {e}")))?;
    let candidates: Vec<SocketAddr> = addrs
        .filter(|a| a.interface_name == interface && a.flags.contains(InterfaceFlags::IFF_UP))
        .filter_map(|a| {
            let addr = a.address?;
            if let Some(v4) = addr.as_sockaddr_in() {
                return Some(SocketAddr::new(IpAddr::V4(v4.ip()), 0));
            }
            let v6 = addr.as_sockaddr_in6()?;
            Some(SocketAddr::V6(SocketAddrV6::new(
                v6.ip(),
                0,
                0,
                v6.scope_id(),
            )))
        })
        .collect();
    pick(&candidates, target).ok_or_else(|| {
        std::io::Error::other(format!(
            "getifaddrs: {}: no suitable addresses",
            warren_wire::escape(interface.as_bytes())
        ))
    })
}

/// The first address of the target's family; for IPv6 a global one before
/// any link-local or loopback address.
fn pick(candidates: &[SocketAddr], target: SocketAddr) -> Option<SocketAddr> {
    let same_family = || {
        candidates
            .iter()
            .copied()
            .filter(move |a| a.is_ipv4() == target.is_ipv4())
    };
    same_family()
        .find(|a| match a.ip() {
            IpAddr::V4(_) => true,
            IpAddr::V6(ip) => !is_local(&ip),
        })
        .or_else(|| same_family().next())
}

fn is_local(ip: &Ipv6Addr) -> bool {
    ip.is_loopback() || ip.is_unicast_link_local()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn picks_the_targets_family_and_global_v6_first() {
        let list = [
            sa("[fe80::1]:0"),
            sa("10.0.0.2:0"),
            sa("[2001:db8::5]:0"),
            sa("10.0.0.3:0"),
        ];
        assert_eq!(pick(&list, sa("10.1.1.1:22")), Some(sa("10.0.0.2:0")));
        assert_eq!(
            pick(&list, sa("[2001:db8::1]:22")),
            Some(sa("[2001:db8::5]:0"))
        );
        assert_eq!(
            pick(&list[..1], sa("[fe80::2]:22")),
            Some(sa("[fe80::1]:0"))
        );
        assert_eq!(pick(&list[..1], sa("10.1.1.1:22")), None);
    }

    #[test]
    fn loopback_has_an_address_and_a_missing_interface_is_an_error() {
        // Catches: -B ignored (rejected as unsupported) or lo not found.
        let lo = source_address("lo", sa("127.0.0.1:22")).expect("lo has 127.0.0.1");
        assert!(lo.ip().is_loopback(), "{lo}");
        let err = source_address("warren-no-such0", sa("127.0.0.1:22")).expect_err("missing");
        assert!(err.to_string().contains("no suitable addresses"), "{err}");
    }
}
