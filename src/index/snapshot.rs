//! Snapshots of a share's node table in a repository: atomic commit, base + delta history, merged reads,
//! garbage collection.
//!
//! A snapshot is committed in two steps: its data files are written first, then its manifest is created
//! with create-if-absent (see [`crate::index::manifest`]). Readers only ever start from a manifest, so
//! they never see a half-written snapshot; a crash leaves unreferenced data files that [`NodeIndex::gc`]
//! removes.
//!
//! History: every `max_deltas + 1`-th snapshot is a *base* (all rows); the others are *deltas* holding
//! only the rows added or changed since the previous snapshot and the ids deleted since. An unchanged
//! file costs nothing in a delta. Reading a snapshot merges its base with its deltas in one streaming pass
//! over files sorted by `node_id`, in memory bounded by a few row groups.

use std::collections::HashSet;
use std::sync::Arc;

use anyhow::{Context, bail};
use arrow::array::{AsArray, Int64Array, RecordBatch};
use arrow::compute::{concat_batches, interleave_record_batch};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use super::BatchStream;
use super::idmap::{IdMap, idmap_schema};
use super::manifest::{
    ChangeRecord, FORMAT, FileRef, IndexManifest, Layer, LayerKind, SnapshotSource, Totals, check_id, data_dir_prefix,
    manifest_key, share_prefix, snapshot_id_from_key,
};
use super::node::{NodeColumns, NodeKind, check_ascending, check_node_schema, col, node_schema};
use super::parquet_io::{FileWriter, ParquetTuning, open_stream};

/// Rows per batch produced by readers.
pub const READ_BATCH_ROWS: usize = 8192;

/// How snapshots are written.
#[derive(Debug, Clone, Copy)]
pub struct WriteOptions {
    /// At most this many deltas follow a base before the next snapshot is written as a base again.
    /// 0 writes every snapshot as a base.
    pub max_deltas: usize,
    pub parquet: ParquetTuning,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions { max_deltas: 7, parquet: ParquetTuning::default() }
    }
}

/// A repository: an object store holding the indexes of many tenants' shares.
#[derive(Debug, Clone)]
pub struct NodeIndex {
    store: Arc<dyn ObjectStore>,
    location: String,
}

/// The schema of a delta's `deleted` file.
pub fn deleted_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("node_id", DataType::Int64, false)]))
}

impl NodeIndex {
    /// Open a repository at a location (a local directory, created if missing, a `file://` URL, or
    /// `az://CONTAINER/PREFIX`; see [`crate::repository::store`]).
    pub fn open(location: &str) -> anyhow::Result<Self> {
        let store = crate::repository::store::open(location)?;
        Ok(NodeIndex { store, location: location.to_string() })
    }

    /// A repository over any object store (tests use `InMemory`).
    pub fn from_store(store: Arc<dyn ObjectStore>, location: &str) -> Self {
        NodeIndex { store, location: location.to_string() }
    }

    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    pub fn location(&self) -> &str {
        &self.location
    }

