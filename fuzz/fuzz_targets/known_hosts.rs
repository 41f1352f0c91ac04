//! known_hosts lines: every usable entry, written back as a line, parses to
//! the same entry; lookups and the `ssh-keygen -F/-R/-H` editors never
//! panic; `-H` keeps every plain name findable.
//!
//! Input: file bytes, any bytes (known_hosts is read as bytes, line by
//! line: a bad line is skipped, never the file).
#![no_main]

use libfuzzer_sys::fuzz_target;
use warren_knownhosts::{
    Entry, HostField, HostNames, KnownHosts, KnownHostsFile, Marker, find_host, hash_all,
    remove_host,
};

/// The entry as one known_hosts line. The `\r` is stripped again by the
/// parser, so a comment that itself ends in `\r` survives.
fn line_of(e: &Entry) -> Vec<u8> {
    let marker: &[u8] = match e.marker {
        Marker::None => b"",
        Marker::CertAuthority => b"@cert-authority ",
        Marker::Revoked => b"@revoked ",
    };
    let hosts: &[u8] = match &e.hosts {
        HostField::Patterns(p) => p,
        HostField::Hashed { field, .. } => field.as_bytes(),
    };
    let mut line = [marker, hosts, b" ", e.key.to_openssh().as_bytes()].concat();
    if !e.comment.is_empty() {
        line.push(b' ');
        line.extend_from_slice(&e.comment);
    }
    line.extend_from_slice(b"\r\n");
    line
}

fn assert_entry_round_trips(e: &Entry) {
    let line = line_of(e);
    let again = KnownHostsFile::parse("again", &line);
    let shown = String::from_utf8_lossy(&line);
    assert!(
        again.bad_lines().is_empty(),
        "{shown:?}: {:?}",
        again.bad_lines()
    );
    let [back] = again.entries() else {
        panic!("{shown:?} gave {} entries", again.entries().len());
    };
    assert_eq!(
        back,
        &Entry {
            line: 1,
            ..e.clone()
        },
        "{shown:?}"
    );
}

/// Plain names of an unmarked entry that `-H` hashes.
fn hashable_names(e: &Entry) -> Vec<String> {
    match &e.hosts {
        HostField::Patterns(p)
            if e.marker == Marker::None && !p.iter().any(|b| b"*?!".contains(b)) =>
        {
            p.split(|&b| b == b',')
                .filter(|n| !n.is_empty())
                // Lookups take UTF-8 names; a byte name is hashed as bytes
                // but cannot be asked for.
                .filter_map(|n| std::str::from_utf8(n).ok())
                .map(str::to_ascii_lowercase)
                .collect()
        }
        _ => Vec::new(),
    }
}

fuzz_target!(|data: &[u8]| {
    let text = data;
    let file = KnownHostsFile::parse("fuzz", text);
    let lines = text.split_inclusive(|&b| b == b'\n').count();
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
            HostField::Patterns(p) => {
                let first = p.split(|&b| b == b',').next().unwrap_or_default();
                String::from_utf8_lossy(first).into_owned()
            }
            HostField::Hashed { .. } => "h".to_owned(),
        };
        let names = HostNames::new(&name, 22).with_ip("192.0.2.1");
        let _ = known.check(&names, &e.key);
        let _ = known.known_algorithms(&names);
        let _ = known.cert_authorities(&names);
        let _ = find_host(text, &name);
        let mut out = Vec::new();
        let removed = remove_host(text, &mut out, &name);
        // Nothing removed, nothing invalid: the bytes come back unchanged,
        // except that the last line is ended (ssh-keygen writes each line
        // with its newline too; a file with nothing removed is not replaced).
        if let Ok(edited) = removed
            && edited.changed.is_empty()
            && edited.invalid.is_empty()
        {
            let mut want = text.to_vec();
            if !want.is_empty() && !want.ends_with(b"\n") {
                want.push(b'\n');
            }
            assert_eq!(out, want, "-R changed a file it removed nothing from");
        }
    }

    let mut n = 0u8;
    let mut hashed_text = Vec::new();
    let Ok(hashed) = hash_all(text, &mut hashed_text, || {
        n = n.wrapping_add(1);
        [n; 20]
    }) else {
        return;
    };
    if !hashed.invalid.is_empty() {
        return;
    }
    let hashed_file = KnownHostsFile::parse("hashed", &hashed_text);
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
