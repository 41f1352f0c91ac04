//! `warren add`: ssh-add for any agent (OpenSSH's ssh-agent or `warren
//! agent`): add keys (the defaults when none are named, certificates
//! beside them too) with `-t` and `-c`, list with `-l`/`-L`, remove with
//! `-d`/`-D`, lock and unlock with `-x`/`-X`; ssh-add's words and exit codes.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Parser;
use warren_core::agent::{AgentClient, Constraints, Identity};
use warren_core::keys::{self, FingerprintHash};
use warren_core::prompt::{Prompter, TtyPrompter};

#[derive(Debug, Parser)]
#[command(
    name = "warren add",
    disable_version_flag = true,
    about = "Add keys to an agent, as ssh-add"
)]
pub struct AddArgs {
    /// List the fingerprints of all identities.
    #[arg(short = 'l')]
    list: bool,
    /// List the public keys of all identities.
    #[arg(short = 'L')]
    list_public: bool,
    /// Remove the named identities.
    #[arg(short = 'd')]
    delete: bool,
    /// Remove all identities.
    #[arg(short = 'D')]
    delete_all: bool,
    /// Lifetime of added keys (seconds, or 1h30m style).
    #[arg(short = 't', value_name = "LIFE")]
    lifetime: Option<String>,
    /// Each use of added keys must be confirmed.
    #[arg(short = 'c')]
    confirm: bool,
    /// Lock the agent with a password.
    #[arg(short = 'x')]
    lock: bool,
    /// Unlock the agent.
    #[arg(short = 'X')]
    unlock: bool,
    /// Fingerprint hash for -l: sha256 (default) or md5.
    #[arg(short = 'E', value_name = "HASH")]
    hash: Option<String>,
    /// Quiet.
    #[arg(short = 'q')]
    quiet: bool,
    /// Key files (default: ~/.ssh/id_rsa, id_ecdsa, id_ed25519, ...).
    files: Vec<PathBuf>,
}

pub fn main(args: &[String]) -> u8 {
    let parsed = match AddArgs::try_parse_from(
        std::iter::once("warren add".to_owned()).chain(args.iter().cloned()),
    ) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 1 } else { 0 };
        }
    };
    let Some(sock) = std::env::var_os("SSH_AUTH_SOCK").filter(|s| !s.is_empty()) else {
        eprintln!("Could not open a connection to your authentication agent.");
        return 2;
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("warren add: start the async runtime: {e}");
            return 1;
        }
    };
    runtime.block_on(async {
        let mut agent = match AgentClient::connect(Path::new(&sock)).await {
            Ok(a) => a,
            Err(e) => return crate::output::report("", &e.into(), 2),
        };
        match run(&parsed, &mut agent).await {
            Ok(code) => code,
            Err(e) => crate::output::report("warren add", &e, 1),
        }
    })
}

async fn run(a: &AddArgs, agent: &mut AgentClient) -> anyhow::Result<u8> {
    if a.list || a.list_public {
        return list(a, agent).await;
    }
    if a.delete_all {
        agent
            .remove_all()
            .await
            .context("Failed to remove all identities.")?;
        if !a.quiet {
            eprintln!("All identities removed.");
        }
        return Ok(0);
    }
    if a.lock || a.unlock {
        return lock(a, agent).await;
    }
    let files = if a.files.is_empty() {
        default_files()?
    } else {
        a.files.clone()
    };
    let mut code = 0;
    for file in &files {
        let done = if a.delete {
            delete(a, agent, file).await
        } else {
            add(a, agent, file).await
        };
        if let Err(e) = done {
            code = crate::output::report("", &e, 1);
        }
    }
    Ok(code)
}

fn default_files() -> anyhow::Result<Vec<PathBuf>> {
    let home = std::env::var_os("HOME").context("HOME is not set; name the key files")?;
    let dir = PathBuf::from(home).join(".ssh");
    let found: Vec<PathBuf> = [
        "id_rsa",
        "id_ecdsa",
        "id_ecdsa_sk",
        "id_ed25519",
        "id_ed25519_sk",
    ]
    .iter()
    .map(|n| dir.join(n))
    .filter(|p| p.exists())
    .collect();
    if found.is_empty() {
        bail!(
            "no default identities in {}; name the key files",
            dir.display()
        );
    }
    Ok(found)
}

async fn list(a: &AddArgs, agent: &mut AgentClient) -> anyhow::Result<u8> {
    let hash = match &a.hash {
        Some(h) => FingerprintHash::parse(h)
            .with_context(|| format!("invalid hash algorithm {h:?}; use sha256 or md5"))?,
        None => FingerprintHash::Sha256,
    };
    let ids = agent.list().await.context("error fetching identities")?;
    if ids.is_empty() {
        println!("The agent has no identities.");
        return Ok(1);
    }
    for id in ids {
        if a.list_public {
            println!("{}", id.public_line());
        } else {
            let mut line = keys::fingerprint_line(&id.key, &id.comment, hash);
            if id.certificate.is_some() {
                line.insert_str(line.len() - 1, "-CERT");
            }
            println!("{line}");
        }
    }
    Ok(0)
}

