//! `warren sync`: rsync's command line over warren's transfer engine.
//!
//! Design choice: the flags are rsync's everyday ones with rsync's
//! meanings; `-e "ssh ARGS"` is read as `warren ssh`'s connection flags
//! (`-p -l -i -J -F -o -c -C -4 -6`), so an rsync line works as typed.
//! Operands are rsync's (`[user@]host:path`, a local path); one side is
//! local, as with rsync. What to send is decided by warren-core's
//! `transfer::sync` (rsync's quick check, filters, `--delete`), the
//! copying done by the copy engine; the remote helper (`--remote-helper`)
//! sends only the changed blocks of files that exist on both sides.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use clap::{ArgAction, ArgMatches, Parser, ValueEnum};
use warren_config::{ConfigFile, Flag, Operand, RemotePath, SystemEnvironment};
use warren_core::transfer::Progress;
use warren_core::transfer::connect::Job;
use warren_core::transfer::side::{Kind, Remote, Side};
use warren_core::transfer::sync::{self as engine, Itemized, Root, SyncOptions, SyncSummary};
use warren_sync::filter::FilterArg;
use warren_sync::paths::{self, DestState};
use warren_sync::{Filters, filter::FilterError};
use warren_wire::Escaped;

use super::connect_args::{self, ConnectArgs, IdentityArgs, LoginPortArgs, Typed};
use super::cp::progress::Reporter;
use super::cp::{self, HostKey};
use super::settings;
use crate::logging;

mod delta;
mod watch;

