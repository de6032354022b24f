//! A per-snapshot directory summary, persisted when the snapshot is committed, so a reader can walk a
//! 10M-node snapshot without reading all of it.
//!
//! It holds the snapshot's [`DirMap`] (directories only: id, parent, name, subtree totals, children), each
//! directory's mtime, and, per directory, the node-id *runs* its files fall in: ids are assigned in scan
//! order, so a directory's files are a few runs of nearby ids. Listing a directory takes its
//! subdirectories from the summary alone and reads, from each layer of the snapshot, only the Parquet pages
//! whose `node_id` range overlaps the runs of its files (the files carry a page index), merging the layers
//! for just those ids. A directory holding only directories (a share's root, often) is listed without
//! reading any Parquet.
//!
//! Object: `{tenant}/{share}/index/summaries/{data dir name}.dirs`, named after the snapshot's own data
//! directory (so a writer that loses the commit race never overwrites the winner's summary). It sits
//! outside `data/`, so `NodeIndex::gc` leaves it alone; an orphan from a failed commit is a few MB at most.
//! Written before the manifest by [`crate::index::snapshot::SnapshotWriter::commit`]; snapshots committed
//! before summaries existed get one built (one full read) and stored on first use, see [`load_or_build`].
//!
//! Format (little endian): magic `AFBDIRS2`; counts `n_dirs, names_len, n_child, n_runs` (u64); `ids`
//! (i64 × n), `parent` (u32 × n), `name_end` (u32 × n), `names` (UTF-8), `bytes`, `files`, `dirs` (u64 × n),
//! `mtime` (i64 × n, ns since the epoch; 0 for the root), `child_start` (u32 × n+1), `child` (u32 ×
//! n_child), `run_start` (u32 × n+1), `run_lo`, `run_hi` (i64 × n_runs, inclusive; runs of file ids
//! only); then the BLAKE3 hash (32 bytes) of everything before it. A summary in an older format
//! (`AFBDIRS1`) fails to decode and is rebuilt by [`load_or_build`].

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{Int8Type, Int64Type};
use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::ParquetRecordBatchStreamBuilder;
use parquet::file::metadata::PageIndexPolicy;

use super::NodeIndex;
use super::dirmap::{DirMap, SubtreeTotals};
use super::manifest::{FileRef, IndexManifest, share_prefix};
use super::node::{NodeId, NodeKind, ROOT_ID, col, time_values};
use super::parquet_io::{in_runs, select_runs};

const MAGIC: &[u8; 8] = b"AFBDIRS2";
/// Bytes of a stored summary fetched per request when it is read.
const READ_PIECE_BYTES: u64 = 8 << 20;
/// Two files of a directory whose ids differ by at most this much share a run.
const RUN_GAP: i64 = 4096;

/// A snapshot's directories and where each directory's entries are.
#[derive(Debug, Default)]
pub struct Summary {
    pub dirs: DirMap,
    /// Last-write time of directory index `i`, ns since the Unix epoch (0 for the root).
    dir_mtime: Vec<i64>,
    /// Runs of the files of directory index `i` are `run_lo/hi[run_start[i]..run_start[i+1]]`.
    run_start: Vec<u32>,
    run_lo: Vec<i64>,
    run_hi: Vec<i64>,
}

/// One entry of a directory listing as read from the snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct DirEntryRow {
    pub node_id: NodeId,
    pub name: String,
    pub kind: NodeKind,
    /// Bytes (files; 0 for directories).
    pub size: i64,
    /// Last-write time, ns since the Unix epoch.
    pub mtime: i64,
}

/// Where a summary came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Read from the object written at commit (or stored by an earlier fallback).
    Stored,
    /// Built by reading the whole snapshot (no summary was stored).
    Built,
}

/// The object key of a snapshot's summary. The last layer of a committed manifest is its own.
pub fn summary_key(m: &IndexManifest) -> Option<String> {
    let own = m.layers.last()?;
    let dir = own.nodes.key.rsplit_once('/')?.0;
    let name = dir.rsplit_once('/').map_or(dir, |x| x.1);
    Some(format!("{}/summaries/{name}.dirs", share_prefix(&m.tenant_id, &m.share_id)))
}

