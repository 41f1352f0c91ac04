//! Authentication in PreferredAuthentications order, as OpenSSH does it:
//! public-key identities in ssh's order (`identities`: the agent's, then
//! the files', each certificate signed by whoever holds its key, RSA with
//! the SHA-2 hash the server's server-sig-algs names), then
//! keyboard-interactive and password on the terminal.
//!
//! Design choice: a key file is loaded (and its passphrase asked) only when
//! its turn comes, and keys readable by group or others are refused with
//! OpenSSH's warning before anything is sent. The first sign that the
//! connection is gone ends the run, with what the server said when it
//! hung up (sshd's "Too many authentication failures").

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use russh::MethodKind;
use russh::client::{AuthResult, Handle, KeyboardInteractiveAuthResponse};
use russh::keys::agent::AgentIdentity;
use russh::keys::agent::client::AgentClient;
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKey};
use tracing::{debug, info, warn};

use super::error::{AuthError, DenialNotes, LoggedIn};
use super::handler::{ClientHandler, FarewellReceiver};
use super::identities::{self, CertSigner, Identity, Shown};
use super::options::AuthOptions;
use crate::keys::read_key_text;
use crate::prompt::Prompter;

type AgentConn = AgentClient<tokio::net::UnixStream>;

/// How long a lost connection's goodbye is waited for: the connection task
/// records it right after the handle sees the connection close.
const FAREWELL_WAIT: Duration = Duration::from_secs(5);

/// Where we are logging in to, as messages name it.
pub struct Peer<'a> {
    pub host: &'a str,
    pub port: u16,
    /// The server's goodbye, once the connection has ended.
    pub farewell: FarewellReceiver,
}

/// What one authentication run saw and did, for the failure message.
struct Attempts<'a> {
    peer: Peer<'a>,
    /// Methods the server said can continue, in its words.
    offered: Vec<String>,
    /// What we tried, e.g. `publickey (/home/u/.ssh/id_ed25519)`.
    tried: Vec<String>,
    /// Public keys offered to the server (each counts against MaxAuthTries).
    keys_offered: usize,
    /// What the failure message's explanations need.
    notes: DenialNotes,
}

impl Attempts<'_> {
    /// The error for a connection that is gone: the server's goodbye if it
    /// sent one, else that it closed.
    async fn ended(&mut self, source: Option<russh::Error>) -> AuthError {
        let farewell =
            match tokio::time::timeout(FAREWELL_WAIT, self.peer.farewell.wait_for(Option::is_some))
                .await
            {
                Ok(Ok(f)) => (*f).clone(),
                _ => None,
            };
        let farewell = farewell.or_else(|| self.peer.farewell.borrow().clone());
        let host = self.peer.host.to_owned();
        let port = self.peer.port;
        let tried = std::mem::take(&mut self.tried);
        let keys_offered = self.keys_offered;
        match farewell {
            Some(f) => AuthError::Disconnected {
                host,
                port,
                code: f.code,
                message: f.message,
                tried,
                keys_offered,
            },
            None => AuthError::Closed {
                host,
                port,
                tried,
                keys_offered,
                // "Channel send error" and the like say only that the
                // connection is gone, which the message says already.
                source: source
                    .filter(|e| {
                        !matches!(
                            e,
                            russh::Error::SendError
                                | russh::Error::RecvError
                                | russh::Error::Disconnect
                        )
                    })
                    .map(Box::new),
            },
        }
    }

    /// A key (or certificate) the server refused, by the signature
    /// algorithm it was offered with.
    fn refused(&mut self, name: String) {
        if !self.notes.refused_types.contains(&name) {
            self.notes.refused_types.push(name);
        }
    }

    /// A refused certificate (named by `what`), with what its own fields
    /// rule out for `user`.
    fn refused_certificate(&mut self, what: &str, cert: &russh::keys::Certificate, user: &str) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if let Some(problem) = crate::keys::certificate_problem(cert, user, now) {
            self.notes.certificates.push(format!("{what} {problem}"));
        }
    }

    /// An encrypted key file passed over because nothing may ask for its
    /// passphrase.
    fn locked(&mut self, path: &Path) {
        debug!(
            "key {} is encrypted and BatchMode forbids asking",
            path.display()
        );
        self.notes.locked_keys.push(path.display().to_string());
    }

    /// After an attempt that did not log us in: an error if the server
    /// has hung up, so nothing more is offered to a closed connection.
    async fn still_open(&mut self, handle: &Handle<ClientHandler>) -> Result<(), AuthError> {
        if handle.is_closed() {
            return Err(self.ended(None).await);
        }
        Ok(())
    }

    /// A russh call's result; its error means the connection is gone.
    async fn answer<T>(&mut self, r: Result<T, russh::Error>) -> Result<T, AuthError> {
        match r {
            Ok(v) => Ok(v),
            Err(e) => Err(self.ended(Some(e)).await),
        }
    }
}

