//! `warren cp`: scp's command line over SFTP, with many requests, channels
//! and files in flight; atomic (a temporary name, renamed into place) and
//! resumable (`--resume`).
//!
//! Design choice: the operands are scp's (`[user@]host:path`,
//! `scp://[user@]host[:port]/path`, warren-config's `remote_path`), the
//! connection flags `warren ssh`'s (`connect_args`), and every host is
//! reached through `warren_core::session::resolve`, so a host means the
//! same to cp as to ssh; a running ControlMaster is used when ControlPath
//! names one. The copying is warren-core's `transfer`.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{ArgAction, ArgMatches, Parser};
use warren_config::{CommandLine, Flag, Operand, RemotePath, SystemEnvironment};
use warren_core::prompt::{NoPrompt, Prompter, TtyPrompter};
use warren_core::session::{self, Resolved, Session};
use warren_core::transfer::client::SftpClient;
use warren_core::transfer::connect;
use warren_core::transfer::copy::Endpoint;
use warren_core::transfer::side::{Kind, Remote, Side};
use warren_core::transfer::{self, Options, Progress};
use warren_wire::Escaped;

use super::connect_args::{self, ConnectArgs, IdentityArgs, Typed};
use super::settings;
use crate::logging;

mod progress;

#[derive(Debug, Parser)]
#[command(
    name = "warren cp",
    disable_version_flag = true,
    about = "copy files over SFTP with scp's command line: atomic, resumable, many requests in flight",
    after_help = "Operands: a local path, [user@]host:path, [user@][::1]:path or \
                  scp://[user@]host[:port]/path. Remote paths are relative to the remote home; \
                  a local path with ':' after a '/' stays local (./a:b)."
)]
pub struct CpArgs {
    /// Copy directories and everything in them (symlinks as symlinks).
    #[arg(short = 'r')]
    recursive: bool,
    /// Keep modes and modification and access times.
    #[arg(short = 'p')]
    preserve: bool,
    /// Port to connect to on the remote host.
    #[arg(short = 'P', value_name = "PORT")]
    port: Option<String>,
    /// Limit the bandwidth, in Kbit/s.
    #[arg(short = 'l', value_name = "LIMIT")]
    limit: Option<u64>,
    /// Batch mode: never ask for passwords or passphrases.
    #[arg(short = 'B')]
    batch: bool,
    /// Remote to remote through this machine (always the case; accepted for scp's sake).
    #[arg(short = '3')]
    through_local: bool,
    /// No strict file name checking (accepted for scp's sake: SFTP needs none).
    #[arg(short = 'T')]
    no_name_check: bool,
    /// Continue partial copies left by an interrupted run (and keep them on failure).
    #[arg(long)]
    resume: bool,
    /// Connections to each host (default 1; each adds an sshd process on the server).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=16))]
    parallel: Option<u16>,
    /// SFTP channels per connection (default: from the job and the round trip).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    channels: Option<u16>,
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(flatten)]
    identity: IdentityArgs,
    /// SOURCE... TARGET
    #[arg(required = true, num_args = 2.., value_name = "PATH", action = ArgAction::Append,
          value_parser = clap::value_parser!(OsString))]
    paths: Vec<OsString>,
}

/// `warren cp ARGS`; the arguments are bytes (file names need not be
/// UTF-8).
pub fn main(args: &[OsString]) -> u8 {
    super::run_tool_typed::<CpArgs, _>("warren cp", args, run)
}

/// Exit status for a connection that could not be made (scp's).
const CONNECT_FAILED: u8 = 255;

fn run(a: &CpArgs, m: &ArgMatches) -> anyhow::Result<u8> {
    let operands: Vec<Operand> = a
        .paths
        .iter()
        .map(|p| Operand::parse(p.as_bytes()))
        .collect::<Result<_, _>>()?;
    let mut flags = ConnectArgs::typed(m);
    flags.extend(IdentityArgs::typed(m));
    connect_args::values(m, "port", Flag::Port, &mut flags);
    if a.batch {
        flags.push((0, Flag::Option("BatchMode=yes".to_owned())));
    }
    let at = m.index_of("paths").unwrap_or(usize::MAX);
    // One connection per distinct [user@]host[:port].
    let mut hosts: Vec<(HostKey, Resolved)> = Vec::new();
    for op in &operands {
        if let Operand::Remote(r) = op {
            let key = HostKey::of(r);
            if hosts.iter().any(|(k, _)| *k == key) {
                continue;
            }
            let cli = command_line(r, at, a, flags.clone());
            let resolved =
                settings::resolve_host(&cli, &SystemEnvironment::new(), a.connect.quiet)?;
            hosts.push((key, resolved));
        }
    }
    let level = hosts
        .first()
        .map_or(warren_config::LogLevel::Info, |(_, r)| r.config.log_level());
    logging::init(settings::verbosity(level), None);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("start the async runtime")?;
    let code = runtime.block_on(copy(a, operands, hosts));
    runtime.shutdown_timeout(Duration::from_millis(200));
    code
}

