//! `warren sync`'s engine: rsync's results over the copy engine.
//!
//! Each root (one source operand mapped onto the destination by
//! warren-sync's `paths`) is listed on both sides, through the same
//! filters, with many directories listed at once. The two lists are
//! compared by rsync's quick check (size and modification time, or `-c`
//! hashes, `--size-only`, `-u`, `--ignore-existing`) into a plan:
//! directories to create, files to send, symlinks to make, attributes to
//! set, entries to delete. Files go through [`super::copy::copy_pairs`]
//! (pipelined, several lanes, atomic per file); files that already exist
//! at the destination go through a [`Delta`] sender first when one is
//! given (the remote helper), and whole when it cannot rebuild them.
//!
//! Deletion (`--delete`) only ever removes what the destination listing
//! found under the root's target, only what the filters do not protect,
//! and only after every transfer succeeded: after any error, as rsync's
//! "IO error encountered -- skipping file deletion", nothing is deleted.
//! A root whose source cannot be read stops the whole sync before
//! anything is changed.
//!
//! Times are whole seconds: SFTP v3 carries no more, so two files are
//! "the same time" when their seconds are.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use warren_sync::Filters;
use warren_wire::Escaped;

use super::Progress;
use super::copy::{self, Options, Pair};
use super::side::{Kind, Meta, Side, SideError, join, shown};

/// Entries one side may list for one root: a bound on memory.
const MAX_ENTRIES: usize = 10_000_000;
/// Directories listed at once.
const LISTING_IN_FLIGHT: usize = 16;
/// Metadata and delete operations in flight.
const OPS_IN_FLIGHT: usize = 32;
/// Files from this size go through the delta sender when one is given:
/// below it, a whole file costs less than a signature's round trips, and
/// SFTP sends many at once where the helper does one at a time.
pub const DELTA_FROM: u64 = 256 * 1024;

/// What `warren sync` was asked to do (rsync's options).
#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    /// `-r`.
    pub recursive: bool,
    /// `-l`: symlinks as symlinks (else skipped, as rsync does).
    pub links: bool,
    /// `-p`.
    pub perms: bool,
    /// `-t`.
    pub times: bool,
    /// `--delete`.
    pub delete: bool,
    /// `-n`.
    pub dry_run: bool,
    /// `-c`.
    pub checksum: bool,
    /// `-u`.
    pub update: bool,
    /// `--size-only`.
    pub size_only: bool,
    /// `--ignore-existing`.
    pub ignore_existing: bool,
    /// `--partial`: keep partial files and continue them.
    pub partial: bool,
    /// `--bwlimit`, bytes per second.
    pub limit: Option<u64>,
    pub filters: Filters,
}

/// One source operand and where it goes.
#[derive(Clone)]
pub struct Root {
    pub src: Side,
    pub src_path: Vec<u8>,
    pub dst: Side,
    pub dst_path: Vec<u8>,
    /// Its name as filter rules see it (empty for `src/`).
    pub root_name: Vec<u8>,
}

/// One line of `--itemize-changes` (rsync's `YXcstpoguax` and the name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Itemized {
    /// The eleven characters, or `*deleting  ` for a deletion.
    pub code: String,
    /// The path under the destination, as rsync names it (a directory
    /// ends in `/`).
    pub name: Vec<u8>,
    /// A symlink's target.
    pub link: Option<Vec<u8>>,
}

/// A delta sender: makes `dst_path` equal to `src_path` by sending only
/// what differs. `Ok(bytes sent)`, or [`DeltaFailed`] to send it whole.
pub type Delta = Arc<
    dyn Fn(Pair) -> Pin<Box<dyn Future<Output = Result<DeltaSent, DeltaFailed>> + Send>>
        + Send
        + Sync,
>;

/// What a delta transfer sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeltaSent {
    /// Literal data sent (the rest was matched from the old file).
    pub literal: u64,
    pub matched: u64,
}

/// A delta that did not happen; `.0` says why (shown at `-v`).
#[derive(Debug, Clone)]
pub struct DeltaFailed(pub String);