/// Logs in as `user` and returns what the server accepted (e.g.
/// `publickey (/home/u/.ssh/id_ed25519)`) and what failed before it, or
/// says which methods the server offered and what was tried.
pub async fn authenticate(
    handle: &mut Handle<ClientHandler>,
    opts: &AuthOptions,
    user: &str,
    peer: Peer<'_>,
    prompter: &dyn Prompter,
) -> Result<LoggedIn, AuthError> {
    let host = peer.host;
    let mut seen = Attempts {
        peer,
        offered: Vec::new(),
        tried: Vec::new(),
        keys_offered: 0,
        notes: DenialNotes::default(),
    };
    let none = handle.authenticate_none(user).await;
    let none = seen.answer(none).await?;
    match none {
        AuthResult::Success => {
            return Ok(LoggedIn {
                accepted: "none".to_owned(),
                ..LoggedIn::default()
            });
        }
        AuthResult::Failure {
            remaining_methods, ..
        } => seen.offered = method_names(&remaining_methods),
    }
    info!(
        "Authentications that can continue: {}",
        seen.offered.join(",")
    );
    // The signature algorithms the server verifies (RFC 8308), which
    // decide how RSA keys sign.
    let server_sigs = handle.server_sig_algs().await.ok().flatten();
    for method in &opts.preferred {
        if !seen.offered.iter().any(|m| m == method) {
            continue;
        }
        let done = match method.as_str() {
            "publickey" if opts.pubkey => {
                publickey(
                    handle,
                    opts,
                    user,
                    server_sigs.as_deref(),
                    prompter,
                    &mut seen,
                )
                .await?
            }
            "keyboard-interactive" if opts.kbd_interactive && !opts.batch_mode => {
                keyboard_interactive(handle, opts, user, prompter, &mut seen).await?
            }
            "password" if opts.password && !opts.batch_mode => {
                password(handle, opts, user, host, prompter, &mut seen).await?
            }
            _ => false,
        };
        if done {
            // The attempt that succeeded is the last one recorded.
            let accepted = seen.tried.pop().unwrap_or_else(|| method.clone());
            return Ok(LoggedIn {
                accepted,
                before: seen.tried,
                keys_offered: seen.keys_offered,
                notes: seen.notes,
            });
        }
        seen.still_open(handle).await?;
    }
    Err(AuthError::Denied {
        user: user.to_owned(),
        host: host.to_owned(),
        offered: seen.offered.join(","),
        tried: seen.tried,
        notes: Box::new(seen.notes),
    })
}

/// The signature algorithm a key (or its certificate, `cert`) is offered
/// with: RSA by the hash the server supports (`ssh-rsa` means SHA-1),
/// others by their type.
fn signature_name(algorithm: &russh::keys::Algorithm, cert: bool, hash: Option<HashAlg>) -> String {
    let algorithm = match algorithm {
        russh::keys::Algorithm::Rsa { .. } => russh::keys::Algorithm::Rsa { hash },
        other => other.clone(),
    };
    if cert {
        algorithm.to_certificate_type()
    } else {
        algorithm.to_string()
    }
}

