//! The backup engine: diff-driven incremental backup of an Azure Files share into the repository.
//!
//! One backup ([`run`]), streamed in node-id order with memory bounded by one metadata bucket, the reads
//! in flight and the current snapshot's directory map (see [`plan`]):
//! 1. merge-joins the current index snapshot with the index snapshot and the node versions of the
//!    previous backup;
//! 2. for every node unchanged in content (unchanged, renamed, moved) copies the previous node version
//!    (content refs, SDDL id, metadata) with its new name and parent: no read, no chunk-index lookup;
//! 3. reads added and modified files from the Azure **share snapshot** (never the live share), computing
//!    QuickXorHash while the content streams; a large modified file whose previous version is in chunks is
//!    re-read only in the ranges List Ranges reports changed since the previous share snapshot, the rest
//!    comes from the previous version's chunks in the repository;
//! 4. stores content through [`crate::repository::Repository`] (FastCDC chunks, dedup, packs; small files of
//!    one directory in TAR bundles), SDDLs once per distinct permission, and node versions as FlatBuffers
//!    metadata objects in buckets of [`BUCKET`] node ids, each written as soon as it is complete: a bucket
//!    with no change reuses the previous backup's object, so an incremental backup writes metadata in
//!    proportion to what changed;
//! 5. commits a backup manifest (data first, manifest last) naming the index snapshot id and the Azure
//!    share-snapshot timestamp in `extra`.
//!
//! The steps are [`Plan::walk`] (1–2, for all node ids or a range of them), [`store_range`] (3–4) and
//! [`Plan::commit`] (the manifest); [`Plan::survey`] counts what a backup will read without reading it,
//! and [`parts`] runs ranges as several jobs.
//!
//! See `docs/backup.md`.

pub mod bench;
pub mod cli;
pub mod confined;
pub mod forget;
pub mod parts;
pub mod plan;
/// Prune lives with the repository format; re-exported here beside `forget`.
pub use crate::repository::prune;
pub mod restore;
pub mod verify;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Instant;

use anyhow::Context;
use bytes::Bytes;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::azure::{AzureError, ByteRange, FileClient, Properties, ShareClient};
use crate::index::NodeIndex;
use crate::index::manifest::IndexManifest;
use crate::index::node::{Node, NodeKind as IndexKind};
use crate::repository::generated::{BundleRef, KeyValue, NfsAttributes, NodeKind, NodeVersion};
use crate::repository::{BackupManifest, ChunkId, ObjectId, Repository, SmallFile};
use parts::BatchBudget;
pub use plan::{BucketEnd, LAST_NODE_ID, Plan, PlanWalk, Step};

/// Node ids per metadata object (bucket = node_id / BUCKET).
pub const BUCKET: u64 = 4096;
/// `extra` keys of a backup manifest.
pub const EXTRA_INDEX_SNAPSHOT: &str = "index_snapshot";
pub const EXTRA_SHARE_SNAPSHOT: &str = "azure_snapshot";
pub const EXTRA_SKIPPED: &str = "skipped_nodes";

/// The previous backup a new one is diffed against.
pub struct Previous {
    pub index: IndexManifest,
    /// Azure share-snapshot timestamp the previous backup read from.
    pub share_snapshot: Option<String>,
    pub backup: BackupManifest,
}

/// What one backup works on.
pub struct BackupInput<'a> {
    /// The share, as a client at the Azure share snapshot the current index snapshot describes.
    pub share: ShareClient,
    pub share_snapshot: Option<String>,
    pub index: &'a NodeIndex,
    pub current: IndexManifest,
    pub previous: Option<Previous>,
    pub progress: &'a dyn Progress,
    pub concurrency: Concurrency,
}

/// Requests in flight by default (`--requests-in-flight`): sized for Azure's round trips of several
/// milliseconds, not for a local emulator (files per second = requests in flight / latency: 64 at
/// 10 ms is 6,400 files/s).
pub const DEFAULT_REQUESTS_IN_FLIGHT: usize = 64;

