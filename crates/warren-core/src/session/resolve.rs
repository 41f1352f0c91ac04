//! From what was typed to how to reach a host: `resolve` runs the command
//! line through ssh_config (warren-config) and turns the result into the
//! [`Hop`] chain `connect_hop` follows: the host's options (host key
//! checks, authentication, algorithms, the channel window) and its route
//! (ProxyJump hops, each resolved under its own name, or ProxyCommand).
//!
//! Design choice: every subcommand that reaches a host (ssh, copy-id,
//! tunnel, cp, ...) comes through here, so a host means the same thing to
//! all of them. The environment (files, variables, home) comes through
//! warren-config's [`Environment`], so this is tested without the real
//! `~/.ssh`.

use std::path::PathBuf;

use warren_config::{self as config, CommandLine, ConfigError, Environment, Flag, HostConfig};

use super::options::{
    AddKeys, AddressFamily, AuthOptions, ConnectOptions, HostKeyOptions, RekeyLimits,
};
use super::options::{DEFAULT_WINDOW, StrictHostKeyChecking, UpdateHostKeys};
use super::{Hop, Route};
use crate::algorithms::{self as algos, AlgorithmOptions};

/// Deepest ProxyJump nesting followed before giving up (a loop through
/// ssh_config would otherwise never end).
pub const MAX_JUMP_DEPTH: usize = 16;

/// A host as resolved: its ssh_config view and how to reach it.
#[derive(Debug)]
pub struct Resolved {
    /// Everything ssh_config says for the destination (`-G`, forwards,
    /// ControlPath, ... are read from here by the subcommand).
    pub config: HostConfig,
    /// The destination's connection options and its route.
    pub hop: Hop,
}

/// Why a host could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("resolving jump host {host}")]
    JumpHost {
        host: String,
        #[source]
        source: Box<ResolveError>,
    },
    #[error("ProxyJump nests more than {MAX_JUMP_DEPTH} hops deep; is there a loop?")]
    TooManyJumps,
    #[error("cannot expand {keyword}")]
    Files {
        keyword: &'static str,
        #[source]
        source: ConfigError,
    },
}

/// Resolves `cli` through ssh_config into the host's configuration and
/// the chain of hops that reaches it.
pub fn resolve(cli: &CommandLine, env: &dyn Environment) -> Result<Resolved, ResolveError> {
    let host = config::resolve(cli, env, &algorithms())?;
    let hop = Hop {
        opts: connect_options(&host, env)?,
        route: route(&host, &cli.config, env, 0)?,
    };
    Ok(Resolved { config: host, hop })
}

/// OpenSSH's lists with warren's defaults: `-G` prints what warren will
/// offer, and `+`/`-`/`^` apply to warren's order.
pub fn algorithms() -> config::Algorithms {
    let mut a = config::Algorithms::openssh();
    let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    a.ciphers.default = own(&algos::default_ciphers());
    a.macs.default = own(algos::DEFAULT_MACS);
    a.kex.default = own(algos::DEFAULT_KEX);
    a.kex.supported.extend(own(&["mlkem768x25519-sha256"]));
    a.host_key.default = own(algos::DEFAULT_HOST_KEY);
    a
}

/// How to reach `host`: its ProxyJump (each hop resolved through ssh_config
/// under its own name, as ssh does), else its ProxyCommand, else direct.
fn route(
    host: &HostConfig,
    config: &config::ConfigFile,
    env: &dyn Environment,
    depth: usize,
) -> Result<Route, ResolveError> {
    if let Some(jump) = host.proxy_jump() {
        if depth >= MAX_JUMP_DEPTH {
            return Err(ResolveError::TooManyJumps);
        }
        let mut cli = CommandLine::new(jump.host.clone());
        cli.config_file(config.clone());
        if let Some(extra) = &jump.extra {
            cli.flag(Flag::ProxyJump(extra.clone()));
        }
        cli.flag(Flag::Destination {
            user: jump.user.clone(),
            port: jump.port,
        });
        let in_jump = |source: ResolveError| ResolveError::JumpHost {
            host: jump.host.clone(),
            source: Box::new(source),
        };
        let jump_host = config::resolve(&cli, env, &algorithms()).map_err(|e| in_jump(e.into()))?;
        let hop = Hop {
            opts: connect_options(&jump_host, env).map_err(in_jump)?,
            route: route(&jump_host, config, env, depth + 1)?,
        };
        return Ok(Route::Jump(Box::new(hop)));
    }
    if let Some(command) = host.proxy_command()? {
        return Ok(Route::ProxyCommand(command));
    }
    Ok(Route::Direct)
}

