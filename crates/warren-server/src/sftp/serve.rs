//! One SFTP session over a byte stream: framed packets in, replies out,
//! requests served concurrently.
//!
//! Design choice: one loop reads and starts requests strictly in the
//! order they arrive ([`super::order`] says what each must wait for);
//! jobs run on tokio's blocking pool in a `JoinSet`, at most
//! [`MAX_IN_FLIGHT`] unanswered at once. When the limit is reached, or the
//! next request must wait, the loop stops reading: the stream's flow
//! control then holds the client back (the draft's section 6.1: "If the
//! server's queues are full, it should not read any more data").
//!
//! Replies leave in request order, as sftp-server's do, although the draft
//! lets them go in any order: OpenSSH's scp up to 9.x (Debian 12's 9.2)
//! writes in place and, when a server acknowledges writes (or returns
//! reads) out of order, truncates the file at the highest offset before
//! the first reordered reply and still exits 0. A reply that is ready
//! early waits, held, for those before it; held replies count against the
//! limit, so a slow request cannot make them pile up.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::mpsc;
use tokio::task::{JoinError, JoinSet};
use tracing::debug;
use warren_sftp::{MAX_PACKET, Request, Response, VERSION, packet_type, split_packet, status};

use super::fs::{EXTENSIONS, Fs, Plan};
use super::order::Access;

/// Requests served at once, at most.
pub(crate) const MAX_IN_FLIGHT: usize = 64;
/// Encoded replies waiting for the stream.
const REPLY_QUEUE: usize = MAX_IN_FLIGHT;

