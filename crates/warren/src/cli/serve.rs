//! `warren serve`: the embedded SSH server, running as the invoking user.
//! Flags become a `warren_server::ServerConfig`; the server itself lives in
//! the warren-server crate so it can also run in-process.
//!
//! Stdout carries the two start lines (address, host key fingerprint) so a
//! script can read the port of `--listen 127.0.0.1:0`; logs go to stderr.

use std::net::{SocketAddr, ToSocketAddrs as _};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser;
use warren_server::{AuthorizedKeys, Login, Server, ServerConfig, hostkey};

#[derive(Debug, Parser)]
#[command(
    name = "warren serve",
    disable_version_flag = true,
    about = "A rootless SSH server running as you (OpenSSH clients work against it)"
)]
pub struct ServeArgs {
    /// Address and port to listen on (port 0 picks a free one).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:2222")]
    listen: String,
    /// Host key (OpenSSH private key); generated (ed25519, 0600) if missing.
    /// Default: $XDG_CONFIG_HOME/warren/host_ed25519_key.
    #[arg(long, value_name = "FILE")]
    host_key: Option<PathBuf>,
    /// Keys allowed to log in, in OpenSSH's format with options.
    /// Default: ~/.ssh/authorized_keys.
    #[arg(long, value_name = "FILE")]
    authorized_keys: Option<PathBuf>,
    /// Let remote forwards (-R) listen on non-loopback addresses.
    #[arg(long)]
    gateway_ports: bool,
    /// Refuse TCP forwarding (-L, -R, -D, -J through this server).
    #[arg(long)]
    no_tcp_forwarding: bool,
    /// Refuse unix socket forwarding.
    #[arg(long)]
    no_streamlocal_forwarding: bool,
    /// Refuse agent forwarding (-A).
    #[arg(long)]
    no_agent_forwarding: bool,
    /// Do not serve the sftp subsystem (sftp, scp).
    #[arg(long)]
    no_sftp: bool,
    /// Apply `environment="NAME=value"` options of authorized_keys.
    #[arg(long)]
    permit_user_environment: bool,
    /// Variables clients may set (SendEnv/SetEnv), as patterns; repeatable.
    /// Default: LANG, LC_*.
    #[arg(long, value_name = "PATTERN")]
    accept_env: Vec<String>,
    /// Failed authentication attempts per connection.
    #[arg(long, value_name = "N", default_value_t = 6)]
    max_auth_tries: u32,
    /// Time a connection has to log in (e.g. 120, 2m).
    #[arg(long, value_name = "DURATION", default_value = "120")]
    login_grace_time: String,
    /// Connections not yet logged in: from START on, RATE% of new ones are
    /// dropped, rising to all of them at FULL (sshd's MaxStartups). A
    /// connection silent for 2 s gives way to a new one. N means N:100:N.
    #[arg(long, value_name = "START:RATE:FULL", default_value = "10:30:100")]
    max_startups: String,
    /// Refuse new connections from a source whose connections keep ending
    /// badly (sshd's PerSourcePenalties): `no`, or keyword:time items that
    /// override the defaults crash:90s authfail:1s invaliduser:2s noauth:1s
    /// grace-exceeded:10s max:10m min:15s (penalties add up to max and
    /// refuse only above min); also max-sources4/6:N, overflow(6):permissive|deny-all.
    #[arg(long, value_name = "KEYWORD:TIME ...", default_value = "yes")]
    per_source_penalties: String,
    /// Sources never penalised: addresses, wildcard patterns or CIDR
    /// blocks, comma-separated (e.g. 127.0.0.0/8,::1,192.168.1.*).
    #[arg(long, value_name = "LIST")]
    per_source_penalty_exempt_list: Option<String>,
    /// Leading address bits that make one source for penalties, IPv4[:IPv6].
    #[arg(long, value_name = "BITS4[:BITS6]", default_value = "32:128")]
    per_source_net_block_size: String,
    /// Sessions (shells, commands, sftp) per connection, at most.
    #[arg(long, value_name = "N", default_value_t = 10)]
    max_sessions: usize,
    /// Drop connections idle this long (0: never).
    #[arg(long, value_name = "DURATION", default_value = "0")]
    idle_timeout: String,
    /// On SIGTERM/Ctrl-C, how long running sessions may go on.
    #[arg(long, value_name = "DURATION", default_value = "10")]
    shutdown_grace: String,
    /// More logging: -v debug, -vv trace including russh.
    #[arg(short, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Errors only.
    #[arg(short)]
    quiet: bool,
}

pub fn main(args: &[String]) -> u8 {
    let parsed = match ServeArgs::try_parse_from(
        std::iter::once("warren serve".to_owned()).chain(args.iter().cloned()),
    ) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    init_logging(&parsed);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("warren: cannot start the async runtime: {e}");
            return 1;
        }
    };
    match runtime.block_on(run(parsed)) {
        Ok(()) => 0,
        Err(e) => crate::output::report("warren", &e, 1),
    }
}

