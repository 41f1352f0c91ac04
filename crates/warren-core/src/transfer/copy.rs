//! What to copy where, and copying one file.
//!
//! Operands and targets follow scp: several sources need a directory
//! target; a source goes *into* a target that is a directory and *becomes*
//! a target that is not; directories need `-r`. Unlike scp, a symlink met
//! by `-r` is copied as a symlink (as `cp -a` and `rsync -a` do): scp
//! follows it, and loops on a cycle. Of several sources with one name,
//! only the first is copied into the directory target (the others fail,
//! as in GNU cp): files are copied at once, and scp's rule, the last one
//! wins, has no order to go by.
//!
//! One file is copied to `.NAME.warren-partial` beside its target, made
//! durable, its size checked, and renamed into place, so the target name
//! only ever holds a whole file, even after `kill -9`. Its chunks are
//! handed out in order from one cursor to up to [`MAX_LOOPS`] workers
//! spread over the lanes, so at any moment everything below the lowest
//! chunk in flight is written: an interrupted partial file is whole up to
//! its length less [`RESUME_SLACK`]. `--resume` starts there, after
//! checking the block before that point against the source.

use std::os::unix::ffi::OsStrExt as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{Mutex, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use warren_wire::Escaped;

use super::Progress;
use super::client::MAX_CHUNK;
use super::side::{Kind, Meta, Side, SideError, join, shown};

/// Workers per file, at most: chunks in flight for one file.
pub const MAX_LOOPS: u64 = 64;
/// How far below a partial file's length a resumed copy starts.
pub const RESUME_SLACK: u64 = MAX_LOOPS * MAX_CHUNK as u64;
/// The block compared before resuming.
const RESUME_CHECK: u64 = 64 * 1024;
/// A file gets one more lane per this many bytes.
const BYTES_PER_LANE: u64 = 8 * 1024 * 1024;

/// How to copy.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `-r`: directories and their contents.
    pub recursive: bool,
    /// `-p`: modes and times.
    pub preserve: bool,
    /// `--resume`: continue partial files, and keep them on failure.
    pub resume: bool,
    /// `-l`: at most this many bytes per second.
    pub limit: Option<u64>,
    /// Files copied at once (0: a default from the lanes).
    pub files_in_flight: usize,
}

/// One end of a copy: a side and a path on it.
#[derive(Clone)]
pub struct Endpoint {
    pub side: Side,
    pub path: Vec<u8>,
    /// As the user typed it, for messages.
    pub shown: String,
}

/// What a copy did.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub files: u64,
    pub dirs: u64,
    pub links: u64,
    /// File bytes written to targets (a resumed file counts what was
    /// sent).
    pub bytes: u64,
    pub failures: u64,
    pub elapsed: Duration,
}

struct Engine {
    opts: Options,
    progress: Arc<dyn Progress>,
    files: Arc<Semaphore>,
    dirs: Arc<Semaphore>,
    limiter: Option<Limiter>,
    next_lane: AtomicUsize,
    totals: Totals,
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
    /// Directories to give their mode and times once their contents are
    /// in (`-p`), deepest last.
    dir_meta: Mutex<Vec<(Side, Vec<u8>, Meta)>>,
    /// Cancelled when a side's session is lost: nothing more can be done
    /// there, so no more files are started, and the loss is said once.
    stop: CancellationToken,
}

#[derive(Default)]
struct Totals {
    files: AtomicU64,
    dirs: AtomicU64,
    links: AtomicU64,
    bytes: AtomicU64,
    failures: AtomicU64,
}

/// Copies `sources` to `target` as scp would, reporting to `progress`.
pub async fn copy(
    sources: Vec<Endpoint>,
    target: Endpoint,
    opts: Options,
    progress: Arc<dyn Progress>,
) -> Summary {
    let started = Instant::now();
    let lanes = sources
        .iter()
        .map(|s| s.side.lanes())
        .chain([target.side.lanes()])
        .min()
        .unwrap_or(1);
    let engine = Engine::new(opts, progress, lanes);
    engine.run(sources, target).await;
    engine.drain(started).await
}

/// One file to copy to an exact path (`warren sync` decides the pairs).
pub struct Pair {
    pub src: Side,
    pub src_path: Vec<u8>,
    /// The source's metadata, as listed.
    pub meta: Meta,
    pub dst: Side,
    pub dst_path: Vec<u8>,
}