fn method_names(set: &russh::MethodSet) -> Vec<String> {
    set.iter().map(|m: &MethodKind| String::from(m)).collect()
}

/// Records a failure's remaining methods; true on success.
fn settle(result: AuthResult, seen: &mut Attempts<'_>) -> bool {
    match result {
        AuthResult::Success => true,
        AuthResult::Failure {
            remaining_methods, ..
        } => {
            if !remaining_methods.is_empty() {
                seen.offered = method_names(&remaining_methods);
            }
            false
        }
    }
}

async fn publickey(
    handle: &mut Handle<ClientHandler>,
    opts: &AuthOptions,
    user: &str,
    server_sigs: Option<&[russh::keys::Algorithm]>,
    prompter: &dyn Prompter,
    seen: &mut Attempts<'_>,
) -> Result<bool, AuthError> {
    let from_files = identities::from_files(&identity_files(opts), &opts.certificate_files);
    let mut agent = connect_agent(opts).await;
    let held = match &mut agent {
        Some(a) => a.request_identities().await.unwrap_or_default(),
        None => Vec::new(),
    };
    debug!(count = held.len(), "agent identities");
    let ids = identities::merge_agent(from_files, held, opts.identities_only);
    for id in &ids {
        debug!("Will attempt key: {}", describe(id));
    }
    let ctx = Offer {
        opts,
        user,
        server_sigs,
        prompter,
    };
    for id in &ids {
        let done = match (&id.shown, &id.agent, &mut agent) {
            (Some(Shown::Cert(cert)), _, agent) => {
                offer_certificate(handle, &ctx, seen, &ids, id, cert, agent.as_mut()).await?
            }
            (Some(Shown::Key(key)), Some(held), Some(agent)) => {
                offer_agent_key(handle, &ctx, seen, id, key, held, agent).await?
            }
            (shown, _, _) => match &id.file {
                Some(path) => {
                    let public = match shown {
                        Some(Shown::Key(k)) => Some(k),
                        _ => None,
                    };
                    offer_key_file(handle, &ctx, seen, path, public).await?
                }
                None => false,
            },
        };
        if done {
            return Ok(true);
        }
    }
    Ok(false)
}

/// What every public-key attempt of one login shares.
struct Offer<'a> {
    opts: &'a AuthOptions,
    user: &'a str,
    /// The server's server-sig-algs; `None` when it sent none.
    server_sigs: Option<&'a [russh::keys::Algorithm]>,
    prompter: &'a dyn Prompter,
}

impl Offer<'_> {
    /// The hash a key of `algorithm` (a certificate if `cert`) signs
    /// with, `Some(None)` for its own algorithm; `None` when no signature
    /// algorithm is both in PubkeyAcceptedAlgorithms and one the server
    /// verifies, which ssh answers by skipping the key (logged here).
    fn hash_for(
        &self,
        algorithm: &russh::keys::Algorithm,
        cert: bool,
        name: &str,
    ) -> Option<Option<HashAlg>> {
        let hash = identities::signature_hash(
            algorithm,
            cert,
            &self.opts.pubkey_algorithms,
            self.server_sigs,
        );
        if hash.is_none() {
            info!(
                "Skipping {} key {name}: no signature algorithm both in PubkeyAcceptedAlgorithms and accepted by the server",
                signature_name(algorithm, cert, None)
            );
        }
        hash
    }
}

/// `NAME TYPE SHA256:... [agent]`, as ssh's `-v` names an identity.
fn describe(id: &Identity) -> String {
    let shown = id
        .shown
        .as_ref()
        .map_or_else(|| "(public key unread)".to_owned(), Shown::describe);
    let agent = if id.agent.is_some() { " agent" } else { "" };
    format!("{} {shown}{agent}", id.name())
}

