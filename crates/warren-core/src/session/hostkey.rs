//! Host key verification against known_hosts (warren-knownhosts), with
//! StrictHostKeyChecking, HostKeyAlias, CheckHostIP, @revoked and
//! @cert-authority, KnownHostsCommand, and the first-connection prompt.
//!
//! Design choice: a changed or revoked key never connects, whatever
//! StrictHostKeyChecking says; the error names the file:line of the old
//! entry and the command that removes it.

use std::io::{BufReader, Read as _, Write as _};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use russh::keys::{HashAlg, PublicKey, PublicKeyOrCertificate};
use tracing::{debug, error, info, warn};
use warren_config::{KnownHostsCommand, PresentedKey, SystemEnvironment};
use warren_knownhosts::{HostKey, HostNames, IpStatus, KnownHosts, KnownHostsFile, Verdict};
use warren_wire::escape_str;

use super::error::{ChangedKey, HostKeyError};
use super::options::{ConnectOptions, HostKeyOptions, StrictHostKeyChecking, UpdateHostKeys};
use crate::prompt::Prompter;

/// Checks the server's key for one connection.
pub struct HostKeyVerifier {
    opts: HostKeyOptions,
    names: HostNames,
    /// The name looked up (alias, or `host` / `[host]:port`), for messages.
    lookup_name: String,
    /// The bare host name, for certificate principals.
    host: String,
    peer_ip: Option<IpAddr>,
    prompter: Arc<dyn Prompter>,
    /// Whether the key was accepted through the user's own known_hosts
    /// (found there, or just added): only then may UpdateHostKeys edit
    /// it, as ssh turns it off for keys from GlobalKnownHostsFile,
    /// KnownHostsCommand or a certificate.
    user_file_vouched: AtomicBool,
}

impl HostKeyVerifier {
    pub fn new(
        opts: &ConnectOptions,
        peer_ip: Option<IpAddr>,
        prompter: Arc<dyn Prompter>,
    ) -> Self {
        let peer_ip = peer_ip.map(|ip| ip.to_canonical());
        let mut names = HostNames::new(&opts.hostname.to_ascii_lowercase(), opts.port);
        if let Some(alias) = &opts.host_keys.host_key_alias {
            names = names.with_host_key_alias(alias);
        }
        // Like OpenSSH, CheckHostIP is pointless for a loopback peer.
        if let Some(ip) = peer_ip.filter(|ip| opts.host_keys.check_host_ip && !ip.is_loopback()) {
            names = names.with_ip(&ip.to_string());
        }
        HostKeyVerifier {
            opts: opts.host_keys.clone(),
            lookup_name: names.host(),
            names,
            host: opts.hostname.clone(),
            peer_ip,
            prompter,
            user_file_vouched: AtomicBool::new(false),
        }
    }

    /// The UpdateHostKeys work for this connection, if it applies (see
    /// `user_file_vouched`); called once the key is accepted.
    pub(crate) fn updater(
        &self,
        host_key_algorithms: &[String],
    ) -> Option<super::hostkeys_update::Updater> {
        if self.opts.update_host_keys == UpdateHostKeys::No
            || self.opts.user_known_hosts.is_empty()
            || !self.user_file_vouched.load(Ordering::SeqCst)
        {
            return None;
        }
        Some(super::hostkeys_update::Updater {
            mode: self.opts.update_host_keys,
            files: self.opts.user_known_hosts.clone(),
            host: self.lookup_name.clone(),
            ip: self.names.ip(),
            hash: self.opts.hash_known_hosts,
            host_key_algorithms: host_key_algorithms.to_vec(),
            prompter: self.prompter.clone(),
        })
    }

    /// The known_hosts files, then KnownHostsCommand's lines: for the
    /// algorithm order (`key` absent: ORDER), or for the server's key
    /// (HOSTNAME, and ADDRESS when CheckHostIP applies), as ssh runs it.
    fn load(&self, key: Option<&PublicKeyOrCertificate>) -> Result<KnownHosts, HostKeyError> {
        let files = self
            .opts
            .user_known_hosts
            .iter()
            .chain(&self.opts.global_known_hosts);
        let mut files: Vec<KnownHostsFile> = files
            .filter_map(|p| read_known_hosts(p, &self.names))
            .collect();
        if let Some(command) = &self.opts.known_hosts_command {
            let presented = key.map(presented_key).transpose()?;
            let presented = presented
                .as_ref()
                .map(|(name, fingerprint, base64)| PresentedKey {
                    name,
                    fingerprint,
                    base64,
                });
            // ssh gives ORDER the bare host name as %H (no alias, no
            // port), and HOSTNAME the name known_hosts lines must match.
            let mut lookups = vec![match key {
                Some(_) => ("HOSTNAME", self.lookup_name.clone()),
                None => ("ORDER", self.host.to_ascii_lowercase()),
            }];
            if let Some(ip) = self.names.ip().filter(|_| key.is_some()) {
                lookups.push(("ADDRESS", ip));
            }
            for (invocation, name) in lookups {
                files.extend(self.run_command(command, invocation, &name, presented)?);
            }
        }
        Ok(KnownHosts::new(files))
    }

