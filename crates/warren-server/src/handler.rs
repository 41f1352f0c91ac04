//! russh's per-connection callbacks: each one is a short dispatcher that
//! decides (authentication, permissions, limits), replies, and hands any
//! lasting work to a task in [`crate::process`], [`crate::forward`] or
//! [`crate::sftp`].
//!
//! Design choice: the authorized_keys file is read again at every
//! authentication attempt, as sshd does, so keys added or removed take
//! effect without a restart; what the accepted line allows is frozen into
//! [`Permissions`] for the rest of the connection. The last contents read
//! are kept with their entries, so a bad line is reported once per change
//! of the file, not at every login. Everything a client or the file
//! supplies is escaped before it reaches the log.

use std::collections::HashMap;
use std::io::Read as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use russh::keys::{Certificate, PublicKey};
use russh::server::{Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, ChannelOpenFailure, Sig};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use warren_wire::Escaped;

use crate::auth::{self, Permissions};
use crate::authorized_keys::{self, Entry};
use crate::config::AuthorizedKeys;
use crate::forward::{self, Listeners, Policy};
use crate::penalties::Event;
use crate::process::PtySpec;
use crate::server::{Shared, lock};
use crate::session::{Context, SessionChannel, Start};

/// Largest authorized_keys read; the rest of a larger file is ignored.
const AUTHORIZED_KEYS_MAX: u64 = 4 * 1024 * 1024;

/// Longest piece of client- or file-supplied text put in one log line.
const LOG_TEXT_MAX: usize = 200;

/// Client- or file-supplied text, escaped and cut for the log.
fn esc(text: &str) -> Escaped<'_> {
    Escaped::truncated(text.as_bytes(), LOG_TEXT_MAX)
}

/// The authorized_keys contents last read, and their entries.
#[derive(Debug, Default)]
pub struct KeysCache {
    bytes: Option<Vec<u8>>,
    entries: Arc<Vec<Entry>>,
}

impl KeysCache {
    /// The entries of `bytes` (from `source`), parsed and their bad lines
    /// logged only when `bytes` differ from the last ones.
    fn entries(&mut self, source: &str, bytes: Vec<u8>) -> Arc<Vec<Entry>> {
        if self.bytes.as_ref() != Some(&bytes) {
            let mut text = bytes.as_slice();
            if let Some(head) = text.get(..AUTHORIZED_KEYS_MAX as usize)
                && head.len() < text.len()
            {
                // Whole lines only.
                let end = head.iter().rposition(|&b| b == b'\n').unwrap_or(0);
                warn!(
                    "{}: larger than {} MiB: only its first {end} bytes are read",
                    esc(source),
                    AUTHORIZED_KEYS_MAX >> 20
                );
                text = &head[..end];
            }
            let (entries, errors) = authorized_keys::parse(text);
            for e in errors {
                warn!(
                    "{}:{}: {}: \"{}\"; line skipped",
                    esc(source),
                    e.line,
                    esc(&e.reason),
                    Escaped::truncated(&e.text, LOG_TEXT_MAX)
                );
            }
            self.entries = Arc::new(entries);
            self.bytes = Some(bytes);
        }
        self.entries.clone()
    }
}

