//! SFTP sessions to one host: channels on logged-in connections, or
//! through a running ControlMaster (no handshake at all).
//!
//! Design choice: a copy's lanes are SFTP sessions, each on its own
//! channel. OpenSSH's sshd gives a session channel a 2 MiB window, so one
//! channel moves at most 2 MiB per round trip upstream; every extra
//! channel adds a window (and an sftp-server process on the server), every
//! extra connection an sshd process (and its CPU). [`default_lanes`] picks
//! a count from the job and the measured round trip.

use std::os::fd::{AsFd as _, OwnedFd};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use russh::ChannelMsg;
use russh::client::Handle;
use tracing::debug;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt as _;

use super::client::{self, SftpClient, SftpError};
use crate::mux::MuxError;
use crate::mux::client::{MuxClient, SessionRequest, process_stdio};
use crate::session::handler::ClientHandler;

/// Requests kept in flight on one SFTP session.
pub const IN_FLIGHT: usize = 64;

/// Why a session could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("opening a channel for SFTP")]
    Channel(#[source] russh::Error),
    #[error("starting SFTP")]
    Sftp(#[source] SftpError),
    #[error("the server refused the sftp subsystem (is `Subsystem sftp` set in its sshd_config?)")]
    Refused,
    #[error("opening SFTP through the ControlMaster")]
    Mux(#[source] MuxError),
    #[error("a socket pair for the ControlMaster")]
    Io(#[source] std::io::Error),
}

/// Opens an SFTP session on a new channel of `handle`. With `like` (a
/// session already open to this server) the subsystem is known to exist
/// and its sizes known: no answer is waited for but the VERSION.
///
/// INIT cannot go out with the subsystem request: sshd opens a session
/// channel's window only once the subsystem runs.
pub async fn over_channel(
    handle: &Handle<ClientHandler>,
    like: Option<&SftpClient>,
) -> Result<SftpClient, OpenError> {
    let mut channel = handle
        .channel_open_session()
        .await
        .map_err(OpenError::Channel)?;
    channel
        .request_subsystem(like.is_none(), "sftp")
        .await
        .map_err(OpenError::Channel)?;
    // sshd answers a subsystem it does not have with a failure and leaves
    // the channel open: without the answer, VERSION would be awaited
    // forever.
    if like.is_none() {
        loop {
            match channel.wait().await {
                Some(ChannelMsg::Success) => break,
                Some(ChannelMsg::Failure) => return Err(OpenError::Refused),
                Some(ChannelMsg::Close | ChannelMsg::Eof) | None => {
                    return Err(OpenError::Sftp(SftpError::Lost(
                        "the server closed the channel".to_owned(),
                    )));
                }
                Some(_) => {}
            }
        }
    }
    let (rd, mut wr) = tokio::io::split(channel.into_stream());
    wr.write_all(&client::init_packet())
        .await
        .map_err(|e| OpenError::Sftp(SftpError::Lost(format!("sending INIT: {e}"))))?;
    SftpClient::after_init(rd, wr, BytesMut::new(), IN_FLIGHT, like)
        .await
        .map_err(OpenError::Sftp)
}

/// Opens an SFTP session as a multiplexed session of the master at
/// `control`: its end of a socket pair is the session's stdin and stdout.
pub async fn through_master(control: &Path) -> Result<SftpClient, OpenError> {
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().map_err(OpenError::Io)?;
    let client = MuxClient::connect(control).await.map_err(OpenError::Mux)?;
    let theirs: OwnedFd = theirs.into();
    let request = SessionRequest {
        subsystem: true,
        command: "sftp".to_owned(),
        ..SessionRequest::default()
    };
    tokio::spawn(async move {
        let fd = theirs.as_fd();
        let stderr = process_stdio()[2];
        match client
            .session(request, [fd, fd, stderr], || {}, || {})
            .await
        {
            Ok(end) => debug!("multiplexed SFTP session ended: {end:?}"),
            Err(e) => debug!("multiplexed SFTP session: {}", warren_wire::Chain(&e)),
        }
    });
    ours.set_nonblocking(true).map_err(OpenError::Io)?;
    let ours = tokio::net::UnixStream::from_std(ours).map_err(OpenError::Io)?;
    SftpClient::start(ours, IN_FLIGHT)
        .await
        .map_err(OpenError::Sftp)
}

/// One round trip to the server: the one its `limits@openssh.com`
/// request took, else a REALPATH of `.`, timed.
pub async fn round_trip(client: &SftpClient) -> Result<Duration, SftpError> {
    if let Some(rtt) = client.round_trip {
        return Ok(rtt);
    }
    let start = Instant::now();
    client.realpath(b".").await?;
    Ok(start.elapsed())
}

/// What a job looks like before it starts, for [`default_lanes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// One file below 8 MiB: one lane is all it can use.
    Small,
    /// A large file (or a few): lanes for bandwidth.
    Large,
    /// A tree or many files: lanes for concurrency. sftp-server answers
    /// one request at a time, and a file's fsync holds its session for a
    /// disk flush (milliseconds), so many files need many sessions.
    Many,
}

/// Lanes for a job: one for a small one; for a large one, enough channel
/// windows to cover the round trip; for many files, eight.
pub fn default_lanes(job: Job, rtt: Duration) -> usize {
    match job {
        Job::Small => 1,
        Job::Many => 8,
        Job::Large => match rtt.as_micros() {
            0..2_000 => 2,
            2_000..10_000 => 4,
            _ => 8,
        },
    }
}

/// Opens up to `count` more SFTP sessions through `open` at once: those
/// that opened, and the first error if some did not (a server's
/// MaxSessions, 10 by default, caps the channels of one connection).
pub async fn open_many<F, Fut>(count: usize, open: F) -> (Vec<Arc<SftpClient>>, Option<OpenError>)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<SftpClient, OpenError>> + Send + 'static,
{
    let tasks: Vec<_> = (0..count).map(|_| tokio::spawn(open())).collect();
    let mut out = Vec::with_capacity(count);
    let mut first_error = None;
    for t in tasks {
        match t.await {
            Ok(Ok(c)) => out.push(Arc::new(c)),
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(e) => {
                first_error.get_or_insert(OpenError::Io(std::io::Error::other(e)));
            }
        }
    }
    (out, first_error)
}