    /// Every (tenant, share) that has at least one committed snapshot, sorted.
    pub async fn shares(&self) -> anyhow::Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        for t in self.store.list_with_delimiter(None).await?.common_prefixes {
            let tenant = t.filename().unwrap_or_default().to_string();
            for s in self.store.list_with_delimiter(Some(&t)).await?.common_prefixes {
                let share = s.filename().unwrap_or_default().to_string();
                let snaps = Path::from(format!("{}/snapshots", share_prefix(&tenant, &share)));
                if self
                    .store
                    .list_with_delimiter(Some(&snaps))
                    .await?
                    .objects
                    .iter()
                    .any(|o| o.location.as_ref().ends_with(".json"))
                {
                    out.push((tenant.clone(), share));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Ids of the committed snapshots of a share, ascending.
    pub async fn snapshot_ids(&self, tenant: &str, share: &str) -> anyhow::Result<Vec<i64>> {
        check_id("tenant", tenant)?;
        check_id("share", share)?;
        let prefix = Path::from(format!("{}/snapshots", share_prefix(tenant, share)));
        let list = self.store.list_with_delimiter(Some(&prefix)).await.with_context(|| format!("listing {prefix}"))?;
        let mut ids: Vec<i64> = list.objects.iter().filter_map(|o| snapshot_id_from_key(o.location.as_ref())).collect();
        ids.sort_unstable();
        Ok(ids)
    }

    /// The manifest of one snapshot. An unknown id is an error that names the share and the ids that exist.
    pub async fn manifest(&self, tenant: &str, share: &str, snapshot_id: i64) -> anyhow::Result<IndexManifest> {
        check_id("tenant", tenant)?;
        check_id("share", share)?;
        let key = manifest_key(tenant, share, snapshot_id);
        let bytes = match self.store.get(&Path::from(key.as_str())).await {
            Ok(r) => r.bytes().await.with_context(|| format!("reading {key}"))?,
            Err(object_store::Error::NotFound { .. }) => {
                let ids = self.snapshot_ids(tenant, share).await?;
                let have = match (ids.first(), ids.last()) {
                    (Some(a), Some(b)) => format!("snapshots {a}..={b} exist"),
                    _ => "it has no snapshots".to_string(),
                };
                bail!("snapshot {snapshot_id} of {tenant}/{share} does not exist ({have})");
            }
            Err(e) => return Err(e).with_context(|| format!("reading {key}")),
        };
        let m: IndexManifest =
            serde_json::from_slice(&bytes).with_context(|| format!("{key}: not a valid manifest"))?;
        if m.format != FORMAT {
            bail!("{key}: unsupported format {:?} (this afb reads {FORMAT:?})", m.format);
        }
        if m.snapshot_id != snapshot_id || m.tenant_id != tenant || m.share_id != share {
            bail!("{key}: manifest names {}/{} snapshot {}, not its own key", m.tenant_id, m.share_id, m.snapshot_id);
        }
        if m.layers.first().map(|l| l.kind) != Some(LayerKind::Base) {
            bail!("{key}: manifest does not start with a base layer");
        }
        Ok(m)
    }

    /// The latest committed snapshot of a share, if any.
    pub async fn latest(&self, tenant: &str, share: &str) -> anyhow::Result<Option<IndexManifest>> {
        match self.snapshot_ids(tenant, share).await?.last() {
            Some(id) => Ok(Some(self.manifest(tenant, share, *id).await?)),
            None => Ok(None),
        }
    }

    /// All manifests of a share, ascending by id.
    pub async fn manifests(&self, tenant: &str, share: &str) -> anyhow::Result<Vec<IndexManifest>> {
        let mut out = Vec::new();
        for id in self.snapshot_ids(tenant, share).await? {
            out.push(self.manifest(tenant, share, id).await?);
        }
        Ok(out)
    }

    /// The share's FileId → node id map as of its latest snapshot (empty if there is none).
    pub async fn load_idmap(&self, tenant: &str, share: &str) -> anyhow::Result<IdMap> {
        let Some(m) = self.latest(tenant, share).await? else { return Ok(IdMap::new()) };
        let mut batches = Vec::new();
        for f in &m.idmap {
            let s = open_stream(&self.store, &f.key, Some(f.bytes), &idmap_schema(), 65536).await?;
            batches.extend(s.try_collect::<Vec<_>>().await?);
        }
        IdMap::from_segments(&batches)
    }

    /// Read a snapshot as one stream of batches sorted by `node_id`.
    ///
    /// `columns` are indices into [`node_schema`] (see [`col`]); `node_id` is always included, and the
    /// output has the selected columns in schema order. `None` reads every column. The merge runs in its
    /// own task, so two snapshots read side by side decode on two cores.
    pub fn read(&self, m: &IndexManifest, columns: Option<&[usize]>) -> anyhow::Result<BatchStream> {
        let mut cols: Vec<usize> =
            columns.map(|c| c.to_vec()).unwrap_or_else(|| (0..node_schema().fields().len()).collect());
        cols.push(col::NODE_ID);
        cols.sort_unstable();
        cols.dedup();
        if cols.last().is_some_and(|&c| c >= node_schema().fields().len()) {
            bail!("column index out of range");
        }
        let schema = Arc::new(node_schema().project(&cols)?);
        let (tx, rx) = tokio::sync::mpsc::channel::<anyhow::Result<RecordBatch>>(4);
        let store = self.store.clone();
        let layers = m.layers.clone();
        tokio::spawn(async move {
            let result = merge_layers(&store, &layers, schema, &tx).await;
            if let Err(e) = result {
                let _ = tx.send(Err(e)).await;
            }
        });
        Ok(futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) }).boxed())
    }

