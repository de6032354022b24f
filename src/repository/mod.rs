//! The content repository: where backups live in object storage.
//!
//! Everything needed to restore is here, self-describing and encrypted per tenant; the byte-level format
//! is specified in `docs/repository.md`. One module per thing the repository holds:
//!
//! - [`layout`]: object keys, all under `{tenant_id}/{share_id}/` (key objects under `{tenant_id}/keys/`).
//! - [`keys`]: the master key and per-tenant keys (wrapped by the master key).
//! - [`crypto`]: XChaCha20-Poly1305 sealing and the envelope every whole object uses.
//! - [`chunker`]: content-defined (FastCDC) and fixed-block chunking.
//! - [`pack`]: chunk blobs packed into pack objects with an encrypted header.
//! - [`pool`]: [`CpuPool`], where chunking, hashing, compression and encryption run (one worker per core).
//! - [`index`]: the chunk index, partitioned by chunk-id prefix, with Bloom filters, bounded in memory.
//! - [`bundle`]: small files in TAR bundles.
//! - [`metadata`]: node versions (FlatBuffers, [`generated`]) and permission (SDDL) objects.
//! - [`manifest`]: snapshot manifests, written last.
//! - [`repo`]: [`Repository`], the writer's and reader's handle on one share.
//! - [`verify`]: checks that every referenced object exists, decrypts and hashes to its id.
//! - [`keyset`]: sorted sets of 32-byte keys in bounded memory, spilled to disk (prune's live sets).
//! - [`prune`]: frees what no snapshot references, safely while backups run (markers, deletion records).
//! - [`runs`]: part records of a backup split across jobs, referenced until the backup commits.
//! - [`store`]: repository locations (a local directory or `az://CONTAINER/PREFIX`) opened as object stores.

pub mod bundle;
pub mod chunker;
pub mod crypto;
pub mod error;
pub mod generated;
pub mod id;
pub mod index;
pub mod keys;
pub mod keyset;
pub mod layout;
pub mod manifest;
pub mod metadata;
pub mod pack;
pub mod pool;
pub mod prune;
pub mod repo;
pub mod runs;
pub mod store;
pub mod verify;

pub use error::{Error, Result};
pub use id::{ChunkId, ObjectId};
pub use keys::{MasterKey, TenantKey};
pub use manifest::BackupManifest;
pub use pool::CpuPool;
pub use repo::{
    BundleCache, Chunk, ContentReader, FileChunker, FileContent, FileWriter, Repository, RepositoryConfig, SmallFile,
    WriteStats,
};
