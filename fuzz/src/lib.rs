//! Helpers shared by the fuzz targets: an in-memory ssh_config
//! environment, resolving a config and its `-G` dump, and splitting an
//! input into chunks.
//!
//! Design choice: every target asserts a round trip (what was parsed,
//! written back in the format it came from, parses to the same thing), not
//! only "no panic"; the helpers here keep the targets short.

use std::cell::Cell;
use std::path::{Path, PathBuf};

use warren_config::{
    Algorithms, CommandLine, ConfigError, ConfigFile, Environment, HostConfig, match_pattern,
    resolve,
};

/// The main config file, passed as `-F`.
pub const CONFIG: &str = "/cfg";
/// The file every `Include` (other than of [`CONFIG`]) finds.
pub const INCLUDED: &str = "/home/fuzz/.ssh/inc";
/// File reads allowed per resolve: an `Include` of itself nests 16 deep,
/// which with several includes per line grows exponentially.
const MAX_READS: u32 = 64;
/// The longest Unix socket path a forward takes, plus one.
const PATH_MAX_SUN: usize = 108;

/// A machine made of two files; nothing is run, every variable is unset.
#[derive(Debug)]
pub struct FuzzEnv {
    config: String,
    included: Option<String>,
    reads: Cell<u32>,
}

impl FuzzEnv {
    pub fn new(config: &str, included: Option<&str>) -> Self {
        Self {
            config: config.to_owned(),
            included: included.map(str::to_owned),
            reads: Cell::new(0),
        }
    }

    /// Splits a fuzz input: the config, then after a NUL the included file.
    pub fn from_text(text: &str) -> Self {
        match text.split_once('\0') {
            Some((config, included)) => Self::new(config, Some(included)),
            None => Self::new(text, None),
        }
    }
}

impl Environment for FuzzEnv {
    fn read_file(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        let reads = self.reads.get() + 1;
        self.reads.set(reads);
        if reads > MAX_READS {
            return Err(std::io::Error::other("too many reads"));
        }
        match (path.to_str(), &self.included) {
            (Some(CONFIG), _) => Ok(self.config.clone().into_bytes()),
            (Some(INCLUDED), Some(text)) => Ok(text.clone().into_bytes()),
            _ => Err(std::io::ErrorKind::NotFound.into()),
        }
    }
    fn glob(&self, pattern: &str) -> Vec<PathBuf> {
        if match_pattern(CONFIG, pattern) {
            vec![PathBuf::from(CONFIG)]
        } else if self.included.is_some() {
            vec![PathBuf::from(INCLUDED)]
        } else {
            Vec::new()
        }
    }
    fn file_exists(&self, path: &Path) -> bool {
        path.to_str().is_some_and(|p| p.len() % 2 == 0)
    }
    fn exec(&self, command: &str) -> bool {
        command.len() % 2 == 0
    }
    fn env_var(&self, _name: &str) -> Option<String> {
        None
    }
    fn home_dir(&self) -> PathBuf {
        PathBuf::from("/home/fuzz")
    }
    fn user_home(&self, user: &str) -> Option<PathBuf> {
        (user == "other").then(|| PathBuf::from("/home/other"))
    }
    fn local_user(&self) -> String {
        "fuzz".to_owned()
    }
    fn uid(&self) -> u32 {
        1000
    }
    fn local_hostname(&self) -> String {
        "fuzzhost.example.org".to_owned()
    }
}

/// Resolves `cli` (its `-F` set to [`CONFIG`]) in `env`.
pub fn resolve_in(env: &FuzzEnv, mut cli: CommandLine) -> Result<HostConfig, ConfigError> {
    cli.config_file(ConfigFile::Path(CONFIG.into()));
    resolve(&cli, env, &Algorithms::openssh())
}

