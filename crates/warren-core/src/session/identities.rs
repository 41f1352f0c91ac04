//! The public-key identities one login offers, in ssh's order
//! (sshconnect2.c's `pubkey_prepare`): the agent's identities first, in
//! the agent's order (with IdentitiesOnly, only those an IdentityFile or
//! certificate file names), then the files' identities the agent does not
//! hold: each IdentityFile, its `KEY-cert.pub` right after it, then each
//! CertificateFile.
//!
//! Design choice: a certificate is an identity of its own, signed by
//! whichever identity holds the private half of the key it certifies (the
//! agent, else that key's file); a certificate whose key nothing here
//! holds is not offered, so it is never sent with a key it does not
//! certify. An IdentityFile is known by its public half (`KEY.pub`, a
//! public key file named directly, or the clear part of the private key),
//! so a key whose private half is only in the agent is used through it.

use std::path::{Path, PathBuf};

use russh::keys::agent::AgentIdentity;
use russh::keys::{Algorithm, Certificate, HashAlg, PublicKey};

use crate::keys::{read_key_text, read_public_for};

/// What an identity shows the server.
#[derive(Debug, Clone)]
pub(super) enum Shown {
    Key(PublicKey),
    Cert(Box<Certificate>),
}

impl Shown {
    fn of(id: &AgentIdentity) -> Shown {
        match id {
            AgentIdentity::PublicKey { key, .. } => Shown::Key(key.clone()),
            AgentIdentity::Certificate { certificate, .. } => {
                Shown::Cert(Box::new(certificate.clone()))
            }
        }
    }

    /// Whether both show the same thing (a key and its certificate differ).
    fn same(&self, other: &Shown) -> bool {
        match (self, other) {
            (Shown::Key(a), Shown::Key(b)) => a.key_data() == b.key_data(),
            (Shown::Cert(a), Shown::Cert(b)) => {
                a.public_key() == b.public_key() && a.signature() == b.signature()
            }
            _ => false,
        }
    }

    /// `ED25519 SHA256:...`, `RSA-CERT SHA256:...` (ssh's `-v` words).
    pub(super) fn describe(&self) -> String {
        let (data, cert) = match self {
            Shown::Key(k) => (k.key_data().clone(), ""),
            Shown::Cert(c) => (c.public_key().clone(), "-CERT"),
        };
        let public = PublicKey::from(data);
        format!(
            "{}{cert} {}",
            crate::keys::type_label(public.key_data()),
            public.fingerprint(HashAlg::Sha256)
        )
    }
}

/// One identity to offer.
#[derive(Debug)]
pub(super) struct Identity {
    /// `None`: an IdentityFile whose public half cannot be read without
    /// its private half (a legacy PEM key without `.pub`).
    pub shown: Option<Shown>,
    /// The file that named it: an IdentityFile, the `KEY-cert.pub` beside
    /// one, or a CertificateFile. `None` for the agent's own identities.
    pub file: Option<PathBuf>,
    /// The key file that signs for it: the IdentityFile itself, or the key
    /// a `KEY-cert.pub` sits beside.
    pub key_file: Option<PathBuf>,
    /// The agent's identity, when the agent holds exactly this one.
    pub agent: Option<AgentIdentity>,
}

impl Identity {
    /// How `-v` and the failure message name it.
    pub(super) fn name(&self) -> String {
        match (&self.file, &self.agent) {
            (Some(f), _) => f.display().to_string(),
            (None, Some(AgentIdentity::PublicKey { comment, .. }))
            | (None, Some(AgentIdentity::Certificate { comment, .. })) => {
                warren_wire::escape_str(comment).into_owned()
            }
            (None, None) => String::new(),
        }
    }
}

