//! The forwards of one session, added and removed while it runs: from the
//! command line at start, and later through a control socket (`-O forward`,
//! `-O cancel`, a multiplexed client's own -L/-R/-D).
//!
//! Local listeners (-L, -D) are bound before `add` returns, so a failure is
//! reported to whoever asked, with the port and the process holding it;
//! remote forwards (-R) are requested from the server and registered for
//! the handler before the request goes out (the server may forward a
//! connection before its reply arrives).
//!
//! Local listeners take their session from a [`SessionSlot`]: one fixed
//! session here, or a slot the tunnel supervisor refills after each
//! reconnect ([`Forwards::over_slot`]), so the listeners outlive sessions.

use std::sync::{Arc, Mutex};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::local::{self, Forwarder, Target};
use super::remote::{RemoteForwards, RemoteTarget};
use super::slot::{SessionSlot, SharedHandle};
use super::{Counters, Endpoint, ForwardError, ForwardOptions, ForwardSpec, listen};
use crate::session::Session;

/// What the server gave a new forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Added {
    /// The port the server allocated for `-R 0:...`.
    pub allocated_port: Option<u32>,
    /// The TCP port a local listener (-L, -D) was bound to: the one the
    /// kernel picked for port 0.
    pub local_port: Option<u16>,
}

/// One forward that is up.
struct Active {
    spec: ForwardSpec,
    counters: Arc<Counters>,
    kind: ActiveKind,
}

enum ActiveKind {
    /// A local listener and the task serving it.
    Local {
        token: CancellationToken,
        task: JoinHandle<()>,
    },
    /// A server-side listener: its address as requested, and the port the
    /// server holds (the allocated one for port 0).
    RemoteTcp {
        bind: String,
        port: u32,
    },
    RemoteUnix {
        path: String,
    },
}

/// The forwards of one session.
pub struct Forwards {
    slot: SessionSlot,
    remote: Arc<RemoteForwards>,
    opts: ForwardOptions,
    token: CancellationToken,
    active: Mutex<Vec<Active>>,
}

impl Forwards {
    /// Forwards over `session`; every listener ends when `token` is
    /// cancelled.
    pub fn new(session: &Session, opts: ForwardOptions, token: CancellationToken) -> Forwards {
        Forwards::over_slot(
            SessionSlot::fixed(session.shared_handle()),
            session.remote_forwards(),
            opts,
            token,
        )
    }

    /// Forwards whose local listeners take their session from `slot`;
    /// remote forwards are registered in `remote` and requested on the
    /// session in the slot at the time.
    pub fn over_slot(
        slot: SessionSlot,
        remote: Arc<RemoteForwards>,
        opts: ForwardOptions,
        token: CancellationToken,
    ) -> Forwards {
        Forwards {
            slot,
            remote,
            opts,
            token,
            active: Mutex::new(Vec::new()),
        }
    }

    pub fn options(&self) -> &ForwardOptions {
        &self.opts
    }

    /// Sets `spec` up: binds its listener or asks the server for it.
    pub async fn add(&self, spec: &ForwardSpec) -> Result<Added, ForwardError> {
        self.add_counted(spec, Arc::new(Counters::default())).await
    }

    /// [`Forwards::add`], counting into `counters` (which may outlive this
    /// session, as a supervised tunnel's do).
    pub async fn add_counted(
        &self,
        spec: &ForwardSpec,
        counters: Arc<Counters>,
    ) -> Result<Added, ForwardError> {
        let text = spec.to_string();
        let (kind, added) = match spec {
            ForwardSpec::Local { listen, connect } => {
                let target = Target::Fixed(connect.clone());
                self.add_local(&text, listen, target, &counters).await?
            }
            ForwardSpec::Dynamic { listen } => {
                self.add_local(&text, listen, Target::Socks, &counters)
                    .await?
            }
            ForwardSpec::Remote { listen, connect } => {
                self.add_remote(&text, listen, connect.clone(), &counters)
                    .await?
            }
        };
        self.lock().push(Active {
            spec: spec.clone(),
            counters,
            kind,
        });
        Ok(added)
    }

    /// Takes `spec` down: closes its listener (open connections end too),
    /// or cancels it on the server.
    pub async fn remove(&self, spec: &ForwardSpec) -> Result<(), ForwardError> {
        let found = {
            let mut active = self.lock();
            let at = active.iter().position(|a| &a.spec == spec);
            at.map(|i| active.remove(i))
        };
        let Some(found) = found else {
            return Err(ForwardError::Invalid {
                spec: spec.to_string(),
                reason: "no such forward is open".into(),
            });
        };
        let text = spec.to_string();
        match found.kind {
            ActiveKind::Local { token, task } => {
                token.cancel();
                let _ = task.await;
            }
            ActiveKind::RemoteTcp { bind, port } => {
                self.remote.remove_tcp(&bind, port);
                self.handle(&text)?
                    .cancel_tcpip_forward(bind.as_str(), port)
                    .await
                    .map_err(|source| ForwardError::Ssh { spec: text, source })?;
            }
            ActiveKind::RemoteUnix { path } => {
                self.remote.remove_unix(&path);
                self.handle(&text)?
                    .cancel_streamlocal_forward(path.as_str())
                    .await
                    .map_err(|source| ForwardError::Ssh { spec: text, source })?;
            }
        }
        info!("Closed forward {spec}");
        Ok(())
    }

