//! warren's engine: everything that talks to the network or the terminal.
//!
//! The binary parses what the user typed; `session::resolve` runs it
//! through ssh_config (warren-config, pure) into the plain option structs
//! the engine takes (`session::ConnectOptions`, `session::Hop`). Nothing
//! past `resolve` reads ssh_config, so every behaviour is testable with
//! values.

pub mod agent;
pub mod algorithms;
pub mod delta;
pub mod diagnose;
pub mod exec;
pub mod forward;
pub mod keys;
pub mod mux;
pub mod prompt;
pub mod secret;
pub mod session;
pub mod terminal;
pub mod transfer;
pub mod tunnel;
