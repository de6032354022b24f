//! The chunk index: chunk id → (pack id, offset, length), persisted and bounded in memory.
//!
//! restic keeps its whole index in memory and runs out of RAM with hundreds of millions of chunks; here
//! memory stays bounded:
//! - Entries are partitioned by the first byte of the chunk id (256 partitions). Each flush writes one
//!   immutable **index object** per partition that received entries; a partition is a set of such objects
//!   (merged by [`ChunkIndex::compact`]).
//! - Nothing is loaded when the index is opened. The first lookup in a partition lists and reads that
//!   partition's objects; each object's **Bloom filter** (10 bits per entry, 7 probes, ~1% false
//!   positives) stays in memory, its sorted entries go into a cache bounded by
//!   [`IndexConfig::cache_entries`]. A later lookup consults only objects whose filter may hold the id,
//!   re-reading an evicted object if needed.
//! - Memory is therefore at most the cache budget (~80 bytes per cached entry) plus 1.25 bytes per entry of
//!   the partitions touched, plus entries not yet flushed ([`IndexConfig::flush_entries`]).
//!
//! Index object (a sealed envelope, magic `AFBI`, see [`super::crypto`]); plaintext, integers little-endian:
//!
//! ```text
//! partition (u8) | count (u32) | bloom probes k (u8) | bloom length in bytes B (u32) | bloom bits (B bytes)
//! | count entries of 77 bytes, sorted by chunk id:
//!   chunk id (32) | pack id (32) | offset (u32) | length (u32) | raw length (u32) | compression (u8)
//! ```
//!
//! Bloom bit `p` is bit `p % 8` of byte `p / 8`; with `m = 8 * B`, `h1 = u64 LE of id[8..16]`,
//! `h2 = u64 LE of id[16..24] | 1`, the probes are `(h1 + i * h2) mod m` for `i` in `0..k` (wrapping
//! arithmetic). Stored at `{tenant}/{share}/index/{partition as 2 hex digits}/{object id}`.
//!
//! The index is a cache of the pack headers: [`rebuild_from_packs`] recreates it from packs alone.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::crypto::{self, Compression};
use super::error::{Error, Result};
use super::id::{ChunkId, ObjectId};
use super::keys::{TenantKey, get_bytes};
use super::layout::{Scope, object_id_of};
use super::pack::{self, BlobEntry};

const MAGIC: &[u8; 4] = b"AFBI";
/// Bytes of one entry in an index object.
pub const ENTRY_LEN: usize = 64 + pack::PLACE_LEN;
const BLOOM_BITS_PER_ENTRY: usize = 10;
const BLOOM_PROBES: u8 = 7;

/// Where a chunk is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    pub id: ChunkId,
    pub pack: ObjectId,
    /// Byte offset of the sealed blob in the pack.
    pub offset: u32,
    /// Length of the sealed blob in bytes.
    pub length: u32,
    /// Plaintext length in bytes.
    pub raw_length: u32,
    pub compression: Compression,
}

impl IndexEntry {
    pub fn new(pack: ObjectId, blob: &BlobEntry) -> Self {
        Self {
            id: blob.id,
            pack,
            offset: blob.offset,
            length: blob.length,
            raw_length: blob.raw_length,
            compression: blob.compression,
        }
    }

    pub fn blob(&self) -> BlobEntry {
        BlobEntry {
            id: self.id,
            offset: self.offset,
            length: self.length,
            raw_length: self.raw_length,
            compression: self.compression,
        }
    }

    /// The chunk id, the pack id, then the blob's place as a pack header has it.
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.id.0);
        out.extend_from_slice(&self.pack.0);
        self.blob().encode_place(out);
    }

    fn decode(b: &[u8]) -> Option<Self> {
        let blob = BlobEntry::decode_place(ChunkId::from_slice(&b[..32])?, &b[64..])?;
        Some(Self::new(ObjectId::from_slice(&b[32..64])?, &blob))
    }
}

/// A Bloom filter over chunk ids (which are uniformly distributed, so their bytes serve as hashes).
#[derive(Clone, Debug)]
pub struct Bloom {
    bits: Vec<u8>,
    k: u8,
}