/// An identity the agent holds (a plain key) signed by the agent.
async fn offer_agent_key(
    handle: &mut Handle<ClientHandler>,
    ctx: &Offer<'_>,
    seen: &mut Attempts<'_>,
    id: &Identity,
    key: &PublicKey,
    held: &AgentIdentity,
    agent: &mut AgentConn,
) -> Result<bool, AuthError> {
    let Some(hash) = ctx.hash_for(&key.algorithm(), false, &id.name()) else {
        return Ok(false);
    };
    info!("Offering public key: {}", describe(id));
    seen.tried.push(match &id.file {
        Some(f) => format!("publickey ({}, agent)", f.display()),
        None => format!(
            "publickey (agent: {} {})",
            key.algorithm(),
            key.fingerprint(HashAlg::Sha256)
        ),
    });
    seen.keys_offered += 1;
    let result = match held {
        AgentIdentity::PublicKey { key, .. } => {
            handle
                .authenticate_publickey_with(ctx.user, key.clone(), hash, agent)
                .await
        }
        AgentIdentity::Certificate { certificate, .. } => {
            handle
                .authenticate_certificate_with(ctx.user, certificate.clone(), hash, agent)
                .await
        }
    };
    match result {
        Ok(r) => {
            if settle(r, seen) {
                return Ok(true);
            }
            seen.refused(signature_name(&key.algorithm(), false, hash));
        }
        Err(e) => debug!(error = %e, "agent signature failed"),
    }
    seen.still_open(handle).await?;
    Ok(false)
}

/// A certificate, signed by whoever holds the key it certifies; not
/// offered when nothing does.
async fn offer_certificate(
    handle: &mut Handle<ClientHandler>,
    ctx: &Offer<'_>,
    seen: &mut Attempts<'_>,
    all: &[Identity],
    id: &Identity,
    cert: &russh::keys::Certificate,
    agent: Option<&mut AgentConn>,
) -> Result<bool, AuthError> {
    let Some(signer) = identities::signer_for(all, id, cert) else {
        debug!(
            "certificate {}: no private key for it here, not offered",
            describe(id)
        );
        return Ok(false);
    };
    let Some(hash) = ctx.hash_for(&cert.algorithm(), true, &id.name()) else {
        return Ok(false);
    };
    if let CertSigner::File(path) = signer {
        if let Err(e) = crate::keys::check_permissions(path) {
            refuse_loose(&e, path, seen);
            return Ok(false);
        }
        if ctx.opts.batch_mode && is_encrypted(path) {
            seen.locked(path);
            return Ok(false);
        }
    }
    info!("Offering public key: {}", describe(id));
    let shown = |p: &Path| warren_wire::escape_str(&p.display().to_string()).into_owned();
    let what = match (&id.key_file, &id.file) {
        (Some(key), _) => format!("the certificate of {}", shown(key)),
        (None, Some(f)) => format!("the certificate {}", shown(f)),
        (None, None) => format!(
            "the agent's certificate for {}",
            PublicKey::from(cert.public_key().clone()).fingerprint(HashAlg::Sha256)
        ),
    };
    seen.tried.push(format!("publickey ({})", id.name()));
    seen.keys_offered += 1;
    let user = ctx.user;
    let cert_owned = cert.clone();
    let result: Result<AuthResult, String> = match (signer, agent) {
        (CertSigner::AgentKey(key), Some(agent)) => {
            let mut signer = AgentKeySigner { agent, key };
            handle
                .authenticate_certificate_with(user, cert_owned, hash, &mut signer)
                .await
                .map_err(|e| e.to_string())
        }
        (CertSigner::AgentCert, Some(agent)) => handle
            .authenticate_certificate_with(user, cert_owned, hash, agent)
            .await
            .map_err(|e| e.to_string()),
        (CertSigner::File(path), _) => {
            let mut signer = FileSigner {
                path,
                tries: ctx.opts.number_of_password_prompts.max(1),
                prompter: ctx.prompter,
                expect: Some(cert.public_key().clone()),
                unlocked: None,
            };
            let r = handle
                .authenticate_certificate_with(user, cert_owned, hash, &mut signer)
                .await
                .map_err(|e| e.to_string());
            if let (Ok(AuthResult::Success), Some(key)) = (&r, &signer.unlocked) {
                add_to_agent(ctx.opts, key, path, ctx.prompter).await;
            }
            r
        }
        (_, None) => Err("the agent is gone".to_owned()),
    };
    match result {
        Ok(r) => {
            if settle(r, seen) {
                return Ok(true);
            }
            seen.refused(signature_name(&cert.algorithm(), true, hash));
            seen.refused_certificate(&what, cert, user);
        }
        Err(e) => debug!(error = %e, "certificate not used"),
    }
    seen.still_open(handle).await?;
    Ok(false)
}

