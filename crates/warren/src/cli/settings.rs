//! What `warren ssh` will do: the typed arguments merged with ssh_config
//! (through `warren_core::session::resolve`, which every subcommand that
//! reaches a host shares), validated, paths expanded, turned into the
//! plain option structs warren-core takes.

use std::path::PathBuf;

use warren_config::{self as config, Flag, HostConfig, SystemEnvironment};
use warren_core::exec::RunOptions;
use warren_core::forward::{Endpoint, ForwardOptions, ForwardSpec};
use warren_core::session::Hop;
use warren_core::session::resolve::{self as route, Resolved};

use super::connect_args::{self, Typed};
use super::ssh_args::{SshArgs, join_command};
use crate::logging::Verbosity;

/// RequestTTY after flags and config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtyRequest {
    Auto,
    Yes,
    No,
    Force,
}

/// Everything one `warren ssh` run needs.
#[derive(Debug)]
pub struct Settings {
    /// The destination and how to reach it (ProxyJump / ProxyCommand).
    pub hop: Hop,
    /// -L, -D and -R, in that order.
    pub forwards: Vec<ForwardSpec>,
    pub forward_options: ForwardOptions,
    /// -W host:port.
    pub stdio_forward: Option<Endpoint>,
    /// -f / ForkAfterAuthentication.
    pub fork: bool,
    pub run: RunOptions,
    pub tty: TtyRequest,
    /// `-N` / SessionType none: no session channel at all.
    pub no_session: bool,
    pub verbosity: Verbosity,
    /// `-G` output.
    pub dump: String,
    /// ControlMaster / ControlPath / ControlPersist and `-O`.
    pub mux: MuxSettings,
    /// LocalCommand, expanded; only when PermitLocalCommand is yes.
    pub local_command: Option<String>,
}

/// Connection sharing, as resolved.
#[derive(Debug, Clone)]
pub struct MuxSettings {
    /// ControlPath, expanded; `None` for none.
    pub path: Option<PathBuf>,
    pub master: config::ControlMaster,
    /// ControlPersist: `None` for no; `Some(None)` for yes (forever).
    pub persist: Option<Option<std::time::Duration>>,
    /// `-O` command.
    pub command: Option<ControlCommand>,
}

/// `-O ctl_cmd`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlCommand {
    Check,
    Forward,
    Cancel,
    Exit,
    Stop,
    /// Run through the master, never over a connection of our own.
    Proxy,
}

impl ControlCommand {
    fn parse(s: &str) -> anyhow::Result<ControlCommand> {
        Ok(match s {
            "check" => ControlCommand::Check,
            "forward" => ControlCommand::Forward,
            "cancel" => ControlCommand::Cancel,
            "exit" => ControlCommand::Exit,
            "stop" => ControlCommand::Stop,
            "proxy" => ControlCommand::Proxy,
            "conninfo" | "channels" => {
                anyhow::bail!("-O {s} is not supported by this version of warren")
            }
            _ => anyhow::bail!("Invalid multiplex command."),
        })
    }
}

impl Settings {
    pub fn resolve(args: &SshArgs, argv: &[String]) -> anyhow::Result<Settings> {
        let Some(destination) = &args.destination else {
            anyhow::bail!("{}", super::ssh_flags::usage())
        };
        let (flags, before_destination) = ordered_flags(argv)?;
        let mut cli = connect_args::command_line(
            destination,
            before_destination,
            args.connect.config(),
            flags,
        )?;
        cli.command = args.command.clone();
        let env = SystemEnvironment::new();
        let Resolved { config: host, hop } = resolve_host(&cli, &env, args.connect.quiet)?;
        Settings::from_host(&host, hop, &env, args)
    }

