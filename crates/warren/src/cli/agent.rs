//! `warren agent`: an ssh-agent. `-s`/`-c` print the environment lines,
//! `-a` names the socket, `-D` stays in the foreground, `-t` sets a
//! default key lifetime, `-k` kills the agent named by SSH_AGENT_PID, and
//! `warren agent COMMAND` runs the command with the agent and ends with it.
//!
//! Design choice: like `-f` in `warren ssh`, going to the background
//! re-executes warren (no fork in a threaded runtime): the child binds the
//! socket, writes one byte on a pipe once it listens, and the parent prints
//! the environment lines with the child's pid.

use std::io::{Read as _, Write as _};
use std::os::fd::AsRawFd as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser;
use tokio_util::sync::CancellationToken;
use warren_core::agent::{self, AgentOptions, AgentSocket};
use warren_core::keys::FingerprintHash;

const READY_FD: &str = "WARREN_AGENT_READY_FD";

#[derive(Debug, Parser)]
#[command(
    name = "warren agent",
    disable_version_flag = true,
    about = "Authentication agent, as ssh-agent"
)]
pub struct AgentArgs {
    /// Bourne shell commands on stdout (default unless SHELL is a csh).
    #[arg(short = 's')]
    sh: bool,
    /// C-shell commands on stdout.
    #[arg(short = 'c')]
    csh: bool,
    /// Bind the agent to this socket path.
    #[arg(short = 'a', value_name = "BIND_ADDRESS")]
    address: Option<PathBuf>,
    /// Foreground: do not go to the background.
    #[arg(short = 'D')]
    foreground: bool,
    /// Debug: foreground, log each request to stderr.
    #[arg(short = 'd')]
    debug: bool,
    /// Default lifetime of added keys (seconds, or 1h30m style).
    #[arg(short = 't', value_name = "LIFE")]
    lifetime: Option<String>,
    /// Fingerprint hash in confirmation prompts.
    #[arg(short = 'E', value_name = "HASH")]
    hash: Option<String>,
    /// Kill the agent named by SSH_AGENT_PID.
    #[arg(short = 'k')]
    kill: bool,
    /// Run this command with the agent; the agent ends with it.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

pub fn main(args: &[String]) -> u8 {
    super::run_tool::<AgentArgs>("warren agent", args, run)
}

fn run(a: &AgentArgs) -> anyhow::Result<u8> {
    if a.sh && a.csh {
        bail!("give -s or -c, not both");
    }
    if a.kill {
        return kill(a);
    }
    let opts = options(a)?;
    if std::env::var_os(READY_FD).is_some() {
        return daemon(a, opts);
    }
    if !a.command.is_empty() {
        return with_command(a, opts);
    }
    if a.foreground || a.debug {
        return foreground(a, opts);
    }
    launch(a)
}

fn options(a: &AgentArgs) -> anyhow::Result<AgentOptions> {
    let default_lifetime = match &a.lifetime {
        Some(t) => Some(Duration::from_secs(u64::from(
            warren_config::parse_duration(t)
                .filter(|s| *s > 0)
                .with_context(|| format!("Invalid lifetime {t:?} (e.g. 600, 10m, 1h30m)"))?,
        ))),
        None => None,
    };
    let fingerprint_hash = match &a.hash {
        Some(h) => FingerprintHash::parse(h)
            .with_context(|| format!("invalid hash algorithm {h:?}; use sha256 or md5"))?,
        None => FingerprintHash::Sha256,
    };
    Ok(AgentOptions {
        default_lifetime,
        fingerprint_hash,
        ..AgentOptions::default()
    })
}

fn csh(a: &AgentArgs) -> bool {
    a.csh || (!a.sh && std::env::var("SHELL").is_ok_and(|s| s.ends_with("csh")))
}

fn env_lines(a: &AgentArgs, socket: &std::path::Path, pid: Option<u32>) -> String {
    let sock = socket.display();
    let mut out = String::new();
    if csh(a) {
        out.push_str(&format!("setenv SSH_AUTH_SOCK {sock};\n"));
        if let Some(pid) = pid {
            out.push_str(&format!("setenv SSH_AGENT_PID {pid};\n"));
        }
    } else {
        out.push_str(&format!("SSH_AUTH_SOCK={sock}; export SSH_AUTH_SOCK;\n"));
        if let Some(pid) = pid {
            out.push_str(&format!("SSH_AGENT_PID={pid}; export SSH_AGENT_PID;\n"));
        }
    }
    if let Some(pid) = pid {
        out.push_str(&format!("echo Agent pid {pid};\n"));
    }
    out
}

fn kill(a: &AgentArgs) -> anyhow::Result<u8> {
    let pid = std::env::var("SSH_AGENT_PID").context("SSH_AGENT_PID not set, cannot kill agent")?;
    let n: i32 = pid
        .trim()
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .with_context(|| format!("SSH_AGENT_PID={pid} is not a process id"))?;
    let target = rustix::process::Pid::from_raw(n)
        .with_context(|| format!("SSH_AGENT_PID={pid} is not a process id"))?;
    rustix::process::kill_process(target, rustix::process::Signal::TERM)
        .with_context(|| format!("kill agent pid {pid}"))?;
    if csh(a) {
        print!("unsetenv SSH_AUTH_SOCK;\nunsetenv SSH_AGENT_PID;\n");
    } else {
        print!("unset SSH_AUTH_SOCK;\nunset SSH_AGENT_PID;\n");
    }
    println!("echo Agent pid {pid} killed;");
    Ok(0)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("start the async runtime")
}

/// Serves until SIGTERM, SIGINT or SIGHUP, or until `token` is cancelled;
/// the socket (and its directory) are removed on the way out.
async fn serve_until_signal(socket: AgentSocket, opts: AgentOptions, token: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let stopper = token.clone();
    let stop = async move {
        let (Ok(mut term), Ok(mut hup), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
            signal(SignalKind::interrupt()),
        ) else {
            return stopper.cancelled().await;
        };
        tokio::select! {
            _ = term.recv() => {},
            _ = hup.recv() => {},
            _ = int.recv() => {},
            () = stopper.cancelled() => {},
        }
        stopper.cancel();
    };
    let agent = agent::Agent::new(opts);
    tokio::join!(agent::serve(&socket.listener, agent, token.clone()), stop);
    drop(socket);
}

fn foreground(a: &AgentArgs, opts: AgentOptions) -> anyhow::Result<u8> {
    if a.debug {
        crate::logging::init(crate::logging::Verbosity::Debug, None);
    }
    let rt = runtime()?;
    rt.block_on(async {
        let socket = AgentSocket::bind(a.address.as_deref()).context("create the agent socket")?;
        print!("{}", env_lines(a, &socket.path, Some(std::process::id())));
        let _ = std::io::stdout().flush();
        serve_until_signal(socket, opts, CancellationToken::new()).await;
        Ok::<_, anyhow::Error>(())
    })?;
    rt.shutdown_background();
    Ok(0)
}

/// The background agent (re-executed by [`launch`]): binds, tells the
/// launcher, leaves the terminal's session and serves.
fn daemon(a: &AgentArgs, opts: AgentOptions) -> anyhow::Result<u8> {
    let rt = runtime()?;
    rt.block_on(async {
        let bound = AgentSocket::bind(a.address.as_deref()).context("create the agent socket");
        let _ = rustix::process::setsid();
        // The launcher prints what it reads: the path, or `!` and the error.
        let line = match &bound {
            Ok(socket) => format!("{}\n", socket.path.display()),
            Err(e) => format!("!{e:#}\n"),
        };
        if let Some(fd) = std::env::var_os(READY_FD) {
            let path = format!("/proc/self/fd/{}", fd.to_string_lossy());
            if let Ok(mut ready) = std::fs::OpenOptions::new().write(true).open(path) {
                let _ = ready.write_all(line.as_bytes());
            }
        }
        serve_until_signal(bound?, opts, CancellationToken::new()).await;
        Ok::<_, anyhow::Error>(())
    })?;
    rt.shutdown_background();
    Ok(0)
}

/// Starts the background agent and prints its environment lines.
fn launch(a: &AgentArgs) -> anyhow::Result<u8> {
    let (read, write) = rustix::pipe::pipe().context("pipe")?;
    rustix::io::fcntl_setfd(&read, rustix::io::FdFlags::CLOEXEC).context("pipe")?;
    let mut child = Command::new(std::env::current_exe().context("find warren itself")?)
        .args(std::env::args_os().skip(1))
        .env(READY_FD, write.as_raw_fd().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("start the agent")?;
    drop(write);
    // One line: the socket path. The agent keeps its end open, so read
    // up to the newline, not to the end.
    let mut said = Vec::new();
    let mut pipe = std::fs::File::from(read);
    let mut byte = [0u8; 1];
    while let Ok(1) = pipe.read(&mut byte) {
        if byte[0] == b'\n' {
            break;
        }
        said.push(byte[0]);
    }
    let said = String::from_utf8_lossy(&said).into_owned();
    if let Some(err) = said.strip_prefix('!') {
        let _ = child.wait();
        bail!("{err}");
    }
    let Some(path) = Some(said.as_str()).filter(|l| !l.is_empty()) else {
        let status = child.wait()?;
        bail!("the agent did not start ({status})");
    };
    print!(
        "{}",
        env_lines(a, std::path::Path::new(path), Some(child.id()))
    );
    Ok(0)
}

/// `warren agent COMMAND`: the agent serves while the command runs with
/// SSH_AUTH_SOCK and SSH_AGENT_PID set, and ends with it.
fn with_command(a: &AgentArgs, opts: AgentOptions) -> anyhow::Result<u8> {
    let rt = runtime()?;
    let code = rt.block_on(async {
        let socket = AgentSocket::bind(a.address.as_deref()).context("create the agent socket")?;
        let mut child = tokio::process::Command::new(&a.command[0])
            .args(&a.command[1..])
            .env("SSH_AUTH_SOCK", &socket.path)
            .env("SSH_AGENT_PID", std::process::id().to_string())
            .spawn()
            .with_context(|| format!("run {}", a.command[0]))?;
        let token = CancellationToken::new();
        let serving = tokio::spawn(serve_until_signal(socket, opts, token.clone()));
        let status = child.wait().await?;
        token.cancel();
        let _ = serving.await;
        Ok::<_, anyhow::Error>(status.code().map_or(1, |c| c as u8))
    })?;
    rt.shutdown_background();
    Ok(code)
}