/// rsync's exit statuses for the cases warren has.
mod exit {
    /// Syntax or usage error.
    pub const SYNTAX: u8 = 1;
    /// Errors selecting input/output files or directories.
    pub const FILE_SELECT: u8 = 3;
    /// Some files could not be transferred.
    pub const PARTIAL: u8 = 23;
    /// The connection could not be made (ssh's status, which rsync passes on).
    pub const CONNECT: u8 = 255;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RemoteHelper {
    /// Use a helper already on the remote; otherwise send changed files whole.
    Auto,
    /// Upload this binary as the helper when the remote's `uname -sm` matches.
    Install,
    /// Send changed files whole over SFTP.
    Never,
}

#[derive(Debug, Parser)]
#[command(
    name = "warren sync",
    disable_version_flag = true,
    disable_help_flag = true,
    about = "Synchronise files with rsync's command line: only what changed, several channels, resumable",
    after_help = "Operands: a local path or [user@]host:path (one side local). A source ending in `/` \
                  copies its contents, without it the directory itself, as rsync."
)]
pub struct SyncArgs {
    /// Print help.
    #[arg(long = "help", action = ArgAction::Help)]
    help: Option<bool>,
    /// Archive mode: -rlptgoD.
    #[arg(short = 'a', long = "archive")]
    archive: bool,
    /// Recurse into directories.
    #[arg(short = 'r', long = "recursive")]
    recursive: bool,
    /// Copy symlinks as symlinks.
    #[arg(short = 'l', long = "links")]
    links: bool,
    /// Keep permissions.
    #[arg(short = 'p', long = "perms")]
    perms: bool,
    /// Keep modification times.
    #[arg(short = 't', long = "times")]
    times: bool,
    /// Accepted for rsync's sake: groups are not copied (SFTP sets ids, not names).
    #[arg(short = 'g', long = "group")]
    group: bool,
    /// Accepted for rsync's sake: owners are not copied (as rsync run by a user).
    #[arg(short = 'o', long = "owner")]
    owner: bool,
    /// Accepted for rsync's sake: devices and special files are skipped.
    #[arg(short = 'D')]
    devices: bool,
    /// Say what is done: file names (-vv: more).
    #[arg(short = 'v', long = "verbose", action = ArgAction::Count)]
    verbose: u8,
    /// Errors only.
    #[arg(short = 'q', long = "quiet")]
    quiet: bool,
    /// Compress on the wire (SSH compression).
    #[arg(short = 'z', long = "compress")]
    compress: bool,
    /// Show what would be done, change nothing.
    #[arg(short = 'n', long = "dry-run")]
    dry_run: bool,
    /// Delete destination files that are not in the source (after a transfer without errors).
    #[arg(long = "delete")]
    delete: bool,
    /// Exclude files matching PATTERN (rsync's rules).
    #[arg(long = "exclude", value_name = "PATTERN", action = ArgAction::Append,
          value_parser = clap::value_parser!(OsString))]
    exclude: Vec<OsString>,
    /// Do not exclude files matching PATTERN.
    #[arg(long = "include", value_name = "PATTERN", action = ArgAction::Append,
          value_parser = clap::value_parser!(OsString))]
    include: Vec<OsString>,
    /// Read exclude patterns from FILE.
    #[arg(long = "exclude-from", value_name = "FILE", action = ArgAction::Append,
          value_parser = clap::value_parser!(OsString))]
    exclude_from: Vec<OsString>,
    /// Read include patterns from FILE.
    #[arg(long = "include-from", value_name = "FILE", action = ArgAction::Append,
          value_parser = clap::value_parser!(OsString))]
    include_from: Vec<OsString>,
    /// Compare contents (hashes), not size and time.
    #[arg(short = 'c', long = "checksum")]
    checksum: bool,
    /// Skip files that are newer at the destination.
    #[arg(short = 'u', long = "update")]
    update: bool,
    /// Compare sizes only.
    #[arg(long = "size-only")]
    size_only: bool,
    /// Skip files that exist at the destination.
    #[arg(long = "ignore-existing")]
    ignore_existing: bool,
    /// Keep partially transferred files and continue them next time.
    #[arg(long = "partial")]
    partial: bool,
    /// One line per file as it is copied, instead of one display for the job.
    #[arg(long = "progress")]
    progress: bool,
    /// --partial --progress.
    #[arg(short = 'P')]
    partial_progress: bool,
    /// Print rsync-style statistics at the end.
    #[arg(long = "stats")]
    stats: bool,
    /// One line per change, in rsync's format (YXcstpoguax).
    #[arg(short = 'i', long = "itemize-changes")]
    itemize: bool,
    /// Limit the bandwidth, in KiB/s (rsync's units; suffixes K, M, G).
    #[arg(long = "bwlimit", value_name = "RATE")]
    bwlimit: Option<String>,
    /// Numbers in human-readable units.
    #[arg(short = 'h', long = "human-readable")]
    human: bool,
    /// The remote shell: "ssh ARGS"; ARGS are read as warren ssh's flags (-p -l -i -J -F -o ...).
    #[arg(short = 'e', long = "rsh", value_name = "COMMAND")]
    rsh: Option<String>,
    /// Delta transfer through a warren helper on the remote: auto, install or never.
    #[arg(long = "remote-helper", value_name = "WHEN", default_value = "auto")]
    remote_helper: RemoteHelper,
    /// After the first sync, keep the destination in step with local changes until Ctrl-C.
    #[arg(long = "watch")]
    watch: bool,
    /// SFTP channels to the remote (default: from the job and the round trip).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    channels: Option<u16>,
    /// SOURCE... DESTINATION
    #[arg(required = true, num_args = 2.., value_name = "PATH", action = ArgAction::Append,
          value_parser = clap::value_parser!(OsString))]
    paths: Vec<OsString>,
}

/// `warren sync ARGS` (after the subcommand's name); the arguments are
/// bytes (file names need not be UTF-8).
pub fn main(args: &[OsString]) -> u8 {
    if args.first().is_some_and(|a| a == "--server") {
        return warren_core::delta::serve_stdio(&args[1..]);
    }
    // A usage error and a failure before the sync starts are both
    // rsync's status 1 (exit::SYNTAX), which is what run_tool_typed gives.
    super::run_tool_typed::<SyncArgs, _>("warren sync", args, run)
}

/// What one run decided before connecting.
struct Job0 {
    opts: SyncOptions,
    sources: Vec<Operand>,
    dest: Operand,
}

