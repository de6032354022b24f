//! Building a snapshot's directory summary (format: [`super::summary`]) in bounded memory, whatever the
//! snapshot's size.
//!
//! 1. One pass over the snapshot's rows (ascending `node_id`) writes the arrays that follow directory id
//!    order (ids, names, name ends, mtimes) to temporary files, and puts every fact keyed by a parent
//!    directory id into a sorted set: a directory's link to its parent, and each piece of a stretch of
//!    files (its id run, bytes and count).
//! 2. That set, merged with the directory ids, gives directory by directory the children (CSR), the file
//!    runs and the directory's own totals; the (child, parent) pairs go into a second sorted set.
//! 3. The second set, in child order, is the parent array.
//! 4. Subtree totals come from a depth-first walk of the children arrays on disk, read through a small
//!    block cache; the walk's stack holds one frame per level. The totals go into a third sorted set,
//!    written out in directory order.
//! 5. The sections are concatenated behind the header and hashed into one unnamed temporary file.
//!
//! Memory: each sorted set holds at most [`SORT_MEMORY`] bytes before it spills sorted runs to the
//! system's temporary directory, and at most two are filled or read at once; the block caches take
//! [`CACHE_BYTES`] each. Nothing is held per directory or per file. Disk: the sections twice (temporary
//! files, then the summary) plus the sorted sets, about three times the summary's size at the peak.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;

use anyhow::{Context, ensure};
use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{Int8Type, Int64Type};
use futures::StreamExt;

use super::BatchStream;
use super::node::{NodeKind, ROOT_ID, time_values};
use crate::repository::keyset::{KeySpill, Payload, SpillConfig};

/// Bytes of memory each sorted set may hold before it spills a sorted run.
pub const SORT_MEMORY: u64 = 64 << 20;
/// Bytes each block cache of the subtree walk holds.
pub const CACHE_BYTES: usize = 4 << 20;
/// Bytes of one cached block.
const BLOCK: usize = 64 << 10;
/// The stored summary's first bytes.
pub const MAGIC: &[u8; 8] = b"AFBDIRS2";
/// Two files of a directory whose ids differ by at most this much share a run.
pub const RUN_GAP: i64 = 4096;
/// A parent index meaning "no parent" (the root, and directories whose parent is not a directory).
const NONE: u32 = u32::MAX;

/// A built summary: an unnamed temporary file holding exactly the bytes to store, and the BLAKE3 hash
/// of all but its last 32 bytes (which hold that hash).
pub struct BuiltSummary {
    pub file: File,
    pub size: u64,
    pub body_hash: blake3::Hash,
}

/// Build the summary of the rows of `rows` (columns `node_id, parent_id, name, kind, size, mtime`,
/// ascending `node_id`), sorting in at most `sort_memory` bytes per sorted set; runs on a blocking
/// thread fed by the stream.
pub async fn build(mut rows: BatchStream, sort_memory: u64) -> anyhow::Result<BuiltSummary> {
    let (tx, rx) = tokio::sync::mpsc::channel::<anyhow::Result<RecordBatch>>(2);
    let task = tokio::task::spawn_blocking(move || build_blocking(rx, sort_memory));
    while let Some(b) = rows.next().await {
        let failed = b.is_err();
        // A failed read is handed over too, so the builder stops with it instead of finishing a partial
        // summary; a send fails only when the builder has already failed, with the error to report.
        if tx.send(b).await.is_err() || failed {
            break;
        }
    }
    drop(tx);
    task.await.context("directory summary builder panicked")?
}

