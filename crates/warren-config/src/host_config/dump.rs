//! `ssh -G`: every option, one per line, in OpenSSH's order and spelling
//! (`readconf.c` `dump_client_config` with Debian's GSSAPI additions).
//!
//! Design choice: each group of the C function is one method pushing lines,
//! so the order can be checked against OpenSSH side by side.

use super::HostConfig;
use crate::values::{ControlPersist, ipqos_name, vis_char, yes_no};
use crate::values::{IPQOS_DEFAULT, TUN_ANY};

struct Out(Vec<String>);

impl Out {
    fn line(&mut self, keyword: &str, value: impl std::fmt::Display) {
        self.0.push(format!("{keyword} {value}"));
    }
    fn flag(&mut self, keyword: &str, value: bool) {
        self.line(keyword, yes_no(value));
    }
    fn opt(&mut self, keyword: &str, value: Option<&str>) {
        if let Some(v) = value {
            self.line(keyword, v);
        }
    }
    fn each(&mut self, keyword: &str, values: &[String]) {
        for v in values {
            self.line(keyword, v);
        }
    }
    fn one_line(&mut self, keyword: &str, values: &[String]) {
        let joined = if values.is_empty() {
            "none".to_owned()
        } else {
            values.join(" ")
        };
        self.line(keyword, joined);
    }
}

impl HostConfig {
    /// Exactly what `ssh -G` prints for this configuration (one line per
    /// option, trailing newline), with this crate's algorithm lists.
    pub fn dump(&self) -> String {
        let mut out = Out(Vec::new());
        out.line("host", &self.host_arg);
        out.line("user", &self.user);
        out.line("hostname", &self.hostname);
        out.line("port", self.port);
        self.dump_flags(&mut out);
        self.dump_gssapi_and_auth_flags(&mut out);
        self.dump_session_flags(&mut out);
        self.dump_integers(&mut out);
        self.dump_strings(&mut out);
        self.dump_forwards(&mut out);
        self.dump_arrays(&mut out);
        self.dump_special(&mut out);
        self.dump_proxy(&mut out);
        let mut text = out.0.join("\n");
        text.push('\n');
        text
    }

    fn dump_flags(&self, out: &mut Out) {
        out.line("addressfamily", self.address_family().as_str());
        out.flag("batchmode", self.batch_mode());
        out.flag(
            "canonicalizefallbacklocal",
            self.canonicalize_fallback_local(),
        );
        out.line(
            "canonicalizehostname",
            self.canonicalize_hostname().as_str(),
        );
        out.flag("checkhostip", self.check_host_ip());
        out.flag("compression", self.compression());
        out.line("controlmaster", self.control_master().as_str());
        out.flag(
            "enablesshkeysign",
            self.opts.enable_ssh_keysign.unwrap_or(false),
        );
        out.flag("clearallforwardings", self.clear_all_forwardings());
        out.flag("exitonforwardfailure", self.exit_on_forward_failure());
        out.line(
            "fingerprinthash",
            self.opts.fingerprint_hash.unwrap_or("SHA256"),
        );
        out.flag("forwardx11", self.forward_x11());
        out.flag("forwardx11trusted", self.forward_x11_trusted());
        out.flag("gatewayports", self.gateway_ports());
    }

    fn dump_gssapi_and_auth_flags(&self, out: &mut Out) {
        let o = &self.opts;
        out.flag(
            "gssapiauthentication",
            o.gss_authentication.unwrap_or(false),
        );
        out.flag("gssapikeyexchange", o.gss_keyex.unwrap_or(false));
        out.flag(
            "gssapidelegatecredentials",
            o.gss_deleg_creds.unwrap_or(false),
        );
        out.flag("gssapitrustdns", o.gss_trust_dns.unwrap_or(false));
        out.flag(
            "gssapirenewalforcesrekey",
            o.gss_renewal_rekey.unwrap_or(false),
        );
        out.opt("gssapiclientidentity", o.gss_client_identity.as_deref());
        out.opt("gssapiserveridentity", o.gss_server_identity.as_deref());
        out.line("gssapikexalgorithms", self.algorithms.gssapi_kex.join(","));
        out.flag("hashknownhosts", self.hash_known_hosts());
        out.flag("hostbasedauthentication", self.hostbased_authentication());
        out.flag("identitiesonly", self.identities_only());
        out.flag(
            "kbdinteractiveauthentication",
            self.kbd_interactive_authentication(),
        );
        out.flag(
            "nohostauthenticationforlocalhost",
            self.no_host_authentication_for_localhost(),
        );
        out.flag("passwordauthentication", self.password_authentication());
        out.flag("permitlocalcommand", self.permit_local_command());
        out.flag("proxyusefdpass", self.proxy_use_fdpass());
        out.line(
            "pubkeyauthentication",
            self.pubkey_authentication().as_str(),
        );
    }

