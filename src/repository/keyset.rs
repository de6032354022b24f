//! Sorted sets of 32-byte keys (chunk ids, object ids) in bounded memory, spilled to disk when large.
//!
//! A [`KeySpill`] collects keys in any order, each with a small fixed-size [`Payload`] that is summed when
//! a key is added twice (`()` for a plain set). Keys are held in a hash map until it reaches
//! [`SpillConfig::entries`]; then they are sorted and written as one *run* (fixed-width records: the key,
//! then the payload) to a temporary directory. [`KeySpill::finish`] gives a [`KeySet`]: the keys in memory
//! if nothing was spilled, else one file merged from the runs (at most [`MERGE_FAN_IN`] runs are merged at
//! a time). A `KeySet` answers ascending scans ([`KeySet::cursor`], from the first key of a given first
//! byte, which is how the chunk index and the object keys are partitioned) and random lookups
//! ([`KeySet::get`], a binary search of the file).
//!
//! Users: prune's live chunk, metadata and bundle sets and its per-pack usage ([`super::prune`]).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::{Error, Result};

/// Runs merged at once; more runs are merged in rounds.
pub const MERGE_FAN_IN: usize = 64;
/// Bytes of memory a buffered key takes, counted generously (key, payload, hash-map overhead).
const ENTRY_BYTES: u64 = 96;
/// Buffer of each open run file while merging or scanning.
const IO_BUFFER: usize = 64 << 10;

/// A fixed-size value kept with each key; values of one key are combined with [`Payload::add`].
pub trait Payload: Copy + Default + Send + 'static {
    /// Encoded length in bytes.
    const LEN: usize;
    fn add(&mut self, other: &Self);
    fn encode(&self, out: &mut Vec<u8>);
    fn decode(b: &[u8]) -> Self;
}

impl Payload for () {
    const LEN: usize = 0;
    fn add(&mut self, _: &Self) {}
    fn encode(&self, _: &mut Vec<u8>) {}
    fn decode(_: &[u8]) -> Self {}
}

/// How much a [`KeySpill`] may hold in memory, and where it spills.
#[derive(Clone, Debug)]
pub struct SpillConfig {
    /// Keys buffered before a run is written (at least 1).
    pub entries: usize,
    /// Where the temporary runs go (a fresh directory below it; the system's temporary directory by
    /// default). Removed when the set is dropped.
    pub dir: Option<PathBuf>,
}

impl SpillConfig {
    /// A buffer of `bytes` of memory.
    pub fn with_memory(bytes: u64, dir: Option<PathBuf>) -> Self {
        SpillConfig { entries: usize::try_from(bytes / ENTRY_BYTES).unwrap_or(usize::MAX).max(1), dir }
    }

    fn shown_dir(&self) -> String {
        self.dir.clone().unwrap_or_else(std::env::temp_dir).display().to_string()
    }
}

fn io_error(what: String, e: std::io::Error) -> Error {
    Error::Invalid(format!("{what}: {e}"))
}

/// Collects keys with payloads; see the module docs.
pub struct KeySpill<V: Payload> {
    config: SpillConfig,
    buffer: HashMap<[u8; 32], V>,
    tmp: Option<Arc<tempfile::TempDir>>,
    runs: Vec<PathBuf>,
}

impl<V: Payload> KeySpill<V> {
    pub fn new(config: SpillConfig) -> Self {
        KeySpill { config, buffer: HashMap::new(), tmp: None, runs: Vec::new() }
    }

    /// Adds `key` with `value` (summed with the value already held for it).
    pub fn add(&mut self, key: [u8; 32], value: V) -> Result<()> {
        self.buffer.entry(key).or_default().add(&value);
        if self.buffer.len() >= self.config.entries {
            self.spill()?;
        }
        Ok(())
    }

    /// Runs written to disk so far.
    pub fn spilled_runs(&self) -> usize {
        self.runs.len()
    }

    fn tmp_dir(&mut self) -> Result<Arc<tempfile::TempDir>> {
        if self.tmp.is_none() {
            let base = self.config.dir.clone().unwrap_or_else(std::env::temp_dir);
            let shown = self.config.shown_dir();
            std::fs::create_dir_all(&base).map_err(|e| io_error(format!("creating spill directory {shown}"), e))?;
            let dir = tempfile::Builder::new()
                .prefix("afb-keys-")
                .tempdir_in(&base)
                .map_err(|e| io_error(format!("creating a temporary directory in {shown}"), e))?;
            self.tmp = Some(Arc::new(dir));
        }
        Ok(self.tmp.clone().expect("created above"))
    }

