//! The `ssh>` command line (`~C`): add or cancel forwards on the live
//! connection, with ssh's commands and ssh's replies.
//!
//! Design choice: parsing is separate from running ([`Command::parse`] is
//! pure and table-tested); running goes through the session's
//! [`Forwards`], the same registry `-O forward` and `~#` use.

use std::path::PathBuf;

use warren_config::{Forward, ForwardEndpoint};

use crate::forward::manage::{Forwards, describe};
use crate::forward::{Endpoint, ForwardSpec};

/// ssh's help for the `ssh>` prompt (what `?` prints).
pub const HELP: &str = "Commands:\r\n      \
    -L[bind_address:]port:host:hostport    Request local forward\r\n      \
    -R[bind_address:]port:host:hostport    Request remote forward\r\n      \
    -D[bind_address:]port                  Request dynamic forward\r\n      \
    -KL[bind_address:]port                 Cancel local forward\r\n      \
    -KR[bind_address:]port                 Cancel remote forward\r\n      \
    -KD[bind_address:]port                 Cancel dynamic forward\r\n";

/// Which kind of forward a command names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Local,
    Remote,
    Dynamic,
}

/// One parsed `ssh>` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Empty line: nothing to do.
    Nothing,
    Help,
    Add(ForwardSpec),
    Cancel {
        kind: Kind,
        listen: Endpoint,
    },
}

impl Command {
    /// Parses a line as ssh's `process_cmdline` does; the error is ssh's
    /// message for it.
    pub fn parse(line: &[u8]) -> Result<Command, &'static str> {
        let line = std::str::from_utf8(line).map_err(|_| "Invalid command.")?;
        let line = line.trim_start();
        if line.is_empty() {
            return Ok(Command::Nothing);
        }
        if line == "?" || line == "-h" || line == "help" {
            return Ok(Command::Help);
        }
        let Some(rest) = line.strip_prefix('-') else {
            return Err("Invalid command.");
        };
        let (cancel, rest) = match rest.strip_prefix('K') {
            Some(r) => (true, r),
            None => (false, rest),
        };
        let kind = match rest.as_bytes().first() {
            Some(b'L') => Kind::Local,
            Some(b'R') => Kind::Remote,
            Some(b'D') => Kind::Dynamic,
            _ => return Err("Invalid command."),
        };
        let spec = rest[1..].trim();
        if cancel {
            // ssh parses a cancel as a dynamic spec: `[bind_address:]port`.
            let f = Forward::parse_typed(spec, true, false)
                .ok_or("Bad forwarding close specification.")?;
            return Ok(Command::Cancel {
                kind,
                listen: endpoint(&f.listen),
            });
        }
        let f = match kind {
            Kind::Local => Forward::parse_typed(spec, false, false),
            Kind::Dynamic => Forward::parse_typed(spec, true, false),
            Kind::Remote => Forward::parse_typed(spec, false, true)
                .or_else(|| Forward::parse_typed(spec, true, true)),
        }
        .ok_or("Bad forwarding specification.")?;
        Ok(Command::Add(spec_of(kind, &f)))
    }
}

/// Runs one `ssh>` line on `forwards`; returns what to print (ssh's words).
pub async fn run(line: &[u8], forwards: Option<&Forwards>) -> String {
    let command = match Command::parse(line) {
        Ok(c) => c,
        Err(message) => return format!("{message}\r\n"),
    };
    let Some(forwards) = forwards else {
        return "Port forwarding is not available on this session.\r\n".into();
    };
    match command {
        Command::Nothing => String::new(),
        Command::Help => HELP.into(),
        Command::Add(spec) => add(forwards, &spec).await,
        Command::Cancel { kind, listen } => cancel(forwards, kind, &listen).await,
    }
}

async fn add(forwards: &Forwards, spec: &ForwardSpec) -> String {
    match forwards.add(spec).await {
        Ok(added) => match (added.allocated_port, spec) {
            (Some(port), ForwardSpec::Remote { connect, .. }) => format!(
                "Forwarding port.\r\nAllocated port {port} for remote forward to {}\r\n",
                describe(connect)
            ),
            _ => "Forwarding port.\r\n".into(),
        },
        Err(e) => {
            tracing::debug!(%spec, "forward from the command line failed: {}", warren_wire::Chain(&e));
            format!(
                "Port forwarding failed: {}\r\n",
                warren_wire::escape(warren_wire::Chain(&e).to_string().as_bytes())
            )
        }
    }
}

async fn cancel(forwards: &Forwards, kind: Kind, listen: &Endpoint) -> String {
    let found = forwards
        .specs()
        .into_iter()
        .find(|s| cancels(kind, listen, s));
    let Some(spec) = found else {
        return "Unknown port forwarding.\r\n".into();
    };
    match forwards.remove(&spec).await {
        Ok(()) => "Canceled forwarding.\r\n".into(),
        Err(e) => format!(
            "Unknown port forwarding: {}\r\n",
            warren_wire::escape(warren_wire::Chain(&e).to_string().as_bytes())
        ),
    }
}

