//! [`Repository`]: one writer's handle on one share of one tenant in an object store.
//!
//! It owns the tenant key, the chunk index and the open pack. Content written through it is deduplicated
//! against everything the share already holds; nothing is shared with other shares or tenants (see
//! `docs/repository.md`, "Deduplication scope"). Several processes may write to one share at once: each
//! writes its own packs and index objects, and a chunk both store twice is merely stored twice.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use super::bundle::{self, BundleMember, BundlePolicy, SealedBundle};
use super::chunker::{Chunker, Chunking};
use super::crypto;
use super::error::{Error, Result};
use super::generated::NodeVersion;
use super::id::{ChunkId, ObjectId};
use super::index::{ChunkIndex, IndexConfig, IndexEntry};
use super::keys::{MasterKey, TenantKey, get_bytes, load_or_create_tenant_key};
use super::layout::{Scope, object_id_of};
use super::manifest::{self, BackupManifest};
use super::metadata;
use super::pack::{self, BlobEntry, PackWriter};
use super::pool::CpuPool;
use crate::hash::QuickXorHash;

/// Tunables of a [`Repository`]. Sizes in bytes.
#[derive(Clone, Copy, Debug)]
pub struct RepositoryConfig {
    pub chunking: Chunking,
    /// A pack is uploaded once its blobs reach this size.
    pub pack_target_size: usize,
    pub index: IndexConfig,
    pub bundles: BundlePolicy,
}

impl Default for RepositoryConfig {
    fn default() -> Self {
        Self {
            chunking: Chunking::DEFAULT,
            pack_target_size: pack::DEFAULT_TARGET_SIZE,
            index: IndexConfig::default(),
            bundles: BundlePolicy::default(),
        }
    }
}

/// Counters of what a [`Repository`] wrote. Bytes are plaintext unless named `stored`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Chunks offered to [`Repository::store_chunk`].
    pub chunks: u64,
    /// Of those, chunks the share did not have yet.
    pub chunks_new: u64,
    /// Plaintext bytes offered as chunks.
    pub bytes: u64,
    /// Plaintext bytes of new chunks.
    pub bytes_new: u64,
    /// Bytes of sealed blobs written into packs, and of sealed bundles (after compression and encryption).
    pub bytes_stored: u64,
    pub packs: u64,
    pub bundles: u64,
    /// Objects put into the store, of every kind.
    pub objects: u64,
}

/// A file's content as stored in chunks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileContent {
    /// Bytes.
    pub size: u64,
    pub chunk_ids: Vec<ChunkId>,
    /// Plaintext length of each chunk.
    pub chunk_lengths: Vec<u32>,
    /// Full QuickXorHash of the content.
    pub xorhash: [u8; 20],
}

/// Where a small file's content went: see [`Repository::store_small_files`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SmallFile {
    Chunks(FileContent),
    Bundle { bundle: ObjectId, member: BundleMember, xorhash: [u8; 20] },
}

impl FileContent {
    /// No content yet (an empty file).
    pub fn empty() -> FileContent {
        FileContent { size: 0, chunk_ids: Vec::new(), chunk_lengths: Vec::new(), xorhash: [0; 20] }
    }

    /// Appends `chunks` (the next chunks of the file, in order) to the file's list.
    pub fn append(&mut self, chunks: &[Chunk]) {
        for c in chunks {
            self.size += c.data.len() as u64;
            self.chunk_ids.push(c.id);
            self.chunk_lengths.push(c.data.len() as u32);
        }
    }
}

/// One chunk of content: its id (keyed BLAKE3 of the plaintext) and its plaintext.
#[derive(Clone, Debug)]
pub struct Chunk {
    pub id: ChunkId,
    pub data: Bytes,
}

/// Cuts one file's content into chunks and hashes them (chunk ids, QuickXorHash). CPU work only, no
/// repository access, so it runs on the pool ([`Repository::pool`]) while the writer stores the chunks
/// of earlier pieces with [`Repository::store_chunks`].
pub struct FileChunker {
    chunker: Chunker,
    xor: QuickXorHash,
    key: TenantKey,
}

