//! Jump chains in network namespaces: the target is reachable only by
//! hopping through the bastions (a direct connection fails), and each hop
//! is verified and logged in to under its own name.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]

mod common;
use common::{text, warren};

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

use warren_testkit::{Topology, assert_unreachable};

fn warren_ssh(topo: &Topology, args: &[&str]) -> std::process::Output {
    warren()
        .arg("ssh")
        .arg("-F")
        .arg(topo.client_config())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn two_and_three_hop_chains_reach_an_isolated_target() {
    for bastions in [1, 2] {
        let topo = Topology::with_bastions(bastions);
        assert_unreachable(topo.target().ssh_addr());
        let out = warren_ssh(
            &topo,
            &["-J", &topo.jump_spec(), "target", "echo $SSH_CONNECTION"],
        );
        assert!(
            out.status.success(),
            "{bastions} bastions: {}\n{}",
            text(&out.stderr),
            topo.logs()
        );
        // The target saw the connection come from a bastion, not from us.
        let source = text(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_owned();
        assert!(
            source.starts_with("10.") && source != topo.host_addr().to_string(),
            "{}",
            text(&out.stdout)
        );
    }
}

#[test]
fn local_forward_through_a_jump_chain_reaches_a_service_behind_it() {
    let topo = Topology::with_bastions(2);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // The target's own sshd stands in for "db.internal:5432": the name is
    // resolved and connected to by the target, which we cannot reach.
    let spec = format!("{port}:{}:22", topo.target().addr());
    let mut child = warren()
        .arg("ssh")
        .arg("-F")
        .arg(topo.client_config())
        .args(["-N", "-J", &topo.jump_spec(), "-L", &spec, "target"])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut s = loop {
        if let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
            break s;
        }
        assert!(Instant::now() < deadline, "forward never came up");
        std::thread::sleep(Duration::from_millis(100));
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut banner = [0u8; 7];
    s.read_exact(&mut banner).unwrap();
    assert_eq!(
        &banner, b"SSH-2.0",
        "the target's loopback service answered"
    );
    s.write_all(b"SSH-2.0-probe\r\n").unwrap();
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn openssh_uses_warren_as_its_proxycommand_across_namespaces() {
    let topo = Topology::with_bastions(1);
    let proxy = format!(
        "ProxyCommand={} ssh -F {} -W %h:%p bastion1",
        env!("CARGO_BIN_EXE_warren"),
        topo.client_config().display()
    );
    let out = std::process::Command::new("ssh")
        .arg("-F")
        .arg(topo.client_config())
        .args(["-o", &proxy, "target", "echo through-warren"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "through-warren\n");
}

#[test]
fn rsync_through_a_jump_host() {
    let topo = Topology::with_bastions(1);
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("d/file"), vec![42u8; 200_000]).unwrap();
    let dst = tmp.path().join("dst");
    let transport = format!(
        "{} ssh -F {} -J bastion1",
        env!("CARGO_BIN_EXE_warren"),
        topo.client_config().display()
    );
    // The target writes into its own view of the filesystem, which is ours
    // (namespaces share the filesystem): the copy lands in `dst`.
    let out = std::process::Command::new("rsync")
        .args(["-a", "-e", &transport])
        .arg(format!("{}/", src.display()))
        .arg(format!("target:{}/", dst.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "rsync -e '{transport}': {}",
        text(&out.stderr)
    );
    assert_eq!(
        std::fs::read(dst.join("d/file")).unwrap(),
        vec![42u8; 200_000]
    );
}
