//! The supervisor loop of one tunnel: connect, set the remote forwards up,
//! serve until the session is lost, back off, connect again.
//!
//! A session counts as lost when its connection closes (russh's keepalives,
//! ServerAliveInterval x ServerAliveCountMax, end a session whose peer went
//! silent) or when an end-to-end probe fails: every probe interval a channel
//! is opened to each -L target (the path a real connection takes: session,
//! server, target), or, without -L forwards, a keepalive is sent and its
//! reply awaited. A probe that times out or breaks on the session is a
//! fault ("process alive, tunnel dead"); a target that the server reports
//! as refusing is recorded on its forward but is no reason to reconnect.
//!
//! Errors are classified by [`SessionError::is_transient`]: network
//! trouble and timeouts back off and retry (forever), while a host key
//! mismatch, refused authentication or a configuration error stop the
//! tunnel in state `failed` with the reason. Remote forwards the server
//! refuses right after a reconnect (it may still hold the port for the
//! lost session) are retried on the live session with their own backoff.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use warren_wire::Chain;

use super::backoff::{Backoff, BackoffPolicy};
use super::status::{State, StatusCell};
use crate::forward::local;
use crate::forward::manage::Forwards;
use crate::forward::slot::{SessionSlot, SharedHandle};
use crate::forward::{Counters, Endpoint, ForwardError, ForwardOptions, ForwardSpec};
use crate::prompt::Prompter;
use crate::session::{self, Hop, Session, SessionError};

/// Timings of the supervisor.
#[derive(Debug, Clone)]
pub struct TunnelOptions {
    pub backoff: BackoffPolicy,
    /// How long a connection accepted while the session is down waits for
    /// the next one.
    pub wait_for_session: Duration,
    /// Bound on one whole connection attempt (dial, handshake, login, every
    /// jump host): a hung connect never stalls the tunnel.
    pub connect_timeout: Duration,
    /// Time between end-to-end probes (`None`: no probes).
    pub probe_interval: Option<Duration>,
    /// How long one probe may take before it counts as failed.
    pub probe_timeout: Duration,
    /// Spacing of retries for remote forwards the server refused.
    pub remote_retry: BackoffPolicy,
}

impl Default for TunnelOptions {
    fn default() -> Self {
        TunnelOptions {
            backoff: BackoffPolicy::default(),
            wait_for_session: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(60),
            probe_interval: Some(Duration::from_secs(30)),
            probe_timeout: Duration::from_secs(10),
            remote_retry: BackoffPolicy {
                initial: Duration::from_millis(500),
                max: Duration::from_secs(30),
            },
        }
    }
}

/// What to keep up, and how.
#[derive(Debug, Clone)]
pub struct TunnelSpec {
    pub name: String,
    pub hop: Hop,
    pub forwards: Vec<ForwardSpec>,
    pub forward_options: ForwardOptions,
    pub options: TunnelOptions,
}

/// Why a tunnel stopped for good.
#[derive(Debug, thiserror::Error)]
pub enum TunnelError {
    #[error(transparent)]
    Forward(#[from] ForwardError),
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error(
        "tunnel {0} has no forwards: give -L, -R or -D, or LocalForward / RemoteForward / DynamicForward for the host in ~/.ssh/config"
    )]
    NoForwards(String),
}

impl TunnelError {
    /// One line telling the user what to do, where there is one.
    pub fn hint(&self) -> Option<String> {
        match self {
            TunnelError::Session(e) => e.hint(),
            TunnelError::Forward(_) | TunnelError::NoForwards(_) => None,
        }
    }
}

type ConnectFuture = Pin<Box<dyn Future<Output = Result<Session, SessionError>> + Send>>;
type Connector = Arc<dyn Fn() -> ConnectFuture + Send + Sync>;

/// A tunnel whose local listeners are bound; [`Tunnel::run`] keeps it up.
pub struct Tunnel {
    spec: TunnelSpec,
    connect: Connector,
    slot: SessionSlot,
    locals: Forwards,
    status: Arc<StatusCell>,
    remote_counters: Vec<(ForwardSpec, Arc<Counters>)>,
    token: CancellationToken,
}

/// How one session ended.
enum End {
    Cancelled,
    /// Lost, and whether it had worked end to end first.
    Lost {
        reason: String,
        healthy: bool,
    },
}

/// Without probes, a session that lasted this long counts as healthy.
const HEALTHY_WITHOUT_PROBES: Duration = Duration::from_secs(10);

impl Tunnel {
    /// Binds the local listeners of `spec` (a port in use is an error
    /// here, before any connection); the tunnel ends when `token` is
    /// cancelled.
    pub async fn bind(
        spec: TunnelSpec,
        prompter: Arc<dyn Prompter>,
        token: CancellationToken,
    ) -> Result<Tunnel, TunnelError> {
        let hop = Arc::new(spec.hop.clone());
        let connect: Connector = Arc::new(move || {
            let (hop, prompter) = (hop.clone(), prompter.clone());
            Box::pin(async move { session::connect_hop(&hop, prompter).await })
        });
        Tunnel::bind_with(spec, connect, token).await
    }

