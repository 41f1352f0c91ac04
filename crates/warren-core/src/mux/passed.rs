//! Async reading and writing on descriptors a multiplexed client passed
//! us: its terminal, pipes, files.
//!
//! Terminals, pipes and sockets are made non-blocking and polled (never a
//! thread parked in `read` on someone's terminal, which would swallow a
//! keystroke after the session ended); regular files and devices that
//! cannot be polled go through tokio's blocking file I/O, where a read
//! always returns. The original flags are put back when the session ends
//! (the descriptors are shared with the client's shell).

use std::os::fd::{AsFd, OwnedFd};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use rustix::fs::{OFlags, fcntl_getfl, fcntl_setfl};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// One passed descriptor, readable or writable asynchronously.
pub enum PassedFd {
    Polled(AsyncFd<OwnedFd>),
    File(tokio::fs::File),
}

/// Puts the passed descriptors' flags back as they were. It holds a
/// duplicate of each: a pipe's write end stays open until it is dropped.
pub struct RestoreFlags(Vec<(OwnedFd, OFlags)>);

impl Drop for RestoreFlags {
    fn drop(&mut self) {
        for (fd, flags) in self.0.iter().rev() {
            let _ = fcntl_setfl(fd, *flags);
        }
    }
}

/// Wraps `fds`; the guard restores their flags when dropped (after every
/// wrapper is done with them).
pub fn wrap<const N: usize>(fds: [OwnedFd; N]) -> ([PassedFd; N], RestoreFlags) {
    // Read every original first: stdin, stdout and stderr are often one
    // terminal, and setting O_NONBLOCK on one shows on all.
    let mut restore = Vec::new();
    for fd in &fds {
        if let (Ok(flags), Ok(dup)) = (fcntl_getfl(fd), fd.try_clone()) {
            restore.push((dup, flags));
        }
    }
    let wrapped = fds.map(PassedFd::new);
    (wrapped, RestoreFlags(restore))
}

impl PassedFd {
    fn new(fd: OwnedFd) -> PassedFd {
        let nonblocking = fcntl_getfl(&fd)
            .and_then(|flags| fcntl_setfl(&fd, flags | OFlags::NONBLOCK))
            .is_ok();
        if nonblocking {
            // epoll refuses regular files and some devices (EPERM): those
            // never block, so plain file I/O serves them.
            // `AsyncFd::new` is deprecated because a `T` that does not own
            // its descriptor could close it while registered; an `OwnedFd`
            // owns it for exactly as long as the registration lives.
            #[allow(deprecated, reason = "the registered value is an OwnedFd")]
            let registered = fd.try_clone().map(AsyncFd::new);
            if let Ok(Ok(polled)) = registered {
                return PassedFd::Polled(polled);
            }
            if let Ok(flags) = fcntl_getfl(&fd) {
                let _ = fcntl_setfl(&fd, flags - OFlags::NONBLOCK);
            }
        }
        PassedFd::File(tokio::fs::File::from_std(std::fs::File::from(fd)))
    }
}

impl AsyncRead for PassedFd {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            PassedFd::File(f) => Pin::new(f).poll_read(cx, buf),
            PassedFd::Polled(fd) => loop {
                let mut guard = ready!(fd.poll_read_ready(cx))?;
                let unfilled = buf.initialize_unfilled();
                match guard.try_io(|inner| {
                    rustix::io::read(inner.get_ref().as_fd(), &mut *unfilled)
                        .map_err(std::io::Error::from)
                }) {
                    Ok(Ok(n)) => {
                        buf.advance(n);
                        return Poll::Ready(Ok(()));
                    }
                    // A terminal whose other side hung up reads EIO: that
                    // is its end of input.
                    Ok(Err(e))
                        if e.raw_os_error() == Some(rustix::io::Errno::IO.raw_os_error()) =>
                    {
                        return Poll::Ready(Ok(()));
                    }
                    Ok(Err(e)) => return Poll::Ready(Err(e)),
                    Err(_would_block) => continue,
                }
            },
        }
    }
}

impl AsyncWrite for PassedFd {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            PassedFd::File(f) => Pin::new(f).poll_write(cx, data),
            PassedFd::Polled(fd) => loop {
                let mut guard = ready!(fd.poll_write_ready(cx))?;
                match guard.try_io(|inner| {
                    rustix::io::write(inner.get_ref().as_fd(), data).map_err(std::io::Error::from)
                }) {
                    Ok(result) => return Poll::Ready(result),
                    Err(_would_block) => continue,
                }
            },
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            PassedFd::File(f) => Pin::new(f).poll_flush(cx),
            PassedFd::Polled(_) => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            PassedFd::File(f) => Pin::new(f).poll_shutdown(cx),
            PassedFd::Polled(_) => Poll::Ready(Ok(())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn pipes_are_polled_and_flags_restored() {
        let (r, w) = rustix::pipe::pipe().unwrap();
        let before = fcntl_getfl(&r).unwrap();
        let ([mut reader, mut writer], guard) = wrap([r.try_clone().unwrap(), w]);
        assert!(matches!(reader, PassedFd::Polled(_)));
        writer.write_all(b"through").await.unwrap();
        let mut got = [0u8; 7];
        reader.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"through");
        drop(writer);
        drop(reader);
        drop(guard);
        assert_eq!(fcntl_getfl(&r).unwrap(), before);
    }

    #[tokio::test]
    async fn regular_files_fall_back_to_file_io() {
        let mut f = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut f, b"on disk").unwrap();
        std::io::Seek::rewind(&mut f).unwrap();
        let ([mut file], _guard) = wrap([OwnedFd::from(f)]);
        assert!(matches!(file, PassedFd::File(_)));
        let mut got = String::new();
        file.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, "on disk");
    }
}
