//! The flags of every subcommand that reaches a host (`ssh`, `copy-id`,
//! `tunnel`, and later `cp`, `sync`, `doctor`), each defined once with its
//! help and its table test, in groups a subcommand flattens into its own
//! `Args` (`#[command(flatten)]`):
//!
//! - [`ConnectArgs`]: `-F -o -J -4 -6 -c -C -v -q`, the same letters in
//!   ssh and scp;
//! - [`LoginPortArgs`]: `-l login -p port` (scp spells the port `-P` and
//!   uses `-l` and `-p` for other things, so they are a group of their
//!   own);
//! - [`IdentityArgs`]: `-i` (copy-id's `-i` names the key to install);
//! - [`ForwardArgs`]: `-L -R -D`.
//!
//! Design choice: what they mean is warren-config's business. Each group
//! only lists what was typed as warren-config [`Flag`]s at the position it
//! was typed (`typed`), because ssh's outcome depends on the order (`-o
//! Port=1 -p 2` is port 1, `-p 2 -o Port=1` port 2). [`command_line`] puts
//! them in order; `warren_core::session::resolve` does the rest.

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Args};
use warren_config::{CommandLine, ConfigFile, Flag};

/// A flag at the position clap saw it (argv index).
pub type Typed = (usize, Flag);

/// How to reach a host, in the letters ssh and scp share.
#[derive(Debug, Clone, Default, Args)]
pub struct ConnectArgs {
    /// Per-user configuration file (`none`: no file).
    #[arg(short = 'F', value_name = "FILE")]
    pub config_file: Option<String>,
    /// ssh_config option, `Key=Value` or `Key Value`; repeatable.
    #[arg(short = 'o', action = ArgAction::Append, value_name = "OPTION")]
    pub options: Vec<String>,
    /// Jump hosts: `[user@]host[:port]`, comma separated (ProxyJump).
    #[arg(short = 'J', value_name = "DESTINATION")]
    pub jump: Option<String>,
    /// IPv4 only.
    #[arg(short = '4')]
    pub ipv4: bool,
    /// IPv6 only.
    #[arg(short = '6')]
    pub ipv6: bool,
    /// Cipher specification.
    #[arg(short = 'c', value_name = "CIPHER_SPEC")]
    pub ciphers: Option<String>,
    /// Compression.
    #[arg(short = 'C')]
    pub compression: bool,
    /// Verbose: -v, -vv, -vvv.
    #[arg(short = 'v', action = ArgAction::Count)]
    pub verbose: u8,
    /// Quiet: suppress warnings and diagnostics.
    #[arg(short = 'q')]
    pub quiet: bool,
}

/// `-l` and `-p` as ssh spells them.
#[derive(Debug, Clone, Default, Args)]
pub struct LoginPortArgs {
    /// Port to connect to on the remote host.
    #[arg(short = 'p', value_name = "PORT")]
    pub port: Option<String>,
    /// User to log in as.
    #[arg(short = 'l', value_name = "LOGIN")]
    pub login: Option<String>,
}

/// `-i`: keys to log in with.
#[derive(Debug, Clone, Default, Args)]
pub struct IdentityArgs {
    /// Identity (private key) file; repeatable.
    #[arg(short = 'i', action = ArgAction::Append, value_name = "FILE")]
    pub identity: Vec<String>,
}

/// Port forwards.
#[derive(Debug, Clone, Default, Args)]
pub struct ForwardArgs {
    /// Local forward: `[bind:]port:host:hostport` (or unix sockets).
    #[arg(short = 'L', action = ArgAction::Append, value_name = "SPEC")]
    pub local_forward: Vec<String>,
    /// Remote forward: `[bind:]port:host:hostport`, or `[bind:]port` for SOCKS.
    #[arg(short = 'R', action = ArgAction::Append, value_name = "SPEC")]
    pub remote_forward: Vec<String>,
    /// Dynamic (SOCKS) forward: `[bind:]port`.
    #[arg(short = 'D', action = ArgAction::Append, value_name = "SPEC")]
    pub dynamic_forward: Vec<String>,
}