/// What a sync did, for `--stats` and the exit status.
#[derive(Debug, Default, Clone)]
pub struct SyncSummary {
    /// Entries in the source lists (files, directories, symlinks).
    pub files: u64,
    pub dirs: u64,
    pub links: u64,
    /// Bytes of the regular files listed.
    pub total_size: u64,
    /// Entries created (files, directories, symlinks).
    pub created: u64,
    pub deleted: u64,
    /// Regular files sent (whole or by delta).
    pub transferred: u64,
    /// Their sizes.
    pub transferred_size: u64,
    /// Data sent whole or as delta literals.
    pub literal: u64,
    /// Data matched from the destination's old files.
    pub matched: u64,
    pub failures: u64,
    /// `--delete` was skipped because of errors.
    pub delete_skipped: bool,
    pub elapsed: Duration,
}

/// Why a sync could not start.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{0}: {1}; nothing was changed")]
    Source(String, SideError),
    #[error("{0}: more than {MAX_ENTRIES} entries; nothing was changed")]
    TooMany(String),
}

/// An entry of a listing.
type Listing = BTreeMap<Vec<u8>, Meta>;

#[derive(Default)]
struct Listed {
    entries: Listing,
    /// Symlink targets (with `-l`), by path.
    targets: BTreeMap<Vec<u8>, Vec<u8>>,
    /// What the filters left out (not entered when a directory).
    excluded: BTreeSet<Vec<u8>>,
    errors: Vec<String>,
}

/// Lists `root` on `side`: every entry under it by its path relative to
/// it (the root itself is `""`), skipping what the filters exclude
/// (`root_name` prefixes the paths the filters see) and not entering
/// excluded directories.
async fn list(
    side: &Side,
    root: &[u8],
    top: Meta,
    root_name: &[u8],
    filters: &Filters,
    recursive: bool,
) -> Result<Listed, SyncError> {
    let mut entries = Listing::new();
    let mut excluded = BTreeSet::new();
    let mut errors = Vec::new();
    entries.insert(Vec::new(), top);
    if top.kind != Kind::Dir || !recursive {
        return Ok(Listed {
            entries,
            excluded,
            errors,
            ..Listed::default()
        });
    }
    let mut queue: Vec<Vec<u8>> = vec![Vec::new()];
    let mut tasks = JoinSet::new();
    loop {
        while tasks.len() < LISTING_IN_FLIGHT {
            let Some(rel) = queue.pop() else { break };
            let (side, path) = (side.clone(), join_rel(root, &rel));
            tasks.spawn(async move {
                let r = side.read_dir(&path).await;
                (rel, path, r)
            });
        }
        let Some(done) = tasks.join_next().await else {
            break;
        };
        let Ok((rel, path, listed)) = done else {
            errors.push("a listing task ended unexpectedly".to_owned());
            continue;
        };
        let children = match listed {
            Ok(c) => c,
            Err(e) if rel.is_empty() => {
                return Err(SyncError::Source(shown(side, &path), e));
            }
            Err(e) => {
                errors.push(format!("{}: {e}", shown(side, &path)));
                continue;
            }
        };
        for (name, meta) in children {
            let child = join_rel(&rel, &name);
            let seen = join_rel(root_name, &child);
            if filters.excluded(&seen, meta.kind == Kind::Dir) {
                excluded.insert(child);
                continue;
            }
            if meta.kind == Kind::Dir {
                queue.push(child.clone());
            }
            entries.insert(child, meta);
            if entries.len() > MAX_ENTRIES {
                return Err(SyncError::TooMany(shown(side, root)));
            }
        }
    }
    Ok(Listed {
        entries,
        excluded,
        errors,
        ..Listed::default()
    })
}

/// `dir/name`, or `name` under the empty root.
fn join_rel(dir: &[u8], name: &[u8]) -> Vec<u8> {
    if dir.is_empty() {
        name.to_vec()
    } else if name.is_empty() {
        dir.to_vec()
    } else {
        join(dir, name)
    }
}

