//! `-B` / BindInterface against real sshd: the connection comes from the
//! interface's address (seen by the remote shell as SSH_CLIENT), and a
//! missing interface is an error naming it.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]

mod common;
use common::{text, warren};

use warren_testkit::{Netns, Sshd};

#[test]
fn dash_b_lo_connects_from_loopback() {
    // Catches: -B refused as "not supported yet".
    let sshd = Sshd::start();
    let out = warren()
        .args(["ssh", "-B", "lo", "-F"])
        .arg(sshd.client_config())
        .args(["test", "echo $SSH_CLIENT"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("127.0.0.1 "),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn bind_interface_uses_the_interfaces_own_address() {
    // Catches: BindInterface ignored (the kernel would pick 127.0.0.1 to
    // reach sshd on 127.0.0.1).
    let ns = Netns::new();
    // A veth pair inside the namespace (this kernel has no dummy links).
    ns.ip(&[
        "link", "add", "wdum0", "type", "veth", "peer", "name", "wdum1",
    ]);
    ns.ip(&["addr", "add", "10.77.0.1/24", "dev", "wdum0"]);
    ns.ip(&["link", "set", "wdum0", "up"]);
    ns.ip(&["link", "set", "wdum1", "up"]);
    let sshd = Sshd::builder().netns(&ns).start();
    let cfg = sshd.client_config();
    let out = ns
        .command(env!("CARGO_BIN_EXE_warren"))
        .args(["ssh", "-o", "BindInterface=wdum0", "-F"])
        .arg(&cfg)
        .args(["test", "echo $SSH_CLIENT"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("10.77.0.1 "),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn dash_b_with_a_missing_interface_fails_naming_it() {
    // Catches: -B refused as unsupported instead of tried and reported.
    let sshd = Sshd::start();
    let out = warren()
        .args(["ssh", "-B", "warren-nosuch0", "-F"])
        .arg(sshd.client_config())
        .args(["test", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(255));
    let err = text(&out.stderr);
    assert!(
        err.contains("warren-nosuch0: no suitable addresses"),
        "{err}"
    );
}