/// Signs for a certificate with the plain key it certifies, held by the
/// agent (which may hold the key without the certificate).
struct AgentKeySigner<'a> {
    agent: &'a mut AgentConn,
    key: &'a PublicKey,
}

impl russh::Signer for AgentKeySigner<'_> {
    type Error = russh::AgentAuthError;

    async fn auth_sign(
        &mut self,
        _cert: &AgentIdentity,
        hash_alg: Option<HashAlg>,
        to_sign: Vec<u8>,
    ) -> Result<Vec<u8>, Self::Error> {
        let plain = AgentIdentity::PublicKey {
            key: self.key.clone(),
            comment: String::new(),
        };
        Ok(self.agent.sign_request(&plain, hash_alg, to_sign).await?)
    }
}

/// An IdentityFile key the agent does not hold, signed with the file.
async fn offer_key_file(
    handle: &mut Handle<ClientHandler>,
    ctx: &Offer<'_>,
    seen: &mut Attempts<'_>,
    path: &Path,
    public: Option<&PublicKey>,
) -> Result<bool, AuthError> {
    let opts = ctx.opts;
    if !path.exists() {
        // Only KEY.pub is here and the agent does not hold the key.
        info!(
            "no such identity: {}: No such file or directory",
            path.display()
        );
        return Ok(false);
    }
    if let Some(public) = public
        && is_encrypted(path)
    {
        // As OpenSSH: offer the public half first and ask for the
        // passphrase only once the server says it would accept the key.
        return query_then_unlock(handle, ctx, seen, path, public).await;
    }
    if let Some(public) = public
        && ctx
            .hash_for(&public.algorithm(), false, &path.display().to_string())
            .is_none()
    {
        return Ok(false);
    }
    let Some(key) = load_private(path, opts, ctx.prompter, seen)? else {
        return Ok(false);
    };
    let Some(hash) = ctx.hash_for(&key.algorithm(), false, &path.display().to_string()) else {
        return Ok(false);
    };
    let label = format!("publickey ({})", path.display());
    info!("Trying private key: {}", path.display());
    seen.tried.push(label);
    seen.keys_offered += 1;
    let key = Arc::new(key);
    let r = handle
        .authenticate_publickey(ctx.user, PrivateKeyWithHashAlg::new(key.clone(), hash))
        .await;
    if settle(seen.answer(r).await?, seen) {
        add_to_agent(opts, &key, path, ctx.prompter).await;
        return Ok(true);
    }
    seen.refused(signature_name(&key.algorithm(), false, hash));
    seen.still_open(handle).await?;
    Ok(false)
}

async fn connect_agent(opts: &AuthOptions) -> Option<AgentConn> {
    let path = opts.identity_agent.as_ref()?;
    match AgentClient::connect_uds(path).await {
        Ok(a) => Some(a),
        Err(e) => {
            debug!(path = %path.display(), error = %e, "agent not reachable");
            None
        }
    }
}

/// The IdentityFile paths to try: those whose key or `KEY.pub` exists (a
/// key whose private half is only in the agent is named by its `.pub`).
fn identity_files(opts: &AuthOptions) -> Vec<PathBuf> {
    opts.identity_files
        .iter()
        .filter(|p| {
            let exists = p.exists() || crate::keys::with_suffix(p, ".pub").exists();
            if !exists && opts.identity_files_explicit {
                warn!(
                    "Warning: Identity file {} not accessible: No such file or directory.",
                    p.display()
                );
            }
            exists
        })
        .cloned()
        .collect()
}

