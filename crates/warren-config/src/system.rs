//! [`SystemEnvironment`]: the real [`Environment`], with std only.
//!
//! Design choice: the passwd database is read from `/etc/passwd` (with
//! `$HOME`/`$USER` as fallbacks) rather than through libc, because the
//! workspace forbids `unsafe`; glob is a small component-by-component
//! matcher using the same wildcard rules as ssh_config patterns.

use std::io;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::env::Environment;
use crate::pattern::match_pattern;

/// A config file is read whole (then line by line); the largest generated
/// configs are a few MiB, so a bigger file is refused rather than read.
const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// The machine warren runs on.
#[derive(Debug, Clone, Default)]
pub struct SystemEnvironment {
    _private: (),
}

/// One `/etc/passwd` entry: (name, uid, home).
type PasswdEntry = (String, u32, String);

/// Line by line, as bytes: a GECOS field in Latin-1 costs nothing, and a
/// line whose name or home is not UTF-8 costs only that line.
fn passwd_entries() -> Vec<PasswdEntry> {
    let Ok(bytes) = std::fs::read("/etc/passwd") else {
        return Vec::new();
    };
    bytes
        .split(|&b| b == b'\n')
        .filter_map(passwd_entry)
        .collect()
}

fn passwd_entry(line: &[u8]) -> Option<PasswdEntry> {
    let fields: Vec<&[u8]> = line.split(|&b| b == b':').collect();
    let text = |i: usize| std::str::from_utf8(fields.get(i)?).ok();
    let uid = text(2)?.parse().ok()?;
    Some((text(0)?.to_owned(), uid, text(5)?.to_owned()))
}

fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}

impl SystemEnvironment {
    /// The current process's environment.
    pub fn new() -> Self {
        Self::default()
    }

    fn own_entry(&self) -> Option<PasswdEntry> {
        let uid = self.uid();
        passwd_entries().into_iter().find(|(_, u, _)| *u == uid)
    }
}

fn has_wildcard(component: &str) -> bool {
    component.contains(['*', '?'])
}

/// Expand one wildcard component against the entries of `dir`.
fn expand_component(dir: &Path, pattern: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    }) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        // glob(3): a leading dot must be matched explicitly.
        .filter(|name| !name.starts_with('.') || pattern.starts_with('.'))
        .filter(|name| match_pattern(name, pattern))
        .map(|name| dir.join(name))
        .collect();
    out.sort();
    out
}

impl Environment for SystemEnvironment {
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        use std::io::Read as _;
        let mut bytes = Vec::new();
        std::fs::File::open(path)?
            .take(MAX_CONFIG_BYTES + 1)
            .read_to_end(&mut bytes)?;
        if bytes.len() as u64 > MAX_CONFIG_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("larger than {MAX_CONFIG_BYTES} bytes, not an ssh_config"),
            ));
        }
        Ok(bytes)
    }

    fn glob(&self, pattern: &str) -> Vec<PathBuf> {
        let mut candidates = vec![PathBuf::from(if pattern.starts_with('/') {
            "/"
        } else {
            ""
        })];
        for component in pattern.split('/').filter(|c| !c.is_empty()) {
            candidates = candidates
                .iter()
                .flat_map(|dir| {
                    if has_wildcard(component) {
                        expand_component(dir, component)
                    } else {
                        vec![dir.join(component)]
                    }
                })
                .collect();
        }
        let mut found: Vec<PathBuf> = candidates
            .into_iter()
            .filter(|p| p.exists() || p.is_symlink())
            .collect();
        found.sort();
        found
    }

    fn file_exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn config_permissions_ok(&self, path: &Path) -> bool {
        std::fs::metadata(path)
            .is_ok_and(|m| (m.uid() == 0 || m.uid() == self.uid()) && m.mode() & 0o022 == 0)
    }

    fn exec(&self, command: &str) -> bool {
        let shell = std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".to_owned());
        Command::new(shell)
            .arg("-c")
            .arg(command)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn env_var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn home_dir(&self) -> PathBuf {
        self.own_entry()
            .map(|(_, _, home)| PathBuf::from(home))
            .or_else(|| std::env::var_os("HOME").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("/"))
    }

    fn user_home(&self, user: &str) -> Option<PathBuf> {
        passwd_entries()
            .into_iter()
            .find(|(name, _, _)| name == user)
            .map(|(_, _, home)| PathBuf::from(home))
    }

    fn local_user(&self) -> String {
        self.own_entry()
            .map(|(name, _, _)| name)
            .or_else(|| std::env::var("USER").ok())
            .or_else(|| command_output("id", &["-un"]))
            .unwrap_or_else(|| self.uid().to_string())
    }

    fn uid(&self) -> u32 {
        std::fs::metadata("/proc/self")
            .map(|m| m.uid())
            .ok()
            .or_else(|| command_output("id", &["-u"]).and_then(|s| s.parse().ok()))
            .unwrap_or(u32::MAX)
    }

    fn local_hostname(&self) -> String {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .or_else(|| command_output("uname", &["-n"]))
            .unwrap_or_default()
    }

    fn resolves(&self, fqdn: &str) -> bool {
        use std::net::ToSocketAddrs;
        (fqdn, 22)
            .to_socket_addrs()
            .is_ok_and(|mut addrs| addrs.next().is_some())
    }

    fn local_networks(&self) -> Vec<(IpAddr, u8)> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_who_and_where_it_is() {
        let env = SystemEnvironment::new();
        assert!(!env.local_user().is_empty());
        assert!(env.home_dir().is_absolute());
        assert!(!env.local_hostname().is_empty());
        assert!(env.exec("true"));
        assert!(!env.exec("false"));
    }

    #[test]
    fn globs_sorted_and_skips_dotfiles() {
        let dir = std::env::temp_dir().join(format!("warren-config-glob-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok();
        for name in ["b.conf", "a.conf", ".hidden.conf", "c.txt"] {
            std::fs::write(dir.join(name), "").ok();
        }
        let found = SystemEnvironment::new().glob(&format!("{}/*.conf", dir.display()));
        let names: Vec<_> = found
            .iter()
            .filter_map(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.conf", "b.conf"]);
        assert!(
            SystemEnvironment::new()
                .glob(&format!("{}/nothing", dir.display()))
                .is_empty()
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