/// Reads at most one byte more than [`AUTHORIZED_KEYS_MAX`] of `path`
/// (the cache cuts and reports a larger file).
fn read_bounded(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(AUTHORIZED_KEYS_MAX + 1)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// What a connection tried, for PerSourcePenalties once it ends.
#[derive(Debug, Default)]
pub struct Attempts {
    failures: AtomicU32,
    invalid_user: AtomicBool,
}

impl Attempts {
    /// The penalty of a connection that ended without logging in.
    pub fn event(&self) -> Event {
        if self.invalid_user.load(Ordering::Relaxed) {
            Event::InvalidUser
        } else if self.failures.load(Ordering::Relaxed) > 0 {
            Event::AuthFail
        } else {
            Event::NoAuth
        }
    }
}

/// One client connection.
pub struct Connection {
    shared: Arc<Shared>,
    peer: SocketAddr,
    token: CancellationToken,
    authed_tx: Option<oneshot::Sender<()>>,
    attempts: Arc<Attempts>,
    failures: u32,
    perms: Option<Arc<Permissions>>,
    sessions: HashMap<ChannelId, SessionChannel>,
    listeners: Listeners,
}

impl Connection {
    pub fn new(
        shared: Arc<Shared>,
        peer: SocketAddr,
        token: CancellationToken,
        authed_tx: oneshot::Sender<()>,
        attempts: Arc<Attempts>,
    ) -> Connection {
        Connection {
            shared,
            peer,
            token,
            authed_tx: Some(authed_tx),
            attempts,
            failures: 0,
            perms: None,
            sessions: HashMap::new(),
            listeners: Listeners::default(),
        }
    }

    /// The authorized_keys lines, read now (bounded); bad lines are
    /// logged once per change of the file.
    fn entries(&self) -> Arc<Vec<Entry>> {
        let (source, bytes) = match &self.shared.config.authorized_keys {
            AuthorizedKeys::Text(t) => ("authorized_keys".to_owned(), t.as_bytes().to_vec()),
            AuthorizedKeys::File(path) => match read_bounded(path) {
                Ok(bytes) => (path.display().to_string(), bytes),
                Err(e) => {
                    warn!(path = %path.display(), error = %e, "cannot read authorized_keys: no key can log in");
                    return Arc::default();
                }
            },
        };
        lock(&self.shared.keys).entries(&source, bytes)
    }

    fn user_ok(&self, user: &str) -> Result<(), String> {
        let login = &self.shared.config.login.user;
        if user == login {
            Ok(())
        } else {
            self.attempts.invalid_user.store(true, Ordering::Relaxed);
            Err(format!(
                "user \"{}\" cannot log in here: this server runs as \"{}\"",
                esc(user),
                esc(login)
            ))
        }
    }

    /// Logs a refusal and counts it (the connection's source is
    /// penalised once the connection ends without a login).
    async fn refuse(&mut self, user: &str, reason: &str) -> Auth {
        self.failures += 1;
        self.attempts.failures.fetch_add(1, Ordering::Relaxed);
        let user = esc(user);
        info!(%user, peer = %self.peer, "refused publickey: {}", esc(reason));
        let max = self.shared.config.max_auth_tries;
        if self.failures == max {
            warn!(%user, peer = %self.peer, max, "too many authentication failures; disconnecting");
        }
        Auth::reject()
    }

    async fn accept(&mut self, user: &str, perms: Permissions) -> Auth {
        info!(user = %esc(user), peer = %self.peer, "accepted publickey: {}", esc(&perms.described));
        self.perms = Some(Arc::new(perms));
        Auth::Accept
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    async fn offered(&mut self, user: &str, key: &PublicKey) -> Auth {
        if let Err(r) = self.user_ok(user) {
            return self.refuse(user, &r).await;
        }
        let entries = self.entries();
        match auth::authorize_key(&entries, key, self.peer.ip(), Self::now()) {
            Ok(_) => Auth::Accept,
            // The key may be a certificate's: decided once it is seen.
            Err(_) if auth::has_cert_authority(&entries) => Auth::Accept,
            Err(r) => self.refuse(user, &r).await,
        }
    }

    async fn verified_key(&mut self, user: &str, key: &PublicKey) -> Auth {
        if let Err(r) = self.user_ok(user) {
            return self.refuse(user, &r).await;
        }
        match auth::authorize_key(&self.entries(), key, self.peer.ip(), Self::now()) {
            Ok(p) => self.accept(user, p).await,
            Err(r) => self.refuse(user, &r).await,
        }
    }

    async fn verified_cert(&mut self, user: &str, cert: &Certificate) -> Auth {
        if let Err(r) = self.user_ok(user) {
            return self.refuse(user, &r).await;
        }
        let entries = self.entries();
        match auth::authorize_certificate(&entries, cert, user, self.peer.ip(), Self::now()) {
            Ok(p) => self.accept(user, p).await,
            Err(r) => self.refuse(user, &r).await,
        }
    }

    fn perms(&self) -> Result<Arc<Permissions>, russh::Error> {
        self.perms.clone().ok_or(russh::Error::NotAuthenticated)
    }

    /// Runs `f` on the session channel `id`, replying success or failure.
    fn on_session<F>(
        &mut self,
        id: ChannelId,
        session: &mut Session,
        what: &str,
        f: F,
    ) -> Result<(), russh::Error>
    where
        F: FnOnce(&mut SessionChannel, &Connection) -> Result<(), String>,
    {
        let Some(mut ch) = self.sessions.remove(&id) else {
            return session.channel_failure(id);
        };
        let result = f(&mut ch, self);
        self.sessions.insert(id, ch);
        match result {
            Ok(()) => session.channel_success(id),
            Err(reason) => {
                info!(peer = %self.peer, "refused {what}: {}", esc(&reason));
                session.channel_failure(id)
            }
        }
    }

    fn start(
        &mut self,
        id: ChannelId,
        what: Start,
        session: &mut Session,
    ) -> Result<(), russh::Error> {
        let perms = self.perms()?;
        let handle = session.handle();
        let label = match &what {
            Start::Shell => "shell".to_owned(),
            Start::Exec(c) => format!("exec \"{}\"", esc(c)),
            Start::Subsystem(s) => format!("subsystem \"{}\"", esc(s)),
        };
        debug!(peer = %self.peer, "{label}");
        self.on_session(id, session, &label, |ch, conn| {
            let ctx = Context {
                config: &conn.shared.config,
                perms: &perms,
                peer: conn.peer,
                local: conn.shared.local_addr,
                handle,
                token: conn.token.clone(),
            };
            ch.start(&ctx, what)
        })
    }

    fn policy_check(
        &self,
        check: impl FnOnce(&Policy<'_>) -> Result<(), String>,
    ) -> Result<(), String> {
        let perms = self.perms.as_deref().ok_or("not authenticated")?;
        check(&Policy {
            config: &self.shared.config,
            perms,
        })
    }
}

impl russh::server::Handler for Connection {
    type Error = russh::Error;

    async fn auth_none(&mut self, _user: &str) -> Result<Auth, Self::Error> {
        Ok(Auth::reject())
    }

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(self.offered(user, offer.public_key).await)
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(self.verified_key(user, key.public_key).await)
    }

    async fn auth_openssh_certificate(
        &mut self,
        user: &str,
        cert: &Certificate,
    ) -> Result<Auth, Self::Error> {
        Ok(self.verified_cert(user, cert).await)
    }

    async fn auth_succeeded(&mut self, _session: &mut Session) -> Result<(), Self::Error> {
        if let Some(tx) = self.authed_tx.take() {
            let _ = tx.send(());
        }
        Ok(())
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.perms()?;
        let max = self.shared.config.max_sessions;
        if self.sessions.len() >= max {
            info!(peer = %self.peer, max, "refused session: too many sessions on one connection");
            reply.reject(ChannelOpenFailure::ResourceShortage).await;
            return Ok(());
        }
        self.sessions
            .insert(channel.id(), SessionChannel::new(channel));
        reply.accept().await;
        Ok(())
    }

    async fn channel_close(
        &mut self,
        id: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(ch) = self.sessions.remove(&id) {
            ch.hang_up();
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments, reason = "russh's callback signature")]
    async fn pty_request(
        &mut self,
        id: ChannelId,
        term: &str,
        cols: u32,
        rows: u32,
        px_width: u32,
        px_height: u32,
        modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let perms = self.perms()?;
        let spec = PtySpec {
            term: term.to_owned(),
            cols,
            rows,
            px_width,
            px_height,
            modes: modes.to_vec(),
        };
        self.on_session(id, session, "pty", |ch, _| {
            if !perms.pty {
                return Err("the key's authorized_keys options forbid a pty".into());
            }
            if ch.set_pty(spec) {
                Ok(())
            } else {
                Err("a pty was already requested or a program runs".into())
            }
        })
    }

    async fn env_request(
        &mut self,
        id: ChannelId,
        name: &str,
        value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.on_session(id, session, "env", |ch, conn| {
            if ch.set_env(&conn.shared.config.accept_env, name, value) {
                Ok(())
            } else {
                Err(format!(
                    "variable {} is not accepted (see --accept-env)",
                    esc(name)
                ))
            }
        })
    }

    async fn window_change_request(
        &mut self,
        id: ChannelId,
        cols: u32,
        rows: u32,
        px_width: u32,
        px_height: u32,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(ch) = self.sessions.get_mut(&id) {
            ch.window_change(cols, rows, px_width, px_height);
        }
        Ok(())
    }

    async fn signal(
        &mut self,
        id: ChannelId,
        signal: Sig,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(ch) = self.sessions.get(&id) {
            ch.signal(&signal);
        }
        Ok(())
    }

    async fn shell_request(
        &mut self,
        id: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.start(id, Start::Shell, session)
    }

    async fn exec_request(
        &mut self,
        id: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let command = String::from_utf8_lossy(data).into_owned();
        self.start(id, Start::Exec(command), session)
    }

    async fn subsystem_request(
        &mut self,
        id: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.start(id, Start::Subsystem(name.to_owned()), session)
    }

    async fn agent_request(
        &mut self,
        id: ChannelId,
        session: &mut Session,
    ) -> Result<bool, Self::Error> {
        let perms = self.perms()?;
        let refused = if !self.shared.config.allow_agent_forwarding {
            Some("agent forwarding is disabled on this server")
        } else if !perms.agent_forwarding {
            Some("the key's authorized_keys options forbid agent forwarding")
        } else {
            None
        };
        if let Some(reason) = refused {
            info!(peer = %self.peer, "refused agent forwarding: {reason}");
            return Ok(false);
        }
        let Some(ch) = self.sessions.get_mut(&id) else {
            return Ok(false);
        };
        match crate::agent::listen(session.handle(), self.token.clone()) {
            Ok(path) => {
                ch.agent_socket = Some(path);
                Ok(true)
            }
            Err(e) => {
                warn!(peer = %self.peer, error = %e, "agent forwarding: cannot create the socket");
                Ok(false)
            }
        }
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host: &str,
        port: u32,
        _originator: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let port = u16::try_from(port).unwrap_or(0);
        match self.policy_check(|p| p.open(host, port)) {
            Ok(()) => {
                forward::direct_tcpip(channel, reply, host.to_owned(), port, self.token.clone())
            }
            Err(reason) => {
                info!(peer = %self.peer, target = %format!("{}:{port}", esc(host)), "refused direct-tcpip: {}", esc(&reason));
                reply
                    .reject(ChannelOpenFailure::AdministrativelyProhibited)
                    .await;
            }
        }
        Ok(())
    }

    async fn channel_open_direct_streamlocal(
        &mut self,
        channel: Channel<Msg>,
        path: &str,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        match self.policy_check(|p| p.open_unix()) {
            Ok(()) => {
                forward::direct_streamlocal(channel, reply, path.to_owned(), self.token.clone())
            }
            Err(reason) => {
                info!(peer = %self.peer, path = %esc(path), "refused direct-streamlocal: {}", esc(&reason));
                reply
                    .reject(ChannelOpenFailure::AdministrativelyProhibited)
                    .await;
            }
        }
        Ok(())
    }

    async fn tcpip_forward(
        &mut self,
        address: &str,
        port: &mut u32,
        session: &mut Session,
    ) -> Result<bool, Self::Error> {
        let requested = u16::try_from(*port).unwrap_or(0);
        let mut addrs = Vec::new();
        let checked = self.policy_check(|p| {
            addrs = p.listen(address, requested)?;
            Ok(())
        });
        let result = match checked {
            Ok(()) => {
                forward::listen_tcp(
                    &mut self.listeners,
                    addrs,
                    address,
                    *port,
                    session.handle(),
                    self.token.clone(),
                )
                .await
            }
            Err(reason) => Err(reason),
        };
        match result {
            Ok(bound) => {
                info!(peer = %self.peer, listen = %format!("{}:{bound}", esc(address)), "remote forward");
                *port = bound;
                Ok(true)
            }
            Err(reason) => {
                info!(peer = %self.peer, listen = %format!("{}:{port}", esc(address)), "refused remote forward: {}", esc(&reason));
                Ok(false)
            }
        }
    }

    async fn cancel_tcpip_forward(
        &mut self,
        address: &str,
        port: u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        Ok(self.listeners.cancel_tcp(address, port))
    }

    async fn streamlocal_forward(
        &mut self,
        path: &str,
        session: &mut Session,
    ) -> Result<bool, Self::Error> {
        let result = self.policy_check(|p| p.listen_unix()).and_then(|()| {
            forward::listen_unix(
                &mut self.listeners,
                path,
                session.handle(),
                self.token.clone(),
            )
        });
        match result {
            Ok(()) => {
                info!(peer = %self.peer, path = %esc(path), "remote unix forward");
                Ok(true)
            }
            Err(reason) => {
                info!(peer = %self.peer, path = %esc(path), "refused remote unix forward: {}", esc(&reason));
                Ok(false)
            }
        }
    }

    async fn cancel_streamlocal_forward(
        &mut self,
        path: &str,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        Ok(self.listeners.cancel_unix(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINx5wj9wm10NkrCYOmDhDHRsUFoPaDuCfohFXKHSJx7p";

    #[test]
    fn keys_cache_parses_once_per_change_and_bounds_the_file() {
        let mut cache = KeysCache::default();
        let first = cache.entries("ak", format!("{KEY}\n").into_bytes());
        let again = cache.entries("ak", format!("{KEY}\n").into_bytes());
        assert!(
            Arc::ptr_eq(&first, &again),
            "same contents: not parsed again"
        );
        let changed = cache.entries("ak", format!("# new\n{KEY}\n").into_bytes());
        assert_eq!(changed[0].line, 2);
        // A file past the cap: its head is used, the rest ignored.
        let mut huge = format!("{KEY}\n").into_bytes();
        huge.resize(AUTHORIZED_KEYS_MAX as usize + 100, b'#');
        huge.extend_from_slice(format!("\n{KEY}\n").as_bytes());
        let got = cache.entries("ak", huge);
        assert_eq!(got.iter().map(|e| e.line).collect::<Vec<_>>(), [1]);
    }
}
