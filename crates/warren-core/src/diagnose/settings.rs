//! The configuration stage: what ssh_config resolved for the destination,
//! and the settings that are risky or make trouble later.
//!
//! Design choice: judged from a plain [`Settings`] value (built from the
//! resolved host), so each rule is tested without files.

use std::path::{Path, PathBuf};
use std::time::Duration;

use warren_config::HostConfig;
use warren_wire::escape_str;

use super::Check;
use crate::session::{Hop, Route, StrictHostKeyChecking};

/// What ssh_config resolved, as the configuration checks need it.
#[derive(Debug, Clone)]
pub struct Settings {
    pub hostname: String,
    pub user: String,
    pub port: u16,
    pub identity_files: Vec<PathBuf>,
    pub identities_only: bool,
    /// The jump hosts, first dialled first, as `user@host:port`.
    pub jumps: Vec<String>,
    pub proxy_command: Option<String>,
    pub strict: StrictHostKeyChecking,
    pub user_known_hosts: Vec<PathBuf>,
    pub forward_agent: bool,
    /// LocalForward, RemoteForward and DynamicForward lines.
    pub forwards: usize,
    pub server_alive_interval: Option<Duration>,
    /// How many keys the agent holds, when asked (IdentitiesOnly no).
    pub agent_keys: Option<usize>,
    /// Where each shown setting came from (`~/.ssh/config:12`, `the
    /// command line`): the first line that set it.
    pub set_at: Vec<(&'static str, String)>,
}

/// The settings whose origin the checks name.
const TRACED: [&str; 13] = [
    "HostName",
    "User",
    "Port",
    "IdentityFile",
    "IdentitiesOnly",
    "ProxyJump",
    "ProxyCommand",
    "StrictHostKeyChecking",
    "UserKnownHostsFile",
    "ForwardAgent",
    "LocalForward",
    "RemoteForward",
    "DynamicForward",
];

impl Settings {
    /// From the resolved host and its route.
    pub fn of(host: &HostConfig, hop: &Hop) -> Settings {
        let opts = &hop.opts;
        Settings {
            hostname: opts.hostname.clone(),
            user: opts.user.clone(),
            port: opts.port,
            identity_files: opts.auth.identity_files.clone(),
            identities_only: opts.auth.identities_only,
            jumps: super::chain(hop)
                .split_last()
                .map_or(&[][..], |(_, before)| before)
                .iter()
                .map(|h| format!("{}@{}:{}", h.opts.user, h.opts.host, h.opts.port))
                .collect(),
            proxy_command: match &hop.route {
                Route::ProxyCommand(c) => Some(c.clone()),
                _ => None,
            },
            strict: opts.host_keys.strict,
            user_known_hosts: opts.host_keys.user_known_hosts.clone(),
            forward_agent: host.forward_agent(),
            forwards: host.local_forwards().len()
                + host.remote_forwards().len()
                + host.dynamic_forwards().len(),
            server_alive_interval: opts.server_alive_interval,
            agent_keys: None,
            set_at: TRACED
                .iter()
                .filter_map(|k| host.set_at(k).first().map(|at| (*k, at.to_string())))
                .collect(),
        }
    }

