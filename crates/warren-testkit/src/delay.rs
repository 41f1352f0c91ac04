//! A userspace TCP proxy that delays every byte by a fixed one-way latency,
//! for WAN-like links (the kernel here has no netem qdisc).
//!
//! Design choice: per direction, a reader thread stamps each chunk with
//! `read_at + one_way` and puts it on a bounded queue; a writer thread sleeps
//! until that instant and writes it. The queue keeps order, and when it is
//! full the reader stops reading, so TCP backpressure reaches the sender.
//! The queue is bounded in bytes, not chunks: at most `MAX_IN_FLIGHT` bytes
//! per direction (far above the windows under test, so the proxy itself
//! never becomes the window; reads of any size count what they carry).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

use crate::serve::{Server, Tasks};

const CHUNK: usize = 64 * 1024;
/// Bytes held per direction before the reader stops reading.
const MAX_IN_FLIGHT: usize = 256 * 1024 * 1024;

/// Bytes queued in one direction, with a condition to wait for room.
#[derive(Default)]
struct Budget {
    used: std::sync::Mutex<usize>,
    room: std::sync::Condvar,
}

impl Budget {
    /// Waits until `n` more bytes fit, then takes them.
    fn take(&self, n: usize) {
        let Ok(mut used) = self.used.lock() else {
            return;
        };
        while *used + n > MAX_IN_FLIGHT && *used > 0 {
            used = match self.room.wait(used) {
                Ok(u) => u,
                Err(_) => return,
            };
        }
        *used += n;
    }

    fn give(&self, n: usize) {
        if let Ok(mut used) = self.used.lock() {
            *used = used.saturating_sub(n);
        }
        self.room.notify_all();
    }
}
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A running delay proxy; see [`DelayProxy::start`].
pub struct DelayProxy {
    addr: SocketAddr,
    target: SocketAddr,
    one_way: Duration,
    /// Bytes relayed up (client to target) and down, over all connections.
    counts: Counts,
    _server: Server,
}

type Counts = std::sync::Arc<[std::sync::atomic::AtomicU64; 2]>;

impl DelayProxy {
    /// Listens on `listen` (e.g. `"127.0.0.1:0"`) and forwards each
    /// connection to `target`, both directions delayed by `one_way` (so a
    /// round trip gains about `2 * one_way`).
    pub fn start(listen: &str, target: SocketAddr, one_way: Duration) -> DelayProxy {
        let listener =
            TcpListener::bind(listen).unwrap_or_else(|e| panic!("DelayProxy: bind {listen}: {e}"));
        crate::echo::deep_backlog(&listener);
        let addr = listener.local_addr().expect("DelayProxy local_addr");
        let counts = Counts::default();
        let c = counts.clone();
        let server = Server::start("delay-proxy", listener, move |client, tasks| {
            let tasks2 = tasks.clone();
            let c = c.clone();
            tasks.spawn("delay-connect", move || {
                connect(client, target, one_way, &tasks2, &c);
            });
        });
        DelayProxy {
            addr,
            target,
            one_way,
            counts,
            _server: server,
        }
    }

    /// The bound address (with the real port when started on port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn target(&self) -> SocketAddr {
        self.target
    }

    pub fn one_way(&self) -> Duration {
        self.one_way
    }

    /// Bytes relayed so far: (up, down), over all connections.
    pub fn bytes(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.counts[0].load(Relaxed), self.counts[1].load(Relaxed))
    }
}

