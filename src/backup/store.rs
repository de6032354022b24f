//! Reading what a backup must read and storing it: [`store_range`], the pipeline from the share to the
//! repository for one range of a [`Plan`].
//!
//! Three stages, each bounded:
//! 1. **Reads**: one task per node to read ([`fetch`]), at most `2 × requests_in_flight` of them
//!    outstanding; the client's limit (`--requests-in-flight`, lowered while the share throttles) decides
//!    how many requests are on the wire. A node costs one request (see [`fetch`]). The task of a large
//!    file chunks and hashes its download pieces on the pool as they arrive; at most
//!    [`LARGE_FILES_AHEAD`] large files are read ahead of the writer.
//! 2. **Content processing** on the repository's pool ([`crate::repository::CpuPool`], `--cpu-workers`):
//!    a bucket's small files become bundles, one job each (content ids, QuickXorHash, TAR, zstd,
//!    XChaCha20-Poly1305: small files need no chunker), at most `cpu_workers` bundles at once; large
//!    files are chunked and hashed by their read tasks; new chunks are sealed several at once
//!    ([`Repository::store_chunks`]); metadata objects and pack headers are sealed there too.
//! 3. **The writer**: the task running [`store_range`], the only one that owns the repository (the open
//!    pack, the chunk index, uploads) and the buckets. Reads complete in any order and are taken as they
//!    complete, so one slow or throttled request holds up only its own bucket: small files are grouped
//!    per bucket, and a bucket's metadata object is written once all its nodes are stored, buckets in
//!    node-id order, at most [`OPEN_BUCKETS`] of them open at once. A bucket's small files are bundled
//!    once the bucket is read, ordered by directory, then node id.
//!
//! Memory, whatever the share's size: the outstanding reads (a small file is at most 64 KiB), the large
//! files read ahead (a few 4 MiB pieces each), [`OPEN_BUCKETS`] buckets of node versions, at most
//! [`GROUPED_BYTES`] of small files waiting for their directory's bundle, the bundles on the pool and one
//! open pack.

use std::collections::{HashMap, VecDeque};

use anyhow::Context;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::FuturesUnordered;

use super::plan::{BucketEnd, Plan, PlanWalk, Step};
use super::{BackupSummary, Concurrency, ManifestRefs, ObjectRefs, Progress, Skipped, ToRead, bucket_of, chunk_ids};
use crate::azure::{AzureError, ByteRange, FileClient, Properties, ShareClient};
use crate::index::node::{Node, NodeKind as IndexKind};
use crate::repository::bundle::{BundlePolicy, SealedBundle, seal_bundle};
use crate::repository::chunker::Chunking;
use crate::repository::generated::{BundleRef, KeyValue, NfsAttributes, NodeKind, NodeVersion};
use crate::repository::{
    Chunk, ChunkId, CpuPool, FileChunker, FileContent, ObjectId, Repository, SmallFile, TenantKey,
};

/// Buckets open at once, at most: the oldest waits for its last reads while the next ones proceed.
const OPEN_BUCKETS: usize = 4;
/// Large files (above the bundle threshold) read ahead of the writer, at most.
const LARGE_FILES_AHEAD: usize = 2;
/// Bytes of small files waiting for their bucket's bundles, at most: beyond it the largest group is
/// bundled before its bucket is read (then which files share a bundle depends on the order the reads
/// completed in; below it, a bucket's small files are bundled by directory and node id, the same
/// whatever that order). A bucket of 4,096 files of 8 KiB fits.
const GROUPED_BYTES: usize = 32 << 20;

