//! `warren keygen`: ssh-keygen's flags and files. Key generation (`-t`,
//! `-b`, `-C`, `-f`, `-N`, `-a`), `-y`, `-l [-E] [-v]`, `-p`, and the
//! known_hosts verbs `-R`, `-F`, `-H`. The key logic lives in
//! `warren_core::keys`; this file is flags, prompts and ssh-keygen's words.
//!
//! Files are rewritten through a temp file renamed into place; known_hosts
//! edits keep the original as `FILE.old`, as ssh-keygen does. An existing
//! key is overwritten only after a "y" on the terminal.

use std::io::{BufReader, BufWriter, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Parser;
use warren_core::keys::{self, FingerprintHash, KeyType};
use warren_core::prompt::{Prompter, TtyPrompter};
use warren_core::secret::Secret;
use warren_knownhosts::{Edited, Marker};
use warren_wire::escape_str;

#[derive(Debug, Parser)]
#[command(
    name = "warren keygen",
    disable_version_flag = true,
    about = "Key generation and maintenance, as ssh-keygen"
)]
pub struct KeygenArgs {
    /// Key type to generate: ed25519 (default), ecdsa, rsa.
    #[arg(short = 't', value_name = "TYPE")]
    key_type: Option<String>,
    /// Key size in bits (rsa: 3072 default; ecdsa: 256, 384 or 521).
    #[arg(short = 'b', value_name = "BITS")]
    bits: Option<u32>,
    /// Comment (default user@hostname).
    #[arg(short = 'C', value_name = "COMMENT")]
    comment: Option<String>,
    /// The key file (or known_hosts file for -R/-F/-H).
    #[arg(short = 'f', value_name = "FILE")]
    file: Option<PathBuf>,
    /// New passphrase ("" for none).
    #[arg(short = 'N', value_name = "NEW_PASSPHRASE")]
    new_passphrase: Option<String>,
    /// Old passphrase (for -p, -y, -l on encrypted keys).
    #[arg(short = 'P', value_name = "PASSPHRASE")]
    old_passphrase: Option<String>,
    /// bcrypt-pbkdf rounds for the passphrase (default 16).
    #[arg(short = 'a', value_name = "ROUNDS")]
    rounds: Option<u32>,
    /// Print the public key of a private key file.
    #[arg(short = 'y')]
    public_from_private: bool,
    /// Show the fingerprint of a key file.
    #[arg(short = 'l')]
    fingerprint: bool,
    /// Fingerprint hash: sha256 (default) or md5.
    #[arg(short = 'E', value_name = "HASH")]
    hash: Option<String>,
    /// With -l: draw the randomart picture.
    #[arg(short = 'v', action = clap::ArgAction::Count)]
    verbose: u8,
    /// Change the passphrase of a private key file.
    #[arg(short = 'p')]
    change_passphrase: bool,
    /// Remove all keys of HOST from the known_hosts file.
    #[arg(short = 'R', value_name = "HOST")]
    remove: Option<String>,
    /// Find HOST in the known_hosts file.
    #[arg(short = 'F', value_name = "HOST")]
    find: Option<String>,
    /// Hash the names in the known_hosts file.
    #[arg(short = 'H')]
    hash_hosts: bool,
    /// Quiet.
    #[arg(short = 'q')]
    quiet: bool,
}

pub fn main(args: &[String]) -> u8 {
    super::run_tool::<KeygenArgs>("warren keygen", args, run)
}

fn run(a: &KeygenArgs) -> anyhow::Result<u8> {
    let hosts = a.remove.is_some() || a.find.is_some() || a.hash_hosts;
    let verbs = [
        a.public_from_private,
        a.fingerprint,
        a.change_passphrase,
        hosts,
    ];
    if verbs.iter().filter(|v| **v).count() > 1 {
        bail!("give one of -y, -l, -p, -R, -F, -H at a time");
    }
    if hosts {
        return known_hosts(a);
    }
    if a.public_from_private {
        return public_from_private(a);
    }
    if a.fingerprint {
        return show_fingerprint(a);
    }
    if a.change_passphrase {
        return change_passphrase(a);
    }
    generate(a)
}

fn known_hosts(a: &KeygenArgs) -> anyhow::Result<u8> {
    let file = match &a.file {
        Some(f) => f.clone(),
        None => home()?.join(".ssh/known_hosts"),
    };
    match (&a.remove, &a.find, a.hash_hosts) {
        (Some(host), None, false) => remove(&file, host, a.quiet),
        (None, Some(host), false) => find(&file, host),
        (None, None, true) => hash(&file, a.quiet),
        _ => bail!("give exactly one of -R HOST, -F HOST or -H"),
    }
}

/// Whether a terminal is there to ask on (stdin is not used for answers).
fn have_tty() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .is_ok()
}

