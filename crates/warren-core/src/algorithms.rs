//! Algorithm lists: warren's defaults and the mapping of ssh_config names
//! onto russh's.
//!
//! The one choice to know: the cipher order depends on the CPU. With AES
//! instructions aes-gcm is 2-2.7x faster than chacha20-poly1305 here, so it
//! comes first; without them chacha20 does.

use std::borrow::Cow;

use russh::{Preferred, cipher, kex, keys::Algorithm, mac};

/// Whether this CPU has AES and carry-less multiply instructions.
pub fn cpu_has_aes() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("aes")
            && std::arch::is_x86_feature_detected!("pclmulqdq")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("aes")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

/// warren's default Ciphers, fastest first on this CPU.
pub fn default_ciphers() -> Vec<&'static str> {
    let gcm = ["aes256-gcm@openssh.com", "aes128-gcm@openssh.com"];
    let chacha = "chacha20-poly1305@openssh.com";
    let ctr = ["aes256-ctr", "aes192-ctr", "aes128-ctr"];
    let mut out = Vec::new();
    if cpu_has_aes() {
        out.extend(gcm);
        out.push(chacha);
    } else {
        out.push(chacha);
        out.extend(gcm);
    }
    out.extend(ctr);
    out
}

/// OpenSSH 9.2's default MACs without the UMACs: hmac-sha1 last, for old
/// servers that have nothing else.
pub const DEFAULT_MACS: &[&str] = &[
    "hmac-sha2-256-etm@openssh.com",
    "hmac-sha2-512-etm@openssh.com",
    "hmac-sha1-etm@openssh.com",
    "hmac-sha2-256",
    "hmac-sha2-512",
    "hmac-sha1",
];

/// OpenSSH 9.9's order: the post-quantum hybrids first (sntrup761 was
/// OpenSSH 9.0-9.8's first choice, and servers that allow only
/// post-quantum exchanges exist).
pub const DEFAULT_KEX: &[&str] = &[
    "mlkem768x25519-sha256",
    "sntrup761x25519-sha512",
    "sntrup761x25519-sha512@openssh.com",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "diffie-hellman-group-exchange-sha256",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512",
    "diffie-hellman-group14-sha256",
];

pub const DEFAULT_HOST_KEY: &[&str] = &[
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
    "rsa-sha2-256",
];

/// Algorithm choices for one connection, as ssh_config names.
#[derive(Debug, Clone)]
pub struct AlgorithmOptions {
    pub ciphers: Vec<String>,
    pub macs: Vec<String>,
    pub kex: Vec<String>,
    pub host_key: Vec<String>,
    pub compression: bool,
}

impl Default for AlgorithmOptions {
    fn default() -> Self {
        let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        AlgorithmOptions {
            ciphers: own(&default_ciphers()),
            macs: own(DEFAULT_MACS),
            kex: own(DEFAULT_KEX),
            host_key: own(DEFAULT_HOST_KEY),
            compression: false,
        }
    }
}

/// A list named in the config has no algorithm warren implements.
#[derive(Debug, thiserror::Error)]
#[error("no supported algorithm in {what} list \"{list}\"{notes} (warren supports: {supported})")]
pub struct UnsupportedAlgorithms {
    pub what: &'static str,
    pub list: String,
    /// Why the names asked for are missing, where warren leaves them out
    /// on purpose (`: 3des-cbc is not supported (...)`), else empty.
    pub notes: String,
    pub supported: String,
}

/// Algorithms OpenSSH 9.2 knows that warren does not implement, and why:
/// asked for, they are named as not supported rather than dropped
/// without a word.
pub fn not_supported(name: &str) -> Option<&'static str> {
    Some(match name {
        "ssh-dss" | "ssh-dss-cert-v01@openssh.com" => {
            "DSA is not supported (OpenSSH itself disabled DSA in 9.8 and removed it in 10.0)"
        }
        "3des-cbc" => "3des-cbc is not supported (a 64-bit block cipher, open to SWEET32)",
        "umac-64-etm@openssh.com"
        | "umac-128-etm@openssh.com"
        | "umac-64@openssh.com"
        | "umac-128@openssh.com" => "UMAC is not supported (no maintained Rust implementation)",
        "hmac-md5"
        | "hmac-md5-96"
        | "hmac-sha1-96"
        | "hmac-md5-etm@openssh.com"
        | "hmac-md5-96-etm@openssh.com"
        | "hmac-sha1-96-etm@openssh.com" => "truncated and MD5 MACs are not supported",
        _ => return None,
    })
}

