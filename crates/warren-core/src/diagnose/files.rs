//! The local files stage: ~/.ssh, keys, config, known_hosts and
//! authorized_keys, their owner and modes, each problem with the exact
//! `chmod` or `chown` that fixes it.
//!
//! Design choice: the rules are one pure function of (kind, mode, owner)
//! ([`judge_file`]), following what OpenSSH refuses: a private key others
//! can read is not used; a config others can write is refused; sshd's
//! StrictModes refuses a writable ~/.ssh or authorized_keys.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Instant;

use warren_wire::escape_str;

use super::{Action, Check, Status, shell_quote};

/// The mode `chmod` sets for a file of `kind` with a problem.
fn wanted_mode(kind: FileKind) -> u32 {
    match kind {
        FileKind::SshDir => 0o700,
        FileKind::KnownHosts => 0o644,
        FileKind::PrivateKey | FileKind::Config | FileKind::AuthorizedKeys => 0o600,
    }
}

/// What a file is, which decides the modes it may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// `~/.ssh`.
    SshDir,
    PrivateKey,
    /// ssh_config.
    Config,
    KnownHosts,
    AuthorizedKeys,
}

/// A file to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalFile {
    pub path: PathBuf,
    pub kind: FileKind,
}

/// What is wrong with a file of `kind` with `mode` owned by `owner` when we
/// are `me`: the status, the problem and the fix for `path`. `None`: fine.
pub fn judge_file(
    kind: FileKind,
    path: &str,
    mode: u32,
    owner: u32,
    me: u32,
) -> Option<(Status, String, String)> {
    let mode = mode & 0o7777;
    let quoted = shell_quote(path);
    if owner != me && owner != 0 {
        let status = match kind {
            FileKind::PrivateKey | FileKind::Config => Status::Fail,
            _ => Status::Warn,
        };
        return Some((
            status,
            format!("owned by uid {owner}, not by you (uid {me}): ssh refuses or distrusts it"),
            format!("chown {me} {quoted}"),
        ));
    }
    let (bad, want, status, why) = match kind {
        FileKind::PrivateKey => (
            mode & 0o077 != 0,
            wanted_mode(kind),
            Status::Fail,
            "a private key that others can read is refused (UNPROTECTED PRIVATE KEY FILE)",
        ),
        FileKind::Config => (
            mode & 0o022 != 0,
            wanted_mode(kind),
            Status::Fail,
            "a config that others can write is refused (Bad owner or permissions)",
        ),
        FileKind::SshDir => (
            mode & 0o022 != 0,
            wanted_mode(kind),
            Status::Warn,
            "a directory others can write lets them replace your keys; sshd's StrictModes refuses logins to it",
        ),
        FileKind::AuthorizedKeys => (
            mode & 0o022 != 0,
            wanted_mode(kind),
            Status::Warn,
            "others can add keys to it; sshd's StrictModes ignores it",
        ),
        FileKind::KnownHosts => (
            mode & 0o022 != 0,
            wanted_mode(kind),
            Status::Warn,
            "others can add or change host keys in it",
        ),
    };
    bad.then(|| {
        (
            status,
            format!("mode {mode:04o}: {why}"),
            format!("chmod {want:o} {quoted}"),
        )
    })
}

/// What `--fix` may do about a problem with `f`, owned by `owner` when we
/// are `me`: chmod a file of ours (or root's); chown a file of another
/// user only when we are root (else the `chown` is shown, not run).
fn action_for(f: &LocalFile, owner: u32, me: u32) -> Option<Action> {
    if owner == me || owner == 0 {
        return Some(Action::Chmod {
            path: f.path.clone(),
            mode: wanted_mode(f.kind),
        });
    }
    (me == 0).then(|| Action::Chown {
        path: f.path.clone(),
        uid: me,
    })
}

/// One check per file with a problem, or one `files` check saying all is
/// well.
pub fn checks(files: &[LocalFile]) -> Vec<Check> {
    let start = Instant::now();
    let me = rustix::process::getuid().as_raw();
    let mut out = Vec::new();
    let mut seen = 0;
    for f in files {
        let Ok(meta) = std::fs::metadata(&f.path) else {
            continue;
        };
        seen += 1;
        let shown = f.path.display().to_string();
        if let Some((status, problem, fix)) =
            judge_file(f.kind, &shown, meta.mode(), meta.uid(), me)
        {
            let mut check =
                Check::new(format!("file {}", escape_str(&shown)), status, problem).fix(fix);
            if let Some(action) = action_for(f, meta.uid(), me) {
                check = check.action(action);
            }
            out.push(check.since(start));
        }
    }
    if out.is_empty() {
        out.push(
            Check::ok(
                "files",
                format!("{seen} local file(s) checked: owner and modes are fine"),
            )
            .since(start),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_table() {
        use FileKind::*;
        let me = 1000;
        let cases = [
            (PrivateKey, 0o100600, me, None),
            (PrivateKey, 0o100400, me, None),
            (
                PrivateKey,
                0o100644,
                me,
                Some((Status::Fail, "chmod 600 /k")),
            ),
            (
                PrivateKey,
                0o100640,
                me,
                Some((Status::Fail, "chmod 600 /k")),
            ),
            (
                PrivateKey,
                0o100600,
                1001,
                Some((Status::Fail, "chown 1000 /k")),
            ),
            (PrivateKey, 0o100600, 0, None),
            (Config, 0o100644, me, None),
            (Config, 0o100664, me, Some((Status::Fail, "chmod 600 /k"))),
            (SshDir, 0o040700, me, None),
            (SshDir, 0o040755, me, None),
            (SshDir, 0o040775, me, Some((Status::Warn, "chmod 700 /k"))),
            (AuthorizedKeys, 0o100644, me, None),
            (
                AuthorizedKeys,
                0o100666,
                me,
                Some((Status::Warn, "chmod 600 /k")),
            ),
            (KnownHosts, 0o100644, me, None),
            (
                KnownHosts,
                0o100646,
                me,
                Some((Status::Warn, "chmod 644 /k")),
            ),
        ];
        for (kind, mode, owner, want) in cases {
            let got = judge_file(kind, "/k", mode, owner, me).map(|(s, _, fix)| (s, fix));
            let want = want.map(|(s, f)| (s, f.to_owned()));
            assert_eq!(got, want, "{kind:?} {mode:o} uid {owner}");
        }
    }

    #[test]
    fn chown_is_applied_only_as_root() {
        let f = LocalFile {
            path: PathBuf::from("/k"),
            kind: FileKind::PrivateKey,
        };
        let chmod = Action::Chmod {
            path: PathBuf::from("/k"),
            mode: 0o600,
        };
        let cases = [
            (1000, 1000, Some(chmod.clone())),
            (0, 1000, Some(chmod)),
            (1001, 1000, None),
            (
                1001,
                0,
                Some(Action::Chown {
                    path: PathBuf::from("/k"),
                    uid: 0,
                }),
            ),
        ];
        for (owner, me, want) in cases {
            assert_eq!(action_for(&f, owner, me), want, "owner {owner}, me {me}");
        }
    }

    #[test]
    fn fix_quotes_the_path() {
        let (_, problem, fix) =
            judge_file(FileKind::PrivateKey, "/tmp/my key", 0o644, 7, 7).unwrap();
        assert_eq!(fix, "chmod 600 '/tmp/my key'");
        assert!(problem.starts_with("mode 0644"), "{problem}");
    }
}
