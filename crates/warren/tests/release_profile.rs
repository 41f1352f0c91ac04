//! The installed binary is lean: the release profile strips it and keeps
//! no debug info (58 MiB with it, 16.4 without), and profiling builds
//! have a profile of their own that keeps symbols and line tables.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]

const MANIFEST: &str = include_str!("../../../Cargo.toml");

/// The `key = value` lines of `[section]`.
fn section(name: &str) -> Vec<(String, String)> {
    let header = format!("[{name}]");
    MANIFEST
        .lines()
        .skip_while(|l| l.trim() != header)
        .skip(1)
        .take_while(|l| !l.starts_with('['))
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            Some((k.trim().to_owned(), v.trim().to_owned()))
        })
        .collect()
}

fn value(section_name: &str, key: &str) -> Option<String> {
    section(section_name)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

// The release profile carried `debug = "line-tables-only"` and no strip:
// a 58 MiB installed binary.
#[test]
fn release_is_stripped_and_profiling_keeps_symbols() {
    assert_eq!(value("profile.release", "strip").as_deref(), Some("true"));
    assert_eq!(value("profile.release", "debug").as_deref(), Some("false"));
    assert_eq!(
        value("profile.profiling", "inherits").as_deref(),
        Some("\"release\"")
    );
    assert_eq!(
        value("profile.profiling", "debug").as_deref(),
        Some("\"line-tables-only\"")
    );
    assert_eq!(
        value("profile.profiling", "strip").as_deref(),
        Some("false")
    );
}
