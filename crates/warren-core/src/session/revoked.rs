//! `RevokedHostKeys`: the server's key (or certificate, or the CA that
//! signed it) checked against a KRL or a list of keys before known_hosts is
//! consulted, as OpenSSH's `verify_host_key` does.
//!
//! Design choice: like OpenSSH, a file that is named but cannot be read or
//! parsed refuses the connection; nothing about it is ever transient.

use std::io::Read as _;
use std::path::Path;

use russh::keys::{HashAlg, PublicKey, PublicKeyOrCertificate};
use tracing::debug;
use warren_knownhosts::{HostKey, RevokedKeys};

use super::error::HostKeyError;

/// OpenSSH's `SSHBUF_SIZE_MAX`: it cannot load a larger file either.
const MAX_FILE_BYTES: u64 = 0x800_0000;

/// Refuses the key if the file revokes it, or if the file is unusable.
pub(super) fn check(path: &Path, key: &PublicKeyOrCertificate) -> Result<(), HostKeyError> {
    let (blob, plain) = match key {
        PublicKeyOrCertificate::PublicKey { key, .. } => (key.to_bytes(), key.clone()),
        PublicKeyOrCertificate::Certificate(cert) => {
            (cert.to_bytes(), PublicKey::from(cert.public_key().clone()))
        }
    };
    let fingerprint = plain.fingerprint(HashAlg::Sha256).to_string();
    let malformed = |reason: String| HostKeyError::Malformed { reason };
    let blob = blob.map_err(|e| malformed(e.to_string()))?;
    let key = HostKey::from_blob(blob).map_err(|e| malformed(e.to_string()))?;
    let file = path.display().to_string();
    let key_type = type_label(&key);
    let revoked =
        read(path).and_then(|bytes| RevokedKeys::parse(&bytes).map_err(|e| e.to_string()));
    match revoked {
        Ok(list) if list.is_revoked(&key) => Err(HostKeyError::RevokedByFile {
            key_type,
            fingerprint,
            file,
        }),
        Ok(_) => {
            debug!("host key {key_type} {fingerprint} is not revoked by {file}");
            Ok(())
        }
        Err(reason) => Err(HostKeyError::RevokedFileUnusable {
            key_type,
            fingerprint,
            file,
            reason,
        }),
    }
}

/// The whole file, refused above OpenSSH's size limit.
fn read(path: &Path) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!("larger than {MAX_FILE_BYTES} bytes"));
    }
    Ok(bytes)
}

/// OpenSSH's `sshkey_type`: "ED25519", "ECDSA-CERT", ...
fn type_label(key: &HostKey) -> String {
    let name = key.key_type();
    let base = match name.as_str() {
        n if n.contains("ed25519") => "ED25519",
        n if n.contains("ecdsa") => "ECDSA",
        n if n.contains("rsa") => "RSA",
        n if n.contains("dss") => "DSA",
        _ => "UNKNOWN",
    };
    let sk = if name.starts_with("sk-") { "-SK" } else { "" };
    let cert = if key.is_certificate() { "-CERT" } else { "" };
    format!("{base}{sk}{cert}")
}
