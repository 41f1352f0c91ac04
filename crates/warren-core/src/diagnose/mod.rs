//! `warren doctor`: the connection run stage by stage, each stage a
//! [`Check`] with its status, what was found, the one thing that fixes
//! it, and how long it took.
//!
//! Design choice: checks are plain values (no printing here), produced in
//! order and handed to the caller as they finish, so the terminal shows
//! progress and a script gets the same list as JSON. A stage that fails
//! stops only what depends on it; the host key gates authentication: a
//! host whose key is not verified is never logged in to.

mod behind;
mod denial;
mod files;
mod fix;
mod forwards;
mod login;
mod network;
mod remote;
mod settings;
mod speed;

use std::time::{Duration, Instant};

use serde::Serialize;

pub use files::{FileKind, LocalFile, judge_file};
pub use fix::{RemoteFixError, run_remote_fix};
pub use settings::Settings;

use crate::forward::ForwardSpec;
use crate::session::{Hop, Route};

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
    /// Not run: something it depends on failed, or it does not apply.
    Skip,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked: `config`, `files`, `HOST tcp ADDR`, `HOST host key`, ...
    pub name: String,
    pub status: Status,
    /// What was found, one line; peer and file text escaped.
    pub summary: String,
    /// The command or setting that fixes a problem.
    pub fix: Option<String>,
    /// How long the check took, in milliseconds.
    pub ms: u64,
    /// The local change that fixes it, for `--fix` (not in the JSON).
    #[serde(skip)]
    pub action: Option<Action>,
}

/// A local fix `--fix` can apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `chmod MODE PATH`.
    Chmod { path: std::path::PathBuf, mode: u32 },
    /// `chown UID PATH` (only offered when we are root).
    Chown { path: std::path::PathBuf, uid: u32 },
    /// A command run on the destination over a new session (the remote
    /// `chmod` that StrictModes asks for); one line, for `sh -c`.
    Remote { command: String },
    /// Remove `host`'s lines from the known_hosts `file` (a changed key;
    /// `fingerprint` is what the server shows now).
    RemoveKnownHost {
        file: std::path::PathBuf,
        host: String,
        fingerprint: String,
    },
}

impl Check {
    pub fn new(name: impl Into<String>, status: Status, summary: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            status,
            summary: summary.into(),
            fix: None,
            ms: 0,
            action: None,
        }
    }

    pub fn ok(name: impl Into<String>, summary: impl Into<String>) -> Check {
        Check::new(name, Status::Ok, summary)
    }

    pub fn warn(name: impl Into<String>, summary: impl Into<String>) -> Check {
        Check::new(name, Status::Warn, summary)
    }

    pub fn fail(name: impl Into<String>, summary: impl Into<String>) -> Check {
        Check::new(name, Status::Fail, summary)
    }

    pub fn skip(name: impl Into<String>, summary: impl Into<String>) -> Check {
        Check::new(name, Status::Skip, summary)
    }

    pub fn fix(mut self, fix: impl Into<String>) -> Check {
        self.fix = Some(fix.into());
        self
    }

    pub fn fix_opt(mut self, fix: Option<String>) -> Check {
        self.fix = fix;
        self
    }

    pub fn action(mut self, action: Action) -> Check {
        self.action = Some(action);
        self
    }

    pub fn fix_action(mut self, action: Option<Action>) -> Check {
        self.action = action;
        self
    }

    pub fn took(mut self, elapsed: Duration) -> Check {
        self.ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        self
    }

    pub fn since(self, start: Instant) -> Check {
        self.took(start.elapsed())
    }

    /// Whether this check passes: ok or skipped.
    pub fn passed(&self) -> bool {
        matches!(self.status, Status::Ok | Status::Skip)
    }
}

/// Every finding for one destination: the JSON contract of `--json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub destination: String,
    /// True when every check is ok or skipped.
    pub ok: bool,
    pub checks: Vec<Check>,
}

impl Report {
    pub fn new(destination: &str, checks: Vec<Check>) -> Report {
        Report {
            destination: destination.to_owned(),
            ok: checks.iter().all(Check::passed),
            checks,
        }
    }
}

