//! `warren tunnel`: supervised tunnels that heal themselves.
//!
//! `up [--name NAME] [-f] [ssh options] DEST` keeps the forwards a
//! `warren ssh -N` with the same arguments would set up (-L/-R/-D, or the
//! host's LocalForward/RemoteForward/DynamicForward in ~/.ssh/config) alive
//! across lost connections; `status [--json] [NAME]` and `down NAME` talk
//! to running tunnels through their control sockets; `install NAME ...`
//! writes a systemd user unit. The supervisor itself is
//! `warren_core::tunnel`.

mod control;
mod report;
mod unit;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use clap::ArgMatches;
use tokio_util::sync::CancellationToken;
use warren_config::Flag;
use warren_core::forward::{ForwardOptions, ForwardSpec};
use warren_core::prompt::NoPrompt;
use warren_core::session::{Hop, Resolved, Route};
use warren_core::tunnel::{State, Tunnel, TunnelOptions, TunnelSpec, TunnelStatus};

use super::background;
use super::connect_args::{self, ConnectArgs, ForwardArgs, IdentityArgs, LoginPortArgs, Typed};
use super::settings;
use crate::logging::{self, Verbosity};
use control::{ControlSocket, Probe, Request};

/// Exit status for a tunnel that could not start or stopped for good.
const FAILURE: u8 = 255;

/// ServerAliveInterval for a tunnel when none is configured: a silent
/// peer is noticed within interval x ServerAliveCountMax (3): 45 s.
const DEFAULT_ALIVE_INTERVAL: Duration = Duration::from_secs(15);

/// ConnectTimeout for a tunnel when none is configured.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// `warren tunnel` and its subcommands, for parsing, help, completions
/// and man pages.
pub fn command() -> clap::Command {
    use clap::CommandFactory as _;
    clap::Command::new("warren tunnel")
        .about("Supervised tunnels that heal themselves: up, status, down, install")
        .disable_version_flag(true)
        .subcommand_required(true)
        .arg_required_else_help(true)
        .subcommand(UpArgs::command().name("up"))
        .subcommand(StatusArgs::command().name("status"))
        .subcommand(DownArgs::command().name("down"))
        .subcommand(InstallArgs::command().name("install"))
}

/// Runs `warren tunnel SUBCOMMAND ...`; returns the exit code.
pub fn main(args: &[String]) -> u8 {
    let argv = std::iter::once("warren tunnel".to_owned()).chain(args.iter().cloned());
    let matches = match command().try_get_matches_from(argv) {
        Ok(m) => m,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let result = match matches.subcommand() {
        Some(("up", m)) => from_matches(m).and_then(|a| up(a, m)),
        Some(("status", m)) => from_matches(m).and_then(status),
        Some(("down", m)) => from_matches(m).and_then(down),
        Some(("install", m)) => from_matches(m).and_then(|a| install(a, m)),
        _ => Ok(2),
    };
    match result {
        Ok(code) => code,
        Err(err) => crate::output::report("warren", &err, FAILURE),
    }
}

fn from_matches<A: clap::FromArgMatches>(m: &ArgMatches) -> anyhow::Result<A> {
    Ok(A::from_arg_matches(m)?)
}

/// `warren tunnel status [--json] [NAME]`
#[derive(Debug, clap::Parser)]
#[command(
    name = "warren tunnel status",
    disable_version_flag = true,
    about = "Running tunnels: state, forwards, traffic, last error"
)]
struct StatusArgs {
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
    /// Only this tunnel.
    name: Option<String>,
}

/// `warren tunnel down NAME`
#[derive(Debug, clap::Parser)]
#[command(
    name = "warren tunnel down",
    disable_version_flag = true,
    about = "Stop a running tunnel"
)]
struct DownArgs {
    /// The tunnel's name (warren tunnel status lists them).
    name: String,
}

