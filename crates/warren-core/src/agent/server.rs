//! The agent's key store and its answers to each request, and the accept
//! loop that serves them on a socket (one task per client).
//!
//! Design choice: expired keys are dropped when the store is next looked
//! at, so a key with a lifetime is gone for every request after its time
//! without a timer per key; `tokio::time` makes that testable with a paused
//! clock.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::BytesMut;
use russh::keys::HashAlg;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{UnixListener, UnixStream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::proto::{self, Constraints, Identity, Request, Response};
use crate::keys::{self, FingerprintHash};
use crate::secret::Secret;

/// Asks the user whether a confirm-constrained key may sign; the argument
/// is the prompt. Runs on the blocking pool.
pub type Confirm = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// How the agent behaves.
#[derive(Clone)]
pub struct AgentOptions {
    /// `-t`: lifetime for keys added without one.
    pub default_lifetime: Option<Duration>,
    /// Fingerprint hash shown in confirmation prompts (`-E`).
    pub fingerprint_hash: FingerprintHash,
    pub confirm: Confirm,
}

impl Default for AgentOptions {
    fn default() -> Self {
        AgentOptions {
            default_lifetime: None,
            fingerprint_hash: FingerprintHash::Sha256,
            confirm: Arc::new(askpass_confirm),
        }
    }
}

struct Entry {
    identity: Identity,
    blob: Vec<u8>,
    comment: String,
    expires: Option<Instant>,
    confirm: bool,
}

#[derive(Default)]
struct Store {
    /// In the order added, as ssh-agent lists them.
    entries: Vec<Entry>,
    locked: Option<Secret>,
}

impl Store {
    fn purge(&mut self) {
        let now = Instant::now();
        self.entries.retain(|e| e.expires.is_none_or(|t| t > now));
    }
}

/// The agent: a key store shared by all connections.
#[derive(Clone)]
pub struct Agent {
    store: Arc<Mutex<Store>>,
    opts: AgentOptions,
}

impl Agent {
    pub fn new(opts: AgentOptions) -> Agent {
        Agent {
            store: Arc::default(),
            opts,
        }
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        // A poisoned lock only means another request panicked mid-way; the
        // store itself is still consistent (every change is one call).
        let mut s = self.store.lock().unwrap_or_else(|p| p.into_inner());
        s.purge();
        s
    }

    /// Answers one request.
    pub async fn handle(&self, request: Request) -> Response {
        match request {
            Request::RequestIdentities => self.identities(),
            Request::Sign {
                key_blob,
                data,
                flags,
            } => self.sign(&key_blob, &data, flags).await,
            Request::Add {
                identity,
                comment,
                constraints,
            } => self.add(identity, comment, &constraints),
            Request::Remove { key_blob } => self.remove(&key_blob),
            Request::RemoveAll => self.remove_all(),
            Request::Lock(pass) => self.lock(pass),
            Request::Unlock(pass) => self.unlock(&pass),
            Request::Extension(name) => {
                debug!(%name, "agent extension not supported");
                Response::Failure
            }
            Request::Unsupported(kind) => {
                debug!(kind, "agent request not supported");
                Response::Failure
            }
        }
    }

    fn identities(&self) -> Response {
        let s = self.store();
        if s.locked.is_some() {
            return Response::Identities(Vec::new());
        }
        Response::Identities(
            s.entries
                .iter()
                .map(|e| (e.blob.clone(), e.comment.clone()))
                .collect(),
        )
    }

    fn add(&self, identity: Identity, comment: String, c: &Constraints) -> Response {
        if let Some(ext) = &c.unknown_extension {
            info!("refusing key with unsupported constraint {ext}");
            return Response::Failure;
        }
        let mut s = self.store();
        if s.locked.is_some() {
            return Response::Failure;
        }
        let lifetime = c
            .lifetime
            .map(|secs| Duration::from_secs(u64::from(secs)))
            .or(self.opts.default_lifetime);
        let blob = identity.public_blob();
        let entry = Entry {
            identity,
            blob,
            comment,
            expires: lifetime.map(|l| Instant::now() + l),
            confirm: c.confirm,
        };
        debug!(comment = %entry.comment, ?lifetime, confirm = c.confirm, "key added");
        // Adding a key again replaces it (new constraints, same place).
        match s.entries.iter_mut().find(|e| e.blob == entry.blob) {
            Some(old) => *old = entry,
            None => s.entries.push(entry),
        }
        Response::Success
    }

    fn remove(&self, blob: &[u8]) -> Response {
        let mut s = self.store();
        if s.locked.is_some() {
            return Response::Failure;
        }
        let before = s.entries.len();
        s.entries.retain(|e| e.blob != blob);
        if s.entries.len() < before {
            Response::Success
        } else {
            Response::Failure
        }
    }

    fn remove_all(&self) -> Response {
        let mut s = self.store();
        if s.locked.is_some() {
            return Response::Failure;
        }
        s.entries.clear();
        Response::Success
    }

    fn lock(&self, pass: Secret) -> Response {
        let mut s = self.store();
        if s.locked.is_some() {
            return Response::Failure;
        }
        s.locked = Some(pass);
        info!("agent locked");
        Response::Success
    }

    fn unlock(&self, pass: &Secret) -> Response {
        let mut s = self.store();
        let matches = s
            .locked
            .as_ref()
            .is_some_and(|l| same(l.expose().as_bytes(), pass.expose().as_bytes()));
        if !matches {
            return Response::Failure;
        }
        s.locked = None;
        info!("agent unlocked");
        Response::Success
    }

    async fn sign(&self, blob: &[u8], data: &[u8], flags: u32) -> Response {
        let (key, prompt) = {
            let s = self.store();
            if s.locked.is_some() {
                return Response::Failure;
            }
            let Some(e) = s.entries.iter().find(|e| e.blob == blob) else {
                return Response::Failure;
            };
            let prompt = e.confirm.then(|| {
                let public = e.identity.private_key().public_key().key_data();
                format!(
                    "Allow use of key {}?\nKey fingerprint {}.",
                    e.comment,
                    keys::fingerprint(public, self.opts.fingerprint_hash)
                )
            });
            (e.identity.private_key().clone(), prompt)
        };
        if let Some(prompt) = prompt {
            let confirm = self.opts.confirm.clone();
            let allowed = tokio::task::spawn_blocking(move || confirm(&prompt))
                .await
                .unwrap_or(false);
            // Locked or removed while the user was asked: no signature.
            let s = self.store();
            if !allowed || s.locked.is_some() || !s.entries.iter().any(|e| e.blob == blob) {
                info!("signature refused");
                return Response::Failure;
            }
        }
        let hash = if flags & proto::RSA_SHA2_512 != 0 {
            Some(HashAlg::Sha512)
        } else if flags & proto::RSA_SHA2_256 != 0 {
            Some(HashAlg::Sha256)
        } else {
            None
        };
        match keys::sign(&key, hash, data) {
            Ok(sig) => Response::Signature(sig),
            Err(e) => {
                warn!("signing failed: {e}");
                Response::Failure
            }
        }
    }
}

/// Compares without stopping at the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Confirmation through `SSH_ASKPASS` (default `/usr/bin/ssh-askpass`),
/// as ssh-agent asks it: allowed when the program succeeds and prints
/// nothing or "yes".
pub fn askpass_confirm(prompt: &str) -> bool {
    let program = std::env::var("SSH_ASKPASS")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "/usr/bin/ssh-askpass".into());
    let out = std::process::Command::new(&program)
        .arg(prompt)
        .env("SSH_ASKPASS_PROMPT", "confirm")
        .stdin(std::process::Stdio::null())
        .output();
    match out {
        Ok(out) if out.status.success() => {
            let answer = String::from_utf8_lossy(&out.stdout);
            let answer = answer.trim();
            answer.is_empty() || answer.eq_ignore_ascii_case("yes")
        }
        Ok(_) => false,
        Err(e) => {
            warn!("cannot ask for confirmation with {program}: {e}");
            false
        }
    }
}