    fn dump_session_flags(&self, out: &mut Out) {
        out.line("requesttty", self.request_tty().as_str());
        out.line("sessiontype", self.session_type().as_str());
        out.flag("stdinnull", self.stdin_null());
        out.flag("forkafterauthentication", self.fork_after_authentication());
        out.flag("streamlocalbindunlink", self.stream_local_bind_unlink());
        out.line(
            "stricthostkeychecking",
            self.strict_host_key_checking().as_str(),
        );
        out.flag("tcpkeepalive", self.tcp_keep_alive());
        out.line("tunnel", self.tunnel().as_str());
        out.line("verifyhostkeydns", self.verify_host_key_dns().as_str());
        out.flag("visualhostkey", self.visual_host_key());
        out.line("updatehostkeys", self.update_host_keys().as_str());
        out.flag("enableescapecommandline", self.enable_escape_commandline());
    }

    fn dump_integers(&self, out: &mut Out) {
        let o = &self.opts;
        out.line("canonicalizemaxdots", o.canonicalize_max_dots.unwrap_or(1));
        out.line("connectionattempts", o.connection_attempts.unwrap_or(1));
        out.line("forwardx11timeout", o.forward_x11_timeout.unwrap_or(1200));
        out.line(
            "numberofpasswordprompts",
            o.number_of_password_prompts.unwrap_or(3),
        );
        out.line("serveralivecountmax", o.server_alive_count_max.unwrap_or(3));
        out.line("serveraliveinterval", o.server_alive_interval.unwrap_or(0));
        out.line("requiredrsasize", o.required_rsa_size.unwrap_or(1024));
    }

    fn dump_strings(&self, out: &mut Out) {
        let o = &self.opts;
        let a = &self.algorithms;
        out.opt("bindaddress", o.bind_address.as_deref());
        out.opt("bindinterface", o.bind_interface.as_deref());
        out.line("ciphers", a.ciphers.join(","));
        out.opt("controlpath", o.control_path.as_deref());
        out.line("hostkeyalgorithms", a.host_key.join(","));
        out.opt("hostkeyalias", o.host_key_alias.as_deref());
        out.line("hostbasedacceptedalgorithms", a.hostbased.join(","));
        out.opt("identityagent", o.identity_agent.as_deref());
        out.opt("ignoreunknown", o.ignored_unknown.as_deref());
        out.opt(
            "kbdinteractivedevices",
            o.kbd_interactive_devices.as_deref(),
        );
        out.line("kexalgorithms", a.kex.join(","));
        out.line("casignaturealgorithms", a.ca_signature.join(","));
        out.opt("localcommand", o.local_command.as_deref());
        out.opt("remotecommand", o.remote_command.as_deref());
        out.line("loglevel", self.log_level().as_str());
        out.line("macs", a.macs.join(","));
        out.opt("pkcs11provider", o.pkcs11_provider.as_deref());
        out.opt("securitykeyprovider", o.sk_provider.as_deref());
        out.opt(
            "preferredauthentications",
            o.preferred_authentications.as_deref(),
        );
        out.line("pubkeyacceptedalgorithms", a.pubkey.join(","));
        out.opt("revokedhostkeys", o.revoked_host_keys.as_deref());
        out.line(
            "xauthlocation",
            o.xauth_location.as_deref().unwrap_or("/usr/bin/xauth"),
        );
        out.opt("knownhostscommand", o.known_hosts_command.as_deref());
    }