/// How much a backup or a restore does at once (`--requests-in-flight`, `--cpu-workers`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Concurrency {
    /// Requests in flight at once, at most: a backup's reads from the share; a restore's reads from
    /// the repository and writes to a share. The client sends fewer while the share throttles (it
    /// halves its limit on a 503 and grows it back by one per round of answers; see
    /// [`crate::azure::client`]).
    pub requests_in_flight: usize,
    /// Threads of the repository's pool ([`crate::repository::CpuPool`]): chunking, hashing, compression,
    /// encryption and decryption.
    pub cpu_workers: usize,
}

impl Default for Concurrency {
    /// [`DEFAULT_REQUESTS_IN_FLIGHT`], and one CPU worker per core.
    fn default() -> Self {
        Concurrency { requests_in_flight: DEFAULT_REQUESTS_IN_FLIGHT, cpu_workers: crate::repository::CpuPool::cores() }
    }
}

/// Progress callbacks (terminal bars or log lines; see [`cli`]).
pub trait Progress: Sync {
    fn start(&self, _files_to_read: u64, _bytes_to_read: u64) {}
    /// The concurrency the run works with: `requests_in_flight` is the client's limit now (lower than
    /// the configured one while the share throttles).
    fn concurrency(&self, _requests_in_flight: usize, _cpu_workers: usize) {}
    fn file_done(&self, _path: &str, _bytes: u64) {}
    fn finish(&self) {}
}

/// No progress output.
pub struct NoProgress;
impl Progress for NoProgress {}

/// A node that could not be backed up, and why.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Skipped {
    pub node_id: u64,
    pub path: String,
    pub reason: String,
}

/// What a backup did.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct BackupSummary {
    pub snapshot_id: String,
    pub parent: Option<String>,
    pub index_snapshot: i64,
    /// The Azure share snapshot read (its JSON key is the one the output has always had).
    #[serde(rename = "azure_snapshot")]
    pub share_snapshot: Option<String>,
    /// Files and directories the backup set out to read (added, modified, or without a previous
    /// version), including those it skipped.
    pub nodes_read: u64,
    pub files_new: u64,
    pub files_changed: u64,
    pub files_unchanged: u64,
    pub dirs: u64,
    /// Content bytes read from Azure (downloads and changed ranges).
    pub bytes_read: u64,
    /// Content bytes taken from the previous version's chunks instead of re-reading them.
    pub bytes_reused: u64,
    /// Bytes of content of added/modified files (their full sizes).
    pub bytes_processed: u64,
    /// Sealed bytes written to packs and bundles (after compression and encryption).
    pub bytes_uploaded: u64,
    pub objects_written: u64,
    pub chunks_new: u64,
    pub metadata_objects_written: u64,
    pub metadata_objects_reused: u64,
    /// Wall-clock seconds of the run (of the job that committed, for a backup split into parts).
    pub seconds: f64,
    /// The concurrency the run was given (of the job that committed, for a backup split into parts).
    pub requests_in_flight: usize,
    pub cpu_workers: usize,
    pub skipped: Vec<Skipped>,
    /// Paths backed up without their SDDL because their permission key did not resolve.
    pub sddl_missing: Vec<String>,
    pub warnings: Vec<String>,
    /// The snapshot existed already (a re-run of a backup job with a fixed snapshot id): nothing was
    /// committed by this run.
    pub already_committed: bool,
}

impl BackupSummary {
    /// Adds what `part` read, kept and stored (the counters of [`store_range`] and of the repository) to
    /// `self`.
    pub fn add_part(&mut self, part: &BackupSummary) {
        self.nodes_read += part.nodes_read;
        self.files_new += part.files_new;
        self.files_changed += part.files_changed;
        self.files_unchanged += part.files_unchanged;
        self.dirs += part.dirs;
        self.metadata_objects_written += part.metadata_objects_written;
        self.metadata_objects_reused += part.metadata_objects_reused;
        self.bytes_read += part.bytes_read;
        self.bytes_reused += part.bytes_reused;
        self.bytes_processed += part.bytes_processed;
        self.bytes_uploaded += part.bytes_uploaded;
        self.objects_written += part.objects_written;
        self.chunks_new += part.chunks_new;
        self.skipped.extend(part.skipped.iter().cloned());
        self.sddl_missing.extend(part.sddl_missing.iter().cloned());
        self.warnings.extend(part.warnings.iter().cloned());
    }

