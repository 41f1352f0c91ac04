//! The resolved configuration for one destination: OpenSSH's defaults
//! (`fill_default_options`), the post-processing ssh.c does before
//! connecting (user, port, `%`/`~`/`${}` expansion of the keywords that
//! take them), typed accessors, and the `ssh -G` dump.
//!
//! Design choice: the option store keeps "unset" distinct from "set to the
//! default" until here, and each accessor applies OpenSSH's default in one
//! place, so the dump and the typed API cannot disagree.

use std::path::PathBuf;
use std::time::Duration;

use crate::algorithms::Algorithms;
use crate::cli::CommandLine;
use crate::env::Environment;
use crate::error::ConfigError;
use crate::expand::{
    ConnInfo, ExpandError, connection_hash, percent_dollar_expand, percent_expand, short_hostname,
    tilde_expand,
};
use crate::forward::{Forward, ForwardEndpoint};
use crate::jump::{Jump, JumpHost};
use crate::options::{Options, Origin};
use crate::values::*;
use crate::values::{IPQOS_DEFAULT, TUN_ANY};

const DEFAULT_IDENTITIES: &[&str] = &[
    "~/.ssh/id_rsa",
    "~/.ssh/id_ecdsa",
    "~/.ssh/id_ecdsa_sk",
    "~/.ssh/id_ed25519",
    "~/.ssh/id_ed25519_sk",
    "~/.ssh/id_xmss",
    "~/.ssh/id_dsa",
];

/// Algorithm lists after `+`/`-`/`^` were applied.
#[derive(Debug, Clone)]
struct ResolvedAlgorithms {
    ciphers: Vec<String>,
    macs: Vec<String>,
    kex: Vec<String>,
    host_key: Vec<String>,
    hostbased: Vec<String>,
    pubkey: Vec<String>,
    ca_signature: Vec<String>,
    gssapi_kex: Vec<String>,
}

/// Everything `ssh` would use to connect to one destination.
#[derive(Debug, Clone)]
pub struct HostConfig {
    opts: Options,
    host_arg: String,
    hostname: String,
    user: String,
    port: u16,
    algorithms: ResolvedAlgorithms,
    conn: ConnInfo,
    warnings: Vec<String>,
    set_at: Vec<SetAt>,
}

/// Where an option's value was read: a config file's line, or the
/// command line (a flag or `-o`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAt {
    /// The keyword's canonical spelling (`HostName`).
    pub keyword: &'static str,
    /// The file; `None` for the command line.
    pub file: Option<String>,
    pub line: usize,
}

impl std::fmt::Display for SetAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.file {
            Some(file) => write!(f, "{}:{}", warren_wire::escape_str(file), self.line),
            None => f.write_str("the command line"),
        }
    }
}

fn expand_err(e: ExpandError) -> ConfigError {
    e.into_config_error()
}

impl HostConfig {
    pub(crate) fn finish(
        mut opts: Options,
        cli: &CommandLine,
        host: &str,
        env: &dyn Environment,
        algorithms: &Algorithms,
        warnings: Vec<String>,
    ) -> Result<Self, ConfigError> {
        fill_defaults(&mut opts);
        fill_distribution_defaults(&mut opts, env);
        let algorithms = resolve_algorithms(&opts, algorithms)?;
        clear_on_none(&mut opts);
        let user = opts.user.clone().unwrap_or_else(|| env.local_user());
        let port = opts.port.filter(|&p| p > 0).unwrap_or(22);
        check_jump_loop(&opts, host, port, &user)?;
        if let Some(alias) = &mut opts.host_key_alias {
            alias.make_ascii_lowercase();
        }
        check_consistency(&mut opts, cli)?;
        let conn = conn_info(&opts, cli, host, port, &user, env);
        let mut config = Self {
            opts,
            host_arg: cli.host.clone(),
            hostname: host.to_owned(),
            user,
            port,
            algorithms,
            conn,
            warnings,
            set_at: Vec::new(),
        };
        config.expand_paths(env)?;
        Ok(config)
    }

