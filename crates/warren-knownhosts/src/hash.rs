//! Hashed host names: `|1|<base64 salt>|<base64 HMAC-SHA1(salt, name)>`.
//!
//! Matching recomputes the whole encoded field and compares strings, as
//! OpenSSH's `match_maybe_hashed` does, so a field only matches if it is
//! byte-for-byte what OpenSSH would have written.

use base64ct::{Base64, Encoding};
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

use crate::error::ParseError;

/// Magic prefix of a hashed host field.
pub const HASH_MAGIC: &str = "|1|";

/// Length of the salt and of the HMAC-SHA1 output.
pub const SALT_LEN: usize = 20;

/// The encoded hashed form of `name` under `salt`.
pub fn hash_host(name: &str, salt: &[u8; SALT_LEN]) -> String {
    hash_host_bytes(name.as_bytes(), salt)
}

/// [`hash_host`] for a name read from a file, which need not be UTF-8.
pub fn hash_host_bytes(name: &[u8], salt: &[u8; SALT_LEN]) -> String {
    let digest = hmac_sha1(salt, name);
    format!(
        "{HASH_MAGIC}{}|{}",
        Base64::encode_string(salt),
        Base64::encode_string(&digest)
    )
}

fn hmac_sha1(key: &[u8], data: &[u8]) -> Vec<u8> {
    match Hmac::<Sha1>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        // HMAC accepts keys of any length; this arm is unreachable.
        Err(_) => Vec::new(),
    }
}

/// The salt of a hashed field (OpenSSH's `extract_salt`).
pub fn extract_salt(field: &str) -> Result<[u8; SALT_LEN], ParseError> {
    let bad = || ParseError::BadHash(crate::line::escaped_prefix(field.as_bytes()));
    let rest = field.strip_prefix(HASH_MAGIC).ok_or_else(bad)?;
    let (b64, _) = rest.split_once('|').ok_or_else(bad)?;
    if b64.is_empty() || b64.len() > 1024 {
        return Err(bad());
    }
    let salt = Base64::decode_vec(b64).map_err(|_| bad())?;
    salt.try_into().map_err(|_| bad())
}

/// Whether a hashed field is the hash of `name` (compared as written,
/// without lowercasing, like OpenSSH).
pub fn hashed_matches(field: &str, salt: &[u8; SALT_LEN], name: &str) -> bool {
    hash_host(name, salt) == field
}

#[cfg(test)]
mod tests {
    use super::*;

    const SALT: [u8; SALT_LEN] = [
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19,
    ];

    #[test]
    fn hash_vectors_from_python_hmac() {
        let cases = [
            (
                "example.com",
                "|1|AAECAwQFBgcICQoLDA0ODxAREhM=|nnUK16ANsXd3hL31YfAkGOluSjU=",
            ),
            (
                "[example.com]:2222",
                "|1|AAECAwQFBgcICQoLDA0ODxAREhM=|Wgcx+Fm+LmaWwC7rQ80eIf2uHe0=",
            ),
        ];
        for (name, field) in cases {
            assert_eq!(hash_host(name, &SALT), field);
            assert_eq!(extract_salt(field), Ok(SALT));
            assert!(hashed_matches(field, &SALT, name));
            assert!(!hashed_matches(field, &SALT, "other"));
        }
    }

    #[test]
    fn bad_hash_fields() {
        for field in [
            "|1|",
            "|1|AAAA",
            "|1||abc",
            "|2|AAECAwQFBgcICQoLDA0ODxAREhM=|x",
            "|1|AAECAwQFBgcICQoLDA0ODxAREg==|x",
            "|1|!!!|x",
        ] {
            assert!(extract_salt(field).is_err(), "{field}");
        }
    }
}