/// The plan for one root.
#[derive(Default)]
struct Plan {
    /// Entries of the destination to remove first (a different kind is
    /// in the way), deepest last.
    replace: Vec<(Vec<u8>, Kind)>,
    mkdirs: Vec<(Vec<u8>, Meta)>,
    files: Vec<(Vec<u8>, Meta, bool)>,
    links: Vec<(Vec<u8>, Meta)>,
    /// Files and symlinks whose data is current but whose mode or time
    /// is not.
    attrs: Vec<(Vec<u8>, Meta)>,
    /// Directories whose mode or times to set at the end.
    dir_attrs: Vec<(Vec<u8>, Meta)>,
    /// Every extraneous entry to delete, directories with their
    /// contents.
    deletes: Vec<(Vec<u8>, Kind)>,
    /// Extraneous directories kept: the filters protect something in
    /// them.
    kept: Vec<Vec<u8>>,
}

/// Syncs each root; `itemize` sees each change as it is decided (also
/// under `-n`), `progress` the copies.
pub async fn sync(
    roots: Vec<Root>,
    opts: &SyncOptions,
    delta: Option<Delta>,
    progress: Arc<dyn Progress>,
    itemize: &(dyn Fn(&Itemized) + Send + Sync),
) -> Result<SyncSummary, SyncError> {
    let started = Instant::now();
    let mut summary = SyncSummary::default();
    // Every source is read before anything changes (a typo must not
    // empty a destination); each root's two sides are listed at once.
    let mut listed = Vec::with_capacity(roots.len());
    for root in &roots {
        let (source, dest) = tokio::join!(list_source(root, opts), list_dest(root, opts));
        let source = source?;
        if source.is_none() {
            // rsync without -r: a directory operand is skipped.
            progress.note(&format!(
                "skipping directory {}",
                shown(&root.src, &root.src_path)
            ));
        }
        listed.push((source, dest));
    }
    for (root, (source, dest)) in roots.iter().zip(listed) {
        let Some(source) = source else { continue };
        for e in &source.errors {
            progress.error(e);
            summary.failures += 1;
        }
        let excluded_top =
            !root.root_name.is_empty() && top_excluded(root, &source.entries, &opts.filters);
        if excluded_top {
            continue;
        }
        let dest = match dest {
            Ok(d) => d,
            Err(e) => {
                progress.error(&e);
                summary.failures += 1;
                continue;
            }
        };
        for e in &dest.errors {
            progress.error(e);
            summary.failures += 1;
        }
        let source_errors = !source.errors.is_empty();
        run_root(
            root,
            &source,
            source_errors,
            dest,
            opts,
            delta.clone(),
            &progress,
            itemize,
            &mut summary,
        )
        .await;
    }
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// A root's source listing; `None` for a directory without `-r`.
async fn list_source(root: &Root, opts: &SyncOptions) -> Result<Option<Listed>, SyncError> {
    let top = root
        .src
        .lstat(&root.src_path)
        .await
        .map_err(|e| SyncError::Source(shown(&root.src, &root.src_path), e))?;
    if top.kind == Kind::Dir && !opts.recursive {
        return Ok(None);
    }
    let mut listed = list(
        &root.src,
        &root.src_path,
        top,
        &root.root_name,
        &opts.filters,
        opts.recursive,
    )
    .await?;
    if opts.links {
        listed.targets = link_targets(&root.src, &root.src_path, &listed.entries).await;
    }
    Ok(Some(listed))
}

/// A root's destination listing (empty when nothing is there yet), or
/// why it could not be listed.
async fn list_dest(root: &Root, opts: &SyncOptions) -> Result<Listed, String> {
    let dst = &root.dst;
    let top = match dst.lstat(&root.dst_path).await {
        Ok(top) => top,
        Err(e) if e.not_found() => return Ok(Listed::default()),
        Err(e) => return Err(format!("{}: {e}", shown(dst, &root.dst_path))),
    };
    let mut listed = list(
        dst,
        &root.dst_path,
        top,
        &root.root_name,
        &opts.filters,
        opts.recursive,
    )
    .await
    .map_err(|e| e.to_string())?;
    if opts.links {
        listed.targets = link_targets(dst, &root.dst_path, &listed.entries).await;
    }
    Ok(listed)
}

/// The targets of the symlinks of a listing, read many at once.
async fn link_targets(side: &Side, root: &[u8], entries: &Listing) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let links: Vec<Vec<u8>> = entries
        .iter()
        .filter(|(_, m)| m.kind == Kind::Symlink)
        .map(|(r, _)| r.clone())
        .collect();
    each(links, |rel| {
        let (side, path) = (side.clone(), join_rel(root, &rel));
        async move { (rel, side.readlink(&path).await) }
    })
    .await
    .into_iter()
    .filter_map(|(rel, t)| t.ok().map(|t| (rel, t)))
    .collect()
}

