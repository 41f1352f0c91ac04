//! The option store and the per-keyword parsers (`readconf.c`
//! `process_config_line_depth`, minus Host/Match/Include which the engine
//! owns).
//!
//! Design choice: every field starts unset (`None`/empty) and a line only
//! fills an unset field ("first obtained value wins"); the few keywords that
//! accumulate or that OpenSSH sets even in inactive blocks say so where they
//! are parsed. Values are validated even when the line is inactive, because
//! OpenSSH reports bad values in blocks that do not apply, too.

use crate::algorithms::{AlgorithmList, Algorithms};
use crate::env::Environment;
use crate::error::LineErrorKind as E;
use crate::expand::dollar_expand;
use crate::forward::Forward;
use crate::jump::{Jump, parse_jump};
use crate::keyword::{Keyword as K, canonical_name};
use crate::lexer::Args;
use crate::pattern::match_pattern;
use crate::values::*;

/// Where an IdentityFile/CertificateFile came from; OpenSSH only
/// de-duplicates entries of the same origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// System config or built-in default.
    System = 0,
    /// The `-i` flag.
    Flag = 1,
    /// `-o`, `-F` or `~/.ssh/config`.
    User = 2,
}

const MAX_IDENTITY_FILES: usize = 100;
const MAX_CERTIFICATE_FILES: usize = 100;
const MAX_HOSTS_FILES: usize = 32;
const MAX_CANON_DOMAINS: usize = 32;

/// Every option, unset until something sets it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Options {
    pub(crate) forward_agent: Option<bool>,
    pub(crate) forward_agent_sock_path: Option<String>,
    pub(crate) forward_x11: Option<bool>,
    pub(crate) forward_x11_trusted: Option<bool>,
    pub(crate) forward_x11_timeout: Option<u32>,
    pub(crate) clear_forwardings: Option<bool>,
    pub(crate) exit_on_forward_failure: Option<bool>,
    pub(crate) xauth_location: Option<String>,
    pub(crate) gateway_ports: Option<bool>,
    pub(crate) streamlocal_bind_mask: Option<u32>,
    pub(crate) streamlocal_bind_unlink: Option<bool>,
    pub(crate) pubkey_authentication: Option<PubkeyAuthentication>,
    pub(crate) gss_authentication: Option<bool>,
    pub(crate) gss_deleg_creds: Option<bool>,
    pub(crate) gss_keyex: Option<bool>,
    pub(crate) gss_trust_dns: Option<bool>,
    pub(crate) gss_renewal_rekey: Option<bool>,
    pub(crate) gss_client_identity: Option<String>,
    pub(crate) gss_server_identity: Option<String>,
    pub(crate) gss_kex_algorithms: Option<String>,
    pub(crate) password_authentication: Option<bool>,
    pub(crate) kbd_interactive_authentication: Option<bool>,
    pub(crate) kbd_interactive_devices: Option<String>,
    pub(crate) hostbased_authentication: Option<bool>,
    pub(crate) batch_mode: Option<bool>,
    pub(crate) check_host_ip: Option<bool>,
    pub(crate) strict_host_key_checking: Option<StrictHostKeyChecking>,
    pub(crate) compression: Option<bool>,
    pub(crate) tcp_keep_alive: Option<bool>,
    pub(crate) port: Option<u16>,
    pub(crate) address_family: Option<AddressFamily>,
    pub(crate) connection_attempts: Option<i32>,
    pub(crate) connect_timeout: Option<u32>,
    pub(crate) number_of_password_prompts: Option<i32>,
    pub(crate) ciphers: Option<String>,
    pub(crate) macs: Option<String>,
    pub(crate) kex_algorithms: Option<String>,
    pub(crate) host_key_algorithms: Option<String>,
    pub(crate) ca_sign_algorithms: Option<String>,
    pub(crate) hostbased_algorithms: Option<String>,
    pub(crate) pubkey_algorithms: Option<String>,
    pub(crate) identity_files: Vec<(String, Origin)>,
    pub(crate) certificate_files: Vec<(String, Origin)>,
    pub(crate) hostname: Option<String>,
    pub(crate) host_key_alias: Option<String>,
    pub(crate) proxy_command: Option<String>,
    pub(crate) jump: Option<Jump>,
    pub(crate) user: Option<String>,
    pub(crate) escape_char: Option<Option<u8>>,
    pub(crate) system_hostfiles: Vec<String>,
    pub(crate) user_hostfiles: Vec<String>,
    pub(crate) local_forwards: Vec<Forward>,
    pub(crate) remote_forwards: Vec<Forward>,
    pub(crate) permitted_remote_opens: Vec<String>,
    pub(crate) log_facility: Option<&'static str>,
    pub(crate) log_level: Option<LogLevel>,
    pub(crate) log_verbose: Vec<String>,
    pub(crate) preferred_authentications: Option<String>,
    pub(crate) bind_address: Option<String>,
    pub(crate) bind_interface: Option<String>,
    pub(crate) pkcs11_provider: Option<String>,
    pub(crate) sk_provider: Option<String>,
    pub(crate) enable_ssh_keysign: Option<bool>,
    pub(crate) no_host_auth_for_localhost: Option<bool>,
    pub(crate) identities_only: Option<bool>,
    pub(crate) rekey_limit: Option<u64>,
    pub(crate) rekey_interval: Option<u32>,
    pub(crate) verify_host_key_dns: Option<YesNoAsk>,
    pub(crate) server_alive_interval: Option<u32>,
    pub(crate) server_alive_count_max: Option<i32>,
    pub(crate) send_env: Vec<String>,
    pub(crate) set_env: Vec<String>,
    pub(crate) control_path: Option<String>,
    pub(crate) control_master: Option<ControlMaster>,
    pub(crate) control_persist: Option<ControlPersist>,
    pub(crate) hash_known_hosts: Option<bool>,
    pub(crate) tun_open: Option<Tunnel>,
    pub(crate) tun_device: Option<(i32, i32)>,
    pub(crate) local_command: Option<String>,
    pub(crate) permit_local_command: Option<bool>,
    pub(crate) remote_command: Option<String>,
    pub(crate) add_keys_to_agent: Option<(AddKeysToAgent, u32)>,
    pub(crate) identity_agent: Option<String>,
    pub(crate) visual_host_key: Option<bool>,
    pub(crate) ip_qos: Option<(i32, i32)>,
    pub(crate) request_tty: Option<RequestTty>,
    pub(crate) session_type: Option<SessionType>,
    pub(crate) stdin_null: Option<bool>,
    pub(crate) fork_after_authentication: Option<bool>,
    pub(crate) proxy_use_fdpass: Option<bool>,
    pub(crate) ignored_unknown: Option<String>,
    pub(crate) canonical_domains: Vec<String>,
    pub(crate) permitted_cnames: Vec<(String, String)>,
    pub(crate) canonicalize_max_dots: Option<i32>,
    pub(crate) canonicalize_fallback_local: Option<bool>,
    pub(crate) canonicalize_hostname: Option<CanonicalizeHostname>,
    pub(crate) revoked_host_keys: Option<String>,
    pub(crate) fingerprint_hash: Option<&'static str>,
    pub(crate) update_hostkeys: Option<YesNoAsk>,
    pub(crate) known_hosts_command: Option<String>,
    pub(crate) required_rsa_size: Option<i32>,
    pub(crate) enable_escape_commandline: Option<bool>,
    /// `-W host:port` (not a config keyword, but it changes defaults).
    pub(crate) stdio_forward: Option<(Option<String>, u16)>,
}