fn run(a: &SyncArgs, m: &ArgMatches) -> anyhow::Result<u8> {
    let job = match prepare(a, m) {
        Ok(j) => j,
        Err(e) => return Ok(crate::output::report("warren sync", &e, exit::SYNTAX)),
    };
    let remote = job.sources.iter().chain([&job.dest]).find_map(|o| match o {
        Operand::Remote(r) => Some(r.clone()),
        Operand::Local(_) => None,
    });
    let resolved = match &remote {
        Some(r) => {
            let cli = host_line(a, r)?;
            Some(settings::resolve_host(
                &cli,
                &SystemEnvironment::new(),
                a.quiet,
            )?)
        }
        None => None,
    };
    let level = resolved
        .as_ref()
        .map_or(warren_config::LogLevel::Info, |r| r.config.log_level());
    let level = match a.verbose {
        0 => level,
        _ => level.max(warren_config::LogLevel::Info),
    };
    logging::init(settings::verbosity(level), None);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("start the async runtime")?;
    let code = runtime.block_on(sync(a, job, remote, resolved));
    runtime.shutdown_timeout(Duration::from_millis(200));
    code
}

/// Options and operands, checked before anything is touched.
fn prepare(a: &SyncArgs, m: &ArgMatches) -> anyhow::Result<Job0> {
    let mut operands: Vec<Operand> = a
        .paths
        .iter()
        .map(|p| Operand::parse(p.as_bytes()))
        .collect::<Result<_, _>>()?;
    let Some(dest) = operands.pop() else {
        anyhow::bail!("a source and a destination are needed");
    };
    let remote_sources = operands
        .iter()
        .filter(|o| matches!(o, Operand::Remote(_)))
        .count();
    match (&dest, remote_sources) {
        (Operand::Remote(_), n) if n > 0 => {
            anyhow::bail!("the source and destination cannot both be remote")
        }
        (Operand::Local(_), n) if n > 0 && n != operands.len() => {
            anyhow::bail!("sources must all be remote or all be local")
        }
        _ => {}
    }
    let hosts: Vec<HostKey> = operands
        .iter()
        .chain([&dest])
        .filter_map(|o| match o {
            Operand::Remote(r) => Some(HostKey::of(r)),
            Operand::Local(_) => None,
        })
        .collect();
    if hosts.windows(2).any(|w| w[0] != w[1]) {
        anyhow::bail!("remote sources must all be on one host");
    }
    let archive = a.archive;
    let opts = SyncOptions {
        recursive: archive || a.recursive,
        links: archive || a.links,
        perms: archive || a.perms,
        times: archive || a.times,
        delete: a.delete,
        dry_run: a.dry_run,
        checksum: a.checksum,
        update: a.update,
        size_only: a.size_only,
        ignore_existing: a.ignore_existing,
        partial: a.partial || a.partial_progress,
        limit: a.bwlimit.as_deref().map(bwlimit).transpose()?,
        filters: filters(a, m)?,
    };
    Ok(Job0 {
        opts,
        sources: operands,
        dest,
    })
}

/// rsync's `--bwlimit`: KiB/s, or with a K, M or G suffix (0: none).
fn bwlimit(s: &str) -> anyhow::Result<u64> {
    let t = s.trim();
    let (num, unit) = match t.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => (&t[..i], t[i..].to_ascii_lowercase()),
        None => (t, String::new()),
    };
    let mult: f64 = match unit.as_str() {
        "" | "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "b" => 1.0,
        _ => anyhow::bail!("--bwlimit={s}: unknown unit (use K, M or G)"),
    };
    let n: f64 = num
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite() && *n >= 0.0)
        .with_context(|| format!("--bwlimit={s}: not a rate"))?;
    Ok((n * mult) as u64)
}