fn top_excluded(root: &Root, entries: &Listing, filters: &Filters) -> bool {
    let is_dir = entries
        .get(&Vec::new())
        .is_some_and(|m| m.kind == Kind::Dir);
    filters.excluded(&root.root_name, is_dir)
}

#[allow(clippy::too_many_arguments)]
async fn run_root(
    root: &Root,
    source: &Listed,
    source_errors: bool,
    dest: Listed,
    opts: &SyncOptions,
    delta: Option<Delta>,
    progress: &Arc<dyn Progress>,
    itemize: &(dyn Fn(&Itemized) + Send + Sync),
    summary: &mut SyncSummary,
) {
    let dst = &root.dst;
    let direction = if matches!(dst, Side::Remote(_)) {
        '<'
    } else {
        '>'
    };
    let mut plan = compare(root, source, &dest, opts, direction, itemize, summary).await;
    if opts.dry_run {
        return;
    }
    let before = summary.failures;
    let deletes = std::mem::take(&mut plan.deletes);
    let dirs = std::mem::take(&mut plan.dir_attrs);
    let kept = std::mem::take(&mut plan.kept);
    apply(root, plan, opts, delta, progress, summary).await;
    // Deletion only after everything else succeeded.
    if !deletes.is_empty() {
        if source_errors || summary.failures > before {
            summary.delete_skipped = true;
            progress
                .error("errors were found: nothing was deleted (run again once they are fixed)");
        } else {
            for rel in &kept {
                progress.note(&format!(
                    "cannot delete non-empty directory: {}",
                    Escaped::new(rel)
                ));
            }
            delete(root, &deletes, progress, summary).await;
        }
    }
    // Directories last: their contents are in and the extraneous
    // entries gone, so their times stay as set. Setting one directory's
    // attributes does not touch its parent's: all at once.
    let results = each(dirs, |(rel, meta)| {
        let (dst, path) = (dst.clone(), join_rel(&root.dst_path, &rel));
        let meta = keep(meta, opts);
        async move {
            dst.set_meta(&path, &meta)
                .await
                .map_err(|e| format!("{}: {e}", shown(&dst, &path)))
        }
    })
    .await;
    for r in results {
        if let Err(e) = r {
            summary.failures += 1;
            progress.error(&e);
        }
    }
}

