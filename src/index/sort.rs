//! External sort of Arrow rows by one INT64 key column, in bounded memory.
//!
//! Rows are buffered as Arrow batches. A small input is sorted in memory. When the buffer reaches
//! `spill_rows` rows (or `spill_bytes` of Arrow memory), it is sorted and written to a temporary Arrow IPC
//! file (LZ4-compressed) as one sorted *run*, in a blocking task so the producer goes on meanwhile; at most
//! one run is being written at a time, so memory stays bounded by about two buffers. At the end the runs
//! (plus whatever is still buffered, sorted in memory) are k-way merged into batches of
//! [`OUT_BATCH_ROWS`] rows; the merge holds one batch of [`RUN_BATCH_ROWS`] rows per run.
//!
//! Users: the scan sorts listed rows by FileId, then by parent FileId, then by node id
//! (`crate::scan::resolve`); the idmap sorts old segments by FileId ([`super::idmap`]). With
//! [`SortKey::unique`], a key seen twice keeps its first row (the earliest pushed) and the others are
//! counted in [`MergeStats::duplicates`] (for node rows: one FileId listed under two names, e.g. NFS
//! hard links).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use arrow::array::{AsArray, RecordBatch};
use arrow::compute::{concat_batches, interleave_record_batch, sort_to_indices, take_record_batch};
use arrow::datatypes::{DataType, Int64Type, SchemaRef};
use arrow::ipc::CompressionType;
use arrow::ipc::reader::FileReader;
use arrow::ipc::writer::{FileWriter as IpcWriter, IpcWriteOptions};

/// Rows per batch handed on by a merge.
pub const OUT_BATCH_ROWS: usize = 8192;
/// Rows per batch inside a spilled run (the merge holds one such batch per run: about 1.5 MiB of node
/// rows).
pub const RUN_BATCH_ROWS: usize = 16384;

/// When to spill.
#[derive(Debug, Clone)]
pub struct SpillOptions {
    /// Spill a sorted run when this many rows are buffered.
    pub spill_rows: usize,
    /// ... or when the buffered batches take this many bytes of Arrow memory.
    pub spill_bytes: usize,
    /// Where the temporary run files go (a fresh temporary directory below it; the system's temporary
    /// directory by default). Removed when the sort ends, whether it succeeded or not.
    pub dir: Option<PathBuf>,
}

impl Default for SpillOptions {
    fn default() -> Self {
        SpillOptions::with_memory(DEFAULT_MEMORY)
    }
}

/// The default memory budget of a scan: [`SpillOptions::with_memory`] of 1 GiB.
pub const DEFAULT_MEMORY: u64 = 1 << 30;

impl SpillOptions {
    /// Spill options for a process that may use about `memory` bytes: the sort buffer takes an eighth of
    /// it. While a run is spilled its rows exist twice (concatenated, then sorted) next to the buffer
    /// filling meanwhile, and the next step's sort fills while this one merges, so the rows held in Arrow
    /// buffers stay under half the budget; the allocator's slack and the rest of the process take the
    /// other half.
    pub fn with_memory(memory: u64) -> Self {
        let buffer = usize::try_from(memory / 8).unwrap_or(usize::MAX).max(1 << 20);
        SpillOptions { spill_rows: usize::MAX, spill_bytes: buffer, dir: None }
    }

    /// The directory temporary files go below ([`Self::dir`] or the system's), created if missing.
    fn base_dir(&self) -> anyhow::Result<PathBuf> {
        let d = self.dir.clone().unwrap_or_else(std::env::temp_dir);
        std::fs::create_dir_all(&d).with_context(|| format!("creating spill directory {}", d.display()))?;
        Ok(d)
    }

    /// The spill directory as error messages name it.
    pub fn shown_dir(&self) -> String {
        self.dir.clone().unwrap_or_else(std::env::temp_dir).display().to_string()
    }

    /// A fresh temporary directory below the spill directory, removed when dropped.
    pub fn tempdir(&self, prefix: &str) -> anyhow::Result<tempfile::TempDir> {
        tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(self.base_dir()?)
            .with_context(|| format!("creating a temporary directory in {}", self.shown_dir()))
    }