fn build_blocking(
    mut rx: tokio::sync::mpsc::Receiver<anyhow::Result<RecordBatch>>,
    sort_memory: u64,
) -> anyhow::Result<BuiltSummary> {
    let config = SpillConfig::with_memory(sort_memory, None);

    // 1. Rows in id order.
    let mut ids = Section::new()?;
    let mut name_end = Section::new()?;
    let mut names = Section::new()?;
    let mut mtime = Section::new()?;
    ids.put(&ROOT_ID.0.to_le_bytes())?;
    name_end.put(&0u32.to_le_bytes())?;
    mtime.put(&0i64.to_le_bytes())?;
    let mut by_parent = KeySpill::<Linked>::new(config.clone());
    let mut pass = FirstPass { n_dirs: 1, names_len: 0, seq: 0 };
    while let Some(b) = rx.blocking_recv() {
        pass.add(&b?, &mut by_parent, [&mut ids, &mut name_end, &mut names, &mut mtime])?;
    }
    let (n, names_len) = (pass.n_dirs, pass.names_len);
    let by_parent = by_parent.finish()?;

    // 2. Per directory, in index order: children, runs, own totals.
    let mut child_start = Section::new()?;
    let mut child = Section::new()?;
    let mut run_start = Section::new()?;
    let mut run_lo = Section::new()?;
    let mut run_hi = Section::new()?;
    let mut own = Section::new()?;
    let mut parents = KeySpill::<Index>::new(config.clone());
    let (mut n_child, mut n_runs) = (0u64, 0u64);
    child_start.put(&0u32.to_le_bytes())?;
    run_start.put(&0u32.to_le_bytes())?;
    {
        let mut dir_ids = ids.reader()?;
        let mut facts = by_parent.cursor(0)?;
        for p in 0..n {
            let id = dir_ids.i64()?;
            while facts.peek().is_some_and(|(k, _)| key_major(k) < id) {
                facts.next_entry()?; // facts of a parent that is not a directory
            }
            let mut t = [0u64; 3]; // bytes, files, dirs
            let mut run: Option<(i64, i64)> = None;
            while let Some((k, f)) = facts.peek().copied() {
                if key_major(&k) != id {
                    break;
                }
                facts.next_entry()?;
                if f.tag == Linked::CHILD {
                    child.put(&(f.a as u32).to_le_bytes())?;
                    n_child += 1;
                    t[2] += 1;
                    parents.add(key(f.a, 0), Index(p as u32))?;
                } else {
                    t[0] += f.bytes;
                    t[1] += f.files;
                    run = match run {
                        Some((lo, hi)) if f.a.saturating_sub(hi) <= RUN_GAP => Some((lo, f.b.max(hi))),
                        done => {
                            if let Some((lo, hi)) = done {
                                run_lo.put(&lo.to_le_bytes())?;
                                run_hi.put(&hi.to_le_bytes())?;
                                n_runs += 1;
                            }
                            Some((f.a, f.b))
                        }
                    };
                }
            }
            if let Some((lo, hi)) = run {
                run_lo.put(&lo.to_le_bytes())?;
                run_hi.put(&hi.to_le_bytes())?;
                n_runs += 1;
            }
            for x in t {
                own.put(&x.to_le_bytes())?;
            }
            child_start.put(&u32::try_from(n_child).context("more than 4G child links")?.to_le_bytes())?;
            run_start.put(&u32::try_from(n_runs).context("more than 4G file runs")?.to_le_bytes())?;
        }
    }
    drop(by_parent);

    // 3. The parent array, in child order.
    let mut parent = Section::new()?;
    {
        let parents = parents.finish()?;
        let mut links = parents.cursor(0)?;
        for i in 0..n as i64 {
            let mut p = NONE;
            while let Some((k, Index(x))) = links.peek().copied() {
                if key_major(&k) > i {
                    break;
                }
                links.next_entry()?;
                if key_major(&k) == i {
                    p = x;
                }
            }
            parent.put(&p.to_le_bytes())?;
        }
    }

    // 4. Subtree totals: a depth-first walk from the root and from every directory without a parent.
    let own = own.finish()?;
    let child_start = child_start.finish()?;
    let child = child.finish()?;
    let parent_file = parent.finish()?;
    let totals = {
        let mut walk = Walk {
            child_start: BlockReader::new(&child_start),
            child: BlockReader::new(&child),
            own: BlockReader::new(&own),
            out: KeySpill::new(config.clone()),
        };
        let mut roots = Reader::new(&parent_file)?;
        for i in 0..n {
            if roots.u32()? == NONE {
                walk.from(i as u32)?;
            }
        }
        walk.out.finish()?
    };
    let mut bytes = Section::new()?;
    let mut files = Section::new()?;
    let mut dirs = Section::new()?;
    {
        let mut walked = totals.cursor(0)?;
        let mut own = Reader::new(&own)?;
        for i in 0..n as i64 {
            let own_t = [own.u64()?, own.u64()?, own.u64()?];
            let mut t = own_t; // a directory the walk never reached (in a cycle of a damaged snapshot)
            if let Some((k, Totals(w))) = walked.peek().copied()
                && key_major(&k) == i
            {
                walked.next_entry()?;
                t = w;
            }
            bytes.put(&t[0].to_le_bytes())?;
            files.put(&t[1].to_le_bytes())?;
            dirs.put(&t[2].to_le_bytes())?;
        }
    }
    drop(totals);

    // 5. Header, sections in stored order, hash.
    let mut out = BufWriter::with_capacity(1 << 20, tempfile::tempfile().context("creating a temporary file")?);
    let mut hasher = blake3::Hasher::new();
    let mut emit = |b: &[u8]| -> anyhow::Result<()> {
        hasher.update(b);
        out.write_all(b).context("writing the directory summary to a temporary file")
    };
    emit(MAGIC)?;
    for count in [n, names_len, n_child, n_runs] {
        emit(&count.to_le_bytes())?;
    }
    let sections = [
        ids.finish()?,
        parent_file,
        name_end.finish()?,
        names.finish()?,
        bytes.finish()?,
        files.finish()?,
        dirs.finish()?,
        mtime.finish()?,
        child_start,
        child,
        run_start.finish()?,
        run_lo.finish()?,
        run_hi.finish()?,
    ];
    let mut size = 8 + 32;
    let mut buf = vec![0u8; 1 << 20];
    for mut f in sections {
        f.seek(SeekFrom::Start(0))?;
        loop {
            let k = f.read(&mut buf).context("reading a temporary file")?;
            if k == 0 {
                break;
            }
            emit(&buf[..k])?;
            size += k as u64;
        }
    }
    let body_hash = hasher.finalize();
    out.write_all(body_hash.as_bytes())?;
    let file = out.into_inner().map_err(|e| e.into_error()).context("writing the directory summary")?;
    Ok(BuiltSummary { file, size: size + 32, body_hash })
}

