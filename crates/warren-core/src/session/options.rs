//! What one connection needs, as plain values: the binary builds this from
//! the command line and ssh_config; tests build it by hand.

use std::path::PathBuf;
use std::time::Duration;

use crate::algorithms::AlgorithmOptions;

/// `AddressFamily`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AddressFamily {
    #[default]
    Any,
    Inet,
    Inet6,
}

/// `StrictHostKeyChecking`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StrictHostKeyChecking {
    Yes,
    #[default]
    Ask,
    AcceptNew,
    No,
}

/// Everything needed to reach, verify and log in to one host.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// The name the user typed (messages, known_hosts when no alias).
    pub host: String,
    /// Where to connect (`HostName`, tokens expanded).
    pub hostname: String,
    pub port: u16,
    pub user: String,
    pub connect_timeout: Option<Duration>,
    pub connection_attempts: u32,
    pub address_family: AddressFamily,
    pub bind_address: Option<String>,
    /// BindInterface: connect from an address of this interface.
    pub bind_interface: Option<String>,
    pub server_alive_interval: Option<Duration>,
    pub server_alive_count_max: u32,
    /// TCPKeepAlive: the kernel's keepalive probes on the TCP connection.
    pub tcp_keep_alive: bool,
    pub algorithms: AlgorithmOptions,
    pub host_keys: HostKeyOptions,
    pub auth: AuthOptions,
    /// The largest channel window in bytes. Windows start at 2 MiB and
    /// grow toward this on paths whose bandwidth-delay product needs it
    /// (see `session::window`).
    pub window_size: u32,
    /// ForwardAgent: the local agent socket that agent channels opened by
    /// the server are connected to. `None`: such channels are refused.
    pub forward_agent: Option<PathBuf>,
    /// Whether the server's Banner (SSH_MSG_USERAUTH_BANNER) is printed
    /// on stderr: ssh shows it unless LogLevel is QUIET, FATAL or ERROR.
    pub show_banner: bool,
    /// RekeyLimit.
    pub rekey: RekeyLimits,
    /// ssh_config keywords set to something warren does not do
    /// (`HostConfig::unsupported`): the connection is refused, naming them.
    pub unsupported: Vec<&'static str>,
    /// GSSAPIAuthentication / GSSAPIKeyExchange yes: skipped, said at -v.
    pub gssapi: bool,
}

/// RekeyLimit: a new key exchange after this much data in either
/// direction, or after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RekeyLimits {
    /// Bytes; `None` for the transport's default (1 GiB).
    pub data: Option<u64>,
    /// `None`: never for time alone (ssh's default).
    pub interval: Option<Duration>,
}

impl ConnectOptions {
    /// Defaults as OpenSSH applies them, for `user@hostname:port`.
    pub fn new(hostname: &str, port: u16, user: &str) -> Self {
        ConnectOptions {
            host: hostname.to_owned(),
            hostname: hostname.to_owned(),
            port,
            user: user.to_owned(),
            connect_timeout: None,
            connection_attempts: 1,
            address_family: AddressFamily::Any,
            bind_address: None,
            bind_interface: None,
            server_alive_interval: None,
            server_alive_count_max: 3,
            tcp_keep_alive: true,
            algorithms: AlgorithmOptions::default(),
            host_keys: HostKeyOptions::default(),
            auth: AuthOptions::default(),
            window_size: DEFAULT_WINDOW,
            forward_agent: None,
            rekey: RekeyLimits::default(),
            show_banner: true,
            unsupported: Vec::new(),
            gssapi: false,
        }
    }
}

/// The largest window, 64 MiB. russh's 2 MiB default (OpenSSH's too) caps
/// a 50 ms link near 40 MB/s; russh re-opens the window at half, so the
/// sender sees 32-64 MiB. Measured here over a 50 ms delay proxy: 16 MiB
/// gave 102 MB/s, 64 MiB 156 MB/s, OpenSSH 24 MB/s. A window only grows
/// this far on such a path (`session::window`). A channel's window re-opens
/// only as its reader takes data (russh patch 5 in `vendor/russh`), so a
/// forwarded connection whose local reader stalls holds at most its window
/// plus `forward::QUEUE_LIMIT`, and the other connections go on.
pub const DEFAULT_WINDOW: u32 = 64 * 1024 * 1024;

/// Host key verification settings.
#[derive(Debug, Clone, Default)]
pub struct HostKeyOptions {
    pub user_known_hosts: Vec<PathBuf>,
    pub global_known_hosts: Vec<PathBuf>,
    pub strict: StrictHostKeyChecking,
    pub hash_known_hosts: bool,
    pub host_key_alias: Option<String>,
    pub check_host_ip: bool,
    pub visual_host_key: bool,
    /// RevokedHostKeys: a KRL or a list of keys that are never accepted.
    pub revoked_host_keys: Option<PathBuf>,
    /// KnownHostsCommand: more known_hosts lines, from a program's output.
    pub known_hosts_command: Option<warren_config::KnownHostsCommand>,
    /// UpdateHostKeys: learn the server's other host keys.
    pub update_host_keys: UpdateHostKeys,
    /// CASignatureAlgorithms: what a host certificate's CA may have signed
    /// it with (empty: any).
    pub ca_signature_algorithms: Vec<String>,
    /// RequiredRSASize: the fewest bits an RSA host key may have (0: any).
    pub required_rsa_size: u32,
}

/// UpdateHostKeys, after ssh's own adjustments (`ask` in BatchMode is no).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UpdateHostKeys {
    #[default]
    No,
    Yes,
    Ask,
}

/// Authentication settings.
#[derive(Debug, Clone)]
pub struct AuthOptions {
    /// IdentityFile paths, expanded, in order.
    pub identity_files: Vec<PathBuf>,
    /// Whether IdentityFile came from the user (missing files are then
    /// reported) or from the defaults (missing files are skipped quietly).
    pub identity_files_explicit: bool,
    pub certificate_files: Vec<PathBuf>,
    pub identities_only: bool,
    /// The agent socket; `None` for `IdentityAgent none`.
    pub identity_agent: Option<PathBuf>,
    /// PreferredAuthentications, in order.
    pub preferred: Vec<String>,
    pub batch_mode: bool,
    pub pubkey: bool,
    pub password: bool,
    pub kbd_interactive: bool,
    pub number_of_password_prompts: u32,
    /// AddKeysToAgent for keys loaded from files.
    pub add_keys_to_agent: AddKeys,
    /// Its lifetime in seconds (`AddKeysToAgent 1h`).
    pub add_keys_lifetime: Option<u32>,
    /// PubkeyAcceptedAlgorithms, in order: the signature algorithms keys
    /// and certificates may be offered with. Empty: no restriction.
    pub pubkey_algorithms: Vec<String>,
}

/// `AddKeysToAgent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AddKeys {
    #[default]
    No,
    Yes,
    Ask,
    Confirm,
}

impl Default for AuthOptions {
    fn default() -> Self {
        AuthOptions {
            identity_files: Vec::new(),
            identity_files_explicit: false,
            certificate_files: Vec::new(),
            identities_only: false,
            identity_agent: std::env::var_os("SSH_AUTH_SOCK").map(PathBuf::from),
            preferred: [
                "gssapi-with-mic",
                "publickey",
                "keyboard-interactive",
                "password",
            ]
            .map(String::from)
            .to_vec(),
            batch_mode: false,
            pubkey: true,
            password: true,
            kbd_interactive: true,
            number_of_password_prompts: 3,
            add_keys_to_agent: AddKeys::No,
            add_keys_lifetime: None,
            pubkey_algorithms: Vec::new(),
        }
    }
}
