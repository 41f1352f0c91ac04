//! warren: one binary for SSH tunnelling and remote access.
//!
//! The binary is thin: it parses arguments (`cli`), resolves configuration
//! through warren-config and hands plain options to warren-core.

mod cli;
mod logging;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let code = cli::dispatch(&args);
    ExitCode::from(code)
}
