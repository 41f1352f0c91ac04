//! Supervised tunnels: a set of forwards kept up over one SSH destination
//! for as long as the process runs, across lost connections.
//!
//! Design choice: the local listeners (-L, -D) are bound once, before the
//! first connection, and never closed while the tunnel runs; they take
//! their session from a [`crate::forward::slot::SessionSlot`] that the
//! [`supervisor`] empties when a session dies and fills when the next is
//! up, so a client connecting during an outage waits (bounded) instead of
//! being refused. Remote forwards (-R) belong to a session and are asked
//! for again on each one.

pub mod backoff;
pub mod status;
pub mod supervisor;

pub use backoff::{Backoff, BackoffPolicy};
pub use status::{ForwardStatus, State, StatusCell, TunnelStatus};
pub use supervisor::{Tunnel, TunnelError, TunnelOptions, TunnelSpec};