    fn from_host(
        host: &HostConfig,
        mut hop: Hop,
        env: &SystemEnvironment,
        args: &SshArgs,
    ) -> anyhow::Result<Settings> {
        // Only the destination gets the agent; jump hosts never see it.
        hop.opts.forward_agent = route::forward_agent(host, env, &hop.opts.auth);
        let forward_agent = hop.opts.forward_agent.is_some();
        // Expanded whether or not it may run: a bad token fails as in ssh.
        let local_command = host
            .local_command()?
            .filter(|_| host.permit_local_command());
        Ok(Settings {
            local_command,
            hop,
            forwards: forwards(host),
            forward_options: forward_options(host),
            fork: host.fork_after_authentication(),
            stdio_forward: host.stdio_forward().map(|(h, port)| Endpoint::Tcp {
                host: h.map(str::to_owned),
                port,
            }),
            run: RunOptions {
                forward_agent,
                ..run_options(host, args)
            },
            tty: match host.request_tty() {
                config::RequestTty::Auto => TtyRequest::Auto,
                config::RequestTty::Yes => TtyRequest::Yes,
                config::RequestTty::No => TtyRequest::No,
                config::RequestTty::Force => TtyRequest::Force,
            },
            no_session: host.session_type() == config::SessionType::None,
            verbosity: verbosity(host.log_level()),
            dump: host.dump(),
            mux: MuxSettings {
                path: host.control_path().map(PathBuf::from),
                master: host.control_master(),
                persist: match host.control_persist() {
                    config::ControlPersist::No => None,
                    config::ControlPersist::Yes => Some(None),
                    config::ControlPersist::Timeout(s) => {
                        Some(Some(std::time::Duration::from_secs(s.into())))
                    }
                },
                command: args
                    .later
                    .control_command
                    .as_deref()
                    .map(ControlCommand::parse)
                    .transpose()?,
            },
        })
    }
}

/// Resolves `cli` through ssh_config and warren-core's route, printing
/// ssh_config's warnings unless `-q`.
pub fn resolve_host(
    cli: &config::CommandLine,
    env: &SystemEnvironment,
    quiet: bool,
) -> anyhow::Result<Resolved> {
    let resolved = route::resolve(cli, env)?;
    if !quiet {
        for warning in resolved.config.warnings() {
            eprintln!("{warning}");
        }
    }
    Ok(resolved)
}

/// The flags in the order they were typed, one per getopt option in any
/// spelling: ssh applies them in argv order, and each flag's own rule
/// (first `-p`/`-l` wins, last `-c`/`-S`/`-b` wins, `-i`/`-L` append,
/// a second `-J`/`-W`/`-O` is refused) lives in warren-config's
/// `apply_flags`. Also where the destination stood among them: options
/// after it apply after it.
fn ordered_flags(argv: &[String]) -> anyhow::Result<(Vec<Typed>, usize)> {
    let (opts, before_destination) = super::argv::options_in_order(argv);
    let mut flags = Vec::new();
    let mut mux_command = false;
    let mut stdio_forward = false;
    for (index, (letter, value)) in opts.into_iter().enumerate() {
        // ssh.c's own getopt-time checks, in its order and words.
        match letter {
            '1' => anyhow::bail!("SSH protocol v.1 is no longer supported"),
            'O' if stdio_forward => anyhow::bail!("Cannot specify multiplexing command with -W"),
            'O' if mux_command => anyhow::bail!("Multiplexing command already specified"),
            'W' if mux_command => anyhow::bail!("Cannot specify stdio forward with -O"),
            _ => {}
        }
        mux_command |= letter == 'O';
        stdio_forward |= letter == 'W';
        // The destination takes position `before_destination` itself.
        let at = index + usize::from(index >= before_destination);
        if let Some(flag) = flag_of(letter, value) {
            flags.push((at, flag));
        }
    }
    Ok((flags, before_destination))
}

