//! Public host keys as SSH wire blobs, with no crypto library.
//!
//! A [`HostKey`] is the key type name plus the blob that known_hosts stores
//! in base64. Equality of keys is equality of blobs; the one place OpenSSH
//! compares *public material* instead (`sshkey_equal_public`, used for
//! `@revoked` and CA matching) is served by [`HostKey::plain_blob`], which
//! strips a certificate down to the key it certifies.

use base64ct::{Base64, Encoding};

use warren_wire::wire::Reader;

use crate::error::ParseError;
use crate::line::escaped_prefix;

/// Plain key types OpenSSH 9.2 knows, with how many wire strings follow the
/// type name in the public blob.
const PLAIN_TYPES: &[(&str, usize)] = &[
    ("ssh-rsa", 2),
    ("ssh-dss", 4),
    ("ecdsa-sha2-nistp256", 2),
    ("ecdsa-sha2-nistp384", 2),
    ("ecdsa-sha2-nistp521", 2),
    ("ssh-ed25519", 1),
    ("sk-ecdsa-sha2-nistp256@openssh.com", 3),
    ("sk-ssh-ed25519@openssh.com", 2),
    ("ssh-xmss@openssh.com", 2),
];

const CERT_SUFFIX: &str = "-cert-v01@openssh.com";

/// A public host key: its type name and its SSH wire blob.
///
/// Invariant (checked by every constructor): the blob is well formed and
/// its leading string is a key type OpenSSH knows, equal to `algorithm`
/// up to the RSA signature-algorithm aliases (`rsa-sha2-256` names an
/// `ssh-rsa` key).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostKey {
    algorithm: String,
    blob: Vec<u8>,
}

impl HostKey {
    /// Build from a blob alone; the type is read from it.
    pub fn from_blob(blob: Vec<u8>) -> Result<Self, ParseError> {
        let algorithm = blob_type(&blob)?;
        Self::new(&algorithm, blob)
    }

    /// Build from a type name and a blob, checking they agree.
    pub fn new(algorithm: &str, blob: Vec<u8>) -> Result<Self, ParseError> {
        let field = key_type_of_name(algorithm)
            .ok_or_else(|| ParseError::UnknownKeyType(escaped_prefix(algorithm.as_bytes())))?;
        let inner = blob_type(&blob)?;
        if key_type_of_name(&inner) != Some(inner.as_str()) {
            return Err(ParseError::UnknownKeyType(escaped_prefix(inner.as_bytes())));
        }
        if inner != field {
            return Err(ParseError::TypeMismatch {
                field: escaped_prefix(algorithm.as_bytes()),
                blob: escaped_prefix(inner.as_bytes()),
            });
        }
        check_structure(&inner, &blob)?;
        Ok(Self {
            algorithm: algorithm.to_owned(),
            blob,
        })
    }

    /// Build from the two key fields of a known_hosts or `.pub` line.
    pub fn from_openssh_line_fields(algorithm: &str, base64: &str) -> Result<Self, ParseError> {
        if key_type_of_name(algorithm).is_none() {
            return Err(ParseError::UnknownKeyType(escaped_prefix(
                algorithm.as_bytes(),
            )));
        }
        let blob = Base64::decode_vec(base64).map_err(|_| ParseError::BadBase64)?;
        Self::new(algorithm, blob)
    }

    /// The type name as given (may be an alias such as `rsa-sha2-256`).
    pub fn algorithm(&self) -> &str {
        &self.algorithm
    }

    /// The key type recorded inside the blob, e.g. `ssh-ed25519` or
    /// `ssh-ed25519-cert-v01@openssh.com`. This is what OpenSSH writes.
    pub fn key_type(&self) -> String {
        blob_type(&self.blob).unwrap_or_else(|_| self.algorithm.clone())
    }

    /// The wire blob.
    pub fn blob(&self) -> &[u8] {
        &self.blob
    }

    /// The blob in standard padded base64, as written in known_hosts.
    pub fn to_base64(&self) -> String {
        Base64::encode_string(&self.blob)
    }

    /// `<key type> <base64>`, the key part of a known_hosts line.
    pub fn to_openssh(&self) -> String {
        format!("{} {}", self.key_type(), self.to_base64())
    }

    /// Whether this is an OpenSSH certificate.
    pub fn is_certificate(&self) -> bool {
        self.key_type().ends_with(CERT_SUFFIX)
    }

    /// For a certificate, the plain key it certifies (what OpenSSH falls
    /// back to when no `@cert-authority` accepts the certificate).
    pub fn certified_key(&self) -> Option<HostKey> {
        let parts = cert_parts(&self.blob)?;
        HostKey::from_blob(parts.plain_blob).ok()
    }

    /// For a certificate, the CA key that signed it (unverified: the
    /// caller checks the signature with its crypto library).
    pub fn signature_key(&self) -> Option<HostKey> {
        let parts = cert_parts(&self.blob)?;
        HostKey::from_blob(parts.signature_key.to_vec()).ok()
    }

