//! What a server is told: where to listen, its keys, who may log in and
//! what they may do, and the limits that protect it. Plain values with
//! sshd's defaults; the CLI fills them from flags.

use std::net::SocketAddr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use russh::keys::PrivateKey;

use crate::penalties::{NetBlockSize, PenaltyConfig};
use crate::startups::MaxStartups;

/// Where the authorized keys come from.
#[derive(Debug, Clone)]
pub enum AuthorizedKeys {
    /// A file, read again at every login (as sshd does).
    File(PathBuf),
    /// Lines held in memory (throwaway servers).
    Text(String),
}

/// The account sessions run as: the user running the server.
#[derive(Debug, Clone)]
pub struct Login {
    pub user: String,
    pub home: PathBuf,
    pub shell: PathBuf,
}

impl Login {
    /// The invoking user, from the password database (`/etc/passwd`),
    /// falling back to `$USER`, `$HOME` and `$SHELL`.
    pub fn current() -> Login {
        let uid = rustix::process::getuid().as_raw();
        let from_passwd = std::fs::read("/etc/passwd")
            .ok()
            .and_then(|bytes| passwd_entry(&bytes, uid));
        if let Some(login) = from_passwd {
            return login;
        }
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Login {
            user: env("USER")
                .or_else(|| env("LOGNAME"))
                .unwrap_or_else(|| uid.to_string()),
            home: env("HOME").map_or_else(|| PathBuf::from("/"), PathBuf::from),
            shell: env("SHELL").map_or_else(|| PathBuf::from("/bin/sh"), PathBuf::from),
        }
    }
}

/// The `/etc/passwd` line of `uid`: name:pw:uid:gid:gecos:home:shell.
/// Read as bytes, line by line: a Latin-1 GECOS field (or any other line
/// that is not UTF-8) must not hide the account.
fn passwd_entry(bytes: &[u8], uid: u32) -> Option<Login> {
    bytes.split(|&b| b == b'\n').find_map(|line| {
        let f: Vec<&[u8]> = line.split(|&b| b == b':').collect();
        if f.len() < 7 || std::str::from_utf8(f[2]).ok()?.parse::<u32>().ok()? != uid {
            return None;
        }
        let path = |field: &[u8]| PathBuf::from(std::ffi::OsStr::from_bytes(field));
        let shell = if f[6].is_empty() {
            b"/bin/sh".as_slice()
        } else {
            f[6]
        };
        Some(Login {
            user: std::str::from_utf8(f[0]).ok()?.to_owned(),
            home: path(f[5]),
            shell: path(shell),
        })
    })
}

/// Everything a [`crate::Server`] needs; [`ServerConfig::new`] gives sshd's
/// defaults for the rest.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub host_keys: Vec<PrivateKey>,
    pub authorized_keys: AuthorizedKeys,
    pub login: Login,
    /// Remote forwards may bind non-loopback addresses.
    pub gateway_ports: bool,
    pub allow_tcp_forwarding: bool,
    pub allow_streamlocal_forwarding: bool,
    pub allow_agent_forwarding: bool,
    /// Apply `environment=` options of authorized_keys.
    pub permit_user_environment: bool,
    /// Patterns of the variables a client may set (AcceptEnv).
    pub accept_env: Vec<String>,
    /// Serve the `sftp` subsystem.
    pub sftp: bool,
    /// Failed authentication attempts before the connection is dropped.
    pub max_auth_tries: u32,
    /// Time a connection has to authenticate.
    pub login_grace_time: Duration,
    /// Connections that have not authenticated yet: random early drop
    /// from `start`, all dropped at `full` (sshd's MaxStartups).
    pub max_startups: MaxStartups,
    /// Penalties that refuse new connections from a source that keeps
    /// ending its connections badly (sshd's PerSourcePenalties).
    pub per_source_penalties: PenaltyConfig,
    /// Addresses, patterns and CIDR blocks never penalised.
    pub per_source_penalty_exempt_list: Option<String>,
    /// Leading address bits that make one source for penalties.
    pub per_source_net_block_size: NetBlockSize,
    /// Session channels per connection, at most.
    pub max_sessions: usize,
    /// Drop a connection when nothing was received for this long.
    pub idle_timeout: Option<Duration>,
    /// On shutdown, how long running sessions may go on before they are
    /// cut.
    pub shutdown_grace: Duration,
    /// The SSH channel window (bytes in flight per channel).
    pub window_size: u32,
}

impl ServerConfig {
    /// A config with sshd's defaults, running sessions as the invoking user.
    pub fn new(
        listen: SocketAddr,
        host_keys: Vec<PrivateKey>,
        authorized_keys: AuthorizedKeys,
    ) -> ServerConfig {
        ServerConfig {
            listen,
            host_keys,
            authorized_keys,
            login: Login::current(),
            gateway_ports: false,
            allow_tcp_forwarding: true,
            allow_streamlocal_forwarding: true,
            allow_agent_forwarding: true,
            permit_user_environment: false,
            accept_env: vec!["LANG".into(), "LC_*".into()],
            sftp: true,
            max_auth_tries: 6,
            login_grace_time: Duration::from_secs(120),
            max_startups: MaxStartups::default(),
            per_source_penalties: PenaltyConfig::default(),
            per_source_penalty_exempt_list: None,
            per_source_net_block_size: NetBlockSize::default(),
            max_sessions: 10,
            idle_timeout: None,
            shutdown_grace: Duration::from_secs(10),
            window_size: 16 * 1024 * 1024,
        }
    }

    /// `~/.ssh/authorized_keys` of the login user.
    pub fn default_authorized_keys(login: &Login) -> PathBuf {
        Path::new(&login.home).join(".ssh").join("authorized_keys")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lines() {
        // The GECOS field of an earlier line is Latin-1: it used to make the
        // whole file unreadable, and serve fell back to $HOME and $SHELL.
        let text: &[u8] = b"ren\xe9:x:7:7:Ren\xe9:/home/r:/bin/sh\n\
            root:x:0:0:root:/root:/bin/bash\nbob:x:1000:1000::/home/bob:\nbad line\n";
        let root = passwd_entry(text, 0).unwrap();
        assert_eq!(
            (root.user.as_str(), root.home.to_str(), root.shell.to_str()),
            ("root", Some("/root"), Some("/bin/bash"))
        );
        let bob = passwd_entry(text, 1000).unwrap();
        assert_eq!(bob.shell, PathBuf::from("/bin/sh"));
        assert!(passwd_entry(text, 5).is_none());
    }
}