impl FileChunker {
    pub fn new(key: TenantKey, chunking: Chunking) -> FileChunker {
        FileChunker { chunker: Chunker::new(chunking), xor: QuickXorHash::new(), key }
    }

    /// Adds the next piece of content (any split); returns the chunks that are now final.
    pub fn push(&mut self, data: &[u8]) -> Vec<Chunk> {
        self.xor.update(data);
        let mut out = Vec::new();
        let key = &self.key;
        self.chunker.push_chunks(data, |c| out.push(Chunk { id: key.chunk_id(c), data: Bytes::copy_from_slice(c) }));
        out
    }

    /// The last chunks, and the QuickXorHash of the whole content.
    pub fn finish(self) -> (Vec<Chunk>, [u8; 20]) {
        let mut out = Vec::new();
        let key = &self.key;
        self.chunker.finish_chunks(|c| out.push(Chunk { id: key.chunk_id(c), data: Bytes::copy_from_slice(c) }));
        (out, self.xor.digest())
    }
}

/// Streams one file into the repository: [`FileWriter::write`] in any split, then [`FileWriter::finish`].
/// Computes the QuickXorHash on the way, so the content is read once. Chunking and hashing run on the
/// repository's pool, one piece at a time.
pub struct FileWriter {
    /// `None` only while a piece is on the pool.
    chunker: Option<FileChunker>,
    content: FileContent,
}

impl FileWriter {
    pub async fn write(&mut self, repo: &mut Repository, data: &[u8]) -> Result<()> {
        let mut chunker = self.chunker.take().expect("a FileWriter is not written to concurrently");
        let data = data.to_vec();
        let (chunker, chunks) = repo
            .pool
            .run(move || {
                let chunks = chunker.push(&data);
                (chunker, chunks)
            })
            .await;
        self.chunker = Some(chunker);
        self.content.append(&chunks);
        repo.store_chunks(chunks).await
    }

    pub async fn finish(mut self, repo: &mut Repository) -> Result<FileContent> {
        let chunker = self.chunker.take().expect("a FileWriter is not written to concurrently");
        let (chunks, xorhash) = repo.pool.run(move || chunker.finish()).await;
        self.content.append(&chunks);
        repo.store_chunks(chunks).await?;
        self.content.xorhash = xorhash;
        Ok(self.content)
    }
}

/// A small file's content as one chunk (small files need no chunker), and its QuickXorHash.
pub fn small_file_chunk(key: &TenantKey, data: Bytes) -> (Vec<Chunk>, [u8; 20]) {
    let mut x = QuickXorHash::new();
    x.update(&data);
    let chunks = if data.is_empty() { Vec::new() } else { vec![Chunk { id: key.chunk_id(&data), data }] };
    (chunks, x.digest())
}

/// A writer's handle on `{tenant}/{share}/` (see the module docs).
pub struct Repository {
    store: Arc<dyn ObjectStore>,
    scope: Scope,
    key: TenantKey,
    config: RepositoryConfig,
    index: ChunkIndex,
    pack: PackWriter,
    pool: CpuPool,
    stats: WriteStats,
}

impl Repository {
    /// Opens the share `share` of `tenant`, creating the tenant key on first use.
    /// A master key other than the one the tenant key was wrapped with gives [`Error::WrongMasterKey`].
    pub async fn open(
        store: Arc<dyn ObjectStore>,
        master: &MasterKey,
        tenant: &str,
        share: &str,
        config: RepositoryConfig,
    ) -> Result<Self> {
        let scope = Scope::new(tenant, share)?;
        let key = load_or_create_tenant_key(store.as_ref(), master, tenant).await?;
        let index = ChunkIndex::new(store.clone(), scope.clone(), key.clone(), config.index);
        Ok(Self {
            store,
            scope,
            key,
            config,
            index,
            pack: PackWriter::new(config.pack_target_size),
            pool: CpuPool::default(),
            stats: WriteStats::default(),
        })
    }

    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    pub fn key(&self) -> &TenantKey {
        &self.key
    }

    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    pub fn config(&self) -> &RepositoryConfig {
        &self.config
    }