/// The configuration flag an ssh option letter stands for; `None` for the
/// letters that do not shape the configuration (-E -F -G -O -Q -V ...).
fn flag_of(letter: char, value: Option<String>) -> Option<Flag> {
    let with_value = |make: fn(String) -> Flag| value.clone().map(make);
    Some(match letter {
        'o' => return with_value(Flag::Option),
        'p' => return with_value(Flag::Port),
        'l' => return with_value(Flag::User),
        'i' => return with_value(Flag::Identity),
        'c' => return with_value(Flag::Ciphers),
        'm' => return with_value(Flag::Macs),
        'b' => return with_value(Flag::BindAddress),
        'B' => return with_value(Flag::BindInterface),
        'e' => return with_value(Flag::EscapeChar),
        'J' => return with_value(Flag::ProxyJump),
        'L' => return with_value(Flag::LocalForward),
        'R' => return with_value(Flag::RemoteForward),
        'D' => return with_value(Flag::DynamicForward),
        'S' => return with_value(Flag::ControlPath),
        'W' => return with_value(Flag::StdioForward),
        'w' => return with_value(Flag::TunnelDevice),
        'I' => return with_value(Flag::Pkcs11),
        '4' => Flag::Ipv4,
        '6' => Flag::Ipv6,
        'C' => Flag::Compression,
        'v' => Flag::Verbose,
        'q' => Flag::Quiet,
        'A' => Flag::ForwardAgent,
        'a' => Flag::NoForwardAgent,
        'T' => Flag::NoTty,
        't' => Flag::Tty,
        'n' => Flag::StdinNull,
        'N' => Flag::NoCommand,
        's' => Flag::Subsystem,
        'f' => Flag::Background,
        'M' => Flag::Master,
        'g' => Flag::GatewayPorts,
        'k' => Flag::NoGssapiDelegation,
        'K' => Flag::Gssapi,
        'x' => Flag::NoX11,
        'X' => Flag::X11,
        'Y' => Flag::TrustedX11,
        _ => return None,
    })
}

fn endpoint(e: &config::ForwardEndpoint) -> Endpoint {
    match e {
        config::ForwardEndpoint::Tcp { host, port } => Endpoint::Tcp {
            host: host.clone(),
            port: *port,
        },
        config::ForwardEndpoint::Unix(path) => Endpoint::Unix(PathBuf::from(path)),
    }
}

/// How forwards behave (GatewayPorts, ExitOnForwardFailure, ...).
pub fn forward_options(host: &HostConfig) -> ForwardOptions {
    ForwardOptions {
        gateway_ports: host.gateway_ports(),
        exit_on_forward_failure: host.exit_on_forward_failure(),
        stream_local_bind_unlink: host.stream_local_bind_unlink(),
        stream_local_bind_mask: host.stream_local_bind_mask(),
        permit_remote_open: host.permit_remote_open().to_vec(),
        ..ForwardOptions::default()
    }
}

/// The forwards to set up, from the flags and ssh_config together.
pub fn forwards(host: &HostConfig) -> Vec<ForwardSpec> {
    let mut out = Vec::new();
    for f in host.local_forwards() {
        out.push(ForwardSpec::Local {
            listen: endpoint(&f.listen),
            connect: endpoint(&f.connect),
        });
    }
    for f in host.dynamic_forwards() {
        out.push(ForwardSpec::Dynamic {
            listen: endpoint(&f.listen),
        });
    }
    for f in host.remote_forwards() {
        let connect = (!f.is_dynamic()).then(|| endpoint(&f.connect));
        out.push(ForwardSpec::Remote {
            listen: endpoint(&f.listen),
            connect,
        });
    }
    out
}

fn run_options(host: &HostConfig, args: &SshArgs) -> RunOptions {
    let command = join_command(&args.command).or_else(|| host.remote_command().map(str::to_owned));
    RunOptions {
        command,
        subsystem: host.session_type() == config::SessionType::Subsystem,
        pty: false,
        term: std::env::var("TERM").unwrap_or_else(|_| "dumb".into()),
        env: environment_to_send(host),
        stdin_null: host.stdin_null(),
        escape_char: host.escape_char(),
        forwards: Vec::new(),
        forward_agent: false,
        escapes: Default::default(),
        x11_request: super::x11::request(host),
        x11: None,
    }
}

/// SendEnv patterns matched against our environment, then SetEnv entries.
fn environment_to_send(host: &HostConfig) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::env::vars()
        .filter(|(name, _)| {
            host.send_env()
                .iter()
                .any(|p| config::match_pattern(name, p))
        })
        .collect();
    out.extend(host.set_env().iter().filter_map(|e| {
        let (k, v) = e.split_once('=')?;
        Some((k.to_owned(), v.to_owned()))
    }));
    out
}

pub fn verbosity(level: config::LogLevel) -> Verbosity {
    use config::LogLevel as L;
    match level {
        L::Quiet | L::Fatal | L::Error => Verbosity::Quiet,
        L::Info => Verbosity::Normal,
        L::Verbose | L::Debug1 => Verbosity::Verbose,
        L::Debug2 => Verbosity::Debug,
        L::Debug3 => Verbosity::Trace,
    }
}