/// A host as the operands name it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HostKey {
    user: Option<String>,
    host: String,
    port: Option<u16>,
}

impl HostKey {
    fn of(r: &RemotePath) -> HostKey {
        HostKey {
            user: r.user.clone(),
            host: r.host.clone(),
            port: r.port,
        }
    }

    fn shown(&self) -> String {
        match &self.user {
            Some(u) => format!("{u}@{}", self.host),
            None => self.host.clone(),
        }
    }
}

/// The command line for one remote operand's host, the flags in typed
/// order (the operands stand after them all).
fn command_line(r: &RemotePath, at: usize, a: &CpArgs, mut flags: Vec<Typed>) -> CommandLine {
    flags.push((
        at,
        Flag::Destination {
            user: r.user.clone(),
            port: r.port,
        },
    ));
    flags.sort_by_key(|(i, _)| *i);
    let mut cli = CommandLine::new(r.host.clone());
    for (_, flag) in flags {
        cli.flag(flag);
    }
    cli.config_file(a.connect.config());
    cli
}

/// A host's connections and its first SFTP session.
struct Host {
    key: HostKey,
    resolved: Resolved,
    sessions: Vec<Session>,
    master: Option<PathBuf>,
    lanes: Vec<Arc<SftpClient>>,
    rtt: Duration,
}

async fn copy(
    a: &CpArgs,
    operands: Vec<Operand>,
    hosts: Vec<(HostKey, Resolved)>,
) -> anyhow::Result<u8> {
    let mut connected = Vec::with_capacity(hosts.len());
    for (key, resolved) in hosts {
        match reach(key, resolved).await {
            Ok(h) => connected.push(h),
            Err(e) => return Ok(crate::output::report("warren cp", &e, CONNECT_FAILED)),
        }
    }
    // Relative remote paths are relative to the home, where SFTP starts;
    // `~user/` needs the server to expand it.
    let mut ends = Vec::with_capacity(operands.len());
    for op in &operands {
        ends.push(match op {
            Operand::Local(p) => (None, p.clone(), Escaped::new(p).to_string()),
            Operand::Remote(r) => {
                let i = connected
                    .iter()
                    .position(|h| h.key == HostKey::of(r))
                    .unwrap_or(0);
                let shown = format!("{}:{}", connected[i].key.shown(), Escaped::new(&r.path));
                let path = match r.relative_to_home() {
                    Some(p) => p.to_vec(),
                    None => connected[i].lanes[0]
                        .expand_path(&r.path)
                        .await
                        .with_context(|| shown.clone())?
                        .to_vec(),
                };
                (Some(i), path, shown)
            }
        });
    }
    // The job's size decides the lanes: a tree, several files or a large
    // one get more.
    let large = is_large(a, &ends, &connected).await;
    for host in &mut connected {
        grow(a, host, large).await?;
    }
    let sides: Vec<Side> = connected
        .iter()
        .map(|h| {
            Side::Remote(Arc::new(Remote {
                lanes: h.lanes.clone(),
                name: h.key.shown(),
            }))
        })
        .collect();
    let mut endpoints: Vec<Endpoint> = ends
        .into_iter()
        .map(|(i, path, shown)| Endpoint {
            side: i.map_or(Side::Local, |i| sides[i].clone()),
            path,
            shown,
        })
        .collect();
    let Some(target) = endpoints.pop() else {
        anyhow::bail!("nothing to copy");
    };
    let opts = Options {
        recursive: a.recursive,
        preserve: a.preserve,
        resume: a.resume,
        limit: a.limit.map(|kbit| kbit.saturating_mul(1000) / 8),
        files_in_flight: 0,
    };
    let shown = !a.connect.quiet;
    let progress = Arc::new(progress::Reporter::new(shown));
    let summary = transfer::copy(
        endpoints,
        target,
        opts,
        progress.clone() as Arc<dyn Progress>,
    )
    .await;
    progress.done();
    for host in &connected {
        for s in &host.sessions {
            s.close().await;
        }
    }
    if shown && !progress::on_terminal() || a.connect.verbose > 0 {
        eprintln!("{}", progress::summary_line(&summary));
    }
    Ok(u8::from(summary.failures > 0))
}

