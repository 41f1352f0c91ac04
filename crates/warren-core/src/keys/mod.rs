//! Key files and key facts, as OpenSSH writes and prints them: generation
//! (ed25519, ecdsa, rsa), OpenSSH-format private keys (encrypted with
//! bcrypt-pbkdf + aes256-ctr like ssh-keygen), public key lines,
//! fingerprints (SHA256 and MD5) and randomart, and signatures.
//!
//! Design choice: the cryptography is `ssh-key`'s (through `russh::keys`);
//! this module owns the file rules OpenSSH users rely on: private keys are
//! written 0600 through a temp file renamed into place, public keys 0644,
//! a key file readable by others is refused with OpenSSH's warning, and no
//! error message ever carries key material.

mod cert;
mod file;
mod fingerprint;
mod short_scalar;

use russh::keys::ssh_key::private::{EcdsaKeypair, KeypairData, RsaKeypair};
use russh::keys::ssh_key::public::KeyData;
use russh::keys::ssh_key::{Algorithm, EcdsaCurve, Kdf};
use russh::keys::{HashAlg, PrivateKey, PublicKey};

pub use cert::certificate_problem;
pub(crate) use file::with_suffix;
pub use file::{
    MAX_KEY_FILE, PermissionError, check_permissions, is_encrypted_file, is_encrypted_pem,
    public_lines, read_key_text, read_private, read_public_for, replace_file, write_key_pair,
    write_private,
};
pub use fingerprint::{FingerprintHash, fingerprint, randomart};

/// Errors about keys and key files. Messages name the file and the fix;
/// they never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("unknown key type {0:?}; use ed25519, ecdsa or rsa")]
    UnknownType(String),
    #[error("invalid key length {bits} for {kind}: {why}")]
    BadBits {
        kind: &'static str,
        bits: u32,
        why: &'static str,
    },
    #[error("{path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Permissions(#[from] PermissionError),
    #[error("{path}: not a key file OpenSSH can read ({reason})")]
    Format { path: String, reason: String },
    #[error("{path}: incorrect passphrase supplied to decrypt private key")]
    BadPassphrase { path: String },
    #[error("{path}: the key is encrypted and no passphrase was given")]
    NeedPassphrase { path: String },
    #[error("key operation failed: {0}")]
    Crypto(String),
}

impl KeyError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        KeyError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// The key types warren generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Ed25519,
    Ecdsa,
    Rsa,
}

impl KeyType {
    /// `-t` values as ssh-keygen takes them.
    pub fn parse(s: &str) -> Result<KeyType, KeyError> {
        match s.to_ascii_lowercase().as_str() {
            "ed25519" | "ssh-ed25519" => Ok(KeyType::Ed25519),
            "ecdsa" | "ecdsa-sha2-nistp256" | "ecdsa-sha2-nistp384" | "ecdsa-sha2-nistp521" => {
                Ok(KeyType::Ecdsa)
            }
            "rsa" | "ssh-rsa" => Ok(KeyType::Rsa),
            _ => Err(KeyError::UnknownType(s.to_owned())),
        }
    }

    /// The default file name under ~/.ssh.
    pub fn default_file_name(self) -> &'static str {
        match self {
            KeyType::Ed25519 => "id_ed25519",
            KeyType::Ecdsa => "id_ecdsa",
            KeyType::Rsa => "id_rsa",
        }
    }

    /// The name ssh-keygen prints in "Generating public/private ... key pair".
    pub fn name(self) -> &'static str {
        match self {
            KeyType::Ed25519 => "ed25519",
            KeyType::Ecdsa => "ecdsa",
            KeyType::Rsa => "rsa",
        }
    }
}

/// RSA size when `-b` is not given (ssh-keygen's default).
pub const DEFAULT_RSA_BITS: u32 = 3072;

