//! `warren ssh`'s flags, each defined once: its letter, the name of its
//! value as ssh's usage line spells it, its short and long help, and
//! whether it is listed. clap's parser (through [`apply`]), `--help`,
//! completions, man pages, the usage line ([`usage`]) and getopt's view of
//! argv (`argv::options_in_order`, through [`takes_value`]) all come from
//! [`FLAGS`].
//!
//! Design choice: the typed values still land in `SshArgs`'s fields (clap
//! derive, `#[arg(short = ..)]` only); [`apply`] finds each of them by its
//! letter and gives it everything else from here, and the table test below
//! checks that every letter of `SshArgs` has exactly one definition. A
//! flag that this version does not implement is accepted (so the user
//! hears "not supported yet") but not listed.

/// One ssh flag.
#[derive(Debug, Clone, Copy)]
pub struct FlagDef {
    pub letter: char,
    /// The value's name as ssh's usage line writes it; `None` for a switch.
    pub value: Option<&'static str>,
    /// One line for `-h`-style lists and completions.
    pub help: &'static str,
    /// `--help` and the man page; empty: the short help.
    pub long_help: &'static str,
    /// Shown in help, completions, man page and usage line.
    pub listed: bool,
}

const fn switch(letter: char, help: &'static str, long_help: &'static str) -> FlagDef {
    FlagDef {
        letter,
        value: None,
        help,
        long_help,
        listed: true,
    }
}

const fn valued(
    letter: char,
    value: &'static str,
    help: &'static str,
    long_help: &'static str,
) -> FlagDef {
    FlagDef {
        letter,
        value: Some(value),
        help,
        long_help,
        listed: true,
    }
}

/// Accepted, not listed: compatibility letters, and features this version
/// does not have yet.
const fn unlisted(mut def: FlagDef) -> FlagDef {
    def.listed = false;
    def
}

