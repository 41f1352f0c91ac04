//! Moving bytes between one SSH channel and one local stream, both ways,
//! each direction in its own task.
//!
//! Design choice: the download side drains the channel into a
//! per-connection queue and stops draining only when that queue holds
//! `queue_limit` bytes. The vendored russh (patches 5 and 6) re-opens a
//! channel's window only as its reader takes data and never makes the
//! session loop wait on one channel, so a local client that stops reading
//! closes its own channel's window and holds nothing else back; the queue
//! lets the socket write and the channel read overlap, and costs at most
//! `queue_limit` bytes per stalled connection.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};
use russh::ChannelMsg;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tracing::debug;

/// What a channel of either side sends into its session.
pub trait ChannelSide: From<(russh::ChannelId, ChannelMsg)> + Send + Sync + 'static {}

impl<M: From<(russh::ChannelId, ChannelMsg)> + Send + Sync + 'static> ChannelSide for M {}

/// Byte counters of one forward, shared by its connections.
#[derive(Debug, Default)]
pub struct Counters {
    /// From the local side into the tunnel.
    pub sent: AtomicU64,
    /// From the tunnel out to the local side.
    pub received: AtomicU64,
    pub connections: AtomicU64,
    pub open: AtomicU64,
}

/// How one pumped connection ended.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub sent: u64,
    pub received: u64,
}

/// Pumps `local` <-> `channel` until both directions are done.
pub async fn pump<S, M: ChannelSide>(
    local: S,
    channel: russh::Channel<M>,
    leftover: Bytes,
    queue_limit: usize,
    counters: Arc<Counters>,
) -> Totals
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    counters.connections.fetch_add(1, Ordering::Relaxed);
    counters.open.fetch_add(1, Ordering::Relaxed);
    let (local_read, local_write) = tokio::io::split(local);
    let (channel_read, channel_write) = channel.split();
    let mut up = tokio::spawn(upload(
        local_read,
        channel_write,
        leftover,
        counters.clone(),
    ));
    let (received, closed) = download(channel_read, local_write, queue_limit, &counters).await;
    // A closed channel takes nothing more: stop reading the local side
    // instead of waiting for its EOF (stdin may never end).
    let sent = if closed {
        tokio::select! {
            sent = &mut up => sent.unwrap_or(0),
            () = tokio::time::sleep(std::time::Duration::from_millis(100)) => {
                up.abort();
                0
            }
        }
    } else {
        up.await.unwrap_or(0)
    };
    counters.open.fetch_sub(1, Ordering::Relaxed);
    Totals { sent, received }
}

/// Local -> channel; EOF on the local side becomes channel EOF.
async fn upload<R: AsyncRead + Unpin, M: ChannelSide>(
    mut local: R,
    channel: russh::ChannelWriteHalf<M>,
    leftover: Bytes,
    counters: Arc<Counters>,
) -> u64 {
    let mut total = 0u64;
    if !leftover.is_empty() {
        total += leftover.len() as u64;
        if channel.data_bytes(leftover).await.is_err() {
            return total;
        }
    }
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        buf.reserve(64 * 1024);
        match local.read_buf(&mut buf).await {
            Ok(0) => break,
            Ok(n) => {
                total += n as u64;
                counters.sent.fetch_add(n as u64, Ordering::Relaxed);
                if channel.data_bytes(buf.split().freeze()).await.is_err() {
                    return total;
                }
            }
            Err(e) => {
                debug!(error = %e, "local read ended");
                break;
            }
        }
    }
    let _ = channel.eof().await;
    total
}

/// Channel -> local, through a bounded queue so the SSH connection never
/// waits on this reader until `queue_limit` bytes are pending.
pub async fn download<W: AsyncWrite + Unpin>(
    mut channel: russh::ChannelReadHalf,
    mut local: W,
    queue_limit: usize,
    counters: &Counters,
) -> (u64, bool) {
    let mut queue: VecDeque<Bytes> = VecDeque::new();
    let mut queued = 0usize;
    let mut total = 0u64;
    let mut eof = false;
    let mut closed = false;
    let mut warned = false;
    loop {
        if eof && queue.is_empty() {
            let _ = local.shutdown().await;
            return (total, closed);
        }
        if queued >= queue_limit && !warned {
            warned = true;
            // Flow control at work, not a fault: the channel's window
            // closes until the reader catches up.
            debug!(
                queued,
                "a forwarded connection's local reader is not keeping up; pausing its channel"
            );
        }
        tokio::select! {
            msg = channel.wait(), if !eof && queued < queue_limit => match msg {
                Some(ChannelMsg::Data { data }) => {
                    queued += data.len();
                    queue.push_back(data);
                }
                Some(ChannelMsg::Eof) => eof = true,
                Some(ChannelMsg::Close) | None => {
                    eof = true;
                    closed = true;
                }
                Some(_) => {}
            },
            written = write_front(&mut local, &mut queue), if !queue.is_empty() => match written {
                Ok(n) => {
                    queued -= n;
                    total += n as u64;
                    counters.received.fetch_add(n as u64, Ordering::Relaxed);
                    // A no-op for sockets; for stdout (-W) it pushes the bytes
                    // past std's line buffering, which would hold binary SSH
                    // packets back. Here, not in `write_front`: a cancelled
                    // flush must not make a completed write look undone.
                    if let Err(e) = local.flush().await {
                        debug!(error = %e, "local flush failed");
                        return (total, true);
                    }
                }
                Err(e) => {
                    debug!(error = %e, "local write ended");
                    return (total, true);
                }
            },
        }
    }
}

/// Writes as much of the queue as the local side takes in one call (a
/// vectored write of up to [`MAX_SLICES`] chunks: one system call where
/// the tunnel delivered several packets); cancel-safe: bytes count only
/// once the write completed.
async fn write_front<W: AsyncWrite + Unpin>(
    local: &mut W,
    queue: &mut VecDeque<Bytes>,
) -> std::io::Result<usize> {
    if queue.is_empty() {
        return Ok(0);
    }
    // On the stack: this runs once per write on the data path.
    let mut slices = [std::io::IoSlice::new(&[]); MAX_SLICES];
    let mut count = 0;
    for (slot, chunk) in slices.iter_mut().zip(queue.iter()) {
        *slot = std::io::IoSlice::new(chunk);
        count += 1;
    }
    let n = local.write_vectored(&slices[..count]).await?;
    if n == 0 {
        return Err(std::io::ErrorKind::WriteZero.into());
    }
    let mut left = n;
    while left > 0 {
        let Some(front) = queue.front_mut() else {
            break;
        };
        if left >= front.len() {
            left -= front.len();
            queue.pop_front();
        } else {
            let _ = front.split_to(left);
            left = 0;
        }
    }
    Ok(n)
}

/// Chunks handed to one vectored write (the kernel's IOV_MAX is 1024).
const MAX_SLICES: usize = 64;
