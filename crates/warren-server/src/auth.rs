//! Deciding whether a verified key or certificate may log in, and with
//! which permissions: the authorized_keys line that matched, its `from=`
//! and `expiry-time=`, and for certificates the `cert-authority` line, the
//! principals, the critical options and the permit-* extensions.
//!
//! Design choice: pure functions of (entries, key, client address, now),
//! so every refusal reason is tested without a connection; the handler
//! only logs what they return.

use std::net::IpAddr;

use russh::keys::ssh_key::certificate::CertType;
use russh::keys::{Certificate, PublicKey};

use crate::authorized_keys::{Entry, HostPort, KeyOptions, fingerprint, from_permits};

/// What an authenticated connection may do.
#[derive(Debug, Clone)]
pub struct Permissions {
    pub pty: bool,
    pub port_forwarding: bool,
    pub agent_forwarding: bool,
    /// Runs instead of whatever the client asks for.
    pub command: Option<String>,
    pub environment: Vec<(String, String)>,
    pub permit_open: Vec<HostPort>,
    pub permit_listen: Vec<HostPort>,
    /// What the log calls the key: type and fingerprint, plus the line.
    pub described: String,
}

impl Permissions {
    fn from_options(o: &KeyOptions, described: String) -> Permissions {
        Permissions {
            pty: o.pty,
            port_forwarding: o.port_forwarding,
            agent_forwarding: o.agent_forwarding,
            command: o.command.clone(),
            environment: o.environment.clone(),
            permit_open: o.permit_open.clone(),
            permit_listen: o.permit_listen.clone(),
            described,
        }
    }
}

/// Why a key may not log in.
pub type Refusal = String;

/// A plain public key: the first line holding it whose `from=` and
/// `expiry-time=` allow this login.
pub fn authorize_key(
    entries: &[Entry],
    key: &PublicKey,
    client: IpAddr,
    now: i64,
) -> Result<Permissions, Refusal> {
    let mut refusal = format!("{} is not in authorized_keys", describe(key));
    for e in entries
        .iter()
        .filter(|e| !e.options.cert_authority && e.key.key_data() == key.key_data())
    {
        match line_allows(e, client, now) {
            Ok(()) => {
                let described = format!("{} (authorized_keys line {})", describe(key), e.line);
                return Ok(Permissions::from_options(&e.options, described));
            }
            Err(r) => refusal = format!("{}: {r}", describe(key)),
        }
    }
    Err(refusal)
}

/// Whether any line could accept a certificate (so a key offered without
/// a signature yet must not be refused before the certificate is seen).
pub fn has_cert_authority(entries: &[Entry]) -> bool {
    entries.iter().any(|e| e.options.cert_authority)
}

/// A user certificate (its signature and validity period already checked
/// by russh) signed by a `cert-authority` key.
pub fn authorize_certificate(
    entries: &[Entry],
    cert: &Certificate,
    user: &str,
    client: IpAddr,
    now: i64,
) -> Result<Permissions, Refusal> {
    let ca = PublicKey::new(cert.signature_key().clone(), "");
    let name = format!(
        "certificate {:?} signed by {}",
        cert.key_id(),
        describe(&ca)
    );
    if cert.cert_type() != CertType::User {
        return Err(format!("{name}: not a user certificate"));
    }
    let mut refusal = format!("{name}: the CA is not a cert-authority in authorized_keys");
    for e in entries
        .iter()
        .filter(|e| e.options.cert_authority && e.key.key_data() == cert.signature_key())
    {
        let checked = line_allows(e, client, now)
            .and_then(|()| principal_allowed(e, cert, user))
            .and_then(|()| critical_options_allow(cert, client));
        match checked {
            Ok(()) => {
                let described = format!("{name} (authorized_keys line {})", e.line);
                let mut p = Permissions::from_options(&e.options, described);
                apply_extensions(&mut p, cert);
                return Ok(p);
            }
            Err(r) => refusal = format!("{name}: {r}"),
        }
    }
    Err(refusal)
}

fn line_allows(e: &Entry, client: IpAddr, now: i64) -> Result<(), Refusal> {
    if let Some(expiry) = e.options.expiry
        && now >= expiry
    {
        return Err(format!(
            "authorized_keys line {}: the key expired (expiry-time)",
            e.line
        ));
    }
    if let Some(from) = &e.options.from
        && !from_permits(from, client)
    {
        return Err(format!(
            "authorized_keys line {}: {client} does not match from=\"{from}\"",
            e.line
        ));
    }
    Ok(())
}

