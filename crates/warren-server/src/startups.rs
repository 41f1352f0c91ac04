//! MaxStartups, as sshd has it: `start:rate:full` unauthenticated
//! connections. From `start` on, a new connection is dropped with
//! probability `rate`%, rising linearly to 100% at `full` (random early
//! drop), so a flood of half-open connections slows the owner's logins
//! down instead of stopping them.
//!
//! Design choice, beyond sshd: a connection that has not even sent its SSH
//! version line a while after connecting (every SSH client sends it at
//! once) is what a flood of idle connections looks like. When a new
//! connection would be dropped, the oldest such connection is closed in
//! its place, so idle connections cannot hold the owner out for the whole
//! LoginGraceTime.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long a connection may stay silent before a new connection may take
/// its place when the server is at MaxStartups.
pub const SILENT_AFTER: Duration = Duration::from_secs(2);

/// `--max-startups start:rate:full` (or `N`, meaning `N:100:N`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxStartups {
    pub start: usize,
    /// Percent of connections dropped at `start`.
    pub rate: u32,
    pub full: usize,
}

impl Default for MaxStartups {
    fn default() -> Self {
        MaxStartups {
            start: 10,
            rate: 30,
            full: 100,
        }
    }
}

impl FromStr for MaxStartups {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let num = |t: &str| {
            t.parse::<usize>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| format!("{t}: expected a number above 0"))
        };
        let m = match s.split(':').collect::<Vec<_>>().as_slice() {
            [n] => {
                let n = num(n)?;
                MaxStartups {
                    start: n,
                    rate: 100,
                    full: n,
                }
            }
            [start, rate, full] => MaxStartups {
                start: num(start)?,
                rate: rate
                    .parse::<u32>()
                    .ok()
                    .filter(|r| (1..=100).contains(r))
                    .ok_or_else(|| format!("{rate}: the rate is a percentage, 1 to 100"))?,
                full: num(full)?,
            },
            _ => return Err("expected N or start:rate:full, e.g. 10:30:100".into()),
        };
        if m.start > m.full {
            return Err(format!("start {} is above full {}", m.start, m.full));
        }
        Ok(m)
    }
}

impl std::fmt::Display for MaxStartups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.start, self.rate, self.full)
    }
}

impl MaxStartups {
    /// Percent chance that a new connection is dropped while `startups`
    /// connections are unauthenticated.
    pub fn drop_percent(&self, startups: usize) -> u32 {
        if startups < self.start {
            return 0;
        }
        if startups >= self.full || self.rate >= 100 {
            return 100;
        }
        let over = (startups - self.start) as u64;
        let span = (self.full - self.start) as u64;
        let extra = u64::from(100 - self.rate) * over / span;
        self.rate + u32::try_from(extra).unwrap_or(100)
    }

    /// Whether to drop, given a roll uniform in 0..100.
    pub fn should_drop(&self, startups: usize, roll: u32) -> bool {
        roll < self.drop_percent(startups)
    }
}

/// Whether the client's version line has arrived, and what it said.
#[derive(Debug, Default)]
pub struct Banner {
    seen: AtomicBool,
    line: Mutex<Vec<u8>>,
}

/// Longest version line kept (RFC 4253 allows 255 bytes).
const BANNER_MAX: usize = 255;

impl Banner {
    pub fn seen(&self) -> bool {
        self.seen.load(Ordering::Acquire)
    }

    /// The first line the client sent (at most 255 bytes, without CR LF).
    pub fn line(&self) -> Vec<u8> {
        crate::server::lock(&self.line).clone()
    }

    /// Feeds bytes the client sent, until its first line is complete.
    pub fn observe(&self, bytes: &[u8]) {
        if self.seen() {
            return;
        }
        let mut line = crate::server::lock(&self.line);
        let end = bytes.iter().position(|&b| b == b'\n');
        let part = &bytes[..end.unwrap_or(bytes.len())];
        let room = BANNER_MAX.saturating_sub(line.len());
        line.extend_from_slice(&part[..part.len().min(room)]);
        if end.is_some() {
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            self.seen.store(true, Ordering::Release);
        }
    }
}