/// What the doctor examines.
pub struct Inputs {
    /// As typed, for the report and the fixes that name it.
    pub destination: String,
    /// The destination and its route, as `warren ssh` would use them.
    pub hop: Hop,
    /// What ssh_config said, for the configuration checks.
    pub settings: Settings,
    /// The local files to check (keys, config, known_hosts, ~/.ssh).
    pub files: Vec<LocalFile>,
    /// The destination's forwards, tried on its session.
    pub forwards: Vec<ForwardSpec>,
    /// `--speed`: measure the round trip and an 8 MiB download.
    pub speed: bool,
}

/// Collects checks and passes each on as it is made.
pub struct Sink<'a> {
    checks: Vec<Check>,
    each: &'a mut (dyn FnMut(&Check) + Send),
}

impl Sink<'_> {
    fn push(&mut self, check: Check) {
        (self.each)(&check);
        self.checks.push(check);
    }
}

/// Runs every check for `inputs`, calling `each` as each one finishes.
pub async fn run(mut inputs: Inputs, each: &mut (dyn FnMut(&Check) + Send)) -> Report {
    let mut sink = Sink {
        checks: Vec::new(),
        each,
    };
    if !inputs.settings.identities_only {
        inputs.settings.agent_keys = agent_keys(&inputs.hop).await;
    }
    for check in settings::checks(&inputs.settings) {
        sink.push(check);
    }
    for check in files::checks(&inputs.files) {
        sink.push(check);
    }
    login::run_chain(&inputs, &mut sink).await;
    Report::new(&inputs.destination, sink.checks)
}

/// How many keys the destination's agent holds; `None` when there is no
/// agent or it does not answer in time.
async fn agent_keys(hop: &Hop) -> Option<usize> {
    let sock = hop.opts.auth.identity_agent.as_ref()?;
    let listed = tokio::time::timeout(Duration::from_secs(5), async {
        let mut agent = crate::agent::AgentClient::connect(sock).await?;
        agent.list().await
    })
    .await;
    match listed {
        Ok(Ok(keys)) => Some(keys.len()),
        _ => None,
    }
}

/// The hops from the first one dialled to the destination.
fn chain(hop: &Hop) -> Vec<&Hop> {
    let mut out = vec![hop];
    let mut at = hop;
    while let Route::Jump(via) = &at.route {
        out.push(via);
        at = via;
    }
    out.reverse();
    out
}

/// `text` quoted for a POSIX shell when it needs it, for fixes the user
/// pastes.
pub fn shell_quote(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:@%,=~".contains(&b));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_ok_only_when_every_check_passes() {
        let ok = Report::new("h", vec![Check::ok("a", "x"), Check::skip("b", "y")]);
        assert!(ok.ok);
        let warn = Report::new("h", vec![Check::ok("a", "x"), Check::warn("b", "y")]);
        assert!(!warn.ok);
        let fail = Report::new("h", vec![Check::fail("a", "x")]);
        assert!(!fail.ok);
    }

    #[test]
    fn json_contract() {
        let r = Report::new(
            "bob@h",
            vec![
                Check::fail("h tcp 127.0.0.1:22", "refused")
                    .fix("start sshd")
                    .took(Duration::from_millis(12)),
            ],
        );
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"destination": "bob@h", "ok": false, "checks": [
                {"name": "h tcp 127.0.0.1:22", "status": "fail", "summary": "refused",
                 "fix": "start sshd", "ms": 12}]})
        );
        let v = serde_json::to_value(Check::skip("a", "b")).unwrap();
        assert_eq!(v["fix"], serde_json::Value::Null);
        assert_eq!(v["status"], "skip");
    }

    #[test]
    fn shell_quoting() {
        let cases = [
            ("/home/u/.ssh/id_ed25519", "/home/u/.ssh/id_ed25519"),
            ("/tmp/a b", "'/tmp/a b'"),
            ("it's", "'it'\\''s'"),
            ("", "''"),
            ("[127.0.0.1]:2222", "'[127.0.0.1]:2222'"),
        ];
        for (input, want) in cases {
            assert_eq!(shell_quote(input), want, "{input}");
        }
    }
}