/// Stores the buckets `walk` yields (one range of `plan`): reads the nodes to read from `share` (a client
/// at the plan's share snapshot), stores their content and permissions, and writes each bucket's
/// metadata object as soon as the bucket is complete (or keeps the previous object for a clean bucket),
/// in node-id order. `totals` (files, bytes to read) feed the progress. Nodes that could not be read go to
/// `sum.skipped`; counters go to `sum`. Everything stored is flushed before this returns, so the refs name
/// only durable objects. See the module docs for the stages and their bounds.
#[allow(clippy::too_many_arguments, reason = "each is a distinct input of one range's storing")]
pub async fn store_range(
    repo: &mut Repository,
    share: &ShareClient,
    plan: &Plan,
    walk: &mut PlanWalk,
    totals: (u64, u64),
    concurrency: Concurrency,
    progress: &dyn Progress,
    sum: &mut BackupSummary,
) -> anyhow::Result<ManifestRefs> {
    progress.start(totals.0, totals.1);
    sum.requests_in_flight = concurrency.requests_in_flight;
    sum.cpu_workers = concurrency.cpu_workers;
    repo.set_cpu_workers(concurrency.cpu_workers);
    let (sent, throttled) = (share.requests_sent(), share.requests_throttled());
    let reading = Reading {
        share: share.clone(),
        policy: repo.config().bundles,
        has_prev_snapshot: plan.prev_snapshot().is_some(),
        pool: repo.pool().clone(),
        key: repo.key().clone(),
        chunking: repo.config().chunking,
        piece: share.client_options().download_chunk_size.max(1),
    };
    let mut w = Writer {
        ctx: ReadCtx {
            share: share.clone(),
            prev_snapshot: plan.prev_snapshot().map(str::to_string),
            permissions: HashMap::new(),
        },
        reading,
        reads_ahead: (2 * concurrency.requests_in_flight).max(16),
        sealing_at_once: concurrency.cpu_workers,
        open: VecDeque::new(),
        walk_done: false,
        reads: FuturesUnordered::new(),
        large_ahead: 0,
        sealing: FuturesUnordered::new(),
        grouped_bytes: 0,
        refs: ManifestRefs::default(),
        limit_shown: 0,
    };
    loop {
        w.show_limit(progress, concurrency.cpu_workers);
        w.schedule(repo, walk, sum).await?;
        w.finish_buckets(repo, sum).await?;
        if w.open.is_empty() && w.walk_done {
            break;
        }
        if w.reads.is_empty() && w.sealing.is_empty() {
            // The buckets walked so far held only kept nodes and are written: walk on.
            anyhow::ensure!(w.open.is_empty(), "backup pipeline stalled: buckets open, nothing in flight (a bug)");
            continue;
        }
        tokio::select! {
            Some(read) = w.reads.next() => {
                let read = read.context("a read task panicked")?;
                w.take_read(repo, read, progress, sum).await?;
            }
            Some(sealed) = w.sealing.next() => w.take_bundle(repo, sealed.context("a bundle task panicked")?).await?,
            else => unreachable!("reads or bundles are in flight"),
        }
    }
    repo.flush().await?;
    progress.finish();
    sum.metadata_objects_read += walk.objects_loaded();
    sum.requests_sent = share.requests_sent() - sent;
    sum.requests_throttled = share.requests_throttled() - throttled;
    sum.requests_in_flight_lowest = share.requests_in_flight_lowest();
    Ok(w.refs)
}

/// Counts a file read and stored (new, or changed when it has a previous version).
fn count_file(sum: &mut BackupSummary, changed: bool, size: u64, path: &str, progress: &dyn Progress) {
    if changed {
        sum.files_changed += 1;
    } else {
        sum.files_new += 1;
    }
    sum.bytes_processed += size;
    progress.file_done(path, size);
}

/// What every read task gets (cheap to clone).
#[derive(Clone)]
struct Reading {
    share: ShareClient,
    policy: BundlePolicy,
    has_prev_snapshot: bool,
    pool: CpuPool,
    /// For the chunker of each large file.
    key: TenantKey,
    chunking: Chunking,
    /// Bytes per download piece.
    piece: u64,
}

/// A bucket of the walk that is not yet written.
struct OpenBucket {
    end: BucketEnd,
    /// Steps not yet scheduled, in node-id order.
    steps: std::vec::IntoIter<Step>,
    /// Versions stored so far, in any order (sorted when the bucket is written).
    versions: Vec<NodeVersion>,
    /// Whether a node of the bucket was skipped (its previous object then cannot stand for it).
    skips: bool,
    /// Reads of the bucket's nodes not yet taken by the writer.
    reads: usize,
    /// Small files waiting for the bucket's bundles.
    small: Group,
    /// Bundles of the bucket's files on the pool.
    sealing: usize,
}

impl OpenBucket {
    /// Every node of the bucket read and stored, or on the pool.
    fn all_read(&self) -> bool {
        self.steps.len() == 0 && self.reads == 0
    }
}

/// Small files of one bucket, waiting to be stored together.
#[derive(Default)]
struct Group {
    files: Vec<(NodeVersion, Bytes)>,
    bytes: usize,
}

/// A bundle sealed on the pool, with the versions of its files (in the order given to it).
struct SealedGroup {
    bucket: u64,
    versions: Vec<NodeVersion>,
    sealed: SealedBundle,
}