    /// An anonymous temporary file in the spill directory, deleted when closed.
    pub fn tempfile(&self) -> anyhow::Result<std::fs::File> {
        tempfile::tempfile_in(self.base_dir()?)
            .with_context(|| format!("creating a temporary file in {}", self.shown_dir()))
    }
}

/// The column rows are sorted by (INT64, ascending, as signed values), and whether keys are unique.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortKey {
    pub column: usize,
    /// Keep only the first row of each key (the earliest pushed); count the others as duplicates.
    pub unique: bool,
}

/// Collects rows of one schema in any order and gives them back sorted by a [`SortKey`].
pub struct RunSorter {
    schema: SchemaRef,
    key: SortKey,
    opts: SpillOptions,
    buffered: Vec<RecordBatch>,
    buffered_rows: usize,
    buffered_bytes: usize,
    tmp: Option<tempfile::TempDir>,
    runs: Vec<PathBuf>,
    writing: Option<tokio::task::JoinHandle<anyhow::Result<PathBuf>>>,
    rows: u64,
}

impl RunSorter {
    /// A sorter of rows with `schema`; panics if the key column is not INT64 (a programming error).
    pub fn new(schema: SchemaRef, key: SortKey, opts: SpillOptions) -> Self {
        assert_eq!(schema.field(key.column).data_type(), &DataType::Int64, "sort key must be INT64");
        RunSorter {
            schema,
            key,
            opts,
            buffered: Vec::new(),
            buffered_rows: 0,
            buffered_bytes: 0,
            tmp: None,
            runs: Vec::new(),
            writing: None,
            rows: 0,
        }
    }

    /// Rows pushed so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Sorted runs written to disk so far (including one still being written).
    pub fn spilled_runs(&self) -> usize {
        self.runs.len() + usize::from(self.writing.is_some())
    }

    /// Add a batch (any order; its columns must match the sorter's schema). May spill a run to disk.
    pub async fn push(&mut self, batch: RecordBatch) -> anyhow::Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let batch = if batch.schema() == self.schema {
            batch
        } else {
            RecordBatch::try_new(self.schema.clone(), batch.columns().to_vec())
                .context("a batch pushed into a sort does not have the sort's columns")?
        };
        self.rows += batch.num_rows() as u64;
        self.buffered_rows += batch.num_rows();
        self.buffered_bytes += batch.get_array_memory_size();
        self.buffered.push(batch);
        if self.buffered_rows >= self.opts.spill_rows.max(1) || self.buffered_bytes >= self.opts.spill_bytes {
            self.spill().await?;
        }
        Ok(())
    }

    async fn spill(&mut self) -> anyhow::Result<()> {
        // One run in flight at a time: wait for the previous one before handing over the next buffer.
        if let Some(prev) = self.writing.take() {
            self.runs.push(prev.await.context("spill task panicked")??);
        }
        if self.tmp.is_none() {
            self.tmp = Some(self.opts.tempdir("afb-sort-")?);
        }
        let path =
            self.tmp.as_ref().expect("created above").path().join(format!("run-{:05}.arrow", self.spilled_runs()));
        let batches = std::mem::take(&mut self.buffered);
        self.buffered_rows = 0;
        self.buffered_bytes = 0;
        let (schema, key) = (self.schema.clone(), self.key.column);
        self.writing = Some(tokio::task::spawn_blocking(move || {
            let sorted = sort_batches(&schema, key, batches)?;
            write_run(&path, &schema, &sorted)?;
            Ok(path)
        }));
        Ok(())
    }

    /// Finish: every run on disk, the rest sorted in memory if nothing was spilled (else it is spilled
    /// too, so that a merge feeding the next sort does not hold a whole buffer meanwhile). Feed the result
    /// to [`SortedRuns::merge`].
    pub async fn finish(mut self) -> anyhow::Result<SortedRuns> {
        if self.spilled_runs() > 0 && !self.buffered.is_empty() {
            self.spill().await?;
        }
        if let Some(prev) = self.writing.take() {
            self.runs.push(prev.await.context("spill task panicked")??);
        }
        let batches = std::mem::take(&mut self.buffered);
        let (schema, key) = (self.schema.clone(), self.key.column);
        let memory = tokio::task::spawn_blocking(move || sort_batches(&schema, key, batches))
            .await
            .context("sort task panicked")??;
        Ok(SortedRuns { schema: self.schema, key: self.key, memory, runs: self.runs, tmp: self.tmp })
    }
}