    pub fn stats(&self) -> WriteStats {
        self.stats
    }

    pub fn index(&mut self) -> &mut ChunkIndex {
        &mut self.index
    }

    /// The pool content processing runs on (one worker per core unless [`Repository::set_cpu_workers`]).
    pub fn pool(&self) -> &CpuPool {
        &self.pool
    }

    /// Runs content processing on `workers` threads at most from now on.
    pub fn set_cpu_workers(&mut self, workers: usize) {
        self.pool = CpuPool::new(workers);
    }

    /// Stores one chunk unless the share already has it; returns its id.
    pub async fn store_chunk(&mut self, data: &[u8]) -> Result<ChunkId> {
        let id = self.key.chunk_id(data);
        self.store_chunks(vec![Chunk { id, data: Bytes::copy_from_slice(data) }]).await?;
        Ok(id)
    }

    /// Stores the chunks the share does not have yet: a chunk already in the open pack, in the chunk
    /// index or earlier in `chunks` is only counted. The new ones are compressed and sealed on the pool,
    /// several at once, then appended to the open pack (uploaded when full).
    pub async fn store_chunks(&mut self, chunks: Vec<Chunk>) -> Result<()> {
        let mut new: Vec<Chunk> = Vec::new();
        for c in chunks {
            self.stats.chunks += 1;
            self.stats.bytes += c.data.len() as u64;
            if new.iter().any(|n| n.id == c.id) || self.pack.contains(&c.id) || self.index.get(&c.id).await?.is_some() {
                continue;
            }
            new.push(c);
        }
        let key = self.key.clone();
        let sealed = self
            .pool
            .map(new, move |c| {
                let (blob, compression) = pack::seal_blob(&key, &c.id, &c.data);
                let entry = BlobEntry {
                    id: c.id,
                    offset: 0,
                    length: blob.len() as u32,
                    raw_length: c.data.len() as u32,
                    compression,
                };
                (entry, blob)
            })
            .await;
        for (entry, blob) in sealed {
            self.pack.add_sealed(&entry, &blob);
            self.stats.chunks_new += 1;
            self.stats.bytes_new += entry.raw_length as u64;
            self.stats.bytes_stored += entry.length as u64;
            if self.pack.is_full() {
                self.flush_pack().await?;
            }
        }
        Ok(())
    }

    /// A writer that streams one file's content into chunks.
    pub fn file_writer(&self) -> FileWriter {
        FileWriter {
            chunker: Some(FileChunker::new(self.key.clone(), self.config.chunking)),
            content: FileContent::empty(),
        }
    }

    /// A cutter of one file's content into hashed chunks, for the pool (see [`FileChunker`]).
    pub fn file_chunker(&self) -> FileChunker {
        FileChunker::new(self.key.clone(), self.config.chunking)
    }

    /// Stores a whole file held in memory.
    pub async fn store_file(&mut self, data: &[u8]) -> Result<FileContent> {
        let mut w = self.file_writer();
        w.write(self, data).await?;
        w.finish(self).await
    }