/// The client's side of a connection, with what it sends fed to a
/// [`Banner`] until the version line is complete.
pub struct Watched<S> {
    inner: S,
    banner: Arc<Banner>,
}

impl<S> Watched<S> {
    pub fn new(inner: S, banner: Arc<Banner>) -> Self {
        Watched { inner, banner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if !self.banner.seen() {
            self.banner.observe(&buf.filled()[before..]);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// One unauthenticated connection.
#[derive(Debug)]
struct Pending {
    peer: SocketAddr,
    since: Instant,
    banner: Arc<Banner>,
    evict: CancellationToken,
}

/// The unauthenticated connections of one server.
#[derive(Debug, Default)]
pub struct Startups {
    next: u64,
    pending: HashMap<u64, Pending>,
}

/// What to do with a new connection.
#[derive(Debug)]
pub enum Admission {
    Admit {
        id: u64,
        banner: Arc<Banner>,
        evict: CancellationToken,
        /// A silent connection closed to make room.
        evicted: Option<SocketAddr>,
    },
    /// Dropped: `startups` connections are unauthenticated.
    Drop { startups: usize },
}

impl Startups {
    /// Decides on a new connection from `peer`; `roll` is uniform in
    /// 0..100.
    pub fn admit(
        &mut self,
        limit: &MaxStartups,
        peer: SocketAddr,
        now: Instant,
        roll: u32,
    ) -> Admission {
        let startups = self.pending.len();
        let mut evicted = None;
        if limit.should_drop(startups, roll) {
            match self.evict_silent(now) {
                Some(p) => evicted = Some(p),
                None => return Admission::Drop { startups },
            }
        }
        self.next += 1;
        let banner = Arc::new(Banner::default());
        let evict = CancellationToken::new();
        self.pending.insert(
            self.next,
            Pending {
                peer,
                since: now,
                banner: banner.clone(),
                evict: evict.clone(),
            },
        );
        Admission::Admit {
            id: self.next,
            banner,
            evict,
            evicted,
        }
    }

    /// Closes the oldest connection that has sent nothing for
    /// [`SILENT_AFTER`].
    fn evict_silent(&mut self, now: Instant) -> Option<SocketAddr> {
        let (&id, _) = self
            .pending
            .iter()
            .filter(|(_, p)| {
                !p.banner.seen() && now.saturating_duration_since(p.since) >= SILENT_AFTER
            })
            .min_by_key(|(_, p)| p.since)?;
        let p = self.pending.remove(&id)?;
        p.evict.cancel();
        Some(p.peer)
    }

    /// The connection authenticated or ended.
    pub fn release(&mut self, id: u64) {
        self.pending.remove(&id);
    }
}

/// Holds a connection's place among the unauthenticated ones until it
/// authenticates or ends.
pub struct Place {
    startups: Arc<Mutex<Startups>>,
    id: u64,
}

impl Place {
    pub fn new(startups: Arc<Mutex<Startups>>, id: u64) -> Place {
        Place { startups, id }
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        crate::server::lock(&self.startups).release(self.id);
    }
}

/// Log lines about dropped connections, at most `burst` a minute; the
/// rest are counted and summed up in the next line (sshd rate-limits
/// these too, so a flood cannot flood the log).
#[derive(Debug)]
pub struct LogBudget {
    burst: u32,
    window: Option<Instant>,
    shown: u32,
    hidden: u64,
}

impl LogBudget {
    pub fn new(burst: u32) -> LogBudget {
        LogBudget {
            burst,
            window: None,
            shown: 0,
            hidden: 0,
        }
    }

    /// `Some(hidden)` when a line may be logged now (with how many were
    /// left out before it), `None` when it is to be left out.
    pub fn take(&mut self, now: Instant) -> Option<u64> {
        let fresh = self
            .window
            .is_none_or(|w| now.saturating_duration_since(w) >= Duration::from_secs(60));
        if fresh {
            self.window = Some(now);
            self.shown = 0;
        }
        if self.shown >= self.burst {
            self.hidden += 1;
            return None;
        }
        self.shown += 1;
        Some(std::mem::take(&mut self.hidden))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax() {
        let cases = [
            ("10:30:100", Some((10, 30, 100))),
            ("10", Some((10, 100, 10))),
            ("1:100:1", Some((1, 100, 1))),
            ("5:30:4", None),
            ("10:0:100", None),
            ("10:101:100", None),
            ("0", None),
            ("10:30", None),
            ("a:b:c", None),
        ];
        for (input, want) in cases {
            let got = input
                .parse::<MaxStartups>()
                .ok()
                .map(|m| (m.start, m.rate, m.full));
            assert_eq!(got, want, "{input}");
        }
    }

    #[test]
    fn random_early_drop_rises_linearly() {
        let m: MaxStartups = "10:30:100".parse().unwrap();
        let cases = [
            (0, 0),
            (9, 0),
            (10, 30),
            (55, 65),
            (99, 99),
            (100, 100),
            (500, 100),
        ];
        for (startups, percent) in cases {
            assert_eq!(m.drop_percent(startups), percent, "{startups}");
        }
        assert!(m.should_drop(10, 29) && !m.should_drop(10, 30));
        let hard: MaxStartups = "3".parse().unwrap();
        assert_eq!((hard.drop_percent(2), hard.drop_percent(3)), (0, 100));
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_connection_makes_room_for_a_new_one() {
        let limit: MaxStartups = "2".parse().unwrap();
        let peer: SocketAddr = "192.0.2.1:1000".parse().unwrap();
        let mut s = Startups::default();
        let Admission::Admit { evict: silent, .. } = s.admit(&limit, peer, Instant::now(), 0)
        else {
            panic!("first admitted");
        };
        let Admission::Admit { banner, .. } = s.admit(&limit, peer, Instant::now(), 0) else {
            panic!("second admitted");
        };
        banner.observe(b"SSH-2.0-OpenSSH_9.2\r\n");
        // Full, and the silent one is too young to give way.
        assert!(matches!(
            s.admit(&limit, peer, Instant::now(), 99),
            Admission::Drop { startups: 2 }
        ));
        tokio::time::advance(SILENT_AFTER).await;
        let got = s.admit(&limit, peer, Instant::now(), 99);
        assert!(
            matches!(
                got,
                Admission::Admit {
                    evicted: Some(_),
                    ..
                }
            ),
            "{got:?}"
        );
        assert!(silent.is_cancelled());
        assert_eq!(s.pending.len(), 2);
        // The newcomer falls silent and gives way in turn; the one that
        // sent its version line never does.
        tokio::time::advance(SILENT_AFTER).await;
        let _ = s.admit(&limit, peer, Instant::now(), 99);
        assert!(matches!(
            s.admit(&limit, peer, Instant::now(), 99),
            Admission::Drop { .. }
        ));
    }

    #[test]
    fn banner_lines_are_collected_across_reads_and_bounded() {
        let b = Banner::default();
        b.observe(b"SSH-2.0-Open");
        assert!(!b.seen());
        b.observe(b"SSH_9.2\r\n\x00\x00junk");
        assert!(b.seen());
        assert_eq!(b.line(), b"SSH-2.0-OpenSSH_9.2");
        let long = Banner::default();
        long.observe(&[b'a'; 1000]);
        long.observe(b"\n");
        assert_eq!(long.line().len(), BANNER_MAX);
    }

    #[tokio::test(start_paused = true)]
    async fn drop_logs_are_rate_limited() {
        let mut budget = LogBudget::new(2);
        let t = Instant::now();
        assert_eq!(budget.take(t), Some(0));
        assert_eq!(budget.take(t), Some(0));
        assert_eq!(budget.take(t), None);
        assert_eq!(budget.take(t), None);
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(budget.take(Instant::now()), Some(2));
    }
}