/// The filter rules in the order they were typed.
fn filters(a: &SyncArgs, m: &ArgMatches) -> anyhow::Result<Filters> {
    #[derive(Clone, Copy)]
    enum Which {
        Exclude,
        Include,
        ExcludeFrom,
        IncludeFrom,
    }
    let mut typed: Vec<(usize, Which, &OsString)> = Vec::new();
    for (id, which, values) in [
        ("exclude", Which::Exclude, &a.exclude),
        ("include", Which::Include, &a.include),
        ("exclude_from", Which::ExcludeFrom, &a.exclude_from),
        ("include_from", Which::IncludeFrom, &a.include_from),
    ] {
        if let Some(idx) = m.indices_of(id) {
            typed.extend(idx.zip(values).map(|(i, v)| (i, which, v)));
        }
    }
    typed.sort_by_key(|(i, _, _)| *i);
    let mut files = Vec::new();
    for (_, which, v) in &typed {
        if matches!(which, Which::ExcludeFrom | Which::IncludeFrom) {
            files.push(read_rules(v)?);
        }
    }
    let mut files = files.iter();
    let mut args = Vec::with_capacity(typed.len());
    for (_, which, v) in &typed {
        args.push(match which {
            Which::Exclude => FilterArg::Exclude(v.as_bytes()),
            Which::Include => FilterArg::Include(v.as_bytes()),
            Which::ExcludeFrom => FilterArg::ExcludeFrom(files.next().map_or(&[][..], |f| f)),
            Which::IncludeFrom => FilterArg::IncludeFrom(files.next().map_or(&[][..], |f| f)),
        });
    }
    Filters::parse(args).map_err(|e: FilterError| anyhow::anyhow!(e))
}

/// A rules file (`-` is standard input), at most 16 MiB.
fn read_rules(path: &OsString) -> anyhow::Result<Vec<u8>> {
    use std::io::Read as _;
    const MAX: u64 = 16 << 20;
    let shown = Escaped::new(path.as_bytes()).to_string();
    let mut out = Vec::new();
    let read = if path == "-" {
        std::io::stdin().take(MAX + 1).read_to_end(&mut out)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(MAX + 1).read_to_end(&mut out))
    };
    read.with_context(|| format!("reading rules from {shown}"))?;
    if out.len() as u64 > MAX {
        anyhow::bail!("{shown}: more than 16 MiB of rules");
    }
    Ok(out)
}

/// `-e "ssh ARGS"` as warren ssh's connection flags.
#[derive(Debug, Parser)]
#[command(name = "ssh", disable_help_flag = true, disable_version_flag = true)]
struct RshArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(flatten)]
    login_port: LoginPortArgs,
    #[command(flatten)]
    identity: IdentityArgs,
    /// Switches ssh has that change nothing for a file transfer.
    #[arg(short = 'T', short_alias = 'x', short_alias = 'a', short_alias = 'n', action = ArgAction::Count)]
    ignored: u8,
}

/// The command line reaching the remote operand's host: `-e`'s flags,
/// `-z`, then the operand's `[user@]host`.
fn host_line(a: &SyncArgs, r: &RemotePath) -> anyhow::Result<warren_config::CommandLine> {
    let mut flags: Vec<Typed> = Vec::new();
    let mut config = ConfigFile::Default;
    if let Some(rsh) = &a.rsh {
        let words = warren_config::command_words(rsh)
            .with_context(|| format!("-e {rsh:?}: unbalanced quotes"))?;
        let mut words = words.into_iter().peekable();
        match words
            .next()
            .as_deref()
            .map(|w| w.rsplit('/').next().unwrap_or(w))
        {
            Some("ssh" | "warren-ssh") => {}
            Some("warren") if words.peek().is_some_and(|w| w == "ssh") => {
                words.next();
            }
            Some(other) => anyhow::bail!(
                "-e {rsh:?}: warren sync connects by itself and understands ssh's flags only \
                 (\"ssh -p PORT -i KEY ...\"), not {other:?}"
            ),
            None => {}
        }
        let m = <RshArgs as clap::CommandFactory>::command()
            .try_get_matches_from(std::iter::once("ssh".to_owned()).chain(words))
            .map_err(|e| anyhow::anyhow!("-e {rsh:?}: {}", e.kind()))?;
        let parsed = <RshArgs as clap::FromArgMatches>::from_arg_matches(&m)?;
        flags.extend(ConnectArgs::typed(&m));
        flags.extend(LoginPortArgs::typed(&m));
        flags.extend(IdentityArgs::typed(&m));
        config = parsed.connect.config();
    }
    if a.compress {
        flags.push((usize::MAX - 1, Flag::Compression));
    }
    Ok(connect_args::host_command_line(
        r.host.clone(),
        r.user.clone(),
        r.port,
        usize::MAX,
        config,
        flags,
    ))
}