fn is_encrypted(path: &Path) -> bool {
    crate::keys::is_encrypted_file(path)
}

/// Offers an encrypted key's public half; the passphrase is asked (by
/// [`FileSigner`]) only if the server answers that it would accept it.
async fn query_then_unlock(
    handle: &mut Handle<ClientHandler>,
    ctx: &Offer<'_>,
    seen: &mut Attempts<'_>,
    path: &Path,
    public: &PublicKey,
) -> Result<bool, AuthError> {
    let opts = ctx.opts;
    let Some(hash) = ctx.hash_for(&public.algorithm(), false, &path.display().to_string()) else {
        return Ok(false);
    };
    if let Err(e) = crate::keys::check_permissions(path) {
        refuse_loose(&e, path, seen);
        return Ok(false);
    }
    if opts.batch_mode {
        seen.locked(path);
        return Ok(false);
    }
    info!(
        "Offering public key: {} {}",
        path.display(),
        public.fingerprint(HashAlg::Sha256)
    );
    seen.tried.push(format!("publickey ({})", path.display()));
    seen.keys_offered += 1;
    let mut signer = FileSigner {
        path,
        tries: opts.number_of_password_prompts.max(1),
        prompter: ctx.prompter,
        expect: None,
        unlocked: None,
    };
    match handle
        .authenticate_publickey_with(ctx.user, public.clone(), hash, &mut signer)
        .await
    {
        Ok(r) => {
            let done = settle(r, seen);
            if let (true, Some(key)) = (done, &signer.unlocked) {
                add_to_agent(opts, key, path, ctx.prompter).await;
            }
            if !done {
                seen.refused(signature_name(&public.algorithm(), false, hash));
                seen.still_open(handle).await?;
            }
            Ok(done)
        }
        Err(e) => {
            debug!(error = %e, "key not used");
            seen.still_open(handle).await?;
            Ok(false)
        }
    }
}

/// Signs with a key file that is read (and decrypted) only when a
/// signature is due.
struct FileSigner<'a> {
    path: &'a Path,
    tries: u32,
    prompter: &'a dyn Prompter,
    /// The public key the file must hold (a certificate's key).
    expect: Option<russh::keys::ssh_key::public::KeyData>,
    /// The decrypted key once used, for AddKeysToAgent.
    unlocked: Option<PrivateKey>,
}

#[derive(Debug, thiserror::Error)]
enum FileSignError {
    #[error("connection closed")]
    Send(#[from] russh::SendError),
    #[error("no passphrase given for {0}")]
    Locked(String),
    #[error("{0} does not hold the key its certificate certifies")]
    Mismatch(String),
    #[error("signing failed: {0}")]
    Sign(String),
}

impl FileSigner<'_> {
    fn unlock(&self) -> Result<PrivateKey, FileSignError> {
        let shown = || self.path.display().to_string();
        let text = read_key_text(self.path).map_err(|e| FileSignError::Sign(e.to_string()))?;
        let key = match crate::keys::parse_openssh(&text) {
            Ok(k) => k,
            Err(e) => russh::keys::decode_secret_key(&text, None)
                .map_err(|_| FileSignError::Sign(e.to_string()))?,
        };
        let key = if key.is_encrypted() {
            unlock(&key, &text, self.path, self.tries, self.prompter)
                .ok_or_else(|| FileSignError::Locked(shown()))?
        } else {
            key
        };
        match &self.expect {
            Some(want) if key.public_key().key_data() != want => {
                Err(FileSignError::Mismatch(shown()))
            }
            _ => Ok(key),
        }
    }
}

