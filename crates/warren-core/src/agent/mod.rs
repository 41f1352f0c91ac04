//! An ssh-agent: holds keys in memory and signs with them for clients on a
//! unix socket, speaking OpenSSH's agent protocol so `ssh`, `ssh-add` and
//! warren use it interchangeably with OpenSSH's `ssh-agent`; and a client
//! for any such agent.
//!
//! Design choice: the protocol is handled here rather than by
//! `russh::keys::agent::server`, which does not fit an ssh-agent
//! replacement: it drops key comments (`ssh-add -l` would show none),
//! refuses certificates, keeps keys in a `HashMap` (listing order changes
//! from call to call), has no default lifetime, no peer credential check
//! and no way to confirm through SSH_ASKPASS. Its client likewise sends
//! empty comments and no certificates. The cryptography stays ssh-key's.

mod client;
pub mod proto;
mod server;
mod socket;

pub use client::{AgentClient, AgentError, ListedIdentity};
pub use proto::{Constraints, Identity};
pub use server::{Agent, AgentOptions, Confirm, askpass_confirm, serve};
pub use socket::{AgentSocket, peer_allowed};
