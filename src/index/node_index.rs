//! The node index: an object store holding the index snapshots of many tenants' shares, and the read
//! side of those snapshots: listing shares and snapshots, loading manifests and idmaps, and reading a
//! snapshot as one stream sorted by `node_id` (a base merged with its deltas in one pass over files
//! sorted by `node_id`, in memory bounded by a few row groups). Writing and garbage collection are in
//! [`super::snapshot`].

use std::sync::Arc;

use anyhow::{Context, bail};
use arrow::array::{AsArray, Int64Array, RecordBatch};
use arrow::compute::{concat_batches, interleave_record_batch};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use super::BatchStream;
use super::manifest::{
    FORMAT, IndexManifest, Layer, LayerKind, check_id, manifest_key, share_prefix, snapshot_id_from_key,
};
use super::node::{NodeId, col, node_schema};
use super::parquet_io::{IdRuns, open_stream_in};

/// Rows per batch produced by readers.
pub const READ_BATCH_ROWS: usize = 8192;

/// A repository: an object store holding the indexes of many tenants' shares.
#[derive(Debug, Clone)]
pub struct NodeIndex {
    store: Arc<dyn ObjectStore>,
    location: String,
    /// The same directory as `store` when the repository is a local one: where its objects' files are.
    local: Option<Arc<object_store::local::LocalFileSystem>>,
}

/// The schema of a delta's `deleted` file.
pub fn deleted_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("node_id", DataType::Int64, false)]))
}

impl NodeIndex {
    /// Open a repository at a location (a local directory, created if missing, a `file://` URL, or
    /// `az://CONTAINER/PREFIX`; see [`crate::repository::store`]).
    pub fn open(location: &str) -> anyhow::Result<Self> {
        let parsed = crate::repository::store::Location::parse(location)?;
        let store = parsed.open()?;
        let local = match parsed.local_dir() {
            Some(dir) => Some(Arc::new(
                object_store::local::LocalFileSystem::new_with_prefix(dir)
                    .with_context(|| format!("opening repository {}", dir.display()))?,
            )),
            None => None,
        };
        Ok(NodeIndex { store, location: location.to_string(), local })
    }

    /// A repository over any object store (tests use `InMemory`).
    pub fn from_store(store: Arc<dyn ObjectStore>, location: &str) -> Self {
        NodeIndex { store, location: location.to_string(), local: None }
    }

    /// The file that holds object `key`, when the repository is a local directory (`None` for Blob and
    /// for a store given to [`from_store`](Self::from_store)). For readers that map a file in place.
    pub fn local_file(&self, key: &str) -> Option<std::path::PathBuf> {
        self.local.as_ref()?.path_to_filesystem(&Path::from(key)).ok()
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
        m.check_totals().with_context(|| format!("{key}: inconsistent manifest"))?;
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

    /// Read a snapshot as one stream of batches sorted by `node_id`, with the hashes of its hash layer
    /// (see [`super::hashes`]) when `xorhash` is read.
    ///
    /// `columns` are indices into [`node_schema`] (see [`col`]); `node_id` is always included, and the
    /// output has the selected columns in schema order. `None` reads every column. The merge runs in its
    /// own task, so two snapshots read side by side decode on two cores.
    pub fn read(&self, m: &IndexManifest, columns: Option<&[usize]>) -> anyhow::Result<BatchStream> {
        self.read_in(m, columns, None)
    }

    /// [`Self::read`] of the ids in `runs` (`None`: every id): from every layer (and the hash layer) only
    /// the pages that may hold them are read. The rows of those ids are exact; rows of other ids in
    /// the same pages come too and may be stale (a newer layer's page holding them may have been
    /// skipped), so a reader filters the output with [`in_runs`](super::parquet_io::in_runs).
    pub fn read_in(
        &self,
        m: &IndexManifest,
        columns: Option<&[usize]>,
        runs: Option<Arc<IdRuns>>,
    ) -> anyhow::Result<BatchStream> {
        let rows = self.read_layers_in(m, columns, runs.clone())?;
        if columns.is_some_and(|c| !c.contains(&col::XORHASH)) {
            return Ok(rows);
        }
        Ok(super::hashes::apply(self.store.clone(), m.tenant_id.clone(), m.share_id.clone(), m.snapshot_id, rows, runs))
    }

    /// [`Self::read`] without the hash layer: the rows as the snapshot's own layers store them.
    pub fn read_layers(&self, m: &IndexManifest, columns: Option<&[usize]>) -> anyhow::Result<BatchStream> {
        self.read_layers_in(m, columns, None)
    }

    /// [`Self::read_layers`] of the pages that may hold the ids of `runs`, see [`Self::read_in`].
    fn read_layers_in(
        &self,
        m: &IndexManifest,
        columns: Option<&[usize]>,
        runs: Option<Arc<IdRuns>>,
    ) -> anyhow::Result<BatchStream> {
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
            let result = merge_layers(&store, &layers, schema, runs.as_deref(), &tx).await;
            if let Err(e) = result {
                let _ = tx.send(Err(e)).await;
            }
        });
        Ok(futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) }).boxed())
    }
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
    pub async fn head(&mut self) -> anyhow::Result<Option<NodeId>> {
        loop {
            if let Some(ids) = &self.ids
                && self.pos < ids.len()
            {
                return Ok(Some(NodeId(ids.value(self.pos))));
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

    /// The row at the cursor as a [`Node`] if its id is below `bound` (any id when `None`), moving past
    /// it; `None` at the end or at the first id `>= bound`. The stream must carry every node column.
    pub async fn next_node_below(&mut self, bound: Option<NodeId>) -> anyhow::Result<Option<super::node::Node>> {
        match self.head().await? {
            Some(id) if bound.is_none_or(|b| id < b) => {
                let (batch, row) = self.current_ref();
                let n = super::node::NodeColumns::new(batch).node(row);
                self.advance();
                Ok(Some(n))
            }
            _ => Ok(None),
        }
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
    runs: Option<&IdRuns>,
    tx: &tokio::sync::mpsc::Sender<anyhow::Result<RecordBatch>>,
) -> anyhow::Result<()> {
    // rows[l] / dels[l] for layer l; dels[0] is always None (a base deletes nothing).
    let mut rows = Vec::new();
    let mut dels = Vec::new();
    for l in layers {
        rows.push(Cursor::new(
            open_stream_in(
                store,
                &l.nodes.key,
                Some(l.nodes.bytes),
                Some(l.nodes.rows),
                &schema,
                READ_BATCH_ROWS,
                runs,
            )
            .await?,
            &l.nodes.key,
        ));
        dels.push(match &l.deleted {
            Some(d) => Some(Cursor::new(
                open_stream_in(store, &d.key, Some(d.bytes), Some(d.rows), &deleted_schema(), READ_BATCH_ROWS, runs)
                    .await?,
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
        let mut min: Option<NodeId> = None;
        for c in rows.iter_mut().chain(dels.iter_mut().flatten()) {
            if let Some(h) = c.head().await? {
                min = Some(min.map_or(h, |m| m.min(h)));
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
                    bound = bound.min(h.0);
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
