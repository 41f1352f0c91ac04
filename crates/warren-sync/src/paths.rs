//! rsync's trailing-slash rules as one pure function: which source goes
//! where under the destination (rsync(1), "USAGE" and the `-r` examples).
//!
//! - `src` (a directory) copies the directory itself: `dest/src/...`.
//! - `src/`, `src/.`, `.` or `..` copy its contents: `dest/...`.
//! - A single file to a destination that is not a directory (missing, or a
//!   file) and does not end in `/` is written *as* the destination.
//! - Anything else (several sources, a directory source, a destination
//!   ending in `/`) needs the destination to be a directory, created when
//!   missing; an existing non-directory there is an error.
//!
//! The caller looks at the filesystems (is each source a directory, what
//! is at the destination); this module only decides. Paths are bytes.

/// What is at the destination path now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestState {
    Missing,
    Dir,
    /// A file, symlink or anything else that is not a directory.
    NotDir,
}

/// One source operand and what it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source<'a> {
    pub operand: &'a [u8],
    pub is_dir: bool,
}

/// Where one source goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// The path to read: the operand without its trailing `/`s and `/.`.
    pub source: Vec<u8>,
    /// The path it becomes (for a directory's contents, the directory
    /// they go into).
    pub target: Vec<u8>,
    /// Its name under the transfer root, as filter rules see it: `src` for
    /// `src`, empty for `src/` (its entries sit at the root).
    pub root_name: Vec<u8>,
    /// The source's contents go into `target`, not the source itself.
    pub contents_only: bool,
}

/// The whole transfer's layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The destination must be created as a directory first.
    pub create_dest_dir: bool,
    pub mappings: Vec<Mapping>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PathsError {
    #[error("no source given")]
    NoSource,
    #[error("empty source operand")]
    EmptySource,
    #[error("destination `{}` must be a directory when copying a directory or more than one file", warren_wire::escape(.0))]
    DestNotDir(Vec<u8>),
}