/// Sorted runs ready to merge: files on disk plus one sorted batch in memory.
pub struct SortedRuns {
    schema: SchemaRef,
    key: SortKey,
    memory: Option<RecordBatch>,
    runs: Vec<PathBuf>,
    tmp: Option<tempfile::TempDir>,
}

/// What a merge saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct MergeStats {
    /// Rows handed on.
    pub rows: u64,
    /// Rows dropped because their key was already handed on ([`SortKey::unique`] only).
    pub duplicates: u64,
}

impl SortedRuns {
    /// Number of runs that came from disk.
    pub fn disk_runs(&self) -> usize {
        self.runs.len()
    }

    /// The runs as merge inputs, and the guard that keeps their files until dropped.
    pub fn into_inputs(self) -> anyhow::Result<(Vec<BatchIter>, Option<tempfile::TempDir>)> {
        let mut inputs: Vec<BatchIter> = Vec::new();
        for p in &self.runs {
            inputs.push(Box::new(read_run(p)?));
        }
        if let Some(b) = self.memory {
            let n = b.num_rows();
            inputs
                .push(Box::new((0..n).step_by(RUN_BATCH_ROWS).map(move |o| Ok(b.slice(o, RUN_BATCH_ROWS.min(n - o))))));
        }
        Ok((inputs, self.tmp))
    }

    /// Start merging every run into batches ascending by the key, on a blocking thread.
    /// Take the batches with [`Merge::next`], then [`Merge::finish`].
    pub fn merge(self) -> Merge {
        let (schema, key) = (self.schema.clone(), self.key);
        match self.into_inputs() {
            Ok((inputs, guard)) => merge_inputs(schema, key, inputs, guard),
            Err(e) => Merge::failed(e),
        }
    }
}

/// Start merging `inputs` (each ascending by `key`) into batches ascending by `key`, on a blocking thread;
/// `keep` (e.g. the directory of the inputs' files) is dropped when the merge ends.
pub fn merge_inputs(schema: SchemaRef, key: SortKey, inputs: Vec<BatchIter>, keep: impl Send + 'static) -> Merge {
    let (tx, rx) = tokio::sync::mpsc::channel::<RecordBatch>(4);
    let task = tokio::task::spawn_blocking(move || -> anyhow::Result<MergeStats> {
        let mut stats = MergeStats::default();
        merge_sources(&schema, key, inputs, &mut stats, |b| {
            tx.blocking_send(b).map_err(|_| anyhow::anyhow!("merge output was dropped"))
        })?;
        drop(keep);
        Ok(stats)
    });
    Merge { rx, task }
}

/// A merge in progress.
pub struct Merge {
    rx: tokio::sync::mpsc::Receiver<RecordBatch>,
    task: tokio::task::JoinHandle<anyhow::Result<MergeStats>>,
}

impl Merge {
    /// A merge that yields nothing and finishes with `e`.
    fn failed(e: anyhow::Error) -> Merge {
        let (_, rx) = tokio::sync::mpsc::channel(1);
        Merge { rx, task: tokio::spawn(async move { Err(e) }) }
    }

    /// The next batch; `None` when the merge has ended (call [`Merge::finish`] for its outcome).
    pub async fn next(&mut self) -> Option<RecordBatch> {
        self.rx.recv().await
    }

    /// Stop taking batches and wait for the merge: its statistics, or the error that ended it.
    pub async fn finish(self) -> anyhow::Result<MergeStats> {
        drop(self.rx);
        self.task.await.context("merge task panicked")?
    }
}

/// Concatenate and sort by the key column (skipping the sort when already ascending). `None` if empty.
/// Takes the batches by value and drops them once concatenated: at most two copies of the rows exist.
fn sort_batches(schema: &SchemaRef, key: usize, batches: Vec<RecordBatch>) -> anyhow::Result<Option<RecordBatch>> {
    if batches.is_empty() {
        return Ok(None);
    }
    let all = concat_batches(schema, &batches)?;
    drop(batches);
    let keys = all.column(key).as_primitive::<Int64Type>();
    if keys.values().windows(2).all(|w| w[0] <= w[1]) {
        return Ok(Some(all));
    }
    let idx = sort_to_indices(all.column(key), None, None)?;
    Ok(Some(take_record_batch(&all, &idx)?))
}

