//! ssh_config keywords warren does not act on are refused by name when a
//! connection would need them (warren_config::KEYWORDS lists every
//! keyword's status), never accepted and ignored; `-G` still prints them.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]

mod common;
use common::{text, warren};

use std::process::{Output, Stdio};

use warren_testkit::Sshd;

fn run(sshd: &Sshd, option: &str, extra: &[&str]) -> Output {
    warren()
        .arg("ssh")
        .args(extra)
        .args(["-o", option])
        .arg("-F")
        .arg(sshd.client_config())
        .args(["test", "echo", "ok"])
        .stdin(Stdio::null())
        .output()
        .expect("run warren")
}

/// Broke: each of these was parsed, printed by -G, and then ignored: the
/// connection went ahead as if it were not set (no SSHFP lookup, no TOS
/// marking, ...).
#[test]
fn keywords_warren_does_not_do_are_refused_by_name() {
    let sshd = Sshd::start();
    for (option, keyword) in [
        ("FingerprintHash=md5", "FingerprintHash"),
        ("HostbasedAuthentication=yes", "HostbasedAuthentication"),
        ("IPQoS=lowdelay", "IPQoS"),
        ("KbdInteractiveDevices=pam", "KbdInteractiveDevices"),
        ("LogVerbose=kex.c:*", "LogVerbose"),
        (
            "NoHostAuthenticationForLocalhost=yes",
            "NoHostAuthenticationForLocalhost",
        ),
        ("PKCS11Provider=/nonexistent/p11.so", "PKCS11Provider"),
        ("ProxyUseFdpass=yes", "ProxyUseFdpass"),
        (
            "SecurityKeyProvider=/nonexistent/sk.so",
            "SecurityKeyProvider",
        ),
        ("Tunnel=yes", "Tunnel"),
        ("VerifyHostKeyDNS=yes", "VerifyHostKeyDNS"),
    ] {
        let out = run(&sshd, option, &[]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(255), "{option}: {err}");
        assert!(
            err.contains(&format!("warren: {keyword} is not supported")),
            "{option}: {err}"
        );
        assert!(out.stdout.is_empty(), "{option} ran the command");
        // -G reports the configuration whatever warren does with it.
        let dump = run(&sshd, option, &["-G"]);
        assert!(dump.status.success(), "-G {option}: {}", text(&dump.stderr));
    }
}

/// What warren does the way ssh does stays accepted: GSSAPI is skipped
/// (Debian's ssh_config sets GSSAPIAuthentication yes), IPQoS none is
/// what warren always does, FingerprintHash sha256 is warren's.
#[test]
fn settings_that_change_nothing_in_warren_still_connect() {
    let sshd = Sshd::start();
    for option in [
        "GSSAPIAuthentication=yes",
        "IPQoS=none",
        "FingerprintHash=sha256",
        "VerifyHostKeyDNS=no",
        "Tunnel=no",
    ] {
        let out = run(&sshd, option, &[]);
        assert!(out.status.success(), "{option}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "ok\n", "{option}");
    }
}