/// State of the pass over the rows.
struct FirstPass {
    /// Directories so far, the root included: the index the next directory gets.
    n_dirs: u64,
    names_len: u64,
    /// Facts put into the sorted set so far: the minor key, so a parent's facts stay in row order.
    seq: u64,
}

impl FirstPass {
    /// Sections: ids, name ends, names, mtimes.
    fn add(&mut self, b: &RecordBatch, by_parent: &mut KeySpill<Linked>, s: [&mut Section; 4]) -> anyhow::Result<()> {
        let [ids_s, name_end_s, names_s, mtime_s] = s;
        let schema = b.schema();
        let colx =
            |name: &str| schema.index_of(name).with_context(|| format!("directory summary input lacks column {name}"));
        let ids = b.column(colx("node_id")?).as_primitive::<Int64Type>();
        let parents = b.column(colx("parent_id")?).as_primitive::<Int64Type>();
        let names = b.column(colx("name")?).as_string::<i32>();
        let kinds = b.column(colx("kind")?).as_primitive::<Int8Type>();
        let sizes = b.column(colx("size")?).as_primitive::<Int64Type>();
        let mtimes = time_values(b.column(colx("mtime")?)).context("directory summary input: mtime is not a time")?;
        let n = b.num_rows();
        let mut i = 0;
        while i < n {
            // A stretch of rows of one parent; its files make runs of ids no more than RUN_GAP apart.
            let p = parents.value(i);
            let mut run: Option<Linked> = None;
            while i < n && parents.value(i) == p {
                let id = ids.value(i);
                if kinds.value(i) == NodeKind::Dir as i8 {
                    let name = names.value(i);
                    self.names_len += name.len() as u64;
                    ensure!(self.names_len <= u32::MAX as u64, "directory names exceed 4 GiB");
                    ensure!(self.n_dirs < NONE as u64, "more than 4G directories");
                    ids_s.put(&id.to_le_bytes())?;
                    names_s.put(name.as_bytes())?;
                    name_end_s.put(&(self.names_len as u32).to_le_bytes())?;
                    mtime_s.put(&mtimes[i].to_le_bytes())?;
                    self.put(by_parent, p, Linked { tag: Linked::CHILD, a: self.n_dirs as i64, ..Default::default() })?;
                    self.n_dirs += 1;
                } else {
                    let size = sizes.value(i).max(0) as u64;
                    match &mut run {
                        Some(r) if id.saturating_sub(r.b) <= RUN_GAP => {
                            r.b = id;
                            r.bytes += size;
                            r.files += 1;
                        }
                        r => {
                            if let Some(done) = r.take() {
                                self.put(by_parent, p, done)?;
                            }
                            *r = Some(Linked { tag: Linked::FILES, a: id, b: id, bytes: size, files: 1 });
                        }
                    }
                }
                i += 1;
            }
            if let Some(done) = run {
                self.put(by_parent, p, done)?;
            }
        }
        Ok(())
    }

    fn put(&mut self, by_parent: &mut KeySpill<Linked>, parent: i64, fact: Linked) -> anyhow::Result<()> {
        by_parent.add(key(parent, self.seq), fact)?;
        self.seq += 1;
        Ok(())
    }
}