    /// Stores a group of small files (a backup's are a bucket's), applying the bundle policy: a group of at
    /// least `min_files` goes into TAR bundles (several if they exceed `target_size`), a smaller group into
    /// packs, one chunk per file. Files above `max_file_size` are the caller's to store with
    /// [`Repository::store_file`].
    pub async fn store_small_files(&mut self, files: &[&[u8]]) -> Result<Vec<SmallFile>> {
        debug_assert!(files.iter().all(|f| self.config.bundles.is_small(f.len() as u64)));
        if !self.config.bundles.should_bundle(files.len()) {
            let mut out = Vec::new();
            for f in files {
                out.push(SmallFile::Chunks(self.store_small_file(Bytes::copy_from_slice(f)).await?));
            }
            return Ok(out);
        }
        let mut out = Vec::with_capacity(files.len());
        let mut run: Vec<Bytes> = Vec::new();
        let mut run_bytes = 0usize;
        for (i, f) in files.iter().enumerate() {
            run.push(Bytes::copy_from_slice(f));
            run_bytes += f.len();
            if run_bytes >= self.config.bundles.target_size || i + 1 == files.len() {
                let key = self.key.clone();
                let run = std::mem::take(&mut run);
                let sealed = self.pool.run(move || bundle::seal_bundle(&key, run)).await;
                out.extend(self.put_bundle(sealed).await?);
                run_bytes = 0;
            }
        }
        Ok(out)
    }

    /// Stores one small file in packs as one chunk (hashed on the pool).
    pub async fn store_small_file(&mut self, data: Bytes) -> Result<FileContent> {
        let key = self.key.clone();
        let (chunks, xorhash) = self.pool.run(move || small_file_chunk(&key, data)).await;
        let mut content = FileContent::empty();
        content.append(&chunks);
        content.xorhash = xorhash;
        self.store_chunks(chunks).await?;
        Ok(content)
    }

    /// Uploads a bundle sealed by [`bundle::seal_bundle`]; where each of its files went, in order.
    pub async fn put_bundle(&mut self, sealed: SealedBundle) -> Result<Vec<SmallFile>> {
        let id = sealed.id;
        let stored = sealed.bytes.len() as u64;
        self.put(&self.scope.bundle(&id), sealed.bytes).await?;
        self.stats.bundles += 1;
        self.stats.bytes_stored += stored;
        Ok(sealed
            .members
            .into_iter()
            .zip(sealed.xorhashes)
            .map(|(member, xorhash)| SmallFile::Bundle { bundle: id, member, xorhash })
            .collect())
    }

    /// The content of a bundle member.
    pub async fn read_bundle_member(&self, bundle: &ObjectId, member: &BundleMember) -> Result<Vec<u8>> {
        let path = self.scope.bundle(bundle);
        let tar = self.open_bundle(bundle).await?;
        Ok(bundle::member_data(&self.key, path.as_ref(), &tar, member)?.to_vec())
    }

    /// A bundle's TAR, after checking the object hashes to its id.
    pub async fn open_bundle(&self, bundle: &ObjectId) -> Result<Vec<u8>> {
        let path = self.scope.bundle(bundle);
        let bytes = self.get_checked(&path).await?;
        bundle::open_bundle(&self.key, path.as_ref(), &bytes)
    }

    /// A chunk's plaintext, checked against its id. A chunk the index does not know is looked up once
    /// more after listing its partition again: another writer may have indexed it since this handle
    /// loaded the partition.
    pub async fn read_chunk(&mut self, id: &ChunkId) -> Result<Vec<u8>> {
        if let Some(r) = self.pack.read(&self.key, id) {
            return r;
        }
        let entry = self.locate_chunk(id).await?;
        self.read_blob(&entry).await
    }

    /// Where chunk `id` is stored, from the chunk index (listing its partition again if the index does
    /// not know it, as [`Repository::read_chunk`] does). Chunks of the open pack are not found here.
    pub async fn locate_chunk(&mut self, id: &ChunkId) -> Result<IndexEntry> {
        let entry = match self.index.get(id).await? {
            Some(e) => Some(e),
            None => self.index.get_fresh(id).await?,
        };
        entry.ok_or_else(|| Error::UnknownChunk {
            chunk: id.to_hex(),
            scope: format!("{}/{}", self.scope.tenant(), self.scope.share()),
        })
    }

    /// A reader of blobs and bundles that needs no access to the repository (cheap to clone): for
    /// reads in flight at once, decrypted on the pool.
    pub fn reader(&self) -> ContentReader {
        ContentReader {
            store: self.store.clone(),
            scope: self.scope.clone(),
            key: self.key.clone(),
            pool: self.pool.clone(),
        }
    }

