//! `warren doctor [ssh options] destination`: why a connection fails, and
//! the fix. The checks themselves are `warren_core::diagnose`; this file
//! resolves the destination as `warren ssh` would, lists the local files
//! to examine, and prints the findings: a checklist on a terminal (each
//! line as its check finishes), or `--json` for scripts.
//!
//! Exit status: 0 when every check is ok or skipped, 1 otherwise.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use clap::{ArgMatches, Parser};
use warren_config::SystemEnvironment;
use warren_core::diagnose::{self, Action, Check, FileKind, Inputs, LocalFile, Report, Status};
use warren_core::session::Resolved;
use warren_wire::{Chain, escape_str};

use super::connect_args::{self, ConnectArgs, IdentityArgs, LoginPortArgs};
use super::settings;
use crate::logging;

#[derive(Debug, Parser)]
#[command(
    name = "warren doctor",
    disable_version_flag = true,
    about = "Check a connection stage by stage and say what to fix"
)]
pub struct DoctorArgs {
    /// Print the findings as one JSON object: {destination, ok, checks: [{name, status, summary, fix, ms}]}.
    #[arg(long)]
    json: bool,
    /// Also measure the round-trip time and an 8 MiB download from the destination.
    #[arg(long)]
    speed: bool,
    /// Apply the fixes found (chmod, and chown as root, of ~/.ssh files;
    /// removing a changed host key's known_hosts line; the chmod of the
    /// server's ~/.ssh that StrictModes asks for, over a new session), each
    /// confirmed on the terminal.
    #[arg(long, conflicts_with = "json")]
    fix: bool,
    /// With --fix: apply every fix without asking (for scripts; without a
    /// terminal and without --yes, --fix changes nothing).
    #[arg(long, requires = "fix")]
    yes: bool,
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(flatten)]
    login_port: LoginPortArgs,
    #[command(flatten)]
    identity: IdentityArgs,
    /// `[user@]host` or `ssh://[user@]host[:port]`.
    #[arg(value_hint = clap::ValueHint::Hostname)]
    destination: String,
}

pub fn main(args: &[String]) -> u8 {
    super::run_tool_typed::<DoctorArgs, _>("warren doctor", args, run)
}

fn resolve(a: &DoctorArgs, m: &ArgMatches) -> anyhow::Result<Resolved> {
    let mut flags = ConnectArgs::typed(m);
    flags.extend(LoginPortArgs::typed(m));
    flags.extend(IdentityArgs::typed(m));
    let at = m.index_of("destination").unwrap_or(usize::MAX);
    let cli = connect_args::command_line(&a.destination, at, a.connect.config(), flags)?;
    settings::resolve_host(&cli, &SystemEnvironment::new(), true)
}

fn run(a: &DoctorArgs, m: &ArgMatches) -> anyhow::Result<u8> {
    let start = Instant::now();
    let printer = Printer::new(a.json);
    printer.header(&a.destination);
    let mut fix_hop = None;
    let report = match resolve(a, m) {
        Ok(Resolved { config, hop }) => {
            fix_hop = Some(hop.clone());
            logging::init(settings::verbosity(config.log_level()), None);
            let mut files = local_files(a);
            for h in hops(&hop) {
                files.extend(h.opts.host_keys.user_known_hosts.iter().map(|p| LocalFile {
                    path: p.clone(),
                    kind: FileKind::KnownHosts,
                }));
                files.extend(h.opts.auth.identity_files.iter().map(|p| LocalFile {
                    path: p.clone(),
                    kind: FileKind::PrivateKey,
                }));
            }
            let mut unique = Vec::new();
            for f in files {
                if !unique.contains(&f) {
                    unique.push(f);
                }
            }
            let mut warnings: Vec<Check> = config
                .warnings()
                .iter()
                .map(|w| Check::warn("config warning", escape_str(w).into_owned()))
                .collect();
            let inputs = Inputs {
                destination: a.destination.clone(),
                forwards: settings::forwards(&config),
                speed: a.speed,
                settings: diagnose::Settings::of(&config, &hop),
                hop,
                files: unique,
            };
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("start the async runtime")?;
            for w in &warnings {
                printer.check(w);
            }
            let mut each = |c: &Check| printer.check(c);
            let mut report = runtime.block_on(diagnose::run(inputs, &mut each));
            runtime.shutdown_background();
            if !warnings.is_empty() {
                warnings.append(&mut report.checks);
                report = Report::new(&report.destination, warnings);
            }
            report
        }
        // A configuration that does not resolve is the finding.
        Err(e) => {
            let check = Check::fail("config", Chain(e.as_ref()).to_string())
                .fix("fix the ssh_config line named above (warren ssh -G DESTINATION shows what resolves)")
                .since(start);
            printer.check(&check);
            Report::new(&a.destination, vec![check])
        }
    };
    printer.finish(&report, start)?;
    if a.fix {
        apply_fixes(&report, a.yes, fix_hop.as_ref(), &a.destination)?;
    }
    Ok(if report.ok { 0 } else { 1 })
}

