//! The node row: one file or directory of a share, and its Arrow schema.
//!
//! A share is a tree of nodes. A node never stores its path; the path is derived by walking
//! `parent_id` up to the root (see [`crate::index::dirmap`]). Renaming a directory changes one row.
//!
//! The root directory of a share is implicit: it has no row, its id is [`ROOT_ID`] (0), and top-level
//! entries have `parent_id = 0`. Real nodes have ids `>= 1`, assigned densely per share by
//! the share's idmap ([`crate::index::idmap`]).
//!
//! Every column is a plain Parquet physical type. `mtime` and `ctime` are `INT64` nanoseconds since the
//! Unix epoch annotated `TIMESTAMP(NANOS, isAdjustedToUTC=true)` (Arrow `Timestamp(ns, "UTC")`), so
//! DuckDB, pandas and polars show times, not integers (microseconds would lose Azure's 100 ns
//! resolution; Spark needs `spark.sql.legacy.parquet.nanosAsLong=true` for nanosecond timestamps).
//! Snapshots written before the annotation hold the same values as plain `INT64` and read the same
//! ([`crate::index::parquet_io::open_stream`] reinterprets them).

use std::sync::{Arc, LazyLock};

use arrow::array::{
    ArrayRef, AsArray, Int8Array, Int32Array, Int64Array, RecordBatch, StringBuilder, TimestampNanosecondArray,
};
use arrow::datatypes::{
    DataType, Field, Int8Type, Int32Type, Int64Type, Schema, SchemaRef, TimeUnit, TimestampNanosecondType,
};

pub use crate::ids::NodeId;

/// The id of the implicit share root. It has no row of its own.
pub const ROOT_ID: NodeId = NodeId::ROOT;

/// File or directory. Stored as `kind` INT8: 0 = file, 1 = directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i8)]
pub enum NodeKind {
    File = 0,
    Dir = 1,
}

impl NodeKind {
    /// Decode the stored INT8; unknown values are an error naming the value.
    pub fn from_i8(v: i8) -> anyhow::Result<Self> {
        match v {
            0 => Ok(NodeKind::File),
            1 => Ok(NodeKind::Dir),
            other => anyhow::bail!("unknown node kind {other} (0 = file, 1 = dir)"),
        }
    }

    /// "file" or "dir".
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::File => "file",
            NodeKind::Dir => "dir",
        }
    }
}

/// One node of a share as the index stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Dense per-share id, `>= 1`, stable across renames and moves.
    pub node_id: NodeId,
    /// Id of the containing directory; [`ROOT_ID`] for top-level entries.
    pub parent_id: NodeId,
    /// The entry's name (one path component, UTF-8, never containing `/`).
    pub name: String,
    pub kind: NodeKind,
    /// Content length in bytes; 0 for directories.
    pub size: i64,
    /// Last-write time, nanoseconds since the Unix epoch, UTC.
    pub mtime: i64,
    /// Change time, nanoseconds since the Unix epoch, UTC.
    pub ctime: i64,
    /// Azure SMB attribute bits (ReadOnly = 0x1, Hidden = 0x2, System = 0x4, Directory = 0x10,
    /// Archive = 0x20, ...).
    pub attributes: i32,
    /// 64 bits of the content's QuickXorHash (its first 8 bytes, little-endian); 0 = unknown.
    pub xorhash: i64,
}

impl Node {
    /// Whether this row's content or properties differ from `old`'s (the same node in an earlier
    /// snapshot); see [`Properties::modified_since`], the one rule the diff and the backup plan use.
    pub fn modified_since(&self, old: &Node) -> bool {
        self.properties().modified_since(&old.properties())
    }

    /// The columns the change rule compares.
    pub fn properties(&self) -> Properties {
        Properties {
            kind: self.kind as i8,
            size: self.size,
            mtime: self.mtime,
            ctime: self.ctime,
            attributes: self.attributes,
            xorhash: self.xorhash,
        }
    }
}

/// The columns of a row that say whether a node was modified (everything but id, parent and name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Properties {
    pub kind: i8,
    pub size: i64,
    pub mtime: i64,
    pub ctime: i64,
    pub attributes: i32,
    pub xorhash: i64,
}

impl Properties {
    /// Whether a node with these properties is modified since it had `old`'s: size, mtime, ctime,
    /// attributes or kind differ, or both hashes are known (not 0) and differ. A hash known on one side
    /// only (the backup filled it in after the scan) is no modification. A rename or move alone is not
    /// one either.
    pub fn modified_since(&self, old: &Properties) -> bool {
        self.size != old.size
            || self.mtime != old.mtime
            || self.ctime != old.ctime
            || self.attributes != old.attributes
            || self.kind != old.kind
            || (self.xorhash != 0 && old.xorhash != 0 && self.xorhash != old.xorhash)
    }
}

