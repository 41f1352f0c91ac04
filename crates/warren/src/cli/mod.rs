//! Subcommands, one file each. `dispatch` picks one from argv; `warren ssh`
//! takes its arguments raw because ssh's ordering rules are its own.

pub mod add;
pub mod agent;
mod argv;
mod background;
mod completions;
pub mod connect_args;
pub mod copy_id;
pub mod cp;
mod demo;
pub mod doctor;
pub mod keygen;
mod local_command;
mod manpages;
mod mux;
mod query;
pub mod serve;
mod settings;
pub mod ssh;
pub mod ssh_args;
mod ssh_flags;
pub mod sync;
mod tunnel;
mod tunnels;
mod x11;

use clap::{CommandFactory as _, Parser};

/// One subcommand: its name, its clap definition (help, completions and
/// man pages come from it) and its entry point, which takes the
/// arguments after its name. The only list of subcommands.
struct Subcommand {
    name: &'static str,
    command: fn() -> clap::Command,
    main: fn(&[String]) -> u8,
    /// In `warren --help`, completions and man pages (not the completion
    /// scripts' own helper).
    listed: bool,
}

const SUBCOMMANDS: &[Subcommand] = &[
    Subcommand {
        name: "ssh",
        command: ssh_args::command,
        main: ssh::main,
        listed: true,
    },
    Subcommand {
        name: "keygen",
        command: keygen::KeygenArgs::command,
        main: keygen::main,
        listed: true,
    },
    Subcommand {
        name: "serve",
        command: serve::ServeArgs::command,
        main: serve::main,
        listed: true,
    },
    Subcommand {
        name: "add",
        command: add::AddArgs::command,
        main: add::main,
        listed: true,
    },
    Subcommand {
        name: "cp",
        command: cp::CpArgs::command,
        main: |args| cp::main(&os(args)),
        listed: true,
    },
    Subcommand {
        name: "sync",
        command: sync::SyncArgs::command,
        main: |args| sync::main(&os(args)),
        listed: true,
    },
    Subcommand {
        name: "copy-id",
        command: copy_id::CopyIdArgs::command,
        main: copy_id::main,
        listed: true,
    },
    Subcommand {
        name: "doctor",
        command: doctor::DoctorArgs::command,
        main: doctor::main,
        listed: true,
    },
    Subcommand {
        name: "agent",
        command: agent::AgentArgs::command,
        main: agent::main,
        listed: true,
    },
    Subcommand {
        name: "demo",
        command: demo::DemoArgs::command,
        main: demo::main,
        listed: true,
    },
    Subcommand {
        name: "tunnel",
        command: tunnel::command,
        main: tunnel::main,
        listed: true,
    },
    Subcommand {
        name: "completions",
        command: completions::CompletionsArgs::command,
        main: completions::main,
        listed: true,
    },
    Subcommand {
        name: "manpages",
        command: manpages::ManpagesArgs::command,
        main: manpages::main,
        listed: true,
    },
    Subcommand {
        name: completions::HOSTS_SUBCOMMAND,
        command: completions::HostsArgs::command,
        main: completions::hosts_main,
        listed: false,
    },
];

/// `warren` with every subcommand: what `--help`, completions and man
/// pages describe.
pub fn command() -> clap::Command {
    clap::Command::new("warren")
        .version(env!("CARGO_PKG_VERSION"))
        .about("SSH tunnelling and remote access, OpenSSH-compatible")
        .subcommand_required(true)
        .arg_required_else_help(true)
        .subcommands(
            SUBCOMMANDS
                .iter()
                .filter(|s| s.listed)
                .map(|s| (s.command)().name(s.name)),
        )
}

fn find(name: &str) -> Option<&'static Subcommand> {
    SUBCOMMANDS.iter().find(|s| s.name == name)
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
    // Each subcommand parses its own arguments: ssh's and ssh-keygen's
    // flags follow their own conventions, not clap's.
    match args.get(1).map(String::as_str) {
        Some("help") => return help(&args[2..]),
        Some(name) => {
            if let Some(sub) = find(name) {
                return (sub.main)(&args[2..]);
            }
        }
        None => {}
    }
    match command().try_get_matches_from(args) {
        // Unreachable: every subcommand was dispatched above.
        Ok(_) => 2,
        Err(e) => {
            let _ = e.print();
            if e.use_stderr() { 2 } else { 0 }
        }
    }
}

/// `warren help [SUBCOMMAND [SUBSUBCOMMAND]]`: exactly what `--help` prints.
fn help(words: &[String]) -> u8 {
    match words.split_first() {
        Some((name, rest)) if find(name).is_some() => {
            let mut args = rest.to_vec();
            args.push("--help".to_owned());
            find(name).map_or(2, |sub| (sub.main)(&args))
        }
        Some((name, _)) => dispatch(&["warren".to_owned(), name.clone()]),
        None => dispatch(&["warren".to_owned(), "--help".to_owned()]),
    }
}
