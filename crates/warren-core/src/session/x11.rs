//! X11 forwarding (`-X`, `-Y`): the local display's cookie from xauth
//! (a generated untrusted one unless ForwardX11Trusted), a fake cookie
//! sent to the server in the x11-req, and each x11 channel the server
//! opens connected to the local display with the fake cookie swapped for
//! the real one, as OpenSSH's `x11_open_helper` does.
//!
//! Design choice: the real cookie never leaves this machine; a channel
//! whose connection setup does not carry the fake cookie is closed.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use russh::ChannelMsg;
use tokio::io::AsyncWriteExt as _;
use tokio::process::Command;
use tracing::{debug, warn};

/// The only X11 authentication warren forwards (as OpenSSH).
const MIT_COOKIE: &str = "MIT-MAGIC-COOKIE-1";
/// The longest X11 connection setup accepted (name and data are short).
const MAX_SETUP: usize = 64 * 1024;

/// Why X11 forwarding could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum X11Error {
    #[error("X11 forwarding: DISPLAY is not set")]
    NoDisplay,
    #[error("X11 forwarding: cannot parse DISPLAY {0:?}")]
    BadDisplay(String),
    #[error("X11 forwarding: running {xauth} failed")]
    Xauth {
        xauth: String,
        #[source]
        source: std::io::Error,
    },
    #[error("X11 forwarding: {xauth} gave no {MIT_COOKIE} cookie for display {display}")]
    NoCookie { xauth: String, display: String },
}

/// How to reach the local X server.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Unix(PathBuf),
    Tcp(String, u16),
}

/// X11 forwarding as configured (ForwardX11Trusted, ForwardX11Timeout,
/// XAuthLocation).
#[derive(Debug, Clone)]
pub struct X11Request {
    pub trusted: bool,
    pub timeout: Duration,
    pub xauth: String,
}

/// One session's X11 forwarding.
#[derive(Debug)]
pub struct X11Forwarding {
    target: Target,
    /// The local display's cookie.
    real: Vec<u8>,
    /// What the server is given (and must present back).
    fake: Vec<u8>,
    /// The screen number of the local display.
    pub screen: u32,
    /// Untrusted cookies expire; no new channel after this.
    refuse_after: Option<Instant>,
}

impl X11Forwarding {
    /// Reads (or, untrusted, generates) the local display's cookie.
    pub async fn prepare(
        display: Option<&str>,
        trusted: bool,
        timeout: Duration,
        xauth: &str,
    ) -> Result<X11Forwarding, X11Error> {
        let display = display
            .filter(|d| !d.is_empty())
            .ok_or(X11Error::NoDisplay)?;
        let (target, screen) = parse_display(display)?;
        let real = if trusted {
            cookie(xauth, None, display).await?
        } else {
            untrusted_cookie(xauth, display, timeout).await?
        };
        let fake: Vec<u8> = (0..real.len()).map(|_| rand::random::<u8>()).collect();
        Ok(X11Forwarding {
            target,
            real,
            fake,
            screen,
            refuse_after: (!trusted && !timeout.is_zero()).then(|| Instant::now() + timeout),
        })
    }

