//! `warren tunnel install`: a systemd user unit that runs the tunnel in
//! the foreground under systemd, restarted on failure, started at login
//! (and at boot with `loginctl enable-linger`).
//!
//! A permanent failure (host key mismatch, refused login) exits 255, which
//! the unit lists in RestartPreventExitStatus: restarting cannot fix it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The unit file's name for tunnel `name`.
pub fn file_name(name: &str) -> String {
    format!("warren-tunnel-{name}.service")
}

/// Where user units live: `$XDG_CONFIG_HOME/systemd/user`, else
/// `~/.config/systemd/user`.
pub fn user_unit_dir() -> anyhow::Result<PathBuf> {
    if let Some(config) = std::env::var_os("XDG_CONFIG_HOME").filter(|c| !c.is_empty()) {
        return Ok(PathBuf::from(config).join("systemd/user"));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .ok_or_else(|| anyhow::anyhow!("HOME is not set; cannot find ~/.config/systemd/user"))?;
    Ok(PathBuf::from(home).join(".config/systemd/user"))
}

/// The unit running `program tunnel up --name NAME ARGS...`.
pub fn render(program: &Path, name: &str, args: &[String]) -> String {
    let mut exec = vec![
        program.to_string_lossy().into_owned(),
        "tunnel".into(),
        "up".into(),
        "--name".into(),
        name.to_owned(),
    ];
    exec.extend(args.iter().cloned());
    let command: Vec<String> = exec.iter().map(|w| quote(w)).collect();
    let mut unit = String::new();
    let _ = write!(
        unit,
        "[Unit]\n\
         Description=warren tunnel {name}\n\
         After=network-online.target\n\
         Wants=network-online.target\n\
         \n\
         [Service]\n\
         ExecStart={}\n\
         Restart=on-failure\n\
         RestartSec=5\n\
         RestartPreventExitStatus=255\n\
         \n\
         [Install]\n\
         WantedBy=default.target\n",
        command.join(" ")
    );
    unit
}

/// One word of ExecStart: quoted when it holds anything systemd would
/// split or expand; `%` and `$` are doubled so they stay literal.
fn quote(word: &str) -> String {
    let escaped = word.replace('%', "%%").replace('$', "$$");
    let plain = !escaped.is_empty()
        && escaped
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%$".contains(c));
    if plain {
        return escaped;
    }
    let mut out = String::from("\"");
    for c in escaped.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_words_are_quoted_for_systemd() {
        let cases = [
            ("prod", "prod"),
            ("5432:db:5432", "5432:db:5432"),
            ("a b", "\"a b\""),
            ("100%", "100%%"),
            ("$HOME", "$$HOME"),
            ("say \"hi\"", "\"say \\\"hi\\\"\""),
            ("", "\"\""),
            ("back\\slash", "\"back\\\\slash\""),
        ];
        for (word, want) in cases {
            assert_eq!(quote(word), want, "{word:?}");
        }
    }

    #[test]
    fn the_unit_runs_the_tunnel_in_the_foreground_and_restarts_it() {
        let args = [
            "-L".to_owned(),
            "5432:db:5432".to_owned(),
            "prod".to_owned(),
        ];
        let unit = render(Path::new("/usr/bin/warren"), "db", &args);
        assert!(
            unit.contains("ExecStart=/usr/bin/warren tunnel up --name db -L 5432:db:5432 prod\n")
        );
        assert!(unit.contains("Restart=on-failure\n"));
        assert!(unit.contains("RestartPreventExitStatus=255\n"));
        assert!(unit.contains("WantedBy=default.target\n"));
        assert_eq!(file_name("db"), "warren-tunnel-db.service");
    }
}
