//! Azure FileId → dense node id, stable across renames and moves, without holding the map in memory.
//!
//! Azure Files gives every file and directory a 64-bit FileId that survives rename and move. Stored as is
//! it compresses badly (random-looking 64-bit values), so each share maps FileIds to dense node ids
//! `1, 2, 3, ...`, and the node table stores only the dense id. Ids are never reused: a FileId seen again
//! keeps its id, a new FileId gets the next one, **new FileIds of one snapshot in ascending FileId order**
//! (as signed INT64 bits), so a snapshot's new pairs ascend by node id and by FileId at once.
//!
//! The map is persisted in the repository as append-only segments (Parquet, columns `node_id` INT64,
//! `file_id` INT64 holding the FileId's two's-complement bits), each holding the ids first assigned by one
//! snapshot; see `docs/index.md`. Nothing here holds one entry per FileId in memory:
//! - [`KnownIds`] streams the union of a snapshot's segments in FileId order (a k-way merge; segments
//!   written before the FileId-order rule, untagged, go through the external sort first), for a
//!   merge-join with listed rows sorted by FileId (`crate::scan::resolve`).
//! - [`NewIds`] hands out the next ids to FileIds met in ascending order and spools the pairs to a
//!   temporary file until the snapshot commit writes them as the new segment.

use std::sync::Arc;

use anyhow::{Context as _, ensure};
use arrow::array::{AsArray, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use arrow::ipc::reader::FileReader;
use arrow::ipc::writer::FileWriter as IpcWriter;
use futures::StreamExt as _;

use super::NodeIndex;
use super::manifest::IndexManifest;
use super::parquet_io::{key_value, open_stream};
use super::sort::{BatchIter, Merge, RunSorter, SortKey, SpillOptions, merge_inputs};
use crate::ids::{FileId, NodeId};

/// The Arrow schema of an idmap segment.
pub fn idmap_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("node_id", DataType::Int64, false),
        Field::new("file_id", DataType::Int64, false),
    ]))
}

/// Column of the node id in an idmap batch.
pub const NODE_ID: usize = 0;
/// Column of the FileId in an idmap batch.
pub const FILE_ID: usize = 1;

/// Parquet key-value metadata of a segment whose rows ascend by `file_id` too (every segment this
/// version writes): `afb.sorted_by` = `node_id,file_id`.
pub const SORTED_TAG: (&str, &str) = ("afb.sorted_by", "node_id,file_id");

/// Rows per batch when reading segments and spooling new pairs.
const BATCH_ROWS: usize = 65536;

/// The known pairs of a share in ascending FileId order: the union of every segment of a manifest.
pub struct KnownIds {
    merge: Merge,
    batch: Option<RecordBatch>,
    row: usize,
    /// The pair handed out last, (FileId as INT64 bits, node id) (to skip a pair listed in two segments
    /// and check consistency).
    last: Option<(i64, i64)>,
    /// Ids below this were assigned by earlier snapshots (the manifest's `next_node_id`).
    next_node_id: i64,
}

impl KnownIds {
    /// Open the map as of `manifest` (`None`: a share with no snapshot yet, an empty map). Untagged
    /// segments are sorted by FileId with `spill` first.
    pub async fn open(
        index: &NodeIndex,
        manifest: Option<&IndexManifest>,
        spill: &SpillOptions,
    ) -> anyhow::Result<Self> {
        let mut inputs: Vec<BatchIter> = Vec::new();
        let mut unsorted = RunSorter::new(idmap_schema(), SortKey { column: FILE_ID, unique: false }, spill.clone());
        let mut next_node_id = 1;
        if let Some(m) = manifest {
            next_node_id = m.next_node_id.max(1);
            for f in &m.idmap {
                let s = open_stream(index.store(), &f.key, Some(f.bytes), &idmap_schema(), BATCH_ROWS).await?;
                let tag = key_value(index.store(), &f.key, Some(f.bytes), SORTED_TAG.0).await?;
                if tag.as_deref() == Some(SORTED_TAG.1) {
                    let handle = tokio::runtime::Handle::current();
                    let mut s = s;
                    let key = f.key.clone();
                    inputs.push(Box::new(std::iter::from_fn(move || {
                        handle.block_on(s.next()).map(|r| r.with_context(|| format!("reading idmap segment {key}")))
                    })));
                } else {
                    let mut s = s;
                    while let Some(b) = s.next().await {
                        unsorted.push(b?).await?;
                    }
                }
            }
        }
        let (runs, guard) = unsorted.finish().await?.into_inputs()?;
        inputs.extend(runs);
        let merge = merge_inputs(idmap_schema(), SortKey { column: FILE_ID, unique: false }, inputs, guard);
        Ok(Self::from_sorted(merge, NodeId(next_node_id)))
    }

    /// Pairs from `merge` (batches of [`idmap_schema`] ascending by `file_id`) whose node ids are all below
    /// `next_node_id`.
    pub fn from_sorted(merge: Merge, next_node_id: NodeId) -> Self {
        KnownIds { merge, batch: None, row: 0, last: None, next_node_id: next_node_id.0 }
    }

    /// The first node id not assigned by the snapshots this map was opened at.
    pub fn next_node_id(&self) -> NodeId {
        NodeId(self.next_node_id)
    }