    /// Reads and opens the blob an index entry points to.
    pub async fn read_blob(&self, entry: &IndexEntry) -> Result<Vec<u8>> {
        let path = self.scope.pack(&entry.pack);
        let range = entry.offset as u64..entry.offset as u64 + entry.length as u64;
        let blob = self.store.get_range(&path, range).await.map_err(|e| Error::store(&path, e))?;
        pack::open_blob(&self.key, path.as_ref(), &entry.blob(), &blob)
    }

    /// A file's content from its chunk ids, in order.
    pub async fn read_file(&mut self, chunk_ids: &[ChunkId]) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        for id in chunk_ids {
            out.extend_from_slice(&self.read_chunk(id).await?);
        }
        Ok(out)
    }

    /// Uploads the open pack, then records its chunks in the index (flushing the index if due).
    async fn flush_pack(&mut self) -> Result<()> {
        if self.pack.is_empty() {
            return Ok(());
        }
        let mut full = std::mem::replace(&mut self.pack, PackWriter::new(self.config.pack_target_size));
        let key = self.key.clone();
        let (id, bytes, entries) = self.pool.run(move || full.finish(&key)).await;
        self.put(&self.scope.pack(&id), bytes).await?;
        self.stats.packs += 1;
        for e in &entries {
            self.index.insert(IndexEntry::new(id, e));
        }
        if self.index.flush_due() {
            self.stats.objects += self.index.flush().await? as u64;
        }
        Ok(())
    }

    /// Uploads the open pack and writes all pending index entries. After this, everything stored so far is
    /// durable and findable by other writers.
    pub async fn flush(&mut self) -> Result<()> {
        self.flush_pack().await?;
        self.stats.objects += self.index.flush().await? as u64;
        Ok(())
    }

    /// Stores one SDDL string once; returns its permission id.
    pub async fn put_permission(&mut self, sddl: &str) -> Result<ObjectId> {
        let (id, bytes) = metadata::seal_permission(&self.key, sddl);
        let path = self.scope.permission(&id);
        if self.store.head(&path).await.is_err() {
            self.put(&path, bytes).await?;
        }
        Ok(id)
    }

    pub async fn get_permission(&self, id: &ObjectId) -> Result<String> {
        let path = self.scope.permission(id);
        let bytes = get_bytes(self.store.as_ref(), &path).await?;
        metadata::open_permission(&self.key, path.as_ref(), id, &bytes)
    }

    /// Stores a batch of node versions as one metadata object; returns its id.
    pub async fn put_metadata(&mut self, versions: Vec<NodeVersion>) -> Result<ObjectId> {
        let key = self.key.clone();
        let (id, bytes) = self.pool.run(move || metadata::seal_metadata(&key, versions)).await;
        self.put(&self.scope.metadata(&id), bytes).await?;
        Ok(id)
    }

    pub async fn get_metadata(&self, id: &ObjectId) -> Result<Vec<NodeVersion>> {
        let path = self.scope.metadata(id);
        let bytes = self.get_checked(&path).await?;
        metadata::open_metadata(&self.key, path.as_ref(), &bytes)
    }

    /// Commits a snapshot: flushes packs and index, checks every object the manifest names exists, then
    /// writes the manifest (never overwriting one). Returns the manifest's object key.
    pub async fn commit(&mut self, manifest: &BackupManifest) -> Result<Path> {
        if manifest.tenant_id != self.scope.tenant() || manifest.share_id != self.scope.share() {
            return Err(Error::Invalid(format!(
                "manifest of {}/{} committed to {}/{}",
                manifest.tenant_id,
                manifest.share_id,
                self.scope.tenant(),
                self.scope.share()
            )));
        }
        self.flush().await?;
        for path in self.manifest_objects(manifest)? {
            self.store.head(&path).await.map_err(|e| Error::store(&path, e))?;
        }
        let path = self.scope.snapshot(&manifest.snapshot_id);
        let bytes = crypto::seal_object(self.key.seal_key(), manifest::MAGIC, &manifest.to_json());
        let opts = PutOptions { mode: PutMode::Create, ..Default::default() };
        self.store.put_opts(&path, PutPayload::from(bytes), opts).await.map_err(|e| Error::store(&path, e))?;
        self.stats.objects += 1;
        Ok(path)
    }

    /// Object keys a manifest names (metadata, permissions, bundles).
    pub fn manifest_objects(&self, m: &BackupManifest) -> Result<Vec<Path>> {
        let parse = |s: &String| {
            ObjectId::from_hex(s).ok_or_else(|| Error::Invalid(format!("manifest names a malformed object id {s:?}")))
        };
        let mut out = Vec::new();
        for s in &m.metadata {
            out.push(self.scope.metadata(&parse(s)?));
        }
        for s in &m.permissions {
            out.push(self.scope.permission(&parse(s)?));
        }
        for s in &m.bundles {
            out.push(self.scope.bundle(&parse(s)?));
        }
        Ok(out)
    }

    /// Reads a snapshot's manifest.
    pub async fn load_manifest(&self, snapshot_id: &str) -> Result<BackupManifest> {
        let path = self.scope.snapshot(snapshot_id);
        let bytes = get_bytes(self.store.as_ref(), &path).await?;
        let json = crypto::open_object(self.key.seal_key(), manifest::MAGIC, &bytes, path.as_ref())?;
        let m = BackupManifest::from_json(path.as_ref(), &json)?;
        // A manifest is bound to where it is stored: one copied to another share's (or, with the same
        // key, tenant's) path, or under another snapshot id, is refused.
        let (tenant, share) = (self.scope.tenant(), self.scope.share());
        if m.tenant_id != tenant || m.share_id != share || m.snapshot_id != snapshot_id {
            return Err(Error::corrupt(
                &path,
                format!(
                    "manifest is of {}/{} snapshot {}, but is stored as {tenant}/{share} snapshot {snapshot_id}",
                    m.tenant_id, m.share_id, m.snapshot_id
                ),
            ));
        }
        Ok(m)
    }

    /// Snapshot ids of the share, oldest first.
    pub async fn list_snapshots(&self) -> Result<Vec<String>> {
        let prefix = self.scope.snapshots_prefix();
        let metas: Vec<_> = self.store.list(Some(&prefix)).try_collect().await.map_err(|e| Error::store(&prefix, e))?;
        let mut ids: Vec<String> = metas.iter().filter_map(|m| m.location.filename().map(str::to_string)).collect();
        ids.sort();
        Ok(ids)
    }

    /// Pack object keys of the share.
    pub async fn list_packs(&self) -> Result<Vec<(Path, u64)>> {
        let prefix = self.scope.packs_prefix();
        let metas: Vec<_> = self.store.list(Some(&prefix)).try_collect().await.map_err(|e| Error::store(&prefix, e))?;
        Ok(metas.into_iter().map(|m| (m.location, m.size)).collect())
    }

    /// Distinct pack ids the given chunks live in (via the index).
    pub async fn packs_of(&mut self, chunks: &[ChunkId]) -> Result<HashSet<ObjectId>> {
        let mut out = HashSet::new();
        for id in chunks {
            if let Some(e) = self.index.get(id).await? {
                out.insert(e.pack);
            }
        }
        Ok(out)
    }

    /// Puts an object (content-addressed objects may be put again with the same bytes).
    async fn put(&mut self, path: &Path, bytes: Vec<u8>) -> Result<()> {
        self.store.put(path, PutPayload::from(bytes)).await.map_err(|e| Error::store(path, e))?;
        self.stats.objects += 1;
        Ok(())
    }

    /// Gets a content-addressed object and checks its bytes hash to its name.
    pub async fn get_checked(&self, path: &Path) -> Result<bytes::Bytes> {
        let bytes = get_bytes(self.store.as_ref(), path).await?;
        if object_id_of(path) != Some(ObjectId::of(&bytes)) {
            return Err(Error::corrupt(path, "bytes do not hash to the object's name"));
        }
        Ok(bytes)
    }
}