/// Connects upstream and starts both directions; on failure drops the
/// client (it sees EOF, as with a refused forward).
fn connect(
    client: TcpStream,
    target: SocketAddr,
    one_way: Duration,
    tasks: &Tasks,
    counts: &Counts,
) {
    let tracked_client = tasks.track(&client);
    let Ok(upstream) = TcpStream::connect_timeout(&target, CONNECT_TIMEOUT) else {
        return;
    };
    let tracked_upstream = tasks.track(&upstream);
    for s in [&client, &upstream] {
        let _ = s.set_nodelay(true);
    }
    let (Ok(client2), Ok(upstream2)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    // Each direction keeps the registrations alive until it is done; the
    // sockets close when both directions have dropped their clones.
    let guards = std::sync::Arc::new((tracked_client, tracked_upstream));
    let g2 = guards.clone();
    direction(
        client,
        upstream2,
        one_way,
        tasks,
        ("up", counts.clone(), 0),
        guards,
    );
    direction(
        upstream,
        client2,
        one_way,
        tasks,
        ("down", counts.clone(), 1),
        g2,
    );
}

type Chunk = (Instant, Vec<u8>);

fn direction<G: Send + Sync + 'static>(
    from: TcpStream,
    to: TcpStream,
    one_way: Duration,
    tasks: &Tasks,
    (name, counts, which): (&str, Counts, usize),
    guard: std::sync::Arc<G>,
) {
    // The byte budget bounds the queue, so the channel itself needs none.
    let (tx, rx) = channel::<Chunk>();
    let budget = std::sync::Arc::new(Budget::default());
    let (b_read, b_write) = (budget.clone(), budget);
    let g2 = guard.clone();
    tasks.spawn(&format!("delay-read-{name}"), move || {
        read_side(from, one_way, &tx, &b_read, &counts[which]);
        drop(g2);
    });
    tasks.spawn(&format!("delay-write-{name}"), move || {
        write_side(to, &rx, &b_write);
        drop(guard);
    });
}

/// Reads chunks and queues them with their release time; blocks (and so
/// stops reading) while the queue is full. Dropping `tx` signals EOF.
fn read_side(
    mut from: TcpStream,
    one_way: Duration,
    tx: &Sender<Chunk>,
    budget: &Budget,
    count: &std::sync::atomic::AtomicU64,
) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                count.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                budget.take(n);
                let release = Instant::now() + one_way;
                if tx.send((release, buf[..n].to_vec())).is_err() {
                    // The writer gave up (peer gone): stop reading too.
                    let _ = from.shutdown(Shutdown::Read);
                    return;
                }
            }
        }
    }
}

/// Writes each chunk at its release time; after the last one, half-closes
/// (the EOF travels with the same delay as the data before it).
fn write_side(mut to: TcpStream, rx: &Receiver<Chunk>, budget: &Budget) {
    for (release, data) in rx {
        let now = Instant::now();
        if release > now {
            std::thread::sleep(release - now);
        }
        let written = to.write_all(&data);
        budget.give(data.len());
        if written.is_err() {
            let _ = to.shutdown(Shutdown::Both);
            return;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TcpEcho;

    #[test]
    fn ping_pong_gains_at_least_two_one_way_delays() {
        let echo = TcpEcho::start("127.0.0.1:0");
        let one_way = Duration::from_millis(40);
        let proxy = DelayProxy::start("127.0.0.1:0", echo.addr(), one_way);
        let mut s = TcpStream::connect(proxy.addr()).unwrap();
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        for _ in 0..3 {
            let start = Instant::now();
            s.write_all(b"x").unwrap();
            let mut b = [0u8; 1];
            s.read_exact(&mut b).unwrap();
            let rtt = start.elapsed();
            assert!(rtt >= 2 * one_way, "rtt {rtt:?} < 2 x {one_way:?}");
            assert!(
                rtt < 2 * one_way + Duration::from_millis(500),
                "rtt {rtt:?}"
            );
        }
    }

    #[test]
    fn ten_megabytes_arrive_intact_and_in_order() {
        let echo = TcpEcho::start("127.0.0.1:0");
        let proxy = DelayProxy::start("127.0.0.1:0", echo.addr(), Duration::from_millis(5));
        let data: Vec<u8> = (0..10 * 1024 * 1024u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let mut s = TcpStream::connect(proxy.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut w = s.try_clone().unwrap();
        let sent = data.clone();
        let writer = std::thread::spawn(move || {
            w.write_all(&sent).unwrap();
            w.shutdown(Shutdown::Write).unwrap();
        });
        let mut got = Vec::with_capacity(data.len());
        s.read_to_end(&mut got).unwrap();
        writer.join().unwrap();
        assert_eq!(got.len(), data.len());
        assert!(got == data, "echoed bytes differ from the sent ones");
    }
}