    /// The forwards that are up, with their counters (for `~#` and status).
    pub fn list(&self) -> Vec<(String, Arc<Counters>)> {
        self.lock()
            .iter()
            .map(|a| (a.spec.to_string(), a.counters.clone()))
            .collect()
    }

    /// The specifications of the forwards that are up.
    pub fn specs(&self) -> Vec<ForwardSpec> {
        self.lock().iter().map(|a| a.spec.clone()).collect()
    }

    /// Closes every local listener and waits for their tasks.
    pub async fn shutdown(&self) {
        self.token.cancel();
        let tasks: Vec<JoinHandle<()>> = self
            .lock()
            .drain(..)
            .filter_map(|a| match a.kind {
                ActiveKind::Local { task, .. } => Some(task),
                _ => None,
            })
            .collect();
        for t in tasks {
            let _ = t.await;
        }
    }

    /// The session remote forwards are requested on.
    fn handle(&self, spec: &str) -> Result<SharedHandle, ForwardError> {
        self.slot.current().ok_or_else(|| ForwardError::Invalid {
            spec: spec.to_owned(),
            reason: "no SSH session is up".into(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Active>> {
        // A panic while holding the lock cannot leave the list half
        // updated (every change is one push or remove): keep going.
        self.active.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn add_local(
        &self,
        text: &str,
        at: &Endpoint,
        target: Target,
        counters: &Arc<Counters>,
    ) -> Result<(ActiveKind, Added), ForwardError> {
        let listener = listen::bind(text, at, &self.opts).await?;
        let added = Added {
            local_port: listener.tcp_port(),
            ..Added::default()
        };
        let forwarder = Arc::new(Forwarder {
            session: self.slot.clone(),
            spec: text.to_owned(),
            target,
            counters: counters.clone(),
            queue_limit: self.opts.queue_limit,
        });
        let token = self.token.child_token();
        let task = tokio::spawn(local::serve(listener, forwarder, token.clone()));
        Ok((ActiveKind::Local { token, task }, added))
    }

    async fn add_remote(
        &self,
        text: &str,
        at: &Endpoint,
        connect: Option<Endpoint>,
        counters: &Arc<Counters>,
    ) -> Result<(ActiveKind, Added), ForwardError> {
        let target = RemoteTarget {
            spec: text.to_owned(),
            connect,
            counters: counters.clone(),
            queue_limit: self.opts.queue_limit,
            permit: self.opts.permit_remote_open.clone(),
        };
        let refused = |e: russh::Error, port: u16| match e {
            russh::Error::RequestDenied => ForwardError::RemoteRefused {
                spec: text.to_owned(),
                port,
            },
            source => ForwardError::Ssh {
                spec: text.to_owned(),
                source,
            },
        };
        match at {
            Endpoint::Tcp { host, port } => {
                let bind = remote_bind_host(host.as_deref()).to_owned();
                let requested = u32::from(*port);
                self.remote.add_tcp(&bind, requested, target.clone());
                let handle = self.handle(text)?;
                let granted = match handle.tcpip_forward(bind.as_str(), requested).await {
                    Ok(p) if *port == 0 => p,
                    Ok(_) => requested,
                    Err(e) => {
                        self.remote.remove_tcp(&bind, requested);
                        return Err(refused(e, *port));
                    }
                };
                if *port == 0 {
                    self.remote.add_tcp(&bind, granted, target.clone());
                    self.remote.remove_tcp(&bind, 0);
                }
                info!(
                    "Remote forward {bind}:{granted} -> {}",
                    describe(&target.connect)
                );
                let added = Added {
                    allocated_port: (*port == 0).then_some(granted),
                    ..Added::default()
                };
                Ok((
                    ActiveKind::RemoteTcp {
                        bind,
                        port: granted,
                    },
                    added,
                ))
            }
            Endpoint::Unix(path) => {
                let path = path.to_string_lossy().into_owned();
                self.remote.add_unix(&path, target);
                let handle = self.handle(text)?;
                if let Err(e) = handle.streamlocal_forward(path.as_str()).await {
                    self.remote.remove_unix(&path);
                    return Err(refused(e, 0));
                }
                Ok((ActiveKind::RemoteUnix { path }, Added::default()))
            }
        }
    }
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

/// Where a remote forward's connections go, for messages.
pub fn describe(connect: &Option<Endpoint>) -> String {
    match connect {
        Some(e) => e.to_string(),
        None => "SOCKS (dynamic)".into(),
    }
}
