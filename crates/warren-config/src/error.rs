//! Errors, worded as OpenSSH words them and carrying `file line N` context.
//!
//! Design choice: a bad line is a [`LineError`] (OpenSSH keeps reading and
//! counts them, then stops with "terminating, N bad configuration options");
//! everything OpenSSH treats as immediately fatal is a [`ConfigError`].

use std::fmt;

use warren_wire::escape_str;

/// One rejected configuration line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// The file name as OpenSSH prints it (`command-line` for `-o`).
    pub file: String,
    /// 1-based line number (0 for `-o`).
    pub line: usize,
    /// What was wrong.
    pub kind: LineErrorKind,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The message quotes the file's text: escaped, so a config line
        // cannot forge output lines or act on the terminal.
        let kind = self.kind.to_string();
        let kind = escape_str(&kind);
        match self.kind {
            // OpenSSH uses "file: line N:" for this message only...
            LineErrorKind::BadOption(_) => {
                return write!(f, "{}: line {}: {kind}", self.file, self.line);
            }
            // ...and no location at all for these.
            LineErrorKind::HostOnCommandLine | LineErrorKind::IncludeOnCommandLine => {
                return write!(f, "{kind}");
            }
            _ => {}
        }
        write!(f, "{} line {}: {kind}", self.file, self.line)
    }
}

impl std::error::Error for LineError {}

/// Why a line was rejected; the text is OpenSSH's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LineErrorKind {
    #[error("Bad configuration option: {0}")]
    BadOption(String),
    #[error("no argument after keyword \"{0}\"")]
    NoArgument(String),
    #[error("invalid quotes")]
    InvalidQuotes,
    #[error("Missing argument.")]
    MissingArgument,
    #[error("missing argument.")]
    MissingArgumentLower,
    #[error("missing time value.")]
    MissingTime,
    #[error("invalid time value.")]
    InvalidTime,
    #[error("unsupported option \"{0}\".")]
    UnsupportedValue(String),
    #[error("unsupported option")]
    UnsupportedAddKeysToAgent,
    #[error("Bad port '{0}'.")]
    BadPort(String),
    #[error("integer value {0}.")]
    Integer(&'static str),
    #[error("keyword {0} extra arguments at end of line")]
    ExtraArguments(String),
    #[error("keyword {0} empty argument")]
    EmptyArgument(String),
    #[error("keyword {0} \"{1}\" argument must appear alone.")]
    MustAppearAlone(String, String),
    #[error("Too many {0} files specified (max {1}).")]
    TooManyFiles(&'static str, usize),
    #[error("Bad SSH2 cipher spec '{0}'.")]
    BadCiphers(String),
    #[error("Bad SSH2 MAC spec '{0}'.")]
    BadMacs(String),
    #[error("Bad SSH2 KexAlgorithms '{0}'.")]
    BadKex(String),
    #[error("Bad key types '{0}'.")]
    BadKeyTypes(String),
    #[error("Bad GSSAPI KexAlgorithms '{0}'.")]
    BadGssKex(String),
    #[error("unsupported log level '{0}'")]
    BadLogLevel(String),
    #[error("unsupported log facility '{0}'")]
    BadLogFacility(String),
    #[error("Missing target argument.")]
    MissingForwardTarget,
    #[error("Bad forwarding specification.")]
    BadForward,
    #[error("Invalid environment name.")]
    BadSendEnv,
    #[error("Invalid SetEnv.")]
    BadSetEnv,
    #[error("Missing ControlPersist argument.")]
    MissingControlPersist,
    #[error("Bad ControlPersist argument.")]
    BadControlPersist,
    #[error("Bad tun device.")]
    BadTunDevice,
    #[error("Bad escape character.")]
    BadEscapeChar,
    #[error("Bad IPQoS value: {0}")]
    BadIpQos(String),
    #[error("{0}")]
    BadDomain(String),
    #[error("Invalid permitted CNAME \"{0}\"")]
    BadPermittedCname(String),
    #[error("Missing StreamLocalBindMask argument.")]
    MissingMask,
    #[error("Bad mask.")]
    BadMask,
    #[error("Invalid hash algorithm \"{0}\".")]
    BadHash(String),
    #[error("Invalid environment expansion {0}.")]
    BadEnvExpansion(String),
    #[error("Invalid environment name {0}.")]
    BadEnvName(String),
    #[error("bad include path {0}.")]
    BadIncludePath(String),
    #[error("Bad number '{0}': {1}")]
    BadNumber(String, &'static str),
    #[error("RekeyLimit too small")]
    RekeyLimitTooSmall,
    #[error("Invalid ProxyJump \"{0}\"")]
    BadProxyJump(String),
    /// OpenSSH says "Host directive" for Match too; we keep its words.
    #[error("Host directive not supported as a command-line option")]
    HostOnCommandLine,
    #[error("Include directive not supported as a command-line option")]
    IncludeOnCommandLine,
    #[error("Bad Match condition: {0}")]
    BadMatch(String),
    #[error("Can't open user config file {0}: {1}")]
    IncludeUnreadable(String, String),
    #[error("too many {0} entries.")]
    TooManyEntries(String),
    /// OpenSSH would use the line's bytes as they are; warren's values are
    /// text, and changing the value silently would be worse than stopping.
    #[error("line is not UTF-8 and its value cannot be used unchanged: {0}")]
    NotUtf8(String),
}

/// Why the configuration could not be resolved at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A file had bad lines; OpenSSH reports each, then stops.
    #[error("{file}: terminating, {} bad configuration options{}", errors.len(), list(errors))]
    BadOptions {
        file: String,
        errors: Vec<LineError>,
    },
    /// A `-o` option was rejected (ssh exits 255 at once).
    #[error("{0}")]
    CommandLine(LineError),
    /// The `-F` file, or an included file, exists but cannot be read.
    #[error("Can't open user config file {path}")]
    Open {
        path: String,
        source: std::io::Error,
    },
    /// Includes nested deeper than OpenSSH's limit of 16.
    #[error("Too many recursive configuration includes")]
    IncludeDepth,
    /// A `%` token or `${VAR}` could not be expanded.
    #[error("{0}")]
    Expand(String),
    /// Something OpenSSH treats as fatal at a known line.
    #[error("{file} line {line}: {message}")]
    FatalLine {
        file: String,
        line: usize,
        message: String,
    },
    /// An invalid combination of flags and options, worded as OpenSSH does.
    #[error("{0}")]
    Invalid(String),
}

fn list(errors: &[LineError]) -> String {
    errors.iter().map(|e| format!("\n  {e}")).collect()
}
