//! `warren copy-id`: ssh-copy-id. Appends a public key to the remote
//! `~/.ssh/authorized_keys` (creating `~/.ssh` 0700 and the file 0600),
//! skipping a key that is already there, then logs in again with that key
//! alone to prove it works.
//!
//! Design choice: the connection is `warren ssh`'s own (same flags, same
//! ssh_config, jump hosts included); the remote side is one POSIX `sh`
//! script reading the key on stdin, so no quoting of the key is needed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use clap::{ArgMatches, Parser};
use warren_config::SystemEnvironment;
use warren_core::exec::{self, Exit};
use warren_core::keys;
use warren_core::prompt::{NoPrompt, Prompter, TtyPrompter};
use warren_core::session::{self, Hop, Resolved};
use warren_wire::Escaped;

use super::connect_args::{self, ConnectArgs, LoginPortArgs};
use super::settings;
use crate::logging;

#[derive(Debug, Parser)]
#[command(
    name = "warren copy-id",
    disable_version_flag = true,
    about = "Install a public key in a remote authorized_keys, as ssh-copy-id"
)]
pub struct CopyIdArgs {
    /// The key to install (KEY or KEY.pub; default: the newest ~/.ssh/id_*.pub).
    #[arg(short = 'i', value_name = "KEY")]
    identity: Option<PathBuf>,
    /// Install even if the key is already there.
    #[arg(short = 'f')]
    force: bool,
    /// Dry run: say what would be installed, change nothing.
    #[arg(short = 'n')]
    dry_run: bool,
    #[command(flatten)]
    connect: ConnectArgs,
    #[command(flatten)]
    login_port: LoginPortArgs,
    /// `[user@]host` or `ssh://[user@]host[:port]`.
    #[arg(value_hint = clap::ValueHint::Hostname)]
    destination: String,
}

pub fn main(args: &[String]) -> u8 {
    super::run_tool_typed::<CopyIdArgs, _>("warren copy-id", args, run)
}

/// The public key file to install and the private key beside it.
fn key_files(a: &CopyIdArgs) -> anyhow::Result<(PathBuf, PathBuf)> {
    let public = match &a.identity {
        Some(p) if p.extension().is_some_and(|e| e == "pub") => p.clone(),
        Some(p) => PathBuf::from(format!("{}.pub", p.display())),
        None => newest_default()?,
    };
    let private = PathBuf::from(
        public
            .to_string_lossy()
            .strip_suffix(".pub")
            .unwrap_or(&public.to_string_lossy()),
    );
    Ok((public, private))
}

fn newest_default() -> anyhow::Result<PathBuf> {
    let home = std::env::var_os("HOME").context("HOME is not set; name the key with -i")?;
    let dir = PathBuf::from(home).join(".ssh");
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(&dir)
        .with_context(|| format!("{}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            name.starts_with("id_") && name.ends_with(".pub")
        })
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .collect();
    found.sort();
    found.pop().map(|(_, p)| p).with_context(|| {
        format!(
            "no ~/.ssh/id_*.pub in {}; make one with `warren keygen` or name one with -i",
            dir.display()
        )
    })
}

/// How to reach the destination: the same route, options and ssh_config
/// as `warren ssh` with these flags.
fn resolve(a: &CopyIdArgs, m: &ArgMatches) -> anyhow::Result<Resolved> {
    let mut flags = ConnectArgs::typed(m);
    flags.extend(LoginPortArgs::typed(m));
    let at = m.index_of("destination").unwrap_or(usize::MAX);
    let cli = connect_args::command_line(&a.destination, at, a.connect.config(), flags)?;
    settings::resolve_host(&cli, &SystemEnvironment::new(), a.connect.quiet)
}

/// The remote side: reads the key line on stdin; answers ADDED, EXISTS or
/// WOULD on stdout.
fn script(force: bool, dry_run: bool) -> String {
    format!(
        "exec sh -c 'cd \"$HOME\" || exit 1; umask 077; key=$(cat); set -- $key; \
         [ -n \"$2\" ] || exit 3; f=.ssh/authorized_keys; \
         if [ {force} != 1 ] && [ -f $f ] && grep -qF \" $2\" $f; then echo WARREN-EXISTS; exit 0; fi; \
         if [ {dry} = 1 ]; then echo WARREN-WOULD; exit 0; fi; \
         mkdir -p .ssh || exit 1; \
         if [ -s $f ] && [ -n \"$(tail -c1 $f)\" ]; then echo >> $f; fi; \
         printf \"%s\\n\" \"$key\" >> $f && echo WARREN-ADDED'",
        force = u8::from(force),
        dry = u8::from(dry_run)
    )
}