impl Bloom {
    /// An empty filter sized for `n` ids.
    pub fn with_capacity(n: usize) -> Self {
        let bytes = (n * BLOOM_BITS_PER_ENTRY).div_ceil(8).max(8);
        Self { bits: vec![0; bytes], k: BLOOM_PROBES }
    }

    fn probes(&self, id: &ChunkId) -> impl Iterator<Item = usize> + use<> {
        let m = self.bits.len() as u64 * 8;
        let h1 = u64::from_le_bytes(id.0[8..16].try_into().unwrap());
        let h2 = u64::from_le_bytes(id.0[16..24].try_into().unwrap()) | 1;
        (0..self.k as u64).map(move |i| (h1.wrapping_add(i.wrapping_mul(h2)) % m) as usize)
    }

    pub fn insert(&mut self, id: &ChunkId) {
        for p in self.probes(id) {
            self.bits[p / 8] |= 1 << (p % 8);
        }
    }

    /// `false` means certainly absent.
    pub fn may_contain(&self, id: &ChunkId) -> bool {
        self.probes(id).all(|p| self.bits[p / 8] & (1 << (p % 8)) != 0)
    }

    /// Bytes of memory held by the bits.
    pub fn size(&self) -> usize {
        self.bits.len()
    }
}

/// Encodes one partition's entries (sorted by id, unique) as an index object; returns its id and bytes.
pub fn encode_index_object(key: &TenantKey, partition: u8, entries: &[IndexEntry]) -> (ObjectId, Vec<u8>) {
    let mut bloom = Bloom::with_capacity(entries.len());
    entries.iter().for_each(|e| bloom.insert(&e.id));
    let mut plain = Vec::with_capacity(10 + bloom.size() + entries.len() * ENTRY_LEN);
    plain.push(partition);
    plain.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    plain.push(bloom.k);
    plain.extend_from_slice(&(bloom.size() as u32).to_le_bytes());
    plain.extend_from_slice(&bloom.bits);
    entries.iter().for_each(|e| e.encode(&mut plain));
    let bytes = crypto::seal_object(key.seal_key(), MAGIC, &plain);
    (ObjectId::of(&bytes), bytes)
}

/// Decodes an index object; `object` names it in errors.
pub fn decode_index_object(key: &TenantKey, object: &str, bytes: &[u8]) -> Result<(u8, Bloom, Vec<IndexEntry>)> {
    let plain = crypto::open_object(key.seal_key(), MAGIC, bytes, object)?;
    let bad = |why: &str| Error::corrupt(object, format!("index object: {why}"));
    if plain.len() < 10 {
        return Err(bad("too short"));
    }
    let partition = plain[0];
    let count = u32::from_le_bytes(plain[1..5].try_into().unwrap()) as usize;
    let k = plain[5];
    let blen = u32::from_le_bytes(plain[6..10].try_into().unwrap()) as usize;
    if plain.len() != 10 + blen + count * ENTRY_LEN || k == 0 || blen == 0 {
        return Err(bad("lengths do not add up"));
    }
    let bloom = Bloom { bits: plain[10..10 + blen].to_vec(), k };
    let entries = plain[10 + blen..]
        .chunks_exact(ENTRY_LEN)
        .map(|b| IndexEntry::decode(b).ok_or_else(|| bad("bad entry")))
        .collect::<Result<Vec<_>>>()?;
    if entries.iter().any(|e| e.id.0[0] != partition) || !entries.is_sorted_by(|a, b| a.id < b.id) {
        return Err(bad("entries not sorted or in the wrong partition"));
    }
    Ok((partition, bloom, entries))
}

/// Memory limits of a [`ChunkIndex`].
#[derive(Clone, Copy, Debug)]
pub struct IndexConfig {
    /// Most index entries held in the read cache at once (about 80 bytes each).
    pub cache_entries: usize,
    /// New entries held before [`ChunkIndex::flush`] is due (see [`ChunkIndex::flush_due`]).
    pub flush_entries: usize,
}

impl Default for IndexConfig {
    fn default() -> Self {
        Self { cache_entries: 1 << 19, flush_entries: 1 << 18 }
    }
}

struct IndexObject {
    path: Path,
    bloom: Bloom,
    entries: Option<Arc<Vec<IndexEntry>>>,
    last_used: u64,
}

