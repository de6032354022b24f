//! Hash layers: the content hashes a backup learned for the files of one index snapshot.
//!
//! A scan commits an index snapshot before any content is read, so its rows carry `xorhash` 0 (unknown)
//! for every file whose content may have changed. The backup of that snapshot reads those files (and
//! keeps the hashes of the others from its previous node versions); it then writes the snapshot's **hash
//! layer**, `hashes/{snapshot_id:020}.parquet`: `(node_id, xorhash)` for every file whose hash the
//! backup knows and the snapshot's row does not hold, sorted by `node_id`. Readers of the snapshot
//! ([`crate::index::NodeIndex::read`]) take a row's `xorhash` from the layer when it has the id. The next snapshot's
//! writer keeps the hash of every file it finds unmodified (see [`crate::index::snapshot`]), so a hash
//! is written into a hash layer once, when the backup first learns it, and lives on in the snapshots'
//! own rows. The format is in `docs/index.md`, "Hash layers".

use std::sync::Arc;

use anyhow::{Context, bail};
use arrow::array::{AsArray, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use super::BatchStream;
use super::manifest::share_prefix;
use super::node::NodeId;
use super::parquet_io::{FileWriter, IdRuns, ParquetTuning, open_stream_in};

/// Pairs per batch, read and written.
const BATCH_ROWS: usize = 8192;

/// Key of the hash layer of snapshot `snapshot_id` of a share.
pub fn hashes_key(tenant: &str, share: &str, snapshot_id: i64) -> String {
    format!("{}/hashes/{snapshot_id:020}.parquet", share_prefix(tenant, share))
}

/// The Arrow schema of a hash layer: `node_id`, `xorhash`, both INT64, required.
pub fn hashes_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("node_id", DataType::Int64, false),
        Field::new("xorhash", DataType::Int64, false),
    ]))
}

