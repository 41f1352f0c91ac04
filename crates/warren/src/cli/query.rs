//! `warren ssh -Q QUERY`: the algorithms this warren supports, one per
//! line, as `ssh -Q` prints them (and with ssh's query names and aliases).

use warren_core::algorithms as alg;

/// The queries `-Q help` lists, in ssh's order.
const QUERIES: &[&str] = &[
    "cipher",
    "cipher-auth",
    "compression",
    "kex",
    "key",
    "key-cert",
    "key-plain",
    "key-sig",
    "mac",
    "protocol-version",
    "sig",
];

/// The answer to one query, or `None` for a query ssh would not know.
pub fn answer(query: &str) -> Option<Vec<&'static str>> {
    let q = query.to_ascii_lowercase();
    let list = match q.as_str() {
        "cipher" | "ciphers" => alg::supported_ciphers(),
        "cipher-auth" => alg::supported_aead_ciphers(),
        "compression" => vec!["none", "zlib@openssh.com", "zlib"],
        "kex" | "kexalgorithms" => alg::supported_kex(),
        "key" => key_types(),
        "key-cert" => alg::CERT_TYPES.to_vec(),
        "key-plain" => alg::KEY_TYPES.to_vec(),
        "key-sig"
        | "casignaturealgorithms"
        | "pubkeyacceptedalgorithms"
        | "pubkeyacceptedkeytypes"
        | "hostkeyalgorithms"
        | "hostbasedkeytypes"
        | "hostbasedacceptedalgorithms" => key_sig(),
        "mac" | "macs" => alg::supported_macs(),
        "protocol-version" => vec!["2"],
        "sig" => alg::supported_signatures(),
        "help" => QUERIES.to_vec(),
        _ => return None,
    };
    Some(list)
}

/// Plain key types, then certificate types.
fn key_types() -> Vec<&'static str> {
    let mut out = alg::KEY_TYPES.to_vec();
    out.extend(alg::CERT_TYPES);
    out
}

/// Signature algorithms and certificate types together, as ssh's
/// `key-sig` (what the *Algorithms options accept).
fn key_sig() -> Vec<&'static str> {
    let mut out = alg::supported_signatures();
    out.extend(alg::CERT_TYPES);
    out
}

/// Prints the answer; returns the exit code (255 and ssh's message for an
/// unknown query).
pub fn run(query: &str) -> u8 {
    match answer(query) {
        Some(list) => {
            let mut out = String::new();
            for name in list {
                out.push_str(name);
                out.push('\n');
            }
            print!("{out}");
            0
        }
        None => {
            eprintln!(
                "Unsupported query \"{}\"",
                warren_wire::escape(query.as_bytes())
            );
            255
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_query_has_an_answer() {
        for q in QUERIES {
            let list = answer(q).unwrap_or_default();
            assert!(!list.is_empty(), "{q}");
            assert!(
                list.iter()
                    .all(|n| !n.is_empty() && !n.contains(char::is_whitespace))
            );
        }
        assert_eq!(answer("Ciphers"), answer("cipher"));
        assert_eq!(answer("nope"), None);
    }
}