/// With `principals=` one of those must be in the certificate; without,
/// the login name must be.
fn principal_allowed(e: &Entry, cert: &Certificate, user: &str) -> Result<(), Refusal> {
    let principals = cert.valid_principals();
    if principals.is_empty() {
        return Err("the certificate names no principals".into());
    }
    let ok = match &e.options.principals {
        Some(list) => principals
            .iter()
            .any(|p| list.split(',').any(|allowed| allowed == p)),
        None => principals.iter().any(|p| p == user),
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "no principal of {principals:?} is allowed for user {user}"
        ))
    }
}

fn critical_options_allow(cert: &Certificate, client: IpAddr) -> Result<(), Refusal> {
    for (name, value) in cert.critical_options().iter() {
        match name.as_str() {
            "force-command" => {}
            "source-address" => {
                let allowed = value.split(',').any(|cidr| {
                    if cidr.contains('/') {
                        from_permits(cidr, client)
                    } else {
                        cidr.parse::<IpAddr>().is_ok_and(|a| a == client)
                    }
                });
                if !allowed {
                    return Err(format!("{client} is not in source-address {value}"));
                }
            }
            other => return Err(format!("unsupported critical option {other}")),
        }
    }
    Ok(())
}

/// Certificates grant only what their extensions permit; a forced command
/// in the certificate wins over the line's.
fn apply_extensions(p: &mut Permissions, cert: &Certificate) {
    let ext = cert.extensions();
    p.pty &= ext.contains_key("permit-pty");
    p.port_forwarding &= ext.contains_key("permit-port-forwarding");
    p.agent_forwarding &= ext.contains_key("permit-agent-forwarding");
    if let Some(cmd) = cert.critical_options().get("force-command") {
        p.command = Some(cmd.clone());
    }
}

/// `ED25519 SHA256:...`, as sshd logs a key.
pub fn describe(key: &PublicKey) -> String {
    let kind = key
        .algorithm()
        .as_str()
        .trim_start_matches("ssh-")
        .to_ascii_uppercase();
    format!("{kind} {}", fingerprint(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authorized_keys::parse;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINx5wj9wm10NkrCYOmDhDHRsUFoPaDuCfohFXKHSJx7p";
    const OTHER: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINp4V2EwyJuBCxnqtulklcp2klg5tNUF7T0k2Kyud49k";

    fn lo() -> IpAddr {
        "127.0.0.1".parse().unwrap()
    }

    #[test]
    fn key_lines_decide() {
        let key = PublicKey::from_openssh(KEY).unwrap();
        let other = PublicKey::from_openssh(OTHER).unwrap();
        let cases: &[(&str, &PublicKey, Result<(), &str>)] = &[
            (KEY, &key, Ok(())),
            (KEY, &other, Err("not in authorized_keys")),
            ("expiry-time=\"20000101Z\" KEY", &key, Err("expired")),
            ("expiry-time=\"29991231Z\" KEY", &key, Ok(())),
            ("from=\"10.0.0.0/8\" KEY", &key, Err("does not match from")),
            ("from=\"127.0.0.1\" KEY", &key, Ok(())),
            ("cert-authority KEY", &key, Err("not in authorized_keys")),
            // A refused line does not hide a later one that allows.
            ("from=\"10.*\" KEY\nKEY", &key, Ok(())),
        ];
        for (text, k, want) in cases {
            let text = text.replace("KEY", KEY);
            let (entries, errors) = parse(&text);
            assert!(errors.is_empty(), "{errors:?}");
            let got = authorize_key(&entries, k, lo(), chrono::Utc::now().timestamp());
            match (got, want) {
                (Ok(_), Ok(())) => {}
                (Err(r), Err(w)) => assert!(r.contains(w), "{text}: {r}"),
                (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn options_become_permissions() {
        let key = PublicKey::from_openssh(KEY).unwrap();
        let (entries, _) = parse(format!("restrict,command=\"id\" {KEY}"));
        let p = authorize_key(&entries, &key, lo(), 0).unwrap();
        assert!(!p.pty && !p.port_forwarding && !p.agent_forwarding);
        assert_eq!(p.command.as_deref(), Some("id"));
        assert!(p.described.contains("line 1"), "{}", p.described);
    }
}