    fn next_run_path(&mut self) -> Result<PathBuf> {
        let n = self.runs.len();
        Ok(self.tmp_dir()?.path().join(format!("run-{n:06}")))
    }

    fn spill(&mut self) -> Result<()> {
        let path = self.next_run_path()?;
        let mut sorted: Vec<([u8; 32], V)> = self.buffer.drain().collect();
        self.buffer.shrink_to(self.config.entries.min(1 << 16));
        sorted.sort_unstable_by_key(|a| a.0);
        let mut w = RunWriter::create(&path, (sorted.len() * record_len::<V>()) as u64)?;
        for (k, v) in &sorted {
            w.write(k, v)?;
        }
        w.finish()?;
        self.runs.push(path);
        Ok(())
    }

    /// The keys in ascending order with their summed payloads.
    pub fn finish(mut self) -> Result<KeySet<V>> {
        if self.runs.is_empty() {
            let mut sorted: Vec<([u8; 32], V)> = self.buffer.drain().collect();
            sorted.sort_unstable_by_key(|a| a.0);
            return Ok(KeySet { inner: Inner::Memory(Arc::new(sorted)) });
        }
        if !self.buffer.is_empty() {
            self.spill()?;
        }
        // Merge in rounds of at most MERGE_FAN_IN runs until one is left.
        let mut runs = std::mem::take(&mut self.runs);
        while runs.len() > 1 {
            let mut next = Vec::new();
            for group in runs.chunks(MERGE_FAN_IN) {
                if group.len() == 1 {
                    next.push(group[0].clone());
                    continue;
                }
                let path = self.tmp_dir()?.path().join(format!("merged-{:06}", self.runs.len()));
                self.runs.push(path.clone());
                merge_runs::<V>(group, &path)?;
                for p in group {
                    let _ = std::fs::remove_file(p);
                }
                next.push(path);
            }
            runs = next;
        }
        let path = runs.pop().expect("at least one run");
        let len = std::fs::metadata(&path).map_err(|e| io_error(format!("reading {}", path.display()), e))?.len();
        let file = File::open(&path).map_err(|e| io_error(format!("opening {}", path.display()), e))?;
        let tmp = self.tmp.clone().expect("spilled");
        Ok(KeySet {
            inner: Inner::File { file: Arc::new(file), path, count: len / record_len::<V>() as u64, _tmp: tmp },
        })
    }
}

fn record_len<V: Payload>() -> usize {
    32 + V::LEN
}

/// Writes one run of `bytes` bytes (known in advance).
struct RunWriter {
    w: BufWriter<File>,
    path: PathBuf,
    rec: Vec<u8>,
    /// The run's size, for the error that says how much room it needs.
    bytes: u64,
}

impl RunWriter {
    fn create(path: &Path, bytes: u64) -> Result<Self> {
        let f = File::create(path).map_err(|e| io_error(format!("creating spill file {}", path.display()), e))?;
        Ok(RunWriter { w: BufWriter::with_capacity(IO_BUFFER, f), path: path.to_path_buf(), rec: Vec::new(), bytes })
    }

    fn write<V: Payload>(&mut self, key: &[u8; 32], v: &V) -> Result<()> {
        self.rec.clear();
        self.rec.extend_from_slice(key);
        v.encode(&mut self.rec);
        self.w.write_all(&self.rec).map_err(|e| self.no_room(e))
    }

    fn finish(mut self) -> Result<()> {
        self.w.flush().map_err(|e| self.no_room(e))?;
        self.w.get_ref().sync_data().map_err(|e| self.no_room(e))
    }

    /// The error of a failed write, naming the spill directory (the parent of the set's temporary
    /// directory), the room the run needs and what is free there.
    fn no_room(&self, e: std::io::Error) -> Error {
        let tmp = self.path.parent().unwrap_or(&self.path);
        Error::Invalid(crate::spill::no_room(tmp.parent().unwrap_or(tmp), self.bytes, &e))
    }
}

/// Reads fixed-width records of one run in order.
struct RunReader<V: Payload> {
    r: BufReader<File>,
    path: PathBuf,
    rec: Vec<u8>,
    _v: std::marker::PhantomData<V>,
}

impl<V: Payload> RunReader<V> {
    fn open(file: File, path: &Path) -> Self {
        RunReader {
            r: BufReader::with_capacity(IO_BUFFER, file),
            path: path.to_path_buf(),
            rec: vec![0; record_len::<V>()],
            _v: Default::default(),
        }
    }

