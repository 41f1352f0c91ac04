//! `warren ssh` arguments: exactly what was typed, with ssh's letters and
//! meanings. No I/O here; `ssh.rs` turns this into what we will do.

use std::path::PathBuf;

use clap::{ArgAction, Parser};

use super::connect_args::{ConnectArgs, ForwardArgs, IdentityArgs, LoginPortArgs};

/// Flags of later features: accepted by the parser so the user gets a clear
/// "not supported yet" instead of a parse error or silence.
#[derive(Debug, Default, Clone, Parser)]
pub struct LaterFlags {
    #[command(flatten)]
    pub forwards: ForwardArgs,
    #[arg(short = 'W', value_name = "HOST:PORT")]
    pub stdio_forward: Option<String>,
    #[arg(short = 'f')]
    pub background: bool,
    #[arg(short = 'A')]
    pub forward_agent: bool,
    #[arg(short = 'M', action = ArgAction::Count)]
    pub master: u8,
    #[arg(short = 'S', value_name = "CTL_PATH")]
    pub control_path: Option<String>,
    #[arg(short = 'O', value_name = "CTL_CMD")]
    pub control_command: Option<String>,
    #[arg(short = 'g')]
    pub gateway_ports: bool,
    /// Forward X11 (ForwardX11; trusted per ForwardX11Trusted).
    #[arg(short = 'X')]
    pub x11: bool,
    /// Forward X11 as a trusted client.
    #[arg(short = 'Y')]
    pub x11_trusted: bool,
    #[arg(short = 'w', value_name = "TUN")]
    pub tunnel: Option<String>,
    #[arg(short = 'I', value_name = "PKCS11")]
    pub pkcs11: Option<String>,
    /// Connect from this interface's address (BindInterface).
    #[arg(short = 'B', value_name = "IFACE")]
    pub bind_interface: Option<String>,
    /// List supported algorithms: cipher, mac, kex, key, sig, ... (`-Q help`).
    #[arg(short = 'Q', value_name = "QUERY")]
    pub query: Option<String>,
    /// Deprecated in OpenSSH 9.2 and ignored (no value; `-P tag` is 9.8's).
    #[arg(short = 'P', hide = true)]
    pub deprecated_p: bool,
}

impl LaterFlags {
    /// The first flag given that this version does not implement.
    pub fn first_unsupported(&self) -> Option<&'static str> {
        let checks: [(bool, &'static str); 2] = [
            (self.tunnel.is_some(), "-w (tun forwarding)"),
            (self.pkcs11.is_some(), "-I (PKCS#11)"),
        ];
        checks.into_iter().find(|(on, _)| *on).map(|(_, name)| name)
    }
}

/// `warren ssh [options] destination [command [argument ...]]`: where
/// each letter's value lands. Its help, value name and whether it is
/// listed are in `ssh_flags::FLAGS` (a letter without a definition there
/// fails `ssh_flags`'s table test).
#[derive(Debug, Clone, Parser)]
#[command(
    name = "warren ssh",
    disable_version_flag = true,
    disable_help_flag = true,
    // A repeated single-value flag is not an error in ssh; which one wins
    // is warren-config's business (the typed order reaches it through
    // `settings::ordered_flags`), and clap keeps the last (-E, -F, as ssh).
    args_override_self = true,
    about = "OpenSSH-compatible client: same flags, same ~/.ssh/config"
)]
pub struct SshArgs {
    /// Print help (ssh's flags: see ssh(1); warren's are the same).
    #[arg(long = "help", action = ArgAction::Help)]
    help: Option<bool>,
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(flatten)]
    pub login_port: LoginPortArgs,
    #[command(flatten)]
    pub identity: IdentityArgs,
    #[arg(short = 'E')]
    pub log_file: Option<PathBuf>,
    #[arg(short = 'G')]
    pub dump_config: bool,
    #[arg(short = 'T')]
    pub no_tty: bool,
    #[arg(short = 't', action = ArgAction::Count)]
    pub tty: u8,
    #[arg(short = 'n')]
    pub stdin_null: bool,
    #[arg(short = 'N')]
    pub no_command: bool,
    #[arg(short = 'b')]
    pub bind_address: Option<String>,
    #[arg(short = 'm')]
    pub macs: Option<String>,
    #[arg(short = 'V')]
    pub version: bool,
    #[arg(short = 'e')]
    pub escape_char: Option<String>,
    #[arg(short = 's')]
    pub subsystem: bool,
    #[arg(short = '1', hide = true)]
    pub proto1: bool,
    #[arg(short = '2', hide = true)]
    pub proto2: bool,
    #[arg(short = 'k', hide = true)]
    pub no_gssapi_delegation: bool,
    #[arg(short = 'K', hide = true)]
    pub gssapi: bool,
    #[arg(short = 'x', hide = true)]
    pub no_x11: bool,
    #[arg(short = 'a', hide = true)]
    pub no_agent_forwarding: bool,
    #[arg(short = 'y', hide = true)]
    pub syslog: bool,
    #[command(flatten)]
    pub later: LaterFlags,
    /// `[user@]host` or `ssh://[user@]host[:port]`.
    #[arg(value_hint = clap::ValueHint::Hostname)]
    pub destination: Option<String>,
    /// The remote command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// `warren ssh`'s parser, help and usage, the flags' texts from
/// `ssh_flags::FLAGS`.
pub fn command() -> clap::Command {
    super::ssh_flags::apply(<SshArgs as clap::CommandFactory>::command())
        .override_usage(super::ssh_flags::usage_body())
}

