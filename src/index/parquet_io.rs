//! The one place that writes and opens the index's Parquet files.
//!
//! Writer settings were chosen by measurement on the synthetic share (`afb bench index`, see
//! `docs/index.md`): rows sorted by `node_id`; zstd; `DELTA_BINARY_PACKED` for the id and time columns,
//! `DELTA_BYTE_ARRAY` for names, dictionary for `kind` and `attributes`, plain for the hash; page-level
//! statistics so readers can prune by `node_id` (row-group statistics only for `kind` and the times, see
//! [`writer_properties`]).

use std::sync::Arc;

use anyhow::Context;
use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Schema, SchemaRef, TimeUnit};
use bytes::Bytes;
use futures::StreamExt;
use futures::future::BoxFuture;
use object_store::ObjectStore;
use object_store::ObjectStoreExt;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use parquet::arrow::arrow_reader::{ArrowReaderOptions, RowSelection, RowSelector};
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::arrow::{AsyncArrowWriter, ParquetRecordBatchStreamBuilder, ProjectionMask};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::{KeyValue, SortingColumn};
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData, ParquetMetaDataReader};
use parquet::file::page_index::column_index::ColumnIndexMetaData;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::statistics::Statistics;
use parquet::schema::types::ColumnPath;

use super::BatchStream;

/// How one column is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnEncoding {
    /// PLAIN, no dictionary.
    Plain,
    /// Dictionary (RLE_DICTIONARY) with PLAIN fallback when the dictionary page limit is hit.
    Dictionary,
    /// DELTA_BINARY_PACKED for integers, DELTA_BYTE_ARRAY for strings; no dictionary.
    Delta,
}

/// Tunables for writing index files. Defaults are what `afb bench index` measured best on a real tree
/// replicated to 10M nodes (see `docs/index.md`, "Choices and their measurements").
#[derive(Debug, Clone, Copy)]
pub struct ParquetTuning {
    /// Rows per row group (the unit a reader fetches; memory while reading is about one row group). Also
    /// the unit DataFusion's Parquet scan evaluates pushed-down filters on before it decodes the other
    /// columns: with 131,072 rows a top-N query's dynamic filter (`size > the N-th largest so far`) is
    /// tight after the first group, so later groups decode `name` for few rows (see docs/index.md).
    pub row_group_rows: usize,
    /// zstd level (1-22).
    pub zstd_level: i32,
    /// Target size of a data page before compression, in bytes (the unit zstd compresses).
    pub page_bytes: usize,
    /// Most rows in one data page (a page is also the unit page-level statistics prune).
    pub page_rows: usize,
    /// `name`.
    pub name: ColumnEncoding,
    /// `size`.
    pub size: ColumnEncoding,
    /// `mtime` and `ctime`.
    pub times: ColumnEncoding,
    /// `xorhash`.
    pub hash: ColumnEncoding,
}

impl Default for ParquetTuning {
    fn default() -> Self {
        ParquetTuning {
            row_group_rows: 1 << 17,
            zstd_level: 9,
            page_bytes: 1 << 20,
            page_rows: 20_000,
            name: ColumnEncoding::Delta,
            size: ColumnEncoding::Plain,
            times: ColumnEncoding::Plain,
            hash: ColumnEncoding::Plain,
        }
    }
}

fn encode(
    b: parquet::file::properties::WriterPropertiesBuilder,
    c: ColumnPath,
    e: ColumnEncoding,
    delta: Encoding,
) -> parquet::file::properties::WriterPropertiesBuilder {
    match e {
        ColumnEncoding::Plain => {
            b.set_column_dictionary_enabled(c.clone(), false).set_column_encoding(c, Encoding::PLAIN)
        }
        ColumnEncoding::Dictionary => b.set_column_dictionary_enabled(c, true),
        ColumnEncoding::Delta => b.set_column_dictionary_enabled(c.clone(), false).set_column_encoding(c, delta),
    }
}