impl ConnectArgs {
    /// What was typed, where it was typed.
    pub fn typed(m: &ArgMatches) -> Vec<Typed> {
        let mut out = Vec::new();
        values(m, "options", Flag::Option, &mut out);
        values(m, "jump", Flag::ProxyJump, &mut out);
        values(m, "ciphers", Flag::Ciphers, &mut out);
        switch(m, "ipv4", Flag::Ipv4, &mut out);
        switch(m, "ipv6", Flag::Ipv6, &mut out);
        switch(m, "compression", Flag::Compression, &mut out);
        switch(m, "verbose", Flag::Verbose, &mut out);
        switch(m, "quiet", Flag::Quiet, &mut out);
        out
    }

    /// `-F`.
    pub fn config(&self) -> ConfigFile {
        self.config_file
            .as_deref()
            .map_or(ConfigFile::Default, ConfigFile::from_flag)
    }
}

impl LoginPortArgs {
    /// What was typed, where it was typed.
    pub fn typed(m: &ArgMatches) -> Vec<Typed> {
        let mut out = Vec::new();
        values(m, "port", Flag::Port, &mut out);
        values(m, "login", Flag::User, &mut out);
        out
    }
}

impl IdentityArgs {
    /// What was typed, where it was typed.
    pub fn typed(m: &ArgMatches) -> Vec<Typed> {
        let mut out = Vec::new();
        values(m, "identity", Flag::Identity, &mut out);
        out
    }
}

impl ForwardArgs {
    /// What was typed, where it was typed.
    pub fn typed(m: &ArgMatches) -> Vec<Typed> {
        let mut out = Vec::new();
        values(m, "local_forward", Flag::LocalForward, &mut out);
        values(m, "remote_forward", Flag::RemoteForward, &mut out);
        values(m, "dynamic_forward", Flag::DynamicForward, &mut out);
        out
    }
}

/// Each value of option `id`, at its index.
pub fn values(m: &ArgMatches, id: &str, make: fn(String) -> Flag, out: &mut Vec<Typed>) {
    if let (Some(idx), Some(vals)) = (m.indices_of(id), m.get_many::<String>(id)) {
        out.extend(idx.zip(vals.cloned().map(make)));
    }
}

/// Switch `id` once per time it was typed. A cluster (`-vvv`) has one
/// index but counts each letter.
pub fn switch(m: &ArgMatches, id: &str, flag: Flag, out: &mut Vec<Typed>) {
    // Switches have default values, which have indices too: only what
    // was typed counts.
    if m.value_source(id) != Some(ValueSource::CommandLine) {
        return;
    }
    let Some(idx) = m.indices_of(id) else {
        return;
    };
    let idx: Vec<usize> = idx.collect();
    let counted = m
        .try_get_one::<u8>(id)
        .ok()
        .flatten()
        .map_or(0, |n| usize::from(*n));
    let times = counted.max(idx.len());
    let at = |n: usize| idx.get(n).or(idx.last()).copied().unwrap_or(0);
    out.extend((0..times).map(|n| (at(n), flag.clone())));
}

/// The command line for `destination` (`[user@]host` or
/// `ssh://[user@]host[:port]`) typed at argv index `at`, with the flags in
/// typed order.
pub fn command_line(
    destination: &str,
    at: usize,
    config: ConfigFile,
    flags: Vec<Typed>,
) -> anyhow::Result<CommandLine> {
    let dest = super::ssh_args::parse_destination(destination).map_err(anyhow::Error::msg)?;
    Ok(host_command_line(
        dest.host, dest.user, dest.port, at, config, flags,
    ))
}