    /// ssh.c expands these before `-G` prints them.
    fn expand_paths(&mut self, env: &dyn Environment) -> Result<(), ConfigError> {
        let tokens = self.conn.tokens();
        let o = &mut self.opts;
        if let Some(command) = &o.remote_command {
            o.remote_command = Some(percent_expand(command, &tokens).map_err(expand_err)?);
        }
        for field in [
            &mut o.control_path,
            &mut o.identity_agent,
            &mut o.forward_agent_sock_path,
        ] {
            if let Some(value) = field.as_deref() {
                let tilded = tilde_expand(value, env)?;
                *field = Some(percent_dollar_expand(&tilded, &tokens, env).map_err(expand_err)?);
            }
        }
        if o.system_hostfiles
            .first()
            .is_some_and(|f| f.eq_ignore_ascii_case("none"))
        {
            o.system_hostfiles.clear();
        }
        if o.user_hostfiles
            .first()
            .is_some_and(|f| f.eq_ignore_ascii_case("none"))
        {
            o.user_hostfiles.clear();
        }
        for file in &mut o.user_hostfiles {
            *file = percent_dollar_expand(&tilde_expand(file, env)?, &tokens, env)
                .map_err(expand_err)?;
        }
        for forward in o
            .local_forwards
            .iter_mut()
            .chain(o.remote_forwards.iter_mut())
        {
            for side in [&mut forward.listen, &mut forward.connect] {
                if let ForwardEndpoint::Unix(path) = side {
                    *path = percent_expand(path, &tokens).map_err(expand_err)?;
                }
            }
        }
        Ok(())
    }
}

/// Where Debian's ssh is the one users know (`/etc/debian_version`), its
/// patched defaults: with BatchMode and no ServerAliveInterval, keepalives
/// every 300 s (debian/patches/keepalive-extensions.patch), so `-G` shows
/// what Debian's `ssh -G` shows.
fn fill_distribution_defaults(o: &mut Options, env: &dyn Environment) {
    if o.server_alive_interval.is_none()
        && o.batch_mode == Some(true)
        && env.file_exists(std::path::Path::new(DEBIAN_VERSION))
    {
        o.server_alive_interval = Some(300);
    }
}

/// The file whose presence marks a Debian (or derived) system.
const DEBIAN_VERSION: &str = "/etc/debian_version";

/// `fill_default_options`, for the defaults that depend on other options.
fn fill_defaults(o: &mut Options) {
    let stdio = o.stdio_forward.is_some();
    o.exit_on_forward_failure.get_or_insert(stdio);
    if *o.clear_forwardings.get_or_insert(stdio) {
        o.local_forwards.clear();
        o.remote_forwards.clear();
        o.tun_open = Some(Tunnel::No);
    }
    if o.identity_files.is_empty() {
        o.identity_files = DEFAULT_IDENTITIES
            .iter()
            .map(|p| ((*p).to_owned(), Origin::System))
            .collect();
    }
    if o.system_hostfiles.is_empty() {
        o.system_hostfiles = vec![
            "/etc/ssh/ssh_known_hosts".into(),
            "/etc/ssh/ssh_known_hosts2".into(),
        ];
    }
    if o.update_hostkeys.is_none() {
        let dns = matches!(o.verify_host_key_dns, Some(YesNoAsk::Yes | YesNoAsk::Ask));
        let default_files = o.user_hostfiles.is_empty()
            || (o.user_hostfiles.len() == 1 && o.user_hostfiles[0] == "~/.ssh/known_hosts");
        o.update_hostkeys = Some(if !dns && default_files {
            YesNoAsk::Yes
        } else {
            YesNoAsk::No
        });
    }
    if o.user_hostfiles.is_empty() {
        o.user_hostfiles = vec!["~/.ssh/known_hosts".into(), "~/.ssh/known_hosts2".into()];
    }
    o.add_keys_to_agent.get_or_insert((AddKeysToAgent::No, 0));
    o.sk_provider.get_or_insert_with(|| "internal".to_owned());
}

