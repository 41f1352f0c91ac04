//! Real `ssh-keygen` (OpenSSH 9.2) as the oracle for hashing, `-F`, `-R`
//! and `-H`. These tests fail, never skip, when ssh-keygen is missing.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code: any failure should abort the test loudly"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;
use warren_knownhosts::{
    HostKey, HostNames, KnownHosts, KnownHostsFile, Verdict, format_entry, format_hashed_entry,
};

/// The editors write to a writer; these tests compare text.
struct Out {
    changed: Vec<usize>,
    invalid: Vec<usize>,
    text: String,
}

fn out(edited: std::io::Result<warren_knownhosts::Edited>, bytes: Vec<u8>) -> Out {
    let edited = edited.unwrap();
    Out {
        changed: edited.changed,
        invalid: edited.invalid,
        text: String::from_utf8(bytes).unwrap(),
    }
}

fn remove_host(text: &str, name: &str) -> Out {
    let mut bytes = Vec::new();
    let edited = warren_knownhosts::remove_host(text.as_bytes(), &mut bytes, name);
    out(edited, bytes)
}

fn hash_all(text: &str, salt: impl FnMut() -> [u8; 20]) -> Out {
    let mut bytes = Vec::new();
    let edited = warren_knownhosts::hash_all(text.as_bytes(), &mut bytes, salt);
    out(edited, bytes)
}

fn find_host(text: &str, name: &str) -> Vec<warren_knownhosts::Found> {
    warren_knownhosts::find_host(text.as_bytes(), name).unwrap()
}

fn ssh_keygen(args: &[&str]) -> Output {
    match Command::new("ssh-keygen").args(args).output() {
        Ok(out) => out,
        Err(err) => panic!("ssh-keygen is required for these tests and could not run: {err}"),
    }
}

/// A fresh key pair made by ssh-keygen; returns its public key.
fn gen_key(dir: &Path, name: &str, kind: &str) -> HostKey {
    let path = dir.join(name);
    let path_s = path.to_str().unwrap();
    let out = ssh_keygen(&["-q", "-t", kind, "-N", "", "-f", path_s]);
    assert!(out.status.success(), "ssh-keygen -t {kind}: {out:?}");
    let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    let mut words = public.split_whitespace();
    HostKey::from_openssh_line_fields(words.next().unwrap(), words.next().unwrap()).unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Line numbers ssh-keygen -F reports for `name`.
fn keygen_find(file: &Path, name: &str) -> Vec<usize> {
    let out = ssh_keygen(&["-F", name, "-f", file.to_str().unwrap()]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("# Host {name} found: line ")))
        .map(|rest| rest.split(' ').next().unwrap().parse().unwrap())
        .collect()
}

fn our_find(text: &str, name: &str) -> Vec<usize> {
    find_host(text, name).iter().map(|f| f.line).collect()
}

fn counter_salt() -> impl FnMut() -> [u8; 20] {
    let mut n = 0u8;
    move || {
        n = n.wrapping_add(1);
        [n; 20]
    }
}

struct Corpus {
    _dir: TempDir,
    dir: PathBuf,
    text: String,
}

/// A valid file (ssh-keygen accepts every line) exercising every line form.
fn corpus() -> Corpus {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().to_path_buf();
    let ed = gen_key(&dir, "ed", "ed25519").to_openssh();
    let ec = gen_key(&dir, "ec", "ecdsa").to_openssh();
    let ca = gen_key(&dir, "ca", "ed25519").to_openssh();
    let hashed = format_hashed_entry(&["hashed.example"], &gen_key(&dir, "h", "ed25519"), || {
        [7; 20]
    })
    .unwrap();
    let text = format!(
        "# comment line\n\
         \n\
         a.example,B.example,192.0.2.1 {ed} cmt with  spaces\r\n\
         [a.example]:2222 {ec}\n\
         a.example {ec}\n\
         *.wild.example {ed}\n\
         *.neg.example,!bad.neg.example {ec}\n\
         @cert-authority *.example {ca}\n\
         @revoked a.example {ec}\n\
         {hashed}\
         \t  indented.example {ed}\n\
         last.example {ec}"
    );
    Corpus {
        _dir: tmp,
        dir,
        text,
    }
}

const NAMES: &[&str] = &[
    "a.example",
    "A.example",
    "b.example",
    "192.0.2.1",
    "[a.example]:2222",
    "x.wild.example",
    "ok.neg.example",
    "bad.neg.example",
    "hashed.example",
    "indented.example",
    "last.example",
    "absent.example",
];

#[test]
fn keygen_finds_our_hashed_entries() {
    let tmp = TempDir::new().unwrap();
    let key = gen_key(tmp.path(), "k", "ed25519");
    let names = ["host.example", "192.0.2.9", "[host.example]:2222"];
    let text = format_hashed_entry(&names, &key, counter_salt()).unwrap();
    assert_eq!(text.lines().count(), 3, "one hashed line per name");
    let file = write(tmp.path(), "known_hosts", &text);
    for (i, name) in names.iter().enumerate() {
        assert_eq!(keygen_find(&file, name), [i + 1], "ssh-keygen -F {name}");
    }
    assert_eq!(keygen_find(&file, "other.example"), Vec::<usize>::new());
    assert_eq!(keygen_find(&file, "host.example:2222"), Vec::<usize>::new());
    // And our lookup agrees with itself on the same file.
    let kh = KnownHosts::new(vec![KnownHostsFile::parse("kh", &text)]);
    let verdict = kh.check(&HostNames::new("host.example", 2222), &key);
    assert!(matches!(verdict, Verdict::Known { at, .. } if at.line == 3));
}