/// What [`ChunkIndex::compact`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CompactStats {
    /// Partitions that had several objects and now have one.
    pub partitions_merged: usize,
    /// Index objects deleted after their entries went into a merged object.
    pub objects_deleted: usize,
    /// Entries in the merged objects.
    pub entries: u64,
}

/// Memory held by a [`ChunkIndex`], for tests and progress output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IndexMemory {
    pub partitions_loaded: usize,
    pub objects_known: usize,
    pub bloom_bytes: usize,
    pub cached_entries: usize,
    pub pending_entries: usize,
}

/// The chunk index of one share (see the module docs). Not shared between writers: each backup has one.
pub struct ChunkIndex {
    store: Arc<dyn ObjectStore>,
    scope: Scope,
    key: TenantKey,
    config: IndexConfig,
    partitions: HashMap<u8, Vec<IndexObject>>,
    pending: BTreeMap<ChunkId, IndexEntry>,
    cached_entries: usize,
    tick: u64,
    /// Index objects read from the store (for tests of the lazy loading).
    pub objects_read: u64,
}

impl ChunkIndex {
    pub fn new(store: Arc<dyn ObjectStore>, scope: Scope, key: TenantKey, config: IndexConfig) -> Self {
        Self {
            store,
            scope,
            key,
            config,
            partitions: HashMap::new(),
            pending: BTreeMap::new(),
            cached_entries: 0,
            tick: 0,
            objects_read: 0,
        }
    }

    /// Where `id` is stored, if the index knows it (flushed or not). An index object that vanished since
    /// its partition was listed (merged by compaction or prune) makes the partition be listed again.
    pub async fn get(&mut self, id: &ChunkId) -> Result<Option<IndexEntry>> {
        let mut attempt = 0;
        loop {
            match self.lookup(id).await {
                Err(Error::Missing { .. }) if attempt < 3 => {
                    attempt += 1;
                    self.forget_partition(id.0[0]);
                }
                r => return r,
            }
        }
    }

    /// [`ChunkIndex::get`] after listing the id's partition again, so index objects other writers wrote
    /// since it was loaded are seen (a lookup that must not miss: reading a chunk a snapshot names).
    pub async fn get_fresh(&mut self, id: &ChunkId) -> Result<Option<IndexEntry>> {
        self.forget_partition(id.0[0]);
        self.get(id).await
    }

    /// Drops what is held of partition `p`; the next lookup lists it again.
    fn forget_partition(&mut self, p: u8) {
        if let Some(objects) = self.partitions.remove(&p) {
            self.cached_entries -= objects.iter().filter_map(|o| o.entries.as_ref()).map(|e| e.len()).sum::<usize>();
        }
    }

    async fn lookup(&mut self, id: &ChunkId) -> Result<Option<IndexEntry>> {
        if let Some(e) = self.pending.get(id) {
            return Ok(Some(*e));
        }
        let p = id.0[0];
        self.load_partition(p).await?;
        self.tick += 1;
        let n = self.partitions[&p].len();
        for i in (0..n).rev() {
            let obj = &self.partitions[&p][i];
            if !obj.bloom.may_contain(id) {
                continue;
            }
            let entries = match &obj.entries {
                Some(e) => e.clone(),
                None => {
                    let path = obj.path.clone();
                    let (_, _, entries) = self.read_object(&path).await?;
                    let entries = Arc::new(entries);
                    self.cached_entries += entries.len();
                    self.partitions.get_mut(&p).unwrap()[i].entries = Some(entries.clone());
                    entries
                }
            };
            self.partitions.get_mut(&p).unwrap()[i].last_used = self.tick;
            self.evict();
            if let Ok(at) = entries.binary_search_by(|e| e.id.cmp(id)) {
                return Ok(Some(entries[at]));
            }
        }
        Ok(None)
    }

    /// Records where a chunk was stored. Call only after its pack is in the store.
    pub fn insert(&mut self, entry: IndexEntry) {
        self.pending.insert(entry.id, entry);
    }

    /// Whether enough entries are pending that [`ChunkIndex::flush`] should run.
    pub fn flush_due(&self) -> bool {
        self.pending.len() >= self.config.flush_entries
    }

