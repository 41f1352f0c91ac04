//! UpdateHostKeys: after login OpenSSH's sshd announces every host key
//! it has (`hostkeys-00@openssh.com`); keys not yet in the user's
//! known_hosts are learnt once the server proves it holds them
//! (`hostkeys-prove-00@openssh.com`), and keys recorded for the host that
//! the server no longer has are removed, as ssh's `client_input_hostkeys`
//! does.
//!
//! Design choice: the work runs in its own task, after login, so nothing
//! waits for it; the handler only passes the announcement on. Reading and
//! rewriting known_hosts (and any `ask` prompt) happen on the blocking
//! pool. The task is kept by the [`super::Session`], whose `close` lets a
//! started update finish, so a short `warren ssh host true` still learns.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};

use russh::client::Handle;
use russh::keys::{HashAlg, PublicKey};
use tracing::{debug, error, info};
use warren_knownhosts::{HostKey, KnownHostsFile, Plan, UpdateNames};

use super::handler::ClientHandler;
use super::options::UpdateHostKeys;
use crate::prompt::Prompter;

/// What the update needs to know about the connection.
pub(crate) struct Updater {
    pub mode: UpdateHostKeys,
    /// The user's known_hosts files: keys are added to the first; lines
    /// for the host in the others are removed, as ssh does.
    pub files: Vec<PathBuf>,
    /// The name (and address, with CheckHostIP) entries are written under.
    pub host: String,
    pub ip: Option<String>,
    pub hash: bool,
    /// HostKeyAlgorithms: announced keys of other types are ignored.
    pub host_key_algorithms: Vec<String>,
    pub prompter: Arc<dyn Prompter>,
}

/// The update task of one connection.
pub(crate) struct Task {
    /// Taken by `settle`.
    handle: Option<tokio::task::JoinHandle<()>>,
    /// Set once the server's keys arrived: from then on the task is worth
    /// waiting for.
    started: Arc<AtomicBool>,
}

/// How long `close` waits for a started update (a proof round trip and a
/// file rewrite).
const SETTLE: std::time::Duration = std::time::Duration::from_secs(5);

impl Task {
    pub(crate) fn spawn(
        updater: Updater,
        announced: tokio::sync::oneshot::Receiver<Vec<PublicKey>>,
        handle: Weak<Handle<ClientHandler>>,
    ) -> Task {
        let started = Arc::new(AtomicBool::new(false));
        let flag = started.clone();
        let handle = tokio::spawn(async move {
            let Ok(keys) = announced.await else {
                return;
            };
            flag.store(true, Ordering::SeqCst);
            update(Arc::new(updater), keys, handle).await;
        });
        Task {
            handle: Some(handle),
            started,
        }
    }

    /// Lets a started update finish (bounded); one still waiting for the
    /// server's keys is ended.
    pub(crate) async fn settle(mut self) {
        let Some(handle) = self.handle.take() else {
            return;
        };
        if !self.started.load(Ordering::SeqCst) {
            handle.abort();
            return;
        }
        let abort = handle.abort_handle();
        if tokio::time::timeout(SETTLE, handle).await.is_err() {
            abort.abort();
            debug!("UpdateHostKeys: still running at close; abandoned");
        }
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        // A task dropped unsettled (the session dropped without close)
        // must not outlive it.
        if let Some(handle) = &self.handle {
            handle.abort();
        }
    }
}

async fn update(
    updater: Arc<Updater>,
    announced: Vec<PublicKey>,
    handle: Weak<Handle<ClientHandler>>,
) {
    let Some(keys) = updater.accepted(announced) else {
        return;
    };
    let planner = updater.clone();
    let plan_keys = keys.clone();
    let Ok(plan) = tokio::task::spawn_blocking(move || planner.plan(&plan_keys)).await else {
        return;
    };
    if plan.is_empty() {
        debug!("UpdateHostKeys: no new or deprecated keys from server");
        return;
    }
    if let Some(reason) = plan.skip {
        debug!("UpdateHostKeys: {reason}; skipping UserKnownHostsFile update");
        return;
    }
    if !plan.new.is_empty() {
        debug!(
            "UpdateHostKeys: asking server to prove ownership for {} keys",
            plan.new.len()
        );
        let new: Vec<PublicKey> = keys
            .iter()
            .filter(|(_, hk)| plan.new.contains(hk))
            .map(|(k, _)| k.clone())
            .collect();
        let Some(handle) = handle.upgrade() else {
            return;
        };
        if let Err(e) = handle.hostkeys_prove(new).await {
            error!("Server failed to confirm ownership of private host keys: {e}");
            return;
        }
    }
    let _ = tokio::task::spawn_blocking(move || updater.apply(&keys, &plan)).await;
}

impl Updater {
    /// ssh's filter on the announcement: plain keys of an accepted type,
    /// none twice (a duplicate ends the update, as in ssh).
    fn accepted(&self, announced: Vec<PublicKey>) -> Option<Vec<(PublicKey, HostKey)>> {
        let mut keys: Vec<(PublicKey, HostKey)> = Vec::new();
        for key in announced {
            let fingerprint = key.fingerprint(HashAlg::Sha256);
            let Ok(blob) = key.to_bytes() else { continue };
            let Ok(hk) = HostKey::from_blob(blob) else {
                continue;
            };
            debug!(
                "UpdateHostKeys: received {} key {fingerprint}",
                hk.algorithm()
            );
            if hk.is_certificate() {
                continue;
            }
            if !self.type_accepted(hk.algorithm()) {
                debug!(
                    "UpdateHostKeys: {} key not permitted by HostKeyAlgorithms",
                    hk.algorithm()
                );
                continue;
            }
            if keys.iter().any(|(_, k)| *k == hk) {
                error!(
                    "UpdateHostKeys: received duplicated {} host key",
                    hk.algorithm()
                );
                return None;
            }
            keys.push((key, hk));
        }
        if keys.is_empty() {
            debug!("UpdateHostKeys: server sent no hostkeys");
            return None;
        }
        Some(keys)
    }