/// Copies each file of `pairs` to its exact target path (no scp rules:
/// the caller planned them), many at once, each atomic as in [`copy`].
pub async fn copy_pairs(pairs: Vec<Pair>, opts: Options, progress: Arc<dyn Progress>) -> Summary {
    let started = Instant::now();
    let lanes = pairs
        .iter()
        .map(|p| p.src.lanes().min(p.dst.lanes()))
        .min()
        .unwrap_or(1);
    let engine = Engine::new(opts, progress, lanes);
    for p in pairs {
        engine
            .clone()
            .entry(p.src, p.src_path, p.meta, p.dst, p.dst_path, false)
            .await;
    }
    engine.drain(started).await
}

impl Engine {
    fn new(opts: Options, progress: Arc<dyn Progress>, lanes: usize) -> Arc<Engine> {
        let lanes = lanes.clamp(1, 64);
        let files_in_flight = match opts.files_in_flight {
            0 => (lanes * 32).clamp(32, 256),
            n => n,
        };
        Arc::new(Engine {
            limiter: opts.limit.map(Limiter::new),
            opts,
            progress,
            files: Arc::new(Semaphore::new(files_in_flight)),
            dirs: Arc::new(Semaphore::new(16)),
            next_lane: AtomicUsize::new(0),
            totals: Totals::default(),
            tasks: std::sync::Mutex::new(Vec::new()),
            dir_meta: Mutex::new(Vec::new()),
            stop: CancellationToken::new(),
        })
    }