    /// Writes pending entries as one index object per partition; returns how many objects were written.
    pub async fn flush(&mut self) -> Result<usize> {
        let pending = std::mem::take(&mut self.pending);
        let mut by_partition: BTreeMap<u8, Vec<IndexEntry>> = BTreeMap::new();
        for e in pending.into_values() {
            by_partition.entry(e.id.0[0]).or_default().push(e);
        }
        let written = by_partition.len();
        for (p, entries) in by_partition {
            let (id, bytes) = encode_index_object(&self.key, p, &entries);
            let path = self.scope.index_object(p, &id);
            self.store.put(&path, PutPayload::from(bytes)).await.map_err(|e| Error::store(&path, e))?;
            if let Some(objects) = self.partitions.get_mut(&p) {
                let mut bloom = Bloom::with_capacity(entries.len());
                entries.iter().for_each(|e| bloom.insert(&e.id));
                self.cached_entries += entries.len();
                objects.push(IndexObject { path, bloom, entries: Some(Arc::new(entries)), last_used: self.tick });
            }
        }
        self.evict();
        Ok(written)
    }

    /// Merges each partition that has several index objects into one. The merged object is written before
    /// the old ones are deleted, so a concurrent reader always finds every entry in some object. Safe
    /// beside backups (an object they write meanwhile is not listed, so not deleted) and beside another
    /// compaction (an object that vanishes before it is read was merged by the other one, whose merged
    /// object holds its entries: it is skipped, and only objects read here are deleted). Not safe beside
    /// prune's index rewrite, which may remove entries a merge here would keep: run it under the prune
    /// lock ([`super::prune::compact_index`]).
    pub async fn compact(&mut self) -> Result<CompactStats> {
        self.flush().await?;
        let mut stats = CompactStats::default();
        for p in 0..=255u8 {
            let paths = self.list_partition(p).await?;
            if paths.len() < 2 {
                continue;
            }
            let mut merged = BTreeMap::new();
            let mut read = Vec::with_capacity(paths.len());
            for path in &paths {
                match self.read_object(path).await {
                    Ok((_, _, entries)) => merged.extend(entries.into_iter().map(|e| (e.id, e))),
                    Err(Error::Missing { .. }) => continue,
                    Err(e) => return Err(e),
                }
                read.push(path.clone());
            }
            if read.len() < 2 {
                continue;
            }
            let entries: Vec<_> = merged.into_values().collect();
            let (id, bytes) = encode_index_object(&self.key, p, &entries);
            let new_path = self.scope.index_object(p, &id);
            self.store.put(&new_path, PutPayload::from(bytes)).await.map_err(|e| Error::store(&new_path, e))?;
            for path in read.iter().filter(|p| **p != new_path) {
                match self.store.delete(path).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => stats.objects_deleted += 1,
                    Err(e) => return Err(Error::store(path, e)),
                }
            }
            stats.partitions_merged += 1;
            stats.entries += entries.len() as u64;
            self.forget_partition(p);
        }
        Ok(stats)
    }

    /// What the index holds in memory now.
    pub fn memory(&self) -> IndexMemory {
        let objects = self.partitions.values().flatten();
        IndexMemory {
            partitions_loaded: self.partitions.len(),
            objects_known: self.partitions.values().map(Vec::len).sum(),
            bloom_bytes: objects.map(|o| o.bloom.size()).sum(),
            cached_entries: self.cached_entries,
            pending_entries: self.pending.len(),
        }
    }

    async fn list_partition(&self, p: u8) -> Result<Vec<Path>> {
        let prefix = self.scope.index_partition_prefix(p);
        let metas: Vec<_> = self.store.list(Some(&prefix)).try_collect().await.map_err(|e| Error::store(&prefix, e))?;
        let mut paths: Vec<Path> = metas.into_iter().map(|m| m.location).collect();
        paths.sort();
        Ok(paths)
    }

    async fn read_object(&mut self, path: &Path) -> Result<(u8, Bloom, Vec<IndexEntry>)> {
        self.objects_read += 1;
        let bytes = get_bytes(self.store.as_ref(), path).await?;
        if object_id_of(path) != Some(ObjectId::of(&bytes)) {
            return Err(Error::corrupt(path, "bytes do not hash to the object's name"));
        }
        decode_index_object(&self.key, path.as_ref(), &bytes)
    }

    async fn load_partition(&mut self, p: u8) -> Result<()> {
        if self.partitions.contains_key(&p) {
            return Ok(());
        }
        let mut objects = Vec::new();
        for path in self.list_partition(p).await? {
            let (partition, bloom, entries) = self.read_object(&path).await?;
            if partition != p {
                return Err(Error::corrupt(&path, format!("index object of partition {partition:02x} under {p:02x}")));
            }
            self.cached_entries += entries.len();
            objects.push(IndexObject { path, bloom, entries: Some(Arc::new(entries)), last_used: self.tick });
        }
        self.partitions.insert(p, objects);
        self.evict();
        Ok(())
    }

    /// Drops the least recently used cached entries until the cache is within budget.
    fn evict(&mut self) {
        while self.cached_entries > self.config.cache_entries {
            let victim =
                self.partitions.values_mut().flatten().filter(|o| o.entries.is_some()).min_by_key(|o| o.last_used);
            let Some(victim) = victim else { break };
            self.cached_entries -= victim.entries.take().map_or(0, |e| e.len());
        }
    }
}