impl AlgorithmOptions {
    /// Builds russh's preference lists; names russh does not know are
    /// dropped (OpenSSH's lists contain several), but an empty result is an
    /// error naming the list.
    pub fn to_preferred(&self) -> Result<Preferred, UnsupportedAlgorithms> {
        let mut kexes: Vec<kex::Name> = pick("KexAlgorithms", &self.kex, kex_names())?;
        // The extension markers are how russh signals ext-info and strict kex.
        kexes.extend([
            kex::EXTENSION_SUPPORT_AS_CLIENT,
            kex::EXTENSION_OPENSSH_STRICT_KEX_AS_CLIENT,
        ]);
        let key: Vec<Algorithm> = pick("HostKeyAlgorithms", &self.host_key, key_names())?;
        let compression: &'static [russh::compression::Name] = if self.compression {
            &[
                russh::compression::ZLIB,
                russh::compression::ZLIB_LEGACY,
                russh::compression::NONE,
            ]
        } else {
            &[russh::compression::NONE]
        };
        Ok(Preferred {
            kex: Cow::Owned(kexes),
            key: Cow::Owned(key),
            host_key_certificates: Cow::Borrowed(&[]),
            cipher: Cow::Owned(pick("Ciphers", &self.ciphers, cipher_names())?),
            mac: Cow::Owned(pick("MACs", &self.macs, mac_names())?),
            compression: Cow::Borrowed(compression),
        })
    }
}

fn pick<T: Clone>(
    what: &'static str,
    wanted: &[String],
    known: Vec<(&'static str, T)>,
) -> Result<Vec<T>, UnsupportedAlgorithms> {
    let out: Vec<T> = wanted
        .iter()
        .filter_map(|w| known.iter().find(|(n, _)| n == w).map(|(_, v)| v.clone()))
        .collect();
    // What was asked for and is left out on purpose is said, not dropped
    // silently (OpenSSH's default lists name some of these; only a name
    // the user wrote reaches here when it is the only one).
    let mut notes: Vec<&str> = wanted.iter().filter_map(|w| not_supported(w)).collect();
    notes.dedup();
    if out.is_empty() {
        return Err(UnsupportedAlgorithms {
            what,
            list: wanted.join(","),
            notes: if notes.is_empty() {
                String::new()
            } else {
                format!(": {}", notes.join("; "))
            },
            supported: known.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(","),
        });
    }
    Ok(out)
}

fn cipher_names() -> Vec<(&'static str, cipher::Name)> {
    [
        cipher::AES_256_GCM,
        cipher::AES_128_GCM,
        cipher::CHACHA20_POLY1305,
        cipher::AES_256_CTR,
        cipher::AES_192_CTR,
        cipher::AES_128_CTR,
        cipher::AES_256_CBC,
        cipher::AES_192_CBC,
        cipher::AES_128_CBC,
    ]
    .into_iter()
    .map(|n| (static_name(n.as_ref()), n))
    .collect()
}

fn mac_names() -> Vec<(&'static str, mac::Name)> {
    [
        mac::HMAC_SHA256_ETM,
        mac::HMAC_SHA512_ETM,
        mac::HMAC_SHA256,
        mac::HMAC_SHA512,
        mac::HMAC_SHA1_ETM,
        mac::HMAC_SHA1,
    ]
    .into_iter()
    .map(|n| (static_name(n.as_ref()), n))
    .collect()
}

fn kex_names() -> Vec<(&'static str, kex::Name)> {
    kex::ALL_KEX_ALGORITHMS
        .iter()
        .map(|n| (static_name(n.as_ref()), **n))
        .filter(|(n, _)| !n.starts_with("ext-info") && !n.starts_with("kex-strict"))
        .collect()
}

fn key_names() -> Vec<(&'static str, Algorithm)> {
    use russh::keys::{EcdsaCurve, HashAlg};
    vec![
        ("ssh-ed25519", Algorithm::Ed25519),
        (
            "ecdsa-sha2-nistp256",
            Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP256,
            },
        ),
        (
            "ecdsa-sha2-nistp384",
            Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP384,
            },
        ),
        (
            "ecdsa-sha2-nistp521",
            Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP521,
            },
        ),
        (
            "rsa-sha2-512",
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha512),
            },
        ),
        (
            "rsa-sha2-256",
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha256),
            },
        ),
        ("ssh-rsa", Algorithm::Rsa { hash: None }),
    ]
}

/// The ciphers warren implements (`ssh -Q cipher`).
pub fn supported_ciphers() -> Vec<&'static str> {
    cipher_names().into_iter().map(|(n, _)| n).collect()
}

/// The authenticated (AEAD) ciphers among them (`ssh -Q cipher-auth`).
pub fn supported_aead_ciphers() -> Vec<&'static str> {
    supported_ciphers()
        .into_iter()
        .filter(|n| n.contains("-gcm@") || n.starts_with("chacha20-poly1305"))
        .collect()
}

/// The MACs warren implements (`ssh -Q mac`).
pub fn supported_macs() -> Vec<&'static str> {
    mac_names().into_iter().map(|(n, _)| n).collect()
}