/// Build the summary of `m` (whose data files are written; the manifest need not be) and store it.
/// Called by the snapshot writer just before it writes the manifest.
pub async fn write_for_commit(repo: &NodeIndex, m: &IndexManifest) -> anyhow::Result<()> {
    let s = build(repo, m).await?;
    store(repo, m, &s).await
}

async fn store(repo: &NodeIndex, m: &IndexManifest, s: &Summary) -> anyhow::Result<()> {
    let key = summary_key(m).context("manifest has no layers")?;
    repo.store()
        .put(&Path::from(key.as_str()), PutPayload::from(s.encode()))
        .await
        .with_context(|| format!("writing {key}"))?;
    Ok(())
}

/// The stored summary of `m`, if there is one. A corrupt one is an error naming its key.
pub async fn load(repo: &NodeIndex, m: &IndexManifest) -> anyhow::Result<Option<Summary>> {
    load_keeping(repo, m, Keep::All).await
}

/// The directory map of `m` from its stored summary, read as it streams in (memory: the map, never the
/// object next to it); without a usable stored summary, built by one full read of the snapshot
/// ([`DirMap::load`]; a corrupt summary is logged). Seconds at 100M nodes where the build takes minutes.
pub async fn load_dirmap(repo: &NodeIndex, m: &IndexManifest) -> anyhow::Result<DirMap> {
    match load_keeping(repo, m, Keep::DirMap).await {
        Ok(Some(s)) => return Ok(s.dirs),
        Ok(None) => {}
        Err(e) => tracing::warn!("{e:#}; building the directory map from the snapshot"),
    }
    DirMap::load(repo, m).await
}

async fn load_keeping(repo: &NodeIndex, m: &IndexManifest, keep: Keep) -> anyhow::Result<Option<Summary>> {
    let Some(key) = summary_key(m) else { return Ok(None) };
    let path = Path::from(key.as_str());
    let meta = match repo.store().head(&path).await {
        Ok(r) => r,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {key}")),
    };
    let size = usize::try_from(meta.size).with_context(|| format!("{key}: too large"))?;
    // Ranges of READ_PIECE_BYTES, the next one fetched while one is decoded: a local store's own stream
    // reads 8 KiB per blocking-pool round trip, which made thread wake-ups most of the time.
    let store = repo.store().clone();
    let pieces = futures::stream::iter((0..meta.size).step_by(READ_PIECE_BYTES as usize))
        .map(move |at| {
            let (store, path) = (store.clone(), path.clone());
            async move { store.get_range(&path, at..(at + READ_PIECE_BYTES).min(meta.size)).await }
        })
        .buffered(2)
        .map(|p| p.map_err(anyhow::Error::from))
        .boxed();
    let decoded = match Reader::new(pieces, size) {
        Ok(r) => decode_stream(r, keep).await,
        Err(e) => Err(e),
    };
    decoded.with_context(|| format!("{key}: not a valid directory summary")).map(Some)
}

/// The stored summary, or (for snapshots committed without one, or with a corrupt one) one built by a
/// full read and stored for next time (a failure to store is only logged).
pub async fn load_or_build(repo: &NodeIndex, m: &IndexManifest) -> anyhow::Result<(Summary, Origin)> {
    match load(repo, m).await {
        Ok(Some(s)) => return Ok((s, Origin::Stored)),
        Ok(None) => {}
        Err(e) => tracing::warn!("{e:#}; rebuilding it"),
    }
    let s = build(repo, m).await?;
    if let Err(e) = store(repo, m, &s).await {
        tracing::warn!(
            "could not store the directory summary of {}/{} snapshot {}: {e:#}",
            m.tenant_id,
            m.share_id,
            m.snapshot_id
        );
    }
    Ok((s, Origin::Built))
}

