//! Prune: frees objects no snapshot references, safely while other backups of the share are running.
//!
//! **Markers.** A backup writes `locks/backup-{id}` (sealed JSON: start time, last refresh, host, pid)
//! before it reads anything from the repository, refreshes it every [`MARKER_REFRESH`] and deletes it
//! after its manifest is committed (or it failed). A marker not refreshed for `stale_after` belongs to a
//! crashed backup and is ignored. Prune itself holds `locks/prune` (create-only), so two prunes never
//! overlap.
//!
//! **Phase 1, mark and condemn** (nothing is deleted):
//! 1. list the markers; then the part records of split backups ([`super::runs`]); then the snapshot
//!    manifests (a run deletes its part records only after its manifest exists);
//! 2. mark every chunk, bundle and metadata object a manifest or a part record younger than
//!    `run_retention` reaches (any unreadable manifest, record or metadata object stops prune: it cannot
//!    mark safely); older part records (runs that never committed) are condemned like unused objects;
//! 3. a pack, bundle or metadata object is a candidate only if it is older than the grace period and than
//!    the start of every live backup (so a running backup's not-yet-committed objects are never
//!    candidates); a candidate pack with no referenced chunk is condemned whole, one whose unreferenced
//!    blobs are at least `repack_unused` of its bytes is **rewritten**: its referenced blobs are copied
//!    (still sealed) into new packs (indexed as soon as written), then it is condemned. The objects are
//!    listed after the marking: an object older than the cutoff was written by a backup whose marker was
//!    already gone when the markers were listed, so its part record or manifest was seen;
//! 4. each index object that names a condemned pack is replaced by one without those entries (written
//!    first, the old one deleted after), so every entry of a live pack is always in some object; index
//!    objects written meanwhile by backups are read too and kept;
//! 5. a **deletion record** `prune/{id}` lists the condemned objects and the time `T` the index rewrite
//!    finished.
//!
//! **Memory.** Nothing is held per chunk or per object of the share: the marked chunk ids, metadata
//! object ids and bundle ids, and each pack's use, are sorted sets ([`super::keyset`]) that spill to disk
//! beyond an eighth of [`PruneOptions::memory`] each. A pack's use is summed from the chunk index one
//! index object at a time (its entries, sorted by chunk id, merge-joined with the marked chunks of its
//! partition); each listed pack, bundle or metadata object is looked up in those sets as the listing
//! streams by. What is held per item is only what the deletion record holds anyway (the condemned packs
//! and objects), one decoded index object, one pack being rewritten, and the packs already condemned by
//! pending records.
//!
//! **Phase 2, sweep.** A record is swept once no live backup started before `T`: such a backup may have
//! read the old index and deduplicated against a condemned chunk. Prune waits up to `wait` for that and
//! otherwise leaves the record to the next prune. Sweeping marks again (now including the manifests of
//! the backups it waited for); a condemned pack holding a chunk that is referenced again and not in the
//! index is **rescued** (its entries are indexed again, it is kept); a condemned bundle or metadata object
//! referenced again is kept; everything else is deleted, the record last. Backups that start after `T`
//! never see condemned chunks in the index, so they cannot refer to them.
//!
//! Permission objects (one small object per distinct SDDL, re-used by any backup through a presence
//! check) are never pruned. Clocks of backup and prune hosts are assumed to agree within the grace period.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use rand::RngExt;
use serde::{Deserialize, Serialize};

use super::crypto;
use super::error::{Error, Result};
use super::id::{ChunkId, ObjectId};
use super::index::{IndexEntry, decode_index_object, encode_index_object, read_pack_header};
use super::keys::{TenantKey, get_bytes};
use super::keyset::{KeySet, KeySpill, Payload, SpillConfig};
use super::layout::{Scope, object_id_of};
use super::pack::{self, PackWriter};
use super::repo::Repository;

const MARKER_MAGIC: &[u8; 4] = b"AFBL";
const RECORD_MAGIC: &[u8; 4] = b"AFBD";
/// How often a running backup (or prune) refreshes its marker.
pub const MARKER_REFRESH: Duration = Duration::from_secs(60);

fn now_ns() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64
}