fn constraints(a: &AddArgs) -> anyhow::Result<Constraints> {
    let lifetime = match &a.lifetime {
        Some(t) => Some(
            warren_config::parse_duration(t)
                .filter(|s| *s > 0)
                .with_context(|| format!("Invalid lifetime {t:?}"))?,
        ),
        None => None,
    };
    Ok(Constraints {
        lifetime,
        confirm: a.confirm,
        unknown_extension: None,
    })
}

/// The private key, asking for its passphrase (through the terminal or
/// SSH_ASKPASS) when it is encrypted: an OpenSSH key, or a legacy PEM key
/// encrypted in its header (`ssh-keygen -m PEM -N PASS`).
fn load(path: &Path) -> anyhow::Result<russh::keys::PrivateKey> {
    let shown = path.display().to_string();
    keys::check_permissions(path)?;
    let text = keys::read_key_text(path).with_context(|| format!("read {shown}"))?;
    if keys::is_encrypted_pem(&text) {
        return ask_passphrase(&shown, |pass| {
            russh::keys::decode_secret_key(&text, Some(pass)).ok()
        });
    }
    let key = keys::read_private(path)?;
    if !key.is_encrypted() {
        return Ok(key);
    }
    ask_passphrase(&shown, |pass| keys::decrypt(&key, &shown, pass).ok())
}

/// Asks for the passphrase of `shown` up to three times, until `open`
/// takes one.
fn ask_passphrase(
    shown: &str,
    open: impl Fn(&str) -> Option<russh::keys::PrivateKey>,
) -> anyhow::Result<russh::keys::PrivateKey> {
    let mut prompt = format!("Enter passphrase for {shown}: ");
    for _ in 0..3 {
        let pass = TtyPrompter
            .secret(&prompt)
            .with_context(|| format!("{shown} is encrypted and there is no terminal or SSH_ASKPASS to ask for its passphrase"))?;
        if pass.expose().is_empty() {
            bail!("no passphrase given for {shown}");
        }
        match open(pass.expose()) {
            Some(k) => return Ok(k),
            None => prompt = format!("Bad passphrase, try again for {shown}: "),
        }
    }
    bail!("{shown}: too many wrong passphrases")
}

fn comment_for(key: &russh::keys::PrivateKey, path: &Path) -> String {
    let c = key.comment().as_str_lossy();
    if !c.is_empty() {
        return c.to_owned();
    }
    keys::read_public_for(path)
        .ok()
        .map(|k| k.comment().as_str_lossy().to_owned())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| path.display().to_string())
}

async fn add(a: &AddArgs, agent: &mut AgentClient, path: &Path) -> anyhow::Result<()> {
    let key = load(path)?;
    let comment = comment_for(&key, path);
    let c = constraints(a)?;
    agent
        .add(Identity::Key(key.clone()), &comment, c.clone())
        .await
        .with_context(|| format!("Could not add identity \"{}\"", path.display()))?;
    if !a.quiet {
        eprintln!("Identity added: {} ({comment})", path.display());
        if let Some(secs) = c.lifetime {
            eprintln!("Lifetime set to {secs} seconds");
        }
        if c.confirm {
            eprintln!("The user must confirm each use of the key");
        }
    }
    let cert_path = PathBuf::from(format!("{}-cert.pub", path.display()));
    let Ok(certificate) = russh::keys::load_openssh_certificate(&cert_path) else {
        return Ok(());
    };
    if certificate.public_key() != key.public_key().key_data() {
        eprintln!(
            "Certificate {} does not match private key {}",
            cert_path.display(),
            path.display()
        );
        return Ok(());
    }
    let id = certificate.key_id().to_owned();
    let identity = Identity::Certificate {
        certificate: Box::new(certificate),
        key,
    };
    agent
        .add(identity, &comment, c)
        .await
        .with_context(|| format!("Could not add certificate \"{}\"", cert_path.display()))?;
    if !a.quiet {
        eprintln!("Certificate added: {} ({id})", cert_path.display());
    }
    Ok(())
}

async fn delete(a: &AddArgs, agent: &mut AgentClient, path: &Path) -> anyhow::Result<()> {
    let public = keys::read_public_for(path)?;
    let blob = russh::keys::ssh_encoding::Encode::encode_vec(public.key_data())
        .context("encode the public key")?;
    agent
        .remove(&blob)
        .await
        .with_context(|| format!("Could not remove identity \"{}\"", path.display()))?;
    if !a.quiet {
        eprintln!(
            "Identity removed: {} {} ({})",
            path.display(),
            keys::type_label(public.key_data()),
            public.comment().as_str_lossy()
        );
    }
    Ok(())
}

async fn lock(a: &AddArgs, agent: &mut AgentClient) -> anyhow::Result<u8> {
    let prompter = TtyPrompter;
    let no_tty = "no terminal or SSH_ASKPASS to ask for the password on";
    if a.lock {
        let first = prompter.secret("Enter lock password: ").context(no_tty)?;
        let again = prompter.secret("Again: ").context(no_tty)?;
        if first.expose() != again.expose() {
            bail!("Passwords do not match.");
        }
        agent.lock(first).await.context("Failed to lock agent.")?;
        eprintln!("Agent locked.");
    } else {
        let pass = prompter.secret("Enter unlock password: ").context(no_tty)?;
        agent
            .unlock(pass)
            .await
            .context("Failed to unlock agent.")?;
        eprintln!("Agent unlocked.");
    }
    Ok(0)
}