    /// For a certificate, its serial number (0 when the CA set none).
    pub fn certificate_serial(&self) -> Option<u64> {
        cert_parts(&self.blob).map(|parts| parts.serial)
    }

    /// For a certificate, its key ID, as bytes (peer-supplied: escape it
    /// before printing).
    pub fn certificate_key_id(&self) -> Option<&[u8]> {
        cert_parts(&self.blob).map(|parts| parts.key_id)
    }

    /// For a certificate, whether it carries critical options. OpenSSH
    /// refuses a host certificate that has any (`sshkey_cert_check_host`).
    pub fn has_critical_options(&self) -> bool {
        cert_parts(&self.blob).is_some_and(|parts| !parts.critical_options.is_empty())
    }

    /// The blob of the public key itself: the certified key for a
    /// certificate, the blob unchanged otherwise. Two keys with equal
    /// plain blobs are `sshkey_equal_public` in OpenSSH.
    pub fn plain_blob(&self) -> Vec<u8> {
        match cert_parts(&self.blob) {
            Some(parts) => parts.plain_blob,
            None => self.blob.clone(),
        }
    }

    /// OpenSSH's `sshkey_equal_public`: same public key, ignoring any
    /// certificate wrapped around either.
    pub fn same_public_key(&self, other: &HostKey) -> bool {
        self.plain_blob() == other.plain_blob()
    }
}

/// The canonical key type a name denotes (`rsa-sha2-512` → `ssh-rsa`),
/// or `None` if OpenSSH 9.2 does not know the name.
pub fn key_type_of_name(name: &str) -> Option<&str> {
    let canonical = match name {
        "rsa-sha2-256" | "rsa-sha2-512" => "ssh-rsa",
        "rsa-sha2-256-cert-v01@openssh.com" | "rsa-sha2-512-cert-v01@openssh.com" => {
            "ssh-rsa-cert-v01@openssh.com"
        }
        "webauthn-sk-ecdsa-sha2-nistp256@openssh.com" => "sk-ecdsa-sha2-nistp256@openssh.com",
        other => other,
    };
    let plain = plain_type_of(canonical)?;
    PLAIN_TYPES
        .iter()
        .any(|(t, _)| *t == plain)
        .then_some(canonical)
}

/// The plain key type behind a (canonical) type name: certificate names
/// lose their `-cert-v01@openssh.com` suffix.
pub fn plain_type_of(name: &str) -> Option<&'static str> {
    let name = match name {
        "rsa-sha2-256" | "rsa-sha2-512" => "ssh-rsa",
        "rsa-sha2-256-cert-v01@openssh.com" | "rsa-sha2-512-cert-v01@openssh.com" => {
            "ssh-rsa-cert-v01@openssh.com"
        }
        "webauthn-sk-ecdsa-sha2-nistp256@openssh.com" => "sk-ecdsa-sha2-nistp256@openssh.com",
        other => other,
    };
    PLAIN_TYPES.iter().find_map(|(t, _)| {
        let cert_name = match t.strip_suffix("@openssh.com") {
            Some(base) => format!("{base}{CERT_SUFFIX}"),
            None => format!("{t}{CERT_SUFFIX}"),
        };
        (name == *t || name == cert_name).then_some(*t)
    })
}

fn field_count(plain: &str) -> Option<usize> {
    PLAIN_TYPES
        .iter()
        .find_map(|(t, n)| (*t == plain).then_some(*n))
}

fn blob_type(blob: &[u8]) -> Result<String, ParseError> {
    let malformed = |reason| ParseError::MalformedBlob {
        algorithm: "unknown".to_owned(),
        reason,
    };
    let name = Reader::new(blob)
        .string()
        .ok_or_else(|| malformed("no key type string"))?;
    String::from_utf8(name.to_vec()).map_err(|_| malformed("key type is not UTF-8"))
}

fn check_structure(key_type: &str, blob: &[u8]) -> Result<(), ParseError> {
    let malformed = |reason| ParseError::MalformedBlob {
        algorithm: key_type.to_owned(),
        reason,
    };
    if key_type.ends_with(CERT_SUFFIX) {
        return cert_parts(blob)
            .map(|_| ())
            .ok_or_else(|| malformed("truncated or trailing data in certificate"));
    }
    let fields = field_count(key_type).ok_or_else(|| malformed("unknown key type"))?;
    let mut r = Reader::new(blob);
    r.string();
    r.strings(fields)
        .ok_or_else(|| malformed("truncated key fields"))?;
    if !r.is_empty() {
        return Err(malformed("trailing data after key fields"));
    }
    Ok(())
}

struct CertParts<'a> {
    plain_blob: Vec<u8>,
    serial: u64,
    key_id: &'a [u8],
    critical_options: &'a [u8],
    signature_key: &'a [u8],
}