fn meta_ns(m: &ObjectMeta) -> i64 {
    m.last_modified.timestamp_nanos_opt().unwrap_or(i64::MAX)
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct MarkerBody {
    /// What holds the marker: `backup` or `prune`.
    what: String,
    started_ns: i64,
    refreshed_ns: i64,
    host: String,
    pid: u32,
}

/// A held marker (`locks/backup-{id}` or `locks/prune`), refreshed in the background until [`Marker::end`].
/// Dropped without `end`, it stays and goes stale after the prune's `stale_after`.
pub struct Marker {
    store: Arc<dyn ObjectStore>,
    path: Path,
    heartbeat: tokio::task::JoinHandle<()>,
    /// When the holder started, ns since the epoch.
    pub started_ns: i64,
}

impl Marker {
    /// Marks a backup of the repository's share as in progress. Call before reading the repository.
    pub async fn begin_backup(repo: &Repository) -> Result<Marker> {
        let id: u64 = rand::rng().random();
        Self::acquire(repo, &format!("backup-{id:016x}"), "backup", false).await
    }

    async fn acquire(repo: &Repository, name: &str, what: &str, create_only: bool) -> Result<Marker> {
        let store = repo.store().clone();
        let key = repo.key().clone();
        let path = repo.scope().lock(name);
        let started_ns = now_ns();
        let mut body = MarkerBody {
            what: what.into(),
            started_ns,
            refreshed_ns: started_ns,
            host: std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_default(),
            pid: std::process::id(),
        };
        let mode = if create_only { PutMode::Create } else { PutMode::Overwrite };
        put_sealed(store.as_ref(), &key, MARKER_MAGIC, &path, &body, mode).await?;
        let (s, p) = (store.clone(), path.clone());
        let heartbeat = tokio::spawn(async move {
            loop {
                tokio::time::sleep(MARKER_REFRESH).await;
                body.refreshed_ns = now_ns();
                if let Err(e) = put_sealed(s.as_ref(), &key, MARKER_MAGIC, &p, &body, PutMode::Overwrite).await {
                    tracing::warn!("refreshing marker {p}: {e}");
                }
            }
        });
        Ok(Marker { store, path, heartbeat, started_ns })
    }

    /// Stops refreshing and deletes the marker.
    pub async fn end(self) {
        self.heartbeat.abort();
        if let Err(e) = self.store.delete(&self.path).await {
            tracing::warn!("removing marker {}: {e}", self.path);
        }
    }
}

impl Drop for Marker {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

async fn put_sealed<T: Serialize>(
    store: &dyn ObjectStore,
    key: &TenantKey,
    magic: &[u8; 4],
    path: &Path,
    body: &T,
    mode: PutMode,
) -> Result<()> {
    let json = serde_json::to_vec(body).expect("serialises");
    let bytes = crypto::seal_object(key.seal_key(), magic, &json);
    store
        .put_opts(path, PutPayload::from(bytes), PutOptions { mode, ..Default::default() })
        .await
        .map_err(|e| Error::store(path, e))?;
    Ok(())
}

async fn get_sealed<T: for<'de> Deserialize<'de>>(
    store: &dyn ObjectStore,
    key: &TenantKey,
    magic: &[u8; 4],
    path: &Path,
) -> Result<T> {
    let bytes = get_bytes(store, path).await?;
    let json = crypto::open_object(key.seal_key(), magic, &bytes, path.as_ref())?;
    serde_json::from_slice(&json).map_err(|e| Error::corrupt(path, format!("JSON: {e}")))
}

/// An in-progress backup as its marker describes it.
#[derive(Clone, Debug, Serialize)]
pub struct BackupInProgress {
    pub marker: String,
    pub started_ns: i64,
    pub refreshed_ns: i64,
    pub host: String,
    pub pid: u32,
}

/// The backup markers of the repository's share. An unreadable marker counts as a backup that started at
/// time 0 and was refreshed when the object was last written (the safe reading).
pub async fn list_backups(repo: &Repository) -> Result<Vec<BackupInProgress>> {
    let mut out = Vec::new();
    for m in list(repo.store().as_ref(), &repo.scope().locks_prefix()).await? {
        let name = m.location.filename().unwrap_or_default().to_string();
        if !name.starts_with("backup-") {
            continue;
        }
        match get_sealed::<MarkerBody>(repo.store().as_ref(), repo.key(), MARKER_MAGIC, &m.location).await {
            Ok(b) => out.push(BackupInProgress {
                marker: name,
                started_ns: b.started_ns,
                refreshed_ns: b.refreshed_ns,
                host: b.host,
                pid: b.pid,
            }),
            Err(Error::Missing { .. }) => {} // ended meanwhile
            Err(_) => out.push(BackupInProgress {
                marker: name,
                started_ns: 0,
                refreshed_ns: meta_ns(&m),
                host: String::new(),
                pid: 0,
            }),
        }
    }
    Ok(out)
}

async fn list(store: &dyn ObjectStore, prefix: &Path) -> Result<Vec<ObjectMeta>> {
    store.list(Some(prefix)).try_collect().await.map_err(|e| Error::store(prefix, e))
}

/// Tunables of [`prune`].
#[derive(Clone, Debug)]
pub struct PruneOptions {
    /// Objects younger than this are never candidates (covers writers without markers). Default 1 h.
    pub grace: Duration,
    /// A marker not refreshed for this long is a crashed holder's and is ignored. Default 10 min.
    pub stale_after: Duration,
    /// How long to wait for backups that started before the index rewrite before leaving the deletion
    /// record to a later prune. Default 0.
    pub wait: Duration,
    /// A pack whose unreferenced blobs are at least this fraction of its bytes is rewritten. Default 0.2.
    pub repack_unused: f64,
    /// Report what would be done; change nothing.
    pub dry_run: bool,
    /// Part records of a split backup (`runs/`) older than this belong to a run that never committed:
    /// they stop protecting what they refer to and are deleted. Default 7 days.
    pub run_retention: Duration,
    /// Memory budget in bytes (default 1 GiB): each sorted set of marked ids or pack usages buffers an
    /// eighth of it before spilling to `spill_dir`.
    pub memory: u64,
    /// Where sorted sets spill (the system's temporary directory by default).
    pub spill_dir: Option<PathBuf>,
}

/// The default memory budget of a prune: 1 GiB.
pub const DEFAULT_MEMORY: u64 = 1 << 30;

impl PruneOptions {
    fn spill_config(&self) -> SpillConfig {
        SpillConfig::with_memory(self.memory / 8, self.spill_dir.clone())
    }
}

impl Default for PruneOptions {
    fn default() -> Self {
        Self {
            grace: Duration::from_secs(3600),
            stale_after: Duration::from_secs(600),
            wait: Duration::ZERO,
            repack_unused: 0.2,
            dry_run: false,
            run_retention: Duration::from_secs(7 * 24 * 3600),
            memory: DEFAULT_MEMORY,
            spill_dir: None,
        }
    }
}

/// What prune found and did. Bytes are stored (sealed) bytes.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PruneReport {
    pub snapshots: usize,
    pub packs: usize,
    pub pack_bytes: u64,
    pub referenced_chunks: usize,
    /// Sorted sets (marked chunks, metadata objects, bundles; pack usage) that exceeded their share of
    /// the memory budget and went to disk.
    pub sets_spilled: usize,
    /// Packs too young (grace period, or written since a running backup started) to be considered.
    pub packs_too_young: usize,
    /// Packs condemned by an earlier prune whose deletion record is still pending.
    pub packs_pending: usize,
    /// Packs with no referenced chunk, condemned whole.
    pub packs_unused: usize,
    /// Partly used packs rewritten, and the new packs their referenced blobs went to.
    pub packs_repacked: usize,
    pub packs_written: usize,
    pub bytes_written: u64,
    /// Unreferenced bundle and metadata objects (and part records past the run retention) condemned.
    pub objects_unused: usize,
    /// Bytes of everything condemned in this run.
    pub bytes_condemned: u64,
    pub index_objects_written: usize,
    pub index_objects_deleted: usize,
    /// Backups running when prune started (live markers), and markers ignored as stale.
    pub backups_running: Vec<BackupInProgress>,
    pub stale_markers: Vec<String>,
    /// Sweep: condemned packs referenced again by a backup that ran meanwhile (kept and re-indexed).
    pub packs_rescued: usize,
    pub objects_rescued: usize,
    pub packs_deleted: usize,
    pub objects_deleted: usize,
    pub bytes_deleted: u64,
    /// Deletion records left for a later prune (a backup that started before them is still running).
    pub records_pending: usize,
    pub waited_secs: f64,
    /// `bytes_deleted - bytes_written`: what the share's storage shrank by.
    pub bytes_freed: i64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Record {
    /// When the index rewrite finished, ns since the epoch.
    created_ns: i64,
    /// Condemned pack ids (hex) and their sizes.
    packs: Vec<(String, u64)>,
    /// Condemned bundle and metadata object keys and sizes.
    objects: Vec<(String, u64)>,
}

/// What the snapshot manifests and the live part records reach, as sorted sets (in memory or spilled).
struct Marked {
    snapshots: usize,
    chunks: KeySet<()>,
    /// Ids of referenced metadata objects and bundles.
    metadata: KeySet<()>,
    bundles: KeySet<()>,
    /// Part records older than the run retention (runs that never committed), with their sizes: no
    /// longer roots, condemned like unreferenced objects.
    stale_parts: Vec<ObjectMeta>,
}

impl Marked {
    /// Whether the bundle or metadata object at `key` is referenced (anything else, e.g. a part record,
    /// is not).
    fn references(&self, scope: &Scope, key: &Path) -> Result<bool> {
        let Some(id) = object_id_of(key) else { return Ok(false) };
        if key.as_ref() == scope.metadata(&id).as_ref() {
            self.metadata.contains(&id.0)
        } else if key.as_ref() == scope.bundle(&id).as_ref() {
            self.bundles.contains(&id.0)
        } else {
            Ok(false)
        }
    }

    /// How many of the sets went to disk.
    fn spilled(&self) -> usize {
        [&self.chunks, &self.metadata, &self.bundles].iter().filter(|s| s.spilled()).count()
    }
}

/// Marks what the part records younger than `run_retention` and then the manifests reach. Part records
/// are listed first: a run deletes its records only after its manifest exists, so whatever a record
/// listed too late to be seen referred to is reached through that manifest. The referenced metadata
/// object ids are collected first (sorted, each once), then each object is read once for its chunks and
/// bundles.
async fn mark(repo: &Repository, run_retention: Duration, spill: &SpillConfig) -> Result<Marked> {
    let mut metadata = KeySpill::<()>::new(spill.clone());
    let mut bundles = KeySpill::<()>::new(spill.clone());
    let mut stale_parts = Vec::new();
    let mut snapshots = 0;
    let parse = |s: &str| {
        ObjectId::from_hex(s)
            .ok_or_else(|| Error::Invalid(format!("a manifest or part record names a malformed object id {s:?}")))
    };
    let oldest_live = now_ns() - run_retention.as_nanos() as i64;
    for meta in super::runs::list_all(repo).await? {
        if meta_ns(&meta) < oldest_live {
            stale_parts.push(meta);
            continue;
        }
        let record = match super::runs::read(repo, &meta.location).await {
            Ok(r) => r,
            Err(Error::Missing { .. }) => continue, // its run committed meanwhile
            Err(e) => return Err(e),
        };
        for id in &record.metadata {
            metadata.add(parse(id)?.0, ())?;
        }
    }
    for id in repo.list_snapshots().await? {
        let manifest = match repo.load_manifest(&id).await {
            Ok(x) => x,
            Err(Error::Missing { .. }) => continue, // forgotten meanwhile
            Err(e) => return Err(e),
        };
        snapshots += 1;
        for b in &manifest.bundles {
            bundles.add(parse(b)?.0, ())?;
        }
        for meta in &manifest.metadata {
            metadata.add(parse(meta)?.0, ())?;
        }
    }
    let metadata = metadata.finish()?;
    let mut chunks = KeySpill::<()>::new(spill.clone());
    let mut objects = metadata.cursor(0)?;
    while let Some((oid, ())) = objects.next_entry()? {
        for v in repo.get_metadata(&ObjectId(oid)).await? {
            for raw in v.chunk_ids.as_deref().unwrap_or_default().chunks_exact(32) {
                chunks.add(raw.try_into().expect("32 bytes"), ())?;
            }
            if let Some(bid) = v.bundle.as_ref().and_then(|b| b.bundle_id.as_deref()).and_then(ObjectId::from_slice) {
                bundles.add(bid.0, ())?;
            }
        }
    }
    Ok(Marked { snapshots, chunks: chunks.finish()?, metadata, bundles: bundles.finish()?, stale_parts })
}

/// How much of a pack the marked chunks use, summed over its chunk-index entries.
#[derive(Clone, Copy, Debug, Default)]
struct PackUse {
    /// Entries whose chunk is referenced.
    used: u64,
    /// Sealed bytes of the entries whose chunk is not referenced.
    unused_bytes: u64,
}

impl PackUse {
    fn of(referenced: bool, length: u32) -> Self {
        if referenced { PackUse { used: 1, unused_bytes: 0 } } else { PackUse { used: 0, unused_bytes: length as u64 } }
    }
}

impl Payload for PackUse {
    const LEN: usize = 16;
    fn add(&mut self, o: &Self) {
        self.used += o.used;
        self.unused_bytes += o.unused_bytes;
    }
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.used.to_le_bytes());
        out.extend_from_slice(&self.unused_bytes.to_le_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        let u = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        PackUse { used: u(0), unused_bytes: u(8) }
    }
}

/// The entries of one chunk-index object (sorted by chunk id, checked against the object's name).
async fn read_index_object(store: &dyn ObjectStore, key: &TenantKey, path: &Path) -> Result<Vec<IndexEntry>> {
    let bytes = get_bytes(store, path).await?;
    if object_id_of(path) != Some(ObjectId::of(&bytes)) {
        return Err(Error::corrupt(path, "bytes do not hash to the object's name"));
    }
    Ok(decode_index_object(key, path.as_ref(), &bytes)?.2)
}

/// Writes `entries` (any order) as index objects, one per partition (sorted and deduplicated here).
/// Returns the number of objects written.
async fn write_index_entries(
    store: &dyn ObjectStore,
    scope: &Scope,
    key: &TenantKey,
    entries: &mut Vec<IndexEntry>,
) -> Result<usize> {
    let mut by_p: BTreeMap<u8, Vec<IndexEntry>> = BTreeMap::new();
    for e in entries.drain(..) {
        by_p.entry(e.id.0[0]).or_default().push(e);
    }
    let mut written = 0;
    for (p, mut part) in by_p {
        part.sort_by_key(|a| a.id);
        part.dedup_by(|a, b| a.id == b.id);
        let (id, bytes) = encode_index_object(key, p, &part);
        let path = scope.index_object(p, &id);
        store.put(&path, PutPayload::from(bytes)).await.map_err(|e| Error::store(&path, e))?;
        written += 1;
    }
    Ok(written)
}

/// Removes the entries of `condemned` packs from the chunk index, object by object: an object naming a
/// condemned pack is replaced by one holding its other entries (written first; the old one is deleted
/// after), so every entry of a live pack is always in some object. Objects written meanwhile by backups
/// are read too and kept. Returns (objects written, objects deleted).
async fn drop_index_entries(
    store: &dyn ObjectStore,
    scope: &Scope,
    key: &TenantKey,
    condemned: &HashSet<ObjectId>,
) -> Result<(usize, usize)> {
    let (mut written, mut deleted) = (0, 0);
    for p in 0..=255u8 {
        for m in list(store, &scope.index_partition_prefix(p)).await? {
            let entries = read_index_object(store, key, &m.location).await?;
            if !entries.iter().any(|e| condemned.contains(&e.pack)) {
                continue;
            }
            let kept: Vec<IndexEntry> = entries.into_iter().filter(|e| !condemned.contains(&e.pack)).collect();
            let mut new_path = None;
            if !kept.is_empty() {
                let (id, bytes) = encode_index_object(key, p, &kept);
                let path = scope.index_object(p, &id);
                store.put(&path, PutPayload::from(bytes)).await.map_err(|e| Error::store(&path, e))?;
                written += 1;
                new_path = Some(path);
            }
            if new_path.as_ref() != Some(&m.location) {
                match store.delete(&m.location).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => deleted += 1,
                    Err(e) => return Err(Error::store(&m.location, e)),
                }
            }
        }
    }
    Ok((written, deleted))
}

