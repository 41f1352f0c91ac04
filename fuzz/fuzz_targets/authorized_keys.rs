//! authorized_keys options: every usable line, written back with its
//! options in canonical form, parses to the same key and options; the
//! `from=` check and the permit checks never panic.
//!
//! Input: file text. The parser takes `&str`, so non-UTF-8 input is
//! skipped.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use warren_server::authorized_keys::{Entry, HostPort, KeyOptions, from_permits, parse};

/// `"value"` with `"` escaped as the parser reads it.
fn quoted(v: &str) -> String {
    format!("\"{}\"", v.replace('"', "\\\""))
}

/// `host:port`, `[host]:port` when the host starts with `[` (or holds a
/// `:`), a bare port without host; `*` for any port.
fn host_port(hp: &HostPort) -> String {
    let port = hp.port.map_or("*".to_owned(), |p| p.to_string());
    match &hp.host {
        None => port,
        Some(h) if h.starts_with('[') => format!("[{h}]:{port}"),
        Some(h) => format!("{h}:{port}"),
    }
}

/// The timestamp as `YYYYMMDDHHMMSSZ`, if it has four-digit year.
fn expiry_text(t: i64) -> Option<String> {
    let text = chrono::DateTime::from_timestamp(t, 0)?
        .format("%Y%m%d%H%M%SZ")
        .to_string();
    (text.len() == 15 && text[..14].bytes().all(|b| b.is_ascii_digit())).then_some(text)
}

/// Every option spelled out, so the order they were written in does not
/// matter. `None` when the expiry cannot be written back.
fn options_text(o: &KeyOptions) -> Option<String> {
    let flag = |on: bool, name: &str| {
        if on {
            name.to_owned()
        } else {
            format!("no-{name}")
        }
    };
    let mut out = vec![
        flag(o.port_forwarding, "port-forwarding"),
        flag(o.pty, "pty"),
        flag(o.agent_forwarding, "agent-forwarding"),
        flag(o.x11_forwarding, "x11-forwarding"),
        flag(o.user_rc, "user-rc"),
    ];
    if o.cert_authority {
        out.push("cert-authority".to_owned());
    }
    for (name, value) in [
        ("command", &o.command),
        ("from", &o.from),
        ("principals", &o.principals),
    ] {
        if let Some(v) = value {
            out.push(format!("{name}={}", quoted(v)));
        }
    }
    for (k, v) in &o.environment {
        out.push(format!("environment={}", quoted(&format!("{k}={v}"))));
    }
    for hp in &o.permit_open {
        out.push(format!("permitopen={}", quoted(&host_port(hp))));
    }
    for hp in &o.permit_listen {
        out.push(format!("permitlisten={}", quoted(&host_port(hp))));
    }
    if let Some(t) = o.expiry {
        out.push(format!("expiry-time={}", quoted(&expiry_text(t)?)));
    }
    Some(out.join(","))
}

fn assert_entry_round_trips(e: &Entry) {
    let Ok(key) = e.key.to_openssh() else {
        return;
    };
    let Some(options) = options_text(&e.options) else {
        return;
    };
    let line = format!("{options} {key}\n");
    let (entries, errors) = parse(&line);
    assert!(errors.is_empty(), "{line:?}: {errors:?}");
    let [back] = entries.as_slice() else {
        panic!("{line:?} gave {} entries", entries.len());
    };
    assert_eq!(back.key.key_data(), e.key.key_data(), "{line:?}");
    assert_eq!(back.options, e.options, "{line:?}");
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (entries, errors) = parse(text);
    for error in &errors {
        let _ = error.to_string();
    }
    let addrs: [IpAddr; 3] = [
        [192, 0, 2, 1].into(),
        [0x2001, 0xdb8, 0, 0, 0, 0, 0, 1].into(),
        [0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0201].into(),
    ];
    for e in &entries {
        assert_entry_round_trips(e);
        if let Some(from) = &e.options.from {
            for addr in addrs {
                let _ = from_permits(from, addr);
            }
        }
        for hp in e.options.permit_open.iter().chain(&e.options.permit_listen) {
            let _ = hp.permits_open("localhost", 22);
            let _ = hp.permits_listen("", 8080);
        }
    }
});
