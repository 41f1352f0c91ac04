//! Fingerprints (`SHA256:base64`, `MD5:hex:pairs`) and the randomart
//! ("drunken bishop") picture of `ssh-keygen -lv`.
//!
//! Written here rather than taken from `ssh-key`: its fingerprints have no
//! MD5 (still asked for with `-E md5`) and its randomart cannot draw one.

use russh::keys::HashAlg;
use russh::keys::ssh_key::public::KeyData;

/// `-E` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FingerprintHash {
    #[default]
    Sha256,
    Md5,
}

impl FingerprintHash {
    pub fn parse(s: &str) -> Option<FingerprintHash> {
        match s.to_ascii_lowercase().as_str() {
            "sha256" => Some(FingerprintHash::Sha256),
            "md5" => Some(FingerprintHash::Md5),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            FingerprintHash::Sha256 => "SHA256",
            FingerprintHash::Md5 => "MD5",
        }
    }
}

fn digest(key: &KeyData, hash: FingerprintHash) -> Vec<u8> {
    match hash {
        FingerprintHash::Sha256 => key.fingerprint(HashAlg::Sha256).as_bytes().to_vec(),
        FingerprintHash::Md5 => {
            use russh::keys::ssh_encoding::Encode as _;
            let blob = key.encode_vec().unwrap_or_default();
            md5::compute(blob).0.to_vec()
        }
    }
}

/// The fingerprint as OpenSSH prints it.
pub fn fingerprint(key: &KeyData, hash: FingerprintHash) -> String {
    match hash {
        FingerprintHash::Sha256 => key.fingerprint(HashAlg::Sha256).to_string(),
        FingerprintHash::Md5 => {
            let hex: Vec<String> = digest(key, hash)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            format!("MD5:{}", hex.join(":"))
        }
    }
}

const WIDTH: usize = 17;
const HEIGHT: usize = 9;
const SYMBOLS: &[u8] = b" .o+=*BOX@%&#/^SE";

/// The randomart picture, byte for byte as `ssh-keygen -lv` draws it.
pub fn randomart(key: &KeyData, hash: FingerprintHash) -> String {
    let title = format!("[{} {}]", super::type_label(key), super::bits(key));
    draw(&digest(key, hash), &title, &format!("[{}]", hash.name()))
}

fn draw(digest: &[u8], title: &str, footer: &str) -> String {
    let top = SYMBOLS.len() - 1;
    let mut field = [[0usize; HEIGHT]; WIDTH];
    let (mut x, mut y) = (WIDTH / 2, HEIGHT / 2);
    for &byte in digest {
        let mut input = byte;
        for _ in 0..4 {
            x = if input & 1 != 0 {
                (x + 1).min(WIDTH - 1)
            } else {
                x.saturating_sub(1)
            };
            y = if input & 2 != 0 {
                (y + 1).min(HEIGHT - 1)
            } else {
                y.saturating_sub(1)
            };
            if field[x][y] < top - 2 {
                field[x][y] += 1;
            }
            input >>= 2;
        }
    }
    field[WIDTH / 2][HEIGHT / 2] = top - 1;
    field[x][y] = top;
    let mut out = border(title);
    for row in 0..HEIGHT {
        out.push('|');
        for column in &field {
            out.push(char::from(SYMBOLS[column[row]]));
        }
        out.push_str("|\n");
    }
    out.push_str(&border(footer));
    out.pop();
    out
}

fn border(label: &str) -> String {
    let label: String = label.chars().take(WIDTH - 1).collect();
    let left = (WIDTH - label.len()) / 2;
    let right = WIDTH - left - label.len();
    format!("+{}{label}{}+\n", "-".repeat(left), "-".repeat(right))
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh::keys::PublicKey;

    // ssh-keygen -lv output for this key (OpenSSH 9.2).
    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILM+rvN+ot98qgEN796jTiQfZfG1KaT0PtFDJ/XFSqti";

    #[test]
    fn sha256_randomart_matches_ssh_key_crate() {
        let k = PublicKey::from_openssh(KEY).expect("key");
        let ours = randomart(k.key_data(), FingerprintHash::Sha256);
        let theirs = k
            .key_data()
            .fingerprint(HashAlg::Sha256)
            .to_randomart("[ED25519 256]");
        assert_eq!(ours, theirs);
    }

    #[test]
    fn md5_fingerprint_is_colon_hex() {
        let k = PublicKey::from_openssh(KEY).expect("key");
        let fp = fingerprint(k.key_data(), FingerprintHash::Md5);
        assert!(fp.starts_with("MD5:"), "{fp}");
        assert_eq!(fp.len(), 4 + 16 * 3 - 1);
        let art = randomart(k.key_data(), FingerprintHash::Md5);
        assert!(art.ends_with("+------[MD5]------+"), "{art}");
    }

    #[test]
    fn hash_names() {
        assert_eq!(FingerprintHash::parse("MD5"), Some(FingerprintHash::Md5));
        assert_eq!(
            FingerprintHash::parse("sha256"),
            Some(FingerprintHash::Sha256)
        );
        assert_eq!(FingerprintHash::parse("sha1"), None);
    }
}
