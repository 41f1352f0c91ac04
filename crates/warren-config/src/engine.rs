//! Reading config files: lines, Host and Match blocks, Include, and the
//! two passes (`readconf.c` `read_config_file_depth`, `match_cfg_line`;
//! `ssh.c` `process_config_files` and the hostname/final-pass logic).
//!
//! Design choice: one `Reader` walks the files with an explicit `active`
//! flag shared between a file and the files it includes, exactly like
//! OpenSSH's `activep` pointer, because Include-inside-Match semantics
//! (and what a Host line inside an included file does) follow from it.

use std::borrow::Cow;

use warren_wire::Escaped;

use crate::algorithms::Algorithms;
use crate::cli::{CommandLine, ConfigFile, apply_flags};
use crate::env::Environment;
use crate::error::{ConfigError, LineError, LineErrorKind as E};
use crate::expand::{
    ConnInfo, ExpandError, connection_hash, percent_expand, short_hostname, tilde_expand,
};
use crate::host_config::{HostConfig, SetAt};
use crate::jump::{valid_hostname, valid_remote_user};
use crate::keyword::{self, Keyword as K};
use crate::lexer::{Args, argv_split, strdelim, trim_line_end};
use crate::options::{Failure, Line, Options, Origin};
use crate::pattern::{ListMatch, match_host_pattern_list, match_pattern, match_pattern_list};
use crate::values::CanonicalizeHostname;

const MAX_INCLUDE_DEPTH: usize = 16;
const SYSTEM_CONFIG: &str = "/etc/ssh/ssh_config";

/// Resolve the configuration for one destination, as `ssh` would before
/// connecting (and as `ssh -G` prints it).
pub fn resolve(
    cli: &CommandLine,
    env: &dyn Environment,
    algorithms: &Algorithms,
) -> Result<HostConfig, ConfigError> {
    let mut opts = Options::default();
    let mut reader = Reader::new(env, algorithms, &cli.host);
    apply_flags(&mut opts, cli, &mut reader)?;
    check_command_line_names(&opts, &cli.host)?;
    reader.process_config_files(&mut opts, &cli.config)?;
    let want_final = reader.want_final_pass;
    let host = first_pass_host(&mut opts, &cli.host).map_err(ExpandError::into_config_error)?;
    let host = canonicalize(&opts, host, env)?;
    let canonicalize = opts
        .canonicalize_hostname
        .unwrap_or(CanonicalizeHostname::No);
    if want_final || canonicalize != CanonicalizeHostname::No {
        // Like OpenSSH, asking for canonicalisation re-parses the
        // configuration even when no suffix resolved.
        opts.hostname = Some(host.clone());
        reader.host = host.clone();
        reader.final_pass = true;
        reader.process_config_files(&mut opts, &cli.config)?;
    }
    HostConfig::finish(opts, cli, &host, env, algorithms, reader.warnings)
        .map(|c| c.with_set_at(reader.set_at))
}

/// Debian's backport (CVE-2025-61984, CVE-2026-35386): names typed on the
/// command line end up in `%` tokens and `Match exec`, so they are checked
/// before any config is read.
fn check_command_line_names(opts: &Options, host: &str) -> Result<(), ConfigError> {
    if opts.user.as_deref().is_some_and(|u| !valid_remote_user(u)) {
        return Err(ConfigError::Invalid(
            "remote username contains invalid characters".into(),
        ));
    }
    if !valid_hostname(host) {
        return Err(ConfigError::Invalid(
            "hostname contains invalid characters".into(),
        ));
    }
    Ok(())
}

/// After the first pass: HostName (with `%h`) replaces the destination,
/// names are lowercased and numeric addresses put in canonical form.
fn first_pass_host(opts: &mut Options, host_arg: &str) -> Result<String, ExpandError> {
    let mut host = host_arg.to_owned();
    if let Some(hostname) = &opts.hostname {
        host = percent_expand(hostname, &[('h', host_arg)])?;
        opts.hostname = Some(host.clone());
    }
    if looks_like_address(&host) || canonical_address(&host).is_some() {
        if let Some(canonical) = canonical_address(&host)
            && !canonical.eq_ignore_ascii_case(&host)
        {
            host = canonical;
        }
    } else {
        host.make_ascii_lowercase();
    }
    Ok(host)
}

/// ssh.c's `resolve_canonicalize` for names: try `name.domain.` for each
/// CanonicalDomains suffix (only for names with at most
/// CanonicalizeMaxDots dots, and only for direct connections unless
/// `always`). CNAME following (CanonicalizePermittedCNAMEs) is not done.
fn canonicalize(
    opts: &Options,
    host: String,
    env: &dyn Environment,
) -> Result<String, ConfigError> {
    let mode = opts
        .canonicalize_hostname
        .unwrap_or(CanonicalizeHostname::No);
    if mode == CanonicalizeHostname::No
        || looks_like_address(&host)
        || canonical_address(&host).is_some()
    {
        return Ok(host);
    }
    let no_proxy = opts
        .proxy_command
        .as_deref()
        .is_none_or(|c| c.eq_ignore_ascii_case("none"));
    if !(no_proxy && opts.jump.is_none()) && mode != CanonicalizeHostname::Always {
        return Ok(host);
    }
    if let Some(stripped) = host.strip_suffix('.') {
        return if env.resolves(&host) {
            Ok(stripped.to_owned())
        } else {
            not_found(opts, host)
        };
    }
    let dots = host.matches('.').count();
    if dots > usize::try_from(opts.canonicalize_max_dots.unwrap_or(1)).unwrap_or(0) {
        return Ok(host);
    }
    for domain in &opts.canonical_domains {
        if domain.eq_ignore_ascii_case("none") {
            break;
        }
        let full = format!("{host}.{domain}");
        if env.resolves(&format!("{full}.")) {
            return Ok(full);
        }
    }
    not_found(opts, host)
}