    fn next(&mut self) -> Result<Option<([u8; 32], V)>> {
        match self.r.read_exact(&mut self.rec) {
            Ok(()) => {
                let key: [u8; 32] = self.rec[..32].try_into().expect("32 bytes");
                Ok(Some((key, V::decode(&self.rec[32..]))))
            }
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
            Err(e) => Err(io_error(format!("reading spill file {}", self.path.display()), e)),
        }
    }
}

/// K-way merge of sorted runs into one, summing the payloads of equal keys.
fn merge_runs<V: Payload>(runs: &[PathBuf], out: &Path) -> Result<()> {
    let mut readers = Vec::new();
    let mut heap = BinaryHeap::new();
    for (i, p) in runs.iter().enumerate() {
        let f = File::open(p).map_err(|e| io_error(format!("opening spill file {}", p.display()), e))?;
        let mut r = RunReader::<V>::open(f, p);
        if let Some((k, v)) = r.next()? {
            heap.push(Reverse((k, i, Wrap(v))));
        }
        readers.push(r);
    }
    let bytes = runs.iter().map(|p| std::fs::metadata(p).map_or(0, |m| m.len())).sum();
    let mut w = RunWriter::create(out, bytes)?;
    let mut current: Option<([u8; 32], V)> = None;
    while let Some(Reverse((k, i, Wrap(v)))) = heap.pop() {
        match &mut current {
            Some((ck, cv)) if *ck == k => cv.add(&v),
            _ => {
                if let Some((ck, cv)) = current.take() {
                    w.write(&ck, &cv)?;
                }
                current = Some((k, v));
            }
        }
        if let Some((k, v)) = readers[i].next()? {
            heap.push(Reverse((k, i, Wrap(v))));
        }
    }
    if let Some((ck, cv)) = current {
        w.write(&ck, &cv)?;
    }
    w.finish()
}

/// Orders heap items by key and run only (payloads need no order).
struct Wrap<V>(V);
impl<V> PartialEq for Wrap<V> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl<V> Eq for Wrap<V> {}
impl<V> PartialOrd for Wrap<V> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<V> Ord for Wrap<V> {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

enum Inner<V> {
    Memory(Arc<Vec<([u8; 32], V)>>),
    File { file: Arc<File>, path: PathBuf, count: u64, _tmp: Arc<tempfile::TempDir> },
}

/// Unique keys in ascending order with their payloads, in memory or in one file; see the module docs.
pub struct KeySet<V: Payload> {
    inner: Inner<V>,
}

impl<V: Payload> KeySet<V> {
    /// An empty set.
    pub fn empty() -> Self {
        KeySet { inner: Inner::Memory(Arc::new(Vec::new())) }
    }