/// Everything a keyword parser may need to know about its line.
pub(crate) struct Line<'a> {
    /// The keyword as typed, lowercased (for messages).
    pub(crate) keyword: &'a str,
    /// The raw text after the keyword (OpenSSH's `str`), for commands.
    pub(crate) raw: &'a str,
    /// Whether the enclosing Host/Match block applies.
    pub(crate) active: bool,
    /// Origin for IdentityFile/CertificateFile de-duplication.
    pub(crate) origin: Origin,
    pub(crate) env: &'a dyn Environment,
    pub(crate) algorithms: &'a Algorithms,
    /// A `-o` option (ProxyJump is checked strictly there).
    pub(crate) command_line: bool,
}

/// A rejected line: counted (`Bad`) or fatal at once (`Fatal`).
#[derive(Debug)]
pub(crate) enum Failure {
    Bad(E),
    Fatal(String),
}

impl From<E> for Failure {
    fn from(e: E) -> Self {
        Failure::Bad(e)
    }
}

type Outcome = Result<(), Failure>;

fn fill<T>(field: &mut Option<T>, active: bool, value: T) {
    if active && field.is_none() {
        *field = Some(value);
    }
}

fn required(args: &mut Args) -> Result<String, E> {
    args.next_arg()
        .filter(|a| !a.is_empty())
        .ok_or(E::MissingArgument)
}

impl Options {
    /// Apply one line's keyword. Host, Match, Include, Ignore, Deprecated
    /// and Unsupported are the engine's.
    pub(crate) fn apply(&mut self, keyword: K, args: &mut Args, line: &Line<'_>) -> Outcome {
        if let Some(field) = self.flag_field(keyword) {
            let value = parse_multistate_arg(args, parse_flag)?;
            fill(field, line.active, value);
            return Ok(());
        }
        if let Some(field) = self.string_field(keyword) {
            let value = required(args)?;
            fill(field, line.active, value);
            return Ok(());
        }
        if let Some(field) = self.time_field(keyword) {
            return parse_time(field, args, line.active);
        }
        if let Some(field) = self.int_field(keyword) {
            let value = atoi_err(args.next_arg().as_deref()).map_err(E::Integer)?;
            fill(field, line.active, value);
            return Ok(());
        }
        if let Some(field) = self.command_field(keyword) {
            return parse_command(field, args, line);
        }
        self.apply_special(keyword, args, line)
    }

    fn flag_field(&mut self, keyword: K) -> Option<&mut Option<bool>> {
        Some(match keyword {
            K::ForwardX11 => &mut self.forward_x11,
            K::ForwardX11Trusted => &mut self.forward_x11_trusted,
            K::GatewayPorts => &mut self.gateway_ports,
            K::ExitOnForwardFailure => &mut self.exit_on_forward_failure,
            K::PasswordAuthentication => &mut self.password_authentication,
            K::KbdInteractiveAuthentication => &mut self.kbd_interactive_authentication,
            K::HostbasedAuthentication => &mut self.hostbased_authentication,
            K::GssAuthentication => &mut self.gss_authentication,
            K::GssDelegateCreds => &mut self.gss_deleg_creds,
            K::GssKeyEx => &mut self.gss_keyex,
            K::GssTrustDns => &mut self.gss_trust_dns,
            K::GssRenewalRekey => &mut self.gss_renewal_rekey,
            K::BatchMode => &mut self.batch_mode,
            K::CheckHostIp => &mut self.check_host_ip,
            K::TcpKeepAlive => &mut self.tcp_keep_alive,
            K::NoHostAuthenticationForLocalhost => &mut self.no_host_auth_for_localhost,
            K::ClearAllForwardings => &mut self.clear_forwardings,
            K::EnableSshKeysign => &mut self.enable_ssh_keysign,
            K::IdentitiesOnly => &mut self.identities_only,
            K::HashKnownHosts => &mut self.hash_known_hosts,
            K::PermitLocalCommand => &mut self.permit_local_command,
            K::VisualHostKey => &mut self.visual_host_key,
            K::StdinNull => &mut self.stdin_null,
            K::ForkAfterAuthentication => &mut self.fork_after_authentication,
            K::ProxyUseFdpass => &mut self.proxy_use_fdpass,
            K::CanonicalizeFallbackLocal => &mut self.canonicalize_fallback_local,
            K::StreamLocalBindUnlink => &mut self.streamlocal_bind_unlink,
            K::EnableEscapeCommandline => &mut self.enable_escape_commandline,
            _ => return None,
        })
    }

    fn string_field(&mut self, keyword: K) -> Option<&mut Option<String>> {
        Some(match keyword {
            K::KbdInteractiveDevices => &mut self.kbd_interactive_devices,
            K::XAuthLocation => &mut self.xauth_location,
            K::User => &mut self.user,
            K::Hostname => &mut self.hostname,
            K::HostKeyAlias => &mut self.host_key_alias,
            K::PreferredAuthentications => &mut self.preferred_authentications,
            K::BindAddress => &mut self.bind_address,
            K::BindInterface => &mut self.bind_interface,
            K::Pkcs11Provider => &mut self.pkcs11_provider,
            K::SecurityKeyProvider => &mut self.sk_provider,
            K::ControlPath => &mut self.control_path,
            K::IgnoreUnknown => &mut self.ignored_unknown,
            K::RevokedHostKeys => &mut self.revoked_host_keys,
            K::GssClientIdentity => &mut self.gss_client_identity,
            K::GssServerIdentity => &mut self.gss_server_identity,
            _ => return None,
        })
    }

    fn time_field(&mut self, keyword: K) -> Option<&mut Option<u32>> {
        Some(match keyword {
            K::ConnectTimeout => &mut self.connect_timeout,
            K::ForwardX11Timeout => &mut self.forward_x11_timeout,
            K::ServerAliveInterval => &mut self.server_alive_interval,
            _ => return None,
        })
    }

