//! Why a login was denied, beyond the server's "Permission denied": an
//! encrypted key nothing could unlock, a certificate its own fields rule
//! out, a key type the server may not accept; each with its fix.
//!
//! Design choice: the server never says why it refused a key (and OpenSSH
//! 9.2 advertises every signature algorithm it knows in server-sig-algs,
//! whatever PubkeyAcceptedAlgorithms allows), so what is certain here is
//! what was read locally: the key file's header, the certificate's
//! fields. A refused key type is named as a possibility, after the
//! checks that are certain.

use warren_wire::escape_str;

use crate::session::{AuthError, DenialNotes, SessionError};

/// What the auth check adds to its summary, and the fixes that come
/// before (`first`) or after (`then`) the general advice.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Explanation {
    pub said: Vec<String>,
    pub first: Vec<String>,
    pub then: Vec<String>,
    /// The general advice ("is the key in authorized_keys") does not
    /// apply: a certain cause was found.
    pub settled: bool,
}

/// The explanation of `e` for a login to `destination`.
pub fn explain(e: &SessionError, destination: &str) -> Explanation {
    let SessionError::Auth(AuthError::Denied {
        user, tried, notes, ..
    }) = e
    else {
        return Explanation::default();
    };
    explain_notes(notes, user, tried, destination)
}

/// The explanation of what was noticed about the credentials of `user`
/// (`tried` as the denial lists it), for a login to `destination`.
pub fn explain_notes(
    notes: &DenialNotes,
    user: &str,
    tried: &[String],
    destination: &str,
) -> Explanation {
    let mut out = Explanation::default();
    certificates(notes, user, &mut out);
    locked(notes, tried.is_empty(), destination, &mut out);
    pem(notes, tried, &mut out);
    key_types(notes, &mut out);
    out
}

/// What to do about an encrypted legacy PEM key `path` (shell-quoted).
pub fn pem_fix(path: &str) -> String {
    let quoted = escape_str(&super::shell_quote(path)).into_owned();
    format!(
        "encrypted PEM key: load it with `warren add {quoted}` (or ssh-add) or convert it: \
         `ssh-keygen -p -f {quoted}`"
    )
}

fn pem(notes: &DenialNotes, tried: &[String], out: &mut Explanation) {
    if notes.pem_keys.is_empty() {
        return;
    }
    let keys: Vec<String> = notes
        .pem_keys
        .iter()
        .map(|k| escape_str(k).into_owned())
        .collect();
    out.said.push(format!(
        "{} is an encrypted PEM key (Proc-Type: 4,ENCRYPTED), which is not read from the file, so it was not offered",
        keys.join(", ")
    ));
    // Settled when nothing else reached the server.
    if tried.len() == notes.pem_keys.len() {
        out.settled = true;
    }
    out.first.extend(notes.pem_keys.iter().map(|k| pem_fix(k)));
}

fn certificates(notes: &DenialNotes, user: &str, out: &mut Explanation) {
    if notes.certificates.is_empty() {
        return;
    }
    out.said.extend(notes.certificates.iter().cloned());
    out.settled = true;
    let user = escape_str(user);
    let timing = notes
        .certificates
        .iter()
        .any(|c| c.contains(" expired ") || c.contains(" is not valid before "));
    out.first.push(if timing {
        format!(
            "have the CA sign the key again, valid from now: ssh-keygen -s CA_KEY -I ID -n {user} -V +52w KEY.pub"
        )
    } else {
        format!(
            "have the CA sign a user certificate for principal {user} (ssh-keygen -s CA_KEY -I ID -n {user} KEY.pub), \
             or log in as a principal the certificate names (-l NAME)"
        )
    });
}

fn locked(notes: &DenialNotes, nothing_tried: bool, destination: &str, out: &mut Explanation) {
    if notes.locked_keys.is_empty() {
        return;
    }
    let keys: Vec<String> = notes
        .locked_keys
        .iter()
        .map(|k| escape_str(k).into_owned())
        .collect();
    out.said.push(format!(
        "{} is encrypted and no agent holds it (the doctor never asks for a passphrase, so it was not offered)",
        keys.join(", ")
    ));
    if nothing_tried {
        out.settled = true;
    }
    let quoted: Vec<String> = notes
        .locked_keys
        .iter()
        .map(|k| super::shell_quote(k))
        .collect();
    out.first.push(format!(
        "load it into your agent with `warren add {}` (or ssh-add), or run `warren ssh {}` once and type its passphrase",
        escape_str(&quoted.join(" ")),
        escape_str(&super::shell_quote(destination))
    ));
}

