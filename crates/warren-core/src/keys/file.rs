//! Reading and writing key files with OpenSSH's rules: a private key is
//! never written or used while others can read it, and files are replaced
//! through a temp file renamed into place, so a crash never leaves half a key.

use std::io::{Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use russh::keys::ssh_key::LineEnding;
use russh::keys::{PrivateKey, PublicKey};

use super::KeyError;

/// A private key file that group or others may read. Its `Display` is
/// OpenSSH's warning, word for word.
#[derive(Debug, thiserror::Error)]
#[error(
    "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n\
     @         WARNING: UNPROTECTED PRIVATE KEY FILE!          @\n\
     @@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n\
     Permissions 0{mode:o} for '{path}' are too open.\n\
     It is required that your private key files are NOT accessible by others.\n\
     This private key will be ignored."
)]
pub struct PermissionError {
    pub path: String,
    pub mode: u32,
}

/// Refuses a key file we own that group or others can access (as
/// OpenSSH's `sshkey_perm_ok`).
pub fn check_permissions(path: &Path) -> Result<(), PermissionError> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(());
    };
    let mode = meta.mode() & 0o777;
    let ours = meta.uid() == rustix::process::getuid().as_raw();
    if ours && mode & 0o077 != 0 {
        return Err(PermissionError {
            path: path.display().to_string(),
            mode,
        });
    }
    Ok(())
}

/// The most of a key file that is read (OpenSSH's authfile.c reads no
/// more either): anything longer is not a key.
pub const MAX_KEY_FILE: u64 = 1024 * 1024;

/// A key file's contents as text: read as bytes, bounded by
/// [`MAX_KEY_FILE`], and converted lossily, so a stray non-UTF-8 byte (in a
/// comment, say) does not make a key that ssh reads unreadable; the key
/// material itself is base64 and PEM, plain ASCII. Zeroized on drop, since
/// it may hold a private key.
pub fn read_key_text(path: &Path) -> std::io::Result<zeroize::Zeroizing<String>> {
    let file = std::fs::File::open(path)?;
    let size = file.metadata().map_or(0, |m| m.len()).min(MAX_KEY_FILE) + 1;
    // Sized up front so the buffer is not reallocated, leaving copies of a
    // private key behind in freed memory.
    let mut bytes = zeroize::Zeroizing::new(Vec::with_capacity(size as usize));
    file.take(MAX_KEY_FILE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_KEY_FILE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {} KiB, not a key file", MAX_KEY_FILE / 1024),
        ));
    }
    Ok(zeroize::Zeroizing::new(
        String::from_utf8_lossy(&bytes).into_owned(),
    ))
}

fn read_text(path: &Path) -> Result<zeroize::Zeroizing<String>, KeyError> {
    read_key_text(path).map_err(|e| KeyError::io(path, e))
}

/// Reads a private key (OpenSSH format, or unencrypted PEM/PKCS#8),
/// refusing loose permissions first. An encrypted key comes back still
/// encrypted; see [`super::decrypt`].
pub fn read_private(path: &Path) -> Result<PrivateKey, KeyError> {
    check_permissions(path)?;
    let text = read_text(path)?;
    match super::parse_openssh(&text) {
        Ok(k) => Ok(k),
        Err(openssh) => russh::keys::decode_secret_key(&text, None).map_err(|_| KeyError::Format {
            path: path.display().to_string(),
            reason: openssh.to_string(),
        }),
    }
}

/// Whether `path` holds an encrypted OpenSSH private key (read without
/// the permission check: only the clear header is looked at).
pub fn is_encrypted_file(path: &Path) -> bool {
    read_text(path)
        .ok()
        .and_then(|t| super::parse_openssh(&t).ok())
        .is_some_and(|k| k.is_encrypted())
}

/// Whether `text` is a legacy PEM private key encrypted in its header
/// (`-----BEGIN RSA PRIVATE KEY-----` then `Proc-Type: 4,ENCRYPTED`, as
/// `ssh-keygen -m PEM -N PASS` writes), which is not read from the file.
pub fn is_encrypted_pem(text: &str) -> bool {
    let mut lines = text.trim_start().lines().map(str::trim);
    let pem = lines
        .next()
        .is_some_and(|l| l.starts_with("-----BEGIN ") && l.ends_with(" PRIVATE KEY-----"));
    pem && lines
        .take(3)
        .any(|l| l.eq_ignore_ascii_case("Proc-Type: 4,ENCRYPTED"))
}

/// The public key belonging to a key path: `PATH.pub` when present,
/// else `PATH` itself as a public key line, else the clear public part of
/// an OpenSSH private key (no passphrase needed).
pub fn read_public_for(path: &Path) -> Result<PublicKey, KeyError> {
    let pub_path = with_suffix(path, ".pub");
    if let Ok(text) = read_key_text(&pub_path)
        && let Some((k, _)) = public_lines(&text).into_iter().next()
    {
        return Ok(k);
    }
    let text = read_text(path)?;
    if let Some((k, _)) = public_lines(&text).into_iter().next() {
        return Ok(k);
    }
    match super::parse_openssh(&text) {
        Ok(k) => Ok(k.public_key().clone()),
        Err(e) => Err(KeyError::Format {
            path: path.display().to_string(),
            reason: e.to_string(),
        }),
    }
}