/// Recreates the chunk index of a share from its pack headers: writes fresh index objects, then deletes
/// the old ones. Returns the number of entries.
pub async fn rebuild_from_packs(store: Arc<dyn ObjectStore>, scope: &Scope, key: &TenantKey) -> Result<usize> {
    // Only chunk-index objects (`index/{2 hex}/{id}`): a node index kept in the same root uses
    // `index/{snapshots,data,summaries,runs}/...` and must never be touched here.
    let old: Vec<_> = store
        .list(Some(&scope.index_prefix()))
        .map_ok(|m| m.location)
        .try_filter(|p| std::future::ready(is_chunk_index_object(p)))
        .try_collect()
        .await
        .map_err(|e| Error::store(scope.index_prefix(), e))?;
    let packs: Vec<_> = store
        .list(Some(&scope.packs_prefix()))
        .try_collect()
        .await
        .map_err(|e| Error::store(scope.packs_prefix(), e))?;
    let mut index = ChunkIndex::new(store.clone(), scope.clone(), key.clone(), IndexConfig::default());
    let mut count = 0;
    for meta in packs {
        let pack_id = object_id_of(&meta.location)
            .ok_or_else(|| Error::corrupt(&meta.location, "pack name is not an object id"))?;
        for blob in read_pack_header(store.as_ref(), key, &meta.location, meta.size).await? {
            index.insert(IndexEntry::new(pack_id, &blob));
            count += 1;
        }
        if index.flush_due() {
            index.flush().await?;
        }
    }
    index.flush().await?;
    let fresh: std::collections::HashSet<_> = store
        .list(Some(&scope.index_prefix()))
        .map_ok(|m| m.location)
        .try_collect()
        .await
        .map_err(|e| Error::store(scope.index_prefix(), e))?;
    for path in old.iter().filter(|p| !fresh.contains(*p)) {
        store.delete(path).await.map_err(|e| Error::store(path, e))?;
    }
    Ok(count)
}

/// Is `path` a chunk-index object, `.../index/{partition: 2 lower-case hex digits}/{object id}`?
fn is_chunk_index_object(path: &Path) -> bool {
    let parts: Vec<&str> = path.as_ref().rsplit('/').take(3).collect();
    matches!(parts.as_slice(), [id, partition, "index"]
        if partition.len() == 2 && partition.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) && object_id_of(path).is_some() && !id.is_empty())
}

/// Reads a pack's header with two ranged reads (the length, then the header).
pub async fn read_pack_header(
    store: &dyn ObjectStore,
    key: &TenantKey,
    path: &Path,
    size: u64,
) -> Result<Vec<BlobEntry>> {
    if size < 4 {
        return Err(Error::corrupt(path, "too short for a pack"));
    }
    let last4 = store.get_range(path, size - 4..size).await.map_err(|e| Error::store(path, e))?;
    let tail_len = pack::header_tail_len(&last4[..].try_into().unwrap()) as u64;
    if tail_len > size {
        return Err(Error::corrupt(path, "header length exceeds the pack"));
    }
    let tail = store.get_range(path, size - tail_len..size).await.map_err(|e| Error::store(path, e))?;
    pack::read_header(key, path.as_ref(), &tail, size)
}