/// The command line for a destination already split into host, user and
/// port (typed at argv index `at`), with the flags in typed order.
pub fn host_command_line(
    host: String,
    user: Option<String>,
    port: Option<u16>,
    at: usize,
    config: ConfigFile,
    mut flags: Vec<Typed>,
) -> CommandLine {
    flags.push((at, Flag::Destination { user, port }));
    flags.sort_by_key(|(i, _)| *i);
    let mut cli = CommandLine::new(host);
    for (_, flag) in flags {
        cli.flag(flag);
    }
    cli.config_file(config);
    cli
}

/// The typed flags as words again, in order, for a command line that
/// another process runs later (a systemd unit). Only the flags of these
/// groups.
pub fn words(flags: &[Typed]) -> Vec<String> {
    let mut sorted: Vec<&Typed> = flags.iter().collect();
    sorted.sort_by_key(|(i, _)| *i);
    let mut out = Vec::new();
    for (_, flag) in sorted {
        let (letter, value) = match flag {
            Flag::Option(v) => ("-o", Some(v)),
            Flag::ProxyJump(v) => ("-J", Some(v)),
            Flag::Ciphers(v) => ("-c", Some(v)),
            Flag::Port(v) => ("-p", Some(v)),
            Flag::User(v) => ("-l", Some(v)),
            Flag::Identity(v) => ("-i", Some(v)),
            Flag::LocalForward(v) => ("-L", Some(v)),
            Flag::RemoteForward(v) => ("-R", Some(v)),
            Flag::DynamicForward(v) => ("-D", Some(v)),
            Flag::Ipv4 => ("-4", None),
            Flag::Ipv6 => ("-6", None),
            Flag::Compression => ("-C", None),
            Flag::Verbose => ("-v", None),
            Flag::Quiet => ("-q", None),
            Flag::GatewayPorts => ("-g", None),
            _ => continue,
        };
        out.push(letter.to_owned());
        out.extend(value.cloned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, FromArgMatches, Parser};

    /// A subcommand with every group, as copy-id and tunnel flatten them.
    #[derive(Debug, Parser)]
    struct All {
        #[command(flatten)]
        connect: ConnectArgs,
        #[command(flatten)]
        login_port: LoginPortArgs,
        #[command(flatten)]
        identity: IdentityArgs,
        #[command(flatten)]
        forwards: ForwardArgs,
        destination: String,
    }

    fn parse(line: &str) -> Result<(All, CommandLine), String> {
        let argv = std::iter::once("t").chain(line.split_whitespace());
        let m = All::command()
            .try_get_matches_from(argv)
            .map_err(|e| e.kind().to_string())?;
        let all = All::from_arg_matches(&m).map_err(|e| e.to_string())?;
        let mut flags = ConnectArgs::typed(&m);
        flags.extend(LoginPortArgs::typed(&m));
        flags.extend(IdentityArgs::typed(&m));
        flags.extend(ForwardArgs::typed(&m));
        let at = m.index_of("destination").unwrap_or(0);
        let cli = command_line(&all.destination, at, all.connect.config(), flags)
            .map_err(|e| e.to_string())?;
        Ok((all, cli))
    }

    fn flags(line: &str) -> Vec<Flag> {
        parse(line).map(|(_, cli)| cli.flags).unwrap_or_default()
    }

    fn s(v: &str) -> String {
        v.to_owned()
    }

    fn dest(user: Option<&str>, port: Option<u16>) -> Flag {
        Flag::Destination {
            user: user.map(str::to_owned),
            port,
        }
    }

    /// Every flag of every group, as typed and in the order typed.
    #[test]
    fn flags_table() {
        use Flag::*;
        let cases: Vec<(&str, Vec<Flag>)> = vec![
            ("h", vec![dest(None, None)]),
            ("-F none h", vec![dest(None, None)]),
            ("-o Port=1 h", vec![Option(s("Port=1")), dest(None, None)]),
            ("-oPort=1 h", vec![Option(s("Port=1")), dest(None, None)]),
            (
                "-o A=1 -o B=2 h",
                vec![Option(s("A=1")), Option(s("B=2")), dest(None, None)],
            ),
            (
                "-p 2 -o Port=1 h",
                vec![Port(s("2")), Option(s("Port=1")), dest(None, None)],
            ),
            (
                "-o Port=1 -p2 h",
                vec![Option(s("Port=1")), Port(s("2")), dest(None, None)],
            ),
            ("-l bob h", vec![User(s("bob")), dest(None, None)]),
            ("h -l bob", vec![dest(None, None), User(s("bob"))]),
            ("bob@h", vec![dest(Some("bob"), None)]),
            ("ssh://bob@h:2222", vec![dest(Some("bob"), Some(2222))]),
            ("-J a,b h", vec![ProxyJump(s("a,b")), dest(None, None)]),
            (
                "-i k1 -i k2 h",
                vec![Identity(s("k1")), Identity(s("k2")), dest(None, None)],
            ),
            ("-4 h", vec![Ipv4, dest(None, None)]),
            ("-6 -4 h", vec![Ipv6, Ipv4, dest(None, None)]),
            (
                "-c aes128-ctr h",
                vec![Ciphers(s("aes128-ctr")), dest(None, None)],
            ),
            ("-C h", vec![Compression, dest(None, None)]),
            ("-vvv h", vec![Verbose, Verbose, Verbose, dest(None, None)]),
            ("-v -v h", vec![Verbose, Verbose, dest(None, None)]),
            ("-v -q h", vec![Verbose, Quiet, dest(None, None)]),
            ("-q -v h", vec![Quiet, Verbose, dest(None, None)]),
            (
                "-L 1:a:2 h",
                vec![LocalForward(s("1:a:2")), dest(None, None)],
            ),
            (
                "-R 8080 h",
                vec![RemoteForward(s("8080")), dest(None, None)],
            ),
            (
                "-D 1080 h",
                vec![DynamicForward(s("1080")), dest(None, None)],
            ),
            (
                "-4Cv -p 22 h",
                vec![Ipv4, Compression, Verbose, Port(s("22")), dest(None, None)],
            ),
        ];
        for (line, want) in cases {
            assert_eq!(flags(line), want, "{line}");
        }
    }

    #[test]
    fn config_file_flag() {
        let config = |line: &str| parse(line).map(|(_, cli)| cli.config);
        assert_eq!(config("h"), Ok(ConfigFile::Default));
        assert_eq!(config("-F none h"), Ok(ConfigFile::None));
        assert_eq!(config("-F NONE h"), Ok(ConfigFile::None));
        assert_eq!(config("-F /c h"), Ok(ConfigFile::Path("/c".into())));
    }

    #[test]
    fn bad_command_lines() {
        // A value is needed, and the destination must be one.
        for line in ["-p", "-F", "-o", "-J", "h -i", "bob@", "ssh://h:0", "-X h"] {
            assert!(parse(line).is_err(), "{line}");
        }
        assert_eq!(parse("h").map(|(_, c)| c.host), Ok(s("h")));
    }

    /// A unit's command line says what was typed, in the typed order.
    #[test]
    fn flags_back_to_words() {
        let cases = [
            ("-F c -L 1:a:2 h", "-L 1:a:2"),
            ("-o Port=1 -p 2 -l u -i k h", "-o Port=1 -p 2 -l u -i k"),
            ("-vv -4 -6 -C -q -c x -J b h", "-v -v -4 -6 -C -q -c x -J b"),
            ("-D 1 -R 2 h", "-D 1 -R 2"),
        ];
        for (line, want) in cases {
            let argv = std::iter::once("t").chain(line.split_whitespace());
            let m = All::command().try_get_matches_from(argv).unwrap();
            let mut typed = ConnectArgs::typed(&m);
            typed.extend(LoginPortArgs::typed(&m));
            typed.extend(IdentityArgs::typed(&m));
            typed.extend(ForwardArgs::typed(&m));
            assert_eq!(words(&typed).join(" "), want, "{line}");
        }
    }
}