/// Whether `-K<kind> listen` names `spec`: the same kind and port (or
/// path), and the same bind address when one was given.
fn cancels(kind: Kind, listen: &Endpoint, spec: &ForwardSpec) -> bool {
    let (spec_kind, spec_listen) = match spec {
        ForwardSpec::Local { listen, .. } => (Kind::Local, listen),
        ForwardSpec::Dynamic { listen } => (Kind::Dynamic, listen),
        ForwardSpec::Remote { listen, .. } => (Kind::Remote, listen),
    };
    if spec_kind != kind {
        return false;
    }
    match (listen, spec_listen) {
        (Endpoint::Tcp { host, port }, Endpoint::Tcp { host: h, port: p }) => {
            port == p && (host.is_none() || host == h)
        }
        (Endpoint::Unix(a), Endpoint::Unix(b)) => a == b,
        _ => false,
    }
}

fn spec_of(kind: Kind, f: &Forward) -> ForwardSpec {
    let listen = endpoint(&f.listen);
    match kind {
        Kind::Local => ForwardSpec::Local {
            listen,
            connect: endpoint(&f.connect),
        },
        Kind::Dynamic => ForwardSpec::Dynamic { listen },
        Kind::Remote => ForwardSpec::Remote {
            listen,
            connect: (!f.is_dynamic()).then(|| endpoint(&f.connect)),
        },
    }
}

fn endpoint(e: &ForwardEndpoint) -> Endpoint {
    match e {
        ForwardEndpoint::Tcp { host, port } => Endpoint::Tcp {
            host: host.clone(),
            port: *port,
        },
        ForwardEndpoint::Unix(path) => Endpoint::Unix(PathBuf::from(path)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: Option<&str>, port: u16) -> Endpoint {
        Endpoint::Tcp {
            host: host.map(str::to_owned),
            port,
        }
    }

    #[test]
    fn parses_ssh_command_lines() {
        let cases: &[(&str, Result<Command, &str>)] = &[
            ("", Ok(Command::Nothing)),
            ("?", Ok(Command::Help)),
            (
                "-L 8080:db:5432",
                Ok(Command::Add(ForwardSpec::Local {
                    listen: tcp(None, 8080),
                    connect: tcp(Some("db"), 5432),
                })),
            ),
            (
                " -L127.0.0.1:8080:db:5432",
                Ok(Command::Add(ForwardSpec::Local {
                    listen: tcp(Some("127.0.0.1"), 8080),
                    connect: tcp(Some("db"), 5432),
                })),
            ),
            (
                "-D 1080",
                Ok(Command::Add(ForwardSpec::Dynamic {
                    listen: tcp(None, 1080),
                })),
            ),
            (
                "-R 9000",
                Ok(Command::Add(ForwardSpec::Remote {
                    listen: tcp(None, 9000),
                    connect: None,
                })),
            ),
            (
                "-R 9000:localhost:80",
                Ok(Command::Add(ForwardSpec::Remote {
                    listen: tcp(None, 9000),
                    connect: Some(tcp(Some("localhost"), 80)),
                })),
            ),
            (
                "-KL 8080",
                Ok(Command::Cancel {
                    kind: Kind::Local,
                    listen: tcp(None, 8080),
                }),
            ),
            (
                "-KR localhost:9000",
                Ok(Command::Cancel {
                    kind: Kind::Remote,
                    listen: tcp(Some("localhost"), 9000),
                }),
            ),
            ("-L 8080", Err("Bad forwarding specification.")),
            ("-KD 1:2:3", Err("Bad forwarding close specification.")),
            ("-X", Err("Invalid command.")),
            ("ls", Err("Invalid command.")),
        ];
        for (line, want) in cases {
            assert_eq!(&Command::parse(line.as_bytes()), want, "{line:?}");
        }
    }

    #[test]
    fn cancel_matches_kind_port_and_given_bind_address() {
        let spec = ForwardSpec::Local {
            listen: tcp(Some("127.0.0.1"), 8080),
            connect: tcp(Some("db"), 1),
        };
        assert!(cancels(Kind::Local, &tcp(None, 8080), &spec));
        assert!(cancels(Kind::Local, &tcp(Some("127.0.0.1"), 8080), &spec));
        assert!(!cancels(Kind::Local, &tcp(Some("::1"), 8080), &spec));
        assert!(!cancels(Kind::Dynamic, &tcp(None, 8080), &spec));
        assert!(!cancels(Kind::Local, &tcp(None, 8081), &spec));
    }
}
