//! Listed rows keyed by Azure FileId → node rows sorted by node id, through the share's idmap, with
//! memory bounded by the spill budget whatever the share's size (no map from FileId to anything is held).
//!
//! A listing gives rows whose `node_id` and `parent_id` columns hold the entry's FileId and its
//! directory's FileId (0: the share root), [`listed_schema`]. [`Resolver`] turns them
//! into node rows in four streaming steps, each an external sort ([`crate::index::sort`]) or a merge-join
//! of two inputs sorted the same way:
//! 1. sort by FileId; a FileId listed twice keeps its first row (NFS hard links: one file, two names),
//!    the others are counted as duplicates;
//! 2. merge-join with the share's idmap in FileId order ([`KnownIds`]): a known FileId keeps its node id,
//!    a new one gets the next id, **in ascending FileId order** ([`NewIds`], the snapshot's new idmap
//!    segment); the (FileId, node id) pairs of directories go to a sort of their own;
//! 3. sort by parent FileId and merge-join with those directory pairs: the parent's node id (a parent
//!    that was not listed as a directory is an error naming the entry);
//! 4. sort by node id, for the snapshot writer.
//!
//! Memory: the sorts take turns with the budget of [`SpillOptions`] (each buffer an eighth of it, the
//! directory pairs a thirty-second), plus one batch per spilled run while merging.

use std::sync::Arc;

use anyhow::{Context as _, bail};
use arrow::array::{Array, AsArray, Int64Array, RecordBatch};
use arrow::datatypes::{Field, Int8Type, Int64Type, Schema, SchemaRef};

use crate::ids::FileId;
use crate::index::NodeIndex;
use crate::index::idmap::{KnownIds, NewIds, idmap_schema};
use crate::index::manifest::IndexManifest;
use crate::index::node::{NodeBatchBuilder, NodeKind, Properties, ROOT_ID, col, node_schema};
use crate::index::sort::{Merge, RunSorter, SortKey, SpillOptions};

/// The schema of listed rows before node ids are assigned: the node schema with its first two columns
/// named for what they hold, `file_id` and `parent_file_id` (Azure FileIds as INT64 bits; 0 for the
/// share root). Also the schema of a fanned-out scan's fragments ([`super::fanout`]).
pub fn listed_schema() -> SchemaRef {
    let mut fields: Vec<Field> = node_schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    fields[col::NODE_ID] = fields[col::NODE_ID].clone().with_name("file_id");
    fields[col::PARENT_ID] = fields[col::PARENT_ID].clone().with_name("parent_file_id");
    Arc::new(Schema::new(fields))
}

/// One listed entry before node ids are assigned: a row of [`listed_schema`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedRow {
    /// The entry's Azure FileId (never [`FileId::ROOT`]).
    pub file_id: FileId,
    /// Its directory's FileId; [`FileId::ROOT`] for top-level entries.
    pub parent_file_id: FileId,
    /// The entry's name (one path component).
    pub name: String,
    /// Kind, size, times (ns since the epoch), attributes and hash, as in a node row.
    pub properties: Properties,
}

/// Collects [`ListedRow`]s into batches of [`listed_schema`] of at most `batch_rows` rows each.
pub struct ListedBatchBuilder {
    rows: NodeBatchBuilder,
}

impl ListedBatchBuilder {
    /// A builder that yields a batch every `batch_rows` rows (at least 1).
    pub fn new(batch_rows: usize) -> Self {
        ListedBatchBuilder { rows: NodeBatchBuilder::new(batch_rows) }
    }

    /// Append one row; returns a full batch when `batch_rows` rows have accumulated.
    pub fn push(&mut self, r: &ListedRow) -> Option<RecordBatch> {
        let (id, parent) = (r.file_id.to_int64_bits(), r.parent_file_id.to_int64_bits());
        self.rows.push_row(id, parent, &r.name, &r.properties).map(as_listed)
    }

    /// Take the rows pushed so far as a batch; `None` if there are none.
    pub fn finish(&mut self) -> Option<RecordBatch> {
        self.rows.finish().map(as_listed)
    }
}

/// A batch built with the node layout whose first two columns hold FileIds, under [`listed_schema`].
fn as_listed(b: RecordBatch) -> RecordBatch {
    RecordBatch::try_new(listed_schema(), b.columns().to_vec()).expect("the listed schema has the node layout")
}

/// Collects listed rows (FileId-keyed, any order); [`Resolver::finish`] gives node rows.
pub struct Resolver {
    by_file_id: RunSorter,
    spill: SpillOptions,
}

/// Node rows ready for the snapshot writer.
pub struct Resolved {
    /// Node rows ascending by node id (take them with [`Merge::next`], then [`Merge::finish`]).
    pub rows: Merge,
    /// The ids handed out for FileIds new to the share: the snapshot's new idmap segment.
    pub new_ids: NewIds,
    /// Rows dropped because their FileId was listed already (hard links).
    pub duplicate_file_ids: u64,
    /// Sorted runs spilled to disk over all steps (0: everything was sorted in memory).
    pub spilled_runs: usize,
}