/// The writer's state (see the module docs).
struct Writer {
    ctx: ReadCtx,
    reading: Reading,
    /// Read tasks outstanding, at most.
    reads_ahead: usize,
    /// Bundles on the pool at once, at most.
    sealing_at_once: usize,
    open: VecDeque<OpenBucket>,
    walk_done: bool,
    reads: FuturesUnordered<tokio::task::JoinHandle<Fetched>>,
    /// Large files among the outstanding reads (or being stored).
    large_ahead: usize,
    sealing: FuturesUnordered<tokio::task::JoinHandle<SealedGroup>>,
    /// Bytes of the small files in all groups.
    grouped_bytes: usize,
    refs: ManifestRefs,
    /// The client's limit last shown to the progress.
    limit_shown: usize,
}

impl Writer {
    /// Tells the progress the client's limit on requests in flight when it changed.
    fn show_limit(&mut self, progress: &dyn Progress, cpu_workers: usize) {
        let limit = self.reading.share.requests_in_flight_limit();
        if limit != self.limit_shown {
            self.limit_shown = limit;
            progress.concurrency(limit, cpu_workers);
        }
    }

    fn bucket(&mut self, number: u64) -> &mut OpenBucket {
        self.open.iter_mut().find(|b| b.end.bucket == number).expect("a read's bucket is open until it is taken")
    }

    fn is_large(&self, job: &ToRead) -> bool {
        job.node.kind == IndexKind::File && !self.reading.policy.is_small(job.node.size.max(0) as u64)
    }

    /// Starts reads (and takes kept versions) in node-id order until a bound is reached: reads
    /// outstanding, large files ahead, open buckets.
    async fn schedule(
        &mut self,
        repo: &Repository,
        walk: &mut PlanWalk,
        sum: &mut BackupSummary,
    ) -> anyhow::Result<()> {
        while self.reads.len() < self.reads_ahead {
            let Some(b) = self.open.back_mut().filter(|b| b.steps.len() > 0) else {
                if self.walk_done || self.open.len() >= OPEN_BUCKETS {
                    return Ok(());
                }
                match walk.next_bucket(repo).await? {
                    Some(p) => self.open.push_back(OpenBucket {
                        end: p.end,
                        steps: p.steps.into_iter(),
                        versions: Vec::new(),
                        skips: false,
                        reads: 0,
                        small: Group::default(),
                        sealing: 0,
                    }),
                    None => self.walk_done = true,
                }
                continue;
            };
            let large = matches!(b.steps.as_slice().first(), Some(Step::Read(job))
                if job.node.kind == IndexKind::File && !self.reading.policy.is_small(job.node.size.max(0) as u64));
            if large && self.large_ahead >= LARGE_FILES_AHEAD {
                return Ok(());
            }
            match b.steps.next().expect("steps left") {
                Step::Keep(v) => {
                    if v.kind == NodeKind::Directory {
                        sum.dirs += 1;
                    } else {
                        sum.files_unchanged += 1;
                    }
                    b.versions.push(v);
                }
                Step::Read(job) => {
                    b.reads += 1;
                    self.large_ahead += usize::from(large);
                    self.reads.push(tokio::spawn(fetch(self.reading.clone(), job)));
                }
            }
        }
        Ok(())
    }

    /// Writes the buckets at the front that are complete, in node-id order.
    async fn finish_buckets(&mut self, repo: &mut Repository, sum: &mut BackupSummary) -> anyhow::Result<()> {
        while let Some(front) = self.open.front() {
            if !front.all_read() {
                return Ok(());
            }
            if !front.small.files.is_empty() {
                let number = front.end.bucket;
                self.close_group(repo, number).await?;
                continue;
            }
            if front.sealing > 0 {
                return Ok(());
            }
            let b = self.open.pop_front().expect("a front bucket");
            finish_bucket(repo, b.end, b.versions, b.skips, &mut self.refs, sum).await?;
        }
        Ok(())
    }

    /// Stores what one read brought (see [`Outcome`]).
    async fn take_read(
        &mut self,
        repo: &mut Repository,
        read: Fetched,
        progress: &dyn Progress,
        sum: &mut BackupSummary,
    ) -> anyhow::Result<()> {
        let Fetched { job, outcome } = read;
        let number = bucket_of(job.node.node_id);
        let large = self.is_large(&job);
        let stored = self.store_read(repo, job, outcome, progress, sum).await;
        self.large_ahead -= usize::from(large);
        let b = self.bucket(number);
        b.reads -= 1;
        let all_read = b.all_read();
        stored?;
        if all_read {
            self.close_group(repo, number).await?;
        }
        if self.grouped_bytes > GROUPED_BYTES {
            self.close_largest_group(repo).await?;
        }
        Ok(())
    }

