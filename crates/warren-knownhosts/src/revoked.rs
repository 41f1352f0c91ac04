//! The contents of a `RevokedHostKeys` file: a KRL, or a list of public
//! keys one per line, as OpenSSH's `sshkey_check_revoked` reads it.
//!
//! Design choice: the whole file is judged up front. OpenSSH stops at the
//! first key that matches and fails on the first line it cannot read, so
//! a list with a bad line can only ever refuse the connection there ("the
//! key is revoked" or "the file is unusable"); refusing it as unusable
//! here refuses the same connections.

use crate::error::ParseError;
use crate::key::HostKey;
use crate::krl::{Krl, KrlError};

/// A parsed `RevokedHostKeys` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokedKeys {
    /// A binary KRL (`ssh-keygen -k`).
    Krl(Krl),
    /// Public keys, one per line (`#` comments and blank lines allowed).
    List(Vec<HostKey>),
}

/// Why a `RevokedHostKeys` file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RevokedKeysError {
    /// It starts like a KRL but is not a valid one.
    #[error(transparent)]
    Krl(KrlError),
    /// A line of a key list is not a public key.
    #[error("line {line}: {error}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        error: ParseError,
    },
}

impl RevokedKeys {
    /// A KRL if the bytes start with the KRL magic, a key list otherwise.
    pub fn parse(bytes: &[u8]) -> Result<RevokedKeys, RevokedKeysError> {
        match Krl::parse(bytes) {
            Ok(krl) => Ok(RevokedKeys::Krl(krl)),
            Err(KrlError::NotKrl) => parse_list(bytes).map(RevokedKeys::List),
            Err(e) => Err(RevokedKeysError::Krl(e)),
        }
    }

    /// Whether `key` is revoked: for a KRL, OpenSSH's `ssh_krl_check_key`;
    /// for a list, `sshkey_in_file(.., strict_type = 0, check_ca = 1)`: a
    /// listed key revokes itself and every certificate of it, and a listed
    /// CA key revokes every certificate it signed.
    pub fn is_revoked(&self, key: &HostKey) -> bool {
        match self {
            RevokedKeys::Krl(krl) => krl.is_revoked(key),
            RevokedKeys::List(keys) => {
                let ca = key.signature_key();
                keys.iter().any(|listed| {
                    listed.same_public_key(key)
                        || ca.as_ref().is_some_and(|ca| listed.same_public_key(ca))
                })
            }
        }
    }
}

/// `sshkey_in_file`'s reading: leading blanks skipped, `#` lines and empty
/// lines ignored, every other line `<type> <base64> [comment]`.
fn parse_list(bytes: &[u8]) -> Result<Vec<HostKey>, RevokedKeysError> {
    let mut keys = Vec::new();
    for (index, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        // OpenSSH reads each line as a C string: a NUL ends it.
        let raw = raw.split(|b| *b == 0).next().unwrap_or_default();
        let line = trim_blanks(raw);
        if line.is_empty() || line[0] == b'#' {
            continue;
        }
        let key = parse_key(line).map_err(|error| RevokedKeysError::Line {
            line: index + 1,
            error,
        })?;
        keys.push(key);
    }
    Ok(keys)
}

fn trim_blanks(line: &[u8]) -> &[u8] {
    let start = line
        .iter()
        .position(|b| *b != b' ' && *b != b'\t')
        .unwrap_or(line.len());
    &line[start..]
}

/// `sshkey_read`: the type up to a blank, blanks, then the base64 up to
/// the next blank (white space inside it, such as a trailing `\r`, is
/// skipped as `b64_pton` does).
fn parse_key(line: &[u8]) -> Result<HostKey, ParseError> {
    let is_blank = |b: &u8| *b == b' ' || *b == b'\t';
    let end = line.iter().position(is_blank).unwrap_or(line.len());
    let algorithm = std::str::from_utf8(&line[..end]).map_err(|_| {
        let shown = &line[..end.min(64)];
        ParseError::UnknownKeyType(String::from_utf8_lossy(shown).into_owned())
    })?;
    let rest = trim_blanks(&line[end..]);
    let data_end = rest.iter().position(is_blank).unwrap_or(rest.len());
    let data: Vec<u8> = rest[..data_end]
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if data.is_empty() {
        return Err(ParseError::MissingKeyData(algorithm.to_owned()));
    }
    let data = std::str::from_utf8(&data).map_err(|_| ParseError::BadBase64)?;
    HostKey::from_openssh_line_fields(algorithm, data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkeys::{ecdsa, ed, ed_cert, k};

    #[test]
    fn key_list_revokes_keys_their_certificates_and_certificates_by_their_ca() {
        let text = format!(
            "# revoked\n\n  \t{} a comment\n\t{}\r\n{}",
            k(&ed(1)),
            k(&ecdsa(2)),
            k(&ed_cert(3, &ed(9)))
        );
        let list = RevokedKeys::parse(text.as_bytes()).expect("parses");
        assert!(matches!(&list, RevokedKeys::List(keys) if keys.len() == 3));
        let cases = [
            (ed(1), true),
            (ecdsa(2), true),
            (ed(4), false),
            // A listed certificate revokes its plain key.
            (ed(3), true),
            // A certificate of a listed key, whoever signed it.
            (ed_cert(1, &ed(8)), true),
            // A certificate signed by a listed key.
            (ed_cert(5, &ed(1)), true),
            (ed_cert(5, &ed(8)), false),
        ];
        for (key, want) in cases {
            assert_eq!(list.is_revoked(&key), want, "{}", key.to_openssh());
        }
    }

    #[test]
    fn a_bad_line_makes_the_list_unusable() {
        let good = k(&ed(1));
        let cases = [
            (format!("{good}\nssh-foo AAAA\n"), 2),
            (format!("\n\n{good} c\r\n\r\n"), 4),
            (format!("command=\"x\" {good}\n"), 1),
            ("ssh-ed25519\n".to_owned(), 1),
            ("ssh-ed25519 !!!\n".to_owned(), 1),
        ];
        for (text, line) in cases {
            let got = RevokedKeys::parse(text.as_bytes());
            assert!(
                matches!(got, Err(RevokedKeysError::Line { line: l, .. }) if l == line),
                "{text:?}: {got:?}"
            );
        }
        // Comments, blank lines and text after a NUL are ignored; an empty
        // file revokes nothing.
        let empty = RevokedKeys::parse(b"  # x\n\n\0junk\n").expect("parses");
        assert!(!empty.is_revoked(&ed(1)));
    }

    #[test]
    fn a_damaged_krl_is_not_read_as_a_list() {
        let got = RevokedKeys::parse(b"SSHKRL\n\0\0\0\0\x01");
        assert!(matches!(
            got,
            Err(RevokedKeysError::Krl(KrlError::Truncated(_)))
        ));
    }
}
