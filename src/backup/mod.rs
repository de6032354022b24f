//! The backup engine: diff-driven incremental backup of an Azure Files share into the repository.
//!
//! One backup ([`run`]):
//! 1. diffs the current index snapshot against the index snapshot the previous backup recorded;
//! 2. for every node unchanged in content (unchanged, renamed, moved) copies the previous node version
//!    (content refs, SDDL id, metadata) with its new name and parent: no read, no chunk-index lookup;
//! 3. reads added and modified files from the Azure **share snapshot** (never the live share), computing
//!    QuickXorHash while the content streams; a large modified file whose previous version is in chunks is
//!    re-read only in the ranges List Ranges reports changed since the previous share snapshot, the rest
//!    comes from the previous version's chunks in the repository;
//! 4. stores content through [`crate::repository::Repository`] (FastCDC chunks, dedup, packs; small files of
//!    one directory in TAR bundles), SDDLs once per distinct permission, and node versions as FlatBuffers
//!    metadata objects in buckets of [`BUCKET`] node ids: a bucket with no change reuses the previous
//!    backup's object, so an incremental backup writes metadata in proportion to what changed;
//! 5. commits a backup manifest (data first, manifest last) naming the index snapshot id and the Azure
//!    share-snapshot timestamp in `extra`.
//!
//! The steps are [`Plan::new`] (1–2), [`store_nodes`] (3–4, for all nodes to read or a range of them) and
//! [`Plan::commit`] (metadata and manifest); [`parts`] runs the middle step as several jobs.
//!
//! See `docs/backup.md`.

pub mod bench;
pub mod cli;
pub mod confined;
pub mod forget;
pub mod parts;
/// Prune lives with the repository format; re-exported here beside `forget`.
pub use crate::repository::prune;
pub mod restore;
pub mod verify;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use anyhow::Context;
use bytes::Bytes;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::azure::{AzureError, ByteRange, FileClient, Properties, ShareClient};
use crate::index::NodeIndex;
use crate::index::diff::{Change, ChangeKind, diff_snapshots};
use crate::index::dirmap::DirMap;
use crate::index::manifest::IndexManifest;
use crate::index::node::{Node, NodeKind as IndexKind, batch_to_nodes};
use crate::repository::generated::{BundleRef, KeyValue, NfsAttributes, NodeKind, NodeVersion};
use crate::repository::{BackupManifest, ChunkId, ObjectId, Repository, SmallFile};

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
    /// Nodes read from the share at once (0: [`DEFAULT_READERS`]). Read-ahead memory is bounded by about
    /// `(readers + 1) × 16 MiB` (a large file holds up to four 4 MiB download pieces).
    pub readers: usize,
}

/// Progress callbacks (terminal bars or log lines; see [`cli`]).
pub trait Progress: Sync {
    fn start(&self, _files_to_read: u64, _bytes_to_read: u64) {}
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
    pub skipped: Vec<Skipped>,
    /// Paths backed up without their SDDL because their permission key did not resolve.
    pub sddl_missing: Vec<String>,
    pub warnings: Vec<String>,
    /// The snapshot existed already (a re-run of a backup job with a fixed snapshot id): nothing was
    /// committed by this run.
    pub already_committed: bool,
}

