//! The local terminal during an interactive session: raw mode with a guard
//! that restores the saved mode on every exit path (drop, panic unwinding),
//! and the window size.

use std::os::fd::{AsFd, BorrowedFd};

use rustix::termios::{self, OptionalActions, Termios};

/// Puts the terminal on `fd` in raw mode until dropped.
pub struct RawModeGuard {
    fd: std::os::fd::OwnedFd,
    saved: Termios,
}

impl RawModeGuard {
    /// `None` when `fd` is not a terminal.
    pub fn enter(fd: BorrowedFd<'_>) -> Option<RawModeGuard> {
        let saved = termios::tcgetattr(fd).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        termios::tcsetattr(fd, OptionalActions::Flush, &raw).ok()?;
        let fd = fd.try_clone_to_owned().ok()?;
        Some(RawModeGuard { fd, saved })
    }
}

impl Drop for RawModeGuard {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(self.fd.as_fd(), OptionalActions::Flush, &self.saved);
    }
}

/// Whether `fd` is a terminal.
pub fn is_terminal(fd: BorrowedFd<'_>) -> bool {
    termios::isatty(fd)
}

/// (columns, rows, pixel width, pixel height) of the terminal on `fd`.
pub fn window_size(fd: BorrowedFd<'_>) -> (u32, u32, u32, u32) {
    match termios::tcgetwinsize(fd) {
        Ok(ws) => (
            ws.ws_col.into(),
            ws.ws_row.into(),
            ws.ws_xpixel.into(),
            ws.ws_ypixel.into(),
        ),
        Err(_) => (80, 24, 0, 0),
    }
}

/// Clears O_NONBLOCK on stdin, stdout and stderr. A parent such as rsync
/// may hand us non-blocking pipes; warren's stdio copies expect blocking
/// descriptors, and EAGAIN there would end a transfer half way.
pub fn make_stdio_blocking() {
    use rustix::fs::{OFlags, fcntl_getfl, fcntl_setfl};
    for fd in [
        rustix::stdio::stdin(),
        rustix::stdio::stdout(),
        rustix::stdio::stderr(),
    ] {
        if let Ok(flags) = fcntl_getfl(fd)
            && flags.contains(OFlags::NONBLOCK)
        {
            let _ = fcntl_setfl(fd, flags - OFlags::NONBLOCK);
        }
    }
}