/// Every letter of ssh(1)'s getopt string (OpenSSH 9.2), in its usage
/// line's order.
pub const FLAGS: &[FlagDef] = &[
    unlisted(switch('1', "Protocol 1 (refused, as ssh)", "")),
    unlisted(switch('2', "Protocol 2 (the only one; accepted)", "")),
    switch('4', "Use IPv4 addresses only", ""),
    switch('6', "Use IPv6 addresses only", ""),
    switch(
        'A',
        "Forward the authentication agent",
        "Forward the connection to the authentication agent (ForwardAgent yes). \
         Whoever can read the agent socket on the remote host can use your keys while you are connected.",
    ),
    switch('a', "Do not forward the authentication agent", ""),
    valued(
        'B',
        "bind_interface",
        "Bind to this interface's address",
        "Make the connection from this network interface's address (BindInterface), \
         chosen as OpenSSH chooses it.",
    ),
    valued(
        'b',
        "bind_address",
        "Source address of the connection",
        "Use bind_address on the local machine as the source address of the connection (BindAddress).",
    ),
    valued(
        'c',
        "cipher_spec",
        "Ciphers, comma separated, in order of preference",
        "The ciphers to offer, comma separated, in order of preference (Ciphers; `+`, `-` and `^` edit the default list).",
    ),
    switch('C', "Compress the connection (zlib@openssh.com)", ""),
    valued(
        'D',
        "[bind_address:]port",
        "Dynamic (SOCKS 4/5) forward on a local port",
        "Listen on a local port (on bind_address, or loopback) and act as a SOCKS 4 or 5 proxy: each \
         connection goes out from the remote host (DynamicForward). Repeatable.",
    ),
    valued(
        'E',
        "log_file",
        "Append debug logs to log_file instead of stderr",
        "",
    ),
    valued(
        'e',
        "escape_char",
        "Escape character for the session (default ~; none disables)",
        "The escape character for sessions with a terminal (EscapeChar); `~.` disconnects, `~?` lists the others. \
         `none` makes the session fully transparent.",
    ),
    valued(
        'F',
        "configfile",
        "Per-user configuration file (none: no file)",
        "Read this configuration file instead of ~/.ssh/config, and skip /etc/ssh/ssh_config; `none` reads no file.",
    ),
    switch(
        'f',
        "Go to the background after authentication",
        "Go to the background just before running the command, once authentication and forwards are done \
         (ForkAfterAuthentication). With ExitOnForwardFailure, only once every forward is up.",
    ),
    switch(
        'G',
        "Print the resolved configuration and exit",
        "Print the configuration after evaluating Host and Match blocks, as `ssh -G` does, and exit.",
    ),
    switch('g', "Let remote hosts connect to local forwarded ports", ""),
    unlisted(valued('I', "pkcs11", "PKCS#11 library for keys", "")),
    valued(
        'i',
        "identity_file",
        "Identity (private key) file; repeatable",
        "A private key to authenticate with (IdentityFile), tried in order; a certificate beside it \
         (FILE-cert.pub) is used too. Repeatable.",
    ),
    valued(
        'J',
        "destination",
        "Connect through jump hosts: [user@]host[:port], comma separated",
        "Connect to the destination through these jump hosts, in order (ProxyJump): each hop is a \
         [user@]host[:port] or ssh:// URI, and ~/.ssh/config applies to each.",
    ),
    unlisted(switch('K', "GSSAPI authentication (not supported)", "")),
    unlisted(switch('k', "Disable GSSAPI delegation (accepted)", "")),
    valued(
        'L',
        "address",
        "Local forward: [bind_address:]port:host:hostport",
        "Forward connections to a local port (or unix socket) to host:hostport as seen from the remote side \
         (LocalForward): [bind_address:]port:host:hostport, [bind_address:]port:remote_socket, \
         local_socket:host:hostport or local_socket:remote_socket. Repeatable.",
    ),
    valued(
        'l',
        "login_name",
        "User to log in as on the remote host",
        "",
    ),
    switch(
        'M',
        "Be the master of a shared connection (-MM: ask first)",
        "Listen on ControlPath so that later runs share this connection (ControlMaster yes; -MM: ask before each use).",
    ),
    valued(
        'm',
        "mac_spec",
        "MACs, comma separated, in order of preference",
        "",
    ),
    switch('N', "Do not run a remote command (forwards only)", ""),
    switch('n', "Read stdin from /dev/null", ""),
    valued(
        'O',
        "ctl_cmd",
        "Control a shared connection: check, forward, cancel, exit, stop, proxy",
        "Send a command to the master of a shared connection (see -M and ControlPath): check, forward, \
         cancel, exit, stop or proxy.",
    ),
    valued(
        'o',
        "option",
        "An ssh_config option, Key=Value or \"Key Value\"; repeatable",
        "An option in ssh_config's format (Key=Value or \"Key Value\"), for options that have no flag of \
         their own. Repeatable; the first value given for a keyword wins, as in the file.",
    ),
    unlisted(switch('P', "Ignored (OpenSSH 9.2 deprecated it)", "")),
    valued('p', "port", "Port to connect to on the remote host", ""),
    valued(
        'Q',
        "query_option",
        "List supported algorithms: cipher, cipher-auth, mac, kex, key, key-cert, key-plain, sig, help",
        "",
    ),
    switch('q', "Quiet: suppress warnings and diagnostics", ""),
    valued(
        'R',
        "address",
        "Remote forward: [bind_address:]port:host:hostport, or [bind_address:]port for SOCKS",
        "Ask the server to listen on a port (or unix socket) and forward each connection to host:hostport \
         from here (RemoteForward); with only a port, act as a SOCKS proxy from here. Port 0 asks the \
         server to choose, and warren prints the port it chose. Repeatable.",
    ),
    valued(
        'S',
        "ctl_path",
        "Control socket for connection sharing (none disables)",
        "",
    ),
    switch('s', "Run the command as a subsystem (sftp, ...)", ""),
    switch('T', "Do not allocate a terminal", ""),
    switch(
        't',
        "Allocate a terminal (-tt: even without a local one)",
        "",
    ),
    switch('V', "Print the version and exit", ""),
    switch('v', "Verbose: -v, -vv, -vvv for more", ""),
    valued(
        'W',
        "host:port",
        "Connect stdin and stdout to host:port through the server",
        "Forward stdin and stdout to host:port as seen from the server (like ProxyCommand's netcat), \
         for use as another ssh's ProxyCommand. Implies -N and -T.",
    ),
    unlisted(valued(
        'w',
        "local_tun[:remote_tun]",
        "Tunnel device forwarding",
        "",
    )),
    switch(
        'X',
        "X11 forwarding (untrusted unless ForwardX11Trusted yes)",
        "Forward X11 (ForwardX11 yes) with an xauth cookie; untrusted unless ForwardX11Trusted is yes \
         (Debian's default is yes, as its ssh's).",
    ),
    switch('x', "Do not forward X11", ""),
    switch('Y', "Trusted X11 forwarding", ""),
    unlisted(switch('y', "Log to syslog", "")),
];