    /// Adds the repository's writes since `before` (bytes uploaded, objects, new chunks).
    pub fn add_stats(&mut self, now: &crate::repository::WriteStats, before: &crate::repository::WriteStats) {
        self.bytes_uploaded += now.bytes_stored - before.bytes_stored;
        self.objects_written += now.objects - before.objects;
        self.chunks_new += now.chunks_new - before.chunks_new;
    }
}

/// The latest backup of the repository's share and the index snapshot and share snapshot it recorded.
pub async fn find_previous(repo: &Repository, index: &NodeIndex) -> anyhow::Result<Option<Previous>> {
    match latest_manifest(repo).await? {
        Some(backup) => previous_of(repo, index, backup).await,
        None => Ok(None),
    }
}

/// Backup `backup` as the previous backup of a new one: `None` if it names no index snapshot.
pub async fn previous_of(
    repo: &Repository,
    index: &NodeIndex,
    backup: BackupManifest,
) -> anyhow::Result<Option<Previous>> {
    let last = &backup.snapshot_id;
    let Some(idx) = backup.extra.get(EXTRA_INDEX_SNAPSHOT).and_then(|s| s.parse::<i64>().ok()) else {
        return Ok(None);
    };
    let index = index
        .manifest(repo.scope().tenant(), repo.scope().share(), idx)
        .await
        .with_context(|| format!("index snapshot {idx} of backup {last}"))?;
    let share_snapshot = backup.extra.get(EXTRA_SHARE_SNAPSHOT).cloned();
    Ok(Some(Previous { index, share_snapshot, backup }))
}

/// The newest backup manifest. Snapshot ids sort by second; within one second, by `created_ns`.
pub async fn latest_manifest(repo: &Repository) -> anyhow::Result<Option<BackupManifest>> {
    let ids = repo.list_snapshots().await?;
    let Some(last) = ids.last() else { return Ok(None) };
    let second = last.split('-').next().unwrap_or(last).to_string();
    let mut best: Option<BackupManifest> = None;
    for id in ids.iter().rev().take_while(|id| id.starts_with(&second)) {
        let m = repo.load_manifest(id).await?;
        if best.as_ref().is_none_or(|b| m.created_ns > b.created_ns) {
            best = Some(m);
        }
    }
    Ok(best)
}

/// The node versions of one metadata bucket (`id`, hex, as a backup manifest lists it), in node-id order.
pub async fn load_bucket(repo: &Repository, id: &str) -> anyhow::Result<Vec<NodeVersion>> {
    let oid = ObjectId::from_hex(id).with_context(|| format!("malformed metadata id {id}"))?;
    Ok(repo.get_metadata(&oid).await?)
}

/// Chunk ids of a node version.
pub fn chunk_ids(v: &NodeVersion) -> Vec<ChunkId> {
    v.chunk_ids.as_deref().unwrap_or_default().chunks_exact(32).filter_map(ChunkId::from_slice).collect()
}

fn is_not_found(e: &AzureError) -> bool {
    e.is_not_found()
}

/// Runs one backup (see the module docs) and commits its manifest. An in-progress marker
/// (`locks/backup-*`, see [`prune`]) is held from before the first repository read until after the commit,
/// so a concurrent prune never deletes what this backup may still refer to.
///
/// The steps are public so a backup can also be split across jobs ([`parts`]): [`Plan::walk`] (what is
/// kept, what must be read, bucket by bucket), [`store_range`] (read and store one range, writing its
/// metadata buckets) and [`Plan::commit`] (the manifest).
pub async fn run(repo: &mut Repository, input: BackupInput<'_>) -> anyhow::Result<BackupSummary> {
    with_backup_marker(repo, async |repo| run_marked(repo, input).await).await
}

/// Runs `work` between writing an in-progress backup marker and removing it, so a concurrent prune keeps
/// what `work` stores (see [`prune`]). The marker is removed whether `work` succeeds or not.
pub(crate) async fn with_backup_marker<T>(
    repo: &mut Repository,
    work: impl AsyncFnOnce(&mut Repository) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let marker = prune::Marker::begin_backup(repo).await.context("writing the in-progress backup marker")?;
    let result = work(repo).await;
    marker.end().await;
    result
}

