//! The [`Environment`] trait: every side effect the engine may need.
//!
//! Design choice: the engine never touches the file system, processes or
//! the network itself; it asks this trait. Tests implement it with a
//! `HashMap` of file contents, the CLI uses [`crate::SystemEnvironment`].

use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// What the engine needs from the machine it runs on.
pub trait Environment {
    /// Contents of a config file, as bytes (the engine reads them line by
    /// line, as OpenSSH does). `ErrorKind::NotFound` means "no such file"
    /// and is not an error for the default config files or globbed includes.
    fn read_file(&self, path: &Path) -> std::io::Result<Vec<u8>>;
    /// Paths matching `pattern` (already `~`-expanded, absolute), sorted as
    /// glob(3) sorts them; only paths that exist.
    fn glob(&self, pattern: &str) -> Vec<PathBuf>;
    /// Whether a path exists (`-i` skips identity files that do not).
    fn file_exists(&self, path: &Path) -> bool;
    /// Run `command` through the shell (`$SHELL -c`); true on exit status 0.
    fn exec(&self, command: &str) -> bool;
    /// The value of an environment variable, for `${NAME}` expansion.
    fn env_var(&self, name: &str) -> Option<String>;
    /// The local user's home directory (`pw_dir`, used for `~` and `%d`).
    fn home_dir(&self) -> PathBuf;
    /// Home directory of another user, for `~user/` paths.
    fn user_home(&self, user: &str) -> Option<PathBuf>;
    /// The local user name (`%u`, the default remote user).
    fn local_user(&self) -> String;
    /// The local numeric user id (`%i`).
    fn uid(&self) -> u32;
    /// The full local host name (`%l`); `%L` is its first component.
    fn local_hostname(&self) -> String;
    /// Whether a config file that ssh checks (`~/.ssh/config` and included
    /// files) is owned by root or the user and not writable by group or
    /// others; OpenSSH refuses to run otherwise.
    fn config_permissions_ok(&self, path: &Path) -> bool {
        let _ = path;
        true
    }
    /// Whether a fully qualified name (with its trailing dot) resolves in
    /// DNS, for CanonicalizeHostname. The default resolves nothing, so
    /// canonicalization falls back to the name as given.
    fn resolves(&self, fqdn: &str) -> bool {
        let _ = fqdn;
        false
    }
    /// Local interface networks. OpenSSH 9.2 has no `Match localnetwork`
    /// (it arrived in 9.4), so the engine does not consult this yet; it is
    /// here so callers implement it once.
    fn local_networks(&self) -> Vec<(IpAddr, u8)> {
        Vec::new()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! A fake [`Environment`] for unit tests: files in a map, commands
    //! answered from a table and recorded.
    use super::*;
    use crate::pattern::match_pattern;
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    #[derive(Debug)]
    pub(crate) struct FakeEnv {
        pub(crate) files: BTreeMap<PathBuf, Vec<u8>>,
        pub(crate) vars: BTreeMap<String, String>,
        pub(crate) exec_ok: Vec<String>,
        pub(crate) executed: RefCell<Vec<String>>,
        pub(crate) resolvable: Vec<String>,
    }

    impl Default for FakeEnv {
        fn default() -> Self {
            Self {
                files: BTreeMap::new(),
                vars: BTreeMap::new(),
                exec_ok: Vec::new(),
                executed: RefCell::new(Vec::new()),
                resolvable: Vec::new(),
            }
        }
    }

    impl FakeEnv {
        pub(crate) fn file(self, path: &str, contents: &str) -> Self {
            self.file_bytes(path, contents.as_bytes())
        }

        pub(crate) fn file_bytes(mut self, path: &str, contents: &[u8]) -> Self {
            self.files.insert(PathBuf::from(path), contents.to_vec());
            self
        }

        pub(crate) fn var(mut self, name: &str, value: &str) -> Self {
            self.vars.insert(name.to_owned(), value.to_owned());
            self
        }

        pub(crate) fn resolvable(mut self, fqdn: &str) -> Self {
            self.resolvable.push(fqdn.to_owned());
            self
        }

        pub(crate) fn exec_succeeds(mut self, command: &str) -> Self {
            self.exec_ok.push(command.to_owned());
            self
        }
    }

    fn glob_match(path: &Path, pattern: &str) -> bool {
        let path = path.to_string_lossy();
        let (p, q): (Vec<&str>, Vec<&str>) =
            (path.split('/').collect(), pattern.split('/').collect());
        p.len() == q.len() && p.iter().zip(&q).all(|(a, b)| match_pattern(a, b))
    }

    impl Environment for FakeEnv {
        fn read_file(&self, path: &Path) -> std::io::Result<Vec<u8>> {
            self.files
                .get(path)
                .cloned()
                .ok_or_else(|| std::io::ErrorKind::NotFound.into())
        }
        fn glob(&self, pattern: &str) -> Vec<PathBuf> {
            self.files
                .keys()
                .filter(|p| glob_match(p, pattern))
                .cloned()
                .collect()
        }
        fn file_exists(&self, path: &Path) -> bool {
            self.files.contains_key(path)
        }
        fn resolves(&self, fqdn: &str) -> bool {
            self.resolvable.iter().any(|r| r == fqdn)
        }
        fn config_permissions_ok(&self, path: &Path) -> bool {
            !path.to_string_lossy().contains("world-writable")
        }
        fn exec(&self, command: &str) -> bool {
            self.executed.borrow_mut().push(command.to_owned());
            self.exec_ok.iter().any(|c| c == command)
        }
        fn env_var(&self, name: &str) -> Option<String> {
            self.vars.get(name).cloned()
        }
        fn home_dir(&self) -> PathBuf {
            PathBuf::from("/home/me")
        }
        fn user_home(&self, user: &str) -> Option<PathBuf> {
            (user == "other").then(|| PathBuf::from("/home/other"))
        }
        fn local_user(&self) -> String {
            "me".to_owned()
        }
        fn uid(&self) -> u32 {
            1000
        }
        fn local_hostname(&self) -> String {
            "myhost.example.org".to_owned()
        }
    }
}

#[cfg(test)]
pub(crate) mod harness {
    //! Resolve a config given as a string literal, then read `-G` values.
    use super::tests::FakeEnv;
    use crate::{Algorithms, CommandLine, ConfigError, ConfigFile, Flag, HostConfig, resolve};

