//! warren's engine: everything that talks to the network or the terminal.
//!
//! The binary turns what the user typed plus ssh_config into the plain
//! option structs here (`session::ConnectOptions`); nothing in this crate
//! reads ssh_config itself, so every behaviour is testable with values.

pub mod agent;
pub mod algorithms;
pub mod exec;
pub mod forward;
pub mod keys;
pub mod mux;
pub mod prompt;
pub mod secret;
pub mod session;
pub mod terminal;
pub mod tunnel;
