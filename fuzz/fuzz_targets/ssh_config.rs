//! ssh_config: any config (and one included file) resolves or fails
//! cleanly, and a resolved configuration's `-G` dump, read back as a config
//! file, dumps the same.
//!
//! Input: the destination on the first line, then the config; a NUL starts
//! the included file (`Include inc`). The engine reads files as `String`,
//! so non-UTF-8 input is skipped.
//!
//! `-G` prints values unquoted, as OpenSSH does (`ssh -G` output with a
//! `SetEnv B="2 3"` does not parse either), so a config that quotes or
//! escapes anything is only resolved, not read back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warren_config::CommandLine;
use warren_fuzz::{FuzzEnv, assert_dump_round_trips, resolve_in};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // An empty destination resolves (`ssh -G ''` too), but its dump's
    // `host` line has no value; warren's command line refuses it first.
    let (host, files) = match text.split_once('\n') {
        Some((host, files)) if !host.is_empty() => (host, files),
        _ => ("h", text),
    };
    let env = FuzzEnv::from_text(files);
    let Ok(config) = resolve_in(&env, CommandLine::new(host)) else {
        return;
    };
    let _ = config.identity_file_paths(&env);
    let _ = config.proxy_command();
    let _ = config.local_command();
    if !files.contains(['"', '\'', '\\']) {
        assert_dump_round_trips(&config);
    }
});
