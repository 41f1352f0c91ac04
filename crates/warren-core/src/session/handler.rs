//! russh's client callbacks. They never block the connection: the server's
//! key is handed to the host key stage (`stages`), which checks it (and
//! may prompt) on the blocking pool while this callback awaits the
//! verdict.

use std::io::Write as _;
use std::sync::Arc;

use russh::keys::PublicKeyOrCertificate;
use warren_wire::escape_str;

use super::error::{HostKeyError, SessionError};
use super::stages::Negotiated;
use super::window::WindowTuner;
use crate::forward::remote::{RemoteForwards, serve_channel};

/// The per-connection handler russh calls into.
pub struct ClientHandler {
    /// Where the server's key goes to be judged (`stages`); taken at the
    /// first key exchange. Later exchanges must present the same key,
    /// which russh checks (vendored patch 9).
    host_key: Option<tokio::sync::oneshot::Sender<KeyCheck>>,
    /// The algorithms of the first key exchange.
    negotiated: Arc<std::sync::OnceLock<Negotiated>>,
    remote: Arc<RemoteForwards>,
    /// ForwardAgent's socket; agent channels are refused without one.
    forward_agent: Option<std::path::PathBuf>,
    /// The server's address as ssh names it in messages.
    host: String,
    /// Sizes channel windows to the path.
    window: WindowTuner,
    /// The server's goodbye, for the error of whatever was waiting on it.
    /// Dropped with the handler when the connection ends, which tells a
    /// waiting receiver that no goodbye is coming.
    farewell: tokio::sync::watch::Sender<Option<Farewell>>,
    /// Whether the server's Banner is printed (LogLevel above ERROR).
    show_banner: bool,
    /// Where the server's `hostkeys-00@openssh.com` announcement goes
    /// (the UpdateHostKeys task); taken at the first one.
    announced: Option<tokio::sync::oneshot::Sender<Vec<russh::keys::PublicKey>>>,
}

/// What the server said in SSH_MSG_DISCONNECT; `message` is escaped.
#[derive(Debug, Clone)]
pub struct Farewell {
    pub code: u32,
    pub message: String,
}

/// The server's key, handed out of russh's handshake to be judged, and
/// where the verdict goes back.
pub(crate) struct KeyCheck {
    pub key: PublicKeyOrCertificate,
    pub verdict: tokio::sync::oneshot::Sender<Result<(), HostKeyError>>,
}

/// The most of a Banner that is printed (sshd reads its banner file whole;
/// a hostile server could send a packet's worth).
pub const MAX_BANNER: usize = 64 * 1024;

/// A Banner as printed: lines kept (a CRLF read as a newline), tabs kept,
/// other control characters and bytes that are not UTF-8 escaped.
fn banner_text(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(MAX_BANNER)];
    let mut out = String::with_capacity(shown.len());
    for (i, line) in shown.split(|&b| b == b'\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        for (j, part) in line.split(|&b| b == b'\t').enumerate() {
            if j > 0 {
                out.push('\t');
            }
            out.push_str(&warren_wire::escape(part));
        }
    }
    if shown.len() < bytes.len() {
        out.push_str(&format!("... ({} more bytes)\n", bytes.len() - shown.len()));
    }
    out
}

/// Learns the server's goodbye once the connection has ended.
pub type FarewellReceiver = tokio::sync::watch::Receiver<Option<Farewell>>;

impl ClientHandler {
    pub(crate) fn new(
        host_key: tokio::sync::oneshot::Sender<KeyCheck>,
        negotiated: Arc<std::sync::OnceLock<Negotiated>>,
        remote: Arc<RemoteForwards>,
        forward_agent: Option<std::path::PathBuf>,
        host: String,
        window: WindowTuner,
        show_banner: bool,
    ) -> Self {
        ClientHandler {
            host_key: Some(host_key),
            negotiated,
            remote,
            forward_agent,
            host,
            window,
            farewell: tokio::sync::watch::Sender::new(None),
            show_banner,
            announced: None,
        }
    }

    /// Where the server's announced host keys will arrive (UpdateHostKeys).
    pub(crate) fn announced_keys(
        &mut self,
    ) -> tokio::sync::oneshot::Receiver<Vec<russh::keys::PublicKey>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.announced = Some(tx);
        rx
    }

    /// Where the server's goodbye will appear (see [`Farewell`]).
    pub(crate) fn farewell(&self) -> FarewellReceiver {
        self.farewell.subscribe()
    }
}