/// Column positions in [`node_schema`], in order.
pub mod col {
    pub const NODE_ID: usize = 0;
    pub const PARENT_ID: usize = 1;
    pub const NAME: usize = 2;
    pub const KIND: usize = 3;
    pub const SIZE: usize = 4;
    pub const MTIME: usize = 5;
    pub const CTIME: usize = 6;
    pub const ATTRIBUTES: usize = 7;
    pub const XORHASH: usize = 8;
}

/// Column names in schema order.
pub const COLUMN_NAMES: [&str; 9] =
    ["node_id", "parent_id", "name", "kind", "size", "mtime", "ctime", "attributes", "xorhash"];

static NODE_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("node_id", DataType::Int64, false),
        Field::new("parent_id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("kind", DataType::Int8, false),
        Field::new("size", DataType::Int64, false),
        Field::new("mtime", time_type(), false),
        Field::new("ctime", time_type(), false),
        Field::new("attributes", DataType::Int32, false),
        Field::new("xorhash", DataType::Int64, false),
    ]))
});

/// The Arrow type of `mtime` and `ctime`: nanoseconds since the Unix epoch, UTC.
pub fn time_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

/// `values` (ns since the epoch) as an array of [`time_type`].
pub fn time_array(values: Vec<i64>) -> TimestampNanosecondArray {
    TimestampNanosecondArray::from(values).with_timezone("UTC")
}

/// The values of a time column (ns since the epoch) read straight from a file: [`time_type`], or plain
/// INT64 as snapshots written before the annotation hold them. `None` for any other type.
pub fn time_values(a: &dyn arrow::array::Array) -> Option<&[i64]> {
    match a.data_type() {
        DataType::Int64 => Some(a.as_primitive::<Int64Type>().values()),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => Some(a.as_primitive::<TimestampNanosecondType>().values()),
        _ => None,
    }
}

/// The Arrow schema of node rows (and of the Parquet files that hold them).
pub fn node_schema() -> SchemaRef {
    NODE_SCHEMA.clone()
}

/// Check that a batch read from somewhere has exactly the node schema (names, types, order).
pub fn check_node_schema(schema: &Schema) -> anyhow::Result<()> {
    let want = node_schema();
    if schema.fields().len() != want.fields().len()
        || schema
            .fields()
            .iter()
            .zip(want.fields())
            .any(|(a, b)| a.name() != b.name() || a.data_type() != b.data_type())
    {
        let got: Vec<String> = schema.fields().iter().map(|f| format!("{} {}", f.name(), f.data_type())).collect();
        anyhow::bail!(
            "not an afb node table: columns are [{}], expected [{}]",
            got.join(", "),
            COLUMN_NAMES.join(", ")
        );
    }
    Ok(())
}

/// Typed, zero-copy access to the columns of a node batch.
pub struct NodeColumns<'a> {
    pub node_id: &'a Int64Array,
    pub parent_id: &'a Int64Array,
    pub name: &'a arrow::array::StringArray,
    pub kind: &'a Int8Array,
    pub size: &'a Int64Array,
    pub mtime: &'a TimestampNanosecondArray,
    pub ctime: &'a TimestampNanosecondArray,
    pub attributes: &'a Int32Array,
    pub xorhash: &'a Int64Array,
}

impl<'a> NodeColumns<'a> {
    /// Borrow the columns of a batch with the node schema. Panics if the schema differs; batches from
    /// this module's readers are checked with [`check_node_schema`] first.
    pub fn new(b: &'a RecordBatch) -> Self {
        NodeColumns {
            node_id: b.column(col::NODE_ID).as_primitive::<Int64Type>(),
            parent_id: b.column(col::PARENT_ID).as_primitive::<Int64Type>(),
            name: b.column(col::NAME).as_string::<i32>(),
            kind: b.column(col::KIND).as_primitive::<Int8Type>(),
            size: b.column(col::SIZE).as_primitive::<Int64Type>(),
            mtime: b.column(col::MTIME).as_primitive::<TimestampNanosecondType>(),
            ctime: b.column(col::CTIME).as_primitive::<TimestampNanosecondType>(),
            attributes: b.column(col::ATTRIBUTES).as_primitive::<Int32Type>(),
            xorhash: b.column(col::XORHASH).as_primitive::<Int64Type>(),
        }
    }