/// Maps `sources` onto `dest` as rsync does.
pub fn plan(sources: &[Source<'_>], dest: &[u8], state: DestState) -> Result<Plan, PathsError> {
    if sources.is_empty() {
        return Err(PathsError::NoSource);
    }
    let dest_slash = dest.ends_with(b"/");
    let single_file = sources.len() == 1 && !sources[0].is_dir;
    let into_dir = state == DestState::Dir || !single_file || dest_slash;
    if into_dir && state == DestState::NotDir {
        return Err(PathsError::DestNotDir(dest.to_vec()));
    }
    let dest_dir = trim_slashes(dest);
    let mut mappings = Vec::with_capacity(sources.len());
    for s in sources {
        if s.operand.is_empty() {
            return Err(PathsError::EmptySource);
        }
        let (path, contents_only) = split_operand(s.operand);
        let contents_only = contents_only && s.is_dir;
        let name = last_component(path);
        let target = if !into_dir {
            dest.to_vec()
        } else if contents_only {
            dest_dir.to_vec()
        } else {
            join(dest_dir, name)
        };
        let root_name = if contents_only {
            Vec::new()
        } else {
            name.to_vec()
        };
        mappings.push(Mapping {
            source: path.to_vec(),
            target,
            root_name,
            contents_only,
        });
    }
    Ok(Plan {
        create_dest_dir: into_dir && state == DestState::Missing,
        mappings,
    })
}

/// The path to read and whether the operand asks for its contents: a
/// trailing `/`, or a last component of `.` or `..`.
fn split_operand(op: &[u8]) -> (&[u8], bool) {
    if op.ends_with(b"/") {
        return (trim_slashes(op), true);
    }
    let last = last_component(op);
    if last == b"." || last == b".." {
        let parent = trim_slashes(&op[..op.len() - last.len()]);
        // `dir/.` reads `dir`; `.`, `..` and `dir/..` are read as written.
        let path = if last == b"." && !parent.is_empty() {
            parent
        } else {
            op
        };
        return (path, true);
    }
    (op, false)
}

/// `p` without trailing `/`s, except that `/` stays `/`.
fn trim_slashes(p: &[u8]) -> &[u8] {
    let mut end = p.len();
    while end > 1 && p[end - 1] == b'/' {
        end -= 1;
    }
    &p[..end]
}

fn last_component(p: &[u8]) -> &[u8] {
    let p = trim_slashes(p);
    match p.iter().rposition(|&b| b == b'/') {
        Some(i) if i + 1 < p.len() => &p[i + 1..],
        _ => p,
    }
}

fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut out = dir.to_vec();
    if !out.ends_with(b"/") {
        out.push(b'/');
    }
    out.extend_from_slice(name);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(op: &str) -> Source<'_> {
        Source {
            operand: op.as_bytes(),
            is_dir: true,
        }
    }
    fn file(op: &str) -> Source<'_> {
        Source {
            operand: op.as_bytes(),
            is_dir: false,
        }
    }

    /// (source path, target, root name, contents only) per source.
    fn targets(p: &Plan) -> Vec<(String, String, String, bool)> {
        let s = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
        p.mappings
            .iter()
            .map(|m| (s(&m.source), s(&m.target), s(&m.root_name), m.contents_only))
            .collect()
    }

    // rsync(1): `rsync -avz foo:src/bar /data/tmp` creates /data/tmp/bar;
    // `rsync -avz foo:src/bar/ /data/tmp` copies bar's contents into
    // /data/tmp. Rows checked against rsync 3 on a real tree.
    #[test]
    fn trailing_slash_rules_as_rsync() {
        use DestState::*;
        // Sources, destination, what is there, whether it is created, and
        // per source: path read, target, root name, contents only.
        type Row<'a> = (
            &'a [Source<'a>],
            &'a str,
            DestState,
            bool,
            &'a [(&'a str, &'a str, &'a str, bool)],
        );
        let rows: &[Row<'_>] = &[
            (
                &[dir("src/bar")],
                "/data/tmp",
                Dir,
                false,
                &[("src/bar", "/data/tmp/bar", "bar", false)],
            ),
            (
                &[dir("src/bar/")],
                "/data/tmp",
                Dir,
                false,
                &[("src/bar", "/data/tmp", "", true)],
            ),
            (
                &[dir("src/bar//")],
                "/data/tmp/",
                Dir,
                false,
                &[("src/bar", "/data/tmp", "", true)],
            ),
            (
                &[dir("src/bar/.")],
                "out",
                Missing,
                true,
                &[("src/bar", "out", "", true)],
            ),
            // A directory to a missing destination: rsync makes `out/src`,
            // unlike cp which would make `out` the copy.
            (
                &[dir("src")],
                "out",
                Missing,
                true,
                &[("src", "out/src", "src", false)],
            ),
            (
                &[dir("./src")],
                "out",
                Missing,
                true,
                &[("./src", "out/src", "src", false)],
            ),
            (&[dir(".")], "out", Missing, true, &[(".", "out", "", true)]),
            (&[dir("..")], "out", Dir, false, &[("..", "out", "", true)]),
            (
                &[dir("a/..")],
                "out",
                Dir,
                false,
                &[("a/..", "out", "", true)],
            ),
            (&[dir("/")], "out", Dir, false, &[("/", "out", "", true)]),
            // A single file becomes the destination unless it is a
            // directory or ends in `/`.
            (
                &[file("a/file1")],
                "out",
                Missing,
                false,
                &[("a/file1", "out", "file1", false)],
            ),
            (
                &[file("file1")],
                "out",
                NotDir,
                false,
                &[("file1", "out", "file1", false)],
            ),
            (
                &[file("file1")],
                "out",
                Dir,
                false,
                &[("file1", "out/file1", "file1", false)],
            ),
            (
                &[file("file1")],
                "out/",
                Missing,
                true,
                &[("file1", "out/file1", "file1", false)],
            ),
            // Several sources need a directory, made when missing.
            (
                &[file("file1"), file("x/file2")],
                "out",
                Missing,
                true,
                &[
                    ("file1", "out/file1", "file1", false),
                    ("x/file2", "out/file2", "file2", false),
                ],
            ),
            (
                &[dir("src"), file("file1"), dir("lib/")],
                "out",
                Dir,
                false,
                &[
                    ("src", "out/src", "src", false),
                    ("file1", "out/file1", "file1", false),
                    ("lib", "out", "", true),
                ],
            ),
        ];
        for (i, (sources, dest, state, create, want)) in rows.iter().enumerate() {
            let p = plan(sources, dest.as_bytes(), *state).unwrap();
            assert_eq!(p.create_dest_dir, *create, "row {i}");
            let want: Vec<_> = want
                .iter()
                .map(|(a, b, c, d)| (a.to_string(), b.to_string(), c.to_string(), *d))
                .collect();
            assert_eq!(targets(&p), want, "row {i}");
        }
    }

    #[test]
    fn a_directory_or_several_sources_onto_a_file_is_refused() {
        // rsync: "ERROR: destination must be a directory when copying more
        // than 1 file".
        for sources in [
            &[dir("src")][..],
            &[file("a"), file("b")][..],
            &[file("a")][..],
        ] {
            let dest: &[u8] = if sources.len() == 1 && !sources[0].is_dir {
                b"out/"
            } else {
                b"out"
            };
            assert_eq!(
                plan(sources, dest, DestState::NotDir),
                Err(PathsError::DestNotDir(dest.to_vec()))
            );
        }
        assert_eq!(plan(&[], b"out", DestState::Dir), Err(PathsError::NoSource));
        assert_eq!(
            plan(&[file("")], b"out", DestState::Dir),
            Err(PathsError::EmptySource)
        );
    }
}