async fn sync(
    a: &SyncArgs,
    job: Job0,
    remote: Option<RemotePath>,
    resolved: Option<warren_core::session::Resolved>,
) -> anyhow::Result<u8> {
    let mut host = None;
    if let (Some(r), Some(resolved)) = (&remote, resolved) {
        match cp::reach(HostKey::of(r), resolved).await {
            Ok(h) => host = Some(h),
            Err(e) => return Ok(crate::output::report("warren sync", &e, exit::CONNECT)),
        }
    }
    let remote_side = host.as_ref().map(|h| {
        Side::Remote(Arc::new(Remote {
            lanes: h.lanes.clone(),
            name: h.key.shown(),
        }))
    });
    // Operands to (side, path); relative remote paths are the home's.
    let mut ends = Vec::with_capacity(job.sources.len() + 1);
    for op in job.sources.iter().chain([&job.dest]) {
        ends.push(match op {
            Operand::Local(p) => (Side::Local, p.clone()),
            Operand::Remote(r) => {
                let (Some(side), Some(h)) = (&remote_side, &host) else {
                    anyhow::bail!("no connection for {}", r.host);
                };
                let path = match r.relative_to_home() {
                    Some(p) => p.to_vec(),
                    None => h.lanes[0].expand_path(&r.path).await?.to_vec(),
                };
                (
                    side.clone(),
                    if path.is_empty() { b".".to_vec() } else { path },
                )
            }
        });
    }
    let Some((dst_side, dst_path)) = ends.pop() else {
        anyhow::bail!("nothing to sync");
    };
    // More SFTP channels open while the operands are looked at (the
    // job's shape is known from the flags).
    let many = a.archive || a.recursive || ends.len() > 1;
    let jobkind = if many { Job::Many } else { Job::Large };
    let channels = a.channels;
    let growing = async {
        match host.as_mut() {
            Some(h) => cp::grow(channels, None, h, jobkind).await,
            None => Ok(()),
        }
    };
    // rsync's trailing-slash plan, from what is on each side: the
    // destination is asked about beside the sources.
    let looking = async {
        let stats: Vec<_> = ends
            .iter()
            .map(|(side, path)| async move { side.stat(path).await })
            .collect();
        let mut out = Vec::with_capacity(stats.len());
        let (dest, _) = tokio::join!(dst_side.stat(&dst_path), async {
            for st in stats {
                out.push(st.await);
            }
        });
        (out, dest)
    };
    let (grown, (stats, dest_stat)) = tokio::join!(growing, looking);
    grown?;
    let mut kinds = Vec::with_capacity(ends.len());
    for ((side, path), stat) in ends.iter().zip(stats) {
        match stat {
            Ok(m) => kinds.push(m.kind == Kind::Dir),
            Err(e) => {
                eprintln!(
                    "warren sync: {}: {e}; nothing was changed",
                    warren_core::transfer::side::shown(side, path)
                );
                return Ok(exit::PARTIAL);
            }
        }
    }
    let state = match dest_stat {
        Ok(m) if m.kind == Kind::Dir => DestState::Dir,
        Ok(_) => DestState::NotDir,
        Err(e) if e.not_found() => DestState::Missing,
        Err(e) => {
            eprintln!(
                "warren sync: {}: {e}",
                warren_core::transfer::side::shown(&dst_side, &dst_path)
            );
            return Ok(exit::FILE_SELECT);
        }
    };
    let sources: Vec<paths::Source<'_>> = ends
        .iter()
        .zip(&kinds)
        .map(|((_, p), d)| paths::Source {
            operand: p,
            is_dir: *d,
        })
        .collect();
    let plan = match paths::plan(&sources, &dst_path, state) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("warren sync: {e}");
            return Ok(exit::FILE_SELECT);
        }
    };
    // A directory whose contents are the only source is created by the
    // sync itself (as `./`); otherwise the destination is made first.
    let made_by_sync = plan.mappings.len() == 1 && plan.mappings[0].contents_only;
    if plan.create_dest_dir && !made_by_sync {
        if job.opts.dry_run {
            // Nothing below it exists: every entry is new.
        } else if let Err(e) = dst_side.mkdir(&dst_path, 0o755).await {
            eprintln!(
                "warren sync: {}: {e}",
                warren_core::transfer::side::shown(&dst_side, &dst_path)
            );
            return Ok(exit::FILE_SELECT);
        }
        if (a.verbose > 0 || a.itemize) && !a.quiet {
            println!(
                "created directory {}",
                warren_core::transfer::side::shown(&dst_side, &dst_path)
            );
        }
    }
    let src_side = ends.first().map_or(Side::Local, |(side, _)| side.clone());
    let roots: Vec<Root> = plan
        .mappings
        .into_iter()
        .map(|mp| Root {
            src: src_side.clone(),
            src_path: mp.source,
            dst: dst_side.clone(),
            dst_path: mp.target,
            root_name: mp.root_name,
        })
        .collect();
    // Lanes may have grown: the sides see them all.
    let (src_side, dst_side) = match &host {
        Some(h) => {
            let side = Side::Remote(Arc::new(Remote {
                lanes: h.lanes.clone(),
                name: h.key.shown(),
            }));
            let src_remote = matches!(src_side, Side::Remote(_));
            if src_remote {
                (side, Side::Local)
            } else {
                (Side::Local, side)
            }
        }
        None => (Side::Local, Side::Local),
    };
    let roots: Vec<Root> = roots
        .into_iter()
        .map(|r| Root {
            src: src_side.clone(),
            dst: dst_side.clone(),
            ..r
        })
        .collect();
    let quiet = a.quiet;
    let note: delta::Note = Arc::new(move |m: &str| {
        if !quiet {
            eprintln!("warren sync: {m}");
        }
    });
    let delta: Option<engine::Delta> = match &host {
        Some(h) if !job.opts.dry_run => delta::sender(h, a.remote_helper, note),
        _ => None,
    };
    let shown = !a.quiet;
    let per_file = a.progress || a.partial_progress;
    let reporter = Arc::new(Reporter::new("warren sync", shown && !per_file));
    // -q: the reporter, not shown, says errors only.
    let progress: Arc<dyn Progress> = if per_file && !a.quiet {
        Arc::new(PerFile::default())
    } else {
        reporter.clone()
    };
    let out = Output::new(a);
    let itemize = |i: &Itemized| out.item(i);
    let watching = if a.watch {
        let local: Vec<std::path::PathBuf> = roots
            .iter()
            .filter(|r| matches!(r.src, Side::Local))
            .map(|r| std::path::PathBuf::from(std::ffi::OsStr::from_bytes(&r.src_path)))
            .collect();
        if local.len() != roots.len() || a.dry_run {
            eprintln!("warren sync: --watch needs local sources and no --dry-run");
            return Ok(exit::SYNTAX);
        }
        Some(watch::Watcher::start(local)?)
    } else {
        None
    };
    let result = engine::sync(
        roots.clone(),
        &job.opts,
        delta.clone(),
        progress.clone(),
        &itemize,
    )
    .await;
    reporter.done();
    let mut code = match &result {
        Ok(summary) => {
            out.end(a, summary);
            if summary.failures > 0 {
                exit::PARTIAL
            } else {
                0
            }
        }
        Err(e) => {
            eprintln!("warren sync: {e}");
            exit::PARTIAL
        }
    };
    if let Some(mut w) = watching {
        if !a.quiet {
            eprintln!(
                "warren sync: watching {} director{} for changes (Ctrl-C ends it)",
                w.watched(),
                if w.watched() == 1 { "y" } else { "ies" }
            );
        }
        while w.next_burst().await {
            w.rewatch()?;
            match engine::sync(
                roots.clone(),
                &job.opts,
                delta.clone(),
                progress.clone(),
                &itemize,
            )
            .await
            {
                Ok(summary) => {
                    if a.verbose > 0 || a.stats {
                        out.end(a, &summary);
                    }
                    code = if summary.failures > 0 {
                        exit::PARTIAL
                    } else {
                        0
                    };
                }
                Err(e) => {
                    eprintln!("warren sync: {e}");
                    code = exit::PARTIAL;
                }
            }
        }
    }
    if let Some(h) = &host {
        for s in &h.sessions {
            s.close().await;
        }
    }
    Ok(code)
}

