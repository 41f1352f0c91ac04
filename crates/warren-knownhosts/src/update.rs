//! UpdateHostKeys: what to learn from the keys a server announces
//! (`hostkeys-00@openssh.com`) and the known_hosts rewrite that records
//! them, as OpenSSH 9.2's `client_input_hostkeys` / `hostkeys_find`
//! (clientloop.c) and `hostfile_replace_entries` (hostfile.c) do.
//!
//! Design choice: planning and rewriting are separate and pure. The
//! caller reads the user's known_hosts files into [`plan`], asks the
//! server to prove the [`Plan::new`] keys, and only then streams each file
//! through [`replace`]; a plan that says [`Plan::skip`] changes nothing,
//! for the same reasons ssh gives at `-v`.

use std::io::{self, BufRead, Write};

use crate::file::KnownHostsFile;
use crate::hash::{SALT_LEN, hash_host};
use crate::key::HostKey;
use crate::line::{Front, HostField, LineRead, MAX_LINE, Marker, front, key_words, read_line};

/// The names a host's entries are written under: `host` (or
/// `[host]:port`, or the HostKeyAlias) and, with CheckHostIP, the address.
#[derive(Debug, Clone, Copy)]
pub struct UpdateNames<'a> {
    pub host: &'a str,
    pub ip: Option<&'a str>,
}

const MATCH_HOST: u8 = 1;
const MATCH_IP: u8 = 2;

impl UpdateNames<'_> {
    /// OpenSSH's `HKF_MATCH_HOST` / `HKF_MATCH_IP` bits for a line.
    fn matches(&self, hosts: &HostField) -> u8 {
        let mut bits = 0;
        if hosts.matches(self.host) {
            bits |= MATCH_HOST;
        }
        if self.ip.is_some_and(|ip| hosts.matches(ip)) {
            bits |= MATCH_IP;
        }
        bits
    }

    fn wanted(&self) -> u8 {
        if self.ip.is_some() {
            MATCH_HOST | MATCH_IP
        } else {
            MATCH_HOST
        }
    }
}

/// What an announcement means for the user's known_hosts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Announced keys not yet recorded for the host: the server must prove
    /// it holds them before they are written.
    pub new: Vec<HostKey>,
    /// Keys recorded for the host that the server no longer has: removed.
    pub old: Vec<HostKey>,
    /// Why nothing may be changed, when something prevents it (ssh's
    /// "skipping UserKnownHostsFile update" reasons).
    pub skip: Option<&'static str>,
}

impl Plan {
    /// Whether there is anything to do at all.
    pub fn is_empty(&self) -> bool {
        self.new.is_empty() && self.old.is_empty()
    }
}

/// Decides from the user's known_hosts `files` (read whole: a key
/// recorded for the host may also appear under another name) what the
/// `announced` plain keys change.
pub fn plan(files: &[KnownHostsFile], names: UpdateNames<'_>, announced: &[HostKey]) -> Plan {
    let mut plan = Plan::default();
    let mut known = vec![false; announced.len()];
    let (mut complex, mut other_name) = (false, false);
    for entry in files.iter().flat_map(|f| f.entries()) {
        let bits = names.matches(&entry.hosts);
        let announced_at = announced.iter().position(|k| k.blob() == entry.key.blob());
        if bits == 0 {
            other_name |= announced_at.is_some();
            continue;
        }
        if entry.marker != Marker::None || is_complex(&entry.hosts) {
            complex = true;
            continue;
        }
        // CheckHostIP: a two-name line naming only one of ours.
        if names.ip.is_some() && has_two_names(&entry.hosts) && bits != MATCH_HOST | MATCH_IP {
            other_name = true;
            continue;
        }
        match announced_at {
            Some(i) => known[i] = true,
            None if !plan.old.contains(&entry.key) => plan.old.push(entry.key.clone()),
            None => {}
        }
    }
    plan.new = announced
        .iter()
        .zip(&known)
        .filter(|(_, known)| !**known)
        .map(|(k, _)| k.clone())
        .collect();
    if plan.is_empty() {
        return plan;
    }
    plan.skip = if complex {
        Some("CA/revocation marker, manual host list or wildcard host pattern found")
    } else if other_name {
        Some("host key found matching a different name/address")
    } else if old_under_other_names(files, names, &plan.old) {
        Some("old keys exist under other names")
    } else {
        None
    };
    plan
}