    /// Waits for every task, gives directories their metadata, and
    /// totals.
    async fn drain(self: &Arc<Self>, started: Instant) -> Summary {
        let engine = self;
        // Every spawned file and directory task, including those spawned by
        // others while waiting.
        loop {
            let batch: Vec<_> = std::mem::take(
                &mut *engine
                    .tasks
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
            if batch.is_empty() {
                break;
            }
            for t in batch {
                if t.await.is_err() {
                    engine.fail("a copy task ended unexpectedly".to_owned());
                }
            }
        }
        let dirs = std::mem::take(&mut *engine.dir_meta.lock().await);
        for (side, path, meta) in dirs.into_iter().rev() {
            if let Err(e) = side.set_meta(&path, &meta).await {
                engine.failed(Failure::at(&side, &path, &e));
            }
        }
        let t = &engine.totals;
        Summary {
            files: t.files.load(Ordering::Relaxed),
            dirs: t.dirs.load(Ordering::Relaxed),
            links: t.links.load(Ordering::Relaxed),
            bytes: t.bytes.load(Ordering::Relaxed),
            failures: t.failures.load(Ordering::Relaxed),
            elapsed: started.elapsed(),
        }
    }

    fn fail(&self, message: String) {
        self.totals.failures.fetch_add(1, Ordering::Relaxed);
        self.progress.error(&message);
    }

    /// A failure on one path. A lost session is said once, and stops the
    /// copy: every file in flight on it fails the same way.
    fn failed(&self, f: Failure) {
        if !f.fatal {
            return self.fail(f.message);
        }
        if self.stop.is_cancelled() {
            self.totals.failures.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.stop.cancel();
        self.fail(format!("{}; stopping", f.message));
    }

    fn spawn(&self, f: impl std::future::Future<Output = ()> + Send + 'static) {
        let t = tokio::spawn(f);
        self.tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(t);
    }

    async fn run(self: &Arc<Self>, sources: Vec<Endpoint>, target: Endpoint) {
        let target_meta = target.side.stat(&target.path).await;
        let into_dir = matches!(&target_meta, Ok(m) if m.kind == Kind::Dir);
        if sources.len() > 1 && !into_dir {
            let why = match &target_meta {
                Err(e) => e.to_string(),
                Ok(_) => "Not a directory".to_owned(),
            };
            self.fail(format!(
                "{}: {why} (several sources need a directory to copy into)",
                target.shown
            ));
            return;
        }
        // Sources are copied at once: two with one name would write the
        // same partial file together and leave a mix of both in place.
        let mut taken: Vec<(Vec<u8>, String)> = Vec::new();
        for source in sources {
            let meta = if self.opts.recursive {
                source.side.lstat(&source.path).await
            } else {
                source.side.stat(&source.path).await
            };
            let meta = match meta {
                Ok(m) => m,
                Err(e) => {
                    self.fail(format!("{}: {e}", source.shown));
                    continue;
                }
            };
            let dest = if into_dir {
                match base_name(&source).await {
                    Some(name) => join(&target.path, &name),
                    None => {
                        self.fail(format!("{}: cannot tell its name", source.shown));
                        continue;
                    }
                }
            } else {
                target.path.clone()
            };
            if let Some((_, first)) = taken.iter().find(|(d, _)| *d == dest) {
                self.fail(format!(
                    "{}: not copied: {first} is copied to {} too",
                    source.shown,
                    Escaped::new(&dest)
                ));
                continue;
            }
            taken.push((dest.clone(), source.shown.clone()));
            self.clone()
                .entry(
                    source.side.clone(),
                    source.path.clone(),
                    meta,
                    target.side.clone(),
                    dest,
                    true,
                )
                .await;
        }
    }

    /// Copies one entry of any kind; directories recurse.
    fn entry(
        self: Arc<Self>,
        src: Side,
        src_path: Vec<u8>,
        meta: Meta,
        dst: Side,
        dst_path: Vec<u8>,
        top: bool,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        Box::pin(async move {
            if self.stop.is_cancelled() {
                return;
            }
            let shown = shown(&src, &src_path);
            match meta.kind {
                Kind::File => {
                    let permit = self.files.clone().acquire_owned().await;
                    let engine = self.clone();
                    self.spawn(async move {
                        let _permit = permit;
                        engine.file(src, src_path, meta, dst, dst_path).await;
                    });
                }
                Kind::Dir if !self.opts.recursive => {
                    self.fail(format!("{shown}: is a directory (copy it with -r)"));
                }
                Kind::Dir => {
                    let engine = self.clone();
                    let walk = async move {
                        engine.dir(src, src_path, meta, dst, dst_path).await;
                    };
                    if top {
                        walk.await;
                    } else {
                        self.spawn(walk);
                    }
                }
                Kind::Symlink => match src.readlink(&src_path).await {
                    Ok(to) => match dst.symlink(&to, &dst_path).await {
                        Ok(()) => {
                            self.totals.links.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => self.failed(Failure::at(&dst, &dst_path, &e)),
                    },
                    Err(e) => self.failed(Failure::at(&src, &src_path, &e)),
                },
                Kind::Other => self.fail(format!("{shown}: not a regular file")),
            }
        })
    }

    async fn dir(
        self: Arc<Self>,
        src: Side,
        src_path: Vec<u8>,
        meta: Meta,
        dst: Side,
        dst_path: Vec<u8>,
    ) {
        let listed = {
            let _slot = self.dirs.acquire().await;
            if let Err(e) = dst.mkdir(&dst_path, meta.mode | 0o700).await {
                self.failed(Failure::at(&dst, &dst_path, &e));
                return;
            }
            src.read_dir(&src_path).await
        };
        let entries = match listed {
            Ok(e) => e,
            Err(e) => {
                self.failed(Failure::at(&src, &src_path, &e));
                return;
            }
        };
        self.totals.dirs.fetch_add(1, Ordering::Relaxed);
        if self.opts.preserve || meta.mode & 0o700 != 0o700 {
            let mut m = meta;
            if !self.opts.preserve {
                // Only the mode: the times stay those of the copy.
                m.atime = -1;
            }
            self.dir_meta
                .lock()
                .await
                .push((dst.clone(), dst_path.clone(), m));
        }
        for (name, m) in entries {
            self.clone()
                .entry(
                    src.clone(),
                    join(&src_path, &name),
                    m,
                    dst.clone(),
                    join(&dst_path, &name),
                    false,
                )
                .await;
        }
    }

    async fn file(&self, src: Side, src_path: Vec<u8>, meta: Meta, dst: Side, dst_path: Vec<u8>) {
        let result = self
            .file_inner(&src, &src_path, meta, &dst, &dst_path)
            .await;
        match result {
            Ok(sent) => {
                self.totals.files.fetch_add(1, Ordering::Relaxed);
                self.totals.bytes.fetch_add(sent, Ordering::Relaxed);
            }
            Err(f) => self.failed(f),
        }
    }

    /// Copies one file; `Ok(bytes sent)`.
    async fn file_inner(
        &self,
        src: &Side,
        src_path: &[u8],
        meta: Meta,
        dst: &Side,
        dst_path: &[u8],
    ) -> Result<u64, Failure> {
        let size = meta.size;
        let lanes = (size / BYTES_PER_LANE)
            .clamp(1, 64)
            .min(src.lanes().min(dst.lanes()) as u64) as usize;
        let mut job = FileJob {
            src,
            src_path,
            dst,
            dst_path,
            meta,
            temp: partial_name(dst_path),
            plan: ChunkPlan {
                from: 0,
                size,
                chunk: u64::from(src.chunk().0.min(dst.chunk().1).max(1)),
                lanes,
                first: self.next_lane.fetch_add(lanes, Ordering::Relaxed),
                id: 0,
            },
        };
        if self.opts.resume {
            job.plan.from = self
                .resume_point(src, src_path, dst, &job.temp, size, job.plan.first)
                .await;
        }
        job.plan.id = self.progress.start(dst_path, size, job.plan.from);
        let done = self.to_partial(&job).await;
        let done = match done {
            Ok(()) => dst
                .rename_over(&job.temp, dst_path)
                .await
                .map_err(|e| job.at_dst(&e)),
            Err(e) => Err(e),
        };
        if let Err(e) = done {
            self.progress.finish(job.plan.id, false);
            self.drop_partial(&job).await;
            return Err(e);
        }
        if let (true, Side::Local) = (self.opts.preserve, dst) {
            // Locally the times go on after the rename (the descriptor is
            // closed by then); remotely FSETSTAT set them.
            if let Err(e) = dst.set_meta(dst_path, &meta).await {
                self.progress.finish(job.plan.id, false);
                return Err(job.at_dst(&e));
            }
        }
        self.progress.finish(job.plan.id, true);
        Ok(size - job.plan.from)
    }

    /// Copies the file's data to its partial name, made durable, checked
    /// and closed.
    async fn to_partial(&self, job: &FileJob<'_>) -> Result<(), Failure> {
        // The temporary file is readable and writable by its owner whatever
        // the source's mode: every lane after the first opens it again, and
        // so does --resume. The bits added go again before the rename.
        let mode = job.meta.mode & 0o777;
        let added = 0o600 & !mode;
        let plan = job.plan;
        // Both ends open at once: one round trip, not two.
        let (source, target) = tokio::join!(
            job.src.open_read(job.src_path, plan.first, plan.lanes),
            job.dst.open_write(
                &job.temp,
                mode | added,
                plan.from == 0,
                plan.first,
                plan.lanes
            )
        );
        let (source, target) = match (source, target) {
            (Ok(s), Ok(t)) => (Arc::new(s), Arc::new(t)),
            (s, t) => {
                let error = match (&s, &t) {
                    (Err(e), _) => job.at_src(e),
                    (_, Err(e)) => job.at_dst(e),
                    _ => Failure::plain(String::new()),
                };
                if let Ok(s) = s {
                    s.release();
                }
                if let Ok(t) = t {
                    t.close().await;
                }
                return Err(error);
            }
        };
        let moved = self.move_data(job, &source, &target).await;
        if let Ok(s) = Arc::try_unwrap(source) {
            s.release();
        }
        let tail = match moved {
            Ok(tail) => tail,
            Err(e) => {
                close(target).await;
                return Err(job.chunk_error(e));
            }
        };
        let tail_len = tail.as_ref().map_or(0, |(_, d)| d.len() as u64);
        let preserve = self.opts.preserve.then_some(job.meta);
        let Ok(target) = Arc::try_unwrap(target) else {
            return Err(Failure::plain(format!(
                "{}: still in use",
                shown(job.dst, job.dst_path)
            )));
        };
        target
            .finish(tail, plan.size, preserve.as_ref())
            .await
            .map_err(|e| job.at_dst(&e))?;
        self.progress.advance(plan.id, tail_len);
        if added != 0 && preserve.is_none() {
            clear_mode_bits(job.dst, &job.temp, added)
                .await
                .map_err(|e| job.at_dst(&e))?;
        }
        Ok(())
    }

    /// Moves the data: a file of one chunk is read and handed back as the
    /// tail to write with the finish (one round trip for both); a larger
    /// one goes through the workers.
    async fn move_data(
        &self,
        job: &FileJob<'_>,
        source: &Arc<super::side::Open>,
        target: &Arc<super::side::Open>,
    ) -> Result<Option<(u64, Bytes)>, ChunkError> {
        let plan = job.plan;
        let left = plan.size - plan.from;
        if left == 0 || left > plan.chunk {
            return match self.chunks(job.src, job.dst, source, target, plan).await {
                Some(e) => Err(e),
                None => Ok(None),
            };
        }
        let len = u32::try_from(left).unwrap_or(u32::MAX);
        let slot = job.src.permit(plan.first).await;
        let data = source
            .read_at(0, plan.from, len)
            .await
            .map_err(ChunkError::Read)?;
        drop(slot);
        if data.len() as u64 != left {
            return Err(ChunkError::Short(plan.from + data.len() as u64));
        }
        self.limit(left).await;
        Ok(Some((plan.from, data)))
    }

    /// After a failure: the partial file is kept for `--resume`, else
    /// removed.
    async fn drop_partial(&self, job: &FileJob<'_>) {
        if self.opts.resume {
            self.progress.note(&format!(
                "{}: the partial copy is kept as {} for --resume",
                Escaped::new(job.dst_path),
                Escaped::new(&job.temp)
            ));
        } else {
            let _ = job.dst.remove(&job.temp).await;
        }
    }

    async fn limit(&self, bytes: u64) {
        if let Some(l) = &self.limiter {
            l.take(bytes).await;
        }
    }

    /// Where a partial copy can go on from, after checking the block
    /// before that point against the source; 0 to start over.
    async fn resume_point(
        &self,
        src: &Side,
        src_path: &[u8],
        dst: &Side,
        temp: &[u8],
        size: u64,
        lane: usize,
    ) -> u64 {
        let Ok(partial) = dst.lstat(temp).await else {
            return 0;
        };
        if partial.kind != Kind::File || partial.size > size {
            return 0;
        }
        let point = partial.size.saturating_sub(RESUME_SLACK);
        if point == 0 {
            return 0;
        }
        let check = RESUME_CHECK.min(point);
        let at = point - check;
        let len = u32::try_from(check).unwrap_or(u32::MAX);
        let (Ok(a), Ok(b)) = (
            src.open_read(src_path, lane, 1).await,
            dst.open_read(temp, lane, 1).await,
        ) else {
            return 0;
        };
        let (x, y) = (a.read_at(0, at, len).await, b.read_at(0, at, len).await);
        a.close().await;
        b.close().await;
        match (x, y) {
            (Ok(x), Ok(y)) if x.len() as u64 == check && x == y => {
                self.progress.note(&format!(
                    "{}: resuming at {point} of {size} bytes",
                    Escaped::new(src_path)
                ));
                point
            }
            _ => {
                self.progress.note(&format!(
                    "{}: the partial copy does not match the source; starting over",
                    Escaped::new(src_path)
                ));
                0
            }
        }
    }

    /// Moves the chunks `plan` covers; the first error, if any.
    async fn chunks(
        &self,
        src: &Side,
        dst: &Side,
        source: &Arc<super::side::Open>,
        target: &Arc<super::side::Open>,
        plan: ChunkPlan,
    ) -> Option<ChunkError> {
        let remaining = plan.size - plan.from;
        let count = remaining.div_ceil(plan.chunk);
        if count == 0 {
            return None;
        }
        let cursor = Arc::new(AtomicU64::new(0));
        // Cancelled by the first failure: the other workers stop, waiting
        // for the rate limit included.
        let stop = CancellationToken::new();
        let first_error: Arc<std::sync::Mutex<Option<ChunkError>>> = Arc::default();
        let flusher = Arc::new(Flusher::default());
        let loops = count.min(MAX_LOOPS);
        let mut workers = Vec::with_capacity(loops as usize);
        for w in 0..loops {
            let (src, dst) = (src.clone(), dst.clone());
            let (source, target) = (source.clone(), target.clone());
            let (cursor, stop, first_error) = (cursor.clone(), stop.clone(), first_error.clone());
            let flusher = flusher.clone();
            let progress = self.progress.clone();
            let limiter = self.limiter.clone();
            let lane = (w as usize) % plan.lanes;
            workers.push(tokio::spawn(async move {
                while !stop.is_cancelled() {
                    let i = cursor.fetch_add(1, Ordering::Relaxed);
                    let offset = plan.from + i * plan.chunk;
                    if offset >= plan.size {
                        break;
                    }
                    let len = plan.chunk.min(plan.size - offset);
                    if let Some(l) = &limiter {
                        tokio::select! {
                            () = l.take(len) => {}
                            () = stop.cancelled() => break,
                        }
                    }
                    let moved = move_chunk(
                        &src,
                        &dst,
                        &source,
                        &target,
                        plan.first + lane,
                        lane,
                        offset,
                        len,
                    )
                    .await;
                    match moved {
                        Ok(()) => {
                            progress.advance(plan.id, len);
                            flusher.wrote(len, &target);
                        }
                        Err(e) => {
                            first_error
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner)
                                .get_or_insert(e);
                            stop.cancel();
                            break;
                        }
                    }
                }
            }));
        }
        let mut ended = true;
        for w in workers {
            ended &= w.await.is_ok();
        }
        flusher.settle().await;
        if !ended {
            return Some(ChunkError::Worker);
        }
        first_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }
}

/// One file being copied.
struct FileJob<'a> {
    src: &'a Side,
    src_path: &'a [u8],
    dst: &'a Side,
    dst_path: &'a [u8],
    meta: Meta,
    /// `.NAME.warren-partial` beside the target.
    temp: Vec<u8>,
    plan: ChunkPlan,
}

impl FileJob<'_> {
    fn at_src(&self, e: &SideError) -> Failure {
        Failure::at(self.src, self.src_path, e)
    }

