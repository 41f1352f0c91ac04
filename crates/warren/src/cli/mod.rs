//! Subcommands, one file each. `dispatch` picks one from argv; `warren ssh`
//! takes its arguments raw because ssh's ordering rules are its own.

pub mod add;
pub mod agent;
mod argv;
mod background;
pub mod connect_args;
pub mod copy_id;
pub mod cp;
mod demo;
pub mod doctor;
pub mod keygen;
mod local_command;
mod mux;
mod query;
pub mod serve;
mod settings;
pub mod ssh;
pub mod ssh_args;
pub mod sync;
mod tunnel;
mod tunnels;
mod x11;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "warren",
    version,
    about = "SSH tunnelling and remote access, OpenSSH-compatible"
)]
struct Top {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// OpenSSH-compatible client: `warren ssh [options] destination [command]`.
    Ssh {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Keys as ssh-keygen: generate, -y, -l, -p, and -R/-F/-H for known_hosts.
    Keygen {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// A rootless SSH server running as you: `warren serve [--listen ADDR:PORT] ...`.
    Serve {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Add keys to an agent as ssh-add: FILES, -l, -L, -d, -D, -t, -c, -x, -X.
    Add {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Copy files over SFTP with scp's syntax: atomic, resumable, many requests in flight.
    Cp {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Synchronise trees with rsync's command line: only what changed, several channels, resumable.
    Sync {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Install a public key on a server as ssh-copy-id: [-i KEY] [-f] [-n] [connection options] DEST.
    CopyId {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Check a connection stage by stage and say what to fix: `warren doctor [--json] [ssh options] destination`.
    Doctor {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Authentication agent as ssh-agent: -s/-c, -a PATH, -D, -t LIFE, -k, COMMAND.
    Agent {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// warren end to end on this machine, nothing to set up: `warren demo`.
    Demo {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Supervised tunnels that heal themselves: up, status, down, install.
    Tunnel {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// A subcommand with its own flags (ssh-keygen's, ssh-agent's, ...):
/// parses `args` as `A` under `name`, runs it, and turns the outcome into
/// an exit code (1 for a failure, named after the tool, as theirs).
fn run_tool<A: Parser>(name: &str, args: &[String], run: fn(&A) -> anyhow::Result<u8>) -> u8 {
    run_tool_typed(name, args, |a: &A, _| run(a))
}

/// [`run_tool`] for a subcommand that also needs clap's matches: where each
/// flag was typed, for the connection flags whose order matters
/// (`connect_args`).
fn run_tool_typed<A: Parser, T: Into<std::ffi::OsString> + Clone>(
    name: &str,
    args: &[T],
    run: impl FnOnce(&A, &clap::ArgMatches) -> anyhow::Result<u8>,
) -> u8 {
    let argv =
        std::iter::once(std::ffi::OsString::from(name)).chain(args.iter().cloned().map(Into::into));
    let parsed = A::command()
        .try_get_matches_from(argv)
        .and_then(|m| Ok((A::from_arg_matches(&m)?, m)));
    let (parsed, matches) = match parsed {
        Ok(p) => p,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 1 } else { 0 };
        }
    };
    match run(&parsed, &matches) {
        Ok(code) => code,
        Err(e) => crate::output::report(name, &e, 1),
    }
}

fn os(args: &[String]) -> Vec<std::ffi::OsString> {
    args.iter().map(std::ffi::OsString::from).collect()
}

/// Runs the command named by argv and returns the process exit code.
pub fn dispatch(args: &[String]) -> u8 {
    // Installed as (or linked to) `ssh`/`warren-ssh`, warren is the ssh
    // client itself: `scp -S warren-ssh` needs a program, not a subcommand.
    let argv0 = args
        .first()
        .map(|a| a.rsplit('/').next().unwrap_or(a))
        .unwrap_or("warren");
    if argv0 == "ssh" || argv0 == "warren-ssh" {
        return ssh::main(&args[1..]);
    }
    // Raw arguments for the ssh-compatible subcommands: their flags are
    // ssh's and ssh-keygen's, not clap's conventions.
    match args.get(1).map(String::as_str) {
        Some("ssh") => return ssh::main(&args[2..]),
        Some("keygen") => return keygen::main(&args[2..]),
        Some("serve") => return serve::main(&args[2..]),
        Some("agent") => return agent::main(&args[2..]),
        Some("add") => return add::main(&args[2..]),
        Some("copy-id") => return copy_id::main(&args[2..]),
        Some("doctor") => return doctor::main(&args[2..]),
        Some("cp") => return cp::main(&os(&args[2..])),
        Some("sync") => return sync::main(&os(&args[2..])),
        Some("demo") => return demo::main(&args[2..]),
        Some("tunnel") => return tunnel::main(&args[2..]),
        _ => {}
    }
    match Top::try_parse_from(args) {
        Ok(Top {
            command: Command::Ssh { args },
        }) => ssh::main(&args),
        Ok(Top {
            command: Command::Keygen { args },
        }) => keygen::main(&args),
        Ok(Top {
            command: Command::Serve { args },
        }) => serve::main(&args),
        Ok(Top {
            command: Command::Agent { args },
        }) => agent::main(&args),
        Ok(Top {
            command: Command::Add { args },
        }) => add::main(&args),
        Ok(Top {
            command: Command::CopyId { args },
        }) => copy_id::main(&args),
        Ok(Top {
            command: Command::Doctor { args },
        }) => doctor::main(&args),
        Ok(Top {
            command: Command::Cp { args },
        }) => cp::main(&os(&args)),
        Ok(Top {
            command: Command::Sync { args },
        }) => sync::main(&os(&args)),
        Ok(Top {
            command: Command::Demo { args },
        }) => demo::main(&args),
        Ok(Top {
            command: Command::Tunnel { args },
        }) => tunnel::main(&args),
        Err(e) => {
            let _ = e.print();
            if e.use_stderr() { 2 } else { 0 }
        }
    }
}