    async fn store_read(
        &mut self,
        repo: &mut Repository,
        job: ToRead,
        outcome: Outcome,
        progress: &dyn Progress,
        sum: &mut BackupSummary,
    ) -> anyhow::Result<()> {
        sum.nodes_read += 1;
        let ToRead { node: n, path, prev } = job;
        let number = bucket_of(n.node_id);
        let (props, content) = match outcome {
            Outcome::Read(props, content) => (props, content),
            Outcome::Skip(reason) => {
                sum.skipped.push(Skipped { node_id: n.node_id, path, reason });
                self.bucket(number).skips = true;
                return Ok(());
            }
            Outcome::Fail(e) => return Err(e),
        };
        let mut v = version_from(&n, &props);
        if let Some(key) = &props.permission_key {
            match self.ctx.permission(repo, key).await {
                Ok(pid) => v.permission_id = Some(pid.0.to_vec()),
                Err(e) => {
                    sum.warnings
                        .push(format!("{path}: permission key {key} does not resolve, stored without SDDL: {e:#}"));
                    sum.sddl_missing.push(path.clone());
                }
            }
        }
        if n.kind != IndexKind::File {
            sum.dirs += 1;
            self.bucket(number).versions.push(v);
            return Ok(());
        }
        let size = props.content_length;
        v.size = size;
        let stored = match content {
            Content::Small(data) => {
                sum.bytes_read += data.len() as u64;
                self.grouped_bytes += data.len();
                let group = &mut self.bucket(number).small;
                group.bytes += data.len();
                group.files.push((v, data));
                count_file(sum, prev.is_some(), size, &path, progress);
                return Ok(());
            }
            Content::Stream(rx) => match store_stream(repo, rx, sum).await? {
                Ok(c) => Ok(c),
                // Changed while it was read (or gone): one more try, reading it directly.
                Err(_) => self.ctx.store_large(repo, &self.ctx.share.file(&path), size, None, sum).await,
            },
            Content::Ranges => self.ctx.store_large(repo, &self.ctx.share.file(&path), size, prev.as_ref(), sum).await,
            Content::None => unreachable!("files carry content"),
        };
        match stored {
            Ok(c) => {
                v.size = c.size;
                v.chunk_ids = Some(c.chunk_ids.iter().flat_map(|c| c.0).collect());
                v.chunk_lengths = Some(c.chunk_lengths.clone());
                v.xorhash = Some(c.xorhash.to_vec());
                self.bucket(number).versions.push(v);
            }
            Err(e) => match read_failure(&e) {
                Some(reason) => {
                    sum.skipped.push(Skipped { node_id: n.node_id, path, reason });
                    self.bucket(number).skips = true;
                    return Ok(());
                }
                None => return Err(e).with_context(|| format!("reading {path}")),
            },
        }
        count_file(sum, prev.is_some(), size, &path, progress);
        Ok(())
    }

    /// Stores the small files of the open bucket holding the most (memory is over [`GROUPED_BYTES`]).
    async fn close_largest_group(&mut self, repo: &mut Repository) -> anyhow::Result<()> {
        let largest = self.open.iter().map(|b| (b.small.bytes, b.end.bucket)).max();
        match largest {
            Some((bytes, number)) if bytes > 0 => self.close_group(repo, number).await,
            _ => Ok(()),
        }
    }

    /// Stores the small files of bucket `number` together, ordered by directory, then node id (so the same
    /// files make the same bundles whatever order their reads completed in, and a directory's files of
    /// the bucket lie together): bundles of about the target size sealed on the pool when there are
    /// enough files (taken by [`Writer::take_bundle`]), otherwise one chunk each in packs, now. One bundle
    /// may hold several directories' files: a bucket's node ids interleave directories (ids follow
    /// FileIds, which follow creation), and bundles per directory and bucket held 6 files each on
    /// average (100,000 files of at most 8 KiB: 17,000 objects to seal and write).
    async fn close_group(&mut self, repo: &mut Repository, number: u64) -> anyhow::Result<()> {
        let policy = self.reading.policy;
        let mut group = std::mem::take(&mut self.bucket(number).small);
        self.grouped_bytes -= group.bytes;
        group.files.sort_by_key(|(v, _)| (v.parent_id, v.node_id));
        if !policy.should_bundle(group.files.len()) {
            for (mut v, data) in group.files {
                let c = repo.store_small_file(data).await?;
                v.chunk_ids = Some(c.chunk_ids.iter().flat_map(|c| c.0).collect());
                v.chunk_lengths = Some(c.chunk_lengths);
                v.xorhash = Some(c.xorhash.to_vec());
                self.bucket(number).versions.push(v);
            }
            return Ok(());
        }
        let mut files = group.files.into_iter().peekable();
        while files.peek().is_some() {
            // A bundle closes once its files reach the target size (as Repository::store_small_files).
            let (mut run, mut bytes) = (Vec::new(), 0);
            while let Some((v, d)) = files.next_if(|_| bytes < policy.target_size) {
                bytes += d.len();
                run.push((v, d));
            }
            self.seal(repo, number, run).await?;
        }
        Ok(())
    }