    fn at_dst(&self, e: &SideError) -> Failure {
        Failure::at(self.dst, self.dst_path, e)
    }

    /// A chunk's failure, naming the file it concerns.
    fn chunk_error(&self, e: ChunkError) -> Failure {
        let (src, dst) = (
            shown(self.src, self.src_path),
            shown(self.dst, self.dst_path),
        );
        match e {
            ChunkError::Read(e) => Failure {
                message: format!("{src}: reading: {e}"),
                fatal: e.fatal(),
            },
            ChunkError::Write(e) => Failure {
                message: format!("{dst}: writing: {e}"),
                fatal: e.fatal(),
            },
            ChunkError::Short(at) => Failure::plain(format!(
                "{src}: the source ended at {at} bytes: it changed while being copied"
            )),
            ChunkError::Worker => {
                Failure::plain(format!("{dst}: a copy worker ended unexpectedly"))
            }
        }
    }
}

/// A failure, worded for the user, and whether it ends the copy (a lost
/// session).
struct Failure {
    message: String,
    fatal: bool,
}

impl Failure {
    fn at(side: &Side, path: &[u8], e: &SideError) -> Failure {
        Failure {
            message: format!("{}: {e}", shown(side, path)),
            fatal: e.fatal(),
        }
    }

    fn plain(message: String) -> Failure {
        Failure {
            message,
            fatal: false,
        }
    }
}

