//! What the command line contributes: `-o` options and the typed flags
//! OpenSSH maps onto options (`ssh.c` `main`'s getopt loop).
//!
//! Design choice: flags are an ordered list, not a struct of fields,
//! because OpenSSH's outcome depends on their order: `-o` and `-p`/`-l`
//! only fill unset values while most flags overwrite, `-t -T` differs from
//! `-T -t`, and `user@host` only wins over `-l` when it comes first. The
//! CLI records what was typed in order (clap's `indices_of` gives it).

use std::path::PathBuf;

use crate::engine::Reader;
use crate::error::ConfigError;
use crate::expand::tilde_expand;
use crate::forward::Forward;
use crate::jump::parse_jump;
use crate::options::{Options, Origin, add_unique};
use crate::values::*;

/// Which configuration files to read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ConfigFile {
    /// `~/.ssh/config`, then `/etc/ssh/ssh_config`.
    #[default]
    Default,
    /// `-F none`: no files at all.
    None,
    /// `-F path`: only this file (it must exist).
    Path(PathBuf),
}

impl ConfigFile {
    /// The value of `-F` (`none`, in any case, means no file).
    pub fn from_flag(value: &str) -> Self {
        if value.eq_ignore_ascii_case("none") {
            Self::None
        } else {
            Self::Path(PathBuf::from(value))
        }
    }
}

/// One command-line flag that affects the configuration, in typed order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Flag {
    /// `-o "Key=Value"` or `-o "Key Value"`.
    Option(String),
    /// The user and port parsed from `user@host` or `ssh://user@host:port`,
    /// at the position the destination appeared.
    Destination {
        user: Option<String>,
        port: Option<u16>,
    },
    /// `-p port` (only if no port is set yet).
    Port(String),
    /// `-l user` (only if no user is set yet).
    User(String),
    /// `-i file` (skipped with a warning if the file does not exist).
    Identity(String),
    /// `-c ciphers`.
    Ciphers(String),
    /// `-m macs`.
    Macs(String),
    /// `-4`.
    Ipv4,
    /// `-6`.
    Ipv6,
    /// `-b address`.
    BindAddress(String),
    /// `-B interface`.
    BindInterface(String),
    /// `-C`.
    Compression,
    /// `-t` (twice: force).
    Tty,
    /// `-T`.
    NoTty,
    /// `-N`.
    NoCommand,
    /// `-n`.
    StdinNull,
    /// `-f`.
    Background,
    /// `-q`.
    Quiet,
    /// `-v` (once per occurrence).
    Verbose,
    /// `-J hops`.
    ProxyJump(String),
    /// `-L spec`.
    LocalForward(String),
    /// `-R spec`.
    RemoteForward(String),
    /// `-D spec`.
    DynamicForward(String),
    /// `-A`.
    ForwardAgent,
    /// `-a`.
    NoForwardAgent,
    /// `-M` (twice: ask).
    Master,
    /// `-S path`.
    ControlPath(String),
    /// `-g`.
    GatewayPorts,
    /// `-k`.
    NoGssapiDelegation,
    /// `-K`.
    Gssapi,
    /// `-x`.
    NoX11,
    /// `-X`.
    X11,
    /// `-Y`.
    TrustedX11,
    /// `-e char`.
    EscapeChar(String),
    /// `-s`.
    Subsystem,
    /// `-W host:port`.
    StdioForward(String),
    /// `-w local[:remote]`.
    TunnelDevice(String),
    /// `-I pkcs11-library`.
    Pkcs11(String),
}

/// Everything from the command line that shapes the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    /// The destination host as typed, without `user@` or `ssh://` parts.
    pub host: String,
    /// Flags, in the order they were typed.
    pub flags: Vec<Flag>,
    /// `-F`.
    pub config: ConfigFile,
    /// The remote command words, if any (they change some checks).
    pub command: Vec<String>,
}

