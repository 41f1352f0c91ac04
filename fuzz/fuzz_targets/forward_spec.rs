//! Forward specifications (`-L`, `-R`, `-D`, and LocalForward,
//! RemoteForward, DynamicForward lines): a spec that parses comes back
//! unchanged from its `-G` line, and the whole dump round trips.
//!
//! Input: the first byte picks the flag (`L`, `R`, anything else `D`), the
//! rest is the spec. Specs are `&str` in warren-config, so non-UTF-8 input
//! is skipped.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warren_config::{CommandLine, Flag};
use warren_fuzz::{FuzzEnv, assert_dump_round_trips, resolve_in};

fuzz_target!(|data: &[u8]| {
    let Some((&kind, spec)) = data.split_first() else {
        return;
    };
    let Ok(spec) = std::str::from_utf8(spec) else {
        return;
    };
    let (flag, keyword) = match kind {
        b'L' => (Flag::LocalForward(spec.to_owned()), "LocalForward"),
        b'R' => (Flag::RemoteForward(spec.to_owned()), "RemoteForward"),
        _ => (Flag::DynamicForward(spec.to_owned()), "DynamicForward"),
    };
    let mut cli = CommandLine::new("h");
    cli.flag(flag);
    let from_flag = resolve_in(&FuzzEnv::new("", None), cli);
    // The same spec on a config line; the lexer's quoting is not what is
    // tested here, so only specs that are one plain word go through it.
    // (OpenSSH's config parser also cuts a spec past its 256-byte buffer,
    // where its command line takes it whole: measured with ssh 9.2, and
    // warren reads such lines the same way.)
    let plain = !spec.is_empty()
        && spec.len() <= 240
        && !spec.contains(|c: char| c.is_whitespace() || "\"'#=\\".contains(c));
    if plain {
        let from_file = resolve_in(
            &FuzzEnv::new(&format!("{keyword} {spec}\n"), None),
            CommandLine::new("h"),
        );
        if let (Ok(a), Ok(b)) = (&from_flag, &from_file) {
            assert_eq!(a.local_forwards(), b.local_forwards(), "{spec:?}");
            assert_eq!(a.remote_forwards(), b.remote_forwards(), "{spec:?}");
            assert_eq!(a.dynamic_forwards(), b.dynamic_forwards(), "{spec:?}");
        }
    }
    // A newline in a path would print as two `-G` lines.
    let Ok(config) = from_flag else {
        return;
    };
    if spec.contains('\n') {
        return;
    }
    let Some(again) = assert_dump_round_trips(&config) else {
        return;
    };
    assert_eq!(config.local_forwards(), again.local_forwards());
    assert_eq!(config.remote_forwards(), again.remote_forwards());
    assert_eq!(config.dynamic_forwards(), again.dynamic_forwards());
});