/// The public keys in `text` (a `.pub` file, authorized_keys or
/// known_hosts) with their line numbers; leading options or host names are
/// skipped.
pub fn public_lines(text: &str) -> Vec<(PublicKey, usize)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut rest = line;
        for _ in 0..3 {
            if let Ok(k) = PublicKey::from_openssh(rest) {
                out.push((k, i + 1));
                break;
            }
            match rest.split_once([' ', '\t']) {
                Some((_, tail)) => rest = tail.trim_start(),
                None => break,
            }
        }
    }
    out
}

pub(crate) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Writes `bytes` to `path` with `mode` through a temp file in the same
/// directory renamed into place.
pub fn replace_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), KeyError> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.warren-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        // The mode given to open() is filtered by the umask; set it exactly.
        std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(mode))?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        KeyError::io(path, e)
    })
}

/// Creates the key's directory (0700, like ~/.ssh) when it is missing.
fn ensure_parent(path: &Path) -> Result<(), KeyError> {
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) if !dir.exists() => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| KeyError::io(dir, e)),
        _ => Ok(()),
    }
}

/// Writes a private key file (0600) in OpenSSH format.
pub fn write_private(path: &Path, key: &PrivateKey) -> Result<(), KeyError> {
    ensure_parent(path)?;
    let pem = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| KeyError::Crypto(e.to_string()))?;
    replace_file(path, pem.as_bytes(), 0o600)
}

/// Writes `PATH` (0600) and `PATH.pub` (0644), creating the directory
/// 0700 when missing. `public` carries the comment (an encrypted key keeps
/// its comment inside the encrypted part). Returns the public file's path.
pub fn write_key_pair(
    path: &Path,
    key: &PrivateKey,
    public: &PublicKey,
) -> Result<PathBuf, KeyError> {
    write_private(path, key)?;
    let line = super::public_line(public)?;
    let public = with_suffix(path, ".pub");
    replace_file(&public, format!("{line}\n").as_bytes(), 0o644)?;
    Ok(public)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeyType, generate};
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn pair_is_written_0600_and_0644_in_a_new_0700_dir() {
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join("dot_ssh/id_ed25519");
        let key = generate(KeyType::Ed25519, None, "me@host").expect("key");
        let public = write_key_pair(&path, &key, key.public_key()).expect("write");
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&public), 0o644);
        assert_eq!(mode(path.parent().expect("dir")), 0o700);
        let back = read_private(&path).expect("read");
        assert_eq!(back.public_key().key_data(), key.public_key().key_data());
        assert_eq!(
            read_public_for(&path)
                .expect("pub")
                .comment()
                .as_str_lossy(),
            "me@host"
        );
    }

    #[test]
    fn loose_key_is_refused_with_openssh_words() {
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join("k");
        let key = generate(KeyType::Ed25519, None, "").expect("key");
        write_private(&path, &key).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let err = read_private(&path).expect_err("refused").to_string();
        assert!(
            err.contains("WARNING: UNPROTECTED PRIVATE KEY FILE!"),
            "{err}"
        );
        assert!(
            err.contains(&format!(
                "Permissions 0644 for '{}' are too open.",
                path.display()
            )),
            "{err}"
        );
        assert!(!err.contains("PRIVATE KEY-----"), "no key material: {err}");
    }

    // Regression: key files were read with read_to_string, so one Latin-1
    // byte in a .pub comment made a key ssh reads unreadable.
    #[test]
    fn a_non_utf8_byte_in_a_pub_comment_does_not_hide_the_key() {
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join("k");
        let key = generate(KeyType::Ed25519, None, "").expect("key");
        write_private(&path, &key).expect("write");
        let line = crate::keys::public_line(key.public_key()).expect("line");
        let mut bytes = line.into_bytes();
        bytes.extend_from_slice(b" ren\xe9@h\xf4te\n");
        std::fs::write(with_suffix(&path, ".pub"), &bytes).expect("write pub");
        let public = read_public_for(&path).expect("read");
        assert_eq!(public.key_data(), key.public_key().key_data());
        assert!(public.comment().as_str_lossy().starts_with("ren"));
    }

    #[test]
    fn a_file_larger_than_a_key_is_not_read_whole() {
        let tmp = tempfile::tempdir().expect("tmp");
        let path = tmp.path().join("big");
        std::fs::write(&path, vec![b'A'; MAX_KEY_FILE as usize + 1]).expect("write");
        let err = read_key_text(&path).expect_err("refused");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        std::fs::write(&path, vec![b'A'; MAX_KEY_FILE as usize]).expect("write");
        assert_eq!(
            read_key_text(&path).expect("read").len(),
            MAX_KEY_FILE as usize
        );
    }

    #[test]
    fn public_lines_skip_options_and_host_names() {
        let k =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILM+rvN+ot98qgEN796jTiQfZfG1KaT0PtFDJ/XFSqti c";
        let text = format!("# comment\n{k}\nno-pty {k}\nhost.example,10.0.0.1 {k}\ngarbage\n");
        let lines: Vec<usize> = public_lines(&text).into_iter().map(|(_, n)| n).collect();
        assert_eq!(lines, [2, 3, 4]);
    }
}