/// Refused keys of a type other than ed25519 (which every OpenSSH since
/// 6.5 accepts unless told otherwise): the server may not accept the type.
fn key_types(notes: &DenialNotes, out: &mut Explanation) {
    let doubtful: Vec<&str> = notes
        .refused_types
        .iter()
        .map(String::as_str)
        .filter(|t| *t != "ssh-ed25519")
        .collect();
    if doubtful.is_empty() {
        return;
    }
    let types = doubtful.join(", ");
    out.said.push(format!(
        "the server refused key type(s) {}",
        escape_str(&types)
    ));
    let old = if doubtful.iter().any(|t| *t == "ssh-dss" || *t == "ssh-rsa") {
        " (OpenSSH 8.8 and later refuse ssh-rsa (SHA-1) signatures and 7.0 and later DSA keys by default)"
    } else {
        ""
    };
    out.then.push(format!(
        "if the key is in authorized_keys, the server may not accept {} keys{old}: its log then says \
         \"not in PubkeyAcceptedAlgorithms\"; use a key of a type it accepts (`warren keygen -t ed25519`, \
         then add its .pub to authorized_keys) or add the type to PubkeyAcceptedAlgorithms in its sshd_config",
        escape_str(&types)
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denied(tried: &[&str], notes: DenialNotes) -> SessionError {
        SessionError::Auth(AuthError::Denied {
            user: "bob".into(),
            host: "h".into(),
            offered: "publickey".into(),
            tried: tried.iter().map(|t| (*t).to_owned()).collect(),
            notes: Box::new(notes),
        })
    }

    #[test]
    fn encrypted_pem_is_told_by_its_header() {
        let cases = [
            (
                "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n",
                true,
            ),
            (
                "\n-----BEGIN EC PRIVATE KEY-----\r\nProc-Type: 4,ENCRYPTED\r\n",
                true,
            ),
            ("-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n", false),
            (
                "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAACmFlczI1Ni1jdHI\n",
                false,
            ),
            ("Proc-Type: 4,ENCRYPTED\n", false),
            ("", false),
        ];
        for (text, want) in cases {
            assert_eq!(crate::keys::is_encrypted_pem(text), want, "{text:?}");
        }
    }

    #[test]
    fn encrypted_pem_alone_is_settled() {
        let notes = DenialNotes {
            pem_keys: vec!["/k".into()],
            ..DenialNotes::default()
        };
        let x = explain(
            &denied(&["publickey (/k: encrypted PEM key)"], notes.clone()),
            "h",
        );
        assert!(x.settled, "{x:?}");
        assert_eq!(x.first, [pem_fix("/k")]);
        let x = explain(
            &denied(
                &["publickey (/k: encrypted PEM key)", "publickey (/j)"],
                notes,
            ),
            "h",
        );
        assert!(!x.settled, "another key was refused: {x:?}");
    }

    #[test]
    fn nothing_noted_adds_nothing() {
        let e = denied(&["publickey (/k)"], DenialNotes::default());
        assert_eq!(explain(&e, "h"), Explanation::default());
    }

    #[test]
    fn ed25519_is_not_doubted() {
        let notes = DenialNotes {
            refused_types: vec!["ssh-ed25519".into()],
            ..DenialNotes::default()
        };
        assert_eq!(
            explain(&denied(&["publickey (/k)"], notes), "h"),
            Explanation::default()
        );
    }

    #[test]
    fn encrypted_key_alone_is_settled() {
        let notes = DenialNotes {
            locked_keys: vec!["/home/bob/.ssh/id ed".into()],
            ..DenialNotes::default()
        };
        let x = explain(&denied(&[], notes), "web");
        assert!(x.settled);
        assert!(
            x.said[0].starts_with("/home/bob/.ssh/id ed is encrypted"),
            "{x:?}"
        );
        assert!(
            x.first[0].contains("`warren add '/home/bob/.ssh/id ed'`")
                && x.first[0].contains("`warren ssh web`"),
            "{x:?}"
        );
    }

    #[test]
    fn expired_certificate_and_type() {
        let notes = DenialNotes {
            certificates: vec!["the certificate of /k expired 2020-01-01 00:00 UTC".into()],
            refused_types: vec!["ecdsa-sha2-nistp256".into(), "ssh-ed25519".into()],
            ..DenialNotes::default()
        };
        let x = explain(&denied(&["publickey (/k)"], notes), "h");
        assert!(x.settled);
        assert!(x.first[0].contains("-n bob -V +52w"), "{x:?}");
        assert_eq!(
            x.said[1],
            "the server refused key type(s) ecdsa-sha2-nistp256"
        );
        assert!(x.then[0].contains("PubkeyAcceptedAlgorithms"), "{x:?}");
    }
}
