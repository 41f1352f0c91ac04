//! What `warren ssh` will do: the typed arguments merged with ssh_config
//! (through warren-config), validated, paths expanded, turned into the plain
//! option structs warren-core takes.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{CommandFactory, FromArgMatches};
use warren_config::{
    self as config, CommandLine, ConfigFile, Environment, Flag, HostConfig, SystemEnvironment,
};
use warren_core::algorithms::{self as algos, AlgorithmOptions};
use warren_core::exec::RunOptions;
use warren_core::forward::{Endpoint, ForwardOptions, ForwardSpec};
use warren_core::session::{
    AddKeys, AddressFamily, AuthOptions, ConnectOptions, HostKeyOptions, StrictHostKeyChecking,
};
use warren_core::session::{Hop, Route};

use super::ssh_args::{SshArgs, join_command, parse_destination};
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
}

impl ControlCommand {
    fn parse(s: &str) -> anyhow::Result<ControlCommand> {
        Ok(match s {
            "check" => ControlCommand::Check,
            "forward" => ControlCommand::Forward,
            "cancel" => ControlCommand::Cancel,
            "exit" => ControlCommand::Exit,
            "stop" => ControlCommand::Stop,
            "proxy" | "conninfo" | "channels" => {
                anyhow::bail!("-O {s} is not supported by this version of warren")
            }
            _ => anyhow::bail!("Invalid multiplex command."),
        })
    }
}

const USAGE: &str = "usage: warren ssh [-46CGNTVnqstv] [-b bind_address] [-c cipher_spec] [-E log_file]\n\
                     [-e escape_char] [-F configfile] [-i identity_file] [-l login_name]\n\
                     [-m mac_spec] [-o option] [-p port] destination [command [argument ...]]";

