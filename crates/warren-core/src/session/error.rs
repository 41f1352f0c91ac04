//! Why a connection failed, in words that name the host, the file or the
//! algorithm lists involved, and whether trying again could help.
//!
//! Design choice: a message carries its own context and leaves the cause to
//! `source()` (pure wrappers are `transparent`), so a report that walks the
//! chain says each thing once.

use std::io;

use crate::algorithms::UnsupportedAlgorithms;

/// A connection that did not come up, or a session that broke.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("Could not resolve hostname {host}: {reason}")]
    Resolve { host: String, reason: String },

    #[error("connect to host {host} port {port}: {cause}")]
    Connect {
        host: String,
        port: u16,
        cause: ConnectCause,
    },

    #[error(transparent)]
    HostKey(#[from] HostKeyError),

    #[error(transparent)]
    Auth(#[from] AuthError),

    #[error(transparent)]
    Algorithms(#[from] UnsupportedAlgorithms),

    #[error(
        "Unable to negotiate with {host} port {port}: no matching {kind} found. Their offer: {theirs} (ours: {ours})"
    )]
    NoCommonAlgorithm {
        host: String,
        port: u16,
        kind: String,
        ours: String,
        theirs: String,
    },

    /// An ssh_config keyword set to something warren does not do
    /// (`warren_config::KEYWORDS` lists each keyword's status).
    #[error("{keyword} is not supported")]
    Unsupported { keyword: &'static str },

    #[error("jump host {via} could not open a connection to {target}")]
    Jump {
        via: String,
        target: String,
        source: Box<russh::Error>,
    },

    #[error("ProxyCommand \"{command}\" could not be started")]
    ProxyCommand { command: String, source: io::Error },

    #[error("Connection to {host} port {port} closed")]
    Protocol {
        host: String,
        port: u16,
        source: russh::Error,
    },

    #[error(transparent)]
    Russh(#[from] russh::Error),

    /// Writing the remote command's output here failed: a closed pipe
    /// (`| head -1`) ends the session without a word, as with ssh.
    #[error("cannot write to {stream}")]
    Output {
        stream: &'static str,
        #[source]
        source: io::Error,
    },

    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Why a TCP connect failed, in OpenSSH's words.
#[derive(Debug, thiserror::Error)]
pub enum ConnectCause {
    #[error("Connection refused")]
    Refused,
    #[error("Connection timed out")]
    TimedOut,
    #[error("Connection timed out during banner exchange")]
    BannerTimeout,
    #[error("No route to host")]
    NoRoute,
    #[error("Network is unreachable")]
    Unreachable,
    #[error("{0}")]
    Other(io::Error),
}

impl ConnectCause {
    pub fn from_io(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::ConnectionRefused => ConnectCause::Refused,
            io::ErrorKind::TimedOut => ConnectCause::TimedOut,
            io::ErrorKind::HostUnreachable => ConnectCause::NoRoute,
            io::ErrorKind::NetworkUnreachable => ConnectCause::Unreachable,
            _ => ConnectCause::Other(e),
        }
    }
}

impl SessionError {
    /// Whether a retry could succeed (network trouble), as opposed to a
    /// decision that retrying cannot change (host key, authentication,
    /// configuration).
    pub fn is_transient(&self) -> bool {
        match self {
            // A server whose host key changed mid-connection is no
            // network hiccup: reconnecting would meet the same server.
            SessionError::Russh(russh::Error::HostKeyChangedOnRekey { .. })
            | SessionError::Protocol {
                source: russh::Error::HostKeyChangedOnRekey { .. },
                ..
            } => false,
            SessionError::Resolve { .. } | SessionError::Connect { .. } | SessionError::Io(_) => {
                true
            }
            SessionError::Protocol { .. } | SessionError::Russh(_) | SessionError::Jump { .. } => {
                true
            }
            SessionError::ProxyCommand { .. } | SessionError::Output { .. } => false,
            SessionError::HostKey(_)
            | SessionError::Unsupported { .. }
            | SessionError::Auth(_)
            | SessionError::Algorithms(_)
            | SessionError::NoCommonAlgorithm { .. } => false,
        }
    }

    /// One line telling the user what to do, where there is one.
    pub fn hint(&self) -> Option<String> {
        match self {
            SessionError::Connect { cause: ConnectCause::Refused, host, port } => Some(format!(
                "nothing accepts connections on {host}:{port}: check the port (-p / Port) and that sshd runs there"
            )),
            SessionError::Connect { cause: ConnectCause::TimedOut, .. } => Some(
                "no answer: a firewall may drop the packets, or the host is down; ConnectTimeout bounds the wait"
                    .into(),
            ),
            SessionError::Resolve { .. } => Some("check the name, or set HostName in ~/.ssh/config".into()),
            SessionError::HostKey(e) => e.hint(),
            // A server offering only what warren leaves out on purpose
            // (a DSA host key, 3des-cbc, UMAC) hears why.
            SessionError::NoCommonAlgorithm { theirs, .. } => {
                let mut notes: Vec<&str> = theirs
                    .split(',')
                    .filter_map(crate::algorithms::not_supported)
                    .collect();
                notes.dedup();
                (!notes.is_empty()).then(|| notes.join("; "))
            }
            SessionError::Auth(e) => e.hint(),
            _ => None,
        }
    }

    /// Our own stdout or stderr is a pipe nobody reads any more: nothing
    /// to report (there is no one to tell), as ssh stays silent.
    pub fn is_closed_output(&self) -> bool {
        matches!(self, SessionError::Output { source, .. } if source.kind() == io::ErrorKind::BrokenPipe)
    }
}

/// Host key verification refused the server.
#[derive(Debug, thiserror::Error)]
pub enum HostKeyError {
    #[error("{0}")]
    Changed(Box<ChangedKey>),

    #[error(
        "The {algorithm} host key for {host} ({fingerprint}) is marked as revoked in {file}:{line}.\n\
         Host key verification failed."
    )]
    Revoked {
        host: String,
        algorithm: String,
        fingerprint: String,
        file: String,
        line: usize,
    },

    #[error(
        "Host key {key_type} {fingerprint} revoked by file {file}\nHost key verification failed."
    )]
    RevokedByFile {
        key_type: String,
        fingerprint: String,
        file: String,
    },

    #[error(
        "Error checking host key {key_type} {fingerprint} in revoked keys file {file}: {reason}\nHost key verification failed."
    )]
    RevokedFileUnusable {
        key_type: String,
        fingerprint: String,
        file: String,
        reason: String,
    },

    #[error(
        "No {algorithm} host key is known for {host} and StrictHostKeyChecking is {mode}. ({fingerprint})\nHost key verification failed."
    )]
    Unknown {
        host: String,
        algorithm: String,
        fingerprint: String,
        mode: &'static str,
        other_keys: Vec<String>,
    },

    #[error("Host key verification failed: {host}: {reason}")]
    Certificate { host: String, reason: String },

    #[error(
        "Host key verification failed: the user declined the {algorithm} key {fingerprint} for {host}."
    )]
    Declined {
        host: String,
        algorithm: String,
        fingerprint: String,
    },

    #[error("Host key verification failed: the server's key could not be read: {reason}")]
    Malformed { reason: String },

    /// RequiredRSASize: ssh's "Bad server host key: Invalid key length".
    #[error(
        "Bad server host key: Invalid key length (RSA {bits} bits; RequiredRSASize is {required})"
    )]
    RsaTooSmall { bits: u32, required: u32 },

    /// KnownHostsCommand could not run, failed, or said too much.
    #[error("{reason}\nKnownHostsCommand failed")]
    KnownHostsCommand { reason: String },
}