impl russh::Signer for FileSigner<'_> {
    type Error = FileSignError;

    async fn auth_sign(
        &mut self,
        _key: &AgentIdentity,
        hash_alg: Option<HashAlg>,
        mut to_sign: Vec<u8>,
    ) -> Result<Vec<u8>, FileSignError> {
        // Prompting blocks; keep the other tasks of the runtime running.
        let key = tokio::task::block_in_place(|| self.unlock())?;
        let signature = crate::keys::sign(&key, hash_alg, &to_sign)
            .map_err(|e| FileSignError::Sign(e.to_string()))?;
        self.unlocked = Some(key);
        // The format russh expects from a signer: the data, then the
        // signature blob as an SSH string.
        use russh::keys::ssh_encoding::Encode;
        signature
            .as_slice()
            .encode(&mut to_sign)
            .map_err(|e| FileSignError::Sign(e.to_string()))?;
        Ok(to_sign)
    }
}

/// AddKeysToAgent: after a key file logged us in, hand the key to the
/// agent (asking first for `ask`, with a confirm constraint for
/// `confirm`, with the configured lifetime). Failures are only logged.
async fn add_to_agent(opts: &AuthOptions, key: &PrivateKey, path: &Path, prompter: &dyn Prompter) {
    use super::options::AddKeys;
    use crate::agent::{AgentClient, Constraints, Identity};
    if opts.add_keys_to_agent == AddKeys::No {
        return;
    }
    let Some(sock) = &opts.identity_agent else {
        return;
    };
    let comment = match key.comment().as_str_lossy() {
        "" => path.display().to_string(),
        c => c.to_owned(),
    };
    if opts.add_keys_to_agent == AddKeys::Ask {
        let question = format!("Add key {} ({comment}) to agent? (yes/no) ", path.display());
        let answer = prompter.ask(&question).unwrap_or_default();
        if !matches!(answer.trim().to_ascii_lowercase().as_str(), "yes" | "y") {
            return;
        }
    }
    let constraints = Constraints {
        lifetime: opts.add_keys_lifetime,
        confirm: opts.add_keys_to_agent == AddKeys::Confirm,
        unknown_extension: None,
    };
    let added = async {
        let mut agent = AgentClient::connect(sock).await?;
        agent
            .add(Identity::Key(key.clone()), &comment, constraints)
            .await
    };
    match added.await {
        Ok(()) => info!("Added {} to the agent (AddKeysToAgent)", path.display()),
        Err(e) => warn!("could not add {} to the agent: {e}", path.display()),
    }
}

/// A key file others can read: OpenSSH's warning, and the file noted for
/// the `chmod 600` hint.
fn refuse_loose(e: &crate::keys::PermissionError, path: &Path, seen: &mut Attempts<'_>) {
    warn!("{e}");
    seen.tried.push(format!(
        "publickey ({}: refused, permissions 0{:o} too open)",
        path.display(),
        e.mode
    ));
    seen.notes.loose_keys.push(path.display().to_string());
}

/// Loads a private key, refusing loose permissions and asking for the
/// passphrase when it is encrypted. `None`: skip this key.
fn load_private(
    path: &Path,
    opts: &AuthOptions,
    prompter: &dyn Prompter,
    seen: &mut Attempts<'_>,
) -> Result<Option<PrivateKey>, AuthError> {
    if let Err(e) = crate::keys::check_permissions(path) {
        refuse_loose(&e, path, seen);
        return Ok(None);
    }
    let text = match read_key_text(path) {
        Ok(t) => t,
        Err(e) => {
            warn!("Load key \"{}\": {e}", path.display());
            seen.tried
                .push(format!("publickey ({}: unreadable)", path.display()));
            return Ok(None);
        }
    };
    let key = match crate::keys::parse_openssh(&text) {
        Ok(k) => k,
        Err(_) => match russh::keys::decode_secret_key(&text, None) {
            Ok(k) => return Ok(Some(k)),
            Err(_) if crate::keys::is_encrypted_pem(&text) => {
                warn!("Load key \"{}\": encrypted PEM key", path.display());
                seen.tried
                    .push(format!("publickey ({}: encrypted PEM key)", path.display()));
                seen.notes.pem_keys.push(path.display().to_string());
                return Ok(None);
            }
            Err(e) => {
                // ssh's words, at the default level; the parser's detail
                // is for -vv.
                warn!("Load key \"{}\": invalid format", path.display());
                debug!("Load key \"{}\": {e}", path.display());
                seen.tried
                    .push(format!("publickey ({}: invalid format)", path.display()));
                return Ok(None);
            }
        },
    };
    if !key.is_encrypted() {
        return Ok(Some(key));
    }
    if opts.batch_mode {
        seen.locked(path);
        return Ok(None);
    }
    Ok(unlock(
        &key,
        &text,
        path,
        opts.number_of_password_prompts.max(1),
        prompter,
    ))
}

