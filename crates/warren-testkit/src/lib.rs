//! Dev-only fixtures for warren's integration tests: a real OpenSSH `sshd`
//! on 127.0.0.1 with its own keys, config and authorized_keys, killed on
//! `Drop` (the shape of hickory-dns's BIND fixture); echo and HTTP peers for
//! forwarding tests; chains of network namespaces where a target is reachable
//! only through bastions; a delay proxy for WAN-like links; and [`faults`] to
//! freeze, stop, restart or re-key a running sshd.
//!
//! Tests talk to real peers, never mocks. A fixture that cannot start (sshd
//! not installed, no free port, no network namespaces) panics with the reason
//! and the fix, so a test that cannot run fails loudly instead of skipping.
//! Every fixture is bounded in time and torn down on `Drop`, which also runs
//! when a test panics.
//!
//! ```no_run
//! use std::process::Command;
//! use std::time::Duration;
//! use warren_testkit::{DelayProxy, Sshd, TcpEcho, Topology};
//!
//! // One sshd on 127.0.0.1; `ssh -F cfg test` logs in.
//! let sshd = Sshd::start();
//! let cfg = sshd.client_config();
//!
//! // host - bastion1 - bastion2 - target, each in its own namespace.
//! let topo = Topology::with_bastions(2);
//! let out = Command::new("ssh")
//!     .arg("-F").arg(topo.client_config())
//!     .args(["-J", &topo.jump_spec(), "target", "echo", "ok"])
//!     .output().unwrap();
//! topo.assert_isolated(); // the target is reachable only by hopping
//! topo.link_to("target").cut();
//!
//! // A 25 ms each way link in front of an echo server.
//! let echo = TcpEcho::start("127.0.0.1:0");
//! let wan = DelayProxy::start("127.0.0.1:0", echo.addr(), Duration::from_millis(25));
//! ```
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "test fixture: failing loudly with the reason is the point"
)]

mod delay;
mod echo;
pub mod faults;
mod netns;
mod serve;
mod sshd;
mod topology;

pub use delay::DelayProxy;
pub use echo::{HttpHello, TcpEcho, UnixEcho};
pub use netns::{Link, LinkEnd, Netns};
pub use sshd::{Sshd, SshdBuilder, keygen, local_user, sign};
pub use topology::{Hop, Topology, TopologyBuilder, assert_unreachable};