/// What `up` and `install` share: the tunnel's own options, the
/// connection flags every subcommand that reaches a host has, the
/// forwards, and the destination.
#[derive(Debug, clap::Args)]
struct TunnelArgs {
    /// Detach once the tunnel is up (the first connection made).
    #[arg(long)]
    background: bool,
    /// How long a connection waits for the session (default 30s).
    #[arg(long, value_name = "DUR")]
    wait: Option<String>,
    /// Time between end-to-end probes (default 30s; 0 turns them off).
    #[arg(long, value_name = "DUR")]
    probe_interval: Option<String>,
    /// How long one probe may take (default 10s).
    #[arg(long, value_name = "DUR")]
    probe_timeout: Option<String>,
    /// First wait before reconnecting (default 1s).
    #[arg(long, value_name = "DUR")]
    backoff_initial: Option<String>,
    /// Longest wait between reconnects (default 60s).
    #[arg(long, value_name = "DUR")]
    backoff_max: Option<String>,
    /// Bound on one whole connection attempt (default 60s).
    #[arg(long, value_name = "DUR")]
    connect_timeout: Option<String>,
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(flatten)]
    login_port: LoginPortArgs,
    #[command(flatten)]
    identity: IdentityArgs,
    #[command(flatten)]
    forwards: ForwardArgs,
    /// Remote hosts may connect to local forwarded ports (as ssh -g).
    #[arg(short = 'g')]
    gateway_ports: bool,
    /// Background, as ssh -f (the same as --background).
    #[arg(short = 'f')]
    fork: bool,
    /// Accepted for ssh's sake: a tunnel runs no command anyway.
    #[arg(short = 'N')]
    no_command: bool,
    /// Append logs to this file instead of stderr.
    #[arg(short = 'E', value_name = "LOG_FILE")]
    log_file: Option<PathBuf>,
    /// `[user@]host` or `ssh://[user@]host[:port]`.
    #[arg(value_hint = clap::ValueHint::Hostname)]
    destination: String,
}

/// `warren tunnel up [--name NAME] [options] destination`
#[derive(Debug, clap::Parser)]
#[command(
    name = "warren tunnel up",
    disable_version_flag = true,
    about = "Keep a tunnel's forwards up across lost connections (-L/-R/-D, or the host's)"
)]
struct UpArgs {
    /// The tunnel's name (default: the destination).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    #[command(flatten)]
    tunnel: TunnelArgs,
}

/// `warren tunnel install NAME [--print] [options] destination`
#[derive(Debug, clap::Parser)]
#[command(
    name = "warren tunnel install",
    disable_version_flag = true,
    about = "Write a systemd user unit that runs `warren tunnel up` with these arguments"
)]
struct InstallArgs {
    /// The tunnel's name.
    name: String,
    /// Print the unit, write nothing.
    #[arg(long)]
    print: bool,
    #[command(flatten)]
    tunnel: TunnelArgs,
}