    fn int_field(&mut self, keyword: K) -> Option<&mut Option<i32>> {
        Some(match keyword {
            K::NumberOfPasswordPrompts => &mut self.number_of_password_prompts,
            K::ConnectionAttempts => &mut self.connection_attempts,
            K::ServerAliveCountMax => &mut self.server_alive_count_max,
            K::CanonicalizeMaxDots => &mut self.canonicalize_max_dots,
            K::RequiredRsaSize => &mut self.required_rsa_size,
            _ => return None,
        })
    }

    fn command_field(&mut self, keyword: K) -> Option<&mut Option<String>> {
        Some(match keyword {
            K::LocalCommand => &mut self.local_command,
            K::RemoteCommand => &mut self.remote_command,
            K::KnownHostsCommand => &mut self.known_hosts_command,
            _ => return None,
        })
    }

    /// A dispatch table: one arm per keyword with its own parser.
    fn apply_special(&mut self, keyword: K, args: &mut Args, line: &Line<'_>) -> Outcome {
        let active = line.active;
        match keyword {
            K::PubkeyAuthentication => multistate(
                &mut self.pubkey_authentication,
                args,
                active,
                PubkeyAuthentication::parse,
            ),
            K::VerifyHostKeyDns => {
                multistate(&mut self.verify_host_key_dns, args, active, YesNoAsk::parse)
            }
            K::UpdateHostkeys => {
                multistate(&mut self.update_hostkeys, args, active, YesNoAsk::parse)
            }
            K::StrictHostKeyChecking => multistate(
                &mut self.strict_host_key_checking,
                args,
                active,
                StrictHostKeyChecking::parse,
            ),
            K::Compression => multistate(&mut self.compression, args, active, parse_compression),
            K::AddressFamily => {
                multistate(&mut self.address_family, args, active, AddressFamily::parse)
            }
            K::ControlMaster => {
                multistate(&mut self.control_master, args, active, ControlMaster::parse)
            }
            K::Tunnel => multistate(&mut self.tun_open, args, active, Tunnel::parse),
            K::RequestTty => multistate(&mut self.request_tty, args, active, RequestTty::parse),
            K::SessionType => multistate(&mut self.session_type, args, active, SessionType::parse),
            K::CanonicalizeHostname => multistate(
                &mut self.canonicalize_hostname,
                args,
                active,
                CanonicalizeHostname::parse,
            ),
            K::ForwardAgent => self.parse_forward_agent(args, line),
            K::RekeyLimit => self.parse_rekey_limit(args, active),
            K::IdentityFile => add_file(
                &mut self.identity_files,
                MAX_IDENTITY_FILES,
                "identity",
                args,
                line,
            ),
            K::CertificateFile => add_file(
                &mut self.certificate_files,
                MAX_CERTIFICATE_FILES,
                "certificate",
                args,
                line,
            ),
            K::GlobalKnownHostsFile => string_array(&mut self.system_hostfiles, args, line),
            K::UserKnownHostsFile => string_array(&mut self.user_hostfiles, args, line),
            // A ProxyJump already seen set ProxyCommand to "none", so it wins.
            K::ProxyCommand => parse_command(&mut self.proxy_command, args, line),
            K::ProxyJump => self.parse_proxy_jump(args, line),
            K::Port => self.parse_port(args, active),
            K::Ciphers => self.parse_algorithms(keyword, args, line),
            K::Macs => self.parse_algorithms(keyword, args, line),
            K::KexAlgorithms => self.parse_algorithms(keyword, args, line),
            K::HostKeyAlgorithms => self.parse_algorithms(keyword, args, line),
            K::CaSignatureAlgorithms => self.parse_algorithms(keyword, args, line),
            K::HostbasedAcceptedAlgorithms => self.parse_algorithms(keyword, args, line),
            K::PubkeyAcceptedAlgorithms => self.parse_algorithms(keyword, args, line),
            K::GssKexAlgorithms => self.parse_algorithms(keyword, args, line),
            K::LogLevel => self.parse_log_level(args, active),
            K::LogFacility => self.parse_log_facility(args),
            K::LogVerbose => self.parse_log_verbose(args, line),
            K::LocalForward | K::RemoteForward | K::DynamicForward => {
                self.parse_forward(keyword, args, line)
            }
            K::PermitRemoteOpen => self.parse_permit_remote_open(args, line),
            K::EscapeChar => self.parse_escape_char(args, active),
            K::SendEnv => self.parse_send_env(args, active),
            K::SetEnv => self.parse_set_env(args, active),
            K::ControlPersist => self.parse_control_persist(args, active),
            K::TunnelDevice => self.parse_tunnel_device(args, active),
            K::IpQos => self.parse_ip_qos(args, active),
            K::CanonicalDomains => self.parse_canonical_domains(args, line),
            K::CanonicalizePermittedCnames => self.parse_permitted_cnames(args, line),
            K::StreamLocalBindMask => self.parse_bind_mask(args),
            K::FingerprintHash => self.parse_fingerprint_hash(args, active),
            K::AddKeysToAgent => self.parse_add_keys_to_agent(args, active),
            K::IdentityAgent => {
                let arg = required(args)?;
                agent_path(&mut self.identity_agent, arg, line)
            }
            _ => Ok(()),
        }
    }

    fn parse_forward_agent(&mut self, args: &mut Args, line: &Line<'_>) -> Outcome {
        let arg = args
            .next_arg()
            .filter(|a| !a.is_empty())
            .ok_or(E::MissingArgumentLower)?;
        if let Some(value) = parse_flag(&arg) {
            fill(&mut self.forward_agent, line.active, value);
            return Ok(());
        }
        // Not yes/no: a socket path, which also means "yes".
        fill(&mut self.forward_agent, line.active, true);
        agent_path(&mut self.forward_agent_sock_path, arg, line)
    }

    fn parse_rekey_limit(&mut self, args: &mut Args, active: bool) -> Outcome {
        let arg = required(args)?;
        let limit = if arg == "default" {
            0
        } else {
            let v = scan_scaled(&arg).map_err(|e| E::BadNumber(arg.clone(), e))?;
            if v != 0 && v < 16 {
                return Err(E::RekeyLimitTooSmall.into());
            }
            v
        };
        fill(&mut self.rekey_limit, active, limit);
        match args.peek() {
            None => Ok(()),
            Some("none") => {
                args.next_arg();
                Ok(())
            }
            Some(_) => parse_time(&mut self.rekey_interval, args, active),
        }
    }

    fn parse_proxy_jump(&mut self, args: &mut Args, line: &Line<'_>) -> Outcome {
        let value = line.raw.trim_start_matches([' ', '\t', '\r', '\n', '=']);
        let jump = parse_jump(value, line.command_line)
            .ok_or_else(|| E::BadProxyJump(value.to_owned()))?;
        args.consume();
        if !line.active || self.proxy_command.is_some() || self.jump.is_some() {
            return Ok(());
        }
        if let Jump::Hosts(_) = jump {
            self.proxy_command = Some("none".to_owned());
        }
        self.jump = Some(jump);
        Ok(())
    }