    pub fn len(&self) -> usize {
        self.node_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The properties of row `i` the change rule compares (see [`Properties::modified_since`]).
    pub fn properties(&self, i: usize) -> Properties {
        Properties {
            kind: self.kind.value(i),
            size: self.size.value(i),
            mtime: self.mtime.value(i),
            ctime: self.ctime.value(i),
            attributes: self.attributes.value(i),
            xorhash: self.xorhash.value(i),
        }
    }

    /// Row `i` as an owned [`Node`]. An unknown kind value reads as a file.
    pub fn node(&self, i: usize) -> Node {
        Node {
            node_id: NodeId(self.node_id.value(i)),
            parent_id: NodeId(self.parent_id.value(i)),
            name: self.name.value(i).to_string(),
            kind: NodeKind::from_i8(self.kind.value(i)).unwrap_or(NodeKind::File),
            size: self.size.value(i),
            mtime: self.mtime.value(i),
            ctime: self.ctime.value(i),
            attributes: self.attributes.value(i),
            xorhash: self.xorhash.value(i),
        }
    }
}

/// Collects node rows into [`RecordBatch`]es of at most `batch_rows` rows each.
///
/// Memory is bounded by one batch. Rows are kept in the order they are pushed.
pub struct NodeBatchBuilder {
    batch_rows: usize,
    node_id: Vec<i64>,
    parent_id: Vec<i64>,
    name: StringBuilder,
    kind: Vec<i8>,
    size: Vec<i64>,
    mtime: Vec<i64>,
    ctime: Vec<i64>,
    attributes: Vec<i32>,
    xorhash: Vec<i64>,
}

/// The default number of rows per batch.
pub const DEFAULT_BATCH_ROWS: usize = 8192;

impl Default for NodeBatchBuilder {
    fn default() -> Self {
        Self::new(DEFAULT_BATCH_ROWS)
    }
}

impl NodeBatchBuilder {
    /// A builder that yields a batch every `batch_rows` rows (at least 1).
    pub fn new(batch_rows: usize) -> Self {
        let n = batch_rows.max(1);
        NodeBatchBuilder {
            batch_rows: n,
            node_id: Vec::with_capacity(n),
            parent_id: Vec::with_capacity(n),
            name: StringBuilder::with_capacity(n, n * 24),
            kind: Vec::with_capacity(n),
            size: Vec::with_capacity(n),
            mtime: Vec::with_capacity(n),
            ctime: Vec::with_capacity(n),
            attributes: Vec::with_capacity(n),
            xorhash: Vec::with_capacity(n),
        }
    }

    /// Rows pushed since the last batch was taken.
    pub fn len(&self) -> usize {
        self.node_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.node_id.is_empty()
    }

    /// Append one row; returns a full batch when `batch_rows` rows have accumulated.
    pub fn push(&mut self, n: &Node) -> Option<RecordBatch> {
        self.push_row(n.node_id.0, n.parent_id.0, &n.name, &n.properties())
    }

    /// Append row `i` of a node batch (no intermediate `String`).
    pub fn push_from(&mut self, c: &NodeColumns<'_>, i: usize) -> Option<RecordBatch> {
        self.node_id.push(c.node_id.value(i));
        self.parent_id.push(c.parent_id.value(i));
        self.name.append_value(c.name.value(i));
        self.kind.push(c.kind.value(i));
        self.size.push(c.size.value(i));
        self.mtime.push(c.mtime.value(i));
        self.ctime.push(c.ctime.value(i));
        self.attributes.push(c.attributes.value(i));
        self.xorhash.push(c.xorhash.value(i));
        self.full()
    }

    /// Append one row from its parts. `id` and `parent` are the raw INT64 values of the first two
    /// columns: node ids for node rows, or the INT64 bits of FileIds for rows of the same layout keyed by
    /// Azure FileId (a scan's listed rows, before node ids are assigned).
    pub fn push_row(&mut self, id: i64, parent: i64, name: &str, p: &Properties) -> Option<RecordBatch> {
        self.node_id.push(id);
        self.parent_id.push(parent);
        self.name.append_value(name);
        self.kind.push(p.kind);
        self.size.push(p.size);
        self.mtime.push(p.mtime);
        self.ctime.push(p.ctime);
        self.attributes.push(p.attributes);
        self.xorhash.push(p.xorhash);
        self.full()
    }

    fn full(&mut self) -> Option<RecordBatch> {
        if self.node_id.len() >= self.batch_rows { self.finish() } else { None }
    }

