//! Reading config files: lines, Host and Match blocks, Include, and the
//! two passes (`readconf.c` `read_config_file_depth`, `match_cfg_line`;
//! `ssh.c` `process_config_files` and the hostname/final-pass logic).
//!
//! Design choice: one `Reader` walks the files with an explicit `active`
//! flag shared between a file and the files it includes, exactly like
//! OpenSSH's `activep` pointer, because Include-inside-Match semantics
//! (and what a Host line inside an included file does) follow from it.

use crate::algorithms::Algorithms;
use crate::cli::{CommandLine, ConfigFile, apply_flags};
use crate::env::Environment;
use crate::error::{ConfigError, LineError, LineErrorKind as E};
use crate::expand::{
    ConnInfo, ExpandError, connection_hash, percent_expand, short_hostname, tilde_expand,
};
use crate::host_config::HostConfig;
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
    let debug_flag = apply_flags(&mut opts, cli, &mut reader)?;
    reader.process_config_files(&mut opts, &cli.config)?;
    let want_final = reader.want_final_pass;
    let host = first_pass_host(&mut opts, &cli.host).map_err(ExpandError::into_config_error)?;
    let canonicalize = opts
        .canonicalize_hostname
        .unwrap_or(CanonicalizeHostname::No);
    if want_final || canonicalize != CanonicalizeHostname::No {
        // Hostname canonicalisation needs DNS, which this crate does not
        // do; like OpenSSH, its mere request re-parses the configuration.
        opts.hostname = Some(host.clone());
        reader.host = host.clone();
        reader.final_pass = true;
        reader.process_config_files(&mut opts, &cli.config)?;
    }
    HostConfig::finish(
        opts,
        cli,
        &host,
        env,
        algorithms,
        reader.warnings,
        debug_flag,
    )
}

/// After the first pass: HostName (with `%h`) replaces the destination,
/// names are lowercased and numeric addresses put in canonical form.
fn first_pass_host(opts: &mut Options, host_arg: &str) -> Result<String, ExpandError> {
    let mut host = host_arg.to_owned();
    if let Some(hostname) = &opts.hostname {
        host = percent_expand(hostname, &[('h', host_arg)])?;
        opts.hostname = Some(host.clone());
    }
    if looks_like_address(&host) {
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
        }
    }

    pub(crate) fn env(&self) -> &'a dyn Environment {
        self.env
    }

    pub(crate) fn algorithms(&self) -> &'a Algorithms {
        self.algorithms
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
                self.read_file(opts, &user_file, user, &mut true, 0)?;
                let system = FileFlags {
                    user_config: false,
                    never_match: false,
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
        let mut errors = Vec::new();
        for (index, text) in contents.split('\n').enumerate() {
            let source = Source {
                file: path,
                line: index + 1,
                command_line: false,
            };
            match self.process_line(opts, text, &source, active, flags, depth) {
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
                    s.file, s.line, ctx.keyword
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
                let line = Line {
                    keyword: ctx.keyword,
                    raw: ctx.raw,
                    active: *active,
                    origin,
                    env: self.env,
                    algorithms: self.algorithms,
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
            let matched = match attribute.as_str() {
                "host" => match_host_pattern_list(&facts.host, &arg) == ListMatch::Positive,
                "originalhost" => {
                    match_host_pattern_list(&self.original_host, &arg) == ListMatch::Positive
                }
                "user" => {
                    match_pattern_list(&facts.remote_user, &arg, false) == ListMatch::Positive
                }
                "localuser" => {
                    match_pattern_list(&facts.local_user, &arg, false) == ListMatch::Positive
                }
                "exec" => {
                    let command =
                        percent_expand(&arg, &facts.exec_tokens()).map_err(MatchFail::Expand)?;
                    if !result {
                        // A previous criterion failed: OpenSSH skips the command.
                        continue;
                    }
                    self.env.exec(&command)
                }
                _ => {
                    return Err(MatchFail::Bad(format!(
                        "Unsupported Match attribute {attribute}"
                    )));
                }
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