fn not_found(opts: &Options, host: String) -> Result<String, ConfigError> {
    if opts.canonicalize_fallback_local == Some(false) {
        return Err(ConfigError::Invalid(format!(
            "ssh: Could not resolve host \"{host}\""
        )));
    }
    Ok(host)
}

/// ssh.c's `is_addr_fast`: anything with `%` or `:`, or only digits and dots.
fn looks_like_address(name: &str) -> bool {
    name.contains(['%', ':']) || name.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

/// What getaddrinfo(AI_NUMERICHOST) + getnameinfo(NI_NUMERICHOST) make of
/// a numeric address: inet_aton's forms for IPv4, RFC 5952 for IPv6.
fn canonical_address(name: &str) -> Option<String> {
    if name.contains('%') {
        return None;
    }
    if let Ok(v6) = name.parse::<std::net::Ipv6Addr>() {
        return Some(v6.to_string());
    }
    inet_aton(name).map(|v4| v4.to_string())
}

/// glibc's `inet_aton`: 1 to 4 parts, each decimal, 0x-hex or 0-octal.
fn inet_aton(name: &str) -> Option<std::net::Ipv4Addr> {
    let parts: Vec<u64> = name.split('.').map(c_number).collect::<Option<_>>()?;
    let (last, head) = parts.split_last()?;
    if head.len() > 3 || head.iter().any(|&p| p > 255) {
        return None;
    }
    let shift = 8 * (4 - head.len() as u32);
    if shift < 32 && *last >= 1 << shift {
        return None;
    }
    let mut value = *last;
    for (i, part) in head.iter().enumerate() {
        value |= part << (24 - 8 * i as u32);
    }
    u32::try_from(value).ok().map(std::net::Ipv4Addr::from)
}

fn c_number(s: &str) -> Option<u64> {
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        return if hex.is_empty() {
            Some(0)
        } else {
            u64::from_str_radix(hex, 16).ok()
        };
    }
    if s.len() > 1 && s.starts_with('0') {
        return u64::from_str_radix(&s[1..], 8).ok();
    }
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// How a file is being read (OpenSSH's `SSHCONF_*` flags).
#[derive(Debug, Clone, Copy)]
struct FileFlags {
    /// `SSHCONF_USERCONF`: `-F`, `~/.ssh/config` or `-o`.
    user_config: bool,
    /// `SSHCONF_NEVERMATCH`: included from an inactive block.
    never_match: bool,
    /// `SSHCONF_CHECKPERM`: `~/.ssh/config` and included files must not be
    /// writable by others.
    check_perm: bool,
}

/// Where a line comes from.
pub(crate) struct Source<'a> {
    pub(crate) file: &'a str,
    pub(crate) line: usize,
    /// `-o`: Host, Match and Include are refused, the line always applies.
    pub(crate) command_line: bool,
}

enum LineFail {
    Bad(E),
    Abort(ConfigError),
}

impl From<E> for LineFail {
    fn from(e: E) -> Self {
        LineFail::Bad(e)
    }
}

enum FileRead {
    Found,
    Missing(std::io::Error),
}

pub(crate) struct Reader<'a> {
    env: &'a dyn Environment,
    algorithms: &'a Algorithms,
    /// The name `Host` lines match (the destination; in the final pass the
    /// canonical host name).
    pub(crate) host: String,
    original_host: String,
    final_pass: bool,
    want_final_pass: bool,
    pub(crate) warnings: Vec<String>,
    /// Every line that applied, in order (for `warren doctor`).
    pub(crate) set_at: Vec<SetAt>,
}

impl<'a> Reader<'a> {
    fn new(env: &'a dyn Environment, algorithms: &'a Algorithms, host: &str) -> Self {
        Self {
            env,
            algorithms,
            host: host.to_owned(),
            original_host: host.to_owned(),
            final_pass: false,
            want_final_pass: false,
            warnings: Vec::new(),
            set_at: Vec::new(),
        }
    }