/// The options for one host of the chain.
pub fn connect_options(
    host: &HostConfig,
    env: &dyn Environment,
) -> Result<ConnectOptions, ResolveError> {
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
    c.bind_interface = host.bind_interface().map(str::to_owned);
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
    c.host_keys = host_key_options(host, env);
    c.auth = auth_options(host, env)?;
    c.unsupported = host.unsupported();
    c.gssapi = host.gssapi_requested();
    c.window_size = window_size(env);
    let (data, interval) = host.rekey_limit();
    c.rekey = RekeyLimits {
        data: (data > 0).then_some(data),
        interval: (!interval.is_zero()).then_some(interval),
    };
    c.show_banner = host.log_level() > config::LogLevel::Error;
    Ok(c)
}

fn host_key_options(host: &HostConfig, env: &dyn Environment) -> HostKeyOptions {
    HostKeyOptions {
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
        known_hosts_command: host.known_hosts_command(),
        // ssh's can_update_hostkeys: it will not ask in BatchMode.
        update_host_keys: match host.update_host_keys() {
            config::YesNoAsk::Yes => UpdateHostKeys::Yes,
            config::YesNoAsk::Ask if !host.batch_mode() => UpdateHostKeys::Ask,
            _ => UpdateHostKeys::No,
        },
        ca_signature_algorithms: host.ca_signature_algorithms().to_vec(),
        required_rsa_size: host.required_rsa_size(),
    }
}

fn auth_options(host: &HostConfig, env: &dyn Environment) -> Result<AuthOptions, ResolveError> {
    let files = |keyword| move |source| ResolveError::Files { keyword, source };
    let identity_files = host
        .identity_file_paths(env)
        .map_err(files("IdentityFile"))?;
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
            .map_err(files("CertificateFile"))?,
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
        pubkey_algorithms: host.pubkey_accepted_algorithms().to_vec(),
    })
}

