//! `warren keygen`: ssh-keygen's known_hosts verbs for now (`-R`, `-F`,
//! `-H`, with `-f`), the ones warren's own messages tell users to run.
//! Key generation comes with the keys issue; its flags are refused clearly.
//!
//! Files are rewritten through a temp file renamed into place, with the
//! original kept as `FILE.old`, as ssh-keygen does.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Parser;
use warren_knownhosts::{Edited, Marker};

#[derive(Debug, Parser)]
#[command(
    name = "warren keygen",
    disable_version_flag = true,
    about = "known_hosts maintenance (ssh-keygen -R/-F/-H)"
)]
pub struct KeygenArgs {
    /// Remove all keys of HOST from the known_hosts file.
    #[arg(short = 'R', value_name = "HOST")]
    remove: Option<String>,
    /// Find HOST in the known_hosts file.
    #[arg(short = 'F', value_name = "HOST")]
    find: Option<String>,
    /// Hash the names in the known_hosts file.
    #[arg(short = 'H')]
    hash: bool,
    /// The known_hosts file (default ~/.ssh/known_hosts).
    #[arg(short = 'f', value_name = "FILE")]
    file: Option<PathBuf>,
    /// Quiet.
    #[arg(short = 'q')]
    quiet: bool,
    /// Key generation and the other ssh-keygen verbs: not in this version.
    #[arg(short = 't', value_name = "TYPE", hide = true)]
    key_type: Option<String>,
    #[arg(short = 'y', hide = true)]
    public_from_private: bool,
    #[arg(short = 'l', hide = true)]
    fingerprint: bool,
    #[arg(short = 'p', hide = true)]
    change_passphrase: bool,
}

pub fn main(args: &[String]) -> u8 {
    let parsed = match KeygenArgs::try_parse_from(
        std::iter::once("warren keygen".to_owned()).chain(args.iter().cloned()),
    ) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 1 } else { 0 };
        }
    };
    match run(&parsed) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("warren keygen: {e:#}");
            1
        }
    }
}

fn run(a: &KeygenArgs) -> anyhow::Result<u8> {
    if a.key_type.is_some() || a.public_from_private || a.fingerprint || a.change_passphrase {
        bail!(
            "key generation and -y/-l/-p are not supported yet in this version of warren; use ssh-keygen"
        );
    }
    let file = match &a.file {
        Some(f) => f.clone(),
        None => home()?.join(".ssh/known_hosts"),
    };
    match (&a.remove, &a.find, a.hash) {
        (Some(host), None, false) => remove(&file, host, a.quiet),
        (None, Some(host), false) => find(&file, host),
        (None, None, true) => hash(&file, a.quiet),
        _ => bail!("give exactly one of -R HOST, -F HOST or -H"),
    }
}

fn home() -> anyhow::Result<PathBuf> {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .context("HOME is not set; pass the file with -f")
}

fn read(file: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(file).with_context(|| format!("{}", file.display()))
}

fn find(file: &Path, host: &str) -> anyhow::Result<u8> {
    let found = warren_knownhosts::find_host(&read(file)?, host);
    for f in &found {
        let kind = match f.marker {
            Marker::CertAuthority => " (CA key)",
            Marker::Revoked => " (REVOKED)",
            Marker::None => "",
        };
        println!("# Host {host} found: line {}{kind}", f.line);
        println!("{}", f.text);
    }
    Ok(if found.is_empty() { 1 } else { 0 })
}

fn remove(file: &Path, host: &str, quiet: bool) -> anyhow::Result<u8> {
    let edited = warren_knownhosts::remove_host(&read(file)?, host);
    refuse_invalid(file, &edited)?;
    if edited.changed.is_empty() {
        if !quiet {
            eprintln!("Host {host} not found in {}", file.display());
        }
        return Ok(0);
    }
    for line in &edited.changed {
        println!("# Host {host} found: line {line}");
    }
    replace(file, &edited.text)?;
    if !quiet {
        println!(
            "{} updated.\nOriginal contents retained as {}.old",
            file.display(),
            file.display()
        );
    }
    Ok(0)
}

fn hash(file: &Path, quiet: bool) -> anyhow::Result<u8> {
    let edited = warren_knownhosts::hash_all(&read(file)?, rand::random::<[u8; 20]>);
    refuse_invalid(file, &edited)?;
    if edited.changed.is_empty() {
        return Ok(0);
    }
    replace(file, &edited.text)?;
    if !quiet {
        eprintln!(
            "{} updated.\nOriginal contents retained as {}.old",
            file.display(),
            file.display()
        );
        eprintln!(
            "WARNING: {}.old contains unhashed entries\nDelete this file to ensure privacy of hostnames",
            file.display()
        );
    }
    Ok(0)
}

fn refuse_invalid(file: &Path, edited: &Edited) -> anyhow::Result<()> {
    if let Some(line) = edited.invalid.first() {
        bail!(
            "{}:{line}: invalid line; not modifying the file (fix or remove the line first)",
            file.display()
        );
    }
    Ok(())
}

/// Keeps the original as FILE.old and renames the new text into place, so
/// a crash never leaves a half-written known_hosts.
fn replace(file: &Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp_name = file
        .file_name()
        .context("known_hosts path has no file name")?
        .to_owned();
    tmp_name.push(format!(".warren-{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("create {}", tmp.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("write {}", tmp.display()))?;
    let mut old = file.as_os_str().to_owned();
    old.push(".old");
    std::fs::copy(file, &old).with_context(|| format!("back up {}", file.display()))?;
    std::fs::rename(&tmp, file).with_context(|| format!("replace {}", file.display()))?;
    Ok(())
}
