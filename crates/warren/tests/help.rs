//! The front door: every subcommand's `--help` (snapshots), `warren help
//! X` printing exactly `warren X --help`, ssh's parse errors in ssh's
//! words, and the tunnel subcommands' help.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]

mod common;
use common::{text, warren};

/// Every subcommand, and the nested ones, as typed after `warren`.
const COMMANDS: &[&[&str]] = &[
    &[],
    &["ssh"],
    &["keygen"],
    &["serve"],
    &["add"],
    &["cp"],
    &["sync"],
    &["copy-id"],
    &["doctor"],
    &["agent"],
    &["demo"],
    &["tunnel"],
    &["tunnel", "up"],
    &["tunnel", "status"],
    &["tunnel", "down"],
    &["tunnel", "install"],
    &["completions"],
    &["manpages"],
];

fn run(args: &[&str]) -> (String, String, Option<i32>) {
    let out = warren().args(args).env("NO_COLOR", "1").output().unwrap();
    (text(&out.stdout), text(&out.stderr), out.status.code())
}

// `warren tunnel up --help` answered "--help needs a value", `tunnel down
// --help` looked for a tunnel named "--help", `tunnel install --help`
// printed the ssh usage; the others' help is pinned here.
#[test]
fn help_of_every_subcommand() {
    for words in COMMANDS {
        let mut args = words.to_vec();
        args.push("--help");
        let (out, err, code) = run(&args);
        assert_eq!(code, Some(0), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?}: {err}");
        let name = ["help_warren"]
            .iter()
            .chain(words.iter())
            .map(|w| w.replace('-', "_"))
            .collect::<Vec<_>>()
            .join("_");
        insta::assert_snapshot!(name, out);
    }
}

// `warren help ssh` printed an empty help (clap's, of the raw-argument
// wrapper).
#[test]
fn help_x_is_x_dash_dash_help() {
    for words in COMMANDS {
        let mut help = vec!["help"];
        help.extend_from_slice(words);
        let mut dash = words.to_vec();
        dash.push("--help");
        assert_eq!(run(&help), run(&dash), "warren help {}", words.join(" "));
    }
    assert_eq!(
        run(&["help", "tunnel", "up"]),
        run(&["tunnel", "up", "--help"])
    );
}

// Options without a description were listed (-L -R -D -J -W -f -A -S -O
// ...), and flags that do nothing yet as if they worked (-w -I -P).
#[test]
fn every_listed_option_is_described() {
    fn walk(cmd: &str, words: &[&str]) {
        let mut args = words.to_vec();
        args.push("--help");
        let (out, _, _) = run(&args);
        let options = out
            .split("Options:")
            .nth(1)
            .unwrap_or_else(|| panic!("{cmd}: no options in\n{out}"));
        // Option lines are indented 2 or 6 columns, descriptions 10.
        let is_option = |l: &&str| l.trim_start().starts_with('-') && !l.starts_with("          ");
        for line in options.lines().filter(is_option) {
            // "  -x <VALUE>  what it does" (the text may wrap below).
            let described = line.trim().split("  ").filter(|p| !p.is_empty()).count() > 1
                || options
                    .lines()
                    .skip_while(|l| *l != line)
                    .nth(1)
                    .is_some_and(|next| next.starts_with("          "));
            assert!(described, "{cmd}: undescribed option: {line}");
        }
    }
    for words in COMMANDS {
        walk(&words.join(" "), words);
    }
    let (out, _, _) = run(&["ssh", "--help"]);
    for hidden in ["-w ", "-I ", "-P", "-K", "-k"] {
        assert!(
            !out.lines().any(|l| l.trim_start().starts_with(hidden)),
            "{hidden} is not implemented but listed:\n{out}"
        );
    }
    for flag in [
        "-L <address>",
        "-J <destination>",
        "-W <host:port>",
        "-O <ctl_cmd>",
    ] {
        assert!(out.contains(flag), "{flag} missing:\n{out}");
    }
}

// `warren ssh -Z` printed clap's error with its tip "use '-- -Z'", and
// `-h` the same; ssh says "unknown option -- Z" and its usage, exit 255.
#[test]
fn ssh_parse_errors_in_ssh_words() {
    for (args, first) in [
        (&["ssh", "-Z", "host"][..], "unknown option -- Z"),
        (&["ssh", "-h"][..], "unknown option -- h"),
        (
            &["ssh", "host", "-p"][..],
            "option requires an argument -- p",
        ),
        (&["ssh", "-vp"][..], "option requires an argument -- p"),
    ] {
        let (out, err, code) = run(args);
        assert_eq!(code, Some(255), "{args:?}");
        assert!(out.is_empty(), "{args:?}: {out}");
        let mut lines = err.lines();
        assert_eq!(lines.next(), Some(first), "{args:?}: {err}");
        assert!(
            lines
                .next()
                .is_some_and(|l| l.starts_with("usage: warren ssh [-46AaCfGgMNnqsTtVvXxY]")),
            "{args:?}: {err}"
        );
        assert!(!err.contains("-- -"), "clap's tip: {err}");
    }
    // No destination: the usage, as ssh.
    let (_, err, code) = run(&["ssh"]);
    assert_eq!(code, Some(255));
    assert!(err.contains("usage: warren ssh [-46"), "{err}");
    assert!(err.contains("[-L address]"), "{err}");
}