/// The key exchange methods warren implements (`ssh -Q kex`); `none` is
/// russh's internal placeholder and not offered.
pub fn supported_kex() -> Vec<&'static str> {
    kex_names()
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| !n.is_empty() && *n != "none")
        .collect()
}

/// Key types warren reads and authenticates with (`ssh -Q key-plain`).
pub const KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
];

/// Certificate types warren authenticates with (`ssh -Q key-cert`).
pub const CERT_TYPES: &[&str] = &[
    "ssh-ed25519-cert-v01@openssh.com",
    "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "ecdsa-sha2-nistp384-cert-v01@openssh.com",
    "ecdsa-sha2-nistp521-cert-v01@openssh.com",
    "ssh-rsa-cert-v01@openssh.com",
];

/// Signature algorithms warren signs and verifies with (`ssh -Q sig`).
pub fn supported_signatures() -> Vec<&'static str> {
    key_names().into_iter().map(|(n, _)| n).collect()
}

/// russh's names are `&'static str` inside; this keeps the lookup tables
/// free of lifetimes without leaking.
fn static_name(s: &str) -> &'static str {
    const ALL: &[&str] = &[
        "aes256-gcm@openssh.com",
        "aes128-gcm@openssh.com",
        "chacha20-poly1305@openssh.com",
        "aes256-ctr",
        "aes192-ctr",
        "aes128-ctr",
        "aes256-cbc",
        "aes192-cbc",
        "aes128-cbc",
        "3des-cbc",
        "hmac-sha2-256-etm@openssh.com",
        "hmac-sha2-512-etm@openssh.com",
        "hmac-sha2-256",
        "hmac-sha2-512",
        "hmac-sha1-etm@openssh.com",
        "hmac-sha1",
        "mlkem768x25519-sha256",
        "sntrup761x25519-sha512",
        "sntrup761x25519-sha512@openssh.com",
        "curve25519-sha256",
        "curve25519-sha256@libssh.org",
        "diffie-hellman-group-exchange-sha256",
        "diffie-hellman-group-exchange-sha1",
        "diffie-hellman-group18-sha512",
        "diffie-hellman-group17-sha512",
        "diffie-hellman-group16-sha512",
        "diffie-hellman-group15-sha512",
        "diffie-hellman-group14-sha256",
        "diffie-hellman-group14-sha1",
        "diffie-hellman-group1-sha1",
        "ecdh-sha2-nistp256",
        "ecdh-sha2-nistp384",
        "ecdh-sha2-nistp521",
        "none",
    ];
    ALL.iter().find(|n| **n == s).copied().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_map_onto_russh() {
        let p = AlgorithmOptions::default()
            .to_preferred()
            .expect("defaults are supported");
        assert_eq!(p.cipher.len(), default_ciphers().len());
        assert_eq!(p.mac.len(), DEFAULT_MACS.len());
        assert_eq!(p.key.len(), DEFAULT_HOST_KEY.len());
    }

    #[test]
    fn cipher_order_follows_cpu() {
        let first = default_ciphers()[0];
        if cpu_has_aes() {
            assert_eq!(first, "aes256-gcm@openssh.com");
        } else {
            assert_eq!(first, "chacha20-poly1305@openssh.com");
        }
    }

    #[test]
    fn unknown_names_are_dropped_but_empty_is_an_error() {
        let mut o = AlgorithmOptions {
            ciphers: vec!["nope".into(), "aes128-ctr".into()],
            ..Default::default()
        };
        assert_eq!(o.to_preferred().expect("one known").cipher.len(), 1);
        o.ciphers = vec!["nope".into()];
        let err = o.to_preferred().expect_err("none known").to_string();
        assert!(err.contains("Ciphers") && err.contains("nope"), "{err}");
    }

    /// 3des-cbc and ssh-dss alone were refused as "no supported algorithm"
    /// without saying they are deliberately not supported.
    #[test]
    fn three_des_and_dsa_are_named_as_not_supported() {
        let o = AlgorithmOptions {
            ciphers: vec!["3des-cbc".into()],
            ..Default::default()
        };
        let err = o.to_preferred().expect_err("3des").to_string();
        assert!(err.contains("3des-cbc is not supported"), "{err}");
        let o = AlgorithmOptions {
            host_key: vec!["ssh-dss".into()],
            ..Default::default()
        };
        let err = o.to_preferred().expect_err("dsa").to_string();
        assert!(err.contains("DSA is not supported"), "{err}");
    }

    /// sntrup761x25519-sha512@openssh.com had no russh counterpart: it was
    /// dropped from every list.
    #[test]
    fn sntrup761_maps_onto_russh() {
        let o = AlgorithmOptions {
            kex: vec!["sntrup761x25519-sha512@openssh.com".into()],
            ..Default::default()
        };
        let kex = o.to_preferred().expect("sntrup761").kex;
        assert_eq!(kex[0].as_ref(), "sntrup761x25519-sha512@openssh.com");
    }
}