    /// Resolve `host` with `config` as the `-F` file (`/cfg`) in `env`.
    pub(crate) fn run_in(
        env: FakeEnv,
        config: &str,
        host: &str,
        flags: &[Flag],
    ) -> Result<HostConfig, ConfigError> {
        let env = env.file("/cfg", config);
        let mut cli = CommandLine::new(host);
        cli.flags = flags.to_vec();
        cli.config_file(ConfigFile::Path("/cfg".into()));
        resolve(&cli, &env, &Algorithms::openssh())
    }

    pub(crate) fn run(config: &str, host: &str, flags: &[Flag]) -> Result<HostConfig, ConfigError> {
        run_in(FakeEnv::default(), config, host, flags)
    }

    /// The values `ssh -G` prints for `key`, one per line.
    pub(crate) fn get(config: &HostConfig, key: &str) -> Vec<String> {
        config
            .dump()
            .lines()
            .filter_map(|l| {
                l.strip_prefix(key)
                    .and_then(|v| v.strip_prefix(' '))
                    .map(str::to_owned)
            })
            .collect()
    }

    /// The single value of `key` for `config` text, or the error text.
    pub(crate) fn value(config: &str, key: &str) -> Result<String, String> {
        let resolved = run(config, "h", &[]).map_err(|e| e.to_string())?;
        Ok(get(&resolved, key).join("|"))
    }
}