fn resolve_algorithms(o: &Options, a: &Algorithms) -> Result<ResolvedAlgorithms, ConfigError> {
    let assemble =
        |family: &crate::algorithms::AlgorithmList, spec: &Option<String>, what: &str| {
            family.assemble(spec.as_deref()).ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "{what}: invalid algorithm list '{}'",
                    spec.as_deref().unwrap_or("")
                ))
            })
        };
    Ok(ResolvedAlgorithms {
        ciphers: assemble(&a.ciphers, &o.ciphers, "ciphers")?,
        macs: assemble(&a.macs, &o.macs, "macs")?,
        kex: assemble(&a.kex, &o.kex_algorithms, "kex_algorithms")?,
        host_key: assemble(&a.host_key, &o.host_key_algorithms, "HostKeyAlgorithms")?,
        hostbased: assemble(
            &a.hostbased,
            &o.hostbased_algorithms,
            "hostbased_accepted_algos",
        )?,
        pubkey: assemble(&a.pubkey, &o.pubkey_algorithms, "pubkey_accepted_algos")?,
        ca_signature: assemble(&a.ca_signature, &o.ca_sign_algorithms, "ca_sign_algorithms")?,
        gssapi_kex: assemble(&a.gssapi_kex, &o.gss_kex_algorithms, "gss_kex_algorithms")?,
    })
}

/// `CLEAR_ON_NONE` and the other "none means unset" cases.
fn clear_on_none(o: &mut Options) {
    for field in [
        &mut o.local_command,
        &mut o.remote_command,
        &mut o.proxy_command,
        &mut o.control_path,
        &mut o.revoked_host_keys,
        &mut o.pkcs11_provider,
        &mut o.sk_provider,
        &mut o.known_hosts_command,
    ] {
        if field
            .as_deref()
            .is_some_and(|v| v.eq_ignore_ascii_case("none"))
        {
            *field = None;
        }
    }
    if matches!(o.jump, Some(Jump::None)) {
        o.jump = None;
    }
    if o.permitted_cnames.len() == 1
        && o.permitted_cnames[0].0.eq_ignore_ascii_case("none")
        && o.permitted_cnames[0].1.is_empty()
    {
        o.permitted_cnames.clear();
    }
}

fn check_jump_loop(o: &Options, host: &str, port: u16, user: &str) -> Result<(), ConfigError> {
    let Some(Jump::Hosts(jump)) = &o.jump else {
        return Ok(());
    };
    let jump_port = jump.port.unwrap_or(22);
    let jump_user = jump.user.as_deref().unwrap_or(user);
    if jump.host == host && jump_port == port && jump_user == user {
        return Err(ConfigError::Invalid(format!(
            "jumphost loop via {}",
            jump.host
        )));
    }
    Ok(())
}

/// The checks ssh.c makes between reading the config and connecting.
fn check_consistency(o: &mut Options, cli: &CommandLine) -> Result<(), ConfigError> {
    let has_command = !cli.command.is_empty();
    if o.proxy_command.as_deref() == Some("-") && o.proxy_use_fdpass == Some(true) {
        return Err(ConfigError::Invalid(
            "ProxyCommand=- and ProxyUseFDPass are incompatible".into(),
        ));
    }
    if o.update_hostkeys == Some(YesNoAsk::Ask) {
        let persist = !matches!(o.control_persist, None | Some(ControlPersist::No));
        let remote =
            has_command || o.remote_command.is_some() || o.request_tty == Some(RequestTty::No);
        if (persist && o.control_path.is_some())
            || remote
            || o.log_level.is_some_and(|l| l < LogLevel::Info)
        {
            o.update_hostkeys = Some(YesNoAsk::No);
        }
    }
    if o.connection_attempts.is_some_and(|n| n <= 0) {
        return Err(ConfigError::Invalid(
            "Invalid number of ConnectionAttempts".into(),
        ));
    }
    if has_command && o.remote_command.is_some() {
        return Err(ConfigError::Invalid(
            "Cannot execute command-line and remote command.".into(),
        ));
    }
    if o.fork_after_authentication == Some(true)
        && !has_command
        && o.remote_command.is_none()
        && o.session_type != Some(SessionType::None)
    {
        return Err(ConfigError::Invalid(
            "Cannot fork into background without a command to execute.".into(),
        ));
    }
    Ok(())
}