/// The definition of ssh flag `letter`.
pub fn find(letter: char) -> Option<&'static FlagDef> {
    FLAGS.iter().find(|f| f.letter == letter)
}

/// Whether ssh flag `letter` takes a value; `None` for a letter ssh does
/// not know.
pub fn takes_value(letter: char) -> Option<bool> {
    find(letter).map(|f| f.value.is_some())
}

/// ssh's usage message, with the listed flags, in lines of at most 80
/// columns.
pub fn usage() -> String {
    let listed = || FLAGS.iter().filter(|f| f.listed);
    let switches: String = listed()
        .filter(|f| f.value.is_none())
        .map(|f| f.letter)
        .collect();
    let mut words = vec![format!("[-{switches}]")];
    words.extend(listed().filter_map(|f| Some(format!("[-{} {}]", f.letter, f.value?))));
    words.push("destination [command [argument ...]]".to_owned());
    let lead = "usage: warren ssh";
    let indent = " ".repeat(lead.len() + 1);
    let mut out = String::new();
    let mut line = lead.to_owned();
    for word in words {
        if line.len() + 1 + word.len() > 80 && line.len() > indent.len() {
            out.push_str(&line);
            out.push('\n');
            line = format!("{indent}{word}");
        } else {
            line.push(' ');
            line.push_str(&word);
        }
    }
    out.push_str(&line);
    out
}

/// The usage without its `usage: ` (clap's `Usage:` heading takes it).
pub fn usage_body() -> String {
    let u = usage();
    u.strip_prefix("usage: ").unwrap_or(&u).to_owned()
}

