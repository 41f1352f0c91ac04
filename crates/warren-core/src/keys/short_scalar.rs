//! ECDSA private keys whose scalar is shorter than the curve size, read
//! as OpenSSH reads them.
//!
//! OpenSSH writes the private scalar as an mpint, which drops leading zero
//! bytes: about one P-256 key in 256 that ssh-keygen makes has a scalar of
//! 31 bytes or fewer (P-384 and P-521 likewise, shorter). `ssh-key` (not
//! vendored) refuses a scalar shorter than 32 bytes, so such a key file is
//! re-encoded here, the scalar left-padded to the curve size, before
//! `ssh-key` parses it.
//!
//! Design choice: the repair runs only after `ssh-key` has refused a file,
//! and only changes the scalar's encoding; the result is a clear key (an
//! encrypted file is decrypted here with the passphrase, as `ssh-key`
//! would have). Everything read is bounded by the file, which the caller
//! read with [`super::MAX_KEY_FILE`] as its limit.

use russh::keys::PrivateKey;
use russh::keys::ssh_key::{Cipher, Kdf};
use warren_wire::wire::Reader;
use zeroize::Zeroizing;

const MAGIC: &[u8] = b"openssh-key-v1\0";
const BEGIN: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";
const END: &str = "-----END OPENSSH PRIVATE KEY-----";

/// `text` (an OpenSSH private key file) parsed with its ECDSA scalar
/// padded, decrypted with `passphrase` when encrypted. `None` when the
/// file is not such a key, or the passphrase is wrong or missing.
pub(crate) fn parse_padded(text: &str, passphrase: Option<&[u8]>) -> Option<PrivateKey> {
    let raw = Zeroizing::new(decode_armor(text)?);
    let mut r = Reader::new(raw.strip_prefix(MAGIC)?);
    let cipher = std::str::from_utf8(r.string()?).ok()?;
    let kdf_name = r.string()?;
    let kdf_options = r.string()?;
    if r.u32()? != 1 {
        return None;
    }
    let public = r.string()?;
    let private = r.string()?;
    let plain = match cipher {
        "none" => Zeroizing::new(private.to_vec()),
        _ => decrypt(cipher, kdf_name, kdf_options, private, passphrase?)?,
    };
    let section = padded_section(&plain)?;
    let mut out = Zeroizing::new(MAGIC.to_vec());
    for field in [b"none".as_slice(), b"none", b""] {
        put_string(&mut out, field);
    }
    out.extend_from_slice(&1u32.to_be_bytes());
    put_string(&mut out, public);
    put_string(&mut out, &section);
    PrivateKey::from_bytes(&out).ok()
}

/// The binary inside the PEM-like armor.
fn decode_armor(text: &str) -> Option<Vec<u8>> {
    use base64ct::Encoding as _;
    let body = text.trim().strip_prefix(BEGIN)?.strip_suffix(END)?;
    let b64: Zeroizing<String> =
        Zeroizing::new(body.chars().filter(|c| !c.is_ascii_whitespace()).collect());
    base64ct::Base64::decode_vec(&b64).ok()
}

/// The private section decrypted (bcrypt-pbkdf, as ssh-keygen writes it).
fn decrypt(
    cipher: &str,
    kdf_name: &[u8],
    kdf_options: &[u8],
    ciphertext: &[u8],
    passphrase: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    let cipher = Cipher::new(cipher).ok()?;
    if kdf_name != b"bcrypt" {
        return None;
    }
    let mut o = Reader::new(kdf_options);
    let salt = o.string()?.to_vec();
    let rounds = o.u32()?;
    let kdf = Kdf::Bcrypt { salt, rounds };
    let (key, iv) = kdf.derive_key_and_iv(cipher, passphrase).ok()?;
    let mut plain = Zeroizing::new(ciphertext.to_vec());
    // AEAD ciphers carry a tag after the section; ssh-keygen's default
    // (aes256-ctr) and the other block ciphers do not.
    cipher.decrypt(&key, &iv, &mut plain, None).ok()?;
    Some(plain)
}

/// The clear private section re-encoded with the scalar at full size and
/// padded for cipher `none`; `None` when it is not an ECDSA key with a
/// short scalar, or the check integers differ (a wrong passphrase).
fn padded_section(plain: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let mut r = Reader::new(plain);
    let check = r.take(8)?;
    if check[..4] != check[4..] {
        return None;
    }
    let key_type = r.string()?;
    let size = scalar_size(key_type)?;
    let curve = r.string()?;
    let point = r.string()?;
    let scalar = r.string()?;
    let comment = r.string()?;
    let digits = strip_zeros(scalar);
    if digits.len() >= size {
        return None;
    }
    let mut full = Zeroizing::new(vec![0u8; size + 1]);
    full[size + 1 - digits.len()..].copy_from_slice(digits);
    // An mpint keeps one leading zero only when the top bit is set.
    let mpint = if full[1] & 0x80 != 0 {
        &full[..]
    } else {
        &full[1..]
    };
    let mut out = Zeroizing::new(check.to_vec());
    for field in [key_type, curve, point, mpint, comment] {
        put_string(&mut out, field);
    }
    let mut pad = 1u8;
    while out.len() % 8 != 0 {
        out.push(pad);
        pad += 1;
    }
    Some(out)
}