impl HostKeyError {
    pub fn hint(&self) -> Option<String> {
        match self {
            HostKeyError::Changed(c) => Some(format!(
                "if the server's key really changed, remove the old entry with: {}",
                c.remove_command
            )),
            HostKeyError::Unknown { .. } => Some(
                "connect once interactively to check and accept the fingerprint, or add it to known_hosts".into(),
            ),
            HostKeyError::RevokedFileUnusable { .. } => Some(
                "RevokedHostKeys must name a readable KRL (ssh-keygen -k) or list of public keys; ssh refuses too".into(),
            ),
            _ => None,
        }
    }
}

/// A host whose recorded key differs from the one it presented.
#[derive(Debug, thiserror::Error)]
#[error(
    "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n\
     @    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n\
     @@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n\
     IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!\n\
     The {algorithm} host key for {host} has changed; it is now {fingerprint}.\n\
     Offending {old_algorithm} key in {file}:{line}\n\
     Host key verification failed."
)]
pub struct ChangedKey {
    pub host: String,
    pub algorithm: String,
    pub fingerprint: String,
    pub old_algorithm: String,
    pub file: String,
    pub line: usize,
    pub remove_command: String,
}

/// What a failed login noticed about the credentials, beyond what was
/// tried: the raw material of the doctor's explanations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DenialNotes {
    /// Key files refused because others can read them.
    pub loose_keys: Vec<String>,
    /// Encrypted key files not offered because nothing may ask for their
    /// passphrase (BatchMode) and no agent holds them.
    pub locked_keys: Vec<String>,
    /// The signature algorithms of the keys the server refused, each once
    /// (`ecdsa-sha2-nistp256`, `rsa-sha2-512`, ...).
    pub refused_types: Vec<String>,
    /// Certificates the server refused, each with what is wrong with it
    /// judged from its own fields (escaped).
    pub certificates: Vec<String>,
    /// Encrypted legacy PEM key files (`Proc-Type: 4,ENCRYPTED`), which
    /// are not loaded from the file.
    pub pem_keys: Vec<String>,
}