/// Parses `args` as `A` (clap's error, with its usage, on failure) and
/// keeps the matches: where each flag was typed. `None` once `--help`
/// has been printed.
#[cfg(test)]
fn parse<A: clap::Parser>(name: &str, args: &[String]) -> anyhow::Result<Option<(A, ArgMatches)>> {
    let argv = std::iter::once(name.to_owned()).chain(args.iter().cloned());
    let parsed = A::command()
        .try_get_matches_from(argv)
        .and_then(|m| Ok((A::from_arg_matches(&m)?, m)));
    match parsed {
        Ok(p) => Ok(Some(p)),
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

impl TunnelArgs {
    /// The supervisor's options, defaults filled in.
    fn options(&self) -> anyhow::Result<TunnelOptions> {
        let mut o = TunnelOptions::default();
        let get =
            |flag: &str, v: &Option<String>| v.as_deref().map(|v| duration(flag, v)).transpose();
        if let Some(d) = get("wait", &self.wait)? {
            o.wait_for_session = d;
        }
        if let Some(d) = get("probe-interval", &self.probe_interval)? {
            o.probe_interval = (!d.is_zero()).then_some(d);
        }
        if let Some(d) = get("probe-timeout", &self.probe_timeout)? {
            o.probe_timeout = d;
        }
        if let Some(d) = get("backoff-initial", &self.backoff_initial)? {
            o.backoff.initial = d;
        }
        if let Some(d) = get("backoff-max", &self.backoff_max)? {
            o.backoff.max = d;
        }
        if let Some(d) = get("connect-timeout", &self.connect_timeout)? {
            o.connect_timeout = d;
        }
        Ok(o)
    }

    /// The tunnel's own options as `--key=value` words, for a unit.
    fn own_words(&self) -> Vec<String> {
        let own = [
            ("wait", &self.wait),
            ("probe-interval", &self.probe_interval),
            ("probe-timeout", &self.probe_timeout),
            ("backoff-initial", &self.backoff_initial),
            ("backoff-max", &self.backoff_max),
            ("connect-timeout", &self.connect_timeout),
        ];
        own.into_iter()
            .filter_map(|(key, v)| Some(format!("--{key}={}", v.as_deref()?)))
            .collect()
    }

    /// The connection flags and forwards, where they were typed; a tunnel
    /// is `ssh -N`.
    fn typed(m: &ArgMatches) -> Vec<Typed> {
        let mut flags = vec![(0, Flag::NoCommand)];
        flags.extend(ConnectArgs::typed(m));
        flags.extend(LoginPortArgs::typed(m));
        flags.extend(IdentityArgs::typed(m));
        flags.extend(ForwardArgs::typed(m));
        connect_args::switch(m, "gateway_ports", Flag::GatewayPorts, &mut flags);
        connect_args::switch(m, "fork", Flag::Background, &mut flags);
        flags
    }

    /// The words of a `tunnel up` that does the same, for a unit.
    fn unit_words(&self, m: &ArgMatches) -> Vec<String> {
        let mut words = self.own_words();
        if let Some(f) = &self.connect.config_file {
            words.extend(["-F".to_owned(), f.clone()]);
        }
        if let Some(f) = &self.log_file {
            words.extend(["-E".to_owned(), f.display().to_string()]);
        }
        let typed: Vec<Typed> = Self::typed(m).into_iter().skip(1).collect();
        words.extend(connect_args::words(&typed));
        words.push(self.destination.clone());
        words
    }
}

fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    anyhow::ensure!(
        ok,
        "invalid tunnel name {name:?}: use letters, digits, '.', '_' and '-' (at most 64)"
    );
    Ok(())
}

/// The default name: the destination as typed, made safe for a file name.
fn default_name(destination: &str) -> String {
    let name: String = destination
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    name.trim_start_matches('.').to_owned()
}

/// `500ms`, `30s`, `5m`, `1h`, or plain seconds.
fn duration(flag: &str, s: &str) -> anyhow::Result<Duration> {
    let s = s.trim();
    let (digits, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((s, ""), |i| s.split_at(i));
    let n: f64 = digits
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite() && *n >= 0.0)
        .ok_or_else(|| anyhow::anyhow!("--{flag}: not a duration: {s:?} (e.g. 500ms, 30s, 5m)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => anyhow::bail!("--{flag}: unknown unit in {s:?} (ms, s, m or h)"),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| anyhow::anyhow!("--{flag}: {s:?}: {e}"))
}

/// What `warren tunnel up` will do: the destination resolved as by
/// `warren ssh -N` with the same flags.
struct TunnelSettings {
    name: String,
    hop: Hop,
    forwards: Vec<ForwardSpec>,
    forward_options: ForwardOptions,
    /// -f, --background or ForkAfterAuthentication.
    background: bool,
    verbosity: Verbosity,
    options: TunnelOptions,
}

fn resolve(t: &TunnelArgs, m: &ArgMatches, name: Option<&str>) -> anyhow::Result<TunnelSettings> {
    let at = m.index_of("destination").unwrap_or(usize::MAX);
    let cli =
        connect_args::command_line(&t.destination, at, t.connect.config(), TunnelArgs::typed(m))?;
    let env = warren_config::SystemEnvironment::new();
    let Resolved { config: host, hop } = settings::resolve_host(&cli, &env, t.connect.quiet)?;
    let name = match name {
        Some(n) => n.to_owned(),
        None => default_name(&t.destination),
    };
    check_name(&name)?;
    let forwards = settings::forwards(&host);
    anyhow::ensure!(
        !forwards.is_empty(),
        "tunnel {name} has no forwards: give -L, -R or -D, or LocalForward / RemoteForward / DynamicForward for the host in ~/.ssh/config"
    );
    Ok(TunnelSettings {
        name,
        hop,
        forwards,
        forward_options: settings::forward_options(&host),
        background: t.background || host.fork_after_authentication(),
        verbosity: settings::verbosity(host.log_level()),
        options: t.options()?,
    })
}

/// Keepalives and a connect timeout on every hop unless configured: a
/// supervised session must notice a silent peer and never hang in connect.
fn supervised(hop: &mut Hop) {
    let opts = &mut hop.opts;
    if opts.server_alive_interval.is_none() {
        opts.server_alive_interval = Some(DEFAULT_ALIVE_INTERVAL);
    }
    if opts.connect_timeout.is_none() {
        opts.connect_timeout = Some(DEFAULT_CONNECT_TIMEOUT);
    }
    if let Route::Jump(via) = &mut hop.route {
        supervised(via);
    }
}

fn up(up: UpArgs, m: &ArgMatches) -> anyhow::Result<u8> {
    let t = &up.tunnel;
    if let Some(name) = &up.name {
        check_name(name)?;
    }
    let mut settings = resolve(t, m, up.name.as_deref())?;
    let background = settings.background;
    if let Some(code) = background::launch_if_requested(background) {
        return Ok(code);
    }
    logging::init_timed(settings.verbosity, t.log_file.as_deref());
    supervised(&mut settings.hop);
    let spec = TunnelSpec {
        name: settings.name,
        hop: settings.hop,
        forwards: settings.forwards,
        forward_options: settings.forward_options,
        options: settings.options,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    let quiet = settings.verbosity == Verbosity::Quiet;
    let keep_stderr = t.log_file.is_none() && !background;
    let code = runtime.block_on(run_tunnel(spec, background, quiet, keep_stderr));
    runtime.shutdown_timeout(Duration::from_secs(2));
    code
}

async fn run_tunnel(
    spec: TunnelSpec,
    background: bool,
    quiet: bool,
    keep_stderr: bool,
) -> anyhow::Result<u8> {
    let name = spec.name.clone();
    let dir = control::runtime_dir()?;
    let socket = ControlSocket::bind(&dir, &name).await?;
    let token = CancellationToken::new();
    let tunnel = Tunnel::bind(spec, Arc::new(NoPrompt), token.clone()).await?;
    let status = tunnel.status();
    let metrics = tokio::runtime::Handle::current().metrics();
    let control = tokio::spawn(socket.serve(status.clone(), token.clone(), move || {
        metrics.num_alive_tasks() as u64
    }));
    let signals = tokio::spawn(stop_on_signal(token.clone()));
    let mut states = status.watch();
    let transitions = (!quiet && !background).then(|| status.transitions());
    let run = tokio::spawn(tunnel.run());
    if background {
        // Report a permanent failure of the first attempt to the launcher;
        // anything else is the supervisor's to heal.
        let _ = states.wait_for(|s| *s != State::Connecting).await;
        if *states.borrow() != State::Failed {
            background::detach(true, keep_stderr);
        }
    }
    let reporter =
        transitions.map(|states| tokio::spawn(report::report_states(status.clone(), states)));
    let result = run.await.context("the tunnel task failed")?;
    if result.is_err() {
        let mut last = status.snapshot();
        last.tasks = None;
        if let Err(e) = control::record_failure(&dir, &last) {
            tracing::warn!("{e:#}");
        }
    }
    token.cancel();
    let _ = control.await;
    signals.abort();
    if let Some(r) = reporter {
        r.abort();
    }
    result?;
    Ok(0)
}

async fn stop_on_signal(token: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
        _ = hup.recv() => {}
    }
    token.cancel();
}

fn small_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start the async runtime")
}

fn status(StatusArgs { json, name }: StatusArgs) -> anyhow::Result<u8> {
    let dir = control::runtime_dir()?;
    let tunnels = small_runtime()?.block_on(async {
        let Some(n) = &name else {
            return control::all(&dir).await;
        };
        check_name(n)?;
        let one = control::one(&dir, n).await?;
        anyhow::ensure!(
            one.is_some(),
            "no tunnel named {n} is running (warren tunnel status lists them)"
        );
        Ok(Vec::from_iter(one))
    })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&tunnels)?);
    } else {
        print!("{}", table(&tunnels, report::colour_wanted()));
    }
    Ok(0)
}