/// Reads blobs and bundles of one share without the [`Repository`] (so many reads can be in flight at
/// once): the bytes come from the store, checking and decryption run on the pool.
#[derive(Clone)]
pub struct ContentReader {
    store: Arc<dyn ObjectStore>,
    scope: Scope,
    key: TenantKey,
    pool: CpuPool,
}

impl ContentReader {
    /// The plaintext of the blob `entry` points to, checked against its chunk id.
    pub async fn read_blob(&self, entry: &IndexEntry) -> Result<Vec<u8>> {
        let path = self.scope.pack(&entry.pack);
        let range = entry.offset as u64..entry.offset as u64 + entry.length as u64;
        let blob = self.store.get_range(&path, range).await.map_err(|e| Error::store(&path, e))?;
        let (key, blob_entry) = (self.key.clone(), entry.blob());
        self.pool.run(move || pack::open_blob(&key, path.as_ref(), &blob_entry, &blob)).await
    }

    /// A bundle's TAR, after checking the object hashes to its id.
    pub async fn open_bundle(&self, bundle: &ObjectId) -> Result<Vec<u8>> {
        let path = self.scope.bundle(bundle);
        let bytes = get_bytes(self.store.as_ref(), &path).await?;
        let key = self.key.clone();
        self.pool
            .run(move || {
                if object_id_of(&path) != Some(ObjectId::of(&bytes)) {
                    return Err(Error::corrupt(&path, "bytes do not hash to the object's name"));
                }
                bundle::open_bundle(&key, path.as_ref(), &bytes)
            })
            .await
    }

