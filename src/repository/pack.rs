//! Packs: many encrypted chunk blobs in one object, with an encrypted header that lists them.
//!
//! Pack layout (all integers little-endian):
//!
//! ```text
//! blob 0 | blob 1 | ... | blob n-1 | header envelope | header envelope length (u32)
//! ```
//!
//! - **blob**: the chunk's plaintext, compressed with zstd when that makes it smaller, then sealed
//!   (`nonce 24 | ciphertext | tag 16`, XChaCha20-Poly1305, tenant encryption key) with AAD = the 32-byte
//!   chunk id. A blob moved to another chunk id therefore fails to decrypt.
//! - **header envelope**: a sealed object (magic `AFBH`, see [`super::crypto`]) whose plaintext is
//!   `count (u32)` followed by `count` entries of 45 bytes:
//!   `chunk id (32) | offset (u32) | length (u32) | raw length (u32) | compression (u8: 0 none, 1 zstd)`,
//!   where offset and length locate the sealed blob in the pack and raw length is the plaintext length.
//! - The pack is named by the BLAKE3 hash of all its bytes: `{tenant}/{share}/packs/{id[0..2]}/{id}`.
//!
//! A pack is self-describing: the chunk index can be rebuilt from pack headers alone. Packs are written
//! once and never modified.

use super::crypto::{self, Compression};
use super::error::{Error, Result};
use super::id::{ChunkId, ObjectId};
use super::keys::TenantKey;

const HEADER_MAGIC: &[u8; 4] = b"AFBH";
/// Bytes of one header entry.
pub const HEADER_ENTRY_LEN: usize = 32 + PLACE_LEN;

/// Default pack size target: 16 MiB.
pub const DEFAULT_TARGET_SIZE: usize = 16 << 20;

/// Where one chunk's blob is in its pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobEntry {
    pub id: ChunkId,
    /// Byte offset of the sealed blob in the pack.
    pub offset: u32,
    /// Length of the sealed blob in bytes.
    pub length: u32,
    /// Length of the chunk's plaintext in bytes.
    pub raw_length: u32,
    pub compression: Compression,
}

/// Bytes of a blob's place after its chunk id: offset, length, raw length (u32 each), compression.
pub(super) const PLACE_LEN: usize = 13;

impl BlobEntry {
    /// The header entry: the chunk id, then [`Self::encode_place`].
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.id.0);
        self.encode_place(out);
    }

    fn decode(b: &[u8]) -> Option<Self> {
        Self::decode_place(ChunkId::from_slice(&b[..32])?, &b[32..])
    }

    /// Offset, length and raw length (u32 LE each), compression (one byte): how pack headers and chunk
    /// index entries end.
    pub(super) fn encode_place(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(&self.length.to_le_bytes());
        out.extend_from_slice(&self.raw_length.to_le_bytes());
        out.push(self.compression as u8);
    }

    /// The entry of chunk `id` from the [`PLACE_LEN`] bytes [`Self::encode_place`] wrote.
    pub(super) fn decode_place(id: ChunkId, b: &[u8]) -> Option<Self> {
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
        Some(Self {
            id,
            offset: u32_at(0),
            length: u32_at(4),
            raw_length: u32_at(8),
            compression: Compression::from_byte(*b.get(12)?)?,
        })
    }
}

/// Seals one chunk as a blob (see the module docs); returns the blob and how its plaintext was stored.
pub fn seal_blob(key: &TenantKey, id: &ChunkId, plaintext: &[u8]) -> (Vec<u8>, Compression) {
    let (compression, body) = crypto::maybe_compress(plaintext);
    (crypto::seal(key.seal_key(), &id.0, &body), compression)
}

/// Opens a blob read from `pack` at `entry`: decrypts, decompresses, and checks the plaintext hashes to
/// the chunk id. `pack` names the object in errors.
pub fn open_blob(key: &TenantKey, pack: &str, entry: &BlobEntry, blob: &[u8]) -> Result<Vec<u8>> {
    let what =
        |reason: &str| Error::corrupt(pack, format!("blob of chunk {} at offset {}: {reason}", entry.id, entry.offset));
    let body = crypto::open(key.seal_key(), &entry.id.0, blob).ok_or_else(|| what("does not decrypt"))?;
    let plain = crypto::decompress(entry.compression, body, entry.raw_length as usize)
        .ok_or_else(|| what("does not decompress"))?;
    if plain.len() != entry.raw_length as usize {
        return Err(what(&format!("{} bytes, the header says {}", plain.len(), entry.raw_length)));
    }
    if key.chunk_id(&plain) != entry.id {
        return Err(what("plaintext does not hash to the chunk id"));
    }
    Ok(plain)
}

/// Builds one pack in memory. Add blobs until [`PackWriter::is_full`], then [`PackWriter::finish`].
pub struct PackWriter {
    target_size: usize,
    bytes: Vec<u8>,
    entries: Vec<BlobEntry>,
    /// The ids in `entries`.
    ids: std::collections::HashSet<ChunkId>,
}

