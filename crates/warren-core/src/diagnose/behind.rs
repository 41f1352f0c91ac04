//! Problems behind a login that succeeded anyway: keys the server refused
//! before one got in, key files skipped (others can read them, encrypted
//! with nothing to unlock them, legacy encrypted PEM), certificates that
//! expired or name another principal. Each is a warning with its fix; the
//! login itself stays ok.
//!
//! Design choice: these come from what the authentication run noted on
//! its way (the same notes a denial is explained from), so a login that
//! works today but fails tomorrow (one more agent key, a server with a
//! lower MaxAuthTries) is named before it fails.

use warren_wire::escape_str;

use super::denial::{self, Explanation};
use super::{Check, shell_quote};
use crate::session::DenialNotes;

/// What the login run reported: what was accepted, what came before it.
pub struct Login<'a> {
    pub user: &'a str,
    pub accepted: &'a str,
    pub before: &'a [String],
    /// Public keys offered, the accepted one included.
    pub keys_offered: usize,
    pub notes: &'a DenialNotes,
}

/// One warning per kind of problem noticed; none when the login was clean.
pub fn checks(name: &str, destination: &str, login: &Login<'_>) -> Vec<Check> {
    let accepted = escape_str(login.accepted).into_owned();
    let notes = login.notes;
    let mut out = Vec::new();
    let only = |n: DenialNotes| denial::explain_notes(&n, login.user, login.before, destination);
    let warn = |what: &str, x: Explanation| {
        Check::warn(
            format!("{name} auth {what}"),
            format!("logged in with {accepted}, but {}", x.said.join("; ")),
        )
        .fix_opt((!x.first.is_empty()).then(|| x.first.join("; ")))
    };
    if !notes.certificates.is_empty() {
        let x = only(DenialNotes {
            certificates: notes.certificates.clone(),
            ..DenialNotes::default()
        });
        out.push(warn("certificate", x));
    }
    if !notes.loose_keys.is_empty() {
        out.push(loose(name, &accepted, &notes.loose_keys));
    }
    if !notes.locked_keys.is_empty() {
        let x = only(DenialNotes {
            locked_keys: notes.locked_keys.clone(),
            ..DenialNotes::default()
        });
        out.push(warn("encrypted key", x));
    }
    if !notes.pem_keys.is_empty() {
        let x = only(DenialNotes {
            pem_keys: notes.pem_keys.clone(),
            ..DenialNotes::default()
        });
        out.push(warn("encrypted PEM key", x));
    }
    if let Some(check) = refused(name, &accepted, login) {
        out.push(check);
    }
    out
}

/// Key files skipped because others can read them.
fn loose(name: &str, accepted: &str, keys: &[String]) -> Check {
    let shown: Vec<String> = keys.iter().map(|k| escape_str(k).into_owned()).collect();
    let quoted: Vec<String> = keys
        .iter()
        .map(|k| escape_str(&shell_quote(k)).into_owned())
        .collect();
    Check::warn(
        format!("{name} auth key modes"),
        format!(
            "logged in with {accepted}, but {} was skipped: others can read it, and ssh refuses such a key \
             (UNPROTECTED PRIVATE KEY FILE)",
            shown.join(", ")
        ),
    )
    .fix(format!("chmod 600 {}", quoted.join(" ")))
}

