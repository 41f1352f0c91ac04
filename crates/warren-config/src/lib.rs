//! warren-config: an ssh_config engine with OpenSSH 9.2's semantics.
//!
//! It owns everything between "what the user typed" and "what the client
//! will do": the `-o` options and typed flags, `~/.ssh/config` and
//! `/etc/ssh/ssh_config` (Host, Match, Include, first-value-wins), the
//! `%`-token, `~` and `${ENV}` expansions, OpenSSH's defaults, an
//! `ssh -G`-compatible dump, and scp's `[user@]host:path` operands.
//!
//! The one design choice: the engine is pure. Every file read, glob,
//! `Match exec` and lookup of the local user goes through the
//! [`Environment`] trait, so the whole engine is tested from string literals
//! with a fake environment; [`SystemEnvironment`] is the real one.
//!
//! ```no_run
//! use warren_config::{resolve, Algorithms, CommandLine, SystemEnvironment};
//!
//! let mut cli = CommandLine::new("app");
//! cli.option("User=deploy");
//! let config = resolve(&cli, &SystemEnvironment::new(), &Algorithms::openssh())?;
//! println!("{}", config.hostname());
//! print!("{}", config.dump());
//! # Ok::<(), warren_config::ConfigError>(())
//! ```

mod algorithms;
mod cli;
mod engine;
mod env;
mod error;
mod expand;
mod forward;
mod host_config;
mod jump;
mod keyword;
mod known_hosts_command;
mod lexer;
mod options;
mod pattern;
mod remote_path;
mod sha1;
mod system;
mod uri;
mod values;

pub use algorithms::{AlgorithmList, Algorithms};
pub use cli::{CommandLine, ConfigFile, Flag};
pub use engine::resolve;
pub use env::Environment;
pub use error::{ConfigError, LineError, LineErrorKind};
pub use forward::{Forward, ForwardEndpoint};
pub use host_config::{HostConfig, KEYWORDS, SetAt, Support};
pub use jump::JumpHost;
pub use known_hosts_command::{KnownHostsCommand, PresentedKey};
pub use lexer::command_words;
pub use pattern::{ListMatch, match_host_pattern_list, match_pattern, match_pattern_list};
pub use remote_path::{Operand, OperandError, RemotePath};
pub use system::SystemEnvironment;
pub use values::{
    AddKeysToAgent, AddressFamily, CanonicalizeHostname, ControlMaster, ControlPersist, LogLevel,
    PubkeyAuthentication, RequestTty, SessionType, StrictHostKeyChecking, Tunnel, YesNoAsk,
    parse_duration,
};