/// rsync's quick check and the changes to make, itemized as decided.
#[allow(clippy::too_many_arguments)]
async fn compare(
    root: &Root,
    listed: &Listed,
    dest_listed: &Listed,
    opts: &SyncOptions,
    direction: char,
    itemize: &(dyn Fn(&Itemized) + Send + Sync),
    summary: &mut SyncSummary,
) -> Plan {
    let (source, dest, protected) = (&listed.entries, &dest_listed.entries, &dest_listed.excluded);
    let mut plan = Plan::default();
    let name = |rel: &[u8], dir: bool| -> Vec<u8> {
        let mut n = if rel.is_empty() {
            if root.root_name.is_empty() {
                b"./".to_vec()
            } else {
                root.root_name.clone()
            }
        } else {
            join_rel(&root.root_name, rel)
        };
        if dir && !n.ends_with(b"/") {
            n.push(b'/');
        }
        n
    };
    // Directories in which something changes get their times set again
    // at the end (creating an entry changes a directory's mtime).
    let mut touched: Vec<Vec<u8>> = Vec::new();
    for (rel, meta) in source {
        match meta.kind {
            Kind::File => summary.files += 1,
            Kind::Dir => summary.dirs += 1,
            Kind::Symlink => summary.links += 1,
            Kind::Other => {}
        }
        if meta.kind == Kind::File {
            summary.total_size += meta.size;
        }
        let old = dest.get(rel);
        // Something of another kind in the way goes first, but only for an
        // entry that is copied (without -l a symlink is skipped, and what
        // stands at its name stays).
        let copied = match meta.kind {
            Kind::Other => false,
            Kind::Symlink => opts.links,
            Kind::File | Kind::Dir => true,
        };
        let old = match old {
            Some(o) if o.kind != meta.kind && copied => {
                plan.replace.push((rel.clone(), o.kind));
                None
            }
            o => o.copied(),
        };
        match meta.kind {
            Kind::Dir => {
                if let Some(o) = old {
                    if attrs_differ(meta, &o, opts) {
                        plan.dir_attrs.push((rel.clone(), *meta));
                        itemize(&Itemized {
                            code: format!(".d{}", flags(meta, &o, opts, false)),
                            name: name(rel, true),
                            link: None,
                        });
                    }
                } else {
                    plan.mkdirs.push((rel.clone(), *meta));
                    summary.created += 1;
                    itemize(&Itemized {
                        code: "cd+++++++++".to_owned(),
                        name: name(rel, true),
                        link: None,
                    });
                    if opts.perms || opts.times {
                        plan.dir_attrs.push((rel.clone(), *meta));
                    }
                }
            }
            Kind::File => {
                let send = match old {
                    None => Some(true),
                    Some(o) => {
                        if opts.ignore_existing || (opts.update && o.mtime > meta.mtime) {
                            None
                        } else if opts.size_only {
                            (o.size != meta.size).then_some(false)
                        } else if opts.checksum {
                            let same = o.size == meta.size
                                && same_content(root, rel).await.unwrap_or(false);
                            (!same).then_some(false)
                        } else {
                            (o.size != meta.size || o.mtime != meta.mtime).then_some(false)
                        }
                    }
                };
                match (send, old) {
                    (Some(new), _) => {
                        let code = match old {
                            Some(o) if !new => {
                                format!("{direction}f{}", flags(meta, &o, opts, opts.checksum))
                            }
                            _ => format!("{direction}f+++++++++"),
                        };
                        if new {
                            summary.created += 1;
                        }
                        itemize(&Itemized {
                            code,
                            name: name(rel, false),
                            link: None,
                        });
                        plan.files.push((rel.clone(), *meta, old.is_some()));
                        touched.push(parent(rel));
                    }
                    (None, Some(o)) => {
                        if !opts.ignore_existing && attrs_differ(meta, &o, opts) {
                            itemize(&Itemized {
                                code: format!(".f{}", flags(meta, &o, opts, false)),
                                name: name(rel, false),
                                link: None,
                            });
                            plan.attrs.push((rel.clone(), *meta));
                        }
                    }
                    (None, None) => {}
                }
            }
            Kind::Symlink => {
                if !opts.links {
                    continue;
                }
                let target = listed.targets.get(rel).cloned().unwrap_or_default();
                let same = old.is_some() && dest_listed.targets.get(rel) == Some(&target);
                if !same {
                    if old.is_some() {
                        plan.replace.push((rel.clone(), Kind::Symlink));
                    } else {
                        summary.created += 1;
                    }
                    itemize(&Itemized {
                        code: "cL+++++++++".to_owned(),
                        name: name(rel, false),
                        link: Some(target.clone()),
                    });
                    plan.links.push((rel.clone(), *meta));
                    touched.push(parent(rel));
                }
            }
            Kind::Other => {}
        }
    }
    if opts.delete {
        for (rel, meta) in dest {
            if source.contains_key(rel) || rel.is_empty() {
                continue;
            }
            let holds_protected = meta.kind == Kind::Dir
                && protected
                    .range(rel.clone()..)
                    .next()
                    .is_some_and(|p| under(p, rel));
            if holds_protected {
                plan.kept.push(rel.clone());
                continue;
            }
            plan.deletes.push((rel.clone(), meta.kind));
            touched.push(parent(rel));
        }
        // rsync names each entry, the deepest first.
        for (rel, kind) in plan.deletes.iter().rev() {
            itemize(&Itemized {
                code: "*deleting  ".to_owned(),
                name: name(rel, *kind == Kind::Dir),
                link: None,
            });
        }
    }
    if opts.times {
        touched.sort();
        touched.dedup();
        for rel in touched {
            if let Some(m) = source.get(&rel).filter(|m| m.kind == Kind::Dir)
                && !plan.dir_attrs.iter().any(|(r, _)| *r == rel)
            {
                plan.dir_attrs.push((rel, *m));
            }
        }
    }
    plan
}

