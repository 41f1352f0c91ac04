//! Algorithm lists (Ciphers, MACs, KexAlgorithms, ...) and OpenSSH's
//! `+`/`-`/`^` modifiers (`kex_assemble_names`).
//!
//! Design choice: the lists are an input. The caller (warren's transport)
//! says what it supports and prefers; this crate only validates names and
//! applies the modifiers, so `-G` prints warren's real lists.
//! [`Algorithms::openssh`] gives Debian OpenSSH 9.2's lists, for tests and
//! for comparing with `ssh -G`.

use crate::pattern::{ListMatch, match_pattern, match_pattern_list};

/// One family of algorithms: what is on by default, and all that exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlgorithmList {
    /// The default preference order.
    pub default: Vec<String>,
    /// Every supported name (what `+` and patterns may select from).
    pub supported: Vec<String>,
}

/// Every algorithm family `ssh -G` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Algorithms {
    /// Ciphers (`-c`).
    pub ciphers: AlgorithmList,
    /// MACs (`-m`).
    pub macs: AlgorithmList,
    /// KexAlgorithms.
    pub kex: AlgorithmList,
    /// HostKeyAlgorithms.
    pub host_key: AlgorithmList,
    /// HostbasedAcceptedAlgorithms.
    pub hostbased: AlgorithmList,
    /// PubkeyAcceptedAlgorithms.
    pub pubkey: AlgorithmList,
    /// CASignatureAlgorithms.
    pub ca_signature: AlgorithmList,
    /// Debian's GSSAPIKexAlgorithms.
    pub gssapi_kex: AlgorithmList,
}

fn list(names: &str) -> Vec<String> {
    names.split(',').map(str::to_owned).collect()
}

fn family(default: &str, supported: &str) -> AlgorithmList {
    AlgorithmList {
        default: list(default),
        supported: list(supported),
    }
}

const CIPHERS_DEFAULT: &str = "chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr,aes128-gcm@openssh.com,aes256-gcm@openssh.com";
const CIPHERS_ALL: &str = "3des-cbc,aes128-cbc,aes192-cbc,aes256-cbc,aes128-ctr,aes192-ctr,aes256-ctr,aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com";
const MACS_DEFAULT: &str = "umac-64-etm@openssh.com,umac-128-etm@openssh.com,hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,hmac-sha1-etm@openssh.com,umac-64@openssh.com,umac-128@openssh.com,hmac-sha2-256,hmac-sha2-512,hmac-sha1";
const MACS_ALL: &str = "hmac-sha1,hmac-sha1-96,hmac-sha2-256,hmac-sha2-512,hmac-md5,hmac-md5-96,umac-64@openssh.com,umac-128@openssh.com,hmac-sha1-etm@openssh.com,hmac-sha1-96-etm@openssh.com,hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,hmac-md5-etm@openssh.com,hmac-md5-96-etm@openssh.com,umac-64-etm@openssh.com,umac-128-etm@openssh.com";
const KEX_DEFAULT: &str = "sntrup761x25519-sha512,sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,diffie-hellman-group-exchange-sha256,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,diffie-hellman-group14-sha256";
const KEX_ALL: &str = "diffie-hellman-group1-sha1,diffie-hellman-group14-sha1,diffie-hellman-group14-sha256,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,diffie-hellman-group-exchange-sha1,diffie-hellman-group-exchange-sha256,ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,curve25519-sha256,curve25519-sha256@libssh.org,sntrup761x25519-sha512,sntrup761x25519-sha512@openssh.com";
const KEY_DEFAULT: &str = "ssh-ed25519-cert-v01@openssh.com,ecdsa-sha2-nistp256-cert-v01@openssh.com,ecdsa-sha2-nistp384-cert-v01@openssh.com,ecdsa-sha2-nistp521-cert-v01@openssh.com,sk-ssh-ed25519-cert-v01@openssh.com,sk-ecdsa-sha2-nistp256-cert-v01@openssh.com,rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-256-cert-v01@openssh.com,ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,sk-ssh-ed25519@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com,rsa-sha2-512,rsa-sha2-256";
const KEY_ALL: &str = "ssh-ed25519,ssh-ed25519-cert-v01@openssh.com,sk-ssh-ed25519@openssh.com,sk-ssh-ed25519-cert-v01@openssh.com,ecdsa-sha2-nistp256,ecdsa-sha2-nistp256-cert-v01@openssh.com,ecdsa-sha2-nistp384,ecdsa-sha2-nistp384-cert-v01@openssh.com,ecdsa-sha2-nistp521,ecdsa-sha2-nistp521-cert-v01@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com,sk-ecdsa-sha2-nistp256-cert-v01@openssh.com,webauthn-sk-ecdsa-sha2-nistp256@openssh.com,ssh-dss,ssh-dss-cert-v01@openssh.com,ssh-rsa,ssh-rsa-cert-v01@openssh.com,rsa-sha2-256,rsa-sha2-256-cert-v01@openssh.com,rsa-sha2-512,rsa-sha2-512-cert-v01@openssh.com";
const SIG_DEFAULT: &str = "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,sk-ssh-ed25519@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com,rsa-sha2-512,rsa-sha2-256";
const SIG_ALL: &str = "ssh-ed25519,sk-ssh-ed25519@openssh.com,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,sk-ecdsa-sha2-nistp256@openssh.com,webauthn-sk-ecdsa-sha2-nistp256@openssh.com,ssh-dss,ssh-rsa,rsa-sha2-256,rsa-sha2-512";
const GSS_KEX_DEFAULT: &str = "gss-group14-sha256-,gss-group16-sha512-,gss-nistp256-sha256-,gss-curve25519-sha256-,gss-group14-sha1-,gss-gex-sha1-";
const GSS_KEX_ALL: &str = "gss-gex-sha1-,gss-group1-sha1-,gss-group14-sha1-,gss-group14-sha256-,gss-group16-sha512-,gss-nistp256-sha256-,gss-curve25519-sha256-";

