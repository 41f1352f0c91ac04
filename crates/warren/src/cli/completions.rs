//! `warren completions SHELL`: a completion script generated from the
//! subcommands' clap definitions (clap_complete), and destinations
//! completed when the user presses tab, as ssh's bash completion does:
//! the script asks `warren __complete-hosts`, which lists the Host
//! aliases of ~/.ssh/config (following its Includes; no patterns) and
//! the unhashed names of ~/.ssh/known_hosts.
//!
//! Design choice: the files are the user's own but may hold anything;
//! each is read up to [`MAX_FILE`] bytes, Includes at most [`MAX_DEPTH`]
//! deep, and only names made of printable ASCII are printed (a name is
//! typed back into the shell).

use std::collections::BTreeSet;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use clap::Parser;
use clap_complete::Shell;
use warren_config::{Environment as _, SystemEnvironment};

/// The hidden subcommand the scripts call.
pub const HOSTS_SUBCOMMAND: &str = "__complete-hosts";

/// Most bytes read from one configuration or known_hosts file.
const MAX_FILE: u64 = 4 << 20;

/// How deep Includes are followed (ssh's own limit is 16).
const MAX_DEPTH: usize = 16;

/// `warren completions SHELL`
#[derive(Debug, Parser)]
#[command(
    name = "warren completions",
    disable_version_flag = true,
    about = "Print a completion script for a shell: bash, zsh, fish, elvish or powershell",
    after_help = "bash: warren completions bash > ~/.local/share/bash-completion/completions/warren\n\
                  zsh: warren completions zsh > ~/.zfunc/_warren (with fpath+=~/.zfunc before compinit)\n\
                  fish: warren completions fish > ~/.config/fish/completions/warren.fish"
)]
pub struct CompletionsArgs {
    /// The shell to complete in.
    #[arg(value_enum)]
    shell: Shell,
}

// `warren __complete-hosts`: for the scripts, not listed anywhere.
#[derive(Debug, Parser)]
#[command(
    name = "warren __complete-hosts",
    hide = true,
    disable_version_flag = true
)]
pub struct HostsArgs {}

pub fn main(args: &[String]) -> u8 {
    super::run_tool::<CompletionsArgs>("warren completions", args, |a| {
        print!("{}", script(a.shell));
        Ok(0)
    })
}

pub fn hosts_main(args: &[String]) -> u8 {
    super::run_tool::<HostsArgs>("warren __complete-hosts", args, |_| {
        let env = SystemEnvironment::new();
        // The shell's `~`, as ssh's bash completion reads it.
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map_or_else(|| env.home_dir(), PathBuf::from);
        for name in hosts(&env, &home) {
            println!("{name}");
        }
        Ok(0)
    })
}

/// The completion script for `shell`.
pub fn script(shell: Shell) -> String {
    let mut cmd = super::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "warren", &mut out);
    let generated = String::from_utf8_lossy(&out).into_owned();
    let lister = format!("warren {HOSTS_SUBCOMMAND} 2>/dev/null");
    match shell {
        // clap_complete's bash has no host hint: wrap its function.
        Shell::Bash => format!("{generated}\n{}", BASH_HOSTS.replace("@LISTER@", &lister)),
        Shell::Zsh => zsh(&generated, &ZSH_HOSTS.replace("@LISTER@", &lister)),
        // clap_complete's fish completes no positional argument.
        Shell::Fish => format!("{generated}\n{}", FISH_HOSTS.replace("@LISTER@", &lister)),
        _ => generated,
    }
}

/// clap_complete's zsh script with its host completer ours, defined
/// before the script's last lines call `_warren` (a file autoloaded from
/// fpath runs them at the first completion).
fn zsh(generated: &str, hosts: &str) -> String {
    let generated = generated.replace(":_hosts", ":_warren_hosts");
    let tail = "if [ \"$funcstack[1]\" = \"_warren\" ]; then";
    match generated.rfind(tail) {
        Some(at) => format!("{}{hosts}\n{}", &generated[..at], &generated[at..]),
        None => format!("{generated}{hosts}"),
    }
}