impl PackWriter {
    /// `target_size`: the pack is full once its blobs reach this many bytes.
    pub fn new(target_size: usize) -> Self {
        Self { target_size, bytes: Vec::new(), entries: Vec::new(), ids: Default::default() }
    }

    /// Seals and appends a chunk. The caller ensures a chunk id is added once per pack.
    pub fn add(&mut self, key: &TenantKey, id: ChunkId, plaintext: &[u8]) -> BlobEntry {
        let (blob, compression) = seal_blob(key, &id, plaintext);
        let entry = BlobEntry {
            id,
            offset: self.bytes.len() as u32,
            length: blob.len() as u32,
            raw_length: plaintext.len() as u32,
            compression,
        };
        self.reserve();
        self.bytes.extend_from_slice(&blob);
        self.entries.push(entry);
        self.ids.insert(id);
        entry
    }

    /// Appends a blob already sealed (copied from another pack by prune); `entry` describes it there.
    pub fn add_sealed(&mut self, entry: &BlobEntry, blob: &[u8]) -> BlobEntry {
        let e = BlobEntry { offset: self.bytes.len() as u32, ..*entry };
        self.reserve();
        self.bytes.extend_from_slice(blob);
        self.entries.push(e);
        self.ids.insert(e.id);
        e
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.bytes.len() >= self.target_size
    }

    /// Bytes of blobs so far.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Room for a full pack at its first blob (its last blob and header included), so the buffer never
    /// doubles past the target.
    fn reserve(&mut self) {
        if self.bytes.capacity() == 0 {
            self.bytes.reserve_exact(self.target_size + (1 << 20));
        }
    }

    /// Whether the pack holds chunk `id`.
    pub fn contains(&self, id: &ChunkId) -> bool {
        self.ids.contains(id)
    }

    pub fn entries(&self) -> &[BlobEntry] {
        &self.entries
    }

    /// The blob entry for `id` if it is in this (unfinished) pack, and its plaintext.
    pub fn read(&self, key: &TenantKey, id: &ChunkId) -> Option<Result<Vec<u8>>> {
        let e = self.entries.iter().find(|e| e.id == *id)?;
        let blob = &self.bytes[e.offset as usize..(e.offset + e.length) as usize];
        Some(open_blob(key, "(open pack)", e, blob))
    }

    /// Appends the header and returns the pack id, its bytes and its entries; the writer is left empty.
    pub fn finish(&mut self, key: &TenantKey) -> (ObjectId, Vec<u8>, Vec<BlobEntry>) {
        let mut header = Vec::with_capacity(4 + self.entries.len() * HEADER_ENTRY_LEN);
        header.extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        for e in &self.entries {
            e.encode(&mut header);
        }
        let sealed = crypto::seal_object(key.seal_key(), HEADER_MAGIC, &header);
        let mut bytes = std::mem::take(&mut self.bytes);
        bytes.extend_from_slice(&sealed);
        bytes.extend_from_slice(&(sealed.len() as u32).to_le_bytes());
        self.ids.clear();
        (ObjectId::of(&bytes), bytes, std::mem::take(&mut self.entries))
    }
}

/// Decodes a pack's header from its trailing bytes (`tail` must hold at least the header envelope and its
/// length; the whole pack is fine). `pack_len` is the pack's total length; `pack` names it in errors.
pub fn read_header(key: &TenantKey, pack: &str, tail: &[u8], pack_len: u64) -> Result<Vec<BlobEntry>> {
    if tail.len() < 4 {
        return Err(Error::corrupt(pack, "too short for a pack"));
    }
    let hlen = u32::from_le_bytes(tail[tail.len() - 4..].try_into().unwrap()) as usize;
    if hlen + 4 > tail.len() {
        return Err(Error::corrupt(pack, format!("header length {hlen} exceeds the pack")));
    }
    let sealed = &tail[tail.len() - 4 - hlen..tail.len() - 4];
    let header = crypto::open_object(key.seal_key(), HEADER_MAGIC, sealed, pack)?;
    let count = header.get(..4).map(|b| u32::from_le_bytes(b.try_into().unwrap()) as usize);
    let Some(count) = count.filter(|c| header.len() == 4 + c * HEADER_ENTRY_LEN) else {
        return Err(Error::corrupt(pack, "pack header has the wrong length for its entry count"));
    };
    let data_end = pack_len - 4 - hlen as u64;
    header[4..]
        .chunks_exact(HEADER_ENTRY_LEN)
        .map(|b| {
            let e = BlobEntry::decode(b).ok_or_else(|| Error::corrupt(pack, "bad pack header entry"))?;
            if e.offset as u64 + e.length as u64 > data_end {
                return Err(Error::corrupt(pack, format!("entry of chunk {} points past the blobs", e.id)));
            }
            Ok(e)
        })
        .take(count)
        .collect()
}

/// Bytes needed from the end of a pack to read its header, given the last 4 bytes.
pub fn header_tail_len(last4: &[u8; 4]) -> usize {
    u32::from_le_bytes(*last4) as usize + 4
}
