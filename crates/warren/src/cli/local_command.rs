//! LocalCommand: a command run on this machine once the connection is up
//! (after forwards, before `-f` backgrounds), as ssh's `ssh_local_cmd`.
//!
//! Design choice: like ssh, it runs through the user's `$SHELL -c` (or
//! `/bin/sh`) with warren's own stdio, and warren waits for it; its exit
//! status only reaches the log.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt as _;

use warren_wire::escape;

/// The shell ssh runs LocalCommand with: `$SHELL`, or `/bin/sh` when unset
/// or empty.
fn shell() -> OsString {
    std::env::var_os("SHELL")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| OsString::from("/bin/sh"))
}

/// Runs `command` (tokens already expanded) and waits for it.
pub async fn run(command: &str) {
    let shell = shell();
    let shown = escape(shell.as_bytes());
    let command_shown = escape(command.as_bytes());
    tracing::debug!("Executing {shown} -c \"{command_shown}\"");
    let status = tokio::process::Command::new(&shell)
        .arg("-c")
        .arg(command)
        .status()
        .await;
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => tracing::debug!("LocalCommand exited with {s}"),
        Err(e) => tracing::error!("Couldn't execute {shown} -c \"{command_shown}\": {e}"),
    }
}
