//! Destinations and jump hosts: `[user@]host[:port]` and
//! `ssh://[user@]host[:port]` as `-J` (checked strictly, like a name typed
//! on the command line), as a ProxyJump line, and as the destination
//! itself. A jump that parses comes back unchanged from its `-G` line, and
//! the whole dump round trips.
//!
//! The `warren ssh` destination argument is split by the binary's own
//! `parse_destination` (not a library function, so not reached here); the
//! parsers below are the ones ProxyJump and `-J` use. Input is `&str` in
//! warren-config, so non-UTF-8 input is skipped.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warren_config::{CommandLine, Flag, HostConfig, JumpHost};
use warren_fuzz::{FuzzEnv, assert_dump_round_trips, resolve_in};

/// Resolves `h` with `-J hops` and no config.
fn with_flag(hops: &str) -> Option<HostConfig> {
    let mut cli = CommandLine::new("h");
    cli.flag(Flag::ProxyJump(hops.to_owned()));
    resolve_in(&FuzzEnv::new("", None), cli).ok()
}

/// Whether `-G`'s `[user@]host[:port]` can carry this jump. Like
/// OpenSSH, it prints the user of an `ssh://` URI decoded and unquoted, so
/// a user with a blank or a comma (`ssh://a%2Cb@h`) reads back as other
/// words or hops, and one that starts with `ssh://` as a URI; and it puts
/// a host in brackets only if it has a `:` or is all digits and dots, so a
/// host given as `[/]` or `[[a]` prints unreadable.
fn prints_back(jump: &JumpHost) -> bool {
    !jump.host.contains(['/', '[', ']', '@'])
        && jump.user.as_deref().is_none_or(|u| {
            // `:`, `/`, brackets, `#` and `@` in a URI's (decoded) user
            // print as-is and read back as other parts (`ssh -G` prints
            // `ssh://:a%23b@1` as `proxyjump :a#b@[1]` too).
            !u.contains(|c: char| c.is_whitespace() || ",:/[]#@".contains(c))
                && !u.starts_with("ssh://")
        })
}

/// The jump `-G` prints, parsed again, is the same jump.
fn assert_jump_round_trips(config: &HostConfig, jump: &JumpHost) {
    if !prints_back(jump) {
        return;
    }
    if let Some(again) = assert_dump_round_trips(config) {
        assert_eq!(again.proxy_jump(), Some(jump));
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    // A `-J` value with a newline in any hop prints as two `-G` lines (the
    // dump shows the hops as given), which no parser reads back.
    if !s.contains(char::is_control)
        && let Some(config) = with_flag(s)
        && let Some(jump) = config.proxy_jump()
    {
        assert_jump_round_trips(&config, jump);
    }
    // A config line splits words and strips quotes first; only one plain
    // word reaches parse_jump as typed.
    let plain = !s.is_empty() && !s.contains(|c: char| c.is_whitespace() || "\"'=".contains(c));
    if plain
        && let Ok(config) = resolve_in(
            &FuzzEnv::new(&format!("ProxyJump {s}\n"), None),
            CommandLine::new("h"),
        )
        && let Some(jump) = config.proxy_jump()
    {
        assert_jump_round_trips(&config, jump);
    }
    // An empty destination resolves (`ssh -G ''` too), but its dump's
    // `host` line has no value; warren's command line refuses it first.
    if !s.is_empty()
        && let Ok(config) = resolve_in(&FuzzEnv::new("", None), CommandLine::new(s))
    {
        assert_eq!(config.host_arg(), s);
        assert_dump_round_trips(&config);
    }
});