/// Build by one streaming read of the snapshot.
pub async fn build(repo: &NodeIndex, m: &IndexManifest) -> anyhow::Result<Summary> {
    let runs: Arc<Mutex<RunBuilder>> = Arc::default();
    let r2 = runs.clone();
    let s = repo
        .read(m, Some(&[col::PARENT_ID, col::NAME, col::KIND, col::SIZE, col::MTIME]))?
        .map(move |b| {
            if let Ok(b) = &b {
                r2.lock().expect("runs lock").observe(b);
            }
            b
        })
        .boxed();
    let dirs = DirMap::build(s).await.with_context(|| {
        format!("building the directory summary of {}/{} snapshot {}", m.tenant_id, m.share_id, m.snapshot_id)
    })?;
    let mut rb = std::mem::take(&mut *runs.lock().expect("runs lock"));
    let n = dirs.ids.len();
    let mut run_start = Vec::with_capacity(n + 1);
    let (mut run_lo, mut run_hi) = (Vec::new(), Vec::new());
    run_start.push(0u32);
    for id in &dirs.ids {
        if let Some(rs) = rb.runs.remove(&id.0) {
            for (lo, hi) in rs {
                run_lo.push(lo);
                run_hi.push(hi);
            }
        }
        run_start.push(u32::try_from(run_lo.len()).context("more than 4G runs")?);
    }
    let dir_mtime = std::mem::take(&mut rb.dir_mtime);
    anyhow::ensure!(dir_mtime.len() == n, "directory summary: {} directory times for {n} directories", dir_mtime.len());
    Ok(Summary { dirs, dir_mtime, run_start, run_lo, run_hi })
}

/// File-id runs per parent id (INT64 node ids), and directory mtimes in id order, fed batches in `node_id` order.
struct RunBuilder {
    runs: HashMap<i64, Vec<(i64, i64)>>,
    /// The root's (0), then every directory's in ascending id order: aligned with [`DirMap`]'s ids.
    dir_mtime: Vec<i64>,
}

impl Default for RunBuilder {
    fn default() -> Self {
        RunBuilder { runs: HashMap::new(), dir_mtime: vec![0] }
    }
}

impl RunBuilder {
    fn observe(&mut self, b: &RecordBatch) {
        let schema = b.schema();
        let (Ok(ic), Ok(pc), Ok(kc), Ok(mc)) = (
            schema.index_of("node_id"),
            schema.index_of("parent_id"),
            schema.index_of("kind"),
            schema.index_of("mtime"),
        ) else {
            return;
        };
        let ids = b.column(ic).as_primitive::<Int64Type>();
        let parents = b.column(pc).as_primitive::<Int64Type>();
        let kinds = b.column(kc).as_primitive::<Int8Type>();
        let Some(mtimes) = time_values(b.column(mc)) else { return };
        let mut i = 0;
        let n = b.num_rows();
        while i < n {
            // Rows of one parent come in stretches; handle a stretch with one map lookup.
            let p = parents.value(i);
            let v = self.runs.entry(p).or_default();
            while i < n && parents.value(i) == p {
                let x = ids.value(i);
                if kinds.value(i) == NodeKind::Dir as i8 {
                    self.dir_mtime.push(mtimes[i]);
                } else {
                    match v.last_mut() {
                        Some((_, hi)) if x - *hi <= RUN_GAP => *hi = x,
                        _ => v.push((x, x)),
                    }
                }
                i += 1;
            }
        }
    }
}

fn put_u32s(out: &mut Vec<u8>, v: &[u32]) {
    for x in v {
        out.extend_from_slice(&x.to_le_bytes());
    }
}

fn put_u64s(out: &mut Vec<u8>, v: impl Iterator<Item = u64>) {
    for x in v {
        out.extend_from_slice(&x.to_le_bytes());
    }
}

/// Reads a stored summary piece by piece as it arrives (so decoding never holds the object whole next
/// to what it decodes), hashing every byte it takes. `left` counts the bytes before the trailing hash
/// not yet taken; counts are checked against it before anything is allocated.
struct Reader {
    pieces: futures::stream::BoxStream<'static, anyhow::Result<Bytes>>,
    buf: Bytes,
    left: usize,
    hasher: blake3::Hasher,
}