/// Prunes the repository's share (see the module docs): condemns what no snapshot references, then sweeps
/// every deletion record no running backup can still depend on, waiting up to `opts.wait` for them.
pub async fn prune(repo: &mut Repository, opts: &PruneOptions) -> Result<PruneReport> {
    let lock = acquire_prune_lock(repo, opts.stale_after).await?;
    let mut report = PruneReport::default();
    let mut result = condemn(repo, opts, &mut report).await;
    if result.is_ok() && !opts.dry_run {
        result = sweep(repo, opts, &mut report).await;
    }
    lock.end().await;
    report.bytes_freed = report.bytes_deleted as i64 - report.bytes_written as i64;
    result.map(|()| report)
}

/// Compacts the share's chunk index ([`super::index::ChunkIndex::compact`]) while holding the prune lock,
/// so it never overlaps a prune (whose index rewrite it could otherwise undo) or another compaction.
/// Running backups are unaffected. A lock held by a live prune is an error naming its holder.
pub async fn compact_index(repo: &mut Repository, stale_after: Duration) -> Result<super::index::CompactStats> {
    let lock = acquire_prune_lock(repo, stale_after).await?;
    let result = repo.index().compact().await;
    lock.end().await;
    result
}

async fn acquire_prune_lock(repo: &Repository, stale_after: Duration) -> Result<Marker> {
    let path = repo.scope().lock("prune");
    for _ in 0..2 {
        match Marker::acquire(repo, "prune", "prune", true).await {
            Ok(m) => return Ok(m),
            Err(Error::Store { source: object_store::Error::AlreadyExists { .. }, .. }) => {
                let held = get_sealed::<MarkerBody>(repo.store().as_ref(), repo.key(), MARKER_MAGIC, &path).await;
                match held {
                    Ok(b) if now_ns() - b.refreshed_ns < stale_after.as_nanos() as i64 => {
                        return Err(Error::Invalid(format!(
                            "another prune or index compaction of {}/{} holds {path} (host {:?}, pid {}); try again later",
                            repo.scope().tenant(),
                            repo.scope().share(),
                            b.host,
                            b.pid
                        )));
                    }
                    // Stale (a crashed prune) or unreadable: take it over.
                    _ => {
                        let _ = repo.store().delete(&path).await;
                    }
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(Error::Invalid(format!("could not take the prune lock {path}")))
}

async fn condemn(repo: &mut Repository, opts: &PruneOptions, report: &mut PruneReport) -> Result<()> {
    let store = repo.store().clone();
    let scope = repo.scope().clone();
    let key = repo.key().clone();
    let spill = opts.spill_config();
    let now = now_ns();
    // Packs already condemned by an earlier prune are that record's to sweep (or rescue).
    let mut pending: HashSet<ObjectId> = HashSet::new();
    for m in list(store.as_ref(), &scope.prune_records_prefix()).await? {
        let r: Record = get_sealed(store.as_ref(), &key, RECORD_MAGIC, &m.location).await?;
        pending.extend(r.packs.iter().filter_map(|(h, _)| ObjectId::from_hex(h)));
    }
    // Markers, then part records and manifests (see the module docs).
    let stale_ns = opts.stale_after.as_nanos() as i64;
    let (live, stale): (Vec<_>, Vec<_>) =
        list_backups(repo).await?.into_iter().partition(|b| now - b.refreshed_ns < stale_ns);
    report.stale_markers = stale.into_iter().map(|b| b.marker).collect();
    let cutoff = live.iter().map(|b| b.started_ns).chain([now - opts.grace.as_nanos() as i64]).min().unwrap();
    report.backups_running = live;
    let marked = mark(repo, opts.run_retention, &spill).await?;
    report.snapshots = marked.snapshots;
    report.referenced_chunks = marked.chunks.len() as usize;

    // Each pack's use, from the chunk index: partition by partition, each index object's entries (sorted
    // by chunk id) merge-joined with that partition's range of the marked chunks.
    let mut usage = KeySpill::<PackUse>::new(spill.clone());
    for p in 0..=255u8 {
        for m in list(store.as_ref(), &scope.index_partition_prefix(p)).await? {
            let entries = read_index_object(store.as_ref(), &key, &m.location).await?;
            let mut live = marked.chunks.cursor(p)?;
            for e in entries {
                let referenced = live.seek(&e.id.0)?.is_some();
                usage.add(e.pack.0, PackUse::of(referenced, e.length))?;
            }
        }
    }
    let usage = usage.finish()?;
    report.sets_spilled = marked.spilled() + usize::from(usage.spilled());

    let mut condemned: HashSet<ObjectId> = HashSet::new();
    let mut record = Record::default();
    let mut repack: Vec<(Path, u64)> = Vec::new();
    let mut packs = store.list(Some(&scope.packs_prefix()));
    while let Some(m) = packs.try_next().await.map_err(|e| Error::store(scope.packs_prefix(), e))? {
        let Some(id) = object_id_of(&m.location) else { continue };
        report.packs += 1;
        report.pack_bytes += m.size;
        if pending.contains(&id) {
            report.packs_pending += 1;
            continue;
        }
        if meta_ns(&m) >= cutoff {
            report.packs_too_young += 1;
            continue;
        }
        let pack_use = match usage.get(&id.0)? {
            Some(u) => u,
            // Not in the index (a crashed writer's, or index damage): its header says what it holds.
            None => {
                let mut u = PackUse::default();
                for b in read_pack_header(store.as_ref(), &key, &m.location, m.size).await? {
                    u.add(&PackUse::of(marked.chunks.contains(&b.id.0)?, b.length));
                }
                u
            }
        };
        if pack_use.used == 0 {
            report.packs_unused += 1;
        } else if pack_use.unused_bytes > 0 && pack_use.unused_bytes as f64 >= opts.repack_unused * m.size as f64 {
            report.packs_repacked += 1;
            repack.push((m.location.clone(), m.size));
        } else {
            continue;
        }
        condemned.insert(id);
        record.packs.push((id.to_hex(), m.size));
        report.bytes_condemned += m.size;
    }
    drop(packs);
    for prefix in [scope.bundles_prefix(), scope.metadata_prefix()] {
        let mut objects = store.list(Some(&prefix));
        while let Some(m) = objects.try_next().await.map_err(|e| Error::store(&prefix, e))? {
            if meta_ns(&m) < cutoff && !marked.references(&scope, &m.location)? {
                report.objects_unused += 1;
                report.bytes_condemned += m.size;
                record.objects.push((m.location.to_string(), m.size));
            }
        }
    }
    for m in &marked.stale_parts {
        if meta_ns(m) < cutoff {
            report.objects_unused += 1;
            report.bytes_condemned += m.size;
            record.objects.push((m.location.to_string(), m.size));
        }
    }
    if opts.dry_run || (record.packs.is_empty() && record.objects.is_empty()) {
        return Ok(());
    }

    // Copy the referenced blobs of partly used packs, still sealed, into new packs; index each new pack
    // after writing it (entries buffered up to the spill budget, then written as index objects).
    let mut new_entries: Vec<IndexEntry> = Vec::new();
    let mut writer = PackWriter::new(repo.config().pack_target_size);
    for (i, (path, size)) in repack.iter().enumerate() {
        let bytes = repo.get_checked(path).await?;
        for b in pack::read_header(&key, path.as_ref(), &bytes, *size)? {
            if !marked.chunks.contains(&b.id.0)? {
                continue;
            }
            let blob = bytes
                .get(b.offset as usize..b.offset as usize + b.length as usize)
                .ok_or_else(|| Error::corrupt(path, format!("blob of chunk {} lies outside the pack", b.id)))?;
            writer.add_sealed(&b, blob);
        }
        if (writer.is_full() || i + 1 == repack.len()) && !writer.is_empty() {
            let (id, bytes, blobs) = writer.finish(&key);
            let path = scope.pack(&id);
            report.packs_written += 1;
            report.bytes_written += bytes.len() as u64;
            store.put(&path, PutPayload::from(bytes)).await.map_err(|e| Error::store(&path, e))?;
            new_entries.extend(blobs.iter().map(|b| IndexEntry::new(id, b)));
            if new_entries.len() >= spill.entries {
                report.index_objects_written +=
                    write_index_entries(store.as_ref(), &scope, &key, &mut new_entries).await?;
            }
        }
    }
    report.index_objects_written += write_index_entries(store.as_ref(), &scope, &key, &mut new_entries).await?;
    let (w, d) = drop_index_entries(store.as_ref(), &scope, &key, &condemned).await?;
    report.index_objects_written += w;
    report.index_objects_deleted += d;
    record.created_ns = now_ns();
    let id = format!("{}-{:08x}", record.created_ns, rand::rng().random::<u32>());
    put_sealed(store.as_ref(), &key, RECORD_MAGIC, &scope.prune_record(&id), &record, PutMode::Create).await?;
    Ok(())
}

async fn sweep(repo: &mut Repository, opts: &PruneOptions, report: &mut PruneReport) -> Result<()> {
    let store = repo.store().clone();
    let scope = repo.scope().clone();
    let key = repo.key().clone();
    let spill = opts.spill_config();
    let started = Instant::now();
    loop {
        let mut records = Vec::new();
        for m in list(store.as_ref(), &scope.prune_records_prefix()).await? {
            let r: Record = get_sealed(store.as_ref(), &key, RECORD_MAGIC, &m.location).await?;
            records.push((m.location, r));
        }
        if records.is_empty() {
            break;
        }
        let now = now_ns();
        let stale_ns = opts.stale_after.as_nanos() as i64;
        let live: Vec<BackupInProgress> =
            list_backups(repo).await?.into_iter().filter(|b| now - b.refreshed_ns < stale_ns).collect();
        let (ready, waiting): (Vec<_>, Vec<_>) =
            records.into_iter().partition(|(_, r)| live.iter().all(|b| b.started_ns >= r.created_ns));
        if ready.is_empty() {
            if started.elapsed() >= opts.wait {
                report.records_pending = waiting.len();
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
            continue;
        }
        // Mark again: backups that ran meanwhile may refer to condemned objects.
        let marked = mark(repo, opts.run_retention, &spill).await?;
        // Which referenced chunks of condemned packs the index still holds (in another pack).
        let mut wanted = KeySpill::<()>::new(spill.clone());
        for (_, r) in &ready {
            for (id, size) in r.packs.iter().filter_map(|(h, s)| Some((ObjectId::from_hex(h)?, *s))) {
                match read_pack_header(store.as_ref(), &key, &scope.pack(&id), size).await {
                    Ok(header) => {
                        for b in header {
                            if marked.chunks.contains(&b.id.0)? {
                                wanted.add(b.id.0, ())?;
                            }
                        }
                    }
                    Err(Error::Missing { .. }) => {} // swept before a crash
                    Err(e) => return Err(e),
                }
            }
        }
        let wanted = wanted.finish()?;
        let mut indexed = KeySpill::<()>::new(spill.clone());
        if !wanted.is_empty() {
            for p in 0..=255u8 {
                for m in list(store.as_ref(), &scope.index_partition_prefix(p)).await? {
                    let mut w = wanted.cursor(p)?;
                    for e in read_index_object(store.as_ref(), &key, &m.location).await? {
                        if w.seek(&e.id.0)?.is_some() {
                            indexed.add(e.id.0, ())?;
                        }
                    }
                }
            }
        }
        let indexed = indexed.finish()?;
        // Chunks of the packs rescued in this sweep (indexed again by it).
        let mut reindexed: HashSet<ChunkId> = HashSet::new();
        let mut rescued: Vec<IndexEntry> = Vec::new();
        for (record_path, r) in &ready {
            let mut doomed: Vec<(Path, u64, bool)> = Vec::new();
            for (hex, size) in &r.packs {
                let Some(id) = ObjectId::from_hex(hex) else { continue };
                let path = scope.pack(&id);
                let header = match read_pack_header(store.as_ref(), &key, &path, *size).await {
                    Ok(h) => h,
                    Err(Error::Missing { .. }) => continue, // swept before a crash
                    Err(e) => return Err(e),
                };
                let mut needed = false;
                for b in &header {
                    if marked.chunks.contains(&b.id.0)? && !indexed.contains(&b.id.0)? && !reindexed.contains(&b.id) {
                        needed = true;
                        break;
                    }
                }
                if needed {
                    report.packs_rescued += 1;
                    rescued.extend(header.iter().map(|b| IndexEntry::new(id, b)));
                    reindexed.extend(header.iter().map(|b| b.id));
                    continue;
                }
                doomed.push((path, *size, true));
            }
            for (k, size) in &r.objects {
                let path = Path::from(k.as_str());
                if marked.references(&scope, &path)? {
                    report.objects_rescued += 1;
                } else {
                    doomed.push((path, *size, false));
                }
            }
            // Rescued entries are indexed before anything is deleted.
            report.index_objects_written += write_index_entries(store.as_ref(), &scope, &key, &mut rescued).await?;
            for (path, size, is_pack) in doomed {
                match store.delete(&path).await {
                    Ok(()) => {
                        report.bytes_deleted += size;
                        if is_pack {
                            report.packs_deleted += 1;
                        } else {
                            report.objects_deleted += 1;
                        }
                    }
                    Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(Error::store(&path, e)),
                }
            }
            store.delete(record_path).await.map_err(|e| Error::store(record_path, e))?;
        }
        if waiting.is_empty() {
            break;
        }
    }
    report.waited_secs = started.elapsed().as_secs_f64();
    Ok(())
}
