//! What the binary says on stdout and stderr: the one error report every
//! subcommand ends with, and print macros that never panic.
//!
//! Design choice: `println!`, `print!`, `eprintln!` and `eprint!` are
//! redefined here (main.rs declares this module first, so they shadow std's
//! in every module of the binary). std's versions panic when the stream is
//! a pipe nobody reads (`warren ... 2>&1 | head -1`); ours drop what cannot
//! be written, as ssh does.

use std::fmt;
use std::io::Write as _;

use warren_core::agent::AgentError;
use warren_core::keys::PermissionError;
use warren_core::session::{AuthError, HostKeyError, SessionError};
use warren_core::tunnel::TunnelError;
use warren_server::ServerError;
use warren_wire::Chain;

/// `print!` to stdout; a closed stdout drops the text.
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!($($arg)*))
    };
}

/// `println!` to stdout; a closed stdout drops the text.
macro_rules! println {
    () => {
        $crate::output::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprint!` to stderr; a closed stderr drops the text.
macro_rules! eprint {
    ($($arg:tt)*) => {
        $crate::output::write_stderr(format_args!($($arg)*))
    };
}

/// `eprintln!` to stderr; a closed stderr drops the text.
macro_rules! eprintln {
    () => {
        $crate::output::write_stderr(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::write_stderr(format_args!("{}\n", format_args!($($arg)*)))
    };
}

pub fn write_stdout(args: fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if out.write_fmt(args).is_ok() {
        let _ = out.flush();
    }
}

pub fn write_stderr(args: fmt::Arguments<'_>) {
    let _ = std::io::stderr().lock().write_fmt(args);
}

/// Reports a failure once: `PREFIX: what happened: why`, then a hint line
/// where one exists. Returns `code`, the exit status the caller's tool
/// uses for failures (255 for ssh's connection failures, 1 for
/// ssh-keygen's, ...). A remote command's output going to a closed pipe
/// ends the run silently, as with ssh.
pub fn report(prefix: &str, err: &anyhow::Error, code: u8) -> u8 {
    report_then(prefix, err, code, None)
}

/// [`report`] for a connection to `destination`: where `warren doctor`
/// would tell more (the network, the banner, the login), the hint ends
/// with the command that runs it.
pub fn report_suggesting_doctor(
    prefix: &str,
    err: &anyhow::Error,
    code: u8,
    destination: Option<&str>,
) -> u8 {
    let doctor = destination.filter(|_| doctor_would_help(err)).map(|d| {
        format!(
            "`warren doctor {}` checks each stage",
            warren_wire::escape_str(&warren_core::diagnose::shell_quote(d))
        )
    });
    report_then(prefix, err, code, doctor)
}

/// Failures the doctor explains further: name resolution, TCP, a non-SSH
/// service, jump hosts, authentication.
fn doctor_would_help(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        matches!(
            e.downcast_ref::<SessionError>(),
            Some(
                SessionError::Resolve { .. }
                    | SessionError::Connect { .. }
                    | SessionError::Auth(_)
                    | SessionError::Jump { .. }
                    | SessionError::Protocol { .. }
            )
        ) || e.downcast_ref::<AuthError>().is_some()
    })
}

fn report_then(prefix: &str, err: &anyhow::Error, code: u8, doctor: Option<String>) -> u8 {
    if is_closed_output(err) {
        return code;
    }
    let err: &(dyn std::error::Error + 'static) = err.as_ref();
    if prefix.is_empty() {
        eprintln!("{}", Chain(err));
    } else {
        eprintln!("{prefix}: {}", Chain(err));
    }
    match (hint(err), doctor) {
        (Some(hint), Some(doctor)) => eprintln!("hint: {hint}; {doctor}"),
        (Some(hint), None) => eprintln!("hint: {hint}"),
        (None, Some(doctor)) => eprintln!("hint: {doctor}"),
        (None, None) => {}
    }
    code
}

fn is_closed_output(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<SessionError>()
            .or_else(|| match e.downcast_ref::<TunnelError>() {
                Some(TunnelError::Session(s)) => Some(s),
                _ => None,
            })
            .is_some_and(SessionError::is_closed_output)
    })
}

/// The first hint any error in the chain offers, outermost first.
fn hint(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(h) = hint_of(e) {
            return Some(h);
        }
        next = e.source();
    }
    None
}

fn hint_of(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    if let Some(e) = e.downcast_ref::<SessionError>() {
        return e.hint();
    }
    if let Some(e) = e.downcast_ref::<TunnelError>() {
        return e.hint();
    }
    if let Some(e) = e.downcast_ref::<HostKeyError>() {
        return e.hint();
    }
    if let Some(e) = e.downcast_ref::<AuthError>() {
        return e.hint();
    }
    if let Some(e) = e.downcast_ref::<PermissionError>() {
        return Some(format!("make it private with: chmod 600 {}", e.path));
    }
    if let Some(e) = e.downcast_ref::<AgentError>() {
        return e.hint().map(str::to_owned);
    }
    if let Some(e) = e.downcast_ref::<ServerError>() {
        return e.hint().map(str::to_owned);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closed_pipe() -> anyhow::Error {
        SessionError::Output {
            stream: "stdout",
            source: std::io::Error::from(std::io::ErrorKind::BrokenPipe),
        }
        .into()
    }

    #[test]
    fn closed_stdout_is_silent_and_other_output_errors_are_not() {
        assert!(is_closed_output(&closed_pipe()));
        let full: anyhow::Error = SessionError::Output {
            stream: "stdout",
            source: std::io::Error::from(std::io::ErrorKind::StorageFull),
        }
        .into();
        assert!(!is_closed_output(&full));
    }

    #[test]
    fn hint_is_found_below_a_context() {
        let err = anyhow::Error::from(SessionError::Auth(AuthError::Denied {
            user: "u".into(),
            host: "h".into(),
            offered: "publickey".into(),
            tried: vec!["publickey (k)".into()],
            notes: Box::new(warren_core::session::DenialNotes {
                loose_keys: vec!["/k".into()],
                ..Default::default()
            }),
        }))
        .context("copying the key");
        let e: &(dyn std::error::Error + 'static) = err.as_ref();
        assert_eq!(
            hint(e).as_deref(),
            Some(
                "the key file is readable by others, so it was not used; make it private with: chmod 600 /k"
            )
        );
    }
}