fn conn_info(
    o: &Options,
    cli: &CommandLine,
    host: &str,
    port: u16,
    user: &str,
    env: &dyn Environment,
) -> ConnInfo {
    let this_host = env.local_hostname();
    let port = port.to_string();
    ConnInfo {
        conn_hash: connection_hash(&this_host, host, &port, user),
        short_host: short_hostname(&this_host).to_owned(),
        uid: env.uid().to_string(),
        key_alias: o.host_key_alias.clone().unwrap_or_else(|| cli.host.clone()),
        this_host,
        host_arg: cli.host.clone(),
        port,
        home_dir: env.home_dir().to_string_lossy().into_owned(),
        remote_host: host.to_owned(),
        remote_user: user.to_owned(),
        local_user: env.local_user(),
    }
}

macro_rules! flags {
    ($($(#[$meta:meta])* $name:ident => $field:ident, $default:expr;)*) => {
        $($(#[$meta])* pub fn $name(&self) -> bool { self.opts.$field.unwrap_or($default) })*
    };
}

macro_rules! enums {
    ($($(#[$meta:meta])* $name:ident: $ty:ty => $field:ident, $default:expr;)*) => {
        $($(#[$meta])* pub fn $name(&self) -> $ty { self.opts.$field.unwrap_or($default) })*
    };
}

macro_rules! strings {
    ($($(#[$meta:meta])* $name:ident => $field:ident;)*) => {
        $($(#[$meta])* pub fn $name(&self) -> Option<&str> { self.opts.$field.as_deref() })*
    };
}

macro_rules! lists {
    ($($(#[$meta:meta])* $name:ident => $field:ident;)*) => {
        $($(#[$meta])* pub fn $name(&self) -> &[String] { &self.algorithms.$field })*
    };
}

/// Typed accessors, each applying OpenSSH's default.
impl HostConfig {
    /// The destination as typed.
    pub fn host_arg(&self) -> &str {
        &self.host_arg
    }
    /// The host to connect to (HostName applied, lowercased).
    pub fn hostname(&self) -> &str {
        &self.hostname
    }
    /// The remote user (default: the local user).
    pub fn user(&self) -> &str {
        &self.user
    }
    /// The remote port (default 22).
    pub fn port(&self) -> u16 {
        self.port
    }
    /// Messages OpenSSH prints without stopping (unsupported options,
    /// missing `-i` files).
    pub(crate) fn with_set_at(mut self, set_at: Vec<SetAt>) -> Self {
        self.set_at = set_at;
        self
    }

    /// The lines that set `keyword` (case-insensitive) and applied to
    /// this host, in the order they were read (the command line first).
    /// For a single-valued option the first one gave the value.
    pub fn set_at(&self, keyword: &str) -> Vec<&SetAt> {
        self.set_at
            .iter()
            .filter(|s| s.keyword.eq_ignore_ascii_case(keyword))
            .collect()
    }

    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
    /// IdentityFile entries as configured (defaults included), unexpanded,
    /// as `ssh -G` prints them.
    pub fn identity_files(&self) -> Vec<&str> {
        self.opts
            .identity_files
            .iter()
            .map(|(p, _)| p.as_str())
            .collect()
    }
    /// IdentityFile entries expanded as ssh does when loading keys
    /// (`~`, `%` tokens, `${VAR}`).
    pub fn identity_file_paths(&self, env: &dyn Environment) -> Result<Vec<PathBuf>, ConfigError> {
        self.expand_files(&self.opts.identity_files, env)
    }
    /// CertificateFile entries as configured.
    pub fn certificate_files(&self) -> Vec<&str> {
        self.opts
            .certificate_files
            .iter()
            .map(|(p, _)| p.as_str())
            .collect()
    }
    /// CertificateFile entries expanded like IdentityFile.
    pub fn certificate_file_paths(
        &self,
        env: &dyn Environment,
    ) -> Result<Vec<PathBuf>, ConfigError> {
        self.expand_files(&self.opts.certificate_files, env)
    }

    fn expand_files(
        &self,
        files: &[(String, Origin)],
        env: &dyn Environment,
    ) -> Result<Vec<PathBuf>, ConfigError> {
        let tokens = self.conn.tokens();
        files
            .iter()
            .map(|(p, _)| {
                let tilded = tilde_expand(p, env)?;
                Ok(PathBuf::from(
                    percent_dollar_expand(&tilded, &tokens, env).map_err(expand_err)?,
                ))
            })
            .collect()
    }

    /// ProxyJump (the last hop; earlier hops in [`JumpHost::extra`]).
    pub fn proxy_jump(&self) -> Option<&JumpHost> {
        match &self.opts.jump {
            Some(Jump::Hosts(h)) => Some(h),
            _ => None,
        }
    }
    /// ProxyCommand with `%h %k %n %p %r` expanded, as ssh runs it (without
    /// the `exec ` prefix).
    pub fn proxy_command(&self) -> Result<Option<String>, ConfigError> {
        let Some(command) = &self.opts.proxy_command else {
            return Ok(None);
        };
        let c = &self.conn;
        let tokens = [
            ('h', &*c.remote_host),
            ('k', &*c.key_alias),
            ('n', &*c.host_arg),
            ('p', &*c.port),
            ('r', &*self.user),
        ];
        percent_expand(command, &tokens)
            .map(Some)
            .map_err(expand_err)
    }
    /// KnownHostsCommand (`None` for unset or `none`), to be expanded for
    /// each lookup once the server's key is known.
    pub fn known_hosts_command(&self) -> Option<crate::KnownHostsCommand> {
        self.opts
            .known_hosts_command
            .clone()
            .map(|template| crate::KnownHostsCommand::new(template, self.conn.clone()))
    }
    /// LocalCommand with the client tokens expanded, `%T` (the tun
    /// device) being `NONE` as ssh has it without `-w`.
    pub fn local_command(&self) -> Result<Option<String>, ConfigError> {
        let Some(command) = &self.opts.local_command else {
            return Ok(None);
        };
        let mut tokens = self.conn.tokens().to_vec();
        tokens.push(('T', "NONE"));
        percent_expand(command, &tokens)
            .map(Some)
            .map_err(expand_err)
    }
    /// Local forwards (`-L`, LocalForward), after ClearAllForwardings.
    pub fn local_forwards(&self) -> Vec<&Forward> {
        self.opts
            .local_forwards
            .iter()
            .filter(|f| !f.is_dynamic())
            .collect()
    }
    /// Dynamic (SOCKS) forwards (`-D`, DynamicForward).
    pub fn dynamic_forwards(&self) -> Vec<&Forward> {
        self.opts
            .local_forwards
            .iter()
            .filter(|f| f.is_dynamic())
            .collect()
    }
    /// Remote forwards (`-R`, RemoteForward).
    pub fn remote_forwards(&self) -> &[Forward] {
        &self.opts.remote_forwards
    }
    /// `-W host:port`.
    pub fn stdio_forward(&self) -> Option<(Option<&str>, u16)> {
        self.opts
            .stdio_forward
            .as_ref()
            .map(|(h, p)| (h.as_deref(), *p))
    }
    /// ControlPersist.
    pub fn control_persist(&self) -> ControlPersist {
        self.opts.control_persist.unwrap_or(ControlPersist::No)
    }
    /// ConnectTimeout (`None`: the system's TCP timeout).
    pub fn connect_timeout(&self) -> Option<Duration> {
        self.opts
            .connect_timeout
            .map(|s| Duration::from_secs(u64::from(s)))
    }
    /// ServerAliveInterval (zero: disabled).
    pub fn server_alive_interval(&self) -> Duration {
        Duration::from_secs(u64::from(self.opts.server_alive_interval.unwrap_or(0)))
    }
    /// ServerAliveCountMax (default 3).
    pub fn server_alive_count_max(&self) -> u32 {
        self.opts
            .server_alive_count_max
            .map_or(3, |n| n.max(0) as u32)
    }
    /// ConnectionAttempts (default 1).
    pub fn connection_attempts(&self) -> u32 {
        self.opts.connection_attempts.map_or(1, |n| n.max(1) as u32)
    }
    /// NumberOfPasswordPrompts (default 3).
    pub fn number_of_password_prompts(&self) -> u32 {
        self.opts
            .number_of_password_prompts
            .map_or(3, |n| n.max(0) as u32)
    }
    /// CanonicalizeMaxDots (default 1).
    pub fn canonicalize_max_dots(&self) -> u32 {
        self.opts
            .canonicalize_max_dots
            .map_or(1, |n| n.max(0) as u32)
    }
    /// UserKnownHostsFile, expanded (empty for `none`).
    pub fn user_known_hosts_files(&self) -> &[String] {
        &self.opts.user_hostfiles
    }
    /// GlobalKnownHostsFile (empty for `none`).
    pub fn global_known_hosts_files(&self) -> &[String] {
        &self.opts.system_hostfiles
    }
    /// SendEnv patterns.
    pub fn send_env(&self) -> &[String] {
        &self.opts.send_env
    }
    /// SetEnv `NAME=value` entries.
    pub fn set_env(&self) -> &[String] {
        &self.opts.set_env
    }
    /// CanonicalDomains.
    pub fn canonical_domains(&self) -> &[String] {
        &self.opts.canonical_domains
    }
    /// CanonicalizePermittedCNAMEs rules (source list, target list).
    pub fn canonicalize_permitted_cnames(&self) -> &[(String, String)] {
        &self.opts.permitted_cnames
    }
    /// PermitRemoteOpen (empty: any).
    pub fn permit_remote_open(&self) -> &[String] {
        &self.opts.permitted_remote_opens
    }
    /// EscapeChar (`None`: disabled).
    pub fn escape_char(&self) -> Option<u8> {
        self.opts.escape_char.unwrap_or(Some(b'~'))
    }
    /// AddKeysToAgent and its lifespan in seconds (0: forever).
    pub fn add_keys_to_agent(&self) -> (AddKeysToAgent, u32) {
        self.opts
            .add_keys_to_agent
            .unwrap_or((AddKeysToAgent::No, 0))
    }
    /// ForwardAgent's socket path, if one was given instead of yes/no.
    pub fn forward_agent_socket(&self) -> Option<&str> {
        self.opts.forward_agent_sock_path.as_deref()
    }
    /// StreamLocalBindMask (default 0177).
    pub fn stream_local_bind_mask(&self) -> u32 {
        self.opts.streamlocal_bind_mask.unwrap_or(0o177)
    }
    /// RekeyLimit bytes (0: default) and interval (zero: none).
    pub fn rekey_limit(&self) -> (u64, Duration) {
        (
            self.opts.rekey_limit.unwrap_or(0),
            Duration::from_secs(u64::from(self.opts.rekey_interval.unwrap_or(0))),
        )
    }

    /// ForwardX11Timeout (default 20 minutes).
    pub fn forward_x11_timeout(&self) -> Duration {
        Duration::from_secs(u64::from(self.opts.forward_x11_timeout.unwrap_or(1200)))
    }
    /// TunnelDevice (local, remote); `None` means "any".
    pub fn tunnel_device(&self) -> (Option<u32>, Option<u32>) {
        let (local, remote) = self.opts.tun_device.unwrap_or((TUN_ANY, TUN_ANY));
        let one = |v: i32| (v != TUN_ANY).then(|| v.max(0) as u32);
        (one(local), one(remote))
    }
    /// LogVerbose patterns.
    pub fn log_verbose(&self) -> &[String] {
        &self.opts.log_verbose
    }
    /// SyslogFacility (default USER).
    pub fn syslog_facility(&self) -> &str {
        self.opts.log_facility.unwrap_or("USER")
    }
    /// FingerprintHash (default SHA256).
    pub fn fingerprint_hash(&self) -> &str {
        self.opts.fingerprint_hash.unwrap_or("SHA256")
    }
    /// XAuthLocation (default /usr/bin/xauth).
    pub fn xauth_location(&self) -> &str {
        self.opts
            .xauth_location
            .as_deref()
            .unwrap_or("/usr/bin/xauth")
    }
    /// IPQoS (interactive, bulk) TOS values; `i32::MAX` means `none`.
    pub fn ip_qos(&self) -> (i32, i32) {
        self.opts.ip_qos.unwrap_or(IPQOS_DEFAULT)
    }
    /// RequiredRSASize (default 1024).
    pub fn required_rsa_size(&self) -> u32 {
        self.opts
            .required_rsa_size
            .map_or(1024, |n| n.max(0) as u32)
    }

    flags! {
        /// GSSAPIAuthentication (`-K`).
        gssapi_authentication => gss_authentication, false;
        /// GSSAPIDelegateCredentials (`-K`, `-k`).
        gssapi_delegate_credentials => gss_deleg_creds, false;
        /// EnableSSHKeysign.
        enable_ssh_keysign => enable_ssh_keysign, false;
        /// ForwardAgent.
        forward_agent => forward_agent, false;
        /// IdentitiesOnly.
        identities_only => identities_only, false;
        /// GatewayPorts (`-g`).
        gateway_ports => gateway_ports, false;
        /// ExitOnForwardFailure.
        exit_on_forward_failure => exit_on_forward_failure, false;
        /// ClearAllForwardings.
        clear_all_forwardings => clear_forwardings, false;
        /// TCPKeepAlive.
        tcp_keep_alive => tcp_keep_alive, true;
        /// HashKnownHosts.
        hash_known_hosts => hash_known_hosts, false;
        /// CheckHostIP.
        check_host_ip => check_host_ip, false;
        /// BatchMode.
        batch_mode => batch_mode, false;
        /// PasswordAuthentication.
        password_authentication => password_authentication, true;
        /// KbdInteractiveAuthentication.
        kbd_interactive_authentication => kbd_interactive_authentication, true;
        /// HostbasedAuthentication.
        hostbased_authentication => hostbased_authentication, false;
        /// Compression (`-C`).
        compression => compression, false;
        /// StdinNull (`-n`).
        stdin_null => stdin_null, false;
        /// ForkAfterAuthentication (`-f`).
        fork_after_authentication => fork_after_authentication, false;
        /// StreamLocalBindUnlink.
        stream_local_bind_unlink => streamlocal_bind_unlink, false;
        /// VisualHostKey.
        visual_host_key => visual_host_key, false;
        /// PermitLocalCommand.
        permit_local_command => permit_local_command, false;
        /// CanonicalizeFallbackLocal.
        canonicalize_fallback_local => canonicalize_fallback_local, true;
        /// ForwardX11 (`-X`, `-Y`).
        forward_x11 => forward_x11, false;
        /// ForwardX11Trusted (Debian's default: yes).
        forward_x11_trusted => forward_x11_trusted, true;
        /// ProxyUseFdpass.
        proxy_use_fdpass => proxy_use_fdpass, false;
        /// NoHostAuthenticationForLocalhost.
        no_host_authentication_for_localhost => no_host_auth_for_localhost, false;
        /// EnableEscapeCommandline.
        enable_escape_commandline => enable_escape_commandline, false;
    }

    enums! {
        /// StrictHostKeyChecking.
        strict_host_key_checking: StrictHostKeyChecking => strict_host_key_checking, StrictHostKeyChecking::Ask;
        /// PubkeyAuthentication.
        pubkey_authentication: PubkeyAuthentication => pubkey_authentication, PubkeyAuthentication::Yes;
        /// ControlMaster (`-M`).
        control_master: ControlMaster => control_master, ControlMaster::No;
        /// RequestTTY (`-t`, `-T`).
        request_tty: RequestTty => request_tty, RequestTty::Auto;
        /// SessionType (`-N`, `-s`).
        session_type: SessionType => session_type, SessionType::Default;
        /// LogLevel (`-q`, `-v`).
        log_level: LogLevel => log_level, LogLevel::Info;
        /// AddressFamily (`-4`, `-6`).
        address_family: AddressFamily => address_family, AddressFamily::Any;
        /// CanonicalizeHostname.
        canonicalize_hostname: CanonicalizeHostname => canonicalize_hostname, CanonicalizeHostname::No;
        /// VerifyHostKeyDNS.
        verify_host_key_dns: YesNoAsk => verify_host_key_dns, YesNoAsk::No;
        /// UpdateHostKeys.
        update_host_keys: YesNoAsk => update_hostkeys, YesNoAsk::Yes;
        /// Tunnel (`-w`).
        tunnel: Tunnel => tun_open, Tunnel::No;
    }

    strings! {
        /// IdentityAgent, expanded (`none` and `SSH_AUTH_SOCK` are kept as is).
        identity_agent => identity_agent;
        /// ControlPath, expanded (`None` for unset or `none`).
        control_path => control_path;
        /// HostKeyAlias, lowercased.
        host_key_alias => host_key_alias;
        /// PreferredAuthentications.
        preferred_authentications => preferred_authentications;
        /// RemoteCommand, with tokens expanded.
        remote_command => remote_command;
        /// BindAddress (`-b`).
        bind_address => bind_address;
        /// BindInterface (`-B`).
        bind_interface => bind_interface;
        /// IgnoreUnknown patterns.
        ignore_unknown => ignored_unknown;
        /// RevokedHostKeys.
        revoked_host_keys => revoked_host_keys;
        /// PKCS11Provider (`-I`; `None` for unset or `none`).
        pkcs11_provider => pkcs11_provider;
        /// SecurityKeyProvider (default `internal`; `None` for `none`).
        security_key_provider => sk_provider;
        /// KbdInteractiveDevices.
        kbd_interactive_devices => kbd_interactive_devices;
    }

    lists! {
        /// Ciphers, after modifiers.
        ciphers => ciphers;
        /// MACs, after modifiers.
        macs => macs;
        /// KexAlgorithms, after modifiers.
        kex_algorithms => kex;
        /// HostKeyAlgorithms, after modifiers.
        host_key_algorithms => host_key;
        /// HostbasedAcceptedAlgorithms, after modifiers.
        hostbased_accepted_algorithms => hostbased;
        /// PubkeyAcceptedAlgorithms, after modifiers.
        pubkey_accepted_algorithms => pubkey;
        /// CASignatureAlgorithms, after modifiers.
        ca_signature_algorithms => ca_signature;
    }
}

mod dump;
mod support;
pub use support::{KEYWORDS, Support};
