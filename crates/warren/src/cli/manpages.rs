//! `warren manpages DIR`: warren.1 and one page per subcommand
//! (warren-ssh.1, warren-tunnel-up.1, ...), generated from the same clap
//! definitions as `--help` (clap_mangen), each with an EXAMPLES section
//! taken from the README's command lines for that subcommand.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Parser;
use clap_mangen::Man;

/// The README, whose code blocks hold the examples.
const README: &str = include_str!("../../../../README.md");

/// `warren manpages DIR`
#[derive(Debug, Parser)]
#[command(
    name = "warren manpages",
    disable_version_flag = true,
    about = "Write man pages: warren.1 and one per subcommand (warren-ssh.1, ...)",
    after_help = "Then: man -l DIR/warren-ssh.1, or copy them to ~/.local/share/man/man1/."
)]
pub struct ManpagesArgs {
    /// The directory to write them to (created if missing).
    dir: PathBuf,
}

pub fn main(args: &[String]) -> u8 {
    super::run_tool::<ManpagesArgs>("warren manpages", args, |a| {
        for path in write_all(&a.dir)? {
            println!("{}", path.display());
        }
        Ok(0)
    })
}

/// Writes every page into `dir`; returns their paths.
pub fn write_all(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut top = super::command().disable_help_subcommand(true);
    top.build();
    let mut pages = Vec::new();
    collect(&top, &mut pages);
    let mut written = Vec::new();
    for cmd in pages {
        let man = Man::new(cmd.clone());
        let path = dir.join(man.get_filename());
        let mut text = Vec::new();
        man.render(&mut text)?;
        text.extend_from_slice(examples(&cmd).as_bytes());
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

fn collect(cmd: &clap::Command, out: &mut Vec<clap::Command>) {
    out.push(cmd.clone());
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        collect(sub, out);
    }
}

/// The EXAMPLES section: the README's lines that run this command (all
/// of its subcommands' for warren.1 itself), with their comments.
fn examples(cmd: &clap::Command) -> String {
    let words = cmd
        .get_display_name()
        .unwrap_or(cmd.get_name())
        .replace('-', " ")
        .replace("copy id", "copy-id");
    let lines = readme_commands().filter(|(line, _)| {
        line.strip_prefix(&words)
            .is_some_and(|rest| rest.starts_with(' '))
    });
    let mut out = String::new();
    // warren.1 would hold every line: a few from each subcommand instead.
    let mut seen_per_sub = std::collections::HashMap::new();
    for (line, comment) in lines {
        if words == "warren" {
            let sub = line.split_whitespace().nth(1).unwrap_or("");
            if cmd.find_subcommand(sub).is_none() {
                continue;
            }
            let count = seen_per_sub.entry(sub.to_owned()).or_insert(0);
            *count += 1;
            if *count > 1 {
                continue;
            }
        }
        if out.is_empty() {
            out.push_str(".SH EXAMPLES\n");
        }
        let _ = writeln!(out, ".TP\n\\fB{}\\fR", roff_escape(line));
        if !comment.is_empty() {
            let _ = writeln!(out, "{}", roff_escape(comment));
        }
    }
    out
}

/// `warren ...` lines of the README's code blocks, and their trailing
/// `# comment`.
fn readme_commands() -> impl Iterator<Item = (&'static str, &'static str)> {
    let mut in_block = false;
    README.lines().filter_map(move |line| {
        if line.starts_with("```") {
            in_block = !in_block;
            return None;
        }
        if !in_block || !line.starts_with("warren ") {
            return None;
        }
        let (command, comment) = match line.split_once("  # ") {
            Some((c, m)) => (c.trim_end(), m.trim()),
            None => (line.trim_end(), ""),
        };
        Some((command, comment))
    })
}

/// Text safe in a roff line: backslashes and dashes escaped, and no
/// control character or leading dot or quote.
fn roff_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    if s.starts_with(['.', '\'']) {
        out.push_str("\\&");
    }
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\e"),
            '-' => out.push_str("\\-"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// There were no man pages; each renders with man's warnings on and
    /// says nothing on stderr.
    #[test]
    fn pages_render_without_warnings() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_all(dir.path()).unwrap();
        let names: Vec<String> = written
            .iter()
            .filter_map(|p| Some(p.file_name()?.to_string_lossy().into_owned()))
            .collect();
        for want in [
            "warren.1",
            "warren-ssh.1",
            "warren-tunnel-up.1",
            "warren-completions.1",
        ] {
            assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
        }
        assert!(
            !names.iter().any(|n| n.contains("complete-hosts")),
            "hidden subcommand has a page: {names:?}"
        );
        for path in &written {
            let out = Command::new("man")
                .args(["--warnings", "-l"])
                .arg(path)
                .env("MANWIDTH", "80")
                .env("MAN_KEEP_FORMATTING", "0")
                .output()
                .unwrap_or_else(|e| panic!("man is needed (scripts/test installs man-db): {e}"));
            assert!(
                out.status.success() && out.stderr.is_empty(),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let ssh = std::fs::read_to_string(dir.path().join("warren-ssh.1")).unwrap();
        assert!(
            ssh.contains(".SH EXAMPLES"),
            "README examples in warren-ssh.1"
        );
        assert!(ssh.contains("warren ssh \\-J bastion1,bastion2"), "{ssh}");
        assert!(
            ssh.contains("(LocalForward)"),
            "-L's long help in warren-ssh.1"
        );
    }
}