    /// OpenSSH prints a local forward without a target host (a Unix socket
    /// target) as a dynamic forward too; we keep that quirk.
    fn dump_forwards(&self, out: &mut Out) {
        use crate::forward::ForwardEndpoint::Tcp;
        let o = &self.opts;
        let socks = |f: &&crate::forward::Forward| matches!(&f.connect, Tcp { host: Some(h), .. } if h == "socks");
        let no_host =
            |f: &&crate::forward::Forward| !matches!(&f.connect, Tcp { host: Some(_), .. });
        for f in o.local_forwards.iter().filter(|f| socks(f) || no_host(f)) {
            out.0.push(f.dump_line("dynamicforward"));
        }
        for f in o.local_forwards.iter().filter(|f| !socks(f)) {
            out.0.push(f.dump_line("localforward"));
        }
        for f in &o.remote_forwards {
            out.0.push(f.dump_line("remoteforward"));
        }
    }

    fn dump_arrays(&self, out: &mut Out) {
        let o = &self.opts;
        let files = |v: &[(String, crate::options::Origin)]| {
            v.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>()
        };
        out.each("identityfile", &files(&o.identity_files));
        out.one_line("canonicaldomains", &o.canonical_domains);
        out.each("certificatefile", &files(&o.certificate_files));
        out.one_line("globalknownhostsfile", &o.system_hostfiles);
        out.one_line("userknownhostsfile", &o.user_hostfiles);
        out.each("sendenv", &o.send_env);
        out.each("setenv", &o.set_env);
        out.one_line("logverbose", &o.log_verbose);
    }

    fn dump_special(&self, out: &mut Out) {
        let o = &self.opts;
        out.one_line("permitremoteopen", &o.permitted_remote_opens);
        if o.permitted_remote_opens.is_empty() {
            out.0.pop();
            out.line("permitremoteopen", "any");
        }
        self.dump_agent(out);
        match o.connect_timeout {
            None => out.line("connecttimeout", "none"),
            Some(t) => out.line("connecttimeout", t),
        }
        let (local, remote) = o.tun_device.unwrap_or((TUN_ANY, TUN_ANY));
        let tun = |v: i32| {
            if v == TUN_ANY {
                "any".to_owned()
            } else {
                v.to_string()
            }
        };
        out.line("tunneldevice", format!("{}:{}", tun(local), tun(remote)));
        let cnames: Vec<String> = o
            .permitted_cnames
            .iter()
            .map(|(a, b)| format!("{a}:{b}"))
            .collect();
        out.one_line("canonicalizePermittedcnames", &cnames);
        match self.control_persist() {
            ControlPersist::No => out.line("controlpersist", "no"),
            ControlPersist::Yes | ControlPersist::Timeout(0) => out.line("controlpersist", "yes"),
            ControlPersist::Timeout(t) => out.line("controlpersist", t),
        }
        match self.escape_char() {
            None => out.line("escapechar", "none"),
            Some(c) => out.line("escapechar", vis_char(c)),
        }
        let (interactive, bulk) = o.ip_qos.unwrap_or(IPQOS_DEFAULT);
        out.line(
            "ipqos",
            format!("{} {}", ipqos_name(interactive), ipqos_name(bulk)),
        );
        out.line(
            "rekeylimit",
            format!(
                "{} {}",
                o.rekey_limit.unwrap_or(0),
                o.rekey_interval.unwrap_or(0)
            ),
        );
        out.line(
            "streamlocalbindmask",
            format!("0{:o}", self.stream_local_bind_mask()),
        );
        out.line("syslogfacility", o.log_facility.unwrap_or("USER"));
    }

    fn dump_agent(&self, out: &mut Out) {
        let (state, lifespan) = self.add_keys_to_agent();
        if lifespan == 0 {
            out.line("addkeystoagent", state.as_str());
        } else if state == crate::values::AddKeysToAgent::Confirm {
            out.line("addkeystoagent confirm", lifespan);
        } else {
            out.line("addkeystoagent", lifespan);
        }
        match &self.opts.forward_agent_sock_path {
            Some(path) => out.line("forwardagent", path),
            None => out.flag("forwardagent", self.forward_agent()),
        }
    }

    fn dump_proxy(&self, out: &mut Out) {
        match self.proxy_jump() {
            Some(jump) => out.line("proxyjump", jump.dump_value()),
            None => out.opt("proxycommand", self.opts.proxy_command.as_deref()),
        }
    }
}
