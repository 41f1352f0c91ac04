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

/// The forwards that are up, with their counters (for `~#` and status).
pub type Active = Vec<(String, Arc<Counters>)>;

/// Starts every forward; the returned tasks serve until `token` is cancelled.
pub async fn start(
    session: &Session,
    specs: &[ForwardSpec],
    opts: &ForwardOptions,
    token: &CancellationToken,
) -> anyhow::Result<(JoinSet<()>, Active)> {
    let mut tasks = JoinSet::new();
    let mut active = Active::new();
    for spec in specs {
        let counters = Arc::new(Counters::default());
        let result = match spec {
            ForwardSpec::Local { listen, connect } => {
                let target = Target::Fixed(connect.clone());
                start_local(session, spec, listen, target, opts, counters.clone())
                    .await
                    .map(|serve| {
                        tasks.spawn(serve(token.clone()));
                    })
            }
            ForwardSpec::Dynamic { listen } => {
                start_local(session, spec, listen, Target::Socks, opts, counters.clone())
                    .await
                    .map(|serve| {
                        tasks.spawn(serve(token.clone()));
                    })
            }
            ForwardSpec::Remote { listen, connect } => {
                start_remote(
                    session,
                    spec,
                    listen,
                    connect.clone(),
                    opts,
                    counters.clone(),
                )
                // The server holds the listener; connections arrive through
                // the session's handler.
                .await
            }
        };
        match result {
            Ok(()) => active.push((spec.to_string(), counters)),
            Err(e) if opts.exit_on_forward_failure => bail!("{e} (ExitOnForwardFailure is set)"),
            Err(e) => warn!("Warning: {e}"),
        }
    }
    Ok((tasks, active))
}

/// Binds the listener now (so failures are reported before anything is
/// declared up) and returns the task that serves it.
async fn start_local(
    session: &Session,
    spec: &ForwardSpec,
    at: &Endpoint,
    target: Target,
    opts: &ForwardOptions,
    counters: Arc<Counters>,
) -> Result<impl FnOnce(CancellationToken) -> BoxFuture + use<>, ForwardError> {
    let text = spec.to_string();
    let listener = listen::bind(&text, at, opts).await?;
    let forwarder = Arc::new(Forwarder {
        handle: session.shared_handle(),
        spec: text,
        target,
        counters,
        queue_limit: opts.queue_limit,
    });
    Ok(move |token| -> BoxFuture { Box::pin(local::serve(listener, forwarder, token)) })
}

type BoxFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

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
    counters: Arc<Counters>,
) -> Result<(), ForwardError> {
    let text = spec.to_string();
    let target = RemoteTarget {
        spec: text.clone(),
        connect,
        counters,
        queue_limit: opts.queue_limit,
        permit: opts.permit_remote_open.clone(),
    };
    let forwards = session.remote_forwards();
    match at {
        Endpoint::Tcp { host, port } => {
            let bind = remote_bind_host(host.as_deref());
            // Registered first: the server may forward a connection before
            // its reply to the request reaches us.
            forwards.add_tcp(bind, u32::from(*port), target.clone());
            let granted = match session.handle().tcpip_forward(bind, u32::from(*port)).await {
                Ok(p) if *port == 0 => p,
                Ok(_) => u32::from(*port),
                Err(e) => {
                    forwards.remove_tcp(bind, u32::from(*port));
                    return Err(match e {
                        russh::Error::RequestDenied => ForwardError::RemoteRefused {
                            spec: text,
                            port: *port,
                        },
                        source => ForwardError::Ssh { spec: text, source },
                    });
                }
            };
            if *port == 0 {
                forwards.add_tcp(bind, granted, target.clone());
                forwards.remove_tcp(bind, 0);
                // ssh prints this line on stderr, and scripts parse it.
                eprintln!(
                    "Allocated port {granted} for remote forward to {}",
                    describe(&target.connect)
                );
            }
            info!(
                "Remote forward {bind}:{granted} -> {}",
                describe(&target.connect)
            );
        }
        Endpoint::Unix(path) => {
            let path_text = path.to_string_lossy().into_owned();
            forwards.add_unix(&path_text, target);
            if let Err(e) = session
                .handle()
                .streamlocal_forward(path_text.as_str())
                .await
            {
                forwards.remove_unix(&path_text);
                return Err(match e {
                    russh::Error::RequestDenied => ForwardError::RemoteRefused {
                        spec: text,
                        port: 0,
                    },
                    source => ForwardError::Ssh { spec: text, source },
                });
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