/// IdentityAgent as OpenSSH reads it: unset or `SSH_AUTH_SOCK` means the
/// environment variable, `none` disables, `$NAME` names another variable.
fn identity_agent(value: Option<&str>, env: &dyn Environment) -> Option<PathBuf> {
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
/// Only the destination gets it; jump hosts never see the agent.
pub fn forward_agent(
    host: &HostConfig,
    env: &dyn Environment,
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

fn tilde(path: &str, env: &dyn Environment) -> PathBuf {
    match path.strip_prefix("~/") {
        Some(rest) => env.home_dir().join(rest),
        None => PathBuf::from(path),
    }
}

/// The largest channel window (windows start at 2 MiB and grow to the
/// path): 64 MiB, or `WARREN_WINDOW` (bytes, or with a K/M/G suffix; at
/// least 64 KiB, at most 1 GiB) for links whose bandwidth-delay product
/// is larger still, or to pin the window (`WARREN_WINDOW=2M`). An
/// environment variable, not an ssh_config keyword, so configs stay
/// readable by OpenSSH.
fn window_size(env: &dyn Environment) -> u32 {
    env.env_var("WARREN_WINDOW")
        .and_then(|v| parse_size(&v))
        .unwrap_or(DEFAULT_WINDOW)
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

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use warren_config::{CommandLine, ConfigFile, Environment, Flag};

    use super::*;

    /// One config file and a few variables; nothing else exists.
    struct Fake {
        config: &'static str,
        vars: Vec<(&'static str, &'static str)>,
    }

    impl Environment for Fake {
        fn read_file(&self, path: &Path) -> std::io::Result<Vec<u8>> {
            match path == Path::new("/cfg") {
                true => Ok(self.config.as_bytes().to_vec()),
                false => Err(std::io::ErrorKind::NotFound.into()),
            }
        }
        fn glob(&self, _: &str) -> Vec<PathBuf> {
            Vec::new()
        }
        fn file_exists(&self, path: &Path) -> bool {
            path == Path::new("/cfg")
        }
        fn exec(&self, _: &str) -> bool {
            false
        }
        fn env_var(&self, name: &str) -> Option<String> {
            let v = self.vars.iter().find(|(n, _)| *n == name)?;
            Some(v.1.to_owned())
        }
        fn home_dir(&self) -> PathBuf {
            PathBuf::from("/home/me")
        }
        fn user_home(&self, _: &str) -> Option<PathBuf> {
            None
        }
        fn local_user(&self) -> String {
            "me".into()
        }
        fn uid(&self) -> u32 {
            1000
        }
        fn local_hostname(&self) -> String {
            "here".into()
        }
    }

    fn resolve_in(config: &'static str, host: &str, flags: &[Flag]) -> Result<Resolved, String> {
        let env = Fake {
            config,
            vars: vec![("WARREN_WINDOW", "2M"), ("SSH_AUTH_SOCK", "/agent")],
        };
        let mut cli = CommandLine::new(host);
        cli.config_file(ConfigFile::Path("/cfg".into()));
        for f in flags {
            cli.flag(f.clone());
        }
        resolve(&cli, &env).map_err(|e| warren_wire::Chain(&e).to_string())
    }

    /// Each hop of a chain is resolved under its own name, with its own
    /// user, port and options, as ssh does.
    #[test]
    fn jump_chain_hops_are_resolved_under_their_own_names() {
        let config = "Host app\n  HostName 10.1.0.5\n  ProxyJump me@bastion:2222\n\
                      Host bastion\n  HostName b.example\n  User nobody\n  ProxyJump edge\n\
                      Host edge\n  ProxyCommand nc %h %p\n  IdentityAgent none\n";
        let r = resolve_in(config, "app", &[]).unwrap();
        let app = &r.hop.opts;
        assert_eq!(
            (app.host.as_str(), app.hostname.as_str(), app.port),
            ("app", "10.1.0.5", 22)
        );
        assert_eq!(app.window_size, 2 << 20, "WARREN_WINDOW");
        assert_eq!(app.auth.identity_agent, Some(PathBuf::from("/agent")));
        let Route::Jump(bastion) = &r.hop.route else {
            panic!("app goes through bastion: {:?}", r.hop.route)
        };
        let b = &bastion.opts;
        assert_eq!(
            (b.hostname.as_str(), b.port, b.user.as_str()),
            ("b.example", 2222, "me"),
            "-J's user and port win over the config"
        );
        let Route::Jump(edge) = &bastion.route else {
            panic!("bastion goes through edge: {:?}", bastion.route)
        };
        assert_eq!(
            edge.opts.auth.identity_agent, None,
            "edge's own IdentityAgent"
        );
        assert!(
            matches!(&edge.route, Route::ProxyCommand(c) if c == "nc edge 22"),
            "{:?}",
            edge.route
        );
        assert_eq!(r.config.host_arg(), "app");
    }

    #[test]
    fn command_line_jumps_and_errors() {
        let r = resolve_in("", "app", &[Flag::ProxyJump("a,b:2200".into())]).unwrap();
        let Route::Jump(b) = &r.hop.route else {
            panic!("{:?}", r.hop.route)
        };
        assert_eq!((b.opts.hostname.as_str(), b.opts.port), ("b", 2200));
        assert!(matches!(&b.route, Route::Jump(a) if a.opts.hostname == "a"));

        let looped = "Host a\n  ProxyJump b\nHost b\n  ProxyJump a\n";
        let err = resolve_in(looped, "a", &[]).err().unwrap_or_default();
        assert!(err.contains("is there a loop?"), "{err}");
        let err = resolve_in("", "app", &[Flag::Port("0".into())])
            .err()
            .unwrap_or_default();
        assert_eq!(err, "Bad port '0'");
    }

    #[test]
    fn window_sizes() {
        assert_eq!(parse_size("64M"), Some(64 << 20));
        assert_eq!(parse_size("1048576"), Some(1 << 20));
        assert_eq!(parse_size("2g"), Some(1 << 30), "capped at 1 GiB");
        assert_eq!(parse_size("1"), Some(64 << 10), "at least 64 KiB");
        assert_eq!(parse_size("lots"), None);
    }
}