/// The scalar's size in bytes for an ECDSA key type.
fn scalar_size(key_type: &[u8]) -> Option<usize> {
    match key_type {
        b"ecdsa-sha2-nistp256" => Some(32),
        b"ecdsa-sha2-nistp384" => Some(48),
        b"ecdsa-sha2-nistp521" => Some(66),
        _ => None,
    }
}

fn strip_zeros(mut n: &[u8]) -> &[u8] {
    while let [0, rest @ ..] = n {
        n = rest;
    }
    n
}

fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    // Every field here came out of a file bounded far below 4 GiB.
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeyType, generate};
    use russh::keys::ssh_key::LineEnding;
    use russh::keys::ssh_key::private::{EcdsaKeypair, KeypairData};

    /// A generated key of `bits` whose scalar starts with a zero byte
    /// (1 in 256 on average; bounded), and its scalar as OpenSSH's mpint
    /// writes it: without the leading zeros.
    fn key_with_short_scalar(bits: u32) -> (PrivateKey, Vec<u8>) {
        let scalar = |k: &PrivateKey| match k.key_data() {
            KeypairData::Ecdsa(EcdsaKeypair::NistP256 { private, .. }) => {
                private.as_slice().to_vec()
            }
            KeypairData::Ecdsa(EcdsaKeypair::NistP384 { private, .. }) => {
                private.as_slice().to_vec()
            }
            KeypairData::Ecdsa(EcdsaKeypair::NistP521 { private, .. }) => {
                private.as_slice().to_vec()
            }
            other => panic!("{other:?}"),
        };
        (0..20_000)
            .map(|_| generate(KeyType::Ecdsa, Some(bits), "short").expect("key"))
            .find_map(|k| {
                let s = scalar(&k);
                (s[0] == 0).then(|| (k, strip_zeros(&s).to_vec()))
            })
            .expect("a scalar with a leading zero byte in 20000 keys")
    }

    /// The key file OpenSSH writes for `key` with the mpint `digits`.
    fn openssh_file(key: &PrivateKey, digits: &[u8]) -> String {
        let public = match key.public_key().key_data() {
            russh::keys::ssh_key::public::KeyData::Ecdsa(p) => *p,
            other => panic!("{other:?}"),
        };
        let name = public.algorithm().as_str().to_owned();
        let curve = public.curve().as_str().to_owned();
        let mut section = vec![1, 2, 3, 4, 1, 2, 3, 4];
        for field in [
            name.as_bytes(),
            curve.as_bytes(),
            public.as_sec1_bytes(),
            digits,
            b"short",
        ] {
            put_string(&mut section, field);
        }
        let mut pad = 1u8;
        while section.len() % 8 != 0 {
            section.push(pad);
            pad += 1;
        }
        let mut raw = MAGIC.to_vec();
        for field in [b"none".as_slice(), b"none", b""] {
            put_string(&mut raw, field);
        }
        raw.extend_from_slice(&1u32.to_be_bytes());
        put_string(&mut raw, &key.public_key().to_bytes().expect("public blob"));
        put_string(&mut raw, &section);
        use base64ct::Encoding as _;
        format!(
            "{BEGIN}\n{}\n{END}\n",
            base64ct::Base64::encode_string(&raw)
        )
    }

    // Regression: ssh-key refused a P-256 scalar under 32 bytes ("length
    // invalid"); OpenSSH reads every curve's short scalars, clear or
    // encrypted.
    #[test]
    fn scalars_with_leading_zeros_are_read_for_every_curve() {
        for bits in [256, 384, 521] {
            let (key, digits) = key_with_short_scalar(bits);
            let text = openssh_file(&key, &digits);
            if bits == 256 {
                assert!(
                    PrivateKey::from_openssh(&text).is_err(),
                    "ssh-key refuses it"
                );
            }
            let back = crate::keys::parse_openssh(&text).expect("read");
            assert_eq!(back.key_data(), key.key_data(), "{bits}");
            assert_eq!(back.comment().as_str_lossy(), "short");

            // Encrypted as ssh-keygen does it, around the same section.
            let sealed = crate::keys::encrypt(&back, "pw", 1).expect("encrypt");
            let sealed_text = sealed.to_openssh(LineEnding::LF).expect("encode");
            let sealed = crate::keys::parse_openssh(&sealed_text).expect("read sealed");
            let opened =
                crate::keys::decrypt_openssh(&sealed, &sealed_text, b"pw").expect("decrypt");
            assert_eq!(opened.key_data(), key.key_data(), "{bits}");
            assert!(crate::keys::decrypt_openssh(&sealed, &sealed_text, b"no").is_err());
        }
    }

    #[test]
    fn other_keys_are_left_alone() {
        let k = generate(KeyType::Ed25519, None, "c").expect("key");
        let text = k.to_openssh(LineEnding::LF).expect("encode");
        assert!(parse_padded(&text, None).is_none());
        assert!(parse_padded("not a key", None).is_none());
    }
}
