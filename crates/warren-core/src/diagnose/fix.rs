//! `--fix` on the server: a command the doctor found (the chmod that
//! sshd's StrictModes asks for) run over a new session to the
//! destination.
//!
//! Design choice: the session is made under the doctor's own rules on
//! every hop (never prompt, never record a host key: BatchMode and
//! StrictHostKeyChecking yes), so a fix only reaches a host whose key
//! was verified; the command runs under `sh -c` whatever the login shell.

use std::sync::Arc;
use std::time::Duration;

use warren_wire::Escaped;

use super::login::run_command;
use super::shell_quote;
use crate::prompt::NoPrompt;
use crate::session::{Hop, Route, SessionError, StrictHostKeyChecking, connect_hop};

/// How long the login and the command may take.
const FIX_WAIT: Duration = Duration::from_secs(60);

/// Why a remote fix was not applied.
#[derive(Debug, thiserror::Error)]
pub enum RemoteFixError {
    #[error(transparent)]
    Connect(#[from] SessionError),
    #[error("running the command failed")]
    Channel(#[source] russh::Error),
    #[error("no answer within {}s", FIX_WAIT.as_secs())]
    TimedOut,
    #[error("the command ended with {status}{said}")]
    Status { status: String, said: String },
}

/// Runs `command` on `hop`'s host through `sh -c`; Ok when it exits 0.
pub async fn run_remote_fix(hop: &Hop, command: &str) -> Result<(), RemoteFixError> {
    let hop = guarded(hop);
    let wrapped = format!("sh -c {}", shell_quote(command));
    let ran = tokio::time::timeout(FIX_WAIT, async {
        let session = connect_hop(&hop, Arc::new(NoPrompt)).await?;
        let ran = run_command(&session, &wrapped).await;
        session.close().await;
        ran.map_err(RemoteFixError::Channel)
    })
    .await
    .map_err(|_| RemoteFixError::TimedOut)??;
    if ran.status == Some(0) {
        return Ok(());
    }
    let status = ran
        .status
        .map_or_else(|| "no exit status".to_owned(), |s| format!("status {s}"));
    let said = [&ran.stderr, &ran.stdout]
        .into_iter()
        .map(|b| b.trim_ascii())
        .find(|b| !b.is_empty())
        .map(|b| format!(": {}", Escaped::truncated(b, 200)))
        .unwrap_or_default();
    Err(RemoteFixError::Status { status, said })
}

/// `hop` with the doctor's rules on it and every jump host before it.
fn guarded(hop: &Hop) -> Hop {
    let mut out = hop.clone();
    out.opts.host_keys.strict = StrictHostKeyChecking::Yes;
    out.opts.auth.batch_mode = true;
    if let Route::Jump(via) = &hop.route {
        out.route = Route::Jump(Box::new(guarded(via)));
    }
    out
}