    /// Runs KnownHostsCommand for one lookup and reads its output as a
    /// known_hosts file, at most [`COMMAND_OUTPUT_LIMIT`] bytes of it. A
    /// command that cannot start, fails, or says more than that stops the
    /// connection, as in ssh; a relative path is reported and skipped, as
    /// ssh's `subprocess` does.
    fn run_command(
        &self,
        command: &KnownHostsCommand,
        invocation: &str,
        lookup_name: &str,
        key: Option<PresentedKey<'_>>,
    ) -> Result<Option<KnownHostsFile>, HostKeyError> {
        let fail = |reason: String| HostKeyError::KnownHostsCommand { reason };
        let tag = format!("KnownHostsCommand-{invocation}");
        let argv = command
            .argv(invocation, lookup_name, key, &SystemEnvironment::new())
            .map_err(|e| fail(e.to_string()))?;
        let shown = escape_str(&argv.join(" ")).into_owned();
        let Some((program, args)) = argv.split_first() else {
            return Ok(None);
        };
        if !Path::new(program).is_absolute() {
            error!("{tag} path is not absolute");
            return Ok(None);
        }
        debug!("{tag}: running \"{shown}\"");
        let mut child = std::process::Command::new(program)
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| fail(format!("{tag}: exec({}): {e}", escape_str(program))))?;
        let Some(out) = child.stdout.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(fail(format!("{tag}: no pipe to its output")));
        };
        let mut limited = BufReader::new(out.take(COMMAND_OUTPUT_LIMIT));
        let file = KnownHostsFile::read(&tag, &mut limited, |e| self.names.wants(e));
        // Anything left past the limit means it said too much.
        let mut more = [0u8; 1];
        let over = limited
            .into_inner()
            .into_inner()
            .read(&mut more)
            .unwrap_or(0)
            > 0;
        if over {
            let _ = child.kill();
        }
        let status = child
            .wait()
            .map_err(|e| fail(format!("{tag} \"{shown}\": wait: {e}")))?;
        if over {
            return Err(fail(format!(
                "{tag} \"{shown}\" wrote more than {COMMAND_OUTPUT_LIMIT} bytes"
            )));
        }
        if !status.success() {
            return Err(fail(match status.code() {
                Some(code) => format!("{tag} \"{shown}\" failed, status {code}"),
                None => format!("{tag} \"{shown}\" exited abnormally ({status})"),
            }));
        }
        let file = file.map_err(|e| fail(format!("{tag} \"{shown}\": reading its output: {e}")))?;
        for bad in file.bad_lines() {
            info!("{bad}; line skipped");
        }
        Ok(Some(file))
    }

    /// Orders HostKeyAlgorithms as OpenSSH does: algorithms whose key is
    /// already recorded for the host first (so a multi-key server does not
    /// look "changed"), and certificates offered when a CA is trusted.
    pub fn tune_preferred(&self, preferred: &mut russh::Preferred) -> Result<(), HostKeyError> {
        let known = self.load(None)?;
        let configured: Vec<&str> = preferred.key.iter().map(|a| a.as_str()).collect();
        let ordered = known.order_host_key_algorithms(&self.names, &configured);
        let mut keys: Vec<russh::keys::Algorithm> = Vec::with_capacity(preferred.key.len());
        for name in &ordered {
            if let Some(a) = preferred.key.iter().find(|a| a.as_str() == name)
                && !keys.contains(a)
            {
                keys.push(a.clone());
            }
        }
        if keys.len() == preferred.key.len() {
            debug!("host key algorithms: {}", ordered.join(","));
            preferred.key = keys.into();
        }
        if known.has_cert_authority(&self.names) {
            debug!(
                "a @cert-authority is trusted for {}: offering certificate algorithms",
                self.lookup_name
            );
            preferred.host_key_certificates = preferred.key.clone();
        }
        Ok(())
    }

    /// Accepts the key or says why not.
    pub fn verify(&self, key: &PublicKeyOrCertificate) -> Result<(), HostKeyError> {
        if let Some(path) = &self.opts.revoked_host_keys {
            super::revoked::check(path, key)?;
        }
        let known = self.load(Some(key))?;
        match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => self.verify_key(&known, key),
            PublicKeyOrCertificate::Certificate(cert) => self.verify_certificate(&known, cert),
        }
    }

    fn verify_key(&self, known: &KnownHosts, key: &PublicKey) -> Result<(), HostKeyError> {
        self.check_rsa_size(key)?;
        let hk = to_host_key(key)?;
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        let algorithm = key.algorithm().as_str().to_owned();
        info!("Server host key: {algorithm} {fingerprint}");
        match known.check(&self.names, &hk) {
            Verdict::Known { at, ip, .. } => {
                debug!(
                    "Host '{}' is known and matches the {algorithm} host key.",
                    self.lookup_name
                );
                debug!("Found key in {at}");
                let user_file = self
                    .opts
                    .user_known_hosts
                    .iter()
                    .any(|p| p.display().to_string() == at.file);
                self.user_file_vouched.store(user_file, Ordering::SeqCst);
                self.warn_ip(&ip);
                if self.opts.visual_host_key {
                    self.prompter.inform(&randomart(key));
                }
                Ok(())
            }
            Verdict::Revoked { at } => Err(HostKeyError::Revoked {
                host: self.lookup_name.clone(),
                algorithm,
                fingerprint,
                file: at.file,
                line: at.line,
            }),
            Verdict::Changed {
                at, old_algorithm, ..
            } => Err(HostKeyError::Changed(Box::new(ChangedKey {
                host: self.lookup_name.clone(),
                algorithm,
                fingerprint,
                old_algorithm,
                remove_command: format!(
                    "warren keygen -f \"{}\" -R \"{}\"",
                    at.file, self.lookup_name
                ),
                file: at.file,
                line: at.line,
            }))),
            Verdict::Unknown { .. } => self.unknown(key, algorithm, fingerprint),
        }
    }

    /// RequiredRSASize, as ssh's `sshkey_check_rsa_length` before any
    /// lookup.
    fn check_rsa_size(&self, key: &PublicKey) -> Result<(), HostKeyError> {
        let required = self.opts.required_rsa_size;
        if let russh::keys::ssh_key::public::KeyData::Rsa(_) = key.key_data()
            && key_bits(key) < required
        {
            return Err(HostKeyError::RsaTooSmall {
                bits: key_bits(key),
                required,
            });
        }
        Ok(())
    }

    /// CheckHostIP: warn when the address is recorded with another key.
    fn warn_ip(&self, ip: &IpStatus) {
        if let IpStatus::Changed { at, .. } = ip {
            warn!(
                "Warning: the host key for '{}' differs from the key for the IP address '{}'\nOffending key for IP in {at}",
                self.lookup_name,
                self.names.ip().unwrap_or_default()
            );
        }
    }

    fn unknown(
        &self,
        key: &PublicKey,
        algorithm: String,
        fingerprint: String,
    ) -> Result<(), HostKeyError> {
        let refuse = |mode: &'static str| HostKeyError::Unknown {
            host: self.lookup_name.clone(),
            algorithm: algorithm.clone(),
            fingerprint: fingerprint.clone(),
            mode,
            other_keys: Vec::new(),
        };
        match self.opts.strict {
            StrictHostKeyChecking::Yes => return Err(refuse("yes")),
            StrictHostKeyChecking::No | StrictHostKeyChecking::AcceptNew => {}
            StrictHostKeyChecking::Ask => self.ask(key, &algorithm, &fingerprint, refuse("ask"))?,
        }
        if self.record(key, &algorithm) {
            self.user_file_vouched.store(true, Ordering::SeqCst);
        }
        Ok(())
    }

    fn ask(
        &self,
        key: &PublicKey,
        algorithm: &str,
        fingerprint: &str,
        cannot_ask: HostKeyError,
    ) -> Result<(), HostKeyError> {
        let ip = self
            .peer_ip
            .map(|ip| format!(" ({ip})"))
            .unwrap_or_default();
        let mut prompt = format!(
            "The authenticity of host '{}{ip}' can't be established.\n{} key fingerprint is {fingerprint}.\n",
            self.lookup_name,
            key_type_label(algorithm),
        );
        if self.opts.visual_host_key {
            prompt.push_str(&randomart(key));
            prompt.push('\n');
        }
        prompt.push_str("This key is not known by any other names.\n");
        prompt.push_str("Are you sure you want to continue connecting (yes/no/[fingerprint])? ");
        loop {
            let Some(answer) = self.prompter.ask(&prompt) else {
                return Err(cannot_ask);
            };
            let answer = answer.trim();
            if answer.eq_ignore_ascii_case("yes") || answer == fingerprint {
                return Ok(());
            }
            if answer.eq_ignore_ascii_case("no") {
                return Err(HostKeyError::Declined {
                    host: self.lookup_name.clone(),
                    algorithm: algorithm.to_owned(),
                    fingerprint: fingerprint.to_owned(),
                });
            }
            prompt = "Please type 'yes', 'no' or the fingerprint: ".into();
        }
    }

    /// Appends the key to the first user known_hosts file, hashed when
    /// HashKnownHosts says so. The key is accepted either way: like ssh,
    /// a file that cannot be written costs a message, not the connection.
    fn record(&self, key: &PublicKey, algorithm: &str) -> bool {
        let Some(path) = self.opts.user_known_hosts.first() else {
            return false;
        };
        let names = [self.lookup_name.as_str()];
        let written = to_host_key(key)
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|hk| {
                if self.opts.hash_known_hosts {
                    warren_knownhosts::format_hashed_entry(&names, &hk, rand::random::<[u8; 20]>)
                } else {
                    warren_knownhosts::format_entry(&names, &hk)
                }
                .map_err(|e| std::io::Error::other(e.to_string()))
            })
            .and_then(|entry| append_entry(path, &entry));
        match written {
            Ok(()) => {
                self.prompter.inform(&format!(
                    "Warning: Permanently added '{}' ({}) to the list of known hosts.",
                    self.lookup_name,
                    key_type_label(algorithm)
                ));
                true
            }
            Err(e) => {
                tracing::debug!("recording the host key in {}: {e}", path.display());
                self.prompter.inform(&format!(
                    "Failed to add the host to the list of known hosts ({}).",
                    path.display()
                ));
                false
            }
        }
    }

    /// A host certificate: its CA must be a trusted @cert-authority for the
    /// host, the certificate valid now and naming the host. Otherwise the
    /// plain key inside is checked as a host key, as OpenSSH does.
    fn verify_certificate(
        &self,
        known: &KnownHosts,
        cert: &russh::keys::Certificate,
    ) -> Result<(), HostKeyError> {
        let blob = cert.to_bytes().unwrap_or_default();
        let plain = PublicKey::from(cert.public_key().clone());
        let Ok(hk) = HostKey::from_blob(blob) else {
            return self.verify_key(known, &plain);
        };
        match known.check(&self.names, &hk) {
            Verdict::Revoked { at } => Err(HostKeyError::Revoked {
                host: self.lookup_name.clone(),
                algorithm: hk.algorithm().to_owned(),
                fingerprint: plain.fingerprint(HashAlg::Sha256).to_string(),
                file: at.file,
                line: at.line,
            }),
            Verdict::Known { .. } => match self.certificate_problem(cert) {
                None => Ok(()),
                Some(reason) => {
                    warn!(
                        "Host certificate for {} not accepted: {reason}; checking its key instead",
                        self.lookup_name
                    );
                    self.verify_key(known, &plain)
                }
            },
            _ => self.verify_key(known, &plain),
        }
    }

    fn certificate_problem(&self, cert: &russh::keys::Certificate) -> Option<String> {
        if cert.cert_type() != russh::keys::ssh_key::certificate::CertType::Host {
            return Some("not a host certificate".into());
        }
        let ca = PublicKey::from(cert.signature_key().clone());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if let Err(e) = cert.validate_at(now, [&ca.fingerprint(HashAlg::Sha256)]) {
            return Some(format!("invalid: {e}"));
        }
        // CASignatureAlgorithms (ssh's sshkey_check_cert_sigtype): by
        // default a CA's SHA-1 RSA signature is not accepted.
        let signed_with = cert.signature().algorithm();
        let allowed = &self.opts.ca_signature_algorithms;
        if !allowed.is_empty() && !allowed.iter().any(|a| a == signed_with.as_str()) {
            return Some(format!(
                "its CA signature algorithm {} is not in CASignatureAlgorithms",
                signed_with.as_str()
            ));
        }
        let principals = cert.valid_principals();
        let wanted = self.opts.host_key_alias.as_deref().unwrap_or(&self.host);
        if !principals.is_empty() && !principals.iter().any(|p| p == wanted) {
            // The principals are the server's text: escaped for the log.
            let principals: Vec<_> = principals.iter().map(|p| escape_str(p)).collect();
            return Some(format!(
                "principals [{}] do not include {wanted}",
                principals.join(", ")
            ));
        }
        // OpenSSH's sshkey_cert_check_host: no critical option is defined
        // for host certificates, so any one makes the certificate invalid.
        if !cert.critical_options().is_empty() {
            return Some("Certificate contains unsupported critical options".into());
        }
        info!(
            "Host certificate signed by CA {} accepted",
            ca.fingerprint(HashAlg::Sha256)
        );
        None
    }
}