impl Reader {
    /// `size` is the object's length in bytes, trailing hash included.
    fn new(pieces: futures::stream::BoxStream<'static, anyhow::Result<Bytes>>, size: usize) -> anyhow::Result<Self> {
        let left = size.checked_sub(32).filter(|&l| l >= MAGIC.len()).context("truncated")?;
        Ok(Reader { pieces, buf: Bytes::new(), left, hasher: blake3::Hasher::new() })
    }

    /// Makes `buf` hold at least `n` bytes (n is small: one value).
    async fn want(&mut self, n: usize) -> anyhow::Result<()> {
        while self.buf.len() < n {
            let piece = self.pieces.next().await.transpose()?.context("truncated")?;
            self.buf = if self.buf.is_empty() { piece } else { [&self.buf[..], &piece[..]].concat().into() };
        }
        Ok(())
    }

    /// Takes the next `n` bytes of the body (hashed).
    async fn take(&mut self, n: usize) -> anyhow::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.take_units(n, 1, |b| out.extend_from_slice(b)).await?;
        Ok(out)
    }

    /// Hands the next `n` bytes of the body to `sink` in pieces whose lengths are multiples of `unit`.
    async fn take_units(&mut self, n: usize, unit: usize, mut sink: impl FnMut(&[u8])) -> anyhow::Result<()> {
        let total = n.checked_mul(unit).filter(|&t| t <= self.left).context("a count is larger than the file")?;
        self.left -= total;
        let mut rest = total;
        while rest > 0 {
            self.want(unit).await?;
            let k = (self.buf.len() / unit * unit).min(rest);
            let b = self.buf.split_to(k);
            self.hasher.update(&b);
            sink(&b);
            rest -= k;
        }
        Ok(())
    }

    async fn count(&mut self) -> anyhow::Result<usize> {
        let v = u64::from_le_bytes(self.take(8).await?.try_into().expect("8 bytes"));
        usize::try_from(v)
            .ok()
            .filter(|&c| c <= self.left)
            .ok_or_else(|| anyhow::anyhow!("count {v} is larger than the file"))
    }

    /// The next `n` little-endian values of `W` bytes each, decoded by `from_le`.
    async fn values<const W: usize, T>(&mut self, n: usize, from_le: fn([u8; W]) -> T) -> anyhow::Result<Vec<T>> {
        let mut v = Vec::with_capacity(n);
        self.take_units(n, W, |b| v.extend(b.chunks_exact(W).map(|c| from_le(c.try_into().expect("W bytes"))))).await?;
        Ok(v)
    }

    async fn u32s(&mut self, n: usize) -> anyhow::Result<Vec<u32>> {
        self.values(n, u32::from_le_bytes).await
    }

    async fn u64s(&mut self, n: usize) -> anyhow::Result<Vec<u64>> {
        self.values(n, u64::from_le_bytes).await
    }

    async fn i64s(&mut self, n: usize) -> anyhow::Result<Vec<i64>> {
        self.values(n, i64::from_le_bytes).await
    }

    /// Hashes and drops `n` values of `unit` bytes.
    async fn skip(&mut self, n: usize, unit: usize) -> anyhow::Result<()> {
        self.take_units(n, unit, |_| {}).await
    }

    /// After the body: the trailing hash must match and nothing may follow it.
    async fn finish(mut self) -> anyhow::Result<()> {
        if self.left != 0 {
            bail!("{} trailing bytes", self.left);
        }
        self.want(32).await?;
        let stored = self.buf.split_to(32);
        if self.hasher.finalize().as_bytes() != &stored[..] {
            bail!("checksum mismatch");
        }
        while let Some(p) = self.pieces.next().await.transpose()? {
            if !p.is_empty() || !self.buf.is_empty() {
                bail!("bytes after the checksum");
            }
        }
        if !self.buf.is_empty() {
            bail!("bytes after the checksum");
        }
        Ok(())
    }
}