/// Asks for the passphrase up to `tries` times; `None` when the user gives
/// none (empty or cancelled) or every one was wrong.
fn unlock(
    key: &PrivateKey,
    text: &str,
    path: &Path,
    tries: u32,
    prompter: &dyn Prompter,
) -> Option<PrivateKey> {
    for _ in 0..tries {
        let pass = prompter.secret(&format!("Enter passphrase for key '{}': ", path.display()))?;
        if pass.expose().is_empty() {
            return None;
        }
        match crate::keys::decrypt_openssh(key, text, pass.expose().as_bytes()) {
            Ok(k) => return Some(k),
            Err(_) => prompter.inform("Bad passphrase, try again."),
        }
    }
    None
}

async fn keyboard_interactive(
    handle: &mut Handle<ClientHandler>,
    opts: &AuthOptions,
    user: &str,
    prompter: &dyn Prompter,
    seen: &mut Attempts<'_>,
) -> Result<bool, AuthError> {
    seen.tried.push("keyboard-interactive".into());
    for _ in 0..opts.number_of_password_prompts.max(1) {
        let start = handle
            .authenticate_keyboard_interactive_start(user, None)
            .await;
        let mut reply = seen.answer(start).await?;
        loop {
            match reply {
                KeyboardInteractiveAuthResponse::Success => return Ok(true),
                KeyboardInteractiveAuthResponse::Failure {
                    remaining_methods, ..
                } => {
                    if !remaining_methods.is_empty() {
                        seen.offered = method_names(&remaining_methods);
                    }
                    break;
                }
                KeyboardInteractiveAuthResponse::InfoRequest {
                    name,
                    instructions,
                    prompts,
                } => {
                    // The server's words reach the terminal escaped.
                    for text in [&name, &instructions] {
                        if !text.is_empty() {
                            prompter.inform(&warren_wire::text::escape_lines(text));
                        }
                    }
                    let mut answers = Vec::with_capacity(prompts.len());
                    for p in &prompts {
                        let shown = warren_wire::escape_str(&p.prompt);
                        let answer = if p.echo {
                            prompter.ask(&shown)
                        } else {
                            prompter.secret(&shown).map(|s| s.expose().to_owned())
                        };
                        let Some(answer) = answer else {
                            return Ok(false);
                        };
                        answers.push(answer);
                    }
                    let next = handle
                        .authenticate_keyboard_interactive_respond(answers)
                        .await;
                    reply = seen.answer(next).await?;
                }
            }
        }
        if !seen.offered.iter().any(|m| m == "keyboard-interactive") {
            break;
        }
    }
    Ok(false)
}

async fn password(
    handle: &mut Handle<ClientHandler>,
    opts: &AuthOptions,
    user: &str,
    host: &str,
    prompter: &dyn Prompter,
    seen: &mut Attempts<'_>,
) -> Result<bool, AuthError> {
    seen.tried.push("password".into());
    for attempt in 0..opts.number_of_password_prompts.max(1) {
        if attempt > 0 {
            prompter.inform("Permission denied, please try again.");
        }
        let Some(pass) = prompter.secret(&format!("{user}@{host}'s password: ")) else {
            return Ok(false);
        };
        let r = handle.authenticate_password(user, pass.expose()).await;
        if settle(seen.answer(r).await?, seen) {
            return Ok(true);
        }
        seen.still_open(handle).await?;
    }
    Ok(false)
}
