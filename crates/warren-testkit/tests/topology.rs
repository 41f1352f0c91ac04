//! A two-bastion chain of network namespaces: real `ssh -J` reaches the
//! target only by hopping, and a cut link really cuts it.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]

use std::net::TcpStream;
use std::process::{Command, Output};
use std::time::Duration;

use warren_testkit::{Netns, Topology, assert_unreachable};

fn ssh(topo: &Topology, args: &[&str]) -> Output {
    Command::new("timeout")
        .args(["30", "ssh", "-F"])
        .arg(topo.client_config())
        .args(args)
        .output()
        .expect("run ssh")
}

fn netns_exists(name: &str) -> bool {
    let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.split_whitespace().next() == Some(name))
}

#[test]
fn ssh_jumps_through_two_bastions_to_an_isolated_target() {
    let topo = Topology::with_bastions(2);
    let names: Vec<&str> = topo.hops().iter().map(|h| h.name()).collect();
    assert_eq!(names, ["bastion1", "bastion2", "target"]);
    assert_eq!(topo.jump_spec(), "bastion1,bastion2");

    // Not reachable directly, from the host or from bastion1.
    let target = topo.target().ssh_addr();
    assert!(TcpStream::connect_timeout(&target, Duration::from_secs(2)).is_err());
    assert_unreachable(target);
    topo.assert_isolated();

    let out = ssh(&topo, &["-J", &topo.jump_spec(), "target", "echo", "ok"]);
    assert!(
        out.status.success(),
        "ssh -J failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        topo.logs()
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
    // The login really happened in the target's sshd, coming from bastion2.
    let from = topo.link_to("target").a.addr;
    let log = topo.target().sshd().log();
    assert!(
        log.contains("Accepted publickey for") && log.contains(&format!("from {from} ")),
        "target log shows no login from bastion2 ({from}):\n{log}"
    );

    // Each hop alone is reachable by name too (one IdentityFile for all).
    let out = ssh(&topo, &["bastion1", "true"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let namespaces: Vec<String> = topo
        .hops()
        .iter()
        .map(|h| h.netns().name().to_owned())
        .collect();
    drop(topo);
    for ns in namespaces {
        assert!(!netns_exists(&ns), "{ns} left behind after drop");
    }
}

#[test]
fn cut_link_fails_the_jump_and_restore_heals_it() {
    let topo = Topology::with_bastions(1);
    let jump = ["-J", "bastion1", "target", "true"];
    topo.link_to("target").cut();
    let out = ssh(&topo, &jump);
    assert!(!out.status.success(), "ssh -J succeeded across a cut link");
    topo.link_to("target").restore();
    let out = ssh(&topo, &jump);
    assert!(
        out.status.success(),
        "ssh -J failed after restore: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        topo.logs()
    );
}

#[test]
fn a_panicking_test_still_tears_its_topology_down() {
    let mut names = Vec::new();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let topo = Topology::with_bastions(1);
        names = topo
            .hops()
            .iter()
            .map(|h| h.netns().name().to_owned())
            .collect();
        panic!("the test failed while the topology was up");
    }));
    assert!(caught.is_err());
    assert_eq!(names.len(), 2);
    for ns in names {
        assert!(!netns_exists(&ns), "{ns} left behind after a panic");
    }
}

#[test]
fn netns_exec_runs_inside_and_is_deleted_on_drop() {
    let ns = Netns::new();
    let name = ns.name().to_owned();
    assert!(name.starts_with(&format!("warren-{}-", std::process::id())));
    let out = ns.exec_ok(&["ip", "-o", "link", "show"]);
    let links = String::from_utf8_lossy(&out.stdout);
    assert!(links.contains("lo:") && links.contains("UP"), "{links}");
    assert!(
        !links.contains("eth0"),
        "host devices visible inside: {links}"
    );
    drop(ns);
    assert!(!netns_exists(&name));
}