/// Gives each argument of `cmd` with a short letter its definition's
/// help, value name, visibility and place in `--help` (the usage line's
/// order).
pub fn apply(mut cmd: clap::Command) -> clap::Command {
    let ids: Vec<(clap::Id, char)> = cmd
        .get_arguments()
        .filter_map(|a| Some((a.get_id().clone(), a.get_short()?)))
        .collect();
    for (id, letter) in ids {
        let Some(order) = FLAGS.iter().position(|f| f.letter == letter) else {
            continue;
        };
        let def = &FLAGS[order];
        cmd = cmd.mut_arg(id, |a| {
            let a = a
                .display_order(order)
                .help(def.help)
                .long_help((!def.long_help.is_empty()).then_some(def.long_help))
                .hide(!def.listed);
            match def.value {
                Some(v) => a.value_name(v),
                None => a,
            }
        });
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::argv::{Opt, options_in_order};

    /// OpenSSH 9.2's getopt string, as ssh.c has it.
    const SSH_OPTSTRING: &str =
        "1246ab:c:e:fgi:kl:m:no:p:qstvxAB:CD:E:F:GI:J:KL:MNO:PQ:R:S:TVw:W:XYy";

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    // The letters and their values were a hand-written getopt string in
    // argv.rs, apart from the flags' help; now they come from FLAGS.
    #[test]
    fn definitions_are_ssh_getopt_string() {
        let mut want: Vec<(char, bool)> = Vec::new();
        let mut chars = SSH_OPTSTRING.chars().peekable();
        while let Some(c) = chars.next() {
            want.push((c, chars.next_if_eq(&':').is_some()));
        }
        let mut have: Vec<(char, bool)> = FLAGS
            .iter()
            .map(|f| (f.letter, f.value.is_some()))
            .collect();
        want.sort_unstable();
        have.sort_unstable();
        assert_eq!(have, want);
    }

    // Every letter `SshArgs` parses has exactly one definition, with the
    // same arity, and every definition has its letter in `SshArgs`.
    #[test]
    fn every_letter_of_ssh_args_is_defined_once() {
        let mut cmd = super::super::ssh_args::command();
        cmd.build();
        let mut seen = Vec::new();
        for arg in cmd.get_arguments() {
            let Some(letter) = arg.get_short() else {
                continue;
            };
            let def = find(letter).unwrap_or_else(|| panic!("-{letter} has no definition"));
            assert_eq!(FLAGS.iter().filter(|f| f.letter == letter).count(), 1);
            let takes = arg.get_num_args().is_some_and(|n| n.takes_values());
            assert_eq!(takes, def.value.is_some(), "-{letter} arity");
            assert_eq!(arg.is_hide_set(), !def.listed, "-{letter} listed");
            assert_eq!(
                arg.get_help().map(|h| h.to_string()).as_deref(),
                Some(def.help)
            );
            seen.push(letter);
        }
        for def in FLAGS {
            assert!(seen.contains(&def.letter), "-{} is not parsed", def.letter);
        }
    }

    // Each flag, in each of getopt's spellings: alone, clustered after
    // another switch, with its value attached and apart; clap's parser and
    // getopt's walker agree on every one.
    #[test]
    fn every_flag_in_every_spelling() {
        for def in FLAGS.iter().filter(|f| f.letter != '1') {
            let l = def.letter;
            let spellings: Vec<(String, Vec<Opt>)> = match def.value {
                None => vec![
                    (format!("-{l} h"), vec![(l, None)]),
                    (format!("-4{l} h"), vec![('4', None), (l, None)]),
                ],
                Some(_) => vec![
                    (format!("-{l}x:1 h"), vec![(l, Some("x:1".into()))]),
                    (format!("-{l} x:1 h"), vec![(l, Some("x:1".into()))]),
                    (
                        format!("-4{l}x:1 h"),
                        vec![('4', None), (l, Some("x:1".into()))],
                    ),
                ],
            };
            for (line, want) in spellings {
                let args = words(&line);
                let n = want.len();
                assert_eq!(options_in_order(&args), (want, n), "{line}");
                let parsed = super::super::ssh_args::SshArgs::parse_from_ssh_argv(&args);
                let parsed = parsed.unwrap_or_else(|e| panic!("{line}: {e}"));
                assert_eq!(parsed.destination.as_deref(), Some("h"), "{line}");
            }
        }
    }

    // The usage line was written by hand in settings.rs and left out most
    // flags (-L -R -D -J -W -f -A -S -O ...).
    #[test]
    fn usage_lists_every_listed_flag_and_no_other() {
        let u = usage();
        for def in FLAGS {
            let shown = match def.value {
                Some(v) => u.contains(&format!("[-{} {v}]", def.letter)),
                None => u
                    .lines()
                    .next()
                    .and_then(|l| l.split_once("[-"))
                    .and_then(|(_, rest)| rest.split_once(']'))
                    .is_some_and(|(switches, _)| switches.contains(def.letter)),
            };
            assert_eq!(shown, def.listed, "-{} in\n{u}", def.letter);
        }
        assert!(u.lines().all(|l| l.len() <= 80), "{u}");
        assert!(
            u.starts_with("usage: warren ssh [-46AaCfGgMNnqsTtVvXxY] [-B bind_interface]"),
            "{u}"
        );
        assert!(u.ends_with("destination [command [argument ...]]"), "{u}");
    }
}