fn key_path(a: &KeygenArgs, kind: KeyType) -> anyhow::Result<PathBuf> {
    if let Some(f) = &a.file {
        return Ok(f.clone());
    }
    let default = home()?.join(".ssh").join(kind.default_file_name());
    if a.quiet || !have_tty() {
        return Ok(default);
    }
    let answer = TtyPrompter
        .ask(&format!(
            "Enter file in which to save the key ({}): ",
            default.display()
        ))
        .unwrap_or_default();
    Ok(if answer.trim().is_empty() {
        default
    } else {
        PathBuf::from(answer.trim())
    })
}

/// The existing file may be replaced only after a "y" on the terminal.
fn confirm_overwrite(path: &Path) -> anyhow::Result<()> {
    if !path.exists() {
        return Ok(());
    }
    if !have_tty() {
        bail!(
            "{} already exists; not overwriting it without a terminal to ask on (remove it first, or choose another file with -f)",
            path.display()
        );
    }
    let answer = TtyPrompter
        .ask(&format!(
            "{} already exists.\nOverwrite (y/n)? ",
            path.display()
        ))
        .unwrap_or_default();
    if !answer.trim().to_ascii_lowercase().starts_with('y') {
        bail!("{} not overwritten", path.display());
    }
    Ok(())
}

/// The new passphrase: -N, else asked twice on the terminal.
fn new_passphrase(a: &KeygenArgs) -> anyhow::Result<Secret> {
    if let Some(p) = &a.new_passphrase {
        return Ok(Secret::new(p.clone()));
    }
    let prompter = TtyPrompter;
    let first = prompter
        .secret("Enter passphrase (empty for no passphrase): ")
        .context("no terminal to ask for a passphrase on; give one with -N (-N '' for none)")?;
    let again = prompter
        .secret("Enter same passphrase again: ")
        .context("no terminal to ask for a passphrase on; give one with -N")?;
    if first.expose() != again.expose() {
        bail!("Passphrases do not match.  Try again.");
    }
    Ok(first)
}

fn generate(a: &KeygenArgs) -> anyhow::Result<u8> {
    let kind = KeyType::parse(a.key_type.as_deref().unwrap_or("ed25519"))?;
    let path = key_path(a, kind)?;
    confirm_overwrite(&path)?;
    if !a.quiet {
        println!("Generating public/private {} key pair.", kind.name());
    }
    let comment = a.comment.clone().unwrap_or_else(keys::default_comment);
    let key = keys::generate(kind, a.bits, &comment)?;
    let passphrase = new_passphrase(a)?;
    let stored = keys::encrypt(&key, passphrase.expose(), a.rounds.unwrap_or(16))?;
    let public = keys::write_key_pair(&path, &stored, key.public_key())?;
    if !a.quiet {
        let data = key.public_key().key_data();
        println!("Your identification has been saved in {}", path.display());
        println!("Your public key has been saved in {}", public.display());
        println!("The key fingerprint is:");
        println!(
            "{} {comment}",
            keys::fingerprint(data, FingerprintHash::Sha256)
        );
        println!("The key's randomart image is:");
        println!("{}", keys::randomart(data, FingerprintHash::Sha256));
    }
    Ok(0)
}

fn identity_file(a: &KeygenArgs) -> anyhow::Result<PathBuf> {
    match &a.file {
        Some(f) => Ok(f.clone()),
        None => Ok(home()?.join(".ssh/id_ed25519")),
    }
}

/// Reads and, when encrypted, decrypts a private key: -P, else asked.
fn unlocked_key(
    a: &KeygenArgs,
    path: &Path,
    prompt: &str,
) -> anyhow::Result<russh::keys::PrivateKey> {
    let key = keys::read_private(path)?;
    if !key.is_encrypted() {
        return Ok(key);
    }
    let shown = path.display().to_string();
    let pass = match &a.old_passphrase {
        Some(p) => Secret::new(p.clone()),
        None => TtyPrompter.secret(prompt).context(
            "the key is encrypted and there is no terminal to ask on; give the passphrase with -P",
        )?,
    };
    Ok(keys::decrypt(&key, &shown, pass.expose())?)
}

fn public_from_private(a: &KeygenArgs) -> anyhow::Result<u8> {
    let path = identity_file(a)?;
    let key = unlocked_key(a, &path, "Enter passphrase: ")?;
    println!("{}", keys::public_line(key.public_key())?);
    Ok(0)
}

fn show_fingerprint(a: &KeygenArgs) -> anyhow::Result<u8> {
    let hash = match &a.hash {
        Some(h) => FingerprintHash::parse(h)
            .with_context(|| format!("invalid hash algorithm {h:?}; use sha256 or md5"))?,
        None => FingerprintHash::Sha256,
    };
    let path = identity_file(a)?;
    let text = keys::read_key_text(&path).with_context(|| format!("{}", path.display()))?;
    let found: Vec<russh::keys::PublicKey> = if text.contains("PRIVATE KEY") {
        // As ssh-keygen: the key comes from KEY.pub when there is one, and
        // a key without a comment is named by the file it came from.
        let mut k = keys::read_public_for(&path)?;
        if k.comment().is_empty() {
            let pub_file = PathBuf::from(format!("{}.pub", path.display()));
            let from = if pub_file.exists() {
                pub_file
            } else {
                path.clone()
            };
            k.set_comment(from.display().to_string());
        }
        vec![k]
    } else {
        keys::public_lines(&text)
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    };
    if found.is_empty() {
        bail!("{} is not a public key file.", path.display());
    }
    for k in found {
        let data = k.key_data();
        // The comment is the file's text: escaped, so a comment cannot
        // forge lines or act on the terminal.
        let comment = escape_str(k.comment().as_str_lossy());
        println!("{}", keys::fingerprint_line(data, &comment, hash));
        if a.verbose > 0 {
            println!("{}", keys::randomart(data, hash));
        }
    }
    Ok(0)
}

