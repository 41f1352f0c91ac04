//! `warren demo` as a newcomer runs it: a fresh HOME, nothing configured,
//! no agent. Every step must be ok, nothing may be written under HOME, the
//! private temp dir must be gone afterwards and the agent socket in the
//! environment must never be touched; a step aimed at a closed port must
//! fail, say why, and make the exit status non-zero.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]

mod common;
use common::{text, warren};

use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::Output;

/// The table's rows, in order.
const STEPS: [&str; 8] = [
    "login (host key, publickey)",
    "exec: echo",
    "exec: 16 MiB of output",
    "-L  local forward",
    "-R  remote forward",
    "-D  SOCKS5 proxy",
    "-J  bastion -> target login",
    "-L  through the -J chain",
];

/// A finished `warren demo`, and the directories it was given.
struct Run {
    out: Output,
    home: tempfile::TempDir,
    tmp: tempfile::TempDir,
    agent: UnixListener,
    _agent_dir: tempfile::TempDir,
}

/// Runs `warren demo ARGS` with HOME and TMPDIR in fresh directories and
/// SSH_AUTH_SOCK naming a listening socket.
fn demo(args: &[&str]) -> Run {
    let home = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let agent_dir = tempfile::tempdir().unwrap();
    let agent_path = agent_dir.path().join("agent.sock");
    let agent = UnixListener::bind(&agent_path).unwrap();
    agent.set_nonblocking(true).unwrap();
    let out = warren()
        .arg("demo")
        .args(args)
        .env("HOME", home.path())
        .env("TMPDIR", tmp.path())
        .env("SSH_AUTH_SOCK", &agent_path)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("WARREN_LOG")
        .output()
        .unwrap();
    Run {
        out,
        home,
        tmp,
        agent,
        _agent_dir: agent_dir,
    }
}

/// (result, detail) of `step`'s row.
fn row<'a>(stdout: &'a str, step: &str) -> (&'a str, &'a str) {
    let line = stdout
        .lines()
        .find(|l| l.starts_with(step) && l[step.len()..].starts_with("  "))
        .unwrap_or_else(|| panic!("no row for {step:?} in:\n{stdout}"));
    let rest = line[step.len()..].trim_start();
    let (result, detail) = rest.split_once(' ').unwrap_or((rest, ""));
    (result, detail.trim())
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .collect()
}

fn assert_clean(run: &Run) {
    assert_eq!(
        entries(run.home.path()),
        Vec::<String>::new(),
        "nothing may be written under HOME"
    );
    assert_eq!(
        entries(run.tmp.path()),
        Vec::<String>::new(),
        "the private temp dir must be removed"
    );
    assert!(
        run.agent.accept().is_err(),
        "the agent named by SSH_AUTH_SOCK must not be contacted"
    );
}

#[test]
fn demo_runs_every_step_ok_on_a_fresh_home_and_leaves_nothing_behind() {
    let run = demo(&[]);
    let stdout = text(&run.out.stdout);
    let stderr = text(&run.out.stderr);
    assert_eq!(
        run.out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for step in STEPS {
        let (result, detail) = row(&stdout, step);
        assert_eq!(result, "ok", "{step}: {detail}\n{stdout}");
        let unit = if step.contains("login") || step == "exec: echo" {
            " ms"
        } else {
            " MB/s"
        };
        assert!(detail.contains(unit), "{step} measures{unit}: {detail}");
    }
    for forward in [
        "-L  local forward",
        "-R  remote forward",
        "-D  SOCKS5 proxy",
    ] {
        assert!(row(&stdout, forward).1.contains("round trip"), "{stdout}");
    }
    assert!(stdout.contains("all 8 steps ok"), "{stdout}");
    assert_clean(&run);
}

#[test]
fn demo_with_an_unreachable_socks_destination_fails_that_step_and_exits_1() {
    let run = demo(&["--unreachable", "socks"]);
    let stdout = text(&run.out.stdout);
    assert_eq!(
        run.out.status.code(),
        Some(1),
        "stdout:\n{stdout}\nstderr:\n{}",
        text(&run.out.stderr)
    );
    let (result, detail) = row(&stdout, "-D  SOCKS5 proxy");
    assert_eq!(result, "FAILED", "{stdout}");
    assert!(detail.contains("connection refused"), "{detail}");
    for step in STEPS.iter().filter(|s| !s.starts_with("-D")) {
        assert_eq!(row(&stdout, step).0, "ok", "{step}\n{stdout}");
    }
    assert!(stdout.contains("1 of 8 steps FAILED"), "{stdout}");
    assert_clean(&run);
}

#[test]
fn demo_with_an_unreachable_jump_target_reports_the_jump_and_what_was_not_run() {
    let run = demo(&["--unreachable", "jump"]);
    let stdout = text(&run.out.stdout);
    assert_eq!(run.out.status.code(), Some(1), "{stdout}");
    let (result, detail) = row(&stdout, "-J  bastion -> target login");
    assert_eq!(result, "FAILED", "{stdout}");
    assert!(detail.contains("bastion"), "names the jump host: {detail}");
    let (result, detail) = row(&stdout, "-L  through the -J chain");
    assert_eq!((result, detail), ("FAILED", "not run: the -J login failed"));
    assert_eq!(row(&stdout, "-L  local forward").0, "ok", "{stdout}");
    assert!(stdout.contains("2 of 8 steps FAILED"), "{stdout}");
    assert_clean(&run);
}

#[test]
fn demo_with_an_unreachable_local_forward_destination_says_the_connection_closed() {
    let run = demo(&["--unreachable", "local"]);
    let stdout = text(&run.out.stdout);
    assert_eq!(run.out.status.code(), Some(1), "{stdout}");
    let (result, detail) = row(&stdout, "-L  local forward");
    assert_eq!(result, "FAILED", "{stdout}");
    assert!(
        detail.contains("closed after 0 of 20 pings"),
        "says the forwarded connection closed: {detail}"
    );
    assert_eq!(row(&stdout, "-R  remote forward").0, "ok", "{stdout}");
    assert_clean(&run);
}
