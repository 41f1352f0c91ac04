//! Peers for forwarding tests: a TCP echo, a unix-socket echo and a tiny
//! HTTP server, each on std threads and stopped (every connection shut down,
//! every thread joined) on `Drop`.
//!
//! Design choice: an echo connection is one thread that writes back what it
//! read before reading more, so a client that sends far more than the socket
//! buffers hold must read concurrently (as any real forwarding test does).

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::serve::{Server, Socket, Tasks};

/// Echoes every byte back until EOF, then shuts down its write side.
fn echo<S: Socket>(mut conn: S) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if conn.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
    conn.shutdown_socket(Shutdown::Write);
}

fn spawn_echo<S: Socket>(conn: S, tasks: &Tasks, name: &str) {
    let tracked = tasks.track(&conn);
    tasks.spawn(name, move || {
        echo(conn);
        drop(tracked);
    });
}

/// A TCP echo server; see [`TcpEcho::start`].
pub struct TcpEcho {
    addr: SocketAddr,
    _server: Server,
}

impl TcpEcho {
    /// Listens on `addr` (e.g. `"127.0.0.1:0"` for a free port) and echoes
    /// every connection until EOF.
    pub fn start(addr: &str) -> TcpEcho {
        let listener =
            TcpListener::bind(addr).unwrap_or_else(|e| panic!("TcpEcho: bind {addr}: {e}"));
        deep_backlog(&listener);
        let addr = listener.local_addr().expect("TcpEcho local_addr");
        let server = Server::start("tcp-echo", listener, |conn: TcpStream, tasks| {
            let _ = conn.set_nodelay(true);
            spawn_echo(conn, tasks, "tcp-echo-conn");
        });
        TcpEcho {
            addr,
            _server: server,
        }
    }

    /// The bound address (with the real port when started on port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// A unix-socket echo server; the socket file is removed on `Drop`.
pub struct UnixEcho {
    path: PathBuf,
    server: Option<Server>,
}

impl UnixEcho {
    /// Binds a unix socket at `path` (which must not exist) and echoes every
    /// connection until EOF.
    pub fn start(path: impl AsRef<Path>) -> UnixEcho {
        let path = path.as_ref().to_owned();
        let listener = UnixListener::bind(&path)
            .unwrap_or_else(|e| panic!("UnixEcho: bind {}: {e}", path.display()));
        let server = Server::start("unix-echo", listener, |conn, tasks| {
            spawn_echo(conn, tasks, "unix-echo-conn");
        });
        UnixEcho {
            path,
            server: Some(server),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for UnixEcho {
    fn drop(&mut self) {
        // Stop first: the accept loop is woken by connecting to the path.
        self.server.take();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A tiny HTTP/1.x server: any request gets `200 OK` and [`HttpHello::BODY`]
/// with `Connection: close` (enough for curl through a SOCKS proxy).
pub struct HttpHello {
    addr: SocketAddr,
    requests: Arc<AtomicU64>,
    _server: Server,
}

impl HttpHello {
    /// The response body, naming the server so a test can tell it arrived.
    pub const BODY: &'static str = "hello from warren-testkit HttpHello\n";

    /// Listens on `addr` (e.g. `"127.0.0.1:0"`).
    pub fn start(addr: &str) -> HttpHello {
        let listener =
            TcpListener::bind(addr).unwrap_or_else(|e| panic!("HttpHello: bind {addr}: {e}"));
        let addr = listener.local_addr().expect("HttpHello local_addr");
        let requests = Arc::new(AtomicU64::new(0));
        let counter = requests.clone();
        let server = Server::start("http-hello", listener, move |conn: TcpStream, tasks| {
            let tracked = tasks.track(&conn);
            let counter = counter.clone();
            tasks.spawn("http-hello-conn", move || {
                let _ = answer_http(conn, &counter);
                drop(tracked);
            });
        });
        HttpHello {
            addr,
            requests,
            _server: server,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many well-formed requests were answered so far (counted before
    /// the response goes out: a client that has it is always counted).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

/// Reads one request head (bounded in size and time) and answers it.
fn answer_http(mut conn: TcpStream, answered: &AtomicU64) -> io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut buf)?;
        if n == 0 || head.len() > 64 * 1024 {
            return Err(io::ErrorKind::InvalidData.into());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let request_line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    if !request_line.windows(8).any(|w| w == b" HTTP/1.") {
        return Err(io::ErrorKind::InvalidData.into());
    }
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{}",
        HttpHello::BODY.len(),
        HttpHello::BODY
    );
    answered.fetch_add(1, Ordering::Relaxed);
    conn.write_all(response.as_bytes())?;
    conn.shutdown(Shutdown::Write)?;
    // Drain whatever the client still sends (a request body) until it
    // closes, so our close does not turn into a RST that eats the response.
    while matches!(conn.read(&mut buf), Ok(n) if n > 0) {}
    Ok(())
}

/// std listens with a backlog of 128; hundreds of connections arriving at
/// once (load tests, with other tests sharing the CPU) would overflow it and
/// be refused. Listening again raises the backlog on Linux.
pub(crate) fn deep_backlog(listener: &TcpListener) {
    let _ = rustix::net::listen(listener, 4096);
}
