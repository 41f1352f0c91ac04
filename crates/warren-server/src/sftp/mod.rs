//! The `sftp` subsystem on the real filesystem, as the login user, so
//! OpenSSH's `sftp` and `scp` (SFTP mode by default since OpenSSH 9) work.
//! The protocol is warren-sftp's codec: names, paths and handles are bytes
//! end to end.
//!
//! - [`serve`]: the session loop, requests served concurrently (at most
//!   64 at once, backpressure beyond), replies in any order.
//! - [`order`]: which requests may run beside which (the draft's rule).
//! - [`fs`]: each request done on the filesystem, and OpenSSH's
//!   extensions (limits, posix-rename, fsync, statvfs, hardlink).

mod fs;
mod order;
mod serve;

use std::sync::Arc;

use bytes::Bytes;
use russh::Channel;
use russh::server::Msg;
use tracing::{debug, info};
use warren_core::forward::SERVER_QUEUE_LIMIT;
use warren_core::forward::pump::{Counters, pump};

use crate::session::Context;

/// Starts the subsystem `name` on `channel`.
pub fn start(ctx: &Context<'_>, name: &str, channel: Channel<Msg>) -> Result<(), String> {
    if name != "sftp" {
        return Err(format!("unknown subsystem {name:?}"));
    }
    if !ctx.config.sftp {
        return Err("the sftp subsystem is disabled (--no-sftp)".into());
    }
    let peer = ctx.peer;
    info!(%peer, "sftp session");
    let home = ctx.config.login.home.clone();
    // The session is served through a pipe so that, once it ends, the
    // channel gets an exit status before it closes, as sftp-server's does
    // (scp reports failure without one).
    let (ours, theirs) = tokio::io::duplex(256 * 1024);
    let (id, handle, token) = (channel.id(), ctx.handle.clone(), ctx.token.clone());
    tokio::spawn(async move {
        let counters = Arc::new(Counters::default());
        let session = async {
            if let Err(e) = serve::serve(theirs, home).await {
                debug!(%peer, error = %warren_wire::Chain(&e), "sftp session ended");
            }
        };
        tokio::select! {
            _ = async {
                tokio::join!(session, pump(ours, channel, Bytes::new(), SERVER_QUEUE_LIMIT, counters))
            } => {}
            () = token.cancelled() => {}
        }
        let _ = handle.exit_status_request(id, 0).await;
        let _ = handle.close(id).await;
    });
    Ok(())
}

#[cfg(test)]
mod tests;
