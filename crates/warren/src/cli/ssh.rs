//! `warren ssh`: parse (ssh_args), resolve (settings), connect and run.

use std::os::fd::AsFd;
use std::sync::Arc;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use warren_core::exec::{self, Exit};
use warren_core::forward::manage::Forwards;
use warren_core::forward::stdio::forward_stdio;
use warren_core::prompt::{NoPrompt, Prompter, TtyPrompter};
use warren_core::session::{self, Session, SessionError};

use super::settings::{Settings, TtyRequest};
use super::ssh_args::SshArgs;
use super::{background, tunnels};
use crate::logging;

/// Exit status for warren's own failures, as ssh.
const FAILURE: u8 = 255;

/// Runs `warren ssh` with the arguments after `ssh`; returns the exit code.
pub fn main(args: &[String]) -> u8 {
    let parsed = match SshArgs::parse_from_ssh_argv(args) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { FAILURE } else { 0 };
        }
    };
    if parsed.version {
        eprintln!(
            "warren {} (OpenSSH-compatible client, russh 0.65)",
            env!("CARGO_PKG_VERSION")
        );
        return 0;
    }
    match run(parsed, args) {
        Ok(code) => code,
        Err(err) => {
            report(&err);
            FAILURE
        }
    }
}

fn report(err: &anyhow::Error) {
    eprintln!("warren: {err:#}");
    if let Some(hint) = err
        .downcast_ref::<SessionError>()
        .and_then(SessionError::hint)
    {
        eprintln!("hint: {hint}");
    }
}

fn run(args: SshArgs, argv: &[String]) -> anyhow::Result<u8> {
    if let Some(flag) = args.later.first_unsupported() {
        anyhow::bail!("{flag} is not supported yet in this version of warren");
    }
    let settings = Settings::resolve(&args, argv)?;
    if args.dump_config {
        print!("{}", settings.dump);
        return Ok(0);
    }
    if let Some(code) = background::launch_if_requested(settings.fork) {
        return Ok(code);
    }
    logging::init(settings.verbosity, args.log_file.as_deref());
    warren_core::terminal::make_stdio_blocking();
    tracing::info!("warren {}", env!("CARGO_PKG_VERSION"));
    let c = &settings.hop.opts;
    tracing::info!(
        "Resolved {} to {}@{} port {} (ssh -G shows every option)",
        c.host,
        c.user,
        c.hostname,
        c.port
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    let code = runtime.block_on(session_main(settings));
    // stdin is read on a blocking thread that may never return; don't wait.
    runtime.shutdown_background();
    code
}

async fn session_main(settings: Settings) -> anyhow::Result<u8> {
    let prompter: Arc<dyn Prompter> = if settings.hop.opts.auth.batch_mode {
        Arc::new(NoPrompt)
    } else {
        Arc::new(TtyPrompter)
    };
    let session = session::connect_hop(&settings.hop, prompter).await?;
    let forwards = Forwards::new(
        &session,
        settings.forward_options.clone(),
        CancellationToken::new(),
    );
    tunnels::start(&forwards, &settings.forwards).await?;
    if settings.fork {
        background::detach(settings.no_session);
    }
    let code = run_session(&session, &settings, forwards.list()).await;
    forwards.shutdown().await;
    session.close().await;
    code
}

/// What runs on the connection once the forwards are up: -W, -N, or a
/// command / shell.
async fn run_session(
    session: &Session,
    settings: &Settings,
    active: tunnels::Active,
) -> anyhow::Result<u8> {
    if let Some(target) = &settings.stdio_forward {
        forward_stdio(
            session.handle(),
            target,
            settings.forward_options.queue_limit,
        )
        .await
        .with_context(|| format!("stdio forwarding to {target} failed"))?;
        return Ok(0);
    }
    if settings.no_session {
        // -N: no command; serve the forwards until the connection closes
        // or the user interrupts.
        let closed = async {
            while !session.handle().is_closed() {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        };
        tokio::select! {
            () = closed => return Ok(FAILURE),
            _ = tokio::signal::ctrl_c() => return Ok(0),
        }
    }
    let mut run = settings.run.clone();
    run.pty = decide_tty(settings.tty, run.command.is_none());
    run.forwards = active;
    let exit = exec::run(session.handle(), &run).await?;
    if let Exit::Signal { name, .. } = &exit {
        tracing::info!("remote command killed by signal {name}");
    }
    Ok(exit.code() as u8)
}

/// RequestTTY as ssh decides it: auto means a PTY for a login shell on a
/// terminal; `yes` needs a local terminal; `force` always.
fn decide_tty(request: TtyRequest, shell: bool) -> bool {
    let stdin_tty = warren_core::terminal::is_terminal(std::io::stdin().as_fd());
    match request {
        TtyRequest::No => false,
        TtyRequest::Force => true,
        TtyRequest::Yes if stdin_tty => true,
        TtyRequest::Yes => {
            eprintln!("Pseudo-terminal will not be allocated because stdin is not a terminal.");
            false
        }
        TtyRequest::Auto => shell && stdin_tty,
    }
}