/// Generates a new key; `bits` as ssh-keygen's `-b` (ignored for ed25519).
pub fn generate(kind: KeyType, bits: Option<u32>, comment: &str) -> Result<PrivateKey, KeyError> {
    let mut rng = rand::rng();
    let crypto = |e: russh::keys::ssh_key::Error| KeyError::Crypto(e.to_string());
    let data = match kind {
        KeyType::Ed25519 => {
            return PrivateKey::random(&mut rng, Algorithm::Ed25519)
                .map_err(crypto)
                .map(|mut k| {
                    k.set_comment(comment);
                    k
                });
        }
        KeyType::Ecdsa => {
            let curve = match bits.unwrap_or(256) {
                256 => EcdsaCurve::NistP256,
                384 => EcdsaCurve::NistP384,
                521 => EcdsaCurve::NistP521,
                other => {
                    return Err(KeyError::BadBits {
                        kind: "ecdsa",
                        bits: other,
                        why: "use 256, 384 or 521",
                    });
                }
            };
            KeypairData::from(EcdsaKeypair::random(&mut rng, curve).map_err(crypto)?)
        }
        KeyType::Rsa => {
            let bits = bits.unwrap_or(DEFAULT_RSA_BITS);
            if !(1024..=16384).contains(&bits) {
                return Err(KeyError::BadBits {
                    kind: "rsa",
                    bits,
                    why: "use 1024 to 16384 (3072 or more recommended)",
                });
            }
            KeypairData::from(RsaKeypair::random(&mut rng, bits as usize).map_err(crypto)?)
        }
    };
    PrivateKey::new(data, comment).map_err(crypto)
}

/// Encrypts `key` as ssh-keygen does (aes256-ctr, bcrypt-pbkdf with
/// `rounds`, 16 by default). An empty passphrase leaves it clear.
pub fn encrypt(key: &PrivateKey, passphrase: &str, rounds: u32) -> Result<PrivateKey, KeyError> {
    if passphrase.is_empty() {
        return Ok(key.clone());
    }
    let mut rng = rand::rng();
    let mut salt = vec![0u8; 16];
    rand::Rng::fill_bytes(&mut rng, &mut salt);
    let kdf = Kdf::Bcrypt {
        salt,
        rounds: rounds.max(1),
    };
    let checkint: u32 = rand::random();
    key.encrypt_with(
        russh::keys::ssh_key::Cipher::Aes256Ctr,
        kdf,
        checkint,
        passphrase,
    )
    .map_err(|e| KeyError::Crypto(e.to_string()))
}

/// Decrypts `key` (read from `path`) with `passphrase`.
pub fn decrypt(key: &PrivateKey, path: &str, passphrase: &str) -> Result<PrivateKey, KeyError> {
    let bad = || KeyError::BadPassphrase {
        path: path.to_owned(),
    };
    match key.decrypt(passphrase.as_bytes()) {
        Ok(k) => Ok(k),
        Err(_) => {
            // A short ECDSA scalar inside: read the file again to repair it.
            let text = read_key_text(std::path::Path::new(path)).map_err(|_| bad())?;
            decrypt_openssh(key, &text, passphrase.as_bytes()).map_err(|_| bad())
        }
    }
}

/// An OpenSSH-format private key from its file's text, as OpenSSH reads
/// it: an ECDSA scalar shorter than the curve size (which the mpint
/// encoding makes of about one P-256 key in 256) included. An encrypted
/// key comes back still encrypted; see [`decrypt_openssh`].
pub fn parse_openssh(text: &str) -> Result<PrivateKey, russh::keys::ssh_key::Error> {
    let text = text.trim();
    PrivateKey::from_openssh(text).or_else(|e| short_scalar::parse_padded(text, None).ok_or(e))
}

/// Decrypts `key`, parsed from `text`, with `passphrase`; an ECDSA key
/// with a short scalar included (see [`parse_openssh`]).
pub fn decrypt_openssh(
    key: &PrivateKey,
    text: &str,
    passphrase: &[u8],
) -> Result<PrivateKey, russh::keys::ssh_key::Error> {
    key.decrypt(passphrase)
        .or_else(|e| short_scalar::parse_padded(text.trim(), Some(passphrase)).ok_or(e))
}

/// The key size in bits as ssh-keygen prints it (256 for ed25519, the
/// curve size for ecdsa, the modulus for rsa).
pub fn bits(key: &KeyData) -> u32 {
    match key {
        KeyData::Rsa(rsa) => rsa.key_size(),
        KeyData::Ecdsa(ec) => match ec.curve() {
            EcdsaCurve::NistP256 => 256,
            EcdsaCurve::NistP384 => 384,
            EcdsaCurve::NistP521 => 521,
        },
        KeyData::Ed25519(_) | KeyData::SkEd25519(_) => 256,
        KeyData::SkEcdsaSha2NistP256(_) => 256,
        _ => 0,
    }
}