fn init_logging(args: &ServeArgs) {
    let filter = match (args.quiet, args.verbose) {
        (true, _) => "error",
        (false, 0) => "warn,warren_server=info",
        (false, 1) => "info,warren_server=debug,warren_core=debug",
        (false, _) => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("WARREN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    let _ = tracing_subscriber::fmt()
        .log_internal_errors(false)
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(args.verbose > 0)
        .try_init();
}

async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = settings(&args)?;
    let server = Server::bind(config).await?;
    println!("warren serve: listening on {}", server.local_addr());
    println!("warren serve: host key {}", server.host_key_fingerprint());
    let shutdown = server.shutdown_handle();
    tokio::spawn(async move {
        wait_for_stop_signal().await;
        tracing::info!("shutdown requested");
        shutdown.shutdown();
    });
    server.run().await?;
    Ok(())
}

/// SIGTERM or SIGINT (Ctrl-C).
async fn wait_for_stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// What the flags mean, checked: the second stage of `warren serve`.
fn settings(args: &ServeArgs) -> anyhow::Result<ServerConfig> {
    let listen = parse_listen(&args.listen)?;
    let key_path = match &args.host_key {
        Some(p) => p.clone(),
        None => hostkey::default_host_key_path()?,
    };
    let host_key = hostkey::load_or_generate(&key_path)?;
    if host_key.generated {
        eprintln!(
            "warren serve: generated host key {} ({})",
            key_path.display(),
            host_key.fingerprint()
        );
    }
    let login = Login::current();
    let authorized = args
        .authorized_keys
        .clone()
        .unwrap_or_else(|| ServerConfig::default_authorized_keys(&login));
    let mut config =
        ServerConfig::new(listen, vec![host_key.key], AuthorizedKeys::File(authorized));
    config.login = login;
    config.gateway_ports = args.gateway_ports;
    config.allow_tcp_forwarding = !args.no_tcp_forwarding;
    config.allow_streamlocal_forwarding = !args.no_streamlocal_forwarding;
    config.allow_agent_forwarding = !args.no_agent_forwarding;
    config.sftp = !args.no_sftp;
    config.permit_user_environment = args.permit_user_environment;
    if !args.accept_env.is_empty() {
        config.accept_env = args.accept_env.clone();
    }
    if args.max_auth_tries == 0 {
        bail!("--max-auth-tries must be at least 1");
    }
    config.max_auth_tries = args.max_auth_tries;
    config.login_grace_time = duration("--login-grace-time", &args.login_grace_time)?
        .unwrap_or(Duration::from_secs(u64::from(u32::MAX)));
    config.max_startups = args
        .max_startups
        .parse()
        .map_err(|e| anyhow::anyhow!("--max-startups {}: {e}", args.max_startups))?;
    config.per_source_penalties = args.per_source_penalties.parse().map_err(|e| {
        anyhow::anyhow!("--per-source-penalties {}: {e}", args.per_source_penalties)
    })?;
    if let Some(list) = &args.per_source_penalty_exempt_list {
        warren_server::check_exempt_list(list)
            .map_err(|e| anyhow::anyhow!("--per-source-penalty-exempt-list {list}: {e}"))?;
        config.per_source_penalty_exempt_list = Some(list.clone());
    }
    config.per_source_net_block_size = args.per_source_net_block_size.parse().map_err(|e| {
        anyhow::anyhow!(
            "--per-source-net-block-size {}: {e}",
            args.per_source_net_block_size
        )
    })?;
    config.max_sessions = args.max_sessions.max(1);
    config.idle_timeout = duration("--idle-timeout", &args.idle_timeout)?;
    config.shutdown_grace = duration("--shutdown-grace", &args.shutdown_grace)?.unwrap_or_default();
    Ok(config)
}

/// `ADDR:PORT`, `[V6]:PORT`, `HOST:PORT` (first address), or a bare port
/// on 127.0.0.1.
fn parse_listen(s: &str) -> anyhow::Result<SocketAddr> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    s.to_socket_addrs()
        .with_context(|| format!("--listen {s}: expected ADDR:PORT, e.g. 127.0.0.1:2222"))?
        .next()
        .with_context(|| format!("--listen {s}: the name has no address"))
}

