//! The server's side of key login: `~`, `~/.ssh` and
//! `~/.ssh/authorized_keys` of the remote user, judged as sshd's
//! StrictModes (on by default) judges them before it reads a key from
//! them: owned by the user or root, and writable by no one else.
//! Debian's sshd also accepts a group-writable file whose group is the
//! user's own private group; that case is a warning, the rest failures.
//!
//! Design choice: the modes are read with `ls -ldn` over an exec channel,
//! not `stat` (whose flags differ between GNU and BSD), inside `sh -c`
//! so any login shell runs it; each line the script prints is tagged, so
//! whatever the login shell's startup files print is ignored.

use super::{Action, Check, shell_quote};

/// The command run on the server. One line, no single quotes inside: it
/// is wrapped in `sh -c '...'` for shells that are not POSIX (csh, fish).
pub const SCRIPT: &str = "sh -c 'echo \"warren-doctor uid $(id -u) $(id -g)\"; \
     for p in \"$HOME\" \"$HOME/.ssh\" \"$HOME/.ssh/authorized_keys\"; do \
     echo \"warren-doctor ls $(ls -ldn -- \"$p\" 2>/dev/null || echo missing)\"; done'";

/// The three paths, in the order the script lists them, as a user types
/// them on the server.
const PATHS: [&str; 3] = ["~", "~/.ssh", "~/.ssh/authorized_keys"];

/// One `ls -ldn` line: the mode string, the owner's uid and the gid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub mode: String,
    pub uid: u32,
    pub gid: u32,
}

impl Entry {
    fn parse(line: &[u8]) -> Option<Entry> {
        let text = std::str::from_utf8(line).ok()?;
        let mut fields = text.split_whitespace();
        let mode = fields.next()?;
        let _links = fields.next()?;
        let uid = fields.next()?.parse().ok()?;
        let gid = fields.next()?.parse().ok()?;
        (mode.len() >= 10 && mode.is_ascii()).then(|| Entry {
            mode: mode[..10].to_owned(),
            uid,
            gid,
        })
    }

    fn is(&self, at: usize, what: u8) -> bool {
        self.mode.as_bytes().get(at) == Some(&what)
    }

    fn other_writable(&self) -> bool {
        self.is(8, b'w')
    }

    fn group_writable(&self) -> bool {
        self.is(5, b'w')
    }
}

/// What the script reported.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Listing {
    /// The user's uid and primary gid.
    pub uid: Option<(u32, u32)>,
    /// One per path in [`PATHS`] order; `None`: missing or unreadable.
    pub entries: Vec<Option<Entry>>,
}

/// Reads the tagged lines of the script's output; anything else (a
/// chatty login shell) is ignored.
pub fn parse(out: &[u8]) -> Listing {
    let mut listing = Listing::default();
    for line in out.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(uid) = line.strip_prefix(b"warren-doctor uid ") {
            listing.uid = std::str::from_utf8(uid).ok().and_then(|ids| {
                let (u, g) = ids.trim().split_once(' ')?;
                Some((u.parse().ok()?, g.parse().ok()?))
            });
        } else if let Some(ls) = line.strip_prefix(b"warren-doctor ls ") {
            listing.entries.push(Entry::parse(ls));
        }
    }
    listing
}