/// Makes a large target durable as it is written, not all at the end:
/// every [`FLUSH_EVERY`] bytes, one fsync in the background (at most one
/// at a time). The disk then writes while the network moves the rest, and
/// the fsync that ends the copy only waits for the last stretch: without
/// this, 256 MiB sat in the page cache until that fsync, a second of disk
/// writes after the last byte had arrived.
#[derive(Default)]
struct Flusher {
    written: AtomicU64,
    /// The fsync in flight (or the last one), waited for before the file
    /// is finished: it holds the file open.
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
}

/// See [`Flusher`].
const FLUSH_EVERY: u64 = 32 * 1024 * 1024;

impl Flusher {
    fn wrote(&self, len: u64, target: &Arc<super::side::Open>) {
        let before = self.written.fetch_add(len, Ordering::Relaxed);
        if before / FLUSH_EVERY == (before + len) / FLUSH_EVERY {
            return;
        }
        let mut task = self
            .task
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if task.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        let target = target.clone();
        *task = Some(tokio::spawn(async move { target.flush().await }));
    }

    /// Waits for the fsync in flight, if any.
    async fn settle(&self) {
        let task = self
            .task
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(t) = task {
            let _ = t.await;
        }
    }
}

/// Why a chunk was not moved (the file is named by the caller).
enum ChunkError {
    Read(SideError),
    Write(SideError),
    /// The source ended at this offset, before its size.
    Short(u64),
    Worker,
}