/// `--progress`: a line per file as it completes, as rsync's.
#[derive(Default)]
struct PerFile {
    files: std::sync::Mutex<std::collections::HashMap<u64, (String, u64, std::time::Instant)>>,
    next: std::sync::atomic::AtomicU64,
    done: std::sync::atomic::AtomicU64,
}

impl Progress for PerFile {
    fn start(&self, name: &[u8], size: u64, _done: u64) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.files
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(
                id,
                (
                    Escaped::new(name).to_string(),
                    size,
                    std::time::Instant::now(),
                ),
            );
        id
    }
    fn advance(&self, _: u64, _: u64) {}
    fn finish(&self, id: u64, ok: bool) {
        let Some((name, size, started)) = self
            .files
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&id)
        else {
            return;
        };
        if !ok {
            return;
        }
        let n = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        let secs = started.elapsed().as_secs_f64();
        let rate = size as f64 / secs.max(1e-6) / 1e6;
        println!(
            "{name}\n{:>15} 100% {rate:>8.2}MB/s {:>4}:{:02}:{:02} (xfr#{n})",
            number(size, false),
            (secs as u64) / 3600,
            (secs as u64) / 60 % 60,
            (secs as u64) % 60
        );
    }
    fn error(&self, message: &str) {
        eprintln!("warren sync: {message}");
    }
    fn note(&self, message: &str) {
        eprintln!("warren sync: {message}");
    }
}

