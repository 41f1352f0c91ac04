//! What `warren tunnel` shows people: the foreground's timestamped lines
//! (with the next attempt's time while in backoff) and the status table's
//! colours.
//!
//! Design choice: colour only when stdout is a terminal and NO_COLOR is
//! unset or empty (no-color.org); the plain table is what scripts read.

use std::io::IsTerminal as _;
use std::sync::Arc;

use tokio::sync::broadcast;
use warren_core::tunnel::{State, StatusCell, TunnelStatus};

use super::{first_line, human_secs};

/// Foreground: one timestamped line on stderr per state change worth
/// knowing (connecting, up, waiting for the next attempt). `states` is
/// subscribed before the supervisor starts, so no change is missed, not
/// even one that a busy machine lets pass before this task runs.
pub async fn report_states(status: Arc<StatusCell>, mut states: broadcast::Receiver<State>) {
    loop {
        let state = match states.recv().await {
            Ok(s) => s,
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if let Some(line) = state_line(state, &status.snapshot()) {
            eprintln!("{} {line}", timestamp());
        }
    }
}

/// The line for `state`, if it gets one (a failure ends the process with
/// its own report).
fn state_line(state: State, s: &TunnelStatus) -> Option<String> {
    let name = &s.name;
    let line = match state {
        State::Connecting => format!("warren: tunnel {name} connecting to {}", s.destination),
        State::Up => {
            let forwards: Vec<&str> = s.forwards.iter().map(|f| f.spec.as_str()).collect();
            match s.reconnects {
                0 => format!("warren: tunnel {name} up: {}", forwards.join(", ")),
                n => format!("warren: tunnel {name} up again (reconnect {n})"),
            }
        }
        State::Backoff => {
            let error = s.last_error.as_deref().map(first_line).unwrap_or_default();
            let secs = s.next_attempt_secs.unwrap_or(0);
            let at = chrono::Local::now() + chrono::Duration::seconds(secs as i64);
            format!(
                "warren: tunnel {name} down: {error}; next attempt at {} (in {})",
                at.format("%H:%M:%S"),
                human_secs(secs)
            )
        }
        State::Failed | State::Stopped | State::NotResponding => return None,
    };
    Some(line)
}

/// Local time, to the second, as the foreground lines start.
pub fn timestamp() -> String {
    chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string()
}

/// Whether the status table is coloured.
pub fn colour_wanted() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// `text` (already padded) in `state`'s colour.
pub fn paint(state: State, text: &str, colour: bool) -> String {
    if !colour {
        return text.to_owned();
    }
    let code = match state {
        State::Up => "32",
        State::Connecting | State::Backoff => "33",
        State::Failed | State::NotResponding => "31",
        State::Stopped => "2",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// When the next attempt is, for the status table.
pub fn next_attempt(s: &TunnelStatus) -> String {
    match (s.state, s.next_attempt_secs) {
        (State::Backoff, Some(secs)) => format!("in {}", human_secs(secs)),
        _ => "-".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backoff() -> TunnelStatus {
        TunnelStatus {
            name: "db".into(),
            destination: "prod".into(),
            pid: 1,
            state: State::Backoff,
            uptime_secs: None,
            reconnects: 0,
            faults: 1,
            last_error: Some("connect to host prod port 22: Connection refused".into()),
            last_error_secs: Some(0),
            forwards: Vec::new(),
            tasks: None,
            next_attempt_secs: Some(30),
        }
    }

    #[test]
    fn backoff_line_names_the_error_and_the_next_attempt() {
        // Catches: nothing printed while a foreground tunnel waits.
        let line = state_line(State::Backoff, &backoff()).unwrap_or_default();
        assert!(
            line.contains("Connection refused; next attempt at "),
            "{line}"
        );
        assert!(line.ends_with("(in 30s)"), "{line}");
        assert_eq!(next_attempt(&backoff()), "in 30s");
    }

    #[test]
    fn colours_only_when_asked() {
        assert_eq!(paint(State::Up, "up ", false), "up ");
        assert_eq!(paint(State::Up, "up ", true), "\x1b[32mup \x1b[0m");
        assert_eq!(
            paint(State::Failed, "failed", true),
            "\x1b[31mfailed\x1b[0m"
        );
    }
}