/// The status table: one line per tunnel, one indented line per forward.
fn table(tunnels: &[TunnelStatus], colour: bool) -> String {
    use std::fmt::Write as _;
    if tunnels.is_empty() {
        return "no tunnels are running\n".into();
    }
    let width = tunnels
        .iter()
        .map(|t| t.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut out = format!(
        "{:width$}  {:14}  {:>8}  {:>10}  {:>12}  LAST ERROR\n",
        "NAME", "STATE", "UPTIME", "RECONNECTS", "NEXT ATTEMPT"
    );
    for t in tunnels {
        let uptime = t.uptime_secs.map_or("-".into(), human_secs);
        let reconnects = match t.state {
            // Nothing is known of a tunnel that did not answer.
            State::NotResponding => "-".into(),
            _ => t.reconnects.to_string(),
        };
        let error = match (&t.last_error, t.last_error_secs) {
            (Some(e), Some(ago)) => format!("{} ({} ago)", first_line(e), human_secs(ago)),
            (Some(e), None) => first_line(e),
            _ => "-".into(),
        };
        let state = report::paint(t.state, &format!("{:14}", t.state.to_string()), colour);
        let _ = writeln!(
            out,
            "{:width$}  {state}  {:>8}  {:>10}  {:>12}  {error}",
            t.name,
            uptime,
            reconnects,
            report::next_attempt(t),
        );
        for f in &t.forwards {
            let _ = write!(
                out,
                "  {}  in {}  out {}  connections {} ({} open)",
                f.spec,
                human_bytes(f.bytes_in),
                human_bytes(f.bytes_out),
                f.connections,
                f.open
            );
            if let Some(e) = &f.error {
                let _ = write!(out, "  error: {}", first_line(e));
            }
            out.push('\n');
        }
    }
    out
}

/// The line of a (possibly multi-line) error that says what happened,
/// past OpenSSH-style banners ("@@@@", "IT IS POSSIBLE ..."), with control
/// characters escaped: the text comes over a socket and may quote a peer.
fn first_line(s: &str) -> String {
    let line = s
        .lines()
        .find(|l| !l.starts_with('@') && l.chars().any(char::is_lowercase))
        .unwrap_or(s);
    warren_wire::escape_str(line).into_owned()
}

fn human_secs(s: u64) -> String {
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}

fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{b} B"),
        _ => format!("{v:.1} {}", UNITS[unit]),
    }
}