impl russh::client::Handler for ClientHandler {
    type Error = SessionError;

    async fn disconnected(
        &mut self,
        reason: russh::client::DisconnectReason<SessionError>,
    ) -> Result<(), SessionError> {
        match reason {
            russh::client::DisconnectReason::ReceivedDisconnect(info) => {
                let farewell = Farewell {
                    code: info.reason_code as u32,
                    message: warren_wire::Escaped::truncated(info.message.as_bytes(), 200)
                        .to_string(),
                };
                tracing::info!(
                    "disconnected by the server: {} (code {})",
                    farewell.message,
                    farewell.code
                );
                self.farewell.send_replace(Some(farewell));
                Ok(())
            }
            russh::client::DisconnectReason::Error(e) => {
                // ServerAliveInterval x ServerAliveCountMax without an
                // answer: ssh's words, on stderr whatever the log level.
                if matches!(e, SessionError::Russh(russh::Error::KeepaliveTimeout)) {
                    // Not eprintln!: it panics when stderr is a closed pipe.
                    let _ = writeln!(
                        std::io::stderr(),
                        "Timeout, server {} not responding.",
                        self.host
                    );
                } else {
                    tracing::info!(
                        "connection to {} lost: {}",
                        self.host,
                        warren_wire::Chain(&e)
                    );
                }
                Err(e)
            }
        }
    }

    /// The server's Banner, on stderr as ssh prints it: newlines and tabs
    /// kept, every other control character escaped, at most
    /// [`MAX_BANNER`] bytes.
    async fn auth_banner(
        &mut self,
        banner: &str,
        _session: &mut russh::client::Session,
    ) -> Result<(), SessionError> {
        if self.show_banner {
            // Not eprint!: it panics when stderr is a closed pipe.
            let _ = std::io::stderr().write_all(banner_text(banner.as_bytes()).as_bytes());
        }
        Ok(())
    }

    fn adjust_window(&mut self, channel: russh::ChannelId, window: u32) -> u32 {
        self.window
            .adjusted(channel.number(), window, std::time::Instant::now())
    }

    async fn channel_close(
        &mut self,
        channel: russh::ChannelId,
        _session: &mut russh::client::Session,
    ) -> Result<(), SessionError> {
        self.window.closed(channel.number());
        Ok(())
    }

    async fn kex_done(
        &mut self,
        _shared_secret: Option<&[u8]>,
        names: &russh::Names,
        session: &mut russh::client::Session,
    ) -> Result<(), SessionError> {
        let _ = self.negotiated.set(Negotiated::of(names));
        if let Some(start) = self.window.peer(session.remote_sshid()) {
            session.set_target_window_size(start);
        }
        tracing::info!(
            "kex: {}, host key: {}, cipher: {}, MAC: {}",
            names.kex.as_ref(),
            names.key.as_str(),
            names.cipher.as_ref(),
            names.client_mac.as_ref(),
        );
        Ok(())
    }

