//! The connection in stages: dial, handshake, host key, authentication.
//! Each is a separate awaited step that returns its result and how long it
//! took, so a caller can report every stage (the doctor) or time them (cp,
//! benchmarks); `connect` and `connect_stream` run them back to back.
//!
//! ```no_run
//! # async fn f(opts: &warren_core::session::ConnectOptions,
//! #            prompter: std::sync::Arc<dyn warren_core::prompt::Prompter>)
//! #            -> Result<(), warren_core::session::SessionError> {
//! use warren_core::session::stages;
//! let dialed = stages::dial(opts).await?;
//! let handshake = dialed.handshake(opts, prompter).await?;
//! println!("server key {} {}", handshake.server_key.algorithm, handshake.server_key.fingerprint);
//! let checked = handshake.check_host_key().await?;
//! println!("cipher {}", checked.algorithms.cipher);
//! let login = checked.authenticate().await?;
//! println!("logged in after {:?}", login.elapsed);
//! # Ok(()) }
//! ```
//!
//! Design choice: russh checks the server's key in the middle of its key
//! exchange (a handler callback, before NEWKEYS). The handshake step runs
//! russh's handshake in a task and returns when the server's key has
//! arrived, signature verified; the handler then waits for the host key
//! step's verdict. So a key is still accepted or refused before the key
//! exchange completes, as ssh does, and the time a prompt waits for the
//! user is the host key step's, not the handshake's. The agreed
//! algorithms are known once russh completes the exchange, which is after
//! the verdict: they come with the host key step.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use russh::client::Handle;
use russh::keys::{HashAlg, PublicKeyOrCertificate};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::info;

use super::error::{ConnectCause, DenialNotes, HostKeyError, SessionError};
use super::handler::{ClientHandler, FarewellReceiver, KeyCheck};
use super::hostkey::HostKeyVerifier;
use super::options::ConnectOptions;
use super::{
    Session, auth, client_config, dial as tcp, handshake_error, hostkeys_update, log_offer, window,
};
use crate::forward::remote::RemoteForwards;
use crate::prompt::Prompter;

/// Stage 1: a transport open to the server.
pub struct Dialed<S> {
    stream: S,
    peer_ip: Option<IpAddr>,
    /// Name resolution and TCP connect, attempts and retries included;
    /// zero for a transport opened elsewhere ([`Dialed::over`]).
    pub elapsed: Duration,
}

/// Stage 2: the server's key, received and its signature checked, but not
/// yet accepted.
pub struct Handshake {
    /// The key (or certificate) the server proved it holds.
    pub server_key: ServerKey,
    /// From the first byte sent to the server's key in hand: banners,
    /// KEXINIT, the key exchange itself.
    pub elapsed: Duration,
    key: PublicKeyOrCertificate,
    verdict: oneshot::Sender<Result<(), HostKeyError>>,
    rest: Rest,
}

/// Stage 3: the key accepted and the key exchange complete.
pub struct HostKeyChecked {
    /// What the two sides agreed on.
    pub algorithms: Negotiated,
    /// Checking the key against known_hosts (and any prompt), and the rest
    /// of the key exchange.
    pub elapsed: Duration,
    handle: Handle<ClientHandler>,
    rest: Rest,
}

/// Stage 4: logged in.
pub struct Authenticated {
    pub session: Session,
    /// What the server accepted: `publickey (agent: ssh-ed25519 SHA256:..)`,
    /// `publickey (/path/to/key)`, `password`, ...
    pub accepted: String,
    /// What was refused or skipped before it.
    pub before: Vec<String>,
    /// Public keys offered, the accepted one included.
    pub keys_offered: usize,
    /// What was noticed about the credentials that did not work.
    pub notes: DenialNotes,
    /// Every method tried, prompts included.
    pub elapsed: Duration,
}

/// The server's host key as the user sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerKey {
    /// `ssh-ed25519`, `ecdsa-sha2-nistp256`, ... (the key's algorithm, also
    /// for a certificate).
    pub algorithm: String,
    /// `SHA256:...`, as ssh prints it.
    pub fingerprint: String,
    /// Whether the server presented a certificate.
    pub certificate: bool,
}

/// The algorithms both sides agreed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub kex: String,
    pub host_key: String,
    pub cipher: String,
    /// Client to server (empty for AEAD ciphers, which need none).
    pub mac: String,
    pub compression: bool,
}

/// What the later stages carry along.
struct Rest {
    opts: ConnectOptions,
    prompter: Arc<dyn Prompter>,
    verifier: Arc<HostKeyVerifier>,
    task: Connecting,
    negotiated: Arc<OnceLock<Negotiated>>,
    remote: Arc<RemoteForwards>,
    rtt: Arc<window::RoundTrip>,
    farewell: FarewellReceiver,
    /// The server's host keys, announced after login (UpdateHostKeys).
    announced: oneshot::Receiver<Vec<russh::keys::PublicKey>>,
}

