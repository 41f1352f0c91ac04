//! The thread machinery shared by the echo services and the delay proxy: an
//! accept loop on its own thread, one thread (or a few) per connection, and a
//! stop that really ends everything.
//!
//! Design choice: plain std threads, no runtime. A blocked `accept` is woken
//! by connecting to the listener after the stop flag is set, and blocked
//! connection threads are woken by `shutdown(Both)` on a clone of every
//! socket they hold; `Drop` then joins every thread, so nothing outlives the
//! fixture.

use std::collections::HashMap;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A socket the machinery can clone and shut down from another thread.
pub(crate) trait Socket: io::Read + io::Write + Send + Sized + 'static {
    fn clone_socket(&self) -> io::Result<Self>;
    fn shutdown_socket(&self, how: Shutdown);
}

impl Socket for TcpStream {
    fn clone_socket(&self) -> io::Result<Self> {
        self.try_clone()
    }
    fn shutdown_socket(&self, how: Shutdown) {
        let _ = self.shutdown(how);
    }
}

impl Socket for UnixStream {
    fn clone_socket(&self) -> io::Result<Self> {
        self.try_clone()
    }
    fn shutdown_socket(&self, how: Shutdown) {
        let _ = self.shutdown(how);
    }
}

/// A listener whose accept loop can be woken by connecting to it.
pub(crate) trait Listen: Send + 'static {
    type Conn: Socket;
    fn accept_conn(&self) -> io::Result<Self::Conn>;
    /// Connects to the listener once so a blocked `accept` returns; false
    /// if that connect failed (the accept thread then cannot be joined).
    fn waker(&self) -> Box<dyn Fn() -> bool + Send + Sync>;
}

impl Listen for TcpListener {
    type Conn = TcpStream;
    fn accept_conn(&self) -> io::Result<TcpStream> {
        self.accept().map(|(s, _)| s)
    }
    fn waker(&self) -> Box<dyn Fn() -> bool + Send + Sync> {
        let addr = self.local_addr().map(connectable);
        Box::new(move || {
            addr.as_ref()
                .is_ok_and(|a| TcpStream::connect_timeout(a, Duration::from_secs(1)).is_ok())
        })
    }
}

impl Listen for UnixListener {
    type Conn = UnixStream;
    fn accept_conn(&self) -> io::Result<UnixStream> {
        self.accept().map(|(s, _)| s)
    }
    fn waker(&self) -> Box<dyn Fn() -> bool + Send + Sync> {
        let path: Option<PathBuf> = self
            .local_addr()
            .ok()
            .and_then(|a| a.as_pathname().map(Into::into));
        Box::new(move || {
            path.as_ref()
                .is_some_and(|p| UnixStream::connect(p).is_ok())
        })
    }
}

/// A listening address one can connect to: 0.0.0.0 and :: become loopback.
pub(crate) fn connectable(mut addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        match addr {
            SocketAddr::V4(_) => addr.set_ip([127, 0, 0, 1].into()),
            SocketAddr::V6(_) => addr.set_ip(std::net::Ipv6Addr::LOCALHOST.into()),
        }
    }
    addr
}

/// Every connection thread and socket of one server, so `stop` can end them.
#[derive(Clone, Default)]
pub(crate) struct Tasks(Arc<Mutex<TasksInner>>);

#[derive(Default)]
struct TasksInner {
    stopping: bool,
    next_id: u64,
    sockets: HashMap<u64, Box<dyn Fn() + Send>>,
    threads: Vec<JoinHandle<()>>,
}

/// Unregisters a socket from [`Tasks`] when the connection is done with it
/// (the registered clone is what would otherwise keep the fd open).
pub(crate) struct Tracked {
    tasks: Tasks,
    id: u64,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.tasks.lock().sockets.remove(&self.id);
    }
}

impl Tasks {
    fn lock(&self) -> std::sync::MutexGuard<'_, TasksInner> {
        // A panicking connection thread must not wedge the fixture's Drop.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on a named thread that `stop` will join.
    pub(crate) fn spawn(&self, name: &str, f: impl FnOnce() + Send + 'static) {
        let handle = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(f)
            .expect("spawn fixture thread");
        let mut inner = self.lock();
        let (done, running): (Vec<_>, Vec<_>) =
            inner.threads.drain(..).partition(|t| t.is_finished());
        inner.threads = running;
        inner.threads.push(handle);
        drop(inner);
        for t in done {
            let _ = t.join();
        }
    }

    /// Registers a socket to be shut down on `stop`; if the server is
    /// already stopping, shuts it down at once.
    pub(crate) fn track<S: Socket>(&self, socket: &S) -> Tracked {
        let mut inner = self.lock();
        inner.next_id += 1;
        let id = inner.next_id;
        match socket.clone_socket() {
            Ok(clone) if !inner.stopping => {
                let shutdown = move || clone.shutdown_socket(Shutdown::Both);
                inner.sockets.insert(id, Box::new(shutdown));
            }
            _ => socket.shutdown_socket(Shutdown::Both),
        }
        Tracked {
            tasks: self.clone(),
            id,
        }
    }

    /// Shuts every tracked socket down and joins every thread.
    pub(crate) fn stop(&self) {
        let sockets: Vec<_> = {
            let mut inner = self.lock();
            inner.stopping = true;
            inner.sockets.drain().map(|(_, s)| s).collect()
        };
        for shutdown in sockets {
            shutdown();
        }
        loop {
            let threads = std::mem::take(&mut self.lock().threads);
            if threads.is_empty() {
                break;
            }
            for t in threads {
                let _ = t.join();
            }
        }
    }
}

/// An accept loop on its own thread; stops and joins everything on `Drop`.
pub(crate) struct Server {
    stop: Arc<AtomicBool>,
    wake: Box<dyn Fn() -> bool + Send + Sync>,
    accept: Option<JoinHandle<()>>,
    tasks: Tasks,
}

impl Server {
    /// Accepts on `listener`, handing each connection to `handle` (on the
    /// accept thread: it should `tasks.spawn` its work and return).
    pub(crate) fn start<L, H>(name: &str, listener: L, handle: H) -> Server
    where
        L: Listen,
        H: Fn(L::Conn, &Tasks) + Send + 'static,
    {
        static SERVERS: AtomicU64 = AtomicU64::new(0);
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = Tasks::default();
        let wake = listener.waker();
        let n = SERVERS.fetch_add(1, Ordering::Relaxed);
        let accept = {
            let (stop, tasks) = (stop.clone(), tasks.clone());
            std::thread::Builder::new()
                .name(format!("{name}-accept-{n}"))
                .spawn(move || accept_loop(&listener, &stop, &tasks, handle))
                .expect("spawn accept thread")
        };
        Server {
            stop,
            wake,
            accept: Some(accept),
            tasks,
        }
    }
}

fn accept_loop<L: Listen>(
    listener: &L,
    stop: &AtomicBool,
    tasks: &Tasks,
    handle: impl Fn(L::Conn, &Tasks),
) {
    loop {
        let conn = listener.accept_conn();
        if stop.load(Ordering::SeqCst) {
            return;
        }
        match conn {
            Ok(conn) => handle(conn, tasks),
            // EMFILE and friends: back off instead of spinning.
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let woken = (self.wake)();
        if let Some(accept) = self.accept.take().filter(|_| woken) {
            let _ = accept.join();
        }
        self.tasks.stop();
    }
}