    /// ` (FILE:LINE)` for a setting that was read somewhere, else empty.
    fn at(&self, keyword: &str) -> String {
        self.set_at
            .iter()
            .find(|(k, _)| *k == keyword)
            .map_or_else(String::new, |(_, at)| format!(" ({at})"))
    }
}

/// sshd's default MaxAuthTries: the refusals it takes before hanging up.
pub const MAX_AUTH_TRIES: usize = 6;

/// The resolved settings, then one check per risky one.
pub fn checks(s: &Settings) -> Vec<Check> {
    let mut out = vec![Check::ok("config", summary(s))];
    if s.strict == StrictHostKeyChecking::No {
        out.push(
            Check::warn(
                "config StrictHostKeyChecking",
                format!(
                    "StrictHostKeyChecking no{}: an unknown host key is accepted without asking, \
                     so a man in the middle on the first connection goes unnoticed",
                    s.at("StrictHostKeyChecking")
                ),
            )
            .fix("remove `StrictHostKeyChecking no` (accept-new records new hosts and still refuses changed keys)"),
        );
    }
    if s.user_known_hosts
        .iter()
        .any(|p| p == Path::new("/dev/null"))
    {
        out.push(
            Check::warn(
                "config UserKnownHostsFile",
                format!(
                    "UserKnownHostsFile /dev/null{}: no host key is ever recorded, so every connection \
                     trusts whatever key the server shows",
                    s.at("UserKnownHostsFile")
                ),
            )
            .fix("remove `UserKnownHostsFile /dev/null` for this host"),
        );
    }
    if s.forward_agent {
        out.push(
            Check::warn(
                "config ForwardAgent",
                format!(
                    "ForwardAgent yes{}: whoever is root on {} can use your agent's keys while you are connected",
                    s.at("ForwardAgent"),
                    escape_str(&s.hostname)
                ),
            )
            .fix("reach further hosts with -J (ProxyJump) instead and set `ForwardAgent no`; if it must stay, add keys with `warren add -c` so each use is confirmed"),
        );
    }
    if let Some(n) = s
        .agent_keys
        .filter(|n| !s.identities_only && *n > MAX_AUTH_TRIES)
    {
        out.push(
            Check::warn(
                "config IdentitiesOnly",
                format!(
                    "IdentitiesOnly no and the agent holds {n} keys: each is offered before the IdentityFile keys, \
                     and sshd hangs up after {MAX_AUTH_TRIES} refusals (MaxAuthTries), so the right key may never be tried"
                ),
            )
            .fix("add `IdentitiesOnly yes` and `IdentityFile` with the key for this host to its ssh_config entry (or -o IdentitiesOnly=yes -i KEY)"),
        );
    }
    let long_lived = s.forwards > 0 || !s.jumps.is_empty();
    if long_lived && s.server_alive_interval.is_none() {
        out.push(
            Check::warn(
                "config ServerAliveInterval",
                "forwards or jump hosts but no ServerAliveInterval: a dead connection goes \
                 unnoticed until TCP gives up, which can take hours",
            )
            .fix("add `ServerAliveInterval 30` to this host in ssh_config"),
        );
    }
    out
}

fn summary(s: &Settings) -> String {
    let mut parts = vec![
        format!("HostName {}{}", escape_str(&s.hostname), s.at("HostName")),
        format!("User {}{}", escape_str(&s.user), s.at("User")),
        format!("Port {}{}", s.port, s.at("Port")),
    ];
    let keys: Vec<String> = s
        .identity_files
        .iter()
        .filter(|p| p.exists())
        .map(|p| escape_str(&p.display().to_string()).into_owned())
        .collect();
    if keys.is_empty() {
        parts.push("IdentityFile (none found)".to_owned());
    } else {
        parts.push(format!(
            "IdentityFile {}{}",
            keys.join(", "),
            s.at("IdentityFile")
        ));
    }
    if s.identities_only {
        parts.push(format!("IdentitiesOnly yes{}", s.at("IdentitiesOnly")));
    }
    if !s.jumps.is_empty() {
        parts.push(format!(
            "ProxyJump {}{}",
            escape_str(&s.jumps.join(",")),
            s.at("ProxyJump")
        ));
    }
    if let Some(c) = &s.proxy_command {
        parts.push(format!(
            "ProxyCommand {}{}",
            escape_str(c),
            s.at("ProxyCommand")
        ));
    }
    for k in ["LocalForward", "RemoteForward", "DynamicForward"] {
        let at = s.at(k);
        if !at.is_empty() {
            parts.push(format!("{k}{at}"));
        }
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain() -> Settings {
        Settings {
            hostname: "example.com".into(),
            user: "bob".into(),
            port: 22,
            identity_files: vec![],
            identities_only: false,
            jumps: vec![],
            proxy_command: None,
            strict: StrictHostKeyChecking::Ask,
            user_known_hosts: vec![PathBuf::from("/home/bob/.ssh/known_hosts")],
            forward_agent: false,
            forwards: 0,
            server_alive_interval: None,
            agent_keys: None,
            set_at: Vec::new(),
        }
    }

    fn names(s: &Settings) -> Vec<String> {
        checks(s).into_iter().map(|c| c.name).collect()
    }

    /// A change to the plain settings, and the checks it should give.
    type Case = (fn(&mut Settings), Vec<&'static str>);

    #[test]
    fn risky_settings_table() {
        let cases: Vec<Case> = vec![
            (|_| {}, vec!["config"]),
            (
                |s| s.strict = StrictHostKeyChecking::No,
                vec!["config", "config StrictHostKeyChecking"],
            ),
            (
                |s| s.strict = StrictHostKeyChecking::AcceptNew,
                vec!["config"],
            ),
            (
                |s| s.user_known_hosts = vec!["/dev/null".into()],
                vec!["config", "config UserKnownHostsFile"],
            ),
            (
                |s| s.forward_agent = true,
                vec!["config", "config ForwardAgent"],
            ),
            (
                |s| s.jumps = vec!["u@b:22".into()],
                vec!["config", "config ServerAliveInterval"],
            ),
            (
                |s| s.forwards = 1,
                vec!["config", "config ServerAliveInterval"],
            ),
            (
                |s| {
                    s.forwards = 1;
                    s.server_alive_interval = Some(Duration::from_secs(30));
                },
                vec!["config"],
            ),
            (|s| s.agent_keys = Some(6), vec!["config"]),
            (
                |s| s.agent_keys = Some(7),
                vec!["config", "config IdentitiesOnly"],
            ),
            (
                |s| {
                    s.agent_keys = Some(7);
                    s.identities_only = true;
                },
                vec!["config"],
            ),
        ];
        for (i, (change, want)) in cases.into_iter().enumerate() {
            let mut s = plain();
            change(&mut s);
            assert_eq!(names(&s), want, "case {i}");
        }
    }

    /// Each setting names the line it came from.
    #[test]
    fn summary_names_where_each_setting_came_from() {
        let mut s = plain();
        s.set_at = vec![
            ("HostName", "/home/u/.ssh/config:3".to_owned()),
            ("Port", "the command line".to_owned()),
            ("LocalForward", "/home/u/.ssh/config:5".to_owned()),
        ];
        s.forward_agent = true;
        let c = checks(&s);
        assert_eq!(
            c[0].summary,
            "HostName example.com (/home/u/.ssh/config:3), User bob, Port 22 (the command line), \
             IdentityFile (none found), LocalForward (/home/u/.ssh/config:5)"
        );
        s.set_at
            .push(("ForwardAgent", "/etc/ssh/ssh_config:9".to_owned()));
        let agent = checks(&s)
            .into_iter()
            .find(|c| c.name == "config ForwardAgent");
        assert!(
            agent.is_some_and(|c| c
                .summary
                .starts_with("ForwardAgent yes (/etc/ssh/ssh_config:9):")),
            "the risky setting names its line"
        );
    }

    #[test]
    fn summary_names_what_was_resolved() {
        let mut s = plain();
        s.jumps = vec!["u@bastion:22".into()];
        s.identities_only = true;
        let c = &checks(&s)[0];
        assert_eq!(
            c.summary,
            "HostName example.com, User bob, Port 22, IdentityFile (none found), IdentitiesOnly yes, ProxyJump u@bastion:22"
        );
    }
}