fn down(DownArgs { name }: DownArgs) -> anyhow::Result<u8> {
    let name = &name;
    check_name(name)?;
    let dir = control::runtime_dir()?;
    let path = control::socket_path(&dir, name);
    let pid = match control::probe(&dir, name)? {
        Probe::Free(_lock) => {
            // No process holds the lock: whatever is left is stale.
            let _ = std::fs::remove_file(&path);
            let failed = control::failure(&dir, name, SystemTime::now());
            anyhow::ensure!(
                failed.is_some(),
                "no tunnel named {name} is running (warren tunnel status lists them)"
            );
            std::fs::remove_file(control::failed_path(&dir, name))?;
            eprintln!(
                "warren: tunnel {name} had stopped: {}",
                failed
                    .as_ref()
                    .and_then(|f| f.last_error.as_deref())
                    .map_or(String::new(), first_line)
            );
            return Ok(0);
        }
        Probe::Live { pid } => pid,
    };
    let shown = pid.map_or(String::new(), |p| format!(" (pid {p})"));
    anyhow::ensure!(
        path.exists(),
        "tunnel {name}{shown} is running but its control socket {} is gone, so it was not stopped; {}",
        path.display(),
        control::unresponsive_hint(pid)
    );
    small_runtime()?.block_on(async {
        let answer = match control::request(&path, Request::Down).await {
            Ok(answer) => answer,
            Err(e) => anyhow::bail!(
                "tunnel {name}{shown} is not responding, so it was not stopped: {e:#}; {}",
                control::unresponsive_hint(pid)
            ),
        };
        anyhow::ensure!(answer.ok, "{}", answer.error.unwrap_or_default());
        // The lock is let go once the tunnel has closed its listeners and
        // removed its socket.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            if let Probe::Free(_) = control::probe(&dir, name)? {
                return Ok(());
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "tunnel {name}{shown} was asked to stop but is still running"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })?;
    eprintln!("warren: tunnel {name} stopped");
    Ok(0)
}

