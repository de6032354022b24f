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
//!    one bucket in TAR bundles, by directory), SDDLs once per distinct permission, and node versions as FlatBuffers
//!    metadata objects in buckets of [`BUCKET`] node ids, each written as soon as it is complete: a bucket
//!    with no change reuses the previous backup's object, so an incremental backup writes metadata in
//!    proportion to what changed;
//! 5. commits a backup manifest (data first, manifest last) naming the index snapshot id and the Azure
//!    share-snapshot timestamp in `extra`.
//!
//! The steps are [`Plan::walk`] (1–2, for all node ids or a range of them), [`store_range`] (3–4, the
//! pipeline of reads, content processing on the repository's pool and one writer: [`store`]) and
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
pub mod store;
pub mod verify;

use std::collections::{BTreeSet, HashSet};
use std::time::Instant;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::azure::ShareClient;
use crate::index::NodeIndex;
use crate::index::hashes;
use crate::index::manifest::IndexManifest;
use crate::index::node::{Node, NodeId, col};
use crate::index::node_index::Cursor;
use crate::repository::generated::NodeVersion;
use crate::repository::manifest::MetadataInfo;
use crate::repository::{BackupManifest, ChunkId, ObjectId, Repository};
use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use parts::BatchBudget;
pub use plan::{BucketEnd, LAST_NODE_ID, Plan, PlanWalk, Step};
pub use store::store_range;

/// Node ids per metadata object (bucket = node_id / BUCKET, [`bucket_of`]).
pub const BUCKET: u64 = 4096;

/// The number of the metadata bucket that holds node `id`.
pub fn bucket_of(id: NodeId) -> u64 {
    id.as_u64() / BUCKET
}
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
    pub node_id: NodeId,
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
    /// The previous backup's metadata objects read to plan this one (a clean bucket whose object the
    /// previous manifest describes is reused without reading it).
    pub metadata_objects_read: u64,
    /// Wall-clock seconds of the run (of the job that committed, for a backup split into parts).
    pub seconds: f64,
    /// The concurrency the run was given (of the job that committed, for a backup split into parts).
    pub requests_in_flight: usize,
    pub cpu_workers: usize,
    /// Requests the reads sent to the share (retries included), and how many were answered with
    /// throttling (503, `Retry-After`); the scan's requests are not counted.
    pub requests_sent: u64,
    pub requests_throttled: u64,
    /// The lowest limit on requests in flight the client came down to (`requests_in_flight` when the
    /// share never throttled).
    pub requests_in_flight_lowest: usize,
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
        self.metadata_objects_read += part.metadata_objects_read;
        self.bytes_read += part.bytes_read;
        self.bytes_reused += part.bytes_reused;
        self.bytes_processed += part.bytes_processed;
        self.bytes_uploaded += part.bytes_uploaded;
        self.objects_written += part.objects_written;
        self.chunks_new += part.chunks_new;
        self.requests_sent += part.requests_sent;
        self.requests_throttled += part.requests_throttled;
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
    plan.commit(repo, input.index, refs, &mut sum, None).await?;
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
    /// Per metadata object, in the order of `metadata`: its node ids and references. Shorter than
    /// `metadata` when a part record written before it existed is among the ranges: the manifest then
    /// gets no `metadata_info`.
    pub metadata_info: Vec<ObjectRefs>,
}

/// One metadata object's node ids and the permissions and bundles (hex ids) its versions refer to: a
/// manifest's [`MetadataInfo`] before the manifest's lists fix positions.
pub type ObjectRefs = MetadataInfo<String>;

impl ObjectRefs {
    /// Of the versions of one object (ascending by node id, at least one).
    fn of(versions: &[NodeVersion]) -> ObjectRefs {
        let (mut permissions, mut bundles) = (BTreeSet::new(), BTreeSet::new());
        for v in versions {
            if let Some(p) = &v.permission_id {
                permissions.insert(crate::repository::id::hex(p));
            }
            if let Some(b) = &v.bundle
                && let Some(id) = &b.bundle_id
            {
                bundles.insert(crate::repository::id::hex(id));
            }
        }
        ObjectRefs {
            first: versions.first().map_or(0, |v| v.node_id),
            last: versions.last().map_or(0, |v| v.node_id),
            nodes: versions.len() as u64,
            permissions: permissions.into_iter().collect(),
            bundles: bundles.into_iter().collect(),
        }
    }

    /// From a manifest's entry, whose positions index `manifest`'s lists (checked when it was loaded).
    pub fn from_manifest(manifest: &BackupManifest, info: &MetadataInfo) -> ObjectRefs {
        ObjectRefs {
            first: info.first,
            last: info.last,
            nodes: info.nodes,
            permissions: info.permissions.iter().map(|&i| manifest.permissions[i as usize].clone()).collect(),
            bundles: info.bundles.iter().map(|&i| manifest.bundles[i as usize].clone()).collect(),
        }
    }