/// `--fix`: each fix shown, confirmed (unless `--yes`), applied; the
/// remote ones over a new session to `hop`. Without a terminal to ask on,
/// nothing is changed.
fn apply_fixes(
    report: &Report,
    yes: bool,
    hop: Option<&warren_core::session::Hop>,
    destination: &str,
) -> anyhow::Result<()> {
    let actions: Vec<&Action> = report
        .checks
        .iter()
        .filter(|c| !c.passed())
        .filter_map(|c| c.action.as_ref())
        .collect();
    if actions.is_empty() {
        println!("--fix: nothing here can be fixed by --fix");
        return Ok(());
    }
    let ask = !yes;
    if ask && !std::io::stdin().is_terminal() {
        println!(
            "--fix: standard input is not a terminal to confirm each fix, so nothing was changed \
             (--fix --yes applies them without asking)"
        );
        return Ok(());
    }
    let mut runtime = None;
    for action in actions {
        let what = describe(action, destination);
        if ask && !confirm(&what)? {
            println!("  skipped: {what}");
            continue;
        }
        match action {
            Action::Chmod { path, mode } => {
                use std::os::unix::fs::PermissionsExt as _;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(*mode))
                    .with_context(|| format!("chmod {mode:o} {}", path.display()))?;
            }
            Action::Chown { path, uid } => {
                std::os::unix::fs::chown(path, Some(*uid), None)
                    .with_context(|| format!("chown {uid} {}", path.display()))?;
            }
            Action::RemoveKnownHost { file, host, .. } => {
                super::keygen::remove(file, host, true)?;
            }
            Action::Remote { command } => {
                let Some(hop) = hop else { continue };
                if runtime.is_none() {
                    runtime = Some(
                        tokio::runtime::Builder::new_current_thread()
                            .enable_all()
                            .build()
                            .context("start the async runtime")?,
                    );
                }
                let Some(rt) = &runtime else { continue };
                if let Err(e) = rt.block_on(diagnose::run_remote_fix(hop, command)) {
                    println!("  failed: {what}: {}", Chain(&e));
                    continue;
                }
            }
        }
        println!("  done: {what}");
    }
    println!("run warren doctor again to check");
    Ok(())
}

fn describe(action: &Action, destination: &str) -> String {
    match action {
        Action::Chown { path, uid } => {
            format!(
                "chown {uid} {}",
                diagnose::shell_quote(&path.display().to_string())
            )
        }
        Action::Remote { command } => {
            format!("on {}: {}", escape_str(destination), escape_str(command))
        }
        Action::Chmod { path, mode } => {
            format!(
                "chmod {mode:o} {}",
                diagnose::shell_quote(&path.display().to_string())
            )
        }
        Action::RemoveKnownHost {
            file,
            host,
            fingerprint,
        } => format!(
            "remove the old key of {} from {} (the server now shows {fingerprint}: confirm it out of band first)",
            escape_str(host),
            escape_str(&file.display().to_string())
        ),
    }
}

/// Asks `apply WHAT? [y/N]` on the terminal.
fn confirm(what: &str) -> anyhow::Result<bool> {
    use std::io::Write as _;
    print!("  apply: {what}? [y/N] ");
    std::io::stdout().flush().context("write the question")?;
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .context("read the answer")?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

fn hops(hop: &warren_core::session::Hop) -> Vec<&warren_core::session::Hop> {
    let mut out = vec![hop];
    let mut at = hop;
    while let warren_core::session::Route::Jump(via) = &at.route {
        out.push(via);
        at = via;
    }
    out
}

/// ~/.ssh, the config file in use and ~/.ssh/authorized_keys.
fn local_files(a: &DoctorArgs) -> Vec<LocalFile> {
    let mut out = Vec::new();
    let ssh_dir = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".ssh"));
    if let Some(dir) = &ssh_dir {
        out.push(LocalFile {
            path: dir.clone(),
            kind: FileKind::SshDir,
        });
        out.push(LocalFile {
            path: dir.join("authorized_keys"),
            kind: FileKind::AuthorizedKeys,
        });
    }
    let config = match a.connect.config_file.as_deref() {
        Some(f) if f.eq_ignore_ascii_case("none") => None,
        Some(f) => Some(PathBuf::from(f)),
        None => ssh_dir.map(|d| d.join("config")),
    };
    if let Some(path) = config {
        out.push(LocalFile {
            path,
            kind: FileKind::Config,
        });
    }
    out
}

/// The checklist on a terminal (coloured unless NO_COLOR), or JSON.
struct Printer {
    json: bool,
    colour: bool,
}

impl Printer {
    fn new(json: bool) -> Printer {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Printer {
            json,
            colour: !json && !no_color && std::io::stdout().is_terminal(),
        }
    }

    fn header(&self, destination: &str) {
        if !self.json {
            println!("warren doctor {}", escape_str(destination));
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    fn check(&self, c: &Check) {
        if self.json {
            return;
        }
        let (word, code) = match c.status {
            Status::Ok => ("ok  ", "32"),
            Status::Warn => ("warn", "33"),
            Status::Fail => ("FAIL", "1;31"),
            Status::Skip => ("skip", "2"),
        };
        println!(
            "  {}  {}: {} {}",
            self.paint(code, word),
            c.name,
            c.summary,
            self.paint("2", &format!("({} ms)", c.ms))
        );
        if let Some(fix) = &c.fix {
            println!("        {} {fix}", self.paint("1", "fix:"));
        }
    }

    fn finish(&self, report: &Report, start: Instant) -> anyhow::Result<()> {
        if self.json {
            let text = serde_json::to_string_pretty(report).context("write the report as JSON")?;
            println!("{text}");
            return Ok(());
        }
        let count = |s: Status| report.checks.iter().filter(|c| c.status == s).count();
        let verdict = if report.ok {
            self.paint("32", "all good")
        } else {
            self.paint("1;31", "problems found")
        };
        println!(
            "{verdict}: {} ok, {} warning(s), {} failed, {} skipped in {} ms",
            count(Status::Ok),
            count(Status::Warn),
            count(Status::Fail),
            count(Status::Skip),
            start.elapsed().as_millis()
        );
        Ok(())
    }
}