/// The type label ssh-keygen prints in parentheses: `ED25519`, `ECDSA`, `RSA`.
pub fn type_label(key: &KeyData) -> &'static str {
    match key {
        KeyData::Rsa(_) => "RSA",
        KeyData::Ecdsa(_) => "ECDSA",
        KeyData::Ed25519(_) => "ED25519",
        KeyData::SkEd25519(_) => "ED25519-SK",
        KeyData::SkEcdsaSha2NistP256(_) => "ECDSA-SK",
        _ => "UNKNOWN",
    }
}

/// One `ssh-keygen -l` / `ssh-add -l` line: `BITS FINGERPRINT COMMENT (TYPE)`.
pub fn fingerprint_line(key: &KeyData, comment: &str, hash: FingerprintHash) -> String {
    let comment = if comment.is_empty() {
        "no comment"
    } else {
        comment
    };
    format!(
        "{} {} {} ({})",
        bits(key),
        fingerprint(key, hash),
        comment,
        type_label(key)
    )
}

/// The public key line `TYPE BASE64 COMMENT` (no comment: no trailing space).
pub fn public_line(key: &PublicKey) -> Result<String, KeyError> {
    key.to_openssh()
        .map(|s| s.trim_end().to_owned())
        .map_err(|e| KeyError::Crypto(e.to_string()))
}

/// The default comment: `user@hostname`, as ssh-keygen writes it.
pub fn default_comment() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "user".into());
    let host = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    format!("{user}@{host}")
}

/// A signature blob (algorithm name and signature) over `data`; for RSA
/// the requested SHA-2 hash, for the others the key's own algorithm.
pub fn sign(key: &PrivateKey, hash_alg: Option<HashAlg>, data: &[u8]) -> Result<Vec<u8>, KeyError> {
    use russh::keys::signature::Signer as _;
    use russh::keys::ssh_encoding::Encode as _;
    let crypto = |e: russh::keys::signature::Error| KeyError::Crypto(e.to_string());
    let signature: russh::keys::ssh_key::Signature = match key.key_data() {
        KeypairData::Rsa(rsa) => (rsa, hash_alg).try_sign(data).map_err(crypto)?,
        _ => key.try_sign(data).map_err(crypto)?,
    };
    signature
        .encode_vec()
        .map_err(|e| KeyError::Crypto(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_types_parse_as_ssh_keygen_names_them() {
        let cases = [
            ("ed25519", Some(KeyType::Ed25519)),
            ("ECDSA", Some(KeyType::Ecdsa)),
            ("rsa", Some(KeyType::Rsa)),
            ("ssh-ed25519", Some(KeyType::Ed25519)),
            ("dsa", None),
        ];
        for (input, want) in cases {
            assert_eq!(KeyType::parse(input).ok(), want, "{input}");
        }
    }

    #[test]
    fn ecdsa_sizes_and_labels() {
        for (b, want) in [(256, 256), (384, 384), (521, 521)] {
            let k = generate(KeyType::Ecdsa, Some(b), "c").expect("generate");
            assert_eq!(bits(k.public_key().key_data()), want);
            assert_eq!(type_label(k.public_key().key_data()), "ECDSA");
        }
        assert!(matches!(
            generate(KeyType::Ecdsa, Some(300), "c"),
            Err(KeyError::BadBits { .. })
        ));
        assert!(matches!(
            generate(KeyType::Rsa, Some(512), "c"),
            Err(KeyError::BadBits { .. })
        ));
    }

    #[test]
    fn encrypt_round_trips_and_wrong_passphrase_is_named() {
        let k = generate(KeyType::Ed25519, None, "me@host").expect("generate");
        let enc = encrypt(&k, "pw", 2).expect("encrypt");
        assert!(enc.is_encrypted());
        assert!(matches!(
            decrypt(&enc, "f", "nope"),
            Err(KeyError::BadPassphrase { .. })
        ));
        let dec = decrypt(&enc, "f", "pw").expect("decrypt");
        assert_eq!(dec.public_key().key_data(), k.public_key().key_data());
        assert_eq!(dec.comment(), k.comment());
    }

    #[test]
    fn fingerprint_line_says_no_comment() {
        let k = generate(KeyType::Ed25519, None, "").expect("generate");
        let line = fingerprint_line(k.public_key().key_data(), "", FingerprintHash::Sha256);
        assert!(line.starts_with("256 SHA256:"), "{line}");
        assert!(line.ends_with(" no comment (ED25519)"), "{line}");
    }
}