/// sshd's time format (`90`, `2m`, `1h30m`); 0 is `None` (no limit).
fn duration(flag: &str, s: &str) -> anyhow::Result<Option<Duration>> {
    let secs = warren_config::parse_duration(s)
        .with_context(|| format!("{flag} {s}: expected a time such as 30, 90s, 2m or 1h"))?;
    Ok((secs > 0).then(|| Duration::from_secs(u64::from(secs))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use warren_server::{MaxStartups, NetBlockSize, PenaltyConfig};

    fn args(extra: &[&str]) -> ServeArgs {
        ServeArgs::try_parse_from(std::iter::once("warren serve").chain(extra.iter().copied()))
            .unwrap()
    }

    #[test]
    fn listen_forms() {
        let cases = [
            ("2222", Some("127.0.0.1:2222")),
            ("0.0.0.0:22", Some("0.0.0.0:22")),
            ("[::1]:2200", Some("[::1]:2200")),
            ("127.0.0.1:0", Some("127.0.0.1:0")),
            ("nonsense", None),
        ];
        for (input, want) in cases {
            let got = parse_listen(input).ok().map(|a| a.to_string());
            assert_eq!(got.as_deref(), want, "{input}");
        }
    }

    #[test]
    fn durations() {
        let cases = [
            ("0", Some(None)),
            ("90", Some(Some(90))),
            ("2m", Some(Some(120))),
            ("1h30m", Some(Some(5400))),
            ("soon", None),
        ];
        for (input, want) in cases {
            let got = duration("--x", input).ok().map(|d| d.map(|d| d.as_secs()));
            assert_eq!(got, want, "{input}");
        }
    }

    /// Each limit flag as typed, and what it becomes (None: refused).
    #[test]
    fn limit_flags() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("hk");
        let key_arg = key.to_str().unwrap();
        let with = |flag: &str, value: &str| settings(&args(&["--host-key", key_arg, flag, value]));
        let cases = [
            ("--max-startups", "10:30:100", true),
            ("--max-startups", "3", true),
            ("--max-startups", "0", false),
            ("--max-startups", "20:30:10", false),
            ("--per-source-penalties", "no", true),
            ("--per-source-penalties", "authfail:5s max:10m", true),
            ("--per-source-penalties", "authfail:5s,crash:2m", true),
            ("--per-source-penalties", "refuse:5s", false),
            ("--per-source-penalty-exempt-list", "127.0.0.0/8,::1", true),
            ("--per-source-penalty-exempt-list", "127.0.0.1/8", false),
            ("--per-source-net-block-size", "24:64", true),
            ("--per-source-net-block-size", "33", false),
        ];
        for (flag, value, ok) in cases {
            assert_eq!(with(flag, value).is_ok(), ok, "{flag} {value}");
        }
        let c = with("--max-startups", "3").unwrap();
        assert_eq!(
            c.max_startups,
            MaxStartups {
                start: 3,
                rate: 100,
                full: 3
            }
        );
        let c = with("--per-source-penalties", "authfail:5s max:10m").unwrap();
        assert_eq!(c.per_source_penalties.authfail, Duration::from_secs(5));
        assert_eq!(c.per_source_penalties.max, Duration::from_secs(600));
        assert!(
            !with("--per-source-penalties", "no")
                .unwrap()
                .per_source_penalties
                .enabled
        );
        let c = with("--per-source-penalty-exempt-list", "127.0.0.0/8,::1").unwrap();
        assert_eq!(
            c.per_source_penalty_exempt_list.as_deref(),
            Some("127.0.0.0/8,::1")
        );
        let c = with("--per-source-net-block-size", "24:64").unwrap();
        assert_eq!(c.per_source_net_block_size, NetBlockSize { v4: 24, v6: 64 });
    }

    #[test]
    fn flags_become_settings() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("hk");
        let key_arg = key.to_str().unwrap();
        let a = args(&[
            "--listen",
            "127.0.0.1:0",
            "--host-key",
            key_arg,
            "--gateway-ports",
            "--no-sftp",
            "--max-auth-tries",
            "3",
            "--login-grace-time",
            "1m",
            "--idle-timeout",
            "5m",
            "--accept-env",
            "FOO_*",
            "-v",
        ]);
        let c = settings(&a).unwrap();
        assert!(c.gateway_ports && !c.sftp && c.allow_tcp_forwarding);
        assert_eq!(c.max_auth_tries, 3);
        assert_eq!(c.login_grace_time, Duration::from_secs(60));
        assert_eq!(c.idle_timeout, Some(Duration::from_secs(300)));
        assert_eq!(c.accept_env, vec!["FOO_*".to_owned()]);
        assert!(key.exists(), "host key generated on first run");
        let d = settings(&args(&["--host-key", key_arg])).unwrap();
        assert_eq!(d.listen.to_string(), "127.0.0.1:2222");
        assert_eq!(d.idle_timeout, None);
        assert_eq!(d.accept_env, vec!["LANG".to_owned(), "LC_*".to_owned()]);
        assert!(settings(&args(&["--host-key", key_arg, "--max-auth-tries", "0"])).is_err());
        assert_eq!(d.max_startups, MaxStartups::default());
        assert_eq!(d.per_source_penalties, PenaltyConfig::default());
        assert!(settings(&args(&["--host-key", key_arg, "--idle-timeout", "x"])).is_err());
    }
}
