//! `-f` / ForkAfterAuthentication: go to the background once logged in
//! (and, under ExitOnForwardFailure, once the forwards are up), like ssh.
//!
//! Design choice: a multi-threaded async runtime cannot fork safely, so
//! warren re-executes itself instead. The first process ("launcher")
//! starts the real client with a pipe; the client writes one byte on it
//! when it is ready and detaches (setsid), and the launcher exits 0. If the
//! client fails first, the pipe closes and the launcher exits with the
//! client's status, its error already printed.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};

const READY_FD: &str = "WARREN_BACKGROUND_READY_FD";

/// Set in a background master started for ControlPersist.
const PERSISTENT_MASTER: &str = "WARREN_PERSISTENT_MASTER";

/// In the launcher (asked for `-f`, not yet the background client): runs
/// the client and returns the exit code to leave with. `None`: carry on in
/// this process (no `-f`, or this is the background client).
pub fn launch_if_requested(fork: bool) -> Option<u8> {
    if !fork || std::env::var_os(READY_FD).is_some() {
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
    let mut child = Command::new(std::env::current_exe()?)
        .args(std::env::args_os().skip(1))
        .env(READY_FD, write.as_raw_fd().to_string())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .spawn()?;
    drop(write);
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

/// In the background client, once ready: leaves the terminal's session
/// and releases the launcher. Without a remote command (-N) nothing is
/// ever written to stdout, so it is let go (`$(warren ssh -fN ...)` then
/// returns, unlike with ssh), and stderr too unless `keep_stderr` (debug
/// logging there): whoever started us may be waiting for its end.
pub fn detach(no_command: bool, keep_stderr: bool) {
    let Some(fd) = std::env::var_os(READY_FD) else {
        return;
    };
    if no_command && let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        let _ = rustix::stdio::dup2_stdout(&null);
        if !keep_stderr {
            let _ = rustix::stdio::dup2_stderr(&null);
        }
    }
    // Reopen the inherited pipe through /proc rather than adopting a raw
    // descriptor (no unsafe code).
    let path = format!("/proc/self/fd/{}", fd.to_string_lossy());
    let _ = rustix::process::setsid();
    if let Ok(mut ready) = std::fs::OpenOptions::new().write(true).open(path) {
        let _ = ready.write_all(b"R");
    }
}
