//! `Operand::parse` against OpenSSH's own scp: scp runs a stand-in for
//! ssh (`-S`) that records its arguments, which name the user (`-l`), the
//! port (`-p`), the host and, in the legacy protocol's remote command
//! (`-O`: `scp -f PATH`), the path scp asks for.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "integration test: failing loudly is the point"
)]

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Command;

use warren_config::{Operand, RemotePath};

/// What scp made of an operand.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    /// scp did not start ssh for it.
    Local,
    Remote(RemotePath),
}

/// Records the arguments NUL-separated (a path may hold newlines).
const FAKE_SSH: &str =
    "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\0' \"$a\"; done > \"$FAKE_OUT\"\nexit 1\n";

fn scp_reads(dir: &Path, operand: &[u8]) -> Seen {
    let out = dir.join("argv");
    let _ = std::fs::remove_file(&out);
    let status = Command::new("scp")
        .arg("-O")
        .arg("-S")
        .arg(dir.join("fake-ssh"))
        .arg(OsStr::from_bytes(operand))
        .arg(dir.join("target"))
        .env("FAKE_OUT", &out)
        .output()
        .expect("scp (openssh-client) must be installed for this test");
    let _ = status;
    let Ok(argv) = std::fs::read(&out) else {
        return Seen::Local;
    };
    let words: Vec<&[u8]> = argv.split(|&b| b == 0).collect();
    let value = |flag: &[u8]| {
        let i = words.iter().position(|w| *w == flag)?;
        words.get(i + 1).copied()
    };
    let dashes = words.iter().position(|w| *w == b"--").expect("-- in argv");
    let command = words[dashes + 2];
    Seen::Remote(RemotePath {
        user: value(b"-l").map(|u| String::from_utf8(u.to_vec()).unwrap()),
        host: String::from_utf8(words[dashes + 1].to_vec()).unwrap(),
        port: value(b"-p").map(|p| std::str::from_utf8(p).unwrap().parse().unwrap()),
        path: command
            .strip_prefix(b"scp -f ")
            .expect("scp -f PATH")
            .to_vec(),
    })
}

#[test]
fn operands_mean_what_they_mean_to_scp() {
    let dir = std::env::temp_dir().join(format!("warren-scp-oracle-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("target")).unwrap();
    let fake = dir.join("fake-ssh");
    std::fs::write(&fake, FAKE_SSH).unwrap();
    std::process::Command::new("chmod")
        .arg("755")
        .arg(&fake)
        .status()
        .unwrap();
    let operands: &[&[u8]] = &[
        b"host:",
        b"host:x",
        b"host:/etc/x",
        b"host:~/x",
        b"me@host:x",
        b"a@b@host:x",
        b"@host:x",
        b"host:a:b",
        b"host:a b",
        b"host:\xff\n",
        b"[::1]:x",
        b"me@[::1]:x",
        b"[::1]:",
        b"[::1]",
        b"::1:x",
        b":x",
        b"./a:b",
        b"/tmp/a:b",
        b"dir/host:x",
        b"scp://host",
        b"scp://host/",
        b"scp://host/x",
        b"scp://host//etc/x",
        b"scp://host/~/x",
        b"scp://me@host:2222/a%20b+c",
        b"scp://a%2Bb@host/x",
        b"scp://me;fp=x@host/x",
        b"scp://h/a@b",
        b"scp://host/%ff",
        b"ssh://host/x",
        // scp refuses these (the operand is not copied).
        b"scp://@host/x",
        b"scp://host:0/x",
        b"scp://host/%00",
        b"scp://[::1]/x",
        b"it's@host:x",
        b"a b@host:x",
    ];
    let mut wrong = Vec::new();
    for &operand in operands {
        let scp = scp_reads(&dir, operand);
        let ours = match Operand::parse(operand) {
            Ok(Operand::Local(_)) => Some(Seen::Local),
            Ok(Operand::Remote(r)) => Some(Seen::Remote(r)),
            // scp reports the error and does not start ssh.
            Err(_) => None,
        };
        let agrees = match (&ours, &scp) {
            (None, Seen::Local) => true,
            (Some(o), s) => o == s,
            (None, Seen::Remote(_)) => false,
        };
        if !agrees {
            wrong.push(format!(
                "{}: scp {scp:?}, warren {ours:?}",
                String::from_utf8_lossy(operand)
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