    /// Seals one bundle of small files of bucket `number` on the pool (at most `cpu_workers` at once).
    async fn seal(&mut self, repo: &mut Repository, number: u64, run: Vec<(NodeVersion, Bytes)>) -> anyhow::Result<()> {
        while self.sealing.len() >= self.sealing_at_once {
            let sealed = self.sealing.next().await.expect("bundles on the pool");
            self.take_bundle(repo, sealed.context("a bundle task panicked")?).await?;
        }
        let (versions, datas): (Vec<NodeVersion>, Vec<Bytes>) = run.into_iter().unzip();
        let (pool, key) = (repo.pool().clone(), repo.key().clone());
        self.bucket(number).sealing += 1;
        // A task of its own, so it keeps polling the pool while the writer is busy (see CpuPool::run).
        self.sealing.push(tokio::spawn(async move {
            let sealed = pool.run(move || seal_bundle(&key, datas)).await;
            SealedGroup { bucket: number, versions, sealed }
        }));
        Ok(())
    }

    /// Uploads a bundle sealed on the pool and records its files in their bucket.
    async fn take_bundle(&mut self, repo: &mut Repository, g: SealedGroup) -> anyhow::Result<()> {
        let stored = repo.put_bundle(g.sealed).await?;
        let b = self.bucket(g.bucket);
        b.sealing -= 1;
        for (mut v, s) in g.versions.into_iter().zip(stored) {
            let SmallFile::Bundle { bundle, member, xorhash } = s else { unreachable!("a bundle's files are in it") };
            v.bundle = Some(Box::new(BundleRef {
                bundle_id: Some(bundle.0.to_vec()),
                member: Some(member.id.0.to_vec()),
                offset: member.offset,
                length: member.length,
            }));
            v.xorhash = Some(xorhash.to_vec());
            b.versions.push(v);
        }
        Ok(())
    }
}

/// Ends one bucket: keeps the previous backup's object when the bucket is clean and nothing in it was
/// skipped, else writes its versions as a new metadata object (none when the bucket has no node).
async fn finish_bucket(
    repo: &mut Repository,
    end: BucketEnd,
    mut versions: Vec<NodeVersion>,
    skips: bool,
    refs: &mut ManifestRefs,
    sum: &mut BackupSummary,
) -> anyhow::Result<()> {
    versions.sort_by_key(|v| v.node_id);
    match end.reusable {
        Some(object) if !skips => {
            let info = match end.unread {
                // Reused unread: the previous manifest says what the object holds.
                Some(u) => {
                    sum.files_unchanged += u.files;
                    sum.dirs += u.dirs;
                    u.info
                }
                None => ObjectRefs::of(&versions),
            };
            refs.push(object, info);
            sum.metadata_objects_reused += 1;
        }
        _ if versions.is_empty() => {}
        _ => {
            let info = ObjectRefs::of(&versions);
            let id = repo.put_metadata(versions).await?;
            refs.push(id.to_hex(), info);
            sum.metadata_objects_written += 1;
        }
    }
    Ok(())
}

