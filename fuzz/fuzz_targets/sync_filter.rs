//! rsync-style filter rules and paths from any bytes: the first line-break
//! separated half is an `--exclude-from` file, the rest are paths. Parsing
//! and matching never panic, a file parses as its lines added one by one,
//! and a path excluded by itself is excluded with its parents too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warren_sync::filter::{Action, FilterArg, Filters};

fuzz_target!(|data: &[u8]| {
    let (rules, paths) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let Ok(filters) = Filters::parse([FilterArg::ExcludeFrom(rules)]) else {
        return;
    };
    let mut by_line = Filters::default();
    for line in rules.split(|&b| b == b'\n' || b == b'\r') {
        if line.is_empty() || line[0] == b'#' || line[0] == b';' {
            continue;
        }
        by_line
            .add_rule(Action::Exclude, line)
            .expect("the file parsed");
    }
    assert_eq!(filters, by_line);
    for path in paths.split(|&b| b == 0 || b == b'\n') {
        for is_dir in [false, true] {
            if filters.excluded(path, is_dir) {
                assert!(filters.excluded_with_parents(path, is_dir));
            }
        }
    }
});