/// What [`decode_stream`] keeps: the whole summary, or the directory map alone (the directory times and
/// file runs are still read and hashed, then dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    All,
    DirMap,
}

/// Parses and checks (hash, counts, internal references) what [`Summary::encode`] wrote, as it arrives.
async fn decode_stream(mut r: Reader, keep: Keep) -> anyhow::Result<Summary> {
    if r.take(8).await? != MAGIC {
        bail!("bad magic (expected {:?})", std::str::from_utf8(MAGIC).unwrap_or(""));
    }
    let (n, names_len, n_child, n_runs) = (r.count().await?, r.count().await?, r.count().await?, r.count().await?);
    let ids = r.i64s(n).await?;
    let parent = r.u32s(n).await?;
    let name_end = r.u32s(n).await?;
    let names = String::from_utf8(r.take(names_len).await?).context("names are not UTF-8")?;
    let (bytes, files, dirs) = (r.u64s(n).await?, r.u64s(n).await?, r.u64s(n).await?);
    let totals: Vec<SubtreeTotals> =
        (0..n).map(|i| SubtreeTotals { bytes: bytes[i], files: files[i], dirs: dirs[i] }).collect();
    drop((bytes, files, dirs));
    let dir_mtime = if keep == Keep::All { r.i64s(n).await? } else { r.skip(n, 8).await.map(|()| Vec::new())? };
    let child_start = r.u32s(n + 1).await?;
    let child = r.u32s(n_child).await?;
    let (run_start, run_lo, run_hi) = if keep == Keep::All {
        (r.u32s(n + 1).await?, r.i64s(n_runs).await?, r.i64s(n_runs).await?)
    } else {
        r.skip(n + 1, 4).await?;
        r.skip(n_runs, 16).await?;
        (Vec::new(), Vec::new(), Vec::new())
    };
    r.finish().await?;
    // References must stay in range, so lookups never panic.
    let ok = n >= 1
        && ids[0] == ROOT_ID.0
        && ids.windows(2).all(|w| w[0] < w[1])
        && parent.iter().all(|&p| p == u32::MAX || (p as usize) < n)
        && name_end.windows(2).all(|w| w[0] <= w[1])
        && name_end.last().is_some_and(|&e| e as usize == names_len)
        && name_end.iter().all(|&e| names.is_char_boundary(e as usize))
        && child_start.windows(2).all(|w| w[0] <= w[1])
        && child_start.last().is_some_and(|&e| e as usize == n_child)
        && child.iter().all(|&c| (c as usize) < n)
        && (keep == Keep::DirMap
            || (run_start.windows(2).all(|w| w[0] <= w[1]) && run_start.last().is_some_and(|&e| e as usize == n_runs)));
    if !ok {
        bail!("inconsistent contents");
    }
    Ok(Summary {
        dirs: DirMap {
            ids: ids.into_iter().map(NodeId).collect(),
            parent,
            name_end,
            names,
            totals,
            child_start,
            child,
        },
        dir_mtime,
        run_start,
        run_lo,
        run_hi,
    })
}

impl Summary {
    /// The bytes stored (see the module documentation for the layout).
    pub fn encode(&self) -> Vec<u8> {
        let d = &self.dirs;
        let n = d.ids.len();
        let mut out = Vec::with_capacity(64 + n * 60 + d.names.len() + self.run_lo.len() * 16);
        out.extend_from_slice(MAGIC);
        put_u64s(
            &mut out,
            [n as u64, d.names.len() as u64, d.child.len() as u64, self.run_lo.len() as u64].into_iter(),
        );
        put_u64s(&mut out, d.ids.iter().map(|x| x.0 as u64));
        put_u32s(&mut out, &d.parent);
        put_u32s(&mut out, &d.name_end);
        out.extend_from_slice(d.names.as_bytes());
        put_u64s(&mut out, d.totals.iter().map(|t| t.bytes));
        put_u64s(&mut out, d.totals.iter().map(|t| t.files));
        put_u64s(&mut out, d.totals.iter().map(|t| t.dirs));
        put_u64s(&mut out, self.dir_mtime.iter().map(|&x| x as u64));
        put_u32s(&mut out, &d.child_start);
        put_u32s(&mut out, &d.child);
        put_u32s(&mut out, &self.run_start);
        put_u64s(&mut out, self.run_lo.iter().map(|&x| x as u64));
        put_u64s(&mut out, self.run_hi.iter().map(|&x| x as u64));
        let h = blake3::hash(&out);
        out.extend_from_slice(h.as_bytes());
        out
    }

