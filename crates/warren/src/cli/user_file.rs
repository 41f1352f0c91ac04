//! Reading a small file the user names (a `.pub` key, an authorized_keys
//! to fingerprint) as bytes, with a size cap.
//!
//! Design choice: the bytes are never required to be UTF-8 as a whole;
//! callers parse them line by line, so one odd byte (a Latin-1 comment)
//! costs at most that line's comment, never the file.

use std::io::Read as _;
use std::path::Path;

use anyhow::{Context as _, bail};

/// A key file is a few KiB; an authorized_keys of thousands of keys is
/// under a few MiB. Anything larger is not such a file.
pub(crate) const KEY_FILE_LIMIT: u64 = 16 << 20;

/// The whole of `path`, refusing files over `limit` bytes without
/// reading them into memory.
pub(crate) fn read_capped(path: &Path, limit: u64) -> anyhow::Result<Vec<u8>> {
    let file = std::fs::File::open(path).with_context(|| format!("{}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("read {}", path.display()))?;
    if bytes.len() as u64 > limit {
        bail!(
            "{} is larger than {limit} bytes; not a key file",
            path.display()
        );
    }
    Ok(bytes)
}

/// Whether `bytes` contains `needle`.
pub(crate) fn contains(bytes: &[u8], needle: &[u8]) -> bool {
    bytes.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    // keygen -l and copy-id read with read_to_string: a key file with one
    // Latin-1 byte in its comment could not be read at all.
    #[test]
    fn bytes_that_are_not_utf8_are_read_and_size_is_capped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pub");
        std::fs::write(&path, b"ssh-ed25519 AAAA caf\xe9\n").unwrap();
        assert_eq!(
            read_capped(&path, 100).unwrap(),
            b"ssh-ed25519 AAAA caf\xe9\n"
        );
        let err = read_capped(&path, 10).unwrap_err().to_string();
        assert!(err.contains("larger than"), "{err}");
        assert!(contains(b"-----BEGIN OPENSSH PRIVATE KEY-----", b"PRIVATE KEY"));
        assert!(!contains(b"ssh-ed25519", b"PRIVATE KEY"));
    }
}