#[derive(Clone, Copy)]
struct ChunkPlan {
    from: u64,
    size: u64,
    chunk: u64,
    lanes: usize,
    first: usize,
    id: u64,
}

#[allow(clippy::too_many_arguments)]
async fn move_chunk(
    src: &Side,
    dst: &Side,
    source: &super::side::Open,
    target: &super::side::Open,
    lane: usize,
    rel: usize,
    offset: u64,
    len: u64,
) -> Result<(), ChunkError> {
    let want = u32::try_from(len).unwrap_or(u32::MAX);
    let data: Bytes = {
        let _slot = src.permit(lane).await;
        source
            .read_at(rel, offset, want)
            .await
            .map_err(ChunkError::Read)?
    };
    if (data.len() as u64) < len {
        return Err(ChunkError::Short(offset + data.len() as u64));
    }
    let _slot = dst.permit(lane).await;
    target
        .write_at(rel, offset, data)
        .await
        .map_err(ChunkError::Write)
}

/// Clears `bits` from a file's mode (the owner bits a temporary file got
/// beyond its source's), keeping what the umask made of the others.
async fn clear_mode_bits(side: &Side, path: &[u8], bits: u32) -> Result<(), SideError> {
    let now = side.lstat(path).await?;
    let mode_only = Meta {
        mode: now.mode & !bits,
        atime: -1,
        ..now
    };
    side.set_meta(path, &mode_only).await
}