/// The directory holding `rel` (`""` at the top).
fn parent(rel: &[u8]) -> Vec<u8> {
    match rel.iter().rposition(|&b| b == b'/') {
        Some(i) => rel[..i].to_vec(),
        None => Vec::new(),
    }
}

/// Whether `path` is inside directory `dir`.
fn under(path: &[u8], dir: &[u8]) -> bool {
    path.len() > dir.len() && path.starts_with(dir) && path[dir.len()] == b'/'
}

fn attrs_differ(src: &Meta, dst: &Meta, opts: &SyncOptions) -> bool {
    (opts.perms && src.mode != dst.mode)
        || (opts.times && src.kind != Kind::Symlink && src.mtime != dst.mtime)
}

/// rsync's nine change letters after `YX`: checksum, size, time, perms,
/// owner, group, (u)time of use, ACL, xattr.
fn flags(src: &Meta, dst: &Meta, opts: &SyncOptions, checksum: bool) -> String {
    let c = if checksum { 'c' } else { '.' };
    let s = if src.size != dst.size && src.kind == Kind::File {
        's'
    } else {
        '.'
    };
    let t = if src.mtime == dst.mtime {
        '.'
    } else if opts.times {
        't'
    } else {
        'T'
    };
    let p = if opts.perms && src.mode != dst.mode {
        'p'
    } else {
        '.'
    };
    format!("{c}{s}{t}{p}.....")
}

/// Whether a file's two copies hash the same (`-c`), reading both.
async fn same_content(root: &Root, rel: &[u8]) -> Result<bool, SideError> {
    let (from, to) = (join_rel(&root.src_path, rel), join_rel(&root.dst_path, rel));
    let (a, b) = tokio::join!(hash(&root.src, &from), hash(&root.dst, &to));
    Ok(a? == b?)
}

async fn hash(side: &Side, path: &[u8]) -> Result<[u8; 32], SideError> {
    const CHUNK: u32 = 256 * 1024;
    let (chunk, _) = side.chunk();
    let chunk = chunk.clamp(1, CHUNK);
    let f = side.open_read(path, 0, 1).await?;
    let mut h = blake3::Hasher::new();
    let mut at = 0u64;
    let result = loop {
        match f.read_at(0, at, chunk).await {
            Ok(d) if d.is_empty() => break Ok(()),
            Ok(d) => {
                at += d.len() as u64;
                h.update(&d);
            }
            Err(e) => break Err(e),
        }
    };
    f.close().await;
    result.map(|()| *h.finalize().as_bytes())
}

