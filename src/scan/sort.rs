//! External sort of node rows by `node_id`: rows arrive in listing order, the snapshot writer wants them
//! strictly ascending.
//!
//! Rows are buffered as Arrow batches. A small share is sorted in memory. When the buffer reaches
//! `spill_rows` rows (or `spill_bytes` of Arrow memory), it is sorted and written to a temporary Arrow IPC
//! file (LZ4-compressed) as one sorted *run*, in a blocking task so listing goes on meanwhile; at most
//! one run is being written at a time, so memory stays bounded by about two buffers. At the end the runs
//! (plus whatever is still buffered, sorted in memory) are k-way merged into batches of
//! [`OUT_BATCH_ROWS`] rows. A `node_id` seen twice (possible only if the service lists one FileId under
//! two names, e.g. NFS hard links) keeps its first row and is counted in [`MergeStats::duplicates`].

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use arrow::array::{AsArray, RecordBatch};
use arrow::compute::{concat_batches, sort_to_indices, take_record_batch};
use arrow::datatypes::Int64Type;
use arrow::ipc::CompressionType;
use arrow::ipc::reader::FileReader;
use arrow::ipc::writer::{FileWriter as IpcWriter, IpcWriteOptions};

use crate::index::node::{NodeBatchBuilder, NodeColumns, col, node_schema};

/// Rows per batch handed to the snapshot writer.
pub const OUT_BATCH_ROWS: usize = 8192;
/// Rows per batch inside a spilled run.
const RUN_BATCH_ROWS: usize = 65536;

/// When to spill.
#[derive(Debug, Clone)]
pub struct SpillOptions {
    /// Spill a sorted run when this many rows are buffered.
    pub spill_rows: usize,
    /// ... or when the buffered batches take this many bytes of Arrow memory.
    pub spill_bytes: usize,
    /// Where the temporary run files go (a fresh temporary directory below it; the system's temporary
    /// directory by default). Removed when the scan ends, whether it succeeded or not.
    pub dir: Option<PathBuf>,
}

impl Default for SpillOptions {
    fn default() -> Self {
        SpillOptions { spill_rows: 2_000_000, spill_bytes: 512 * 1024 * 1024, dir: None }
    }
}

/// Collects node rows in any order and gives them back sorted by `node_id`.
pub struct RunSorter {
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
    pub fn new(opts: SpillOptions) -> Self {
        RunSorter {
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

    /// Add a batch of node rows (any order). May spill a run to disk.
    pub async fn push(&mut self, batch: RecordBatch) -> anyhow::Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
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
            let t = match &self.opts.dir {
                Some(d) => {
                    std::fs::create_dir_all(d).with_context(|| format!("creating spill directory {}", d.display()))?;
                    tempfile::Builder::new().prefix("afb-scan-").tempdir_in(d)
                }
                None => tempfile::Builder::new().prefix("afb-scan-").tempdir(),
            }
            .context("creating a temporary directory for sorted runs")?;
            self.tmp = Some(t);
        }
        let path =
            self.tmp.as_ref().expect("created above").path().join(format!("run-{:05}.arrow", self.spilled_runs()));
        let batches = std::mem::take(&mut self.buffered);
        self.buffered_rows = 0;
        self.buffered_bytes = 0;
        self.writing = Some(tokio::task::spawn_blocking(move || {
            let sorted = sort_batches(&batches)?;
            drop(batches);
            write_run(&path, &sorted)?;
            Ok(path)
        }));
        Ok(())
    }

    /// Finish: every run on disk, the rest sorted in memory. Feed the result to [`SortedRuns::merge`].
    pub async fn finish(mut self) -> anyhow::Result<SortedRuns> {
        if let Some(prev) = self.writing.take() {
            self.runs.push(prev.await.context("spill task panicked")??);
        }
        let batches = std::mem::take(&mut self.buffered);
        let memory =
            tokio::task::spawn_blocking(move || sort_batches(&batches)).await.context("sort task panicked")??;
        Ok(SortedRuns { memory, runs: self.runs, _tmp: self.tmp })
    }
}

/// Sorted runs ready to merge: files on disk plus one sorted batch in memory.
pub struct SortedRuns {
    memory: Option<RecordBatch>,
    runs: Vec<PathBuf>,
    _tmp: Option<tempfile::TempDir>,
}

/// What a merge saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct MergeStats {
    /// Rows handed on.
    pub rows: u64,
    /// Rows dropped because their `node_id` was already handed on.
    pub duplicates: u64,
}

impl SortedRuns {
    /// Number of runs that came from disk.
    pub fn disk_runs(&self) -> usize {
        self.runs.len()
    }

    /// Start merging every run into batches strictly ascending by `node_id`, on a blocking thread.
    /// Take the batches with [`Merge::next`], then [`Merge::finish`].
    pub fn merge(self) -> Merge {
        let (tx, rx) = tokio::sync::mpsc::channel::<RecordBatch>(4);
        let task = tokio::task::spawn_blocking(move || -> anyhow::Result<MergeStats> {
            let mut sources: Vec<Box<dyn Iterator<Item = anyhow::Result<RecordBatch>> + Send>> = Vec::new();
            for p in &self.runs {
                sources.push(Box::new(read_run(p)?));
            }
            if let Some(b) = self.memory {
                let n = b.num_rows();
                sources.push(Box::new(
                    (0..n).step_by(RUN_BATCH_ROWS).map(move |o| Ok(b.slice(o, RUN_BATCH_ROWS.min(n - o)))),
                ));
            }
            let mut stats = MergeStats::default();
            merge_sources(sources, &mut stats, |b| {
                tx.blocking_send(b).map_err(|_| anyhow::anyhow!("merge output was dropped"))
            })?;
            drop(self._tmp);
            Ok(stats)
        });
        Merge { rx, task }
    }
}