    /// The x11-req's authentication protocol.
    pub fn protocol(&self) -> &'static str {
        MIT_COOKIE
    }

    /// The x11-req's cookie, in hex.
    pub fn fake_cookie_hex(&self) -> String {
        hex(&self.fake)
    }

    /// Serves one x11 channel the server opened.
    pub async fn serve(
        self: Arc<Self>,
        channel: russh::Channel<russh::client::Msg>,
        reply: russh::client::ChannelOpenHandle,
    ) {
        if self.refuse_after.is_some_and(|t| Instant::now() > t) {
            warn!("Rejected X11 connection after ForwardX11Timeout expired");
            reply
                .reject(russh::ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return;
        }
        reply.accept().await;
        if let Err(why) = self.relay(channel).await {
            debug!("X11 connection closed: {why}");
        }
    }

    async fn relay(&self, mut channel: russh::Channel<russh::client::Msg>) -> Result<(), String> {
        let mut setup = BytesMut::new();
        let len = loop {
            if let Some(n) = setup_len(&setup)?
                && setup.len() >= n
            {
                break n;
            }
            match channel.wait().await {
                Some(ChannelMsg::Data { data }) => setup.extend_from_slice(&data),
                Some(ChannelMsg::Eof | ChannelMsg::Close) | None => {
                    return Err("closed before its setup".into());
                }
                Some(_) => {}
            }
            if setup.len() > MAX_SETUP {
                return Err("setup too long".into());
            }
        };
        let rest = setup.split_off(len);
        self.swap_cookie(&mut setup)?;
        setup.extend_from_slice(&rest);
        let first: Bytes = setup.freeze();
        let counters = Arc::default();
        let limit = crate::forward::QUEUE_LIMIT;
        // The (rewritten) setup goes to the X server first, then the
        // connection is pumped both ways.
        match &self.target {
            Target::Unix(path) => {
                let mut s = tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                s.write_all(&first).await.map_err(|e| e.to_string())?;
                crate::forward::pump::pump(s, channel, Bytes::new(), limit, counters).await;
            }
            Target::Tcp(host, port) => {
                let mut s = tokio::net::TcpStream::connect((host.as_str(), *port))
                    .await
                    .map_err(|e| format!("{host}:{port}: {e}"))?;
                s.write_all(&first).await.map_err(|e| e.to_string())?;
                crate::forward::pump::pump(s, channel, Bytes::new(), limit, counters).await;
            }
        }
        Ok(())
    }

    /// Checks the setup's cookie is the fake one and puts the real one in.
    fn swap_cookie(&self, setup: &mut [u8]) -> Result<(), String> {
        let big = setup[0] == b'B';
        let read16 = |i: usize| {
            let b = [setup[i], setup[i + 1]];
            usize::from(if big {
                u16::from_be_bytes(b)
            } else {
                u16::from_le_bytes(b)
            })
        };
        let (name_len, data_len) = (read16(6), read16(8));
        let name_at = 12;
        let data_at = name_at + pad4(name_len);
        let name = &setup[name_at..name_at + name_len];
        let data = &setup[data_at..data_at + data_len];
        if name != MIT_COOKIE.as_bytes() || data != self.fake.as_slice() {
            return Err("X11 connection uses different authentication protocol or cookie".into());
        }
        setup[data_at..data_at + data_len].copy_from_slice(&self.real);
        Ok(())
    }
}

/// The whole setup's length once its 12-byte header is in.
fn setup_len(buf: &[u8]) -> Result<Option<usize>, String> {
    if buf.len() < 12 {
        return Ok(None);
    }
    let big = match buf[0] {
        b'B' => true,
        b'l' => false,
        _ => return Err("bad X11 byte order".into()),
    };
    let read16 = |i: usize| {
        let b = [buf[i], buf[i + 1]];
        usize::from(if big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    };
    Ok(Some(12 + pad4(read16(6)) + pad4(read16(8))))
}

fn pad4(n: usize) -> usize {
    n.div_ceil(4) * 4
}

/// `[host]:display[.screen]` or `unix:N`: where the server listens, and
/// the screen.
fn parse_display(display: &str) -> Result<(Target, u32), X11Error> {
    let bad = || X11Error::BadDisplay(display.to_owned());
    let (host, rest) = display.rsplit_once(':').ok_or_else(bad)?;
    let (number, screen) = match rest.split_once('.') {
        Some((n, s)) => (n, s.parse::<u32>().map_err(|_| bad())?),
        None => (rest, 0),
    };
    let number: u16 = number.parse().map_err(|_| bad())?;
    let target = if host.is_empty() || host == "unix" {
        Target::Unix(PathBuf::from(format!("/tmp/.X11-unix/X{number}")))
    } else {
        let port = 6000u16.checked_add(number).ok_or_else(bad)?;
        Target::Tcp(host.to_owned(), port)
    };
    Ok((target, screen))
}

/// A generated untrusted cookie (`xauth generate ... untrusted`), kept in a
/// temporary authority file.
async fn untrusted_cookie(
    xauth: &str,
    display: &str,
    timeout: Duration,
) -> Result<Vec<u8>, X11Error> {
    let dir = tempfile::Builder::new()
        .prefix("warren-xauth-")
        .tempdir()
        .map_err(|source| X11Error::Xauth {
            xauth: xauth.to_owned(),
            source,
        })?;
    let file = dir.path().join("xauthfile");
    // xauth's timeout is in seconds; the X server's own, plus a margin for
    // the connection to start, as OpenSSH.
    let secs = if timeout.is_zero() {
        0
    } else {
        timeout.as_secs() + 60
    };
    let out = Command::new(xauth)
        .arg("-f")
        .arg(&file)
        .args(["generate", display, MIT_COOKIE, "untrusted", "timeout"])
        .arg(secs.to_string())
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|source| X11Error::Xauth {
            xauth: xauth.to_owned(),
            source,
        })?;
    if !out.status.success() {
        warn!(
            "xauth generate failed: {}",
            warren_wire::Escaped::truncated(&out.stderr, 200)
        );
    }
    cookie(xauth, Some(&file), display).await
}