fn install(install: InstallArgs, m: &ArgMatches) -> anyhow::Result<u8> {
    let (name, t) = (&install.name, &install.tunnel);
    check_name(name)?;
    anyhow::ensure!(
        !t.background && !t.fork,
        "a unit runs the tunnel in the foreground: drop -f / --background"
    );
    // Check now what the unit would fail on later.
    let _ = resolve(t, m, Some(name))?;
    let program = std::env::current_exe().context("cannot find the warren executable")?;
    let text = unit::render(&program, name, &t.unit_words(m));
    print!("{text}");
    if install.print {
        return Ok(0);
    }
    let dir = unit::user_unit_dir()?;
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(unit::file_name(name));
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!(
        "warren: wrote {}\nstart it now and at each login with:\n  systemctl --user daemon-reload && systemctl --user enable --now {}\nto keep it running while logged out (and from boot): loginctl enable-linger",
        path.display(),
        unit::file_name(name)
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn up_args(v: &[&str]) -> anyhow::Result<(UpArgs, ArgMatches)> {
        parse::<UpArgs>("up", &strings(v))?.ok_or_else(|| anyhow::anyhow!("help"))
    }

    #[test]
    fn own_options_stand_anywhere() {
        let (a, _) = up_args(&[
            "--name",
            "db",
            "-L",
            "1:h:2",
            "--wait=5s",
            "prod",
            "--background",
        ])
        .unwrap();
        assert_eq!(a.name.as_deref(), Some("db"));
        let t = &a.tunnel;
        assert!(t.background);
        assert_eq!(t.forwards.local_forward, strings(&["1:h:2"]));
        assert_eq!(t.destination, "prod");
        let o = t.options().unwrap();
        assert_eq!(o.wait_for_session, Duration::from_secs(5));
        assert_eq!(o.backoff.initial, Duration::from_secs(1), "default");
        assert_eq!(t.own_words(), strings(&["--wait=5s"]));

        let (a, _) = up_args(&["--probe-interval", "0", "--backoff-max", "2m", "h"]).unwrap();
        let o = a.tunnel.options().unwrap();
        assert_eq!(o.probe_interval, None);
        assert_eq!(o.backoff.max, Duration::from_secs(120));
        assert_eq!(
            a.tunnel.own_words(),
            strings(&["--probe-interval=0", "--backoff-max=2m"])
        );

        assert!(up_args(&["--print", "h"]).is_err());
        assert!(up_args(&["--frobnicate", "h"]).is_err());
        assert!(up_args(&["--name"]).is_err());
        assert!(
            up_args(&["h", "uptime"]).is_err(),
            "a tunnel runs no command"
        );
        assert!(up_args(&["-W", "x:1", "h"]).is_err(), "-W is not a tunnel");
        let (a, _) = up_args(&["--wait", "soon", "h"]).unwrap();
        assert!(a.tunnel.options().is_err());
        let (i, m) = parse::<InstallArgs>(
            "install",
            &strings(&[
                "db", "--print", "--wait", "10s", "-F", "c", "-o", "Port=2", "-p", "3", "-L",
                "1:h:2", "-v", "h",
            ]),
        )
        .unwrap()
        .unwrap();
        assert!(i.print);
        assert_eq!(
            i.tunnel.unit_words(&m).join(" "),
            "--wait=10s -F c -o Port=2 -p 3 -L 1:h:2 -v h"
        );
    }

    #[test]
    fn durations() {
        let cases = [
            ("500ms", Some(Duration::from_millis(500))),
            ("30", Some(Duration::from_secs(30))),
            ("30s", Some(Duration::from_secs(30))),
            ("1.5s", Some(Duration::from_millis(1500))),
            ("5m", Some(Duration::from_secs(300))),
            ("1h", Some(Duration::from_secs(3600))),
            ("0", Some(Duration::ZERO)),
            ("soon", None),
            ("5d", None),
            ("-1s", None),
        ];
        for (text, want) in cases {
            assert_eq!(duration("wait", text).ok(), want, "{text}");
        }
    }

    #[test]
    fn names() {
        assert_eq!(default_name("prod"), "prod");
        assert_eq!(default_name("me@db.example:22"), "me_db.example_22");
        assert_eq!(default_name("..x"), "x");
        for bad in ["", "a/b", ".hidden", "sp ace"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_name("db-1.prod_x").is_ok());
    }

    #[test]
    fn error_summaries_skip_banners() {
        let changed = "@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n@@@@\n\
                       IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!\n\
                       The ED25519 host key for prod has changed; it is now SHA256:x.\n\
                       Host key verification failed.";
        assert_eq!(
            first_line(changed),
            "The ED25519 host key for prod has changed; it is now SHA256:x."
        );
        assert_eq!(first_line("connect refused"), "connect refused");
        // A reason quoted from a peer cannot draw on the status table.
        assert_eq!(
            first_line("server said: bye\r\x1b[2Jevil"),
            "server said: bye\\r\\e[2Jevil"
        );
    }

    fn failed_record(last_error_secs: u64) -> TunnelStatus {
        TunnelStatus {
            name: "db".into(),
            destination: "prod".into(),
            pid: 42,
            state: State::Failed,
            uptime_secs: None,
            reconnects: 2,
            faults: 3,
            last_error: Some("Host key verification failed.".into()),
            last_error_secs: Some(last_error_secs),
            forwards: Vec::new(),
            tasks: None,
            next_attempt_secs: None,
        }
    }

    /// A failed tunnel's record said "0s ago" forever: the age it held
    /// when written was shown as the age now.
    #[test]
    fn failed_tunnels_show_the_time_since_the_failure() {
        let recorded = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let cases = [
            (0, Duration::ZERO, "(0s ago)"),
            (0, Duration::from_secs(90), "(1m30s ago)"),
            (5, Duration::from_secs(3600), "(1h00m ago)"),
            (0, Duration::from_secs(2 * 86400 + 3 * 3600), "(2d03h ago)"),
        ];
        for (at_record, later, want) in cases {
            let s = control::aged(failed_record(at_record), recorded, recorded + later);
            let out = table(&[s], false);
            let line = out.lines().nth(1).unwrap();
            assert!(
                line.starts_with("db    failed ") && line.ends_with(&format!("failed. {want}")),
                "{later:?}: {out}"
            );
        }
        // A clock set back since the record: no age from the future.
        let s = control::aged(
            failed_record(7),
            recorded,
            recorded - Duration::from_secs(60),
        );
        assert_eq!(s.last_error_secs, Some(7));
    }

    #[test]
    fn unresponsive_tunnels_show_why_and_no_numbers() {
        let mut s = failed_record(0);
        s.state = State::NotResponding;
        s.last_error = Some("x.sock did not answer within 5s".into());
        s.last_error_secs = None;
        let out = table(&[s], false);
        let line = out.lines().nth(1).unwrap();
        assert!(
            line.starts_with("db    not responding  ")
                && line.contains(" -  x.sock did not answer within 5s"),
            "{out}"
        );
    }

    #[test]
    fn numbers_for_people() {
        assert_eq!(human_secs(59), "59s");
        assert_eq!(human_secs(61), "1m01s");
        assert_eq!(human_secs(3720), "1h02m");
        assert_eq!(human_secs(90000), "1d01h");
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 << 20), "5.0 MiB");
    }
}