    /// Start writing the next snapshot of a share. Rows go in with [`SnapshotWriter::write`], strictly
    /// ascending by `node_id`; nothing is visible until [`SnapshotWriter::commit`].
    pub async fn begin(&self, tenant: &str, share: &str, opts: WriteOptions) -> anyhow::Result<SnapshotWriter> {
        check_id("tenant", tenant)?;
        check_id("share", share)?;
        let prev = self.latest(tenant, share).await?;
        let snapshot_id = prev.as_ref().map_or(1, |m| m.snapshot_id + 1);
        let nonce = format!("{:016x}", rand::random::<u64>());
        let dir = format!("{}-{nonce}", data_dir_prefix(tenant, share, snapshot_id));
        let as_delta = prev.as_ref().is_some_and(|m| m.layers.len() <= opts.max_deltas);
        let nodes_key = format!("{dir}/{}.parquet", if as_delta { "changed" } else { "nodes" });
        let nodes = FileWriter::create(&self.store, &nodes_key, node_schema(), opts.parquet)?;
        // Every snapshot after the first is compared row by row with its predecessor, to record its
        // change (and, for a delta, to write only what changed).
        let compare = match &prev {
            Some(m) => Some(Compare {
                prev: Box::new(Cursor::new(self.read(m, None)?, "previous snapshot")),
                before: FileWriter::create(&self.store, &format!("{dir}/before.parquet"), node_schema(), opts.parquet)?,
                before_rows: super::node::NodeBatchBuilder::new(READ_BATCH_ROWS),
                after: match as_delta {
                    true => None,
                    false => Some(FileWriter::create(
                        &self.store,
                        &format!("{dir}/after.parquet"),
                        node_schema(),
                        opts.parquet,
                    )?),
                },
                deleted: match as_delta {
                    true => Some(FileWriter::create(
                        &self.store,
                        &format!("{dir}/deleted.parquet"),
                        deleted_schema(),
                        opts.parquet,
                    )?),
                    false => None,
                },
                deleted_buf: Vec::new(),
            }),
            None => None,
        };
        Ok(SnapshotWriter {
            repo: self.clone(),
            tenant: tenant.to_string(),
            share: share.to_string(),
            snapshot_id,
            dir,
            prev,
            as_delta,
            compare,
            nodes,
            changed: super::node::NodeBatchBuilder::new(READ_BATCH_ROWS),
            last_id: None,
            totals: Totals::default(),
            opts,
            source: None,
        })
    }

    /// Delete data files of a share that no manifest references and that are older than `grace`
    /// (so a writer still in progress is left alone). Returns the deleted keys.
    pub async fn gc(&self, tenant: &str, share: &str, grace: std::time::Duration) -> anyhow::Result<Vec<String>> {
        let mut referenced = HashSet::new();
        for m in self.manifests(tenant, share).await? {
            referenced.extend(m.referenced_keys().map(str::to_string));
        }
        let cutoff = chrono_now() - chrono_duration(grace);
        let prefix = Path::from(format!("{}/data", share_prefix(tenant, share)));
        let objects: Vec<_> = self.store.list(Some(&prefix)).try_collect().await?;
        let mut deleted = Vec::new();
        for o in objects {
            let key = o.location.to_string();
            if !referenced.contains(&key) && o.last_modified <= cutoff {
                self.store.delete(&o.location).await.with_context(|| format!("deleting {key}"))?;
                deleted.push(key);
            }
        }
        deleted.sort();
        Ok(deleted)
    }
}

fn chrono_now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