    /// Parse and check (hash, counts, internal references) what [`encode`](Self::encode) wrote.
    pub fn decode(b: &[u8]) -> anyhow::Result<Summary> {
        let size = b.len();
        let one = futures::stream::once(std::future::ready(Ok(Bytes::copy_from_slice(b)))).boxed();
        // A stream of one ready piece: the future completes on its first poll.
        decode_stream(Reader::new(one, size)?, Keep::All).now_or_never().expect("no I/O to wait for")
    }

    /// Node-id runs (inclusive) that hold every file of directory `dir`; empty for an unknown directory.
    pub fn runs(&self, dir: NodeId) -> Vec<(i64, i64)> {
        let Ok(i) = self.dirs.ids.binary_search(&dir) else { return Vec::new() };
        let (a, b) = (self.run_start[i] as usize, self.run_start[i + 1] as usize);
        (a..b).map(|k| (self.run_lo[k], self.run_hi[k])).collect()
    }

    /// Node-id runs (inclusive, ascending, disjoint) holding every entry of directory `dir`: the runs of
    /// its files and the ids of its subdirectories. Empty for an unknown or empty directory.
    pub fn entry_runs(&self, dir: NodeId) -> Vec<(i64, i64)> {
        let mut runs = self.runs(dir);
        runs.extend(self.dirs.subdirs(dir).map(|(_, id, _)| (id.0, id.0)));
        runs.sort_unstable();
        let mut out: Vec<(i64, i64)> = Vec::with_capacity(runs.len());
        for (lo, hi) in runs {
            match out.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => out.push((lo, hi)),
            }
        }
        out
    }

    /// The subdirectories of directory `dir` (unsorted), from the summary alone.
    pub fn list_subdirs(&self, dir: NodeId) -> Vec<DirEntryRow> {
        self.dirs
            .subdirs(dir)
            .map(|(i, id, name)| DirEntryRow {
                node_id: id,
                name: name.to_string(),
                kind: NodeKind::Dir,
                size: 0,
                mtime: self.dir_mtime[i],
            })
            .collect()
    }

    /// Approximate memory held, in bytes.
    pub fn memory_bytes(&self) -> usize {
        self.dirs.memory_bytes()
            + self.dir_mtime.capacity() * 8
            + self.run_start.capacity() * 4
            + (self.run_lo.capacity() + self.run_hi.capacity()) * 8
    }

    /// The entries of directory `dir` of snapshot `m` (unsorted). Subdirectories come from the summary;
    /// files from reading, per layer, only the pages whose `node_id` range overlaps the directory's file
    /// runs, newest layer first: the newest row of an id wins, and an id a newer delta deleted is gone.
    pub async fn list(&self, repo: &NodeIndex, m: &IndexManifest, dir: NodeId) -> anyhow::Result<Vec<DirEntryRow>> {
        let mut out = self.list_subdirs(dir);
        let runs = self.runs(dir);
        if runs.is_empty() {
            return Ok(out);
        }
        let mut decided: HashSet<i64> = HashSet::new();
        for layer in m.layers.iter().rev() {
            let cols = [col::NODE_ID, col::PARENT_ID, col::NAME, col::KIND, col::SIZE, col::MTIME];
            for b in read_runs(repo.store(), &layer.nodes, &runs, &cols).await? {
                let ids = b.column(0).as_primitive::<Int64Type>();
                let parents = b.column(1).as_primitive::<Int64Type>();
                let names = b.column(2).as_string::<i32>();
                let kinds = b.column(3).as_primitive::<Int8Type>();
                let sizes = b.column(4).as_primitive::<Int64Type>();
                let mtimes =
                    time_values(b.column(5)).with_context(|| format!("{}: mtime is not a time", layer.nodes.key))?;
                for (i, &mtime) in mtimes.iter().enumerate() {
                    let id = ids.value(i);
                    // Directories were listed from the summary; a row decides its id even then.
                    if !in_runs(&runs, id)
                        || !decided.insert(id)
                        || parents.value(i) != dir.0
                        || kinds.value(i) == NodeKind::Dir as i8
                    {
                        continue;
                    }
                    out.push(DirEntryRow {
                        node_id: NodeId(id),
                        name: names.value(i).to_string(),
                        kind: NodeKind::from_i8(kinds.value(i))?,
                        size: sizes.value(i),
                        mtime,
                    });
                }
            }
            if let Some(del) = &layer.deleted {
                for b in read_runs(repo.store(), del, &runs, &[0]).await? {
                    let ids = b.column(0).as_primitive::<Int64Type>();
                    decided.extend(ids.values().iter().copied().filter(|&id| in_runs(&runs, id)));
                }
            }
        }
        Ok(out)
    }
}