/// One known_hosts file, read as bytes line by line (as OpenSSH does), so
/// memory holds the lines naming this host, not the file; a bad line is
/// skipped and named at -v, never the reason the whole file is ignored.
fn read_known_hosts(path: &Path, names: &HostNames) -> Option<KnownHostsFile> {
    let label = path.display().to_string();
    let file = std::fs::File::open(path)
        .and_then(|f| KnownHostsFile::read(&label, BufReader::new(f), |e| names.wants(e)));
    match file {
        Ok(file) => {
            for bad in file.bad_lines() {
                info!("{bad}; line skipped");
            }
            if file.more_bad_lines() > 0 {
                info!("{label}: {} more bad lines skipped", file.more_bad_lines());
            }
            Some(file)
        }
        Err(e) => {
            debug!(path = %path.display(), error = %e, "known_hosts not read");
            None
        }
    }
}

/// The most output read from KnownHostsCommand: far more than any host's
/// keys, and a bound on what a runaway command costs.
const COMMAND_OUTPUT_LIMIT: u64 = 4 * 1024 * 1024;

/// `%t`, `%f` and `%K` for the key the server presented: its SSH name, the
/// fingerprint of its plain key, and its base64 blob (a certificate's
/// whole blob), as ssh fills them.
fn presented_key(key: &PublicKeyOrCertificate) -> Result<(String, String, String), HostKeyError> {
    let malformed = |reason: String| HostKeyError::Malformed { reason };
    let (openssh, plain) = match key {
        PublicKeyOrCertificate::PublicKey { key, .. } => (key.to_openssh(), key.clone()),
        PublicKeyOrCertificate::Certificate(cert) => (
            cert.to_openssh(),
            PublicKey::from(cert.public_key().clone()),
        ),
    };
    let openssh = openssh.map_err(|e| malformed(e.to_string()))?;
    let mut fields = openssh.split_whitespace();
    let (Some(name), Some(base64)) = (fields.next(), fields.next()) else {
        return Err(malformed("no key text".into()));
    };
    let fingerprint = plain.fingerprint(HashAlg::Sha256).to_string();
    Ok((name.to_owned(), fingerprint, base64.to_owned()))
}