/// A login that succeeded, and what went wrong on the way to it (keys
/// refused or skipped before the one accepted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoggedIn {
    /// What the server accepted: `publickey (/path/to/key)`, `password`, ...
    pub accepted: String,
    /// The attempts before it, as [`AuthError::Denied`] lists them.
    pub before: Vec<String>,
    /// Public keys offered, the accepted one included.
    pub keys_offered: usize,
    pub notes: DenialNotes,
}

/// The server accepted none of the credentials we had, or ended the
/// connection while we were logging in.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{user}@{host}: Permission denied ({offered}).{tried}", tried = tried_line(tried))]
    Denied {
        user: String,
        host: String,
        offered: String,
        tried: Vec<String>,
        /// What else was noticed about the credentials, for explanations.
        notes: Box<DenialNotes>,
    },

    /// The server said goodbye (SSH_MSG_DISCONNECT) before we were in;
    /// `message` is its text, escaped.
    #[error("Received disconnect from {host} port {port}:{code}: {message}\n{}", tried_line(tried).trim_start())]
    Disconnected {
        host: String,
        port: u16,
        code: u32,
        message: String,
        tried: Vec<String>,
        keys_offered: usize,
    },

    /// The connection ended without a reason while we were logging in.
    #[error("Connection closed by {host} port {port} during authentication.{tried}", tried = tried_line(tried))]
    Closed {
        host: String,
        port: u16,
        tried: Vec<String>,
        keys_offered: usize,
        #[source]
        source: Option<Box<russh::Error>>,
    },

    #[error("Load key \"{path}\": {reason}")]
    Key { path: String, reason: String },
}

impl AuthError {
    pub fn hint(&self) -> Option<String> {
        match self {
            AuthError::Denied { notes, .. } if !notes.loose_keys.is_empty() => Some(format!(
                "the key file is readable by others, so it was not used; make it private with: chmod 600 {}",
                notes.loose_keys.join(" ")
            )),
            AuthError::Denied { tried, notes, .. }
                if tried.is_empty() && !notes.locked_keys.is_empty() =>
            {
                Some(format!(
                    "{} is encrypted and BatchMode forbids asking for its passphrase: load it into an agent first (warren add {} or ssh-add)",
                    notes.locked_keys.join(", "),
                    notes.locked_keys.join(" ")
                ))
            }
            AuthError::Denied { tried, notes, .. }
                if !notes.pem_keys.is_empty() && tried.len() == notes.pem_keys.len() =>
            {
                Some(format!(
                "{} is an encrypted PEM key, which is not read from the file: load it with `warren add {}` \
                 (or ssh-add) or convert it: `ssh-keygen -p -f {}`",
                notes.pem_keys.join(", "),
                notes.pem_keys.join(" "),
                notes.pem_keys.join(" ")
            ))
            }
            AuthError::Denied { tried, .. } if tried.is_empty() => Some(
                "no credentials were available: add a key with -i, start an agent, or allow prompts (BatchMode no)"
                    .into(),
            ),
            AuthError::Denied { .. } => {
                Some("check that the key is in the server's authorized_keys for this user (-v shows each attempt)".into())
            }
            AuthError::Disconnected { keys_offered, .. } | AuthError::Closed { keys_offered, .. }
                if *keys_offered > 1 =>
            {
                Some(format!(
                    "{keys_offered} keys were offered and each counts as a failed attempt (sshd's MaxAuthTries): \
                     name the right key with -i FILE and set IdentitiesOnly yes (-o IdentitiesOnly=yes) so only it is offered"
                ))
            }
            AuthError::Disconnected { .. } | AuthError::Closed { .. } | AuthError::Key { .. } => None,
        }
    }
}

fn tried_line(tried: &[String]) -> String {
    if tried.is_empty() {
        " Tried: nothing (no usable credential)".into()
    } else {
        format!(" Tried: {}", tried.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A host key changed during a rekey was an ordinary russh error,
    /// which a tunnel retries: reconnecting meets the same server.
    #[test]
    fn host_key_changed_on_rekey_is_not_transient() {
        let changed = || russh::Error::HostKeyChangedOnRekey {
            first: "SHA256:a".into(),
            now: "SHA256:b".into(),
        };
        assert!(!SessionError::Russh(changed()).is_transient());
        let wrapped = SessionError::Protocol {
            host: "h".into(),
            port: 22,
            source: changed(),
        };
        assert!(!wrapped.is_transient());
        let said = warren_wire::Chain(&wrapped).to_string();
        assert!(
            said.contains("Server host key changed during rekey: it was SHA256:a, now SHA256:b"),
            "{said}"
        );
    }
}