/// Serves `agent` on `listener` until `token` is cancelled: one task per
/// client; clients of another uid are turned away.
pub async fn serve(listener: &UnixListener, agent: Agent, token: CancellationToken) {
    let mut clients = tokio::task::JoinSet::new();
    while let Some(accepted) = token.run_until_cancelled(listener.accept()).await {
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                warn!("agent accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if !super::socket::peer_allowed(&stream) {
            continue;
        }
        let agent = agent.clone();
        let token = token.clone();
        clients.spawn(async move {
            token.run_until_cancelled(client(stream, agent)).await;
        });
        while clients.try_join_next().is_some() {}
    }
    clients.shutdown().await;
}

async fn client(mut stream: UnixStream, agent: Agent) {
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        loop {
            match proto::decode_frame(&mut buf) {
                Ok(Some(body)) => {
                    let answer = match Request::decode(&body) {
                        Ok(req) => agent.handle(req).await,
                        Err(e) => {
                            debug!("bad agent request: {e}");
                            Response::Failure
                        }
                    };
                    if stream.write_all(&answer.encode()).await.is_err() {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    debug!("agent client dropped: {e}");
                    return;
                }
            }
        }
        match stream.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeyType, generate};

    fn agent(confirm: bool) -> Agent {
        Agent::new(AgentOptions {
            confirm: Arc::new(move |_| confirm),
            ..AgentOptions::default()
        })
    }

    fn add(key: &russh::keys::PrivateKey, c: Constraints) -> Request {
        Request::Add {
            identity: Identity::Key(key.clone()),
            comment: "k".into(),
            constraints: c,
        }
    }

    async fn count(a: &Agent) -> usize {
        match a.handle(Request::RequestIdentities).await {
            Response::Identities(v) => v.len(),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn lifetime_expires_keys_on_time() {
        let a = agent(true);
        let key = generate(KeyType::Ed25519, None, "").expect("key");
        let c = Constraints {
            lifetime: Some(10),
            ..Constraints::default()
        };
        assert_eq!(a.handle(add(&key, c)).await, Response::Success);
        tokio::time::advance(Duration::from_secs(9)).await;
        assert_eq!(count(&a).await, 1);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(count(&a).await, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn default_lifetime_applies_to_keys_without_one() {
        let a = Agent::new(AgentOptions {
            default_lifetime: Some(Duration::from_secs(5)),
            ..AgentOptions::default()
        });
        let key = generate(KeyType::Ed25519, None, "").expect("key");
        a.handle(add(&key, Constraints::default())).await;
        tokio::time::advance(Duration::from_secs(6)).await;
        assert_eq!(count(&a).await, 0);
    }

    #[tokio::test]
    async fn lock_hides_keys_and_refuses_signatures_until_unlocked() {
        let a = agent(true);
        let key = generate(KeyType::Ed25519, None, "").expect("key");
        a.handle(add(&key, Constraints::default())).await;
        let blob = Identity::Key(key).public_blob();
        let sign = || Request::Sign {
            key_blob: blob.clone(),
            data: b"data".to_vec(),
            flags: 0,
        };
        assert!(matches!(a.handle(sign()).await, Response::Signature(_)));
        let pw = || Secret::new("pw".into());
        assert_eq!(a.handle(Request::Lock(pw())).await, Response::Success);
        assert_eq!(count(&a).await, 0);
        assert_eq!(a.handle(sign()).await, Response::Failure);
        assert_eq!(
            a.handle(Request::Unlock(Secret::new("wrong".into()))).await,
            Response::Failure
        );
        assert_eq!(a.handle(Request::Unlock(pw())).await, Response::Success);
        assert!(matches!(a.handle(sign()).await, Response::Signature(_)));
    }

    #[tokio::test]
    async fn confirm_constraint_asks_and_honours_no() {
        for allowed in [true, false] {
            let a = agent(allowed);
            let key = generate(KeyType::Ed25519, None, "").expect("key");
            let c = Constraints {
                confirm: true,
                ..Constraints::default()
            };
            a.handle(add(&key, c)).await;
            let r = a
                .handle(Request::Sign {
                    key_blob: Identity::Key(key).public_blob(),
                    data: b"x".to_vec(),
                    flags: 0,
                })
                .await;
            assert_eq!(matches!(r, Response::Signature(_)), allowed);
        }
    }

    #[tokio::test]
    async fn keys_list_in_the_order_added_and_remove_by_blob() {
        let a = agent(true);
        let keys: Vec<_> = (0..3)
            .map(|_| generate(KeyType::Ed25519, None, "").expect("key"))
            .collect();
        for k in &keys {
            a.handle(add(k, Constraints::default())).await;
        }
        let blobs: Vec<Vec<u8>> = keys
            .iter()
            .map(|k| Identity::Key(k.clone()).public_blob())
            .collect();
        match a.handle(Request::RequestIdentities).await {
            Response::Identities(v) => {
                assert_eq!(v.iter().map(|(b, _)| b.clone()).collect::<Vec<_>>(), blobs)
            }
            other => panic!("{other:?}"),
        }
        let r = a
            .handle(Request::Remove {
                key_blob: blobs[1].clone(),
            })
            .await;
        assert_eq!(r, Response::Success);
        assert_eq!(count(&a).await, 2);
        assert_eq!(a.handle(Request::RemoveAll).await, Response::Success);
        assert_eq!(count(&a).await, 0);
    }
}