/// Carries out a plan but its deletions and directory attributes.
async fn apply(
    root: &Root,
    plan: Plan,
    opts: &SyncOptions,
    delta: Option<Delta>,
    progress: &Arc<dyn Progress>,
    summary: &mut SyncSummary,
) {
    let (src, dst) = (&root.src, &root.dst);
    let at = |rel: &[u8]| join_rel(&root.dst_path, rel);
    let failures = AtomicU64::new(0);
    let fail = |m: String| {
        failures.fetch_add(1, Ordering::Relaxed);
        progress.error(&m);
    };
    for (rel, kind) in &plan.replace {
        if let Err(e) = remove_tree(dst, &at(rel), *kind, opts.delete).await {
            fail(e);
        }
    }
    // Parents before children: one depth at a time, each depth at once.
    let mut by_depth: BTreeMap<usize, Vec<(Vec<u8>, Meta)>> = BTreeMap::new();
    for (rel, meta) in plan.mkdirs {
        let depth = rel.iter().filter(|&&b| b == b'/').count() + usize::from(!rel.is_empty());
        by_depth.entry(depth).or_default().push((rel, meta));
    }
    for (_, dirs) in by_depth {
        let results = each(dirs, |(rel, meta)| {
            let (dst, path) = (dst.clone(), at(&rel));
            async move {
                dst.mkdir(&path, meta.mode | 0o700)
                    .await
                    .map_err(|e| format!("{}: {e}", shown(&dst, &path)))
            }
        })
        .await;
        for r in results {
            if let Err(e) = r {
                fail(e);
            }
        }
    }
    let copy_opts = Options {
        recursive: false,
        preserve: opts.times || opts.perms,
        resume: opts.partial,
        limit: opts.limit,
        files_in_flight: 0,
    };
    let pair = |rel: &[u8], meta: Meta| Pair {
        src: src.clone(),
        src_path: join_rel(&root.src_path, rel),
        meta: keep(meta, opts),
        dst: dst.clone(),
        dst_path: at(rel),
    };
    let mut whole = Vec::new();
    let mut by_delta = Vec::new();
    for (rel, meta, existed) in &plan.files {
        summary.transferred += 1;
        summary.transferred_size += meta.size;
        if *existed && delta.is_some() && meta.size >= DELTA_FROM {
            by_delta.push((rel.clone(), *meta));
        } else {
            whole.push(pair(rel, *meta));
        }
    }
    // Delta transfers and whole files at once: the helper works one file
    // at a time while SFTP moves many.
    let whole_bytes: u64 = whole.iter().map(|p| p.meta.size).sum();
    let deltas = async {
        let Some(delta) = &delta else {
            return Vec::new();
        };
        each(by_delta, |(rel, meta)| {
            let p = pair(&rel, meta);
            let delta = delta.clone();
            async move { (rel, meta, delta(p).await) }
        })
        .await
    };
    let wholes = async {
        if whole.is_empty() {
            None
        } else {
            Some(copy::copy_pairs(whole, copy_opts.clone(), progress.clone()).await)
        }
    };
    let (sent, copied) = tokio::join!(deltas, wholes);
    summary.literal += whole_bytes;
    summary.failures += copied.map_or(0, |c| c.failures);
    let mut again = Vec::new();
    for (rel, meta, r) in sent {
        match r {
            Ok(s) => {
                summary.literal += s.literal;
                summary.matched += s.matched;
            }
            Err(DeltaFailed(why)) => {
                tracing::debug!("{}: sent whole: {why}", Escaped::new(&rel));
                again.push(pair(&rel, meta));
            }
        }
    }
    if !again.is_empty() {
        summary.literal += again.iter().map(|p| p.meta.size).sum::<u64>();
        let copied = copy::copy_pairs(again, copy_opts, progress.clone()).await;
        summary.failures += copied.failures;
    }
    let links = each(plan.links, |(rel, _)| {
        let (src, dst) = (src.clone(), dst.clone());
        let (from, to) = (join_rel(&root.src_path, &rel), at(&rel));
        async move {
            let target = src
                .readlink(&from)
                .await
                .map_err(|e| format!("{}: {e}", shown(&src, &from)))?;
            dst.symlink(&target, &to)
                .await
                .map_err(|e| format!("{}: {e}", shown(&dst, &to)))
        }
    })
    .await;
    let attrs = each(plan.attrs, |(rel, meta)| {
        let (dst, path, meta) = (dst.clone(), at(&rel), keep(meta, opts));
        async move {
            dst.set_meta(&path, &meta)
                .await
                .map_err(|e| format!("{}: {e}", shown(&dst, &path)))
        }
    })
    .await;
    for r in links.into_iter().chain(attrs) {
        if let Err(e) = r {
            fail(e);
        }
    }
    summary.failures += failures.load(Ordering::Relaxed);
}

/// The metadata to give a copy: the mode always (a new file takes the
/// source's), the times only with `-t` (a negative atime says "mode
/// only" to [`Side::set_meta`]).
fn keep(mut meta: Meta, opts: &SyncOptions) -> Meta {
    if !opts.times {
        meta.atime = -1;
    } else {
        // rsync sets the modification time; the access time follows it.
        meta.atime = meta.mtime.max(0);
    }
    meta
}

