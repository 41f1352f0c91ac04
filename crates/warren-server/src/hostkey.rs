//! The server's host key: loaded from an OpenSSH private key file, or
//! generated (ed25519) on first run and kept, so clients see the same key
//! every time.
//!
//! Design choice: a new key is written to a temp file created 0600 in the
//! target directory and renamed into place, so a crash never leaves a
//! half-written or world-readable key, and two servers starting at once
//! cannot both "win" with different keys (the loser reads the winner's).

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use russh::keys::ssh_key::LineEnding;
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::{HashAlg, PrivateKey};

use crate::ServerError;

/// `$XDG_CONFIG_HOME/warren/host_ed25519_key`, else
/// `~/.config/warren/host_ed25519_key`.
pub fn default_host_key_path() -> Result<PathBuf, ServerError> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => {
            let home = std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .ok_or(ServerError::NoConfigDir)?;
            PathBuf::from(home).join(".config")
        }
    };
    Ok(base.join("warren").join("host_ed25519_key"))
}

/// A host key and whether it was generated just now.
#[derive(Debug)]
pub struct HostKey {
    pub key: PrivateKey,
    pub generated: bool,
}

impl HostKey {
    /// `SHA256:...`, as `ssh-keygen -l` prints it.
    pub fn fingerprint(&self) -> String {
        self.key
            .public_key()
            .fingerprint(HashAlg::Sha256)
            .to_string()
    }
}

/// Reads the key at `path`, generating an ed25519 key there (and its
/// `.pub`) if the file does not exist.
pub fn load_or_generate(path: &Path) -> Result<HostKey, ServerError> {
    match warren_core::keys::read_key_text(path) {
        Ok(text) => Ok(HostKey {
            key: parse(path, &text)?,
            generated: false,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => generate(path),
        Err(source) => Err(ServerError::HostKeyRead {
            path: path.to_owned(),
            source,
        }),
    }
}

fn parse(path: &Path, text: &str) -> Result<PrivateKey, ServerError> {
    // As OpenSSH reads it: an ECDSA scalar shorter than its curve included.
    let key = warren_core::keys::parse_openssh(text).map_err(|e| ServerError::HostKeyParse {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    if key.is_encrypted() {
        return Err(ServerError::HostKeyParse {
            path: path.to_owned(),
            reason: "the key is encrypted; a host key must have no passphrase".into(),
        });
    }
    Ok(key)
}

/// `KEY.pub` beside `KEY`.
fn public_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".pub");
    PathBuf::from(p)
}

/// A fresh ed25519 key, in memory only (for throwaway servers).
pub fn generate_ephemeral() -> PrivateKey {
    PrivateKey::from(Ed25519Keypair::from_seed(&rand::random::<[u8; 32]>()))
}

fn generate(path: &Path) -> Result<HostKey, ServerError> {
    let write_err = |source: std::io::Error| ServerError::HostKeyWrite {
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(write_err)?;
    let key = generate_ephemeral();
    let pem = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| write_err(std::io::Error::other(e)))?;
    let tmp = dir.join(format!(".host_key.{}.tmp", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(write_err)?;
    file.write_all(pem.as_bytes()).map_err(write_err)?;
    file.sync_all().map_err(write_err)?;
    // Hard link instead of rename: fails if another server created the key
    // meanwhile, and then that key is the one.
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return load_or_generate(path),
        Err(e) => return Err(write_err(e)),
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(write_err)?;
    if let Ok(public) = key.public_key().to_openssh() {
        let _ = std::fs::write(public_path(path), format!("{public} warren-host\n"));
    }
    Ok(HostKey {
        key,
        generated: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_then_kept_with_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/host_key");
        let first = load_or_generate(&path).unwrap();
        assert!(first.generated);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let second = load_or_generate(&path).unwrap();
        assert!(!second.generated);
        assert_eq!(first.fingerprint(), second.fingerprint());
        assert!(public_path(&path).exists());
    }

    // Regression: one ssh-keygen ECDSA key in ~256 has a 31-byte scalar,
    // which ssh-key refuses ("length invalid"); sshd reads such host keys.
    #[test]
    fn ecdsa_host_key_with_a_short_scalar_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("host_key");
        let found = (0..4000).any(|_| {
            let _ = std::fs::remove_file(&path);
            let _ = std::fs::remove_file(public_path(&path));
            let made = std::process::Command::new("ssh-keygen")
                .args(["-q", "-t", "ecdsa", "-N", "", "-f"])
                .arg(&path)
                .status()
                .expect("ssh-keygen is required (openssh-client)");
            assert!(made.success());
            let text = std::fs::read_to_string(&path).unwrap();
            PrivateKey::from_openssh(&text).is_err()
        });
        assert!(found, "no key ssh-key refuses in 4000 from ssh-keygen");
        let key = load_or_generate(&path).unwrap();
        assert!(!key.generated);
        let public = std::fs::read_to_string(public_path(&path)).unwrap();
        let public = russh::keys::PublicKey::from_openssh(public.trim()).unwrap();
        assert_eq!(key.key.public_key().key_data(), public.key_data());
    }

    #[test]
    fn garbage_key_file_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("host_key");
        std::fs::write(&path, "not a key").unwrap();
        let err = load_or_generate(&path).unwrap_err().to_string();
        assert!(err.contains("host_key"), "{err}");
    }
}