    fn parse_port(&mut self, args: &mut Args, active: bool) -> Outcome {
        let arg = required(args)?;
        let port = a2port(&arg)
            .filter(|&p| p > 0)
            .ok_or_else(|| E::BadPort(arg.clone()))?;
        fill(&mut self.port, active, port);
        Ok(())
    }

    fn parse_algorithms(&mut self, keyword: K, args: &mut Args, line: &Line<'_>) -> Outcome {
        let arg = required(args)?;
        let algorithms = line.algorithms;
        let (field, family, wildcards, error): (_, &AlgorithmList, _, fn(String) -> E) =
            match keyword {
                K::Ciphers => (&mut self.ciphers, &algorithms.ciphers, false, E::BadCiphers),
                K::Macs => (&mut self.macs, &algorithms.macs, false, E::BadMacs),
                K::KexAlgorithms => (&mut self.kex_algorithms, &algorithms.kex, false, E::BadKex),
                K::HostKeyAlgorithms => (
                    &mut self.host_key_algorithms,
                    &algorithms.host_key,
                    true,
                    E::BadKeyTypes,
                ),
                K::CaSignatureAlgorithms => (
                    &mut self.ca_sign_algorithms,
                    &algorithms.ca_signature,
                    true,
                    E::BadKeyTypes,
                ),
                K::HostbasedAcceptedAlgorithms => (
                    &mut self.hostbased_algorithms,
                    &algorithms.hostbased,
                    true,
                    E::BadKeyTypes,
                ),
                K::PubkeyAcceptedAlgorithms => (
                    &mut self.pubkey_algorithms,
                    &algorithms.pubkey,
                    true,
                    E::BadKeyTypes,
                ),
                _ => (
                    &mut self.gss_kex_algorithms,
                    &algorithms.gssapi_kex,
                    false,
                    E::BadGssKex,
                ),
            };
        if !family.is_valid_spec(&arg, wildcards) {
            return Err(error(arg).into());
        }
        fill(field, line.active, arg);
        Ok(())
    }

    fn parse_log_level(&mut self, args: &mut Args, active: bool) -> Outcome {
        let arg = args.next_arg();
        let level = arg
            .as_deref()
            .and_then(LogLevel::parse)
            .ok_or_else(|| E::BadLogLevel(arg.clone().unwrap_or_else(|| "<NONE>".into())))?;
        fill(&mut self.log_level, active, level);
        Ok(())
    }

    fn parse_log_facility(&mut self, args: &mut Args) -> Outcome {
        let arg = args.next_arg();
        let facility = arg
            .as_deref()
            .and_then(parse_log_facility)
            .ok_or_else(|| E::BadLogFacility(arg.clone().unwrap_or_else(|| "<NONE>".into())))?;
        // OpenSSH sets SyslogFacility even inside blocks that do not apply.
        fill(&mut self.log_facility, true, facility);
        Ok(())
    }

    /// OpenSSH checks "still empty" per argument here, so only the first
    /// argument of the first LogVerbose line is kept.
    fn parse_log_verbose(&mut self, args: &mut Args, line: &Line<'_>) -> Outcome {
        let mut first = true;
        while let Some(arg) = args.next_arg() {
            check_list_entry(&arg, first, args, line.keyword)?;
            first = false;
            if line.active && self.log_verbose.is_empty() {
                self.log_verbose.push(arg);
            }
        }
        Ok(())
    }

    fn parse_forward(&mut self, keyword: K, args: &mut Args, line: &Line<'_>) -> Outcome {
        let arg = required(args)?;
        let remote = keyword == K::RemoteForward;
        let mut dynamic = keyword == K::DynamicForward;
        let mut spec = arg.clone();
        if !dynamic {
            match args.next_arg().filter(|a| !a.is_empty()) {
                Some(target) => spec = format!("{arg}:{target}"),
                None if remote => dynamic = true,
                None => return Err(E::MissingForwardTarget.into()),
            }
        }
        // OpenSSH builds the spec in a 256-byte buffer.
        truncate_bytes(&mut spec, 255);
        let forward = Forward::parse(&spec, dynamic, remote, line.env).ok_or(E::BadForward)?;
        if line.active {
            let list = if remote {
                &mut self.remote_forwards
            } else {
                &mut self.local_forwards
            };
            if !list.contains(&forward) {
                list.push(forward);
            }
        }
        Ok(())
    }

    fn parse_permit_remote_open(&mut self, args: &mut Args, line: &Line<'_>) -> Outcome {
        let was_empty = self.permitted_remote_opens.is_empty();
        let name = canonical_name(K::PermitRemoteOpen);
        let mut count = 0;
        while let Some(arg) = args.next_arg() {
            if arg.eq_ignore_ascii_case("none") || arg.eq_ignore_ascii_case("any") {
                if count > 0 || args.remaining() > 0 {
                    return Err(E::MustAppearAlone(line.keyword.to_owned(), arg).into());
                }
            } else {
                check_permit_open(&arg, name)?;
            }
            if line.active && was_empty {
                self.permitted_remote_opens.push(arg);
            }
            count += 1;
        }
        if count == 0 {
            return Err(Failure::Fatal(format!("missing {name} specification")));
        }
        Ok(())
    }

    fn parse_escape_char(&mut self, args: &mut Args, active: bool) -> Outcome {
        let arg = required(args)?;
        let value = parse_escape_char(&arg).ok_or(E::BadEscapeChar)?;
        fill(&mut self.escape_char, active, value);
        Ok(())
    }

    fn parse_send_env(&mut self, args: &mut Args, active: bool) -> Outcome {
        while let Some(arg) = args.next_arg() {
            if arg.is_empty() || arg.contains('=') {
                return Err(E::BadSendEnv.into());
            }
            if !active {
                continue;
            }
            match arg.strip_prefix('-') {
                Some(pattern) => self.send_env.retain(|name| !match_pattern(name, pattern)),
                None => self.send_env.push(arg),
            }
        }
        Ok(())
    }

    fn parse_set_env(&mut self, args: &mut Args, active: bool) -> Outcome {
        let was_empty = self.set_env.is_empty();
        while let Some(arg) = args.next_arg() {
            let Some((name, _)) = arg.split_once('=') else {
                return Err(E::BadSetEnv.into());
            };
            if !active || !was_empty {
                continue;
            }
            let duplicate = self
                .set_env
                .iter()
                .any(|e| e.split_once('=').is_some_and(|(n, _)| n == name));
            if !duplicate {
                self.set_env.push(arg);
            }
        }
        Ok(())
    }

