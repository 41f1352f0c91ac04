//! What a supervised tunnel reports: its state, since when, how often it
//! came back, the last error, and each forward's traffic.
//!
//! The supervisor writes a [`StatusCell`]; readers (the control socket,
//! tests) take [`TunnelStatus`] snapshots, which serialize as the JSON of
//! `warren tunnel status --json`, or watch the state change.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::forward::Counters;

/// Where the supervisor is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Dialling, logging in, or setting the remote forwards up.
    Connecting,
    /// The session is up and forwarding.
    Up,
    /// Waiting before the next attempt after a transient failure.
    Backoff,
    /// Stopped for good by a permanent failure (see `last_error`).
    Failed,
    /// Stopped on request.
    Stopped,
    /// Never set by the supervisor: what a reader reports for a tunnel
    /// whose process is alive (it holds the tunnel's lock) but did not
    /// answer on its control socket in time (stopped, or overloaded).
    #[serde(rename = "not-responding")]
    NotResponding,
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            State::Connecting => "connecting",
            State::Up => "up",
            State::Backoff => "backoff",
            State::Failed => "failed",
            State::Stopped => "stopped",
            State::NotResponding => "not responding",
        })
    }
}

/// One forward's numbers, totalled over every session of the tunnel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardStatus {
    pub spec: String,
    /// Bytes from the local side into the tunnel.
    pub bytes_out: u64,
    /// Bytes from the tunnel to the local side.
    pub bytes_in: u64,
    /// Connections forwarded so far, and open now.
    pub connections: u64,
    pub open: u64,
    /// Why the forward is not working right now (a remote port the server
    /// still refuses, a probe target that refused), if it is not.
    pub error: Option<String>,
}

/// A snapshot of one tunnel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelStatus {
    pub name: String,
    pub destination: String,
    pub pid: u32,
    pub state: State,
    /// Seconds the current session has been up (`None` unless up).
    pub uptime_secs: Option<u64>,
    /// Sessions that came up after the first one.
    pub reconnects: u64,
    /// Failed connection attempts and lost sessions.
    pub faults: u64,
    pub last_error: Option<String>,
    /// Seconds since `last_error` happened.
    pub last_error_secs: Option<u64>,
    pub forwards: Vec<ForwardStatus>,
    /// Tasks alive in the tunnel process (filled in by the process).
    #[serde(default)]
    pub tasks: Option<u64>,
    /// Seconds until the next attempt, while in backoff.
    #[serde(default)]
    pub next_attempt_secs: Option<u64>,
}

struct ForwardEntry {
    spec: String,
    counters: Arc<Counters>,
    error: Option<String>,
}

struct Inner {
    up_since: Option<Instant>,
    reconnects: u64,
    faults: u64,
    sessions: u64,
    last_error: Option<(String, Instant)>,
    forwards: Vec<ForwardEntry>,
    /// When the next attempt starts, while in backoff.
    next_attempt: Option<Instant>,
}

/// The live status of one tunnel, shared by its supervisor and readers.
pub struct StatusCell {
    name: String,
    destination: String,
    state: watch::Sender<State>,
    /// Every change, none coalesced (the watch keeps only the latest):
    /// for the foreground's one line per change.
    transitions: tokio::sync::broadcast::Sender<State>,
    inner: Mutex<Inner>,
}

impl StatusCell {
    pub fn new(name: &str, destination: &str) -> StatusCell {
        StatusCell {
            name: name.to_owned(),
            destination: destination.to_owned(),
            state: watch::Sender::new(State::Connecting),
            transitions: tokio::sync::broadcast::Sender::new(64),
            inner: Mutex::new(Inner {
                up_since: None,
                reconnects: 0,
                faults: 0,
                sessions: 0,
                last_error: None,
                forwards: Vec::new(),
                next_attempt: None,
            }),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The state now.
    pub fn state(&self) -> State {
        *self.state.borrow()
    }

    /// Follows state changes.
    pub fn watch(&self) -> watch::Receiver<State> {
        self.state.subscribe()
    }

    /// Every state change from now on, in order (a reader more than 64
    /// behind loses the oldest).
    pub fn transitions(&self) -> tokio::sync::broadcast::Receiver<State> {
        self.transitions.subscribe()
    }

    /// A snapshot for status output.
    pub fn snapshot(&self) -> TunnelStatus {
        let inner = self.lock();
        let state = self.state();
        let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        TunnelStatus {
            name: self.name.clone(),
            destination: self.destination.clone(),
            pid: std::process::id(),
            state,
            uptime_secs: inner
                .up_since
                .filter(|_| state == State::Up)
                .map(|t| t.elapsed().as_secs()),
            reconnects: inner.reconnects,
            faults: inner.faults,
            last_error: inner.last_error.as_ref().map(|(e, _)| e.clone()),
            last_error_secs: inner
                .last_error
                .as_ref()
                .map(|(_, t)| t.elapsed().as_secs()),
            forwards: inner
                .forwards
                .iter()
                .map(|f| ForwardStatus {
                    spec: f.spec.clone(),
                    bytes_out: load(&f.counters.sent),
                    bytes_in: load(&f.counters.received),
                    connections: load(&f.counters.connections),
                    open: load(&f.counters.open),
                    error: f.error.clone(),
                })
                .collect(),
            tasks: None,
            next_attempt_secs: inner
                .next_attempt
                .filter(|_| state == State::Backoff)
                // Rounded up: "in 0s" would read as "now".
                .map(|t| {
                    t.saturating_duration_since(Instant::now())
                        .as_secs_f64()
                        .ceil() as u64
                }),
        }
    }

    pub(crate) fn add_forward(&self, spec: String, counters: Arc<Counters>) {
        self.lock().forwards.push(ForwardEntry {
            spec,
            counters,
            error: None,
        });
    }

    pub(crate) fn forward_error(&self, spec: &str, error: Option<String>) {
        if let Some(f) = self.lock().forwards.iter_mut().find(|f| f.spec == spec) {
            f.error = error;
        }
    }

    pub(crate) fn set(&self, state: State) {
        self.state.send_replace(state);
        // No receiver (no foreground) is not an error.
        let _ = self.transitions.send(state);
    }

    /// Waiting `delay` before the next attempt.
    pub(crate) fn backoff(&self, delay: Duration) {
        self.lock().next_attempt = Some(Instant::now() + delay);
        self.set(State::Backoff);
    }

    /// A session came up.
    pub(crate) fn up(&self) {
        {
            let mut inner = self.lock();
            if inner.sessions > 0 {
                inner.reconnects += 1;
            }
            inner.sessions += 1;
            inner.up_since = Some(Instant::now());
        }
        self.set(State::Up);
    }

    /// An attempt failed or a session was lost.
    pub(crate) fn fault(&self, error: String) {
        let mut inner = self.lock();
        inner.faults += 1;
        inner.up_since = None;
        inner.last_error = Some((error, Instant::now()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Every update is a plain field write: a panic elsewhere cannot
        // leave it half done.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}