/// ssh's `check_old_keys_othernames`: a key to be removed that also
/// appears under another name stops the update.
fn old_under_other_names(
    files: &[KnownHostsFile],
    names: UpdateNames<'_>,
    old: &[HostKey],
) -> bool {
    files
        .iter()
        .flat_map(|f| f.entries())
        .any(|e| names.matches(&e.hosts) == 0 && old.iter().any(|k| k.blob() == e.key.blob()))
}

/// ssh's `hostspec_is_complex`: wildcards, or more than two names.
fn is_complex(hosts: &HostField) -> bool {
    match hosts {
        HostField::Hashed { .. } => false,
        HostField::Patterns(p) => {
            p.contains(&b'*') || p.contains(&b'?') || p.iter().filter(|&&b| b == b',').count() > 1
        }
    }
}

fn has_two_names(hosts: &HostField) -> bool {
    matches!(hosts, HostField::Patterns(p) if p.contains(&b','))
}

/// What [`replace`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replaced {
    /// 1-based numbers of the lines removed (keys the server no longer has).
    pub removed: Vec<usize>,
    /// Keys appended, in the order given.
    pub added: Vec<HostKey>,
}

impl Replaced {
    /// Whether the output differs from the input.
    pub fn modified(&self) -> bool {
        !self.removed.is_empty() || !self.added.is_empty()
    }
}

/// ssh's `hostfile_replace_entries`: copy `input` to `output` without the
/// unmarked lines naming the host whose key is not in `keys`, then append
/// a line for each key of `keys` not yet recorded under every name (hashed
/// when `hash` says so, one line per name then, as ssh writes them).
/// Every other line is written back byte for byte. With `keys` empty,
/// every unmarked line naming the host goes (ssh does this to the user
/// files after the first).
pub fn replace(
    mut input: impl BufRead,
    mut output: impl Write,
    names: UpdateNames<'_>,
    keys: &[HostKey],
    hash: Option<&mut dyn FnMut() -> [u8; SALT_LEN]>,
) -> io::Result<Replaced> {
    let mut done = Replaced::default();
    let mut seen = vec![0u8; keys.len()];
    let mut buf = Vec::new();
    for number in 1.. {
        match read_line(&mut input, &mut buf, MAX_LINE)? {
            LineRead::Eof => break,
            // Not held in memory, so it cannot be written back: refuse.
            LineRead::TooLong => {
                return Err(io::Error::other(format!(
                    "line {number} is longer than {MAX_LINE} bytes"
                )));
            }
            LineRead::Line => {}
        }
        if let Some((bits, key)) = line_key(&buf, names) {
            match keys.iter().position(|k| *k == key) {
                Some(i) => seen[i] |= bits,
                None => {
                    done.removed.push(number);
                    continue;
                }
            }
        }
        output.write_all(&buf)?;
        output.write_all(b"\n")?;
    }
    let mut hash = hash;
    for (key, seen) in keys.iter().zip(seen) {
        let missing = names.wanted() & !seen;
        let mut line_names = Vec::new();
        if missing & MATCH_HOST != 0 {
            line_names.push(names.host);
        }
        if let Some(ip) = names.ip.filter(|_| missing & MATCH_IP != 0) {
            line_names.push(ip);
        }
        if line_names.is_empty() {
            continue;
        }
        let text = key.to_openssh();
        match hash.as_mut() {
            Some(salt) => {
                for name in line_names {
                    writeln!(
                        output,
                        "{} {text}",
                        hash_host(&name.to_ascii_lowercase(), &salt())
                    )?;
                }
            }
            None => {
                let joined: Vec<String> =
                    line_names.iter().map(|n| n.to_ascii_lowercase()).collect();
                writeln!(output, "{} {text}", joined.join(","))?;
            }
        }
        done.added.push(key.clone());
    }
    output.flush()?;
    Ok(done)
}

