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
//! directory (so a writer that loses the commit race never overwrites the winner's summary). `NodeIndex::gc`
//! deletes one no manifest names once it is older than the grace period, as it does data files: an orphan
//! from a failed commit takes about 7 bytes per file of the share. Built in bounded memory by [`super::summary_build`] and
//! written before the manifest by [`crate::index::snapshot::SnapshotWriter::commit`]; snapshots committed
//! before summaries existed get one built (one full read) and stored on first use, see [`load_or_build`].
//!
//! Format (little endian): magic `AFBDIRS2`; counts `n_dirs, names_len, n_child, n_runs` (u64); `ids`
//! (i64 × n), `parent` (u32 × n), `name_end` (u32 × n), `names` (UTF-8), `bytes`, `files`, `dirs` (u64 × n),
//! `mtime` (i64 × n, ns since the epoch; 0 for the root), `child_start` (u32 × n+1), `child` (u32 ×
//! n_child), `run_start` (u32 × n+1), `run_lo`, `run_hi` (i64 × n_runs, inclusive; runs of file ids
//! only); then the BLAKE3 hash (32 bytes) of everything before it. No value is aligned: readers take
//! each one from its little-endian bytes.
//!
//! Reading ([`load`]): the object is memory-mapped and read in place, never decoded into memory: from a
//! local repository the file itself, from Blob a copy downloaded to an unnamed temporary file (in
//! `TMPDIR`). Opening checks the hash (one sequential read, not through the mapping), the magic and that
//! the counts add up to the object's length; references inside (parents, children, name ends, runs) are
//! checked where they are followed ([`DirMap`]). Resident memory is then the pages lookups touch: a path
//! reads a few pages per ancestor, not the map. A summary in an older format (`AFBDIRS1`) is refused and
//! rebuilt by [`load_or_build`].

use std::collections::HashSet;
use std::sync::Arc;

use anyhow::{Context, bail};
use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{Int8Type, Int64Type};
use bytes::Bytes;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::ParquetRecordBatchStreamBuilder;
use parquet::file::metadata::PageIndexPolicy;

use super::NodeIndex;
use super::dirmap::DirMap;
use super::le_array::LeArray;
use super::manifest::{FileRef, IndexManifest, share_prefix};
use super::node::{NodeId, NodeKind, ROOT_ID, col, time_values};
use super::parquet_io::{in_runs, select_runs};
use super::summary_build::{self, BuiltSummary, MAGIC};

/// Bytes of a stored summary fetched per request when it is read.
const READ_PIECE_BYTES: u64 = 8 << 20;

/// A snapshot's directories and where each directory's entries are.
#[derive(Debug, Default)]
pub struct Summary {
    pub dirs: DirMap,
    /// Last-write time of directory index `i`, ns since the Unix epoch (0 for the root).
    dir_mtime: LeArray<i64>,
    /// Runs of the files of directory index `i` are `run_lo/hi[run_start[i]..run_start[i+1]]`.
    run_start: LeArray<u32>,
    run_lo: LeArray<i64>,
    run_hi: LeArray<i64>,
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
    let built = build(repo, m).await?;
    store(repo, m, &built).await
}

/// Upload a built summary under its key (in parts when it is large).
async fn store(repo: &NodeIndex, m: &IndexManifest, built: &BuiltSummary) -> anyhow::Result<()> {
    use tokio::io::{AsyncSeekExt, AsyncWriteExt};
    let key = summary_key(m).context("manifest has no layers")?;
    let upload = async {
        let mut file = tokio::fs::File::from_std(built.file.try_clone()?);
        file.seek(std::io::SeekFrom::Start(0)).await?;
        let mut w = object_store::buffered::BufWriter::new(repo.store().clone(), Path::from(key.as_str()));
        tokio::io::copy(&mut file, &mut w).await?;
        w.shutdown().await?;
        anyhow::Ok(())
    };
    upload.await.with_context(|| format!("writing {key}"))
}

/// The stored summary of `m`, if there is one, mapped in place (see the module documentation). A
/// corrupt one is an error naming its key.
pub async fn load(repo: &NodeIndex, m: &IndexManifest) -> anyhow::Result<Option<Summary>> {
    let Some(key) = summary_key(m) else { return Ok(None) };
    let fetched = match repo.local_file(&key) {
        Some(file) => tokio::task::spawn_blocking(move || map_local(&file)).await?,
        None => download(repo.store(), &key, READ_PIECE_BYTES).await,
    };
    let Some(f) = fetched.with_context(|| format!("reading {key}"))? else { return Ok(None) };
    f.open().with_context(|| format!("{key}: not a valid directory summary")).map(Some)
}