/// What goes to standard output: names (`-v`), itemized changes (`-i`),
/// statistics.
struct Output {
    verbose: bool,
    itemize: bool,
    any: AtomicBool,
}

impl Output {
    fn new(a: &SyncArgs) -> Output {
        Output {
            verbose: a.verbose > 0 && !a.quiet,
            itemize: a.itemize,
            any: AtomicBool::new(false),
        }
    }

    fn item(&self, i: &Itemized) {
        self.any.store(true, Ordering::Relaxed);
        let name = Escaped::new(&i.name);
        let link = i
            .link
            .as_ref()
            .map(|l| format!(" -> {}", Escaped::new(l)))
            .unwrap_or_default();
        if self.itemize {
            println!("{} {name}{link}", i.code);
        } else if self.verbose {
            if i.code.starts_with('*') {
                println!("deleting {name}");
            } else {
                println!("{name}{link}");
            }
        }
    }

    fn end(&self, a: &SyncArgs, s: &SyncSummary) {
        let n = |v: u64| number(v, a.human);
        if a.stats {
            println!();
            println!(
                "Number of files: {} (reg: {}, dir: {}, link: {})",
                n(s.files + s.dirs + s.links),
                n(s.files),
                n(s.dirs),
                n(s.links)
            );
            println!("Number of created files: {}", n(s.created));
            println!("Number of deleted files: {}", n(s.deleted));
            println!("Number of regular files transferred: {}", n(s.transferred));
            println!("Total file size: {} bytes", n(s.total_size));
            println!(
                "Total transferred file size: {} bytes",
                n(s.transferred_size)
            );
            println!("Literal data: {} bytes", n(s.literal));
            println!("Matched data: {} bytes", n(s.matched));
        }
        if self.verbose || a.stats {
            let secs = s.elapsed.as_secs_f64().max(1e-6);
            println!();
            println!(
                "sent {} bytes in {:.1} s  {} bytes/sec",
                n(s.literal),
                secs,
                n((s.literal as f64 / secs) as u64)
            );
            let speedup = if s.literal > 0 {
                s.total_size as f64 / s.literal as f64
            } else {
                0.0
            };
            println!(
                "total size is {}  speedup is {speedup:.2}{}",
                n(s.total_size),
                if a.dry_run { " (DRY RUN)" } else { "" }
            );
        }
        if s.delete_skipped {
            eprintln!("warren sync: --delete was skipped because of the errors above");
        }
    }
}