/// For an unmarked line naming the host: its match bits and key.
fn line_key(line: &[u8], names: UpdateNames<'_>) -> Option<(u8, HostKey)> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Front::Entry(fields) = front(line) else {
        return None;
    };
    if fields.marker != Marker::None {
        return None;
    }
    let hosts = HostField::parse(fields.hosts).ok()?;
    let bits = names.matches(&hosts);
    if bits == 0 {
        return None;
    }
    let (ktype, b64, _) = key_words(fields.rest);
    let key = HostKey::from_openssh_line_fields(
        std::str::from_utf8(ktype).ok()?,
        std::str::from_utf8(b64).ok()?,
    )
    .ok()?;
    Some((bits, key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkeys::{ecdsa, ed};

    const HOST: UpdateNames<'static> = UpdateNames {
        host: "[127.0.0.1]:2222",
        ip: None,
    };

    fn file(text: &str) -> KnownHostsFile {
        KnownHostsFile::parse("kh", text)
    }

    #[test]
    fn an_announced_key_not_recorded_is_new() {
        let (a, b) = (ed(1), ecdsa(2));
        let f = file(&format!("[127.0.0.1]:2222 {}\n", a.to_openssh()));
        let plan = plan(&[f], HOST, &[a.clone(), b.clone()]);
        assert_eq!((plan.new, plan.old, plan.skip), (vec![b], vec![], None));
    }

    #[test]
    fn a_recorded_key_not_announced_is_old() {
        let (a, b) = (ed(1), ecdsa(2));
        let f = file(&format!(
            "[127.0.0.1]:2222 {}\n[127.0.0.1]:2222 {}\n",
            a.to_openssh(),
            b.to_openssh()
        ));
        let plan = plan(&[f], HOST, std::slice::from_ref(&a));
        assert_eq!((plan.new, plan.old, plan.skip), (vec![], vec![b], None));
    }

    #[test]
    fn wildcards_markers_and_other_names_stop_the_update() {
        let (a, b) = (ed(1), ecdsa(2));
        for text in [
            format!("[127.0.0.1]:* {}\n", a.to_openssh()),
            format!("@cert-authority [127.0.0.1]:2222 {}\n", a.to_openssh()),
            format!(
                "[127.0.0.1]:2222 {}\nother {}\n",
                a.to_openssh(),
                b.to_openssh()
            ),
            format!("x,y,[127.0.0.1]:2222 {}\n", a.to_openssh()),
        ] {
            let plan = plan(&[file(&text)], HOST, &[a.clone(), b.clone()]);
            assert!(plan.skip.is_some(), "{text}");
        }
    }

    #[test]
    fn replace_drops_old_keeps_others_and_appends_new() {
        let (a, b, c) = (ed(1), ecdsa(2), ed(3));
        let text = format!(
            "# comment\n[127.0.0.1]:2222 {}\nother {}\n[127.0.0.1]:2222 {} note\n",
            c.to_openssh(),
            c.to_openssh(),
            a.to_openssh()
        );
        let mut out = Vec::new();
        let done = replace(
            text.as_bytes(),
            &mut out,
            HOST,
            &[a.clone(), b.clone()],
            None,
        )
        .unwrap();
        assert_eq!(done.removed, vec![2]);
        assert_eq!(done.added, vec![b.clone()]);
        let expected = format!(
            "# comment\nother {}\n[127.0.0.1]:2222 {} note\n[127.0.0.1]:2222 {}\n",
            c.to_openssh(),
            a.to_openssh(),
            b.to_openssh()
        );
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    #[test]
    fn replace_hashes_new_lines_when_asked() {
        let a = ed(1);
        let mut out = Vec::new();
        let mut salt = || [7u8; SALT_LEN];
        replace(
            &b""[..],
            &mut out,
            HOST,
            std::slice::from_ref(&a),
            Some(&mut salt),
        )
        .unwrap();
        let f = file(std::str::from_utf8(&out).unwrap());
        assert!(f.entries()[0].hosts.is_hashed());
        assert!(f.entries()[0].matches(HOST.host));
    }
}