impl CommandLine {
    /// A destination with no flags, reading the default config files.
    pub fn new(host: impl Into<String>) -> Self {
        Self {
            host: host.into(),
            flags: Vec::new(),
            config: ConfigFile::Default,
            command: Vec::new(),
        }
    }

    /// Append a flag.
    pub fn flag(&mut self, flag: Flag) -> &mut Self {
        self.flags.push(flag);
        self
    }

    /// Append a `-o` option.
    pub fn option(&mut self, option: impl Into<String>) -> &mut Self {
        self.flag(Flag::Option(option.into()))
    }

    /// Set `-F`.
    pub fn config_file(&mut self, config: ConfigFile) -> &mut Self {
        self.config = config;
        self
    }
}

fn invalid(message: String) -> ConfigError {
    ConfigError::Invalid(message)
}

/// Apply the flags in order, as ssh.c's getopt loop does.
pub(crate) fn apply_flags(
    opts: &mut Options,
    cli: &CommandLine,
    reader: &mut Reader<'_>,
) -> Result<(), ConfigError> {
    let mut debug_flag = 0;
    for flag in &cli.flags {
        reader.record_flag(flag);
        match flag {
            Flag::Option(text) => reader.command_line_option(opts, text)?,
            Flag::Verbose => verbose(opts, &mut debug_flag),
            flag if apply_simple(opts, flag) => {}
            flag => apply_checked(opts, flag, reader)?,
        }
    }
    Ok(())
}

fn verbose(opts: &mut Options, debug_flag: &mut u32) {
    if *debug_flag == 0 {
        *debug_flag = 1;
        opts.log_level = Some(LogLevel::Debug1);
    } else if let Some(level) = opts.log_level.filter(|l| *l < LogLevel::Debug3) {
        *debug_flag += 1;
        opts.log_level = Some(level.succ());
    }
}

/// Flags that cannot fail; false if `flag` is not one of them.
fn apply_simple(opts: &mut Options, flag: &Flag) -> bool {
    match flag {
        Flag::Destination { user, port } => {
            if opts.user.is_none() {
                opts.user.clone_from(user);
            }
            if opts.port.is_none() {
                opts.port = *port;
            }
        }
        Flag::User(user) => {
            opts.user.get_or_insert_with(|| user.clone());
        }
        Flag::Ipv4 => opts.address_family = Some(AddressFamily::Inet),
        Flag::Ipv6 => opts.address_family = Some(AddressFamily::Inet6),
        Flag::BindAddress(a) => opts.bind_address = Some(a.clone()),
        Flag::BindInterface(i) => opts.bind_interface = Some(i.clone()),
        Flag::Compression => opts.compression = Some(true),
        Flag::Tty => {
            let forced = opts.request_tty == Some(RequestTty::Yes);
            opts.request_tty = Some(if forced {
                RequestTty::Force
            } else {
                RequestTty::Yes
            });
        }
        Flag::NoTty => opts.request_tty = Some(RequestTty::No),
        Flag::StdinNull => opts.stdin_null = Some(true),
        Flag::Background => {
            opts.fork_after_authentication = Some(true);
            opts.stdin_null = Some(true);
        }
        Flag::Quiet => opts.log_level = Some(LogLevel::Quiet),
        Flag::ForwardAgent => opts.forward_agent = Some(true),
        Flag::NoForwardAgent => opts.forward_agent = Some(false),
        Flag::Master => {
            let ask = opts.control_master == Some(ControlMaster::Yes);
            opts.control_master = Some(if ask {
                ControlMaster::Ask
            } else {
                ControlMaster::Yes
            });
        }
        Flag::ControlPath(p) => opts.control_path = Some(p.clone()),
        Flag::GatewayPorts => opts.gateway_ports = Some(true),
        Flag::NoGssapiDelegation => opts.gss_deleg_creds = Some(false),
        Flag::Gssapi => {
            opts.gss_authentication = Some(true);
            opts.gss_deleg_creds = Some(true);
        }
        Flag::NoX11 => opts.forward_x11 = Some(false),
        Flag::X11 => opts.forward_x11 = Some(true),
        Flag::TrustedX11 => {
            opts.forward_x11 = Some(true);
            opts.forward_x11_trusted = Some(true);
        }
        Flag::Pkcs11(p) => opts.pkcs11_provider = Some(p.clone()),
        _ => return false,
    }
    true
}

