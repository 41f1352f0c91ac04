//! Asking the user: passphrases, passwords, host key confirmations.
//!
//! Prompts go to `/dev/tty`, never to stdout/stderr (which may be data), or
//! through `SSH_ASKPASS` following `SSH_ASKPASS_REQUIRE` as OpenSSH does.
//! Under BatchMode nothing is ever asked.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use crate::secret::Secret;

/// How the session asks the user something.
pub trait Prompter: Send + Sync {
    /// Asks without echo (passphrase, password). `None`: cannot ask or cancelled.
    fn secret(&self, prompt: &str) -> Option<Secret>;
    /// Asks with echo (yes/no questions). `None`: cannot ask.
    fn ask(&self, prompt: &str) -> Option<String>;
    /// Prints an informational message where the user sees it (the terminal).
    fn inform(&self, message: &str);
}

/// Never asks: BatchMode, or tests.
pub struct NoPrompt;

impl Prompter for NoPrompt {
    fn secret(&self, _: &str) -> Option<Secret> {
        None
    }
    fn ask(&self, _: &str) -> Option<String> {
        None
    }
    fn inform(&self, message: &str) {
        stderr_line(message);
    }
}

/// The terminal, or SSH_ASKPASS when OpenSSH would use it.
#[derive(Debug, Default)]
pub struct TtyPrompter;

enum Route {
    Tty,
    Askpass(String),
    None,
}

impl TtyPrompter {
    fn route(&self) -> Route {
        let askpass = std::env::var("SSH_ASKPASS").ok().filter(|s| !s.is_empty());
        let require = std::env::var("SSH_ASKPASS_REQUIRE").unwrap_or_default();
        let has_tty = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .is_ok();
        match (require.as_str(), askpass) {
            ("force", Some(p)) => Route::Askpass(p),
            ("prefer", Some(p)) => Route::Askpass(p),
            ("never", _) if has_tty => Route::Tty,
            _ if has_tty => Route::Tty,
            (_, Some(p)) if std::env::var_os("DISPLAY").is_some() => Route::Askpass(p),
            _ => Route::None,
        }
    }
}

impl Prompter for TtyPrompter {
    fn secret(&self, prompt: &str) -> Option<Secret> {
        match self.route() {
            Route::Tty => tty_read(prompt, false).map(Secret::new),
            Route::Askpass(p) => askpass(&p, prompt, false).map(Secret::new),
            Route::None => None,
        }
    }

    fn ask(&self, prompt: &str) -> Option<String> {
        match self.route() {
            Route::Tty => tty_read(prompt, true),
            Route::Askpass(p) => askpass(&p, prompt, true),
            Route::None => None,
        }
    }

    fn inform(&self, message: &str) {
        match std::fs::OpenOptions::new().write(true).open("/dev/tty") {
            Ok(mut tty) => {
                let _ = writeln!(tty, "{message}");
            }
            Err(_) => stderr_line(message),
        }
    }
}

/// Reads one line from /dev/tty, with echo off unless `echo`; the terminal
/// mode is restored whatever happens.
fn tty_read(prompt: &str, echo: bool) -> Option<String> {
    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .ok()?;
    let mut out = &tty;
    let _ = write!(out, "{prompt}");
    let _ = out.flush();
    let saved = tcgetattr(&tty).ok();
    if let (false, Some(saved)) = (echo, &saved) {
        let mut t = saved.clone();
        t.local_modes.remove(LocalModes::ECHO);
        t.local_modes.insert(LocalModes::ECHONL);
        let _ = tcsetattr(&tty, OptionalActions::Flush, &t);
    }
    let mut line = String::new();
    let read = BufReader::new(&tty).read_line(&mut line);
    if let (false, Some(saved)) = (echo, &saved) {
        let _ = tcsetattr(&tty, OptionalActions::Flush, saved);
    }
    match read {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim_end_matches(['\n', '\r']).to_owned()),
    }
}

fn askpass(program: &str, prompt: &str, confirm: bool) -> Option<String> {
    let mut cmd = Command::new(program);
    cmd.arg(prompt)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    if confirm {
        cmd.env("SSH_ASKPASS_PROMPT", "confirm");
    }
    let out = cmd.output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Some(text.trim_end_matches(['\n', '\r']).to_owned())
}

/// A line on stderr; a closed stderr drops it (`eprintln!` would panic).
fn stderr_line(message: &str) {
    let _ = writeln!(std::io::stderr(), "{message}");
}
