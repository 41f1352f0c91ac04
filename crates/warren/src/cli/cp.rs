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
use warren_core::transfer::connect::{self, Job};
use warren_core::transfer::copy::Endpoint;
use warren_core::transfer::side::{Kind, Remote, Side};
use warren_core::transfer::{self, Options, Progress};
use warren_wire::Escaped;

use super::connect_args::{self, ConnectArgs, IdentityArgs, Typed};
use super::settings;
use crate::logging;

pub(super) mod progress;

#[derive(Debug, Parser)]
#[command(
    name = "warren cp",
    disable_version_flag = true,
    about = "Copy files over SFTP with scp's command line: atomic, resumable, many requests in flight",
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
    let (operands, lines) = plan(a, m)?;
    let mut hosts: Vec<(HostKey, Resolved)> = Vec::with_capacity(lines.len());
    for (key, cli) in lines {
        let resolved = settings::resolve_host(&cli, &SystemEnvironment::new(), a.connect.quiet)?;
        hosts.push((key, resolved));
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

/// The operands, and for each host they name (once per distinct
/// `[user@]host[:port]`) the command line that reaches it.
fn plan(a: &CpArgs, m: &ArgMatches) -> anyhow::Result<(Vec<Operand>, HostLines)> {
    let operands: Vec<Operand> = a
        .paths
        .iter()
        .map(|p| Operand::parse(p.as_bytes()))
        .collect::<Result<_, _>>()?;
    let mut flags = ConnectArgs::typed(m);
    flags.extend(IdentityArgs::typed(m));
    connect_args::values(m, "port", Flag::Port, &mut flags);
    if let Some(at) = m.index_of("batch").filter(|_| a.batch) {
        flags.push((at, Flag::Option("BatchMode=yes".to_owned())));
    }
    let at = m.index_of("paths").unwrap_or(usize::MAX);
    let mut lines: Vec<(HostKey, CommandLine)> = Vec::new();
    for op in &operands {
        if let Operand::Remote(r) = op {
            let key = HostKey::of(r);
            if !lines.iter().any(|(k, _)| *k == key) {
                lines.push((key, command_line(r, at, a, flags.clone())));
            }
        }
    }
    Ok((operands, lines))
}

/// Each host with the command line that reaches it.
type HostLines = Vec<(HostKey, CommandLine)>;

/// A host as the operands name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HostKey {
    user: Option<String>,
    host: String,
    port: Option<u16>,
}

impl HostKey {
    pub(super) fn of(r: &RemotePath) -> HostKey {
        HostKey {
            user: r.user.clone(),
            host: r.host.clone(),
            port: r.port,
        }
    }

    pub(super) fn shown(&self) -> String {
        match &self.user {
            Some(u) => format!("{u}@{}", self.host),
            None => self.host.clone(),
        }
    }
}

/// The command line for one remote operand's host, the flags in typed
/// order (the operands stand after them all).
fn command_line(r: &RemotePath, at: usize, a: &CpArgs, flags: Vec<Typed>) -> CommandLine {
    connect_args::host_command_line(
        r.host.clone(),
        r.user.clone(),
        r.port,
        at,
        a.connect.config(),
        flags,
    )
}