async fn run_marked(repo: &mut Repository, input: BackupInput<'_>) -> anyhow::Result<BackupSummary> {
    let started = Instant::now();
    let stats0 = repo.stats();
    let plan = Plan::new(input.current, input.share_snapshot, input.previous);
    let survey = plan.survey(input.index, &BatchBudget::UNLIMITED).await?;
    let mut sum = plan.base_summary();
    let mut walk = plan.walk(repo, input.index, 0, LAST_NODE_ID).await?;
    let totals = (survey.files_to_read, survey.bytes_to_read);
    let refs =
        store_range(repo, &input.share, &plan, &mut walk, totals, input.concurrency, input.progress, &mut sum).await?;
    plan.commit(repo, refs, &mut sum, None).await?;
    sum.add_stats(&repo.stats(), &stats0);
    sum.seconds = started.elapsed().as_secs_f64();
    Ok(sum)
}

/// One node a backup must read: its index row, its path below the share root, and its previous version
/// (if the previous backup has one).
#[derive(Clone, Debug)]
pub struct ToRead {
    pub node: Node,
    pub path: String,
    pub prev: Option<NodeVersion>,
}

/// The objects a range of a backup wrote or kept for its node versions, as its manifest lists them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ManifestRefs {
    /// Metadata objects of the range's buckets, in node-id order (written now or the previous backup's).
    pub metadata: Vec<String>,
    /// Permission objects (SDDLs) and bundles the range's node versions refer to.
    pub permissions: BTreeSet<String>,
    pub bundles: BTreeSet<String>,
}

impl ManifestRefs {
    /// Appends `later` (the refs of the next range in node-id order).
    pub fn append(&mut self, later: ManifestRefs) {
        self.metadata.extend(later.metadata);
        self.permissions.extend(later.permissions);
        self.bundles.extend(later.bundles);
    }

    fn note(&mut self, v: &NodeVersion) {
        if let Some(p) = &v.permission_id {
            self.permissions.insert(crate::repository::id::hex(p));
        }
        if let Some(b) = &v.bundle
            && let Some(id) = &b.bundle_id
        {
            self.bundles.insert(crate::repository::id::hex(id));
        }
    }
}

impl Plan {
    /// The summary a backup of this plan starts from.
    pub fn base_summary(&self) -> BackupSummary {
        BackupSummary {
            index_snapshot: self.current.snapshot_id,
            share_snapshot: self.share_snapshot.clone(),
            ..Default::default()
        }
    }

    /// Commits the manifest naming `refs` (every range's, in node-id order), with `sum.skipped` recorded
    /// as skipped. With `snapshot_id` the manifest gets that id (create-only, as always): if it exists
    /// already, nothing is written and `sum.already_committed` is set.
    pub async fn commit(
        &self,
        repo: &mut Repository,
        refs: ManifestRefs,
        sum: &mut BackupSummary,
        snapshot_id: Option<String>,
    ) -> anyhow::Result<BackupManifest> {
        let mut manifest = BackupManifest::new(repo.scope().tenant(), repo.scope().share());
        if let Some(id) = snapshot_id {
            if let Some(existing) = load_manifest_opt(repo, &id).await? {
                sum.snapshot_id = existing.snapshot_id.clone();
                sum.parent = existing.parent.clone();
                sum.already_committed = true;
                return Ok(existing);
            }
            manifest.snapshot_id = id;
        }
        manifest.parent = self.previous.as_ref().map(|p| p.backup.snapshot_id.clone());
        manifest.metadata = refs.metadata;
        manifest.permissions = refs.permissions.into_iter().collect();
        manifest.bundles = refs.bundles.into_iter().collect();
        manifest.extra.insert(EXTRA_INDEX_SNAPSHOT.into(), self.current.snapshot_id.to_string());
        if let Some(ts) = &self.share_snapshot {
            manifest.extra.insert(EXTRA_SHARE_SNAPSHOT.into(), ts.clone());
        }
        if !sum.skipped.is_empty() {
            let mut ids: Vec<u64> = sum.skipped.iter().map(|s| s.node_id).collect();
            ids.sort_unstable();
            manifest.extra.insert(EXTRA_SKIPPED.into(), serde_json::to_string(&ids)?);
        }
        match repo.commit(&manifest).await {
            Ok(_) => {}
            // Another claim of the same job committed this id first: its manifest stands.
            Err(crate::repository::Error::Store { source: object_store::Error::AlreadyExists { .. }, .. }) => {
                sum.already_committed = true;
                let existing = repo.load_manifest(&manifest.snapshot_id).await?;
                sum.snapshot_id = existing.snapshot_id.clone();
                sum.parent = existing.parent.clone();
                return Ok(existing);
            }
            Err(e) => return Err(e.into()),
        }
        sum.snapshot_id = manifest.snapshot_id.clone();
        sum.parent = manifest.parent.clone();
        Ok(manifest)
    }
}

