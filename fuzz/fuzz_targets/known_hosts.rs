//! known_hosts lines: every usable entry, written back as a line, parses to
//! the same entry; lookups and the `ssh-keygen -F/-R/-H` editors never
//! panic; `-H` keeps every plain name findable.
//!
//! Input: file text. The parser takes `&str`, so non-UTF-8 input is
//! skipped.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warren_knownhosts::{
    Entry, HostField, HostNames, KnownHosts, KnownHostsFile, Marker, find_host, hash_all,
    remove_host,
};

/// The entry as one known_hosts line. The `\r` is stripped again by the
/// parser, so a comment that itself ends in `\r` survives.
fn line_of(e: &Entry) -> String {
    let marker = match e.marker {
        Marker::None => "",
        Marker::CertAuthority => "@cert-authority ",
        Marker::Revoked => "@revoked ",
    };
    let hosts = match &e.hosts {
        HostField::Patterns(p) => p,
        HostField::Hashed { field, .. } => field,
    };
    let comment = if e.comment.is_empty() {
        String::new()
    } else {
        format!(" {}", e.comment)
    };
    format!("{marker}{hosts} {}{comment}\r\n", e.key.to_openssh())
}

fn assert_entry_round_trips(e: &Entry) {
    let line = line_of(e);
    let again = KnownHostsFile::parse("again", &line);
    assert!(
        again.bad_lines().is_empty(),
        "{line:?}: {:?}",
        again.bad_lines()
    );
    let [back] = again.entries() else {
        panic!("{line:?} gave {} entries", again.entries().len());
    };
    assert_eq!(
        back,
        &Entry {
            line: 1,
            ..e.clone()
        },
        "{line:?}"
    );
}

/// Plain names of an unmarked entry that `-H` hashes.
fn hashable_names(e: &Entry) -> Vec<String> {
    match &e.hosts {
        HostField::Patterns(p) if e.marker == Marker::None && !p.contains(['*', '?', '!']) => p
            .split(',')
            .filter(|n| !n.is_empty())
            .map(str::to_ascii_lowercase)
            .collect(),
        _ => Vec::new(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = KnownHostsFile::parse("fuzz", text);
    let lines = text.split_inclusive('\n').count();
    for bad in file.bad_lines() {
        assert!(bad.line >= 1 && bad.line <= lines);
        let _ = bad.to_string();
    }
    for e in file.entries() {
        assert_entry_round_trips(e);
    }

    let first = file.entries().first().cloned();
    let known = KnownHosts::new(vec![file.clone()]);
    if let Some(e) = &first {
        let name = match &e.hosts {
            HostField::Patterns(p) => p.split(',').next().unwrap_or_default().to_owned(),
            HostField::Hashed { .. } => "h".to_owned(),
        };
        let names = HostNames::new(&name, 22).with_ip("192.0.2.1");
        let _ = known.check(&names, &e.key);
        let _ = known.known_algorithms(&names);
        let _ = known.cert_authorities(&names);
        let _ = find_host(text, &name);
        let _ = remove_host(text, &name);
    }

    let mut n = 0u8;
    let hashed = hash_all(text, || {
        n = n.wrapping_add(1);
        [n; 20]
    });
    if !hashed.invalid.is_empty() {
        return;
    }
    let hashed_file = KnownHostsFile::parse("hashed", &hashed.text);
    for e in file.entries() {
        for name in hashable_names(e) {
            assert!(
                hashed_file
                    .entries()
                    .iter()
                    .any(|h| h.key == e.key && h.matches(&name)),
                "-H lost {name:?} of line {}",
                e.line
            );
        }
    }
});