async fn close(open: Arc<super::side::Open>) {
    if let Ok(o) = Arc::try_unwrap(open) {
        o.close().await;
    }
}

/// `dir/.NAME.warren-partial` for `dir/NAME`.
pub fn partial_name(path: &[u8]) -> Vec<u8> {
    let (dir, name) = match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..=i], &path[i + 1..]),
        None => (&b""[..], path),
    };
    let mut p = dir.to_vec();
    p.push(b'.');
    p.extend_from_slice(name);
    p.extend_from_slice(b".warren-partial");
    p
}

/// The last component of a source path, as the name it gets in a target
/// directory (`.`, `..` and `/` are resolved first).
async fn base_name(source: &Endpoint) -> Option<Vec<u8>> {
    let trimmed = trim_slashes(&source.path);
    let last = |p: &[u8]| -> Vec<u8> {
        let p = trim_slashes(p);
        p.rsplit(|&b| b == b'/').next().unwrap_or(p).to_vec()
    };
    let name = last(trimmed);
    if !name.is_empty() && name != b"." && name != b".." {
        return Some(name);
    }
    let real = match &source.side {
        Side::Local => {
            let p = std::path::Path::new(std::ffi::OsStr::from_bytes(&source.path));
            std::fs::canonicalize(p)
                .ok()?
                .as_os_str()
                .as_bytes()
                .to_vec()
        }
        Side::Remote(r) => r.lanes.first()?.realpath(&source.path).await.ok()?.to_vec(),
    };
    let name = last(&real);
    (!name.is_empty()).then_some(name)
}

fn trim_slashes(p: &[u8]) -> &[u8] {
    let end = p.iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1);
    if end == 0 && !p.is_empty() {
        return b"/";
    }
    &p[..end]
}

/// `-l`: a shared budget of bytes per second.
#[derive(Clone)]
struct Limiter {
    rate: u64,
    next: Arc<Mutex<Instant>>,
}

impl Limiter {
    fn new(rate: u64) -> Limiter {
        Limiter {
            rate: rate.max(1),
            next: Arc::new(Mutex::new(Instant::now())),
        }
    }

    /// Waits until `bytes` more fit the rate. Turns come one at a time,
    /// in order (the lock is held until the turn), so nothing is booked
    /// ahead: a copy that fails leaves no budget for others to wait out,
    /// and a waiter that gives up (the future dropped) takes no turn.
    async fn take(&self, bytes: u64) {
        let mut next = self.next.lock().await;
        let start = (*next).max(Instant::now());
        tokio::time::sleep_until(start.into()).await;
        *next = start + Duration::from_secs_f64(bytes as f64 / self.rate as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_names_sit_beside_their_target() {
        assert_eq!(partial_name(b"a/b/c.txt"), b"a/b/.c.txt.warren-partial");
        assert_eq!(partial_name(b"c"), b".c.warren-partial");
        assert_eq!(partial_name(b"/c"), b"/.c.warren-partial");
    }

    #[test]
    fn trailing_slashes_do_not_change_the_name() {
        assert_eq!(trim_slashes(b"a/b//"), b"a/b");
        assert_eq!(trim_slashes(b"///"), b"/");
        assert_eq!(trim_slashes(b""), b"");
    }
}