fn to_host_key(key: &PublicKey) -> Result<HostKey, HostKeyError> {
    let malformed = |reason: String| HostKeyError::Malformed { reason };
    let blob = key.to_bytes().map_err(|e| malformed(e.to_string()))?;
    HostKey::from_blob(blob).map_err(|e| malformed(e.to_string()))
}

/// "ED25519", "ECDSA", "RSA" as OpenSSH prints key types.
fn key_type_label(algorithm: &str) -> &'static str {
    match algorithm {
        a if a.contains("ed25519") => "ED25519",
        a if a.contains("ecdsa") => "ECDSA",
        a if a.contains("rsa") => "RSA",
        _ => "UNKNOWN",
    }
}

fn randomart(key: &PublicKey) -> String {
    let header = format!(
        "{} {}",
        key_type_label(key.algorithm().as_str()),
        key_bits(key)
    );
    key.fingerprint(HashAlg::Sha256).to_randomart(&header)
}

fn key_bits(key: &PublicKey) -> u32 {
    use russh::keys::ssh_key::public::KeyData;
    match key.key_data() {
        KeyData::Ed25519(_) => 256,
        KeyData::Ecdsa(e) => match e.curve() {
            russh::keys::EcdsaCurve::NistP256 => 256,
            russh::keys::EcdsaCurve::NistP384 => 384,
            russh::keys::EcdsaCurve::NistP521 => 521,
        },
        KeyData::Rsa(r) => r.key_size(),
        _ => 0,
    }
}

/// The last byte of a file (without reading the rest of it).
fn last_byte(path: &Path) -> Option<u8> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let mut f = std::fs::File::open(path).ok()?;
    f.seek(SeekFrom::End(-1)).ok()?;
    let mut byte = [0u8];
    f.read_exact(&mut byte).ok()?;
    Some(byte[0])
}

/// Appends an entry so it never fuses with an unterminated last line;
/// creates the directory (0700) and file (0600) if needed.
fn append_entry(path: &Path, entry: &str) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let text = warren_knownhosts::append_text(last_byte(path), entry);
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    // /dev/null (a common UserKnownHostsFile) cannot be synced.
    if f.metadata()?.is_file() {
        f.sync_all()?;
    }
    Ok(())
}