    /// `hostkey_accepted_by_hostkeyalgs`: an RSA key is accepted by any
    /// of the RSA signature algorithms.
    fn type_accepted(&self, algorithm: &str) -> bool {
        self.host_key_algorithms.iter().any(|a| {
            a == algorithm
                || (algorithm == "ssh-rsa" && matches!(a.as_str(), "rsa-sha2-256" | "rsa-sha2-512"))
        })
    }

    fn names(&self) -> UpdateNames<'_> {
        UpdateNames {
            host: &self.host,
            ip: self.ip.as_deref(),
        }
    }

    fn plan(&self, keys: &[(PublicKey, HostKey)]) -> Plan {
        let announced: Vec<HostKey> = keys.iter().map(|(_, k)| k.clone()).collect();
        let files: Vec<KnownHostsFile> = self.files.iter().filter_map(|p| read_whole(p)).collect();
        warren_knownhosts::plan(&files, self.names(), &announced)
    }

    /// Says what changes (asking first with `ask`), then rewrites the files.
    fn apply(&self, keys: &[(PublicKey, HostKey)], plan: &Plan) {
        let mut lines = Vec::new();
        for (key, hk) in keys.iter().filter(|(_, hk)| plan.new.contains(hk)) {
            lines.push(format!(
                "Learned new hostkey: {} {}",
                type_name(hk),
                key.fingerprint(HashAlg::Sha256)
            ));
        }
        for hk in &plan.old {
            lines.push(format!(
                "Deprecating obsolete hostkey: {} {}",
                type_name(hk),
                fingerprint(hk)
            ));
        }
        if self.mode == UpdateHostKeys::Ask {
            self.prompter.inform(&format!(
                "The server has updated its host keys.\nThese changes were verified by the server's existing trusted key.\n{}",
                lines.join("\n")
            ));
            if !self.confirmed() {
                return;
            }
        } else {
            for line in &lines {
                info!("{line}");
            }
        }
        let all: Vec<HostKey> = keys.iter().map(|(_, k)| k.clone()).collect();
        for (i, path) in self.files.iter().enumerate() {
            // Keys are added to the first file only; in the others the
            // host's lines are removed (ssh's update_known_hosts).
            let keys = if i == 0 { all.as_slice() } else { &[] };
            if let Err(e) = self.rewrite(path, keys) {
                error!("UpdateHostKeys: updating {} failed: {e}", path.display());
            }
        }
    }

    fn confirmed(&self) -> bool {
        for _ in 0..3 {
            let Some(answer) = self.prompter.ask("Accept updated hostkeys? (yes/no): ") else {
                return false;
            };
            match answer.trim() {
                a if a.eq_ignore_ascii_case("yes") => return true,
                a if a.eq_ignore_ascii_case("no") => return false,
                _ => self.prompter.inform("Please enter \"yes\" or \"no\""),
            }
        }
        false
    }

    /// ssh's `hostfile_replace_entries`: the new text through a temp file
    /// renamed into place, the old one kept as `FILE.old`.
    fn rewrite(&self, path: &Path, keys: &[HostKey]) -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let input = std::io::BufReader::new(std::fs::File::open(path)?);
        let mut out = Vec::new();
        let mut salt = rand::random::<[u8; warren_knownhosts::SALT_LEN]>;
        let hash: Option<&mut dyn FnMut() -> [u8; warren_knownhosts::SALT_LEN]> =
            if self.hash { Some(&mut salt) } else { None };
        let done = warren_knownhosts::replace(input, &mut out, self.names(), keys, hash)?;
        if !done.modified() {
            return Ok(());
        }
        for line in &done.removed {
            info!(
                "{}:{line}: Removed key for host {}",
                path.display(),
                self.host
            );
        }
        let mut backup = path.as_os_str().to_owned();
        backup.push(".old");
        let backup = PathBuf::from(backup);
        match std::fs::remove_file(&backup) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        std::fs::hard_link(path, &backup)?;
        crate::keys::replace_file(path, &out, meta.permissions().mode() & 0o7777)
            .map_err(std::io::Error::other)
    }
}

/// A user known_hosts file, every entry kept (a key recorded for the host
/// may also be under another name). Lines are bounded as in lookups.
fn read_whole(path: &Path) -> Option<KnownHostsFile> {
    let label = path.display().to_string();
    let file = std::fs::File::open(path).ok()?;
    KnownHostsFile::read(&label, std::io::BufReader::new(file), |_| true).ok()
}

/// "ED25519", "ECDSA", "RSA", as `sshkey_type` names them.
fn type_name(key: &HostKey) -> String {
    match key.key_type().as_str() {
        "ssh-ed25519" => "ED25519".into(),
        "ssh-rsa" => "RSA".into(),
        t if t.starts_with("ecdsa-") => "ECDSA".into(),
        t => t.to_owned(),
    }
}

fn fingerprint(key: &HostKey) -> String {
    PublicKey::from_bytes(key.blob())
        .map(|k| k.fingerprint(HashAlg::Sha256).to_string())
        .unwrap_or_default()
}
