//! warren's embedded SSH server: a rootless server on russh that runs as
//! the invoking user, for machines with no sshd to hand (`warren serve`)
//! and for in-process use (`warren demo` starts two on free loopback ports
//! with throwaway keys).
//!
//! ```no_run
//! # async fn demo() -> Result<(), warren_server::ServerError> {
//! use warren_server::{AuthorizedKeys, Server, ServerConfig, hostkey};
//!
//! let config = ServerConfig::new(
//!     "127.0.0.1:0".parse().unwrap(),
//!     vec![hostkey::generate_ephemeral()],
//!     AuthorizedKeys::Text("ssh-ed25519 AAAA... me".into()),
//! );
//! let server = Server::bind(config).await?;
//! println!("{} {}", server.local_addr(), server.host_key_fingerprint());
//! let shutdown = server.shutdown_handle();
//! let running = tokio::spawn(server.run());
//! // ... connect clients ...
//! shutdown.shutdown();
//! # let _ = running.await;
//! # Ok(()) }
//! ```
//!
//! The design choice a reader must know: russh calls [`handler`]'s
//! callbacks on the connection's own task, so they only decide and reply;
//! every program, forward and SFTP session runs in its own task that owns
//! its channel, and every task hangs off the connection's cancellation
//! token, itself a child of the server's.

mod agent;
mod auth;
pub mod authorized_keys;
mod config;
mod forward;
mod handler;
pub mod hostkey;
mod penalties;
mod process;
mod server;
mod session;
mod sftp;
mod startups;

pub use config::{AuthorizedKeys, Login, ServerConfig};
pub use penalties::{NetBlockSize, Overflow, PenaltyConfig, check_exempt_list};
pub use server::{Server, ShutdownHandle};
pub use startups::MaxStartups;

use std::path::PathBuf;

/// What can stop the server from starting or running.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("neither XDG_CONFIG_HOME nor HOME is set: give the host key's path with --host-key")]
    NoConfigDir,
    #[error("cannot read host key {path}")]
    HostKeyRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("host key {path} is not an OpenSSH private key: {reason}")]
    HostKeyParse { path: PathBuf, reason: String },
    #[error("cannot write a new host key to {path}")]
    HostKeyWrite {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no host key configured")]
    NoHostKey,
    #[error("accepting connections on {addr} failed")]
    Accept {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

impl ServerError {
    /// One line telling the user what to do, where there is one.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            ServerError::Bind { .. } => {
                Some("is another server using that port? pick another with --listen")
            }
            ServerError::HostKeyWrite { .. } => Some("choose a writable path with --host-key"),
            _ => None,
        }
    }
}