    fn parse_control_persist(&mut self, args: &mut Args, active: bool) -> Outcome {
        let arg = args
            .next_arg()
            .filter(|a| !a.is_empty())
            .ok_or(E::MissingControlPersist)?;
        let value = match arg.as_str() {
            "no" | "false" => ControlPersist::No,
            "yes" | "true" => ControlPersist::Yes,
            other => ControlPersist::Timeout(parse_duration(other).ok_or(E::BadControlPersist)?),
        };
        fill(&mut self.control_persist, active, value);
        Ok(())
    }

    fn parse_tunnel_device(&mut self, args: &mut Args, active: bool) -> Outcome {
        let arg = required(args)?;
        let value = parse_tun_device(&arg).ok_or(E::BadTunDevice)?;
        fill(&mut self.tun_device, active, value);
        Ok(())
    }

    fn parse_ip_qos(&mut self, args: &mut Args, active: bool) -> Outcome {
        let first = args.next_arg();
        let bad = |a: &Option<String>| E::BadIpQos(a.clone().unwrap_or_else(|| "(null)".into()));
        let interactive = first
            .as_deref()
            .and_then(parse_ipqos)
            .ok_or_else(|| bad(&first))?;
        let second = args.next_arg();
        let bulk = match &second {
            None => interactive,
            Some(s) => parse_ipqos(s).ok_or_else(|| bad(&second))?,
        };
        fill(&mut self.ip_qos, active, (interactive, bulk));
        Ok(())
    }

    fn parse_canonical_domains(&mut self, args: &mut Args, line: &Line<'_>) -> Outcome {
        let was_set = !self.canonical_domains.is_empty();
        let mut first = true;
        while let Some(arg) = args.next_arg() {
            check_list_entry(&arg, first, args, line.keyword)?;
            first = false;
            let domain = valid_domain(&arg).map_err(E::BadDomain)?;
            if !line.active || was_set {
                continue;
            }
            if self.canonical_domains.len() >= MAX_CANON_DOMAINS {
                return Err(E::TooManyEntries("hostname suffixes".into()).into());
            }
            self.canonical_domains.push(domain);
        }
        Ok(())
    }

    fn parse_permitted_cnames(&mut self, args: &mut Args, line: &Line<'_>) -> Outcome {
        let was_set = !self.permitted_cnames.is_empty();
        let mut count = 0;
        while let Some(arg) = args.next_arg() {
            let rule = if arg.eq_ignore_ascii_case("none") {
                if count > 0 || args.remaining() > 0 {
                    return Err(E::MustAppearAlone(line.keyword.to_owned(), arg).into());
                }
                (arg, String::new())
            } else if arg == "*" {
                (arg.clone(), arg)
            } else {
                let lower = arg.to_ascii_lowercase();
                match lower.split_once(':') {
                    Some((from, to)) if !to.is_empty() => (from.to_owned(), to.to_owned()),
                    _ => return Err(E::BadPermittedCname(lower).into()),
                }
            };
            count += 1;
            if line.active && !was_set {
                self.permitted_cnames.push(rule);
            }
        }
        Ok(())
    }

    fn parse_bind_mask(&mut self, args: &mut Args) -> Outcome {
        let arg = args
            .next_arg()
            .filter(|a| !a.is_empty())
            .ok_or(E::MissingMask)?;
        let digits = arg.len()
            - arg
                .trim_start_matches(|c: char| ('0'..='7').contains(&c))
                .len();
        let value = u32::from_str_radix(&arg[..digits], 8)
            .ok()
            .filter(|v| *v <= 0o777)
            .ok_or(E::BadMask)?;
        // OpenSSH overwrites this one unconditionally: last value wins,
        // even in blocks that do not apply.
        self.streamlocal_bind_mask = Some(value);
        Ok(())
    }

    fn parse_fingerprint_hash(&mut self, args: &mut Args, active: bool) -> Outcome {
        let arg = required(args)?;
        let name = ["MD5", "SHA1", "SHA256", "SHA384", "SHA512"]
            .into_iter()
            .find(|n| n.eq_ignore_ascii_case(&arg))
            .ok_or(E::BadHash(arg))?;
        fill(&mut self.fingerprint_hash, active, name);
        Ok(())
    }

    fn parse_add_keys_to_agent(&mut self, args: &mut Args, active: bool) -> Outcome {
        let arg = args
            .next_arg()
            .filter(|a| !a.is_empty())
            .ok_or(E::MissingArgumentLower)?;
        let lifespan_arg = args.next_arg();
        let state = AddKeysToAgent::parse(&arg);
        let value = match (state, lifespan_arg) {
            (Some(AddKeysToAgent::Confirm), Some(t)) => (
                AddKeysToAgent::Confirm,
                parse_duration(&t).ok_or(E::InvalidTime)?,
            ),
            (None, None) => (
                AddKeysToAgent::Yes,
                parse_duration(&arg).ok_or(E::UnsupportedAddKeysToAgent)?,
            ),
            (Some(state), None) => (state, 0),
            _ => return Err(E::UnsupportedAddKeysToAgent.into()),
        };
        fill(&mut self.add_keys_to_agent, active, value);
        Ok(())
    }
}

