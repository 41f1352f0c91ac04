//! `warren ssh` and connection sharing: `-O` commands, running as a
//! multiplexed client of a master (warren's or OpenSSH's), and deciding
//! when this run becomes the master. The protocol is warren-core's `mux`.

use std::os::fd::AsFd;
use std::path::Path;

use anyhow::Context as _;
use tracing::{debug, warn};
use warren_config::ControlMaster;
use warren_core::forward::{Endpoint, ForwardSpec};
use warren_core::mux::client::{MuxClient, SessionEnd, SessionRequest, process_stdio};
use warren_core::mux::{self, MuxError};
use warren_wire::Chain;

use super::settings::{ControlCommand, MuxSettings, Settings};

/// Exit status for failures, as ssh.
const FAILURE: u8 = 255;

/// Whether this run may use an existing master (ControlMaster no/auto).
pub fn may_use_master(m: &MuxSettings) -> bool {
    m.path.is_some()
        && matches!(
            m.master,
            ControlMaster::No | ControlMaster::Auto | ControlMaster::AutoAsk
        )
}

/// Whether this run becomes a master when it connects itself.
pub fn becomes_master(m: &MuxSettings) -> bool {
    m.path.is_some() && m.master != ControlMaster::No
}

/// `-O command`: talks to the master and returns the exit code.
pub async fn control_command(settings: &Settings, command: ControlCommand) -> anyhow::Result<u8> {
    let Some(path) = &settings.mux.path else {
        anyhow::bail!(
            "No ControlPath specified for \"-O\" command (use -S path or -o ControlPath=path)"
        );
    };
    let mut client = MuxClient::connect(path).await?;
    match command {
        ControlCommand::Check => {
            let pid = client.alive().await?;
            eprint!("Master running (pid={pid})\r\n");
        }
        ControlCommand::Exit => {
            client.terminate().await?;
            eprint!("Exit request sent.\r\n");
        }
        ControlCommand::Stop => {
            client.stop_listening().await?;
            eprint!("Stop listening request sent.\r\n");
        }
        // ssh's client speaks the connection protocol through the master
        // here (proxy mode, which a warren master serves too); warren's
        // has the master run the session and forwards for it, which does
        // the same over the same connection.
        ControlCommand::Proxy => return passenger(client, settings, true).await,
        ControlCommand::Forward | ControlCommand::Cancel => {
            let open = command == ControlCommand::Forward;
            for spec in &settings.forwards {
                let allocated =
                    client
                        .forward(open, mux::to_mux(spec))
                        .await
                        .with_context(|| {
                            format!(
                                "{} {spec} through the master",
                                if open { "forwarding" } else { "cancelling" }
                            )
                        })?;
                if let Some(port) = allocated {
                    // As ssh: scripts read the allocated port from stdout.
                    println!("{port}");
                }
            }
        }
    }
    Ok(0)
}

/// Tries to run this invocation through an existing master, asking it for
/// our forwards too when `with_forwards`. `None`: no master there (a stale
/// socket is removed when we may become the master); connect directly.
pub async fn try_passenger(settings: &Settings, with_forwards: bool) -> Option<anyhow::Result<u8>> {
    let path = settings.mux.path.as_deref()?;
    let client = match MuxClient::connect(path).await {
        Ok(c) => c,
        Err(e) if e.no_master() => {
            remove_if_stale(path, &e, settings);
            return None;
        }
        Err(e @ MuxError::NotOwner { .. }) => return Some(Err(e.into())),
        Err(e) => {
            warn!(
                "cannot use the master at {}: {}; connecting directly",
                path.display(),
                Chain(&e)
            );
            return None;
        }
    };
    debug!("using the master at {}", path.display());
    match passenger(client, settings, with_forwards).await {
        // As ssh: a master that refuses the session (ControlMaster ask,
        // answered no) is not the end; connect directly.
        Err(e) if matches!(e.downcast_ref::<MuxError>(), Some(MuxError::Refused(_))) => {
            let reason = match e.downcast_ref::<MuxError>() {
                Some(MuxError::Refused(r)) => r.as_str(),
                _ => "",
            };
            eprintln!("Master refused session request: {reason}");
            None
        }
        other => Some(other),
    }
}

