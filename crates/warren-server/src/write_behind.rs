//! A TCP stream whose writes never wait for the peer to read.
//!
//! russh's connection loop writes all of its pending output before it
//! reads again. Two such loops facing each other (warren's client and
//! this server) with both directions busy can each end up stuck writing
//! into a full socket buffer, neither reading: the connection freezes.
//! OpenSSH always reads while it writes, so only russh peers meet this.
//! Here the server's writes go to a buffer that a task of its own drains,
//! so the server always gets back to reading, the client's writes
//! complete, and it reads again in turn.
//!
//! Memory stays bounded: channel data beyond the windows the client
//! granted is never sent, and the client grants more only as it receives;
//! a hard cap ([`CAP`]) makes writers wait should anything else pile up.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::Notify;

/// Bytes buffered before a write has to wait.
pub const CAP: usize = 256 * 1024 * 1024;

/// `stream`, with writes handed to a background task.
pub struct WriteBehind {
    read: OwnedReadHalf,
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// Wakes the draining task: more to write, or shut down.
    more: Notify,
}

#[derive(Default)]
struct State {
    buf: BytesMut,
    shutdown: bool,
    closed: bool,
    error: Option<std::io::ErrorKind>,
    /// A writer waiting for room, or for the shutdown to finish.
    waiting: Option<Waker>,
}

impl WriteBehind {
    /// Must be called within a tokio runtime (it spawns the draining task).
    pub fn new(stream: TcpStream) -> WriteBehind {
        let (read, write) = stream.into_split();
        let shared = Arc::new(Shared::default());
        tokio::spawn(drain(shared.clone(), write));
        WriteBehind { read, shared }
    }
}

impl Drop for WriteBehind {
    fn drop(&mut self) {
        // Let the task write what is left, then end.
        lock(&self.shared).shutdown = true;
        self.shared.more.notify_one();
    }
}

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, State> {
    shared.state.lock().unwrap_or_else(|e| e.into_inner())
}

async fn drain(shared: Arc<Shared>, mut write: OwnedWriteHalf) {
    loop {
        let (chunk, shutdown) = {
            let mut st = lock(&shared);
            (st.buf.split().freeze(), st.shutdown)
        };
        if chunk.is_empty() {
            if shutdown {
                break;
            }
            shared.more.notified().await;
            continue;
        }
        let written = write.write_all(&chunk).await;
        let mut st = lock(&shared);
        if let Err(e) = written {
            st.error = Some(e.kind());
            st.buf.clear();
            st.closed = true;
            if let Some(w) = st.waiting.take() {
                w.wake();
            }
            return;
        }
        if let Some(w) = st.waiting.take() {
            w.wake();
        }
    }
    let _ = write.shutdown().await;
    let mut st = lock(&shared);
    st.closed = true;
    if let Some(w) = st.waiting.take() {
        w.wake();
    }
}

impl AsyncRead for WriteBehind {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.read).poll_read(cx, buf)
    }
}

impl AsyncWrite for WriteBehind {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let mut st = lock(&self.shared);
        if let Some(kind) = st.error {
            return Poll::Ready(Err(kind.into()));
        }
        if st.shutdown {
            return Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into()));
        }
        if st.buf.len() >= CAP {
            st.waiting = Some(cx.waker().clone());
            return Poll::Pending;
        }
        st.buf.extend_from_slice(data);
        drop(st);
        self.shared.more.notify_one();
        Poll::Ready(Ok(data.len()))
    }

    /// Handed over is as good as flushed: waiting here for the peer to
    /// read is exactly the freeze this type exists to avoid.
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match lock(&self.shared).error {
            Some(kind) => Poll::Ready(Err(kind.into())),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let mut st = lock(&self.shared);
        st.shutdown = true;
        if st.closed {
            return Poll::Ready(Ok(()));
        }
        st.waiting = Some(cx.waker().clone());
        drop(st);
        self.shared.more.notify_one();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    async fn pair() -> (WriteBehind, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (WriteBehind::new(accepted.unwrap().0), client.unwrap())
    }

    #[tokio::test]
    async fn writes_complete_while_the_peer_is_not_reading() {
        let (mut server, mut peer) = pair().await;
        let data: Vec<u8> = (0..32 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
        // Far more than socket buffers hold; the peer reads nothing yet.
        tokio::time::timeout(std::time::Duration::from_secs(10), async {
            server.write_all(&data).await.unwrap();
            server.flush().await.unwrap();
        })
        .await
        .expect("a write waited for the peer");
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            peer.read_to_end(&mut got).await.unwrap();
            got
        });
        server.shutdown().await.unwrap();
        assert_eq!(reader.await.unwrap(), data);
    }

    #[tokio::test]
    async fn reads_pass_through() {
        let (mut server, mut peer) = pair().await;
        peer.write_all(b"from the peer").await.unwrap();
        let mut got = [0u8; 13];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"from the peer");
    }
}
