//! tracing to stderr (or `-E file`): stdout carries data only.
//!
//! Levels follow ssh: default shows warnings and errors, `-q` errors only,
//! `-v` each step (info), `-vv` debug, `-vvv` trace including russh.

use std::path::Path;
use std::sync::Mutex;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;

/// Sets the global filter from a filter string; false if it did not take.
type SetFilter = Box<dyn Fn(&str) -> bool + Send + Sync>;

/// The level in force and how to change it (`~v` / `~V`).
static LEVEL: Mutex<Option<(Verbosity, SetFilter)>> = Mutex::new(None);

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
    /// ssh's name for the level (`LogLevel`).
    fn name(self) -> &'static str {
        match self {
            Verbosity::Quiet => "QUIET",
            Verbosity::Normal => "INFO",
            Verbosity::Verbose => "VERBOSE",
            Verbosity::Debug => "DEBUG1",
            Verbosity::Trace => "DEBUG3",
        }
    }

    fn step(self, more: bool) -> Verbosity {
        use Verbosity::*;
        match (self, more) {
            (Quiet, true) | (Verbose, false) => Normal,
            (Normal, true) | (Debug, false) => Verbose,
            (Verbose, true) | (Trace, false) => Debug,
            (Debug | Trace, true) => Trace,
            (Quiet | Normal, false) => Quiet,
        }
    }

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
    install(verbosity, log_file, ());
}

/// [`init`] with each line starting with the local time (a long-running
/// foreground process, such as `warren tunnel up`).
pub fn init_timed(verbosity: Verbosity, log_file: Option<&Path>) {
    install(verbosity, log_file, LocalTime);
}

/// Local time to the second, as `warren tunnel up`'s own lines show it.
struct LocalTime;

impl FormatTime for LocalTime {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        write!(w, "{}", chrono::Local::now().format("%Y-%m-%d %H:%M:%S"))
    }
}

fn install<T>(verbosity: Verbosity, log_file: Option<&Path>, timer: T)
where
    T: FormatTime + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_env("WARREN_LOG")
        .unwrap_or_else(|_| EnvFilter::new(verbosity.filter()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(verbosity >= Verbosity::Debug)
        .with_timer(timer)
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
                let builder = builder
                    .with_ansi(false)
                    .with_writer(Mutex::new(f))
                    .with_filter_reloading();
                let handle = builder.reload_handle();
                if builder.try_init().is_ok() {
                    remember(
                        verbosity,
                        Box::new(move |f| handle.reload(EnvFilter::new(f)).is_ok()),
                    );
                }
                return;
            }
            Err(e) => eprintln!("warren: Couldn't open logfile {}: {e}", path.display()),
        }
    }
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = builder
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .with_filter_reloading();
    let handle = builder.reload_handle();
    if builder.try_init().is_ok() {
        remember(
            verbosity,
            Box::new(move |f| handle.reload(EnvFilter::new(f)).is_ok()),
        );
    }
}

fn remember(verbosity: Verbosity, set: SetFilter) {
    if let Ok(mut level) = LEVEL.lock() {
        *level = Some((verbosity, set));
    }
}

/// Raises (`more`) or lowers the log level one step, as ssh's `~v` / `~V`;
/// returns the level now in force, by ssh's name for it.
pub fn step(more: bool) -> Option<String> {
    let mut level = LEVEL.lock().ok()?;
    let (current, set) = level.as_mut()?;
    let next = current.step(more);
    if set(next.filter()) {
        *current = next;
    }
    Some(current.name().to_owned())
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