    /// Number of keys.
    pub fn len(&self) -> u64 {
        match &self.inner {
            Inner::Memory(v) => v.len() as u64,
            Inner::File { count, .. } => *count,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the set is on disk.
    pub fn spilled(&self) -> bool {
        matches!(self.inner, Inner::File { .. })
    }

    fn key_at(&self, i: u64) -> Result<([u8; 32], V)> {
        match &self.inner {
            Inner::Memory(v) => Ok(v[i as usize]),
            Inner::File { file, path, .. } => {
                let mut rec = vec![0u8; record_len::<V>()];
                file.read_exact_at(&mut rec, i * record_len::<V>() as u64)
                    .map_err(|e| io_error(format!("reading spill file {}", path.display()), e))?;
                Ok((rec[..32].try_into().expect("32 bytes"), V::decode(&rec[32..])))
            }
        }
    }

    /// Index of the first key not below `key`.
    fn lower_bound(&self, key: &[u8; 32]) -> Result<u64> {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.key_at(mid)?.0 < *key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    /// The payload of `key`, if the set holds it (a binary search; on disk, about log2(len) reads).
    pub fn get(&self, key: &[u8; 32]) -> Result<Option<V>> {
        let i = self.lower_bound(key)?;
        if i < self.len() {
            let (k, v) = self.key_at(i)?;
            if k == *key {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }

    pub fn contains(&self, key: &[u8; 32]) -> Result<bool> {
        Ok(self.get(key)?.is_some())
    }

    /// An ascending scan from the first key whose first byte is at least `first_byte`.
    pub fn cursor(&self, first_byte: u8) -> Result<Cursor<V>> {
        let mut start = [0u8; 32];
        start[0] = first_byte;
        let i = self.lower_bound(&start)?;
        let source = match &self.inner {
            Inner::Memory(v) => Source::Memory(v.clone(), i as usize),
            Inner::File { path, .. } => {
                // A file of its own (a clone would share the offset with other cursors).
                let mut f = File::open(path).map_err(|e| io_error(format!("opening {}", path.display()), e))?;
                f.seek(SeekFrom::Start(i * record_len::<V>() as u64))
                    .map_err(|e| io_error(format!("reading spill file {}", path.display()), e))?;
                Source::File(RunReader::open(f, path))
            }
        };
        let mut c = Cursor { source, head: None };
        c.head = c.pull()?;
        Ok(c)
    }
}

enum Source<V: Payload> {
    Memory(Arc<Vec<([u8; 32], V)>>, usize),
    File(RunReader<V>),
}

/// An ascending scan of a [`KeySet`].
pub struct Cursor<V: Payload> {
    source: Source<V>,
    head: Option<([u8; 32], V)>,
}

impl<V: Payload> Cursor<V> {
    fn pull(&mut self) -> Result<Option<([u8; 32], V)>> {
        match &mut self.source {
            Source::Memory(v, i) => {
                let x = v.get(*i).copied();
                *i += 1;
                Ok(x)
            }
            Source::File(r) => r.next(),
        }
    }

    /// The next key and payload.
    pub fn next_entry(&mut self) -> Result<Option<([u8; 32], V)>> {
        let x = self.head.take();
        if x.is_some() {
            self.head = self.pull()?;
        }
        Ok(x)
    }

    /// The next key without taking it.
    pub fn peek(&self) -> Option<&([u8; 32], V)> {
        self.head.as_ref()
    }

    /// Skips keys below `key` and returns the payload of `key` if present. Calls must not descend.
    pub fn seek(&mut self, key: &[u8; 32]) -> Result<Option<V>> {
        while let Some((k, v)) = self.head {
            if k < *key {
                self.head = self.pull()?;
            } else {
                return Ok((k == *key).then_some(v));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Default, Debug, PartialEq)]
    struct Count(u64);
    impl Payload for Count {
        const LEN: usize = 8;
        fn add(&mut self, o: &Self) {
            self.0 += o.0;
        }
        fn encode(&self, out: &mut Vec<u8>) {
            out.extend_from_slice(&self.0.to_le_bytes());
        }
        fn decode(b: &[u8]) -> Self {
            Count(u64::from_le_bytes(b.try_into().unwrap()))
        }
    }

    fn key(i: u64) -> [u8; 32] {
        *blake3::hash(&i.to_le_bytes()).as_bytes()
    }

    fn collect(set: &KeySet<Count>, from: u8) -> Vec<([u8; 32], u64)> {
        let mut c = set.cursor(from).unwrap();
        let mut out = Vec::new();
        while let Some((k, v)) = c.next_entry().unwrap() {
            out.push((k, v.0));
        }
        out
    }

    #[test]
    fn spilled_and_in_memory_sets_agree() {
        let build = |entries: usize| {
            let mut s = KeySpill::<Count>::new(SpillConfig { entries, dir: None });
            // 5,000 distinct keys, key i added (i % 3) + 1 times.
            for round in 0..3u64 {
                for i in 0..5_000u64 {
                    if round <= i % 3 {
                        s.add(key(i), Count(1)).unwrap();
                    }
                }
            }
            let runs = s.spilled_runs();
            (s.finish().unwrap(), runs)
        };
        let (mem, r0) = build(1 << 20);
        let (disk, r1) = build(16);
        assert_eq!(r0, 0);
        assert!(r1 > MERGE_FAN_IN, "more runs than one merge takes: {r1}");
        assert!(!mem.spilled() && disk.spilled());
        let all = collect(&mem, 0);
        assert_eq!(all.len(), 5_000);
        assert!(all.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(all, collect(&disk, 0));
        assert_eq!(collect(&mem, 0x80), collect(&disk, 0x80));
        assert!(collect(&disk, 0x80).iter().all(|(k, _)| k[0] >= 0x80));
        for i in [0u64, 1, 2, 4_999] {
            assert_eq!(disk.get(&key(i)).unwrap(), Some(Count(i % 3 + 1)));
            assert_eq!(mem.get(&key(i)).unwrap(), Some(Count(i % 3 + 1)));
        }
        assert_eq!(disk.get(&key(5_000)).unwrap(), None);
        let mut c = disk.cursor(0).unwrap();
        let mut sorted: Vec<u64> = (0..6_000).collect();
        sorted.sort_by_key(|i| key(*i));
        let hits = sorted.iter().filter(|i| c.seek(&key(**i)).unwrap().is_some()).count();
        assert_eq!(hits, 5_000);
    }
}