/// The index's 64 bits of a QuickXorHash: its first 8 bytes, little-endian (0 = unknown).
pub fn xorhash64(digest: &[u8; 20]) -> i64 {
    i64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// The size of the hash layer of a snapshot, or `None` when it has none.
async fn layer_size(store: &Arc<dyn ObjectStore>, key: &str) -> anyhow::Result<Option<u64>> {
    match store.head(&Path::from(key)).await {
        Ok(m) => Ok(Some(m.size)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("looking for {key}")),
    }
}

/// Whether snapshot `snapshot_id` of a share has a hash layer.
pub async fn exists(store: &Arc<dyn ObjectStore>, tenant: &str, share: &str, snapshot_id: i64) -> anyhow::Result<bool> {
    Ok(layer_size(store, &hashes_key(tenant, share, snapshot_id)).await?.is_some())
}

/// A hash layer being read in `node_id` order.
pub struct HashLayer {
    key: String,
    stream: BatchStream,
    /// The current batch's ids and hashes, and the position in it.
    batch: Option<(Int64Array, Int64Array)>,
    pos: usize,
    /// The last id of the batches read so far: ids must ascend strictly across the whole layer (a layer
    /// is a repository object, so this is checked, not assumed).
    last: Option<i64>,
}

/// The hash layer of a snapshot, or `None` when it has none.
pub async fn open(
    store: &Arc<dyn ObjectStore>,
    tenant: &str,
    share: &str,
    snapshot_id: i64,
) -> anyhow::Result<Option<HashLayer>> {
    open_in(store, tenant, share, snapshot_id, None).await
}

/// [`open`], reading only the pages that may hold ids of `runs` (`None`: all).
async fn open_in(
    store: &Arc<dyn ObjectStore>,
    tenant: &str,
    share: &str,
    snapshot_id: i64,
    runs: Option<&IdRuns>,
) -> anyhow::Result<Option<HashLayer>> {
    let key = hashes_key(tenant, share, snapshot_id);
    let Some(size) = layer_size(store, &key).await? else { return Ok(None) };
    let stream = open_stream_in(store, &key, Some(size), None, &hashes_schema(), BATCH_ROWS, runs).await?;
    Ok(Some(HashLayer { key, stream, batch: None, pos: 0, last: None }))
}

impl HashLayer {
    /// The next (node id, xorhash) pair, `None` at the end.
    pub async fn next_pair(&mut self) -> anyhow::Result<Option<(NodeId, i64)>> {
        let pair = self.peek().await?;
        self.pos += pair.is_some() as usize;
        Ok(pair.map(|(id, hash)| (NodeId(id), hash)))
    }

    async fn peek(&mut self) -> anyhow::Result<Option<(i64, i64)>> {
        loop {
            if let Some((ids, hashes)) = &self.batch
                && self.pos < ids.len()
            {
                return Ok(Some((ids.value(self.pos), hashes.value(self.pos))));
            }
            let Some(b) = self.stream.next().await else {
                self.batch = None;
                return Ok(None);
            };
            let b = b.with_context(|| format!("reading {}", self.key))?;
            let ids = b.column(0).as_primitive::<Int64Type>().clone();
            for &id in ids.values() {
                if self.last.is_some_and(|l| id <= l) {
                    bail!("{}: node ids not ascending at {id}", self.key);
                }
                self.last = Some(id);
            }
            self.batch = Some((ids, b.column(1).as_primitive::<Int64Type>().clone()));
            self.pos = 0;
        }
    }

    /// The hash the layer holds for `id`, moving past every id below it (ids must be asked in ascending
    /// order).
    pub async fn hash_of(&mut self, id: NodeId) -> anyhow::Result<Option<i64>> {
        let id = id.0;
        while let Some((h, hash)) = self.peek().await? {
            if h > id {
                break;
            }
            self.pos += 1;
            if h == id {
                return Ok(Some(hash));
            }
        }
        Ok(None)
    }
}

/// [`HashLayer::hash_of`] of a layer that may be absent.
pub async fn hash_of(layer: &mut Option<HashLayer>, id: NodeId) -> anyhow::Result<Option<i64>> {
    match layer {
        Some(l) => l.hash_of(id).await,
        None => Ok(None),
    }
}

/// `rows` (node rows sorted by `node_id`, with a `xorhash` column) with the hashes of the hash layer of
/// snapshot `snapshot_id` put in. The layer is looked up when the stream is first polled. With `runs`,
/// only the layer's pages that may hold those ids are read: the hashes of ids in `runs` are exact.
pub fn apply(
    store: Arc<dyn ObjectStore>,
    tenant: String,
    share: String,
    snapshot_id: i64,
    rows: BatchStream,
    runs: Option<Arc<IdRuns>>,
) -> BatchStream {
    futures::stream::once(async move { (open_in(&store, &tenant, &share, snapshot_id, runs.as_deref()).await, rows) })
        .flat_map(|(layer, rows)| match layer {
            Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
            Ok(None) => rows,
            Ok(Some(cursor)) => futures::stream::unfold((rows, Some(cursor)), |(mut rows, mut layer)| async move {
                let b = rows.next().await?;
                let out = match b {
                    Ok(b) => put_hashes(b, &mut layer).await,
                    Err(e) => Err(e),
                };
                Some((out, (rows, layer)))
            })
            .boxed(),
        })
        .boxed()
}

async fn put_hashes(b: RecordBatch, layer: &mut Option<HashLayer>) -> anyhow::Result<RecordBatch> {
    let Some((col, _)) = b.schema().column_with_name("xorhash") else { return Ok(b) };
    let ids = b.column(0).as_primitive::<Int64Type>().clone();
    let old = b.column(col).as_primitive::<Int64Type>();
    let mut new: Option<Vec<i64>> = None;
    for i in 0..ids.len() {
        if let Some(h) = hash_of(layer, NodeId(ids.value(i))).await?
            && h != old.value(i)
        {
            new.get_or_insert_with(|| old.values().to_vec())[i] = h;
        }
    }
    let Some(new) = new else { return Ok(b) };
    let mut cols = b.columns().to_vec();
    cols[col] = Arc::new(Int64Array::from(new));
    Ok(RecordBatch::try_new(b.schema(), cols)?)
}

/// Writes the hash layer of one snapshot: pairs strictly ascending by node id, then [`close`](Self::close).
/// The object appears whole or not at all (one upload, or a multipart upload completed at the end).
pub struct HashLayerWriter {
    file: FileWriter,
    ids: Vec<i64>,
    hashes: Vec<i64>,
    last: Option<i64>,
}

impl HashLayerWriter {
    pub fn create(store: &Arc<dyn ObjectStore>, tenant: &str, share: &str, snapshot_id: i64) -> anyhow::Result<Self> {
        let key = hashes_key(tenant, share, snapshot_id);
        let file = FileWriter::create(store, &key, hashes_schema(), ParquetTuning::default())?;
        Ok(HashLayerWriter { file, ids: Vec::new(), hashes: Vec::new(), last: None })
    }

    /// Append the hash of `node_id` (64 bits of its QuickXorHash, [`xorhash64`]).
    pub async fn push(&mut self, node_id: NodeId, xorhash: i64) -> anyhow::Result<()> {
        if self.last.is_some_and(|l| node_id.0 <= l) {
            bail!("hash layer: node ids not ascending at {node_id}");
        }
        self.last = Some(node_id.0);
        self.ids.push(node_id.0);
        self.hashes.push(xorhash);
        if self.ids.len() >= BATCH_ROWS {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> anyhow::Result<()> {
        let ids = Int64Array::from(std::mem::take(&mut self.ids));
        let hashes = Int64Array::from(std::mem::take(&mut self.hashes));
        self.file.write(&RecordBatch::try_new(hashes_schema(), vec![Arc::new(ids), Arc::new(hashes)])?).await
    }

    /// Finish the object; returns its (rows, bytes).
    pub async fn close(mut self) -> anyhow::Result<(u64, u64)> {
        self.flush().await?;
        let (_, rows, bytes) = self.file.close().await?;
        Ok((rows, bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    /// A layer whose ids do not ascend (written around [`HashLayerWriter`]'s check) is refused on read
    /// with an error naming the object, rather than giving wrong hashes.
    #[tokio::test]
    async fn a_layer_out_of_order_is_refused() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let key = hashes_key("t", "s", 7);
        let mut w = FileWriter::create(&store, &key, hashes_schema(), ParquetTuning::default()).unwrap();
        let ids = Int64Array::from(vec![5, 9, 3]);
        let hashes = Int64Array::from(vec![50, 90, 30]);
        w.write(&RecordBatch::try_new(hashes_schema(), vec![Arc::new(ids), Arc::new(hashes)]).unwrap()).await.unwrap();
        w.close().await.unwrap();
        let mut layer = open(&store, "t", "s", 7).await.unwrap().expect("the layer exists");
        let err = layer.hash_of(NodeId(9)).await.unwrap_err();
        assert!(format!("{err:#}").contains("not ascending at 3") && format!("{err:#}").contains(&key), "{err:#}");
    }
}
