//! Private key files, read as `warren ssh -i` and `warren add` read them
//! (`keys::read_private`: OpenSSH format, else PEM/PKCS#8): any file
//! reads or fails cleanly, and a key read writes back in OpenSSH format to
//! the same key, with the same public half as `read_public_for` finds.
//!
//! Input: the file's bytes. Written to a 0600 file in a private temp
//! directory, because the reading functions take a path.
#![no_main]

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use russh::keys::ssh_key::LineEnding;
use russh::keys::{PrivateKey, PublicKey};
use warren_core::keys::{
    FingerprintHash, fingerprint_line, is_encrypted_file, public_lines, randomart, read_private,
    read_public_for,
};

fn key_path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("warren-fuzz-key-{}", std::process::id()));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .expect("temp dir");
        dir.join("id_fuzz")
    })
}

fn write(data: &[u8]) {
    let path = key_path();
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .expect("key file");
    f.write_all(data).expect("write key file");
}

fuzz_target!(|data: &[u8]| {
    write(data);
    let path = key_path();
    let encrypted = is_encrypted_file(path);
    let public = read_public_for(path);
    let Ok(key) = read_private(path) else {
        return;
    };
    assert_eq!(key.is_encrypted(), encrypted);
    let public_key = key.public_key();
    let _ = fingerprint_line(public_key.key_data(), "c", FingerprintHash::Sha256);
    let _ = randomart(public_key.key_data(), FingerprintHash::Md5);

    if let Ok(text) = key.to_openssh(LineEnding::LF) {
        let again = PrivateKey::from_openssh(text.as_bytes()).expect("a written key reads back");
        assert!(again == key, "the key read back differs");
    }
    if let Ok(line) = public_key.to_openssh() {
        let again = PublicKey::from_openssh(&line).expect("a written public key reads back");
        assert_eq!(again.key_data(), public_key.key_data());
    }
    // A file that also holds a public key line names that key instead.
    let text = String::from_utf8_lossy(data);
    if public_lines(&text).is_empty()
        && let Ok(found) = public
    {
        assert_eq!(found.key_data(), public_key.key_data());
    }
});