/// Why a session ended before its client closed it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SessionEnd {
    #[error("reading the SFTP stream failed")]
    Read(#[source] std::io::Error),
    #[error("writing the SFTP stream failed")]
    Write(#[source] std::io::Error),
    #[error(transparent)]
    Malformed(#[from] warren_sftp::Malformed),
    #[error("the stream ended inside a packet")]
    Truncated,
    #[error("the first packet was not SSH_FXP_INIT")]
    NoInit,
    #[error("a second SSH_FXP_INIT")]
    SecondInit,
    #[error("a request packet too short to carry an id")]
    NoId,
    #[error("the filesystem state was lost (a request panicked)")]
    Lost,
}

/// Serves one session on `stream` until the client closes it (then every
/// request read is answered first) or it breaks the protocol.
pub(crate) async fn serve<S>(stream: S, home: PathBuf) -> Result<(), SessionEnd>
where
    S: AsyncRead + AsyncWrite + Send,
{
    let (mut read, write) = tokio::io::split(stream);
    let (tx, rx) = mpsc::channel(REPLY_QUEUE);
    let requests = async move {
        let mut session = Session::new(home, tx);
        session.run(&mut read).await
    };
    let (served, written) = tokio::join!(requests, write_replies(write, rx));
    // A failed write also fails the requests' side (their replies have
    // nowhere to go): the write's own error says more.
    match (served, written) {
        (_, Err(e)) => Err(SessionEnd::Write(e)),
        (Err(e), Ok(())) => Err(e),
        (Ok(()), Ok(())) => Ok(()),
    }
}

/// Writes replies as they come, flushing when none is waiting; ends when
/// every sender is gone.
async fn write_replies<W: AsyncWrite>(
    write: W,
    mut rx: mpsc::Receiver<Bytes>,
) -> std::io::Result<()> {
    tokio::pin!(write);
    while let Some(reply) = rx.recv().await {
        write.write_all(&reply).await?;
        while let Ok(more) = rx.try_recv() {
            write.write_all(&more).await?;
        }
        write.flush().await?;
    }
    write.shutdown().await
}

/// Where the replies stand: requests are numbered as they are read, and
/// replies leave in that order.
#[derive(Default)]
struct Replies {
    /// The number the next request read gets.
    next_seq: u64,
    /// The number of the next reply to send.
    next_out: u64,
    /// Replies ready before an earlier one.
    held: BTreeMap<u64, Bytes>,
}

impl Replies {
    /// Requests read and not yet answered on the stream.
    fn in_flight(&self) -> usize {
        usize::try_from(self.next_seq - self.next_out).unwrap_or(usize::MAX)
    }

    fn number(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq - 1
    }
}

/// A running job: its place in the reply order, the request id it
/// answers, and what it touches.
type Running = HashMap<tokio::task::Id, (u64, u32, Access)>;

struct Session {
    fs: Fs,
    jobs: JoinSet<Bytes>,
    running: Running,
    replies: Replies,
    tx: mpsc::Sender<Bytes>,
    buf: BytesMut,
}

impl Session {
    fn new(home: PathBuf, tx: mpsc::Sender<Bytes>) -> Session {
        Session {
            fs: Fs::new(home),
            jobs: JoinSet::new(),
            running: HashMap::new(),
            replies: Replies::default(),
            tx,
            buf: BytesMut::with_capacity(64 * 1024),
        }
    }

    async fn run<R: AsyncRead + Unpin>(&mut self, read: &mut R) -> Result<(), SessionEnd> {
        let Some(first) = self.next_packet(read).await? else {
            return Ok(());
        };
        let Request::Init { version, .. } = Request::decode(first)? else {
            return Err(SessionEnd::NoInit);
        };
        debug!(version, "sftp init");
        let version = Response::Version {
            version: VERSION,
            extensions: EXTENSIONS
                .iter()
                .map(|(name, v)| {
                    (
                        Bytes::from_static(name.as_bytes()),
                        Bytes::from_static(v.as_bytes()),
                    )
                })
                .collect(),
        };
        let seq = self.replies.number();
        self.reply(seq, encode(&version)).await?;
        while let Some(packet) = self.next_packet(read).await? {
            self.dispatch(packet).await?;
        }
        self.wait_until(|_, _| false).await
    }

    /// The next whole packet; while it waits for bytes, finished jobs'
    /// replies go out. `None` at a clean end of the stream.
    async fn next_packet<R: AsyncRead + Unpin>(
        &mut self,
        read: &mut R,
    ) -> Result<Option<Bytes>, SessionEnd> {
        loop {
            if let Some(packet) = split_packet(&mut self.buf, MAX_PACKET)? {
                return Ok(Some(packet));
            }
            tokio::select! {
                done = self.jobs.join_next_with_id(), if !self.jobs.is_empty() => {
                    if let Some(done) = done {
                        self.finished(done).await?;
                    }
                }
                n = read.read_buf(&mut self.buf) => match n.map_err(SessionEnd::Read)? {
                    0 if self.buf.is_empty() => return Ok(None),
                    0 => return Err(SessionEnd::Truncated),
                    _ => {}
                },
            }
        }
    }

    /// Starts one request once what it must wait for is done.
    async fn dispatch(&mut self, packet: Bytes) -> Result<(), SessionEnd> {
        let request = match Request::decode(packet.clone()) {
            Ok(Request::Init { .. }) => return Err(SessionEnd::SecondInit),
            Ok(request) => request,
            Err(malformed) => return self.refuse(&packet, malformed).await,
        };
        match self.fs.plan(request) {
            Plan::Reply(reply) => {
                let seq = self.replies.number();
                self.reply(seq, encode(&reply)).await
            }
            Plan::Barrier(request) => {
                self.wait_until(|_, _| false).await?;
                self.run_barrier(request).await
            }
            Plan::Job { access, job } => {
                self.wait_until(|running, replies| {
                    replies.in_flight() < MAX_IN_FLIGHT
                        && !running.values().any(|(_, _, a)| a.blocks(&access))
                })
                .await?;
                let seq = self.replies.number();
                let task = self.jobs.spawn_blocking(move || encode(&job()));
                self.running
                    .insert(task.id(), (seq, job_id(&packet), access));
                Ok(())
            }
        }
    }

    /// Answers a packet that does not decode: an unknown type with
    /// OP_UNSUPPORTED, a known one with BAD_MESSAGE (sftp-server ignores
    /// the first and drops the session on the second); with no id to
    /// answer, the session ends.
    async fn refuse(
        &mut self,
        packet: &Bytes,
        why: warren_sftp::Malformed,
    ) -> Result<(), SessionEnd> {
        let (Some(&kind), Some(_)) = (packet.first(), packet.get(1..5)) else {
            return Err(SessionEnd::NoId);
        };
        if kind == packet_type::INIT {
            return Err(SessionEnd::SecondInit);
        }
        let id = job_id(packet);
        let known = (packet_type::OPEN..=packet_type::SYMLINK).contains(&kind)
            || kind == packet_type::EXTENDED;
        debug!(kind, id, %why, "sftp request refused");
        let code = if known {
            status::BAD_MESSAGE
        } else {
            status::OP_UNSUPPORTED
        };
        let seq = self.replies.number();
        self.reply(seq, encode(&Response::status(id, code))).await
    }

    /// Runs a barrier on the blocking pool with the session's state, which
    /// nothing else is using: every job has finished.
    async fn run_barrier(&mut self, request: Request) -> Result<(), SessionEnd> {
        let seq = self.replies.number();
        let mut fs = std::mem::take(&mut self.fs);
        let (fs, reply) = tokio::task::spawn_blocking(move || {
            let reply = encode(&fs.barrier(request));
            (fs, reply)
        })
        .await
        .map_err(|_| SessionEnd::Lost)?;
        self.fs = fs;
        self.reply(seq, reply).await
    }

    /// Waits for jobs to finish (sending their replies) until `ready`
    /// holds for the ones still running, or none is left.
    async fn wait_until(
        &mut self,
        ready: impl Fn(&Running, &Replies) -> bool,
    ) -> Result<(), SessionEnd> {
        while !self.running.is_empty() && !ready(&self.running, &self.replies) {
            match self.jobs.join_next_with_id().await {
                Some(done) => self.finished(done).await?,
                None => self.running.clear(),
            }
        }
        Ok(())
    }

    async fn finished(
        &mut self,
        done: Result<(tokio::task::Id, Bytes), JoinError>,
    ) -> Result<(), SessionEnd> {
        let (task, reply) = match done {
            Ok((task, reply)) => (task, Some(reply)),
            Err(e) => (e.id(), None),
        };
        let Some((seq, id, _)) = self.running.remove(&task) else {
            return Ok(());
        };
        // A job that panicked still gets its answer.
        let reply = reply.unwrap_or_else(|| encode(&Response::status(id, status::FAILURE)));
        self.reply(seq, reply).await
    }

    /// Queues the reply to request number `seq`, and sends every reply
    /// that is now next in order.
    async fn reply(&mut self, seq: u64, reply: Bytes) -> Result<(), SessionEnd> {
        self.replies.held.insert(seq, reply);
        while let Some(reply) = self.replies.held.remove(&self.replies.next_out) {
            self.replies.next_out += 1;
            self.tx.send(reply).await.map_err(|_| {
                SessionEnd::Write(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
            })?;
        }
        Ok(())
    }
}

fn encode(reply: &Response) -> Bytes {
    let mut out = BytesMut::new();
    reply.encode(&mut out);
    out.freeze()
}

/// The id of a request packet (type byte, then the id); 0 if too short.
fn job_id(packet: &[u8]) -> u32 {
    packet
        .get(1..5)
        .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}