/// Flags that validate their argument; a dispatch table like ssh.c's.
fn apply_checked(
    opts: &mut Options,
    flag: &Flag,
    reader: &mut Reader<'_>,
) -> Result<(), ConfigError> {
    let env = reader.env();
    match flag {
        Flag::Port(p) if opts.port.is_none() => {
            opts.port = Some(
                a2port(p)
                    .filter(|&v| v > 0)
                    .ok_or_else(|| invalid(format!("Bad port '{p}'")))?,
            );
        }
        Flag::Identity(file) => identity_flag(opts, file, reader)?,
        Flag::Ciphers(c) => {
            if c.starts_with('-') || !reader.algorithms().ciphers.is_valid_spec(c, false) {
                return Err(invalid(format!("Unknown cipher type '{c}'")));
            }
            opts.ciphers = Some(c.clone());
        }
        Flag::Macs(m) => {
            if m.starts_with(['+', '-', '^']) || !reader.algorithms().macs.is_valid_spec(m, false) {
                return Err(invalid(format!("Unknown mac type '{m}'")));
            }
            opts.macs = Some(m.clone());
        }
        Flag::NoCommand => {
            session_type(
                opts,
                SessionType::None,
                "Cannot specify -N with -s/SessionType",
            )?;
            opts.request_tty = Some(RequestTty::No);
        }
        Flag::Subsystem => session_type(
            opts,
            SessionType::Subsystem,
            "Cannot specify -s with -N/SessionType",
        )?,
        Flag::ProxyJump(hops) => jump_flag(opts, hops)?,
        Flag::LocalForward(spec) => {
            let f = Forward::parse(spec, false, false, env)
                .ok_or_else(|| invalid(format!("Bad local forwarding specification '{spec}'")))?;
            push_unique(&mut opts.local_forwards, f);
        }
        Flag::RemoteForward(spec) => {
            let f = Forward::parse(spec, false, true, env)
                .or_else(|| Forward::parse(spec, true, true, env))
                .ok_or_else(|| invalid(format!("Bad remote forwarding specification '{spec}'")))?;
            push_unique(&mut opts.remote_forwards, f);
        }
        Flag::DynamicForward(spec) => {
            let f = Forward::parse(spec, true, false, env)
                .ok_or_else(|| invalid(format!("Bad dynamic forwarding specification '{spec}'")))?;
            push_unique(&mut opts.local_forwards, f);
        }
        Flag::EscapeChar(e) => opts.escape_char = Some(escape_flag(e)?),
        Flag::StdioForward(spec) => stdio_flag(opts, spec, reader)?,
        Flag::TunnelDevice(spec) => {
            opts.tun_open.get_or_insert(Tunnel::PointToPoint);
            let device = parse_tun_device(spec)
                .ok_or_else(|| invalid(format!("Bad tun device '{spec}'")))?;
            opts.tun_device = Some(device);
        }
        _ => {}
    }
    Ok(())
}

fn push_unique(list: &mut Vec<Forward>, forward: Forward) {
    if !list.contains(&forward) {
        list.push(forward);
    }
}

fn session_type(
    opts: &mut Options,
    wanted: SessionType,
    conflict: &str,
) -> Result<(), ConfigError> {
    if opts.session_type.is_some_and(|t| t != wanted) {
        return Err(invalid(conflict.to_owned()));
    }
    opts.session_type = Some(wanted);
    Ok(())
}

fn identity_flag(
    opts: &mut Options,
    file: &str,
    reader: &mut Reader<'_>,
) -> Result<(), ConfigError> {
    let path = tilde_expand(file, reader.env())?;
    if reader.env().file_exists(std::path::Path::new(&path)) {
        add_unique(&mut opts.identity_files, path, Origin::Flag);
    } else {
        reader.warnings.push(format!(
            "Warning: Identity file {path} not accessible: No such file or directory."
        ));
    }
    Ok(())
}