/// Split a certificate blob (PROTOCOL.certkeys) into the certified key and
/// the signing CA key. `None` if the blob is not a well-formed certificate.
fn cert_parts(blob: &[u8]) -> Option<CertParts<'_>> {
    let mut r = Reader::new(blob);
    let cert_type = std::str::from_utf8(r.string()?).ok()?;
    if !cert_type.ends_with(CERT_SUFFIX) {
        return None;
    }
    let plain = plain_type_of(cert_type)?;
    r.string()?; // nonce
    let key_fields = r.strings(field_count(plain)?)?;
    let serial = r.u64()?;
    r.take(4)?; // cert type
    let key_id = r.string()?;
    r.string()?; // principals
    r.take(16)?; // valid after, valid before
    let critical_options = r.string()?;
    r.strings(2)?; // extensions, reserved
    let signature_key = r.string()?;
    r.string()?; // signature
    if !r.is_empty() {
        return None;
    }
    let mut plain_blob = Vec::with_capacity(4 + plain.len() + key_fields.len());
    plain_blob.extend_from_slice(&u32::try_from(plain.len()).ok()?.to_be_bytes());
    plain_blob.extend_from_slice(plain.as_bytes());
    plain_blob.extend_from_slice(key_fields);
    Some(CertParts {
        plain_blob,
        serial,
        key_id,
        critical_options,
        signature_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkeys::{ecdsa, ed, ed_cert, rsa};

    #[test]
    fn round_trips_through_base64() {
        for key in [ed(1), ecdsa(2), rsa(3), ed_cert(4, &ed(5))] {
            let again = HostKey::from_openssh_line_fields(key.algorithm(), &key.to_base64());
            assert_eq!(again.as_ref(), Ok(&key));
        }
    }

    #[test]
    fn rsa_signature_names_denote_ssh_rsa_keys() {
        let key = rsa(1);
        for alias in ["rsa-sha2-256", "rsa-sha2-512"] {
            let k = HostKey::from_openssh_line_fields(alias, &key.to_base64());
            assert_eq!(k.map(|k| k.key_type()), Ok("ssh-rsa".to_owned()));
        }
    }

    #[test]
    fn rejects_mismatch_unknown_and_malformed() {
        let b64 = ed(1).to_base64();
        type Check = fn(&ParseError) -> bool;
        let cases: [(&str, &str, Check); 5] = [
            ("ssh-rsa", &b64, |e| {
                matches!(e, ParseError::TypeMismatch { .. })
            }),
            ("ssh-foo", &b64, |e| {
                matches!(e, ParseError::UnknownKeyType(_))
            }),
            ("ssh-ed25519", "AAAA!", |e| *e == ParseError::BadBase64),
            // "ssh-ed25519" string with no key field.
            ("ssh-ed25519", "AAAAC3NzaC1lZDI1NTE5", |e| {
                matches!(e, ParseError::MalformedBlob { .. })
            }),
            ("ssh-ed25519", "", |e| {
                matches!(e, ParseError::MalformedBlob { .. })
            }),
        ];
        for (algo, b64, want) in cases {
            let err = HostKey::from_openssh_line_fields(algo, b64).err();
            assert!(err.as_ref().is_some_and(want), "{algo} {b64}: {err:?}");
        }
    }

    #[test]
    fn certificate_parts() {
        let ca = ecdsa(9);
        let cert = ed_cert(1, &ca);
        assert!(cert.is_certificate());
        assert_eq!(cert.key_type(), "ssh-ed25519-cert-v01@openssh.com");
        assert_eq!(cert.signature_key(), Some(ca));
        assert_eq!(cert.certified_key(), Some(ed(1)));
        assert!(cert.same_public_key(&ed(1)));
        assert!(!cert.same_public_key(&ed(2)));
        assert_eq!(ed(1).signature_key(), None);
    }

    #[test]
    fn type_names() {
        let cases = [
            ("ssh-ed25519", Some("ssh-ed25519"), Some("ssh-ed25519")),
            (
                "rsa-sha2-512-cert-v01@openssh.com",
                Some("ssh-rsa-cert-v01@openssh.com"),
                Some("ssh-rsa"),
            ),
            (
                "sk-ssh-ed25519-cert-v01@openssh.com",
                Some("sk-ssh-ed25519-cert-v01@openssh.com"),
                Some("sk-ssh-ed25519@openssh.com"),
            ),
            (
                "ecdsa-sha2-nistp384-cert-v01@openssh.com",
                Some("ecdsa-sha2-nistp384-cert-v01@openssh.com"),
                Some("ecdsa-sha2-nistp384"),
            ),
            ("ssh-foo", None, None),
            ("1024", None, None),
        ];
        for (name, canonical, plain) in cases {
            assert_eq!(key_type_of_name(name), canonical, "{name}");
            assert_eq!(plain_type_of(name), plain, "{name}");
        }
    }
}