/// A node version from an index row and the properties read from the share snapshot.
fn version_from(n: &Node, p: &Properties) -> NodeVersion {
    let num = |s: &Option<String>, radix| s.as_deref().and_then(|s| u32::from_str_radix(s, radix).ok()).unwrap_or(0);
    let nfs = (p.nfs.mode.is_some() || p.nfs.owner.is_some() || p.nfs.group.is_some()).then(|| {
        Box::new(NfsAttributes {
            mode: num(&p.nfs.mode, 8),
            owner: num(&p.nfs.owner, 10),
            group: num(&p.nfs.group, 10),
        })
    });
    NodeVersion {
        node_id: n.node_id.as_u64(),
        parent_id: n.parent_id.as_u64(),
        name: Some(n.name.clone()),
        kind: if n.kind == IndexKind::Dir { NodeKind::Directory } else { NodeKind::File },
        size: if n.kind == IndexKind::Dir { 0 } else { p.content_length },
        attributes: p.attributes.as_deref().map_or(n.attributes as u32, |a| crate::azure::model::parse_attributes(a).0),
        creation_time_ns: crate::scan::nanos(p.creation_time),
        last_write_time_ns: crate::scan::nanos(p.last_write_time).max(if p.last_write_time.is_none() {
            n.mtime
        } else {
            i64::MIN
        }),
        change_time_ns: crate::scan::nanos(p.change_time).max(if p.change_time.is_none() { n.ctime } else { i64::MIN }),
        permission_key: p.permission_key.clone(),
        permission_id: None,
        nfs,
        metadata: (!p.metadata.is_empty()).then(|| {
            p.metadata.iter().map(|(k, v)| KeyValue { key: Some(k.clone()), value: Some(v.clone()) }).collect()
        }),
        chunk_ids: None,
        chunk_lengths: None,
        bundle: None,
        xorhash: None,
        symlink_target: None,
    }
}

/// What the writer needs to read by itself: permissions (each distinct key once) and large modified
/// files read in ranges.
struct ReadCtx {
    share: ShareClient,
    prev_snapshot: Option<String>,
    permissions: HashMap<String, ObjectId>,
}

impl ReadCtx {
    async fn permission(&mut self, repo: &mut Repository, key: &str) -> anyhow::Result<ObjectId> {
        if let Some(id) = self.permissions.get(key) {
            return Ok(*id);
        }
        let sddl = self.share.get_permission(key).await?;
        let id = repo.put_permission(&sddl).await?;
        self.permissions.insert(key.to_string(), id);
        Ok(id)
    }

    /// Streams a large file into chunks. With a previous version in chunks and a previous share snapshot,
    /// reads from Azure only the ranges List Ranges reports changed; the rest comes from the previous chunks.
    async fn store_large(
        &self,
        repo: &mut Repository,
        file: &FileClient,
        size: u64,
        prev: Option<&NodeVersion>,
        sum: &mut BackupSummary,
    ) -> anyhow::Result<crate::repository::FileContent> {
        let prev_chunks = prev.map(chunk_ids).unwrap_or_default();
        if let (Some(prev), Some(prev_ts)) = (prev, &self.prev_snapshot)
            && !prev_chunks.is_empty()
            && prev.bundle.is_none()
        {
            match file.list_ranges(Some(prev_ts)).await {
                Ok(list) => {
                    let mut changed: Vec<ByteRange> = list.ranges.iter().chain(&list.clear_ranges).copied().collect();
                    if size > prev.size {
                        changed.push(ByteRange { start: prev.size, end: size - 1 });
                    }
                    return self.store_ranges(repo, file, size, prev, &prev_chunks, changed, sum).await;
                }
                Err(e) => {
                    // The previous share snapshot may be gone: read everything (a vanished file fails below).
                    sum.warnings.push(format!(
                        "{}: List Ranges against the previous snapshot failed ({e}); read in full",
                        file.path()
                    ));
                }
            }
        }
        let mut w = repo.file_writer();
        let mut s = Box::pin(file.download());
        while let Some(b) = s.next().await {
            let b = b?;
            sum.bytes_read += b.len() as u64;
            w.write(repo, &b).await?;
        }
        Ok(w.finish(repo).await?)
    }

    #[allow(clippy::too_many_arguments)]
    async fn store_ranges(
        &self,
        repo: &mut Repository,
        file: &FileClient,
        size: u64,
        prev: &NodeVersion,
        prev_chunks: &[ChunkId],
        mut changed: Vec<ByteRange>,
        sum: &mut BackupSummary,
    ) -> anyhow::Result<crate::repository::FileContent> {
        changed.retain(|r| r.start < size);
        changed.sort_by_key(|r| r.start);
        // Merge overlaps; clamp to the size.
        let mut merged: Vec<(u64, u64)> = Vec::new();
        for r in changed {
            let (s, e) = (r.start, r.end.min(size - 1) + 1);
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        let lengths = prev.chunk_lengths.as_deref().unwrap_or_default();
        let mut prev_reader = PrevReader { chunks: prev_chunks, lengths, idx: 0, start: 0, cache: None };
        let mut w = repo.file_writer();
        let mut pos = 0u64;
        const PIECE: u64 = 4 << 20;
        let mut segments: Vec<(u64, u64, bool)> = Vec::new();
        for (s, e) in merged {
            if pos < s {
                segments.push((pos, s, false));
            }
            segments.push((s, e, true));
            pos = e;
        }
        if pos < size {
            segments.push((pos, size, false));
        }
        for (s, e, from_azure) in segments {
            let mut off = s;
            while off < e {
                let len = (e - off).min(PIECE);
                let data: Bytes = if from_azure || off + len > prev.size {
                    let (b, _) = file.download_range(off, len).await?;
                    sum.bytes_read += b.len() as u64;
                    b
                } else {
                    let b = prev_reader.read(repo, off, len).await?;
                    sum.bytes_reused += b.len() as u64;
                    Bytes::from(b)
                };
                w.write(repo, &data).await?;
                off += len;
            }
        }
        Ok(w.finish(repo).await?)
    }
}

/// Sequential reader over a previous version's chunks.
struct PrevReader<'a> {
    chunks: &'a [ChunkId],
    lengths: &'a [u32],
    idx: usize,
    /// File offset of chunk `idx`.
    start: u64,
    cache: Option<(usize, Vec<u8>)>,
}

