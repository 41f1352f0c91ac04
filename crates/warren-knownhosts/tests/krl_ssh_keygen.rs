//! KRLs written by the real `ssh-keygen -k`, checked against `ssh-keygen -Q`
//! for every key and certificate, revoked or not.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use warren_knownhosts::{CertEntry, HostKey, Krl, RevokedKeys, Section};

fn ssh_keygen(args: &[&str], dir: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("ssh-keygen is required (apt-get install openssh-client)");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

fn keygen(dir: &Path, name: &str, kind: &str) -> PathBuf {
    ssh_keygen(&["-q", "-t", kind, "-N", "", "-C", name, "-f", name], dir);
    let public = dir.join(format!("{name}.pub"));
    assert!(public.exists(), "ssh-keygen -t {kind} made no {name}.pub");
    public
}

/// Certifies `key` (a `.pub` path) with `ca`; returns the certificate path.
fn certify(dir: &Path, ca: &str, key: &str, id: &str, serial: u64) -> PathBuf {
    let out = ssh_keygen(
        &[
            "-q",
            "-s",
            ca,
            "-h",
            "-I",
            id,
            "-z",
            &serial.to_string(),
            "-n",
            "host.example",
            &format!("{key}.pub"),
        ],
        dir,
    );
    let cert = dir.join(format!("{key}-cert.pub"));
    assert!(cert.exists(), "ssh-keygen -s made no certificate: {out}");
    // Each certificate gets its own name so the next one does not replace it.
    let named = dir.join(format!("{key}-{id}-{serial}-cert.pub"));
    std::fs::rename(&cert, &named).expect("rename cert");
    named
}

fn host_key(path: &Path) -> HostKey {
    let text = std::fs::read_to_string(path).expect("read .pub");
    let mut words = text.split_whitespace();
    let (t, b64) = (words.next().expect("type"), words.next().expect("b64"));
    HostKey::from_openssh_line_fields(t, b64).expect("ssh-keygen's key parses")
}

/// `ssh-keygen -Q -f krl KEY...`: for each key, whether it is revoked.
fn oracle(dir: &Path, krl: &str, keys: &[PathBuf]) -> Vec<bool> {
    let mut args = vec!["-Q".to_owned(), "-f".to_owned(), krl.to_owned()];
    args.extend(keys.iter().map(|k| k.display().to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = ssh_keygen(&args, dir);
    keys.iter()
        .map(|k| {
            let line = out
                .lines()
                .find(|l| l.starts_with(&k.display().to_string()))
                .unwrap_or_else(|| {
                    panic!("ssh-keygen -Q said nothing about {}: {out}", k.display())
                });
            assert!(
                line.ends_with(": ok") || line.ends_with(": REVOKED"),
                "{line}"
            );
            line.ends_with(": REVOKED")
        })
        .collect()
}

struct Fixture {
    dir: tempfile::TempDir,
    keys: Vec<PathBuf>,
}

/// Plain keys a..e and ec, CAs ca and other_ca, and certificates of `h`
/// with assorted serials and key IDs from both CAs, plus one signed by `a`.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let mut keys: Vec<PathBuf> = ["a", "b", "c", "d", "e"]
        .iter()
        .map(|n| keygen(d, n, "ed25519"))
        .collect();
    keys.push(keygen(d, "ec", "ecdsa"));
    for ca in ["ca", "other_ca"] {
        keygen(d, ca, "ed25519");
    }
    keygen(d, "h", "ed25519");
    keys.push(d.join("h.pub"));
    for serial in [
        0, 1, 3, 5, 6, 99, 100, 101, 130, 158, 159, 160, 1000, 1001, 2000, 4999, 5000, 77777,
        90000, 90001,
    ] {
        keys.push(certify(d, "ca", "h", "host", serial));
    }
    keys.push(certify(d, "ca", "h", "revoked-id", 77));
    keys.push(certify(d, "ca", "h", "revoked-id", 0));
    keys.push(certify(d, "other_ca", "h", "host", 3));
    keys.push(certify(d, "other_ca", "h", "revoked-id", 4));
    // Certified by a plain key that the KRL revokes: revoked through its CA.
    keys.push(certify(d, "a", "e", "host", 42));
    Fixture { dir, keys }
}

impl Fixture {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).expect("read KRL")
    }

    fn public(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(&format!("{name}.pub"))).expect("pub")
    }

    /// Our verdict and ssh-keygen's for every key, side by side.
    fn compare(&self, krl_name: &str) -> Krl {
        let bytes = self.read(krl_name);
        let krl = Krl::parse(&bytes).expect("ssh-keygen's KRL parses");
        // Encoding is canonical: ssh-keygen's bytes come back unchanged.
        assert_eq!(krl.to_bytes(), bytes, "{krl_name} round trip");
        let revoked = RevokedKeys::parse(&bytes).expect("parses");
        let want = oracle(self.dir.path(), krl_name, &self.keys);
        let mut revoked_count = 0;
        for (key, want) in self.keys.iter().zip(want) {
            let k = host_key(key);
            assert_eq!(krl.is_revoked(&k), want, "{krl_name}: {}", key.display());
            assert_eq!(
                revoked.is_revoked(&k),
                want,
                "{krl_name}: {}",
                key.display()
            );
            revoked_count += usize::from(want);
        }
        // Both outcomes occur, or the comparison proves little.
        assert!(
            revoked_count > 0 && revoked_count < self.keys.len(),
            "{krl_name}: {revoked_count} of {} revoked",
            self.keys.len()
        );
        krl
    }
}