/// Who signs for a certificate.
#[derive(Debug)]
pub(super) enum CertSigner<'a> {
    /// The agent, with the plain key the certificate certifies.
    AgentKey(&'a PublicKey),
    /// The agent, which holds the certificate itself.
    AgentCert,
    /// This private key file (checked against the certificate once read).
    File(&'a Path),
}

/// The identities the files name: each IdentityFile, its `KEY-cert.pub`,
/// then each CertificateFile (host certificates and unreadable files are
/// skipped, as ssh does).
pub(super) fn from_files(
    identity_files: &[PathBuf],
    certificate_files: &[PathBuf],
) -> Vec<Identity> {
    let mut out = Vec::new();
    for path in identity_files {
        out.push(Identity {
            shown: read_public_for(path).ok().map(Shown::Key),
            file: Some(path.clone()),
            key_file: Some(path.clone()),
            agent: None,
        });
        let beside = crate::keys::with_suffix(path, "-cert.pub");
        if let Some(cert) = user_certificate(&beside) {
            out.push(Identity {
                shown: Some(Shown::Cert(Box::new(cert))),
                file: Some(beside),
                key_file: Some(path.clone()),
                agent: None,
            });
        }
    }
    for path in certificate_files {
        match user_certificate(path) {
            Some(cert) => out.push(Identity {
                shown: Some(Shown::Cert(Box::new(cert))),
                file: Some(path.clone()),
                key_file: None,
                agent: None,
            }),
            None => tracing::debug!(
                "CertificateFile {}: not a user certificate, skipped",
                path.display()
            ),
        }
    }
    out
}

/// A user certificate read from `path`, if it holds one.
fn user_certificate(path: &Path) -> Option<Certificate> {
    let text = read_key_text(path).ok()?;
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))?;
    let cert = Certificate::from_openssh(line).ok()?;
    cert.cert_type().is_user().then_some(cert)
}

/// The agent's identities merged in: each one a file names takes that
/// file's place at the front (it is then signed by the agent); the others
/// follow unless `identities_only`. The files' remaining identities come
/// last.
pub(super) fn merge_agent(
    mut files: Vec<Identity>,
    agent: Vec<AgentIdentity>,
    identities_only: bool,
) -> Vec<Identity> {
    let mut out = Vec::with_capacity(files.len() + agent.len());
    for id in agent {
        let shown = Shown::of(&id);
        let named = files
            .iter()
            .position(|f| f.shown.as_ref().is_some_and(|s| s.same(&shown)));
        match named {
            Some(i) => {
                let mut file = files.remove(i);
                file.agent = Some(id);
                out.push(file);
            }
            None if !identities_only => out.push(Identity {
                shown: Some(shown),
                file: None,
                key_file: None,
                agent: Some(id),
            }),
            None => {}
        }
    }
    out.extend(files);
    out
}

/// Who signs for `cert` (the identity `this` in `all`): a held plain key
/// it certifies (the agent's before a file's, in offering order), else
/// the agent holding the certificate itself, else the key file it sits
/// beside. `None`: nothing here holds its key.
pub(super) fn signer_for<'a>(
    all: &'a [Identity],
    this: &'a Identity,
    cert: &Certificate,
) -> Option<CertSigner<'a>> {
    let holders = all.iter().filter_map(|id| match &id.shown {
        Some(Shown::Key(k)) if k.key_data() == cert.public_key() => Some((id, k)),
        _ => None,
    });
    let mut file = None;
    for (id, key) in holders {
        if id.agent.is_some() {
            return Some(CertSigner::AgentKey(key));
        }
        if file.is_none() {
            file = id.key_file.as_deref();
        }
    }
    if let Some(path) = file {
        return Some(CertSigner::File(path));
    }
    if this.agent.is_some() {
        return Some(CertSigner::AgentCert);
    }
    this.key_file.as_deref().map(CertSigner::File)
}