/// Writer properties for a table whose first column is `node_id` (sorted ascending).
pub fn writer_properties(schema: &Schema, t: ParquetTuning) -> WriterProperties {
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(t.zstd_level).unwrap_or_default()))
        .set_max_row_group_row_count(Some(t.row_group_rows))
        .set_data_page_size_limit(t.page_bytes)
        .set_data_page_row_count_limit(t.page_rows)
        .set_dictionary_page_size_limit(t.page_bytes.max(1 << 20))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_sorting_columns(Some(vec![SortingColumn { column_idx: 0, descending: false, nulls_first: false }]))
        .set_created_by(format!("afb {}", env!("CARGO_PKG_VERSION")));
    for f in schema.fields() {
        let c = ColumnPath::from(f.name().as_str());
        let (int_delta, bytes_delta) = (Encoding::DELTA_BINARY_PACKED, Encoding::DELTA_BYTE_ARRAY);
        b = match f.name().as_str() {
            "node_id" | "parent_id" | "file_id" => encode(b, c, ColumnEncoding::Delta, int_delta),
            "size" => encode(b, c, t.size, int_delta),
            // Row-group statistics only, for the same reason as `kind` below: a page index of the times
            // pruned a third of the rows of `untouched_for_a_year` at 100M nodes, but its row selection
            // kept the top-N's dynamic filter from skipping whole row groups (0.77 s with it, 0.28 s
            // without).
            "mtime" | "ctime" => {
                encode(b, c.clone(), t.times, int_delta).set_column_statistics_enabled(c, EnabledStatistics::Chunk)
            }
            "name" => encode(b, c, t.name, bytes_delta),
            "xorhash" => encode(b, c, t.hash, int_delta),
            // Row-group statistics only: its values interleave within pages, so a page index of `kind`
            // prunes nothing, yet the row selection it yields turns off DataFusion's pruning of row
            // groups by a top-N's dynamic filter.
            "kind" => b
                .set_column_dictionary_enabled(c.clone(), true)
                .set_column_statistics_enabled(c, EnabledStatistics::Chunk),
            _ => b.set_column_dictionary_enabled(c, true),
        };
    }
    b.build()
}

/// A Parquet file being written to the object store.
pub struct FileWriter {
    key: String,
    writer: AsyncArrowWriter<BufWriter>,
    rows: u64,
}

impl FileWriter {
    pub fn create(
        store: &Arc<dyn ObjectStore>,
        key: &str,
        schema: SchemaRef,
        t: ParquetTuning,
    ) -> anyhow::Result<Self> {
        Self::create_tagged(store, key, schema, t, &[])
    }

    /// [`Self::create`] with `tags` in the file's key-value metadata (read back by [`key_value`]).
    pub fn create_tagged(
        store: &Arc<dyn ObjectStore>,
        key: &str,
        schema: SchemaRef,
        t: ParquetTuning,
        tags: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let mut props = writer_properties(&schema, t);
        if !tags.is_empty() {
            let kv = tags.iter().map(|(k, v)| KeyValue::new(k.to_string(), v.to_string())).collect();
            props = props.into_builder().set_key_value_metadata(Some(kv)).build();
        }
        let w = BufWriter::new(store.clone(), Path::from(key));
        let writer = AsyncArrowWriter::try_new(w, schema, Some(props)).with_context(|| format!("creating {key}"))?;
        Ok(FileWriter { key: key.to_string(), writer, rows: 0 })
    }

    pub async fn write(&mut self, b: &RecordBatch) -> anyhow::Result<()> {
        if b.num_rows() == 0 {
            return Ok(());
        }
        self.rows += b.num_rows() as u64;
        self.writer.write(b).await.with_context(|| format!("writing {}", self.key))
    }

    /// Finish the file; returns (key, rows, bytes).
    pub async fn close(self) -> anyhow::Result<(String, u64, u64)> {
        let mut w = self.writer;
        w.finish().await.with_context(|| format!("finishing {}", self.key))?;
        let bytes = w.bytes_written() as u64;
        Ok((self.key, self.rows, bytes))
    }
}

/// Open a Parquet file for streaming, reading only `columns` (by name) and checking that they exist with
/// the types of `expected`. Errors name the key.
pub async fn open_stream(
    store: &Arc<dyn ObjectStore>,
    key: &str,
    size: Option<u64>,
    expected: &Schema,
    batch_rows: usize,
) -> anyhow::Result<BatchStream> {
    open_stream_in(store, key, size, None, expected, batch_rows, None).await
}