/// The directory map of `m` from its stored summary (mapped, see [`load`]); without a usable stored
/// summary, one is built and stored first ([`load_or_build`]). Milliseconds at 100M nodes where the
/// build takes minutes.
pub async fn load_dirmap(repo: &NodeIndex, m: &IndexManifest) -> anyhow::Result<DirMap> {
    Ok(load_or_build(repo, m).await?.0.dirs)
}

/// A stored summary's bytes (mapped) and the BLAKE3 hash of all but its last 32 bytes, computed as they
/// were read.
struct Fetched {
    bytes: Bytes,
    body_hash: blake3::Hash,
}

impl Fetched {
    fn open(self) -> anyhow::Result<Summary> {
        let body_len = self.bytes.len().checked_sub(32).context("truncated")?;
        if self.body_hash.as_bytes() != &self.bytes[body_len..] {
            bail!("checksum mismatch");
        }
        Summary::from_body(self.bytes.slice(..body_len))
    }
}

/// Map a summary in a local repository: hash it by reading the file (so the hash does not make every
/// page of the mapping resident), then map it. `None` if there is no such file.
fn map_local(file: &std::path::Path) -> anyhow::Result<Option<Fetched>> {
    let f = match std::fs::File::open(file) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let size = f.metadata()?.len();
    let body_hash = hash_prefix(&f, size.saturating_sub(32), PARALLEL_HASH_BYTES)?;
    Ok(Some(Fetched { bytes: map_file(&f, size)?, body_hash }))
}

/// Files at least this large are hashed on two threads.
const PARALLEL_HASH_BYTES: u64 = 4 << 20;

/// The BLAKE3 hash of the first `len` bytes of `f`, read with positioned reads (not through a mapping,
/// so nothing becomes resident). From `parallel_from` bytes on, two threads each hash one of the two
/// subtrees under BLAKE3's root, merged into the same hash as one sequential pass (about half the
/// time: 0.14 s of `afb sql "SELECT path(1)"` at 100M nodes was the hash of a 718 MB summary).
fn hash_prefix(f: &std::fs::File, len: u64, parallel_from: u64) -> anyhow::Result<blake3::Hash> {
    use blake3::hazmat::{HasherExt, Mode, left_subtree_len, merge_subtrees_root};
    use std::os::unix::fs::FileExt;
    let hash_range = |h: &mut blake3::Hasher, from: u64, n: u64| -> std::io::Result<()> {
        let mut buf = vec![0u8; 1 << 20];
        let mut at = from;
        while at < from + n {
            let want = ((from + n - at) as usize).min(buf.len());
            f.read_exact_at(&mut buf[..want], at)?;
            h.update(&buf[..want]);
            at += want as u64;
        }
        Ok(())
    };
    if len < parallel_from.max(2 * blake3::CHUNK_LEN as u64) {
        let mut h = blake3::Hasher::new();
        hash_range(&mut h, 0, len)?;
        return Ok(h.finalize());
    }
    let left = left_subtree_len(len);
    let subtree = |from: u64, n: u64| -> std::io::Result<blake3::hazmat::ChainingValue> {
        let mut h = blake3::Hasher::new();
        h.set_input_offset(from);
        hash_range(&mut h, from, n)?;
        Ok(h.finalize_non_root())
    };
    std::thread::scope(|s| {
        let right = s.spawn(|| subtree(left, len - left));
        let left_cv = subtree(0, left)?;
        let right_cv = right.join().map_err(|_| anyhow::anyhow!("hashing thread panicked"))??;
        Ok(merge_subtrees_root(&left_cv, &right_cv, Mode::Hash))
    })
}

