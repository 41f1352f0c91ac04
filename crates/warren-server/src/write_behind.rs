//! A transport whose writes never wait for the peer to read.
//!
//! russh's connection loop writes all of its pending output before it
//! reads again. Two such loops facing each other (warren's client and
//! this server), both directions busy, can each end up stuck writing
//! into a full socket buffer with neither reading: the connection
//! freezes for good. OpenSSH always reads while it writes, so only
//! russh-style peers meet this. Here a server write goes straight to the
//! socket when it takes it, and whatever it does not take waits in a
//! buffer that a task of its own drains, so the server always gets back
//! to reading, the client's writes complete, and it reads again in turn.
//!
//! Only the server does this. A client that never waits floods the
//! server, whose loop stops reading while a channel's consumer is full
//! (russh re-opens windows as data arrives, not as it is consumed);
//! the client's window adjustments then sit unread behind its data.
//!
//! Memory stays bounded: channel data beyond the windows the peer granted
//! is never sent, and the peer grants more only as it receives; a hard
//! cap ([`CAP`]) makes writers wait should anything else pile up.
//!
//! Hand-written because it is a dozen lines of buffer logic around the
//! transport's own `poll_write`; no crate does "never block the writer,
//! but write through while the socket has room".

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// Bytes buffered before a write has to wait.
pub const CAP: usize = 256 * 1024 * 1024;

/// A transport with its writes handed to a background task when the
/// transport cannot take them at once.
pub struct WriteBehind<R, W> {
    read: R,
    shared: Arc<Mutex<State<W>>>,
}

struct State<W> {
    write: W,
    buf: BytesMut,
    shutdown: bool,
    closed: bool,
    error: Option<std::io::ErrorKind>,
    /// A writer waiting for room, or for the shutdown to finish.
    waiting: Option<Waker>,
    /// The draining task, waiting for something to write.
    drainer: Option<Waker>,
}

impl WriteBehind<OwnedReadHalf, OwnedWriteHalf> {
    /// A TCP stream, split without a lock between its halves. Must be
    /// called within a tokio runtime (it spawns the draining task).
    pub fn tcp(stream: TcpStream) -> Self {
        let (read, write) = stream.into_split();
        WriteBehind::new(read, write)
    }
}

impl<R, W> WriteBehind<R, W>
where
    W: AsyncWrite + Unpin + Send + 'static,
{
    /// Must be called within a tokio runtime (it spawns the draining task).
    pub fn new(read: R, write: W) -> Self {
        let shared = Arc::new(Mutex::new(State {
            write,
            buf: BytesMut::new(),
            shutdown: false,
            closed: false,
            error: None,
            waiting: None,
            drainer: None,
        }));
        tokio::spawn(drain(shared.clone()));
        WriteBehind { read, shared }
    }
}

impl<R, W> Drop for WriteBehind<R, W> {
    fn drop(&mut self) {
        // Let the task write what is left, then end.
        let mut st = lock(&self.shared);
        st.shutdown = true;
        if let Some(w) = st.drainer.take() {
            w.wake();
        }
    }
}

fn lock<W>(shared: &Mutex<State<W>>) -> std::sync::MutexGuard<'_, State<W>> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

impl<W> State<W> {
    fn fail(&mut self, kind: std::io::ErrorKind) {
        self.error = Some(kind);
        self.buf.clear();
        self.closed = true;
        if let Some(w) = self.waiting.take() {
            w.wake();
        }
    }
}

/// Writes the buffer out whenever it holds something; shuts the transport
/// down once the writer is gone or asked for it and all is written.
async fn drain<W: AsyncWrite + Unpin>(shared: Arc<Mutex<State<W>>>) {
    std::future::poll_fn(|cx| {
        let mut st = lock(&shared);
        let st = &mut *st;
        loop {
            if st.closed {
                return Poll::Ready(());
            }
            if st.buf.is_empty() {
                if !st.shutdown {
                    st.drainer = Some(cx.waker().clone());
                    return Poll::Pending;
                }
                return match Pin::new(&mut st.write).poll_shutdown(cx) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(_) => {
                        st.closed = true;
                        if let Some(w) = st.waiting.take() {
                            w.wake();
                        }
                        Poll::Ready(())
                    }
                };
            }
            match Pin::new(&mut st.write).poll_write(cx, &st.buf) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(0)) => st.fail(std::io::ErrorKind::WriteZero),
                Poll::Ready(Ok(n)) => {
                    st.buf.advance(n);
                    if let Some(w) = st.waiting.take() {
                        w.wake();
                    }
                }
                Poll::Ready(Err(e)) => st.fail(e.kind()),
            }
        }
    })
    .await;
}

