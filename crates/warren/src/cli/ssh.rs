//! `warren ssh`: parse (ssh_args), resolve (settings), connect and run.

use std::os::fd::AsFd;
use std::sync::Arc;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use warren_core::exec::{self, Exit};
use warren_core::forward::manage::Forwards;
use warren_core::forward::stdio::forward_stdio;
use warren_core::mux::master::{self as mux_master, ControlSocket, Master, MasterOptions};
use warren_core::prompt::{NoPrompt, Prompter, TtyPrompter};
use warren_core::session::{self, Session};

use super::settings::{Settings, TtyRequest};
use super::ssh_args::SshArgs;
use super::{background, mux, ssh_flags, tunnels};
use crate::logging;

/// Exit status for warren's own failures, as ssh.
const FAILURE: u8 = 255;

/// Runs `warren ssh` with the arguments after `ssh`; returns the exit code.
pub fn main(args: &[String]) -> u8 {
    if let Some(complaint) = getopt_complaint(args) {
        eprintln!("{complaint}\n{}", ssh_flags::usage());
        return FAILURE;
    }
    let parsed = match SshArgs::parse_from_ssh_argv(args) {
        Ok(a) => a,
        Err(e) if e.use_stderr() => {
            // What getopt accepts and clap still refuses: say it in ssh's
            // words, without clap's tips (`-- -h` would be wrong here).
            let kind = e.kind();
            eprintln!("{kind}\n{}", ssh_flags::usage());
            return FAILURE;
        }
        Err(e) => {
            let _ = e.print();
            return 0;
        }
    };
    if parsed.version {
        eprintln!(
            "warren {} (OpenSSH-compatible client, russh 0.65)",
            env!("CARGO_PKG_VERSION")
        );
        return 0;
    }
    let destination = parsed.destination.clone();
    match run(parsed, args) {
        Ok(code) => code,
        Err(err) => {
            crate::output::report_suggesting_doctor("warren", &err, FAILURE, destination.as_deref())
        }
    }
}

/// What ssh's getopt says of `args` before anything runs, in its words:
/// an unknown letter, or a missing value. `--help` is warren's own.
fn getopt_complaint(args: &[String]) -> Option<String> {
    let (options, _) = super::argv::options_in_order(args);
    if super::argv::reorder(args)
        .iter()
        .take_while(|a| *a != "--")
        .any(|a| a == "--help")
    {
        return None;
    }
    options.into_iter().find_map(
        |(letter, value)| match (ssh_flags::takes_value(letter), value) {
            (None, _) => Some(format!("unknown option -- {letter}")),
            (Some(true), None) => Some(format!("option requires an argument -- {letter}")),
            _ => None,
        },
    )
}