/// [`open_stream`] of a file sorted by its first column (`node_id`), reading with `runs` only the pages
/// that may hold ids in them (see [`select_runs`]); rows of those pages outside `runs` come too, so a
/// reader that needs exactly the ids of `runs` filters with [`in_runs`]. `None` reads every row.
/// `rows`, when given, is the row count a manifest records for the file: a file whose footer says
/// otherwise is refused, so a manifest's counts (which `count(*)` answers from) match what reads see.
pub async fn open_stream_in(
    store: &Arc<dyn ObjectStore>,
    key: &str,
    size: Option<u64>,
    rows: Option<u64>,
    expected: &Schema,
    batch_rows: usize,
    runs: Option<&IdRuns>,
) -> anyhow::Result<BatchStream> {
    let path = Path::from(key);
    let size = match size {
        Some(s) => s,
        None => store.head(&path).await.with_context(|| format!("{key}: cannot stat"))?.size,
    };
    let policy = if runs.is_some() { PageIndexPolicy::Optional } else { PageIndexPolicy::Skip };
    let reader = StoreReader::new(store.clone(), path, size, policy);
    let options = ArrowReaderOptions::new().with_page_index_policy(policy);
    let mut builder = ParquetRecordBatchStreamBuilder::new_with_options(reader, options)
        .await
        .with_context(|| format!("{key}: not a readable Parquet file"))?;
    if let Some(runs) = runs {
        let (groups, selection) = select_runs(builder.metadata(), runs);
        if groups.is_empty() {
            return Ok(futures::stream::empty().boxed());
        }
        builder = builder.with_row_groups(groups).with_row_selection(selection);
    }
    let file_schema = builder.schema().clone();
    let mut indices = Vec::with_capacity(expected.fields().len());
    for f in expected.fields() {
        let (i, got) = file_schema.column_with_name(f.name()).ok_or_else(|| {
            anyhow::anyhow!(
                "{key}: not an afb index file: column {:?} missing (has {:?})",
                f.name(),
                file_schema.fields().iter().map(|f| f.name()).collect::<Vec<_>>()
            )
        })?;
        if got.data_type() != f.data_type() && !reinterpretable(got.data_type(), f.data_type()) {
            anyhow::bail!(
                "{key}: not an afb index file: column {:?} is {}, expected {}",
                f.name(),
                got.data_type(),
                f.data_type()
            );
        }
        indices.push(i);
    }
    if indices.windows(2).any(|w| w[0] >= w[1]) {
        anyhow::bail!("{key}: not an afb index file: columns out of order");
    }
    let footer_rows = builder.metadata().file_metadata().num_rows();
    if let Some(rows) = rows
        && u64::try_from(footer_rows).ok() != Some(rows)
    {
        anyhow::bail!("{key}: holds {footer_rows} rows, its manifest says {rows}");
    }
    let mask = ProjectionMask::roots(builder.parquet_schema(), indices);
    let stream = builder
        .with_projection(mask)
        .with_batch_size(batch_rows)
        .build()
        .with_context(|| format!("{key}: cannot read"))?;
    let key = key.to_string();
    let expected = Arc::new(expected.clone());
    Ok(stream
        .map(move |r| {
            let b = r.with_context(|| format!("{key}: corrupt Parquet data"))?;
            // Same columns, but carry the canonical schema (drops file-level metadata); times written as
            // plain INT64 by older versions (or with another spelling of UTC) become the expected type.
            let mut cols = b.columns().to_vec();
            for (c, f) in cols.iter_mut().zip(expected.fields()) {
                if c.data_type() != f.data_type() {
                    *c = arrow::compute::cast(c, f.data_type())
                        .with_context(|| format!("{key}: column {:?}", f.name()))?;
                }
            }
            RecordBatch::try_new(expected.clone(), cols).with_context(|| format!("{key}: unexpected columns"))
        })
        .boxed())
}

/// Inclusive ranges of `node_id` values (as the INT64 column holds them), ascending and disjoint.
pub type IdRuns = [(i64, i64)];

/// Whether `id` falls in one of `runs`.
pub fn in_runs(runs: &IdRuns, id: i64) -> bool {
    let i = runs.partition_point(|r| r.1 < id);
    i < runs.len() && runs[i].0 <= id
}

/// Whether `[lo, hi]` overlaps one of `runs`.
pub fn overlaps(runs: &IdRuns, lo: i64, hi: i64) -> bool {
    let i = runs.partition_point(|r| r.1 < lo);
    i < runs.len() && runs[i].0 <= hi
}