/// What the handshake step saw first.
enum First {
    Key(Option<Box<KeyCheck>>),
    Done(Result<Result<Handle<ClientHandler>, SessionError>, tokio::task::JoinError>),
}

/// russh's handshake, running; ended if the stages are dropped half way.
struct Connecting(JoinHandle<Result<Handle<ClientHandler>, SessionError>>);

impl Drop for Connecting {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Connecting {
    /// The handshake's outcome, its errors worded for `opts`.
    async fn finish(
        &mut self,
        opts: &ConnectOptions,
    ) -> Result<Handle<ClientHandler>, SessionError> {
        let joined = bounded(opts, &mut self.0).await?;
        joined
            .map_err(|e| SessionError::Io(std::io::Error::other(e)))?
            .map_err(|e| handshake_error(e, opts))
    }
}

/// Stage 1 over TCP: resolve, connect (ConnectionAttempts, ConnectTimeout,
/// BindAddress, AddressFamily).
pub async fn dial(opts: &ConnectOptions) -> Result<Dialed<TcpStream>, SessionError> {
    if let Some(keyword) = opts.unsupported.first() {
        return Err(SessionError::Unsupported { keyword });
    }
    let start = Instant::now();
    let stream = tcp::dial(opts).await?;
    let peer_ip = stream.peer_addr().ok().map(|a| a.ip());
    Ok(Dialed {
        stream,
        peer_ip,
        elapsed: start.elapsed(),
    })
}

impl<S> Dialed<S>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    /// A transport opened some other way: a ProxyCommand's stdio, a
    /// channel through a jump host. `peer_ip` is for CheckHostIP.
    pub fn over(stream: S, peer_ip: Option<IpAddr>) -> Self {
        Dialed {
            stream,
            peer_ip,
            elapsed: Duration::ZERO,
        }
    }

    /// Stage 2: banners and key exchange up to the server's key.
    /// ConnectTimeout bounds it, as ssh bounds the banner exchange.
    pub async fn handshake(
        self,
        opts: &ConnectOptions,
        prompter: Arc<dyn Prompter>,
    ) -> Result<Handshake, SessionError> {
        refuse_unsupported(opts)?;
        let start = Instant::now();
        let mut config = client_config(opts)?;
        let verifier = Arc::new(HostKeyVerifier::new(opts, self.peer_ip, prompter.clone()));
        // Reads known_hosts and may run KnownHostsCommand: off the runtime.
        let tuning = verifier.clone();
        let mut preferred = config.preferred.clone();
        config.preferred = tokio::task::spawn_blocking(move || {
            tuning.tune_preferred(&mut preferred).map(|()| preferred)
        })
        .await
        .map_err(|e| SessionError::Io(std::io::Error::other(e)))??;
        log_offer(&config.preferred);
        let remote = Arc::new(RemoteForwards::default());
        let rtt = Arc::new(window::RoundTrip::default());
        let negotiated = Arc::new(OnceLock::new());
        let (key_tx, key_rx) = oneshot::channel();
        let mut handler = ClientHandler::new(
            key_tx,
            negotiated.clone(),
            remote.clone(),
            opts.forward_agent.clone(),
            opts.hostname.clone(),
            window::WindowTuner::new(opts.window_size, rtt.clone()),
            opts.show_banner,
        );
        let farewell = handler.farewell();
        let announced = handler.announced_keys();
        let connect = russh::client::connect_stream(Arc::new(config), self.stream, handler);
        let mut task = Connecting(tokio::spawn(connect));
        let mut key_rx = key_rx;
        let first = bounded(opts, async {
            tokio::select! {
                check = &mut key_rx => First::Key(check.ok().map(Box::new)),
                // The handshake ended first: an error, or no key to check.
                done = &mut task.0 => First::Done(done),
            }
        })
        .await?;
        let KeyCheck { key, verdict } = match first {
            First::Key(Some(check)) => *check,
            // The handler is gone: the handshake failed; say why.
            First::Key(None) => {
                task.finish(opts).await?;
                return Err(SessionError::Russh(russh::Error::Disconnect));
            }
            First::Done(done) => {
                return Err(match done {
                    Ok(Ok(_)) => SessionError::Russh(russh::Error::UnknownKey),
                    Ok(Err(e)) => handshake_error(e, opts),
                    Err(e) => SessionError::Io(std::io::Error::other(e)),
                });
            }
        };
        Ok(Handshake {
            server_key: ServerKey::of(&key),
            elapsed: start.elapsed(),
            key,
            verdict,
            rest: Rest {
                opts: opts.clone(),
                prompter,
                verifier,
                task,
                negotiated,
                remote,
                rtt,
                farewell,
                announced,
            },
        })
    }
}