fn run(args: SshArgs, argv: &[String]) -> anyhow::Result<u8> {
    if let Some(query) = &args.later.query {
        return Ok(super::query::run(query));
    }
    if let Some(flag) = args.later.first_unsupported() {
        anyhow::bail!("{flag} is not supported yet in this version of warren");
    }
    let settings = Settings::resolve(&args, argv)?;
    if args.dump_config {
        print!("{}", settings.dump);
        return Ok(0);
    }
    if settings.mux.command.is_none()
        && let Some(code) = background::launch_if_requested(settings.fork)
    {
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
    let code = runtime.block_on(shared_or_own(settings));
    // stdin is read on a blocking thread that may never return; don't wait.
    runtime.shutdown_background();
    code
}

/// Through an existing master when there is one (ControlMaster no/auto),
/// else over a connection of our own, which may become a master.
async fn shared_or_own(settings: Settings) -> anyhow::Result<u8> {
    if let Some(command) = settings.mux.command {
        return mux::control_command(&settings, command).await;
    }
    let persistent_child = background::is_persistent_master();
    if !persistent_child
        && mux::may_use_master(&settings.mux)
        && let Some(code) = mux::try_passenger(&settings, true).await
    {
        return code;
    }
    let own_session = !settings.no_session || settings.stdio_forward.is_some();
    if !persistent_child
        && own_session
        && mux::becomes_master(&settings.mux)
        && settings.mux.persist.is_some()
    {
        // ControlPersist: the master lives in the background, and this run
        // is its first client, as with ssh.
        let code = background::launch_persistent_master()?;
        if code != 0 {
            return Ok(code);
        }
        // The master set our forwards up already.
        return match mux::try_passenger(&settings, false).await {
            Some(code) => code,
            None => anyhow::bail!("the background master did not start listening"),
        };
    }
    session_main(settings, persistent_child).await
}

async fn session_main(settings: Settings, persistent_child: bool) -> anyhow::Result<u8> {
    let prompter: Arc<dyn Prompter> = if settings.hop.opts.auth.batch_mode {
        Arc::new(NoPrompt)
    } else {
        Arc::new(TtyPrompter)
    };
    let session = session::connect_hop(&settings.hop, prompter.clone()).await?;
    let forwards = Arc::new(Forwards::new(
        &session,
        settings.forward_options.clone(),
        CancellationToken::new(),
    ));
    tunnels::start(&forwards, &settings.forwards).await?;
    let (master, listening) = start_master(&session, &forwards, &settings, prompter).unzip();
    if let Some(command) = &settings.local_command {
        super::local_command::run(command).await;
    }
    if persistent_child {
        background::detach_persistent_master();
    } else if settings.fork {
        let debugging = settings.verbosity > crate::logging::Verbosity::Normal;
        background::detach(settings.no_session, debugging);
    }
    let terminated = master
        .as_ref()
        .map_or_else(CancellationToken::new, |m| m.terminated());
    let stopped = master
        .as_ref()
        .map_or_else(CancellationToken::new, |m| m.stopped());
    // `-O stop` ends a master that only serves others (-N, or
    // ControlPersist's) once its last client is gone, as ssh.
    let serves_only_others =
        persistent_child || (settings.no_session && settings.stdio_forward.is_none());
    let own = async {
        if persistent_child {
            Ok(persist(&session, master.as_deref(), &settings).await)
        } else {
            run_session(&session, &settings, &forwards).await
        }
    };
    let code = tokio::select! {
        code = own => code,
        () = terminated.cancelled() => Ok(if settings.no_session { 0 } else { FAILURE }),
        () = stopped.cancelled(), if serves_only_others => Ok(0),
    };
    if let Some(m) = &master {
        // Multiplexed sessions still running keep the connection. The
        // socket goes first (the task removes it), before we exit.
        m.stop_listening();
        if let Some(task) = listening {
            let _ = task.await;
        }
        let mut clients = m.clients();
        tokio::select! {
            _ = clients.wait_for(|n| *n == 0) => {}
            () = terminated.cancelled() => {}
            () = session.closed() => {}
        }
    }
    forwards.shutdown().await;
    session.close().await;
    code
}

/// Listens on ControlPath when this run is a master. A socket already
/// there (another master) disables multiplexing with a warning, as ssh.
fn start_master(
    session: &Session,
    forwards: &Arc<Forwards>,
    settings: &Settings,
    prompter: Arc<dyn Prompter>,
) -> Option<(Arc<Master>, tokio::task::JoinHandle<()>)> {
    if !mux::becomes_master(&settings.mux) {
        return None;
    }
    let path = settings.mux.path.as_deref()?;
    let socket = match ControlSocket::bind(path) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("{}", warren_wire::Chain(&e));
            return None;
        }
    };
    let ask = matches!(
        settings.mux.master,
        warren_config::ControlMaster::Ask | warren_config::ControlMaster::AutoAsk
    );
    let master = Master::new(
        session.shared_handle(),
        forwards.clone(),
        MasterOptions {
            host: settings.hop.opts.host.clone(),
            ask,
            prompter,
            queue_limit: settings.forward_options.queue_limit,
            forward_agent: settings.hop.opts.forward_agent.is_some(),
        },
    );
    let listening = tokio::spawn(master.clone().serve(socket));
    Some((master, listening))
}

/// A background master (ControlPersist): serves until the connection
/// closes, `-O exit`, or no client has been connected for the persist
/// time.
async fn persist(session: &Session, master: Option<&Master>, settings: &Settings) -> u8 {
    let Some(master) = master else {
        return FAILURE;
    };
    let idle = async {
        match settings.mux.persist.flatten() {
            Some(t) => mux_master::idle_for(master.clients(), t).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = idle => 0,
        () = session.closed() => FAILURE,
    }
}

/// What runs on the connection once the forwards are up: -W, -N, or a
/// command / shell.
async fn run_session(
    session: &Session,
    settings: &Settings,
    forwards: &Arc<Forwards>,
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
        tokio::select! {
            () = session.closed() => return Ok(FAILURE),
            _ = tokio::signal::ctrl_c() => return Ok(0),
        }
    }
    let mut run = settings.run.clone();
    run.pty = decide_tty(settings.tty, run.command.is_none());
    run.x11 = super::x11::prepare(session, run.x11_request.as_ref()).await;
    run.forwards = forwards.list();
    run.escapes = exec::EscapeContext {
        forwards: Some(forwards.clone()),
        log_level: Some(Arc::new(crate::logging::step)),
        multiplexed: false,
    };
    let exit = exec::run(session.handle(), &run).await?;
    if let Exit::Signal { name, .. } = &exit {
        tracing::info!("remote command killed by signal {name}");
    }
    Ok(exit.code() as u8)
}

/// RequestTTY as ssh decides it: auto means a PTY for a login shell on a
/// terminal; `yes` needs a local terminal; `force` always.
pub(super) fn decide_tty(request: TtyRequest, shell: bool) -> bool {
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
