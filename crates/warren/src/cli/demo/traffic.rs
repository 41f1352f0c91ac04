//! The bytes the demo pushes: a TCP service on 127.0.0.1 (the far end of
//! every forward) that answers small pings, timed for latency, then takes a
//! bulk transfer, checks it byte for byte and says how much arrived intact,
//! timed for throughput; plus the client side of a SOCKS5 CONNECT.
//!
//! Design choice: bulk data flows one way only. An echo would send it back
//! while it is still arriving, and with warren at both ends of a connection
//! full-duplex bulk traffic can stall: russh stops reading its socket while
//! a write to it is blocked, so when both peers have more than the socket
//! buffers in flight (a window of several MiB allows that) each waits for the
//! other. The SOCKS5 client is written here because it is a dozen lines of
//! RFC 1928 (no authentication, one CONNECT) spoken only to warren's own
//! proxy; warren-core implements the server side.

use std::net::{SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Bytes sent through each bulk step.
pub const BULK: usize = 16 << 20;
/// Pings timed before the bulk transfer; the median is reported.
const PINGS: usize = 20;
const PING: usize = 64;
const CHUNK: usize = 256 << 10;
/// The service's verdict: bytes that arrived intact (u64, big endian),
/// then 0 if that was all of them or 1 if the next one was wrong.
const VERDICT: usize = 9;

/// Random bytes to send (the same buffer for every step).
pub fn payload(len: usize) -> Arc<[u8]> {
    let mut data = vec![0u8; len];
    rand::fill(&mut data[..]);
    data.into()
}

/// What one connection measured.
#[derive(Debug, Clone, Copy)]
pub struct Transfer {
    pub bytes: usize,
    pub elapsed: Duration,
    /// Median round trip of a small message, when measured.
    pub rtt: Option<Duration>,
}

/// The far end of every forward: on each connection it echoes `PINGS`
/// pings, then reads to end of input comparing against the payload, and
/// answers with its verdict.
pub struct Service {
    pub addr: SocketAddr,
    token: CancellationToken,
    task: JoinHandle<()>,
}

impl Service {
    pub async fn start(payload: Arc<[u8]>) -> std::io::Result<Service> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let token = CancellationToken::new();
        let task = tokio::spawn(accept(listener, payload, token.clone()));
        Ok(Service { addr, token, task })
    }

    pub async fn stop(self) {
        self.token.cancel();
        let _ = self.task.await;
    }
}

async fn accept(listener: TcpListener, payload: Arc<[u8]>, token: CancellationToken) {
    let mut conns = tokio::task::JoinSet::new();
    while let Some(accepted) = token.run_until_cancelled(listener.accept()).await {
        while conns.try_join_next().is_some() {}
        if let Ok((stream, _)) = accepted {
            conns.spawn(serve(stream, payload.clone()));
        }
    }
    conns.shutdown().await;
}

async fn serve(mut stream: TcpStream, payload: Arc<[u8]>) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut ping = [0u8; PING];
    for _ in 0..PINGS {
        stream.read_exact(&mut ping).await?;
        stream.write_all(&ping).await?;
    }
    let (intact, wrong) = match compare(&mut stream, &payload).await {
        Ok(n) => (n, 0u8),
        Err(Mismatch(n)) => (n, 1),
    };
    let mut verdict = (intact as u64).to_be_bytes().to_vec();
    verdict.push(wrong);
    stream.write_all(&verdict).await?;
    stream.shutdown().await
}

/// The first byte that differs from the payload (or goes beyond it).
struct Mismatch(usize);

/// Reads `read` to its end, checking it against `expected`; the number of
/// bytes read, all intact.
async fn compare(read: &mut (impl AsyncRead + Unpin), expected: &[u8]) -> Result<usize, Mismatch> {
    let mut buf = vec![0u8; CHUNK];
    let mut got = 0;
    loop {
        let n = read.read(&mut buf).await.map_err(|_| Mismatch(got))?;
        if n == 0 {
            return Ok(got);
        }
        let Some(want) = expected.get(got..got + n) else {
            return Err(Mismatch(expected.len()));
        };
        if want != &buf[..n] {
            let same = want
                .iter()
                .zip(&buf[..n])
                .take_while(|(a, b)| a == b)
                .count();
            return Err(Mismatch(got + same));
        }
        got += n;
    }
}

/// Checks output that was collected in full against `expected`.
pub fn check(got: &[u8], expected: &[u8]) -> anyhow::Result<()> {
    if got == expected {
        return Ok(());
    }
    let same = got.iter().zip(expected).take_while(|(a, b)| a == b).count();
    if same == got.len() {
        bail!("{} of {} bytes arrived", got.len(), expected.len());
    }
    bail!("byte {same} of {} arrived altered", expected.len())
}