/// Destinations for ssh, copy-id, doctor, tunnel up/install, after
/// clap's own completions, for a word that is not an option; `user@` is
/// kept in front.
const BASH_HOSTS: &str = r#"_warren_with_hosts() {
    _warren "$@"
    local cur="${COMP_WORDS[COMP_CWORD]}"
    case "${COMP_WORDS[1]} ${COMP_WORDS[2]}" in
        "ssh "*|"copy-id "*|"doctor "*|"tunnel up"|"tunnel install") ;;
        *) return 0 ;;
    esac
    [[ $cur == -* ]] && return 0
    local user=""
    if [[ $cur == *@* ]]; then
        user="${cur%@*}@"
        cur="${cur##*@}"
    fi
    local host
    while IFS= read -r host; do
        [[ $host == "$cur"* ]] && COMPREPLY+=("$user$host")
    done < <(@LISTER@)
    return 0
}
complete -F _warren_with_hosts -o bashdefault -o default warren
"#;

const FISH_HOSTS: &str = r#"complete -c warren -n "__fish_warren_using_subcommand ssh copy-id doctor" -a "(@LISTER@)"
complete -c warren -n "__fish_warren_using_subcommand tunnel; and __fish_seen_subcommand_from up install" -a "(@LISTER@)"
"#;

const ZSH_HOSTS: &str = r#"
(( $+functions[_warren_hosts] )) ||
_warren_hosts() {
    local -a hosts
    hosts=(${(f)"$(@LISTER@)"})
    _wanted hosts expl host compadd -a hosts
}
"#;

/// Host aliases of `home`'s ~/.ssh/config (and its Includes), then the
/// names in its known_hosts, each once, sorted.
pub fn hosts(env: &SystemEnvironment, home: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let ssh_dir = home.join(".ssh");
    config_hosts(env, home, &ssh_dir.join("config"), 0, &mut out);
    for file in ["known_hosts", "known_hosts2"] {
        if let Some(text) = read_bounded(&ssh_dir.join(file)) {
            known_hosts_names(&text, &mut out);
        }
    }
    out
}

fn read_bounded(path: &Path) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(MAX_FILE)
        .read_to_end(&mut buf)
        .ok()?;
    Some(buf)
}

fn config_hosts(
    env: &SystemEnvironment,
    home: &Path,
    file: &Path,
    depth: usize,
    out: &mut BTreeSet<String>,
) {
    let Some(text) = read_bounded(file) else {
        return;
    };
    for line in text.split(|b| *b == b'\n') {
        let Some((keyword, args)) = keyword_line(line) else {
            continue;
        };
        if keyword.eq_ignore_ascii_case("host") {
            out.extend(args.into_iter().filter(|a| is_plain_name(a)));
        } else if keyword.eq_ignore_ascii_case("include") && depth < MAX_DEPTH {
            for pattern in args {
                for path in include_paths(env, home, &pattern) {
                    config_hosts(env, home, &path, depth + 1, out);
                }
            }
        }
    }
}

/// A config line's keyword and its words (`Key value ...` or
/// `Key=value`); quotes are dropped.
fn keyword_line(line: &[u8]) -> Option<(String, Vec<String>)> {
    let line = std::str::from_utf8(line).ok()?.trim();
    if line.starts_with('#') || line.is_empty() {
        return None;
    }
    let (keyword, rest) = line
        .split_once(|c: char| c == '=' || c.is_whitespace())
        .unwrap_or((line, ""));
    let rest = rest.trim_start_matches(|c: char| c == '=' || c.is_whitespace());
    let words = rest
        .split_whitespace()
        .map(|w| w.trim_matches('"').to_owned())
        .collect();
    Some((keyword.to_owned(), words))
}

/// Include's paths, as ssh reads them: `~` is the home, a relative path
/// is under ~/.ssh, and glob patterns are expanded.
fn include_paths(env: &SystemEnvironment, home: &Path, pattern: &str) -> Vec<PathBuf> {
    let path = match pattern.strip_prefix("~/") {
        Some(rest) => home.join(rest),
        None if pattern.starts_with('/') => PathBuf::from(pattern),
        None => home.join(".ssh").join(pattern),
    };
    env.glob(&path.to_string_lossy())
}