impl Settings {
    pub fn resolve(args: &SshArgs, argv: &[String]) -> anyhow::Result<Settings> {
        let Some(destination) = &args.destination else {
            anyhow::bail!("{USAGE}")
        };
        let dest = parse_destination(destination).map_err(anyhow::Error::msg)?;
        let mut cli = CommandLine::new(dest.host.clone());
        let destination = Flag::Destination {
            user: dest.user.clone(),
            port: dest.port,
        };
        for flag in ordered_flags(argv, destination)? {
            cli.flag(flag);
        }
        if let Some(file) = &args.config_file {
            cli.config_file(ConfigFile::from_flag(file));
        }
        cli.command = args.command.clone();
        let env = SystemEnvironment::new();
        let host = config::resolve(&cli, &env, &warren_algorithms())?;
        if !args.quiet {
            for warning in host.warnings() {
                eprintln!("{warning}");
            }
        }
        let mut connect = connect_options(&host, &env)?;
        // Only the destination gets the agent; jump hosts never see it.
        connect.forward_agent = forward_agent(&host, &env, &connect.auth);
        let forward_agent = connect.forward_agent.is_some();
        let hop = Hop {
            opts: connect,
            route: route(&host, &cli.config, &env, 0)?,
        };
        Ok(Settings {
            hop,
            forwards: forwards(&host),
            forward_options: ForwardOptions {
                gateway_ports: host.gateway_ports(),
                exit_on_forward_failure: host.exit_on_forward_failure(),
                stream_local_bind_unlink: host.stream_local_bind_unlink(),
                stream_local_bind_mask: host.stream_local_bind_mask(),
                permit_remote_open: host.permit_remote_open().to_vec(),
                ..ForwardOptions::default()
            },
            fork: host.fork_after_authentication(),
            stdio_forward: host.stdio_forward().map(|(h, port)| Endpoint::Tcp {
                host: h.map(str::to_owned),
                port,
            }),
            run: RunOptions {
                forward_agent,
                ..run_options(&host, args)
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

/// The flags in the order they were typed: ssh applies them in argv order,
/// and for most of them the first one wins.
fn ordered_flags(argv: &[String], destination: Flag) -> anyhow::Result<Vec<Flag>> {
    let mut full = vec!["warren ssh".to_owned()];
    let (reordered, before_destination) = super::argv::reorder_marking_destination(argv);
    full.extend(reordered);
    let m = SshArgs::command().try_get_matches_from(full)?;
    // Make sure the derive still agrees (it does: same command).
    let _ = SshArgs::from_arg_matches(&m)?;
    let mut flags: Vec<(usize, Flag)> = Vec::new();
    // Switches have default values, which have indices too: only what was typed counts.
    let typed = |id: &str| m.value_source(id) == Some(clap::parser::ValueSource::CommandLine);
    let mut values = |id: &str, make: &dyn Fn(String) -> Flag| {
        if let (Some(idx), Some(vals)) = (m.indices_of(id), m.get_many::<String>(id)) {
            flags.extend(idx.zip(vals.cloned().map(make)));
        }
    };
    values("port", &Flag::Port);
    values("login", &Flag::User);
    values("identity", &Flag::Identity);
    values("options", &Flag::Option);
    values("ciphers", &Flag::Ciphers);
    values("macs", &Flag::Macs);
    values("bind_address", &Flag::BindAddress);
    values("escape_char", &Flag::EscapeChar);
    values("local_forward", &Flag::LocalForward);
    values("remote_forward", &Flag::RemoteForward);
    values("dynamic_forward", &Flag::DynamicForward);
    values("jump", &Flag::ProxyJump);
    values("stdio_forward", &Flag::StdioForward);
    values("control_path", &Flag::ControlPath);
    let switches: [(&str, Flag); 16] = [
        ("forward_agent", Flag::ForwardAgent),
        ("verbose", Flag::Verbose),
        ("quiet", Flag::Quiet),
        ("no_tty", Flag::NoTty),
        ("tty", Flag::Tty),
        ("stdin_null", Flag::StdinNull),
        ("no_command", Flag::NoCommand),
        ("ipv4", Flag::Ipv4),
        ("ipv6", Flag::Ipv6),
        ("compression", Flag::Compression),
        ("subsystem", Flag::Subsystem),
        ("no_gssapi_delegation", Flag::NoGssapiDelegation),
        ("gssapi", Flag::Gssapi),
        ("no_x11", Flag::NoX11),
        ("background", Flag::Background),
        ("master", Flag::Master),
    ];
    for (id, flag) in switches {
        if let (true, Some(idx)) = (typed(id), m.indices_of(id)) {
            // A cluster (-vvv, -tt) has one index but counts each letter.
            let idx: Vec<usize> = idx.collect();
            let times = match id {
                "verbose" | "tty" | "master" => usize::from(m.get_count(id)).max(idx.len()),
                _ => idx.len(),
            };
            let at = |n: usize| idx.get(n).or(idx.last()).copied().unwrap_or(0);
            flags.extend((0..times).map(|n| (at(n), flag.clone())));
        }
    }
    if let (true, Some(idx)) = (
        typed("no_agent_forwarding"),
        m.indices_of("no_agent_forwarding"),
    ) {
        flags.extend(idx.map(|i| (i, Flag::NoForwardAgent)));
    }
    // clap's indices count argv[0]; the destination stood after the first
    // `before_destination` arguments.
    flags.push((before_destination, destination));
    flags.sort_by_key(|(i, _)| *i);
    Ok(flags.into_iter().map(|(_, f)| f).collect())
}

/// The largest channel window (windows start at 2 MiB and grow to the
/// path): 64 MiB, or `WARREN_WINDOW` (bytes, or with a K/M/G suffix; at
/// least 64 KiB, at most 1 GiB) for links whose bandwidth-delay product
/// is larger still, or to pin the window (`WARREN_WINDOW=2M`). An environment variable, not
/// an ssh_config keyword, so configs stay readable by OpenSSH.
fn window_size() -> u32 {
    std::env::var("WARREN_WINDOW")
        .ok()
        .and_then(|v| parse_size(&v))
        .unwrap_or(warren_core::session::options::DEFAULT_WINDOW)
}

fn parse_size(s: &str) -> Option<u32> {
    let s = s.trim();
    let (digits, mult) = match s.char_indices().last()? {
        (i, 'k' | 'K') => (&s[..i], 1u64 << 10),
        (i, 'm' | 'M') => (&s[..i], 1 << 20),
        (i, 'g' | 'G') => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    let n = digits.parse::<u64>().ok()?.checked_mul(mult)?;
    u32::try_from(n.clamp(64 << 10, 1 << 30)).ok()
}

/// Deepest ProxyJump nesting followed before giving up (a loop through
/// ssh_config would otherwise never end).
const MAX_JUMP_DEPTH: usize = 16;

/// How to reach `host`: its ProxyJump (each hop resolved through ssh_config
/// under its own name, as ssh does), else its ProxyCommand, else direct.
fn route(
    host: &HostConfig,
    config: &ConfigFile,
    env: &SystemEnvironment,
    depth: usize,
) -> anyhow::Result<Route> {
    if let Some(jump) = host.proxy_jump() {
        anyhow::ensure!(
            depth < MAX_JUMP_DEPTH,
            "ProxyJump nests more than {MAX_JUMP_DEPTH} hops deep; is there a loop?"
        );
        let mut cli = CommandLine::new(jump.host.clone());
        cli.config_file(config.clone());
        if let Some(extra) = &jump.extra {
            cli.flag(Flag::ProxyJump(extra.clone()));
        }
        cli.flag(Flag::Destination {
            user: jump.user.clone(),
            port: jump.port,
        });
        let jump_host = config::resolve(&cli, env, &warren_algorithms())
            .with_context(|| format!("resolving jump host {}", jump.host))?;
        let hop = Hop {
            opts: connect_options(&jump_host, env)?,
            route: route(&jump_host, config, env, depth + 1)?,
        };
        return Ok(Route::Jump(Box::new(hop)));
    }
    if let Some(command) = host.proxy_command()? {
        return Ok(Route::ProxyCommand(command));
    }
    Ok(Route::Direct)
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

/// The forwards to set up, from the flags and ssh_config together.
fn forwards(host: &HostConfig) -> Vec<ForwardSpec> {
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

/// OpenSSH's lists with warren's defaults: `-G` prints what warren will
/// offer, and `+`/`-`/`^` apply to warren's order.
fn warren_algorithms() -> config::Algorithms {
    let mut a = config::Algorithms::openssh();
    let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    a.ciphers.default = own(&algos::default_ciphers());
    a.macs.default = own(algos::DEFAULT_MACS);
    a.kex.default = own(algos::DEFAULT_KEX);
    a.kex.supported.extend(own(&["mlkem768x25519-sha256"]));
    a.host_key.default = own(algos::DEFAULT_HOST_KEY);
    a
}

fn connect_options(host: &HostConfig, env: &SystemEnvironment) -> anyhow::Result<ConnectOptions> {
    let mut c = ConnectOptions::new(host.hostname(), host.port(), host.user());
    c.host = host.host_arg().to_owned();
    c.connect_timeout = host.connect_timeout();
    c.connection_attempts = host.connection_attempts();
    c.address_family = match host.address_family() {
        config::AddressFamily::Any => AddressFamily::Any,
        config::AddressFamily::Inet => AddressFamily::Inet,
        config::AddressFamily::Inet6 => AddressFamily::Inet6,
    };
    c.bind_address = host.bind_address().map(str::to_owned);
    let alive = host.server_alive_interval();
    c.server_alive_interval = (!alive.is_zero()).then_some(alive);
    c.server_alive_count_max = host.server_alive_count_max();
    c.tcp_keep_alive = host.tcp_keep_alive();
    c.algorithms = AlgorithmOptions {
        ciphers: host.ciphers().to_vec(),
        macs: host.macs().to_vec(),
        kex: host.kex_algorithms().to_vec(),
        host_key: host.host_key_algorithms().to_vec(),
        compression: host.compression(),
    };
    c.host_keys = HostKeyOptions {
        user_known_hosts: host
            .user_known_hosts_files()
            .iter()
            .map(PathBuf::from)
            .collect(),
        global_known_hosts: host
            .global_known_hosts_files()
            .iter()
            .map(|f| tilde(f, env))
            .collect(),
        strict: match host.strict_host_key_checking() {
            config::StrictHostKeyChecking::Yes => StrictHostKeyChecking::Yes,
            config::StrictHostKeyChecking::Ask => StrictHostKeyChecking::Ask,
            config::StrictHostKeyChecking::AcceptNew => StrictHostKeyChecking::AcceptNew,
            config::StrictHostKeyChecking::Off => StrictHostKeyChecking::No,
        },
        hash_known_hosts: host.hash_known_hosts(),
        host_key_alias: host.host_key_alias().map(str::to_owned),
        check_host_ip: host.check_host_ip(),
        visual_host_key: host.visual_host_key(),
        revoked_host_keys: host.revoked_host_keys().map(|f| tilde(f, env)),
    };
    c.auth = auth_options(host, env)?;
    c.window_size = window_size();
    Ok(c)
}

fn auth_options(host: &HostConfig, env: &SystemEnvironment) -> anyhow::Result<AuthOptions> {
    let identity_files = host.identity_file_paths(env).context("IdentityFile")?;
    let explicit = host
        .identity_files()
        .iter()
        .any(|f| !f.starts_with("~/.ssh/id_"));
    let preferred = host
        .preferred_authentications()
        .unwrap_or("gssapi-with-mic,publickey,keyboard-interactive,password")
        .split(',')
        .map(str::to_owned)
        .collect();
    let (add_keys, add_keys_life) = host.add_keys_to_agent();
    Ok(AuthOptions {
        identity_files,
        identity_files_explicit: explicit,
        certificate_files: host
            .certificate_file_paths(env)
            .context("CertificateFile")?,
        identities_only: host.identities_only(),
        identity_agent: identity_agent(host.identity_agent(), env),
        preferred,
        batch_mode: host.batch_mode(),
        pubkey: host.pubkey_authentication() != config::PubkeyAuthentication::No,
        password: host.password_authentication(),
        kbd_interactive: host.kbd_interactive_authentication(),
        number_of_password_prompts: host.number_of_password_prompts(),
        add_keys_to_agent: match add_keys {
            config::AddKeysToAgent::No => AddKeys::No,
            config::AddKeysToAgent::Yes => AddKeys::Yes,
            config::AddKeysToAgent::Ask => AddKeys::Ask,
            config::AddKeysToAgent::Confirm => AddKeys::Confirm,
        },
        add_keys_lifetime: (add_keys_life > 0).then_some(add_keys_life),
    })
}

/// IdentityAgent as OpenSSH reads it: unset or `SSH_AUTH_SOCK` means the
/// environment variable, `none` disables, `$NAME` names another variable.
fn identity_agent(value: Option<&str>, env: &SystemEnvironment) -> Option<PathBuf> {
    match value {
        None | Some("SSH_AUTH_SOCK") => env.env_var("SSH_AUTH_SOCK").map(PathBuf::from),
        Some(v) if v.eq_ignore_ascii_case("none") => None,
        Some(v) => match v.strip_prefix('$') {
            Some(name) => env.env_var(name).map(PathBuf::from),
            None => Some(PathBuf::from(v)),
        },
    }
}

/// ForwardAgent: `yes` forwards the agent warren itself uses
/// (IdentityAgent, else SSH_AUTH_SOCK), a path or `$NAME` names another.
fn forward_agent(
    host: &HostConfig,
    env: &SystemEnvironment,
    auth: &AuthOptions,
) -> Option<PathBuf> {
    // -a (or ForwardAgent no first) turns it off, a path included.
    if !host.forward_agent() {
        return None;
    }
    if let Some(path) = host.forward_agent_socket() {
        let name = path
            .strip_prefix("${")
            .and_then(|n| n.strip_suffix('}'))
            .or_else(|| path.strip_prefix('$'));
        return match name {
            Some(name) => env.env_var(name).map(PathBuf::from),
            None => Some(tilde(path, env)),
        };
    }
    auth.identity_agent.clone()
}

fn tilde(path: &str, env: &SystemEnvironment) -> PathBuf {
    match path.strip_prefix("~/") {
        Some(rest) => env.home_dir().join(rest),
        None => PathBuf::from(path),
    }
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

fn verbosity(level: config::LogLevel) -> Verbosity {
    use config::LogLevel as L;
    match level {
        L::Quiet | L::Fatal | L::Error => Verbosity::Quiet,
        L::Info => Verbosity::Normal,
        L::Verbose | L::Debug1 => Verbosity::Verbose,
        L::Debug2 => Verbosity::Debug,
        L::Debug3 => Verbosity::Trace,
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn window_sizes() {
        assert_eq!(parse_size("64M"), Some(64 << 20));
        assert_eq!(parse_size("1048576"), Some(1 << 20));
        assert_eq!(parse_size("2g"), Some(1 << 30), "capped at 1 GiB");
        assert_eq!(parse_size("1"), Some(64 << 10), "at least 64 KiB");
        assert_eq!(parse_size("lots"), None);
    }
}