/// Connects to `addr` (a forward's local port or the server's -R port).
pub async fn connect(addr: SocketAddr) -> anyhow::Result<TcpStream> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Times pings to the service on `stream`, then sends `data` and waits
/// for the service to confirm every byte arrived intact.
pub async fn exchange(mut stream: TcpStream, data: &[u8]) -> anyhow::Result<Transfer> {
    let rtt = pings(&mut stream).await?;
    let start = Instant::now();
    for chunk in data.chunks(CHUNK) {
        stream.write_all(chunk).await.context("sending")?;
    }
    stream.shutdown().await.context("sending end of input")?;
    let mut verdict = [0u8; VERDICT];
    stream
        .read_exact(&mut verdict)
        .await
        .context("the connection closed before the service confirmed the data")?;
    let elapsed = start.elapsed();
    let mut count = [0u8; 8];
    count.copy_from_slice(&verdict[..8]);
    let intact = u64::from_be_bytes(count);
    ensure!(
        verdict[8] == 0,
        "byte {intact} of {} arrived altered",
        data.len()
    );
    ensure!(
        intact == data.len() as u64,
        "{intact} of {} bytes arrived",
        data.len()
    );
    Ok(Transfer {
        bytes: data.len(),
        elapsed,
        rtt: Some(rtt),
    })
}

async fn pings(stream: &mut TcpStream) -> anyhow::Result<Duration> {
    let mut times = Vec::with_capacity(PINGS);
    let mut back = [0u8; PING];
    for i in 0..PINGS {
        let ping = [i as u8; PING];
        let start = Instant::now();
        let answered = async {
            stream.write_all(&ping).await?;
            stream.read_exact(&mut back).await
        };
        answered.await.map_err(|e| ping_failed(e, i))?;
        times.push(start.elapsed());
        ensure!(back == ping, "ping {i} came back altered");
    }
    times.sort();
    Ok(times.get(PINGS / 2).copied().unwrap_or_default())
}

/// A closed connection (an orderly close or a reset, depending on timing)
/// says the forward could not reach the service.
fn ping_failed(e: std::io::Error, answered: usize) -> anyhow::Error {
    use std::io::ErrorKind::{BrokenPipe, ConnectionReset, UnexpectedEof};
    if matches!(e.kind(), UnexpectedEof | ConnectionReset | BrokenPipe) {
        anyhow::anyhow!(
            "the connection closed after {answered} of {PINGS} pings (the far end could not reach the service?)"
        )
    } else {
        anyhow::Error::new(e).context("pinging the service")
    }
}

/// SOCKS5 greeting (no authentication) and CONNECT to `target`; on
/// success the stream carries the target's bytes.
pub async fn socks5_connect(stream: &mut TcpStream, target: SocketAddrV4) -> anyhow::Result<()> {
    stream
        .write_all(&[5, 1, 0])
        .await
        .context("SOCKS5 greeting")?;
    let mut method = [0u8; 2];
    stream
        .read_exact(&mut method)
        .await
        .context("reading the proxy's SOCKS5 method choice")?;
    ensure!(
        method == [5, 0],
        "the proxy refused SOCKS5 without authentication (answered {method:?})"
    );
    let mut request = vec![5, 1, 0, 1];
    request.extend(target.ip().octets());
    request.extend(target.port().to_be_bytes());
    stream.write_all(&request).await.context("SOCKS5 CONNECT")?;
    let mut head = [0u8; 4];
    stream
        .read_exact(&mut head)
        .await
        .context("reading the proxy's SOCKS5 reply")?;
    ensure!(head[0] == 5, "the proxy's reply is not SOCKS5 ({head:?})");
    if head[1] != 0 {
        bail!(
            "the SOCKS5 proxy answered \"{}\" for {target}",
            socks5_reason(head[1])
        );
    }
    // The bound address: IPv4, IPv6 or a name, then the port.
    let rest = match head[3] {
        1 => 4 + 2,
        4 => 16 + 2,
        3 => usize::from(stream.read_u8().await.context("reading the SOCKS5 reply")?) + 2,
        other => bail!("the SOCKS5 reply has an unknown address type {other}"),
    };
    let mut skip = vec![0u8; rest];
    stream
        .read_exact(&mut skip)
        .await
        .context("reading the SOCKS5 reply")?;
    Ok(())
}

/// RFC 1928's reply codes.
fn socks5_reason(code: u8) -> &'static str {
    match code {
        1 => "general failure",
        2 => "connection not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "unknown error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn service_confirms_every_byte() {
        let data = payload(3 * CHUNK + 17);
        let service = Service::start(data.clone()).await.unwrap();
        let t = exchange(connect(service.addr).await.unwrap(), &data)
            .await
            .unwrap();
        assert_eq!(t.bytes, data.len());
        assert!(t.rtt.is_some());
        service.stop().await;
    }

    #[tokio::test]
    async fn service_reports_altered_and_missing_bytes() {
        let data = payload(1000);
        let service = Service::start(data.clone()).await.unwrap();
        let mut altered = data.to_vec();
        altered[700] ^= 1;
        let err = exchange(connect(service.addr).await.unwrap(), &altered)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("byte 700 of 1000"), "{err}");
        service.stop().await;
    }

    #[test]
    fn collected_output_is_checked() {
        assert!(check(b"abc", b"abc").is_ok());
        let err = check(b"abX", b"abc").unwrap_err().to_string();
        assert!(err.contains("byte 2 of 3"), "{err}");
        let err = check(b"ab", b"abc").unwrap_err().to_string();
        assert!(err.contains("2 of 3 bytes"), "{err}");
    }
}