fn jump_flag(opts: &mut Options, hops: &str) -> Result<(), ConfigError> {
    if opts.jump.is_some() {
        return Err(invalid(
            "Only a single -J option is permitted (use commas to separate multiple jump hops)"
                .into(),
        ));
    }
    if opts.proxy_command.is_some() {
        return Err(invalid("Cannot specify -J with ProxyCommand".into()));
    }
    let jump = parse_jump(hops, true).ok_or_else(|| invalid("Invalid -J argument".into()))?;
    opts.jump = Some(jump);
    opts.proxy_command = Some("none".into());
    Ok(())
}

/// `-e`: checked in a different order from the EscapeChar keyword.
fn escape_flag(e: &str) -> Result<Option<u8>, ConfigError> {
    let b = e.as_bytes();
    if b.len() == 2 && b[0] == b'^' && (64..128).contains(&b[1]) {
        Ok(Some(b[1] & 31))
    } else if b.len() == 1 {
        Ok(Some(b[0]))
    } else if e == "none" {
        Ok(None)
    } else {
        Err(invalid(format!("Bad escape character '{e}'.")))
    }
}

fn stdio_flag(opts: &mut Options, spec: &str, reader: &mut Reader<'_>) -> Result<(), ConfigError> {
    if opts.stdio_forward.is_some() {
        return Err(invalid("stdio forward already specified".into()));
    }
    let f = Forward::parse(spec, true, false, reader.env())
        .ok_or_else(|| invalid(format!("Bad stdio forwarding specification '{spec}'")))?;
    if let crate::forward::ForwardEndpoint::Tcp { host, port } = f.listen {
        opts.stdio_forward = Some((host, port));
    }
    opts.request_tty = Some(RequestTty::No);
    opts.session_type = Some(SessionType::None);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Flag::{self, *};
    use crate::env::harness::{get, run, run_in};
    use crate::env::tests::FakeEnv;

    fn dump_of(config: &str, flags: &[Flag], key: &str) -> Result<String, String> {
        run(config, "h", flags)
            .map(|c| get(&c, key).join("|"))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn flags_map_to_options_like_ssh() {
        let s = String::from;
        let cases: Vec<(&str, Vec<Flag>, &str, &str)> = vec![
            ("Port 1", vec![Port(s("2"))], "port", "2"),
            ("", vec![Option(s("Port=3")), Port(s("2"))], "port", "3"),
            ("", vec![Port(s("2")), Option(s("Port 3"))], "port", "2"),
            ("User c", vec![User(s("l"))], "user", "l"),
            (
                "",
                vec![
                    Destination {
                        user: Some(s("d")),
                        port: Some(2200),
                    },
                    User(s("l")),
                ],
                "user",
                "d",
            ),
            (
                "",
                vec![
                    User(s("l")),
                    Destination {
                        user: Some(s("d")),
                        port: None,
                    },
                ],
                "user",
                "l",
            ),
            (
                "",
                vec![Destination {
                    user: None,
                    port: Some(2200),
                }],
                "port",
                "2200",
            ),
            (
                "IdentityFile /k",
                vec![Identity(s("/k")), Identity(s("/missing"))],
                "identityfile",
                "/k|/k",
            ),
            (
                "",
                vec![Identity(s("~/.ssh/id")), Identity(s("~/.ssh/id"))],
                "identityfile",
                "/home/me/.ssh/id",
            ),
            (
                "Ciphers aes128-ctr",
                vec![Ciphers(s("aes256-ctr"))],
                "ciphers",
                "aes256-ctr",
            ),
            ("", vec![Macs(s("hmac-sha2-256"))], "macs", "hmac-sha2-256"),
            ("AddressFamily inet6", vec![Ipv4], "addressfamily", "inet"),
            ("", vec![Ipv4, Ipv6], "addressfamily", "inet6"),
            (
                "BindAddress 1.1.1.1",
                vec![BindAddress(s("2.2.2.2"))],
                "bindaddress",
                "2.2.2.2",
            ),
            ("", vec![BindInterface(s("eth0"))], "bindinterface", "eth0"),
            ("Compression no", vec![Compression], "compression", "yes"),
            ("", vec![Tty], "requesttty", "true"),
            ("", vec![Tty, Tty], "requesttty", "force"),
            ("", vec![Tty, NoTty], "requesttty", "false"),
            ("", vec![NoTty, Tty], "requesttty", "true"),
            ("", vec![NoCommand], "sessiontype", "none"),
            ("", vec![NoCommand], "requesttty", "false"),
            ("", vec![StdinNull], "stdinnull", "yes"),
            ("", vec![Background, NoCommand], "stdinnull", "yes"),
            ("", vec![Quiet], "loglevel", "SILENT"),
            ("", vec![Verbose], "loglevel", "DEBUG"),
            (
                "",
                vec![Verbose, Verbose, Verbose, Verbose],
                "loglevel",
                "DEBUG3",
            ),
            ("", vec![Verbose, Quiet], "loglevel", "SILENT"),
            ("", vec![Verbose, Quiet, Verbose], "loglevel", "FATAL"),
            (
                "ProxyCommand nc %h %p",
                vec![ProxyJump(s("b"))],
                "proxyjump",
                "b",
            ),
            (
                "",
                vec![LocalForward(s("1:a:1")), LocalForward(s("1:a:1"))],
                "localforward",
                "1 [a]:1",
            ),
            (
                "",
                vec![RemoteForward(s("8080"))],
                "remoteforward",
                "8080 [socks]:0",
            ),
            (
                "",
                vec![DynamicForward(s("1080"))],
                "dynamicforward",
                "1080",
            ),
            (
                "ForwardAgent yes",
                vec![NoForwardAgent],
                "forwardagent",
                "no",
            ),
            ("", vec![ForwardAgent], "forwardagent", "yes"),
            ("", vec![Master], "controlmaster", "true"),
            ("", vec![Master, Master], "controlmaster", "ask"),
            (
                "ControlPath /a",
                vec![ControlPath(s("/b/%h"))],
                "controlpath",
                "/b/h",
            ),
            ("", vec![GatewayPorts], "gatewayports", "yes"),
            ("", vec![Gssapi], "gssapidelegatecredentials", "yes"),
            (
                "",
                vec![Gssapi, NoGssapiDelegation],
                "gssapidelegatecredentials",
                "no",
            ),
            ("", vec![TrustedX11], "forwardx11trusted", "yes"),
            ("", vec![X11, NoX11], "forwardx11", "no"),
            ("", vec![EscapeChar(s("^A"))], "escapechar", "\\^A"),
            ("", vec![EscapeChar(s("none"))], "escapechar", "none"),
            (
                "LocalForward 1 a:1",
                vec![StdioForward(s("t:22"))],
                "localforward",
                "",
            ),
            (
                "",
                vec![StdioForward(s("t:22"))],
                "exitonforwardfailure",
                "yes",
            ),
            ("", vec![TunnelDevice(s("1:2"))], "tunneldevice", "1:2"),
            ("", vec![TunnelDevice(s("1:2"))], "tunnel", "point-to-point"),
            ("", vec![Pkcs11(s("/p.so"))], "pkcs11provider", "/p.so"),
        ];
        for (config, flags, key, want) in cases {
            let env = FakeEnv::default()
                .file("/k", "")
                .file("/home/me/.ssh/id", "");
            let got = run_in(env, config, "h", &flags)
                .map(|c| get(&c, key).join("|"))
                .map_err(|e| e.to_string());
            assert_eq!(got.as_deref(), Ok(want), "{config:?} {flags:?} -> {key}");
        }
    }

    #[test]
    fn flag_errors_match_ssh() {
        let s = String::from;
        let cases: Vec<(&str, Vec<Flag>, &str)> = vec![
            ("", vec![Port(s("0"))], "Bad port '0'"),
            ("", vec![Ciphers(s("rot13"))], "Unknown cipher type 'rot13'"),
            (
                "",
                vec![Macs(s("+hmac-sha1"))],
                "Unknown mac type '+hmac-sha1'",
            ),
            (
                "",
                vec![ProxyJump(s("a")), ProxyJump(s("b"))],
                "Only a single -J option is permitted",
            ),
            (
                "",
                vec![Option(s("ProxyCommand=nc")), ProxyJump(s("b"))],
                "Cannot specify -J with ProxyCommand",
            ),
            ("", vec![ProxyJump(s("@"))], "Invalid -J argument"),
            ("", vec![ProxyJump(s("h"))], "jumphost loop via h"),
            (
                "",
                vec![LocalForward(s("1"))],
                "Bad local forwarding specification '1'",
            ),
            (
                "",
                vec![RemoteForward(s("a:b:c:d:e"))],
                "Bad remote forwarding specification",
            ),
            (
                "",
                vec![DynamicForward(s("0"))],
                "Bad dynamic forwarding specification '0'",
            ),
            ("", vec![EscapeChar(s("ab"))], "Bad escape character 'ab'."),
            (
                "",
                vec![StdioForward(s("x"))],
                "Bad stdio forwarding specification 'x'",
            ),
            (
                "",
                vec![StdioForward(s("a:1")), StdioForward(s("b:1"))],
                "stdio forward already specified",
            ),
            ("", vec![TunnelDevice(s("x"))], "Bad tun device 'x'"),
            (
                "",
                vec![NoCommand, Subsystem],
                "Cannot specify -s with -N/SessionType",
            ),
            (
                "SessionType subsystem",
                vec![Option(s("SessionType=default")), NoCommand],
                "Cannot specify -N",
            ),
            (
                "",
                vec![Background],
                "Cannot fork into background without a command to execute.",
            ),
            ("RemoteCommand ls", vec![], ""),
            (
                "",
                vec![Option(s("Port=x"))],
                "command-line line 0: Bad port 'x'.",
            ),
        ];
        for (config, flags, want) in cases {
            match dump_of(config, &flags, "port") {
                Ok(_) if want.is_empty() => {}
                Ok(v) => panic!("{flags:?} accepted ({v}), want {want:?}"),
                Err(e) => assert!(e.contains(want), "{flags:?}: {e:?}"),
            }
        }
    }

    #[test]
    fn debian_batch_mode_keeps_alive_every_300s() {
        // Catches: `-G` on Debian showing serveraliveinterval 0 with
        // BatchMode yes, where Debian's ssh shows 300.
        let cases = [
            ("BatchMode yes\n", true, "300"),
            ("BatchMode yes\n", false, "0"),
            ("BatchMode yes\nServerAliveInterval 10\n", true, "10"),
            ("ServerAliveInterval 0\nBatchMode yes\n", true, "0"),
            ("", true, "0"),
        ];
        for (config, debian, want) in cases {
            let mut env = FakeEnv::default();
            if debian {
                env = env.file("/etc/debian_version", "12.8\n");
            }
            let got = run_in(env, config, "h", &[])
                .map(|c| get(&c, "serveraliveinterval").join("|"))
                .map_err(|e| e.to_string());
            assert_eq!(got.as_deref(), Ok(want), "{config:?} debian={debian}");
        }
    }

    #[test]
    fn remote_command_conflicts_with_a_command() {
        let env = FakeEnv::default().file("/cfg", "RemoteCommand ls\n");
        let mut cli = crate::CommandLine::new("h");
        cli.config_file(crate::ConfigFile::Path("/cfg".into()));
        cli.command = vec!["uptime".into()];
        let err = crate::resolve(&cli, &env, &crate::Algorithms::openssh())
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("Cannot execute command-line and remote command.")
        );
    }
}