/// A count as rsync prints it: `1,234,567`, or with `-h` `1.23M`.
fn number(v: u64, human: bool) -> String {
    if human && v >= 1000 {
        let units = ["K", "M", "G", "T", "P"];
        let mut x = v as f64;
        let mut u = 0;
        while x >= 1000.0 && u < units.len() {
            x /= 1000.0;
            u += 1;
        }
        return format!("{x:.2}{}", units[u - 1]);
    }
    let digits = v.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory as _, FromArgMatches as _};

    fn parse(line: &str) -> Result<(SyncArgs, ArgMatches), String> {
        let argv = std::iter::once("warren sync").chain(line.split_whitespace());
        let m = SyncArgs::command()
            .try_get_matches_from(argv)
            .map_err(|e| e.kind().to_string())?;
        let a = SyncArgs::from_arg_matches(&m).map_err(|e| e.to_string())?;
        Ok((a, m))
    }

    #[test]
    fn archive_is_rlpt_and_the_flags_are_rsyncs() {
        let (a, m) = parse("-avz --delete --exclude=node_modules ./dist/ u@h:/var/www/").unwrap();
        let job = prepare(&a, &m).unwrap();
        let o = &job.opts;
        assert!(o.recursive && o.links && o.perms && o.times && o.delete);
        assert!(a.compress && a.verbose == 1);
        assert!(o.filters.excluded(b"node_modules", true));
        let (a, m) = parse("-rt -n -c -u --size-only --ignore-existing -P -i -h a b").unwrap();
        let o = prepare(&a, &m).unwrap().opts;
        assert!(o.recursive && o.times && !o.perms && !o.links);
        assert!(o.dry_run && o.checksum && o.update && o.size_only && o.ignore_existing);
        assert!(o.partial && a.partial_progress && a.itemize && a.human);
    }

    /// The filter rules keep the order they were typed in across
    /// --include and --exclude: the first match wins.
    #[test]
    fn filters_keep_their_typed_order() {
        let (a, m) = parse("-r --include=keep.log --exclude=*.log a b").unwrap();
        let f = filters(&a, &m).unwrap();
        assert!(!f.excluded(b"keep.log", false));
        assert!(f.excluded(b"other.log", false));
        let (a, m) = parse("-r --exclude=*.log --include=keep.log a b").unwrap();
        assert!(filters(&a, &m).unwrap().excluded(b"keep.log", false));
    }

    #[test]
    fn bwlimit_is_kib_per_second_by_default() {
        assert_eq!(bwlimit("100").unwrap(), 102_400);
        assert_eq!(bwlimit("1.5M").unwrap(), 1_572_864);
        assert_eq!(bwlimit("0").unwrap(), 0);
        assert!(bwlimit("fast").is_err());
        assert!(bwlimit("10X").is_err());
    }

    #[test]
    fn rsh_words_are_ssh_flags() {
        let r = RemotePath {
            user: Some("u".to_owned()),
            host: "h".to_owned(),
            port: None,
            path: b"y".to_vec(),
        };
        let mut args = parse("a h:y").unwrap().0;
        args.rsh = Some("ssh -p 2222 -i 'my key' -o User=bob".to_owned());
        let cli = host_line(&args, &r).unwrap();
        assert_eq!(
            cli.flags,
            vec![
                Flag::Port("2222".to_owned()),
                Flag::Identity("my key".to_owned()),
                Flag::Option("User=bob".to_owned()),
                Flag::Destination {
                    user: Some("u".to_owned()),
                    port: None
                },
            ]
        );
        args.rsh = Some("sshpass -p x ssh".to_owned());
        assert!(host_line(&args, &r).is_err());
    }

    #[test]
    fn both_remote_is_refused_like_rsync() {
        let (a, m) = parse("h:a g:b").unwrap();
        assert!(prepare(&a, &m).is_err());
        let (a, m) = parse("a h:b").unwrap();
        assert!(prepare(&a, &m).is_ok());
    }

    #[test]
    fn numbers_are_grouped_like_rsyncs() {
        assert_eq!(number(1_234_567, false), "1,234,567");
        assert_eq!(number(999, false), "999");
        assert_eq!(number(1_234_567, true), "1.23M");
    }
}
