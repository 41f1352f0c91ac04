//! tracing to stderr (or `-E file`): stdout carries data only.
//!
//! Levels follow ssh: default shows warnings and errors, `-q` errors only,
//! `-v` each step (info), `-vv` debug, `-vvv` trace including russh.

use std::path::Path;
use std::sync::Mutex;

use tracing_subscriber::EnvFilter;

/// ssh's LogLevel, as warren maps it onto tracing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
    Debug,
    Trace,
}

impl Verbosity {
    fn filter(self) -> &'static str {
        match self {
            Verbosity::Quiet => "error",
            Verbosity::Normal => "warn",
            Verbosity::Verbose => "warn,warren=info,warren_core=info,warren_config=info",
            Verbosity::Debug => {
                "warn,warren=debug,warren_core=debug,warren_config=debug,russh=info"
            }
            Verbosity::Trace => "trace",
        }
    }
}

/// Installs the global subscriber. Errors opening the log file are reported
/// and logging falls back to stderr.
pub fn init(verbosity: Verbosity, log_file: Option<&Path>) {
    let filter = EnvFilter::try_from_env("WARREN_LOG")
        .unwrap_or_else(|_| EnvFilter::new(verbosity.filter()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(verbosity >= Verbosity::Debug)
        .without_time()
        .with_level(verbosity >= Verbosity::Debug)
        // On a write error it would eprintln!, which panics when stderr is
        // a closed pipe; a log line that cannot be written is dropped.
        .log_internal_errors(false);
    if let Some(path) = log_file {
        match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            Ok(f) => {
                let _ = builder
                    .with_ansi(false)
                    .with_writer(Mutex::new(f))
                    .try_init();
                return;
            }
            Err(e) => eprintln!("warren: Couldn't open logfile {}: {e}", path.display()),
        }
    }
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = builder
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .try_init();
}

impl PartialOrd for Verbosity {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Verbosity {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (*self as u8).cmp(&(*other as u8))
    }
}