    pub(crate) fn env(&self) -> &'a dyn Environment {
        self.env
    }

    pub(crate) fn algorithms(&self) -> &'a Algorithms {
        self.algorithms
    }

    /// Records that a flag set an option (for [`HostConfig::set_at`]).
    pub(crate) fn record_flag(&mut self, flag: &crate::cli::Flag) {
        use crate::cli::Flag as F;
        let mut keywords: Vec<&'static str> = Vec::new();
        match flag {
            F::Port(_) => keywords.push("Port"),
            F::User(_) => keywords.push("User"),
            F::Identity(_) => keywords.push("IdentityFile"),
            F::ProxyJump(_) => keywords.push("ProxyJump"),
            F::LocalForward(_) => keywords.push("LocalForward"),
            F::RemoteForward(_) => keywords.push("RemoteForward"),
            F::DynamicForward(_) => keywords.push("DynamicForward"),
            F::Destination { user, port } => {
                if user.is_some() {
                    keywords.push("User");
                }
                if port.is_some() {
                    keywords.push("Port");
                }
            }
            _ => {}
        }
        for keyword in keywords {
            self.set_at.push(SetAt {
                keyword,
                file: None,
                line: 0,
            });
        }
    }

    /// Apply one `-o` option.
    pub(crate) fn command_line_option(
        &mut self,
        opts: &mut Options,
        text: &str,
    ) -> Result<(), ConfigError> {
        let source = Source {
            file: "command-line",
            line: 0,
            command_line: true,
        };
        let flags = FileFlags {
            user_config: true,
            never_match: false,
            check_perm: false,
        };
        let mut active = true;
        match self.process_line(opts, text, &source, &mut active, flags, 0) {
            Ok(()) => Ok(()),
            Err(LineFail::Abort(e)) => Err(e),
            Err(LineFail::Bad(kind)) => Err(ConfigError::CommandLine(LineError {
                file: "command-line".into(),
                line: 0,
                kind,
            })),
        }
    }

    fn process_config_files(
        &mut self,
        opts: &mut Options,
        config: &ConfigFile,
    ) -> Result<(), ConfigError> {
        let user = FileFlags {
            user_config: true,
            never_match: false,
            check_perm: false,
        };
        match config {
            ConfigFile::None => Ok(()),
            ConfigFile::Path(path) => {
                let name = path.to_string_lossy();
                match self.read_file(opts, &name, user, &mut true, 0)? {
                    FileRead::Found => Ok(()),
                    FileRead::Missing(source) => Err(ConfigError::Open {
                        path: name.into_owned(),
                        source,
                    }),
                }
            }
            ConfigFile::Default => {
                let user_file = format!("{}/.ssh/config", self.env.home_dir().to_string_lossy());
                let checked = FileFlags {
                    check_perm: true,
                    ..user
                };
                self.read_file(opts, &user_file, checked, &mut true, 0)?;
                let system = FileFlags {
                    user_config: false,
                    never_match: false,
                    check_perm: false,
                };
                self.read_file(opts, SYSTEM_CONFIG, system, &mut true, 0)?;
                Ok(())
            }
        }
    }

    fn read_file(
        &mut self,
        opts: &mut Options,
        path: &str,
        flags: FileFlags,
        active: &mut bool,
        depth: usize,
    ) -> Result<FileRead, ConfigError> {
        if depth > MAX_INCLUDE_DEPTH {
            return Err(ConfigError::IncludeDepth);
        }
        let contents = match self.env.read_file(std::path::Path::new(path)) {
            Ok(contents) => contents,
            Err(e) => return Ok(FileRead::Missing(e)),
        };
        if flags.check_perm && !self.env.config_permissions_ok(std::path::Path::new(path)) {
            return Err(ConfigError::Invalid(format!(
                "Bad owner or permissions on {path}"
            )));
        }
        let mut errors = Vec::new();
        for (index, raw) in contents.split(|&b| b == b'\n').enumerate() {
            let source = Source {
                file: path,
                line: index + 1,
                command_line: false,
            };
            let text = match line_text(raw, *active) {
                Ok(Some(text)) => text,
                Ok(None) => continue,
                Err(kind) => {
                    errors.push(LineError {
                        file: path.to_owned(),
                        line: index + 1,
                        kind,
                    });
                    continue;
                }
            };
            match self.process_line(opts, &text, &source, active, flags, depth) {
                Ok(()) => {}
                Err(LineFail::Bad(kind)) => errors.push(LineError {
                    file: path.to_owned(),
                    line: index + 1,
                    kind,
                }),
                Err(LineFail::Abort(e)) => return Err(e),
            }
        }
        if errors.is_empty() {
            Ok(FileRead::Found)
        } else {
            Err(ConfigError::BadOptions {
                file: path.to_owned(),
                errors,
            })
        }
    }

    fn process_line(
        &mut self,
        opts: &mut Options,
        text: &str,
        source: &Source<'_>,
        active: &mut bool,
        flags: FileFlags,
        depth: usize,
    ) -> Result<(), LineFail> {
        let text = trim_line_end(text);
        let mut rest = Some(text);
        let Some(mut keyword) = strdelim(&mut rest) else {
            return Ok(());
        };
        if keyword.is_empty() {
            match strdelim(&mut rest) {
                Some(k) => keyword = k,
                None => return Ok(()),
            }
        }
        if keyword.is_empty() || keyword.starts_with(['\n', '#']) {
            return Ok(());
        }
        keyword.make_ascii_lowercase();
        let raw = rest
            .map(|r| r.trim_start_matches([' ', '\t', '\r', '\n']))
            .unwrap_or("");
        if raw.is_empty() {
            return Err(E::NoArgument(keyword).into());
        }
        let opcode = self.lookup(opts, &keyword)?;
        let mut args = Args::new(argv_split(raw).map_err(|()| E::InvalidQuotes)?);
        let ctx = LineCtx {
            keyword: &keyword,
            raw,
            source,
            flags,
            depth,
        };
        self.dispatch(opts, opcode, &mut args, &ctx, active)?;
        if args.remaining() > 0 {
            return Err(E::ExtraArguments(keyword).into());
        }
        Ok(())
    }

    /// `None` for a keyword IgnoreUnknown covers.
    fn lookup(&self, opts: &Options, keyword: &str) -> Result<Option<K>, E> {
        if let Some(opcode) = keyword::lookup(keyword) {
            return Ok(Some(opcode));
        }
        match &opts.ignored_unknown {
            Some(patterns)
                if match_pattern_list(keyword, patterns, true) == ListMatch::Positive =>
            {
                Ok(None)
            }
            _ => Err(E::BadOption(keyword.to_owned())),
        }
    }

    fn dispatch(
        &mut self,
        opts: &mut Options,
        opcode: Option<K>,
        args: &mut Args,
        ctx: &LineCtx<'_>,
        active: &mut bool,
    ) -> Result<(), LineFail> {
        match opcode {
            None | Some(K::Ignore | K::Deprecated) => args.consume(),
            Some(K::Unsupported) => {
                let s = ctx.source;
                self.warnings.push(format!(
                    "{} line {}: Unsupported option \"{}\"",
                    s.file,
                    s.line,
                    warren_wire::escape_str(ctx.keyword)
                ));
                args.consume();
            }
            Some(K::Host) => self.host_line(args, ctx, active)?,
            Some(K::Match) => self.match_line(opts, args, ctx, active)?,
            Some(K::Include) => self.include_line(opts, args, ctx, active)?,
            Some(opcode) => {
                let origin = if ctx.flags.user_config {
                    Origin::User
                } else {
                    Origin::System
                };
                if *active {
                    let s = ctx.source;
                    let at = SetAt {
                        keyword: keyword::canonical_name(opcode),
                        file: if s.command_line {
                            None
                        } else {
                            Some(s.file.to_owned())
                        },
                        line: s.line,
                    };
                    // The final pass reads the same lines again.
                    if !self.set_at.contains(&at) {
                        self.set_at.push(at);
                    }
                }
                let line = Line {
                    keyword: ctx.keyword,
                    raw: ctx.raw,
                    active: *active,
                    origin,
                    env: self.env,
                    algorithms: self.algorithms,
                    command_line: ctx.source.command_line,
                };
                opts.apply(opcode, args, &line).map_err(|f| match f {
                    Failure::Bad(kind) => LineFail::Bad(kind),
                    Failure::Fatal(message) => LineFail::Abort(ConfigError::FatalLine {
                        file: ctx.source.file.to_owned(),
                        line: ctx.source.line,
                        message,
                    }),
                })?;
            }
        }
        Ok(())
    }

    fn host_line(
        &mut self,
        args: &mut Args,
        ctx: &LineCtx<'_>,
        active: &mut bool,
    ) -> Result<(), LineFail> {
        if ctx.source.command_line {
            return Err(E::HostOnCommandLine.into());
        }
        *active = false;
        while let Some(arg) = args.next_arg() {
            if arg.is_empty() {
                return Err(E::EmptyArgument(ctx.keyword.to_owned()).into());
            }
            if ctx.flags.never_match {
                args.consume();
                break;
            }
            let (negated, pattern) = match arg.strip_prefix('!') {
                Some(p) => (true, p),
                None => (false, arg.as_str()),
            };
            if match_pattern(&self.host, pattern) {
                if negated {
                    *active = false;
                    args.consume();
                    break;
                }
                *active = true;
            }
        }
        Ok(())
    }

    fn match_line(
        &mut self,
        opts: &Options,
        args: &mut Args,
        ctx: &LineCtx<'_>,
        active: &mut bool,
    ) -> Result<(), LineFail> {
        if ctx.source.command_line {
            return Err(E::HostOnCommandLine.into());
        }
        let mut rest = Some(ctx.raw);
        let matched = self.match_criteria(opts, &mut rest).map_err(|e| match e {
            MatchFail::Bad(reason) => LineFail::Bad(E::BadMatch(reason)),
            MatchFail::Expand(e) => LineFail::Abort(e.into_config_error()),
        })?;
        *active = !ctx.flags.never_match && matched;
        if rest.is_none_or(str::is_empty) {
            args.consume();
        }
        Ok(())
    }

    /// OpenSSH's `match_cfg_line`.
    fn match_criteria(
        &mut self,
        opts: &Options,
        rest: &mut Option<&str>,
    ) -> Result<bool, MatchFail> {
        let facts = MatchFacts::new(self, opts)?;
        let mut result = true;
        let mut attributes = 0;
        while let Some(original) = strdelim(rest).filter(|a| !a.is_empty()) {
            if original.starts_with('#') {
                *rest = None;
                break;
            }
            let (negate, attribute) = match original.strip_prefix('!') {
                Some(a) => (true, a.to_ascii_lowercase()),
                None => (false, original.to_ascii_lowercase()),
            };
            if attribute == "all" {
                return match_all(rest, attributes, negate, result, &original);
            }
            attributes += 1;
            if attribute == "canonical" || attribute == "final" {
                self.want_final_pass |= attribute == "final";
                if self.final_pass == negate {
                    result = false;
                }
                continue;
            }
            let Some(arg) = strdelim(rest).filter(|a| !a.is_empty() && !a.starts_with('#')) else {
                return Err(MatchFail::Bad(format!(
                    "Missing Match criteria for {attribute}"
                )));
            };
            // `None`: an exec skipped because an earlier criterion failed.
            let Some(matched) = self.criterion(&attribute, &arg, &facts, result)? else {
                continue;
            };
            if matched == negate {
                result = false;
            }
        }
        if attributes == 0 {
            return Err(MatchFail::Bad(
                "One or more attributes required for Match".into(),
            ));
        }
        Ok(result)
    }

    /// One criterion that takes an argument.
    fn criterion(
        &self,
        attribute: &str,
        arg: &str,
        facts: &MatchFacts,
        so_far: bool,
    ) -> Result<Option<bool>, MatchFail> {
        let positive = |m: ListMatch| Ok(Some(m == ListMatch::Positive));
        match attribute {
            "host" => positive(match_host_pattern_list(&facts.host, arg)),
            "originalhost" => positive(match_host_pattern_list(&self.original_host, arg)),
            "user" => positive(match_pattern_list(&facts.remote_user, arg, false)),
            "localuser" => positive(match_pattern_list(&facts.local_user, arg, false)),
            "exec" => {
                // Tokens are expanded (and may fail) even when OpenSSH then
                // skips the command because the line already cannot match.
                let command =
                    percent_expand(arg, &facts.exec_tokens()).map_err(MatchFail::Expand)?;
                Ok(so_far.then(|| self.env.exec(&command)))
            }
            _ => Err(MatchFail::Bad(format!(
                "Unsupported Match attribute {attribute}"
            ))),
        }
    }

    fn include_line(
        &mut self,
        opts: &mut Options,
        args: &mut Args,
        ctx: &LineCtx<'_>,
        active: &mut bool,
    ) -> Result<(), LineFail> {
        if ctx.source.command_line {
            return Err(E::IncludeOnCommandLine.into());
        }
        let mut failed = None;
        while let Some(arg) = args.next_arg() {
            if arg.is_empty() {
                return Err(E::EmptyArgument(ctx.keyword.to_owned()).into());
            }
            if arg.starts_with('~') && !ctx.flags.user_config {
                return Err(E::BadIncludePath(arg).into());
            }
            let pattern = match (arg.starts_with(['/', '~']), ctx.flags.user_config) {
                (true, _) => arg,
                (false, true) => format!("~/.ssh/{arg}"),
                (false, false) => format!("/etc/ssh/{arg}"),
            };
            let pattern = tilde_expand(&pattern, self.env).map_err(LineFail::Abort)?;
            let outer = *active;
            let flags = FileFlags {
                never_match: ctx.flags.never_match || !outer,
                check_perm: true,
                ..ctx.flags
            };
            for path in self.env.glob(&pattern) {
                let path = path.to_string_lossy().into_owned();
                let read = self
                    .read_file(opts, &path, flags, active, ctx.depth + 1)
                    .map_err(LineFail::Abort)?;
                // A Match inside the included file must not leak out of it.
                *active = outer;
                if let FileRead::Missing(e) = read {
                    failed = Some(E::IncludeUnreadable(path, e.to_string()));
                }
            }
        }
        failed.map_or(Ok(()), |e| Err(e.into()))
    }
}