    /// The manifest's entry, with positions in its sorted lists `permissions` and `bundles` (which hold
    /// every id named here).
    fn to_manifest(&self, permissions: &[String], bundles: &[String]) -> MetadataInfo {
        let pos = |list: &[String], id: &String| list.binary_search(id).expect("in the manifest's list") as u32;
        MetadataInfo {
            first: self.first,
            last: self.last,
            nodes: self.nodes,
            permissions: self.permissions.iter().map(|p| pos(permissions, p)).collect(),
            bundles: self.bundles.iter().map(|b| pos(bundles, b)).collect(),
        }
    }
}

impl ManifestRefs {
    /// Appends `later` (the refs of the next range in node-id order).
    pub fn append(&mut self, later: ManifestRefs) {
        self.metadata.extend(later.metadata);
        self.permissions.extend(later.permissions);
        self.bundles.extend(later.bundles);
        self.metadata_info.extend(later.metadata_info);
    }

    /// Adds the next metadata object (in node-id order) and what it refers to.
    fn push(&mut self, object: String, info: ObjectRefs) {
        self.metadata.push(object);
        self.permissions.extend(info.permissions.iter().cloned());
        self.bundles.extend(info.bundles.iter().cloned());
        self.metadata_info.push(info);
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

    /// Writes the hash layer of the current index snapshot ([`crate::index::hashes`]): the hash of every
    /// file of the node versions in `metadata` (every range's, in node-id order) whose index row does
    /// not hold it. One streaming pass over the index rows and the metadata objects, skipping the
    /// objects the previous backup listed when that backup wrote a hash layer too: their versions are
    /// unchanged, and their rows got their hashes from it (the scan keeps the hash of unmodified files).
    /// A snapshot that has a hash layer already (a backup of it ran before) keeps it.
    async fn write_hash_layer(&self, repo: &Repository, index: &NodeIndex, metadata: &[String]) -> anyhow::Result<()> {
        let m = &self.current;
        let (tenant, share) = (m.tenant_id.as_str(), m.share_id.as_str());
        if hashes::exists(index.store(), tenant, share, m.snapshot_id).await? {
            return Ok(());
        }
        let reconciled: HashSet<&str> = match &self.previous {
            Some(p) if hashes::exists(index.store(), tenant, share, p.index.snapshot_id).await? => {
                p.backup.metadata.iter().map(String::as_str).collect()
            }
            _ => HashSet::new(),
        };
        let mut rows = Cursor::new(index.read(m, Some(&[col::XORHASH]))?, "the current index snapshot");
        let mut layer = hashes::HashLayerWriter::create(index.store(), tenant, share, m.snapshot_id)?;
        for object in metadata.iter().filter(|o| !reconciled.contains(o.as_str())) {
            for v in load_bucket(repo, object).await? {
                let Some(digest) = v.xorhash.as_deref().and_then(|h| <&[u8; 20]>::try_from(h).ok()) else { continue };
                let (id, hash) = (NodeId::saturating_from_u64(v.node_id), hashes::xorhash64(digest));
                while rows.head().await?.is_some_and(|r| r < id) {
                    rows.advance();
                }
                if hash != 0 && rows.head().await? == Some(id) {
                    let (b, i) = rows.current_ref();
                    if b.column(1).as_primitive::<Int64Type>().value(i) != hash {
                        layer.push(id, hash).await?;
                    }
                }
            }
        }
        layer.close().await?;
        Ok(())
    }

    /// Commits the manifest naming `refs` (every range's, in node-id order), with `sum.skipped` recorded
    /// as skipped. With `snapshot_id` the manifest gets that id (create-only, as always): if it exists
    /// already, nothing is written and `sum.already_committed` is set.
    pub async fn commit(
        &self,
        repo: &mut Repository,
        index: &NodeIndex,
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
        self.write_hash_layer(repo, index, &refs.metadata).await.context("writing the index snapshot's hash layer")?;
        manifest.parent = self.previous.as_ref().map(|p| p.backup.snapshot_id.clone());
        manifest.metadata = refs.metadata;
        manifest.permissions = refs.permissions.into_iter().collect();
        manifest.bundles = refs.bundles.into_iter().collect();
        if refs.metadata_info.len() == manifest.metadata.len() {
            manifest.metadata_info =
                refs.metadata_info.iter().map(|o| o.to_manifest(&manifest.permissions, &manifest.bundles)).collect();
        }
        manifest.extra.insert(EXTRA_INDEX_SNAPSHOT.into(), self.current.snapshot_id.to_string());
        if let Some(ts) = &self.share_snapshot {
            manifest.extra.insert(EXTRA_SHARE_SNAPSHOT.into(), ts.clone());
        }
        if !sum.skipped.is_empty() {
            let mut ids: Vec<u64> = sum.skipped.iter().map(|s| s.node_id.as_u64()).collect();
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