impl PrevReader<'_> {
    async fn read(&mut self, repo: &mut Repository, off: u64, len: u64) -> anyhow::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(len as usize);
        let end = off + len;
        // Offsets only move forward.
        let mut pos = off;
        while pos < end {
            while self.idx < self.chunks.len() && self.start + self.lengths[self.idx] as u64 <= pos {
                self.start += self.lengths[self.idx] as u64;
                self.idx += 1;
            }
            anyhow::ensure!(self.idx < self.chunks.len(), "previous version shorter than {end}");
            if self.cache.as_ref().is_none_or(|(i, _)| *i != self.idx) {
                self.cache = Some((self.idx, repo.read_chunk(&self.chunks[self.idx]).await?));
            }
            let data = &self.cache.as_ref().unwrap().1;
            let from = (pos - self.start) as usize;
            let to = ((end - self.start) as usize).min(data.len());
            out.extend_from_slice(&data[from..to]);
            pos = self.start + to as u64;
        }
        Ok(out)
    }
}

struct Fetched {
    job: ToRead,
    outcome: Outcome,
}

#[allow(clippy::large_enum_variant, reason = "one per outstanding read, a bounded number")]
enum Outcome {
    Read(Properties, Content),
    /// Left out of this backup, with the reason (gone, changed while read).
    Skip(String),
    Fail(anyhow::Error),
}

enum Content {
    /// A directory.
    None,
    /// A small file's whole content.
    Small(Bytes),
    /// A large file's content, chunked and hashed piece by piece by its read task (at most one piece
    /// queued).
    Stream(tokio::sync::mpsc::Receiver<Result<Piece, AzureError>>),
    /// A large modified file with a previous version in chunks: the writer reads the changed ranges.
    Ranges,
}

/// One download piece of a large file, cut and hashed.
struct Piece {
    /// Chunks now final (the chunker keeps the tail of a piece for the next one).
    chunks: Vec<Chunk>,
    /// Bytes read from the share for this piece.
    bytes_read: u64,
    /// On the last piece: the file's QuickXorHash.
    xorhash: Option<[u8; 20]>,
}

/// Why a read failed, when the failure means "leave this node out" rather than "fail the backup".
fn read_failure(e: &anyhow::Error) -> Option<String> {
    let az = e.chain().find_map(|c| c.downcast_ref::<AzureError>())?;
    if az.is_not_found() {
        return Some(format!("gone before it was read: {az}"));
    }
    if is_changed(az) {
        return Some(format!("changed while it was read (twice); the next backup reads it again: {az}"));
    }
    None
}

fn is_changed(e: &AzureError) -> bool {
    matches!(&e.kind, crate::azure::ErrorKind::Protocol(m) if m.starts_with("file changed during download"))
}

