//! Property tests: parsing arbitrary text never panics, and entries we
//! format parse back and match the names they were written for.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]
#![expect(clippy::unwrap_used, reason = "test code")]

use proptest::prelude::*;
use warren_knownhosts::{
    HostKey, HostNames, KnownHosts, KnownHostsFile, Verdict, format_entry, format_hashed_entry,
};

/// The editors write to a writer; these tests compare text.
struct Out {
    changed: Vec<usize>,
    text: String,
}

fn out(edited: std::io::Result<warren_knownhosts::Edited>, bytes: Vec<u8>) -> Out {
    let edited = edited.unwrap();
    Out {
        changed: edited.changed,
        text: String::from_utf8(bytes).unwrap(),
    }
}

fn remove_host(text: &str, name: &str) -> Out {
    let mut bytes = Vec::new();
    let edited = warren_knownhosts::remove_host(text.as_bytes(), &mut bytes, name);
    out(edited, bytes)
}

fn find_host(text: &str, name: &str) -> Vec<warren_knownhosts::Found> {
    warren_knownhosts::find_host(text.as_bytes(), name).unwrap()
}

fn ed25519(pk: [u8; 32]) -> HostKey {
    let mut blob = Vec::new();
    blob.extend_from_slice(&11u32.to_be_bytes());
    blob.extend_from_slice(b"ssh-ed25519");
    blob.extend_from_slice(&32u32.to_be_bytes());
    blob.extend_from_slice(&pk);
    HostKey::from_blob(blob).unwrap()
}

/// Text built from known_hosts-ish fragments, so that parsing gets deep.
fn fragments() -> impl Strategy<Value = String> {
    let frag = prop_oneof![
        Just("@revoked ".to_owned()),
        Just("@cert-authority ".to_owned()),
        Just("|1|".to_owned()),
        Just("AAECAwQFBgcICQoLDA0ODxAREhM=|".to_owned()),
        Just("ssh-ed25519 ".to_owned()),
        Just("AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f".to_owned()),
        Just("ssh-ed25519-cert-v01@openssh.com ".to_owned()),
        Just("\r\n".to_owned()),
        Just("\n".to_owned()),
        Just(",".to_owned()),
        Just("!".to_owned()),
        Just("*".to_owned()),
        Just("[h]:22 ".to_owned()),
        Just("#".to_owned()),
        "[ -~\t]{0,12}",
    ];
    prop::collection::vec(frag, 0..24).prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn parse_never_panics(text in any::<Vec<u8>>()) {
        let file = KnownHostsFile::parse("p", &text);
        let lines = text.split_inclusive(|&b| b == b'\n').count();
        for bad in file.bad_lines() {
            prop_assert!(bad.line >= 1 && bad.line <= lines);
        }
        let read = KnownHostsFile::read("p", text.as_slice(), |_| true).unwrap();
        prop_assert_eq!(&read, &file);
        let _ = warren_knownhosts::find_host(text.as_slice(), "h").unwrap();
        // Whatever the bytes, an edit that changes nothing gives them back
        // (each line newline-terminated).
        let mut kept = Vec::new();
        let removed = warren_knownhosts::remove_host(text.as_slice(), &mut kept, "h").unwrap();
        if removed.changed.is_empty() {
            let mut want = text.clone();
            if !want.is_empty() && !want.ends_with(b"\n") {
                want.push(b'\n');
            }
            prop_assert_eq!(kept, want);
        }
        let _ = warren_knownhosts::hash_all(text.as_slice(), std::io::sink(), || [1; 20]).unwrap();
    }

    #[test]
    fn structured_text_never_panics(text in fragments(), name in "[a-z*?!,\\[\\]:0-9]{0,8}") {
        let kh = KnownHosts::new(vec![KnownHostsFile::parse("p", &text)]);
        let names = HostNames::new(&name, 2222).with_ip("192.0.2.1");
        let _ = kh.check(&names, &ed25519([0; 32]));
        let _ = kh.known_algorithms(&names);
        let _ = kh.cert_authorities(&names);
        // Unchanged lines survive edits byte for byte.
        let removed = remove_host(&text, &name);
        if removed.changed.is_empty() {
            let mut want = text.clone();
            if !want.is_empty() && !want.ends_with('\n') {
                want.push('\n');
            }
            prop_assert_eq!(removed.text, want);
        }
    }

    #[test]
    fn formatted_entries_round_trip(
        host in "[a-z0-9][a-z0-9.-]{0,20}",
        port in prop_oneof![Just(22u16), 1u16..],
        ip in "(25[0-5]|1?[0-9]{1,2})\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
        pk in any::<[u8; 32]>(),
        salt in any::<[u8; 20]>(),
        hashed in any::<bool>(),
    ) {
        prop_assume!(host != ip);
        let key = ed25519(pk);
        let names = HostNames::new(&host, port).with_ip(&ip);
        let host_name = names.host();
        let ip_name = names.ip().unwrap();
        let both = [host_name.as_str(), ip_name.as_str()];
        let text = if hashed {
            format_hashed_entry(&both, &key, || salt).unwrap()
        } else {
            format_entry(&both, &key).unwrap()
        };
        let file = KnownHostsFile::parse("p", &text);
        prop_assert!(file.bad_lines().is_empty());
        prop_assert_eq!(file.entries().len(), if hashed { 2 } else { 1 });
        prop_assert!(file.entries().iter().all(|e| e.key == key));
        let kh = KnownHosts::new(vec![file]);
        let verdict = kh.check(&names, &key);
        let is_known = matches!(verdict, Verdict::Known { without_port: false, .. });
        prop_assert!(is_known, "{:?}", verdict);
        let other = ed25519([!pk[0]; 32]);
        let is_changed = matches!(kh.check(&names, &other), Verdict::Changed { .. });
        prop_assert!(is_changed);
        prop_assert_eq!(find_host(&text, &host_name).len(), 1);
        prop_assert_eq!(remove_host(&text, &host_name).changed.len(), 1);
    }
}