/// Writes one sorted run (LZ4-compressed Arrow IPC) at `path`, inside a temporary directory of the spill
/// directory. Any failure to write is the one "spill directory ... no room" error of [`crate::spill`].
fn write_run(path: &Path, schema: &SchemaRef, sorted: &Option<RecordBatch>) -> anyhow::Result<()> {
    // Uncompressed, so at most what the run takes on disk.
    let run_bytes = sorted.as_ref().map_or(0, |b| b.get_array_memory_size() as u64);
    let spill_dir = path.parent().and_then(Path::parent).unwrap_or(path);
    let no_room = |e: &dyn std::fmt::Display| anyhow::anyhow!(crate::spill::no_room(spill_dir, run_bytes, e));
    let file = File::create(path).map_err(|e| no_room(&e))?;
    let opts = IpcWriteOptions::default().try_with_compression(Some(CompressionType::LZ4_FRAME))?;
    let mut w = IpcWriter::try_new_with_options(BufWriter::with_capacity(1 << 20, file), schema, opts)
        .map_err(|e| no_room(&e))?;
    if let Some(b) = sorted {
        let n = b.num_rows();
        for o in (0..n).step_by(RUN_BATCH_ROWS) {
            w.write(&b.slice(o, RUN_BATCH_ROWS.min(n - o))).map_err(|e| no_room(&e))?;
        }
    }
    // `finish` writes the footer and flushes the file.
    w.finish().map_err(|e| no_room(&e))?;
    Ok(())
}

fn read_run(path: &Path) -> anyhow::Result<impl Iterator<Item = anyhow::Result<RecordBatch>> + Send + use<>> {
    let file = File::open(path).with_context(|| format!("opening sorted run {}", path.display()))?;
    let r = FileReader::try_new(BufReader::with_capacity(1 << 20, file), None)?;
    let shown = path.display().to_string();
    Ok(r.map(move |b| b.with_context(|| format!("reading sorted run {shown}"))))
}

/// A sorted input of a merge.
pub type BatchIter = Box<dyn Iterator<Item = anyhow::Result<RecordBatch>> + Send>;

/// One input of the merge: its current batch and position, and where that batch sits in the output
/// chunk's batch list.
struct Source {
    it: BatchIter,
    batch: RecordBatch,
    row: usize,
    slot: usize,
}

/// K-way merge of inputs each ascending by `key` into batches of [`OUT_BATCH_ROWS`] rows, ascending
/// (strictly with [`SortKey::unique`]). An input that is not ascending is an error.
pub fn merge_sources(
    schema: &SchemaRef,
    key: SortKey,
    inputs: Vec<BatchIter>,
    stats: &mut MergeStats,
    mut out: impl FnMut(RecordBatch) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let key_at = |b: &RecordBatch, row: usize| b.column(key.column).as_primitive::<Int64Type>().value(row);
    let mut sources: Vec<Source> = Vec::new();
    // The batches rows of the current output chunk come from, and (batch, row) per output row.
    let mut chunk: Vec<RecordBatch> = Vec::new();
    let mut picks: Vec<(usize, usize)> = Vec::with_capacity(OUT_BATCH_ROWS);
    let mut heap = BinaryHeap::new();
    for mut it in inputs {
        // Position on the first row, skipping empty batches.
        let mut first = None;
        for b in it.by_ref() {
            let b = b?;
            if b.num_rows() > 0 {
                first = Some(b);
                break;
            }
        }
        let Some(batch) = first else { continue };
        heap.push(Reverse((key_at(&batch, 0), sources.len())));
        chunk.push(batch.clone());
        sources.push(Source { it, batch, row: 0, slot: chunk.len() - 1 });
    }
    let mut last: Option<i64> = None;
    while let Some(Reverse((k, i))) = heap.pop() {
        if key.unique && last == Some(k) {
            stats.duplicates += 1;
        } else {
            last = Some(k);
            stats.rows += 1;
            picks.push((sources[i].slot, sources[i].row));
            if picks.len() == OUT_BATCH_ROWS {
                out(flush(schema, &mut chunk, &mut picks, &mut sources)?)?;
            }
        }
        let s = &mut sources[i];
        s.row += 1;
        while s.row >= s.batch.num_rows() {
            match s.it.next() {
                Some(b) => {
                    s.batch = b?;
                    s.row = 0;
                    chunk.push(s.batch.clone());
                    s.slot = chunk.len() - 1;
                }
                None => break,
            }
        }
        if s.row < s.batch.num_rows() {
            let next = key_at(&s.batch, s.row);
            anyhow::ensure!(next >= k, "a sorted run is out of order (key {next} after {k})");
            heap.push(Reverse((next, i)));
        }
    }
    if !picks.is_empty() {
        out(flush(schema, &mut chunk, &mut picks, &mut sources)?)?;
    }
    Ok(())
}

