//! `warren-delay-proxy LISTEN TARGET ONE_WAY_MS [COUNT_FILE]`: the
//! testkit's [`DelayProxy`] as a process, for benchmark scripts. Prints
//! the bound address on stdout once listening (so `LISTEN` may use port
//! 0), then runs until killed. With `COUNT_FILE`, keeps "UP DOWN" (bytes
//! relayed each way so far) in that file, rewritten every 100 ms.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "dev tool: a bad argument ends it with the reason"
)]

use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use warren_testkit::DelayProxy;

const USAGE: &str = "usage: warren-delay-proxy LISTEN TARGET ONE_WAY_MS [COUNT_FILE]\n  \
    e.g. warren-delay-proxy 127.0.0.1:0 127.0.0.1:22 25  (RTT +50 ms)";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (listen, target, ms, count) = match args.as_slice() {
        [l, t, m] => (l, t, m, None),
        [l, t, m, c] => (l, t, m, Some(c.clone())),
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    let target: SocketAddr = target
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .unwrap_or_else(|| fail(&format!("bad TARGET {target:?}")));
    let ms: u64 = ms
        .parse()
        .unwrap_or_else(|_| fail(&format!("bad ONE_WAY_MS {ms:?}")));
    let proxy = DelayProxy::start(listen, target, Duration::from_millis(ms));
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", proxy.addr()).expect("write stdout");
    out.flush().expect("flush stdout");
    drop(out);
    eprintln!(
        "warren-delay-proxy: {} -> {target}, one way {ms} ms",
        proxy.addr()
    );
    loop {
        match &count {
            Some(path) => {
                let (up, down) = proxy.bytes();
                let tmp = format!("{path}.tmp");
                std::fs::write(&tmp, format!("{up} {down}\n")).expect("write the count file");
                std::fs::rename(&tmp, path).expect("rename the count file");
                std::thread::sleep(Duration::from_millis(100));
            }
            None => std::thread::park(),
        }
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("warren-delay-proxy: {msg}\n{USAGE}");
    std::process::exit(2);
}