#[test]
fn keygen_finds_our_plain_entries() {
    let tmp = TempDir::new().unwrap();
    let key = gen_key(tmp.path(), "k", "ecdsa");
    let text = format_entry(&["Host.Example", "192.0.2.9"], &key).unwrap();
    assert!(text.starts_with("host.example,192.0.2.9 ecdsa-sha2-nistp"));
    let file = write(tmp.path(), "known_hosts", &text);
    assert_eq!(keygen_find(&file, "host.example"), [1]);
    assert_eq!(keygen_find(&file, "192.0.2.9"), [1]);
}

#[test]
fn find_agrees_with_keygen() {
    let c = corpus();
    let file = write(&c.dir, "known_hosts", &c.text);
    for name in NAMES {
        assert_eq!(
            our_find(&c.text, name),
            keygen_find(&file, name),
            "-F {name}"
        );
    }
}

#[test]
fn remove_agrees_with_keygen() {
    let c = corpus();
    for name in NAMES {
        let file = write(&c.dir, "known_hosts", &c.text);
        let out = ssh_keygen(&["-R", name, "-f", file.to_str().unwrap()]);
        assert!(out.status.success(), "ssh-keygen -R {name}: {out:?}");
        let theirs = std::fs::read_to_string(&file).unwrap();
        let ours = remove_host(&c.text, name);
        assert!(ours.invalid.is_empty(), "{:?}", ours.invalid);
        if ours.changed.is_empty() {
            // ssh-keygen leaves the file untouched when nothing matched.
            assert_eq!(theirs, c.text, "-R {name}");
        } else {
            assert_eq!(ours.text, theirs, "-R {name}");
        }
    }
}

#[test]
fn remove_refuses_invalid_files_like_keygen() {
    let c = corpus();
    // A bare CR line is invalid to ssh-keygen (only '\n' ends lines).
    let text = format!("{}\n\r\nbroken.example\n", c.text);
    let file = write(&c.dir, "known_hosts", &text);
    let out = ssh_keygen(&["-R", "a.example", "-f", file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text, "file kept");
    let ours = remove_host(&text, "a.example");
    let last = text.lines().count();
    assert_eq!(ours.invalid, [last - 1, last]);
}

/// Replace hashed host fields that were not in `original` by a marker.
fn mask_new_hashes(text: &str, original: &str) -> Vec<String> {
    text.lines()
        .map(|l| match l.split_once(' ') {
            Some((h, rest)) if h.starts_with("|1|") && !original.contains(h) => {
                format!("<hashed> {rest}")
            }
            _ => l.to_owned(),
        })
        .collect()
}

#[test]
fn hash_all_agrees_with_keygen() {
    let c = corpus();
    let file = write(&c.dir, "known_hosts", &c.text);
    let out = ssh_keygen(&["-H", "-f", file.to_str().unwrap()]);
    assert!(out.status.success(), "ssh-keygen -H: {out:?}");
    let theirs = std::fs::read_to_string(&file).unwrap();
    let ours = hash_all(&c.text, counter_salt());
    assert!(ours.invalid.is_empty());
    assert_eq!(ours.changed, [3, 4, 5, 11, 12]);
    assert_eq!(
        mask_new_hashes(&ours.text, &c.text),
        mask_new_hashes(&theirs, &c.text)
    );
    // Every name resolves to the same lines in both hashed files, and to
    // what ssh-keygen -F finds in ours.
    let our_file = write(&c.dir, "ours", &ours.text);
    for name in NAMES {
        let want = our_find(&theirs, name);
        assert_eq!(our_find(&ours.text, name), want, "{name}");
        assert_eq!(keygen_find(&our_file, name), want, "-F {name} in ours");
    }
    // Lookups on ssh-keygen's hashed file give the same verdicts as on the
    // original (modulo line numbers, which hashing shifts).
    let before = KnownHosts::new(vec![KnownHostsFile::parse("kh", &c.text)]);
    let after = KnownHosts::new(vec![KnownHostsFile::parse("kh", &theirs)]);
    let keys: Vec<HostKey> = before.files()[0]
        .entries()
        .iter()
        .map(|e| e.key.clone())
        .collect();
    for name in NAMES.iter().filter(|n| **n != "A.example") {
        let names = HostNames::new(name, 22);
        for key in &keys {
            let kind = |v: Verdict| std::mem::discriminant(&v);
            assert_eq!(
                kind(before.check(&names, key)),
                kind(after.check(&names, key)),
                "{name} {}",
                key.key_type()
            );
        }
    }
}

#[test]
fn hashing_mixed_case_lowercases_like_keygen() {
    let c = corpus();
    let hashed = hash_all(&c.text, counter_salt());
    let file = write(&c.dir, "known_hosts", &hashed.text);
    // "B.example" was hashed lowercased, so only the lowercase name hits
    // line 4; line 10 is the "@cert-authority *.example" pattern line,
    // which matches case-insensitively.
    assert_eq!(keygen_find(&file, "b.example"), [4, 10]);
    assert_eq!(our_find(&hashed.text, "b.example"), [4, 10]);
    assert_eq!(keygen_find(&file, "B.example"), [10]);
    assert_eq!(our_find(&hashed.text, "B.example"), [10]);
}