/// A name worth completing: printable ASCII, no pattern characters.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"*?!,[]|\\'\"`$".contains(&b))
}

/// The names of known_hosts lines: hashed ones (`|1|`) and patterns are
/// skipped, `[host]:port` gives `host`.
fn known_hosts_names(text: &[u8], out: &mut BTreeSet<String>) {
    for line in text.split(|b| *b == b'\n') {
        let Ok(line) = std::str::from_utf8(line) else {
            continue;
        };
        let mut fields = line.split_whitespace();
        let Some(names) = fields.next() else {
            continue;
        };
        // @cert-authority and @revoked lines name no host to go to.
        if names.starts_with(['#', '|', '@']) {
            continue;
        }
        for name in names.split(',') {
            let name = match name.strip_prefix('[') {
                Some(rest) => rest.split_once("]:").map_or(rest, |(h, _)| h),
                None => name,
            };
            if is_plain_name(name) {
                out.insert(name.to_owned());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// There was no completion at all; each shell checks its script's
    /// syntax, and a missing shell fails the test with its name.
    #[test]
    fn scripts_parse_in_their_shells() {
        let dir = tempfile::tempdir().unwrap();
        for (shell, program, file) in [
            (Shell::Bash, "bash", "warren.bash"),
            (Shell::Zsh, "zsh", "_warren"),
            (Shell::Fish, "fish", "warren.fish"),
        ] {
            let text = script(shell);
            assert!(text.contains(HOSTS_SUBCOMMAND), "{program}: no host lister");
            assert!(text.contains("tunnel") && text.contains("completions"));
            let path = dir.path().join(file);
            std::fs::write(&path, &text).unwrap();
            let out = Command::new(program)
                .arg("-n")
                .arg(&path)
                .output()
                .unwrap_or_else(|e| panic!("{program} is needed (scripts/test installs it): {e}"));
            assert!(
                out.status.success() && out.stderr.is_empty(),
                "{program} -n: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        for shell in [Shell::Elvish, Shell::PowerShell] {
            assert!(script(shell).contains("copy-id"), "{shell}");
        }
    }

    /// ssh's `Host` aliases through Includes (relative, `~/`, globbed),
    /// patterns left out; known_hosts names, hashed and marked lines left
    /// out, `[host]:port` as host, a name with control characters dropped.
    #[test]
    fn hosts_from_config_includes_and_known_hosts() {
        let home = tempfile::tempdir().unwrap();
        let ssh = home.path().join(".ssh");
        std::fs::create_dir_all(ssh.join("conf.d")).unwrap();
        std::fs::write(
            ssh.join("config"),
            "Host prod prod-*  !bad\n  User x\nInclude conf.d/*.conf\nHost=db \"web\"\nMatch host x\ninclude ~/.ssh/extra\n",
        )
        .unwrap();
        std::fs::write(ssh.join("conf.d/a.conf"), "Host alpha\n# Host commented\n").unwrap();
        std::fs::write(
            ssh.join("conf.d/b.conf"),
            "HOST beta gamma?\nInclude a.conf\n",
        )
        .unwrap();
        std::fs::write(ssh.join("extra"), "Host extra\nInclude extra\n").unwrap();
        std::fs::write(
            ssh.join("known_hosts"),
            "known.example,10.0.0.1 ssh-ed25519 AAAA\n\
             [ported.example]:2222 ssh-ed25519 AAAA\n\
             |1|c2FsdA==|aGFzaA== ssh-ed25519 AAAA\n\
             @cert-authority *.example ssh-ed25519 AAAA\n\
             @revoked revoked.example ssh-ed25519 AAAA\n\
             # comment\n\
             evil\x1b[2J ssh-ed25519 AAAA\n",
        )
        .unwrap();
        let got: Vec<String> = hosts(&SystemEnvironment::new(), home.path())
            .into_iter()
            .collect();
        assert_eq!(
            got,
            [
                "10.0.0.1",
                "alpha",
                "beta",
                "db",
                "extra",
                "known.example",
                "ported.example",
                "prod",
                "web",
            ]
        );
    }
}