/// Runs `f` on each item, [`OPS_IN_FLIGHT`] at once, results in order.
async fn each<T, R, F, Fut>(items: Vec<T>, f: F) -> Vec<R>
where
    F: Fn(T) -> Fut,
    Fut: Future<Output = R>,
{
    use futures_util::StreamExt as _;
    futures_util::stream::iter(items.into_iter().map(f))
        .buffered(OPS_IN_FLIGHT)
        .collect()
        .await
}

/// Removes what is in the way at `path`: a file or symlink, an empty
/// directory, or (with `--delete`) a whole directory.
async fn remove_tree(side: &Side, path: &[u8], kind: Kind, recursive: bool) -> Result<(), String> {
    let words = |e: SideError| format!("{}: {e}", shown(side, path));
    if kind != Kind::Dir {
        return side.remove(path).await.map_err(words);
    }
    match side.rmdir(path).await {
        Ok(()) => Ok(()),
        Err(_) if recursive => {
            let top = side.lstat(path).await.map_err(words)?;
            let listed = list(side, path, top, b"", &Filters::default(), true)
                .await
                .map_err(|e| e.to_string())?;
            if let Some(e) = listed.errors.into_iter().next() {
                return Err(e);
            }
            for (rel, meta) in listed.entries.iter().rev() {
                let p = join_rel(path, rel);
                let r = if meta.kind == Kind::Dir {
                    side.rmdir(&p).await
                } else {
                    side.remove(&p).await
                };
                r.map_err(|e| format!("{}: {e}", shown(side, &p)))?;
            }
            Ok(())
        }
        Err(e) => Err(format!(
            "{}: {e} (a directory is in the way; --delete replaces it)",
            shown(side, path)
        )),
    }
}

/// Deletes the extraneous entries (each directory with what is in it).
async fn delete(
    root: &Root,
    deletes: &[(Vec<u8>, Kind)],
    progress: &Arc<dyn Progress>,
    summary: &mut SyncSummary,
) {
    // Deepest first: a directory's contents before it.
    let mut all: Vec<(&Vec<u8>, Kind)> = deletes.iter().map(|(r, k)| (r, *k)).collect();
    all.sort_by(|a, b| b.0.cmp(a.0));
    // Files at once; directories after, deepest first.
    let (dirs, files): (Vec<_>, Vec<_>) = all.into_iter().partition(|(_, k)| *k == Kind::Dir);
    let dst = &root.dst;
    let results = each(files, |(rel, _)| {
        let (dst, path) = (dst.clone(), join_rel(&root.dst_path, rel));
        async move {
            dst.remove(&path)
                .await
                .map_err(|e| format!("{}: {e}", shown(&dst, &path)))
        }
    })
    .await;
    for r in results {
        match r {
            Ok(()) => summary.deleted += 1,
            Err(e) => {
                summary.failures += 1;
                progress.error(&e);
            }
        }
    }
    for (rel, _) in dirs {
        let path = join_rel(&root.dst_path, rel);
        match dst.rmdir(&path).await {
            Ok(()) => summary.deleted += 1,
            Err(e) => {
                summary.failures += 1;
                progress.error(&format!("{}: {e}", shown(dst, &path)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn under_is_a_path_prefix_not_a_string_prefix() {
        assert!(under(b"a/b", b"a"));
        assert!(!under(b"ab", b"a"));
        assert!(!under(b"a", b"a"));
        assert_eq!(parent(b"a/b/c"), b"a/b");
        assert_eq!(parent(b"a"), b"");
    }

    #[test]
    fn change_letters_are_rsyncs() {
        let m = |size, mtime, mode| Meta {
            kind: Kind::File,
            size,
            mode,
            atime: 0,
            mtime,
        };
        let opts = SyncOptions {
            times: true,
            perms: true,
            ..SyncOptions::default()
        };
        assert_eq!(
            flags(&m(1, 5, 0o644), &m(2, 6, 0o600), &opts, false),
            ".stp....."
        );
        assert_eq!(
            flags(&m(1, 5, 0o644), &m(1, 5, 0o644), &opts, true),
            "c........"
        );
        let plain = SyncOptions::default();
        assert_eq!(
            flags(&m(1, 5, 0o644), &m(1, 6, 0o600), &plain, false),
            "..T......"
        );
    }
}