/// The MIT cookie `xauth list` gives for `display`.
async fn cookie(
    xauth: &str,
    file: Option<&std::path::Path>,
    display: &str,
) -> Result<Vec<u8>, X11Error> {
    let mut cmd = Command::new(xauth);
    if let Some(f) = file {
        cmd.arg("-f").arg(f);
    }
    let out = cmd
        .args(["list", display])
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|source| X11Error::Xauth {
            xauth: xauth.to_owned(),
            source,
        })?;
    let no_cookie = || X11Error::NoCookie {
        xauth: xauth.to_owned(),
        display: display.to_owned(),
    };
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|line| {
            let mut words = line.split_whitespace().skip(1);
            (words.next() == Some(MIT_COOKIE)).then(|| words.next().and_then(unhex))?
        })
        .filter(|c| !c.is_empty())
        .ok_or_else(no_cookie)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 512 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The session's X11 forwarding, once a channel asked for it; the handler
/// consults it when the server opens an x11 channel.
#[derive(Debug, Default)]
pub struct X11Slot(Mutex<Option<Arc<X11Forwarding>>>);

impl X11Slot {
    pub fn set(&self, fwd: Arc<X11Forwarding>) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(fwd);
        }
    }

    pub fn get(&self) -> Option<Arc<X11Forwarding>> {
        self.0.lock().ok().and_then(|s| s.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays() {
        let unix = |n: &str| Target::Unix(PathBuf::from(format!("/tmp/.X11-unix/X{n}")));
        assert_eq!(parse_display(":0").ok(), Some((unix("0"), 0)));
        assert_eq!(parse_display(":12.1").ok(), Some((unix("12"), 1)));
        assert_eq!(parse_display("unix:3").ok(), Some((unix("3"), 0)));
        assert_eq!(
            parse_display("localhost:10.0").ok(),
            Some((Target::Tcp("localhost".into(), 6010), 0))
        );
        assert!(parse_display("nocolon").is_err());
        assert!(parse_display(":x").is_err());
    }

    fn forwarding() -> X11Forwarding {
        X11Forwarding {
            target: Target::Tcp("h".into(), 6000),
            real: vec![0xaa; 16],
            fake: vec![0x55; 16],
            screen: 0,
            refuse_after: None,
        }
    }

    fn setup(order: u8, name: &[u8], data: &[u8]) -> Vec<u8> {
        let le = order == b'l';
        let n16 = |n: usize| {
            let v = n as u16;
            if le { v.to_le_bytes() } else { v.to_be_bytes() }
        };
        let mut s = vec![order, 0, 11, 0, 0, 0];
        s.extend(n16(name.len()));
        s.extend(n16(data.len()));
        s.extend([0, 0]);
        s.extend(name);
        s.resize(12 + pad4(name.len()), 0);
        s.extend(data);
        s.resize(12 + pad4(name.len()) + pad4(data.len()), 0);
        s
    }

    #[test]
    fn the_fake_cookie_is_swapped_for_the_real_one() {
        // Catches: the real cookie sent to the server, or any cookie let in.
        let f = forwarding();
        for order in [b'l', b'B'] {
            let mut s = setup(order, MIT_COOKIE.as_bytes(), &[0x55; 16]);
            assert_eq!(setup_len(&s), Ok(Some(s.len())));
            f.swap_cookie(&mut s).expect("fake cookie accepted");
            assert_eq!(&s[s.len() - 16..], &[0xaa; 16]);
            let mut wrong = setup(order, MIT_COOKIE.as_bytes(), &[0xaa; 16]);
            assert!(f.swap_cookie(&mut wrong).is_err());
        }
        assert!(setup_len(b"x23456789012").is_err());
        assert_eq!(setup_len(b"l2345"), Ok(None));
    }

    #[test]
    fn cookies_in_hex() {
        assert_eq!(hex(&[0, 0xab]), "00ab");
        assert_eq!(unhex("00ab"), Some(vec![0, 0xab]));
        assert_eq!(unhex("0g"), None);
        assert_eq!(unhex("abc"), None);
    }
}