    async fn openssh_ext_host_keys_announced(
        &mut self,
        keys: Vec<russh::keys::PublicKey>,
        _session: &mut russh::client::Session,
    ) -> Result<(), SessionError> {
        match self.announced.take() {
            // The task may be gone (UpdateHostKeys off): nothing to do.
            Some(tx) => {
                let _ = tx.send(keys);
            }
            None => tracing::debug!("UpdateHostKeys: server already sent hostkeys; ignored"),
        }
        Ok(())
    }

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, SessionError> {
        let key = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => PublicKeyOrCertificate::PublicKey {
                key: key.clone(),
                hash_alg: None,
            },
            PublicKeyOrCertificate::Certificate(c) => {
                PublicKeyOrCertificate::Certificate(c.clone())
            }
        };
        // Judged outside: the host key stage (which may prompt) answers.
        let Some(judge) = self.host_key.take() else {
            return Ok(false);
        };
        let (verdict, answer) = tokio::sync::oneshot::channel();
        if judge.send(KeyCheck { key, verdict }).is_err() {
            return Err(SessionError::Russh(russh::Error::Disconnect));
        }
        match answer.await {
            Ok(Ok(())) => Ok(true),
            Ok(Err(refused)) => Err(SessionError::HostKey(refused)),
            // Nobody waits for this connection any more.
            Err(_) => Err(SessionError::Russh(russh::Error::Disconnect)),
        }
    }

    async fn server_channel_open_forwarded_tcpip(
        &mut self,
        channel: russh::Channel<russh::client::Msg>,
        connected_address: &str,
        connected_port: u32,
        originator_address: &str,
        originator_port: u32,
        reply: russh::client::ChannelOpenHandle,
        _session: &mut russh::client::Session,
    ) -> Result<(), SessionError> {
        match self.remote.lookup_tcp(connected_address, connected_port) {
            Some(target) => {
                // The addresses are the server's words: escaped for logs.
                let origin = format!("{}:{originator_port}", escape_str(originator_address));
                tokio::spawn(serve_channel(channel, reply, target, origin));
            }
            None => {
                tracing::warn!(
                    "the server forwarded a connection for {}:{connected_port}, which we did not ask for; refused",
                    escape_str(connected_address)
                );
                reply
                    .reject(russh::ChannelOpenFailure::AdministrativelyProhibited)
                    .await;
            }
        }
        Ok(())
    }

    async fn server_channel_open_forwarded_streamlocal(
        &mut self,
        channel: russh::Channel<russh::client::Msg>,
        socket_path: &str,
        reply: russh::client::ChannelOpenHandle,
        _session: &mut russh::client::Session,
    ) -> Result<(), SessionError> {
        match self.remote.lookup_unix(socket_path) {
            Some(target) => {
                tokio::spawn(serve_channel(
                    channel,
                    reply,
                    target,
                    escape_str(socket_path).into_owned(),
                ));
            }
            None => {
                tracing::warn!(
                    "the server forwarded a connection for {}, which we did not ask for; refused",
                    escape_str(socket_path)
                );
                reply
                    .reject(russh::ChannelOpenFailure::AdministrativelyProhibited)
                    .await
            }
        }
        Ok(())
    }

    async fn server_channel_open_x11(
        &mut self,
        channel: russh::Channel<russh::client::Msg>,
        originator_address: &str,
        originator_port: u32,
        reply: russh::client::ChannelOpenHandle,
        _session: &mut russh::client::Session,
    ) -> Result<(), SessionError> {
        let Some(x11) = self.remote.x11().get() else {
            tracing::warn!("the server opened an X11 channel, but X11 forwarding is off; refused");
            reply
                .reject(russh::ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        };
        tracing::debug!(
            "X11 connection from {}:{originator_port}",
            escape_str(originator_address)
        );
        tokio::spawn(x11.serve(channel, reply));
        Ok(())
    }

    async fn server_channel_open_agent_forward(
        &mut self,
        channel: russh::Channel<russh::client::Msg>,
        reply: russh::client::ChannelOpenHandle,
        _session: &mut russh::client::Session,
    ) -> Result<(), SessionError> {
        let Some(path) = self.forward_agent.clone() else {
            // russh would accept; we never asked for agent forwarding.
            tracing::warn!(
                "the server opened an agent channel, but agent forwarding is off; refused"
            );
            reply
                .reject(russh::ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        };
        tokio::spawn(async move {
            match tokio::net::UnixStream::connect(&path).await {
                Ok(stream) => {
                    reply.accept().await;
                    tracing::debug!(agent = %path.display(), "forwarded agent connection");
                    crate::forward::pump::pump(
                        stream,
                        channel,
                        bytes::Bytes::new(),
                        crate::forward::QUEUE_LIMIT,
                        Arc::default(),
                    )
                    .await;
                }
                Err(e) => {
                    tracing::warn!(
                        "agent forwarding: cannot reach the agent at {}: {e}",
                        path.display()
                    );
                    reply.reject(russh::ChannelOpenFailure::ConnectFailed).await;
                }
            }
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banner_keeps_lines_and_tabs_and_escapes_the_rest() {
        let cases: [(&[u8], &str); 4] = [
            (b"Welcome\n", "Welcome\n"),
            (b"a\r\n\tb\x1b[2J\n", "a\n\tb\\e[2J\n"),
            (b"caf\xe9 \x07\n", "caf\\xe9 \\x07\n"),
            (b"\xe2\x80\xaeevil", "\\u{202e}evil"),
        ];
        for (input, want) in cases {
            assert_eq!(banner_text(input), want, "{input:?}");
        }
        let long = vec![b'x'; MAX_BANNER + 10];
        assert!(banner_text(&long).ends_with("... (10 more bytes)\n"));
    }
}