impl Handshake {
    /// Stage 3: the key against known_hosts (StrictHostKeyChecking, the
    /// first-connection prompt, @revoked, @cert-authority), then the rest
    /// of the key exchange. A refused key ends the connection with the
    /// reason.
    pub async fn check_host_key(self) -> Result<HostKeyChecked, SessionError> {
        let start = Instant::now();
        let Handshake {
            key,
            verdict,
            mut rest,
            ..
        } = self;
        let verifier = rest.verifier.clone();
        let checked = tokio::task::spawn_blocking(move || verifier.verify(&key))
            .await
            .map_err(|e| SessionError::Io(std::io::Error::other(e)))?;
        // The handler gives russh the verdict; a refusal comes back as
        // the handshake's error.
        let _ = verdict.send(checked);
        let handle = rest.task.finish(&rest.opts).await?;
        let algorithms = rest
            .negotiated
            .get()
            .cloned()
            .ok_or(SessionError::Russh(russh::Error::Disconnect))?;
        Ok(HostKeyChecked {
            algorithms,
            elapsed: start.elapsed(),
            handle,
            rest,
        })
    }
}

impl HostKeyChecked {
    /// Stage 4: log in (publickey, keyboard-interactive, password, as
    /// PreferredAuthentications orders them).
    pub async fn authenticate(self) -> Result<Authenticated, SessionError> {
        let start = Instant::now();
        let HostKeyChecked {
            mut handle, rest, ..
        } = self;
        let opts = &rest.opts;
        info!(
            "Authenticating to {}:{} as '{}'",
            opts.hostname, opts.port, opts.user
        );
        let peer = auth::Peer {
            host: &opts.hostname,
            port: opts.port,
            farewell: rest.farewell,
        };
        let prompter = rest.prompter.as_ref();
        let login = auth::authenticate(&mut handle, &opts.auth, &opts.user, peer, prompter).await?;
        info!(
            "Authenticated to {} ([{}]:{}).",
            opts.hostname, opts.hostname, opts.port
        );
        let handle = Arc::new(handle);
        tokio::spawn(super::measure_round_trip(Arc::downgrade(&handle), rest.rtt));
        let host_keys_update = rest
            .verifier
            .updater(&opts.algorithms.host_key)
            .map(|u| hostkeys_update::Task::spawn(u, rest.announced, Arc::downgrade(&handle)));
        Ok(Authenticated {
            session: Session {
                handle,
                remote: rest.remote,
                via: None,
                host_keys_update: std::sync::Mutex::new(host_keys_update),
            },
            accepted: login.accepted,
            before: login.before,
            keys_offered: login.keys_offered,
            notes: login.notes,
            elapsed: start.elapsed(),
        })
    }
}

impl ServerKey {
    fn of(key: &PublicKeyOrCertificate) -> ServerKey {
        let (public, certificate) = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => (key.clone(), false),
            PublicKeyOrCertificate::Certificate(c) => {
                (russh::keys::PublicKey::from(c.public_key().clone()), true)
            }
        };
        ServerKey {
            algorithm: public.algorithm().as_str().to_owned(),
            fingerprint: public.fingerprint(HashAlg::Sha256).to_string(),
            certificate,
        }
    }
}

impl Negotiated {
    pub(crate) fn of(names: &russh::Names) -> Negotiated {
        Negotiated {
            kex: names.kex.as_ref().to_owned(),
            host_key: names.key.as_str().to_owned(),
            cipher: names.cipher.as_ref().to_owned(),
            mac: names.client_mac.as_ref().to_owned(),
            compression: !matches!(
                names.client_compression,
                russh::compression::Compression::None
            ),
        }
    }
}

/// A keyword set to something warren does not do ends the connection
/// before it starts (see `warren_config::KEYWORDS`); GSSAPI, which ssh
/// skips without Kerberos credentials, is skipped with a word at -v.
fn refuse_unsupported(opts: &ConnectOptions) -> Result<(), SessionError> {
    if let Some(keyword) = opts.unsupported.first() {
        return Err(SessionError::Unsupported { keyword });
    }
    if opts.gssapi {
        info!("GSSAPIAuthentication/GSSAPIKeyExchange are not supported; skipped");
    }
    Ok(())
}

/// `wait` under ConnectTimeout, when one is set: like ssh, it bounds the
/// banner exchange and key exchange too.
async fn bounded<T>(
    opts: &ConnectOptions,
    wait: impl std::future::Future<Output = T>,
) -> Result<T, SessionError> {
    match opts.connect_timeout {
        Some(t) => tokio::time::timeout(t, wait)
            .await
            .map_err(|_| SessionError::Connect {
                host: opts.hostname.clone(),
                port: opts.port,
                cause: ConnectCause::BannerTimeout,
            }),
        None => Ok(wait.await),
    }
}