struct LineCtx<'a> {
    keyword: &'a str,
    raw: &'a str,
    source: &'a Source<'a>,
    flags: FileFlags,
    depth: usize,
}

enum MatchFail {
    Bad(String),
    Expand(ExpandError),
}

/// `Match all`: alone (or after at most one other criterion, an OpenSSH
/// quirk), optionally followed by a comment.
fn match_all(
    rest: &mut Option<&str>,
    attributes: usize,
    negate: bool,
    result: bool,
    original: &str,
) -> Result<bool, MatchFail> {
    let next = strdelim(rest);
    if attributes > 1
        || next
            .as_deref()
            .is_some_and(|a| !a.is_empty() && !a.starts_with('#'))
    {
        return Err(MatchFail::Bad(format!(
            "'{original}' cannot be combined with other Match attributes"
        )));
    }
    if next.as_deref().is_some_and(|a| a.starts_with('#')) {
        *rest = None;
    }
    Ok(result && !negate)
}

/// What Match criteria compare against, computed once per Match line with
/// the options known so far (OpenSSH uses defaults for unset ones).
struct MatchFacts {
    host: String,
    remote_user: String,
    local_user: String,
    info: ConnInfo,
}

impl MatchFacts {
    fn new(reader: &Reader<'_>, opts: &Options) -> Result<Self, MatchFail> {
        let env = reader.env;
        let host = if reader.final_pass {
            opts.hostname.clone().unwrap_or_else(|| reader.host.clone())
        } else if let Some(hostname) = &opts.hostname {
            percent_expand(hostname, &[('h', &reader.host)]).map_err(MatchFail::Expand)?
        } else {
            reader.host.clone()
        };
        let port = opts.port.unwrap_or(22).to_string();
        let local_user = env.local_user();
        let remote_user = opts.user.clone().unwrap_or_else(|| local_user.clone());
        let this_host = env.local_hostname();
        let info = ConnInfo {
            conn_hash: connection_hash(&this_host, &host, &port, &remote_user),
            short_host: short_hostname(&this_host).to_owned(),
            uid: env.uid().to_string(),
            key_alias: opts.host_key_alias.clone().unwrap_or_else(|| host.clone()),
            this_host: this_host.clone(),
            host_arg: reader.original_host.clone(),
            port,
            home_dir: env.home_dir().to_string_lossy().into_owned(),
            remote_host: host.clone(),
            remote_user: remote_user.clone(),
            local_user: local_user.clone(),
        };
        Ok(Self {
            host,
            remote_user,
            local_user,
            info,
        })
    }