/// Connects to one host (or finds its ControlMaster) and opens one SFTP
/// session.
async fn reach(key: HostKey, resolved: Resolved) -> anyhow::Result<Host> {
    let master = resolved.config.control_path().map(PathBuf::from);
    if let Some(path) = master.as_deref().filter(|p| p.exists()) {
        match connect::through_master(path).await {
            Ok(first) => {
                let rtt = connect::round_trip(&first).await.unwrap_or_default();
                tracing::debug!("SFTP through the ControlMaster at {}", path.display());
                return Ok(Host {
                    key,
                    resolved,
                    sessions: Vec::new(),
                    master,
                    lanes: vec![Arc::new(first)],
                    rtt,
                });
            }
            Err(e) => tracing::debug!("not through the ControlMaster: {}", warren_wire::Chain(&e)),
        }
    }
    let hop = &resolved.hop;
    let prompter: Arc<dyn Prompter> = if hop.opts.auth.batch_mode {
        Arc::new(NoPrompt)
    } else {
        Arc::new(TtyPrompter)
    };
    let session = session::connect_hop(hop, prompter).await?;
    let first = connect::over_channel(session.handle())
        .await
        .with_context(|| format!("{}: SFTP", key.shown()))?;
    let rtt = connect::round_trip(&first).await.unwrap_or_default();
    Ok(Host {
        key,
        resolved,
        sessions: vec![session],
        master: None,
        lanes: vec![Arc::new(first)],
        rtt,
    })
}

/// Whether the job is worth more lanes: several sources, a tree, or 8 MiB
/// and more.
async fn is_large(a: &CpArgs, ends: &[(Option<usize>, Vec<u8>, String)], hosts: &[Host]) -> bool {
    let sources = &ends[..ends.len().saturating_sub(1)];
    if sources.len() > 1 {
        return true;
    }
    for (host, path, _) in sources {
        let side = match host {
            None => Side::Local,
            Some(i) => Side::Remote(Arc::new(Remote {
                lanes: hosts[*i].lanes.clone(),
                name: String::new(),
            })),
        };
        match side.stat(path).await {
            Ok(m) if m.kind == Kind::Dir && a.recursive => return true,
            Ok(m) if m.size >= 8 * 1024 * 1024 => return true,
            _ => {}
        }
    }
    false
}

/// Adds the lanes the job wants: `--channels` per connection (or the
/// default for the round trip) on `--parallel` connections.
async fn grow(a: &CpArgs, host: &mut Host, large: bool) -> anyhow::Result<()> {
    let per_connection = a
        .channels
        .map_or_else(|| connect::default_lanes(large, host.rtt), usize::from);
    let connections = a.parallel.map_or(1, usize::from);
    tracing::debug!(
        "{}: round trip {:?}; {connections} connection(s) x {per_connection} SFTP channel(s)",
        host.key.shown(),
        host.rtt
    );
    let wanted = per_connection * connections;
    if let Some(path) = host.master.clone() {
        let more = connect::open_many(wanted.saturating_sub(1), || {
            let path = path.clone();
            async move { connect::through_master(&path).await }
        })
        .await
        .with_context(|| format!("{}: more SFTP sessions", host.key.shown()))?;
        host.lanes.extend(more);
        return Ok(());
    }
    let prompter: Arc<dyn Prompter> = Arc::new(NoPrompt);
    for _ in 1..connections {
        let s = session::connect_hop(&host.resolved.hop, prompter.clone())
            .await
            .with_context(|| format!("{}: connection for --parallel", host.key.shown()))?;
        host.sessions.push(s);
    }
    // Lanes alternate between connections.
    let mut lanes: Vec<Vec<Arc<SftpClient>>> = vec![Vec::new(); host.sessions.len()];
    lanes[0].push(host.lanes[0].clone());
    for (i, s) in host.sessions.iter().enumerate() {
        let have = lanes[i].len();
        let handle = s.shared_handle();
        let more = connect::open_many(per_connection.saturating_sub(have), || {
            let handle = handle.clone();
            async move { connect::over_channel(&handle).await }
        })
        .await
        .with_context(|| format!("{}: more SFTP channels", host.key.shown()))?;
        lanes[i].extend(more);
    }
    host.lanes = interleave(lanes);
    Ok(())
}

fn interleave(mut groups: Vec<Vec<Arc<SftpClient>>>) -> Vec<Arc<SftpClient>> {
    let mut out = Vec::new();
    let longest = groups.iter().map(Vec::len).max().unwrap_or(0);
    for g in &mut groups {
        g.reverse();
    }
    for _ in 0..longest {
        for g in &mut groups {
            if let Some(c) = g.pop() {
                out.push(c);
            }
        }
    }
    out
}