fn remove_if_stale(path: &Path, e: &MuxError, settings: &Settings) {
    let refused = matches!(e, MuxError::Connect { source, .. }
        if source.kind() == std::io::ErrorKind::ConnectionRefused);
    if refused && settings.mux.master != ControlMaster::No {
        debug!("Stale control socket {}, unlinking", path.display());
        let _ = std::fs::remove_file(path);
    }
}

async fn passenger(
    mut client: MuxClient,
    settings: &Settings,
    with_forwards: bool,
) -> anyhow::Result<u8> {
    let forwards = if with_forwards {
        &settings.forwards[..]
    } else {
        &[]
    };
    for spec in forwards {
        match client.forward(true, mux::to_mux(spec)).await {
            Ok(Some(port)) => {
                if let ForwardSpec::Remote {
                    connect: Some(c), ..
                } = spec
                {
                    eprintln!("Allocated port {port} for remote forward to {c}");
                }
            }
            Ok(None) => {}
            Err(e) if settings.forward_options.exit_on_forward_failure => {
                anyhow::bail!("{spec}: {} (ExitOnForwardFailure is set)", Chain(&e))
            }
            Err(e) => warn!("Warning: {spec}: {}", Chain(&e)),
        }
    }
    if let Some(target) = &settings.stdio_forward {
        let Endpoint::Tcp {
            host: Some(host),
            port,
        } = target
        else {
            anyhow::bail!("-W through a master needs host:port");
        };
        let [stdin, stdout, _] = process_stdio();
        client.stdio_forward(host, *port, [stdin, stdout]).await?;
        return Ok(0);
    }
    if settings.no_session {
        // -N: the forwards now live in the master.
        return Ok(0);
    }
    let run = &settings.run;
    let tty = super::ssh::decide_tty(settings.tty, run.command.is_none());
    let stdin = std::io::stdin();
    let null;
    let stdio = if run.stdin_null {
        null = std::fs::File::open("/dev/null").context("open /dev/null")?;
        let [_, stdout, stderr] = process_stdio();
        [null.as_fd(), stdout, stderr]
    } else {
        process_stdio()
    };
    let request = SessionRequest {
        tty,
        agent: run.forward_agent,
        subsystem: run.subsystem,
        escape: run.escape_char,
        term: run.term.clone(),
        command: run.command.clone().unwrap_or_default(),
        env: run.env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
    };
    let raw = std::cell::RefCell::new(if tty {
        warren_core::terminal::RawModeGuard::enter(stdin.as_fd())
    } else {
        None
    });
    let detach = || {
        // -f: as ssh's multiplexed client, background once the master
        // runs the session (a ControlPersist master started for this run
        // included).
        if settings.fork {
            let debugging = settings.verbosity > crate::logging::Verbosity::Normal;
            super::background::detach(false, debugging);
        }
    };
    let session = client.session(request, stdio, detach, || {
        raw.borrow_mut().take();
    });
    let end = tokio::select! {
        end = session => end?,
        () = interrupted() => SessionEnd::NoStatus,
    };
    let had_tty = raw.borrow_mut().take().is_some();
    if had_tty && settings.verbosity != crate::logging::Verbosity::Quiet {
        eprint!(
            "Shared connection to {} closed.\r\n",
            settings.hop.opts.host
        );
    }
    Ok(match end {
        SessionEnd::Exit(status) => (status & 0xff) as u8,
        SessionEnd::NoStatus => FAILURE,
    })
}

/// SIGINT, SIGTERM or SIGHUP: a waiting multiplexed client gives up (the
/// master ends the session when our connection closes).
async fn interrupted() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
        _ = hup.recv() => {}
    }
}