/// Rows of one file (sorted by `node_id`, first column) in pages that may hold ids of `runs`, with
/// `columns` (indices in file order). Uses the page index when the file has one, else row-group stats.
async fn read_runs(
    store: &Arc<dyn ObjectStore>,
    f: &FileRef,
    runs: &[(i64, i64)],
    columns: &[usize],
) -> anyhow::Result<Vec<RecordBatch>> {
    let path = Path::from(f.key.as_str());
    let reader = super::parquet_io::StoreReader::new(store.clone(), path, f.bytes, PageIndexPolicy::Optional);
    let opts = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional);
    let builder = ParquetRecordBatchStreamBuilder::new_with_options(reader, opts)
        .await
        .with_context(|| format!("{}: not a readable Parquet file", f.key))?;
    let (groups, selection) = select_runs(builder.metadata(), runs);
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let mask = ProjectionMask::roots(builder.parquet_schema(), columns.iter().copied());
    let mut s = builder
        .with_row_groups(groups)
        .with_row_selection(selection)
        .with_projection(mask)
        .with_batch_size(8192)
        .build()
        .with_context(|| format!("{}: cannot read", f.key))?;
    let mut out = Vec::new();
    while let Some(b) = s.next().await {
        out.push(b.with_context(|| format!("{}: corrupt Parquet data", f.key))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::synthetic::SyntheticShare;

    /// A stored summary arrives in pieces of any length (ranges of a store, chunks of a stream): decoded
    /// from 5-byte and from 8 KiB pieces it equals what was encoded.
    #[test]
    fn a_summary_decodes_alike_from_pieces_of_any_length() {
        let batches: Vec<anyhow::Result<RecordBatch>> = SyntheticShare::new(3, 4000).batches(700).map(Ok).collect();
        let dirs = DirMap::build(futures::stream::iter(batches).boxed()).now_or_never().expect("ready").unwrap();
        let n = dirs.ids.len();
        assert!(n > 50, "{n} directories");
        let summary = Summary {
            dirs,
            dir_mtime: (0..n as i64).collect(),
            run_start: (0..=n as u32).collect(),
            run_lo: (0..n as i64).map(|i| i * 10).collect(),
            run_hi: (0..n as i64).map(|i| i * 10 + 3).collect(),
        };
        let bytes = Bytes::from(summary.encode());
        for piece in [5, 8192] {
            let pieces: Vec<anyhow::Result<Bytes>> =
                (0..bytes.len()).step_by(piece).map(|at| Ok(bytes.slice(at..(at + piece).min(bytes.len())))).collect();
            let r = Reader::new(futures::stream::iter(pieces).boxed(), bytes.len()).unwrap();
            let back = decode_stream(r, Keep::All).now_or_never().expect("ready").unwrap();
            assert_eq!(back.encode(), bytes, "pieces of {piece} bytes");
        }
    }
}