fn run(a: &CopyIdArgs, m: &ArgMatches) -> anyhow::Result<u8> {
    let (public_path, private_path) = key_files(a)?;
    let text = keys::read_key_text(&public_path)
        .with_context(|| format!("read the public key {}", public_path.display()))?;
    let Some((key, _)) = keys::public_lines(&text).into_iter().next() else {
        bail!("{} holds no public key", public_path.display());
    };
    let line = keys::public_line(&key)?;
    eprintln!(
        "warren copy-id: Source of key(s) to be installed: \"{}\"",
        public_path.display()
    );
    let Resolved { config: host, hop } = resolve(a, m)?;
    logging::init(settings::verbosity(host.log_level()), None);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("start the async runtime")?;
    let code = runtime.block_on(install(a, &hop, &line, &private_path));
    runtime.shutdown_background();
    code
}

fn prompter(hop: &Hop) -> Arc<dyn Prompter> {
    if hop.opts.auth.batch_mode {
        Arc::new(NoPrompt)
    } else {
        Arc::new(TtyPrompter)
    }
}

async fn install(a: &CopyIdArgs, hop: &Hop, line: &str, private: &Path) -> anyhow::Result<u8> {
    let session = session::connect_hop(hop, prompter(hop)).await?;
    let out = exec::capture(
        session.handle(),
        &script(a.force, a.dry_run),
        format!("{line}\n").as_bytes(),
    )
    .await
    .context("run the install script on the remote")?;
    session.close().await;
    let said = String::from_utf8_lossy(&out.stdout);
    if out.exit != Exit::Status(0) {
        bail!(
            "the remote could not update ~/.ssh/authorized_keys (exit {:?}): {}",
            out.exit,
            Escaped::truncated(out.stderr.trim_ascii(), 2000)
        );
    }
    if said.contains("WARREN-EXISTS") {
        eprintln!(
            "warren copy-id: WARNING: All keys were skipped because they already exist on the remote system.\n\t\t(if you think this is a mistake, you may want to use -f option)"
        );
        return Ok(0);
    }
    if said.contains("WARREN-WOULD") {
        println!(
            "=-=-=-=-=-=-=-=\nWould have added the following key(s):\n\n{line}\n=-=-=-=-=-=-=-="
        );
        return Ok(0);
    }
    if !said.contains("WARREN-ADDED") {
        bail!(
            "the remote did not confirm the key was added: {}",
            Escaped::truncated(out.stdout.trim_ascii(), 2000)
        );
    }
    println!("\nNumber of key(s) added: 1\n");
    verify(hop, private, &a.destination).await
}

/// Logs in again offering only the installed key (no agent, no other
/// identity files, publickey only).
async fn verify(hop: &Hop, private: &Path, destination: &str) -> anyhow::Result<u8> {
    if !private.exists() {
        println!(
            "Not verified: no private key at {} to log in with.",
            private.display()
        );
        return Ok(0);
    }
    let mut hop = hop.clone();
    let auth = &mut hop.opts.auth;
    auth.identity_files = vec![private.to_owned()];
    auth.identity_files_explicit = true;
    auth.certificate_files.clear();
    auth.identities_only = true;
    auth.identity_agent = None;
    auth.preferred = vec!["publickey".to_owned()];
    let session = session::connect_hop(&hop, prompter(&hop))
        .await
        .with_context(|| {
            format!(
                "the key was added, but logging in with {} alone failed",
                private.display()
            )
        })?;
    let out = exec::capture(session.handle(), "true", b"").await;
    session.close().await;
    out.context("the key was added, but a command over the new login failed")?;
    println!(
        "Verified: logged in to {destination} with {} alone.\n\
         Now try logging into the machine with: \"warren ssh -i {} '{destination}'\"",
        private.display(),
        private.display()
    );
    Ok(0)
}
