//! The columnar index: node rows of a share as Arrow batches, persisted as Parquet snapshots per tenant
//! and share, diffed by streaming merge, queried with SQL.
//!
//! - [`node`]: the node row and its Arrow schema.
//! - [`idmap`]: Azure FileId → dense node id, streamed in FileId order.
//! - [`sort`]: external sort of Arrow rows by an INT64 key (spilled sorted runs, k-way merge).
//! - [`manifest`]: object keys and the snapshot manifest (the commit record).
//! - [`parquet_io`]: the one place that writes and opens Parquet.
//! - [`node_index`]: [`NodeIndex`], the object store of every share's index snapshots, and merged reads.
//! - [`snapshot`]: writing a snapshot: atomic commit, base + delta history; gc.
//! - [`le_array`]: little-endian integer arrays read in place (owned bytes or a mapped file).
//! - [`dirmap`]: directory map: paths in microseconds, subtree totals.
//! - [`hashes`]: per-snapshot hash layers: the content hashes a backup learned after the scan.
//! - [`summary`]: per-snapshot directory summary written at commit; directory listings that read only
//!   the pages they need.
//! - [`summary_build`]: building a summary in bounded memory (sorted sets spilled to disk).
//! - [`diff`]: classify changes between two snapshots in constant memory.
//! - [`sql`]: DataFusion tables and functions over a repository.
//! - [`synthetic`]: seeded file-server-like trees and a mutation step, for tests and benchmarks.
//!
//! The on-disk format is specified in `docs/index.md`.

pub mod bench;
pub mod cli;
pub mod diff;
pub mod dirmap;
pub mod hashes;
pub mod idmap;
pub mod layered_scan;
pub mod le_array;
pub mod manifest;
pub mod node;
pub mod node_index;
pub mod parquet_io;
pub mod snapshot;
pub mod sort;
pub mod sql;
pub mod summary;
pub mod summary_build;
pub mod synthetic;

pub use node_index::NodeIndex;

use std::pin::Pin;

/// A stream of record batches (node rows unless stated otherwise).
pub type BatchStream = Pin<Box<dyn futures::Stream<Item = anyhow::Result<arrow::array::RecordBatch>> + Send>>;