/// A host's connections and its first SFTP session.
pub(super) struct Host {
    pub(super) key: HostKey,
    resolved: Resolved,
    pub(super) sessions: Vec<Session>,
    master: Option<PathBuf>,
    pub(super) lanes: Vec<Arc<SftpClient>>,
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
    let job = job(a, &ends, &connected).await;
    for host in &mut connected {
        grow(a.channels, a.parallel, host, job).await?;
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
    let progress = Arc::new(progress::Reporter::new("warren cp", shown));
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
pub(super) async fn reach(key: HostKey, resolved: Resolved) -> anyhow::Result<Host> {
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
    let first = connect::over_channel(session.handle(), None)
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

/// What the job looks like: a tree or several sources, one large file,
/// or one small one.
async fn job(a: &CpArgs, ends: &[(Option<usize>, Vec<u8>, String)], hosts: &[Host]) -> Job {
    let sources = &ends[..ends.len().saturating_sub(1)];
    if sources.len() > 4 {
        return Job::Many;
    }
    let mut job = Job::Small;
    for (host, path, _) in sources {
        let side = match host {
            None => Side::Local,
            Some(i) => Side::Remote(Arc::new(Remote {
                lanes: hosts[*i].lanes.clone(),
                name: String::new(),
            })),
        };
        match side.stat(path).await {
            Ok(m) if m.kind == Kind::Dir && a.recursive => return Job::Many,
            Ok(m) if m.size >= 8 * 1024 * 1024 => job = Job::Large,
            _ => {}
        }
    }
    if sources.len() > 1 && job == Job::Small {
        return Job::Many;
    }
    job
}

/// Adds the lanes the job wants: `--channels` per connection (or the
/// default for the round trip) on `--parallel` connections.
pub(super) async fn grow(
    channels: Option<u16>,
    parallel: Option<u16>,
    host: &mut Host,
    job: Job,
) -> anyhow::Result<()> {
    let per_connection =
        channels.map_or_else(|| connect::default_lanes(job, host.rtt), usize::from);
    let connections = parallel.map_or(1, usize::from);
    tracing::debug!(
        "{}: round trip {:?}, job {job:?}: {connections} connection(s) x {per_connection} SFTP channel(s)",
        host.key.shown(),
        host.rtt
    );
    let wanted = per_connection * connections;
    let short = |what: &str, got: usize, e: Option<connect::OpenError>| {
        if let Some(e) = e {
            tracing::warn!(
                "{}: opened {got} of {wanted} {what}: {}",
                host.key.shown(),
                warren_wire::Chain(&e)
            );
        }
    };
    if let Some(path) = host.master.clone() {
        let (more, failed) = connect::open_many(wanted.saturating_sub(1), || {
            let path = path.clone();
            async move { connect::through_master(&path).await }
        })
        .await;
        host.lanes.extend(more);
        short(
            "SFTP sessions through the ControlMaster",
            host.lanes.len(),
            failed,
        );
        return Ok(());
    }
    // More connections log in without prompting: one that would need a
    // password is left out.
    let prompter: Arc<dyn Prompter> = Arc::new(NoPrompt);
    for _ in 1..connections {
        match session::connect_hop(&host.resolved.hop, prompter.clone()).await {
            Ok(s) => host.sessions.push(s),
            Err(e) => {
                tracing::warn!(
                    "{}: opened {} of {connections} connections for --parallel: {}",
                    host.key.shown(),
                    host.sessions.len(),
                    warren_wire::Chain(&e)
                );
                break;
            }
        }
    }
    // Lanes alternate between connections.
    let mut lanes: Vec<Vec<Arc<SftpClient>>> = vec![Vec::new(); host.sessions.len()];
    lanes[0].push(host.lanes[0].clone());
    let mut failed = None;
    for (i, s) in host.sessions.iter().enumerate() {
        let have = lanes[i].len();
        let handle = s.shared_handle();
        let like = host.lanes[0].clone();
        let (more, e) = connect::open_many(per_connection.saturating_sub(have), || {
            let (handle, like) = (handle.clone(), like.clone());
            async move { connect::over_channel(&handle, Some(&like)).await }
        })
        .await;
        lanes[i].extend(more);
        failed = failed.or(e);
    }
    host.lanes = interleave(lanes);
    short("SFTP channels", host.lanes.len(), failed);
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory as _, FromArgMatches as _};

    /// Each host as shown, with its command line's flags.
    type Hosts = Vec<(String, Vec<Flag>)>;

    fn lines(line: &str) -> Result<(CpArgs, Hosts), String> {
        let argv = std::iter::once("warren cp").chain(line.split_whitespace());
        let m = CpArgs::command()
            .try_get_matches_from(argv)
            .map_err(|e| e.kind().to_string())?;
        let a = CpArgs::from_arg_matches(&m).map_err(|e| e.to_string())?;
        let (_, lines) = plan(&a, &m).map_err(|e| e.to_string())?;
        let lines = lines
            .into_iter()
            .map(|(k, cli)| (k.shown(), cli.flags))
            .collect();
        Ok((a, lines))
    }

    fn dest(user: Option<&str>, port: Option<u16>) -> Flag {
        Flag::Destination {
            user: user.map(str::to_owned),
            port,
        }
    }

    /// scp's letters: -P is the port, -p preserve, -l a limit; every
    /// connection flag reaches each host's command line in typed order.
    #[test]
    fn flags_table() {
        use Flag::*;
        let s = str::to_owned;
        let cases: Vec<(&str, Hosts)> = vec![
            ("a h:b", vec![(s("h"), vec![dest(None, None)])]),
            (
                "-P 2222 a bob@h:b",
                vec![(s("bob@h"), vec![Port(s("2222")), dest(Some("bob"), None)])],
            ),
            (
                "-o Port=1 -P 2 a h:",
                vec![(
                    s("h"),
                    vec![Option(s("Port=1")), Port(s("2")), dest(None, None)],
                )],
            ),
            (
                "-B -o BatchMode=no a h:",
                vec![(
                    s("h"),
                    vec![
                        Option(s("BatchMode=yes")),
                        Option(s("BatchMode=no")),
                        dest(None, None),
                    ],
                )],
            ),
            (
                "-i k -J j -c aes128-ctr -C -4 a h:",
                vec![(
                    s("h"),
                    vec![
                        Identity(s("k")),
                        ProxyJump(s("j")),
                        Ciphers(s("aes128-ctr")),
                        Compression,
                        Ipv4,
                        dest(None, None),
                    ],
                )],
            ),
            (
                "scp://u@h:2200/x y:z ./local",
                vec![
                    (s("u@h"), vec![dest(Some("u"), Some(2200))]),
                    (s("y"), vec![dest(None, None)]),
                ],
            ),
            ("h:a h:b .", vec![(s("h"), vec![dest(None, None)])]),
            ("./a:b c", vec![]),
        ];
        for (line, want) in cases {
            let (_, got) = lines(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(got, want, "{line}");
        }
    }

    #[test]
    fn copy_flags_table() {
        let (a, _) =
            lines("-r -p -q -l 800 --resume --parallel 3 --channels 4 -3 -T x h:").unwrap();
        assert!(a.recursive && a.preserve && a.connect.quiet && a.resume);
        assert!(a.through_local && a.no_name_check);
        assert_eq!(
            (a.limit, a.parallel, a.channels),
            (Some(800), Some(3), Some(4))
        );
        for bad in [
            "h:",
            "--parallel 0 a h:",
            "--parallel 17 a h:",
            "-l x a h:",
            "-P",
        ] {
            assert!(lines(bad).is_err(), "{bad} should be refused");
        }
    }
}