/// Keys the server refused before it accepted one: each counts against
/// its MaxAuthTries.
fn refused(name: &str, accepted: &str, login: &Login<'_>) -> Option<Check> {
    let by_key = login.accepted.starts_with("publickey");
    let count = login.keys_offered.saturating_sub(usize::from(by_key));
    if count == 0 {
        return None;
    }
    // The keys that reached the server: not those skipped here (a
    // label with a reason after the path).
    let offered: Vec<String> = login
        .before
        .iter()
        .filter(|t| t.starts_with("publickey (") && (t.contains("(agent: ") || !t.contains(": ")))
        .map(|t| escape_str(t).into_owned())
        .collect();
    let from_agent = login.before.iter().any(|t| t.contains("(agent: "));
    let mut summary = format!(
        "logged in with {accepted}, but the server refused {count} key(s) first ({}): each one counts \
         against its MaxAuthTries (6 by default)",
        offered.join(", ")
    );
    if from_agent {
        summary.push_str(
            "; the agent offers all its keys first, so with a few more keys in it, or a server with a \
             lower MaxAuthTries, this login fails with \"Too many authentication failures\"",
        );
    }
    let key = accepted_file(login.accepted);
    let only = match &key {
        Some(path) => {
            let q = escape_str(&shell_quote(path)).into_owned();
            format!(
                "offer only the key that works: `IdentitiesOnly yes` and `IdentityFile {q}` for this host \
                 in ssh_config (or `-o IdentitiesOnly=yes -i {q}`)"
            )
        }
        None => "offer only the key that works: `IdentitiesOnly yes` and an `IdentityFile` naming that key \
                 (its .pub is enough for a key the agent holds) for this host in ssh_config (or -i)"
            .to_owned(),
    };
    Some(
        Check::warn(format!("{name} auth refused keys"), summary).fix(format!(
            "{only}; or add the refused keys' .pub to the server's authorized_keys if they are meant to work"
        )),
    )
}

/// The key file of an accepted `publickey (PATH)`; `None` for an agent
/// key or another method.
fn accepted_file(accepted: &str) -> Option<&str> {
    let inner = accepted.strip_prefix("publickey (")?.strip_suffix(')')?;
    (!inner.starts_with("agent: ")).then_some(inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::Status;

    fn login<'a>(
        accepted: &'a str,
        before: &'a [String],
        keys_offered: usize,
        notes: &'a DenialNotes,
    ) -> Login<'a> {
        Login {
            user: "bob",
            accepted,
            before,
            keys_offered,
            notes,
        }
    }

    #[test]
    fn a_clean_login_has_nothing_to_say() {
        let notes = DenialNotes::default();
        assert!(checks("h", "h", &login("publickey (/k)", &[], 1, &notes)).is_empty());
        assert!(checks("h", "h", &login("password", &[], 0, &notes)).is_empty());
    }

    #[test]
    fn refused_agent_keys_name_max_auth_tries() {
        let notes = DenialNotes::default();
        let before = vec![
            "publickey (agent: ssh-ed25519 SHA256:a)".to_owned(),
            "publickey (agent: ssh-ed25519 SHA256:b)".to_owned(),
        ];
        let got = checks(
            "h",
            "h",
            &login("publickey (/home/b/id x)", &before, 3, &notes),
        );
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].status, Status::Warn);
        assert_eq!(got[0].name, "h auth refused keys");
        assert!(got[0].summary.contains("refused 2 key(s)"), "{got:?}");
        assert!(
            got[0].summary.contains("Too many authentication failures"),
            "{got:?}"
        );
        let fix = got[0].fix.as_deref().unwrap_or("");
        assert!(fix.contains("`IdentityFile '/home/b/id x'`"), "{fix}");
    }

    #[test]
    fn skipped_files_and_certificates_each_warn() {
        let notes = DenialNotes {
            loose_keys: vec!["/k1".into()],
            certificates: vec!["the certificate of /k2 expired 2020-01-02 00:00 UTC".into()],
            pem_keys: vec!["/k3".into()],
            ..DenialNotes::default()
        };
        let before = vec![
            "publickey (/k1: refused, permissions 0644 too open)".to_owned(),
            "publickey (/k3: encrypted PEM key)".to_owned(),
        ];
        let got = checks("h", "h", &login("publickey (/k4)", &before, 1, &notes));
        let names: Vec<&str> = got.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "h auth certificate",
                "h auth key modes",
                "h auth encrypted PEM key"
            ]
        );
        assert!(got.iter().all(|c| c.status == Status::Warn));
        assert_eq!(got[1].fix.as_deref(), Some("chmod 600 /k1"));
        assert!(
            got[0].fix.as_deref().unwrap_or("").contains("-V +52w"),
            "{got:?}"
        );
        assert_eq!(
            got[2].fix.as_deref(),
            Some(
                "encrypted PEM key: load it with `warren add /k3` (or ssh-add) or convert it: `ssh-keygen -p -f /k3`"
            )
        );
    }
}