impl SshArgs {
    /// Parses `warren ssh`'s arguments with ssh's ordering rules.
    pub fn parse_from_ssh_argv(args: &[String]) -> Result<SshArgs, clap::Error> {
        let mut argv = vec!["warren ssh".to_owned()];
        argv.extend(super::argv::reorder(args));
        let matches = command().try_get_matches_from(argv)?;
        <SshArgs as clap::FromArgMatches>::from_arg_matches(&matches)
    }
}

/// The parts of a destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

/// Parses `[user@]host` or `ssh://[user@]host[:port]` as ssh does (the user
/// part ends at the last '@').
pub fn parse_destination(s: &str) -> Result<Destination, String> {
    if let Some(rest) = s.strip_prefix("ssh://") {
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (user, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u.to_owned()), h),
            None => (None, rest),
        };
        let (host, port) = split_host_port(hostport)?;
        if host.is_empty() {
            return Err(format!("invalid destination: {s}"));
        }
        return Ok(Destination { user, host, port });
    }
    let (user, host) = match s.rsplit_once('@') {
        Some((u, h)) => (Some(u.to_owned()), h.to_owned()),
        None => (None, s.to_owned()),
    };
    if host.is_empty() {
        return Err(format!("invalid destination: {s}"));
    }
    Ok(Destination {
        user,
        host,
        port: None,
    })
}

fn split_host_port(s: &str) -> Result<(String, Option<u16>), String> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, tail) = rest
            .split_once(']')
            .ok_or_else(|| format!("invalid destination: {s}"))?;
        let port = match tail.strip_prefix(':') {
            Some(p) => Some(parse_port(p)?),
            None if tail.is_empty() => None,
            None => return Err(format!("invalid destination: {s}")),
        };
        return Ok((host.to_owned(), port));
    }
    match s.split_once(':') {
        Some((h, p)) => Ok((h.to_owned(), Some(parse_port(p)?))),
        None => Ok((s.to_owned(), None)),
    }
}

pub fn parse_port(p: &str) -> Result<u16, String> {
    match p.parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("Bad port '{p}'")),
    }
}

/// Joins the command words as ssh does: with single spaces, no quoting.
pub fn join_command(words: &[String]) -> Option<String> {
    (!words.is_empty()).then(|| words.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn flags_table() {
        let a = SshArgs::parse_from_ssh_argv(&argv(
            "-p 2222 -l bob -i k1 -i k2 -vvv -tt -o Port=1 -oUser=x host ls -la",
        ))
        .expect("parses");
        assert_eq!(a.login_port.port.as_deref(), Some("2222"));
        assert_eq!(a.login_port.login.as_deref(), Some("bob"));
        assert_eq!(a.identity.identity, ["k1", "k2"]);
        assert_eq!(a.connect.verbose, 3);
        assert_eq!(a.tty, 2);
        assert_eq!(a.connect.options, ["Port=1", "User=x"]);
        assert_eq!(a.destination.as_deref(), Some("host"));
        assert_eq!(a.command, ["ls", "-la"]);
    }

    #[test]
    fn clustered_flags() {
        let a = SshArgs::parse_from_ssh_argv(&argv("-nNT -C -46 -p22 host")).expect("parses");
        let c = &a.connect;
        assert!(a.stdin_null && a.no_command && a.no_tty && c.compression && c.ipv4 && c.ipv6);
        assert_eq!(a.login_port.port.as_deref(), Some("22"));
    }

    #[test]
    fn later_flags_are_named() {
        let a = SshArgs::parse_from_ssh_argv(&argv("-L 1:h:2 -D 3 -J b host")).expect("parses");
        assert_eq!(a.later.first_unsupported(), None);
        assert_eq!(a.later.forwards.local_forward, ["1:h:2"]);
        assert_eq!(a.connect.jump.as_deref(), Some("b"));
        let a = SshArgs::parse_from_ssh_argv(&argv("-A host")).expect("parses");
        assert_eq!(a.later.first_unsupported(), None);
        assert!(a.later.forward_agent);
        let a = SshArgs::parse_from_ssh_argv(&argv("-MM -S /tmp/c -O check host")).expect("parses");
        assert_eq!(a.later.first_unsupported(), None);
        assert_eq!(a.later.master, 2);
        assert_eq!(a.later.control_command.as_deref(), Some("check"));
        let a = SshArgs::parse_from_ssh_argv(&argv("-w 0 host")).expect("parses");
        assert_eq!(a.later.first_unsupported(), Some("-w (tun forwarding)"));
    }

    #[test]
    fn destinations() {
        let cases: [(&str, Option<&str>, &str, Option<u16>); 6] = [
            ("host", None, "host", None),
            ("bob@host", Some("bob"), "host", None),
            ("a@b@host", Some("a@b"), "host", None),
            ("ssh://bob@host:2222", Some("bob"), "host", Some(2222)),
            ("ssh://host", None, "host", None),
            ("ssh://[::1]:22", None, "::1", Some(22)),
        ];
        for (input, user, host, port) in cases {
            let d = parse_destination(input).expect(input);
            assert_eq!(
                (d.user.as_deref(), d.host.as_str(), d.port),
                (user, host, port),
                "{input}"
            );
        }
        assert!(parse_destination("ssh://host:0").is_err());
        assert!(parse_destination("bob@").is_err());
    }

    #[test]
    fn command_is_joined_with_spaces() {
        assert_eq!(
            join_command(&argv("echo a  b")).as_deref(),
            Some("echo a b")
        );
        assert_eq!(join_command(&[]), None);
    }
}
