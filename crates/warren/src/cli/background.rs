//! `-f` / ForkAfterAuthentication: go to the background once logged in
//! (and, under ExitOnForwardFailure, once the forwards are up), like ssh.
//!
//! Design choice: a multi-threaded async runtime cannot fork safely, so
//! warren re-executes itself instead, under the name it was run by (as
//! `ssh` or `warren-ssh` the subcommand is the name). The first process
//! ("launcher") starts the real client with the write end of a pipe as
//! its stdin (`-f` implies `-n`); the client takes it over at once,
//! close-on-exec, and puts /dev/null in its place, so nothing it starts
//! later (a ControlPersist master, a ProxyCommand) holds it. The client
//! writes one byte on it when it is ready and detaches (setsid), and the
//! launcher exits 0. If the client ends first, the pipe closes and the
//! launcher exits with the client's status, its error already printed.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt as _;
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// Set to the launcher's pid in the client it starts: a process whose
/// parent is not that launcher (a ProxyCommand the client ran, say)
/// ignores it.
const READY: &str = "WARREN_BACKGROUND_READY";

/// Set in a background master started for ControlPersist.
const PERSISTENT_MASTER: &str = "WARREN_PERSISTENT_MASTER";

/// The launcher's pipe, once taken over from stdin.
static READY_PIPE: Mutex<Option<std::fs::File>> = Mutex::new(None);

/// In the launcher (asked for `-f`, not yet the background client): runs
/// the client and returns the exit code to leave with. `None`: carry on in
/// this process (no `-f`, or this is the background client).
pub fn launch_if_requested(fork: bool) -> Option<u8> {
    if adopt_ready_pipe() || !fork {
        return None;
    }
    Some(launch().unwrap_or_else(|e| {
        eprintln!("warren: cannot go to the background: {e}");
        255
    }))
}

fn launch() -> std::io::Result<u8> {
    launch_with(&[])
}

/// Whether this process is a background master started for ControlPersist.
pub fn is_persistent_master() -> bool {
    std::env::var_os(PERSISTENT_MASTER).is_some()
}

/// ControlPersist: starts this same command as a background master (no
/// session of its own) and returns once it listens on ControlPath, with 0,
/// or with its exit status if it failed first.
pub fn launch_persistent_master() -> std::io::Result<u8> {
    launch_with(&[(PERSISTENT_MASTER, "1")])
}

/// In a background master, once it listens: detaches from the launcher
/// and lets go of the terminal's stdout and stderr (the first client's
/// output must end when that client does).
pub fn detach_persistent_master() {
    detach(true, false);
}

fn launch_with(env: &[(&str, &str)]) -> std::io::Result<u8> {
    let (read, write) = rustix::pipe::pipe()?;
    rustix::io::fcntl_setfd(&read, rustix::io::FdFlags::CLOEXEC)?;
    let mut args = std::env::args_os();
    let mut command = Command::new(std::env::current_exe()?);
    if let Some(name) = args.next() {
        // As `ssh`, the client's arguments have no subcommand.
        command.arg0(name);
    }
    let mut child = command
        .args(args)
        .env(READY, std::process::id().to_string())
        .envs(env.iter().copied())
        .stdin(Stdio::from(write))
        .spawn()?;
    // Drops the write end that `command` still holds.
    drop(command);
    let mut byte = [0u8; 1];
    let mut read = std::fs::File::from(read);
    match read.read(&mut byte) {
        Ok(1) => Ok(0),
        _ => {
            let status = child.wait()?;
            Ok(status.code().map_or(255, |c| c as u8))
        }
    }
}

/// In the client a launcher started: takes the readiness pipe from stdin
/// and puts /dev/null there. False in any other process.
fn adopt_ready_pipe() -> bool {
    let Some(launcher) = std::env::var_os(READY) else {
        return false;
    };
    let parent = rustix::process::Pid::as_raw(rustix::process::getppid()).to_string();
    if launcher.to_str() != Some(parent.as_str()) {
        return false;
    }
    let Ok(mut slot) = READY_PIPE.lock() else {
        return false;
    };
    if slot.is_some() {
        return true;
    }
    // A new descriptor for the same pipe, close-on-exec like every file
    // std opens; then stdin becomes /dev/null, closing the inherited one.
    let Ok(pipe) = std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/self/fd/0")
    else {
        return false;
    };
    if let Ok(null) = std::fs::File::open("/dev/null") {
        let _ = rustix::stdio::dup2_stdin(&null);
    }
    *slot = Some(pipe);
    true
}

/// In the background client, once ready: leaves the terminal's session
/// and releases the launcher. Without a remote command (-N) nothing is
/// ever written to stdout, so it is let go (`$(warren ssh -fN ...)` then
/// returns, unlike with ssh), and stderr too unless `keep_stderr` (debug
/// logging there): whoever started us may be waiting for its end.
pub fn detach(no_command: bool, keep_stderr: bool) {
    let Some(mut ready) = READY_PIPE.lock().ok().and_then(|mut p| p.take()) else {
        return;
    };
    if no_command && let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        let _ = rustix::stdio::dup2_stdout(&null);
        if !keep_stderr {
            let _ = rustix::stdio::dup2_stderr(&null);
        }
    }
    let _ = rustix::process::setsid();
    let _ = ready.write_all(b"R");
}