impl Algorithms {
    /// Debian OpenSSH 9.2's lists (`ssh -Q` and its compiled-in defaults).
    pub fn openssh() -> Self {
        Self {
            ciphers: family(CIPHERS_DEFAULT, CIPHERS_ALL),
            macs: family(MACS_DEFAULT, MACS_ALL),
            kex: family(KEX_DEFAULT, KEX_ALL),
            host_key: family(KEY_DEFAULT, KEY_ALL),
            hostbased: family(KEY_DEFAULT, KEY_ALL),
            pubkey: family(KEY_DEFAULT, KEY_ALL),
            ca_signature: family(SIG_DEFAULT, SIG_ALL),
            gssapi_kex: family(GSS_KEX_DEFAULT, GSS_KEX_ALL),
        }
    }
}

impl AlgorithmList {
    /// Whether a configured value names only known algorithms (OpenSSH's
    /// `ciphers_valid` & co.). A leading `+` or `^` is skipped; a `-` list is
    /// not checked, as in OpenSSH. With `wildcards`, patterns are allowed
    /// (key type lists) if they match something.
    pub(crate) fn is_valid_spec(&self, spec: &str, wildcards: bool) -> bool {
        if spec.starts_with('-') {
            return true;
        }
        let names = spec.strip_prefix(['+', '^']).unwrap_or(spec);
        !names.is_empty() && names.split(',').all(|name| self.is_known(name, wildcards))
    }

    fn is_known(&self, name: &str, wildcards: bool) -> bool {
        if wildcards && name.contains(['*', '?']) {
            return self.supported.iter().any(|s| match_pattern(s, name));
        }
        self.supported.iter().any(|s| s == name)
    }

    /// OpenSSH's `kex_assemble_names`: the effective list for a configured
    /// value (`None` means the default). `None` on an empty result or a
    /// negated pattern in a positive list.
    pub(crate) fn assemble(&self, spec: Option<&str>) -> Option<Vec<String>> {
        let spec = match spec {
            None | Some("") => return Some(self.default.clone()),
            Some(spec) => spec,
        };
        let patterns: Vec<String> = if let Some(add) = spec.strip_prefix('+') {
            cat(&self.default, &list(add))
        } else if let Some(remove) = spec.strip_prefix('-') {
            let kept = self
                .default
                .iter()
                .filter(|n| match_pattern_list(n, remove, false) != ListMatch::Positive);
            return Some(kept.cloned().collect());
        } else if let Some(first) = spec.strip_prefix('^') {
            cat(&list(first), &self.default)
        } else {
            list(spec)
        };
        let mut out = Vec::new();
        for pattern in &patterns {
            if pattern.starts_with('!') {
                return None;
            }
            let matching: Vec<String> = self
                .supported
                .iter()
                .filter(|n| match_pattern_list(n, pattern, false) == ListMatch::Positive)
                .cloned()
                .collect();
            out = cat(&out, &matching);
        }
        (!out.is_empty()).then_some(out)
    }
}

/// `kex_names_cat`: `a` then the names of `b` not already present.
fn cat(a: &[String], b: &[String]) -> Vec<String> {
    let mut out = a.to_vec();
    for name in b {
        if !name.is_empty() && !out.contains(name) {
            out.push(name.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modifiers_like_openssh() {
        let a = Algorithms::openssh();
        let ciphers = |spec: &str| a.ciphers.assemble(Some(spec)).map(|v| v.join(","));
        assert_eq!(
            ciphers("+aes128-cbc").as_deref(),
            Some(&*format!("{CIPHERS_DEFAULT},aes128-cbc"))
        );
        assert_eq!(
            ciphers("-chacha*").as_deref(),
            Some("aes128-ctr,aes192-ctr,aes256-ctr,aes128-gcm@openssh.com,aes256-gcm@openssh.com")
        );
        assert_eq!(
            ciphers("^aes256-gcm@openssh.com").as_deref(),
            Some(
                "aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr,aes128-gcm@openssh.com"
            )
        );
        assert_eq!(
            ciphers("aes*-ctr").as_deref(),
            Some("aes128-ctr,aes192-ctr,aes256-ctr")
        );
        assert_eq!(ciphers("nothing*"), None);
        assert_eq!(
            a.host_key
                .assemble(Some("ssh-ed25519*"))
                .map(|v| v.join(","))
                .as_deref(),
            Some("ssh-ed25519,ssh-ed25519-cert-v01@openssh.com")
        );
    }

    #[test]
    fn validation() {
        let a = Algorithms::openssh();
        assert!(a.ciphers.is_valid_spec("aes128-ctr,aes256-ctr", false));
        assert!(a.ciphers.is_valid_spec("-whatever", false));
        assert!(a.ciphers.is_valid_spec("+aes128-cbc", false));
        assert!(!a.ciphers.is_valid_spec("aes*", false));
        assert!(!a.ciphers.is_valid_spec("rot13", false));
        assert!(a.host_key.is_valid_spec("ssh-ed25519*", true));
    }
}