fn change_passphrase(a: &KeygenArgs) -> anyhow::Result<u8> {
    let path = identity_file(a)?;
    let key = unlocked_key(a, &path, "Enter old passphrase: ")?;
    if !a.quiet {
        println!("Key has comment '{}'", key.comment().as_str_lossy());
    }
    let pass = match &a.new_passphrase {
        Some(p) => Secret::new(p.clone()),
        None => {
            let prompter = TtyPrompter;
            let first = prompter
                .secret("Enter new passphrase (empty for no passphrase): ")
                .context("no terminal to ask for the new passphrase on; give it with -N")?;
            let again = prompter
                .secret("Enter same passphrase again: ")
                .context("no terminal to ask on; give the new passphrase with -N")?;
            if first.expose() != again.expose() {
                bail!("Pass phrases do not match.  Try again.");
            }
            first
        }
    };
    let stored = keys::encrypt(&key, pass.expose(), a.rounds.unwrap_or(16))?;
    keys::write_private(&path, &stored)?;
    if !a.quiet {
        println!("Your identification has been saved with the new passphrase.");
    }
    Ok(0)
}

fn home() -> anyhow::Result<PathBuf> {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .context("HOME is not set; pass the file with -f")
}

/// The known_hosts file, opened for reading line by line.
fn open(file: &Path) -> anyhow::Result<BufReader<std::fs::File>> {
    let f = std::fs::File::open(file).with_context(|| format!("{}", file.display()))?;
    Ok(BufReader::new(f))
}

fn find(file: &Path, host: &str) -> anyhow::Result<u8> {
    let found = warren_knownhosts::find_host(open(file)?, host)
        .with_context(|| format!("read {}", file.display()))?;
    let mut stdout = std::io::stdout().lock();
    for f in &found {
        let kind = match f.marker {
            Marker::CertAuthority => " (CA key)",
            Marker::Revoked => " (REVOKED)",
            Marker::None => "",
        };
        // The line goes out as it is in the file, as ssh-keygen prints it:
        // stdout is data.
        writeln!(stdout, "# Host {host} found: line {}{kind}", f.line)?;
        stdout.write_all(&f.text)?;
        stdout.write_all(b"\n")?;
    }
    Ok(if found.is_empty() { 1 } else { 0 })
}

pub(crate) fn remove(file: &Path, host: &str, quiet: bool) -> anyhow::Result<u8> {
    let input = open(file)?;
    let edited = rewrite(file, |out| warren_knownhosts::remove_host(input, out, host))?;
    if edited.changed.is_empty() {
        if !quiet {
            eprintln!("Host {host} not found in {}", file.display());
        }
        return Ok(0);
    }
    for line in &edited.changed {
        println!("# Host {host} found: line {line}");
    }
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
    let input = open(file)?;
    let edited = rewrite(file, |out| {
        warren_knownhosts::hash_all(input, out, rand::random::<[u8; 20]>)
    })?;
    if edited.changed.is_empty() {
        return Ok(0);
    }
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

/// Streams the edit into a temp file beside `file` (so memory does not
/// grow with the file); if it changed lines and found no invalid one,
/// keeps the original as FILE.old and renames the new file into place, so
/// a crash never leaves a half-written known_hosts. Otherwise the temp
/// file is removed and `file` is left as it was.
fn rewrite(
    file: &Path,
    edit: impl FnOnce(&mut BufWriter<std::fs::File>) -> std::io::Result<Edited>,
) -> anyhow::Result<Edited> {
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
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("create {}", tmp.display()))?;
    let mut out = BufWriter::new(f);
    let edited = edit(&mut out)
        .and_then(|edited| {
            let f = out.into_inner().map_err(|e| e.into_error())?;
            f.sync_all()?;
            Ok(edited)
        })
        .with_context(|| format!("rewrite {} into {}", file.display(), tmp.display()));
    let keep = match &edited {
        Ok(e) => e.invalid.is_empty() && !e.changed.is_empty(),
        Err(_) => false,
    };
    if !keep {
        // Best effort: the edit is abandoned either way.
        let _ = std::fs::remove_file(&tmp);
        let edited = edited?;
        refuse_invalid(file, &edited)?;
        return Ok(edited);
    }
    let mut old = file.as_os_str().to_owned();
    old.push(".old");
    std::fs::copy(file, &old).with_context(|| format!("back up {}", file.display()))?;
    std::fs::rename(&tmp, file).with_context(|| format!("replace {}", file.display()))?;
    edited
}
