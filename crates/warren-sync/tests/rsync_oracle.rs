//! Real rsync as the oracle for `warren_sync::filter`: a tree of files and
//! directories whose names hit each pattern rule is listed by
//! `rsync -r --dry-run --out-format=%n` under a set of rule combinations,
//! and the same rules in `Filters` must include exactly the same paths.
//! (Fails on a tree without this crate: nothing implemented rsync's rules.)
#![expect(clippy::unwrap_used, clippy::panic, reason = "test code")]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use warren_sync::filter::{FilterArg, Filters};

/// The tree: a trailing `/` marks a directory.
const TREE: &[&str] = &[
    "a.o",
    "b.c",
    "keep.log",
    "other.log",
    "x.tmp",
    "bat",
    "ba",
    "9lives",
    "*x",
    "cache",
    "app.JS",
    "notes.MD",
    "src/",
    "src/main.c",
    "src/main.o",
    "src/lib/",
    "src/lib/util.c",
    "src/lib/util.o",
    "src/lib/cache/",
    "src/lib/cache/x.tmp",
    "node_modules/",
    "node_modules/pkg/",
    "node_modules/pkg/index.js",
    "web/",
    "web/app.js",
    "web/node_modules/",
    "web/node_modules/a.js",
    "build/",
    "build/out/",
    "build/out/bin",
    "build/log",
    "docs/",
    "docs/build",
    "docs/a.md",
    "docs/keep",
    "tmp/",
    "tmp/keep",
    "tmp/sub/",
    "deep/",
    "deep/a/",
    "deep/a/b/",
    "deep/a/b/c/",
    "deep/a/b/c/d.txt",
    "deep/d.txt",
    "dir/",
    "dir/x",
    "dir/sub/",
    "dir/sub/y",
];

/// Rule sets, each a list of rsync options; `@FILE:` options name a file
/// holding the text after the colon.
const CASES: &[&[&str]] = &[
    &["--exclude=*.o"],
    &["--exclude=node_modules/"],
    &["--exclude=/build"],
    &["--exclude=build"],
    &["--exclude=build/"],
    &["--include=keep.log", "--exclude=*.log"],
    &["--exclude=src/*/cache"],
    &["--exclude=lib/*.o"],
    &["--exclude=/src/**/*.o"],
    &["--exclude=**/c"],
    &["--exclude=**/d.txt"],
    &["--exclude=deep/**/d.txt"],
    &["--exclude=deep/**"],
    &["--include=*/", "--include=*.c", "--exclude=*"],
    &["--exclude=ba?"],
    &["--exclude=[a-c]*"],
    &["--exclude=[!a-h]*.js"],
    &["--exclude=[^a-m]*"],
    &["--exclude=*.[[:upper:]][[:upper:]]"],
    &["--exclude=[[:digit:]]*"],
    &["--exclude=dir/***"],
    &["--include=/src/***", "--exclude=*"],
    &["--exclude=*/"],
    &["--exclude=/tmp/*"],
    &["--exclude=\\*x"],
    &["--exclude=b*", "--include=bat"],
    &["--exclude=lib/cache/"],
    &["--exclude=/*/lib"],
    &["--exclude=a/b"],
    &["--exclude=/deep/a/b/c/d.txt"],
    &["--exclude=+ *.c", "--exclude=*.c", "--exclude=*.o"],
    &["--include=- *.log"],
    &["--exclude=*.o", "--exclude=!", "--exclude=*.c"],
    &["--exclude-from=@# comment\n; other\n\n- *.tmp\r\n+ keep\nx*\n*.log\n"],
    &[
        "--include-from=@- web/node_modules/\n*/\n*.js\n",
        "--exclude=*",
    ],
    &[
        "--exclude-from=@keep\n",
        "--include-from=@*.log\n",
        "--exclude=*.log",
    ],
];

fn rsync_list(root: &Path, scratch: &Path, opts: &[&str]) -> BTreeSet<String> {
    let mut args: Vec<String> = Vec::new();
    for (i, opt) in opts.iter().enumerate() {
        match opt.split_once("=@") {
            Some((flag, text)) => {
                let file = scratch.join(format!("rules{i}"));
                std::fs::write(&file, text).unwrap();
                args.push(format!("{flag}={}", file.display()));
            }
            None => args.push(opt.to_string()),
        }
    }
    let out = Command::new("rsync")
        .args(["-r", "--dry-run", "--out-format=%n"])
        .args(&args)
        .arg(format!("{}/", root.display()))
        .arg(scratch.join("dest"))
        .output()
        .unwrap_or_else(|e| panic!("rsync is the oracle for these tests and could not run ({e}); scripts/test installs it"));
    assert!(
        out.status.success(),
        "rsync {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| *l != "./" && !l.starts_with("created directory"))
        .map(|l| l.trim_end_matches('/').to_string())
        .collect()
}

fn ours(opts: &[&str]) -> BTreeSet<String> {
    let args = opts.iter().map(|opt| {
        let (flag, value) = opt.split_once('=').unwrap();
        let value = value.strip_prefix('@').unwrap_or(value).as_bytes();
        match flag {
            "--exclude" => FilterArg::Exclude(value),
            "--include" => FilterArg::Include(value),
            "--exclude-from" => FilterArg::ExcludeFrom(value),
            "--include-from" => FilterArg::IncludeFrom(value),
            other => panic!("no such option in these cases: {other}"),
        }
    });
    let filters = Filters::parse(args).unwrap();
    TREE.iter()
        .filter_map(|entry| {
            let (path, is_dir) = match entry.strip_suffix('/') {
                Some(dir) => (dir, true),
                None => (*entry, false),
            };
            (!filters.excluded_with_parents(path.as_bytes(), is_dir)).then(|| path.to_string())
        })
        .collect()
}

#[test]
fn filters_include_what_rsync_includes() {
    let root = tempfile::tempdir().unwrap();
    for entry in TREE {
        let path = root.path().join(entry);
        if entry.ends_with('/') {
            std::fs::create_dir_all(&path).unwrap();
        } else {
            std::fs::write(&path, entry).unwrap();
        }
    }
    let mut failures = Vec::new();
    for (i, opts) in CASES.iter().enumerate() {
        let scratch = tempfile::tempdir().unwrap();
        let want = rsync_list(root.path(), scratch.path(), opts);
        let got = ours(opts);
        // The oracle must see the whole tree when nothing is filtered out.
        // Every case must filter something out, and not nearly everything.
        assert!(
            want.len() > 5 && want.len() < TREE.len(),
            "case {i} {opts:?}: rsync listed {want:?}"
        );
        if want != got {
            let missing: Vec<_> = want.difference(&got).collect();
            let extra: Vec<_> = got.difference(&want).collect();
            failures.push(format!(
                "case {i} {opts:?}: rsync also includes {missing:?}, we also include {extra:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_oracle_tree_is_listed_whole_without_rules() {
    let root = tempfile::tempdir().unwrap();
    for entry in TREE {
        let path = root.path().join(entry);
        if entry.ends_with('/') {
            std::fs::create_dir_all(&path).unwrap();
        } else {
            std::fs::write(&path, entry).unwrap();
        }
    }
    let scratch = tempfile::tempdir().unwrap();
    let want = rsync_list(root.path(), scratch.path(), &[]);
    assert_eq!(want.len(), TREE.len(), "{want:?}");
    assert_eq!(want, ours(&[]));
}