/// Reads one node's properties and, for files, starts on its content (see [`Content`]). Runs as its own
/// task; the writer takes the results as they complete.
///
/// Requests: a directory or an empty file is one Get Properties; any other file starts with one Get File
/// of its first piece ([`FileClient::download_start`]), whose headers carry its properties, so a small
/// file costs one request. Only a large modified file read in ranges (List Ranges against the previous
/// share snapshot) needs its properties first.
async fn fetch(reading: Reading, job: ToRead) -> Fetched {
    let Reading { share, policy, has_prev_snapshot, pool, key, chunking, piece } = reading;
    let size = job.node.size.max(0) as u64;
    let has_chunks =
        job.prev.as_ref().is_some_and(|p| p.bundle.is_none() && p.chunk_ids.as_ref().is_some_and(|c| !c.is_empty()));
    let in_ranges = !policy.is_small(size) && has_chunks && has_prev_snapshot;
    if job.node.kind != IndexKind::File || size == 0 || in_ranges {
        let props = if job.node.kind == IndexKind::File {
            share.file(&job.path).properties().await
        } else {
            share.directory(&job.path).properties().await
        };
        let outcome = match props {
            Ok(p) if job.node.kind != IndexKind::File => Outcome::Read(p, Content::None),
            Ok(p) if p.content_length != size => Outcome::Skip(changed_after_scan(size, p.content_length)),
            Ok(p) if in_ranges => Outcome::Read(p, Content::Ranges),
            Ok(p) => Outcome::Read(p, Content::Small(Bytes::new())),
            Err(e) if e.is_not_found() => Outcome::Skip(format!("gone before it was read: {e}")),
            Err(e) => {
                let path = &job.path;
                Outcome::Fail(anyhow::Error::new(e).context(format!("properties of {path}")))
            }
        };
        return Fetched { outcome, job };
    }
    let file = share.file(&job.path);
    let mut tries = 0;
    let outcome = loop {
        tries += 1;
        match file.download_start(size.min(piece)).await {
            Ok((props, _)) if props.content_length != size => {
                break Outcome::Skip(changed_after_scan(size, props.content_length));
            }
            Ok((props, data)) if policy.is_small(size) => break Outcome::Read(props, Content::Small(data)),
            Ok((props, first)) => {
                let (tx, rx) = tokio::sync::mpsc::channel(1);
                let chunker = FileChunker::new(key, chunking);
                tokio::spawn(chunk_download(file.download_rest(&props, first), chunker, pool, tx));
                break Outcome::Read(props, Content::Stream(rx));
            }
            Err(e) if is_changed(&e) && tries < 2 => continue,
            Err(e) => {
                let e = anyhow::Error::new(e);
                break match read_failure(&e) {
                    Some(reason) => Outcome::Skip(reason),
                    None => Outcome::Fail(e.context(format!("reading {}", job.path))),
                };
            }
        }
    };
    Fetched { outcome, job }
}

/// Feeds a large file's download pieces through `chunker` on the pool and sends the chunks to the
/// writer, one piece at a time; the last message carries the QuickXorHash. Stops at the first read error
/// (sent on) or when the writer stops listening.
async fn chunk_download(
    pieces: impl futures::Stream<Item = Result<Bytes, AzureError>> + Send + 'static,
    mut chunker: FileChunker,
    pool: CpuPool,
    tx: tokio::sync::mpsc::Sender<Result<Piece, AzureError>>,
) {
    let mut pieces = Box::pin(pieces);
    while let Some(piece) = pieces.next().await {
        let data = match piece {
            Ok(d) => d,
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        };
        let bytes_read = data.len() as u64;
        let (back, chunks) = pool
            .run(move || {
                let chunks = chunker.push(&data);
                (chunker, chunks)
            })
            .await;
        chunker = back;
        if tx.send(Ok(Piece { chunks, bytes_read, xorhash: None })).await.is_err() {
            return;
        }
    }
    let (chunks, xorhash) = pool.run(move || chunker.finish()).await;
    let _ = tx.send(Ok(Piece { chunks, bytes_read: 0, xorhash: Some(xorhash) })).await;
}

/// Stores a large file from the pieces its read task cut and hashed. `Ok(Err(e))`: the read failed
/// (the caller may retry); `Err`: the repository failed.
async fn store_stream(
    repo: &mut Repository,
    mut rx: tokio::sync::mpsc::Receiver<Result<Piece, AzureError>>,
    sum: &mut BackupSummary,
) -> anyhow::Result<Result<FileContent, AzureError>> {
    let mut content = FileContent::empty();
    while let Some(piece) = rx.recv().await {
        match piece {
            Ok(p) => {
                sum.bytes_read += p.bytes_read;
                content.append(&p.chunks);
                repo.store_chunks(p.chunks).await?;
                if let Some(x) = p.xorhash {
                    content.xorhash = x;
                    return Ok(Ok(content));
                }
            }
            Err(e) => return Ok(Err(e)),
        }
    }
    anyhow::bail!("the read of a large file ended before its last piece (its task panicked)")
}

/// The reason for skipping a file whose size differs from its index row's (only possible on a live share).
fn changed_after_scan(listed: u64, now: u64) -> String {
    format!("changed after the scan ({listed} bytes listed, {now} now); the next backup reads it")
}