    async fn bind_with(
        spec: TunnelSpec,
        connect: Connector,
        token: CancellationToken,
    ) -> Result<Tunnel, TunnelError> {
        if spec.forwards.is_empty() {
            return Err(TunnelError::NoForwards(spec.name));
        }
        let status = Arc::new(StatusCell::new(&spec.name, &spec.hop.opts.host));
        let slot = SessionSlot::waiting(spec.options.wait_for_session);
        let locals = Forwards::over_slot(
            slot.clone(),
            Arc::default(),
            spec.forward_options.clone(),
            token.child_token(),
        );
        let mut remote_counters = Vec::new();
        for f in &spec.forwards {
            let counters = Arc::new(Counters::default());
            status.add_forward(f.to_string(), counters.clone());
            match f {
                ForwardSpec::Remote { .. } => remote_counters.push((f.clone(), counters)),
                _ => {
                    if let Err(e) = locals.add_counted(f, counters).await {
                        locals.shutdown().await;
                        return Err(e.into());
                    }
                }
            }
        }
        Ok(Tunnel {
            spec,
            connect,
            slot,
            locals,
            status,
            remote_counters,
            token,
        })
    }

    /// The live status, for the control socket.
    pub fn status(&self) -> Arc<StatusCell> {
        self.status.clone()
    }

    /// Keeps the tunnel up until the token is cancelled (`Ok`) or a
    /// permanent failure (`Err`, state `failed`). The listeners close on
    /// return.
    pub async fn run(self) -> Result<(), TunnelError> {
        let result = self.supervise().await;
        self.slot.set(None);
        self.locals.shutdown().await;
        if result.is_ok() {
            self.status.set(State::Stopped);
        }
        result
    }

    async fn supervise(&self) -> Result<(), TunnelError> {
        let opts = &self.spec.options;
        let mut backoff = Backoff::new(opts.backoff);
        loop {
            self.status.set(State::Connecting);
            let attempt = tokio::select! {
                r = tokio::time::timeout(opts.connect_timeout, (self.connect)()) => r,
                () = self.token.cancelled() => return Ok(()),
            };
            let session = match attempt {
                Ok(Ok(s)) => s,
                Ok(Err(e)) if !e.is_transient() => {
                    // The error itself is the caller's to report: said
                    // here too, a host-key warning would be printed twice.
                    warn!("tunnel {}: not retrying", self.spec.name);
                    self.status.fault(Chain(&e).to_string());
                    self.status.set(State::Failed);
                    return Err(e.into());
                }
                Ok(Err(e)) => {
                    self.lost(Chain(&e).to_string());
                    if !self.back_off(&mut backoff).await {
                        return Ok(());
                    }
                    continue;
                }
                Err(_) => {
                    self.lost(format!(
                        "connecting to {} took longer than {:?}",
                        self.spec.hop.opts.host, opts.connect_timeout
                    ));
                    if !self.back_off(&mut backoff).await {
                        return Ok(());
                    }
                    continue;
                }
            };
            match self.serve(session).await {
                End::Cancelled => return Ok(()),
                // A session that worked is retried at once, with a fresh
                // backoff; one that failed early waits like a failed attempt
                // (a server that drops every session must not be hammered).
                End::Lost {
                    reason,
                    healthy: true,
                } => {
                    self.lost(reason);
                    backoff.reset();
                }
                End::Lost { reason, .. } => {
                    self.lost(reason);
                    if !self.back_off(&mut backoff).await {
                        return Ok(());
                    }
                }
            }
        }
    }

    fn lost(&self, reason: String) {
        warn!("tunnel {}: {reason}; reconnecting", self.spec.name);
        self.status.fault(reason);
    }

    /// Waits out the next backoff delay; `false` if cancelled meanwhile.
    async fn back_off(&self, backoff: &mut Backoff) -> bool {
        let delay = backoff.next_delay();
        self.status.backoff(delay);
        info!("tunnel {}: next attempt in {delay:?}", self.spec.name);
        tokio::select! {
            () = tokio::time::sleep(delay) => true,
            () = self.token.cancelled() => false,
        }
    }