    /// Take the rows pushed so far as a batch; `None` if there are none.
    pub fn finish(&mut self) -> Option<RecordBatch> {
        if self.node_id.is_empty() {
            return None;
        }
        let n = self.batch_rows;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(std::mem::replace(&mut self.node_id, Vec::with_capacity(n)))),
            Arc::new(Int64Array::from(std::mem::replace(&mut self.parent_id, Vec::with_capacity(n)))),
            Arc::new(self.name.finish()),
            Arc::new(Int8Array::from(std::mem::replace(&mut self.kind, Vec::with_capacity(n)))),
            Arc::new(Int64Array::from(std::mem::replace(&mut self.size, Vec::with_capacity(n)))),
            Arc::new(time_array(std::mem::replace(&mut self.mtime, Vec::with_capacity(n)))),
            Arc::new(time_array(std::mem::replace(&mut self.ctime, Vec::with_capacity(n)))),
            Arc::new(Int32Array::from(std::mem::replace(&mut self.attributes, Vec::with_capacity(n)))),
            Arc::new(Int64Array::from(std::mem::replace(&mut self.xorhash, Vec::with_capacity(n)))),
        ];
        Some(RecordBatch::try_new(node_schema(), columns).expect("columns match the node schema"))
    }
}

/// The nodes of `rows`, in order, as batches of at most `batch_rows` rows (memory: one batch).
pub fn node_batches(rows: impl Iterator<Item = Node>, batch_rows: usize) -> impl Iterator<Item = RecordBatch> {
    let mut b = NodeBatchBuilder::new(batch_rows);
    let mut rows = rows;
    std::iter::from_fn(move || {
        for n in rows.by_ref() {
            if let Some(full) = b.push(&n) {
                return Some(full);
            }
        }
        b.finish()
    })
}

/// All rows of a batch as owned nodes (for tests and small data).
pub fn batch_to_nodes(b: &RecordBatch) -> Vec<Node> {
    let c = NodeColumns::new(b);
    (0..c.len()).map(|i| c.node(i)).collect()
}

/// Build one batch from a slice of nodes (for tests and small data).
pub fn nodes_to_batch(nodes: &[Node]) -> RecordBatch {
    let mut b = NodeBatchBuilder::new(nodes.len().max(1));
    for n in nodes {
        if let Some(full) = b.push(n) {
            return full;
        }
    }
    b.finish().unwrap_or_else(|| RecordBatch::new_empty(node_schema()))
}

/// A batch's `node_id` column is strictly ascending (and continues above `after`).
pub fn check_ascending(b: &RecordBatch, after: Option<NodeId>) -> anyhow::Result<Option<NodeId>> {
    let ids = b.column(col::NODE_ID).as_primitive::<Int64Type>();
    let mut prev = after.map(|id| id.0);
    for id in ids.values().iter().copied() {
        if id <= ROOT_ID.0 {
            anyhow::bail!("node_id {id} is not a valid node id (must be >= 1)");
        }
        if let Some(p) = prev
            && id <= p
        {
            anyhow::bail!("node rows must be in strictly ascending node_id order: {id} after {p}");
        }
        prev = Some(id);
    }
    Ok(prev.map(NodeId))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A file row for unit tests: id `id` in the root, size `id`, xorhash `-id`.
    pub(crate) fn file_row(id: i64) -> Node {
        Node {
            node_id: NodeId(id),
            parent_id: ROOT_ID,
            name: format!("n{id}"),
            kind: NodeKind::File,
            size: id,
            mtime: 1,
            ctime: 2,
            attributes: 0x20,
            xorhash: -id,
        }
    }

    #[test]
    fn builder_yields_bounded_batches_and_round_trips() {
        let mut b = NodeBatchBuilder::new(3);
        let mut batches = vec![];
        for i in 1..=7 {
            batches.extend(b.push(&file_row(i)));
        }
        batches.extend(b.finish());
        assert_eq!(batches.iter().map(|b| b.num_rows()).collect::<Vec<_>>(), vec![3, 3, 1]);
        let back: Vec<Node> = batches.iter().flat_map(batch_to_nodes).collect();
        assert_eq!(back, (1..=7).map(file_row).collect::<Vec<_>>());
    }

    #[test]
    fn a_hash_known_on_one_side_only_is_no_modification_and_two_known_hashes_that_differ_are() {
        let old = file_row(5);
        let mut new = file_row(5);
        new.name = "renamed".into();
        assert!(!new.modified_since(&old));
        new.xorhash = 0;
        assert!(!new.modified_since(&old) && !old.modified_since(&new), "0 is unknown");
        new.xorhash = 77;
        assert!(new.modified_since(&old) && old.modified_since(&new));
        // The column form judges the same.
        let b = node_batches([old.clone(), new.clone()].into_iter(), 8).next().unwrap();
        let c = NodeColumns::new(&b);
        assert_eq!(c.properties(1).modified_since(&c.properties(0)), new.modified_since(&old));
        new.xorhash = old.xorhash;
        new.mtime += 1;
        assert!(new.modified_since(&old));
    }
}