    /// The node id of `file_id`, if known. Calls must come in ascending `file_id` order (as signed
    /// INT64 bits, [`FileId::to_int64_bits`]); pairs below it are skipped. Fails if the map is
    /// inconsistent (a FileId with two node ids, a node id at or above `next_node_id`, a segment out of
    /// order).
    pub async fn get(&mut self, file_id: FileId) -> anyhow::Result<Option<NodeId>> {
        let file_id = file_id.to_int64_bits();
        loop {
            if let Some((f, n)) = self.last {
                if f == file_id {
                    return Ok(Some(NodeId(n)));
                }
                if f > file_id {
                    return Ok(None);
                }
            }
            let Some((f, n)) = self.next_pair().await? else {
                return Ok(None);
            };
            if let Some((lf, ln)) = self.last
                && lf == f
            {
                ensure!(
                    ln == n,
                    "the idmap is inconsistent: FileId {} maps to node ids {ln} and {n}",
                    FileId::from_int64_bits(f)
                );
                continue;
            }
            ensure!(
                (1..self.next_node_id).contains(&n),
                "the idmap is inconsistent: node id {n} of FileId {} is outside 1..{}",
                FileId::from_int64_bits(f),
                self.next_node_id
            );
            self.last = Some((f, n));
        }
    }

    async fn next_pair(&mut self) -> anyhow::Result<Option<(i64, i64)>> {
        loop {
            if let Some(b) = &self.batch
                && self.row < b.num_rows()
            {
                let pair = (
                    b.column(FILE_ID).as_primitive::<Int64Type>().value(self.row),
                    b.column(NODE_ID).as_primitive::<Int64Type>().value(self.row),
                );
                self.row += 1;
                return Ok(Some(pair));
            }
            match self.merge.next().await {
                Some(b) => {
                    self.batch = Some(b);
                    self.row = 0;
                }
                None => {
                    self.batch = None;
                    return Ok(None);
                }
            }
        }
    }

    /// Read the rest of the map (checking it) and end the merge.
    pub async fn finish(mut self) -> anyhow::Result<()> {
        // Past the largest FileId (in INT64 order): reads and checks every pair left.
        self.get(FileId::from_int64_bits(i64::MAX)).await?;
        self.merge.finish().await.context("reading the idmap")?;
        Ok(())
    }
}

/// Node ids handed out by one snapshot, spooled to a temporary file: the snapshot's new idmap segment.
pub struct NewIds {
    next_id: i64,
    first_id: i64,
    last_file_id: Option<i64>,
    node_ids: Vec<i64>,
    file_ids: Vec<i64>,
    /// The temporary file (deleted when closed) and the writer appending to it.
    spool: Option<(std::fs::File, IpcWriter<std::io::BufWriter<std::fs::File>>)>,
    spill: SpillOptions,
}

impl NewIds {
    /// Hand out ids from `first_id` (the manifest's `next_node_id`; 1 for a new share); the spool file goes
    /// below `spill.dir`.
    pub fn new(first_id: NodeId, spill: &SpillOptions) -> Self {
        NewIds {
            next_id: first_id.0.max(1),
            first_id: first_id.0.max(1),
            last_file_id: None,
            node_ids: Vec::new(),
            file_ids: Vec::new(),
            spool: None,
            spill: spill.clone(),
        }
    }

    /// The next id for a new `file_id`; FileIds must come strictly ascending (as signed INT64 bits,
    /// [`FileId::to_int64_bits`]).
    pub fn assign(&mut self, file_id: FileId) -> anyhow::Result<NodeId> {
        let file_id = file_id.to_int64_bits();
        if let Some(last) = self.last_file_id {
            ensure!(
                file_id > last,
                "new FileIds must be assigned in ascending order ({} after {})",
                FileId::from_int64_bits(file_id),
                FileId::from_int64_bits(last)
            );
        }
        self.last_file_id = Some(file_id);
        let id = self.next_id;
        self.next_id += 1;
        self.node_ids.push(id);
        self.file_ids.push(file_id);
        if self.node_ids.len() >= BATCH_ROWS {
            self.flush()?;
        }
        Ok(NodeId(id))
    }

    /// Ids handed out so far.
    pub fn len(&self) -> u64 {
        (self.next_id - self.first_id) as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The id the next new FileId would get.
    pub fn next_id(&self) -> NodeId {
        NodeId(self.next_id)
    }

    fn take_batch(&mut self) -> RecordBatch {
        let ids = Int64Array::from(std::mem::take(&mut self.node_ids));
        let fids = Int64Array::from(std::mem::take(&mut self.file_ids));
        RecordBatch::try_new(idmap_schema(), vec![Arc::new(ids), Arc::new(fids)]).expect("idmap schema")
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        if self.node_ids.is_empty() {
            return Ok(());
        }
        if self.spool.is_none() {
            let file = self.spill.tempfile()?;
            let w = IpcWriter::try_new(std::io::BufWriter::new(file.try_clone()?), &idmap_schema())?;
            self.spool = Some((file, w));
        }
        let b = self.take_batch();
        let (_, w) = self.spool.as_mut().expect("created above");
        w.write(&b)
            .with_context(|| format!("writing new idmap pairs to {} (is the disk full?)", self.spill.shown_dir()))
    }

    /// The pairs handed out, ascending by node id and by FileId, in batches.
    pub fn into_batches(mut self) -> anyhow::Result<BatchIter> {
        let Some((mut file, mut w)) = self.spool.take() else {
            let b = self.take_batch();
            return Ok(Box::new((b.num_rows() > 0).then_some(Ok(b)).into_iter()));
        };
        let rest = self.take_batch();
        let shown = self.spill.shown_dir();
        w.write(&rest)
            .and_then(|()| w.finish())
            .with_context(|| format!("writing new idmap pairs to {shown} (is the disk full?)"))?;
        drop(w);
        std::io::Seek::rewind(&mut file)?;
        let r = FileReader::try_new(std::io::BufReader::new(file), None)?;
        Ok(Box::new(r.map(move |b| b.with_context(|| format!("reading new idmap pairs back from {shown}")))))
    }
}