    /// Runs one session until it is lost or the tunnel is stopped.
    async fn serve(&self, session: Session) -> End {
        let handle = session.shared_handle();
        let remotes = Forwards::new(
            &session,
            self.spec.forward_options.clone(),
            self.token.child_token(),
        );
        let mut pending: Vec<&(ForwardSpec, Arc<Counters>)> = self.remote_counters.iter().collect();
        self.request_remotes(&remotes, &mut pending).await;
        self.slot.set(Some(handle.clone()));
        self.status.up();
        info!("tunnel {}: up", self.spec.name);
        let opts = &self.spec.options;
        let mut remote_retry = Backoff::new(opts.remote_retry);
        let mut retry_at = tokio::time::Instant::now() + remote_retry.next_delay();
        let mut probe_at = tokio::time::Instant::now();
        let since = tokio::time::Instant::now();
        let mut healthy = false;
        let lost = |reason: String, healthy: bool| End::Lost {
            reason,
            healthy: healthy
                || (opts.probe_interval.is_none() && since.elapsed() >= HEALTHY_WITHOUT_PROBES),
        };
        let end = loop {
            tokio::select! {
                () = self.token.cancelled() => break End::Cancelled,
                () = crate::session::closed(&handle) => break lost(format!(
                    "the connection to {} was lost", self.spec.hop.opts.host
                ), healthy),
                r = probe_after(self, &handle, probe_at), if opts.probe_interval.is_some() => {
                    if let Err(reason) = r {
                        break lost(format!("probe failed: {reason}"), healthy);
                    }
                    healthy = true;
                    probe_at = tokio::time::Instant::now()
                        + opts.probe_interval.unwrap_or(Duration::MAX / 4);
                }
                () = tokio::time::sleep_until(retry_at), if !pending.is_empty() => {
                    self.request_remotes(&remotes, &mut pending).await;
                    retry_at = tokio::time::Instant::now() + remote_retry.next_delay();
                }
            }
        };
        self.slot.set(None);
        remotes.shutdown().await;
        // A frozen peer never answers: do not wait on it.
        let _ = tokio::time::timeout(Duration::from_secs(1), session.close()).await;
        drop(session);
        end
    }

    /// Asks for each pending remote forward; those the server still
    /// refuses stay pending (with the reason on their status).
    async fn request_remotes(
        &self,
        remotes: &Forwards,
        pending: &mut Vec<&(ForwardSpec, Arc<Counters>)>,
    ) {
        let mut still = Vec::new();
        for entry in pending.drain(..) {
            let (spec, counters) = entry;
            let text = spec.to_string();
            match remotes.add_counted(spec, counters.clone()).await {
                Ok(_) => self.status.forward_error(&text, None),
                Err(e) => {
                    let e = Chain(&e).to_string();
                    warn!("tunnel {}: {e}; retrying", self.spec.name);
                    self.status.forward_error(&text, Some(e));
                    still.push(entry);
                }
            }
        }
        *pending = still;
    }

    /// One end-to-end check of the session.
    async fn probe(&self, handle: &SharedHandle) -> Result<(), String> {
        let timeout = self.spec.options.probe_timeout;
        let targets: Vec<(String, &Endpoint)> = self
            .spec
            .forwards
            .iter()
            .filter_map(|f| match f {
                ForwardSpec::Local { connect, .. } => Some((f.to_string(), connect)),
                _ => None,
            })
            .collect();
        if targets.is_empty() {
            return match tokio::time::timeout(timeout, handle.send_ping()).await {
                Ok(Ok(())) if !handle.is_closed() => Ok(()),
                Ok(_) => Err("the session closed".into()),
                Err(_) => Err(format!("no keepalive reply within {timeout:?}")),
            };
        }
        for (spec, target) in targets {
            let opened =
                tokio::time::timeout(timeout, local::open(handle, target, "127.0.0.1", 0)).await;
            match opened {
                Ok(Ok(channel)) => {
                    self.status.forward_error(&spec, None);
                    let _ = channel.close().await;
                }
                Ok(Err(russh::Error::ChannelOpenFailure(why))) => {
                    let e = format!("the server could not reach {target}: {why:?}");
                    warn!("tunnel {}: {spec}: {e}", self.spec.name);
                    self.status.forward_error(&spec, Some(e));
                }
                Ok(Err(e)) => return Err(format!("{spec}: {e}")),
                Err(_) => return Err(format!("{spec}: no answer within {timeout:?}")),
            }
        }
        Ok(())
    }
}