/// The manifest of snapshot `id`, if it exists.
pub async fn load_manifest_opt(repo: &Repository, id: &str) -> anyhow::Result<Option<BackupManifest>> {
    match repo.load_manifest(id).await {
        Ok(m) => Ok(Some(m)),
        Err(crate::repository::Error::Missing { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Entries a backup queues ahead of its writer at most: reads in flight plus kept versions and bucket
/// ends waiting their turn (a kept version is a few hundred bytes).
const QUEUE_AHEAD: usize = 2 * BUCKET as usize;

/// A step waiting for the writer, in node-id order.
#[allow(clippy::large_enum_variant, reason = "at most QUEUE_AHEAD exist; boxing would allocate per kept node")]
enum Queued {
    Keep(NodeVersion),
    Read(tokio::task::JoinHandle<Fetched>),
    End(BucketEnd),
}

/// Stores the buckets `walk` yields (one range of `plan`): reads the nodes to read from `share` (a client
/// at the plan's share snapshot), stores their content and permissions, and writes each bucket's
/// metadata object as soon as the bucket is complete (or keeps the previous object for a clean bucket).
/// `totals` (files, bytes to read) feed the progress. Nodes that could not be read go to `sum.skipped`;
/// counters go to `sum`. Everything stored is flushed before this returns, so the refs name only
/// durable objects.
///
/// Up to `readers` nodes are fetched at once, each in its own task; results are taken in node-id order
/// by this task alone, the only one writing to the repository. Small files of one directory are stored
/// together (a bundle when there are enough) when the walk leaves the directory or the bucket.
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
    progress.concurrency(concurrency.requests_in_flight, concurrency.cpu_workers);
    sum.requests_in_flight = concurrency.requests_in_flight;
    sum.cpu_workers = concurrency.cpu_workers;
    repo.set_cpu_workers(concurrency.cpu_workers);
    let readers = concurrency.requests_in_flight.max(1);
    let mut refs = ManifestRefs::default();
    let mut ctx =
        ReadCtx { share, prev_snapshot: plan.prev_snapshot().map(str::to_string), permissions: HashMap::new() };
    let policy = repo.config().bundles;
    let has_prev_snapshot = ctx.prev_snapshot.is_some();
    let mut queue: VecDeque<Queued> = VecDeque::new();
    let mut in_flight = 0usize;
    let mut steps = Vec::new().into_iter();
    let mut end: Option<BucketEnd> = None;
    let mut walk_done = false;
    // The versions of the bucket at the head of the queue, and whether a node of it was skipped.
    let mut bucket: Vec<NodeVersion> = Vec::new();
    let mut bucket_skips = false;
    // Small files of the current directory, waiting to be stored together (bundle or packs).
    let mut group: Vec<(Node, NodeVersion, Vec<u8>)> = Vec::new();
    let mut group_bytes = 0usize;
    loop {
        while in_flight < readers && queue.len() < QUEUE_AHEAD {
            if let Some(step) = steps.next() {
                queue.push_back(match step {
                    Step::Keep(v) => Queued::Keep(v),
                    Step::Read(job) => {
                        in_flight += 1;
                        Queued::Read(tokio::spawn(fetch(share.clone(), job, policy, has_prev_snapshot)))
                    }
                });
                continue;
            }
            if let Some(e) = end.take() {
                queue.push_back(Queued::End(e));
                continue;
            }
            if walk_done {
                break;
            }
            match walk.next_bucket(repo).await? {
                Some(b) => {
                    steps = b.steps.into_iter();
                    end = Some(b.end);
                }
                None => walk_done = true,
            }
        }
        let Some(front) = queue.pop_front() else { break };
        let handle = match front {
            Queued::Keep(v) => {
                if v.kind == NodeKind::Directory {
                    sum.dirs += 1;
                } else {
                    sum.files_unchanged += 1;
                }
                bucket.push(v);
                continue;
            }
            Queued::End(e) => {
                if !group.is_empty() {
                    store_group(repo, std::mem::take(&mut group), &mut bucket).await?;
                    group_bytes = 0;
                }
                finish_bucket(repo, e, std::mem::take(&mut bucket), bucket_skips, &mut refs, sum).await?;
                bucket_skips = false;
                continue;
            }
            Queued::Read(h) => h,
        };
        in_flight -= 1;
        sum.nodes_read += 1;
        let Fetched { job, outcome } = handle.await.context("a read task panicked")?;
        let ToRead { node: n, path, prev } = job;
        if !group.is_empty() && (group[0].0.parent_id != n.parent_id || group_bytes >= policy.target_size) {
            store_group(repo, std::mem::take(&mut group), &mut bucket).await?;
            group_bytes = 0;
        }
        let (props, content) = match outcome {
            Outcome::Read(props, content) => (props, content),
            Outcome::Skip(reason) => {
                sum.skipped.push(Skipped { node_id: n.node_id as u64, path, reason });
                bucket_skips = true;
                continue;
            }
            Outcome::Fail(e) => return Err(e),
        };
        let mut v = version_from(&n, &props);
        if let Some(key) = &props.permission_key {
            match ctx.permission(repo, key).await {
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
            bucket.push(v);
            continue;
        }
        let size = props.content_length;
        v.size = size;
        let stored = match content {
            Content::Small(data) => {
                sum.bytes_read += data.len() as u64;
                group_bytes += data.len();
                group.push((n.clone(), v.clone(), data));
                None
            }
            Content::Stream(rx) => match store_stream(repo, rx, sum).await? {
                Ok(c) => Some(Ok(c)),
                // Changed while it was read (or gone): one more try, reading it directly.
                Err(_) => Some(ctx.store_large(repo, &share.file(&path), size, None, sum).await),
            },
            Content::Ranges => Some(ctx.store_large(repo, &share.file(&path), size, prev.as_ref(), sum).await),
            Content::None => unreachable!("files carry content"),
        };
        match stored {
            None => {}
            Some(Ok(c)) => {
                v.size = c.size;
                v.chunk_ids = Some(c.chunk_ids.iter().flat_map(|c| c.0).collect());
                v.chunk_lengths = Some(c.chunk_lengths.clone());
                v.xorhash = Some(c.xorhash.to_vec());
                bucket.push(v);
            }
            Some(Err(e)) => match read_failure(&e) {
                Some(reason) => {
                    sum.skipped.push(Skipped { node_id: n.node_id as u64, path, reason });
                    bucket_skips = true;
                    continue;
                }
                None => return Err(e).with_context(|| format!("reading {path}")),
            },
        }
        if prev.is_some() {
            sum.files_changed += 1;
        } else {
            sum.files_new += 1;
        }
        sum.bytes_processed += size;
        progress.file_done(&path, size);
    }
    repo.flush().await?;
    progress.finish();
    Ok(refs)
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
    for v in &versions {
        refs.note(v);
    }
    match end.reusable {
        Some(object) if !skips => {
            refs.metadata.push(object);
            sum.metadata_objects_reused += 1;
        }
        _ if versions.is_empty() => {}
        _ => {
            let id = repo.put_metadata(versions).await?;
            refs.metadata.push(id.to_hex());
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
        node_id: n.node_id as u64,
        parent_id: n.parent_id as u64,
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

struct ReadCtx<'a> {
    share: &'a ShareClient,
    prev_snapshot: Option<String>,
    permissions: HashMap<String, ObjectId>,
}

impl ReadCtx<'_> {
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

#[allow(clippy::large_enum_variant, reason = "one per file read in flight, a bounded number")]
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
    Small(Vec<u8>),
    /// A large file's content in download pieces (4 MiB), at most one piece queued.
    Stream(tokio::sync::mpsc::Receiver<Result<Bytes, AzureError>>),
    /// A large modified file with a previous version in chunks: the writer reads the changed ranges.
    Ranges,
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
/// task, so up to `readers` of these overlap while the writer stores earlier nodes.
///
/// Requests: a directory or an empty file is one Get Properties; any other file starts with one Get File
/// of its first piece ([`FileClient::download_start`]), whose headers carry its properties, so a small
/// file costs one request. Only a large modified file read in ranges (List Ranges against the previous
/// share snapshot) needs its properties first.
async fn fetch(
    share: ShareClient,
    job: ToRead,
    policy: crate::repository::bundle::BundlePolicy,
    has_prev_snapshot: bool,
) -> Fetched {
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
            Ok(p) => Outcome::Read(p, Content::Small(Vec::new())),
            Err(e) if is_not_found(&e) => Outcome::Skip(format!("gone before it was read: {e}")),
            Err(e) => {
                let path = &job.path;
                Outcome::Fail(anyhow::Error::new(e).context(format!("properties of {path}")))
            }
        };
        return Fetched { outcome, job };
    }
    let file = share.file(&job.path);
    let piece = share.client_options().download_chunk_size.max(1);
    let mut tries = 0;
    let outcome = loop {
        tries += 1;
        match file.download_start(size.min(piece)).await {
            Ok((props, _)) if props.content_length != size => {
                break Outcome::Skip(changed_after_scan(size, props.content_length));
            }
            Ok((props, data)) if policy.is_small(size) => break Outcome::Read(props, Content::Small(data.to_vec())),
            Ok((props, first)) => {
                let (tx, rx) = tokio::sync::mpsc::channel(1);
                let rest = file.download_rest(&props, first);
                tokio::spawn(async move {
                    let mut s = Box::pin(rest);
                    while let Some(piece) = s.next().await {
                        let stop = piece.is_err();
                        if tx.send(piece).await.is_err() || stop {
                            break;
                        }
                    }
                });
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

/// The reason for skipping a file whose size differs from its index row's (only possible on a live share).
fn changed_after_scan(listed: u64, now: u64) -> String {
    format!("changed after the scan ({listed} bytes listed, {now} now); the next backup reads it")
}

/// Chunks a large file from its download pieces. `Ok(Err(e))`: the read failed (the caller may retry);
/// `Err`: the repository failed.
async fn store_stream(
    repo: &mut Repository,
    mut rx: tokio::sync::mpsc::Receiver<Result<Bytes, AzureError>>,
    sum: &mut BackupSummary,
) -> anyhow::Result<Result<crate::repository::FileContent, AzureError>> {
    let mut w = repo.file_writer();
    while let Some(piece) = rx.recv().await {
        match piece {
            Ok(b) => {
                sum.bytes_read += b.len() as u64;
                w.write(repo, &b).await?;
            }
            Err(e) => return Ok(Err(e)),
        }
    }
    Ok(Ok(w.finish(repo).await?))
}

/// Stores one directory's small files together (a bundle when there are enough) and records them.
async fn store_group(
    repo: &mut Repository,
    group: Vec<(Node, NodeVersion, Vec<u8>)>,
    out: &mut Vec<NodeVersion>,
) -> anyhow::Result<()> {
    let datas: Vec<&[u8]> = group.iter().map(|(_, _, d)| d.as_slice()).collect();
    let stored = repo.store_small_files(&datas).await?;
    for ((_, mut v, _), s) in group.into_iter().zip(stored) {
        match s {
            SmallFile::Chunks(c) => {
                v.chunk_ids = Some(c.chunk_ids.iter().flat_map(|c| c.0).collect());
                v.chunk_lengths = Some(c.chunk_lengths);
                v.xorhash = Some(c.xorhash.to_vec());
            }
            SmallFile::Bundle { bundle, member, xorhash } => {
                v.bundle = Some(Box::new(BundleRef {
                    bundle_id: Some(bundle.0.to_vec()),
                    member: Some(member.id.0.to_vec()),
                    offset: member.offset,
                    length: member.length,
                }));
                v.xorhash = Some(xorhash.to_vec());
            }
        }
        out.push(v);
    }
    Ok(())
}