// Before this change RevokedHostKeys was ignored: no KRL could be read.
#[test]
fn krl_from_spec_matches_ssh_keygen_for_every_section_type() {
    let f = fixture();
    let hash = ssh_keygen(&["-l", "-f", "d.pub"], f.dir.path());
    let hash = hash.split_whitespace().nth(1).expect("fingerprint");
    let mut spec = String::from("serial: 1-5\n");
    for serial in (100..=160).step_by(2) {
        spec.push_str(&format!("serial: {serial}\n"));
    }
    spec.push_str("serial: 1000\nserial: 2000\nserial: 5000-90000\nid: revoked-id\n");
    spec.push_str(&format!("key: {}", f.public("a")));
    spec.push_str(&format!("sha1: {}", f.public("b")));
    spec.push_str(&format!("sha256: {}", f.public("c")));
    spec.push_str(&format!("hash: {hash}\n"));
    std::fs::write(f.path("spec"), spec).expect("spec");
    let out = ssh_keygen(&["-k", "-f", "krl", "-s", "ca.pub", "spec"], f.dir.path());
    assert!(f.path("krl").exists(), "ssh-keygen -k failed: {out}");
    let krl = f.compare("krl");

    // Every section and subsection type ssh-keygen writes was exercised.
    let mut seen: Vec<&str> = Vec::new();
    for section in &krl.sections {
        match section {
            Section::Certificates(c) => {
                for entry in &c.entries {
                    seen.push(match entry {
                        CertEntry::Serials(_) => "serial list",
                        CertEntry::Range { .. } => "serial range",
                        CertEntry::Bitmap { .. } => "serial bitmap",
                        CertEntry::KeyIds(_) => "key id",
                        CertEntry::Extension(_) => "cert extension",
                    });
                }
            }
            Section::ExplicitKeys(_) => seen.push("explicit key"),
            Section::Sha1(_) => seen.push("sha1"),
            Section::Sha256(_) => seen.push("sha256"),
            Section::Signature { .. } => seen.push("signature"),
            Section::Extension(_) => seen.push("extension"),
        }
    }
    for kind in [
        "serial list",
        "serial range",
        "serial bitmap",
        "key id",
        "explicit key",
        "sha1",
        "sha256",
    ] {
        assert!(seen.contains(&kind), "no {kind} section in {seen:?}");
    }
}

// Before this change RevokedHostKeys was ignored: no KRL could be read.
#[test]
fn krl_of_key_files_and_updates_matches_ssh_keygen() {
    let f = fixture();
    // Plain keys on the command line, no CA: explicit keys; then a key ID
    // for any CA and a CA key itself added with -u.
    let out = ssh_keygen(&["-k", "-f", "krl2", "b.pub", "ec.pub"], f.dir.path());
    assert!(f.path("krl2").exists(), "ssh-keygen -k failed: {out}");
    std::fs::write(f.path("spec2"), "id: revoked-id\n").expect("spec");
    ssh_keygen(&["-k", "-u", "-f", "krl2", "spec2"], f.dir.path());
    std::fs::write(f.path("spec3"), format!("key: {}", f.public("other_ca"))).expect("spec");
    ssh_keygen(&["-k", "-u", "-f", "krl2", "spec3"], f.dir.path());
    f.compare("krl2");
}

// Before this change RevokedHostKeys was ignored: an empty KRL is still a
// KRL (nothing revoked), and a KRL that ssh-keygen refuses is refused.
#[test]
fn empty_and_damaged_krls() {
    let f = fixture();
    let out = ssh_keygen(&["-k", "-f", "empty"], f.dir.path());
    let bytes = f.read("empty");
    let krl = Krl::parse(&bytes).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert!(krl.sections.is_empty());
    assert!(!krl.is_revoked(&host_key(&f.keys[0])));

    std::fs::write(f.path("spec"), "serial: 7\n").expect("spec");
    ssh_keygen(&["-k", "-f", "one", "-s", "ca.pub", "spec"], f.dir.path());
    let mut bytes = f.read("one");
    // Cut the last section short: both refuse it.
    bytes.pop();
    std::fs::write(f.path("cut"), &bytes).expect("write");
    let out = ssh_keygen(&["-Q", "-f", "cut", "a.pub"], f.dir.path());
    assert!(!out.contains(": ok"), "ssh-keygen accepted it: {out}");
    assert!(Krl::parse(&bytes).is_err());
}
