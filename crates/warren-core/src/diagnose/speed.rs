//! `--speed`: the round-trip time (SSH keepalive requests, which the
//! server answers without starting anything) and an 8 MiB download
//! (`head -c` of /dev/zero over an exec channel), as one check with the
//! numbers.
//!
//! Design choice: a measurement, never a verdict: the check is ok unless
//! the measurement itself failed; the numbers are for the reader.

use std::time::{Duration, Instant};

use russh::ChannelMsg;

use super::Check;
use crate::session::Session;

/// The download's size.
pub const SAMPLE: u64 = 8 * 1024 * 1024;
/// How many round trips are timed.
const PINGS: usize = 5;

/// Round trips and the download, as one check named `NAME speed`.
pub async fn check(name: &str, session: &Session, wait: Duration) -> Check {
    let start = Instant::now();
    let check_name = format!("{name} speed");
    let rtts = match tokio::time::timeout(wait, pings(session)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            return Check::fail(check_name, format!("keepalive request failed: {e}")).since(start);
        }
        Err(_) => {
            return Check::fail(
                check_name,
                format!("no keepalive answer within {}s", wait.as_secs()),
            )
            .since(start);
        }
    };
    let rtt = summary_of(&rtts);
    let check = match tokio::time::timeout(wait, download(session)).await {
        Ok(Ok((bytes, took))) if bytes == SAMPLE => {
            Check::ok(check_name, format!("{rtt}; {}", throughput(bytes, took)))
        }
        Ok(Ok((bytes, _))) => Check::warn(
            check_name,
            format!("{rtt}; the download stopped at {bytes} of {SAMPLE} bytes"),
        )
        .fix("check that `head` exists on the server (coreutils or busybox)"),
        Ok(Err(e)) => Check::warn(check_name, format!("{rtt}; the download failed: {e}")),
        Err(_) => Check::warn(
            check_name,
            format!("{rtt}; 8 MiB did not arrive within {}s", wait.as_secs()),
        ),
    };
    check.since(start)
}

async fn pings(session: &Session) -> Result<Vec<Duration>, russh::Error> {
    let mut out = Vec::with_capacity(PINGS);
    for _ in 0..PINGS {
        let t = Instant::now();
        session.handle().send_ping().await?;
        out.push(t.elapsed());
    }
    Ok(out)
}

/// `round trip MIN ms (median M ms of N)`.
fn summary_of(rtts: &[Duration]) -> String {
    let mut sorted = rtts.to_vec();
    sorted.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    match (sorted.first(), sorted.get(sorted.len() / 2)) {
        (Some(min), Some(median)) => format!(
            "round trip {:.1} ms (median {:.1} ms of {})",
            ms(*min),
            ms(*median),
            sorted.len()
        ),
        _ => "no round trip measured".to_owned(),
    }
}

/// `8 MiB down in T ms (R MB/s)`.
fn throughput(bytes: u64, took: Duration) -> String {
    let secs = took.as_secs_f64().max(1e-6);
    let rate = bytes as f64 / secs / 1e6;
    format!(
        "{} MiB down in {} ms ({rate:.1} MB/s)",
        bytes / (1024 * 1024),
        took.as_millis()
    )
}

/// Runs `head -c 8388608 /dev/zero` and counts what arrives (nothing is
/// kept); the time is from the request to the last byte.
async fn download(session: &Session) -> Result<(u64, Duration), russh::Error> {
    let mut channel = session.handle().channel_open_session().await?;
    let start = Instant::now();
    channel
        .exec(true, format!("head -c {SAMPLE} /dev/zero").as_bytes())
        .await?;
    channel.eof().await?;
    let mut bytes: u64 = 0;
    let mut last = start.elapsed();
    while let Some(msg) = channel.wait().await {
        match msg {
            ChannelMsg::Data { data } => {
                bytes += data.len() as u64;
                last = start.elapsed();
            }
            ChannelMsg::Close | ChannelMsg::Eof => break,
            _ => {}
        }
    }
    Ok((bytes, last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        let rtts = [3, 1, 2].map(Duration::from_millis);
        assert_eq!(summary_of(&rtts), "round trip 1.0 ms (median 2.0 ms of 3)");
        assert_eq!(summary_of(&[]), "no round trip measured");
        assert_eq!(
            throughput(SAMPLE, Duration::from_millis(100)),
            "8 MiB down in 100 ms (83.9 MB/s)"
        );
    }
}
