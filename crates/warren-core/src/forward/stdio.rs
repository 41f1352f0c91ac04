//! `-W host:port`: our stdin and stdout become one forwarded connection,
//! which is how warren serves as another ssh's ProxyCommand.

use std::sync::Arc;

use bytes::Bytes;
use russh::client::Handle;

use super::pump::{Counters, pump};
use super::{Endpoint, local};
use crate::session::ClientHandler;

/// Forwards stdio to `target` until either side ends.
pub async fn forward_stdio(
    handle: &Handle<ClientHandler>,
    target: &Endpoint,
    queue_limit: usize,
) -> Result<(), russh::Error> {
    let channel = local::open(handle, target, "127.0.0.1", 0).await?;
    let stdio = tokio::io::join(tokio::io::stdin(), tokio::io::stdout());
    pump(
        stdio,
        channel,
        Bytes::new(),
        queue_limit,
        Arc::new(Counters::default()),
    )
    .await;
    Ok(())
}