/// A merge in progress.
pub struct Merge {
    rx: tokio::sync::mpsc::Receiver<RecordBatch>,
    task: tokio::task::JoinHandle<anyhow::Result<MergeStats>>,
}

impl Merge {
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

/// Concatenate and sort by `node_id` (skipping the sort when already ascending). `None` if empty.
fn sort_batches(batches: &[RecordBatch]) -> anyhow::Result<Option<RecordBatch>> {
    if batches.is_empty() {
        return Ok(None);
    }
    let all = concat_batches(&node_schema(), batches)?;
    let ids = all.column(col::NODE_ID).as_primitive::<Int64Type>();
    if ids.values().windows(2).all(|w| w[0] <= w[1]) {
        return Ok(Some(all));
    }
    let idx = sort_to_indices(all.column(col::NODE_ID), None, None)?;
    Ok(Some(take_record_batch(&all, &idx)?))
}

fn write_run(path: &Path, sorted: &Option<RecordBatch>) -> anyhow::Result<()> {
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let opts = IpcWriteOptions::default().try_with_compression(Some(CompressionType::LZ4_FRAME))?;
    let mut w = IpcWriter::try_new_with_options(BufWriter::with_capacity(1 << 20, file), &node_schema(), opts)?;
    if let Some(b) = sorted {
        let n = b.num_rows();
        for o in (0..n).step_by(RUN_BATCH_ROWS) {
            w.write(&b.slice(o, RUN_BATCH_ROWS.min(n - o)))?;
        }
    }
    w.finish().with_context(|| format!("writing sorted run {}", path.display()))?;
    Ok(())
}

fn read_run(path: &Path) -> anyhow::Result<impl Iterator<Item = anyhow::Result<RecordBatch>> + Send + use<>> {
    let file = File::open(path).with_context(|| format!("opening sorted run {}", path.display()))?;
    let r = FileReader::try_new(BufReader::with_capacity(1 << 20, file), None)?;
    let shown = path.display().to_string();
    Ok(r.map(move |b| b.with_context(|| format!("reading sorted run {shown}"))))
}

/// One input of the merge: its current batch and position.
struct Source {
    it: Box<dyn Iterator<Item = anyhow::Result<RecordBatch>> + Send>,
    batch: RecordBatch,
    row: usize,
}

impl Source {
    fn id(&self) -> i64 {
        self.batch.column(col::NODE_ID).as_primitive::<Int64Type>().value(self.row)
    }

    /// Move to the next row; false when the source is exhausted.
    fn advance(&mut self) -> anyhow::Result<bool> {
        self.row += 1;
        while self.row >= self.batch.num_rows() {
            match self.it.next() {
                Some(b) => {
                    self.batch = b?;
                    self.row = 0;
                }
                None => return Ok(false),
            }
        }
        Ok(true)
    }
}

/// K-way merge of sorted sources into batches of [`OUT_BATCH_ROWS`] rows, strictly ascending.
pub fn merge_sources(
    inputs: Vec<Box<dyn Iterator<Item = anyhow::Result<RecordBatch>> + Send>>,
    stats: &mut MergeStats,
    mut out: impl FnMut(RecordBatch) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut sources = Vec::new();
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
        let s = Source { it, batch, row: 0 };
        heap.push(Reverse((s.id(), sources.len())));
        sources.push(s);
    }
    let mut builder = NodeBatchBuilder::new(OUT_BATCH_ROWS);
    let mut last: Option<i64> = None;
    while let Some(Reverse((id, i))) = heap.pop() {
        let s = &mut sources[i];
        if last == Some(id) {
            stats.duplicates += 1;
        } else {
            last = Some(id);
            stats.rows += 1;
            if let Some(full) = builder.push_from(&NodeColumns::new(&s.batch), s.row) {
                out(full)?;
            }
        }
        if s.advance()? {
            heap.push(Reverse((s.id(), i)));
        }
    }
    if let Some(rest) = builder.finish() {
        out(rest)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::node::{Node, NodeKind, batch_to_nodes, nodes_to_batch};

    fn n(id: i64) -> Node {
        Node {
            node_id: id,
            parent_id: 0,
            name: format!("n{id}"),
            kind: NodeKind::File,
            size: id,
            mtime: 1,
            ctime: 2,
            attributes: 0x20,
            xorhash: 0,
        }
    }

    async fn sorted_ids(spill_rows: usize, ids: &[i64]) -> (Vec<i64>, MergeStats, usize) {
        let mut s = RunSorter::new(SpillOptions { spill_rows, ..Default::default() });
        for chunk in ids.chunks(3) {
            s.push(nodes_to_batch(&chunk.iter().map(|&i| n(i)).collect::<Vec<_>>())).await.unwrap();
        }
        let runs = s.finish().await.unwrap();
        let disk = runs.disk_runs();
        let mut out = Vec::new();
        let mut m = runs.merge();
        while let Some(b) = m.next().await {
            out.extend(batch_to_nodes(&b).into_iter().map(|x| x.node_id));
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
}