    fn exec_tokens(&self) -> [(char, &str); 11] {
        self.info.tokens()
    }
}

/// The text of one config line. OpenSSH reads a line as bytes and uses
/// them as they are; warren's options are text, so a line that is not
/// UTF-8 is taken as it is only where its bytes cannot matter: a comment or
/// blank line is skipped (`Ok(None)`), and a line in a block that does not
/// apply is checked with its odd bytes replaced (its value is never used).
/// Anywhere else — a Host, Match or Include line, or a value that would be
/// used — it is refused, naming file:line, rather than silently changed.
fn line_text(raw: &[u8], active: bool) -> Result<Option<Cow<'_, str>>, E> {
    if let Ok(text) = std::str::from_utf8(raw) {
        return Ok(Some(Cow::Borrowed(text)));
    }
    let start = raw.iter().position(|b| !matches!(b, b' ' | b'\t' | b'\r'));
    let rest = &raw[start.unwrap_or(raw.len())..];
    if rest.is_empty() || rest.starts_with(b"#") {
        return Ok(None);
    }
    let end = rest
        .iter()
        .position(|b| matches!(b, b' ' | b'\t' | b'\r' | b'='))
        .unwrap_or(rest.len());
    let keyword = rest[..end].to_ascii_lowercase();
    let structural = matches!(keyword.as_slice(), b"host" | b"match" | b"include");
    if active || structural {
        return Err(E::NotUtf8(
            Escaped::truncated(raw.trim_ascii(), 200).to_string(),
        ));
    }
    Ok(Some(String::from_utf8_lossy(raw)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::harness::{get, run, run_in};
    use crate::env::tests::FakeEnv;
    use crate::{Flag, SystemEnvironment};

    fn user_of(config: &str, host: &str) -> String {
        match run(config, host, &[]) {
            Ok(c) => c.user().to_owned(),
            Err(e) => format!("error: {e}"),
        }
    }

    #[test]
    fn host_blocks() {
        let cases = [
            ("Host a\n User x\nHost *\n User y\n", "a", "x"),
            ("Host a\n User x\nHost *\n User y\n", "b", "y"),
            ("Host a b c\n User x\n", "b", "x"),
            ("Host a,b\n User x\n", "a", "me"),
            ("Host *.ex !db.ex\n User x\n", "db.ex", "me"),
            ("Host !db.ex *.ex\n User x\n", "web.ex", "x"),
            ("Host !nomatch\n User x\n", "h", "me"),
            ("Host h?st\n User x\n", "host", "x"),
            ("Host HOST\n User x\n", "host", "me"),
            ("User top\nHost *\n User later\n", "h", "top"),
            ("Host=h\n User x\n", "h", "x"),
            ("host \"h\"\n User x\n", "h", "x"),
        ];
        for (config, host, want) in cases {
            assert_eq!(user_of(config, host), want, "{config:?} for {host}");
        }
    }

    #[test]
    fn match_criteria() {
        let cases = [
            ("Match all\n User x\n", "x"),
            ("Match !all\n User x\n", "me"),
            ("Match host h\n User x\n", "x"),
            ("Host h\n HostName real\nMatch host real\n User x\n", "x"),
            ("Match host H,other\n User x\n", "x"),
            ("Match host *,!h\n User x\n", "me"),
            ("Match originalhost h\n User x\n", "x"),
            ("Match !originalhost h\n User x\n", "me"),
            ("Match user me\n User x\n", "x"),
            ("Port 2\nMatch user me host h\n Port 3\n User x\n", "x"),
            ("Match localuser me\n User x\n", "x"),
            ("Match localuser root\n User x\n", "me"),
            ("Match canonical\n User x\n", "me"),
            ("Match final\n User x\n", "x"),
            ("Match !final\n User x\n", "x"),
            ("Match exec true-cmd\n User x\n", "x"),
            ("Match exec false-cmd\n User x\n", "me"),
            ("Match !exec false-cmd\n User x\n", "x"),
            ("Match host h # comment\n User x\n", "x"),
            ("Match all # comment\n User x\n", "x"),
        ];
        for (config, want) in cases {
            let env = FakeEnv::default().exec_succeeds("true-cmd");
            let got = run_in(env, config, "h", &[])
                .map(|c| c.user().to_owned())
                .map_err(|e| e.to_string());
            assert_eq!(got.as_deref(), Ok(want), "{config:?}");
        }
    }

    #[test]
    fn bad_match_lines() {
        let cases = [
            ("Match\n", "no argument after keyword"),
            ("Match host\n", "Missing Match criteria for host"),
            ("Match all host h\n", "'all' cannot be combined"),
            (
                "Match localnetwork 10.0.0.0/8\n",
                "Unsupported Match attribute localnetwork",
            ),
            ("Match # nothing\n", "One or more attributes required"),
            ("Match exec %z\n", "unknown key %z"),
        ];
        for (config, want) in cases {
            let err = run(config, "h", &[])
                .map(|_| ())
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains(want), "{config:?}: {err:?}");
        }
    }

    #[test]
    fn match_exec_expands_tokens_and_short_circuits() {
        let config = "Match exec \"probe %h %p %r %u %n %l %L %d %i %k %%\"\n User x\nMatch host nomatch exec skipped\n User y\n";
        // In the first pass %h is the destination as typed.
        let env = FakeEnv::default().file("/cfg", config);
        let mut cli = CommandLine::new("H");
        cli.flags = vec![Flag::User("bob".into())];
        cli.config_file(ConfigFile::Path("/cfg".into()));
        resolve(&cli, &env, &Algorithms::openssh()).ok();
        let executed = env.executed.borrow().clone();
        assert_eq!(
            executed,
            ["probe H 22 bob me H myhost.example.org myhost /home/me 1000 H %"]
        );
    }

    #[test]
    fn match_final_runs_a_second_pass() {
        let config = "SendEnv B\nHost alias\n HostName Real.Example\nHost real.example\n User second\nMatch final\n SendEnv A\n";
        let c = run(config, "alias", &[]).ok();
        let c = c.as_ref();
        assert_eq!(c.map(|c| c.user()), Some("second"));
        assert_eq!(c.map(|c| c.hostname()), Some("real.example"));
        // SendEnv accumulates, so the second pass adds its values again.
        assert_eq!(c.map(|c| c.send_env().join(",")).as_deref(), Some("B,B,A"));
    }

    #[test]
    fn canonicalize_hostname_with_domains() {
        let env = || {
            FakeEnv::default()
                .resolvable("web.b.example.")
                .resolvable("fq.example.")
        };
        let base = "CanonicalizeHostname yes\nCanonicalDomains a.example b.example\n";
        let cases = [
            ("", "web", Ok("web.b.example")),
            ("", "Web", Ok("web.b.example")),
            ("", "fq.example.", Ok("fq.example")),
            ("", "nowhere", Ok("nowhere")),
            (
                "CanonicalizeFallbackLocal no\n",
                "nowhere",
                Err("ssh: Could not resolve host \"nowhere\""),
            ),
            ("CanonicalizeMaxDots 0\n", "web.x", Ok("web.x")),
            ("ProxyJump b\n", "web", Ok("web")),
            ("ProxyCommand nc %h %p\n", "web", Ok("web")),
            (
                "CanonicalizeHostname always\nProxyCommand nc %h %p\n",
                "web",
                Ok("web.b.example"),
            ),
        ];
        for (extra, host, want) in cases {
            let config = format!("{extra}{base}");
            let got = run_in(env(), &config, host, &[])
                .map(|c| c.hostname().to_owned())
                .map_err(|e| e.to_string());
            assert_eq!(
                got.as_deref().map_err(String::as_str),
                want,
                "{extra:?} {host}"
            );
        }
        // The second pass matches Host lines against the canonical name.
        let c = run_in(
            env(),
            &format!("{base}Host web.b.example\n User canonical\n"),
            "web",
            &[],
        )
        .ok();
        assert_eq!(c.as_ref().map(|c| c.user()), Some("canonical"));
    }

    #[test]
    fn canonicalize_hostname_requests_a_second_pass() {
        let config = "CanonicalizeHostname yes\nMatch canonical\n User canon\n";
        assert_eq!(user_of(config, "h"), "canon");
    }

    #[test]
    fn includes() {
        let env = FakeEnv::default()
            .file("/inc/a.conf", "Host h\n User from-a\n")
            .file("/inc/b.conf", "Host *\n Port 2\nInclude /inc/nested/*\n")
            .file("/inc/nested/n1", "Compression yes\n")
            .file("/home/me/.ssh/rel.conf", "ServerAliveInterval 7\n")
            .file("/inc/matchy", "Match all\n User leaked\n");
        let config =
            "Include /inc/*.conf rel.conf\nHost other\n Include /inc/matchy\nHost *\n User last\n";
        let c = run_in(env, config, "h", &[]).ok();
        let c = c.as_ref();
        assert_eq!(c.map(|c| c.user()), Some("from-a"));
        assert_eq!(c.map(|c| c.port()), Some(2));
        assert_eq!(c.map(|c| c.compression()), Some(true));
        assert_eq!(c.map(|c| c.server_alive_interval().as_secs()), Some(7));
    }

    /// Each line that applied is recorded with its file and line, once
    /// even when the final pass reads it again; inactive blocks are not.
    #[test]
    fn where_each_value_was_set() {
        let env = FakeEnv::default().file("/inc/a.conf", "Host h\n HostName real.example\n");
        let config = "Include /inc/a.conf\nHost nope\n User skipped\nHost *\n User first\n User second\n IdentityFile k1\n IdentityFile k2\nMatch final\n Port 2\n";
        let flags = [Flag::Option("User=cli".into()), Flag::Port("7".into())];
        let c = run_in(env, config, "h", &flags).unwrap();
        let at = |k: &str| -> Vec<String> { c.set_at(k).iter().map(|s| s.to_string()).collect() };
        assert_eq!(at("hostname"), ["/inc/a.conf:2"]);
        assert_eq!(
            at("User"),
            ["the command line", "/cfg:5", "/cfg:6"],
            "the -o first, then the file's lines in order, not the inactive one"
        );
        assert_eq!(at("IdentityFile"), ["/cfg:7", "/cfg:8"]);
        assert_eq!(
            at("Port"),
            ["the command line", "/cfg:10"],
            "-p first; read twice (final pass), recorded once"
        );
    }

    #[test]
    fn include_inside_inactive_block_never_matches() {
        let env = FakeEnv::default().file("/inc/x", "User inner\nMatch all\n Port 9\n");
        let c = run_in(
            env,
            "Host nope\n Include /inc/x\nHost *\n User outer\n",
            "h",
            &[],
        )
        .ok();
        assert_eq!(
            c.as_ref().map(|c| (c.user(), c.port())),
            Some(("outer", 22))
        );
    }

    #[test]
    fn include_state_does_not_leak_to_the_includer() {
        let env = FakeEnv::default().file("/inc/x", "Host nomatch\n");
        assert_eq!(user_of_env(env, "Include /inc/x\nUser after\n"), "after");
    }

    fn user_of_env(env: FakeEnv, config: &str) -> String {
        run_in(env, config, "h", &[])
            .map(|c| c.user().to_owned())
            .unwrap_or_else(|e| e.to_string())
    }

    // A config line that is not UTF-8 was decoded lossily: `User caf\xe9`
    // silently became another user name. OpenSSH uses the bytes as they
    // are; warren skips them where they cannot matter and refuses them,
    // naming file:line, where a value would change.
    #[test]
    fn lines_that_are_not_utf8() {
        let user = |bytes: &[u8]| {
            let env = FakeEnv::default().file_bytes("/inc/x", bytes);
            user_of_env(env, "Include /inc/x\nUser fallback\n")
        };
        let cases: [(&[u8], &str); 7] = [
            (b"# caf\xe9\nUser ok\n", "ok"),
            (b"  \t# caf\xe9\r\nUser ok\n", "ok"),
            (b"Host other\n User caf\xe9\nHost *\n User ok\n", "ok"),
            (
                b"Port 22\nUser caf\xe9\n",
                "/inc/x: terminating, 1 bad configuration options\n  /inc/x line 2: line is not UTF-8 and its value cannot be used unchanged: User caf\\xe9",
            ),
            (
                b"Host caf\xe9\n User no\n",
                "/inc/x: terminating, 1 bad configuration options\n  /inc/x line 1: line is not UTF-8 and its value cannot be used unchanged: Host caf\\xe9",
            ),
            (
                b"Host other\n X\xe9 y\n",
                "/inc/x: terminating, 1 bad configuration options\n  /inc/x: line 2: Bad configuration option: x\u{fffd}",
            ),
            // Text from the file is escaped in messages.
            (
                b"Bogus\x1b[2J yes\n",
                "/inc/x: terminating, 1 bad configuration options\n  /inc/x: line 1: Bad configuration option: bogus\\e[2j",
            ),
        ];
        for (bytes, want) in cases {
            assert_eq!(user(bytes), want, "{}", String::from_utf8_lossy(bytes));
        }
    }

    #[test]
    fn system_config_includes_are_relative_to_etc_ssh() {
        let env = FakeEnv::default()
            .file("/home/me/.ssh/config", "Include user.d/*\n")
            .file("/home/me/.ssh/user.d/1", "Port 1234\n")
            .file("/etc/ssh/ssh_config", "Include ssh_config.d/*.conf\n")
            .file("/etc/ssh/ssh_config.d/x.conf", "User sys\n");
        let c = resolve(&CommandLine::new("h"), &env, &Algorithms::openssh()).ok();
        assert_eq!(
            c.as_ref().map(|c| (c.user(), c.port())),
            Some(("sys", 1234))
        );
        let env = FakeEnv::default().file("/etc/ssh/ssh_config", "Include ~/x\n");
        let err = resolve(&CommandLine::new("h"), &env, &Algorithms::openssh())
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("bad include path ~/x.")));
    }

    #[test]
    fn included_files_must_not_be_writable_by_others() {
        let env = FakeEnv::default().file("/inc/world-writable", "User x\n");
        let err = run_in(env, "Include /inc/*\n", "h", &[])
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("Bad owner or permissions on /inc/world-writable")
        );
        // The -F file itself is not checked.
        let env = FakeEnv::default().file("/world-writable", "User x\n");
        let mut cli = CommandLine::new("h");
        cli.config_file(ConfigFile::Path("/world-writable".into()));
        assert!(resolve(&cli, &env, &Algorithms::openssh()).is_ok());
    }

    #[test]
    fn include_depth_is_limited() {
        let env = FakeEnv::default().file("/loop", "Include /loop\n");
        let err = run_in(env, "Include /loop\n", "h", &[]).err();
        assert!(matches!(err, Some(ConfigError::IncludeDepth)), "{err:?}");
    }

    #[test]
    fn command_line_rejects_blocks() {
        for option in ["Host=x", "Match all", "Include /x"] {
            let err = run("", "h", &[Flag::Option(option.into())])
                .err()
                .map(|e| e.to_string());
            assert!(
                err.is_some_and(|e| e.ends_with("directive not supported as a command-line option")),
                "{option}"
            );
        }
    }

    #[test]
    fn errors_report_every_bad_line() {
        let err = run("Port x\nUser ok\nBogus 1\n", "h", &[]).err();
        let Some(ConfigError::BadOptions { file, errors }) = err else {
            panic!("{err:?}")
        };
        assert_eq!(file, "/cfg");
        assert_eq!(errors.iter().map(|e| e.line).collect::<Vec<_>>(), [1, 3]);
    }

    #[test]
    fn missing_config_file_is_an_error_only_with_dash_f() {
        let mut cli = CommandLine::new("h");
        cli.config_file(ConfigFile::Path("/nope".into()));
        let err = resolve(&cli, &FakeEnv::default(), &Algorithms::openssh())
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.starts_with("Can't open user config file /nope")));
        assert!(
            resolve(
                &CommandLine::new("h"),
                &FakeEnv::default(),
                &Algorithms::openssh()
            )
            .is_ok()
        );
        cli.config_file(ConfigFile::from_flag("NONE"));
        assert!(resolve(&cli, &FakeEnv::default(), &Algorithms::openssh()).is_ok());
    }

    #[test]
    fn destination_names() {
        let cases = [
            ("Example.COM", "example.com"),
            ("127.1", "127.0.0.1"),
            ("10.0.0.01", "10.0.0.1"),
            ("0x7f.1", "127.0.0.1"),
            ("123", "0.0.0.123"),
            ("::0001", "::1"),
            ("FE80::1", "FE80::1"),
            ("fe80::1%lo", "fe80::1%lo"),
            ("1.2.3.4.5", "1.2.3.4.5"),
        ];
        for (host, want) in cases {
            assert_eq!(
                run("", host, &[])
                    .map(|c| c.hostname().to_owned())
                    .ok()
                    .as_deref(),
                Some(want),
                "{host}"
            );
        }
    }

    #[test]
    fn tokens_in_paths() {
        let config = "User u\nPort 2200\nControlPath /s/%C\nIdentityFile ~/.ssh/%h-%r-%p\nUserKnownHostsFile %d/.kh/%k\nHostKeyAlias Alias\n";
        let c = run(config, "Host.Ex", &[]).ok();
        let c = c.as_ref();
        let hash = connection_hash("myhost.example.org", "host.ex", "2200", "u");
        assert_eq!(
            c.map(|c| get(c, "controlpath")),
            Some(vec![format!("/s/{hash}")])
        );
        assert_eq!(
            c.map(|c| get(c, "userknownhostsfile")),
            Some(vec!["/home/me/.kh/alias".to_owned()])
        );
        assert_eq!(
            c.map(|c| get(c, "identityfile")),
            Some(vec!["~/.ssh/%h-%r-%p".to_owned()])
        );
        let paths = c.map(|c| c.identity_file_paths(&FakeEnv::default()).ok());
        assert_eq!(
            paths,
            Some(Some(vec!["/home/me/.ssh/host.ex-u-2200".into()]))
        );
    }

    proptest::proptest! {
        /// Whatever the file says, resolving returns (Ok or Err), never panics.
        #[test]
        fn arbitrary_configs_never_panic(
            lines in proptest::collection::vec(
                proptest::prop_oneof![
                    "[A-Za-z]{1,12}[ =\t]{1,3}[ -~]{0,30}",
                    "(Host|Match|Include|LocalForward|ProxyJump|IdentityFile|Port|SetEnv) [ -~]{0,30}",
                    "[ -~]{0,40}",
                ],
                0..8,
            ),
            host in "[a-zA-Z0-9.:%-]{1,20}",
        ) {
            let env = FakeEnv::default().file("/inc", "Include /inc\n");
            let _ = run_in(env, &lines.join("\n"), &host, &[]);
        }
    }

    #[test]
    fn real_environment_resolves_defaults() {
        let mut cli = CommandLine::new("example.com");
        cli.config_file(ConfigFile::None);
        let c = resolve(&cli, &SystemEnvironment::new(), &Algorithms::openssh());
        assert_eq!(c.map(|c| c.port()).ok(), Some(22));
    }
}
