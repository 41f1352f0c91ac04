//! Port forwarding: local (-L), remote (-R) and dynamic (-D, SOCKS), over
//! TCP and unix sockets.
//!
//! One task per listener, one task per forwarded connection, each moving
//! bytes with [`pump`]; listeners end when the session's token is
//! cancelled.

pub mod listen;
pub mod local;
pub mod manage;
pub mod pump;
pub mod remote;
pub mod slot;
pub mod socks;
pub mod stdio;

use std::path::PathBuf;

pub use pump::Counters;

/// Bytes one forwarded connection may queue toward a local reader that
/// is slower than the tunnel before it stops taking data off its channel.
/// The channel's window then closes (the client's windows re-open only as
/// data is taken, russh patch 5 in `vendor/russh`), so the queue only needs
/// to batch writes; a bigger one only kept more packet memory live (16 MiB
/// made a chacha20 download fault 20-47 thousand pages per GB).
pub const QUEUE_LIMIT: usize = 1024 * 1024;

/// The same for the channels of warren's server. russh's server side still
/// re-opens windows as data arrives and waits in its session loop when a
/// channel's queue is full, so here the queue must absorb what the peer
/// keeps sending to a stalled reader, or every channel waits on it.
pub const SERVER_QUEUE_LIMIT: usize = 16 * 1024 * 1024;

/// How long a SOCKS client may take to say where it wants to go.
pub const SOCKS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Where a forward listens or connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `bind` is `None` for "the default address" (loopback unless
    /// GatewayPorts).
    Tcp {
        host: Option<String>,
        port: u16,
    },
    Unix(PathBuf),
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Tcp { host: None, port } => write!(f, "{port}"),
            Endpoint::Tcp {
                host: Some(h),
                port,
            } if h.contains(':') => write!(f, "[{h}]:{port}"),
            Endpoint::Tcp {
                host: Some(h),
                port,
            } => write!(f, "{h}:{port}"),
            Endpoint::Unix(p) => write!(f, "{}", p.display()),
        }
    }
}

/// One forward as the user asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardSpec {
    /// `-L listen:connect`: listen here, connect from the server.
    Local { listen: Endpoint, connect: Endpoint },
    /// `-D listen`: a SOCKS proxy here, connections made by the server.
    Dynamic { listen: Endpoint },
    /// `-R listen:connect`: the server listens, we connect here. `connect`
    /// `None` is `-R port`: a SOCKS proxy served by us on the server's port.
    Remote {
        listen: Endpoint,
        connect: Option<Endpoint>,
    },
}

impl std::fmt::Display for ForwardSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ForwardSpec::Local { listen, connect } => write!(f, "-L {listen}:{connect}"),
            ForwardSpec::Dynamic { listen } => write!(f, "-D {listen}"),
            ForwardSpec::Remote {
                listen,
                connect: Some(c),
            } => write!(f, "-R {listen}:{c}"),
            ForwardSpec::Remote {
                listen,
                connect: None,
            } => write!(f, "-R {listen}"),
        }
    }
}

/// Forwarding settings from ssh_config.
#[derive(Debug, Clone)]
pub struct ForwardOptions {
    pub gateway_ports: bool,
    pub exit_on_forward_failure: bool,
    pub stream_local_bind_unlink: bool,
    pub stream_local_bind_mask: u32,
    /// Bytes a connection may queue toward a slow local reader before its
    /// channel is paused.
    pub queue_limit: usize,
    /// PermitRemoteOpen: where a `-R port` SOCKS proxy may connect (empty:
    /// anywhere).
    pub permit_remote_open: Vec<String>,
}

impl Default for ForwardOptions {
    fn default() -> Self {
        ForwardOptions {
            gateway_ports: false,
            exit_on_forward_failure: false,
            stream_local_bind_unlink: false,
            stream_local_bind_mask: 0o177,
            queue_limit: QUEUE_LIMIT,
            permit_remote_open: Vec::new(),
        }
    }
}

/// A forward that could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("{spec}: cannot listen on {addr}{holder}", holder = holder.as_deref().map(|h| format!(" (held by {h})")).unwrap_or_default())]
    Bind {
        spec: String,
        addr: String,
        source: std::io::Error,
        holder: Option<String>,
    },
    #[error("{spec}: {reason}")]
    Invalid { spec: String, reason: String },
    #[error("{spec}: remote port forwarding failed for listen port {port}: the server refused it")]
    RemoteRefused { spec: String, port: u16 },
    #[error("{spec}")]
    Ssh { spec: String, source: russh::Error },
}