/// Download a summary from the store to an unnamed temporary file, hashing it on the way, and map that.
/// Ranges of `piece` bytes, the next one fetched while one is written. `None` if there is no object.
async fn download(store: &Arc<dyn ObjectStore>, key: &str, piece: u64) -> anyhow::Result<Option<Fetched>> {
    use tokio::io::AsyncWriteExt;
    let path = Path::from(key);
    let size = match store.head(&path).await {
        Ok(meta) => meta.size,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let body_len = size.saturating_sub(32);
    let mut file = tokio::fs::File::from_std(tempfile::tempfile().context("creating a temporary file")?);
    let mut hasher = blake3::Hasher::new();
    let mut pieces = futures::stream::iter((0..size).step_by(piece.max(1) as usize))
        .map(|at| {
            let (store, path) = (store.clone(), path.clone());
            async move { store.get_range(&path, at..(at + piece.max(1)).min(size)).await }
        })
        .buffered(2);
    let mut at = 0u64;
    while let Some(piece) = pieces.next().await.transpose()? {
        let body_part = (body_len.saturating_sub(at)).min(piece.len() as u64) as usize;
        hasher.update(&piece[..body_part]);
        file.write_all(&piece).await.context("writing a temporary file")?;
        at += piece.len() as u64;
    }
    file.flush().await.context("writing a temporary file")?;
    let f = file.into_std().await;
    Ok(Some(Fetched { bytes: map_file(&f, at)?, body_hash: hasher.finalize() }))
}

/// `size` bytes of `f`, memory-mapped read-only.
fn map_file(f: &std::fs::File, size: u64) -> anyhow::Result<Bytes> {
    if size == 0 {
        return Ok(Bytes::new());
    }
    // SAFETY: the mapping is read-only and the file is never written again: a stored summary is written
    // once under a name of its own (an object store's put writes a new file and renames it over), and a
    // downloaded copy is an unnamed temporary file only this process holds. Were a summary truncated
    // under a reader anyway, the reader would fault rather than read freed memory.
    let map = unsafe { memmap2::Mmap::map(f) }.context("mapping the file")?;
    anyhow::ensure!(map.len() as u64 == size, "the file changed while it was read");
    Ok(Bytes::from_owner(map))
}

/// The stored summary, or (for snapshots committed without one, or with a corrupt one) one built by a
/// full read and stored for next time (a failure to store is only logged).
pub async fn load_or_build(repo: &NodeIndex, m: &IndexManifest) -> anyhow::Result<(Summary, Origin)> {
    match load(repo, m).await {
        Ok(Some(s)) => return Ok((s, Origin::Stored)),
        Ok(None) => {}
        Err(e) => tracing::warn!("{e:#}; rebuilding it"),
    }
    let built = build(repo, m).await?;
    if let Err(e) = store(repo, m, &built).await {
        tracing::warn!(
            "could not store the directory summary of {}/{} snapshot {}: {e:#}",
            m.tenant_id,
            m.share_id,
            m.snapshot_id
        );
    }
    let fetched = Fetched { bytes: map_file(&built.file, built.size)?, body_hash: built.body_hash };
    Ok((fetched.open().context("a directory summary just built")?, Origin::Built))
}

/// Build by one streaming read of the snapshot, in bounded memory ([`super::summary_build`]), into an
/// unnamed temporary file.
async fn build(repo: &NodeIndex, m: &IndexManifest) -> anyhow::Result<BuiltSummary> {
    let rows = repo.read(m, Some(&[col::PARENT_ID, col::NAME, col::KIND, col::SIZE, col::MTIME]))?;
    summary_build::build(rows, summary_build::SORT_MEMORY).await.with_context(|| {
        format!("building the directory summary of {}/{} snapshot {}", m.tenant_id, m.share_id, m.snapshot_id)
    })
}

impl Summary {
    /// The bytes stored (see the module documentation for the layout), written from memory: the
    /// reference the bounded-memory writer ([`super::summary_build`]) is checked against in tests.
    #[cfg(test)]
    pub fn encode(&self) -> Vec<u8> {
        let d = &self.dirs;
        let mut out = Vec::with_capacity(72 + self.sections().iter().map(|s| s.len()).sum::<usize>());
        out.extend_from_slice(MAGIC);
        for count in [d.len(), d.names.len(), d.child.len(), self.run_lo.len()] {
            out.extend_from_slice(&(count as u64).to_le_bytes());
        }
        for section in self.sections() {
            out.extend_from_slice(section);
        }
        let h = blake3::hash(&out);
        out.extend_from_slice(h.as_bytes());
        out
    }

    /// The arrays in the order they are stored.
    fn sections(&self) -> [&[u8]; 13] {
        let d = &self.dirs;
        [
            d.ids.as_bytes(),
            d.parent.as_bytes(),
            d.name_end.as_bytes(),
            &d.names,
            d.total_bytes.as_bytes(),
            d.total_files.as_bytes(),
            d.total_dirs.as_bytes(),
            self.dir_mtime.as_bytes(),
            d.child_start.as_bytes(),
            d.child.as_bytes(),
            self.run_start.as_bytes(),
            self.run_lo.as_bytes(),
            self.run_hi.as_bytes(),
        ]
    }

    /// Parse and check (hash, counts against the length) what [`encode`](Self::encode) wrote; the
    /// result reads `b` in place.
    pub fn decode(b: Bytes) -> anyhow::Result<Summary> {
        let body_len = b.len().checked_sub(32).context("truncated")?;
        Fetched { body_hash: blake3::hash(&b[..body_len]), bytes: b }.open()
    }

    /// The summary in `body` (a stored summary without its trailing hash, already checked): the magic,
    /// the counts against the length, and the few checks that take no pass over the arrays.
    fn from_body(body: Bytes) -> anyhow::Result<Summary> {
        if body.get(..MAGIC.len()) != Some(&MAGIC[..]) {
            bail!("bad magic (expected {:?})", std::str::from_utf8(MAGIC).unwrap_or(""));
        }
        let count = |k: usize| -> anyhow::Result<u64> {
            let at = MAGIC.len() + 8 * k;
            Ok(u64::from_le_bytes(body.get(at..at + 8).context("truncated")?.try_into().expect("8 bytes")))
        };
        let (n, names_len, n_child, n_runs) = (count(0)?, count(1)?, count(2)?, count(3)?);
        // (values, bytes each) of the 13 arrays, in stored order.
        let layout = [
            (n, 8),
            (n, 4),
            (n, 4),
            (names_len, 1),
            (n, 8),
            (n, 8),
            (n, 8),
            (n, 8),
            (n.saturating_add(1), 4),
            (n_child, 4),
            (n.saturating_add(1), 4),
            (n_runs, 8),
            (n_runs, 8),
        ];
        let mut at = (MAGIC.len() + 32) as u64;
        let mut sections = Vec::with_capacity(layout.len());
        for (values, width) in layout {
            let len = values.checked_mul(width).context("a count is larger than the file")?;
            let end =
                at.checked_add(len).filter(|&e| e <= body.len() as u64).context("a count is larger than the file")?;
            sections.push(body.slice(at as usize..end as usize));
            at = end;
        }
        if at != body.len() as u64 {
            bail!("{} trailing bytes", body.len() as u64 - at);
        }
        let mut it = sections.into_iter();
        let mut next = || it.next().expect("13 sections");
        let ids = LeArray::from_bytes(next()).expect("length checked");
        let parent = LeArray::from_bytes(next()).expect("length checked");
        let name_end: LeArray<u32> = LeArray::from_bytes(next()).expect("length checked");
        let names = next();
        let total_bytes = LeArray::from_bytes(next()).expect("length checked");
        let total_files = LeArray::from_bytes(next()).expect("length checked");
        let total_dirs = LeArray::from_bytes(next()).expect("length checked");
        let dir_mtime = LeArray::from_bytes(next()).expect("length checked");
        let child_start: LeArray<u32> = LeArray::from_bytes(next()).expect("length checked");
        let child = LeArray::from_bytes(next()).expect("length checked");
        let run_start: LeArray<u32> = LeArray::from_bytes(next()).expect("length checked");
        let run_lo = LeArray::from_bytes(next()).expect("length checked");
        let run_hi = LeArray::from_bytes(next()).expect("length checked");
        let ok = n >= 1
            && ids.get(0) == Some(ROOT_ID.0)
            && name_end.get(n as usize - 1).map(u64::from) == Some(names_len)
            && child_start.get(n as usize).map(u64::from) == Some(n_child)
            && run_start.get(n as usize).map(u64::from) == Some(n_runs);
        if !ok {
            bail!("inconsistent contents");
        }
        let dirs = DirMap { ids, parent, name_end, names, total_bytes, total_files, total_dirs, child_start, child };
        Ok(Summary { dirs, dir_mtime, run_start, run_lo, run_hi })
    }

    /// Node-id runs (inclusive) that hold every file of directory `dir`; empty for an unknown directory.
    pub fn runs(&self, dir: NodeId) -> Vec<(i64, i64)> {
        let Some(i) = self.dirs.index_of(dir) else { return Vec::new() };
        let end = self.run_start.get(i + 1).map_or(0, |e| e as usize);
        let start = self.run_start.get(i).map_or(end, |s| (s as usize).min(end));
        (start..end).map_while(|k| Some((self.run_lo.get(k)?, self.run_hi.get(k)?))).collect()
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
                name: name.into_owned(),
                kind: NodeKind::Dir,
                size: 0,
                mtime: self.dir_mtime.get(i).unwrap_or(0),
            })
            .collect()
    }

    /// Bytes of its arrays (heap when built, mapped when opened from a stored summary).
    pub fn memory_bytes(&self) -> usize {
        self.sections().iter().map(|s| s.len()).sum()
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
    use crate::index::BatchStream;

    /// Hashing a file's prefix on two threads gives BLAKE3's hash of it, at lengths around chunk and
    /// subtree boundaries.
    #[test]
    fn a_prefix_hashed_on_two_threads_is_the_blake3_hash() {
        let mut data = vec![0u8; 3 * 1024 * 1024 + 777];
        let mut x = 0x9e3779b97f4a7c15u64;
        for b in data.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("f");
        std::fs::write(&path, &data).unwrap();
        let f = std::fs::File::open(&path).unwrap();
        for len in [0usize, 1, 1024, 1025, 2048, 2049, 4096 + 1, 65536, 1 << 20, (1 << 20) + 1, 3 << 20, data.len()] {
            let want = blake3::hash(&data[..len]);
            assert_eq!(hash_prefix(&f, len as u64, 0).unwrap(), want, "{len} bytes on two threads");
            assert_eq!(hash_prefix(&f, len as u64, u64::MAX).unwrap(), want, "{len} bytes on one");
        }
    }
    use crate::index::node::{Node, NodeId, batch_to_nodes, node_batches};
    use crate::index::summary_build::RUN_GAP;
    use crate::index::synthetic::SyntheticShare;
    use std::collections::BTreeMap;
    use std::io::{Read, Seek, SeekFrom};

    /// A stored summary reads alike mapped from a local file and downloaded from a store in pieces
    /// smaller than the object: both equal what was encoded; a missing object is `None`.
    #[tokio::test]
    async fn a_summary_reads_alike_mapped_from_a_file_and_downloaded_from_a_store() {
        let batches: Vec<anyhow::Result<RecordBatch>> = SyntheticShare::new(3, 4000).batches(700).map(Ok).collect();
        let dirs = DirMap::build(futures::stream::iter(batches).boxed()).await.unwrap();
        let n = dirs.len();
        assert!(n > 50, "{n} directories");
        let summary = Summary {
            dirs,
            dir_mtime: LeArray::from_values(0..n as i64),
            run_start: LeArray::from_values(0..=n as u32),
            run_lo: LeArray::from_values((0..n as i64).map(|i| i * 10)),
            run_hi: LeArray::from_values((0..n as i64).map(|i| i * 10 + 3)),
        };
        let bytes = summary.encode();
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("s.dirs"), &bytes).unwrap();
        let mapped = map_local(&d.path().join("s.dirs")).unwrap().unwrap().open().unwrap();
        assert_eq!(mapped.encode(), bytes);
        assert!(map_local(&d.path().join("missing.dirs")).unwrap().is_none());
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        store.put(&Path::from("s.dirs"), object_store::PutPayload::from(bytes.clone())).await.unwrap();
        for piece in [777, 1 << 20] {
            let downloaded = download(&store, "s.dirs", piece).await.unwrap().unwrap().open().unwrap();
            assert_eq!(downloaded.encode(), bytes, "pieces of {piece} bytes");
        }
        assert!(download(&store, "missing.dirs", 777).await.unwrap().is_none());
        assert_eq!(Summary::decode(Bytes::from(bytes.clone())).unwrap().encode(), bytes);
    }

    /// A synthetic share, then what later snapshots and damage make of a tree: directories moved under
    /// directories created after them (parent id above the child's), a directory and files whose parent
    /// is no directory, files far from their siblings' ids.
    fn moved_and_orphaned_rows() -> Vec<Node> {
        let mut nodes: Vec<Node> =
            SyntheticShare::new(11, 6000).batches(1000).flat_map(|b| batch_to_nodes(&b)).collect();
        let dirs: Vec<NodeId> = nodes.iter().filter(|n| n.kind == NodeKind::Dir).map(|n| n.node_id).collect();
        let top = nodes.last().unwrap().node_id.0;
        let dir = |id: i64, parent: i64, name: &str| Node {
            node_id: NodeId(id),
            parent_id: NodeId(parent),
            name: name.into(),
            kind: NodeKind::Dir,
            size: 0,
            mtime: id * 1000,
            ctime: 0,
            attributes: 0x10,
            xorhash: 0,
        };
        let file = |id: i64, parent: i64, size: i64| Node {
            kind: NodeKind::File,
            size,
            name: format!("f{id}"),
            ..dir(id, parent, "")
        };
        let newer = [top + 10, top + 20];
        nodes.push(dir(newer[0], ROOT_ID.0, "later-a"));
        nodes.push(dir(newer[1], ROOT_ID.0, "later-b"));
        for (k, d) in dirs.iter().skip(3).step_by(17).take(12).enumerate() {
            let n = nodes.iter_mut().find(|n| n.node_id == *d).unwrap();
            n.parent_id = NodeId(newer[k % 2]);
        }
        nodes.push(dir(top + 30, 999_999_999, "orphan"));
        nodes.push(file(top + 31, top + 30, 7));
        nodes.push(file(top + 32, 999_999_998, 5));
        for (k, d) in dirs.iter().take(5).enumerate() {
            nodes.push(file(top + 100 + k as i64 * (RUN_GAP + 500), d.0, 100 + k as i64));
        }
        nodes.push(file(top + 40_000, dirs[0].0, 3));
        nodes.sort_by_key(|n| n.node_id);
        nodes
    }

    fn stream(nodes: &[Node], batch_rows: usize) -> BatchStream {
        futures::stream::iter(node_batches(nodes.iter().cloned(), batch_rows).map(Ok).collect::<Vec<_>>()).boxed()
    }

    async fn built_bytes(nodes: &[Node], batch_rows: usize, memory: u64) -> Vec<u8> {
        let mut b = summary_build::build(stream(nodes, batch_rows), memory).await.unwrap();
        let mut out = Vec::new();
        b.file.seek(SeekFrom::Start(0)).unwrap();
        b.file.read_to_end(&mut out).unwrap();
        assert_eq!(out.len() as u64, b.size);
        assert_eq!(&out[out.len() - 32..], b.body_hash.as_bytes());
        out
    }

    /// The summary built through sorted sets that spill every few entries equals the one built with room
    /// to spare, byte for byte; its directory map equals the in-memory build's, and every directory's
    /// file runs and mtime are what a direct computation gives.
    #[tokio::test]
    async fn a_summary_built_spilling_to_disk_matches_the_in_memory_directory_map_and_direct_runs() {
        let nodes = moved_and_orphaned_rows();
        let spilled = built_bytes(&nodes, 333, 1 << 10).await;
        assert_eq!(spilled, built_bytes(&nodes, 4096, 1 << 30).await);
        let s = Summary::decode(bytes::Bytes::from(spilled.clone())).unwrap();
        assert!(s.encode() == spilled, "the streamed sections are in the order the reader takes them");
        let want = DirMap::build(stream(&nodes, 500)).await.unwrap();
        assert!(want.len() > 100, "{} directories", want.len());
        assert_eq!(s.dirs, want);
        let later = s.dirs.resolve("/later-a").unwrap();
        assert!(s.dirs.du(later).unwrap().files > 0, "moved directories count in their new parent");

        let is_dir: std::collections::HashSet<NodeId> =
            nodes.iter().filter(|n| n.kind == NodeKind::Dir).map(|n| n.node_id).chain([ROOT_ID]).collect();
        let mut files: BTreeMap<NodeId, Vec<i64>> = BTreeMap::new();
        for n in nodes.iter().filter(|n| n.kind != NodeKind::Dir) {
            files.entry(n.parent_id).or_default().push(n.node_id.0);
        }
        let mut checked_runs = 0;
        for d in &is_dir {
            let mut runs: Vec<(i64, i64)> = Vec::new();
            for &x in files.get(d).map(|v| v.as_slice()).unwrap_or(&[]) {
                match runs.last_mut() {
                    Some((_, hi)) if x - *hi <= RUN_GAP => *hi = x,
                    _ => runs.push((x, x)),
                }
            }
            checked_runs += runs.len();
            assert_eq!(s.runs(*d), runs, "runs of directory {}", d.0);
        }
        assert!(checked_runs > 50, "{checked_runs} runs");
        let mut mtimes = 0;
        for n in nodes.iter().filter(|n| n.kind == NodeKind::Dir && is_dir.contains(&n.parent_id)) {
            let row = s.list_subdirs(n.parent_id).into_iter().find(|r| r.node_id == n.node_id).unwrap();
            assert_eq!(row.mtime, n.mtime, "mtime of directory {}", n.node_id.0);
            mtimes += 1;
        }
        assert!(mtimes > 100);
    }
}