/// The check: fail when StrictModes would refuse the keys; the fix is
/// the exact command, run from here over `warren ssh`.
pub fn judge(name: &str, destination: &str, listing: &Listing) -> Check {
    let check_name = format!("{name} remote files");
    let Some((uid, gid)) = listing.uid else {
        return Check::skip(
            check_name,
            "the server did not run the check (no POSIX sh?)",
        );
    };
    if listing.entries.len() != PATHS.len() {
        return Check::skip(check_name, "the server's answer was incomplete");
    }
    let mut problems = Vec::new();
    let mut writable = Vec::new();
    let mut foreign = Vec::new();
    let mut private_group = Vec::new();
    for (path, entry) in PATHS.iter().zip(&listing.entries) {
        let Some(entry) = entry else { continue };
        if entry.uid != 0 && entry.uid != uid {
            problems.push(format!("{path} is owned by uid {}, not you", entry.uid));
            foreign.push(*path);
        }
        if entry.other_writable() || (entry.group_writable() && entry.gid != gid) {
            problems.push(format!(
                "{path} is writable by group or others ({})",
                entry.mode
            ));
            writable.push(*path);
        } else if entry.group_writable() {
            private_group.push(*path);
        }
    }
    let present = |i: usize| listing.entries.get(i).is_some_and(Option::is_some);
    if problems.is_empty() && !private_group.is_empty() {
        let list = private_group.join(" ");
        return Check::warn(
            check_name,
            format!(
                "{list} writable by your own group: Debian's sshd accepts that, OpenSSH's \
                 StrictModes elsewhere refuses the keys"
            ),
        )
        .fix(format!(
            "on the server: chmod g-w {list} (from here: warren ssh {} {})",
            shell_quote(destination),
            shell_quote(&format!("chmod g-w {list}"))
        ))
        .action(Action::Remote {
            command: format!("chmod g-w {list}"),
        });
    }
    if problems.is_empty() {
        let summary = if present(2) {
            format!(
                "~, ~/.ssh and ~/.ssh/authorized_keys are yours (uid {uid}) and writable only by you"
            )
        } else {
            "no ~/.ssh/authorized_keys on the server (keys come from elsewhere, or none are set up)"
                .to_owned()
        };
        return Check::ok(check_name, summary);
    }
    let mut fixes = Vec::new();
    if !writable.is_empty() {
        fixes.push(format!("chmod go-w {}", writable.join(" ")));
    }
    if !foreign.is_empty() {
        fixes.push(format!("sudo chown {uid} {}", foreign.join(" ")));
    }
    let remote = fixes.join("; ");
    Check::fail(
        check_name,
        format!(
            "{}: sshd (StrictModes yes, its default) refuses every key in ~/.ssh/authorized_keys \
             (\"Permission denied\" despite the right key)",
            problems.join("; ")
        ),
    )
    .fix(format!(
        "on the server: {remote} (from here: warren ssh {} {})",
        shell_quote(destination),
        shell_quote(&remote)
    ))
    .fix_action((!writable.is_empty()).then(|| Action::Remote {
        command: format!("chmod go-w {}", writable.join(" ")),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::Status;

    /// The user is uid 7, gid 7; each entry's group is its owner's.
    fn listing(uid: u32, lines: &[Option<(&str, u32)>]) -> Listing {
        Listing {
            uid: Some((uid, uid)),
            entries: lines
                .iter()
                .map(|l| {
                    l.map(|(mode, uid)| Entry {
                        mode: mode.to_owned(),
                        uid,
                        gid: uid,
                    })
                })
                .collect(),
        }
    }

    #[test]
    fn parses_tagged_lines_only() {
        let out = b"Welcome!\nwarren-doctor uid 1000 1000\n\
            warren-doctor ls drwxr-xr-x 5 1000 1000 4096 Dec  7 20:44 /home/u\n\
            warren-doctor ls drwx------. 2 1000 1000 4096 Dec  7 20:44 /home/u/.ssh\n\
            warren-doctor ls missing\n";
        let got = parse(out);
        assert_eq!(
            got,
            listing(
                1000,
                &[Some(("drwxr-xr-x", 1000)), Some(("drwx------", 1000)), None]
            )
        );
    }

    /// authorized_keys in group 100, not the user's.
    fn shared_group(mut l: Listing) -> Listing {
        if let Some(Some(e)) = l.entries.get_mut(2) {
            e.gid = 100;
        }
        l
    }

    #[test]
    fn judged_as_strict_modes() {
        let ok = [
            Some(("drwxr-xr-x", 0)),
            Some(("drwx------", 7)),
            Some(("-rw-------", 7)),
        ];
        let cases: Vec<(Listing, Status, &str)> = vec![
            (listing(7, &ok), Status::Ok, ""),
            (
                listing(7, &[Some(("drwxr-xr-x", 7)), Some(("drwx------", 7)), None]),
                Status::Ok,
                "",
            ),
            (
                listing(
                    7,
                    &[
                        Some(("drwxr-xr-x", 7)),
                        Some(("drwx------", 7)),
                        Some(("-rw-rw-r--", 7)),
                    ],
                ),
                Status::Warn,
                "on the server: chmod g-w ~/.ssh/authorized_keys (from here: warren ssh h 'chmod g-w ~/.ssh/authorized_keys')",
            ),
            (
                shared_group(listing(
                    7,
                    &[
                        Some(("drwxr-xr-x", 7)),
                        Some(("drwx------", 7)),
                        Some(("-rw-rw-r--", 7)),
                    ],
                )),
                Status::Fail,
                "on the server: chmod go-w ~/.ssh/authorized_keys (from here: warren ssh h 'chmod go-w ~/.ssh/authorized_keys')",
            ),
            (
                listing(
                    7,
                    &[
                        Some(("drwxrwxrwx", 7)),
                        Some(("drwx------", 8)),
                        Some(("-rw-------", 7)),
                    ],
                ),
                Status::Fail,
                "on the server: chmod go-w ~; sudo chown 7 ~/.ssh (from here: warren ssh h 'chmod go-w ~; sudo chown 7 ~/.ssh')",
            ),
        ];
        for (l, status, fix) in cases {
            let c = judge("h", "h", &l);
            assert_eq!(c.status, status, "{l:?}: {c:?}");
            assert_eq!(c.fix.as_deref().unwrap_or(""), fix, "{l:?}");
        }
        let c = judge("h", "h", &Listing::default());
        assert_eq!(c.status, Status::Skip);
    }
}
