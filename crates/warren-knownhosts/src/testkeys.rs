//! Synthetic public keys and certificates for unit tests (well-formed
//! blobs with made-up material; nothing here is verified cryptographically).

use crate::key::HostKey;

fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&u32::try_from(s.len()).unwrap_or(0).to_be_bytes());
    out.extend_from_slice(s);
}

fn blob(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        put_string(&mut out, p);
    }
    out
}

fn key(b: Vec<u8>) -> HostKey {
    HostKey::from_blob(b).expect("test key blob is well formed")
}

pub fn ed(n: u8) -> HostKey {
    key(blob(&[b"ssh-ed25519", &[n; 32]]))
}

pub fn ecdsa(n: u8) -> HostKey {
    let mut q = vec![4u8];
    q.extend_from_slice(&[n; 64]);
    key(blob(&[b"ecdsa-sha2-nistp256", b"nistp256", &q]))
}

pub fn rsa(n: u8) -> HostKey {
    key(blob(&[b"ssh-rsa", &[1, 0, 1], &[n; 64]]))
}

/// An ed25519 host certificate for `ed(n)` signed by `ca`.
pub fn ed_cert(n: u8, ca: &HostKey) -> HostKey {
    let mut b = blob(&[b"ssh-ed25519-cert-v01@openssh.com", b"nonce", &[n; 32]]);
    b.extend_from_slice(&7u64.to_be_bytes());
    b.extend_from_slice(&2u32.to_be_bytes());
    put_string(&mut b, b"key id");
    put_string(&mut b, &blob(&[b"host.example"]));
    b.extend_from_slice(&0u64.to_be_bytes());
    b.extend_from_slice(&u64::MAX.to_be_bytes());
    for _ in 0..3 {
        put_string(&mut b, b"");
    }
    put_string(&mut b, ca.blob());
    put_string(&mut b, b"not really a signature");
    key(b)
}

/// `<type> <base64>` for a line.
pub fn k(key: &HostKey) -> String {
    key.to_openssh()
}