fn parse_compression(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

fn parse_multistate_arg<T>(args: &mut Args, parse: impl Fn(&str) -> Option<T>) -> Result<T, E> {
    let arg = args
        .next_arg()
        .filter(|a| !a.is_empty())
        .ok_or(E::MissingArgumentLower)?;
    parse(&arg).ok_or(E::UnsupportedValue(arg))
}

fn multistate<T>(
    field: &mut Option<T>,
    args: &mut Args,
    active: bool,
    parse: impl Fn(&str) -> Option<T>,
) -> Outcome {
    let value = parse_multistate_arg(args, parse)?;
    fill(field, active, value);
    Ok(())
}

fn parse_time(field: &mut Option<u32>, args: &mut Args, active: bool) -> Outcome {
    let arg = args
        .next_arg()
        .filter(|a| !a.is_empty())
        .ok_or(E::MissingTime)?;
    // "none" is OpenSSH's unset value: it sets nothing.
    if arg == "none" {
        return Ok(());
    }
    let value = parse_duration(&arg).ok_or(E::InvalidTime)?;
    fill(field, active, value);
    Ok(())
}

/// ProxyCommand, LocalCommand, RemoteCommand, KnownHostsCommand: the raw
/// rest of the line, quotes and all.
fn parse_command(field: &mut Option<String>, args: &mut Args, line: &Line<'_>) -> Outcome {
    let command = line.raw.trim_start_matches([' ', '\t', '\r', '\n', '=']);
    fill(field, line.active, command.to_owned());
    args.consume();
    Ok(())
}

fn add_file(
    list: &mut Vec<(String, Origin)>,
    max: usize,
    what: &'static str,
    args: &mut Args,
    line: &Line<'_>,
) -> Outcome {
    let arg = required(args)?;
    if !line.active {
        return Ok(());
    }
    if list.len() >= max {
        return Err(E::TooManyFiles(what, max).into());
    }
    add_unique(list, arg, line.origin);
    Ok(())
}

/// OpenSSH's `add_identity_file`: skip an exact duplicate of the same origin.
pub(crate) fn add_unique(list: &mut Vec<(String, Origin)>, path: String, origin: Origin) {
    if !list.iter().any(|(p, o)| *o == origin && *p == path) {
        list.push((path, origin));
    }
}

/// GlobalKnownHostsFile / UserKnownHostsFile: the first line that applies
/// sets the whole list.
fn string_array(list: &mut Vec<String>, args: &mut Args, line: &Line<'_>) -> Outcome {
    let was_empty = list.is_empty();
    let mut first = true;
    while let Some(arg) = args.next_arg() {
        check_list_entry(&arg, first, args, line.keyword)?;
        first = false;
        if line.active && was_empty {
            if list.len() >= MAX_HOSTS_FILES {
                return Err(E::TooManyEntries(line.keyword.to_owned()).into());
            }
            list.push(arg);
        }
    }
    Ok(())
}

/// Non-empty, and `none` only alone.
fn check_list_entry(arg: &str, first: bool, args: &Args, keyword: &str) -> Result<(), E> {
    if arg.is_empty() {
        return Err(E::EmptyArgument(keyword.to_owned()));
    }
    if arg.eq_ignore_ascii_case("none") && (!first || args.remaining() > 0) {
        return Err(E::MustAppearAlone(keyword.to_owned(), "none".to_owned()));
    }
    Ok(())
}

/// `host:port` for PermitRemoteOpen; OpenSSH treats errors here as fatal.
fn check_permit_open(arg: &str, name: &str) -> Outcome {
    let (host, port) = if let Some(rest) = arg.strip_prefix('[') {
        let close = rest
            .find(']')
            .ok_or_else(|| Failure::Fatal(format!("missing host in {name}")))?;
        (&rest[..close], rest[close + 1..].strip_prefix(':'))
    } else {
        match arg.split_once([':', '/']) {
            Some((h, p)) if arg.as_bytes()[h.len()] == b':' => (h, Some(p)),
            Some(_) => return Err(Failure::Fatal(format!("missing host in {name}"))),
            None => (arg, None),
        }
    };
    let _ = host;
    match port {
        Some(p) if p == "*" || a2port(p).is_some_and(|p| p > 0) => Ok(()),
        _ => Err(Failure::Fatal(format!("bad port number in {name}"))),
    }
}

/// IdentityAgent / ForwardAgent paths: `${VAR}` must expand, and a bare
/// `$NAME` must be a valid variable name.
fn agent_path(field: &mut Option<String>, arg: String, line: &Line<'_>) -> Outcome {
    if dollar_expand(&arg, line.env).is_err() {
        return Err(E::BadEnvExpansion(arg).into());
    }
    if let Some(name) = arg.strip_prefix('$')
        && !name.starts_with('{')
        && !valid_env_name(name)
    {
        return Err(E::BadEnvName(arg).into());
    }
    fill(field, line.active, arg);
    Ok(())
}

fn truncate_bytes(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

#[cfg(test)]
mod tests {
    use crate::env::harness::value;

    /// (config text, `-G` key, expected value(s) joined with `|`).
    const ACCEPTED: &[(&str, &str, &str)] = &[
        ("HostName example.org", "hostname", "example.org"),
        ("HostName %h.example.org", "hostname", "h.example.org"),
        ("HostName Mixed.Case", "hostname", "mixed.case"),
        ("User alice", "user", "alice"),
        ("User \"a b\"", "user", "a b"),
        ("Port 2222", "port", "2222"),
        ("Port=2222", "port", "2222"),
        ("port = 2222", "port", "2222"),
        ("Port ssh", "port", "22"),
        (
            "IdentityFile ~/.ssh/a\nIdentityFile ~/.ssh/b\nIdentityFile ~/.ssh/a",
            "identityfile",
            "~/.ssh/a|~/.ssh/b",
        ),
        ("IdentitiesOnly yes", "identitiesonly", "yes"),
        ("IdentityAgent ${SOCK}", "identityagent", "/run/agent"),
        (
            "IdentityAgent ~/%h.sock",
            "identityagent",
            "/home/me/h.sock",
        ),
        (
            "IdentityAgent SSH_AUTH_SOCK",
            "identityagent",
            "SSH_AUTH_SOCK",
        ),
        (
            "CertificateFile ~/c1\nCertificateFile ~/c1\nCertificateFile ~/c2",
            "certificatefile",
            "~/c1|~/c2",
        ),
        ("AddKeysToAgent yes", "addkeystoagent", "true"),
        ("AddKeysToAgent confirm", "addkeystoagent", "confirm"),
        ("AddKeysToAgent confirm 1m", "addkeystoagent confirm", "60"),
        ("AddKeysToAgent 1h", "addkeystoagent", "3600"),
        ("ForwardAgent yes", "forwardagent", "yes"),
        ("ForwardAgent ~/agent", "forwardagent", "/home/me/agent"),
        ("ProxyJump me@bastion:2222", "proxyjump", "me@bastion:2222"),
        ("ProxyJump a,b,c", "proxyjump", "a,b,c"),
        ("ProxyJump none", "proxyjump", ""),
        (
            "ProxyCommand ssh -W %h:%p gw",
            "proxycommand",
            "ssh -W %h:%p gw",
        ),
        ("ProxyCommand=nc \"%h\" %p", "proxycommand", "nc \"%h\" %p"),
        ("ProxyCommand none", "proxycommand", ""),
        (
            "LocalForward 5432 db:5432",
            "localforward",
            "5432 [db]:5432",
        ),
        (
            "LocalForward 1.2.3.4:80 web:8080",
            "localforward",
            "[1.2.3.4]:80 [web]:8080",
        ),
        (
            "RemoteForward 8080 localhost:80",
            "remoteforward",
            "8080 [localhost]:80",
        ),
        ("RemoteForward 1080", "remoteforward", "1080 [socks]:0"),
        ("DynamicForward 1080", "dynamicforward", "1080"),
        ("GatewayPorts yes", "gatewayports", "yes"),
        ("ExitOnForwardFailure yes", "exitonforwardfailure", "yes"),
        (
            "ClearAllForwardings yes\nLocalForward 1 a:1",
            "localforward",
            "",
        ),
        ("ControlMaster auto", "controlmaster", "auto"),
        ("ControlMaster yes", "controlmaster", "true"),
        (
            "ControlPath ~/.ssh/cm-%r@%h:%p",
            "controlpath",
            "/home/me/.ssh/cm-me@h:22",
        ),
        ("ControlPath none", "controlpath", ""),
        ("ControlPersist yes", "controlpersist", "yes"),
        ("ControlPersist 10m", "controlpersist", "600"),
        ("ControlPersist no", "controlpersist", "no"),
        ("ServerAliveInterval 1m30s", "serveraliveinterval", "90"),
        (
            "ServerAliveInterval none\nServerAliveInterval 5",
            "serveraliveinterval",
            "5",
        ),
        ("ServerAliveCountMax 7", "serveralivecountmax", "7"),
        ("TCPKeepAlive no", "tcpkeepalive", "no"),
        ("KeepAlive no", "tcpkeepalive", "no"),
        ("ConnectTimeout 10", "connecttimeout", "10"),
        ("ConnectTimeout none", "connecttimeout", "none"),
        ("ConnectionAttempts 3", "connectionattempts", "3"),
        (
            "StrictHostKeyChecking accept-new",
            "stricthostkeychecking",
            "accept-new",
        ),
        ("StrictHostKeyChecking no", "stricthostkeychecking", "false"),
        (
            "StrictHostKeyChecking off",
            "stricthostkeychecking",
            "false",
        ),
        (
            "UserKnownHostsFile ~/kh %d/kh2",
            "userknownhostsfile",
            "/home/me/kh /home/me/kh2",
        ),
        ("UserKnownHostsFile none", "userknownhostsfile", "none"),
        (
            "GlobalKnownHostsFile /a /b",
            "globalknownhostsfile",
            "/a /b",
        ),
        ("HashKnownHosts yes", "hashknownhosts", "yes"),
        ("HostKeyAlias MyAlias", "hostkeyalias", "myalias"),
        ("CheckHostIP yes", "checkhostip", "yes"),
        ("BatchMode yes", "batchmode", "yes"),
        ("PasswordAuthentication no", "passwordauthentication", "no"),
        (
            "PubkeyAuthentication unbound",
            "pubkeyauthentication",
            "unbound",
        ),
        ("PubkeyAuthentication yes", "pubkeyauthentication", "true"),
        (
            "KbdInteractiveAuthentication no",
            "kbdinteractiveauthentication",
            "no",
        ),
        (
            "ChallengeResponseAuthentication no",
            "kbdinteractiveauthentication",
            "no",
        ),
        (
            "PreferredAuthentications publickey,password",
            "preferredauthentications",
            "publickey,password",
        ),
        ("NumberOfPasswordPrompts 1", "numberofpasswordprompts", "1"),
        ("LogLevel debug2", "loglevel", "DEBUG2"),
        ("LogLevel quiet", "loglevel", "SILENT"),
        ("Compression yes", "compression", "yes"),
        ("RequestTTY force", "requesttty", "force"),
        ("RequestTTY yes", "requesttty", "true"),
        (
            "RemoteCommand tmux attach -t %r",
            "remotecommand",
            "tmux attach -t me",
        ),
        ("SendEnv LANG LC_*\nSendEnv -LC_*", "sendenv", "LANG"),
        ("SetEnv A=1 B=\"2 3\"\nSetEnv C=4", "setenv", "A=1|B=2 3"),
        ("StdinNull yes", "stdinnull", "yes"),
        (
            "ForkAfterAuthentication yes\nSessionType none",
            "forkafterauthentication",
            "yes",
        ),
        ("SessionType subsystem", "sessiontype", "subsystem"),
        ("EscapeChar ^]", "escapechar", "\\^]"),
        ("EscapeChar none", "escapechar", "none"),
        (
            "Ciphers aes128-ctr,aes256-ctr",
            "ciphers",
            "aes128-ctr,aes256-ctr",
        ),
        (
            "MACs -hmac-sha1*",
            "macs",
            "umac-64-etm@openssh.com,umac-128-etm@openssh.com,hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,umac-64@openssh.com,umac-128@openssh.com,hmac-sha2-256,hmac-sha2-512",
        ),
        (
            "KexAlgorithms curve25519-sha256",
            "kexalgorithms",
            "curve25519-sha256",
        ),
        (
            "HostKeyAlgorithms ssh-ed25519",
            "hostkeyalgorithms",
            "ssh-ed25519",
        ),
        (
            "PubkeyAcceptedKeyTypes +ssh-rsa",
            "pubkeyacceptedalgorithms",
            "ssh-ed25519-cert-v01@openssh.com,ecdsa-sha2-nistp256-cert-v01@openssh.com,ecdsa-sha2-nistp384-cert-v01@openssh.com,ecdsa-sha2-nistp521-cert-v01@openssh.com,sk-ssh-ed25519-cert-v01@openssh.com,sk-ecdsa-sha2-nistp256-cert-v01@openssh.com,rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-256-cert-v01@openssh.com,ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,sk-ssh-ed25519@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com,rsa-sha2-512,rsa-sha2-256,ssh-rsa",
        ),
        ("AddressFamily inet6", "addressfamily", "inet6"),
        ("BindAddress 10.0.0.1", "bindaddress", "10.0.0.1"),
        (
            "CanonicalizeHostname always",
            "canonicalizehostname",
            "always",
        ),
        (
            "CanonicalDomains a.example B.example.",
            "canonicaldomains",
            "a.example b.example",
        ),
        (
            "CanonicalizeFallbackLocal no",
            "canonicalizefallbacklocal",
            "no",
        ),
        ("CanonicalizeMaxDots 0", "canonicalizemaxdots", "0"),
        (
            "CanonicalizePermittedCNAMEs *.A.example:*.b.example",
            "canonicalizePermittedcnames",
            "*.a.example:*.b.example",
        ),
        (
            "CanonicalizePermittedCNAMEs none",
            "canonicalizePermittedcnames",
            "none",
        ),
        ("StreamLocalBindUnlink yes", "streamlocalbindunlink", "yes"),
        ("StreamLocalBindMask 0", "streamlocalbindmask", "00"),
        (
            "Host nomatch\nStreamLocalBindMask 077",
            "streamlocalbindmask",
            "077",
        ),
        ("VisualHostKey yes", "visualhostkey", "yes"),
        (
            "PermitRemoteOpen host:80 [::1]:*",
            "permitremoteopen",
            "host:80 [::1]:*",
        ),
        ("LocalCommand echo %n", "localcommand", "echo %n"),
        ("PermitLocalCommand yes", "permitlocalcommand", "yes"),
        ("IgnoreUnknown x*\nXYZ 1", "ignoreunknown", "x*"),
        ("RekeyLimit 64M 1h", "rekeylimit", "67108864 3600"),
        ("RekeyLimit default none", "rekeylimit", "0 0"),
        ("IPQoS ef", "ipqos", "ef ef"),
        ("IPQoS none", "ipqos", "none none"),
        ("TunnelDevice any:5", "tunneldevice", "any:5"),
        ("Tunnel ethernet", "tunnel", "ethernet"),
        ("Tunnel yes", "tunnel", "point-to-point"),
        ("FingerprintHash md5", "fingerprinthash", "MD5"),
        ("UpdateHostKeys ask", "updatehostkeys", "ask"),
        ("VerifyHostKeyDNS yes", "updatehostkeys", "false"),
        ("SyslogFacility local7", "syslogfacility", "LOCAL7"),
        (
            "Host nomatch\nSyslogFacility AUTH",
            "syslogfacility",
            "AUTH",
        ),
        ("LogVerbose a.c:*:1 b.c:*", "logverbose", "a.c:*:1"),
        ("XAuthLocation /x", "xauthlocation", "/x"),
        ("SecurityKeyProvider none", "securitykeyprovider", ""),
        (
            "KnownHostsCommand /bin/kh %h",
            "knownhostscommand",
            "/bin/kh %h",
        ),
        ("RequiredRSASize 3072", "requiredrsasize", "3072"),
        (
            "EnableEscapeCommandline yes",
            "enableescapecommandline",
            "yes",
        ),
        (
            "GSSAPIKexAlgorithms gss-group14-sha256-",
            "gssapikexalgorithms",
            "gss-group14-sha256-",
        ),
        ("ProtocolKeepAlives 10", "serveraliveinterval", "10"),
        ("Protocol 1\nCipher blowfish\nUseRSH yes", "port", "22"),
        ("CompressionLevel 9", "port", "22"),
        ("User a # trailing comment", "user", "a"),
        ("  \tUser a  \t ", "user", "a"),
        ("# only a comment\n\n", "user", "me"),
    ];

    /// (config text, start of the error message).
    const REJECTED: &[(&str, &str)] = &[
        ("Bogus yes", "/cfg: line 1: Bad configuration option: bogus"),
        ("Tag x", "/cfg: line 1: Bad configuration option: tag"),
        ("Port", "/cfg line 1: no argument after keyword \"port\""),
        ("Port 0", "/cfg line 1: Bad port '0'."),
        ("Port 65536", "/cfg line 1: Bad port '65536'."),
        (
            "Port 22 23",
            "/cfg line 1: keyword port extra arguments at end of line",
        ),
        ("User \"a", "/cfg line 1: invalid quotes"),
        (
            "Compression maybe",
            "/cfg line 1: unsupported option \"maybe\".",
        ),
        (
            "Compression true",
            "/cfg line 1: unsupported option \"true\".",
        ),
        ("BatchMode 1", "/cfg line 1: unsupported option \"1\"."),
        ("ConnectTimeout soon", "/cfg line 1: invalid time value."),
        (
            "ServerAliveCountMax -1",
            "/cfg line 1: integer value too small.",
        ),
        (
            "ConnectionAttempts x",
            "/cfg line 1: integer value invalid.",
        ),
        (
            "ControlPersist maybe",
            "/cfg line 1: Bad ControlPersist argument.",
        ),
        ("LocalForward 5432", "/cfg line 1: Missing target argument."),
        (
            "LocalForward 0 db:1",
            "/cfg line 1: Bad forwarding specification.",
        ),
        (
            "DynamicForward a:b:c",
            "/cfg line 1: Bad forwarding specification.",
        ),
        ("SendEnv A=B", "/cfg line 1: Invalid environment name."),
        ("SetEnv A", "/cfg line 1: Invalid SetEnv."),
        ("EscapeChar ab", "/cfg line 1: Bad escape character."),
        (
            "Ciphers rot13",
            "/cfg line 1: Bad SSH2 cipher spec 'rot13'.",
        ),
        ("MACs md5", "/cfg line 1: Bad SSH2 MAC spec 'md5'."),
        (
            "KexAlgorithms x",
            "/cfg line 1: Bad SSH2 KexAlgorithms 'x'.",
        ),
        ("HostKeyAlgorithms x", "/cfg line 1: Bad key types 'x'."),
        ("LogLevel loud", "/cfg line 1: unsupported log level 'loud'"),
        (
            "SyslogFacility x",
            "/cfg line 1: unsupported log facility 'x'",
        ),
        (
            "GlobalKnownHostsFile /a none",
            "/cfg line 1: keyword globalknownhostsfile \"none\" argument must appear alone.",
        ),
        (
            "CanonicalDomains -x",
            "/cfg line 1: domain name \"-x\" starts with invalid character",
        ),
        (
            "CanonicalizePermittedCNAMEs a",
            "/cfg line 1: Invalid permitted CNAME \"a\"",
        ),
        ("StreamLocalBindMask 999", "/cfg line 1: Bad mask."),
        (
            "FingerprintHash crc",
            "/cfg line 1: Invalid hash algorithm \"crc\".",
        ),
        (
            "AddKeysToAgent sometimes",
            "/cfg line 1: unsupported option",
        ),
        ("AddKeysToAgent yes 1h", "/cfg line 1: unsupported option"),
        (
            "IdentityAgent ${NOPE}",
            "/cfg line 1: Invalid environment expansion ${NOPE}.",
        ),
        (
            "IdentityAgent $NO-PE",
            "/cfg line 1: Invalid environment name $NO-PE.",
        ),
        ("RekeyLimit 8", "/cfg line 1: RekeyLimit too small"),
        ("RekeyLimit lots", "/cfg line 1: Bad number 'lots'"),
        ("IPQoS fast", "/cfg line 1: Bad IPQoS value: fast"),
        ("TunnelDevice x", "/cfg line 1: Bad tun device."),
        ("ProxyJump @b", "/cfg line 1: Invalid ProxyJump \"@b\""),
        (
            "PermitRemoteOpen host:x",
            "/cfg line 1: bad port number in permitremoteopen",
        ),
        ("Host nomatch\n  Port x", "/cfg line 2: Bad port 'x'."),
        ("Include ~/x", ""),
    ];

    #[test]
    fn every_keyword_parses_like_openssh() {
        for (config, key, want) in ACCEPTED {
            let env_config = format!("{config}\n");
            let got = crate::env::harness::run_in(
                crate::env::tests::FakeEnv::default().var("SOCK", "/run/agent"),
                &env_config,
                "h",
                &[],
            )
            .map(|c| crate::env::harness::get(&c, key).join("|"))
            .map_err(|e| e.to_string());
            assert_eq!(got.as_deref(), Ok(*want), "{config:?} -> {key}");
        }
    }

    #[test]
    fn bad_values_are_rejected_with_openssh_messages() {
        for (config, want) in REJECTED {
            match value(config, "port") {
                Ok(v) if want.is_empty() => assert_eq!(v, "22", "{config:?}"),
                Ok(v) => panic!("{config:?} accepted ({v}), want {want:?}"),
                Err(e) => assert!(
                    e.contains(want),
                    "{config:?}: {e:?} does not contain {want:?}"
                ),
            }
        }
    }
}
