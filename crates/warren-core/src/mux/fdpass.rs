//! Passing file descriptors over the control socket (SCM_RIGHTS), one per
//! message with a single zero byte of data, as OpenSSH's
//! `mm_send_fd`/`mm_receive_fd` do: a multiplexed client hands the master
//! its stdin, stdout and stderr this way.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, recvmsg, sendmsg,
};
use tokio::io::Interest;
use tokio::net::UnixStream;

/// Sends `fd` to the peer.
pub async fn send_fd(sock: &UnixStream, fd: BorrowedFd<'_>) -> std::io::Result<()> {
    loop {
        sock.writable().await?;
        let sent = sock.try_io(Interest::WRITABLE, || {
            let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
            let mut cmsg = SendAncillaryBuffer::new(&mut space);
            let fds = [fd];
            if !cmsg.push(SendAncillaryMessage::ScmRights(&fds)) {
                return Err(std::io::Error::other("control message buffer too small"));
            }
            sendmsg(
                sock.as_fd(),
                &[IoSlice::new(&[0])],
                &mut cmsg,
                SendFlags::NOSIGNAL,
            )
            .map_err(std::io::Error::from)
        });
        match sent {
            Ok(1) => return Ok(()),
            Ok(_) => return Err(std::io::ErrorKind::WriteZero.into()),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Receives one descriptor sent with [`send_fd`] (close-on-exec).
pub async fn recv_fd(sock: &UnixStream) -> std::io::Result<OwnedFd> {
    loop {
        sock.readable().await?;
        let received = sock.try_io(Interest::READABLE, || {
            let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
            let mut cmsg = RecvAncillaryBuffer::new(&mut space);
            let mut byte = [0u8; 1];
            let msg = recvmsg(
                sock.as_fd(),
                &mut [IoSliceMut::new(&mut byte)],
                &mut cmsg,
                RecvFlags::CMSG_CLOEXEC,
            )
            .map_err(std::io::Error::from)?;
            if msg.bytes == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the client closed the connection instead of passing a descriptor",
                ));
            }
            let mut got = None;
            for m in cmsg.drain() {
                if let RecvAncillaryMessage::ScmRights(fds) = m {
                    for fd in fds {
                        // Keep the first; any extra ones drop (close) here.
                        got.get_or_insert(fd);
                    }
                }
            }
            got.ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "expected a file descriptor, got plain data",
                )
            })
        });
        match received {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read as _, Seek as _, Write as _};

    #[tokio::test]
    async fn a_descriptor_crosses_the_socket() {
        let (a, b) = UnixStream::pair().unwrap();
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"passed").unwrap();
        send_fd(&a, file.as_fd()).await.unwrap();
        let got = recv_fd(&b).await.unwrap();
        let mut f = std::fs::File::from(got);
        f.rewind().unwrap();
        let mut s = String::new();
        f.read_to_string(&mut s).unwrap();
        assert_eq!(s, "passed");
    }

    #[tokio::test]
    async fn plain_data_is_not_a_descriptor() {
        let (a, b) = UnixStream::pair().unwrap();
        a.try_write(b"x").unwrap();
        let err = recv_fd(&b).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    }
}