impl BackupSummary {
    /// Adds what `part` read and stored (the counters of [`store_nodes`] and of the repository) to `self`.
    pub fn add_part(&mut self, part: &BackupSummary) {
        self.files_new += part.files_new;
        self.files_changed += part.files_changed;
        self.dirs += part.dirs;
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

/// All node versions of a backup, by node id, and the metadata object of each bucket.
pub async fn load_versions(
    repo: &Repository,
    m: &BackupManifest,
) -> anyhow::Result<(BTreeMap<u64, NodeVersion>, HashMap<u64, String>)> {
    let mut versions = BTreeMap::new();
    let mut buckets = HashMap::new();
    for id in &m.metadata {
        let batch = load_bucket(repo, id).await?;
        if let Some(first) = batch.first() {
            buckets.insert(first.node_id / BUCKET, id.clone());
        }
        for v in batch {
            versions.insert(v.node_id, v);
        }
    }
    Ok((versions, buckets))
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
/// The three steps are public so a backup can also be split across jobs ([`parts`]): [`Plan::new`]
/// (the diff: what is reused, what must be read), [`store_nodes`] (read and store some of the nodes to
/// read) and [`Plan::commit`] (metadata buckets and the manifest).
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
    let mut plan = Plan::new(repo, input.index, input.current, input.share_snapshot, input.previous).await?;
    let mut sum = plan.summary();
    let nodes = std::mem::take(&mut plan.to_read);
    let produced = store_nodes(repo, &input.share, &plan, nodes, input.readers, input.progress, &mut sum).await?;
    plan.commit(repo, produced, &mut sum, None).await?;
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

/// What one backup must do, derived from the current index snapshot and the previous backup alone (no
/// repository writes, no Azure calls): so every job of a split backup derives the same plan.
pub struct Plan {
    pub current: IndexManifest,
    /// The Azure share-snapshot timestamp the current index snapshot describes.
    pub share_snapshot: Option<String>,
    pub previous: Option<Previous>,
    prev_buckets: HashMap<u64, String>,
    /// Buckets whose metadata object must be written: a node in them was added, deleted, changed, or has
    /// no previous version.
    dirty: BTreeSet<u64>,
    /// Versions of the nodes whose content did not change (unchanged, renamed, moved): the previous
    /// version with the current name, parent and attributes.
    reused: BTreeMap<u64, NodeVersion>,
    files_unchanged: u64,
    dirs_unchanged: u64,
    /// Nodes to read (added or modified), ascending by node id.
    pub to_read: Vec<ToRead>,
}

impl Plan {
    /// Diffs `current` against the previous backup's index snapshot and walks `current`: a node whose
    /// content did not change reuses its previous version, every other node is to be read.
    pub async fn new(
        repo: &Repository,
        index: &NodeIndex,
        current: IndexManifest,
        share_snapshot: Option<String>,
        previous: Option<Previous>,
    ) -> anyhow::Result<Plan> {
        let (prev_versions, prev_buckets) = match &previous {
            Some(p) => load_versions(repo, &p.backup).await?,
            None => Default::default(),
        };
        let mut changes: HashMap<i64, Change> = HashMap::new();
        if let Some(p) = &previous {
            diff_snapshots(index, &p.index, &current, |c| {
                changes.insert(c.node_id(), c.clone());
                Ok(())
            })
            .await?;
        }
        let mut dirty: BTreeSet<u64> = changes.keys().map(|id| *id as u64 / BUCKET).collect();
        let dirmap = DirMap::load(index, &current).await?;
        let mut plan = Plan {
            current,
            share_snapshot,
            previous,
            prev_buckets,
            dirty: BTreeSet::new(),
            reused: BTreeMap::new(),
            files_unchanged: 0,
            dirs_unchanged: 0,
            to_read: Vec::new(),
        };
        let mut stream = index.read(&plan.current, None)?;
        while let Some(b) = stream.next().await {
            for n in batch_to_nodes(&b?) {
                let id = n.node_id as u64;
                let prev = prev_versions.get(&id);
                let reuse = match (prev, changes.get(&n.node_id)) {
                    (Some(_), None) => plan.previous.is_some(),
                    (Some(_), Some(c)) => c.kind == ChangeKind::Changed && !c.modified,
                    _ => false,
                };
                if let (true, Some(prev)) = (reuse, prev) {
                    let mut v = prev.clone();
                    v.name = Some(n.name.clone());
                    v.parent_id = n.parent_id as u64;
                    v.attributes = n.attributes as u32;
                    if n.kind == IndexKind::File {
                        plan.files_unchanged += 1;
                    } else {
                        plan.dirs_unchanged += 1;
                    }
                    plan.reused.insert(id, v);
                } else {
                    if plan.previous.is_none() || prev.is_none() {
                        dirty.insert(id / BUCKET);
                    }
                    let path = dirmap.path_of(n.parent_id, &n.name).unwrap_or_else(|| n.name.clone());
                    plan.to_read.push(ToRead {
                        path: path.trim_start_matches('/').to_string(),
                        node: n,
                        prev: prev.cloned(),
                    });
                }
            }
        }
        plan.dirty = dirty;
        Ok(plan)
    }

    /// The summary so far: what the plan reuses.
    pub fn summary(&self) -> BackupSummary {
        BackupSummary {
            index_snapshot: self.current.snapshot_id,
            share_snapshot: self.share_snapshot.clone(),
            files_unchanged: self.files_unchanged,
            dirs: self.dirs_unchanged,
            ..Default::default()
        }
    }

    /// The Azure share snapshot of the previous backup (List Ranges compares against it).
    pub fn prev_snapshot(&self) -> Option<&str> {
        self.previous.as_ref().and_then(|p| p.share_snapshot.as_deref())
    }

    /// Writes the metadata buckets and commits the manifest: the reused versions plus `produced` (what
    /// [`store_nodes`] stored, from one call or from several parts), with `sum.skipped` recorded as
    /// skipped. A bucket with no added, changed, deleted or skipped node reuses the previous backup's
    /// object. With `snapshot_id` the manifest gets that id (create-only, as always): if it exists
    /// already, nothing is written and `sum.already_committed` is set.
    pub async fn commit(
        self,
        repo: &mut Repository,
        produced: BTreeMap<u64, NodeVersion>,
        sum: &mut BackupSummary,
        snapshot_id: Option<String>,
    ) -> anyhow::Result<BackupManifest> {
        let Plan { current, share_snapshot, previous, prev_buckets, mut dirty, mut reused, .. } = self;
        for s in &sum.skipped {
            dirty.insert(s.node_id / BUCKET);
        }
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
        manifest.parent = previous.as_ref().map(|p| p.backup.snapshot_id.clone());
        reused.extend(produced);
        let mut permissions = BTreeSet::new();
        let mut bundles = BTreeSet::new();
        let mut by_bucket: BTreeMap<u64, Vec<NodeVersion>> = BTreeMap::new();
        for (id, v) in reused {
            if let Some(p) = &v.permission_id {
                permissions.insert(crate::repository::id::hex(p));
            }
            if let Some(b) = &v.bundle
                && let Some(id) = &b.bundle_id
            {
                bundles.insert(crate::repository::id::hex(id));
            }
            by_bucket.entry(id / BUCKET).or_default().push(v);
        }
        // In ascending bucket order, one object per bucket (`load_versions` relies on it).
        for (bucket, versions) in by_bucket {
            if !dirty.contains(&bucket)
                && let Some(obj) = prev_buckets.get(&bucket)
            {
                manifest.metadata.push(obj.clone());
                sum.metadata_objects_reused += 1;
                continue;
            }
            let id = repo.put_metadata(versions).await?;
            manifest.metadata.push(id.to_hex());
            sum.metadata_objects_written += 1;
        }
        manifest.permissions = permissions.into_iter().collect();
        manifest.bundles = bundles.into_iter().collect();
        manifest.extra.insert(EXTRA_INDEX_SNAPSHOT.into(), current.snapshot_id.to_string());
        if let Some(ts) = &share_snapshot {
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

/// Reads `nodes` (a plan's nodes to read, or a range of them) from `share` (a client at the plan's share
/// snapshot) and stores their content and permissions; returns the node versions stored, by node id.
/// Nodes that could not be read are added to `sum.skipped`; counters go to `sum`. Everything stored is
/// flushed (packs and index objects written) before this returns, so the versions refer only to durable
/// objects.
///
/// Up to `readers` nodes are fetched from the share at once (properties, and the content of small files;
/// large files stream through a bounded channel), in (directory, node id) order so one directory's small
/// files arrive together; this task alone writes to the repository.
pub async fn store_nodes(
    repo: &mut Repository,
    share: &ShareClient,
    plan: &Plan,
    nodes: Vec<ToRead>,
    readers: usize,
    progress: &dyn Progress,
    sum: &mut BackupSummary,
) -> anyhow::Result<BTreeMap<u64, NodeVersion>> {
    let mut out: BTreeMap<u64, NodeVersion> = BTreeMap::new();
    let files: u64 = nodes.iter().filter(|t| t.node.kind == IndexKind::File).count() as u64;
    let bytes: u64 = nodes.iter().map(|t| t.node.size.max(0) as u64).sum();
    progress.start(files, bytes);
    let mut ctx =
        ReadCtx { share, prev_snapshot: plan.prev_snapshot().map(str::to_string), permissions: HashMap::new() };
    let policy = repo.config().bundles;
    let readers = if readers == 0 { DEFAULT_READERS } else { readers };
    let mut jobs = nodes;
    jobs.sort_by_key(|t| (t.node.parent_id, t.node.node_id));
    let has_prev_snapshot = ctx.prev_snapshot.is_some();
    let reader_share = share.clone();
    let mut fetched = futures::stream::iter(jobs)
        .map(|job| {
            let share = reader_share.clone();
            tokio::spawn(fetch(share, job, policy, has_prev_snapshot))
        })
        .buffered(readers);
    // Small files of the current directory, waiting to be stored together (bundle or packs).
    let mut group: Vec<(Node, NodeVersion, Vec<u8>)> = Vec::new();
    let mut group_bytes = 0usize;
    while let Some(joined) = fetched.next().await {
        let Fetched { job, outcome } = joined.context("a read task panicked")?;
        let ToRead { node: n, path, prev } = job;
        if !group.is_empty() && (group[0].0.parent_id != n.parent_id || group_bytes >= policy.target_size) {
            store_group(repo, std::mem::take(&mut group), &mut out).await?;
            group_bytes = 0;
        }
        let (props, content) = match outcome {
            Outcome::Read(props, content) => (props, content),
            Outcome::Skip(reason) => {
                sum.skipped.push(Skipped { node_id: n.node_id as u64, path, reason });
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
            out.insert(n.node_id as u64, v);
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
                out.insert(n.node_id as u64, v);
            }
            Some(Err(e)) => match read_failure(&e) {
                Some(reason) => {
                    sum.skipped.push(Skipped { node_id: n.node_id as u64, path, reason });
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
    if !group.is_empty() {
        store_group(repo, group, &mut out).await?;
    }
    repo.flush().await?;
    progress.finish();
    Ok(out)
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

async fn download_all(file: &FileClient) -> Result<Vec<u8>, AzureError> {
    let mut out = Vec::new();
    let mut s = Box::pin(file.download());
    while let Some(b) = s.next().await {
        out.extend_from_slice(&b?);
    }
    Ok(out)
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

/// Nodes fetched from the share at once by default (see [`BackupInput::readers`]).
pub const DEFAULT_READERS: usize = 8;

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
async fn fetch(
    share: ShareClient,
    job: ToRead,
    policy: crate::repository::bundle::BundlePolicy,
    has_prev_snapshot: bool,
) -> Fetched {
    let is_file = job.node.kind == IndexKind::File;
    let props =
        if is_file { share.file(&job.path).properties().await } else { share.directory(&job.path).properties().await };
    let props = match props {
        Ok(p) => p,
        Err(e) if is_not_found(&e) => {
            return Fetched { outcome: Outcome::Skip(format!("gone before it was read: {e}")), job };
        }
        Err(e) => {
            let path = job.path.clone();
            return Fetched {
                outcome: Outcome::Fail(anyhow::Error::new(e).context(format!("properties of {path}"))),
                job,
            };
        }
    };
    if !is_file {
        return Fetched { outcome: Outcome::Read(props, Content::None), job };
    }
    // The index row and the file disagree: it changed after the scan (only possible on a live share).
    if props.content_length != job.node.size.max(0) as u64 {
        let reason = format!(
            "changed after the scan ({} bytes listed, {} now); the next backup reads it",
            job.node.size, props.content_length
        );
        return Fetched { outcome: Outcome::Skip(reason), job };
    }
    let file = share.file(&job.path);
    if policy.is_small(props.content_length) {
        let mut tries = 0;
        let outcome = loop {
            tries += 1;
            match download_all(&file).await {
                Ok(data) => break Outcome::Read(props, Content::Small(data)),
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
        return Fetched { outcome, job };
    }
    let has_chunks =
        job.prev.as_ref().is_some_and(|p| p.bundle.is_none() && p.chunk_ids.as_ref().is_some_and(|c| !c.is_empty()));
    if has_chunks && has_prev_snapshot {
        return Fetched { outcome: Outcome::Read(props, Content::Ranges), job };
    }
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        let mut s = Box::pin(file.download());
        while let Some(piece) = s.next().await {
            let stop = piece.is_err();
            if tx.send(piece).await.is_err() || stop {
                break;
            }
        }
    });
    Fetched { outcome: Outcome::Read(props, Content::Stream(rx)), job }
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
    out: &mut BTreeMap<u64, NodeVersion>,
) -> anyhow::Result<()> {
    let datas: Vec<&[u8]> = group.iter().map(|(_, _, d)| d.as_slice()).collect();
    let stored = repo.store_small_files(&datas).await?;
    for ((n, mut v, _), s) in group.into_iter().zip(stored) {
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
        out.insert(n.node_id as u64, v);
    }
    Ok(())
}