impl<R: AsyncRead + Unpin, W> AsyncRead for WriteBehind<R, W> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.read).poll_read(cx, buf)
    }
}

impl<R, W: AsyncWrite + Unpin> AsyncWrite for WriteBehind<R, W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let mut st = lock(&self.shared);
        let st = &mut *st;
        if let Some(kind) = st.error {
            return Poll::Ready(Err(kind.into()));
        }
        if st.shutdown {
            return Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into()));
        }
        let mut rest = data;
        if st.buf.is_empty() {
            // Nothing queued: straight through, as far as the transport
            // takes it now (the common case, and no copy).
            match Pin::new(&mut st.write).poll_write(cx, data) {
                Poll::Ready(Ok(n)) => rest = &data[n.min(data.len())..],
                Poll::Ready(Err(e)) => {
                    st.fail(e.kind());
                    return Poll::Ready(Err(e));
                }
                Poll::Pending => {}
            }
            if rest.is_empty() {
                return Poll::Ready(Ok(data.len()));
            }
        } else if st.buf.len() >= CAP {
            st.waiting = Some(cx.waker().clone());
            return Poll::Pending;
        }
        st.buf.extend_from_slice(rest);
        if let Some(w) = st.drainer.take() {
            w.wake();
        }
        Poll::Ready(Ok(data.len()))
    }

    /// Handed over is as good as flushed: waiting here for the peer to
    /// read is exactly the freeze this type exists to avoid.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let mut st = lock(&self.shared);
        if let Some(kind) = st.error {
            return Poll::Ready(Err(kind.into()));
        }
        if st.buf.is_empty() && !st.closed {
            // Pipes and channels may hold bytes back until flushed.
            if let Poll::Ready(Err(e)) = Pin::new(&mut st.write).poll_flush(cx) {
                st.fail(e.kind());
                return Poll::Ready(Err(e));
            }
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let mut st = lock(&self.shared);
        st.shutdown = true;
        if st.closed {
            return Poll::Ready(Ok(()));
        }
        st.waiting = Some(cx.waker().clone());
        if let Some(w) = st.drainer.take() {
            w.wake();
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn pair() -> (WriteBehind<OwnedReadHalf, OwnedWriteHalf>, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (WriteBehind::tcp(accepted.unwrap().0), client.unwrap())
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    #[tokio::test]
    async fn writes_complete_while_the_peer_is_not_reading() {
        let (mut ours, mut peer) = pair().await;
        let data = data(32 * 1024 * 1024);
        // Far more than socket buffers hold; the peer reads nothing yet.
        tokio::time::timeout(std::time::Duration::from_secs(10), async {
            for chunk in data.chunks(100_000) {
                ours.write_all(chunk).await.unwrap();
            }
            ours.flush().await.unwrap();
        })
        .await
        .expect("a write waited for the peer");
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            peer.read_to_end(&mut got).await.unwrap();
            got
        });
        ours.shutdown().await.unwrap();
        assert!(reader.await.unwrap() == data, "bytes lost or reordered");
    }

    #[tokio::test]
    async fn dropping_it_still_delivers_what_was_written() {
        let (mut ours, mut peer) = pair().await;
        let data = data(8 * 1024 * 1024);
        ours.write_all(&data).await.unwrap();
        drop(ours);
        let mut got = Vec::new();
        peer.read_to_end(&mut got).await.unwrap();
        assert!(got == data, "bytes lost after drop");
    }

    #[tokio::test]
    async fn reads_pass_through_and_any_writer_works() {
        let (a, mut b) = tokio::io::duplex(64);
        let (read, write) = tokio::io::split(a);
        let mut ours = WriteBehind::new(read, write);
        b.write_all(b"from the peer").await.unwrap();
        let mut got = [0u8; 13];
        ours.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"from the peer");
        // More than the duplex holds, with the peer not reading yet.
        let data = data(4096);
        ours.write_all(&data).await.unwrap();
        ours.flush().await.unwrap();
        let mut back = vec![0u8; data.len()];
        b.read_exact(&mut back).await.unwrap();
        assert_eq!(back, data);
    }

    #[tokio::test]
    async fn a_write_after_the_peer_is_gone_fails() {
        let (mut ours, peer) = pair().await;
        drop(peer);
        let chunk = data(1 << 20);
        let failed = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            loop {
                if ours.write_all(&chunk).await.is_err() {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        })
        .await;
        assert!(
            failed.is_ok(),
            "writes kept succeeding into a closed socket"
        );
    }
}