/// The `-G` property: the dump of a resolved configuration, read back as
/// the only config file for the same destination, dumps the same. Returns
/// the second configuration, or `None` when the dump cannot be read back,
/// as OpenSSH's cannot: `-G` prints values unquoted and after `%`
/// expansion, so a literal `%` in them (from `%%`, or inside a token's
/// value) would be expanded again, a quote, a backslash, a word starting
/// with `#` or a value starting with `=` would be read as syntax, blanks
/// beyond single spaces and control characters (a `\r` at the end of a
/// value, say) would be lost, and a forward endpoint is printed without
/// the escapes its syntax needs.
pub fn assert_dump_round_trips(config: &HostConfig) -> Option<HostConfig> {
    let dump = config.dump();
    let syntax = |c: char| "%\"'\\".contains(c) || (c.is_control() && c != '\n');
    let lost = [" #", " =", "  ", " \n"];
    if dump.contains(syntax)
        || lost.iter().any(|s| dump.contains(s))
        || !dump.lines().all(forward_line_readable)
    {
        return None;
    }
    let env = FuzzEnv::new(&readable_dump(&dump), None);
    let again = match resolve_in(&env, CommandLine::new(config.host_arg())) {
        Ok(again) => again,
        Err(e) => panic!("the -G dump does not parse: {e}\n--- dump:\n{dump}"),
    };
    let redump = again.dump();
    if redump != dump {
        let (a, b): (Vec<&str>, Vec<&str>) = (dump.lines().collect(), redump.lines().collect());
        let gone = a
            .iter()
            .filter(|l| !b.contains(l))
            .map(|l| format!("- {l}"));
        let new = b
            .iter()
            .filter(|l| !a.contains(l))
            .map(|l| format!("+ {l}"));
        let diff: Vec<String> = gone.chain(new).collect();
        panic!(
            "the -G dump re-parsed dumps differently:\n{}\n--- dump:\n{dump}",
            diff.join("\n")
        );
    }
    Some(again)
}

/// Whether a `-G` forward line reads back as printed: `[host]:port` with
/// no `]` in the host, a port, or a path without `:` (which would split
/// it), one word per endpoint. A path is checked for length before its
/// `%` tokens are expanded (as OpenSSH does), so a path printed after
/// expansion may be too long to read back.
fn forward_line_readable(line: &str) -> bool {
    let (words, want) = match line.split_once(' ') {
        Some(("dynamicforward", rest)) => (rest, 1),
        Some(("localforward" | "remoteforward", rest)) => (rest, 2),
        _ => return true,
    };
    let endpoint_ok = |w: &str| match w.strip_prefix('[') {
        Some(bracketed) => bracketed
            .rsplit_once("]:")
            .is_some_and(|(host, _)| !host.contains(']')),
        None => !w.contains(':') && w.len() < PATH_MAX_SUN,
    };
    // OpenSSH's config parser works on a forward's arguments in a 256-byte
    // buffer: a longer spec, which its command line accepts and `-G`
    // prints, is refused or cut when read back (measured with ssh 9.2:
    // a 328-byte bind host is refused, a 254-byte one loses the end of the
    // target port); warren reads those lines the same way.
    words.len() <= 240 && words.split(' ').count() == want && words.split(' ').all(endpoint_ok)
}

/// The dump as a config that means the same: without the first line
/// (`host NAME` reads as a `Host` line, whose pattern need not match NAME:
/// `!final` never does); without the `dynamicforward` line OpenSSH also
/// prints for a local forward to a Unix socket (`dump_cfg_forwards` checks
/// only for a missing host); with a dynamic remote forward's `[socks]:0`
/// target (printed, but not a valid target) dropped; and with the `setenv`
/// lines, one per variable, joined into one (only the first SetEnv line
/// counts).
fn readable_dump(dump: &str) -> String {
    let unix_local: Vec<&str> = dump
        .lines()
        .filter_map(|l| l.strip_prefix("localforward "))
        .filter_map(|rest| rest.split_once(' '))
        .filter(|(_, target)| !target.starts_with('['))
        .map(|(listen, _)| listen)
        .collect();
    let setenv: Vec<&str> = dump
        .lines()
        .filter_map(|l| l.strip_prefix("setenv "))
        .collect();
    let mut out = String::new();
    for line in dump.lines().skip(1) {
        if let Some(listen) = line.strip_prefix("dynamicforward ")
            && unix_local.contains(&listen)
        {
            continue;
        }
        if let Some(listen) = line
            .strip_prefix("remoteforward ")
            .and_then(|rest| rest.strip_suffix(" [socks]:0"))
        {
            out.push_str(&format!("remoteforward {listen}\n"));
            continue;
        }
        if line.starts_with("setenv ") {
            if line == format!("setenv {}", setenv[0]) {
                out.push_str(&format!("setenv {}\n", setenv.join(" ")));
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Cut points for feeding `rest` in chunks: each byte of `head` is the
/// length of the next chunk (0 feeds nothing new, which is allowed).
pub fn chunks<'a>(head: &[u8], rest: &'a [u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    for &len in head {
        let end = (start + usize::from(len)).min(rest.len());
        out.push(&rest[start..end]);
        start = end;
    }
    out.push(&rest[start..]);
    out
}
