//! What warren does with each keyword `ssh -G` prints: acted on, refused
//! at connect time when set to something warren does not do, or without
//! effect in warren (and why). No keyword that changes ssh's behaviour is
//! accepted and then ignored.
//!
//! Design choice: `-G` prints every keyword whatever its status (it
//! reports the configuration, as ssh's does); the refusal comes from
//! [`HostConfig::unsupported`] when a connection is about to be made, so a
//! user's `~/.ssh/config` that sets, say, `ForwardX11 yes` for one host
//! still works for every other host.

use super::HostConfig;
use crate::values::{Tunnel, YesNoAsk};

/// What warren does with a keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// Acted on as ssh does.
    Implemented,
    /// Refused at connect time when set to a value that needs what warren
    /// does not implement (the string says which values).
    RefusedWhen(&'static str),
    /// Never changes what warren does, and why (it only matters together
    /// with a refused keyword, or for output warren does not produce).
    NoEffect(&'static str),
    /// Not acted on; left listed (the string says what is missing).
    Missing(&'static str),
}

use Support::{Implemented as Yes, Missing, NoEffect, RefusedWhen};

/// Every keyword of OpenSSH 9.2's `ssh -G` (those printed only when set
/// included), by its `-G` name, and what warren does with it.
pub const KEYWORDS: &[(&str, Support)] = &[
    ("addkeystoagent", Yes),
    ("addressfamily", Yes),
    ("batchmode", Yes),
    ("bindaddress", Yes),
    ("bindinterface", Yes),
    ("canonicaldomains", Yes),
    ("canonicalizefallbacklocal", Yes),
    ("canonicalizehostname", Yes),
    ("canonicalizemaxdots", Yes),
    ("canonicalizepermittedcnames", Yes),
    ("casignaturealgorithms", Yes),
    ("certificatefile", Yes),
    ("checkhostip", Yes),
    ("ciphers", Yes),
    ("clearallforwardings", Yes),
    ("compression", Yes),
    ("connectionattempts", Yes),
    ("connecttimeout", Yes),
    ("controlmaster", Yes),
    ("controlpath", Yes),
    ("controlpersist", Yes),
    ("dynamicforward", Yes),
    (
        "enableescapecommandline",
        NoEffect("~C is always available in warren (OpenSSH 9.2 turns it off for its sandbox)"),
    ),
    (
        "enablesshkeysign",
        NoEffect("only for HostbasedAuthentication, refused"),
    ),
    ("escapechar", Yes),
    ("exitonforwardfailure", Yes),
    (
        "fingerprinthash",
        RefusedWhen("md5 (warren shows SHA256 fingerprints)"),
    ),
    ("forkafterauthentication", Yes),
    ("forwardagent", Yes),
    ("forwardx11", Yes),
    ("forwardx11timeout", Yes),
    ("forwardx11trusted", Yes),
    ("gatewayports", Yes),
    ("globalknownhostsfile", Yes),
    (
        "gssapiauthentication",
        NoEffect(
            "skipped, said at -v, as ssh skips it without Kerberos credentials (Debian's ssh_config sets it)",
        ),
    ),
    ("gssapiclientidentity", NoEffect("only for GSSAPI, skipped")),
    (
        "gssapidelegatecredentials",
        NoEffect("only for GSSAPI, skipped"),
    ),
    (
        "gssapikexalgorithms",
        NoEffect("only for GSSAPIKeyExchange, skipped"),
    ),
    (
        "gssapikeyexchange",
        NoEffect("skipped, said at -v, as GSSAPIAuthentication"),
    ),
    (
        "gssapirenewalforcesrekey",
        NoEffect("only for GSSAPI, skipped"),
    ),
    ("gssapiserveridentity", NoEffect("only for GSSAPI, skipped")),
    ("gssapitrustdns", NoEffect("only for GSSAPI, skipped")),
    ("hashknownhosts", Yes),
    ("host", Yes),
    (
        "hostbasedacceptedalgorithms",
        NoEffect("only for HostbasedAuthentication, refused"),
    ),
    ("hostbasedauthentication", RefusedWhen("yes")),
    ("hostkeyalgorithms", Yes),
    ("hostkeyalias", Yes),
    ("hostname", Yes),
    ("identitiesonly", Yes),
    ("identityagent", Yes),
    ("identityfile", Yes),
    ("ignoreunknown", Yes),
    (
        "ipqos",
        RefusedWhen("anything but none (warren does not mark packets)"),
    ),
    ("kbdinteractiveauthentication", Yes),
    ("kbdinteractivedevices", RefusedWhen("set")),
    ("kexalgorithms", Yes),
    ("knownhostscommand", Yes),
    ("localcommand", Yes),
    ("localforward", Yes),
    ("loglevel", Yes),
    ("logverbose", RefusedWhen("set")),
    ("macs", Yes),
    ("nohostauthenticationforlocalhost", RefusedWhen("yes")),
    ("numberofpasswordprompts", Yes),
    ("passwordauthentication", Yes),
    ("permitlocalcommand", Yes),
    ("permitremoteopen", Yes),
    ("pkcs11provider", RefusedWhen("set")),
    ("port", Yes),
    ("preferredauthentications", Yes),
    ("proxycommand", Yes),
    ("proxyjump", Yes),
    ("proxyusefdpass", RefusedWhen("yes")),
    ("pubkeyacceptedalgorithms", Yes),
    ("pubkeyauthentication", Yes),
    ("rekeylimit", Yes),
    ("remotecommand", Yes),
    ("remoteforward", Yes),
    ("requesttty", Yes),
    (
        "requiredrsasize",
        Missing("host keys: refused as ssh does; user keys: not checked (keys/)"),
    ),
    ("revokedhostkeys", Yes),
    ("securitykeyprovider", RefusedWhen("anything but internal")),
    ("sendenv", Yes),
    ("serveralivecountmax", Yes),
    ("serveraliveinterval", Yes),
    ("sessiontype", Yes),
    ("setenv", Yes),
    ("stdinnull", Yes),
    ("streamlocalbindmask", Yes),
    ("streamlocalbindunlink", Yes),
    ("stricthostkeychecking", Yes),
    (
        "syslogfacility",
        NoEffect("ssh logs to syslog only with -y, which warren does not take"),
    ),
    ("tcpkeepalive", Yes),
    ("tunnel", RefusedWhen("yes, point-to-point or ethernet")),
    ("tunneldevice", NoEffect("only for Tunnel, refused")),
    ("updatehostkeys", Yes),
    ("user", Yes),
    ("userknownhostsfile", Yes),
    (
        "verifyhostkeydns",
        RefusedWhen("yes or ask (no SSHFP lookups)"),
    ),
    ("visualhostkey", Yes),
    ("xauthlocation", Yes),
];

/// The keywords' usual spelling, for messages.
fn spelled(keyword: &str) -> &'static str {
    match keyword {
        "fingerprinthash" => "FingerprintHash",
        "hostbasedauthentication" => "HostbasedAuthentication",
        "ipqos" => "IPQoS",
        "kbdinteractivedevices" => "KbdInteractiveDevices",
        "logverbose" => "LogVerbose",
        "nohostauthenticationforlocalhost" => "NoHostAuthenticationForLocalhost",
        "pkcs11provider" => "PKCS11Provider",
        "proxyusefdpass" => "ProxyUseFdpass",
        "securitykeyprovider" => "SecurityKeyProvider",
        "tunnel" => "Tunnel",
        "verifyhostkeydns" => "VerifyHostKeyDNS",
        _ => "",
    }
}

/// `IPQoS none`: both values `i32::MAX`.
const IPQOS_NONE: (i32, i32) = (i32::MAX, i32::MAX);

impl HostConfig {
    /// GSSAPIAuthentication or GSSAPIKeyExchange yes: warren skips them
    /// (as ssh does without Kerberos credentials) and says so at -v.
    pub fn gssapi_requested(&self) -> bool {
        self.gssapi_authentication() || self.opts.gss_keyex == Some(true)
    }

    /// The keywords set to something warren does not do (see
    /// [`KEYWORDS`]), by their usual spelling; a connection is refused
    /// with "KEYWORD is not supported" while any is.
    pub fn unsupported(&self) -> Vec<&'static str> {
        let o = &self.opts;
        let set: [(&str, bool); 11] = [
            (
                "fingerprinthash",
                self.fingerprint_hash().eq_ignore_ascii_case("md5"),
            ),
            ("hostbasedauthentication", self.hostbased_authentication()),
            ("ipqos", o.ip_qos.is_some_and(|q| q != IPQOS_NONE)),
            ("kbdinteractivedevices", o.kbd_interactive_devices.is_some()),
            ("logverbose", !o.log_verbose.is_empty()),
            (
                "nohostauthenticationforlocalhost",
                self.no_host_authentication_for_localhost(),
            ),
            ("pkcs11provider", o.pkcs11_provider.is_some()),
            ("proxyusefdpass", self.proxy_use_fdpass()),
            (
                "securitykeyprovider",
                o.sk_provider.as_deref().is_some_and(|p| p != "internal"),
            ),
            ("tunnel", self.tunnel() != Tunnel::No),
            (
                "verifyhostkeydns",
                self.verify_host_key_dns() != YesNoAsk::No,
            ),
        ];
        set.into_iter()
            .filter(|(_, on)| *on)
            .map(|(k, _)| spelled(k))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every keyword `ssh -G` prints for a bare host under Debian's
    /// OpenSSH 9.2 (with `-F /dev/null`), and those it prints only when
    /// set, has a row.
    #[test]
    fn every_keyword_ssh_g_prints_has_a_status() {
        let printed = "addkeystoagent addressfamily batchmode canonicaldomains \
            canonicalizefallbacklocal canonicalizehostname canonicalizemaxdots \
            canonicalizepermittedcnames casignaturealgorithms checkhostip ciphers \
            clearallforwardings compression connectionattempts connecttimeout controlmaster \
            controlpersist enableescapecommandline enablesshkeysign escapechar \
            exitonforwardfailure fingerprinthash forkafterauthentication forwardagent \
            forwardx11 forwardx11timeout forwardx11trusted gatewayports globalknownhostsfile \
            gssapiauthentication gssapidelegatecredentials gssapikexalgorithms \
            gssapikeyexchange gssapirenewalforcesrekey gssapitrustdns hashknownhosts host \
            hostbasedacceptedalgorithms hostbasedauthentication hostkeyalgorithms hostname \
            identitiesonly identityfile ipqos kbdinteractiveauthentication kexalgorithms \
            loglevel logverbose macs nohostauthenticationforlocalhost numberofpasswordprompts \
            passwordauthentication permitlocalcommand permitremoteopen port proxyusefdpass \
            pubkeyacceptedalgorithms pubkeyauthentication rekeylimit requesttty \
            requiredrsasize securitykeyprovider serveralivecountmax serveraliveinterval \
            sessiontype stdinnull streamlocalbindmask streamlocalbindunlink \
            stricthostkeychecking syslogfacility tcpkeepalive tunnel tunneldevice \
            updatehostkeys user userknownhostsfile verifyhostkeydns visualhostkey \
            xauthlocation \
            bindaddress bindinterface certificatefile controlpath dynamicforward \
            gssapiclientidentity gssapiserveridentity hostkeyalias identityagent \
            ignoreunknown knownhostscommand localcommand localforward pkcs11provider \
            proxycommand proxyjump remotecommand remoteforward revokedhostkeys sendenv \
            setenv kbdinteractivedevices";
        let missing: Vec<&str> = printed
            .split_whitespace()
            .filter(|k| !KEYWORDS.iter().any(|(name, _)| name == k))
            .collect();
        assert!(missing.is_empty(), "no status for {missing:?}");
        for (name, support) in KEYWORDS {
            if matches!(support, RefusedWhen(_)) {
                assert!(!spelled(name).is_empty(), "{name} has no spelling");
            }
        }
    }
}
