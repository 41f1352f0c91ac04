//! Setting up a session's forwards (-L, -D, -R) as ssh does: each local
//! listener bound before anything is reported ready, each remote forward
//! requested from the server; a failure is a warning, or fatal under
//! ExitOnForwardFailure.

use std::sync::Arc;

use anyhow::bail;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use warren_core::forward::local::{self, Forwarder, Target};
use warren_core::forward::remote::RemoteTarget;
use warren_core::forward::{Counters, Endpoint, ForwardError, ForwardOptions, ForwardSpec, listen};
use warren_core::session::Session;

/// Starts every forward; the returned tasks serve until `token` is cancelled.
pub async fn start(
    session: &Session,
    specs: &[ForwardSpec],
    opts: &ForwardOptions,
    token: &CancellationToken,
) -> anyhow::Result<JoinSet<()>> {
    let mut tasks = JoinSet::new();
    for spec in specs {
        let result = match spec {
            ForwardSpec::Local { listen, connect } => {
                start_local(
                    session,
                    spec,
                    listen,
                    Target::Fixed(connect.clone()),
                    opts,
                    token,
                    &mut tasks,
                )
                .await
            }
            ForwardSpec::Dynamic { listen } => {
                start_local(
                    session,
                    spec,
                    listen,
                    Target::Socks,
                    opts,
                    token,
                    &mut tasks,
                )
                .await
            }
            ForwardSpec::Remote { listen, connect } => {
                start_remote(session, spec, listen, connect.clone(), opts).await
            }
        };
        if let Err(e) = result {
            if opts.exit_on_forward_failure {
                bail!("{e} (ExitOnForwardFailure is set)");
            }
            warn!("Warning: {e}");
        }
    }
    Ok(tasks)
}

async fn start_local(
    session: &Session,
    spec: &ForwardSpec,
    at: &Endpoint,
    target: Target,
    opts: &ForwardOptions,
    token: &CancellationToken,
    tasks: &mut JoinSet<()>,
) -> Result<(), ForwardError> {
    let text = spec.to_string();
    let listener = listen::bind(&text, at, opts).await?;
    let forwarder = Arc::new(Forwarder {
        handle: session.shared_handle(),
        spec: text,
        target,
        counters: Arc::new(Counters::default()),
        queue_limit: opts.queue_limit,
    });
    tasks.spawn(local::serve(listener, forwarder, token.clone()));
    Ok(())
}

/// The listen address ssh asks the server for: "localhost" by default
/// (the server's GatewayPorts decides the rest), "" for `*`.
fn remote_bind_host(host: Option<&str>) -> &str {
    match host {
        None => "localhost",
        Some("*") => "",
        Some(h) => h,
    }
}

async fn start_remote(
    session: &Session,
    spec: &ForwardSpec,
    at: &Endpoint,
    connect: Option<Endpoint>,
    opts: &ForwardOptions,
) -> Result<(), ForwardError> {
    let text = spec.to_string();
    let target = RemoteTarget {
        spec: text.clone(),
        connect,
        counters: Arc::new(Counters::default()),
        queue_limit: opts.queue_limit,
    };
    match at {
        Endpoint::Tcp { host, port } => {
            let bind = remote_bind_host(host.as_deref());
            let granted = session.handle().tcpip_forward(bind, u32::from(*port)).await;
            let port_granted = match granted {
                Ok(p) if *port == 0 => p,
                Ok(_) => u32::from(*port),
                Err(russh::Error::RequestDenied) => {
                    return Err(ForwardError::RemoteRefused {
                        spec: text,
                        port: *port,
                    });
                }
                Err(source) => return Err(ForwardError::Ssh { spec: text, source }),
            };
            if *port == 0 {
                // ssh prints this line on stderr, and scripts parse it.
                eprintln!(
                    "Allocated port {port_granted} for remote forward to {}",
                    describe(&target.connect)
                );
            }
            info!(
                "Remote forward {bind}:{port_granted} -> {}",
                describe(&target.connect)
            );
            session
                .remote_forwards()
                .add_tcp(bind, port_granted, target);
        }
        Endpoint::Unix(path) => {
            let path_text = path.to_string_lossy().into_owned();
            match session
                .handle()
                .streamlocal_forward(path_text.as_str())
                .await
            {
                Ok(()) => session.remote_forwards().add_unix(&path_text, target),
                Err(russh::Error::RequestDenied) => {
                    return Err(ForwardError::RemoteRefused {
                        spec: text,
                        port: 0,
                    });
                }
                Err(source) => return Err(ForwardError::Ssh { spec: text, source }),
            }
        }
    }
    Ok(())
}

fn describe(connect: &Option<Endpoint>) -> String {
    match connect {
        Some(e) => e.to_string(),
        None => "SOCKS (dynamic)".into(),
    }
}