/// The output batch of the picked rows; the chunk restarts with each source's current batch.
fn flush(
    schema: &SchemaRef,
    chunk: &mut Vec<RecordBatch>,
    picks: &mut Vec<(usize, usize)>,
    sources: &mut [Source],
) -> anyhow::Result<RecordBatch> {
    let refs: Vec<&RecordBatch> = chunk.iter().collect();
    let b = interleave_record_batch(&refs, picks)?;
    let b = if b.schema() == *schema { b } else { RecordBatch::try_new(schema.clone(), b.columns().to_vec())? };
    picks.clear();
    chunk.clear();
    for s in sources.iter_mut() {
        chunk.push(s.batch.clone());
        s.slot = chunk.len() - 1;
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::node::tests::file_row;
    use crate::index::node::{batch_to_nodes, col, node_schema, nodes_to_batch};

    async fn sorted_ids(spill_rows: usize, ids: &[i64]) -> (Vec<i64>, MergeStats, usize) {
        sorted_by(SortKey { column: col::NODE_ID, unique: true }, spill_rows, ids).await
    }

    /// Sorts rows whose node_id and size are `ids`; returns the (node_id or size) key column in merge order.
    async fn sorted_by(key: SortKey, spill_rows: usize, ids: &[i64]) -> (Vec<i64>, MergeStats, usize) {
        let mut s = RunSorter::new(node_schema(), key, SpillOptions { spill_rows, ..Default::default() });
        for chunk in ids.chunks(3) {
            s.push(nodes_to_batch(&chunk.iter().map(|&i| file_row(i)).collect::<Vec<_>>())).await.unwrap();
        }
        let runs = s.finish().await.unwrap();
        let disk = runs.disk_runs();
        let mut out = Vec::new();
        let mut m = runs.merge();
        while let Some(b) = m.next().await {
            out.extend(
                batch_to_nodes(&b).into_iter().map(|x| if key.column == col::SIZE { x.size } else { x.node_id.0 }),
            );
        }
        let stats = m.finish().await.unwrap();
        (out, stats, disk)
    }

    #[tokio::test]
    async fn spilled_and_in_memory_sorts_agree_and_drop_duplicates() {
        let mut ids: Vec<i64> = (1..=1000).map(|i| (i * 7919) % 1009 + 1).collect();
        ids.push(5);
        let (mem, st1, d1) = sorted_ids(1 << 20, &ids).await;
        let (disk, st2, d2) = sorted_ids(50, &ids).await;
        assert_eq!(d1, 0);
        assert!(d2 > 10);
        assert_eq!(mem, disk);
        assert!(mem.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(st1, st2);
        assert_eq!(st1.duplicates, 1);
        assert_eq!(st1.rows as usize, ids.len() - 1);
    }

    #[tokio::test]
    async fn a_non_unique_key_keeps_every_row() {
        let ids: Vec<i64> = (1..=500).map(|i| (i * 7919) % 1009 + 1).collect();
        // Sort by size, which n() sets to the id: the same keys, here with every id twice.
        let twice: Vec<i64> = ids.iter().chain(&ids).copied().collect();
        let key = SortKey { column: col::SIZE, unique: false };
        let (mem, st, _) = sorted_by(key, 1 << 20, &twice).await;
        let (disk, _, runs) = sorted_by(key, 40, &twice).await;
        assert!(runs > 10);
        assert_eq!(mem, disk);
        assert_eq!(mem.len(), 1000);
        assert_eq!(st.duplicates, 0);
        assert!(mem.windows(2).all(|w| w[0] <= w[1]));
    }
}