    /// The node versions of a metadata object, checked against its id. Decrypted here, not on the pool:
    /// a caller that also has pool jobs parked (not being polled) must never wait for a pool slot.
    pub async fn get_metadata(&self, id: &ObjectId) -> Result<Vec<NodeVersion>> {
        let path = self.scope.metadata(id);
        let bytes = get_bytes(self.store.as_ref(), &path).await?;
        if object_id_of(&path) != Some(ObjectId::of(&bytes)) {
            return Err(Error::corrupt(&path, "bytes do not hash to the object's name"));
        }
        metadata::open_metadata(&self.key, path.as_ref(), &bytes)
    }

    pub fn key(&self) -> &TenantKey {
        &self.key
    }

    pub fn scope(&self) -> &Scope {
        &self.scope
    }
}

/// Recently opened bundles (decrypted TARs), so the members of one bundle (met together once a bucket's
/// files are grouped by bundle) are read from one opening rather than one per member. Holds at most
/// [`BundleCache::CAPACITY`] bundles (up to 4 MiB each): restore and verify share it. Members are met
/// bundle by bundle, so the files in flight at once span two or three bundles.
#[derive(Default)]
pub struct BundleCache {
    recent: std::collections::VecDeque<(ObjectId, std::sync::Arc<Vec<u8>>)>,
}

impl BundleCache {
    pub const CAPACITY: usize = 4;

    /// Bundle `id`, decrypted: from the cache, or opened (and then cached, the oldest dropped).
    pub async fn tar(&mut self, repo: &Repository, id: &ObjectId) -> Result<std::sync::Arc<Vec<u8>>> {
        if let Some(at) = self.recent.iter().position(|(b, _)| b == id)
            && let Some(hit) = self.recent.remove(at)
        {
            self.recent.push_front(hit.clone());
            return Ok(hit.1);
        }
        let tar = std::sync::Arc::new(repo.open_bundle(id).await?);
        self.recent.push_front((*id, tar.clone()));
        self.recent.truncate(Self::CAPACITY);
        Ok(tar)
    }
}
