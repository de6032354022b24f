//! Bundles: small files stored together as one standard TAR archive, encrypted as one object.
//!
//! Once opened (decrypted, and decompressed when the envelope says zstd) a bundle is a plain POSIX ustar
//! archive that `tar t` lists. Each member is one file's content, named by the lowercase hex of its
//! content id (the tenant-keyed BLAKE3 of the content, the same function as chunk ids), with mode 0600,
//! uid/gid 0 and mtime 0: names, times and permissions live in the metadata, not in the bundle. A content
//! appears once per bundle.
//!
//! Object: a sealed envelope (magic `AFBB`, see [`super::crypto`]) whose plaintext is the TAR, stored at
//! `{tenant}/{share}/bundles/{id[0..2]}/{id}`, `id` = BLAKE3 of the object's bytes. Nodes refer to a member
//! by (bundle id, content id, data offset in the TAR, length); see `BundleRef` in the metadata schema.
//!
//! When to bundle is [`BundlePolicy`]'s decision: files of at most `max_file_size` bytes, and only for a
//! group of at least `min_files` of them (fewer go into packs as ordinary chunks, where they cost no
//! object of their own). Bundle members are not entered in the chunk index: a bundle keeps the index small
//! for shares of many small files, and a directory of small files restores with one object read.

use std::collections::HashSet;

use super::crypto;
use super::error::{Error, Result};
use super::id::{ChunkId, ObjectId};
use super::keys::TenantKey;

const MAGIC: &[u8; 4] = b"AFBB";
const TAR_BLOCK: usize = 512;

/// When small files go into bundles. Sizes in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BundlePolicy {
    /// Files of at most this size are candidates for a bundle.
    pub max_file_size: u64,
    /// A group of fewer candidate files is stored as chunks in packs instead.
    pub min_files: usize,
    /// A bundle is closed once its TAR reaches this size.
    pub target_size: usize,
}

impl Default for BundlePolicy {
    fn default() -> Self {
        Self { max_file_size: 64 << 10, min_files: 3, target_size: 4 << 20 }
    }
}

impl BundlePolicy {
    /// Whether a file of `size` bytes is a bundle candidate.
    pub fn is_small(&self, size: u64) -> bool {
        size <= self.max_file_size
    }

    /// Whether a group of `count` candidate files should be bundled.
    pub fn should_bundle(&self, count: usize) -> bool {
        count >= self.min_files
    }
}

/// One file's content inside a bundle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BundleMember {
    /// Content id; the TAR member's name is its hex.
    pub id: ChunkId,
    /// Byte offset of the member's data in the TAR.
    pub offset: u64,
    /// Length in bytes.
    pub length: u64,
}

/// Builds one bundle in memory.
pub struct BundleBuilder {
    tar: tar::Builder<Vec<u8>>,
    members: Vec<BundleMember>,
    seen: HashSet<ChunkId>,
}

impl Default for BundleBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl BundleBuilder {
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// A builder whose TAR has room for `bytes` bytes without growing.
    pub fn with_capacity(bytes: usize) -> Self {
        Self { tar: tar::Builder::new(Vec::with_capacity(bytes)), members: Vec::new(), seen: HashSet::new() }
    }

    /// Adds a file's content (once per distinct content) and returns its member.
    pub fn add(&mut self, key: &TenantKey, data: &[u8]) -> BundleMember {
        let id = key.chunk_id(data);
        if self.seen.contains(&id) {
            return *self.members.iter().find(|m| m.id == id).unwrap();
        }
        let mut header = tar::Header::new_ustar();
        header.set_path(id.to_hex()).expect("64 characters fit a ustar name");
        header.set_size(data.len() as u64);
        header.set_mode(0o600);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        let start = self.tar.get_ref().len() as u64;
        self.tar.append(&header, data).expect("writing to memory");
        let member = BundleMember { id, offset: start + TAR_BLOCK as u64, length: data.len() as u64 };
        self.seen.insert(id);
        self.members.push(member);
        member
    }

    /// Distinct contents added.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Bytes of TAR so far.
    pub fn size(&self) -> usize {
        self.tar.get_ref().len()
    }

    /// Closes the TAR and seals it; returns the bundle id, its stored bytes and its members.
    pub fn finish(self, key: &TenantKey) -> (ObjectId, Vec<u8>, Vec<BundleMember>) {
        let tar = self.tar.into_inner().expect("writing to memory");
        let bytes = crypto::seal_object(key.seal_key(), MAGIC, &tar);
        (ObjectId::of(&bytes), bytes, self.members)
    }
}

/// A bundle sealed and ready to upload, with where each of the files given to [`seal_bundle`] went.
pub struct SealedBundle {
    pub id: ObjectId,
    /// The object's bytes.
    pub bytes: Vec<u8>,
    /// One per file, in the order given (equal contents share a member).
    pub members: Vec<BundleMember>,
    /// QuickXorHash of each file, in the order given.
    pub xorhashes: Vec<[u8; 20]>,
}

/// Puts `files` into one bundle and seals it: content ids, QuickXorHashes, the TAR, compression and
/// encryption. CPU work only (small files need no chunker), so it runs on the pool.
/// The files are dropped as soon as they are in the TAR.
pub fn seal_bundle(key: &TenantKey, files: Vec<bytes::Bytes>) -> SealedBundle {
    // Each member: a header block, the data padded to a block; then two zero blocks at the end.
    let size = files.iter().map(|f| TAR_BLOCK + f.len().div_ceil(TAR_BLOCK) * TAR_BLOCK).sum::<usize>();
    let mut builder = BundleBuilder::with_capacity(size + 2 * TAR_BLOCK);
    let mut members = Vec::with_capacity(files.len());
    let mut xorhashes = Vec::with_capacity(files.len());
    for f in files {
        members.push(builder.add(key, &f));
        let mut x = crate::hash::QuickXorHash::new();
        x.update(&f);
        xorhashes.push(x.digest());
    }
    let (id, bytes, _) = builder.finish(key);
    SealedBundle { id, bytes, members, xorhashes }
}

/// Opens a bundle object into its TAR; `object` names it in errors.
pub fn open_bundle(key: &TenantKey, object: &str, bytes: &[u8]) -> Result<Vec<u8>> {
    crypto::open_object(key.seal_key(), MAGIC, bytes, object)
}

/// A member's content from an opened bundle, checked against its content id.
pub fn member_data<'a>(key: &TenantKey, object: &str, tar: &'a [u8], member: &BundleMember) -> Result<&'a [u8]> {
    let end = member.offset.checked_add(member.length).filter(|e| *e <= tar.len() as u64);
    let Some(end) = end else {
        return Err(Error::corrupt(object, format!("member {} lies past the end of the TAR", member.id)));
    };
    let data = &tar[member.offset as usize..end as usize];
    if key.chunk_id(data) != member.id {
        return Err(Error::corrupt(object, format!("member {} does not hash to its content id", member.id)));
    }
    Ok(data)
}
