//! What `warren tunnel` shows people: timestamped foreground lines with the
//! next attempt's time while in backoff, and `tunnel status` with the next
//! attempt and colours on a terminal (NO_COLOR honoured).
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]

mod common;
use common::{free_port, text, warren};

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;
use warren_core::tunnel::{State, TunnelStatus};
use warren_testkit::Sshd;

/// A foreground `warren tunnel up` whose server port is closed, so it
/// waits in a 30 s backoff; killed on drop.
struct Waiting {
    child: Child,
    dir: TempDir,
}

impl Waiting {
    fn start(sshd: &Sshd) -> Waiting {
        let dir = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(dir.path().join("stderr")).unwrap();
        let closed = free_port().to_string();
        let forward = format!("{}:127.0.0.1:1", free_port());
        let child = warren()
            .env("XDG_RUNTIME_DIR", dir.path())
            .args(["tunnel", "up", "--name", "nowhere"])
            .args(["--backoff-initial", "30s", "--backoff-max", "30s", "-F"])
            .arg(sshd.client_config())
            .args(["-o", &format!("Port={closed}"), "-L", &forward, "test"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Waiting { child, dir }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }

    fn wait_stderr(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let err = self.stderr();
            if err.contains(text) {
                return err;
            }
            assert!(Instant::now() < deadline, "never saw {text:?} in:\n{err}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn status(&self, extra_env: &[(&str, &str)], args: &[&str]) -> String {
        let mut cmd = warren();
        cmd.env("XDG_RUNTIME_DIR", self.dir.path())
            .env_remove("NO_COLOR")
            .args(["tunnel", "status"])
            .args(args);
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    }

    /// `tunnel status` with stdout on a terminal (util-linux `script`).
    fn status_on_a_terminal(&self, no_color: bool) -> String {
        let bin = env!("CARGO_BIN_EXE_warren");
        let mut cmd = Command::new("script");
        cmd.args(["-qec", &format!("{bin} tunnel status"), "/dev/null"])
            .env("XDG_RUNTIME_DIR", self.dir.path())
            .env_remove("NO_COLOR")
            .stdin(Stdio::null());
        if no_color {
            cmd.env("NO_COLOR", "1");
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `YYYY-MM-DD HH:MM:SS ` at the start of `line`.
fn starts_with_timestamp(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() > 20
        && b.iter().take(19).enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b' ',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        })
        && b[19] == b' '
}

#[test]
fn foreground_lines_are_timestamped_and_say_when_the_next_attempt_is() {
    // Catches: no line at all while a foreground tunnel waits in backoff,
    // and lines without a time.
    let sshd = Sshd::start();
    let t = Waiting::start(&sshd);
    let err = t.wait_stderr("next attempt at");
    let line = err.lines().find(|l| l.contains("next attempt at")).unwrap();
    assert!(starts_with_timestamp(line), "{line}");
    assert!(
        line.contains("warren: tunnel nowhere down: ") && line.contains("Connection refused"),
        "{line}"
    );
    // The delay has jitter: up to the 30 s asked for.
    assert!(line.contains("(in ") && line.ends_with("s)"), "{line}");
    let connecting = err.lines().find(|l| l.contains("connecting to")).unwrap();
    assert!(starts_with_timestamp(connecting), "{connecting}");
}

#[test]
fn status_shows_the_next_attempt_and_colours_only_on_a_terminal() {
    // Catches: status without the next attempt's time, and no colour.
    let sshd = Sshd::start();
    let t = Waiting::start(&sshd);
    t.wait_stderr("next attempt at");
    let json = t.status(&[], &["--json"]);
    let all: Vec<TunnelStatus> = serde_json::from_str(&json).unwrap();
    assert_eq!(all[0].state, State::Backoff, "{json}");
    let secs = all[0].next_attempt_secs.unwrap_or_else(|| panic!("{json}"));
    assert!((1..=30).contains(&secs), "{json}");
    let plain = t.status(&[], &[]);
    assert!(plain.contains("NEXT ATTEMPT"), "{plain}");
    let row = plain.lines().find(|l| l.starts_with("nowhere")).unwrap();
    assert!(row.contains("backoff") && row.contains(" in "), "{plain}");
    assert!(!plain.contains('\x1b'), "colour in a pipe: {plain:?}");
    let tty = t.status_on_a_terminal(false);
    assert!(tty.contains("\x1b[33mbackoff"), "{tty:?}");
    let no_color = t.status_on_a_terminal(true);
    assert!(no_color.contains("backoff"), "{no_color:?}");
    assert!(!no_color.contains('\x1b'), "NO_COLOR ignored: {no_color:?}");
}