/// The subtree walk: reads the children arrays and own totals on disk, puts each directory's subtree
/// totals into `out` keyed by its index.
struct Walk<'a> {
    child_start: BlockReader<'a>,
    child: BlockReader<'a>,
    own: BlockReader<'a>,
    out: KeySpill<Totals>,
}

/// A directory on the walk's stack: its index, its next child link, the end of its links, and the totals
/// so far (its own plus its finished children's).
struct Frame {
    dir: u32,
    next: u64,
    end: u64,
    totals: [u64; 3],
}

impl Walk<'_> {
    fn frame(&mut self, dir: u32) -> anyhow::Result<Frame> {
        let i = dir as u64;
        let o = |k: u64| 24 * i + 8 * k;
        Ok(Frame {
            dir,
            next: self.child_start.u32_at(4 * i)? as u64,
            end: self.child_start.u32_at(4 * (i + 1))? as u64,
            totals: [self.own.u64_at(o(0))?, self.own.u64_at(o(1))?, self.own.u64_at(o(2))?],
        })
    }

    /// Walk the subtree of `root` (a directory without a parent). Every directory has at most one parent,
    /// so a walk from the parentless ones visits each reachable directory once.
    fn from(&mut self, root: u32) -> anyhow::Result<()> {
        let mut stack = vec![self.frame(root)?];
        while let Some(top) = stack.last_mut() {
            if top.next < top.end {
                let at = top.next;
                top.next += 1;
                let c = self.child.u32_at(4 * at)?;
                let f = self.frame(c)?;
                stack.push(f);
                continue;
            }
            let done = stack.pop().expect("a frame");
            self.out.add(key(done.dir as i64, 0), Totals(done.totals))?;
            if let Some(up) = stack.last_mut() {
                for k in 0..3 {
                    up.totals[k] += done.totals[k];
                }
            }
        }
        Ok(())
    }
}

/// A sort key: `major` ascending (as a signed value), then `minor`.
fn key(major: i64, minor: u64) -> [u8; 32] {
    let mut k = [0u8; 32];
    k[..8].copy_from_slice(&((major as u64) ^ (1 << 63)).to_be_bytes());
    k[8..16].copy_from_slice(&minor.to_be_bytes());
    k
}

fn key_major(k: &[u8; 32]) -> i64 {
    (u64::from_be_bytes(k[..8].try_into().expect("8 bytes")) ^ (1 << 63)) as i64
}

/// A fact keyed by a parent directory id: a child directory (`a`: its index), or a piece of a stretch of
/// files (`a..=b`: the id run; `bytes`, `files`: their totals).
#[derive(Clone, Copy, Default)]
struct Linked {
    tag: u8,
    a: i64,
    b: i64,
    bytes: u64,
    files: u64,
}

impl Linked {
    const CHILD: u8 = 1;
    const FILES: u8 = 2;
}

impl Payload for Linked {
    const LEN: usize = 33;
    /// Keys are unique (a sequence number is part of each), so nothing is ever combined.
    fn add(&mut self, other: &Self) {
        *self = *other;
    }
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.tag);
        for x in [self.a as u64, self.b as u64, self.bytes, self.files] {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    fn decode(b: &[u8]) -> Self {
        let at = |k: usize| u64::from_le_bytes(b[1 + 8 * k..9 + 8 * k].try_into().expect("8 bytes"));
        Linked { tag: b[0], a: at(0) as i64, b: at(1) as i64, bytes: at(2), files: at(3) }
    }
}

/// A directory index (a child's parent).
#[derive(Clone, Copy, Default)]
struct Index(u32);

impl Payload for Index {
    const LEN: usize = 4;
    /// A directory has one parent: nothing is ever combined.
    fn add(&mut self, other: &Self) {
        *self = *other;
    }
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0.to_le_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        Index(u32::from_le_bytes(b[..4].try_into().expect("4 bytes")))
    }
}

/// Subtree totals: bytes, files, directories.
#[derive(Clone, Copy, Default)]
struct Totals([u64; 3]);