/// The hash an identity of `algorithm` (a certificate if `cert`) signs
/// with, as ssh's `key_sig_algorithm` picks it: an RSA key, when the
/// server sent server-sig-algs, takes the first RSA signature algorithm in
/// `accepted` (PubkeyAcceptedAlgorithms; empty: rsa-sha2-512, then -256)
/// that the server names; any other key (and RSA without server-sig-algs,
/// meaning SHA-1 `ssh-rsa`) signs with its own algorithm if `accepted`
/// allows it. `Some(None)`: its own algorithm; `None`: no mutual one.
pub(super) fn signature_hash(
    algorithm: &Algorithm,
    cert: bool,
    accepted: &[String],
    server: Option<&[Algorithm]>,
) -> Option<Option<HashAlg>> {
    let is_rsa = matches!(algorithm, Algorithm::Rsa { .. });
    let name = |hash: Option<HashAlg>| {
        let a = if is_rsa {
            Algorithm::Rsa { hash }
        } else {
            algorithm.clone()
        };
        if cert {
            a.to_certificate_type()
        } else {
            a.to_string()
        }
    };
    match server {
        Some(server) if is_rsa => {
            let rsa = [Some(HashAlg::Sha512), Some(HashAlg::Sha256), None];
            let order: Vec<Option<HashAlg>> = if accepted.is_empty() {
                rsa[..2].to_vec()
            } else {
                accepted
                    .iter()
                    .filter_map(|a| rsa.into_iter().find(|h| name(*h) == *a))
                    .collect()
            };
            order
                .into_iter()
                .find(|h| server.contains(&Algorithm::Rsa { hash: *h }))
        }
        _ => {
            let own = name(None);
            (accepted.is_empty() || accepted.contains(&own)).then_some(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeyType, generate};

    fn key() -> PublicKey {
        generate(KeyType::Ed25519, None, "c")
            .expect("key")
            .public_key()
            .clone()
    }

    fn file_key(name: &str, k: &PublicKey) -> Identity {
        Identity {
            shown: Some(Shown::Key(k.clone())),
            file: Some(PathBuf::from(name)),
            key_file: Some(PathBuf::from(name)),
            agent: None,
        }
    }

    fn agent_key(k: &PublicKey) -> AgentIdentity {
        AgentIdentity::PublicKey {
            key: k.clone(),
            comment: "in-agent".into(),
        }
    }

    fn names(ids: &[Identity]) -> Vec<(String, bool)> {
        ids.iter().map(|i| (i.name(), i.agent.is_some())).collect()
    }

    #[test]
    fn signature_hash_as_ssh_picks_it() {
        use russh::keys::ssh_key::EcdsaCurve;
        let rsa = Algorithm::Rsa { hash: None };
        let ed = Algorithm::Ed25519;
        let ec = Algorithm::Ecdsa {
            curve: EcdsaCurve::NistP256,
        };
        let list = |s: &str| s.split(',').map(str::to_owned).collect::<Vec<_>>();
        let server = [
            Algorithm::Ed25519,
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha256),
            },
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha512),
            },
        ];
        let (s512, s256) = (Some(HashAlg::Sha512), Some(HashAlg::Sha256));
        let default = list(
            "ssh-ed25519-cert-v01@openssh.com,rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-256-cert-v01@openssh.com,ssh-ed25519,rsa-sha2-512,rsa-sha2-256",
        );
        type Case<'a> = (
            &'a Algorithm,
            bool,
            Vec<String>,
            Option<&'a [Algorithm]>,
            Option<Option<HashAlg>>,
        );
        let cases: [Case<'_>; 10] = [
            (&rsa, false, default.clone(), Some(&server), Some(s512)),
            (&rsa, true, default.clone(), Some(&server), Some(s512)),
            (&rsa, false, list("rsa-sha2-256"), Some(&server), Some(s256)),
            (
                &rsa,
                true,
                list("rsa-sha2-256-cert-v01@openssh.com"),
                Some(&server),
                Some(s256),
            ),
            // The certificate's own name must be listed, not the key's.
            (&rsa, true, list("rsa-sha2-256"), Some(&server), None),
            (&rsa, false, list("rsa-sha2-512"), Some(&server[..2]), None),
            // No server-sig-algs: RSA means ssh-rsa, which must be allowed.
            (&rsa, false, default.clone(), None, None),
            (&rsa, false, list("ssh-rsa"), None, Some(None)),
            (&ed, false, default.clone(), Some(&server), Some(None)),
            (&ec, false, default.clone(), Some(&server), None),
        ];
        for (alg, cert, accepted, server, want) in cases {
            assert_eq!(
                signature_hash(alg, cert, &accepted, server),
                want,
                "{alg:?} cert={cert} {accepted:?}"
            );
        }
        assert_eq!(signature_hash(&rsa, false, &[], Some(&server)), Some(s512));
    }

    #[test]
    fn agent_keys_come_first_and_take_the_files_they_match() {
        let (a, b, c) = (key(), key(), key());
        let files = vec![file_key("a", &a), file_key("b", &b)];
        let agent = vec![agent_key(&c), agent_key(&b)];
        let merged = merge_agent(files, agent.clone(), false);
        assert_eq!(
            names(&merged),
            [
                ("in-agent".to_owned(), true),
                ("b".to_owned(), true),
                ("a".to_owned(), false)
            ]
        );
        let files = vec![file_key("a", &a), file_key("b", &b)];
        let only = merge_agent(files, agent, true);
        assert_eq!(
            names(&only),
            [("b".to_owned(), true), ("a".to_owned(), false)]
        );
    }
}