async fn probe_after(
    tunnel: &Tunnel,
    handle: &SharedHandle,
    at: tokio::time::Instant,
) -> Result<(), String> {
    tokio::time::sleep_until(at).await;
    tunnel.probe(handle).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{ConnectCause, ConnectOptions, Route};
    use std::sync::atomic::{AtomicU32, Ordering};
    use tokio::time::Instant;

    fn spec(options: TunnelOptions) -> TunnelSpec {
        TunnelSpec {
            name: "t".into(),
            hop: Hop {
                opts: ConnectOptions::new("127.0.0.1", 22, "u"),
                route: Route::Direct,
            },
            forwards: vec![ForwardSpec::Local {
                listen: Endpoint::Tcp {
                    host: Some("127.0.0.1".into()),
                    port: 0,
                },
                connect: Endpoint::Tcp {
                    host: None,
                    port: 1,
                },
            }],
            forward_options: ForwardOptions::default(),
            options,
        }
    }

    fn refused() -> SessionError {
        SessionError::Connect {
            host: "127.0.0.1".into(),
            port: 22,
            cause: ConnectCause::Refused,
        }
    }

    /// Fails transiently `n` times, then permanently; records when.
    fn failing(n: u32, at: Arc<std::sync::Mutex<Vec<Instant>>>) -> Connector {
        let calls = Arc::new(AtomicU32::new(0));
        Arc::new(move || {
            let (calls, at) = (calls.clone(), at.clone());
            Box::pin(async move {
                at.lock().unwrap().push(Instant::now());
                if calls.fetch_add(1, Ordering::SeqCst) < n {
                    Err(refused())
                } else {
                    Err(SessionError::Auth(crate::session::AuthError::Denied {
                        user: "u".into(),
                        host: "h".into(),
                        offered: "publickey".into(),
                        tried: Vec::new(),
                        notes: Default::default(),
                    }))
                }
            })
        })
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_back_off_then_a_permanent_one_stops() {
        let at = Arc::new(std::sync::Mutex::new(Vec::new()));
        let options = TunnelOptions {
            backoff: BackoffPolicy {
                initial: Duration::from_secs(1),
                max: Duration::from_secs(4),
            },
            ..TunnelOptions::default()
        };
        let tunnel = Tunnel::bind_with(
            spec(options),
            failing(5, at.clone()),
            CancellationToken::new(),
        )
        .await
        .unwrap();
        let status = tunnel.status();
        let err = tunnel.run().await.unwrap_err();
        assert!(err.to_string().contains("Permission denied"), "{err}");
        assert_eq!(status.state(), State::Failed);
        let snap = status.snapshot();
        assert_eq!(snap.faults, 6);
        assert_eq!(snap.reconnects, 0);
        assert!(snap.last_error.unwrap().contains("Permission denied"));
        let at = at.lock().unwrap();
        let gaps: Vec<Duration> = at.windows(2).map(|w| w[1] - w[0]).collect();
        assert_eq!(gaps.len(), 5);
        // Nominal delays 1, 2, 4, 4, 4 s, each jittered into its upper half.
        for (gap, nominal) in gaps.iter().zip([1, 2, 4, 4, 4]) {
            let nominal = Duration::from_secs(nominal);
            assert!(
                *gap >= nominal / 2 && *gap <= nominal,
                "{gap:?} vs {nominal:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn waits_in_backoff_and_stops_when_cancelled() {
        let at = Arc::new(std::sync::Mutex::new(Vec::new()));
        let token = CancellationToken::new();
        let options = TunnelOptions {
            backoff: BackoffPolicy {
                initial: Duration::from_secs(10),
                max: Duration::from_secs(10),
            },
            ..TunnelOptions::default()
        };
        let tunnel = Tunnel::bind_with(spec(options), failing(u32::MAX, at.clone()), token.clone())
            .await
            .unwrap();
        let status = tunnel.status();
        let mut states = status.watch();
        let run = tokio::spawn(tunnel.run());
        states.wait_for(|s| *s == State::Backoff).await.unwrap();
        assert_eq!(status.snapshot().faults, 1);
        assert!(
            status
                .snapshot()
                .last_error
                .unwrap()
                .contains("Connection refused")
        );
        token.cancel();
        assert!(run.await.unwrap().is_ok());
        assert_eq!(status.state(), State::Stopped);
        assert_eq!(at.lock().unwrap().len(), 1, "no attempt after the stop");
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_connect_is_abandoned_at_the_connect_timeout() {
        let connect: Connector = Arc::new(|| Box::pin(std::future::pending()));
        let options = TunnelOptions {
            connect_timeout: Duration::from_secs(20),
            ..TunnelOptions::default()
        };
        let token = CancellationToken::new();
        let tunnel = Tunnel::bind_with(spec(options), connect, token.clone())
            .await
            .unwrap();
        let status = tunnel.status();
        let mut states = status.watch();
        let started = Instant::now();
        let run = tokio::spawn(tunnel.run());
        states.wait_for(|s| *s == State::Backoff).await.unwrap();
        assert_eq!(started.elapsed(), Duration::from_secs(20));
        assert!(
            status
                .snapshot()
                .last_error
                .unwrap()
                .contains("took longer than")
        );
        token.cancel();
        run.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_tunnel_needs_forwards() {
        let mut s = spec(TunnelOptions::default());
        s.forwards.clear();
        let r = Tunnel::bind_with(s, failing(0, Arc::default()), CancellationToken::new()).await;
        assert!(matches!(r, Err(TunnelError::NoForwards(_))));
    }
}