fn chrono_duration(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// The previous snapshot, walked in step with the rows being written.
struct Compare {
    prev: Box<Cursor>,
    /// The change record's `before`: previous rows of every node changed or deleted.
    before: FileWriter,
    before_rows: super::node::NodeBatchBuilder,
    /// Base only: the change record's `after` (a delta's `nodes` file is its `after`).
    after: Option<FileWriter>,
    /// Delta only: ids deleted since the previous snapshot (the merge reader needs them).
    deleted: Option<FileWriter>,
    deleted_buf: Vec<i64>,
}

impl Compare {
    /// The previous snapshot's row at the cursor is gone or changed: keep it in `before`.
    async fn keep_before(&mut self) -> anyhow::Result<()> {
        let (pb, pi) = self.prev.current_ref();
        if let Some(full) = self.before_rows.push_from(&NodeColumns::new(pb), pi) {
            self.before.write(&full).await?;
        }
        Ok(())
    }

    /// Every previous row below `bound` is gone (`None`: every remaining row).
    async fn delete_below(&mut self, bound: Option<i64>) -> anyhow::Result<()> {
        while let Some(pid) = self.prev.head().await? {
            if bound.is_some_and(|b| pid >= b) {
                break;
            }
            self.keep_before().await?;
            if let Some(d) = &mut self.deleted {
                self.deleted_buf.push(pid);
                if self.deleted_buf.len() >= READ_BATCH_ROWS {
                    flush_deleted(d, &mut self.deleted_buf).await?;
                }
            }
            self.prev.advance();
        }
        Ok(())
    }
}

/// Writes one snapshot. Dropping it without [`commit`](Self::commit) leaves only garbage for `gc`.
pub struct SnapshotWriter {
    repo: NodeIndex,
    tenant: String,
    share: String,
    snapshot_id: i64,
    dir: String,
    prev: Option<IndexManifest>,
    /// `nodes` holds only the rows that changed (a delta layer), not every row (a base).
    as_delta: bool,
    /// Present when there is a previous snapshot.
    compare: Option<Compare>,
    nodes: FileWriter,
    /// Rows new or changed since the previous snapshot, batched for `nodes` (delta) or `after` (base).
    changed: super::node::NodeBatchBuilder,
    last_id: Option<i64>,
    totals: Totals,
    opts: WriteOptions,
    source: Option<SnapshotSource>,
}

impl SnapshotWriter {
    /// Record where the rows come from (an Azure share snapshot); written into the manifest.
    pub fn set_source(&mut self, source: SnapshotSource) {
        self.source = Some(source);
    }

    /// The id this snapshot will have when committed.
    pub fn snapshot_id(&self) -> i64 {
        self.snapshot_id
    }

    /// Append node rows. Across all calls, `node_id` must be strictly ascending and `>= 1`.
    pub async fn write(&mut self, batch: &RecordBatch) -> anyhow::Result<()> {
        check_node_schema(&batch.schema())?;
        self.last_id = check_ascending(batch, self.last_id)?;
        let c = NodeColumns::new(batch);
        for i in 0..c.len() {
            if NodeKind::from_i8(c.kind.value(i))? == NodeKind::Dir {
                self.totals.dirs += 1;
            } else {
                self.totals.files += 1;
                self.totals.bytes += c.size.value(i).max(0) as u64;
            }
        }
        self.totals.nodes += c.len() as u64;
        if !self.as_delta {
            self.nodes.write(batch).await?;
        }
        let Some(cmp) = &mut self.compare else { return Ok(()) };
        for i in 0..c.len() {
            let id = c.node_id.value(i);
            cmp.delete_below(Some(id)).await?;
            let same = match cmp.prev.head().await? {
                Some(pid) if pid == id => {
                    let (pb, pi) = cmp.prev.current_ref();
                    let same = rows_equal(&NodeColumns::new(pb), pi, &c, i);
                    if !same {
                        cmp.keep_before().await?;
                    }
                    cmp.prev.advance();
                    same
                }
                _ => false,
            };
            if !same && let Some(full) = self.changed.push_from(&c, i) {
                match &mut cmp.after {
                    Some(after) => after.write(&full).await?,
                    None => self.nodes.write(&full).await?,
                }
            }
        }
        Ok(())
    }

    /// Write the idmap segment (if `idmap` has unsaved pairs), then the manifest: the snapshot becomes
    /// visible atomically. Fails without committing if another writer committed the same id first.
    pub async fn commit(mut self, idmap: Option<&mut IdMap>) -> anyhow::Result<IndexManifest> {
        let store = self.repo.store.clone();
        // Finish the comparison: what is left of the previous snapshot was deleted.
        let mut change_files = None;
        let mut deleted_ref = None;
        if let Some(mut cmp) = self.compare.take() {
            cmp.delete_below(None).await?;
            if let Some(rest) = self.changed.finish() {
                match &mut cmp.after {
                    Some(after) => after.write(&rest).await?,
                    None => self.nodes.write(&rest).await?,
                }
            }
            if let Some(rest) = cmp.before_rows.finish() {
                cmp.before.write(&rest).await?;
            }
            if let Some(mut d) = cmp.deleted {
                flush_deleted(&mut d, &mut cmp.deleted_buf).await?;
                let (key, rows, bytes) = d.close().await?;
                deleted_ref = Some(FileRef { key, rows, bytes });
            }
            let (key, rows, bytes) = cmp.before.close().await?;
            let before = FileRef { key, rows, bytes };
            let after = match cmp.after {
                Some(a) => {
                    let (key, rows, bytes) = a.close().await?;
                    Some(FileRef { key, rows, bytes })
                }
                None => None,
            };
            change_files = Some((before, after));
        }
        let (key, rows, bytes) = self.nodes.close().await?;
        let own_layer = Layer {
            snapshot_id: self.snapshot_id,
            kind: if self.as_delta { LayerKind::Delta } else { LayerKind::Base },
            nodes: FileRef { key, rows, bytes },
            deleted: deleted_ref,
        };
        let since = self.prev.as_ref().map_or(0, |p| p.snapshot_id);
        let changes = change_files.map(|(before, after)| ChangeRecord {
            since,
            after: after.unwrap_or_else(|| own_layer.nodes.clone()),
            before,
        });
        let mut layers = match (&self.prev, own_layer.kind) {
            (Some(p), LayerKind::Delta) => p.layers.clone(),
            _ => Vec::new(),
        };
        layers.push(own_layer);
        let mut idmap_refs = self.prev.as_ref().map(|p| p.idmap.clone()).unwrap_or_default();
        let mut next_node_id = self.prev.as_ref().map_or(1, |p| p.next_node_id).max(self.last_id.map_or(1, |i| i + 1));
        let mut saved = false;
        if let Some(map) = idmap.as_deref()
            && let Some(seg) = map.unsaved_segment()
        {
            let mut w =
                FileWriter::create(&store, &format!("{}/idmap.parquet", self.dir), idmap_schema(), self.opts.parquet)?;
            w.write(&seg).await?;
            let (key, rows, bytes) = w.close().await?;
            idmap_refs.push(FileRef { key, rows, bytes });
            saved = true;
        }
        if let Some(map) = idmap.as_deref() {
            next_node_id = next_node_id.max(map.next_id());
        }
        let m = IndexManifest {
            format: FORMAT.to_string(),
            tenant_id: self.tenant.clone(),
            share_id: self.share.clone(),
            snapshot_id: self.snapshot_id,
            created_at: now_rfc3339(),
            layers,
            idmap: idmap_refs,
            next_node_id,
            totals: self.totals,
            source: self.source.take(),
            changes,
        };
        // The directory summary (readers list directories without a full read) goes in before the manifest.
        super::summary::write_for_commit(&self.repo, &m).await?;
        let key = manifest_key(&self.tenant, &self.share, self.snapshot_id);
        let body = serde_json::to_vec_pretty(&m)?;
        let opts = PutOptions { mode: PutMode::Create, ..Default::default() };
        match store.put_opts(&Path::from(key.as_str()), PutPayload::from(body), opts).await {
            Ok(_) => {}
            Err(object_store::Error::AlreadyExists { .. }) => {
                bail!(
                    "snapshot {} of {}/{} was committed by another writer; this one was not",
                    self.snapshot_id,
                    self.tenant,
                    self.share
                )
            }
            Err(e) => return Err(e).with_context(|| format!("committing {key}")),
        }
        if saved && let Some(map) = idmap {
            map.mark_saved();
        }
        Ok(m)
    }
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

async fn flush_deleted(w: &mut FileWriter, buf: &mut Vec<i64>) -> anyhow::Result<()> {
    if buf.is_empty() {
        return Ok(());
    }
    let ids = Int64Array::from(std::mem::take(buf));
    w.write(&RecordBatch::try_new(deleted_schema(), vec![Arc::new(ids)])?).await
}

/// Row `i` of `a` equals row `j` of `b` in every column.
pub fn rows_equal(a: &NodeColumns<'_>, i: usize, b: &NodeColumns<'_>, j: usize) -> bool {
    a.node_id.value(i) == b.node_id.value(j)
        && a.parent_id.value(i) == b.parent_id.value(j)
        && a.size.value(i) == b.size.value(j)
        && a.mtime.value(i) == b.mtime.value(j)
        && a.ctime.value(i) == b.ctime.value(j)
        && a.attributes.value(i) == b.attributes.value(j)
        && a.xorhash.value(i) == b.xorhash.value(j)
        && a.kind.value(i) == b.kind.value(j)
        && a.name.value(i) == b.name.value(j)
}

/// A position in a stream of batches sorted by their first column (`node_id`).
pub struct Cursor {
    stream: BatchStream,
    what: String,
    batch: Option<RecordBatch>,
    ids: Option<Int64Array>,
    pos: usize,
    done: bool,
}

impl Cursor {
    pub fn new(stream: BatchStream, what: &str) -> Self {
        Cursor { stream, what: what.to_string(), batch: None, ids: None, pos: 0, done: false }
    }

    /// The id at the cursor, loading the next batch if needed; `None` at the end.
    pub async fn head(&mut self) -> anyhow::Result<Option<i64>> {
        loop {
            if let Some(ids) = &self.ids
                && self.pos < ids.len()
            {
                return Ok(Some(ids.value(self.pos)));
            }
            if self.done {
                return Ok(None);
            }
            match self.stream.next().await {
                Some(b) => {
                    let b = b.with_context(|| format!("reading {}", self.what))?;
                    self.ids = Some(b.column(0).as_primitive::<Int64Type>().clone());
                    self.batch = Some(b);
                    self.pos = 0;
                }
                None => {
                    self.done = true;
                    self.batch = None;
                    self.ids = None;
                }
            }
        }
    }

    /// The current batch and row (only after [`head`](Self::head) returned `Some`).
    pub fn current(&self) -> (RecordBatch, usize) {
        (self.batch.clone().expect("head() first"), self.pos)
    }

    /// Like [`current`](Self::current), borrowed.
    pub fn current_ref(&self) -> (&RecordBatch, usize) {
        (self.batch.as_ref().expect("head() first"), self.pos)
    }

    pub fn advance(&mut self) {
        self.pos += 1;
    }

    /// Number of rows from the cursor on, within the current batch, whose id is below `bound`.
    fn run_below(&self, bound: i64) -> usize {
        let ids = &self.ids.as_ref().expect("head() first").values()[self.pos..];
        ids.partition_point(|&id| id < bound)
    }
}

/// Merge the layers of one snapshot into `tx`, sorted by node_id, with the given projected schema.
async fn merge_layers(
    store: &Arc<dyn ObjectStore>,
    layers: &[Layer],
    schema: SchemaRef,
    tx: &tokio::sync::mpsc::Sender<anyhow::Result<RecordBatch>>,
) -> anyhow::Result<()> {
    // rows[l] / dels[l] for layer l; dels[0] is always None (a base deletes nothing).
    let mut rows = Vec::new();
    let mut dels = Vec::new();
    for l in layers {
        rows.push(Cursor::new(
            open_stream(store, &l.nodes.key, Some(l.nodes.bytes), &schema, READ_BATCH_ROWS).await?,
            &l.nodes.key,
        ));
        dels.push(match &l.deleted {
            Some(d) => Some(Cursor::new(
                open_stream(store, &d.key, Some(d.bytes), &deleted_schema(), READ_BATCH_ROWS).await?,
                &d.key,
            )),
            None => None,
        });
    }
    // Fast path: a base alone is already the snapshot.
    if rows.len() == 1 {
        let mut only = rows.pop().expect("one layer");
        while let Some(b) = only.stream.next().await {
            if tx.send(b).await.is_err() {
                return Ok(());
            }
        }
        return Ok(());
    }
    let mut pending = Pending::default();
    loop {
        // Smallest head over all cursors, and the top layer mentioning it.
        let mut min: Option<i64> = None;
        for c in rows.iter_mut().chain(dels.iter_mut().flatten()) {
            if let Some(h) = c.head().await? {
                min = Some(min.map_or(h, |m: i64| m.min(h)));
            }
        }
        let Some(id) = min else { break };
        let mut winner: Option<(usize, bool)> = None; // (layer, is_delete)
        let mut holders = 0;
        for l in 0..rows.len() {
            if rows[l].head().await? == Some(id) {
                winner = Some((l, false));
                holders += 1;
            }
            if let Some(d) = dels[l].as_mut()
                && d.head().await? == Some(id)
            {
                winner = Some((l, true));
                holders += 1;
            }
        }
        let (layer, is_delete) = winner.expect("some cursor holds the minimum");
        if holders == 1 && layer == 0 {
            // A run of base rows untouched by any delta: pass it through as a slice.
            let mut bound = i64::MAX;
            for c in rows[1..].iter_mut().chain(dels.iter_mut().flatten()) {
                if let Some(h) = c.head().await? {
                    bound = bound.min(h);
                }
            }
            let n = rows[0].run_below(bound);
            if n >= 8 {
                let (b, pos) = rows[0].current_ref();
                pending.push_slice(b.slice(pos, n))?;
                rows[0].pos += n;
                if pending.len() >= READ_BATCH_ROWS {
                    pending.flush(&schema, tx).await?;
                }
                continue;
            }
        }
        if !is_delete {
            let (b, pos) = rows[layer].current();
            pending.push(layer, b, pos);
        }
        for c in rows.iter_mut().chain(dels.iter_mut().flatten()) {
            if c.head().await? == Some(id) {
                c.advance();
            }
        }
        if pending.len() >= READ_BATCH_ROWS {
            pending.flush(&schema, tx).await?;
        }
    }
    pending.flush(&schema, tx).await?;
    Ok(())
}

/// Output being assembled: zero-copy slices of base runs and single rows picked from any layer, kept in
/// order and concatenated into one batch of about [`READ_BATCH_ROWS`] rows.
#[derive(Default)]
struct Pending {
    /// Finished pieces, in order.
    parts: Vec<RecordBatch>,
    parts_rows: usize,
    /// Batches referenced by `picks`.
    batches: Vec<RecordBatch>,
    /// (layer, address of the batch's first buffer, index into `batches`): the last batch seen per layer.
    slot: Vec<(usize, usize, usize)>,
    picks: Vec<(usize, usize)>,
}

impl Pending {
    fn len(&self) -> usize {
        self.parts_rows + self.picks.len()
    }

    fn push(&mut self, layer: usize, b: RecordBatch, row: usize) {
        let addr = b.column(0).to_data().buffers()[0].as_ptr() as usize;
        let idx = match self.slot.iter().find(|s| s.0 == layer && s.1 == addr) {
            Some(s) => s.2,
            None => {
                self.batches.push(b);
                let i = self.batches.len() - 1;
                self.slot.retain(|s| s.0 != layer);
                self.slot.push((layer, addr, i));
                i
            }
        };
        self.picks.push((idx, row));
    }

    fn push_slice(&mut self, b: RecordBatch) -> anyhow::Result<()> {
        self.seal_picks()?;
        self.parts_rows += b.num_rows();
        self.parts.push(b);
        Ok(())
    }

    fn seal_picks(&mut self) -> anyhow::Result<()> {
        if !self.picks.is_empty() {
            let refs: Vec<&RecordBatch> = self.batches.iter().collect();
            let b = interleave_record_batch(&refs, &self.picks)?;
            self.parts_rows += b.num_rows();
            self.parts.push(b);
            self.picks.clear();
        }
        self.batches.clear();
        self.slot.clear();
        Ok(())
    }

    async fn flush(
        &mut self,
        schema: &SchemaRef,
        tx: &tokio::sync::mpsc::Sender<anyhow::Result<RecordBatch>>,
    ) -> anyhow::Result<()> {
        self.seal_picks()?;
        if self.parts.is_empty() {
            return Ok(());
        }
        let out = if self.parts.len() == 1 {
            self.parts.pop().expect("one part")
        } else {
            concat_batches(schema, &self.parts)?
        };
        self.parts.clear();
        self.parts_rows = 0;
        let _ = tx.send(Ok(out)).await;
        Ok(())
    }
}