/// The row groups, and the rows in them, of a file sorted by its first column (`node_id`) that may hold
/// ids of `runs`: pages whose id range overlaps a run, from the page index when the file has one, else
/// whole row groups by their statistics (a page or group without statistics is read).
pub fn select_runs(md: &ParquetMetaData, runs: &IdRuns) -> (Vec<usize>, RowSelection) {
    let mut groups = Vec::new();
    let mut selection: Vec<RowSelector> = Vec::new();
    for rg in 0..md.num_row_groups() {
        let rows = md.row_group(rg).num_rows() as usize;
        let pages = md
            .column_index()
            .and_then(|ci| ci.get(rg))
            .and_then(|c| c.first())
            .zip(md.offset_index().and_then(|oi| oi.get(rg)).and_then(|c| c.first()));
        let mut rg_sel: Vec<RowSelector> = Vec::new();
        match pages {
            Some((ColumnIndexMetaData::INT64(ci), oi)) => {
                let locs = oi.page_locations();
                for (p, loc) in locs.iter().enumerate() {
                    let start = loc.first_row_index as usize;
                    let end = locs.get(p + 1).map_or(rows, |l| l.first_row_index as usize);
                    let hit = match (ci.min_value(p), ci.max_value(p)) {
                        (Some(&lo), Some(&hi)) => overlaps(runs, lo, hi),
                        _ => true,
                    };
                    push_selector(&mut rg_sel, end - start, hit);
                }
            }
            _ => {
                let hit = match md.row_group(rg).column(0).statistics() {
                    Some(Statistics::Int64(s)) => match (s.min_opt(), s.max_opt()) {
                        (Some(&lo), Some(&hi)) => overlaps(runs, lo, hi),
                        _ => true,
                    },
                    _ => true,
                };
                push_selector(&mut rg_sel, rows, hit);
            }
        }
        if rg_sel.iter().any(|s| !s.skip) {
            groups.push(rg);
            selection.extend(rg_sel);
        }
    }
    (groups, RowSelection::from(selection))
}

/// Appends `n` rows, taken or skipped, merging with the last selector of the same kind.
fn push_selector(sel: &mut Vec<RowSelector>, n: usize, take: bool) {
    if n == 0 {
        return;
    }
    match sel.last_mut() {
        Some(l) if l.skip != take => l.row_count += n,
        _ => sel.push(if take { RowSelector::select(n) } else { RowSelector::skip(n) }),
    }
}

/// Whether a column stored as `got` reads as `want` without loss: nanosecond times stored as plain
/// INT64 (snapshots written before the TIMESTAMP annotation) or with a UTC offset spelled otherwise.
fn reinterpretable(got: &DataType, want: &DataType) -> bool {
    matches!(want, DataType::Timestamp(TimeUnit::Nanosecond, Some(_)))
        && matches!(got, DataType::Int64 | DataType::Timestamp(TimeUnit::Nanosecond, Some(_)))
}

/// The value of `name` in a Parquet file's key-value metadata (reads only the footer).
pub async fn key_value(
    store: &Arc<dyn ObjectStore>,
    key: &str,
    size: Option<u64>,
    name: &str,
) -> anyhow::Result<Option<String>> {
    let path = Path::from(key);
    let size = match size {
        Some(s) => s,
        None => store.head(&path).await.with_context(|| format!("{key}: cannot stat"))?.size,
    };
    let mut reader = StoreReader::new(store.clone(), path, size, PageIndexPolicy::Skip);
    let m = reader.get_metadata(None).await.with_context(|| format!("{key}: not a readable Parquet file"))?;
    Ok(m.file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|e| e.key == name))
        .and_then(|e| e.value.clone()))
}

/// Reads one object by ranges: the footer first (with the page index when `page_index` asks for it),
/// then the column chunks a reader asks for.
pub(super) struct StoreReader {
    store: Arc<dyn ObjectStore>,
    path: Path,
    size: u64,
    page_index: PageIndexPolicy,
}

impl StoreReader {
    /// A reader of the object at `path`, `size` bytes long.
    pub(super) fn new(store: Arc<dyn ObjectStore>, path: Path, size: u64, page_index: PageIndexPolicy) -> Self {
        StoreReader { store, path, size, page_index }
    }
}

impl AsyncFileReader for StoreReader {
    fn get_bytes(&mut self, range: std::ops::Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        Box::pin(async move {
            self.store
                .get_range(&self.path, range)
                .await
                .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))
        })
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<std::ops::Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        Box::pin(async move {
            self.store
                .get_ranges(&self.path, &ranges)
                .await
                .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))
        })
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        Box::pin(async move {
            let size = self.size;
            let m = ParquetMetaDataReader::new()
                .with_page_index_policy(self.page_index)
                .load_and_finish(self, size)
                .await?;
            Ok(Arc::new(m))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_lookup() {
        let runs = [(5, 9), (100, 100), (2000, 3000)];
        assert!(in_runs(&runs, 5) && in_runs(&runs, 9) && in_runs(&runs, 100) && in_runs(&runs, 2500));
        assert!(!in_runs(&runs, 4) && !in_runs(&runs, 10) && !in_runs(&runs, 3001));
        assert!(
            overlaps(&runs, 0, 5)
                && overlaps(&runs, 10, 100)
                && !overlaps(&runs, 10, 99)
                && !overlaps(&runs, 3001, 9999)
        );
    }
}