impl Payload for Totals {
    const LEN: usize = 24;
    /// The walk visits a directory once: nothing is ever combined.
    fn add(&mut self, other: &Self) {
        *self = *other;
    }
    fn encode(&self, out: &mut Vec<u8>) {
        for x in self.0 {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    fn decode(b: &[u8]) -> Self {
        let at = |k: usize| u64::from_le_bytes(b[8 * k..8 * k + 8].try_into().expect("8 bytes"));
        Totals([at(0), at(1), at(2)])
    }
}

/// One section being written: an unnamed temporary file behind a buffer.
struct Section {
    w: BufWriter<File>,
}

impl Section {
    fn new() -> anyhow::Result<Self> {
        let f = tempfile::tempfile().context("creating a temporary file for the directory summary")?;
        Ok(Section { w: BufWriter::with_capacity(256 << 10, f) })
    }

    fn put(&mut self, b: &[u8]) -> anyhow::Result<()> {
        self.w.write_all(b).context("writing a temporary file of the directory summary")
    }

    /// The written file.
    fn finish(self) -> anyhow::Result<File> {
        self.w.into_inner().map_err(|e| e.into_error()).context("writing a temporary file of the directory summary")
    }

    /// Flush and read what was written so far from the start (writing may go on).
    fn reader(&mut self) -> anyhow::Result<Reader> {
        self.w.flush()?;
        Reader::new(self.w.get_ref())
    }
}

/// Sequential reads of little-endian values from a file's start.
struct Reader {
    r: BufReader<File>,
}

impl Reader {
    fn new(f: &File) -> anyhow::Result<Self> {
        let mut f = f.try_clone()?;
        f.seek(SeekFrom::Start(0))?;
        Ok(Reader { r: BufReader::with_capacity(256 << 10, f) })
    }

    fn bytes<const N: usize>(&mut self) -> anyhow::Result<[u8; N]> {
        let mut b = [0u8; N];
        self.r.read_exact(&mut b).context("reading a temporary file of the directory summary")?;
        Ok(b)
    }

    fn i64(&mut self) -> anyhow::Result<i64> {
        Ok(i64::from_le_bytes(self.bytes()?))
    }

    fn u64(&mut self) -> anyhow::Result<u64> {
        Ok(u64::from_le_bytes(self.bytes()?))
    }

    fn u32(&mut self) -> anyhow::Result<u32> {
        Ok(u32::from_le_bytes(self.bytes()?))
    }
}

/// Random reads of a file through a direct-mapped cache of [`BLOCK`]-byte blocks ([`CACHE_BYTES`] in all).
struct BlockReader<'a> {
    file: &'a File,
    /// Slot `s` holds block `blocks[s].0` (`u64::MAX`: empty) and its bytes.
    slots: Vec<(u64, Vec<u8>)>,
}

impl<'a> BlockReader<'a> {
    fn new(file: &'a File) -> Self {
        BlockReader { file, slots: vec![(u64::MAX, Vec::new()); CACHE_BYTES / BLOCK] }
    }

    fn read_at(&mut self, mut at: u64, out: &mut [u8]) -> anyhow::Result<()> {
        let mut done = 0;
        while done < out.len() {
            let block = at / BLOCK as u64;
            let slot = (block % self.slots.len() as u64) as usize;
            if self.slots[slot].0 != block {
                let buf = &mut self.slots[slot].1;
                buf.resize(BLOCK, 0);
                let mut got = 0;
                while got < BLOCK {
                    let k = self
                        .file
                        .read_at(&mut buf[got..], block * BLOCK as u64 + got as u64)
                        .context("reading a temporary file of the directory summary")?;
                    if k == 0 {
                        break;
                    }
                    got += k;
                }
                buf.truncate(got);
                self.slots[slot].0 = block;
            }
            let buf = &self.slots[slot].1;
            let from = (at % BLOCK as u64) as usize;
            let take = (out.len() - done).min(buf.len().saturating_sub(from));
            ensure!(take > 0, "a temporary file of the directory summary is shorter than expected");
            out[done..done + take].copy_from_slice(&buf[from..from + take]);
            done += take;
            at += take as u64;
        }
        Ok(())
    }

    fn u32_at(&mut self, at: u64) -> anyhow::Result<u32> {
        let mut b = [0u8; 4];
        self.read_at(at, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn u64_at(&mut self, at: u64) -> anyhow::Result<u64> {
        let mut b = [0u8; 8];
        self.read_at(at, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_order_by_signed_major_then_minor() {
        let mut ks = [key(5, 1), key(-3, 9), key(5, 0), key(i64::MIN, 0), key(i64::MAX, 0), key(0, 2)];
        ks.sort();
        let got: Vec<i64> = ks.iter().map(key_major).collect();
        assert_eq!(got, [i64::MIN, -3, 0, 5, 5, i64::MAX]);
        assert!(key(5, 0) < key(5, 1));
    }
}