impl Resolver {
    pub fn new(spill: SpillOptions) -> Self {
        let key = SortKey { column: col::NODE_ID, unique: true };
        Resolver { by_file_id: RunSorter::new(listed_schema(), key, spill.clone()), spill }
    }

    /// Add listed rows ([`listed_schema`]: FileIds in the first two columns).
    pub async fn push(&mut self, batch: RecordBatch) -> anyhow::Result<()> {
        self.by_file_id.push(batch).await
    }

    /// Rows pushed so far.
    pub fn rows(&self) -> u64 {
        self.by_file_id.rows()
    }

    /// Runs spilled so far by the first sort.
    pub fn spilled_runs(&self) -> usize {
        self.by_file_id.spilled_runs()
    }

    /// Resolve every row against the share's idmap as of `base` (the latest snapshot; `None` for a share
    /// without one).
    pub async fn finish(self, index: &NodeIndex, base: Option<&IndexManifest>) -> anyhow::Result<Resolved> {
        let mut spilled = self.by_file_id.spilled_runs();
        let mut listed = self.by_file_id.finish().await?.merge();

        // Step 2: node ids from the idmap, or new ones in FileId order.
        let mut known = KnownIds::open(index, base, &self.spill).await?;
        let mut new_ids = NewIds::new(known.next_node_id(), &self.spill);
        let mut by_parent =
            RunSorter::new(listed_schema(), SortKey { column: col::PARENT_ID, unique: false }, self.spill.clone());
        let dir_spill = SpillOptions { spill_bytes: (self.spill.spill_bytes / 4).max(1 << 20), ..self.spill.clone() };
        let mut dirs = RunSorter::new(idmap_schema(), SortKey { column: 1, unique: true }, dir_spill);
        while let Some(b) = listed.next().await {
            let fids = b.column(col::NODE_ID).as_primitive::<Int64Type>();
            let kinds = b.column(col::KIND).as_primitive::<Int8Type>();
            let mut ids = Vec::with_capacity(b.num_rows());
            let (mut dir_ids, mut dir_fids) = (Vec::new(), Vec::new());
            for (i, &bits) in fids.values().iter().enumerate() {
                let fid = FileId::from_int64_bits(bits);
                if fid == FileId::ROOT {
                    bail!("listed entry {:?} has FileId 0, which afb reserves for the share root", name(&b, i));
                }
                let id = match known.get(fid).await? {
                    Some(id) => id,
                    None => new_ids.assign(fid)?,
                };
                ids.push(id.0);
                if kinds.value(i) == NodeKind::Dir as i8 {
                    dir_ids.push(id.0);
                    dir_fids.push(bits);
                }
            }
            by_parent.push(with_column(&b, col::NODE_ID, ids)?).await?;
            if !dir_ids.is_empty() {
                let pairs = RecordBatch::try_new(
                    idmap_schema(),
                    vec![Arc::new(Int64Array::from(dir_ids)), Arc::new(Int64Array::from(dir_fids))],
                )?;
                dirs.push(pairs).await?;
            }
        }
        let duplicate_file_ids = listed.finish().await?.duplicates;
        known.finish().await?;
        spilled += by_parent.spilled_runs() + dirs.spilled_runs();

        // Step 3: parents' node ids from the directories' pairs, both in FileId order.
        let mut parents = KnownIds::from_sorted(dirs.finish().await?.merge(), new_ids.next_id());
        let mut by_parent = by_parent.finish().await?.merge();
        let mut by_node =
            RunSorter::new(node_schema(), SortKey { column: col::NODE_ID, unique: true }, self.spill.clone());
        while let Some(b) = by_parent.next().await {
            let pfids = b.column(col::PARENT_ID).as_primitive::<Int64Type>();
            let mut parent_ids = Vec::with_capacity(b.num_rows());
            for (i, &bits) in pfids.values().iter().enumerate() {
                let pfid = FileId::from_int64_bits(bits);
                let parent = if pfid == FileId::ROOT {
                    ROOT_ID
                } else {
                    parents.get(pfid).await?.with_context(|| {
                        format!(
                            "the parent of listed entry {:?} (FileId {pfid}) was not listed as a directory",
                            name(&b, i),
                        )
                    })?
                };
                parent_ids.push(parent.0);
            }
            by_node.push(with_column(&b, col::PARENT_ID, parent_ids)?).await?;
        }
        by_parent.finish().await?;
        parents.finish().await?;
        spilled += by_node.spilled_runs();

        // Step 4: by node id.
        let runs = by_node.finish().await?;
        Ok(Resolved { rows: runs.merge(), new_ids, duplicate_file_ids, spilled_runs: spilled })
    }
}

/// `b` with column `c` replaced by `values` (and the node schema's column names).
fn with_column(b: &RecordBatch, c: usize, values: Vec<i64>) -> anyhow::Result<RecordBatch> {
    let mut cols = b.columns().to_vec();
    cols[c] = Arc::new(Int64Array::from(values));
    Ok(RecordBatch::try_new(node_schema(), cols)?)
}

fn name(b: &RecordBatch, i: usize) -> String {
    let names = b.column(col::NAME).as_string::<i32>();
    if names.is_valid(i) { names.value(i).to_string() } else { String::new() }
}
